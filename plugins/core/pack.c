/* pack.c - the jarvis.core pack: the list of its nodes. */
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
