/* WoP-PBS on the CPU (veil/wop.h): bit extraction, circuit bootstrapping,
 * vertical packing. */
#include "fft/fft_internal.h"
#include "internal.h"
#include "veil/fft.h"
#include "veil/gadget.h"
#include "veil/wop.h"
#include "wop_internal.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* packing key GLWE of function c, input coefficient i (i = kN: the body),
 * level j (veil/tfhe.h veil_pbs_key.pfpks) */
static const uint64_t *pfpks_at(const veil_pbs_key *pk, const veil_wop_params *wp, uint32_t c,
                                size_t i, uint32_t j) {
    const veil_params *p = pk->params;
    const size_t k1 = p->glwe_dim + 1, big = veil_params_big_dim(p), gw = k1 * p->poly_size;
    return pk->pfpks + (((size_t)c * (big + 1) + i) * wp->pp_level + j) * gw;
}

struct veil_wop_ctx {
    const veil_wop_params *wp;
    uint32_t D; /* the master key's dimension: values have D + 1 words */
    veil_pbs_ctx *pbs;
    veil_fft *fft;
    const veil_fft_kernels *kern;
    int64_t *digits; /* (k+1) l_cb N */
    double *fd;      /* (k+1) l_cb N: their transforms */
    double *facc;    /* (k+1) N */
    double *ftmp;    /* N */
    uint64_t *diff;  /* (k+1) N */
    uint64_t *glwe;  /* l_cb x (k+1) N: a bit's packing keyswitch outputs */
    uint64_t *cur;   /* D + 1: the value, its extracted bits taken off */
    uint64_t *tmp;   /* D + 1 */
    uint64_t *reads; /* (1 + l_cb) x (D + 1): a bit's reads (multi_read) */
    uint64_t *small; /* n + 1: a bit switched to 2N / slots */
    uint64_t *bits;  /* VEIL_WOP_MAX_WIDTH x (n + 1): each bit at 2^63, small key */
    double *ggsw;    /* VEIL_WOP_MAX_WIDTH x (k+1) l_cb (k+1) N: each bit's GGSW */
    uint64_t *nodes; /* 2^(VEIL_WOP_MAX_WIDTH - nu) x (k+1) N: the packing tree */
    uint64_t *lut;   /* N: a bit's test polynomial */
};

veil_status veil_wop_ctx_new(const veil_wop_params *wp, uint32_t in_dim, veil_wop_ctx **out) {
    if (!wp || !out) return veil_error(VEIL_ERR_ARG, "veil_wop_ctx_new: NULL argument");
    const veil_params *p = &wp->pbs;
    if (wp->pp_base_log > 32) /* sub_digit_times: digits of at most 32 bits */
        return veil_error(VEIL_ERR_ARG, "veil_wop_ctx_new: %s: packing base 2^%u, at most 2^32",
                          wp->id, wp->pp_base_log);
    if (veil_wop_slots(wp) > VEIL_WOP_MAX_SLOTS)
        return veil_error(VEIL_ERR_ARG, "veil_wop_ctx_new: %s: l_cb = %u, at most %u", wp->id,
                          wp->cbs_level, VEIL_WOP_MAX_SLOTS - 1);
    if (in_dim < veil_params_big_dim(p))
        return veil_error(VEIL_ERR_ARG,
                          "veil_wop_ctx_new: %s needs a master key of %u or more, not %u", wp->id,
                          veil_params_big_dim(p), in_dim);
    const size_t N = p->poly_size, k1 = p->glwe_dim + 1, lc = wp->cbs_level;
    const size_t big1 = (size_t)in_dim + 1, n1 = (size_t)p->lwe_dim + 1;
    const uint32_t nu = (uint32_t)__builtin_ctz(p->poly_size);
    const size_t leaves = VEIL_WOP_MAX_WIDTH > nu ? (size_t)1 << (VEIL_WOP_MAX_WIDTH - nu) : 1;
    veil_wop_ctx *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "veil_wop_ctx_new: out of memory");
    c->wp = wp;
    c->D = in_dim;
    veil_status s = veil_pbs_ctx_new(p, &c->pbs);
    if (s == VEIL_OK) s = veil_fft_new(p->poly_size, &c->fft);
    if (s == VEIL_OK) {
        c->kern = veil_fft_loop_kernels(c->fft);
        c->digits = malloc(sizeof(int64_t) * k1 * lc * N);
        c->fd = veil_fft_alloc(sizeof(double) * k1 * lc * N);
        c->facc = veil_fft_alloc(sizeof(double) * k1 * N);
        c->ftmp = veil_fft_alloc(sizeof(double) * N);
        c->diff = malloc(sizeof(uint64_t) * k1 * N);
        c->glwe = malloc(sizeof(uint64_t) * lc * k1 * N);
        c->cur = malloc(sizeof(uint64_t) * big1);
        c->tmp = malloc(sizeof(uint64_t) * big1);
        c->reads = malloc(sizeof(uint64_t) * (1 + lc) * big1);
        c->small = malloc(sizeof(uint64_t) * n1);
        c->bits = malloc(sizeof(uint64_t) * VEIL_WOP_MAX_WIDTH * n1);
        c->ggsw = veil_fft_alloc(sizeof(double) * VEIL_WOP_MAX_WIDTH * k1 * lc * k1 * N);
        c->nodes = malloc(sizeof(uint64_t) * leaves * k1 * N);
        c->lut = malloc(sizeof(uint64_t) * N);
        if (!c->digits || !c->fd || !c->facc || !c->ftmp || !c->diff || !c->glwe || !c->cur ||
            !c->tmp || !c->reads || !c->small || !c->bits || !c->ggsw || !c->nodes || !c->lut)
            s = veil_error(VEIL_ERR_NOMEM, "veil_wop_ctx_new: out of memory");
    }
    if (s != VEIL_OK) {
        veil_wop_ctx_free(c);
        return s;
    }
    *out = c;
    return VEIL_OK;
}

void veil_wop_ctx_free(veil_wop_ctx *c) {
    if (!c) return;
    veil_pbs_ctx_free(c->pbs);
    veil_fft_free(c->fft);
    free(c->digits);
    veil_fft_dealloc(c->fd);
    veil_fft_dealloc(c->facc);
    veil_fft_dealloc(c->ftmp);
    free(c->diff);
    free(c->glwe);
    free(c->cur);
    free(c->tmp);
    free(c->reads);
    free(c->small);
    free(c->bits);
    veil_fft_dealloc(c->ggsw);
    free(c->nodes);
    free(c->lut);
    free(c);
}

veil_wop_counts veil_wop_count(const veil_wop_params *wp, unsigned w) {
    const uint32_t nu = (uint32_t)__builtin_ctz(wp->pbs.poly_size);
    const uint32_t low = w < nu ? w : nu;
    veil_wop_counts n = {0, 0, 0, 0};
    if (w == 0) return n;
    n.pbs = w; /* one blind rotation a bit (multi_read) */
    n.keyswitches = w;
    n.packing_keyswitches = w * wp->cbs_level * (wp->pbs.glwe_dim + 1);
    n.external_products = ((1u << (w - low)) - 1) + low;
    return n;
}

/* Bit i's reads, one blind rotation of its small LWE (bit at 2^63): result
 * r of c->reads is +vals[r] for bit 0, -vals[r] for bit 1 (X^N = -1). A
 * multi-value PBS (veil_wop_slots): the test polynomial holds vals[r] in the
 * coefficients r mod slots, and the LWE, offset by a quarter torus (so the
 * phase is centred in its half), is switched here to 2N / slots (masks
 * rounded, the body floored, as veil_modulus_switch does to 2N), so that
 * the PBS's own switch is exact and the rotation a multiple of slots:
 * coefficient r then reads vals[r] with the sign of the bit. */
static void multi_read(veil_wop_ctx *c, const veil_pbs_key *pk, const uint64_t *vals,
                       uint32_t n_res, const uint64_t *bit) {
    const veil_params *p = &c->wp->pbs;
    const uint32_t N = p->poly_size, n = p->lwe_dim, slots = veil_wop_slots(c->wp);
    const uint32_t lg = (uint32_t)__builtin_ctz(2 * N / slots), shift = 64 - lg;
    VEIL_ASSERT(n_res <= slots);
    for (uint32_t t = 0; t < N; t++)
        c->lut[t] = t % slots < n_res ? vals[t % slots] : 0;
    /* veil_modulus_switch's rounding rules (veil/tfhe.h), to 2N / slots */
    for (uint32_t i = 0; i < n; i++)
        c->small[i] = (uint64_t)veil_ms_coef(bit[i], lg) << shift;
    c->small[n] = (uint64_t)veil_ms_body(bit[n] + ((uint64_t)1 << 62), lg) << shift;
    veil_extract ext[VEIL_WOP_MAX_SLOTS];
    for (uint32_t r = 0; r < n_res; r++)
        ext[r] = (veil_extract){r, 0};
    const veil_lut lut = {.in_bits = 1, .in_offset = 0, .poly = c->lut, .poly_size = N};
    veil_pbs_extract(c->pbs, pk, &lut, c->small, ext, n_res, c->reads);
}

/* out[t] -= d K[t] mod 2^64, t < n, for a gadget digit |d| < 2^31: with
 * SSE2 (every x86-64) two 32 x 32 -> 64 products a word, d's high half
 * being zero (the generic 64 x 64 lane product takes three) */
static void sub_digit_times(uint64_t *out, const uint64_t *K, int64_t d, size_t n) {
    size_t t = 0;
#if defined(__SSE2__)
    const uint64_t m = d < 0 ? 0 - (uint64_t)d : (uint64_t)d;
    const __m128i mm = _mm_set1_epi64x((long long)m);
    for (; t + 2 <= n; t += 2) {
        const __m128i k = _mm_loadu_si128((const __m128i *)(K + t));
        const __m128i prod = _mm_add_epi64(
            _mm_mul_epu32(k, mm), _mm_slli_epi64(_mm_mul_epu32(_mm_srli_epi64(k, 32), mm), 32));
        const __m128i o = _mm_loadu_si128((const __m128i *)(out + t));
        _mm_storeu_si128((__m128i *)(out + t),
                         d < 0 ? _mm_add_epi64(o, prod) : _mm_sub_epi64(o, prod));
    }
#endif
    for (; t < n; t++)
        out[t] -= (uint64_t)d * K[t];
}

/* out[v] (v < count, (k + 1) N words each) = GLWE of P_fc times the phase
 * of in[v], a PBS output of the partition (D + 1 words: its kN mask words,
 * 0 past them, zero-extended to D, and its body at D). The count inputs
 * (a bit's levels) run in lockstep: each key row is read from memory once
 * for all. */
static void pfpks(const veil_wop_ctx *c, const veil_pbs_key *pk, uint32_t fc, const uint64_t *in,
                  uint32_t count, uint64_t *out) {
    const veil_wop_params *wp = c->wp;
    const veil_params *p = pk->params;
    const size_t gw = (size_t)(p->glwe_dim + 1) * p->poly_size, in1 = (size_t)c->D + 1;
    const size_t big = veil_params_big_dim(p);
    int64_t d[VEIL_WOP_MAX_SLOTS][64];
    memset(out, 0, sizeof(uint64_t) * gw * count);
    for (size_t i = 0; i <= big; i++) {
        for (uint32_t v = 0; v < count; v++)
            veil_gadget_decompose(in[v * in1 + (i < big ? i : c->D)], wp->pp_base_log, wp->pp_level,
                                  d[v]);
        for (uint32_t j = 0; j < wp->pp_level; j++) {
            const uint64_t *K = pfpks_at(pk, wp, fc, i, j);
            for (uint32_t v = 0; v < count; v++)
                if (d[v][j]) sub_digit_times(out + v * gw, K, d[v][j], gw);
        }
    }
}

/* The GGSW of a bit, in the Fourier layout mac_ggsw reads, from its l_cb
 * level reads (D + 1 words each, bit g_j - g_j/2 (+-g_j/2 read, g_j/2 added
 * here): bit g_j). */
static void circuit_bootstrap(veil_wop_ctx *c, const veil_pbs_key *pk, uint64_t *levels,
                              double *ggsw) {
    const veil_wop_params *wp = c->wp;
    const veil_params *p = &wp->pbs;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, lc = wp->cbs_level;
    const uint32_t polys = k1 * lc * k1;
    for (uint32_t j = 0; j < lc; j++)
        levels[(size_t)j * (c->D + 1) + c->D] += (uint64_t)1 << (63 - wp->cbs_base_log * (j + 1));
    for (uint32_t col = 0; col < k1; col++) {
        pfpks(c, pk, col, levels, lc, c->glwe);
        for (uint32_t j = 0; j < lc; j++)
            for (uint32_t q = 0; q < k1; q++) {
                veil_fft_forward_torus(c->fft, c->glwe + ((size_t)j * k1 + q) * N, c->ftmp);
                veil_fft_ggsw_put(N, polys, (col * lc + j) * k1 + q, c->ftmp, ggsw);
            }
    }
}

/* acc += ExtProd(ggsw, diff) (both (k+1) N words) */
static void ext_prod_add(veil_wop_ctx *c, const double *ggsw, const uint64_t *diff, uint64_t *acc) {
    const veil_wop_params *wp = c->wp;
    const uint32_t N = wp->pbs.poly_size, k1 = wp->pbs.glwe_dim + 1, lc = wp->cbs_level;
    for (uint32_t col = 0; col < k1; col++)
        c->kern->decompose(diff + (size_t)col * N, N, wp->cbs_base_log, lc,
                           c->digits + (size_t)col * lc * N);
    for (uint32_t r = 0; r < k1 * lc; r++)
        veil_fft_forward_i64(c->fft, c->digits + (size_t)r * N, c->fd + (size_t)r * N);
    c->kern->mac_ggsw(c->facc, c->fd, ggsw, k1 * lc, k1, N);
    for (uint32_t q = 0; q < k1; q++)
        veil_fft_backward_add_torus(c->fft, c->facc + (size_t)q * N, acc + (size_t)q * N);
}

static veil_status check_call(const char *fn, veil_wop_ctx *c, const veil_pbs_key *pk, unsigned w) {
    if (pk->params != &c->wp->pbs || !pk->pfpks)
        return veil_error(VEIL_ERR_ARG, "%s: a key of %s%s with a context of %s", fn,
                          pk->params->id, pk->pfpks ? "" : " (no packing keys)", c->wp->id);
    if (pk->in_dim != c->D)
        return veil_error(VEIL_ERR_ARG, "%s: a key for a master key of %u with a context for %u",
                          fn, pk->in_dim, c->D);
    if (!pk->bsk_fourier)
        return veil_error(VEIL_ERR_ARG, "%s: the key of %s is not prepared for the cpu", fn,
                          pk->params->id);
    if (w < 1 || w > VEIL_WOP_MAX_WIDTH)
        return veil_error(VEIL_ERR_ARG, "%s: %u input bits (1 to %u)", fn, w, VEIL_WOP_MAX_WIDTH);
    return VEIL_OK;
}

/* Steps 1 and 2: bits gets w small LWEs (n + 1 words each), least
 * significant bit first; with ggsw, each bit's GGSW too. Bit i's one blind
 * rotation (multi_read) gives its extraction output (result 0: v or -v,
 * v = half bit i's place; none for the last bit) and, with ggsw, its l_cb
 * level reads (-g_j/2 or +g_j/2: the sign read gives bit g_j - g_j/2). */
static void extract_bits(veil_wop_ctx *c, const veil_pbs_key *pk, unsigned w, int in_signed,
                         const uint64_t *in, uint64_t *bits, double *ggsw) {
    const veil_wop_params *wp = c->wp;
    const uint32_t D = c->D, lc = wp->cbs_level;
    const size_t n1 = (size_t)wp->pbs.lwe_dim + 1;
    const size_t ggsw_doubles =
        (size_t)(wp->pbs.glwe_dim + 1) * lc * (wp->pbs.glwe_dim + 1) * wp->pbs.poly_size;
    uint64_t vals[VEIL_WOP_MAX_SLOTS];
    for (uint32_t j = 0; j < lc; j++)
        vals[1 + j] = 0 - ((uint64_t)1 << (63 - wp->cbs_base_log * (j + 1)));
    memcpy(c->cur, in, sizeof(uint64_t) * (D + 1));
    if (in_signed) c->cur[D] += (uint64_t)1 << 62; /* 2^(w-1) delta: x + 2^(w-1) */
    for (uint32_t i = 0; i < w; i++) {
        uint64_t *bit = bits + i * n1;
        veil_lwe_mul_scalar(c->tmp, c->cur, (int64_t)1 << (w - i), D);
        veil_keyswitch(pk, c->tmp, bit);
        const int last = i + 1 == w;
        if (last && !ggsw) break;
        /* bit i's place is 2^(63 - w + i): cur - bit place = cur + out - v */
        const uint64_t v = (uint64_t)1 << (62 - w + i);
        vals[0] = last ? 0 : v;
        multi_read(c, pk, vals, ggsw ? 1 + lc : 1, bit);
        if (!last) {
            c->reads[D] -= v;
            veil_lwe_add(c->cur, c->cur, c->reads, D);
        }
        if (ggsw) circuit_bootstrap(c, pk, c->reads + (D + 1), ggsw + i * ggsw_doubles);
    }
}

veil_status veil_wop_extract_bits(veil_wop_ctx *c, const veil_pbs_key *pk, unsigned w,
                                  int in_signed, const uint64_t *in, uint64_t *bits) {
    if (!c || !pk || !in || !bits)
        return veil_error(VEIL_ERR_ARG, "veil_wop_extract_bits: NULL argument");
    VEIL_TRY(check_call("veil_wop_extract_bits", c, pk, w));
    extract_bits(c, pk, w, in_signed, in, bits, NULL);
    return VEIL_OK;
}

/* Steps 1 to 3: c->nodes gets the lookup's accumulator, a GLWE under
 * S[0 : kN] whose coefficient 0 encrypts table[x] * out_delta. */
static void lookup(veil_wop_ctx *c, const veil_pbs_key *pk, const int64_t *table, unsigned w,
                   int in_signed, uint64_t out_delta, const uint64_t *in) {
    const veil_wop_params *wp = c->wp;
    const veil_params *p = &wp->pbs;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1;
    const size_t gw = (size_t)k1 * N;
    const size_t ggsw_doubles = (size_t)k1 * wp->cbs_level * k1 * N;
    const uint32_t lg = (uint32_t)__builtin_ctz(N), nu = w < lg ? w : lg, top = w - nu;

    /* 1, 2. bit extraction, each bit's GGSW */
    extract_bits(c, pk, w, in_signed, in, c->bits, c->ggsw);
    /* 3. vertical packing: leaf t holds entries t 2^nu .. t 2^nu + 2^nu - 1 */
    const size_t leaves = (size_t)1 << top;
    for (size_t t = 0; t < leaves; t++) {
        uint64_t *node = c->nodes + t * gw;
        memset(node, 0, sizeof(uint64_t) * gw);
        uint64_t *body = node + (size_t)(k1 - 1) * N;
        for (size_t h = 0; h < ((size_t)1 << nu); h++)
            body[h] = (uint64_t)table[(t << nu) + h] * out_delta;
    }
    for (uint32_t u = 0; u < top; u++) {
        const double *g = c->ggsw + (size_t)(nu + u) * ggsw_doubles;
        for (size_t m = 0; m < (leaves >> (u + 1)); m++) {
            uint64_t *n0 = c->nodes + 2 * m * gw, *n1p = n0 + gw;
            for (size_t t = 0; t < gw; t++)
                c->diff[t] = n1p[t] - n0[t];
            ext_prod_add(c, g, c->diff, n0);
            if (m) memcpy(c->nodes + m * gw, n0, sizeof(uint64_t) * gw);
        }
    }
    uint64_t *acc = c->nodes;
    for (uint32_t i = 0; i < nu; i++) {
        for (uint32_t q = 0; q < k1; q++)
            c->kern->rotate_sub(acc + (size_t)q * N, N, 2 * N - (1u << i), c->diff + (size_t)q * N);
        ext_prod_add(c, c->ggsw + (size_t)i * ggsw_doubles, c->diff, acc);
    }
}

static veil_status check_lookup(const char *fn, veil_wop_ctx *c, const veil_pbs_key *pk,
                                const int64_t *table, unsigned w, const uint64_t *in,
                                const uint64_t *out) {
    if (!c || !pk || !table || !in || !out)
        return veil_error(VEIL_ERR_ARG, "%s: NULL argument", fn);
    return check_call(fn, c, pk, w);
}

veil_status veil_wop_pbs(veil_wop_ctx *c, const veil_pbs_key *pk, const int64_t *table, unsigned w,
                         int in_signed, uint64_t out_delta, const uint64_t *in, uint64_t *out) {
    VEIL_TRY(check_lookup("veil_wop_pbs", c, pk, table, w, in, out));
    lookup(c, pk, table, w, in_signed, out_delta, in);
    /* under S_X = S[0 : kN], zero-extended to the master key (pk->in_dim,
     * checked equal to c->D) */
    veil_sample_extract(pk, c->nodes, (veil_extract){0, 0}, out);
    return VEIL_OK;
}

veil_status veil_wop_pbs_coefs(veil_wop_ctx *c, const veil_pbs_key *pk, const int64_t *table,
                               unsigned w, int in_signed, uint64_t out_delta, const uint64_t *in,
                               uint32_t n_coefs, uint64_t *out) {
    VEIL_TRY(check_lookup("veil_wop_pbs_coefs", c, pk, table, w, in, out));
    if (n_coefs > c->wp->pbs.poly_size)
        return veil_error(VEIL_ERR_ARG, "veil_wop_pbs_coefs: %u coefficients of %u", n_coefs,
                          c->wp->pbs.poly_size);
    lookup(c, pk, table, w, in_signed, out_delta, in);
    for (uint32_t h = 0; h < n_coefs; h++)
        veil_sample_extract(pk, c->nodes, (veil_extract){h, 0}, out + (size_t)h * (c->D + 1));
    return VEIL_OK;
}
