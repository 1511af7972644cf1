/* host/backend_internal.h — what a backend implementation provides.
 *
 * backend.c owns the public API: it checks arguments once (shapes, table
 * indices, parameter sets), splits work into pieces the implementation can
 * hold, and then calls the implementation through veil_backend_i. An
 * implementation only ever sees calls that fit its limits:
 *   - ks_pbs: count <= limits.max_pbs;
 *   - linear / conv2d: batch * (inputs per sample) <= limits.max_cts,
 *     batch * (outputs per sample) <= limits.max_cts, and a weight tile of at
 *     most limits.max_weights values (backend.c tiles over output features /
 *     output channels; `out_stride` is then the full row, in ciphertexts).
 * A NULL entry means "not supported" (ggml's convention).
 *
 * Tests include this header to shrink the limits (veil_backend_keys_limits)
 * and so exercise the splitting on the CPU. */
#ifndef VEIL_BACKEND_INTERNAL_H
#define VEIL_BACKEND_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "veil/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_backend_limits {
    size_t max_pbs;     /* ciphertexts per ks_pbs call */
    size_t max_cts;     /* big LWEs per linear/conv2d call (in, and separately out) */
    size_t max_weights; /* int64 weights per linear/conv2d call */
    size_t max_luts;    /* test polynomials per ks_pbs call */
} veil_backend_limits;

struct veil_backend_i {
    const char *name;
    /* Frees the implementation's context (not the veil_backend itself). */
    void (*free)(veil_backend *be);
    /* Uploads keys and sizes buffers; sets keys->impl and keys->limits. */
    veil_status (*keys_new)(veil_backend *be, veil_backend_keys *keys, size_t max_batch);
    void (*keys_free)(veil_backend_keys *keys);
    veil_status (*ks_pbs)(veil_backend_keys *keys, uint32_t partition, const uint64_t *in,
                          size_t count, const veil_lut *const *luts, size_t n_luts,
                          const uint32_t *lut_index, uint64_t *out);
    /* out[b * out_stride + o], o < out_features. */
    veil_status (*linear)(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                          size_t in_features, const int64_t *w, const uint64_t *bias,
                          size_t out_features, size_t out_stride, uint64_t *out);
    /* shape: finished (veil_conv_geom_finish), its c_out the tile's output
     * channels; sample b's output starts at out + b * out_stride * (kN+1)
     * (out_stride in ciphertexts). */
    veil_status (*conv2d)(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                          const veil_conv_geom *shape, const int64_t *w, const uint64_t *bias,
                          size_t out_stride, uint64_t *out);
};

struct veil_backend {
    const struct veil_backend_i *iface;
    veil_backend_kind kind;
    veil_backend_options opts; /* as given to veil_backend_new_opts */
    void *ctx;                 /* the implementation's */
    int dead;                  /* set after a sticky device error */
    char describe[256];        /* filled by the implementation's constructor */
};

struct veil_backend_keys {
    veil_backend *be;
    const veil_eval_key *ek;   /* borrowed: must outlive the keys */
    const veil_params *params; /* partition 0's: the ciphertext dimension */
    size_t max_batch;
    veil_backend_limits limits;
    void *impl;
    char detail[128]; /* how the implementation runs, for logs and benchmarks */
};

/* Implementation constructors (backend_cpu.c, backend_cuda.c). */
veil_status veil_backend_cpu_init(veil_backend *be);
/* VEIL_ERR_UNSUPPORTED (with why) when not built with CUDA or no device. */
/* On be->opts.device. */
veil_status veil_backend_cuda_init(veil_backend *be);
/* 1 when built with CUDA and at least one device answers; any CUDA error
 * counts as "no device". why (may be NULL) gets the reason when 0. */
int veil_backend_cuda_available(char *why, size_t why_len);

/* Testing hook: lowers (never raises) the limits the implementation set, so
 * that backend.c's splitting can be exercised on small inputs. */
void veil_backend_keys_limits(veil_backend_keys *keys, const veil_backend_limits *lim);

/* Testing hook (cuda only): makes a kernel read an invalid device address, as
 * a bug would, and reports it through the backend's error path; the backend
 * must then be dead. Returns the status that path produced. */
veil_status veil_backend_cuda_fault_for_test(veil_backend_keys *keys);

#ifdef __cplusplus
}
#endif
#endif
