/*
 * test_runtable.c - the shared run table: opening and layout checks, claims
 * and releases, a full table and tombstone eviction, slots and permits of
 * owners that died (also one killed at a random point of claim/release,
 * possibly holding the robust mutex), tombstones and their expiry, the
 * cancel flag seen across processes, the concurrency cap with its waits,
 * and process start times.
 *
 * Every table lives in one mkdtemp folder removed by the suite cleanup;
 * every child process is waited for with a bound (and SIGKILLed past it),
 * every permit wait has a deadline, so no test can hang.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "runtable.h"
#include "runtable_test.h"
#include "testutil.h"
#include "timefmt.h"

/* RT_WAIT_SLICE_MS in runtable.c: how often a permit waiter looks for
 * permits held by dead owners. */
#define SLICE_MS 100
/* The longest any child of these tests may live. */
#define CHILD_MAX_MS 10000

static char dir[64];

static int64_t mono_ms(void)
{
    return ts_mono_us() / 1000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void table_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* Opens dir/name; fails the test (fatally) if it cannot. */
static struct rt_table *open_table(const char *name, unsigned nslots)
{
    char path[128], err[256] = "";
    struct rt_table *t;

    table_path(path, sizeof path, name);
    t = rt_open(path, nslots, err, sizeof err);
    if (t == NULL)
        fprintf(stderr, "\n  rt_open %s: %s\n", path, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

/* 1 when every slot is free (after reclaiming the dead ones). */
static int table_empty(struct rt_table *t)
{
    struct rt_stats st;

    rt_reclaim(t);
    rt_stats(t, &st);
    return st.running == 0 && st.queued == 0 && st.tombstones == 0;
}

/*
 * Waits up to timeout_ms for child pid; past it the child is SIGKILLed.
 * Returns its exit status, 128 + the signal that ended it, or -1 on a
 * timeout (the child is reaped in every case).
 */
static int wait_child(pid_t pid, long timeout_ms)
{
    int64_t until = mono_ms() + timeout_ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (mono_ms() >= until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(2);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/* In a child: opens the table at dir/name on its own, as another worker. */
static struct rt_table *child_open(const char *name, unsigned nslots)
{
    char path[128], err[256];

    table_path(path, sizeof path, name);
    return rt_open(path, nslots, err, sizeof err);
}

/* Reads one int from fd within timeout_ms; 0 or -1. */
static int read_int(int fd, int *v, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    return read(fd, v, sizeof *v) == (ssize_t)sizeof *v ? 0 : -1;
}

static int suite_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/jarvis-rt-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
    return tu_remove_tree(dir);
}

/* ---- open ---- */

/* Zeroes the table's magic: a file of the right size that is no table. */
static void erase_magic(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pwrite(fd, "\0\0\0\0\0\0\0\0", 8, 0), 8);
    close(fd);
}

static void test_open_refusals(void)
{
    char path[128], err[256] = "";

    table_path(path, sizeof path, "refused.tbl");
    CU_ASSERT_PTR_NULL(rt_open(path, 0, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "run table slots must be 1 to 65536");
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(rt_open(path, RT_MAX_SLOTS + 1, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "run table slots must be 1 to 65536");
    /* Refused before the file is touched. */
    CU_ASSERT_EQUAL(access(path, F_OK), -1);

    table_path(path, sizeof path, "no/such/dir.tbl");
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(rt_open(path, 4, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "run table "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ENOENT)));
    rt_close(NULL);
}

static void test_open_shared(void)
{
    struct rt_table *t1, *t2, *t3;
    struct rt_stats st;
    char path[128], err[512] = "";

    t1 = open_table("open.tbl", 4);
    /* A fresh file is initialised: nothing in use. */
    rt_stats(t1, &st);
    CU_ASSERT_EQUAL(st.running, 0);
    CU_ASSERT_EQUAL(st.queued, 0);
    CU_ASSERT_EQUAL(st.tombstones, 0);
    CU_ASSERT_EQUAL(rt_claim(t1, "x", 0), 0);
    CU_ASSERT_EQUAL(rt_claim(t1, "y", 0), 1);

    /* A second handle on the same file sees the same slots. */
    t2 = open_table("open.tbl", 4);
    CU_ASSERT_EQUAL(rt_claim(t2, "x", 0), RT_DUPLICATE);
    rt_stats(t2, &st);
    CU_ASSERT_EQUAL(st.queued, 2);
    rt_release(t2, 0);
    CU_ASSERT_EQUAL(rt_claim(t1, "x", 0), 0);

    /* Another slot count is another layout. */
    table_path(path, sizeof path, "open.tbl");
    t3 = rt_open(path, 8, err, sizeof err);
    CU_ASSERT_PTR_NULL(t3);
    rt_close(t3);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "has another size than 8 slots need"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "JARVIS_RUN_TABLE_SLOTS"));
    rt_close(t1);
    rt_close(t2);

    /* The slots outlive the handles: they live in the file. */
    t1 = open_table("open.tbl", 4);
    CU_ASSERT_EQUAL(rt_claim(t1, "x", 0), RT_DUPLICATE);
    rt_close(t1);

    /* A file without the magic is not a table of ours: refused, never
     * re-initialised under live workers (a creator cannot die half way: a
     * table is only linked into place once laid out). */
    erase_magic(path);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(rt_open(path, 4, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "has another layout"));
    unlink(path);
    t1 = open_table("open.tbl", 4);
    CU_ASSERT_TRUE(table_empty(t1));
    rt_close(t1);
}

/* What another local user could plant at the path, each refused at open
 * with a one-line reason; a missing folder is made private. */
static void test_open_hostile(void)
{
    char path[192], other[192], sub[160], err[512];
    struct rt_table *t;
    struct stat st;
    int fd;

    /* A symlink at the path (to a file of ours) is never followed. */
    table_path(other, sizeof other, "target.tbl");
    t = open_table("target.tbl", 2);
    rt_close(t);
    table_path(path, sizeof path, "link.tbl");
    CU_ASSERT_EQUAL_FATAL(symlink(other, path), 0);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(rt_open(path, 2, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ELOOP)));
    unlink(path);

    /* A hard link to it: two names, refused. */
    CU_ASSERT_EQUAL_FATAL(link(other, path), 0);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(rt_open(path, 2, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a private file"));
    unlink(path);

    /* A file created first by someone else, mode 0666. */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(fchmod(fd, 0666), 0);
    close(fd);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(rt_open(path, 2, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a private file"));
    /* ... or owned by another uid (root can make one). */
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL(chmod(path, 0600), 0);
        CU_ASSERT_EQUAL(chown(path, 65534, 65534), 0);
        err[0] = '\0';
        CU_ASSERT_PTR_NULL(rt_open(path, 2, err, sizeof err));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a private file"));
    }
    unlink(path);

    /* A folder others can write to: they could swap the file. */
    snprintf(sub, sizeof sub, "%s/open-dir", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
    CU_ASSERT_EQUAL(chmod(sub, 0777), 0);
    snprintf(path, sizeof path, "%s/rt", sub);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(rt_open(path, 2, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "that no other user can write to"));
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    CU_ASSERT_EQUAL(chmod(sub, 0700), 0);

    /* A missing last folder is created, private. */
    snprintf(path, sizeof path, "%s/made/rt", dir);
    err[0] = '\0';
    t = rt_open(path, 2, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(t);
    rt_close(t);
    snprintf(sub, sizeof sub, "%s/made", dir);
    CU_ASSERT_EQUAL(stat(sub, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
}

/* --check-config's look at the table: what rt_open would refuse, refused
 * without creating anything; what it would create, fine. */
static void test_check(void)
{
    char path[192], sub[160], err[512];
    struct rt_table *t;

    /* Missing folder and file: fine, and still missing afterwards. */
    snprintf(sub, sizeof sub, "%s/check-new", dir);
    snprintf(path, sizeof path, "%s/rt", sub);
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), 0);
    CU_ASSERT_EQUAL(access(sub, F_OK), -1);
    /* A missing folder that could not be made. */
    snprintf(path, sizeof path, "%s/no/such/rt", dir);
    err[0] = '\0';
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is missing and cannot be made in"));
    err[0] = '\0';
    CU_ASSERT_EQUAL(rt_check("relative/rt", 8, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "run table path must be absolute and under 1024 bytes");
    CU_ASSERT_EQUAL(rt_check(path, 0, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "run table slots must be 1 to 65536");

    /* A folder others can write to. */
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0777), 0);
    CU_ASSERT_EQUAL(chmod(sub, 0777), 0);
    snprintf(path, sizeof path, "%s/rt", sub);
    err[0] = '\0';
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "that no other user can write to"));
    CU_ASSERT_EQUAL(chmod(sub, 0700), 0);
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), 0);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);

    /* A table there: of this slot count fine, of another refused. */
    t = rt_open(path, 8, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), 0);
    err[0] = '\0';
    CU_ASSERT_EQUAL(rt_check(path, 4, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "has another size than 4 slots need"));
    rt_close(t);
    /* Of the right size but not a table of this build. */
    erase_magic(path);
    err[0] = '\0';
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "has another layout"));
    /* A file others may read. */
    CU_ASSERT_EQUAL(chmod(path, 0644), 0);
    err[0] = '\0';
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a private file"));
    unlink(path);
    /* A symlink is never followed. */
    CU_ASSERT_EQUAL(symlink("/dev/null", path), 0);
    err[0] = '\0';
    CU_ASSERT_EQUAL(rt_check(path, 8, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ELOOP)));
    unlink(path);
}

/* Workers starting at once: every one opens the same table, laid out once. */
static void test_open_race(void)
{
    enum { N = 6 };
    char path[128];
    pid_t kids[N];
    struct rt_table *t;
    struct rt_stats st;
    int i, ok = 0;

    table_path(path, sizeof path, "race.tbl");
    for (i = 0; i < N; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char err[256];
            struct rt_table *c = rt_open(path, 8, err, sizeof err);
            char id[16];
            snprintf(id, sizeof id, "race-%d", i);
            /* Each leaves one tombstone: all must land in one table. */
            _exit(c != NULL && rt_cancel(c, id, 0, &(pid_t){0}) == 0 ? 0 : 1);
        }
    }
    for (i = 0; i < N; i++) {
        int status = 0;
        if (kids[i] > 0 && waitpid(kids[i], &status, 0) == kids[i] && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            ok++;
    }
    CU_ASSERT_EQUAL(ok, N);
    t = open_table("race.tbl", 8);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, N);
    rt_close(t);
}

/* Slots written by something that is not a worker are never trusted. */
static void test_bad_slots(void)
{
    struct rt_table *t = open_table("bad.tbl", 2);
    char path[128];
    struct rt_stats st;
    pid_t owner = 0;
    void *map;
    int fd;
    uint32_t *words;

    CU_ASSERT_EQUAL(rt_claim(t, "a", 0), 0);
    CU_ASSERT_EQUAL(rt_claim(t, "b", 0), 1);
    /* Through a second mapping, as another process would: slot 0 gets a
     * state no worker writes, slot 1 an owner of pid 1. The slot layout's
     * first word is the state; the owner pid is its fourth. */
    table_path(path, sizeof path, "bad.tbl");
    fd = open(path, O_RDWR | O_CLOEXEC);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    map = mmap(NULL, rt_debug_map_len(t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    CU_ASSERT_TRUE_FATAL(map != MAP_FAILED);
    words = (uint32_t *)((char *)map + rt_debug_slot_offset(t, 0));
    words[0] = 77;
    words = (uint32_t *)((char *)map + rt_debug_slot_offset(t, 1));
    words[3] = 1;
    munmap(map, rt_debug_map_len(t));
    /* Both are freed, and a cancel of b signals no one. */
    CU_ASSERT_EQUAL(rt_cancel(t, "b", SIGUSR2, &owner), 0);
    CU_ASSERT_EQUAL(owner, 0);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.queued, 0);
    CU_ASSERT_EQUAL(st.tombstones, 1);
    rt_close(t);
}

/* ---- claim and release ---- */

static void test_claim_release(void)
{
    struct rt_table *t = open_table("claim.tbl", 4);
    char id[DSP_MAX_ID + 2];
    struct rt_stats st;
    pid_t owner = 0;
    int a, b;

    a = rt_claim(t, "a", 0);
    CU_ASSERT_EQUAL(a, 0);
    CU_ASSERT_EQUAL(rt_claim(t, "a", 0), RT_DUPLICATE);
    rt_release(t, a);
    CU_ASSERT_EQUAL(rt_claim(t, "a", 0), 0);

    /* DSP_MAX_ID bytes is the longest id. */
    memset(id, 'i', DSP_MAX_ID);
    id[DSP_MAX_ID] = '\0';
    b = rt_claim(t, id, 0);
    CU_ASSERT_EQUAL(b, 1);
    CU_ASSERT_EQUAL(rt_claim(t, id, 0), RT_DUPLICATE);
    id[DSP_MAX_ID] = 'i';
    id[DSP_MAX_ID + 1] = '\0';
    CU_ASSERT_EQUAL(rt_claim(t, id, 0), RT_ERROR);
    CU_ASSERT_EQUAL(rt_cancel(t, id, 0, &owner), RT_ERROR);

    /* Claimed runs are queued until they hold a permit; cap 0 is no cap. */
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.queued, 2);
    CU_ASSERT_EQUAL(st.running, 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, 0, 0, 0, NULL, NULL), RT_OK);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, b, 0, 0, NULL, NULL), RT_OK);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.queued, 0);
    CU_ASSERT_EQUAL(st.running, 2);
    rt_release(t, 0);
    rt_release(t, b);
    CU_ASSERT_TRUE(table_empty(t));
    CU_ASSERT_EQUAL(rt_reclaim(t), 0);
    rt_close(t);
}

/* ---- a full table ---- */

static void test_full_table(void)
{
    struct rt_table *t = open_table("full.tbl", 2);
    struct rt_stats st;
    pid_t owner = 0;

    CU_ASSERT_EQUAL(rt_claim(t, "a", 0), 0);
    CU_ASSERT_EQUAL(rt_claim(t, "b", 0), 1);
    CU_ASSERT_EQUAL(rt_claim(t, "c", 0), RT_FULL);
    rt_release(t, 0);
    CU_ASSERT_EQUAL(rt_claim(t, "c", 0), 0);
    rt_release(t, 0);
    rt_release(t, 1);
    CU_ASSERT_TRUE(table_empty(t));

    /* Two tombstones fill the table. They hold for their whole TTL: a new
     * run finds no room (503), and so does a third cancel - before, junk
     * cancels evicted a victim's tombstone and the victim then ran. */
    CU_ASSERT_EQUAL(rt_cancel(t, "victim", 0, &owner), 0);
    CU_ASSERT_EQUAL(rt_cancel(t, "junk", 0, &owner), 0);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 2);
    CU_ASSERT_EQUAL(rt_claim(t, "r1", 0), RT_FULL);
    CU_ASSERT_EQUAL(rt_cancel(t, "junk2", 0, &owner), RT_FULL);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 2);
    /* The canceled id, arriving later, is still canceled. */
    CU_ASSERT_EQUAL(rt_claim(t, "victim", 0), RT_PRECANCELED);
    /* Its tombstone was consumed: room for one run now. */
    CU_ASSERT_EQUAL(rt_claim(t, "r1", 0), 0);
    rt_release(t, 0);
    /* Expired tombstones give way. */
    rt_set_tombstone_ttl(t, 20);
    CU_ASSERT_EQUAL(rt_cancel(t, "short", 0, &owner), 0);
    sleep_ms(30);
    rt_set_tombstone_ttl(t, RT_TOMBSTONE_MS);
    CU_ASSERT_TRUE(rt_claim(t, "r2", 0) >= 0);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 1); /* junk */
    CU_ASSERT_EQUAL(st.queued, 1);
    rt_close(t);
}

/* ---- dead owners ---- */

static void test_dead_owner_slot(void)
{
    struct rt_table *t = open_table("dead.tbl", 4);
    struct rt_stats st;
    pid_t pid;
    int slot;

    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        struct rt_table *c = child_open("dead.tbl", 4);
        /* Claims two runs and dies without releasing either. */
        _exit(c != NULL && rt_claim(c, "d1", 0) >= 0 && rt_claim(c, "d2", 0) >= 0 ? 0 : 1);
    }
    CU_ASSERT_EQUAL(wait_child(pid, CHILD_MAX_MS), 0);

    /* The dead owner's id is free again, not a duplicate. */
    slot = rt_claim(t, "d1", 0);
    CU_ASSERT_TRUE(slot >= 0);
    /* Its other run is reclaimed by whoever looks. */
    CU_ASSERT_EQUAL(rt_reclaim(t), 1);
    CU_ASSERT_EQUAL(rt_reclaim(t), 0);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.queued, 1);
    CU_ASSERT_EQUAL(st.running, 0);
    if (slot >= 0)
        rt_release(t, slot);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

/* The byte offset of a slot's owner start time: after its state, cancel
 * flag, hash and owner pid (four 32-bit words). */
#define SLOT_OWNER_START_OFFSET 16

/* Writes slot i's owner and owner start time through a second mapping of
 * the table file, as another process would. */
static void forge_owner(struct rt_table *t, const char *name, int i, pid_t owner, uint64_t start)
{
    char path[128];
    char *slot;
    void *map;
    int fd;

    table_path(path, sizeof path, name);
    fd = open(path, O_RDWR | O_CLOEXEC);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    map = mmap(NULL, rt_debug_map_len(t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    CU_ASSERT_TRUE_FATAL(map != MAP_FAILED);
    slot = (char *)map + rt_debug_slot_offset(t, (unsigned)i);
    memcpy(slot + 3 * sizeof(uint32_t), &owner, sizeof owner);
    memcpy(slot + SLOT_OWNER_START_OFFSET, &start, sizeof start);
    munmap(map, rt_debug_map_len(t));
}

/*
 * A live pid is no proof of life: a slot whose pid is alive (ours, or a
 * child's) but whose start time is another process's was left by a dead
 * worker whose pid has been reused, and is reclaimed.
 */
static void test_pid_reuse(void)
{
    struct rt_table *t = open_table("reuse.tbl", 4);
    uint64_t self_start = rt_proc_start_time(getpid()), child_start;
    int mine, theirs;
    pid_t child;

    child = fork();
    CU_ASSERT_TRUE_FATAL(child >= 0);
    if (child == 0) {
        sleep_ms(CHILD_MAX_MS);
        _exit(0);
    }
    child_start = rt_proc_start_time(child);
    mine = rt_claim(t, "mine", 0);
    theirs = rt_claim(t, "theirs", 0);
    CU_ASSERT_TRUE_FATAL(mine >= 0 && theirs >= 0 && self_start != 0 && child_start != 0);
    /* "mine": our pid, an earlier start; "theirs": the live child's */
    forge_owner(t, "reuse.tbl", mine, getpid(), self_start - 1);
    forge_owner(t, "reuse.tbl", theirs, child, child_start);
    CU_ASSERT_EQUAL(rt_reclaim(t), 1);
    CU_ASSERT_EQUAL(rt_claim(t, "theirs", 0), RT_DUPLICATE);
    /* the child's pid with another start time */
    forge_owner(t, "reuse.tbl", theirs, child, child_start + 1);
    CU_ASSERT_EQUAL(rt_reclaim(t), 1);
    CU_ASSERT_TRUE(table_empty(t));
    kill(child, SIGKILL);
    CU_ASSERT_EQUAL(wait_child(child, CHILD_MAX_MS), 128 + SIGKILL);
    rt_close(t);
}

static void test_dead_owner_permit(void)
{
    struct rt_table *t = open_table("deadpermit.tbl", 4);
    struct rt_stats st;
    int64_t t0, took;
    pid_t pid;
    int slot;

    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        struct rt_table *c = child_open("deadpermit.tbl", 4);
        int s = c != NULL ? rt_claim(c, "p1", 0) : -1;
        /* Takes the only permit and dies holding it. */
        _exit(s >= 0 && rt_acquire_permit(c, s, 1, 0, NULL, NULL) == RT_OK ? 0 : 1);
    }
    CU_ASSERT_EQUAL(wait_child(pid, CHILD_MAX_MS), 0);

    slot = rt_claim(t, "p2", 0);
    CU_ASSERT_TRUE_FATAL(slot >= 0);
    t0 = mono_ms();
    CU_ASSERT_EQUAL(rt_acquire_permit(t, slot, 1, ts_now_ms() + 3000, NULL, NULL), RT_OK);
    took = mono_ms() - t0;
    /* Found within a slice or two, not at the deadline. */
    CU_ASSERT_TRUE(took < 2 * SLICE_MS + 300);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.running, 1);
    CU_ASSERT_EQUAL(st.queued, 0);
    rt_release(t, slot);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

/* In a child: claims and releases until killed (or CHILD_MAX_MS passed). */
static void churn(const char *name)
{
    struct rt_table *c = child_open(name, 8);
    int64_t until = mono_ms() + CHILD_MAX_MS;
    unsigned n = 0;

    if (c == NULL)
        _exit(2);
    while (mono_ms() < until) {
        int s = rt_claim(c, "churn", 0);
        if (s < 0)
            _exit(3);
        if ((n++ & 1) && rt_acquire_permit(c, s, 0, 0, NULL, NULL) != RT_OK)
            _exit(4);
        rt_release(c, s);
    }
    _exit(5);
}

/* In a child: uses the table as a worker would after the kill. */
static void check_usable(const char *name)
{
    struct rt_table *c = child_open(name, 8);
    int s;

    if (c == NULL)
        _exit(2);
    s = rt_claim(c, "churn", 0); /* a dead owner's id, if it was claimed */
    if (s < 0)
        _exit(3);
    if (rt_acquire_permit(c, s, 1, ts_now_ms() + 3000, NULL, NULL) != RT_OK)
        _exit(4);
    rt_release(c, s);
    rt_reclaim(c);
    _exit(0);
}

static void test_killed_while_churning(void)
{
    struct rt_table *t = open_table("kill.tbl", 8);
    int round;

    for (round = 0; round < 6; round++) {
        pid_t pid = fork(), checker;
        CU_ASSERT_TRUE_FATAL(pid >= 0);
        if (pid == 0)
            churn("kill.tbl");
        sleep_ms(20 + 7 * round);
        kill(pid, SIGKILL);
        CU_ASSERT_EQUAL(wait_child(pid, CHILD_MAX_MS), 128 + SIGKILL);
        /* A wedged lock would block forever: check from a bounded child. */
        checker = fork();
        CU_ASSERT_TRUE_FATAL(checker >= 0);
        if (checker == 0)
            check_usable("kill.tbl");
        CU_ASSERT_EQUAL(wait_child(checker, 5000), 0);
    }
    CU_ASSERT_TRUE(table_empty(t));
    CU_ASSERT_EQUAL(rt_claim(t, "churn", 0), 0);
    rt_release(t, 0);
    rt_close(t);
}

/* ---- tombstones ---- */

static void test_tombstones(void)
{
    struct rt_table *t = open_table("tomb.tbl", 4);
    struct rt_stats st;
    pid_t owner = 0;
    int slot;

    CU_ASSERT_EQUAL(rt_cancel(t, "ghost", 0, &owner), 0);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 1);
    CU_ASSERT_EQUAL(st.queued + st.running, 0);
    /* A second cancel refreshes the tombstone, it does not add one. */
    CU_ASSERT_EQUAL(rt_cancel(t, "ghost", 0, &owner), RT_CANCEL_RENEWED);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 1);
    CU_ASSERT_EQUAL(rt_claim(t, "ghost", 0), RT_PRECANCELED);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 0);
    CU_ASSERT_EQUAL(st.queued, 0);
    /* Consumed: the next execute of that id runs. */
    slot = rt_claim(t, "ghost", 0);
    CU_ASSERT_TRUE(slot >= 0);
    CU_ASSERT_EQUAL(rt_cancel_requested(t, slot), 0);
    rt_release(t, slot);

    /* Expiry. */
    rt_set_tombstone_ttl(t, 50);
    CU_ASSERT_EQUAL(rt_cancel(t, "short", 0, &owner), 0);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 1);
    sleep_ms(100);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 0);
    slot = rt_claim(t, "short", 0);
    CU_ASSERT_TRUE(slot >= 0);
    rt_release(t, slot);
    CU_ASSERT_EQUAL(rt_cancel(t, "short2", 0, &owner), 0);
    sleep_ms(100);
    CU_ASSERT_EQUAL(rt_reclaim(t), 1);
    /* An expired tombstone found by the claim itself (nothing reclaimed it
     * first) lets its id run. */
    CU_ASSERT_EQUAL(rt_cancel(t, "short3", 0, &owner), 0);
    sleep_ms(100);
    slot = rt_claim(t, "short3", 0);
    CU_ASSERT_TRUE(slot >= 0);
    if (slot >= 0)
        rt_release(t, slot);
    /* A repeated cancel restarts the TTL: set with 50 ms, refreshed with
     * the default, the tombstone outlives its first expiry. */
    CU_ASSERT_EQUAL(rt_cancel(t, "again", 0, &owner), 0);
    rt_set_tombstone_ttl(t, RT_TOMBSTONE_MS);
    CU_ASSERT_EQUAL(rt_cancel(t, "again", 0, &owner), RT_CANCEL_RENEWED);
    sleep_ms(100);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 1);
    CU_ASSERT_EQUAL(rt_claim(t, "again", 0), RT_PRECANCELED);

    /* A cancel of a live run flags it instead; the flag stops a permit
     * wait before it starts and dies with the slot. */
    slot = rt_claim(t, "live", 0);
    CU_ASSERT_TRUE_FATAL(slot >= 0);
    CU_ASSERT_EQUAL(rt_cancel_requested(t, slot), 0);
    owner = 0;
    CU_ASSERT_EQUAL(rt_cancel(t, "live", 0, &owner), 1);
    CU_ASSERT_EQUAL(owner, getpid());
    CU_ASSERT_EQUAL(rt_cancel_requested(t, slot), 1);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.tombstones, 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, slot, 0, 0, NULL, NULL), RT_CANCELED);
    rt_release(t, slot);
    slot = rt_claim(t, "live", 0);
    CU_ASSERT_TRUE(slot >= 0);
    CU_ASSERT_EQUAL(rt_cancel_requested(t, slot), 0);
    rt_release(t, slot);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

/* ---- the cancel flag across processes ---- */

static void test_cancel_from_other_process(void)
{
    struct rt_table *t = open_table("xcancel.tbl", 4);
    int slot = rt_claim(t, "xc1", 0);
    pid_t pid;

    CU_ASSERT_TRUE_FATAL(slot >= 0);
    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        struct rt_table *c = child_open("xcancel.tbl", 4);
        pid_t owner = 0;
        int rc = c != NULL ? rt_cancel(c, "xc1", 0, &owner) : -100;
        _exit(rc == 1 && owner == getppid() ? 0 : 1);
    }
    CU_ASSERT_EQUAL(wait_child(pid, CHILD_MAX_MS), 0);
    CU_ASSERT_EQUAL(rt_cancel_requested(t, slot), 1);
    rt_release(t, slot);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

static void test_cancel_to_other_process(void)
{
    struct rt_table *t = open_table("xcancel2.tbl", 4);
    pid_t pid, owner = 0;
    int fds[2], slot = -1;

    CU_ASSERT_EQUAL_FATAL(pipe2(fds, O_CLOEXEC), 0);
    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        struct rt_table *c = child_open("xcancel2.tbl", 4);
        int s = c != NULL ? rt_claim(c, "xc2", 0) : -1;
        int64_t until = mono_ms() + 5000;
        if (s < 0 || write(fds[1], &s, sizeof s) != (ssize_t)sizeof s)
            _exit(2);
        while (mono_ms() < until) {
            if (rt_cancel_requested(c, s))
                _exit(0); /* dies without releasing: the parent reclaims */
            sleep_ms(1);
        }
        _exit(1);
    }
    close(fds[1]);
    CU_ASSERT_EQUAL(read_int(fds[0], &slot, 5000), 0);
    close(fds[0]);
    CU_ASSERT_EQUAL(rt_cancel(t, "xc2", 0, &owner), 1);
    CU_ASSERT_EQUAL(owner, pid);
    CU_ASSERT_EQUAL(wait_child(pid, CHILD_MAX_MS), 0);
    CU_ASSERT_EQUAL(rt_reclaim(t), 1);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

/* ---- the concurrency cap ---- */

struct later {
    struct rt_table *t;
    long after_ms;
    int slot;       /* release this slot, or ... */
    const char *id; /* ... cancel this id */
    int rc;         /* rt_cancel's answer */
    pid_t owner;
};

static void *do_later(void *arg)
{
    struct later *l = arg;

    sleep_ms(l->after_ms);
    if (l->id != NULL)
        l->rc = rt_cancel(l->t, l->id, 0, &l->owner);
    else
        rt_release(l->t, l->slot);
    return NULL;
}

static void test_cap_timeout(void)
{
    struct rt_table *t = open_table("cap.tbl", 4);
    struct rt_stats st;
    int64_t t0, took;
    int a, b, c;

    a = rt_claim(t, "A", 0);
    b = rt_claim(t, "B", 0);
    CU_ASSERT_TRUE_FATAL(a >= 0 && b >= 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, a, 1, 0, NULL, NULL), RT_OK);
    t0 = mono_ms();
    CU_ASSERT_EQUAL(rt_acquire_permit(t, b, 1, ts_now_ms() + 150, NULL, NULL), RT_TIMEOUT);
    took = mono_ms() - t0;
    CU_ASSERT_TRUE(took >= 140);
    CU_ASSERT_TRUE(took < 1000);
    rt_stats(t, &st);
    CU_ASSERT_EQUAL(st.running, 1);
    CU_ASSERT_EQUAL(st.queued, 1);
    /* A deadline already past answers at once. */
    t0 = mono_ms();
    CU_ASSERT_EQUAL(rt_acquire_permit(t, b, 1, ts_now_ms() - 1, NULL, NULL), RT_TIMEOUT);
    CU_ASSERT_TRUE(mono_ms() - t0 < 500);

    /* cap 2: B gets the second permit, C waits. */
    CU_ASSERT_EQUAL(rt_acquire_permit(t, b, 2, 0, NULL, NULL), RT_OK);
    c = rt_claim(t, "C", 0);
    CU_ASSERT_TRUE_FATAL(c >= 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, c, 2, ts_now_ms() + 30, NULL, NULL), RT_TIMEOUT);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, c, 3, ts_now_ms() + 30, NULL, NULL), RT_OK);
    rt_release(t, a);
    rt_release(t, b);
    rt_release(t, c);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

static void test_cap_release_wakes(void)
{
    struct rt_table *t = open_table("capwake.tbl", 4);
    struct later l;
    pthread_t th;
    int64_t t0, took;
    int a, b;

    a = rt_claim(t, "A", 0);
    b = rt_claim(t, "B", 0);
    CU_ASSERT_TRUE_FATAL(a >= 0 && b >= 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, a, 1, 0, NULL, NULL), RT_OK);
    l = (struct later){t, 50, a, NULL, 0, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, do_later, &l), 0);
    t0 = mono_ms();
    CU_ASSERT_EQUAL(rt_acquire_permit(t, b, 1, ts_now_ms() + 3000, NULL, NULL), RT_OK);
    took = mono_ms() - t0;
    pthread_join(th, NULL);
    CU_ASSERT_TRUE(took >= 40);
    CU_ASSERT_TRUE(took < 500);
    rt_release(t, b);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

static void test_cap_cancel_wakes(void)
{
    struct rt_table *t = open_table("capcancel.tbl", 4);
    struct later l;
    pthread_t th;
    int64_t t0, took;
    int a, b;

    a = rt_claim(t, "A", 0);
    b = rt_claim(t, "B", 0);
    CU_ASSERT_TRUE_FATAL(a >= 0 && b >= 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(t, a, 1, 0, NULL, NULL), RT_OK);
    l = (struct later){t, 50, -1, "B", 0, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, do_later, &l), 0);
    t0 = mono_ms();
    CU_ASSERT_EQUAL(rt_acquire_permit(t, b, 1, ts_now_ms() + 3000, NULL, NULL), RT_CANCELED);
    took = mono_ms() - t0;
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(l.rc, 1);
    CU_ASSERT_EQUAL(l.owner, getpid());
    CU_ASSERT_TRUE(took >= 40);
    CU_ASSERT_TRUE(took < 500);
    rt_release(t, a);
    rt_release(t, b);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

/* The permit holder is another process that releases after ~50 ms. */
static void test_cap_release_by_other_process(void)
{
    struct rt_table *t = open_table("capxproc.tbl", 4);
    int64_t t0, took;
    int fds[2], v = -1, b;
    pid_t pid;

    CU_ASSERT_EQUAL_FATAL(pipe2(fds, O_CLOEXEC), 0);
    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        struct rt_table *c = child_open("capxproc.tbl", 4);
        int s = c != NULL ? rt_claim(c, "D", 0) : -1;
        if (s < 0 || rt_acquire_permit(c, s, 1, 0, NULL, NULL) != RT_OK ||
            write(fds[1], &s, sizeof s) != (ssize_t)sizeof s)
            _exit(2);
        sleep_ms(50);
        rt_release(c, s);
        _exit(0);
    }
    close(fds[1]);
    CU_ASSERT_EQUAL(read_int(fds[0], &v, 5000), 0);
    close(fds[0]);
    b = rt_claim(t, "E", 0);
    CU_ASSERT_TRUE(b >= 0);
    if (b >= 0) {
        t0 = mono_ms();
        CU_ASSERT_EQUAL(rt_acquire_permit(t, b, 1, ts_now_ms() + 3000, NULL, NULL), RT_OK);
        took = mono_ms() - t0;
        CU_ASSERT_TRUE(took >= 20);
        CU_ASSERT_TRUE(took < 500);
        rt_release(t, b);
    }
    CU_ASSERT_EQUAL(wait_child(pid, CHILD_MAX_MS), 0);
    CU_ASSERT_TRUE(table_empty(t));
    rt_close(t);
}

/* ---- process start times ---- */

static void test_proc_start_time(void)
{
    uint64_t self = rt_proc_start_time(getpid()), child;
    int fds[2];
    char c;
    pid_t pid;

    CU_ASSERT_TRUE(self > 0);
    CU_ASSERT_EQUAL(rt_proc_start_time(getpid()), self);
    CU_ASSERT_TRUE(rt_proc_start_time(getppid()) > 0);
    CU_ASSERT_TRUE(rt_proc_start_time(getppid()) <= self);
    CU_ASSERT_EQUAL(rt_proc_start_time(-1), 0);

    CU_ASSERT_EQUAL_FATAL(pipe2(fds, O_CLOEXEC), 0);
    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};

        /* Lives until the parent closes the pipe (bounded by poll). */
        close(fds[1]);
        _exit(poll(&p, 1, CHILD_MAX_MS) == 1 && read(fds[0], &c, 1) == 0 ? 0 : 1);
    }
    close(fds[0]);
    child = rt_proc_start_time(pid);
    CU_ASSERT_TRUE(child > 0);
    CU_ASSERT_TRUE(child >= self);
    CU_ASSERT_EQUAL(rt_proc_start_time(pid), child);
    close(fds[1]);
    CU_ASSERT_EQUAL(wait_child(pid, CHILD_MAX_MS), 0);
    /* Reaped: gone. */
    CU_ASSERT_EQUAL(rt_proc_start_time(pid), 0);
}

/* ---- what else the pool shares ---- */

static void test_gate_and_blob(void)
{
    struct rt_table *t = open_table("share.tbl", 2), *t2 = open_table("share.tbl", 2);
    char *data = NULL, *big;
    int64_t when = 0, now = ts_now_ms();
    size_t len = 0;
    pid_t kid;
    int status = 0;

    /* One caller per interval, pool-wide (a second handle, another process). */
    CU_ASSERT_EQUAL(rt_gate(t, now, 10000), 1);
    CU_ASSERT_EQUAL(rt_gate(t2, now + 5, 10000), 0);
    kid = fork();
    if (kid == 0)
        _exit(rt_gate(t2, now + 9999, 10000) == 0 && rt_gate(t2, now + 10000, 10000) == 1 ? 0 : 1);
    CU_ASSERT_EQUAL(waitpid(kid, &status, 0), kid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(rt_gate(t, now + 10001, 10000), 0);

    /* The blob: nothing yet; then the newer document wins, never an older. */
    CU_ASSERT_EQUAL(rt_blob_newer(t, 0, &data, &len, &when), 0);
    CU_ASSERT_EQUAL(rt_blob_store(t, "{\"keys\":[1]}", 12, 1000), 0);
    CU_ASSERT_EQUAL(rt_blob_store(t2, "{\"keys\":[0]}", 12, 999), 0);
    CU_ASSERT_EQUAL(rt_blob_newer(t2, 0, &data, &len, &when), 1);
    CU_ASSERT_STRING_EQUAL(data, "{\"keys\":[1]}");
    CU_ASSERT_EQUAL(len, 12);
    CU_ASSERT_EQUAL(when, 1000);
    free(data);
    CU_ASSERT_EQUAL(rt_blob_newer(t2, 1000, &data, &len, &when), 0);
    /* Its bound. */
    big = calloc(1, (size_t)RT_BLOB_MAX + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(rt_blob_store(t, big, (size_t)RT_BLOB_MAX + 1, 2000), -1);
    CU_ASSERT_EQUAL(rt_blob_store(t, big, RT_BLOB_MAX, 2000), 0);
    CU_ASSERT_EQUAL(rt_blob_newer(t2, 1000, &data, &len, &when), 1);
    CU_ASSERT_EQUAL(len, (size_t)RT_BLOB_MAX);
    free(data);
    free(big);
    rt_close(t);
    rt_close(t2);
}

static CU_TestInfo open_tests[] = {
    {"open refusals", test_open_refusals},
    {"open, share, reopen, foreign layout", test_open_shared},
    {"hostile files and folders", test_open_hostile},
    {"checked without creating (--check-config)", test_check},
    {"workers creating the table at once", test_open_race},
    {"slots no worker wrote", test_bad_slots},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo slot_tests[] = {
    {"claim and release", test_claim_release},
    {"full table and tombstone eviction", test_full_table},
    {"dead owner's slots", test_dead_owner_slot},
    {"a reused pid is not its dead owner", test_pid_reuse},
    {"dead owner's permit", test_dead_owner_permit},
    {"owner killed while churning", test_killed_while_churning},
    {"tombstones", test_tombstones},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo cancel_tests[] = {
    {"cancel from another process", test_cancel_from_other_process},
    {"cancel seen by another process", test_cancel_to_other_process},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo cap_tests[] = {
    {"permit wait times out", test_cap_timeout},
    {"release wakes a waiter", test_cap_release_wakes},
    {"cancel wakes a waiter", test_cap_cancel_wakes},
    {"release by another process", test_cap_release_by_other_process},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo proc_tests[] = {
    {"process start time", test_proc_start_time},
    {"pool-wide gate and shared blob", test_gate_and_blob},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runtable open", suite_init, suite_cleanup, NULL, NULL, open_tests},
    {"runtable slots", suite_init, suite_cleanup, NULL, NULL, slot_tests},
    {"runtable cancel", suite_init, suite_cleanup, NULL, NULL, cancel_tests},
    {"runtable cap", suite_init, suite_cleanup, NULL, NULL, cap_tests},
    {"runtable proc", NULL, NULL, NULL, NULL, proc_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
