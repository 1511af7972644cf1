/* The cuda backend: host side. Keys are uploaded once (the bootstrapping key
 * goes to the Fourier domain on the device) and the KS-PBS work memory is
 * sized in keys_new; buffers, tables and weights are device memory made once
 * (at plan time); ops only launch kernels on one stream, in order, so a
 * program's values stay on the device from upload to download, and nothing
 * waits until a download (or upload) returns. Errors map to VEIL_ERR_DEVICE
 * with CUDA's text (a kernel's own fault surfaces at the next
 * synchronisation, the batch's download); a sticky error (the context is
 * lost) marks the backend dead. */
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

unsigned veil_backend_cuda_device_count(void) {
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

#include <cuda.h> /* CUcontext, CUresult: types only, libcuda is not linked */
#include <cuda_runtime_api.h>

#include "veil/cuda.h"
#include "veil/wop.h"

#define CUDA_MAX_CAP ((size_t)1 << 20)

typedef struct cuda_backend {
    int device;
} cuda_backend;

/* One partition of the key set (veil/tfhe.h "Key sets"): its parameters
 * with in_dim = the master D, its keys, and its PBS work memory (plans and
 * buffers are per parameter set: one per partition). */
typedef struct cuda_part {
    veil_cuda_params p;
    double *d_bsk_f; /* classic sets: the BSK in the Fourier domain */
    uint64_t *d_bsk; /* multi-bit sets: the BSK as is (group sums on the device) */
    uint64_t *d_ksk; /* ksk_rows * ks_level rows of n+1 words */
    veil_cuda_pbs_buffer *pbs;
    /* WoP sets (veil_wop_params_of): the packing keyswitching keys as they
     * are, the set's gadgets, and the WoP-PBS's work memory (made at the
     * first lookup: programs without WoP lookups never pay for it) */
    uint64_t *d_pfpks;
    const veil_wop_params *wop;
    veil_cuda_wop_buffer *wop_buf;
    size_t wop_piece; /* lookups the work memory holds */
} cuda_part;

typedef struct cuda_keys {
    int device;
    uint32_t n_parts;
    cuda_part *parts;
    size_t big1, small1; /* D + 1; the largest n + 1 of the partitions */
    uint64_t *d_small;   /* cap keyswitched LWEs */
    size_t cap;          /* ciphertexts per KS-PBS piece */
    cudaStream_t s;      /* every op of these keys, in order */
    /* threshold reads: cap accumulators of the widest partition's (k+1) N
     * words, made with the first tables that extract (NULL until then) */
    uint64_t *d_acc;
} cuda_keys;

/* Test polynomials, their offsets and the per-ciphertext index on the
 * device; the extractions of veil_backend_tables_new_extract's tables; the
 * tables of veil_backend_tables_new_wop's (n_luts x 2^wop_w entries). */
typedef struct cuda_tables {
    uint64_t *d_polys, *d_offsets;
    uint32_t *d_index;
    veil_extract *d_ext;
    int64_t *d_wop;
} cuda_tables;

typedef struct cuda_weights {
    int64_t *d_w;
    uint64_t *d_bias;
} cuda_weights;

/* Maps a kernel/runtime error code to VEIL_ERR_DEVICE; probes the context so
 * that a sticky error (the context is lost) marks the backend dead. The
 * kernels' own refusals (a kernel that does not run this parameter set, an
 * argument out of range) are no device fault: VEIL_ERR_UNSUPPORTED and
 * VEIL_ERR_ARG, without probing the device. */
static veil_status dev_fail(veil_backend *be, int code, const char *what) {
    if (code == VEIL_CUDA_ERR_UNSUPPORTED || code == VEIL_CUDA_ERR_ARG)
        return veil_error(code == VEIL_CUDA_ERR_ARG ? VEIL_ERR_ARG : VEIL_ERR_UNSUPPORTED,
                          "cuda %s: %s", what, veil_cuda_error_string(code));
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

/* The free functions make the keys' device current and give the caller's
 * back: a plan may be freed on any thread, whose current device must not
 * change under it. device_enter returns the caller's device, or -1 when
 * there is none to give back: a thread with no CUDA context (one that never
 * used CUDA) reads device 0 from cudaGetDevice, and setting 0 back would make
 * device 0's primary context in a process that may never have used it. The
 * driver's cuCtxGetCurrent tells the two apart; it is reached through the
 * runtime (cudaGetDriverEntryPointByVersion) so that nothing links libcuda,
 * which hosts without a GPU driver lack. device_leave restores the device and
 * clears the errors met (a pending error of the caller's included, as
 * before). */
static int device_enter(int device) {
    int prev = -1;
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q;
    CUresult (*get_ctx)(CUcontext *) = NULL;
    CUcontext ctx = NULL;
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000, cudaEnableDefault, &q) ==
            cudaSuccess &&
        q == cudaDriverEntryPointSuccess && fn) {
        memcpy(&get_ctx, &fn, sizeof get_ctx);
        if (get_ctx(&ctx) != CUDA_SUCCESS || !ctx || cudaGetDevice(&prev) != cudaSuccess) prev = -1;
    }
    if (prev != device) cudaSetDevice(device);
    return prev;
}

static void device_leave(int device, int prev) {
    if (prev >= 0 && prev != device) cudaSetDevice(prev);
    (void)cudaGetLastError();
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

unsigned veil_backend_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n > 0 ? (unsigned)n : 0;
}

static void cuda_free(veil_backend *be) {
    free(be->ctx);
    be->ctx = NULL;
}

static void cuda_keys_free(veil_backend_keys *keys) {
    cuda_keys *k = keys->impl;
    if (!k) return;
    const int prev = device_enter(k->device);
    if (k->s) cudaStreamSynchronize(k->s);
    for (uint32_t x = 0; k->parts && x < k->n_parts; x++) {
        veil_cuda_cleanup_pbs(k->s, (uint32_t)k->device, &k->parts[x].pbs);
        veil_cuda_cleanup_wop(k->s, (uint32_t)k->device, &k->parts[x].wop_buf);
    }
    for (uint32_t x = 0; k->parts && x < k->n_parts; x++) {
        cudaFree(k->parts[x].d_pfpks);
        cudaFree(k->parts[x].d_bsk_f);
        cudaFree(k->parts[x].d_bsk);
        cudaFree(k->parts[x].d_ksk);
    }
    free(k->parts);
    cudaFree(k->d_small);
    cudaFree(k->d_acc);
    if (k->s) cudaStreamDestroy(k->s);
    device_leave(k->device, prev);
    free(k);
    keys->impl = NULL;
}

/* Frees the KS-PBS work memory (for a retry with a smaller piece). */
static void free_work(cuda_keys *k) {
    for (uint32_t x = 0; x < k->n_parts; x++)
        veil_cuda_cleanup_pbs(k->s, (uint32_t)k->device, &k->parts[x].pbs);
    cudaFree(k->d_small);
    k->d_small = NULL;
    (void)cudaGetLastError();
}

/* The accumulators' words per ciphertext: the widest partition's (k+1) N. */
static size_t acc_words(const cuda_keys *k) {
    size_t w = 0;
    for (uint32_t x = 0; x < k->n_parts; x++) {
        const size_t wx = (size_t)(k->parts[x].p.glwe_dim + 1) * k->parts[x].p.poly_size;
        w = wx > w ? wx : w;
    }
    return w;
}

/* The PBS work memory of every partition for count ciphertexts (what
 * veil_cuda_scratch_pbs would allocate), into *bytes. */
static int pbs_work_bytes(const cuda_keys *k, size_t count, size_t *bytes) {
    *bytes = 0;
    for (uint32_t x = 0; x < k->n_parts; x++) {
        size_t b = 0;
        const int e = veil_cuda_scratch_pbs(k->s, (uint32_t)k->device, &k->parts[x].p,
                                            (uint32_t)count, NULL, &b, 0);
        if (e) return e;
        *bytes += b;
    }
    return 0;
}

static int alloc_work(cuda_keys *k, size_t cap) {
    int e = (int)cudaMalloc((void **)&k->d_small, cap * k->small1 * sizeof(uint64_t));
    for (uint32_t x = 0; !e && x < k->n_parts; x++)
        e = veil_cuda_scratch_pbs(k->s, (uint32_t)k->device, &k->parts[x].p, (uint32_t)cap,
                                  &k->parts[x].pbs, NULL, 1);
    return e;
}

/* Partition x's keys: the KSK (its own ksk_rows rows, the kernel told so:
 * veil_cuda_params.ks_rows) rounded to 32 bits and widened again
 * (veil_keyswitch_key_wide: the CPU's keyswitch words), the BSK to the Fourier
 * domain on the device (a multi-bit BSK as is: veil_cuda_pbs_multibit forms
 * each group's sum from it). */
static veil_status upload_part(veil_backend *be, cuda_keys *k, const veil_eval_key *ek,
                               uint32_t x) {
    const veil_pbs_key *pk = &ek->parts[x];
    cuda_part *cp = &k->parts[x];
    const veil_params *p = pk->params;
    size_t ksk_bytes = veil_eval_key_ksk_words(p, pk->ksk_rows) * sizeof(uint64_t);
    size_t bsk_bytes = veil_eval_key_bsk_words(p) * sizeof(uint64_t);
    DEV_TRY(be, cudaMalloc((void **)&cp->d_ksk, ksk_bytes), "keys: keyswitching key");
    /* On the keys' stream, not the legacy stream: it does not wait for it. */
    cudaStream_t s0 = k->s;
    {
        /* in chunks of 8 MiB through one host buffer */
        const size_t words = ksk_bytes / sizeof(uint64_t), chunk = (size_t)1 << 20;
        uint64_t *wide = malloc(sizeof(uint64_t) * (words < chunk ? words : chunk));
        if (!wide)
            return veil_error(VEIL_ERR_NOMEM, "keys: keyswitching key upload: out of memory");
        for (size_t w0 = 0; w0 < words; w0 += chunk) {
            const size_t nw = words - w0 < chunk ? words - w0 : chunk;
            veil_keyswitch_key_wide(pk, w0, nw, wide);
            const cudaError_t ce = cudaMemcpyAsync(cp->d_ksk + w0, wide, nw * sizeof(uint64_t),
                                                   cudaMemcpyHostToDevice, s0);
            const cudaError_t se = ce == cudaSuccess ? cudaStreamSynchronize(s0) : ce;
            if (se != cudaSuccess) {
                free(wide);
                DEV_TRY(be, se, "keys: keyswitching key upload");
            }
        }
        free(wide);
    }
    if (p->grouping) {
        DEV_TRY(be, cudaMalloc((void **)&cp->d_bsk, bsk_bytes),
                "keys: multi-bit bootstrapping key");
        DEV_TRY(be, cudaMemcpyAsync(cp->d_bsk, pk->bsk, bsk_bytes, cudaMemcpyHostToDevice, s0),
                "keys: multi-bit bootstrapping key upload");
        DEV_TRY(be, cudaStreamSynchronize(s0), "keys: multi-bit bootstrapping key upload");
        return VEIL_OK;
    }
    cp->wop = veil_wop_params_of(p);
    if (cp->wop) {
        const size_t pw = veil_eval_key_pfpks_words(p) * sizeof(uint64_t);
        if (!pk->pfpks)
            return veil_error(VEIL_ERR_ARG, "cuda keys: partition %u (%s): no packing keys", x,
                              p->id);
        DEV_TRY(be, cudaMalloc((void **)&cp->d_pfpks, pw), "keys: packing keyswitching keys");
        DEV_TRY(be, cudaMemcpyAsync(cp->d_pfpks, pk->pfpks, pw, cudaMemcpyHostToDevice, s0),
                "keys: packing keyswitching keys upload");
        DEV_TRY(be, cudaStreamSynchronize(s0), "keys: packing keyswitching keys upload");
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
    VEIL_TRY(veil_eval_key_check_domains(ek, VEIL_KEY_STANDARD, "cuda keys"));
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
    case VEIL_BACKEND_PBS_SPLIT:
        pbs_kernel = VEIL_CUDA_PBS_SPLIT;
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
        cp->p.ks_rows = ek->parts[x].ksk_rows; /* the key's own rows, not padded to D */
        if ((size_t)px->lwe_dim + 1 > k->small1) k->small1 = (size_t)px->lwe_dim + 1;
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
    if (!e) e = (int)cudaStreamCreateWithFlags(&k->s, cudaStreamNonBlocking);
    if (e) s = dev_fail(be, e, "keys: stream");
    for (uint32_t x = 0; s == VEIL_OK && x < k->n_parts; x++)
        s = upload_part(be, k, ek, x);
    if (s != VEIL_OK) {
        cuda_keys_free(keys);
        return s;
    }
    /* KS-PBS work memory for at most max_batch ciphertexts, in at most half
     * of 90% of the free memory (less a margin): the plan's buffers, tables
     * and weights take the rest. Every partition's buffers, so the sum. */
    size_t free_b = 0, total_b = 0, pbs_bytes = 0;
    e = (int)cudaMemGetInfo(&free_b, &total_b);
    if (!e) e = pbs_work_bytes(k, 1024, &pbs_bytes);
    if (e) {
        s = dev_fail(be, e, "keys: sizing the batch");
        cuda_keys_free(keys);
        return s;
    }
    /* per ciphertext beside the plans' buffers: its keyswitched LWE and
     * the threshold reads' accumulator (d_acc, made with the first tables
     * that extract; counted for every program, a word per coefficient) */
    const size_t fixed_ct = (k->small1 + acc_words(k)) * sizeof(uint64_t);
    const size_t pbs_ct = pbs_bytes / 1024 + 1 + fixed_ct;
    const size_t margin = (size_t)256 << 20;
    size_t budget = free_b / 10 * 9;
    budget = budget > margin ? budget - margin : 0;
    /* options.memory_mb caps the work memory (sharing a device; tests) */
    if (be->opts.memory_mb >= 0) {
        const size_t lim = (size_t)be->opts.memory_mb << 20;
        if (lim < budget) budget = lim;
    }
    size_t cap = budget / 2 / pbs_ct;
    if (cap > max_batch) cap = max_batch;
    if (cap > CUDA_MAX_CAP) cap = CUDA_MAX_CAP;
    /* per ciphertext from 1024 is a linear estimate; a buffer that is not
     * linear in the batch (the multi-bit cluster kernel's key bundles, sized
     * for a number of ciphertexts at once) is checked at the cap itself */
    for (size_t at_cap = 0; !e && cap > 1; cap /= 2) {
        e = pbs_work_bytes(k, cap, &at_cap);
        if (!e && at_cap + cap * fixed_ct <= budget / 2) break;
    }
    if (e) {
        s = dev_fail(be, e, "keys: sizing the batch");
        cuda_keys_free(keys);
        return s;
    }
    if (cap == 0) {
        veil_error(VEIL_ERR_DEVICE,
                   "cuda keys: out of device memory: %zu MiB free, %zu MiB usable, %zu KiB per "
                   "ciphertext",
                   free_b >> 20, budget >> 20, pbs_ct >> 10);
        cuda_keys_free(keys);
        return VEIL_ERR_DEVICE;
    }
    for (;;) {
        e = alloc_work(k, cap);
        if (!e) break;
        free_work(k);
        const int oom = e == (int)cudaErrorMemoryAllocation ||
                        e == VEIL_CUDA_ERR_CUFFT + 2 /* CUFFT_ALLOC_FAILED */;
        if (!oom || cap == 1) {
            s = dev_fail(be, e, "keys: KS-PBS work memory");
            cuda_keys_free(keys);
            return s;
        }
        cap /= 2; /* out of memory: recoverable, try half */
    }
    k->cap = cap;
    char kinds[128] = "";
    for (uint32_t x = 0, at = 0; x < k->n_parts && at < sizeof kinds; x++) {
        int w = snprintf(kinds + at, sizeof kinds - at, "%s%s", x ? "/" : "",
                         veil_cuda_pbs_kernel_name(k->parts[x].pbs));
        at += w > 0 ? (uint32_t)w : 0;
    }
    snprintf(keys->detail, sizeof keys->detail,
             "%s blind rotation (%u partition%s), KS-PBS in pieces of %zu", kinds, k->n_parts,
             k->n_parts == 1 ? "" : "s", k->cap);
    keys->limits.max_pbs = k->cap;
    return VEIL_OK;
}

/* ---- buffers, tables, weights ------------------------------------------------ */

static veil_status cuda_buffer_alloc(veil_backend_keys *keys, size_t words, uint64_t **data) {
    cuda_keys *k = keys->impl;
    DEV_TRY(keys->be, cudaSetDevice(k->device), "buffer: device");
    DEV_TRY(keys->be, cudaMalloc((void **)data, words * sizeof(uint64_t)), "buffer");
    return VEIL_OK;
}

static void cuda_buffer_free(veil_backend_keys *keys, uint64_t *data) {
    cuda_keys *k = keys->impl;
    const int prev = device_enter(k->device);
    cudaFree(data); /* waits for the device: no op still reads it */
    device_leave(k->device, prev);
}

static veil_status cuda_upload(veil_backend_keys *keys, uint64_t *dst, const uint64_t *src,
                               size_t words) {
    cuda_keys *k = keys->impl;
    DEV_TRY(keys->be, cudaSetDevice(k->device), "upload: device");
    DEV_TRY(keys->be, cudaMemcpyAsync(dst, src, words * 8, cudaMemcpyHostToDevice, k->s), "upload");
    DEV_TRY(keys->be, cudaStreamSynchronize(k->s), "upload");
    return VEIL_OK;
}

static veil_status cuda_download(veil_backend_keys *keys, uint64_t *dst, const uint64_t *src,
                                 size_t words) {
    cuda_keys *k = keys->impl;
    DEV_TRY(keys->be, cudaSetDevice(k->device), "download: device");
    DEV_TRY(keys->be, cudaMemcpyAsync(dst, src, words * 8, cudaMemcpyDeviceToHost, k->s),
            "download");
    DEV_TRY(keys->be, cudaStreamSynchronize(k->s), "download");
    return VEIL_OK;
}

static veil_status cuda_copy(veil_backend_keys *keys, uint64_t *dst, size_t dst_pitch,
                             const uint64_t *src, size_t src_pitch, size_t width, size_t rows) {
    cuda_keys *k = keys->impl;
    DEV_TRY(keys->be, cudaSetDevice(k->device), "copy: device");
    if (rows == 1) /* pitches unused (may be 0) */
        DEV_TRY(keys->be, cudaMemcpyAsync(dst, src, width * 8, cudaMemcpyDeviceToDevice, k->s),
                "copy");
    else if (dst_pitch > INT32_MAX / 8 || src_pitch > INT32_MAX / 8) /* past cudaMemcpy2D's pitch */
        for (size_t r = 0; r < rows; r++)
            DEV_TRY(keys->be,
                    cudaMemcpyAsync(dst + r * dst_pitch, src + r * src_pitch, width * 8,
                                    cudaMemcpyDeviceToDevice, k->s),
                    "copy");
    else
        DEV_TRY(keys->be,
                cudaMemcpy2DAsync(dst, dst_pitch * 8, src, src_pitch * 8, width * 8, rows,
                                  cudaMemcpyDeviceToDevice, k->s),
                "copy");
    return VEIL_OK;
}

static void cuda_tables_free(veil_backend_keys *keys, veil_backend_tables *t) {
    cuda_keys *k = keys->impl;
    cuda_tables *c = t->impl;
    if (!c) return;
    const int prev = device_enter(k->device);
    cudaFree(c->d_polys);
    cudaFree(c->d_offsets);
    cudaFree(c->d_index);
    cudaFree(c->d_ext);
    cudaFree(c->d_wop);
    device_leave(k->device, prev);
    free(c);
    t->impl = NULL;
}

static veil_status cuda_tables_new(veil_backend_keys *keys, veil_backend_tables *t,
                                   const veil_lut *const *luts, const uint32_t *index) {
    cuda_keys *k = keys->impl;
    veil_backend *be = keys->be;
    const size_t N = k->parts[t->partition].p.poly_size;
    cuda_tables *c = calloc(1, sizeof *c);
    uint64_t *offsets = t->wop ? NULL : malloc(t->n_luts * sizeof *offsets);
    if (!c || (!t->wop && !offsets)) {
        free(c);
        free(offsets);
        return veil_error(VEIL_ERR_NOMEM, "cuda tables: out of memory");
    }
    t->impl = c;
    for (size_t i = 0; !t->wop && i < t->n_luts; i++)
        offsets[i] = luts[i]->in_offset;
    int e = (int)cudaSetDevice(k->device);
    if (t->wop) {
        /* WoP-PBS tables: the entries as they are (veil_cuda_wop reads them) */
        const size_t entries = t->n_luts << t->wop_w;
        if (!e) e = (int)cudaMalloc((void **)&c->d_wop, entries * sizeof *t->wop);
        if (!e)
            e = (int)cudaMemcpyAsync(c->d_wop, t->wop, entries * sizeof *t->wop,
                                     cudaMemcpyHostToDevice, k->s);
    } else {
        if (!e) e = (int)cudaMalloc((void **)&c->d_polys, t->n_luts * N * 8);
        if (!e) e = (int)cudaMalloc((void **)&c->d_offsets, t->n_luts * 8);
        if (!e && t->n_index) e = (int)cudaMalloc((void **)&c->d_index, t->n_index * 4);
        for (size_t i = 0; !e && i < t->n_luts; i++)
            e = (int)cudaMemcpyAsync(c->d_polys + i * N, luts[i]->poly, N * 8,
                                     cudaMemcpyHostToDevice, k->s);
        if (!e)
            e = (int)cudaMemcpyAsync(c->d_offsets, offsets, t->n_luts * 8, cudaMemcpyHostToDevice,
                                     k->s);
        if (!e && t->n_index)
            e = (int)cudaMemcpyAsync(c->d_index, index, t->n_index * 4, cudaMemcpyHostToDevice,
                                     k->s);
    }
    const size_t n_ext = t->ext ? (size_t)t->n_res * t->period : 0;
    if (!e && n_ext) e = (int)cudaMalloc((void **)&c->d_ext, n_ext * sizeof *t->ext);
    if (!e && n_ext)
        e = (int)cudaMemcpyAsync(c->d_ext, t->ext, n_ext * sizeof *t->ext, cudaMemcpyHostToDevice,
                                 k->s);
    if (!e && n_ext && !k->d_acc)
        e = (int)cudaMalloc((void **)&k->d_acc, k->cap * acc_words(k) * sizeof(uint64_t));
    if (!e) e = (int)cudaStreamSynchronize(k->s);
    free(offsets);
    if (e) {
        veil_status s = dev_fail(be, e, t->wop ? "WoP-PBS tables upload" : "tables upload");
        cuda_tables_free(keys, t);
        return s;
    }
    return VEIL_OK;
}

static void cuda_weights_free(veil_backend_keys *keys, veil_backend_weights *w) {
    cuda_keys *k = keys->impl;
    cuda_weights *c = w->impl;
    if (!c) return;
    const int prev = device_enter(k->device);
    cudaFree(c->d_w);
    cudaFree(c->d_bias);
    device_leave(k->device, prev);
    free(c);
    w->impl = NULL;
}

static veil_status cuda_weights_new(veil_backend_keys *keys, veil_backend_weights *w,
                                    const int64_t *weights, size_t n_w, const uint64_t *bias,
                                    size_t n_bias) {
    cuda_keys *k = keys->impl;
    cuda_weights *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "cuda weights: out of memory");
    w->impl = c;
    int e = (int)cudaSetDevice(k->device);
    if (!e) e = (int)cudaMalloc((void **)&c->d_w, n_w * 8);
    if (!e) e = (int)cudaMemcpyAsync(c->d_w, weights, n_w * 8, cudaMemcpyHostToDevice, k->s);
    if (!e && bias) e = (int)cudaMalloc((void **)&c->d_bias, n_bias * 8);
    if (!e && bias)
        e = (int)cudaMemcpyAsync(c->d_bias, bias, n_bias * 8, cudaMemcpyHostToDevice, k->s);
    if (!e) e = (int)cudaStreamSynchronize(k->s);
    if (e) {
        veil_status s = dev_fail(keys->be, e, "weights upload");
        cuda_weights_free(keys, w);
        return s;
    }
    return VEIL_OK;
}

/* ---- ops ----------------------------------------------------------------------- */

/* Keyswitch then PBS of count ciphertexts with partition cp's keys: their
 * LWEs into out, or (acc) their accumulators (veil_cuda_pbs_acc). */
static veil_status ks_then_pbs(veil_backend *be, cuda_keys *k, const cuda_part *cp,
                               const veil_cuda_lut_set *set, const uint64_t *in, size_t count,
                               uint64_t *out, int acc) {
    const uint32_t dev = (uint32_t)k->device, c = (uint32_t)count;
    DEV_TRY(be, cudaSetDevice(k->device), "ks_pbs: device");
    DEV_TRY(be, veil_cuda_keyswitch(k->s, dev, &cp->p, k->d_small, in, cp->d_ksk, c),
            "ks_pbs: keyswitch");
    int e;
    if (cp->p.grouping)
        e = acc ? veil_cuda_pbs_multibit_acc(k->s, dev, cp->pbs, out, k->d_small, set, cp->d_bsk, c)
                : veil_cuda_pbs_multibit(k->s, dev, cp->pbs, out, k->d_small, set, cp->d_bsk, c);
    else
        e = acc ? veil_cuda_pbs_acc(k->s, dev, cp->pbs, out, k->d_small, set, cp->d_bsk_f, c)
                : veil_cuda_pbs(k->s, dev, cp->pbs, out, k->d_small, set, cp->d_bsk_f, c);
    DEV_TRY(be, e, "ks_pbs: bootstrap");
    return VEIL_OK;
}

static veil_status cuda_ks_pbs(veil_backend_keys *keys, const veil_backend_tables *t, size_t at,
                               const uint64_t *in, size_t count, uint64_t *out) {
    cuda_keys *k = keys->impl;
    VEIL_ASSERT(t->partition < k->n_parts && count <= k->cap);
    const cuda_tables *ct = t->impl;
    const veil_cuda_lut_set set = {.d_polys = ct->d_polys,
                                   .d_offsets = ct->d_offsets,
                                   .d_index = ct->d_index ? ct->d_index + at : NULL,
                                   .n_luts = (uint32_t)t->n_luts};
    return ks_then_pbs(keys->be, k, &k->parts[t->partition], &set, in, count, out, 0);
}

/* Threshold reads: one blind rotation per input into the accumulators,
 * then every extraction of the tables from them (veil_cuda_extract). */
static veil_status cuda_ks_pbs_extract(veil_backend_keys *keys, const veil_backend_tables *t,
                                       size_t at, const uint64_t *in, size_t count, uint64_t *out,
                                       size_t out_stride) {
    cuda_keys *k = keys->impl;
    VEIL_ASSERT(t->partition < k->n_parts && count <= k->cap && t->ext && k->d_acc);
    const cuda_part *cp = &k->parts[t->partition];
    const cuda_tables *ct = t->impl;
    const veil_cuda_lut_set set = {.d_polys = ct->d_polys, .d_offsets = ct->d_offsets, .n_luts = 1};
    VEIL_TRY(ks_then_pbs(keys->be, k, cp, &set, in, count, k->d_acc, 1));
    DEV_TRY(keys->be,
            veil_cuda_extract(k->s, (uint32_t)k->device, &cp->p, out, out_stride, k->d_acc,
                              ct->d_ext, t->n_res, t->period, at, (uint32_t)count),
            "ks_pbs_extract: extraction");
    return VEIL_OK;
}

/* WoP-PBS lookups (veil/cuda.h veil_cuda_wop), in pieces of the work
 * memory's size: made at the first call, for up to 256 lookups at once
 * (each of the w rounds of bit reads is then one batched KS-PBS of that
 * many: on an H100 the cluster kernel's KS-PBS reaches its throughput at a
 * batch of 256, 18,100/s against 11,600/s at 64, docs/results/
 * h100-bench_gpu.json at 2_2), or fewer where a quarter of
 * the free device memory does not hold them (12 to 17 MiB a lookup, plus
 * cuFFT's work area, by the sets' shapes: 4.3 GiB or less at 256). The
 * tables are on the device since veil_backend_tables_new_wop (cuda_tables_new:
 * at plan time). */
#define CUDA_WOP_MAX_PIECE 256u
static veil_status cuda_wop_pbs(veil_backend_keys *keys, const veil_backend_tables *t,
                                const uint64_t *in, size_t count, uint64_t *out) {
    cuda_keys *k = keys->impl;
    veil_backend *be = keys->be;
    const uint32_t partition = t->partition;
    const cuda_tables *ct = t->impl;
    cuda_part *cp = &k->parts[partition];
    if (!cp->wop)
        return veil_error(VEIL_ERR_ARG, "wop_pbs: partition %u (%s) is not a WoP set's", partition,
                          keys->ek->parts[partition].params->id);
    VEIL_TRY(veil_wop_key_rows_check("wop_pbs", &keys->ek->parts[partition]));
    const uint32_t dev = (uint32_t)k->device;
    DEV_TRY(be, cudaSetDevice(k->device), "wop_pbs: device");
    const veil_cuda_wop_params wp = {cp->p, cp->wop->cbs_base_log, cp->wop->cbs_level,
                                     cp->wop->pp_base_log, cp->wop->pp_level};
    if (!cp->wop_buf) {
        size_t free_b = 0, total_b = 0, need = 0;
        DEV_TRY(be, cudaMemGetInfo(&free_b, &total_b), "wop_pbs: device memory");
        uint32_t piece = CUDA_WOP_MAX_PIECE;
        for (;; piece /= 2) {
            DEV_TRY(be, veil_cuda_scratch_wop(k->s, dev, &wp, piece, NULL, &need, 0),
                    "wop_pbs: sizing the work memory");
            if (need <= free_b / 4 || piece == 1) break;
        }
        DEV_TRY(be, veil_cuda_scratch_wop(k->s, dev, &wp, piece, &cp->wop_buf, NULL, 1),
                "wop_pbs: work memory");
        cp->wop_piece = piece;
    }
    const veil_cuda_wop_keys wk = {cp->d_ksk, cp->d_bsk_f, cp->d_pfpks};
    for (size_t at = 0; at < count;) {
        const size_t c = count - at < cp->wop_piece ? count - at : cp->wop_piece;
        const veil_cuda_wop_tables wt = {.tables = ct->d_wop,
                                         .n_tables = (uint32_t)t->n_luts,
                                         .w = t->wop_w,
                                         .size = t->wop_size,
                                         .inner = t->wop_inner,
                                         .at = at,
                                         .out_delta = t->out_delta};
        DEV_TRY(be,
                veil_cuda_wop(k->s, dev, cp->wop_buf, out + at * k->big1, in + at * k->big1, &wt,
                              &wk, (uint32_t)c),
                "wop_pbs");
        at += c;
    }
    return VEIL_OK;
}

static veil_status cuda_linear(veil_backend_keys *keys, const veil_backend_weights *w,
                               const uint64_t *in, size_t batch, uint64_t *out) {
    cuda_keys *k = keys->impl;
    const cuda_weights *c = w->impl;
    DEV_TRY(keys->be,
            veil_cuda_linear(k->s, (uint32_t)k->device, out, in, c->d_w, c->d_bias, (uint32_t)batch,
                             (uint32_t)w->in_features, (uint32_t)w->out_features,
                             (uint32_t)k->big1),
            "linear");
    return VEIL_OK;
}

static veil_status cuda_conv2d(veil_backend_keys *keys, const veil_backend_weights *w,
                               const uint64_t *in, size_t batch, uint64_t *out) {
    cuda_keys *k = keys->impl;
    const cuda_weights *c = w->impl;
    DEV_TRY(keys->be,
            veil_cuda_conv2d(k->s, (uint32_t)k->device, &w->geom, out, in, c->d_w, c->d_bias,
                             (uint32_t)batch, (uint32_t)k->big1),
            "conv2d");
    return VEIL_OK;
}

static veil_status cuda_add(veil_backend_keys *keys, uint64_t *out, const uint64_t *a,
                            const uint64_t *b, size_t count, uint64_t f) {
    cuda_keys *k = keys->impl;
    DEV_TRY(keys->be,
            veil_cuda_lwe_add(k->s, (uint32_t)k->device, out, a, b, count, (uint32_t)k->big1, f),
            "add");
    return VEIL_OK;
}

static veil_status cuda_scale(veil_backend_keys *keys, uint64_t *out, const uint64_t *in,
                              size_t count, uint64_t f, uint64_t pt) {
    cuda_keys *k = keys->impl;
    DEV_TRY(
        keys->be,
        veil_cuda_lwe_scale(k->s, (uint32_t)k->device, out, in, count, (uint32_t)k->big1, f, pt),
        "scale");
    return VEIL_OK;
}

veil_status veil_backend_cuda_fault_for_test(veil_backend_keys *keys) {
    if (!keys || keys->be->iface->keys_new != cuda_keys_new)
        return veil_error(VEIL_ERR_ARG, "fault_for_test: not cuda keys");
    cuda_keys *k = keys->impl;
    const uint64_t *bad = (const uint64_t *)(uintptr_t)0x10;
    DEV_TRY(keys->be,
            veil_cuda_keyswitch(k->s, (uint32_t)k->device, &k->parts[0].p, k->d_small, bad,
                                k->parts[0].d_ksk, 1),
            "fault_for_test: keyswitch");
    DEV_TRY(keys->be, cudaStreamSynchronize(k->s), "fault_for_test: keyswitch");
    return VEIL_OK;
}

static const struct veil_backend_i cuda_iface = {
    /* .name         = */ "cuda",
    /* .free         = */ cuda_free,
    /* .keys_new     = */ cuda_keys_new,
    /* .keys_free    = */ cuda_keys_free,
    /* .buffer_alloc = */ cuda_buffer_alloc,
    /* .buffer_free  = */ cuda_buffer_free,
    /* .upload       = */ cuda_upload,
    /* .download     = */ cuda_download,
    /* .copy         = */ cuda_copy,
    /* .tables_new   = */ cuda_tables_new,
    /* .tables_free  = */ cuda_tables_free,
    /* .weights_new  = */ cuda_weights_new,
    /* .weights_free = */ cuda_weights_free,
    /* .ks_pbs       = */ cuda_ks_pbs,
    /* .ks_pbs_extract = */ cuda_ks_pbs_extract,
    /* .wop_pbs      = */ cuda_wop_pbs,
    /* .linear       = */ cuda_linear,
    /* .conv2d       = */ cuda_conv2d,
    /* .add          = */ cuda_add,
    /* .scale        = */ cuda_scale,
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
