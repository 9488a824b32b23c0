/* test_log.c - log lines: escaping of hostile values, bounds, levels,
 * priority prefixes when stderr is the journal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Each line starts with the prefix its level should get ("" for none). */
static void check_prefixes(const char *out, const char *const want[4])
{
    const char *line = out;
    int i;

    for (i = 0; i < 4; i++) {
        const char *rest = line + strlen(want[i]);
        CU_ASSERT_EQUAL(strncmp(line, want[i], strlen(want[i])), 0);
        /* then the time, not another prefix */
        CU_ASSERT_TRUE(rest[0] >= '0' && rest[0] <= '9');
        line = strchr(line, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(line);
        line++;
    }
    CU_ASSERT_EQUAL(*line, '\0');
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
