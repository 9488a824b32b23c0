/*
 * runner.h - runs a handler on the calling (serving) thread while one
 * watcher thread per process watches every run for a cancel, its deadline
 * and its client going away.
 *
 * A worker serves several connections at once, one serving thread each, and
 * each serving thread owns one runner: the wake fd its handler polls and the
 * run's place in the watch. rn_run calls the handler directly: there is no
 * thread handoff on the way in or out. The watcher sleeps in one epoll set
 * (a kick eventfd, a signalfd for SIGUSR2, a timerfd armed for the
 * earliest deadline, grace end or first look at a client, and the client
 * connections of runs older than that look) and wakes only when something
 * may have to stop. A cancel flags the run table and sends SIGUSR2 to the
 * owner process, which wakes the watcher; it rechecks every run.
 *
 * Handlers are meant to cooperate (jarvis_ctx_sleep_ms, jarvis_ctx_wait_fd,
 * jarvis_ctx_wake_fd); one that does not is given RN_GRACE_MS after the
 * cancel or deadline, then abandoned: the watcher answers the run itself
 * (the run's abandon callback) and the worker exits once its other requests
 * are answered, so a stuck handler costs one respawn, never a hung request.
 */
#ifndef JARVIS_RUNNER_H
#define JARVIS_RUNNER_H

#include <stdint.h>

#include "jarvis/node.h"
#include "runtable.h"

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

/* 1 once the run has been canceled; called by the watcher thread (and once
 * by the calling thread before the handler starts). */
typedef int (*rn_cancel_check_fn)(const void *arg);

/*
 * Answers a run whose handler did not return within RN_GRACE_MS of being
 * told to stop; called once, on the watcher thread, with how the run was
 * stopped. The handler is still running on the thread that called rn_run,
 * and that thread never comes back from rn_run: the callback must answer
 * the request and make the process end once its other requests are done.
 */
typedef void (*rn_abandon_fn)(void *arg, enum rn_outcome outcome);

/* What the watch stops a run for, and who answers an abandoned one. */
struct rn_watch {
    int64_t deadline_ms; /* wall-clock ms, 0: none */
    rn_cancel_check_fn check;
    const void *check_arg;
    int client_fd; /* the request's connection, watched for hang-up; -1: none */
    /* NULL: the run is never abandoned; rn_run then waits for the handler
     * however long it takes (tools, unit tests without a connection). */
    rn_abandon_fn abandon;
    void *abandon_arg;
};

/* One serving thread's place in the watch: its wake fd and its run. */
struct rn_runner;

/*
 * Process set-up: blocks SIGUSR2 in the calling thread (so in every thread
 * created after it), starts the watcher thread and puts a signalfd for
 * SIGUSR2 in its epoll set, so the signal wakes the watcher. Call once,
 * before any other thread exists. Returns 0 or -1. (Without it the watcher
 * starts with the first run, and SIGUSR2 is not listened for.)
 */
int rn_init(void);

/*
 * The cancel protocol, from any worker: flags node_run_id in the run table
 * and wakes the watcher of the worker that owns the run (SIGUSR2, read from
 * that worker's signalfd: rn_init), or leaves a tombstone. rt_cancel's
 * return values and *owner.
 */
int rn_cancel(struct rt_table *rt, const char *node_run_id, pid_t *owner);

/* fn(arg) is called on the runner's thread each time it may block for a
 * while (rn_yield): the worker then hands the watch over its connections
 * to another thread. NULL: nothing is called. */
void rn_runner_set_yield(struct rn_runner *r, void (*fn)(void *arg), void *arg);

/* Says that the calling thread, which runs with r, may block now: a
 * handler's wait on the ctx, an execute's wait for a permit. Cheap. */
void rn_yield(struct rn_runner *r);

/* A new runner (the caller owns it: rn_runner_free), or NULL. One run at a
 * time: it belongs to the thread that calls rn_run with it. */
struct rn_runner *rn_runner_new(void);

/* Frees a runner that is not running. Never call it for a runner whose
 * handler was abandoned (its thread is still inside rn_run). */
void rn_runner_free(struct rn_runner *r);

/* The process's own runner, for callers with no serving thread of their own
 * (tools, unit tests: one run at a time); created on first use, never
 * freed. NULL on failure. */
struct rn_runner *rn_runner_default(void);

/*
 * Runs job's handler on the calling thread under the watch and returns its
 * outcome. On anything but RN_RETURNED the job's outputs are dropped. A
 * run already canceled or past its deadline when it starts never calls the
 * handler. If the handler is abandoned (w->abandon set, and it did not
 * return within RN_GRACE_MS of being told to stop), the watcher has
 * answered the run through w->abandon, and rn_run never returns: when the
 * handler does return, the calling thread parks for good, touching nothing.
 */
enum rn_outcome rn_run(struct rn_runner *r, struct rn_job *job, const struct rn_watch *w);

/* The fd that becomes readable when r's current run is canceled or out of
 * time; handlers poll it beside their own fds. */
int rn_wake_fd(const struct rn_runner *r);

/* 1 once r's current run has been told to stop (cancel, deadline, client). */
int rn_stop_requested(const struct rn_runner *r);

/* 1 if the peer of the connection fd has closed it or it failed (a poll
 * that does not wait), else 0. */
int rn_client_gone(int fd);

#endif
