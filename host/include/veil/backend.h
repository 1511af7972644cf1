/* veil/backend.h — one interface, two implementations: `cpu` (the engine's
 * reference code) and `cuda` (kernels/, batched on the GPU).
 *
 * Shape (ggml's backend struct, TFHE-rs's scratch/run/cleanup):
 *   veil_backend_new(kind)          pick a backend (AUTO: cuda when built with
 *                                   CUDA and a device is present, else cpu)
 *   veil_backend_keys_new(be, ek, max_batch)
 *                                   upload the evaluation keys once (Fourier
 *                                   BSK on the device), make FFT plans, size
 *                                   every work buffer for max_batch
 *   veil_backend_ks_pbs(...)        run a batch; allocates nothing; batches
 *   veil_backend_linear(...)        larger than max_batch are split, not refused
 *   veil_backend_keys_free(...)     free everything
 *
 * All ciphertexts here are LWEs under the master key (dimension D = k*N of
 * partition 0, the widest; D+1 words each) in
 * host memory; device memory never leaves the backend. Errors come back as
 * VEIL_ERR_DEVICE with the CUDA message. After a sticky CUDA error the backend
 * marks itself dead (veil_backend_healthy() returns 0) and refuses work. */
#ifndef VEIL_BACKEND_H
#define VEIL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "veil/conv.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum veil_backend_kind {
    VEIL_BACKEND_AUTO = 0,
    VEIL_BACKEND_CPU = 1,
    VEIL_BACKEND_CUDA = 2,
} veil_backend_kind;

typedef struct veil_backend veil_backend;
typedef struct veil_backend_keys veil_backend_keys;

/* Parses "auto" | "cpu" | "cuda". */
veil_status veil_backend_kind_parse(const char *s, veil_backend_kind *out);
/* CUDA requested but not built or no device: VEIL_ERR_UNSUPPORTED with why. */
veil_status veil_backend_new(veil_backend_kind kind, veil_backend **out);
/* The same on CUDA device `device` (cuda only; < 0: $VEIL_CUDA_DEVICE or 0):
 * one backend per GPU in one process (Triton's instance_group). */
veil_status veil_backend_new_device(veil_backend_kind kind, int device, veil_backend **out);
void veil_backend_free(veil_backend *be);
/* "cpu" or "cuda"; describe: e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)". */
const char *veil_backend_name(const veil_backend *be);
const char *veil_backend_describe(const veil_backend *be);
int veil_backend_healthy(const veil_backend *be);

veil_status veil_backend_keys_new(veil_backend *be, const veil_eval_key *ek, size_t max_batch,
                                  veil_backend_keys **out);
void veil_backend_keys_free(veil_backend_keys *keys);

/* Batched keyswitch + PBS with the keys of `partition` (index into the
 * evaluation key's partitions, veil/tfhe.h "Key sets"; the tables must have
 * that partition's N). in/out: count LWEs under the master key (D + 1 words;
 * a partition with a smaller k*N returns its outputs zero-extended). Ciphertext i is looked up
 * in luts[lut_index[i]] (lut_index NULL: all use luts[0]). One array of
 * tables serves per-channel activations without copying a table per
 * ciphertext. in and out may not alias. */
veil_status veil_backend_ks_pbs(veil_backend_keys *keys, uint32_t partition, const uint64_t *in,
                                size_t count, const veil_lut *const *luts, size_t n_luts,
                                const uint32_t *lut_index, uint64_t *out);

/* Dense layer on big LWEs, exact mod 2^64, for a batch of samples:
 * out[b][o] = sum_i w[o*in_features + i] * in[b][i] + bias[o] (bias: plaintexts,
 * NULL for none). */
veil_status veil_backend_linear(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                                size_t in_features, const int64_t *w, const uint64_t *bias,
                                size_t out_features, uint64_t *out);

/* 2-D convolution, NCHW, weights [C_out][C_in][KH][KW], exact mod 2^64
 * (geometry: veil/conv.h; h_out and w_out 0 are computed, else they must be
 * what the other fields give). */
veil_status veil_backend_conv2d(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                                const veil_conv_geom *shape, const int64_t *w, const uint64_t *bias,
                                uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
