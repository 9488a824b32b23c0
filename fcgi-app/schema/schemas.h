/*
 * schemas.h - the ARP spec/v1 schemas this service reads or writes, as
 * validator tables. Each mirrors one file under schemas/ of the spec; the
 * test suite checks them against the spec's conformance vectors and files.
 */
#ifndef JARVIS_SCHEMAS_H
#define JARVIS_SCHEMAS_H

#include "validate.h"

extern const struct jv_schema sch_extensions;             /* common/extensions */
extern const struct jv_schema sch_resource_ref;           /* common/resource_ref */
extern const struct jv_schema sch_error_detail;           /* common/error_detail */
extern const struct jv_schema sch_error_envelope;         /* common/error */
extern const struct jv_schema sch_health;                 /* common/health */
extern const struct jv_schema sch_version_info;           /* common/version_info */
extern const struct jv_schema sch_node_type_ref;          /* core/node_type_ref */
extern const struct jv_schema sch_run_context;            /* core/run_context */
extern const struct jv_schema sch_constraint_envelope;    /* core/constraint_envelope */
extern const struct jv_schema sch_atomic_execute_request; /* atomic_executor/... */
extern const struct jv_schema sch_atomic_execute_result;

#endif
