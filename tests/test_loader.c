// LABELS: model
// LINKS: veil_loaders
/* The HDF5 model loader: every sample model loads and validates; malformed
 * files (copies of tiny.h5 edited with the HDF5 API: wrong format, version,
 * ranks, table sizes, operands, ranges, missing groups) fail with an error
 * that names the HDF5 path; input readers (.npy, .csv, .h5) quantize floats
 * and check integer inputs; output writers round-trip. */
#include "testutil.h"
#include "veil/loader.h"

#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const k_models[] = {"models/tiny.h5",       "models/mlp_digits.h5",
                                       "models/cnn_digits.h5", "models/source_bc.h5",
                                       "models/target_bc.h5",  "models/cnn_maxpool_digits.h5"};

static char g_tmp[256];

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b) {
        if (a) fclose(a);
        if (b) fclose(b);
        return -1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    fclose(a);
    return fclose(b);
}

/* A fresh editable copy of a sample model (of tiny.h5). */
static hid_t edit_copy_of(const char *model) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/veil_test_loader_%d.h5", (int)getpid());
    if (copy_file(veil_test_path(model), g_tmp) != 0) return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return H5Fopen(g_tmp, H5F_ACC_RDWR, H5P_DEFAULT);
}

static hid_t edit_copy(void) {
    return edit_copy_of("models/tiny.h5");
}

static void set_str_attr(hid_t obj, const char *name, const char *value) {
    H5Adelete(obj, name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, value);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void set_i64_attr(hid_t obj, const char *name, const int64_t *v, hsize_t n) {
    H5Adelete(obj, name);
    hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void replace_dataset(hid_t loc, const char *name, int rank, const hsize_t *dims) {
    H5Ldelete(loc, name, H5P_DEFAULT);
    hsize_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    int64_t *v = calloc(n, sizeof *v);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Sclose(sp);
    free(v);
}

/* Loads g_tmp and expects failure with `want` in the message. */
static void expect_error(veil_status want_st, const char *want) {
    veil_model *m = NULL;
    veil_status st = veil_model_load(g_tmp, &m);
    if (st == VEIL_OK || !strstr(veil_error_message(), want))
        fprintf(stderr, "\n  expected '%s', got %s: %s\n", want, veil_status_str(st),
                veil_error_message());
    CU_ASSERT_EQUAL(st, want_st);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
    unlink(g_tmp);
}

static void test_load_samples(void) {
    for (size_t i = 0; i < sizeof k_models / sizeof *k_models; i++) {
        veil_model *m = NULL;
        veil_status st = veil_model_load(veil_test_path(k_models[i]), &m);
        if (st) fprintf(stderr, "\n  %s: %s\n", k_models[i], veil_error_message());
        CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
        CU_ASSERT(m->n_layers > 0);
        CU_ASSERT(m->golden.count > 0 && m->golden.labels && m->golden.outputs);
        CU_ASSERT(m->calibration.count > 0);
        CU_ASSERT(m->brevitas_accuracy > 0.5 && m->brevitas_accuracy <= 1.0);
        /* the model's own forward pass reproduces its golden vectors */
        int64_t *out[8] = {0};
        for (uint32_t o = 0; o < m->n_outputs; o++)
            out[o] = malloc(m->golden.count * veil_shape_size(&m->outputs[o].shape) * 8);
        CU_ASSERT_EQUAL(
            veil_model_forward(m, (const int64_t *const *)m->golden.inputs, m->golden.count, out),
            VEIL_OK);
        for (uint32_t o = 0; o < m->n_outputs; o++) {
            size_t n = m->golden.count * veil_shape_size(&m->outputs[o].shape);
            CU_ASSERT_EQUAL(memcmp(out[o], m->golden.outputs[o], n * 8), 0);
            free(out[o]);
        }
        veil_model_free(m);
    }
}

/* Inputs come in the order of their `index` attribute, not their names' (the
 * group's): target_bc's a, b, c given indices 2, 0, 1 load as b, c, a, with
 * every sample array following its input, so the forward pass still gives
 * the golden vectors; equal indices keep the group's order. */
static void test_input_index_order(void) {
    static const int64_t idx[2][3] = {{2, 0, 1}, {1, 0, 1}};
    static const char *const want[2][3] = {{"b", "c", "a"}, {"b", "a", "c"}};
    static const char *const names[3] = {"/inputs/a", "/inputs/b", "/inputs/c"};
    int cases = 0;
    for (int c = 0; c < 2; c++) {
        hid_t f = edit_copy_of("models/target_bc.h5");
        CU_ASSERT_FATAL(f >= 0);
        for (int i = 0; i < 3; i++) {
            hid_t o = H5Oopen(f, names[i], H5P_DEFAULT);
            CU_ASSERT_FATAL(o >= 0);
            set_i64_attr(o, "index", &idx[c][i], 0);
            H5Oclose(o);
        }
        H5Fclose(f);
        veil_model *m = NULL;
        veil_status st = veil_model_load(g_tmp, &m);
        if (st) fprintf(stderr, "\n  case %d: %s\n", c, veil_error_message());
        CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
        CU_ASSERT_EQUAL_FATAL(m->n_inputs, 3);
        for (int i = 0; i < 3; i++)
            CU_ASSERT_STRING_EQUAL(m->inputs[i].name, want[c][i]);
        int64_t *out = malloc(m->golden.count * veil_shape_size(&m->outputs[0].shape) * 8);
        CU_ASSERT_FATAL(out != NULL && m->n_outputs == 1);
        CU_ASSERT_EQUAL(
            veil_model_forward(m, (const int64_t *const *)m->golden.inputs, m->golden.count, &out),
            VEIL_OK);
        CU_ASSERT_EQUAL(memcmp(out, m->golden.outputs[0],
                               m->golden.count * veil_shape_size(&m->outputs[0].shape) * 8),
                        0);
        free(out);
        veil_model_free(m);
        unlink(g_tmp);
        cases++;
    }
    CU_ASSERT_EQUAL(cases, 2);
}

static void test_bad_format(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    set_str_attr(f, "format", "nope");
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/format: 'nope', expected 'veil-model'");

    f = edit_copy();
    int64_t v = 2;
    set_i64_attr(f, "version", &v, 0);
    H5Fclose(f);
    expect_error(VEIL_ERR_UNSUPPORTED, "/version: 2");
}

/* An infinite zero point is named as the zero point (issue 15, item 11). */
static void test_bad_zero_point(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t o = H5Oopen(f, "/outputs/y", H5P_DEFAULT);
    CU_ASSERT_FATAL(o >= 0);
    H5Adelete(o, "zero_point");
    double inf[2] = {0, INFINITY}; /* tiny's y has one scale per output */
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t a = H5Acreate2(o, "zero_point", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, inf);
    H5Aclose(a);
    H5Sclose(sp);
    H5Oclose(o);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/outputs/y/zero_point: entry 1 (inf) is not finite");
}

static void test_bad_weight_rank(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    hsize_t d1[1] = {12};
    replace_dataset(g, "weight", 1, d1);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0000_linear/weight: expected rank 2, got 1");
}

static void test_bad_weight_shape(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    hsize_t d[2] = {4, 5}; /* the input has 3 features */
    replace_dataset(g, "weight", 2, d);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0000_linear/weight: 5 input features");
}

static void test_bad_table(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    hsize_t d[2] = {4, 22}; /* [in_min, in_max] = [-10, 12] needs 23 */
    replace_dataset(g, "table", 2, d);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0001_lut/table: 22 entries per table");

    f = edit_copy();
    g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    int64_t lo = 20;
    set_i64_attr(g, "in_min", &lo, 0);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0001_lut/in_min: 20 is larger than in_max 12");

    f = edit_copy();
    g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    hsize_t d3[2] = {3, 23}; /* 3 per-channel tables for 4 channels */
    replace_dataset(g, "table", 2, d3);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0001_lut/table: 3 per-channel tables");

    /* per_channel with one row: not one table for every channel */
    f = edit_copy();
    g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    hsize_t d1[2] = {1, 23};
    replace_dataset(g, "table", 2, d1);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0001_lut/table: 1 per-channel tables");
}

/* Nothing outside the file is read: a layer reached through an external
 * link (to a copy of the same model) or a soft link, and a table whose data
 * lives in another file (external storage), are refused naming the path;
 * libhdf5 would open those files by itself, bytes no check has seen. */
/* An inputs file's /y is its labels only when they are 1-D integers: float
 * targets beside /x leave the samples without labels instead of refusing
 * the file. */
static void test_h5_inputs_y_labels(void) {
    veil_model *m = NULL;
    CU_ASSERT_FATAL(veil_model_load(veil_test_path("models/tiny.h5"), &m) == VEIL_OK);
    char path[300];
    snprintf(path, sizeof path, "/tmp/veil_test_loader_y_%d.h5", (int)getpid());
    for (int as_int = 0; as_int < 2; as_int++) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        CU_ASSERT_FATAL(f >= 0);
        const double x[4 * 3] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -0.1, -0.2, -0.3, 0, 0, 0};
        hsize_t dx[2] = {4, 3}, dy = 4;
        hid_t sp = H5Screate_simple(2, dx, NULL);
        hid_t d = H5Dcreate2(f, "x", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dclose(d);
        H5Sclose(sp);
        const double yf[4] = {0.5, 1.5, 2.5, 3.5};
        const int64_t yi[4] = {0, 1, 1, 0};
        sp = H5Screate_simple(1, &dy, NULL);
        d = H5Dcreate2(f, "y", as_int ? H5T_STD_I64LE : H5T_IEEE_F64LE, sp, H5P_DEFAULT,
                       H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, as_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                 as_int ? (const void *)yi : (const void *)yf);
        H5Dclose(d);
        H5Sclose(sp);
        H5Fclose(f);
        veil_model_samples smp = {0};
        CU_ASSERT_EQUAL_FATAL(veil_inputs_read(path, m, 0, &smp, NULL), VEIL_OK);
        CU_ASSERT_EQUAL(smp.count, 4);
        if (as_int) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(smp.labels);
            CU_ASSERT_EQUAL(smp.labels[1], 1);
        } else {
            CU_ASSERT_PTR_NULL(smp.labels);
        }
        veil_model_samples_free(&smp, m->n_inputs, 0);
    }
    unlink(path);
    veil_model_free(m);
}

/* A layer without calib_range reads as [0, 0], "not stored" as the
 * compiler takes it (its ranges then come from /calibration); it read as
 * +-2^61, which the compiler took for an observed range: the worst case. */
static void test_calib_range_absent(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    CU_ASSERT(H5Adelete(g, "calib_range") >= 0);
    H5Gclose(g);
    H5Fclose(f);
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(g_tmp, &m), VEIL_OK);
    CU_ASSERT_EQUAL(m->layers[1].calib_range[0], 0);
    CU_ASSERT_EQUAL(m->layers[1].calib_range[1], 0);
    veil_model_free(m);
    unlink(g_tmp);
}

static void test_links_outside_refused(void) {
    char other[300];
    snprintf(other, sizeof other, "/tmp/veil_test_loader_other_%d.h5", (int)getpid());
    CU_ASSERT_FATAL(copy_file(veil_test_path("models/tiny.h5"), other) == 0);
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    CU_ASSERT(H5Ldelete(f, "/layers/0001_lut", H5P_DEFAULT) >= 0);
    CU_ASSERT(H5Lcreate_external(other, "/layers/0001_lut", f, "/layers/0001_lut", H5P_DEFAULT,
                                 H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0001_lut: an external link");

    f = edit_copy();
    CU_ASSERT(H5Lcreate_soft("/layers/0001_lut", f, "/alias", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/alias: a soft link");

    /* the table's entries stored in `other` (external storage) */
    f = edit_copy();
    hid_t g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    CU_ASSERT(H5Ldelete(g, "table", H5P_DEFAULT) >= 0);
    hsize_t d[2] = {4, 23};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    CU_ASSERT(H5Pset_external(dcpl, other, 0, 4 * 23 * 8) >= 0);
    hid_t sp = H5Screate_simple(2, d, NULL);
    hid_t ds = H5Dcreate2(g, "table", H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CU_ASSERT(ds >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0001_lut/table: a dataset stored outside the file");
    unlink(other);
}

/* tiny.h5's first weight (4 x 3) replaced by a dataset of `dims` whose data
 * is written only where `write` says: 0 none, 1 all, 2 the first chunk;
 * chunked by `chunk` (NULL: contiguous), gzip-compressed when `gzip`. */
static void weight_storage(const hsize_t *dims, const hsize_t *chunk, int gzip, int write) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    int64_t w[12];
    hid_t d = H5Dopen2(g, "weight", H5P_DEFAULT);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    H5Dclose(d);
    CU_ASSERT(H5Ldelete(g, "weight", H5P_DEFAULT) >= 0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk) CU_ASSERT(H5Pset_chunk(dcpl, 2, chunk) >= 0);
    if (gzip) CU_ASSERT(H5Pset_deflate(dcpl, 4) >= 0);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    d = H5Dcreate2(g, "weight", H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    if (write == 1) {
        CU_ASSERT(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    } else if (write == 2) {
        const hsize_t start[2] = {0, 0};
        hid_t mem = H5Screate_simple(2, chunk, NULL);
        CU_ASSERT(H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, chunk, NULL) >= 0);
        CU_ASSERT(H5Dwrite(d, H5T_NATIVE_INT64, mem, sp, H5P_DEFAULT, w) >= 0);
        H5Sclose(mem);
    }
    H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Gclose(g);
    H5Fclose(f);
}

/* A dataset read as its fill value where the file holds none of its data:
 * a few kB declaring 2^31 values had 16 GiB allocated and filled, in
 * veil-h5check and then in this process, before any shape was checked. The
 * loader asks the file for the stored bytes first. */
static void test_unwritten_dataset_refused(void) {
    const hsize_t dims[2] = {4, 3}, chunk[2] = {2, 3};
    weight_storage(dims, chunk, 0, 0);
    expect_error(VEIL_ERR_FORMAT,
                 "/layers/0000_linear/weight: 12 values of 8 bytes, but the file stores 0 bytes");
    weight_storage(dims, NULL, 0, 0); /* contiguous, never written */
    expect_error(VEIL_ERR_FORMAT, "/layers/0000_linear/weight: 12 values of 8 bytes");
    weight_storage(dims, chunk, 0, 2); /* one of its two chunks */
    expect_error(VEIL_ERR_FORMAT, "but the file stores 48 bytes of them");
    weight_storage(dims, chunk, 1, 0);
    expect_error(VEIL_ERR_FORMAT, "stores 0 bytes of them compressed");
    const hsize_t huge[2] = {(hsize_t)1 << 16, (hsize_t)1 << 15}, hchunk[2] = {256, 256};
    weight_storage(huge, hchunk, 0, 0);
    expect_error(VEIL_ERR_FORMAT, "weight: 2147483648 values of 8 bytes, but the file stores 0");
    /* written whole, compressed or not: the model loads as before */
    for (int gzip = 0; gzip < 2; gzip++) {
        weight_storage(dims, chunk, gzip, 1);
        veil_model *m = NULL;
        CU_ASSERT_EQUAL(veil_model_load(g_tmp, &m), VEIL_OK);
        veil_model_free(m);
        unlink(g_tmp);
    }
}

static void test_bad_operand(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gopen2(f, "/layers/0002_linear", H5P_DEFAULT);
    set_str_attr(g, "inputs", "nosuch");
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0002_linear/inputs: operand 'nosuch'");

    f = edit_copy();
    g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    set_str_attr(g, "inputs", "0002_linear"); /* a later layer */
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0000_linear/inputs: operand '0002_linear' comes after");
}

/* ---- attributes and datasets of the wrong kind ---- */
static void set_f64_attr(hid_t obj, const char *name, double v) {
    H5Adelete(obj, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void set_i64_matrix_attr(hid_t obj, const char *name) {
    H5Adelete(obj, name);
    hsize_t d[2] = {2, 2};
    int64_t v[4] = {0, 1, 2, 3};
    hid_t sp = H5Screate_simple(2, d, NULL);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void m_nbits_str(hid_t f) {
    hid_t g = H5Gopen2(f, "/inputs/x", H5P_DEFAULT);
    set_str_attr(g, "n_bits", "3");
    H5Gclose(g);
}
static void m_nbits_float(hid_t f) {
    hid_t g = H5Gopen2(f, "/inputs/x", H5P_DEFAULT);
    set_f64_attr(g, "n_bits", 3.0);
    H5Gclose(g);
}
static void m_range_three(hid_t f) {
    hid_t g = H5Gopen2(f, "/inputs/x", H5P_DEFAULT);
    const int64_t r[3] = {-4, 0, 3};
    set_i64_attr(g, "range", r, 3);
    H5Gclose(g);
}
static void m_shape_matrix(hid_t f) {
    hid_t g = H5Gopen2(f, "/inputs/x", H5P_DEFAULT);
    set_i64_matrix_attr(g, "shape");
    H5Gclose(g);
}
static void m_op_missing(hid_t f) {
    hid_t g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    H5Adelete(g, "op");
    H5Gclose(g);
}
static void m_op_number(hid_t f) {
    hid_t g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    const int64_t v = 7;
    set_i64_attr(g, "op", &v, 0);
    H5Gclose(g);
}
static void m_inputs_number(hid_t f) {
    hid_t g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    const int64_t v = 7;
    set_i64_attr(g, "inputs", &v, 1);
    H5Gclose(g);
}
static void m_weight_missing(hid_t f) {
    H5Ldelete(f, "/layers/0000_linear/weight", H5P_DEFAULT);
}
static void m_weight_float(hid_t f) {
    hid_t g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    H5Ldelete(g, "weight", H5P_DEFAULT);
    hsize_t d[2] = {4, 3};
    double v[12] = {0};
    hid_t sp = H5Screate_simple(2, d, NULL);
    hid_t ds = H5Dcreate2(g, "weight", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Gclose(g);
}
static void m_weight_group(hid_t f) {
    hid_t g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    H5Ldelete(g, "weight", H5P_DEFAULT);
    H5Gclose(H5Gcreate2(g, "weight", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Gclose(g);
}
static void m_table_rank3(hid_t f) {
    hid_t g = H5Gopen2(f, "/layers/0001_lut", H5P_DEFAULT);
    hsize_t d[3] = {4, 23, 1};
    replace_dataset(g, "table", 3, d);
    H5Gclose(g);
}
static void m_format_missing(hid_t f) {
    H5Adelete(f, "format");
}

/* Each attribute or dataset of the wrong kind (a string for a number, a
 * float for an integer, a number for a string, a list of the wrong length or
 * rank, a group for a dataset, a missing one) is refused with its HDF5 path
 * and what was expected; most of these branches ran in no test before
 * (coverage of make test). */
static void test_bad_types(void) {
    static const struct {
        void (*edit)(hid_t);
        const char *want;
    } cases[] = {
        {m_nbits_str, "/inputs/x/n_bits: expected a number"},
        {m_nbits_float, "/inputs/x/n_bits: expected an integer, got a float"},
        {m_range_three, "/inputs/x/range: expected 2 value(s), got 3"},
        {m_shape_matrix, "/inputs/x/shape: expected a scalar or a 1-D array"},
        {m_op_missing, "/layers/0001_lut: missing attribute 'op'"},
        {m_op_number, "/layers/0001_lut/op: expected a string attribute"},
        {m_inputs_number, "/layers/0001_lut/inputs: expected a list of strings"},
        {m_weight_missing, "/layers/0000_linear/weight: missing dataset"},
        {m_weight_float, "/layers/0000_linear/weight: expected integer data"},
        {m_weight_group, "/layers/0000_linear/weight: not a dataset"},
        {m_table_rank3, "/layers/0001_lut/table: expected rank 2, got 3"},
        {m_format_missing, "missing attribute 'format'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hid_t f = edit_copy();
        CU_ASSERT_FATAL(f >= 0);
        cases[i].edit(f);
        H5Fclose(f);
        expect_error(VEIL_ERR_FORMAT, cases[i].want);
    }
}

static void test_bad_ranges_and_groups(void) {
    hid_t f = edit_copy();
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    int64_t r[2] = {5, -5};
    set_i64_attr(g, "range", r, 2);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0000_linear/range: [5, -5] is not ordered");

    f = edit_copy();
    H5Ldelete(f, "/outputs", H5P_DEFAULT);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/outputs: missing group");

    f = edit_copy();
    g = H5Gopen2(f, "/layers/0000_linear", H5P_DEFAULT);
    H5Adelete(g, "shape");
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/layers/0000_linear: missing attribute 'shape'");

    f = edit_copy();
    g = H5Gopen2(f, "/golden/inputs", H5P_DEFAULT);
    hsize_t d[2] = {64, 3};
    H5Ldelete(g, "x", H5P_DEFAULT);
    hsize_t n = 64 * 3;
    int64_t *v = calloc(n, sizeof *v);
    v[7] = 100; /* the input range is [-4, 3] */
    hid_t sp = H5Screate_simple(2, d, NULL);
    hid_t ds = H5Dcreate2(g, "x", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
    free(v);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT, "/golden/inputs/x: value 100 of sample 2");

    /* integers where floats are stored, in a shape smaller than the tensor's
     * ([1, 1] for y of shape [2]): refused before the conversion to doubles,
     * which walked the tensor's shape past the 8 bytes read (a heap overflow
     * AddressSanitizer reports) */
    f = edit_copy();
    g = H5Gopen2(f, "/golden/float_outputs", H5P_DEFAULT);
    const hsize_t small[2] = {1, 1};
    replace_dataset(g, "y", 2, small);
    H5Gclose(g);
    H5Fclose(f);
    expect_error(VEIL_ERR_FORMAT,
                 "/golden/float_outputs/y: sample shape differs from the tensor's [2]");
}

static void test_not_hdf5(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/veil_test_loader_%d.h5", (int)getpid());
    FILE *f = fopen(g_tmp, "w");
    fputs("not hdf5 at all\n", f);
    fclose(f);
    expect_error(VEIL_ERR_FORMAT, "not an HDF5 file");
    veil_model *m = NULL;
    CU_ASSERT_EQUAL(veil_model_load("/nonexistent/veil.h5", &m), VEIL_ERR_IO);
    CU_ASSERT_PTR_NULL(m);
}

/* A CSV of `text` at path is refused as malformed, the message holding want. */
static void csv_refused(const char *path, const veil_model *m, const char *text, const char *want) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    veil_model_samples smp;
    CU_ASSERT_EQUAL(veil_inputs_read(path, m, 0, &smp, NULL), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
}

/* The zero point is added before rounding (SCHEMA.md, Brevitas, Concrete
 * ML's QuantizedArray): at a tie an odd zero point moves the even neighbour.
 * Rounding x / scale alone and adding zp gave -6, -6, 0 and 2 below. */
static void test_quantize_zero_point_ties(void) {
    veil_model_input in = {.scale = 0.5, .zero_point = 7, .n_bits = 4, .range = {-7, 8}};
    const double x[] = {-3.25, -2.75, 0.25, 1.25, -100.0, 100.0, NAN};
    const int64_t want[] = {-7, -5, 1, 3, -7, 8, -7};
    int64_t v[7];
    size_t first = 99;
    CU_ASSERT_EQUAL(veil_model_quantize(&in, x, 7, v, &first), 3);
    CU_ASSERT_EQUAL(first, 4);
    CU_ASSERT_EQUAL(memcmp(v, want, sizeof want), 0);
    in.zero_point = 0; /* ties to even, the same either way */
    in.range[0] = -8;
    in.range[1] = 7;
    const double y[] = {1.25, 1.75, -0.25};
    const int64_t want0[] = {2, 4, 0};
    CU_ASSERT_EQUAL(veil_model_quantize(&in, y, 3, v, NULL), 0);
    CU_ASSERT_EQUAL(memcmp(v, want0, sizeof want0), 0);
}

static void test_inputs_readers(void) {
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(veil_test_path("models/tiny.h5"), &m), VEIL_OK);
    const veil_model_input *in = &m->inputs[0];
    char path[256];
    /* CSV of floats with a label column and a header */
    snprintf(path, sizeof path, "/tmp/veil_test_in_%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    fprintf(f, "a,b,c,label\n");
    double x[2][3] = {{0.0, 0.31, -0.62}, {100.0, -100.0, 0.155}};
    for (int s = 0; s < 2; s++)
        fprintf(f, "%.6f,%.6f,%.6f,%d\n", x[s][0], x[s][1], x[s][2], s);
    fclose(f);
    veil_model_samples smp;
    CU_ASSERT_EQUAL_FATAL(veil_inputs_read(path, m, 0, &smp, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(smp.count, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(smp.labels);
    CU_ASSERT_EQUAL(smp.labels[1], 1);
    int64_t want[6];
    size_t first = 0;
    CU_ASSERT_EQUAL(veil_model_quantize(in, &x[0][0], 6, want, &first), 2); /* 100, -100 */
    CU_ASSERT_EQUAL(first, 3);
    CU_ASSERT_EQUAL(memcmp(smp.inputs[0], want, sizeof want), 0);
    CU_ASSERT_EQUAL(smp.inputs[0][3], in->range[1]); /* clamped */
    CU_ASSERT_EQUAL(smp.inputs[0][4], in->range[0]);
    veil_model_samples_free(&smp, m->n_inputs, 0);
    /* a row of the wrong length names the line */
    csv_refused(path, m, "1,2,3\n1,2\n", ":2: 2 values, expected 3");
    /* only a first line whose first field is no number is a header: a bad
     * field later in it is an error, not a header dropped with its sample */
    csv_refused(path, m, "0.1,0.2,oops\n0.5,0.6,1\n", ":1: field 3: not a number");
    /* and a header names its columns: a first row with an empty first field
     * is a data row in error, not a header dropped with its sample */
    csv_refused(path, m, ",0.1,0.2,0.3\n0.5,0.6,1\n", ":1: field 1: not a number");
    /* numbers run together are refused, not read as two (0.2 and -0.3) */
    csv_refused(path, m, "x,y,z\n0.1,0.2-0.3\n", ":2: field 2: no separator");
    /* separators: commas, semicolons, spaces; a trailing one is allowed */
    f = fopen(path, "w");
    fprintf(f, "# comment\n0.1,0.2,0.3,\n0.1 0.2 0.3\n0.1 ; 0.2;0.3\n");
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(veil_inputs_read(path, m, 0, &smp, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(smp.count, 3);
    CU_ASSERT(memcmp(smp.inputs[0], smp.inputs[0] + 3, 3 * 8) == 0);
    CU_ASSERT(memcmp(smp.inputs[0], smp.inputs[0] + 6, 3 * 8) == 0);
    veil_model_samples_free(&smp, m->n_inputs, 0);
    /* quantized CSV outside the range is refused */
    f = fopen(path, "w");
    fprintf(f, "1,2,9\n");
    fclose(f);
    CU_ASSERT_EQUAL(veil_inputs_read(path, m, VEIL_INPUTS_QUANTIZED, &smp, NULL), VEIL_ERR_RANGE);
    unlink(path);

    /* .npy of int64 (quantized) via a hand-written header */
    snprintf(path, sizeof path, "/tmp/veil_test_in_%d.npy", (int)getpid());
    f = fopen(path, "wb");
    const char *hdr = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }";
    size_t hl = strlen(hdr), tot = 10 + hl + 1, pad = (64 - tot % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl + pad + 1), 0};
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, hl, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    int64_t vals[6] = {-4, 0, 3, 1, 2, -1};
    fwrite(vals, 8, 6, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(veil_inputs_read(path, m, 0, &smp, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(smp.count, 2);
    CU_ASSERT_EQUAL(memcmp(smp.inputs[0], vals, sizeof vals), 0);
    veil_model_samples_free(&smp, m->n_inputs, 0);
    unlink(path);

    /* the model file itself: its golden inputs and labels */
    CU_ASSERT_EQUAL_FATAL(veil_inputs_read(veil_test_path("models/tiny.h5"), m, 0, &smp, NULL),
                          VEIL_OK);
    CU_ASSERT_EQUAL(smp.count, m->golden.count);
    CU_ASSERT_EQUAL(memcmp(smp.inputs[0], m->golden.inputs[0], smp.count * 3 * 8), 0);
    CU_ASSERT_EQUAL(memcmp(smp.labels, m->golden.labels, smp.count * 8), 0);
    veil_model_samples_free(&smp, m->n_inputs, 0);

    /* outputs: .h5 written, its integers read back */
    snprintf(path, sizeof path, "/tmp/veil_test_out_%d.h5", (int)getpid());
    CU_ASSERT_EQUAL(
        veil_outputs_write(path, m, m->golden.count, (const int64_t *const *)m->golden.outputs),
        VEIL_OK);
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(h >= 0);
    hid_t d = H5Dopen2(h, "/outputs/y", H5P_DEFAULT);
    int64_t *back = malloc(m->golden.count * 2 * 8);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    CU_ASSERT_EQUAL(memcmp(back, m->golden.outputs[0], m->golden.count * 2 * 8), 0);
    H5Dclose(d);
    /* /predictions: Brevitas's classes (its float outputs' argmax), which the
     * largest integer misses on 5 of tiny's 64 golden samples */
    d = H5Dopen2(h, "/predictions", H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    size_t same = 0;
    for (size_t s = 0; s < m->golden.count; s++) {
        const double *fo = m->golden.float_outputs[0] + s * 2;
        same += back[s] == (fo[1] > fo[0] ? 1 : 0);
    }
    CU_ASSERT_EQUAL(same, m->golden.count);
    free(back);
    H5Dclose(d);
    H5Fclose(h);
    unlink(path);
    /* .csv and .npy: read back, every value equal to the dequantized golden
     * output (CSV: %.9g, so to 1e-8 relative; npy: float64 bit for bit) and
     * the CSV's argmax column equal to the largest of its row's values (the
     * class, veil_model_class) */
    const size_t cnt = m->golden.count, n0 = veil_shape_size(&m->outputs[0].shape);
    CU_ASSERT_FATAL(cnt >= 2 && n0 >= 2);
    double *deq = malloc(cnt * n0 * sizeof(double));
    veil_model_dequantize(&m->outputs[0], m->golden.outputs[0], cnt * n0, deq);
    snprintf(path, sizeof path, "/tmp/veil_test_out_%d.csv", (int)getpid());
    CU_ASSERT_EQUAL_FATAL(
        veil_outputs_write(path, m, cnt, (const int64_t *const *)m->golden.outputs), VEIL_OK);
    FILE *cf = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cf);
    char line[4096], want_hdr[512];
    int o = 0;
    for (size_t j = 0; j < n0; j++)
        o += snprintf(want_hdr + o, sizeof want_hdr - (size_t)o, "%s%s_%zu", j ? "," : "",
                      m->outputs[0].name, j);
    snprintf(want_hdr + o, sizeof want_hdr - (size_t)o, ",argmax\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, cf));
    CU_ASSERT_STRING_EQUAL(line, want_hdr);
    size_t rows = 0, bad = 0;
    while (fgets(line, sizeof line, cf)) {
        char *q = line, *end;
        for (size_t j = 0; j < n0; j++) {
            double v = strtod(q, &end);
            double w = deq[rows * n0 + j];
            if (end == q || *end != ',' || fabs(v - w) > 1e-8 * fmax(fabs(w), 1e-300)) bad++;
            q = end + 1;
        }
        /* the class: the largest of the row's dequantized values */
        size_t best = 0;
        for (size_t j = 1; j < n0; j++)
            if (deq[rows * n0 + j] > deq[rows * n0 + best]) best = j;
        unsigned long am = strtoul(q, &end, 10);
        if (end == q || *end != '\n' || am != best) bad++;
        rows++;
    }
    fclose(cf);
    CU_ASSERT_EQUAL(rows, cnt);
    CU_ASSERT_EQUAL(bad, 0);
    unlink(path);
    snprintf(path, sizeof path, "/tmp/veil_test_out_%d.npy", (int)getpid());
    CU_ASSERT_EQUAL_FATAL(
        veil_outputs_write(path, m, cnt, (const int64_t *const *)m->golden.outputs), VEIL_OK);
    FILE *nf = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(nf);
    unsigned char npre[10];
    CU_ASSERT_FATAL(fread(npre, 1, 10, nf) == 10);
    CU_ASSERT(memcmp(npre, "\x93NUMPY\x01\x00", 8) == 0);
    size_t hlen = (size_t)npre[8] | (size_t)npre[9] << 8;
    char *nhdr = calloc(1, hlen + 1);
    CU_ASSERT_FATAL(fread(nhdr, 1, hlen, nf) == hlen);
    CU_ASSERT((10 + hlen) % 64 == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(nhdr, "'descr': '<f8'"));
    char shape[64];
    snprintf(shape, sizeof shape, "'shape': (%zu, %zu)", cnt, n0);
    CU_ASSERT_PTR_NOT_NULL(strstr(nhdr, shape));
    double *back_d = malloc(cnt * n0 * sizeof(double) + 8);
    CU_ASSERT_EQUAL(fread(back_d, sizeof(double), cnt * n0 + 1, nf), cnt * n0);
    CU_ASSERT_EQUAL(memcmp(back_d, deq, cnt * n0 * sizeof(double)), 0);
    fclose(nf);
    free(nhdr);
    free(back_d);
    free(deq);
    unlink(path);
    veil_model_free(m);
}

/* NaN is refused naming the sample and feature; ±inf and 1e400 are clamped
 * and reported, or refused with VEIL_INPUTS_STRICT_RANGE (issue 15, item 8). */
/* Every .npy dtype the reader takes (numpy's defaults: float64 and int64,
 * and torch's float32), each giving the same quantized values, and the
 * files it refuses, each with an error naming the file: big-endian and
 * Fortran order, an unknown version, and a header announcing more data than
 * the file holds (refused before allocating for it: fuzz_inputs found a
 * 40-byte file that made it allocate 13 GB). CSV: a --quantized value or a
 * label that is not an int64 (infinity, 1e30, 1.5) is refused, not converted
 * (fuzz_inputs: the conversion of infinity was undefined behaviour). */
static void test_npy_dtypes_and_bad_inputs(void) {
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(veil_test_path("models/tiny.h5"), &m), VEIL_OK);
    const veil_model_input *in = &m->inputs[0];
    CU_ASSERT_EQUAL_FATAL(veil_shape_size(&in->shape), 3);
    CU_ASSERT_FATAL(in->range[0] <= -3 && in->range[1] >= 3);
    char path[256];
    snprintf(path, sizeof path, "/tmp/veil_test_dtype_%d.npy", (int)getpid());
    /* two samples; unsigned types get the non-negative ones */
    const int64_t sv[6] = {-3, 0, 3, 1, -1, 2}, uv[6] = {0, 3, 1, 2, 0, 3};
    const struct {
        const char *descr;
        int is_unsigned, is_float;
        unsigned size;
    } types[] = {{"<f8", 0, 1, 8}, {"<f4", 0, 1, 4}, {"<i8", 0, 0, 8}, {"<i4", 0, 0, 4},
                 {"<i2", 0, 0, 2}, {"|i1", 0, 0, 1}, {"<u8", 1, 0, 8}, {"<u4", 1, 0, 4},
                 {"<u2", 1, 0, 2}, {"|u1", 1, 0, 1}};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const int64_t *want = types[t].is_unsigned ? uv : sv;
        unsigned char data[48];
        for (int i = 0; i < 6; i++) {
            if (types[t].is_float) {
                /* q * scale, quantized back to q (float32: rounded, still
                 * nearest to q * scale) */
                const double d = (double)want[i] * in->scale;
                const float fl = (float)d;
                memcpy(data + i * types[t].size, types[t].size == 8 ? (const void *)&d : &fl,
                       types[t].size);
            } else {
                const int64_t v = want[i];
                memcpy(data + i * types[t].size, &v, types[t].size); /* little-endian */
            }
        }
        CU_ASSERT_EQUAL_FATAL(veil_test_write_npy(path, t % 2 ? 2 : 1, types[t].descr, "(2, 3)",
                                                  "False", data, 6 * types[t].size),
                              0);
        veil_model_samples smp;
        const veil_status st = veil_inputs_read(path, m, 0, &smp, NULL);
        CU_ASSERT_EQUAL(st, VEIL_OK);
        if (st != VEIL_OK) {
            fprintf(stderr, "\n  %s: %s", types[t].descr, veil_error_message());
            continue;
        }
        CU_ASSERT_EQUAL(smp.count, 2);
        CU_ASSERT_EQUAL(memcmp(smp.inputs[0], want, sizeof sv), 0);
        veil_model_samples_free(&smp, m->n_inputs, 0);
    }
    const double d6[16] = {0};
    const struct {
        int version;
        const char *descr, *shape, *fortran;
        size_t bytes;
        veil_status st;
        const char *msg;
    } bad[] = {
        {1, ">f8", "(2, 3)", "False", 48, VEIL_ERR_UNSUPPORTED, "dtype '>f8' not supported"},
        {1, "<f8", "(2, 3)", "True", 48, VEIL_ERR_UNSUPPORTED, "Fortran-order arrays"},
        {1, "<c16", "(2, 3)", "False", 48, VEIL_ERR_UNSUPPORTED, "dtype '<c16' not supported"},
        {4, "<f8", "(2, 3)", "False", 48, VEIL_ERR_FORMAT, ".npy version 4 not supported"},
        {1, "<f8", "(2, 3)", "False", 40, VEIL_ERR_FORMAT,
         "truncated data (6 values expected, 40 bytes left)"},
        {1, "<f4", "(555555552, 3)", "False", 8, VEIL_ERR_FORMAT,
         "truncated data (1666666656 values expected, 8 bytes left)"},
        {1, "<f8", "(2, 4)", "False", 64, VEIL_ERR_FORMAT, "4 values per sample, input 'x' has 3"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        CU_ASSERT_EQUAL_FATAL(veil_test_write_npy(path, bad[b].version == 4 ? 1 : bad[b].version,
                                                  bad[b].descr, bad[b].shape, bad[b].fortran, d6,
                                                  bad[b].bytes),
                              0);
        if (bad[b].version == 4) { /* the version byte rewritten */
            FILE *f = fopen(path, "r+b");
            fseek(f, 6, SEEK_SET);
            fputc(4, f);
            fclose(f);
        }
        veil_model_samples smp;
        CU_ASSERT_EQUAL(veil_inputs_read(path, m, 0, &smp, NULL), bad[b].st);
        const char *msg = veil_error_message();
        CU_ASSERT(strstr(msg, path) && strstr(msg, bad[b].msg));
        if (!strstr(msg, bad[b].msg))
            fprintf(stderr, "\n  want \"%s\", got \"%s\"", bad[b].msg, msg);
    }
    unlink(path);
    snprintf(path, sizeof path, "/tmp/veil_test_badcsv_%d.csv", (int)getpid());
    const struct {
        const char *text;
        unsigned flags;
        const char *msg;
    } csv[] = {
        {"1,2,1e400\n", VEIL_INPUTS_QUANTIZED, "value inf of sample 0 is not an integer"},
        {"1,2,3\n0,1,1e30\n", VEIL_INPUTS_QUANTIZED, "value 1e+30 of sample 1 is not an integer"},
        {"0.1,0.2,0.3,1.5\n", 0, ":1: label 1.5 is not an integer"},
        {"0.1,0.2,0.3,1\n0.1,0.2,0.3,1e400\n", 0, ":2: label inf is not an integer"},
    };
    for (size_t c = 0; c < sizeof csv / sizeof csv[0]; c++) {
        FILE *f = fopen(path, "w");
        fputs(csv[c].text, f);
        fclose(f);
        veil_model_samples smp;
        CU_ASSERT_EQUAL(veil_inputs_read(path, m, csv[c].flags, &smp, NULL), VEIL_ERR_FORMAT);
        const char *msg = veil_error_message();
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, csv[c].msg));
        if (!strstr(msg, csv[c].msg))
            fprintf(stderr, "\n  want \"%s\", got \"%s\"", csv[c].msg, msg);
    }
    unlink(path);
    veil_model_free(m);
}

static void test_nan_and_clamping(void) {
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(veil_test_path("models/tiny.h5"), &m), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_shape_size(&m->inputs[0].shape), 3);
    char path[128];
    snprintf(path, sizeof path, "/tmp/veil_test_nan_%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("0.1,0.2,0.3\n0.1,0.2,nan\n", f);
    fclose(f);
    veil_model_samples smp;
    veil_inputs_report rep;
    CU_ASSERT_EQUAL(veil_inputs_read(path, m, 0, &smp, &rep), VEIL_ERR_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "sample 1, feature 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "NaN"));
    f = fopen(path, "w");
    fputs("inf,0.2,0.3\n0.1,-1e400,1e400\n0.1,0.2,0.3\n", f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(veil_inputs_read(path, m, 0, &smp, &rep), VEIL_OK);
    CU_ASSERT_EQUAL(rep.clamped, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.first, "sample 0, feature 0"));
    CU_ASSERT_EQUAL(smp.inputs[0][0], m->inputs[0].range[1]);
    CU_ASSERT_EQUAL(smp.inputs[0][4], m->inputs[0].range[0]);
    veil_model_samples_free(&smp, m->n_inputs, 0);
    CU_ASSERT_EQUAL(veil_inputs_read(path, m, VEIL_INPUTS_STRICT_RANGE, &smp, &rep),
                    VEIL_ERR_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "sample 0, feature 0"));
    /* In range: nothing to report. */
    f = fopen(path, "w");
    fputs("0.1,0.2,0.3\n", f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(veil_inputs_read(path, m, VEIL_INPUTS_STRICT_RANGE, &smp, &rep), VEIL_OK);
    CU_ASSERT_EQUAL(rep.clamped, 0);
    veil_model_samples_free(&smp, m->n_inputs, 0);
    unlink(path);
    veil_model_free(m);
}

/* Threads that allocate and free all the time, as a server's do while it
 * loads a model: a lock of the allocator is often held when the loader
 * starts its checker. */
static volatile int g_churn_stop;

static void *churn(void *arg) {
    (void)arg;
    size_t k = 0;
    while (!g_churn_stop) {
        void *p[8];
        for (int i = 0; i < 8; i++)
            p[i] = malloc(16 + (k++ * 4099) % 300000);
        for (int i = 0; i < 8; i++)
            free(p[i]);
    }
    return NULL;
}

static char *write_script(const char *name, const char *body) {
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "/tmp/veil_test_loader_%d_%s", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    if (!f) return p;
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(p, 0700);
    return p;
}

/* Untrusted files are checked by veil-h5check, a program started for it:
 * loads in a process with busy threads all succeed and give the same model;
 * the checker is really asked (a missing, failing, silent or crashing one
 * is an error naming what went wrong, for models and for .h5 inputs). */
static void test_checker_process(void) {
    veil_model *ref = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(veil_test_path("models/tiny.h5"), &ref), VEIL_OK);
    pthread_t th[2];
    g_churn_stop = 0;
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, churn, NULL), 0);
    for (int rep = 0; rep < 40; rep++) {
        const char *path = k_models[rep % (sizeof k_models / sizeof *k_models)];
        veil_model *m = NULL;
        veil_status st = veil_model_load(veil_test_path(path), &m);
        CU_ASSERT_EQUAL(st, VEIL_OK);
        if (st != VEIL_OK) printf("\n  %s: %s\n", path, veil_error_message());
        if (m && rep % 6 == 0) {
            CU_ASSERT_EQUAL(m->n_layers, ref->n_layers);
            CU_ASSERT_EQUAL(m->n_inputs, ref->n_inputs);
        }
        veil_model_free(m);
    }
    veil_model_samples smp;
    CU_ASSERT_EQUAL(veil_inputs_read(veil_test_path("models/tiny.h5"), ref, 0, &smp, NULL),
                    VEIL_OK);
    CU_ASSERT(smp.count > 0);
    veil_model_samples_free(&smp, ref->n_inputs, 0);
    g_churn_stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);

    const struct {
        const char *checker;
        veil_status st;
        const char *says;
    } bad[] = {
        {"/nonexistent/veil-h5check", VEIL_ERR_IO, "VEIL_H5CHECK=/nonexistent/veil-h5check"},
        {write_script("false", "exit 1"), VEIL_ERR_FORMAT, "failed (exit 1)"},
        {write_script("silent", "exit 0"), VEIL_ERR_FORMAT, "failed (exit 0)"},
        {write_script("segv", "kill -SEGV $$"), VEIL_ERR_FORMAT, "crashed reading it (signal 11"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        setenv("VEIL_H5CHECK", bad[b].checker, 1);
        veil_model *m = NULL;
        CU_ASSERT_EQUAL(veil_model_load(veil_test_path("models/tiny.h5"), &m), bad[b].st);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), bad[b].says));
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "tiny.h5"));
        CU_ASSERT_EQUAL(veil_inputs_read(veil_test_path("models/tiny.h5"), ref, 0, &smp, NULL),
                        bad[b].st);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), bad[b].says));
    }
    unsetenv("VEIL_H5CHECK");

    /* A host that ignores SIGCHLD (its children reaped for it): the
     * checker's answer alone decides. */
    void (*old)(int) = signal(SIGCHLD, SIG_IGN);
    veil_model *m = NULL;
    CU_ASSERT_EQUAL(veil_model_load(veil_test_path("models/tiny.h5"), &m), VEIL_OK);
    veil_model_free(m);
    m = NULL;
    setenv("VEIL_H5CHECK", bad[3].checker, 1); /* the crashing one */
    CU_ASSERT_EQUAL(veil_model_load(veil_test_path("models/tiny.h5"), &m), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(m);
    unsetenv("VEIL_H5CHECK");
    signal(SIGCHLD, old);
    for (size_t b = 1; b < sizeof bad / sizeof *bad; b++)
        unlink(bad[b].checker);
    veil_model_free(ref);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("loader", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_load_samples);
    VEIL_ADD_TEST(s, test_input_index_order);
    VEIL_ADD_TEST(s, test_bad_format);
    VEIL_ADD_TEST(s, test_bad_zero_point);
    VEIL_ADD_TEST(s, test_bad_weight_rank);
    VEIL_ADD_TEST(s, test_bad_weight_shape);
    VEIL_ADD_TEST(s, test_bad_table);
    VEIL_ADD_TEST(s, test_links_outside_refused);
    VEIL_ADD_TEST(s, test_unwritten_dataset_refused);
    VEIL_ADD_TEST(s, test_calib_range_absent);
    VEIL_ADD_TEST(s, test_h5_inputs_y_labels);
    VEIL_ADD_TEST(s, test_bad_operand);
    VEIL_ADD_TEST(s, test_bad_ranges_and_groups);
    VEIL_ADD_TEST(s, test_bad_types);
    VEIL_ADD_TEST(s, test_not_hdf5);
    VEIL_ADD_TEST(s, test_quantize_zero_point_ties);
    VEIL_ADD_TEST(s, test_inputs_readers);
    VEIL_ADD_TEST(s, test_nan_and_clamping);
    VEIL_ADD_TEST(s, test_npy_dtypes_and_bad_inputs);
    VEIL_ADD_TEST(s, test_checker_process);
    return veil_test_run();
}
