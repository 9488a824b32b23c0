/* log.h - the service log: one line per request, plus error lines, on stderr. */
#ifndef JARVIS_LOG_H
#define JARVIS_LOG_H

#include <stdint.h>

#include "jarvis/node.h"

/* One line is written with one write(2) so that workers never interleave. */
#define LOG_MAX_LINE 4096
/* A logged value longer than this is cut and marked with "...". */
#define LOG_MAX_VALUE 512

/* What one request leaves in the log. Every pointer may be NULL. */
struct log_request {
    const char *method;
    const char *path;
    int status;
    const char *node_run_id;
    const char *node_type_id;
    const char *subject;    /* the authenticated subject */
    const char *state;      /* AtomicExecuteResult state, for executes */
    const char *error_code; /* the code the client saw */
    const char *reason;     /* why, for the operator only */
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

/* Writes the request line. */
void log_request(const struct log_request *r);

/* Writes a free-form line at `level`; fmt output is escaped and bounded. */
void log_msg(jarvis_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Appends ` key=value` to buf (of size len, holding a NUL-terminated line),
 * quoting and escaping value where needed. Used by log_request and by the
 * handler context so plugin lines share the format.
 */
void log_append_kv(char *buf, size_t len, const char *key, const char *value);

/* Writes a finished line (adds the newline) with the time, level and pid. */
void log_emit(jarvis_log_level level, const char *fields);

#endif
