/* test_log.c - log lines: escaping of hostile values, bounds, levels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"
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
        CU_ASSERT_TRUE(utf8_valid(buf, strlen(buf)));
        CU_ASSERT_STRING_EQUAL(buf + strlen(buf) - 3, "...");
    }
    /* A 4-byte character at the very end of the bound. */
    memset(v, 'a', LOG_MAX_VALUE - 2);
    memcpy(v + LOG_MAX_VALUE - 2, "\xf0\x9f\x98\x80", 5);
    buf[0] = '\0';
    log_append_kv(buf, sizeof buf, "k", v);
    CU_ASSERT_TRUE(utf8_valid(buf, strlen(buf)));
    /* Bytes that are not UTF-8: escaped, and the value quoted. */
    buf[0] = '\0';
    log_append_kv(buf, sizeof buf, "k", "a\xc3(b\xff\xe2\x82");
    CU_ASSERT_STRING_EQUAL(buf, " k=\"a\\xc3(b\\xff\\xe2\\x82\"");
    buf[0] = '\0';
    log_append_kv(buf, sizeof buf, "k", "caf\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(buf, " k=caf\xc3\xa9");
}

/* Captures what the log writes to stderr while fn runs. */
static char *capture(void (*fn)(void))
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    char *out = calloc(1, 8192);

    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    if (fread(out, 1, 8191, tmp) == 0)
        out[0] = '\0';
    fclose(tmp);
    return out;
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

static CU_TestInfo tests[] = {
    {"key=value escaping", test_append_kv},
    {"bounded values and buffers", test_bounds},
    {"UTF-8: cut on characters, bad bytes escaped", test_utf8},
    {"request line and levels", test_request_line},
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
