/*
 * runner.c - owns the watch over every run of the process: the watcher
 * thread, the path by which a cancel from another worker reaches it, and
 * the one-answer rule between a handler that returns and one abandoned.
 *
 * rn_run registers the run (under the watch lock: a list insert, and the
 * timerfd pulled earlier if this run's deadline, or its first look at the
 * client, comes first), checks once for a cancel or a spent deadline, and
 * calls the handler on the calling thread. The watcher sleeps in
 * epoll_wait on a kick eventfd, the timerfd and the runs' client fds; no
 * step of a run that finishes in time wakes it, and on the hot path rn_run
 * makes no system call. A run's client fd joins the epoll set only when
 * the watcher next wakes, at most RN_CLIENT_LOOK_MS after the run started
 * (a tick armed while some run's client is not watched yet): most runs are
 * over by then, and an epoll_ctl pair per run costs more than the run.
 * When it wakes it rechecks
 * every running run: a cancel (the run's check), the deadline, or a
 * hang-up (POLLRDHUP) stops the run: its stop flag is set, its wake eventfd
 * (the one cooperative handler waits poll) raised, its outcome recorded,
 * and its grace period started. A cancel on any worker (this one
 * included) flags the run table and sends SIGUSR2 to this process; every
 * thread blocks it, and the watcher reads it from a signalfd in its epoll
 * set (rn_init), so the signal wakes the watcher itself, with no thread in
 * between.
 *
 * Each run has an atomic state: RUNNING, then RETURNED (the calling thread,
 * once the handler is back) or ABANDONED (the watcher, once the grace has
 * passed), by compare-and-swap, so exactly one side answers the run.
 *
 * The watch (its lock, epoll set and list of running runs) is this
 * module's only process-wide state: a signal names a process, not a
 * thread, and one thread watches every run.
 */
#define _GNU_SOURCE
#include "runner.h"
#include "runner_test.h" /* rn_kick_all's prototype */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "timefmt.h"

/* The signal by which a cancel wakes the run's worker (rn_cancel sends
 * it, the watcher reads it from its signalfd: rn_init). */
#define RN_CANCEL_SIGNAL SIGUSR2

/* A run's client is watched for a hang-up from at most this long after
 * the run started (the watcher's tick; see the top of the file). */
#define RN_CLIENT_LOOK_MS 20

/* epoll data of the watcher's own fds; a run's client fd carries its seq. */
#define EV_KICK 0
#define EV_TIMER 1
#define EV_SIGNAL 2
#define FIRST_SEQ 3

enum { RS_IDLE = 0, RS_RUNNING, RS_RETURNED, RS_ABANDONED };

struct rn_runner {
    int wake_fd; /* watch -> handler: stop (cancel, deadline, hang-up) */
    atomic_int stop;
    atomic_int state; /* RS_*: RUNNING -> RETURNED or ABANDONED, by CAS */
    /* The rest under watch.lock while the run is in the watch. */
    uint64_t seq; /* this run's id in the epoll set */
    struct rn_watch w;
    int client_watched; /* w.client_fd is in the epoll set */
    int client_looked;  /* the watcher has looked at w.client_fd */
    int fired;          /* told to stop: outcome and grace_end hold */
    int raised;         /* wake_fd was written: drain it before the next run */
    enum rn_outcome outcome;
    int64_t grace_end;
    /* Called before this runner's thread may block (see rn_yield). */
    void (*yield)(void *arg);
    void *yield_arg;
    struct rn_runner *next;      /* in watch.running */
    struct rn_runner *abandoned; /* the watcher's list of runs to answer */
};

static struct {
    pthread_mutex_t lock;
    struct rn_runner *running; /* runs in the watch */
    struct rn_runner *dflt;
    uint64_t next_seq;
    int ep, kick_fd, timer_fd;
    int sig_fd;       /* SIGUSR2, once rn_init has run; else -1 */
    int64_t armed_ms; /* when the timerfd fires (wall-clock ms), 0: disarmed */
    int watching;     /* the watcher thread runs */
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER,
           .next_seq = FIRST_SEQ,
           .ep = -1,
           .kick_fd = -1,
           .timer_fd = -1,
           .sig_fd = -1};

/* Creates a detached thread that takes no signals: SIGUSR2 is the
 * watcher's signalfd's, the stop signals the worker's main thread's. 0, or
 * -1 with errno set. */
static int start_quiet_thread(void *(*fn)(void *))
{
    sigset_t all, old;
    pthread_t tid;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&tid, NULL, fn, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc; /* pthread_create returns its error, errno is not set */
        return -1;
    }
    pthread_detach(tid);
    return 0;
}

static void drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof v) == sizeof v)
        ;
}

/* Reads every SIGUSR2 queued on the signalfd: which run was canceled is in
 * the run table, not in the signal. */
static void drain_signals(int fd)
{
    struct signalfd_siginfo si;

    while (read(fd, &si, sizeof si) == sizeof si)
        ;
}

/* Arms the timerfd for ms (wall clock, 0: disarm). Call with the lock. */
static void arm_locked(int64_t ms)
{
    struct itimerspec it;

    if (ms == watch.armed_ms)
        return;
    memset(&it, 0, sizeof it);
    if (ms > 0) {
        it.it_value.tv_sec = ms / 1000;
        it.it_value.tv_nsec = (ms % 1000) * 1000000L;
    }
    if (timerfd_settime(watch.timer_fd, TFD_TIMER_ABSTIME, &it, NULL) != 0) {
        log_msg(JARVIS_LOG_ERROR, "runner: cannot arm the watch's timer: %s", strerror(errno));
        return;
    }
    watch.armed_ms = ms;
}

/* When the watch must next look at r (0: only when kicked). */
static int64_t next_look(const struct rn_runner *r, int64_t now)
{
    int64_t at;

    if (atomic_load(&r->state) != RS_RUNNING)
        return 0;
    if (r->fired)
        return r->w.abandon != NULL ? r->grace_end : 0;
    at = r->w.deadline_ms;
    if (r->w.client_fd >= 0 && !r->client_looked && (at == 0 || now + RN_CLIENT_LOOK_MS < at))
        at = now + RN_CLIENT_LOOK_MS;
    return at;
}

/* Tells r's handler to stop, for outcome. Call with the lock. */
static void fire_locked(struct rn_runner *r, enum rn_outcome outcome, int64_t now)
{
    const uint64_t one = 1;

    r->fired = 1;
    r->outcome = outcome;
    r->grace_end = now + RN_GRACE_MS;
    atomic_store(&r->stop, 1);
    r->raised = 1;
    if (write(r->wake_fd, &one, sizeof one) != sizeof one)
        log_msg(JARVIS_LOG_ERROR, "runner: cannot wake the handler: %s", strerror(errno));
}

/* Stops r if it was canceled or is out of time. 1 if it is stopped. */
static int look_locked(struct rn_runner *r, int64_t now)
{
    if (r->fired)
        return 1;
    if (r->w.check != NULL && r->w.check(r->w.check_arg))
        fire_locked(r, RN_CANCELED, now);
    else if (r->w.deadline_ms > 0 && now >= r->w.deadline_ms)
        fire_locked(r, RN_TIMEOUT, now);
    return r->fired;
}

/* Puts r's client fd in the epoll set, once. POLLIN is not asked of the
 * client: nginx sends nothing more on it. One-shot: a hang-up is reported
 * once. An fd epoll cannot watch (not a socket) is looked at once, here.
 * Call with the lock. */
static void look_client_locked(struct rn_runner *r, int64_t now)
{
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.u64 = r->seq};

    if (r->client_looked || r->w.client_fd < 0)
        return;
    r->client_looked = 1;
    r->client_watched = epoll_ctl(watch.ep, EPOLL_CTL_ADD, r->w.client_fd, &ev) == 0;
    if (!r->client_watched && !r->fired && rn_client_gone(r->w.client_fd))
        fire_locked(r, RN_CLIENT_GONE, now);
}

/* Takes r out of the watch. Call with the lock. */
static void unwatch_locked(struct rn_runner *r)
{
    struct rn_runner **p;

    for (p = &watch.running; *p != NULL; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    r->next = NULL;
    if (r->client_watched)
        epoll_ctl(watch.ep, EPOLL_CTL_DEL, r->w.client_fd, NULL);
    r->client_watched = 0;
}

static void *watcher_thread(void *arg)
{
    (void)arg;
    for (;;) {
        struct epoll_event ev[16];
        struct rn_runner *r, *next, *abandoned = NULL;
        int64_t now, first = 0;
        int n, i;

        n = epoll_wait(watch.ep, ev, 16, -1);
        if (n < 0 && errno != EINTR) {
            log_msg(JARVIS_LOG_ERROR, "runner: the watch cannot wait: %s", strerror(errno));
            usleep(10000);
        }
        pthread_mutex_lock(&watch.lock);
        now = ts_now_ms();
        for (i = 0; i < n; i++) {
            if (ev[i].data.u64 == EV_KICK) {
                drain(watch.kick_fd);
            } else if (ev[i].data.u64 == EV_SIGNAL) {
                drain_signals(watch.sig_fd);
            } else if (ev[i].data.u64 == EV_TIMER) {
                drain(watch.timer_fd);
                watch.armed_ms = 0; /* fired; rearmed below */
            } else {
                /* A hang-up; the run may have ended since (its seq is then
                 * gone from the list). */
                for (r = watch.running; r != NULL; r = r->next)
                    if (r->seq == ev[i].data.u64 && !r->fired &&
                        atomic_load(&r->state) == RS_RUNNING)
                        fire_locked(r, RN_CLIENT_GONE, now);
            }
        }
        for (r = watch.running; r != NULL; r = next) {
            int64_t at;
            next = r->next;
            if (atomic_load(&r->state) != RS_RUNNING)
                continue;
            look_client_locked(r, now);
            if (look_locked(r, now) && r->w.abandon != NULL && now >= r->grace_end) {
                int running = RS_RUNNING;
                if (atomic_compare_exchange_strong(&r->state, &running, RS_ABANDONED)) {
                    unwatch_locked(r);
                    r->abandoned = abandoned;
                    abandoned = r;
                    continue;
                }
            }
            at = next_look(r, now);
            if (at > 0 && (first == 0 || at < first))
                first = at;
        }
        arm_locked(first);
        pthread_mutex_unlock(&watch.lock);
        /* Answered outside the lock: the callback writes to the client and
         * may end the process. */
        for (r = abandoned; r != NULL; r = next) {
            next = r->abandoned;
            r->w.abandon(r->w.abandon_arg, r->outcome);
        }
    }
    return NULL;
}

/* Starts the watcher once. Call with the lock. 0 or -1, and then nothing
 * of it is left open: a later call starts over. */
static int start_watch_locked(void)
{
    struct epoll_event kick = {.events = EPOLLIN, .data.u64 = EV_KICK};
    struct epoll_event timer = {.events = EPOLLIN, .data.u64 = EV_TIMER};
    int ep, kick_fd = -1, timer_fd = -1, e;

    if (watch.watching)
        return 0;
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        goto fail;
    kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (kick_fd < 0)
        goto fail;
    timer_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    if (timer_fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, kick_fd, &kick) != 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &timer) != 0)
        goto fail;
    /* Set before the thread that reads them starts. */
    watch.ep = ep;
    watch.kick_fd = kick_fd;
    watch.timer_fd = timer_fd;
    if (start_quiet_thread(watcher_thread) != 0) {
        watch.ep = watch.kick_fd = watch.timer_fd = -1;
        goto fail;
    }
    watch.watching = 1;
    return 0;
fail:
    e = errno;
    if (timer_fd >= 0)
        close(timer_fd);
    if (kick_fd >= 0)
        close(kick_fd);
    if (ep >= 0)
        close(ep);
    log_msg(JARVIS_LOG_ERROR, "runner: cannot start the watcher: %s", strerror(e));
    return -1;
}

int rn_cancel(struct rt_table *rt, const char *node_run_id, pid_t *owner)
{
    return rt_cancel(rt, node_run_id, RN_CANCEL_SIGNAL, owner);
}

int rn_init(void)
{
    struct epoll_event sig = {.events = EPOLLIN, .data.u64 = EV_SIGNAL};
    sigset_t usr2;
    int rc = 0;

    pthread_mutex_lock(&watch.lock);
    if (start_watch_locked() != 0) {
        rc = -1;
        goto out;
    }
    if (watch.sig_fd >= 0)
        goto out;
    sigemptyset(&usr2);
    sigaddset(&usr2, RN_CANCEL_SIGNAL);
    if (pthread_sigmask(SIG_BLOCK, &usr2, NULL) != 0) {
        rc = -1;
        goto out;
    }
    watch.sig_fd = signalfd(-1, &usr2, SFD_NONBLOCK | SFD_CLOEXEC);
    if (watch.sig_fd < 0 || epoll_ctl(watch.ep, EPOLL_CTL_ADD, watch.sig_fd, &sig) != 0) {
        log_msg(JARVIS_LOG_ERROR, "runner: cannot listen for cancels: %s", strerror(errno));
        if (watch.sig_fd >= 0)
            close(watch.sig_fd);
        watch.sig_fd = -1;
        rc = -1;
    }
out:
    pthread_mutex_unlock(&watch.lock);
    return rc;
}

void rn_kick_all(void)
{
    const uint64_t one = 1;
    int fd;

    pthread_mutex_lock(&watch.lock);
    fd = watch.kick_fd;
    pthread_mutex_unlock(&watch.lock);
    if (fd >= 0 && write(fd, &one, sizeof one) != sizeof one && errno != EAGAIN)
        log_msg(JARVIS_LOG_ERROR, "runner: cannot kick the watch: %s", strerror(errno));
}

struct rn_runner *rn_runner_new(void)
{
    struct rn_runner *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->wake_fd < 0) {
        free(r);
        return NULL;
    }
    return r;
}

void rn_runner_free(struct rn_runner *r)
{
    if (r == NULL)
        return;
    close(r->wake_fd);
    free(r);
}

void rn_runner_set_yield(struct rn_runner *r, void (*fn)(void *arg), void *arg)
{
    r->yield = fn;
    r->yield_arg = arg;
}

void rn_yield(struct rn_runner *r)
{
    if (r != NULL && r->yield != NULL)
        r->yield(r->yield_arg);
}

struct rn_runner *rn_runner_default(void)
{
    struct rn_runner *r;

    pthread_mutex_lock(&watch.lock);
    r = watch.dflt;
    pthread_mutex_unlock(&watch.lock);
    if (r != NULL)
        return r;
    r = rn_runner_new();
    pthread_mutex_lock(&watch.lock);
    if (watch.dflt == NULL) {
        watch.dflt = r;
    } else {
        pthread_mutex_unlock(&watch.lock);
        rn_runner_free(r);
        pthread_mutex_lock(&watch.lock);
    }
    r = watch.dflt;
    pthread_mutex_unlock(&watch.lock);
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

/* Puts r in the watch and looks at it once. 1 if it is already stopped,
 * 0 if not, -1 if there is no watch. */
static int watch_run(struct rn_runner *r, const struct rn_watch *w)
{
    int64_t now = ts_now_ms(), at;
    int stopped;

    pthread_mutex_lock(&watch.lock);
    if (start_watch_locked() != 0) {
        pthread_mutex_unlock(&watch.lock);
        return -1;
    }
    r->seq = watch.next_seq++;
    r->w = *w;
    r->fired = 0;
    r->outcome = RN_RETURNED;
    r->client_watched = 0;
    r->client_looked = 0;
    atomic_store(&r->state, RS_RUNNING);
    r->next = watch.running;
    watch.running = r;
    /* A cancel that came before the run was in the watch found no run to
     * kick: look now. */
    stopped = look_locked(r, now);
    at = next_look(r, now);
    if (at > 0 && (watch.armed_ms == 0 || at < watch.armed_ms))
        arm_locked(at);
    pthread_mutex_unlock(&watch.lock);
    return stopped;
}

enum rn_outcome rn_run(struct rn_runner *r, struct rn_job *job, const struct rn_watch *w)
{
    enum rn_outcome outcome;
    int running = RS_RUNNING, stopped;

    atomic_store(&r->stop, 0);
    if (r->raised) {
        drain(r->wake_fd); /* a stop left from an earlier run */
        r->raised = 0;
    }
    stopped = watch_run(r, w);
    if (stopped < 0) {
        job->rc = JARVIS_ERR_HANDLER;
        return RN_RETURNED;
    }
    if (!stopped)
        job->rc = job->handler(job->ctx, job->inputs, &job->outputs);
    if (!atomic_compare_exchange_strong(&r->state, &running, RS_RETURNED)) {
        /* Abandoned: the watcher has answered the run, and the request,
         * the exchange and this runner are no longer ours to touch. The
         * worker ends once its other requests are answered. */
        for (;;)
            pause();
    }
    pthread_mutex_lock(&watch.lock);
    unwatch_locked(r);
    outcome = r->fired ? r->outcome : RN_RETURNED;
    pthread_mutex_unlock(&watch.lock);
    if (outcome != RN_RETURNED) {
        json_object_put(job->outputs);
        job->outputs = NULL;
    }
    return outcome;
}
