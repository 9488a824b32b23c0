/* nodes.h - the node descriptors of the jarvis.core pack, one file each. */
#ifndef JARVIS_CORE_NODES_H
#define JARVIS_CORE_NODES_H

#include "jarvis/node.h"

extern const jarvis_node core_node_echo;        /* echo.c */
extern const jarvis_node core_node_sleep;       /* sleep.c */
extern const jarvis_node core_node_uuid4;       /* uuid4.c */
extern const jarvis_node core_node_time_now;    /* time_now.c */
extern const jarvis_node core_node_hash_sha256; /* hash_sha256.c */
extern const jarvis_node core_node_web_fetch;   /* web_fetch*.c */

/* Sets *outputs to a new {key: value}, the one-member answer most nodes
 * give. Takes value (NULL: out of memory). JARVIS_OK, or the code of
 * jarvis_ctx_fail when memory ran out (*outputs is then NULL). pack.c. */
int core_output_one(jarvis_ctx *ctx, json_object **outputs, const char *key, json_object *value);

#endif
