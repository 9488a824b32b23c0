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

/* Longest span honoured, for budgets and waits alike (about 31 years):
 * keeps every "now + span" in range. */
#define CTX_MAX_SPAN_MS 1000000000000LL

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

/* ms bounded to CTX_MAX_SPAN_MS (a double: budgets may be written 5.0). */
int64_t ctx_clamp_span(double ms);

#endif
