#include <cmath>
#include <cstdlib>

#include "pbs_cluster.cuh"
#include "pbs_split.cuh"

namespace {

template <class D>
__global__ void __launch_bounds__(VEIL_FUSED_THREADS, D::blocks_per_sm)
    fused_pbs_kernel(uint64_t *__restrict__ out, const uint32_t *__restrict__ ms,
                     const uint64_t *__restrict__ polys, const uint32_t *__restrict__ index,
                     const double2 *__restrict__ bsk, const double2 *__restrict__ tw,
                     const double2 *__restrict__ roots, D d, veil_pbs_out o) {
    extern __shared__ double2 smem_raw[];
    veil_fused_smem s;
    s.acc = (uint64_t *)smem_raw;
    s.dec = (double2 *)(s.acc + d.k1 * d.N);
    s.prod = s.dec + d.k1 * d.l * d.HP;
    const uint32_t c = blockIdx.x, tid = threadIdx.x;
    const uint32_t *m = ms + (size_t)c * (d.n + 1);
    const uint64_t *V = veil_lut_poly_of(polys, index, c, d.N);
    const uint32_t ggsw_stride = d.k1 * d.l * d.k1 * d.H;
    veil_fused_init(d, s, V, m[d.n], tid);
    __syncthreads();
    uint32_t a_next = m[0];
    for (uint32_t i = 0; i < d.n; i++) {
        const uint32_t a = a_next;
        if (i + 1 < d.n) a_next = m[i + 1]; /* one step ahead */
        if (a == 0) continue;               /* X^0 acc - acc = 0: nothing to add (as on the CPU) */
        veil_fused_rotate(d, s, a, tw, tid);
        __syncthreads();
        uint32_t st = 1;
        for (; st + 1 <= d.logH; st += 2) {
            veil_fused_fft_stage2(d, s.dec, d.k1 * d.l, st, 0, roots, tid);
            veil_fused_stage_barrier(st);
        }
        if (st == d.logH) {
            veil_fused_fft_stage(d, s.dec, d.k1 * d.l, st, 0, roots, tid);
            __syncthreads();
        }
        veil_fused_mac(d, s, bsk + (size_t)i * ggsw_stride, tid);
        __syncthreads();
        for (st = 1; st + 1 <= d.logH; st += 2) {
            veil_fused_fft_stage2(d, s.prod, d.k1, st, 1, roots, tid);
            veil_fused_stage_barrier(st);
        }
        if (st == d.logH) {
            veil_fused_fft_stage(d, s.prod, d.k1, st, 1, roots, tid);
            __syncthreads();
        }
        veil_fused_add(d, s, tw, tid);
        __syncthreads();
    }
    veil_fused_extract(d, s, out + (size_t)c * o.words, o, tid);
}

} // namespace

void veil_fused_host_tables(uint32_t N, double2 *tw, double2 *roots) {
    const uint32_t H = N / 2;
    for (uint32_t j = 0; j < H; j++) {
        const double a = 3.14159265358979323846 * (double)j / (double)N;
        tw[j] = make_double2(cos(a), sin(a));
    }
    for (uint32_t t = 0; t < H / 2; t++) {
        const double a = -2.0 * 3.14159265358979323846 * (double)t / (double)H;
        roots[t] = make_double2(cos(a), sin(a));
    }
}

int veil_fused_make_roots(cudaStream_t stream, uint32_t N, double2 **d_roots) {
    const uint32_t H = N / 2;
    double2 *tw = (double2 *)malloc(sizeof(double2) * H);
    double2 *roots = (double2 *)malloc(sizeof(double2) * (H / 2));
    if (!tw || !roots) {
        free(tw);
        free(roots);
        return (int)cudaErrorMemoryAllocation;
    }
    veil_fused_host_tables(N, tw, roots);
    cudaError_t e = cudaMalloc((void **)d_roots, sizeof(double2) * (H / 2));
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(*d_roots, roots, sizeof(double2) * (H / 2), cudaMemcpyHostToDevice,
                            stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    free(tw);
    free(roots);
    return (int)e;
}

template <class D>
static int launch(cudaStream_t stream, const veil_cuda_params *p, const D &d, uint64_t *d_out,
                  const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
                  const double2 *d_tw, const double2 *d_roots, uint32_t count) {
    const size_t smem = veil_fused_smem_bytes(p);
    std::lock_guard<std::mutex> lock(veil_cuda_launch_lock());
    VEIL_CU(cudaFuncSetAttribute(fused_pbs_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)smem));
    fused_pbs_kernel<D><<<count, VEIL_FUSED_THREADS, smem, stream>>>(
        d_out, d_ms, luts->d_polys, luts->d_index, d_bsk, d_tw, d_roots, d, veil_pbs_out_of(p));
    VEIL_CU_LAUNCHED();
    return 0;
}

int veil_fused_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out,
                      const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
                      const double2 *d_tw, const double2 *d_roots, uint32_t count) {
    return veil_fused_with_dims(p, [&](const auto &d) {
        return launch(stream, p, d, d_out, d_ms, luts, d_bsk, d_tw, d_roots, count);
    });
}

template <class D>
static int emulate(const D &d, const veil_cuda_params *p, const double *bsk_fourier,
                   const uint32_t *ms, const uint64_t *lut_poly, uint64_t *out_big) {
    double2 *tw = (double2 *)malloc(sizeof(double2) * d.H);
    double2 *roots = (double2 *)malloc(sizeof(double2) * (d.H / 2));
    void *mem = malloc(veil_fused_smem_bytes(p));
    if (!tw || !roots || !mem) {
        free(tw);
        free(roots);
        free(mem);
        return (int)cudaErrorMemoryAllocation;
    }
    veil_fused_host_tables(d.N, tw, roots);
    veil_fused_smem s;
    s.acc = (uint64_t *)mem;
    s.dec = (double2 *)(s.acc + (size_t)d.k1 * d.N);
    s.prod = s.dec + (size_t)d.k1 * d.l * d.HP;
    const double2 *bsk = (const double2 *)bsk_fourier;
    const size_t ggsw_stride = (size_t)d.k1 * d.l * d.k1 * d.H;
    /* each phase: every emulated thread in turn (phases have no data races) */
#define VEIL_EMU(call)                                                                             \
    for (uint32_t tid = 0; tid < VEIL_FUSED_THREADS; tid++)                                        \
    call
    VEIL_EMU(veil_fused_init(d, s, lut_poly, ms[d.n], tid));
    for (uint32_t i = 0; i < d.n; i++) {
        const uint32_t a = ms[i];
        if (a == 0) continue;
        VEIL_EMU(veil_fused_rotate(d, s, a, tw, tid));
        uint32_t st = 1;
        for (; st + 1 <= d.logH; st += 2)
            VEIL_EMU(veil_fused_fft_stage2(d, s.dec, d.k1 * d.l, st, 0, roots, tid));
        if (st == d.logH) VEIL_EMU(veil_fused_fft_stage(d, s.dec, d.k1 * d.l, st, 0, roots, tid));
        VEIL_EMU(veil_fused_mac(d, s, bsk + i * ggsw_stride, tid));
        for (st = 1; st + 1 <= d.logH; st += 2)
            VEIL_EMU(veil_fused_fft_stage2(d, s.prod, d.k1, st, 1, roots, tid));
        if (st == d.logH) VEIL_EMU(veil_fused_fft_stage(d, s.prod, d.k1, st, 1, roots, tid));
        VEIL_EMU(veil_fused_add(d, s, tw, tid));
    }
    const veil_pbs_out o = veil_pbs_out_of(p);
    VEIL_EMU(veil_fused_extract(d, s, out_big, o, tid));
#undef VEIL_EMU
    free(tw);
    free(roots);
    free(mem);
    return 0;
}

extern "C" int veil_cuda_pbs_fused_emulate(const veil_cuda_params *p, const double *bsk_fourier,
                                           const uint32_t *ms, const uint64_t *lut_poly,
                                           uint64_t *out_big) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    if (p->pbs_kernel == VEIL_CUDA_PBS_CLUSTER)
        return veil_cluster_emulate(p, bsk_fourier, ms, lut_poly, out_big);
    if (p->pbs_kernel == VEIL_CUDA_PBS_SPLIT)
        return veil_split_emulate(p, bsk_fourier, ms, lut_poly, out_big);
    return veil_fused_with_dims(
        p, [&](const auto &d) { return emulate(d, p, bsk_fourier, ms, lut_poly, out_big); });
}

extern "C" int veil_cuda_fused_product_emulate(const veil_cuda_params *p, const int64_t *digits,
                                               const uint64_t *torus, double *out) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    const veil_fused_dims d = veil_fused_dims_of(p);
    const uint32_t rows = d.k1 * d.l, H = d.H, nt = VEIL_FUSED_THREADS;
    double2 *tw = (double2 *)malloc(sizeof(double2) * H);
    double2 *roots = (double2 *)malloc(sizeof(double2) * (H / 2));
    const uint32_t HP = d.HP; /* the kernel's padded layout */
    double2 *dig = (double2 *)malloc(sizeof(double2) * rows * HP);
    double2 *key = (double2 *)malloc(sizeof(double2) * rows * HP);
    double2 *prod = (double2 *)malloc(sizeof(double2) * HP);
    if (!tw || !roots || !dig || !key || !prod) {
        free(tw), free(roots), free(dig), free(key), free(prod);
        return (int)cudaErrorMemoryAllocation;
    }
    veil_fused_host_tables(d.N, tw, roots);
    /* fold, twist and bit-reverse both sides, as the kernel does for digits */
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t j = 0; j < H; j++) {
            const double2 w = tw[j];
            const uint32_t q = veil_fused_pad(d, veil_fused_bitrev(j, d.logH));
            const double a = (double)digits[(size_t)r * d.N + j],
                         b = (double)digits[(size_t)r * d.N + j + H];
            dig[(size_t)r * HP + q] = veil_dev_twist(a, b, w);
            const double c = (double)(int64_t)torus[(size_t)r * d.N + j],
                         f = (double)(int64_t)torus[(size_t)r * d.N + j + H];
            key[(size_t)r * HP + q] = veil_dev_twist(c, f, w);
        }
    uint32_t st = 1;
    for (; st + 1 <= d.logH; st += 2)
        for (uint32_t tid = 0; tid < nt; tid++) {
            veil_fused_fft_stage2(d, dig, rows, st, 0, roots, tid);
            veil_fused_fft_stage2(d, key, rows, st, 0, roots, tid);
        }
    if (st == d.logH)
        for (uint32_t tid = 0; tid < nt; tid++) {
            veil_fused_fft_stage(d, dig, rows, st, 0, roots, tid);
            veil_fused_fft_stage(d, key, rows, st, 0, roots, tid);
        }
    /* the kernel's MAC (one output polynomial), then the inverse */
    for (uint32_t j = 0; j < H; j++) {
        double sr = 0, si = 0;
        for (uint32_t r = 0; r < rows; r++) {
            const uint32_t pj = veil_fused_pad(d, j);
            const double2 a = dig[(size_t)r * HP + pj], b = key[(size_t)r * HP + pj];
            sr += a.x * b.x - a.y * b.y;
            si += a.x * b.y + a.y * b.x;
        }
        prod[veil_fused_pad(d, veil_fused_bitrev(j, d.logH))] = make_double2(sr, si);
    }
    for (st = 1; st + 1 <= d.logH; st += 2)
        for (uint32_t tid = 0; tid < nt; tid++)
            veil_fused_fft_stage2(d, prod, 1, st, 1, roots, tid);
    if (st == d.logH)
        for (uint32_t tid = 0; tid < nt; tid++)
            veil_fused_fft_stage(d, prod, 1, st, 1, roots, tid);
    const double scale = 1.0 / (double)H;
    for (uint32_t j = 0; j < H; j++) {
        const double2 v = prod[veil_fused_pad(d, j)], w = tw[j];
        const double2 u = veil_dev_untwist(v, w, scale);
        out[j] = u.x;
        out[j + H] = u.y;
    }
    free(tw), free(roots), free(dig), free(key), free(prod);
    return 0;
}
