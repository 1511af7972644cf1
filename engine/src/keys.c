/* Secret keys and evaluation keys (bootstrapping key, keyswitching key). */
#include "internal.h"
#include "veil/fft.h"
#include "veil/ks32.h"
#include "veil/serialize.h"
#include "veil/tfhe.h"

#include <math.h>
#include <string.h>

#include <sodium.h>

veil_status veil_partitions_check(const veil_params *const *parts, uint32_t n_parts,
                                  const char *what) {
    if (!parts || n_parts < 1 || n_parts > VEIL_MAX_PARTITIONS)
        return veil_error(VEIL_ERR_ARG, "%s: %u partitions, expected 1..%u", what, n_parts,
                          VEIL_MAX_PARTITIONS);
    for (uint32_t i = 0; i < n_parts; i++) {
        if (!parts[i]) return veil_error(VEIL_ERR_ARG, "%s: partition %u has no set", what, i);
        const uint32_t g = parts[i]->grouping;
        if (g == 1 || g > VEIL_MULTIBIT_MAX_G || (g && parts[i]->lwe_dim % g))
            return veil_error(VEIL_ERR_PARAMS,
                              "%s: partition %u (%s): grouping factor %u with n = %u (multi-bit "
                              "PBS takes g = 2..%u dividing n)",
                              what, i, parts[i]->id, g, parts[i]->lwe_dim, VEIL_MULTIBIT_MAX_G);
        if (veil_params_big_dim(parts[i]) > veil_params_big_dim(parts[0]))
            return veil_error(VEIL_ERR_PARAMS,
                              "%s: partition %u (%s) has k*N = %u, wider than partition 0 "
                              "(%s, k*N = %u): partition 0 must hold the widest key",
                              what, i, parts[i]->id, veil_params_big_dim(parts[i]), parts[0]->id,
                              veil_params_big_dim(parts[0]));
    }
    return VEIL_OK;
}

/* Seed of key part `index` (0: master, 1 + X: small key of partition X):
 * BLAKE2b-256 keyed with the key seed over a domain string and the index. */
static void sk_part_seed(const uint8_t seed[VEIL_SEED_BYTES], uint32_t index,
                         uint8_t out[VEIL_SEED_BYTES]) {
    static const char dom[] = "veil/secret-key-part/v1";
    uint8_t idx[4] = {(uint8_t)index, (uint8_t)(index >> 8), (uint8_t)(index >> 16),
                      (uint8_t)(index >> 24)};
    crypto_generichash_state st;
    crypto_generichash_init(&st, seed, VEIL_SEED_BYTES, VEIL_SEED_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)dom, sizeof dom);
    crypto_generichash_update(&st, idx, sizeof idx);
    crypto_generichash_final(&st, out, VEIL_SEED_BYTES);
    sodium_memzero(&st, sizeof st);
}

static veil_status fill_bits_from(const uint8_t seed[VEIL_SEED_BYTES], uint32_t index,
                                  uint64_t *bits, size_t count) {
    uint8_t ps[VEIL_SEED_BYTES];
    sk_part_seed(seed, index, ps);
    veil_csprng *rng = NULL;
    veil_status s = veil_csprng_new(ps, &rng);
    sodium_memzero(ps, sizeof ps);
    if (s != VEIL_OK) return s;
    veil_csprng_fill_bits(rng, bits, count);
    veil_csprng_free(rng);
    return VEIL_OK;
}

veil_status veil_secret_key_new_set(const veil_params *const *parts, uint32_t n_parts,
                                    const uint8_t *seed, veil_secret_key **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_secret_key_new: out is NULL");
    VEIL_TRY(veil_partitions_check(parts, n_parts, "secret key"));
    if (sodium_init() < 0) return veil_error(VEIL_ERR_INTERNAL, "libsodium failed to initialise");
    veil_secret_key *sk = calloc(1, sizeof *sk);
    if (!sk) return veil_error(VEIL_ERR_NOMEM, "veil_secret_key_new: out of memory");
    sk->params = parts[0];
    sk->n_parts = n_parts;
    sk->dim = veil_params_big_dim(parts[0]);
    veil_status s = VEIL_OK;
    /* Guarded pages (libsodium): locked out of swap and core dumps, guard
     * pages around, wiped by sodium_free. */
    sk->master = sodium_allocarray(sk->dim, sizeof *sk->master);
    if (!sk->master) s = veil_error(VEIL_ERR_NOMEM, "veil_secret_key_new: out of memory");
    for (uint32_t i = 0; i < n_parts && s == VEIL_OK; i++) {
        sk->parts[i] = parts[i];
        sk->small[i] = sodium_allocarray(parts[i]->lwe_dim, sizeof *sk->small[i]);
        if (!sk->small[i]) s = veil_error(VEIL_ERR_NOMEM, "veil_secret_key_new: out of memory");
    }
    /* One seed, drawn from the OS when not given, then one stream per part. */
    uint8_t *root = sodium_malloc(VEIL_SEED_BYTES);
    if (s == VEIL_OK && !root) s = veil_error(VEIL_ERR_NOMEM, "veil_secret_key_new: out of memory");
    if (s == VEIL_OK) {
        if (seed)
            memcpy(root, seed, VEIL_SEED_BYTES);
        else
            veil_seed_random(root);
        s = fill_bits_from(root, 0, sk->master, sk->dim);
        for (uint32_t i = 0; i < n_parts && s == VEIL_OK; i++)
            s = fill_bits_from(root, 1 + i, sk->small[i], parts[i]->lwe_dim);
    }
    sodium_free(root);
    if (s != VEIL_OK) {
        veil_secret_key_free(sk);
        return s;
    }
    *out = sk;
    return VEIL_OK;
}

veil_status veil_secret_key_new(const veil_params *p, const uint8_t *seed, veil_secret_key **out) {
    if (!p || !out) return veil_error(VEIL_ERR_ARG, "veil_secret_key_new: params or out is NULL");
    const veil_params *parts[1] = {p};
    return veil_secret_key_new_set(parts, 1, seed, out);
}

void veil_secret_key_free(veil_secret_key *sk) {
    if (!sk) return;
    sodium_free(sk->master); /* wipes; accepts NULL */
    for (uint32_t i = 0; i < VEIL_MAX_PARTITIONS; i++)
        sodium_free(sk->small[i]);
    sodium_memzero(sk, sizeof *sk);
    free(sk);
}

const veil_params *veil_secret_key_params(const veil_secret_key *sk) {
    return sk ? sk->params : NULL;
}

volatile uint64_t *veil_secret_key_guard_for_test(veil_secret_key *sk) {
    return sk->master + sk->dim;
}

uint32_t veil_secret_key_n_partitions(const veil_secret_key *sk) {
    return sk ? sk->n_parts : 0;
}

const veil_params *veil_secret_key_partition(const veil_secret_key *sk, uint32_t i) {
    return sk && i < sk->n_parts ? sk->parts[i] : NULL;
}

size_t veil_eval_key_bsk_ggsws(const veil_params *p) {
    if (p->grouping >= 2) return ((size_t)p->lwe_dim / p->grouping) << p->grouping;
    return p->lwe_dim;
}

size_t veil_eval_key_bsk_words(const veil_params *p) {
    size_t k1 = p->glwe_dim + 1;
    return veil_eval_key_bsk_ggsws(p) * k1 * p->pbs_level * k1 * p->poly_size;
}

size_t veil_eval_key_ksk_words(const veil_params *p, uint32_t rows) {
    return (size_t)rows * p->ks_level * (p->lwe_dim + 1);
}

size_t veil_eval_key_pfpks_words(const veil_params *p) {
    const veil_wop_params *wp = veil_wop_params_of(p);
    if (!wp) return 0;
    const size_t k1 = p->glwe_dim + 1;
    return k1 * ((size_t)veil_params_big_dim(p) + 1) * wp->pp_level * k1 * p->poly_size;
}

size_t veil_eval_key_prepared_bytes(const veil_params *p, uint32_t rows) {
    /* one domain (VEIL_KEY_FOURIER or VEIL_KEY_STANDARD; a multi-bit
     * partition: the standard one); a WoP partition's packing keys in the
     * standard domain whatever the choice */
    return 8 * veil_eval_key_bsk_words(p) + 4 * veil_eval_key_ksk_words(p, rows) +
           8 * veil_eval_key_pfpks_words(p);
}

veil_status veil_eval_key_alloc(const veil_params *const *parts, uint32_t n_parts,
                                const uint32_t *ksk_rows, veil_eval_key **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_eval_key_alloc: out is NULL");
    VEIL_TRY(veil_partitions_check(parts, n_parts, "evaluation key"));
    for (uint32_t i = 0; ksk_rows && i < n_parts; i++)
        if (ksk_rows[i] < 1 || ksk_rows[i] > veil_params_big_dim(parts[0]))
            return veil_error(VEIL_ERR_ARG,
                              "evaluation key: partition %u's keyswitching key has %u rows, not "
                              "1..%u (the master key's k*N)",
                              i, ksk_rows[i], veil_params_big_dim(parts[0]));
    veil_eval_key *ek = calloc(1, sizeof *ek);
    if (ek) ek->parts = calloc(n_parts, sizeof *ek->parts);
    if (!ek || !ek->parts) {
        free(ek);
        return veil_error(VEIL_ERR_NOMEM, "veil_eval_key_alloc: out of memory");
    }
    ek->params = parts[0];
    ek->n_parts = n_parts;
    const uint32_t D = veil_params_big_dim(parts[0]);
    for (uint32_t i = 0; i < n_parts; i++) {
        veil_pbs_key *pk = &ek->parts[i];
        const veil_params *p = parts[i];
        pk->params = p;
        pk->in_dim = D;
        pk->ksk_rows = ksk_rows ? ksk_rows[i] : D;
        /* aligned as the Fourier key, which a cpu-only key makes in its
         * place (veil_eval_key_prepare) */
        const size_t bw = veil_eval_key_bsk_words(p);
        pk->bsk = veil_fft_alloc(bw * sizeof *pk->bsk);
        if (pk->bsk) memset(pk->bsk, 0, bw * sizeof *pk->bsk);
        const size_t kw = veil_eval_key_ksk_words(p, pk->ksk_rows);
        pk->ksk32 = veil_fft_alloc_huge(kw * sizeof *pk->ksk32);
        if (pk->ksk32) memset(pk->ksk32, 0, kw * sizeof *pk->ksk32);
        const size_t pw = veil_eval_key_pfpks_words(p);
        if (pw) {
            pk->pfpks = veil_fft_alloc(pw * sizeof *pk->pfpks);
            if (pk->pfpks) memset(pk->pfpks, 0, pw * sizeof *pk->pfpks);
        }
        if (!pk->bsk || !pk->ksk32 || (pw && !pk->pfpks)) {
            const size_t mib = veil_eval_key_prepared_bytes(p, pk->ksk_rows) >> 20;
            veil_eval_key_free(ek);
            return veil_error(VEIL_ERR_NOMEM,
                              "evaluation key for partition %u (%s): out of memory (%zu MiB)", i,
                              p->id, mib);
        }
    }
    *out = ek;
    return VEIL_OK;
}

void veil_eval_key_free(veil_eval_key *ek) {
    if (!ek) return;
    for (uint32_t i = 0; ek->parts && i < ek->n_parts; i++) {
        veil_fft_dealloc(ek->parts[i].bsk);
        veil_fft_dealloc(ek->parts[i].ksk32);
        veil_fft_dealloc(ek->parts[i].bsk_fourier);
        veil_fft_dealloc(ek->parts[i].pfpks);
    }
    free(ek->parts);
    free(ek);
}

void veil_eval_key_partition_seed(const uint8_t set_seed[VEIL_SEED_BYTES], uint32_t i,
                                  uint8_t out[VEIL_SEED_BYTES]) {
    static const char dom[] = "veil/eval-key-partition-mask/v1";
    uint8_t idx[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
    crypto_generichash_state st;
    crypto_generichash_init(&st, set_seed, VEIL_SEED_BYTES, VEIL_SEED_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)dom, sizeof dom);
    crypto_generichash_update(&st, idx, sizeof idx);
    crypto_generichash_final(&st, out, VEIL_SEED_BYTES);
}

/* What a partition's mask stream feeds besides the BSK masks: after_bsk once
 * the BSK's masks are in place, then ksk_entry for each KSK entry e (entry
 * i * l_ks + j) with its n 64-bit mask words, then (a WoP partition) the
 * packing keys' masks in place and after_pfpks. */
typedef struct mask_hooks {
    veil_status (*after_bsk)(void *ctx, veil_pbs_key *pk);
    void (*ksk_entry)(void *ctx, veil_pbs_key *pk, size_t e, const uint64_t *mask);
    void *ctx;
    veil_status (*after_pfpks)(void *ctx, veil_pbs_key *pk);
} mask_hooks;

/* Partition x's mask stream, in the one fixed order (veil/tfhe.h,
 * veil_eval_key_regenerate_masks): its BSK's masks written in place, then
 * each KSK entry's masks handed to h->ksk_entry. */
static veil_status partition_masks(veil_eval_key *ek, uint32_t x, const mask_hooks *h) {
    veil_pbs_key *pk = &ek->parts[x];
    if (!pk->bsk || pk->bsk_fourier)
        return veil_error(VEIL_ERR_ARG,
                          "veil_eval_key_regenerate_masks: partition %u is prepared already "
                          "(its bootstrapping key is in the Fourier domain)",
                          x);
    const veil_params *p = pk->params;
    const uint32_t k = p->glwe_dim, N = p->poly_size, n = p->lwe_dim;
    const size_t rows = (size_t)(k + 1) * p->pbs_level, glwe_words = (size_t)(k + 1) * N;
    const size_t ggsws = veil_eval_key_bsk_ggsws(p);
    veil_eval_key_partition_seed(ek->mask_seed, x, pk->mask_seed);
    uint64_t *mask = malloc(sizeof *mask * (n ? n : 1));
    veil_csprng *rng = NULL;
    veil_status s = mask ? veil_csprng_new(pk->mask_seed, &rng)
                         : veil_error(VEIL_ERR_NOMEM, "evaluation key masks: out of memory");
    for (size_t i = 0; s == VEIL_OK && i < ggsws; i++)
        for (size_t r = 0; r < rows; r++)
            veil_csprng_fill_u64(rng, pk->bsk + (i * rows + r) * glwe_words, (size_t)k * N);
    if (s == VEIL_OK && h->after_bsk) s = h->after_bsk(h->ctx, pk);
    const size_t entries = (size_t)pk->ksk_rows * p->ks_level;
    for (size_t e = 0; s == VEIL_OK && e < entries; e++) {
        veil_csprng_fill_u64(rng, mask, n);
        h->ksk_entry(h->ctx, pk, e, mask);
    }
    /* a WoP partition's packing keys: k N mask words per GLWE, in order */
    const size_t pfpks = veil_eval_key_pfpks_words(p) / glwe_words;
    for (size_t e = 0; s == VEIL_OK && e < pfpks; e++)
        veil_csprng_fill_u64(rng, pk->pfpks + e * glwe_words, (size_t)k * N);
    if (s == VEIL_OK && pfpks && h->after_pfpks) s = h->after_pfpks(h->ctx, pk);
    veil_csprng_free(rng);
    free(mask);
    return s;
}

/* a KSK entry's masks, rounded to the 32-bit words the keyswitch reads
 * (veil/ks32.h); its body word is left as it is */
static void ksk_entry_round(void *ctx, veil_pbs_key *pk, size_t e, const uint64_t *mask) {
    (void)ctx;
    const uint32_t n = pk->params->lwe_dim;
    uint32_t *ct = pk->ksk32 + e * (n + 1);
    for (uint32_t t = 0; t < n; t++)
        ct[t] = veil_ks32_round(mask[t]);
}

veil_status veil_eval_key_regenerate_masks(veil_eval_key *ek) {
    const mask_hooks h = {NULL, ksk_entry_round, NULL, NULL};
    for (uint32_t x = 0; x < ek->n_parts; x++)
        VEIL_TRY(partition_masks(ek, x, &h));
    return VEIL_OK;
}

veil_status veil_eval_key_check_partitions(const veil_eval_key *ek, const veil_params *const *parts,
                                           uint32_t n) {
    if (!ek || (!parts && n))
        return veil_error(VEIL_ERR_ARG, "veil_eval_key_check_partitions: NULL argument");
    int same = ek->n_parts == n;
    for (uint32_t i = 0; same && i < n; i++)
        same = ek->parts[i].params == parts[i];
    if (same) return VEIL_OK;
    char have[512], want[512];
    veil_eval_key_describe(ek, have, sizeof have);
    size_t o = 0;
    want[0] = 0;
    for (uint32_t i = 0; i < n && o + 1 < sizeof want; i++)
        o += (size_t)snprintf(want + o, sizeof want - o, "%s%s", i ? ", " : "",
                              parts[i] ? parts[i]->id : "(none)");
    return veil_error(VEIL_ERR_PARAMS,
                      "evaluation key has %u partitions [%s], the program needs %u [%s]: "
                      "make keys for this program (veil keygen)",
                      ek->n_parts, have, n, want);
}

void veil_eval_key_describe(const veil_eval_key *ek, char *buf, size_t cap) {
    size_t o = 0;
    if (cap) buf[0] = 0;
    for (uint32_t i = 0; ek && i < ek->n_parts && o + 1 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", ek->parts[i].params->id);
}

/* Exact negacyclic product of a torus polynomial by a binary polynomial whose
 * transform is sf: the torus operand is cut into four 16-bit limbs so every
 * FFT product stays below 2^53 and rounds exactly (N <= 2^16). acc += a * s. */
typedef struct glwe_ctx {
    const veil_params *p;
    veil_fft *fft;
    double *sf; /* transforms of the k key polynomials: secret, wiped */
    double *fa, *prod;
    int64_t *limb;
} glwe_ctx;

/* Every buffer is key-derived: sf is the key's transform, prod and fa (after
 * the inverse) hold A_c * S_c, from which S_c follows since A_c is public;
 * limb and the FFT's scratch (wiped by veil_fft_free) held them in passing.
 * So they live in guarded memory like the key itself (sodium_allocarray:
 * out of swap and core dumps for the seconds a keygen holds them; wiped by
 * sodium_free, which accepts NULL). */
static void glwe_ctx_clear(glwe_ctx *g) {
    sodium_free(g->sf);
    sodium_free(g->fa);
    sodium_free(g->prod);
    sodium_free(g->limb);
    veil_fft_free(g->fft);
    sodium_memzero(g, sizeof *g);
}

/* key: the GLWE key of set p (k*N bits: a prefix of the master key). */
static veil_status glwe_ctx_init(glwe_ctx *g, const veil_params *p, const uint64_t *key) {
    const uint32_t N = p->poly_size, k = p->glwe_dim;
    memset(g, 0, sizeof *g);
    g->p = p;
    if (N > 65536) return veil_error(VEIL_ERR_UNSUPPORTED, "%s: N = %u > 65536", p->id, N);
    VEIL_TRY(veil_fft_new(N, &g->fft));
    g->sf = sodium_allocarray((size_t)N * k, sizeof(double));
    g->fa = sodium_allocarray(N, sizeof(double));
    g->prod = sodium_allocarray(N, sizeof(double));
    g->limb = sodium_allocarray(N, sizeof(int64_t));
    if (!g->sf || !g->fa || !g->prod || !g->limb) {
        glwe_ctx_clear(g);
        return veil_error(VEIL_ERR_NOMEM, "GLWE encryption for %s: out of memory", p->id);
    }
    for (uint32_t c = 0; c < k; c++)
        veil_fft_forward_i64(g->fft, (const int64_t *)(key + (size_t)c * N), g->sf + (size_t)c * N);
    return VEIL_OK;
}

/* acc += A_c * S_c, exactly */
static void glwe_mul_key_add(glwe_ctx *g, const uint64_t *a, uint32_t c, uint64_t *acc) {
    const uint32_t N = g->p->poly_size;
    for (int t = 0; t < 4; t++) {
        for (uint32_t j = 0; j < N; j++)
            g->limb[j] = (int64_t)((a[j] >> (16 * t)) & 0xffff);
        veil_fft_forward_i64(g->fft, g->limb, g->fa);
        memset(g->prod, 0, sizeof(double) * N);
        veil_fft_mac(g->prod, g->fa, g->sf + (size_t)c * N, N);
        veil_fft_backward_f64(g->fft, g->prod, g->fa);
        for (uint32_t j = 0; j < N; j++)
            acc[j] += (uint64_t)llround(g->fa[j]) << (16 * t);
    }
}

/* Body of a GLWE whose k masks are already in ct: sum_c A_c S_c + e + msg
 * (msg NULL: 0). */
static void glwe_finish(glwe_ctx *g, veil_csprng *noise, const uint64_t *msg, uint64_t *ct) {
    const uint32_t N = g->p->poly_size, k = g->p->glwe_dim;
    uint64_t *body = ct + (size_t)k * N;
    for (uint32_t t = 0; t < N; t++)
        body[t] = veil_csprng_noise(noise, &g->p->glwe_noise) + (msg ? msg[t] : 0);
    for (uint32_t c = 0; c < k; c++)
        glwe_mul_key_add(g, ct + (size_t)c * N, c, body);
}

/* GGSW(m) rows with masks already in ct. Row (c, j), c < k, encrypts
 * -m * g_j * S_c (the same phase as adding m * g_j to mask c, and it keeps
 * the masks pure stream output so a seeded key regenerates them); row (k, j)
 * encrypts m * g_j. */
static void ggsw_finish(glwe_ctx *g, const uint64_t *key, veil_csprng *noise, int64_t m,
                        uint32_t base_log, uint32_t level, uint64_t *ct) {
    const uint32_t N = g->p->poly_size, k = g->p->glwe_dim;
    const size_t glwe_words = (size_t)(k + 1) * N;
    for (uint32_t c = 0; c <= k; c++) {
        for (uint32_t j = 0; j < level; j++) {
            uint64_t *row = ct + ((size_t)c * level + j) * glwe_words;
            glwe_finish(g, noise, NULL, row);
            const uint64_t mg = (uint64_t)m * ((uint64_t)1 << (64 - base_log * (j + 1)));
            uint64_t *body = row + (size_t)k * N;
            if (c < k) {
                const uint64_t *Sc = key + (size_t)c * N;
                for (uint32_t t = 0; t < N; t++)
                    body[t] -= mg & (0 - Sc[t]);
            } else {
                body[0] += mg;
            }
        }
    }
}

veil_status veil_glwe_encrypt(veil_encryptor *enc, const veil_secret_key *sk, const uint64_t *msg,
                              uint64_t *ct) {
    glwe_ctx g;
    VEIL_TRY(glwe_ctx_init(&g, sk->params, sk->master));
    veil_csprng_fill_u64(enc->mask, ct, (size_t)sk->params->glwe_dim * sk->params->poly_size);
    glwe_finish(&g, enc->noise, msg, ct);
    glwe_ctx_clear(&g);
    return VEIL_OK;
}

veil_status veil_glwe_phase(const veil_secret_key *sk, const uint64_t *ct, uint64_t *phase) {
    const uint32_t N = sk->params->poly_size, k = sk->params->glwe_dim;
    glwe_ctx g;
    VEIL_TRY(glwe_ctx_init(&g, sk->params, sk->master));
    memset(phase, 0, sizeof(uint64_t) * N);
    for (uint32_t c = 0; c < k; c++)
        glwe_mul_key_add(&g, ct + (size_t)c * N, c, phase);
    for (uint32_t t = 0; t < N; t++)
        phase[t] = ct[(size_t)k * N + t] - phase[t];
    glwe_ctx_clear(&g);
    return VEIL_OK;
}

veil_status veil_ggsw_encrypt(veil_encryptor *enc, const veil_secret_key *sk, int64_t m,
                              uint32_t base_log, uint32_t level, uint64_t *ct) {
    const veil_params *p = sk->params;
    if (base_log < 1 || base_log > 63 || level < 1 || base_log * level > 64)
        return veil_error(VEIL_ERR_ARG, "GGSW: base 2^%u with %u levels", base_log, level);
    glwe_ctx g;
    VEIL_TRY(glwe_ctx_init(&g, p, sk->master));
    const size_t rows = (size_t)(p->glwe_dim + 1) * level;
    const size_t glwe_words = (size_t)(p->glwe_dim + 1) * p->poly_size;
    for (size_t r = 0; r < rows; r++)
        veil_csprng_fill_u64(enc->mask, ct + r * glwe_words, (size_t)p->glwe_dim * p->poly_size);
    ggsw_finish(&g, sk->master, enc->noise, m, base_log, level, ct);
    glwe_ctx_clear(&g);
    return VEIL_OK;
}

static veil_status prepare_part(veil_pbs_key *pk, uint32_t x, veil_key_domains keep);

static veil_status check_keep(const char *fn, veil_key_domains keep) {
    if (keep == VEIL_KEY_BOTH || keep == VEIL_KEY_FOURIER || keep == VEIL_KEY_STANDARD)
        return VEIL_OK;
    return veil_error(VEIL_ERR_ARG, "%s: unknown key domains %d", fn, (int)keep);
}

/* keygen's state for one partition x (mask_hooks' ctx) */
typedef struct fill_ctx {
    const veil_secret_key *sk;
    uint32_t x;
    veil_csprng *noise; /* one stream over every partition, BSK then KSK */
} fill_ctx;

/* Partition x's BSK = GGSW(s_x[i]) under S_x (the prefix of the master key),
 * its masks from the seeded stream (already in place). */
static veil_status bsk_fill(void *ctx, veil_pbs_key *pk) {
    const fill_ctx *f = ctx;
    const veil_params *p = pk->params;
    const uint32_t k = p->glwe_dim, N = p->poly_size, n = p->lwe_dim, l = p->pbs_level;
    const veil_secret_key *sk = f->sk;
    const uint64_t *s = sk->small[f->x];
    glwe_ctx g = {0};
    VEIL_TRY(glwe_ctx_init(&g, p, sk->master));
    /* BSK: GGSW(s_i), masks from the seeded stream (already in place) */
    const size_t ggsw_words = (size_t)(k + 1) * l * (k + 1) * N;
    const uint32_t gf = p->grouping;
    if (gf < 2) {
        for (uint32_t i = 0; i < n; i++)
            ggsw_finish(&g, sk->master, f->noise, (int64_t)s[i], p->pbs_base_log, l,
                        pk->bsk + (size_t)i * ggsw_words);
    } else {
        /* Multi-bit (veil/tfhe.h): group q, subset index t < 2^g: GGSW of
         * prod_b (bit b of t ? s[qg+b] : 1 - s[qg+b]), the indicator that the
         * group's key bits equal t's bits (TFHE-rs's combine_key_bits in
         * lwe_multi_bit_bootstrap_key_generation.rs, with bit b of t for
         * element b rather than TFHE-rs's reversed order). */
        int64_t m = 0;
        for (uint32_t q = 0; q < n / gf; q++)
            for (uint32_t t = 0; t < (1u << gf); t++) {
                m = 1;
                for (uint32_t b = 0; b < gf; b++)
                    m &= (int64_t)(((t >> b) & 1) ? s[q * gf + b] : 1 - s[q * gf + b]);
                ggsw_finish(&g, sk->master, f->noise, m, p->pbs_base_log, l,
                            pk->bsk + ((size_t)q << gf | t) * ggsw_words);
            }
        sodium_memzero(&m, sizeof m); /* a product of key bits */
    }
    glwe_ctx_clear(&g);
    return VEIL_OK;
}

/* KSK entry e = i l_ks + j: LWE_{s_x}(S[i] * g_j) under the small key, for
 * the master key's first ksk_rows coefficients, from its 64-bit masks; the
 * words kept are the rounded ones the keyswitch reads (veil/ks32.h). */
static void ksk_entry_fill(void *ctx, veil_pbs_key *pk, size_t e, const uint64_t *mask) {
    const fill_ctx *f = ctx;
    const veil_params *p = pk->params;
    const uint32_t n = p->lwe_dim, j = (uint32_t)(e % p->ks_level);
    const size_t i = e / p->ks_level;
    const uint64_t *s = f->sk->small[f->x];
    const uint64_t gj = (uint64_t)1 << (64 - p->ks_base_log * (j + 1));
    uint64_t acc = 0;
    for (uint32_t t = 0; t < n; t++)
        acc += mask[t] & (0 - s[t]);
    acc += f->sk->master[i] * gj + veil_csprng_noise(f->noise, &p->lwe_noise);
    ksk_entry_round(NULL, pk, e, mask);
    pk->ksk32[e * (n + 1) + n] = veil_ks32_round(acc);
    sodium_memzero(&acc, sizeof acc); /* <a, s> + S[i] g_j: key-derived */
}

/* A WoP partition's packing keyswitching keys (veil/tfhe.h): GLWE (c, i, j)
 * encrypts P_c s'_i g_j under S_x, its masks already in place from the
 * partition's stream. The message is key-derived: guarded memory, wiped,
 * and computed without branching on key bits. */
static veil_status pfpks_fill(void *ctx, veil_pbs_key *pk) {
    const fill_ctx *f = ctx;
    const veil_params *p = pk->params;
    const veil_wop_params *wp = veil_wop_params_of(p);
    const uint32_t N = p->poly_size, k = p->glwe_dim, big = veil_params_big_dim(p);
    const size_t gw = (size_t)(k + 1) * N;
    const uint64_t *S = f->sk->master;
    glwe_ctx g = {0};
    VEIL_TRY(glwe_ctx_init(&g, p, S));
    uint64_t *msg = sodium_allocarray(N, sizeof *msg);
    if (!msg) {
        glwe_ctx_clear(&g);
        return veil_error(VEIL_ERR_NOMEM, "packing keys of %s: out of memory", p->id);
    }
    uint64_t *ct = pk->pfpks;
    for (uint32_t c = 0; c <= k; c++)
        for (size_t i = 0; i <= big; i++)
            for (uint32_t j = 0; j < wp->pp_level; j++, ct += gw) {
                const uint64_t gj = (uint64_t)1 << (64 - wp->pp_base_log * (j + 1));
                /* s'_i g_j: S_i g_j, and -g_j for the body's coefficient */
                const uint64_t sg = i < big ? gj & (0 - S[i]) : 0 - gj;
                if (c < k) { /* P_c = -S_c */
                    for (uint32_t t = 0; t < N; t++)
                        msg[t] = 0 - (sg & (0 - S[(size_t)c * N + t]));
                } else { /* P_k = 1 */
                    memset(msg, 0, sizeof *msg * N);
                    msg[0] = sg;
                }
                glwe_finish(&g, f->noise, msg, ct);
            }
    sodium_free(msg);
    glwe_ctx_clear(&g);
    return VEIL_OK;
}

veil_status veil_eval_key_new(const veil_secret_key *sk, const uint8_t *mask_seed,
                              const uint8_t *noise_seed, veil_eval_key **out) {
    return veil_eval_key_new_rows(sk, NULL, VEIL_KEY_BOTH, mask_seed, noise_seed, out);
}

veil_status veil_eval_key_new_rows(const veil_secret_key *sk, const uint32_t *ksk_rows,
                                   veil_key_domains keep, const uint8_t *mask_seed,
                                   const uint8_t *noise_seed, veil_eval_key **out) {
    if (!sk || !out) return veil_error(VEIL_ERR_ARG, "veil_eval_key_new: sk or out is NULL");
    VEIL_TRY(check_keep("veil_eval_key_new", keep));
    veil_eval_key *ek;
    VEIL_TRY(veil_eval_key_alloc(sk->parts, sk->n_parts, ksk_rows, &ek));
    if (mask_seed)
        memcpy(ek->mask_seed, mask_seed, VEIL_SEED_BYTES);
    else
        veil_seed_random(ek->mask_seed);
    veil_secret_key_fingerprint(sk, ek->key_fp);
    fill_ctx f = {sk, 0, NULL};
    const mask_hooks h = {bsk_fill, ksk_entry_fill, &f, pfpks_fill};
    veil_status s = veil_csprng_new(noise_seed, &f.noise);
    /* each partition prepared as soon as it is made: at most one partition's
     * bootstrapping key is ever held in both domains */
    for (uint32_t x = 0; x < ek->n_parts && s == VEIL_OK; x++) {
        f.x = x;
        s = partition_masks(ek, x, &h);
        if (s == VEIL_OK) s = prepare_part(&ek->parts[x], x, keep);
    }
    veil_csprng_free(f.noise);
    if (s != VEIL_OK) {
        veil_eval_key_free(ek);
        return s;
    }
    *out = ek;
    return VEIL_OK;
}

/* pk->bsk_fourier from pk->bsk (x: the partition, for messages). in_place:
 * GGSW by GGSW over the standard key's own memory (a Fourier GGSW takes the
 * bytes of a standard one; veil_eval_key_alloc aligned it for this), which
 * then becomes bsk_fourier and bsk is NULL: no second copy of the key is
 * ever held. */
static veil_status bsk_to_fourier(veil_pbs_key *pk, uint32_t x, int in_place) {
    const veil_params *p = pk->params;
    const uint32_t N = p->poly_size;
    const uint32_t per = (p->glwe_dim + 1) * p->pbs_level * (p->glwe_dim + 1); /* a GGSW */
    const size_t ggsws = veil_eval_key_bsk_words(p) / ((size_t)per * N);
    double *dst = in_place ? (double *)(void *)pk->bsk
                           : veil_fft_alloc(sizeof(double) * veil_eval_key_bsk_words(p));
    double *one = veil_fft_alloc(sizeof(double) * N);
    uint64_t *ggsw = in_place ? veil_fft_alloc(sizeof(uint64_t) * per * N) : NULL;
    veil_fft *fft = NULL;
    veil_status st = dst && one && (ggsw || !in_place)
                         ? veil_fft_new(N, &fft)
                         : veil_error(VEIL_ERR_NOMEM,
                                      "bootstrapping key (Fourier) of partition %u (%s): out of "
                                      "memory",
                                      x, p->id);
    for (size_t g = 0; st == VEIL_OK && g < ggsws; g++) {
        /* each GGSW's polynomials in the layout the multiply-add reads
         * (veil_fft_ggsw_put); in place, from a copy of the GGSW */
        const uint64_t *src = pk->bsk + g * per * N;
        if (in_place) src = memcpy(ggsw, src, sizeof(uint64_t) * per * N);
        for (uint32_t i = 0; i < per; i++) {
            veil_fft_forward_torus(fft, src + (size_t)i * N, one);
            veil_fft_ggsw_put(N, per, i, one, dst + g * per * N);
        }
    }
    veil_fft_free(fft);
    veil_fft_dealloc(one);
    veil_fft_dealloc(ggsw);
    if (st != VEIL_OK) {
        if (!in_place) veil_fft_dealloc(dst);
        return st;
    }
    pk->bsk_fourier = dst;
    if (in_place) pk->bsk = NULL;
    return VEIL_OK;
}

static veil_status prepare_part(veil_pbs_key *pk, uint32_t x, veil_key_domains keep) {
    const veil_params *p = pk->params;
    if (p->grouping >= 2) return VEIL_OK; /* summed in the standard domain (pbs.c) */
    if (!pk->bsk && keep != VEIL_KEY_FOURIER)
        return veil_error(VEIL_ERR_ARG,
                          "bootstrapping key of partition %u (%s): its standard domain, which "
                          "saving and the CUDA upload read, was freed when the key was "
                          "prepared for the cpu only (VEIL_KEY_FOURIER): load or make the "
                          "key again",
                          x, p->id);
    if (keep == VEIL_KEY_FOURIER && !pk->bsk_fourier) return bsk_to_fourier(pk, x, 1);
    if (keep != VEIL_KEY_STANDARD && !pk->bsk_fourier) VEIL_TRY(bsk_to_fourier(pk, x, 0));
    if (keep == VEIL_KEY_FOURIER) {
        veil_fft_dealloc(pk->bsk);
        pk->bsk = NULL;
    } else if (keep == VEIL_KEY_STANDARD) {
        veil_fft_dealloc(pk->bsk_fourier);
        pk->bsk_fourier = NULL;
    }
    return VEIL_OK;
}

veil_status veil_eval_key_check_domains(const veil_eval_key *ek, veil_key_domains need,
                                        const char *who) {
    VEIL_TRY(check_keep(who, need));
    for (uint32_t x = 0; ek && x < ek->n_parts; x++) {
        const veil_pbs_key *pk = &ek->parts[x];
        const int mb = pk->params->grouping >= 2;
        const int std = !pk->bsk && (mb || need != VEIL_KEY_FOURIER);
        if (std || (!mb && need != VEIL_KEY_STANDARD && !pk->bsk_fourier))
            return veil_error(VEIL_ERR_ARG,
                              "%s: partition %u (%s) holds no %s bootstrapping key (the key was "
                              "prepared for %s: make or load it for this use, "
                              "veil_eval_key_prepare)",
                              who, x, pk->params->id, std ? "standard-domain" : "Fourier",
                              std ? "the cpu only (VEIL_KEY_FOURIER)"
                                  : "saving and the CUDA upload (VEIL_KEY_STANDARD)");
    }
    return VEIL_OK;
}

veil_status veil_eval_key_prepare(veil_eval_key *ek, veil_key_domains keep) {
    if (!ek) return veil_error(VEIL_ERR_ARG, "veil_eval_key_prepare: ek is NULL");
    VEIL_TRY(check_keep("veil_eval_key_prepare", keep));
    for (uint32_t x = 0; x < ek->n_parts; x++)
        VEIL_TRY(prepare_part(&ek->parts[x], x, keep));
    return VEIL_OK;
}
