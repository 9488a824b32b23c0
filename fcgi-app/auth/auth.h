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

/* Longest reason kept for a failed key fetch (health, log). */
#define AUTH_MAX_KEY_ERROR 512

/* How long a request that needs a key not known yet waits for the refetch
 * it asked for; the fetch itself goes on in the background. */
#define AUTH_KEY_WAIT_MS 1000
/* Kids that a fresh JWKS did not have, remembered so that junk tokens do
 * not wait on the identity provider again and again. */
#define AUTH_UNKNOWN_KIDS 64
#define AUTH_UNKNOWN_KID_MS JWKS_REFETCH_MIN_MS
/* How long the jwks_uri read from a discovery document is used. */
#define AUTH_DISCOVERY_TTL_MS 3600000

/*
 * What a worker's auth shares with the rest of its pool (through the run
 * table): a pool-wide refetch limit, and the last JWKS document fetched by
 * any worker, which the others adopt instead of fetching it again. All
 * NULL: nothing shared (tools, unit tests).
 */
struct auth_share {
    void *arg;
    /* 1 if this worker may fetch now (at most once per interval pool-wide) */
    int (*gate)(void *arg, int64_t now_ms, int64_t min_interval_ms);
    /* publish a fetched document stamped when_ms; 0 or -1 */
    int (*store)(void *arg, const char *doc, size_t len, int64_t when_ms);
    /* 1 with a copy (caller frees) if one newer than have_ms is there */
    int (*newer)(void *arg, int64_t have_ms, char **doc, size_t *len, int64_t *when_ms);
};

/*
 * One per worker, shared by its serving threads; opaque (its layout is in
 * auth_internal.h, for auth.c and the white-box tests). Keys are refetched
 * by a refresher thread, so a slow identity provider delays no cancel and
 * no health check, and a request that needs a new key waits for it at
 * most AUTH_KEY_WAIT_MS.
 */
struct auth;

/* Connects a to its pool (see struct auth_share) and adopts any newer
 * document the pool already has. */
void auth_set_share(struct auth *a, const struct auth_share *share);

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
 * Reads the settings (auth_settings_from_env) and checks the configured key
 * sources as auth_new does, without fetching anything, logging or starting
 * a thread (jarvis-atomic-executor --check-config). Returns 0, or -1 with
 * err set when the settings forbid starting.
 */
int auth_settings_load(struct auth_settings *s, char *err, size_t errlen);

/*
 * A new auth (caller owns it: auth_free): reads and checks the settings
 * (auth_settings_load) and, unless auth is disabled, loads the keys once. A
 * key fetch that fails is logged, not fatal: the worker answers 401 "Unable
 * to fetch JWKS" and retries (rate-limited) until the identity provider
 * answers; it never runs open. NULL with err set when the settings forbid
 * starting (nothing is left allocated).
 */
struct auth *auth_new(char *err, size_t errlen);

/* Stops the refresher and frees a (NULL is allowed). */
void auth_free(struct auth *a);

/* auth_check's answer for a path exempt from authentication. */
#define AUTH_EXEMPT 1

/*
 * Authenticates a request for the raw path from its Authorization header
 * value ("" when absent). Returns AUTH_EXEMPT for a path exempt from
 * authentication (ARP_AUTH_EXEMPT_PATHS, exact match; nothing checked, *p
 * empty), 0 with *p filled (caller calls auth_principal_cleanup), or -1
 * with *err set to the 401 answer (body and WWW-Authenticate).
 */
int auth_check(struct auth *a, const char *path, const char *authorization, int64_t now_s,
               struct auth_principal *p, struct resp *err);

void auth_principal_cleanup(struct auth_principal *p);

#endif
