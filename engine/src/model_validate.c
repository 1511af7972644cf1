/* model_validate.c — veil_model_validate: every check of a model's
 * structure (veil/model.h), each error naming the HDF5 path and what was
 * wrong. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "veil/conv.h"
#include "veil/model.h"

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
    if (!l->op || (int)l->op > VEIL_OP_LAST) return BAD("/layers/%s/op: unknown op", nm);
    for (uint32_t j = 0; j < li; j++)
        if (strcmp(m->layers[j].name, nm) == 0) return BAD("/layers/%s: duplicate layer name", nm);
    for (uint32_t j = 0; j < m->n_inputs; j++)
        if (strcmp(m->inputs[j].name, nm) == 0)
            return BAD("/layers/%s: has the name of an input", nm);
    uint32_t want_in = l->op == VEIL_OP_ADD || l->op == VEIL_OP_SUB || l->op == VEIL_OP_MUL ? 2 : 1;
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
    case VEIL_OP_AVGPOOL2D:
    case VEIL_OP_MAXPOOL2D: {
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
            return BAD("/layers/%s/weight: %s takes no weight", nm, veil_op_name(l->op));
        }
        /* a max pool's padding is ignored (PyTorch's -inf): every window
         * must keep a value of the input, as PyTorch requires */
        if (l->op == VEIL_OP_MAXPOOL2D && (2 * l->padding[0] > kh || 2 * l->padding[1] > kw))
            return BAD("/layers/%s/padding: [%u, %u], a max pool's is at most half its kernel "
                       "[%u, %u]",
                       nm, l->padding[0], l->padding[1], kh, kw);
        if (kh == 0 || kw == 0) return BAD("/layers/%s/kernel_size: must be > 0", nm);
        if (l->stride[0] == 0 || l->stride[1] == 0)
            return BAD("/layers/%s/stride: must be > 0", nm);
        /* a pool's window must keep a value of the input (PyTorch: padding
         * at most half the kernel); a convolution may pad more, its windows
         * past the input then give the bias alone */
        if (l->op != VEIL_OP_CONV2D && (l->padding[0] >= kh || l->padding[1] >= kw))
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
    case VEIL_OP_SUB:
    case VEIL_OP_MUL:
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
    case VEIL_OP_RESHAPE:
        if (n_y != n_x)
            return BAD("/layers/%s/shape: %s has %zu elements, operand '%s' has %zu", nm,
                       veil_shape_str(y, buf, sizeof buf), n_y, l->inputs[0], n_x);
        break;
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
        if ((l->per_channel || l->n_tables > 1) && (x->rank == 0 || x->dim[0] != l->n_tables))
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
