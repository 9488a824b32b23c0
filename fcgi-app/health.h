/*
 * health.h - the Health body of GET /v1/health: the pool's state as the
 * spec's Health.checks, so a coordinator or a load balancer sees a
 * saturated pool, a full run table or missing auth keys before it fails.
 */
#ifndef JARVIS_HEALTH_H
#define JARVIS_HEALTH_H

#include <stdint.h>

#include <json-c/json.h>

#include "auth.h"
#include "dispatch.h"

/*
 * A new Health object (caller owns it) at now_ms with three checks:
 *   - execute_capacity: ok, or degraded while every execute permit is
 *     taken (details: running, queued, capacity, max_concurrency);
 *   - run_table: ok, degraded when no slot is free (live runs and unexpired
 *     cancel tombstones: executes answer 503),
 *     down when its lock cannot be taken (details: slots, running, queued,
 *     tombstones, free);
 *   - auth_keys (only when auth is NULL it is left out): ok; degraded when
 *     the last refetch failed but older keys serve; down while no key could
 *     ever be fetched (message: the reason).
 * The top-level status is the worst of them. Runs are counted pool-wide
 * from the run table (no run checks without one: tools, unit tests); auth
 * keys are this worker's.
 */
json_object *hl_body(const struct dsp_limits *lim, struct auth *auth, int64_t now_ms);

#endif
