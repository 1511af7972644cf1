/* model.c — veil_model: ownership, shapes, tensor lookup and
 * (de)quantization. Validation is model_validate.c; the clear ops and the
 * forward pass are model_ops.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    [VEIL_OP_LINEAR] = "linear",
    [VEIL_OP_CONV2D] = "conv2d",
    [VEIL_OP_AVGPOOL2D] = "avgpool2d",
    [VEIL_OP_ADD] = "add",
    [VEIL_OP_CONCAT] = "concat",
    [VEIL_OP_FLATTEN] = "flatten",
    [VEIL_OP_LUT] = "lut",
    [VEIL_OP_MAXPOOL2D] = "maxpool2d",
    [VEIL_OP_RESHAPE] = "reshape",
    [VEIL_OP_SUB] = "sub",
    [VEIL_OP_MUL] = "mul",
};

const char *veil_op_name(veil_op op) {
    if ((int)op >= VEIL_OP_LINEAR && (int)op <= VEIL_OP_LAST) return k_op_names[op];
    return "?";
}

veil_op veil_op_parse(const char *name) {
    for (int op = VEIL_OP_LINEAR; op <= VEIL_OP_LAST; op++)
        if (strcmp(name, k_op_names[op]) == 0) return (veil_op)op;
    return (veil_op)0;
}

unsigned veil_bits_for_span(int64_t lo, int64_t hi) {
    return veil_bits_for_range(0, (int64_t)((uint64_t)hi - (uint64_t)lo));
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
    m->brevitas_rmse = m->int_rmse = m->brevitas_r2 = m->int_r2 = NAN;
    m->int_vs_brevitas_rmse = m->int_vs_brevitas_max_error = NAN;
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
    free(s->targets);
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
        /* q = rint(x / scale + zp), then v = q - zp: the zero point added
         * before rounding, as Brevitas and Concrete ML's QuantizedArray do
         * (rounding x / scale alone and adding zp differs at ties for an
         * odd zp); nearbyint in the default rounding mode = ties to even,
         * numpy.rint's rule, in float64 like Concrete ML */
        const double zp = (double)in->zero_point;
        double t = nearbyint(x[i] / in->scale + zp) - zp; /* v, clamped below */
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

size_t veil_model_class(const veil_model_output *out, const int64_t *y) {
    const size_t n = veil_shape_size(&out->shape);
    /* one logit (a binary classifier's): class 1 when it is positive */
    if (n == 1) return out->scale[0] * ((double)y[0] - out->zero_point[0]) > 0;
    const size_t inner = out->n_scale > 1 ? n / out->n_scale : n;
    size_t best = 0;
    double top = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t c = out->n_scale > 1 ? i / inner : 0;
        const double x = out->scale[c] * ((double)y[i] - out->zero_point[c]);
        if (i == 0 || x > top) {
            best = i;
            top = x;
        }
    }
    return best;
}
