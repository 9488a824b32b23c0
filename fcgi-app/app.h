/*
 * app.h - one request through the service: route, decode, validate,
 * dispatch, encode. Knows nothing of FastCGI (see request.c and main.c).
 */
#ifndef JARVIS_APP_H
#define JARVIS_APP_H

#include "config.h"
#include "dispatch.h"
#include "log.h"
#include "request.h"
#include "response.h"
#include "router.h"

struct app {
    const struct config *cfg; /* borrowed, outlives the app */
    struct dsp_registry reg;
    struct dsp_limits limits; /* limits.rt: the run table, owned; NULL in tools */
};

/* One request/response exchange; the log record borrows from body. */
struct exchange {
    struct resp resp;
    int head_only;
    json_object *body; /* the parsed request body, owned */
    struct route_match route;
    struct log_request log;
    int exit_after; /* a handler was abandoned: end the worker after answering */
};

/*
 * Returns 0, or -1 with a message in err when the linked packs or the run
 * table are unusable. With_run_table 0 skips the table (tools, unit tests):
 * then cancel reaches nothing and there is no pool-wide cap.
 */
int app_init(struct app *app, const struct config *cfg, const jarvis_pack *const *packs,
             int with_run_table, char *err, size_t errlen);

/* Releases what app_init took. */
void app_cleanup(struct app *app);

/* Answers req into x (always: errors become ErrorEnvelope answers). */
void app_handle(struct app *app, const struct http_req *req, struct exchange *x);

/* Frees what the exchange holds; x can then be reused. */
void app_exchange_cleanup(struct exchange *x);

#endif
