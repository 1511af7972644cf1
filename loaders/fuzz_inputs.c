/* fuzz_inputs — libFuzzer target for the readers of `veil run`, `veil
 * encrypt` and `veil remote` inputs that parse bytes themselves: .npy (magic,
 * version, header dictionary, dtype, shape, data, and the `_labels.npy`
 * sibling) and .csv (header line, separators, numbers, labels, quantized or
 * float), for a classifier and a regressor (float targets: the `_labels.npy`
 * sibling or the CSV's last columns). The first input byte picks the format,
 * the flags and the model; the rest is the file. veil_inputs_read must answer
 * with an error or samples of the model's input shape inside its range (a
 * regressor's with finite targets or none), without crashing or leaking.
 * (.h5 inputs go through libhdf5, whose guard fuzz_model's raw mode tests.)
 *
 * The models are built here: one input of shape [2, 3], 4 bits signed, scale
 * 0.25, range [-8, 7], one output (the input). Seeds:
 * VEIL_FUZZ_INPUTS_SEEDS=DIR writes a few valid files of each format into
 * DIR and exits (scripts/fuzz.sh). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "veil/loader.h"

static veil_model *g_model, *g_regressor;
static char g_dir[128];

static void cleanup(void) {
    char p[256];
    snprintf(p, sizeof p, "%s/in.csv", g_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/in.npy", g_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/in_labels.npy", g_dir);
    unlink(p);
    rmdir(g_dir);
    veil_model_free(g_model);
    veil_model_free(g_regressor);
}

static char *dup_str(const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

/* regression 0: the classifier below; 1: a regressor (task "regression"),
 * whose targets are [S, 6] (output 0 is the input) */
static veil_model *make_model(int regression) {
    veil_model *m = NULL;
    if (veil_model_new(&m)) return NULL;
    m->name = dup_str("fuzz");
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->inputs[0].name = dup_str("x");
    m->inputs[0].shape = (veil_shape){2, {2, 3}};
    m->inputs[0].n_bits = 4;
    m->inputs[0].scale = 0.25;
    m->inputs[0].range[0] = -8;
    m->inputs[0].range[1] = 7;
    m->n_outputs = 1;
    m->outputs = calloc(1, sizeof *m->outputs);
    m->outputs[0].name = dup_str("y");
    m->outputs[0].source = dup_str("x");
    m->outputs[0].shape = m->inputs[0].shape;
    if (regression) m->task = dup_str("regression");
    m->outputs[0].n_scale = 1;
    m->outputs[0].scale = malloc(sizeof(double));
    m->outputs[0].scale[0] = 1;
    m->outputs[0].zero_point = calloc(1, sizeof(double));
    return m;
}

static int write_file(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const int ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A .npy v1 file: header dict, then n values of `size` bytes from vals. */
static size_t npy(uint8_t *out, const char *descr, const char *shape, const void *vals,
                  size_t bytes) {
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                      descr, shape);
    size_t hl = (size_t)dl + 1;
    while ((10 + hl) % 64)
        hl++;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)(hl & 0xff);
    out[9] = (uint8_t)(hl >> 8);
    memset(out + 10, ' ', hl);
    memcpy(out + 10, dict, (size_t)dl);
    out[10 + hl - 1] = '\n';
    memcpy(out + 10 + hl, vals, bytes);
    return 10 + hl + bytes;
}

static void write_seeds(const char *dir) {
    uint8_t buf[1024];
    char path[512];
    const int64_t iv[12] = {-8, -1, 0, 1, 2, 7, 3, 3, -2, 5, 6, -7};
    const double dv[12] = {-2, -0.25, 0, 0.25, 0.5, 1.75, 0.7, 0.8, -0.6, 1.2, 1.5, -1.9};
    const float fv[12] = {-2, -0.25f, 0, 0.25f, 0.5f, 1.75f, 0.7f, 0.8f, -0.6f, 1.2f, 1.5f, -1.9f};
    const int8_t bv[12] = {-8, -1, 0, 1, 2, 7, 3, 3, -2, 5, 6, -7};
    struct {
        const char *name, *descr, *shape;
        const void *v;
        size_t bytes;
    } npys[] = {
        {"i8", "<i8", "(2, 2, 3)", iv, sizeof iv},
        {"f8", "<f8", "(2, 6)", dv, sizeof dv},
        {"f4", "<f4", "(2, 2, 3)", fv, sizeof fv},
        {"i1", "|i1", "(2, 6)", bv, sizeof bv},
    };
    for (size_t i = 0; i < sizeof npys / sizeof npys[0]; i++) {
        buf[0] = 0; /* format byte: .npy, no flags */
        size_t n = 1 + npy(buf + 1, npys[i].descr, npys[i].shape, npys[i].v, npys[i].bytes);
        snprintf(path, sizeof path, "%s/npy-%s", dir, npys[i].name);
        write_file(path, buf, n);
    }
    const char *csvs[][2] = {
        {"\x01", "x0,x1,x2,x3,x4,x5\n-2,-0.25,0,0.25,0.5,1.75\n0.7,0.8,-0.6,1.2,1.5,-1.9\n"},
        {"\x03", "-8,-1,0,1,2,7\n3,3,-2,5,6,-7\n"},                  /* quantized */
        {"\x01", "-2,-0.25,0,0.25,0.5,1.75,1\n1e400,0,0,0,0,0,0\n"}, /* labels, clamped */
    };
    /* a regressor's (bit 4): targets in the last six CSV columns, or (bit 3,
     * npy) the input's bytes as its _labels.npy too: [2, 6] float targets */
    const char *rcsvs[][2] = {
        {"\x11", "-2,-0.25,0,0.25,0.5,1.75,1.5,-3,0,2e3,1,1\n"
                 "0.7,0.8,-0.6,1.2,1.5,-1.9,0,2,1,1,1,1\n"},
        {"\x13", "-8,-1,0,1,2,7,1,2,3,4,5,6\n3,3,-2,5,6,-7,nan,1,1,1,1,1\n"},
    };
    for (size_t i = 0; i < sizeof rcsvs / sizeof rcsvs[0]; i++) {
        size_t n = strlen(rcsvs[i][1]);
        buf[0] = (uint8_t)rcsvs[i][0][0];
        memcpy(buf + 1, rcsvs[i][1], n);
        snprintf(path, sizeof path, "%s/csv-regression-%zu", dir, i);
        write_file(path, buf, n + 1);
    }
    buf[0] = 16 | 8;
    const size_t rn = 1 + npy(buf + 1, "<f8", "(2, 6)", dv, sizeof dv);
    snprintf(path, sizeof path, "%s/npy-regression", dir);
    write_file(path, buf, rn);
    for (size_t i = 0; i < sizeof csvs / sizeof csvs[0]; i++) {
        size_t n = strlen(csvs[i][1]);
        buf[0] = (uint8_t)csvs[i][0][0];
        memcpy(buf + 1, csvs[i][1], n);
        snprintf(path, sizeof path, "%s/csv-%zu", dir, i);
        write_file(path, buf, n + 1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_model = make_model(0);
    g_regressor = make_model(1);
    if (!g_model || veil_model_validate(g_model) || !g_regressor ||
        veil_model_validate(g_regressor)) {
        fprintf(stderr, "fuzz_inputs: the model does not validate: %s\n", veil_error_message());
        abort();
    }
    const char *seeds = getenv("VEIL_FUZZ_INPUTS_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/veil_fuzz_inputs_%d", (int)getpid());
    if (mkdir(g_dir, 0700) && errno != EEXIST) abort();
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t sel = data[0];
    const int csv = sel & 1;
    const unsigned flags =
        (sel & 2 ? VEIL_INPUTS_QUANTIZED : 0) | (sel & 4 ? VEIL_INPUTS_STRICT_RANGE : 0);
    /* bit 4: the regressor, whose labels are float targets */
    const veil_model *m = sel & 16 ? g_regressor : g_model;
    char path[256], labels[256];
    snprintf(path, sizeof path, "%s/in.%s", g_dir, csv ? "csv" : "npy");
    snprintf(labels, sizeof labels, "%s/in_labels.npy", g_dir);
    /* bit 3 (npy): the same bytes as the labels sibling too */
    unlink(labels);
    if (write_file(path, data + 1, size - 1)) abort();
    if (!csv && (sel & 8) && write_file(labels, data + 1, size - 1)) abort();
    veil_model_samples s;
    veil_inputs_report rep;
    if (veil_inputs_read(path, m, flags, &s, &rep) == VEIL_OK) {
        const size_t per = veil_shape_size(&m->inputs[0].shape);
        for (size_t i = 0; i < s.count * per; i++)
            if (s.inputs[0][i] < m->inputs[0].range[0] || s.inputs[0][i] > m->inputs[0].range[1])
                abort(); /* a value outside the input range was let through */
        /* a regressor's samples carry finite targets or none, never labels */
        if ((s.labels && m == g_regressor) || (s.targets && m != g_regressor)) abort();
        const size_t k = veil_shape_size(&m->outputs[0].shape);
        for (size_t i = 0; s.targets && i < s.count * k; i++)
            if (!isfinite(s.targets[i])) abort();
        veil_model_samples_free(&s, m->n_inputs, 0);
    } else if (!*veil_error_message()) {
        abort(); /* an error must say what */
    }
    return 0;
}
