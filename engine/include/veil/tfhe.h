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
 *   Multi-bit bootstrapping key (a set with grouping g >= 2, veil/params.h):
 *     for group q = 0..n/g-1 and subset index t = 0..2^g-1, GGSW number
 *     q 2^g + t encrypts the indicator prod_b [s_{qg+b} = bit b of t]
 *     (b < g): exactly one of a group's 2^g is 1. (n/g) 2^g GGSWs, same
 *     GGSW layout, standard and Fourier domain alike.
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

/* Key sets (issue 11): a program's PBS are grouped into partitions
 * (veil/program.h), each with its own parameter set. The secret key holds
 *   - ONE master binary key S of dimension D = k_0 * N_0 (partition 0's set
 *     has the widest big key k*N of the program, by the program contract);
 *   - for each partition X, the GLWE key S_X = the PREFIX S[0 : k_X * N_X],
 *     read as k_X polynomials of N_X coefficients (nested keys);
 *   - for each partition X, an independent small LWE key s_X (n_X bits).
 * A PBS of partition X keyswitches a ciphertext under S (D + 1 words) to s_X,
 * blind-rotates with BSK_X (GGSWs of s_X under S_X) and sample-extracts under
 * S_X; the result, zero-extended from k_X * N_X to D mask words, is a
 * ciphertext under S. So every ciphertext between PBS has D + 1 words
 * whatever partition produced it, linear operations mix them unchanged, and
 * each partition needs exactly one KSK (S -> s_X, D rows) and one BSK
 * (s_X -> S_X): no key-to-key conversion keys.
 *
 * This is the shared-key construction of Bergerat, Chillotti, Ligier, Orfila,
 * Roux-Langlois and Tap, "New Secret Keys for Enhanced Performance in (T)FHE"
 * (Zama and CNRS GREYC, 2024), implemented in TFHE-rs's experimental core_crypto
 * (tfhe/src/core_crypto/experimental/algorithms/
 * shared_glwe_secret_key_generation.rs: the smaller GLWE key is a copy of the
 * first coefficients of the larger one; shared_lwe_secret_key_generation.rs
 * likewise for LWE keys; read at zama-ai/tfhe-rs@2702809e). veil shares only
 * the GLWE (big) keys; the small keys are independent per partition.
 * Security: the prefix of a uniform binary key is a uniform binary key of its
 * own dimension, so the GLWE samples of partition X (BSK_X) form a GLWE
 * instance with the secret distribution and noise of X's parameter set,
 * whose lattice-estimator level is the set's `security_bits`; the KSK of X is
 * an LWE instance under s_X with X's LWE noise. Samples under different
 * prefixes of S are LWE samples under S whose masks vanish past the prefix:
 * each family keeps the security of its own set (the estimate at dimension
 * k_X*N_X with its own noise), the argument of the paper above for shared
 * keys. A program's sets all come from one table at one security level.
 *
 * The noise cost of sharing: the KSK of X has D rows (not k_X * N_X), since
 * its input may mix outputs of every partition; the keyswitch noise of X is
 * that of D rows with X's KS parameters (veil/noise.h models it with the
 * set's own k*N; the compiler's partition search accounts for D).
 *
 * The struct is opaque (engine/src/internal.h): bits are kept in guarded
 * memory (sodium_malloc), wiped on free, never printed. Generated from one
 * seed (the OS's, or `seed` in tests) with one domain-separated ChaCha20
 * stream per key part (master key, small key of each partition). */
typedef struct veil_secret_key veil_secret_key;

#define VEIL_MAX_PARTITIONS 16u

/* One partition with `params`: the classic single-set key (S of k*N bits, one
 * small key). */
veil_status veil_secret_key_new(const veil_params *params, const uint8_t *seed,
                                veil_secret_key **out);
/* A key set for parts[0..n_parts): the master key has parts[0]'s k*N bits;
 * every other partition's k*N must not exceed it (VEIL_ERR_PARAMS naming
 * the partition otherwise). 1 <= n_parts <= VEIL_MAX_PARTITIONS. */
veil_status veil_secret_key_new_set(const veil_params *const *parts, uint32_t n_parts,
                                    const uint8_t *seed, veil_secret_key **out);
void veil_secret_key_free(veil_secret_key *sk);
/* Partition 0's parameter set: the set fresh encryptions and ciphertext
 * files are made for. */
const veil_params *veil_secret_key_params(const veil_secret_key *sk);
uint32_t veil_secret_key_n_partitions(const veil_secret_key *sk);
/* NULL when i >= n_partitions. */
const veil_params *veil_secret_key_partition(const veil_secret_key *sk, uint32_t i);
/* Testing hook (tests/test_secret_wipe.c): the address just past the master
 * key's guarded allocation, i.e. its trailing guard page (writing it must
 * fault). Points at no key bit. */
volatile uint64_t *veil_secret_key_guard_for_test(veil_secret_key *sk);

/* One partition's evaluation keys. The KSK has ksk_rows rows (at most the
 * master dimension D), each an LWE under s_X of dimension n_X: it keyswitches
 * values whose masks are 0 past the master key's first ksk_rows
 * coefficients (the widest value the partition's PBS read,
 * veil_partition.ksk_rows); the BSK is n_X GGSWs under S_X. Ciphertexts
 * read and PBS outputs have in_dim + 1 words (zero-extended). */
typedef struct veil_pbs_key {
    const veil_params *params;
    uint32_t in_dim;   /* D */
    uint32_t ksk_rows; /* <= in_dim */
    /* the mask stream of this partition: derived from the set's mask seed
     * (veil_eval_key_partition_seed), never stored on its own */
    uint8_t mask_seed[VEIL_SEED_BYTES];
    uint64_t *bsk;       /* standard domain, layout above; NULL once a key
                          * is prepared for the cpu only (VEIL_KEY_FOURIER) */
    double *bsk_fourier; /* n*(k+1)*l*(k+1) polys of N/2 complex, veil/fft.h's split,
                          * permuted spectrum, each GGSW in veil_fft_ggsw_put's
                          * layout (the CPU's; the CUDA kernels take
                          * interleaved natural order: veil_fft_ggsw_get,
                          * veil_fft_to_natural);
                          * NULL for a multi-bit set, and for a key
                          * prepared as VEIL_KEY_STANDARD (veil_eval_key_prepare) */
    uint32_t *ksk32;     /* ksk_rows * l_ks * (n + 1) words, each rounded to its
                          * top 32 bits (veil/ks32.h): what the keyswitch reads
                          * and files store. Keygen computes every entry from
                          * its 64-bit masks and keeps only the rounded words;
                          * no 64-bit key is ever held. */
    /* A WoP partition's (veil_wop_params_of(params) not NULL) packing
     * keyswitching keys, standard domain, whatever the prepared domains
     * (veil/wop.h): for c = 0..k, i = 0..kN (i = kN: the body), level
     * j < pp_level, the GLWE under S_X (k+1) N words of P_c s'_i g_j, P_c =
     * -S_c (c < k) or 1, s'_i = S_i or -1 for the body, g_j =
     * 2^(64 - B_pp (j+1)), at ((c (kN + 1) + i) pp_level + j) (k+1) N.
     * Their masks follow the KSK's in the partition's mask stream. NULL
     * for every other partition. */
    uint64_t *pfpks;
} veil_pbs_key;

/* Evaluation keys: all a server needs, one veil_pbs_key per partition. The
 * masks of every key ciphertext come from the stored `mask_seed` (one
 * domain-separated stream per partition), so a seeded key is (bodies + seed)
 * on disk. */
typedef struct veil_eval_key {
    const veil_params *params; /* partition 0's (= parts[0].params) */
    uint32_t n_parts;
    veil_pbs_key *parts;
    uint8_t mask_seed[VEIL_SEED_BYTES];
    /* veil_secret_key_fingerprint() of the key it was made from (keygen sets
     * it; files store it), so ciphertexts and keys can be matched. */
    uint8_t key_fp[VEIL_KEY_FP_BYTES];
} veil_eval_key;

/* The bootstrapping keys a prepared evaluation key holds. The cpu backend
 * reads each classic partition's BSK in the Fourier domain; saving a key and
 * the CUDA upload (which transforms it on the device) read the standard
 * domain. Both domains take the same memory (N words or N/2 complex doubles
 * a polynomial), so a key prepared for one use takes half the BSK memory of
 * one kept for both. A multi-bit partition holds only its standard-domain
 * BSK whatever the choice: its PBS sums each group's GGSWs there. */
typedef enum veil_key_domains {
    VEIL_KEY_BOTH = 0, /* either backend, and saving */
    VEIL_KEY_FOURIER,  /* the cpu backend only: the standard BSK is freed */
    VEIL_KEY_STANDARD, /* saving and the CUDA upload: no Fourier BSK (no
                        * transform at prepare, or the one there freed) */
} veil_key_domains;

/* Keys for every partition of sk, partition i's KSK of ksk_rows[i] rows
 * (1..D; ksk_rows NULL: D each), prepared for keep
 * (veil_eval_key_prepare). mask_seed / noise_seed NULL: from the OS.
 * Only tests pass noise_seed. */
veil_status veil_eval_key_new_rows(const veil_secret_key *sk, const uint32_t *ksk_rows,
                                   veil_key_domains keep, const uint8_t *mask_seed,
                                   const uint8_t *noise_seed, veil_eval_key **out);
/* veil_eval_key_new_rows with every KSK of D rows, both domains. */
veil_status veil_eval_key_new(const veil_secret_key *sk, const uint8_t *mask_seed,
                              const uint8_t *noise_seed, veil_eval_key **out);
void veil_eval_key_free(veil_eval_key *ek);
/* Partition i's key (i < n_parts, asserted). */
static inline const veil_pbs_key *veil_eval_key_part(const veil_eval_key *ek, uint32_t i) {
    return &ek->parts[i];
}
/* Partition i's mask seed: BLAKE2b-256 keyed with the set's seed over a
 * domain string and i. */
void veil_eval_key_partition_seed(const uint8_t set_seed[VEIL_SEED_BYTES], uint32_t i,
                                  uint8_t out[VEIL_SEED_BYTES]);
/* Fills every mask of every partition's BSK and KSK from ek->mask_seed, in
 * the one fixed order keygen uses (so a seeded key stores only bodies and the
 * seed): per partition, one ChaCha20 stream seeded with its partition seed;
 * first the BSK (for i < n, for row r < (k+1)*l: k*N words), then the KSK
 * (for i < ksk_rows, for j < l_ks: n words, each rounded into ksk32). Keygen
 * walks the same stream (one function, keys.c's partition_masks).
 * VEIL_ERR_ARG for a key already in the Fourier domain. */
veil_status veil_eval_key_regenerate_masks(veil_eval_key *ek);
/* Allocates a set for parts[0..n_parts) (bsk, 64-byte aligned, and ksk32
 * zeroed, bsk_fourier NULL); in_dim = parts[0]'s k*N, partition i's KSK of ksk_rows[i] rows
 * (1..in_dim; ksk_rows NULL: in_dim each). Same checks as
 * veil_secret_key_new_set. */
veil_status veil_eval_key_alloc(const veil_params *const *parts, uint32_t n_parts,
                                const uint32_t *ksk_rows, veil_eval_key **out);
/* Holds the bootstrapping keys keep names, partition by partition: computes
 * bsk_fourier from bsk where keep needs it and it is missing, frees bsk for
 * VEIL_KEY_FOURIER and bsk_fourier for VEIL_KEY_STANDARD. For
 * VEIL_KEY_FOURIER the transform runs GGSW by GGSW in the standard key's own
 * memory, so no BSK is ever held twice. Keygen prepares each partition as
 * it is made; a load prepares the whole key at the end. May be called again
 * with another keep: VEIL_ERR_ARG, naming the partition, when keep needs
 * the standard domain and it was freed. A multi-bit partition keeps only
 * its standard-domain bsk (bsk_fourier NULL), whatever keep says. */
veil_status veil_eval_key_prepare(veil_eval_key *ek, veil_key_domains keep);
/* VEIL_ERR_ARG unless every partition holds the bootstrapping keys `need`
 * reads (VEIL_KEY_FOURIER: the cpu's; VEIL_KEY_STANDARD: saving and the
 * CUDA upload; a multi-bit partition always its standard one); the message
 * starts with who, names the partition and what it lacks. The one rule the
 * backends and saving check a key against. */
veil_status veil_eval_key_check_domains(const veil_eval_key *ek, veil_key_domains need,
                                        const char *who);
/* GGSWs in a bootstrapping key: n, or (n/g) 2^g for a multi-bit set. */
size_t veil_eval_key_bsk_ggsws(const veil_params *p);
size_t veil_eval_key_bsk_words(const veil_params *p);
/* KSK words of a partition with set p keyswitching rows rows of the
 * master key. */
size_t veil_eval_key_ksk_words(const veil_params *p, uint32_t rows);
/* Words of a WoP partition's packing keyswitching keys (0 for any other). */
size_t veil_eval_key_pfpks_words(const veil_params *p);
/* Bytes a partition key prepared for one backend takes in memory
 * (VEIL_KEY_FOURIER or VEIL_KEY_STANDARD): the BSK in one domain (N words or
 * N/2 complex doubles a polynomial: the same bytes) and the KSK of `rows`
 * rows in 32-bit words (ksk32), and a WoP partition's packing keys (standard
 * domain, 8 bytes a word); a key kept in both domains (VEIL_KEY_BOTH)
 * takes the BSK's bytes once more. The
 * compiler's key budget and `veil compile`'s key report both use it;
 * tests/test_key_memory.c measures it against keygen's allocations. */
size_t veil_eval_key_prepared_bytes(const veil_params *p, uint32_t rows);
/* VEIL_ERR_PARAMS unless ek's partition list is exactly parts[0..n) (same
 * sets, same order); the message names both lists. */
veil_status veil_eval_key_check_partitions(const veil_eval_key *ek, const veil_params *const *parts,
                                           uint32_t n);
/* Writes "id0, id1, ..." of ek's partitions into buf (for messages). */
void veil_eval_key_describe(const veil_eval_key *ek, char *buf, size_t cap);

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

/* Encryption and phase under partition `part`'s small key s_X (n_X + 1
 * words), with its LWE noise: what the keyswitch of that partition produces. */
void veil_encrypt_small(veil_encryptor *enc, const veil_secret_key *sk, uint32_t part,
                        uint64_t plaintext, uint64_t *ct);
uint64_t veil_phase_small(const veil_secret_key *sk, uint32_t part, const uint64_t *ct);

/* Encrypts under the master key S (D = k_0 N_0) with partition 0's GLWE
 * noise: the form every value has between layers. */
void veil_encrypt_big(veil_encryptor *enc, const veil_secret_key *sk, uint64_t plaintext,
                      uint64_t *ct);
/* Encrypts under the first `width` coefficients of the master key (partition
 * X's GLWE key when width = k_X N_X, a prefix of S) with `noise` (X's GLWE
 * noise): D + 1 words like veil_encrypt_big's, the mask words from width on
 * 0, the body at ct[D]; `width` mask words drawn from the mask stream. A
 * keyswitch of it adds the noise of `width` rows, not D (its other digits are
 * 0). */
void veil_encrypt_big_prefix(veil_encryptor *enc, const veil_secret_key *sk, uint32_t width,
                             const veil_noise *noise, uint64_t plaintext, uint64_t *ct);
uint64_t veil_phase_big(const veil_secret_key *sk, const uint64_t *ct);

/* Partition 0: GLWE encryption of a message polynomial (N torus words; NULL: zero) under
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
/* 1 + the index of ct's last mask word that is not 0 (0 for a zero mask;
 * ct: dim + 1 words). */
uint32_t veil_lwe_mask_end(const uint64_t *ct, uint32_t dim);
/* The rows a keyswitch of ct (pk->in_dim + 1 words) with pk reads: up to
 * its mask's end, at most pk->ksk_rows. Mask words past ksk_rows are not
 * read: a program's values there are 0 (the compiler sizes each KSK by the
 * widest value its partition reads), and any other ciphertext is outside
 * what the key was made for. */
uint32_t veil_keyswitch_rows(const veil_pbs_key *pk, const uint64_t *ct);
/* Master key (pk->in_dim) -> the partition's small key (n), on the top 32
 * bits of every word (veil/ks32.h: the key's ksk32, each output word's low
 * half 0), reading veil_keyswitch_rows of the key. */
void veil_keyswitch(const veil_pbs_key *pk, const uint64_t *in_big, uint64_t *out_small);
/* count keyswitches, ciphertexts contiguous in and out, in lockstep groups
 * of VEIL_KS_LANES: each key row is read once a group, for all its
 * ciphertexts, and only up to the group's widest veil_keyswitch_rows: a
 * value under a prefix of the master key reads only that prefix's rows. */
void veil_keyswitch_many(const veil_pbs_key *pk, const uint64_t *in_big, size_t count,
                         uint64_t *out_small);
/* One share of a keyswitch, for splitting one over threads: out (n+1 words)
 * = the contribution of input coefficients [begin, end) alone (end <=
 * pk->ksk_rows), body word 0. veil_keyswitch's result is, mod 2^64, the sum
 * of the shares of any split of [0, veil_keyswitch_rows) plus
 * veil_ks32_body(in_big[in_dim]) (veil/ks32.h) on the body: the same bits
 * however split. */
void veil_keyswitch_part(const veil_pbs_key *pk, const uint64_t *in_big, uint32_t begin,
                         uint32_t end, uint64_t *out_small);
/* Words begin .. begin + count - 1 of pk's 32-bit keyswitching key
 * widened to 64 (veil_ks32_word), as if it had in_dim rows (the rows past
 * ksk_rows 0): the key a 64-bit product multiplies to give veil_keyswitch's
 * words bit for bit (the CUDA kernel's; the backend uploads only the
 * ksk_rows rows and tells the kernel, veil_cuda_params.ks_rows). */
void veil_keyswitch_key_wide(const veil_pbs_key *pk, size_t begin, size_t count, uint64_t *out);

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

/* table: 2^in_bits int64 outputs, output plaintext = table[i] * out_delta.
 * in_bits 0 (unsigned only): one entry, read as the negacyclic sign of the
 * top bit with a quarter torus of margin (veil/program.h "Rounding"). */
veil_status veil_lut_new(const veil_params *p, const int64_t *table, unsigned in_bits,
                         int in_signed, uint64_t out_delta, veil_lut **out);
void veil_lut_free(veil_lut *lut);

/* ---- several results from one blind rotation ----------------------------- */
/* Threshold reads: V [r >= t] for several thresholds t of one index r, read at
 * in_bits bits like a table's (r in [0, 2^in_bits)), from ONE blind rotation.
 * The test polynomial is the constant -V/2 (veil_lut_steps_new). After the
 * rotation by the switched phase phi, coefficient h of the accumulator is
 * -V/2 when (h + phi) mod 2N < N and +V/2 otherwise (X^N = -1), and phi lies
 * in r's box [r box - half, r box + half) (veil_lut_new: box = N / 2^in_bits,
 * half = box / 2). So extracting coefficient h_t = N - t box + half and
 * adding V/2 gives V [r >= t], with a table read's half box of margin on
 * both sides of the step (a correct read of r reads every threshold
 * correctly): veil_lut_step. t = 0 and t >= 2^in_bits give constants,
 * trivial ciphertexts. Outside [0, 2^in_bits) (r + 2^in_bits through the
 * padding bit) a result is V - V [r >= t], where a table gives -V [r >= t]
 * (veil_lut_step_wrapped): a lower digit cannot leave the range, the top
 * digit of an accumulator past its compiled range does, and the simulator
 * models it so. */
typedef struct veil_extract {
    uint32_t coef; /* the accumulator's coefficient, [0, N); VEIL_EXTRACT_TRIVIAL: none, the
                      result is the trivial ciphertext (0, ..., 0, add) */
    uint64_t add;  /* added to the body */
} veil_extract;
#define VEIL_EXTRACT_TRIVIAL UINT32_MAX
/* The test polynomial of threshold reads of value V (even: V/2 exact). */
veil_status veil_lut_steps_new(const veil_params *p, unsigned in_bits, uint64_t value,
                               veil_lut **out);
/* The extraction giving value [r >= t] from a veil_lut_steps_new table of that value. */
veil_extract veil_lut_step(const veil_lut *steps, uint64_t value, uint64_t t);
/* What threshold reads give for an index through the padding bit, as a
 * table: the table T of [r >= t] (R = 2^in_bits entries, 0 below t, V from
 * t), read at r + R (or r - R) for r in [0, R): V - V [r >= t] for
 * 0 < t < R (the extracted coefficient's sign flips, above), the constant of
 * a trivial result (t = 0: V; t >= R: 0) otherwise; T[0] + T[R - 1] - T[r]
 * is both. A table's PBS gives -T[r] there instead. */
static inline int64_t veil_lut_step_wrapped(const int64_t *T, size_t R, size_t r) {
    return (int64_t)((uint64_t)T[0] + (uint64_t)T[R - 1] - (uint64_t)T[r]);
}

/* ---- bootstrapping -------------------------------------------------------- */
/* Per-thread scratch: FFT plans and buffers. Not thread-safe; make one per
 * thread. Plans use FFTW_ESTIMATE so runs are repeatable bit for bit. */
typedef struct veil_pbs_ctx veil_pbs_ctx;

veil_status veil_pbs_ctx_new(const veil_params *p, veil_pbs_ctx **out);
void veil_pbs_ctx_free(veil_pbs_ctx *ctx);

/* Modulus switch of one mask coefficient to 2N (standard rounding). */
static inline uint32_t veil_ms_coef(uint64_t x, uint32_t log2_2n) {
    return (uint32_t)((x + ((uint64_t)1 << (63 - log2_2n))) >> (64 - log2_2n)) &
           (((uint32_t)1 << log2_2n) - 1);
}
/* The body's switch to 2N: rounded down, which is veil_ms_coef of the body
 * minus half a switched step (TFHE-rs's half_case in modulus_switch.rs).
 * The table's box of value v holds the switched phases v box - half ..
 * v box + half - 1 (lut.c), centred on v box - 1/2; with the masks rounded
 * and the body floored, the switched phase is floor(v box + e) for the
 * phase's error e before switching (in switched steps), so v is read
 * exactly when -half <= e < half: half a box of margin on both sides, the
 * noise model's 2^(62 - p). Rounding the body too left half - 1/2 on the
 * right and half + 1/2 on the left (up to 0.45 bit of p_fail at 2^-40). */
static inline uint32_t veil_ms_body(uint64_t x, uint32_t log2_2n) {
    return (uint32_t)(x >> (64 - log2_2n));
}
/* Modulus-switches a small LWE (n+1 words) to 2N per p->ms; out: n+1 values. */
void veil_modulus_switch(const veil_params *p, const uint64_t *in_small, uint32_t *out);

/* Multi-bit PBS. For a set with grouping g >= 2 (veil_params_multibit_at),
 * veil_eval_key_new makes the multi-bit key above and veil_pbs, veil_ks_pbs
 * and veil_ks_pbs_many run the multi-bit blind rotation (TFHE-rs's
 * lwe_multi_bit_programmable_bootstrapping.rs; Joye and Paillier, "Blind
 * rotation in fully homomorphic encryption with extended keys", 2022): for
 * each group q, with a_b the group's mask coefficients, the GGSWs are
 * summed, GGSW t times the monomial X^{d_t}, d_t = the sum of a_b over t's
 * bits (as a subset) switched to 2N, giving a GGSW of X^{<a_q, s_q>} (up to
 * one rounding), and one external product multiplies the accumulator by it:
 * n/g external products instead of n, for 2^g monomial products per group.
 * The sum is exact (standard domain), then transformed (pbs.c says why). The sample extraction and
 * the output are those of the classic PBS; same input, same key, same seed: the same bits. */

/* Blind rotation + sample extraction: small LWE (n) -> LWE under S_X
 * (k*N mask words), zero-extended to the master dimension: pk->in_dim + 1
 * words. ctx must be made for pk->params. */
void veil_pbs(veil_pbs_ctx *ctx, const veil_pbs_key *pk, const veil_lut *lut,
              const uint64_t *in_small, uint64_t *out_big);
/* The most threads one PBS call or a cpu backend runs. */
#define VEIL_THREADS_MAX 256u
/* This machine's online CPUs, 1..VEIL_THREADS_MAX: the threads a cpu
 * backend runs by default (veil_backend_cpu_threads) and the cores that
 * `--objective latency` models, so the two never differ. */
unsigned veil_online_cpus(void);
/* One PBS on `threads` threads (the caller's and threads - 1 it starts),
 * ctx[0 .. threads - 1] one context each, all made for pk->params: the same
 * bits as veil_pbs(ctx[0], ...). For a multi-bit set every thread forms the
 * groups' GGSW sums ahead (they depend on the key and the public mask
 * alone), the caller runs the external products in order; TFHE-rs's CPU
 * multi-bit PBS shares out its work the same way (its thread_count, in
 * lwe_multi_bit_programmable_bootstrapping.rs). A classic set, or threads
 * <= 1, runs veil_pbs on ctx[0]: one classic PBS split over two cores
 * measured 0.6 to 1.2 times one core (docs/results/HISTORY.md §0b). */
void veil_pbs_threads(veil_pbs_ctx *const *ctx, unsigned threads, const veil_pbs_key *pk,
                      const veil_lut *lut, const uint64_t *in_small, uint64_t *out_big);
/* Keyswitch (on the caller's thread) then veil_pbs_threads. */
void veil_ks_pbs_threads(veil_pbs_ctx *const *ctx, unsigned threads, const veil_pbs_key *pk,
                         const veil_lut *lut, const uint64_t *in_big, uint64_t *out_big);
/* The same for one ciphertext with veil_ks_pbs_many_extract's results (its
 * ciphertext `first` of a call of count 1): the same bits as that call. */
void veil_ks_pbs_threads_extract(veil_pbs_ctx *const *ctx, unsigned threads, const veil_pbs_key *pk,
                                 const veil_lut *lut, const uint64_t *in_big,
                                 const veil_extract *ext, uint32_t n_res, size_t period,
                                 size_t first, uint64_t *out_big, size_t out_stride);
/* Keyswitch then PBS: master key -> master key (in_dim + 1 words each). */
void veil_ks_pbs(veil_pbs_ctx *ctx, const veil_pbs_key *pk, const veil_lut *lut,
                 const uint64_t *in_big, uint64_t *out_big);
/* count KS-PBS, in_big and out_big holding count big LWEs each, one lookup
 * table per ciphertext: the same results as count calls of veil_ks_pbs, bit
 * for bit, but VEIL_KS_LANES ciphertexts at a time share each read of the
 * keyswitching key and VEIL_PBS_LANES each read of the bootstrapping key
 * (streamed from memory once per group, not once per ciphertext). Callers
 * that cut a batch into calls pass VEIL_KS_LANES at a time (or all). */
#define VEIL_PBS_LANES 8
#define VEIL_KS_LANES 32
void veil_ks_pbs_many(veil_pbs_ctx *ctx, const veil_pbs_key *pk, const veil_lut *const *luts,
                      const uint64_t *in_big, size_t count, uint64_t *out_big);
/* count KS-PBS of one test polynomial, each giving n_res results by
 * extraction (veil_extract): result s of ciphertext e (0 <= e < count) is
 * extraction ext[s * period + (first + e) % period] of e's accumulator,
 * written at out_big + (s * out_stride + e) * (in_dim + 1). The blind
 * rotations are veil_ks_pbs_many's, in the same lockstep groups; with n_res
 * 1 and the extraction {0, 0} the results are its bits. */
void veil_ks_pbs_many_extract(veil_pbs_ctx *ctx, const veil_pbs_key *pk, const veil_lut *lut,
                              const uint64_t *in_big, size_t count, const veil_extract *ext,
                              uint32_t n_res, size_t period, size_t first, uint64_t *out_big,
                              size_t out_stride);

#ifdef __cplusplus
}
#endif
#endif
