/*
 * echo.c - jarvis.core.echo: returns its input, for smoke tests and wiring
 * checks. A string `echo` input comes back as is; any other inputs come back
 * as their JSON text, serialized as the reference does (sorted keys).
 */
#include <stdlib.h>

#include "jarvis/node.h"
#include "nodes.h"
#include "pyjson.h"

static int echo_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    json_object *echo = NULL;
    char *text;

    *outputs = json_object_new_object();
    if (*outputs == NULL)
        return jarvis_ctx_fail(ctx, "out of memory");
    if (json_object_object_get_ex(inputs, "echo", &echo) &&
        json_object_is_type(echo, json_type_string)) {
        json_object_object_add(*outputs, "echo", json_object_get(echo));
        return JARVIS_OK;
    }
    text = pyjson_dumps_sorted(inputs);
    if (text == NULL) {
        json_object_put(*outputs);
        *outputs = NULL;
        return jarvis_ctx_fail(ctx, "cannot serialize inputs");
    }
    json_object_object_add(*outputs, "echo", json_object_new_string(text));
    free(text);
    return JARVIS_OK;
}

const jarvis_node core_node_echo = {
    .node_type_id = "jarvis.core.echo",
    .version = "0.3.8",
    .description = "Echoes its inputs: the `echo` string, or the inputs as sorted-key JSON.",
    /* Any object: a string `echo` comes back as is, anything else as JSON text. */
    .input_schema = "{\"type\":\"object\",\"additionalProperties\":true}",
    .output_schema = "{\"type\":\"object\",\"properties\":{\"echo\":{\"type\":\"string\"}},"
                     "\"required\":[\"echo\"],\"additionalProperties\":false}",
    .side_effect = JARVIS_SIDE_EFFECT_READ,
    .handler = echo_handler,
};
