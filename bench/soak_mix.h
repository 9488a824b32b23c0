/*
 * soak_mix.h - the request types of the soak (bench/soak) and what each must
 * answer: a table of templates, their weights in the mix, and the statuses
 * and body markers that count as expected.
 *
 * A type is one request, or two (a *main* and a *side* request sent
 * side_delay_ms later on another connection: a cancel of the main run, or
 * the same node_run_id again). Templates hold {id} (the scenario's unique
 * node_run_id) and {port} (the loopback fetch server's port).
 */
#ifndef JARVIS_SOAK_MIX_H
#define JARVIS_SOAK_MIX_H

#include <stddef.h>

#define SM_MAX_STATUSES 3
#define SM_MAX_NEEDLES 2
#define SM_BODY_MAX 1024 /* an expanded template body */
#define SM_PATH_MAX 256  /* an expanded path */

/* How far over the body limit a padded body goes. */
enum sm_pad {
    SM_PAD_NONE = 0,
    SM_PAD_APP,  /* over JARVIS_MAX_BODY_BYTES: the worker answers 413 */
    SM_PAD_NGINX /* over twice that, nginx's client_max_body_size: nginx answers 413 */
};

struct sm_part {
    const char *method; /* NULL: the type has no such part */
    const char *path;
    const char *body;                    /* NULL: no body */
    int statuses[SM_MAX_STATUSES];       /* expected; 0 ends the list */
    const char *needles[SM_MAX_NEEDLES]; /* a 2xx-4xx body holds one of these; NULL ends */
};

struct sm_type {
    const char *name;
    unsigned weight; /* share of the scenarios started */
    int paced;       /* leaves a cancel tombstone for 60 s: started at the cancel rate */
    enum sm_pad pad; /* the main body is padding of that size instead */
    int pair_409;    /* the two parts share one id: one of them should be 409 */
    unsigned side_delay_ms;
    struct sm_part main, side;
};

/* The table, and its length. */
extern const struct sm_type sm_types[];
extern const size_t sm_ntypes;

/* Expands tmpl into out (outlen bytes) with {id} and {port}: its length,
 * or -1 when it does not fit. */
int sm_expand(const char *tmpl, const char *id, int port, char *out, size_t outlen);

/* 1 if status is one of part's expected statuses. */
int sm_status_expected(const struct sm_part *part, int status);

/* The index of the first needle of part found in body, -1 when none is,
 * or SM_MAX_NEEDLES when part names none (any body). */
int sm_needle_found(const struct sm_part *part, const char *body, size_t len);

#endif
