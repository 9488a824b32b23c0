/* test_response.c - the exact bytes of answers as FastCGI/CGI responses. */
#include <stdio.h>
#include <string.h>

#include "response.h"
#include "validate.h"
#include "testutil.h"

struct sink {
    char buf[4096];
    size_t len;
    int fail_after; /* fail the n-th write; 0 never */
    int writes;
};

static int sink_write(void *arg, const char *data, size_t len)
{
    struct sink *s = arg;

    if (++s->writes == s->fail_after)
        return -1;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

static void test_json_answer(void)
{
    struct resp r;
    struct sink s = {.len = 0};

    resp_init(&r);
    resp_set_json(&r, 200, tu_json("{\"a\":\"x/y\",\"b\":[1]}"));
    CU_ASSERT_EQUAL(resp_emit(&r, false, sink_write, &s), 0);
    CU_ASSERT_STRING_EQUAL(s.buf, "Status: 200 OK\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 19\r\nCache-Control: no-store\r\n\r\n"
                                  "{\"a\":\"x/y\",\"b\":[1]}");
    resp_cleanup(&r);
}

static void test_head_and_204(void)
{
    struct resp r;
    struct sink s = {.len = 0};

    resp_init(&r);
    resp_set_json(&r, 200, tu_json("{}"));
    CU_ASSERT_EQUAL(resp_emit(&r, true, sink_write, &s), 0);
    CU_ASSERT_STRING_EQUAL(s.buf, "Status: 200 OK\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 2\r\nCache-Control: no-store\r\n\r\n");
    resp_cleanup(&r);

    s.len = 0;
    resp_init(&r);
    resp_set_json(&r, 204, NULL);
    CU_ASSERT_EQUAL(resp_emit(&r, false, sink_write, &s), 0);
    CU_ASSERT_STRING_EQUAL(s.buf, "Status: 204 No Content\r\nCache-Control: no-store\r\n\r\n");
    resp_cleanup(&r);
}

static void test_error_with_header(void)
{
    struct resp r;
    struct sink s = {.len = 0};

    resp_init(&r);
    resp_set_error(&r, 405, "method_not_allowed", "Method Not Allowed", NULL);
    CU_ASSERT_EQUAL(resp_add_header(&r, "Allow", "GET,\r\nX-Evil: 1"), 0);
    CU_ASSERT_EQUAL(resp_emit(&r, false, sink_write, &s), 0);
    CU_ASSERT_STRING_EQUAL(
        s.buf, "Status: 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
               "Content-Length: 70\r\nCache-Control: no-store\r\nAllow: GET,  X-Evil: 1\r\n\r\n"
               "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"Method Not Allowed\"}}");
    CU_ASSERT_STRING_EQUAL(r.error_code, "method_not_allowed");
    resp_cleanup(&r);
}

static void test_limits_and_failures(void)
{
    struct resp r;
    struct sink s = {.len = 0, .fail_after = 2};
    int i;

    resp_init(&r);
    resp_set_retryable_error(&r, 503, "busy", "Busy");
    TU_ASSERT_JSON(r.body,
                   "{\"error\":{\"code\":\"busy\",\"message\":\"Busy\",\"retryable\":true}}");
    for (i = 0; i < RESP_MAX_HEADERS; i++)
        CU_ASSERT_EQUAL(resp_add_header(&r, "X", "y"), 0);
    CU_ASSERT_EQUAL(resp_add_header(&r, "X", "y"), -1);
    CU_ASSERT_EQUAL(resp_emit(&r, false, sink_write, &s), -1);
    CU_ASSERT_STRING_EQUAL(resp_status_text(413), "Content Too Large");
    CU_ASSERT_STRING_EQUAL(resp_status_text(299), "Unknown");
    resp_cleanup(&r);
}

/* The one list of statuses: every one the service writes has a place and
 * its label, a reason phrase; any other shares the last place, "other". */
static void test_status_list(void)
{
    static const int written[] = {200, 204, 400, 401, 403, 404, 405,
                                  409, 411, 413, 414, 415, 500, 503};
    char label[8];
    size_t i;

    CU_ASSERT_EQUAL(sizeof written / sizeof written[0], RESP_N_STATUSES);
    for (i = 0; i < sizeof written / sizeof written[0]; i++) {
        unsigned at = resp_status_index(written[i]);
        CU_ASSERT_EQUAL(at, i);
        snprintf(label, sizeof label, "%d", written[i]);
        CU_ASSERT_STRING_EQUAL(resp_status_label(at), label);
        CU_ASSERT_STRING_NOT_EQUAL(resp_status_text(written[i]), "Unknown");
    }
    CU_ASSERT_EQUAL(resp_status_index(418), RESP_N_STATUSES);
    CU_ASSERT_EQUAL(resp_status_index(0), RESP_N_STATUSES);
    CU_ASSERT_STRING_EQUAL(resp_status_label(RESP_N_STATUSES), "other");
    CU_ASSERT_STRING_EQUAL(resp_status_label(RESP_N_STATUSES + 7), "other");
    CU_ASSERT_STRING_EQUAL(resp_status_text(418), "Unknown");
}

/* A text body (GET /metrics): its own Content-Type, and a JSON body set
 * after it replaces it (the text is freed, never sent). */
static void test_text_answer(void)
{
    struct resp r;
    struct sink s = {.len = 0};

    resp_init(&r);
    resp_set_text(&r, 200, "text/plain; version=0.0.4", strdup("a 1\n"), 4);
    CU_ASSERT_EQUAL(resp_emit(&r, false, sink_write, &s), 0);
    CU_ASSERT_STRING_EQUAL(s.buf, "Status: 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                  "Content-Length: 4\r\nCache-Control: no-store\r\n\r\na 1\n");
    s.len = 0;
    CU_ASSERT_EQUAL(resp_emit(&r, true, sink_write, &s), 0);
    CU_ASSERT_PTR_NULL(strstr(s.buf, "a 1"));
    resp_set_error(&r, 500, "internal_error", "Internal server error", NULL);
    CU_ASSERT_PTR_NULL(r.text);
    s.len = 0;
    CU_ASSERT_EQUAL(resp_emit(&r, false, sink_write, &s), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.buf, "Content-Type: application/json\r\n"));
    resp_set_text(&r, 200, "text/plain", strdup("x"), 1);
    resp_cleanup(&r);
}

/* The two answers several steps give, made in one place: the reference's
 * 400 with the validator's list, and the 500 that says nothing more. */
static void test_invalid_and_internal(void)
{
    struct resp r;

    resp_init(&r);
    resp_set_invalid(&r, jv_errors_one("node_run_id", "string_too_long", "too long"));
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_STRING_EQUAL(r.error_code, "invalid_request");
    TU_ASSERT_JSON(r.body,
                   "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request "
                   "validation failed\",\"details\":{\"errors\":[{\"type\":\"string_too_long\","
                   "\"loc\":[\"body\",\"node_run_id\"],\"msg\":\"too long\"}]}}}");
    resp_set_invalid(&r, jv_errors_one(NULL, "missing", "Field required"));
    TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request "
                           "validation failed\",\"details\":{\"errors\":[{\"type\":\"missing\","
                           "\"loc\":[\"body\"],\"msg\":\"Field required\"}]}}}");
    resp_set_internal(&r);
    CU_ASSERT_EQUAL(r.status, 500);
    CU_ASSERT_STRING_EQUAL(r.error_code, "internal_error");
    TU_ASSERT_JSON(
        r.body, "{\"error\":{\"code\":\"internal_error\",\"message\":\"Internal server error\"}}");
    resp_cleanup(&r);
}

static CU_TestInfo tests[] = {
    {"JSON answer bytes", test_json_answer},
    {"the 400 and 500 answers of every step", test_invalid_and_internal},
    {"text answer bytes", test_text_answer},
    {"HEAD and 204", test_head_and_204},
    {"error with a header", test_error_with_header},
    {"limits and write failures", test_limits_and_failures},
    {"the one list of statuses", test_status_list},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"response", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
