/* veil/wop.h — table lookups without padding (WoP-PBS) on the CPU.
 *
 * One lookup of a w-bit value (w up to VEIL_WOP_MAX_WIDTH) whose cost does
 * not depend on the table, in three steps (Carpov, Izabachène and
 * Mollimard, CT-RSA 2019; Bergerat et al., "Parameter optimization and
 * larger precision for (T)FHE", J. Cryptology 2023: the WoP-PBS Concrete
 * runs for lookups past its classic PBS's precision):
 *
 *  1. Bit extraction, least significant bit first: the value's bit i is
 *     moved to the torus's top bit (the ciphertext times 2^(w - i)) and
 *     keyswitched to the small key: that small LWE is bit i times 2^63. A
 *     sign read of it gives bit i at its place, which is subtracted from
 *     the value, so the next bit is the lowest. w keyswitches.
 *  2. Circuit bootstrapping of each bit into a GGSW under the GLWE key: for
 *     each gadget level j, a sign read gives bit * 2^(64 - B_cb (j+1)) under
 *     the big key, and k + 1 private functional packing keyswitches turn it
 *     into the rows (c, j) of the GGSW (row (c, j), c < k, encrypts
 *     -bit g_j S_c, row (k, j) bit g_j: veil/tfhe.h's GGSW layout). w l_cb
 *     (k + 1) packing keyswitches, run after the last bit's reads: the w
 *     l_cb levels of a function c in lockstep, one small integer GEMM over
 *     its key (wop.c pfpks, the FFT paths' pfpks_lanes).
 *     A bit's 1 + l_cb sign reads (its extraction and its levels) are one
 *     blind rotation, a multi-value PBS (veil_wop_slots, veil/params.h;
 *     Carpov et al. above): w PBS for steps 1 and 2, where one read a PBS
 *     takes (w - 1) + w l_cb (at 12 bits, 12 PBS instead of 35).
 *  3. Vertical packing: the table as 2^(w - nu) polynomials of 2^nu
 *     entries (nu = min(w, log2 N)); a tree of CMuxes on the top w - nu
 *     bits selects the polynomial, a blind rotation on the low nu bits
 *     (X^-x_low) brings the entry to coefficient 0, extracted as an LWE
 *     under the big key. 2^(w - nu) - 1 + nu external products.
 *
 * The packing keyswitching key of function c (k + 1 of them): for each
 * coefficient i of the PBS output (i < k N, and i = k N for its body, whose
 * key coefficient is -1) and level j, a GLWE of P_c s'_i g_j, P_c = -S_c for
 * c < k, 1 for c = k; keyswitching (a, b) gives
 * -sum_i sum_j dec_j(a'_i) K_{c,i,j}, a GLWE of P_c times the input's phase.
 *
 * The keys are a partition's of a key set (veil/tfhe.h): a partition whose
 * set is a WoP set's `pbs` (veil_wop_params_of) gets, besides its KSK
 * (master key -> small key) and BSK (small key -> S_X, the prefix of the
 * master key), the packing keyswitching keys (veil_pbs_key.pfpks; keygen,
 * files and the mask stream carry them). Inputs and outputs are under the
 * master key like every value between PBS, the outputs zero-extended from
 * S_X. The compiler places it with options.wop (veil/program.h "WoP
 * lookups"); the backends run it (veil_backend_tables_new_wop at plan time,
 * then veil_backend_wop_pbs). */
#ifndef VEIL_WOP_H
#define VEIL_WOP_H

#include <stddef.h>
#include <stdint.h>

#include "veil/params.h"
#include "veil/status.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VEIL_WOP_MAX_WIDTH 16u

/* Per-thread scratch (FFTs, the bits' GGSWs, the packing tree) for keys of
 * wp whose master key has in_dim coefficients (at least wp's k N). */
typedef struct veil_wop_ctx veil_wop_ctx;
veil_status veil_wop_ctx_new(const veil_wop_params *wp, uint32_t in_dim, veil_wop_ctx **out);
void veil_wop_ctx_free(veil_wop_ctx *ctx);

/* out (D + 1 words, D = the master dimension) = an encryption under pk
 * (a WoP partition's key, prepared for the cpu: VEIL_KEY_FOURIER or
 * VEIL_KEY_BOTH) of
 * table[x] * out_delta, for `in` (D + 1 words) encrypting x * veil_delta(w)
 * with x in [0, 2^w) (in_signed: x in [-2^(w-1), 2^(w-1)), the table
 * indexed by x + 2^(w-1), veil_lut's rule). table: 2^w entries. A value
 * outside the range is read modulo 2^w (its bits above w are shifted out).
 * 1 <= w <= VEIL_WOP_MAX_WIDTH; the ctx and key must be of the same set
 * and master dimension (VEIL_ERR_ARG otherwise). */
/* VEIL_ERR_ARG (naming fn) unless pk's keyswitching key has every row its
 * set's k N: from bit 1 on, the WoP-PBS keyswitches a value holding PBS
 * outputs, mask words to k N whatever width the input had, and a key of
 * fewer rows would drop them (wrong reads, no error). Both backends check. */
veil_status veil_wop_key_rows_check(const char *fn, const veil_pbs_key *pk);

veil_status veil_wop_pbs(veil_wop_ctx *ctx, const veil_pbs_key *pk, const int64_t *table,
                         unsigned w, int in_signed, uint64_t out_delta, const uint64_t *in,
                         uint64_t *out);

/* Step 1 alone, as veil_wop_pbs runs it: bits (w x (n + 1) words) gets
 * bit i of the value as an LWE of bit_i * 2^63 under the set's small key
 * (veil_phase_small reads it). */
veil_status veil_wop_extract_bits(veil_wop_ctx *ctx, const veil_pbs_key *pk, unsigned w,
                                  int in_signed, const uint64_t *in, uint64_t *bits);

/* Counts of one veil_wop_pbs of w bits with set wp (the cost model's and
 * the report's): PBS (w blind rotations, each a bit's reads), keyswitches to the small
 * key, packing keyswitches and external products (vertical packing). */
typedef struct veil_wop_counts {
    uint32_t pbs, keyswitches, packing_keyswitches, external_products;
} veil_wop_counts;
veil_wop_counts veil_wop_count(const veil_wop_params *wp, unsigned w);

#ifdef __cplusplus
}
#endif
#endif
