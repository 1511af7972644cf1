/* Lookup tables as test polynomials. */
#include "veil/tfhe.h"

veil_status veil_lut_new(const veil_params *p, const int64_t *table, unsigned in_bits,
                         int in_signed, uint64_t out_delta, veil_lut **out) {
    if (!p || !table || !out) return veil_error(VEIL_ERR_ARG, "veil_lut_new: NULL argument");
    const uint32_t N = p->poly_size;
    if (in_bits >= 32 || ((uint64_t)1 << in_bits) > N)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "lookup table of %u bits does not fit N = %u of %s (at most %u bits)",
                          in_bits, N, p->id, (unsigned)__builtin_ctz(N));
    if (in_signed && in_bits < 1)
        return veil_error(VEIL_ERR_ARG, "veil_lut_new: a signed table needs at least 1 bit");
    veil_lut *lut = calloc(1, sizeof *lut);
    if (!lut || !(lut->poly = calloc(N, sizeof *lut->poly))) {
        free(lut);
        return veil_error(VEIL_ERR_NOMEM, "veil_lut_new: out of memory");
    }
    lut->in_bits = in_bits;
    lut->in_signed = in_signed ? 1 : 0;
    lut->poly_size = N;
    /* Signed inputs: add 2^(b-1)*delta so the padding bit is 0 when the PBS
     * reads the value; entry i then holds the value i - 2^(b-1). */
    lut->in_offset = in_signed ? veil_encode((int64_t)1 << (in_bits - 1), in_bits) : 0;
    /* Phase x*box + e (box = N / 2^b) lands in coefficient x*box + e of the
     * rotation; the box of x is coefficients x*box - half .. x*box + half - 1,
     * centred on x*box - 1/2, where the body's switch rounding down puts the
     * phase's mean (veil_ms_body). The last half box wraps to the
     * negacyclic half and is set to -T[0], so small negative noise on x = 0
     * still reads T[0]. */
    const uint32_t box = N >> in_bits, half = box / 2;
    for (uint32_t j = 0; j < N; j++) {
        uint64_t v;
        if (j + half < N)
            v = (uint64_t)table[(j + half) / box] * out_delta;
        else
            v = 0 - (uint64_t)table[0] * out_delta;
        lut->poly[j] = v;
    }
    *out = lut;
    return VEIL_OK;
}

void veil_lut_free(veil_lut *lut) {
    if (!lut) return;
    free(lut->poly);
    free(lut);
}

veil_status veil_lut_steps_new(const veil_params *p, unsigned in_bits, uint64_t value,
                               veil_lut **out) {
    if (!p || !out) return veil_error(VEIL_ERR_ARG, "veil_lut_steps_new: NULL argument");
    if (value & 1)
        return veil_error(VEIL_ERR_ARG, "veil_lut_steps_new: value %llu is odd",
                          (unsigned long long)value);
    const int64_t zero = 0;
    /* a table's checks and allocation; the polynomial is then the constant */
    veil_status s = veil_lut_new(p, &zero, 0, 0, 0, out);
    if (s != VEIL_OK) return s;
    const uint32_t N = p->poly_size;
    if (in_bits >= 32 || ((uint64_t)1 << in_bits) > N) {
        veil_lut_free(*out);
        *out = NULL;
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "threshold reads of %u bits do not fit N = %u of %s (at most %u bits)",
                          in_bits, N, p->id, (unsigned)__builtin_ctz(N));
    }
    (*out)->in_bits = in_bits;
    for (uint32_t j = 0; j < N; j++)
        (*out)->poly[j] = 0 - value / 2;
    return VEIL_OK;
}

veil_extract veil_lut_step(const veil_lut *steps, uint64_t value, uint64_t t) {
    const uint32_t N = steps->poly_size, box = N >> steps->in_bits, half = box / 2;
    if (t == 0) return (veil_extract){VEIL_EXTRACT_TRIVIAL, value};
    if (t >> steps->in_bits) return (veil_extract){VEIL_EXTRACT_TRIVIAL, 0};
    return (veil_extract){(uint32_t)(N - t * box + half), value / 2};
}
