#include <cstdlib>
#include <type_traits>

#include <cooperative_groups.h>

#include "pbs_cluster.cuh"

namespace {

/* MB: the multi-bit blind rotation, n/g steps, step i's GGSW the
 * ciphertext's key bundle i (bsk: every ciphertext's bundles, one after
 * another), acc = the product each step; else the classic one, n CMux steps
 * over the bootstrapping key. */
template <class D, uint32_t T, bool MB>
__global__ void __launch_bounds__(T, veil_cluster_cfg<D>::blocks_per_sm)
    cluster_pbs_kernel(uint64_t *__restrict__ out, const uint32_t *__restrict__ ms,
                       const uint64_t *__restrict__ polys, const uint32_t *__restrict__ index,
                       const double2 *__restrict__ bsk, const double2 *__restrict__ tw,
                       const double2 *__restrict__ roots, D d, veil_pbs_out o, uint32_t steps) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    extern __shared__ double2 smem_raw[];
    const veil_cluster_smem s = veil_cluster_carve(d, smem_raw);
    const uint32_t q = cluster.block_rank(), c = blockIdx.x / d.k1, tid = threadIdx.x;
    const uint32_t *m = ms + (size_t)c * (d.n + 1);
    const uint64_t *V = veil_lut_poly_of(polys, index, c, d.N);
    const uint32_t ggsw_stride = d.k1 * d.l * d.k1 * d.H;
    const double2 *key = MB ? bsk + (size_t)c * steps * ggsw_stride : bsk;
    /* every block's digit buffers (peers' through DSMEM); parity 1 is
     * l * HP further in each */
    const double2 *peer[VEIL_CLUSTER_MAX_K1];
    VEIL_FUSED_UNROLL
    for (uint32_t r = 0; r < d.k1; r++)
        peer[r] = r == q ? s.dec[0] : cluster.map_shared_rank(s.dec[0], r);
    veil_cluster_init<D, T>(d, s.acc, V, m[d.n], q, tid);
    __syncthreads();
    int par = 0;
    uint32_t a_next = m[0];
    for (uint32_t i = 0; i < steps; i++) {
        const uint32_t a = a_next;
        if (!MB && i + 1 < steps) a_next = m[i + 1];
        if (!MB && a == 0) continue; /* the same for every block of the cluster */
        double2 *dec = s.dec[par];
        veil_cluster_rotate<D, T, MB>(d, s.acc, dec, a, tw, roots, tid);
        __syncthreads();
        uint32_t st = 3;
        for (; st + 1 <= d.logH; st += 2) {
            veil_fused_fft_stage2<D, T>(d, dec, d.l, st, 0, roots, tid);
            if (st + 1 < d.logH) veil_fused_stage_barrier(st);
        }
        if (st == d.logH) veil_fused_fft_stage<D, T>(d, dec, d.l, st, 0, roots, tid);
        cluster.sync(); /* every block's digits of this step are ready */
        const double2 *decs[VEIL_CLUSTER_MAX_K1];
        VEIL_FUSED_UNROLL
        for (uint32_t r = 0; r < d.k1; r++)
            decs[r] = peer[r] + (par ? d.l * d.HP : 0);
        veil_cluster_mac<D, T>(d, decs, s.prod, key + (size_t)i * ggsw_stride, q, roots, tid);
        __syncthreads();
        for (st = 3; st + 1 < d.logH; st += 2) {
            veil_fused_fft_stage2<D, T>(d, s.prod, 1, st, 1, roots, tid);
            veil_fused_stage_barrier(st);
        }
        veil_cluster_last_add<D, T, MB>(d, s.prod, s.acc, tw, roots, tid);
        __syncthreads();
        par ^= 1;
    }
    veil_cluster_extract<D, T>(d, s.acc, out + (size_t)c * o.words, q, o, tid);
    cluster.sync(); /* no block leaves while a peer may still read its digits */
#else
    (void)out, (void)ms, (void)polys, (void)index, (void)bsk, (void)tw, (void)roots, (void)d;
    (void)o, (void)steps;
    __trap(); /* the host launches it only where this code is 9.0's (veil_cuda_kernel_sm90) */
#endif
}

template <class D>
cudaLaunchConfig_t config(const D &d, size_t smem, uint32_t count, cudaStream_t stream,
                          cudaLaunchAttribute *attr) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(count * d.k1, 1, 1);
    cfg.blockDim = dim3(veil_cluster_cfg<D>::threads, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = d.k1;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cfg;
}

/* Steps of p's blind rotation: n, or n/g key bundles (multi-bit). */
inline uint32_t steps_of(const veil_cuda_params *p) {
    return p->grouping >= 2 ? p->lwe_dim / p->grouping : p->lwe_dim;
}

template <class D, bool MB>
int launch_as(cudaStream_t stream, const veil_cuda_params *p, const D &d, uint64_t *d_out,
              const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
              const double2 *d_tw, const double2 *d_roots, uint32_t count) {
    constexpr uint32_t T = veil_cluster_cfg<D>::threads;
    const size_t smem = veil_cluster_smem_bytes(p);
    auto kernel = cluster_pbs_kernel<D, T, MB>;
    std::lock_guard<std::mutex> lock(veil_cuda_launch_lock());
    VEIL_CU(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    cudaLaunchAttribute attr[1];
    const cudaLaunchConfig_t cfg = config(d, smem, count, stream, attr);
    VEIL_CU(cudaLaunchKernelEx(&cfg, kernel, d_out, d_ms, luts->d_polys, luts->d_index, d_bsk, d_tw,
                               d_roots, d, veil_pbs_out_of(p), steps_of(p)));
    return 0;
}

template <class D>
int launch(cudaStream_t stream, const veil_cuda_params *p, const D &d, uint64_t *d_out,
           const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
           const double2 *d_tw, const double2 *d_roots, uint32_t count) {
    return p->grouping >= 2
               ? launch_as<D, true>(stream, p, d, d_out, d_ms, luts, d_bsk, d_tw, d_roots, count)
               : launch_as<D, false>(stream, p, d, d_out, d_ms, luts, d_bsk, d_tw, d_roots, count);
}

/* Clusters of the kernel launch_as<D, MB> runs that the device holds at once
 * (the multi-bit instance is asked about itself: its registers may differ). */
template <class D, bool MB> int max_active_as(const veil_cuda_params *p, const D &d) {
    constexpr uint32_t T = veil_cluster_cfg<D>::threads;
    const size_t smem = veil_cluster_smem_bytes(p);
    auto kernel = cluster_pbs_kernel<D, T, MB>;
    const int sm90 = veil_cuda_kernel_sm90((const void *)kernel);
    if (sm90 <= 0) return sm90; /* no 9.0 code in this binary: the body traps */
    std::lock_guard<std::mutex> lock(veil_cuda_launch_lock());
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return -(int)e;
    cudaLaunchAttribute attr[1];
    const cudaLaunchConfig_t cfg = config(d, smem, 1, (cudaStream_t)0, attr);
    int n = 0;
    e = cudaOccupancyMaxActiveClusters(&n, kernel, &cfg);
    return e == cudaSuccess ? n : -(int)e;
}

template <class D, bool MB>
int emulate(const D &d, const veil_cuda_params *p, const double *bsk_fourier, const uint32_t *ms,
            const uint64_t *lut_poly, uint64_t *out_big) {
    constexpr uint32_t T = veil_cluster_cfg<D>::threads;
    double2 *tw = (double2 *)malloc(sizeof(double2) * d.H);
    double2 *roots = (double2 *)malloc(sizeof(double2) * (d.H / 2));
    void *mem[VEIL_CLUSTER_MAX_K1] = {0};
    int ok = tw && roots;
    for (uint32_t q = 0; q < d.k1; q++)
        ok = ok && (mem[q] = malloc(veil_cluster_smem_bytes(p))) != NULL;
    if (!ok) {
        free(tw);
        free(roots);
        for (uint32_t q = 0; q < d.k1; q++)
            free(mem[q]);
        return (int)cudaErrorMemoryAllocation;
    }
    veil_fused_host_tables(d.N, tw, roots);
    veil_cluster_smem s[VEIL_CLUSTER_MAX_K1];
    for (uint32_t q = 0; q < d.k1; q++)
        s[q] = veil_cluster_carve(d, mem[q]);
    const double2 *bsk = (const double2 *)bsk_fourier;
    const size_t ggsw_stride = (size_t)d.k1 * d.l * d.k1 * d.H;
    /* Each phase: every block, every emulated thread in turn (the kernel's
     * barriers separate phases; a cluster barrier is the same here). */
#define VEIL_EMU(...)                                                                              \
    for (uint32_t q = 0; q < d.k1; q++)                                                            \
        for (uint32_t tid = 0; tid < T; tid++)                                                     \
    __VA_ARGS__
    VEIL_EMU(veil_cluster_init<D, T>(d, s[q].acc, lut_poly, ms[d.n], q, tid));
    int par = 0;
    for (uint32_t i = 0; i < steps_of(p); i++) {
        const uint32_t a = MB ? 0 : ms[i];
        if (!MB && a == 0) continue;
        VEIL_EMU(veil_cluster_rotate<D, T, MB>(d, s[q].acc, s[q].dec[par], a, tw, roots, tid));
        uint32_t st = 3;
        for (; st + 1 <= d.logH; st += 2)
            VEIL_EMU(veil_fused_fft_stage2<D, T>(d, s[q].dec[par], d.l, st, 0, roots, tid));
        if (st == d.logH)
            VEIL_EMU(veil_fused_fft_stage<D, T>(d, s[q].dec[par], d.l, st, 0, roots, tid));
        const double2 *decs[VEIL_CLUSTER_MAX_K1];
        for (uint32_t r = 0; r < d.k1; r++)
            decs[r] = s[r].dec[par];
        VEIL_EMU(veil_cluster_mac<D, T>(d, decs, s[q].prod, bsk + i * ggsw_stride, q, roots, tid));
        for (st = 3; st + 1 < d.logH; st += 2)
            VEIL_EMU(veil_fused_fft_stage2<D, T>(d, s[q].prod, 1, st, 1, roots, tid));
        VEIL_EMU(veil_cluster_last_add<D, T, MB>(d, s[q].prod, s[q].acc, tw, roots, tid));
        par ^= 1;
    }
    const veil_pbs_out o = veil_pbs_out_of(p);
    VEIL_EMU(veil_cluster_extract<D, T>(d, s[q].acc, out_big, q, o, tid));
#undef VEIL_EMU
    free(tw);
    free(roots);
    for (uint32_t q = 0; q < d.k1; q++)
        free(mem[q]);
    return 0;
}

} // namespace

int veil_cluster_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out,
                        const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
                        const double2 *d_tw, const double2 *d_roots, uint32_t count) {
    return veil_fused_with_dims(p, [&](const auto &d) {
        return launch(stream, p, d, d_out, d_ms, luts, d_bsk, d_tw, d_roots, count);
    });
}

int veil_cluster_max_active(const veil_cuda_params *p, int device) {
    int major = 0, optin = 0;
    cudaError_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e != cudaSuccess) return -(int)e;
    if (major < 9 || veil_cluster_smem_bytes(p) > (size_t)optin) return 0;
    return veil_fused_with_dims(p, [&](const auto &d) {
        return p->grouping >= 2 ? max_active_as<std::decay_t<decltype(d)>, true>(p, d)
                                : max_active_as<std::decay_t<decltype(d)>, false>(p, d);
    });
}

int veil_cluster_emulate(const veil_cuda_params *p, const double *bsk_fourier, const uint32_t *ms,
                         const uint64_t *lut_poly, uint64_t *out_big) {
    return veil_fused_with_dims(p, [&](const auto &d) {
        using D = std::decay_t<decltype(d)>;
        return p->grouping >= 2 ? emulate<D, true>(d, p, bsk_fourier, ms, lut_poly, out_big)
                                : emulate<D, false>(d, p, bsk_fourier, ms, lut_poly, out_big);
    });
}
