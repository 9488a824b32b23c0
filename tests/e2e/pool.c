/*
 * pool.c - the end-to-end harness's pool (see pool.h): owns the one pool of
 * this process (its state folder, port, environment and the pids of nginx,
 * multiwatch and their children), its start and stop through
 * scripts/run-local, the clean-up at exit and on a fatal signal, and the
 * clock the tests wait by. Talking to the pool is pool_http.c's.
 */
#define _GNU_SOURCE /* environ */
#include "pool.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_LOCAL JARVIS_SOURCE_DIR "/scripts/run-local"
#define STOP_WAIT_MS 5000

static struct pool_options opts;
static char state_dir[256];
static int port;
static volatile sig_atomic_t pool_running;

/* ---- the program ---- */

int pool_main(CU_SuiteInfo *suites)
{
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    rc = tu_main(suites);
    curl_global_cleanup();
    return rc;
}

/* ---- child processes ---- */

/* Runs argv[0] with argv, its stdout on our stderr; 0 if it exits 0. */
static int run(char *const argv[])
{
    int status;
    long fd, max_fd = sysconf(_SC_OPEN_MAX);
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        /* The daemons started from here must not hold ctest's files. */
        for (fd = 3; fd < (max_fd > 0 && max_fd < 65536 ? max_fd : 65536); fd++)
            close((int)fd);
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void stop_pool(void)
{
    char script[] = RUN_LOCAL;
    char *argv[] = {script, "stop", "--state-dir", state_dir, NULL};

    if (!pool_running)
        return;
    pool_running = 0;
    if (run(argv) != 0)
        fprintf(stderr, "e2e: run-local stop failed for %s\n", state_dir);
}

/* Creates a fresh state folder /tmp/<name>-XXXXXX; 0, or -1 with none. */
static int make_state_dir(void)
{
    snprintf(state_dir, sizeof state_dir, "/tmp/%s-XXXXXX", opts.name);
    if (mkdtemp(state_dir) != NULL)
        return 0;
    state_dir[0] = '\0';
    return -1;
}

static void remove_state_dir(void)
{
    char rm[] = "/bin/rm";
    char *argv[] = {rm, "-rf", state_dir, NULL};

    if (state_dir[0] != '\0')
        (void)run(argv);
    state_dir[0] = '\0';
}

/* ---- the pool's processes, seen from /proc ---- */

#define MAX_PROCS 32
static struct proc {
    pid_t pid;
    char exe[256];
} procs[MAX_PROCS];
static int n_procs;

/* Parent and state of pid from /proc/<pid>/stat; -1 if there is no such process. */
static pid_t proc_parent(pid_t pid, char *state)
{
    char path[64], buf[512], *p;
    FILE *f;
    int ppid = -1;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(buf, sizeof buf, f) != NULL && (p = strrchr(buf, ')')) != NULL &&
        sscanf(p + 1, " %c %d", state, &ppid) != 2)
        ppid = -1;
    fclose(f);
    return ppid;
}

static void proc_exe(pid_t pid, char *exe, size_t len)
{
    char path[64];
    ssize_t n;

    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    n = readlink(path, exe, len - 1);
    exe[n > 0 ? n : 0] = '\0';
}

static void proc_add(pid_t pid)
{
    if (pid <= 0 || n_procs == MAX_PROCS)
        return;
    procs[n_procs].pid = pid;
    proc_exe(pid, procs[n_procs].exe, sizeof procs[n_procs].exe);
    n_procs++;
}

static pid_t read_pid_file(const char *name)
{
    char path[512], *text;
    pid_t pid;

    snprintf(path, sizeof path, "%s/%s", state_dir, name);
    text = tu_read_file(path, NULL);
    pid = text ? (pid_t)atoi(text) : -1;
    free(text);
    return pid;
}

/* Records nginx (nginx.pid), the pool (pool.pid) and their children. */
static void record_pool(void)
{
    pid_t nginx = read_pid_file("nginx.pid"), pool = read_pid_file("pool.pid");
    DIR *d = opendir("/proc");
    struct dirent *e;

    n_procs = 0;
    proc_add(nginx);
    proc_add(pool);
    while (d != NULL && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name), ppid;
        char state = '?';
        if (pid > 0 && (ppid = proc_parent(pid, &state)) > 0 && (ppid == nginx || ppid == pool))
            proc_add(pid);
    }
    if (d != NULL)
        closedir(d);
}

/* 1 once a recorded process has exited (a zombie has) or the pid is reused. */
static int proc_gone(const struct proc *p)
{
    char state = '?', exe[256];

    if (proc_parent(p->pid, &state) < 0 || state == 'Z' || state == 'X')
        return 1;
    proc_exe(p->pid, exe, sizeof exe);
    return strcmp(exe, p->exe) != 0;
}

/* Kills, by pid, whatever recorded process outlived the stop. */
static void kill_leftovers(void)
{
    int i;

    for (i = 0; i < n_procs; i++) {
        if (proc_gone(&procs[i]))
            continue;
        fprintf(stderr, "e2e: killing leftover pid %d (%s)\n", (int)procs[i].pid, procs[i].exe);
        kill(procs[i].pid, SIGKILL);
    }
    n_procs = 0;
}

int pool_worker_pids(pid_t *out, int max)
{
    pid_t pool = read_pid_file("pool.pid");
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        char state = '?';
        if (pid > 0 && proc_parent(pid, &state) == pool && state != 'Z' && state != 'X' && n < max)
            out[n++] = pid;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* ---- start and stop ---- */

/* Stops the pool if the program dies or is interrupted (fork/exec/wait only). */
static void on_fatal_signal(int sig)
{
    stop_pool();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void shutdown_pool(void)
{
    if (pool_running) {
        record_pool();
        stop_pool();
    }
    kill_leftovers();
    remove_state_dir();
}

/* A port nobody listens on now: bind 127.0.0.1:0 and read what was chosen. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0), p = -1;

    if (s < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &alen) == 0)
        p = ntohs(a.sin_port);
    close(s);
    return p;
}

/* Removes every variable whose name starts with prefix from the environment. */
static void unset_prefix(const char *prefix)
{
    size_t k = strlen(prefix);
    char name[128];
    int again = 1;

    while (again) {
        char **e;
        again = 0;
        for (e = environ; *e != NULL; e++) {
            const char *eq = strchr(*e, '=');
            if (strncmp(*e, prefix, k) == 0 && eq != NULL && (size_t)(eq - *e) < sizeof name) {
                snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
                unsetenv(name);
                again = 1; /* environ changed under us: rescan */
                break;
            }
        }
    }
}

/* The environment run-local and the pool inherit. */
static void set_pool_env(void)
{
    const char *const *p;
    char name[128];

    for (p = opts.env; p != NULL && *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        if (eq != NULL && (size_t)(eq - *p) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - *p), *p);
            setenv(name, eq + 1, 1);
        }
    }
    setenv("JARVIS_LOG_LEVEL", "info", 1);
    for (p = opts.unset; p != NULL && *p != NULL; p++) {
        size_t k = strlen(*p);
        if (k > 0 && (*p)[k - 1] == '*') {
            snprintf(name, sizeof name, "%.*s", (int)(k - 1), *p);
            unset_prefix(name);
        } else {
            unsetenv(*p);
        }
    }
    setenv("no_proxy", "127.0.0.1", 1); /* run-local's own curl health check */
}

int pool_start(const struct pool_options *o)
{
    char script[] = RUN_LOCAL;
    char binary[] = JARVIS_TEST_BINARY;
    char port_arg[16], workers[16];
    /* --no-env-file: a developer's .env.local must not change the tests */
    char *argv[] = {script,     "start",       "--daemon",  "--no-build", "--no-env-file",
                    "--binary", binary,        "--workers", workers,      "--port",
                    port_arg,   "--state-dir", state_dir,   NULL};
    int attempt, sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS};
    size_t i;

    opts = *o;
    snprintf(workers, sizeof workers, "%d", opts.workers);
    if (make_state_dir() != 0)
        return -1;
    atexit(shutdown_pool);
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], on_fatal_signal);
    set_pool_env();
    /* Another process may take the free port before nginx binds it: retry. */
    for (attempt = 0; attempt < 3; attempt++) {
        port = free_port();
        if (port <= 0)
            break;
        snprintf(port_arg, sizeof port_arg, "%d", port);
        pool_running = 1; /* stop even a half-started pool */
        if (run(argv) == 0)
            return 0;
        shutdown_pool();
        if (make_state_dir() != 0)
            break;
    }
    remove_state_dir();
    return -1;
}

int pool_port(void)
{
    return port;
}

char *pool_read_log(const char *name, size_t *len)
{
    char path[512];

    snprintf(path, sizeof path, "%s/logs/%s", state_dir, name);
    return tu_read_file(path, len);
}

/* Prints the end of a log so that a failure can be diagnosed. */
static void dump_log(const char *name)
{
    size_t len = 0;
    char *text = pool_read_log(name, &len);

    if (text != NULL)
        fprintf(stderr, "\n--- tail of %s ---\n%s\n", name,
                text + (len > opts.log_tail ? len - opts.log_tail : 0));
    free(text);
}

void pool_cleanup(void)
{
    if (CU_get_number_of_failures() > 0) {
        dump_log("app.log");
        dump_log("nginx-error.log");
    }
    shutdown_pool();
}

void pool_assert_stop(void)
{
    int i, waited, left = 0;

    record_pool();
    /* nginx master and worker, multiwatch and its workers */
    CU_ASSERT_TRUE(n_procs >= 3 + opts.workers);
    stop_pool();
    for (waited = 0; waited <= STOP_WAIT_MS; waited += 50) {
        for (i = 0, left = 0; i < n_procs; i++)
            left += !proc_gone(&procs[i]);
        if (left == 0)
            break;
        pool_sleep_ms(50);
    }
    for (i = 0; i < n_procs; i++)
        if (!proc_gone(&procs[i]))
            fprintf(stderr, "\n  still running after stop: pid %d (%s)\n", (int)procs[i].pid,
                    procs[i].exe);
    CU_ASSERT_EQUAL(left, 0);
}

/* ---- time ---- */

double pool_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void pool_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
