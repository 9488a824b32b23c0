/* config.h - the process configuration: flags and JARVIS_* environment. */
#ifndef JARVIS_CONFIG_H
#define JARVIS_CONFIG_H

#include <stddef.h>

#include "jarvis/node.h"
#include "log.h"
#include "peers.h"

#define CFG_DEFAULT_MAX_BODY (1024 * 1024)
/* The default run table, in a folder of its own that only the service's
 * uid can enter (created 0700 by the first worker): printf format, uid. */
#define CFG_DEFAULT_RUN_TABLE "/dev/shm/jarvis-atomic-executor-%ld/runtable"
#define CFG_MAX_PATH 1024
#define CFG_MIN_MAX_BODY 1024
#define CFG_MAX_MAX_BODY (64 * 1024 * 1024)

enum cfg_action {
    CFG_SERVE = 0,
    CFG_HELP,
    CFG_VERSION,
    CFG_LIST_NODE_TYPES,
    CFG_CHECK_CONFIG /* load everything a worker would, serve nothing */
};

struct config {
    enum cfg_action action;
    size_t max_body_bytes;      /* JARVIS_MAX_BODY_BYTES, --max-body-bytes */
    jarvis_log_level log_level; /* JARVIS_LOG_LEVEL, --log-level */
    enum log_format log_format; /* JARVIS_LOG_FORMAT, --log-format */
    /* As the reference: unset, invalid or <= 0 means none / no cap. */
    double default_timeout_secs;  /* JARVIS_DEFAULT_TIMEOUT_SECS, 0 = none */
    unsigned max_concurrency;     /* JARVIS_MAX_CONCURRENCY, pool-wide, 0 = none */
    char run_table[CFG_MAX_PATH]; /* JARVIS_RUN_TABLE, shared by the pool */
    unsigned run_table_slots;     /* JARVIS_RUN_TABLE_SLOTS */
    /* Runs executing at once pool-wide: JARVIS_EXECUTE_SLOTS, --execute-slots;
     * default JARVIS_WORKERS (one run per worker, as before), else the CPUs. */
    unsigned execute_slots;
    struct peers web_servers; /* FCGI_WEB_SERVER_ADDRS: who may connect over TCP */
};

/*
 * Fills c from the environment, then from argv (flags win). Returns 0, or -1
 * with a one-line message in err for a bad flag or value: a worker refuses
 * to start rather than run with a setting it did not understand.
 */
int cfg_load(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* The --help text. */
const char *cfg_usage(void);

#endif
