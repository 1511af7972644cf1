/* veil/model.h — a validated, quantized neural network in memory.
 *
 * A veil_model is what loaders/ makes of a `.h5` file (schema v1, see
 * models/SCHEMA.md) and what the compiler (veil/program.h) reads. Everything in
 * it is integer: weights, biases, lookup tables and the ranges they are
 * indexed by. Floats appear only in the quantization of inputs and outputs
 * (scale, zero point), which the client uses to quantize and dequantize.
 *
 * Tensors are named: every input has a name, every layer produces one tensor
 * named after the layer ("0003_conv2d"), and layers name their operands. The
 * layers are stored in file order, which must be a topological order (an
 * operand is an input or an earlier layer). Shapes are per sample (no batch
 * dimension), row-major; images are CHW.
 *
 * Integer semantics of each op (what the simulator and the encrypted program
 * compute, and what the exporter's golden vectors were computed with):
 *   linear:    y[o] = bias[o] + sum_i weight[o][i] * x[i]    (x flattened)
 *   conv2d:    y[co][h][w] = bias[co] + sum weight[co][ci][kh][kw] *
 *              x[ci][h*sh + kh - ph][w*sw + kw - pw]          (zero padding)
 *   avgpool2d: the integer path is a SUM pool over the window (zero padding);
 *              the 1/(kh*kw) factor is part of the next table, so the layer has
 *              no weight
 *   add:       y = a + b (same shape, same quantization scale)
 *   concat:    y = the operands stacked along `axis` (always 0: channels or
 *              features), in operand order
 *   flatten:   y = x, reshaped to rank 1
 *   lut:       y[i] = table[c][clamp(x[i], in_min, in_max) - in_min] with c
 *              the channel (dim 0) of element i (per-tensor: one table, c = 0)
 *
 * Values are zero-point free (the file holds q - zp, see models/SCHEMA.md), so
 * every op above is exact integer arithmetic. */
#ifndef VEIL_MODEL_H
#define VEIL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VEIL_MAX_RANK 4
/* Most inputs, and most outputs, of a model or a program (--range-check's
 * output included): the loader, the compiler and every command's per-port
 * arrays hold to it. */
#define VEIL_MAX_PORTS 64
/* Widest integer the compiler accepts anywhere (Concrete's TLU limit). */
#define VEIL_MAX_BITS 16

typedef struct veil_shape {
    uint32_t rank;
    uint32_t dim[VEIL_MAX_RANK];
} veil_shape;

/* Number of elements (1 for rank 0). */
size_t veil_shape_size(const veil_shape *s);
/* "[1, 8, 8]" into buf. */
const char *veil_shape_str(const veil_shape *s, char *buf, size_t len);

typedef enum veil_op {
    VEIL_OP_LINEAR = 1,
    VEIL_OP_CONV2D,
    VEIL_OP_AVGPOOL2D,
    VEIL_OP_ADD,
    VEIL_OP_CONCAT,
    VEIL_OP_FLATTEN,
    VEIL_OP_LUT,
    VEIL_OP_MAXPOOL2D,
    VEIL_OP_RESHAPE,
    VEIL_OP_SUB,
    VEIL_OP_MUL,
} veil_op;
#define VEIL_OP_LAST VEIL_OP_MUL

/* "linear", "conv2d", ... (the suffix of layer group names). */
const char *veil_op_name(veil_op op);
/* 0 when the name is not an op. */
veil_op veil_op_parse(const char *name);

/* Quantization of one encrypted input (Brevitas's and Concrete ML's rule):
 * q = clamp(round_half_even(x / scale + zero_point), qmin, qmax), in
 * float64, with qmin/qmax from n_bits and signedness; the encrypted value
 * is v = q - zero_point, which lies in range = [qmin - zp, qmax - zp]. */
typedef struct veil_model_input {
    char *name;
    veil_shape shape;
    double scale;
    int64_t zero_point;
    uint32_t n_bits;
    int is_signed;
    int64_t range[2];       /* worst-case range of v */
    int64_t calib_range[2]; /* observed over the calibration set */
} veil_model_input;

typedef struct veil_model_layer {
    char *name; /* the group name, e.g. "0003_conv2d"; also its output tensor */
    veil_op op;
    uint32_t n_inputs;
    char **inputs; /* operand tensor names */
    veil_shape out_shape;
    int64_t range[2];       /* worst-case output range, as exported */
    int64_t calib_range[2]; /* observed output range over the calibration set */
    char *source;           /* PyTorch module the layer came from (may be NULL) */

    /* linear: weight [out][in]; conv2d: [c_out][c_in][kh][kw] */
    veil_shape weight_shape;
    int64_t *weight; /* NULL for ops without weights */
    int64_t *bias;   /* out features / c_out values; NULL: no bias */

    /* conv2d, avgpool2d, maxpool2d (no padding) */
    uint32_t kernel[2], stride[2], padding[2];
    /* concat: axis of the per-sample shape */
    uint32_t axis;

    /* lut: n_tables tables of (in_max - in_min + 1) entries each. Per-channel
     * (per_channel, the file's [C, T] table): n_tables = dim 0 of the
     * operand, and element i uses table i / inner with inner the product of
     * the other dimensions. */
    int64_t in_min, in_max;
    uint32_t n_tables;
    int per_channel;
    int64_t *table;
    int covers_worst_case; /* [in_min, in_max] contains the operand's range */
    double out_scale;      /* real value = out_scale * y (informational) */
} veil_model_layer;

/* An output of the network: the integer tensor `source` and how to
 * dequantize it: x[c, ...] = scale[c] * (y[c, ...] - zero_point[c]) with c
 * the channel (dim 0) when n_scale > 1, else 0. */
typedef struct veil_model_output {
    char *name;
    char *source; /* a layer name (or an input name) */
    veil_shape shape;
    uint32_t n_scale;
    double *scale;      /* n_scale values */
    double *zero_point; /* n_scale values */
} veil_model_output;

/* A set of samples for every input, quantized (int64), sample-major:
 * inputs[i] holds count * shape_size(input i) values. */
typedef struct veil_model_samples {
    size_t count;
    int64_t **inputs;       /* one array per model input */
    int64_t **outputs;      /* one array per model output, or NULL (calibration) */
    double **float_outputs; /* Brevitas's float outputs per model output, or NULL */
    int64_t *labels;        /* count class labels, or NULL */
    double *targets;        /* a regressor's targets: count * (values of output 0), or NULL */
} veil_model_samples;

typedef struct veil_model {
    char *name;
    char *producer;
    uint32_t version;
    uint32_t n_inputs;
    veil_model_input *inputs;
    uint32_t n_layers;
    veil_model_layer *layers;
    uint32_t n_outputs;
    veil_model_output *outputs;
    veil_model_samples calibration; /* the inputset; count 0 when absent */
    veil_model_samples golden;      /* inputs with the exporter's integer outputs */
    /* "classification" (argmax of output 0 = label), "regression" (output 0
     * dequantized = the prediction; samples carry targets, not labels) or NULL
     * (a classifier) */
    char *task;
    /* Accuracies on the exporter's held-out test set (NaN when absent):
     * Brevitas's float forward pass and the exported integer path. */
    double brevitas_accuracy;
    double int_accuracy;
    /* A regressor's metrics on that test set (NaN when absent): RMSE and R^2
     * of each against the targets, and the integer path against Brevitas. */
    double brevitas_rmse, int_rmse, brevitas_r2, int_r2;
    double int_vs_brevitas_rmse, int_vs_brevitas_max_error;
    int64_t test_samples;
} veil_model;

/* Frees the arrays of a sample set (for a model of n_inputs / n_outputs) and
 * zeroes it. */
void veil_model_samples_free(veil_model_samples *s, uint32_t n_inputs, uint32_t n_outputs);

/* Allocates an empty model (all counts 0, accuracies NaN). */
veil_status veil_model_new(veil_model **out);
void veil_model_free(veil_model *m);

/* Content validation (the loader calls it; tests and fuzzers may too):
 * operands exist and come earlier, shapes agree between layers, tables have
 * (in_max - in_min + 1) entries per table, ranges are ordered, bit widths are
 * at most 63, every output names a tensor, sample arrays are present. The
 * error names the HDF5 path: "/layers/0003_conv2d/weight: expected rank 4,
 * got 2". */
veil_status veil_model_validate(const veil_model *m);

/* Looks up a tensor by name: *is_input set to 1 for a model input. Returns
 * the input or layer index, or -1. */
int veil_model_find(const veil_model *m, const char *name, int *is_input);
/* The per-sample shape of a tensor (input or layer), NULL if unknown. */
const veil_shape *veil_model_tensor_shape(const veil_model *m, const char *name);

/* Quantizes count floats (any number of whole samples) with an input's
 * scale / zero point to v = q - zp, clipping to its range (NaN goes to the
 * low end). Returns how many values were clipped (NaN included), and the index
 * of the first in *first when first is not NULL and one was. */
size_t veil_model_quantize(const veil_model_input *in, const double *x, size_t count, int64_t *v,
                           size_t *first);
/* Dequantizes count values (whole samples) of an output. */
void veil_model_dequantize(const veil_model_output *out, const int64_t *y, size_t count, double *x);
/* The class of one sample of a classification output: the index of its
 * largest dequantized value (the first on ties), as the exporter's
 * predict() and Brevitas's argmax take it; an output of one value is a
 * binary classifier's logit, class 1 when it is > 0 (predict() again, as a
 * BCE-trained model means it). Not the largest integer: an
 * output with per-class scales or zero points (a final linear's float bias
 * becomes a zero point per class) ranks its classes only once dequantized.
 * y: the sample's veil_shape_size(&out->shape) values. */
size_t veil_model_class(const veil_model_output *out, const int64_t *y);

/* The clear integer forward pass of the model itself, with no compilation
 * (no rounding, no range limits): what the golden vectors hold. inputs: one
 * array per model input, batch samples each; outputs: one array per model
 * output (caller allocated, batch * shape size). */
veil_status veil_model_forward(const veil_model *m, const int64_t *const *inputs, size_t batch,
                               int64_t *const *outputs);

/* Number of bits of the two's complement integers in [lo, hi] (at least 1);
 * unsigned ranges (lo >= 0) need no sign bit. The bits of an unsigned span
 * v (the smallest b >= 1 with v < 2^b, at most 64) are
 * veil_bits_for_range(0, (int64_t)v): hi is read back as uint64_t, so every
 * v up to 2^64 - 1 is meant (the compiler's one way to count them). */
unsigned veil_bits_for_range(int64_t lo, int64_t hi);
/* Bits of the span hi - lo of a range (lo <= hi), without int64 overflow. */
unsigned veil_bits_for_span(int64_t lo, int64_t hi);

#ifdef __cplusplus
}
#endif
#endif
