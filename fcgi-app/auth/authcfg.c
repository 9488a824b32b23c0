/*
 * authcfg.c - owns how ARP_AUTH_* becomes auth_settings.
 *
 * Mirrors arp_standard_server's AuthSettings.from_env and the JARVIS
 * services' "no ARP_AUTH_* at all means dev Keycloak, required" rule, down
 * to the error texts, so one environment file configures either executor.
 * An empty variable counts as unset, as Python's `os.environ.get(X) or ...`.
 */
#include "authcfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return (v != NULL && *v != '\0') ? v : NULL;
}

/* Copies s without surrounding white space into dst (size len). */
static void copy_stripped(char *dst, size_t len, const char *s)
{
    size_t n;

    while (isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The variable, stripped, into dst; 1 if that leaves something. */
static int env_stripped(const char *name, char *dst, size_t len)
{
    const char *v = env(name);

    dst[0] = '\0';
    if (v != NULL)
        copy_stripped(dst, len, v);
    return dst[0] != '\0';
}

static int any_auth_env(void)
{
    char **e;

    for (e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, "ARP_AUTH_", 9) == 0)
            return 1;
    return 0;
}

const char *auth_mode_name(enum auth_mode mode)
{
    switch (mode) {
    case AUTH_OPTIONAL: return "optional";
    case AUTH_DISABLED: return "disabled";
    case AUTH_REQUIRED: break;
    }
    return "required";
}

/* The SDK's profiles: name -> mode and issuer defaults. */
static int apply_profile(struct auth_settings *s, const char *raw, const char **mode,
                         const char **issuer, char *err, size_t errlen)
{
    char p[64];
    size_t i;

    char shown[64];

    copy_stripped(p, sizeof p, raw);
    memcpy(shown, p, sizeof shown);
    for (i = 0; p[i]; i++)
        p[i] = p[i] == '_' ? '-' : (char)tolower((unsigned char)p[i]);
    if (strcmp(p, "dev-insecure") == 0 || strcmp(p, "dev") == 0) {
        strcpy(s->profile, "dev-insecure");
        *mode = "disabled";
    } else if (strcmp(p, "dev-secure-keycloak") == 0 || strcmp(p, "dev-secure") == 0 ||
               strcmp(p, "keycloak") == 0) {
        strcpy(s->profile, "dev-secure-keycloak");
        *mode = "required";
        *issuer = AUTH_DEV_KEYCLOAK_ISSUER;
    } else if (strcmp(p, "enterprise") == 0 || strcmp(p, "prod") == 0 ||
               strcmp(p, "production") == 0) {
        strcpy(s->profile, "enterprise");
        *mode = "required";
    } else {
        snprintf(err, errlen, "Invalid ARP_AUTH_PROFILE: '%s'", shown);
        return -1;
    }
    return 0;
}

static int parse_mode(struct auth_settings *s, const char *raw, char *err, size_t errlen)
{
    char m[32];
    size_t i;

    copy_stripped(m, sizeof m, raw);
    for (i = 0; m[i]; i++)
        m[i] = (char)tolower((unsigned char)m[i]);
    if (strcmp(m, "required") == 0)
        s->mode = AUTH_REQUIRED;
    else if (strcmp(m, "optional") == 0)
        s->mode = AUTH_OPTIONAL;
    else if (strcmp(m, "disabled") == 0)
        s->mode = AUTH_DISABLED;
    else {
        snprintf(err, errlen, "Invalid ARP_AUTH_MODE: '%s'", m);
        return -1;
    }
    return 0;
}

/* The allowed algorithms (see auth_alg_family in authcfg.h). */
static const struct {
    const char *name; /* as ARP_AUTH_ALGORITHMS and a JOSE header spell it */
    jwt_alg_t alg;
    enum auth_key_family family;
} allowed_algs[] = {
    {"RS256", JWT_ALG_RS256, AUTH_KEY_RSA}, {"RS384", JWT_ALG_RS384, AUTH_KEY_RSA},
    {"RS512", JWT_ALG_RS512, AUTH_KEY_RSA}, {"ES256", JWT_ALG_ES256, AUTH_KEY_EC},
    {"ES384", JWT_ALG_ES384, AUTH_KEY_EC},  {"ES512", JWT_ALG_ES512, AUTH_KEY_EC},
};
#define N_ALLOWED_ALGS (sizeof allowed_algs / sizeof allowed_algs[0])

enum auth_key_family auth_alg_family(jwt_alg_t alg)
{
    size_t i;

    for (i = 0; i < N_ALLOWED_ALGS; i++)
        if (allowed_algs[i].alg == alg)
            return allowed_algs[i].family;
    return AUTH_KEY_NONE;
}

/* The refusal of an algorithm outside the list, naming the list. */
static void alg_refused(const char *name, char *err, size_t errlen)
{
    char names[128] = "";
    size_t i, at = 0;

    for (i = 0; i < N_ALLOWED_ALGS && at < sizeof names; i++)
        at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "",
                               allowed_algs[i].name);
    snprintf(err, errlen, "ARP_AUTH_ALGORITHMS: %s is not supported (%s: keys come from a JWKS)",
             name, names);
}

static int parse_algs(struct auth_settings *s, const char *raw, char *err, size_t errlen)
{
    char buf[256], *tok, *save = NULL;
    size_t i;

    snprintf(buf, sizeof buf, "%s", raw);
    s->n_algs = 0;
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char name[32];

        copy_stripped(name, sizeof name, tok);
        if (name[0] == '\0')
            continue;
        for (i = 0; i < N_ALLOWED_ALGS && strcmp(name, allowed_algs[i].name) != 0; i++)
            ;
        if (i == N_ALLOWED_ALGS) {
            alg_refused(name, err, errlen);
            return -1;
        }
        if (s->n_algs == AUTH_MAX_ALGS) {
            snprintf(err, errlen, "ARP_AUTH_ALGORITHMS: more than %d algorithms", AUTH_MAX_ALGS);
            return -1;
        }
        s->algs[s->n_algs++] = allowed_algs[i].alg;
    }
    if (s->n_algs == 0) {
        snprintf(err, errlen, "ARP_AUTH_ALGORITHMS must list at least one algorithm");
        return -1;
    }
    return 0;
}

static int parse_exempt(struct auth_settings *s, const char *raw, char *err, size_t errlen)
{
    char buf[AUTH_MAX_EXEMPT * AUTH_MAX_NAME], *tok, *save = NULL;

    snprintf(buf, sizeof buf, "%s", raw);
    s->n_exempt = 0;
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char path[AUTH_MAX_NAME];

        copy_stripped(path, sizeof path, tok);
        if (path[0] == '\0')
            continue;
        if (s->n_exempt == AUTH_MAX_EXEMPT) {
            snprintf(err, errlen, "ARP_AUTH_EXEMPT_PATHS: more than %d paths", AUTH_MAX_EXEMPT);
            return -1;
        }
        memcpy(s->exempt[s->n_exempt++], path, sizeof path);
    }
    /* Nothing usable listed: the SDK's defaults, not "every path needs a token". */
    if (s->n_exempt == 0 && strcmp(raw, "/v1/health,/v1/version") != 0)
        return parse_exempt(s, "/v1/health,/v1/version", err, errlen);
    return 0;
}

static int parse_skew(struct auth_settings *s, const char *raw, char *err, size_t errlen)
{
    char buf[32], *end;
    long v;

    copy_stripped(buf, sizeof buf, raw);
    errno = 0;
    v = strtol(buf, &end, 10);
    if (buf[0] == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 86400) {
        snprintf(err, errlen,
                 "ARP_AUTH_CLOCK_SKEW_SECONDS must be an integer from 0 to 86400, "
                 "not '%s'",
                 raw);
        return -1;
    }
    s->clock_skew_secs = v;
    return 0;
}

static int defaults(struct auth_settings *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->mode = AUTH_REQUIRED;
    s->clock_skew_secs = 60;
    strcpy(s->dev_subject, "dev");
    strcpy(s->anonymous_subject, "anonymous");
    if (parse_algs(s, "RS256", err, errlen) != 0)
        return -1;
    return parse_exempt(s, "/v1/health,/v1/version", err, errlen);
}

int auth_settings_from_env(struct auth_settings *s, char *err, size_t errlen)
{
    const char *profile_mode = NULL, *profile_issuer = NULL, *v;
    char buf[64];

    if (defaults(s, err, errlen) != 0)
        return -1;
    if (!any_auth_env()) {
        /* The reference executor's own default: secure, against dev Keycloak. */
        strcpy(s->issuer, AUTH_DEV_KEYCLOAK_ISSUER);
        return 0;
    }
    /* A blank profile is no profile, as the SDK's strip() makes it. */
    if (env_stripped("ARP_AUTH_PROFILE", buf, sizeof buf) &&
        apply_profile(s, buf, &profile_mode, &profile_issuer, err, errlen) != 0)
        return -1;
    v = env("ARP_AUTH_MODE");
    if (parse_mode(s, v ? v : profile_mode ? profile_mode : "required", err, errlen) != 0)
        return -1;
    if ((v = env("ARP_AUTH_CLOCK_SKEW_SECONDS")) != NULL && parse_skew(s, v, err, errlen) != 0)
        return -1;
    if ((v = env("ARP_AUTH_ALGORITHMS")) != NULL && parse_algs(s, v, err, errlen) != 0)
        return -1;
    if ((v = env("ARP_AUTH_EXEMPT_PATHS")) != NULL && parse_exempt(s, v, err, errlen) != 0)
        return -1;
    if ((v = env("ARP_AUTH_ISSUER")) != NULL)
        copy_stripped(s->issuer, sizeof s->issuer, v);
    if (s->issuer[0] == '\0' && profile_issuer != NULL)
        strcpy(s->issuer, profile_issuer);
    /* A blank audience must not hide the service id (and so the aud check). */
    if (!env_stripped("ARP_AUTH_AUDIENCE", s->audience, sizeof s->audience))
        env_stripped("ARP_AUTH_SERVICE_ID", s->audience, sizeof s->audience);
    if ((v = env("ARP_AUTH_JWKS_URI")) != NULL)
        copy_stripped(s->jwks_uri, sizeof s->jwks_uri, v);
    if ((v = env("ARP_AUTH_OIDC_DISCOVERY_URL")) != NULL)
        copy_stripped(s->discovery_url, sizeof s->discovery_url, v);
    if ((v = env("ARP_AUTH_DEV_SUBJECT")) != NULL)
        copy_stripped(s->dev_subject, sizeof s->dev_subject, v);
    if ((v = env("ARP_AUTH_ANONYMOUS_SUBJECT")) != NULL)
        copy_stripped(s->anonymous_subject, sizeof s->anonymous_subject, v);
    if (strcmp(s->profile, "dev-secure-keycloak") == 0 && s->mode != AUTH_DISABLED &&
        s->audience[0] == '\0') {
        snprintf(err, errlen,
                 "Dev-Secure-Keycloak profile requires ARP_AUTH_AUDIENCE or "
                 "ARP_AUTH_SERVICE_ID");
        return -1;
    }
    if (s->mode != AUTH_DISABLED && s->jwks_uri[0] == '\0' && s->issuer[0] == '\0' &&
        s->discovery_url[0] == '\0') {
        snprintf(err, errlen,
                 "JWT auth requires ARP_AUTH_JWKS_URI or "
                 "ARP_AUTH_ISSUER/ARP_AUTH_OIDC_DISCOVERY_URL when ARP_AUTH_MODE is "
                 "not 'disabled'");
        return -1;
    }
    return 0;
}

int auth_path_exempt(const struct auth_settings *s, const char *path)
{
    size_t i;

    for (i = 0; i < s->n_exempt; i++)
        if (strcmp(s->exempt[i], path) == 0)
            return 1;
    return 0;
}
