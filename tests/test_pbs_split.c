// LABELS: crypto
// LINKS: veil_host
/* veil_pbs_split (one PBS on several threads) equals veil_pbs bit for bit:
 * k = 1 (tfhers-2_2, N = 2048, l = 1: the GGSW's polynomials one after
 * another) and k = 4 (tfhers-1_1, N = 512: interleaved by block), T = 1, 2,
 * 3, 5 (tests/pbs_split_check.h). The l = 2 and N = 8192 sets run in
 * test_pbs_split_slow. A multi-bit set is refused with a message. The cpu
 * backend's lone lookup (from N = 2048 on: split, then one thread, then the
 * faster of the two) equals veil_ks_pbs on 2 and 3 threads. */
#include "pbs_split_check.h"
#include "backend_host.h"

static void test_split_k1(void) {
    split_check_set("tfhers-2_2-gaussian-2m64", 40, 0);
}

static void test_split_k4(void) {
    split_check_set("tfhers-1_1-gaussian-2m64", 50, 0);
}

/* A batch of 1 on the cpu backend (keyswitch and PBS split over the
 * threads) against veil_ks_pbs on one thread. */
static void test_backend_lone_lookup(void) {
    const veil_params *p = veil_params_find("tfhers-2_2-gaussian-2m64");
    CU_ASSERT_FATAL(p != NULL);
    veil_test_keys f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 80, &f));
    const unsigned prec = p->precision, n = 1u << prec;
    int64_t table[64];
    CU_ASSERT_FATAL(n <= 64);
    for (unsigned i = 0; i < n; i++)
        table[i] = (int64_t)((i * 7 + 2) % n);
    veil_lut *lut = NULL;
    CU_ASSERT_FATAL(veil_lut_new(p, table, prec, 0, veil_delta(prec), &lut) == VEIL_OK);
    const veil_pbs_key *pk = veil_eval_key_part(f.ek, 0);
    const size_t lwe = (size_t)pk->in_dim + 1;
    uint64_t *in = malloc(sizeof(uint64_t) * lwe), *ref = malloc(sizeof(uint64_t) * lwe),
             *out = malloc(sizeof(uint64_t) * lwe);
    CU_ASSERT_FATAL(in && ref && out);
    const int64_t msg = (int64_t)(veil_test_rand() % n);
    veil_encrypt_big(f.enc, f.sk, veil_encode(msg, prec), in);
    veil_ks_pbs(f.ctx, pk, lut, in, ref);
    CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, ref), prec, 0), table[msg]);
    const unsigned threads[] = {2, 3};
    unsigned ran = 0;
    for (unsigned t = 0; t < 2; t++) {
        veil_backend_options o;
        veil_backend_options_default(&o);
        o.threads = threads[t];
        veil_backend *be = NULL;
        veil_backend_keys *keys = NULL;
        CU_ASSERT_FATAL(veil_backend_new_opts(VEIL_BACKEND_CPU, &o, &be) == VEIL_OK);
        CU_ASSERT_FATAL(veil_backend_keys_new(be, f.ek, 1, &keys) == VEIL_OK);
        const veil_lut *const lp[1] = {lut};
        /* the first lone lookup runs split, the second on one thread (each
         * timed once), the third whichever was faster */
        for (unsigned r = 0; r < 3; r++) {
            memset(out, 0, sizeof(uint64_t) * lwe);
            CU_ASSERT_EQUAL(bh_ks_pbs(keys, 0, in, 1, lp, 1, NULL, out), VEIL_OK);
            const int same = !memcmp(out, ref, sizeof(uint64_t) * lwe);
            if (!same)
                printf("\n  backend, batch 1 on %u threads, lookup %u: ciphertext differs",
                       threads[t], r);
            CU_ASSERT(same);
            ran++;
        }
        veil_backend_keys_free(keys);
        veil_backend_free(be);
    }
    CU_ASSERT_EQUAL(ran, 6);
    free(in), free(ref), free(out);
    veil_lut_free(lut);
    veil_test_keys_free(&f);
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
    VEIL_ADD_TEST(s, test_backend_lone_lookup);
    VEIL_ADD_TEST(s, test_split_multibit_refused);
    return veil_test_run();
}
