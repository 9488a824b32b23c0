/*
 * runtable.c - owns the shared run table (see runtable.h): its file layout,
 * its creation by the first worker, locking, and every slot transition.
 *
 * Liveness of an owner is its pid plus the process start time read from
 * /proc, so a recycled pid never keeps a dead worker's slot. Waiters for a
 * concurrency permit sleep on a futex in the shared header that releases
 * and cancels bump; they also wake every RT_WAIT_SLICE_MS to notice permits
 * held by workers that died without releasing them.
 */
#define _GNU_SOURCE
#include "runtable.h"
#include "runtable_test.h" /* the hooks' prototypes */

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h" /* DSP_MAX_ID */
#include "log.h"
#include "timefmt.h"

#define RT_MAGIC 0x314254524a52414aULL /* "JARJRTB1" */
/* 7: the metrics region (RT_METRICS_BYTES) after the blob. */
#define RT_VERSION 7

enum slot_state { S_FREE = 0, S_QUEUED, S_RUNNING, S_TOMB };

struct rt_slot {
    uint32_t state; /* enum slot_state, under the lock */
    _Atomic uint32_t cancel;
    uint32_t hash;
    pid_t owner;
    uint64_t owner_start;
    int64_t since_ms;
    int64_t deadline_ms; /* runs: 0 = none; tombstones: expiry */
    char id[DSP_MAX_ID + 1];
};

struct rt_header {
    uint64_t magic; /* written last: a table without it is re-initialised */
    uint32_t version;
    uint32_t nslots;
    uint32_t slot_size;
    _Atomic uint32_t wake_seq; /* futex word: bumped by release and cancel */
    uint32_t running;          /* slots in S_RUNNING, under the lock; recounted
                                * from the slots after a lock holder died */
    uint32_t handoff;          /* permits a release handed to a woken waiter,
                                * under the lock: not for a newcomer to take */
    uint32_t waiters;          /* executes waiting for a permit, under the
                                * lock: a release with none makes no futex
                                * call (a waiter that died leaves it high,
                                * which costs only wake calls) */
    /* The pool's shared blob (the last JWKS document), under the lock. */
    uint32_t blob_len;
    int64_t blob_ms;         /* when it was stored, 0: never */
    _Atomic int64_t gate_ms; /* the last time rt_gate let a caller through */
    pthread_mutex_t lock;    /* process-shared, robust */
};

struct rt_table {
    struct rt_header *h;
    struct rt_slot *slots;
    uint32_t *tags;  /* tags[i] == tag_of(slots[i].hash) while slot i is taken */
    unsigned nslots; /* checked at open and kept here: the header is shared,
                      * and a size read from it could be anything */
    size_t map_len;
    pid_t self;
    uint64_t self_start;
    int64_t tomb_ttl_ms;
};

#define HEADER_SPACE ((sizeof(struct rt_header) + 63) & ~(size_t)63)
/* The tag index between the header and the slots: one word per slot,
 * the slot's id hash (tag_of) while it is taken. A lookup by id compares
 * 4 KiB of tags instead of reading a state in each of 1024 slots of about
 * 300 bytes (a cache miss each): the scan was a tenth of an echo execute. */
#define TAGS_SPACE(n) (((size_t)(n) * sizeof(uint32_t) + 63) & ~(size_t)63)
#define SLOTS_OFFSET(n) (HEADER_SPACE + TAGS_SPACE(n))

/* The start time of pid into *start: 0; -ENOENT when the process is gone;
 * another negative errno when it could not be read (out of fds, ...). */
static int proc_start_time(pid_t pid, uint64_t *start_out)
{
    char path[64], buf[1024], *p;
    unsigned long long start = 0;
    FILE *f;
    int field;
    size_t n;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT || errno == ESRCH ? -ENOENT : -(errno ? errno : EIO);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and ')': fields start after the last ')'. */
    p = strrchr(buf, ')');
    if (n == 0)
        return -ENOENT; /* the process went between open and read */
    if (p == NULL)
        return -EIO;
    /* p + 2 is field 3 (state); starttime is field 22. */
    for (p += 2, field = 3; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (sscanf(p, "%llu", &start) != 1)
        return -EIO;
    *start_out = start;
    return 0;
}

uint64_t rt_proc_start_time(pid_t pid)
{
    uint64_t start = 0;

    return proc_start_time(pid, &start) == 0 ? start : 0;
}

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

/* An owner is dead only on proof: no such pid, or a pid now used by a
 * process started at another time. A /proc read that fails for any other
 * reason (out of fds, memory) counts as alive: freeing a live run's slot
 * would hand its id, cancel flag and permit to another run. */
int rt_proc_alive(pid_t pid, uint64_t start_want)
{
    uint64_t start = 0;
    int rc;

    if (pid <= 1 || (kill(pid, 0) != 0 && errno == ESRCH))
        return 0;
    rc = proc_start_time(pid, &start);
    if (rc == -ENOENT)
        return 0;
    return rc != 0 || start == start_want;
}

static int owner_alive(const struct rt_table *t, const struct rt_slot *s)
{
    if (s->owner == t->self)
        return s->owner_start == t->self_start;
    return rt_proc_alive(s->owner, s->owner_start);
}

static unsigned count_state(const struct rt_table *t, uint32_t state)
{
    unsigned i, n = 0;

    for (i = 0; i < t->nslots; i++)
        n += t->slots[i].state == state;
    return n;
}

static int lock(struct rt_table *t)
{
    int rc = pthread_mutex_lock(&t->h->lock);

    if (rc == EOWNERDEAD) {
        /* A worker died holding the lock: slot writes are single stores of
         * state last, so the slots are consistent; the running count may
         * not be (it is stored beside a state), so it is counted again. */
        log_msg(JARVIS_LOG_WARN, "run table: previous lock holder died; recovering");
        t->h->running = count_state(t, S_RUNNING);
        t->h->handoff = 0;
        pthread_mutex_consistent(&t->h->lock);
        rc = 0;
    }
    if (rc != 0)
        log_msg(JARVIS_LOG_ERROR, "run table: lock failed: %s", strerror(rc));
    return rc;
}

static void unlock(struct rt_table *t)
{
    pthread_mutex_unlock(&t->h->lock);
}

/* Call with the lock held. */
static void free_slot(struct rt_table *t, struct rt_slot *s)
{
    if (s->state == S_RUNNING && t->h->running > 0)
        t->h->running--;
    s->state = S_FREE;
    atomic_store(&s->cancel, 0);
    s->id[0] = '\0';
    t->tags[s - t->slots] = 0;
}

/* How many waiters it woke. */
static long wake(struct rt_table *t, int n)
{
    atomic_fetch_add(&t->h->wake_seq, 1);
    return syscall(SYS_futex, &t->h->wake_seq, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Cancels and reclaims: the waiter concerned may be any of them. */
static void wake_all(struct rt_table *t)
{
    wake(t, INT32_MAX);
}

/* A permit came free: one waiter is enough (no herd on every release). */
static void wake_one(struct rt_table *t)
{
    wake(t, 1);
}

static int init_header(struct rt_header *h, unsigned nslots)
{
    pthread_mutexattr_t a;
    int rc;

    memset(h, 0, HEADER_SPACE);
    if ((rc = pthread_mutexattr_init(&a)) != 0)
        return rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(&h->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0)
        return rc;
    h->version = RT_VERSION;
    h->nslots = nslots;
    h->slot_size = sizeof(struct rt_slot);
    atomic_thread_fence(memory_order_release);
    h->magic = RT_MAGIC;
    return 0;
}

/* The folder of path (absolute, shorter than RT_MAX_PATH: rt_open checked
 * it) into dir. */
static void parent_dir(const char *path, char dir[RT_MAX_PATH])
{
    char *slash;

    memcpy(dir, path, strlen(path) + 1);
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0'; /* "/" itself */
    else
        *slash = '\0';
}

/*
 * The folder of the table must be ours and closed to others: whoever can
 * write in it can swap the file. A missing last component is created 0700
 * (the default path's own folder), or with create 0 only looked at: the
 * folder above it must let us create it. 0, or -1 with err set.
 */
static int check_dir(const char *path, int create, char *err, size_t errlen)
{
    char dir[RT_MAX_PATH], above[RT_MAX_PATH];
    struct stat st;

    if (strlen(path) >= sizeof dir || path[0] != '/') {
        snprintf(err, errlen, "run table path must be absolute and under %d bytes", RT_MAX_PATH);
        return -1;
    }
    parent_dir(path, dir);
    if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "run table folder %s: %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) != 0) {
        if (!create && errno == ENOENT) {
            parent_dir(dir, above);
            if (access(above, W_OK | X_OK) == 0)
                return 0;
            snprintf(err, errlen, "run table folder %s is missing and cannot be made in %s: %s",
                     dir, above, strerror(errno));
            return -1;
        }
        snprintf(err, errlen, "run table folder %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        snprintf(err, errlen,
                 "run table folder %s must be a real folder of uid %ld that no other user can "
                 "write to",
                 dir, (long)geteuid());
        return -1;
    }
    return 0;
}

/* The file must be what we create: a regular file of ours, mode 0600, one
 * link, of the layout's size. 0, or -1 with err set. */
static int check_file(int fd, const char *path, size_t len, unsigned nslots, char *err,
                      size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "run table %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
        st.st_nlink != 1) {
        snprintf(err, errlen,
                 "run table %s is not a private file of uid %ld (mode 0600, one link); remove "
                 "it while the pool is stopped",
                 path, (long)geteuid());
        return -1;
    }
    if ((size_t)st.st_size != len) {
        snprintf(err, errlen,
                 "run table %s has another size than %u slots need; every worker must use the "
                 "same JARVIS_RUN_TABLE_SLOTS (remove the file while the pool is stopped)",
                 path, nslots);
        return -1;
    }
    return 0;
}

/* Lays a new table out in fd (size and header). 0, or -1 with err set. */
static int lay_out(int fd, const char *name, size_t len, unsigned nslots, char *err, size_t errlen)
{
    void *map;
    int e;

    if (ftruncate(fd, (off_t)len) != 0 ||
        (map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        snprintf(err, errlen, "run table %s: %s", name, strerror(errno));
        return -1;
    }
    memset(map, 0, len);
    e = init_header(map, nslots);
    munmap(map, len);
    if (e != 0) {
        snprintf(err, errlen, "run table %s: mutex: %s", name, strerror(e));
        return -1;
    }
    return 0;
}

/*
 * Creates the table as a nameless file (O_TMPFILE) in its folder, lays it
 * out, and only then gives it its name: no worker ever sees a half-made
 * table or a second name, and of two workers creating at once one link
 * wins and the other opens the winner's. Where O_TMPFILE is not supported
 * a temporary name is linked, then removed. 0 (created, or path appeared
 * meanwhile), or -1 with err set.
 */
static int create_table(const char *path, size_t len, unsigned nslots, char *err, size_t errlen)
{
    char dir[RT_MAX_PATH], tmp[RT_MAX_PATH + 32], proc[64];
    int fd, rc = -1;

    parent_dir(path, dir); /* check_dir bounded path */
    fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
    if (fd >= 0) {
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (lay_out(fd, path, len, nslots, err, errlen) == 0) {
            if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 || errno == EEXIST)
                rc = 0;
            else
                snprintf(err, errlen, "run table %s: %s", path, strerror(errno));
        }
        close(fd);
        return rc;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
        snprintf(err, errlen, "run table %s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.%ld.new", path, (long)getpid());
    unlink(tmp); /* ours, from an earlier start of this pid */
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "run table %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (lay_out(fd, tmp, len, nslots, err, errlen) == 0) {
        if (link(tmp, path) == 0 || errno == EEXIST)
            rc = 0;
        else
            snprintf(err, errlen, "run table %s: %s", path, strerror(errno));
    }
    close(fd);
    unlink(tmp);
    return rc;
}

/* Where the blob ends and the metrics' region starts (64-byte aligned). */
#define METRICS_OFFSET(n)                                                                          \
    ((SLOTS_OFFSET(n) + (size_t)(n) * sizeof(struct rt_slot) + RT_BLOB_MAX + 63) & ~(size_t)63)

/* The bytes of a table of nslots slots. */
static size_t table_len(unsigned nslots)
{
    return METRICS_OFFSET(nslots) + RT_METRICS_BYTES;
}

static int check_slots(unsigned nslots, char *err, size_t errlen)
{
    if (nslots >= RT_MIN_SLOTS && nslots <= RT_MAX_SLOTS)
        return 0;
    snprintf(err, errlen, "run table slots must be %d to %d", RT_MIN_SLOTS, RT_MAX_SLOTS);
    return -1;
}

/* The header must be of this build's layout and slot count. 0, or -1 with
 * err set. */
static int check_layout(const struct rt_header *h, const char *path, unsigned nslots, char *err,
                        size_t errlen)
{
    if (h->magic == RT_MAGIC && h->version == RT_VERSION && h->nslots == nslots &&
        h->slot_size == sizeof(struct rt_slot))
        return 0;
    snprintf(err, errlen,
             "run table %s has another layout (version or slots); remove it while the pool "
             "is stopped",
             path);
    return -1;
}

int rt_check(const char *path, unsigned nslots, char *err, size_t errlen)
{
    struct rt_header h;
    int fd, rc = -1;

    if (check_slots(nslots, err, errlen) != 0 || check_dir(path, 0, err, errlen) != 0)
        return -1;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0; /* the first worker creates it */
    if (fd < 0) {
        snprintf(err, errlen, "run table %s: %s", path, strerror(errno));
        return -1;
    }
    /* A copy of the header is enough to read its plain fields. */
    if (check_file(fd, path, table_len(nslots), nslots, err, errlen) == 0) {
        if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h)
            rc = check_layout(&h, path, nslots, err, errlen);
        else
            snprintf(err, errlen, "run table %s: cannot read its header", path);
    }
    close(fd);
    return rc;
}

struct rt_table *rt_open(const char *path, unsigned nslots, char *err, size_t errlen)
{
    size_t len = table_len(nslots);
    struct rt_table *t = NULL;
    void *map = MAP_FAILED;
    int fd = -1, tries;

    if (check_slots(nslots, err, errlen) != 0 || check_dir(path, 1, err, errlen) != 0)
        goto fail;
    /* O_NOFOLLOW: a symlink planted at path is refused, never followed. */
    for (tries = 0; fd < 0 && tries < 3; tries++) {
        int e;
        fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        e = errno;
        if (fd >= 0)
            break;
        if (e != ENOENT) {
            snprintf(err, errlen, "run table %s: %s", path, strerror(e));
            goto fail;
        }
        if (create_table(path, len, nslots, err, errlen) != 0)
            goto fail;
    }
    if (fd < 0) {
        snprintf(err, errlen, "run table %s: cannot be created", path);
        goto fail;
    }
    if (check_file(fd, path, len, nslots, err, errlen) != 0)
        goto fail;
    map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "run table %s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    if (check_layout(map, path, nslots, err, errlen) != 0)
        goto fail;
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    t->h = map;
    t->tags = (uint32_t *)((char *)map + HEADER_SPACE);
    t->slots = (struct rt_slot *)((char *)map + SLOTS_OFFSET(nslots));
    t->nslots = nslots;
    t->map_len = len;
    t->self = getpid();
    t->self_start = rt_proc_start_time(t->self);
    t->tomb_ttl_ms = RT_TOMBSTONE_MS;
    close(fd);
    return t;
fail:
    if (map != MAP_FAILED)
        munmap(map, len);
    if (fd >= 0)
        close(fd);
    return NULL;
}

void rt_close(struct rt_table *t)
{
    if (t == NULL)
        return;
    munmap(t->h, t->map_len);
    free(t);
}

/* Owners already looked at by one scan: a pool has few workers, and each
 * look at another one reads /proc. */
#define RT_OWNER_MEMO 16

struct owner_memo {
    pid_t pid[RT_OWNER_MEMO];
    uint64_t start[RT_OWNER_MEMO];
    int alive[RT_OWNER_MEMO];
    unsigned n;
};

static int owner_alive_memo(const struct rt_table *t, const struct rt_slot *s, struct owner_memo *m)
{
    unsigned i;
    int alive;

    for (i = 0; i < m->n; i++)
        if (m->pid[i] == s->owner && m->start[i] == s->owner_start)
            return m->alive[i];
    alive = owner_alive(t, s);
    if (m->n < RT_OWNER_MEMO) {
        m->pid[m->n] = s->owner;
        m->start[m->n] = s->owner_start;
        m->alive[m->n++] = alive;
    }
    return alive;
}

/* Frees dead owners' runs and expired tombstones. Call with the lock held. */
static unsigned reclaim_locked(struct rt_table *t, int64_t now)
{
    struct owner_memo memo = {.n = 0};
    unsigned i, n = 0;

    for (i = 0; i < t->nslots; i++) {
        struct rt_slot *s = &t->slots[i];
        if (s->state > S_TOMB) {
            /* Not a state of ours: nothing a worker wrote. */
            log_msg(JARVIS_LOG_WARN, "run table: slot %u had an unknown state; freed", i);
            s->state = S_FREE;
            t->tags[i] = 0;
            n++;
            continue;
        }
        if ((s->state == S_TOMB && s->deadline_ms <= now) ||
            ((s->state == S_QUEUED || s->state == S_RUNNING) && !owner_alive_memo(t, s, &memo))) {
            if (s->state != S_TOMB)
                log_msg(JARVIS_LOG_WARN, "run table: reclaimed run %s of dead worker %ld", s->id,
                        (long)s->owner);
            free_slot(t, s);
            n++;
        }
    }
    return n;
}

unsigned rt_reclaim(struct rt_table *t)
{
    unsigned n;

    if (lock(t) != 0)
        return 0;
    n = reclaim_locked(t, ts_now_ms());
    unlock(t);
    if (n > 0)
        wake_all(t);
    return n;
}

/* A taken slot's tag: never 0, the tag of a free slot. Written before the
 * slot's state when it is taken and cleared after when it is freed, so a
 * writer that dies between the two leaves a tag on a free slot (skipped by
 * its state), never a taken slot without its tag. */
static uint32_t tag_of(uint32_t h)
{
    return h != 0 ? h : 1;
}

static int matches(const struct rt_slot *s, uint32_t h, const char *id)
{
    return s->hash == h && strcmp(s->id, id) == 0;
}

/* A slot for a new entry: a free one or an expired tombstone, else one a
 * dead owner left. A live tombstone is never taken: a cancel must hold for
 * its whole TTL, or enough junk cancels would let a canceled id run. Call
 * with the lock held; -1 when every slot holds a live run or tombstone. */
static int find_space(struct rt_table *t, int64_t now)
{
    int i;

    for (i = 0; i < (int)t->nslots; i++) {
        struct rt_slot *s = &t->slots[i];
        if (s->state == S_FREE || (s->state == S_TOMB && s->deadline_ms <= now))
            return i;
    }
    if (reclaim_locked(t, now) == 0)
        return -1;
    return find_space(t, now);
}

int rt_claim(struct rt_table *t, const char *id, int64_t deadline_ms)
{
    uint32_t h = hash_id(id);
    int64_t now = ts_now_ms();
    int i, rc = RT_OK;
    struct rt_slot *s;

    if (strlen(id) > DSP_MAX_ID || lock(t) != 0)
        return RT_ERROR;
    for (i = 0; i < (int)t->nslots; i++) {
        s = &t->slots[i];
        if (t->tags[i] != tag_of(h) || s->state == S_FREE || !matches(s, h, id))
            continue;
        if (s->state == S_TOMB) {
            if (s->deadline_ms > now)
                rc = RT_PRECANCELED;
            free_slot(t, s);
        } else if (owner_alive(t, s)) {
            rc = RT_DUPLICATE;
        } else {
            free_slot(t, s);
        }
    }
    if (rc != RT_OK)
        goto out;
    i = find_space(t, now);
    if (i < 0) {
        rc = RT_FULL;
        goto out;
    }
    s = &t->slots[i];
    atomic_store(&s->cancel, 0);
    t->tags[i] = tag_of(h); /* before the state: see tag_of */
    s->hash = h;
    s->owner = t->self;
    s->owner_start = t->self_start;
    s->since_ms = now;
    s->deadline_ms = deadline_ms;
    memcpy(s->id, id, strlen(id) + 1);
    s->state = S_QUEUED;
    rc = i;
out:
    unlock(t);
    return rc;
}

/* Frees the permits of dead owners, recounts and returns the running
 * runs. Call with the lock held; it reads /proc, so only after a wait
 * that no release ended. */
static unsigned recount_running(struct rt_table *t)
{
    struct owner_memo memo = {.n = 0};
    unsigned i;

    for (i = 0; i < t->nslots; i++) {
        struct rt_slot *s = &t->slots[i];
        if (s->state == S_RUNNING && !owner_alive_memo(t, s, &memo))
            free_slot(t, s);
    }
    t->h->running = count_state(t, S_RUNNING);
    t->h->handoff = 0; /* a woken waiter may have died with it */
    return t->h->running;
}

/* 1 when the wait ended with no wake-up (its time ran out). */
static int futex_wait_ms(_Atomic uint32_t *word, uint32_t seen, int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    /* EAGAIN (the word moved) and EINTR (a signal) mean: look again. */
    return syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0) != 0 && errno == ETIMEDOUT;
}

/* For a waiter that leaves without a permit: a release may have woken it
 * alone, so pass that wake on; with no waiter left, a handed-over permit is
 * free for anyone. Call with the lock. */
static void pass_on_locked(struct rt_table *t)
{
    if (t->h->waiters == 0 || wake(t, 1) <= 0)
        t->h->handoff = 0;
}

int rt_acquire_permit(struct rt_table *t, int slot, unsigned cap, int64_t deadline_ms,
                      rt_abort_fn abort, const void *abort_arg)
{
    struct rt_slot *s = &t->slots[slot];
    int check_owners = 0, waited = 0, rc;

    for (;;) {
        uint32_t seen;
        int64_t now, wait;

        if (lock(t) != 0)
            return RT_TIMEOUT;
        if (waited && t->h->waiters > 0)
            t->h->waiters--;
        if (atomic_load(&s->cancel)) {
            rc = RT_CANCELED;
            break;
        }
        /* A permit a release handed over goes to a waiter, never to a
         * newcomer: else the newcomer, already on a CPU, always beats the
         * waiter the release woke, and waiters starve. */
        if (waited && t->h->handoff > 0) {
            t->h->handoff--;
            s->state = S_RUNNING;
            t->h->running++;
            unlock(t);
            return RT_OK;
        }
        if (cap == 0 || t->h->running + t->h->handoff < cap ||
            (check_owners && recount_running(t) < cap)) {
            s->state = S_RUNNING;
            t->h->running++;
            unlock(t);
            return RT_OK;
        }
        seen = atomic_load(&t->h->wake_seq);
        t->h->waiters++;
        unlock(t);
        waited = 1; /* counted in waiters until the next lock */
        rc = RT_ABORTED;
        if (abort != NULL && abort(abort_arg))
            goto gone;
        now = ts_now_ms();
        rc = RT_TIMEOUT;
        if (deadline_ms > 0 && now >= deadline_ms)
            goto gone;
        wait = RT_WAIT_SLICE_MS;
        if (deadline_ms > 0 && deadline_ms - now < wait)
            wait = deadline_ms - now;
        /* A slice with no wake-up: suspect a permit holder that died. */
        check_owners = futex_wait_ms(&t->h->wake_seq, seen, wait);
    }
    pass_on_locked(t);
    unlock(t);
    return rc;
gone:
    if (lock(t) == 0) {
        if (t->h->waiters > 0)
            t->h->waiters--;
        pass_on_locked(t);
        unlock(t);
    } else {
        wake_one(t);
    }
    return rc;
}

void rt_release(struct rt_table *t, int slot)
{
    int held;

    if (lock(t) != 0)
        return;
    held = t->slots[slot].state == S_RUNNING;
    free_slot(t, &t->slots[slot]);
    /* Woken under the lock, so the permit is the woken waiter's before any
     * newcomer can look. */
    if (held && t->h->waiters > 0 && wake(t, 1) > 0)
        t->h->handoff++;
    unlock(t);
}

/*
 * Sends signo to the owner of s and to no other process: a pidfd pins the
 * process, and its start time then proves it is the owner and not a
 * process that got a dead owner's pid. Call with the lock held, so the slot
 * cannot change meanwhile. 0, or -1 when the owner could not be signalled.
 */
static int signal_owner(const struct rt_table *t, const struct rt_slot *s, int signo)
{
    uint64_t start = 0;
    int pfd, rc = -1;

    if (s->owner == t->self)
        return kill(t->self, signo);
    pfd = (int)syscall(SYS_pidfd_open, s->owner, 0);
    if (pfd < 0) {
        /* A kernel before 5.3: the start-time check under the lock is all
         * there is (the window is the two syscalls below). */
        if (errno != ENOSYS || proc_start_time(s->owner, &start) != 0 || start != s->owner_start)
            return -1;
        return kill(s->owner, signo);
    }
    if (proc_start_time(s->owner, &start) == 0 && start == s->owner_start)
        rc = (int)syscall(SYS_pidfd_send_signal, pfd, signo, NULL, 0);
    close(pfd);
    return rc;
}

int rt_cancel(struct rt_table *t, const char *id, int signo, pid_t *owner)
{
    uint32_t h = hash_id(id);
    int64_t now = ts_now_ms();
    int i, found = 0;

    *owner = 0;

    if (strlen(id) > DSP_MAX_ID || lock(t) != 0)
        return RT_ERROR;
    for (i = 0; i < (int)t->nslots && !found; i++) {
        struct rt_slot *s = &t->slots[i];
        if (t->tags[i] != tag_of(h) || s->state == S_FREE || !matches(s, h, id))
            continue;
        if (s->state == S_TOMB) {
            s->deadline_ms = now + t->tomb_ttl_ms;
            found = -1;
        } else if (owner_alive(t, s)) {
            atomic_store(&s->cancel, 1);
            if (signo == 0 || signal_owner(t, s, signo) == 0)
                *owner = s->owner;
            found = 1;
        }
    }
    if (found == 0) {
        i = find_space(t, now);
        if (i >= 0) {
            struct rt_slot *s = &t->slots[i];
            t->tags[i] = tag_of(h);
            s->hash = h;
            s->owner = t->self;
            s->owner_start = t->self_start;
            s->since_ms = now;
            s->deadline_ms = now + t->tomb_ttl_ms;
            memcpy(s->id, id, strlen(id) + 1);
            s->state = S_TOMB;
        } else {
            found = RT_FULL;
        }
    }
    unlock(t);
    if (found == 1)
        wake_all(t);
    if (found == -1)
        return RT_CANCEL_RENEWED;
    return found == 1 ? RT_CANCEL_HIT : found == RT_FULL ? RT_FULL : RT_CANCEL_NEW;
}

void rt_set_tombstone_ttl(struct rt_table *t, int64_t ms)
{
    t->tomb_ttl_ms = ms;
}

int rt_cancel_requested(const struct rt_table *t, int slot)
{
    return atomic_load(&t->slots[slot].cancel) != 0;
}

int rt_stats(struct rt_table *t, struct rt_stats *st)
{
    int64_t now = ts_now_ms();
    unsigned i;

    memset(st, 0, sizeof *st);
    if (lock(t) != 0)
        return -1;
    /* Count only live runs: a worker killed mid-run left its slot behind. */
    if (reclaim_locked(t, now) > 0)
        wake_all(t);
    st->slots = t->nslots;
    for (i = 0; i < t->nslots; i++) {
        const struct rt_slot *s = &t->slots[i];
        if (s->state == S_RUNNING)
            st->running++;
        else if (s->state == S_QUEUED)
            st->queued++;
        else if (s->state == S_TOMB && s->deadline_ms > now)
            st->tombstones++;
    }
    unlock(t);
    return 0;
}

size_t rt_debug_map_len(const struct rt_table *t)
{
    return t->map_len;
}

size_t rt_debug_slot_offset(const struct rt_table *t, unsigned i)
{
    return SLOTS_OFFSET(t->nslots) + (size_t)i * sizeof(struct rt_slot);
}

int rt_gate(struct rt_table *t, int64_t now_ms, int64_t min_interval_ms)
{
    int64_t last = atomic_load(&t->h->gate_ms);

    /* One winner per interval across the pool: a compare-and-swap, no lock. */
    while (last == 0 || now_ms - last >= min_interval_ms) {
        if (atomic_compare_exchange_weak(&t->h->gate_ms, &last, now_ms))
            return 1;
    }
    return 0;
}

void *rt_metrics_area(struct rt_table *t)
{
    return (char *)t->h + METRICS_OFFSET(t->nslots);
}

static char *blob_area(const struct rt_table *t)
{
    return (char *)t->slots + (size_t)t->nslots * sizeof(struct rt_slot);
}

int rt_blob_store(struct rt_table *t, const char *data, size_t len, int64_t when_ms)
{
    if (len > RT_BLOB_MAX || lock(t) != 0)
        return -1;
    /* Only newer wins: two workers that fetched at once keep the later. */
    if (when_ms >= t->h->blob_ms) {
        memcpy(blob_area(t), data, len);
        t->h->blob_len = (uint32_t)len;
        t->h->blob_ms = when_ms;
    }
    unlock(t);
    return 0;
}

int rt_blob_newer(struct rt_table *t, int64_t have_ms, char **data, size_t *len, int64_t *when_ms)
{
    char *copy = NULL;
    size_t n;
    int rc = 0;

    *data = NULL;
    if (lock(t) != 0)
        return -1;
    if (t->h->blob_ms > have_ms && t->h->blob_len <= RT_BLOB_MAX) {
        n = t->h->blob_len;
        copy = malloc(n + 1);
        if (copy == NULL) {
            rc = -1;
        } else {
            memcpy(copy, blob_area(t), n);
            copy[n] = '\0';
            *data = copy;
            *len = n;
            *when_ms = t->h->blob_ms;
            rc = 1;
        }
    }
    unlock(t);
    return rc;
}
