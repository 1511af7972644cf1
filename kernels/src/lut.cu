#include "lut.cuh"

namespace {

__global__ void acc_init_kernel(uint64_t *__restrict__ acc, const uint32_t *__restrict__ ms,
                                const uint64_t *__restrict__ polys,
                                const uint32_t *__restrict__ index, uint32_t n, uint32_t k,
                                uint32_t N, uint32_t count) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const uint64_t per = (uint64_t)(k + 1) * N;
    if (idx >= per * count) return;
    const uint32_t c = (uint32_t)(idx / per), rem = (uint32_t)(idx % per);
    const uint32_t q = rem / N, t = rem % N;
    uint64_t v = 0;
    if (q == k) {
        const uint32_t b = ms[(uint64_t)c * (n + 1) + n];
        const uint32_t e = (2 * N - b) & (2 * N - 1);
        const uint64_t *V = polys + (uint64_t)(index ? index[c] : 0) * N;
        v = veil_dev_monomial_coef(V, N, e, t);
    }
    acc[idx] = v;
}

} // namespace

int veil_lut_acc_init_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_acc,
                             const uint32_t *d_ms, const veil_cuda_lut_set *luts, uint32_t count) {
    const uint64_t threads = (uint64_t)(p->glwe_dim + 1) * p->poly_size * count;
    acc_init_kernel<<<veil_blocks(threads, 256), 256, 0, stream>>>(
        d_acc, d_ms, luts->d_polys, luts->d_index, p->lwe_dim, p->glwe_dim, p->poly_size, count);
    VEIL_CU_LAUNCHED();
    return 0;
}
