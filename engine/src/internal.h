/* Engine-internal helpers shared by the crypto sources. */
#ifndef VEIL_INTERNAL_H
#define VEIL_INTERNAL_H

#include <stdint.h>

/* Signed gadget decomposition of x with base 2^base_log and `levels` levels:
 * digits[j] (j = 0 most significant) with sum_j digits[j] * 2^(64 - B(j+1))
 * = x rounded to the nearest multiple of 2^(64 - B*levels), mod 2^64;
 * digits in [-2^(B-1), 2^(B-1)). */
static inline void veil_decompose(uint64_t x, uint32_t base_log, uint32_t levels, int64_t *digits) {
    const uint32_t bits = base_log * levels;
    uint64_t r = bits >= 64 ? x : (x >> (63 - bits)); /* keep bits+1 bits for rounding */
    if (bits < 64) r = (r + 1) >> 1;
    const uint64_t mask = ((uint64_t)1 << base_log) - 1;
    const int64_t half = (int64_t)1 << (base_log - 1);
    for (int j = (int)levels - 1; j >= 0; j--) {
        int64_t d = (int64_t)(r & mask);
        r >>= base_log;
        if (d >= half) {
            d -= (int64_t)1 << base_log;
            r += 1;
        }
        digits[j] = d;
    }
}

/* out = X^e * in mod X^N + 1, e in [0, 2N). */
void veil_poly_mul_monomial(uint64_t *out, const uint64_t *in, uint32_t n, uint32_t e);

#endif
