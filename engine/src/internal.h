/* Engine-internal helpers shared by the crypto sources. */
#ifndef VEIL_INTERNAL_H
#define VEIL_INTERNAL_H

#include <stdint.h>

#include "veil/gadget.h"

/* out = X^e * in mod X^N + 1, e in [0, 2N). */
void veil_poly_mul_monomial(uint64_t *out, const uint64_t *in, uint32_t n, uint32_t e);

#endif
