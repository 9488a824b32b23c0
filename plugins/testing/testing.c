/*
 * testing.c - the jarvis.test pack: handlers that fail on purpose or hand
 * back what they were given, so tests can take every path of dispatch.
 * Linked only into test binaries (tests/CMakeLists.txt).
 */
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "jarvis/node.h"

/* inputs.ms as a non-negative integer, or -1. */
static long long input_ms(json_object *inputs)
{
    json_object *ms = NULL;

    if (!json_object_object_get_ex(inputs, "ms", &ms) || !json_object_is_type(ms, json_type_int) ||
        json_object_get_int64(ms) < 0)
        return -1;
    return json_object_get_int64(ms);
}

static json_object *pid_outputs(long long ms)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "slept_ms", json_object_new_int64(ms));
    json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
    return o;
}

/* Sleeps inputs.ms cooperatively: returns at once on cancel or deadline. */
static int sleep_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    long long ms = input_ms(inputs);
    int rc;

    if (ms < 0)
        return jarvis_ctx_fail(ctx, "inputs.ms must be a non-negative integer");
    rc = jarvis_ctx_sleep_ms(ctx, ms);
    if (rc != JARVIS_OK)
        return rc;
    *outputs = pid_outputs(ms);
    return JARVIS_OK;
}

/* Burns CPU for inputs.ms without ever looking at cancel or deadline: the
 * handler the runner has to abandon. */
static int spin_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    long long ms = input_ms(inputs);
    struct timespec start, now;

    if (ms < 0)
        return jarvis_ctx_fail(ctx, "inputs.ms must be a non-negative integer");
    clock_gettime(CLOCK_MONOTONIC, &start);
    do
        clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    *outputs = pid_outputs(ms);
    return JARVIS_OK;
}

/* Always fails; the reason must reach the log and not the client. */
static int fail_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    (void)inputs;
    (void)outputs;
    return jarvis_ctx_fail(ctx, "jarvis.test.fail failed on purpose (secret detail)");
}

/* Returns an array where an object is required. */
static int bad_outputs_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    (void)ctx;
    (void)inputs;
    *outputs = json_object_new_array();
    return JARVIS_OK;
}

static void add_copy(json_object *to, const char *key, json_object *v)
{
    if (v != NULL)
        json_object_object_add(to, key, json_object_get(v));
}

/* Returns everything the context exposes, plus the worker's pid. */
static int context_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "node_run_id", json_object_new_string(jarvis_ctx_node_run_id(ctx)));
    json_object_object_add(o, "run_id", json_object_new_string(jarvis_ctx_run_id(ctx)));
    add_copy(o, "node_type_ref", jarvis_ctx_node_type_ref(ctx));
    add_copy(o, "inputs", inputs);
    add_copy(o, "run_context", jarvis_ctx_run_context(ctx));
    add_copy(o, "constraints", jarvis_ctx_constraints(ctx));
    add_copy(o, "extensions", jarvis_ctx_extensions(ctx));
    json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
    jarvis_ctx_log(ctx, JARVIS_LOG_INFO, "context handler ran");
    *outputs = o;
    return JARVIS_OK;
}

static const jarvis_node node_fail = {
    .node_type_id = "jarvis.test.fail",
    .version = "1.0.0",
    .description = "Fails on purpose.",
    .handler = fail_handler,
};

static const jarvis_node node_bad_outputs = {
    .node_type_id = "jarvis.test.bad_outputs",
    .version = "1.0.0",
    .description = "Returns outputs that are not an object.",
    .handler = bad_outputs_handler,
};

static const jarvis_node node_context = {
    .node_type_id = "jarvis.test.context",
    .version = "1.0.0",
    .description = "Returns the request as its handler sees it.",
    .handler = context_handler,
};

/* Returns a number JSON cannot carry: the answer must be a clean 500. */
static int nan_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    (void)ctx;
    (void)inputs;
    *outputs = json_object_new_object();
    json_object_object_add(*outputs, "value", json_object_new_double(NAN));
    return JARVIS_OK;
}

static const jarvis_node node_nan = {
    .node_type_id = "jarvis.test.nan",
    .version = "1.0.0",
    .description = "Returns NaN in its outputs.",
    .handler = nan_handler,
};

static const jarvis_node node_sleep = {
    .node_type_id = "jarvis.test.sleep",
    .version = "1.0.0",
    .description = "Sleeps inputs.ms milliseconds, cooperatively; outputs the worker's pid.",
    .handler = sleep_handler,
};

static const jarvis_node node_spin = {
    .node_type_id = "jarvis.test.spin",
    .version = "1.0.0",
    .description = "Busy-loops inputs.ms milliseconds, ignoring cancel and deadline.",
    .handler = spin_handler,
};

/* Crashes the worker with SIGSEGV, as a handler with a bad pointer would:
 * the requests it held are lost (nginx answers 502) and the pool replaces
 * the worker. raise, not a NULL write: the same signal reaches the process
 * in every build, with no compiler free to drop the access. Not dumpable
 * first, so a test run leaves no core file (nor one piped to a crash
 * collector). */
static int crash_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    (void)inputs;
    (void)outputs;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    raise(SIGSEGV);
    return jarvis_ctx_fail(ctx, "jarvis.test.crash survived its SIGSEGV");
}

static const jarvis_node node_crash = {
    .node_type_id = "jarvis.test.crash",
    .version = "1.0.0",
    .description = "Crashes its worker with SIGSEGV.",
    .handler = crash_handler,
};

static const jarvis_node *const testing_nodes[] = {
    &node_nan,         &node_sleep,   &node_spin,  &node_fail,
    &node_bad_outputs, &node_context, &node_crash, NULL,
};

const jarvis_pack jarvis_pack_testing = {
    .name = "testing",
    .nodes = testing_nodes,
};
