// LABELS: crypto
/* Multi-bit PBS on the CPU (veil/tfhe.h "Multi-bit PBS"), the reference the
 * GPU kernels will be compared with (issue 13 part 3):
 *   - the key: every GGSW of a group encrypts the indicator of its subset,
 *     exactly one per group is 1 (decrypted with the secret key); the
 *     evaluation-key file carries it (round trip, same PBS bits);
 *   - the table: the six TFHE-rs sets first, then the derived ones
 *     (scripts/params/derive.py --grouping, nn-mb<g>-...; their grid, p_fail
 *     and key sizes in tests/test_params.c test_multibit_nn_sets);
 *   - correctness: a KS-PBS of every table entry, random tables, unsigned
 *     and signed, at the first multi-bit set (the cheapest); in
 *     test_multibit_slow.c at every published set and one derived set per
 *     grouping (nn-mb<g>-p4-norm2e5);
 *   - determinism: the same seeds give bit-identical keys and outputs, and
 *     veil_ks_pbs_many (lanes in lockstep) gives veil_ks_pbs's bits, and
 *     so does one PBS on several threads (veil_ks_pbs_threads);
 *   - noise: modulus switch and PBS output variance against the multi-bit
 *     model (veil/noise.h), the bound as in test_noise.c, at tfhers-mb2-1_1
 *     (test_multibit_slow.c: also tfhers-mb4-2_2, tfhers-mb3-2_2 and the
 *     derived nn-mb4-p4-norm2e5, 1000 PBS each). */
#include "testutil.h"
#include "veil/noise.h"
#include "veil/serialize.h"
#include "veil/tfhe.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under ASan/UBSan (make sanitize, a Debug build) a PBS costs tens of times
 * more: the noise check then runs 60 PBS (it checks the code path, and only
 * a gross error of the variance fails it; the bound follows from the count). */
#ifndef NOISE_S_PBS
#if VEIL_TEST_SANITIZED
#define NOISE_S_PBS 60
#else
#define NOISE_S_PBS 300
#endif
#endif
/* the multi-bit sets of engine/src/params.c: update with the table. The
 * TFHE-rs ones first, then derive.py --grouping 2,3,4's: 3 groupings x
 * precisions 1..5 x 2-norms 2^0..2^14 (engine/src/params_nn_mb.inc). */
#define EXPECT_PUBLISHED 6
#define EXPECT_DERIVED 225
#define EXPECT_SETS (EXPECT_PUBLISHED + EXPECT_DERIVED)

typedef veil_test_keys fixture;

static void test_table(void) {
    CU_ASSERT_EQUAL(veil_params_multibit_count(), EXPECT_SETS);
    CU_ASSERT_PTR_NULL(veil_params_multibit_at(veil_params_multibit_count()));
    unsigned seen[5] = {0};
    for (size_t i = 0; i < veil_params_multibit_count(); i++) {
        const veil_params *p = veil_params_multibit_at(i);
        CU_ASSERT(p->grouping >= 2 && p->grouping <= 4);
        if (p->grouping >= 2 && p->grouping <= 4) seen[p->grouping]++;
        CU_ASSERT_EQUAL(p->lwe_dim % p->grouping, 0);
        const int published = i < EXPECT_PUBLISHED;
        CU_ASSERT_EQUAL(published, !(p->flags & VEIL_PARAMS_NN));
        CU_ASSERT(p->source &&
                  strstr(p->source, published ? "MULTI_BIT_GROUP_" : "derive.py --grouping"));
        CU_ASSERT_PTR_EQUAL(veil_params_multibit_find(p->id), p);
        /* multi-bit ids are not classic ids: files, the compiler and the
         * GPU backend cannot reach them */
        CU_ASSERT_PTR_NULL(veil_params_find(p->id));
        CU_ASSERT(veil_eval_key_bsk_ggsws(p) == ((size_t)p->lwe_dim / p->grouping) << p->grouping);
        /* the published p_fail, recomputed with the multi-bit model (printed;
         * TFHE-rs optimised these sets with its own newer formulas); a
         * derived set's is at most 2^-40 (derive.py's target) */
        double in = p->norm2 * p->norm2 * veil_noise_pbs_output_variance(p);
        const double lp = veil_noise_log2_p_fail(p, p->precision, in);
        if (published) printf("  %-30s claimed %9.3f model %9.3f\n", p->id, p->log2_p_fail, lp);
        CU_ASSERT(published ? lp < -100.0 : lp <= -40.0);
    }
    for (unsigned g = 2; g <= 4; g++)
        CU_ASSERT(seen[g] >= 1);
    for (size_t i = 0; i < veil_params_count(); i++)
        CU_ASSERT_EQUAL(veil_params_at(i)->grouping, 0);
}

/* Decrypts GGSW rows (k, 0) of the first groups: phase m * g_0 + noise. */
static void test_key_indicators(void) {
    const veil_params *p = veil_params_multibit_find("tfhers-mb2-1_1-tuniform-2m128");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    fixture f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 20, &f));
    const uint32_t k = p->glwe_dim, N = p->poly_size, l = p->pbs_level, g = p->grouping;
    const size_t glwe = (size_t)(k + 1) * N, ggsw = (size_t)(k + 1) * l * glwe;
    uint64_t *s = malloc(8 * p->lwe_dim), *phase = malloc(8 * N);
    CU_ASSERT_FATAL(veil_test_sk_bits(f.sk, 0, s) == p->lwe_dim);
    const uint64_t g0 = (uint64_t)1 << (64 - p->pbs_base_log);
    const uint32_t groups = 16;
    uint32_t checked = 0;
    for (uint32_t q = 0; q < groups; q++) {
        uint32_t ones = 0;
        for (uint32_t t = 0; t < (1u << g); t++) {
            const uint64_t *row = f.ek->parts[0].bsk + (((size_t)q << g) | t) * ggsw +
                                  (size_t)k * l * glwe; /* row (k, 0) */
            CU_ASSERT_FATAL(veil_glwe_phase(f.sk, row, phase) == VEIL_OK);
            int64_t want = 1;
            for (uint32_t b = 0; b < g; b++)
                want &= (int64_t)(((t >> b) & 1) ? s[q * g + b] : 1 - s[q * g + b]);
            /* m * g0 rounded at g0 */
            const int64_t m = (int64_t)((phase[0] + g0 / 2) / g0);
            CU_ASSERT_EQUAL(m, want);
            ones += (uint32_t)(m == 1);
            checked++;
        }
        CU_ASSERT_EQUAL(ones, 1);
    }
    CU_ASSERT_EQUAL(checked, groups << g);
    /* the standard-domain key is what the PBS reads: no Fourier copy */
    CU_ASSERT_PTR_NULL(f.ek->parts[0].bsk_fourier);
    free(s);
    free(phase);
    veil_test_keys_free(&f);
}

/* The evaluation-key file carries a multi-bit BSK (veil/serialize.h, G_X =
 * (n/g) 2^g GGSWs, seeded like a classic one): the loaded key has the same
 * words, re-serializes to the same bytes, matches the secret key's
 * fingerprint and gives the same PBS bits; a flipped body byte is refused
 * by the checksum. */
static void test_key_file(void) {
    const veil_params *p = veil_params_multibit_find("tfhers-mb3-1_1-tuniform-2m128");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    fixture f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 21, &f));
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    CU_ASSERT_FATAL(veil_eval_key_serialize(f.ek, &buf, &len) == VEIL_OK);
    const veil_params *parts[1] = {p};
    CU_ASSERT_EQUAL(len, veil_eval_key_serialized_bytes(parts, NULL, 1));
    /* bodies only: (n/g) 2^g GGSWs of (k+1) l rows of N words */
    CU_ASSERT(len > 8 * veil_eval_key_bsk_words(p) / (p->glwe_dim + 1));
    veil_eval_key *ek2 = NULL;
    CU_ASSERT_FATAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_BOTH, &ek2) == VEIL_OK);
    CU_ASSERT_PTR_EQUAL(ek2->params, p);
    CU_ASSERT(memcmp(ek2->parts[0].bsk, f.ek->parts[0].bsk, 8 * veil_eval_key_bsk_words(p)) == 0);
    CU_ASSERT_PTR_NULL(ek2->parts[0].bsk_fourier);
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(ek2, f.sk), VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_serialize(ek2, &buf2, &len2) == VEIL_OK);
    CU_ASSERT(len2 == len && memcmp(buf, buf2, len) == 0);
    /* one KS-PBS through each key: the same bits */
    const size_t big1 = (size_t)veil_params_big_dim(p) + 1;
    int64_t table[4] = {2, 0, 3, 1};
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(p, table, p->precision, 0, veil_delta(p->precision), &lut) ==
                    VEIL_OK);
    uint64_t *in = malloc(8 * big1), *o1 = malloc(8 * big1), *o2 = malloc(8 * big1);
    veil_encrypt_big(f.enc, f.sk, veil_encode(2, p->precision), in);
    veil_ks_pbs(f.ctx, veil_eval_key_part(f.ek, 0), lut, in, o1);
    veil_ks_pbs(f.ctx, veil_eval_key_part(ek2, 0), lut, in, o2);
    CU_ASSERT(memcmp(o1, o2, 8 * big1) == 0);
    CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, o2), p->precision, 0), table[2]);
    /* a BSK body byte flipped: the checksum refuses it, nothing returned */
    veil_eval_key *bad = NULL;
    buf[VEIL_SERIAL_HEADER_BYTES + VEIL_SERIAL_PARAMS_ID_BYTES + 8] ^= 1;
    CU_ASSERT_EQUAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_BOTH, &bad), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(bad);
    free(in);
    free(o1);
    free(o2);
    veil_lut_free(lut);
    veil_serial_buffer_free(buf, len);
    veil_serial_buffer_free(buf2, len2);
    veil_eval_key_free(ek2);
    veil_test_keys_free(&f);
}

/* Every table entry through a KS-PBS; returns the number of wrong ones. */
static int pbs_all_entries(fixture *f, int is_signed) {
    const veil_params *p = f->p;
    const unsigned bits = p->precision;
    const int64_t entries = (int64_t)1 << bits;
    int64_t *table = calloc((size_t)entries, sizeof(int64_t));
    for (int64_t i = 0; i < entries; i++)
        table[i] = is_signed ? (int64_t)(veil_test_rand() % entries) - entries / 2
                             : (int64_t)(veil_test_rand() % entries);
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(p, table, bits, is_signed, veil_delta(bits), &lut) == VEIL_OK);
    const size_t big1 = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = malloc(8 * big1), *out = malloc(8 * big1);
    int bad = 0, ran = 0;
    for (int64_t i = 0; i < entries; i++) {
        int64_t m = is_signed ? i - entries / 2 : i;
        veil_encrypt_big(f->enc, f->sk, veil_encode(m, bits), in);
        veil_ks_pbs(f->ctx, veil_eval_key_part(f->ek, 0), lut, in, out);
        int64_t got = veil_decode(veil_phase_big(f->sk, out), bits, is_signed);
        ran++;
        if (got != table[i] && bad++ < 5)
            printf("%s %s: T[%" PRId64 "] = %" PRId64 ", PBS gave %" PRId64 "\n", p->id,
                   is_signed ? "signed" : "unsigned", m, table[i], got);
    }
    CU_ASSERT_EQUAL(ran, entries);
    free(in);
    free(out);
    free(table);
    veil_lut_free(lut);
    return bad;
}

/* Default run: one set (the first, the cheapest); test_multibit_slow.c:
 * every published set, and one derived set per grouping (k = 1, N = 2048,
 * l = 1 at each: a key of 106 to 226 MiB), unsigned and signed. */
#ifdef MB_ALL_SETS
static const char *DERIVED_PBS_SETS[] = {"nn-mb2-p4-norm2e5-2m40", "nn-mb3-p4-norm2e5-2m40",
                                         "nn-mb4-p4-norm2e5-2m40"};
#define N_DERIVED_PBS (sizeof DERIVED_PBS_SETS / sizeof *DERIVED_PBS_SETS)
#define PBS_SETS (EXPECT_PUBLISHED + N_DERIVED_PBS)
#else
#define PBS_SETS 1
#endif
static void pbs_at(const veil_params *p, int is_signed_too) {
    fixture f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 30, &f));
    CU_ASSERT_EQUAL(pbs_all_entries(&f, 0), 0);
    if (is_signed_too) CU_ASSERT_EQUAL(pbs_all_entries(&f, 1), 0);
    veil_test_keys_free(&f);
}

static void test_pbs_every_set(void) {
    size_t ran = 0;
    for (size_t i = 0; i < EXPECT_PUBLISHED && ran < PBS_SETS; i++) {
        pbs_at(veil_params_multibit_at(i), i == 0);
        ran++;
    }
#ifdef MB_ALL_SETS
    for (size_t i = 0; i < N_DERIVED_PBS; i++) {
        const veil_params *p = veil_params_multibit_find(DERIVED_PBS_SETS[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(p->grouping, i + 2);
        pbs_at(p, 1);
        ran++;
    }
#endif
    CU_ASSERT_EQUAL(ran, PBS_SETS);
}

/* Same seeds: the same key bits and output bits; the lanes of
 * veil_ks_pbs_many give the bits of lone veil_ks_pbs calls. */
static void test_deterministic(void) {
    const veil_params *p = veil_params_multibit_find("tfhers-mb3-1_1-tuniform-2m128");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    fixture a, b;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 40, &a));
    CU_ASSERT_FATAL(veil_test_keys_make(p, 40, &b));
    CU_ASSERT(memcmp(a.ek->parts[0].bsk, b.ek->parts[0].bsk, 8 * veil_eval_key_bsk_words(p)) == 0);
    const unsigned bits = p->precision;
    const size_t count = 3, big1 = (size_t)veil_params_big_dim(p) + 1;
    int64_t table[4] = {3, 1, 0, 2};
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut) == VEIL_OK);
    const veil_lut *luts[3] = {lut, lut, lut};
    uint64_t *in = malloc(8 * big1 * count), *o1 = malloc(8 * big1 * count),
             *o2 = malloc(8 * big1 * count), *o3 = malloc(8 * big1 * count);
    for (size_t c = 0; c < count; c++)
        veil_encrypt_big(a.enc, a.sk, veil_encode((int64_t)c, bits), in + c * big1);
    for (size_t c = 0; c < count; c++) {
        veil_ks_pbs(a.ctx, veil_eval_key_part(a.ek, 0), lut, in + c * big1, o1 + c * big1);
        veil_ks_pbs(b.ctx, veil_eval_key_part(b.ek, 0), lut, in + c * big1, o2 + c * big1);
    }
    veil_ks_pbs_many(b.ctx, veil_eval_key_part(b.ek, 0), luts, in, count, o3);
    CU_ASSERT(memcmp(o1, o2, 8 * big1 * count) == 0);
    CU_ASSERT(memcmp(o1, o3, 8 * big1 * count) == 0);
    for (size_t c = 0; c < count; c++)
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(a.sk, o1 + c * big1), bits, 0), table[c]);
    free(in);
    free(o1);
    free(o2);
    free(o3);
    veil_lut_free(lut);
    veil_test_keys_free(&a);
    veil_test_keys_free(&b);
}

/* One PBS on T threads (veil_ks_pbs_threads: every thread forms groups'
 * GGSWs, the caller applies them in order) gives the one-thread bits, for
 * T = 1, 2, 3 and 5 (more threads than this machine may have cores: the
 * waits then yield), each a few times since the groups go to whichever
 * thread is free. */
static void test_threads(void) {
    const veil_params *p = veil_params_multibit_find("tfhers-mb3-1_1-tuniform-2m128");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    fixture f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 45, &f));
    enum { MAX_T = 5, COUNT = 4 };
    veil_pbs_ctx *ctx[MAX_T] = {0};
    for (int t = 0; t < MAX_T; t++)
        CU_ASSERT_FATAL(veil_pbs_ctx_new(p, &ctx[t]) == VEIL_OK);
    const unsigned bits = p->precision;
    const size_t big1 = (size_t)veil_params_big_dim(p) + 1;
    int64_t table[4] = {2, 0, 3, 1};
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut) == VEIL_OK);
    uint64_t *in = malloc(8 * big1 * COUNT), *ref = malloc(8 * big1 * COUNT), *o = malloc(8 * big1);
    const veil_pbs_key *pk = veil_eval_key_part(f.ek, 0);
    for (size_t c = 0; c < COUNT; c++) {
        veil_encrypt_big(f.enc, f.sk, veil_encode((int64_t)c, bits), in + c * big1);
        veil_ks_pbs(f.ctx, pk, lut, in + c * big1, ref + c * big1);
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(f.sk, ref + c * big1), bits, 0), table[c]);
    }
    const unsigned threads[] = {1, 2, 3, 5};
    size_t same = 0, runs = 0;
    for (size_t i = 0; i < sizeof threads / sizeof *threads; i++)
        for (size_t c = 0; c < COUNT; c++) {
            memset(o, 0, 8 * big1);
            veil_ks_pbs_threads(ctx, threads[i], pk, lut, in + c * big1, o);
            same += memcmp(o, ref + c * big1, 8 * big1) == 0;
            runs++;
        }
    CU_ASSERT_EQUAL(same, runs);
    free(in);
    free(ref);
    free(o);
    veil_lut_free(lut);
    for (int t = 0; t < MAX_T; t++)
        veil_pbs_ctx_free(ctx[t]);
    veil_test_keys_free(&f);
}

/* Accepts measured in [lo_model * band lo, slack * model * band hi], the
 * band veil_test_variance_band's at 5 standard deviations (kurtosis at
 * least 3), test_noise.c's rule. */
static int check(const char *what, const char *id, double s2, double s4, int n, double model,
                 double lo_model, double slack) {
    const double measured = s2 / n, kurt = fmax(s4 / n / (measured * measured), 3.0);
    double lo, hi;
    veil_test_variance_band(n, kurt, 5.0, &lo, &hi);
    lo *= lo_model;
    hi *= slack * model;
    const int ok = measured >= lo && measured <= hi;
    printf("  %-30s %-14s measured 2^%.3f model 2^%.3f ratio %.3f accept [%.3f, %.3f] "
           "(%d samples) %s\n",
           id, what, log2(measured), log2(model), measured / model, lo / model, hi / model, n,
           ok ? "ok" : "OUT OF TOLERANCE");
    return ok;
}

/* Noise against the multi-bit model at set p:
 *   - modulus switch (NOISE_S_MS keyswitch outputs): the switched phase,
 *     body minus each group's selected subset switched as a sum, against
 *     the exact phase; model veil_noise_ms_variance;
 *   - PBS output (NOISE_S_PBS): the FFT term is Concrete's fit to Zama's
 *     FFT, an upper estimate for veil's (test_fft_error.c), and FFT error
 *     only adds variance: accept down to the model without its FFT term. */
#ifndef NOISE_S_MS
#define NOISE_S_MS 5000
#endif
/* No slack: the upper bound is the model itself (plus 5 standard errors).
 * The gap of 1.1x to 1.6x measured before (docs/PARAMS.md section 9) was a
 * bias of the decomposition's rounding on the accumulator the inverse FFT
 * wrote (ties rounded up), fixed by rounding ties to even
 * (VEIL_GADGET_INIT_EVEN); since then 0.85x to 1.06x the model at every set
 * (docs/PARAMS.md section 9). */
#define PBS_MODEL_GAP 1.0
#ifdef MB_ALL_SETS
static const char *NOISE_SETS[] = {"tfhers-mb2-1_1-tuniform-2m128", "tfhers-mb4-2_2-tuniform-2m128",
                                   "tfhers-mb3-2_2-tuniform-2m128", "nn-mb4-p4-norm2e5-2m40"};
#else
static const char *NOISE_SETS[] = {"tfhers-mb2-1_1-tuniform-2m128"};
#endif
#define N_NOISE_SETS (sizeof NOISE_SETS / sizeof *NOISE_SETS)

static void noise_at(const veil_params *p) {
    fixture f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 50, &f));
    const uint32_t n = p->lwe_dim, N = p->poly_size, g = p->grouping;
    const uint32_t lg = (uint32_t)__builtin_ctz(2 * N);
    const size_t big1 = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = malloc(8 * big1), *out = malloc(8 * big1), *sm = malloc(8 * (n + 1));
    uint64_t *s = malloc(8 * n);
    CU_ASSERT_FATAL(veil_test_sk_bits(f.sk, 0, s) == n);
    double s2 = 0, s4 = 0;
    int cnt = 0;
    for (int i = 0; i < NOISE_S_MS; i++) {
        veil_encrypt_big(f.enc, f.sk, 0, in);
        veil_keyswitch(veil_eval_key_part(f.ek, 0), in, sm);
        uint32_t ph = veil_ms_body(sm[n], lg);
        for (uint32_t q = 0; q < n / g; q++) {
            uint64_t sel = 0;
            for (uint32_t b = 0; b < g; b++)
                sel += sm[q * g + b] * s[q * g + b];
            ph -= veil_ms_coef(sel, lg);
        }
        ph &= 2 * N - 1;
        const int64_t centred = ph >= N ? (int64_t)ph - 2 * (int64_t)N : (int64_t)ph;
        /* + 1/2: the centre of the phase's box (veil_ms_body) */
        const double e = ((double)centred + 0.5) * (0x1p64 / (2.0 * N)) -
                         (double)(int64_t)veil_phase_small(f.sk, 0, sm);
        s2 += e * e;
        s4 += e * e * e * e;
        cnt++;
    }
    CU_ASSERT_EQUAL(cnt, NOISE_S_MS);
    /* the model assumes (n/g)(1 - 2^-g) groups whose key bits are not all 0
     * (only those add a rounding): scale it to this key's count, which
     * varies by a few percent from key to key (binomial) */
    uint32_t nonempty = 0;
    for (uint32_t q = 0; q < n / g; q++) {
        uint64_t any = 0;
        for (uint32_t b = 0; b < g; b++)
            any |= s[q * g + b];
        nonempty += (uint32_t)any;
    }
    const double expect_groups = (double)(n / g) * (1.0 - ldexp(1.0, -(int)g));
    const double v_ms = veil_noise_ms_variance(p) * (nonempty + 1.0) / (expect_groups + 1.0);
    printf("\n  (%u of %u groups non-empty, model expects %.1f)\n", nonempty, n / g, expect_groups);
    CU_ASSERT(check("modulus switch", p->id, s2, s4, cnt, v_ms, v_ms, 1.0));
    int64_t one[256];
    for (int i = 0; i < 256; i++)
        one[i] = 1;
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(p, one, p->precision, 0, veil_delta(p->precision), &lut) ==
                    VEIL_OK);
    s2 = s4 = 0;
    cnt = 0;
    for (int i = 0; i < NOISE_S_PBS; i++) {
        veil_encrypt_big(f.enc, f.sk, veil_encode(i % (1 << p->precision), p->precision), in);
        veil_ks_pbs(f.ctx, veil_eval_key_part(f.ek, 0), lut, in, out);
        const double e = (double)(int64_t)(veil_phase_big(f.sk, out) - veil_delta(p->precision));
        s2 += e * e;
        s4 += e * e * e * e;
        cnt++;
    }
    CU_ASSERT_EQUAL(cnt, NOISE_S_PBS);
    const double model = veil_noise_pbs_output_variance(p);
    const double fft = (double)(n / g) * veil_noise_multibit_fft_variance(p);
    printf("  (PBS model: FFT term 2^%.3f of 2^%.3f)\n", log2(fft), log2(model));
    CU_ASSERT(check("PBS output", p->id, s2, s4, cnt, model, model - fft, PBS_MODEL_GAP));
    free(in);
    free(out);
    free(sm);
    free(s);
    veil_lut_free(lut);
    veil_test_keys_free(&f);
}

static void test_noise(void) {
    size_t ran = 0;
    for (size_t i = 0; i < N_NOISE_SETS; i++) {
        const veil_params *p = veil_params_multibit_find(NOISE_SETS[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        noise_at(p);
        ran++;
    }
    CU_ASSERT_EQUAL(ran, N_NOISE_SETS);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("multibit", NULL, NULL);
    VEIL_ADD_TEST(s, test_table);
    VEIL_ADD_TEST(s, test_key_indicators);
    VEIL_ADD_TEST(s, test_key_file);
    VEIL_ADD_TEST(s, test_deterministic);
    VEIL_ADD_TEST(s, test_threads);
    VEIL_ADD_TEST(s, test_pbs_every_set);
    VEIL_ADD_TEST(s, test_noise);
    return veil_test_run();
}
