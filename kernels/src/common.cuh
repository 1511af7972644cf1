/* Shared device helpers: error codes, torus arithmetic that mirrors the
 * engine's CPU code bit for bit (gadget decomposition, modulus switch). */
#ifndef VEIL_KERNELS_COMMON_CUH
#define VEIL_KERNELS_COMMON_CUH

#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>

#include <cuda_runtime.h>
#include <cufft.h>

#include "veil/cuda.h"
#include "veil/gadget.h"

/* What an on-chip PBS kernel writes per ciphertext (veil_cuda_params
 * out_acc): its LWE, in_dim + 1 words, or (acc) its accumulator, (k+1) N
 * words; words = veil_cuda_out_words, the stride between ciphertexts. */
struct veil_pbs_out {
    uint32_t in_dim, acc, words;
};
inline veil_pbs_out veil_pbs_out_of(const veil_cuda_params *p) {
    veil_pbs_out o = {veil_cuda_in_dim(p), p->out_acc, veil_cuda_out_words(p)};
    return o;
}

#define VEIL_CUDA_MAX_LEVEL 16

/* Returns the code from the enclosing function on a CUDA error. */
#define VEIL_CU(expr)                                                                              \
    do {                                                                                           \
        cudaError_t veil_e_ = (expr);                                                              \
        if (veil_e_ != cudaSuccess) return (int)veil_e_;                                           \
    } while (0)
#define VEIL_CUFFT(expr)                                                                           \
    do {                                                                                           \
        cufftResult veil_r_ = (expr);                                                              \
        if (veil_r_ != CUFFT_SUCCESS) return VEIL_CUDA_ERR_CUFFT + (int)veil_r_;                   \
    } while (0)
/* After a launch: the launch error, if any. */
#define VEIL_CU_LAUNCHED() VEIL_CU(cudaGetLastError())

static inline int veil_cuda_select(uint32_t gpu_index) {
    int cur = -1;
    cudaError_t e = cudaGetDevice(&cur);
    if (e != cudaSuccess) return (int)e;
    if (cur != (int)gpu_index) return (int)cudaSetDevice((int)gpu_index);
    return 0;
}

/* cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize) holds
 * one value per kernel and device, and a kernel instance not compiled for one
 * shape serves parameter sets of different shared-memory sizes: one host
 * thread could lower it between another's setting and launch, which the
 * driver then refuses (two plans on one GPU, two Triton instances, each on a
 * different partition). The kernels that set it do so, then launch or ask
 * for their occupancy, holding this lock (a launch only queues: held for
 * microseconds). */
std::mutex &veil_cuda_launch_lock();

/* 1 when the code of `kernel` that the current device loads was compiled
 * for a virtual architecture of 9.0 or above (cudaFuncAttributes
 * ptxVersion), 0 when not, -cudaError on failure. The cluster and split
 * kernels compile their body only from 9.0 on and trap below: a binary
 * built for sm_80 alone and run on an H100 JIT-compiles their 8.0 PTX, so
 * the device's compute capability is not enough to say they run. */
int veil_cuda_kernel_sm90(const void *kernel);

static inline unsigned veil_blocks(uint64_t threads, unsigned per_block) {
    return (unsigned)((threads + per_block - 1) / per_block);
}

/* veil_ms_coef (veil/tfhe.h). Host too: the modulus switch's emulation
 * (veil_cuda_modulus_switch_emulate) runs the kernel's own code. */
__host__ __device__ __forceinline__ uint32_t veil_dev_ms_coef(uint64_t x, uint32_t log2_2n) {
    return (uint32_t)((x + ((uint64_t)1 << (63 - log2_2n))) >> (64 - log2_2n)) &
           (((uint32_t)1 << log2_2n) - 1);
}
/* veil_ms_body (veil/tfhe.h): the body rounded down, centred in its box. */
__host__ __device__ __forceinline__ uint32_t veil_dev_ms_body(uint64_t x, uint32_t log2_2n) {
    return (uint32_t)(x >> (64 - log2_2n));
}

/* A double holding an integer-valued (or near) number, rounded to the nearest
 * integer and reduced mod 2^64; exact for |v| < 2^1023. Host too: every
 * kernel's host emulation. */
__host__ __device__ __forceinline__ uint64_t veil_dev_f64_to_torus(double v) {
    const double r = rint(v);
    if (fabs(r) < 0x1p63) return (uint64_t)(long long)r;
#ifdef __CUDA_ARCH__
    const uint64_t bits = (uint64_t)__double_as_longlong(r);
#else
    uint64_t bits;
    memcpy(&bits, &r, 8);
#endif
    const int e = (int)((bits >> 52) & 0x7ff) - 1075; /* r = mant * 2^e, e >= 11 here */
    const uint64_t mant = (bits & (((uint64_t)1 << 52) - 1)) | ((uint64_t)1 << 52);
    const uint64_t m = e >= 64 ? 0 : mant << e;
    return (bits >> 63) ? (uint64_t)0 - m : m;
}

/* The fold-and-twist transform's twist of one folded pair (re, im) =
 * (a_j, a_{j+N/2}) by w = exp(i pi j / N), and its inverse on a product
 * coefficient v, with the inverse FFT's 1/(N/2) in scale: the same
 * operations in every kernel and emulation. */
__host__ __device__ __forceinline__ double2 veil_dev_twist(double re, double im, double2 w) {
    return make_double2(re * w.x - im * w.y, re * w.y + im * w.x);
}
__host__ __device__ __forceinline__ double2 veil_dev_untwist(double2 v, double2 w, double scale) {
    return make_double2((v.x * w.x + v.y * w.y) * scale, (v.y * w.x - v.x * w.y) * scale);
}

/* Coefficient t of X^e * P mod X^N + 1, e in [0, 2N). Host too: the
 * WoP-PBS's emulation (wop.cu). */
__host__ __device__ __forceinline__ uint64_t veil_dev_monomial_coef(const uint64_t *P, uint32_t N,
                                                                    uint32_t e, uint32_t t) {
    uint32_t u = (t + 2 * N - e) & (2 * N - 1);
    return u < N ? P[u] : (uint64_t)0 - P[u - N];
}

#endif
