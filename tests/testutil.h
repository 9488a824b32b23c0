/* testutil.h - small helpers shared by the CUnit test programs. */
#ifndef JARVIS_TESTUTIL_H
#define JARVIS_TESTUTIL_H

#include <stddef.h>

#include <CUnit/CUnit.h>
#include <json-c/json.h>

/* Registers the suites, runs them (basic mode, verbose) and returns the
 * process exit status: 0 when every assertion passed. */
int tu_main(CU_SuiteInfo *suites);

/* The whole file, NUL-terminated (caller frees), or NULL. */
char *tu_read_file(const char *path, size_t *len);

/* Removes dir and everything below it (a test's mkdtemp folder). Returns 0
 * or -1. */
int tu_remove_tree(const char *dir);

/* "<ARP_SPEC_DIR>/<rel>" in a static buffer. */
const char *tu_spec_path(const char *rel);

/* Parses JSON text (test fixtures, trusted); NULL on error. Caller puts. */
json_object *tu_json(const char *text);

/* 1 if `actual` equals the JSON text `expected` (order-insensitive). Prints
 * both on a mismatch. */
int tu_json_equal(json_object *actual, const char *expected);

#define TU_ASSERT_JSON(actual, expected) CU_ASSERT_TRUE(tu_json_equal((actual), (expected)))

#endif
