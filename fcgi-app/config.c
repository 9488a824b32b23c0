/*
 * config.c - owns every knob of a worker and where it comes from.
 * Environment first (what systemd units and the local runner set), then
 * command-line flags; invalid values stop the worker at start.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "runtable.h"

static const char usage[] =
    "usage: jarvis-atomic-executor [options]\n"
    "\n"
    "A FastCGI responder serving the ARP spec/v1 Atomic Executor API. It accepts\n"
    "on the FastCGI socket passed as fd 0 (spawn-fcgi, multiwatch, systemd).\n"
    "\n"
    "  --max-body-bytes N   largest request body (default 1048576; env JARVIS_MAX_BODY_BYTES)\n"
    "  --log-level L        debug|info|warn|error (default info; env JARVIS_LOG_LEVEL)\n"
    "  --log-format F       logfmt|json: key=value lines or one JSON object a line\n"
    "                       (default logfmt; env JARVIS_LOG_FORMAT)\n"
    "  --default-timeout-secs S  time limit of a run, 0 none (env JARVIS_DEFAULT_TIMEOUT_SECS)\n"
    "  --max-concurrency N  runs at once across the pool, 0 no cap (env JARVIS_MAX_CONCURRENCY)\n"
    "  --run-table PATH     the pool's shared run table file (env JARVIS_RUN_TABLE,\n"
    "                       default /dev/shm/jarvis-atomic-executor-<uid>/runtable)\n"
    "  --run-table-slots N  runs in flight plus queued, pool-wide (default 1024;\n"
    "                       env JARVIS_RUN_TABLE_SLOTS)\n"
    "  --execute-slots N    runs executing at once across the pool; more are accepted\n"
    "                       and queue (default: JARVIS_WORKERS, else the number of\n"
    "                       CPUs; env JARVIS_EXECUTE_SLOTS)\n"
    "  --check-config       load and check the whole configuration as a worker would\n"
    "                       (settings, node types, auth, run table), start nothing,\n"
    "                       and exit: 0 when a worker would start, else 1 with the reason\n"
    "  --list-node-types    print the linked node types as spec/v1 NodeType JSON and exit\n"
    "  --version            print the version and exit\n"
    "  --help               print this text and exit\n";

const char *cfg_usage(void)
{
    return usage;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < CFG_MIN_MAX_BODY || v > CFG_MAX_MAX_BODY)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_level(const char *s, jarvis_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    int i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (jarvis_log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Python's float()/int() of the reference, after strip(): what they reject,
 * and anything not above zero, means "none" (returns 0). */
static double reference_number(const char *s, int integer)
{
    char buf[64], *end;
    size_t n;
    double v;

    while (isspace((unsigned char)*s))
        s++;
    snprintf(buf, sizeof buf, "%s", s);
    for (n = strlen(buf); n > 0 && isspace((unsigned char)buf[n - 1]); n--)
        buf[n - 1] = '\0';
    if (buf[0] == '\0')
        return 0;
    errno = 0;
    v = integer ? (double)strtoll(buf, &end, 10) : strtod(buf, &end);
    if (*end != '\0' || errno != 0 || isnan(v) || v <= 0)
        return 0;
    return v;
}

static int apply(struct config *c, const char *name, const char *value, char *err, size_t errlen)
{
    if (strcmp(name, "max-body-bytes") == 0) {
        if (parse_size(value, &c->max_body_bytes) == 0)
            return 0;
        snprintf(err, errlen, "max body bytes must be an integer from %d to %d, not '%s'",
                 CFG_MIN_MAX_BODY, CFG_MAX_MAX_BODY, value ? value : "");
        return -1;
    }
    if (strcmp(name, "log-level") == 0) {
        if (value != NULL && parse_level(value, &c->log_level) == 0)
            return 0;
        snprintf(err, errlen, "log level must be debug, info, warn or error, not '%s'",
                 value ? value : "");
        return -1;
    }
    if (strcmp(name, "log-format") == 0) {
        if (value != NULL && log_format_parse(value, &c->log_format) == 0)
            return 0;
        snprintf(err, errlen, "log format must be logfmt or json, not '%s'", value ? value : "");
        return -1;
    }
    if (strcmp(name, "default-timeout-secs") == 0) {
        double v = value ? reference_number(value, 0) : 0;
        /* inf passes float() in the reference and means no limit */
        c->default_timeout_secs = isinf(v) ? 0 : v;
        return 0;
    }
    if (strcmp(name, "max-concurrency") == 0) {
        double v = value ? reference_number(value, 1) : 0;
        c->max_concurrency = v > RT_MAX_SLOTS ? RT_MAX_SLOTS : (unsigned)v;
        return 0;
    }
    if (strcmp(name, "run-table") == 0) {
        if (value != NULL && *value == '/' && strlen(value) < sizeof c->run_table) {
            memcpy(c->run_table, value, strlen(value) + 1);
            return 0;
        }
        snprintf(err, errlen, "run table must be an absolute path under %d bytes", CFG_MAX_PATH);
        return -1;
    }
    if (strcmp(name, "run-table-slots") == 0) {
        char *end;
        unsigned long v = value ? strtoul(value, &end, 10) : 0;
        if (value != NULL && *value && *end == '\0' && v >= RT_MIN_SLOTS && v <= RT_MAX_SLOTS) {
            c->run_table_slots = (unsigned)v;
            return 0;
        }
        snprintf(err, errlen, "run table slots must be an integer from %d to %d, not '%s'",
                 RT_MIN_SLOTS, RT_MAX_SLOTS, value ? value : "");
        return -1;
    }
    if (strcmp(name, "execute-slots") == 0 || strcmp(name, "workers") == 0) {
        char *end;
        unsigned long v = value ? strtoul(value, &end, 10) : 0;
        if (value != NULL && *value && *end == '\0' && v >= 1 && v <= RT_MAX_SLOTS) {
            if (name[0] == 'e' || c->execute_slots == 0)
                c->execute_slots = (unsigned)v;
            return 0;
        }
        snprintf(err, errlen, "%s must be an integer from 1 to %d, not '%s'",
                 name[0] == 'e' ? "execute slots" : "JARVIS_WORKERS", RT_MAX_SLOTS,
                 value ? value : "");
        return -1;
    }
    snprintf(err, errlen, "unknown option --%s (see --help)", name);
    return -1;
}

static const struct {
    const char *env;
    const char *option;
} env_options[] = {
    {"JARVIS_MAX_BODY_BYTES", "max-body-bytes"},
    {"JARVIS_LOG_LEVEL", "log-level"},
    {"JARVIS_LOG_FORMAT", "log-format"},
    {"JARVIS_DEFAULT_TIMEOUT_SECS", "default-timeout-secs"},
    {"JARVIS_MAX_CONCURRENCY", "max-concurrency"},
    {"JARVIS_RUN_TABLE", "run-table"},
    {"JARVIS_RUN_TABLE_SLOTS", "run-table-slots"},
    /* the pool's size: the default of execute slots (one run per worker) */
    {"JARVIS_EXECUTE_SLOTS", "execute-slots"},
    {"JARVIS_WORKERS", "workers"},
};

int cfg_load(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    const char *env;
    char bad[64];
    int i;

    size_t e;

    memset(c, 0, sizeof *c);
    c->max_body_bytes = CFG_DEFAULT_MAX_BODY;
    c->log_level = JARVIS_LOG_INFO;
    snprintf(c->run_table, sizeof c->run_table, CFG_DEFAULT_RUN_TABLE, (long)geteuid());
    c->run_table_slots = RT_DEFAULT_SLOTS;
    for (e = 0; e < sizeof env_options / sizeof env_options[0]; e++)
        if ((env = getenv(env_options[e].env)) != NULL && *env &&
            apply(c, env_options[e].option, env, err, errlen) != 0)
            return -1;
    /* libfcgi's allowlist of web servers on TCP, which the worker's own
     * accept judges (worker.c): read here, so a value it cannot read
     * stops the worker and --check-config like any other. */
    if (peers_parse(getenv("FCGI_WEB_SERVER_ADDRS"), &c->web_servers, bad, sizeof bad) != 0) {
        snprintf(err, errlen,
                 "FCGI_WEB_SERVER_ADDRS: cannot read '%s' (comma-separated IPv4 or IPv6 "
                 "addresses, at most %d of each)",
                 bad, PEERS_MAX_ADDRS);
        return -1;
    }
    if (c->execute_slots == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->execute_slots = n >= 1 && n <= RT_MAX_SLOTS ? (unsigned)n : 1;
    }
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq;
        char name[64];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            c->action = CFG_HELP;
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            c->action = CFG_VERSION;
            return 0;
        }
        if (strcmp(arg, "--list-node-types") == 0) {
            c->action = CFG_LIST_NODE_TYPES;
            return 0;
        }
        /* The other flags still apply: they are what is checked. */
        if (strcmp(arg, "--check-config") == 0) {
            c->action = CFG_CHECK_CONFIG;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return -1;
        }
        /* --name=value or --name value */
        eq = strchr(arg, '=');
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg - 2) : (int)strlen(arg + 2),
                 arg + 2);
        if (apply(c, name, eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL), err, errlen) != 0)
            return -1;
    }
    return 0;
}
