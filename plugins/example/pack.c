/* pack.c - the example pack: its name (the folder's) and its nodes. */
#include "example.h"

static const jarvis_node *const example_nodes[] = {
    &example_node_greet,
    NULL,
};

const jarvis_pack jarvis_pack_example = {
    .name = "example",
    .nodes = example_nodes,
};
