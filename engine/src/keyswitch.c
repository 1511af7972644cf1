/* LWE keyswitch, master key (D) -> a partition's small key (n). */
#include "fft/fft_internal.h"
#include "internal.h"
#include "veil/tfhe.h"

#include <string.h>

/* out -= the key rows of input coefficient i times its digits */
static void ks_coef(const veil_pbs_key *pk, const veil_fft_kernels *kr, uint32_t i, uint64_t x,
                    uint64_t *out) {
    const veil_params *p = pk->params;
    const uint32_t n = p->lwe_dim, l = p->ks_level;
    int64_t digits[64];
    /* the nonzero digits and their key rows: one vectorised pass over out,
     * all levels at once */
    uint64_t d[64];
    const uint64_t *rows[64];
    veil_gadget_decompose(x, p->ks_base_log, l, digits);
    uint32_t m = 0;
    for (uint32_t j = 0; j < l; j++)
        if (digits[j]) {
            d[m] = (uint64_t)digits[j];
            rows[m++] = pk->ksk + ((size_t)i * l + j) * (n + 1);
        }
    if (m) kr->ks_rows(out, rows, d, m, n + 1);
}

/* Lockstep groups of up to 8 ciphertexts (VEIL_PBS_LANES): per block of
 * input coefficients, every lane's digits side by side, then one ks_lanes
 * pass over the block's consecutive key rows with the lanes' outputs in
 * registers. One at a time (count 1, the latency path, bound by the key's
 * memory traffic) keeps ks_coef, which skips zero digits. The sums are exact
 * mod 2^64, so every route gives the same words. */
#define KS_BLOCK_ROWS 16 /* key rows a ks_lanes call: as many streams at once */

void veil_keyswitch_many(const veil_pbs_key *pk, const uint64_t *in, size_t count, uint64_t *out) {
    const veil_params *p = pk->params;
    const uint32_t n = p->lwe_dim, big = pk->in_dim, l = p->ks_level;
    const size_t in1 = (size_t)big + 1, out1 = (size_t)n + 1;
    const veil_fft_kernels *kr = veil_fft_loop_kernels(NULL);
    for (size_t c = 0; c < count; c++) {
        memset(out + c * out1, 0, sizeof(uint64_t) * n);
        out[c * out1 + n] = in[c * in1 + big];
    }
    if (count == 1) {
        for (uint32_t i = 0; i < big; i++)
            ks_coef(pk, kr, i, in[i], out);
        return;
    }
    VEIL_ASSERT(l >= 1 && l <= 64);
    const uint32_t ib = l >= KS_BLOCK_ROWS ? 1 : KS_BLOCK_ROWS / l; /* coefficients a block */
    uint64_t d[64 * 8]; /* nb l <= max(KS_BLOCK_ROWS, l) <= 64 rows of 8 lanes */
    int64_t dg[64];
    for (size_t c0 = 0; c0 < count; c0 += 8) {
        const uint32_t L = (uint32_t)(count - c0 < 8 ? count - c0 : 8);
        for (uint32_t i0 = 0; i0 < big; i0 += ib) {
            const uint32_t nb = big - i0 < ib ? big - i0 : ib;
            for (uint32_t c = 0; c < L; c++)
                for (uint32_t ii = 0; ii < nb; ii++) {
                    veil_gadget_decompose(in[(c0 + c) * in1 + i0 + ii], p->ks_base_log, l, dg);
                    for (uint32_t j = 0; j < l; j++)
                        d[((size_t)ii * l + j) * L + c] = (uint64_t)dg[j];
                }
            kr->ks_lanes(out + c0 * out1, out1, pk->ksk + (size_t)i0 * l * out1, out1, d, nb * l, L,
                         (uint32_t)out1);
        }
    }
}

void veil_keyswitch(const veil_pbs_key *pk, const uint64_t *in, uint64_t *out) {
    veil_keyswitch_many(pk, in, 1, out);
}

void veil_keyswitch_part(const veil_pbs_key *pk, const uint64_t *in, uint32_t begin, uint32_t end,
                         uint64_t *out) {
    const veil_fft_kernels *kr = veil_fft_loop_kernels(NULL);
    memset(out, 0, sizeof(uint64_t) * ((size_t)pk->params->lwe_dim + 1));
    for (uint32_t i = begin; i < end; i++)
        ks_coef(pk, kr, i, in[i], out);
}
