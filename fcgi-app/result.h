/* result.h - the JSON bodies of successful answers (spec/v1 shapes). */
#ifndef JARVIS_RESULT_H
#define JARVIS_RESULT_H

#include <stdint.h>

#include <json-c/json.h>

#include "dispatch.h"

/* AtomicExecuteResult for res. Takes over res->outputs and
 * res->error_details (left NULL). */
json_object *res_execute_result(struct exec_result *res);

/* Health {"status":"ok","time":...} at now_ms. */
json_object *res_health(int64_t now_ms);

/* VersionInfo for this build. */
json_object *res_version(void);

/* "succeeded" / "failed" / "canceled" */
const char *res_state_name(enum run_state state);

#endif
