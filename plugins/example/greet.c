/*
 * greet.c - example.greet: the smallest useful node, written the way every
 * node should be: a const descriptor, precise input/output schemas (the
 * service enforces them, so the handler can trust the shape), a handler
 * that owns nothing it was lent, and cooperative waiting.
 */
#include <stdio.h>

#include "example.h"

/* The service validates inputs against this before the handler runs. */
static const char input_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},"
    "\"greeting\":{\"enum\":[\"hello\",\"hi\",\"welcome\"]},"
    "\"delay_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":60000}},"
    "\"required\":[\"name\"],"
    "\"additionalProperties\":false}";

static const char output_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{\"message\":{\"type\":\"string\"},\"by\":{\"type\":\"string\"}},"
    "\"required\":[\"message\",\"by\"],"
    "\"additionalProperties\":false}";

static const char *member_string(json_object *obj, const char *key, const char *fallback)
{
    json_object *v = NULL;

    /* Borrowed: valid while `obj` is, never put. */
    return json_object_object_get_ex(obj, key, &v) ? json_object_get_string(v) : fallback;
}

static int greet(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    const char *name = member_string(inputs, "name", "");
    const char *greeting = member_string(inputs, "greeting", "hello");
    json_object *delay = NULL;
    char message[128];
    int rc;

    /* A handler that waits does it through the context, so that a cancel or
     * the run's deadline ends the wait at once. */
    if (json_object_object_get_ex(inputs, "delay_ms", &delay) &&
        (rc = jarvis_ctx_sleep_ms(ctx, json_object_get_int64(delay))) != JARVIS_OK)
        return rc;
    snprintf(message, sizeof message, "%c%s, %s!", greeting[0] - 'a' + 'A', greeting + 1, name);
    jarvis_ctx_log(ctx, JARVIS_LOG_DEBUG, "greeted %s", name);
    /* A new object: its one reference goes to the service with JARVIS_OK. */
    *outputs = json_object_new_object();
    json_object_object_add(*outputs, "message", json_object_new_string(message));
    json_object_object_add(*outputs, "by", json_object_new_string(jarvis_ctx_subject(ctx)));
    return JARVIS_OK;
}

const jarvis_node example_node_greet = {
    .node_type_id = "example.greet",
    .version = "1.0.0",
    .description = "Greets someone by name, optionally after a cancellable delay.",
    .input_schema = input_schema,
    .output_schema = output_schema,
    .side_effect = JARVIS_SIDE_EFFECT_READ,
    .handler = greet,
};
