/* gadget.h — the signed gadget decomposition, one definition for the CPU
 * engine and the CUDA kernels (compiled as __host__ __device__ by nvcc).
 *
 * x is rounded to the nearest multiple of 2^(64 - B*levels) (mod 2^64) and
 * written as levels signed digits in [-2^(B-1), 2^(B-1)], most significant
 * first: x ~ sum_j digit[j] 2^(64 - B(j+1)) (mod 2^64). The digits come out
 * least significant first (the carry runs upwards), so a caller that needs
 * no array takes them one at a time with veil_gadget_next.
 *
 * Digits are zero-mean. A low part of exactly B/2 is a tie (+B/2 and -B/2
 * both reconstruct); it is broken by the sign of what remains above it: -B/2
 * (and a carry) when the next digit's top bit is set, +B/2 otherwise. The
 * rounded value is first made a balanced signed integer in
 * [-2^(B*levels-1), 2^(B*levels-1)], its own tie broken by the rounding bit,
 * and shifted arithmetically, so the top digit's tie follows the sign. Then
 * decompose(-x) = -decompose(x) digit by digit, and over all inputs every
 * level's digits sum to exactly 0 (tests/test_gadget.c). This is the rule of
 * TFHE-rs's SignedDecomposer (tfhe/src/core_crypto/commons/math/
 * decomposition: init_decomposer_state balances the rounded state;
 * decompose_one_level carries when res > B/2 or res == B/2 and the shifted
 * state mod B >= B/2). Taking every digit >= B/2 as negative instead, as
 * veil did before, gives digits of mean -1/2, and the keyswitch then adds
 * -1/2 times the sum of its key's noises: a constant error for a given key
 * that the noise model, which takes the error as centred, does not have
 * (docs/results/pfail.md). Concrete's noise model charges every digit
 * E[digit^2] = (B^2+2)/12; with this rule only the least significant digit
 * has it, the others (which depend on the carry from below) less, so the
 * model is an upper bound (veil/noise.h veil_noise_gadget_moments). With
 * B*levels = 64 nothing is rounded and the top tie (x = 2^63 in that digit)
 * stays -B/2. */
#ifndef VEIL_GADGET_H
#define VEIL_GADGET_H

#include <stdint.h>

#ifdef __CUDACC__
#define VEIL_GADGET_FN static inline __host__ __device__
#else
#define VEIL_GADGET_FN static inline
#endif

/* The two steps, written once for a scalar uint64_t and for a vector of them
 * (GCC vector extensions: engine/src/fft/fft_template.h); lanes are unsigned
 * and hold signed values in two's complement. Arguments are evaluated more
 * than once; r must not be x.
 *
 * VEIL_GADGET_INIT: r = the top `bits` bits of x rounded to nearest (bit
 * 63 - bits decides, carry out of bit 63 lost), as a balanced signed value:
 * minus 2^bits when above 2^(bits-1), or equal to it with the rounding bit
 * set. Computed as x + 2^(63 - bits) shifted arithmetically (the rounded
 * value read as signed, in [-2^(bits-1), 2^(bits-1))), which differs from
 * that rule only where the top bits + 1 of x are exactly 2^bits (rounded
 * value 2^(bits-1), rounding bit clear): there 2^bits is added back, the
 * zero test of z = (x >> (63 - bits)) ^ 2^bits being bit 63 of
 * (z - 1) & ~z. Nine operations, one of them AVX-512's arithmetic shift,
 * where the rule's own bit trick took twelve (tests/test_gadget.c holds
 * the two to each other). */
#define VEIL_GADGET_INIT(r, x, bits)                                                               \
    do {                                                                                           \
        const unsigned veil_n_ = (bits);                                                           \
        if (veil_n_ >= 64) {                                                                       \
            (r) = (x);                                                                             \
        } else {                                                                                   \
            (r) = VEIL_GADGET_SAR((x) + ((uint64_t)1 << (63 - veil_n_)), 64 - veil_n_);            \
            (r) += ((((((x) >> (63 - veil_n_)) ^ ((uint64_t)1 << veil_n_)) - 1) &                  \
                     ~(((x) >> (63 - veil_n_)) ^ ((uint64_t)1 << veil_n_))) >>                     \
                    63)                                                                            \
                   << veil_n_;                                                                     \
        }                                                                                          \
    } while (0)

/* VEIL_GADGET_INIT_EVEN: VEIL_GADGET_INIT with ties rounded to even (the
 * kept top bits), and the balanced value minus 2^bits from 2^(bits-1) up.
 * The multi-bit external product decomposes an accumulator that its own
 * inverse FFT wrote: at the magnitudes of its sums (2^80 and more) a double
 * holds multiples of 2^(e-52), so the accumulator's low bits lie on that
 * grid and a tie (low bits exactly one half) has probability 2^(grid -
 * (64 - bits)); rounding every tie up biases the rounding error of every
 * mask coefficient by minus half that probability, and the phase of the
 * rounding error, r_body - <r_mask, S>, by that bias times a sum of about
 * kN/2 key bits: a term the noise model does not have, which measured 1.2x
 * (l = 1) and 2.9x (l = 2) its decomposition term (docs/PARAMS.md section
 * 9). Ties to even have no bias. */
#define VEIL_GADGET_INIT_EVEN(r, x, bits)                                                          \
    do {                                                                                           \
        const unsigned veil_n_ = (bits);                                                           \
        if (veil_n_ >= 64) {                                                                       \
            (r) = (x);                                                                             \
        } else {                                                                                   \
            const unsigned veil_s_ = 64 - veil_n_;                                                 \
            (r) = ((x) + ((((uint64_t)1 << (veil_s_ - 1)) - 1) + (((x) >> veil_s_) & 1))) >>       \
                  veil_s_;                                                                         \
            (r) -= (((r) >> (veil_n_ - 1)) & 1) << veil_n_;                                        \
        }                                                                                          \
    } while (0)

/* VEIL_GADGET_SAR: r >> b, arithmetic (b in 1 .. 63), on unsigned lanes. A
 * vector caller may define it before including this header with a signed
 * shift of the same value, one instruction where the target has it
 * (engine/src/fft/fft_template.h: AVX-512's vpsraq); this form is what
 * compilers do not turn into one. */
#ifndef VEIL_GADGET_SAR
#define VEIL_GADGET_SAR(r, b) (((r) >> (b)) | (((uint64_t)0 - ((r) >> 63)) << (64 - (b))))
#endif

/* VEIL_GADGET_STEP: d = the low base_log bits of r as a balanced digit, r =
 * the rest (arithmetic shift), plus one when the digit is negative: above
 * B/2, or B/2 with the rest's bit base_log - 1 set (the tie rule above; the
 * bit trick keeps bit base_log - 1 of (d - 1 | rest) & d). */
#define VEIL_GADGET_STEP(r, d, base_log)                                                           \
    do {                                                                                           \
        const unsigned veil_b_ = (base_log);                                                       \
        (d) = (r) & (((uint64_t)1 << veil_b_) - 1);                                                \
        (r) = VEIL_GADGET_SAR((r), veil_b_);                                                       \
        (d) -= (((((d)-1) | (r)) & (d)) >> (veil_b_ - 1)) << veil_b_;                              \
        (r) += (d) >> 63;                                                                          \
    } while (0)

/* The start state of the digit steps for x: veil_gadget_round(x) shifted
 * left by 64 - B*levels is the closest representable value (mod 2^64). */
VEIL_GADGET_FN uint64_t veil_gadget_round(uint64_t x, uint32_t base_log, uint32_t levels) {
    uint64_t r;
    VEIL_GADGET_INIT(r, x, base_log * levels);
    return r;
}

/* The next digit, least significant first: takes base_log bits off *r and
 * carries into the rest when the digit is negative. */
VEIL_GADGET_FN int64_t veil_gadget_next(uint64_t *r, uint32_t base_log) {
    uint64_t d;
    VEIL_GADGET_STEP(*r, d, base_log);
    return (int64_t)d;
}

/* The start state with ties to even (VEIL_GADGET_INIT_EVEN): the multi-bit
 * external product's rule. */
VEIL_GADGET_FN uint64_t veil_gadget_round_even(uint64_t x, uint32_t base_log, uint32_t levels) {
    uint64_t r;
    VEIL_GADGET_INIT_EVEN(r, x, base_log * levels);
    return r;
}

/* digits[0..levels), most significant first. */
VEIL_GADGET_FN void veil_gadget_decompose(uint64_t x, uint32_t base_log, uint32_t levels,
                                          int64_t *digits) {
    uint64_t r = veil_gadget_round(x, base_log, levels);
    for (int j = (int)levels - 1; j >= 0; j--)
        digits[j] = veil_gadget_next(&r, base_log);
}

/* digits[0..levels) of veil_gadget_round_even's value, most significant
 * first: the multi-bit external product's digits. */
VEIL_GADGET_FN void veil_gadget_decompose_even(uint64_t x, uint32_t base_log, uint32_t levels,
                                               int64_t *digits) {
    uint64_t r = veil_gadget_round_even(x, base_log, levels);
    for (int j = (int)levels - 1; j >= 0; j--)
        digits[j] = veil_gadget_next(&r, base_log);
}

#endif
