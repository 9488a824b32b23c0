/*
 * fuzz_util.h - what the libFuzzer targets share: a failed invariant stops
 * the run (a crash libFuzzer records), and the checks every answer passes
 * (valid UTF-8, strict JSON that re-parses to the same value).
 */
#ifndef JARVIS_FUZZ_UTIL_H
#define JARVIS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "response.h"

/* Re-parses get this much room on top of the text's own size, so the
 * body's tree budget (BODY_TREE_FACTOR) never refuses our own output. */
#define FZ_REPARSE_SLACK (1024 * 1024)

/* The libFuzzer entry point every target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: says which and where, then traps (libFuzzer keeps the
 * input as crash-<sha1>). */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fz_fail(__FILE__, __LINE__, #cond);                                                    \
    } while (0)

void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* data[0..size) as a new NUL-terminated string (caller frees). */
char *fz_strndup(const uint8_t *data, size_t size);

/* Checks that v serializes (as response.c writes it) to valid UTF-8 that
 * the strict body parser reads back to an equal value. */
void fz_check_json(json_object *v);

/* Checks an answer: a known status, a JSON body per fz_check_json (an
 * ErrorEnvelope for 4xx/5xx) and header values without control
 * characters. */
void fz_check_resp(const struct resp *r);

/* A request body from memory: struct http_req's reader (read_arg is a
 * struct fz_body). */
struct fz_body {
    const uint8_t *data;
    size_t len, pos;
};
long fz_body_read(void *arg, char *buf, size_t len);

/* Silences the service log below errors (the targets log every refusal). */
void fz_quiet(void);

#endif
