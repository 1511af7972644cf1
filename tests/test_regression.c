// LABELS: model
// COST: 20
// LINKS: veil_loaders veil_host
// RUNS: veil
/* Regressors (task "regression", models/SCHEMA.md): models/diabetes_reg.h5
 * loads with its float targets and metrics; its program simulates the golden
 * integers exactly; the RMSE / MAE `veil run` prints equals one computed here
 * from the file by plain HDF5 reads (not the loader); an encrypted cpu run of
 * 2 samples equals simulate; targets come from .h5, .npy and .csv inputs and
 * the outputs' CSV has no class column; an unknown task is refused naming the
 * file and the value. */
#include "testutil.h"
#include "load_model.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char k_model[] = "models/diabetes_reg.h5";

static void test_load_regressor(void) {
    veil_model *m = veil_test_load_model(k_model);
    CU_ASSERT_STRING_EQUAL(m->task, "regression");
    CU_ASSERT(veil_model_is_regression(m));
    CU_ASSERT_EQUAL(m->golden.count, 64);
    CU_ASSERT_PTR_NULL(m->golden.labels);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->golden.targets);
    CU_ASSERT(isnan(m->brevitas_accuracy) && isnan(m->int_accuracy));
    CU_ASSERT(m->int_r2 > 0.3 && m->int_r2 <= 1);
    CU_ASSERT(fabs(m->int_rmse - m->brevitas_rmse) <= 0.01 * m->brevitas_rmse);
    CU_ASSERT(m->int_vs_brevitas_max_error >= m->int_vs_brevitas_rmse);
    /* diabetes targets: disease progression, 25..346 */
    for (size_t s = 0; s < m->golden.count; s++)
        CU_ASSERT(m->golden.targets[s] >= 25 && m->golden.targets[s] <= 346);
    /* the default program (as `veil run` compiles it) simulates the golden
     * integers exactly */
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.simulate_only = 1;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    const size_t n = m->golden.count, sz = veil_program_output_size(p, 0);
    int64_t *out = malloc(n * sz * sizeof *out);
    CU_ASSERT_FATAL(out != NULL);
    veil_sim_stats ss;
    CU_ASSERT_EQUAL(
        veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, &out, NULL, &ss),
        VEIL_OK);
    CU_ASSERT_EQUAL(ss.range_errors, 0);
    CU_ASSERT_EQUAL(memcmp(out, m->golden.outputs[0], n * sz * sizeof *out), 0);
    free(out);
    veil_program_free(p);
    veil_model_free(m);
}

/* A dataset of the model file read with HDF5 alone, as doubles. */
static double *read_doubles(const char *path, const char *name, size_t *count) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    double *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    if (v && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        free(v);
        v = NULL;
    }
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    *count = (size_t)n;
    return v;
}

/* The stdout of `veil ARGS` (malloc'd), NULL when it did not exit 0. */
static char *veil_output(const char *args) {
    char veil[512], cmd[1024];
    if (veil_test_build_path("host/veil", veil, sizeof veil)) return NULL;
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", veil, args);
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - 1 - len, f)) > 0)
        len += got;
    const int rc = pclose(f);
    if (!buf || rc != 0) {
        if (buf) fprintf(stderr, "\n  veil %s: exit %d:\n%.*s\n", args, rc, (int)len, buf);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

/* RMSE and MAE of the golden outputs against the targets, from the file:
 * the output's scale and zero point attributes, /golden/outputs/y and
 * /golden/labels. */
static void independent_error(const char *path, size_t n, double *rmse, double *mae) {
    size_t ny = 0, nt = 0, ns = 0, nz = 0;
    double *y = read_doubles(path, "/golden/outputs/y", &ny);
    double *t = read_doubles(path, "/golden/labels", &nt);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    double scale = NAN, zp = NAN;
    hid_t a = H5Aopen_by_name(f, "/outputs/y", "scale", H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Aget_space(a);
    ns = (size_t)H5Sget_simple_extent_npoints(sp);
    if (ns == 1) H5Aread(a, H5T_NATIVE_DOUBLE, &scale);
    H5Sclose(sp);
    H5Aclose(a);
    a = H5Aopen_by_name(f, "/outputs/y", "zero_point", H5P_DEFAULT, H5P_DEFAULT);
    sp = H5Aget_space(a);
    nz = (size_t)H5Sget_simple_extent_npoints(sp);
    if (nz == 1) H5Aread(a, H5T_NATIVE_DOUBLE, &zp);
    H5Sclose(sp);
    H5Aclose(a);
    H5Fclose(f);
    CU_ASSERT_FATAL(y && t && ny >= n && nt >= n && ns == 1 && nz == 1);
    double se = 0, ae = 0;
    for (size_t s = 0; s < n; s++) {
        const double d = scale * (y[s] - zp) - t[s];
        se += d * d;
        ae += fabs(d);
    }
    *rmse = sqrt(se / (double)n);
    *mae = ae / (double)n;
    free(y);
    free(t);
}

/* The numbers after "RMSE " and "MAE " in the line starting with head. */
static int parse_error(const char *out, const char *head, double *rmse, double *mae) {
    const char *l = strstr(out, head);
    if (!l) return 0;
    const char *r = strstr(l, "RMSE "), *a = strstr(l, "MAE ");
    return r && a && sscanf(r, "RMSE %lf", rmse) == 1 && sscanf(a, "MAE %lf", mae) == 1;
}

static void test_run_prints_error(void) {
    char args[600];
    const char *path = veil_test_path(k_model);
    snprintf(args, sizeof args, "run '%s'", path);
    char *out = veil_output(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    double rmse = 0, mae = 0, want_rmse, want_mae;
    CU_ASSERT_FATAL(
        parse_error(out, "regression (simulate, 64 samples with targets): ", &rmse, &mae));
    independent_error(path, 64, &want_rmse, &want_mae);
    printf("\n  veil run: RMSE %.6g MAE %.6g; recomputed %.6g %.6g", rmse, mae, want_rmse,
           want_mae);
    CU_ASSERT(fabs(rmse - want_rmse) <= 1e-5 * want_rmse);
    CU_ASSERT(fabs(mae - want_mae) <= 1e-5 * want_mae);
    CU_ASSERT(want_rmse > 10 && want_mae > 10); /* a regressor's error, not 0 */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "golden vectors (unrounded integer path): 64/64 values "
                                       "equal\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "argmax"));
    CU_ASSERT_PTR_NULL(strstr(out, "accuracy"));
    free(out);
    /* --limit: the error of those samples */
    snprintf(args, sizeof args, "run '%s' --limit 5", path);
    out = veil_output(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_FATAL(
        parse_error(out, "regression (simulate, 5 samples with targets): ", &rmse, &mae));
    independent_error(path, 5, &want_rmse, &want_mae);
    CU_ASSERT(fabs(rmse - want_rmse) <= 1e-5 * want_rmse);
    CU_ASSERT(fabs(mae - want_mae) <= 1e-5 * want_mae);
    free(out);
    /* veil info prints the file's metrics */
    snprintf(args, sizeof args, "info '%s'", path);
    out = veil_output(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "task regression\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "golden 64 samples (with targets)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nregression: RMSE brevitas "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\ninteger path vs brevitas: RMSE "));
    free(out);
}

static void test_encrypted_cpu_equals_simulate(void) {
    char args[600];
    snprintf(args, sizeof args, "run '%s' --mode cpu --limit 2", veil_test_path(k_model));
    char *out = veil_output(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nagreement with simulate: 2/2 values\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\ngolden vectors (unrounded integer path): 2/2 values "
                                       "equal\n"));
    double rmse = 0, mae = 0, want_rmse, want_mae;
    CU_ASSERT(parse_error(out, "regression (cpu, 2 samples with targets): ", &rmse, &mae));
    independent_error(veil_test_path(k_model), 2, &want_rmse, &want_mae);
    CU_ASSERT(fabs(rmse - want_rmse) <= 1e-5 * want_rmse);
    free(out);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Targets from an inputs file: a CSV's last column, an .h5's /y (float),
 * refused when they do not fit output 0; a CSV of outputs has no class. */
static void test_targets_from_inputs(void) {
    veil_model *m = veil_test_load_model(k_model);
    char dir[256], path[400], out[400];
    CU_ASSERT_FATAL(veil_test_mkdtemp("regression", dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/in.csv", dir);
    write_file(path, "bmi,s5,bp,s3,y\n0.5,1,0,-1,151.5\n-1,0.25,2,0,75\n");
    veil_model_samples s = {0};
    CU_ASSERT_EQUAL_FATAL(veil_inputs_read(path, m, 0, &s, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(s.count, 2);
    CU_ASSERT_PTR_NULL(s.labels);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.targets);
    CU_ASSERT_EQUAL(s.targets[0], 151.5);
    CU_ASSERT_EQUAL(s.targets[1], 75);
    /* outputs as CSV: the value, no argmax column */
    int64_t y[2] = {3, -4};
    const int64_t *outs[1] = {y};
    snprintf(out, sizeof out, "%s/out.csv", dir);
    CU_ASSERT_EQUAL(veil_outputs_write(out, m, 2, outs), VEIL_OK);
    char *text = veil_test_read_file(out, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(strncmp(text, "y_0\n", 4) == 0);
    CU_ASSERT_PTR_NULL(strstr(text, "argmax"));
    double rmse, mae, x[2];
    veil_model_dequantize(&m->outputs[0], y, 2, x);
    veil_regression_error(m, y, 2, s.targets, &rmse, &mae);
    CU_ASSERT(fabs(rmse - sqrt(((x[0] - 151.5) * (x[0] - 151.5) + (x[1] - 75) * (x[1] - 75)) / 2)) <
              1e-9);
    CU_ASSERT(fabs(mae - (fabs(x[0] - 151.5) + fabs(x[1] - 75)) / 2) < 1e-9);
    free(text);
    veil_model_samples_free(&s, m->n_inputs, 0);
    /* a CSV row of two targets for an output of one value: refused */
    write_file(path, "0.5,1,0,-1,151.5,3\n");
    CU_ASSERT_EQUAL(veil_inputs_read(path, m, 0, &s, NULL), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "expected 4 (or 5 with a target)"));
    /* .h5 with float /y: targets (a classifier ignores a float /y) */
    snprintf(path, sizeof path, "%s/in.h5", dir);
    for (int rank = 1; rank <= 2; rank++) {
        for (int cols = 1; cols <= (rank == 2 ? 2 : 1); cols++) {
            H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
            hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
            const double xv[3 * 4] = {0.1, 0.2, 0.3, 0.4, 0, 0, 0, 0, -1, 1, -1, 1};
            const double yv[6] = {100.25, 200.5, 300.75, 1, 2, 3};
            hsize_t dx[2] = {3, 4}, dy[2] = {3, (hsize_t)cols};
            hid_t sp = H5Screate_simple(2, dx, NULL);
            hid_t d = H5Dcreate2(f, "x", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, xv);
            H5Dclose(d);
            H5Sclose(sp);
            sp = H5Screate_simple(rank, dy, NULL);
            d = H5Dcreate2(f, "y", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, yv);
            H5Dclose(d);
            H5Sclose(sp);
            H5Fclose(f);
            veil_status st = veil_inputs_read(path, m, 0, &s, NULL);
            if (cols == 1) {
                CU_ASSERT_EQUAL(st, VEIL_OK);
                CU_ASSERT_PTR_NOT_NULL(s.targets);
                if (s.targets) CU_ASSERT_EQUAL(s.targets[2], 300.75);
                veil_model_samples_free(&s, m->n_inputs, 0);
            } else {
                CU_ASSERT_EQUAL(st, VEIL_ERR_FORMAT);
                CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(),
                                              "in.h5: /y: targets of rank 2 (2 per sample) for "
                                              "output 'y' of 1 value: expected [3] or [3, 1]"));
            }
        }
    }
    veil_test_rm_rf(dir);
    veil_model_free(m);
}

/* Targets from an .npy input's _labels.npy sibling: float [S] or integer
 * [S, 1] taken; a scalar (shape ()), a NaN and a count that is not the
 * samples' refused, each naming the file and what is wrong (a scalar's
 * message once gave an uninitialized dimension as its target count). */
static void test_npy_targets(void) {
    veil_model *m = veil_test_load_model(k_model);
    char dir[256], path[400], lp[400];
    CU_ASSERT_FATAL(veil_test_mkdtemp("regression", dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/in.npy", dir);
    snprintf(lp, sizeof lp, "%s/in_labels.npy", dir);
    const double xv[2 * 4] = {0.1, 0.2, 0.3, 0.4, -1, 1, -1, 1};
    CU_ASSERT_EQUAL_FATAL(veil_test_write_npy(path, 1, "<f8", "(2, 4)", "False", xv, sizeof xv), 0);
    veil_model_samples s = {0};
    const double tf[2] = {151.5, -3.25};
    const int64_t ti[2] = {7, 300};
    const double tnan[2] = {1, NAN};
    struct {
        const char *descr, *shape;
        const void *data;
        size_t bytes;
        const char *err; /* NULL: taken */
        double t1;
    } cases[] = {
        /* first: a scalar's message came from a dimension read_npy left
         * unset (what an earlier read left on the stack) */
        {"<f8", "()", tf, sizeof tf[0],
         "in_labels.npy: targets of rank 0 (1 per sample) for output 'y' of 1 value: expected "
         "[2] or [2, 1]",
         0},
        {"<f8", "(2,)", tf, sizeof tf, NULL, -3.25},
        {"<i8", "(2, 1)", ti, sizeof ti, NULL, 300},
        {"<f8", "(2,)", tnan, sizeof tnan, "in_labels.npy: target nan of sample 1 is not finite",
         0},
        {"<f8", "(1,)", tf, sizeof tf[0], "in_labels.npy: 1 targets for 2 samples", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        CU_ASSERT_EQUAL_FATAL(veil_test_write_npy(lp, 1, cases[c].descr, cases[c].shape, "False",
                                                  cases[c].data, cases[c].bytes),
                              0);
        const veil_status st = veil_inputs_read(path, m, 0, &s, NULL);
        if (!cases[c].err) {
            CU_ASSERT_EQUAL(st, VEIL_OK);
            CU_ASSERT_PTR_NULL(s.labels);
            CU_ASSERT(s.count == 2 && s.targets && s.targets[1] == cases[c].t1);
            veil_model_samples_free(&s, m->n_inputs, 0);
            continue;
        }
        CU_ASSERT_EQUAL(st, VEIL_ERR_FORMAT);
        if (!strstr(veil_error_message(), cases[c].err))
            fprintf(stderr, "\n  case %zu: got: %s\n", c, veil_error_message());
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), cases[c].err));
    }
    veil_test_rm_rf(dir);
    veil_model_free(m);
}

/* The model file at path with its task attribute set to task (a fixed
 * length string of strlen(task) + 1 bytes). */
static void set_task(const char *path, const char *task) {
    size_t len = 0;
    char *bytes = veil_test_read_file(veil_test_path(k_model), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f && fwrite(bytes, 1, len, f) == len);
    fclose(f);
    free(bytes);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(h >= 0);
    H5Adelete(h, "task");
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(task) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(h, "task", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, task);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(h);
}

/* A file whose task is neither classification nor regression is refused,
 * the message naming the file and the value; a long value is cut, so the
 * message still says what this veil reads (a task of 2000 bytes filled the
 * error buffer before that). */
static void test_unknown_task_refused(void) {
    char dir[256], path[400];
    CU_ASSERT_FATAL(veil_test_mkdtemp("regression", dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/ranker.h5", dir);
    set_task(path, "ranking");
    veil_model *m = NULL;
    CU_ASSERT_EQUAL(veil_model_load(path, &m), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(m);
    const char *msg = veil_error_message();
    if (!strstr(msg, "ranking")) fprintf(stderr, "\n  got: %s\n", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, path));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(msg, "/task: 'ranking', this veil reads 'classification' or 'regression'"));
    char long_task[2001];
    memset(long_task, 'r', 2000);
    long_task[2000] = 0;
    set_task(path, long_task);
    CU_ASSERT_EQUAL(veil_model_load(path, &m), VEIL_ERR_UNSUPPORTED);
    msg = veil_error_message();
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "/task: 'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr' (cut), "
                                       "this veil reads 'classification' or 'regression'"));
    veil_test_rm_rf(dir);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("regression", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_load_regressor);
    VEIL_ADD_TEST(s, test_run_prints_error);
    VEIL_ADD_TEST(s, test_encrypted_cpu_equals_simulate);
    VEIL_ADD_TEST(s, test_targets_from_inputs);
    VEIL_ADD_TEST(s, test_npy_targets);
    VEIL_ADD_TEST(s, test_unknown_task_refused);
    return veil_test_run();
}
