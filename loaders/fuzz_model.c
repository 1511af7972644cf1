/* fuzz_model — libFuzzer target for the model loader's validator and the
 * compiler behind it.
 *
 * libhdf5 is not hardened against corrupt bytes, so the fuzzer does not feed
 * it random files: the input bytes drive a generator that writes a
 * STRUCTURALLY valid schema-v1 file with the HDF5 API (right groups, types
 * and dataset sizes) whose CONTENT is arbitrary: shapes that disagree between
 * layers, operands that do not exist or come later, ranges out of order,
 * tables of the wrong length, per-channel counts, strides, padding, huge or
 * negative values, golden labels and a task (a regressor's float targets of
 * the wrong count or shape, NaN or infinite). veil_model_load must answer
 * with an error naming a path or a model that then compiles (worst-case
 * bounds, simulate only) and simulates its golden inputs without crashing or
 * leaking (a regressor's targets finite).
 *
 * An input that starts with 'R' is instead a raw file: the rest of the bytes,
 * seeded with the real models (scripts/fuzz.sh) and mutated byte by byte,
 * loaded through veil_model_load, whose checking process (veil-h5check) must turn any
 * libhdf5 crash into an error. (libFuzzer sees no coverage from the child,
 * so this mode is a random mutation test of the guard, not a guided one.)
 *
 * Seeds: run with VEIL_FUZZ_MODEL_SEEDS=DIR, the target writes its own small
 * seed corpus into DIR and exits (write_seeds; scripts/fuzz.sh does it):
 * generator inputs of at most 320 bytes whose models load, a few that are
 * refused, a few of those loading ones made regressors (write_regression_seed),
 * and raw-mode seeds ('R' + the HDF5 file of a loading model, a few
 * kB) with mutated copies. The real sample models (30 to 116 kB, each run
 * loading in a checking child, compiling and simulating its golden set) as
 * seeds held the target to about one run a second. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"
#include "veil/loader.h"
#include "veil/program.h"

typedef struct src {
    const uint8_t *p;
    size_t n;
    const uint8_t *labels_at; /* p when golden_labels began (write_seeds), or NULL */
} src;

static uint8_t u8(src *s) {
    if (!s->n) return 0;
    s->n--;
    return *s->p++;
}

/* small integers, occasionally extreme */
static int64_t i64(src *s) {
    uint8_t k = u8(s);
    switch (k >> 5) {
    case 0:
        return (int64_t)(int8_t)u8(s);
    case 1:
        return (int64_t)(k & 31);
    case 2:
        return -(int64_t)(k & 31);
    case 3:
        return (int64_t)(int16_t)(u8(s) | u8(s) << 8);
    case 4:
        return (int64_t)1 << (u8(s) % 63);
    case 5:
        return -((int64_t)1 << (u8(s) % 63));
    default:
        return (int64_t)(k & 7);
    }
}

static void attr_str(hid_t o, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void attr_i64(hid_t o, const char *name, const int64_t *v, hsize_t n) {
    hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void attr_f64(hid_t o, const char *name, double v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void dataset(src *s, hid_t o, const char *name, int rank, const hsize_t *dims, int64_t lo,
                    int64_t span) {
    hsize_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    if (n > 1 << 16) return;
    int64_t *v = malloc((n ? n : 1) * sizeof *v);
    for (hsize_t i = 0; i < n; i++)
        v[i] = span > 0 ? lo + (int64_t)(u8(s) % (uint64_t)span) : i64(s);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(o, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Sclose(sp);
    free(v);
}

/* /golden/labels, after the golden outputs (none when the input ends): int64
 * class labels or a regressor's float64 targets, [count] or [count, k] (k
 * output 0's first dimension, or the next byte), the count sometimes one
 * off, values sometimes NaN or infinite. */
static void golden_labels(src *s, hid_t g, hsize_t count, hsize_t k) {
    s->labels_at = s->p;
    const uint8_t how = u8(s);
    if (!(how & 1)) return;
    hsize_t d[2] = {count + (how & 2 ? 1 : 0), how & 8 ? u8(s) : k};
    const int rank = how & 4 ? 2 : 1;
    if (!(how & 16)) {
        dataset(s, g, "labels", rank, d, 0, 10);
        return;
    }
    const hsize_t n = d[0] * (rank == 2 ? d[1] : 1);
    double *v = malloc(n * sizeof *v);
    for (hsize_t i = 0; i < n; i++) {
        const uint8_t b = u8(s);
        v[i] = b == 255 ? NAN : b == 254 ? -INFINITY : (b - 128) * 0.75;
    }
    hid_t sp = H5Screate_simple(rank, d, NULL);
    hid_t ds = H5Dcreate2(g, "labels", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
    free(v);
}

static const char *const k_ops[] = {"linear", "lut",       "flatten", "add", "conv2d", "avgpool2d",
                                    "concat", "maxpool2d", "reshape", "sub", "mul"};
#define N_OPS (sizeof k_ops / sizeof *k_ops)

static void write_model(src *s, const char *path) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return;
    attr_str(f, "format", "veil-model");
    int64_t one = u8(s) < 250 ? 1 : 2;
    attr_i64(f, "version", &one, 0);
    attr_str(f, "name", "fuzz");
    /* input x: [d] or [c, h, w] */
    hid_t gi = H5Gcreate2(f, "/inputs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t x = H5Gcreate2(gi, "x", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int img = u8(s) & 1;
    int64_t shape[3] = {1 + u8(s) % 4, 1 + u8(s) % 6, 1 + u8(s) % 6};
    attr_i64(x, "shape", img ? shape : shape + 1, img ? 3 : 1);
    attr_f64(x, "scale", u8(s) == 0 ? -1.0 : 0.25);
    int64_t zp = 0, nb = 1 + u8(s) % 6, sg = u8(s) & 1;
    attr_i64(x, "zero_point", &zp, 0);
    attr_i64(x, "n_bits", &nb, 0);
    attr_i64(x, "signed", &sg, 0);
    int64_t range[2] = {sg ? -(1 << (nb - 1)) : 0, sg ? (1 << (nb - 1)) - 1 : (1 << nb) - 1};
    if (u8(s) == 0) range[0] = i64(s);
    attr_i64(x, "range", range, 2);
    H5Gclose(x);
    H5Gclose(gi);
    /* layers */
    hid_t gl = H5Gcreate2(f, "/layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    unsigned n_layers = 1 + u8(s) % 5;
    char names[8][32];
    for (unsigned li = 0; li < n_layers; li++) {
        const char *op = k_ops[u8(s) % N_OPS];
        snprintf(names[li], sizeof names[li], "%04u_%s", li, op);
        hid_t l = H5Gcreate2(gl, names[li], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        attr_str(l, "op", op);
        /* operands: the previous tensor usually, else something else */
        const char *prev = li ? names[li - 1] : "x";
        uint8_t pick = u8(s);
        const char *a = pick < 200 ? prev : pick < 230 ? "x" : pick < 250 ? "nosuch" : names[li];
        int n_in = (!strcmp(op, "add") || !strcmp(op, "sub") || !strcmp(op, "mul") ||
                    !strcmp(op, "concat"))
                       ? 2
                       : 1;
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 32);
        char buf[2][32] = {{0}};
        snprintf(buf[0], 32, "%s", a);
        snprintf(buf[1], 32, "%s", u8(s) & 1 ? a : "x");
        hsize_t ni = (hsize_t)n_in;
        hid_t sp = H5Screate_simple(1, &ni, NULL);
        hid_t at = H5Acreate2(l, "inputs", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(at, t, buf);
        H5Aclose(at);
        H5Sclose(sp);
        H5Tclose(t);
        int64_t osh[3] = {1 + u8(s) % 8, 1 + u8(s) % 6, 1 + u8(s) % 6};
        int orank = 1 + u8(s) % 3;
        attr_i64(l, "shape", osh, (hsize_t)orank);
        int64_t r[2] = {i64(s), i64(s)};
        if (r[0] > r[1] && u8(s) < 240) {
            int64_t tmp = r[0];
            r[0] = r[1];
            r[1] = tmp;
        }
        attr_i64(l, "range", r, 2);
        if (!strcmp(op, "linear")) {
            hsize_t d[2] = {1 + u8(s) % 8, 1 + u8(s) % 40};
            dataset(s, l, "weight", 2, d, -3, 7);
            if (u8(s) & 1) dataset(s, l, "bias", 1, d, -20, 41);
        } else if (!strcmp(op, "conv2d")) {
            hsize_t d[4] = {1 + u8(s) % 4, 1 + u8(s) % 4, 1 + u8(s) % 3, 1 + u8(s) % 3};
            dataset(s, l, "weight", 4, d, -3, 7);
            int64_t st[2] = {1 + u8(s) % 2, 1 + u8(s) % 2}, pd[2] = {u8(s) % 2, u8(s) % 2};
            attr_i64(l, "strides", st, 2);
            attr_i64(l, "padding", pd, 2);
        } else if (!strcmp(op, "avgpool2d") || !strcmp(op, "maxpool2d")) {
            int64_t k[2] = {1 + u8(s) % 3, 1 + u8(s) % 3}, st[2] = {1 + u8(s) % 3, 1 + u8(s) % 3};
            attr_i64(l, "kernel", k, 2);
            attr_i64(l, "strides", st, 2);
            if (u8(s) < 20) {
                int64_t pd[2] = {u8(s) % 2, u8(s) % 2};
                attr_i64(l, "padding", pd, 2);
            }
        } else if (!strcmp(op, "concat")) {
            int64_t ax = u8(s) % 2;
            attr_i64(l, "axis", &ax, 0);
        } else if (!strcmp(op, "lut")) {
            int64_t lo = i64(s) % 200, w = u8(s) % 64;
            int64_t hi = lo + (u8(s) < 250 ? w : -w - 1);
            int64_t pc = u8(s) & 1;
            attr_i64(l, "in_min", &lo, 0);
            attr_i64(l, "in_max", &hi, 0);
            attr_i64(l, "per_channel", &pc, 0);
            hsize_t T = (hsize_t)(hi >= lo ? hi - lo + 1 : 1) + (u8(s) < 245 ? 0 : 1);
            hsize_t d[2] = {pc ? 1 + u8(s) % 8 : T, T};
            dataset(s, l, "table", pc ? 2 : 1, d, -8, 17);
        }
        H5Gclose(l);
    }
    H5Gclose(gl);
    /* output */
    hid_t go = H5Gcreate2(f, "/outputs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t o = H5Gcreate2(go, "y", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    attr_str(o, "tensor", u8(s) < 250 ? names[n_layers - 1] : "nosuch");
    int64_t ysh[3] = {1 + u8(s) % 8, 1 + u8(s) % 6, 1 + u8(s) % 6};
    attr_i64(o, "shape", ysh, 1 + u8(s) % 3);
    attr_f64(o, "scale", 0.5);
    attr_f64(o, "zero_point", 0.0);
    H5Gclose(o);
    H5Gclose(go);
    /* golden inputs (values drawn inside or outside the input range) */
    if (u8(s) & 1) {
        hid_t g = H5Gcreate2(f, "/golden", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t gin = H5Gcreate2(g, "inputs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t d[4] = {1 + u8(s) % 3, (hsize_t)shape[img ? 0 : 1], (hsize_t)shape[1],
                        (hsize_t)shape[2]};
        if (!img) d[1] = (hsize_t)shape[1];
        dataset(s, gin, "x", img ? 4 : 2, d, range[0], range[1] - range[0] + 1);
        hid_t gout = H5Gcreate2(g, "outputs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t od[4] = {d[0], (hsize_t)ysh[0], (hsize_t)ysh[1], (hsize_t)ysh[2]};
        dataset(s, gout, "y", 2, od, 0, 1);
        H5Gclose(gout);
        H5Gclose(gin);
        golden_labels(s, g, d[0], (hsize_t)ysh[0]);
        H5Gclose(g);
    }
    /* the task, last (an input that ends before it reads as none): a
     * regressor's golden labels are float targets (golden_labels) */
    static const char *const tasks[] = {NULL, "classification", "regression", "regressio"};
    const char *task = tasks[u8(s) % 4];
    if (task) attr_str(f, "task", task);
    H5Fclose(f);
}

/* A model that loads compiles (worst-case bounds, simulate only) and
 * simulates its golden inputs. */
static void run_model(const veil_model *m, size_t size) {
    /* a regressor's golden samples carry finite targets, never labels; a
     * classifier's no targets */
    const int reg = veil_model_is_regression(m);
    if ((m->golden.targets && !reg) || (m->golden.labels && reg)) abort();
    const size_t k = m->golden.targets ? veil_shape_size(&m->outputs[0].shape) : 0;
    for (size_t i = 0; i < m->golden.count * k; i++)
        if (!isfinite(m->golden.targets[i])) abort();
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE;
    o.simulate_only = 1;
    o.rounding_bits = (unsigned)(size % 9);
    veil_program *p = NULL;
    if (veil_program_compile(m, &o, &p) == VEIL_OK && m->golden.count) {
        int64_t *out[64] = {0};
        for (uint32_t i = 0; i < p->n_outputs; i++)
            out[i] = malloc(m->golden.count * veil_program_output_size(p, i) * 8 + 8);
        veil_sim_stats ss;
        veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, m->golden.count, out,
                              NULL, &ss);
        for (uint32_t i = 0; i < p->n_outputs; i++)
            free(out[i]);
    }
    veil_program_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Raw mode: the bytes after 'R' are an HDF5 file (seeds: the real models,
 * scripts/fuzz.sh). */
static int fuzz_raw(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || w != size) return 0;
    veil_model *m = NULL;
    if (veil_model_load(path, &m) == VEIL_OK) {
        run_model(m, size);
        veil_model_free(m);
    }
    return 0;
}

/* splitmix64: the seed writer's fixed stream */
static uint64_t seed_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int write_bytes(const char *path, const char *prefix, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = (!prefix || fputs(prefix, f) >= 0) && fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Reads a whole file (malloc'd, *len), NULL on failure. */
static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *img = NULL;
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (img = malloc((size_t)n)) && fread(img, 1, (size_t)n, f) != (size_t)n) {
        free(img);
        img = NULL;
    }
    if (f) fclose(f);
    *len = img ? (size_t)n : 0;
    return img;
}

enum { SEEDS_OK = 12, SEEDS_REFUSED = 4, SEEDS_RAW = 4, SEEDS_REGRESSION = 4, SEED_TRIES = 20000 };

/* A regressor from a loading seed m: its first `prefix` bytes (up to
 * golden_labels), then float targets [count, K] (K output 0's values) and
 * the task "regression"; written to dir as gen-regression-I when it loads
 * with its targets. */
static int write_regression_seed(const char *dir, const char *tmp, const uint8_t *buf,
                                 size_t prefix, const veil_model *m, unsigned i) {
    const size_t k = m->n_outputs ? veil_shape_size(&m->outputs[0].shape) : 0;
    const size_t n = prefix + 2 + m->golden.count * k + 1;
    if (!m->golden.count || !k || k > 255 || n > 4096) return 0;
    uint8_t seed[4096];
    memcpy(seed, buf, prefix);
    size_t at = prefix;
    seed[at++] = 1 | 4 | 8 | 16; /* float targets of rank 2, k from the next byte */
    seed[at++] = (uint8_t)k;
    for (size_t j = 0; j < m->golden.count * k; j++)
        seed[at++] = (uint8_t)(100 + j % 50);
    seed[at++] = 2; /* "regression" */
    src s = {seed, at, NULL};
    write_model(&s, tmp);
    size_t len = 0;
    uint8_t *img = read_all(tmp, &len);
    veil_model *r = NULL;
    int loads = img && veil_model_load_image_unguarded(img, len, tmp, &r) == VEIL_OK &&
                veil_model_is_regression(r) && r->golden.targets;
    veil_model_free(r);
    free(img);
    char path[4200];
    snprintf(path, sizeof path, "%s/gen-regression-%u", dir, i);
    return loads && write_bytes(path, NULL, seed, at);
}

/* The seed corpus (see the top of this file) into dir, from a fixed stream:
 * generator inputs tried until SEEDS_OK load (bytes uniform, or mostly zero,
 * which the generator reads as the smallest shapes); SEEDS_REFUSED refused
 * ones; SEEDS_RAW of the loading models' files as raw seeds, each also with
 * 8 bytes overwritten. Returns 0 when not one loading model was found. */
static int write_seeds(const char *dir) {
    char path[4200], tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.model.h5", dir);
    uint64_t st = 0x5eed5eed5eedull;
    unsigned ok = 0, refused = 0, raw = 0, regression = 0, tries = 0;
    uint8_t buf[320];
    for (; tries < SEED_TRIES && ok < SEEDS_OK; tries++) {
        const size_t n = 48 + seed_rand(&st) % (sizeof buf - 48);
        const int sparse = tries & 1;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = seed_rand(&st);
            buf[i] = sparse && r % 4 ? 0 : (uint8_t)(r >> 8);
        }
        src s = {buf, n, NULL};
        write_model(&s, tmp);
        size_t len = 0;
        uint8_t *img = read_all(tmp, &len);
        veil_model *m = NULL;
        const int loads =
            img && veil_model_load_image_unguarded(img, len, tmp, &m) == VEIL_OK && m->n_layers;
        if (loads && s.labels_at && regression < SEEDS_REGRESSION &&
            write_regression_seed(dir, tmp, buf, (size_t)(s.labels_at - buf), m, regression))
            regression++;
        veil_model_free(m);
        if (loads || refused < SEEDS_REFUSED) {
            snprintf(path, sizeof path, "%s/gen-%s-%u", dir, loads ? "ok" : "refused",
                     loads ? ok : refused);
            if (!write_bytes(path, NULL, buf, n)) return 0;
            *(loads ? &ok : &refused) += 1;
        }
        if (loads && img && raw < SEEDS_RAW) {
            snprintf(path, sizeof path, "%s/raw-%u", dir, raw);
            if (!write_bytes(path, "R", img, len)) return 0;
            for (int k = 0; k < 8; k++)
                img[seed_rand(&st) % len] = (uint8_t)seed_rand(&st);
            snprintf(path, sizeof path, "%s/raw-%u-mutated", dir, raw);
            if (!write_bytes(path, "R", img, len)) return 0;
            raw++;
        }
        free(img);
    }
    unlink(tmp);
    fprintf(stderr,
            "fuzz_model seeds: %u loading, %u refused, %u raw (+%u mutated), %u regressors in %u "
            "tries\n",
            ok, refused, raw, raw, regression, tries);
    return ok > 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("VEIL_FUZZ_MODEL_SEEDS");
    if (!dir) return 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    exit(write_seeds(dir) ? 0 : 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/veil_fuzz_model_%d.h5", (int)getpid());
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    }
    if (size > 0 && data[0] == 'R') {
        fuzz_raw(path, data + 1, size - 1);
        unlink(path);
        return 0;
    }
    src s = {data, size, NULL};
    write_model(&s, path);
    /* In this process (no checking child): the coverage of every error path
     * reaches libFuzzer, and these files are structurally valid. */
    FILE *f = fopen(path, "rb");
    uint8_t *img = NULL;
    long len = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (img = malloc((size_t)len)) && fread(img, 1, (size_t)len, f) == (size_t)len) {
        veil_model *m = NULL;
        if (veil_model_load_image_unguarded(img, (size_t)len, path, &m) == VEIL_OK) {
            run_model(m, size);
            veil_model_free(m);
        }
    }
    free(img);
    if (f) fclose(f);
    unlink(path);
    return 0;
}
