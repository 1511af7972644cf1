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
#include <stdio.h>
#include <stdint.h>

#include "veil/conv.h"
#include "veil/program.h"
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

/* The blind rotation the cuda backend runs (veil/cuda.h VEIL_CUDA_PBS_*). */
typedef enum veil_backend_pbs {
    VEIL_BACKEND_PBS_AUTO = 0, /* by parameter set and GPU (VEIL_CUDA_PBS_AUTO) */
    VEIL_BACKEND_PBS_CUFFT = 1,
    VEIL_BACKEND_PBS_FUSED = 2,
    VEIL_BACKEND_PBS_CLUSTER = 3,
} veil_backend_pbs;
/* Parses "auto" | "cufft" | "fused" | "cluster". */
veil_status veil_backend_pbs_parse(const char *s, veil_backend_pbs *out);

/* Policy of a backend, fixed at veil_backend_new_opts: the library reads no
 * environment variable. Each field serves one implementation and is ignored
 * by the other. */
typedef struct veil_backend_options {
    unsigned threads;     /* cpu: worker threads, 1..256; 0: one per online CPU */
    int device;           /* cuda: device id (one backend per GPU; Triton's instance_group) */
    veil_backend_pbs pbs; /* cuda: blind rotation kernel */
    /* cuda: at most this many MiB of batch buffers (sharing a device; tests);
     * < 0: no cap (90% of the free memory, less a margin). */
    int64_t memory_mb;
} veil_backend_options;

/* threads 0, device 0, pbs auto, memory_mb -1. */
void veil_backend_options_default(veil_backend_options *o);
/* The environment overrides that the programs (veil, veil-server, the Triton
 * backend, the benchmarks) honour, read here and nowhere else:
 *   VEIL_THREADS         threads (digits, 1..256)
 *   VEIL_CUDA_DEVICE     device (digits)
 *   VEIL_CUDA_PBS        pbs (auto | cufft | fused | cluster)
 *   VEIL_CUDA_MEMORY_MB  memory_mb (digits)
 * An unset or empty variable leaves its field; a bad value is VEIL_ERR_ARG
 * naming the variable and what it takes, and leaves o unchanged. */
veil_status veil_backend_options_from_env(veil_backend_options *o);
/* The lines of the programs' --help that list those variables. */
void veil_backend_options_env_help(FILE *f);

/* CUDA requested but not built or no device: VEIL_ERR_UNSUPPORTED with why.
 * veil_backend_new: default options. opts NULL: the defaults. */
veil_status veil_backend_new(veil_backend_kind kind, veil_backend **out);
veil_status veil_backend_new_opts(veil_backend_kind kind, const veil_backend_options *opts,
                                  veil_backend **out);
/* For programs (the CLI, the benchmarks): the defaults, the environment's
 * overrides (veil_backend_options_from_env), then veil_backend_new_opts. */
veil_status veil_backend_new_env(veil_backend_kind kind, veil_backend **out);
void veil_backend_free(veil_backend *be);
/* "cpu" or "cuda"; describe: e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)". */
const char *veil_backend_name(const veil_backend *be);
const char *veil_backend_describe(const veil_backend *be);
int veil_backend_healthy(const veil_backend *be);

/* 1 when the backend runs what node n of a compiled program needs (ggml's
 * supports_op): LUT and ROUND need its KS-PBS, a dense LINEAR its linear, a
 * conv2d or sum pool its conv2d; the rest (inputs, outputs, additions,
 * flatten, concat) is moved on the host. The executor asks for every node
 * at veil_plan_new and refuses, naming the layer, what the backend lacks. */
int veil_backend_supports_op(const veil_backend *be, const veil_node *n);

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
