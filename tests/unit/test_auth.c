/*
 * test_auth.c - bearer JWT verification (auth_verify_token) and the request
 * check (auth_check) against tokens minted at test time: by libjwt 1.10 and
 * by hand with OpenSSL 3 (so that tokens libjwt did not make verify too),
 * with keys generated here and published as a JWKS built from their public
 * parts. Covers PyJWT's claim checks with clock skew, signature and payload
 * tampering, alg none, the HS256-with-the-RSA-PEM forgery, key-family and
 * kid lookups with the rate-limited refetch, malformed tokens and the SDK's
 * 401 answers.
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
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth_internal.h"
#include "jarvis/util.h"
#include "log.h"
#include "testutil.h"
#include "timefmt.h"

#define NOW ((int64_t)1767225600) /* 2026-01-01T00:00:00Z; claims are judged at this time */
#define ISS "https://issuer.example"
#define RATE_LIMITED "no key for this kid and alg (refetch rate-limited)"
#define NZ(s) ((s) != NULL ? (s) : "(null)") /* for string asserts */

/* For set-up helpers that also run in suite_init, outside any test. */
#define REQUIRE(x)                                                                                 \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: set-up failed: %s\n", __FILE__, __LINE__, #x);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char dir[64];
static EVP_PKEY *rsa, *ec, *rsa_other, *ec_new;
static char *rsa_priv, *ec_priv, *rsa_other_priv, *ec_new_priv; /* PKCS#8 PEM for libjwt */
static char *base_jwks;                    /* {"keys":[rsa "rsa-1", ec "ec-1"]} */
static struct auth_settings base_settings; /* every test starts from these */
static struct auth A;

/* ---- key and encoding helpers ----------------------------------------- */

/* base64url without padding of in[0..n) into out (size cap). */
static void b64url(const unsigned char *in, size_t n, char *out, size_t cap)
{
    unsigned char *tmp = malloc(4 * ((n + 2) / 3) + 1);
    int len, i, o = 0;

    REQUIRE(tmp != NULL && (4 * n + 2) / 3 + 1 <= cap); /* unpadded length + NUL */
    len = EVP_EncodeBlock(tmp, in, (int)n);
    for (i = 0; i < len && tmp[i] != '='; i++)
        out[o++] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : (char)tmp[i];
    out[o] = '\0';
    free(tmp);
}

static void b64url_str(const char *s, char *out, size_t cap)
{
    b64url((const unsigned char *)s, strlen(s), out, cap);
}

/* Unpadded base64 length of n bytes. */
static size_t b64len(size_t n)
{
    return (4 * n + 2) / 3;
}

static void bn_param_b64(const EVP_PKEY *k, const char *param, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;

    REQUIRE(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
    n = BN_num_bytes(bn);
    REQUIRE(n > 0 && (size_t)n <= sizeof buf);
    BN_bn2bin(bn, buf);
    BN_free(bn);
    b64url(buf, (size_t)n, out, cap);
}

static void jwk_rsa(char *out, size_t cap, const EVP_PKEY *k, const char *kid)
{
    char n[1024], e[32];

    bn_param_b64(k, OSSL_PKEY_PARAM_RSA_N, n, sizeof n);
    bn_param_b64(k, OSSL_PKEY_PARAM_RSA_E, e, sizeof e);
    REQUIRE((size_t)snprintf(out, cap,
                             "{\"kid\":\"%s\",\"kty\":\"RSA\",\"use\":\"sig\",\"n\":\"%s\","
                             "\"e\":\"%s\"}",
                             kid, n, e) < cap);
}

static void jwk_ec(char *out, size_t cap, const EVP_PKEY *k, const char *kid)
{
    unsigned char pt[65];
    char x[64], y[64];
    size_t len = 0;

    REQUIRE(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len) == 1);
    REQUIRE(len == 65 && pt[0] == 0x04);
    b64url(pt + 1, 32, x, sizeof x);
    b64url(pt + 33, 32, y, sizeof y);
    REQUIRE((size_t)snprintf(out, cap,
                             "{\"kid\":\"%s\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                             "\"y\":\"%s\"}",
                             kid, x, y) < cap);
}

static char *private_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem = NULL;
    long n;

    if (bio != NULL && PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) == 1 &&
        (n = BIO_get_mem_data(bio, &data)) > 0 && (pem = malloc((size_t)n + 1)) != NULL) {
        memcpy(pem, data, (size_t)n);
        pem[n] = '\0';
    }
    BIO_free(bio);
    return pem;
}

static int write_text(const char *name, const char *text)
{
    char p[256];
    FILE *f;
    int ok;

    snprintf(p, sizeof p, "%s/%s", dir, name);
    if ((f = fopen(p, "w")) == NULL)
        return -1;
    ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- claims ------------------------------------------------------------ */

/* iss, aud "svc", sub "user-1", iat NOW, exp NOW+300, scope "read". */
static json_object *claims(void)
{
    json_object *c = json_object_new_object();

    json_object_object_add(c, "iss", json_object_new_string(ISS));
    json_object_object_add(c, "aud", json_object_new_string("svc"));
    json_object_object_add(c, "sub", json_object_new_string("user-1"));
    json_object_object_add(c, "iat", json_object_new_int64(NOW));
    json_object_object_add(c, "exp", json_object_new_int64(NOW + 300));
    json_object_object_add(c, "scope", json_object_new_string("read"));
    return c;
}

/* The base claims with `name` set to the JSON value text `value` (NULL:
 * removed). */
static json_object *with(const char *name, const char *value)
{
    json_object *c = claims();

    if (value == NULL) {
        json_object_object_del(c, name);
    } else {
        json_object *v = json_tokener_parse(value);
        CU_ASSERT_FATAL(v != NULL || strcmp(value, "null") == 0);
        json_object_object_add(c, name, v);
    }
    return c;
}

/* The base claims with a NumericDate `name` at NOW + off. */
static json_object *at(const char *name, int64_t off)
{
    json_object *c = claims();

    json_object_object_add(c, name, json_object_new_int64(NOW + off));
    return c;
}

/* ---- minting ----------------------------------------------------------- */

/* A token made by libjwt with c's claims (c is consumed); kid NULL: none. */
static char *lj(jwt_alg_t alg, const char *kid, const char *key, size_t keylen, json_object *c)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;

    CU_ASSERT_FATAL(jwt_new(&jwt) == 0);
    if ((kid == NULL || jwt_add_header(jwt, "kid", kid) == 0) &&
        jwt_add_grants_json(jwt, json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN)) == 0 &&
        jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)keylen) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    json_object_put(c);
    CU_ASSERT_PTR_NOT_NULL(tok);
    return tok;
}

static char *lj_rs(const char *kid, json_object *c)
{
    return lj(JWT_ALG_RS256, kid, rsa_priv, strlen(rsa_priv), c);
}

static char *lj_es(const char *kid, json_object *c)
{
    return lj(JWT_ALG_ES256, kid, ec_priv, strlen(ec_priv), c);
}

/* The JWS signature of in[0..n) with SHA-256: PKCS#1 v1.5 for RSA, raw
 * r||s (JOSE, RFC 7518 3.4) for EC, converted from OpenSSL's DER. */
static size_t sign(EVP_PKEY *key, const char *in, size_t n, unsigned char *out, size_t cap)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[1024];
    size_t len = sizeof der;

    CU_ASSERT_FATAL(md != NULL);
    CU_ASSERT_FATAL(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
    CU_ASSERT_FATAL(EVP_DigestSign(md, der, &len, (const unsigned char *)in, n) == 1);
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_is_a(key, "EC")) {
        const unsigned char *q = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &q, (long)len);
        const BIGNUM *r = NULL, *s = NULL;

        CU_ASSERT_FATAL(sig != NULL && cap >= 64);
        ECDSA_SIG_get0(sig, &r, &s);
        CU_ASSERT_FATAL(BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32);
        ECDSA_SIG_free(sig);
        return 64;
    }
    CU_ASSERT_FATAL(len <= cap);
    memcpy(out, der, len);
    return len;
}

/* b64url(header).b64url(payload).b64url(signature) made here, not by libjwt;
 * key NULL: an empty signature. */
static char *hand_text(const char *header, const char *payload, EVP_PKEY *key)
{
    size_t hl = b64len(strlen(header)), pl = b64len(strlen(payload)), sl;
    unsigned char sig[1024];
    char *tok = malloc(hl + pl + 2 + b64len(sizeof sig) + 2);

    CU_ASSERT_FATAL(tok != NULL);
    b64url_str(header, tok, hl + 1);
    tok[hl] = '.';
    b64url_str(payload, tok + hl + 1, pl + 1);
    tok[hl + 1 + pl] = '.';
    tok[hl + pl + 2] = '\0';
    if (key != NULL) {
        sl = sign(key, tok, hl + 1 + pl, sig, sizeof sig);
        b64url(sig, sl, tok + hl + pl + 2, b64len(sizeof sig) + 1);
    }
    return tok;
}

static char *hand(const char *header, json_object *c, EVP_PKEY *key)
{
    char *tok = hand_text(header, json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN), key);

    json_object_put(c);
    return tok;
}

/* ---- verification helpers --------------------------------------------- */

/*
 * Verifies tok (freed here) at `now` and asserts the outcome at the
 * caller's line: want NULL = accepted, else rejected with exactly that why.
 */
static void expect_at(unsigned line, char *tok, const char *want, int64_t now)
{
    struct auth_principal p;
    const char *why = NULL, *detail = NULL;
    char msg[512];
    int rc, ok;

    if (tok == NULL) {
        CU_assertImplementation(CU_FALSE, line, "token minted", __FILE__, "", CU_FALSE);
        return;
    }
    rc = auth_verify_token(&A, tok, now, &p, &why, &detail);
    if (want == NULL)
        ok = rc == 0 && why == NULL && p.claims != NULL;
    else
        ok =
            rc == -1 && why != NULL && strcmp(why, want) == 0 && p.claims == NULL && detail != NULL;
    snprintf(msg, sizeof msg, "want %s, got rc %d why '%s' detail '%s'", want ? want : "valid", rc,
             why ? why : "(null)", detail ? detail : "(null)");
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, __FILE__, "", CU_FALSE);
    auth_principal_cleanup(&p);
    free(tok);
}

#define EXPECT(tok, want) expect_at(__LINE__, (tok), (want), NOW)
#define EXPECT_AT(tok, want, now) expect_at(__LINE__, (tok), (want), (now))

/* Every test starts from the base settings and keys; a lookup miss is
 * rate-limited (no fetch) unless the test says otherwise. */
static void reset(void)
{
    char err[256];

    A.s = base_settings;
    CU_ASSERT_FATAL(jwks_parse(&A.keys, base_jwks, strlen(base_jwks), err, sizeof err) == 2);
    A.keys.last_attempt_ms = ts_now_ms();
    memset(A.unknown, 0, sizeof A.unknown);
    memset(&A.share, 0, sizeof A.share);
    A.jwks_uri[0] = '\0';
}

static const struct jwks_key *key_of(const char *kid, jwt_alg_t alg)
{
    const struct jwks_key *k = jwks_find(&A.keys, kid, alg);

    CU_ASSERT_FATAL(k != NULL);
    return k;
}

extern char **environ;

/* Unsets every ARP_AUTH_* variable; 0, or -1 if one would not go. */
static int clear_auth_env(void)
{
    for (;;) {
        char name[1024];
        char **e;
        size_t n = 0;

        for (e = environ; e != NULL && *e != NULL; e++)
            if (strncmp(*e, "ARP_AUTH_", 9) == 0) {
                const char *eq = strchr(*e, '=');
                n = eq ? (size_t)(eq - *e) : strlen(*e);
                break;
            }
        if (n == 0)
            return 0;
        if (n >= sizeof name)
            return -1;
        memcpy(name, *e, n);
        name[n] = '\0';
        if (unsetenv(name) != 0)
            return -1;
    }
}

/* ---- suite set-up ------------------------------------------------------ */

static int suite_init(void)
{
    char jr[2048], je[512], jn[512], doc[4096];

    strcpy(dir, "/tmp/jarvis-test-auth-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    log_set_level(JARVIS_LOG_ERROR);
    if (jwks_global_init() != 0)
        return -1;
    rsa = EVP_RSA_gen(2048);
    rsa_other = EVP_RSA_gen(2048);
    ec = EVP_EC_gen("P-256");
    ec_new = EVP_EC_gen("P-256");
    if (rsa == NULL || rsa_other == NULL || ec == NULL || ec_new == NULL)
        return -1;
    rsa_priv = private_pem(rsa);
    ec_priv = private_pem(ec);
    rsa_other_priv = private_pem(rsa_other);
    ec_new_priv = private_pem(ec_new);
    if (rsa_priv == NULL || ec_priv == NULL || rsa_other_priv == NULL || ec_new_priv == NULL)
        return -1;

    jwk_rsa(jr, sizeof jr, rsa, "rsa-1");
    jwk_ec(je, sizeof je, ec, "ec-1");
    jwk_ec(jn, sizeof jn, ec_new, "ec-new");
    snprintf(doc, sizeof doc, "{\"keys\":[%s,%s]}", jr, je);
    if ((base_jwks = strdup(doc)) == NULL || write_text("jwks.json", doc) != 0)
        return -1;
    /* The rotated set: the same two keys and a new one. */
    snprintf(doc, sizeof doc, "{\"keys\":[%s,%s,%s]}", jr, je, jn);
    if (write_text("jwks2.json", doc) != 0)
        return -1;

    memset(&base_settings, 0, sizeof base_settings);
    base_settings.mode = AUTH_REQUIRED;
    strcpy(base_settings.issuer, ISS);
    strcpy(base_settings.audience, "svc");
    snprintf(base_settings.jwks_uri, sizeof base_settings.jwks_uri, "file://%s/jwks.json", dir);
    base_settings.algs[0] = JWT_ALG_RS256;
    base_settings.algs[1] = JWT_ALG_ES256;
    base_settings.n_algs = 2;
    base_settings.clock_skew_secs = 60;
    strcpy(base_settings.dev_subject, "dev");
    strcpy(base_settings.anonymous_subject, "anonymous");
    memset(&A, 0, sizeof A);
    return 0;
}

static int suite_cleanup(void)
{
    auth_cleanup(&A);
    tu_remove_tree(dir);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec_new);
    free(rsa_priv);
    free(ec_priv);
    free(rsa_other_priv);
    free(ec_new_priv);
    free(base_jwks);
    curl_global_cleanup();
    return clear_auth_env();
}

/* ---- valid tokens ------------------------------------------------------ */

static void test_valid_tokens(void)
{
    struct auth_principal p;
    const char *why, *detail;
    json_object *v;
    jwt_t *jwt = NULL;
    char *tok, *dot;
    unsigned char raw[128];

    reset();
    /* RS256 by libjwt, grant by grant. */
    CU_ASSERT_FATAL(jwt_new(&jwt) == 0);
    CU_ASSERT(jwt_add_header(jwt, "kid", "rsa-1") == 0);
    CU_ASSERT(jwt_add_grant(jwt, "iss", ISS) == 0);
    CU_ASSERT(jwt_add_grant(jwt, "aud", "svc") == 0);
    CU_ASSERT(jwt_add_grant(jwt, "sub", "alice") == 0);
    CU_ASSERT(jwt_add_grant(jwt, "scope", "read write") == 0);
    CU_ASSERT(jwt_add_grant_int(jwt, "iat", (long)NOW) == 0);
    CU_ASSERT(jwt_add_grant_int(jwt, "exp", (long)NOW + 300) == 0);
    CU_ASSERT(jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)rsa_priv,
                          (int)strlen(rsa_priv)) == 0);
    tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), 0);
    CU_ASSERT_PTR_NULL(why);
    CU_ASSERT_PTR_NULL(detail);
    CU_ASSERT_STRING_EQUAL(p.subject, "alice");
    CU_ASSERT_TRUE(json_object_object_get_ex(p.claims, "scope", &v) &&
                   strcmp(json_object_get_string(v), "read write") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(p.claims, "exp", &v) &&
                   json_object_get_int64(v) == NOW + 300);
    CU_ASSERT_TRUE(json_object_object_get_ex(p.claims, "aud", &v) &&
                   strcmp(json_object_get_string(v), "svc") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(p.claims, "iss", &v));
    auth_principal_cleanup(&p);
    CU_ASSERT_PTR_NULL(p.claims);
    free(tok);

    /* ES256 by libjwt: a JOSE signature is raw r||s, 64 bytes. */
    tok = lj_es("ec-1", claims());
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    dot = strrchr(tok, '.');
    CU_ASSERT_EQUAL(
        jarvis_base64_decode(dot + 1, strlen(dot + 1), JARVIS_BASE64_URL, raw, sizeof raw, NULL),
        64);
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), 0);
    CU_ASSERT_STRING_EQUAL(p.subject, "user-1");
    TU_ASSERT_JSON(p.claims, "{\"iss\":\"" ISS "\",\"aud\":\"svc\",\"sub\":\"user-1\","
                             "\"iat\":1767225600,\"exp\":1767225900,\"scope\":\"read\"}");
    auth_principal_cleanup(&p);
    free(tok);

    /* Tokens libjwt did not make: RS256 and ES256 signed here with OpenSSL. */
    tok = hand("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}", claims(), rsa);
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), 0);
    CU_ASSERT_STRING_EQUAL(p.subject, "user-1");
    auth_principal_cleanup(&p);
    free(tok);
    tok = hand("{\"kid\":\"ec-1\",\"alg\":\"ES256\"}", with("sub", "\"bob\""), ec);
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), 0);
    CU_ASSERT_STRING_EQUAL(p.subject, "bob");
    auth_principal_cleanup(&p);
    free(tok);

    /* A fractional exp, extra claims of any JSON type. */
    EXPECT(lj_rs("rsa-1", with("exp", "1767225900.5")), NULL);
    EXPECT(lj_rs("rsa-1", with("roles", "{\"a\":[1,2,{\"b\":null}]}")), NULL);
    /* A sub too long to keep whole, or with a NUL in it, is refused, never
     * cut (a cut subject could name another one); the longest kept is. */
    {
        char sub[AUTH_MAX_NAME + 8];
        memset(sub, 'a', sizeof sub);
        sub[0] = '"';
        sub[AUTH_MAX_NAME + 1] = '"';
        sub[AUTH_MAX_NAME + 2] = '\0';
        EXPECT(lj_rs("rsa-1", with("sub", sub)), "Invalid token");
        sub[AUTH_MAX_NAME] = '"';
        sub[AUTH_MAX_NAME + 1] = '\0';
        EXPECT(lj_rs("rsa-1", with("sub", sub)), NULL);
        EXPECT(hand("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", with("sub", "\"ad\\u0000min\""), rsa),
               "Invalid token");
    }
    /* No sub: verified, with an empty subject. */
    tok = lj_rs("rsa-1", with("sub", NULL));
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), 0);
    CU_ASSERT_STRING_EQUAL(p.subject, "");
    auth_principal_cleanup(&p);
    free(tok);
}

/* ---- time claims (skew 60) --------------------------------------------- */

static void test_time_claims(void)
{
    reset();
    EXPECT(lj_rs("rsa-1", at("exp", -120)), "Token expired");
    EXPECT(lj_rs("rsa-1", at("exp", -61)), "Token expired");
    EXPECT(lj_rs("rsa-1", at("exp", -60)), "Token expired"); /* PyJWT: exp <= now - leeway */
    EXPECT(lj_rs("rsa-1", at("exp", -59)), NULL);
    EXPECT(lj_rs("rsa-1", at("exp", -30)), NULL);
    EXPECT(lj_es("ec-1", at("exp", -120)), "Token expired");

    EXPECT(lj_rs("rsa-1", at("nbf", 120)), "Invalid token");
    EXPECT(lj_rs("rsa-1", at("nbf", 61)), "Invalid token");
    EXPECT(lj_rs("rsa-1", at("nbf", 60)), NULL); /* PyJWT: nbf > now + leeway */
    EXPECT(lj_rs("rsa-1", at("nbf", 30)), NULL);
    EXPECT(lj_rs("rsa-1", at("nbf", -3600)), NULL);

    EXPECT(lj_rs("rsa-1", at("iat", 120)), "Invalid token");
    EXPECT(lj_rs("rsa-1", at("iat", 61)), "Invalid token");
    EXPECT(lj_rs("rsa-1", at("iat", 30)), NULL);
    EXPECT(lj_rs("rsa-1", with("iat", NULL)), NULL);
    EXPECT(lj_rs("rsa-1", with("iat", "\"yesterday\"")), "Invalid token");
    EXPECT(lj_rs("rsa-1", with("nbf", "\"now\"")), "Invalid token");

    /* The same token judged at different times. */
    EXPECT_AT(lj_rs("rsa-1", claims()), NULL, NOW + 300 + 59);
    EXPECT_AT(lj_rs("rsa-1", claims()), "Token expired", NOW + 300 + 60);
    EXPECT_AT(lj_rs("rsa-1", claims()), "Invalid token", NOW - 61); /* iat ahead */

    /* No skew. */
    A.s.clock_skew_secs = 0;
    EXPECT(lj_rs("rsa-1", at("exp", 0)), "Token expired");
    EXPECT(lj_rs("rsa-1", at("exp", 1)), NULL);
    EXPECT(lj_rs("rsa-1", at("nbf", 1)), "Invalid token");
    EXPECT(lj_rs("rsa-1", at("nbf", 0)), NULL);
    EXPECT(lj_rs("rsa-1", at("iat", 1)), "Invalid token");

    /* PyJWT's order: iat and nbf are judged before exp. */
    A.s.clock_skew_secs = 60;
    {
        json_object *c = at("exp", -3600);
        json_object_object_add(c, "nbf", json_object_new_int64(NOW + 3600));
        EXPECT(lj_rs("rsa-1", c), "Invalid token");
    }
}

static void test_exp_shape(void)
{
    reset();
    EXPECT(lj_rs("rsa-1", with("exp", NULL)), "Invalid token");
    EXPECT(lj_rs("rsa-1", with("exp", "\"tomorrow\"")), "Invalid token");
    EXPECT(lj_rs("rsa-1", with("exp", "\"1767225900\"")), "Invalid token"); /* RFC 7519: a number */
    EXPECT(lj_rs("rsa-1", with("exp", "null")), "Invalid token");
    EXPECT(lj_rs("rsa-1", with("exp", "[1767225900]")), "Invalid token");
    EXPECT(lj_rs("rsa-1", with("exp", "{}")), "Invalid token");
}

/* ---- iss and aud ------------------------------------------------------- */

static void test_issuer_audience(void)
{
    reset();
    EXPECT(lj_rs("rsa-1", with("iss", "\"https://evil.example\"")), "Invalid token issuer");
    EXPECT(lj_rs("rsa-1", with("iss", "\"https://issuer.example/\"")), "Invalid token issuer");
    EXPECT(lj_rs("rsa-1", with("iss", "5")), "Invalid token issuer");
    EXPECT(lj_rs("rsa-1", with("iss", NULL)), "Invalid token");

    EXPECT(lj_rs("rsa-1", with("aud", "\"other\"")), "Invalid token audience");
    EXPECT(lj_rs("rsa-1", with("aud", "\"SVC\"")), "Invalid token audience");
    EXPECT(lj_rs("rsa-1", with("aud", "[\"other\",\"svc\"]")), NULL);
    EXPECT(lj_es("ec-1", with("aud", "[\"svc\"]")), NULL);
    EXPECT(lj_rs("rsa-1", with("aud", "[\"other\",\"svc2\"]")), "Invalid token audience");
    /* Every entry counts, wherever the match is; a non-string entry
     * anywhere refuses the claim (PyJWT: "Invalid claim format"). */
    EXPECT(lj_rs("rsa-1", with("aud", "[\"svc\",\"other\"]")), NULL);
    EXPECT(lj_rs("rsa-1", with("aud", "[\"a\",\"svc\",\"b\"]")), NULL);
    EXPECT(lj_rs("rsa-1", with("aud", "[\"svc\",5]")), "Invalid token audience");
    EXPECT(lj_rs("rsa-1", with("aud", "[\"svc\",null]")), "Invalid token audience");
    EXPECT(lj_rs("rsa-1", with("aud", "[[\"svc\"]]")), "Invalid token audience");
    EXPECT(lj_rs("rsa-1", with("aud", "[]")), "Invalid token audience");
    EXPECT(lj_rs("rsa-1", with("aud", "7")), "Invalid token audience");
    EXPECT(lj_rs("rsa-1", with("aud", NULL)), "Invalid token");

    /* Issuer checked before audience. */
    {
        json_object *c = with("iss", "\"https://evil.example\"");
        json_object_object_add(c, "aud", json_object_new_string("other"));
        EXPECT(lj_rs("rsa-1", c), "Invalid token issuer");
    }

    /* No audience configured: aud is not checked (verify_aud off). */
    A.s.audience[0] = '\0';
    EXPECT(lj_rs("rsa-1", with("aud", "\"other\"")), NULL);
    EXPECT(lj_rs("rsa-1", with("aud", NULL)), NULL);
    /* No issuer configured: iss is not checked. */
    A.s.issuer[0] = '\0';
    EXPECT(lj_rs("rsa-1", with("iss", NULL)), NULL);
    EXPECT(lj_rs("rsa-1", with("iss", "\"https://anyone.example\"")), NULL);
}

/* ---- signatures -------------------------------------------------------- */

/* Changes the character at tok[i] to another base64url character. */
static char *flip(char *tok, size_t i)
{
    tok[i] = tok[i] == 'A' ? 'B' : 'A';
    return tok;
}

static void test_signature(void)
{
    char *tok, *good, *bad, *dot1, *dot2, payload[1024];
    size_t sig_at, sig_len;

    reset();
    /* A character flipped in the middle of the signature (never in the last
     * one, whose low bits base64 decoders may ignore). */
    tok = lj_rs("rsa-1", claims());
    sig_at = (size_t)(strrchr(tok, '.') - tok) + 1;
    sig_len = strlen(tok) - sig_at;
    EXPECT(flip(tok, sig_at + sig_len / 2), "Invalid token");
    tok = lj_es("ec-1", claims());
    sig_at = (size_t)(strrchr(tok, '.') - tok) + 1;
    EXPECT(flip(tok, sig_at + 10), "Invalid token");
    tok = hand("{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims(), ec);
    sig_at = (size_t)(strrchr(tok, '.') - tok) + 1;
    EXPECT(flip(tok, sig_at), "Invalid token");

    /* The payload swapped for another (sub: admin) under the old signature. */
    good = lj_rs("rsa-1", claims());
    dot1 = strchr(good, '.');
    dot2 = strrchr(good, '.');
    {
        json_object *c = with("sub", "\"admin\"");
        b64url_str(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN), payload,
                   sizeof payload);
        json_object_put(c);
    }
    bad = malloc(strlen(good) + strlen(payload) + 1);
    CU_ASSERT_FATAL(bad != NULL);
    sprintf(bad, "%.*s.%s%s", (int)(dot1 - good), good, payload, dot2);
    EXPECT(bad, "Invalid token");
    /* ... and one payload character changed. */
    EXPECT(flip(good, (size_t)(dot1 - good) + 5), "Invalid token");

    /* Signed by another RSA key under our kid. */
    EXPECT(lj(JWT_ALG_RS256, "rsa-1", rsa_other_priv, strlen(rsa_other_priv), claims()),
           "Invalid token");
    EXPECT(hand("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", claims(), rsa_other), "Invalid token");
    EXPECT(hand("{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims(), ec_new), "Invalid token");
    /* No signature at all. */
    EXPECT(hand("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", claims(), NULL), "Invalid token");
    EXPECT(hand("{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims(), NULL), "Invalid token");
    /* The signature segment of another valid token. */
    good = lj_rs("rsa-1", claims());
    tok = lj_rs("rsa-1", with("sub", "\"admin\""));
    dot2 = strrchr(good, '.');
    strcpy(strrchr(tok, '.'), dot2);
    free(good);
    EXPECT(tok, "Invalid token");
}

/* ---- alg none, HS256 forgery, key families ---------------------------- */

static void test_alg_none(void)
{
    reset();
    EXPECT(hand("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", claims(), NULL), "Invalid token");
    EXPECT(hand("{\"alg\":\"none\"}", claims(), NULL), "Invalid token");
    EXPECT(hand("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", claims(), rsa), "Invalid token");
    EXPECT(hand("{\"alg\":\"None\",\"kid\":\"rsa-1\"}", claims(), NULL), "Invalid token");
    EXPECT(hand("{\"alg\":\"\",\"kid\":\"rsa-1\"}", claims(), NULL), "Invalid token");
    /* Even if "none" were in the allowed list, only asymmetric algorithms
     * are ever verified: refused before any key lookup. */
    A.s.algs[A.s.n_algs++] = JWT_ALG_NONE;
    EXPECT(hand("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", claims(), NULL), "Invalid token");
}

static void test_hs256_key_confusion(void)
{
    const struct jwks_key *k;
    char *forged;
    jwt_t *jwt = NULL;

    reset();
    /* The forgery: HS256 keyed with the RSA public key's PEM text, i.e. the
     * very bytes auth.c hands to jwt_decode for kid rsa-1. */
    k = key_of("rsa-1", JWT_ALG_RS256);
    forged = lj(JWT_ALG_HS256, "rsa-1", k->pem, (size_t)k->pem_len, claims());
    CU_ASSERT_PTR_NOT_NULL_FATAL(forged);
    /* libjwt 1.10 alone accepts it (docs/pitfalls.md): the test is real. */
    CU_ASSERT_EQUAL(jwt_decode(&jwt, forged, (const unsigned char *)k->pem, k->pem_len), 0);
    jwt_free(jwt);

    EXPECT(strdup(forged), "Invalid token"); /* HS256 is not an allowed alg */
    EXPECT(lj(JWT_ALG_HS256, NULL, k->pem, (size_t)k->pem_len, claims()), "Invalid token");

    /* With HS256 allowed (authcfg refuses that; set here directly) it is
     * still refused before any key lookup or refetch: only asymmetric
     * algorithms are ever verified. */
    A.s.algs[A.s.n_algs++] = JWT_ALG_HS256;
    EXPECT(strdup(forged), "Invalid token");
    A.keys.last_attempt_ms = 0;
    EXPECT(strdup(forged), "Invalid token");
    CU_ASSERT_EQUAL(A.keys.last_attempt_ms, 0); /* no refetch was tried */
    free(forged);
}

static void test_kid_names_other_family(void)
{
    reset();
    /* An ES256 token (valid EC signature) whose kid names the RSA key, and
     * the reverse: no key fits (kid, alg), reported as auth.c's key_for
     * does for every lookup miss. */
    EXPECT(hand("{\"alg\":\"ES256\",\"kid\":\"rsa-1\"}", claims(), ec), "Unable to fetch JWKS");
    EXPECT(lj(JWT_ALG_ES256, "rsa-1", ec_priv, strlen(ec_priv), claims()), "Unable to fetch JWKS");
    EXPECT(lj_rs("ec-1", claims()), "Unable to fetch JWKS");
    /* An allowed-list miss is decided before any lookup. */
    EXPECT(hand("{\"alg\":\"RS512\",\"kid\":\"rsa-1\"}", claims(), rsa), "Invalid token");
    EXPECT(hand("{\"alg\":\"ES384\",\"kid\":\"ec-1\"}", claims(), ec), "Invalid token");
}

/* RFC 7515 4.1.1: "alg" is case-sensitive; PyJWT rejects "rs256" when
 * algorithms=["RS256"]. */
static void test_alg_case_sensitive(void)
{
    reset();
    EXPECT(hand("{\"alg\":\"rs256\",\"kid\":\"rsa-1\"}", claims(), rsa), "Invalid token");
    EXPECT(hand("{\"alg\":\"Es256\",\"kid\":\"ec-1\"}", claims(), ec), "Invalid token");
}

/* ---- kid lookup and refetch -------------------------------------------- */

static void test_unknown_kid(void)
{
    struct auth_principal p;
    const char *why, *detail;
    char *tok;

    reset();
    /* Rate-limited: a fetch would fail differently, so none happens. */
    snprintf(A.s.jwks_uri, sizeof A.s.jwks_uri, "file://%s/does-not-exist.json", dir);
    tok = lj_rs("nope", claims());
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(NZ(why), "Unable to fetch JWKS");
    CU_ASSERT_STRING_EQUAL(NZ(detail), RATE_LIMITED);
    CU_ASSERT_PTR_NULL(p.claims);
    free(tok);
    EXPECT(lj_rs(NULL, claims()), "Unable to fetch JWKS"); /* no kid: no key without one */

    /* Past the limit: a refetch, which fails; the old keys stay. */
    A.keys.last_attempt_ms = 0;
    tok = lj_rs("nope", claims());
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(NZ(why), "Unable to fetch JWKS");
    CU_ASSERT_STRING_EQUAL(NZ(detail), "JWKS fetch failed");
    CU_ASSERT_TRUE(A.keys.last_attempt_ms > 0);
    free(tok);
    EXPECT(lj_rs("rsa-1", claims()), NULL);
    /* ... and the failed attempt starts a new rate-limit window. */
    tok = lj_rs("nope", claims());
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(NZ(detail), RATE_LIMITED);
    free(tok);
}

static void test_refetch_new_key(void)
{
    struct auth_principal p;
    const char *why, *detail;
    char *tok;

    reset();
    snprintf(A.s.jwks_uri, sizeof A.s.jwks_uri, "file://%s/jwks2.json", dir);
    tok = lj(JWT_ALG_ES256, "ec-new", ec_new_priv, strlen(ec_new_priv), claims());
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);

    /* Within the limit the new kid is unknown ... */
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(NZ(why), "Unable to fetch JWKS");
    CU_ASSERT_STRING_EQUAL(NZ(detail), RATE_LIMITED);
    CU_ASSERT_EQUAL(A.keys.n, 2);

    /* ... once the limit has passed, one refetch finds it. */
    A.keys.last_attempt_ms = ts_now_ms() - JWKS_REFETCH_MIN_MS - 1;
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), 0);
    CU_ASSERT_STRING_EQUAL(p.subject, "user-1");
    CU_ASSERT_EQUAL(A.keys.n, 3);
    CU_ASSERT_TRUE(ts_now_ms() - A.keys.last_attempt_ms < JWKS_REFETCH_MIN_MS);
    auth_principal_cleanup(&p);
    free(tok);

    /* The old keys still verify; the next unknown kid is rate-limited. */
    EXPECT(lj_rs("rsa-1", claims()), NULL);
    EXPECT(lj_es("ec-1", claims()), NULL);
    tok = lj_rs("other", claims());
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(NZ(detail), RATE_LIMITED);
    free(tok);

    /* last_attempt_ms 0 (never fetched) also allows the refetch. */
    reset();
    snprintf(A.s.jwks_uri, sizeof A.s.jwks_uri, "file://%s/jwks2.json", dir);
    A.keys.last_attempt_ms = 0;
    EXPECT(hand("{\"alg\":\"ES256\",\"kid\":\"ec-new\"}", claims(), ec_new), NULL);
}

/* A kid that a fresh JWKS did not have is remembered: junk tokens with it
 * neither wait for nor cause another fetch. */
static void test_unknown_kid_remembered(void)
{
    struct auth_principal p;
    const char *why, *detail;
    char *tok = lj_rs("ghost", claims());

    reset();
    A.keys.last_attempt_ms = 0;
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(NZ(why), "Unable to fetch JWKS");
    CU_ASSERT_STRING_EQUAL(NZ(detail), "no key for this kid and alg");
    /* A refetch would be allowed again, yet none is asked for. */
    A.keys.last_attempt_ms = 0;
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(NZ(detail), "kid unknown to a fresh JWKS (remembered)");
    CU_ASSERT_EQUAL(A.keys.last_attempt_ms, 0);
    free(tok);
}

/* The pool's share, played by this test: a document another worker
 * fetched, and the pool-wide gate. */
static struct {
    const char *doc; /* NULL: the pool has none */
    int64_t when;
    int gate_open, gate_calls, stores;
} pool;

static int fake_gate(void *arg, int64_t now_ms, int64_t min_interval_ms)
{
    (void)arg, (void)now_ms, (void)min_interval_ms;
    pool.gate_calls++;
    return pool.gate_open;
}

static int fake_store(void *arg, const char *doc, size_t len, int64_t when_ms)
{
    (void)arg, (void)doc, (void)len, (void)when_ms;
    pool.stores++;
    return 0;
}

static int fake_newer(void *arg, int64_t have_ms, char **doc, size_t *len, int64_t *when_ms)
{
    (void)arg;
    if (pool.doc == NULL || pool.when <= have_ms)
        return 0;
    *doc = strdup(pool.doc);
    *len = strlen(pool.doc);
    *when_ms = pool.when;
    return *doc != NULL ? 1 : -1;
}

static void test_pool_share(void)
{
    const struct auth_share share = {NULL, fake_gate, fake_store, fake_newer};
    char path[300], *rotated;
    size_t n = 0;

    /* Another worker fetched the rotated set: adopted, no fetch here (the
     * configured source does not even exist). */
    snprintf(path, sizeof path, "%s/jwks2.json", dir);
    rotated = tu_read_file(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rotated);
    reset();
    memset(&pool, 0, sizeof pool);
    pool.doc = rotated;
    pool.when = ts_now_ms() + 1;
    A.share = share;
    snprintf(A.s.jwks_uri, sizeof A.s.jwks_uri, "file://%s/missing.json", dir);
    A.keys.last_attempt_ms = 0;
    EXPECT(hand("{\"alg\":\"ES256\",\"kid\":\"ec-new\"}", claims(), ec_new), NULL);
    CU_ASSERT_EQUAL(A.keys.loaded_ms, pool.when);
    CU_ASSERT_EQUAL(pool.gate_calls, 0);

    /* Nothing newer in the pool and the pool-wide limit closed: no fetch. */
    reset();
    memset(&pool, 0, sizeof pool);
    A.share = share;
    snprintf(A.s.jwks_uri, sizeof A.s.jwks_uri, "file://%s/jwks2.json", dir);
    A.keys.last_attempt_ms = 0;
    EXPECT(hand("{\"alg\":\"ES256\",\"kid\":\"ec-new\"}", claims(), ec_new),
           "Unable to fetch JWKS");
    CU_ASSERT_EQUAL(pool.gate_calls, 1);
    CU_ASSERT_EQUAL(pool.stores, 0);
    CU_ASSERT_EQUAL(A.keys.n, 2);

    /* The gate open: this worker fetches, and shares what it fetched. */
    pool.gate_open = 1;
    A.keys.last_attempt_ms = 0;
    EXPECT(hand("{\"alg\":\"ES256\",\"kid\":\"ec-new\"}", claims(), ec_new), NULL);
    CU_ASSERT_EQUAL(pool.stores, 1);
    CU_ASSERT_EQUAL(A.keys.n, 3);
    memset(&A.share, 0, sizeof A.share);
    free(rotated);
}

/* Keys no refresh renewed for JWKS_MAX_STALE_MS verify nothing, cached
 * tokens included. */
static void test_stale_keys_fail_closed(void)
{
    reset();
    EXPECT(lj_rs("rsa-1", claims()), NULL); /* cached now */
    A.keys.loaded_ms = ts_now_ms() - JWKS_MAX_STALE_MS - 1;
    snprintf(A.s.jwks_uri, sizeof A.s.jwks_uri, "file://%s/missing.json", dir);
    EXPECT(lj_rs("rsa-1", claims()), "Unable to fetch JWKS");
    reset();
}

/* ---- malformed tokens -------------------------------------------------- */

/* "<b64url(header)>.<b64url(claims)>.<sig>" with a hand-made header and a
 * signature that does not matter (parsing fails first). */
static char *with_header(const char *header)
{
    return hand(header, claims(), NULL);
}

static char *padded_header(size_t b64_len)
{
    /* {"alg":"RS256","kid":"rsa-1","p":"xxx..."} whose base64url is
     * exactly b64_len characters (b64_len % 4 == 0 or 2 or 3). */
    static const char pre[] = "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"p\":\"", post[] = "\"}";
    size_t raw = b64_len * 3 / 4, fixed = strlen(pre) + strlen(post);
    char *h = malloc(raw + 1);

    CU_ASSERT_FATAL(h != NULL && raw > fixed && b64len(raw) == b64_len);
    memcpy(h, pre, strlen(pre));
    memset(h + strlen(pre), 'x', raw - fixed);
    memcpy(h + raw - strlen(post), post, strlen(post) + 1);
    return h;
}

static void test_malformed(void)
{
    static const char *const junk[] = {
        "",      "abc", "a.b",     "a.b.c.d",      "..",        "...",
        ".e30.", "e30", "e30.e30", "e30.e30.e30.", "!!!.e30.x", "eyJhbGciOiJSUzI1NiJ9"};
    /* after a good header {"alg":"RS256","kid":"rsa-1"}: */
    static const char *const bad_rest[] = {"..",        ".e30.",  ".e30.!!!!",  ".!!!.AAAA", ".e30",
                                           ".e30.AAAA", "..AAAA", ".e30.AAAA.", ".e30.AAAAA"};
    char h[64], *hdr;
    size_t i;

    reset();
    for (i = 0; i < sizeof junk / sizeof junk[0]; i++)
        EXPECT(strdup(junk[i]), "Invalid token");
    b64url_str("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", h, sizeof h);
    for (i = 0; i < sizeof bad_rest / sizeof bad_rest[0]; i++) {
        char *t = malloc(strlen(h) + strlen(bad_rest[i]) + 1);
        CU_ASSERT_FATAL(t != NULL);
        sprintf(t, "%s%s", h, bad_rest[i]);
        EXPECT(t, "Invalid token");
    }

    /* Headers: not base64url, not JSON, not an object, no alg, alg or kid
     * of the wrong type, kid too long. (No kid is fine: it names the JWK
     * without one, and there is none here.) */
    EXPECT(with_header("{\"alg\":\"RS256\"}"), "Unable to fetch JWKS");
    {
        char *t = with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}");
        t[0] = '*';
        EXPECT(t, "Invalid token");
    }
    EXPECT(with_header("not json"), "Invalid token");
    EXPECT(with_header("[1,2]"), "Invalid token");
    EXPECT(with_header("\"RS256\""), "Invalid token");
    EXPECT(with_header("null"), "Invalid token");
    EXPECT(with_header("{\"typ\":\"JWT\",\"kid\":\"rsa-1\"}"), "Invalid token");
    EXPECT(with_header("{\"alg\":256,\"kid\":\"rsa-1\"}"), "Invalid token");
    EXPECT(with_header("{\"alg\":[\"RS256\"],\"kid\":\"rsa-1\"}"), "Invalid token");
    EXPECT(with_header("{\"alg\":\"RS256\",\"kid\":5}"), "Invalid token");
    EXPECT(with_header("{\"alg\":\"RS256\",\"kid\":null}"), "Invalid token");
    EXPECT(with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-1\""), "Invalid token");
    EXPECT(with_header("{\"alg\":\"XX999\",\"kid\":\"rsa-1\"}"), "Invalid token");
    {
        char big[JWKS_MAX_KID + 64], kid[JWKS_MAX_KID + 2];
        memset(kid, 'k', JWKS_MAX_KID + 1);
        kid[JWKS_MAX_KID + 1] = '\0';
        snprintf(big, sizeof big, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
        EXPECT(hand(big, claims(), rsa), "Invalid token");
        kid[JWKS_MAX_KID] = '\0'; /* the longest kid: parsed, just unknown */
        snprintf(big, sizeof big, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
        EXPECT(hand(big, claims(), rsa), "Unable to fetch JWKS");
    }
    /* A header deeper than the parser's limit. */
    EXPECT(with_header("{\"alg\":\"RS256\",\"x\":[[[[[[[[[[1]]]]]]]]]]}"), "Invalid token");
    /* A header segment of length 4k+1 is not base64. */
    {
        char *t = malloc(strlen(h) + 16);
        CU_ASSERT_FATAL(t != NULL);
        sprintf(t, "%sAAAAA.e30.AAAA", h);
        EXPECT(t, "Invalid token");
    }

    /* The header size limit, with correctly signed tokens. */
    hdr = padded_header(AUTH_MAX_HEADER_B64);
    EXPECT(hand(hdr, claims(), rsa), NULL);
    free(hdr);
    hdr = padded_header(AUTH_MAX_HEADER_B64 + 2);
    EXPECT(hand(hdr, claims(), rsa), "Invalid token");
    free(hdr);
    hdr = padded_header(6000);
    EXPECT(hand(hdr, claims(), rsa), "Invalid token");
    free(hdr);
}

/* A correctly signed RS256 token of exactly `len` characters (exact), or
 * longer than len. The header gets 0-3 filler characters and the claims a
 * "pad" so that every length can be reached. */
static char *token_of_length(size_t len, int exact)
{
    char header[64], *pad, *tok;
    size_t base, fixed, n, k;
    json_object *c = claims();

    base =
        strlen(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN)) + strlen(",\"pad\":\"\"");
    json_object_put(c);
    for (k = 0; k < 4; k++) {
        snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":\"%.*s\"}",
                 (int)k, "xxx");
        fixed = b64len(strlen(header)) + 2 + b64len(256);
        for (n = 0; fixed + b64len(base + n) < len; n++)
            ;
        if (!exact || fixed + b64len(base + n) == len)
            break;
    }
    CU_ASSERT_FATAL(k < 4);
    pad = malloc(n + 1);
    CU_ASSERT_FATAL(pad != NULL);
    memset(pad, 'p', n);
    pad[n] = '\0';
    c = claims();
    json_object_object_add(c, "pad", json_object_new_string(pad));
    free(pad);
    if (!exact)
        json_object_object_add(c, "more", json_object_new_string("!"));
    tok = hand(header, c, rsa);
    CU_ASSERT_FATAL(exact ? strlen(tok) == len : strlen(tok) > len);
    return tok;
}

static void test_token_size(void)
{
    reset();
    EXPECT(token_of_length(AUTH_MAX_TOKEN, 1), NULL);
    EXPECT(token_of_length(AUTH_MAX_TOKEN, 0), "Invalid token");
    EXPECT(token_of_length(3 * AUTH_MAX_TOKEN, 0), "Invalid token");
}

/* ---- auth_check -------------------------------------------------------- */

struct checked {
    int rc;
    struct auth_principal p;
    struct resp r;
};

/* A path that is never exempt. */
#define EXECUTE_PATH "/v1/atomic-node-runs:execute"

static void check(const char *header, struct checked *c)
{
    resp_init(&c->r);
    c->rc = auth_check(&A, EXECUTE_PATH, header, NOW, &c->p, &c->r);
}

static void checked_cleanup(struct checked *c)
{
    auth_principal_cleanup(&c->p);
    resp_cleanup(&c->r);
}

/* Asserts a 401 with the SDK's body and challenge (at the caller's line). */
static void expect_401_at(unsigned line, const char *header, const char *error, const char *message)
{
    char body[256], challenge[256], msg[600];
    struct checked c;
    json_object *want;
    int ok;

    check(header, &c);
    snprintf(body, sizeof body, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"%s\"}}",
             message);
    snprintf(challenge, sizeof challenge, "Bearer error=\"%s\", error_description=\"%s\"", error,
             message);
    want = json_tokener_parse(body);
    ok = c.rc == -1 && c.r.status == 401 && c.p.claims == NULL && c.r.n_headers == 1 &&
         strcmp(c.r.headers[0].name, "WWW-Authenticate") == 0 &&
         strcmp(c.r.headers[0].value, challenge) == 0 && json_object_equal(c.r.body, want) &&
         c.r.error_code != NULL && strcmp(c.r.error_code, "unauthorized") == 0;
    snprintf(msg, sizeof msg, "401 '%s': got rc %d status %d challenge '%s' body %s", message, c.rc,
             c.r.status, c.r.n_headers ? c.r.headers[0].value : "",
             c.r.body ? json_object_to_json_string(c.r.body) : "NULL");
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, __FILE__, "", CU_FALSE);
    json_object_put(want);
    checked_cleanup(&c);
}

#define EXPECT_401(header, error, message) expect_401_at(__LINE__, (header), (error), (message))

static void expect_ok_at(unsigned line, const char *header, const char *subject)
{
    char msg[300];
    struct checked c;
    int ok;

    check(header, &c);
    ok = c.rc == 0 && strcmp(c.p.subject, subject) == 0 && c.p.claims != NULL && c.r.body == NULL &&
         c.r.n_headers == 0;
    snprintf(msg, sizeof msg, "OK as '%s': got rc %d subject '%s' status %d", subject, c.rc,
             c.p.subject, c.r.status);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, __FILE__, "", CU_FALSE);
    checked_cleanup(&c);
}

#define EXPECT_OK(header, subject) expect_ok_at(__LINE__, (header), (subject))

/* pre + tok + post, malloc'd. */
static char *header_with(const char *pre, const char *tok, const char *post)
{
    size_t n = strlen(pre) + strlen(tok) + strlen(post) + 1;
    char *h = malloc(n);

    CU_ASSERT_FATAL(h != NULL);
    strcpy(h, pre);
    strcat(h, tok);
    strcat(h, post);
    return h;
}

static void test_check_required(void)
{
    char *valid, *expired, *h, *big;
    struct checked c;

    reset();
    valid = lj_rs("rsa-1", claims());
    expired = lj_rs("rsa-1", at("exp", -3600));

    EXPECT_401("", "invalid_request", "Missing Authorization header");
    EXPECT_401("Basic abc", "invalid_request", "Invalid Authorization header");
    EXPECT_401("Bearer", "invalid_request", "Invalid Authorization header");
    EXPECT_401("Bearer ", "invalid_request", "Invalid Authorization header");
    EXPECT_401("   ", "invalid_request", "Invalid Authorization header");
    EXPECT_401("Bearer a b", "invalid_request", "Invalid Authorization header");
    EXPECT_401("Bearerabc", "invalid_request", "Invalid Authorization header");
    EXPECT_401("Token abc", "invalid_request", "Invalid Authorization header");
    h = header_with("Basic ", valid, "");
    EXPECT_401(h, "invalid_request", "Invalid Authorization header");
    free(h);
    h = header_with("Bearer ", valid, " extra");
    EXPECT_401(h, "invalid_request", "Invalid Authorization header");
    free(h);

    /* The scheme in any case, white space around and between. */
    h = header_with("Bearer ", valid, "");
    EXPECT_OK(h, "user-1");
    free(h);
    h = header_with("bearer ", valid, "");
    EXPECT_OK(h, "user-1");
    free(h);
    h = header_with("BEARER\t", valid, "");
    EXPECT_OK(h, "user-1");
    free(h);
    h = header_with("  Bearer   ", valid, "  ");
    EXPECT_OK(h, "user-1");
    free(h);

    /* A token that does not verify: invalid_token with the reason. */
    EXPECT_401("Bearer abc", "invalid_token", "Invalid token");
    EXPECT_401("Bearer a.b.c", "invalid_token", "Invalid token");
    h = header_with("Bearer ", expired, "");
    EXPECT_401(h, "invalid_token", "Token expired");
    free(h);
    h = header_with("Bearer ", valid, "");
    h[strlen(h) - 20] ^= 1; /* 'A' <-> '@' etc.: no longer the signature */
    EXPECT_401(h, "invalid_token", "Invalid token");
    free(h);
    {
        char *t = lj_rs("rsa-1", with("aud", "\"other\""));
        h = header_with("Bearer ", t, "");
        EXPECT_401(h, "invalid_token", "Invalid token audience");
        free(h);
        free(t);
        t = lj_rs("unknown-kid", claims());
        h = header_with("Bearer ", t, "");
        EXPECT_401(h, "invalid_token", "Unable to fetch JWKS");
        free(h);
        free(t);
    }
    /* The operator's reason is recorded (not sent). */
    check("Bearer abc", &c);
    CU_ASSERT_STRING_EQUAL(c.r.reason, "malformed token");
    checked_cleanup(&c);

    /* A token over AUTH_MAX_TOKEN is refused whatever it holds. */
    big = token_of_length(AUTH_MAX_TOKEN, 0);
    h = header_with("Bearer ", big, "");
    check(h, &c);
    CU_ASSERT_EQUAL(c.rc, -1);
    CU_ASSERT_EQUAL(c.r.status, 401);
    checked_cleanup(&c);
    free(h);
    free(big);
    big = token_of_length(AUTH_MAX_TOKEN, 1);
    h = header_with("Bearer ", big, "");
    EXPECT_OK(h, "user-1");
    free(h);
    free(big);

    free(valid);
    free(expired);
}

static void test_check_optional_disabled(void)
{
    char *valid, *h;
    struct checked c;

    reset();
    valid = lj_rs("rsa-1", claims());

    A.s.mode = AUTH_OPTIONAL;
    check("", &c);
    CU_ASSERT_EQUAL(c.rc, 0);
    CU_ASSERT_STRING_EQUAL(c.p.subject, "anonymous");
    TU_ASSERT_JSON(c.p.claims, "{\"sub\":\"anonymous\"}");
    checked_cleanup(&c);
    strcpy(A.s.anonymous_subject, "guest");
    EXPECT_OK("", "guest");
    /* A header present is checked as in required mode. */
    EXPECT_401("Bearer abc", "invalid_token", "Invalid token");
    EXPECT_401("Basic abc", "invalid_request", "Invalid Authorization header");
    h = header_with("Bearer ", valid, "");
    EXPECT_OK(h, "user-1");

    A.s.mode = AUTH_DISABLED;
    check("", &c);
    CU_ASSERT_EQUAL(c.rc, 0);
    CU_ASSERT_STRING_EQUAL(c.p.subject, "dev");
    TU_ASSERT_JSON(c.p.claims, "{\"sub\":\"dev\"}");
    checked_cleanup(&c);
    /* Disabled ignores whatever header comes. */
    EXPECT_OK("Bearer abc", "dev");
    EXPECT_OK(h, "dev");
    strcpy(A.s.dev_subject, "alice");
    EXPECT_OK("Basic abc", "alice");
    free(h);
    free(valid);
}

/* Exempt paths (exact match) skip the check in every mode: no token is
 * read, no principal made, no answer set. */
static void test_check_exempt(void)
{
    static const enum auth_mode modes[] = {AUTH_REQUIRED, AUTH_OPTIONAL, AUTH_DISABLED};
    struct auth_principal p;
    struct resp r;
    size_t i;

    reset();
    strcpy(A.s.exempt[0], "/v1/health");
    A.s.n_exempt = 1;
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        A.s.mode = modes[i];
        resp_init(&r);
        CU_ASSERT_EQUAL(auth_check(&A, "/v1/health", "Bearer junk", NOW, &p, &r), AUTH_EXEMPT);
        CU_ASSERT_STRING_EQUAL(p.subject, "");
        CU_ASSERT_PTR_NULL(p.claims);
        CU_ASSERT_EQUAL(r.status, 500); /* as resp_init left it: untouched */
        CU_ASSERT_PTR_NULL(r.body);
        auth_principal_cleanup(&p);
        resp_cleanup(&r);
    }
    /* Not exact: checked (and refused without a token). */
    A.s.mode = AUTH_REQUIRED;
    resp_init(&r);
    CU_ASSERT_EQUAL(auth_check(&A, "/v1/health/", "", NOW, &p, &r), -1);
    CU_ASSERT_EQUAL(r.status, 401);
    auth_principal_cleanup(&p);
    resp_cleanup(&r);
    A.s.n_exempt = 0;
}

/* ---- auth_new: the heap form, released on failure ---------------------- */

static void test_new_free(void)
{
    char err[512] = "";
    struct auth *a;

    CU_ASSERT_FATAL(clear_auth_env() == 0);
    setenv("ARP_AUTH_PROFILE", "dev-insecure", 1);
    a = auth_new(err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    auth_free(a);
    setenv("ARP_AUTH_PROFILE", "bogus", 1);
    CU_ASSERT_PTR_NULL(auth_new(err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_PROFILE: 'bogus'");
    auth_free(NULL);
    CU_ASSERT_FATAL(clear_auth_env() == 0);
}

/* ---- auth_init: settings from the environment, keys loaded once ------- */

static void test_init(void)
{
    char err[512], p[256], doc[512];
    struct auth a;

    /* Disabled: no keys, nothing fetched. */
    CU_ASSERT_FATAL(clear_auth_env() == 0);
    setenv("ARP_AUTH_PROFILE", "dev-insecure", 1);
    CU_ASSERT_EQUAL(auth_init(&a, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.s.mode, AUTH_DISABLED);
    CU_ASSERT_EQUAL(a.keys.n, 0);
    auth_cleanup(&a);

    /* Settings that forbid starting. */
    CU_ASSERT_FATAL(clear_auth_env() == 0);
    setenv("ARP_AUTH_PROFILE", "bogus", 1);
    CU_ASSERT_EQUAL(auth_init(&a, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_PROFILE: 'bogus'");

    /* ARP_AUTH_JWKS_URI: keys loaded at start. */
    CU_ASSERT_FATAL(clear_auth_env() == 0);
    snprintf(p, sizeof p, "file://%s/jwks.json", dir);
    setenv("ARP_AUTH_MODE", "required", 1);
    setenv("ARP_AUTH_JWKS_URI", p, 1);
    setenv("ARP_AUTH_ALGORITHMS", "RS256,ES256", 1);
    CU_ASSERT_EQUAL_FATAL(auth_init(&a, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.keys.n, 2);
    auth_cleanup(&a);

    /* ARP_AUTH_ISSUER on file://: a key source that is not trusted stops
     * the worker at start (discovery must be https, or http on loopback). */
    CU_ASSERT_FATAL(clear_auth_env() == 0);
    snprintf(p, sizeof p, "file://%s", dir);
    setenv("ARP_AUTH_PROFILE", "enterprise", 1);
    setenv("ARP_AUTH_ISSUER", p, 1);
    setenv("ARP_AUTH_AUDIENCE", "svc", 1);
    err[0] = '\0';
    CU_ASSERT_EQUAL(auth_init(&a, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "file:// keys only as ARP_AUTH_JWKS_URI itself"));
    auth_cleanup(&a);
    /* ... and so does a plain http one off loopback (nothing is fetched). */
    CU_ASSERT_FATAL(clear_auth_env() == 0);
    setenv("ARP_AUTH_MODE", "required", 1);
    setenv("ARP_AUTH_JWKS_URI", "http://id.example/certs", 1);
    err[0] = '\0';
    CU_ASSERT_EQUAL(auth_init(&a, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "plain http keys only from a loopback host"));
    auth_cleanup(&a);
    (void)doc;

    /* No keys reachable: starts anyway (401 until they can be fetched). */
    CU_ASSERT_FATAL(clear_auth_env() == 0);
    setenv("ARP_AUTH_MODE", "required", 1);
    setenv("ARP_AUTH_JWKS_URI", "file:///nonexistent/jwks.json", 1);
    CU_ASSERT_EQUAL(auth_init(&a, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.keys.n, 0);
    /* The start-up load does not count against the refetch limit: the first
     * request retries at once. */
    CU_ASSERT_EQUAL(a.keys.last_attempt_ms, 0);
    auth_cleanup(&a);
    CU_ASSERT_FATAL(clear_auth_env() == 0);
}

/* auth_settings_load (--check-config): auth_init's verdicts on settings and
 * key sources, with nothing fetched (a missing key file is fine). */
static void test_settings_load(void)
{
    struct auth_settings s;
    char err[512];

    CU_ASSERT_FATAL(clear_auth_env() == 0);
    setenv("ARP_AUTH_PROFILE", "dev-insecure", 1);
    CU_ASSERT_EQUAL(auth_settings_load(&s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.mode, AUTH_DISABLED);
    setenv("ARP_AUTH_PROFILE", "bogus", 1);
    CU_ASSERT_EQUAL(auth_settings_load(&s, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "Invalid ARP_AUTH_PROFILE: 'bogus'");
    CU_ASSERT_FATAL(clear_auth_env() == 0);
    setenv("ARP_AUTH_MODE", "required", 1);
    setenv("ARP_AUTH_JWKS_URI", "http://id.example/certs", 1);
    err[0] = '\0';
    CU_ASSERT_EQUAL(auth_settings_load(&s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "plain http keys only from a loopback host"));
    setenv("ARP_AUTH_JWKS_URI", "file:///nonexistent/jwks.json", 1);
    CU_ASSERT_EQUAL(auth_settings_load(&s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.mode, AUTH_REQUIRED);
    CU_ASSERT_FATAL(clear_auth_env() == 0);
}

/* A token verified once is not verified again with the same keys; its
 * claims still are, at each use's time; new keys forget it. */
static void test_verified_token_cache(void)
{
    char *tok;
    const char *why, *detail;
    struct auth_principal p;
    size_t i;

    reset();
    tok = lj_rs("rsa-1", claims());
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), 0);
    auth_principal_cleanup(&p);
    /* Break every key: only a cache hit can still verify the token. */
    for (i = 0; i < A.keys.n; i++)
        A.keys.keys[i].pem[30] ^= 1;
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW + 10, &p, &why, &detail), 0);
    CU_ASSERT_STRING_EQUAL(p.subject, "user-1");
    auth_principal_cleanup(&p);
    /* ... but its exp is judged anew: 300 s + 60 s skew later it has expired. */
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW + 361, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(why, "Token expired");
    /* A reload of the keys (a new generation) forgets what the old ones verified. */
    A.keys.generation++;
    CU_ASSERT_EQUAL(auth_verify_token(&A, tok, NOW, &p, &why, &detail), -1);
    CU_ASSERT_STRING_EQUAL(why, "Invalid token");
    free(tok);
    reset();
}

static CU_TestInfo tests[] = {
    {"verified-token cache", test_verified_token_cache},
    {"valid RS256 and ES256 (libjwt and hand-made)", test_valid_tokens},
    {"exp, nbf, iat with clock skew", test_time_claims},
    {"exp missing or not a number", test_exp_shape},
    {"iss and aud", test_issuer_audience},
    {"signature and payload tampering", test_signature},
    {"alg none", test_alg_none},
    {"HS256 keyed with the RSA public PEM", test_hs256_key_confusion},
    {"kid naming a key of another family", test_kid_names_other_family},
    {"alg is case-sensitive", test_alg_case_sensitive},
    {"unknown kid, rate-limited refetch", test_unknown_kid},
    {"refetch finds a rotated key", test_refetch_new_key},
    {"a kid unknown to a fresh JWKS is remembered", test_unknown_kid_remembered},
    {"keys shared with the pool; pool-wide refetch limit", test_pool_share},
    {"stale keys fail closed", test_stale_keys_fail_closed},
    {"malformed tokens", test_malformed},
    {"token size limit", test_token_size},
    {"auth_check, required mode", test_check_required},
    {"auth_check, optional and disabled", test_check_optional_disabled},
    {"auth_check, exempt paths", test_check_exempt},
    {"auth_new and auth_free", test_new_free},
    {"auth_init from ARP_AUTH_*", test_init},
    {"auth_settings_load: checked, nothing fetched", test_settings_load},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"auth", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
