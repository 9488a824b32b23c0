/*
 * soak_mix.c - owns the soak's request mix (see soak_mix.h): every type with
 * its weight, its request templates and what counts as its expected answer.
 *
 * Weights are per mille of the scenarios started (paced types give up their
 * turn when the cancel rate is spent). Expected answers follow the README:
 * a handler reached answers 200 with `state` (and `error.code`), a refusal
 * answers its 4xx with the ErrorEnvelope's code; the bodies are compact JSON.
 */
#define _GNU_SOURCE
#include "soak_mix.h"

#include <stdio.h>
#include <string.h>

#define EXECUTE "/v1/atomic-node-runs:execute"
#define CANCEL "/v1/atomic-node-runs/{id}:cancel"
#define RUN(node, inputs)                                                                          \
    "{\"node_run_id\":\"{id}\",\"run_id\":\"soak\",\"node_type_ref\":{\"node_type_id\":\"" node    \
    "\",\"version\":\"0.3.8\"},\"inputs\":" inputs "}"
#define RUN_WITHIN(node, inputs, ms)                                                               \
    "{\"node_run_id\":\"{id}\",\"run_id\":\"soak\",\"node_type_ref\":{\"node_type_id\":\"" node    \
    "\",\"version\":\"0.3.8\"},\"inputs\":" inputs                                                 \
    ",\"constraints\":{\"budgets\":{\"max_wall_time_ms\":" ms "}}}"
#define SUCCEEDED "\"state\":\"succeeded\""
#define CANCELED "\"state\":\"canceled\""
#define CODE(c) "\"code\":\"" c "\""
/* A run of some tens of ms, held in flight for a cancel or a duplicate. */
#define HELD RUN("jarvis.core.sleep", "{\"seconds\":0.05}")
#define HELD_DELAY_MS 10

/* One request answered 200 with a result carrying `needle`. */
#define RESULT(body, needle)                                                                       \
    {                                                                                              \
        "POST", EXECUTE, body, {200},                                                              \
        {                                                                                          \
            needle                                                                                 \
        }                                                                                          \
    }
/* One request refused with status and error code. */
#define REFUSED(method, path, body, status, code)                                                  \
    {                                                                                              \
        method, path, body, {status},                                                              \
        {                                                                                          \
            CODE(code)                                                                             \
        }                                                                                          \
    }
#define NO_SIDE                                                                                    \
    {                                                                                              \
        NULL, NULL, NULL, {0},                                                                     \
        {                                                                                          \
            NULL                                                                                   \
        }                                                                                          \
    }

const struct sm_type sm_types[] = {
    /* Every jarvis.core node, run to success. */
    {"echo", 160, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.core.echo", "{\"echo\":\"pong\"}"), SUCCEEDED), NO_SIDE},
    {"echo_json", 60, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.core.echo", "{\"a\":[1,2.5,null,true],\"b\":{\"c\":\"\\u00e9\"}}"),
            SUCCEEDED),
     NO_SIDE},
    {"sleep", 50, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.core.sleep", "{\"seconds\":0.001}"), SUCCEEDED), NO_SIDE},
    {"uuid4", 60, 0, SM_PAD_NONE, 0, 0, RESULT(RUN("jarvis.core.uuid4", "{}"), SUCCEEDED), NO_SIDE},
    {"time_now", 60, 0, SM_PAD_NONE, 0, 0, RESULT(RUN("jarvis.core.time.now", "{}"), SUCCEEDED),
     NO_SIDE},
    {"sha256_text", 50, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.core.hash.sha256", "{\"text\":\"soak\",\"encoding\":\"latin-1\"}"),
            SUCCEEDED),
     NO_SIDE},
    {"sha256_base64", 40, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.core.hash.sha256", "{\"content_base64\":\"aGVsbG8gc29haw==\"}"), SUCCEEDED),
     NO_SIDE},
    /* The loopback fetch server's answer: status 200 in the outputs. */
    {"fetch", 50, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.web.fetch", "{\"url\":\"http://127.0.0.1:{port}/soak?n={id}\"}"),
            "\"status_code\":200"),
     NO_SIDE},
    /* Runs that fail, one per error code a run can end with. */
    {"fetch_denied", 20, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.web.fetch", "{\"url\":\"http://127.0.0.1:1/\"}"), CODE("fetch_denied")),
     NO_SIDE},
    {"unknown_type", 30, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.soak.nothing", "{}"), CODE("unknown_node_type")), NO_SIDE},
    {"invalid_inputs", 30, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.core.sleep", "{\"seconds\":\"x\"}"), CODE("invalid_inputs")), NO_SIDE},
    {"handler_error", 30, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN("jarvis.core.hash.sha256", "{\"content_base64\":\"@@\"}"), CODE("handler_error")),
     NO_SIDE},
    {"timeout", 20, 0, SM_PAD_NONE, 0, 0,
     RESULT(RUN_WITHIN("jarvis.core.sleep", "{\"seconds\":5}", "5"), CODE("timeout")), NO_SIDE},
    /* Requests refused before any run. */
    {"bad_json", 60, 0, SM_PAD_NONE, 0, 0,
     REFUSED("POST", EXECUTE, "{\"node_run_id\":\"{id}\",", 400, "invalid_request"), NO_SIDE},
    {"schema_invalid", 60, 0, SM_PAD_NONE, 0, 0,
     REFUSED("POST", EXECUTE,
             "{\"node_run_id\":\"{id}\",\"run_id\":7,\"extra\":true,\"node_type_ref\":{}}", 400,
             "invalid_request"),
     NO_SIDE},
    /* The worker's 413 carries details.max_bytes; nginx's page does not. */
    {"too_large_app",
     10,
     0,
     SM_PAD_APP,
     0,
     0,
     {"POST", EXECUTE, NULL, {413}, {"\"max_bytes\":"}},
     NO_SIDE},
    {"too_large_nginx",
     5,
     0,
     SM_PAD_NGINX,
     0,
     0,
     {"POST", EXECUTE, NULL, {413}, {"\"message\":\"Request body too large\"}}"}},
     NO_SIDE},
    {"not_found", 20, 0, SM_PAD_NONE, 0, 0,
     REFUSED("GET", "/v1/soak-nothing", NULL, 404, "not_found"), NO_SIDE},
    {"wrong_method", 10, 0, SM_PAD_NONE, 0, 0,
     REFUSED("GET", EXECUTE, NULL, 405, "method_not_allowed"), NO_SIDE},
    /* Health may say degraded when every execute slot is busy: any 200. */
    {"health",
     30,
     0,
     SM_PAD_NONE,
     0,
     0,
     {"GET", "/v1/health", NULL, {200}, {"\"checks\":["}},
     NO_SIDE},
    {"version",
     30,
     0,
     SM_PAD_NONE,
     0,
     0,
     {"GET", "/v1/version", NULL, {200}, {"\"service_name\":\"jarvis-atomic-executor\""}},
     NO_SIDE},
    /* Cancels: of an id never run (a tombstone), and of a run in flight,
     * which ends canceled (or succeeded when the cancel came late). */
    {"cancel_miss", 25, 1, SM_PAD_NONE, 0, 0, {"POST", CANCEL, NULL, {204}, {NULL}}, NO_SIDE},
    {"cancel_hit",
     20,
     0,
     SM_PAD_NONE,
     0,
     HELD_DELAY_MS,
     {"POST", EXECUTE, HELD, {200}, {CANCELED, SUCCEEDED}},
     {"POST", CANCEL, NULL, {204}, {NULL}}},
    /* The same node_run_id twice, the second while the first runs: 409. */
    {"duplicate",
     15,
     0,
     SM_PAD_NONE,
     1,
     HELD_DELAY_MS,
     {"POST", EXECUTE, HELD, {200, 409}, {SUCCEEDED, CODE("node_run_in_progress")}},
     {"POST", EXECUTE, HELD, {200, 409}, {SUCCEEDED, CODE("node_run_in_progress")}}},
};

const size_t sm_ntypes = sizeof sm_types / sizeof sm_types[0];

int sm_expand(const char *tmpl, const char *id, int port, char *out, size_t outlen)
{
    size_t n = 0;
    char portbuf[16];

    snprintf(portbuf, sizeof portbuf, "%d", port);
    while (*tmpl != '\0') {
        const char *add = tmpl;
        size_t len = 1;

        if (strncmp(tmpl, "{id}", 4) == 0) {
            add = id;
            len = strlen(id);
            tmpl += 4;
        } else if (strncmp(tmpl, "{port}", 6) == 0) {
            add = portbuf;
            len = strlen(portbuf);
            tmpl += 6;
        } else {
            tmpl++;
        }
        if (n + len >= outlen)
            return -1;
        memcpy(out + n, add, len);
        n += len;
    }
    out[n] = '\0';
    return (int)n;
}

int sm_status_expected(const struct sm_part *part, int status)
{
    int i;

    for (i = 0; i < SM_MAX_STATUSES && part->statuses[i] != 0; i++)
        if (part->statuses[i] == status)
            return 1;
    return 0;
}

int sm_needle_found(const struct sm_part *part, const char *body, size_t len)
{
    int i;

    if (part->needles[0] == NULL)
        return SM_MAX_NEEDLES;
    for (i = 0; i < SM_MAX_NEEDLES && part->needles[i] != NULL; i++)
        if (memmem(body, len, part->needles[i], strlen(part->needles[i])) != NULL)
            return i;
    return -1;
}
