/*
 * time_now.c - jarvis.core.time.now: the current UTC time as the reference's
 * datetime.now(timezone.utc).isoformat() (CLOCK_REALTIME, microseconds
 * floored as CPython does).
 */
#include "time_now.h"

#include <stdio.h>

#include "jarvis/node.h"
#include "nodes.h"

int core_format_isoformat(const struct timespec *ts, char *buf, size_t len)
{
    struct tm tm;
    long us;
    int n;

    if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L || gmtime_r(&ts->tv_sec, &tm) == NULL)
        return -1;
    if (tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return -1;
    us = ts->tv_nsec / 1000;
    if (us != 0)
        n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld+00:00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
    else
        n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int time_now_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    struct timespec ts;
    char text[CORE_ISOFORMAT_LEN];

    (void)inputs;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
        core_format_isoformat(&ts, text, sizeof text) != 0)
        return jarvis_ctx_fail(ctx, "time.now: cannot read or format the system clock");
    return core_output_one(ctx, outputs, "time", json_object_new_string(text));
}

const jarvis_node core_node_time_now = {
    .node_type_id = "jarvis.core.time.now",
    .version = "0.3.8",
    .description = "Returns the current UTC time in ISO 8601 form, as Python's "
                   "datetime.now(timezone.utc).isoformat().",
    .input_schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"time\":{\"type\":\"string\",\"format\":\"date-time\"}},"
                     "\"required\":[\"time\"],\"additionalProperties\":false}",
    .side_effect = JARVIS_SIDE_EFFECT_READ,
    .handler = time_now_handler,
};
