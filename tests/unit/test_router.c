/* test_router.c - the URL space: matches, 404 vs 405 (with Allow), path ids. */
#include <string.h>

#include "router.h"
#include "testutil.h"

static int lookup(const char *method, const char *path, struct route_match *m, struct resp *r)
{
    resp_init(r);
    return route_lookup(method, path, m, r);
}

static void test_matches(void)
{
    struct route_match m;
    struct resp r;

    CU_ASSERT_EQUAL(lookup("GET", "/v1/health", &m, &r), 0);
    CU_ASSERT_EQUAL(m.ep, EP_HEALTH);
    CU_ASSERT_FALSE(m.head_only);
    CU_ASSERT_EQUAL(lookup("HEAD", "/v1/health", &m, &r), 0);
    CU_ASSERT_EQUAL(m.ep, EP_HEALTH);
    CU_ASSERT_TRUE(m.head_only);
    CU_ASSERT_EQUAL(lookup("GET", "/v1/version", &m, &r), 0);
    CU_ASSERT_EQUAL(m.ep, EP_VERSION);
    CU_ASSERT_EQUAL(lookup("POST", "/v1/atomic-node-runs:execute", &m, &r), 0);
    CU_ASSERT_EQUAL(m.ep, EP_EXECUTE);
    CU_ASSERT_EQUAL(lookup("POST", "/v1/atomic-node-runs/nr-1:cancel", &m, &r), 0);
    CU_ASSERT_EQUAL(m.ep, EP_CANCEL);
    CU_ASSERT_STRING_EQUAL(m.param, "nr-1");
    CU_ASSERT_EQUAL(lookup("GET", "/metrics", &m, &r), 0);
    CU_ASSERT_EQUAL(m.ep, EP_METRICS);
    CU_ASSERT_EQUAL(lookup("HEAD", "/metrics", &m, &r), 0);
    CU_ASSERT_TRUE(m.head_only);
}

static void test_cancel_ids(void)
{
    struct route_match m;
    struct resp r;

    /* %2F stays inside the id; ':' may appear in it; '+' is literal. */
    CU_ASSERT_EQUAL(lookup("POST", "/v1/atomic-node-runs/a%2Fb%3ac+d:cancel", &m, &r), 0);
    CU_ASSERT_STRING_EQUAL(m.param, "a/b:c+d");
    CU_ASSERT_EQUAL(lookup("POST", "/v1/atomic-node-runs/x:y:cancel", &m, &r), 0);
    CU_ASSERT_STRING_EQUAL(m.param, "x:y");
    CU_ASSERT_EQUAL(lookup("POST", "/v1/atomic-node-runs/%C3%A9:cancel", &m, &r), 0);
    CU_ASSERT_STRING_EQUAL(m.param, "\xc3\xa9");
}

static void expect_error(const char *method, const char *path, int status, const char *body,
                         const char *allow)
{
    struct route_match m;
    struct resp r;

    CU_ASSERT_EQUAL(lookup(method, path, &m, &r), -1);
    CU_ASSERT_EQUAL(r.status, status);
    TU_ASSERT_JSON(r.body, body);
    if (allow != NULL) {
        CU_ASSERT_EQUAL_FATAL(r.n_headers, 1);
        CU_ASSERT_STRING_EQUAL(r.headers[0].name, "Allow");
        CU_ASSERT_STRING_EQUAL(r.headers[0].value, allow);
    } else {
        CU_ASSERT_EQUAL(r.n_headers, 0);
    }
    resp_cleanup(&r);
}

#define NOT_FOUND "{\"error\":{\"code\":\"not_found\",\"message\":\"Not Found\"}}"
#define NOT_ALLOWED                                                                                \
    "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"Method Not Allowed\"}}"
#define BAD_ID                                                                                     \
    "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Invalid node_run_id in path\"}}"

static void test_not_found(void)
{
    expect_error("GET", "/", 404, NOT_FOUND, NULL);
    expect_error("GET", "/v1/healthz", 404, NOT_FOUND, NULL);
    expect_error("GET", "/v1/health/", 404, NOT_FOUND, NULL);
    expect_error("GET", "/v1//health", 404, NOT_FOUND, NULL);
    expect_error("GET", "/V1/health", 404, NOT_FOUND, NULL);
    expect_error("POST", "/v1/atomic-node-runs:cancel", 404, NOT_FOUND, NULL);
    expect_error("POST", "/v1/atomic-node-runs/:cancel", 404, NOT_FOUND, NULL);
    expect_error("POST", "/v1/atomic-node-runs/a/b:cancel", 404, NOT_FOUND, NULL);
    expect_error("POST", "/v1/atomic-node-runs/a:cancelx", 404, NOT_FOUND, NULL);
    expect_error("BREW", "/coffee", 404, NOT_FOUND, NULL);
}

static void test_method_not_allowed(void)
{
    expect_error("POST", "/v1/health", 405, NOT_ALLOWED, "GET, HEAD");
    expect_error("DELETE", "/v1/version", 405, NOT_ALLOWED, "GET, HEAD");
    expect_error("GET", "/v1/atomic-node-runs:execute", 405, NOT_ALLOWED, "POST");
    expect_error("HEAD", "/v1/atomic-node-runs:execute", 405, NOT_ALLOWED, "POST");
    expect_error("PUT", "/v1/atomic-node-runs/x:cancel", 405, NOT_ALLOWED, "POST");
    expect_error("OPTIONS", "/v1/health", 405, NOT_ALLOWED, "GET, HEAD");
}

static void test_bad_ids(void)
{
    expect_error("POST", "/v1/atomic-node-runs/%zz:cancel", 400, BAD_ID, NULL);
    expect_error("POST", "/v1/atomic-node-runs/ab%2:cancel", 400, BAD_ID, NULL);
    expect_error("POST", "/v1/atomic-node-runs/a%00b:cancel", 400, BAD_ID, NULL);
    expect_error("POST", "/v1/atomic-node-runs/%C3:cancel", 400, BAD_ID, NULL);
}

static void test_id_length_bound(void)
{
    static char path[ROUTE_MAX_PARAM + 64];
    struct route_match m;
    struct resp r;
    int n = sprintf(path, "/v1/atomic-node-runs/");

    memset(path + n, 'a', ROUTE_MAX_PARAM);
    strcpy(path + n + ROUTE_MAX_PARAM, ":cancel");
    CU_ASSERT_EQUAL(lookup("POST", path, &m, &r), 0);
    CU_ASSERT_EQUAL(strlen(m.param), ROUTE_MAX_PARAM);
    memset(path + n, 'a', ROUTE_MAX_PARAM + 1);
    strcpy(path + n + ROUTE_MAX_PARAM + 1, ":cancel");
    expect_error("POST", path, 400, BAD_ID, NULL);
}

static void test_percent_decode(void)
{
    char out[8];

    CU_ASSERT_EQUAL(route_percent_decode("a%41", 4, out, sizeof out), 2);
    CU_ASSERT_STRING_EQUAL(out, "aA");
    CU_ASSERT_EQUAL(route_percent_decode("%", 1, out, sizeof out), -1);
    CU_ASSERT_EQUAL(route_percent_decode("%4", 2, out, sizeof out), -1);
    CU_ASSERT_EQUAL(route_percent_decode("abcdefgh", 8, out, sizeof out), -1);
    CU_ASSERT_EQUAL(route_percent_decode("abcdefg", 7, out, sizeof out), 7);
}

static CU_TestInfo tests[] = {
    {"matches the four endpoints", test_matches},
    {"cancel ids are percent-decoded", test_cancel_ids},
    {"404 for unknown paths", test_not_found},
    {"405 with Allow for known paths", test_method_not_allowed},
    {"400 for undecodable ids", test_bad_ids},
    {"id length bound", test_id_length_bound},
    {"percent decoding", test_percent_decode},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"router", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
