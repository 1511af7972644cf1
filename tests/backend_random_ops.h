/* tests/backend_random_ops.h — random programs of leveled backend ops (add,
 * scale, copy, dense, conv2d) run on two backends' keys from the same random
 * words, every buffer compared word for word after every program (ggml's
 * test-backend-ops pattern: these ops are exact integer arithmetic mod 2^64,
 * so two correct backends agree bit for bit). test_gpu_ops runs it cuda
 * against cpu; test_backend_cpu runs it cpu (1 thread) against cpu (3
 * threads), which keeps the generator itself tested where there is no GPU.
 * KS-PBS is not here: its outputs differ within the FFT error, so it is
 * compared by decryption (test_gpu_ops's ks_pbs cases, and whole programs
 * through veil_plan). */
#ifndef VEIL_TESTS_BACKEND_RANDOM_OPS_H
#define VEIL_TESTS_BACKEND_RANDOM_OPS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "veil/backend.h"
#include "../host/backend_internal.h"

#define RO_BUFS 6
#define RO_KINDS 5 /* add, scale, copy, dense, conv2d */

static size_t ro_pick(size_t n) {
    return (size_t)(veil_test_rand() % n);
}

/* One random op of kind `want` (-1: a random kind), the same on both sides;
 * returns its kind. cnt: ciphertexts per buffer (>= 32: a conv2d sample). */
static int ro_step(veil_backend_keys *const keys[2], veil_backend_buffer *const bufs[2][RO_BUFS],
                   size_t cnt, int want) {
    const int kind = want >= 0 ? want : (int)ro_pick(RO_KINDS);
    const size_t o = ro_pick(RO_BUFS), a = ro_pick(RO_BUFS), b = ro_pick(RO_BUFS);
    const size_t o2 = a == o ? (o + 1) % RO_BUFS : o; /* differs from a */
    const uint64_t fs[4] = {1, (uint64_t)0 - 1, 2, veil_test_rand()};
    const uint64_t f = fs[ro_pick(4)], pt = veil_test_rand();
    const size_t count = 1 + ro_pick(cnt);
    /* copy: rows runs of len, strides >= len, inside both buffers */
    const size_t len = 1 + ro_pick(4), rows = 1 + ro_pick(cnt / 8);
    const size_t dst_stride = len + ro_pick(3), src_stride = len + ro_pick(3);
    const size_t dst_at = ro_pick(cnt - (rows - 1) * dst_stride - len + 1);
    const size_t src_at = ro_pick(cnt - (rows - 1) * src_stride - len + 1);
    /* dense: batch * in_f and batch * out_f inside cnt */
    const size_t in_f = 1 + ro_pick(8), out_f = 1 + ro_pick(8);
    const size_t batch = 1 + ro_pick(cnt / (in_f > out_f ? in_f : out_f));
    /* conv2d: 2 x 3 x 3 in, 2 out channels, 2 x 2 kernel, random stride/pad */
    veil_conv_geom g = {.c_in = 2, .h_in = 3, .w_in = 3, .c_out = 2, .kh = 2, .kw = 2};
    g.stride_h = (uint32_t)(1 + ro_pick(2));
    g.stride_w = (uint32_t)(1 + ro_pick(2));
    g.pad_h = (uint32_t)ro_pick(2);
    g.pad_w = (uint32_t)ro_pick(2);
    CU_ASSERT_FATAL(veil_conv_geom_finish(&g));
    const size_t c_in = 18, c_out = (size_t)2 * g.h_out * g.w_out;
    const size_t c_batch = 1 + ro_pick(cnt / (c_in > c_out ? c_in : c_out));
    int64_t w[64];
    uint64_t bias[8];
    for (size_t i = 0; i < 64; i++)
        w[i] = (int64_t)veil_test_rand(); /* full range: the wrap mod 2^64 */
    for (size_t i = 0; i < 8; i++)
        bias[i] = veil_test_rand();
    const int with_bias = (int)ro_pick(2);
    for (int side = 0; side < 2; side++) {
        veil_backend_buffer *const *B = bufs[side];
        veil_backend_weights *wt = NULL;
        veil_status st = VEIL_OK;
        switch (kind) {
        case 0:
            st = veil_backend_add(B[o], B[a], B[b], count, f);
            break;
        case 1:
            st = veil_backend_scale(B[o], B[a], count, f, pt);
            break;
        case 2:
            st = veil_backend_copy(B[o2], dst_at, dst_stride, B[a], src_at, src_stride, len, rows);
            break;
        case 3:
            st = veil_backend_weights_new_dense(keys[side], w, in_f, out_f, with_bias ? bias : NULL,
                                                &wt);
            if (st == VEIL_OK) st = veil_backend_linear(wt, B[a], batch, B[o2]);
            break;
        default:
            st = veil_backend_weights_new_conv2d(keys[side], &g, w, with_bias ? bias : NULL, &wt);
            if (st == VEIL_OK) st = veil_backend_conv2d(wt, B[a], c_batch, B[o2]);
            break;
        }
        CU_ASSERT_EQUAL(st, VEIL_OK);
        if (st != VEIL_OK)
            printf("\n  random op %d on side %d: %s", kind, side, veil_error_message());
        /* the cpu backend borrows w and bias, cuda copied them: freeing the
         * weights after the op is right for both (cuda's free waits for it) */
        veil_backend_weights_free(wt);
    }
    return kind;
}

/* n_prog programs of n_steps random ops each on RO_BUFS buffers of cnt
 * ciphertexts: after each program every buffer of side 0 equals side 1's. */
static void ro_run(veil_backend_keys *k0, veil_backend_keys *k1, size_t n_prog, size_t n_steps,
                   size_t cnt) {
    veil_backend_keys *const keys[2] = {k0, k1};
    CU_ASSERT_FATAL(k0->lwe == k1->lwe && cnt >= 32 && n_steps >= RO_KINDS);
    const size_t words = cnt * k0->lwe;
    uint64_t *host = malloc(words * 8), *got0 = malloc(words * 8), *got1 = malloc(words * 8);
    CU_ASSERT_FATAL(host && got0 && got1);
    size_t ran[RO_KINDS] = {0}, progs = 0, equal = 0;
    for (size_t pi = 0; pi < n_prog; pi++, progs++) {
        veil_backend_buffer *bufs[2][RO_BUFS] = {{0}};
        for (size_t i = 0; i < RO_BUFS; i++) {
            for (size_t w = 0; w < words; w++)
                host[w] = veil_test_rand();
            for (int side = 0; side < 2; side++) {
                CU_ASSERT_FATAL(veil_backend_buffer_new(keys[side], cnt, &bufs[side][i]) ==
                                VEIL_OK);
                CU_ASSERT_FATAL(veil_backend_buffer_upload(bufs[side][i], host, cnt) == VEIL_OK);
            }
        }
        /* the first program starts with one op of every kind, so every kind
         * runs whatever the draws (the assertion below), then random ones */
        for (size_t s = 0; s < n_steps; s++)
            ran[ro_step(keys, bufs, cnt, pi == 0 && s < RO_KINDS ? (int)s : -1)]++;
        for (size_t i = 0; i < RO_BUFS; i++) {
            CU_ASSERT_EQUAL(veil_backend_buffer_download(bufs[0][i], cnt, got0), VEIL_OK);
            CU_ASSERT_EQUAL(veil_backend_buffer_download(bufs[1][i], cnt, got1), VEIL_OK);
            const int same = memcmp(got0, got1, words * 8) == 0;
            if (!same) printf("\n  random program %zu: buffer %zu differs", pi, i);
            equal += same;
            veil_backend_buffer_free(bufs[0][i]);
            veil_backend_buffer_free(bufs[1][i]);
        }
    }
    size_t total = 0;
    for (int k = 0; k < RO_KINDS; k++) {
        total += ran[k];
        CU_ASSERT(ran[k] > 0); /* every op kind ran */
    }
    printf("\n  %zu random programs of %zu ops (add %zu, scale %zu, copy %zu, dense %zu, conv2d "
           "%zu) on %s and %s: %zu/%zu buffers equal",
           progs, n_steps, ran[0], ran[1], ran[2], ran[3], ran[4], k0->be->describe,
           k1->be->describe, equal, progs * RO_BUFS);
    CU_ASSERT_EQUAL(progs, n_prog);
    CU_ASSERT_EQUAL(total, n_prog * n_steps);
    CU_ASSERT_EQUAL(equal, n_prog * RO_BUFS);
    free(host);
    free(got0);
    free(got1);
}

#endif
