// LABELS: crypto
// LINKS: veil_host
/* The cpu backend's results do not depend on how a batch is run: the same
 * ciphertexts, bit for bit, from 1, 2, 3 and 5 worker threads (a backend
 * each, veil_backend_options.threads; a batch of 1 on 2 and 3 threads,
 * which split its keyswitch), on a second run with the same
 * threads, and on every veil FFT path this CPU runs (portable, AVX2, AVX-512:
 * they compute the same bits). The decryptions are checked once. The same for
 * the leveled operations (linear, conv2d), which split their output
 * neurons / pixels over the threads when a layer is large enough. A
 * multi-bit set's lookups fewer than the threads run on several threads
 * each (veil_pbs_threads): the same bits too. */
#include "testutil.h"
#include "backend_host.h"
#include "veil/backend.h"
#include "veil/fft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT 11

/* A cpu backend on `threads` workers (options.threads), checked to use them. */
static veil_backend *cpu_on(const char *threads) {
    veil_backend_options o;
    veil_backend_options_default(&o);
    o.threads = (unsigned)atoi(threads);
    veil_backend *be = NULL;
    CU_ASSERT_FATAL(veil_backend_new_opts(VEIL_BACKEND_CPU, &o, &be) == VEIL_OK);
    char want[64];
    snprintf(want, sizeof want, "cpu: %s threads", threads);
    CU_ASSERT(strncmp(veil_backend_describe(be), want, strlen(want)) == 0);
    return be;
}

static void run_count(veil_backend *be_any, const veil_eval_key *ek, const char *threads,
                      const uint64_t *in, const veil_lut *lut, uint64_t *out, size_t count) {
    (void)be_any;
    veil_backend *be = cpu_on(threads);
    veil_backend_keys *keys = NULL;
    CU_ASSERT_FATAL(veil_backend_keys_new(be, ek, count, &keys) == VEIL_OK);
    const veil_lut *const lp[1] = {lut};
    CU_ASSERT_EQUAL(bh_ks_pbs(keys, 0, in, count, lp, 1, NULL, out), VEIL_OK);
    veil_backend_keys_free(keys);
    veil_backend_free(be);
}

/* linear and conv2d on random words (exact integer arithmetic: any input
 * will do), from `threads` workers, into out (linear) and out + lin_words */
#define LIN_B 3
#define LIN_IN 40
#define LIN_OUT 9
static const veil_conv_geom CONV = {2, 6, 6, 3, 3, 3, 1, 1, 1, 1, 0, 0};
#define CONV_B 2

static void run_batch(veil_backend *be, const veil_eval_key *ek, const char *threads,
                      const uint64_t *in, const veil_lut *lut, uint64_t *out) {
    run_count(be, ek, threads, in, lut, out, COUNT);
}

static void run_leveled(veil_backend *be_any, const veil_eval_key *ek, const char *threads,
                        const uint64_t *in, const int64_t *w, const uint64_t *bias, size_t lwe,
                        uint64_t *out) {
    (void)be_any;
    veil_backend *be = cpu_on(threads);
    veil_backend_keys *keys = NULL;
    CU_ASSERT_FATAL(veil_backend_keys_new(be, ek, 8, &keys) == VEIL_OK);
    CU_ASSERT_EQUAL(bh_linear(keys, in, LIN_B, LIN_IN, w, bias, LIN_OUT, out), VEIL_OK);
    CU_ASSERT_EQUAL(
        bh_conv2d(keys, in, CONV_B, &CONV, w, bias, out + (size_t)LIN_B * LIN_OUT * lwe), VEIL_OK);
    veil_backend_keys_free(keys);
    veil_backend_free(be);
}

static void leveled_bit_identical(veil_backend *be, const veil_eval_key *ek, size_t lwe) {
    const size_t lin_in = (size_t)LIN_B * LIN_IN, conv_in = (size_t)CONV_B * 2 * 6 * 6;
    const size_t in_words = (lin_in > conv_in ? lin_in : conv_in) * lwe;
    const size_t out_words = ((size_t)LIN_B * LIN_OUT + (size_t)CONV_B * 3 * 6 * 6) * lwe;
    uint64_t *in = malloc(sizeof(uint64_t) * in_words), *bias = malloc(sizeof(uint64_t) * 16);
    int64_t *w = malloc(sizeof(int64_t) * LIN_IN * LIN_OUT);
    uint64_t *ref = malloc(sizeof(uint64_t) * out_words),
             *out = malloc(sizeof(uint64_t) * out_words);
    CU_ASSERT_FATAL(in && bias && w && ref && out);
    for (size_t i = 0; i < in_words; i++)
        in[i] = veil_test_rand();
    for (size_t i = 0; i < (size_t)LIN_IN * LIN_OUT; i++)
        w[i] = (int64_t)(veil_test_rand() % 15) - 7;
    for (size_t i = 0; i < 16; i++)
        bias[i] = veil_test_rand();
    run_leveled(be, ek, "1", in, w, bias, lwe, ref);
    const char *threads[] = {"2", "5"};
    for (size_t t = 0; t < 2; t++) {
        memset(out, 0, sizeof(uint64_t) * out_words);
        run_leveled(be, ek, threads[t], in, w, bias, lwe, out);
        const int same = !memcmp(out, ref, sizeof(uint64_t) * out_words);
        if (!same) printf("\n  linear/conv2d on %s threads differ from 1 thread", threads[t]);
        CU_ASSERT(same);
    }
    free(in), free(bias), free(w), free(ref), free(out);
}

/* Keys of set p from seeds seed..seed+4, an encryptor, and the table
 * T[i] = (3 i + add) mod 2^p as a lookup table. */
typedef struct case_keys {
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_lut *lut;
    int64_t table[64];
} case_keys;

static void case_keys_make(const veil_params *p, unsigned seed, unsigned add, case_keys *k) {
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(seed + i, s[i]);
    const unsigned prec = p->precision, n = 1u << prec;
    CU_ASSERT_FATAL(n <= 64);
    for (unsigned i = 0; i < n; i++)
        k->table[i] = (int64_t)((i * 3 + add) % n);
    CU_ASSERT_FATAL(veil_secret_key_new(p, s[0], &k->sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new(k->sk, s[1], s[2], &k->ek) == VEIL_OK);
    CU_ASSERT_FATAL(veil_encryptor_new(s[3], s[4], &k->enc) == VEIL_OK);
    CU_ASSERT_FATAL(veil_lut_new(p, k->table, prec, 0, veil_delta(prec), &k->lut) == VEIL_OK);
}

static void case_keys_free(case_keys *k) {
    veil_lut_free(k->lut);
    veil_encryptor_free(k->enc);
    veil_eval_key_free(k->ek);
    veil_secret_key_free(k->sk);
}

static void test_threads_and_paths_bit_identical(void) {
    const veil_params *p = veil_params_find("tfhers-1_1-gaussian-2m64");
    CU_ASSERT_FATAL(p != NULL);
    case_keys k;
    case_keys_make(p, 20, 1, &k);
    const unsigned prec = p->precision, n = 1u << prec;
    veil_backend *be;
    CU_ASSERT_FATAL(veil_backend_new(VEIL_BACKEND_CPU, &be) == VEIL_OK);
    const size_t lwe = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = malloc(sizeof(uint64_t) * lwe * COUNT);
    uint64_t *ref = malloc(sizeof(uint64_t) * lwe * COUNT);
    uint64_t *out = malloc(sizeof(uint64_t) * lwe * COUNT);
    CU_ASSERT_FATAL(in && ref && out);
    int64_t msg[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        msg[i] = (int64_t)(veil_test_rand() % n);
        veil_encrypt_big(k.enc, k.sk, veil_encode(msg[i], prec), in + i * lwe);
    }
    run_batch(be, k.ek, "1", in, k.lut, ref);
    for (size_t i = 0; i < COUNT; i++)
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(k.sk, ref + i * lwe), prec, 0), k.table[msg[i]]);
    const char *threads[] = {"2", "3", "5", "3"}; /* 3 twice: a second run */
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        memset(out, 0, sizeof(uint64_t) * lwe * COUNT);
        run_batch(be, k.ek, threads[t], in, k.lut, out);
        const int same = !memcmp(out, ref, sizeof(uint64_t) * lwe * COUNT);
        if (!same) printf("\n  %s threads: ciphertexts differ from 1 thread", threads[t]);
        CU_ASSERT(same);
    }
    /* a lone lookup: its keyswitch split over the threads, same bits */
    const char *lone[] = {"2", "3"};
    for (size_t t = 0; t < 2; t++) {
        memset(out, 0, sizeof(uint64_t) * lwe);
        run_count(be, k.ek, lone[t], in, k.lut, out, 1);
        const int same = !memcmp(out, ref, sizeof(uint64_t) * lwe);
        if (!same) printf("\n  batch 1 on %s threads: ciphertext differs", lone[t]);
        CU_ASSERT(same);
    }
    const veil_fft_path paths[] = {VEIL_FFT_PORTABLE, VEIL_FFT_AVX2, VEIL_FFT_AVX512};
    const veil_fft_path saved = veil_fft_path_default();
    for (size_t j = 0; j < sizeof paths / sizeof *paths; j++) {
        if (!veil_test_fft_path_here(paths[j])) continue;
        CU_ASSERT_FATAL(veil_fft_path_set_default(paths[j]) == VEIL_OK);
        memset(out, 0, sizeof(uint64_t) * lwe * COUNT);
        run_batch(be, k.ek, "2", in, k.lut, out);
        const int same = !memcmp(out, ref, sizeof(uint64_t) * lwe * COUNT);
        if (!same && saved != VEIL_FFT_FFTW)
            printf("\n  FFT path %s: ciphertexts differ", veil_fft_path_name(paths[j]));
        /* a build defaulting to FFTW computed ref with FFTW: not comparable */
        if (saved != VEIL_FFT_FFTW) CU_ASSERT(same);
    }
    CU_ASSERT(veil_fft_path_set_default(saved) == VEIL_OK);
    leveled_bit_identical(be, k.ek, lwe);
    free(in), free(ref), free(out);
    veil_backend_free(be);
    case_keys_free(&k);
}

/* A multi-bit set: a lone lookup runs on every thread (veil_pbs_threads:
 * the groups' GGSWs formed by all, applied in order by one), and fewer
 * lookups than threads run on teams of threads / count each, threshold
 * reads too; every result the bits of one thread. */
static void test_multibit_teams(void) {
    const veil_params *p = veil_params_multibit_find("tfhers-mb2-1_1-tuniform-2m128");
    CU_ASSERT_FATAL(p != NULL);
    case_keys k;
    case_keys_make(p, 60, 2, &k);
    const unsigned prec = p->precision;
    enum { MB_COUNT = 3 };
    const size_t lwe = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = malloc(sizeof(uint64_t) * lwe * MB_COUNT);
    uint64_t *ref = malloc(sizeof(uint64_t) * lwe * MB_COUNT);
    uint64_t *out = malloc(sizeof(uint64_t) * lwe * MB_COUNT);
    CU_ASSERT_FATAL(in && ref && out);
    for (size_t i = 0; i < MB_COUNT; i++)
        veil_encrypt_big(k.enc, k.sk, veil_encode((int64_t)i, prec), in + i * lwe);
    run_count(NULL, k.ek, "1", in, k.lut, ref, MB_COUNT);
    for (size_t i = 0; i < MB_COUNT; i++)
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(k.sk, ref + i * lwe), prec, 0), k.table[i]);
    /* threads, lookups: a lone one on 2 and 5; teams of 2 (5 / 2, 7 / 3);
     * 4 / 3 = 1: the batch path */
    const struct {
        const char *threads;
        size_t count;
    } cases[] = {{"2", 1}, {"5", 1}, {"5", 2}, {"7", 3}, {"4", 3}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        memset(out, 0, sizeof(uint64_t) * lwe * MB_COUNT);
        run_count(NULL, k.ek, cases[c].threads, in, k.lut, out, cases[c].count);
        const int same = !memcmp(out, ref, sizeof(uint64_t) * lwe * cases[c].count);
        if (!same)
            printf("\n  multi-bit, %zu lookup(s) on %s threads: ciphertexts differ", cases[c].count,
                   cases[c].threads);
        CU_ASSERT(same);
    }
    /* threshold reads (the extraction path): two results each, the same
     * bits on teams (2 inputs on 5 threads, 1 on 4) as on one thread */
    const veil_extract ext[4] = {{0, 0}, {1, 0}, {2, 0}, {0, 1}};
    uint64_t *eref = malloc(sizeof(uint64_t) * lwe * 2 * MB_COUNT),
             *eout = malloc(sizeof(uint64_t) * lwe * 2 * MB_COUNT);
    CU_ASSERT_FATAL(eref && eout);
    const struct {
        const char *threads;
        size_t count;
    } ecases[] = {{"1", 2}, {"5", 2}, {"4", 1}};
    for (size_t c = 0; c < sizeof ecases / sizeof *ecases; c++) {
        veil_backend *be = cpu_on(ecases[c].threads);
        veil_backend_keys *keys = NULL;
        CU_ASSERT_FATAL(veil_backend_keys_new(be, k.ek, MB_COUNT, &keys) == VEIL_OK);
        uint64_t *o = c ? eout : eref;
        memset(o, 0, sizeof(uint64_t) * lwe * 2 * MB_COUNT);
        CU_ASSERT_EQUAL(bh_ks_pbs_extract(keys, 0, in, ecases[c].count, k.lut, ext, 2, 2, o),
                        VEIL_OK);
        veil_backend_keys_free(keys);
        veil_backend_free(be);
        if (!c) continue;
        /* result s of input i at (s * count + i): compare input by input */
        int same = 1;
        for (size_t s2 = 0; s2 < 2; s2++)
            for (size_t i = 0; i < ecases[c].count; i++)
                same &= !memcmp(eout + (s2 * ecases[c].count + i) * lwe, eref + (s2 * 2 + i) * lwe,
                                sizeof(uint64_t) * lwe);
        if (!same)
            printf("\n  multi-bit threshold reads, %zu input(s) on %s threads: ciphertexts differ",
                   ecases[c].count, ecases[c].threads);
        CU_ASSERT(same);
    }
    free(eref), free(eout);
    free(in), free(ref), free(out);
    case_keys_free(&k);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("cpu_threads", NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_threads_and_paths_bit_identical);
    VEIL_ADD_TEST(s, test_multibit_teams);
    return veil_test_run();
}
