/* h5util.h — HDF5 helpers shared by the loaders (private). Errors name the
 * HDF5 path ("<path>/<name>: ..."). */
#ifndef VEIL_H5UTIL_H
#define VEIL_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "veil/status.h"

void veil_h5_quiet(void);
int veil_h5_has_attr(hid_t obj, const char *name);
veil_status veil_h5_attr_str(hid_t obj, const char *path, const char *name, char **out);
veil_status veil_h5_attr_i64(hid_t obj, const char *path, const char *name, int64_t *out,
                             size_t count);
veil_status veil_h5_attr_f64(hid_t obj, const char *path, const char *name, double *out,
                             size_t count);
/* Whole dataset; integers as int64. With want_float, float data is read as
 * double and *rank is negative (-rank); integer data as int64, *rank > 0. */
/* An HDF5 file read whole into memory (the file is read once; see
 * model_h5.c for why untrusted files are opened in a child process first). */
typedef struct veil_h5_image {
    void *buf;
    size_t len;
    const char *name; /* the path, for messages (borrowed) */
} veil_h5_image;

/* A name for an in-memory (core driver) file: the core driver refuses a name
 * that exists on disk, and libhdf5 shares open files by name, so a unique
 * name no file can have. */
void veil_h5_memory_name(char *buf, size_t size);

/* Reads PATH (a regular file of at most 1 GiB with an HDF5 signature). */
veil_status veil_h5_image_read(const char *path, veil_h5_image *img);
void veil_h5_image_free(veil_h5_image *img);

/* What a reader does with the open file. */
typedef veil_status (*veil_h5_job)(hid_t file, void *ctx);

/* Opens the image read-only in memory (core driver, strong close) and runs
 * job in this process: for bytes veil trusts (and the fuzzer). */
veil_status veil_h5_image_run(const veil_h5_image *img, veil_h5_job job, void *ctx);

/* The same job as the checker runs it: a name and string arguments from
 * which veil_h5_check_image makes its own context ("model"; "inputs" and a
 * name and rank per model input). The checker's libhdf5 calls must be the
 * ones the job makes here, in the same order. */
typedef struct veil_h5_check {
    const char *job;
    int argc;
    char *const *argv;
} veil_h5_check;

/* Reads PATH, has the checker program (veil-h5check, a new process) run the
 * job described by check on its bytes (a libhdf5 crash or loop there is an
 * error naming the file), then, if it succeeded, runs job here on the same
 * bytes. Messages are prefixed with PATH. Safe in threaded processes. */
veil_status veil_h5_read_untrusted(const char *path, const veil_h5_check *check, veil_h5_job job,
                                   void *ctx);

/* veil-h5check's side: runs the named job on the image in this process. */
veil_status veil_h5_check_image(const veil_h5_image *img, const char *job, int argc,
                                char *const *argv);

/* The checker's jobs (model_h5.c, io.c). */
veil_status veil_h5_model_job(hid_t file, void *ctx); /* ctx: veil_model ** */
/* argv: NAME RANK for each input, then "--regression" when the labels are a
 * regressor's targets (io.c read_h5 passes it: the checker reads the same
 * datasets as the caller then). */
veil_status veil_h5_inputs_check(hid_t file, int argc, char *const *argv);

/* How long the checker may take before it is ended (SIGALRM). */
enum { VEIL_H5_CHECK_SECONDS = 300 };

/* veil_model_load without the child process, on bytes in memory (the
 * fuzzer's structured mode, which wants coverage of every error path). */
struct veil_model;
veil_status veil_model_load_image_unguarded(const void *bytes, size_t len, const char *name,
                                            struct veil_model **out);

veil_status veil_h5_read(hid_t loc, const char *path, const char *name, int want_float,
                         int rank_min, int rank_max, hsize_t *dims, int *rank, void **out);

/* A regressor's targets as veil_h5_read (want_float) or read_npy left them:
 * rank (negative: float data), dims d0 (and d1 for rank 2) in *data. They
 * must be [count] when output 0 holds one value per sample, or [count, K]
 * with K its values, and finite; then *data, as doubles, becomes *out (and
 * *data NULL). Errors name where. */
veil_status veil_targets_take(const char *where, const struct veil_model *m, int rank, size_t d0,
                              size_t d1, size_t count, void **data, double **out);

#endif
