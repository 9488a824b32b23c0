/*
 * log.c - owns the format of everything the worker writes to stderr.
 *
 * logfmt-style lines ("time level pid key=value ...") because both humans and
 * log shippers read them; values from the network are escaped here, so that a
 * hostile node_run_id cannot forge lines, and bounded so that a line always
 * fits the single write(2) that keeps concurrent workers from interleaving.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "timefmt.h"

static jarvis_log_level min_level = JARVIS_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(jarvis_log_level level)
{
    min_level = level;
}

static int needs_quotes(const char *v)
{
    if (*v == '\0')
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
    for (; *value && n + 8 < len; value++, used++) {
        unsigned char c = (unsigned char)*value;
        if (used == LOG_MAX_VALUE) {
            n += (size_t)snprintf(buf + n, len - n, "...");
            break;
        }
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(buf + n, len - n, "\\%c", c);
        else if (c < ' ' || c == 0x7f)
            n += (size_t)snprintf(buf + n, len - n, "\\x%02x", c);
        else
            buf[n++] = (char)c;
    }
    if (n >= len)
        n = len - 1;
    buf[n] = '\0';
    if (quote && n + 2 < len) {
        buf[n++] = '"';
        buf[n] = '\0';
    }
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
    n = snprintf(line, sizeof line, "%s %s pid=%ld%s\n", ts, level_names[level], (long)getpid(),
                 fields);
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
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_append_kv(f, sizeof f, "msg", msg);
    log_emit(level, f);
}
