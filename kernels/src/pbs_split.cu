#include <cstdlib>
#include <type_traits>

#include <cooperative_groups.h>

#include "pbs_split.cuh"

namespace {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 /* the kernel's only compiled body */
/* The kernel's view of its cluster's shared memory: its own, and its
 * peers' through distributed shared memory. */
struct device_peers {
    void *self;
    uint32_t rank;
    __device__ void *base(uint32_t r) const {
        return r == rank ? self : cooperative_groups::this_cluster().map_shared_rank(self, r);
    }
};
#endif

template <uint32_t S, uint32_t T>
__global__ void __launch_bounds__(T, 1)
    split_pbs_kernel(uint64_t *__restrict__ out, const uint32_t *__restrict__ ms,
                     const uint64_t *__restrict__ polys, const uint32_t *__restrict__ index,
                     const double2 *__restrict__ bsk, const double2 *__restrict__ tw,
                     const double2 *__restrict__ roots, const double2 *__restrict__ roots_loc,
                     veil_split_dims d, veil_pbs_out o) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
    extern __shared__ double2 smem_raw[];
    const uint32_t rank = cluster.block_rank(), q = rank / S, b = rank % S;
    const uint32_t c = veil_fused_bitrev(b, d.logS), ct = blockIdx.x / (d.k1 * S),
                   tid = threadIdx.x;
    const device_peers peers = {(void *)smem_raw, rank};
    uint64_t *A = veil_split_acc<S>(d, smem_raw);
    double2 *dec = veil_split_dec<S>(d, smem_raw), *rows = veil_split_rows<S>(d, smem_raw);
    const uint32_t *m = ms + (size_t)ct * (d.n + 1);
    const uint64_t *V = veil_lut_poly_of(polys, index, ct, d.N);
    const uint32_t ggsw_stride = d.k1 * d.l * d.k1 * d.H;
    veil_split_init<S, T>(d, A, V, m[d.n], q, c, tid);
    cluster.sync(); /* the first rotate reads a peer's accumulator */
    uint32_t a_next = m[0];
    for (uint32_t i = 0; i < d.n; i++) {
        const uint32_t a = a_next;
        if (i + 1 < d.n) a_next = m[i + 1];
        if (a == 0) continue; /* the same for every block of the cluster */
        const uint64_t *P =
            veil_split_acc<S>(d, peers.base(veil_split_rotation_peer<S>(d, q, c, a)));
        veil_split_rotate<S, T>(d, A, P, dec, a, c, tw, tid);
        __syncthreads();
        for (uint32_t k = 0; k < veil_split_forward_passes(d); k++) {
            veil_split_forward_pass<T>(d, dec, k, roots_loc, tid);
            __syncthreads();
        }
        cluster.sync(); /* every block's chunk transformed */
        veil_split_mac<S, T>(d, peers, rows, bsk + (size_t)i * ggsw_stride, q, b, roots, tid);
        cluster.sync(); /* every block's rows written; the digits free again */
        veil_split_gather<S, T>(d, peers, dec, q, b, tid);
        __syncthreads();
        for (uint32_t k = 0; k < veil_split_inverse_passes(d); k++) {
            veil_split_inverse_pass<T>(d, dec, k, roots_loc, tid);
            __syncthreads();
        }
        veil_split_last_add<S, T>(d, A, dec, c, tw, roots_loc, tid);
        cluster.sync(); /* accumulators updated; rows read */
    }
    veil_split_extract<S, T>(d, A, out + (size_t)ct * o.words, q, b, c, o, tid);
#else
    (void)out, (void)ms, (void)polys, (void)index, (void)bsk, (void)tw, (void)roots;
    (void)roots_loc, (void)d, (void)o;
    __trap(); /* the host launches it only where this code is 9.0's (veil_cuda_kernel_sm90) */
#endif
}

template <uint32_t S>
cudaLaunchConfig_t config(const veil_split_dims &d, size_t smem, uint32_t count,
                          cudaStream_t stream, cudaLaunchAttribute *attr) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(count * d.k1 * S, 1, 1);
    cfg.blockDim = dim3(veil_split_threads<S>::value, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = d.k1 * S;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cfg;
}

template <uint32_t S> cudaError_t prepare(const veil_split_dims &d, size_t smem) {
    auto kernel = split_pbs_kernel<S, veil_split_threads<S>::value>;
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e == cudaSuccess && d.k1 * S > 8) /* past the portable cluster size */
        e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    return e;
}

template <uint32_t S>
int launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out, const uint32_t *d_ms,
           const veil_cuda_lut_set *luts, const double2 *d_bsk, const double2 *d_tw,
           const double2 *d_roots, const double2 *d_roots_loc, uint32_t count) {
    const veil_split_dims d = veil_split_dims_of(p, S);
    const size_t smem = veil_split_smem_bytes(p, S);
    std::lock_guard<std::mutex> lock(veil_cuda_launch_lock());
    VEIL_CU(prepare<S>(d, smem));
    cudaLaunchAttribute attr[1];
    const cudaLaunchConfig_t cfg = config<S>(d, smem, count, stream, attr);
    VEIL_CU(cudaLaunchKernelEx(&cfg, split_pbs_kernel<S, veil_split_threads<S>::value>, d_out, d_ms,
                               luts->d_polys, luts->d_index, d_bsk, d_tw, d_roots, d_roots_loc, d,
                               veil_pbs_out_of(p)));
    return 0;
}

template <uint32_t S> int max_active(const veil_cuda_params *p) {
    const veil_split_dims d = veil_split_dims_of(p, S);
    const size_t smem = veil_split_smem_bytes(p, S);
    const int sm90 =
        veil_cuda_kernel_sm90((const void *)split_pbs_kernel<S, veil_split_threads<S>::value>);
    if (sm90 <= 0) return sm90; /* no 9.0 code in this binary: the body traps */
    std::lock_guard<std::mutex> lock(veil_cuda_launch_lock());
    cudaError_t e = prepare<S>(d, smem);
    if (e != cudaSuccess) return -(int)e;
    cudaLaunchAttribute attr[1];
    const cudaLaunchConfig_t cfg = config<S>(d, smem, 1, (cudaStream_t)0, attr);
    int n = 0;
    e = cudaOccupancyMaxActiveClusters(&n, split_pbs_kernel<S, veil_split_threads<S>::value>, &cfg);
    if (e == cudaErrorInvalidClusterSize) { /* a cluster this large is refused here */
        (void)cudaGetLastError();
        return 0;
    }
    return e == cudaSuccess ? n : -(int)e;
}

template <uint32_t S>
int emulate(const veil_cuda_params *p, const double *bsk_fourier, const uint32_t *ms,
            const uint64_t *lut_poly, uint64_t *out_big) {
    constexpr uint32_t T = veil_split_threads<S>::value;
    const veil_split_dims d = veil_split_dims_of(p, S);
    const uint32_t blocks = d.k1 * S;
    double2 *tw = (double2 *)malloc(sizeof(double2) * d.H);
    double2 *roots = (double2 *)malloc(sizeof(double2) * (d.H / 2));
    double2 *tw_loc = (double2 *)malloc(sizeof(double2) * d.M);
    double2 *roots_loc = (double2 *)malloc(sizeof(double2) * (d.M / 2));
    void *mem[VEIL_SPLIT_MAX_BLOCKS] = {0};
    int ok = tw && roots && tw_loc && roots_loc;
    for (uint32_t r = 0; r < blocks; r++)
        ok = ok && (mem[r] = malloc(veil_split_smem_bytes(p, S))) != NULL;
    if (ok) {
        veil_fused_host_tables(d.N, tw, roots);
        veil_fused_host_tables(2 * d.M, tw_loc, roots_loc);
        const double2 *bsk = (const double2 *)bsk_fourier;
        const size_t ggsw_stride = (size_t)d.k1 * d.l * d.k1 * d.H;
        const veil_pbs_out o = veil_pbs_out_of(p);
        /* Each phase: every block, every emulated thread in turn (the
         * kernel's barriers, block or cluster, separate phases). */
#define VEIL_EMU(...)                                                                              \
    for (uint32_t rank = 0; rank < blocks; rank++) {                                               \
        const uint32_t q = rank / S, b = rank % S, c = veil_fused_bitrev(b, d.logS);               \
        uint64_t *A = veil_split_acc<S>(d, mem[rank]);                                             \
        double2 *dec = veil_split_dec<S>(d, mem[rank]), *rows = veil_split_rows<S>(d, mem[rank]);  \
        (void)q, (void)b, (void)c, (void)A, (void)dec, (void)rows;                                 \
        for (uint32_t tid = 0; tid < T; tid++) {                                                   \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
    }
        const veil_split_host_peers peers = {mem};
        VEIL_EMU(veil_split_init<S, T>(d, A, lut_poly, ms[d.n], q, c, tid));
        for (uint32_t i = 0; i < d.n; i++) {
            const uint32_t a = ms[i];
            if (a == 0) continue;
            VEIL_EMU(const uint64_t *P =
                         veil_split_acc<S>(d, peers.base(veil_split_rotation_peer<S>(d, q, c, a)));
                     veil_split_rotate<S, T>(d, A, P, dec, a, c, tw, tid));
            for (uint32_t k = 0; k < veil_split_forward_passes(d); k++)
                VEIL_EMU(veil_split_forward_pass<T>(d, dec, k, roots_loc, tid));
            VEIL_EMU(veil_split_mac<S, T>(d, peers, rows, bsk + i * ggsw_stride, q, b, roots, tid));
            VEIL_EMU(veil_split_gather<S, T>(d, peers, dec, q, b, tid));
            for (uint32_t k = 0; k < veil_split_inverse_passes(d); k++)
                VEIL_EMU(veil_split_inverse_pass<T>(d, dec, k, roots_loc, tid));
            VEIL_EMU(veil_split_last_add<S, T>(d, A, dec, c, tw, roots_loc, tid));
        }
        VEIL_EMU(veil_split_extract<S, T>(d, A, out_big, q, b, c, o, tid));
#undef VEIL_EMU
    }
    free(tw);
    free(roots);
    free(tw_loc);
    free(roots_loc);
    for (uint32_t r = 0; r < blocks; r++)
        free(mem[r]);
    return ok ? 0 : (int)cudaErrorMemoryAllocation;
}

template <class F> int with_split(uint32_t S, F f) {
    switch (S) {
    case 2:
        return f(std::integral_constant<uint32_t, 2>());
    case 4:
        return f(std::integral_constant<uint32_t, 4>());
    case 8:
        return f(std::integral_constant<uint32_t, 8>());
    default:
        return VEIL_CUDA_ERR_UNSUPPORTED;
    }
}

} // namespace

/* The kernel's shared memory budget a block on sm_90 (228 KiB an SM, 1 KiB
 * reserved a block): the emulation sizes S as the device would. */
#define VEIL_SPLIT_SM90_OPTIN 232448

int veil_split_factor_on(const veil_cuda_params *p, int device, uint32_t *S) {
    int major = 0, optin = 0;
    cudaError_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e != cudaSuccess) return -(int)e;
    *S = major < 9 ? 0 : veil_split_factor(p, (size_t)optin);
    return 0;
}

int veil_split_launch(cudaStream_t stream, const veil_cuda_params *p, uint32_t S, uint64_t *d_out,
                      const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
                      const double2 *d_tw, const double2 *d_roots, const double2 *d_roots_loc,
                      uint32_t count) {
    return with_split(S, [&](auto s) {
        return launch<decltype(s)::value>(stream, p, d_out, d_ms, luts, d_bsk, d_tw, d_roots,
                                          d_roots_loc, count);
    });
}

int veil_split_max_active(const veil_cuda_params *p, uint32_t S, int device) {
    (void)device; /* the current device (veil_cuda_select) */
    return with_split(S, [&](auto s) { return max_active<decltype(s)::value>(p); });
}

int veil_split_emulate(const veil_cuda_params *p, const double *bsk_fourier, const uint32_t *ms,
                       const uint64_t *lut_poly, uint64_t *out_big) {
    const uint32_t S = veil_split_factor(p, VEIL_SPLIT_SM90_OPTIN);
    return with_split(S, [&](auto s) {
        return emulate<decltype(s)::value>(p, bsk_fourier, ms, lut_poly, out_big);
    });
}
