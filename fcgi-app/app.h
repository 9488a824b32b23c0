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
};

/* One request/response exchange; the log record borrows from body. */
struct exchange {
    struct resp resp;
    int head_only;
    json_object *body; /* the parsed request body, owned */
    struct route_match route;
    struct log_request log;
};

/* Returns 0, or -1 with a message in err when the linked packs are unusable. */
int app_init(struct app *app, const struct config *cfg, const jarvis_pack *const *packs,
             char *err, size_t errlen);

/* Answers req into x (always: errors become ErrorEnvelope answers). */
void app_handle(struct app *app, const struct http_req *req, struct exchange *x);

/* Frees what the exchange holds; x can then be reused. */
void app_exchange_cleanup(struct exchange *x);

#endif
