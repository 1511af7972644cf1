// LABELS: crypto
/* veil_pbs_split (one PBS on several threads) equals veil_pbs bit for bit:
 * k = 1 (tfhers-2_2, N = 2048, l = 1: the GGSW's polynomials one after
 * another) and k = 4 (tfhers-1_1, N = 512: interleaved by block), T = 1, 2,
 * 3, 5 (tests/pbs_split_check.h). The l = 2 and N = 8192 sets run in
 * test_pbs_split_slow. A multi-bit set is refused with a message. */
#include "pbs_split_check.h"

static void test_split_k1(void) {
    split_check_set("tfhers-2_2-gaussian-2m64", 40, 0);
}

static void test_split_k4(void) {
    split_check_set("tfhers-1_1-gaussian-2m64", 50, 0);
}

static void test_split_multibit_refused(void) {
    unsigned found = 0;
    for (size_t i = 0;; i++) {
        const veil_params *p = veil_params_multibit_at(i);
        if (!p) break;
        veil_pbs_split *sp = NULL;
        CU_ASSERT_EQUAL(veil_pbs_split_new(p, 2, &sp), VEIL_ERR_UNSUPPORTED);
        CU_ASSERT(sp == NULL);
        CU_ASSERT(strstr(veil_error_message(), p->id) != NULL);
        found++;
    }
    CU_ASSERT(found > 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("pbs_split", NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_split_k1);
    VEIL_ADD_TEST(s, test_split_k4);
    VEIL_ADD_TEST(s, test_split_multibit_refused);
    return veil_test_run();
}
