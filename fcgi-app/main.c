/*
 * main.c - the worker process: configuration, signals, the accept loop.
 *
 * One worker serves one request at a time; the pool (spawn-fcgi with
 * multiwatch, or systemd) runs several and respawns any that die. On SIGTERM
 * an idle worker exits at once and a busy one finishes its request first.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "buildinfo.h"
#include "config.h"
#include "log.h"
#include "nodetypes.h"
#include "request.h"
#include "runner.h"
#include "timefmt.h"

/* Generated per binary from the linked packs (cmake/JarvisPacks.cmake). */
extern const jarvis_pack *const jarvis_linked_packs[];

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t idle;

static void on_stop(int sig)
{
    (void)sig;
    /* Blocked in accept: nothing is in flight, leave now. */
    if (idle)
        _exit(0);
    stop_requested = 1;
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop; /* no SA_RESTART: accept must return EINTR */
    /* USR1 is multiwatch's "stop gracefully"; libfcgi also claims it, and
     * its handler would only make accept() fail with EINTR forever. */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
        sigaction(SIGHUP, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
        return -1;
    /* A client that went away is a failed write, not a dead worker. */
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* Returns 1 when the worker must end (a handler it could not stop). */
static int serve_one(struct app *app, FCGX_Request *fr)
{
    struct http_req req;
    struct exchange x;
    int64_t t0 = ts_mono_us();

    req_from_fcgi(fr, &req);
    app_handle(app, &req, &x);
    if (resp_emit(&x.resp, x.head_only, req_fcgi_write, fr->out) != 0)
        log_msg(JARVIS_LOG_WARN, "client went away before the answer was written");
    FCGX_Finish_r(fr);
    x.log.dur_us = ts_mono_us() - t0;
    log_request(&x.log);
    if (x.exit_after) {
        /* The handler thread still uses the request: free nothing, just go;
         * the pool (multiwatch, systemd) starts a fresh worker. */
        log_msg(JARVIS_LOG_ERROR, "abandoning a handler that would not stop; worker exits");
        return 1;
    }
    app_exchange_cleanup(&x);
    return 0;
}

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

int main(int argc, char **argv)
{
    static struct config cfg;
    static struct app app;
    FCGX_Request fr;
    char err[256] = "";

    if (cfg_load(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "jarvis-atomic-executor: %s\n", err);
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
    if (app_init(&app, &cfg, jarvis_linked_packs, APP_RUN_TABLE | APP_AUTH, err, sizeof err) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot start: %s", err);
        return 1;
    }
    if (FCGX_Init() != 0 || FCGX_IsCGI()) {
        log_msg(JARVIS_LOG_ERROR, "fd 0 is not a FastCGI listening socket: run me under "
                                  "spawn-fcgi or systemd (see README)");
        return 1;
    }
    if (install_signals() != 0 || rn_init() != 0 ||
        FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot set up the worker: %s", strerror(errno));
        return 1;
    }
    log_msg(JARVIS_LOG_INFO,
            "worker ready: version %s, %zu node types, max body %zu bytes, timeout %gs, "
            "max concurrency %u, run table %s (%u slots)",
            jarvis_build_version, app.reg.count, cfg.max_body_bytes, cfg.default_timeout_secs,
            cfg.max_concurrency, cfg.run_table, cfg.run_table_slots);
    while (!stop_requested) {
        int rc;

        idle = 1;
        if (stop_requested)
            break;
        rc = FCGX_Accept_r(&fr);
        idle = 0;
        if (rc < 0) {
            if (stop_requested || rc == -EINTR || errno == EINTR)
                continue;
            log_msg(JARVIS_LOG_ERROR, "accept failed: %d", rc);
            break;
        }
        if (serve_one(&app, &fr) != 0)
            _exit(3);
    }
    log_msg(JARVIS_LOG_INFO, "worker stopping");
    app_cleanup(&app);
    return 0;
}
