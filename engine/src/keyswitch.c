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

void veil_keyswitch_many(const veil_pbs_key *pk, const uint64_t *in, size_t count, uint64_t *out) {
    const veil_params *p = pk->params;
    const uint32_t n = p->lwe_dim, big = pk->in_dim;
    const size_t in1 = (size_t)big + 1, out1 = (size_t)n + 1;
    const veil_fft_kernels *kr = veil_fft_loop_kernels(NULL);
    for (size_t c = 0; c < count; c++) {
        memset(out + c * out1, 0, sizeof(uint64_t) * n);
        out[c * out1 + n] = in[c * in1 + big];
    }
    /* the ciphertexts in turn, so the l key rows of coefficient i stay in
     * cache for all of them */
    for (uint32_t i = 0; i < big; i++)
        for (size_t c = 0; c < count; c++)
            ks_coef(pk, kr, i, in[c * in1 + i], out + c * out1);
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
