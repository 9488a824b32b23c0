/*
 * faultinject.c - owns the test-only failures of the system calls a worker
 * makes to take connections and threads: an LD_PRELOAD library that makes
 * the calls JARVIS_TEST_FAULTS names fail, so the worker's error paths for
 * them (worker.c: a wait set that refuses a connection, a listening socket
 * that cannot be requeued, an accept that fails, no thread to be had) run
 * end to end against the real binary (faultinject_e2e.py). Such failures
 * (ENOMEM, ENOSPC at max_user_watches, EMFILE, EAGAIN at the thread limit)
 * cannot be caused on purpose from outside the process without starving
 * the whole machine. Never linked into the product.
 *
 * JARVIS_TEST_FAULTS is a comma-separated list of name or name=N:
 *   rcvtimeo            every setsockopt(SO_RCVTIMEO) fails ENOPROTOOPT
 *   conn_add=N          the first N epoll_ctl(ADD) of a FastCGI connection
 *                       (EPOLLONESHOT without EPOLLRDHUP) fail ENOMEM
 *   conn_mod            every epoll_ctl(MOD) fails ENOMEM
 *   listen_add_after=N  each epoll_ctl(ADD) of fd 0 (the listening socket)
 *                       after the first N fails ENOSPC
 *   accept_slow_emfile=MS  the first accept4 sleeps MS ms, then fails
 *                       EMFILE (the leader is taken over inside it)
 *   accept_emfile=N     the first N accept4 fail EMFILE
 *   accept_einval       every accept4 fails EINVAL
 *   threads_after=N     each pthread_create after the first N fails EAGAIN
 * A name not in this list makes every process that loads the library exit
 * 97 at once, so a typo cannot pass for a fault that never fired. Each
 * failure made writes one line "faultinject: <call> -> <errno name>" to
 * stderr, for the test to know it fired.
 *
 * The counters are per process: a worker that a pool starts again begins
 * from zero. Calls the list does not name pass through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The environment variable and its longest value read. */
#define FI_ENV "JARVIS_TEST_FAULTS"
#define FI_SPEC_MAX 512

/* Exit status of a process given a fault list it cannot read. */
#define FI_BAD_SPEC_EXIT 97

/* One fault: armed, its N, and how many matching calls it has seen. */
struct fi_fault {
    const char *name;
    int takes_n; /* name=N required */
    int armed;
    long n;
    atomic_long seen;
};

enum {
    FI_RCVTIMEO,
    FI_CONN_ADD,
    FI_CONN_MOD,
    FI_LISTEN_ADD_AFTER,
    FI_ACCEPT_SLOW_EMFILE,
    FI_ACCEPT_EMFILE,
    FI_ACCEPT_EINVAL,
    FI_THREADS_AFTER,
    FI_N
};

static struct fi_fault faults[FI_N] = {
    [FI_RCVTIMEO] = {"rcvtimeo", 0, 0, 0, 0},
    [FI_CONN_ADD] = {"conn_add", 1, 0, 0, 0},
    [FI_CONN_MOD] = {"conn_mod", 0, 0, 0, 0},
    [FI_LISTEN_ADD_AFTER] = {"listen_add_after", 1, 0, 0, 0},
    [FI_ACCEPT_SLOW_EMFILE] = {"accept_slow_emfile", 1, 0, 0, 0},
    [FI_ACCEPT_EMFILE] = {"accept_emfile", 1, 0, 0, 0},
    [FI_ACCEPT_EINVAL] = {"accept_einval", 0, 0, 0, 0},
    [FI_THREADS_AFTER] = {"threads_after", 1, 0, 0, 0},
};

static void bad_spec(const char *why, const char *what)
{
    dprintf(STDERR_FILENO, "faultinject: %s: %s\n", why, what);
    _exit(FI_BAD_SPEC_EXIT);
}

/* Arms the fault one list entry (name or name=N) names. */
static void arm_one(char *entry)
{
    char *eq = strchr(entry, '='), *end = NULL;
    long n = 0;
    int i;

    if (eq != NULL) {
        *eq = '\0';
        errno = 0;
        n = strtol(eq + 1, &end, 10);
        if (errno != 0 || end == eq + 1 || *end != '\0' || n < 0)
            bad_spec("not a count", eq + 1);
    }
    for (i = 0; i < FI_N; i++) {
        if (strcmp(entry, faults[i].name) != 0)
            continue;
        if ((eq != NULL) != faults[i].takes_n)
            bad_spec(faults[i].takes_n ? "needs =N" : "takes no =N", entry);
        faults[i].armed = 1;
        faults[i].n = n;
        return;
    }
    bad_spec("unknown fault", entry);
}

/* The next definitions (libc's, or a sanitizer's interceptors). */
static int (*next_setsockopt)(int, int, int, const void *, socklen_t);
static int (*next_epoll_ctl)(int, int, int, struct epoll_event *);
static int (*next_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*next_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* The next definition of name. */
static void *next_of(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);

    if (fn == NULL)
        bad_spec("no next definition", name);
    return fn;
}

/* Before main and before any thread, so the counts hold from the first
 * call and the pointers above are only read after. */
__attribute__((constructor)) static void fi_init(void)
{
    const char *env = getenv(FI_ENV);
    char spec[FI_SPEC_MAX], *save = NULL, *entry;

    next_setsockopt = next_of("setsockopt");
    next_epoll_ctl = next_of("epoll_ctl");
    next_accept4 = next_of("accept4");
    next_pthread_create = next_of("pthread_create");
    if (env == NULL || *env == '\0')
        return;
    if (strlen(env) >= sizeof spec)
        bad_spec("too long", FI_ENV);
    strcpy(spec, env);
    for (entry = strtok_r(spec, ",", &save); entry != NULL; entry = strtok_r(NULL, ",", &save))
        arm_one(entry);
}

/* 1 if this call is among the first n matching ones. */
static int first_n(struct fi_fault *f)
{
    return f->armed && atomic_fetch_add(&f->seen, 1) < f->n;
}

/* 1 if this call comes after the first n matching ones. */
static int after_n(struct fi_fault *f)
{
    return f->armed && atomic_fetch_add(&f->seen, 1) >= f->n;
}

/* Says a fault fired, sets errno, and returns -1 (the calls' failure). */
static int fired(const char *call, int err)
{
    dprintf(STDERR_FILENO, "faultinject: %s -> %s\n", call, strerrorname_np(err));
    errno = err;
    return -1;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    if (level == SOL_SOCKET && name == SO_RCVTIMEO && faults[FI_RCVTIMEO].armed)
        return fired("setsockopt(SO_RCVTIMEO)", ENOPROTOOPT);
    return next_setsockopt(fd, level, name, val, len);
}

int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
    /* A FastCGI connection's event: one-shot; the runner's watch of a
     * client (runner.c) also asks for EPOLLRDHUP. */
    if (op == EPOLL_CTL_ADD && ev != NULL && (ev->events & EPOLLONESHOT) &&
        !(ev->events & EPOLLRDHUP) && first_n(&faults[FI_CONN_ADD]))
        return fired("epoll_ctl(ADD, a connection)", ENOMEM);
    if (op == EPOLL_CTL_MOD && faults[FI_CONN_MOD].armed)
        return fired("epoll_ctl(MOD)", ENOMEM);
    if (op == EPOLL_CTL_ADD && fd == 0 && after_n(&faults[FI_LISTEN_ADD_AFTER]))
        return fired("epoll_ctl(ADD, the listening socket)", ENOSPC);
    return next_epoll_ctl(ep, op, fd, ev);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (faults[FI_ACCEPT_SLOW_EMFILE].armed &&
        atomic_fetch_add(&faults[FI_ACCEPT_SLOW_EMFILE].seen, 1) == 0) {
        dprintf(STDERR_FILENO, "faultinject: accept4 sleeps %ld ms\n",
                faults[FI_ACCEPT_SLOW_EMFILE].n);
        usleep((useconds_t)faults[FI_ACCEPT_SLOW_EMFILE].n * 1000);
        return fired("accept4", EMFILE);
    }
    if (faults[FI_ACCEPT_EINVAL].armed)
        return fired("accept4", EINVAL);
    if (first_n(&faults[FI_ACCEPT_EMFILE]))
        return fired("accept4", EMFILE);
    return next_accept4(fd, addr, len, flags);
}

int pthread_create(pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    /* pthread_create returns the error instead of setting errno. */
    if (after_n(&faults[FI_THREADS_AFTER])) {
        fired("pthread_create", EAGAIN);
        return EAGAIN;
    }
    return next_pthread_create(tid, attr, fn, arg);
}
