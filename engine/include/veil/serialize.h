/* veil/serialize.h — binary files of secret keys, evaluation keys and
 * ciphertext batches, on disk and in memory.
 *
 * Every file is: a fixed 176-byte header, a payload, and a 32-byte checksum.
 * All integers are little-endian. The checksum is BLAKE2b-256 (libsodium's
 * crypto_generichash, no key) over the header and the payload; it catches
 * accidental corruption (truncated uploads, flipped bits), it is not a MAC:
 * anyone can recompute it, so it says nothing about who wrote the file.
 *
 * Header (offsets in bytes):
 *     0   8  magic           "VEILSK01" secret key, "VEILEK01" evaluation key,
 *                            "VEILCT01" ciphertext batch, "VEILCS01" seeded
 *                            ciphertext batch (fresh encryptions, see below)
 *     8   4  version         VEIL_SERIAL_KEY_VERSION (2) for secret keys,
 *                            VEIL_SERIAL_EVAL_KEY_VERSION (3) for evaluation
 *                            keys (version 2 ones, whose KSKs all have D
 *                            rows and no row table, still load, and are
 *                            written back as version 3),
 *                            VEIL_SERIAL_VERSION (1) for batches. Version 1
 *                            keys (one parameter set, before key sets) are
 *                            refused with a message saying to regenerate them.
 *    12   4  kind            VEIL_SERIAL_SECRET_KEY .. VEIL_SERIAL_CT_SEEDED,
 *                            must agree with the magic
 *    16  48  params id       veil_params.id, NUL-padded (at most 47 characters,
 *                            every byte after the first NUL is 0); must name a
 *                            set of veil_params_find_any() (a classic or a
 *                            multi-bit set). Keys: partition 0's set
 *                            (the encryption set, widest k*N).
 *    64  16  key fp          fingerprint of the secret key (see
 *                            veil_secret_key_fingerprint): the secret key's own,
 *                            the one an evaluation key was made from, or the
 *                            one a batch is encrypted under (all zero: not
 *                            recorded; matching then fails, never succeeds)
 *    80  32  model fp        batches: the fingerprint of the compiled program
 *                            the batch is an input/output of (opaque to this
 *                            module; all zero = none). Zero for keys.
 *   112  32  mask seed       evaluation keys and seeded batches: the seed of the
 *                            mask stream. Zero otherwise.
 *   144   8  len_a           secret key: sum of n_X (small key bits); eval key:
 *                            words of GLWE bodies, sum of G_X*(k_X+1)*l_X*N_X
 *                            (G_X GGSWs: n_X, or (n_X/g) 2^g for a multi-bit set)
 *                            plus, for a WoP partition (its id a WoP set's,
 *                            veil/params.h veil_wop_params),
 *                            (k_X+1)*(k_X N_X+1)*l_pp*N_X (its packing keys);
 *                            batch: count
 *   152   8  len_b           secret key: D = k_0*N_0 (master key bits); eval
 *                            key: words of KSK bodies, sum of R_X*l_ks_X
 *                            (R_X: partition X's KSK rows); batch:
 *                            words stored per ciphertext (dim+1 raw, 1 seeded)
 *   160   4  dim             keys: D; batch: the LWE dimension of its
 *                            ciphertexts (n or k*N of its set)
 *   164   4  partitions      keys: the number of partitions P, 1..16; raw
 *                            batches: 0; seeded batches: the mask width W,
 *                            0 (every mask word from the seed) or 1..dim-1
 *                            (the first W words of each mask from the seed,
 *                            the others 0: inputs encrypted under a prefix
 *                            of the master key, veil_encrypt_big_prefix)
 *   168   8  payload bytes   must equal what the fields above imply
 *   176      payload
 *   176+P 32 checksum
 * Every field is checked against the parameter sets before anything is
 * allocated, and the input length must equal 176 + P + 32 exactly, so a
 * hostile length can never make a loader allocate more than the input holds
 * (for keys, more than the parameter sets imply). Unused fields must be zero,
 * so every object has exactly one encoding and re-serializing a loaded object
 * gives the same bytes.
 *
 * Payloads:
 *   keys        open with the partition table: P params ids of 48 bytes each
 *               (NUL-padded like the header's; entry 0 must equal the
 *               header's id; every k_X*N_X <= D), read before the sizes are
 *               checked (at most 768 bytes).
 *   secret key  the table, then each partition's small key bits (n_X), then
 *               the master key bits (D), each packed 8 per byte, least
 *               significant bit first, the unused high bits of each part's
 *               last byte 0.
 *   eval key    the table, then the row table: P u32, R_X (1..D) the rows of
 *               partition X's KSK, the master key's first R_X coefficients
 *               (the widest value its PBS read, veil_partition.ksk_rows),
 *               read with the table before the sizes are checked; then per
 *               partition X, SEEDED: only the bodies.
 *               For each BSK GGSW i < G_X (multi-bit sets: GGSW q 2^g + t is
 *               group q's subset t, veil/tfhe.h), each row r < (k+1)*l_pbs: the body
 *               polynomial (N words); then for each KSK entry i < R_X, level
 *               j < l_ks: the body word, rounded to its top 32 bits
 *               (veil/ks32.h: the low 32 bits 0; a file with any of them
 *               set is refused); then, a WoP partition, for each packing
 *               key GLWE e in veil_pbs_key.pfpks's order: its body
 *               polynomial (N words). On load every mask is regenerated
 *               from the mask seed by veil_eval_key_regenerate_masks() (the
 *               order below), and the key is prepared for the caller's use
 *               with veil_eval_key_prepare().
 *   batch       count ciphertexts of dim+1 words each (mask then body).
 *   seeded      count body words; the masks are regenerated from the seed:
 *   batch       one ChaCha20 stream (veil_csprng), ciphertext 0's dim mask
 *               words (W when the header's mask width W is not 0, the
 *               rest of the mask 0), then ciphertext 1's, ... via
 *               veil_csprng_fill_u64 —
 *               what encrypting the batch in order with one veil_encryptor
 *               whose mask seed is that seed draws. For client uploads:
 *               (dim+1) times smaller.
 *
 * Mask order of evaluation keys (keygen and load share the one implementation,
 * veil_eval_key_regenerate_masks): per partition X, one veil_csprng seeded
 * with veil_eval_key_partition_seed(mask seed, X); first the BSK: for i < G_X,
 * for r < (k+1)*l_pbs: the k*N mask words of row r of GGSW i
 * (veil_csprng_fill_u64, k*N words at once); then the KSK: for i < R_X, for
 * j < l_ks: the n mask words of entry (i, j); then a WoP partition's packing
 * keys: for each GLWE e in veil_pbs_key.pfpks's order, its k*N mask words.
 *
 * Files are written to a temporary file in the same directory, flushed, and
 * renamed over the destination, so a reader never sees a half-written file.
 * Secret key files are created with mode 0600, others 0644.
 *
 * Errors: VEIL_ERR_FORMAT for malformed, truncated or corrupted input (the
 * message names the field), VEIL_ERR_PARAMS for an unknown parameter set or
 * objects that do not belong together, VEIL_ERR_IO for files. */
#ifndef VEIL_SERIALIZE_H
#define VEIL_SERIALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "veil/params.h"
#include "veil/status.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VEIL_SERIAL_VERSION 1u          /* ciphertext batches */
#define VEIL_SERIAL_KEY_VERSION 2u      /* secret keys (key sets) */
#define VEIL_SERIAL_EVAL_KEY_VERSION 3u /* evaluation keys (KSK rows per partition) */
#define VEIL_SERIAL_HEADER_BYTES 176u
#define VEIL_SERIAL_CHECKSUM_BYTES 32u
#define VEIL_SERIAL_PARAMS_ID_BYTES 48u
#define VEIL_MODEL_FP_BYTES 32u

typedef enum veil_serial_kind {
    VEIL_SERIAL_SECRET_KEY = 1,
    VEIL_SERIAL_EVAL_KEY = 2,
    VEIL_SERIAL_CT_BATCH = 3,
    VEIL_SERIAL_CT_SEEDED = 4,
} veil_serial_kind;

/* Frees a buffer returned by a veil_*_serialize function, wiping it first
 * (it may hold a secret key). NULL is accepted. */
void veil_serial_buffer_free(uint8_t *buf, size_t len);

/* Reads the kind and the parameter set of serialized bytes without checking
 * the payload (a server routing an upload, a CLI printing what a file is).
 * Checks magic, version, kind and params id only. */
veil_status veil_serial_peek(const uint8_t *buf, size_t len, veil_serial_kind *kind,
                             const veil_params **params);

/* ---- secret key ------------------------------------------------------------ */

/* fp = BLAKE2b-128 of a domain-separation string, the partition count, the
 * partition table and every packed key bit (small keys, then the master key). It names the key (to
 * match evaluation keys and ciphertexts with it) without revealing it. */
void veil_secret_key_fingerprint(const veil_secret_key *sk, uint8_t fp[VEIL_KEY_FP_BYTES]);

/* The buffer holds the secret key: free it with veil_serial_buffer_free. */
veil_status veil_secret_key_serialize(const veil_secret_key *sk, uint8_t **buf, size_t *len);
veil_status veil_secret_key_deserialize(const uint8_t *buf, size_t len, veil_secret_key **out);
veil_status veil_secret_key_save(const veil_secret_key *sk, const char *path);
veil_status veil_secret_key_load(const char *path, veil_secret_key **out);

/* ---- evaluation key --------------------------------------------------------- */

/* The mask order above is implemented once, by veil_eval_key_regenerate_masks()
 * (veil/tfhe.h, engine/src/keys.c): keygen calls it and then writes the
 * bodies, load calls it to expand a seeded key. The fingerprint of the secret
 * key travels in veil_eval_key.key_fp (keygen: veil_secret_key_fingerprint). */

/* Bytes of a serialized (seeded) evaluation key for the partitions
 * parts[0..n), partition i's KSK of ksk_rows[i] rows (NULL: D each), and of
 * the same key with every mask stored (what a raw format would take), for
 * reports; and one partition's share of the seeded file (its table entries,
 * BSK and KSK bodies) with a KSK of `rows` rows. */
size_t veil_eval_key_serialized_bytes(const veil_params *const *parts, const uint32_t *ksk_rows,
                                      uint32_t n_parts);
size_t veil_eval_key_raw_bytes(const veil_params *const *parts, const uint32_t *ksk_rows,
                               uint32_t n_parts);
size_t veil_eval_key_partition_serialized_bytes(const veil_params *p, uint32_t rows);

veil_status veil_eval_key_serialize(const veil_eval_key *ek, uint8_t **buf, size_t *len);
/* The loaded key is prepared (bsk_fourier computed), ready for PBS. */
/* Loaded keys are prepared for keep (veil_eval_key_prepare): the backend's
 * domain (veil_backend_key_domains), VEIL_KEY_STANDARD to check or store a
 * key (no Fourier transform), VEIL_KEY_BOTH for either. */
veil_status veil_eval_key_deserialize(const uint8_t *buf, size_t len, veil_key_domains keep,
                                      veil_eval_key **out);
veil_status veil_eval_key_save(const veil_eval_key *ek, const char *path);
veil_status veil_eval_key_load(const char *path, veil_key_domains keep, veil_eval_key **out);

/* VEIL_ERR_PARAMS unless ek was made from sk (same partitions, same fingerprint). */
veil_status veil_eval_key_check_secret_key(const veil_eval_key *ek, const veil_secret_key *sk);

/* ---- ciphertext batches ------------------------------------------------------ */

/* count LWE ciphertexts of dimension dim (dim + 1 words each, contiguous),
 * under the key with fingerprint key_fp, for the program model_fp (zero:
 * none). */
typedef struct veil_ct_batch {
    const veil_params *params;
    uint32_t dim;
    /* seeded form: the mask words per ciphertext drawn from the seed, the
     * rest 0 (0: all dim; serialize.h header field 164). Raw batches
     * store every word and ignore it. */
    uint32_t mask_width;
    uint64_t count;
    uint64_t *data; /* count * (dim + 1) words */
    uint8_t key_fp[VEIL_KEY_FP_BYTES];
    uint8_t model_fp[VEIL_MODEL_FP_BYTES];
} veil_ct_batch;

/* dim must be params->lwe_dim or the big dimension k*N. Data zeroed,
 * fingerprints zero. */
veil_status veil_ct_batch_new(const veil_params *params, uint32_t dim, uint64_t count,
                              veil_ct_batch **out);
void veil_ct_batch_free(veil_ct_batch *b);

/* Raw form (VEILCT01). */
veil_status veil_ct_batch_serialize(const veil_ct_batch *b, uint8_t **buf, size_t *len);
/* Seeded form (VEILCS01): bodies + mask_seed, for client uploads. Only for a
 * batch whose masks are exactly the stream of mask_seed in the order above;
 * VEIL_ERR_ARG otherwise (checked: the masks are regenerated and compared).
 * How to make one: draw a fresh seed (veil_seed_random), create a new
 * veil_encryptor with it as mask_seed (noise_seed NULL), encrypt the batch's
 * ciphertexts in order with it and nothing else, and pass the same seed here.
 * Never reuse a mask seed for another batch under the same key: two
 * ciphertexts with the same mask give away the difference of their messages. */
veil_status veil_ct_batch_serialize_seeded(const veil_ct_batch *b,
                                           const uint8_t mask_seed[VEIL_SEED_BYTES], uint8_t **buf,
                                           size_t *len);
veil_status veil_ct_batch_save_seeded(const veil_ct_batch *b,
                                      const uint8_t mask_seed[VEIL_SEED_BYTES], const char *path);
/* Accepts both forms. A seeded batch grows (dim+1)-fold when its masks are
 * regenerated (8 bytes of upload become up to 64 KiB for k*N = 8192), so the
 * memory a loaded batch takes is capped: VEIL_CT_BATCH_DEFAULT_MAX_BYTES here
 * and in _load, `max_bytes` in _limited (a server passes what it accepts per
 * request). Over the cap: VEIL_ERR_UNSUPPORTED, before allocating. */
#define VEIL_CT_BATCH_DEFAULT_MAX_BYTES ((uint64_t)4 << 30)
veil_status veil_ct_batch_deserialize(const uint8_t *buf, size_t len, veil_ct_batch **out);
veil_status veil_ct_batch_deserialize_limited(const uint8_t *buf, size_t len, uint64_t max_bytes,
                                              veil_ct_batch **out);
veil_status veil_ct_batch_save(const veil_ct_batch *b, const char *path);
veil_status veil_ct_batch_load(const char *path, veil_ct_batch **out);

/* 1 when buf holds the start of a secret key file (its magic, VEILSK01):
 * what a service wipes before it frees a body, whatever else it made of it. */
int veil_serial_is_secret(const uint8_t *buf, size_t len);

/* VEIL_ERR_PARAMS unless the batch can be evaluated with ek: same parameter
 * set and the same key fingerprint (veil_key_fp_match). */
veil_status veil_ct_batch_check_eval_key(const veil_ct_batch *b, const veil_eval_key *ek);

/* 1 when two key fingerprints name the same secret key: equal (compared in
 * constant time) and not zero, since zero means none recorded: it never
 * matches, not even another zero. */
int veil_key_fp_match(const uint8_t a[VEIL_KEY_FP_BYTES], const uint8_t b[VEIL_KEY_FP_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
