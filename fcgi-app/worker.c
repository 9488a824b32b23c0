/*
 * worker.c - owns the worker's serving threads (worker.h): how many there
 * are, which accept, the end of the process, and one request from
 * FCGX_Accept_r to the log line.
 *
 * libfcgi 2.4 takes no accept lock on Linux (USE_LOCKING is not defined in
 * os_unix.c), so each thread calls FCGX_Accept_r on the shared socket with
 * its own FCGX_Request and the kernel hands each connection to one waiter.
 * Every thread blocks the stop signals; the main thread takes them with
 * sigwaitinfo, so no libfcgi read or write is ever cut by EINTR.
 *
 * The process ends with _exit once a stop was asked and no request is in
 * flight: threads still blocked in accept hold nothing, and app state is
 * left to the kernel (the run table is shared, and our slots are gone).
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "log.h"
#include "request.h"
#include "runner.h"
#include "timefmt.h"

/* Pause before accepting again after running out of fds or memory. */
#define WK_ACCEPT_RETRY_US 100000

struct wk_pool {
    struct app *app;
    pthread_mutex_t lock;
    unsigned threads; /* serving threads alive */
    unsigned idle;    /* of which waiting in accept */
    unsigned busy;    /* of which holding a request */
    int stopping;     /* no new accept; exit once busy is 0 */
    int exit_code;
};

static void *serve_thread(void *arg);

/* Starts one more serving thread. Call with p->lock held. 0 or -1. */
static int spawn_locked(struct wk_pool *p)
{
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    if (p->threads >= WK_MAX_THREADS || pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, WK_STACK_BYTES);
    rc = pthread_create(&tid, &attr, serve_thread, p);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot start a serving thread: %s", strerror(rc));
        return -1;
    }
    p->threads++;
    return 0;
}

/* Ends the process if a stop was asked and nothing is in flight. Call with
 * p->lock held. */
static void exit_if_done_locked(struct wk_pool *p)
{
    if (p->stopping && p->busy == 0) {
        log_msg(JARVIS_LOG_INFO, "worker stopping");
        _exit(p->exit_code);
    }
}

/* One request, accepted, to its log line. Returns 1 when a handler was
 * abandoned: the exchange must then stay as it is (its thread still reads
 * the request) and the worker must end. */
static int serve_one(struct app *app, FCGX_Request *fr, struct rn_runner *runner, int full,
                     struct exchange *x)
{
    struct dsp_conn conn = {runner, fr->ipcFd, full};
    struct http_req req;
    int64_t t0 = ts_mono_us();

    req_from_fcgi(fr, &req);
    app_handle(app, &req, &conn, x);
    if (resp_emit(&x->resp, x->head_only, req_fcgi_write, fr->out) != 0)
        log_msg(JARVIS_LOG_WARN, "client went away before the answer was written");
    FCGX_Finish_r(fr);
    x->log.dur_us = ts_mono_us() - t0;
    log_request(&x->log);
    if (x->exit_after) {
        log_msg(JARVIS_LOG_ERROR, "abandoning a handler that would not stop; worker exits "
                                  "once its other requests are answered");
        return 1;
    }
    app_exchange_cleanup(x);
    return 0;
}

static void *serve_thread(void *arg)
{
    struct wk_pool *p = arg;
    struct rn_runner *runner = rn_runner_new();
    FCGX_Request fr;
    /* On the heap: an abandoned handler keeps reading it after we answer. */
    struct exchange *x = calloc(1, sizeof *x);

    if (runner == NULL || x == NULL || FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot set up a serving thread");
        pthread_mutex_lock(&p->lock);
        goto leave;
    }
    for (;;) {
        int rc, full;

        pthread_mutex_lock(&p->lock);
        if (p->stopping)
            goto leave;
        p->idle++;
        pthread_mutex_unlock(&p->lock);

        rc = FCGX_Accept_r(&fr);

        pthread_mutex_lock(&p->lock);
        p->idle--;
        if (rc < 0) {
            int e = errno;
            if (!p->stopping &&
                (e == EINTR || e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)) {
                /* Out of fds or memory for a moment: others may free some. */
                pthread_mutex_unlock(&p->lock);
                if (e != EINTR) {
                    log_msg(JARVIS_LOG_WARN, "accept failed: %s; retrying", strerror(e));
                    usleep(WK_ACCEPT_RETRY_US);
                }
                continue;
            }
            if (!p->stopping) {
                log_msg(JARVIS_LOG_ERROR, "accept failed: %d (%s); worker stops", rc,
                        strerror(errno));
                p->stopping = 1;
                p->exit_code = 1;
            }
            exit_if_done_locked(p);
            goto leave;
        }
        p->busy++;
        /* Keep spare threads in accept for what comes next (a cancel). */
        while (p->idle + (p->threads - p->idle - p->busy) < WK_SPARE_MIN && !p->stopping &&
               spawn_locked(p) == 0)
            ;
        full = p->threads >= WK_MAX_THREADS && p->idle < WK_SPARE_MIN;
        pthread_mutex_unlock(&p->lock);

        if (serve_one(p->app, &fr, runner, full, x) != 0) {
            pthread_mutex_lock(&p->lock);
            p->busy--;
            p->stopping = 1;
            p->exit_code = 3;
            exit_if_done_locked(p);
            pthread_mutex_unlock(&p->lock);
            /* The handler still uses x and this thread's runner: never
             * return; the last request to finish ends the process. */
            for (;;)
                pause();
        }

        pthread_mutex_lock(&p->lock);
        p->busy--;
        exit_if_done_locked(p);
        if (p->stopping || p->idle >= WK_SPARE_MAX)
            goto leave;
        pthread_mutex_unlock(&p->lock);
    }
leave:
    p->threads--;
    pthread_mutex_unlock(&p->lock);
    rn_runner_free(runner);
    free(x);
    return NULL;
}

void wk_serve(struct app *app)
{
    static struct wk_pool pool;
    sigset_t stop;
    unsigned i;
    int sig;

    pool.app = app;
    pthread_mutex_init(&pool.lock, NULL);
    /* Blocked here, so in every thread started after: sigwaitinfo below
     * is the only taker. USR1 is multiwatch's "stop gracefully"; libfcgi
     * would otherwise claim it. A client that went away is a failed write
     * (EPIPE), not a dead worker. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigaddset(&stop, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_mutex_lock(&pool.lock);
    for (i = 0; i < WK_SPARE_MIN + 1; i++)
        if (spawn_locked(&pool) != 0)
            break;
    if (pool.threads == 0) {
        log_msg(JARVIS_LOG_ERROR, "no serving thread could start");
        _exit(1);
    }
    pthread_mutex_unlock(&pool.lock);
    for (;;) {
        sig = sigwaitinfo(&stop, NULL);
        if (sig < 0)
            continue;
        pthread_mutex_lock(&pool.lock);
        if (!pool.stopping)
            log_msg(JARVIS_LOG_INFO, "signal %d: stopping once %u request(s) are answered", sig,
                    pool.busy);
        pool.stopping = 1;
        exit_if_done_locked(&pool);
        pthread_mutex_unlock(&pool.lock);
    }
}
