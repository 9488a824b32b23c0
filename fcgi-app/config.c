/*
 * config.c - owns every knob of a worker and where it comes from.
 * Environment first (what systemd units and the local runner set), then
 * command-line flags; invalid values stop the worker at start.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage[] =
    "usage: jarvis-atomic-executor [options]\n"
    "\n"
    "A FastCGI responder serving the ARP spec/v1 Atomic Executor API. It accepts\n"
    "on the FastCGI socket passed as fd 0 (spawn-fcgi, multiwatch, systemd).\n"
    "\n"
    "  --max-body-bytes N   largest request body (default 1048576; env JARVIS_MAX_BODY_BYTES)\n"
    "  --log-level L        debug|info|warn|error (default info; env JARVIS_LOG_LEVEL)\n"
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
    snprintf(err, errlen, "unknown option --%s (see --help)", name);
    return -1;
}

int cfg_load(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    const char *env;
    int i;

    memset(c, 0, sizeof *c);
    c->max_body_bytes = CFG_DEFAULT_MAX_BODY;
    c->log_level = JARVIS_LOG_INFO;
    if ((env = getenv("JARVIS_MAX_BODY_BYTES")) != NULL && *env &&
        apply(c, "max-body-bytes", env, err, errlen) != 0)
        return -1;
    if ((env = getenv("JARVIS_LOG_LEVEL")) != NULL && *env &&
        apply(c, "log-level", env, err, errlen) != 0)
        return -1;
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
