/*
 * auth.h - bearer JWT authentication of a request, as the ARP server SDK's
 * middleware does it: same settings, same 401 bodies and challenges.
 */
#ifndef JARVIS_AUTH_H
#define JARVIS_AUTH_H

#include <pthread.h>
#include <stdint.h>

#include <json-c/json.h>

#include "authcfg.h"
#include "jwks.h"
#include "response.h"

/* Longest token accepted, and longest encoded JOSE header within it. */
#define AUTH_MAX_TOKEN 8192
#define AUTH_MAX_HEADER_B64 2048

/* Tokens verified recently, per worker: a client reuses its token for many
 * requests, and libjwt 1.10 parses the PEM key on every jwt_decode. */
#define AUTH_CACHE_SLOTS 128

struct auth_cache_entry {
    unsigned char digest[32]; /* SHA-256 of the whole token */
    unsigned generation;      /* of the keys that verified it */
    json_object *claims;      /* owned; NULL: slot free */
    int64_t used_ms;
};

/* Longest reason kept for a failed key fetch (health, log). */
#define AUTH_MAX_KEY_ERROR 512

/*
 * One per worker, shared by its serving threads. `lock` guards keys, cache
 * and the key status; it is never held across a network fetch, so a slow
 * identity provider delays only the request that fetches, never a cancel
 * or a health check on another thread.
 */
struct auth {
    struct auth_settings s; /* read-only after auth_init */
    pthread_mutex_t lock;
    struct jwks keys;
    struct auth_cache_entry cache[AUTH_CACHE_SLOTS];
    int fetching;                       /* a thread is fetching keys now */
    pthread_cond_t fetched;             /* broadcast when that fetch ends */
    char key_error[AUTH_MAX_KEY_ERROR]; /* why the last fetch failed; "" when it worked */
};

/* The keys as a health check reports them. */
struct auth_key_status {
    int disabled;                   /* ARP_AUTH_MODE=disabled: no keys needed */
    size_t keys;                    /* keys held now */
    int64_t loaded_ms;              /* when they were last fetched, 0: never */
    char error[AUTH_MAX_KEY_ERROR]; /* the last fetch's failure, "" if it worked */
};

/* Copies the key status (takes the lock briefly; never waits on a fetch). */
void auth_key_status(struct auth *a, struct auth_key_status *st);

/* Who made the request. */
struct auth_principal {
    char subject[AUTH_MAX_NAME]; /* "sub", or the dev/anonymous subject */
    json_object *claims;         /* owned; the verified claims, or {"sub":...} */
};

/*
 * Reads the settings (auth_settings_from_env) and, unless auth is disabled,
 * loads the keys once. A key fetch that fails is logged, not fatal: the
 * worker answers 401 "Unable to fetch JWKS" and retries (rate-limited) until
 * the identity provider answers; it never runs open. Returns 0, or -1 with
 * err set when the settings forbid starting.
 */
int auth_init(struct auth *a, char *err, size_t errlen);

void auth_cleanup(struct auth *a);

/*
 * Authenticates a request from its Authorization header value ("" when
 * absent). Returns 0 with *p filled (caller calls auth_principal_cleanup),
 * or -1 with *err set to the 401 answer (body and WWW-Authenticate).
 */
int auth_check(struct auth *a, const char *authorization, int64_t now_s, struct auth_principal *p,
               struct resp *err);

/*
 * Verifies a compact JWS at time now_s (Unix seconds). Returns 0 with *p
 * filled, or -1 with *why one of the SDK's messages ("Token expired",
 * "Invalid token audience", "Invalid token issuer", "Unable to fetch
 * JWKS", "Invalid token") and *detail a reason for the log.
 */
int auth_verify_token(struct auth *a, const char *token, int64_t now_s, struct auth_principal *p,
                      const char **why, const char **detail);

void auth_principal_cleanup(struct auth_principal *p);

#endif
