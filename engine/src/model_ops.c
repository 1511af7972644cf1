/* model_ops.c — the clear int64 ops of model_ops.h and the model's
 * forward pass (veil_model_forward) that runs them layer by layer. */
#include <stdlib.h>
#include <string.h>

#include "model_ops.h"
#include "veil/model.h"

/* ---- kernels -------------------------------------------------------------- */

void veil_op_dense(const int64_t *in, size_t batch, size_t n_in, const int64_t *w,
                   const int64_t *bias, size_t n_out, int64_t *out) {
    for (size_t b = 0; b < batch; b++) {
        const int64_t *x = in + b * n_in;
        for (size_t o = 0; o < n_out; o++) {
            uint64_t acc = bias ? (uint64_t)bias[o] : 0;
            const int64_t *wr = w + o * n_in;
            for (size_t i = 0; i < n_in; i++)
                acc += (uint64_t)wr[i] * (uint64_t)x[i];
            out[b * n_out + o] = (int64_t)acc;
        }
    }
}

veil_conv_geom veil_layer_conv_geom(const veil_model_layer *l, const veil_shape *x) {
    const int conv = l->op == VEIL_OP_CONV2D;
    veil_conv_geom g = {.c_in = x->dim[0],
                        .h_in = x->dim[1],
                        .w_in = x->dim[2],
                        .c_out = l->out_shape.dim[0],
                        .kh = conv ? l->weight_shape.dim[2] : l->kernel[0],
                        .kw = conv ? l->weight_shape.dim[3] : l->kernel[1],
                        .stride_h = l->stride[0],
                        .stride_w = l->stride[1],
                        .pad_h = l->padding[0],
                        .pad_w = l->padding[1],
                        .h_out = l->out_shape.dim[1],
                        .w_out = l->out_shape.dim[2]};
    return g;
}

/* The outputs o in [0, out) of one dimension whose input position
 * o * stride + k - pad lies in [0, in), window offset k: [*lo, *hi). */
static void conv_span(uint32_t out, uint32_t in, uint32_t stride, uint32_t k, uint32_t pad,
                      size_t *lo, size_t *hi) {
    const int64_t a = (int64_t)pad - (int64_t)k;          /* o * stride >= a */
    const int64_t z = (int64_t)in - 1 + (int64_t)pad - k; /* o * stride <= z */
    int64_t l, h;
    if (!stride) {
        l = 0;
        h = a <= 0 && z >= 0 ? out : 0;
    } else {
        l = a <= 0 ? 0 : (a + stride - 1) / stride;
        h = z < 0 ? 0 : z / stride + 1;
    }
    h = h < (int64_t)out ? h : (int64_t)out;
    *lo = (size_t)(l < h ? l : h);
    *hi = (size_t)h;
}

/* Every output starts at its bias and adds weight times input for each
 * kernel position whose input lies inside (padding reads nothing), in
 * wrapping 64-bit arithmetic: the sum is the same in any order, so the loops
 * run along rows (contiguous for stride 1) instead of per output element. */
void veil_op_conv2d(const int64_t *in, size_t batch, const veil_conv_geom *g, int sum_pool,
                    const int64_t *w, const int64_t *bias, int64_t *out) {
    const size_t n_in = (size_t)g->c_in * g->h_in * g->w_in;
    const size_t plane = (size_t)g->h_out * g->w_out, n_out = (size_t)g->c_out * plane;
    for (size_t b = 0; b < batch; b++) {
        const int64_t *x = in + b * n_in;
        int64_t *y = out + b * n_out;
        for (uint32_t co = 0; co < g->c_out; co++) {
            int64_t *yp = y + (size_t)co * plane;
            const int64_t b0 = bias ? bias[co] : 0;
            for (size_t i = 0; i < plane; i++)
                yp[i] = b0;
            const uint32_t ci0 = sum_pool ? co : 0, ci1 = sum_pool ? co + 1 : g->c_in;
            for (uint32_t ci = ci0; ci < ci1; ci++)
                for (uint32_t ky = 0; ky < g->kh; ky++) {
                    size_t oh0, oh1;
                    conv_span(g->h_out, g->h_in, g->stride_h, ky, g->pad_h, &oh0, &oh1);
                    for (uint32_t kx = 0; kx < g->kw; kx++) {
                        size_t ow0, ow1;
                        conv_span(g->w_out, g->w_in, g->stride_w, kx, g->pad_w, &ow0, &ow1);
                        const uint64_t wv =
                            sum_pool
                                ? 1
                                : (uint64_t)
                                      w[(((size_t)co * g->c_in + ci) * g->kh + ky) * g->kw + kx];
                        for (size_t oh = oh0; oh < oh1; oh++) {
                            const size_t ih = oh * g->stride_h + ky - g->pad_h;
                            const int64_t *xr = x + ((size_t)ci * g->h_in + ih) * g->w_in;
                            int64_t *yr = yp + oh * g->w_out;
                            const size_t st = g->stride_w, c0 = kx - (size_t)g->pad_w;
                            for (size_t ow = ow0; ow < ow1; ow++)
                                yr[ow] =
                                    (int64_t)((uint64_t)yr[ow] + wv * (uint64_t)xr[ow * st + c0]);
                        }
                    }
                }
        }
    }
}

void veil_op_maxpool2d(const int64_t *in, size_t batch, const veil_conv_geom *g, int64_t *out) {
    const size_t n_in = (size_t)g->c_in * g->h_in * g->w_in;
    const size_t n_out = (size_t)g->c_out * g->h_out * g->w_out;
    for (size_t b = 0; b < batch; b++)
        for (uint32_t c = 0; c < g->c_out; c++)
            for (uint32_t oh = 0; oh < g->h_out; oh++)
                for (uint32_t ow = 0; ow < g->w_out; ow++) {
                    const int64_t *x = in + b * n_in + (size_t)c * g->h_in * g->w_in;
                    int64_t m = INT64_MIN; /* padding: -inf, never the maximum */
                    for (uint32_t ky = 0; ky < g->kh; ky++)
                        for (uint32_t kx = 0; kx < g->kw; kx++) {
                            const int64_t ih = (int64_t)oh * g->stride_h + ky - g->pad_h;
                            const int64_t iw = (int64_t)ow * g->stride_w + kx - g->pad_w;
                            if (ih < 0 || ih >= g->h_in || iw < 0 || iw >= g->w_in) continue;
                            const int64_t v = x[(size_t)ih * g->w_in + (size_t)iw];
                            m = v > m ? v : m;
                        }
                    out[b * n_out + ((size_t)c * g->h_out + oh) * g->w_out + ow] = m;
                }
}

void veil_op_add(const int64_t *a, const int64_t *b, size_t n, int64_t *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = (int64_t)((uint64_t)a[i] + (uint64_t)b[i]);
}

void veil_op_sub(const int64_t *a, const int64_t *b, size_t n, int64_t *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = (int64_t)((uint64_t)a[i] - (uint64_t)b[i]);
}

void veil_op_mul(const int64_t *a, const int64_t *b, size_t n, int64_t *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = (int64_t)((uint64_t)a[i] * (uint64_t)b[i]);
}

void veil_op_concat(const int64_t *const *in, const size_t *size, uint32_t n, size_t batch,
                    int64_t *out) {
    size_t off = 0;
    for (size_t b = 0; b < batch; b++)
        for (uint32_t j = 0; j < n; j++) {
            memcpy(out + off, in[j] + b * size[j], size[j] * sizeof *out);
            off += size[j];
        }
}

/* ---- forward pass ---------------------------------------------------------- */

veil_status veil_model_forward(const veil_model *m, const int64_t *const *inputs, size_t batch,
                               int64_t *const *outputs) {
    if (!m || !inputs || !outputs)
        return veil_error(VEIL_ERR_ARG, "veil_model_forward: NULL argument");
    int64_t **val = calloc(m->n_layers ? m->n_layers : 1, sizeof *val);
    if (!val) return veil_error(VEIL_ERR_NOMEM, "veil_model_forward: out of memory");
    veil_status st = VEIL_OK;
    for (uint32_t li = 0; li < m->n_layers && st == VEIL_OK; li++) {
        const veil_model_layer *l = &m->layers[li];
        /* operands (validated: at most 64, concat's bound) */
        const int64_t *x[64] = {0};
        const veil_shape *xs[64] = {0};
        size_t x_size[64] = {0};
        VEIL_ASSERT(l->n_inputs >= 1 && l->n_inputs <= 64);
        for (uint32_t j = 0; j < l->n_inputs; j++) {
            int is_in = 0;
            int idx = veil_model_find(m, l->inputs[j], &is_in);
            VEIL_ASSERT(idx >= 0);
            x[j] = is_in ? inputs[idx] : val[idx];
            xs[j] = is_in ? &m->inputs[idx].shape : &m->layers[idx].out_shape;
            x_size[j] = veil_shape_size(xs[j]);
        }
        size_t n_x = veil_shape_size(xs[0]), n_y = veil_shape_size(&l->out_shape);
        int64_t *y = malloc(batch * n_y * sizeof *y + 1);
        if (!y) {
            st = veil_error(VEIL_ERR_NOMEM, "veil_model_forward: out of memory");
            break;
        }
        val[li] = y;
        switch (l->op) {
        case VEIL_OP_LINEAR:
            veil_op_dense(x[0], batch, n_x, l->weight, l->bias, n_y, y);
            break;
        case VEIL_OP_CONV2D:
        case VEIL_OP_AVGPOOL2D: {
            const veil_conv_geom g = veil_layer_conv_geom(l, xs[0]);
            veil_op_conv2d(x[0], batch, &g, l->op == VEIL_OP_AVGPOOL2D, l->weight, l->bias, y);
            break;
        }
        case VEIL_OP_MAXPOOL2D: {
            const veil_conv_geom g = veil_layer_conv_geom(l, xs[0]);
            veil_op_maxpool2d(x[0], batch, &g, y);
            break;
        }
        case VEIL_OP_ADD:
            veil_op_add(x[0], x[1], batch * n_y, y);
            break;
        case VEIL_OP_SUB:
            veil_op_sub(x[0], x[1], batch * n_y, y);
            break;
        case VEIL_OP_MUL:
            veil_op_mul(x[0], x[1], batch * n_y, y);
            break;
        case VEIL_OP_CONCAT:
            veil_op_concat(x, x_size, l->n_inputs, batch, y);
            break;
        case VEIL_OP_FLATTEN:
        case VEIL_OP_RESHAPE:
            memcpy(y, x[0], batch * n_y * sizeof *y);
            break;
        case VEIL_OP_LUT: {
            size_t size = (size_t)(l->in_max - l->in_min) + 1;
            size_t inner = l->n_tables > 1 ? n_y / l->n_tables : n_y;
            for (size_t i = 0; i < batch * n_y; i++) {
                int64_t v = x[0][i];
                v = v < l->in_min ? l->in_min : v > l->in_max ? l->in_max : v;
                size_t t = l->n_tables > 1 ? (i % n_y) / inner : 0;
                y[i] = l->table[t * size + (size_t)(v - l->in_min)];
            }
            break;
        }
        }
    }
    if (st == VEIL_OK) {
        for (uint32_t o = 0; o < m->n_outputs; o++) {
            int is_in = 0;
            int idx = veil_model_find(m, m->outputs[o].source, &is_in);
            VEIL_ASSERT(idx >= 0);
            const int64_t *src = is_in ? inputs[idx] : val[idx];
            memcpy(outputs[o], src,
                   batch * veil_shape_size(&m->outputs[o].shape) * sizeof(int64_t));
        }
    }
    for (uint32_t li = 0; li < m->n_layers; li++)
        free(val[li]);
    free(val);
    return st;
}
