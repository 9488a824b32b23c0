/*
 * test_authcfg.c - ARP_AUTH_* -> auth_settings: the no-variable default,
 * every profile and alias, the overrides, and each start-up failure with
 * the SDK's text (arp_standard_server AuthSettings.from_env).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcfg.h"
#include "testutil.h"

extern char **environ;

#define MSG_DEV_SECURE                                                                             \
    "Dev-Secure-Keycloak profile requires ARP_AUTH_AUDIENCE or ARP_AUTH_SERVICE_ID"
#define MSG_NO_KEYS                                                                                \
    "JWT auth requires ARP_AUTH_JWKS_URI or ARP_AUTH_ISSUER/ARP_AUTH_OIDC_DISCOVERY_URL when "     \
    "ARP_AUTH_MODE is not 'disabled'"

/* Unsets every ARP_AUTH_* variable (restarting the scan after each unsetenv,
 * which may move environ). Returns 0, or -1 if one could not be removed. */
static int clear_auth_env(void)
{
    for (;;) {
        char name[1024];
        char **e;
        int found = 0;

        for (e = environ; e != NULL && *e != NULL; e++) {
            const char *eq;
            size_t n;

            if (strncmp(*e, "ARP_AUTH_", 9) != 0)
                continue;
            eq = strchr(*e, '=');
            n = eq ? (size_t)(eq - *e) : strlen(*e);
            if (n >= sizeof name)
                return -1;
            memcpy(name, *e, n);
            name[n] = '\0';
            found = 1;
            break;
        }
        if (!found)
            return 0;
        if (unsetenv(name) != 0)
            return -1;
    }
}

/*
 * Clears ARP_AUTH_*, sets the NULL-terminated name/value pairs and reads the
 * settings. Returns auth_settings_from_env's result; err holds its reason.
 */
static int load(struct auth_settings *s, char *err, size_t errlen, ...)
{
    const char *name, *value;
    va_list ap;

    CU_ASSERT_FATAL(clear_auth_env() == 0);
    va_start(ap, errlen);
    while ((name = va_arg(ap, const char *)) != NULL) {
        value = va_arg(ap, const char *);
        CU_ASSERT_FATAL(setenv(name, value, 1) == 0);
    }
    va_end(ap);
    err[0] = '\0';
    return auth_settings_from_env(s, err, errlen);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_no_variables(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL_FATAL(load(&s, err, sizeof err, NULL), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
    CU_ASSERT_STRING_EQUAL(s.profile, "");
    CU_ASSERT_STRING_EQUAL(s.issuer, "http://localhost:8080/realms/arp-dev");
    CU_ASSERT_STRING_EQUAL(s.issuer, AUTH_DEV_KEYCLOAK_ISSUER);
    CU_ASSERT_STRING_EQUAL(s.audience, "");
    CU_ASSERT_STRING_EQUAL(s.jwks_uri, "");
    CU_ASSERT_STRING_EQUAL(s.discovery_url, "");
    CU_ASSERT_EQUAL(s.n_algs, 1);
    CU_ASSERT_EQUAL(s.algs[0], JWT_ALG_RS256);
    CU_ASSERT_EQUAL(s.clock_skew_secs, 60);
    CU_ASSERT_EQUAL_FATAL(s.n_exempt, 2);
    CU_ASSERT_STRING_EQUAL(s.exempt[0], "/v1/health");
    CU_ASSERT_STRING_EQUAL(s.exempt[1], "/v1/version");
    CU_ASSERT_STRING_EQUAL(s.dev_subject, "dev");
    CU_ASSERT_STRING_EQUAL(s.anonymous_subject, "anonymous");

    /* Exact matches only. */
    CU_ASSERT_TRUE(auth_path_exempt(&s, "/v1/health"));
    CU_ASSERT_TRUE(auth_path_exempt(&s, "/v1/version"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/v1/health/"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/v1/healthz"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/V1/HEALTH"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/v1/health?x=1"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, ""));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/v1/atomic-node-runs:execute"));

    CU_ASSERT_STRING_EQUAL(auth_mode_name(AUTH_REQUIRED), "required");
    CU_ASSERT_STRING_EQUAL(auth_mode_name(AUTH_OPTIONAL), "optional");
    CU_ASSERT_STRING_EQUAL(auth_mode_name(AUTH_DISABLED), "disabled");
}

static void test_profile_dev_insecure(void)
{
    static const char *const names[] = {"dev-insecure", "dev", "DEV_INSECURE", " Dev ",
                                        "Dev-Insecure"};
    struct auth_settings s;
    char err[512];
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", names[i], NULL), 0);
        CU_ASSERT_EQUAL(s.mode, AUTH_DISABLED);
        CU_ASSERT_STRING_EQUAL(s.profile, "dev-insecure");
        CU_ASSERT_STRING_EQUAL(s.issuer, "");
        CU_ASSERT_STRING_EQUAL(s.dev_subject, "dev");
    }
}

static void test_profile_dev_secure_keycloak(void)
{
    static const char *const names[] = {"dev-secure-keycloak", "dev-secure", "keycloak",
                                        "Dev_Secure", "DEV_SECURE_KEYCLOAK"};
    struct auth_settings s;
    char err[512];
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        /* No audience at all: refuses to start. */
        CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", names[i], NULL), -1);
        CU_ASSERT_STRING_EQUAL(err, MSG_DEV_SECURE);

        CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", names[i], "ARP_AUTH_AUDIENCE",
                             "svc", NULL),
                        0);
        CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
        CU_ASSERT_STRING_EQUAL(s.profile, "dev-secure-keycloak");
        CU_ASSERT_STRING_EQUAL(s.issuer, AUTH_DEV_KEYCLOAK_ISSUER);
        CU_ASSERT_STRING_EQUAL(s.audience, "svc");

        /* ARP_AUTH_SERVICE_ID is the fallback audience. */
        CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", names[i],
                             "ARP_AUTH_SERVICE_ID", "arp-run-gateway", NULL),
                        0);
        CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
        CU_ASSERT_STRING_EQUAL(s.issuer, AUTH_DEV_KEYCLOAK_ISSUER);
        CU_ASSERT_STRING_EQUAL(s.audience, "arp-run-gateway");
    }

    /* Both set: ARP_AUTH_AUDIENCE wins. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "keycloak", "ARP_AUTH_AUDIENCE",
                         "aud-1", "ARP_AUTH_SERVICE_ID", "svc-1", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.audience, "aud-1");
    /* An empty ARP_AUTH_AUDIENCE counts as unset. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "keycloak", "ARP_AUTH_AUDIENCE",
                         "", "ARP_AUTH_SERVICE_ID", "svc-1", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.audience, "svc-1");
    /* The audience requirement only holds when auth is on. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev-secure-keycloak",
                         "ARP_AUTH_MODE", "disabled", NULL),
                    0);
    CU_ASSERT_EQUAL(s.mode, AUTH_DISABLED);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev-secure-keycloak",
                         "ARP_AUTH_MODE", "optional", NULL),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, MSG_DEV_SECURE);
}

/*
 * The SDK strips ARP_AUTH_AUDIENCE before falling back to ARP_AUTH_SERVICE_ID
 * (`(env.get("ARP_AUTH_AUDIENCE") or "").strip() or None`): a blank audience
 * must not hide the service id, or the audience check silently goes away.
 */
static void test_blank_audience_falls_back(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev-secure-keycloak",
                         "ARP_AUTH_AUDIENCE", "   ", "ARP_AUTH_SERVICE_ID", "svc", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.audience, "svc");
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "enterprise", "ARP_AUTH_ISSUER",
                         "https://idp.example", "ARP_AUTH_AUDIENCE", " ", "ARP_AUTH_SERVICE_ID",
                         "svc", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.audience, "svc");
}

static void test_profile_enterprise(void)
{
    static const char *const names[] = {"enterprise", "prod", "production", "PRODUCTION",
                                        " Enterprise "};
    struct auth_settings s;
    char err[512];
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", names[i], NULL), -1);
        CU_ASSERT_STRING_EQUAL(err, MSG_NO_KEYS);

        CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", names[i], "ARP_AUTH_ISSUER",
                             "https://idp.example/realms/x", NULL),
                        0);
        CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
        CU_ASSERT_STRING_EQUAL(s.profile, "enterprise");
        CU_ASSERT_STRING_EQUAL(s.issuer, "https://idp.example/realms/x");
        CU_ASSERT_STRING_EQUAL(s.audience, "");
    }
    /* Any one key source is enough; none of them sets an issuer. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "enterprise", "ARP_AUTH_JWKS_URI",
                         " https://idp.example/jwks ", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.jwks_uri, "https://idp.example/jwks");
    CU_ASSERT_STRING_EQUAL(s.issuer, "");
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "prod",
                         "ARP_AUTH_OIDC_DISCOVERY_URL",
                         "https://idp.example/.well-known/openid-configuration", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.discovery_url, "https://idp.example/.well-known/openid-configuration");
    CU_ASSERT_STRING_EQUAL(s.issuer, "");
    /* Only ARP_AUTH_* present but no source, no profile: the same failure. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_AUDIENCE", "svc", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, MSG_NO_KEYS);
}

static void test_profile_invalid(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "bogus", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_PROFILE: 'bogus'");
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev-insecure-x", "ARP_AUTH_MODE",
                         "disabled", NULL),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_PROFILE: 'dev-insecure-x'");
    /* An empty profile is no profile. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "", "ARP_AUTH_ISSUER",
                         "https://idp.example", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.profile, "");
    CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
}

/*
 * The SDK strips the profile before anything else
 * (`profile_raw = (env.get("ARP_AUTH_PROFILE") or "").strip()`): a blank one
 * is no profile, and the error quotes the stripped value.
 */
static void test_profile_sdk_stripping(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "   ", "ARP_AUTH_ISSUER",
                         "https://idp.example", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.profile, "");
    CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", " bogus ", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_PROFILE: 'bogus'");
}

static void test_mode(void)
{
    struct auth_settings s;
    char err[512];

    /* ARP_AUTH_MODE overrides the profile's mode. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev-insecure", "ARP_AUTH_MODE",
                         "required", "ARP_AUTH_JWKS_URI", "file:///tmp/jwks.json", NULL),
                    0);
    CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
    CU_ASSERT_STRING_EQUAL(s.profile, "dev-insecure");
    CU_ASSERT_STRING_EQUAL(s.jwks_uri, "file:///tmp/jwks.json");
    /* ... and then it needs a key source like any required mode. */
    CU_ASSERT_EQUAL(
        load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev", "ARP_AUTH_MODE", "required", NULL),
        -1);
    CU_ASSERT_STRING_EQUAL(err, MSG_NO_KEYS);

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "sometimes", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_MODE: 'sometimes'");
    CU_ASSERT_EQUAL(
        load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev", "ARP_AUTH_MODE", "off", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_MODE: 'off'");

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "OPTIONAL", "ARP_AUTH_ISSUER",
                         "https://idp.example", NULL),
                    0);
    CU_ASSERT_EQUAL(s.mode, AUTH_OPTIONAL);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", " Required ", "ARP_AUTH_ISSUER",
                         "https://idp.example", NULL),
                    0);
    CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "optional", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, MSG_NO_KEYS);

    /* Disabled needs no key source; no implicit dev-Keycloak issuer once any
     * ARP_AUTH_* is set. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled", NULL), 0);
    CU_ASSERT_EQUAL(s.mode, AUTH_DISABLED);
    CU_ASSERT_STRING_EQUAL(s.profile, "");
    CU_ASSERT_STRING_EQUAL(s.issuer, "");
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "DISABLED", "ARP_AUTH_PROFILE",
                         "enterprise", NULL),
                    0);
    CU_ASSERT_EQUAL(s.mode, AUTH_DISABLED);
    CU_ASSERT_STRING_EQUAL(s.profile, "enterprise");
}

/* The SDK normalises the mode first and quotes the normalised value
 * (`raise ValueError(f"Invalid ARP_AUTH_MODE: {mode!r}")`). */
static void test_mode_error_text(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", " SomeTimes ", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_MODE: 'sometimes'");
}

static void test_algorithms(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "RS256, ES256", NULL),
                    0);
    CU_ASSERT_EQUAL_FATAL(s.n_algs, 2);
    CU_ASSERT_EQUAL(s.algs[0], JWT_ALG_RS256);
    CU_ASSERT_EQUAL(s.algs[1], JWT_ALG_ES256);

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", " ES512,RS384 ,, RS512,ES384 ", NULL),
                    0);
    CU_ASSERT_EQUAL_FATAL(s.n_algs, 4);
    CU_ASSERT_EQUAL(s.algs[0], JWT_ALG_ES512);
    CU_ASSERT_EQUAL(s.algs[1], JWT_ALG_RS384);
    CU_ASSERT_EQUAL(s.algs[2], JWT_ALG_RS512);
    CU_ASSERT_EQUAL(s.algs[3], JWT_ALG_ES384);

    /* Empty counts as unset: the default RS256. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "", NULL),
                    0);
    CU_ASSERT_EQUAL_FATAL(s.n_algs, 1);
    CU_ASSERT_EQUAL(s.algs[0], JWT_ALG_RS256);

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "  , ,", NULL),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "ARP_AUTH_ALGORITHMS must list at least one algorithm");

    /* Shared-secret and unsigned algorithms are refused at start-up. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "HS256", NULL),
                    -1);
    CU_ASSERT_TRUE(starts_with(err, "ARP_AUTH_ALGORITHMS: HS256 is not supported"));
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "none", NULL),
                    -1);
    CU_ASSERT_TRUE(starts_with(err, "ARP_AUTH_ALGORITHMS: none is not supported"));
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "RS256, HS512", NULL),
                    -1);
    CU_ASSERT_TRUE(starts_with(err, "ARP_AUTH_ALGORITHMS: HS512 is not supported"));
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "PS256", NULL),
                    -1);
    CU_ASSERT_TRUE(starts_with(err, "ARP_AUTH_ALGORITHMS: PS256 is not supported"));
    CU_ASSERT_STRING_EQUAL(err, "ARP_AUTH_ALGORITHMS: PS256 is not supported (RS256, RS384, "
                                "RS512, ES256, ES384, ES512: keys come from a JWKS)");
    /* Names are case-sensitive, as in a JOSE header. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS", "rs256", NULL),
                    -1);
    CU_ASSERT_TRUE(starts_with(err, "ARP_AUTH_ALGORITHMS: rs256 is not supported"));
    /* Checked even when auth is disabled (as the SDK would fail too). */
    CU_ASSERT_EQUAL(
        load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled", "ARP_AUTH_ALGORITHMS", ",", NULL),
        -1);
    CU_ASSERT_STRING_EQUAL(err, "ARP_AUTH_ALGORITHMS must list at least one algorithm");
    /* More than AUTH_MAX_ALGS. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                         "ARP_AUTH_ALGORITHMS",
                         "RS256,RS256,RS256,RS256,RS256,RS256,RS256,RS256,RS256", NULL),
                    -1);
    CU_ASSERT_TRUE(starts_with(err, "ARP_AUTH_ALGORITHMS: more than"));
}

static void test_clock_skew(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "5", NULL),
                    0);
    CU_ASSERT_EQUAL(s.clock_skew_secs, 5);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", " 7 ", NULL),
                    0);
    CU_ASSERT_EQUAL(s.clock_skew_secs, 7);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "0", NULL),
                    0);
    CU_ASSERT_EQUAL(s.clock_skew_secs, 0);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "", NULL),
                    0);
    CU_ASSERT_EQUAL(s.clock_skew_secs, 60);

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "x", NULL),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ARP_AUTH_CLOCK_SKEW_SECONDS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'x'"));
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "5s", NULL),
                    -1);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "99999999999999999999", NULL),
                    -1);
    /* 0 to 86400: a negative skew would move every time check */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "86400", NULL),
                    0);
    CU_ASSERT_EQUAL(s.clock_skew_secs, 86400);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "86401", NULL),
                    -1);
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled",
                         "ARP_AUTH_CLOCK_SKEW_SECONDS", "-1", NULL),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "from 0 to 86400, not '-1'"));
}

static void test_exempt_paths(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled", "ARP_AUTH_EXEMPT_PATHS",
                         "/a, /b", NULL),
                    0);
    CU_ASSERT_EQUAL_FATAL(s.n_exempt, 2);
    CU_ASSERT_STRING_EQUAL(s.exempt[0], "/a");
    CU_ASSERT_STRING_EQUAL(s.exempt[1], "/b");
    CU_ASSERT_TRUE(auth_path_exempt(&s, "/a"));
    CU_ASSERT_TRUE(auth_path_exempt(&s, "/b"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/a/"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, " /b"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/v1/health"));
    CU_ASSERT_FALSE(auth_path_exempt(&s, "/v1/version"));

    /* Empty counts as unset: the defaults. */
    CU_ASSERT_EQUAL(
        load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled", "ARP_AUTH_EXEMPT_PATHS", "", NULL),
        0);
    CU_ASSERT_EQUAL(s.n_exempt, 2);
    CU_ASSERT_TRUE(auth_path_exempt(&s, "/v1/health"));
}

/* The SDK: `if not exempt_paths: exempt_paths = ("/v1/health", "/v1/version")`. */
static void test_exempt_paths_blank_list(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_MODE", "disabled", "ARP_AUTH_EXEMPT_PATHS",
                         " , ", NULL),
                    0);
    CU_ASSERT_EQUAL(s.n_exempt, 2);
    CU_ASSERT_TRUE(auth_path_exempt(&s, "/v1/health"));
    CU_ASSERT_TRUE(auth_path_exempt(&s, "/v1/version"));
}

static void test_subjects(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev", "ARP_AUTH_DEV_SUBJECT",
                         "alice", "ARP_AUTH_ANONYMOUS_SUBJECT", "guest", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.dev_subject, "alice");
    CU_ASSERT_STRING_EQUAL(s.anonymous_subject, "guest");
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev", "ARP_AUTH_DEV_SUBJECT", "",
                         "ARP_AUTH_ANONYMOUS_SUBJECT", "", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.dev_subject, "dev");
    CU_ASSERT_STRING_EQUAL(s.anonymous_subject, "anonymous");
}

static void test_issuer_override(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev-secure-keycloak",
                         "ARP_AUTH_SERVICE_ID", "svc", "ARP_AUTH_ISSUER",
                         "https://kc.example/realms/prod", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.issuer, "https://kc.example/realms/prod");
    CU_ASSERT_STRING_EQUAL(s.profile, "dev-secure-keycloak");
    /* Surrounding white space is not part of the issuer. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "  https://idp.example  ", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.issuer, "https://idp.example");
    CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
    /* A blank issuer is no issuer: the profile's default applies. */
    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "keycloak", "ARP_AUTH_AUDIENCE",
                         "svc", "ARP_AUTH_ISSUER", "   ", NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(s.issuer, AUTH_DEV_KEYCLOAK_ISSUER);
}

static void test_disabled_needs_no_keys(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_PROFILE", "dev-insecure", NULL), 0);
    CU_ASSERT_EQUAL(s.mode, AUTH_DISABLED);
    CU_ASSERT_STRING_EQUAL(s.jwks_uri, "");
    CU_ASSERT_STRING_EQUAL(s.discovery_url, "");
    CU_ASSERT_STRING_EQUAL(s.issuer, "");
    CU_ASSERT_STRING_EQUAL(err, "");
}

static int suite_cleanup(void)
{
    return clear_auth_env();
}

/* The one list: every allowed algorithm parses, in its key family; nothing
 * else of libjwt's has a family (so neither a token nor a key can use it). */
static void test_alg_list(void)
{
    static const struct {
        const char *name;
        jwt_alg_t alg;
        enum auth_key_family family;
    } allowed[] = {
        {"RS256", JWT_ALG_RS256, AUTH_KEY_RSA}, {"RS384", JWT_ALG_RS384, AUTH_KEY_RSA},
        {"RS512", JWT_ALG_RS512, AUTH_KEY_RSA}, {"ES256", JWT_ALG_ES256, AUTH_KEY_EC},
        {"ES384", JWT_ALG_ES384, AUTH_KEY_EC},  {"ES512", JWT_ALG_ES512, AUTH_KEY_EC},
    };
    static const jwt_alg_t refused[] = {JWT_ALG_NONE, JWT_ALG_HS256, JWT_ALG_HS384, JWT_ALG_HS512,
                                        JWT_ALG_INVAL};
    struct auth_settings s;
    char err[256];
    size_t i;

    for (i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        CU_ASSERT_EQUAL(auth_alg_family(allowed[i].alg), allowed[i].family);
        CU_ASSERT_EQUAL(load(&s, err, sizeof err, "ARP_AUTH_ISSUER", "https://idp.example",
                             "ARP_AUTH_ALGORITHMS", allowed[i].name, NULL),
                        0);
        CU_ASSERT_EQUAL(s.n_algs, 1);
        CU_ASSERT_EQUAL(s.algs[0], allowed[i].alg);
    }
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CU_ASSERT_EQUAL(auth_alg_family(refused[i]), AUTH_KEY_NONE);
}

static CU_TestInfo tests[] = {
    {"the allowed algorithms and their key families", test_alg_list},
    {"no ARP_AUTH_* at all", test_no_variables},
    {"profile dev-insecure", test_profile_dev_insecure},
    {"profile dev-secure-keycloak", test_profile_dev_secure_keycloak},
    {"blank audience falls back to service id", test_blank_audience_falls_back},
    {"profile enterprise", test_profile_enterprise},
    {"invalid profile", test_profile_invalid},
    {"profile stripped as the SDK does", test_profile_sdk_stripping},
    {"mode", test_mode},
    {"mode error quotes the normalised mode", test_mode_error_text},
    {"algorithms", test_algorithms},
    {"clock skew", test_clock_skew},
    {"exempt paths", test_exempt_paths},
    {"blank exempt list keeps the defaults", test_exempt_paths_blank_list},
    {"dev and anonymous subjects", test_subjects},
    {"issuer overrides the profile", test_issuer_override},
    {"disabled needs no key source", test_disabled_needs_no_keys},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"authcfg", NULL, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
