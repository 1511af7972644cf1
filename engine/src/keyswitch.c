/* LWE keyswitch, master key (D) -> a partition's small key (n).
 *
 * out = (0, ..., 0, b) - sum_i sum_j d_ij(a_i) K_ij on the top 32 bits of
 * every word (veil/ks32.h: b and the key rows K_ij rounded to 32 bits, the
 * sums mod 2^32, each output word that value in its top half), where d_ij
 * are the gadget digits of input coefficient i and K_ij the key rows (n + 1
 * words, consecutive in i then j). Lockstep groups of up to 32 ciphertexts
 * (VEIL_KS_LANES, and one alone): per block of input coefficients, every
 * lane's digits side by side, then one ks_lanes pass over the block's
 * consecutive key rows, 8 lanes at a time with a tile of their outputs in
 * registers (engine/src/fft/fft_template.h), so the block is read from
 * memory once for the 32 lanes and from L1 for the other 24. Against groups
 * of 8 (one memory read of the key per 8 ciphertexts), per ciphertext and
 * row, main's binary and this one alternated three times on one core of an
 * Intel Xeon (AVX-512, 2 MiB L2 a core; bench_pbs --cost, thread CPU time,
 * medians; docs/results/intel-cpu-ks-lanes.json): 16 lanes 0.71-0.76x, 32
 * lanes 0.53-0.68x, 64 lanes 0.55-0.57x (tfhers-2_2, nn-p2-norm2e4,
 * nn-p6-norm2e7); 16 lanes held in registers at once (one vector a tile)
 * were 0.96-1.16x. 32: most of the gain, and a group a layer's lookups still
 * fill at batch 1. The sums are exact mod 2^32, so every
 * grouping and every split over threads gives the same words. Against the
 * same loop on the 64-bit key (before veil/ks32.h), per ciphertext in groups
 * of 8: see docs/results/HISTORY.md §0c. Measured
 * against the row-at-a-time loop before it (one ks_rows call per input
 * coefficient and lane, zero digits skipped), thread CPU time on 2 shared
 * cores of an AMD EPYC: one at a time 2_2 4.7 -> 2.7..4.0 ms, nn-p2-norm2e4
 * 2.9 -> 1.3..1.5 ms (it was not bound by the key's memory traffic, as
 * believed, but by the loop's overhead); per ciphertext in groups of 8 2_2
 * 1.35 -> 0.97 ms, nn-p6-norm2e2 6.5 -> 4.0 ms. */
#include "fft/fft_internal.h"
#include "internal.h"
#include "veil/ks32.h"
#include "veil/tfhe.h"

#include <string.h>

/* Key rows a block (a ks_lanes call, as many streams at once), groups and
 * one ciphertext alike, with the next block prefetched into L1 while this
 * one is summed (ks_range). Measured before the prefetch (thread CPU,
 * `bench_pbs --cost`, alternated three times): per ciphertext in groups of
 * 8, 2_2 0.93 ms at 16 rows against 0.79 at 8 and 0.84 at 4,
 * nn-p2-norm2e4 0.48 / 0.41 / 0.61; 32 and 64 rows were three times
 * slower; one at a time 16 rows had been the best. With the prefetch, on
 * one core of the Zen 5 (docs/results/zen5-ks-prefetch-ab.json), one at a
 * time 16 rows 1.09-1.47 ms at 2_2 2^-64 against 0.77-0.79 at 8. */
#define KS_BLOCK_ROWS 8

/* Lane c's 32-bit sums: the first n + 1 32-bit words of its own 64-bit
 * output row (every access through memcpy), widened in place at the end
 * (widen: from the last word down, so no 32-bit word is overwritten before
 * it is read). */
static uint32_t *sums32(uint64_t *row) {
    return (uint32_t *)(void *)row;
}

static void sums_init(uint64_t *row, size_t out1, uint32_t body) {
    uint32_t *s = sums32(row);
    memset(s, 0, sizeof(uint32_t) * (out1 - 1));
    memcpy(s + out1 - 1, &body, sizeof body);
}

static void sums_widen(uint64_t *row, size_t out1) {
    const uint32_t *s = sums32(row);
    for (size_t j = out1; j-- > 0;) {
        uint32_t v;
        memcpy(&v, s + j, sizeof v);
        const uint64_t w = veil_ks32_word(v);
        memcpy(row + j, &w, sizeof w);
    }
}

/* lane c's 32-bit sums -= the 32-bit key rows of coefficients begin .. end-1
 * times lane c's digits, c < lanes <= VEIL_KS_LANES (in: lanes ciphertexts in1
 * words apart; out: lanes rows out1 64-bit words apart, sums32) */
static void ks_range(const veil_pbs_key *pk, const uint64_t *in, size_t in1, uint32_t lanes,
                     uint32_t begin, uint32_t end, uint64_t *out, size_t out1) {
    const veil_params *p = pk->params;
    const uint32_t l = p->ks_level;
    const veil_fft_kernels *kr = veil_fft_loop_kernels(NULL);
    VEIL_ASSERT(l >= 1 && l <= 64 && lanes >= 1 && lanes <= VEIL_KS_LANES && pk->ksk32);
    const uint32_t ib = l >= KS_BLOCK_ROWS ? 1 : KS_BLOCK_ROWS / l; /* coefficients a block */
    uint32_t d[64 * VEIL_KS_LANES]; /* nb l <= max(KS_BLOCK_ROWS, l) <= 64 rows of the lanes */
    int64_t dg[64];
    for (uint32_t i0 = begin; i0 < end; i0 += ib) {
        const uint32_t nb = end - i0 < ib ? end - i0 : ib;
        for (uint32_t c = 0; c < lanes; c++)
            for (uint32_t ii = 0; ii < nb; ii++) {
                veil_gadget_decompose(in[c * in1 + i0 + ii], p->ks_base_log, l, dg);
                for (uint32_t j = 0; j < l; j++)
                    d[((size_t)ii * l + j) * lanes + c] = (uint32_t)dg[j];
            }
        const uint32_t *rows = pk->ksk32 + (size_t)i0 * l * out1;
        /* The next block into L1 now, while this one is summed: the rows
         * are short streams (n + 1 words, read a tile at a time across the
         * block), which the hardware prefetchers did not keep ahead of.
         * Against no prefetch, one core of the Zen 5, alternated three
         * times (docs/results/zen5-ks-prefetch-ab.json): per ciphertext in
         * groups of 32, 2_2 2^-64 0.56 -> 0.39 ms, nn-p2-norm2e4 0.29 ->
         * 0.20, nn-p6-norm2e10-r4096 2.8 -> 1.9; into L2 only (prefetcht1)
         * it gained nothing. */
        if (i0 + ib < end) {
            const char *next = (const char *)(rows + (size_t)ib * l * out1);
            const uint32_t nn = end - (i0 + ib) < ib ? end - (i0 + ib) : ib;
            for (size_t o = 0; o < sizeof(uint32_t) * (size_t)nn * l * out1; o += 64)
                __builtin_prefetch(next + o, 0, 3);
        }
        if (lanes > 1) {
            kr->ks_lanes(sums32(out), 2 * out1, rows, out1, d, nb * l, lanes, (uint32_t)out1);
            continue;
        }
        /* one ciphertext: only the runs of rows whose digit is not 0, so a
         * zero digit's row (1 in 2^B) is never read from memory; the same
         * sums. One keyswitch at a time on one core of the Intel Xeon
         * (bench_pbs, alternated three times): 2_2 (base 2^3) 1.32-1.34 ->
         * 1.26-1.27 ms, nn-p6-norm2e7-2m40 (base 2^2, 9 levels) 6.17-6.44
         * -> 5.03-5.21 ms (docs/results/HISTORY.md §0g) */
        for (uint32_t r = 0, r1; r < nb * l; r = r1) {
            for (; r < nb * l && d[r] == 0; r++)
                ;
            for (r1 = r; r1 < nb * l && d[r1] != 0; r1++)
                ;
            if (r1 > r)
                kr->ks_lanes(sums32(out), 2 * out1, rows + (size_t)r * out1, out1, d + r, r1 - r, 1,
                             (uint32_t)out1);
        }
    }
}

uint32_t veil_lwe_mask_end(const uint64_t *ct, uint32_t dim) {
    uint32_t e = dim;
    while (e > 0 && ct[e - 1] == 0)
        e--;
    return e;
}

uint32_t veil_keyswitch_rows(const veil_pbs_key *pk, const uint64_t *ct) {
    const uint32_t e = veil_lwe_mask_end(ct, pk->in_dim);
    return e < pk->ksk_rows ? e : pk->ksk_rows;
}

void veil_keyswitch_many(const veil_pbs_key *pk, const uint64_t *in, size_t count, uint64_t *out) {
    const uint32_t n = pk->params->lwe_dim, big = pk->in_dim;
    const size_t in1 = (size_t)big + 1, out1 = (size_t)n + 1;
    for (size_t c = 0; c < count; c++)
        sums_init(out + c * out1, out1, veil_ks32_round(in[c * in1 + big])); /* veil_ks32_body's */
    for (size_t c0 = 0; c0 < count; c0 += VEIL_KS_LANES) {
        const uint32_t L = (uint32_t)(count - c0 < VEIL_KS_LANES ? count - c0 : VEIL_KS_LANES);
        /* the group's rows up to its widest mask: a value under a prefix of
         * the master key (veil_node.key_dim) has 0 past it, whose digits are
         * 0 and add nothing, so its rows are not read */
        uint32_t end = 0;
        for (uint32_t c = 0; c < L && end < pk->ksk_rows; c++) {
            const uint32_t e = veil_keyswitch_rows(pk, in + (c0 + c) * in1);
            end = e > end ? e : end;
        }
        ks_range(pk, in + c0 * in1, in1, L, 0, end, out + c0 * out1, out1);
    }
    for (size_t c = 0; c < count; c++)
        sums_widen(out + c * out1, out1);
}

void veil_keyswitch(const veil_pbs_key *pk, const uint64_t *in, uint64_t *out) {
    veil_keyswitch_many(pk, in, 1, out);
}

void veil_keyswitch_part(const veil_pbs_key *pk, const uint64_t *in, uint32_t begin, uint32_t end,
                         uint64_t *out) {
    const size_t out1 = (size_t)pk->params->lwe_dim + 1;
    VEIL_ASSERT(begin <= end && end <= pk->ksk_rows);
    sums_init(out, out1, 0);
    ks_range(pk, in, (size_t)pk->in_dim + 1, 1, begin, end, out, out1);
    sums_widen(out, out1);
}

void veil_keyswitch_key_wide(const veil_pbs_key *pk, size_t begin, size_t count, uint64_t *out) {
    VEIL_ASSERT(pk->ksk32 && begin + count <= veil_eval_key_ksk_words(pk->params, pk->in_dim));
    const size_t have = veil_eval_key_ksk_words(pk->params, pk->ksk_rows);
    for (size_t i = 0; i < count; i++)
        out[i] = begin + i < have ? veil_ks32_word(pk->ksk32[begin + i]) : 0;
}
