/*
 * log.c - owns the format of everything the worker writes to stderr.
 *
 * logfmt-style lines ("time level pid key=value ...") because both humans and
 * log shippers read them; values from the network are escaped here, so that a
 * hostile node_run_id cannot forge lines, and bounded so that a line always
 * fits the single write(2) that keeps concurrent workers from interleaving.
 * When stderr is the journal, each line starts with its sd-daemon priority
 * ("<3>" ... "<7>"), which journald strips and keeps as the priority.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void log_set_level(jarvis_log_level level)
{
    min_level = level;
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

void log_append_kv(char *buf, size_t len, const char *key, const char *value)
{
    size_t n = strlen(buf), used = 0;
    int quote;

    if (value == NULL || n + 1 >= len)
        return;
    quote = needs_quotes(value);
    n += (size_t)snprintf(buf + n, len - n, " %s=%s", key, quote ? "\"" : "");
    if (n + 1 >= len) {
        buf[len - 1] = '\0';
        return;
    }
    /* One code point at a time: a value is cut on a character boundary,
     * and bytes that are not UTF-8 are written as \\x escapes, so every
     * line is valid UTF-8 whatever the client sent. */
    while (*value && n + 8 < len) {
        const unsigned char *p = (const unsigned char *)value;
        size_t seq = p[0] < 0x80 ? 1 : utf8_seq_len(p, strnlen(value, 4));
        if (used + (seq ? seq : 1) > LOG_MAX_VALUE) {
            n += (size_t)snprintf(buf + n, len - n, "...");
            break;
        }
        if (seq > 1) {
            if (n + seq + 8 >= len)
                break;
            memcpy(buf + n, value, seq);
            n += seq;
        } else if (seq == 0 || p[0] < ' ' || p[0] == 0x7f) {
            n += (size_t)snprintf(buf + n, len - n, "\\x%02x", p[0]);
            seq = 1;
        } else if (p[0] == '"' || p[0] == '\\') {
            n += (size_t)snprintf(buf + n, len - n, "\\%c", p[0]);
        } else {
            buf[n++] = (char)p[0];
        }
        value += seq;
        used += seq;
    }
    if (n >= len)
        n = len - 1;
    buf[n] = '\0';
    if (quote && n + 2 < len) {
        buf[n++] = '"';
        buf[n] = '\0';
    }
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

    log_append_kv(f, sizeof f, "method", r->method);
    log_append_kv(f, sizeof f, "path", r->path);
    snprintf(num, sizeof num, "%d", r->status);
    log_append_kv(f, sizeof f, "status", num);
    log_append_kv(f, sizeof f, "node_run_id", r->node_run_id);
    log_append_kv(f, sizeof f, "node_type_id", r->node_type_id);
    log_append_kv(f, sizeof f, "sub", r->subject);
    log_append_kv(f, sizeof f, "state", r->state);
    log_append_kv(f, sizeof f, "error", r->error_code);
    log_append_kv(f, sizeof f, "reason", r->reason);
    snprintf(num, sizeof num, "%.3f", (double)r->dur_us / 1000.0);
    log_append_kv(f, sizeof f, "dur_ms", num);
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
