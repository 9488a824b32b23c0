/* test_config.c - flags and environment, and refusal of bad values. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

static int load(struct config *c, char *err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    int i;

    va_start(ap, argc);
    argv[0] = (char *)"jarvis-atomic-executor";
    for (i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    err[0] = '\0';
    return cfg_load(c, argc, argv, err, 256);
}

static void test_defaults(void)
{
    struct config c;
    char err[256];

    unsetenv("JARVIS_MAX_BODY_BYTES");
    unsetenv("JARVIS_LOG_LEVEL");
    CU_ASSERT_EQUAL(load(&c, err, 1), 0);
    CU_ASSERT_EQUAL(c.action, CFG_SERVE);
    CU_ASSERT_EQUAL(c.max_body_bytes, 1048576);
    CU_ASSERT_EQUAL(c.log_level, JARVIS_LOG_INFO);
    CU_ASSERT_EQUAL(c.log_format, LOG_FORMAT_LOGFMT);
}

static void test_log_format(void)
{
    struct config c;
    char err[256];

    setenv("JARVIS_LOG_FORMAT", "json", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), 0);
    CU_ASSERT_EQUAL(c.log_format, LOG_FORMAT_JSON);
    /* the flag wins, in either spelling */
    CU_ASSERT_EQUAL(load(&c, err, 2, "--log-format=logfmt"), 0);
    CU_ASSERT_EQUAL(c.log_format, LOG_FORMAT_LOGFMT);
    CU_ASSERT_EQUAL(load(&c, err, 3, "--log-format", "LOGFMT"), 0);
    CU_ASSERT_EQUAL(c.log_format, LOG_FORMAT_LOGFMT);
    setenv("JARVIS_LOG_FORMAT", "text", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), -1);
    CU_ASSERT_STRING_EQUAL(err, "log format must be logfmt or json, not 'text'");
    unsetenv("JARVIS_LOG_FORMAT");
    CU_ASSERT_EQUAL(load(&c, err, 2, "--log-format"), -1);
    CU_ASSERT_STRING_EQUAL(err, "log format must be logfmt or json, not ''");
    /* --check-config sees the same refusal */
    CU_ASSERT_EQUAL(load(&c, err, 3, "--check-config", "--log-format=yaml"), -1);
    CU_ASSERT_STRING_EQUAL(err, "log format must be logfmt or json, not 'yaml'");
}

static void test_env_and_flags(void)
{
    struct config c;
    char err[256];

    setenv("JARVIS_MAX_BODY_BYTES", "4096", 1);
    setenv("JARVIS_LOG_LEVEL", "WARN", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), 0);
    CU_ASSERT_EQUAL(c.max_body_bytes, 4096);
    CU_ASSERT_EQUAL(c.log_level, JARVIS_LOG_WARN);
    /* flags win over the environment */
    CU_ASSERT_EQUAL(load(&c, err, 4, "--max-body-bytes", "2048", "--log-level=debug"), 0);
    CU_ASSERT_EQUAL(c.max_body_bytes, 2048);
    CU_ASSERT_EQUAL(c.log_level, JARVIS_LOG_DEBUG);
    unsetenv("JARVIS_MAX_BODY_BYTES");
    unsetenv("JARVIS_LOG_LEVEL");
    CU_ASSERT_EQUAL(load(&c, err, 2, "--help"), 0);
    CU_ASSERT_EQUAL(c.action, CFG_HELP);
    CU_ASSERT_EQUAL(load(&c, err, 2, "--version"), 0);
    CU_ASSERT_EQUAL(c.action, CFG_VERSION);
}

static void test_refusals(void)
{
    struct config c;
    char err[256];

    CU_ASSERT_EQUAL(load(&c, err, 3, "--max-body-bytes", "12"), -1);
    CU_ASSERT_STRING_EQUAL(err,
                           "max body bytes must be an integer from 1024 to 67108864, not '12'");
    CU_ASSERT_EQUAL(load(&c, err, 2, "--max-body-bytes=1k"), -1);
    CU_ASSERT_EQUAL(load(&c, err, 2, "--max-body-bytes"), -1);
    CU_ASSERT_EQUAL(load(&c, err, 2, "--max-body-bytes=-5000"), -1);
    CU_ASSERT_EQUAL(load(&c, err, 2, "--log-level=loud"), -1);
    CU_ASSERT_STRING_EQUAL(err, "log level must be debug, info, warn or error, not 'loud'");
    CU_ASSERT_EQUAL(load(&c, err, 2, "--frobnicate"), -1);
    CU_ASSERT_STRING_EQUAL(err, "unknown option --frobnicate (see --help)");
    CU_ASSERT_EQUAL(load(&c, err, 2, "stray"), -1);
    setenv("JARVIS_MAX_BODY_BYTES", "lots", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), -1);
    unsetenv("JARVIS_MAX_BODY_BYTES");
}

/* Execute slots: the flag, else JARVIS_EXECUTE_SLOTS, else JARVIS_WORKERS,
 * else the CPUs; a bad value stops the worker. */
static void test_execute_slots(void)
{
    struct config c;
    char err[256];

    unsetenv("JARVIS_EXECUTE_SLOTS");
    unsetenv("JARVIS_WORKERS");
    CU_ASSERT_EQUAL(load(&c, err, 1), 0);
    CU_ASSERT_EQUAL(c.execute_slots, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    setenv("JARVIS_WORKERS", "3", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), 0);
    CU_ASSERT_EQUAL(c.execute_slots, 3);
    setenv("JARVIS_EXECUTE_SLOTS", "7", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), 0);
    CU_ASSERT_EQUAL(c.execute_slots, 7);
    CU_ASSERT_EQUAL(load(&c, err, 2, "--execute-slots=9"), 0);
    CU_ASSERT_EQUAL(c.execute_slots, 9);
    CU_ASSERT_EQUAL(load(&c, err, 2, "--execute-slots=0"), -1);
    CU_ASSERT_STRING_EQUAL(err, "execute slots must be an integer from 1 to 65536, not '0'");
    setenv("JARVIS_EXECUTE_SLOTS", "many", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), -1);
    unsetenv("JARVIS_EXECUTE_SLOTS");
    setenv("JARVIS_WORKERS", "0", 1);
    CU_ASSERT_EQUAL(load(&c, err, 1), -1);
    CU_ASSERT_STRING_EQUAL(err, "JARVIS_WORKERS must be an integer from 1 to 65536, not '0'");
    unsetenv("JARVIS_WORKERS");
}

/* --check-config takes the other flags along: they are what it checks. */
static void test_check_config(void)
{
    struct config c;
    char err[256];

    CU_ASSERT_EQUAL(load(&c, err, 4, "--check-config", "--max-body-bytes", "2048"), 0);
    CU_ASSERT_EQUAL(c.action, CFG_CHECK_CONFIG);
    CU_ASSERT_EQUAL(c.max_body_bytes, 2048);
    CU_ASSERT_EQUAL(load(&c, err, 3, "--log-level=warn", "--check-config"), 0);
    CU_ASSERT_EQUAL(c.action, CFG_CHECK_CONFIG);
    CU_ASSERT_EQUAL(c.log_level, JARVIS_LOG_WARN);
    /* a bad value after it is still refused */
    CU_ASSERT_EQUAL(load(&c, err, 3, "--check-config", "--run-table-slots=0"), -1);
    CU_ASSERT_STRING_EQUAL(err, "run table slots must be an integer from 1 to 65536, not '0'");
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg_usage(), "--check-config"));
}

static CU_TestInfo tests[] = {
    {"defaults", test_defaults},
    {"JARVIS_LOG_FORMAT and --log-format", test_log_format},
    {"environment and flags", test_env_and_flags},
    {"bad values are refused", test_refusals},
    {"execute slots", test_execute_slots},
    {"--check-config", test_check_config},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"config", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
