/*
 * runner.h - runs a handler on a handler thread while the calling (serving)
 * thread watches for a cancel, the deadline and the client going away.
 *
 * A worker serves several connections at once, one serving thread each, and
 * each serving thread owns one runner: its handler thread and the fds of
 * the watch. A cancel that lands on another worker flags the run table and
 * sends SIGUSR2 to the owner process; rn_init's listener thread takes that
 * signal and kicks every watch of the process, and each watch rechecks its
 * own run.
 *
 * Handlers are meant to cooperate (jarvis_ctx_sleep_ms, jarvis_ctx_wait_fd,
 * jarvis_ctx_wake_fd); one that does not is given RN_GRACE_MS after the
 * cancel or deadline, then abandoned: the run is answered and the worker
 * exits once its other requests are answered, so a stuck handler costs one
 * respawn, never a hung request.
 */
#ifndef JARVIS_RUNNER_H
#define JARVIS_RUNNER_H

#include <stdint.h>

#include "jarvis/node.h"

/* How long a handler may take to return after a cancel or its deadline. */
#define RN_GRACE_MS 2000

enum rn_outcome {
    RN_RETURNED = 0, /* the handler returned: see rc and outputs */
    RN_CANCELED,     /* a cancel arrived first */
    RN_TIMEOUT,      /* the deadline passed first */
    RN_CLIENT_GONE   /* the client's connection closed first */
};

struct rn_job {
    jarvis_handler_fn handler;
    jarvis_ctx *ctx;
    json_object *inputs;
    json_object *outputs; /* set by the handler; owned by the caller after */
    int rc;               /* what the handler returned */
};

/* 1 once the run has been canceled; called by the watching thread. */
typedef int (*rn_cancel_check_fn)(const void *arg);

/* What the watch stops a run for. */
struct rn_watch {
    int64_t deadline_ms; /* wall-clock ms, 0: none */
    rn_cancel_check_fn check;
    const void *check_arg;
    int client_fd; /* the request's connection, watched for hang-up; -1: none */
};

/* A handler thread and its watch; one per serving thread. */
struct rn_runner;

/*
 * Process set-up: blocks SIGUSR2 in the calling thread (so in every thread
 * created after it) and starts the listener thread that turns SIGUSR2 into
 * a kick of every watch. Call once, before any other thread exists.
 * Returns 0 or -1.
 */
int rn_init(void);

/* A new runner (the caller owns it: rn_runner_free), or NULL. Its handler
 * thread starts with the first run. */
struct rn_runner *rn_runner_new(void);

/* Stops and joins the runner's handler thread and frees it. Never call it
 * for a runner whose handler was abandoned (that thread still runs). */
void rn_runner_free(struct rn_runner *r);

/* The process's own runner, for callers with no serving thread of their own
 * (tools, unit tests); created on first use, never freed. NULL on failure. */
struct rn_runner *rn_runner_default(void);

/*
 * Runs job on r's handler thread and returns its outcome. On anything but
 * RN_RETURNED the job's outputs are dropped. *abandoned is set to 1 when the
 * handler did not return within RN_GRACE_MS of being told to stop: its
 * thread still uses job, ctx and inputs, so the caller must not free them,
 * must not use r again, and must end the process once it has answered.
 */
enum rn_outcome rn_run(struct rn_runner *r, struct rn_job *job, const struct rn_watch *w,
                       int *abandoned);

/* The fd that becomes readable when r's current run is canceled or out of
 * time; handlers poll it beside their own fds. */
int rn_wake_fd(const struct rn_runner *r);

/* 1 once r's current run has been told to stop (cancel, deadline, client). */
int rn_stop_requested(const struct rn_runner *r);

/* Wakes every watch of this process to recheck its run (the SIGUSR2 path;
 * also safe to call from any thread). */
void rn_kick_all(void);

/* 1 if the peer of the connection fd has closed it or it failed (a poll
 * that does not wait), else 0. */
int rn_client_gone(int fd);

#endif
