/*
 * pyjson.h - JSON text exactly as Python's json.dumps(value, sort_keys=True)
 * writes it (", " and ": " separators, ASCII-only escapes, float repr), so
 * that jarvis.core.echo returns byte-for-byte what the reference returns.
 */
#ifndef JARVIS_CORE_PYJSON_H
#define JARVIS_CORE_PYJSON_H

#include <stddef.h>

#include <json-c/json.h>

/* Shortest repr of a finite double, as Python's repr(float) ("1e-05", "0.1",
 * "100.0", "1e+16"). Returns 0, or -1 if it does not fit or is not finite. */
int pyjson_float_repr(double d, char *buf, size_t len);

/* A new NUL-terminated string (caller frees) holding v serialized, or NULL
 * when out of memory or v holds a non-finite number. */
char *pyjson_dumps_sorted(json_object *v);

#endif
