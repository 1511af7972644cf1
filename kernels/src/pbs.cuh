/* Batched PBS on cuFFT: modulus switch, blind rotation (one cuFFT call per
 * direction per step, the elementwise work fused around it), sample
 * extraction. The work memory lives in veil_cuda_pbs_buffer. */
#ifndef VEIL_KERNELS_PBS_CUH
#define VEIL_KERNELS_PBS_CUH

#include "common.cuh"

/* The modulus switch kernel (pbs.cu, ms_kernel), one block of
 * VEIL_MS_THREADS threads per ciphertext, in phases that the host emulation
 * (veil_cuda_modulus_switch_emulate) runs thread after thread:
 *   1. veil_ms_phase_mask: thread tid switches mask words tid, tid + T, ...
 *      and returns its part of the centred correction;
 *   2. the tree reduction of the parts (veil_ms_phase_reduce, one level per
 *      call, a barrier between levels);
 *   3. veil_ms_phase_body, thread 0: the body plus its table's offset
 *      (veil_ms_offset_of: ciphertext c reads table index[c], index NULL:
 *      table 0), plus half the correction when centred, rounded down
 *      (veil_dev_ms_body). */
#define VEIL_MS_THREADS 128

__host__ __device__ __forceinline__ long long veil_ms_phase_mask(uint32_t *o, const uint64_t *x,
                                                                 uint32_t n, uint32_t lg,
                                                                 uint32_t tid, uint32_t nt) {
    long long sum = 0;
    for (uint32_t i = tid; i < n; i += nt) {
        const uint32_t s = veil_dev_ms_coef(x[i], lg);
        o[i] = s;
        sum += (long long)(((uint64_t)s << (64 - lg)) - x[i]);
    }
    return sum;
}

__host__ __device__ __forceinline__ void veil_ms_phase_reduce(long long *part, uint32_t h,
                                                              uint32_t tid) {
    if (tid < h) part[tid] += part[tid + h];
}

__host__ __device__ __forceinline__ uint64_t veil_ms_offset_of(const uint64_t *offsets,
                                                               const uint32_t *index, uint32_t c) {
    return offsets[index ? index[c] : 0];
}

__host__ __device__ __forceinline__ void veil_ms_phase_body(uint32_t *o, const uint64_t *x,
                                                            uint32_t n, uint32_t lg, int centered,
                                                            uint64_t offset, long long total) {
    uint64_t body = x[n] + offset;
    if (centered) body += (uint64_t)(total / 2); /* C division: toward zero, as on the CPU */
    o[n] = veil_dev_ms_body(body, lg);
}

/* Sample extraction, word w of the big LWE (dimension in_dim >= k N, zero
 * past k N, body at in_dim) holding coefficient h of the GLWE accumulator A
 * ((k + 1) N words) plus add on the body, or (h = VEIL_EXTRACT_TRIVIAL) the
 * trivial ciphertext of add: coefficient h of sum_q A_q S_q + B is sum_j
 * A_q[h - j] S_q[j] over j <= h and -A_q[N + h - j] S_q[j] over j > h (X^N
 * = -1), as engine/src/pbs.c's extract(). The kernels and their host
 * emulations share it. */
__host__ __device__ __forceinline__ uint64_t veil_extract_word(const uint64_t *A, uint32_t k,
                                                               uint32_t N, uint32_t in_dim,
                                                               uint32_t h, uint64_t add,
                                                               uint32_t w) {
    if (h == VEIL_EXTRACT_TRIVIAL) return w == in_dim ? add : 0;
    if (w == in_dim) return A[(uint64_t)k * N + h] + add;
    if (w >= k * N) return 0;
    const uint32_t q = w / N, j = w % N;
    return j <= h ? A[(uint64_t)q * N + h - j] : (uint64_t)0 - A[(uint64_t)q * N + N + h - j];
}

int veil_modulus_switch_launch(cudaStream_t stream, const veil_cuda_params *p, uint32_t *d_out,
                               const uint64_t *d_in, const veil_cuda_lut_set *luts, uint32_t count);

#define VEIL_PBS_MAX_PLANS 32

/* A batched PBS's work memory (veil_cuda_scratch_pbs). Here, not in
 * pbs.cu, for wop.cu: the WoP-PBS's vertical packing runs its external
 * products on a cuFFT-path buffer of its own (veil_pbs_* below). */
struct veil_cuda_pbs_buffer {
    veil_cuda_params p;
    uint32_t max_count;
    uint64_t *acc; /* max_count * (k+1) * N */
    double2 *dec;  /* max_count * (k+1) * l * N/2: digits, then their transforms */
    double2 *prod; /* max_count * (k+1) * N/2: external product, Fourier domain */
    uint32_t *ms;  /* max_count * (n+1) */
    double2 *tw;   /* N/2 twist factors exp(i pi j / N) */
    void *work;    /* cuFFT work area shared by every plan (one stream) */
    int n_plans;   /* plans[e] transform 2^e ciphertexts */
    cufftHandle fwd[VEIL_PBS_MAX_PLANS], inv[VEIL_PBS_MAX_PLANS];
    int fwd_made[VEIL_PBS_MAX_PLANS], inv_made[VEIL_PBS_MAX_PLANS];
    int kernel; /* VEIL_CUDA_PBS_FUSED / _CLUSTER / _SPLIT (acc/dec/prod/plans unused) / _CUFFT */
    double2 *roots;     /* on-chip kernels: exp(-2 pi i t / (N/2)), t < N/4 */
    uint32_t split;     /* split: blocks a polynomial, S */
    uint32_t kb_chunk;  /* multi-bit on the cluster kernel: ciphertexts a launch */
    double2 *roots_loc; /* split: exp(-2 pi i t / M), t < M/2, M = N/2/S */
    /* multi-bit (p.grouping >= 2): each ciphertext's group sum, (k+1)^2 l
     * polynomials twisted then transformed, and the plans that transform
     * 2^e ciphertexts' sums; on the cluster kernel, every group's sum (its
     * key bundles, n/g GGSWs) of kb_chunk ciphertexts */
    double2 *gsum;
    cufftHandle gfwd[VEIL_PBS_MAX_PLANS];
    int gfwd_made[VEIL_PBS_MAX_PLANS];
};

/* pbs.cu's cuFFT path, step by step, for the WoP-PBS (wop.cu). b: a buffer
 * of the cuFFT kernel; count <= b->max_count everywhere.
 * veil_pbs_padded: the ciphertexts the transforms run for count (the
 * decompositions write zero digits from count up to it).
 * veil_pbs_external_product: b->acc[c] += ExtProd(GGSW, digits in b->dec)
 * for c < count, GGSW of c at ggsw + (c >> ct_shift) * ct_stride (Fourier
 * domain, the BSK's layout).
 * veil_pbs_rotate_product: the blind rotation's step i with rotations
 * ms[c * (n + 1) + i] (b->acc[c] += ExtProd(GGSW, X^a acc - acc)).
 * veil_pbs_ggsw_to_fourier: units of (k+1) l polynomials (b->p's k, l; a
 * GGSW is k + 1 units) from the standard domain (std) to the Fourier (f):
 * units < 2^b->n_plans.
 * veil_pbs_sample_extract: coefficient 0 of b->acc[c] as an LWE of in_dim
 * + 1 words (mask zero-extended past kN).
 * veil_host_fft: the transform cuFFT's Z2Z computes (host emulations).
 * veil_host_external_product: external_product_launch on the host for one
 * ciphertext (its digits' k1 l polynomials in dec, transformed in place;
 * prod: k1 N/2 of scratch): acc += the product, or acc = it (overwrite). */
uint32_t veil_pbs_padded(const veil_cuda_pbs_buffer *b, uint32_t count);
int veil_pbs_external_product(cudaStream_t stream, veil_cuda_pbs_buffer *b, const double2 *ggsw,
                              uint64_t ct_stride, uint32_t ct_shift, uint32_t count);
int veil_pbs_rotate_product(cudaStream_t stream, veil_cuda_pbs_buffer *b, const uint32_t *ms,
                            uint32_t i, uint32_t n, const double2 *ggsw, uint64_t ct_stride,
                            uint32_t count);
int veil_pbs_ggsw_to_fourier(cudaStream_t stream, veil_cuda_pbs_buffer *b, double2 *f,
                             const uint64_t *std, uint32_t units);
int veil_pbs_sample_extract(cudaStream_t stream, const veil_cuda_pbs_buffer *b, uint64_t *out,
                            uint32_t in_dim, uint32_t count);
void veil_host_fft(double2 *x, uint32_t H, int inverse);

/* Element idx of twisted standard-domain polynomials (N words each, from
 * in): the folded pair (a_j, a_{j+N/2}) of polynomial idx / (N/2), j = idx %
 * (N/2), twisted (twist_torus_kernel and the host emulations). */
__host__ __device__ __forceinline__ double2 veil_twist_torus_at(const uint64_t *in,
                                                                const double2 *tw, uint32_t N,
                                                                uint64_t idx) {
    const uint32_t H = N / 2, j = (uint32_t)(idx % H);
    const uint64_t *a = in + (idx / H) * N;
    return veil_dev_twist((double)(int64_t)a[j], (double)(int64_t)a[j + H], tw[j]);
}

/* The plan ladder: count units of per_unit complex values, unit u at data +
 * u * per_unit, transformed 2^e units at a time for each bit e of count,
 * the largest first (plans[e] of a buffer transform 2^e units, e <
 * n_plans). run(e, x): transform the 2^e units at x, 0 or an error. One
 * ladder for cuFFT (pbs.cu exec_ladder) and the host emulations: an offset
 * the device gets wrong, the emulation gets wrong too. */
template <class Run>
int veil_pbs_ladder(int n_plans, double2 *data, uint64_t per_unit, uint32_t count, Run run) {
    uint64_t off = 0;
    for (int e = n_plans - 1; e >= 0; e--) {
        if (!((count >> e) & 1)) continue;
        const int r = run(e, data + off * per_unit);
        if (r) return r;
        off += (uint64_t)1 << e;
    }
    return 0;
}

/* GGSWs (units of (k+1) l polynomials, b->p's k and l: a GGSW is k + 1
 * units) from the standard domain (std) to the Fourier one (f), the BSK's
 * layout: every polynomial twisted, o.twist(f, std, polys), then the
 * ladder's transforms, o.fft(e, x, polys) for 2^e units at x. The device
 * (veil_pbs_ggsw_to_fourier) and wop.cu's host emulation run this. */
template <class Ops>
int veil_pbs_ggsw_fourier_with(Ops &o, const veil_cuda_params &p, int n_plans, double2 *f,
                               const uint64_t *std, uint32_t units) {
    const uint64_t per = (uint64_t)(p.glwe_dim + 1) * p.pbs_level;
    const int e = o.twist(f, std, per * units);
    if (e) return e;
    return veil_pbs_ladder(n_plans, f, per * (p.poly_size / 2), units,
                           [&](int x, double2 *d) { return o.fft(x, d, per << x); });
}
void veil_host_external_product(uint32_t k1, uint32_t N, uint32_t l, double2 *dec,
                                const double2 *ggsw, double2 *prod, const double2 *tw,
                                uint64_t *acc, int overwrite);

#endif
