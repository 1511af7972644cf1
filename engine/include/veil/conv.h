/* veil/conv.h — the geometry of a 2-D convolution or sum pool (NCHW, zero
 * padding): the one description shared by the model's forward pass, the
 * compiled program's nodes (veil_node.conv), the backends
 * (veil_backend_conv2d) and the CUDA kernels (veil_cuda_conv2d). Plain C
 * with no dependency, so that .cu files take it by value.
 *
 * Weights are [c_out][c_in][kh][kw]; a sum pool has c_out = c_in and sums
 * each channel's own window (the op decides, not the geometry). Output
 * element (co, oy, ox) reads input rows oy * stride_h + ky - pad_h and
 * columns ox * stride_w + kx - pad_w, skipping those outside the input. */
#ifndef VEIL_CONV_H
#define VEIL_CONV_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_conv_geom {
    uint32_t c_in, h_in, w_in;
    uint32_t c_out, kh, kw;
    uint32_t stride_h, stride_w, pad_h, pad_w;
    uint32_t h_out, w_out; /* veil_conv_geom_finish */
} veil_conv_geom;

/* Output size of one dimension; 0 when the window does not fit the padded
 * input or the stride or kernel is 0. */
static inline uint32_t veil_conv_out_dim(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad) {
    if (stride == 0 || k == 0 || (uint64_t)in + 2u * (uint64_t)pad < k) return 0;
    return (uint32_t)(((uint64_t)in + 2u * (uint64_t)pad - k) / stride + 1);
}

/* Sets h_out and w_out from the other fields when they are 0; returns 1 when
 * the geometry is whole (no zero dimension, the window fits) and h_out, w_out
 * are what the other fields give, else 0. */
static inline int veil_conv_geom_finish(veil_conv_geom *g) {
    const uint32_t ho = veil_conv_out_dim(g->h_in, g->kh, g->stride_h, g->pad_h);
    const uint32_t wo = veil_conv_out_dim(g->w_in, g->kw, g->stride_w, g->pad_w);
    if (!g->h_out && !g->w_out) {
        g->h_out = ho;
        g->w_out = wo;
    }
    return g->c_in && g->h_in && g->w_in && g->c_out && ho && wo && g->h_out == ho &&
           g->w_out == wo;
}

#ifdef __cplusplus
}
#endif
#endif
