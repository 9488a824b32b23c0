/*
 * authcfg.h - bearer-token settings from ARP_AUTH_* exactly as the ARP
 * server SDK reads them (profiles, aliases, defaults, start-up failures).
 */
#ifndef JARVIS_AUTHCFG_H
#define JARVIS_AUTHCFG_H

#include <stddef.h>

#include <jwt.h>

#define AUTH_MAX_URL 1024
#define AUTH_MAX_NAME 256
#define AUTH_MAX_ALGS 8
#define AUTH_MAX_EXEMPT 16
#define AUTH_DEV_KEYCLOAK_ISSUER "http://localhost:8080/realms/arp-dev"

enum auth_mode { AUTH_REQUIRED = 0, AUTH_OPTIONAL, AUTH_DISABLED };

/* The kind of public key that verifies an algorithm. */
enum auth_key_family { AUTH_KEY_NONE = 0, AUTH_KEY_RSA, AUTH_KEY_EC };

/*
 * The one list of algorithms a token may be verified with (authcfg.c):
 * asymmetric only, since keys come from a JWKS, never a shared secret.
 * ARP_AUTH_ALGORITHMS may name only these, a token's alg must be one of
 * them, and a key verifies it only if it is of its family. Returns the
 * family of an allowed algorithm, AUTH_KEY_NONE for any other (HS*, none,
 * PS*, invalid): drift between those three uses would be a security bug.
 */
enum auth_key_family auth_alg_family(jwt_alg_t alg);

struct auth_settings {
    char profile[32]; /* normalised ("dev-insecure", ...), "" when none */
    enum auth_mode mode;
    char issuer[AUTH_MAX_URL];        /* "" : iss not checked */
    char audience[AUTH_MAX_NAME];     /* "" : aud not checked */
    char jwks_uri[AUTH_MAX_URL];      /* http(s):// or file:// */
    char discovery_url[AUTH_MAX_URL]; /* OIDC discovery document */
    jwt_alg_t algs[AUTH_MAX_ALGS];
    size_t n_algs;
    long clock_skew_secs;
    char exempt[AUTH_MAX_EXEMPT][AUTH_MAX_NAME]; /* exact paths */
    size_t n_exempt;
    char dev_subject[AUTH_MAX_NAME];       /* the subject when disabled */
    char anonymous_subject[AUTH_MAX_NAME]; /* optional mode, no header */
};

/*
 * Reads the settings from the environment. With no ARP_AUTH_* variable at
 * all: required auth against the dev Keycloak issuer, no audience check (as
 * the reference executor). Returns 0, or -1 with the SDK's reason in err
 * when the worker must not start (unknown profile or mode, no key source,
 * no algorithm, an algorithm we cannot verify, ...).
 */
int auth_settings_from_env(struct auth_settings *s, char *err, size_t errlen);

/* 1 if path is exempt from authentication (exact match). */
int auth_path_exempt(const struct auth_settings *s, const char *path);

/* "required" / "optional" / "disabled" */
const char *auth_mode_name(enum auth_mode mode);

#endif
