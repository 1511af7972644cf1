/* veil/rng.h — randomness.
 *
 * Seeds come from the OS through libsodium (randombytes_buf). A veil_csprng is
 * a ChaCha20 keystream (libsodium's crypto_stream_chacha20_ietf) keyed by a
 * 32-byte seed. veil uses two independent streams wherever it encrypts:
 *   - the mask stream, whose seed may be stored (seeded keys and ciphertexts
 *     store it and regenerate the masks on load);
 *   - the noise stream, whose seed is never stored or sent.
 * Storing one seed for both would let anyone regenerate the noise and solve for
 * the secret key. Tests pass explicit seeds for determinism. */
#ifndef VEIL_RNG_H
#define VEIL_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "veil/params.h"
#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VEIL_SEED_BYTES 32

typedef struct veil_csprng veil_csprng;

/* seed == NULL: a fresh seed from the OS. The stream copies the seed. */
veil_status veil_csprng_new(const uint8_t *seed, veil_csprng **out);
void veil_csprng_free(veil_csprng *rng);
/* Fills seed with OS randomness (libsodium; aborts if libsodium cannot start). */
void veil_seed_random(uint8_t seed[VEIL_SEED_BYTES]);

void veil_csprng_bytes(veil_csprng *rng, void *buf, size_t len);
uint64_t veil_csprng_u64(veil_csprng *rng);
void veil_csprng_fill_u64(veil_csprng *rng, uint64_t *out, size_t count);
/* Uniform bits (0 or 1), used for binary secret keys. */
void veil_csprng_fill_bits(veil_csprng *rng, uint64_t *out, size_t count);
/* One noise sample, as a torus element (units of 2^-64, two's complement). */
uint64_t veil_csprng_noise(veil_csprng *rng, const veil_noise *noise);
/* A standard normal double (Box-Muller on 53-bit uniforms). */
double veil_csprng_normal(veil_csprng *rng);

#ifdef __cplusplus
}
#endif
#endif
