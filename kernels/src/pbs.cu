#include <cmath>
#include <cstdlib>
#include <cstring>

#include "lut.cuh"
#include "pbs.cuh"
#include "pbs_cluster.cuh"
#include "pbs_split.cuh"
#include "pbs_multibit.cuh"

/* struct veil_cuda_pbs_buffer: pbs.cuh */

namespace {

/* ---- modulus switch -------------------------------------------------------- */

__global__ void ms_kernel(uint32_t *__restrict__ out, const uint64_t *__restrict__ in,
                          const uint64_t *__restrict__ offsets, const uint32_t *__restrict__ index,
                          uint32_t n, uint32_t lg, int centered) {
    __shared__ long long part[VEIL_MS_THREADS];
    const uint32_t c = blockIdx.x;
    const uint64_t *x = in + (uint64_t)c * (n + 1);
    uint32_t *o = out + (uint64_t)c * (n + 1);
    part[threadIdx.x] = veil_ms_phase_mask(o, x, n, lg, threadIdx.x, blockDim.x);
    __syncthreads();
    for (uint32_t h = blockDim.x / 2; h > 0; h /= 2) {
        veil_ms_phase_reduce(part, h, threadIdx.x);
        __syncthreads();
    }
    if (threadIdx.x == 0)
        veil_ms_phase_body(o, x, n, lg, centered, veil_ms_offset_of(offsets, index, c), part[0]);
}

/* ---- blind rotation ------------------------------------------------------------
 * Step i of ciphertext c: D = decompose(X^a * acc - acc), a = ms[c][i];
 * dec = twist(fold(D)); FFT; prod = sum_r dec[r] * BSK_i[r][q]; inverse FFT;
 * acc += round(untwist(prod) / (N/2)). Ciphertexts c in [count, padded) get
 * zeros so the padded FFT slots stay finite. */
__global__ void rotate_decompose_kernel(double2 *__restrict__ dec, const uint64_t *__restrict__ acc,
                                        const uint32_t *__restrict__ ms,
                                        const double2 *__restrict__ tw, uint32_t i, uint32_t n,
                                        uint32_t k1, uint32_t N, uint32_t base_log, uint32_t l,
                                        uint32_t count, uint32_t padded) {
    const uint32_t H = N / 2;
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)padded * k1 * H) return;
    const uint32_t j = (uint32_t)(idx % H);
    const uint64_t cq = idx / H; /* c * k1 + q */
    const uint32_t c = (uint32_t)(cq / k1);
    double2 *out = dec + cq * l * H + j;
    if (c >= count) {
        for (uint32_t lev = 0; lev < l; lev++)
            out[(uint64_t)lev * H] = make_double2(0.0, 0.0);
        return;
    }
    const uint32_t a = ms[(uint64_t)c * (n + 1) + i];
    const uint64_t *A = acc + cq * N;
    uint64_t r0 = veil_gadget_round(veil_dev_monomial_coef(A, N, a, j) - A[j], base_log, l);
    uint64_t r1 = veil_gadget_round(veil_dev_monomial_coef(A, N, a, j + H) - A[j + H], base_log, l);
    const double2 w = tw[j];
    for (uint32_t lev = l; lev-- > 0;) { /* digits least significant first */
        const double re = (double)veil_gadget_next(&r0, base_log),
                     im = (double)veil_gadget_next(&r1, base_log);
        out[(uint64_t)lev * H] = veil_dev_twist(re, im, w);
    }
}

/* ggsw_stride: 0 (one GGSW for every ciphertext: the classic key) or the
 * words between ciphertexts' own GGSWs (the multi-bit group sums, the
 * WoP-PBS's bits); ciphertext c reads GGSW c >> ggsw_shift (2^ggsw_shift
 * ciphertexts a GGSW: the WoP-PBS's CMux tree, its pairs of a lookup).
 * Only the count live ciphertexts read a GGSW: the padding up to `padded`
 * (the plans' batch, zero digits) gets a zero product, so a per-ciphertext
 * GGSW array need only hold the live ones (the WoP-PBS's holds its lookups',
 * where the padding would index up to an eighth past them). */
template <int K1>
__global__ void mac_kernel(double2 *__restrict__ prod, const double2 *__restrict__ dec,
                           const double2 *__restrict__ ggsw, uint32_t l, uint32_t H, uint32_t live,
                           uint32_t padded, uint64_t ggsw_stride, uint32_t ggsw_shift) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)padded * H) return;
    const uint32_t j = (uint32_t)(idx % H);
    const uint64_t c = idx / H;
    const uint32_t rows = c < live ? K1 * l : 0;
    double sr[K1], si[K1];
#pragma unroll
    for (int q = 0; q < K1; q++)
        sr[q] = si[q] = 0.0;
    const double2 *d = dec + c * K1 * l * H + j;
    for (uint32_t r = 0; r < rows; r++) {
        const double2 a = d[(uint64_t)r * H];
        const double2 *g = ggsw + (c >> ggsw_shift) * ggsw_stride + (uint64_t)r * K1 * H + j;
#pragma unroll
        for (int q = 0; q < K1; q++) {
            const double2 b = g[(uint64_t)q * H];
            sr[q] += a.x * b.x - a.y * b.y;
            si[q] += a.x * b.y + a.y * b.x;
        }
    }
#pragma unroll
    for (int q = 0; q < K1; q++)
        prod[(c * K1 + q) * H + j] = make_double2(sr[q], si[q]);
}

__global__ void untwist_add_kernel(uint64_t *__restrict__ acc, const double2 *__restrict__ prod,
                                   const double2 *__restrict__ tw, uint32_t k1, uint32_t N,
                                   uint32_t count) {
    const uint32_t H = N / 2;
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)count * k1 * H) return;
    const uint32_t j = (uint32_t)(idx % H);
    const uint64_t cq = idx / H;
    const double2 v = prod[idx], w = tw[j];
    const double2 u = veil_dev_untwist(v, w, 1.0 / (double)H);
    uint64_t *A = acc + cq * N;
    A[j] += veil_dev_f64_to_torus(u.x);
    A[j + H] += veil_dev_f64_to_torus(u.y);
}

/* ---- multi-bit blind rotation (pbs_multibit.cuh) ----------------------------
 * Groups q0 .. q0 + nq - 1: thread (c, q, r, j) writes twist(fold(G_c,q[r]))
 * at ((c nq + q - q0) polys + r) H + j, for polynomial r of ciphertext c's
 * group sum q (the cuFFT path: one group a step; the cluster kernel: every
 * group of a ciphertext, its key bundles, before the rotation); ciphertexts
 * in [count, padded) get zeros. */
__global__ void mb_group_sum_kernel(double2 *__restrict__ gsum, const uint64_t *__restrict__ bsk,
                                    const uint64_t *__restrict__ small,
                                    const double2 *__restrict__ tw, uint32_t q0, uint32_t nq,
                                    uint32_t n, uint32_t g, uint32_t N, uint64_t polys,
                                    uint32_t count, uint32_t padded) {
    const uint32_t H = N / 2;
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)padded * nq * polys * H) return;
    const uint32_t j = (uint32_t)(idx % H);
    const uint64_t cr = idx / H, cq = cr / polys, r = cr % polys, c = cq / nq;
    const uint32_t q = q0 + (uint32_t)(cq % nq);
    if (c >= count) {
        gsum[idx] = make_double2(0.0, 0.0);
        return;
    }
    uint32_t d[16];
    const uint32_t lg = __ffs((int)(2 * N)) - 1;
    veil_mb_exponents(small + c * (n + 1) + (uint64_t)q * g, g, lg, d);
    const uint64_t gw = polys * N;
    const uint64_t *grp = bsk + ((uint64_t)q << g) * gw;
    const uint64_t lo = veil_mb_sum_coef(grp, gw, N, r, d, g, j),
                   hi = veil_mb_sum_coef(grp, gw, N, r, d, g, j + H);
    gsum[idx] = veil_dev_twist((double)(int64_t)lo, (double)(int64_t)hi, tw[j]);
}

/* The accumulator's digits (ties to even), twisted; zeros past count. */
__global__ void mb_decompose_kernel(double2 *__restrict__ dec, const uint64_t *__restrict__ acc,
                                    const double2 *__restrict__ tw, uint32_t k1, uint32_t N,
                                    uint32_t base_log, uint32_t l, uint32_t count,
                                    uint32_t padded) {
    const uint32_t H = N / 2;
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)padded * k1 * H) return;
    const uint32_t j = (uint32_t)(idx % H);
    const uint64_t cq = idx / H;
    double2 *out = dec + cq * l * H + j;
    if (cq / k1 >= count) {
        for (uint32_t lev = 0; lev < l; lev++)
            out[(uint64_t)lev * H] = make_double2(0.0, 0.0);
        return;
    }
    veil_mb_decompose(acc + cq * N, j, H, tw[j], base_log, l, out, H);
}

/* out: D+1 words a ciphertext (D = in_dim >= kN): kN mask words, zeros up to
 * D, the body at D. */
__global__ void sample_extract_kernel(uint64_t *__restrict__ out, const uint64_t *__restrict__ acc,
                                      uint32_t k, uint32_t N, uint32_t in_dim, uint32_t count) {
    const uint64_t big1 = (uint64_t)in_dim + 1;
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= big1 * count) return;
    const uint64_t c = idx / big1;
    const uint32_t w = (uint32_t)(idx % big1);
    out[idx] = veil_extract_word(acc + c * (k + 1) * N, k, N, in_dim, 0, 0, w);
}

/* Word idx of veil_cuda_extract's output, idx < n_res * count * (D + 1)
 * (result-major, as it is laid out when res_stride = count). */
__host__ __device__ __forceinline__ void
extract_many_word(uint64_t *out, uint64_t res_stride, const uint64_t *acc, const veil_extract *ext,
                  uint64_t period, uint64_t first, uint32_t k, uint32_t N, uint32_t in_dim,
                  uint32_t count, uint64_t idx) {
    const uint64_t big1 = (uint64_t)in_dim + 1, r = idx / big1, i = r % count, s = r / count;
    const uint32_t w = (uint32_t)(idx % big1);
    const veil_extract e = ext[s * period + (first + i) % period];
    out[(s * res_stride + i) * big1 + w] =
        veil_extract_word(acc + i * (k + 1) * N, k, N, in_dim, e.coef, e.add, w);
}

__global__ void extract_many_kernel(uint64_t *__restrict__ out, uint64_t res_stride,
                                    const uint64_t *__restrict__ acc,
                                    const veil_extract *__restrict__ ext, uint64_t period,
                                    uint64_t first, uint32_t k, uint32_t N, uint32_t in_dim,
                                    uint32_t count, uint64_t total) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    extract_many_word(out, res_stride, acc, ext, period, first, k, N, in_dim, count, idx);
}

/* Standard-domain polynomials -> twisted, folded complex (before the FFT). */
__global__ void twist_torus_kernel(double2 *__restrict__ out, const uint64_t *__restrict__ in,
                                   const double2 *__restrict__ tw, uint32_t N, uint64_t polys) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= polys * (N / 2)) return;
    out[idx] = veil_twist_torus_at(in, tw, N, idx);
}

/* Twist factors computed on the host exactly as engine/src/fft.c does. */
int make_twiddles(cudaStream_t stream, uint32_t N, double2 **d_tw) {
    const uint32_t H = N / 2;
    double2 *h = (double2 *)malloc(sizeof(double2) * H);
    if (!h) return (int)cudaErrorMemoryAllocation;
    for (uint32_t j = 0; j < H; j++) {
        const double a = 3.14159265358979323846 * (double)j / (double)N;
        h[j] = make_double2(cos(a), sin(a));
    }
    cudaError_t e = cudaMalloc((void **)d_tw, sizeof(double2) * H);
    if (e == cudaSuccess) {
        e = cudaMemcpyAsync(*d_tw, h, sizeof(double2) * H, cudaMemcpyHostToDevice, stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
        if (e != cudaSuccess) {
            cudaFree(*d_tw);
            *d_tw = NULL;
        }
    }
    free(h);
    return (int)e;
}

uint32_t floor_log2(uint32_t x) {
    uint32_t r = 0;
    while (x >>= 1)
        r++;
    return r;
}

/* Ciphertexts whose key bundles (per_ct complex words each) one launch of
 * the multi-bit cluster kernel forms at once: what fits VEIL_MB_KB_BYTES
 * (at least one, at most max_count). 2 GiB: 68 ciphertexts of
 * tfhers-mb2-2_2 (460 bundles of 4 polynomials of 1024 points), 136 of
 * mb4-2_2; the bundles go to device memory and back once, as TFHE-rs's
 * CUDA multi-bit PBS keeps them. */
#define VEIL_MB_KB_BYTES ((uint64_t)2 << 30)
uint32_t kb_chunk_of(uint64_t per_ct, uint32_t max_count) {
    const uint64_t fit = VEIL_MB_KB_BYTES / (per_ct * sizeof(double2));
    return fit < 1 ? 1 : fit < max_count ? (uint32_t)fit : max_count;
}

/* Transforms for `count` ciphertexts go through plans of 2^e ciphertexts:
 * count rounded up to 4 significant bits (at most 4 launches, at most 1/8
 * extra work), or exactly when rounding would pass max_count. */
uint32_t padded_count(uint32_t count, uint32_t max_count) {
    if (count <= 16) return count;
    const uint32_t sh = floor_log2(count) - 3;
    const uint64_t r = (((uint64_t)count + ((uint64_t)1 << sh) - 1) >> sh) << sh;
    return r > max_count ? count : (uint32_t)r;
}

int run_plan(cudaStream_t stream, cufftHandle plan, double2 *x, int dir) {
    VEIL_CUFFT(cufftSetStream(plan, stream));
    VEIL_CUFFT(cufftExecZ2Z(plan, (cufftDoubleComplex *)x, (cufftDoubleComplex *)x, dir));
    return 0;
}

/* per_ct: complex values a ciphertext (a unit of the ladder) */
int exec_ladder(cudaStream_t stream, const cufftHandle *plans, int n_plans, double2 *data,
                uint64_t per_ct, uint32_t padded, int dir) {
    return veil_pbs_ladder(n_plans, data, per_ct, padded,
                           [&](int e, double2 *x) { return run_plan(stream, plans[e], x, dir); });
}

int make_plan(cufftHandle *h, uint32_t H, uint64_t batch, size_t *ws) {
    VEIL_CUFFT(cufftCreate(h));
    cufftResult r = cufftSetAutoAllocation(*h, 0);
    int n = (int)H;
    if (r == CUFFT_SUCCESS)
        r = cufftMakePlanMany(*h, 1, &n, NULL, 1, n, NULL, 1, n, CUFFT_Z2Z, (int)batch, ws);
    if (r != CUFFT_SUCCESS) {
        cufftDestroy(*h);
        return VEIL_CUDA_ERR_CUFFT + (int)r;
    }
    return 0;
}

/* A ladder of plans: plans[x] transforms 2^x * per_ct polynomials, x < n
 * (exec_ladder runs it); made[x] set for each one made; *wmax: the largest
 * work area any of them needs so far. */
int make_ladder(cufftHandle *plans, int *made, int n, uint32_t H, uint64_t per_ct, size_t *wmax) {
    for (int x = 0; x < n; x++) {
        size_t ws = 0;
        const int e = make_plan(&plans[x], H, ((uint64_t)1 << x) * per_ct, &ws);
        if (e) return e;
        made[x] = 1;
        if (cufftGetSize(plans[x], &ws) == CUFFT_SUCCESS && ws > *wmax) *wmax = ws;
    }
    return 0;
}

/* Every plan of a ladder on the shared work area and the buffer's stream. */
int bind_ladder(cufftHandle *plans, int n, void *work, cudaStream_t stream) {
    for (int x = 0; x < n; x++) {
        VEIL_CUFFT(cufftSetWorkArea(plans[x], work));
        VEIL_CUFFT(cufftSetStream(plans[x], stream));
    }
    return 0;
}

struct sizes {
    size_t acc, dec, prod, ms;
};

sizes buffer_sizes(const veil_cuda_params *p, uint64_t count) {
    const uint64_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level, H = N / 2;
    sizes s;
    s.acc = sizeof(uint64_t) * count * k1 * N;
    s.dec = sizeof(double2) * count * k1 * l * H;
    s.prod = sizeof(double2) * count * k1 * H;
    s.ms = sizeof(uint32_t) * count * (p->lwe_dim + 1);
    return s;
}

} // namespace

int veil_modulus_switch_launch(cudaStream_t stream, const veil_cuda_params *p, uint32_t *d_out,
                               const uint64_t *d_in, const veil_cuda_lut_set *luts,
                               uint32_t count) {
    if (count == 0) return 0;
    const uint32_t lg = floor_log2(p->poly_size) + 1;
    ms_kernel<<<count, VEIL_MS_THREADS, 0, stream>>>(d_out, d_in, luts->d_offsets, luts->d_index,
                                                     p->lwe_dim, lg, p->ms_centered ? 1 : 0);
    VEIL_CU_LAUNCHED();
    return 0;
}

extern "C" int veil_cuda_modulus_switch(void *stream, uint32_t gpu_index, const veil_cuda_params *p,
                                        uint32_t *d_out, const uint64_t *d_in_small,
                                        const veil_cuda_lut_set *luts, uint32_t count) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e || (e = veil_cuda_select(gpu_index))) return e;
    return veil_modulus_switch_launch((cudaStream_t)stream, p, d_out, d_in_small, luts, count);
}

extern "C" int veil_cuda_modulus_switch_emulate(const veil_cuda_params *p, uint32_t *out,
                                                const uint64_t *in_small, const uint64_t *offsets,
                                                const uint32_t *index, uint32_t count) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    const uint32_t n = p->lwe_dim, lg = floor_log2(p->poly_size) + 1;
    long long part[VEIL_MS_THREADS];
    for (uint32_t c = 0; c < count; c++) {
        const uint64_t *x = in_small + (uint64_t)c * (n + 1);
        uint32_t *o = out + (uint64_t)c * (n + 1);
        for (uint32_t tid = 0; tid < VEIL_MS_THREADS; tid++)
            part[tid] = veil_ms_phase_mask(o, x, n, lg, tid, VEIL_MS_THREADS);
        for (uint32_t h = VEIL_MS_THREADS / 2; h > 0; h /= 2)
            for (uint32_t tid = 0; tid < VEIL_MS_THREADS; tid++)
                veil_ms_phase_reduce(part, h, tid);
        veil_ms_phase_body(o, x, n, lg, p->ms_centered ? 1 : 0,
                           veil_ms_offset_of(offsets, index, c), part[0]);
    }
    return 0;
}

extern "C" int veil_cuda_pbs_batch_emulate(const veil_cuda_params *p, const double *bsk_fourier,
                                           const uint64_t *in_small, const uint64_t *polys,
                                           const uint64_t *offsets, const uint32_t *index,
                                           uint32_t count, uint64_t *out_big) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    const size_t n1 = (size_t)p->lwe_dim + 1, big1 = veil_cuda_out_words(p);
    uint32_t *ms = (uint32_t *)malloc(sizeof(uint32_t) * n1 * (count ? count : 1));
    if (!ms) return (int)cudaErrorMemoryAllocation;
    e = veil_cuda_modulus_switch_emulate(p, ms, in_small, offsets, index, count);
    for (uint32_t c = 0; !e && c < count; c++)
        e = veil_cuda_pbs_fused_emulate(p, bsk_fourier, ms + c * n1,
                                        veil_lut_poly_of(polys, index, c, p->poly_size),
                                        out_big + c * big1);
    free(ms);
    return e;
}

extern "C" size_t veil_cuda_bsk_fourier_bytes(const veil_cuda_params *p) {
    const uint64_t k1 = p->glwe_dim + 1;
    return sizeof(double2) * (uint64_t)p->lwe_dim * k1 * p->pbs_level * k1 * (p->poly_size / 2);
}

extern "C" int veil_cuda_bsk_to_fourier(void *stream_, uint32_t gpu_index,
                                        const veil_cuda_params *p, double *d_bsk_fourier,
                                        const uint64_t *d_bsk) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e || (e = veil_cuda_select(gpu_index))) return e;
    cudaStream_t stream = (cudaStream_t)stream_;
    const uint32_t N = p->poly_size, H = N / 2;
    const uint64_t k1 = p->glwe_dim + 1;
    const uint64_t polys = (uint64_t)p->lwe_dim * k1 * p->pbs_level * k1;
    double2 *out = (double2 *)d_bsk_fourier, *tw = NULL;
    if ((e = make_twiddles(stream, N, &tw))) return e;
    twist_torus_kernel<<<veil_blocks(polys * H, 256), 256, 0, stream>>>(out, d_bsk, tw, N, polys);
    e = (int)cudaGetLastError();
    /* In place, through one plan of up to 4096 transforms and one for the tail. */
    const uint64_t chunk = polys < 4096 ? polys : 4096, tail = polys % chunk;
    cufftHandle full = 0, rest = 0;
    int have_full = 0, have_rest = 0;
    size_t ws = 0;
    if (!e && !(e = make_plan(&full, H, chunk, &ws))) have_full = 1;
    if (!e && tail && !(e = make_plan(&rest, H, tail, &ws))) have_rest = 1;
    void *work = NULL;
    size_t ws_full = 0, ws_rest = 0;
    if (!e && have_full && cufftGetSize(full, &ws_full) != CUFFT_SUCCESS)
        e = VEIL_CUDA_ERR_CUFFT + (int)CUFFT_INTERNAL_ERROR;
    if (!e && have_rest && cufftGetSize(rest, &ws_rest) != CUFFT_SUCCESS)
        e = VEIL_CUDA_ERR_CUFFT + (int)CUFFT_INTERNAL_ERROR;
    const size_t wmax = ws_full > ws_rest ? ws_full : ws_rest;
    if (!e && wmax) e = (int)cudaMalloc(&work, wmax);
    if (!e) e = (int)cudaDeviceSynchronize(); /* the plans' own setup before the transforms */
    for (int which = 0; !e && which < 2; which++) {
        cufftHandle h = which ? rest : full;
        if (!(which ? have_rest : have_full)) continue;
        cufftResult r = cufftSetWorkArea(h, work);
        if (r == CUFFT_SUCCESS) r = cufftSetStream(h, stream);
        if (r != CUFFT_SUCCESS) e = VEIL_CUDA_ERR_CUFFT + (int)r;
    }
    uint64_t done = 0;
    for (; !e && done + chunk <= polys; done += chunk) {
        cufftDoubleComplex *x = (cufftDoubleComplex *)(out + done * H);
        cufftResult r = cufftExecZ2Z(full, x, x, CUFFT_FORWARD);
        if (r != CUFFT_SUCCESS) e = VEIL_CUDA_ERR_CUFFT + (int)r;
    }
    if (!e && tail) {
        cufftDoubleComplex *x = (cufftDoubleComplex *)(out + done * H);
        cufftResult r = cufftExecZ2Z(rest, x, x, CUFFT_FORWARD);
        if (r != CUFFT_SUCCESS) e = VEIL_CUDA_ERR_CUFFT + (int)r;
    }
    cudaError_t se = cudaStreamSynchronize(stream);
    if (!e && se != cudaSuccess) e = (int)se;
    if (have_full) cufftDestroy(full);
    if (have_rest) cufftDestroy(rest);
    cudaFree(work);
    cudaFree(tw);
    return e;
}

extern "C" const char *veil_cuda_pbs_kernel_name(const veil_cuda_pbs_buffer *b) {
    if (!b) return "none";
    return b->kernel == VEIL_CUDA_PBS_CLUSTER ? "cluster"
           : b->kernel == VEIL_CUDA_PBS_SPLIT ? "split"
           : b->kernel == VEIL_CUDA_PBS_FUSED ? "fused"
                                              : "cufft";
}

extern "C" void veil_cuda_cleanup_pbs(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer **bp) {
    if (!bp || !*bp) return;
    veil_cuda_pbs_buffer *b = *bp;
    veil_cuda_select(gpu_index);
    /* work still queued on the buffer's stream ends before its plans and
     * memory go (cuda.h: the buffer is bound to that stream) */
    if (stream)
        cudaStreamSynchronize((cudaStream_t)stream);
    else
        cudaDeviceSynchronize();
    for (int e = 0; e < VEIL_PBS_MAX_PLANS; e++) {
        if (b->fwd_made[e]) cufftDestroy(b->fwd[e]);
        if (b->inv_made[e]) cufftDestroy(b->inv[e]);
        if (b->gfwd_made[e]) cufftDestroy(b->gfwd[e]);
    }
    cudaFree(b->gsum);
    cudaFree(b->acc);
    cudaFree(b->dec);
    cudaFree(b->prod);
    cudaFree(b->ms);
    cudaFree(b->tw);
    cudaFree(b->roots);
    cudaFree(b->roots_loc);
    cudaFree(b->work);
    free(b);
    *bp = NULL;
}

extern "C" int veil_cuda_scratch_pbs(void *stream_, uint32_t gpu_index, const veil_cuda_params *p,
                                     uint32_t max_count, veil_cuda_pbs_buffer **buf, size_t *bytes,
                                     int allocate) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    if (max_count == 0 || (allocate && !buf)) return VEIL_CUDA_ERR_ARG;
    if ((e = veil_cuda_select(gpu_index))) return e;
    cudaStream_t stream = (cudaStream_t)stream_;
    const uint32_t H = p->poly_size / 2, k1 = p->glwe_dim + 1, l = p->pbs_level;
    int optin = 0;
    if ((e = (int)cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                         (int)gpu_index)))
        return e;
    const int fits = veil_fused_smem_bytes(p) <= (size_t)optin;
    const uint32_t want = p->pbs_kernel;
    const int mb = p->grouping >= 2; /* multi-bit: cuFFT or cluster (params_check) */
    int clusters = 0;                /* clusters of this shape the device runs at once */
    if ((!mb && want == VEIL_CUDA_PBS_AUTO) || want == VEIL_CUDA_PBS_CLUSTER) {
        clusters = veil_cluster_max_active(p, (int)gpu_index);
        if (clusters < 0 && want == VEIL_CUDA_PBS_CLUSTER) return -clusters;
        if (clusters < 0) { /* AUTO: the query failed, so the fused or cuFFT path runs */
            cudaGetLastError();
            clusters = 0;
        }
    }
    uint32_t split = 0; /* the split kernel: opt-in (not yet measured against cuFFT) */
    if (want == VEIL_CUDA_PBS_SPLIT) {
        if ((e = veil_split_factor_on(p, (int)gpu_index, &split))) return -e;
        if (split) {
            const int n = veil_split_max_active(p, split, (int)gpu_index);
            if (n < 0) return -n;
            if (n == 0) split = 0;
        }
    }
    if ((want == VEIL_CUDA_PBS_FUSED && !fits) || (want == VEIL_CUDA_PBS_CLUSTER && !clusters) ||
        (want == VEIL_CUDA_PBS_SPLIT && !split))
        return VEIL_CUDA_ERR_UNSUPPORTED;
    /* AUTO: the cluster kernel where it runs; on an H200 it led the fused
     * kernel at every batch size, 5.3 vs 10.8 ms at 1 and 18,700 vs 13,900
     * PBS/s at 16384 (2_2 set, docs/results/h200-bench_gpu.json). Multi-bit:
     * the cuFFT path unless the cluster kernel is asked for (not yet run on
     * a GPU). */
    const uint32_t kernel = want != VEIL_CUDA_PBS_AUTO ? want
                            : mb                       ? (uint32_t)VEIL_CUDA_PBS_CUFFT
                            : clusters                 ? (uint32_t)VEIL_CUDA_PBS_CLUSTER
                            : fits                     ? (uint32_t)VEIL_CUDA_PBS_FUSED
                                                       : (uint32_t)VEIL_CUDA_PBS_CUFFT;
    const int onchip = kernel != VEIL_CUDA_PBS_CUFFT;
    const sizes s = buffer_sizes(p, onchip ? 0 : max_count);
    const uint64_t gpolys = mb ? (uint64_t)k1 * k1 * l : 0; /* per ciphertext and group */
    /* group sums: the cuFFT path's of one step for max_count ciphertexts, or
     * the cluster kernel's key bundles, every step of kb_chunk ciphertexts */
    const uint64_t steps = mb ? p->lwe_dim / p->grouping : 0;
    const uint32_t kb_chunk = mb && onchip ? kb_chunk_of(steps * gpolys * H, max_count) : 0;
    const uint64_t gsum_polys = mb && onchip ? kb_chunk * steps * gpolys : max_count * gpolys;
    const size_t gsum_bytes = sizeof(double2) * (size_t)gsum_polys * H;
    const size_t data = s.acc + s.dec + s.prod + gsum_bytes +
                        sizeof(uint32_t) * (size_t)max_count * (p->lwe_dim + 1) +
                        sizeof(double2) * H * 2;
    if (!allocate && onchip && !mb) {
        if (bytes) *bytes = data;
        return 0;
    }
    if (!allocate) {
        size_t ws = 0;
        int n = (int)H;
        const uint64_t batch = mb ? gsum_polys : (uint64_t)max_count * k1 * l;
        if (cufftEstimateMany(1, &n, NULL, 1, n, NULL, 1, n, CUFFT_Z2Z, (int)batch, &ws) !=
            CUFFT_SUCCESS)
            ws = s.dec; /* no estimate: assume one more copy of the data */
        if (bytes) *bytes = data + ws;
        return 0;
    }
    veil_cuda_pbs_buffer *b = (veil_cuda_pbs_buffer *)calloc(1, sizeof *b);
    if (!b) return (int)cudaErrorMemoryAllocation;
    b->p = *p;
    b->max_count = max_count;
    b->kernel = (int)kernel;
    b->split = split;
    if (onchip) {
        e = (int)cudaMalloc((void **)&b->ms,
                            sizeof(uint32_t) * (size_t)max_count * (p->lwe_dim + 1));
        if (!e) e = make_twiddles(stream, p->poly_size, &b->tw);
        if (!e) e = veil_fused_make_roots(stream, p->poly_size, &b->roots);
        if (!e && split) e = veil_fused_make_roots(stream, p->poly_size / split, &b->roots_loc);
        size_t wmax = 0;
        if (!e && mb) { /* key bundles and their transforms, kb_chunk ciphertexts a launch */
            b->kb_chunk = kb_chunk;
            b->n_plans = (int)floor_log2(kb_chunk) + 1;
            e = (int)cudaMalloc((void **)&b->gsum, gsum_bytes);
            if (!e) e = make_ladder(b->gfwd, b->gfwd_made, b->n_plans, H, steps * gpolys, &wmax);
            if (!e && wmax) e = (int)cudaMalloc(&b->work, wmax);
            if (!e) e = bind_ladder(b->gfwd, b->n_plans, b->work, stream);
            /* whatever cuFFT's plan making queued on other streams ends
             * before the first transform on this (non-blocking) stream */
            if (!e) e = (int)cudaDeviceSynchronize();
        }
        if (e) {
            veil_cuda_cleanup_pbs(stream_, gpu_index, &b);
            return e;
        }
        if (bytes) *bytes = data + wmax;
        *buf = b;
        return 0;
    }
    b->n_plans = (int)floor_log2(max_count) + 1;
    e = (int)cudaMalloc((void **)&b->acc, s.acc);
    if (!e) e = (int)cudaMalloc((void **)&b->dec, s.dec);
    if (!e) e = (int)cudaMalloc((void **)&b->prod, s.prod);
    if (!e) e = (int)cudaMalloc((void **)&b->ms, s.ms);
    if (!e && mb) e = (int)cudaMalloc((void **)&b->gsum, gsum_bytes);
    if (!e) e = (int)cudaMemsetAsync(b->dec, 0, s.dec, stream);
    if (!e) e = (int)cudaMemsetAsync(b->prod, 0, s.prod, stream);
    if (!e) e = make_twiddles(stream, p->poly_size, &b->tw);
    size_t wmax = 0;
    if (!e) e = make_ladder(b->fwd, b->fwd_made, b->n_plans, H, (uint64_t)k1 * l, &wmax);
    if (!e) e = make_ladder(b->inv, b->inv_made, b->n_plans, H, k1, &wmax);
    if (!e && mb) e = make_ladder(b->gfwd, b->gfwd_made, b->n_plans, H, gpolys, &wmax);
    if (!e && wmax) e = (int)cudaMalloc(&b->work, wmax);
    if (!e) e = bind_ladder(b->fwd, b->n_plans, b->work, stream);
    if (!e) e = bind_ladder(b->inv, b->n_plans, b->work, stream);
    if (!e && mb) e = bind_ladder(b->gfwd, b->n_plans, b->work, stream);
    /* the memsets and twiddles on this stream, and whatever cuFFT's plan
     * making queued on others, end before the first transform */
    if (!e) e = (int)cudaDeviceSynchronize();
    if (e) {
        veil_cuda_cleanup_pbs(stream_, gpu_index, &b);
        return e;
    }
    if (bytes) *bytes = data + wmax;
    *buf = b;
    return 0;
}

namespace {
template <int K1>
void launch_mac(cudaStream_t stream, double2 *prod, const double2 *dec, const double2 *ggsw,
                uint32_t l, uint32_t H, uint32_t live, uint32_t padded, uint64_t ggsw_stride,
                uint32_t shift) {
    mac_kernel<K1><<<veil_blocks((uint64_t)padded * H, 256), 256, 0, stream>>>(
        prod, dec, ggsw, l, H, live, padded, ggsw_stride, shift);
}

int mac_any(cudaStream_t stream, uint32_t k1, double2 *prod, const double2 *dec,
            const double2 *ggsw, uint32_t l, uint32_t H, uint32_t live, uint32_t padded,
            uint64_t ggsw_stride, uint32_t shift) {
    switch (k1) {
    case 2:
        launch_mac<2>(stream, prod, dec, ggsw, l, H, live, padded, ggsw_stride, shift);
        break;
    case 3:
        launch_mac<3>(stream, prod, dec, ggsw, l, H, live, padded, ggsw_stride, shift);
        break;
    case 4:
        launch_mac<4>(stream, prod, dec, ggsw, l, H, live, padded, ggsw_stride, shift);
        break;
    case 5:
        launch_mac<5>(stream, prod, dec, ggsw, l, H, live, padded, ggsw_stride, shift);
        break;
    default:
        return VEIL_CUDA_ERR_UNSUPPORTED; /* k = 1..4 */
    }
    VEIL_CU_LAUNCHED();
    return 0;
}

/* The rest of one external product once the digits are in b->dec, shared by
 * the classic CMux and the multi-bit step: the digits' forward transforms,
 * the MAC with `ggsw` (Fourier domain; ct_stride apart per ciphertext, 0:
 * one GGSW for all), the inverse transforms, then acc += the untwisted
 * product, or acc = it when `overwrite` (the multi-bit group sum encrypts a
 * monomial: no CMux). */
int external_product_launch(cudaStream_t stream, veil_cuda_pbs_buffer *b, const double2 *ggsw,
                            uint64_t ct_stride, uint32_t ct_shift, uint32_t count, uint32_t padded,
                            int overwrite) {
    const uint32_t k1 = b->p.glwe_dim + 1, N = b->p.poly_size, H = N / 2, l = b->p.pbs_level;
    int e;
    if ((e = exec_ladder(stream, b->fwd, b->n_plans, b->dec, (uint64_t)k1 * l * H, padded,
                         CUFFT_FORWARD)))
        return e;
    if ((e = mac_any(stream, k1, b->prod, b->dec, ggsw, l, H, count, padded, ct_stride, ct_shift)))
        return e;
    if ((e = exec_ladder(stream, b->inv, b->n_plans, b->prod, (uint64_t)k1 * H, padded,
                         CUFFT_INVERSE)))
        return e;
    if (overwrite) VEIL_CU(cudaMemsetAsync(b->acc, 0, sizeof(uint64_t) * count * k1 * N, stream));
    untwist_add_kernel<<<veil_blocks((uint64_t)count * k1 * H, 256), 256, 0, stream>>>(
        b->acc, b->prod, b->tw, k1, N, count);
    VEIL_CU_LAUNCHED();
    return 0;
}

/* Each ciphertext's LWE under the big key from its accumulator, or (p's
 * out_acc) the accumulators themselves. */
int sample_extract_launch(cudaStream_t stream, const veil_cuda_pbs_buffer *b,
                          const veil_cuda_params *p, uint64_t *d_out_big, uint32_t count) {
    if (p->out_acc) {
        VEIL_CU(cudaMemcpyAsync(d_out_big, b->acc,
                                sizeof(uint64_t) * count * (p->glwe_dim + 1) * p->poly_size,
                                cudaMemcpyDeviceToDevice, stream));
        return 0;
    }
    const uint32_t D = veil_cuda_in_dim(p);
    const uint64_t threads = ((uint64_t)D + 1) * count;
    sample_extract_kernel<<<veil_blocks(threads, 256), 256, 0, stream>>>(
        d_out_big, b->acc, p->glwe_dim, p->poly_size, D, count);
    VEIL_CU_LAUNCHED();
    return 0;
}
} // namespace

namespace {
/* veil_cuda_pbs, writing LWEs or (out_acc) accumulators */
int pbs_run(void *stream_, uint32_t gpu_index, veil_cuda_pbs_buffer *b, uint64_t *d_out_big,
            const uint64_t *d_in_small, const veil_cuda_lut_set *luts, const double *d_bsk_fourier,
            uint32_t count, uint32_t out_acc) {
    if (!b || !luts || b->p.grouping) return VEIL_CUDA_ERR_ARG;
    if (count > b->max_count) return VEIL_CUDA_ERR_ARG;
    if (count == 0) return 0;
    int e = veil_cuda_select(gpu_index);
    if (e) return e;
    cudaStream_t stream = (cudaStream_t)stream_;
    veil_cuda_params pc = b->p;
    pc.out_acc = out_acc;
    const veil_cuda_params *p = &pc;
    const uint32_t n = p->lwe_dim, k = p->glwe_dim, k1 = k + 1, N = p->poly_size, H = N / 2,
                   l = p->pbs_level;
    const uint32_t padded = padded_count(count, b->max_count);
    const double2 *bsk = (const double2 *)d_bsk_fourier;
    const uint64_t ggsw_stride = (uint64_t)k1 * l * k1 * H;

    if ((e = veil_modulus_switch_launch(stream, p, b->ms, d_in_small, luts, count))) return e;
    if (b->kernel == VEIL_CUDA_PBS_CLUSTER)
        return veil_cluster_launch(stream, p, d_out_big, b->ms, luts, bsk, b->tw, b->roots, count);
    if (b->kernel == VEIL_CUDA_PBS_SPLIT)
        return veil_split_launch(stream, p, b->split, d_out_big, b->ms, luts, bsk, b->tw, b->roots,
                                 b->roots_loc, count);
    if (b->kernel == VEIL_CUDA_PBS_FUSED)
        return veil_fused_launch(stream, p, d_out_big, b->ms, luts, bsk, b->tw, b->roots, count);
    if ((e = veil_lut_acc_init_launch(stream, p, b->acc, b->ms, luts, count))) return e;
    const unsigned blocks_a = veil_blocks((uint64_t)padded * k1 * H, 256);
    for (uint32_t i = 0; i < n; i++) {
        rotate_decompose_kernel<<<blocks_a, 256, 0, stream>>>(
            b->dec, b->acc, b->ms, b->tw, i, n, k1, N, p->pbs_base_log, l, count, padded);
        VEIL_CU_LAUNCHED();
        if ((e = external_product_launch(stream, b, bsk + i * ggsw_stride, 0, 0, count, padded, 0)))
            return e;
    }
    return sample_extract_launch(stream, b, p, d_out_big, count);
}
} // namespace

extern "C" int veil_cuda_pbs(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *b,
                             uint64_t *d_out_big, const uint64_t *d_in_small,
                             const veil_cuda_lut_set *luts, const double *d_bsk_fourier,
                             uint32_t count) {
    return pbs_run(stream, gpu_index, b, d_out_big, d_in_small, luts, d_bsk_fourier, count, 0);
}

extern "C" int veil_cuda_pbs_acc(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *b,
                                 uint64_t *d_out_acc, const uint64_t *d_in_small,
                                 const veil_cuda_lut_set *luts, const double *d_bsk_fourier,
                                 uint32_t count) {
    return pbs_run(stream, gpu_index, b, d_out_acc, d_in_small, luts, d_bsk_fourier, count, 1);
}

namespace {
/* The multi-bit rotation on the cluster kernel: per launch of up to
 * b->kb_chunk ciphertexts, every key bundle at once (the group sums of all
 * n/g steps: they depend on the mask only, not on the accumulator, so they
 * leave the rotation's sequential chain), transformed by cuFFT, then the
 * n/g external products on chip. */
int multibit_cluster(cudaStream_t stream, veil_cuda_pbs_buffer *b, const veil_cuda_params *p,
                     uint64_t *d_out_big, const uint64_t *d_in_small, const veil_cuda_lut_set *luts,
                     const uint64_t *d_bsk, uint32_t count) {
    const uint32_t n = p->lwe_dim, g = p->grouping, steps = n / g, N = p->poly_size, H = N / 2;
    const uint64_t gpolys = (uint64_t)(p->glwe_dim + 1) * (p->glwe_dim + 1) * p->pbs_level,
                   per_ct = (uint64_t)steps * gpolys, n1 = (uint64_t)n + 1,
                   big1 = veil_cuda_out_words(p);
    for (uint32_t off = 0; off < count; off += b->kb_chunk) {
        const uint32_t m = count - off < b->kb_chunk ? count - off : b->kb_chunk;
        const uint32_t padded = padded_count(m, b->kb_chunk);
        mb_group_sum_kernel<<<veil_blocks((uint64_t)padded * per_ct * H, 256), 256, 0, stream>>>(
            b->gsum, d_bsk, d_in_small + off * n1, b->tw, 0, steps, n, g, N, gpolys, m, padded);
        VEIL_CU_LAUNCHED();
        int e =
            exec_ladder(stream, b->gfwd, b->n_plans, b->gsum, per_ct * H, padded, CUFFT_FORWARD);
        veil_cuda_lut_set part = *luts; /* the tables of these ciphertexts */
        if (part.d_index) part.d_index += off;
        if (!e)
            e = veil_cluster_launch(stream, p, d_out_big + off * big1, b->ms + off * n1, &part,
                                    b->gsum, b->tw, b->roots, m);
        if (e) return e;
    }
    return 0;
}
} // namespace

namespace {
/* veil_cuda_pbs_multibit, writing LWEs or (out_acc) accumulators */
int multibit_run(void *stream_, uint32_t gpu_index, veil_cuda_pbs_buffer *b, uint64_t *d_out_big,
                 const uint64_t *d_in_small, const veil_cuda_lut_set *luts, const uint64_t *d_bsk,
                 uint32_t count, uint32_t out_acc) {
    if (!b || !luts || !d_bsk || b->p.grouping < 2 || !b->gsum) return VEIL_CUDA_ERR_ARG;
    if (count > b->max_count) return VEIL_CUDA_ERR_ARG;
    if (count == 0) return 0;
    int e = veil_cuda_select(gpu_index);
    if (e) return e;
    cudaStream_t stream = (cudaStream_t)stream_;
    veil_cuda_params pc = b->p;
    pc.out_acc = out_acc;
    const veil_cuda_params *p = &pc;
    const uint32_t n = p->lwe_dim, g = p->grouping, k = p->glwe_dim, k1 = k + 1, N = p->poly_size,
                   H = N / 2, l = p->pbs_level;
    const uint64_t gpolys = (uint64_t)k1 * k1 * l;
    const uint32_t padded = padded_count(count, b->max_count);
    if ((e = veil_modulus_switch_launch(stream, p, b->ms, d_in_small, luts, count))) return e;
    if (b->kernel == VEIL_CUDA_PBS_CLUSTER)
        return multibit_cluster(stream, b, p, d_out_big, d_in_small, luts, d_bsk, count);
    if ((e = veil_lut_acc_init_launch(stream, p, b->acc, b->ms, luts, count))) return e;
    const unsigned blocks_g = veil_blocks((uint64_t)padded * gpolys * H, 256);
    const unsigned blocks_a = veil_blocks((uint64_t)padded * k1 * H, 256);
    for (uint32_t q = 0; q < n / g; q++) {
        mb_group_sum_kernel<<<blocks_g, 256, 0, stream>>>(b->gsum, d_bsk, d_in_small, b->tw, q, 1,
                                                          n, g, N, gpolys, count, padded);
        VEIL_CU_LAUNCHED();
        if ((e = exec_ladder(stream, b->gfwd, b->n_plans, b->gsum, gpolys * H, padded,
                             CUFFT_FORWARD)))
            return e;
        mb_decompose_kernel<<<blocks_a, 256, 0, stream>>>(b->dec, b->acc, b->tw, k1, N,
                                                          p->pbs_base_log, l, count, padded);
        VEIL_CU_LAUNCHED();
        /* overwrite: acc = the product (the group sum encrypts a monomial) */
        if ((e = external_product_launch(stream, b, b->gsum, gpolys * H, 0, count, padded, 1)))
            return e;
    }
    return sample_extract_launch(stream, b, p, d_out_big, count);
}
} // namespace

extern "C" int veil_cuda_pbs_multibit(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *b,
                                      uint64_t *d_out_big, const uint64_t *d_in_small,
                                      const veil_cuda_lut_set *luts, const uint64_t *d_bsk,
                                      uint32_t count) {
    return multibit_run(stream, gpu_index, b, d_out_big, d_in_small, luts, d_bsk, count, 0);
}

extern "C" int veil_cuda_pbs_multibit_acc(void *stream, uint32_t gpu_index, veil_cuda_pbs_buffer *b,
                                          uint64_t *d_out_acc, const uint64_t *d_in_small,
                                          const veil_cuda_lut_set *luts, const uint64_t *d_bsk,
                                          uint32_t count) {
    return multibit_run(stream, gpu_index, b, d_out_acc, d_in_small, luts, d_bsk, count, 1);
}

extern "C" int veil_cuda_extract(void *stream, uint32_t gpu_index, const veil_cuda_params *p,
                                 uint64_t *d_out, uint64_t res_stride, const uint64_t *d_acc,
                                 const veil_extract *d_ext, uint32_t n_res, uint64_t period,
                                 uint64_t first, uint32_t count) {
    if (!p || !d_out || !d_acc || !d_ext || n_res == 0 || period == 0 || res_stride < count)
        return VEIL_CUDA_ERR_ARG;
    if (count == 0) return 0;
    int e = veil_cuda_select(gpu_index);
    if (e) return e;
    const uint32_t D = veil_cuda_in_dim(p);
    const uint64_t total = (uint64_t)n_res * count * ((uint64_t)D + 1);
    extract_many_kernel<<<veil_blocks(total, 256), 256, 0, (cudaStream_t)stream>>>(
        d_out, res_stride, d_acc, d_ext, period, first, p->glwe_dim, p->poly_size, D, count, total);
    VEIL_CU_LAUNCHED();
    return 0;
}

extern "C" int veil_cuda_extract_emulate(const veil_cuda_params *p, uint64_t *out,
                                         uint64_t res_stride, const uint64_t *acc,
                                         const veil_extract *ext, uint32_t n_res, uint64_t period,
                                         uint64_t first, uint32_t count) {
    if (!p || !out || !acc || !ext || n_res == 0 || period == 0 || res_stride < count)
        return VEIL_CUDA_ERR_ARG;
    const uint32_t D = veil_cuda_in_dim(p);
    const uint64_t total = (uint64_t)n_res * count * ((uint64_t)D + 1);
    for (uint64_t idx = 0; idx < total; idx++)
        extract_many_word(out, res_stride, acc, ext, period, first, p->glwe_dim, p->poly_size, D,
                          count, idx);
    return 0;
}

namespace {
/* In place, unnormalised, radix-2 (bit reversal then butterflies): the
 * transform cuFFT's Z2Z computes, sign -1 forward, +1 inverse; for the host
 * emulation only. */
void host_fft(double2 *x, uint32_t H, int inverse) {
    for (uint32_t i = 1, j = 0; i < H; i++) {
        uint32_t bit = H >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            const double2 t = x[i];
            x[i] = x[j];
            x[j] = t;
        }
    }
    for (uint32_t len = 2; len <= H; len <<= 1) {
        const double ang = (inverse ? 2.0 : -2.0) * 3.14159265358979323846 / (double)len;
        for (uint32_t i = 0; i < H; i += len)
            for (uint32_t m = 0; m < len / 2; m++) {
                const double2 w = make_double2(cos(ang * m), sin(ang * m));
                const double2 u = x[i + m], v = x[i + m + len / 2];
                const double2 t = make_double2(w.x * v.x - w.y * v.y, w.x * v.y + w.y * v.x);
                x[i + m] = make_double2(u.x + t.x, u.y + t.y);
                x[i + m + len / 2] = make_double2(u.x - t.x, u.y - t.y);
            }
    }
}

} // namespace

extern "C" int veil_cuda_pbs_multibit_emulate(const veil_cuda_params *p, const uint64_t *bsk,
                                              const uint64_t *in_small, const uint64_t *polys,
                                              const uint64_t *offsets, const uint32_t *index,
                                              uint32_t count, uint64_t *out_big) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    if (p->grouping < 2) return VEIL_CUDA_ERR_ARG;
    const uint32_t n = p->lwe_dim, g = p->grouping, k = p->glwe_dim, k1 = k + 1, N = p->poly_size,
                   H = N / 2, l = p->pbs_level, B = p->pbs_base_log;
    const uint32_t lg = floor_log2(N) + 1, D = veil_cuda_in_dim(p);
    const uint64_t gpolys = (uint64_t)k1 * k1 * l, gw = gpolys * N, n1 = (uint64_t)n + 1;
    uint32_t *ms = (uint32_t *)malloc(sizeof(uint32_t) * n1 * (count ? count : 1));
    uint64_t *acc = (uint64_t *)malloc(sizeof(uint64_t) * k1 * N);
    double2 *gsum = (double2 *)malloc(sizeof(double2) * gpolys * H);
    double2 *dec = (double2 *)malloc(sizeof(double2) * k1 * l * H);
    double2 *prod = (double2 *)malloc(sizeof(double2) * k1 * H);
    double2 *tw = (double2 *)malloc(sizeof(double2) * H);
    if (!ms || !acc || !gsum || !dec || !prod || !tw) e = (int)cudaErrorMemoryAllocation;
    for (uint32_t j = 0; !e && j < H; j++) { /* make_twiddles' factors */
        const double a = 3.14159265358979323846 * (double)j / (double)N;
        tw[j] = make_double2(cos(a), sin(a));
    }
    if (!e) e = veil_cuda_modulus_switch_emulate(p, ms, in_small, offsets, index, count);
    const bool on_cluster = p->pbs_kernel == VEIL_CUDA_PBS_CLUSTER;
    if (!e && on_cluster) {
        /* the cluster kernel: each ciphertext's key bundles as
         * multibit_cluster forms them (mb_group_sum_kernel's per-element
         * code, then the forward transform), then its rotation's phases */
        const uint64_t per_ct = (uint64_t)(n / g) * gpolys;
        double2 *kb = (double2 *)malloc(sizeof(double2) * per_ct * H);
        if (!kb) e = (int)cudaErrorMemoryAllocation;
        for (uint32_t c = 0; !e && c < count; c++) {
            const uint64_t *small = in_small + c * n1;
            for (uint32_t q = 0; q < n / g; q++) {
                uint32_t d[16];
                veil_mb_exponents(small + (uint64_t)q * g, g, lg, d);
                const uint64_t *grp = bsk + ((uint64_t)q << g) * gw;
                for (uint64_t r = 0; r < gpolys; r++) {
                    double2 *x = kb + ((uint64_t)q * gpolys + r) * H;
                    for (uint32_t j = 0; j < H; j++)
                        x[j] = veil_dev_twist(
                            (double)(int64_t)veil_mb_sum_coef(grp, gw, N, r, d, g, j),
                            (double)(int64_t)veil_mb_sum_coef(grp, gw, N, r, d, g, j + H), tw[j]);
                    host_fft(x, H, 0);
                }
            }
            e = veil_cluster_emulate(p, (const double *)kb, ms + c * n1,
                                     veil_lut_poly_of(polys, index, c, N),
                                     out_big + c * (uint64_t)veil_cuda_out_words(p));
        }
        free(kb);
    }
    for (uint32_t c = 0; !e && !on_cluster && c < count; c++) { /* the cuFFT path */
        const uint64_t *small = in_small + c * n1;
        /* veil_lut_acc_init: (0, ..., 0, X^-b V) */
        const uint64_t *V = veil_lut_poly_of(polys, index, c, N);
        const uint32_t b0 = (2 * N - ms[c * n1 + n]) & (2 * N - 1);
        memset(acc, 0, sizeof(uint64_t) * k * N);
        for (uint32_t t = 0; t < N; t++)
            acc[(uint64_t)k * N + t] = veil_mb_mono(V, N, b0, t);
        for (uint32_t q = 0; q < n / g; q++) {
            uint32_t d[16];
            veil_mb_exponents(small + (uint64_t)q * g, g, lg, d);
            const uint64_t *grp = bsk + ((uint64_t)q << g) * gw;
            for (uint64_t r = 0; r < gpolys; r++) {
                for (uint32_t j = 0; j < H; j++)
                    gsum[r * H + j] = veil_dev_twist(
                        (double)(int64_t)veil_mb_sum_coef(grp, gw, N, r, d, g, j),
                        (double)(int64_t)veil_mb_sum_coef(grp, gw, N, r, d, g, j + H), tw[j]);
                host_fft(gsum + r * H, H, 0);
            }
            for (uint32_t cq = 0; cq < k1; cq++)
                for (uint32_t j = 0; j < H; j++)
                    veil_mb_decompose(acc + (uint64_t)cq * N, j, H, tw[j], B, l,
                                      dec + (uint64_t)cq * l * H + j, H);
            veil_host_external_product(k1, N, l, dec, gsum, prod, tw, acc, 1);
        }
        uint64_t *o = out_big + c * (uint64_t)veil_cuda_out_words(p); /* sample_extract_launch */
        if (p->out_acc)
            memcpy(o, acc, sizeof(uint64_t) * k1 * N);
        else
            for (uint32_t w = 0; w <= D; w++)
                o[w] = veil_extract_word(acc, k, N, D, 0, 0, w);
    }
    free(ms);
    free(acc);
    free(gsum);
    free(dec);
    free(prod);
    free(tw);
    return e;
}

/* ---- the cuFFT path step by step (pbs.cuh), for the WoP-PBS ----------------- */

uint32_t veil_pbs_padded(const veil_cuda_pbs_buffer *b, uint32_t count) {
    return padded_count(count, b->max_count);
}

int veil_pbs_external_product(cudaStream_t stream, veil_cuda_pbs_buffer *b, const double2 *ggsw,
                              uint64_t ct_stride, uint32_t ct_shift, uint32_t count) {
    if (count > b->max_count || b->kernel != VEIL_CUDA_PBS_CUFFT) return VEIL_CUDA_ERR_ARG;
    return external_product_launch(stream, b, ggsw, ct_stride, ct_shift, count,
                                   padded_count(count, b->max_count), 0);
}

int veil_pbs_rotate_product(cudaStream_t stream, veil_cuda_pbs_buffer *b, const uint32_t *ms,
                            uint32_t i, uint32_t n, const double2 *ggsw, uint64_t ct_stride,
                            uint32_t count) {
    if (count > b->max_count || b->kernel != VEIL_CUDA_PBS_CUFFT) return VEIL_CUDA_ERR_ARG;
    const uint32_t k1 = b->p.glwe_dim + 1, N = b->p.poly_size, H = N / 2;
    const uint32_t padded = padded_count(count, b->max_count);
    rotate_decompose_kernel<<<veil_blocks((uint64_t)padded * k1 * H, 256), 256, 0, stream>>>(
        b->dec, b->acc, ms, b->tw, i, n, k1, N, b->p.pbs_base_log, b->p.pbs_level, count, padded);
    VEIL_CU_LAUNCHED();
    return external_product_launch(stream, b, ggsw, ct_stride, 0, count, padded, 0);
}

int veil_pbs_ggsw_to_fourier(cudaStream_t stream, veil_cuda_pbs_buffer *b, double2 *f,
                             const uint64_t *std, uint32_t units) {
    if (b->kernel != VEIL_CUDA_PBS_CUFFT || (uint64_t)units >> b->n_plans) return VEIL_CUDA_ERR_ARG;
    struct {
        cudaStream_t s;
        veil_cuda_pbs_buffer *b;
        int twist(double2 *f, const uint64_t *std, uint64_t polys) {
            const uint32_t N = b->p.poly_size;
            twist_torus_kernel<<<veil_blocks(polys * (N / 2), 256), 256, 0, s>>>(f, std, b->tw, N,
                                                                                 polys);
            VEIL_CU_LAUNCHED();
            return 0;
        }
        int fft(int e, double2 *x, uint64_t) {
            return run_plan(s, b->fwd[e], x, CUFFT_FORWARD);
        }
    } o{stream, b};
    return veil_pbs_ggsw_fourier_with(o, b->p, b->n_plans, f, std, units);
}

int veil_pbs_sample_extract(cudaStream_t stream, const veil_cuda_pbs_buffer *b, uint64_t *out,
                            uint32_t in_dim, uint32_t count) {
    veil_cuda_params p = b->p;
    p.in_dim = in_dim;
    p.out_acc = 0;
    return sample_extract_launch(stream, b, &p, out, count);
}

void veil_host_fft(double2 *x, uint32_t H, int inverse) {
    host_fft(x, H, inverse);
}

void veil_host_external_product(uint32_t k1, uint32_t N, uint32_t l, double2 *dec,
                                const double2 *ggsw, double2 *prod, const double2 *tw,
                                uint64_t *acc, int overwrite) {
    const uint32_t H = N / 2;
    for (uint32_t r = 0; r < k1 * l; r++)
        host_fft(dec + (uint64_t)r * H, H, 0);
    for (uint32_t j = 0; j < H; j++) /* mac_kernel's order */
        for (uint32_t q = 0; q < k1; q++) {
            double sr = 0.0, si = 0.0;
            for (uint32_t r = 0; r < k1 * l; r++) {
                const double2 a = dec[(uint64_t)r * H + j],
                              b = ggsw[((uint64_t)r * k1 + q) * H + j];
                sr += a.x * b.x - a.y * b.y;
                si += a.x * b.y + a.y * b.x;
            }
            prod[(uint64_t)q * H + j] = make_double2(sr, si);
        }
    for (uint32_t q = 0; q < k1; q++) {
        host_fft(prod + (uint64_t)q * H, H, 1);
        for (uint32_t j = 0; j < H; j++) { /* untwist_add_kernel (into zeros: overwrite) */
            const double2 u = veil_dev_untwist(prod[(uint64_t)q * H + j], tw[j], 1.0 / (double)H);
            uint64_t *A = acc + (uint64_t)q * N;
            A[j] = (overwrite ? 0 : A[j]) + veil_dev_f64_to_torus(u.x);
            A[j + H] = (overwrite ? 0 : A[j + H]) + veil_dev_f64_to_torus(u.y);
        }
    }
}
