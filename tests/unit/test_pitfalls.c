/*
 * test_pitfalls.c - the library behaviours docs/pitfalls.md lists, checked
 * against the libraries themselves (libjwt 1.10, json-c 0.16), so that a
 * new version that changes one fails here, next to the note that says
 * which file relies on it. No code of ours is under test.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "testutil.h"

#define RSA_BITS 2048
#define PEM_MAX 4096
#define DECODES 5
#define NBF_2096 4000000000L

static char priv_pem[PEM_MAX], pub_pem[PEM_MAX];
static int priv_len, pub_len;
static int pem_reads; /* calls of PEM_read_bio_PUBKEY since the last reset */

/* Interposes libcrypto's PEM key reader to count how often libjwt parses
 * a key (the executable's definition wins over libcrypto's). */
EVP_PKEY *PEM_read_bio_PUBKEY(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
    typedef EVP_PKEY *(*reader_fn)(BIO *, EVP_PKEY **, pem_password_cb *, void *);
    reader_fn real;
    void *sym = dlsym(RTLD_NEXT, "PEM_read_bio_PUBKEY");

    memcpy(&real, &sym, sizeof real);
    pem_reads++;
    return real(bp, x, cb, u);
}

static int pem_of(EVP_PKEY *k, int private_key, char *out, int *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int rc = -1;

    if (b == NULL)
        return -1;
    if ((private_key ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_bio_PUBKEY(b, k)) == 1 &&
        (n = BIO_get_mem_data(b, &data)) > 0 && n < PEM_MAX) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (int)n;
        rc = 0;
    }
    BIO_free(b);
    return rc;
}

static int suite_init(void)
{
    EVP_PKEY *k = EVP_RSA_gen(RSA_BITS);
    int rc;

    if (k == NULL)
        return -1;
    rc = pem_of(k, 1, priv_pem, &priv_len) == 0 && pem_of(k, 0, pub_pem, &pub_len) == 0 ? 0 : -1;
    EVP_PKEY_free(k);
    return rc;
}

/* A compact token with the given alg and key (NULL: alg none), and with
 * exp (and an nbf in 2096) unless exp is 0; caller frees. */
static char *token(jwt_alg_t alg, const char *key, int key_len, long exp)
{
    jwt_t *j = NULL;
    char *t = NULL;

    if (jwt_new(&j) != 0)
        return NULL;
    jwt_add_grant(j, "sub", "someone");
    jwt_add_grant(j, "iss", "https://elsewhere.example");
    jwt_add_grant(j, "aud", "another-service");
    if (exp != 0) {
        jwt_add_grant_int(j, "exp", exp);
        jwt_add_grant_int(j, "nbf", NBF_2096);
    }
    if (key == NULL || jwt_set_alg(j, alg, (const unsigned char *)key, key_len) == 0)
        t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

/* jwt_decode verifies with the token's own alg: HS256 keyed with the RSA
 * public key's PEM text passes. */
static void test_jwt_alg_confusion(void)
{
    char *t = token(JWT_ALG_HS256, pub_pem, pub_len, 0);
    jwt_t *d = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(jwt_decode(&d, t, (const unsigned char *)pub_pem, pub_len), 0);
    CU_ASSERT_STRING_EQUAL(d ? jwt_get_grant(d, "sub") : "", "someone");
    jwt_free(d);
    free(t);
}

static void test_jwt_none_refused(void)
{
    char *t = token(JWT_ALG_NONE, NULL, 0, 0);
    jwt_t *d = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(jwt_decode(&d, t, (const unsigned char *)pub_pem, pub_len), EINVAL);
    jwt_free(d);
    free(t);
}

/* No claim is checked: expired in 1970, not valid before 2096, foreign iss
 * and aud: still 0. */
static void test_jwt_no_claim_checks(void)
{
    char *t = token(JWT_ALG_RS256, priv_pem, priv_len, 1000);
    jwt_t *d = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(jwt_decode(&d, t, (const unsigned char *)pub_pem, pub_len), 0);
    jwt_free(d);
    free(t);
}

/* The PEM is parsed again on every decode (hence auth.c's token cache). */
static void test_jwt_pem_per_decode(void)
{
    char *t = token(JWT_ALG_RS256, priv_pem, priv_len, 0);
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    pem_reads = 0;
    for (i = 0; i < DECODES; i++) {
        jwt_t *d = NULL;
        CU_ASSERT_EQUAL(jwt_decode(&d, t, (const unsigned char *)pub_pem, pub_len), 0);
        jwt_free(d);
    }
    CU_ASSERT_EQUAL(pem_reads, DECODES);
    free(t);
}

static void test_jwt_alg_names(void)
{
    CU_ASSERT_EQUAL(jwt_str_alg("rs256"), JWT_ALG_RS256); /* case ignored */
    CU_ASSERT_EQUAL(jwt_str_alg("PS256"), JWT_ALG_INVAL); /* no RSASSA-PSS */
}

/* What json_tokener_parse_ex makes of text (NULL when it fails). */
static json_object *parse(const char *text, enum json_tokener_error *err)
{
    struct json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);

    *err = json_tokener_get_error(tok);
    json_tokener_free(tok);
    return o;
}

static void test_json_lenient(void)
{
    static const char *const accepted[] = {"[NaN]", "{'a':1}", "[\"a\tb\"]", "[1.]"};
    enum json_tokener_error err;
    json_object *o;
    size_t i;

    for (i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        o = parse(accepted[i], &err);
        CU_ASSERT_EQUAL(err, json_tokener_success);
        json_object_put(o);
    }
    o = parse("[99999999999999999999999]", &err);
    CU_ASSERT_EQUAL(json_object_get_uint64(json_object_array_get_idx(o, 0)), UINT64_MAX);
    json_object_put(o);
    o = parse("[1e400]", &err);
    CU_ASSERT_TRUE(isinf(json_object_get_double(json_object_array_get_idx(o, 0))));
    json_object_put(o);
}

static void test_json_surrogates(void)
{
    enum json_tokener_error err;
    json_object *o;

    o = parse("[\"\\ud800\"]", &err);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_array_get_idx(o, 0)),
                           "\xef\xbf\xbd"); /* U+FFFD */
    json_object_put(o);
    o = parse("[\"\\uda76\\ude22\"]", &err); /* a valid pair, U+A6A22 */
    CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_array_get_idx(o, 0)), "\xef\xbf\xbd");
    json_object_put(o);
    o = parse("[\"\\ud83d\\ude00\"]", &err);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_array_get_idx(o, 0)),
                           "\xf0\x9f\x98\x80");
    json_object_put(o);
}

static void test_json_depth_and_null(void)
{
    char deep[40], *p = deep;
    struct json_tokener *tok;
    json_object *o, *v = NULL;
    enum json_tokener_error err;
    int i;

    for (i = 0; i < 33; i++)
        *p++ = '[';
    *p = '\0';
    o = parse(deep, &err);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_EQUAL(err, json_tokener_error_depth); /* json_tokener_new(): 32 */
    tok = json_tokener_new_ex(64);
    o = json_tokener_parse_ex(
        tok, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", -1);
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    json_tokener_free(tok);

    o = parse("{\"a\":null}", &err);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "a", &v));
    CU_ASSERT_PTR_NULL(v);
    json_object_put(o);
}

static CU_TestInfo tests[] = {
    {"libjwt: the token's alg decides (HS256 keyed with a public PEM)", test_jwt_alg_confusion},
    {"libjwt: alg none with a key is refused", test_jwt_none_refused},
    {"libjwt: no claim is checked", test_jwt_no_claim_checks},
    {"libjwt: the PEM is parsed on every decode", test_jwt_pem_per_decode},
    {"libjwt: alg names", test_jwt_alg_names},
    {"json-c: lenient text, clamped integers, 1e400", test_json_lenient},
    {"json-c: surrogates", test_json_surrogates},
    {"json-c: depth bound and null members", test_json_depth_and_null},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"pitfalls", suite_init, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
