#include "gemm.cuh"
#include "linear.cuh"

namespace {

/* A = W [out_features x in_features], the same for every sample. */
struct w_loader {
    const int64_t *w;
    uint32_t rows, cols, step;
    __device__ void load(int64_t (*sA)[VEIL_GEMM_TK + 1], uint32_t m0, uint32_t k0,
                         uint32_t) const {
        for (uint32_t idx = threadIdx.x; idx < VEIL_GEMM_TM * VEIL_GEMM_TK;
             idx += VEIL_GEMM_THREADS) {
            const uint32_t r = idx / VEIL_GEMM_TK, c = idx % VEIL_GEMM_TK;
            sA[r][c] = (m0 + r < rows && k0 + c < cols) ? w[(uint64_t)(m0 + r) * cols + k0 + c] : 0;
        }
    }
};

/* row: within the launch's rows, which start at row0 */
struct linear_epilogue {
    uint64_t *out;
    const uint64_t *bias;
    uint32_t out_features, lwe_size, row0;
    uint64_t batch0;
    __device__ void store(uint32_t row, uint32_t col, uint32_t z, uint64_t v) const {
        row += row0;
        if (bias && col == lwe_size - 1) v += bias[row];
        out[((batch0 + z) * out_features + row) * (uint64_t)lwe_size + col] = v;
    }
};

__global__ void conv2d_kernel(uint64_t *__restrict__ out, const uint64_t *__restrict__ in,
                              const int64_t *__restrict__ w, const uint64_t *__restrict__ bias,
                              veil_conv_geom c, uint32_t batch, uint32_t lwe_size) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const uint64_t per_out = (uint64_t)c.c_out * c.h_out * c.w_out;
    if (idx >= per_out * batch * lwe_size) return;
    const uint32_t t = (uint32_t)(idx % lwe_size);
    uint64_t o = idx / lwe_size;
    const uint32_t ox = (uint32_t)(o % c.w_out);
    o /= c.w_out;
    const uint32_t oy = (uint32_t)(o % c.h_out);
    o /= c.h_out;
    const uint32_t co = (uint32_t)(o % c.c_out);
    const uint64_t b = o / c.c_out;
    const uint64_t *x = in + b * c.c_in * c.h_in * c.w_in * (uint64_t)lwe_size + t;
    const int64_t *wc = w + (uint64_t)co * c.c_in * c.kh * c.kw;
    uint64_t acc = 0;
    for (uint32_t ci = 0; ci < c.c_in; ci++)
        for (uint32_t ky = 0; ky < c.kh; ky++) {
            const int64_t iy = (int64_t)oy * c.stride_h + ky - c.pad_h;
            if (iy < 0 || iy >= c.h_in) continue;
            for (uint32_t kx = 0; kx < c.kw; kx++) {
                const int64_t ix = (int64_t)ox * c.stride_w + kx - c.pad_w;
                if (ix < 0 || ix >= c.w_in) continue;
                const uint64_t wv = (uint64_t)wc[((uint64_t)ci * c.kh + ky) * c.kw + kx];
                acc +=
                    wv *
                    x[(((uint64_t)ci * c.h_in + (uint64_t)iy) * c.w_in + (uint64_t)ix) * lwe_size];
            }
        }
    if (bias && t == lwe_size - 1) acc += bias[co];
    out[idx] = acc;
}

} // namespace

extern "C" int veil_cuda_linear(void *stream, uint32_t gpu_index, uint64_t *d_out,
                                const uint64_t *d_in, const int64_t *d_w, const uint64_t *d_bias,
                                uint32_t batch, uint32_t in_features, uint32_t out_features,
                                uint32_t lwe_size) {
    if (batch == 0 || out_features == 0) return 0;
    if (in_features == 0 || lwe_size == 0) return VEIL_CUDA_ERR_ARG;
    int e = veil_cuda_select(gpu_index);
    if (e) return e;
    const uint64_t in_stride = (uint64_t)in_features * lwe_size;
    /* grid.y and grid.z are at most 65535: output rows (65535 tiles of TM)
     * and samples in groups, as many layers as the cpu backend takes */
    const uint32_t rows_max = 65535u * VEIL_GEMM_TM;
    for (uint64_t r0 = 0; r0 < out_features; r0 += rows_max) { /* 64-bit: no wrap */
        const uint32_t nr = (uint32_t)(out_features - r0 < rows_max ? out_features - r0 : rows_max);
        w_loader ld{d_w + (uint64_t)r0 * in_features, nr, in_features, VEIL_GEMM_TK};
        for (uint32_t b0 = 0; b0 < batch; b0 += 65535) {
            const uint32_t nb = batch - b0 < 65535 ? batch - b0 : 65535;
            linear_epilogue ep{d_out, d_bias, out_features, lwe_size, (uint32_t)r0, b0};
            dim3 grid(veil_blocks(lwe_size, VEIL_GEMM_TN), veil_blocks(nr, VEIL_GEMM_TM), nb);
            veil_gemm_u64<<<grid, VEIL_GEMM_THREADS, 0, (cudaStream_t)stream>>>(
                ld, ep, d_in + b0 * in_stride, lwe_size, in_stride, nr, in_features, lwe_size, 1);
            VEIL_CU_LAUNCHED();
        }
    }
    return 0;
}

extern "C" int veil_cuda_conv2d(void *stream, uint32_t gpu_index, const veil_conv_geom *c,
                                uint64_t *d_out, const uint64_t *d_in, const int64_t *d_w,
                                const uint64_t *d_bias, uint32_t batch, uint32_t lwe_size) {
    if (batch == 0) return 0;
    if (!c || !c->c_in || !c->c_out || !c->h_out || !c->w_out || !c->stride_h || !c->stride_w ||
        !lwe_size)
        return VEIL_CUDA_ERR_ARG;
    int e = veil_cuda_select(gpu_index);
    if (e) return e;
    const uint64_t threads = (uint64_t)c->c_out * c->h_out * c->w_out * batch * lwe_size;
    conv2d_kernel<<<veil_blocks(threads, 256), 256, 0, (cudaStream_t)stream>>>(
        d_out, d_in, d_w, d_bias, *c, batch, lwe_size);
    VEIL_CU_LAUNCHED();
    return 0;
}
