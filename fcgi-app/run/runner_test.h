/*
 * runner_test.h - a hook of the runner for its tests only (and the
 * prototype runner.c defines it against). No product code includes it: in
 * a worker, SIGUSR2 on the watcher's signalfd does what it does.
 */
#ifndef JARVIS_RUNNER_TEST_H
#define JARVIS_RUNNER_TEST_H

/* Wakes the watcher to recheck every run for a cancel (what SIGUSR2 does;
 * safe to call from any thread). */
void rn_kick_all(void);

#endif
