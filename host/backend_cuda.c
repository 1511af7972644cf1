/* The cuda backend: host side. Keys are uploaded once (the bootstrapping key
 * goes to the Fourier domain on the device), every buffer is sized in
 * keys_new from free device memory, and calls only copy and launch.
 *
 * Batches: backend.c hands at most limits.max_pbs ciphertexts per call; a
 * large call is cut into one piece per stream so that the copies of one
 * piece overlap the other's compute (host memory is the caller's pageable
 * memory: host-to-device copies return once staged, device-to-host copies are
 * issued after every piece is queued). Errors map to VEIL_ERR_DEVICE with
 * CUDA's text; a sticky error (the context is lost) marks the backend dead. */
#include "backend_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VEIL_WITH_CUDA

int veil_backend_cuda_available(char *why, size_t why_len) {
    if (why && why_len)
        snprintf(why, why_len, "veil was built without CUDA (configure with -DVEIL_CUDA=ON)");
    return 0;
}

veil_status veil_backend_cuda_fault_for_test(veil_backend_keys *keys) {
    (void)keys;
    return veil_error(VEIL_ERR_UNSUPPORTED, "cuda backend: veil was built without CUDA");
}

veil_status veil_backend_cuda_init(veil_backend *be) {
    (void)be;
    return veil_error(VEIL_ERR_UNSUPPORTED,
                      "cuda backend: veil was built without CUDA (configure with -DVEIL_CUDA=ON)");
}

#else

#include <cuda_runtime_api.h>

#include "veil/cuda.h"

#define CUDA_STREAMS 2
/* Below this many ciphertexts a call runs as one piece on one stream. */
#define CUDA_MIN_SPLIT 512
#define CUDA_MAX_LUTS 1024
#define CUDA_MAX_WEIGHTS ((size_t)1 << 22) /* 32 MiB of int64 weights */
#define CUDA_MAX_CAP ((size_t)1 << 20)
/* Linear/conv2d buffers hold at least this many big LWEs (memory allowing). */
#define CUDA_MIN_IO ((size_t)1 << 16)

typedef struct cuda_backend {
    int device;
} cuda_backend;

typedef struct cuda_stream {
    cudaStream_t s;
} cuda_stream;

/* One partition of the key set (veil/tfhe.h "Key sets"): its parameters
 * with in_dim = the master D, its keys, and its PBS work memory per stream
 * (plans and buffers are per parameter set: one per partition). */
typedef struct cuda_part {
    veil_cuda_params p;
    double *d_bsk_f; /* classic sets: the BSK in the Fourier domain */
    uint64_t *d_bsk; /* multi-bit sets: the BSK as is (group sums on the device) */
    uint64_t *d_ksk; /* D * ks_level rows of n+1 words */
    veil_cuda_pbs_buffer *pbs[CUDA_STREAMS];
} cuda_part;

typedef struct cuda_keys {
    int device;
    uint32_t n_parts;
    cuda_part *parts;
    size_t big1, small1; /* D + 1; the largest n + 1 of the partitions */
    uint32_t max_N;      /* the largest N: table slots */
    uint64_t *d_luts, *d_lut_off, *h_lut_off;
    int64_t *d_w;
    uint64_t *d_bias;
    /* cap ciphertexts per stream; stream i uses slice i of each buffer, and
     * linear/conv2d use whole buffers (io_cap) on stream 0. */
    uint64_t *d_in, *d_out, *d_small;
    uint32_t *d_idx;
    size_t cap, io_cap; /* io_cap >= cap * n_streams */
    unsigned n_streams;
    cuda_stream st[CUDA_STREAMS];
} cuda_keys;

/* Maps a kernel/runtime error code to VEIL_ERR_DEVICE; probes the context so
 * that a sticky error (the context is lost) marks the backend dead. */
static veil_status dev_fail(veil_backend *be, int code, const char *what) {
    int sticky = veil_cuda_error_is_sticky(code);
    (void)cudaGetLastError();
    cudaError_t probe = cudaDeviceSynchronize();
    if (probe != cudaSuccess) {
        (void)cudaGetLastError();
        if (veil_cuda_error_is_sticky((int)probe) || cudaDeviceSynchronize() != cudaSuccess)
            sticky = 1;
        if (!code) code = (int)probe;
    }
    if (sticky) be->dead = 1;
    return veil_error(VEIL_ERR_DEVICE, "cuda %s: %s%s", what, veil_cuda_error_string(code),
                      sticky ? " (unrecoverable: the cuda backend is now disabled)" : "");
}

#define DEV_TRY(be, expr, what)                                                                    \
    do {                                                                                           \
        int dev_e_ = (int)(expr);                                                                  \
        if (dev_e_) return dev_fail((be), dev_e_, (what));                                         \
    } while (0)

int veil_backend_cuda_available(char *why, size_t why_len) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        if (why && why_len)
            snprintf(why, why_len, "no usable CUDA device (cudaGetDeviceCount: %s)",
                     cudaGetErrorString(e));
        return 0;
    }
    if (n <= 0) {
        if (why && why_len) snprintf(why, why_len, "no CUDA device");
        return 0;
    }
    return 1;
}

static void cuda_free(veil_backend *be) {
    free(be->ctx);
    be->ctx = NULL;
}

static void cuda_keys_free(veil_backend_keys *keys) {
    cuda_keys *k = keys->impl;
    if (!k) return;
    cudaSetDevice(k->device);
    for (unsigned i = 0; i < CUDA_STREAMS; i++)
        if (k->st[i].s) cudaStreamSynchronize(k->st[i].s);
    for (uint32_t x = 0; k->parts && x < k->n_parts; x++)
        for (unsigned i = 0; i < CUDA_STREAMS; i++)
            veil_cuda_cleanup_pbs(k->st[i].s, (uint32_t)k->device, &k->parts[x].pbs[i]);
    for (unsigned i = 0; i < CUDA_STREAMS; i++)
        if (k->st[i].s) cudaStreamDestroy(k->st[i].s);
    for (uint32_t x = 0; k->parts && x < k->n_parts; x++) {
        cudaFree(k->parts[x].d_bsk_f);
        cudaFree(k->parts[x].d_bsk);
        cudaFree(k->parts[x].d_ksk);
    }
    free(k->parts);
    cudaFree(k->d_luts);
    cudaFree(k->d_lut_off);
    cudaFree(k->d_w);
    cudaFree(k->d_bias);
    cudaFree(k->d_in);
    cudaFree(k->d_out);
    cudaFree(k->d_small);
    cudaFree(k->d_idx);
    (void)cudaGetLastError();
    free(k->h_lut_off);
    free(k);
    keys->impl = NULL;
}

/* Frees the batch-sized buffers (for a retry with a smaller batch). */
static void free_batch_buffers(cuda_keys *k) {
    for (uint32_t x = 0; x < k->n_parts; x++)
        for (unsigned i = 0; i < CUDA_STREAMS; i++)
            veil_cuda_cleanup_pbs(k->st[i].s, (uint32_t)k->device, &k->parts[x].pbs[i]);
    cudaFree(k->d_in);
    cudaFree(k->d_out);
    cudaFree(k->d_small);
    cudaFree(k->d_idx);
    cudaFree(k->d_bias);
    k->d_in = k->d_out = k->d_small = k->d_bias = NULL;
    k->d_idx = NULL;
    (void)cudaGetLastError();
}

static int alloc_batch_buffers(cuda_keys *k, size_t cap, unsigned n_streams) {
    const size_t total = cap * n_streams, io = k->io_cap;
    int e = (int)cudaMalloc((void **)&k->d_in, io * k->big1 * sizeof(uint64_t));
    if (!e) e = (int)cudaMalloc((void **)&k->d_out, io * k->big1 * sizeof(uint64_t));
    if (!e) e = (int)cudaMalloc((void **)&k->d_small, total * k->small1 * sizeof(uint64_t));
    if (!e) e = (int)cudaMalloc((void **)&k->d_idx, total * sizeof(uint32_t));
    if (!e) e = (int)cudaMalloc((void **)&k->d_bias, io * sizeof(uint64_t));
    for (uint32_t x = 0; !e && x < k->n_parts; x++)
        for (unsigned i = 0; !e && i < n_streams; i++)
            e = veil_cuda_scratch_pbs(k->st[i].s, (uint32_t)k->device, &k->parts[x].p,
                                      (uint32_t)cap, &k->parts[x].pbs[i], NULL, 1);
    return e;
}

/* Partition x's keys: the KSK (D rows) as is, the BSK to the Fourier
 * domain on the device (a multi-bit BSK as is: veil_cuda_pbs_multibit forms
 * each group's sum from it). */
static veil_status upload_part(veil_backend *be, cuda_keys *k, const veil_eval_key *ek,
                               uint32_t x) {
    const veil_pbs_key *pk = &ek->parts[x];
    cuda_part *cp = &k->parts[x];
    const veil_params *p = pk->params;
    size_t ksk_bytes = veil_eval_key_ksk_words(p, pk->in_dim) * sizeof(uint64_t);
    size_t bsk_bytes = veil_eval_key_bsk_words(p) * sizeof(uint64_t);
    DEV_TRY(be, cudaMalloc((void **)&cp->d_ksk, ksk_bytes), "keys: keyswitching key");
    /* On stream 0, not the legacy stream: the streams do not wait for it. */
    cudaStream_t s0 = k->st[0].s;
    DEV_TRY(be, cudaMemcpyAsync(cp->d_ksk, pk->ksk, ksk_bytes, cudaMemcpyHostToDevice, s0),
            "keys: keyswitching key upload");
    if (p->grouping) {
        DEV_TRY(be, cudaMalloc((void **)&cp->d_bsk, bsk_bytes),
                "keys: multi-bit bootstrapping key");
        DEV_TRY(be, cudaMemcpyAsync(cp->d_bsk, pk->bsk, bsk_bytes, cudaMemcpyHostToDevice, s0),
                "keys: multi-bit bootstrapping key upload");
        DEV_TRY(be, cudaStreamSynchronize(s0), "keys: multi-bit bootstrapping key upload");
        return VEIL_OK;
    }
    DEV_TRY(be, cudaMalloc((void **)&cp->d_bsk_f, veil_cuda_bsk_fourier_bytes(&cp->p)),
            "keys: Fourier bootstrapping key");
    uint64_t *d_bsk = NULL;
    DEV_TRY(be, cudaMalloc((void **)&d_bsk, bsk_bytes), "keys: bootstrapping key (staging)");
    int e = (int)cudaMemcpyAsync(d_bsk, pk->bsk, bsk_bytes, cudaMemcpyHostToDevice, s0);
    if (!e) e = veil_cuda_bsk_to_fourier(s0, (uint32_t)k->device, &cp->p, cp->d_bsk_f, d_bsk);
    if (!e) e = (int)cudaStreamSynchronize(s0);
    cudaFree(d_bsk);
    if (e) return dev_fail(be, e, "keys: bootstrapping key to the Fourier domain");
    return VEIL_OK;
}

static veil_status cuda_keys_new(veil_backend *be, veil_backend_keys *keys, size_t max_batch) {
    cuda_backend *cb = be->ctx;
    const veil_eval_key *ek = keys->ek;
    cuda_keys *k = calloc(1, sizeof *k);
    if (!k) return veil_error(VEIL_ERR_NOMEM, "cuda keys: out of memory");
    keys->impl = k;
    k->device = cb->device;
    k->parts = calloc(ek->n_parts, sizeof *k->parts);
    if (!k->parts) {
        cuda_keys_free(keys);
        return veil_error(VEIL_ERR_NOMEM, "cuda keys: out of memory");
    }
    k->n_parts = ek->n_parts;
    /* the blind rotation the options chose (auto: VEIL_CUDA_PBS_AUTO in veil/cuda.h) */
    uint32_t pbs_kernel = VEIL_CUDA_PBS_AUTO;
    switch (be->opts.pbs) {
    case VEIL_BACKEND_PBS_AUTO:
        break;
    case VEIL_BACKEND_PBS_CUFFT:
        pbs_kernel = VEIL_CUDA_PBS_CUFFT;
        break;
    case VEIL_BACKEND_PBS_FUSED:
        pbs_kernel = VEIL_CUDA_PBS_FUSED;
        break;
    case VEIL_BACKEND_PBS_CLUSTER:
        pbs_kernel = VEIL_CUDA_PBS_CLUSTER;
        break;
    }
    /* every partition reads and writes ciphertexts of D + 1 words (D =
     * parts[0].in_dim, the master key: veil/tfhe.h "Key sets") */
    const uint32_t D = ek->parts[0].in_dim;
    k->big1 = (size_t)D + 1;
    for (uint32_t x = 0; x < k->n_parts; x++) {
        const veil_params *px = ek->parts[x].params;
        cuda_part *cp = &k->parts[x];
        cp->p = veil_cuda_params_from(px, pbs_kernel);
        cp->p.in_dim = ek->parts[x].in_dim;
        if ((size_t)px->lwe_dim + 1 > k->small1) k->small1 = (size_t)px->lwe_dim + 1;
        if (px->poly_size > k->max_N) k->max_N = px->poly_size;
        char why[256];
        if (ek->parts[x].in_dim != D || veil_cuda_params_check(&cp->p, why, sizeof why)) {
            if (ek->parts[x].in_dim != D)
                snprintf(why, sizeof why, "input dimension %u, partition 0's is %u",
                         ek->parts[x].in_dim, D);
            cuda_keys_free(keys);
            return veil_error(VEIL_ERR_UNSUPPORTED, "cuda keys, partition %u (%s): %s", x, px->id,
                              why);
        }
    }
    veil_status s = VEIL_OK;
    int e = (int)cudaSetDevice(k->device);
    for (unsigned i = 0; !e && i < CUDA_STREAMS; i++)
        e = (int)cudaStreamCreateWithFlags(&k->st[i].s, cudaStreamNonBlocking);
    if (e) s = dev_fail(be, e, "keys: streams");
    for (uint32_t x = 0; s == VEIL_OK && x < k->n_parts; x++)
        s = upload_part(be, k, ek, x);
    /* Fixed buffers: tables (slots of the largest N) and weights. */
    k->h_lut_off = malloc(CUDA_MAX_LUTS * sizeof(uint64_t));
    if (s == VEIL_OK && !k->h_lut_off) s = veil_error(VEIL_ERR_NOMEM, "cuda keys: out of memory");
    if (s == VEIL_OK) {
        e = (int)cudaMalloc((void **)&k->d_luts, (size_t)CUDA_MAX_LUTS * k->max_N * 8);
        if (!e) e = (int)cudaMalloc((void **)&k->d_lut_off, CUDA_MAX_LUTS * sizeof(uint64_t));
        if (!e) e = (int)cudaMalloc((void **)&k->d_w, CUDA_MAX_WEIGHTS * sizeof(int64_t));
        if (e) s = dev_fail(be, e, "keys: table and weight buffers");
    }
    if (s != VEIL_OK) {
        cuda_keys_free(keys);
        return s;
    }
    /* Batch size: what fits in 90% of the free memory, at most max_batch. */
    /* PBS work memory: every partition's buffers, so the sum of theirs */
    size_t free_b = 0, total_b = 0, pbs_bytes = 0;
    e = (int)cudaMemGetInfo(&free_b, &total_b);
    for (uint32_t x = 0; !e && x < k->n_parts; x++) {
        size_t b = 0;
        e = veil_cuda_scratch_pbs(k->st[0].s, (uint32_t)k->device, &k->parts[x].p, 1024, NULL, &b,
                                  0);
        pbs_bytes += b;
    }
    if (e) {
        s = dev_fail(be, e, "keys: sizing the batch");
        cuda_keys_free(keys);
        return s;
    }
    /* Two sizes: io_cap big LWEs in and out (linear/conv2d inputs and outputs,
     * and the PBS pieces' copies), at least CUDA_MIN_IO so that one sample of a
     * large layer fits whatever max_batch is; and cap_total <= io_cap
     * ciphertexts of PBS work memory. Together at most 90% of free memory. */
    const size_t io_ct = 2 * k->big1 * 8 + 8;
    const size_t pbs_ct = pbs_bytes / 1024 + 1 + k->small1 * 8 + 4;
    const size_t margin = (size_t)256 << 20;
    size_t budget = free_b / 10 * 9;
    budget = budget > margin ? budget - margin : 0;
    /* options.memory_mb caps the batch buffers (sharing a device; tests) */
    if (be->opts.memory_mb >= 0) {
        const size_t lim = (size_t)be->opts.memory_mb << 20;
        if (lim < budget) budget = lim;
    }
    size_t io_cap = max_batch > CUDA_MIN_IO ? max_batch : CUDA_MIN_IO;
    if (io_cap > CUDA_MAX_CAP * CUDA_STREAMS) io_cap = CUDA_MAX_CAP * CUDA_STREAMS;
    if (io_cap * io_ct > budget / 2) io_cap = budget / 2 / io_ct;
    size_t cap_total = io_cap ? (budget - io_cap * io_ct) / pbs_ct : 0;
    if (cap_total > max_batch) cap_total = max_batch;
    if (cap_total > io_cap) cap_total = io_cap;
    if (cap_total == 0) {
        veil_error(VEIL_ERR_DEVICE,
                   "cuda keys: out of device memory: %zu MiB free, %zu MiB usable, %zu KiB per "
                   "ciphertext",
                   free_b >> 20, budget >> 20, (io_ct + pbs_ct) >> 10);
        cuda_keys_free(keys);
        return VEIL_ERR_DEVICE;
    }
    for (;;) {
        k->n_streams = cap_total >= CUDA_MIN_SPLIT ? CUDA_STREAMS : 1;
        k->cap = (cap_total + k->n_streams - 1) / k->n_streams;
        if (k->cap * k->n_streams > io_cap) io_cap = k->cap * k->n_streams;
        k->io_cap = io_cap;
        e = alloc_batch_buffers(k, k->cap, k->n_streams);
        if (!e) break;
        free_batch_buffers(k);
        const int oom = e == (int)cudaErrorMemoryAllocation ||
                        e == VEIL_CUDA_ERR_CUFFT + 2 /* CUFFT_ALLOC_FAILED */;
        if (!oom || cap_total == 1) {
            s = dev_fail(be, e, "keys: batch buffers");
            cuda_keys_free(keys);
            return s;
        }
        cap_total /= 2; /* out of memory: recoverable, try half */
        io_cap /= 2;
    }
    char kinds[128] = "";
    for (uint32_t x = 0, at = 0; x < k->n_parts && at < sizeof kinds; x++) {
        int w = snprintf(kinds + at, sizeof kinds - at, "%s%s", x ? "/" : "",
                         veil_cuda_pbs_kernel_name(k->parts[x].pbs[0]));
        at += w > 0 ? (uint32_t)w : 0;
    }
    snprintf(keys->detail, sizeof keys->detail,
             "%s blind rotation (%u partition(s)), %u stream(s) x %zu, io buffers of %zu", kinds,
             k->n_parts, k->n_streams, k->cap, k->io_cap);
    keys->limits.max_pbs = k->cap * k->n_streams;
    keys->limits.max_cts = k->io_cap;
    keys->limits.max_weights = CUDA_MAX_WEIGHTS;
    keys->limits.max_luts = CUDA_MAX_LUTS;
    return VEIL_OK;
}

static veil_status cuda_ks_pbs(veil_backend_keys *keys, uint32_t partition, const uint64_t *in,
                               size_t count, const veil_lut *const *luts, size_t n_luts,
                               const uint32_t *lut_index, uint64_t *out) {
    veil_backend *be = keys->be;
    cuda_keys *k = keys->impl;
    VEIL_ASSERT(partition < k->n_parts);
    const cuda_part *cp = &k->parts[partition];
    const uint32_t N = cp->p.poly_size, dev = (uint32_t)k->device;
    const size_t small1 = (size_t)cp->p.lwe_dim + 1;
    DEV_TRY(be, cudaSetDevice(k->device), "ks_pbs: device");
    cudaStream_t s0 = k->st[0].s;
    for (size_t t = 0; t < n_luts; t++) {
        DEV_TRY(be,
                cudaMemcpyAsync(k->d_luts + t * N, luts[t]->poly, (size_t)N * 8,
                                cudaMemcpyHostToDevice, s0),
                "ks_pbs: table upload");
        k->h_lut_off[t] = luts[t]->in_offset;
    }
    DEV_TRY(be, cudaMemcpyAsync(k->d_lut_off, k->h_lut_off, n_luts * 8, cudaMemcpyHostToDevice, s0),
            "ks_pbs: table upload");
    DEV_TRY(be, cudaStreamSynchronize(s0), "ks_pbs: table upload");

    size_t pieces = (count + k->cap - 1) / k->cap;
    if (pieces < k->n_streams && count >= CUDA_MIN_SPLIT) pieces = k->n_streams;
    VEIL_ASSERT(pieces >= 1 && pieces <= k->n_streams);
    const size_t piece = (count + pieces - 1) / pieces;
    for (size_t i = 0; i < pieces; i++) {
        const size_t off = i * piece, c = count - off < piece ? count - off : piece;
        cuda_stream *st = &k->st[i];
        uint64_t *d_in = k->d_in + i * k->cap * k->big1;
        uint64_t *d_small = k->d_small + i * k->cap * small1;
        uint64_t *d_out = k->d_out + i * k->cap * k->big1;
        uint32_t *d_idx = k->d_idx + i * k->cap;
        DEV_TRY(be,
                cudaMemcpyAsync(d_in, in + off * k->big1, c * k->big1 * 8, cudaMemcpyHostToDevice,
                                st->s),
                "ks_pbs: input upload");
        if (lut_index)
            DEV_TRY(be,
                    cudaMemcpyAsync(d_idx, lut_index + off, c * 4, cudaMemcpyHostToDevice, st->s),
                    "ks_pbs: table index upload");
        DEV_TRY(be, veil_cuda_keyswitch(st->s, dev, &cp->p, d_small, d_in, cp->d_ksk, (uint32_t)c),
                "ks_pbs: keyswitch");
        const veil_cuda_lut_set set = {.d_polys = k->d_luts,
                                       .d_offsets = k->d_lut_off,
                                       .d_index = lut_index ? d_idx : NULL,
                                       .n_luts = (uint32_t)n_luts};
        DEV_TRY(be,
                cp->p.grouping ? veil_cuda_pbs_multibit(st->s, dev, cp->pbs[i], d_out, d_small,
                                                        &set, cp->d_bsk, (uint32_t)c)
                               : veil_cuda_pbs(st->s, dev, cp->pbs[i], d_out, d_small, &set,
                                               cp->d_bsk_f, (uint32_t)c),
                "ks_pbs: bootstrap");
    }
    for (size_t i = 0; i < pieces; i++) {
        const size_t off = i * piece, c = count - off < piece ? count - off : piece;
        cuda_stream *st = &k->st[i];
        DEV_TRY(be,
                cudaMemcpyAsync(out + off * k->big1, k->d_out + i * k->cap * k->big1,
                                c * k->big1 * 8, cudaMemcpyDeviceToHost, st->s),
                "ks_pbs: output download");
        DEV_TRY(be, cudaStreamSynchronize(st->s), "ks_pbs");
    }
    return VEIL_OK;
}

static veil_status upload_weights(veil_backend *be, cuda_keys *k, const int64_t *w, size_t nw,
                                  const uint64_t *bias, size_t nb) {
    cudaStream_t s0 = k->st[0].s;
    DEV_TRY(be, cudaMemcpyAsync(k->d_w, w, nw * 8, cudaMemcpyHostToDevice, s0), "weights upload");
    if (bias)
        DEV_TRY(be, cudaMemcpyAsync(k->d_bias, bias, nb * 8, cudaMemcpyHostToDevice, s0),
                "bias upload");
    return VEIL_OK;
}

static veil_status cuda_linear(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                               size_t in_features, const int64_t *w, const uint64_t *bias,
                               size_t out_features, size_t out_stride, uint64_t *out) {
    veil_backend *be = keys->be;
    cuda_keys *k = keys->impl;
    cudaStream_t s0 = k->st[0].s;
    DEV_TRY(be, cudaSetDevice(k->device), "linear: device");
    VEIL_TRY(upload_weights(be, k, w, out_features * in_features, bias, out_features));
    DEV_TRY(
        be,
        cudaMemcpyAsync(k->d_in, in, batch * in_features * k->big1 * 8, cudaMemcpyHostToDevice, s0),
        "linear: input upload");
    DEV_TRY(be,
            veil_cuda_linear(s0, (uint32_t)k->device, k->d_out, k->d_in, k->d_w,
                             bias ? k->d_bias : NULL, (uint32_t)batch, (uint32_t)in_features,
                             (uint32_t)out_features, (uint32_t)k->big1),
            "linear");
    const size_t row = out_features * k->big1 * 8;
    DEV_TRY(be,
            cudaMemcpy2DAsync(out, out_stride * k->big1 * 8, k->d_out, row, row, batch,
                              cudaMemcpyDeviceToHost, s0),
            "linear: output download");
    DEV_TRY(be, cudaStreamSynchronize(s0), "linear");
    return VEIL_OK;
}

static veil_status cuda_conv2d(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                               const veil_conv_geom *s, const int64_t *w, const uint64_t *bias,
                               size_t out_stride, uint64_t *out) {
    veil_backend *be = keys->be;
    cuda_keys *k = keys->impl;
    cudaStream_t s0 = k->st[0].s;
    const uint32_t ho = s->h_out, wo = s->w_out;
    const size_t per_in = (size_t)s->c_in * s->h_in * s->w_in;
    const size_t per_out = (size_t)s->c_out * ho * wo;
    DEV_TRY(be, cudaSetDevice(k->device), "conv2d: device");
    VEIL_TRY(upload_weights(be, k, w, (size_t)s->c_out * s->c_in * s->kh * s->kw, bias, s->c_out));
    DEV_TRY(be,
            cudaMemcpyAsync(k->d_in, in, batch * per_in * k->big1 * 8, cudaMemcpyHostToDevice, s0),
            "conv2d: input upload");
    DEV_TRY(be,
            veil_cuda_conv2d(s0, (uint32_t)k->device, s, k->d_out, k->d_in, k->d_w,
                             bias ? k->d_bias : NULL, (uint32_t)batch, (uint32_t)k->big1),
            "conv2d");
    const size_t row = per_out * k->big1 * 8;
    DEV_TRY(be,
            cudaMemcpy2DAsync(out, out_stride * k->big1 * 8, k->d_out, row, row, batch,
                              cudaMemcpyDeviceToHost, s0),
            "conv2d: output download");
    DEV_TRY(be, cudaStreamSynchronize(s0), "conv2d");
    return VEIL_OK;
}

veil_status veil_backend_cuda_fault_for_test(veil_backend_keys *keys) {
    if (!keys || keys->be->iface->keys_new != cuda_keys_new)
        return veil_error(VEIL_ERR_ARG, "fault_for_test: not cuda keys");
    cuda_keys *k = keys->impl;
    const uint64_t *bad = (const uint64_t *)(uintptr_t)0x10;
    DEV_TRY(keys->be,
            veil_cuda_keyswitch(k->st[0].s, (uint32_t)k->device, &k->parts[0].p, k->d_small, bad,
                                k->parts[0].d_ksk, 1),
            "fault_for_test: keyswitch");
    DEV_TRY(keys->be, cudaStreamSynchronize(k->st[0].s), "fault_for_test: keyswitch");
    return VEIL_OK;
}

static const struct veil_backend_i cuda_iface = {
    /* .name      = */ "cuda",
    /* .free      = */ cuda_free,
    /* .keys_new  = */ cuda_keys_new,
    /* .keys_free = */ cuda_keys_free,
    /* .ks_pbs    = */ cuda_ks_pbs,
    /* .linear    = */ cuda_linear,
    /* .conv2d    = */ cuda_conv2d,
};

veil_status veil_backend_cuda_init(veil_backend *be) {
    char why[256];
    if (!veil_backend_cuda_available(why, sizeof why))
        return veil_error(VEIL_ERR_UNSUPPORTED, "cuda backend: %s", why);
    const int device = be->opts.device;
    struct cudaDeviceProp prop;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return veil_error(VEIL_ERR_UNSUPPORTED, "cuda backend: device %d: %s", device,
                          cudaGetErrorString(e));
    }
    cuda_backend *cb = calloc(1, sizeof *cb);
    if (!cb) return veil_error(VEIL_ERR_NOMEM, "cuda backend: out of memory");
    cb->device = device;
    be->iface = &cuda_iface;
    be->ctx = cb;
    snprintf(be->describe, sizeof be->describe, "cuda: %.200s (sm_%d%d, %zu GiB)", prop.name,
             prop.major, prop.minor, (size_t)(prop.totalGlobalMem >> 30));
    return VEIL_OK;
}

#endif
