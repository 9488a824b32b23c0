/* test_log.c - log lines: escaping of hostile values, bounds, levels,
 * priority prefixes when stderr is the journal, the request line's fields,
 * and all of it again as JSON lines (each parsed by json-c, strictly). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "testutil.h"
#include "schemas.h"
#include "utf8.h"

static void test_append_kv(void)
{
    char buf[256] = "";

    log_append_kv(buf, sizeof buf, "a", "plain");
    log_append_kv(buf, sizeof buf, "b", "two words");
    log_append_kv(buf, sizeof buf, "c", "q\"b\\s");
    log_append_kv(buf, sizeof buf, "d", "line\nx=1\x7f");
    log_append_kv(buf, sizeof buf, "e", "");
    log_append_kv(buf, sizeof buf, "f", NULL);
    CU_ASSERT_STRING_EQUAL(buf, " a=plain b=\"two words\" c=\"q\\\"b\\\\s\" "
                                "d=\"line\\x0ax=1\\x7f\" e=\"\"");
}

static void test_bounds(void)
{
    char big[LOG_MAX_VALUE + 100], buf[LOG_MAX_LINE] = "", tiny[12] = "";

    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_append_kv(buf, sizeof buf, "k", big);
    CU_ASSERT_EQUAL(strlen(buf), 3 + LOG_MAX_VALUE + 3);
    CU_ASSERT_STRING_EQUAL(buf + strlen(buf) - 4, "v...");
    /* never past the buffer, always terminated */
    log_append_kv(tiny, sizeof tiny, "key", "a value that does not fit");
    CU_ASSERT_TRUE(strlen(tiny) < sizeof tiny);
    log_append_kv(tiny, sizeof tiny, "more", "x");
    CU_ASSERT_TRUE(strlen(tiny) < sizeof tiny);
}

/* Values are cut on character boundaries, and bytes that are not UTF-8
 * are escaped: every line is valid UTF-8. */
static void test_utf8(void)
{
    char v[LOG_MAX_VALUE + 16], buf[LOG_MAX_LINE];
    size_t off;

    /* "é" (2 bytes) straddling the cut at every parity. */
    for (off = 0; off < 2; off++) {
        size_t i;
        memset(v, 'a', off);
        for (i = off; i + 2 <= LOG_MAX_VALUE + 8; i += 2)
            memcpy(v + i, "\xc3\xa9", 2);
        v[i] = '\0';
        buf[0] = '\0';
        log_append_kv(buf, sizeof buf, "k", v);
        CU_ASSERT_TRUE(jarvis_utf8_valid(buf, strlen(buf)));
        CU_ASSERT_STRING_EQUAL(buf + strlen(buf) - 3, "...");
    }
    /* A 4-byte character at the very end of the bound. */
    memset(v, 'a', LOG_MAX_VALUE - 2);
    memcpy(v + LOG_MAX_VALUE - 2, "\xf0\x9f\x98\x80", 5);
    buf[0] = '\0';
    log_append_kv(buf, sizeof buf, "k", v);
    CU_ASSERT_TRUE(jarvis_utf8_valid(buf, strlen(buf)));
    /* Bytes that are not UTF-8: escaped, and the value quoted. */
    buf[0] = '\0';
    log_append_kv(buf, sizeof buf, "k", "a\xc3(b\xff\xe2\x82");
    CU_ASSERT_STRING_EQUAL(buf, " k=\"a\\xc3(b\\xff\\xe2\\x82\"");
    buf[0] = '\0';
    log_append_kv(buf, sizeof buf, "k", "caf\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(buf, " k=caf\xc3\xa9");
}

/* Captures what the log writes to stderr while fn runs, at most max bytes. */
static char *capture_big(void (*fn)(void), size_t max)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    char *out = calloc(1, max + 1);

    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    if (fread(out, 1, max, tmp) == 0)
        out[0] = '\0';
    fclose(tmp);
    return out;
}

static char *capture(void (*fn)(void))
{
    return capture_big(fn, 8191);
}

static void write_request(void)
{
    struct log_request r = {.method = "POST",
                            .path = "/v1/atomic-node-runs:execute",
                            .status = 200,
                            .node_run_id = "n 1",
                            .node_type_id = "a.b",
                            .state = "succeeded",
                            .dur_us = 1234};

    log_set_level(JARVIS_LOG_INFO);
    log_request(&r);
    log_msg(JARVIS_LOG_DEBUG, "hidden");
    log_msg(JARVIS_LOG_WARN, "shown %d", 7);
}

static void test_request_line(void)
{
    char *out = capture(write_request);
    char *second = strchr(out, '\n');

    CU_ASSERT_PTR_NOT_NULL_FATAL(second);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " INFO pid="));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " method=POST path=/v1/atomic-node-runs:execute status=200 "
                                       "node_run_id=\"n 1\" node_type_id=a.b state=succeeded "
                                       "dur_ms=1.234\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
    CU_ASSERT_PTR_NOT_NULL(strstr(second + 1, " WARN pid="));
    CU_ASSERT_PTR_NOT_NULL(strstr(second + 1, " msg=\"shown 7\"\n"));
    free(out);
}

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* Every field of the request line, the trace context included. */
static void write_trace_request(void)
{
    struct log_request r = {.request_id = "0123456789abcdef0123456789abcdef",
                            .method = "POST",
                            .path = "/v1/atomic-node-runs:execute",
                            .status = 503,
                            .run_id = "run 1",
                            .node_run_id = "nr-1",
                            .node_type_id = "a.b",
                            .trace_id = "t\"1\n",
                            .traceparent = TP,
                            .client_request_id = "client-7",
                            .subject = "alice",
                            .state = "failed",
                            .error_code = "executor_busy",
                            .reason = "run table full",
                            .dur_us = 1000007};

    log_request(&r);
}

static void test_request_trace_fields(void)
{
    char *out = capture(write_trace_request);

    /* the ids first, then what the answer was; 5xx lines are errors */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " ERROR pid="));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, " request_id=0123456789abcdef0123456789abcdef method=POST "
                    "path=/v1/atomic-node-runs:execute status=503 run_id=\"run 1\" "
                    "node_run_id=nr-1 node_type_id=a.b trace_id=\"t\\\"1\\x0a\" "
                    "traceparent=" TP " client_request_id=client-7 sub=alice state=failed "
                    "error=executor_busy reason=\"run table full\" dur_ms=1000.007\n"));
    free(out);
}

/* The whole line as a JSON object, parsed strictly (UTF-8 checked), or
 * NULL; a journal prefix "<N>" is skipped. */
static json_object *parse_line(const char *line, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    json_object *o;

    if (len > 3 && line[0] == '<' && line[2] == '>') {
        line += 3;
        len -= 3;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, line, (int)len);
    if (o != NULL && json_tokener_get_parse_end(tok) != len) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* fields (as log_append_kv made them in JSON) wrapped into an object. */
static json_object *parse_fields(const char *fields)
{
    char line[LOG_MAX_LINE + 8];

    CU_ASSERT_EQUAL_FATAL(fields[0], ',');
    snprintf(line, sizeof line, "{%s}", fields + 1);
    return parse_line(line, strlen(line));
}

static const char *member(json_object *o, const char *key)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

#define ASSERT_MEMBER(o, key, want)                                                                \
    do {                                                                                           \
        const char *got_ = member(o, key);                                                         \
        CU_ASSERT_TRUE(got_ != NULL && strcmp(got_, want) == 0);                                   \
        if (got_ == NULL || strcmp(got_, want) != 0)                                               \
            fprintf(stderr, "\n  %s: got \"%s\" want \"%s\"\n", key, got_ ? got_ : "(none)",       \
                    want);                                                                         \
    } while (0)

/* JSON values decode to exactly what was given when it is UTF-8; a byte
 * that is not reads as the text \xNN, as in logfmt. */
static void test_json_values(void)
{
    char buf[LOG_MAX_LINE] = "";
    json_object *o;

    log_set_format(LOG_FORMAT_JSON);
    log_append_kv(buf, sizeof buf, "a", "plain");
    log_append_kv(buf, sizeof buf, "b", "q\"b\\s/");
    log_append_kv(buf, sizeof buf, "c", "line\nx=1\x7f\t\x01\x1f");
    log_append_kv(buf, sizeof buf, "d", "");
    log_append_kv(buf, sizeof buf, "e", NULL);
    log_append_kv(buf, sizeof buf, "f", "caf\xc3\xa9 \xf0\x9f\x98\x80");
    log_append_kv(buf, sizeof buf, "g", "a\xc3(b\xff\xe2\x82");
    /* a lone surrogate's UTF-8 form is not UTF-8 either */
    log_append_kv(buf, sizeof buf, "h", "\xed\xa0\x80");
    log_set_format(LOG_FORMAT_LOGFMT);
    CU_ASSERT_STRING_EQUAL(buf, ",\"a\":\"plain\",\"b\":\"q\\\"b\\\\s/\","
                                "\"c\":\"line\\u000ax=1\\u007f\\u0009\\u0001\\u001f\",\"d\":\"\","
                                "\"f\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\","
                                "\"g\":\"a\\\\xc3(b\\\\xff\\\\xe2\\\\x82\","
                                "\"h\":\"\\\\xed\\\\xa0\\\\x80\"");
    o = parse_fields(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    ASSERT_MEMBER(o, "a", "plain");
    ASSERT_MEMBER(o, "b", "q\"b\\s/");
    ASSERT_MEMBER(o, "c", "line\nx=1\x7f\t\x01\x1f");
    ASSERT_MEMBER(o, "d", "");
    CU_ASSERT_PTR_NULL(member(o, "e"));
    ASSERT_MEMBER(o, "f", "caf\xc3\xa9 \xf0\x9f\x98\x80");
    ASSERT_MEMBER(o, "g", "a\\xc3(b\\xff\\xe2\\x82");
    ASSERT_MEMBER(o, "h", "\\xed\\xa0\\x80");
    json_object_put(o);
}

/* Long values are cut (on characters) and marked; a buffer too small for
 * a field gets none of it: the fields always parse. */
static void test_json_bounds(void)
{
    char big[LOG_MAX_VALUE + 100], buf[LOG_MAX_LINE] = "", tiny[24] = "";
    json_object *o;
    int i;

    log_set_format(LOG_FORMAT_JSON);
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_append_kv(buf, sizeof buf, "k", big);
    CU_ASSERT_EQUAL(strlen(buf), strlen(",\"k\":\"\"") + LOG_MAX_VALUE + 3);
    /* control bytes cost 6 bytes each: the buffer runs out before the
     * value bound, fields after it are left out, all still parses */
    memset(big, '\n', sizeof big - 1);
    for (i = 0; i < 8; i++)
        log_append_kv(buf, sizeof buf, i % 2 ? "odd" : "even", big);
    CU_ASSERT_TRUE(strlen(buf) < sizeof buf);
    o = parse_fields(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(strlen(member(o, "k")), LOG_MAX_VALUE + 3);
    CU_ASSERT_STRING_EQUAL(member(o, "even") + strlen(member(o, "even")) - 3, "...");
    json_object_put(o);
    /* a key that does not fit leaves the buffer as it was */
    log_append_kv(tiny, sizeof tiny, "key", "a value that does not fit");
    CU_ASSERT_TRUE(strlen(tiny) < sizeof tiny);
    o = parse_fields(tiny);
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    strcpy(buf, tiny);
    log_append_kv(tiny, sizeof tiny, "a_much_longer_key_name", "x");
    CU_ASSERT_STRING_EQUAL(tiny, buf);
    log_set_format(LOG_FORMAT_LOGFMT);
}

/* Random bytes, every length up to past the value bound: the field always
 * parses as JSON and the fields are always UTF-8. */
static void test_json_random(void)
{
    enum { ROUNDS = 3000 };
    char v[LOG_MAX_VALUE + 40], buf[LOG_MAX_LINE];
    unsigned seed = 12345;
    int round, bad = 0;

    log_set_format(LOG_FORMAT_JSON);
    for (round = 0; round < ROUNDS; round++) {
        size_t len = (size_t)round % (sizeof v - 1), i;
        json_object *o;
        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            v[i] = (char)(1 + (seed >> 16) % 255); /* no NUL */
        }
        v[len] = '\0';
        buf[0] = '\0';
        log_append_kv(buf, sizeof buf, "k", v);
        o = parse_fields(buf);
        if (o == NULL || !jarvis_utf8_valid(buf, strlen(buf)))
            bad++;
        json_object_put(o);
    }
    log_set_format(LOG_FORMAT_LOGFMT);
    CU_ASSERT_EQUAL(bad, 0);
}

static void write_json_lines(void)
{
    log_set_format(LOG_FORMAT_JSON);
    write_trace_request();
    write_request();
    log_set_format(LOG_FORMAT_LOGFMT);
}

/* Every line one JSON object: time, level, pid, then the fields; status,
 * pid and dur_ms as numbers; absent fields left out. */
static void test_json_lines(void)
{
    char *out = capture(write_json_lines), *line = out, *nl;
    json_object *o[3] = {NULL, NULL, NULL}, *v = NULL;
    int n = 0;

    while ((nl = strchr(line, '\n')) != NULL && n < 3) {
        o[n] = parse_line(line, (size_t)(nl - line));
        CU_ASSERT_PTR_NOT_NULL(o[n]);
        n++;
        line = nl + 1;
    }
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(*line, '\0');
    CU_ASSERT_PTR_NOT_NULL_FATAL(o[0]);
    ASSERT_MEMBER(o[0], "level", "ERROR");
    CU_ASSERT_TRUE(json_object_object_get_ex(o[0], "pid", &v) &&
                   json_object_is_type(v, json_type_int) && json_object_get_int(v) == getpid());
    ASSERT_MEMBER(o[0], "request_id", "0123456789abcdef0123456789abcdef");
    ASSERT_MEMBER(o[0], "run_id", "run 1");
    ASSERT_MEMBER(o[0], "trace_id", "t\"1\n");
    ASSERT_MEMBER(o[0], "traceparent", TP);
    ASSERT_MEMBER(o[0], "client_request_id", "client-7");
    ASSERT_MEMBER(o[0], "reason", "run table full");
    CU_ASSERT_TRUE(json_object_object_get_ex(o[0], "status", &v) &&
                   json_object_is_type(v, json_type_int) && json_object_get_int(v) == 503);
    CU_ASSERT_TRUE(json_object_object_get_ex(o[0], "dur_ms", &v) &&
                   json_object_is_type(v, json_type_double) &&
                   json_object_get_double(v) > 1000.006 && json_object_get_double(v) < 1000.008);
    /* 3 of the head, 15 of the request */
    CU_ASSERT_EQUAL(json_object_object_length(o[0]), 18);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o[1]);
    ASSERT_MEMBER(o[1], "level", "INFO");
    ASSERT_MEMBER(o[1], "node_run_id", "n 1");
    CU_ASSERT_PTR_NULL(member(o[1], "request_id"));
    CU_ASSERT_PTR_NULL(member(o[1], "traceparent"));
    CU_ASSERT_EQUAL(json_object_object_length(o[1]), 3 + 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o[2]);
    ASSERT_MEMBER(o[2], "level", "WARN");
    ASSERT_MEMBER(o[2], "msg", "shown 7");
    CU_ASSERT_TRUE(jv_is_date_time(member(o[2], "time")));
    for (n = 0; n < 3; n++)
        json_object_put(o[n]);
    free(out);
}

/* Request lines whose hostile values fill the line to every length
 * around its bound: each still one JSON object, the fields that did not
 * fit left out whole (dur_ms, a number, never cut). */
enum { HOSTILE_LINES = 600, HOSTILE_PATH = 300 };

static void write_hostile_requests(void)
{
    static char path[HOSTILE_PATH + 1], id[LOG_MAX_VALUE + 1], trace[HOSTILE_LINES + 1];
    int i;

    memset(path, '\n', HOSTILE_PATH); /* 6 bytes each in JSON */
    memset(id, '"', LOG_MAX_VALUE);   /* 2 bytes each */
    log_set_format(LOG_FORMAT_JSON);
    for (i = 0; i < HOSTILE_LINES; i++) {
        struct log_request r = {.method = "POST",
                                .path = path,
                                .status = 200,
                                .node_run_id = id,
                                .trace_id = trace,
                                .dur_us = 123456789};
        memset(trace, '\t', (size_t)i);
        trace[i] = '\0';
        log_request(&r);
    }
    log_set_format(LOG_FORMAT_LOGFMT);
}

static void test_json_hostile_lines(void)
{
    char *out =
        capture_big(write_hostile_requests, (size_t)HOSTILE_LINES * (LOG_MAX_LINE + LOG_MAX_VALUE));
    char *line = out, *nl;
    int n = 0, bad = 0, with_dur = 0;

    while ((nl = strchr(line, '\n')) != NULL) {
        json_object *o = parse_line(line, (size_t)(nl - line)), *v = NULL;
        if (o == NULL)
            bad++;
        else if (json_object_object_get_ex(o, "dur_ms", &v))
            with_dur += json_object_is_type(v, json_type_double);
        json_object_put(o);
        n++;
        line = nl + 1;
    }
    CU_ASSERT_EQUAL(n, HOSTILE_LINES);
    CU_ASSERT_EQUAL(bad, 0);
    /* the short ones keep it, the long ones lose it whole */
    CU_ASSERT_TRUE(with_dur > 0 && with_dur < HOSTILE_LINES);
    free(out);
}

static void test_format_names(void)
{
    enum log_format f = LOG_FORMAT_LOGFMT;

    CU_ASSERT_EQUAL(log_format_parse("json", &f), 0);
    CU_ASSERT_EQUAL(f, LOG_FORMAT_JSON);
    CU_ASSERT_EQUAL(log_format_parse("LOGFMT", &f), 0);
    CU_ASSERT_EQUAL(f, LOG_FORMAT_LOGFMT);
    CU_ASSERT_EQUAL(log_format_parse("JSON", &f), 0);
    CU_ASSERT_EQUAL(f, LOG_FORMAT_JSON);
    CU_ASSERT_EQUAL(log_format_parse("text", &f), -1);
    CU_ASSERT_EQUAL(log_format_parse("", &f), -1);
    CU_ASSERT_EQUAL(log_format_parse("json ", &f), -1);
    CU_ASSERT_EQUAL(f, LOG_FORMAT_JSON);
    CU_ASSERT_EQUAL(log_get_format(), LOG_FORMAT_LOGFMT);
}

/* Sets JOURNAL_STREAM to stderr's "dev:ino" (ino_delta 0), another
 * inode's (1), or leaves it unset (-1), then writes a line at each level. */
static int ino_delta;

static void write_each_level(void)
{
    struct stat st;
    char env[64];

    unsetenv("JOURNAL_STREAM");
    if (ino_delta >= 0 && fstat(STDERR_FILENO, &st) == 0) {
        snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
        setenv("JOURNAL_STREAM", env, 1);
    }
    log_detect_journal();
    log_set_level(JARVIS_LOG_DEBUG);
    log_msg(JARVIS_LOG_ERROR, "e");
    log_msg(JARVIS_LOG_WARN, "w");
    log_msg(JARVIS_LOG_INFO, "i");
    log_msg(JARVIS_LOG_DEBUG, "d");
    log_set_level(JARVIS_LOG_INFO);
    unsetenv("JOURNAL_STREAM");
    log_detect_journal();
}

static void write_each_level_json(void)
{
    log_set_format(LOG_FORMAT_JSON);
    write_each_level();
    log_set_format(LOG_FORMAT_LOGFMT);
}

/* Each line starts with the prefix its level should get ("" for none),
 * then the line as the format starts it: a digit (the time) or "{". */
static void check_prefixes_of(const char *out, const char *const want[4], int json)
{
    const char *line = out;
    int i;

    for (i = 0; i < 4; i++) {
        const char *rest = line + strlen(want[i]);
        CU_ASSERT_EQUAL(strncmp(line, want[i], strlen(want[i])), 0);
        /* then the time or the object, not another prefix */
        if (json) {
            json_object *o = parse_line(line, (size_t)(strchr(line, '\n') - line));
            CU_ASSERT_EQUAL(rest[0], '{');
            CU_ASSERT_PTR_NOT_NULL(o);
            json_object_put(o);
        } else {
            CU_ASSERT_TRUE(rest[0] >= '0' && rest[0] <= '9');
        }
        line = strchr(line, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(line);
        line++;
    }
    CU_ASSERT_EQUAL(*line, '\0');
}

static void check_prefixes(const char *out, const char *const want[4])
{
    check_prefixes_of(out, want, 0);
}

static void test_journal_prefix(void)
{
    static const char *const journal[4] = {"<3>", "<4>", "<6>", "<7>"};
    static const char *const none[4] = {"", "", "", ""};
    char *out;

    ino_delta = 0;
    out = capture(write_each_level);
    check_prefixes(out, journal);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<3>"));
    free(out);
    /* stderr is not the stream systemd named (a redirected child) */
    ino_delta = 1;
    out = capture(write_each_level);
    check_prefixes(out, none);
    free(out);
    /* no journal at all */
    ino_delta = -1;
    out = capture(write_each_level);
    check_prefixes(out, none);
    free(out);
    CU_ASSERT_STRING_EQUAL(log_journal_prefix(JARVIS_LOG_ERROR), "");
    /* JSON lines keep the prefix: journald strips it, the rest is JSON */
    ino_delta = 0;
    out = capture(write_each_level_json);
    check_prefixes_of(out, journal, 1);
    free(out);
    ino_delta = -1;
    out = capture(write_each_level_json);
    check_prefixes_of(out, none, 1);
    free(out);
}

/* Only "<dev>:<ino>", whole, counts. */
static void test_journal_stream_syntax(void)
{
    static const char *const bad[] = {"", ":", "1", "1:", "x:1", "1:2:3", "1:2 "};
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("JOURNAL_STREAM", bad[i], 1);
        log_detect_journal();
        CU_ASSERT_STRING_EQUAL(log_journal_prefix(JARVIS_LOG_WARN), "");
    }
    unsetenv("JOURNAL_STREAM");
    log_detect_journal();
}

static CU_TestInfo tests[] = {
    {"key=value escaping", test_append_kv},
    {"bounded values and buffers", test_bounds},
    {"UTF-8: cut on characters, bad bytes escaped", test_utf8},
    {"request line and levels", test_request_line},
    {"request line: trace context fields", test_request_trace_fields},
    {"JSON: values escaped, bad bytes as \\xNN", test_json_values},
    {"JSON: bounded values, whole fields", test_json_bounds},
    {"JSON: random bytes always parse", test_json_random},
    {"JSON: one object a line", test_json_lines},
    {"JSON: hostile request lines still parse", test_json_hostile_lines},
    {"format names", test_format_names},
    {"priority prefixes when stderr is the journal", test_journal_prefix},
    {"JOURNAL_STREAM syntax", test_journal_stream_syntax},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"log", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
