/*
 * test_core_nodes.c - jarvis.core.sleep, .uuid4, .time.now and .hash.sha256,
 * each run through dsp_execute as the service runs it (handler on the
 * calling thread, deadline watch), on every success and error input; plus the descriptors
 * and the isoformat helper behind time.now. Expected digests come from
 * Python's hashlib, expected timestamps from datetime.isoformat().
 *
 * dsp_execute validates inputs against the node's input_schema before the
 * handler runs, so inputs of the wrong type end invalid_inputs there. The
 * handlers check them again (defence in depth); to reach those checks each
 * node is also registered here under "unchecked.<id>" without an input
 * schema.
 */
#define _GNU_SOURCE /* timegm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../plugins/core/nodes.h"
#include "../../plugins/core/time_now.h"
#include "dispatch.h"
#include "runner.h"
#include "testutil.h"

extern const jarvis_pack jarvis_pack_core;

#define NODES 4

static struct dsp_registry reg;

/* The nodes under test, and copies of them with no input schema. */
static const jarvis_node *const checked[NODES] = {&core_node_sleep, &core_node_uuid4,
                                                  &core_node_time_now, &core_node_hash_sha256};
static jarvis_node unchecked[NODES];
static char unchecked_ids[NODES][64];
static const jarvis_node *unchecked_list[NODES + 1];
static const jarvis_pack unchecked_pack = {"unchecked", unchecked_list};

static int suite_init(void)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, &unchecked_pack, NULL};
    char err[256];
    size_t i;

    for (i = 0; i < NODES; i++) {
        snprintf(unchecked_ids[i], sizeof unchecked_ids[i], "unchecked.%s",
                 checked[i]->node_type_id);
        unchecked[i] = *checked[i];
        unchecked[i].node_type_id = unchecked_ids[i];
        unchecked[i].input_schema = NULL;
        unchecked_list[i] = &unchecked[i];
    }
    /* on the main thread before any other exists, as a worker does */
    if (rn_init() != 0 || dsp_registry_init(&reg, packs, err, sizeof err) != 0) {
        fprintf(stderr, "suite init: %s\n", err);
        return -1;
    }
    return 0;
}

/* Runs node `type` with `inputs` (JSON text) under a default timeout of
 * timeout_secs (0: none); the caller cleans res up. */
static void run_node(const char *type, const char *inputs, double timeout_secs,
                     struct exec_result *res)
{
    struct dsp_limits lim = {NULL, timeout_secs, 0, 0};
    struct exec_req req;
    json_object *in = tu_json(inputs);

    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    memset(&req, 0, sizeof req);
    req.node_run_id = "nr";
    req.run_id = "r";
    req.node_type_id = type;
    req.inputs = in;
    CU_ASSERT_EQUAL_FATAL(dsp_execute(&reg, &lim, &req, NULL, res), DSP_OK);
    CU_ASSERT_FALSE(res->abandoned);
    json_object_put(in);
}

/* The run failed with handler_error and a reason naming `field`. */
static void expect_fail(const char *type, const char *inputs, const char *field)
{
    struct exec_result res;

    run_node(type, inputs, 0, &res);
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_PTR_NULL(res.outputs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.error_code);
    CU_ASSERT_STRING_EQUAL(res.error_code, "handler_error");
    if (strstr(res.reason, field) == NULL)
        fprintf(stderr, "\n  %s %s: reason \"%s\" does not name %s\n", type, inputs, res.reason,
                field);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.reason, field));
    dsp_result_cleanup(&res);
}

/* The input schema refuses inputs: invalid_inputs, `field` in the details. */
static void expect_refused_by_schema(const char *type, const char *inputs, const char *field)
{
    struct exec_result res;
    char quoted[64];
    const char *details = "";

    run_node(type, inputs, 0, &res);
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_PTR_NULL(res.outputs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.error_code);
    CU_ASSERT_STRING_EQUAL(res.error_code, "invalid_inputs");
    if (res.error_details != NULL)
        details = json_object_to_json_string_ext(res.error_details, JSON_C_TO_STRING_PLAIN);
    snprintf(quoted, sizeof quoted, "\"%s\"", field);
    if (strstr(details, quoted) == NULL)
        fprintf(stderr, "\n  %s %s: details %s do not name %s\n", type, inputs, details, field);
    CU_ASSERT_PTR_NOT_NULL(strstr(details, quoted));
    dsp_result_cleanup(&res);
}

/* The schema refuses inputs, and so does the handler alone (its copy
 * without an input schema), naming the field both times. */
static void expect_refused(const char *type, const char *inputs, const char *field)
{
    char unchecked_type[64];

    expect_refused_by_schema(type, inputs, field);
    snprintf(unchecked_type, sizeof unchecked_type, "unchecked.%s", type);
    expect_fail(unchecked_type, inputs, field);
}

/* The run succeeded with outputs serialized exactly as `want`. */
static void expect_outputs_text(const char *type, const char *inputs, const char *want)
{
    struct exec_result res;
    const char *got;

    run_node(type, inputs, 0, &res);
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    got = json_object_to_json_string_ext(res.outputs, JSON_C_TO_STRING_PLAIN);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  %s %s: got %s want %s\n", type, inputs, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    dsp_result_cleanup(&res);
}

/* ---- descriptors ---- */

static void test_descriptors(void)
{
    static const char *const ids[] = {"jarvis.core.sleep", "jarvis.core.uuid4",
                                      "jarvis.core.time.now", "jarvis.core.hash.sha256"};
    size_t i;

    for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const jarvis_node *n = dsp_lookup(&reg, ids[i]);
        json_object *in, *out, *ap = NULL;
        size_t dlen;

        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        CU_ASSERT_STRING_EQUAL(n->version, "0.3.8");
        CU_ASSERT_EQUAL(n->side_effect, JARVIS_SIDE_EFFECT_READ);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n->description);
        dlen = strlen(n->description);
        CU_ASSERT_TRUE(dlen > 10 && n->description[dlen - 1] == '.');
        in = tu_json(n->input_schema);
        out = tu_json(n->output_schema);
        CU_ASSERT_TRUE(json_object_is_type(in, json_type_object));
        CU_ASSERT_TRUE(json_object_is_type(out, json_type_object));
        /* closed objects: unknown inputs are refused, outputs are exact */
        CU_ASSERT_TRUE(json_object_object_get_ex(in, "additionalProperties", &ap) &&
                       json_object_is_type(ap, json_type_boolean) && !json_object_get_boolean(ap));
        CU_ASSERT_TRUE(json_object_object_get_ex(out, "additionalProperties", &ap) &&
                       json_object_is_type(ap, json_type_boolean) && !json_object_get_boolean(ap));
        CU_ASSERT_TRUE(json_object_object_get_ex(out, "required", NULL));
        json_object_put(in);
        json_object_put(out);
    }
}

/* ---- jarvis.core.sleep ---- */

static void test_sleep_seconds(void)
{
    struct exec_result res;
    json_object *v = NULL;

    run_node("jarvis.core.sleep", "{\"seconds\":0.05}", 0, &res);
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_TRUE(json_object_object_get_ex(res.outputs, "slept_seconds", &v));
    CU_ASSERT_TRUE(json_object_is_type(v, json_type_double));
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(v), 0.05, 0.0);
    /* started_ms and the sleep's own end are both wall-clock ms */
    CU_ASSERT_TRUE(res.ended_ms - res.started_ms >= 50);
    CU_ASSERT_TRUE(res.ended_ms - res.started_ms < 1000);
    /* serialized as Python's float repr, not json-c's %.17g */
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(res.outputs, JSON_C_TO_STRING_PLAIN),
                           "{\"slept_seconds\":0.05}");
    dsp_result_cleanup(&res);
}

static void test_sleep_fallbacks(void)
{
    struct exec_result res;

    /* duration_seconds when seconds is absent or null */
    run_node("jarvis.core.sleep", "{\"duration_seconds\":0.02}", 0, &res);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    TU_ASSERT_JSON(res.outputs, "{\"slept_seconds\":0.02}");
    CU_ASSERT_TRUE(res.ended_ms - res.started_ms >= 20);
    dsp_result_cleanup(&res);
    expect_outputs_text("jarvis.core.sleep", "{\"seconds\":null,\"duration_seconds\":0.02}",
                        "{\"slept_seconds\":0.02}");
    /* a given seconds wins, even 0 (the reference tests `is None`) */
    run_node("jarvis.core.sleep", "{\"seconds\":0,\"duration_seconds\":5}", 0, &res);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    TU_ASSERT_JSON(res.outputs, "{\"slept_seconds\":0.0}");
    CU_ASSERT_TRUE(res.ended_ms - res.started_ms < 1000);
    dsp_result_cleanup(&res);
    /* neither: 0, always a float */
    expect_outputs_text("jarvis.core.sleep", "{\"seconds\":null,\"duration_seconds\":null}",
                        "{\"slept_seconds\":0.0}");
    expect_outputs_text("jarvis.core.sleep", "{}", "{\"slept_seconds\":0.0}");
    expect_outputs_text("jarvis.core.sleep", "{\"duration_seconds\":0}", "{\"slept_seconds\":0.0}");
    /* -0.0 is not < 0 in Python either, and comes back as float(-0.0) */
    expect_outputs_text("jarvis.core.sleep", "{\"seconds\":-0.0}", "{\"slept_seconds\":-0.0}");
}

static void test_sleep_errors(void)
{
    const char *t = "jarvis.core.sleep";

    /* negative: the schema's "minimum": 0, and the handler's own check */
    expect_refused(t, "{\"seconds\":-1}", "seconds");
    expect_refused(t, "{\"seconds\":-0.001,\"duration_seconds\":1}", "seconds");
    expect_refused(t, "{\"seconds\":null,\"duration_seconds\":-0.5}", "duration_seconds");
    /* not numbers */
    expect_refused(t, "{\"seconds\":\"1\"}", "seconds");
    expect_refused(t, "{\"seconds\":true}", "seconds");
    expect_refused(t, "{\"duration_seconds\":\"0.1\"}", "duration_seconds");
    expect_refused(t, "{\"duration_seconds\":[1]}", "duration_seconds");
    /* unknown inputs: the schema only (the handler ignores them) */
    expect_refused_by_schema(t, "{\"seconds\":0,\"ms\":5}", "ms");
    /* json-c reads 1e400 as infinity */
    expect_fail("jarvis.core.sleep", "{\"seconds\":1e400}", "seconds");
}

static void test_sleep_timeout(void)
{
    struct exec_result res;
    int64_t took;

    run_node("jarvis.core.sleep", "{\"seconds\":5}", 0.1, &res);
    took = res.ended_ms - res.started_ms;
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.error_code);
    CU_ASSERT_STRING_EQUAL(res.error_code, "timeout");
    CU_ASSERT_PTR_NULL(res.outputs);
    if (took < 100 || took > 1000)
        fprintf(stderr, "\n  sleep 5 s under a 0.1 s timeout took %lld ms\n", (long long)took);
    CU_ASSERT_TRUE(took >= 100 && took < 1000);
    dsp_result_cleanup(&res);
}

/* ---- jarvis.core.uuid4 ---- */

/* 1 if s is a lowercase 8-4-4-4-12 version-4, RFC 4122 variant UUID. */
static int is_uuid4(const char *s)
{
    size_t i;

    if (strlen(s) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void run_uuid4(char out[37])
{
    struct exec_result res;
    json_object *v = NULL;

    run_node("jarvis.core.uuid4", "{}", 0, &res);
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(json_object_object_length(res.outputs), 1);
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(res.outputs, "uuid4", &v) &&
                         json_object_is_type(v, json_type_string));
    snprintf(out, 37, "%s", json_object_get_string(v));
    if (!is_uuid4(json_object_get_string(v)))
        fprintf(stderr, "\n  not a uuid4: %s\n", json_object_get_string(v));
    CU_ASSERT_TRUE(is_uuid4(json_object_get_string(v)));
    dsp_result_cleanup(&res);
}

static void test_uuid4(void)
{
    char a[37], b[37];
    int i, seen_variant[4] = {0};

    CU_ASSERT_FALSE(is_uuid4("0e2b8f4c-6a1d-3f00-8000-000000000000")); /* the checker itself */
    CU_ASSERT_FALSE(is_uuid4("0e2b8f4c-6a1d-4f00-c000-000000000000"));
    CU_ASSERT_FALSE(is_uuid4("0E2B8F4C-6A1D-4F00-8000-000000000000"));
    CU_ASSERT_TRUE(is_uuid4("0e2b8f4c-6a1d-4f00-b000-000000000000"));
    expect_refused_by_schema("jarvis.core.uuid4", "{\"version\":4}", "version");
    run_uuid4(a);
    run_uuid4(b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    /* the two variant bits left random take all four values */
    for (i = 0; i < 64; i++) {
        run_uuid4(a);
        if (strchr("89ab", a[19]) != NULL)
            seen_variant[strchr("89ab", a[19]) - "89ab"] = 1;
    }
    CU_ASSERT_TRUE(seen_variant[0] && seen_variant[1] && seen_variant[2] && seen_variant[3]);
}

/* ---- jarvis.core.time.now ---- */

static void expect_iso(time_t sec, long nsec, const char *want)
{
    struct timespec ts = {sec, nsec};
    char buf[CORE_ISOFORMAT_LEN];

    CU_ASSERT_EQUAL_FATAL(core_format_isoformat(&ts, buf, sizeof buf), 0);
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "\n  isoformat(%lld, %ld): got %s want %s\n", (long long)sec, nsec, buf,
                want);
    CU_ASSERT_STRING_EQUAL(buf, want);
}

static void test_isoformat(void)
{
    struct timespec ts = {1795614029, 123456000};
    char buf[CORE_ISOFORMAT_LEN];

    expect_iso(1795614029, 123456000, "2026-11-25T13:40:29.123456+00:00");
    /* no fraction at all when the microseconds are 0, even with nanoseconds */
    expect_iso(1795614029, 0, "2026-11-25T13:40:29+00:00");
    expect_iso(1795614029, 999, "2026-11-25T13:40:29+00:00");
    expect_iso(1795614029, 1000, "2026-11-25T13:40:29.000001+00:00");
    /* truncated, never rounded up into the next second */
    expect_iso(1795614029, 999999999, "2026-11-25T13:40:29.999999+00:00");
    expect_iso(0, 0, "1970-01-01T00:00:00+00:00");
    expect_iso(-1, 500000000, "1969-12-31T23:59:59.500000+00:00");
    /* Python's datetime range, 0001 to 9999 */
    expect_iso(-62135596800LL, 0, "0001-01-01T00:00:00+00:00");
    expect_iso(253402300799LL, 999999000, "9999-12-31T23:59:59.999999+00:00");
    ts.tv_sec = 253402300800LL;
    CU_ASSERT_EQUAL(core_format_isoformat(&ts, buf, sizeof buf), -1);
    ts.tv_sec = -62135596801LL;
    CU_ASSERT_EQUAL(core_format_isoformat(&ts, buf, sizeof buf), -1);
    /* bad nanoseconds, short buffers */
    ts.tv_sec = 1795614029;
    ts.tv_nsec = 1000000000L;
    CU_ASSERT_EQUAL(core_format_isoformat(&ts, buf, sizeof buf), -1);
    ts.tv_nsec = -1;
    CU_ASSERT_EQUAL(core_format_isoformat(&ts, buf, sizeof buf), -1);
    ts.tv_nsec = 123456000;
    CU_ASSERT_EQUAL(core_format_isoformat(&ts, buf, CORE_ISOFORMAT_LEN - 1), -1);
    ts.tv_nsec = 0;
    CU_ASSERT_EQUAL(core_format_isoformat(&ts, buf, 26), 0); /* 25 chars + NUL */
    CU_ASSERT_EQUAL(core_format_isoformat(&ts, buf, 25), -1);
}

static void test_time_now(void)
{
    struct exec_result res;
    json_object *v = NULL;
    struct tm tm;
    int us = 0, n = 0, len;
    const char *s;
    time_t t, now;

    expect_refused_by_schema("jarvis.core.time.now", "{\"tz\":\"UTC\"}", "tz");
    run_node("jarvis.core.time.now", "{}", 0, &res);
    now = time(NULL);
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(json_object_object_length(res.outputs), 1);
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(res.outputs, "time", &v) &&
                         json_object_is_type(v, json_type_string));
    s = json_object_get_string(v);
    len = (int)strlen(s);
    memset(&tm, 0, sizeof tm);
    CU_ASSERT_EQUAL_FATAL(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                                 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n),
                          6);
    CU_ASSERT_EQUAL_FATAL(n, 19);
    /* 1 time in a million the microseconds are 0 and there is no fraction */
    if (len == 32) {
        CU_ASSERT_EQUAL(s[19], '.');
        CU_ASSERT_EQUAL(sscanf(s + 20, "%6d", &us), 1);
        CU_ASSERT_TRUE(us > 0);
    } else {
        CU_ASSERT_EQUAL(len, 25);
    }
    CU_ASSERT_STRING_EQUAL(s + len - 6, "+00:00");
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    if (t < now - 2 || t > now + 2)
        fprintf(stderr, "\n  time.now %s is not within 2 s of now\n", s);
    CU_ASSERT_TRUE(t >= now - 2 && t <= now + 2);
    dsp_result_cleanup(&res);
}

/* ---- jarvis.core.hash.sha256 ---- */

#define SHA_HELLO "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define SHA_HI "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_E9 "de2e331d891ae267a7009cb45b4e8830f170e0c937288ea2731a1941c7a53b0d"
#define SHA_C3A9 "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c"
#define SHA_FFFE "b3d510ef04275ca8e698e5b3cbb0ece3949ef9252f0cdc839e9ee347409a2209"
#define SHA_A0B "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138"
#define SHA_HE_EURO "295481c64a450d830f645d05cdffd7ef9f09d53691872548ff04345a458af99b"
#define SHA_FF "a8100ae6aa1940d0b663bb31cd466142ebbdbd5187131b92d93818987832eb89"

static void expect_sha(const char *inputs, const char *hex)
{
    char want[128];

    snprintf(want, sizeof want, "{\"sha256\":\"%s\"}", hex);
    expect_outputs_text("jarvis.core.hash.sha256", inputs, want);
}

static void test_sha256_base64(void)
{
    expect_sha("{\"content_base64\":\"aGVsbG8=\"}", SHA_HELLO);
    expect_sha("{\"content_base64\":\"aGk=\"}", SHA_HI);
    expect_sha("{\"content_base64\":\"//4=\"}", SHA_FFFE);
    expect_sha("{\"content_base64\":\"\"}", SHA_EMPTY);
    expect_sha("{\"content_base64\":\"YQBi\"}", SHA_A0B);
    /* leftover bits of the last group are dropped, as CPython does */
    expect_sha("{\"content_base64\":\"aGVsbG9=\"}", SHA_HELLO);
    /* preferred when both are given, even next to an unknown encoding */
    expect_sha("{\"content_base64\":\"aGk=\",\"text\":\"hello\"}", SHA_HI);
    expect_sha("{\"content_base64\":\"aGk=\",\"text\":\"hello\",\"encoding\":\"bogus\"}", SHA_HI);
    /* the handler alone does not even look at text then */
    expect_outputs_text("unchecked.jarvis.core.hash.sha256",
                        "{\"content_base64\":\"aGk=\",\"text\":5}", "{\"sha256\":\"" SHA_HI "\"}");
    expect_refused_by_schema("jarvis.core.hash.sha256", "{\"content_base64\":\"aGk=\",\"text\":5}",
                             "text");
    /* a null content_base64 is absent */
    expect_sha("{\"content_base64\":null,\"text\":\"hello\"}", SHA_HELLO);
}

static void test_sha256_base64_errors(void)
{
    static const char *const bad[] = {
        "aGVsbG8",   /* no padding */
        "aGV*bG8=",  /* outside the alphabet */
        "aGVsbG8==", /* too much padding */
        "aGVsbA=",   /* too little */
        "aGVsbA=a",  /* data after padding */
        "aGVs=bG8",  /* padding inside */
        "=aGV",      /* leading padding */
        "a===",      /* one data character in the last group */
        "AAAA=",     /* padding after a whole group (CPython >= 3.12.4) */
        "AAAA====",  /* same */
        "aGVsbG8=\\n", "aGVs bG8=", "aGVs\\u0000bG8", "aGVs\\u00e9bG8=",
        "aGVs-_8=", /* the URL-safe alphabet */
    };
    char in[128];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(in, sizeof in, "{\"content_base64\":\"%s\"}", bad[i]);
        expect_fail("jarvis.core.hash.sha256", in, "content_base64");
    }
    expect_refused("jarvis.core.hash.sha256", "{\"content_base64\":5}", "content_base64");
    expect_refused("jarvis.core.hash.sha256", "{\"content_base64\":[\"aGk=\"]}", "content_base64");
}

static void test_sha256_text(void)
{
    expect_sha("{\"text\":\"hello\"}", SHA_HELLO);
    expect_sha("{\"text\":\"\"}", SHA_EMPTY);
    expect_sha("{\"text\":\"a\\u0000b\"}", SHA_A0B);
    expect_sha("{\"text\":\"h\\u00e9\\u20ac\"}", SHA_HE_EURO);
    expect_sha("{\"text\":\"\\u00e9\"}", SHA_C3A9);
    /* encoding: default utf-8 when absent, null or "" */
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":null}", SHA_C3A9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"\"}", SHA_C3A9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"utf-8\"}", SHA_C3A9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"UTF_8\"}", SHA_C3A9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"utf8\"}", SHA_C3A9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\" Utf--8 \"}", SHA_C3A9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"U8\"}", SHA_C3A9);
    /* latin-1: one byte per code point up to U+00FF */
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"latin-1\"}", SHA_E9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"latin1\"}", SHA_E9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"ISO-8859-1\"}", SHA_E9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"iso8859_1\"}", SHA_E9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"Latin_1\"}", SHA_E9);
    expect_sha("{\"text\":\"\\u00e9\",\"encoding\":\"l1\"}", SHA_E9);
    expect_sha("{\"text\":\"hello\",\"encoding\":\"latin-1\"}", SHA_HELLO);
    /* U+00FF, the last code point latin-1 encodes (U+0100 is refused) */
    expect_sha("{\"text\":\"\\u00ff\",\"encoding\":\"latin-1\"}", SHA_FF);
    /* ascii */
    expect_sha("{\"text\":\"hello\",\"encoding\":\"ascii\"}", SHA_HELLO);
    expect_sha("{\"text\":\"hello\",\"encoding\":\"US-ASCII\"}", SHA_HELLO);
    expect_sha("{\"text\":\"hello\",\"encoding\":\"ANSI_X3.4-1968\"}", SHA_HELLO);
    expect_sha("{\"text\":\"a\\u0000b\",\"encoding\":\"ascii\"}", SHA_A0B);
}

static void test_sha256_text_errors(void)
{
    const char *t = "jarvis.core.hash.sha256";

    expect_fail(t, "{\"text\":\"\\u00e9\",\"encoding\":\"ascii\"}", "text");
    expect_fail(t, "{\"text\":\"abc\\u007f\\u0080\",\"encoding\":\"ascii\"}", "text");
    expect_fail(t, "{\"text\":\"\\u20ac\",\"encoding\":\"latin-1\"}", "text");
    /* the first code point past latin-1 (a byte 0x00 if it were cut) */
    expect_fail(t, "{\"text\":\"a\\u0100\",\"encoding\":\"latin-1\"}",
                "'latin-1' cannot encode U+0100 at position 1");
    expect_fail(t, "{\"text\":\"\\ud83d\\ude00\",\"encoding\":\"latin-1\"}", "text");
    /* bytes that are not UTF-8 (the service's body check refuses them first;
     * json-c alone passes them through) */
    expect_fail(t, "{\"text\":\"a\xff\"}", "text");
    expect_fail(t, "{\"text\":\"\xc0\xaf\",\"encoding\":\"latin-1\"}", "text");
    expect_fail(t, "{\"text\":\"\xed\xa0\x80\"}", "text");
    expect_fail(t, "{\"text\":\"\xe2\x82\",\"encoding\":\"ascii\"}", "text");
    expect_fail(t, "{\"text\":\"\xf4\x90\x80\x80\"}", "text");
    /* unknown names, named in the reason; Python knows no "utf.8" either */
    expect_fail(t, "{\"text\":\"hello\",\"encoding\":\"klingon-8\"}", "klingon-8");
    expect_fail(t, "{\"text\":\"hello\",\"encoding\":\"utf.8\"}", "utf.8");
    /* non-ASCII names (Python drops non-ASCII letters; these it refuses too) */
    expect_fail(t, "{\"text\":\"hello\",\"encoding\":\"\\u00e9\\u00e9\"}", "encoding");
    expect_fail(t, "{\"text\":\"hello\",\"encoding\":\"utf-8\\u00a0x\"}", "encoding");
    expect_fail(t, "{\"text\":\"\",\"encoding\":\"nope\"}", "nope");
    expect_refused(t, "{\"text\":\"hello\",\"encoding\":5}", "encoding");
    expect_refused(t, "{\"content_base64\":\"aGk=\",\"encoding\":true}", "encoding");
    expect_refused(t, "{\"text\":5}", "text");
    expect_refused(t, "{\"text\":{}}", "text");
    expect_refused_by_schema(t, "{\"text\":\"x\",\"bytes\":\"eA==\"}", "bytes");
    /* neither */
    expect_fail(t, "{}", "content_base64 or text");
    expect_fail(t, "{\"content_base64\":null,\"text\":null}", "content_base64 or text");
    expect_fail(t, "{\"encoding\":\"utf-8\"}", "content_base64 or text");
}

static CU_TestInfo tests[] = {
    {"descriptors", test_descriptors},
    {"sleep: seconds", test_sleep_seconds},
    {"sleep: duration_seconds and defaults", test_sleep_fallbacks},
    {"sleep: refused inputs", test_sleep_errors},
    {"sleep: ends at the deadline", test_sleep_timeout},
    {"uuid4", test_uuid4},
    {"isoformat as Python", test_isoformat},
    {"time.now", test_time_now},
    {"sha256: content_base64", test_sha256_base64},
    {"sha256: invalid content_base64", test_sha256_base64_errors},
    {"sha256: text and encodings", test_sha256_text},
    {"sha256: refused text and encodings", test_sha256_text_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"core nodes", suite_init, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
