// LABELS: unit model
// LINKS: veil_engine
/* Every refusal of veil_model_validate (engine/src/model_validate.c), one
 * row each: the model of every layer kind (model_kinds.h), valid, is broken
 * in one field and must be refused with VEIL_ERR_FORMAT and a message that
 * names the HDF5 path and what is wrong ("Bad input gets a clear error
 * naming what and where"). The fuzzers reach these checks with arbitrary
 * files; this suite pins each message, and fails when a check stops firing
 * (an earlier one swallowing it, or a rule removed). */
#include <math.h>
#include <stdint.h>

#include "model_kinds.h"

/* layers of make_model() */
enum { CONV = 0, LUT_CH = 1, POOL = 2, FLAT = 3, LIN_B = 4, LUT = 5, ADD = 6, CAT = 7, LIN = 8 };

static void rename_str(char **s, const char *to) {
    free(*s);
    *s = kinds_dup(to);
}

/* ---- inputs ---- */
static void no_inputs(veil_model *m) {
    m->n_inputs = 0;
}
static void no_inputs_undo(veil_model *m) {
    m->n_inputs = 2;
}
static void no_outputs(veil_model *m) {
    m->n_outputs = 0;
}
static void no_outputs_undo(veil_model *m) {
    m->n_outputs = 2;
}
static void input_unnamed(veil_model *m) {
    m->inputs[1].name[0] = 0;
}
static void input_dup(veil_model *m) {
    rename_str(&m->inputs[1].name, "a");
}
static void input_rank(veil_model *m) {
    m->inputs[0].shape.rank = VEIL_MAX_RANK + 1;
}
static void input_dim0(veil_model *m) {
    m->inputs[1].shape.dim[0] = 0;
}
static void input_huge(veil_model *m) {
    m->inputs[1].shape = (veil_shape){2, {65536, 65537}};
}
static void input_bits(veil_model *m) {
    m->inputs[0].n_bits = 0;
}
static void input_scale(veil_model *m) {
    m->inputs[0].scale = NAN;
}
static void input_range(veil_model *m) {
    m->inputs[0].range[0] = 7;
    m->inputs[0].range[1] = 0;
}
static void input_wide(veil_model *m) {
    m->inputs[0].range[0] = -((int64_t)1 << 20);
    m->inputs[0].range[1] = (int64_t)1 << 20;
}

/* ---- layers, any kind ---- */
static void layer_unnamed(veil_model *m) {
    m->layers[POOL].name[0] = 0;
}
static void layer_op(veil_model *m) {
    m->layers[LUT].op = (veil_op)99;
}
static void layer_dup(veil_model *m) {
    rename_str(&m->layers[LUT].name, "0004_linear");
}
static void layer_input_name(veil_model *m) {
    rename_str(&m->layers[LUT].name, "b");
}
static void add_one_operand(veil_model *m) {
    free(m->layers[ADD].inputs[1]);
    m->layers[ADD].inputs[1] = NULL;
    m->layers[ADD].n_inputs = 1;
}
static void concat_one_operand(veil_model *m) {
    free(m->layers[CAT].inputs[1]);
    m->layers[CAT].inputs[1] = NULL;
    m->layers[CAT].n_inputs = 1;
}
static void layer_range(veil_model *m) {
    m->layers[LUT].range[0] = 100000;
    m->layers[LUT].range[1] = -100000;
}
static void layer_calib(veil_model *m) {
    m->layers[LUT].calib_range[0] = 5;
    m->layers[LUT].calib_range[1] = -5;
}
static void operand_unknown(veil_model *m) {
    rename_str(&m->layers[LUT].inputs[0], "nope");
}
static void operand_later(veil_model *m) {
    rename_str(&m->layers[LUT].inputs[0], "0006_add");
}
static void layer_dim0(veil_model *m) {
    m->layers[LIN_B].out_shape.dim[0] = 0;
}
static void layer_bias(veil_model *m) {
    m->layers[LUT].bias = calloc(8, sizeof(int64_t));
}

/* ---- linear ---- */
static void lin_no_weight(veil_model *m) {
    free(m->layers[LIN_B].weight);
    m->layers[LIN_B].weight = NULL;
}
static void lin_rank(veil_model *m) {
    m->layers[LIN_B].weight_shape.rank = 1;
}
static void lin_features(veil_model *m) {
    m->layers[LIN_B].weight_shape.dim[1] = 7;
}
static void lin_shape(veil_model *m) {
    m->layers[LIN_B].out_shape.dim[0] = 9;
}

/* ---- conv2d, avgpool2d ---- */
static void conv_no_weight(veil_model *m) {
    free(m->layers[CONV].weight);
    m->layers[CONV].weight = NULL;
}
static void conv_rank(veil_model *m) {
    m->layers[CONV].weight_shape.rank = 3;
}
static void conv_channels(veil_model *m) {
    m->layers[CONV].weight_shape.dim[1] = 2;
}
static void conv_on_vector(veil_model *m) {
    rename_str(&m->layers[CONV].inputs[0], "b");
}
/* a convolution may pad past its kernel (PyTorch does): the layer after it
 * is then the first to disagree, on the shape */
static void conv_padding(veil_model *m) {
    m->layers[CONV].padding[0] = 3;
    m->layers[CONV].out_shape.dim[1] = 8; /* 4 + 2 * 3 - 3 + 1 */
}
static void pool_padding(veil_model *m) {
    m->layers[POOL].padding[0] = 2;
}
static void conv_shape(veil_model *m) {
    m->layers[CONV].out_shape.dim[2] = 5;
}
static void pool_weight(veil_model *m) {
    m->layers[POOL].weight = calloc(4, sizeof(int64_t));
}
static void pool_kernel(veil_model *m) {
    m->layers[POOL].kernel[0] = 0;
}
static void pool_stride(veil_model *m) {
    m->layers[POOL].stride[1] = 0;
}
static void pool_too_big(veil_model *m) {
    m->layers[POOL].kernel[0] = m->layers[POOL].kernel[1] = 5;
}

/* ---- add, concat, flatten ---- */
static void add_shapes(veil_model *m) {
    rename_str(&m->layers[ADD].inputs[1], "a");
}
static void add_shape(veil_model *m) {
    m->layers[ADD].out_shape.dim[0] = 9;
}
static void concat_axis(veil_model *m) {
    m->layers[CAT].axis = 1;
}
static void concat_rank(veil_model *m) {
    rename_str(&m->layers[CAT].inputs[1], "a");
}
static void concat_dims(veil_model *m) {
    rename_str(&m->layers[CAT].inputs[0], "a");
    rename_str(&m->layers[CAT].inputs[1], "0002_avgpool2d");
}
static void concat_shape(veil_model *m) {
    m->layers[CAT].out_shape.dim[0] = 15;
}
static void flatten_shape(veil_model *m) {
    m->layers[FLAT].out_shape.dim[0] = 7;
}

/* ---- lut ---- */
static void lut_shape(veil_model *m) {
    m->layers[LUT].out_shape.dim[0] = 7;
}
static void lut_order(veil_model *m) {
    m->layers[LUT].in_min = 5;
    m->layers[LUT].in_max = -5;
}
static void lut_wide(veil_model *m) {
    m->layers[LUT].in_min = INT64_MIN;
    m->layers[LUT].in_max = INT64_MAX;
}
static void lut_long(veil_model *m) {
    m->layers[LUT].in_min = 0;
    m->layers[LUT].in_max = (int64_t)1 << 24;
}
static void lut_no_table(veil_model *m) {
    free(m->layers[LUT].table);
    m->layers[LUT].table = NULL;
}
static void lut_channels(veil_model *m) {
    m->layers[LUT].n_tables = 2;
}
static void lut_entry(veil_model *m) {
    m->layers[LUT].table[3] = INT64_MIN;
}

/* ---- outputs ---- */
static void output_unnamed(veil_model *m) {
    m->outputs[1].name[0] = 0;
}
static void output_source(veil_model *m) {
    rename_str(&m->outputs[1].source, "nope");
}
static void output_shape(veil_model *m) {
    m->outputs[1].shape.dim[0] = 7;
}
static void output_n_scale(veil_model *m) {
    m->outputs[0].n_scale = 2;
}
static void output_scale(veil_model *m) {
    m->outputs[0].scale[0] = -1;
}
static void output_zero(veil_model *m) {
    m->outputs[0].zero_point[0] = INFINITY;
}

/* ---- samples ---- */
static void calib_value(veil_model *m) {
    m->calibration.inputs[1][5] = 9;
}
static void calib_missing(veil_model *m) {
    free(m->calibration.inputs[0]);
    m->calibration.inputs[0] = NULL;
}
static void golden_inputs(veil_model *m, int with_outputs) {
    m->golden.count = 1;
    m->golden.inputs = calloc(2, sizeof(int64_t *));
    m->golden.inputs[0] = calloc(16, sizeof(int64_t));
    m->golden.inputs[1] = calloc(8, sizeof(int64_t));
    if (with_outputs) m->golden.outputs = calloc(2, sizeof(int64_t *));
}
static void golden_no_outputs(veil_model *m) {
    golden_inputs(m, 0);
}
static void golden_output_missing(veil_model *m) {
    golden_inputs(m, 1);
}

typedef struct bad_case {
    const char *what;
    void (*mutate)(veil_model *);
    void (*undo)(veil_model *); /* before freeing, where the mutation hid owned memory */
    const char *want[2];        /* substrings of the message */
} bad_case;

static const bad_case k_cases[] = {
    {"no input", no_inputs, no_inputs_undo, {"/inputs: the model has no input", NULL}},
    {"no output", no_outputs, no_outputs_undo, {"/outputs: the model has no output", NULL}},
    {"input name", input_unnamed, NULL, {"/inputs/#1: input without a name", NULL}},
    {"input twice", input_dup, NULL, {"/inputs/a: duplicate input name", NULL}},
    {"input rank", input_rank, NULL, {"/inputs/a/shape: rank 5, at most 4", NULL}},
    {"input dim", input_dim0, NULL, {"/inputs/b/shape: dimension 0 is 0", NULL}},
    {"input size", input_huge, NULL, {"/inputs/b/shape: more than 2^32 elements", NULL}},
    {"input bits", input_bits, NULL, {"/inputs/a/n_bits: 0, expected 1..", NULL}},
    {"input scale", input_scale, NULL, {"/inputs/a/scale: ", "expected a finite positive"}},
    {"input range", input_range, NULL, {"/inputs/a/range: [7, 0] is not ordered", NULL}},
    {"input width", input_wide, NULL, {"/inputs/a/range: [-1048576, 1048576] is wider than", NULL}},
    {"layer name", layer_unnamed, NULL, {"/layers/#2: layer without a name", NULL}},
    {"layer op", layer_op, NULL, {"/layers/0005_lut/op: unknown op", NULL}},
    {"layer twice", layer_dup, NULL, {"/layers/0004_linear: duplicate layer name", NULL}},
    {"layer as input", layer_input_name, NULL, {"/layers/b: has the name of an input", NULL}},
    {"add operands",
     add_one_operand,
     NULL,
     {"/layers/0006_add/inputs: add takes 2 operand(s), got 1", NULL}},
    {"concat operands",
     concat_one_operand,
     NULL,
     {"/layers/0007_concat/inputs: concat takes 2..64 operand(s), got 1", NULL}},
    {"layer range",
     layer_range,
     NULL,
     {"/layers/0005_lut/range: [100000, -100000] is not ordered", NULL}},
    {"calib range",
     layer_calib,
     NULL,
     {"/layers/0005_lut/calib_range: [5, -5] is not ordered", NULL}},
    {"unknown operand",
     operand_unknown,
     NULL,
     {"/layers/0005_lut/inputs: operand 'nope' is neither an input nor a layer", NULL}},
    {"later operand",
     operand_later,
     NULL,
     {"/layers/0005_lut/inputs: operand '0006_add' comes after this layer", NULL}},
    {"layer dim", layer_dim0, NULL, {"/layers/0004_linear/shape: dimension 0 is 0", NULL}},
    {"bias on lut", layer_bias, NULL, {"/layers/0005_lut/bias: lut takes no bias", NULL}},
    {"linear weight", lin_no_weight, NULL, {"/layers/0004_linear/weight: missing", NULL}},
    {"linear rank", lin_rank, NULL, {"/layers/0004_linear/weight: expected rank 2, got 1", NULL}},
    {"linear features",
     lin_features,
     NULL,
     {"/layers/0004_linear/weight: 7 input features, but operand 'b' has 8 elements", NULL}},
    {"linear shape", lin_shape, NULL, {"/layers/0004_linear/shape: [9], expected [8]", NULL}},
    {"conv weight", conv_no_weight, NULL, {"/layers/0000_conv2d/weight: missing", NULL}},
    {"conv rank", conv_rank, NULL, {"/layers/0000_conv2d/weight: expected rank 4, got 3", NULL}},
    {"conv channels",
     conv_channels,
     NULL,
     {"/layers/0000_conv2d/weight: 2 input channels, operand 'a' has 1", NULL}},
    {"conv on a vector",
     conv_on_vector,
     NULL,
     {"/layers/0000_conv2d/inputs: operand 'b' has shape [8], expected rank 3 (CHW)", NULL}},
    {"conv padding past the kernel", conv_padding, NULL, {"/layers/0001_lut/shape", NULL}},
    {"pool padding",
     pool_padding,
     NULL,
     {"/layers/0002_avgpool2d/padding: [2, 0] must be smaller than the kernel [2, 2]", NULL}},
    {"conv shape",
     conv_shape,
     NULL,
     {"/layers/0000_conv2d/shape: [2, 4, 5], expected [2, 4, 4]", NULL}},
    {"pool weight",
     pool_weight,
     NULL,
     {"/layers/0002_avgpool2d/weight: avgpool2d takes no weight", NULL}},
    {"pool kernel", pool_kernel, NULL, {"/layers/0002_avgpool2d/kernel_size: must be > 0", NULL}},
    {"pool stride", pool_stride, NULL, {"/layers/0002_avgpool2d/stride: must be > 0", NULL}},
    {"pool too big",
     pool_too_big,
     NULL,
     {"/layers/0002_avgpool2d: kernel [5, 5] does not fit input [2, 4, 4]", NULL}},
    {"add shapes",
     add_shapes,
     NULL,
     {"/layers/0006_add/inputs: operands have shapes [8] and [1, 4, 4]", NULL}},
    {"add shape", add_shape, NULL, {"/layers/0006_add/shape: [9], expected [8]", NULL}},
    {"concat axis", concat_axis, NULL, {"/layers/0007_concat/axis: 1, only 0 is supported", NULL}},
    {"concat ranks",
     concat_rank,
     NULL,
     {"/layers/0007_concat/inputs: operand 'a' has shape [1, 4, 4], '0006_add' has [8]", NULL}},
    {"concat dims",
     concat_dims,
     NULL,
     {"/layers/0007_concat/inputs: operands differ in dimension 1", NULL}},
    {"concat shape", concat_shape, NULL, {"/layers/0007_concat/shape: [15], expected [16]", NULL}},
    {"flatten shape", flatten_shape, NULL, {"/layers/0003_flatten/shape: [7], expected [8]", NULL}},
    {"lut shape", lut_shape, NULL, {"/layers/0005_lut/shape: [7], expected [8]", NULL}},
    {"lut order", lut_order, NULL, {"/layers/0005_lut/in_min: 5 is larger than in_max -5", NULL}},
    {"lut width",
     lut_wide,
     NULL,
     {"/layers/0005_lut/in_max: the range is wider than 63 bits", NULL}},
    {"lut length",
     lut_long,
     NULL,
     {"/layers/0005_lut/table: 16777217 entries per table, at most 2^24", NULL}},
    {"lut table", lut_no_table, NULL, {"/layers/0005_lut/table: missing", NULL}},
    {"lut channels",
     lut_channels,
     NULL,
     {"/layers/0005_lut/table: 2 per-channel tables, but operand '0004_linear' has shape [8]",
      NULL}},
    {"lut entry", lut_entry, NULL, {"/layers/0005_lut/table: entry 3 is wider than 63 bits", NULL}},
    {"output name", output_unnamed, NULL, {"/outputs/#1: output without a name", NULL}},
    {"output source",
     output_source,
     NULL,
     {"/outputs/y2/source: 'nope' is not a tensor of the model", NULL}},
    {"output shape",
     output_shape,
     NULL,
     {"/outputs/y2/shape: [7], but '0005_lut' has shape [8]", NULL}},
    {"output scales",
     output_n_scale,
     NULL,
     {"/outputs/y1/scale: 2 values for shape of dim 0 = 3, expected 1 or dim 0", NULL}},
    {"output scale",
     output_scale,
     NULL,
     {"/outputs/y1/scale: entry 0 (-1) is not a finite positive scale", NULL}},
    {"output zero point",
     output_zero,
     NULL,
     {"/outputs/y1/zero_point: entry 0 (inf) is not finite", NULL}},
    {"calibration value",
     calib_value,
     NULL,
     {"/calibration/b: value 9 of sample 0 is outside the input range [0, 7]", NULL}},
    {"calibration array", calib_missing, NULL, {"/calibration/a: missing", NULL}},
    {"golden outputs", golden_no_outputs, NULL, {"/golden/inputs: no output arrays", NULL}},
    {"golden output", golden_output_missing, NULL, {"/golden/inputs/y1: missing", NULL}},
};

static void test_every_refusal(void) {
    size_t failed = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        const bad_case *c = &k_cases[i];
        veil_model *m = make_model(); /* asserts that it validates */
        c->mutate(m);
        const veil_status st = veil_model_validate(m);
        const char *msg = veil_error_message();
        int ok = st == VEIL_ERR_FORMAT;
        for (int w = 0; w < 2; w++)
            ok = ok && (!c->want[w] || strstr(msg, c->want[w]));
        if (!ok) {
            fprintf(stderr,
                    "\n  %s: status %d, message \"%s\"; want VEIL_ERR_FORMAT and \"%s\"%s%s",
                    c->what, (int)st, msg, c->want[0], c->want[1] ? " and " : "",
                    c->want[1] ? c->want[1] : "");
            failed++;
        }
        if (c->undo) c->undo(m);
        veil_model_free(m);
    }
    CU_ASSERT_EQUAL(failed, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("model_validate", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_every_refusal);
    return veil_test_run();
}
