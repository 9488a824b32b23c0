/*
 * app.h - one request through the service: route, decode, validate,
 * dispatch, encode. Knows nothing of FastCGI (see request.c and main.c).
 */
#ifndef JARVIS_APP_H
#define JARVIS_APP_H

#include "auth.h"
#include "config.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "response.h"
#include "router.h"

struct app {
    const struct config *cfg; /* borrowed, outlives the app */
    struct dsp_registry reg;
    struct dsp_limits limits; /* limits.rt: the run table, owned; NULL in tools */
    struct auth *auth;        /* owned; NULL in tools and unit tests: no authentication step */
    /* The pool's metrics: in the run table, else this process's own. */
    struct mx mx;
};

/* What app_init sets up besides the registry. */
#define APP_RUN_TABLE 0x1
#define APP_AUTH 0x2

/* One request/response exchange; the log record borrows from body. */
struct exchange {
    struct resp resp;
    int head_only;
    json_object *body; /* the parsed request body, owned */
    struct auth_principal who;
    struct route_match route;
    struct log_request log;
    struct mx_obs obs;   /* what the answer adds to the metrics */
    const struct mx *mx; /* where (the app's), for the abandoned path */
};

/*
 * Returns 0, or -1 with a message in err when the linked packs, the run
 * table or the auth settings are unusable. `what` is APP_RUN_TABLE and/or
 * APP_AUTH; tools and unit tests leave them out (no cross-worker cancel,
 * no pool-wide cap, no authentication).
 */
int app_init(struct app *app, const struct config *cfg, const jarvis_pack *const *packs,
             unsigned what, char *err, size_t errlen);

/* Releases what app_init took. */
void app_cleanup(struct app *app);

/* Answers req into x (always: errors become ErrorEnvelope answers). conn
 * is the connection and serving thread an execute runs on (NULL: none). */
void app_handle(struct app *app, const struct http_req *req, const struct dsp_conn *conn,
                struct exchange *x);

/* Answers into x the execute whose handler was abandoned (dsp_conn's
 * abandoned callback, on the runner's watcher thread) while app_handle is
 * still inside that execute on its serving thread, which never returns. */
void app_answer_abandoned(struct exchange *x, const struct exec_result *res);

/* Frees what the exchange holds; x can then be reused. */
void app_exchange_cleanup(struct exchange *x);

#endif
