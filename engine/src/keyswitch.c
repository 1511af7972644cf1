/* LWE keyswitch, big key (kN) -> small key (n). */
#include "fft/fft_internal.h"
#include "internal.h"
#include "veil/tfhe.h"

#include <string.h>

void veil_keyswitch_many(const veil_eval_key *ek, const uint64_t *in, size_t count, uint64_t *out) {
    const veil_params *p = ek->params;
    const uint32_t n = p->lwe_dim, big = veil_params_big_dim(p), l = p->ks_level;
    const size_t in1 = (size_t)big + 1, out1 = (size_t)n + 1;
    const veil_fft_kernels *kr = veil_fft_loop_kernels(NULL);
    int64_t digits[64];
    /* the nonzero digits of one input coefficient and their key rows: one
     * vectorised pass over out per coefficient, all levels at once; the
     * ciphertexts in turn, so the l key rows of coefficient i stay in cache
     * for all of them */
    uint64_t d[64];
    const uint64_t *rows[64];
    for (size_t c = 0; c < count; c++) {
        memset(out + c * out1, 0, sizeof(uint64_t) * n);
        out[c * out1 + n] = in[c * in1 + big];
    }
    for (uint32_t i = 0; i < big; i++)
        for (size_t c = 0; c < count; c++) {
            veil_gadget_decompose(in[c * in1 + i], p->ks_base_log, l, digits);
            uint32_t m = 0;
            for (uint32_t j = 0; j < l; j++)
                if (digits[j]) {
                    d[m] = (uint64_t)digits[j];
                    rows[m++] = ek->ksk + ((size_t)i * l + j) * out1;
                }
            if (m) kr->ks_rows(out + c * out1, rows, d, m, n + 1);
        }
}

void veil_keyswitch(const veil_eval_key *ek, const uint64_t *in, uint64_t *out) {
    veil_keyswitch_many(ek, in, 1, out);
}
