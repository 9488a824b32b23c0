/* pack.c - the jarvis.core pack: the list of its nodes. */
#include "jarvis/node.h"

#include "nodes.h"

static const jarvis_node *const core_nodes[] = {
    &core_node_echo,
    NULL,
};

const jarvis_pack jarvis_pack_core = {
    .name = "core",
    .nodes = core_nodes,
};
