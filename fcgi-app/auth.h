/*
 * auth.h - bearer JWT authentication of a request, as the ARP server SDK's
 * middleware does it: same settings, same 401 bodies and challenges.
 */
#ifndef JARVIS_AUTH_H
#define JARVIS_AUTH_H

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

struct auth {
    struct auth_settings s;
    struct jwks keys;
    struct auth_cache_entry cache[AUTH_CACHE_SLOTS];
};

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
