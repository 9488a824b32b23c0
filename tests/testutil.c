/* testutil.c - see testutil.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <ftw.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

int tu_main(CU_SuiteInfo *suites)
{
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "suite registration failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len)
                *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int tu_remove_tree(const char *dir)
{
    /* Depth first, without following links out of the folder. */
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_spec_path(const char *rel)
{
    static char path[4096];

    snprintf(path, sizeof path, "%s/%s", ARP_SPEC_DIR, rel);
    return path;
}

json_object *tu_json(const char *text)
{
    return json_tokener_parse(text);
}

int tu_json_equal(json_object *actual, const char *expected)
{
    json_object *want = json_tokener_parse(expected);
    int eq = want != NULL && json_object_equal(actual, want);

    if (!eq)
        fprintf(stderr, "\n  JSON mismatch\n    got:  %s\n    want: %s\n",
                actual ? json_object_to_json_string_ext(actual, JSON_C_TO_STRING_PLAIN) : "NULL",
                expected);
    json_object_put(want);
    return eq;
}
