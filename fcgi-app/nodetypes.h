/* nodetypes.h - the linked node types as spec/v1 NodeType objects. */
#ifndef JARVIS_NODETYPES_H
#define JARVIS_NODETYPES_H

#include <json-c/json.h>

#include "jarvis/node.h"

/*
 * A new JSON array of NodeType objects (schemas/core/node_type.schema.json),
 * one per node of the NULL-terminated pack list, in pack order: id, version,
 * kind "atomic", description, input/output schemas, the side-effect class as
 * constraints.gates.side_effect_class, and the pack as a metadata label.
 * NULL when a schema text is not JSON.
 */
json_object *nt_list(const jarvis_pack *const *packs);

#endif
