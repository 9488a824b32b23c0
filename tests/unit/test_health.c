/*
 * test_health.c - the Health body (health.h) in each state of its checks:
 * an idle pool, every execute slot busy, a full run table, a cap below the
 * execute slots, and auth keys disabled, held, stale (refetch failing) and
 * never fetched. Every body is also checked against the spec's Health
 * schema table (sch_health, itself checked against the schema file by
 * test_schemas.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"
#include "health.h"
#include "schemas.h"
#include "testutil.h"
#include "timefmt.h"
#include "validate.h"

static char dir[64];
static struct rt_table *table;

static int suite_init(void)
{
    char path[128], err[256];

    snprintf(dir, sizeof dir, "/tmp/jarvis-hl-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/run.tbl", dir);
    table = rt_open(path, 4, err, sizeof err);
    return table != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
    rt_close(table);
    table = NULL;
    return tu_remove_tree(dir);
}

/* The body at a fixed time, schema-checked, compared whole with want. */
static void expect_health(const struct dsp_limits *lim, struct auth *auth, const char *want)
{
    json_object *body = hl_body(lim, auth, 1764596417123LL), *errors = NULL;

    CU_ASSERT_EQUAL(jv_validate(&sch_health, body, &errors), 0);
    json_object_put(errors);
    TU_ASSERT_JSON(body, want);
    json_object_put(body);
}

#define TIME "\"time\":\"2025-12-01T13:40:17.123Z\""
#define TABLE_FULL(running, queued, tombs)                                                         \
    "{\"name\":\"run_table\",\"status\":\"degraded\",\"message\":\"every slot holds a live run "   \
    "or cancel tombstone: executes answer 503\",\"details\":{\"slots\":4,\"running\":" running     \
    ",\"queued\":" queued ",\"tombstones\":" tombs ",\"free\":0}}"
#define TABLE_OK(running, queued, tombs, free_)                                                    \
    "{\"name\":\"run_table\",\"status\":\"ok\",\"details\":{\"slots\":4,\"running\":" running      \
    ",\"queued\":" queued ",\"tombstones\":" tombs ",\"free\":" free_ "}}"

static void test_no_table(void)
{
    const struct dsp_limits lim = {NULL, 0, 0, 2};

    expect_health(&lim, NULL, "{\"status\":\"ok\"," TIME "}");
}

static void test_idle_and_busy(void)
{
    const struct dsp_limits lim = {table, 0, 0, 2};
    int a, b, c;

    expect_health(&lim, NULL,
                  "{\"status\":\"ok\"," TIME ",\"checks\":[{\"name\":\"execute_capacity\","
                  "\"status\":\"ok\",\"details\":{\"running\":0,\"queued\":0,\"capacity\":2}},"
                  "" TABLE_OK("0", "0", "0", "4") "]}");
    /* Two running (every slot), one queued, one tombstone. */
    a = rt_claim(table, "h-a", 0);
    b = rt_claim(table, "h-b", 0);
    c = rt_claim(table, "h-c", 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(table, a, 2, 0, NULL, NULL), RT_OK);
    CU_ASSERT_EQUAL(rt_acquire_permit(table, b, 2, 0, NULL, NULL), RT_OK);
    CU_ASSERT_EQUAL(rt_cancel(table, "h-tomb", 0, &(pid_t){0}), 0);
    expect_health(&lim, NULL,
                  "{\"status\":\"degraded\"," TIME ",\"checks\":[{\"name\":\"execute_capacity\","
                  "\"status\":\"degraded\",\"message\":\"every execute slot is busy; executes "
                  "queue\",\"details\":{\"running\":2,\"queued\":1,\"capacity\":2}},"
                  "" TABLE_FULL("2", "1", "1") "]}");
    /* A cap below the slots is the capacity. */
    {
        const struct dsp_limits capped = {table, 0, 1, 2};
        expect_health(&capped, NULL,
                      "{\"status\":\"degraded\"," TIME ",\"checks\":[{\"name\":"
                      "\"execute_capacity\",\"status\":\"degraded\",\"message\":\"every execute "
                      "slot is busy; executes queue\",\"details\":{\"running\":2,\"queued\":1,"
                      "\"capacity\":1,\"max_concurrency\":1}}," TABLE_FULL("2", "1", "1") "]}");
    }
    rt_release(table, a);
    rt_release(table, b);
    rt_release(table, c);
}

static void test_table_full(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    int s[3], i;

    /* The tombstone of test_idle_and_busy still holds a slot; three queued
     * runs take the rest. */
    for (i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "full-%d", i);
        s[i] = rt_claim(table, id, 0);
        CU_ASSERT_TRUE(s[i] >= 0);
    }
    CU_ASSERT_EQUAL(rt_claim(table, "full-3", 0), RT_FULL);
    /* No execute slots bound (0): capacity is left out, never degraded. */
    expect_health(&lim, NULL,
                  "{\"status\":\"degraded\"," TIME ",\"checks\":[{\"name\":\"execute_capacity\","
                  "\"status\":\"ok\",\"details\":{\"running\":0,\"queued\":3}},{\"name\":"
                  "\"run_table\",\"status\":\"degraded\",\"message\":\"every slot holds a live "
                  "run or cancel tombstone: executes answer 503\",\"details\":{\"slots\":4,"
                  "\"running\":0,\"queued\":3,\"tombstones\":1,\"free\":0}}]}");
    for (i = 0; i < 3; i++)
        rt_release(table, s[i]);
}

/* An auth whose key state is set by hand (no fetch): mode, keys, error. */
static void fake_auth(struct auth *a, enum auth_mode mode, size_t keys, const char *error)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    a->s.mode = mode;
    a->keys.n = keys;
    a->keys.loaded = keys > 0;
    /* Fetched a minute ago: fresh (not past JWKS_MAX_STALE_MS). */
    a->keys.loaded_ms = keys > 0 ? (ts_now_ms() / 1000 - 60) * 1000 : 0;
    snprintf(a->key_error, sizeof a->key_error, "%s", error);
}

static void test_auth_keys(void)
{
    const struct dsp_limits lim = {NULL, 0, 0, 0};
    char at[TS_RFC3339_LEN], want[1024];
    struct auth a;

    fake_auth(&a, AUTH_DISABLED, 0, "");
    expect_health(&lim, &a,
                  "{\"status\":\"ok\"," TIME ",\"checks\":[{\"name\":\"auth_keys\",\"status\":"
                  "\"ok\",\"message\":\"authentication is disabled\"}]}");
    pthread_mutex_destroy(&a.lock);

    fake_auth(&a, AUTH_REQUIRED, 2, "");
    ts_format_rfc3339(a.keys.loaded_ms, at, sizeof at);
    snprintf(want, sizeof want,
             "{\"status\":\"ok\"," TIME ",\"checks\":[{\"name\":\"auth_keys\",\"status\":"
             "\"ok\",\"details\":{\"keys\":2,\"fetched_at\":\"%s\"}}]}",
             at);
    expect_health(&lim, &a, want);
    pthread_mutex_destroy(&a.lock);

    fake_auth(&a, AUTH_REQUIRED, 2, "http://127.0.0.1:9/jwks: Couldn't connect to server");
    snprintf(want, sizeof want,
             "{\"status\":\"degraded\"," TIME ",\"checks\":[{\"name\":\"auth_keys\","
             "\"status\":\"degraded\",\"message\":\"Unable to fetch JWKS: "
             "http://127.0.0.1:9/jwks: Couldn't connect to server\",\"details\":{\"keys\":2,"
             "\"fetched_at\":\"%s\"}}]}",
             at);
    expect_health(&lim, &a, want);
    pthread_mutex_destroy(&a.lock);

    /* Keys no refresh could renew for too long: they verify nothing now. */
    fake_auth(&a, AUTH_REQUIRED, 2, "boom");
    a.keys.loaded_ms -= JWKS_MAX_STALE_MS;
    ts_format_rfc3339(a.keys.loaded_ms, at, sizeof at);
    snprintf(want, sizeof want,
             "{\"status\":\"down\"," TIME ",\"checks\":[{\"name\":\"auth_keys\","
             "\"status\":\"down\",\"message\":\"Unable to fetch JWKS: keys older than 3600 s "
             "could not be refreshed: boom\",\"details\":{\"keys\":0,\"fetched_at\":\"%s\"}}]}",
             at);
    expect_health(&lim, &a, want);
    pthread_mutex_destroy(&a.lock);

    /* Fetched, but no key in it can verify anything. */
    fake_auth(&a, AUTH_REQUIRED, 0, "");
    expect_health(&lim, &a,
                  "{\"status\":\"down\"," TIME ",\"checks\":[{\"name\":\"auth_keys\",\"status\":"
                  "\"down\",\"message\":\"Unable to fetch JWKS: the JWKS holds no usable key\","
                  "\"details\":{\"keys\":0}}]}");
    pthread_mutex_destroy(&a.lock);

    fake_auth(&a, AUTH_REQUIRED, 0, "no jwks_uri");
    expect_health(&lim, &a,
                  "{\"status\":\"down\"," TIME ",\"checks\":[{\"name\":\"auth_keys\",\"status\":"
                  "\"down\",\"message\":\"Unable to fetch JWKS: no jwks_uri\",\"details\":{"
                  "\"keys\":0}}]}");
    pthread_mutex_destroy(&a.lock);
}

static CU_TestInfo tests[] = {
    {"no run table: no run checks", test_no_table},
    {"idle, then every execute slot busy, then a cap", test_idle_and_busy},
    {"a full run table", test_table_full},
    {"auth keys: disabled, held, stale, never fetched", test_auth_keys},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"health", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
