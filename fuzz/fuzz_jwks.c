/*
 * fuzz_jwks.c - fuzz target for fcgi-app/auth/jwks.c: a JWKS document to PEM
 * public keys (base64url, RSA and EC keys built with OpenSSL, the curve
 * point check), the key lookup by kid and algorithm, and the trust rule
 * for a key source that an OIDC discovery document names (jwks_uri).
 *
 * Input: the document (a JWKS, or a discovery document with "jwks_uri").
 *
 * Invariants beyond "no crash":
 *  - a parse returns the number of keys it kept, at most JWKS_MAX_KEYS;
 *    each has a kid of at most JWKS_MAX_KID bytes and a PEM that OpenSSL
 *    reads back as a public key of the JWK's type (RSA of at least
 *    JWKS_MIN_RSA_BITS; EC on the curve of its ES algorithm);
 *  - parsing the same document again keeps the same keys, same PEMs;
 *  - jwks_find never gives a key of another family than the algorithm's,
 *    nothing for HS256 or for an empty kid, and finds every key kept;
 *  - a key source is trusted only when it is https://, configured file://,
 *    or http:// to a loopback host; else there is a reason.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fuzz_util.h"
#include "jwks.h"

static int family_ok(const struct jwks_key *k, jwt_alg_t alg)
{
    if (alg == JWT_ALG_RS256 || alg == JWT_ALG_RS384 || alg == JWT_ALG_RS512)
        return k->kty == JWKS_RSA;
    if (alg == JWT_ALG_ES256 || alg == JWT_ALG_ES384 || alg == JWT_ALG_ES512)
        return k->kty == JWKS_EC && k->curve_alg == alg;
    return 0;
}

static void check_key(const struct jwks *set, const struct jwks_key *k)
{
    static const jwt_alg_t algs[] = {JWT_ALG_RS256, JWT_ALG_RS384, JWT_ALG_RS512, JWT_ALG_ES256,
                                     JWT_ALG_ES384, JWT_ALG_ES512, JWT_ALG_HS256, JWT_ALG_NONE};
    BIO *bio;
    EVP_PKEY *pkey;
    size_t i;
    int found = 0;

    FZ_CHECK(strlen(k->kid) <= JWKS_MAX_KID);
    FZ_CHECK(k->pem != NULL && k->pem_len > 0 && strlen(k->pem) == (size_t)k->pem_len);
    bio = BIO_new_mem_buf(k->pem, k->pem_len);
    FZ_CHECK(bio != NULL);
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    FZ_CHECK(pkey != NULL);
    if (k->kty == JWKS_RSA) {
        FZ_CHECK(EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= JWKS_MIN_RSA_BITS);
    } else {
        FZ_CHECK(k->kty == JWKS_EC && EVP_PKEY_is_a(pkey, "EC"));
        FZ_CHECK(EVP_PKEY_get_bits(pkey) == (k->curve_alg == JWT_ALG_ES256   ? 256
                                             : k->curve_alg == JWT_ALG_ES384 ? 384
                                                                             : 521));
    }
    EVP_PKEY_free(pkey);
    for (i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        const struct jwks_key *got = jwks_find(set, k->kid, algs[i]);
        FZ_CHECK(jwks_find(set, "", algs[i]) == NULL);
        if (got == NULL)
            continue;
        FZ_CHECK(family_ok(got, algs[i]) && strcmp(got->kid, k->kid) == 0);
        FZ_CHECK(got->alg == JWT_ALG_INVAL || got->alg == algs[i]);
        found |= got == k;
    }
    /* Every key kept with a kid is reachable, unless an earlier one with
     * the same kid and family shadows it. */
    if (k->kid[0] != '\0' && (k->alg == JWT_ALG_INVAL || family_ok(k, k->alg)))
        FZ_CHECK(found ||
                 jwks_find(set, k->kid,
                           k->kty == JWKS_RSA ? (k->alg != JWT_ALG_INVAL ? k->alg : JWT_ALG_RS256)
                                              : k->curve_alg) != NULL);
}

static void check_parse(const char *doc, size_t len)
{
    struct jwks a, b;
    char err[256];
    size_t i;
    int n;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    n = jwks_parse(&a, doc, len, err, sizeof err);
    FZ_CHECK(jwks_parse(&b, doc, len, err, sizeof err) == n);
    if (n < 0) {
        FZ_CHECK(a.n == 0 && !a.loaded && err[0] != '\0');
        return;
    }
    FZ_CHECK((size_t)n == a.n && a.n <= JWKS_MAX_KEYS && a.loaded && a.generation == 1);
    for (i = 0; i < a.n; i++) {
        check_key(&a, &a.keys[i]);
        FZ_CHECK(strcmp(a.keys[i].kid, b.keys[i].kid) == 0 && a.keys[i].kty == b.keys[i].kty);
        FZ_CHECK(strcmp(a.keys[i].pem, b.keys[i].pem) == 0);
    }
    jwks_clear(&a);
    jwks_clear(&b);
}

/* Whether url starts a loopback http authority (the oracle's own reading). */
static int loopback_http(const char *url)
{
    static const char *const hosts[] = {"localhost", "[::1]"};
    const char *h = url + 7, *end = h + strcspn(h, ":/?#");
    size_t i, n;
    unsigned a, b, c, d;
    char tail, host[16];

    if (h[0] == '[')
        end = h + strcspn(h, "]") + (h[strcspn(h, "]")] == ']');
    n = (size_t)(end - h);
    if (memchr(h, '@', strcspn(h, "/?#")) != NULL)
        return 0;
    for (i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        if (n == strlen(hosts[i]) && strncasecmp(h, hosts[i], n) == 0)
            return 1;
    if (n == 0 || n >= sizeof host || strspn(h, "0123456789.") < n)
        return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    if (sscanf(host, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) != 4)
        return 0;
    return a == 127 && b < 256 && c < 256 && d < 256;
}

static void check_source(const char *url)
{
    char err[256];
    int configured;

    for (configured = 0; configured <= 1; configured++) {
        int rc;
        err[0] = '\0';
        rc = jwks_source_check(url, configured, err, sizeof err);
        if (strncasecmp(url, "https://", 8) == 0 ||
            (configured && strncasecmp(url, "file://", 7) == 0))
            FZ_CHECK(rc == 0);
        else if (strncasecmp(url, "http://", 7) == 0 && loopback_http(url))
            FZ_CHECK(rc == 1);
        else
            FZ_CHECK(rc == -1 && err[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char *doc = fz_strndup(data, size);
    json_object *j, *uri = NULL;

    if (!ready) {
        fz_quiet();
        ready = 1;
    }
    check_parse(doc, size);
    /* A discovery document: the rule for the key source it names. */
    j = json_tokener_parse(doc);
    if (json_object_object_get_ex(j, "jwks_uri", &uri) &&
        json_object_is_type(uri, json_type_string))
        check_source(json_object_get_string(uri));
    check_source(doc);
    json_object_put(j);
    free(doc);
    return 0;
}
