/*
 * ctx.h - the handler context behind include/jarvis/node.h's jarvis_ctx:
 * what a running handler may ask about its run, and the one answer to
 * "must this run stop, and why". Private to the service (plugins see only
 * the opaque type); dispatch.c fills it, ctx.c answers for it.
 */
#ifndef JARVIS_CTX_H
#define JARVIS_CTX_H

#include <stdatomic.h>
#include <stdint.h>

#include "dispatch.h"
#include "runner.h"
#include "runtable.h"

struct jarvis_ctx {
    const struct exec_req *req;
    const jarvis_node *node;
    struct rt_table *rt; /* NULL without a run table */
    int slot;
    struct rn_runner *runner;   /* the serving thread's */
    int client_fd;              /* -1: none */
    const atomic_int *stopping; /* the worker's stop flag, or NULL */
    int64_t deadline_ms;        /* 0: none */
    char fail_reason[DSP_MAX_MESSAGE];
    const char *fail_code;    /* jarvis_ctx_fail_code: static, or NULL */
    const char *fail_message; /* its client-facing message */
};

#endif
