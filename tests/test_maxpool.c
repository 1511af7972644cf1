// LABELS: model crypto
// COST: 210
// LINKS: veil_host veil_loaders
/* maxpool2d (PyTorch's MaxPool2d, no padding): the model's meaning is the
 * window maximum (veil_model_forward); compiled, a tree of max(a, b) =
 * b + relu(a - b), one exact lookup per pair (compile.c add_maxpool). A
 * model built here:
 *   a [2,6,6], signed inputs in [-4, 3]
 *     -> 0000_maxpool2d 3x3 stride 2 padding 1 [2,3,3] (ResNet's stem) -> output y1
 *     -> 0001_lut (one table per channel, 8 entries each)
 *     -> 0002_maxpool2d 3x3 stride 1 [2,4,4] (9 values: an odd tree)
 *     -> 0003_maxpool2d 2x3 stride [2,1] [2,2,2] (6 values)          -> output y2
 * Checked: simulate equals the forward pass on every input (worst-case and
 * calibration bounds, the pooled values include ties and negatives), the
 * encrypted run (cpu backend; plain build only) equals simulate, the report names the layers,
 * the validator refuses padding past half the window and the compiler refuses differences wider
 * than 16 bits. A second model has the pool between a convolution and a
 * lookup (test_pool_before_monotone_lookup); a third is a 1-D pool, a
 * reshape of a signal into an image and a 1 x K pool (test_signal_reshape). */
#include "model_encrypted_common.h"
#include "testutil.h"
#include "veil/exec.h"
#include "veil/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static veil_model_layer *layer(veil_model *m, uint32_t i, const char *name, veil_op op,
                               const char *in, veil_shape out) {
    veil_model_layer *l = &m->layers[i];
    l->name = dup_str(name);
    l->op = op;
    l->n_inputs = 1;
    l->inputs = calloc(1, sizeof(char *));
    l->inputs[0] = dup_str(in);
    l->out_shape = out;
    l->range[0] = -100;
    l->range[1] = 100;
    return l;
}

static void pool(veil_model_layer *l, uint32_t kh, uint32_t kw, uint32_t sh, uint32_t sw) {
    l->kernel[0] = kh;
    l->kernel[1] = kw;
    l->stride[0] = sh;
    l->stride[1] = sw;
    l->padding[0] = l->padding[1] = 0;
}

/* lut range: channel 0 x -> 3x + 1 (in [-11, 10]), channel 1 x -> -x (in [-3, 4]) */
static veil_model *make_model(void) {
    veil_model *m;
    CU_ASSERT_EQUAL_FATAL(veil_model_new(&m), VEIL_OK);
    m->name = dup_str("maxpool");
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->inputs[0].name = dup_str("a");
    m->inputs[0].shape = (veil_shape){3, {2, 6, 6}};
    m->inputs[0].scale = 1;
    m->inputs[0].n_bits = 3;
    m->inputs[0].is_signed = 1;
    m->inputs[0].range[0] = -4;
    m->inputs[0].range[1] = 3;
    m->n_layers = 4;
    m->layers = calloc(4, sizeof *m->layers);
    veil_model_layer *l;
    l = layer(m, 0, "0000_maxpool2d", VEIL_OP_MAXPOOL2D, "a", (veil_shape){3, {2, 3, 3}});
    pool(l, 3, 3, 2, 2);
    l->padding[0] = l->padding[1] = 1;
    l = layer(m, 1, "0001_lut", VEIL_OP_LUT, "a", (veil_shape){3, {2, 6, 6}});
    l->in_min = -4;
    l->in_max = 3;
    l->n_tables = 2;
    l->table = malloc(16 * sizeof *l->table);
    for (int x = -4; x <= 3; x++) {
        l->table[x + 4] = 3 * x + 1;
        l->table[8 + x + 4] = -x;
    }
    l = layer(m, 2, "0002_maxpool2d", VEIL_OP_MAXPOOL2D, "0001_lut", (veil_shape){3, {2, 4, 4}});
    pool(l, 3, 3, 1, 1);
    l = layer(m, 3, "0003_maxpool2d", VEIL_OP_MAXPOOL2D, "0002_maxpool2d",
              (veil_shape){3, {2, 2, 2}});
    pool(l, 2, 3, 2, 1);
    m->n_outputs = 2;
    m->outputs = calloc(2, sizeof *m->outputs);
    const char *src[2] = {"0000_maxpool2d", "0003_maxpool2d"};
    const char *nm[2] = {"y1", "y2"};
    const uint32_t sz[2] = {18, 8};
    for (int o = 0; o < 2; o++) {
        m->outputs[o].name = dup_str(nm[o]);
        m->outputs[o].source = dup_str(src[o]);
        m->outputs[o].shape = o ? (veil_shape){3, {2, 2, 2}} : (veil_shape){3, {2, 3, 3}};
        CU_ASSERT_EQUAL(veil_shape_size(&m->outputs[o].shape), sz[o]);
        m->outputs[o].n_scale = 1;
        m->outputs[o].scale = malloc(sizeof(double));
        m->outputs[o].scale[0] = 1;
        m->outputs[o].zero_point = calloc(1, sizeof(double));
    }
    /* calibration: a narrow set (-1..1), so that calibrated ranges would be
     * narrower than what full-range inputs give */
    m->calibration.count = 8;
    m->calibration.inputs = calloc(1, sizeof(int64_t *));
    m->calibration.inputs[0] = malloc(8 * 72 * sizeof(int64_t));
    for (int j = 0; j < 8 * 72; j++)
        m->calibration.inputs[0][j] = (int64_t)(veil_test_rand() % 3) - 1;
    if (veil_model_validate(m) != VEIL_OK) fprintf(stderr, "\n  %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    return m;
}

/* Makes a the model's golden inputs (n samples, a copied), which
 * run_encrypted_vs_simulate runs encrypted and simulated; after compiling
 * (a model with golden inputs and no golden outputs does not validate). */
static void set_golden(veil_model *m, const int64_t *a, size_t n) {
    const size_t sz = veil_shape_size(&m->inputs[0].shape);
    veil_model_samples_free(&m->golden, m->n_inputs, m->n_outputs);
    m->golden.count = n;
    m->golden.inputs = calloc(1, sizeof(int64_t *));
    m->golden.inputs[0] = malloc(n * sz * sizeof(int64_t));
    memcpy(m->golden.inputs[0], a, n * sz * sizeof(int64_t));
}

/* n samples over the whole input range [-4, 3] */
static int64_t *full_range_inputs(size_t n) {
    int64_t *a = malloc(n * 72 * sizeof *a);
    for (size_t i = 0; i < n * 72; i++)
        a[i] = (int64_t)(veil_test_rand() % 8) - 4;
    return a;
}

/* The forward pass checked by hand on one sample: every window's maximum. */
static void test_forward_by_hand(void) {
    veil_model *m = make_model();
    int64_t a[72], y1[18], y2[8];
    for (int i = 0; i < 72; i++)
        a[i] = (int64_t)(veil_test_rand() % 8) - 4;
    const int64_t *in[1] = {a};
    int64_t *out[2] = {y1, y2};
    CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, 1, out), VEIL_OK);
    /* y1: 3x3 windows of a at stride 2 from (-1, -1), the padding ignored */
    for (int c = 0; c < 2; c++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                int64_t mx = -100;
                for (int y = 2 * oy - 1; y <= 2 * oy + 1; y++)
                    for (int x = 2 * ox - 1; x <= 2 * ox + 1; x++) {
                        if (y < 0 || x < 0 || y >= 6 || x >= 6) continue;
                        int64_t v = a[c * 36 + y * 6 + x];
                        mx = v > mx ? v : mx;
                    }
                CU_ASSERT_EQUAL(y1[c * 9 + oy * 3 + ox], mx);
            }
    /* y2: the lut, 3x3 stride 1, then 2x3 stride (2, 1): each y2 value is the
     * maximum of the lut over rows 2oy .. 2oy + 3 and columns ox .. ox + 4 */
    for (int c = 0; c < 2; c++)
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                int64_t mx = -100;
                for (int y = 2 * oy; y <= 2 * oy + 3; y++)
                    for (int x = ox; x <= ox + 4; x++) {
                        int64_t v = a[c * 36 + y * 6 + x];
                        int64_t t = c ? -v : 3 * v + 1;
                        mx = t > mx ? t : mx;
                    }
                CU_ASSERT_EQUAL(y2[c * 4 + oy * 2 + ox], mx);
            }
    veil_model_free(m);
}

/* simulate == forward on full-range inputs, both bounds; the PBS count is
 * (K - 1) per pooled value plus the lut's */
static void test_simulate_equals_forward(void) {
    veil_model *m = make_model();
    const size_t n = 64;
    int64_t *a = full_range_inputs(n);
    int64_t *sim[2] = {malloc(n * 18 * 8), malloc(n * 8 * 8)};
    int64_t *fwd[2] = {malloc(n * 18 * 8), malloc(n * 8 * 8)};
    const int64_t *in[1] = {a};
    CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, n, fwd), VEIL_OK);
    for (int bounds = 0; bounds < 2; bounds++) {
        veil_compile_options o;
        veil_compile_options_default(&o);
        o.bounds = bounds ? VEIL_BOUNDS_WORST_CASE : VEIL_BOUNDS_CALIBRATION;
        veil_program *p = NULL;
        CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
        CU_ASSERT_EQUAL(p->pbs_per_sample, 18 * 8 + 72 + 32 * 8 + 8 * 5);
        veil_sim_stats ss;
        CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, in, n, sim, NULL, &ss), VEIL_OK);
        CU_ASSERT_EQUAL(ss.range_errors, 0);
        size_t eq = 0;
        for (int o2 = 0; o2 < 2; o2++)
            for (size_t i = 0; i < n * (o2 ? 8 : 18); i++)
                eq += sim[o2][i] == fwd[o2][i];
        CU_ASSERT_EQUAL(eq, n * 26);
        veil_program_free(p);
    }
    for (int i = 0; i < 2; i++) {
        free(sim[i]);
        free(fwd[i]);
    }
    free(a);
    veil_model_free(m);
}

/* Not in a sanitizer build (testutil.h VEIL_TEST_SANITIZED; main() leaves it
 * out and says so): its 512 PBS a sample at N = 8192 took 300 of the
 * sanitized test_maxpool's 324 s of CPU (one sample, 2-core AMD EPYC Zen 3),
 * and no C code runs here that the sanitized pass does not run elsewhere. A
 * max pool compiles to LINEAR, ADD and LUT nodes (the executor has no max
 * pool code): this model's compilation, padding and odd trees included,
 * runs there in test_simulate_equals_forward and test_report (the same
 * model and options), the cpu backend running a compiled max pool
 * encrypted in test_pool_before_monotone_lookup, and KS-PBS at N = 8192 in
 * test_crypto_nn and test_crypto_n8192. The plain build (make test) runs it
 * on 2 samples, as before. */
static void test_encrypted_equals_simulate(void) {
    veil_model *m = make_model();
    const size_t n = 2;
    int64_t *a = full_range_inputs(n);
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    set_golden(m, a, n);
    printf("\n  %s, %llu PBS per sample", p->params->id, (unsigned long long)p->pbs_per_sample);
    enc_result r;
    CU_ASSERT_EQUAL_FATAL(run_encrypted_vs_simulate(m, p, n, n, &r), VEIL_OK);
    CU_ASSERT_EQUAL(r.values, n * 26);
    CU_ASSERT_EQUAL(r.equal, n * 26);
    veil_program_free(p);
    free(a);
    veil_model_free(m);
}

/* The report: one line per max pool, op maxpool2d, its PBS and read width
 * (differences of values in [-4, 3]: 4 bits; of the lut's [-11, 10]: 6). */
static void test_report(void) {
    veil_model *m = make_model();
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    veil_program_print_report(p, f);
    fclose(f);
    static const char *const want[3][2] = {
        {"0000_maxpool2d", "144"}, {"0002_maxpool2d", "256"}, {"0003_maxpool2d", "40"}};
    for (int i = 0; i < 3; i++) {
        const char *line = strstr(buf, want[i][0]);
        CU_ASSERT(line && !strncmp(line + 25, "maxpool2d", 9));
        if (!line) continue;
        char name[32], op[16];
        unsigned acc = 0, rd = 0;
        unsigned long long lk = 0;
        CU_ASSERT_EQUAL(sscanf(line, "%31s %15s %u %llu - - %u", name, op, &acc, &lk, &rd), 5);
        CU_ASSERT_EQUAL(lk, strtoull(want[i][1], NULL, 10));
        CU_ASSERT_EQUAL(rd, i ? 6u : 4u);
    }
    free(buf);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_refusals(void) {
    veil_model *m = make_model();
    /* padding: PyTorch pads a max pool with -inf */
    m->layers[0].padding[0] = 2;
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(), "/layers/0000_maxpool2d/padding: [2, 1], a max "
                                           "pool's is at most half its kernel [3, 3]") != NULL);
    m->layers[0].padding[0] = 1;
    /* a weight */
    m->layers[0].weight = calloc(1, sizeof(int64_t));
    m->layers[0].weight_shape = (veil_shape){1, {1}};
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(), "maxpool2d takes no weight") != NULL);
    free(m->layers[0].weight);
    m->layers[0].weight = NULL;
    /* the wrong output shape */
    m->layers[3].out_shape.dim[2] = 3;
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(), "/layers/0003_maxpool2d/shape") != NULL);
    m->layers[3].out_shape.dim[2] = 2;
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_OK);
    /* a window wider than the compiler takes: 9 x 9 on a 10 x 10 input */
    {
        veil_model *w = make_model();
        w->inputs[0].shape = (veil_shape){3, {2, 10, 10}};
        w->layers[0].out_shape = (veil_shape){3, {2, 2, 2}};
        pool(&w->layers[0], 9, 9, 1, 1);
        w->outputs[0].shape = (veil_shape){3, {2, 2, 2}};
        w->layers[1].out_shape = (veil_shape){3, {2, 10, 10}};
        w->layers[2].out_shape = (veil_shape){3, {2, 8, 8}};
        w->layers[3].out_shape = (veil_shape){3, {2, 4, 6}};
        w->outputs[1].shape = (veil_shape){3, {2, 4, 6}};
        w->calibration.count = 0;
        CU_ASSERT_EQUAL_FATAL(veil_model_validate(w), VEIL_OK);
        veil_program *p = NULL;
        veil_compile_options wo;
        veil_compile_options_default(&wo);
        wo.bounds = VEIL_BOUNDS_WORST_CASE;
        CU_ASSERT_EQUAL(veil_program_compile(w, &wo, &p), VEIL_ERR_UNSUPPORTED);
        CU_ASSERT(strstr(veil_error_message(), "layer 0000_maxpool2d") &&
                  strstr(veil_error_message(), "9 x 9 values; veil compiles at most 64"));
        CU_ASSERT_PTR_NULL(p);
        veil_model_free(w);
    }
    /* differences of 17 bits: a table of range [-2^14, 2^14] */
    veil_model_layer *l = &m->layers[1];
    for (int x = -4; x <= 3; x++)
        l->table[x + 4] = x == 3 ? 16384 : x == -4 ? -16384 : 0;
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT(strstr(veil_error_message(), "layer 0002_maxpool2d") &&
              strstr(veil_error_message(), "17 bits"));
    CU_ASSERT_PTR_NULL(p);
    veil_model_free(m);
}

/* conv2d 1x1 (2 channels) -> maxpool2d 2x2 -> lut: PyTorch's
 * F.relu(F.max_pool2d(conv(x), 2)). With non-decreasing tables the lookup
 * runs first on all 32 accumulators and the pool on its narrow results
 * (32 + 8 * 3 PBS); with a table that is not (|x|), the pool runs on the
 * accumulators (8 * 3 + 8). Either way simulate equals the forward pass on
 * every input, and encrypted equals simulate (the reordered one). */
static veil_model *make_conv_pool_lut(int monotone) {
    veil_model *m;
    CU_ASSERT_EQUAL_FATAL(veil_model_new(&m), VEIL_OK);
    m->name = dup_str("conv_pool_lut");
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->inputs[0].name = dup_str("a");
    m->inputs[0].shape = (veil_shape){3, {1, 4, 4}};
    m->inputs[0].scale = 1;
    m->inputs[0].n_bits = 3;
    m->inputs[0].is_signed = 1;
    m->inputs[0].range[0] = -4;
    m->inputs[0].range[1] = 3;
    m->n_layers = 3;
    m->layers = calloc(3, sizeof *m->layers);
    veil_model_layer *l;
    l = layer(m, 0, "0000_conv2d", VEIL_OP_CONV2D, "a", (veil_shape){3, {2, 4, 4}});
    l->weight_shape = (veil_shape){4, {2, 1, 1, 1}};
    l->weight = malloc(2 * sizeof *l->weight);
    l->weight[0] = 3;
    l->weight[1] = -2;
    l->bias = malloc(2 * sizeof *l->bias);
    l->bias[0] = 1;
    l->bias[1] = -1;
    l->kernel[0] = l->kernel[1] = 1;
    l->stride[0] = l->stride[1] = 1;
    l = layer(m, 1, "0001_maxpool2d", VEIL_OP_MAXPOOL2D, "0000_conv2d", (veil_shape){3, {2, 2, 2}});
    pool(l, 2, 2, 2, 2);
    l = layer(m, 2, "0002_lut", VEIL_OP_LUT, "0001_maxpool2d", (veil_shape){3, {2, 2, 2}});
    l->in_min = -12;
    l->in_max = 12;
    l->n_tables = 2;
    l->table = malloc(2 * 25 * sizeof *l->table);
    for (int c = 0; c < 2; c++)
        for (int x = -12; x <= 12; x++) {
            int64_t y = monotone ? (x > 0 ? x / (c + 1) : 0) : (x < 0 ? -x : x) / 2;
            l->table[c * 25 + x + 12] = y > 7 ? 7 : y;
        }
    m->n_outputs = 1;
    m->outputs = calloc(1, sizeof *m->outputs);
    m->outputs[0].name = dup_str("y");
    m->outputs[0].source = dup_str("0002_lut");
    m->outputs[0].shape = (veil_shape){3, {2, 2, 2}};
    m->outputs[0].n_scale = 1;
    m->outputs[0].scale = malloc(sizeof(double));
    m->outputs[0].scale[0] = 1;
    m->outputs[0].zero_point = calloc(1, sizeof(double));
    m->calibration.count = 4;
    m->calibration.inputs = calloc(1, sizeof(int64_t *));
    m->calibration.inputs[0] = malloc(4 * 16 * sizeof(int64_t));
    for (int j = 0; j < 4 * 16; j++)
        m->calibration.inputs[0][j] = (int64_t)(veil_test_rand() % 3) - 1;
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    return m;
}

/* Calibration bounds: inputs like the calibration set's (-1..1; the
 * accumulators' compiled ranges are what it saw); worst case: every input. */
static void test_wide_pool_refused(void) {
    /* the pool on wide accumulators (11-bit differences) read by a lookup
     * that is not non-decreasing: refused, naming the layer and the fix */
    veil_model *m = make_conv_pool_lut(0);
    m->layers[0].weight[0] = 120;
    m->layers[0].weight[1] = -80;
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT(strstr(veil_error_message(), "layer 0001_maxpool2d: a max pool of values in") &&
              strstr(veil_error_message(), "put the quantizer before the pool"));
    CU_ASSERT_PTR_NULL(p);
    /* with a non-decreasing lookup after it, the same pool compiles */
    veil_model_free(m);
    m = make_conv_pool_lut(1);
    m->layers[0].weight[0] = 120;
    m->layers[0].weight[1] = -80;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_OK);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_pool_before_monotone_lookup(void) {
    const size_t n = 256;
    int64_t *a = malloc(n * 16 * sizeof *a), *sim = malloc(n * 8 * 8), *fwd = malloc(n * 8 * 8);
    const int64_t *in[1] = {a};
    for (int monotone = 1; monotone >= 0; monotone--) {
        veil_model *m = make_conv_pool_lut(monotone);
        for (int bounds = 0; bounds < 2; bounds++) {
            for (size_t i = 0; i < n * 16; i++)
                a[i] = bounds ? (int64_t)(veil_test_rand() % 8) - 4
                              : (int64_t)(veil_test_rand() % 3) - 1;
            CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, n, &fwd), VEIL_OK);
            veil_compile_options o;
            veil_compile_options_default(&o);
            o.bounds = bounds ? VEIL_BOUNDS_WORST_CASE : VEIL_BOUNDS_CALIBRATION;
            veil_program *p = NULL;
            CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
            /* the first lookup of the program is the lut's when reordered */
            size_t first_lut = 0;
            while (first_lut < p->n_nodes && p->nodes[first_lut].kind != VEIL_NODE_LUT)
                first_lut++;
            CU_ASSERT_FATAL(first_lut < p->n_nodes);
            CU_ASSERT_STRING_EQUAL(p->nodes[first_lut].layer,
                                   monotone ? "0002_lut" : "0001_maxpool2d");
            CU_ASSERT_EQUAL(p->pbs_per_sample, monotone ? 32 + 8 * 3 : 8 * 3 + 8);
            veil_sim_stats ss;
            int64_t *outs[1] = {sim};
            CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, in, n, outs, NULL, &ss), VEIL_OK);
            size_t eq = 0;
            for (size_t i = 0; i < n * 8; i++)
                eq += sim[i] == fwd[i];
            CU_ASSERT_EQUAL(eq, n * 8);
            CU_ASSERT_EQUAL(ss.range_errors, 0);
            if (monotone && !bounds) {
                /* encrypted, the reordered program, 2 samples */
                set_golden(m, a, 2);
                enc_result r;
                CU_ASSERT_EQUAL_FATAL(run_encrypted_vs_simulate(m, p, 2, 2, &r), VEIL_OK);
                CU_ASSERT_EQUAL(r.values, 16);
                CU_ASSERT_EQUAL(r.equal, 16);
                veil_model_samples_free(&m->golden, m->n_inputs, m->n_outputs);
            }
            veil_program_free(p);
        }
        veil_model_free(m);
    }
    free(a);
    free(sim);
    free(fwd);
}

/* A 1-D max pool as the exporter writes it: a reshape of the signal [2, 8]
 * into the image [2, 1, 8], a 1 x 3 max pool of stride 2 [2, 1, 3]: the
 * forward pass, simulate and a hand count agree; a reshape that changes the
 * element count is refused. */
static void test_signal_reshape(void) {
    veil_model *m = make_model();
    veil_model_layer *l = &m->layers[0];
    m->inputs[0].shape = (veil_shape){2, {2, 8}};
    l->op = VEIL_OP_RESHAPE;
    free(l->name);
    l->name = dup_str("0000_reshape");
    l->out_shape = (veil_shape){3, {2, 1, 8}};
    m->layers[1].op = VEIL_OP_MAXPOOL2D; /* was the lut, reading a */
    free(m->layers[1].name);
    m->layers[1].name = dup_str("0001_maxpool2d");
    free(m->layers[1].inputs[0]);
    m->layers[1].inputs[0] = dup_str("0000_reshape");
    free(m->layers[1].table);
    m->layers[1].table = NULL;
    m->layers[1].out_shape = (veil_shape){3, {2, 1, 3}};
    pool(&m->layers[1], 1, 3, 1, 2);
    m->n_layers = 2; /* the others are freed with the model's count: free them here */
    for (uint32_t i = 2; i < 4; i++) {
        free(m->layers[i].name);
        free(m->layers[i].inputs[0]);
        free(m->layers[i].inputs);
    }
    m->n_outputs = 1;
    free(m->outputs[1].name);
    free(m->outputs[1].source);
    free(m->outputs[1].scale);
    free(m->outputs[1].zero_point);
    free(m->outputs[0].source);
    m->outputs[0].source = dup_str("0001_maxpool2d");
    m->outputs[0].shape = (veil_shape){3, {2, 1, 3}};
    veil_model_samples_free(&m->calibration, 1, 2);
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    const size_t n = 32;
    int64_t a[32 * 16], fwd[32 * 6], sim[32 * 6];
    for (size_t i = 0; i < n * 16; i++)
        a[i] = (int64_t)(veil_test_rand() % 8) - 4;
    const int64_t *in[1] = {a};
    int64_t *of[1] = {fwd}, *os[1] = {sim};
    CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, n, of), VEIL_OK);
    size_t hand = 0;
    for (size_t s = 0; s < n; s++)
        for (int c = 0; c < 2; c++)
            for (int o = 0; o < 3; o++) {
                int64_t mx = -100;
                for (int k = 0; k < 3; k++)
                    mx = a[s * 16 + c * 8 + 2 * o + k] > mx ? a[s * 16 + c * 8 + 2 * o + k] : mx;
                hand += fwd[s * 6 + c * 3 + o] == mx;
            }
    CU_ASSERT_EQUAL(hand, n * 6);
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, in, n, os, NULL, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(memcmp(fwd, sim, sizeof fwd), 0);
    CU_ASSERT_EQUAL(p->pbs_per_sample, 6 * 2);
    veil_program_free(p);
    l->out_shape = (veil_shape){3, {2, 1, 7}};
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(), "/layers/0000_reshape/shape: [2, 1, 7] has 14 elements, "
                                           "operand 'a' has 16") != NULL);
    veil_model_free(m);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("maxpool", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_forward_by_hand);
    VEIL_ADD_TEST(s, test_simulate_equals_forward);
    VEIL_ADD_TEST(s, test_report);
    VEIL_ADD_TEST(s, test_refusals);
    VEIL_ADD_TEST(s, test_pool_before_monotone_lookup);
    VEIL_ADD_TEST(s, test_wide_pool_refused);
    VEIL_ADD_TEST(s, test_signal_reshape);
    if (!VEIL_TEST_SANITIZED)
        VEIL_ADD_TEST(s, test_encrypted_equals_simulate);
    else
        printf("test_encrypted_equals_simulate: plain build only (make test), see its comment\n");
    return veil_test_run();
}
