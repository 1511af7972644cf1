// LABELS: model crypto
// COST: 60
// LINKS: veil_host veil_loaders
/* The tiny model encrypted on the cpu backend equals simulate compiled with
 * the same options, on golden inputs: the default program (5-bit lookups, no
 * rounding needed), exact rounding to 3 bits (2 rounding PBS per element)
 * and to 1 bit (two chunks), to 2 bits in forced narrow chunks (--chunk-bits
 * 2) and in 1-bit chunks, whose sign reads run on a precision-0 set
 * (--chunk-bits 1), and approximate rounding (its disagreement
 * with simulate under a binomial bound of the modelled rate); plus the plan's and
 * client helpers' argument errors, and the server's check that inputs keep
 * the program's input width. The bigger models run the same check in
 * test_model_encrypted_slow.c (label slow). */
#include "model_encrypted_common.h"

#include <math.h>

static void check(const char *what, veil_model *m, const veil_compile_options *o, size_t n,
                  size_t batch, double min_agree) {
    veil_program *p = NULL;
    veil_status st = veil_program_compile(m, o, &p);
    if (st) fprintf(stderr, "\n  compile: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    enc_result r;
    st = run_encrypted_vs_simulate(m, p, n, batch, &r);
    if (st) fprintf(stderr, "\n  run: %s\n", veil_error_message());
    CU_ASSERT_EQUAL(st, VEIL_OK);
    printf("\n  %-28s %s: %zu/%zu values, %zu/%zu argmax equal to simulate; %.3f s/sample "
           "(batch %zu, %llu PBS/sample)",
           what, p->params->id, r.equal, r.values, r.argmax, r.samples, r.seconds_per_sample, batch,
           (unsigned long long)p->pbs_per_sample);
    if (min_agree >= 1.0) {
        CU_ASSERT_EQUAL(r.equal, r.values);
    } else {
        CU_ASSERT((double)r.equal >= min_agree * (double)r.values);
    }
    CU_ASSERT(r.values > 0);
    veil_program_free(p);
}

static void test_tiny_default(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    check("default", m, NULL, 8, 8, 1.0);
    veil_model_free(m);
}

static void test_tiny_exact_rounding(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    check("exact rounding to 3 bits", m, &o, 16, 16, 1.0);
    o.rounding_bits = 1;
    check("exact rounding to 1 bit", m, &o, 8, 8, 1.0);
    veil_model_free(m);
}

/* The client's side of program p: its secret key and an encryptor, from
 * the test seeds seed, seed + 1, seed + 2. */
static void client_keys(const veil_program *p, unsigned seed, veil_secret_key **sk,
                        veil_encryptor **enc) {
    uint8_t ks[32], ms[32], ns[32];
    veil_test_seed_bytes(seed, ks);
    veil_test_seed_bytes(seed + 1, ms);
    veil_test_seed_bytes(seed + 2, ns);
    CU_ASSERT_EQUAL_FATAL(veil_program_keygen(p, ks, sk), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_encryptor_new(ms, ns, enc), VEIL_OK);
}

/* Inputs under a prefix of the master key (veil_program.input_width):
 * source_bc rounded to 6 bits encrypts its inputs under the first 2048
 * coefficients, so its first lookups read values of that width and run on
 * a set derived for it (a keyswitch of 2048 rows: nn-...-r2048, N = 4096
 * where the full key's would need N = 8192); encrypted equal to simulate, and
 * every input ciphertext's mask 0 past the width. */
static void test_narrow_inputs(void) {
    veil_model *m = veil_test_load_model("models/source_bc.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 6;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    const uint32_t D = veil_params_big_dim(p->params), w = p->input_width;
    printf("\n  source_bc, 6 bits: inputs under %u of the master key's %u coefficients (%s)", w, D,
           veil_program_input_set(p)->id);
    CU_ASSERT(w > 0 && w < D);
    CU_ASSERT_EQUAL(veil_params_big_dim(veil_program_input_set(p)), w);
    int narrow_set = 0;
    for (uint32_t k = 0; k < p->n_partitions; k++)
        narrow_set |= p->partitions[k].params->ks_in_dim == w;
    CU_ASSERT(narrow_set);
    /* and the KSKs of the partitions that read only narrow values have
     * only those rows (veil_partition.ksk_rows) */
    int narrow_rows = 0;
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        CU_ASSERT(p->partitions[k].ksk_rows >= 1 && p->partitions[k].ksk_rows <= D);
        narrow_rows |= p->partitions[k].ksk_rows < D;
    }
    CU_ASSERT(narrow_rows);
    /* the client's encryption: the mask past w is 0, the phase the value */
    veil_secret_key *sk = NULL;
    veil_encryptor *enc = NULL;
    client_keys(p, 70, &sk, &enc);
    const veil_node *in = &p->nodes[p->input_nodes[0]];
    const size_t lwe = veil_program_ct_words(p);
    uint64_t *ct = calloc(in->size * lwe, sizeof *ct);
    CU_ASSERT_FATAL(ct != NULL);
    CU_ASSERT_EQUAL(veil_program_encrypt(p, enc, sk, 0, m->golden.inputs[0], 1, ct), VEIL_OK);
    size_t nonzero = 0, wrong = 0;
    for (size_t i = 0; i < in->size; i++) {
        for (uint32_t j = w; j < D; j++)
            nonzero += ct[i * lwe + j] != 0;
        /* the phase is v Delta plus a fresh noise far below Delta / 2 */
        const int64_t err = (int64_t)(veil_phase_big(sk, ct + i * lwe) -
                                      (uint64_t)m->golden.inputs[0][i] * veil_node_delta(in));
        wrong += llabs(err) >= (long long)(veil_node_delta(in) / 2);
    }
    CU_ASSERT_EQUAL(nonzero, 0);
    CU_ASSERT_EQUAL(wrong, 0);
    free(ct);
    veil_encryptor_free(enc);
    veil_secret_key_free(sk);
    veil_program_free(p);
    check("inputs under 2048 coefficients", m, &o, 4, 4, 1.0);
    veil_model_free(m);
}

/* The server's check of inputs against the input width
 * (veil_program_check_inputs, veil_program_check_input_batch): tiny rounded
 * to 3 bits encrypts its inputs under 1536 of the master key's 2048
 * coefficients. The client's batch passes, raw and through its seeded form;
 * one nonzero mask word past the width is refused naming the ciphertext, the
 * word and the width, wherever it is (the first word past the width, the
 * last before the body); seeded batches drawn over more words than the width
 * (mask width 0 = all D, or one between) are refused; a program of the whole
 * key checks nothing. */
static void test_input_width_check(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    veil_program *p = NULL, *whole = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &whole), VEIL_OK);
    const uint32_t D = veil_params_big_dim(p->params), w = p->input_width;
    CU_ASSERT_FATAL(w > 0 && w < D);
    CU_ASSERT_EQUAL(whole->input_width, 0);
    veil_secret_key *sk = NULL;
    uint8_t seed[32], ms[32], ns[32];
    veil_test_seed_bytes(80, seed);
    veil_test_seed_bytes(81, ms);
    veil_test_seed_bytes(82, ns);
    CU_ASSERT_EQUAL_FATAL(veil_program_keygen(p, seed, &sk), VEIL_OK);
    veil_encryptor *enc = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_encryptor_new(ms, ns, &enc), VEIL_OK);
    const size_t lwe = veil_program_ct_words(p), n = 2;
    const size_t count = n * veil_program_input_size(p, 0);
    CU_ASSERT_FATAL(p->n_inputs == 1 && count >= 2);
    veil_ct_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_new(p->params, D, count, &b), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_program_encrypt(p, enc, sk, 0, m->golden.inputs[0], n, b->data),
                          VEIL_OK);
    veil_encryptor_free(enc);
    b->mask_width = w;
    CU_ASSERT_EQUAL(veil_program_check_inputs(p, b->data, count), VEIL_OK);
    CU_ASSERT_EQUAL(veil_program_check_input_batch(p, b), VEIL_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_ct_batch *c = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_serialize_seeded(b, ms, &buf, &len), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_deserialize(buf, len, &c), VEIL_OK);
    CU_ASSERT_EQUAL(c->mask_width, w);
    CU_ASSERT_EQUAL(veil_program_check_input_batch(p, c), VEIL_OK);
    veil_ct_batch_free(c);
    veil_serial_buffer_free(buf, len);
    /* one word past the width: the first there, then the last */
    const struct {
        size_t ct;
        uint32_t word;
    } bad[] = {{1, w}, {count - 1, D - 1}};
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        uint64_t *word = &b->data[bad[t].ct * lwe + bad[t].word];
        *word = 1;
        char want[96];
        snprintf(want, sizeof want, "ciphertext %zu: mask word %u is not 0", bad[t].ct,
                 bad[t].word);
        CU_ASSERT_EQUAL(veil_program_check_inputs(p, b->data, count), VEIL_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
        CU_ASSERT_EQUAL(veil_program_check_input_batch(p, b), VEIL_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
        snprintf(want, sizeof want, "input width %u", w);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
        *word = 0;
    }
    /* words the client draws (below the width) and the body are the client's */
    b->data[w - 1] ^= 1;
    b->data[D] ^= 1;
    CU_ASSERT_EQUAL(veil_program_check_input_batch(p, b), VEIL_OK);
    /* seeded batches drawn over all D words (mask width 0) and over w + 256:
     * their masks past the width are the seed's stream */
    const uint32_t widths[] = {0, w + 256};
    for (size_t t = 0; t < 2; t++) {
        CU_ASSERT_EQUAL_FATAL(veil_encryptor_new(ms, ns, &enc), VEIL_OK);
        const veil_params *is = veil_program_input_set(p);
        for (size_t i = 0; i < count; i++)
            veil_encrypt_big_prefix(enc, sk, widths[t] ? widths[t] : D, &is->glwe_noise, 0,
                                    b->data + i * lwe);
        veil_encryptor_free(enc);
        b->mask_width = widths[t];
        CU_ASSERT_EQUAL_FATAL(veil_ct_batch_serialize_seeded(b, ms, &buf, &len), VEIL_OK);
        CU_ASSERT_EQUAL_FATAL(veil_ct_batch_deserialize(buf, len, &c), VEIL_OK);
        CU_ASSERT_EQUAL(veil_program_check_input_batch(p, c), VEIL_ERR_ARG);
        char want[96];
        if (widths[t])
            snprintf(want, sizeof want, "masks drawn over %u words", widths[t]);
        else
            snprintf(want, sizeof want, "ciphertext 0: mask word %u is not 0", w);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
        if (!strstr(veil_error_message(), want))
            fprintf(stderr, "\n  %s lacks \"%s\"", veil_error_message(), want);
        veil_ct_batch_free(c);
        veil_serial_buffer_free(buf, len);
    }
    /* a batch of another dimension */
    b->dim = D / 2;
    CU_ASSERT_EQUAL(veil_program_check_input_batch(p, b), VEIL_ERR_ARG);
    b->dim = D;
    /* the whole key: any mask */
    const size_t wl = veil_program_ct_words(whole);
    uint64_t *all = malloc(count * wl * sizeof *all);
    CU_ASSERT_FATAL(all != NULL);
    memset(all, 0xa5, count * wl * sizeof *all);
    CU_ASSERT_EQUAL(veil_program_check_inputs(whole, all, count), VEIL_OK);
    free(all);
    veil_ct_batch_free(b);
    veil_secret_key_free(sk);
    veil_program_free(whole);
    veil_program_free(p);
    veil_model_free(m);
}

/* tiny compiled with exact rounding to 2 bits in chunks of chunk_bits: its
 * one ROUND node (3 bits cleared) is checked by `node_ok`, then the program
 * runs encrypted equal to simulate. */
static void check_tiny_chunks(const char *what, unsigned chunk_bits,
                              void (*node_ok)(const veil_program *, const veil_node *)) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 2;
    o.chunk_bits = chunk_bits;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    size_t rounds = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_ROUND) {
            CU_ASSERT_EQUAL(p->nodes[i].round_bits, 3);
            CU_ASSERT_EQUAL(p->nodes[i].chunk_bits, chunk_bits);
            node_ok(p, &p->nodes[i]);
            rounds++;
        }
    CU_ASSERT_EQUAL(rounds, 1);
    veil_program_free(p);
    check(what, m, &o, 8, 8, 1.0);
    veil_model_free(m);
}

/* Chunk widths narrower than the cost model's choice (--chunk-bits 2): 3 bits
 * cleared in chunks of 2 + 1 (a 2-PBS chunk, then a 1-PBS one, all 1-bit
 * reads) instead of one 3-bit chunk. (One width only: this file runs under
 * the sanitizers in CI.) */
static void narrow_node_ok(const veil_program *p, const veil_node *n) {
    (void)p;
    CU_ASSERT_EQUAL(veil_round_chunk_count(n), 2);
}

static void test_tiny_narrow_chunks(void) {
    check_tiny_chunks("exact to 2 bits, 2-bit chunks", 2, narrow_node_ok);
}

/* 1-bit chunks (--chunk-bits 1): 3 bits cleared by 3 sign reads at 0 bits
 * (one box per half torus). The reads may land on a set derived for
 * precision 0 (nn-p0-*, 4 times the noise a 1-bit set allows) or for
 * precision 1: the cost table decides. Under the table of 2026-12-02
 * nn-p1-norm2e0 wins here (its keyswitch has fewer levels: 135 against 283 ns
 * per master-key row, for the same blind rotation); the precision-0 sets' own
 * encrypted reads are checked by test_crypto_nn and their noise by
 * test_noise. */
static void sign_node_ok(const veil_program *p, const veil_node *n) {
    const veil_params *ps = p->partitions[n->partition].params;
    CU_ASSERT_EQUAL(veil_round_chunk_count(n), n->round_bits);
    CU_ASSERT_EQUAL(veil_round_chunk_get(n, 0).read_bits, 0);
    printf("\n  rounding node: %u sign reads on %s", n->round_bits, ps->id);
    CU_ASSERT(ps->precision <= 1);
    CU_ASSERT(ps->flags & VEIL_PARAMS_NN);
}

static void test_tiny_precision0(void) {
    check_tiny_chunks("exact to 2 bits, 1-bit chunks", 1, sign_node_ok);
}

/* Inputs drawn from the inputs' whole range make accumulators leave the
 * calibration ranges the program was compiled for: the lookups then read
 * their index mod 2^(p+1) with the negacyclic sign, and simulate must say
 * exactly that (it used to clamp, and disagreed with every encrypted run on
 * such samples). */
static void test_tiny_outside_calibration(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_program *p = NULL;
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.range_margin = 0; /* the calibration set's own ranges, so edges leave them */
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    const size_t n = 16, sz = veil_program_input_size(p, 0);
    CU_ASSERT_FATAL(m->golden.count >= n);
    /* keep random inputs at the edges of the input range until n of them
     * drive some value out of its compiled range */
    const int64_t lo = m->inputs[0].range[0], hi = m->inputs[0].range[1];
    int64_t *x = malloc(sz * 8), *y = malloc(veil_program_output_size(p, 0) * 8);
    size_t kept = 0, tries = 0;
    while (kept < n && tries++ < 100000) {
        for (size_t j = 0; j < sz; j++)
            x[j] = veil_test_rand() & 1 ? hi : lo;
        const int64_t *in = x;
        veil_sim_stats ss;
        CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, &in, 1, &y, NULL, &ss), VEIL_OK);
        if (ss.range_errors) memcpy(m->golden.inputs[0] + kept++ * sz, x, sz * 8);
    }
    printf("\n  %zu of %zu random edge inputs leave a compiled range", kept, tries);
    CU_ASSERT_EQUAL_FATAL(kept, n); /* or this test checks nothing */
    free(x);
    free(y);
    veil_program_free(p);
    check("outside the calibration", m, NULL, n, n, 1.0);
    veil_model_free(m);
}

/* log P(X = k) for X ~ Binomial(n, q), 0 < q < 1. */
static double log_binom_pmf(size_t n, size_t k, double q) {
    return lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1) +
           (double)k * log(q) + (double)(n - k) * log1p(-q);
}

/* P(X >= k) and P(X <= k) for X ~ Binomial(n, q), by summing the pmf. */
static double binom_upper(size_t n, size_t k, double q) {
    if (q <= 0) return k == 0 ? 1.0 : 0.0;
    if (q >= 1) return 1.0;
    double t = 0;
    for (size_t i = k; i <= n; i++)
        t += exp(log_binom_pmf(n, i, q));
    return t;
}
static double binom_lower(size_t n, size_t k, double q) {
    if (q <= 0) return 1.0;
    if (q >= 1) return k == n ? 1.0 : 0.0;
    double t = 0;
    for (size_t i = 0; i <= k; i++)
        t += exp(log_binom_pmf(n, i, q));
    return t;
}

/* Approximate rounding against the simulator's noise model, under a binomial
 * bound. Samples are independent (fresh noise per sample, fixed key), so the
 * number D of encrypted samples that differ anywhere from noiseless simulate
 * is Binomial(S, q) with q the modelled per-sample rate, estimated by
 * simulate with noise injected on the same S inputs, R times (its own 5-sigma
 * sampling error widens q's interval). The test fails when D is in either
 * tail beyond probability 1e-6 for every q in that interval: the encrypted
 * run disagrees more (or less) often than the model says. */
static void test_tiny_approximate(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 2;
    o.rounding = VEIL_ROUNDING_APPROXIMATE;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    const size_t S = 32, R = 200;
    CU_ASSERT_FATAL(m->golden.count >= S);
    enc_result r;
    veil_status st = run_encrypted_vs_simulate(m, p, S, S, &r);
    if (st) fprintf(stderr, "\n  run: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(r.samples, S);
    const size_t D = S - r.samples_equal;

    /* the modelled per-sample rate on the same inputs */
    const size_t sz = veil_program_output_size(p, 0);
    CU_ASSERT_FATAL(p->n_outputs == 1);
    int64_t *a = malloc(S * sz * 8), *b = malloc(S * sz * 8);
    CU_ASSERT_EQUAL(
        veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, S, &a, NULL, NULL),
        VEIL_OK);
    veil_sim_options so = {1, 0};
    veil_sim_stats ss;
    uint64_t errs = 0, sdiff = 0, reps = 0;
    for (size_t rep = 0; rep < R; rep++, reps++) {
        so.seed = veil_test_rand();
        CU_ASSERT_EQUAL(
            veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, S, &b, &so, &ss),
            VEIL_OK);
        errs += ss.pbs_errors;
        for (size_t j = 0; j < S; j++)
            sdiff += memcmp(a + j * sz, b + j * sz, sz * 8) != 0;
    }
    CU_ASSERT_EQUAL(reps, R);
    const double T = (double)(S * R), q = (double)sdiff / T;
    const double se = sqrt((q * (1 - q) + 1.0 / T) / T);
    const double q_lo = fmax(q - 5 * se, 0.0), q_hi = fmin(q + 5 * se, 1.0);
    const double p_up = binom_upper(S, D, q_hi), p_down = binom_lower(S, D, q_lo);
    printf("\n  approximate rounding to 2 bits: encrypted %zu/%zu samples differ from "
           "simulate (%zu/%zu values); modelled %.2f%% of samples [%.2f%%, %.2f%%], %.2f%% of "
           "lookups; P(X >= %zu) = %.3g, P(X <= %zu) = %.3g",
           D, S, r.values - r.equal, r.values, 100 * q, 100 * q_lo, 100 * q_hi,
           100.0 * (double)errs / (T * (double)p->pbs_per_sample), D, p_up, D, p_down);
    CU_ASSERT(p_up >= 1e-6);
    CU_ASSERT(p_down >= 1e-6);
    free(a);
    free(b);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_errors(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_program *p = NULL, *q = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    o.max_partitions = 1; /* one evaluation key (key sets: branch keyset) */
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &q), VEIL_OK);
    CU_ASSERT_FATAL(p->params != q->params);
    uint8_t s[32];
    veil_test_seed_bytes(60, s);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_backend *be = NULL;
    veil_encryptor *enc = NULL;
    veil_plan *plan = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_secret_key_new(q->params, s, &sk), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_eval_key_new(sk, s, s, &ek), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backend_new(VEIL_BACKEND_CPU, &be), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_encryptor_new(s, s, &enc), VEIL_OK);
    /* keys of another parameter set */
    CU_ASSERT_EQUAL(veil_plan_new(p, ek, be, 1, &plan), VEIL_ERR_PARAMS);
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), p->params->id));
    /* batch limits */
    CU_ASSERT_EQUAL_FATAL(veil_plan_new(q, ek, be, 2, &plan), VEIL_OK);
    size_t lwe = veil_program_ct_words(q);
    uint64_t *ci = calloc(3 * 3 * lwe, 8), *co = calloc(3 * 2 * lwe, 8);
    const uint64_t *cip = ci;
    CU_ASSERT_EQUAL(veil_plan_execute(plan, &cip, 3, &co), VEIL_ERR_ARG);
    /* values outside the input range are refused by the client */
    int64_t bad[3] = {0, 9, 0};
    CU_ASSERT_EQUAL(veil_program_encrypt(q, enc, sk, 0, bad, 1, ci), VEIL_ERR_RANGE);
    CU_ASSERT_EQUAL(veil_program_encrypt(p, enc, sk, 0, bad, 1, ci), VEIL_ERR_PARAMS);
    /* a simulate-only program cannot be planned */
    veil_compile_options_default(&o);
    o.rounding_bits = 0;
    o.params_id = "tfhers-1_1-gaussian-2m64";
    o.p_error = ldexp(1.0, -200);
    o.simulate_only = 1;
    veil_program *r = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &r), VEIL_OK);
    CU_ASSERT_PTR_NULL(r->params);
    veil_plan *plan2 = NULL;
    CU_ASSERT_EQUAL(veil_plan_new(r, ek, be, 1, &plan2), VEIL_ERR_PARAMS);
    free(ci);
    free(co);
    veil_program_free(r);
    veil_plan_free(plan);
    veil_encryptor_free(enc);
    veil_backend_free(be);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    veil_program_free(p);
    veil_program_free(q);
    veil_model_free(m);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("model_encrypted", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_errors);
    VEIL_ADD_TEST(s, test_tiny_default);
    VEIL_ADD_TEST(s, test_tiny_exact_rounding);
    VEIL_ADD_TEST(s, test_tiny_narrow_chunks);
    VEIL_ADD_TEST(s, test_tiny_precision0);
    VEIL_ADD_TEST(s, test_tiny_approximate);
    VEIL_ADD_TEST(s, test_tiny_outside_calibration);
    VEIL_ADD_TEST(s, test_narrow_inputs);
    VEIL_ADD_TEST(s, test_input_width_check);
    return veil_test_run();
}
