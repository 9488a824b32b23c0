/*
 * test_crash.c - the fatal-signal line (crash.h), each case in a child
 * process whose stderr is a pipe: a signal raised while a run is marked
 * (the line names the run, escaped as log.c escapes), a real fault outside
 * any run (the handler returns and the instruction faults again), abort()
 * after the run was left, crash_init called twice, and the line as a JSON
 * object when the log's format is JSON. Each child must
 * still die of its signal; under AddressSanitizer a SIGSEGV is handed on to
 * ASan's handler, which reports and exits non-zero instead.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "log.h"
#include "schemas.h"
#include "testutil.h"

/* How long a child may take to die (loose: a loaded machine, ASan). */
#define CHILD_WAIT_MS 20000
#define OUT_MAX 8192

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

/* Runs fn in a child with stderr on a pipe; its output (NUL-terminated)
 * into out and its wait status into *status. 0, or -1 when it did not end
 * in time (then it is killed). */
static int run_child(void (*fn)(void), char *out, size_t outlen, int *status, pid_t *pid_out)
{
    double until = now_ms() + CHILD_WAIT_MS;
    size_t n = 0;
    int fds[2], rc = -1;
    pid_t pid;

    out[0] = '\0';
    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        fn();
        _exit(100); /* the signal did not end it */
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    *pid_out = pid;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        double left = until - now_ms();
        ssize_t k;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        k = read(fds[0], out + n, outlen - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n == outlen - 1)
            break;
    }
    out[n] = '\0';
    close(fds[0]);
    while (now_ms() < until) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid) {
            rc = 0;
            break;
        }
        usleep(10000);
    }
    if (rc != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
    }
    return rc;
}

/* Asserts that status is a death by sig (or, where ASan handles sig, its
 * non-zero exit). */
static void assert_died_of(int status, int sig)
{
#if defined(__SANITIZE_ADDRESS__)
    if (sig == SIGSEGV) {
        CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 100);
        return;
    }
#endif
    CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
        fprintf(stderr, "\n  wait status %#x, want death by signal %d\n", status, sig);
}

/* Asserts that out starts with "<time> ERROR pid=<pid> <rest>\n". */
static void assert_line(const char *out, pid_t pid, const char *rest)
{
    char ts[25], want[1024];
    const char *nl = strchr(out, '\n');

    snprintf(want, sizeof want, " ERROR pid=%d %s", (int)pid, rest);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    CU_ASSERT_TRUE_FATAL(strlen(out) > 24);
    memcpy(ts, out, 24);
    ts[24] = '\0';
    CU_ASSERT_TRUE(jv_is_date_time(ts));
    CU_ASSERT_EQUAL((size_t)(nl - out), 24 + strlen(want));
    CU_ASSERT_TRUE(strncmp(out + 24, want, strlen(want)) == 0);
    if ((size_t)(nl - out) != 24 + strlen(want) || strncmp(out + 24, want, strlen(want)) != 0)
        fprintf(stderr, "\n  got  %.*s\n  want <time>%s\n", (int)(nl - out), out, want);
}

/* Runs child in a child process and asserts its first stderr line:
 * "<time> ERROR pid=<its pid> <rest>", and that it died of sig. */
static void expect_crash(void (*child)(void), const char *rest, int sig)
{
    char out[OUT_MAX];
    int status = 0;
    pid_t pid = 0;

    CU_ASSERT_EQUAL_FATAL(run_child(child, out, sizeof out, &status, &pid), 0);
    assert_line(out, pid, rest);
    assert_died_of(status, sig);
}

static void raise_in_run(void)
{
    if (crash_init() != 0 || crash_init() != 0) /* twice: still one handler */
        _exit(101);
    crash_run_enter("nr-\"x\n", "jarvis.test.crash");
    raise(SIGSEGV);
}

static void test_raise_in_run(void)
{
    expect_crash(raise_in_run,
                 "msg=\"fatal signal 11 (SIGSEGV) while running a node; the worker dies\" "
                 "node_run_id=\"nr-\\\"x\\x0a\" node_type_id=jarvis.test.crash",
                 SIGSEGV);
}

/* A write to a page that allows none: a fault (si_code > 0) that recurs
 * when the handler returns. */
static void fault_outside_run(void)
{
    volatile int *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (page == MAP_FAILED || crash_init() != 0)
        _exit(101);
    *page = 1;
}

static void test_fault_outside_run(void)
{
    expect_crash(fault_outside_run,
                 "msg=\"fatal signal 11 (SIGSEGV) outside any run; the worker dies\"", SIGSEGV);
}

static void abort_after_run(void)
{
    if (crash_init() != 0)
        _exit(101);
    crash_run_enter("nr-left", "jarvis.core.echo");
    crash_run_leave();
    abort();
}

static void test_abort_after_run(void)
{
    expect_crash(abort_after_run,
                 "msg=\"fatal signal 6 (SIGABRT) outside any run; the worker dies\"", SIGABRT);
}

static void raise_in_run_json(void)
{
    log_set_format(LOG_FORMAT_JSON);
    if (crash_init() != 0)
        _exit(101);
    crash_run_enter("nr-\"x\n\xff", "jarvis.test.crash");
    raise(SIGSEGV);
}

/* o[key] as a string, or "" */
static const char *member(json_object *o, const char *key)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

/* In JSON the same line is one object (after ASan's report, if any, which
 * comes later on the stream). */
static void test_json_line(void)
{
    char out[OUT_MAX];
    int status = 0;
    pid_t pid = 0;
    json_object *line, *pidv = NULL;
    char *nl;

    CU_ASSERT_EQUAL_FATAL(run_child(raise_in_run_json, out, sizeof out, &status, &pid), 0);
    nl = strchr(out, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    *nl = '\0';
    line = json_tokener_parse(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    CU_ASSERT_TRUE(jv_is_date_time(member(line, "time")));
    CU_ASSERT_STRING_EQUAL(member(line, "level"), "ERROR");
    CU_ASSERT_TRUE(json_object_object_get_ex(line, "pid", &pidv) &&
                   json_object_is_type(pidv, json_type_int) &&
                   json_object_get_int(pidv) == (int)pid);
    CU_ASSERT_STRING_EQUAL(member(line, "msg"),
                           "fatal signal 11 (SIGSEGV) while running a node; the worker dies");
    CU_ASSERT_STRING_EQUAL(member(line, "node_run_id"), "nr-\"x\n\\xff");
    CU_ASSERT_STRING_EQUAL(member(line, "node_type_id"), "jarvis.test.crash");
    CU_ASSERT_EQUAL(json_object_object_length(line), 6);
    json_object_put(line);
    assert_died_of(status, SIGSEGV);
}

static CU_TestInfo tests[] = {
    {"SIGSEGV raised in a run: the line names the run, the process dies", test_raise_in_run},
    {"a real fault outside a run: faults again, the process dies", test_fault_outside_run},
    {"abort() after the run was left: SIGABRT, no run named", test_abort_after_run},
    {"the line in JSON when the log is JSON", test_json_line},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"crash", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
