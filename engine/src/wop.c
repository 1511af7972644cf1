/* WoP-PBS on the CPU (veil/wop.h): bit extraction, circuit bootstrapping,
 * vertical packing. */
#include "fft/fft_internal.h"
#include "internal.h"
#include "veil/fft.h"
#include "veil/gadget.h"
#include "veil/wop.h"
#include "wop_internal.h"

#include <string.h>

/* packing key GLWE of function c, input coefficient i (i = kN: the body),
 * level j (veil/tfhe.h veil_pbs_key.pfpks) */
static const uint64_t *pfpks_at(const veil_pbs_key *pk, const veil_wop_params *wp, uint32_t c,
                                size_t i, uint32_t j) {
    const veil_params *p = pk->params;
    const size_t k1 = p->glwe_dim + 1, big = veil_params_big_dim(p), gw = k1 * p->poly_size;
    return pk->pfpks + (((size_t)c * (big + 1) + i) * wp->pp_level + j) * gw;
}

/* pfpks's blocks: PFPKS_ROWS key rows by PFPKS_WORDS output words (256
 * KiB), copied into c->panel a cache line of each row after another (the
 * rows of a block are a GLWE apart in the key), so that pfpks_lanes reads
 * them in order, from L2, once per group of lanes. */
#define PFPKS_ROWS 256u
#define PFPKS_WORDS 128u
#define PFPKS_LINE 8u /* words of a panel column */

struct veil_wop_ctx {
    const veil_wop_params *wp;
    uint32_t D; /* the master key's dimension: values have D + 1 words */
    veil_pbs_ctx *pbs;
    veil_fft *fft;
    const veil_fft_kernels *kern;
    int64_t *digits;  /* (k+1) l_cb N */
    double *fd;       /* (k+1) l_cb N: their transforms */
    double *facc;     /* (k+1) N */
    double *ftmp;     /* N */
    uint64_t *diff;   /* (k+1) N */
    uint64_t *glwe;   /* (w l_cb + 1) x (k+1) N: the packing keyswitch outputs (pfpks) */
    uint64_t *levels; /* VEIL_WOP_MAX_WIDTH l_cb x (D + 1): every bit's level reads */
    uint32_t *pdig;   /* (kN + 1) l_pp x (VEIL_WOP_MAX_WIDTH l_cb + 1): their packing digits */
    uint64_t *panel;  /* a block of the packing key (pfpks) */
    uint64_t *cur;    /* D + 1: the value, its extracted bits taken off */
    uint64_t *tmp;    /* D + 1 */
    uint64_t *reads;  /* (1 + l_cb) x (D + 1): a bit's reads (multi_read) */
    uint64_t *small;  /* n + 1: a bit switched to 2N / slots */
    uint64_t *bits;   /* VEIL_WOP_MAX_WIDTH x (n + 1): each bit at 2^63, small key */
    double *ggsw;     /* VEIL_WOP_MAX_WIDTH x (k+1) l_cb (k+1) N: each bit's GGSW */
    uint64_t *nodes;  /* 2^(VEIL_WOP_MAX_WIDTH - nu) x (k+1) N: the packing tree */
    uint64_t *lut;    /* N: a bit's test polynomial */
};

veil_status veil_wop_ctx_new(const veil_wop_params *wp, uint32_t in_dim, veil_wop_ctx **out) {
    if (!wp || !out) return veil_error(VEIL_ERR_ARG, "veil_wop_ctx_new: NULL argument");
    const veil_params *p = &wp->pbs;
    if (wp->pp_base_log < 1 || wp->pp_base_log > 31) /* pfpks_digits: offset digits below 2^32 */
        return veil_error(VEIL_ERR_ARG, "veil_wop_ctx_new: %s: packing base 2^%u, 2^1 to 2^31",
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
        c->glwe = malloc(sizeof(uint64_t) * (VEIL_WOP_MAX_WIDTH * lc + 1) * k1 * N);
        c->levels = malloc(sizeof(uint64_t) * VEIL_WOP_MAX_WIDTH * lc * big1);
        c->pdig = malloc(sizeof(uint32_t) * (veil_params_big_dim(p) + 1) * wp->pp_level *
                         (VEIL_WOP_MAX_WIDTH * lc + 1));
        c->panel = malloc(sizeof(uint64_t) * PFPKS_ROWS * PFPKS_WORDS);
        c->cur = malloc(sizeof(uint64_t) * big1);
        c->tmp = malloc(sizeof(uint64_t) * big1);
        c->reads = malloc(sizeof(uint64_t) * (1 + lc) * big1);
        c->small = malloc(sizeof(uint64_t) * n1);
        c->bits = malloc(sizeof(uint64_t) * VEIL_WOP_MAX_WIDTH * n1);
        c->ggsw = veil_fft_alloc(sizeof(double) * VEIL_WOP_MAX_WIDTH * k1 * lc * k1 * N);
        c->nodes = malloc(sizeof(uint64_t) * leaves * k1 * N);
        c->lut = malloc(sizeof(uint64_t) * N);
        if (!c->digits || !c->fd || !c->facc || !c->ftmp || !c->diff || !c->glwe || !c->levels ||
            !c->pdig || !c->panel || !c->cur || !c->tmp || !c->reads || !c->small || !c->bits ||
            !c->ggsw || !c->nodes || !c->lut)
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
    free(c->levels);
    free(c->pdig);
    free(c->panel);
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

/* The packing digits of count values (in, D + 1 words each, PBS outputs of
 * the partition: their kN mask words, 0 past them, zero-extended to D, and
 * the body at D), offset to be unsigned: c->pdig row r = (i, j), i <= kN
 * (kN: the body), j < l_pp, holds d + 2^(B-1) (B = pp_base_log <= 31, so
 * below 2^32) for digit d = j of word i of value v at v < count, and 2^(B-1)
 * at count (the offset's own lane: its sum is what the offsets added). */
static void pfpks_digits(veil_wop_ctx *c, const uint64_t *in, uint32_t count) {
    const veil_wop_params *wp = c->wp;
    const size_t big = veil_params_big_dim(&wp->pbs), in1 = (size_t)c->D + 1, lp = wp->pp_level;
    const size_t lanes = (size_t)count + 1;
    const int64_t half = (int64_t)1 << (wp->pp_base_log - 1);
    int64_t d[64];
    for (size_t i = 0; i <= big; i++) {
        for (uint32_t v = 0; v < count; v++) {
            veil_gadget_decompose(in[v * in1 + (i < big ? i : c->D)], wp->pp_base_log, lp, d);
            for (size_t j = 0; j < lp; j++)
                c->pdig[(i * lp + j) * lanes + v] = (uint32_t)(d[j] + half);
        }
        for (size_t j = 0; j < lp; j++)
            c->pdig[(i * lp + j) * lanes + count] = (uint32_t)half;
    }
}

/* out[v] (v < count, (k + 1) N words each) = GLWE of P_fc times the phase
 * of value v, from the digits pfpks_digits made: -sum_r d K_r = sum_r
 * 2^(B-1) K_r - sum_r (d + 2^(B-1)) K_r, the first sum being lane count's
 * (out[count]). The values (every bit's levels) run in lockstep, each key
 * row read from memory once for all. */
static void pfpks(const veil_wop_ctx *c, const veil_pbs_key *pk, uint32_t fc, uint32_t count,
                  uint64_t *out) {
    const veil_wop_params *wp = c->wp;
    const veil_params *p = pk->params;
    const size_t gw = (size_t)(p->glwe_dim + 1) * p->poly_size;
    const uint32_t rows = (veil_params_big_dim(p) + 1) * wp->pp_level, lanes = count + 1;
    const uint64_t *K = pfpks_at(pk, wp, fc, 0, 0);
    VEIL_ASSERT(gw % PFPKS_WORDS == 0); /* N a power of 2 from 512 (veil_params) */
    memset(out, 0, sizeof(uint64_t) * gw * lanes);
    for (uint32_t r0 = 0; r0 < rows; r0 += PFPKS_ROWS) {
        const uint32_t rc = rows - r0 < PFPKS_ROWS ? rows - r0 : PFPKS_ROWS;
        for (size_t t0 = 0; t0 < gw; t0 += PFPKS_WORDS) {
            for (uint32_t r = 0; r < rc; r++)
                for (uint32_t q = 0; q < PFPKS_WORDS / PFPKS_LINE; q++)
                    memcpy(c->panel + ((size_t)q * rc + r) * PFPKS_LINE,
                           K + (size_t)(r0 + r) * gw + t0 + q * PFPKS_LINE,
                           sizeof(uint64_t) * PFPKS_LINE);
            for (uint32_t q = 0; q < PFPKS_WORDS / PFPKS_LINE; q++)
                c->kern->pfpks_lanes(out + t0 + q * PFPKS_LINE, gw,
                                     c->panel + (size_t)q * rc * PFPKS_LINE, PFPKS_LINE,
                                     c->pdig + (size_t)r0 * lanes, rc, lanes, PFPKS_LINE);
        }
    }
    const uint64_t *corr = out + (size_t)count * gw;
    for (uint32_t v = 0; v < count; v++)
        for (size_t t = 0; t < gw; t++)
            out[v * gw + t] = corr[t] - out[v * gw + t];
}

/* Every bit's GGSW, in the Fourier layout mac_ggsw reads (ggsw: w of
 * them), from its l_cb level reads in c->levels (D + 1 words each, bit
 * g_j - g_j/2 (+-g_j/2 read, g_j/2 added here): bit g_j). */
static void circuit_bootstrap(veil_wop_ctx *c, const veil_pbs_key *pk, unsigned w, double *ggsw) {
    const veil_wop_params *wp = c->wp;
    const veil_params *p = &wp->pbs;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, lc = wp->cbs_level;
    const uint32_t polys = k1 * lc * k1, count = w * lc;
    const size_t ggsw_doubles = (size_t)polys * N;
    for (uint32_t v = 0; v < count; v++)
        c->levels[(size_t)v * (c->D + 1) + c->D] += (uint64_t)1
                                                    << (63 - wp->cbs_base_log * (v % lc + 1));
    pfpks_digits(c, c->levels, count);
    for (uint32_t col = 0; col < k1; col++) {
        pfpks(c, pk, col, count, c->glwe);
        for (uint32_t v = 0; v < count; v++)
            for (uint32_t q = 0; q < k1; q++) {
                veil_fft_forward_torus(c->fft, c->glwe + ((size_t)v * k1 + q) * N, c->ftmp);
                veil_fft_ggsw_put(N, polys, (col * lc + v % lc) * k1 + q, c->ftmp,
                                  ggsw + (v / lc) * ggsw_doubles);
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

veil_status veil_wop_key_rows_check(const char *fn, const veil_pbs_key *pk) {
    if (pk->ksk_rows < veil_params_big_dim(pk->params))
        return veil_error(VEIL_ERR_ARG,
                          "%s: a keyswitching key of %u rows, and the bit reads keyswitch %u "
                          "(the k N of %s)",
                          fn, pk->ksk_rows, veil_params_big_dim(pk->params), pk->params->id);
    return VEIL_OK;
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
    VEIL_TRY(veil_wop_key_rows_check(fn, pk));
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
        if (ggsw)
            memcpy(c->levels + (size_t)i * lc * (D + 1), c->reads + (D + 1),
                   sizeof(uint64_t) * lc * (D + 1));
    }
    if (ggsw) circuit_bootstrap(c, pk, w, ggsw);
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
