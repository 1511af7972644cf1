/* Programmable bootstrapping on the CPU: modulus switch, blind rotation with
 * negacyclic products through veil/fft.h, sample extraction. */
#include "internal.h"
#include "veil/fft.h"
#include "veil/tfhe.h"

#include <string.h>

struct veil_pbs_ctx {
    const veil_params *params;
    veil_fft *fft;
    uint32_t *ms;    /* n + 1 switched coefficients */
    uint64_t *acc;   /* (k+1) N */
    uint64_t *rot;   /* (k+1) N */
    int64_t *digits; /* (k+1) l N */
    double *fdigits; /* (k+1) l N */
    double *facc;    /* (k+1) N */
    uint64_t *small; /* n + 1, PBS input with the lut offset */
    uint64_t *ks;    /* n + 1, keyswitch output */
};

veil_status veil_pbs_ctx_new(const veil_params *p, veil_pbs_ctx **out) {
    if (!p || !out) return veil_error(VEIL_ERR_ARG, "veil_pbs_ctx_new: NULL argument");
    veil_pbs_ctx *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "veil_pbs_ctx_new: out of memory");
    c->params = p;
    const size_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level;
    veil_status s = veil_fft_new(p->poly_size, &c->fft);
    if (s == VEIL_OK) {
        c->ms = malloc(sizeof(uint32_t) * (p->lwe_dim + 1));
        c->acc = malloc(sizeof(uint64_t) * k1 * N);
        c->rot = malloc(sizeof(uint64_t) * k1 * N);
        c->digits = malloc(sizeof(int64_t) * k1 * l * N);
        c->fdigits = veil_fft_alloc(sizeof(double) * k1 * l * N);
        c->facc = veil_fft_alloc(sizeof(double) * k1 * N);
        c->small = malloc(sizeof(uint64_t) * (p->lwe_dim + 1));
        c->ks = malloc(sizeof(uint64_t) * (p->lwe_dim + 1));
        if (!c->ms || !c->acc || !c->rot || !c->digits || !c->fdigits || !c->facc || !c->small ||
            !c->ks)
            s = veil_error(VEIL_ERR_NOMEM, "veil_pbs_ctx_new: out of memory");
    }
    if (s != VEIL_OK) {
        veil_pbs_ctx_free(c);
        return s;
    }
    *out = c;
    return VEIL_OK;
}

void veil_pbs_ctx_free(veil_pbs_ctx *c) {
    if (!c) return;
    veil_fft_free(c->fft);
    free(c->ms);
    free(c->acc);
    free(c->rot);
    free(c->digits);
    veil_fft_dealloc(c->fdigits);
    veil_fft_dealloc(c->facc);
    free(c->small);
    free(c->ks);
    free(c);
}

static uint32_t log2u(uint32_t x) {
    return (uint32_t)__builtin_ctz(x);
}

void veil_modulus_switch(const veil_params *p, const uint64_t *in, uint32_t *out) {
    const uint32_t n = p->lwe_dim, lg = log2u(p->poly_size) + 1;
    if (p->ms == VEIL_MS_CENTERED) {
        /* Centred mean: the rounding errors r_i = switched(a_i) - a_i are
         * public. With binary s_i, sum r_i s_i = sum r_i (s_i - 1/2) +
         * (1/2) sum r_i, so adding (1/2) sum r_i to the body before switching
         * it leaves only the centred term, whose variance is half. */
        int64_t sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            out[i] = veil_ms_coef(in[i], lg);
            sum += (int64_t)(((uint64_t)out[i] << (64 - lg)) - in[i]);
        }
        out[n] = veil_ms_coef(in[n] + (uint64_t)(sum / 2), lg);
        return;
    }
    for (uint32_t i = 0; i <= n; i++)
        out[i] = veil_ms_coef(in[i], lg);
}

void veil_poly_mul_monomial(uint64_t *out, const uint64_t *in, uint32_t N, uint32_t e) {
    /* X^e with e in [0, 2N): X^N = -1. */
    int neg = e >= N;
    if (neg) e -= N;
    for (uint32_t j = 0; j < N; j++) {
        uint32_t t = j + e;
        uint64_t v = in[j];
        if (t >= N) {
            out[t - N] = neg ? v : 0 - v;
        } else {
            out[t] = neg ? 0 - v : v;
        }
    }
}

/* r = X^a * src - src, a in [0, 2N): two branch-free runs that vectorise.
 * m = 0 or all ones: (v ^ m) - m is v or -v. */
static void rotate_sub(uint64_t *restrict r, const uint64_t *restrict src, uint32_t N, uint32_t a) {
    const uint64_t m_hi = a >= N ? ~(uint64_t)0 : 0, m_lo = ~m_hi;
    const size_t e = a >= N ? a - N : a;
    /* t < e: X^a wraps src[t - e + N] around once more (one more sign).
     * Pointer offsets, not wrapping 32-bit indices, so the loads stay
     * contiguous vector loads (no gathers). */
    const uint64_t *wrap = src + (N - e);
    for (size_t t = 0; t < e; t++)
        r[t] = ((wrap[t] ^ m_lo) - m_lo) - src[t];
    uint64_t *rh = r + e;
    const uint64_t *sh = src + e;
    for (size_t t = 0; t < N - e; t++)
        rh[t] = ((src[t] ^ m_hi) - m_hi) - sh[t];
}

/* acc = acc + ExtProd(bsk_i, X^a * acc - acc): the CMux on s_i. */
static void cmux_step(veil_pbs_ctx *c, const veil_pbs_key *pk, uint32_t i, uint32_t a) {
    const veil_params *p = c->params;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level;
    const uint32_t B = p->pbs_base_log;
    /* decompose: digit poly (q, j) at index q*l + j; digits come least
     * significant first (veil/gadget.h), so level j = l-1 down to 0. One pass
     * per level over the whole polynomial (the rest kept in rot) so every
     * loop is a straight vector loop. */
    for (uint32_t q = 0; q < k1; q++) {
        uint64_t *r = c->rot + (size_t)q * N;
        rotate_sub(r, c->acc + (size_t)q * N, N, a);
        int64_t *dst = c->digits + (size_t)q * l * N;
        for (uint32_t t = 0; t < N; t++)
            r[t] = veil_gadget_round(r[t], B, l);
        for (uint32_t j = l; j-- > 0;) {
            int64_t *d = dst + (size_t)j * N;
            for (uint32_t t = 0; t < N; t++)
                d[t] = veil_gadget_next(&r[t], B);
        }
    }
    const size_t rows = (size_t)k1 * l;
    for (size_t r = 0; r < rows; r++)
        veil_fft_forward_i64(c->fft, c->digits + r * N, c->fdigits + r * N);
    memset(c->facc, 0, sizeof(double) * k1 * N);
    /* the GGSW of s_i: rows x (k+1) transformed polynomials, read in order */
    const double *ggsw = pk->bsk_fourier + (size_t)i * rows * k1 * N;
    for (size_t r = 0; r < rows; r++)
        for (uint32_t q = 0; q < k1; q++)
            veil_fft_mac(c->facc + (size_t)q * N, c->fdigits + r * N,
                         ggsw + (r * k1 + q) * (size_t)N, N);
    for (uint32_t q = 0; q < k1; q++)
        veil_fft_backward_add_torus(c->fft, c->facc + (size_t)q * N, c->acc + (size_t)q * N);
}

void veil_pbs(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *lut, const uint64_t *in,
              uint64_t *out) {
    const veil_params *p = c->params;
    VEIL_ASSERT(pk->params == p && lut->poly_size == p->poly_size && pk->bsk_fourier &&
                pk->in_dim >= veil_params_big_dim(p));
    const uint32_t N = p->poly_size, k = p->glwe_dim, n = p->lwe_dim;
    /* the signed-input offset is a clear constant on the body */
    memcpy(c->small, in, sizeof(uint64_t) * n);
    c->small[n] = in[n] + lut->in_offset;
    veil_modulus_switch(p, c->small, c->ms);
    /* acc = (0, ..., 0, X^-b * V) */
    memset(c->acc, 0, sizeof(uint64_t) * k * N);
    veil_poly_mul_monomial(c->acc + (size_t)k * N, lut->poly, N, (2 * N - c->ms[n]) % (2 * N));
    for (uint32_t i = 0; i < n; i++)
        if (c->ms[i]) cmux_step(c, pk, i, c->ms[i]);
    /* sample extract the constant coefficient */
    for (uint32_t q = 0; q < k; q++) {
        const uint64_t *A = c->acc + (size_t)q * N;
        uint64_t *o = out + (size_t)q * N;
        o[0] = A[0];
        for (uint32_t j = 1; j < N; j++)
            o[j] = 0 - A[N - j];
    }
    /* under S_X = S[0 : kN]: zero-extended to the master key (nested keys,
     * veil/tfhe.h), so the body sits at in_dim */
    if (pk->in_dim > (size_t)k * N)
        memset(out + (size_t)k * N, 0, sizeof(uint64_t) * (pk->in_dim - (size_t)k * N));
    out[pk->in_dim] = c->acc[(size_t)k * N];
}

void veil_ks_pbs(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *lut, const uint64_t *in,
                 uint64_t *out) {
    veil_keyswitch(pk, in, c->ks);
    veil_pbs(c, pk, lut, c->ks, out);
}
