/* Engine-internal helpers shared by the crypto sources. Nothing outside
 * engine/ includes this header (tests/CMakeLists.txt checks it): the secret
 * key's layout is the engine's alone. */
#ifndef VEIL_INTERNAL_H
#define VEIL_INTERNAL_H

#include <stdint.h>

#include "veil/gadget.h"
#include "veil/tfhe.h"

/* The secret key set (veil/tfhe.h "Key sets"). Every bit lives in guarded
 * memory (sodium_malloc: no swap, no core dump, guard pages, wiped by
 * sodium_free). */
struct veil_secret_key {
    const veil_params *params; /* parts[0] */
    uint32_t n_parts;
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t dim;     /* D = k_0 * N_0 */
    uint64_t *master; /* D words, 0/1: S; partition X's GLWE key is S[0 : k_X N_X] */
    uint64_t *small[VEIL_MAX_PARTITIONS]; /* n_X words, 0/1: s_X */
};

/* out = X^e * in mod X^N + 1, e in [0, 2N). */
void veil_poly_mul_monomial(uint64_t *out, const uint64_t *in, uint32_t n, uint32_t e);

/* Checks a partition list (count, NULL sets, every k*N <= parts[0]'s). */
veil_status veil_partitions_check(const veil_params *const *parts, uint32_t n_parts,
                                  const char *what);

/* GLWE encryption under a key of set p (k*N bits, e.g. a prefix of the
 * master key) for key material made outside keys.c (wop.c's packing
 * keyswitching keys): masks from `mask`, p's GLWE noise from `noise`, exact
 * products; its buffers are key-derived and wiped (keys.c glwe_ctx). */
typedef struct veil_glwe_enc veil_glwe_enc;
veil_status veil_glwe_enc_new(const veil_params *p, const uint64_t *key, veil_glwe_enc **out);
/* ct: (k+1) N words; msg: N words, NULL for 0. */
void veil_glwe_enc_encrypt(veil_glwe_enc *e, veil_csprng *mask, veil_csprng *noise,
                           const uint64_t *msg, uint64_t *ct);
void veil_glwe_enc_free(veil_glwe_enc *e);

#endif
