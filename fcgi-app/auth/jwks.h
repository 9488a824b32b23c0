/*
 * jwks.h - the verification keys: a JWKS fetched (http, https or file URI,
 * or found through OIDC discovery) and turned into PEM public keys once, so
 * that each request only looks a key up.
 */
#ifndef JARVIS_JWKS_H
#define JARVIS_JWKS_H

#include <stddef.h>
#include <stdint.h>

#include <jwt.h>

#include "authcfg.h"

#define JWKS_MAX_KEYS 32
#define JWKS_MAX_KID 256
#define JWKS_MAX_BYTES (1024 * 1024)
#define JWKS_FETCH_TIMEOUT_MS 5000
/* A token with an unknown kid triggers at most one refetch per this long. */
#define JWKS_REFETCH_MIN_MS 10000
/* Keys older than this are refetched on the next request, as PyJWKClient's
 * cache lifespan: a key removed from the JWKS stops verifying. */
#define JWKS_MAX_AGE_MS 300000
/* Keys that no refresh could renew for this long are not trusted any more:
 * a revoked key must not keep working while the provider is down. */
#define JWKS_MAX_STALE_MS 3600000
/* RSA keys shorter than this are ignored. */
#define JWKS_MIN_RSA_BITS 2048

enum jwks_kty { JWKS_RSA = 1, JWKS_EC };

struct jwks_key {
    char kid[JWKS_MAX_KID + 1]; /* "" when the JWK has none */
    enum jwks_kty kty;
    jwt_alg_t curve_alg; /* EC: the ES alg of its curve; RSA: JWT_ALG_INVAL */
    jwt_alg_t alg;       /* the JWK's "alg", JWT_ALG_INVAL when absent */
    char *pem;           /* SubjectPublicKeyInfo PEM, owned */
    int pem_len;
};

struct jwks {
    struct jwks_key keys[JWKS_MAX_KEYS];
    size_t n;
    int loaded;              /* a JWKS was parsed at least once */
    unsigned generation;     /* bumped by every successful parse */
    int64_t loaded_ms;       /* when the keys were last fetched and parsed */
    int64_t last_attempt_ms; /* of the last refetch a request caused (limit) */
};

/* Calls curl_global_init; once per process, before any thread starts. */
int jwks_global_init(void);

/*
 * Replaces k's keys with the usable ones of a JWKS document ("use":"sig" or
 * no "use"; RSA >= JWKS_MIN_RSA_BITS; EC on P-256/384/521 with a valid
 * point). Returns the number of keys, or -1 with err set if the document is
 * not a JWKS. Unusable keys are skipped (and logged).
 */
int jwks_parse(struct jwks *k, const char *json, size_t len, char *err, size_t errlen);

/*
 * Fetches url (http, https or file) into a new NUL-terminated buffer (caller
 * frees), at most JWKS_MAX_BYTES, within JWKS_FETCH_TIMEOUT_MS. Returns 0,
 * or -1 with err set.
 */
int jwks_fetch(const char *url, char **body, size_t *len, char *err, size_t errlen);

/*
 * Whether keys may come from url (README, Security): https:// always;
 * http:// only from a loopback host (localhost, 127.0.0.0/8, [::1]), for
 * development, and the caller warns; file:// only when url is the
 * configured ARP_AUTH_JWKS_URI itself (configured nonzero), never from
 * discovery. Returns 0 (trusted), 1 (trusted, plain http on loopback), or
 * -1 with the reason in err. Pure: nothing is fetched or resolved.
 */
int jwks_source_check(const char *url, int configured, char *err, size_t errlen);

/*
 * The JWKS URL the settings point at: ARP_AUTH_JWKS_URI, else the
 * discovery document's jwks_uri (discovery URL, else the issuer's), each
 * checked by jwks_source_check. 0, or -1 with err set.
 */
int jwks_resolve_uri(const struct auth_settings *s, char *uri, size_t len, char *err,
                     size_t errlen);

/*
 * (Re)loads the keys the settings point at: jwks_uri, else the discovery
 * document's jwks_uri (discovery_url, else <issuer>/.well-known/openid-
 * configuration). Returns 0, or -1 with err set (k keeps its old keys).
 */
int jwks_load(struct jwks *k, const struct auth_settings *s, char *err, size_t errlen);

/* The key for a token's kid and alg, or NULL. As PyJWKClient, only keys
 * with a kid are ever used, so a token without one ("") matches nothing. */
const struct jwks_key *jwks_find(const struct jwks *k, const char *kid, jwt_alg_t alg);

void jwks_clear(struct jwks *k);

#endif
