/* LWE keyswitch, big key (kN) -> small key (n). */
#include "fft/fft_internal.h"
#include "internal.h"
#include "veil/tfhe.h"

#include <string.h>

void veil_keyswitch(const veil_eval_key *ek, const uint64_t *in, uint64_t *out) {
    const veil_params *p = ek->params;
    const uint32_t n = p->lwe_dim, big = veil_params_big_dim(p), l = p->ks_level;
    const veil_fft_kernels *kr = veil_fft_loop_kernels(NULL);
    int64_t digits[64];
    /* the nonzero digits of one input coefficient and their key rows: one
     * vectorised pass over out per coefficient, all levels at once */
    uint64_t d[64];
    const uint64_t *rows[64];
    memset(out, 0, sizeof(uint64_t) * n);
    out[n] = in[big];
    for (uint32_t i = 0; i < big; i++) {
        veil_gadget_decompose(in[i], p->ks_base_log, l, digits);
        uint32_t m = 0;
        for (uint32_t j = 0; j < l; j++)
            if (digits[j]) {
                d[m] = (uint64_t)digits[j];
                rows[m++] = ek->ksk + ((size_t)i * l + j) * (n + 1);
            }
        if (m) kr->ks_rows(out, rows, d, m, n + 1);
    }
}
