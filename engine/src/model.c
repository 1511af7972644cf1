/* model.c — veil_model: ownership, validation and the clear forward pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_ops.h"
#include "veil/model.h"

size_t veil_shape_size(const veil_shape *s) {
    size_t n = 1;
    for (uint32_t i = 0; i < s->rank; i++)
        n *= s->dim[i];
    return n;
}

const char *veil_shape_str(const veil_shape *s, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (uint32_t i = 0; i < s->rank && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%u", i ? ", " : "", s->dim[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

static const char *const k_op_names[] = {
    [VEIL_OP_LINEAR] = "linear", [VEIL_OP_CONV2D] = "conv2d", [VEIL_OP_AVGPOOL2D] = "avgpool2d",
    [VEIL_OP_ADD] = "add",       [VEIL_OP_CONCAT] = "concat", [VEIL_OP_FLATTEN] = "flatten",
    [VEIL_OP_LUT] = "lut",
};

const char *veil_op_name(veil_op op) {
    if ((int)op >= VEIL_OP_LINEAR && (int)op <= VEIL_OP_LUT) return k_op_names[op];
    return "?";
}

veil_op veil_op_parse(const char *name) {
    for (int op = VEIL_OP_LINEAR; op <= VEIL_OP_LUT; op++)
        if (strcmp(name, k_op_names[op]) == 0) return (veil_op)op;
    return (veil_op)0;
}

unsigned veil_bits_for_range(int64_t lo, int64_t hi) {
    unsigned b = 1;
    if (lo >= 0) {
        while (b < 64 && (uint64_t)hi >= ((uint64_t)1 << b))
            b++;
        return b;
    }
    /* signed: need -2^(b-1) <= lo and hi <= 2^(b-1) - 1 */
    b = 2;
    while (b < 64 && (lo < -((int64_t)1 << (b - 1)) || hi > ((int64_t)1 << (b - 1)) - 1))
        b++;
    return b;
}

veil_status veil_model_new(veil_model **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_model_new: NULL out");
    veil_model *m = calloc(1, sizeof *m);
    if (!m) return veil_error(VEIL_ERR_NOMEM, "veil_model_new: out of memory");
    m->brevitas_accuracy = NAN;
    m->int_accuracy = NAN;
    *out = m;
    return VEIL_OK;
}

void veil_model_samples_free(veil_model_samples *s, uint32_t n_in, uint32_t n_out) {
    if (s->inputs)
        for (uint32_t i = 0; i < n_in; i++)
            free(s->inputs[i]);
    if (s->outputs)
        for (uint32_t i = 0; i < n_out; i++)
            free(s->outputs[i]);
    if (s->float_outputs)
        for (uint32_t i = 0; i < n_out; i++)
            free(s->float_outputs[i]);
    free(s->inputs);
    free(s->outputs);
    free(s->float_outputs);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

void veil_model_free(veil_model *m) {
    if (!m) return;
    free(m->name);
    free(m->producer);
    free(m->task);
    for (uint32_t i = 0; m->inputs && i < m->n_inputs; i++)
        free(m->inputs[i].name);
    free(m->inputs);
    for (uint32_t i = 0; m->layers && i < m->n_layers; i++) {
        veil_model_layer *l = &m->layers[i];
        free(l->name);
        free(l->source);
        for (uint32_t j = 0; l->inputs && j < l->n_inputs; j++)
            free(l->inputs[j]);
        free(l->inputs);
        free(l->weight);
        free(l->bias);
        free(l->table);
    }
    free(m->layers);
    for (uint32_t i = 0; m->outputs && i < m->n_outputs; i++) {
        free(m->outputs[i].name);
        free(m->outputs[i].source);
        free(m->outputs[i].scale);
        free(m->outputs[i].zero_point);
    }
    free(m->outputs);
    veil_model_samples_free(&m->calibration, m->n_inputs, m->n_outputs);
    veil_model_samples_free(&m->golden, m->n_inputs, m->n_outputs);
    free(m);
}

int veil_model_find(const veil_model *m, const char *name, int *is_input) {
    for (uint32_t i = 0; i < m->n_inputs; i++)
        if (m->inputs[i].name && strcmp(m->inputs[i].name, name) == 0) {
            if (is_input) *is_input = 1;
            return (int)i;
        }
    for (uint32_t i = 0; i < m->n_layers; i++)
        if (m->layers[i].name && strcmp(m->layers[i].name, name) == 0) {
            if (is_input) *is_input = 0;
            return (int)i;
        }
    return -1;
}

const veil_shape *veil_model_tensor_shape(const veil_model *m, const char *name) {
    int is_in = 0;
    int i = veil_model_find(m, name, &is_in);
    if (i < 0) return NULL;
    return is_in ? &m->inputs[i].shape : &m->layers[i].out_shape;
}

size_t veil_model_quantize(const veil_model_input *in, const double *x, size_t count, int64_t *v,
                           size_t *first) {
    const int64_t lo = in->range[0], hi = in->range[1];
    size_t clipped = 0;
    for (size_t i = 0; i < count; i++) {
        /* nearbyint in the default rounding mode = round half to even (torch.round) */
        double q = nearbyint(x[i] / in->scale);
        double t = q; /* v = q_int - zp = round(x/scale) (+ zp - zp), clamped */
        if (!(t >= (double)lo && t <= (double)hi)) {
            if (clipped++ == 0 && first) *first = i;
            t = t > (double)hi ? (double)hi : (double)lo; /* NaN goes to lo */
        }
        v[i] = (int64_t)t;
    }
    return clipped;
}

void veil_model_dequantize(const veil_model_output *out, const int64_t *y, size_t count,
                           double *x) {
    size_t n = veil_shape_size(&out->shape);
    size_t inner = out->n_scale > 1 ? n / out->n_scale : n;
    for (size_t i = 0; i < count; i++) {
        size_t c = out->n_scale > 1 ? (i % n) / inner : 0;
        x[i] = out->scale[c] * ((double)y[i] - out->zero_point[c]);
    }
}

size_t veil_argmax(const int64_t *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* ---- validation ----------------------------------------------------------- */

#define BAD(...) veil_error(VEIL_ERR_FORMAT, __VA_ARGS__)

static int shape_eq(const veil_shape *a, const veil_shape *b) {
    if (a->rank != b->rank) return 0;
    for (uint32_t i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

static veil_status validate_shape(const char *path, const veil_shape *s) {
    if (s->rank > VEIL_MAX_RANK)
        return BAD("%s: rank %u, at most %u", path, s->rank, VEIL_MAX_RANK);
    size_t n = 1;
    for (uint32_t i = 0; i < s->rank; i++) {
        if (s->dim[i] == 0) return BAD("%s: dimension %u is 0", path, i);
        if (n > ((size_t)1 << 32) / s->dim[i]) return BAD("%s: more than 2^32 elements", path);
        n *= s->dim[i];
    }
    return VEIL_OK;
}

static veil_status validate_layer(const veil_model *m, uint32_t li) {
    const veil_model_layer *l = &m->layers[li];
    char buf[96], buf2[96];
    if (!l->name || !*l->name) return BAD("/layers/#%u: layer without a name", li);
    const char *nm = l->name;
    if (!l->op || (int)l->op > VEIL_OP_LUT) return BAD("/layers/%s/op: unknown op", nm);
    for (uint32_t j = 0; j < li; j++)
        if (strcmp(m->layers[j].name, nm) == 0) return BAD("/layers/%s: duplicate layer name", nm);
    for (uint32_t j = 0; j < m->n_inputs; j++)
        if (strcmp(m->inputs[j].name, nm) == 0)
            return BAD("/layers/%s: has the name of an input", nm);
    uint32_t want_in = l->op == VEIL_OP_ADD ? 2 : 1;
    if (l->op == VEIL_OP_CONCAT ? l->n_inputs < 2 || l->n_inputs > 64 : l->n_inputs != want_in)
        return BAD("/layers/%s/inputs: %s takes %s%u operand(s), got %u", nm, veil_op_name(l->op),
                   l->op == VEIL_OP_CONCAT ? "2.." : "", l->op == VEIL_OP_CONCAT ? 64 : want_in,
                   l->n_inputs);
    if (l->range[0] > l->range[1])
        return BAD("/layers/%s/range: [%lld, %lld] is not ordered", nm, (long long)l->range[0],
                   (long long)l->range[1]);
    if (l->calib_range[0] > l->calib_range[1])
        return BAD("/layers/%s/calib_range: [%lld, %lld] is not ordered", nm,
                   (long long)l->calib_range[0], (long long)l->calib_range[1]);
    const veil_shape *in_shape[64] = {0};
    for (uint32_t j = 0; j < l->n_inputs; j++) {
        int is_in = 0;
        int idx = l->inputs[j] ? veil_model_find(m, l->inputs[j], &is_in) : -1;
        if (idx < 0)
            return BAD("/layers/%s/inputs: operand '%s' is neither an input nor a layer", nm,
                       l->inputs[j] ? l->inputs[j] : "(null)");
        if (!is_in && (uint32_t)idx >= li)
            return BAD("/layers/%s/inputs: operand '%s' comes after this layer", nm, l->inputs[j]);
        in_shape[j] = is_in ? &m->inputs[idx].shape : &m->layers[idx].out_shape;
    }
    char path[160];
    snprintf(path, sizeof path, "/layers/%s/shape", nm);
    VEIL_TRY(validate_shape(path, &l->out_shape));
    const veil_shape *x = in_shape[0], *y = &l->out_shape;
    size_t n_x = veil_shape_size(x), n_y = veil_shape_size(y);

    switch (l->op) {
    case VEIL_OP_LINEAR:
        if (!l->weight) return BAD("/layers/%s/weight: missing", nm);
        if (l->weight_shape.rank != 2)
            return BAD("/layers/%s/weight: expected rank 2, got %u", nm, l->weight_shape.rank);
        if (l->weight_shape.dim[1] != n_x)
            return BAD("/layers/%s/weight: %u input features, but operand '%s' has %zu elements",
                       nm, l->weight_shape.dim[1], l->inputs[0], n_x);
        if (y->rank != 1 || y->dim[0] != l->weight_shape.dim[0])
            return BAD("/layers/%s/shape: %s, expected [%u]", nm,
                       veil_shape_str(y, buf, sizeof buf), l->weight_shape.dim[0]);
        break;
    case VEIL_OP_CONV2D:
    case VEIL_OP_AVGPOOL2D: {
        if (x->rank != 3)
            return BAD("/layers/%s/inputs: operand '%s' has shape %s, expected rank 3 (CHW)", nm,
                       l->inputs[0], veil_shape_str(x, buf, sizeof buf));
        uint32_t kh = l->kernel[0], kw = l->kernel[1], c_out = x->dim[0];
        if (l->op == VEIL_OP_CONV2D) {
            if (!l->weight) return BAD("/layers/%s/weight: missing", nm);
            if (l->weight_shape.rank != 4)
                return BAD("/layers/%s/weight: expected rank 4, got %u", nm, l->weight_shape.rank);
            if (l->weight_shape.dim[1] != x->dim[0])
                return BAD("/layers/%s/weight: %u input channels, operand '%s' has %u", nm,
                           l->weight_shape.dim[1], l->inputs[0], x->dim[0]);
            c_out = l->weight_shape.dim[0];
            kh = l->weight_shape.dim[2];
            kw = l->weight_shape.dim[3];
        } else if (l->weight) {
            return BAD("/layers/%s/weight: avgpool2d takes no weight", nm);
        }
        if (kh == 0 || kw == 0) return BAD("/layers/%s/kernel_size: must be > 0", nm);
        if (l->stride[0] == 0 || l->stride[1] == 0)
            return BAD("/layers/%s/stride: must be > 0", nm);
        if (l->padding[0] >= kh || l->padding[1] >= kw)
            return BAD("/layers/%s/padding: [%u, %u] must be smaller than the kernel [%u, %u]", nm,
                       l->padding[0], l->padding[1], kh, kw);
        uint32_t ho = veil_conv_out_dim(x->dim[1], kh, l->stride[0], l->padding[0]);
        uint32_t wo = veil_conv_out_dim(x->dim[2], kw, l->stride[1], l->padding[1]);
        if (!ho || !wo)
            return BAD("/layers/%s: kernel [%u, %u] does not fit input %s", nm, kh, kw,
                       veil_shape_str(x, buf, sizeof buf));
        veil_shape want = {3, {c_out, ho, wo, 0}};
        if (!shape_eq(&want, y))
            return BAD("/layers/%s/shape: %s, expected %s", nm, veil_shape_str(y, buf, sizeof buf),
                       veil_shape_str(&want, buf2, sizeof buf2));
        break;
    }
    case VEIL_OP_ADD:
        if (!shape_eq(in_shape[0], in_shape[1]))
            return BAD("/layers/%s/inputs: operands have shapes %s and %s", nm,
                       veil_shape_str(in_shape[0], buf, sizeof buf),
                       veil_shape_str(in_shape[1], buf2, sizeof buf2));
        if (!shape_eq(x, y))
            return BAD("/layers/%s/shape: %s, expected %s", nm, veil_shape_str(y, buf, sizeof buf),
                       veil_shape_str(x, buf2, sizeof buf2));
        break;
    case VEIL_OP_CONCAT: {
        if (l->axis != 0) return BAD("/layers/%s/axis: %u, only 0 is supported", nm, l->axis);
        veil_shape want = *x;
        want.dim[0] = 0;
        for (uint32_t j = 0; j < l->n_inputs; j++) {
            const veil_shape *b = in_shape[j];
            if (b->rank != x->rank || b->rank == 0)
                return BAD("/layers/%s/inputs: operand '%s' has shape %s, '%s' has %s", nm,
                           l->inputs[j], veil_shape_str(b, buf, sizeof buf), l->inputs[0],
                           veil_shape_str(x, buf2, sizeof buf2));
            for (uint32_t d = 1; d < x->rank; d++)
                if (x->dim[d] != b->dim[d])
                    return BAD("/layers/%s/inputs: operands differ in dimension %u", nm, d);
            want.dim[0] += b->dim[0];
        }
        if (!shape_eq(&want, y))
            return BAD("/layers/%s/shape: %s, expected %s", nm, veil_shape_str(y, buf, sizeof buf),
                       veil_shape_str(&want, buf2, sizeof buf2));
        break;
    }
    case VEIL_OP_FLATTEN:
        if (y->rank != 1 || n_y != n_x)
            return BAD("/layers/%s/shape: %s, expected [%zu]", nm,
                       veil_shape_str(y, buf, sizeof buf), n_x);
        break;
    case VEIL_OP_LUT: {
        if (!shape_eq(x, y))
            return BAD("/layers/%s/shape: %s, expected %s", nm, veil_shape_str(y, buf, sizeof buf),
                       veil_shape_str(x, buf2, sizeof buf2));
        if (l->in_min > l->in_max)
            return BAD("/layers/%s/in_min: %lld is larger than in_max %lld", nm,
                       (long long)l->in_min, (long long)l->in_max);
        if (veil_bits_for_range(l->in_min, l->in_max) > 63)
            return BAD("/layers/%s/in_max: the range is wider than 63 bits", nm);
        uint64_t size = (uint64_t)(l->in_max - l->in_min) + 1;
        if (size > ((uint64_t)1 << 24))
            return BAD("/layers/%s/table: %llu entries per table, at most 2^24", nm,
                       (unsigned long long)size);
        if (!l->table || l->n_tables == 0) return BAD("/layers/%s/table: missing", nm);
        if (l->n_tables > 1 && (x->rank == 0 || x->dim[0] != l->n_tables))
            return BAD("/layers/%s/table: %u per-channel tables, but operand '%s' has shape %s", nm,
                       l->n_tables, l->inputs[0], veil_shape_str(x, buf, sizeof buf));
        for (uint64_t i = 0; i < size * l->n_tables; i++) {
            if (veil_bits_for_range(l->table[i] < 0 ? l->table[i] : 0,
                                    l->table[i] > 0 ? l->table[i] : 0) > 63)
                return BAD("/layers/%s/table: entry %llu is wider than 63 bits", nm,
                           (unsigned long long)i);
        }
        break;
    }
    }
    if (l->bias && l->op != VEIL_OP_LINEAR && l->op != VEIL_OP_CONV2D)
        return BAD("/layers/%s/bias: %s takes no bias", nm, veil_op_name(l->op));
    return VEIL_OK;
}

static veil_status validate_samples(const veil_model *m, const veil_model_samples *s,
                                    const char *group, int need_outputs) {
    if (s->count == 0) return VEIL_OK;
    if (!s->inputs) return BAD("/%s: no input arrays", group);
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        if (!s->inputs[i]) return BAD("/%s/%s: missing", group, m->inputs[i].name);
        const int64_t lo = m->inputs[i].range[0], hi = m->inputs[i].range[1];
        size_t n = s->count * veil_shape_size(&m->inputs[i].shape);
        for (size_t j = 0; j < n; j++)
            if (s->inputs[i][j] < lo || s->inputs[i][j] > hi)
                return BAD("/%s/%s: value %lld of sample %zu is outside the input range "
                           "[%lld, %lld]",
                           group, m->inputs[i].name, (long long)s->inputs[i][j],
                           j / veil_shape_size(&m->inputs[i].shape), (long long)lo, (long long)hi);
    }
    if (need_outputs) {
        if (!s->outputs) return BAD("/%s: no output arrays", group);
        for (uint32_t i = 0; i < m->n_outputs; i++)
            if (!s->outputs[i]) return BAD("/%s/%s: missing", group, m->outputs[i].name);
    }
    return VEIL_OK;
}

veil_status veil_model_validate(const veil_model *m) {
    if (!m) return veil_error(VEIL_ERR_ARG, "veil_model_validate: NULL model");
    if (m->n_inputs == 0) return BAD("/inputs: the model has no input");
    if (m->n_outputs == 0) return BAD("/outputs: the model has no output");
    char path[160];
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const veil_model_input *in = &m->inputs[i];
        if (!in->name || !*in->name) return BAD("/inputs/#%u: input without a name", i);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(m->inputs[j].name, in->name) == 0)
                return BAD("/inputs/%s: duplicate input name", in->name);
        snprintf(path, sizeof path, "/inputs/%s/shape", in->name);
        VEIL_TRY(validate_shape(path, &in->shape));
        if (in->n_bits < 1 || in->n_bits > VEIL_MAX_BITS)
            return BAD("/inputs/%s/n_bits: %u, expected 1..%u", in->name, in->n_bits,
                       VEIL_MAX_BITS);
        if (!(in->scale > 0) || !isfinite(in->scale))
            return BAD("/inputs/%s/scale: %g, expected a finite positive number", in->name,
                       in->scale);
        if (in->range[0] > in->range[1])
            return BAD("/inputs/%s/range: [%lld, %lld] is not ordered", in->name,
                       (long long)in->range[0], (long long)in->range[1]);
        if (veil_bits_for_range(in->range[0], in->range[1]) > VEIL_MAX_BITS)
            return BAD("/inputs/%s/range: [%lld, %lld] is wider than %u bits", in->name,
                       (long long)in->range[0], (long long)in->range[1], VEIL_MAX_BITS);
    }
    for (uint32_t i = 0; i < m->n_layers; i++)
        VEIL_TRY(validate_layer(m, i));
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        const veil_model_output *o = &m->outputs[i];
        if (!o->name || !*o->name) return BAD("/outputs/#%u: output without a name", i);
        const veil_shape *s = o->source ? veil_model_tensor_shape(m, o->source) : NULL;
        if (!s)
            return BAD("/outputs/%s/source: '%s' is not a tensor of the model", o->name,
                       o->source ? o->source : "(null)");
        if (!shape_eq(s, &o->shape)) {
            char b1[96], b2[96];
            return BAD("/outputs/%s/shape: %s, but '%s' has shape %s", o->name,
                       veil_shape_str(&o->shape, b1, sizeof b1), o->source,
                       veil_shape_str(s, b2, sizeof b2));
        }
        if (o->n_scale == 0 || !o->scale || !o->zero_point ||
            (o->n_scale > 1 && (o->shape.rank == 0 || o->shape.dim[0] != o->n_scale)))
            return BAD("/outputs/%s/scale: %u values for shape of dim 0 = %u, expected 1 or dim 0",
                       o->name, o->n_scale, o->shape.rank ? o->shape.dim[0] : 0);
        for (uint32_t c = 0; c < o->n_scale; c++) {
            if (!(o->scale[c] > 0) || !isfinite(o->scale[c]))
                return BAD("/outputs/%s/scale: entry %u (%g) is not a finite positive scale",
                           o->name, c, o->scale[c]);
            if (!isfinite(o->zero_point[c]))
                return BAD("/outputs/%s/zero_point: entry %u (%g) is not finite", o->name, c,
                           o->zero_point[c]);
        }
    }
    VEIL_TRY(validate_samples(m, &m->calibration, "calibration", 0));
    VEIL_TRY(validate_samples(m, &m->golden, "golden/inputs", 1));
    return VEIL_OK;
}

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

void veil_op_conv2d(const int64_t *in, size_t batch, const veil_conv_geom *g, int sum_pool,
                    const int64_t *w, const int64_t *bias, int64_t *out) {
    const size_t n_in = (size_t)g->c_in * g->h_in * g->w_in;
    const size_t n_out = (size_t)g->c_out * g->h_out * g->w_out;
    for (size_t b = 0; b < batch; b++) {
        const int64_t *x = in + b * n_in;
        int64_t *y = out + b * n_out;
        for (uint32_t co = 0; co < g->c_out; co++)
            for (uint32_t oh = 0; oh < g->h_out; oh++)
                for (uint32_t ow = 0; ow < g->w_out; ow++) {
                    uint64_t acc = bias ? (uint64_t)bias[co] : 0;
                    uint32_t ci0 = sum_pool ? co : 0;
                    uint32_t ci1 = sum_pool ? co + 1 : g->c_in;
                    for (uint32_t ci = ci0; ci < ci1; ci++)
                        for (uint32_t ky = 0; ky < g->kh; ky++) {
                            int64_t ih = (int64_t)oh * g->stride_h + ky - g->pad_h;
                            if (ih < 0 || ih >= g->h_in) continue;
                            for (uint32_t kx = 0; kx < g->kw; kx++) {
                                int64_t iw = (int64_t)ow * g->stride_w + kx - g->pad_w;
                                if (iw < 0 || iw >= g->w_in) continue;
                                uint64_t xv =
                                    (uint64_t)x[((size_t)ci * g->h_in + ih) * g->w_in + iw];
                                uint64_t wv =
                                    sum_pool
                                        ? 1
                                        : (uint64_t)
                                              w[(((size_t)co * g->c_in + ci) * g->kh + ky) * g->kw +
                                                kx];
                                acc += wv * xv;
                            }
                        }
                    y[((size_t)co * g->h_out + oh) * g->w_out + ow] = (int64_t)acc;
                }
    }
}

void veil_op_add(const int64_t *a, const int64_t *b, size_t n, int64_t *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = (int64_t)((uint64_t)a[i] + (uint64_t)b[i]);
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
        case VEIL_OP_ADD:
            veil_op_add(x[0], x[1], batch * n_y, y);
            break;
        case VEIL_OP_CONCAT:
            veil_op_concat(x, x_size, l->n_inputs, batch, y);
            break;
        case VEIL_OP_FLATTEN:
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
