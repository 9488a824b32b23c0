/*
 * log.c - owns the format of everything the worker writes to stderr.
 *
 * Lines are logfmt ("time level pid=N key=value ...") by default, because
 * both humans and log shippers read them, or JSON objects, one per line
 * (JARVIS_LOG_FORMAT=json), for shippers that want no parser of their own.
 * Values from the network are escaped here, so that a hostile node_run_id
 * cannot forge lines or fields, and bounded so that a line always fits the
 * single write(2) that keeps concurrent workers from interleaving. Every
 * line is valid UTF-8: a byte that is not UTF-8 is written as the text
 * "\xNN" (in JSON, a string holding a backslash, "x" and two hex digits).
 * When stderr is the journal, each line starts with its sd-daemon priority
 * ("<3>" ... "<7>"), which journald strips and keeps as the priority, in
 * both formats.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timefmt.h"
#include "utf8.h"

static jarvis_log_level min_level = JARVIS_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
/* sd-daemon(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR. */
static const char *const journal_prefixes[] = {"<7>", "<6>", "<4>", "<3>"};

/* Set once at start (log_detect_journal), before any thread logs. */
static int to_journal;
/* Set once at start (log_set_format), before any thread logs. */
static enum log_format format = LOG_FORMAT_LOGFMT;

/* Most bytes one source byte becomes: JSON's \u00XX. */
#define LOG_MAX_ESCAPE 6
/* Room kept after a value's bytes: "...", a closing quote and the NUL. */
#define LOG_VALUE_TAIL 5

void log_set_level(jarvis_log_level level)
{
    min_level = level;
}

void log_set_format(enum log_format f)
{
    format = f;
}

enum log_format log_get_format(void)
{
    return format;
}

int log_format_parse(const char *name, enum log_format *out)
{
    if (strcasecmp(name, "logfmt") == 0)
        *out = LOG_FORMAT_LOGFMT;
    else if (strcasecmp(name, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

void log_detect_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int end = 0;

    /* As systemd.exec(5) says: JOURNAL_STREAM is "<dev>:<ino>" of the
     * stream it connected to stderr; a stderr redirected since (a child
     * of the unit, a shell) has another one. */
    to_journal = env != NULL && sscanf(env, "%llu:%llu%n", &dev, &ino, &end) == 2 &&
                 env[end] == '\0' && fstat(STDERR_FILENO, &st) == 0 &&
                 (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

const char *log_journal_prefix(jarvis_log_level level)
{
    return to_journal ? journal_prefixes[level] : "";
}

static int needs_quotes(const char *v)
{
    /* Bytes that are not UTF-8 are written as \\x escapes: quoted. */
    if (*v == '\0' || !jarvis_utf8_valid(v, strlen(v)))
        return 1;
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return 1;
    }
    return 0;
}

/*
 * Writes value's bytes at buf + n, escaped for the format, and returns the
 * new n. One code point at a time: a value is cut on a character boundary
 * (at LOG_MAX_VALUE source bytes, or where buf runs out), and then ends
 * with "..."; bytes that are not UTF-8 become the text \xNN, so every line
 * is valid UTF-8 whatever the client sent. The caller keeps
 * LOG_VALUE_TAIL bytes free past n.
 */
static size_t put_value(char *buf, size_t len, size_t n, const char *value, int json)
{
    size_t used = 0;

    while (*value) {
        const unsigned char *p = (const unsigned char *)value;
        size_t seq = p[0] < 0x80 ? 1 : utf8_seq_len(p, strnlen(value, 4));
        size_t step = seq ? seq : 1;
        if (used + step > LOG_MAX_VALUE || n + LOG_MAX_ESCAPE + step + LOG_VALUE_TAIL >= len) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        if (seq > 1) {
            memcpy(buf + n, value, seq);
            n += seq;
        } else if (seq == 0) {
            /* JSON: a backslash escaped, then "xNN": the same text. */
            n += (size_t)snprintf(buf + n, len - n, json ? "\\\\x%02x" : "\\x%02x", p[0]);
        } else if (p[0] < ' ' || p[0] == 0x7f) {
            n += (size_t)snprintf(buf + n, len - n, json ? "\\u%04x" : "\\x%02x", p[0]);
        } else if (p[0] == '"' || p[0] == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)p[0];
        } else {
            buf[n++] = (char)p[0];
        }
        value += step;
        used += step;
    }
    buf[n] = '\0';
    return n;
}

/*
 * Appends one field whose value is a string (quoted as the format needs)
 * or, when `number`, a number our code formatted (never quoted). The whole
 * field or nothing: buf is left as it was when even its key does not fit.
 */
static void append_field(char *buf, size_t len, const char *key, const char *value, int number)
{
    size_t n0 = strlen(buf), n;
    int json = format == LOG_FORMAT_JSON;
    int quote = !number && (json || needs_quotes(value));
    int w;

    if (n0 + 1 >= len)
        return;
    if (number) {
        /* Never cut: "12..." would not be a JSON number. */
        w = snprintf(buf + n0, len - n0, json ? ",\"%s\":%s" : " %s=%s", key, value);
        if (w < 0 || n0 + (size_t)w >= len)
            buf[n0] = '\0';
        return;
    }
    w = snprintf(buf + n0, len - n0, json ? ",\"%s\":%s" : " %s=%s", key, quote ? "\"" : "");
    if (w < 0 || n0 + (size_t)w + LOG_VALUE_TAIL >= len) {
        buf[n0] = '\0';
        return;
    }
    n = put_value(buf, len, n0 + (size_t)w, value, json);
    if (quote) {
        buf[n++] = '"';
        buf[n] = '\0';
    }
}

void log_append_kv(char *buf, size_t len, const char *key, const char *value)
{
    if (value != NULL)
        append_field(buf, len, key, value, 0);
}

/* The pid in every line, asked of the kernel once per process: a
 * system call per log line is a measurable part of a fast execute. A
 * forked child asks again (fork_child). */
static _Atomic long cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    atomic_store(&cached_pid, 0);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}

static long self_pid(void)
{
    long pid = atomic_load(&cached_pid);

    if (pid == 0) {
        pthread_once(&pid_once, watch_forks);
        pid = (long)getpid();
        atomic_store(&cached_pid, pid);
    }
    return pid;
}

void log_emit(jarvis_log_level level, const char *fields)
{
    char line[LOG_MAX_LINE + LOG_MAX_VALUE];
    char ts[TS_RFC3339_LEN];
    int n;

    if (level < min_level)
        return;
    if (ts_format_rfc3339(ts_now_ms(), ts, sizeof ts) != 0)
        strcpy(ts, "-");
    if (format == LOG_FORMAT_JSON)
        n = snprintf(line, sizeof line, "%s{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%ld%s}\n",
                     log_journal_prefix(level), ts, level_names[level], self_pid(), fields);
    else
        n = snprintf(line, sizeof line, "%s%s %s pid=%ld%s\n", log_journal_prefix(level), ts,
                     level_names[level], self_pid(), fields);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* A failed log write has nowhere to be reported; the request goes on. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

void log_request(const struct log_request *r)
{
    char f[LOG_MAX_LINE] = "";
    char num[32];
    int64_t us = r->dur_us > 0 ? r->dur_us : 0;

    /* The ids that join this line to nginx's and to the caller's first;
     * the fields a hostile request makes long last of all. */
    log_append_kv(f, sizeof f, "request_id", r->request_id);
    log_append_kv(f, sizeof f, "method", r->method);
    log_append_kv(f, sizeof f, "path", r->path);
    snprintf(num, sizeof num, "%d", r->status);
    append_field(f, sizeof f, "status", num, 1);
    log_append_kv(f, sizeof f, "run_id", r->run_id);
    log_append_kv(f, sizeof f, "node_run_id", r->node_run_id);
    log_append_kv(f, sizeof f, "node_type_id", r->node_type_id);
    log_append_kv(f, sizeof f, "trace_id", r->trace_id);
    log_append_kv(f, sizeof f, "traceparent", r->traceparent);
    log_append_kv(f, sizeof f, "client_request_id", r->client_request_id);
    log_append_kv(f, sizeof f, "sub", r->subject);
    log_append_kv(f, sizeof f, "state", r->state);
    log_append_kv(f, sizeof f, "error", r->error_code);
    log_append_kv(f, sizeof f, "reason", r->reason);
    /* In whole microseconds: no float, so JSON gets a plain number. */
    snprintf(num, sizeof num, "%lld.%03lld", (long long)(us / 1000), (long long)(us % 1000));
    append_field(f, sizeof f, "dur_ms", num, 1);
    log_emit(r->status >= 500 ? JARVIS_LOG_ERROR : JARVIS_LOG_INFO, f);
}

void log_msg(jarvis_log_level level, const char *fmt, ...)
{
    char msg[LOG_MAX_LINE / 2];
    char f[LOG_MAX_LINE] = "";
    va_list ap;

    if (level < min_level)
        return;
    va_start(ap, fmt);
    utf8_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_append_kv(f, sizeof f, "msg", msg);
    log_emit(level, f);
}
