/* pack.c - the jarvis.core pack: the list of its nodes, and what the
 * nodes share (nodes.h). */
#include "jarvis/node.h"

#include "nodes.h"

static const jarvis_node *const core_nodes[] = {
    &core_node_echo,
    &core_node_sleep,
    &core_node_uuid4,
    &core_node_time_now,
    &core_node_hash_sha256,
    &core_node_web_fetch,
    NULL,
};

const jarvis_pack jarvis_pack_core = {
    .name = "core",
    .nodes = core_nodes,
};

int core_output_one(jarvis_ctx *ctx, json_object **outputs, const char *key, json_object *value)
{
    *outputs = value != NULL ? json_object_new_object() : NULL;
    if (*outputs == NULL || json_object_object_add(*outputs, key, value) != 0) {
        json_object_put(*outputs);
        json_object_put(value);
        *outputs = NULL;
        return jarvis_ctx_fail(ctx, "out of memory");
    }
    return JARVIS_OK;
}
