/*
 * result.c - encodes the bodies of successful answers: AtomicExecuteResult
 * and VersionInfo (Health is health.c's). Optional fields are omitted, never null, because
 * every one of them is typed string or object in the spec.
 */
#include "result.h"

#include <math.h>

#include "buildinfo.h"
#include "timefmt.h"

#define SERVICE_NAME "jarvis-atomic-executor"

static int writable(json_object *v, int depth)
{
    size_t i;

    if (depth > RES_MAX_DEPTH)
        return 0;
    switch (json_object_get_type(v)) {
    case json_type_double: return isfinite(json_object_get_double(v));
    case json_type_array:
        for (i = 0; i < json_object_array_length(v); i++)
            if (!writable(json_object_array_get_idx(v, i), depth + 1))
                return 0;
        return 1;
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            if (!writable(val, depth + 1))
                return 0;
        }
        return 1;
    }
    default: return 1;
    }
}

int res_json_writable(json_object *v)
{
    return writable(v, 0);
}

const char *res_state_name(enum run_state state)
{
    switch (state) {
    case RUN_SUCCEEDED: return "succeeded";
    case RUN_CANCELED: return "canceled";
    case RUN_FAILED: break;
    }
    return "failed";
}

void res_add_time(json_object *obj, const char *key, int64_t ms)
{
    char buf[TS_RFC3339_LEN];

    if (ts_format_rfc3339(ms, buf, sizeof buf) == 0)
        json_object_object_add(obj, key, json_object_new_string(buf));
}

json_object *res_execute_result(struct exec_result *res)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "node_run_id", json_object_new_string(res->node_run_id));
    json_object_object_add(o, "state", json_object_new_string(res_state_name(res->state)));
    if (res->outputs != NULL) {
        json_object_object_add(o, "outputs", res->outputs);
        res->outputs = NULL;
    }
    res_add_time(o, "started_at", res->started_ms);
    res_add_time(o, "ended_at", res->ended_ms);
    if (res->error_code != NULL) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_string(res->error_code));
        json_object_object_add(e, "message", json_object_new_string(res->message));
        if (res->error_details != NULL) {
            json_object_object_add(e, "details", res->error_details);
            res->error_details = NULL;
        }
        json_object_object_add(o, "error", e);
    }
    return o;
}

json_object *res_version(void)
{
    json_object *o = json_object_new_object();
    json_object *apis = json_object_new_array();
    json_object *build = json_object_new_object();

    json_object_object_add(o, "service_name", json_object_new_string(SERVICE_NAME));
    json_object_object_add(o, "service_version", json_object_new_string(jarvis_build_version));
    json_object_array_add(apis, json_object_new_string("v1"));
    json_object_object_add(o, "supported_api_versions", apis);
    if (jarvis_build_commit[0] != '\0')
        json_object_object_add(build, "commit", json_object_new_string(jarvis_build_commit));
    if (jarvis_build_time[0] != '\0')
        json_object_object_add(build, "built_at", json_object_new_string(jarvis_build_time));
    if (jarvis_build_dirty >= 0)
        json_object_object_add(build, "dirty", json_object_new_boolean(jarvis_build_dirty));
    if (json_object_object_length(build) > 0)
        json_object_object_add(o, "build", build);
    else
        json_object_put(build);
    return o;
}
