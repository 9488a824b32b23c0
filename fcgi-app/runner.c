/*
 * runner.c - owns the handler threads, the watch over each, and the path
 * by which a cancel from another worker reaches a watch.
 *
 * A serving thread hands a job to its runner's handler thread (mutex +
 * condvar), then polls three fds: the job's done eventfd, its kick eventfd
 * and the client's connection (POLLRDHUP). A cancel on another worker flags
 * the run table and sends SIGUSR2 to this process; the listener thread
 * started by rn_init takes it (sigwaitinfo: every other thread blocks it)
 * and writes every registered runner's kick fd, so each watch rechecks its
 * own run's flag. On cancel, deadline or hang-up the watch raises the wake
 * eventfd that cooperative handler waits poll, and gives the handler a
 * grace period.
 *
 * The list of runners is this module's only process-wide state: a signal
 * names a process, not a thread, so something must know every watch in it.
 */
#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "timefmt.h"

struct rn_runner {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct rn_job *job; /* the job handed over, NULL when idle */
    int quit;           /* rn_runner_free: the handler thread ends */
    int started;        /* the handler thread exists */
    pthread_t tid;
    int done_fd; /* handler thread -> watch: the job returned */
    int wake_fd; /* watch -> handler: stop (cancel, deadline, hang-up) */
    int kick_fd; /* listener -> watch: a cancel reached this process */
    atomic_int stop;
    struct rn_runner *next; /* in the process list */
};

static struct {
    pthread_mutex_t lock;
    struct rn_runner *head;
    struct rn_runner *dflt;
    int listening;
} procs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *listener_thread(void *arg)
{
    sigset_t usr2;
    int sig;

    (void)arg;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    for (;;) {
        sig = sigwaitinfo(&usr2, NULL);
        if (sig == SIGUSR2)
            rn_kick_all();
    }
    return NULL;
}

/* Creates a thread that takes no signals: they are the listener's and the
 * worker's main thread's. */
static int start_quiet_thread(pthread_t *tid, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(tid, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int rn_init(void)
{
    sigset_t usr2;
    pthread_t tid;
    int rc = 0;

    pthread_mutex_lock(&procs.lock);
    if (procs.listening)
        goto out;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    if (pthread_sigmask(SIG_BLOCK, &usr2, NULL) != 0 ||
        start_quiet_thread(&tid, listener_thread, NULL) != 0) {
        rc = -1;
        goto out;
    }
    pthread_detach(tid);
    procs.listening = 1;
out:
    pthread_mutex_unlock(&procs.lock);
    return rc;
}

void rn_kick_all(void)
{
    const uint64_t one = 1;
    struct rn_runner *r;

    pthread_mutex_lock(&procs.lock);
    for (r = procs.head; r != NULL; r = r->next)
        if (write(r->kick_fd, &one, sizeof one) != sizeof one && errno != EAGAIN)
            log_msg(JARVIS_LOG_ERROR, "runner: cannot kick a watch: %s", strerror(errno));
    pthread_mutex_unlock(&procs.lock);
}

static void *handler_thread(void *arg)
{
    struct rn_runner *r = arg;
    const uint64_t one = 1;

    for (;;) {
        struct rn_job *job;

        pthread_mutex_lock(&r->lock);
        while (r->job == NULL && !r->quit)
            pthread_cond_wait(&r->cond, &r->lock);
        job = r->job;
        pthread_mutex_unlock(&r->lock);
        if (job == NULL)
            return NULL;
        job->rc = job->handler(job->ctx, job->inputs, &job->outputs);
        pthread_mutex_lock(&r->lock);
        r->job = NULL;
        pthread_mutex_unlock(&r->lock);
        if (write(r->done_fd, &one, sizeof one) != sizeof one)
            log_msg(JARVIS_LOG_ERROR, "runner: cannot signal completion: %s", strerror(errno));
    }
}

struct rn_runner *rn_runner_new(void)
{
    struct rn_runner *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->done_fd < 0 || r->wake_fd < 0 || r->kick_fd < 0) {
        if (r->done_fd >= 0)
            close(r->done_fd);
        if (r->wake_fd >= 0)
            close(r->wake_fd);
        if (r->kick_fd >= 0)
            close(r->kick_fd);
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    pthread_mutex_lock(&procs.lock);
    r->next = procs.head;
    procs.head = r;
    pthread_mutex_unlock(&procs.lock);
    return r;
}

void rn_runner_free(struct rn_runner *r)
{
    struct rn_runner **p;

    if (r == NULL)
        return;
    pthread_mutex_lock(&procs.lock);
    for (p = &procs.head; *p != NULL; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(&procs.lock);
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->quit = 1;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->tid, NULL);
    }
    close(r->done_fd);
    close(r->wake_fd);
    close(r->kick_fd);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

struct rn_runner *rn_runner_default(void)
{
    struct rn_runner *r;

    pthread_mutex_lock(&procs.lock);
    r = procs.dflt;
    pthread_mutex_unlock(&procs.lock);
    if (r != NULL)
        return r;
    r = rn_runner_new();
    pthread_mutex_lock(&procs.lock);
    if (procs.dflt == NULL) {
        procs.dflt = r;
    } else {
        pthread_mutex_unlock(&procs.lock);
        rn_runner_free(r);
        pthread_mutex_lock(&procs.lock);
    }
    r = procs.dflt;
    pthread_mutex_unlock(&procs.lock);
    return r;
}

int rn_wake_fd(const struct rn_runner *r)
{
    return r->wake_fd;
}

int rn_stop_requested(const struct rn_runner *r)
{
    return atomic_load(&r->stop);
}

int rn_client_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};

    if (fd < 0)
        return 0;
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof v) == sizeof v)
        ;
}

/*
 * Waits up to timeout_ms (-1: forever) for the job to return, a kick or the
 * client going away. Returns 1 when the job returned, -1 when the client
 * went away, 0 otherwise (timeout, kick, signal: look again).
 */
static int wait_done(struct rn_runner *r, int client_fd, int64_t timeout_ms)
{
    /* POLLIN is not asked of the client: nginx sends nothing more on it,
     * and a level-triggered POLLIN would spin. Hang-up is always reported. */
    struct pollfd p[3] = {{.fd = r->done_fd, .events = POLLIN},
                          {.fd = r->kick_fd, .events = POLLIN},
                          {.fd = client_fd, .events = POLLRDHUP}};
    int wait = timeout_ms < 0 ? -1 : timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms;
    uint64_t v;

    if (poll(p, client_fd >= 0 ? 3 : 2, wait) <= 0)
        return 0;
    if ((p[0].revents & POLLIN) && read(r->done_fd, &v, sizeof v) == sizeof v)
        return 1;
    if (p[1].revents & POLLIN)
        drain(r->kick_fd);
    if (client_fd >= 0 && (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)))
        return -1;
    return 0;
}

/* Waits only for the job to return, up to timeout_ms. 1 returned, 0 not. */
static int wait_returned(struct rn_runner *r, int64_t timeout_ms)
{
    struct pollfd p = {.fd = r->done_fd, .events = POLLIN};
    uint64_t v;

    if (poll(&p, 1, timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms) <= 0)
        return 0;
    return read(r->done_fd, &v, sizeof v) == sizeof v;
}

enum rn_outcome rn_run(struct rn_runner *r, struct rn_job *job, const struct rn_watch *w,
                       int *abandoned)
{
    enum rn_outcome outcome = RN_RETURNED;
    const uint64_t one = 1;
    int64_t grace_end;

    *abandoned = 0;
    if (!r->started) {
        if (start_quiet_thread(&r->tid, handler_thread, r) != 0) {
            log_msg(JARVIS_LOG_ERROR, "runner: cannot start a handler thread");
            job->rc = JARVIS_ERR_HANDLER;
            return RN_RETURNED;
        }
        r->started = 1;
    }
    atomic_store(&r->stop, 0);
    drain(r->wake_fd); /* a stop left from an earlier run */
    drain(r->done_fd);
    pthread_mutex_lock(&r->lock);
    r->job = job;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);

    for (;;) {
        int64_t left = -1;
        int rc;

        if (w->check != NULL && w->check(w->check_arg)) {
            outcome = RN_CANCELED;
            break;
        }
        if (w->deadline_ms > 0) {
            left = w->deadline_ms - ts_now_ms();
            if (left <= 0) {
                outcome = RN_TIMEOUT;
                break;
            }
        }
        rc = wait_done(r, w->client_fd, left);
        if (rc == 1)
            return RN_RETURNED;
        if (rc < 0) {
            outcome = RN_CLIENT_GONE;
            break;
        }
    }
    /* Tell the handler to stop, then give it a moment to do so. */
    atomic_store(&r->stop, 1);
    if (write(r->wake_fd, &one, sizeof one) != sizeof one)
        log_msg(JARVIS_LOG_ERROR, "runner: cannot wake the handler: %s", strerror(errno));
    grace_end = ts_now_ms() + RN_GRACE_MS;
    for (;;) {
        int64_t left = grace_end - ts_now_ms();
        if (left <= 0) {
            *abandoned = 1;
            break;
        }
        if (wait_returned(r, left))
            break;
    }
    if (!*abandoned) {
        json_object_put(job->outputs);
        job->outputs = NULL;
    }
    return outcome;
}
