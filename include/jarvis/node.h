/*
 * jarvis/node.h - the plugin contract of the JARVIS Atomic Executor.
 *
 * This is the only header a node pack includes. A pack is a static library
 * that exports one `const jarvis_pack jarvis_pack_<name>` listing its nodes;
 * the build links the chosen packs into the service (cmake/JarvisPacks.cmake).
 *
 * A node is a const descriptor plus a handler. The service validates the
 * request against the ARP spec before a handler ever runs, then calls the
 * handler of the node whose node_type_id matches, in the worker process that
 * received the request, on the worker thread serving that request (a
 * worker watches its runs for cancels and deadlines from another thread).
 *
 * Thread safety: one worker runs several handlers at the same time (each on
 * its own serving thread, up to the pool's execute slots; a thread runs
 * other requests' handlers before and after), so a handler must be
 * thread-safe and must not leave per-thread state behind: no unguarded
 * mutable static state. The json-c objects of a
 * run are that run's alone (json-c's reference counts are not atomic).
 *
 * json-c ownership across this boundary:
 *   - every json_object a handler receives (inputs, and what the jarvis_ctx_*
 *     accessors return) is BORROWED: valid until the handler returns, never
 *     to be modified or json_object_put() by the handler;
 *   - *outputs is OWNED by the service once the handler returns JARVIS_OK:
 *     the handler creates it (refcount 1) and hands that reference over;
 *   - on failure the handler leaves *outputs NULL (the service drops any
 *     object it finds there anyway).
 */
#ifndef JARVIS_NODE_H
#define JARVIS_NODE_H

#include <stddef.h>

#include <json-c/json.h>

/* Bumped when the descriptor or the handler signature changes. */
#define JARVIS_NODE_API_VERSION 1

typedef enum jarvis_side_effect {
    JARVIS_SIDE_EFFECT_READ = 0,
    JARVIS_SIDE_EFFECT_WRITE,
    JARVIS_SIDE_EFFECT_IRREVERSIBLE
} jarvis_side_effect;

/* Handler results. Anything other than JARVIS_OK ends the NodeRun `failed`. */
typedef enum jarvis_status {
    JARVIS_OK = 0,
    /* jarvis_ctx_wait_fd: the caller's own timeout elapsed first */
    JARVIS_WAIT_ELAPSED = 1,
    /* failed, error.code "handler_error"; the reason goes to the log only */
    JARVIS_ERR_HANDLER = -1,
    /* the run was canceled: return it as is (state "canceled") */
    JARVIS_ERR_CANCELED = -2,
    /* the run's deadline passed: return it as is (failed, "timeout") */
    JARVIS_ERR_TIMEOUT = -3
} jarvis_status;

typedef enum jarvis_log_level {
    JARVIS_LOG_DEBUG = 0,
    JARVIS_LOG_INFO,
    JARVIS_LOG_WARN,
    JARVIS_LOG_ERROR
} jarvis_log_level;

/* Per-run context, opaque to plugins; valid for the duration of the call. */
typedef struct jarvis_ctx jarvis_ctx;

/*
 * A handler. `inputs` is the request's inputs object (borrowed, always a
 * JSON object). On success set *outputs to a new JSON object and return
 * JARVIS_OK; on failure return jarvis_ctx_fail(ctx, ...).
 */
typedef int (*jarvis_handler_fn)(jarvis_ctx *ctx, json_object *inputs, json_object **outputs);

/*
 * input_schema / output_schema: JSON Schema text (NULL: any object). The
 * service compiles both when the worker starts (a schema it cannot enforce
 * stops the worker), validates `inputs` before calling the handler (a
 * mismatch ends the run failed / "invalid_inputs" with the field paths in
 * error.details.errors) and the handler's outputs after (a mismatch is a
 * handler_error). Supported keywords: type (a name or an array of names,
 * "null" included), properties, required, additionalProperties (boolean or
 * schema), items, enum (strings), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, minLength, maxLength, minItems, maxItems, format
 * ("date-time" and "uri" are checked, others ignored), and the annotations
 * title, description, default, examples, $schema, $id, $comment.
 */
typedef struct jarvis_node {
    const char *node_type_id;  /* e.g. "jarvis.core.echo"; unique in a build */
    const char *version;       /* the node type's version, e.g. "0.3.8" */
    const char *description;   /* one sentence for a Node Registry */
    const char *input_schema;  /* JSON Schema text for inputs, or NULL */
    const char *output_schema; /* JSON Schema text for outputs, or NULL */
    jarvis_side_effect side_effect;
    jarvis_handler_fn handler;
} jarvis_node;

typedef struct jarvis_pack {
    const char *name;                /* the folder name under plugins/ */
    const jarvis_node *const *nodes; /* NULL-terminated */
} jarvis_pack;

/* The request's ids; never NULL, valid for the duration of the call. */
const char *jarvis_ctx_node_run_id(const jarvis_ctx *ctx);
const char *jarvis_ctx_run_id(const jarvis_ctx *ctx);

/* Borrowed parts of the request; NULL where the request omitted them. */
json_object *jarvis_ctx_node_type_ref(const jarvis_ctx *ctx);
json_object *jarvis_ctx_run_context(const jarvis_ctx *ctx);
json_object *jarvis_ctx_constraints(const jarvis_ctx *ctx);
json_object *jarvis_ctx_extensions(const jarvis_ctx *ctx);

/* Who asked: the verified token's "sub" ("" when it has none), or the
 * configured dev/anonymous subject when auth is disabled/optional. */
const char *jarvis_ctx_subject(const jarvis_ctx *ctx);

/* The verified token's claims (borrowed), or NULL when no token was given. */
json_object *jarvis_ctx_claims(const jarvis_ctx *ctx);

/*
 * The W3C Trace Context `traceparent` header of the HTTP request that asked
 * for this run, e.g. "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
 * (always 55 characters), or NULL when the request had none or one that is
 * not a valid version-00 value (the service checks it: lower-case hex, a
 * trace-id and parent-id not all zeros; anything else is dropped). A node
 * that calls another service should send it on as that request's
 * `traceparent` header, unchanged, so the callee joins the caller's trace
 * (jarvis.web.fetch does). Valid for the duration of the call; a value
 * holds only hex digits and "-", so it goes into a header line as it is.
 */
const char *jarvis_ctx_traceparent(const jarvis_ctx *ctx);

/*
 * Writes one line to the service log, tagged with the run's ids. The text is
 * bounded and escaped by the service; never put secrets or whole inputs in it.
 */
void jarvis_ctx_log(jarvis_ctx *ctx, jarvis_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records why the handler failed and returns JARVIS_ERR_HANDLER, so that a
 * handler ends with `return jarvis_ctx_fail(ctx, "bad %s", what);`. The
 * reason is logged; the client sees only a generic message.
 */
int jarvis_ctx_fail(jarvis_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * As jarvis_ctx_fail, for a failure the client should be able to tell
 * apart: the run ends failed with error.code `code` and error.message
 * `message` instead of handler_error. Both must be static strings of the
 * plugin (never built from inputs, never secrets); code is lower_snake_case
 * and specific (e.g. "fetch_denied"). The formatted reason goes to the log
 * only. Returns JARVIS_ERR_HANDLER.
 */
int jarvis_ctx_fail_code(jarvis_ctx *ctx, const char *code, const char *message, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

/* ---- cancellation and deadlines ----
 *
 * A run ends early when a cancel for its node_run_id reaches any worker of
 * the pool, or when its deadline passes (JARVIS_DEFAULT_TIMEOUT_SECS and the
 * request's constraints.budgets.max_wall_time_ms, the smaller wins). A
 * handler that blocks should do so through these calls, which return at
 * once when either happens; a handler that ignores them is given a short
 * grace period, then abandoned (its worker exits after answering).
 * Waiting through them (or asking for jarvis_ctx_wake_fd before a poll of
 * its own) also tells the worker that this thread will block, so its
 * other requests go on on another thread at once; a handler that blocks
 * otherwise holds them up to 2 ms.
 */

/* 1 once the run has been canceled, else 0. Cheap: poll it in loops. */
int jarvis_ctx_cancelled(const jarvis_ctx *ctx);

/*
 * Whether the run must stop now, and why: JARVIS_ERR_CANCELED (a cancel,
 * or the service stopped it), JARVIS_ERR_TIMEOUT (its deadline passed), or
 * JARVIS_OK. Cheap. Handlers with their own poll loops (on
 * jarvis_ctx_wake_fd) return what this says when it is not JARVIS_OK.
 */
int jarvis_ctx_stop_reason(const jarvis_ctx *ctx);

/* Milliseconds left before the deadline: -1 when there is none, 0 when it
 * has passed. */
long long jarvis_ctx_remaining_ms(const jarvis_ctx *ctx);

/* Sleeps ms milliseconds. Returns JARVIS_OK, or JARVIS_ERR_CANCELED /
 * JARVIS_ERR_TIMEOUT as soon as the run is canceled or out of time. */
int jarvis_ctx_sleep_ms(jarvis_ctx *ctx, long long ms);

/*
 * Waits until fd has one of `events` (poll(2) bits), at most timeout_ms
 * (-1: no limit of the caller's own). Returns JARVIS_OK with *revents set,
 * JARVIS_WAIT_ELAPSED when timeout_ms passed, JARVIS_ERR_CANCELED or
 * JARVIS_ERR_TIMEOUT, or JARVIS_ERR_HANDLER if poll failed.
 */
int jarvis_ctx_wait_fd(jarvis_ctx *ctx, int fd, short events, long long timeout_ms, short *revents);

/* An fd that becomes readable when the run is canceled or out of time, for
 * handlers that poll several fds themselves (e.g. curl_multi_poll). Never
 * read or close it. */
int jarvis_ctx_wake_fd(const jarvis_ctx *ctx);

#endif /* JARVIS_NODE_H */
