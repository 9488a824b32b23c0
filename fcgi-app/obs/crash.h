/*
 * crash.h - the worker's last words on a fatal signal (SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT): one ERROR log line naming the signal and the
 * run the crashing thread was executing, then the signal's previous
 * action, so the process still dies of it and the pool replaces it.
 */
#ifndef JARVIS_CRASH_H
#define JARVIS_CRASH_H

/* Installs the handler for the fatal signals, keeping each one's previous
 * action (the default, or a sanitizer's) to hand the signal on to. Call
 * once, before the serving threads start. 0, or -1 (errno set). */
int crash_init(void);

/* Marks the calling thread as executing node_run_id (a run of
 * node_type_id) until crash_run_leave: a fatal signal on this thread names
 * both. The values are escaped and copied now, so they need not outlive
 * the call. */
void crash_run_enter(const char *node_run_id, const char *node_type_id);

/* The calling thread executes no run any more. */
void crash_run_leave(void);

#endif
