/*
 * ctx.c - owns the handler context API of include/jarvis/node.h: the
 * request's parts, logging, failure reasons, and cancel-aware waiting. The
 * rule "must this run stop, and why" lives in jarvis_ctx_stop_reason only;
 * every wait here and in plugins asks it.
 */
#include "ctx.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jarvis/util.h"
#include "log.h"
#include "timefmt.h"
#include "utf8.h"

const char *jarvis_ctx_node_run_id(const jarvis_ctx *ctx)
{
    return ctx->req->node_run_id;
}

const char *jarvis_ctx_run_id(const jarvis_ctx *ctx)
{
    return ctx->req->run_id;
}

json_object *jarvis_ctx_node_type_ref(const jarvis_ctx *ctx)
{
    return ctx->req->node_type_ref;
}

json_object *jarvis_ctx_run_context(const jarvis_ctx *ctx)
{
    return ctx->req->run_context;
}

json_object *jarvis_ctx_constraints(const jarvis_ctx *ctx)
{
    return ctx->req->constraints;
}

json_object *jarvis_ctx_extensions(const jarvis_ctx *ctx)
{
    return ctx->req->extensions;
}

const char *jarvis_ctx_subject(const jarvis_ctx *ctx)
{
    return ctx->req->subject != NULL ? ctx->req->subject : "";
}

json_object *jarvis_ctx_claims(const jarvis_ctx *ctx)
{
    return ctx->req->claims;
}

const char *jarvis_ctx_traceparent(const jarvis_ctx *ctx)
{
    return ctx->req->traceparent;
}

void jarvis_ctx_log(jarvis_ctx *ctx, jarvis_log_level level, const char *fmt, ...)
{
    char msg[LOG_MAX_LINE / 2];
    char f[LOG_MAX_LINE] = "";
    va_list ap;

    va_start(ap, fmt);
    utf8_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_append_kv(f, sizeof f, "request_id", ctx->req->request_id);
    log_append_kv(f, sizeof f, "node_run_id", ctx->req->node_run_id);
    log_append_kv(f, sizeof f, "node_type_id", ctx->req->node_type_id);
    log_append_kv(f, sizeof f, "msg", msg);
    log_emit(level, f);
}

int jarvis_ctx_cancelled(const jarvis_ctx *ctx)
{
    return ctx->rt != NULL && rt_cancel_requested(ctx->rt, ctx->slot);
}

long long jarvis_ctx_remaining_ms(const jarvis_ctx *ctx)
{
    int64_t left;

    if (ctx->deadline_ms == 0)
        return -1;
    left = ctx->deadline_ms - ts_now_ms();
    return left > 0 ? left : 0;
}

int jarvis_ctx_wake_fd(const jarvis_ctx *ctx)
{
    /* A handler asks for this fd to poll it with its own: it will block. */
    rn_yield(ctx->runner);
    return rn_wake_fd(ctx->runner);
}

int jarvis_ctx_stop_reason(const jarvis_ctx *ctx)
{
    if (jarvis_ctx_cancelled(ctx))
        return JARVIS_ERR_CANCELED;
    if (ctx->deadline_ms != 0 && ts_now_ms() >= ctx->deadline_ms)
        return JARVIS_ERR_TIMEOUT;
    /* The watch stopped the run but neither shows yet: treat as canceled. */
    if (rn_stop_requested(ctx->runner))
        return JARVIS_ERR_CANCELED;
    return JARVIS_OK;
}

int jarvis_ctx_wait_fd(jarvis_ctx *ctx, int fd, short events, long long timeout_ms, short *revents)
{
    /* The caller's own timeout runs on the monotonic clock (a wall-clock
     * step must not stretch a sleep); the run's deadline is wall-clock. */
    int64_t until = -1;

    if (timeout_ms >= 0)
        until = ts_mono_us() / 1000 + jarvis_clamp_span_ms((double)timeout_ms);
    if (revents != NULL)
        *revents = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = rn_wake_fd(ctx->runner), .events = POLLIN},
                              {.fd = fd, .events = events}};
        int64_t mono = ts_mono_us() / 1000, wait = -1;
        int stop = jarvis_ctx_stop_reason(ctx), n;

        if (stop != JARVIS_OK)
            return stop;
        if (until >= 0) {
            if (mono >= until)
                return JARVIS_WAIT_ELAPSED;
            wait = until - mono;
        }
        if (ctx->deadline_ms != 0) {
            int64_t left = ctx->deadline_ms - ts_now_ms();
            if (wait < 0 || left < wait)
                wait = left < 0 ? 0 : left;
        }
        if (wait != 0)
            rn_yield(ctx->runner);
        n = poll(p, fd >= 0 ? 2 : 1, wait > INT32_MAX ? INT32_MAX : (int)wait);
        if (n < 0 && errno != EINTR)
            return jarvis_ctx_fail(ctx, "poll: %s", strerror(errno));
        if (n > 0 && fd >= 0 && p[1].revents != 0 && !(p[0].revents & POLLIN)) {
            if (revents != NULL)
                *revents = p[1].revents;
            return JARVIS_OK;
        }
    }
}

int jarvis_ctx_sleep_ms(jarvis_ctx *ctx, long long ms)
{
    int rc = jarvis_ctx_wait_fd(ctx, -1, 0, ms < 0 ? 0 : ms, NULL);

    return rc == JARVIS_WAIT_ELAPSED ? JARVIS_OK : rc;
}

int jarvis_ctx_fail(jarvis_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    utf8_vformat(ctx->fail_reason, sizeof ctx->fail_reason, fmt, ap);
    va_end(ap);
    return JARVIS_ERR_HANDLER;
}

int jarvis_ctx_fail_code(jarvis_ctx *ctx, const char *code, const char *message, const char *fmt,
                         ...)
{
    va_list ap;

    va_start(ap, fmt);
    utf8_vformat(ctx->fail_reason, sizeof ctx->fail_reason, fmt, ap);
    va_end(ap);
    if (code != NULL && code[0] != '\0' && message != NULL) {
        ctx->fail_code = code;
        ctx->fail_message = message;
    }
    return JARVIS_ERR_HANDLER;
}
