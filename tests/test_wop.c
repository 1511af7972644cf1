// LABELS: crypto
// COST: 90
/* WoP-PBS on the CPU (veil/wop.h):
 *   - the sets: one per width 9..16, noises at the minimum of Concrete's
 *     128-bit curve, gadgets within 64 bits, p_fail label = log2 p_error;
 *   - correctness: random tables (4-bit outputs, a step at nearly every
 *     input: the case veil's threshold and selection methods pay most for)
 *     at widths 1 to 12 with the 9-bit set, unsigned and signed, against the
 *     clear table, on random inputs and both ends of the range; every set at
 *     its own width (9 to 16 bits) in test_wop_slow.c;
 *   - every bit's GGSW from circuit bootstrapping selects like a fresh one
 *     (through the lookup: a table equal to the identity at each bit);
 *   - determinism, and the errors a caller can make. */
#include "testutil.h"
#include "veil/noise.h"
#include "veil/serialize.h"
#include "veil/tfhe.h"
#include "veil/wop.h"
#include "../engine/src/wop_internal.h" /* the accumulator's coefficients */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_BITS 4
/* test_wop_slow.c: every set at its own width as well */
#ifndef WOP_ALL_SETS
#define WOP_ALL_SETS 0
#endif

typedef struct wop_fixture {
    const veil_wop_params *wp;
    veil_secret_key *sk;
    veil_eval_key *ek;
    const veil_pbs_key *key; /* ek's WoP partition */
    veil_encryptor *enc;
    veil_wop_ctx *ctx;
} wop_fixture;

static int fixture_make(const veil_wop_params *wp, unsigned seed_base, wop_fixture *f) {
    memset(f, 0, sizeof *f);
    f->wp = wp;
    uint8_t s0[32], s1[32], s2[32], s3[32], s4[32];
    veil_test_seed_bytes(seed_base, s0);
    veil_test_seed_bytes(seed_base + 1, s1);
    veil_test_seed_bytes(seed_base + 2, s2);
    veil_test_seed_bytes(seed_base + 3, s3);
    veil_test_seed_bytes(seed_base + 4, s4);
    veil_status s = veil_secret_key_new(&wp->pbs, s0, &f->sk);
    if (s == VEIL_OK) s = veil_eval_key_new_rows(f->sk, NULL, VEIL_KEY_FOURIER, s1, s2, &f->ek);
    if (s == VEIL_OK) f->key = veil_eval_key_part(f->ek, 0);
    if (s == VEIL_OK) s = veil_encryptor_new(s3, s4, &f->enc);
    if (s == VEIL_OK) s = veil_wop_ctx_new(wp, veil_params_big_dim(&wp->pbs), &f->ctx);
    if (s != VEIL_OK) printf("\n  keys of %s: %s\n", wp->id, veil_error_message());
    return s == VEIL_OK;
}

static void fixture_free(wop_fixture *f) {
    veil_wop_ctx_free(f->ctx);
    veil_encryptor_free(f->enc);
    veil_eval_key_free(f->ek);
    veil_secret_key_free(f->sk);
}

static void test_sets(void) {
    CU_ASSERT_FATAL(veil_wop_params_count() == 8);
    for (size_t i = 0; i < veil_wop_params_count(); i++) {
        const veil_wop_params *wp = veil_wop_params_at(i);
        const veil_params *p = &wp->pbs;
        CU_ASSERT_EQUAL(wp->width, 9 + i);
        CU_ASSERT_PTR_EQUAL(veil_wop_params_for_width(wp->width), wp);
        CU_ASSERT_PTR_EQUAL(veil_wop_params_find(wp->id), wp);
        CU_ASSERT_STRING_EQUAL(p->id, wp->id);
        /* not a classic or multi-bit id: files name sets by id */
        CU_ASSERT_PTR_NULL(veil_params_find_any(wp->id));
        CU_ASSERT_EQUAL(p->precision, wp->width);
        /* security: both noises at the 128-bit curve's minimum */
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_log2_std(&p->lwe_noise),
                               veil_noise_min_log2_std_128(p->lwe_dim), 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_log2_std(&p->glwe_noise),
                               veil_noise_min_log2_std_128(veil_params_big_dim(p)), 1e-9);
        CU_ASSERT(wp->cbs_base_log * wp->cbs_level <= 64);
        CU_ASSERT(wp->pp_base_log * wp->pp_level <= 64);
        CU_ASSERT(p->ks_base_log * p->ks_level <= 32); /* the 32-bit keyswitching key */
        CU_ASSERT_DOUBLE_EQUAL(p->log2_p_fail, log2(wp->p_error), 1e-3);
        CU_ASSERT(p->log2_p_fail <= -40.0);
        const veil_wop_counts n = veil_wop_count(wp, wp->width);
        /* one blind rotation a bit: its extraction and its l_cb levels */
        CU_ASSERT_EQUAL(n.pbs, wp->width);
        const uint32_t slots = veil_wop_slots(wp);
        CU_ASSERT(slots >= wp->cbs_level + 1 && slots <= VEIL_WOP_MAX_SLOTS &&
                  (slots & (slots - 1)) == 0);
        /* the reads' switch to 2N / slots: slots^2 the rounding variance of
         * the switch to 2N (the sets switch the standard way) */
        CU_ASSERT_EQUAL(p->ms, VEIL_MS_STANDARD);
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_wop_ms_variance(wp) / veil_noise_ms_variance(p),
                               (double)slots * slots, 1e-6 * slots * slots);
        CU_ASSERT_EQUAL(n.keyswitches, wp->width);
        CU_ASSERT_EQUAL(n.packing_keyswitches, wp->width * wp->cbs_level * (p->glwe_dim + 1));
        /* the reads' p_fail: a union bound over the w bits, finite where each
         * term is far below the smallest double (a fresh input) and, where
         * none is, the plain sum of the terms' probabilities */
        const uint32_t D = veil_params_big_dim(p);
        const double fresh = veil_noise_fresh_variance(p);
        const double at_fresh = veil_noise_wop_log2_p_fail(wp, wp->width, fresh, D);
        CU_ASSERT(isfinite(at_fresh) && at_fresh < -200.0);
        const double ks = veil_noise_ks_variance_dim(p, D), ms = veil_noise_wop_ms_variance(wp);
        const double pbs = veil_noise_pbs_output_variance(p);
        const double noisy = 0x1p119 / veil_pow2(2 * (int)wp->width); /* bit 0 near 2^-20 */
        double sum = 0.0;
        for (unsigned b = 0; b < wp->width; b++)
            sum += exp2(veil_noise_log2_p_fail_margin(veil_noise_fail_margin(
                0, veil_pow2(2 * (int)(wp->width - b)) * (noisy + b * pbs) + ks + ms)));
        CU_ASSERT(sum > 0.0 && sum < 1.0);
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_wop_log2_p_fail(wp, wp->width, noisy, D), log2(sum),
                               1e-9);
        CU_ASSERT(veil_noise_wop_log2_p_fail(wp, wp->width, noisy, D) > at_fresh);
    }
    CU_ASSERT_PTR_NULL(veil_wop_params_for_width(8));
    CU_ASSERT_PTR_NULL(veil_wop_params_for_width(17));
    CU_ASSERT_PTR_NULL(veil_wop_params_find("nope"));
    /* vertical packing: 2^(w - nu) - 1 tree CMuxes + nu rotation ones */
    const veil_wop_params *w9 = veil_wop_params_for_width(9); /* N = 1024, nu = 10 */
    CU_ASSERT_EQUAL(veil_wop_count(w9, 9).external_products, 9);
    CU_ASSERT_EQUAL(veil_wop_count(w9, 12).external_products, 3 + 10);
}

/* n_in random inputs of w bits plus both ends, through a random table */
static void check_width(wop_fixture *f, unsigned w, int is_signed, unsigned n_in) {
    const veil_params *p = &f->wp->pbs;
    const size_t entries = (size_t)1 << w, D = veil_params_big_dim(p);
    int64_t *table = malloc(sizeof(int64_t) * entries);
    uint64_t *in = malloc(sizeof(uint64_t) * (D + 1)), *out = malloc(sizeof(uint64_t) * (D + 1));
    CU_ASSERT_FATAL(table && in && out);
    for (size_t i = 0; i < entries; i++)
        table[i] = (int64_t)(veil_test_rand() % (1u << OUT_BITS));
    unsigned wrong = 0;
    for (unsigned r = 0; r < n_in + 2; r++) {
        int64_t x = r == 0   ? 0
                    : r == 1 ? (int64_t)entries - 1
                             : (int64_t)(veil_test_rand() % entries);
        if (is_signed) x -= (int64_t)entries / 2;
        veil_encrypt_big(f->enc, f->sk, veil_encode(x, w), in);
        CU_ASSERT_EQUAL_FATAL(
            veil_wop_pbs(f->ctx, f->key, table, w, is_signed, veil_delta(OUT_BITS), in, out),
            VEIL_OK);
        const int64_t got = veil_decode(veil_phase_big(f->sk, out), OUT_BITS, 0);
        const int64_t want = table[is_signed ? x + (int64_t)entries / 2 : x];
        if (got != want) {
            printf("\n  %s, %u bits%s: x = %lld gave %lld, table %lld", f->wp->id, w,
                   is_signed ? " signed" : "", (long long)x, (long long)got, (long long)want);
            wrong++;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    free(table);
    free(in);
    free(out);
}

/* Under a sanitizer (make sanitize) a lookup costs several times more:
 * the same code paths (no tree, a tree of 2 leaves, signed), fewer
 * inputs. */
static void test_lookup_widths(void) {
    wop_fixture f;
    CU_ASSERT_FATAL(fixture_make(veil_wop_params_for_width(9), 10, &f));
#if VEIL_TEST_SANITIZED
    check_width(&f, 1, 0, 0);
    check_width(&f, 9, 1, 1);
    check_width(&f, 11, 0, 0);
#else
    /* w < log2 N (no tree), = 9 (the set's), 10 = log2 N, 11 and 12 (a tree
     * of 2 and 4 leaves) */
    check_width(&f, 1, 0, 0);
    check_width(&f, 5, 0, 1);
    check_width(&f, 9, 0, 4);
    check_width(&f, 9, 1, 2);
    check_width(&f, 10, 0, 1);
    check_width(&f, 11, 0, 1);
    check_width(&f, 12, 1, 1);
#endif
    fixture_free(&f);
}

#if WOP_ALL_SETS
/* Every set at the width it was chosen for, unsigned and signed (a tree of
 * 2^(w - log2 N) leaves: up to 64 at 16 bits). */
static void test_every_set(void) {
    for (size_t i = 0; i < veil_wop_params_count(); i++) {
        const veil_wop_params *wp = veil_wop_params_at(i);
        wop_fixture f;
        CU_ASSERT_FATAL(fixture_make(wp, 60 + 5 * (unsigned)i, &f));
        check_width(&f, wp->width, 0, 6);
        check_width(&f, wp->width, 1, 2);
        fixture_free(&f);
    }
}
#endif

/* Same seeds, same bits; another input seed, another ciphertext of the
 * same value. */
static void test_deterministic(void) {
    const veil_wop_params *wp = veil_wop_params_for_width(9);
    wop_fixture a, b;
    CU_ASSERT_FATAL(fixture_make(wp, 20, &a));
    CU_ASSERT_FATAL(fixture_make(wp, 20, &b));
    CU_ASSERT_EQUAL(memcmp(a.key->pfpks, b.key->pfpks, 8 * veil_eval_key_pfpks_words(&wp->pbs)), 0);
    const size_t D = veil_params_big_dim(&wp->pbs);
    int64_t table[8] = {3, 1, 4, 1, 5, 9 % 16, 2, 6};
    uint64_t *in = malloc(sizeof(uint64_t) * (D + 1)), *oa = malloc(sizeof(uint64_t) * (D + 1)),
             *ob = malloc(sizeof(uint64_t) * (D + 1));
    CU_ASSERT_FATAL(in && oa && ob);
    veil_encrypt_big(a.enc, a.sk, veil_encode(5, 3), in);
    CU_ASSERT_EQUAL(veil_wop_pbs(a.ctx, a.key, table, 3, 0, veil_delta(OUT_BITS), in, oa), VEIL_OK);
    CU_ASSERT_EQUAL(veil_wop_pbs(b.ctx, b.key, table, 3, 0, veil_delta(OUT_BITS), in, ob), VEIL_OK);
    CU_ASSERT_EQUAL(memcmp(oa, ob, sizeof(uint64_t) * (D + 1)), 0);
    CU_ASSERT_EQUAL(veil_decode(veil_phase_big(a.sk, oa), OUT_BITS, 0), 9 % 16);
    free(in);
    free(oa);
    free(ob);
    fixture_free(&a);
    fixture_free(&b);
}

static void test_errors(void) {
    const veil_wop_params *w9 = veil_wop_params_for_width(9), *w11 = veil_wop_params_for_width(11);
    const uint32_t D = veil_params_big_dim(&w9->pbs);
    veil_wop_ctx *other = NULL;
    /* a master key narrower than the set's k N */
    CU_ASSERT_EQUAL(veil_wop_ctx_new(w9, D - 1, &other), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NULL(other);
    CU_ASSERT_EQUAL(veil_wop_ctx_new(NULL, D, &other), VEIL_ERR_ARG);

    wop_fixture f;
    CU_ASSERT_FATAL(fixture_make(w9, 30, &f));
    int64_t table[2] = {0, 1};
    uint64_t *in = calloc(2 * (size_t)D + 1, sizeof(uint64_t));
    uint64_t *out = calloc(2 * (size_t)D + 1, sizeof(uint64_t));
    CU_ASSERT_FATAL(in && out);
    /* a context of another set */
    CU_ASSERT_FATAL(veil_wop_ctx_new(w11, D, &other) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_wop_pbs(other, f.key, table, 1, 0, 1, in, out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "wop-w11-2m40"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "wop-w9-2m40"));
    veil_wop_ctx_free(other);
    /* ... of another master dimension */
    CU_ASSERT_FATAL(veil_wop_ctx_new(w9, 2 * D, &other) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_wop_pbs(other, f.key, table, 1, 0, 1, in, out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "master key"));
    veil_wop_ctx_free(other);
    /* a key without packing keys: the partition key of a classic set */
    veil_pbs_key classic = *f.key;
    classic.pfpks = NULL;
    CU_ASSERT_EQUAL(veil_wop_pbs(f.ctx, &classic, table, 1, 0, 1, in, out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "no packing keys"));
    /* a keyswitching key of fewer rows than the set's k N: the bit reads
     * keyswitch PBS outputs, mask words to k N (a 1024-row key read 49 of
     * 64 entries of a 6-bit table wrong before this was refused) */
    veil_pbs_key narrow = *f.key;
    narrow.ksk_rows = D / 2;
    CU_ASSERT_EQUAL(veil_wop_pbs(f.ctx, &narrow, table, 1, 0, 1, in, out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "keyswitching key of"));
    /* widths and arguments */
    CU_ASSERT_EQUAL(veil_wop_pbs(f.ctx, f.key, table, 0, 0, 1, in, out), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_wop_pbs(f.ctx, f.key, table, VEIL_WOP_MAX_WIDTH + 1, 0, 1, in, out),
                    VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_wop_pbs(f.ctx, f.key, NULL, 1, 0, 1, in, out), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_wop_extract_bits(f.ctx, f.key, 0, 0, in, out), VEIL_ERR_ARG);
    free(in);
    free(out);
    fixture_free(&f);
}

/* veil's noise model of the WoP-PBS (veil_noise_wop_*) against measured
 * noise at the 9-bit set: the bits' phase errors (the reads p_fail counts)
 * and the output's error, every coefficient of each lookup's accumulator a
 * sample (wop_internal.h: N of them a lookup). The model is an upper bound
 * (the bit 1 in every rounding term, the largest row variance for every
 * row): each measured variance, as a ratio to the model, must lie below
 * the upper end of veil_test_variance_band at z = 5 for its sample count
 * and kurtosis (the noise tests' one rule), and above a sixteenth of the
 * lower end (a bound that far above the measure would refuse sets for
 * nothing). The seed is random each run (VEIL_TEST_SEED repeats one). */
#if VEIL_TEST_SANITIZED
#define NOISE_SAMPLES 6
#else
#define NOISE_SAMPLES 24
#endif
#define NOISE_LOOKUPS 3

/* sum r^2, sum r^4, count: a variance ratio, its kurtosis, its band */
typedef struct ratio_acc {
    double s2, s4, n;
} ratio_acc;
static void ratio_add(ratio_acc *a, double e2_over_model) {
    a->s2 += e2_over_model;
    a->s4 += e2_over_model * e2_over_model;
    a->n += 1;
}
static double ratio_mean(const ratio_acc *a) {
    return a->s2 / a->n;
}
static int ratio_ok(const char *what, const ratio_acc *a) {
    const double m = ratio_mean(a), kurt = a->s4 / a->n / (m * m);
    double lo, hi;
    veil_test_variance_band(a->n, fmax(kurt, 3.0), 5.0, &lo, &hi);
    const int ok = m <= hi && m >= lo / 16;
    printf("\n  %s: measured / model %.3f (%.0f samples, kurtosis %.2f, accept [%.3f, %.3f]) %s",
           what, m, a->n, kurt, lo / 16, hi, ok ? "ok" : "OUT OF TOLERANCE");
    return ok;
}

static void test_noise(void) {
    const veil_wop_params *wp = veil_wop_params_for_width(9);
    const veil_params *p = &wp->pbs;
    const unsigned w = 9;
    wop_fixture f;
    CU_ASSERT_FATAL(fixture_make(wp, 40, &f));
    const size_t D = veil_params_big_dim(p), n1 = (size_t)p->lwe_dim + 1, N = p->poly_size;
    const unsigned lg = (unsigned)__builtin_ctz(p->poly_size), nu = w < lg ? w : lg;
    uint64_t *in = malloc(sizeof(uint64_t) * (D + 1));
    uint64_t *out = malloc(sizeof(uint64_t) * (D + 1) * N);
    uint64_t *bits = malloc(sizeof(uint64_t) * w * n1);
    int64_t *table = malloc(sizeof(int64_t) << w);
    CU_ASSERT_FATAL(in && out && bits && table);
    for (size_t i = 0; i < ((size_t)1 << w); i++)
        table[i] = (int64_t)(veil_test_rand() % 16);
    const double fresh = veil_noise_fresh_variance(p), pbs = veil_noise_pbs_output_variance(p);
    const double ks = veil_noise_ks_variance_dim(p, (uint32_t)D),
                 ms = veil_noise_wop_ms_variance(wp);
    ratio_acc bits_r = {0, 0, 0}, out_r = {0, 0, 0};
    const double out_model = veil_noise_wop_output_variance(wp, w);
    for (unsigned s = 0; s < NOISE_SAMPLES; s++) {
        const int64_t x = (int64_t)(veil_test_rand() % (1u << w));
        veil_encrypt_big(f.enc, f.sk, veil_encode(x, w), in);
        CU_ASSERT_EQUAL_FATAL(veil_wop_extract_bits(f.ctx, f.key, w, 0, in, bits), VEIL_OK);
        for (unsigned i = 0; i < w; i++) {
            const uint64_t bit = (uint64_t)(x >> i) & 1;
            const double e =
                (double)(int64_t)(veil_phase_small(f.sk, 0, bits + i * n1) - (bit << 63));
            /* the switched phase's error: the ms term is added after the read's
             * rounding, so the measure is the keyswitch output's */
            const double model = veil_pow2(2 * (int)(w - i)) * (fresh + i * pbs) + ks;
            ratio_add(&bits_r, e * e / model);
        }
        if (s >= NOISE_LOOKUPS) continue;
        CU_ASSERT_EQUAL_FATAL(veil_wop_pbs_coefs(f.ctx, f.key, table, w, 0, veil_delta(OUT_BITS),
                                                 in, (uint32_t)N, out),
                              VEIL_OK);
        const size_t t = (size_t)x >> nu, r = (size_t)x & (((size_t)1 << nu) - 1);
        for (size_t h = 0; h < N; h++) {
            /* wop_internal.h: L(j) = the leaf's entry j below 2^nu, 0 up to N,
             * negated past it */
            const size_t j = (r + h) % N;
            const int64_t entry = j < ((size_t)1 << nu) ? table[(t << nu) + j] : 0;
            const uint64_t want = (uint64_t)(r + h < N ? entry : -entry) * veil_delta(OUT_BITS);
            const double e = (double)(int64_t)(veil_phase_big(f.sk, out + h * (D + 1)) - want);
            ratio_add(&out_r, e * e / out_model);
        }
    }
    printf("\n  %s: bits' keyswitch term 2^%.1f, ms 2^%.1f; output model 2^%.1f (%u lookups x "
           "%zu coefficients); log2 p_fail of the reads at a fresh input %.1f",
           wp->id, 0.5 * log2(ks), 0.5 * log2(ms), 0.5 * log2(out_model), NOISE_LOOKUPS, N,
           veil_noise_wop_log2_p_fail(wp, w, fresh, (uint32_t)D));
    CU_ASSERT(ratio_ok("the bits' error variance", &bits_r));
    CU_ASSERT(ratio_ok("the output's error variance", &out_r));
    free(in);
    free(out);
    free(bits);
    free(table);
    fixture_free(&f);
}

/* A key set whose partition 0 is a classic set of a wider master key
 * (k N = 4096) and whose partition 1 is the 9-bit WoP set (k N = 2048, a
 * prefix): keygen makes the packing keys for partition 1 only; the key
 * survives a serialization round trip bit for bit (the packing keys' bodies
 * stored, their masks regenerated from the seed) and the file's size is
 * what veil_eval_key_serialized_bytes says; a lookup through partition 1
 * reads and writes values of the master key's 4097 words (the output
 * zero-extended from S_X), right and the same bits with the loaded key. */
static void test_key_set_file(void) {
    const veil_wop_params *wp = veil_wop_params_for_width(9);
    const veil_params *classic = veil_params_find("nn-p6-norm2e0-r2048-2m40");
    CU_ASSERT_PTR_NOT_NULL_FATAL(classic);
    CU_ASSERT_FATAL(veil_params_big_dim(classic) == 2 * veil_params_big_dim(&wp->pbs));
    const veil_params *parts[2] = {classic, &wp->pbs};
    uint8_t s0[32], s1[32], s2[32], s3[32], s4[32];
    veil_test_seed_bytes(50, s0);
    veil_test_seed_bytes(51, s1);
    veil_test_seed_bytes(52, s2);
    veil_test_seed_bytes(53, s3);
    veil_test_seed_bytes(54, s4);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL, *back = NULL;
    veil_encryptor *enc = NULL;
    veil_wop_ctx *ctx = NULL;
    CU_ASSERT_FATAL(veil_secret_key_new_set(parts, 2, s0, &sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new_rows(sk, NULL, VEIL_KEY_BOTH, s1, s2, &ek) == VEIL_OK);
    CU_ASSERT_PTR_NULL(ek->parts[0].pfpks);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ek->parts[1].pfpks);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_eval_key_serialize(ek, &buf, &len) == VEIL_OK);
    const uint32_t rows[2] = {ek->parts[0].ksk_rows, ek->parts[1].ksk_rows};
    CU_ASSERT_EQUAL(len, veil_eval_key_serialized_bytes(parts, rows, 2));
    CU_ASSERT_FATAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_FOURIER, &back) == VEIL_OK);
    CU_ASSERT_PTR_EQUAL(back->parts[1].params, &wp->pbs);
    CU_ASSERT_EQUAL(
        memcmp(back->parts[1].pfpks, ek->parts[1].pfpks, 8 * veil_eval_key_pfpks_words(&wp->pbs)),
        0);
    /* a body changed: the checksum refuses the file */
    buf[len / 2] ^= 1;
    veil_eval_key *bad = NULL;
    CU_ASSERT_EQUAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_FOURIER, &bad), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(bad);
    free(buf);

    const uint32_t D = veil_params_big_dim(classic);
    CU_ASSERT_FATAL(veil_encryptor_new(s3, s4, &enc) == VEIL_OK);
    CU_ASSERT_FATAL(veil_wop_ctx_new(wp, D, &ctx) == VEIL_OK);
    int64_t table[512];
    for (size_t i = 0; i < 512; i++)
        table[i] = (int64_t)(veil_test_rand() % 16);
    uint64_t *in = malloc(sizeof(uint64_t) * (D + 1)), *oa = malloc(sizeof(uint64_t) * (D + 1)),
             *ob = malloc(sizeof(uint64_t) * (D + 1));
    CU_ASSERT_FATAL(in && oa && ob);
    const int64_t x = (int64_t)(veil_test_rand() % 512);
    veil_encrypt_big(enc, sk, veil_encode(x, 9), in);
    CU_ASSERT_EQUAL(veil_wop_pbs(ctx, &ek->parts[1], table, 9, 0, veil_delta(OUT_BITS), in, oa),
                    VEIL_OK);
    CU_ASSERT_EQUAL(veil_wop_pbs(ctx, &back->parts[1], table, 9, 0, veil_delta(OUT_BITS), in, ob),
                    VEIL_OK);
    CU_ASSERT_EQUAL(memcmp(oa, ob, sizeof(uint64_t) * (D + 1)), 0);
    CU_ASSERT_EQUAL(veil_decode(veil_phase_big(sk, oa), OUT_BITS, 0), table[x]);
    size_t nonzero = 0; /* under S_X: nothing past its k N mask words */
    for (uint32_t t = veil_params_big_dim(&wp->pbs); t < D; t++)
        nonzero += oa[t] != 0;
    CU_ASSERT_EQUAL(nonzero, 0);
    free(in);
    free(oa);
    free(ob);
    veil_wop_ctx_free(ctx);
    veil_encryptor_free(enc);
    veil_eval_key_free(back);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("wop", NULL, NULL);
    VEIL_ADD_TEST(s, test_sets);
    VEIL_ADD_TEST(s, test_errors);
    VEIL_ADD_TEST(s, test_deterministic);
    VEIL_ADD_TEST(s, test_key_set_file);
    VEIL_ADD_TEST(s, test_lookup_widths);
    VEIL_ADD_TEST(s, test_noise);
#if WOP_ALL_SETS
    VEIL_ADD_TEST(s, test_every_set);
#endif
    return veil_test_run();
}
