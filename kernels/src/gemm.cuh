/* One tiled integer matrix product mod 2^64, C = A x B, with A int64 (small
 * digits or weights, produced tile by tile by a loader) and B uint64 (key rows
 * or ciphertexts). Keyswitch and dense layers are both this product; they
 * differ in how A is produced and how C is written (the epilogue). */
#ifndef VEIL_KERNELS_GEMM_CUH
#define VEIL_KERNELS_GEMM_CUH

#include "common.cuh"

#define VEIL_GEMM_TM 32
#define VEIL_GEMM_TN 64
#define VEIL_GEMM_TK 32
#define VEIL_GEMM_THREADS 256

/* Loader: `step` (<= TK) columns of A per tile; load(sA, m0, k0, z) fills
 * sA[r][c] for r < TM, c < step (zeros outside A). Epilogue: store(m, n, z, v).
 * Grid: x over column tiles of B, y over row tiles of A, z over batches times
 * k_split slices of K. With k_split > 1 each block sums one slice and the
 * epilogue must accumulate (atomicAdd: sums mod 2^64 do not depend on the
 * order, so the result stays exact); that keeps a small product (one
 * ciphertext's keyswitch: 15 column tiles, 8192 rows) from running on 15
 * blocks, one tile after another. */
template <class Loader, class Epilogue>
__global__ void __launch_bounds__(VEIL_GEMM_THREADS)
    veil_gemm_u64(Loader ld, Epilogue ep, const uint64_t *__restrict__ B, uint64_t ldb,
                  uint64_t b_batch_stride, uint32_t M, uint32_t K, uint32_t ncol,
                  uint32_t k_split) {
    __shared__ int64_t sA[VEIL_GEMM_TM][VEIL_GEMM_TK + 1];
    __shared__ uint64_t sB[VEIL_GEMM_TK][VEIL_GEMM_TN];
    const uint32_t tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const uint32_t n0 = blockIdx.x * VEIL_GEMM_TN, m0 = blockIdx.y * VEIL_GEMM_TM,
                   z = blockIdx.z / k_split, kz = blockIdx.z % k_split;
    const uint64_t *Bz = B + (uint64_t)z * b_batch_stride;
    uint64_t acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    const uint32_t step = ld.step;
    const uint32_t tiles = (K + step - 1) / step, per = (tiles + k_split - 1) / k_split;
    const uint32_t kbeg = kz * per * step, kend = K < kbeg + per * step ? K : kbeg + per * step;
    for (uint32_t k0 = kbeg; k0 < kend; k0 += step) {
        ld.load(sA, m0, k0, z);
        const uint32_t kc = kend - k0 < step ? kend - k0 : step;
        for (uint32_t idx = threadIdx.x; idx < VEIL_GEMM_TK * VEIL_GEMM_TN;
             idx += VEIL_GEMM_THREADS) {
            const uint32_t r = idx / VEIL_GEMM_TN, c = idx % VEIL_GEMM_TN;
            sB[r][c] = (r < kc && n0 + c < ncol) ? Bz[(uint64_t)(k0 + r) * ldb + n0 + c] : 0;
        }
        __syncthreads();
        for (uint32_t kk = 0; kk < kc; kk++) {
            const uint64_t a0 = (uint64_t)sA[ty][kk], a1 = (uint64_t)sA[ty + 16][kk];
#pragma unroll
            for (int m = 0; m < 4; m++) {
                const uint64_t b = sB[kk][tx + 16 * m];
                acc[0][m] += a0 * b;
                acc[1][m] += a1 * b;
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int m = 0; m < 4; m++) {
            const uint32_t row = m0 + ty + 16 * r, col = n0 + tx + 16 * m;
            if (row < M && col < ncol) ep.store(row, col, z, acc[r][m]);
        }
}

#endif
