/*
 * test_e2e.c - the service end to end: the real nginx in front of the real
 * spawn-fcgi + multiwatch pool, both started by scripts/run-local (with the
 * jarvis.test pack linked in), driven over HTTP/1.1 with libcurl.
 *
 * The pool runs with JARVIS_MAX_BODY_BYTES=4096, so the app answers 413
 * itself for 4097..8192 bytes and nginx (client_max_body_size 8192) beyond.
 * Every case asserts the exact status and the exact JSON body; timestamps
 * are checked for their form and then removed before the comparison.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "testutil.h"

#define EXECUTE "/v1/atomic-node-runs:execute"
#define JSON_CT "application/json"
#define APP_MAX_BODY 4096
#define LOG_WAIT_MS 5000

/* ---- the pool: scripts/run-local start/stop ---- */

static char state_dir[256];
static int port;
static volatile sig_atomic_t pool_running;

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

static void pool_stop(void)
{
    char script[] = JARVIS_SOURCE_DIR "/scripts/run-local";
    char *argv[] = {script, "stop", "--state-dir", state_dir, NULL};

    if (!pool_running)
        return;
    pool_running = 0;
    if (run(argv) != 0)
        fprintf(stderr, "e2e: run-local stop failed for %s\n", state_dir);
}

static void remove_state_dir(void)
{
    char rm[] = "/bin/rm";
    char *argv[] = {rm, "-rf", state_dir, NULL};

    if (state_dir[0] != '\0')
        (void)run(argv);
    state_dir[0] = '\0';
}

/* The processes of the running pool: nginx, multiwatch and their children. */
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

/* Stops the pool if the program dies or is interrupted (fork/exec/wait only). */
static void on_fatal_signal(int sig)
{
    pool_stop();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void shutdown_pool(void)
{
    if (pool_running) {
        record_pool();
        pool_stop();
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

static int suite_init(void)
{
    char script[] = JARVIS_SOURCE_DIR "/scripts/run-local";
    char binary[] = JARVIS_TEST_BINARY;
    char port_arg[16];
    char *argv[] = {script, "start", "--daemon", "--no-build", "--binary", binary,
                    "--workers", "2", "--port", port_arg, "--state-dir", state_dir, NULL};
    int attempt, sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS};
    size_t i;

    snprintf(state_dir, sizeof state_dir, "/tmp/jarvis-e2e-XXXXXX");
    if (mkdtemp(state_dir) == NULL) {
        state_dir[0] = '\0';
        return -1;
    }
    atexit(shutdown_pool);
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], on_fatal_signal);
    setenv("JARVIS_MAX_BODY_BYTES", "4096", 1);
    setenv("JARVIS_LOG_LEVEL", "info", 1);
    setenv("no_proxy", "127.0.0.1", 1); /* run-local's own curl health check */
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
        if (mkdtemp(strcpy(state_dir, "/tmp/jarvis-e2e-XXXXXX")) == NULL)
            break;
    }
    remove_state_dir();
    return -1;
}

/* Prints the end of a log so that a failure can be diagnosed. */
static void dump_log(const char *name)
{
    char path[512];
    size_t len = 0;
    char *text;

    snprintf(path, sizeof path, "%s/logs/%s", state_dir, name);
    text = tu_read_file(path, &len);
    if (text != NULL)
        fprintf(stderr, "\n--- tail of %s ---\n%s\n", name, text + (len > 3000 ? len - 3000 : 0));
    free(text);
}

static int suite_cleanup(void)
{
    if (CU_get_number_of_failures() > 0) {
        dump_log("app.log");
        dump_log("nginx-error.log");
    }
    shutdown_pool();
    return 0;
}

/* ---- one HTTP exchange ---- */

struct req {
    const char *method; /* GET when NULL */
    const char *path;
    const char *ctype;  /* NULL: no Content-Type header at all */
    const char *body;   /* NULL: no body and no Content-Length */
    const char *header; /* one more request header, or NULL */
};

struct reply {
    long status;
    char *body;
    size_t len;
    char ctype[128];
    char allow[128];
    char sent[4096];   /* the request head as libcurl sent it */
    json_object *json; /* the body parsed, or NULL */
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    char *p = realloc(r->body, r->len + size * n + 1);

    if (p == NULL)
        return 0;
    memcpy(p + r->len, data, size * n);
    r->body = p;
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static void header_value(const char *line, size_t n, const char *name, char *dst, size_t dlen)
{
    size_t k = strlen(name), end = n;

    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return;
    for (k++; k < n && line[k] == ' '; k++)
        ;
    while (end > k && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
        end--;
    snprintf(dst, dlen, "%.*s", (int)(end - k), line + k);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;

    n *= size;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) /* a 100 Continue came first */
        r->ctype[0] = r->allow[0] = '\0';
    header_value(line, n, "Content-Type", r->ctype, sizeof r->ctype);
    header_value(line, n, "Allow", r->allow, sizeof r->allow);
    return n;
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t used = strlen(r->sent);

    (void)h;
    if (type == CURLINFO_HEADER_OUT && used + n < sizeof r->sent) {
        memcpy(r->sent + used, data, n);
        r->sent[used + n] = '\0';
    }
    return 0;
}

/* Sends q and fills r (reply_free it). Asserts that the exchange happened. */
static void http(const struct req *q, struct reply *r)
{
    const char *method = q->method ? q->method : "GET";
    struct curl_slist *hdrs = NULL;
    char url[1024], ct[160];
    CURL *h = curl_easy_init();
    CURLcode rc;

    memset(r, 0, sizeof *r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, q->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); /* feeds on_debug only */
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (q->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(q->body));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    /* "Content-Type:" removes the form type libcurl adds to a POST. */
    snprintf(ct, sizeof ct, "Content-Type:%s%s", q->ctype ? " " : "", q->ctype ? q->ctype : "");
    hdrs = curl_slist_append(hdrs, ct);
    if (q->header != NULL)
        hdrs = curl_slist_append(hdrs, q->header);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
        fprintf(stderr, "\n  %s %s: %s\n", method, q->path, curl_easy_strerror(rc));
    CU_ASSERT_EQUAL(rc, CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->len > 0)
        r->json = json_tokener_parse(r->body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

static void reply_free(struct reply *r)
{
    json_object_put(r->json);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Case-insensitive: does the sent request head carry this header name? */
static int sent_header(const struct reply *r, const char *name)
{
    size_t k = strlen(name);
    const char *p;

    for (p = r->sent; (p = strchr(p, '\n')) != NULL;)
        if (strncasecmp(++p, name, k) == 0 && p[k] == ':')
            return 1;
    return 0;
}

/* ---- assertions on a reply ---- */

/* Asserts the status and a JSON body; returns the parsed body (may be NULL). */
static json_object *json_reply(const struct reply *r, long status)
{
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_STRING_EQUAL(r->ctype, JSON_CT);
    CU_ASSERT_PTR_NOT_NULL(r->json);
    if (r->status != status)
        fprintf(stderr, "\n  status %ld, wanted %ld, body: %s\n", r->status, status,
                r->body ? r->body : "");
    return r->json;
}

static void expect(const struct reply *r, long status, const char *want)
{
    TU_ASSERT_JSON(json_reply(r, status), want);
}

static void expect_no_body(const struct reply *r, long status)
{
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_EQUAL(r->len, 0);
}

static int is_timestamp(const char *s)
{
    static const char *const re =
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$";
    regex_t rx;
    int ok;

    if (s == NULL || regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

/* Asserts obj[key] is a YYYY-MM-DDTHH:MM:SS.mmmZ string, copies and deletes it. */
static void take_ts(json_object *obj, const char *key, char out[32])
{
    json_object *v = NULL;
    const char *s;

    out[0] = '\0';
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(obj, key, &v));
    s = json_object_get_string(v);
    if (!json_object_is_type(v, json_type_string) || !is_timestamp(s))
        fprintf(stderr, "\n  %s is not a timestamp: %s\n", key, s ? s : "null");
    CU_ASSERT_TRUE(json_object_is_type(v, json_type_string) && is_timestamp(s));
    snprintf(out, 32, "%s", s ? s : "");
    json_object_object_del(obj, key);
}

/* An AtomicExecuteResult: 200, timestamps well formed and ordered, rest exact. */
static void expect_result(const struct reply *r, const char *want)
{
    json_object *j = json_reply(r, 200);
    char started[32], ended[32];

    if (j == NULL)
        return;
    take_ts(j, "started_at", started);
    take_ts(j, "ended_at", ended);
    CU_ASSERT_TRUE(strcmp(started, ended) <= 0);
    TU_ASSERT_JSON(j, want);
}

/* The ErrorEnvelope of a request validation failure. */
#define INVALID(errors)                                                                     \
    "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation failed\","   \
    "\"details\":{\"errors\":" errors "}}}"

/* ---- request bodies ---- */

#define REF(id) "{\"node_type_id\":\"" id "\",\"version\":\"1.0.0\"}"
#define EXEC_BODY(nrid, id, inputs)                                                         \
    "{\"node_run_id\":\"" nrid "\",\"run_id\":\"run-1\",\"node_type_ref\":" REF(id)         \
    ",\"inputs\":" inputs "}"
#define ECHO_PONG EXEC_BODY("nr-1", "jarvis.core.echo", "{\"echo\":\"pong\"}")
#define PONG_RESULT "{\"node_run_id\":\"nr-1\",\"state\":\"succeeded\",\"outputs\":{\"echo\":\"pong\"}}"

static void post(const char *path, const char *ctype, const char *body, struct reply *r)
{
    http(&(struct req){.method = "POST", .path = path, .ctype = ctype, .body = body}, r);
}

static void execute(const char *body, struct reply *r)
{
    post(EXECUTE, JSON_CT, body, r);
}

/* "<prefix><pad spaces>" exactly n bytes long (caller frees). */
static char *padded(const char *prefix, size_t n)
{
    char *s = malloc(n + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(s, ' ', n);
    memcpy(s, prefix, strlen(prefix));
    s[n] = '\0';
    return s;
}

/* ---- the logs ---- */

/* 1 if `tok` is a whole logfmt field of line (a "key=" token matches any value). */
static int has_token(const char *line, const char *tok)
{
    size_t k = strlen(tok);
    const char *p;

    for (p = line; (p = strstr(p, tok)) != NULL; p++)
        if (p > line && p[-1] == ' ' && (tok[k - 1] == '=' || p[k] == ' ' || p[k] == '\0'))
            return 1;
    return 0;
}

/* Polls logs/<name> (bounded) for a line holding every token. */
static int wait_log_line(const char *name, const char *const *tokens)
{
    char path[512];
    struct timespec nap = {0, 20 * 1000000L};
    int waited;

    snprintf(path, sizeof path, "%s/logs/%s", state_dir, name);
    for (waited = 0; waited <= LOG_WAIT_MS; waited += 20) {
        char *text = tu_read_file(path, NULL), *line, *nl;
        int found = 0;

        for (line = text; line != NULL && *line && !found; line = nl ? nl + 1 : NULL) {
            const char *const *t;
            nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            for (t = tokens; *t != NULL && has_token(line, *t); t++)
                ;
            found = *t == NULL;
        }
        free(text);
        if (found)
            return 1;
        nanosleep(&nap, NULL);
    }
    return 0;
}

/* ---- 1, 2, 10: health and version ---- */

static void test_health(void)
{
    struct reply r;
    char ts[32];

    http(&(struct req){.path = "/v1/health"}, &r);
    if (json_reply(&r, 200) != NULL) {
        take_ts(r.json, "time", ts);
        TU_ASSERT_JSON(r.json, "{\"status\":\"ok\"}");
    }
    reply_free(&r);

    http(&(struct req){.method = "HEAD", .path = "/v1/health"}, &r);
    expect_no_body(&r, 200);
    CU_ASSERT_STRING_EQUAL(r.ctype, JSON_CT);
    reply_free(&r);
}

static void test_health_query_ignored(void)
{
    struct reply r;
    char ts[32];

    http(&(struct req){.path = "/v1/health?x=1"}, &r);
    if (json_reply(&r, 200) != NULL) {
        take_ts(r.json, "time", ts);
        TU_ASSERT_JSON(r.json, "{\"status\":\"ok\"}");
    }
    reply_free(&r);
}

static void test_version(void)
{
    struct reply r;
    json_object *build = NULL;

    http(&(struct req){.path = "/v1/version"}, &r);
    if (json_reply(&r, 200) != NULL) {
        if (json_object_object_get_ex(r.json, "build", &build)) {
            CU_ASSERT_TRUE(json_object_is_type(build, json_type_object));
            json_object_object_foreach(build, key, val)
            {
                int ok = 0;
                if (strcmp(key, "commit") == 0)
                    ok = json_object_is_type(val, json_type_string);
                else if (strcmp(key, "built_at") == 0)
                    ok = is_timestamp(json_object_get_string(val));
                else if (strcmp(key, "dirty") == 0)
                    ok = json_object_is_type(val, json_type_boolean);
                if (!ok)
                    fprintf(stderr, "\n  bad build.%s\n", key);
                CU_ASSERT_TRUE(ok);
            }
            json_object_object_del(r.json, "build");
        }
        TU_ASSERT_JSON(r.json, "{\"service_name\":\"jarvis-atomic-executor\","
                               "\"service_version\":\"0.1.0\",\"supported_api_versions\":[\"v1\"]}");
    }
    reply_free(&r);
}

/* ---- 3, 4, 5: execute ---- */

static void test_echo(void)
{
    static const struct {
        const char *inputs, *echo;
    } cases[] = {
        /* Python: json.dumps(inputs, sort_keys=True) */
        {"{\"b\":[1,2.5,1e20,true,null],\"a\":\"\xc3\xa9\",\"c\":{\"z\":1,\"y\":\"x\"}}",
         "\"{\\\"a\\\": \\\"\\\\u00e9\\\", \\\"b\\\": [1, 2.5, 1e+20, true, null], "
         "\\\"c\\\": {\\\"y\\\": \\\"x\\\", \\\"z\\\": 1}}\""},
        {"{}", "\"{}\""},
        {"{\"echo\":5}", "\"{\\\"echo\\\": 5}\""},
    };
    char body[512], want[512];
    struct reply r;
    size_t i;

    execute(ECHO_PONG, &r);
    expect_result(&r, PONG_RESULT);
    reply_free(&r);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"node_run_id\":\"nr-2\",\"run_id\":\"run-1\",\"node_type_ref\":"
                 REF("jarvis.core.echo") ",\"inputs\":%s}", cases[i].inputs);
        snprintf(want, sizeof want,
                 "{\"node_run_id\":\"nr-2\",\"state\":\"succeeded\",\"outputs\":{\"echo\":%s}}",
                 cases[i].echo);
        execute(body, &r);
        expect_result(&r, want);
        reply_free(&r);
    }
}

static void test_unknown_node_type(void)
{
    struct reply r;

    execute(EXEC_BODY("nr-3", "nope.x", "{}"), &r);
    expect_result(&r, "{\"node_run_id\":\"nr-3\",\"state\":\"failed\",\"error\":"
                      "{\"code\":\"unknown_node_type\",\"message\":\"Unknown node_type_id: nope.x\"}}");
    reply_free(&r);
}

static void test_handler_failures(void)
{
    static const char *const log_tokens[] = {
        "node_run_id=nr-fail-e2e", "node_type_id=jarvis.test.fail", "status=200", "state=failed",
        "error=handler_error", "reason=\"jarvis.test.fail failed on purpose (secret detail)\"",
        NULL};
    struct reply r;

    execute(EXEC_BODY("nr-fail-e2e", "jarvis.test.fail", "{}"), &r);
    expect_result(&r, "{\"node_run_id\":\"nr-fail-e2e\",\"state\":\"failed\",\"error\":"
                      "{\"code\":\"handler_error\",\"message\":\"Atomic handler failed\"}}");
    CU_ASSERT_PTR_NULL(r.body ? strstr(r.body, "secret detail") : NULL);
    reply_free(&r);
    CU_ASSERT_TRUE(wait_log_line("app.log", log_tokens));

    execute(EXEC_BODY("nr-bad", "jarvis.test.bad_outputs", "{}"), &r);
    expect_result(&r, "{\"node_run_id\":\"nr-bad\",\"state\":\"failed\",\"error\":"
                      "{\"code\":\"handler_error\",\"message\":\"Atomic handler failed\"}}");
    reply_free(&r);
}

/* ---- 6: every optional field reaches the handler as sent ---- */

static const char full_request[] =
    "{\"node_run_id\":\"nr-full\",\"run_id\":\"run-full\","
    "\"node_type_ref\":{\"node_type_id\":\"jarvis.test.context\",\"version\":\"1.0.0\","
    "\"extensions\":{\"com.example.ref\":true}},"
    "\"inputs\":{\"q\":\"what\",\"n\":[1,-2.5,{\"k\":null}],\"s\":\"a/b \\\"c\\\" \\u00e9\"},"
    "\"run_context\":{\"tenant_id\":\"tenant-1\","
    "\"actor\":{\"type\":\"user\",\"id\":\"u-1\",\"uri\":\"https://example.com/users/u-1\","
    "\"extensions\":{\"com.example.actor\":{\"x\":1}}},"
    "\"identity\":{\"sub\":\"u-1\",\"groups\":[\"a\",\"b\"]},"
    "\"trace\":{\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"span_id\":\"b7ad6b7169203331\","
    "\"request_id\":\"req-1\"},"
    "\"policy\":{\"mode\":\"strict\"},\"budgets\":{\"tokens\":1000},"
    "\"extensions\":{\"com.example.ctx\":\"v\"}},"
    "\"constraints\":{\"structural\":{\"max_depth\":3,\"max_children_per_composite\":4,"
    "\"max_total_nodes_per_run\":50,\"max_decomposition_rounds_per_node\":2},"
    "\"candidates\":{\"max_candidates_per_subtask\":1,"
    "\"allowed_node_type_ids\":[\"jarvis.core.echo\"],\"denied_node_type_ids\":[]},"
    "\"budgets\":{\"max_wall_time_ms\":60000,\"max_steps\":10,\"max_external_calls\":0,"
    "\"max_cost\":1.5},"
    "\"gates\":{\"side_effect_class\":\"irreversible\",\"require_approval\":false},"
    "\"extensions\":{\"com.example.k\":\"v\"}},"
    "\"extensions\":{\"com.example.k\":{\"nested\":[1,2]},\"org.x-y_z.k\":1}}";

static void test_full_request(void)
{
    json_object *outputs = NULL, *pid = NULL;
    struct reply r;

    execute(full_request, &r);
    if (json_reply(&r, 200) != NULL && json_object_object_get_ex(r.json, "outputs", &outputs)) {
        CU_ASSERT_TRUE(json_object_object_get_ex(outputs, "pid", &pid) &&
                       json_object_is_type(pid, json_type_int) && json_object_get_int64(pid) > 0);
        json_object_object_del(outputs, "pid");
        /* outputs holds exactly the request's members, as sent */
        TU_ASSERT_JSON(outputs, full_request);
        json_object_object_del(r.json, "outputs");
    }
    CU_ASSERT_PTR_NOT_NULL(outputs);
    expect_result(&r, "{\"node_run_id\":\"nr-full\",\"state\":\"succeeded\"}");
    reply_free(&r);
}

/* ---- 7: body errors ---- */

static void test_malformed_json(void)
{
    static const struct {
        const char *body;
        int offset;
        const char *full; /* the whole expected body, or NULL */
    } cases[] = {
        {"{\"a\":", 5, NULL},
        {"{'a':1}", 1,
         INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",1],\"msg\":\"JSON decode error\","
                 "\"ctx\":{\"error\":\"Unexpected character\"}}]")},
        {"[1,]", 3, NULL},
        {"NaN", 0, NULL},
        {"{} x", 3,
         INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",3],\"msg\":\"JSON decode error\","
                 "\"ctx\":{\"error\":\"Unexpected character\"}}]")},
        {"{\"a\":\"x\x01y\"}", 7,
         INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",7],\"msg\":\"JSON decode error\","
                 "\"ctx\":{\"error\":\"Invalid control character in string\"}}]")},
        /* The first error is the missing ':' at 5, not the NaN further on
         * (Python's json, behind the reference, says "Expecting ':' delimiter", 5). */
        {"{\"a\" 1, \"b\": NaN}", 5, NULL},
    };
    char want[512];
    struct reply r;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *ctx = NULL, *err;

        execute(cases[i].body, &r);
        if (json_reply(&r, 400) == NULL) {
            reply_free(&r);
            continue;
        }
        if (cases[i].full != NULL)
            TU_ASSERT_JSON(r.json, cases[i].full);
        /* ctx.error's wording is the parser's: check it is a string, then the rest */
        err = json_object_array_get_idx(
            json_object_object_get(json_object_object_get(json_object_object_get(r.json, "error"),
                                                          "details"),
                                   "errors"),
            0);
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "ctx", &ctx) &&
                       json_object_is_type(json_object_object_get(ctx, "error"), json_type_string));
        json_object_object_del(err, "ctx");
        snprintf(want, sizeof want,
                 INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",%d],"
                         "\"msg\":\"JSON decode error\"}]"),
                 cases[i].offset);
        TU_ASSERT_JSON(r.json, want);
        reply_free(&r);
    }
}

static void test_missing_fields(void)
{
    struct reply r;

    execute("", &r);
    CU_ASSERT_TRUE(sent_header(&r, "Content-Length"));
    expect(&r, 400, INVALID("[{\"type\":\"missing\",\"loc\":[\"body\"],\"msg\":\"Field required\"}]"));
    reply_free(&r);

    execute("{}", &r);
    expect(&r, 400, INVALID("["
        "{\"type\":\"missing\",\"loc\":[\"body\",\"node_run_id\"],\"msg\":\"Field required\"},"
        "{\"type\":\"missing\",\"loc\":[\"body\",\"run_id\"],\"msg\":\"Field required\"},"
        "{\"type\":\"missing\",\"loc\":[\"body\",\"node_type_ref\"],\"msg\":\"Field required\"},"
        "{\"type\":\"missing\",\"loc\":[\"body\",\"inputs\"],\"msg\":\"Field required\"}]"));
    reply_free(&r);
}

static void test_schema_violations(void)
{
    static const struct {
        const char *body, *errors;
    } cases[] = {
        {"{\"node_run_id\":\"n\",\"run_id\":\"r\",\"node_type_ref\":{\"node_type_id\":\"x.y\"},"
         "\"inputs\":{},\"extra\":1}",
         "[{\"type\":\"missing\",\"loc\":[\"body\",\"node_type_ref\",\"version\"],"
         "\"msg\":\"Field required\"},"
         "{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"extra\"],"
         "\"msg\":\"Extra inputs are not permitted\"}]"},
        {"{\"node_run_id\":1,\"run_id\":null,\"node_type_ref\":\"x\",\"inputs\":[]}",
         "[{\"type\":\"string_type\",\"loc\":[\"body\",\"node_run_id\"],"
         "\"msg\":\"Input should be a valid string\"},"
         "{\"type\":\"string_type\",\"loc\":[\"body\",\"run_id\"],"
         "\"msg\":\"Input should be a valid string\"},"
         "{\"type\":\"dict_type\",\"loc\":[\"body\",\"node_type_ref\"],"
         "\"msg\":\"Input should be a valid dictionary\"},"
         "{\"type\":\"dict_type\",\"loc\":[\"body\",\"inputs\"],"
         "\"msg\":\"Input should be a valid dictionary\"}]"},
        {"{\"node_run_id\":\"n\",\"run_id\":\"r\",\"node_type_ref\":" REF("x.y") ",\"inputs\":{},"
         "\"constraints\":{\"budgets\":{\"max_wall_time_ms\":-1},"
         "\"gates\":{\"side_effect_class\":\"delete\"}},\"extensions\":{\"nodot\":1}}",
         "[{\"type\":\"greater_than_equal\","
         "\"loc\":[\"body\",\"constraints\",\"budgets\",\"max_wall_time_ms\"],"
         "\"msg\":\"Input should be greater than or equal to 0\"},"
         "{\"type\":\"enum\",\"loc\":[\"body\",\"constraints\",\"gates\",\"side_effect_class\"],"
         "\"msg\":\"Input should be 'read', 'write' or 'irreversible'\"},"
         "{\"type\":\"extension_key_invalid\",\"loc\":[\"body\",\"extensions\",\"nodot\"],"
         "\"msg\":\"Extension keys must be namespaced as <namespace>.<key>\"}]"},
        {"[]",
         "[{\"type\":\"model_attributes_type\",\"loc\":[\"body\"],"
         "\"msg\":\"Input should be a valid dictionary or object to extract fields from\"}]"},
    };
    char want[2048];
    struct reply r;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(want, sizeof want, INVALID("%s"), cases[i].errors);
        execute(cases[i].body, &r);
        expect(&r, 400, want);
        reply_free(&r);
    }
}

/* prefix, then `arrays` nested arrays around 1, then suffix (caller frees). */
static char *nest(const char *prefix, int arrays, const char *suffix)
{
    size_t n = strlen(prefix);
    char *s = malloc(n + 2 * (size_t)arrays + strlen(suffix) + 2);
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memcpy(s, prefix, n);
    for (i = 0; i < arrays; i++)
        s[n++] = '[';
    s[n++] = '1';
    for (i = 0; i < arrays; i++)
        s[n++] = ']';
    strcpy(s + n, suffix);
    return s;
}

static void test_nesting_depth(void)
{
    static const char head[] = "{\"node_run_id\":\"nr-deep\",\"run_id\":\"r\",\"node_type_ref\":"
                               REF("jarvis.core.echo") ",\"inputs\":{\"d\":";
    /* The body is level 1 and inputs level 2: 62 arrays reach level 64. */
    char *ok = nest(head, 62, "}}"), *deep = nest(head, 63, "}}"), want[512];
    char *echo = nest("{\"node_run_id\":\"nr-deep\",\"state\":\"succeeded\","
                      "\"outputs\":{\"echo\":\"{\\\"d\\\": ", 62, "}\"}}");
    struct reply r;

    execute(ok, &r);
    expect_result(&r, echo);
    reply_free(&r);

    /* The 65th opening bracket is the 63rd array, at this byte offset. */
    snprintf(want, sizeof want,
             INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",%zu],"
                     "\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"Nesting too deep\"}}]"),
             strlen(head) + 62);
    execute(deep, &r);
    expect(&r, 400, want);
    reply_free(&r);
    free(ok);
    free(deep);
    free(echo);
}

/* ---- 7: routing ---- */

#define NOT_FOUND "{\"error\":{\"code\":\"not_found\",\"message\":\"Not Found\"}}"
#define NOT_ALLOWED "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"Method Not Allowed\"}}"

static void test_not_found(void)
{
    struct reply r;

    http(&(struct req){.path = "/nope"}, &r);
    expect(&r, 404, NOT_FOUND);
    reply_free(&r);
    http(&(struct req){.path = "/v1/healthz"}, &r);
    expect(&r, 404, NOT_FOUND);
    reply_free(&r);
    post("/v1/atomic-node-runs:cancel", JSON_CT, "", &r);
    expect(&r, 404, NOT_FOUND);
    reply_free(&r);
}

static void test_method_not_allowed(void)
{
    struct reply r;

    post("/v1/health", JSON_CT, "", &r);
    expect(&r, 405, NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(r.allow, "GET, HEAD");
    reply_free(&r);
    http(&(struct req){.path = EXECUTE}, &r);
    expect(&r, 405, NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(r.allow, "POST");
    reply_free(&r);
    http(&(struct req){.method = "DELETE", .path = "/v1/atomic-node-runs/x:cancel"}, &r);
    expect(&r, 405, NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(r.allow, "POST");
    reply_free(&r);
}

/* ---- 7: framing: 411, 413, 415, chunked ---- */

static void test_length_required(void)
{
    struct reply r;

    http(&(struct req){.method = "POST", .path = EXECUTE, .ctype = JSON_CT}, &r);
    CU_ASSERT_FALSE(sent_header(&r, "Content-Length"));
    CU_ASSERT_FALSE(sent_header(&r, "Transfer-Encoding"));
    expect(&r, 411, "{\"error\":{\"code\":\"length_required\",\"message\":\"Content-Length required\"}}");
    reply_free(&r);
}

static void test_payload_too_large(void)
{
    static const size_t app_sizes[] = {APP_MAX_BODY + 1, 2 * APP_MAX_BODY};
    struct reply r;
    char *body;
    size_t i;

    /* Exactly the limit is read and parsed. */
    body = padded(ECHO_PONG, APP_MAX_BODY);
    execute(body, &r);
    expect_result(&r, PONG_RESULT);
    reply_free(&r);
    free(body);
    for (i = 0; i < sizeof app_sizes / sizeof app_sizes[0]; i++) {
        body = padded(ECHO_PONG, app_sizes[i]);
        execute(body, &r);
        expect(&r, 413, "{\"error\":{\"code\":\"payload_too_large\","
                        "\"message\":\"Request body too large\",\"details\":{\"max_bytes\":4096}}}");
        reply_free(&r);
        free(body);
    }
    body = padded(ECHO_PONG, 20000);
    execute(body, &r);
    expect(&r, 413, "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"Request body too large\"}}");
    reply_free(&r);
    free(body);
}

static void test_content_types(void)
{
    struct reply r;

    post(EXECUTE, "text/plain", ECHO_PONG, &r);
    expect(&r, 415, "{\"error\":{\"code\":\"unsupported_media_type\","
                    "\"message\":\"Content-Type must be application/json\"}}");
    reply_free(&r);
    post(EXECUTE, "application/json; charset=utf-8", ECHO_PONG, &r);
    expect_result(&r, PONG_RESULT);
    reply_free(&r);
    post(EXECUTE, NULL, ECHO_PONG, &r);
    CU_ASSERT_FALSE(sent_header(&r, "Content-Type"));
    expect_result(&r, PONG_RESULT);
    reply_free(&r);
}

static void test_chunked_body(void)
{
    struct reply r;

    http(&(struct req){.method = "POST", .path = EXECUTE, .ctype = JSON_CT, .body = ECHO_PONG,
                       .header = "Transfer-Encoding: chunked"},
         &r);
    CU_ASSERT_FALSE(sent_header(&r, "Content-Length"));
    CU_ASSERT_TRUE(sent_header(&r, "Transfer-Encoding"));
    expect_result(&r, PONG_RESULT);
    reply_free(&r);
}

/* ---- 8: cancel ---- */

static void test_cancel(void)
{
    static const char *const ids[] = {"abc", "a%2Fb%3Ac", "%C3%A9"};
    char path[128];
    struct reply r;
    size_t i;

    for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        snprintf(path, sizeof path, "/v1/atomic-node-runs/%s:cancel", ids[i]);
        post(path, JSON_CT, "", &r);
        expect_no_body(&r, 204);
        reply_free(&r);
    }
    /* Decodes to a byte that is not UTF-8: the app refuses the id. */
    post("/v1/atomic-node-runs/%FF:cancel", JSON_CT, "", &r);
    expect(&r, 400, "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Invalid node_run_id in path\"}}");
    reply_free(&r);
}

static void test_cancel_bad_escape(void)
{
    struct reply r;

    /* nginx refuses a malformed %-escape in the request line before any location
     * runs, so the app never sees it; the answer must still be JSON: the 400 of
     * the nginx error mapping (deploy/nginx/jarvis-atomic-executor-locations.conf). */
    post("/v1/atomic-node-runs/%zz:cancel", JSON_CT, "", &r);
    expect(&r, 400, "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Bad Request\"}}");
    reply_free(&r);
}

/* ---- 9: the logs ---- */

static void test_request_log(void)
{
    static const char *const tokens[] = {
        "method=POST", "path=" EXECUTE, "status=200", "node_run_id=nr-log-e2e",
        "node_type_id=jarvis.core.echo", "state=succeeded", "dur_ms=", NULL};
    char path[512];
    struct reply r;
    size_t len = 0;
    char *text;

    execute(EXEC_BODY("nr-log-e2e", "jarvis.core.echo", "{\"echo\":\"log\"}"), &r);
    expect_result(&r, "{\"node_run_id\":\"nr-log-e2e\",\"state\":\"succeeded\","
                      "\"outputs\":{\"echo\":\"log\"}}");
    reply_free(&r);
    CU_ASSERT_TRUE(wait_log_line("app.log", tokens));

    snprintf(path, sizeof path, "%s/logs/nginx-access.log", state_dir);
    text = tu_read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT_TRUE(len > 0);
    free(text);
}

/* ---- last: the pool stops, leaving no process behind ---- */

static void test_stop(void)
{
    struct timespec nap = {0, 50 * 1000000L};
    int i, waited, left = 0;

    record_pool();
    /* nginx master and worker, multiwatch and its 2 workers */
    CU_ASSERT_TRUE(n_procs >= 5);
    pool_stop();
    for (waited = 0; waited <= 5000; waited += 50) {
        for (i = 0, left = 0; i < n_procs; i++)
            left += !proc_gone(&procs[i]);
        if (left == 0)
            break;
        nanosleep(&nap, NULL);
    }
    for (i = 0; i < n_procs; i++)
        if (!proc_gone(&procs[i]))
            fprintf(stderr, "\n  still running after stop: pid %d (%s)\n", (int)procs[i].pid,
                    procs[i].exe);
    CU_ASSERT_EQUAL(left, 0);
}

static CU_TestInfo tests[] = {
    {"GET/HEAD /v1/health", test_health},
    {"query string ignored for routing", test_health_query_ignored},
    {"GET /v1/version", test_version},
    {"echo: string and sorted-key JSON", test_echo},
    {"unknown node type", test_unknown_node_type},
    {"handler failures stay out of the answer", test_handler_failures},
    {"every optional field reaches the handler", test_full_request},
    {"malformed JSON", test_malformed_json},
    {"empty body and missing fields", test_missing_fields},
    {"schema violations", test_schema_violations},
    {"nesting depth bound", test_nesting_depth},
    {"404", test_not_found},
    {"405 with Allow", test_method_not_allowed},
    {"411 without Content-Length", test_length_required},
    {"413 from the app and from nginx", test_payload_too_large},
    {"415 and accepted content types", test_content_types},
    {"chunked request body", test_chunked_body},
    {"cancel", test_cancel},
    {"cancel with a malformed escape", test_cancel_bad_escape},
    {"request log", test_request_log},
    {"run-local stop leaves no process behind", test_stop},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"e2e (nginx + spawn-fcgi pool)", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    rc = tu_main(suites);
    curl_global_cleanup();
    return rc;
}
