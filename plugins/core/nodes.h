/* nodes.h - the node descriptors of the jarvis.core pack, one file each. */
#ifndef JARVIS_CORE_NODES_H
#define JARVIS_CORE_NODES_H

#include "jarvis/node.h"

extern const jarvis_node core_node_echo; /* echo.c */

#endif
