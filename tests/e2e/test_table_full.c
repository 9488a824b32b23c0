/*
 * test_table_full.c - end to end: a pool whose run table has a single slot.
 * An execute that finds no free slot answers 503 executor_busy, retryable,
 * instead of waiting or corrupting the table; once the slot is free again
 * the same request runs. (Pool: 2 workers, JARVIS_RUN_TABLE_SLOTS=1.)
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"

#define HOLDER                                                                                     \
    "{\"node_run_id\":\"nr-full-holder\",\"run_id\":\"r\",\"node_type_ref\":{"                     \
    "\"node_type_id\":\"jarvis.test.sleep\",\"version\":\"1\"},\"inputs\":{\"ms\":1500}}"
#define SECOND                                                                                     \
    "{\"node_run_id\":\"nr-full-second\",\"run_id\":\"r\",\"node_type_ref\":{"                     \
    "\"node_type_id\":\"jarvis.core.echo\",\"version\":\"0.3.8\"},\"inputs\":{"                    \
    "\"echo\":\"in\"}}"

static int suite_init(void)
{
    static const char *const env[] = {"JARVIS_RUN_TABLE_SLOTS=1", NULL};
    static const char *const unset[] = {"ARP_AUTH_*", "JARVIS_RUN_TABLE", NULL};

    return pool_start(&(struct pool_options){
        .name = "jarvis-e2e-full", .workers = 2, .env = env, .unset = unset, .log_tail = 2000});
}

static int suite_cleanup(void)
{
    pool_cleanup();
    return 0;
}

static struct pool_reply holder_reply;

static void *run_holder(void *arg)
{
    (void)arg;
    pool_http_do(
        &(struct pool_req){
            .method = "POST", .path = POOL_EXECUTE, .ctype = POOL_JSON_CT, .body = HOLDER},
        &holder_reply);
    return NULL;
}

static void test_full_table_is_503(void)
{
    static const char *const log_tokens[] = {"node_run_id=nr-full-second", "status=503",
                                             "error=executor_busy", NULL};
    struct pool_reply r;
    pthread_t th;
    int i, busy = 0;

    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, run_holder, NULL), 0);
    /* Until the holder has claimed the slot, the echo may still get it (and
     * free it again at once): try until the table is seen full. */
    for (i = 0; i < 50 && !busy; i++) {
        pool_sleep_ms(20);
        pool_execute(SECOND, &r);
        busy = r.status == 503;
        if (busy)
            pool_expect(&r, 503,
                        "{\"error\":{\"code\":\"executor_busy\",\"message\":\"No run slot is "
                        "free; retry later\",\"retryable\":true}}");
        pool_reply_free(&r);
    }
    CU_ASSERT_TRUE(busy);
    CU_ASSERT_TRUE(pool_find_log_line(log_tokens, NULL, 0));
    /* Cancel the holder: its slot frees, and the same request now runs. */
    pool_post("/v1/atomic-node-runs/nr-full-holder:cancel", NULL, NULL, &r);
    pool_expect_no_body(&r, 204);
    pool_reply_free(&r);
    pthread_join(th, NULL);
    pool_expect_result(&holder_reply,
                       "{\"node_run_id\":\"nr-full-holder\",\"state\":\"canceled\",\"error\":{"
                       "\"code\":\"canceled\",\"message\":\"Atomic execution canceled\"}}");
    pool_reply_free(&holder_reply);
    pool_execute(SECOND, &r);
    pool_expect_result(&r, "{\"node_run_id\":\"nr-full-second\",\"state\":\"succeeded\","
                           "\"outputs\":{\"echo\":\"in\"}}");
    pool_reply_free(&r);
}

static void test_stop(void)
{
    pool_assert_stop();
}

static CU_TestInfo tests[] = {
    {"a full run table answers 503 executor_busy, retryable", test_full_table_is_503},
    {"run-local stop leaves no process behind", test_stop},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"e2e full run table (1 slot, 2 workers)", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return pool_main(suites);
}
