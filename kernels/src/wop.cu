/* WoP-PBS on the device (veil/cuda.h "WoP-PBS"): engine/src/wop.c's lookup,
 * every step batched over the ciphertexts. One sequence of steps
 * (wop_run) drives either the device (dev_ops: kernel launches) or the
 * host (host_ops: the same per-element code and the existing kernels'
 * emulations), so the emulation test checks the sequence the device runs. */
#include <cstdlib>
#include <cstring>

#include "pbs.cuh"
#include "veil/wop.h" /* VEIL_WOP_MAX_WIDTH */

#define WOP_MAX_W VEIL_WOP_MAX_WIDTH

struct veil_cuda_wop_buffer {
    veil_cuda_wop_params wp;
    uint32_t max_count;
    veil_cuda_pbs_buffer *pbs; /* the bits' reads: the set's own PBS */
    veil_cuda_pbs_buffer *vp;  /* the external products: cuFFT path, the GGSWs' gadget */
    uint64_t *cur, *tmp, *small, *small2, *accs, *reads0, *levels, *packed, *glwe, *ggsw_std, *tree,
        *luts, *zero;
    double2 *ggsw_f;
    veil_extract *ext;
    uint64_t *h_luts; /* host staging of luts and ext */
    veil_extract *h_ext;
    uint32_t luts_w; /* the width luts and ext hold (0: none yet) */
};

namespace {

uint32_t log2u(uint32_t x) {
    uint32_t r = 0;
    while (x >>= 1)
        r++;
    return r;
}

/* The shape of one call. */
struct wop_shape {
    uint32_t n, k, k1, N, H, D, kN, gw, lc, w, slots, lg_slots, logN, nu, top;
    uint64_t leaves;
};

wop_shape shape_of(const veil_cuda_wop_params *wp, uint32_t w) {
    const veil_cuda_params *p = &wp->pbs;
    wop_shape s;
    s.n = p->lwe_dim;
    s.k = p->glwe_dim;
    s.k1 = s.k + 1;
    s.N = p->poly_size;
    s.H = s.N / 2;
    s.D = veil_cuda_in_dim(p);
    s.kN = s.k * s.N;
    s.gw = s.k1 * s.N;
    s.lc = wp->cbs_level;
    s.w = w;
    s.slots = veil_wop_slots_for(s.lc);
    s.lg_slots = log2u(2 * s.N / s.slots);
    s.logN = log2u(s.N);
    s.nu = w < s.logN ? w : s.logN;
    s.top = w - s.nu;
    s.leaves = (uint64_t)1 << s.top;
    return s;
}

/* ---- per-element code: the kernels and the host emulation ---------------- */

/* Word i of a bit's small LWE x (n + 1 words) switched to 2N / slots and
 * back (wop.c multi_read: masks rounded, the body floored after a quarter
 * torus), so that the PBS's own switch to 2N is exact. */
__host__ __device__ inline uint64_t slot_word(const uint64_t *x, uint32_t i, uint32_t n,
                                              uint32_t lg) {
    const uint32_t sh = 64 - lg;
    return i < n ? (uint64_t)veil_dev_ms_coef(x[i], lg) << sh
                 : (uint64_t)veil_dev_ms_body(x[n] + ((uint64_t)1 << 62), lg) << sh;
}

/* Word t of packing input v (kN + 2 words): the level read's kN mask
 * words, its body as coefficient kN (the packing key's row of key
 * coefficient -1), and 0 as the keyswitch's body, so that
 * veil_cuda_keyswitch gives -sum_i sum_j dec_j(a_i) K_{i,j}: wop.c's pfpks. */
__host__ __device__ inline uint64_t pack_word(const uint64_t *levels, uint64_t v, uint32_t t,
                                              uint32_t D, uint32_t kN) {
    const uint64_t *x = levels + v * ((uint64_t)D + 1);
    return t < kN ? x[t] : t == kN ? x[D] : 0;
}

/* Word idx of the GGSWs in the standard domain, [ct][bit][col][lev] GLWEs
 * (veil/tfhe.h's GGSW rows (col, lev)), from the packing keyswitches'
 * outputs glwe[col][(bit lc + lev) C + ct]. */
__host__ __device__ inline uint64_t gather_word(const uint64_t *glwe, uint64_t idx, uint32_t C,
                                                uint32_t w, uint32_t lc, uint32_t k1, uint32_t gw) {
    const uint32_t t = (uint32_t)(idx % gw);
    uint64_t r = idx / gw;
    const uint32_t lev = (uint32_t)(r % lc);
    r /= lc;
    const uint32_t col = (uint32_t)(r % k1);
    r /= k1;
    const uint32_t bit = (uint32_t)(r % w);
    const uint64_t ct = r / w;
    const uint64_t rows = (uint64_t)w * lc * C;
    return glwe[((uint64_t)col * rows + ((uint64_t)bit * lc + lev) * C + ct) * gw + t];
}

/* Word idx of the packing tree's leaves, [ct][leaf] trivial GLWEs: leaf t
 * of ciphertext ct holds entries t 2^nu .. t 2^nu + 2^nu - 1 of its table
 * times out_delta in its body's first 2^nu coefficients (wop.c lookup). */
__host__ __device__ inline uint64_t leaf_word(const int64_t *tables, uint32_t n_tables, uint32_t w,
                                              uint64_t size, uint64_t inner, uint64_t at,
                                              uint64_t out_delta, uint64_t idx, uint32_t k,
                                              uint32_t N, uint32_t nu, uint64_t leaves) {
    const uint32_t gw = (k + 1) * N, h = (uint32_t)(idx % N), q = (uint32_t)(idx % gw / N);
    const uint64_t node = idx / gw, ct = node / leaves, t = node % leaves;
    if (q != k || h >= ((uint32_t)1 << nu)) return 0;
    const uint64_t tab = (((at + ct) % size) / inner) % n_tables;
    return (uint64_t)tables[(tab << w) + (t << nu) + h] * out_delta;
}

/* The digits of the folded pair (x0, x1) = (coefficient j, j + N/2) at
 * `out`, level lev at out[lev * H], twisted by w: rotate_decompose_kernel's
 * (pbs.cu) order, least significant digit first from the last level. */
__host__ __device__ inline void pair_digits(double2 *out, uint32_t H, uint64_t x0, uint64_t x1,
                                            double2 w, uint32_t B, uint32_t l) {
    uint64_t r0 = veil_gadget_round(x0, B, l), r1 = veil_gadget_round(x1, B, l);
    for (uint32_t lev = l; lev-- > 0;) {
        const double re = (double)veil_gadget_next(&r0, B), im = (double)veil_gadget_next(&r1, B);
        out[(uint64_t)lev * H] = veil_dev_twist(re, im, w);
    }
}

/* A CMux of pair p ((p q) of the tree: nodes 2p and 2p + 1), folded
 * coefficient j of polynomial q: acc[p] = node 2p, digits of node 2p + 1 -
 * node 2p (the external product then adds the selected difference). */
__host__ __device__ inline void cmux_word(double2 *dec, uint64_t *acc, const uint64_t *tree,
                                          const double2 *tw, uint64_t p, uint32_t q, uint32_t j,
                                          uint32_t k1, uint32_t N, uint32_t B, uint32_t l) {
    const uint32_t H = N / 2;
    const uint64_t gw = (uint64_t)k1 * N;
    const uint64_t *a0 = tree + 2 * p * gw + (uint64_t)q * N, *a1 = a0 + gw;
    uint64_t *o = acc + p * gw + (uint64_t)q * N;
    o[j] = a0[j];
    o[j + H] = a0[j + H];
    pair_digits(dec + (p * k1 + q) * l * H + j, H, a1[j] - a0[j], a1[j + H] - a0[j + H], tw[j], B,
                l);
}

/* ---- kernels --------------------------------------------------------------- */

__global__ void slot_kernel(uint64_t *out, const uint64_t *in, uint32_t count, uint32_t n,
                            uint32_t lg) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)count * (n + 1)) return;
    const uint64_t c = idx / (n + 1);
    out[idx] = slot_word(in + c * (n + 1), (uint32_t)(idx % (n + 1)), n, lg);
}

__global__ void pack_kernel(uint64_t *out, const uint64_t *levels, uint64_t rows, uint32_t D,
                            uint32_t kN) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * (kN + 2)) return;
    out[idx] = pack_word(levels, idx / (kN + 2), (uint32_t)(idx % (kN + 2)), D, kN);
}

__global__ void gather_kernel(uint64_t *out, const uint64_t *glwe, uint64_t total, uint32_t C,
                              uint32_t w, uint32_t lc, uint32_t k1, uint32_t gw) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    out[idx] = gather_word(glwe, idx, C, w, lc, k1, gw);
}

__global__ void leaf_kernel(uint64_t *out, const int64_t *tables, uint32_t n_tables, uint32_t w,
                            uint64_t size, uint64_t inner, uint64_t at, uint64_t out_delta,
                            uint64_t total, uint32_t k, uint32_t N, uint32_t nu, uint64_t leaves) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    out[idx] = leaf_word(tables, n_tables, w, size, inner, at, out_delta, idx, k, N, nu, leaves);
}

/* pairs p < P: cmux_word; p in [P, padded): zero digits (the transforms'
 * padding stays finite) */
__global__ void cmux_kernel(double2 *dec, uint64_t *acc, const uint64_t *tree, const double2 *tw,
                            uint32_t P, uint32_t padded, uint32_t k1, uint32_t N, uint32_t B,
                            uint32_t l) {
    const uint32_t H = N / 2;
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)padded * k1 * H) return;
    const uint32_t j = (uint32_t)(idx % H), q = (uint32_t)(idx / H % k1);
    const uint64_t p = idx / H / k1;
    if (p >= P) {
        for (uint32_t lev = 0; lev < l; lev++)
            dec[(p * k1 + q) * l * H + (uint64_t)lev * H + j] = make_double2(0.0, 0.0);
        return;
    }
    cmux_word(dec, acc, tree, tw, p, q, j, k1, N, B, l);
}

/* The rotation steps' exponents: X^-2^i is X^(2N - 2^i). */
__host__ __device__ inline uint32_t rot_exp(uint32_t i, uint32_t N) {
    return 2 * N - (1u << i);
}

__global__ void ms_fill_kernel(uint32_t *ms, uint32_t count, uint32_t stride, uint32_t nu,
                               uint32_t N) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)count * stride) return;
    const uint32_t i = (uint32_t)(idx % stride);
    ms[idx] = i < nu ? rot_exp(i, N) : 0;
}

/* ---- the two executors ------------------------------------------------------ */

struct dev_ops {
    cudaStream_t s;
    uint32_t gpu;
    veil_cuda_wop_buffer *b;

    int put(uint64_t *dst, const uint64_t *src, uint64_t words) {
        VEIL_CU(cudaMemcpyAsync(dst, src, words * 8, cudaMemcpyHostToDevice, s));
        return 0;
    }
    int put_ext(veil_extract *dst, const veil_extract *src, uint64_t n) {
        VEIL_CU(cudaMemcpyAsync(dst, src, n * sizeof *src, cudaMemcpyHostToDevice, s));
        return 0;
    }
    int copy(uint64_t *dst, const uint64_t *src, uint64_t words) {
        VEIL_CU(cudaMemcpyAsync(dst, src, words * 8, cudaMemcpyDeviceToDevice, s));
        return 0;
    }
    int scale(uint64_t *o, const uint64_t *in, uint64_t count, uint32_t lwe, uint64_t f) {
        return veil_cuda_lwe_scale(s, gpu, o, in, count, lwe, f, 0);
    }
    int add(uint64_t *o, const uint64_t *a, const uint64_t *c, uint64_t count, uint32_t lwe) {
        return veil_cuda_lwe_add(s, gpu, o, a, c, count, lwe, 1);
    }
    int keyswitch(const veil_cuda_params *p, uint64_t *o, const uint64_t *in, const uint64_t *ksk,
                  uint32_t count) {
        return veil_cuda_keyswitch(s, gpu, p, o, in, ksk, count);
    }
    int slot_switch(uint64_t *o, const uint64_t *in, uint32_t count, uint32_t n, uint32_t lg) {
        slot_kernel<<<veil_blocks((uint64_t)count * (n + 1), 256), 256, 0, s>>>(o, in, count, n,
                                                                                lg);
        VEIL_CU_LAUNCHED();
        return 0;
    }
    int pbs_acc(const veil_cuda_params *, uint64_t *o, const uint64_t *small, const uint64_t *lut,
                const double *bsk, uint32_t count) {
        const veil_cuda_lut_set set = {lut, b->zero, NULL, 1};
        return veil_cuda_pbs_acc(s, gpu, b->pbs, o, small, &set, bsk, count);
    }
    int extract(const veil_cuda_params *p, uint64_t *o, uint64_t stride, const uint64_t *acc,
                const veil_extract *ext, uint32_t n_res, uint32_t count) {
        return veil_cuda_extract(s, gpu, p, o, stride, acc, ext, n_res, 1, 0, count);
    }
    int pack(uint64_t *o, const uint64_t *levels, uint64_t rows, uint32_t D, uint32_t kN) {
        pack_kernel<<<veil_blocks(rows * (kN + 2), 256), 256, 0, s>>>(o, levels, rows, D, kN);
        VEIL_CU_LAUNCHED();
        return 0;
    }
    int gather(uint64_t *o, const uint64_t *glwe, const wop_shape &z, uint32_t C) {
        const uint64_t total = (uint64_t)C * z.w * z.k1 * z.lc * z.gw;
        gather_kernel<<<veil_blocks(total, 256), 256, 0, s>>>(o, glwe, total, C, z.w, z.lc, z.k1,
                                                              z.gw);
        VEIL_CU_LAUNCHED();
        return 0;
    }
    int to_fourier(double2 *f, const uint64_t *std, uint32_t units) {
        return veil_pbs_ggsw_to_fourier(s, b->vp, f, std, units);
    }
    int leaves(uint64_t *o, const veil_cuda_wop_tables *t, uint64_t at, const wop_shape &z,
               uint32_t C) {
        const uint64_t total = (uint64_t)C * z.leaves * z.gw;
        leaf_kernel<<<veil_blocks(total, 256), 256, 0, s>>>(o, t->tables, t->n_tables, t->w,
                                                            t->size, t->inner, at, t->out_delta,
                                                            total, z.k, z.N, z.nu, z.leaves);
        VEIL_CU_LAUNCHED();
        return 0;
    }
    uint64_t *acc() {
        return b->vp->acc;
    }
    int cmux(const uint64_t *tree, uint32_t P, const double2 *g, uint64_t ct_stride,
             uint32_t shift) {
        const veil_cuda_params &p = b->vp->p;
        const uint32_t k1 = p.glwe_dim + 1, H = p.poly_size / 2, padded = veil_pbs_padded(b->vp, P);
        cmux_kernel<<<veil_blocks((uint64_t)padded * k1 * H, 256), 256, 0, s>>>(
            b->vp->dec, b->vp->acc, tree, b->vp->tw, P, padded, k1, p.poly_size, p.pbs_base_log,
            p.pbs_level);
        VEIL_CU_LAUNCHED();
        return veil_pbs_external_product(s, b->vp, g, ct_stride, shift, P);
    }
    int fill_ms(uint32_t C, const wop_shape &z) {
        ms_fill_kernel<<<veil_blocks((uint64_t)C * (z.logN + 1), 256), 256, 0, s>>>(
            b->vp->ms, C, z.logN + 1, z.nu, z.N);
        VEIL_CU_LAUNCHED();
        return 0;
    }
    int rotate(uint32_t i, const double2 *g, uint64_t ct_stride, uint32_t C, const wop_shape &z) {
        return veil_pbs_rotate_product(s, b->vp, b->vp->ms, i, z.logN, g, ct_stride, C);
    }
    int extract0(uint64_t *o, uint32_t D, uint32_t C) {
        return veil_pbs_sample_extract(s, b->vp, o, D, C);
    }
};

/* The host: the same steps, host memory; the cuFFT path's external product
 * as its kernels compute it, around veil_host_fft. */
struct host_ops {
    veil_cuda_params vp; /* the external products' gadget */
    uint64_t *accbuf;    /* max units x (k+1) N */
    double2 *dec, *prod, *tw;
    uint64_t zero;

    int put(uint64_t *dst, const uint64_t *src, uint64_t words) {
        memcpy(dst, src, words * 8);
        return 0;
    }
    int put_ext(veil_extract *dst, const veil_extract *src, uint64_t n) {
        memcpy(dst, src, n * sizeof *src);
        return 0;
    }
    int copy(uint64_t *dst, const uint64_t *src, uint64_t words) {
        memmove(dst, src, words * 8);
        return 0;
    }
    int scale(uint64_t *o, const uint64_t *in, uint64_t count, uint32_t lwe, uint64_t f) {
        return veil_cuda_lwe_scale_emulate(o, in, count, lwe, f, 0);
    }
    int add(uint64_t *o, const uint64_t *a, const uint64_t *c, uint64_t count, uint32_t lwe) {
        return veil_cuda_lwe_add_emulate(o, a, c, count, lwe, 1);
    }
    int keyswitch(const veil_cuda_params *p, uint64_t *o, const uint64_t *in, const uint64_t *ksk,
                  uint32_t count) {
        return veil_cuda_keyswitch_emulate(p, o, in, ksk, count);
    }
    int slot_switch(uint64_t *o, const uint64_t *in, uint32_t count, uint32_t n, uint32_t lg) {
        for (uint64_t idx = 0; idx < (uint64_t)count * (n + 1); idx++)
            o[idx] = slot_word(in + idx / (n + 1) * (n + 1), (uint32_t)(idx % (n + 1)), n, lg);
        return 0;
    }
    int pbs_acc(const veil_cuda_params *p, uint64_t *o, const uint64_t *small, const uint64_t *lut,
                const double *bsk, uint32_t count) {
        veil_cuda_params q = *p;
        q.out_acc = 1;
        q.pbs_kernel = VEIL_CUDA_PBS_FUSED;
        return veil_cuda_pbs_batch_emulate(&q, bsk, small, lut, &zero, NULL, count, o);
    }
    int extract(const veil_cuda_params *p, uint64_t *o, uint64_t stride, const uint64_t *acc,
                const veil_extract *ext, uint32_t n_res, uint32_t count) {
        return veil_cuda_extract_emulate(p, o, stride, acc, ext, n_res, 1, 0, count);
    }
    int pack(uint64_t *o, const uint64_t *levels, uint64_t rows, uint32_t D, uint32_t kN) {
        for (uint64_t idx = 0; idx < rows * (kN + 2); idx++)
            o[idx] = pack_word(levels, idx / (kN + 2), (uint32_t)(idx % (kN + 2)), D, kN);
        return 0;
    }
    int gather(uint64_t *o, const uint64_t *glwe, const wop_shape &z, uint32_t C) {
        const uint64_t total = (uint64_t)C * z.w * z.k1 * z.lc * z.gw;
        for (uint64_t idx = 0; idx < total; idx++)
            o[idx] = gather_word(glwe, idx, C, z.w, z.lc, z.k1, z.gw);
        return 0;
    }
    /* the device's sequence (veil_pbs_ggsw_fourier_with): twist_torus_kernel's
     * per-element code, then the plan ladder's runs through veil_host_fft */
    int twist(double2 *f, const uint64_t *std, uint64_t polys) {
        for (uint64_t idx = 0; idx < polys * (vp.poly_size / 2); idx++)
            f[idx] = veil_twist_torus_at(std, tw, vp.poly_size, idx);
        return 0;
    }
    int fft(int, double2 *x, uint64_t polys) {
        const uint32_t H = vp.poly_size / 2;
        for (uint64_t i = 0; i < polys; i++)
            veil_host_fft(x + i * H, H, 0);
        return 0;
    }
    int to_fourier(double2 *f, const uint64_t *std, uint32_t units) {
        return veil_pbs_ggsw_fourier_with(*this, vp, VEIL_PBS_MAX_PLANS, f, std, units);
    }
    int leaves(uint64_t *o, const veil_cuda_wop_tables *t, uint64_t at, const wop_shape &z,
               uint32_t C) {
        const uint64_t total = (uint64_t)C * z.leaves * z.gw;
        for (uint64_t idx = 0; idx < total; idx++)
            o[idx] = leaf_word(t->tables, t->n_tables, t->w, t->size, t->inner, at, t->out_delta,
                               idx, z.k, z.N, z.nu, z.leaves);
        return 0;
    }
    uint64_t *acc() {
        return accbuf;
    }
    /* acc[c] += the product of its digits (dec[c]) and its GGSW g */
    void product(uint64_t c, const double2 *g) {
        const uint32_t k1 = vp.glwe_dim + 1, N = vp.poly_size, l = vp.pbs_level;
        veil_host_external_product(k1, N, l, dec + c * k1 * l * (N / 2), g, prod, tw,
                                   accbuf + c * k1 * N, 0);
    }
    int cmux(const uint64_t *tree, uint32_t P, const double2 *g, uint64_t ct_stride,
             uint32_t shift) {
        const uint32_t k1 = vp.glwe_dim + 1, H = vp.poly_size / 2;
        for (uint64_t p = 0; p < P; p++) {
            for (uint32_t q = 0; q < k1; q++)
                for (uint32_t j = 0; j < H; j++)
                    cmux_word(dec, accbuf, tree, tw, p, q, j, k1, vp.poly_size, vp.pbs_base_log,
                              vp.pbs_level);
            product(p, g + (p >> shift) * ct_stride);
        }
        return 0;
    }
    int fill_ms(uint32_t, const wop_shape &) {
        return 0;
    }
    int rotate(uint32_t i, const double2 *g, uint64_t ct_stride, uint32_t C, const wop_shape &z) {
        const uint32_t k1 = z.k1, N = z.N, H = z.H, l = vp.pbs_level, a = rot_exp(i, N);
        for (uint64_t c = 0; c < C; c++) { /* rotate_decompose_kernel's digits */
            const uint64_t *A = accbuf + c * k1 * N;
            for (uint32_t q = 0; q < k1; q++)
                for (uint32_t j = 0; j < H; j++) {
                    const uint64_t *Aq = A + (uint64_t)q * N;
                    pair_digits(dec + (c * k1 + q) * l * H + j, H,
                                veil_dev_monomial_coef(Aq, N, a, j) - Aq[j],
                                veil_dev_monomial_coef(Aq, N, a, j + H) - Aq[j + H], tw[j],
                                vp.pbs_base_log, l);
                }
            product(c, g + c * ct_stride);
        }
        return 0;
    }
    int extract0(uint64_t *o, uint32_t D, uint32_t C) {
        const uint32_t k = vp.glwe_dim, N = vp.poly_size;
        for (uint64_t c = 0; c < C; c++)
            for (uint32_t x = 0; x <= D; x++)
                o[c * ((uint64_t)D + 1) + x] =
                    veil_extract_word(accbuf + c * (k + 1) * N, k, N, D, 0, 0, x);
        return 0;
    }
};

/* Work memory: device or host pointers, the same layout. */
struct wop_work {
    uint64_t *cur, *tmp, *small, *small2, *accs, *reads0, *levels, *packed, *glwe, *ggsw_std, *tree,
        *luts;
    double2 *ggsw_f;
    veil_extract *ext;
    uint64_t *h_luts;
    veil_extract *h_ext;
    uint32_t *luts_w; /* the width luts and ext hold: made once a width */
};

/* Word counts of the work memory for C lookups of up to WOP_MAX_W bits. */
struct wop_sizes {
    uint64_t cur, small, accs, levels, packed, glwe, ggsw, tree, luts, ext, vp_units;
};

wop_sizes sizes_of(const veil_cuda_wop_params *wp, uint64_t C) {
    const wop_shape z = shape_of(wp, WOP_MAX_W);
    wop_sizes s;
    s.cur = C * (z.D + 1);
    s.small = C * (z.n + 1);
    s.accs = C * z.gw;
    s.levels = (uint64_t)WOP_MAX_W * z.lc * C * (z.D + 1);
    s.packed = (uint64_t)WOP_MAX_W * z.lc * C * (z.kN + 2);
    s.glwe = (uint64_t)z.k1 * WOP_MAX_W * z.lc * C * z.gw;
    s.ggsw = C * WOP_MAX_W * z.k1 * z.lc * z.gw; /* std words; Fourier doubles */
    s.tree = C * z.leaves * z.gw;
    s.luts = (uint64_t)WOP_MAX_W * z.N;
    s.ext = (uint64_t)WOP_MAX_W * (1 + z.lc);
    /* the external products' units: the tree's widest level, every GGSW's
     * k + 1 transform units */
    const uint64_t pairs = z.leaves / 2, units = (uint64_t)WOP_MAX_W * z.k1;
    s.vp_units = C * (pairs > units ? pairs : units);
    return s;
}

/* The lookup of C ciphertexts (ciphertext i of the call is the table rule's
 * at + i): wop.c's steps, batched. */
template <class Ops>
int wop_run(Ops &o, const veil_cuda_wop_params *wp, const wop_work &m,
            const veil_cuda_wop_tables *t, uint64_t at, const veil_cuda_wop_keys *keys,
            const uint64_t *in, uint32_t C, uint64_t *out) {
    const veil_cuda_params *p = &wp->pbs;
    const wop_shape z = shape_of(wp, t->w);
    const uint32_t w = z.w, lc = z.lc, B = wp->cbs_base_log;
    const uint64_t big1 = (uint64_t)z.D + 1;
    int e;
    /* each bit's test polynomial (wop.c multi_read's vals) and extractions:
     * result 0 its extraction output, less half its place; results 1..l_cb
     * its level reads, plus g_j / 2 (wop.c circuit_bootstrap); they depend
     * on the width alone, so a call's pieces after the first reuse them */
    if (*m.luts_w != w) {
        *m.luts_w = 0; /* none, until both uploads of this width are queued */
        for (uint32_t i = 0; i < w; i++) {
            uint64_t vals[VEIL_WOP_MAX_SLOTS] = {0};
            vals[0] = i + 1 == w ? 0 : (uint64_t)1 << (62 - w + i);
            veil_extract *x = m.h_ext + i * (1 + lc);
            x[0] = veil_extract{0, 0 - vals[0]};
            for (uint32_t j = 0; j < lc; j++) {
                const uint64_t g2 = (uint64_t)1 << (63 - B * (j + 1));
                vals[1 + j] = 0 - g2;
                x[1 + j] = veil_extract{1 + j, g2}; /* coefficient r: function r */
            }
            for (uint32_t c = 0; c < z.N; c++)
                m.h_luts[(uint64_t)i * z.N + c] = c % z.slots < 1 + lc ? vals[c % z.slots] : 0;
        }
        if ((e = o.put(m.luts, m.h_luts, (uint64_t)w * z.N))) return e;
        if ((e = o.put_ext(m.ext, m.h_ext, (uint64_t)w * (1 + lc)))) return e;
        *m.luts_w = w;
    }

    /* 1, 2. bit extraction, least significant first, and each bit's level reads */
    if ((e = o.copy(m.cur, in, C * big1))) return e;
    for (uint32_t i = 0; i < w; i++) {
        if ((e = o.scale(m.tmp, m.cur, C, (uint32_t)big1, (uint64_t)1 << (w - i)))) return e;
        if ((e = o.keyswitch(p, m.small, m.tmp, keys->ksk, C))) return e;
        if ((e = o.slot_switch(m.small2, m.small, C, z.n, z.lg_slots))) return e;
        if ((e = o.pbs_acc(p, m.accs, m.small2, m.luts + (uint64_t)i * z.N, keys->bsk_fourier, C)))
            return e;
        const veil_extract *x = m.ext + i * (1 + lc);
        if ((e = o.extract(p, m.levels + (uint64_t)i * lc * C * big1, C, m.accs, x + 1, lc, C)))
            return e;
        if (i + 1 < w) {
            if ((e = o.extract(p, m.reads0, C, m.accs, x, 1, C))) return e;
            if ((e = o.add(m.cur, m.cur, m.reads0, C, (uint32_t)big1))) return e;
        }
    }
    /* circuit bootstrapping: the packing keyswitches of function col over
     * every level read at once, as a keyswitch from kN + 1 coefficients to
     * (k + 1) N - 1 plus a body */
    const uint64_t rows = (uint64_t)w * lc * C;
    if ((e = o.pack(m.packed, m.levels, rows, z.D, z.kN))) return e;
    veil_cuda_params pp = *p;
    pp.lwe_dim = z.gw - 1;
    pp.in_dim = z.kN + 1;
    pp.ks_rows = 0;
    pp.ks_base_log = wp->pp_base_log;
    pp.ks_level = wp->pp_level;
    const uint64_t key_words = ((uint64_t)z.kN + 1) * wp->pp_level * z.gw;
    for (uint32_t col = 0; col < z.k1; col++)
        if ((e = o.keyswitch(&pp, m.glwe + col * rows * z.gw, m.packed,
                             keys->pfpks + col * key_words, (uint32_t)rows)))
            return e;
    if ((e = o.gather(m.ggsw_std, m.glwe, z, C))) return e;
    if ((e = o.to_fourier(m.ggsw_f, m.ggsw_std, C * w * z.k1))) return e;

    /* 3. vertical packing: the tree on the top bits, a level at a time over
     * every pair of every lookup; then the rotation by the low nu bits */
    const uint64_t gs = (uint64_t)z.k1 * lc * z.k1 * z.H, ct_stride = (uint64_t)w * gs;
    if ((e = o.leaves(m.tree, t, at, z, C))) return e;
    if (z.top == 0 && (e = o.copy(o.acc(), m.tree, C * z.gw))) return e;
    for (uint32_t u = 0; u < z.top; u++) {
        const uint32_t shift = z.top - u - 1, P = C << shift;
        if ((e = o.cmux(m.tree, P, m.ggsw_f + (z.nu + u) * gs, ct_stride, shift))) return e;
        if (shift && (e = o.copy(m.tree, o.acc(), (uint64_t)P * z.gw))) return e;
    }
    if ((e = o.fill_ms(C, z))) return e;
    for (uint32_t i = 0; i < z.nu; i++)
        if ((e = o.rotate(i, m.ggsw_f + i * gs, ct_stride, C, z))) return e;
    return o.extract0(out, z.D, C);
}

int check(const veil_cuda_wop_params *wp) {
    int e = veil_cuda_params_check(&wp->pbs, NULL, 0);
    if (e) return e;
    if (wp->pbs.grouping || wp->cbs_level < 1 || wp->cbs_level + 1 > VEIL_WOP_MAX_SLOTS ||
        wp->cbs_base_log * wp->cbs_level > 63 || wp->pp_level < 1 ||
        wp->pp_level > VEIL_CUDA_MAX_LEVEL || wp->pp_base_log * wp->pp_level > 64)
        return VEIL_CUDA_ERR_UNSUPPORTED;
    return 0;
}

int check_tables(const veil_cuda_wop_tables *t) {
    return !t || !t->tables || t->w < 1 || t->w > WOP_MAX_W || t->n_tables == 0 || t->size == 0 ||
                   t->inner == 0
               ? VEIL_CUDA_ERR_ARG
               : 0;
}

/* The external products' parameters: the set's GLWE, the GGSWs' gadget, the
 * cuFFT path; lwe_dim log2 N (the rotation steps' exponents a lookup). */
veil_cuda_params vp_params(const veil_cuda_wop_params *wp) {
    veil_cuda_params v = wp->pbs;
    v.pbs_base_log = wp->cbs_base_log;
    v.pbs_level = wp->cbs_level;
    v.pbs_kernel = VEIL_CUDA_PBS_CUFFT;
    v.split = 0; /* the cuFFT path's: a split of the set's own kernel does not apply */
    v.lwe_dim = log2u(v.poly_size);
    v.in_dim = 0;
    v.ks_rows = 0;
    v.out_acc = 0;
    return v;
}

} // namespace

extern "C" int veil_cuda_scratch_wop(void *stream_, uint32_t gpu_index,
                                     const veil_cuda_wop_params *wp, uint32_t max_count,
                                     veil_cuda_wop_buffer **buf, size_t *bytes, int allocate) {
    int e = check(wp);
    if (e) return e;
    if (max_count == 0 || (allocate && !buf)) return VEIL_CUDA_ERR_ARG;
    const wop_sizes s = sizes_of(wp, max_count);
    if (s.vp_units > 0xffffffffu) return VEIL_CUDA_ERR_ARG;
    const veil_cuda_params vp = vp_params(wp);
    size_t pbs_bytes = 0, vp_bytes = 0;
    if ((e = veil_cuda_scratch_pbs(stream_, gpu_index, &wp->pbs, max_count, NULL, &pbs_bytes, 0)))
        return e;
    if ((e = veil_cuda_scratch_pbs(stream_, gpu_index, &vp, (uint32_t)s.vp_units, NULL, &vp_bytes,
                                   0)))
        return e;
    const size_t words = 2 * s.cur + 2 * s.small + s.accs + s.cur + s.levels + s.packed + s.glwe +
                         2 * s.ggsw + s.tree + s.luts + 1;
    const size_t total = words * 8 + s.ext * sizeof(veil_extract) + pbs_bytes + vp_bytes;
    if (bytes) *bytes = total;
    if (!allocate) return 0;
    veil_cuda_wop_buffer *b = (veil_cuda_wop_buffer *)calloc(1, sizeof *b);
    if (!b) return (int)cudaErrorMemoryAllocation;
    b->wp = *wp;
    b->max_count = max_count;
    b->h_luts = (uint64_t *)malloc(s.luts * 8);
    b->h_ext = (veil_extract *)malloc(s.ext * sizeof(veil_extract));
    if (!b->h_luts || !b->h_ext) e = (int)cudaErrorMemoryAllocation;
    if (!e) e = veil_cuda_scratch_pbs(stream_, gpu_index, &wp->pbs, max_count, &b->pbs, NULL, 1);
    if (!e)
        e = veil_cuda_scratch_pbs(stream_, gpu_index, &vp, (uint32_t)s.vp_units, &b->vp, NULL, 1);
    struct {
        void **p;
        size_t bytes;
    } const want[] = {{(void **)&b->cur, s.cur * 8},
                      {(void **)&b->tmp, s.cur * 8},
                      {(void **)&b->small, s.small * 8},
                      {(void **)&b->small2, s.small * 8},
                      {(void **)&b->accs, s.accs * 8},
                      {(void **)&b->reads0, s.cur * 8},
                      {(void **)&b->levels, s.levels * 8},
                      {(void **)&b->packed, s.packed * 8},
                      {(void **)&b->glwe, s.glwe * 8},
                      {(void **)&b->ggsw_std, s.ggsw * 8},
                      {(void **)&b->ggsw_f, s.ggsw * 8},
                      {(void **)&b->tree, s.tree * 8},
                      {(void **)&b->luts, s.luts * 8},
                      {(void **)&b->zero, 8},
                      {(void **)&b->ext, s.ext * sizeof(veil_extract)}};
    for (size_t i = 0; !e && i < sizeof want / sizeof *want; i++)
        e = (int)cudaMalloc(want[i].p, want[i].bytes);
    if (!e) e = (int)cudaMemsetAsync(b->zero, 0, 8, (cudaStream_t)stream_);
    if (!e) e = (int)cudaStreamSynchronize((cudaStream_t)stream_);
    if (e) {
        veil_cuda_cleanup_wop(stream_, gpu_index, &b);
        return e;
    }
    *buf = b;
    return 0;
}

extern "C" void veil_cuda_cleanup_wop(void *stream, uint32_t gpu_index, veil_cuda_wop_buffer **bp) {
    if (!bp || !*bp) return;
    veil_cuda_wop_buffer *b = *bp;
    veil_cuda_select(gpu_index);
    if (stream)
        cudaStreamSynchronize((cudaStream_t)stream);
    else
        cudaDeviceSynchronize();
    veil_cuda_cleanup_pbs(stream, gpu_index, &b->pbs);
    veil_cuda_cleanup_pbs(stream, gpu_index, &b->vp);
    void *const dev[] = {b->cur,    b->tmp,    b->small,  b->small2, b->accs,
                         b->reads0, b->levels, b->packed, b->glwe,   b->ggsw_std,
                         b->ggsw_f, b->tree,   b->luts,   b->zero,   b->ext};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
        cudaFree(dev[i]);
    (void)cudaGetLastError();
    free(b->h_luts);
    free(b->h_ext);
    free(b);
    *bp = NULL;
}

extern "C" int veil_cuda_wop(void *stream, uint32_t gpu_index, veil_cuda_wop_buffer *b,
                             uint64_t *d_out, const uint64_t *d_in, const veil_cuda_wop_tables *t,
                             const veil_cuda_wop_keys *keys, uint32_t count) {
    if (!b || !keys || count > b->max_count) return VEIL_CUDA_ERR_ARG;
    int e = check_tables(t);
    if (e) return e;
    if (count == 0) return 0;
    if ((e = veil_cuda_select(gpu_index))) return e;
    dev_ops o{(cudaStream_t)stream, gpu_index, b};
    const wop_work m{b->cur,    b->tmp,    b->small,  b->small2,   b->accs,   b->reads0,
                     b->levels, b->packed, b->glwe,   b->ggsw_std, b->tree,   b->luts,
                     b->ggsw_f, b->ext,    b->h_luts, b->h_ext,    &b->luts_w};
    return wop_run(o, &b->wp, m, t, t->at, keys, d_in, count, d_out);
}

extern "C" int veil_cuda_wop_emulate(const veil_cuda_wop_params *wp, const veil_cuda_wop_tables *t,
                                     const veil_cuda_wop_keys *keys, const uint64_t *in,
                                     uint32_t count, uint64_t *out) {
    int e = check(wp);
    if (!e) e = check_tables(t);
    if (e) return e;
    if (!keys || !in || !out) return VEIL_CUDA_ERR_ARG;
    if (count == 0) return 0;
    const wop_sizes s = sizes_of(wp, count);
    const wop_shape z = shape_of(wp, WOP_MAX_W);
    host_ops o{};
    o.vp = vp_params(wp);
    uint64_t *w64[12] = {};
    const uint64_t n64[12] = {s.cur,    s.cur,    s.small, s.small, s.accs, s.cur,
                              s.levels, s.packed, s.glwe,  s.ggsw,  s.tree, s.luts};
    for (int i = 0; i < 12 && !e; i++)
        if (!(w64[i] = (uint64_t *)malloc(n64[i] * 8))) e = (int)cudaErrorMemoryAllocation;
    double2 *ggsw_f = (double2 *)malloc(s.ggsw * 8);
    veil_extract *ext = (veil_extract *)malloc(s.ext * sizeof *ext),
                 *h_ext = (veil_extract *)malloc(s.ext * sizeof *ext);
    uint64_t *h_luts = (uint64_t *)malloc(s.luts * 8);
    o.accbuf = (uint64_t *)malloc(s.vp_units * z.gw * 8);
    o.dec = (double2 *)malloc(sizeof(double2) * s.vp_units * z.k1 * z.lc * z.H);
    o.prod = (double2 *)malloc(sizeof(double2) * z.k1 * z.H);
    o.tw = (double2 *)malloc(sizeof(double2) * z.H);
    if (!ggsw_f || !ext || !h_ext || !h_luts || !o.accbuf || !o.dec || !o.prod || !o.tw)
        e = (int)cudaErrorMemoryAllocation;
    for (uint32_t j = 0; !e && j < z.H; j++) { /* make_twiddles' factors */
        const double a = 3.14159265358979323846 * (double)j / (double)z.N;
        o.tw[j] = make_double2(cos(a), sin(a));
    }
    uint32_t luts_w = 0;
    if (!e) {
        const wop_work m{w64[0], w64[1],  w64[2],  w64[3], w64[4], w64[5], w64[6], w64[7], w64[8],
                         w64[9], w64[10], w64[11], ggsw_f, ext,    h_luts, h_ext,  &luts_w};
        e = wop_run(o, wp, m, t, t->at, keys, in, count, out);
    }
    for (int i = 0; i < 12; i++)
        free(w64[i]);
    free(ggsw_f);
    free(ext);
    free(h_ext);
    free(h_luts);
    free(o.accbuf);
    free(o.dec);
    free(o.prod);
    free(o.tw);
    return e;
}
