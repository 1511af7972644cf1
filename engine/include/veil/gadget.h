/* gadget.h — the signed gadget decomposition, one definition for the CPU
 * engine and the CUDA kernels (compiled as __host__ __device__ by nvcc).
 *
 * x is rounded to the nearest multiple of 2^(64 - B*levels) (mod 2^64) and
 * written as levels signed digits in [-2^(B-1), 2^(B-1)), most significant
 * first: x ~ sum_j digit[j] 2^(64 - B(j+1)). The digits come out least
 * significant first (the carry runs upwards), so a caller that needs no
 * array takes them one at a time with veil_gadget_next. Same result as
 * TFHE-rs's SignedDecomposer (closest representable, then balanced digits). */
#ifndef VEIL_GADGET_H
#define VEIL_GADGET_H

#include <stdint.h>

#ifdef __CUDACC__
#define VEIL_GADGET_FN static inline __host__ __device__
#else
#define VEIL_GADGET_FN static inline
#endif

/* The top B*levels bits of x, rounded to nearest (carry out of bit 63 lost,
 * i.e. mod 2^64). */
VEIL_GADGET_FN uint64_t veil_gadget_round(uint64_t x, uint32_t base_log, uint32_t levels) {
    const uint32_t bits = base_log * levels;
    if (bits >= 64) return x;
    return ((x >> (63 - bits)) + 1) >> 1; /* keep bits+1 bits, round, drop one */
}

/* One digit step, branch-free, written once for a scalar uint64_t and for a
 * vector of them (GCC vector extensions: engine/src/fft/fft_template.h):
 * d = the low base_log bits of r as a balanced digit (two's complement in an
 * unsigned lane), r = the rest, plus one when the digit is negative (bit
 * base_log - 1 set, i.e. low bits >= 2^(base_log-1)). */
#define VEIL_GADGET_STEP(r, d, base_log)                                                           \
    do {                                                                                           \
        const unsigned veil_b_ = (base_log);                                                       \
        (d) = ((r) & (((uint64_t)1 << veil_b_) - 1)) -                                             \
              ((((r) >> (veil_b_ - 1)) & (uint64_t)1) << veil_b_);                                 \
        (r) = ((r) >> veil_b_) + (((r) >> (veil_b_ - 1)) & (uint64_t)1);                           \
    } while (0)

/* The next digit, least significant first: takes base_log bits off *r and
 * carries into the rest when the digit is negative. */
VEIL_GADGET_FN int64_t veil_gadget_next(uint64_t *r, uint32_t base_log) {
    uint64_t d;
    VEIL_GADGET_STEP(*r, d, base_log);
    return (int64_t)d;
}

/* digits[0..levels), most significant first. */
VEIL_GADGET_FN void veil_gadget_decompose(uint64_t x, uint32_t base_log, uint32_t levels,
                                          int64_t *digits) {
    uint64_t r = veil_gadget_round(x, base_log, levels);
    for (int j = (int)levels - 1; j >= 0; j--)
        digits[j] = veil_gadget_next(&r, base_log);
}

#endif
