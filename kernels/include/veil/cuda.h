/* veil/cuda.h — the C ABI of veil's CUDA kernels (kernels/).
 *
 * Shape (TFHE-rs's CUDA backend): every entry takes (stream, gpu_index, ...)
 * first; an operation that needs work memory is a triplet scratch / run /
 * cleanup, where scratch with allocate = 0 only measures and run never
 * allocates; parameters travel in plain-data structs. Pointers named d_* are
 * device memory; everything else is host memory. Nothing here reads a file,
 * sizes a batch from free memory or keeps policy: that is host/backend_cuda.c.
 *
 * Layouts are the engine's (veil/tfhe.h): LWE = mask then body; the
 * bootstrapping key in the Fourier domain is the standard-domain order with
 * each polynomial as N/2 complex doubles (re, im interleaved, natural
 * frequency order) of the fold-and-twist transform of veil/fft.h. The CPU
 * keeps its own key in a split, permuted spectrum; host code that hands it
 * here converts it with veil_fft_to_natural (only tests do).
 *
 * Every function returns 0 on success or an error code: a cudaError_t value
 * (1..9999), VEIL_CUDA_ERR_CUFFT + cufftResult, or VEIL_CUDA_ERR_UNSUPPORTED /
 * VEIL_CUDA_ERR_ARG; veil_cuda_error_string() names it. A sticky error
 * (illegal address, launch failure...) leaves the CUDA context unusable:
 * veil_cuda_error_is_sticky() says so. */
#ifndef VEIL_CUDA_H
#define VEIL_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "veil/conv.h"
#include "veil/params.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    VEIL_CUDA_OK = 0,
    VEIL_CUDA_ERR_CUFFT = 10000,       /* + cufftResult */
    VEIL_CUDA_ERR_UNSUPPORTED = 20001, /* parameters the kernels do not handle */
    VEIL_CUDA_ERR_ARG = 20002,         /* e.g. count above a buffer's capacity */
};

const char *veil_cuda_error_string(int err);
int veil_cuda_error_is_sticky(int err);

/* The parameter set, as the kernels need it. */
typedef struct veil_cuda_params {
    uint32_t lwe_dim;   /* n */
    uint32_t glwe_dim;  /* k, 1..4 */
    uint32_t poly_size; /* N, a power of two in 256..32768 */
    uint32_t pbs_base_log, pbs_level;
    uint32_t ks_base_log, ks_level;
    uint32_t ms_centered; /* 1: VEIL_MS_CENTERED, 0: standard */
    uint32_t pbs_kernel;  /* VEIL_CUDA_PBS_*: which blind rotation (0: auto) */
    /* D, the master key's dimension (key sets, veil/tfhe.h): big LWEs in and
     * out have D + 1 words; the keyswitch reads D mask words (its key has D *
     * ks_level rows) and the PBS writes its k*N mask words zero-extended to D,
     * body at D. 0: D = k*N (one-partition key sets). */
    uint32_t in_dim;
    /* Multi-bit PBS grouping factor g (veil_params.grouping): 0 classic;
     * 2..4 (dividing n): the blind rotation of pbs_multibit.cuh, from the
     * standard-domain BSK (veil_cuda_pbs_multibit), on the cuFFT path
     * (pbs_kernel AUTO or CUFFT) or on the cluster kernel (CLUSTER, opt-in
     * until measured on a GPU: every key bundle formed and transformed
     * first, then the n/g external products on chip). */
    uint32_t grouping;
    /* SPLIT only: blocks a GLWE polynomial, 2, 4 or 8 with (k+1) * split
     * <= 16; 0: the fewest whose shared memory fits the device. */
    uint32_t split;
    /* Rows of the keyswitching key, 1..D (veil_pbs_key.ksk_rows: the widest
     * value the partition's lookups read, whose mask is 0 past them): the
     * keyswitch reads only the first ks_rows mask words, as the cpu's does,
     * and its key has ks_rows * ks_level rows. 0: D. */
    uint32_t ks_rows;
    /* 1: the PBS writes each ciphertext's accumulator, (k+1) N words (the k
     * mask polynomials, then the body), instead of its coefficient 0 as a
     * big LWE: veil_cuda_pbs_acc and veil_cuda_pbs_multibit_acc set it, and
     * veil_cuda_extract reads any coefficients from it. 0 otherwise. */
    uint32_t out_acc;
} veil_cuda_params;

/* D of p: in_dim, or k*N when in_dim is 0. */
static inline uint32_t veil_cuda_in_dim(const veil_cuda_params *p) {
    return p->in_dim ? p->in_dim : p->glwe_dim * p->poly_size;
}

/* Words the PBS writes per ciphertext: D + 1 (its LWE), or (k+1) N with
 * out_acc (its accumulator). */
static inline uint32_t veil_cuda_out_words(const veil_cuda_params *p) {
    return p->out_acc ? (p->glwe_dim + 1) * p->poly_size : veil_cuda_in_dim(p) + 1;
}

/* The keyswitch's rows: ks_rows, or D when it is 0. */
static inline uint32_t veil_cuda_ks_rows(const veil_cuda_params *p) {
    return p->ks_rows ? p->ks_rows : veil_cuda_in_dim(p);
}

/* Blind rotation implementations. FUSED: one block per ciphertext, the whole
 * rotation in shared memory (pbs_fused.cu); needs (k+1)*N*8 + (k+1)*(l+1)*
 * (N/2+8)*16 bytes of shared memory per block. CLUSTER: a cluster of k+1
 * blocks per ciphertext, one per GLWE polynomial, sharing digits through
 * distributed shared memory (pbs_cluster.cu; compute capability 9.0,
 * N*8 + (2l+1)*(N/2+8)*16 bytes per block): on an H200 half the latency of
 * FUSED at batch 1 and 1.35 times its throughput at 16384 (k = 1, N = 2048).
 * CUFFT: one batched cuFFT call per direction per step, elementwise kernels
 * around it; any size. SPLIT: a cluster of (k+1) S blocks per ciphertext,
 * each polynomial split over S of them (pbs_split.cu; compute capability
 * 9.0, 8N/S + 16 (l (N/2S + 8) + N/2S) bytes per block): for N = 8192 to
 * 32768, where CLUSTER does not fit; opt-in until measured on a GPU.
 * AUTO: CLUSTER where it runs, else FUSED where it fits, else CUFFT. */
enum {
    VEIL_CUDA_PBS_AUTO = 0,
    VEIL_CUDA_PBS_CUFFT = 1,
    VEIL_CUDA_PBS_FUSED = 2,
    VEIL_CUDA_PBS_CLUSTER = 3,
    VEIL_CUDA_PBS_SPLIT = 4
};

/* The kernels' view of an engine parameter set (the one conversion every
 * caller uses). */
static inline veil_cuda_params veil_cuda_params_from(const veil_params *p, uint32_t pbs_kernel) {
    veil_cuda_params c = {p->lwe_dim,
                          p->glwe_dim,
                          p->poly_size,
                          p->pbs_base_log,
                          p->pbs_level,
                          p->ks_base_log,
                          p->ks_level,
                          p->ms == VEIL_MS_CENTERED,
                          pbs_kernel,
                          0,
                          p->grouping,
                          0,
                          0,
                          0};
    return c;
}

/* 0 when the kernels handle p (in_dim 0 or >= k*N), else
 * VEIL_CUDA_ERR_UNSUPPORTED; why (may be NULL) names the supported values. */
int veil_cuda_params_check(const veil_cuda_params *p, char *why, size_t why_len);

/* ---- keyswitch (keyswitch.cu) ----------------------------------------------
 * d_out[c] = (0, ..., 0, body) - sum_{i < R} sum_j digit_j(a_i) * KSK[i][j],
 * for count big LWEs (D+1 words each, D = veil_cuda_in_dim(p)) -> small LWEs
 * (n+1 words): the integer matrix product digits [count x R*l] x KSK [R*l x
 * (n+1)] mod 2^64 (R = veil_cuda_ks_rows(p)), bit-exact with veil_keyswitch
 * for inputs whose mask is 0 past R. */
int veil_cuda_keyswitch(void *stream, uint32_t gpu_index, const veil_cuda_params *p,
                        uint64_t *d_out_small, const uint64_t *d_in_big, const uint64_t *d_ksk,
                        uint32_t count);

/* ---- PBS (pbs.cu, lut.cu) ---------------------------------------------------
 * Test polynomials: d_luts holds n_luts polynomials of N words; ciphertext c
 * reads table d_lut_index[c] (d_lut_index NULL: table 0) and first gets
 * d_lut_offsets[table] added to its body (veil_lut.in_offset). */
typedef struct veil_cuda_lut_set {
    const uint64_t *d_polys;   /* n_luts * N */
    const uint64_t *d_offsets; /* n_luts */
    const uint32_t *d_index;   /* count, or NULL */
    uint32_t n_luts;
} veil_cuda_lut_set;

/* Modulus switch to 2N of count small LWEs, per p->ms_centered, bit-exact
 * with veil_modulus_switch (after adding the table's offset to the body).
 * d_out: count * (n+1) values. */
int veil_cuda_modulus_switch(void *stream, uint32_t gpu_index, const veil_cuda_params *p,
                             uint32_t *d_out, const uint64_t *d_in_small,
                             const veil_cuda_lut_set *luts, uint32_t count);

/* Bootstrapping key to the Fourier domain on the device (cuFFT), at key
 * upload. d_bsk: standard domain (veil_eval_key.bsk); d_bsk_fourier:
 * veil_cuda_bsk_fourier_bytes(p). Makes and frees its own plan. */
size_t veil_cuda_bsk_fourier_bytes(const veil_cuda_params *p);
int veil_cuda_bsk_to_fourier(void *stream, uint32_t gpu_index, const veil_cuda_params *p,
                             double *d_bsk_fourier, const uint64_t *d_bsk);

/* Work memory of a batched PBS of up to max_count ciphertexts: accumulators,
 * Fourier buffers, cuFFT plans. allocate = 0: only sets *bytes (an upper
 * bound), *buf untouched. The buffer is bound to `stream`: one per stream. */
typedef struct veil_cuda_pbs_buffer veil_cuda_pbs_buffer;
int veil_cuda_scratch_pbs(void *stream, uint32_t gpu_index, const veil_cuda_params *p,
                          uint32_t max_count, veil_cuda_pbs_buffer **buf, size_t *bytes,
                          int allocate);
/* Blind rotation + sample extraction: count small LWEs (n+1 words) ->
 * count big LWEs of D+1 words (D = veil_cuda_in_dim(p): the kN mask words
 * zero-extended to D, body at D, as engine/src/pbs.c's pbs_lanes). count <= the buffer's max_count.
 * One kernel per ciphertext (fused) or per step (cuFFT), see VEIL_CUDA_PBS_*. */
int veil_cuda_pbs(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *buf, uint64_t *d_out_big,
                  const uint64_t *d_in_small, const veil_cuda_lut_set *luts,
                  const double *d_bsk_fourier, uint32_t count);
/* The multi-bit blind rotation + sample extraction (p->grouping >= 2; the
 * buffer made by veil_cuda_scratch_pbs for that p, which then holds the
 * per-ciphertext group sums and their plans: one step's on the cuFFT path,
 * every step's of up to 2 GiB of ciphertexts at once on the cluster kernel): as veil_cuda_pbs, from
 * d_bsk, the standard-domain key of (n/g) 2^g GGSWs (veil_eval_key.bsk, uploaded as is: the sums
 * are formed on the device). veil_cuda_pbs refuses a multi-bit buffer and this a classic one
 * (VEIL_CUDA_ERR_ARG). */
int veil_cuda_pbs_multibit(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *buf,
                           uint64_t *d_out_big, const uint64_t *d_in_small,
                           const veil_cuda_lut_set *luts, const uint64_t *d_bsk, uint32_t count);
/* veil_cuda_pbs and veil_cuda_pbs_multibit with the accumulators as the
 * output (veil_cuda_params.out_acc): count * (k+1) N words at d_out_acc,
 * for veil_cuda_extract. The same buffer serves both forms. */
int veil_cuda_pbs_acc(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *buf,
                      uint64_t *d_out_acc, const uint64_t *d_in_small,
                      const veil_cuda_lut_set *luts, const double *d_bsk_fourier, uint32_t count);
int veil_cuda_pbs_multibit_acc(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *buf,
                               uint64_t *d_out_acc, const uint64_t *d_in_small,
                               const veil_cuda_lut_set *luts, const uint64_t *d_bsk,
                               uint32_t count);
/* Sample extraction of any coefficients (threshold reads, veil/tfhe.h
 * veil_extract): from count accumulators of veil_cuda_pbs_acc (d_acc,
 * (k+1) N words each), result s of ciphertext i is extraction d_ext[s *
 * period + (first + i) % period] (coefficient coef plus add on the body, or
 * the trivial ciphertext of add), a big LWE of D + 1 words (the kN mask
 * words zero-extended to D, body at D) at d_out + (s * res_stride + i) (D +
 * 1): engine/src/pbs.c's extraction, word for word. d_ext: n_res * period
 * entries in device memory, every coef < N or VEIL_EXTRACT_TRIVIAL. */
int veil_cuda_extract(void *stream, uint32_t gpu_index, const veil_cuda_params *p, uint64_t *d_out,
                      uint64_t res_stride, const uint64_t *d_acc, const veil_extract *d_ext,
                      uint32_t n_res, uint64_t period, uint64_t first, uint32_t count);
/* Testing: veil_cuda_extract's per-word code on the host, host memory. */
int veil_cuda_extract_emulate(const veil_cuda_params *p, uint64_t *out, uint64_t res_stride,
                              const uint64_t *acc, const veil_extract *ext, uint32_t n_res,
                              uint64_t period, uint64_t first, uint32_t count);
/* "fused", "cluster", "split" or "cufft": the implementation the buffer was made for. */
const char *veil_cuda_pbs_kernel_name(const veil_cuda_pbs_buffer *buf);
/* Frees the buffer and sets *buf to NULL (NULL accepted). */
void veil_cuda_cleanup_pbs(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer **buf);

/* Testing: the fused blind rotation (pbs_fused.cu; pbs_cluster.cu when
 * p->pbs_kernel is VEIL_CUDA_PBS_CLUSTER, pbs_split.cu when SPLIT, with S as
 * on an sm_90 device unless p->split sets it) run on the host, phase by phase
 * with the same code the kernel runs, for one ciphertext: ms = its n+1
 * switched values, bsk_fourier and lut_poly in host memory, out_big:
 * veil_cuda_out_words(p) words (D+1, D = veil_cuda_in_dim(p), or with
 * p->out_acc the accumulator). Lets the algorithm be checked against the CPU without a GPU. */
int veil_cuda_pbs_fused_emulate(const veil_cuda_params *p, const double *bsk_fourier,
                                const uint32_t *ms, const uint64_t *lut_poly, uint64_t *out_big);

/* Testing: veil_cuda_modulus_switch's kernel code on the host (its phases,
 * thread after thread, block after block): count small LWEs (n+1 words, host
 * memory) -> out (count * (n+1)); ciphertext c gets offsets[index[c]]
 * (index NULL: offsets[0]) added to its body first. */
int veil_cuda_modulus_switch_emulate(const veil_cuda_params *p, uint32_t *out,
                                     const uint64_t *in_small, const uint64_t *offsets,
                                     const uint32_t *index, uint32_t count);

/* Testing: veil_cuda_keyswitch's kernel code (its loader, product and
 * epilogue, tile after tile, in one slice of K) on the host: count big LWEs
 * of D+1 words (D = veil_cuda_in_dim(p)) -> out_small (count * (n+1)); ksk:
 * R * ks_level rows of n+1 words (R = veil_cuda_ks_rows(p)), host memory. */
int veil_cuda_keyswitch_emulate(const veil_cuda_params *p, uint64_t *out_small,
                                const uint64_t *in_big, const uint64_t *ksk, uint32_t count);
/* Testing: a batched veil_cuda_pbs on the host for the fused and cluster
 * kernels: the modulus switch emulated as above, each ciphertext's test
 * polynomial chosen as the kernels choose it (polys + index[c] * N), then
 * veil_cuda_pbs_fused_emulate. out_big: count * veil_cuda_out_words(p) words. */
int veil_cuda_pbs_batch_emulate(const veil_cuda_params *p, const double *bsk_fourier,
                                const uint64_t *in_small, const uint64_t *polys,
                                const uint64_t *offsets, const uint32_t *index, uint32_t count,
                                uint64_t *out_big);

/* Testing: veil_cuda_pbs_multibit on the host: the modulus switch emulated
 * as above, then every step with the kernels' per-element code
 * (pbs_multibit.cuh: exponents, group sums, twist, digits with ties to even)
 * and, in place of cuFFT, a radix-2 transform of the same size and sign;
 * the product summed in the MAC kernel's order. p->pbs_kernel CLUSTER: the
 * key bundles so, then the cluster kernel's own phases. Within the FFT error of the
 * CPU engine, not bit-equal (different transforms). bsk: the standard-domain
 * key in host memory; out_big: count * veil_cuda_out_words(p) words. */
int veil_cuda_pbs_multibit_emulate(const veil_cuda_params *p, const uint64_t *bsk,
                                   const uint64_t *in_small, const uint64_t *polys,
                                   const uint64_t *offsets, const uint32_t *index, uint32_t count,
                                   uint64_t *out_big);

/* Testing: one external-product-shaped sum through the fused kernel's FFT
 * (its twist, radix-2 stages, MAC and inverse), on the host: out[j] (N
 * doubles, not rounded) = sum_r digits_r * torus_r mod X^N + 1, r < (k+1)*l,
 * digits and torus polynomials of N words each. For measuring its error. */
int veil_cuda_fused_product_emulate(const veil_cuda_params *p, const int64_t *digits,
                                    const uint64_t *torus, double *out);

/* ---- WoP-PBS (wop.cu) -----------------------------------------------------------
 * The lookup of engine/src/wop.c (veil/wop.h: bit extraction, circuit
 * bootstrapping, vertical packing) on the device, for count ciphertexts at
 * once, every step batched over them: w rounds of keyswitch, switch to
 * 2N / slots and one multi-value PBS (veil_cuda_pbs_acc) whose
 * accumulators give each bit's extraction and its l_cb level reads
 * (veil_cuda_extract); the packing keyswitches as veil_cuda_keyswitch's
 * integer GEMM, one per function c over all w l_cb levels of every
 * ciphertext; the GGSWs to the Fourier domain; the CMux tree one level at
 * a time over every pair of every ciphertext, then the nu rotation steps,
 * as the cuFFT blind rotation's external products. Unsigned inputs (the
 * backend's op: wop.c's in_signed = 0). */
typedef struct veil_cuda_wop_params {
    veil_cuda_params pbs; /* the WoP set's (veil_wop_params.pbs), in_dim = D */
    uint32_t cbs_base_log, cbs_level, pp_base_log, pp_level;
} veil_cuda_wop_params;

/* Keys in device memory (host memory for the emulation): the partition's
 * keyswitching key as veil_cuda_keyswitch reads it, its BSK in the Fourier
 * domain (veil_cuda_bsk_to_fourier), and its packing keyswitching keys
 * (veil_pbs_key.pfpks) as they are: k + 1 functions of (kN + 1) pp_level
 * rows of (k + 1) N words. */
typedef struct veil_cuda_wop_keys {
    const uint64_t *ksk;
    const double *bsk_fourier;
    const uint64_t *pfpks;
} veil_cuda_wop_keys;

/* The tables: n_tables of 2^w entries (int64, device memory; host for the
 * emulation); ciphertext i reads table ((at + i) % size / inner) %
 * n_tables (the backend's wop_pbs rule) and the output encrypts its entry
 * times out_delta. */
typedef struct veil_cuda_wop_tables {
    const int64_t *tables;
    uint32_t n_tables, w;
    uint64_t size, inner, at, out_delta;
} veil_cuda_wop_tables;

typedef struct veil_cuda_wop_buffer veil_cuda_wop_buffer;
/* Work memory for up to max_count lookups of up to 16 bits (the scratch /
 * run / cleanup triplet: allocate = 0 only sets *bytes). */
int veil_cuda_scratch_wop(void *stream, uint32_t gpu_index, const veil_cuda_wop_params *wp,
                          uint32_t max_count, veil_cuda_wop_buffer **buf, size_t *bytes,
                          int allocate);
/* d_out[i] (D + 1 words) = the lookup of d_in[i] (D + 1 words, x times
 * veil_delta(w)), i < count <= the buffer's max_count. */
int veil_cuda_wop(void *stream, uint32_t gpu_index, veil_cuda_wop_buffer *buf, uint64_t *d_out,
                  const uint64_t *d_in, const veil_cuda_wop_tables *t,
                  const veil_cuda_wop_keys *keys, uint32_t count);
void veil_cuda_cleanup_wop(void *stream, uint32_t gpu_index, veil_cuda_wop_buffer **buf);
/* Testing: veil_cuda_wop on the host, host memory, with the same sequence
 * of steps: every new kernel's per-element code, veil_cuda_keyswitch_emulate,
 * veil_cuda_pbs_batch_emulate (the fused kernel), veil_cuda_extract_emulate,
 * and for the cuFFT path's steps their per-element code around a host
 * radix-2 transform. keys.bsk_fourier: the natural-order Fourier BSK. */
int veil_cuda_wop_emulate(const veil_cuda_wop_params *wp, const veil_cuda_wop_tables *t,
                          const veil_cuda_wop_keys *keys, const uint64_t *in, uint32_t count,
                          uint64_t *out);

/* ---- linear layers (linear.cu) ----------------------------------------------
 * Dense: for each of `batch` samples, d_out[b][o] = sum_i d_w[o][i] *
 * d_in[b][i] + d_bias[o] (on the body; d_bias may be NULL), exact mod 2^64.
 * lwe_size = D + 1 (veil_cuda_in_dim). Outputs packed: d_out[(b * out_features + o) * lwe_size]. */
int veil_cuda_linear(void *stream, uint32_t gpu_index, uint64_t *d_out, const uint64_t *d_in,
                     const int64_t *d_w, const uint64_t *d_bias, uint32_t batch,
                     uint32_t in_features, uint32_t out_features, uint32_t lwe_size);

/* 2-D convolution, NCHW, weights [c_out][c_in][kh][kw], zero padding, exact
 * mod 2^64 (geometry veil/conv.h, finished: h_out, w_out set). Outputs
 * packed: [batch][c_out][h_out][w_out] LWEs. */
int veil_cuda_conv2d(void *stream, uint32_t gpu_index, const veil_conv_geom *c, uint64_t *d_out,
                     const uint64_t *d_in, const int64_t *d_w, const uint64_t *d_bias,
                     uint32_t batch, uint32_t lwe_size);

/* ---- elementwise ops (elementwise.cu) ---------------------------------------
 * count LWEs of lwe_size words, every word mod 2^64. add: d_out = d_a + f *
 * d_b (f = 2^64 - 1 subtracts); scale: d_out = f * d_in, then pt added to
 * every body. d_out may be an input (each thread reads and writes one word). */
int veil_cuda_lwe_add(void *stream, uint32_t gpu_index, uint64_t *d_out, const uint64_t *d_a,
                      const uint64_t *d_b, uint64_t count, uint32_t lwe_size, uint64_t f);
int veil_cuda_lwe_scale(void *stream, uint32_t gpu_index, uint64_t *d_out, const uint64_t *d_in,
                        uint64_t count, uint32_t lwe_size, uint64_t f, uint64_t pt);
/* Testing: the two kernels' per-word code run on the host, host memory. */
int veil_cuda_lwe_add_emulate(uint64_t *out, const uint64_t *a, const uint64_t *b, uint64_t count,
                              uint32_t lwe_size, uint64_t f);
int veil_cuda_lwe_scale_emulate(uint64_t *out, const uint64_t *in, uint64_t count,
                                uint32_t lwe_size, uint64_t f, uint64_t pt);

#ifdef __cplusplus
}
#endif
#endif
