/* tests/model_kinds.h — a model with every layer kind, two inputs and two
 * outputs, and random weights (veil_test_rand), built in memory:
 *   a [1,4,4] -> conv2d 3x3 pad 1 (2 channels) -> lut, one table per channel
 *             -> avgpool2d 2x2 (a sum pool) -> flatten [8]
 *   b [8]     -> linear 8x8 -> lut (per tensor)                -> output y2
 *   add(flatten, lut of b) -> concat(add, flatten) [16] -> linear 16x3 -> y1
 * Inputs are 3-bit (0..7); the calibration set holds 16 samples of 0..2.
 * Shared by test_model_kinds (every kind encrypted) and test_plan_group (a
 * random program split across plans). */
#ifndef VEIL_TESTS_MODEL_KINDS_H
#define VEIL_TESTS_MODEL_KINDS_H

#include "testutil.h"
#include "veil/model.h"
#include "veil/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *kinds_dup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static inline veil_model_layer *layer(veil_model *m, uint32_t i, const char *name, veil_op op,
                                      const char *in0, const char *in1, veil_shape out) {
    veil_model_layer *l = &m->layers[i];
    l->name = kinds_dup(name);
    l->op = op;
    l->n_inputs = in1 ? 2 : 1;
    l->inputs = calloc(2, sizeof(char *));
    l->inputs[0] = kinds_dup(in0);
    if (in1) l->inputs[1] = kinds_dup(in1);
    l->out_shape = out;
    l->range[0] = -100000;
    l->range[1] = 100000;
    return l;
}

static inline int64_t small_weight(void) {
    return (int64_t)(veil_test_rand() % 3) - 1;
}

/* A 4-bit ReLU-like requantization per table, over [-KINDS_D, KINDS_D]. */
#define KINDS_D 256
static inline void lut_tables(veil_model_layer *l, uint32_t n_tables) {
    const size_t T = 2 * KINDS_D + 1;
    l->in_min = -KINDS_D;
    l->in_max = KINDS_D;
    l->n_tables = n_tables;
    l->table = malloc(n_tables * T * sizeof *l->table);
    for (uint32_t c = 0; c < n_tables; c++)
        for (size_t t = 0; t < T; t++) {
            int64_t x = (int64_t)t - KINDS_D, y = x > 0 ? (x * (int64_t)(c + 1)) / 3 : 0;
            l->table[c * T + t] = y > 15 ? 15 : y;
        }
}

/* A model named `name` with inputs a (shape a_shape) and b [8], both of
 * `bits` bits (0 .. 2^bits - 1), and no layers yet. */
static inline veil_model *kinds_model_new(const char *name, veil_shape a_shape, unsigned bits) {
    veil_model *m;
    CU_ASSERT_EQUAL_FATAL(veil_model_new(&m), VEIL_OK);
    m->name = kinds_dup(name);
    m->n_inputs = 2;
    m->inputs = calloc(2, sizeof *m->inputs);
    m->inputs[0].name = kinds_dup("a");
    m->inputs[0].shape = a_shape;
    m->inputs[1].name = kinds_dup("b");
    m->inputs[1].shape = (veil_shape){1, {8}};
    for (int i = 0; i < 2; i++) {
        m->inputs[i].scale = 1;
        m->inputs[i].n_bits = bits;
        m->inputs[i].range[0] = 0;
        m->inputs[i].range[1] = ((int64_t)1 << bits) - 1;
    }
    return m;
}

static inline veil_model *make_model(void) {
    veil_model *m = kinds_model_new("kinds", (veil_shape){3, {1, 4, 4}}, 3);
    m->n_layers = 9;
    m->layers = calloc(9, sizeof *m->layers);
    veil_model_layer *l;
    l = layer(m, 0, "0000_conv2d", VEIL_OP_CONV2D, "a", NULL, (veil_shape){3, {2, 4, 4}});
    l->weight_shape = (veil_shape){4, {2, 1, 3, 3}};
    l->weight = malloc(18 * sizeof *l->weight);
    for (int i = 0; i < 18; i++)
        l->weight[i] = small_weight() * 2;
    l->bias = malloc(2 * sizeof *l->bias);
    l->bias[0] = 3;
    l->bias[1] = -2;
    l->kernel[0] = l->kernel[1] = 3;
    l->stride[0] = l->stride[1] = 1;
    l->padding[0] = l->padding[1] = 1;
    l = layer(m, 1, "0001_lut", VEIL_OP_LUT, "0000_conv2d", NULL, (veil_shape){3, {2, 4, 4}});
    lut_tables(l, 2);
    l = layer(m, 2, "0002_avgpool2d", VEIL_OP_AVGPOOL2D, "0001_lut", NULL,
              (veil_shape){3, {2, 2, 2}});
    l->kernel[0] = l->kernel[1] = 2;
    l->stride[0] = l->stride[1] = 2;
    l = layer(m, 3, "0003_flatten", VEIL_OP_FLATTEN, "0002_avgpool2d", NULL, (veil_shape){1, {8}});
    l = layer(m, 4, "0004_linear", VEIL_OP_LINEAR, "b", NULL, (veil_shape){1, {8}});
    l->weight_shape = (veil_shape){2, {8, 8}};
    l->weight = malloc(64 * sizeof *l->weight);
    for (int i = 0; i < 64; i++)
        l->weight[i] = small_weight();
    l = layer(m, 5, "0005_lut", VEIL_OP_LUT, "0004_linear", NULL, (veil_shape){1, {8}});
    lut_tables(l, 1);
    l = layer(m, 6, "0006_add", VEIL_OP_ADD, "0003_flatten", "0005_lut", (veil_shape){1, {8}});
    l = layer(m, 7, "0007_concat", VEIL_OP_CONCAT, "0006_add", "0003_flatten",
              (veil_shape){1, {16}});
    l = layer(m, 8, "0008_linear", VEIL_OP_LINEAR, "0007_concat", NULL, (veil_shape){1, {3}});
    l->weight_shape = (veil_shape){2, {3, 16}};
    l->weight = malloc(48 * sizeof *l->weight);
    for (int i = 0; i < 48; i++)
        l->weight[i] = small_weight();
    m->n_outputs = 2;
    m->outputs = calloc(2, sizeof *m->outputs);
    const char *src[2] = {"0008_linear", "0005_lut"};
    const char *nm[2] = {"y1", "y2"};
    for (int o = 0; o < 2; o++) {
        m->outputs[o].name = kinds_dup(nm[o]);
        m->outputs[o].source = kinds_dup(src[o]);
        m->outputs[o].shape = (veil_shape){1, {o ? 8u : 3u}};
        m->outputs[o].n_scale = 1;
        m->outputs[o].scale = malloc(sizeof(double));
        m->outputs[o].scale[0] = 1;
        m->outputs[o].zero_point = calloc(1, sizeof(double));
    }
    /* calibration: small inputs only (0..2 of 0..7) */
    m->calibration.count = 16;
    m->calibration.inputs = calloc(2, sizeof(int64_t *));
    for (int i = 0; i < 2; i++) {
        m->calibration.inputs[i] = malloc(16 * 16 * sizeof(int64_t));
        for (int j = 0; j < 16 * 16; j++)
            m->calibration.inputs[i][j] = (int64_t)(veil_test_rand() % 3);
    }
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_OK);
    if (veil_model_validate(m) != VEIL_OK) fprintf(stderr, "\n  %s\n", veil_error_message());
    return m;
}

#endif
