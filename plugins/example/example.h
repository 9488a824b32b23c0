/* example.h - the nodes of the example pack. */
#ifndef JARVIS_EXAMPLE_H
#define JARVIS_EXAMPLE_H

#include "jarvis/node.h"

extern const jarvis_node example_node_greet; /* greet.c */

#endif
