/*
 * crash.c - owns what the worker does on a fatal signal (crash.h).
 *
 * A handler that follows a bad pointer takes its whole worker down: nginx
 * answers 502 for each request the worker held, and multiwatch (or
 * systemd) starts another. The pool's own log says only that a child died;
 * the line written here says which signal, and which run the crashing
 * thread was executing, so the node at fault can be found.
 *
 * The handler runs on the thread that faulted (a fault, or raise) and may
 * interrupt anything, so it only does what is async-signal-safe: it reads
 * the fields its thread prepared when the run began (escaped by log.c then,
 * in ordinary context, in the log's format), stamps the time (timefmt.c:
 * arithmetic only), writes the line with one write(2) (logfmt or JSON, as
 * log_emit would), puts back the signal's previous action
 * and hands the signal to it: a fault re-runs the faulting instruction when
 * the handler returns; a signal from raise or kill is raised again. The
 * previous action is the default (the process dies of the signal), or
 * under AddressSanitizer ASan's handler, which then prints its report.
 *
 * A stack overflow leaves the handler no stack unless the thread has an
 * alternate one (ASan gives each thread one; release builds set none):
 * then the kernel kills the process with no line, and the pool still
 * replaces it.
 */
#define _GNU_SOURCE
#include "crash.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "timefmt.h"

/* The escaped node_run_id (at most DSP_MAX_ID bytes, each at worst a
 * 6-byte JSON \u00XX) and node_type_id fields, with room to spare. */
#define CRASH_MAX_FIELDS 2048
/* The rest of the line: time, level, pid, the message. */
#define CRASH_MAX_HEAD 256

static const struct {
    int sig;
    const char *name;
} fatal[] = {
    {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGILL, "SIGILL"},
    {SIGFPE, "SIGFPE"},   {SIGABRT, "SIGABRT"},
};
#define NFATAL (sizeof fatal / sizeof fatal[0])

static struct sigaction previous[NFATAL];
static atomic_int installed;

/* The calling thread's run, as log fields; valid while in_run is 1. */
static _Thread_local char run_fields[CRASH_MAX_FIELDS];
static _Thread_local volatile sig_atomic_t in_run;

static char *put_str(char *p, const char *end, const char *s)
{
    while (*s != '\0' && p < end)
        *p++ = *s++;
    return p;
}

static char *put_uint(char *p, const char *end, unsigned long v)
{
    char digits[24];
    int n = 0;

    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0 && p < end)
        *p++ = digits[--n];
    return p;
}

/* The line's head as log_emit writes it, in the log's format, through the
 * message (left open in JSON: the run's fields and "}" follow). */
static char *put_head(char *p, const char *end, const char *ts, int sig, const char *name)
{
    int json = log_get_format() == LOG_FORMAT_JSON;

    p = put_str(p, end, log_journal_prefix(JARVIS_LOG_ERROR));
    p = put_str(p, end, json ? "{\"time\":\"" : "");
    p = put_str(p, end, ts);
    p = put_str(p, end, json ? "\",\"level\":\"ERROR\",\"pid\":" : " ERROR pid=");
    p = put_uint(p, end, (unsigned long)getpid());
    p = put_str(p, end, json ? ",\"msg\":\"fatal signal " : " msg=\"fatal signal ");
    p = put_uint(p, end, (unsigned long)sig);
    p = put_str(p, end, " (");
    p = put_str(p, end, name);
    return put_str(p, end,
                   in_run ? ") while running a node; the worker dies\""
                          : ") outside any run; the worker dies\"");
}

static void on_fatal(int sig, siginfo_t *si, void *uctx)
{
    char line[CRASH_MAX_HEAD + CRASH_MAX_FIELDS], ts[TS_RFC3339_LEN];
    char *p = line, *end = line + sizeof line - 2; /* room for "}" and the newline */
    int saved = errno;
    ssize_t written;
    size_t i;

    (void)uctx;
    /* Only the signals of fatal[] are routed here. */
    for (i = 0; i < NFATAL - 1 && fatal[i].sig != sig; i++)
        ;
    p = put_head(p, end, ts_format_rfc3339(ts_now_ms(), ts, sizeof ts) == 0 ? ts : "-", sig,
                 fatal[i].name);
    if (in_run)
        p = put_str(p, end, run_fields);
    if (log_get_format() == LOG_FORMAT_JSON)
        *p++ = '}';
    *p++ = '\n';
    /* A line that cannot be written has nowhere to go: the signal goes on. */
    written = write(STDERR_FILENO, line, (size_t)(p - line));
    (void)written;
    sigaction(sig, &previous[i], NULL);
    /* si_code <= 0: sent (raise, kill), not a fault that recurs on return.
     * The signal is blocked in here: it arrives once the handler returns. */
    if (si == NULL || si->si_code <= 0)
        raise(sig);
    errno = saved;
}

int crash_init(void)
{
    struct sigaction sa;
    size_t i;

    /* Twice would make on_fatal its own previous action. */
    if (atomic_exchange(&installed, 1))
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < NFATAL; i++)
        if (sigaction(fatal[i].sig, &sa, &previous[i]) != 0)
            return -1;
    return 0;
}

void crash_run_enter(const char *node_run_id, const char *node_type_id)
{
    /* Never read half-written: in_run is 0 while the fields change. */
    in_run = 0;
    atomic_signal_fence(memory_order_seq_cst);
    run_fields[0] = '\0';
    log_append_kv(run_fields, sizeof run_fields, "node_run_id", node_run_id);
    log_append_kv(run_fields, sizeof run_fields, "node_type_id", node_type_id);
    atomic_signal_fence(memory_order_seq_cst);
    in_run = 1;
}

void crash_run_leave(void)
{
    in_run = 0;
}
