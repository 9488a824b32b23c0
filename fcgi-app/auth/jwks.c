/*
 * jwks.c - owns key material: fetching the JWKS (libcurl), and building a
 * PEM public key from each JWK with OpenSSL 3, because libjwt 1.10 has no
 * JWKS support and verifies against a PEM (docs/pitfalls.md).
 */
#include "jwks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "jarvis/util.h"
#include "log.h"
#include "timefmt.h"

/* Longest base64url member of a JWK we decode (RSA 16384-bit modulus). */
#define JWK_MAX_B64 4096

int jwks_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static const char *member_str(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* base64url member -> BIGNUM, or NULL. */
static BIGNUM *member_bn(json_object *jwk, const char *key)
{
    unsigned char buf[JWK_MAX_B64];
    const char *s = member_str(jwk, key);
    long n;

    if (s == NULL || strlen(s) > JWK_MAX_B64 ||
        (n = jarvis_base64_decode(s, strlen(s), JARVIS_BASE64_URL, buf, sizeof buf, NULL)) <= 0)
        return NULL;
    return BN_bin2bn(buf, (int)n, NULL);
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *rsa_key(json_object *jwk)
{
    BIGNUM *n = member_bn(jwk, "n"), *e = member_bn(jwk, "e");
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;

    if (n != NULL && e != NULL && bld != NULL && BN_num_bits(n) >= JWKS_MIN_RSA_BITS &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        pkey = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static EVP_PKEY *ec_key(json_object *jwk, jwt_alg_t *curve_alg)
{
    static const struct {
        const char *crv, *group;
        size_t size;
        jwt_alg_t alg;
    } curves[] = {
        {"P-256", "prime256v1", 32, JWT_ALG_ES256},
        {"P-384", "secp384r1", 48, JWT_ALG_ES384},
        {"P-521", "secp521r1", 66, JWT_ALG_ES512},
    };
    unsigned char point[1 + 2 * 66], x[80], y[80];
    const char *crv = member_str(jwk, "crv"), *xs = member_str(jwk, "x"),
               *ys = member_str(jwk, "y");
    OSSL_PARAM_BLD *bld;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *check;
    size_t i;

    for (i = 0; crv != NULL && i < sizeof curves / sizeof curves[0]; i++)
        if (strcmp(crv, curves[i].crv) == 0)
            break;
    if (crv == NULL || i == sizeof curves / sizeof curves[0] || xs == NULL || ys == NULL ||
        jarvis_base64_decode(xs, strlen(xs), JARVIS_BASE64_URL, x, sizeof x, NULL) !=
            (long)curves[i].size ||
        jarvis_base64_decode(ys, strlen(ys), JARVIS_BASE64_URL, y, sizeof y, NULL) !=
            (long)curves[i].size)
        return NULL;
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, curves[i].size);
    memcpy(point + 1 + curves[i].size, y, curves[i].size);
    bld = OSSL_PARAM_BLD_new();
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[i].group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                         1 + 2 * curves[i].size))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    /* A point off the curve would be an invalid-curve attack vector. */
    check = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    if (pkey != NULL && (check == NULL || EVP_PKEY_public_check(check) != 1)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(check);
    *curve_alg = curves[i].alg;
    return pkey;
}

static char *to_pem(EVP_PKEY *pkey, int *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem = NULL;
    long n;

    if (bio != NULL && PEM_write_bio_PUBKEY(bio, pkey) == 1 &&
        (n = BIO_get_mem_data(bio, &data)) > 0 && (pem = malloc((size_t)n + 1)) != NULL) {
        memcpy(pem, data, (size_t)n);
        pem[n] = '\0';
        *len = (int)n;
    }
    BIO_free(bio);
    return pem;
}

/* Fills key from one JWK; -1 (and a log line) when it cannot be used. */
static int parse_key(json_object *jwk, struct jwks_key *key)
{
    const char *kty = member_str(jwk, "kty"), *use = member_str(jwk, "use");
    const char *kid = member_str(jwk, "kid"), *alg = member_str(jwk, "alg");
    EVP_PKEY *pkey = NULL;

    memset(key, 0, sizeof *key);
    key->curve_alg = JWT_ALG_INVAL;
    key->alg = alg ? jwt_str_alg(alg) : JWT_ALG_INVAL;
    if (use != NULL && strcmp(use, "sig") != 0)
        return -1; /* an encryption key: not ours to use */
    if (kid != NULL && strlen(kid) > JWKS_MAX_KID) {
        log_msg(JARVIS_LOG_WARN, "JWKS: ignoring a key with a kid over %d bytes", JWKS_MAX_KID);
        return -1;
    }
    snprintf(key->kid, sizeof key->kid, "%s", kid ? kid : "");
    if (kty != NULL && strcmp(kty, "RSA") == 0) {
        key->kty = JWKS_RSA;
        pkey = rsa_key(jwk);
    } else if (kty != NULL && strcmp(kty, "EC") == 0) {
        key->kty = JWKS_EC;
        pkey = ec_key(jwk, &key->curve_alg);
    }
    if (pkey == NULL) {
        log_msg(JARVIS_LOG_WARN, "JWKS: ignoring key '%s' (kty %s): unsupported or invalid",
                key->kid, kty ? kty : "?");
        return -1;
    }
    key->pem = to_pem(pkey, &key->pem_len);
    EVP_PKEY_free(pkey);
    return key->pem != NULL ? 0 : -1;
}

void jwks_clear(struct jwks *k)
{
    size_t i;

    for (i = 0; i < k->n; i++)
        free(k->keys[i].pem);
    k->n = 0;
}

int jwks_parse(struct jwks *k, const char *json, size_t len, char *err, size_t errlen)
{
    struct json_tokener *tok = json_tokener_new_ex(16);
    json_object *doc = NULL, *keys = NULL;
    struct jwks fresh;
    size_t i;
    int rc = -1;

    memset(&fresh, 0, sizeof fresh);
    if (tok == NULL || len > JWKS_MAX_BYTES) {
        snprintf(err, errlen, "JWKS too large or out of memory");
        goto out;
    }
    doc = json_tokener_parse_ex(tok, json, (int)len);
    if (doc == NULL || !json_object_object_get_ex(doc, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        snprintf(err, errlen, "not a JWKS document (no \"keys\" array)");
        goto out;
    }
    for (i = 0; i < json_object_array_length(keys) && fresh.n < JWKS_MAX_KEYS; i++)
        if (parse_key(json_object_array_get_idx(keys, i), &fresh.keys[fresh.n]) == 0)
            fresh.n++;
    jwks_clear(k);
    memcpy(k->keys, fresh.keys, sizeof fresh.keys);
    k->n = fresh.n;
    k->loaded = 1;
    k->generation++;
    k->loaded_ms = ts_now_ms();
    rc = (int)k->n;
out:
    json_object_put(doc);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

struct sink {
    char *buf;
    size_t len;
    int over;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    char *grown;

    if (s->len + n > JWKS_MAX_BYTES) {
        s->over = 1;
        return 0;
    }
    grown = realloc(s->buf, s->len + n + 1);
    if (grown == NULL)
        return 0;
    s->buf = grown;
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

int jwks_fetch(const char *url, char **body, size_t *len, char *err, size_t errlen)
{
    struct sink s = {NULL, 0, 0};
    CURL *c = curl_easy_init();
    CURLcode rc = CURLE_FAILED_INIT;

    *body = NULL;
    if (c != NULL) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
        /* A redirect never downgrades a key source to plain http. */
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)JWKS_FETCH_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        rc = curl_easy_perform(c);
        curl_easy_cleanup(c);
    }
    if (rc != CURLE_OK || s.buf == NULL) {
        snprintf(err, errlen, "fetching %s: %s", url,
                 s.over ? "larger than 1 MiB" : curl_easy_strerror(rc));
        free(s.buf);
        return -1;
    }
    *body = s.buf;
    *len = s.len;
    return 0;
}

/* 1 if host (the URL's authority without user info) is loopback. */
static int loopback_host(const char *host, size_t n)
{
    char h[64];
    unsigned a, b, c, d;
    char extra;

    if (n == 0 || n >= sizeof h)
        return 0;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0)
        return 1;
    /* Only the plain dotted form: 127.1 or 2130706433 are not accepted. */
    return sscanf(h, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &extra) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256 && strspn(h, "0123456789.") == n;
}

int jwks_source_check(const char *url, int configured, char *err, size_t errlen)
{
    const char *host, *end;

    if (strncasecmp(url, "https://", 8) == 0)
        return 0;
    if (strncasecmp(url, "file://", 7) == 0) {
        if (configured)
            return 0;
        snprintf(err, errlen, "%s: file:// keys only as ARP_AUTH_JWKS_URI itself", url);
        return -1;
    }
    if (strncasecmp(url, "http://", 7) == 0) {
        host = url + 7;
        end = host + strcspn(host, "/?#");
        if (memchr(host, '@', (size_t)(end - host)) == NULL) {
            const char *colon = host[0] == '[' ? strchr(host, ']') : NULL;
            const char *hend =
                colon != NULL && colon < end ? colon + 1 : host + strcspn(host, ":/?#");
            if (loopback_host(host, (size_t)(hend - host)))
                return 1;
        }
        snprintf(err, errlen, "%s: plain http keys only from a loopback host; use https://", url);
        return -1;
    }
    snprintf(err, errlen, "%s: keys come from https:// (or a configured file://)", url);
    return -1;
}

/* Checks a key source before any fetch; warns for plain http. 0 or -1. */
static int source_ok(const char *url, int configured, char *err, size_t errlen)
{
    int rc = jwks_source_check(url, configured, err, errlen);

    if (rc == 1)
        log_msg(JARVIS_LOG_WARN,
                "auth: keys over plain http from %s (loopback, for development only)", url);
    return rc < 0 ? -1 : 0;
}

/* The JWKS URL: configured, or read from the OIDC discovery document. */
int jwks_resolve_uri(const struct auth_settings *s, char *uri, size_t len, char *err, size_t errlen)
{
    char discovery[AUTH_MAX_URL + 64];
    json_object *doc;
    const char *found;
    char *body;
    size_t n;
    int rc;

    if (s->jwks_uri[0] != '\0') {
        snprintf(uri, len, "%s", s->jwks_uri);
        return source_ok(uri, 1, err, errlen);
    }
    if (s->discovery_url[0] != '\0') {
        snprintf(discovery, sizeof discovery, "%s", s->discovery_url);
    } else {
        size_t il = strlen(s->issuer);
        while (il > 0 && s->issuer[il - 1] == '/')
            il--;
        snprintf(discovery, sizeof discovery, "%.*s/.well-known/openid-configuration", (int)il,
                 s->issuer);
    }
    if (source_ok(discovery, 0, err, errlen) != 0 ||
        jwks_fetch(discovery, &body, &n, err, errlen) != 0)
        return -1;
    doc = json_tokener_parse(body);
    found = member_str(doc, "jwks_uri"); /* borrowed from doc */
    rc = found != NULL && strlen(found) < len ? 0 : -1;
    if (rc == 0) {
        snprintf(uri, len, "%s", found);
        /* A discovery document never points keys at a local file. */
        rc = source_ok(uri, 0, err, errlen);
    } else {
        snprintf(err, errlen, "%s has no usable jwks_uri", discovery);
    }
    json_object_put(doc);
    free(body);
    return rc;
}

/* The JWKS document the settings point at, in a new buffer (caller frees).
 * 0, or -1 with err. */
static int fetch_set(const struct auth_settings *s, char **body, size_t *len, char *err,
                     size_t errlen)
{
    char uri[AUTH_MAX_URL];

    *body = NULL;
    *len = 0;
    if (jwks_resolve_uri(s, uri, sizeof uri, err, errlen) != 0 ||
        jwks_fetch(uri, body, len, err, errlen) != 0)
        return -1;
    return 0;
}

int jwks_load(struct jwks *k, const struct auth_settings *s, char *err, size_t errlen)
{
    char *body = NULL;
    size_t len = 0;
    int rc;

    if (fetch_set(s, &body, &len, err, errlen) != 0)
        return -1;
    rc = jwks_parse(k, body, len, err, errlen);
    free(body);
    return rc < 0 ? -1 : 0;
}

const struct jwks_key *jwks_find(const struct jwks *k, const char *kid, jwt_alg_t alg)
{
    enum auth_key_family family = auth_alg_family(alg);
    int rsa = family == AUTH_KEY_RSA, ec = family == AUTH_KEY_EC;
    size_t i;

    if (kid[0] == '\0')
        return NULL;
    for (i = 0; i < k->n; i++) {
        const struct jwks_key *key = &k->keys[i];
        if (strcmp(key->kid, kid) != 0)
            continue;
        /* The key's type must be the algorithm's family: no RS/ES/HS confusion. */
        if ((rsa && key->kty != JWKS_RSA) ||
            (ec && (key->kty != JWKS_EC || key->curve_alg != alg)) || (!rsa && !ec))
            continue;
        if (key->alg != JWT_ALG_INVAL && key->alg != alg)
            continue;
        return key;
    }
    return NULL;
}
