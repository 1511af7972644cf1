/* host/backend_internal.h — what a backend implementation provides.
 *
 * backend.c owns the public API: it checks arguments once (shapes, bounds,
 * table indices, parameter sets, that every object of a call belongs to the
 * same keys), splits a KS-PBS into pieces of at most limits.max_pbs, and then
 * calls the implementation through veil_backend_i with the buffers' data
 * pointers (host memory for cpu, device memory for cuda; offsets are plain
 * pointer arithmetic on them, as ggml's tensor->data). An implementation
 * never sees a call outside its buffers. A NULL op means "not supported"
 * (ggml's convention); buffer_alloc/free, upload and download are required.
 *
 * Tests include this header to shrink the limits (veil_backend_keys_limits)
 * and so exercise the splitting on the CPU. */
#ifndef VEIL_BACKEND_INTERNAL_H
#define VEIL_BACKEND_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "veil/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_backend_limits {
    size_t max_pbs; /* ciphertexts per ks_pbs call */
} veil_backend_limits;

struct veil_backend_i {
    const char *name;
    /* Frees the implementation's context (not the veil_backend itself). */
    void (*free)(veil_backend *be);
    /* Uploads keys and sizes the KS-PBS work memory; sets keys->impl and
     * keys->limits. */
    veil_status (*keys_new)(veil_backend *be, veil_backend_keys *keys, size_t max_batch);
    void (*keys_free)(veil_backend_keys *keys);
    /* words > 0 words of the device's memory. */
    veil_status (*buffer_alloc)(veil_backend_keys *keys, size_t words, uint64_t **data);
    void (*buffer_free)(veil_backend_keys *keys, uint64_t *data);
    /* host -> device and device -> host, words each; return when done. */
    veil_status (*upload)(veil_backend_keys *keys, uint64_t *dst, const uint64_t *src,
                          size_t words);
    veil_status (*download)(veil_backend_keys *keys, uint64_t *dst, const uint64_t *src,
                            size_t words);
    /* rows runs of width words, device to device (pitches in words). */
    veil_status (*copy)(veil_backend_keys *keys, uint64_t *dst, size_t dst_pitch,
                        const uint64_t *src, size_t src_pitch, size_t width, size_t rows);
    /* Sets t->impl from the checked tables (t->n_luts, t->n_index set, and
     * t->ext, n_res, period for veil_backend_tables_new_extract's; for
     * veil_backend_tables_new_wop's t->wop and its fields, luts and index
     * NULL). */
    veil_status (*tables_new)(veil_backend_keys *keys, veil_backend_tables *t,
                              const veil_lut *const *luts, const uint32_t *index);
    void (*tables_free)(veil_backend_keys *keys, veil_backend_tables *t);
    /* Sets w->impl: n_w weights, bias NULL or n_bias plaintexts. */
    veil_status (*weights_new)(veil_backend_keys *keys, veil_backend_weights *w,
                               const int64_t *weights, size_t n_w, const uint64_t *bias,
                               size_t n_bias);
    void (*weights_free)(veil_backend_keys *keys, veil_backend_weights *w);
    /* count <= limits.max_pbs ciphertexts; ciphertext i reads table
     * index[at + i] (when the tables have an index). */
    veil_status (*ks_pbs)(veil_backend_keys *keys, const veil_backend_tables *t, size_t at,
                          const uint64_t *in, size_t count, uint64_t *out);
    /* Tables with extractions (t->ext): count <= limits.max_pbs inputs, the
     * call's input i being input at + i of the whole; result s of input i at
     * out + (s * out_stride + i) * lwe. */
    veil_status (*ks_pbs_extract)(veil_backend_keys *keys, const veil_backend_tables *t, size_t at,
                                  const uint64_t *in, size_t count, uint64_t *out,
                                  size_t out_stride);
    /* WoP-PBS (veil/wop.h) through tables with t->wop (t->partition a WoP
     * set's): count ciphertexts, ciphertext i reading table ((i %
     * t->wop_size) / t->wop_inner) % t->n_luts of 2^t->wop_w entries,
     * t->out_delta the output's Delta. NULL: the backend has none. */
    veil_status (*wop_pbs)(veil_backend_keys *keys, const veil_backend_tables *t,
                           const uint64_t *in, size_t count, uint64_t *out);
    veil_status (*linear)(veil_backend_keys *keys, const veil_backend_weights *w,
                          const uint64_t *in, size_t batch, uint64_t *out);
    /* w->geom finished (veil_conv_geom_finish). */
    veil_status (*conv2d)(veil_backend_keys *keys, const veil_backend_weights *w,
                          const uint64_t *in, size_t batch, uint64_t *out);
    /* count ciphertexts: out = a + f * b; out = f * in, body += pt. */
    veil_status (*add)(veil_backend_keys *keys, uint64_t *out, const uint64_t *a, const uint64_t *b,
                       size_t count, uint64_t f);
    veil_status (*scale)(veil_backend_keys *keys, uint64_t *out, const uint64_t *in, size_t count,
                         uint64_t f, uint64_t pt);
};

struct veil_backend {
    const struct veil_backend_i *iface;
    veil_backend_kind kind;
    veil_backend_options opts; /* as given to veil_backend_new_opts */
    void *ctx;                 /* the implementation's */
    atomic_int dead;           /* set after a sticky device error (by the thread that met it;
                                * read by any: the server's health, its handlers) */
    char describe[256];        /* filled by the implementation's constructor */
};

struct veil_backend_keys {
    veil_backend *be;
    const veil_eval_key *ek;   /* borrowed: must outlive the keys */
    const veil_params *params; /* partition 0's: the ciphertext dimension */
    size_t max_batch;
    veil_backend_limits limits;
    size_t lwe;    /* D + 1: words per ciphertext */
    size_t n_live; /* buffers, tables and weights not yet freed */
    void *impl;
    char detail[128]; /* how the implementation runs, for logs and benchmarks */
};

struct veil_backend_buffer {
    veil_backend_keys *keys;
    size_t count;   /* ciphertexts */
    uint64_t *data; /* count * keys->lwe words, the implementation's memory */
};

struct veil_backend_tables {
    veil_backend_keys *keys;
    uint32_t partition;
    size_t n_luts;
    size_t n_index; /* 0: no index, every ciphertext reads table 0 */
    /* veil_backend_tables_new_extract's: n_res * period extractions (owned),
     * else NULL */
    veil_extract *ext;
    uint32_t n_res;
    size_t period;
    /* veil_backend_tables_new_wop's: n_luts tables of 2^wop_w entries (the
     * caller's, borrowed: the cpu reads them at each lookup, cuda copies them
     * in tables_new), read by the rule of wop_size and wop_inner, the results
     * at out_delta; else NULL */
    const int64_t *wop;
    unsigned wop_w;
    size_t wop_size, wop_inner;
    uint64_t out_delta;
    void *impl;
};

struct veil_backend_weights {
    veil_backend_keys *keys;
    int conv;            /* 0: dense, 1: conv2d */
    size_t in_features;  /* dense */
    size_t out_features; /* dense */
    veil_conv_geom geom; /* conv2d, finished */
    int has_bias;
    void *impl;
};

/* Implementation constructors (backend_cpu.c, backend_cuda.c). */
veil_status veil_backend_cpu_init(veil_backend *be);
/* The visible CUDA devices (0 without CUDA or on any CUDA error). */
unsigned veil_backend_cuda_device_count(void);
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
