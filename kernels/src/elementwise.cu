#include "elementwise.cuh"

namespace {

/* grid-stride: any word count with a bounded grid */
__global__ void lwe_add_kernel(uint64_t *out, const uint64_t *a, const uint64_t *b, uint64_t words,
                               uint64_t f) {
    for (uint64_t w = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; w < words;
         w += (uint64_t)gridDim.x * blockDim.x)
        veil_lwe_add_word(out, a, b, w, f);
}

__global__ void lwe_scale_kernel(uint64_t *out, const uint64_t *in, uint64_t words,
                                 uint32_t lwe_size, uint64_t f, uint64_t pt) {
    for (uint64_t w = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; w < words;
         w += (uint64_t)gridDim.x * blockDim.x)
        veil_lwe_scale_word(out, in, w, lwe_size, f, pt);
}

const unsigned k_threads = 256, k_max_blocks = 1u << 16;

unsigned grid_for(uint64_t words) {
    const unsigned b = veil_blocks(words, k_threads);
    return b < k_max_blocks ? b : k_max_blocks;
}

/* count * lwe_size words, or 0 when that overflows */
uint64_t words_of(uint64_t count, uint32_t lwe_size) {
    return lwe_size && count <= UINT64_MAX / lwe_size ? count * lwe_size : 0;
}

} // namespace

extern "C" int veil_cuda_lwe_add(void *stream, uint32_t gpu_index, uint64_t *d_out,
                                 const uint64_t *d_a, const uint64_t *d_b, uint64_t count,
                                 uint32_t lwe_size, uint64_t f) {
    if (count == 0) return 0;
    const uint64_t words = words_of(count, lwe_size);
    if (!words || !d_out || !d_a || !d_b) return VEIL_CUDA_ERR_ARG;
    int e = veil_cuda_select(gpu_index);
    if (e) return e;
    lwe_add_kernel<<<grid_for(words), k_threads, 0, (cudaStream_t)stream>>>(d_out, d_a, d_b, words,
                                                                            f);
    VEIL_CU_LAUNCHED();
    return 0;
}

extern "C" int veil_cuda_lwe_scale(void *stream, uint32_t gpu_index, uint64_t *d_out,
                                   const uint64_t *d_in, uint64_t count, uint32_t lwe_size,
                                   uint64_t f, uint64_t pt) {
    if (count == 0) return 0;
    const uint64_t words = words_of(count, lwe_size);
    if (!words || !d_out || !d_in) return VEIL_CUDA_ERR_ARG;
    int e = veil_cuda_select(gpu_index);
    if (e) return e;
    lwe_scale_kernel<<<grid_for(words), k_threads, 0, (cudaStream_t)stream>>>(d_out, d_in, words,
                                                                              lwe_size, f, pt);
    VEIL_CU_LAUNCHED();
    return 0;
}

extern "C" int veil_cuda_lwe_add_emulate(uint64_t *out, const uint64_t *a, const uint64_t *b,
                                         uint64_t count, uint32_t lwe_size, uint64_t f) {
    const uint64_t words = words_of(count, lwe_size);
    if (count && (!words || !out || !a || !b)) return VEIL_CUDA_ERR_ARG;
    for (uint64_t w = 0; w < words; w++)
        veil_lwe_add_word(out, a, b, w, f);
    return 0;
}

extern "C" int veil_cuda_lwe_scale_emulate(uint64_t *out, const uint64_t *in, uint64_t count,
                                           uint32_t lwe_size, uint64_t f, uint64_t pt) {
    const uint64_t words = words_of(count, lwe_size);
    if (count && (!words || !out || !in)) return VEIL_CUDA_ERR_ARG;
    for (uint64_t w = 0; w < words; w++)
        veil_lwe_scale_word(out, in, w, lwe_size, f, pt);
    return 0;
}
