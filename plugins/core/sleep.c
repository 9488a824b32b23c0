/*
 * sleep.c - jarvis.core.sleep: waits `seconds` (or else `duration_seconds`)
 * seconds, cooperatively, and reports how long it was asked to sleep. As the
 * reference: a null or absent `seconds` falls back to `duration_seconds`, a
 * null or absent `duration_seconds` to 0, and slept_seconds is the requested
 * value as a float (Python's repr), not the measured time.
 */
#include <math.h>

#include "jarvis/node.h"
#include "jarvis/util.h"
#include "nodes.h"
#include "pyjson.h"

/* The member `key`, or NULL when it is absent or JSON null. Borrowed. */
static json_object *member(json_object *inputs, const char *key)
{
    json_object *v = NULL;

    /* json-c stores a JSON null member as NULL */
    json_object_object_get_ex(inputs, key, &v);
    return v;
}

static json_object *float_object(double d)
{
    char repr[40];

    if (pyjson_float_repr(d, repr, sizeof repr) == 0)
        return json_object_new_double_s(d, repr);
    return json_object_new_double(d);
}

static int sleep_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    const char *field = "seconds";
    json_object *v = member(inputs, field);
    double seconds = 0.0, ms;
    int rc;

    if (v == NULL) {
        field = "duration_seconds";
        v = member(inputs, field);
    }
    if (v != NULL) {
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
            return jarvis_ctx_fail(ctx, "%s must be a number", field);
        seconds = json_object_get_double(v);
    }
    /* JSON has no infinity, but json-c reads 1e400 as one: refuse it rather
     * than sleep until the deadline and then have nothing to report. */
    if (!isfinite(seconds))
        return jarvis_ctx_fail(ctx, "%s must be a finite number", field);
    if (seconds < 0)
        return jarvis_ctx_fail(ctx, "%s must be >= 0", field);
    ms = ceil(seconds * 1000.0);
    if (ms > 0) {
        /* Bounded, so the end time jarvis_ctx_sleep_ms computes stays in
         * range; a deadline ends it long before. */
        rc = jarvis_ctx_sleep_ms(ctx, jarvis_clamp_span_ms(ms));
        if (rc != JARVIS_OK)
            return rc; /* canceled or out of time: the run ends that way */
    }
    return core_output_one(ctx, outputs, "slept_seconds", float_object(seconds));
}

const jarvis_node core_node_sleep = {
    .node_type_id = "jarvis.core.sleep",
    .version = "0.3.8",
    .description = "Sleeps `seconds` (or else `duration_seconds`, default 0) seconds, "
                   "returning early on cancel or timeout.",
    .input_schema = "{\"type\":\"object\",\"properties\":{"
                    "\"seconds\":{\"type\":[\"number\",\"null\"],\"minimum\":0},"
                    "\"duration_seconds\":{\"type\":[\"number\",\"null\"],\"minimum\":0}},"
                    "\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"slept_seconds\":{\"type\":\"number\",\"minimum\":0}},"
                     "\"required\":[\"slept_seconds\"],\"additionalProperties\":false}",
    .side_effect = JARVIS_SIDE_EFFECT_READ,
    .handler = sleep_handler,
};
