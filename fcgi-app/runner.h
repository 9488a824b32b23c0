/*
 * runner.h - runs a handler on the worker's handler thread while the main
 * thread watches for a cancel and the deadline.
 *
 * Handlers are meant to cooperate (jarvis_ctx_sleep_ms, jarvis_ctx_wait_fd,
 * jarvis_ctx_wake_fd); one that does not is given RN_GRACE_MS after the
 * cancel or deadline, then abandoned: the run is answered and the worker
 * exits after the response, so a stuck handler costs one respawn, never a
 * hung request.
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
    RN_TIMEOUT       /* the deadline passed first */
};

struct rn_job {
    jarvis_handler_fn handler;
    jarvis_ctx *ctx;
    json_object *inputs;
    json_object *outputs; /* set by the handler; owned by the caller after */
    int rc;               /* what the handler returned */
};

/* Polled by the main thread: 1 once the run has been canceled. */
typedef int (*rn_cancel_check_fn)(const void *arg);

/*
 * Starts the handler thread and sets up the wake-up signal (SIGUSR2, which
 * interrupts the main thread's waits). Call once per process, before any
 * other thread exists. Returns 0 or -1.
 */
int rn_init(void);

/*
 * Runs job and returns its outcome. deadline_ms is wall-clock ms (0: none).
 * On RN_CANCELED/RN_TIMEOUT the job's outputs are dropped. *abandoned is
 * set to 1 when the handler did not return within RN_GRACE_MS: its thread
 * still uses job, ctx and inputs, so the caller must not free them and must
 * end the process once it has answered.
 */
enum rn_outcome rn_run(struct rn_job *job, int64_t deadline_ms, rn_cancel_check_fn check,
                       const void *check_arg, int *abandoned);

/* The fd that becomes readable when the current run is canceled or out of
 * time; handlers poll it beside their own fds. */
int rn_wake_fd(void);

/* 1 once the current run has been told to stop (cancel or deadline). */
int rn_stop_requested(void);

#endif
