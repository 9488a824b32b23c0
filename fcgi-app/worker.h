/*
 * worker.h - the worker process's connection model: serving threads, each
 * with its own libfcgi FCGX_Request, taking turns at one wait set (the
 * shared FastCGI socket and the worker's idle kept connections): one leads
 * and serves, the others follow (worker.c says how the lead passes).
 *
 * A worker is never "busy" as a whole: while some threads hold executes
 * (running, or queued for an execute permit), it keeps WK_SPARE_MIN
 * threads free, so a cancel, a health check or another execute is taken at
 * once instead of waiting in the socket backlog. Threads are added when
 * the spare ones are taken (up to WK_MAX_THREADS); one that has waited
 * WK_IDLE_EXIT_MS with nothing to do ends while more than WK_SPARE_MIN
 * others are free. (Ending a thread as soon as there are "too many" idle
 * ones made a pool under steady load start and end hundreds of threads a
 * second, a tenth of its time.)
 */
#ifndef JARVIS_WORKER_H
#define JARVIS_WORKER_H

#include <signal.h>

#include "app.h"

/* Idle serving threads a worker keeps for whatever arrives next. */
#define WK_SPARE_MIN 2
/* A serving thread idle this long ends, unless it is one of the spares. */
#define WK_IDLE_EXIT_MS 10000
/* Serving threads of one worker at most: requests it holds at once (fewer
 * when RLIMIT_NOFILE, raised to its hard limit at start, cannot give each
 * its fds). An execute that would leave fewer than WK_SPARE_MIN threads
 * free answers 503 executor_busy, retryable. */
#define WK_MAX_THREADS 256
/* Stack of a serving thread, which runs the handlers: as much as a
 * default thread's (reserved, not used, until a handler needs it). */
#define WK_STACK_BYTES (8 * 1024 * 1024)

/* Blocks the stop signals (TERM, INT, HUP, USR1) in the calling thread and
 * so in every thread it starts after; set is filled with them. Call before
 * any thread exists, so that none ever runs libfcgi's own handlers. */
void wk_block_stop_signals(sigset_t *set);

/*
 * Serves the FastCGI socket on fd 0 until a stop signal (TERM, INT, HUP,
 * or multiwatch's USR1): an idle worker exits at once, a busy one once its
 * requests are answered. A handler that would not stop ends the worker the
 * same way, with status 3, so the pool starts a fresh one. Call after
 * FCGX_Init and rn_init, from the main thread; never returns.
 */
void wk_serve(struct app *app) __attribute__((noreturn));

#endif
