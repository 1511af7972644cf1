/* Engine-internal helpers shared by the crypto sources. Nothing outside
 * engine/ includes this header: the secret key's layout is the engine's
 * alone. */
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

/* Sample extraction of coefficient x.coef (or the trivial x.add) of a
 * (k+1) N accumulator of pk's set into a big LWE of pk->in_dim + 1 words
 * (under S[0 : kN], zero-extended to the master key), body + x.add
 * (pbs.c). */
void veil_sample_extract(const veil_pbs_key *pk, const uint64_t *acc, veil_extract x,
                         uint64_t *out);

/* veil_pbs of a small LWE with n_res results: result r (at
 * out + r (pk->in_dim + 1)) is extraction ext[r] of the accumulator. */
void veil_pbs_extract(veil_pbs_ctx *ctx, const veil_pbs_key *pk, const veil_lut *lut,
                      const uint64_t *in_small, const veil_extract *ext, uint32_t n_res,
                      uint64_t *out);

/* Checks a partition list (count, NULL sets, every k*N <= parts[0]'s). */
veil_status veil_partitions_check(const veil_params *const *parts, uint32_t n_parts,
                                  const char *what);

#endif
