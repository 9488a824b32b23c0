/*
 * fuzz_jwt.c - fuzz target for fcgi-app/auth/auth.c: the Authorization header
 * to a principal or a 401 (header split, JOSE header, alg and kid rules,
 * key choice, signature, claims in PyJWT's order, the verified-token cache).
 *
 * The keys are fuzz/data/jwks.json, read once through a configured
 * ARP_AUTH_JWKS_URI=file:// (nothing leaves the machine), and refetches are
 * switched off through the pool-sharing hooks (auth_set_share): a gate that
 * never opens. The clock the claims are judged at is fixed (FZ_NOW).
 *
 * Input: byte 0 picks the mode.
 *  - raw: the rest is the Authorization header as the client sent it;
 *  - claims: the rest is the JWT payload, signed here with the committed
 *    test key (fuzz/data/ec256-private.pem, ES256, kid "fuzz-ec"), so the
 *    claim checks are reached with a valid signature;
 *  - header: the rest is "<JOSE header>\n<payload>", both signed as above.
 *
 * Invariants beyond "no crash":
 *  - accepted only when an independent check of the claims agrees (exp,
 *    iat, nbf with the skew; iss; aud; sub a short string without NUL),
 *    and the principal's subject is the token's sub;
 *  - the same header a second time (now through the cache) gets the same
 *    verdict and subject;
 *  - a refusal is a 401 ErrorEnvelope in valid UTF-8 JSON, with one of the
 *    SDK's messages and a WWW-Authenticate "Bearer error=..." challenge.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth_internal.h"
#include "fuzz_util.h"
#include "request.h"
#include "timefmt.h"

/* The time the claims are judged at (2027-01-15): fixed, so a verdict
 * never depends on when the fuzzer runs. */
#define FZ_NOW 1800000000LL
#define FZ_ISSUER "https://issuer.fuzz.invalid/realms/arp"
#define FZ_AUDIENCE "jarvis-fuzz"
#define FZ_SKEW 60
#define FZ_KID "fuzz-ec"
#define FZ_HEADER "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"" FZ_KID "\"}"
/* An ES256 signature: r and s, 32 bytes each. */
#define FZ_SIG_LEN 64

enum { MODE_RAW = 0, MODE_CLAIMS, MODE_HEADER };

static struct auth auth;
static EVP_PKEY *signing_key;

static int gate_closed(void *arg, int64_t now_ms, int64_t min_interval_ms)
{
    (void)arg;
    (void)now_ms;
    (void)min_interval_ms;
    return 0;
}

static int nothing_newer(void *arg, int64_t have_ms, char **doc, size_t *len, int64_t *when_ms)
{
    (void)arg;
    (void)have_ms;
    (void)doc;
    (void)len;
    (void)when_ms;
    return 0;
}

static void setup(void)
{
    static const struct auth_share share = {NULL, gate_closed, NULL, nothing_newer};
    char err[512];
    FILE *f;

    fz_quiet();
    setenv("ARP_AUTH_MODE", "required", 1);
    setenv("ARP_AUTH_ISSUER", FZ_ISSUER, 1);
    setenv("ARP_AUTH_AUDIENCE", FZ_AUDIENCE, 1);
    setenv("ARP_AUTH_ALGORITHMS", "ES256,RS256", 1);
    setenv("ARP_AUTH_CLOCK_SKEW_SECONDS", "60", 1);
    setenv("ARP_AUTH_JWKS_URI", "file://" FUZZ_DATA_DIR "/jwks.json", 1);
    FZ_CHECK(auth_init(&auth, err, sizeof err) == 0);
    FZ_CHECK(auth.keys.n == 2);
    auth_set_share(&auth, &share);
    f = fopen(FUZZ_DATA_DIR "/ec256-private.pem", "r");
    FZ_CHECK(f != NULL);
    signing_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    FZ_CHECK(signing_key != NULL);
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        out[o++] = tab[in[i] >> 2];
        out[o++] = tab[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 8 | in[i + 1];
        out[o++] = tab[v >> 10];
        out[o++] = tab[(v >> 4) & 63];
        out[o++] = tab[(v & 15) << 2];
    }
    out[o] = '\0';
}

/* "Bearer h.p.sig": h and p base64url, sig the ES256 signature of "h.p". */
static char *signed_header(const char *header, size_t hlen, const char *payload, size_t plen)
{
    size_t cap = 16 + 4 * (hlen + plen) / 3 + 8 + 2 * FZ_SIG_LEN;
    char *out = malloc(cap), *signing_input;
    unsigned char der[128], raw[FZ_SIG_LEN];
    const unsigned char *p = der;
    size_t der_len = sizeof der;
    const BIGNUM *r, *s;
    ECDSA_SIG *sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    FZ_CHECK(out != NULL && md != NULL);
    strcpy(out, "Bearer ");
    signing_input = out + strlen(out);
    b64url((const unsigned char *)header, hlen, signing_input);
    strcat(signing_input, ".");
    b64url((const unsigned char *)payload, plen, signing_input + strlen(signing_input));
    FZ_CHECK(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signing_key) == 1);
    FZ_CHECK(EVP_DigestSign(md, der, &der_len, (const unsigned char *)signing_input,
                            strlen(signing_input)) == 1);
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    FZ_CHECK(sig != NULL);
    ECDSA_SIG_get0(sig, &r, &s);
    FZ_CHECK(BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32);
    ECDSA_SIG_free(sig);
    strcat(signing_input, ".");
    b64url(raw, sizeof raw, signing_input + strlen(signing_input));
    return out;
}

/* A NumericDate claim as PyJWT reads it: -1 absent, 0 a finite number, 1 not. */
static int number_claim(json_object *claims, const char *name, double *v)
{
    json_object *c = NULL;

    if (!json_object_object_get_ex(claims, name, &c))
        return -1;
    if (!json_object_is_type(c, json_type_int) && !json_object_is_type(c, json_type_double))
        return 1;
    *v = json_object_get_double(c);
    return isfinite(*v) ? 0 : 1;
}

/* PyJWT's rule, restated: the audience, or a list of strings only that
 * holds it. */
static int audience_ok(json_object *aud)
{
    size_t i, n, strings = 0, matches = 0;

    if (!json_object_is_type(aud, json_type_array))
        return json_object_is_type(aud, json_type_string) &&
               strcmp(json_object_get_string(aud), FZ_AUDIENCE) == 0;
    n = json_object_array_length(aud);
    for (i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(aud, i));
        strings += json_object_is_type(json_object_array_get_idx(aud, i), json_type_string);
        matches += s != NULL && strcmp(s, FZ_AUDIENCE) == 0;
    }
    return strings == n && matches > 0;
}

/* The oracle: what an accepted token's claims must satisfy. */
static void check_accepted(const struct auth_principal *p)
{
    json_object *c = p->claims, *v = NULL;
    double exp, t;

    FZ_CHECK(json_object_is_type(c, json_type_object));
    FZ_CHECK(number_claim(c, "exp", &exp) == 0 && exp > (double)(FZ_NOW - FZ_SKEW));
    FZ_CHECK(number_claim(c, "iat", &t) < 0 ||
             (number_claim(c, "iat", &t) == 0 && t <= (double)(FZ_NOW + FZ_SKEW)));
    FZ_CHECK(number_claim(c, "nbf", &t) < 0 ||
             (number_claim(c, "nbf", &t) == 0 && t <= (double)(FZ_NOW + FZ_SKEW)));
    FZ_CHECK(json_object_object_get_ex(c, "iss", &v) && json_object_is_type(v, json_type_string) &&
             strcmp(json_object_get_string(v), FZ_ISSUER) == 0);
    FZ_CHECK(json_object_object_get_ex(c, "aud", &v) && audience_ok(v));
    if (json_object_object_get_ex(c, "sub", &v)) {
        FZ_CHECK(json_object_is_type(v, json_type_string));
        FZ_CHECK((size_t)json_object_get_string_len(v) < AUTH_MAX_NAME);
        FZ_CHECK(strcmp(p->subject, json_object_get_string(v)) == 0);
    } else {
        FZ_CHECK(p->subject[0] == '\0');
    }
}

static void check_refused(const struct resp *r)
{
    static const char *const messages[] = {"Missing Authorization header",
                                           "Invalid Authorization header",
                                           "Invalid token",
                                           "Token expired",
                                           "Invalid token audience",
                                           "Invalid token issuer",
                                           "Unable to fetch JWKS"};
    json_object *err = NULL, *msg = NULL;
    size_t i;
    int known = 0;

    FZ_CHECK(r->status == 401);
    fz_check_resp(r);
    FZ_CHECK(strcmp(r->error_code, "unauthorized") == 0);
    FZ_CHECK(r->n_headers == 1 && strcmp(r->headers[0].name, "WWW-Authenticate") == 0);
    FZ_CHECK(strncmp(r->headers[0].value, "Bearer error=\"", 14) == 0);
    json_object_object_get_ex(r->body, "error", &err);
    json_object_object_get_ex(err, "message", &msg);
    for (i = 0; i < sizeof messages / sizeof messages[0]; i++)
        known |= strcmp(json_object_get_string(msg), messages[i]) == 0;
    FZ_CHECK(known);
}

/* One check of header; 0 or -1, with the subject in subject. */
static int check_once(const char *header, char subject[AUTH_MAX_NAME])
{
    struct auth_principal p;
    struct resp r;
    int rc;

    /* The keys were read at setup: keep them fresh for this fixed clock. */
    auth.keys.loaded_ms = ts_now_ms();
    resp_init(&r);
    rc = auth_check(&auth, "/v1/atomic-node-runs:execute", header, FZ_NOW, &p, &r);
    if (rc == 0)
        check_accepted(&p);
    else
        check_refused(&r);
    memcpy(subject, p.subject, AUTH_MAX_NAME);
    auth_principal_cleanup(&p);
    resp_cleanup(&r);
    return rc;
}

/* Empties the verified-token cache: each input starts from the same
 * state, and frees all it allocated (libFuzzer runs a leak check after
 * any input that does not, which would make every input slow). */
static void forget_tokens(void)
{
    size_t i;

    for (i = 0; i < AUTH_CACHE_SLOTS; i++) {
        json_object_put(auth.cache[i].claims);
        auth.cache[i].claims = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char first[AUTH_MAX_NAME], second[AUTH_MAX_NAME];
    char *text, *header, *nl;
    int rc;

    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1 || size > REQ_MAX_AUTHORIZATION / 2)
        return 0;
    text = fz_strndup(data + 1, size - 1);
    switch (data[0] % 3) {
    case MODE_CLAIMS: header = signed_header(FZ_HEADER, strlen(FZ_HEADER), text, size - 1); break;
    case MODE_HEADER:
        nl = memchr(text, '\n', size - 1);
        if (nl == NULL) {
            free(text);
            return 0;
        }
        header =
            signed_header(text, (size_t)(nl - text), nl + 1, size - 1 - (size_t)(nl + 1 - text));
        break;
    default: header = strdup(text); break;
    }
    FZ_CHECK(header != NULL);
    rc = check_once(header, first);
    FZ_CHECK(check_once(header, second) == rc);
    FZ_CHECK(strcmp(first, second) == 0);
    forget_tokens();
    free(header);
    free(text);
    return 0;
}
