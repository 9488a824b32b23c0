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

#endif
