/*
 * health.c - owns what /v1/health says about the pool (health.h): the
 * checks, their details and the rule that the worst check is the status.
 */
#include "health.h"

#include <stdio.h>

#include "result.h"
#include "utf8.h"

enum hl_status { HL_OK = 0, HL_DEGRADED, HL_DOWN };

static const char *status_name(enum hl_status st)
{
    return st == HL_DOWN ? "down" : st == HL_DEGRADED ? "degraded" : "ok";
}

/* Appends a check to checks; details (owned, may be NULL) is taken. */
static enum hl_status add_check(json_object *checks, const char *name, enum hl_status st,
                                const char *message, json_object *details)
{
    json_object *c = json_object_new_object();

    json_object_object_add(c, "name", json_object_new_string(name));
    json_object_object_add(c, "status", json_object_new_string(status_name(st)));
    if (message != NULL)
        json_object_object_add(c, "message", json_object_new_string(message));
    if (details != NULL)
        json_object_object_add(c, "details", details);
    json_object_array_add(checks, c);
    return st;
}

static void put_uint(json_object *o, const char *key, unsigned v)
{
    json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

static enum hl_status check_runs(json_object *checks, const struct dsp_limits *lim)
{
    json_object *cap_d = json_object_new_object(), *table_d = json_object_new_object();
    unsigned cap = dsp_permit_cap(lim), free_slots;
    struct rt_stats st;
    enum hl_status worst, s;

    if (lim->rt == NULL) { /* tools and unit tests: no pool to report */
        json_object_put(cap_d);
        json_object_put(table_d);
        return HL_OK;
    }
    if (rt_stats(lim->rt, &st) != 0) {
        json_object_put(cap_d);
        json_object_put(table_d);
        add_check(checks, "execute_capacity", HL_DOWN, "the run table cannot be read", NULL);
        return add_check(checks, "run_table", HL_DOWN, "the run table's lock cannot be taken",
                         NULL);
    }
    put_uint(cap_d, "running", st.running);
    put_uint(cap_d, "queued", st.queued);
    if (cap > 0)
        put_uint(cap_d, "capacity", cap);
    if (lim->max_concurrency > 0)
        put_uint(cap_d, "max_concurrency", lim->max_concurrency);
    worst = add_check(
        checks, "execute_capacity", cap > 0 && st.running >= cap ? HL_DEGRADED : HL_OK,
        cap > 0 && st.running >= cap ? "every execute slot is busy; executes queue" : NULL, cap_d);

    free_slots = st.slots - st.running - st.queued - st.tombstones;
    put_uint(table_d, "slots", st.slots);
    put_uint(table_d, "running", st.running);
    put_uint(table_d, "queued", st.queued);
    put_uint(table_d, "tombstones", st.tombstones);
    put_uint(table_d, "free", free_slots);
    /* Unexpired tombstones hold their slots (a cancel must hold), so they
     * fill the table as much as live runs do. */
    s = free_slots == 0 ? HL_DEGRADED : HL_OK;
    s = add_check(checks, "run_table", s,
                  s == HL_DEGRADED
                      ? "every slot holds a live run or cancel tombstone: executes answer 503"
                      : NULL,
                  table_d);
    return s > worst ? s : worst;
}

static enum hl_status check_keys(json_object *checks, struct auth *auth)
{
    struct auth_key_status ks;
    json_object *d;
    char msg[AUTH_MAX_KEY_ERROR + 64];

    auth_key_status(auth, &ks);
    if (ks.disabled)
        return add_check(checks, "auth_keys", HL_OK, "authentication is disabled", NULL);
    d = json_object_new_object();
    json_object_object_add(d, "keys", json_object_new_int64((int64_t)ks.keys));
    if (ks.loaded_ms > 0)
        res_add_time(d, "fetched_at", ks.loaded_ms);
    if (ks.error[0] == '\0')
        return add_check(checks, "auth_keys", HL_OK, NULL, d);
    snprintf(msg, sizeof msg, "Unable to fetch JWKS: %s", ks.error);
    utf8_drop_partial(msg);
    return add_check(checks, "auth_keys", ks.keys > 0 ? HL_DEGRADED : HL_DOWN, msg, d);
}

json_object *hl_body(const struct dsp_limits *lim, struct auth *auth, int64_t now_ms)
{
    json_object *o = json_object_new_object(), *checks = json_object_new_array();
    enum hl_status worst, s;

    worst = check_runs(checks, lim);
    if (auth != NULL && (s = check_keys(checks, auth)) > worst)
        worst = s;
    json_object_object_add(o, "status", json_object_new_string(status_name(worst)));
    res_add_time(o, "time", now_ms);
    if (json_object_array_length(checks) > 0)
        json_object_object_add(o, "checks", checks);
    else
        json_object_put(checks);
    return o;
}
