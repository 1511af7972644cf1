/* tests/backend_host.h — the backend's ops on host arrays, for tests that
 * compare one op's result with the engine's or another backend's: each
 * helper makes the buffers, tables or weights the op needs, uploads its
 * inputs, runs the op once, downloads the result and frees everything. The
 * library has no host-memory ops (veil/backend.h: buffers live on the
 * backend's device); programs plan once and keep their buffers there.
 * The output buffer holds one ciphertext more than the op writes, set to a
 * sentinel on the device before the op and checked after it (ggml's
 * test-backend-ops sentinels): an op that writes past its outputs returns
 * VEIL_ERR_FORMAT here. */
#ifndef VEIL_TESTS_BACKEND_HOST_H
#define VEIL_TESTS_BACKEND_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "veil/backend.h"
#include "../host/backend_internal.h" /* buffer->keys, keys->lwe */

#define BH_SENTINEL 0xA5C3A5C3A5C3A5C3ull

/* count input ciphertexts in, n_out out (an op's buffers); the output
 * buffer has n_out + 1 ciphertexts, every word BH_SENTINEL. */
static inline veil_status bh_buffers(veil_backend_keys *keys, const uint64_t *in, size_t n_in,
                                     size_t n_out, veil_backend_buffer **bi,
                                     veil_backend_buffer **bo) {
    *bi = *bo = NULL;
    veil_status s = veil_backend_buffer_new(keys, n_in ? n_in : 1, bi);
    if (s == VEIL_OK) s = veil_backend_buffer_new(keys, n_out + 1, bo);
    if (s == VEIL_OK) s = veil_backend_buffer_upload(*bi, in, n_in);
    if (s != VEIL_OK) return s;
    const size_t words = (n_out + 1) * keys->lwe;
    uint64_t *fill = malloc(words * sizeof *fill);
    if (!fill) return VEIL_ERR_NOMEM;
    for (size_t i = 0; i < words; i++)
        fill[i] = BH_SENTINEL;
    s = veil_backend_buffer_upload(*bo, fill, n_out + 1);
    free(fill);
    return s;
}

/* Downloads the n_out outputs into out; VEIL_ERR_FORMAT when a word of the
 * ciphertext after them is no longer the sentinel (the op wrote past its
 * outputs). */
static inline veil_status bh_finish(veil_status s, veil_backend_buffer *bi, veil_backend_buffer *bo,
                                    size_t n_out, uint64_t *out) {
    if (s == VEIL_OK) {
        const size_t lwe = bo->keys->lwe;
        uint64_t *all = malloc((n_out + 1) * lwe * sizeof *all);
        if (!all) s = VEIL_ERR_NOMEM;
        if (s == VEIL_OK) s = veil_backend_buffer_download(bo, n_out + 1, all);
        for (size_t i = 0; s == VEIL_OK && i < lwe; i++)
            if (all[n_out * lwe + i] != BH_SENTINEL) s = VEIL_ERR_FORMAT;
        if (s == VEIL_OK && n_out) memcpy(out, all, n_out * lwe * sizeof *out);
        free(all);
    }
    veil_backend_buffer_free(bi);
    veil_backend_buffer_free(bo);
    return s;
}

/* KS-PBS of count ciphertexts with partition's keys; ciphertext i reads
 * luts[idx[i]] (idx NULL: luts[0]). */
static inline veil_status bh_ks_pbs(veil_backend_keys *keys, uint32_t partition, const uint64_t *in,
                                    size_t count, const veil_lut *const *luts, size_t n_luts,
                                    const uint32_t *idx, uint64_t *out) {
    veil_backend_tables *t = NULL;
    veil_backend_buffer *bi, *bo;
    veil_status s =
        veil_backend_tables_new(keys, partition, luts, n_luts, idx, idx ? count : 0, &t);
    if (s != VEIL_OK) return s;
    s = bh_buffers(keys, in, count, count, &bi, &bo);
    if (s == VEIL_OK) s = veil_backend_ks_pbs(t, bi, count, bo);
    s = bh_finish(s, bi, bo, count, out);
    veil_backend_tables_free(t);
    return s;
}

/* Threshold reads (veil_backend_ks_pbs_extract) of count ciphertexts with
 * partition's keys: n_res results each, result s of ciphertext i at
 * out[(s * count + i) * lwe]. */
static inline veil_status bh_ks_pbs_extract(veil_backend_keys *keys, uint32_t partition,
                                            const uint64_t *in, size_t count, const veil_lut *lut,
                                            const veil_extract *ext, uint32_t n_res, size_t period,
                                            uint64_t *out) {
    veil_backend_tables *t = NULL;
    veil_backend_buffer *bi, *bo;
    veil_status s = veil_backend_tables_new_extract(keys, partition, lut, ext, n_res, period, &t);
    if (s != VEIL_OK) return s;
    s = bh_buffers(keys, in, count, count * n_res, &bi, &bo);
    if (s == VEIL_OK) s = veil_backend_ks_pbs_extract(t, bi, count, bo);
    s = bh_finish(s, bi, bo, count * n_res, out);
    veil_backend_tables_free(t);
    return s;
}

static inline veil_status bh_linear(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                                    size_t in_f, const int64_t *w, const uint64_t *bias,
                                    size_t out_f, uint64_t *out) {
    veil_backend_weights *wt = NULL;
    veil_backend_buffer *bi, *bo;
    veil_status s = veil_backend_weights_new_dense(keys, w, in_f, out_f, bias, &wt);
    if (s != VEIL_OK) return s;
    s = bh_buffers(keys, in, batch * in_f, batch * out_f, &bi, &bo);
    if (s == VEIL_OK) s = veil_backend_linear(wt, bi, batch, bo);
    s = bh_finish(s, bi, bo, batch * out_f, out);
    veil_backend_weights_free(wt);
    return s;
}

static inline veil_status bh_conv2d(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                                    const veil_conv_geom *shape, const int64_t *w,
                                    const uint64_t *bias, uint64_t *out) {
    veil_backend_weights *wt = NULL;
    veil_backend_buffer *bi, *bo;
    veil_status s = veil_backend_weights_new_conv2d(keys, shape, w, bias, &wt);
    if (s != VEIL_OK) return s;
    veil_conv_geom g = *shape;
    veil_conv_geom_finish(&g);
    const size_t per_in = (size_t)g.c_in * g.h_in * g.w_in;
    const size_t per_out = (size_t)g.c_out * g.h_out * g.w_out;
    s = bh_buffers(keys, in, batch * per_in, batch * per_out, &bi, &bo);
    if (s == VEIL_OK) s = veil_backend_conv2d(wt, bi, batch, bo);
    s = bh_finish(s, bi, bo, batch * per_out, out);
    veil_backend_weights_free(wt);
    return s;
}

#endif
