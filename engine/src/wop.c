/* WoP-PBS on the CPU (veil/wop.h): bit extraction, circuit bootstrapping,
 * vertical packing. */
#include "fft/fft_internal.h"
#include "internal.h"
#include "veil/fft.h"
#include "veil/gadget.h"
#include "veil/wop.h"

#include <sodium.h>
#include <string.h>

size_t veil_wop_pfpks_bytes(const veil_wop_params *wp) {
    const veil_params *p = &wp->pbs;
    const size_t k1 = p->glwe_dim + 1, big = veil_params_big_dim(p);
    return k1 * (big + 1) * wp->pp_level * k1 * p->poly_size * sizeof(uint64_t);
}

/* GLWE of function c, input coefficient i (i = kN: the body), level j */
static uint64_t *pfpks_at(const veil_wop_key *key, uint32_t c, size_t i, uint32_t j) {
    const veil_params *p = &key->wp->pbs;
    const size_t k1 = p->glwe_dim + 1, big = veil_params_big_dim(p), gw = k1 * p->poly_size;
    return key->pfpks + (((size_t)c * (big + 1) + i) * key->wp->pp_level + j) * gw;
}

static void derive_seed(const uint8_t seed[VEIL_SEED_BYTES], const char *dom,
                        uint8_t out[VEIL_SEED_BYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, seed, VEIL_SEED_BYTES, VEIL_SEED_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)dom, strlen(dom) + 1);
    crypto_generichash_final(&st, out, VEIL_SEED_BYTES);
}

/* The packing keys: K_{c,i,j} = GLWE(P_c s'_i g_j). The message polynomial
 * is key-derived: guarded memory, wiped. Branch-free in the key bits. */
static veil_status pfpks_fill(const veil_secret_key *sk, veil_wop_key *key,
                              const uint8_t *noise_seed) {
    const veil_wop_params *wp = key->wp;
    const veil_params *p = &wp->pbs;
    const uint32_t N = p->poly_size, k = p->glwe_dim, big = veil_params_big_dim(p);
    uint8_t seed[VEIL_SEED_BYTES], nseed[VEIL_SEED_BYTES];
    derive_seed(key->ek->mask_seed, "veil/wop-pfpks-mask/v1", seed);
    if (noise_seed) derive_seed(noise_seed, "veil/wop-pfpks-noise/v1", nseed);
    veil_csprng *mask = NULL, *noise = NULL;
    veil_glwe_enc *enc = NULL;
    uint64_t *msg = sodium_allocarray(N, sizeof(uint64_t));
    veil_status s = msg ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "WoP key: out of memory");
    if (s == VEIL_OK) s = veil_csprng_new(seed, &mask);
    if (s == VEIL_OK) s = veil_csprng_new(noise_seed ? nseed : NULL, &noise);
    if (s == VEIL_OK) s = veil_glwe_enc_new(p, sk->master, &enc);
    const uint64_t *S = sk->master;
    for (uint32_t c = 0; c <= k && s == VEIL_OK; c++)
        for (size_t i = 0; i <= big; i++)
            for (uint32_t j = 0; j < wp->pp_level; j++) {
                const uint64_t g = (uint64_t)1 << (64 - wp->pp_base_log * (j + 1));
                /* s'_i g: S_i g for i < kN, -g for the body's coefficient */
                const uint64_t sg = i < big ? g & (0 - S[i]) : 0 - g;
                if (c < k) {
                    for (uint32_t t = 0; t < N; t++)
                        msg[t] = 0 - (sg & (0 - S[(size_t)c * N + t]));
                } else {
                    memset(msg, 0, sizeof(uint64_t) * N);
                    msg[0] = sg;
                }
                veil_glwe_enc_encrypt(enc, mask, noise, msg, pfpks_at(key, c, i, j));
            }
    veil_glwe_enc_free(enc);
    sodium_free(msg);
    veil_csprng_free(mask);
    veil_csprng_free(noise);
    sodium_memzero(nseed, sizeof nseed);
    return s;
}

veil_status veil_wop_key_new(const veil_secret_key *sk, const veil_wop_params *wp,
                             const uint8_t *mask_seed, const uint8_t *noise_seed,
                             veil_wop_key **out) {
    if (!sk || !wp || !out) return veil_error(VEIL_ERR_ARG, "veil_wop_key_new: NULL argument");
    if (veil_secret_key_params(sk) != &wp->pbs)
        return veil_error(VEIL_ERR_PARAMS,
                          "veil_wop_key_new: the secret key's partition 0 is %s, not the WoP "
                          "set %s",
                          veil_secret_key_params(sk)->id, wp->id);
    veil_wop_key *key = calloc(1, sizeof *key);
    if (!key) return veil_error(VEIL_ERR_NOMEM, "veil_wop_key_new: out of memory");
    key->wp = wp;
    veil_status s =
        veil_eval_key_new_rows(sk, NULL, VEIL_KEY_FOURIER, mask_seed, noise_seed, &key->ek);
    if (s == VEIL_OK) {
        key->pfpks = veil_fft_alloc(veil_wop_pfpks_bytes(wp));
        if (!key->pfpks)
            s = veil_error(VEIL_ERR_NOMEM,
                           "veil_wop_key_new: out of memory (%zu bytes "
                           "of packing keys)",
                           veil_wop_pfpks_bytes(wp));
    }
    if (s == VEIL_OK) s = pfpks_fill(sk, key, noise_seed);
    if (s != VEIL_OK) {
        veil_wop_key_free(key);
        return s;
    }
    *out = key;
    return VEIL_OK;
}

void veil_wop_key_free(veil_wop_key *key) {
    if (!key) return;
    veil_eval_key_free(key->ek);
    veil_fft_dealloc(key->pfpks);
    free(key);
}

struct veil_wop_ctx {
    const veil_wop_params *wp;
    veil_pbs_ctx *pbs;
    veil_fft *fft;
    const veil_fft_kernels *kern;
    int64_t *digits; /* (k+1) l_cb N */
    double *fd;      /* (k+1) l_cb N: their transforms */
    double *facc;    /* (k+1) N */
    double *ftmp;    /* N */
    uint64_t *diff;  /* (k+1) N */
    uint64_t *glwe;  /* (k+1) N: a packing keyswitch's output */
    uint64_t *cur;   /* kN + 1: the value, its extracted bits taken off */
    uint64_t *tmp;   /* kN + 1 */
    uint64_t *big;   /* kN + 1: a PBS output */
    uint64_t *bits;  /* VEIL_WOP_MAX_WIDTH x (n + 1): each bit at 2^63, small key */
    double *ggsw;    /* VEIL_WOP_MAX_WIDTH x (k+1) l_cb (k+1) N: each bit's GGSW */
    uint64_t *nodes; /* 2^(VEIL_WOP_MAX_WIDTH - nu) x (k+1) N: the packing tree */
    uint64_t *lut;   /* N: a constant test polynomial */
};

veil_status veil_wop_ctx_new(const veil_wop_params *wp, veil_wop_ctx **out) {
    if (!wp || !out) return veil_error(VEIL_ERR_ARG, "veil_wop_ctx_new: NULL argument");
    const veil_params *p = &wp->pbs;
    const size_t N = p->poly_size, k1 = p->glwe_dim + 1, lc = wp->cbs_level;
    const size_t big1 = (size_t)veil_params_big_dim(p) + 1, n1 = (size_t)p->lwe_dim + 1;
    const uint32_t nu = (uint32_t)__builtin_ctz(p->poly_size);
    const size_t leaves = VEIL_WOP_MAX_WIDTH > nu ? (size_t)1 << (VEIL_WOP_MAX_WIDTH - nu) : 1;
    veil_wop_ctx *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "veil_wop_ctx_new: out of memory");
    c->wp = wp;
    veil_status s = veil_pbs_ctx_new(p, &c->pbs);
    if (s == VEIL_OK) s = veil_fft_new(p->poly_size, &c->fft);
    if (s == VEIL_OK) {
        c->kern = veil_fft_loop_kernels(c->fft);
        c->digits = malloc(sizeof(int64_t) * k1 * lc * N);
        c->fd = veil_fft_alloc(sizeof(double) * k1 * lc * N);
        c->facc = veil_fft_alloc(sizeof(double) * k1 * N);
        c->ftmp = veil_fft_alloc(sizeof(double) * N);
        c->diff = malloc(sizeof(uint64_t) * k1 * N);
        c->glwe = malloc(sizeof(uint64_t) * k1 * N);
        c->cur = malloc(sizeof(uint64_t) * big1);
        c->tmp = malloc(sizeof(uint64_t) * big1);
        c->big = malloc(sizeof(uint64_t) * big1);
        c->bits = malloc(sizeof(uint64_t) * VEIL_WOP_MAX_WIDTH * n1);
        c->ggsw = veil_fft_alloc(sizeof(double) * VEIL_WOP_MAX_WIDTH * k1 * lc * k1 * N);
        c->nodes = malloc(sizeof(uint64_t) * leaves * k1 * N);
        c->lut = malloc(sizeof(uint64_t) * N);
        if (!c->digits || !c->fd || !c->facc || !c->ftmp || !c->diff || !c->glwe || !c->cur ||
            !c->tmp || !c->big || !c->bits || !c->ggsw || !c->nodes || !c->lut)
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
    free(c->big);
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
    n.pbs = (w - 1) + w * wp->cbs_level;
    n.keyswitches = w;
    n.packing_keyswitches = w * wp->cbs_level * (wp->pbs.glwe_dim + 1);
    n.external_products = ((1u << (w - low)) - 1) + low;
    return n;
}

/* A sign read of a small LWE whose bit sits at 2^63 (the body offset by a
 * quarter torus, so the phase is centred in its half): coefficient 0 of the
 * rotated constant polynomial v is v for bit 0 and -v for bit 1
 * (X^N = -1). */
static void sign_pbs(veil_wop_ctx *c, const veil_wop_key *key, uint64_t v, const uint64_t *small,
                     uint64_t *out) {
    const uint32_t N = c->wp->pbs.poly_size;
    for (uint32_t t = 0; t < N; t++)
        c->lut[t] = v;
    const veil_lut lut = {
        .in_bits = 1, .in_offset = (uint64_t)1 << 62, .poly = c->lut, .poly_size = N};
    veil_pbs(c->pbs, veil_eval_key_part(key->ek, 0), &lut, small, out);
}

/* out = GLWE of P_c times in's phase (in: kN + 1 words) */
static void pfpks(const veil_wop_key *key, uint32_t fc, const uint64_t *in, uint64_t *out) {
    const veil_wop_params *wp = key->wp;
    const veil_params *p = &wp->pbs;
    const size_t gw = (size_t)(p->glwe_dim + 1) * p->poly_size;
    const size_t big = veil_params_big_dim(p);
    int64_t d[64];
    memset(out, 0, sizeof(uint64_t) * gw);
    for (size_t i = 0; i <= big; i++) {
        veil_gadget_decompose(in[i], wp->pp_base_log, wp->pp_level, d);
        for (uint32_t j = 0; j < wp->pp_level; j++) {
            if (!d[j]) continue;
            const uint64_t dj = (uint64_t)d[j];
            const uint64_t *K = pfpks_at(key, fc, i, j);
            for (size_t t = 0; t < gw; t++)
                out[t] -= dj * K[t];
        }
    }
}

/* The GGSW of the bit in `small` (n + 1 words, bit at 2^63), in the
 * Fourier layout mac_ggsw reads. */
static void circuit_bootstrap(veil_wop_ctx *c, const veil_wop_key *key, const uint64_t *small,
                              double *ggsw) {
    const veil_wop_params *wp = c->wp;
    const veil_params *p = &wp->pbs;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, lc = wp->cbs_level;
    const uint32_t big = veil_params_big_dim(p), polys = k1 * lc * k1;
    for (uint32_t j = 0; j < lc; j++) {
        /* bit * g_j: the sign read gives -g_j/2 for bit 0, +g_j/2 for bit 1 */
        const uint64_t half = (uint64_t)1 << (63 - wp->cbs_base_log * (j + 1));
        sign_pbs(c, key, 0 - half, small, c->big);
        c->big[big] += half;
        for (uint32_t col = 0; col < k1; col++) {
            pfpks(key, col, c->big, c->glwe);
            const uint32_t r = col * lc + j;
            for (uint32_t q = 0; q < k1; q++) {
                veil_fft_forward_torus(c->fft, c->glwe + (size_t)q * N, c->ftmp);
                veil_fft_ggsw_put(N, polys, r * k1 + q, c->ftmp, ggsw);
            }
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

static veil_status check_call(const char *fn, veil_wop_ctx *c, const veil_wop_key *key,
                              unsigned w) {
    if (key->wp != c->wp)
        return veil_error(VEIL_ERR_ARG, "%s: a key of %s with a context of %s", fn, key->wp->id,
                          c->wp->id);
    if (w < 1 || w > VEIL_WOP_MAX_WIDTH)
        return veil_error(VEIL_ERR_ARG, "%s: %u input bits (1 to %u)", fn, w, VEIL_WOP_MAX_WIDTH);
    return VEIL_OK;
}

/* Step 1: bits gets w small LWEs (n + 1 words each), least significant
 * bit first */
static void extract_bits(veil_wop_ctx *c, const veil_wop_key *key, unsigned w, int in_signed,
                         const uint64_t *in, uint64_t *bits) {
    const veil_params *p = &c->wp->pbs;
    const veil_pbs_key *pk = veil_eval_key_part(key->ek, 0);
    const uint32_t big = veil_params_big_dim(p);
    const size_t n1 = (size_t)p->lwe_dim + 1;
    memcpy(c->cur, in, sizeof(uint64_t) * (big + 1));
    if (in_signed) c->cur[big] += (uint64_t)1 << 62; /* 2^(w-1) delta: x + 2^(w-1) */
    for (uint32_t i = 0; i < w; i++) {
        veil_lwe_mul_scalar(c->tmp, c->cur, (int64_t)1 << (w - i), big);
        veil_keyswitch(pk, c->tmp, bits + i * n1);
        if (i + 1 == w) break;
        /* bit i's place is 2^(63 - w + i): the read gives v (bit 0) or -v
         * (bit 1), v = half the place; cur - bit place = cur + out - v */
        const uint64_t v = (uint64_t)1 << (62 - w + i);
        sign_pbs(c, key, v, bits + i * n1, c->big);
        c->big[big] -= v;
        veil_lwe_add(c->cur, c->cur, c->big, big);
    }
}

veil_status veil_wop_extract_bits(veil_wop_ctx *c, const veil_wop_key *key, unsigned w,
                                  int in_signed, const uint64_t *in, uint64_t *bits) {
    if (!c || !key || !in || !bits)
        return veil_error(VEIL_ERR_ARG, "veil_wop_extract_bits: NULL argument");
    VEIL_TRY(check_call("veil_wop_extract_bits", c, key, w));
    extract_bits(c, key, w, in_signed, in, bits);
    return VEIL_OK;
}

veil_status veil_wop_pbs(veil_wop_ctx *c, const veil_wop_key *key, const int64_t *table, unsigned w,
                         int in_signed, uint64_t out_delta, const uint64_t *in, uint64_t *out) {
    if (!c || !key || !table || !in || !out)
        return veil_error(VEIL_ERR_ARG, "veil_wop_pbs: NULL argument");
    VEIL_TRY(check_call("veil_wop_pbs", c, key, w));
    const veil_wop_params *wp = c->wp;
    const veil_params *p = &wp->pbs;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, big = veil_params_big_dim(p);
    const size_t n1 = (size_t)p->lwe_dim + 1, gw = (size_t)k1 * N;
    const size_t ggsw_doubles = (size_t)k1 * wp->cbs_level * k1 * N;
    const uint32_t lg = (uint32_t)__builtin_ctz(N), nu = w < lg ? w : lg, top = w - nu;

    /* 1. bit extraction */
    extract_bits(c, key, w, in_signed, in, c->bits);
    /* 2. each bit's GGSW */
    for (uint32_t i = 0; i < w; i++)
        circuit_bootstrap(c, key, c->bits + i * n1, c->ggsw + i * ggsw_doubles);
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
    /* sample extraction of coefficient 0 */
    for (uint32_t q = 0; q + 1 < k1; q++) {
        const uint64_t *A = acc + (size_t)q * N;
        uint64_t *o = out + (size_t)q * N;
        o[0] = A[0];
        for (uint32_t j = 1; j < N; j++)
            o[j] = 0 - A[N - j];
    }
    out[big] = acc[(size_t)(k1 - 1) * N];
    return VEIL_OK;
}
