/*
 * nodetypes.c - describes what this build can run, in the spec's NodeType
 * shape, so that a Node Registry can be fed from the binary itself
 * (`jarvis-atomic-executor --list-node-types`).
 */
#include "nodetypes.h"

#include "jschema.h"

static const char *side_effect_name(jarvis_side_effect s)
{
    switch (s) {
    case JARVIS_SIDE_EFFECT_WRITE: return "write";
    case JARVIS_SIDE_EFFECT_IRREVERSIBLE: return "irreversible";
    case JARVIS_SIDE_EFFECT_READ: break;
    }
    return "read";
}

static json_object *node_type(const jarvis_pack *pack, const jarvis_node *n)
{
    json_object *o = json_object_new_object();
    json_object *gates = json_object_new_object(), *constraints = json_object_new_object();
    json_object *labels = json_object_new_object(), *metadata = json_object_new_object();
    json_object *in = js_schema_json(n->input_schema), *out = js_schema_json(n->output_schema);

    if ((n->input_schema != NULL && in == NULL) || (n->output_schema != NULL && out == NULL)) {
        json_object_put(in);
        json_object_put(out);
        json_object_put(o);
        json_object_put(gates);
        json_object_put(constraints);
        json_object_put(labels);
        json_object_put(metadata);
        return NULL;
    }
    json_object_object_add(o, "node_type_id", json_object_new_string(n->node_type_id));
    json_object_object_add(o, "version", json_object_new_string(n->version));
    json_object_object_add(o, "kind", json_object_new_string("atomic"));
    if (n->description != NULL)
        json_object_object_add(o, "description", json_object_new_string(n->description));
    /* A node without a declared schema takes any object. */
    json_object_object_add(o, "input_schema",
                           in ? in : json_tokener_parse("{\"type\":\"object\"}"));
    json_object_object_add(o, "output_schema",
                           out ? out : json_tokener_parse("{\"type\":\"object\"}"));
    json_object_object_add(gates, "side_effect_class",
                           json_object_new_string(side_effect_name(n->side_effect)));
    json_object_object_add(constraints, "gates", gates);
    json_object_object_add(o, "constraints", constraints);
    json_object_object_add(labels, "jarvis.pack", json_object_new_string(pack->name));
    json_object_object_add(metadata, "labels", labels);
    json_object_object_add(o, "metadata", metadata);
    return o;
}

json_object *nt_list(const jarvis_pack *const *packs)
{
    json_object *list = json_object_new_array();

    for (; packs != NULL && *packs != NULL; packs++) {
        const jarvis_node *const *n;
        for (n = (*packs)->nodes; n != NULL && *n != NULL; n++) {
            json_object *t = node_type(*packs, *n);
            if (t == NULL) {
                json_object_put(list);
                return NULL;
            }
            json_object_array_add(list, t);
        }
    }
    return list;
}
