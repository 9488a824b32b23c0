/*
 * main.c - the worker process: configuration, start-up, then the serving
 * threads (worker.c).
 *
 * The pool (spawn-fcgi with multiwatch, or systemd) runs several workers
 * and respawns any that die. On SIGTERM an idle worker exits at once and a
 * busy one finishes its requests first. --check-config (the systemd unit's
 * ExecStartPre) loads what a worker would and stops before serving.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "app.h"
#include "auth.h"
#include "buildinfo.h"
#include "config.h"
#include "crash.h"
#include "log.h"
#include "metrics.h"
#include "nodetypes.h"
#include "request.h"
#include "runner.h"
#include "runtable.h"
#include "worker.h"

/* Generated per binary from the linked packs (cmake/JarvisPacks.cmake). */
extern const jarvis_pack *const jarvis_linked_packs[];

/* --list-node-types: what a Node Registry needs to know about this build. */
static int list_node_types(void)
{
    char err[256];
    json_object *list;

    /* Compiling the registry checks the schemas the listing publishes. */
    static struct dsp_registry reg;
    if (dsp_registry_init(&reg, jarvis_linked_packs, err, sizeof err) != 0) {
        fprintf(stderr, "jarvis-atomic-executor: %s\n", err);
        return 1;
    }
    list = nt_list(jarvis_linked_packs);
    if (list == NULL) {
        fprintf(stderr, "jarvis-atomic-executor: a node's schema is not JSON\n");
        return 1;
    }
    puts(json_object_to_json_string_ext(list,
                                        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(list);
    return 0;
}

/*
 * --check-config: what app_init would refuse (the linked packs, the auth
 * settings and key sources, the run table), checked without starting a
 * thread, fetching keys, creating the run table or touching fd 0. One line
 * either way: "configuration ok: ..." (info, so not below JARVIS_LOG_LEVEL
 * info) and 0, or the "cannot start:" line a worker would log and 1.
 */
static int check_config(const struct config *cfg)
{
    static struct dsp_registry reg;
    static struct auth_settings auth;
    char err[256];

    if (dsp_registry_init(&reg, jarvis_linked_packs, err, sizeof err) != 0 ||
        auth_settings_load(&auth, err, sizeof err) != 0 ||
        rt_check(cfg->run_table, cfg->run_table_slots, err, sizeof err) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot start: %s", err);
        return 1;
    }
    log_msg(JARVIS_LOG_INFO,
            "configuration ok: %zu node types, auth %s, max body %zu bytes, execute slots %u, "
            "run table %s (%u slots)",
            reg.count, auth_mode_name(auth.mode), cfg->max_body_bytes, cfg->execute_slots,
            cfg->run_table, cfg->run_table_slots);
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    static struct app app;
    char err[256] = "";
    sigset_t stop;

    /* Before anything logs, and before any thread. */
    log_detect_journal();
    if (cfg_load(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "%sjarvis-atomic-executor: %s\n", log_journal_prefix(JARVIS_LOG_ERROR),
                err);
        return 2;
    }
    if (cfg.action == CFG_HELP) {
        fputs(cfg_usage(), stdout);
        return 0;
    }
    if (cfg.action == CFG_VERSION) {
        printf("jarvis-atomic-executor %s\n", jarvis_build_version);
        return 0;
    }
    if (cfg.action == CFG_LIST_NODE_TYPES)
        return list_node_types();
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_format);
    if (cfg.action == CFG_CHECK_CONFIG)
        return check_config(&cfg);
    /* Before any thread: curl_global_init is not thread-safe, every thread
     * must block the stop signals (sigwaitinfo takes them, never libfcgi's
     * handlers), and SIGUSR2 must be blocked everywhere for the runner's
     * signalfd. */
    wk_block_stop_signals(&stop);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || rn_init() != 0 || crash_init() != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot set up the worker: %s", strerror(errno));
        return 1;
    }
    if (app_init(&app, &cfg, jarvis_linked_packs, APP_RUN_TABLE | APP_AUTH, err, sizeof err) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot start: %s", err);
        return 1;
    }
    if (FCGX_Init() != 0 || FCGX_IsCGI()) {
        log_msg(JARVIS_LOG_ERROR, "fd 0 is not a FastCGI listening socket: run me under "
                                  "spawn-fcgi or systemd (see README)");
        return 1;
    }
    log_msg(JARVIS_LOG_INFO,
            "worker ready: version %s, %zu node types, max body %zu bytes, timeout %gs, "
            "execute slots %u, max concurrency %u, run table %s (%u slots)",
            jarvis_build_version, app.reg.count, cfg.max_body_bytes, cfg.default_timeout_secs,
            cfg.execute_slots, cfg.max_concurrency, cfg.run_table, cfg.run_table_slots);
    mx_worker_start(&app.mx); /* counted as started; see metrics.c for deaths */
    wk_serve(&app);
}
