// LABELS: unit model crypto
// COST: 240
// LINKS: veil_host
/* Exact wide lookups (veil/program.h, "Wide lookups"): a lookup wider than
 * the program's PBS precision is decomposed into narrower PBS and must give
 * T[x] for every x of its range.
 *
 * - Clear reference over every input value: tables with random steps
 *   (non-monotone, per-channel) on inputs of 9 to 13 bits (14 to 16 in
 *   test_wide_slow.c, label slow, which includes this file; 9 to 11 under
 *   a sanitizer build), each decomposed
 *   at several PBS widths, simulated on all 2^w values and compared with the
 *   table itself. No parameter set is needed for this (simulate only when
 *   none fits).
 * - Encrypted on the cpu backend: a 6-bit lookup read with 3-bit PBS (two
 *   levels of decomposition), every input value (16 spread from 0 to 63 in
 *   a sanitizer build, testutil.h VEIL_TEST_SANITIZED), equal to simulate and to
 *   the table; then the same program behind a linear layer whose calibration
 *   range is far narrower than what the test inputs reach (margin 0), so
 *   lookups and the output leave their compiled ranges: encrypted must still
 *   equal simulate value for value, also where the top digit's threshold
 *   reads see their index through the padding bit (a weight of 2 on a
 *   quarter of the range calibrated, 2-bit reads); a backend without the
 *   extraction refuses threshold reads. */
#include "../engine/src/program_internal.h" /* veil_node_eval: the threshold reads' indices */
#include "testutil.h"
#include "wide_model.h"
#include "veil/exec.h"
#include "veil/program.h"
#include "../host/backend_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef WIDE_MIN_BITS
#define WIDE_MIN_BITS 9
#if VEIL_TEST_SANITIZED /* 9 to 11 bits there (make sanitize) */
#define WIDE_MAX_BITS 11
#else
#define WIDE_MAX_BITS 13
#endif
#define WIDE_ENCRYPTED 1
#endif

/* The compiler's defaults with the digits only, this file's subject
 * (--wop auto, the default, takes the WoP-PBS for random tables). */
static void digits_default(veil_compile_options *o) {
    veil_compile_options_default(o);
    o->wop = VEIL_WOP_OFF;
}

/* calibration on the lower eighth */
static veil_model *make_wide(unsigned w, unsigned max_steps, int with_linear) {
    return make_wide_cal(w, max_steps, with_linear, 8);
}

/* Every x in [0, 2^w) for both elements. */
static int64_t *all_inputs(unsigned w) {
    const size_t T = (size_t)1 << w;
    int64_t *x = malloc(2 * T * sizeof *x);
    for (size_t i = 0; i < T; i++)
        x[2 * i] = x[2 * i + 1] = (int64_t)i;
    return x;
}

/* The options of the clear checks: worst-case bounds, simulate only, reads
 * of lookup_bits (0: the cost model's width). */
static veil_compile_options sim_options(unsigned lookup_bits) {
    veil_compile_options o;
    digits_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    o.lookup_bits = lookup_bits;
    o.simulate_only = 1;
    return o;
}

/* The LUT nodes read by one rotation for several results (veil_node.rotation_results). */
static size_t threshold_reads(const veil_program *p) {
    size_t k = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        k += p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].rotation_results > 1;
    return k;
}

/* Compiles m (one 2-element lookup of w bits) with sim_options(lookup_bits)
 * and simulates every value: the values that differ from the table (SIZE_MAX
 * when it does not compile); *pbs and *reads, when asked: the program's PBS
 * a sample and its threshold-read nodes. */
static size_t wrong_values(const veil_model *m, unsigned w, unsigned lookup_bits, uint64_t *pbs,
                           size_t *reads) {
    const size_t T = (size_t)1 << w;
    const veil_compile_options o = sim_options(lookup_bits);
    veil_program *p = NULL;
    veil_status st = veil_program_compile(m, &o, &p);
    if (st) {
        fprintf(stderr, "\n  w=%u read=%u: %s\n", w, lookup_bits, veil_error_message());
        return SIZE_MAX;
    }
    if (pbs) *pbs = p->pbs_per_sample;
    if (reads) *reads = threshold_reads(p);
    int64_t *x = all_inputs(w), *y = malloc(2 * T * sizeof *y);
    size_t bad = 0;
    CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)&x, T, &y, NULL, NULL),
                    VEIL_OK);
    for (size_t i = 0; i < 2 * T; i++)
        bad += y[i] != m->layers[0].table[(i % 2) * T + (size_t)x[i]];
    veil_program_free(p);
    free(x);
    free(y);
    return bad;
}

static unsigned widest_read(const veil_program *p) {
    unsigned b = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].in_bits > b) b = p->nodes[i].in_bits;
    return b;
}

static void test_every_value_every_width(void) {
    static const unsigned reads[] = {3, 4, 6, 8};
    size_t cases = 0;
    for (unsigned w = WIDE_MIN_BITS; w <= WIDE_MAX_BITS; w++) {
        veil_model *m = make_wide(w, w < 12 ? 24 : 12, 0);
        const size_t T = (size_t)1 << w;
        int64_t *x = all_inputs(w), *y = malloc(2 * T * sizeof *y);
        for (size_t r = 0; r < sizeof reads / sizeof *reads; r++) {
            const veil_compile_options o = sim_options(reads[r]);
            veil_program *p = NULL;
            veil_status st = veil_program_compile(m, &o, &p);
            if (st) fprintf(stderr, "\n  w=%u read=%u: %s\n", w, reads[r], veil_error_message());
            CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
            if (widest_read(p) > reads[r])
                fprintf(stderr, "\n  w=%u read=%u: widest %u (%s)\n", w, reads[r], widest_read(p),
                        p->params_note ? p->params_note : "");
            CU_ASSERT(widest_read(p) <= reads[r]);
            CU_ASSERT(p->pbs_per_sample > 2); /* decomposed, not one PBS */
            veil_sim_stats ss;
            CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)&x, T, &y, NULL, &ss),
                            VEIL_OK);
            CU_ASSERT_EQUAL(ss.range_errors, 0);
            size_t bad = 0;
            for (size_t i = 0; i < T; i++)
                for (int c = 0; c < 2; c++)
                    bad += y[2 * i + c] != m->layers[0].table[c * T + i];
            if (bad)
                fprintf(stderr, "\n  w=%u read=%u: %zu of %zu values differ from the table\n", w,
                        reads[r], bad, 2 * T);
            CU_ASSERT_EQUAL(bad, 0);
            cases++;
            veil_program_free(p);
        }
        free(x);
        free(y);
        veil_model_free(m);
    }
    CU_ASSERT_EQUAL(cases, (WIDE_MAX_BITS - WIDE_MIN_BITS + 1) * 4);
}

/* The default compilation of a wide lookup picks a read width that a
 * parameter set has, and refuses a 17-bit accumulator naming the layer. */
/* make_wide's model with every table value random in [0, 2^out_bits): a
 * step at nearly every input. */
static veil_model *make_random(unsigned w, unsigned out_bits) {
    return make_wide_random(w, out_bits, 0, 8);
}

/* Random tables (4-bit values, no structure: a step at nearly every value)
 * at 9 to 11 bits (12 in test_wide_slow.c), read with 4-bit PBS (the
 * threshold method: about 2 PBS a step) and at the cost model's width (there
 * selection by the top part: 2 nh PBS, nh the top part's values): every
 * value of both elements equals the table. With 4-bit reads a random 14-bit
 * table has more than 4096 steps off the top digit's multiples and no
 * top part of at most 4 bits: refused, naming the layer and the limit; at
 * the cost model's width it is selected, and right on every value (test_wide_slow.c: 16 bits). */
static void test_random_tables(void) {
    const unsigned lo = WIDE_MIN_BITS < 12 ? 9 : 12,
                   hi = WIDE_MIN_BITS < 12 ? (WIDE_MAX_BITS < 11 ? WIDE_MAX_BITS : 11) : 12;
    for (unsigned w = lo; w <= hi; w++) {
        veil_model *m = make_random(w, 4);
        for (unsigned r = 0; r < 2; r++) {
            uint64_t pbs = 0;
            const size_t bad = wrong_values(m, w, r ? 0 : 4, &pbs, NULL);
            printf("\n  random %u-bit table, %s reads: %llu PBS a sample, %zu of %zu values wrong",
                   w, r ? "auto" : "4-bit", (unsigned long long)pbs, bad, (size_t)2 << w);
            CU_ASSERT_EQUAL(bad, 0);
        }
        veil_model_free(m);
    }
    const unsigned wr = WIDE_MIN_BITS < 12 ? 14 : 16;
    veil_model *m = make_random(wr, 4);
    const veil_compile_options o = sim_options(4);
    veil_program *p = NULL;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "0001_lut"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "veil allows 4096 points"));
    CU_ASSERT_PTR_NULL(p);
    uint64_t pbs = 0;
    const size_t bad = wrong_values(m, wr, 0, &pbs, NULL);
    printf("\n  random %u-bit table, auto reads: %llu PBS a sample, %zu of %zu values wrong", wr,
           (unsigned long long)pbs, bad, (size_t)2 << wr);
    CU_ASSERT_EQUAL(bad, 0);
    veil_model_free(m);
}

/* A w-bit table of 4-bit values changing value with probability
 * pieces / 2^w at each point (a piecewise-constant random table). */
static veil_model *make_pieces(unsigned w, unsigned pieces) {
    veil_model *m = make_random(w, 4);
    veil_model_layer *l = &m->layers[0];
    const size_t T = (size_t)1 << w;
    for (int c = 0; c < 2; c++) {
        int64_t v = (int64_t)(veil_test_rand() % 16);
        for (size_t i = 0; i < T; i++) {
            if (veil_test_rand() % T < pieces) v = (int64_t)(veil_test_rand() % 16);
            l->table[c * T + i] = v;
        }
    }
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    return m;
}

/* Between the two methods' regimes (a 9-bit table of about 128 pieces:
 * about 120 steps, a 4-bit top part at 5-bit reads) their prices leave the
 * choice open, and the compiler compiles both ways and keeps the cheaper:
 * selection, 2 nh PBS an element (nh = 16), a rotation and the top part's
 * ROUND, where the threshold method takes about 2 a step (the PBS-count rule before took that, 1.9x
 * the predicted cost). Every value right; the cost model's own width is no dearer. */
static void test_open_choice(void) {
    veil_model *m = make_pieces(9, 128);
    const veil_compile_options o = sim_options(5), a = sim_options(0);
    veil_program *p5 = NULL, *pa = NULL;
    veil_compile_options s5 = o, sa = a;
    s5.simulate_only = sa.simulate_only = 0; /* priced with the sets they get */
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &s5, &p5), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &sa, &pa), VEIL_OK);
    const uint64_t per_element = p5->pbs_per_sample / 2;
    printf("\n  9-bit table of ~128 pieces: 5-bit reads %llu PBS an element, %.1f ms; auto %.1f ms",
           (unsigned long long)per_element, p5->cost_per_sample, pa->cost_per_sample);
    CU_ASSERT(per_element <= 2 * 16 + 4);
    CU_ASSERT(pa->cost_per_sample <= p5->cost_per_sample);
    uint64_t pbs = 0;
    CU_ASSERT_EQUAL(wrong_values(m, 9, 5, &pbs, NULL), 0);
    CU_ASSERT_EQUAL(pbs, p5->pbs_per_sample);
    veil_program_free(p5);
    veil_program_free(pa);
    veil_model_free(m);
}

/* A random 12-bit table on 64 elements read with 4-bit PBS: the threshold
 * method would hold 2 J 64 (about 480,000) ciphertexts a sample in one
 * node; refused past 2^18, naming the layer and the count. */
static void test_copies_limit(void) {
    veil_model *m = make_random(12, 4);
    const uint32_t n = 64;
    const veil_shape shape = {2, {2, n / 2}}; /* a table per channel */
    m->inputs[0].shape = shape;
    m->layers[0].out_shape = shape;
    m->outputs[0].shape = shape;
    free(m->calibration.inputs[0]);
    m->calibration.inputs[0] = malloc(16 * n * sizeof(int64_t));
    for (size_t i = 0; i < 16 * n; i++)
        m->calibration.inputs[0][i] = (int64_t)(veil_test_rand() % 4096);
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    const veil_compile_options o = sim_options(4);
    veil_program *p = NULL;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "layer 0001_lut"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "veil allows 262144"));
    veil_program_free(p);
    veil_model_free(m);
}

static void test_default_and_limit(void) {
    veil_model *m = make_wide(12, 15, 0);
    veil_program *p = NULL;
    veil_compile_options o;
    digits_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL(p->params);
    /* every lookup reads at most its partition's set's precision */
    size_t luts = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind != VEIL_NODE_LUT) continue;
        CU_ASSERT_FATAL(n->partition < p->n_partitions);
        CU_ASSERT(n->in_bits <= p->partitions[n->partition].params->precision);
        luts++;
    }
    CU_ASSERT(luts >= 2); /* decomposed */
    CU_ASSERT_EQUAL(p->options.rounding_bits, 0);
    veil_program_free(p);
    veil_model_free(m);
}

#if WIDE_ENCRYPTED

/* Samples of the encrypted runs past the calibrated ranges (outside
 * calibration, with threshold reads, read through the padding bit): 16, and
 * 4 in a sanitizer build (testutil.h VEIL_TEST_SANITIZED; make sanitize),
 * the same code per sample, each still past its range (a value outside,
 * wrapped reads drawn until there are some). The sanitized test_wide took
 * 252 s of CPU, most of it in these runs' KS-PBS (2-core AMD EPYC Zen 3). */
#define WIDE_OUTSIDE_SAMPLES (VEIL_TEST_SANITIZED ? 4 : 16)

static veil_status encrypted_equals_simulate(const veil_model *m, const veil_program *p,
                                             const int64_t *x, size_t n, size_t *equal,
                                             int64_t *sim_out) {
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(60 + i, s[i]);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    veil_backend *be = NULL;
    veil_plan *plan = NULL;
    veil_status st = VEIL_OK;
    const size_t lwe = veil_program_ct_words(p);
    uint64_t *cin = malloc(n * 2 * lwe * 8), *cout = malloc(n * 2 * lwe * 8);
    int64_t *dec = malloc(n * 2 * 8);
    *equal = 0;
    if ((st = veil_program_keygen(p, s[0], &sk)) ||
        (st = veil_program_eval_key_new(p, sk, VEIL_KEY_BOTH, s[1], s[2], &ek)) ||
        (st = veil_encryptor_new(s[3], s[4], &enc)) ||
        (st = veil_backend_new(VEIL_BACKEND_CPU, &be)))
        goto out;
    if ((st = veil_program_simulate(p, &x, n, &sim_out, NULL, NULL))) goto out;
    if ((st = veil_program_encrypt(p, enc, sk, 0, x, n, cin))) goto out;
    if ((st = veil_plan_new(p, ek, be, n, &plan))) goto out;
    if ((st = veil_plan_execute(plan, (const uint64_t *const *)&cin, n, &cout))) goto out;
    if ((st = veil_program_decrypt(p, sk, 0, cout, n, dec))) goto out;
    for (size_t i = 0; i < 2 * n; i++) {
        if (dec[i] != sim_out[i] && *equal + 4 > i)
            fprintf(stderr, "\n  value %zu (x = %lld): encrypted %lld, simulate %lld\n", i,
                    (long long)x[i], (long long)dec[i], (long long)sim_out[i]);
        *equal += dec[i] == sim_out[i];
    }
    veil_plan_free(plan);
    plan = NULL;
    /* a backend without the extraction refuses threshold reads at plan time
     * (a table's PBS would read a digit past its range otherwise than
     * simulate, veil/tfhe.h veil_lut_step_wrapped) */
    struct veil_backend_i no_extract = *be->iface;
    no_extract.ks_pbs_extract = NULL;
    veil_backend plain = *be;
    plain.iface = &no_extract;
    const veil_status want = threshold_reads(p) ? VEIL_ERR_UNSUPPORTED : VEIL_OK;
    CU_ASSERT_EQUAL(veil_plan_new(p, ek, &plain, n, &plan), want);
    if (want != VEIL_OK)
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "does not run threshold reads"));
out:
    veil_plan_free(plan);
    veil_backend_free(be);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    free(cin);
    free(cout);
    free(dec);
    return st;
}

static void test_encrypted_every_value(void) {
    const unsigned w = 6;
    veil_model *m = make_wide(w, 6, 0);
    veil_compile_options o;
    digits_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    o.lookup_bits = 3;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->params);
    CU_ASSERT(widest_read(p) <= 3);
    const size_t T = (size_t)1 << w;
    /* every value; in a sanitizer build (testutil.h) 16 of them spread from
     * 0 to T - 1, the same PBS path per value */
    const size_t n = VEIL_TEST_SANITIZED ? 16 : T;
    int64_t *x = all_inputs(w), *sim = malloc(2 * T * 8);
    for (size_t j = 0; j < n; j++)
        x[2 * j] = x[2 * j + 1] = (int64_t)(n == T ? j : j * (T - 1) / (n - 1));
    size_t equal = 0;
    CU_ASSERT(threshold_reads(p) > 0);
    printf("\n  %llu PBS per sample, %s, %zu of %zu values", (unsigned long long)p->pbs_per_sample,
           p->params->id, n, T);
    CU_ASSERT_EQUAL(encrypted_equals_simulate(m, p, x, n, &equal, sim), VEIL_OK);
    CU_ASSERT_EQUAL(equal, 2 * n);
    size_t table_ok = 0;
    for (size_t j = 0; j < n; j++)
        for (int c = 0; c < 2; c++)
            table_ok += sim[2 * j + c] == m->layers[0].table[c * T + (size_t)x[2 * j]];
    CU_ASSERT_EQUAL(table_ok, 2 * n);
    CU_ASSERT(x[2 * (n - 1)] == (int64_t)T - 1); /* the top value is read */
    free(x);
    free(sim);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_encrypted_outside_calibration(void) {
    const unsigned w = 6;
    veil_model *m = make_wide(w, 6, 1);
    veil_compile_options o;
    digits_default(&o);
    o.range_margin = 0; /* calibration covers the lower eighth only */
    o.lookup_bits = 3;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->params);
    const size_t n = WIDE_OUTSIDE_SAMPLES;
    int64_t *x = malloc(2 * n * 8), *sim = malloc(2 * n * 8);
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = (int64_t)(veil_test_rand() % ((uint64_t)1 << w));
    veil_sim_stats ss;
    CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)&x, n, &sim, NULL, &ss),
                    VEIL_OK);
    CU_ASSERT(ss.range_errors > 0); /* the inputs do leave the ranges */
    size_t equal = 0;
    CU_ASSERT_EQUAL(encrypted_equals_simulate(m, p, x, n, &equal, sim), VEIL_OK);
    CU_ASSERT_EQUAL(equal, 2 * n);
    free(x);
    free(sim);
    veil_program_free(p);
    veil_model_free(m);
}

/* Threshold reads (one rotation, several results) with inputs past the
 * calibrated range: the lower half calibrated, read at 3 bits, so the
 * lookup is decomposed; steps at 1 and 3 (odd: never on the top digit's
 * multiples) give its low digit at least two comparisons. Encrypted equals
 * simulate (and a backend without the extraction refuses the program). */
static void test_encrypted_outside_calibration_threshold(void) {
    const unsigned w = 6;
    veil_model *m = make_wide_cal(w, 4, 1, 2);
    for (int c = 0; c < 2; c++)
        for (size_t i = 1; i < ((size_t)1 << w); i++)
            m->layers[1].table[c * ((size_t)1 << w) + i] += (i >= 1) + (i >= 3);
    veil_model_layer *l = &m->layers[1];
    for (size_t i = 0; i < 2 * ((size_t)1 << w); i++) {
        l->range[0] = l->table[i] < l->range[0] ? l->table[i] : l->range[0];
        l->range[1] = l->table[i] > l->range[1] ? l->table[i] : l->range[1];
    }
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    veil_compile_options o;
    digits_default(&o);
    o.lookup_bits = 3;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->params);
    CU_ASSERT(threshold_reads(p) > 0);
    const size_t n = WIDE_OUTSIDE_SAMPLES;
    int64_t *x = malloc(2 * n * 8), *sim = malloc(2 * n * 8);
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = (int64_t)(veil_test_rand() % ((uint64_t)1 << w));
    x[0] = ((int64_t)1 << w) - 1; /* the top value, outside */
    veil_sim_stats ss;
    CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)&x, n, &sim, NULL, &ss),
                    VEIL_OK);
    CU_ASSERT(ss.range_errors > 0);
    size_t equal = 0;
    CU_ASSERT_EQUAL(encrypted_equals_simulate(m, p, x, n, &equal, sim), VEIL_OK);
    CU_ASSERT_EQUAL(equal, 2 * n);
    free(x);
    free(sim);
    veil_program_free(p);
    veil_model_free(m);
}

/* A random 9-bit table (a step at nearly every value: about 480 threshold
 * reads a digit, one rotation) compiled with the defaults and worst-case
 * bounds: encrypted equals simulate equals the table on random inputs. */
/* Threshold-read elements whose index r leaves [0, 2^in_bits) (read through
 * the padding bit: veil/tfhe.h veil_lut_step_wrapped), over n samples of x,
 * the program evaluated node by node. */
static size_t wrapped_threshold_reads(const veil_program *p, const int64_t *x, size_t n) {
    int64_t **val = calloc(p->n_nodes, sizeof *val);
    size_t wrapped = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *nd = &p->nodes[i];
        val[i] = malloc(n * nd->size * sizeof(int64_t) + 1);
        if (nd->kind == VEIL_NODE_INPUT) {
            memcpy(val[i], x, n * nd->size * sizeof(int64_t));
            continue;
        }
        const int64_t *ins[64];
        for (uint32_t j = 0; j < nd->n_in && j < 64; j++)
            ins[j] = val[nd->in[j]];
        veil_node_eval(p, nd, ins, n, val[i], NULL, NULL);
        if (nd->kind != VEIL_NODE_LUT || nd->rotation_results < 2) continue;
        for (size_t e = 0; e < n * nd->size; e++) {
            const int64_t v = (int64_t)((uint64_t)ins[0][e] + (uint64_t)nd->offset);
            const int64_t r = veil_floor_shift(v, nd->round_bits);
            wrapped += r < 0 || r >= (int64_t)1 << nd->in_bits;
        }
    }
    for (size_t i = 0; i < p->n_nodes; i++)
        free(val[i]);
    free(val);
    return wrapped;
}

/* The top digit of a decomposed lookup read past its range (an input
 * linear layer of weight 2 calibrated on a quarter of the inputs' range,
 * margin 0): a table of a few steps read at 2 bits (the threshold method:
 * 72 to 260 wrapped reads in 16 samples over eight seeds) and a random table
 * at 3 (its top part's flags: about 1,100): its threshold reads see their
 * index through the padding bit, where
 * extraction gives V - V [r >= t] and a table's PBS -V [r >= t]; simulate
 * models the extraction, and encrypted equals it (VEIL_TEST_SEED=
 * 0x351b907efef9e3cc of test_model_kinds found the difference). */
static void threshold_wrapped_case(int random) {
    const unsigned w = 6;
    veil_compile_options o;
    digits_default(&o);
    o.range_margin = 0;
    o.lookup_bits = random ? 3 : 2;
    const size_t n = WIDE_OUTSIDE_SAMPLES;
    int64_t *x = malloc(2 * n * 8), *sim = malloc(2 * n * 8);
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = (int64_t)(veil_test_rand() % ((uint64_t)1 << w));
    veil_model *m = NULL;
    veil_program *p = NULL;
    /* a table drawn with too few steps off the top digit's multiples has
     * no threshold reads there (one step: a carry chain; VEIL_TEST_SEED=
     * 0xdb9c6a7da7325a36 drew such a steps table), so none wraps: draw
     * again */
    size_t wrapped = 0;
    for (int draw = 0; draw < 32 && !wrapped; draw++) {
        veil_program_free(p);
        veil_model_free(m);
        p = NULL;
        m = random ? make_wide_random(w, 4, 1, 4) : make_wide_cal(w, 6, 1, 4);
        m->layers[0].weight[0] = m->layers[0].weight[3] = 2;
        CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p->params);
        wrapped = wrapped_threshold_reads(p, x, n);
    }
    printf("\n  %s table: %zu threshold reads, %zu wrapped, %llu PBS", random ? "random" : "steps",
           threshold_reads(p), wrapped, (unsigned long long)p->pbs_per_sample);
    CU_ASSERT_FATAL(wrapped > 0);
    CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)&x, n, &sim, NULL, NULL),
                    VEIL_OK);
    size_t equal = 0;
    CU_ASSERT_EQUAL(encrypted_equals_simulate(m, p, x, n, &equal, sim), VEIL_OK);
    CU_ASSERT_EQUAL(equal, 2 * n);
    free(x);
    free(sim);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_encrypted_threshold_wrapped(void) {
    threshold_wrapped_case(0);
    threshold_wrapped_case(1);
}

static void test_encrypted_random_table(void) {
    const unsigned w = 9;
    veil_model *m = make_random(w, 4);
    veil_compile_options o;
    digits_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->params);
    CU_ASSERT(threshold_reads(p) > 0);
    const size_t n = VEIL_TEST_SANITIZED ? 1 : 2, T = (size_t)1 << w;
    int64_t *x = malloc(2 * n * 8), *sim = malloc(2 * n * 8);
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = (int64_t)(veil_test_rand() % T);
    CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)&x, n, &sim, NULL, NULL),
                    VEIL_OK);
    size_t equal = 0, table = 0;
    for (size_t i = 0; i < 2 * n; i++)
        table += sim[i] == m->layers[0].table[(i % 2) * T + (size_t)x[i]];
    CU_ASSERT_EQUAL(table, 2 * n);
    CU_ASSERT_EQUAL(encrypted_equals_simulate(m, p, x, n, &equal, sim), VEIL_OK);
    printf("\n  random 9-bit table: %llu PBS a sample, %zu of %zu values equal",
           (unsigned long long)p->pbs_per_sample, equal, 2 * n);
    CU_ASSERT_EQUAL(equal, 2 * n);
    free(x);
    free(sim);
    veil_program_free(p);
    veil_model_free(m);
}

/* A 10-bit lookup of 6 steps compares its digits by threshold reads and
 * gives the table on every value. */
static void test_threshold_program(void) {
    const unsigned w = 10;
    veil_model *m = make_wide(w, 6, 0);
    size_t reads = 0;
    CU_ASSERT_EQUAL(wrong_values(m, w, 4, NULL, &reads), 0);
    CU_ASSERT(reads > 0);
    veil_model_free(m);
}

/* 64 steps off the top digit's multiples: the majority path reads two
 * thresholds a step, 128 copies of a digit (a repeat node: more copies than
 * a CONCAT takes), and gives the table on every value. */
static void test_many_steps(void) {
    const unsigned w = 9;
    veil_model *m = make_wide(w, 1, 0);
    const size_t T = (size_t)1 << w;
    for (int c = 0; c < 2; c++)
        for (size_t i = 0; i < T; i++) /* a step at every odd value below 128: 64 */
            m->layers[0].table[c * T + i] = (int64_t)((i < 128 ? i : 127) + 1) / 2 + c;
    veil_model_layer *l = &m->layers[0];
    l->range[0] = 0;
    l->range[1] = 65;
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    size_t reads = 0;
    CU_ASSERT_EQUAL(wrong_values(m, w, 4, NULL, &reads), 0);
    CU_ASSERT(reads > 0); /* the majority path */
    veil_model_free(m);
}

#endif

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("wide", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_every_value_every_width);
    VEIL_ADD_TEST(s, test_default_and_limit);
    VEIL_ADD_TEST(s, test_random_tables);
    VEIL_ADD_TEST(s, test_copies_limit);
    VEIL_ADD_TEST(s, test_open_choice);
#if WIDE_ENCRYPTED
    VEIL_ADD_TEST(s, test_encrypted_every_value);
    VEIL_ADD_TEST(s, test_encrypted_outside_calibration);
    VEIL_ADD_TEST(s, test_encrypted_outside_calibration_threshold);
    VEIL_ADD_TEST(s, test_encrypted_threshold_wrapped);
    VEIL_ADD_TEST(s, test_threshold_program);
    VEIL_ADD_TEST(s, test_many_steps);
    VEIL_ADD_TEST(s, test_encrypted_random_table);
#endif
    return veil_test_run();
}
