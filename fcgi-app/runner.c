/*
 * runner.c - owns the worker's handler thread and the watch over it.
 *
 * The main thread hands a job over (mutex + condvar), then sleeps in ppoll
 * on the job's done eventfd with SIGUSR2 unblocked only there: a cancel on
 * another worker flags the run table and sends SIGUSR2, which ends the
 * ppoll at once even if it arrived a moment before (it stays pending while
 * blocked). On cancel or deadline the main thread raises the wake eventfd
 * that cooperative handler waits poll, and gives the handler a grace period.
 */
#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "timefmt.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct rn_job *job; /* the job handed over, NULL when idle */
    int done_fd;        /* handler thread -> main: the job returned */
    int wake_fd;        /* main -> handler: stop (cancel or deadline) */
    atomic_int stop;
    sigset_t wait_mask; /* the main thread's mask during waits */
} rn = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .cond = PTHREAD_COND_INITIALIZER,
        .done_fd = -1,
        .wake_fd = -1};

static void on_wake(int sig)
{
    (void)sig; /* only here to interrupt ppoll */
}

static void *handler_thread(void *arg)
{
    uint64_t one = 1;

    (void)arg;
    for (;;) {
        struct rn_job *job;

        pthread_mutex_lock(&rn.lock);
        while (rn.job == NULL)
            pthread_cond_wait(&rn.cond, &rn.lock);
        job = rn.job;
        pthread_mutex_unlock(&rn.lock);
        job->rc = job->handler(job->ctx, job->inputs, &job->outputs);
        pthread_mutex_lock(&rn.lock);
        rn.job = NULL;
        pthread_mutex_unlock(&rn.lock);
        if (write(rn.done_fd, &one, sizeof one) != sizeof one)
            log_msg(JARVIS_LOG_ERROR, "runner: cannot signal completion: %s", strerror(errno));
    }
    return NULL;
}

int rn_init(void)
{
    struct sigaction sa;
    sigset_t all, old, usr2;
    pthread_t tid;
    int rc;

    if (rn.done_fd >= 0)
        return 0;
    rn.done_fd = eventfd(0, EFD_CLOEXEC);
    rn.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rn.done_fd < 0 || rn.wake_fd < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_wake; /* no SA_RESTART */
    if (sigaction(SIGUSR2, &sa, NULL) != 0)
        return -1;
    /* SIGUSR2 is blocked except inside the main thread's ppoll. */
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    if (pthread_sigmask(SIG_BLOCK, &usr2, &old) != 0)
        return -1;
    rn.wait_mask = old;
    sigdelset(&rn.wait_mask, SIGUSR2);
    /* The handler thread takes no signals at all: they are the main thread's. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&tid, NULL, handler_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    pthread_detach(tid);
    return 0;
}

int rn_wake_fd(void)
{
    return rn.wake_fd;
}

int rn_stop_requested(void)
{
    return atomic_load(&rn.stop);
}

/* Waits for the done fd up to timeout_ms (-1: forever). 1 done, 0 not yet. */
static int wait_done(int64_t timeout_ms)
{
    struct pollfd p = {.fd = rn.done_fd, .events = POLLIN};
    struct timespec ts, *tsp = NULL;
    uint64_t v;

    if (timeout_ms >= 0) {
        ts.tv_sec = (time_t)(timeout_ms / 1000);
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    if (ppoll(&p, 1, tsp, &rn.wait_mask) <= 0)
        return 0;
    if (read(rn.done_fd, &v, sizeof v) != sizeof v)
        return 0;
    return 1;
}

enum rn_outcome rn_run(struct rn_job *job, int64_t deadline_ms, rn_cancel_check_fn check,
                       const void *check_arg, int *abandoned)
{
    enum rn_outcome outcome = RN_RETURNED;
    uint64_t v, one = 1;
    int64_t grace_end;

    *abandoned = 0;
    if (rn.done_fd < 0 && rn_init() != 0) {
        log_msg(JARVIS_LOG_ERROR, "runner: cannot start the handler thread");
        job->rc = JARVIS_ERR_HANDLER;
        return RN_RETURNED;
    }
    atomic_store(&rn.stop, 0);
    while (read(rn.wake_fd, &v, sizeof v) == sizeof v)
        ; /* drain a stop left from an earlier run */
    pthread_mutex_lock(&rn.lock);
    rn.job = job;
    pthread_cond_signal(&rn.cond);
    pthread_mutex_unlock(&rn.lock);

    for (;;) {
        int64_t left = -1;

        if (check != NULL && check(check_arg)) {
            outcome = RN_CANCELED;
            break;
        }
        if (deadline_ms > 0) {
            left = deadline_ms - ts_now_ms();
            if (left <= 0) {
                outcome = RN_TIMEOUT;
                break;
            }
        }
        if (wait_done(left))
            return RN_RETURNED;
    }
    /* Tell the handler to stop, then give it a moment to do so. */
    atomic_store(&rn.stop, 1);
    if (write(rn.wake_fd, &one, sizeof one) != sizeof one)
        log_msg(JARVIS_LOG_ERROR, "runner: cannot wake the handler: %s", strerror(errno));
    grace_end = ts_now_ms() + RN_GRACE_MS;
    for (;;) {
        int64_t left = grace_end - ts_now_ms();
        if (left <= 0) {
            *abandoned = 1;
            break;
        }
        if (wait_done(left))
            break;
    }
    if (!*abandoned) {
        json_object_put(job->outputs);
        job->outputs = NULL;
    }
    return outcome;
}
