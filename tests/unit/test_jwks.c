/*
 * test_jwks.c - key material: JWKs built at test time from keys OpenSSL 3
 * generates (RSA 2048, EC P-256/P-384; nothing private is committed), the
 * JWKS parser's skips, key lookup by kid and algorithm family, fetching
 * file:// URLs, loading through a JWKS URI, a discovery URL or an issuer,
 * and the base64url decoder.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "jarvis/util.h"
#include "jwks.h"
#include "log.h"
#include "testutil.h"
#include "timefmt.h"

static char dir[64]; /* mkdtemp folder for the JWKS files */
static EVP_PKEY *rsa, *rsa_small, *ec, *ec384;

/* ---- helpers ---------------------------------------------------------- */

/* base64url without padding of in[0..n) into out (size cap). */
static void b64url(const unsigned char *in, size_t n, char *out, size_t cap)
{
    unsigned char *tmp = malloc(4 * ((n + 2) / 3) + 1);
    int len, i, o = 0;

    CU_ASSERT_FATAL(tmp != NULL && (4 * n + 2) / 3 + 1 <= cap); /* unpadded length + NUL */
    len = EVP_EncodeBlock(tmp, in, (int)n);
    for (i = 0; i < len && tmp[i] != '='; i++)
        out[o++] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : (char)tmp[i];
    out[o] = '\0';
    free(tmp);
}

/* A BIGNUM parameter of a key as base64url (big-endian, no leading zeros). */
static void bn_param_b64(const EVP_PKEY *k, const char *param, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;

    CU_ASSERT_FATAL(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
    n = BN_num_bytes(bn);
    CU_ASSERT_FATAL(n > 0 && (size_t)n <= sizeof buf);
    BN_bn2bin(bn, buf);
    BN_free(bn);
    b64url(buf, (size_t)n, out, cap);
}

/* kid (NULL: no "kid") and extra members (",\"use\":\"sig\"" or "") */
static void jwk_rsa(char *out, size_t cap, const EVP_PKEY *k, const char *kid, const char *extra)
{
    char n[1024], e[32], kidm[600] = "";

    bn_param_b64(k, OSSL_PKEY_PARAM_RSA_N, n, sizeof n);
    bn_param_b64(k, OSSL_PKEY_PARAM_RSA_E, e, sizeof e);
    if (kid != NULL)
        snprintf(kidm, sizeof kidm, "\"kid\":\"%s\",", kid);
    CU_ASSERT_FATAL((size_t)snprintf(out, cap, "{%s\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}",
                                     kidm, n, e, extra) < cap);
}

/* An EC JWK; corrupt_y flips one bit of y (a point off the curve). */
static void jwk_ec(char *out, size_t cap, const EVP_PKEY *k, const char *crv, const char *kid,
                   const char *extra, int corrupt_y)
{
    unsigned char pt[1 + 2 * 66];
    char x[100], y[100], kidm[600] = "";
    size_t len = 0, half;

    CU_ASSERT_FATAL(
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len) == 1);
    CU_ASSERT_FATAL(len % 2 == 1 && pt[0] == 0x04); /* uncompressed */
    half = (len - 1) / 2;
    if (corrupt_y)
        pt[1 + half + half / 2] ^= 0x01;
    b64url(pt + 1, half, x, sizeof x);
    b64url(pt + 1 + half, half, y, sizeof y);
    if (kid != NULL)
        snprintf(kidm, sizeof kidm, "\"kid\":\"%s\",", kid);
    CU_ASSERT_FATAL(
        (size_t)snprintf(out, cap, "{%s\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
                         kidm, crv, x, y, extra) < cap);
}

/* {"keys":[jwk, ...]} from NULL-terminated JWK texts, malloc'd. */
static char *jwks_doc(const char *first, ...)
{
    size_t cap = 64, len;
    const char *j;
    char *doc;
    va_list ap;

    va_start(ap, first);
    for (j = first; j != NULL; j = va_arg(ap, const char *))
        cap += strlen(j) + 1;
    va_end(ap);
    doc = malloc(cap);
    CU_ASSERT_FATAL(doc != NULL);
    strcpy(doc, "{\"keys\":[");
    va_start(ap, first);
    for (j = first; j != NULL; j = va_arg(ap, const char *)) {
        if (j != first)
            strcat(doc, ",");
        strcat(doc, j);
    }
    va_end(ap);
    len = strlen(doc);
    memcpy(doc + len, "]}", 3);
    return doc;
}

static int parse(struct jwks *k, const char *doc, char *err, size_t errlen)
{
    return jwks_parse(k, doc, strlen(doc), err, errlen);
}

/* "<dir>/<rel>" */
static const char *path_in(const char *rel, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", dir, rel);
    return buf;
}

/* Writes n bytes (a NUL-terminated text when n is (size_t)-1) to <dir>/<rel>. */
static void write_file(const char *rel, const char *data, size_t n)
{
    char p[256];
    FILE *f = fopen(path_in(rel, p, sizeof p), "wb");

    if (n == (size_t)-1)
        n = strlen(data);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fwrite(data, 1, n, f) == n);
    CU_ASSERT_FATAL(fclose(f) == 0);
}

static const char *url_of(const char *rel, char *buf, size_t cap)
{
    snprintf(buf, cap, "file://%s/%s", dir, rel);
    return buf;
}

static char *pubkey_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long n;

    CU_ASSERT_FATAL(bio != NULL && PEM_write_bio_PUBKEY(bio, k) == 1);
    n = BIO_get_mem_data(bio, &data);
    pem = malloc((size_t)n + 1);
    CU_ASSERT_FATAL(pem != NULL);
    memcpy(pem, data, (size_t)n);
    pem[n] = '\0';
    BIO_free(bio);
    return pem;
}

/* ---- suite set-up ------------------------------------------------------ */

static int suite_init(void)
{
    strcpy(dir, "/tmp/jarvis-test-jwks-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    log_set_level(JARVIS_LOG_ERROR); /* the parser's "ignoring key" warnings */
    if (jwks_global_init() != 0)
        return -1;
    rsa = EVP_RSA_gen(2048);
    rsa_small = EVP_RSA_gen(1024);
    ec = EVP_EC_gen("P-256");
    ec384 = EVP_EC_gen("P-384");
    if (rsa == NULL || rsa_small == NULL || ec == NULL || ec384 == NULL)
        return -1;
    return 0;
}

static int suite_cleanup(void)
{
    tu_remove_tree(dir);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_small);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec384);
    curl_global_cleanup();
    return 0;
}

/* ---- jwks_parse -------------------------------------------------------- */

static void test_parse_rsa_and_ec(void)
{
    char jr[2048], je[1024], err[256] = "";
    struct jwks k;
    char *doc, *want;

    memset(&k, 0, sizeof k);
    jwk_rsa(jr, sizeof jr, rsa, "r1", ",\"use\":\"sig\",\"alg\":\"RS256\"");
    jwk_ec(je, sizeof je, ec, "P-256", "e1", "", 0);
    doc = jwks_doc(jr, je, NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 2);
    CU_ASSERT_EQUAL_FATAL(k.n, 2);
    CU_ASSERT_EQUAL(k.loaded, 1);

    CU_ASSERT_STRING_EQUAL(k.keys[0].kid, "r1");
    CU_ASSERT_EQUAL(k.keys[0].kty, JWKS_RSA);
    CU_ASSERT_EQUAL(k.keys[0].alg, JWT_ALG_RS256);
    CU_ASSERT_EQUAL(k.keys[0].curve_alg, JWT_ALG_INVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k.keys[0].pem);
    CU_ASSERT_EQUAL((size_t)k.keys[0].pem_len, strlen(k.keys[0].pem));
    /* n/e rebuilt into exactly the public key OpenSSL writes for it. */
    want = pubkey_pem(rsa);
    CU_ASSERT_STRING_EQUAL(k.keys[0].pem, want);
    free(want);

    CU_ASSERT_STRING_EQUAL(k.keys[1].kid, "e1");
    CU_ASSERT_EQUAL(k.keys[1].kty, JWKS_EC);
    CU_ASSERT_EQUAL(k.keys[1].curve_alg, JWT_ALG_ES256);
    CU_ASSERT_EQUAL(k.keys[1].alg, JWT_ALG_INVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k.keys[1].pem);
    want = pubkey_pem(ec);
    CU_ASSERT_STRING_EQUAL(k.keys[1].pem, want);
    free(want);
    free(doc);

    /* A second parse replaces the keys (the old PEMs are freed: ASan). */
    jwk_ec(je, sizeof je, ec384, "P-384", "e3", "", 0);
    doc = jwks_doc(je, NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 1);
    CU_ASSERT_EQUAL_FATAL(k.n, 1);
    CU_ASSERT_STRING_EQUAL(k.keys[0].kid, "e3");
    CU_ASSERT_EQUAL(k.keys[0].curve_alg, JWT_ALG_ES384);
    free(doc);

    jwks_clear(&k);
    CU_ASSERT_EQUAL(k.n, 0);
    jwks_clear(&k); /* idempotent */
}

static void test_parse_skips(void)
{
    char j1[2048], j2[2048], j3[1024], j4[1024], j5[1024], err[256];
    struct jwks k;
    char *doc;

    memset(&k, 0, sizeof k);
    /* "use":"enc" is an encryption key. */
    jwk_rsa(j1, sizeof j1, rsa, "enc", ",\"use\":\"enc\"");
    jwk_ec(j2, sizeof j2, ec, "P-256", "sig", ",\"use\":\"sig\"", 0);
    doc = jwks_doc(j1, j2, NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(k.keys[0].kid, "sig");
    free(doc);

    /* Below JWKS_MIN_RSA_BITS. */
    jwk_rsa(j1, sizeof j1, rsa_small, "small", "");
    doc = jwks_doc(j1, NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 0);
    CU_ASSERT_EQUAL(k.n, 0);
    CU_ASSERT_EQUAL(k.loaded, 1);
    free(doc);

    /* A point off the curve (invalid-curve attacks). */
    jwk_ec(j1, sizeof j1, ec, "P-256", "bad-point", "", 1);
    jwk_ec(j2, sizeof j2, ec384, "P-384", "bad-point-384", "", 1);
    doc = jwks_doc(j1, j2, NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 0);
    free(doc);

    /* A P-256 point declared as P-384 (wrong coordinate size), an unknown
     * curve, a missing y. */
    jwk_ec(j1, sizeof j1, ec, "P-384", "wrong-crv", "", 0);
    jwk_ec(j2, sizeof j2, ec, "secp256k1", "k1", "", 0);
    snprintf(j3, sizeof j3, "{\"kid\":\"no-y\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\"}");
    doc = jwks_doc(j1, j2, j3, NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 0);
    free(doc);

    /* Symmetric keys, unknown or missing kty, junk members. */
    snprintf(j1, sizeof j1, "{\"kid\":\"oct\",\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}");
    snprintf(j2, sizeof j2, "{\"kid\":\"okp\",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}");
    snprintf(j3, sizeof j3, "{\"kid\":\"nokty\",\"n\":\"AQAB\",\"e\":\"AQAB\"}");
    snprintf(j4, sizeof j4, "{\"kid\":\"badn\",\"kty\":\"RSA\",\"n\":\"!!!!\",\"e\":\"AQAB\"}");
    snprintf(j5, sizeof j5, "{\"kid\":\"emptye\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"\"}");
    doc = jwks_doc(j1, j2, j3, j4, j5, "1", "\"x\"", "null", "[]", "{\"kty\":5}", NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 0);
    free(doc);
    jwks_clear(&k);
}

static void test_parse_kid_length(void)
{
    char kid[JWKS_MAX_KID + 2], j1[2048], j2[2048], err[256];
    struct jwks k;
    char *doc;

    memset(&k, 0, sizeof k);
    memset(kid, 'k', JWKS_MAX_KID + 1);
    kid[JWKS_MAX_KID + 1] = '\0';
    jwk_ec(j1, sizeof j1, ec, "P-256", kid, "", 0); /* one byte too long */
    kid[JWKS_MAX_KID] = '\0';
    jwk_ec(j2, sizeof j2, ec, "P-256", kid, "", 0); /* the longest allowed */
    doc = jwks_doc(j1, j2, NULL);
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), 1);
    CU_ASSERT_EQUAL(strlen(k.keys[0].kid), JWKS_MAX_KID);
    CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, kid, JWT_ALG_ES256));
    free(doc);
    jwks_clear(&k);
}

static void test_parse_not_jwks(void)
{
    static const char *const docs[] = {
        "{\"foo\":1}", "[]", "{\"keys\":{}}", "{\"keys\":null}", "not json",
        "{\"keys\":[", "",   "\"keys\""};
    char je[1024], err[256];
    struct jwks k;
    char *doc;
    size_t i;

    memset(&k, 0, sizeof k);
    jwk_ec(je, sizeof je, ec, "P-256", "keep", "", 0);
    doc = jwks_doc(je, NULL);
    CU_ASSERT_EQUAL_FATAL(parse(&k, doc, err, sizeof err), 1);
    free(doc);
    for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(parse(&k, docs[i], err, sizeof err), -1);
        CU_ASSERT_STRING_NOT_EQUAL(err, "");
        /* The keys already loaded stay. */
        CU_ASSERT_EQUAL(k.n, 1);
        CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, "keep", JWT_ALG_ES256));
    }
    /* Over JWKS_MAX_BYTES is refused before parsing. */
    CU_ASSERT_EQUAL(jwks_parse(&k, "{\"keys\":[]}", (size_t)JWKS_MAX_BYTES + 1, err, sizeof err),
                    -1);
    CU_ASSERT_EQUAL(k.n, 1);
    /* An empty key set is a JWKS (with no usable key). */
    CU_ASSERT_EQUAL(parse(&k, "{\"keys\":[]}", err, sizeof err), 0);
    CU_ASSERT_EQUAL(k.n, 0);
    jwks_clear(&k);
}

static void test_parse_key_cap(void)
{
    char jwk[JWKS_MAX_KEYS + 1][512], kid[16], err[256];
    struct jwks k;
    char *doc, *p;
    size_t i, cap = 16;

    memset(&k, 0, sizeof k);
    for (i = 0; i < JWKS_MAX_KEYS + 1; i++) {
        snprintf(kid, sizeof kid, "k%zu", i);
        jwk_ec(jwk[i], sizeof jwk[i], ec, "P-256", kid, "", 0);
        cap += strlen(jwk[i]) + 1;
    }
    doc = malloc(cap);
    CU_ASSERT_FATAL(doc != NULL);
    p = doc + sprintf(doc, "{\"keys\":[");
    for (i = 0; i < JWKS_MAX_KEYS + 1; i++)
        p += sprintf(p, "%s%s", i ? "," : "", jwk[i]);
    strcpy(p, "]}");
    CU_ASSERT_EQUAL(parse(&k, doc, err, sizeof err), JWKS_MAX_KEYS);
    CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, "k31", JWT_ALG_ES256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "k32", JWT_ALG_ES256));
    free(doc);
    jwks_clear(&k);
}

/* ---- jwks_find --------------------------------------------------------- */

static void test_find(void)
{
    char j1[2048], j2[1024], j3[1024], j4[2048], j5[2048], err[256];
    const struct jwks_key *key;
    struct jwks k;
    char *doc;

    memset(&k, 0, sizeof k);
    jwk_rsa(j1, sizeof j1, rsa, "r1", "");
    jwk_ec(j2, sizeof j2, ec, "P-256", "e1", "", 0);
    jwk_ec(j3, sizeof j3, ec384, "P-384", "e3", "", 0);
    jwk_rsa(j4, sizeof j4, rsa, "r384", ",\"alg\":\"RS384\"");
    jwk_rsa(j5, sizeof j5, rsa, NULL, ""); /* no kid */
    doc = jwks_doc(j1, j2, j3, j4, j5, NULL);
    CU_ASSERT_EQUAL_FATAL(parse(&k, doc, err, sizeof err), 5);
    free(doc);

    /* RSA: any RS alg when the JWK names none; never ES, HS or none. */
    key = jwks_find(&k, "r1", JWT_ALG_RS256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    CU_ASSERT_STRING_EQUAL(key->kid, "r1");
    CU_ASSERT_PTR_EQUAL(jwks_find(&k, "r1", JWT_ALG_RS512), key);
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r1", JWT_ALG_ES256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r1", JWT_ALG_HS256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r1", JWT_ALG_NONE));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r1", JWT_ALG_INVAL));

    /* EC: only the ES alg of its curve. */
    key = jwks_find(&k, "e1", JWT_ALG_ES256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    CU_ASSERT_EQUAL(key->kty, JWKS_EC);
    CU_ASSERT_PTR_NULL(jwks_find(&k, "e1", JWT_ALG_ES384));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "e1", JWT_ALG_ES512));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "e1", JWT_ALG_RS256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "e1", JWT_ALG_HS256));
    CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, "e3", JWT_ALG_ES384));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "e3", JWT_ALG_ES256));

    /* A JWK "alg" restricts the key to that alg. */
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r384", JWT_ALG_RS256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r384", JWT_ALG_RS512));
    CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, "r384", JWT_ALG_RS384));

    /* kid "" (a token without one) matches nothing, not even a JWK without
     * one: PyJWKClient only uses keys that have a kid. */
    key = jwks_find(&k, "", JWT_ALG_RS256);
    CU_ASSERT_PTR_NULL(key);
    CU_ASSERT_PTR_NULL(jwks_find(&k, "", JWT_ALG_ES256));

    /* kids compare exactly. */
    CU_ASSERT_PTR_NULL(jwks_find(&k, "nope", JWT_ALG_RS256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "R1", JWT_ALG_RS256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r", JWT_ALG_RS256));
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r1 ", JWT_ALG_RS256));
    jwks_clear(&k);
    CU_ASSERT_PTR_NULL(jwks_find(&k, "r1", JWT_ALG_RS256));
}

/* A kid shared by an RSA and an EC key: each alg family gets its own. */
static void test_find_same_kid_two_families(void)
{
    char j1[2048], j2[1024], err[256];
    struct jwks k;
    char *doc;

    memset(&k, 0, sizeof k);
    jwk_rsa(j1, sizeof j1, rsa, "same", "");
    jwk_ec(j2, sizeof j2, ec, "P-256", "same", "", 0);
    doc = jwks_doc(j1, j2, NULL);
    CU_ASSERT_EQUAL_FATAL(parse(&k, doc, err, sizeof err), 2);
    free(doc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(jwks_find(&k, "same", JWT_ALG_RS256));
    CU_ASSERT_PTR_NOT_NULL_FATAL(jwks_find(&k, "same", JWT_ALG_ES256));
    CU_ASSERT_EQUAL(jwks_find(&k, "same", JWT_ALG_RS256)->kty, JWKS_RSA);
    CU_ASSERT_EQUAL(jwks_find(&k, "same", JWT_ALG_ES256)->kty, JWKS_EC);
    CU_ASSERT_PTR_NULL(jwks_find(&k, "same", JWT_ALG_HS256));
    jwks_clear(&k);
}

/* ---- jwks_fetch -------------------------------------------------------- */

static void test_fetch_file(void)
{
    static char sentinel;
    char url[256], err[512], *body = NULL;
    size_t len = 0;
    static const char text[] = "{\"keys\":[]}\n";

    write_file("jwks.json", text, (size_t)-1);
    CU_ASSERT_EQUAL(jwks_fetch(url_of("jwks.json", url, sizeof url), &body, &len, err, sizeof err),
                    0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_EQUAL(len, strlen(text));
    CU_ASSERT_STRING_EQUAL(body, text);
    free(body);

    /* A missing file: -1, a message, no body. */
    body = &sentinel;
    err[0] = '\0';
    CU_ASSERT_EQUAL(
        jwks_fetch(url_of("missing.json", url, sizeof url), &body, &len, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(body);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing.json"));
    CU_ASSERT_TRUE(strlen(err) > strlen(url));

    /* Schemes other than http, https and file are refused without I/O. */
    err[0] = '\0';
    CU_ASSERT_EQUAL(jwks_fetch("ftp://127.0.0.1:1/jwks.json", &body, &len, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(body);
    CU_ASSERT_STRING_NOT_EQUAL(err, "");
    CU_ASSERT_EQUAL(jwks_fetch("dict://127.0.0.1:1/x", &body, &len, err, sizeof err), -1);
}

static void test_fetch_size_limit(void)
{
    char url[256], err[512], *body = NULL, *big;
    size_t len = 0;

    big = malloc((size_t)JWKS_MAX_BYTES + 1);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, ' ', (size_t)JWKS_MAX_BYTES + 1);

    /* Exactly JWKS_MAX_BYTES is accepted ... */
    write_file("max.json", big, (size_t)JWKS_MAX_BYTES);
    CU_ASSERT_EQUAL(jwks_fetch(url_of("max.json", url, sizeof url), &body, &len, err, sizeof err),
                    0);
    CU_ASSERT_EQUAL(len, (size_t)JWKS_MAX_BYTES);
    free(body);

    /* ... one more byte is not. */
    write_file("big.json", big, (size_t)JWKS_MAX_BYTES + 1);
    err[0] = '\0';
    CU_ASSERT_EQUAL(jwks_fetch(url_of("big.json", url, sizeof url), &body, &len, err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NULL(body);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than 1 MiB"));
    free(big);
}

/* ---- jwks_load --------------------------------------------------------- */

static void test_load(void)
{
    char jr[2048], je[1024], url[300], err[512], text[700], p[256];
    struct auth_settings s;
    struct jwks k;
    int64_t before, after;
    char *doc;

    memset(&k, 0, sizeof k);
    jwk_rsa(jr, sizeof jr, rsa, "r1", "");
    jwk_ec(je, sizeof je, ec, "P-256", "e1", "", 0);
    doc = jwks_doc(jr, je, NULL);
    write_file("jwks.json", doc, (size_t)-1);
    free(doc);

    /* ARP_AUTH_JWKS_URI */
    memset(&s, 0, sizeof s);
    url_of("jwks.json", s.jwks_uri, sizeof s.jwks_uri);
    before = ts_now_ms();
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), 0);
    after = ts_now_ms();
    CU_ASSERT_EQUAL(k.n, 2);
    /* A load records when it succeeded; the refetch limit is the caller's. */
    CU_ASSERT_TRUE(k.loaded_ms >= before && k.loaded_ms <= after);
    CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, "r1", JWT_ALG_RS256));
    CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, "e1", JWT_ALG_ES256));

    /* Discovery and issuer-derived key sources must be https (or plain
     * http on loopback): a file:// discovery document is refused before
     * anything is read. The discovery path itself is tested end to end
     * over loopback HTTP (tests/e2e_auth). */
    snprintf(text, sizeof text, "{\"issuer\":\"https://idp.example\",\"jwks_uri\":\"%s\"}",
             url_of("jwks.json", url, sizeof url));
    write_file("openid-configuration", text, (size_t)-1);
    jwks_clear(&k);
    memset(&s, 0, sizeof s);
    url_of("openid-configuration", s.discovery_url, sizeof s.discovery_url);
    err[0] = '\0';
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "file:// keys only as ARP_AUTH_JWKS_URI itself"));
    memset(&s, 0, sizeof s);
    snprintf(s.issuer, sizeof s.issuer, "file://%s", dir);
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), -1);
    CU_ASSERT_EQUAL(k.n, 0);
    (void)p;

    /* jwks_uri wins over discovery and the issuer. */
    memset(&s, 0, sizeof s);
    url_of("jwks.json", s.jwks_uri, sizeof s.jwks_uri);
    url_of("missing-discovery", s.discovery_url, sizeof s.discovery_url);
    snprintf(s.issuer, sizeof s.issuer, "file:///nonexistent");
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(k.n, 2);
    jwks_clear(&k);
}

/* Which key sources are trusted; nothing is fetched. */
static void test_source_check(void)
{
    char err[256];

    CU_ASSERT_EQUAL(jwks_source_check("https://id.example/certs", 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(jwks_source_check("HTTPS://id.example/certs", 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(jwks_source_check("file:///etc/jwks.json", 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(jwks_source_check("file:///etc/jwks.json", 0, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "file:// keys only as ARP_AUTH_JWKS_URI itself"));
    /* Plain http: loopback only, for development. */
    CU_ASSERT_EQUAL(jwks_source_check("http://127.0.0.1:8080/certs", 0, err, sizeof err), 1);
    CU_ASSERT_EQUAL(jwks_source_check("http://127.9.8.7/certs", 0, err, sizeof err), 1);
    CU_ASSERT_EQUAL(jwks_source_check("http://localhost:8080/realms/arp-dev", 0, err, sizeof err),
                    1);
    CU_ASSERT_EQUAL(jwks_source_check("http://[::1]:8080/certs", 0, err, sizeof err), 1);
    CU_ASSERT_EQUAL(jwks_source_check("http://id.example/certs", 0, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "plain http keys only from a loopback host"));
    CU_ASSERT_EQUAL(jwks_source_check("http://10.0.0.1/certs", 0, err, sizeof err), -1);
    CU_ASSERT_EQUAL(jwks_source_check("http://127.1/certs", 0, err, sizeof err), -1);
    CU_ASSERT_EQUAL(jwks_source_check("http://2130706433/certs", 0, err, sizeof err), -1);
    CU_ASSERT_EQUAL(jwks_source_check("http://127.0.0.1.evil.example/", 0, err, sizeof err), -1);
    CU_ASSERT_EQUAL(jwks_source_check("http://127.0.0.1@evil.example/", 0, err, sizeof err), -1);
    CU_ASSERT_EQUAL(jwks_source_check("http://localhost.evil.example/", 0, err, sizeof err), -1);
    CU_ASSERT_EQUAL(jwks_source_check("ftp://127.0.0.1/jwks", 1, err, sizeof err), -1);
    CU_ASSERT_EQUAL(jwks_source_check("", 1, err, sizeof err), -1);
}

static void test_load_failures(void)
{
    char jr[2048], url[300], err[512];
    struct auth_settings s;
    struct jwks k;
    char *doc;

    memset(&k, 0, sizeof k);
    jwk_rsa(jr, sizeof jr, rsa, "r1", "");
    doc = jwks_doc(jr, NULL);
    write_file("jwks.json", doc, (size_t)-1);
    free(doc);
    memset(&s, 0, sizeof s);
    url_of("jwks.json", s.jwks_uri, sizeof s.jwks_uri);
    CU_ASSERT_EQUAL_FATAL(jwks_load(&k, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(k.n, 1);

    /* Each failure: -1, a reason, and the keys already loaded stay. */
    url_of("missing.json", s.jwks_uri, sizeof s.jwks_uri);
    k.last_attempt_ms = 0;
    err[0] = '\0';
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), -1);
    CU_ASSERT_STRING_NOT_EQUAL(err, "");
    CU_ASSERT_EQUAL(k.last_attempt_ms, 0); /* rate-limiting refetches is auth.c's job */
    CU_ASSERT_EQUAL(k.n, 1);

    write_file("not-jwks.json", "{\"issuer\":\"x\"}", (size_t)-1);
    url_of("not-jwks.json", s.jwks_uri, sizeof s.jwks_uri);
    err[0] = '\0';
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "not a JWKS document (no \"keys\" array)");
    CU_ASSERT_EQUAL(k.n, 1);

    /* A file:// discovery document is refused before it is read. */
    s.jwks_uri[0] = '\0';
    write_file("no-jwks-uri.json", "{\"issuer\":\"x\",\"jwks_uri\":5}", (size_t)-1);
    url_of("no-jwks-uri.json", s.discovery_url, sizeof s.discovery_url);
    err[0] = '\0';
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "file:// keys only as ARP_AUTH_JWKS_URI itself"));
    CU_ASSERT_EQUAL(k.n, 1);

    url_of("missing-discovery", s.discovery_url, sizeof s.discovery_url);
    err[0] = '\0';
    CU_ASSERT_EQUAL(jwks_load(&k, &s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, url_of("missing-discovery", url, sizeof url)));
    CU_ASSERT_PTR_NOT_NULL(jwks_find(&k, "r1", JWT_ALG_RS256));
    jwks_clear(&k);
}

/* ---- base64url as the JWKS code decodes it (jarvis_base64_decode) ------ */

static long dec(const char *in, unsigned char *out, size_t cap)
{
    return jarvis_base64_decode(in, strlen(in), JARVIS_BASE64_URL, out, cap, NULL);
}

static void test_b64url_decode(void)
{
    unsigned char out[16];

    CU_ASSERT_EQUAL(dec("", out, sizeof out), 0);
    CU_ASSERT_EQUAL(dec("QQ", out, sizeof out), 1);
    CU_ASSERT_EQUAL(out[0], 'A');
    CU_ASSERT_EQUAL(dec("QQ==", out, sizeof out), 1); /* padding optional */
    CU_ASSERT_EQUAL(out[0], 'A');
    CU_ASSERT_EQUAL(dec("QUI", out, sizeof out), 2);
    CU_ASSERT_EQUAL(memcmp(out, "AB", 2), 0);
    CU_ASSERT_EQUAL(dec("QUI=", out, sizeof out), 2);
    CU_ASSERT_EQUAL(dec("QUJD", out, sizeof out), 3);
    CU_ASSERT_EQUAL(memcmp(out, "ABC", 3), 0);
    CU_ASSERT_EQUAL(dec("QUJDRA", out, sizeof out), 4);
    CU_ASSERT_EQUAL(memcmp(out, "ABCD", 4), 0);

    /* The URL-safe alphabet: '-' and '_', not '+' and '/'. */
    CU_ASSERT_EQUAL(dec("-_8", out, sizeof out), 2);
    CU_ASSERT_EQUAL(out[0], 0xfb);
    CU_ASSERT_EQUAL(out[1], 0xff);
    CU_ASSERT_EQUAL(dec("+/8", out, sizeof out), -1);
    CU_ASSERT_EQUAL(dec("QU+D", out, sizeof out), -1);

    /* A length of 4k+1 cannot be base64. */
    CU_ASSERT_EQUAL(dec("Q", out, sizeof out), -1);
    CU_ASSERT_EQUAL(dec("QUJDR", out, sizeof out), -1);
    CU_ASSERT_EQUAL(dec("QUJDR===", out, sizeof out), -1);

    /* Bad characters anywhere, padding in the middle. */
    CU_ASSERT_EQUAL(dec("QU I", out, sizeof out), -1);
    CU_ASSERT_EQUAL(dec("QU=I", out, sizeof out), -1);
    CU_ASSERT_EQUAL(dec("QUJ.", out, sizeof out), -1);
    CU_ASSERT_EQUAL(dec("QUJ\n", out, sizeof out), -1);
    CU_ASSERT_EQUAL(dec("\xc3\xa9QUI", out, sizeof out), -1);
    CU_ASSERT_EQUAL(jarvis_base64_decode("QU\0I", 4, JARVIS_BASE64_URL, out, sizeof out, NULL), -1);

    /* Only n bytes of the input are read. */
    CU_ASSERT_EQUAL(jarvis_base64_decode("QUJD!!!", 4, JARVIS_BASE64_URL, out, sizeof out, NULL),
                    3);

    /* The output capacity is respected exactly. */
    CU_ASSERT_EQUAL(dec("QUJD", out, 3), 3);
    CU_ASSERT_EQUAL(dec("QUJD", out, 2), -1);
    CU_ASSERT_EQUAL(dec("QUJDRA", out, 3), -1);
    CU_ASSERT_EQUAL(dec("QQ", out, 0), -1);
}

static CU_TestInfo tests[] = {
    {"parse RSA and EC keys", test_parse_rsa_and_ec},
    {"parse skips unusable keys", test_parse_skips},
    {"parse kid length limit", test_parse_kid_length},
    {"parse rejects non-JWKS documents", test_parse_not_jwks},
    {"parse keeps at most JWKS_MAX_KEYS", test_parse_key_cap},
    {"find by kid and alg family", test_find},
    {"find: one kid, two families", test_find_same_kid_two_families},
    {"fetch file://", test_fetch_file},
    {"fetch size limit", test_fetch_size_limit},
    {"load via JWKS URI; file:// discovery refused", test_load},
    {"trusted key sources", test_source_check},
    {"load failures keep the keys", test_load_failures},
    {"base64url decode", test_b64url_decode},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"jwks", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
