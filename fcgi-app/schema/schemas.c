/*
 * schemas.c - ARP spec/v1 schemas as const tables (see validate.h).
 *
 * Transcribed from third_party/arp-spec-v1/schemas; keep the property order
 * of the files, since it is the order in which missing fields are reported.
 * tests/unit/test_schemas.c compares each table's property names with its file.
 */
#include "schemas.h"

#include <stddef.h>

#define END                                                                                        \
    {                                                                                              \
        NULL, NULL, 0                                                                              \
    }

static const struct jv_schema t_string = {.kind = JV_STRING};
/* The request's identifiers: strings without NUL (see jv_schema.no_nul).
 * Lone surrogates are refused earlier, by the JSON lexer (body.c). */
static const struct jv_schema t_id = {.kind = JV_STRING, .no_nul = 1};
static const struct jv_schema t_bool = {.kind = JV_BOOLEAN};
static const struct jv_schema t_free_object = {.kind = JV_OBJECT, .additional = 1};
static const struct jv_schema t_date_time = {.kind = JV_STRING, .format = JV_FMT_DATE_TIME};
static const struct jv_schema t_uri = {.kind = JV_STRING, .format = JV_FMT_URI};
static const struct jv_schema t_int_min0 = {.kind = JV_INTEGER, .has_minimum = 1, .minimum = 0};
static const struct jv_schema t_int_min1 = {.kind = JV_INTEGER, .has_minimum = 1, .minimum = 1};
static const struct jv_schema t_num_min0 = {.kind = JV_NUMBER, .has_minimum = 1, .minimum = 0};
static const struct jv_schema t_string_array = {.kind = JV_ARRAY, .items = &t_string};

const struct jv_schema sch_extensions = {
    .title = "Extensions", .kind = JV_OBJECT, .key_ok = jv_extension_key_ok};

static const struct jv_prop resource_ref_props[] = {{"type", &t_string, 1},
                                                    {"id", &t_string, 1},
                                                    {"uri", &t_uri, 0},
                                                    {"extensions", &sch_extensions, 0},
                                                    END};
const struct jv_schema sch_resource_ref = {
    .title = "ResourceRef", .kind = JV_OBJECT, .props = resource_ref_props};

/* Status (common/status) */
static const char *const status_enum[] = {"ok", "degraded", "down", NULL};
static const struct jv_schema t_status = {.kind = JV_STRING, .enum_values = status_enum};

static const struct jv_prop error_cause_props[] = {{"code", &t_string, 0},
                                                   {"message", &t_string, 1},
                                                   {"details", &t_free_object, 0},
                                                   {"extensions", &sch_extensions, 0},
                                                   END};
static const struct jv_schema t_error_cause = {
    .title = "ErrorCause", .kind = JV_OBJECT, .props = error_cause_props};

static const struct jv_prop error_detail_props[] = {{"code", &t_string, 1},
                                                    {"message", &t_string, 1},
                                                    {"details", &t_free_object, 0},
                                                    {"retryable", &t_bool, 0},
                                                    {"cause", &t_error_cause, 0},
                                                    {"extensions", &sch_extensions, 0},
                                                    END};
const struct jv_schema sch_error_detail = {
    .title = "Error", .kind = JV_OBJECT, .props = error_detail_props};

static const struct jv_prop error_envelope_props[] = {
    {"error", &sch_error_detail, 1}, {"extensions", &sch_extensions, 0}, END};
const struct jv_schema sch_error_envelope = {
    .title = "ErrorEnvelope", .kind = JV_OBJECT, .props = error_envelope_props};

static const struct jv_prop health_check_props[] = {{"name", &t_string, 1},
                                                    {"status", &t_status, 1},
                                                    {"message", &t_string, 0},
                                                    {"details", &t_free_object, 0},
                                                    END};
static const struct jv_schema t_health_check = {.kind = JV_OBJECT, .props = health_check_props};
static const struct jv_schema t_health_checks = {.kind = JV_ARRAY, .items = &t_health_check};
static const struct jv_prop health_props[] = {{"status", &t_status, 1},
                                              {"time", &t_date_time, 1},
                                              {"checks", &t_health_checks, 0},
                                              {"extensions", &sch_extensions, 0},
                                              END};
const struct jv_schema sch_health = {.title = "Health", .kind = JV_OBJECT, .props = health_props};

static const struct jv_prop build_props[] = {
    {"commit", &t_string, 0}, {"built_at", &t_date_time, 0}, {"dirty", &t_bool, 0}, END};
static const struct jv_schema t_build = {.kind = JV_OBJECT, .props = build_props};
static const struct jv_schema t_api_versions = {
    .kind = JV_ARRAY, .items = &t_string, .min_items = 1};
static const struct jv_prop version_info_props[] = {{"service_name", &t_string, 1},
                                                    {"service_version", &t_string, 1},
                                                    {"supported_api_versions", &t_api_versions, 1},
                                                    {"build", &t_build, 0},
                                                    {"extensions", &sch_extensions, 0},
                                                    END};
const struct jv_schema sch_version_info = {
    .title = "VersionInfo", .kind = JV_OBJECT, .props = version_info_props};

static const struct jv_prop node_type_ref_props[] = {
    {"node_type_id", &t_id, 1}, {"version", &t_string, 1}, {"extensions", &sch_extensions, 0}, END};
const struct jv_schema sch_node_type_ref = {
    .title = "NodeTypeRef", .kind = JV_OBJECT, .props = node_type_ref_props};

static const struct jv_prop trace_props[] = {
    {"trace_id", &t_string, 0}, {"span_id", &t_string, 0}, {"request_id", &t_string, 0}, END};
static const struct jv_schema t_trace = {.kind = JV_OBJECT, .props = trace_props};
static const struct jv_prop run_context_props[] = {
    {"tenant_id", &t_string, 0},        {"actor", &sch_resource_ref, 0},
    {"identity", &t_free_object, 0},    {"trace", &t_trace, 0},
    {"policy", &t_free_object, 0},      {"budgets", &t_free_object, 0},
    {"extensions", &sch_extensions, 0}, END};
const struct jv_schema sch_run_context = {
    .title = "RunContext", .kind = JV_OBJECT, .props = run_context_props};

static const struct jv_prop structural_props[] = {
    {"max_depth", &t_int_min0, 0},
    {"max_children_per_composite", &t_int_min0, 0},
    {"max_total_nodes_per_run", &t_int_min0, 0},
    {"max_decomposition_rounds_per_node", &t_int_min0, 0},
    END};
static const struct jv_prop candidates_props[] = {{"max_candidates_per_subtask", &t_int_min1, 0},
                                                  {"allowed_node_type_ids", &t_string_array, 0},
                                                  {"denied_node_type_ids", &t_string_array, 0},
                                                  END};
static const struct jv_prop budgets_props[] = {{"max_wall_time_ms", &t_int_min0, 0},
                                               {"max_steps", &t_int_min0, 0},
                                               {"max_external_calls", &t_int_min0, 0},
                                               {"max_cost", &t_num_min0, 0},
                                               END};
static const char *const side_effect_enum[] = {"read", "write", "irreversible", NULL};
static const struct jv_schema t_side_effect = {
    .title = "SideEffectClass", .kind = JV_STRING, .enum_values = side_effect_enum};
static const struct jv_prop gates_props[] = {
    {"side_effect_class", &t_side_effect, 0}, {"require_approval", &t_bool, 0}, END};
static const struct jv_schema t_structural = {.kind = JV_OBJECT, .props = structural_props};
static const struct jv_schema t_candidates = {.kind = JV_OBJECT, .props = candidates_props};
static const struct jv_schema t_budgets = {.kind = JV_OBJECT, .props = budgets_props};
static const struct jv_schema t_gates = {.kind = JV_OBJECT, .props = gates_props};
static const struct jv_prop constraint_envelope_props[] = {
    {"structural", &t_structural, 0},   {"candidates", &t_candidates, 0},
    {"budgets", &t_budgets, 0},         {"gates", &t_gates, 0},
    {"extensions", &sch_extensions, 0}, END};
const struct jv_schema sch_constraint_envelope = {
    .title = "ConstraintEnvelope", .kind = JV_OBJECT, .props = constraint_envelope_props};

static const struct jv_prop atomic_execute_request_props[] = {
    {"node_run_id", &t_id, 1},
    {"run_id", &t_id, 1},
    {"node_type_ref", &sch_node_type_ref, 1},
    {"inputs", &t_free_object, 1},
    {"run_context", &sch_run_context, 0},
    {"constraints", &sch_constraint_envelope, 0},
    {"extensions", &sch_extensions, 0},
    END};
const struct jv_schema sch_atomic_execute_request = {
    .title = "AtomicExecuteRequest", .kind = JV_OBJECT, .props = atomic_execute_request_props};

static const char *const node_run_state_enum[] = {"queued", "assigned", "running", "succeeded",
                                                  "failed", "canceled", NULL};
static const struct jv_schema t_node_run_state = {
    .title = "NodeRunState", .kind = JV_STRING, .enum_values = node_run_state_enum};
static const struct jv_schema t_resource_refs = {.kind = JV_ARRAY, .items = &sch_resource_ref};
static const struct jv_prop atomic_execute_result_props[] = {
    {"node_run_id", &t_string, 1},
    {"state", &t_node_run_state, 1},
    {"outputs", &t_free_object, 0},
    {"output_artifacts", &t_resource_refs, 0},
    {"started_at", &t_date_time, 0},
    {"ended_at", &t_date_time, 0},
    {"error", &sch_error_detail, 0},
    {"extensions", &sch_extensions, 0},
    END};
const struct jv_schema sch_atomic_execute_result = {
    .title = "AtomicExecuteResult", .kind = JV_OBJECT, .props = atomic_execute_result_props};
