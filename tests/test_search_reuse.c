// LABELS: unit model
// COST: 20
// LINKS: veil_loaders
/* test_search_reuse.c — the parameter search's reuse of the last trial
 * (compile_params.c: trial_cache and pass_cache; a trial starts its cost sum
 * and noise pass at the first PBS node whose set changed) against the same
 * trial computed from node 0, bit for bit, on every trial of sample models
 * under option sets that exercise partitions, narrowed inputs, rounding
 * chunks and the failure budget. The reuse assumes that a node other than a
 * lookup or rounding does not depend on its own partition's set: nothing
 * else asserts it. */
#include "../engine/src/compile_internal.h" /* veil_search_check_reuse */
#include "testutil.h"
#include "veil/compile_options.h"
#include "veil/loader.h"
#include "veil/model.h"
#include "veil/program.h"

#include <stdio.h>

static void compile_checked(const char *model, int argc, char **argv) {
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(veil_test_path(model), &m), VEIL_OK);
    veil_compile_options o;
    veil_compile_options_default(&o);
    for (int i = 0; i < argc; i++) {
        int consumed = 0;
        CU_ASSERT_EQUAL_FATAL(veil_compile_options_parse_arg(&o, argc, argv, &i, &consumed),
                              VEIL_OK);
        CU_ASSERT_TRUE_FATAL(consumed);
    }
    veil_search_check_reuse(1);
    veil_program *p = NULL;
    const veil_status st = veil_program_compile(m, &o, &p);
    unsigned long trials = 0, mismatches = 0;
    veil_search_reuse_counts(&trials, &mismatches);
    veil_search_check_reuse(0);
    printf("  %s%s%s: %lu trials checked, %lu differ\n", model, argc ? " " : "",
           argc ? argv[0] : "", trials, mismatches);
    CU_ASSERT_EQUAL(st, VEIL_OK);
    CU_ASSERT_TRUE(trials > 100); /* the search ran, with partitions */
    CU_ASSERT_EQUAL(mismatches, 0);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_reuse_default(void) {
    compile_checked("models/mlp_digits.h5", 0, NULL);
    compile_checked("models/source_bc.h5", 0, NULL);
}

static void test_reuse_rounding(void) {
    char *a[] = {"--rounding-bits", "6"};
    compile_checked("models/cnn_digits.h5", 2, a);
    char *b[] = {"--rounding-bits", "4"};
    compile_checked("models/target_bc.h5", 2, b);
}

static void test_reuse_budget(void) {
    char *a[] = {"--global-p-error", "1e-5", "--rounding-bits", "6"};
    compile_checked("models/mlp_digits.h5", 4, a);
}

static void test_reuse_partitions(void) {
    char *a[] = {"--partitions", "3", "--p-error", "1e-5"};
    compile_checked("models/source16_bc.h5", 4, a);
    char *b[] = {"--key-budget-mb", "400"};
    compile_checked("models/mlp_digits.h5", 2, b);
}

/* source16_bc's WoP-PBS outputs are 2048 wide; a trial whose sets are all
 * as wide as the inputs (1536 here) is not uniform when it reads them: its
 * keyswitches read 2048 rows and are priced so. The uniform shortcut priced
 * them at 1536 on one trial the noise check accepted, at each of --p-error
 * 1e-2, 1e-3 and 1e-4, and on 12 of test_reuse_partitions' (no chosen
 * program changed). */
static void test_reuse_wop_widths(void) {
    char *a[] = {"--p-error", "1e-3"};
    compile_checked("models/source16_bc.h5", 2, a);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("search_reuse", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_reuse_default);
    VEIL_ADD_TEST(s, test_reuse_rounding);
    VEIL_ADD_TEST(s, test_reuse_budget);
    VEIL_ADD_TEST(s, test_reuse_partitions);
    VEIL_ADD_TEST(s, test_reuse_wop_widths);
    return veil_test_run();
}
