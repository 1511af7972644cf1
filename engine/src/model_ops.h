/* model_ops.h — clear int64 kernels shared by the model forward pass
 * (model.c), the compiler's calibration (compile.c) and the simulator
 * (simulate.c). Private to engine/src. */
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

/* The geometry of a CONV2D or AVGPOOL2D layer l whose operand has shape x
 * (validated: veil_model_validate). */
veil_conv_geom veil_layer_conv_geom(const veil_model_layer *l, const veil_shape *x);

/* Concatenation of a ([outer][na*inner]) and b ([outer][nb*inner]). */
void veil_op_concat(const int64_t *a, const int64_t *b, size_t batch, size_t outer, size_t na,
                    size_t nb, size_t inner, int64_t *out);

#endif
