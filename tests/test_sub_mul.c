// LABELS: model crypto
// LINKS: veil_host veil_loaders
/* sub and mul (a - b and a * b of two tensors of one shape, PyTorch's
 * between two quantized tensors): the model's meaning is the difference
 * and the product (veil_model_forward); compiled, sub is a noiseless
 * negation of b (x * -1) and an ADD, mul two exact lookups, floor(s^2 / 4)
 * of s = a + b and of d = a - b, and their difference (compile.c add_mul).
 * A model built here:
 *   a [2,2,2], signed inputs in [-4, 3]
 *     -> 0000_lut (one table per channel: 3x + 1, x * x)
 *     -> 0001_sub a - 0000_lut                       -> output y
 *     -> 0002_mul a * 0000_lut                       -> output z
 * Checked: the forward pass against a hand count, simulate equal to the
 * forward pass on every input, the encrypted run (cpu backend) equal to
 * simulate, a * a as one lookup of the square (test_square), the report's
 * rows, the validator's and the compiler's
 * refusals, and an exported model (tests/data/sub_mul.h5) read by the C
 * loader, simulate equal to its golden outputs. */
#include "../engine/src/program_internal.h" /* veil_node_eval */
#include "model_encrypted_common.h"
#include "testutil.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SZ 8

static char *dup_str(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static int64_t table(int c, int64_t x) {
    return c ? x * x : 3 * x + 1;
}

/* 512 samples: element e is digit e mod 3 (base 8) of the sample's index,
 * minus 4, so every element takes every value of [-4, 3] */
static int64_t *every_input(size_t *n) {
    *n = 8 * 8 * 8;
    int64_t *a = malloc(*n * SZ * sizeof *a);
    for (size_t s = 0; s < *n; s++)
        for (size_t e = 0; e < SZ; e++)
            a[s * SZ + e] = (int64_t)((s >> (3 * (e % 3))) & 7) - 4;
    return a;
}

static veil_model *make_model(void) {
    veil_model *m;
    CU_ASSERT_EQUAL_FATAL(veil_model_new(&m), VEIL_OK);
    m->name = dup_str("sub_mul");
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->inputs[0].name = dup_str("a");
    m->inputs[0].shape = (veil_shape){3, {2, 2, 2}};
    m->inputs[0].scale = 1;
    m->inputs[0].n_bits = 3;
    m->inputs[0].is_signed = 1;
    m->inputs[0].range[0] = -4;
    m->inputs[0].range[1] = 3;
    m->n_layers = 3;
    m->layers = calloc(3, sizeof *m->layers);
    veil_model_layer *l = &m->layers[0];
    l->name = dup_str("0000_lut");
    l->op = VEIL_OP_LUT;
    l->n_inputs = 1;
    l->inputs = calloc(1, sizeof(char *));
    l->inputs[0] = dup_str("a");
    l->out_shape = m->inputs[0].shape;
    l->range[0] = -11;
    l->range[1] = 16;
    l->in_min = -4;
    l->in_max = 3;
    l->n_tables = 2;
    l->table = malloc(16 * sizeof *l->table);
    for (int c = 0; c < 2; c++)
        for (int64_t x = -4; x <= 3; x++)
            l->table[c * 8 + x + 4] = table(c, x);
    l = &m->layers[1];
    l->name = dup_str("0001_sub");
    l->op = VEIL_OP_SUB;
    l->n_inputs = 2;
    l->inputs = calloc(2, sizeof(char *));
    l->inputs[0] = dup_str("a");
    l->inputs[1] = dup_str("0000_lut");
    l->out_shape = m->inputs[0].shape;
    l->range[0] = -4 - 16;
    l->range[1] = 3 + 11;
    l = &m->layers[2];
    l->name = dup_str("0002_mul");
    l->op = VEIL_OP_MUL;
    l->n_inputs = 2;
    l->inputs = calloc(2, sizeof(char *));
    l->inputs[0] = dup_str("a");
    l->inputs[1] = dup_str("0000_lut");
    l->out_shape = m->inputs[0].shape;
    l->range[0] = -4 * 16;
    l->range[1] = 44;
    m->n_outputs = 2;
    m->outputs = calloc(2, sizeof *m->outputs);
    for (int o = 0; o < 2; o++) {
        m->outputs[o].name = dup_str(o ? "z" : "y");
        m->outputs[o].source = dup_str(o ? "0002_mul" : "0001_sub");
        m->outputs[o].shape = m->inputs[0].shape;
        m->outputs[o].n_scale = 1;
        m->outputs[o].scale = malloc(sizeof(double));
        m->outputs[o].scale[0] = 1;
        m->outputs[o].zero_point = calloc(1, sizeof(double));
    }
    /* calibration: every input, so no value leaves its calibrated range */
    m->calibration.inputs = calloc(1, sizeof(int64_t *));
    m->calibration.inputs[0] = every_input(&m->calibration.count);
    if (veil_model_validate(m) != VEIL_OK) fprintf(stderr, "\n  %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    return m;
}

static void test_forward_by_hand(void) {
    veil_model *m = make_model();
    size_t n;
    int64_t *a = every_input(&n), *y = malloc(n * SZ * sizeof *y), *z = malloc(n * SZ * sizeof *z);
    const int64_t *in[1] = {a};
    int64_t *out[2] = {y, z};
    CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, n, out), VEIL_OK);
    size_t bad = 0;
    for (size_t i = 0; i < n * SZ; i++) {
        const int64_t t = table((int)((i % SZ) / 4), a[i]);
        bad += y[i] != a[i] - t;
        bad += z[i] != a[i] * t;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(a);
    free(y);
    free(z);
    veil_model_free(m);
}

static void test_simulate_equals_forward(void) {
    veil_model *m = make_model();
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    size_t n;
    int64_t *a = every_input(&n), *y = malloc(2 * n * SZ * sizeof *y),
            *f = malloc(2 * n * SZ * sizeof *f);
    const int64_t *in[1] = {a};
    int64_t *out[2] = {y, y + n * SZ}, *fw[2] = {f, f + n * SZ};
    veil_sim_stats ss;
    CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, in, n, out, NULL, &ss), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, n, fw), VEIL_OK);
    CU_ASSERT_EQUAL(ss.range_errors, 0);
    CU_ASSERT_EQUAL(memcmp(y, f, 2 * n * SZ * sizeof *y), 0);
    /* the report: one row per layer; sub no lookup, mul 2 per element */
    int rows = 0;
    for (size_t i = 0; i < p->n_report; i++) {
        const veil_layer_report *r = &p->report[i];
        if (!strcmp(r->layer, "0001_sub")) {
            rows++;
            CU_ASSERT_STRING_EQUAL(r->op, "sub");
            CU_ASSERT_EQUAL(r->lookups, 0);
        }
        if (!strcmp(r->layer, "0002_mul")) {
            rows++;
            CU_ASSERT_STRING_EQUAL(r->op, "mul");
            CU_ASSERT_EQUAL(r->lookups, 2 * SZ);
        }
    }
    CU_ASSERT_EQUAL(rows, 2);
    veil_program_free(p);
    free(a);
    free(y);
    free(f);
    veil_model_free(m);
}

static void test_encrypted_equals_simulate(void) {
    veil_model *m = make_model();
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    const size_t n = VEIL_TEST_SANITIZED ? 1 : 3;
    m->golden.count = n;
    m->golden.inputs = calloc(1, sizeof(int64_t *));
    m->golden.inputs[0] = malloc(n * SZ * sizeof(int64_t));
    for (size_t i = 0; i < n * SZ; i++)
        m->golden.inputs[0][i] = (int64_t)(veil_test_rand() % 8) - 4;
    printf("\n  %s, %llu PBS per sample", p->params->id, (unsigned long long)p->pbs_per_sample);
    enc_result res;
    CU_ASSERT_EQUAL_FATAL(run_encrypted_vs_simulate(m, p, n, n, &res), VEIL_OK);
    CU_ASSERT_EQUAL(res.values, 2 * n * SZ);
    CU_ASSERT_EQUAL(res.equal, 2 * n * SZ);
    veil_program_free(p);
    veil_model_free(m);
}

/* a * a: one lookup of the square, not two */
static void test_square(void) {
    veil_model *m = make_model();
    free(m->layers[2].inputs[1]);
    m->layers[2].inputs[1] = dup_str("a");
    m->layers[2].range[0] = 0;
    m->layers[2].range[1] = 16;
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    size_t n;
    int64_t *a = every_input(&n), *y = malloc(2 * n * SZ * sizeof *y);
    const int64_t *in[1] = {a};
    int64_t *out[2] = {y, y + n * SZ};
    CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, in, n, out, NULL, NULL), VEIL_OK);
    size_t bad = 0;
    for (size_t i = 0; i < n * SZ; i++)
        bad += out[1][i] != a[i] * a[i];
    CU_ASSERT_EQUAL(bad, 0);
    int rows = 0;
    for (size_t i = 0; i < p->n_report; i++)
        if (!strcmp(p->report[i].layer, "0002_mul")) {
            rows++;
            CU_ASSERT_STRING_EQUAL(p->report[i].op, "mul");
            CU_ASSERT_EQUAL(p->report[i].lookups, SZ);
        }
    CU_ASSERT_EQUAL(rows, 1);
    const size_t ne = VEIL_TEST_SANITIZED ? 1 : 2;
    m->golden.count = ne;
    m->golden.inputs = calloc(1, sizeof(int64_t *));
    m->golden.inputs[0] = malloc(ne * SZ * sizeof(int64_t));
    memcpy(m->golden.inputs[0], a + 3 * SZ, ne * SZ * sizeof(int64_t));
    enc_result res;
    CU_ASSERT_EQUAL_FATAL(run_encrypted_vs_simulate(m, p, ne, ne, &res), VEIL_OK);
    CU_ASSERT_EQUAL(res.values, 2 * ne * SZ);
    CU_ASSERT_EQUAL(res.equal, 2 * ne * SZ);
    veil_program_free(p);
    free(a);
    free(y);
    veil_model_free(m);
}

/* A product of a lookup's output calibrated on a narrow set: the operand
 * reads its table's whole range (compile.c operand_range), so the product's
 * own node is exact on every input, whatever calibration saw (reading only
 * the calibrated range, a + b would leave its table). */
static void test_mul_operand_range(void) {
    veil_model *m = make_model();
    for (size_t i = 0; i < m->calibration.count * SZ; i++) /* -1 .. 1 */
        m->calibration.inputs[0][i] = (int64_t)(veil_test_rand() % 3) - 1;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    size_t n;
    int64_t *a = every_input(&n);
    int64_t **val = calloc(p->n_nodes, sizeof *val);
    size_t last = 0, bad = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *nd = &p->nodes[i];
        if (nd->kind == VEIL_NODE_OUTPUT) continue;
        val[i] = malloc(n * nd->size * sizeof(int64_t));
        if (nd->kind == VEIL_NODE_INPUT) {
            memcpy(val[i], a, n * SZ * sizeof *a);
            continue;
        }
        const int64_t *ins[64];
        for (uint32_t j = 0; j < nd->n_in; j++)
            ins[j] = val[nd->in[j]];
        veil_node_eval(p, nd, ins, n, val[i], NULL, NULL);
        if (!strcmp(nd->layer, "0002_mul")) last = i;
    }
    CU_ASSERT_FATAL(last > 0);
    for (size_t e = 0; e < n * SZ; e++)
        bad += val[last][e] != a[e] * table((int)((e % SZ) / 4), a[e]);
    CU_ASSERT_EQUAL(bad, 0);
    for (size_t i = 0; i < p->n_nodes; i++)
        free(val[i]);
    free(val);
    free(a);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_refusals(void) {
    veil_model *m = make_model();
    /* one operand */
    m->layers[1].n_inputs = 1;
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(),
                     "/layers/0001_sub/inputs: sub takes 2 operand(s), got 1") != NULL);
    m->layers[1].n_inputs = 2;
    /* a declared shape other than the operands' */
    m->layers[1].out_shape = (veil_shape){1, {8}};
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(), "/layers/0001_sub/shape: [8], expected [2, 2, 2]") !=
              NULL);
    m->layers[1].out_shape = m->inputs[0].shape;
    m->layers[2].n_inputs = 1;
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(),
                     "/layers/0002_mul/inputs: mul takes 2 operand(s), got 1") != NULL);
    m->layers[2].n_inputs = 2;
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_OK);
    /* a product whose sum needs more than 16 bits, and a square of 16-bit
     * values (too many steps for an exact wide lookup): refused at compile,
     * naming the layer */
    m->inputs[0].n_bits = 16;
    m->inputs[0].range[0] = -32768;
    m->inputs[0].range[1] = 32767;
    free(m->layers[2].inputs[1]);
    m->layers[2].inputs[1] = dup_str("0001_sub");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT(strstr(veil_error_message(), "layer 0002_mul: a product of values in [-32768, 32767] "
                                           "and [") != NULL);
    CU_ASSERT(strstr(veil_error_message(), "past the 16 bits veil compiles") != NULL);
    veil_program_free(p);
    p = NULL;
    free(m->layers[2].inputs[1]);
    m->layers[2].inputs[1] = dup_str("a");
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    /* the square's one lookup on 16 bits: a wide exact lookup of 65534 steps */
    CU_ASSERT(strstr(veil_error_message(), "layer 0002_mul: the table changes value at") != NULL);
    veil_program_free(p);
    veil_model_free(m);
}

/* The layer as the exporter writes it (op "sub", two inputs), read by the
 * C loader: the same forward pass. */
static void test_loader(void) {
    const char *path = veil_test_path("tests/data/sub_mul.h5");
    if (access(path, R_OK) != 0) {
        CU_FAIL("tests/data/sub_mul.h5 missing");
        return;
    }
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(path, &m), VEIL_OK);
    int subs = 0, muls = 0;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        subs += m->layers[i].op == VEIL_OP_SUB;
        muls += m->layers[i].op == VEIL_OP_MUL;
    }
    CU_ASSERT(subs == 1 && muls == 2);
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    /* simulate equals the exporter's golden outputs */
    const size_t n = m->golden.count;
    const size_t no = veil_program_output_size(p, 0);
    int64_t *y = malloc(n * no * sizeof *y);
    int64_t *out[1] = {y};
    CU_ASSERT_EQUAL_FATAL(
        veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, out, NULL, NULL),
        VEIL_OK);
    CU_ASSERT(n > 0 && memcmp(y, m->golden.outputs[0], n * no * sizeof *y) == 0);
    free(y);
    veil_program_free(p);
    veil_model_free(m);
}

int main(void) {
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("sub_mul", NULL, NULL);
    VEIL_ADD_TEST(s, test_forward_by_hand);
    VEIL_ADD_TEST(s, test_simulate_equals_forward);
    VEIL_ADD_TEST(s, test_square);
    VEIL_ADD_TEST(s, test_mul_operand_range);
    VEIL_ADD_TEST(s, test_refusals);
    VEIL_ADD_TEST(s, test_loader);
    VEIL_ADD_TEST(s, test_encrypted_equals_simulate);
    return veil_test_run();
}
