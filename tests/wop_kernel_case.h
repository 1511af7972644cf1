/* The WoP-PBS kernels' check (kernels/src/wop.cu), shared by
 * test_kernels_emu (the host emulation, veil_cuda_wop_emulate) and
 * test_gpu_ops (the device, veil_cuda_wop): keys of wop-w9-2m40 (small: a
 * copy with n = 32, as test_gpu_ops' small run takes), three lookups
 * reading two tables by the backend's rule (table (i % 3) % 2) at 9 bits
 * (N = 1024 holds the table: no packing tree) and 12 bits (a tree of 4
 * leaves: two levels of pairs, each reading its lookup's GGSW; small: 9
 * bits only), inputs 0, 2^w - 1 and a random one: every decryption equals
 * its table's entry and the engine's veil_wop_pbs. 3 w (k + 1) GGSW units
 * is never a power of two, so their transforms run several plans of the
 * ladder. An executor lays out the keys once, then runs each call. */
#ifndef VEIL_TESTS_WOP_KERNEL_CASE_H
#define VEIL_TESTS_WOP_KERNEL_CASE_H

#include "testutil.h"
#include "veil/cuda.h"
#include "veil/wop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wop_exec wop_exec;
struct wop_exec {
    const char *name; /* in the failure lines: "emulated", "device" */
    /* the keys as the kernels read them (pk's, for cwp): 0 or an error */
    int (*keys)(wop_exec *x, const veil_pbs_key *pk, const veil_cuda_wop_params *cwp);
    /* out = the lookups of count ciphertexts of in (big1 words each)
     * through t (its tables in host memory, table_words of them): 0 or a
     * veil_cuda error */
    int (*run)(wop_exec *x, const veil_cuda_wop_params *cwp, const veil_cuda_wop_tables *t,
               size_t table_words, const uint64_t *in, uint32_t count, size_t big1, uint64_t *out);
    void (*release)(wop_exec *x); /* what keys and run made */
};

/* The case on x; kernel: the blind rotation of the bit extractions
 * (VEIL_CUDA_PBS_*); seed: the first of five test seeds. */
static void wop_kernel_case(wop_exec *x, int small, uint32_t kernel, unsigned seed) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(veil_wop_params_for_width(9));
    veil_wop_params wpv = *veil_wop_params_for_width(9);
    if (small) wpv.pbs.lwe_dim = 32; /* a copy keeps its packing keys (veil_wop_params_of) */
    const veil_wop_params *wp = &wpv;
    const veil_params *p = &wp->pbs;
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(seed + i, s[i]);
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_wop_ctx *ctx;
    CU_ASSERT_FATAL(veil_secret_key_new(p, s[0], &sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new_rows(sk, NULL, VEIL_KEY_BOTH, s[1], s[2], &ek) == VEIL_OK);
    CU_ASSERT_FATAL(veil_encryptor_new(s[3], s[4], &enc) == VEIL_OK);
    const veil_pbs_key *pk = veil_eval_key_part(ek, 0);
    CU_ASSERT_FATAL(pk->pfpks && pk->bsk && pk->bsk_fourier);
    const uint32_t D = pk->in_dim;
    CU_ASSERT_FATAL(veil_wop_ctx_new(wp, D, &ctx) == VEIL_OK);
    veil_cuda_wop_params cwp = {veil_cuda_params_from(p, kernel), wp->cbs_base_log, wp->cbs_level,
                                wp->pp_base_log, wp->pp_level};
    cwp.pbs.in_dim = D;
    cwp.pbs.ks_rows = pk->ksk_rows;
    CU_ASSERT_EQUAL_FATAL(x->keys(x, pk, &cwp), 0);
    enum { COUNT = 3, OUT = 4 };
    const size_t big1 = (size_t)D + 1;
    const unsigned widths[2] = {9, 12}, n_widths = small ? 1 : 2;
    size_t checked = 0, equal = 0;
    for (unsigned wi = 0; wi < n_widths; wi++) {
        const unsigned w = widths[wi];
        const size_t entries = (size_t)1 << w;
        int64_t *tables = malloc(2 * entries * sizeof *tables);
        uint64_t *in = malloc(COUNT * big1 * 8), *out = malloc(COUNT * big1 * 8),
                 *ref = malloc(big1 * 8);
        CU_ASSERT_FATAL(tables && in && out && ref);
        for (size_t i = 0; i < 2 * entries; i++)
            tables[i] = (int64_t)(veil_test_rand() % (1u << OUT));
        int64_t v[COUNT];
        for (uint32_t c = 0; c < COUNT; c++) {
            v[c] = c == 0   ? 0
                   : c == 1 ? (int64_t)entries - 1
                            : (int64_t)(veil_test_rand() % entries);
            veil_encrypt_big(enc, sk, veil_encode(v[c], w), in + c * big1);
        }
        /* at = 1: the call's first ciphertext is the node's second, so
         * ciphertext c reads table ((1 + c) % 3) % 2 (a piece after the first) */
        const veil_cuda_wop_tables t = {tables, 2, w, 3, 1, 1, veil_delta(OUT)};
        memset(out, 0xa5, COUNT * big1 * 8);
        CU_ASSERT_EQUAL_FATAL(x->run(x, &cwp, &t, 2 * entries, in, COUNT, big1, out), 0);
        for (uint32_t c = 0; c < COUNT; c++) {
            const int64_t *table = tables + (((1 + c) % 3) % 2) * entries;
            const int64_t got = veil_decode(veil_phase_big(sk, out + c * big1), OUT, 0);
            CU_ASSERT_FATAL(
                veil_wop_pbs(ctx, pk, table, w, 0, veil_delta(OUT), in + c * big1, ref) == VEIL_OK);
            const int64_t cpu = veil_decode(veil_phase_big(sk, ref), OUT, 0);
            if (got != table[v[c]] || cpu != table[v[c]])
                printf("\n  %s (n = %u), %u bits, x = %lld: %s %lld, cpu %lld, table %lld", wp->id,
                       p->lwe_dim, w, (long long)v[c], x->name, (long long)got, (long long)cpu,
                       (long long)table[v[c]]);
            CU_ASSERT_EQUAL(got, table[v[c]]);
            CU_ASSERT_EQUAL(cpu, table[v[c]]);
            checked++;
            equal += got == table[v[c]] && cpu == table[v[c]];
        }
        free(tables), free(in), free(out), free(ref);
    }
    CU_ASSERT_EQUAL(checked, n_widths * COUNT);
    printf("\n  WoP kernels (%s), %s (n = %u): %zu of %zu lookups equal to the table and the cpu",
           x->name, wp->id, p->lwe_dim, equal, checked);
    x->release(x);
    veil_wop_ctx_free(ctx);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
}

#endif
