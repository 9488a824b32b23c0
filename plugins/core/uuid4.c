/*
 * uuid4.c - jarvis.core.uuid4: a random RFC 4122 version-4 UUID, written as
 * Python's str(uuid.uuid4()) writes it (lowercase, 8-4-4-4-12), from
 * OpenSSL's CSPRNG.
 */
#include <stdio.h>

#include <openssl/rand.h>

#include "jarvis/node.h"
#include "nodes.h"

/* "xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx" plus NUL */
#define UUID_TEXT_LEN 37

static void format_uuid(const unsigned char b[16], char out[UUID_TEXT_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

static int uuid4_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    unsigned char b[16];
    char text[UUID_TEXT_LEN];

    (void)inputs;
    if (RAND_bytes(b, sizeof b) != 1)
        return jarvis_ctx_fail(ctx, "uuid4: RAND_bytes failed");
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant RFC 4122 */
    format_uuid(b, text);
    return core_output_one(ctx, outputs, "uuid4", json_object_new_string(text));
}

const jarvis_node core_node_uuid4 = {
    .node_type_id = "jarvis.core.uuid4",
    .version = "0.3.8",
    .description = "Generates a random version-4 UUID as a lowercase 8-4-4-4-12 string.",
    .input_schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"uuid4\":{\"type\":\"string\",\"minLength\":36,\"maxLength\":36}},"
                     "\"required\":[\"uuid4\"],\"additionalProperties\":false}",
    .side_effect = JARVIS_SIDE_EFFECT_READ,
    .handler = uuid4_handler,
};
