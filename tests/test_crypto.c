// LABELS: crypto
// COST: 150
/* The TFHE core on every parameter set with N <= 2048 (larger ones:
 * test_crypto_large.c): LWE, GLWE and GGSW encryption round trips, leveled identities,
 * keyswitch, PBS of every table entry, signed and unsigned (8 entries spread
 * over the table in a sanitizer build: pbs_entries_read). */
#include "testutil.h"
#include "veil/gadget.h"
#include "veil/ks32.h"
#include "veil/tfhe.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#ifndef VEIL_TEST_MAX_N
#define VEIL_TEST_MAX_N 2048
#define VEIL_TEST_MIN_N 0
#endif

typedef veil_test_keys fixture;

/* The keys of set p, kept until a test asks for another set's (freed at the
 * end): every test here uses seed streams 1..5, so consecutive tests on one
 * set (test_crypto_n8192's six) make its keys once instead of once each, an
 * N = 8192 evaluation key being most of such a test's time. The encryptor's
 * stream goes on from one test to the next. */
static fixture g_keys;
static int keys_for(const veil_params *p, fixture *f) {
    if (g_keys.p != p) {
        veil_test_keys_free(&g_keys);
        if (!veil_test_keys_make(p, 1, &g_keys)) {
            veil_test_keys_free(&g_keys); /* never hand out half-made keys */
            return 0;
        }
    }
    *f = g_keys;
    return 1;
}

static int in_scope(const veil_params *p) {
#ifdef VEIL_TEST_ONLY_ID
    return !strcmp(p->id, VEIL_TEST_ONLY_ID);
#endif
    return p->poly_size <= VEIL_TEST_MAX_N && p->poly_size > VEIL_TEST_MIN_N &&
           !(p->flags & VEIL_PARAMS_SLOW) && !(p->flags & VEIL_PARAMS_NN);
}

/* How many sets each variant covers (the parameter table's count of sets
 * in scope: update it with the table). Every loop below counts the sets it
 * ran and asserts it ran exactly these, so a scope that matches nothing (a
 * renamed set, a changed flag) fails instead of passing with no check. */
#ifndef VEIL_TEST_EXPECT_SETS
#ifdef VEIL_TEST_ONLY_ID
#define VEIL_TEST_EXPECT_SETS 1
#else
#define VEIL_TEST_EXPECT_SETS 8 /* N <= 2048, not slow, not NN */
#endif
#endif

static size_t sets_in_scope(void) {
    size_t n = 0;
    for (size_t s = 0; s < veil_params_count(); s++)
        n += (size_t)in_scope(veil_params_at(s));
    return n;
}

static void check_sets_ran(const char *what, size_t ran) {
    printf("\n  %s: %zu parameter sets", what, ran);
    CU_ASSERT(ran > 0);
    CU_ASSERT_EQUAL(ran, sets_in_scope());
    CU_ASSERT_EQUAL(ran, VEIL_TEST_EXPECT_SETS);
}

static void test_encrypt_decrypt(void) {
    size_t ran = 0;
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (!in_scope(p)) continue;
        ran++;
        fixture f = {0};
        CU_ASSERT_FATAL(keys_for(p, &f));
        const unsigned bits = p->precision;
        uint64_t *small = malloc(8 * (p->lwe_dim + 1));
        uint64_t *big = malloc(8 * (veil_params_big_dim(p) + 1));
        for (int64_t m = 0; m < (1 << bits); m++) {
            veil_encrypt_small(f.enc, f.sk, 0, veil_encode(m, bits), small);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_small(f.sk, 0, small), bits, 0), m);
            veil_encrypt_big(f.enc, f.sk, veil_encode(m, bits), big);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, big), bits, 0), m);
            /* signed: m - 2^(bits-1) */
            int64_t sm = m - (1 << (bits - 1));
            veil_encrypt_big(f.enc, f.sk, veil_encode(sm, bits), big);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, big), bits, 1), sm);
        }
        free(small);
        free(big);
    }
    check_sets_ran("encrypt_decrypt", ran);
}

static void test_glwe_ggsw(void) {
    size_t ran = 0;
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (!in_scope(p)) continue;
        ran++;
        fixture f = {0};
        CU_ASSERT_FATAL(keys_for(p, &f));
        const uint32_t N = p->poly_size, k = p->glwe_dim;
        const unsigned bits = p->precision;
        uint64_t *msg = malloc(8 * N), *ph = malloc(8 * N),
                 *S = malloc(8 * (size_t)veil_params_big_dim(p));
        int64_t *m = malloc(8 * N);
        uint64_t *ct = malloc(8 * (size_t)(k + 1) * N * (k + 1) * p->pbs_level);
        for (uint32_t t = 0; t < N; t++) {
            m[t] = (int64_t)(veil_test_rand() % (1u << bits));
            msg[t] = veil_encode(m[t], bits);
        }
        CU_ASSERT_FATAL(veil_glwe_encrypt(f.enc, f.sk, msg, ct) == VEIL_OK);
        CU_ASSERT_FATAL(veil_glwe_phase(f.sk, ct, ph) == VEIL_OK);
        int bad = 0;
        for (uint32_t t = 0; t < N; t++)
            bad += veil_decode(ph[t], bits, 0) != m[t];
        CU_ASSERT_EQUAL(bad, 0);
        /* GGSW: row (k, j) has phase m * g_j; rows (c < k, j) have phase
         * -m * g_j * S_c */
        const int64_t vals[4] = {0, 1, -1, 3};
        const size_t glwe_words = (size_t)(k + 1) * N;
        /* a base of 2^64 (one level) is refused: its digit shift is 64 */
        CU_ASSERT_EQUAL(veil_ggsw_encrypt(f.enc, f.sk, 1, 64, 1, ct), VEIL_ERR_ARG);
        for (int v = 0; v < 4; v++) {
            CU_ASSERT_FATAL(veil_ggsw_encrypt(f.enc, f.sk, vals[v], p->pbs_base_log, p->pbs_level,
                                              ct) == VEIL_OK);
            for (uint32_t j = 0; j < p->pbs_level; j++) {
                const unsigned shift = 64 - p->pbs_base_log * (j + 1);
                CU_ASSERT_FATAL(veil_glwe_phase(f.sk,
                                                ct + ((size_t)k * p->pbs_level + j) * glwe_words,
                                                ph) == VEIL_OK);
                int64_t got = (int64_t)(ph[0] + ((uint64_t)1 << (shift - 1))) >> shift;
                CU_ASSERT_EQUAL(got, vals[v]);
                CU_ASSERT_FATAL(veil_glwe_phase(f.sk, ct + (size_t)j * glwe_words, ph) == VEIL_OK);
                int rowbad = 0;
                CU_ASSERT_FATAL(veil_test_sk_bits(f.sk, VEIL_TEST_MASTER, S) ==
                                veil_params_big_dim(p));
                for (uint32_t t = 0; t < N; t++) {
                    int64_t want = -vals[v] * (int64_t)S[t]; /* c = 0 */
                    int64_t g = (int64_t)(ph[t] + ((uint64_t)1 << (shift - 1))) >> shift;
                    rowbad += g != want;
                }
                CU_ASSERT_EQUAL(rowbad, 0);
            }
        }
        free(msg);
        free(ph);
        free(S);
        free(m);
        free(ct);
    }
    check_sets_ran("glwe_ggsw", ran);
}

static void test_leveled(void) {
    size_t ran = 0;
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (!in_scope(p)) continue;
        ran++;
        fixture f = {0};
        CU_ASSERT_FATAL(keys_for(p, &f));
        const unsigned bits = p->precision + 3; /* room for sums */
        const uint32_t d = veil_params_big_dim(p);
        const size_t w = d + 1;
        uint64_t *ct = malloc(8 * w * 6);
        uint64_t *a = ct, *b = ct + w, *o = ct + 2 * w, *v = ct + 3 * w;
        for (int iter = 0; iter < 20; iter++) {
            int64_t x = (int64_t)(veil_test_rand() % 8) - 4;
            int64_t y = (int64_t)(veil_test_rand() % 8) - 4;
            veil_encrypt_big(f.enc, f.sk, veil_encode(x, bits), a);
            veil_encrypt_big(f.enc, f.sk, veil_encode(y, bits), b);
            veil_lwe_add(o, a, b, d);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, o), bits, 1), x + y);
            veil_lwe_sub(o, a, b, d);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, o), bits, 1), x - y);
            veil_lwe_neg(o, a, d);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, o), bits, 1), -x);
            veil_lwe_mul_scalar(o, a, -3, d);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, o), bits, 1), -3 * x);
            veil_lwe_add_plain(o, veil_encode(5, bits), d);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, o), bits, 1), -3 * x + 5);
            /* dot product of 3 ciphertexts */
            int64_t z = (int64_t)(veil_test_rand() % 4);
            memcpy(v, a, 8 * w);
            memcpy(v + w, b, 8 * w);
            veil_encrypt_big(f.enc, f.sk, veil_encode(z, bits), v + 2 * w);
            int64_t wt[3] = {2, -1, 1};
            veil_lwe_dot(o, v, wt, 3, d);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, o), bits, 1), 2 * x - y + z);
        }
        free(ct);
    }
    check_sets_ran("leveled", ran);
}

/* veil_keyswitch from its definition (veil/ks32.h): the body rounded to 32
 * bits minus the digits times the 32-bit key rows, mod 2^32, in each word's
 * top half */
static void keyswitch_ref(const veil_pbs_key *pk, const uint64_t *in, uint64_t *out) {
    const veil_params *p = pk->params;
    const uint32_t n = p->lwe_dim, l = p->ks_level;
    uint32_t *acc = calloc(n + 1, sizeof *acc);
    int64_t d[64];
    CU_ASSERT_FATAL(acc != NULL && l <= 64);
    acc[n] = veil_ks32_round(in[pk->in_dim]);
    for (uint32_t i = 0; i < pk->in_dim; i++) {
        veil_gadget_decompose(in[i], p->ks_base_log, l, d);
        for (uint32_t j = 0; j < l; j++) {
            const uint32_t *row = pk->ksk32 + ((size_t)i * l + j) * (n + 1);
            for (uint32_t t = 0; t <= n; t++)
                acc[t] -= (uint32_t)d[j] * row[t];
        }
    }
    for (uint32_t t = 0; t <= n; t++)
        out[t] = (uint64_t)acc[t] << 32;
    free(acc);
}

static void test_keyswitch(void) {
    size_t ran = 0;
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (!in_scope(p)) continue;
        ran++;
        fixture f = {0};
        CU_ASSERT_FATAL(keys_for(p, &f));
        const unsigned bits = p->precision;
        uint64_t *big = malloc(8 * (veil_params_big_dim(p) + 1));
        uint64_t *small = malloc(8 * (p->lwe_dim + 1));
        for (int64_t m = 0; m < (1 << bits); m++) {
            veil_encrypt_big(f.enc, f.sk, veil_encode(m, bits), big);
            veil_keyswitch(veil_eval_key_part(f.ek, 0), big, small);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_small(f.sk, 0, small), bits, 0), m);
        }
        /* the words: the definition's, whatever the grouping (16 lanes,
         * VEIL_KS_LANES, and a rest of 3) or the split over threads
         * (veil_keyswitch_part) */
        enum { C = VEIL_KS_LANES + 3 };
        const veil_pbs_key *pk = veil_eval_key_part(f.ek, 0);
        const size_t b1 = veil_params_big_dim(p) + 1, s1 = p->lwe_dim + 1;
        uint64_t *bigs = malloc(8 * C * b1), *many = malloc(8 * C * s1), *ref = malloc(8 * s1),
                 *half = malloc(8 * s1);
        CU_ASSERT_FATAL(bigs && many && ref && half);
        for (size_t c = 0; c < C; c++)
            veil_encrypt_big(f.enc, f.sk, veil_encode((int64_t)c % (1 << bits), bits),
                             bigs + c * b1);
        veil_keyswitch_many(pk, bigs, C, many);
        size_t bad = 0, low = 0;
        for (size_t c = 0; c < C; c++) {
            keyswitch_ref(pk, bigs + c * b1, ref);
            bad += memcmp(ref, many + c * s1, 8 * s1) != 0;
            for (size_t t = 0; t < s1; t++)
                low += (uint32_t)many[c * s1 + t] != 0;
        }
        const uint32_t mid = pk->in_dim / 3;
        veil_keyswitch_part(pk, bigs, 0, mid, small);
        veil_keyswitch_part(pk, bigs, mid, pk->in_dim, half);
        for (size_t t = 0; t < s1; t++)
            small[t] += half[t];
        small[p->lwe_dim] += veil_ks32_body(bigs[pk->in_dim]);
        bad += memcmp(small, many, 8 * s1) != 0;
        /* masks 0 past a prefix (a value under part of the master key):
         * the keyswitch reads rows only up to a group's widest mask
         * (veil_lwe_mask_end), the same words; groups of narrow lanes
         * alone (0, 1, half the key wide), one alone, one full lane with
         * them */
        const uint32_t keep[4] = {0, 1, pk->in_dim / 2, pk->in_dim};
        for (size_t c = 0; c < 4; c++) {
            memset(bigs + c * b1 + keep[c], 0, 8 * (pk->in_dim - keep[c]));
            CU_ASSERT(veil_lwe_mask_end(bigs + c * b1, pk->in_dim) <= keep[c]);
        }
        CU_ASSERT_EQUAL(veil_lwe_mask_end(bigs, pk->in_dim), 0);
        CU_ASSERT_EQUAL(veil_lwe_mask_end(bigs + 1 * b1, pk->in_dim), bigs[b1] != 0);
        for (size_t g = 0; g < 3; g++) {
            const size_t first = g == 2 ? 2 : 0, count = g == 0 ? 3 : g == 1 ? 4 : 1;
            veil_keyswitch_many(pk, bigs + first * b1, count, many);
            for (size_t c = 0; c < count; c++) {
                keyswitch_ref(pk, bigs + (first + c) * b1, ref);
                bad += memcmp(ref, many + c * s1, 8 * s1) != 0;
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(low, 0);
        free(bigs), free(many), free(ref), free(half);
        free(big);
        free(small);
    }
    check_sets_ran("keyswitch", ran);
}

/* Table entries a PBS test reads: every one, or in a sanitizer build
 * (testutil.h VEIL_TEST_SANITIZED; make sanitize) 8 of them evenly spread
 * from the first to the last (both included): the same code path per entry,
 * and make test still reads every entry. */
#define PBS_ENTRIES_SANITIZED 8
static int64_t pbs_entries_read(int64_t entries) {
    return VEIL_TEST_SANITIZED && entries > PBS_ENTRIES_SANITIZED ? PBS_ENTRIES_SANITIZED : entries;
}

static void pbs_all_entries(const veil_params *p, int is_signed) {
    fixture f = {0};
    CU_ASSERT_FATAL(keys_for(p, &f));
    const unsigned bits = p->precision;
    const int64_t entries = (int64_t)1 << bits;
    int64_t *table = malloc(sizeof(int64_t) * entries);
    /* random outputs of `bits` bits, signed or not */
    for (int64_t i = 0; i < entries; i++)
        table[i] = is_signed ? (int64_t)(veil_test_rand() % entries) - entries / 2
                             : (int64_t)(veil_test_rand() % entries);
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(p, table, bits, is_signed, veil_delta(bits), &lut) == VEIL_OK);
    uint64_t *in = malloc(8 * (veil_params_big_dim(p) + 1));
    uint64_t *out = malloc(8 * (veil_params_big_dim(p) + 1));
    int bad = 0;
    const int64_t reads = pbs_entries_read(entries);
    int64_t read = 0;
    for (int64_t j = 0; j < reads; j++) {
        const int64_t i = reads == entries ? j : j * (entries - 1) / (reads - 1);
        read++;
        int64_t m = is_signed ? i - entries / 2 : i;
        veil_encrypt_big(f.enc, f.sk, veil_encode(m, bits), in);
        veil_ks_pbs(f.ctx, veil_eval_key_part(f.ek, 0), lut, in, out);
        int64_t got = veil_decode(veil_phase_big(f.sk, out), bits, is_signed);
        if (got != table[i]) {
            if (bad++ < 5)
                printf("%s %s: T[%" PRId64 "] = %" PRId64 ", PBS gave %" PRId64 "\n", p->id,
                       is_signed ? "signed" : "unsigned", m, table[i], got);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(read, VEIL_TEST_SANITIZED ? reads : entries);
    if (reads < entries)
        printf("\n  %s %s: %lld of %lld entries (sanitizer build)", p->id,
               is_signed ? "signed" : "unsigned", (long long)reads, (long long)entries);
    free(in);
    free(out);
    free(table);
    veil_lut_free(lut);
}

static void test_pbs_unsigned(void) {
    size_t ran = 0;
    for (size_t s = 0; s < veil_params_count(); s++)
        if (in_scope(veil_params_at(s))) pbs_all_entries(veil_params_at(s), 0), ran++;
    check_sets_ran("pbs_unsigned", ran);
}

static void test_pbs_signed(void) {
    size_t ran = 0;
    for (size_t s = 0; s < veil_params_count(); s++)
        if (in_scope(veil_params_at(s))) pbs_all_entries(veil_params_at(s), 1), ran++;
    check_sets_ran("pbs_signed", ran);
}

/* The box of the table a PBS reads is centred on its value: a small LWE
 * with a zero mask (its phase is its body, exactly) reads value x for the
 * bodies x Delta + d, d in [-half, half) switched steps (64 - log2 2N bits
 * each) and x +- 1 just outside, on both sides: the margin is half a box
 * either way, the noise model's 2^(62 - p) (veil_ms_body). Rounding the
 * body instead of flooring it read x + 1 at d = half - 1 (64-bit units). */
static void test_pbs_box_edges(void) {
    size_t ran = 0;
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (!in_scope(p)) continue;
        fixture f = {0};
        CU_ASSERT_FATAL(keys_for(p, &f));
        const unsigned bits = p->precision;
        const int64_t entries = (int64_t)1 << bits;
        const uint32_t N = p->poly_size, lg = (uint32_t)__builtin_ctz(2 * N);
        const uint64_t half = (uint64_t)(N >> bits) / 2 << (64 - lg);
        CU_ASSERT_FATAL(entries >= 4 && half > 0);
        int64_t *table = malloc(sizeof(int64_t) * entries);
        for (int64_t i = 0; i < entries; i++)
            table[i] = i;
        veil_lut *lut;
        CU_ASSERT_FATAL(veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut) == VEIL_OK);
        const uint32_t n = p->lwe_dim;
        uint64_t *small = calloc(n + 1, 8), *out = malloc(8 * (veil_params_big_dim(p) + 1));
        const int64_t xs[2] = {1, entries - 2};
        /* body offset from x Delta, and the value it must read (relative) */
        const struct {
            uint64_t d;
            int dx;
        } edges[4] = {{0 - half - 1, -1}, {0 - half, 0}, {half - 1, 0}, {half, 1}};
        for (int xi = 0; xi < 2; xi++)
            for (int e = 0; e < 4; e++) {
                small[n] = veil_encode(xs[xi], bits) + edges[e].d;
                veil_pbs(f.ctx, veil_eval_key_part(f.ek, 0), lut, small, out);
                const int64_t got = veil_decode(veil_phase_big(f.sk, out), bits, 0);
                if (got != xs[xi] + edges[e].dx)
                    printf("\n  %s: x = %lld, body offset %+lld: read %lld, expected %lld", p->id,
                           (long long)xs[xi], (long long)(int64_t)edges[e].d, (long long)got,
                           (long long)(xs[xi] + edges[e].dx));
                CU_ASSERT_EQUAL(got, xs[xi] + edges[e].dx);
            }
        free(small), free(out), free(table);
        veil_lut_free(lut);
        ran++;
    }
    check_sets_ran("pbs_box_edges", ran);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("tfhe", NULL, NULL);
    VEIL_ADD_TEST(s, test_encrypt_decrypt);
    VEIL_ADD_TEST(s, test_glwe_ggsw);
    VEIL_ADD_TEST(s, test_leveled);
    VEIL_ADD_TEST(s, test_keyswitch);
    VEIL_ADD_TEST(s, test_pbs_unsigned);
    VEIL_ADD_TEST(s, test_pbs_signed);
    VEIL_ADD_TEST(s, test_pbs_box_edges);
    const int rc = veil_test_run();
    veil_test_keys_free(&g_keys);
    return rc;
}
