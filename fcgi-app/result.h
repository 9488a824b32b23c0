/* result.h - the JSON bodies of successful answers (spec/v1 shapes). */
#ifndef JARVIS_RESULT_H
#define JARVIS_RESULT_H

#include <stdint.h>

#include <json-c/json.h>

#include "dispatch.h"

/* AtomicExecuteResult for res. Takes over res->outputs and
 * res->error_details (left NULL). */
json_object *res_execute_result(struct exec_result *res);

/* VersionInfo for this build. */
json_object *res_version(void);

/* Deepest outputs the service serializes (handlers build them, not clients). */
#define RES_MAX_DEPTH 256

/*
 * 1 if v can be written as JSON: no NaN or infinity anywhere (JSON has no
 * such numbers; the reference's JSONResponse refuses them with a 500 too)
 * and nesting within RES_MAX_DEPTH.
 */
int res_json_writable(json_object *v);

/* "succeeded" / "failed" / "canceled" */
const char *res_state_name(enum run_state state);

/* Adds obj[key] = ms as an RFC 3339 UTC timestamp (left out if ms cannot
 * be written so). */
void res_add_time(json_object *obj, const char *key, int64_t ms);

#endif
