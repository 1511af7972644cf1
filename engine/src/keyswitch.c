/* LWE keyswitch, master key (D) -> a partition's small key (n). */
#include "internal.h"
#include "veil/tfhe.h"

#include <string.h>

void veil_keyswitch(const veil_pbs_key *pk, const uint64_t *in, uint64_t *out) {
    const veil_params *p = pk->params;
    const uint32_t n = p->lwe_dim, big = pk->in_dim, l = p->ks_level;
    int64_t digits[64];
    memset(out, 0, sizeof(uint64_t) * n);
    out[n] = in[big];
    for (uint32_t i = 0; i < big; i++) {
        veil_gadget_decompose(in[i], p->ks_base_log, l, digits);
        for (uint32_t j = 0; j < l; j++) {
            const uint64_t d = (uint64_t)digits[j];
            if (!d) continue;
            const uint64_t *k = pk->ksk + ((size_t)i * l + j) * (n + 1);
            for (uint32_t t = 0; t <= n; t++)
                out[t] -= d * k[t];
        }
    }
}
