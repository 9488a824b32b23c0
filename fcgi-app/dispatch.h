/*
 * dispatch.h - node_type_id -> linked handler, and one run of it.
 */
#ifndef JARVIS_DISPATCH_H
#define JARVIS_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "jarvis/node.h"

/* Most node types one build can link. */
#define DSP_MAX_NODES 256
/* Longest message or reason kept for a failed run. */
#define DSP_MAX_MESSAGE 512

struct dsp_registry {
    const jarvis_node *nodes[DSP_MAX_NODES]; /* sorted by node_type_id */
    size_t count;
};

/* A validated AtomicExecuteRequest; all pointers borrowed from its JSON. */
struct exec_req {
    const char *node_run_id;
    const char *run_id;
    const char *node_type_id;
    const char *node_type_version;
    json_object *node_type_ref;
    json_object *inputs;
    json_object *run_context; /* NULL when absent */
    json_object *constraints; /* NULL when absent */
    json_object *extensions;  /* NULL when absent */
};

enum run_state { RUN_SUCCEEDED = 0, RUN_FAILED, RUN_CANCELED };

struct exec_result {
    const char *node_run_id; /* borrowed from the request */
    enum run_state state;
    json_object *outputs;    /* owned; set only when succeeded */
    int64_t started_ms;
    int64_t ended_ms;
    const char *error_code;  /* static; NULL when succeeded */
    char message[DSP_MAX_MESSAGE]; /* client-facing error message */
    char reason[DSP_MAX_MESSAGE];  /* operator-facing, log only */
};

/*
 * Indexes the nodes of a NULL-terminated pack list. Returns 0, or -1 (with
 * a message in err) on a duplicate node_type_id, a node without id, version
 * or handler, or more than DSP_MAX_NODES nodes.
 */
int dsp_registry_init(struct dsp_registry *reg, const jarvis_pack *const *packs, char *err,
                      size_t errlen);

/* The node linked for node_type_id, or NULL. */
const jarvis_node *dsp_lookup(const struct dsp_registry *reg, const char *node_type_id);

/* Runs req to completion and fills res (caller calls dsp_result_cleanup). */
void dsp_execute(const struct dsp_registry *reg, const struct exec_req *req,
                 struct exec_result *res);

void dsp_result_cleanup(struct exec_result *res);

/* Fills req from a body that passed sch_atomic_execute_request. */
void dsp_request_from_json(json_object *body, struct exec_req *req);

#endif
