/* veil/tfhe.h — the TFHE core: keys, LWE ciphertexts, leveled operations,
 * keyswitch, programmable bootstrapping (PBS).
 *
 * Arithmetic is on the 64-bit discretized torus: uint64_t, mod 2^64.
 *
 * Memory layouts (fixed; the CUDA kernels and the serializer rely on them):
 *   LWE ciphertext of dimension d: d mask words then the body: d + 1 words.
 *     Phase = body - <mask, key>.
 *   GLWE ciphertext: k mask polynomials then the body, each N words:
 *     (k + 1) * N words. Polynomials are mod X^N + 1.
 *   GLWE secret key S: k binary polynomials (k * N words, 0 or 1). Its flat
 *     coefficients are the "big" LWE key of dimension kN that sample
 *     extraction produces.
 *   Gadget decomposition with base 2^B and l levels: g_j = 2^(64 - B*(j+1)),
 *     j = 0..l-1; signed digits in [-2^(B-1), 2^(B-1)], value first rounded to
 *     the nearest multiple of 2^(64 - B*l).
 *   GGSW ciphertext of m: (k + 1) * l GLWE rows, row index r = c * l + j for
 *     c = 0..k (c < k: m*g_j added to mask polynomial c; c = k: to the body).
 *   Bootstrapping key (standard domain): n GGSWs, GGSW i encrypts s_i.
 *     n * (k+1) * l * (k+1) * N words.
 *   Bootstrapping key (Fourier domain): the same order, each polynomial as N/2
 *     complex doubles (see veil/fft.h for the transform).
 *   Keyswitching key: for each big-key coefficient i = 0..kN-1 and level
 *     j = 0..l_ks-1, an LWE (dimension n) encryption of S_i * g_j under the
 *     small key: kN * l_ks * (n + 1) words.
 *
 * Key switching then bootstrapping (TFHE-rs's KS-PBS order): between layers a
 * ciphertext is under the big key (dimension kN); a lookup keyswitches to n,
 * modulus-switches to 2N, blind-rotates a test polynomial and sample-extracts
 * back to the big key. */
#ifndef VEIL_TFHE_H
#define VEIL_TFHE_H

#include <stddef.h>
#include <stdint.h>

#include "veil/params.h"
#include "veil/rng.h"
#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- keys --------------------------------------------------------------- */

#define VEIL_KEY_FP_BYTES 16

/* Small LWE key s (n bits) and GLWE key S (kN bits). Wiped on free; never
 * printed. Generated from a secret stream seeded by the OS (or `seed`, tests). */
typedef struct veil_secret_key {
    const veil_params *params;
    uint64_t *lwe;  /* n words, 0/1 */
    uint64_t *glwe; /* k*N words, 0/1 */
} veil_secret_key;

veil_status veil_secret_key_new(const veil_params *params, const uint8_t *seed,
                                veil_secret_key **out);
void veil_secret_key_free(veil_secret_key *sk);
/* The parameter set of the key. Code outside the engine reads this, never the
 * fields above: the struct is to become opaque (host/exec.c, the fuzz corpus
 * maker and the crypto tests still read it). */
const veil_params *veil_secret_key_params(const veil_secret_key *sk);

/* Evaluation keys: all a server needs. The masks of every key ciphertext come
 * from the stored `mask_seed`, so a seeded key is (bodies + seed) on disk. */
typedef struct veil_eval_key {
    const veil_params *params;
    uint8_t mask_seed[VEIL_SEED_BYTES];
    uint64_t *bsk;       /* standard domain, layout above */
    double *bsk_fourier; /* n*(k+1)*l*(k+1) polys of N/2 complex (re,im interleaved) */
    uint64_t *ksk;       /* layout above */
    /* veil_secret_key_fingerprint() of the key it was made from (keygen sets
     * it; files store it), so ciphertexts and keys can be matched. */
    uint8_t key_fp[VEIL_KEY_FP_BYTES];
} veil_eval_key;

/* mask_seed / noise_seed NULL: from the OS. Only tests pass noise_seed. */
veil_status veil_eval_key_new(const veil_secret_key *sk, const uint8_t *mask_seed,
                              const uint8_t *noise_seed, veil_eval_key **out);
void veil_eval_key_free(veil_eval_key *ek);
/* Fills every mask of the BSK and KSK from ek->mask_seed, in the one fixed
 * order keygen uses (so a seeded key stores only bodies and the seed): one
 * ChaCha20 stream; first the BSK (for i < n, for row r < (k+1)*l: k*N words),
 * then the KSK (for i < kN, for j < l_ks: n words). */
veil_status veil_eval_key_regenerate_masks(veil_eval_key *ek);
/* Allocates bsk and ksk (zeroed) for p, with bsk_fourier NULL. */
veil_status veil_eval_key_alloc(const veil_params *p, veil_eval_key **out);
/* Recomputes bsk_fourier from bsk (after loading). */
veil_status veil_eval_key_prepare(veil_eval_key *ek);
size_t veil_eval_key_bsk_words(const veil_params *p);
size_t veil_eval_key_ksk_words(const veil_params *p);

/* ---- encryption ---------------------------------------------------------- */

/* Two independent ChaCha20 streams: masks (seed may be stored) and noise
 * (seed never stored). NULL seeds come from the OS. */
typedef struct veil_encryptor {
    veil_csprng *mask;
    veil_csprng *noise;
} veil_encryptor;

veil_status veil_encryptor_new(const uint8_t *mask_seed, const uint8_t *noise_seed,
                               veil_encryptor **out);
void veil_encryptor_free(veil_encryptor *enc);

/* LWE encryption of a torus plaintext under key (dim words, binary). */
void veil_lwe_encrypt(veil_encryptor *enc, const uint64_t *key, uint32_t dim,
                      const veil_noise *noise, uint64_t plaintext, uint64_t *ct);
/* Phase = body - <a, s>: plaintext + noise. */
uint64_t veil_lwe_phase(const uint64_t *key, uint32_t dim, const uint64_t *ct);

/* Encrypts under the big key (kN) with the GLWE noise: the form every value
 * has between layers. */
void veil_encrypt_big(veil_encryptor *enc, const veil_secret_key *sk, uint64_t plaintext,
                      uint64_t *ct);
uint64_t veil_phase_big(const veil_secret_key *sk, const uint64_t *ct);

/* GLWE encryption of a message polynomial (N torus words; NULL: zero) under
 * the GLWE key: (k + 1) * N words. Exact polynomial arithmetic. */
veil_status veil_glwe_encrypt(veil_encryptor *enc, const veil_secret_key *sk, const uint64_t *msg,
                              uint64_t *ct);
/* Phase polynomial B - sum_c A_c S_c (N words): message + noise. */
veil_status veil_glwe_phase(const veil_secret_key *sk, const uint64_t *ct, uint64_t *phase);
/* GGSW encryption of the integer m with gadget base 2^base_log and `level`
 * levels: (k + 1) * level GLWE rows (layout at the top of this file). Row
 * (k, j) has phase m * g_j + noise. */
veil_status veil_ggsw_encrypt(veil_encryptor *enc, const veil_secret_key *sk, int64_t m,
                              uint32_t base_log, uint32_t level, uint64_t *ct);

/* ---- encoding -------------------------------------------------------------
 * A value of `bits` bits is stored as m * delta with delta = 2^(63 - bits):
 * one padding bit above the message. Signed values are two's complement on the
 * torus; a PBS reading a signed value first adds 2^(bits-1) * delta (see
 * veil_lut). */
static inline uint64_t veil_delta(unsigned bits) {
    return (uint64_t)1 << (63 - bits);
}
static inline uint64_t veil_encode(int64_t m, unsigned bits) {
    return (uint64_t)m * veil_delta(bits);
}
/* Rounds a phase to the nearest multiple of delta and returns the message,
 * reduced to `bits` bits plus the padding bit; signed: sign-extended. */
int64_t veil_decode(uint64_t phase, unsigned bits, int is_signed);

/* ---- leveled operations (dimension d = mask length) ----------------------- */
void veil_lwe_add(uint64_t *out, const uint64_t *a, const uint64_t *b, uint32_t d);
void veil_lwe_sub(uint64_t *out, const uint64_t *a, const uint64_t *b, uint32_t d);
void veil_lwe_neg(uint64_t *out, const uint64_t *a, uint32_t d);
void veil_lwe_mul_scalar(uint64_t *out, const uint64_t *a, int64_t w, uint32_t d);
void veil_lwe_add_plain(uint64_t *ct, uint64_t plaintext, uint32_t d);
/* out = sum_i w[i] * cts[i] (cts: count ciphertexts of d+1 words, contiguous,
 * stride d+1). The building block of a dense layer. */
void veil_lwe_dot(uint64_t *out, const uint64_t *cts, const int64_t *w, size_t count, uint32_t d);

/* ---- keyswitch ------------------------------------------------------------ */
/* Big key (kN) -> small key (n). */
void veil_keyswitch(const veil_eval_key *ek, const uint64_t *in_big, uint64_t *out_small);
/* count keyswitches, ciphertexts contiguous in and out: each key row is
 * read once for all of them (count small: they share the cache). */
void veil_keyswitch_many(const veil_eval_key *ek, const uint64_t *in_big, size_t count,
                         uint64_t *out_small);
/* One share of a keyswitch, for splitting one over threads: out (n+1 words)
 * = the contribution of input coefficients [begin, end) alone, body word 0.
 * veil_keyswitch's result is, mod 2^64, the sum of the shares of any split
 * of [0, kN) plus in_big[kN] on the body: the same bits however split. */
void veil_keyswitch_part(const veil_eval_key *ek, const uint64_t *in_big, uint32_t begin,
                         uint32_t end, uint64_t *out_small);

/* ---- lookup tables -------------------------------------------------------- */
/* A table of 2^in_bits entries read from a value of in_bits bits (signed:
 * entries indexed by value + 2^(in_bits-1)), whose outputs are encoded with
 * out_delta. Holds the test polynomial (N words, the body of a trivial GLWE). */
typedef struct veil_lut {
    unsigned in_bits;
    int in_signed;
    uint64_t in_offset; /* added to the body before the modulus switch */
    uint64_t *poly;     /* N words */
    uint32_t poly_size;
} veil_lut;

/* table: 2^in_bits int64 outputs, output plaintext = table[i] * out_delta. */
veil_status veil_lut_new(const veil_params *p, const int64_t *table, unsigned in_bits,
                         int in_signed, uint64_t out_delta, veil_lut **out);
void veil_lut_free(veil_lut *lut);

/* ---- bootstrapping -------------------------------------------------------- */
/* Per-thread scratch: FFT plans and buffers. Not thread-safe; make one per
 * thread. Plans use FFTW_ESTIMATE so runs are repeatable bit for bit. */
typedef struct veil_pbs_ctx veil_pbs_ctx;

veil_status veil_pbs_ctx_new(const veil_params *p, veil_pbs_ctx **out);
void veil_pbs_ctx_free(veil_pbs_ctx *ctx);

/* Modulus switch of one coefficient to 2N (standard rounding). */
static inline uint32_t veil_ms_coef(uint64_t x, uint32_t log2_2n) {
    return (uint32_t)((x + ((uint64_t)1 << (63 - log2_2n))) >> (64 - log2_2n)) &
           (((uint32_t)1 << log2_2n) - 1);
}
/* Modulus-switches a small LWE (n+1 words) to 2N per p->ms; out: n+1 values. */
void veil_modulus_switch(const veil_params *p, const uint64_t *in_small, uint32_t *out);

/* Blind rotation + sample extraction: small LWE (n) -> big LWE (kN). */
void veil_pbs(veil_pbs_ctx *ctx, const veil_eval_key *ek, const veil_lut *lut,
              const uint64_t *in_small, uint64_t *out_big);
/* Keyswitch then PBS: big -> big. */
void veil_ks_pbs(veil_pbs_ctx *ctx, const veil_eval_key *ek, const veil_lut *lut,
                 const uint64_t *in_big, uint64_t *out_big);
/* count KS-PBS, in_big and out_big holding count big LWEs each, one lookup
 * table per ciphertext: the same results as count calls of veil_ks_pbs, bit
 * for bit, but VEIL_PBS_LANES ciphertexts at a time share each read of the
 * keyswitching and bootstrapping keys (streamed from memory once per group,
 * not once per ciphertext). */
#define VEIL_PBS_LANES 8
void veil_ks_pbs_many(veil_pbs_ctx *ctx, const veil_eval_key *ek, const veil_lut *const *luts,
                      const uint64_t *in_big, size_t count, uint64_t *out_big);

#ifdef __cplusplus
}
#endif
#endif
