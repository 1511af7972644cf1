/* veil/loader.h — models and data from files.
 *
 * veil_model_load reads a `.h5` model (schema v1, models/SCHEMA.md) into a
 * veil_model and validates it (veil_model_validate). Every error names the
 * HDF5 path and what was wrong ("/layers/0003_conv2d/weight: expected rank 4,
 * got 2"); on error nothing is returned and nothing leaks. libhdf5's own
 * error stack printing is turned off.
 *
 * veil_inputs_read reads the inputs of `veil run`:
 *   .h5   a veil model file (its /golden/inputs and /golden/labels), or any
 *         file with a dataset per model input named /inputs/<name>, /<name>,
 *         or (single-input models) /x or /X; labels from /labels, or /y or /Y
 *         when they are 1-D integers (else no labels); a regressor's
 *         targets (veil_model_is_regression) from the same names, numbers
 *         [S] or [S, K] (K the values of output 0), into `targets`;
 *   .npy  one array [S, ...shape] (single-input models); a sibling file with
 *         `_labels.npy` in place of `.npy` supplies labels (a regressor's
 *         targets) when present;
 *   .csv  one sample per row, the flattened values separated by ',' or ';'
 *         (spaces around them allowed) or by spaces, a separator may end
 *         the row; lines starting with '#' are comments; the first line is
 *         a header, skipped, when its first field is a name (begins with a
 *         letter, a quote or '_'; any other
 *         field that is no number is an error naming line and field); a row
 *         with one value more than the input size carries the label in its
 *         last column (a regressor's: K more, its targets).
 * Integer arrays (.h5/.npy integer dtypes, or CSV with `quantized` set) hold
 * the quantized values v = q - zp and are checked against the input range;
 * float arrays (and CSV by default) are quantized with the input's scale.
 *
 * veil_outputs_write writes outputs by extension: .h5 (/outputs/<name> int64
 * and /dequantized/<name> float64, /predictions when classifying: not for a
 * regressor), .npy (the dequantized output, float64 [S, ...shape]) or .csv
 * (one row per sample: the dequantized output, then, but for a regressor,
 * the class, veil_model_class: the argmax, or for one value 1 when it is
 * > 0); .npy and .csv only for a model
 * of one output. The file appears
 * whole or not at all (temporary name, fsync, rename: veil/atomic_file.h); a
 * failed write leaves a previous file untouched. veil_outputs_check says,
 * before any work, whether PATH has a known extension and can be created.
 *
 * Untrusted .h5 files (models and inputs) are read into memory and first
 * opened by veil-h5check, a program the loader starts (posix_spawn) and
 * hands the bytes, because libhdf5 crashes on some corrupt files; a crash
 * there is an error naming the file. A new program, not a fork, so that
 * loading is safe in a process with threads (a server's). The loader looks
 * for veil-h5check in $VEIL_H5CHECK, then beside the program or shared
 * library that holds the loader, then where the build made it. */
#ifndef VEIL_LOADER_H
#define VEIL_LOADER_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "veil/model.h"

#ifdef __cplusplus
extern "C" {
#endif

veil_status veil_model_load(const char *path, veil_model **out);

/* The environment the loader reads (VEIL_H5CHECK), as --help lines. */
void veil_loader_env_help(FILE *f);

/* 1 when m is a regressor (task "regression": output 0 dequantized is the
 * prediction, the samples' labels are float targets, veil_model_samples
 * targets), 0 for a classifier (task "classification" or none). */
int veil_model_is_regression(const veil_model *m);

/* A regressor's error on n samples: output 0 (out0, n * its values,
 * sample-major) dequantized against targets (as many): root mean squared
 * and mean absolute error over every value (NaN when n is 0). */
void veil_regression_error(const veil_model *m, const int64_t *out0, size_t n,
                           const double *targets, double *rmse, double *mae);

/* veil_inputs_read flags. */
enum {
    VEIL_INPUTS_QUANTIZED = 1,    /* CSV values are already quantized integers */
    VEIL_INPUTS_STRICT_RANGE = 2, /* refuse floats outside the input's range instead of clamping */
};

/* What veil_inputs_read clamped (floats outside the input's range: ±inf,
 * 1e400 parsed as inf, or just too large), for the caller's warning. */
typedef struct veil_inputs_report {
    size_t clamped;  /* values clamped to the range */
    char first[256]; /* the first one: file, sample, feature, value */
} veil_inputs_report;

/* Fills *out (inputs and labels; caller frees with veil_model_samples_free).
 * A NaN is refused (VEIL_ERR_RANGE naming the sample and feature). report may
 * be NULL. */
veil_status veil_inputs_read(const char *path, const veil_model *m, unsigned flags,
                             veil_model_samples *out, veil_inputs_report *report);

/* The commands' warning about clamped values ("PROG: warning: ..."); nothing
 * when none was clamped. */
void veil_inputs_report_print(const veil_inputs_report *r, const char *prog, FILE *f);

/* Before the work: a known extension and a writable place for PATH; with
 * the model m (NULL: not known yet), a format that holds its outputs (.npy
 * and .csv: one output). */
veil_status veil_outputs_check(const char *path, const veil_model *m);

/* outputs: one array per model output, count samples each. */
veil_status veil_outputs_write(const char *path, const veil_model *m, size_t count,
                               const int64_t *const *outputs);

#ifdef __cplusplus
}
#endif
#endif
