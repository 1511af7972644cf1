/* model_ops.h — clear int64 kernels shared by the model forward pass
 * (model.c), the compiler's calibration (compile.c) and the simulator
 * (simulate.c). Private to engine/src. */
#ifndef VEIL_MODEL_OPS_H
#define VEIL_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "veil/model.h"

/* out[b][o] = bias[o] + sum_i w[o][i] * in[b][i]. Wrapping int64 arithmetic
 * (unsigned), as the ciphertexts compute mod 2^64. */
void veil_op_dense(const int64_t *in, size_t batch, size_t n_in, const int64_t *w,
                   const int64_t *bias, size_t n_out, int64_t *out);

typedef struct veil_conv_geom {
    uint32_t c_in, h_in, w_in, c_out, kh, kw, sh, sw, ph, pw, h_out, w_out;
    int depthwise_ones; /* sum pool: each output channel sums its own input channel */
} veil_conv_geom;

void veil_op_conv2d(const int64_t *in, size_t batch, const veil_conv_geom *g, const int64_t *w,
                    const int64_t *bias, int64_t *out);

/* Output size of a conv/pool dimension; 0 when the window does not fit. */
uint32_t veil_conv_out_dim(uint32_t in, uint32_t k, uint32_t s, uint32_t p);

/* Concatenation of a ([outer][na*inner]) and b ([outer][nb*inner]). */
void veil_op_concat(const int64_t *a, const int64_t *b, size_t batch, size_t outer, size_t na,
                    size_t nb, size_t inner, int64_t *out);

#endif
