#include "gemm.cuh"
#include "keyswitch.cuh"

namespace {

/* A[c][i*l + j] = digit j of input coefficient i of ciphertext c. */
struct ks_loader {
    const uint64_t *in;
    uint32_t count, big, lwe_in, base_log, level, step;
    __device__ void load(int64_t (*sA)[VEIL_GEMM_TK + 1], uint32_t m0, uint32_t k0,
                         uint32_t) const {
        const uint32_t per = step / level, i0 = k0 / level;
        for (uint32_t idx = threadIdx.x; idx < VEIL_GEMM_TM * per; idx += VEIL_GEMM_THREADS) {
            const uint32_t r = idx / per, ii = idx % per, i = i0 + ii;
            int64_t d[VEIL_CUDA_MAX_LEVEL];
            if (m0 + r < count && i < big) {
                veil_dev_decompose(in[(uint64_t)(m0 + r) * lwe_in + i], base_log, level, d);
            } else {
                for (uint32_t j = 0; j < level; j++)
                    d[j] = 0;
            }
            for (uint32_t j = 0; j < level; j++)
                sA[r][ii * level + j] = d[j];
        }
    }
};

/* out = (0, ..., 0, body) - sum. */
struct ks_epilogue {
    uint64_t *out;
    const uint64_t *in;
    uint32_t n, big, lwe_in;
    __device__ void store(uint32_t row, uint32_t col, uint32_t, uint64_t v) const {
        const uint64_t init = col == n ? in[(uint64_t)row * lwe_in + big] : 0;
        out[(uint64_t)row * (n + 1) + col] = init - v;
    }
};

} // namespace

int veil_keyswitch_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out,
                          const uint64_t *d_in, const uint64_t *d_ksk, uint32_t count) {
    if (count == 0) return 0;
    const uint32_t big = p->glwe_dim * p->poly_size, l = p->ks_level, n = p->lwe_dim;
    ks_loader ld{d_in, count, big, big + 1, p->ks_base_log, l, (VEIL_GEMM_TK / l) * l};
    ks_epilogue ep{d_out, d_in, n, big, big + 1};
    dim3 grid(veil_blocks(n + 1, VEIL_GEMM_TN), veil_blocks(count, VEIL_GEMM_TM), 1);
    veil_gemm_u64<<<grid, VEIL_GEMM_THREADS, 0, stream>>>(ld, ep, d_ksk, n + 1, 0, count, big * l,
                                                          n + 1);
    VEIL_CU_LAUNCHED();
    return 0;
}

extern "C" int veil_cuda_keyswitch(void *stream, uint32_t gpu_index, const veil_cuda_params *p,
                                   uint64_t *d_out_small, const uint64_t *d_in_big,
                                   const uint64_t *d_ksk, uint32_t count) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    if ((e = veil_cuda_select(gpu_index))) return e;
    return veil_keyswitch_launch((cudaStream_t)stream, p, d_out_small, d_in_big, d_ksk, count);
}
