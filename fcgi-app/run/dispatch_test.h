/*
 * dispatch_test.h - what dispatch computes inside dsp_execute, exposed for
 * its tests only (and the prototype dispatch.c defines it against). No
 * product code includes it.
 */
#ifndef JARVIS_DISPATCH_TEST_H
#define JARVIS_DISPATCH_TEST_H

#include <stdint.h>

#include "dispatch.h"

/* The run's deadline in wall-clock ms (0: none): the default timeout and
 * constraints.budgets.max_wall_time_ms counted from started_ms, the
 * smaller wins. */
int64_t dsp_deadline(const struct dsp_limits *lim, const struct exec_req *req, int64_t started_ms);

#endif
