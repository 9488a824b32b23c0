/* log.h - the service log: one line per request, plus error lines, on
 * stderr, as logfmt or as JSON (one object per line). */
#ifndef JARVIS_LOG_H
#define JARVIS_LOG_H

#include <stdint.h>

#include "jarvis/node.h"

/* One line is written with one write(2) so that workers never interleave. */
#define LOG_MAX_LINE 4096
/* A logged value longer than this is cut and marked with "...". */
#define LOG_MAX_VALUE 512

/* How lines are written (JARVIS_LOG_FORMAT, --log-format). */
enum log_format {
    LOG_FORMAT_LOGFMT = 0, /* time LEVEL pid=N key=value ... */
    LOG_FORMAT_JSON        /* {"time":...,"level":...,"pid":N,"key":"value",...} */
};

/* What one request leaves in the log. Every pointer may be NULL (then the
 * field is left out). */
struct log_request {
    const char *request_id; /* nginx's $request_id (the REQUEST_ID param) */
    const char *method;
    const char *path;
    int status;
    const char *run_id;
    const char *node_run_id;
    const char *node_type_id;
    const char *trace_id;          /* run_context.trace.trace_id */
    const char *traceparent;       /* the request's traceparent header, valid */
    const char *client_request_id; /* the client's X-Request-Id header, valid */
    const char *subject;           /* the authenticated subject */
    const char *state;             /* AtomicExecuteResult state, for executes */
    const char *error_code;        /* the code the client saw */
    const char *reason;            /* why, for the operator only */
    int64_t dur_us;
};

/*
 * Looks whether stderr is the systemd journal (JOURNAL_STREAM matches its
 * device and inode); from then on every line starts with its sd-daemon
 * priority, "<3>" for errors to "<7>" for debug. Call once at start, before
 * any thread logs (and again after redirecting stderr).
 */
void log_detect_journal(void);

/* The priority prefix of a line of `level`: "<N>" when stderr is the
 * journal, else "". For lines written without log_emit. */
const char *log_journal_prefix(jarvis_log_level level);

/* Minimum level written; messages below it are dropped. */
void log_set_level(jarvis_log_level level);

/* The format of every line from now on. Call at start, before any thread
 * logs: fields built before a change belong to the old format. */
void log_set_format(enum log_format format);

/* The current format. */
enum log_format log_get_format(void);

/* "logfmt" or "json" -> *out (case-insensitive). 0, or -1 for another name. */
int log_format_parse(const char *name, enum log_format *out);

/* Writes the request line. */
void log_request(const struct log_request *r);

/* Writes a free-form line at `level`; fmt output is escaped and bounded. */
void log_msg(jarvis_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Appends one field to buf (of size len, holding NUL-terminated fields):
 * ` key=value` in logfmt, quoting and escaping value where needed, or
 * `,"key":"value"` in JSON. A field is appended whole or not at all, so
 * the fields are always well-formed; a value too long for LOG_MAX_VALUE
 * or for buf is cut on a character boundary and ends with "...". key is a
 * constant of the code (never escaped); value NULL appends nothing. Used
 * by log_request and by the handler context so plugin lines share the
 * format.
 */
void log_append_kv(char *buf, size_t len, const char *key, const char *value);

/* Writes a finished line (adds the newline) with the time, level and pid
 * before the fields that log_append_kv made. */
void log_emit(jarvis_log_level level, const char *fields);

#endif
