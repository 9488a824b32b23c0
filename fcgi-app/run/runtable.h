/*
 * runtable.h - the run table every worker of the pool shares: a fixed array
 * of slots in a MAP_SHARED file mapping, one per NodeRun in flight (or
 * queued for a concurrency permit), plus tombstones of cancels that came
 * before their execute. It is how a cancel that lands on one worker finds
 * and stops the run another worker owns.
 *
 * All mutation happens under one process-shared robust mutex, so a worker
 * killed while holding it never wedges the others; slots whose owner died
 * are reclaimed by whoever looks next. The cancel flag of a slot is read
 * without the lock (an atomic), so handlers can poll it cheaply.
 *
 * A slot holds a node_run_id of at most DSP_MAX_ID bytes (dispatch.h, which
 * owns the bound); a longer one is refused (RT_ERROR).
 */
#ifndef JARVIS_RUNTABLE_H
#define JARVIS_RUNTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RT_DEFAULT_SLOTS 1024
/* Longest path of the table file. */
#define RT_MAX_PATH 1024
#define RT_MIN_SLOTS 1
#define RT_MAX_SLOTS 65536
/* How long a cancel that found no run waits for its execute. */
#define RT_TOMBSTONE_MS 60000

enum rt_status {
    RT_OK = 0,
    RT_DUPLICATE = -1,   /* a live run already has this node_run_id */
    RT_FULL = -2,        /* every slot holds a live run */
    RT_PRECANCELED = -3, /* a tombstone said: canceled before it started */
    RT_CANCELED = -4,    /* canceled while waiting */
    RT_TIMEOUT = -5,     /* the deadline passed while waiting */
    RT_ERROR = -6,       /* the table is unusable (see the log) */
    RT_ABORTED = -7      /* the caller's abort check said stop while waiting */
};

/* Asked while a run waits for its permit: nonzero stops the wait. */
typedef int (*rt_abort_fn)(const void *arg);

struct rt_table;

/*
 * Opens (creating and initialising if needed) the table file at path with
 * nslots slots. Every worker of a pool must use the same path and nslots;
 * a table of another layout is refused. Nobody else may touch it: its
 * folder must be a real folder of this uid that others cannot write to
 * (a missing one is created 0700), and the file a regular file of this uid,
 * mode 0600, one link, never a symlink (O_NOFOLLOW). A new table is made
 * under a temporary name and linked into place. Returns a new handle, or
 * NULL with a one-line reason in err.
 */
struct rt_table *rt_open(const char *path, unsigned nslots, char *err, size_t errlen);

/*
 * What rt_open would refuse, checked without creating or changing anything
 * (jarvis-atomic-executor --check-config): the slot count, the folder (or,
 * when missing, that it can be created), and a file already there. A missing
 * file is fine: the first worker creates it. Returns 0, or -1 with a
 * one-line reason in err.
 */
int rt_check(const char *path, unsigned nslots, char *err, size_t errlen);

/* Unmaps the table; the file stays for the other workers. NULL is fine. */
void rt_close(struct rt_table *t);

/*
 * Claims a slot for node_run_id (owned by this process) and returns its
 * index (>= 0), or RT_DUPLICATE, RT_FULL, RT_PRECANCELED (the tombstone is
 * consumed) or RT_ERROR. deadline_ms: wall-clock ms, 0 for none.
 */
int rt_claim(struct rt_table *t, const char *node_run_id, int64_t deadline_ms);

/*
 * Waits until fewer than cap claimed runs hold a permit, then takes one for
 * slot. cap 0 means no cap. Returns RT_OK, RT_CANCELED, RT_TIMEOUT (at
 * deadline_ms, 0 for none) or RT_ABORTED (abort, when not NULL, is asked
 * at least every RT_WAIT_SLICE_MS). Woken at once by releases and cancels;
 * dead owners' permits are reclaimed while waiting.
 */
#define RT_WAIT_SLICE_MS 100
int rt_acquire_permit(struct rt_table *t, int slot, unsigned cap, int64_t deadline_ms,
                      rt_abort_fn abort, const void *abort_arg);

/* Frees slot (and its permit). */
void rt_release(struct rt_table *t, int slot);

/*
 * Requests cancellation of node_run_id. If a live run has it, sets its flag,
 * wakes waiters, sends signo (0: none) to the owner process - that process
 * and no other: a pidfd and the owner's start time rule out a recycled pid -
 * and returns RT_CANCEL_HIT with *owner its pid (0 if it could not be
 * signalled). If a tombstone has it, renews that tombstone's TTL and returns
 * RT_CANCEL_RENEWED. Otherwise leaves a tombstone that expires after the TTL
 * and returns RT_CANCEL_NEW; RT_FULL when every slot holds a live run or
 * tombstone (the cancel would not hold: the caller answers busy), or
 * RT_ERROR. (The three outcomes are the metrics' cancel outcomes.)
 */
#define RT_CANCEL_NEW 0
#define RT_CANCEL_HIT 1
#define RT_CANCEL_RENEWED 2
int rt_cancel(struct rt_table *t, const char *node_run_id, int signo, pid_t *owner);

/* 1 once a cancel reached slot. Lock-free; safe from any thread. */
int rt_cancel_requested(const struct rt_table *t, int slot);

/* Counts of the slots in use, for logs and tests. */
struct rt_stats {
    unsigned running;    /* holding a permit */
    unsigned queued;     /* claimed, waiting for a permit */
    unsigned tombstones; /* unexpired */
    unsigned slots;      /* the table's size */
};
/* Fills st, after freeing the slots of dead owners (so the counts are of
 * live runs); 0, or -1 when the table's lock cannot be taken. */
int rt_stats(struct rt_table *t, struct rt_stats *st);

/* ---- what else the pool shares ---- */

/* Largest shared blob: the JWKS document auth shares (JWKS_MAX_BYTES). */
#define RT_BLOB_MAX (1024 * 1024)

/*
 * A pool-wide rate limit: 1 for the first caller in each min_interval_ms
 * across every worker (it may go ahead, e.g. fetch keys), 0 for the others.
 * Lock-free.
 */
int rt_gate(struct rt_table *t, int64_t now_ms, int64_t min_interval_ms);

/* Stores data (len <= RT_BLOB_MAX) as the pool's blob stamped when_ms,
 * unless a newer one is there. 0, or -1. */
int rt_blob_store(struct rt_table *t, const char *data, size_t len, int64_t when_ms);

/* If the pool's blob is newer than have_ms: 1 with a NUL-terminated copy
 * in *data (caller frees), its length and stamp; 0 if not newer; -1. */
int rt_blob_newer(struct rt_table *t, int64_t have_ms, char **data, size_t *len, int64_t *when_ms);

/* Start time of a process (clock ticks since boot, from /proc), 0 if gone.
 * With the pid it identifies an owner even after pid reuse. */
uint64_t rt_proc_start_time(pid_t pid);

/* 0 only on proof that the process pid, started at start (as
 * rt_proc_start_time said), is gone: no such pid, or a pid now used by a
 * process started at another time. A /proc read that fails for another
 * reason (out of fds) counts as alive. A zombie not yet reaped is alive. */
int rt_proc_alive(pid_t pid, uint64_t start);

/*
 * The metrics' region of the mapping (metrics.c owns its layout, checks it
 * and says how it is shared): RT_METRICS_BYTES, zeroed when the table was
 * made, 64-byte aligned, shared by every worker like the slots.
 */
#define RT_METRICS_BYTES (64 * 1024)
void *rt_metrics_area(struct rt_table *t);

#endif
