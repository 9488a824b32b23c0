/*
 * pool.h - the harness of the end-to-end test programs: one real nginx +
 * spawn-fcgi/multiwatch pool per program, started and stopped through
 * scripts/run-local, and the HTTP exchanges, reply checks and log polling
 * that the programs' tests are made of.
 *
 * One pool per process: pool_start in the suite's init, pool_cleanup in its
 * cleanup. The pool is also stopped at exit and on a fatal signal. The pool
 * itself is pool.c's; the exchanges and the checks are pool_http.c's.
 */
#ifndef JARVIS_E2E_POOL_H
#define JARVIS_E2E_POOL_H

#include <stddef.h>
#include <sys/types.h>

#include <curl/curl.h>

#include "testutil.h"

#define POOL_EXECUTE "/v1/atomic-node-runs:execute"
#define POOL_JSON_CT "application/json"

/* Runs the suites (tu_main) with libcurl initialised around them; the
 * process exit status (2 if libcurl cannot be initialised). */
int pool_main(CU_SuiteInfo *suites);

/* ---- the pool ---- */

struct pool_options {
    const char *name;         /* the state folder is /tmp/<name>-XXXXXX */
    int workers;              /* run-local --workers */
    const char *const *env;   /* "NAME=value" set for the pool; NULL-terminated, or NULL */
    const char *const *unset; /* names removed from the environment; "PREFIX*" removes
                               * every name that starts with PREFIX. NULL-terminated, or NULL */
    size_t log_tail;          /* bytes of each log printed by pool_cleanup after a failure */
};

/* Starts the pool on a free loopback port (retrying when another process
 * takes the port first) with JARVIS_LOG_LEVEL=info and opts' environment.
 * Installs the exit and fatal-signal handlers that stop it. 0, or -1 with
 * nothing left running. opts is copied. */
int pool_start(const struct pool_options *opts);

/* Prints the tails of app.log and nginx-error.log if an assertion failed,
 * stops the pool, kills by pid any of its processes that outlived the stop
 * and removes the state folder. */
void pool_cleanup(void);

/* The test that the pool stops: records nginx, multiwatch and their
 * children (asserts at least 3 + workers), runs run-local stop and asserts
 * that every one of them is gone within 5 s. The state folder stays. */
void pool_assert_stop(void);

/* The live (not zombie) children of the pool process, its workers: up to
 * max pids into out; their number. */
int pool_worker_pids(pid_t *out, int max);

/* Sockets among the open fds of pid: the listening one, plus one FastCGI
 * connection per request it holds (running, queued or being served) and
 * per kept connection; -1 if pid is gone or its fds cannot be read. */
int pool_socket_count(pid_t pid);

/* The loopback port the pool's nginx listens on (0 before pool_start). */
int pool_port(void);

/* The whole of logs/<name> in the state folder, NUL-terminated (caller
 * frees; *len its length when len is not NULL), or NULL. */
char *pool_read_log(const char *name, size_t *len);

/* ---- time ---- */

/* Monotonic clock, in ms. */
double pool_now_ms(void);

/* Sleeps ms milliseconds, resuming after signals. */
void pool_sleep_ms(long ms);

/* ---- one HTTP exchange with the pool's nginx ---- */

struct pool_req {
    const char *method; /* GET when NULL */
    const char *path;
    const char *ctype;  /* NULL: no Content-Type header at all */
    const char *body;   /* NULL: no body and no Content-Length */
    const char *header; /* one more request header, or NULL */
};

struct pool_reply {
    long status;
    char *body; /* NUL-terminated, or NULL when empty */
    size_t len;
    char ctype[128];
    char allow[128];
    char sent[4096];   /* the request head as libcurl sent it */
    json_object *json; /* the body parsed, or NULL */
};

/* Sends q over HTTP/1.1 and fills r (pool_reply_free it, even on an
 * error). No assertions: safe from any thread. libcurl's result. */
CURLcode pool_http_do(const struct pool_req *q, struct pool_reply *r);

/* pool_http_do, asserting that the exchange happened. */
void pool_http(const struct pool_req *q, struct pool_reply *r);

/* POSTs body with Content-Type ctype (NULL: none) to path (pool_http). */
void pool_post(const char *path, const char *ctype, const char *body, struct pool_reply *r);

/* POSTs body as JSON to POOL_EXECUTE (pool_http). */
void pool_execute(const char *body, struct pool_reply *r);

/* Frees what r holds and zeroes it; r itself is the caller's. */
void pool_reply_free(struct pool_reply *r);

/* The pool's runs as /v1/health counts them (pool-wide, from the run
 * table: its first check's details). No assertions. 0, or -1 when health
 * did not answer so. */
int pool_health_runs(int *running, int *queued);

/* Case-insensitive: 1 if the request head r sent carries header `name`. */
int pool_sent_header(const struct pool_reply *r, const char *name);

/* ---- assertions on a reply ---- */

/* Asserts the status and a JSON body; returns the parsed body (borrowed
 * from r; may be NULL). */
json_object *pool_json_reply(const struct pool_reply *r, long status);

/* Asserts the status and that the JSON body equals want (order-insensitive). */
void pool_expect(const struct pool_reply *r, long status, const char *want);

/* Asserts the status and an empty body. */
void pool_expect_no_body(const struct pool_reply *r, long status);

/* 1 if s is a YYYY-MM-DDTHH:MM:SS.mmmZ timestamp. */
int pool_is_timestamp(const char *s);

/* Asserts obj[key] is a timestamp string, copies it to out ("" if absent)
 * and deletes it from obj. */
void pool_take_ts(json_object *obj, const char *key, char out[32]);

/* An AtomicExecuteResult: 200, started_at <= ended_at both well formed, the
 * rest (with the timestamps removed) equal to want. */
void pool_expect_result(const struct pool_reply *r, const char *want);

/* pool_expect_result; started/ended (char[32], may be NULL) receive the
 * timestamps; with pid not NULL, outputs.pid is asserted a positive integer,
 * stored in *pid and removed before the comparison. */
void pool_expect_result_ex(const struct pool_reply *r, const char *want, char *started, char *ended,
                           long *pid);

/* ---- the logs ---- */

/* 1 if tok is a whole logfmt field of line (a "key=" tok matches any value). */
int pool_has_token(const char *line, const char *tok);

/* Polls logs/app.log (for 5 s at most) for a line holding every one of the
 * NULL-terminated tokens. 1 with the last such line copied to out (when out
 * is not NULL); 0, with the tokens printed, if none came. */
int pool_find_log_line(const char *const *tokens, char *out, size_t outlen);

#endif
