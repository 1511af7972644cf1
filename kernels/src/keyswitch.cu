#include "gemm.cuh"
#include "keyswitch.cuh"
#include "veil/ks32.h"

namespace {

/* Row r of the digit matrix A, columns i*l .. i*l + l-1: the digits of mask
 * word i (i < rows <= D, the key's rows) of input r (lwe_in = D + 1 words a
 * row), zeros past the last row or the key's rows. The loader and the host
 * emulation both call it. */
__host__ __device__ inline void ks_digits(const uint64_t *in, uint32_t count, uint32_t rows,
                                          uint32_t lwe_in, uint32_t base_log, uint32_t level,
                                          uint32_t r, uint32_t i, int64_t *d) {
    if (r < count && i < rows) {
        veil_gadget_decompose(in[(uint64_t)r * lwe_in + i], base_log, level, d);
    } else {
        for (uint32_t j = 0; j < level; j++)
            d[j] = 0;
    }
}

/* The epilogue's starting value of output word col: the body (input word
 * D) rounded to its top 32 bits (veil/ks32.h) for col = n, else 0. With the
 * key's words so rounded too (the upload: veil_keyswitch_key_wide), the
 * 64-bit sums are the CPU's 32-bit ones in the top half. */
__host__ __device__ inline uint64_t ks_init_word(const uint64_t *in, uint32_t n, uint32_t big,
                                                 uint32_t lwe_in, uint64_t row, uint64_t col) {
    return col == n ? veil_ks32_body(in[row * lwe_in + big]) : 0;
}

/* A[c][i*l + j] = digit j of input coefficient i < rows of ciphertext c. */
struct ks_loader {
    const uint64_t *in;
    uint32_t count, rows, lwe_in, base_log, level, step;
    __device__ void load(int64_t (*sA)[VEIL_GEMM_TK + 1], uint32_t m0, uint32_t k0,
                         uint32_t) const {
        const uint32_t per = step / level, i0 = k0 / level;
        for (uint32_t idx = threadIdx.x; idx < VEIL_GEMM_TM * per; idx += VEIL_GEMM_THREADS) {
            const uint32_t r = idx / per, ii = idx % per, i = i0 + ii;
            int64_t d[VEIL_CUDA_MAX_LEVEL];
            ks_digits(in, count, rows, lwe_in, base_log, level, m0 + r, i, d);
            for (uint32_t j = 0; j < level; j++)
                sA[r][ii * level + j] = d[j];
        }
    }
};

/* out = (0, ..., 0, body) - sum; split: out was set to (0, ..., 0, body)
 * and every slice subtracts its part. */
struct ks_epilogue {
    uint64_t *out;
    const uint64_t *in;
    uint32_t n, big, lwe_in, split;
    __device__ void store(uint32_t row, uint32_t col, uint32_t, uint64_t v) const {
        uint64_t *o = out + (uint64_t)row * (n + 1) + col;
        if (split) {
            atomicAdd((unsigned long long *)o, (unsigned long long)(0 - v));
        } else {
            *o = ks_init_word(in, n, big, lwe_in, row, col) - v;
        }
    }
};

__global__ void ks_init(uint64_t *out, const uint64_t *in, uint32_t count, uint32_t n, uint32_t big,
                        uint32_t lwe_in) {
    const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)count * (n + 1)) return;
    const uint64_t row = idx / (n + 1), col = idx % (n + 1);
    out[idx] = ks_init_word(in, n, big, lwe_in, row, col);
}

/* Slices of K so that a small batch still fills the card (about two blocks
 * per SM), each slice at least 4 tiles. */
uint32_t ks_split(uint32_t blocks, uint32_t tiles) {
    int dev = 0, sms = 1; /* the current device's (the caller selected it) */
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        sms <= 0)
        sms = 1;
    const uint32_t want = (2u * (uint32_t)sms + blocks - 1) / blocks, most = tiles / 4;
    const uint32_t s = want < most ? want : most;
    return s ? s : 1;
}

} // namespace

int veil_keyswitch_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out,
                          const uint64_t *d_in, const uint64_t *d_ksk, uint32_t count) {
    if (count == 0) return 0;
    /* D mask words in (the master key's, key sets), the first R of them
     * read, R * l key rows */
    const uint32_t big = veil_cuda_in_dim(p), R = veil_cuda_ks_rows(p), l = p->ks_level,
                   n = p->lwe_dim;
    const uint32_t step = (VEIL_GEMM_TK / l) * l;
    ks_loader ld{d_in, count, R, big + 1, p->ks_base_log, l, step};
    const uint32_t gx = veil_blocks(n + 1, VEIL_GEMM_TN), gy = veil_blocks(count, VEIL_GEMM_TM);
    if (gy > 65535) return VEIL_CUDA_ERR_ARG; /* grid.y: split the batch first */
    const uint32_t split = ks_split(gx * gy, (R * l + step - 1) / step);
    ks_epilogue ep{d_out, d_in, n, big, big + 1, split > 1};
    if (split > 1) {
        ks_init<<<veil_blocks((uint64_t)count * (n + 1), 256), 256, 0, stream>>>(d_out, d_in, count,
                                                                                 n, big, big + 1);
        VEIL_CU_LAUNCHED();
    }
    dim3 grid(gx, gy, split);
    veil_gemm_u64<<<grid, VEIL_GEMM_THREADS, 0, stream>>>(ld, ep, d_ksk, n + 1, 0, count, R * l,
                                                          n + 1, split);
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

extern "C" int veil_cuda_keyswitch_emulate(const veil_cuda_params *p, uint64_t *out_small,
                                           const uint64_t *in_big, const uint64_t *ksk,
                                           uint32_t count) {
    int e = veil_cuda_params_check(p, NULL, 0);
    if (e) return e;
    /* the launch's shapes; the product over K in tiles of `step` columns of
     * A (sums mod 2^64: the kernel's order of tiles and slices does not
     * change them, nor does this loop's, a row's digits once for every
     * column), then the unsplit epilogue */
    const uint32_t big = veil_cuda_in_dim(p), R = veil_cuda_ks_rows(p), l = p->ks_level,
                   n = p->lwe_dim;
    const uint32_t step = (VEIL_GEMM_TK / l) * l, K = R * l, per = step / l;
    int64_t *d = (int64_t *)malloc(sizeof(int64_t) * K);
    uint64_t *acc = (uint64_t *)malloc(sizeof(uint64_t) * ((uint64_t)n + 1));
    if (!d || !acc) e = (int)cudaErrorMemoryAllocation;
    for (uint32_t row = 0; !e && row < count; row++) {
        for (uint32_t k0 = 0; k0 < K; k0 += step)
            for (uint32_t ii = 0; ii < per && k0 + ii * l < K; ii++)
                ks_digits(in_big, count, R, big + 1, p->ks_base_log, l, row, k0 / l + ii,
                          d + k0 + ii * l);
        memset(acc, 0, sizeof(uint64_t) * ((uint64_t)n + 1));
        for (uint32_t x = 0; x < K; x++) {
            const uint64_t dx = (uint64_t)d[x], *kr = ksk + (uint64_t)x * (n + 1);
            for (uint32_t col = 0; col <= n; col++)
                acc[col] += dx * kr[col];
        }
        for (uint32_t col = 0; col <= n; col++)
            out_small[(uint64_t)row * (n + 1) + col] =
                ks_init_word(in_big, n, big, big + 1, row, col) - acc[col];
    }
    free(d);
    free(acc);
    return e;
}
