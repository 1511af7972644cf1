/* tests/wide_model.h — the model of the wide-lookup tests (test_wide,
 * test_wide_slow, test_wop_program): x [2] -> (a linear layer x * 1 per
 * element, optional) -> a w-bit lookup with a table per element. */
#ifndef VEIL_TEST_WIDE_MODEL_H
#define VEIL_TEST_WIDE_MODEL_H

#include "testutil.h"
#include "veil/model.h"

#include <stdlib.h>
#include <string.h>

static inline char *dup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

/* x [2] in [0, 2^w) -> (optional linear x*1 + 0 per element) -> lut with 2
 * per-element tables -> y. Tables: random steps (2 to max_steps, or 1 where
 * max_steps is 1) of random sign at random positions. */
static inline veil_model *make_wide_cal(unsigned w, unsigned max_steps, int with_linear,
                                        unsigned cal_div) {
    veil_model *m;
    CU_ASSERT_EQUAL_FATAL(veil_model_new(&m), VEIL_OK);
    m->name = dup("wide");
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    veil_model_input *in = &m->inputs[0];
    in->name = dup("x");
    in->shape = (veil_shape){1, {2}};
    in->scale = 1;
    in->n_bits = w;
    in->range[0] = 0;
    in->range[1] = ((int64_t)1 << w) - 1;
    m->n_layers = with_linear ? 2 : 1;
    m->layers = calloc(m->n_layers, sizeof *m->layers);
    veil_model_layer *l = m->layers;
    const char *src = "x";
    if (with_linear) {
        l->name = dup("0000_linear");
        l->op = VEIL_OP_LINEAR;
        l->n_inputs = 1;
        l->inputs = calloc(1, sizeof(char *));
        l->inputs[0] = dup("x");
        l->out_shape = (veil_shape){1, {2}};
        l->weight_shape = (veil_shape){2, {2, 2}};
        l->weight = calloc(4, sizeof *l->weight);
        l->weight[0] = l->weight[3] = 1;
        l->range[0] = 0;
        l->range[1] = in->range[1];
        src = "0000_linear";
        l++;
    }
    l->name = dup("0001_lut");
    l->op = VEIL_OP_LUT;
    l->n_inputs = 1;
    l->inputs = calloc(1, sizeof(char *));
    l->inputs[0] = dup(src);
    l->out_shape = (veil_shape){1, {2}};
    l->in_min = 0;
    l->in_max = in->range[1];
    l->n_tables = 2;
    const size_t T = (size_t)1 << w;
    l->table = calloc(2 * T, sizeof *l->table);
    for (int c = 0; c < 2; c++) {
        /* two steps or more where max_steps allows: the threshold reads'
         * tests need two in a table (one is a carry chain) */
        unsigned steps = max_steps >= 2 ? 2 + (unsigned)(veil_test_rand() % (max_steps - 1)) : 1;
        int64_t *t = l->table + c * T;
        t[0] = (int64_t)(veil_test_rand() % 5);
        for (unsigned s = 0; s < steps; s++) {
            size_t at = 1 + (size_t)(veil_test_rand() % (T - 1));
            int64_t d = (int64_t)(veil_test_rand() % 7) - 3;
            for (size_t i = at; i < T; i++)
                t[i] += d + (d == 0); /* never a zero step */
        }
    }
    int64_t lo = l->table[0], hi = l->table[0];
    for (size_t i = 0; i < 2 * T; i++) {
        lo = l->table[i] < lo ? l->table[i] : lo;
        hi = l->table[i] > hi ? l->table[i] : hi;
    }
    l->range[0] = lo;
    l->range[1] = hi;
    m->n_outputs = 1;
    m->outputs = calloc(1, sizeof *m->outputs);
    m->outputs[0].name = dup("y");
    m->outputs[0].source = dup("0001_lut");
    m->outputs[0].shape = (veil_shape){1, {2}};
    m->outputs[0].n_scale = 1;
    m->outputs[0].scale = malloc(sizeof(double));
    m->outputs[0].scale[0] = 1;
    m->outputs[0].zero_point = calloc(1, sizeof(double));
    /* calibration: the lower 1 / cal_div of the range only */
    m->calibration.count = 16;
    m->calibration.inputs = calloc(1, sizeof(int64_t *));
    m->calibration.inputs[0] = malloc(16 * 2 * sizeof(int64_t));
    for (int i = 0; i < 32; i++)
        m->calibration.inputs[0][i] = (int64_t)(veil_test_rand() % (T / cal_div));
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_OK);
    return m;
}

/* The same with every table entry a random out_bits-bit value (a step at
 * nearly every input), the lookup's range [0, 2^out_bits - 1]. */
static inline veil_model *make_wide_random(unsigned w, unsigned out_bits, int with_linear,
                                           unsigned cal_div) {
    veil_model *m = make_wide_cal(w, 1, with_linear, cal_div);
    veil_model_layer *l = &m->layers[m->n_layers - 1];
    for (size_t i = 0; i < (size_t)2 << w; i++)
        l->table[i] = (int64_t)(veil_test_rand() % (1u << out_bits));
    l->range[0] = 0;
    l->range[1] = ((int64_t)1 << out_bits) - 1;
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    return m;
}

#endif
