/* veil/noise.h — the noise model behind every parameter set's p_fail.
 *
 * These are Concrete's formulas (zama-ai/concrete, backends/concrete-cpu/
 * noise-model: keyswitch, modulus switching, blind rotation with its FFT term;
 * concrete-optimizer noise_estimator/error.rs for the failure probability),
 * the same ones scripts/params/derive.py uses to derive the VEIL_PARAMS_NN
 * sets. The compiler uses them to bound the noise of a program; the tests use
 * them to check measured noise. docs/PARAMS.md has the derivation.
 *
 * Units: every variance is a modular variance, in units of 2^-64 squared
 * (the variance of the signed integer representative of a 64-bit torus
 * element). A Gaussian of torus std dev s has variance (s * 2^64)^2.
 *
 * A KS-PBS whose input ciphertext (under the big key, dimension k*N) has noise
 * variance v fails when the phase error after keyswitch and modulus switch,
 * of variance v + ks + ms, exceeds half a message step: with p bits of
 * message and one padding bit, Delta = 2^(63-p) and the limit is 2^(62-p).
 * The input of a lookup that reads a dot product sum_i w_i * x_i of PBS
 * outputs has v = (sum_i w_i^2) * veil_noise_pbs_output_variance(). */
#ifndef VEIL_NOISE_H
#define VEIL_NOISE_H

#include <stdint.h>

#include "veil/params.h"

/* 2^e for -1022 <= e <= 1023, exactly ldexp(1.0, e), built from its bits:
 * the noise passes of the compiler's search scale variances by powers of two
 * millions of times, and libm's ldexp was a sixth of a compile. */
static inline double veil_pow2(int e) {
    union {
        uint64_t u;
        double d;
    } v = {.u = (uint64_t)(e + 1023) << 52};
    return v.d;
}

#ifdef __cplusplus
extern "C" {
#endif

/* Keyswitch from the big key (k*N) to the small key (n) with the set's KSK
 * noise and decomposition: the variance it adds. */
double veil_noise_ks_variance(const veil_params *p);
/* The same from a key of dimension in_dim (a program with several parameter
 * sets keyswitches from its widest big key, veil/program.h "partitions"):
 * the variance grows linearly with the input dimension. */
double veil_noise_ks_variance_dim(const veil_params *p, uint32_t in_dim);

/* Modulus switch of an n-dimensional LWE to 2N: the variance it adds, for the
 * set's `ms` (STANDARD: Concrete's formula; CENTERED: TFHE-rs's
 * centered_binary_shifted_modulus_switch_additive_variance; a multi-bit set:
 * one rounding per group, engine/src/params.c). */
double veil_noise_ms_variance(const veil_params *p);

/* Variance of a PBS output (blind rotation, n external products including
 * Concrete's FFT term; sample extraction adds nothing). Independent of the
 * input noise when the PBS succeeds. */
double veil_noise_pbs_output_variance(const veil_params *p);

/* Multi-bit sets (p->grouping = g >= 2; veil_noise_pbs_output_variance calls
 * it for them): n/g external products by the sum of a group's 2^g GGSWs,
 * Concrete's multi-bit model (engine/src/params.c cites the file). */
double veil_noise_multibit_pbs_output_variance(const veil_params *p);
/* Its FFT term for one external product: Concrete's JIT_FFT_SCALING_WEIGHT
 * (fitted to Zama's FFT with each group's sum formed in the standard domain
 * and transformed, as veil forms it). */
double veil_noise_multibit_fft_variance(const veil_params *p);

/* Fresh encryption under the big key (the GLWE noise of the set). */
double veil_noise_fresh_variance(const veil_params *p);

/* log2 of the probability that a KS-PBS at `precision` bits (plus one padding
 * bit) decodes wrongly when its input has variance `input_variance`. */
double veil_noise_log2_p_fail(const veil_params *p, unsigned precision, double input_variance);
/* The same with the keyswitch from a key of dimension ks_in_dim. */
double veil_noise_log2_p_fail_dim(const veil_params *p, unsigned precision, double input_variance,
                                  uint32_t ks_in_dim);
/* The same in two steps, for callers that evaluate many reads: the margin
 * of a read, 2^(62 - precision) / sqrt(2 total_variance) (the smaller, the
 * likelier a failure: log2 p_fail falls as the margin grows), and log2 p_fail
 * of a margin (log2 erfc). _terms sums (input + ks) + ms in that order. */
double veil_noise_fail_margin(unsigned precision, double total_variance);
double veil_noise_fail_margin_terms(unsigned precision, double input_variance, double ks_variance,
                                    double ms_variance);
double veil_noise_log2_p_fail_margin(double margin);

/* One key set's actual values of the key-dependent quantities in the model.
 * The formulas above are averages over keys: binary keys with E[bit] = 1/2
 * and a KSK whose noises have the set's variance. For one key the error
 * before a PBS has a variance of its own (issue 15: 0.79x the average p_fail
 * was counted with one key): the keyswitch's rounding term is
 * (rounding variance) * (weight of the big key), its key term
 * (B^2 + 2)/12 * (sum of the KSK's noises squared), the modulus switch's
 * (1 + weight of the small key) * (rounding variance), and the blind
 * rotation's decomposition term (weight of the small key: CMuxes of a 1 bit)
 * * (1 + weight of the big key). Terms of order 1 (modular units) and the
 * BSK's and FFT's terms stay at their expectation. Classic sets only (the
 * multi-bit formulas depend on the key per group, not per weight). */
typedef struct veil_noise_key {
    double small_weight; /* Hamming weight of the small key s (expected n / 2) */
    double big_weight;   /* of the keyswitch's input key S[0 : k N] (expected k N / 2) */
    /* The keyswitch's key term: the variance of sum_ij d_ij e_ij over
     * uniform inputs for this KSK's noises e_ij (modular). The model's
     * average is k N l_ks var_ksk (B^2 + 2)/12 (digits uncorrelated, each
     * with E[d^2] = (B^2 + 2)/12); with the digits' actual moments
     * (veil_noise_gadget_moments) it is sum_i e_i' C e_i - 2 S_i c' e_i. */
    double ks_key_variance;
} veil_noise_key;

/* The exact second moments of veil's gadget digits (veil/gadget.h) over
 * uniform 64-bit inputs, by enumerating the B*levels + 1 bits they depend
 * on: dd[j * levels + k] = E[d_j d_k], rd[j] = E[r d_j] with r = x - sum_j
 * d_j 2^(64 - B(j+1)) the rounding error (signed, modular). Concrete's model
 * takes dd = (B^2 + 2)/12 on the diagonal, 0 elsewhere, rd = 0. Only the
 * least significant digit has that E[d^2]: the tie rule (TFHE-rs's,
 * decompose_one_level) makes every other level's digit depend on the carry
 * from below, with a smaller E[d^2] (B = 2^2, 4 levels: 1.25 to 1.31
 * instead of 1.5) and neighbours correlated, so the model's keyswitch term
 * is an upper bound (docs/results/pfail.md).
 * B * levels <= 24; returns 0, or -1 (too many inputs). */
int veil_noise_gadget_moments(uint32_t base_log, uint32_t levels, double *dd, double *rd);

/* The expected values for set p (the average key): with them, the _key
 * functions below equal the average ones. */
void veil_noise_key_expected(const veil_params *p, veil_noise_key *out);
double veil_noise_ks_variance_key(const veil_params *p, const veil_noise_key *key);
double veil_noise_ms_variance_key(const veil_params *p, const veil_noise_key *key);
double veil_noise_pbs_output_variance_key(const veil_params *p, const veil_noise_key *key);
/* log2 p_fail of a KS-PBS for this key (keyswitch from k N, input variance
 * given: for a PBS output, veil_noise_pbs_output_variance_key's). */
double veil_noise_log2_p_fail_key(const veil_params *p, unsigned precision, double input_variance,
                                  const veil_noise_key *key);

/* Concrete's FFT error term of one external product (k, N, base 2^B, l
 * levels): 2^-2.57722494 * 2^(2*(64-53)) * l * 2^(2B) * N^2 * (k+1). */
double veil_noise_fft_variance(uint32_t glwe_dim, uint32_t poly_size, uint32_t base_log,
                               uint32_t level);

/* Concrete's 128-bit security curve (SECURITY_WEIGHTS_ARRAY): the smallest
 * secure log2 of the torus std dev for an LWE of dimension `dim` (k*N for a
 * GLWE), floored at -62; +INFINITY below the curve's minimal dimension 450. */
double veil_noise_min_log2_std_128(uint32_t dim);

/* log2 of the torus std dev of a noise (sqrt of its variance / 2^64). */
double veil_noise_log2_std(const veil_noise *noise);

#ifdef __cplusplus
}
#endif
#endif
