// LABELS: crypto slow
/* veil_pbs_split equals veil_pbs bit for bit on the heavier sets of the
 * measurement (bench/bench_pbs_split.c): nn-p4-norm2e10-2m40 (k = 1, N = 2048,
 * l = 2: 8 polynomials a GGSW, one after another) and nn-p6-norm2e10-2m40
 * (N = 8192, l = 3: 12, interleaved by block), T = 1, 2, 3, 5, on every FFT
 * path this CPU runs and on FFTW's when built in. */
#include "pbs_split_check.h"

static void test_split_l2(void) {
    split_check_set("nn-p4-norm2e10-2m40", 60, 1);
}

static void test_split_n8192(void) {
    split_check_set("nn-p6-norm2e10-2m40", 70, 1);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("pbs_split_slow", NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_split_l2);
    VEIL_ADD_TEST(s, test_split_n8192);
    return veil_test_run();
}
