/* The check of tests/test_pbs_split.c and test_pbs_split_slow.c (one body,
 * two label sets): veil_pbs_split_run on T = 1, 2, 3, 5 threads (and at the
 * barrier yielding at once or sleeping after one pause) gives veil_pbs's
 * ciphertext bit for bit, which decrypts to the table's value, on the
 * default FFT path and FFTW's when built in (the slow test: on every path
 * this CPU runs). */
#ifndef VEIL_PBS_SPLIT_CHECK_H
#define VEIL_PBS_SPLIT_CHECK_H

#include "testutil.h"
#include "veil/fft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_MSGS 2

/* One path: returns the number of (message, thread count) comparisons run. */
static unsigned split_check_path(veil_test_keys *f, const veil_lut *lut, const int64_t *table,
                                 const uint64_t *small, const int64_t *msg, veil_fft_path path) {
    const veil_params *p = f->p;
    const unsigned prec = p->precision;
    const veil_pbs_key *pk = veil_eval_key_part(f->ek, 0);
    const size_t lwe = (size_t)pk->in_dim + 1, n1 = (size_t)p->lwe_dim + 1;
    CU_ASSERT_FATAL(veil_fft_path_set_default(path) == VEIL_OK);
    veil_pbs_ctx *ctx = NULL;
    CU_ASSERT_FATAL(veil_pbs_ctx_new(p, &ctx) == VEIL_OK);
    uint64_t *ref = malloc(sizeof(uint64_t) * lwe), *out = malloc(sizeof(uint64_t) * lwe);
    CU_ASSERT_FATAL(ref && out);
    static const unsigned threads[] = {1, 2, 3, 5};
    /* the default barrier, and at T = 3 also yield at once and sleep after
     * one pause (spin only, bench_pbs_split's "spin", starves a loaded
     * machine: 90% of this test's time went there) */
    unsigned ran = 0;
    for (unsigned m = 0; m < SPLIT_MSGS; m++) {
        veil_pbs(ctx, pk, lut, small + m * n1, ref);
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f->sk, ref), prec, 0), table[msg[m]]);
        for (unsigned t = 0; t < sizeof threads / sizeof *threads; t++)
            for (unsigned v = 0; v < (threads[t] == 3 ? 3u : 1u); v++) {
                veil_pbs_split *sp = NULL;
                CU_ASSERT_FATAL(veil_pbs_split_new(p, threads[t], &sp) == VEIL_OK);
                const unsigned k1 = p->glwe_dim + 1;
                CU_ASSERT_EQUAL(veil_pbs_split_threads(sp), threads[t] < k1 ? threads[t] : k1);
                if (v == 1) veil_pbs_split_set_wait(sp, 0, 0);
                if (v == 2) veil_pbs_split_set_wait(sp, 1, 1);
                memset(out, 0xa5, sizeof(uint64_t) * lwe);
                veil_pbs_split_run(sp, pk, lut, small + m * n1, out);
                const int same = !memcmp(out, ref, sizeof(uint64_t) * lwe);
                if (!same)
                    printf("\n  %s path %s: %u threads (spin variant %u), message %u differs",
                           p->id, veil_fft_path_name(path), threads[t], v, m);
                CU_ASSERT(same);
                CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f->sk, out), prec, 0),
                                veil_decode(veil_phase_big(f->sk, ref), prec, 0));
                veil_pbs_split_free(sp);
                ran++;
            }
    }
    free(ref), free(out);
    veil_pbs_ctx_free(ctx);
    return ran;
}

/* One set on the default FFT path and FFTW's (the unfused route) when built
 * in, or (all_paths) on every path; asserts how many cases ran. */
static void split_check_set(const char *id, unsigned seed_base, int all_paths) {
    const veil_params *p = veil_params_find(id);
    CU_ASSERT_FATAL(p != NULL);
    veil_test_keys f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, seed_base, &f));
    const unsigned prec = p->precision, n = 1u << prec;
    int64_t table[256];
    CU_ASSERT_FATAL(n <= 256);
    for (unsigned i = 0; i < n; i++)
        table[i] = (int64_t)((i * 5 + 3) % n);
    veil_lut *lut = NULL;
    CU_ASSERT_FATAL(veil_lut_new(p, table, prec, 0, veil_delta(prec), &lut) == VEIL_OK);
    const veil_pbs_key *pk = veil_eval_key_part(f.ek, 0);
    const size_t lwe = (size_t)pk->in_dim + 1, n1 = (size_t)p->lwe_dim + 1;
    uint64_t *big = malloc(sizeof(uint64_t) * lwe),
             *small = malloc(sizeof(uint64_t) * n1 * SPLIT_MSGS);
    CU_ASSERT_FATAL(big && small);
    int64_t msg[SPLIT_MSGS];
    for (unsigned m = 0; m < SPLIT_MSGS; m++) {
        msg[m] = (int64_t)(veil_test_rand() % n);
        veil_encrypt_big(f.enc, f.sk, veil_encode(msg[m], prec), big);
        veil_keyswitch(pk, big, small + m * n1);
    }
    const veil_fft_path saved = veil_fft_path_default();
    const veil_fft_path paths[] = {VEIL_FFT_PORTABLE, VEIL_FFT_AVX2, VEIL_FFT_AVX512,
                                   VEIL_FFT_FFTW};
    unsigned ran = 0, want = 0;
    for (size_t j = 0; j < sizeof paths / sizeof *paths; j++) {
        if (!all_paths && paths[j] != saved && paths[j] != VEIL_FFT_FFTW) continue;
        if (!veil_fft_path_available(paths[j])) {
            printf("\n  (%s: FFT path %s not available here)", id, veil_fft_path_name(paths[j]));
            continue;
        }
        ran += split_check_path(&f, lut, table, small, msg, paths[j]);
        want += SPLIT_MSGS * 6;
    }
    CU_ASSERT(veil_fft_path_set_default(saved) == VEIL_OK);
    CU_ASSERT(want >= SPLIT_MSGS * 6); /* the default path at least */
    CU_ASSERT_EQUAL(ran, want);
    printf("\n  %s (k = %u, N = %u, l = %u): %u split runs equal veil_pbs", id, p->glwe_dim,
           p->poly_size, p->pbs_level, ran);
    free(big), free(small);
    veil_lut_free(lut);
    veil_test_keys_free(&f);
}

#endif
