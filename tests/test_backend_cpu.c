// LABELS: unit crypto
// LINKS: veil_host
/* The cpu backend against direct engine calls on the same keys and inputs:
 * ks_pbs with a table per ciphertext (bit-exact with veil_ks_pbs, and the
 * decryptions equal the tables), linear and conv2d (bit-exact with an
 * independent loop over veil_lwe_mul_scalar / veil_lwe_add, decryptions equal
 * the clear computation), add / scale / copy on buffers (word for word
 * against a plain loop), splitting a KS-PBS into pieces (shrunken limits give
 * the same ciphertexts), argument errors (ranges, aliasing, objects of other
 * keys), backend selection, keys prepared for one use (the cpu's Fourier
 * domain only, or the standard one: the same ciphertexts, and what each
 * refuses), and the test helpers' overrun sentinel. */
#include "backend_host.h"
#include "backend_random_ops.h"
#include "testutil.h"
#include "veil/backend.h"
#include "veil/exec.h"
#include "veil/serialize.h"
#include "../host/backend_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_params_id = "tfhers-1_1-gaussian-2m64";

static const veil_params *P;
static veil_secret_key *SK;
static veil_eval_key *EK;
static veil_encryptor *ENC;
static veil_backend *BE;
static veil_backend_keys *KEYS;
static size_t LWE;

static int suite_init(void) {
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(10 + i, s[i]);
    P = veil_params_find(k_params_id);
    if (!P) return 1;
    LWE = (size_t)veil_params_big_dim(P) + 1;
    if (veil_secret_key_new(P, s[0], &SK) || veil_eval_key_new(SK, s[1], s[2], &EK) ||
        veil_encryptor_new(s[3], s[4], &ENC) || veil_backend_new(VEIL_BACKEND_CPU, &BE) ||
        veil_backend_keys_new(BE, EK, 64, &KEYS)) {
        printf("suite init: %s\n", veil_error_message());
        return 1;
    }
    return 0;
}

static int suite_clean(void) {
    veil_backend_keys_free(KEYS);
    veil_backend_free(BE);
    veil_encryptor_free(ENC);
    veil_eval_key_free(EK);
    veil_secret_key_free(SK);
    return 0;
}

static uint64_t *alloc_cts(size_t n) {
    uint64_t *p = calloc(n * LWE, sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

/* Random message in [lo, hi]. */
static int64_t rand_in(int64_t lo, int64_t hi) {
    return lo + (int64_t)(veil_test_rand() % (uint64_t)(hi - lo + 1));
}

static void test_kind_parse(void) {
    veil_backend_kind k = VEIL_BACKEND_CUDA;
    CU_ASSERT_EQUAL(veil_backend_kind_parse("cpu", &k), VEIL_OK);
    CU_ASSERT_EQUAL(k, VEIL_BACKEND_CPU);
    CU_ASSERT_EQUAL(veil_backend_kind_parse("auto", &k), VEIL_OK);
    CU_ASSERT_EQUAL(k, VEIL_BACKEND_AUTO);
    CU_ASSERT_EQUAL(veil_backend_kind_parse("cuda", &k), VEIL_OK);
    CU_ASSERT_EQUAL(k, VEIL_BACKEND_CUDA);
    /* one spelling each, as every command's --mode/--backend: no case
     * folding, no aliases (bench_server once took "gpu" for a cuda server
     * and timed it as a cpu one) */
    static const char *const bad[] = {"AUTO", "Cpu", "CUDA", "gpu", "cpu ", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_EQUAL(veil_backend_kind_parse(bad[i], &k), VEIL_ERR_ARG);
        CU_ASSERT_EQUAL(k, VEIL_BACKEND_CUDA); /* untouched */
    }
    veil_backend_pbs pk = VEIL_BACKEND_PBS_AUTO;
    CU_ASSERT_EQUAL(veil_backend_pbs_parse("Cluster", &pk), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_backend_pbs_parse("cluster", &pk), VEIL_OK);
    CU_ASSERT_EQUAL(pk, VEIL_BACKEND_PBS_CLUSTER);
    k = VEIL_BACKEND_CPU;
    CU_ASSERT_EQUAL(veil_backend_kind_parse("tpu", &k), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(k, VEIL_BACKEND_CPU); /* untouched on failure */
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "tpu"));
    CU_ASSERT_EQUAL(veil_backend_kind_parse(NULL, &k), VEIL_ERR_ARG);
}

/* The programs' environment overrides: read by veil_backend_options_from_env
 * alone, strictly (a bad value names its variable and changes nothing). */
static void test_options_env(void) {
    static const char *const vars[] = {"VEIL_THREADS", "VEIL_CUDA_DEVICE", "VEIL_CUDA_PBS",
                                       "VEIL_CUDA_MEMORY_MB"};
    veil_backend_options o, d;
    veil_backend_options_default(&d);
    CU_ASSERT_EQUAL(d.threads, 0);
    CU_ASSERT_EQUAL(d.device, 0);
    CU_ASSERT_EQUAL(d.pbs, VEIL_BACKEND_PBS_AUTO);
    CU_ASSERT(d.memory_mb < 0);
    for (size_t i = 0; i < 4; i++)
        unsetenv(vars[i]);
    o = d;
    CU_ASSERT_EQUAL(veil_backend_options_from_env(&o), VEIL_OK);
    CU_ASSERT(memcmp(&o, &d, sizeof o) == 0);
    setenv("VEIL_THREADS", "3", 1);
    setenv("VEIL_CUDA_DEVICE", "1", 1);
    setenv("VEIL_CUDA_PBS", "cluster", 1);
    setenv("VEIL_CUDA_MEMORY_MB", "64", 1);
    CU_ASSERT_EQUAL(veil_backend_options_from_env(&o), VEIL_OK);
    CU_ASSERT_EQUAL(o.threads, 3);
    CU_ASSERT_EQUAL(o.device, 1);
    CU_ASSERT_EQUAL(o.pbs, VEIL_BACKEND_PBS_CLUSTER);
    CU_ASSERT_EQUAL(o.memory_mb, 64);
    /* every kernel name of veil_backend_pbs_parse, in enum order */
    static const char *const kernels[] = {"auto", "cufft", "fused", "cluster", "split"};
    for (int i = 0; i < 5; i++) {
        setenv("VEIL_CUDA_PBS", kernels[i], 1);
        CU_ASSERT_EQUAL(veil_backend_options_from_env(&o), VEIL_OK);
        CU_ASSERT_EQUAL(o.pbs, (veil_backend_pbs)i);
    }
    CU_ASSERT_EQUAL(o.pbs, VEIL_BACKEND_PBS_SPLIT);
    setenv("VEIL_CUDA_PBS", "cluster", 1);
    CU_ASSERT_EQUAL(veil_backend_options_from_env(&o), VEIL_OK);
    /* each bad value: refused, naming the variable, o as it was */
    static const char *const bad[][2] = {
        {"VEIL_THREADS", "0"},        {"VEIL_THREADS", "4x"},    {"VEIL_THREADS", "-2"},
        {"VEIL_CUDA_DEVICE", "gpu1"}, {"VEIL_CUDA_PBS", "fast"}, {"VEIL_CUDA_MEMORY_MB", "1e3"},
        {"VEIL_CUDA_MEMORY_MB", "0"}, {"VEIL_THREADS", "257"}};
    size_t n_bad = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, n_bad++) {
        veil_backend_options before = o;
        setenv(bad[i][0], bad[i][1], 1);
        CU_ASSERT_EQUAL(veil_backend_options_from_env(&o), VEIL_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), bad[i][0]));
        CU_ASSERT(memcmp(&o, &before, sizeof o) == 0);
        veil_backend *be = NULL;
        CU_ASSERT_EQUAL(veil_backend_new_env(VEIL_BACKEND_CPU, &be), VEIL_ERR_ARG);
        CU_ASSERT_PTR_NULL(be);
        unsetenv(bad[i][0]);
    }
    CU_ASSERT_EQUAL(n_bad, 8);
    /* the cpu backend takes its threads from the options, not from the environment */
    setenv("VEIL_THREADS", "3", 1);
    veil_backend *be = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_backend_new(VEIL_BACKEND_CPU, &be), VEIL_OK);
    veil_backend_free(be);
    o = d;
    o.threads = 2;
    CU_ASSERT_EQUAL_FATAL(veil_backend_new_opts(VEIL_BACKEND_CPU, &o, &be), VEIL_OK);
    CU_ASSERT(strncmp(veil_backend_describe(be), "cpu: 2 threads", 14) == 0);
    veil_backend_free(be);
    CU_ASSERT_EQUAL_FATAL(veil_backend_new_env(VEIL_BACKEND_CPU, &be), VEIL_OK);
    CU_ASSERT(strncmp(veil_backend_describe(be), "cpu: 3 threads", 14) == 0);
    veil_backend_free(be);
    o.threads = 257;
    CU_ASSERT_EQUAL(veil_backend_new_opts(VEIL_BACKEND_CPU, &o, &be), VEIL_ERR_ARG);
    for (size_t i = 0; i < 4; i++)
        unsetenv(vars[i]);
    veil_backend_pbs k;
    CU_ASSERT_EQUAL(veil_backend_pbs_parse("fused", &k), VEIL_OK);
    CU_ASSERT_EQUAL(k, VEIL_BACKEND_PBS_FUSED);
    CU_ASSERT_EQUAL(veil_backend_pbs_parse("cufft", &k), VEIL_OK);
    CU_ASSERT_EQUAL(k, VEIL_BACKEND_PBS_CUFFT);
}

/* supports_op by node kind, and the executor refusing, at plan time and
 * naming the layer, a program with a node its backend lacks (a cpu backend
 * whose conv2d entry is taken away). */
static void test_supports_op(void) {
    veil_node nodes[8];
    memset(nodes, 0, sizeof nodes);
    const veil_node_kind kinds[8] = {VEIL_NODE_INPUT,  VEIL_NODE_ADD,    VEIL_NODE_ROUND,
                                     VEIL_NODE_LUT,    VEIL_NODE_OUTPUT, VEIL_NODE_LINEAR,
                                     VEIL_NODE_LINEAR, VEIL_NODE_LINEAR};
    const veil_linear_kind lin[8] = {
        0, 0, 0, 0, 0, VEIL_LINEAR_DENSE, VEIL_LINEAR_CONV2D, VEIL_LINEAR_SUMPOOL2D};
    struct veil_backend_i no_conv = *BE->iface;
    no_conv.conv2d = NULL;
    veil_backend fake = *BE;
    fake.iface = &no_conv;
    size_t checked = 0;
    for (size_t i = 0; i < 8; i++, checked++) {
        nodes[i].kind = kinds[i];
        nodes[i].linear = lin[i];
        CU_ASSERT(veil_backend_supports_op(BE, &nodes[i]));
        const int conv = kinds[i] == VEIL_NODE_LINEAR && lin[i] != VEIL_LINEAR_DENSE;
        CU_ASSERT_EQUAL(veil_backend_supports_op(&fake, &nodes[i]), !conv);
    }
    CU_ASSERT_EQUAL(checked, 8);
    CU_ASSERT_FALSE(veil_backend_supports_op(NULL, &nodes[0]));
    /* without add: ADD and ROUND (its chunk arithmetic) go; without copy:
     * flatten and concat; inputs and outputs stay */
    struct veil_backend_i no_add = *BE->iface;
    no_add.add = NULL;
    no_add.copy = NULL;
    fake.iface = &no_add;
    veil_node flat = {.kind = VEIL_NODE_LINEAR, .linear = VEIL_LINEAR_FLATTEN};
    CU_ASSERT(veil_backend_supports_op(BE, &flat));
    CU_ASSERT_FALSE(veil_backend_supports_op(&fake, &flat));
    for (size_t i = 0; i < 8; i++) {
        const int gone = kinds[i] == VEIL_NODE_ADD || kinds[i] == VEIL_NODE_ROUND;
        CU_ASSERT_EQUAL(veil_backend_supports_op(&fake, &nodes[i]), !gone);
    }
    /* threshold reads need the extraction (a table's PBS reads a wrapped
     * index otherwise, veil/tfhe.h veil_lut_step_wrapped); a plain lookup
     * does not */
    struct veil_backend_i no_extract = *BE->iface;
    no_extract.ks_pbs_extract = NULL;
    fake.iface = &no_extract;
    veil_node thr = {.kind = VEIL_NODE_LUT, .rotation_results = 2};
    CU_ASSERT(veil_backend_supports_op(BE, &thr));
    CU_ASSERT_FALSE(veil_backend_supports_op(&fake, &thr));
    CU_ASSERT(veil_backend_supports_op(&fake, &nodes[3]));
    fake.iface = &no_conv;

    /* a one-node program: a conv2d on the set of EK */
    veil_partition part = {.params = P};
    veil_node conv = {.kind = VEIL_NODE_LINEAR,
                      .layer = "features.conv0",
                      .linear = VEIL_LINEAR_CONV2D,
                      .size = 1,
                      .width = 10};
    conv.conv = (veil_conv_geom){1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1};
    int64_t w1 = 1;
    conv.weight = &w1;
    veil_program prog = {
        .params = P, .n_partitions = 1, .partitions = &part, .n_nodes = 1, .nodes = &conv};
    veil_plan *plan = NULL;
    CU_ASSERT_EQUAL(veil_plan_new(&prog, EK, &fake, 1, &plan), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(veil_error_message(), "layer features.conv0: backend cpu does not run conv2d"));
    /* the same program plans on the whole cpu backend */
    CU_ASSERT_EQUAL(veil_plan_new(&prog, EK, BE, 1, &plan), VEIL_OK);
    veil_plan_free(plan);
}

static void test_backend_select(void) {
    CU_ASSERT_STRING_EQUAL(veil_backend_name(BE), "cpu");
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_backend_describe(BE), "cpu"));
    CU_ASSERT(veil_backend_healthy(BE));
    char why[256] = "";
    int have_cuda = veil_backend_cuda_available(why, sizeof why);
    veil_backend *be = NULL;
    CU_ASSERT_EQUAL(veil_backend_new(VEIL_BACKEND_AUTO, &be), VEIL_OK);
    CU_ASSERT_STRING_EQUAL(veil_backend_name(be), have_cuda ? "cuda" : "cpu");
    veil_backend_free(be);
    if (!have_cuda) {
        be = NULL;
        CU_ASSERT(strlen(why) > 0);
        CU_ASSERT_EQUAL(veil_backend_new(VEIL_BACKEND_CUDA, &be), VEIL_ERR_UNSUPPORTED);
        CU_ASSERT_PTR_NULL(be);
        printf("(cuda unavailable: %s) ", why);
    }
    veil_backend_free(NULL);
    veil_backend_keys_free(NULL);
}

/* Tables of precision p bits: unsigned f(x) = (3x + 1) mod 2^p, signed
 * g(x) = -x - 1 (stays in [-2^(p-1), 2^(p-1))). */
static void make_luts(veil_lut **luts, int64_t *tab_u, int64_t *tab_s, unsigned p) {
    unsigned n = 1u << p;
    for (unsigned i = 0; i < n; i++) {
        tab_u[i] = (3 * (int64_t)i + 1) % n;
        int64_t x = (int64_t)i - (int64_t)(n / 2);
        tab_s[i] = -x - 1;
    }
    CU_ASSERT_FATAL(veil_lut_new(P, tab_u, p, 0, veil_delta(p), &luts[0]) == VEIL_OK);
    CU_ASSERT_FATAL(veil_lut_new(P, tab_s, p, 1, veil_delta(p), &luts[1]) == VEIL_OK);
}

/* A ks_pbs that records the pieces backend.c hands the implementation, then
 * runs the real one. */
static veil_status (*g_real_ks_pbs)(veil_backend_keys *, const veil_backend_tables *, size_t,
                                    const uint64_t *, size_t, uint64_t *);
static size_t g_pieces, g_piece_at[16], g_piece_count[16];

static veil_status counting_ks_pbs(veil_backend_keys *keys, const veil_backend_tables *t, size_t at,
                                   const uint64_t *in, size_t count, uint64_t *out) {
    if (g_pieces < 16) {
        g_piece_at[g_pieces] = at;
        g_piece_count[g_pieces] = count;
    }
    g_pieces++;
    return g_real_ks_pbs(keys, t, at, in, count, out);
}

static void test_ks_pbs(void) {
    const unsigned p = P->precision, n = 1u << p;
    const size_t count = 7;
    veil_lut *luts[2];
    int64_t tab_u[64], tab_s[64];
    make_luts(luts, tab_u, tab_s, p);
    uint64_t *in = alloc_cts(count), *out = alloc_cts(count), *ref = alloc_cts(count),
             *out2 = alloc_cts(count);
    uint32_t idx[7];
    int64_t msg[7];
    for (size_t i = 0; i < count; i++) {
        idx[i] = (uint32_t)(veil_test_rand() % 2);
        msg[i] = idx[i] ? rand_in(-(int64_t)n / 2, (int64_t)n / 2 - 1) : rand_in(0, n - 1);
        veil_encrypt_big(ENC, SK, veil_encode(msg[i], p), in + i * LWE);
    }
    veil_pbs_ctx *ctx;
    CU_ASSERT_FATAL(veil_pbs_ctx_new(P, &ctx) == VEIL_OK);
    for (size_t i = 0; i < count; i++)
        veil_ks_pbs(ctx, veil_eval_key_part(EK, 0), luts[idx[i]], in + i * LWE, ref + i * LWE);
    veil_pbs_ctx_free(ctx);

    const veil_lut *const lp[2] = {luts[0], luts[1]};
    CU_ASSERT_EQUAL_FATAL(bh_ks_pbs(KEYS, 0, in, count, lp, 2, idx, out), VEIL_OK);
    CU_ASSERT(memcmp(out, ref, count * LWE * sizeof *out) == 0);
    for (size_t i = 0; i < count; i++) {
        int64_t want = idx[i] ? tab_s[msg[i] + n / 2] : tab_u[msg[i]];
        int64_t got = veil_decode(veil_phase_big(SK, out + i * LWE), p, (int)idx[i]);
        if (got != want)
            printf("\nct %zu (table %u, m = %lld): got %lld, want %lld\n", i, idx[i],
                   (long long)msg[i], (long long)got, (long long)want);
        CU_ASSERT_EQUAL(got, want);
    }

    /* Split into pieces of 3: the implementation sees 3 + 3 + 1 ciphertexts
     * at 0, 3, 6 (its ks_pbs wrapped to count the calls), and the
     * ciphertexts are identical. */
    veil_backend_keys *k2;
    CU_ASSERT_FATAL(veil_backend_keys_new(BE, EK, 3, &k2) == VEIL_OK);
    veil_backend_keys_limits(k2, &(veil_backend_limits){.max_pbs = 3});
    struct veil_backend_i counting = *BE->iface;
    counting.ks_pbs = counting_ks_pbs;
    veil_backend counted = *BE;
    counted.iface = &counting;
    g_real_ks_pbs = BE->iface->ks_pbs;
    g_pieces = 0;
    k2->be = &counted;
    CU_ASSERT_EQUAL(bh_ks_pbs(k2, 0, in, count, lp, 2, idx, out2), VEIL_OK);
    k2->be = BE;
    CU_ASSERT_EQUAL_FATAL(count, 7);
    CU_ASSERT_EQUAL(g_pieces, 3);
    for (size_t i = 0; i < 3 && i < g_pieces; i++) {
        CU_ASSERT_EQUAL(g_piece_at[i], 3 * i);
        CU_ASSERT_EQUAL(g_piece_count[i], i < 2 ? 3 : 1);
    }
    CU_ASSERT(memcmp(out2, ref, count * LWE * sizeof *out) == 0);

    /* lut_index NULL: every ciphertext reads luts[0] (luts[1] never read). */
    const veil_lut *const lp0[2] = {luts[0], NULL};
    int64_t m2[2] = {0, n - 1};
    for (size_t i = 0; i < 2; i++)
        veil_encrypt_big(ENC, SK, veil_encode(m2[i], p), in + i * LWE);
    CU_ASSERT_EQUAL(bh_ks_pbs(k2, 0, in, 2, lp0, 2, NULL, out2), VEIL_OK);
    for (size_t i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(SK, out2 + i * LWE), p, 0), tab_u[m2[i]]);

    /* Errors: index out of range, wrong N, a call past the index or a buffer,
     * in = out, a partition the key does not have. */
    uint32_t bad[7];
    memcpy(bad, idx, sizeof bad);
    bad[5] = 2;
    CU_ASSERT_EQUAL(bh_ks_pbs(KEYS, 0, in, count, lp, 2, bad, out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "index[5] = 2"));
    veil_backend_tables *t = NULL;
    veil_backend_buffer *b7 = NULL, *b8 = NULL;
    CU_ASSERT_FATAL(veil_backend_tables_new(KEYS, 0, lp, 2, idx, 3, &t) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_new(KEYS, 7, &b7) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_new(KEYS, 8, &b8) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_ks_pbs(t, b7, 4, b8), VEIL_ERR_ARG); /* index of 3 */
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "the tables index 3"));
    CU_ASSERT_EQUAL(veil_backend_ks_pbs(t, b7, 3, b7), VEIL_ERR_ARG);
    veil_backend_tables_free(t);
    CU_ASSERT_FATAL(veil_backend_tables_new(KEYS, 0, lp, 1, NULL, 0, &t) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_ks_pbs(t, b7, 8, b8), VEIL_ERR_ARG); /* b7 holds 7 */
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "in holds 7 ciphertexts"));
    CU_ASSERT_EQUAL(veil_backend_ks_pbs(t, b7, 0, b8), VEIL_OK);
    /* the WoP-PBS reads WoP tables only, made for a WoP set's partition only
     * (test_wop_program runs them) */
    CU_ASSERT_EQUAL(veil_backend_wop_pbs(t, b7, 1, b8), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "not from tables_new_wop"));
    const int64_t wtab[2] = {0, 1};
    veil_backend_tables *tw = NULL;
    CU_ASSERT_EQUAL(veil_backend_tables_new_wop(KEYS, 0, wtab, 1, 1, 1, 1, 1, &tw), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "partition 0 ("));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "is not a WoP set's"));
    CU_ASSERT_EQUAL(veil_backend_tables_new_wop(KEYS, 0, wtab, 1, 1, 1, 0, 1, &tw), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "0 bits"));
    CU_ASSERT_EQUAL(veil_backend_tables_new_wop(KEYS, 1, wtab, 1, 1, 1, 1, 1, &tw), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_backend_tables_new_wop(KEYS, 0, NULL, 1, 1, 1, 1, 1, &tw), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "no tables (1 given)"));
    CU_ASSERT_EQUAL(veil_backend_tables_new_wop(KEYS, 0, wtab, 1, 0, 1, 1, 1, &tw), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "size 0 and inner 1 must be positive"));
    CU_ASSERT_PTR_NULL(tw);
    veil_backend_tables_free(t);
    veil_backend_buffer_free(b7);
    veil_backend_buffer_free(b8);
    CU_ASSERT_EQUAL(veil_backend_tables_new(KEYS, 1, lp, 1, NULL, 0, &t), VEIL_ERR_ARG);
    veil_lut wrong = *luts[0];
    wrong.poly_size = P->poly_size * 2;
    const veil_lut *const lw[1] = {&wrong};
    CU_ASSERT_EQUAL(bh_ks_pbs(KEYS, 0, in, 1, lw, 1, NULL, out), VEIL_ERR_PARAMS);
    veil_backend_keys_free(k2);

    free(in);
    free(out);
    free(out2);
    free(ref);
    veil_lut_free(luts[0]);
    veil_lut_free(luts[1]);
}

/* Reference: out = sum w * in + bias through the engine's scalar ops. */
static void ref_axpy(uint64_t *acc, const uint64_t *ct, int64_t w) {
    uint32_t d = veil_params_big_dim(P);
    uint64_t *t = malloc(LWE * sizeof *t);
    CU_ASSERT_FATAL(t != NULL);
    veil_lwe_mul_scalar(t, ct, w, d);
    veil_lwe_add(acc, acc, t, d);
    free(t);
}

static void test_linear(void) {
    const unsigned bits = 10;
    const size_t batch = 5, in_f = 6, out_f = 4;
    uint64_t *in = alloc_cts(batch * in_f), *out = alloc_cts(batch * out_f),
             *ref = alloc_cts(batch * out_f);
    int64_t m[5 * 6], w[4 * 6];
    uint64_t bias[4];
    int64_t bias_m[4];
    for (size_t i = 0; i < batch * in_f; i++) {
        m[i] = rand_in(-8, 7);
        veil_encrypt_big(ENC, SK, veil_encode(m[i], bits), in + i * LWE);
    }
    for (size_t i = 0; i < out_f * in_f; i++)
        w[i] = rand_in(-5, 5);
    for (size_t o = 0; o < out_f; o++) {
        bias_m[o] = rand_in(-20, 20);
        bias[o] = veil_encode(bias_m[o], bits);
    }
    for (size_t b = 0; b < batch; b++)
        for (size_t o = 0; o < out_f; o++) {
            uint64_t *y = ref + (b * out_f + o) * LWE;
            for (size_t i = 0; i < in_f; i++)
                ref_axpy(y, in + (b * in_f + i) * LWE, w[o * in_f + i]);
            y[LWE - 1] += bias[o];
        }
    CU_ASSERT_EQUAL_FATAL(bh_linear(KEYS, in, batch, in_f, w, bias, out_f, out), VEIL_OK);
    CU_ASSERT(memcmp(out, ref, batch * out_f * LWE * sizeof *out) == 0);
    for (size_t b = 0; b < batch; b++)
        for (size_t o = 0; o < out_f; o++) {
            int64_t want = bias_m[o];
            for (size_t i = 0; i < in_f; i++)
                want += w[o * in_f + i] * m[b * in_f + i];
            CU_ASSERT_EQUAL(veil_decode(veil_phase_big(SK, out + (b * out_f + o) * LWE), bits, 1),
                            want);
        }
    /* No bias. */
    CU_ASSERT_EQUAL(bh_linear(KEYS, in, 1, in_f, w, NULL, 1, out), VEIL_OK);
    int64_t want = 0;
    for (size_t i = 0; i < in_f; i++)
        want += w[i] * m[i];
    CU_ASSERT_EQUAL(veil_decode(veil_phase_big(SK, out), bits, 1), want);
    CU_ASSERT_EQUAL(bh_linear(KEYS, in, 1, 0, w, NULL, 1, out), VEIL_ERR_ARG);
    /* the weights of a dense layer do not run a conv2d; a buffer too small */
    veil_backend_weights *wt = NULL;
    veil_backend_buffer *bi = NULL, *bo = NULL;
    CU_ASSERT_FATAL(veil_backend_weights_new_dense(KEYS, w, in_f, out_f, NULL, &wt) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_new(KEYS, 2 * in_f, &bi) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_new(KEYS, 2 * out_f, &bo) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_conv2d(wt, bi, 1, bo), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_backend_linear(wt, bi, 3, bo), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "in holds 12 ciphertexts"));
    CU_ASSERT_EQUAL(veil_backend_linear(wt, bi, 2, bi), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_backend_linear(wt, bi, 2, bo), VEIL_OK);
    veil_backend_buffer_free(bi);
    veil_backend_buffer_free(bo);
    veil_backend_weights_free(wt);
    free(in);
    free(out);
    free(ref);
}

static void test_conv2d(void) {
    const unsigned bits = 10;
    veil_conv_geom s = {.c_in = 2,
                        .h_in = 5,
                        .w_in = 4,
                        .c_out = 3,
                        .kh = 3,
                        .kw = 2,
                        .stride_h = 2,
                        .stride_w = 1,
                        .pad_h = 1,
                        .pad_w = 1};
    CU_ASSERT_FATAL(veil_conv_geom_finish(&s));
    const uint32_t ho = s.h_out, wo = s.w_out;
    CU_ASSERT_EQUAL(ho, 3); /* (5 + 2 - 3) / 2 + 1 */
    CU_ASSERT_EQUAL(wo, 5); /* (4 + 2 - 2) / 1 + 1 */
    const size_t batch = 2, per_in = 2 * 5 * 4, per_out = 3 * (size_t)ho * wo, nw = 3 * 2 * 3 * 2;
    uint64_t *in = alloc_cts(batch * per_in), *out = alloc_cts(batch * per_out),
             *ref = alloc_cts(batch * per_out);
    int64_t m[2 * 40], w[36], bias_m[3], want[2 * 45];
    uint64_t bias[3];
    for (size_t i = 0; i < batch * per_in; i++) {
        m[i] = rand_in(-8, 7);
        veil_encrypt_big(ENC, SK, veil_encode(m[i], bits), in + i * LWE);
    }
    for (size_t i = 0; i < nw; i++)
        w[i] = rand_in(-3, 3);
    for (size_t o = 0; o < 3; o++) {
        bias_m[o] = rand_in(-20, 20);
        bias[o] = veil_encode(bias_m[o], bits);
    }
    for (size_t b = 0; b < batch; b++)
        for (uint32_t co = 0; co < 3; co++)
            for (uint32_t oy = 0; oy < ho; oy++)
                for (uint32_t ox = 0; ox < wo; ox++) {
                    size_t oi = b * per_out + (co * ho + oy) * wo + ox;
                    uint64_t *y = ref + oi * LWE;
                    want[oi] = bias_m[co];
                    for (uint32_t ci = 0; ci < 2; ci++)
                        for (uint32_t ky = 0; ky < 3; ky++)
                            for (uint32_t kx = 0; kx < 2; kx++) {
                                int iy = (int)(oy * 2 + ky) - 1, ix = (int)(ox + kx) - 1;
                                if (iy < 0 || iy >= 5 || ix < 0 || ix >= 4) continue;
                                size_t ii = b * per_in + (ci * 5 + (size_t)iy) * 4 + (size_t)ix;
                                int64_t wv = w[((co * 2 + ci) * 3 + ky) * 2 + kx];
                                ref_axpy(y, in + ii * LWE, wv);
                                want[oi] += wv * m[ii];
                            }
                    y[LWE - 1] += bias[co];
                }
    CU_ASSERT_EQUAL_FATAL(bh_conv2d(KEYS, in, batch, &s, w, bias, out), VEIL_OK);
    CU_ASSERT(memcmp(out, ref, batch * per_out * LWE * sizeof *out) == 0);
    for (size_t i = 0; i < batch * per_out; i++)
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(SK, out + i * LWE), bits, 1), want[i]);
    veil_conv_geom bad = s;
    bad.h_out = 4; /* not what the geometry gives */
    CU_ASSERT_EQUAL(bh_conv2d(KEYS, in, batch, &bad, w, bias, out), VEIL_ERR_ARG);
    CU_ASSERT(strstr(veil_error_message(), "output 4x5, the geometry gives 3x5") != NULL);
    bad = s;
    bad.stride_w = 0;
    CU_ASSERT_EQUAL(bh_conv2d(KEYS, in, batch, &bad, w, bias, out), VEIL_ERR_ARG);
    bad = s;
    bad.kh = 9;
    CU_ASSERT_EQUAL(bh_conv2d(KEYS, in, batch, &bad, w, bias, out), VEIL_ERR_ARG);
    free(in);
    free(out);
    free(ref);
}

/* add, scale and copy on buffers, word for word against plain loops (on
 * random words: the ops are exact integer arithmetic), in place and not, and
 * their argument errors. */
static void test_elementwise(void) {
    const size_t n = 6;
    uint64_t *a = alloc_cts(n), *b = alloc_cts(n), *got = alloc_cts(n), *want = alloc_cts(n);
    for (size_t w = 0; w < n * LWE; w++) {
        a[w] = veil_test_rand();
        b[w] = veil_test_rand();
    }
    veil_backend_buffer *ba, *bb, *bc;
    CU_ASSERT_FATAL(veil_backend_buffer_new(KEYS, n, &ba) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_new(KEYS, n, &bb) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_new(KEYS, 2 * n, &bc) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_buffer_count(bc), 2 * n);
    CU_ASSERT_EQUAL(veil_backend_buffer_upload(ba, a, n), VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_buffer_upload(bb, b, n), VEIL_OK);
    const uint64_t fs[3] = {1, (uint64_t)0 - 1, 0x9e3779b97f4a7c15u};
    size_t cases = 0;
    for (size_t k = 0; k < 3; k++, cases++) {
        const uint64_t f = fs[k], pt = veil_test_rand();
        /* add into a third buffer, count 5 of 6 */
        CU_ASSERT_EQUAL(veil_backend_add(bc, ba, bb, n - 1, f), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_buffer_download(bc, n - 1, got), VEIL_OK);
        for (size_t w = 0; w < (n - 1) * LWE; w++)
            want[w] = a[w] + f * b[w];
        CU_ASSERT(memcmp(got, want, (n - 1) * LWE * 8) == 0);
        /* scale into a third buffer */
        CU_ASSERT_EQUAL(veil_backend_scale(bc, ba, n, f, pt), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_buffer_download(bc, n, got), VEIL_OK);
        for (size_t w = 0; w < n * LWE; w++)
            want[w] = f * a[w] + (w % LWE == LWE - 1 ? pt : 0);
        CU_ASSERT(memcmp(got, want, n * LWE * 8) == 0);
        /* in place: a = a + f * b, then a = f * a + pt */
        CU_ASSERT_EQUAL(veil_backend_add(ba, ba, bb, n, f), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_scale(ba, ba, n, f, pt), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_buffer_download(ba, n, got), VEIL_OK);
        for (size_t w = 0; w < n * LWE; w++) {
            a[w] = f * (a[w] + f * b[w]) + (w % LWE == LWE - 1 ? pt : 0);
        }
        CU_ASSERT(memcmp(got, a, n * LWE * 8) == 0);
    }
    CU_ASSERT_EQUAL(cases, 3);
    /* copy: concat of a (2 per sample) and b (1 per sample), 2 samples,
     * into bc at offset 1 with 3 per sample; then one run */
    uint64_t *zeros = alloc_cts(2 * n), *cat = alloc_cts(2 * n);
    CU_ASSERT_EQUAL(veil_backend_buffer_upload(bc, zeros, 2 * 3 + 1), VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_copy(bc, 1, 3, ba, 0, 2, 2, 2), VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_copy(bc, 3, 3, bb, 0, 1, 1, 2), VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_buffer_download(bc, 7, cat), VEIL_OK);
    const size_t from_a[7] = {99, 0, 1, 99, 2, 3, 99}, from_b[7] = {99, 99, 99, 0, 99, 99, 1};
    for (size_t i = 0; i < 7; i++) {
        const uint64_t *src = from_a[i] != 99   ? a + from_a[i] * LWE
                              : from_b[i] != 99 ? b + from_b[i] * LWE
                                                : zeros;
        CU_ASSERT(memcmp(cat + i * LWE, src, LWE * 8) == 0);
    }
    CU_ASSERT_EQUAL(veil_backend_copy(bc, 0, 0, bb, 0, 0, n, 1), VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_buffer_download(bc, n, cat), VEIL_OK);
    CU_ASSERT(memcmp(cat, b, n * LWE * 8) == 0);
    free(cat);
    free(zeros);
    /* errors: past the end, overlapping runs, same buffer, another keys' buffer */
    CU_ASSERT_EQUAL(veil_backend_add(ba, ba, bb, n + 1, 1), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "add: out holds 6 ciphertexts"));
    CU_ASSERT_EQUAL(veil_backend_scale(bc, ba, n + 1, 1, 0), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_backend_copy(bc, 1, 3, ba, 0, 2, 2, 4), VEIL_ERR_ARG); /* ba: 6 */
    CU_ASSERT_EQUAL(veil_backend_copy(bc, 0, 1, ba, 0, 2, 2, 2), VEIL_ERR_ARG); /* overlap */
    CU_ASSERT_EQUAL(veil_backend_copy(ba, 0, 0, ba, 1, 0, 1, 1), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_backend_buffer_upload(ba, a, n + 1), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_backend_buffer_download(ba, n + 1, got), VEIL_ERR_ARG);
    veil_backend_buffer *zero = NULL;
    CU_ASSERT_EQUAL(veil_backend_buffer_new(KEYS, 0, &zero), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NULL(zero);
    veil_backend_keys *k2;
    veil_backend_buffer *other;
    CU_ASSERT_FATAL(veil_backend_keys_new(BE, EK, 4, &k2) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_new(k2, n, &other) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_add(ba, ba, other, n, 1), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "two different backend keys"));
    veil_backend_buffer_free(other);
    veil_backend_keys_free(k2);
    veil_backend_buffer_free(ba);
    veil_backend_buffer_free(bb);
    veil_backend_buffer_free(bc);
    veil_backend_buffer_free(NULL);
    free(a);
    free(b);
    free(got);
    free(want);
}

/* The random-program generator test_gpu_ops runs cuda against cpu, here cpu
 * (1 thread) against cpu (3 threads): bit-identical buffers. */
static void test_random_programs(void) {
    veil_backend_options o;
    veil_backend_options_default(&o);
    veil_backend *be[2];
    veil_backend_keys *k[2];
    for (int i = 0; i < 2; i++) {
        o.threads = i ? 3 : 1;
        CU_ASSERT_FATAL(veil_backend_new_opts(VEIL_BACKEND_CPU, &o, &be[i]) == VEIL_OK);
        CU_ASSERT_FATAL(veil_backend_keys_new(be[i], EK, 8, &k[i]) == VEIL_OK);
    }
    ro_run(k[0], k[1], 4, 25, 64);
    for (int i = 0; i < 2; i++) {
        veil_backend_keys_free(k[i]);
        veil_backend_free(be[i]);
    }
}

/* One lookup on 3 threads (its keyswitch split over them, rows up to its
 * mask's end, veil_lwe_mask_end): masks 0 past 0, 1, 2 words (fewer rows
 * than threads), half and all of the key give veil_ks_pbs's words. */
static void test_ks_pbs_one_narrow(void) {
    veil_backend_options o;
    veil_backend_options_default(&o);
    o.threads = 3;
    veil_backend *be;
    veil_backend_keys *k;
    CU_ASSERT_FATAL(veil_backend_new_opts(VEIL_BACKEND_CPU, &o, &be) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_keys_new(be, EK, 1, &k) == VEIL_OK);
    const unsigned p = P->precision;
    veil_lut *luts[2];
    int64_t tab_u[64], tab_s[64];
    make_luts(luts, tab_u, tab_s, p);
    const veil_lut *const lp[2] = {luts[0], luts[1]};
    uint64_t *in = alloc_cts(1), *out = alloc_cts(1), *ref = alloc_cts(1);
    veil_pbs_ctx *ctx;
    CU_ASSERT_FATAL(veil_pbs_ctx_new(P, &ctx) == VEIL_OK);
    const size_t widths[5] = {0, 1, 2, (LWE - 1) / 2, LWE - 1};
    for (size_t w = 0; w < 5; w++) {
        veil_encrypt_big(ENC, SK, veil_encode((int64_t)w, p), in);
        memset(in + widths[w], 0, (LWE - 1 - widths[w]) * sizeof *in);
        veil_ks_pbs(ctx, veil_eval_key_part(EK, 0), luts[0], in, ref);
        CU_ASSERT_EQUAL(bh_ks_pbs(k, 0, in, 1, lp, 1, NULL, out), VEIL_OK);
        CU_ASSERT(memcmp(out, ref, LWE * sizeof *out) == 0);
    }
    veil_pbs_ctx_free(ctx);
    free(in);
    free(out);
    free(ref);
    for (int i = 0; i < 2; i++)
        veil_lut_free(luts[i]);
    veil_backend_keys_free(k);
    veil_backend_free(be);
}

/* KS-PBS of count ciphertexts (table 0) through fresh backend keys of ek
 * into out. */
static veil_status ks_pbs_with(const veil_eval_key *ek, const uint64_t *in, size_t count,
                               const veil_lut *lut, uint64_t *out) {
    veil_backend_keys *k = NULL;
    veil_status st = veil_backend_keys_new(BE, ek, count, &k);
    const veil_lut *const lp[1] = {lut};
    if (st == VEIL_OK) st = bh_ks_pbs(k, 0, in, count, lp, 1, NULL, out);
    veil_backend_keys_free(k);
    return st;
}

/* Keys prepared for one use: the cpu's (VEIL_KEY_FOURIER: the standard BSK
 * freed), made so or loaded so, give the ciphertexts of a key kept in both
 * domains bit for bit; a standard-domain key (VEIL_KEY_STANDARD: what
 * saving and the CUDA upload read) is refused by the cpu, naming what it
 * lacks, until prepared for it; a cpu-only key cannot be saved or prepared
 * back to the standard domain, and says why. */
static void test_key_domains(void) {
    uint8_t s[3][32];
    for (unsigned i = 0; i < 3; i++)
        veil_test_seed_bytes(10 + i, s[i]); /* suite_init's: the same keys as EK */
    const size_t count = 5;
    veil_lut *luts[2];
    int64_t tab_u[64], tab_s[64];
    make_luts(luts, tab_u, tab_s, P->precision);
    uint64_t *in = alloc_cts(count), *ref = alloc_cts(count), *out = alloc_cts(count);
    for (size_t i = 0; i < count; i++)
        veil_encrypt_big(ENC, SK, veil_encode((int64_t)i, P->precision), in + i * LWE);
    CU_ASSERT_EQUAL_FATAL(ks_pbs_with(EK, in, count, luts[0], ref), VEIL_OK);

    veil_eval_key *f = NULL, *st = NULL, *loaded = NULL;
    CU_ASSERT_FATAL(veil_eval_key_new_rows(SK, NULL, VEIL_KEY_FOURIER, s[1], s[2], &f) == VEIL_OK);
    CU_ASSERT(f->parts[0].bsk == NULL && f->parts[0].bsk_fourier != NULL);
    CU_ASSERT_EQUAL(ks_pbs_with(f, in, count, luts[0], out), VEIL_OK);
    CU_ASSERT(memcmp(out, ref, count * LWE * sizeof *out) == 0);
    CU_ASSERT_EQUAL(veil_eval_key_prepare(f, VEIL_KEY_FOURIER), VEIL_OK); /* again: nothing to do */
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(veil_eval_key_serialize(f, &buf, &len), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "saving an evaluation key: partition 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "prepared for the cpu only"));
    CU_ASSERT_EQUAL(veil_eval_key_prepare(f, VEIL_KEY_STANDARD), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "partition 0"));
    CU_ASSERT_EQUAL(veil_eval_key_prepare(f, VEIL_KEY_BOTH), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_eval_key_prepare(f, (veil_key_domains)7), VEIL_ERR_ARG);
    veil_eval_key *none = NULL;
    CU_ASSERT_EQUAL(veil_eval_key_new_rows(SK, NULL, (veil_key_domains)7, s[1], s[2], &none),
                    VEIL_ERR_ARG);
    CU_ASSERT_PTR_NULL(none);

    CU_ASSERT_FATAL(veil_eval_key_new_rows(SK, NULL, VEIL_KEY_STANDARD, s[1], s[2], &st) ==
                    VEIL_OK);
    CU_ASSERT(st->parts[0].bsk != NULL && st->parts[0].bsk_fourier == NULL);
    CU_ASSERT_EQUAL(ks_pbs_with(st, in, count, luts[0], out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "cpu keys: partition 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "holds no Fourier bootstrapping key"));
    CU_ASSERT_EQUAL(veil_eval_key_check_domains(st, VEIL_KEY_STANDARD, "t"), VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_check_domains(f, VEIL_KEY_FOURIER, "t"), VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_check_domains(EK, VEIL_KEY_BOTH, "t"), VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_serialize(st, &buf, &len) == VEIL_OK); /* saving reads it */
    CU_ASSERT_EQUAL(veil_eval_key_prepare(st, VEIL_KEY_FOURIER), VEIL_OK);
    CU_ASSERT(st->parts[0].bsk == NULL);
    CU_ASSERT_EQUAL(ks_pbs_with(st, in, count, luts[0], out), VEIL_OK);
    CU_ASSERT(memcmp(out, ref, count * LWE * sizeof *out) == 0);

    /* the file, loaded for the cpu as veil-server does */
    CU_ASSERT_FATAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_FOURIER, &loaded) == VEIL_OK);
    CU_ASSERT(loaded->parts[0].bsk == NULL);
    CU_ASSERT_EQUAL(ks_pbs_with(loaded, in, count, luts[0], out), VEIL_OK);
    CU_ASSERT(memcmp(out, ref, count * LWE * sizeof *out) == 0);
    CU_ASSERT_EQUAL(veil_backend_key_domains(BE), VEIL_KEY_FOURIER);

    veil_serial_buffer_free(buf, len);
    veil_eval_key_free(f);
    veil_eval_key_free(st);
    veil_eval_key_free(loaded);
    free(in);
    free(ref);
    free(out);
    for (int i = 0; i < 2; i++)
        veil_lut_free(luts[i]);
}

/* The helpers' overrun check: an op's output buffer holds one sentinel
 * ciphertext past its outputs; bh_finish refuses when it changed (here
 * written over by hand, as an op writing one ciphertext too many would) and
 * returns the outputs when it did not. */
static void test_helper_sentinel(void) {
    const size_t n = 3;
    uint64_t *in = alloc_cts(n), *out = alloc_cts(n + 1);
    for (size_t i = 0; i < n * LWE; i++)
        in[i] = veil_test_rand();
    veil_backend_buffer *bi, *bo;
    CU_ASSERT_FATAL(bh_buffers(KEYS, in, n, n, &bi, &bo) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_upload(bo, in, n) == VEIL_OK); /* within the outputs */
    CU_ASSERT_EQUAL(bh_finish(VEIL_OK, bi, bo, n, out), VEIL_OK);
    CU_ASSERT(memcmp(out, in, n * LWE * sizeof *in) == 0);
    CU_ASSERT_FATAL(bh_buffers(KEYS, in, n, n - 1, &bi, &bo) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_buffer_upload(bo, in, n) == VEIL_OK); /* one past them */
    CU_ASSERT_EQUAL(bh_finish(VEIL_OK, bi, bo, n - 1, out), VEIL_ERR_FORMAT);
    free(in);
    free(out);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("backend_cpu", suite_init, suite_clean);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_kind_parse);
    VEIL_ADD_TEST(s, test_backend_select);
    VEIL_ADD_TEST(s, test_options_env);
    VEIL_ADD_TEST(s, test_supports_op);
    VEIL_ADD_TEST(s, test_ks_pbs);
    VEIL_ADD_TEST(s, test_linear);
    VEIL_ADD_TEST(s, test_conv2d);
    VEIL_ADD_TEST(s, test_elementwise);
    VEIL_ADD_TEST(s, test_random_programs);
    VEIL_ADD_TEST(s, test_ks_pbs_one_narrow);
    VEIL_ADD_TEST(s, test_key_domains);
    VEIL_ADD_TEST(s, test_helper_sentinel);
    return veil_test_run();
}
