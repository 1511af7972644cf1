/* model_ops.h — clear int64 kernels shared by the model forward pass
 * (model_ops.c), the compiler's calibration (compile.c) and the simulator
 * (simulate.c): every op the two interpreters have in common is written
 * here once. Private to engine/src.
 *
 * Why two interpreters remain (veil_model_forward over model layers,
 * veil_node_eval over compiled nodes): the forward pass is the model's
 * meaning, the reference the compiler is checked against (simulate ==
 * forward == the exporter's golden integers, tests/test_compile.c
 * test_unrounded_equals_forward), while a node is the compiled form: a
 * model LUT layer (clamp to [in_min, in_max], table) becomes ROUND nodes
 * and LUT nodes reading an offset, rounded index modulo 2^(in_bits+1)
 * through the padding bit, possibly decomposed into many narrower lookups,
 * with noise sampling. Evaluating the model through its compiled nodes would
 * make that check compare the compiler with itself. The linear ops (dense,
 * conv2d, sum pool, add, concat, flatten) mean the same in both and are
 * shared below; the max pool is the forward pass's alone (compiled, it is
 * lookups and additions). */
#ifndef VEIL_MODEL_OPS_H
#define VEIL_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "veil/conv.h"
#include "veil/model.h"

/* out[b][o] = bias[o] + sum_i w[o][i] * in[b][i]. Wrapping int64 arithmetic
 * (unsigned), as the ciphertexts compute mod 2^64. */
void veil_op_dense(const int64_t *in, size_t batch, size_t n_in, const int64_t *w,
                   const int64_t *bias, size_t n_out, int64_t *out);

/* Convolution (weights w [c_out][c_in][kh][kw]) or, with sum_pool, each
 * output channel the sum of its own input channel's window (w unused). */
void veil_op_conv2d(const int64_t *in, size_t batch, const veil_conv_geom *g, int sum_pool,
                    const int64_t *w, const int64_t *bias, int64_t *out);

/* Each output channel the largest value of its own input channel's window,
 * padded positions ignored (PyTorch pads a max pool with -inf; validated: a
 * window keeps at least one input value). The model's meaning of maxpool2d;
 * the compiled program computes it with lookups (compile.c, add_maxpool). */
void veil_op_maxpool2d(const int64_t *in, size_t batch, const veil_conv_geom *g, int64_t *out);

/* The geometry of a CONV2D, AVGPOOL2D or MAXPOOL2D layer l whose operand has shape x
 * (validated: veil_model_validate). */
veil_conv_geom veil_layer_conv_geom(const veil_model_layer *l, const veil_shape *x);

/* out = a + b elementwise, n values, wrapping mod 2^64. */
void veil_op_add(const int64_t *a, const int64_t *b, size_t n, int64_t *out);
/* out = a - b, mod 2^64 */
void veil_op_sub(const int64_t *a, const int64_t *b, size_t n, int64_t *out);
/* out = a b, mod 2^64 */
void veil_op_mul(const int64_t *a, const int64_t *b, size_t n, int64_t *out);

/* Concatenation along dim 0 of n operands, per sample: operand j has size[j]
 * elements per sample (row-major, so dim 0 is the outermost). */
void veil_op_concat(const int64_t *const *in, const size_t *size, uint32_t n, size_t batch,
                    int64_t *out);

#endif
