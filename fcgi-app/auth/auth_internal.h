/*
 * auth_internal.h - the layout of struct auth (opaque in auth.h), set-up
 * in place and the token step alone: for auth.c and the white-box tests
 * and fuzz target that set keys, settings or key state by hand. No other
 * product code includes it.
 */
#ifndef JARVIS_AUTH_INTERNAL_H
#define JARVIS_AUTH_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <json-c/json.h>

#include "auth.h"

/* Tokens verified recently, per worker: a client reuses its token for many
 * requests, and libjwt 1.10 parses the PEM key on every jwt_decode. */
#define AUTH_CACHE_SLOTS 128

struct auth_cache_entry {
    unsigned char digest[32]; /* SHA-256 of the whole token */
    unsigned generation;      /* of the keys that verified it */
    json_object *claims;      /* owned; NULL: slot free */
    int64_t used_ms;
};

struct auth_unknown_kid {
    char kid[JWKS_MAX_KID + 1];
    int64_t ms; /* when a fresh JWKS was found without it; 0: free */
};

/* `lock` guards everything below `s`; it is never held across a network
 * fetch (see struct auth in auth.h). */
struct auth {
    struct auth_settings s; /* read-only after auth_init */
    pthread_mutex_t lock;
    struct jwks keys;
    struct auth_cache_entry cache[AUTH_CACHE_SLOTS];
    int fetching;   /* the refresher is fetching now */
    int want_fetch; /* a fetch was asked for */
    int refresher;  /* the refresher thread runs */
    int quit;       /* auth_cleanup: the refresher ends */
    pthread_t refresher_tid;
    pthread_cond_t fetched;             /* broadcast when a fetch ends */
    pthread_cond_t wanted;              /* signalled when want_fetch is set */
    char key_error[AUTH_MAX_KEY_ERROR]; /* why the last fetch failed; "" when it worked */
    struct auth_share share;
    char jwks_uri[AUTH_MAX_URL]; /* from discovery, cached; "" when none */
    int64_t jwks_uri_ms;
    struct auth_unknown_kid unknown[AUTH_UNKNOWN_KIDS];
    unsigned unknown_next;
};

/*
 * Sets up *a in place as auth_new does. Returns 0, or -1 with err set; call
 * auth_cleanup after either (it releases what a failed set-up took).
 */
int auth_init(struct auth *a, char *err, size_t errlen);

void auth_cleanup(struct auth *a);

/*
 * auth_check's token step, exposed for the tests: verifies a compact JWS at
 * time now_s (Unix seconds). Returns 0 with *p filled, or -1 with *why one
 * of the SDK's messages ("Token expired", "Invalid token audience",
 * "Invalid token issuer", "Unable to fetch JWKS", "Invalid token") and
 * *detail a reason for the log.
 */
int auth_verify_token(struct auth *a, const char *token, int64_t now_s, struct auth_principal *p,
                      const char **why, const char **detail);

#endif
