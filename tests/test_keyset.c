// LABELS: unit crypto
// COST: 115
// LINKS: veil_host veil_loaders
/* Key sets (issue 11, veil/tfhe.h "Key sets"): a program whose PBS run in two
 * partitions with different parameter sets.
 *
 * The compiler half (partition search) may not have landed: the test compiles
 * models/tiny.h5 with exact rounding to 3 bits (one set as the cost table
 * picks it; 8 rounding PBS and 4 lookups per sample) and splits its PBS
 * nodes by hand: the ROUND node goes to nn-p3-norm2e7 (precision 3, k = 2,
 * N = 1024, k*N = 2048, with the margin of a 2-norm of 2^7: partition 1), the
 * LUT node to nn-p6-norm2e2 (k = 1, N = 8192, precision 6, 2-norm 4:
 * partition 0, the widest key, D = 8192). So partition 1 keyswitches from
 * the 8192-coefficient master key and its PBS outputs (2048 mask words) are
 * zero-extended; the lookup reads sums of both partitions' outputs. The noise
 * of both partitions is checked against the model (the KSK of partition 1
 * has D rows, four times its own k*N) before anything runs.
 *
 * Checks: encrypted equals simulate in the default run; keys of another
 * program (other partition list, other secret key) are refused with both
 * named; the serialized key set round-trips bit for bit and every field of
 * the new format is refused when wrong; nothing outside engine/ includes the
 * engine's internal.h (the secret key is opaque). */
#define _XOPEN_SOURCE 700
#include "model_encrypted_common.h"
#include "testutil.h"
#include "veil/noise.h"
#include "veil/serialize.h"

#include <ftw.h>
#include <math.h>
#include <sodium.h>

#define SET_WIDE "nn-p6-norm2e2-2m40"
/* 3 bits, derived for a 2-norm of 2^7: the margin that pays for
 * keyswitching from four times its own k*N (see the noise test; until the
 * 2026-12-04 re-derivation the wide set had N = 4096, twice, and
 * nn-p3-norm2e6 sufficed). The compiler's
 * own one-set choice for tiny at 3 bits (ONE) follows the cost table, so no
 * test names it: the checks below read ONE->params. */
#define SET_NARROW "nn-p3-norm2e7-2m40"

static veil_model *M;
static veil_program *ONE; /* as compiled: one partition */
static veil_program *TWO; /* the same, split in two partitions */
static size_t N_ROUND_NODES, N_LUT_NODES;
/* keys of TWO, made once (keygen is the slow part of this test under ASan) */
static veil_secret_key *SK2;
static veil_eval_key *EK2;

/* Moves the program to partitions {wide, narrow}: ROUND nodes in partition
 * 1, LUT nodes in partition 0. */
static int split(veil_program *p, const veil_params *wide, const veil_params *narrow) {
    veil_partition *pt = calloc(2, sizeof *pt);
    if (!pt || p->n_partitions != 1 || !wide || !narrow) {
        free(pt);
        return 0;
    }
    pt[1] = p->partitions[0];
    pt[0] = p->partitions[0];
    pt[0].params = wide;
    pt[1].params = narrow;
    pt[0].pbs_per_sample = pt[1].pbs_per_sample = 0;
    /* no rows worked out for this split: D each (veil_program_ksk_rows) */
    pt[0].ksk_rows = pt[1].ksk_rows = 0;
    free(p->partitions);
    p->partitions = pt;
    p->n_partitions = 2;
    p->params = wide;
    for (size_t i = 0; i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        if (n->kind == VEIL_NODE_ROUND) {
            n->partition = 1;
            pt[1].pbs_per_sample += n->pbs_per_sample;
            N_ROUND_NODES++;
        } else if (n->kind == VEIL_NODE_LUT) {
            n->partition = 0;
            pt[0].pbs_per_sample += n->pbs_per_sample;
            N_LUT_NODES++;
        }
    }
    return 1;
}

static int suite_init(void) {
    if (veil_model_load(veil_test_path("models/tiny.h5"), &M) != VEIL_OK) return 1;
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    o.max_partitions = 1; /* one set as compiled; TWO is split by hand below */
    if (veil_program_compile(M, &o, &ONE) != VEIL_OK) return 1;
    if (veil_program_compile(M, &o, &TWO) != VEIL_OK) return 1;
    if (!split(TWO, veil_params_find(SET_WIDE), veil_params_find(SET_NARROW))) return 1;
    uint8_t s[3][32];
    for (unsigned i = 0; i < 3; i++)
        veil_test_seed_bytes(80 + i, s[i]);
    if (veil_program_keygen(TWO, s[0], &SK2) != VEIL_OK) return 1;
    if (veil_program_eval_key_new(TWO, SK2, VEIL_KEY_BOTH, s[1], s[2], &EK2) != VEIL_OK) return 1;
    return 0;
}

static int suite_clean(void) {
    veil_eval_key_free(EK2);
    veil_secret_key_free(SK2);
    veil_program_free(ONE);
    veil_program_free(TWO);
    veil_model_free(M);
    return 0;
}

static double max_report_norm2(const veil_program *p) {
    double m = 0;
    for (size_t i = 0; i < p->n_report; i++)
        if (p->report[i].norm2 > m) m = p->report[i].norm2;
    return m;
}

/* The split program meets a noise bound: each partition's worst PBS input
 * (the program's largest 2-norm times the largest output or fresh variance
 * of either partition), with the keyswitch noise of D master rows. The sets
 * are derived for 2^-40 with a KSK of their own k*N rows; four times the rows
 * leave partition 1 at 2^-98 here with nn-p3-norm2e7 (2^-16.5 with
 * nn-p3-norm2e6, 2^-30.0 with nn-p3-norm2e1: read at 3 bits, the keyswitch
 * term is most of these sets' budget), so the test asks for 2^-30: this run's 64
 * PBS of partition 1 then fail with probability below 2^-24. The compiler's
 * partition search must count D rows (veil/tfhe.h "Key sets"). */
static void test_split_meets_noise_bound(void) {
    CU_ASSERT_EQUAL_FATAL(ONE->n_partitions, 1);
    CU_ASSERT_EQUAL(N_ROUND_NODES, 1);
    CU_ASSERT_EQUAL(N_LUT_NODES, 1);
    CU_ASSERT(TWO->partitions[0].pbs_per_sample > 0 && TWO->partitions[1].pbs_per_sample > 0);
    CU_ASSERT_EQUAL(TWO->partitions[0].pbs_per_sample + TWO->partitions[1].pbs_per_sample,
                    TWO->pbs_per_sample);
    const double norm2 = max_report_norm2(ONE);
    CU_ASSERT_FATAL(norm2 > 0);
    const uint32_t D = veil_params_big_dim(TWO->params);
    double out = veil_noise_fresh_variance(TWO->params);
    for (uint32_t x = 0; x < 2; x++) {
        const veil_params *p = TWO->partitions[x].params;
        double v = veil_noise_pbs_output_variance(p);
        out = v > out ? v : out;
    }
    for (uint32_t x = 0; x < 2; x++) {
        const veil_params *p = TWO->partitions[x].params;
        const double rows = (double)D / veil_params_big_dim(p);
        const double extra_ks = veil_noise_ks_variance(p) * (rows - 1);
        const double lp =
            veil_noise_log2_p_fail(p, TWO->max_lut_bits, norm2 * norm2 * out + extra_ks);
        printf("\n  partition %u: %s, KSK rows %u (x%.0f), log2 p_fail %.1f", x, p->id, D, rows,
               lp);
        CU_ASSERT(lp <= -30.0);
    }
    printf("\n");
}

/* One KS-PBS of the narrow partition: the output has D + 1 words, zero past
 * its own k*N, and decrypts under the master key. The inputs are D wide, so
 * the keys here have every KSK row (the program's, veil_program_ksk_rows,
 * need only the rows its values are wide). */
static void test_pbs_output_zero_extended(void) {
    const veil_params *parts[2] = {veil_params_find(SET_WIDE), veil_params_find(SET_NARROW)};
    const veil_secret_key *sk = SK2;
    veil_eval_key *ek = NULL;
    uint8_t ks[2][32];
    veil_test_seed_bytes(64, ks[0]);
    veil_test_seed_bytes(65, ks[1]);
    CU_ASSERT_FATAL(veil_eval_key_new(sk, ks[0], ks[1], &ek) == VEIL_OK);
    CU_ASSERT_PTR_EQUAL_FATAL(veil_secret_key_partition(sk, 0), parts[0]);
    CU_ASSERT_PTR_EQUAL_FATAL(veil_secret_key_partition(sk, 1), parts[1]);
    uint8_t s[32];
    veil_test_seed_bytes(63, s);
    veil_encryptor *enc = NULL;
    CU_ASSERT_FATAL(veil_encryptor_new(s, NULL, &enc) == VEIL_OK);
    const uint32_t D = veil_params_big_dim(parts[0]), d1 = veil_params_big_dim(parts[1]);
    CU_ASSERT_EQUAL(ek->n_parts, 2);
    CU_ASSERT_EQUAL(ek->parts[1].in_dim, D);
    uint64_t *in = malloc(8 * (D + 1)), *out = malloc(8 * (D + 1));
    const int64_t table[8] = {5, 1, 7, 0, 3, 6, 2, 4};
    size_t checked = 0;
    for (uint32_t x = 0; x < 2; x++) {
        veil_lut *lut = NULL;
        veil_pbs_ctx *ctx = NULL;
        CU_ASSERT_FATAL(veil_lut_new(parts[x], table, 3, 0, veil_delta(3), &lut) == VEIL_OK);
        CU_ASSERT_FATAL(veil_pbs_ctx_new(parts[x], &ctx) == VEIL_OK);
        for (int64_t m = 0; m < 8; m++) {
            veil_encrypt_big(enc, sk, veil_encode(m, 3), in);
            memset(out, 0xa5, 8 * (D + 1));
            veil_ks_pbs(ctx, veil_eval_key_part(ek, x), lut, in, out);
            size_t nonzero = 0;
            for (uint32_t t = veil_params_big_dim(parts[x]); t < D; t++)
                nonzero += out[t] != 0;
            CU_ASSERT_EQUAL(nonzero, 0);
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(sk, out), 3, 0), table[m]);
            checked++;
        }
        veil_pbs_ctx_free(ctx);
        veil_lut_free(lut);
    }
    CU_ASSERT_EQUAL(checked, 16);
    CU_ASSERT(d1 < D);
    free(in);
    free(out);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
}

static void test_two_partitions_equal_simulate(void) {
    enc_result r;
    const size_t n = M->golden.count < 8 ? M->golden.count : 8;
    CU_ASSERT_FATAL(n > 0);
    veil_status st = run_encrypted_vs_simulate(M, TWO, n, 4, &r);
    if (st) printf("\n  %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    printf("\n  2 partitions (%s, %s): %zu / %zu values equal to simulate, %.3f s per sample\n",
           TWO->partitions[0].params->id, TWO->partitions[1].params->id, r.equal, r.values,
           r.seconds_per_sample);
    CU_ASSERT_EQUAL(r.values, n * veil_program_output_size(TWO, 0));
    CU_ASSERT_EQUAL(r.equal, r.values);
}

static veil_status keys_for(const veil_program *p, unsigned seed, veil_secret_key **sk,
                            veil_eval_key **ek) {
    uint8_t s[3][32];
    for (unsigned i = 0; i < 3; i++)
        veil_test_seed_bytes(seed + i, s[i]);
    VEIL_TRY(veil_program_keygen(p, s[0], sk));
    return veil_program_eval_key_new(p, *sk, VEIL_KEY_BOTH, s[1], s[2], ek);
}

static int msg_has(const char *needle) {
    int ok = strstr(veil_error_message(), needle) != NULL;
    if (!ok) printf("\n  message \"%s\" lacks \"%s\"\n", veil_error_message(), needle);
    return ok;
}

static void test_other_program_keys_refused(void) {
    veil_secret_key *sk1 = NULL, *sk3 = NULL;
    veil_eval_key *ek1 = NULL;
    const veil_secret_key *sk2 = SK2;
    const veil_eval_key *ek2 = EK2;
    CU_ASSERT_FATAL(keys_for(ONE, 70, &sk1, &ek1) == VEIL_OK);
    uint8_t s3[32];
    veil_test_seed_bytes(90, s3);
    CU_ASSERT_FATAL(veil_program_keygen(TWO, s3, &sk3) == VEIL_OK);
    CU_ASSERT_EQUAL(ek1->n_parts, 1);
    CU_ASSERT_EQUAL(ek2->n_parts, 2);
    veil_backend *be = NULL;
    CU_ASSERT_FATAL(veil_backend_new(VEIL_BACKEND_CPU, &be) == VEIL_OK);
    veil_plan *plan = NULL;
    /* other partition list, both ways: the message names both lists */
    CU_ASSERT_EQUAL(veil_plan_new(TWO, ek1, be, 1, &plan), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has(ONE->params->id) && msg_has(SET_WIDE) && msg_has("1 partitions"));
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_EQUAL(veil_plan_new(ONE, ek2, be, 1, &plan), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("2 partitions"));
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_EQUAL(veil_program_check_secret_key(ONE, sk2), VEIL_ERR_PARAMS);
    CU_ASSERT_EQUAL(veil_program_check_secret_key(TWO, sk1), VEIL_ERR_PARAMS);
    const size_t in_sz = veil_program_input_size(TWO, 0);
    int64_t *v = malloc(8 * in_sz);
    uint64_t *ct = malloc(8 * veil_program_ct_words(TWO) * in_sz);
    veil_encryptor *enc = NULL;
    CU_ASSERT_FATAL(veil_encryptor_new(NULL, NULL, &enc) == VEIL_OK);
    for (size_t i = 0; i < in_sz; i++)
        v[i] = TWO->nodes[TWO->input_nodes[0]].lo;
    CU_ASSERT_EQUAL(veil_program_encrypt(TWO, enc, sk1, 0, v, 1, ct), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("encrypt: the secret key has 1 partitions"));
    CU_ASSERT_EQUAL(veil_program_encrypt(TWO, enc, sk2, 0, v, 1, ct), VEIL_OK);
    free(v);
    /* same partitions, another secret key: the fingerprint tells */
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(ek2, sk2), VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(ek2, sk3), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("key fp"));
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(ek1, sk2), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("not made together"));
    /* the matching set plans */
    CU_ASSERT_EQUAL(veil_plan_new(TWO, ek2, be, 1, &plan), VEIL_OK);
    veil_plan_free(plan);
    /* partition 0 must hold the widest key */
    const veil_params *bad[2] = {veil_params_find(SET_NARROW), veil_params_find(SET_WIDE)};
    veil_secret_key *skb = NULL;
    CU_ASSERT_EQUAL(veil_secret_key_new_set(bad, 2, NULL, &skb), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("widest"));
    CU_ASSERT_PTR_NULL(skb);
    CU_ASSERT_EQUAL(veil_secret_key_new_set(bad, 0, NULL, &skb), VEIL_ERR_ARG);
    veil_encryptor_free(enc);
    free(ct);
    veil_backend_free(be);
    veil_eval_key_free(ek1);
    veil_secret_key_free(sk1);
    veil_secret_key_free(sk3);
}

static void fix_checksum(uint8_t *buf, size_t len) {
    crypto_generichash(buf + len - 32, 32, buf, len - 32, NULL, 0);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Deserializes buf (checksum fixed first) and expects `want` with `needle`
 * in the message; restores buf from orig. */
static int refused(uint8_t *buf, const uint8_t *orig, size_t len, int is_ek, veil_status want,
                   const char *needle) {
    fix_checksum(buf, len);
    veil_status s;
    if (is_ek) {
        veil_eval_key *k = NULL;
        s = veil_eval_key_deserialize(buf, len, VEIL_KEY_BOTH, &k);
        veil_eval_key_free(k);
    } else {
        veil_secret_key *k = NULL;
        s = veil_secret_key_deserialize(buf, len, &k);
        veil_secret_key_free(k);
    }
    memcpy(buf, orig, len);
    if (s != want) printf("\n  status %d, expected %d (%s)\n", s, want, veil_error_message());
    return s == want && msg_has(needle);
}

static void check_fields(const uint8_t *orig, size_t len, int is_ek) {
    uint8_t *buf = malloc(len);
    memcpy(buf, orig, len);
    size_t checks = 0;
    /* old files: version 1 */
    put_u32(buf + 8, 1);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "veil keygen"));
    checks++;
    put_u32(buf + 164, 0);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "partitions: 0"));
    checks++;
    put_u32(buf + 164, VEIL_MAX_PARTITIONS + 1);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "partitions"));
    checks++;
    /* a table of one: the payload no longer adds up (an evaluation key's
     * first check to see it reads the KSK rows where partition 1 was) */
    put_u32(buf + 164, 1);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT,
                      is_ek ? "KSK rows" : "len_a (small key bits)"));
    checks++;
    /* table entry 1: unknown set, not NUL-padded */
    memset(buf + 176 + 48, 0, 48);
    memcpy(buf + 176 + 48, "no-such-set", 11);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_PARAMS, "partition 1 params id"));
    checks++;
    memset(buf + 176 + 48, 'x', 48);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "partition 1 params id"));
    checks++;
    /* entry 0 disagrees with the header */
    memset(buf + 176, 0, 48);
    memcpy(buf + 176, SET_NARROW, strlen(SET_NARROW));
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "the header names"));
    checks++;
    /* swapped order: partition 0 narrower than partition 1 */
    memset(buf + 16, 0, 48);
    memcpy(buf + 16, SET_NARROW, strlen(SET_NARROW));
    memset(buf + 176, 0, 96);
    memcpy(buf + 176, SET_NARROW, strlen(SET_NARROW));
    memcpy(buf + 176 + 48, SET_WIDE, strlen(SET_WIDE));
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "widest"));
    checks++;
    /* another set with the same k*N in entry 1: sizes no longer match */
    memset(buf + 176 + 48, 0, 48);
    memcpy(buf + 176 + 48, "nn-p4-norm2e0-2m40", 18);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "the partitions imply"));
    checks++;
    /* dim, lengths */
    put_u32(buf + 160, 2048);
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "dim"));
    checks++;
    buf[144] ^= 1;
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "len_a"));
    checks++;
    buf[152] ^= 1;
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_ERR_FORMAT, "len_b"));
    checks++;
    CU_ASSERT_EQUAL(checks, 12);
    /* the original loads */
    CU_ASSERT(refused(buf, orig, len, is_ek, VEIL_OK, ""));
    free(buf);
}

/* A key whose KSKs have fewer rows than the program's lookups read is
 * refused by name; one with more (every KSK of D rows, keys made before
 * each partition's KSK was sized) is accepted. */
static void test_ksk_rows_refused(void) {
    uint32_t rows[VEIL_MAX_PARTITIONS];
    CU_ASSERT_EQUAL_FATAL(veil_program_ksk_rows(TWO, rows), 2);
    uint8_t s[2][32];
    veil_test_seed_bytes(91, s[0]);
    veil_test_seed_bytes(92, s[1]);
    veil_eval_key *whole = NULL, *short_ = NULL;
    CU_ASSERT_FATAL(veil_eval_key_new(SK2, s[0], s[1], &whole) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_program_check_eval_key(TWO, whole), VEIL_OK);
    uint32_t x = rows[0] > 1 ? 0 : 1;
    CU_ASSERT_FATAL(rows[x] > 1);
    rows[x]--;
    CU_ASSERT_FATAL(veil_eval_key_new_rows(SK2, rows, VEIL_KEY_BOTH, s[0], s[1], &short_) ==
                    VEIL_OK);
    CU_ASSERT_EQUAL(veil_program_check_eval_key(TWO, short_), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("keyswitching key of") && msg_has(TWO->partitions[x].params->id) &&
              msg_has("veil keygen"));
    veil_eval_key_free(whole);
    veil_eval_key_free(short_);
}

static void test_serialize_key_set(void) {
    const veil_secret_key *sk = SK2;
    const veil_eval_key *ek = EK2;
    uint8_t *sb = NULL, *eb = NULL, *b2 = NULL;
    size_t sl = 0, el = 0, l2 = 0;
    CU_ASSERT_FATAL(veil_secret_key_serialize(sk, &sb, &sl) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_serialize(ek, &eb, &el) == VEIL_OK);
    CU_ASSERT_EQUAL(el, veil_program_eval_key_bytes(TWO));
    const uint32_t D = veil_params_big_dim(TWO->params);
    uint32_t rows[VEIL_MAX_PARTITIONS];
    CU_ASSERT_EQUAL_FATAL(veil_program_ksk_rows(TWO, rows), 2);
    CU_ASSERT_EQUAL(
        el, 176 + 32 +
                veil_eval_key_partition_serialized_bytes(TWO->partitions[0].params, rows[0]) +
                veil_eval_key_partition_serialized_bytes(TWO->partitions[1].params, rows[1]));
    for (uint32_t x = 0; x < 2; x++) {
        CU_ASSERT(rows[x] >= 1 && rows[x] <= D);
        CU_ASSERT_EQUAL(ek->parts[x].ksk_rows, rows[x]);
    }
    printf("\n  key set: secret %zu bytes, evaluation %zu bytes (seeded; raw %zu)\n", sl, el,
           veil_program_eval_key_raw_bytes(TWO));
    /* round trip, bit for bit */
    veil_secret_key *sk2 = NULL;
    veil_eval_key *ek2 = NULL;
    CU_ASSERT_FATAL(veil_secret_key_deserialize(sb, sl, &sk2) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_deserialize(eb, el, VEIL_KEY_BOTH, &ek2) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_secret_key_n_partitions(sk2), 2);
    CU_ASSERT_PTR_EQUAL(veil_secret_key_partition(sk2, 1), TWO->partitions[1].params);
    CU_ASSERT_EQUAL(ek2->n_parts, 2);
    CU_ASSERT_EQUAL(veil_program_check_eval_key(TWO, ek2), VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(ek2, sk2), VEIL_OK);
    for (uint32_t x = 0; x < 2; x++) {
        const veil_params *p = ek->parts[x].params;
        CU_ASSERT(memcmp(ek->parts[x].bsk, ek2->parts[x].bsk, 8 * veil_eval_key_bsk_words(p)) == 0);
        CU_ASSERT_EQUAL_FATAL(ek2->parts[x].ksk_rows, ek->parts[x].ksk_rows);
        CU_ASSERT(memcmp(ek->parts[x].ksk32, ek2->parts[x].ksk32,
                         4 * veil_eval_key_ksk_words(p, ek->parts[x].ksk_rows)) == 0);
        CU_ASSERT(memcmp(ek->parts[x].mask_seed, ek2->parts[x].mask_seed, 32) == 0);
    }
    CU_ASSERT(memcmp(ek->parts[0].mask_seed, ek->parts[1].mask_seed, 32) != 0);
    CU_ASSERT_FATAL(veil_secret_key_serialize(sk2, &b2, &l2) == VEIL_OK);
    CU_ASSERT(l2 == sl && memcmp(b2, sb, sl) == 0);
    veil_serial_buffer_free(b2, l2);
    CU_ASSERT_FATAL(veil_eval_key_serialize(ek2, &b2, &l2) == VEIL_OK);
    CU_ASSERT(l2 == el && memcmp(b2, eb, el) == 0);
    veil_serial_buffer_free(b2, l2);
    /* field-level refusals of the new format */
    check_fields(sb, sl, 0);
    check_fields(eb, el, 1);
    /* the small key of partition 1 is under the fingerprint: one bit of it
     * changed (checksum fixed) is refused */
    uint8_t *c = malloc(sl);
    memcpy(c, sb, sl);
    c[176 + 96 + veil_params_find(SET_WIDE)->lwe_dim / 8 + 1] ^= 1;
    CU_ASSERT(refused(c, sb, sl, 0, VEIL_ERR_FORMAT, "key fp"));
    free(c);
    veil_serial_buffer_free(sb, sl);
    veil_serial_buffer_free(eb, el);
    veil_eval_key_free(ek2);
    veil_secret_key_free(sk2);
}

/* ---- the secret key is opaque: nothing outside engine/ includes internal.h */

static size_t g_scanned, g_offenders;

static int scan_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (flag != FTW_F) return 0;
    size_t l = strlen(path);
    int src = (l > 2 && (!strcmp(path + l - 2, ".c") || !strcmp(path + l - 2, ".h"))) ||
              (l > 3 && (!strcmp(path + l - 3, ".cu") || !strcmp(path + l - 4, ".cuh") ||
                         !strcmp(path + l - 4, ".cpp")));
    if (!src) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    g_scanned++;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "#include", 8) != 0) continue;
        const char *q = strstr(p, "internal.h");
        /* "internal.h" or ".../src/internal.h", not backend_internal.h etc. */
        if (q && (q[-1] == '"' || q[-1] == '<' || q[-1] == '/')) {
            printf("\n  %s includes the engine's internal.h: %s", path, p);
            g_offenders++;
        }
    }
    fclose(f);
    return 0;
}

static void test_secret_key_opaque(void) {
    const char *dirs[] = {"host", "tests", "bench", "fuzz", "kernels", "loaders", "deploy"};
    g_scanned = g_offenders = 0;
    size_t walked = 0;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char root[1024];
        snprintf(root, sizeof root, "%s", veil_test_path(dirs[i]));
        if (nftw(root, scan_one, 16, FTW_PHYS) == 0) walked++;
    }
    printf("\n  %zu source files outside engine/ scanned in %zu trees\n", g_scanned, walked);
    CU_ASSERT(walked >= 5);
    CU_ASSERT(g_scanned > 50);
    CU_ASSERT_EQUAL(g_offenders, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("keyset", suite_init, suite_clean);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_split_meets_noise_bound);
    VEIL_ADD_TEST(s, test_pbs_output_zero_extended);
    VEIL_ADD_TEST(s, test_two_partitions_equal_simulate);
    VEIL_ADD_TEST(s, test_other_program_keys_refused);
    VEIL_ADD_TEST(s, test_serialize_key_set);
    VEIL_ADD_TEST(s, test_ksk_rows_refused);
    VEIL_ADD_TEST(s, test_secret_key_opaque);
    return veil_test_run();
}
