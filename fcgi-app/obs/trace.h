/*
 * trace.h - the trace context a request brings with it: the W3C
 * `traceparent` header and request ids (nginx's $request_id, a client's
 * X-Request-Id). Each is checked here before it is logged or forwarded:
 * what fails a check is treated as absent.
 */
#ifndef JARVIS_TRACE_H
#define JARVIS_TRACE_H

/* A version-00 traceparent: "00-" 32 hex "-" 16 hex "-" 2 hex. */
#define TRACE_TRACEPARENT_LEN 55
/* Longest request id kept (nginx's own are 32 hex digits). */
#define TRACE_MAX_REQUEST_ID 128

/*
 * 1 if s is a traceparent of version 00 as W3C Trace Context (level 1)
 * defines it, whole: "00-<trace-id>-<parent-id>-<flags>", lower-case hex
 * digits only, a trace-id of 32 and a parent-id of 16 digits neither of
 * them all zeros, flags of 2 digits. Anything else (another version, upper
 * case, spaces, trailing bytes) is 0: never logged, never forwarded.
 */
int trace_traceparent_valid(const char *s);

/*
 * 1 if s is a request id safe to log and echo as it is: 1 to
 * TRACE_MAX_REQUEST_ID bytes of ASCII letters, digits and "-_.:+/=@"
 * (UUIDs, hex, ULIDs and base64 ids pass); else 0.
 */
int trace_request_id_valid(const char *s);

#endif
