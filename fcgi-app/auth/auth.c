/*
 * auth.c - owns the decision "who is this request from, and may it pass".
 *
 * libjwt 1.10 verifies with the algorithm the token names and checks no
 * claim (docs/pitfalls.md), so everything it would trust blindly is
 * checked here first: the JOSE header is parsed by us, `alg` must be in the
 * configured list, the key is chosen by kid AND by the algorithm's family
 * (an RSA key never verifies HS256 or ES256), and only then is the
 * signature checked. Claims follow PyJWT's order and the SDK's messages.
 */
#include "auth_internal.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "log.h"
#include "timefmt.h"
#include "utf8.h"

#define MSG_INVALID "Invalid token"
#define MSG_EXPIRED "Token expired"
#define MSG_AUDIENCE "Invalid token audience"
#define MSG_ISSUER "Invalid token issuer"
#define MSG_JWKS "Unable to fetch JWKS"

static int adopt_shared(struct auth *a);

/* 1 if any ARP_AUTH_* variable is set (the reference's default applies
 * only when none is). */
static int any_arp_auth_env(void)
{
    extern char **environ;
    char **e;

    for (e = environ; *e != NULL; e++)
        if (strncmp(*e, "ARP_AUTH_", 9) == 0)
            return 1;
    return 0;
}

int auth_settings_load(struct auth_settings *s, char *err, size_t errlen)
{
    if (auth_settings_from_env(s, err, errlen) != 0)
        return -1;
    if (s->mode == AUTH_DISABLED)
        return 0;
    /* Configured key sources are checked now: a worker never starts on a
     * source it would not trust (the discovered jwks_uri is checked when
     * it is read). */
    if ((s->jwks_uri[0] != '\0' && jwks_source_check(s->jwks_uri, 1, err, errlen) < 0) ||
        (s->jwks_uri[0] == '\0' && s->discovery_url[0] != '\0' &&
         jwks_source_check(s->discovery_url, 0, err, errlen) < 0) ||
        (s->jwks_uri[0] == '\0' && s->discovery_url[0] == '\0' &&
         jwks_source_check(s->issuer, 0, err, errlen) < 0))
        return -1;
    return 0;
}

int auth_init(struct auth *a, char *err, size_t errlen)
{
    char why[AUTH_MAX_KEY_ERROR];

    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->fetched, NULL);
    pthread_cond_init(&a->wanted, NULL);
    if (auth_settings_load(&a->s, err, errlen) != 0)
        return -1;
    if (a->s.mode == AUTH_DISABLED) {
        log_msg(JARVIS_LOG_WARN,
                "AUTH DISABLED (ARP_AUTH_MODE=disabled%s): every request is "
                "served as subject '%s'; never expose this worker beyond loopback",
                a->s.profile[0] ? ", profile dev-insecure" : "", a->s.dev_subject);
        return 0;
    }
    if (jwks_global_init() != 0) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    if (!any_arp_auth_env())
        log_msg(JARVIS_LOG_WARN,
                "auth: no ARP_AUTH_* set: as the reference, tokens are verified with keys from "
                "the dev issuer %s, without an audience check. Any local user who binds that "
                "port first can mint accepted tokens: set ARP_AUTH_* for anything but a "
                "development machine",
                a->s.issuer);
    if (jwks_load(&a->keys, &a->s, why, sizeof why) != 0) {
        snprintf(a->key_error, sizeof a->key_error, "%s", utf8_drop_partial(why));
        log_msg(JARVIS_LOG_ERROR,
                "auth: no verification keys yet (%s); answering 401 until they "
                "can be fetched",
                why);
    } else
        log_msg(JARVIS_LOG_INFO, "auth: mode %s, issuer '%s', audience '%s', %zu keys",
                auth_mode_name(a->s.mode), a->s.issuer, a->s.audience, a->keys.n);
    return 0;
}

struct auth *auth_new(char *err, size_t errlen)
{
    struct auth *a = malloc(sizeof *a);

    if (a == NULL) {
        snprintf(err, errlen, "out of memory for the auth state");
        return NULL;
    }
    if (auth_init(a, err, errlen) != 0) {
        auth_cleanup(a);
        free(a);
        return NULL;
    }
    return a;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    auth_cleanup(a);
    free(a);
}

void auth_cleanup(struct auth *a)
{
    size_t i;

    pthread_mutex_lock(&a->lock);
    a->quit = 1;
    pthread_cond_signal(&a->wanted);
    pthread_mutex_unlock(&a->lock);
    if (a->refresher)
        pthread_join(a->refresher_tid, NULL);

    jwks_clear(&a->keys);
    for (i = 0; i < AUTH_CACHE_SLOTS; i++) {
        json_object_put(a->cache[i].claims);
        a->cache[i].claims = NULL;
    }
    pthread_cond_destroy(&a->wanted);
    pthread_cond_destroy(&a->fetched);
    pthread_mutex_destroy(&a->lock);
}

void auth_set_share(struct auth *a, const struct auth_share *share)
{
    pthread_mutex_lock(&a->lock);
    a->share = *share;
    if (a->s.mode != AUTH_DISABLED)
        adopt_shared(a);
    pthread_mutex_unlock(&a->lock);
}

void auth_key_status(struct auth *a, struct auth_key_status *st)
{
    memset(st, 0, sizeof *st);
    st->disabled = a->s.mode == AUTH_DISABLED;
    pthread_mutex_lock(&a->lock);
    st->keys = a->keys.n;
    st->loaded_ms = a->keys.loaded ? a->keys.loaded_ms : 0;
    memcpy(st->error, a->key_error, sizeof st->error);
    if (a->keys.loaded && ts_now_ms() - a->keys.loaded_ms > JWKS_MAX_STALE_MS) {
        /* No refresh for too long: the keys no longer verify anything. */
        st->keys = 0;
        snprintf(st->error, sizeof st->error, "keys older than %d s could not be refreshed: %.400s",
                 JWKS_MAX_STALE_MS / 1000, a->key_error[0] ? a->key_error : "no refresh yet");
        utf8_drop_partial(st->error);
    }
    pthread_mutex_unlock(&a->lock);
    /* Fetched, but nothing in it verifies a token: every request is 401. */
    if (!st->disabled && st->keys == 0 && st->error[0] == '\0')
        snprintf(st->error, sizeof st->error, "the JWKS holds no usable key");
}

void auth_principal_cleanup(struct auth_principal *p)
{
    json_object_put(p->claims);
    p->claims = NULL;
}

static void principal_subject_only(struct auth_principal *p, const char *subject)
{
    snprintf(p->subject, sizeof p->subject, "%s", subject);
    p->claims = json_object_new_object();
    json_object_object_add(p->claims, "sub", json_object_new_string(subject));
}

/* Parses the JOSE header (first segment) for alg and kid. */
static int parse_header(const char *token, size_t hlen, jwt_alg_t *alg, char *kid, size_t kidlen)
{
    unsigned char raw[AUTH_MAX_HEADER_B64];
    struct json_tokener *tok;
    json_object *h = NULL, *v = NULL;
    long n;
    int rc = -1;

    if (hlen == 0 || hlen > AUTH_MAX_HEADER_B64)
        return -1;
    n = jarvis_base64_decode(token, hlen, JARVIS_BASE64_URL, raw, sizeof raw - 1, NULL);
    if (n <= 0 || (tok = json_tokener_new_ex(8)) == NULL)
        return -1;
    h = json_tokener_parse_ex(tok, (const char *)raw, (int)n);
    json_tokener_free(tok);
    if (!json_object_is_type(h, json_type_object) || !json_object_object_get_ex(h, "alg", &v) ||
        !json_object_is_type(v, json_type_string))
        goto out;
    /* jwt_str_alg ignores case; RFC 7515 "alg" does not ("rs256" is not RS256). */
    *alg = jwt_str_alg(json_object_get_string(v));
    if (*alg == JWT_ALG_INVAL || strcmp(json_object_get_string(v), jwt_alg_str(*alg)) != 0)
        goto out;
    kid[0] = '\0';
    if (json_object_object_get_ex(h, "kid", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            (size_t)json_object_get_string_len(v) >= kidlen)
            goto out;
        memcpy(kid, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
    }
    rc = 0;
out:
    json_object_put(h);
    return rc;
}

static int alg_allowed(const struct auth_settings *s, jwt_alg_t alg)
{
    size_t i;

    for (i = 0; i < s->n_algs; i++)
        if (s->algs[i] == alg)
            return 1;
    return 0;
}

/* Adopts the pool's JWKS document if another worker fetched a newer one
 * than ours. Call with a->lock held. 1 if the keys changed. */
static int adopt_shared(struct auth *a)
{
    char why[AUTH_MAX_KEY_ERROR], *doc = NULL;
    int64_t when = 0;
    size_t len = 0;

    if (a->share.newer == NULL ||
        a->share.newer(a->share.arg, a->keys.loaded ? a->keys.loaded_ms : 0, &doc, &len, &when) !=
            1)
        return 0;
    if (jwks_parse(&a->keys, doc, len, why, sizeof why) < 0) {
        free(doc);
        return 0;
    }
    free(doc);
    /* Their age is the fetch's, not the adoption's (JWKS_MAX_STALE_MS). */
    a->keys.loaded_ms = when;
    a->key_error[0] = '\0';
    return 1;
}

/* One fetch of the JWKS, without the lock: the discovered jwks_uri is
 * reused for AUTH_DISCOVERY_TTL_MS. 0 with a new document, or -1. */
static int fetch_document(struct auth *a, char **body, size_t *len, char *why, size_t whylen)
{
    char uri[AUTH_MAX_URL];
    int64_t now = ts_now_ms();
    int cached;

    pthread_mutex_lock(&a->lock);
    cached = a->jwks_uri[0] != '\0' && now - a->jwks_uri_ms < AUTH_DISCOVERY_TTL_MS;
    if (cached)
        memcpy(uri, a->jwks_uri, sizeof uri);
    pthread_mutex_unlock(&a->lock);
    if (!cached && jwks_resolve_uri(&a->s, uri, sizeof uri, why, whylen) != 0)
        return -1;
    if (jwks_fetch(uri, body, len, why, whylen) != 0) {
        /* The document may have moved: ask discovery again next time. */
        pthread_mutex_lock(&a->lock);
        a->jwks_uri[0] = '\0';
        pthread_mutex_unlock(&a->lock);
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    if (!cached && a->s.jwks_uri[0] == '\0') {
        memcpy(a->jwks_uri, uri, sizeof a->jwks_uri);
        a->jwks_uri_ms = now;
    }
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/*
 * The refresher: fetches the keys whenever a request asks (want_fetch),
 * parses them under the lock, shares them with the pool, and wakes the
 * requests that wait. The old keys stay when a fetch fails.
 */
static void *refresher_thread(void *arg)
{
    struct auth *a = arg;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        char why[AUTH_MAX_KEY_ERROR];
        char *body = NULL;
        size_t len = 0;
        int rc;

        while (!a->want_fetch && !a->quit)
            pthread_cond_wait(&a->wanted, &a->lock);
        if (a->quit)
            break;
        a->want_fetch = 0;
        a->fetching = 1;
        pthread_mutex_unlock(&a->lock);
        rc = fetch_document(a, &body, &len, why, sizeof why);
        pthread_mutex_lock(&a->lock);
        if (rc == 0 && jwks_parse(&a->keys, body, len, why, sizeof why) < 0)
            rc = -1;
        if (rc == 0 && a->share.store != NULL)
            a->share.store(a->share.arg, body, len, a->keys.loaded_ms);
        free(body);
        if (rc != 0) {
            snprintf(a->key_error, sizeof a->key_error, "%s", utf8_drop_partial(why));
            log_msg(JARVIS_LOG_ERROR, "auth: JWKS refetch failed: %s", why);
        } else {
            a->key_error[0] = '\0';
        }
        a->fetching = 0;
        pthread_cond_broadcast(&a->fetched);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static int refetch_allowed(const struct auth *a, int64_t now)
{
    return a->keys.last_attempt_ms == 0 || now - a->keys.last_attempt_ms >= JWKS_REFETCH_MIN_MS;
}

/*
 * Asks for new keys: first from the pool (another worker may have them),
 * else from the identity provider through the refresher, at most once per
 * JWKS_REFETCH_MIN_MS in this worker and in the whole pool. Call with
 * a->lock held. 1 if the keys changed at once, 2 if a fetch was asked
 * for, 0 if neither (rate-limited).
 */
static int ask_refetch(struct auth *a, const char *why_now)
{
    int64_t now = ts_now_ms();
    sigset_t all, old;
    pthread_t tid;

    if (adopt_shared(a))
        return 1;
    if (a->fetching || a->want_fetch)
        return 2;
    if (!refetch_allowed(a, now))
        return 0;
    a->keys.last_attempt_ms = now;
    if (a->share.gate != NULL && !a->share.gate(a->share.arg, now, JWKS_REFETCH_MIN_MS))
        return 0;
    if (!a->refresher) {
        /* It takes no signals: they are the worker's main thread's and the
         * runner's signalfd's. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        if (pthread_create(&tid, NULL, refresher_thread, a) == 0) {
            a->refresher_tid = tid;
            a->refresher = 1;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!a->refresher)
            return 0;
    }
    log_msg(JARVIS_LOG_INFO, "auth: refetching the JWKS (%s)", why_now);
    a->want_fetch = 1;
    pthread_cond_signal(&a->wanted);
    return 2;
}

/* Refreshes keys older than JWKS_MAX_AGE_MS (a removed key stops working),
 * in the background: the request goes on with the keys it has. */
static void refresh_old_keys(struct auth *a)
{
    int64_t now = ts_now_ms();

    if (a->keys.loaded && now - a->keys.loaded_ms >= JWKS_MAX_AGE_MS)
        ask_refetch(a, "keys older than 300 s");
}

static struct auth_unknown_kid *unknown_kid(struct auth *a, const char *kid, int64_t now)
{
    size_t i;

    for (i = 0; i < AUTH_UNKNOWN_KIDS; i++)
        if (a->unknown[i].ms != 0 && now - a->unknown[i].ms < AUTH_UNKNOWN_KID_MS &&
            strcmp(a->unknown[i].kid, kid) == 0)
            return &a->unknown[i];
    return NULL;
}

static void remember_unknown_kid(struct auth *a, const char *kid, int64_t now)
{
    struct auth_unknown_kid *u = &a->unknown[a->unknown_next++ % AUTH_UNKNOWN_KIDS];

    snprintf(u->kid, sizeof u->kid, "%s", kid);
    u->ms = now;
}

/* The key for (kid, alg). One not known yet makes the keys be refetched,
 * and this request waits for that at most AUTH_KEY_WAIT_MS. Call with
 * a->lock held. */
static const struct jwks_key *key_for(struct auth *a, const char *kid, jwt_alg_t alg,
                                      const char **detail)
{
    const struct jwks_key *key;
    struct timespec until;
    int64_t now = ts_now_ms();
    int asked;

    key = jwks_find(&a->keys, kid, alg);
    if (key != NULL || kid[0] == '\0')
        return key != NULL ? key : (*detail = "no kid", NULL);
    if (unknown_kid(a, kid, now) != NULL) {
        *detail = "kid unknown to a fresh JWKS (remembered)";
        return NULL;
    }
    asked = ask_refetch(a, "unknown kid");
    if (asked == 2) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += AUTH_KEY_WAIT_MS / 1000;
        until.tv_nsec += (long)(AUTH_KEY_WAIT_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while ((a->fetching || a->want_fetch) &&
               pthread_cond_timedwait(&a->fetched, &a->lock, &until) == 0)
            ;
    }
    key = jwks_find(&a->keys, kid, alg);
    if (key != NULL)
        return key;
    if (asked == 0) {
        *detail = "no key for this kid and alg (refetch rate-limited)";
    } else if (a->fetching || a->want_fetch) {
        *detail = "JWKS refetch still running";
    } else if (a->key_error[0] != '\0') {
        *detail = "JWKS fetch failed";
    } else {
        *detail = "no key for this kid and alg";
        remember_unknown_kid(a, kid, ts_now_ms());
    }
    return NULL;
}

/* A NumericDate claim: -1 absent, 0 present and numeric (*out), 1 malformed. */
static int numeric_claim(json_object *claims, const char *name, double *out)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(claims, name, &v))
        return -1;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return 1;
    *out = json_object_get_double(v);
    return isfinite(*out) ? 0 : 1;
}

/* PyJWT: a string or a list of strings (anything else is a bad audience). */
static int audience_matches(json_object *aud, const char *want)
{
    size_t i;
    int found = 0;

    if (json_object_is_type(aud, json_type_string))
        return strcmp(json_object_get_string(aud), want) == 0;
    if (!json_object_is_type(aud, json_type_array))
        return 0;
    for (i = 0; i < json_object_array_length(aud); i++) {
        json_object *e = json_object_array_get_idx(aud, i);
        if (!json_object_is_type(e, json_type_string))
            return 0;
        found |= strcmp(json_object_get_string(e), want) == 0;
    }
    return found;
}

/* Returns the client-facing message, with the operator's detail set. */
static const char *refuse(const char **detail, const char *why, const char *message)
{
    *detail = why;
    return message;
}

/* PyJWT's order: required (exp), iat, nbf, exp, iss, aud. */
static const char *check_claims(const struct auth_settings *s, json_object *claims, int64_t now,
                                const char **detail)
{
    double exp, iat, nbf;
    long skew = s->clock_skew_secs;
    json_object *v = NULL;
    int rc;

    if ((rc = numeric_claim(claims, "exp", &exp)) != 0)
        return refuse(detail, rc < 0 ? "no exp claim" : "exp is not a number", MSG_INVALID);
    if ((rc = numeric_claim(claims, "iat", &iat)) > 0 || (rc == 0 && iat > (double)(now + skew)))
        return refuse(detail, "iat malformed or in the future", MSG_INVALID);
    if ((rc = numeric_claim(claims, "nbf", &nbf)) > 0 || (rc == 0 && nbf > (double)(now + skew)))
        return refuse(detail, "nbf malformed or not yet valid", MSG_INVALID);
    if (exp <= (double)(now - skew))
        return refuse(detail, "exp passed", MSG_EXPIRED);
    if (json_object_object_get_ex(claims, "sub", &v) && !json_object_is_type(v, json_type_string))
        return refuse(detail, "sub is not a string", MSG_INVALID);
    /* Refused, never cut: a cut subject could collide with another one. A
     * NUL inside it would cut it the same way. */
    if (v != NULL && json_object_is_type(v, json_type_string) &&
        ((size_t)json_object_get_string_len(v) >= AUTH_MAX_NAME ||
         strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)))
        return refuse(detail, "sub too long or holds a NUL", MSG_INVALID);
    if (s->issuer[0] != '\0') {
        if (!json_object_object_get_ex(claims, "iss", &v))
            return refuse(detail, "no iss claim", MSG_INVALID);
        if (!json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), s->issuer) != 0)
            return refuse(detail, "iss differs", MSG_ISSUER);
    }
    if (s->audience[0] != '\0') {
        if (!json_object_object_get_ex(claims, "aud", &v))
            return refuse(detail, "no aud claim", MSG_INVALID);
        if (!audience_matches(v, s->audience))
            return refuse(detail, "aud differs", MSG_AUDIENCE);
    }
    return NULL;
}

static int verify_full(struct auth *a, const char *token, int64_t now_s, struct auth_principal *p,
                       const char **why, const char **detail);

static void token_digest(const char *token, unsigned char digest[32])
{
    unsigned int n = 32;

    EVP_Digest(token, strlen(token), digest, &n, EVP_sha256(), NULL);
}

/* A token these keys verified before, or NULL. */
static struct auth_cache_entry *cache_find(struct auth *a, const unsigned char digest[32])
{
    size_t i;

    for (i = 0; i < AUTH_CACHE_SLOTS; i++) {
        struct auth_cache_entry *e = &a->cache[i];
        if (e->claims != NULL && e->generation == a->keys.generation &&
            memcmp(e->digest, digest, 32) == 0)
            return e;
    }
    return NULL;
}

/* Remembers a verified token (its claims: a new reference), evicting the
 * least recently used entry or one verified by keys since replaced. */
static void cache_add(struct auth *a, const unsigned char digest[32], json_object *claims)
{
    struct auth_cache_entry *victim = &a->cache[0];
    size_t i;

    for (i = 0; i < AUTH_CACHE_SLOTS; i++) {
        struct auth_cache_entry *e = &a->cache[i];
        if (e->claims == NULL || e->generation != a->keys.generation) {
            victim = e;
            break;
        }
        if (e->used_ms < victim->used_ms)
            victim = e;
    }
    json_object_put(victim->claims);
    memcpy(victim->digest, digest, 32);
    victim->generation = a->keys.generation;
    /* A copy of its own: json-c's reference counts are not atomic, and the
     * principal's claims are freed by its serving thread without the lock. */
    victim->claims = NULL;
    if (json_object_deep_copy(claims, &victim->claims, NULL) != 0)
        victim->claims = NULL;
    victim->used_ms = ts_now_ms();
}

static void principal_from_claims(struct auth_principal *p, json_object *claims)
{
    json_object *sub = NULL;

    if (json_object_object_get_ex(claims, "sub", &sub) &&
        json_object_is_type(sub, json_type_string))
        snprintf(p->subject, sizeof p->subject, "%s", json_object_get_string(sub));
    p->claims = claims;
}

/* The signature was checked before with the same keys: only the claims,
 * whose verdict changes with time, are checked again. */
static int verify_cached(struct auth *a, struct auth_cache_entry *e, int64_t now_s,
                         struct auth_principal *p, const char **why, const char **detail)
{
    const char *problem = check_claims(&a->s, e->claims, now_s, detail);
    json_object *copy = NULL;

    if (problem != NULL) {
        *why = problem;
        return -1;
    }

    /* Each request gets its own copy (see cache_add). */
    if (json_object_deep_copy(e->claims, &copy, NULL) != 0) {
        *detail = "out of memory";
        return -1;
    }
    e->used_ms = ts_now_ms();
    principal_from_claims(p, copy);
    *why = *detail = NULL;
    return 0;
}

int auth_verify_token(struct auth *a, const char *token, int64_t now_s, struct auth_principal *p,
                      const char **why, const char **detail)
{
    unsigned char digest[32];
    struct auth_cache_entry *hit;

    int rc;

    memset(p, 0, sizeof *p);
    *why = MSG_INVALID;
    *detail = "malformed token";
    if (strlen(token) > AUTH_MAX_TOKEN)
        return -1;
    token_digest(token, digest);
    pthread_mutex_lock(&a->lock);
    refresh_old_keys(a);
    if (a->keys.loaded && ts_now_ms() - a->keys.loaded_ms > JWKS_MAX_STALE_MS) {
        /* Fail closed: a key revoked while the provider is down must stop
         * working, and cached tokens were verified with these keys. */
        pthread_mutex_unlock(&a->lock);
        *why = MSG_JWKS;
        *detail = "keys too old and not refreshed";
        return -1;
    }
    hit = cache_find(a, digest);
    if (hit != NULL) {
        rc = verify_cached(a, hit, now_s, p, why, detail);
    } else {
        rc = verify_full(a, token, now_s, p, why, detail);
        if (rc == 0)
            cache_add(a, digest, p->claims);
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* The whole check of a token never seen with these keys. */
static int verify_full(struct auth *a, const char *token, int64_t now_s, struct auth_principal *p,
                       const char **why, const char **detail)
{
    const struct jwks_key *key;
    const char *dot1, *dot2, *problem;
    char kid[JWKS_MAX_KID + 1], *grants = NULL;
    jwt_alg_t alg = JWT_ALG_INVAL;
    jwt_t *jwt = NULL;
    json_object *claims = NULL;
    int rc = -1;

    if ((dot1 = strchr(token, '.')) == NULL || (dot2 = strchr(dot1 + 1, '.')) == NULL ||
        strchr(dot2 + 1, '.') != NULL ||
        parse_header(token, (size_t)(dot1 - token), &alg, kid, sizeof kid) != 0)
        goto out;
    /* Only asymmetric algorithms verify against a JWKS: an HS or none token is
     * refused here whatever the configuration says. */
    if (!alg_allowed(&a->s, alg) || auth_alg_family(alg) == AUTH_KEY_NONE) {
        *detail = "alg not allowed";
        goto out;
    }
    key = key_for(a, kid, alg, detail);
    if (key == NULL) {
        *why = MSG_JWKS;
        goto out;
    }
    if (jwt_decode(&jwt, token, (const unsigned char *)key->pem, key->pem_len) != 0 ||
        jwt_get_alg(jwt) != alg) {
        *detail = "bad signature";
        goto out;
    }
    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants ? json_tokener_parse(grants) : NULL;
    if (!json_object_is_type(claims, json_type_object)) {
        *detail = "claims are not an object";
        goto out;
    }
    if ((problem = check_claims(&a->s, claims, now_s, detail)) != NULL) {
        *why = problem;
        goto out;
    }
    principal_from_claims(p, claims);
    claims = NULL;
    *why = *detail = NULL;
    rc = 0;
out:
    json_object_put(claims);
    free(grants);
    jwt_free(jwt);
    return rc;
}

static void unauthorized(struct resp *err, const char *error, const char *message,
                         const char *detail)
{
    char challenge[RESP_MAX_HEADER_VALUE], escaped[256];
    size_t i, o = 0;

    /* The SDK escapes '"' in the description; nothing else needs it. */
    for (i = 0; message[i] && o + 2 < sizeof escaped; i++) {
        if (message[i] == '"')
            escaped[o++] = '\\';
        escaped[o++] = message[i];
    }
    escaped[o] = '\0';
    snprintf(challenge, sizeof challenge, "Bearer error=\"%s\", error_description=\"%s\"", error,
             escaped);
    resp_set_error(err, 401, "unauthorized", message, NULL);
    resp_add_header(err, "WWW-Authenticate", challenge);
    resp_set_reason(err, "%s", detail ? detail : message);
}

int auth_check(struct auth *a, const char *path, const char *authorization, int64_t now_s,
               struct auth_principal *p, struct resp *err)
{
    char scheme[16], token[AUTH_MAX_TOKEN + 2], extra[2];
    const char *why = NULL, *detail = NULL;
    int parts;

    memset(p, 0, sizeof *p);
    /* As the SDK's middleware: only exact exempt paths skip the check. */
    if (auth_path_exempt(&a->s, path))
        return AUTH_EXEMPT;
    if (a->s.mode == AUTH_DISABLED) {
        principal_subject_only(p, a->s.dev_subject);
        return 0;
    }
    if (authorization[0] == '\0') {
        if (a->s.mode == AUTH_OPTIONAL) {
            principal_subject_only(p, a->s.anonymous_subject);
            return 0;
        }
        unauthorized(err, "invalid_request", "Missing Authorization header", NULL);
        return -1;
    }
    /* header.strip().split() must give exactly ["Bearer"(any case), token]. */
    parts = sscanf(authorization, "%15s %8193s %1s", scheme, token, extra);
    if (parts != 2 || strcasecmp(scheme, "bearer") != 0 || strlen(token) > AUTH_MAX_TOKEN) {
        unauthorized(err, "invalid_request", "Invalid Authorization header", NULL);
        return -1;
    }
    if (auth_verify_token(a, token, now_s, p, &why, &detail) != 0) {
        unauthorized(err, "invalid_token", why, detail);
        return -1;
    }
    return 0;
}
