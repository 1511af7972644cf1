/* wop_internal.h — wop.c's accumulator, for its noise test (private). */
#ifndef VEIL_WOP_INTERNAL_H
#define VEIL_WOP_INTERNAL_H

#include "veil/wop.h"

/* veil_wop_pbs, with coefficients 0 .. n_coefs - 1 of the lookup's
 * accumulator extracted (out: n_coefs x (D + 1) words; n_coefs <= N).
 * With x = the value (+ 2^(w-1) when in_signed), nu = min(w, log2 N),
 * t = x >> nu and r = x mod 2^nu, coefficient h encrypts
 * L(r + h) * out_delta, where L(j) = table[t 2^nu + j] for j < 2^nu, 0 for
 * 2^nu <= j < N and -L(j - N) from N (X^N = -1). Every coefficient's
 * error has the variance of coefficient 0's: a lookup gives N samples of
 * it. */
veil_status veil_wop_pbs_coefs(veil_wop_ctx *ctx, const veil_pbs_key *pk, const int64_t *table,
                               unsigned w, int in_signed, uint64_t out_delta, const uint64_t *in,
                               uint32_t n_coefs, uint64_t *out);

#endif
