/*
 * runtable_test.h - hooks of the run table for its tests only (and the
 * prototypes runtable.c defines them against): shorter tombstones, a
 * reclaim on demand, where a hostile process would write in the file, and
 * the process start time that identifies an owner. No product code
 * includes it.
 */
#ifndef JARVIS_RUNTABLE_TEST_H
#define JARVIS_RUNTABLE_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtable.h"

/* Changes how long this process's tombstones live (default RT_TOMBSTONE_MS). */
void rt_set_tombstone_ttl(struct rt_table *t, int64_t ms);

/* Frees the slots of dead owners and expired tombstones; returns how many.
 * (The table does it itself whenever it looks for a slot.) */
unsigned rt_reclaim(struct rt_table *t);

/* For tests that play a hostile process writing the file: the mapping's
 * length and the byte offset of slot i in the file. */
size_t rt_debug_map_len(const struct rt_table *t);
size_t rt_debug_slot_offset(const struct rt_table *t, unsigned i);

#endif
