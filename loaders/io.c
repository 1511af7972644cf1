/* io.c — inputs of `veil run` (.h5, .npy, .csv) and its outputs. */
#include <ctype.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"
#include "veil/atomic_file.h"
#include "veil/loader.h"

static const char *ext_of(const char *path) {
    const char *d = strrchr(path, '.');
    return d ? d + 1 : "";
}

/* How float inputs are checked (veil_inputs_read's flags and report). */
typedef struct quant_policy {
    unsigned flags;
    veil_inputs_report *report; /* may be NULL */
} quant_policy;

/* Converts raw values (floats to quantize, or integers already quantized) of
 * count samples into the quantized int64 array of input `in`. NaN is refused
 * naming the sample and feature; a float outside the input's range (±inf,
 * 1e400, or just too large) is clamped and counted in the report, or refused
 * with VEIL_INPUTS_STRICT_RANGE. */
static veil_status to_quantized(const char *what, const veil_model_input *in, int is_float,
                                const void *data, size_t count, const quant_policy *pol,
                                int64_t **out) {
    const size_t per = veil_shape_size(&in->shape);
    size_t n = count * per;
    if (is_float) {
        const double *x = data;
        for (size_t i = 0; i < n; i++)
            if (isnan(x[i]))
                return veil_error(VEIL_ERR_RANGE,
                                  "%s: sample %zu, feature %zu of input '%s' is NaN", what, i / per,
                                  i % per, in->name);
    }
    int64_t *q = malloc(n * sizeof *q + 1);
    if (!q) return veil_error(VEIL_ERR_NOMEM, "%s: out of memory", what);
    if (is_float) {
        const double *x = data;
        size_t i = 0, clipped = veil_model_quantize(in, x, n, q, &i);
        if (clipped && (pol->flags & VEIL_INPUTS_STRICT_RANGE)) {
            free(q);
            return veil_error(VEIL_ERR_RANGE,
                              "%s: sample %zu, feature %zu of input '%s' is %g, outside the "
                              "range [%g, %g] it can be quantized to (--strict-range)",
                              what, i / per, i % per, in->name, x[i],
                              in->scale * (double)in->range[0], in->scale * (double)in->range[1]);
        }
        if (clipped && pol->report) {
            pol->report->clamped += clipped;
            if (!pol->report->first[0])
                snprintf(pol->report->first, sizeof pol->report->first,
                         "%.100s: sample %zu, feature %zu of input '%s' is %g, clamped to %g", what,
                         i / per, i % per, in->name, x[i], in->scale * (double)q[i]);
        }
    } else {
        const int64_t *v = data;
        for (size_t i = 0; i < n; i++) {
            if (v[i] < in->range[0] || v[i] > in->range[1]) {
                free(q);
                return veil_error(VEIL_ERR_RANGE,
                                  "%s: quantized value %lld of sample %zu is outside the range "
                                  "[%lld, %lld] of input '%s' (float data must have a float type)",
                                  what, (long long)v[i], i / per, (long long)in->range[0],
                                  (long long)in->range[1], in->name);
            }
            q[i] = v[i];
        }
    }
    *out = q;
    return VEIL_OK;
}

static veil_status alloc_inputs(const veil_model *m, veil_model_samples *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->inputs = calloc(m->n_inputs, sizeof *s->inputs);
    if (!s->inputs) return veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    return VEIL_OK;
}

/* ---- .h5 --------------------------------------------------------------------- */

static int h5_exists(hid_t f, const char *p) {
    /* H5Lexists fails on a missing intermediate group: check each level */
    char buf[512];
    size_t len = strlen(p);
    if (len >= sizeof buf) return 0;
    memcpy(buf, p, len + 1);
    for (char *c = buf + 1; *c; c++) {
        if (*c == '/') {
            *c = 0;
            if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) return 0;
            *c = '/';
        }
    }
    return H5Lexists(f, buf, H5P_DEFAULT) > 0;
}

/* 1 when path looks like labels: a dataset of integers of rank 1, or for a
 * regressor's targets (regression set) of numbers of rank 1 or 2. */
static int h5_label_like(hid_t f, const char *path, int regression) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    const H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    const int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    const int ok = regression ? (cls == H5T_INTEGER || cls == H5T_FLOAT) && (rank == 1 || rank == 2)
                              : cls == H5T_INTEGER && rank == 1;
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    return ok;
}

/* What libhdf5 reads of an .h5 inputs file: per model input the dataset
 * found and its values, then the labels. This part is what the checker
 * (veil-h5check) repeats from the inputs' names and ranks; the checks and
 * the quantization come after, without libhdf5. */
typedef struct h5_input_raw {
    char found[300]; /* its dataset's path */
    hsize_t dims[8];
    int rank; /* negative: float data */
    void *data;
} h5_input_raw;

typedef struct h5_inputs_raw {
    size_t n; /* model inputs */
    const char *const *names;
    const int *ranks; /* each input's rank; its dataset has one more (samples) */
    h5_input_raw *in; /* n, filled by read_h5_raw */
    int regression;   /* the labels are a regressor's targets */
    char label_path[32];
    hsize_t label_count;
    int64_t *labels;
    /* regression: the targets as read (rank negative: float data) */
    hsize_t target_dims[8];
    int target_rank;
    void *targets;
} h5_inputs_raw;

static void h5_inputs_raw_free(h5_inputs_raw *r) {
    for (size_t i = 0; r->in && i < r->n; i++)
        free(r->in[i].data);
    free(r->in);
    free(r->labels);
    free(r->targets);
    r->in = NULL;
    r->labels = NULL;
    r->targets = NULL;
}

/* A veil_h5_job; messages are prefixed with the file's path by the caller. */
static veil_status read_h5_raw(hid_t f, void *ctx) {
    h5_inputs_raw *raw = ctx;
    raw->in = calloc(raw->n ? raw->n : 1, sizeof *raw->in);
    if (!raw->in) return veil_error(VEIL_ERR_NOMEM, "out of memory");
    veil_status st = VEIL_OK;
    for (size_t i = 0; st == VEIL_OK && i < raw->n; i++) {
        const char *name = raw->names[i];
        h5_input_raw *in = &raw->in[i];
        char cand[4][300];
        snprintf(cand[0], sizeof cand[0], "/golden/inputs/%s", name);
        snprintf(cand[1], sizeof cand[1], "/inputs/%s", name);
        snprintf(cand[2], sizeof cand[2], "/%s", name);
        snprintf(cand[3], sizeof cand[3], "%s", raw->n == 1 ? "/x" : "");
        const char *found = NULL;
        for (int c = 0; c < 4 && !found; c++)
            if (cand[c][0] && h5_exists(f, cand[c])) found = cand[c];
        if (!found && raw->n == 1 && h5_exists(f, "/X")) found = "/X";
        if (!found)
            return veil_error(VEIL_ERR_FORMAT,
                              "no dataset for input '%s' (looked for /golden/inputs/%s, "
                              "/inputs/%s, /%s%s)",
                              name, name, name, name, raw->n == 1 ? ", /x, /X" : "");
        /* (found is one of cand[], or "/X": under 300 bytes; the precision
         * says so to GCC, whose -O2 -Wformat-truncation took it for all
         * four) */
        snprintf(in->found, sizeof in->found, "%.299s", found);
        /* split into group + name */
        char grp[300];
        snprintf(grp, sizeof grp, "%.299s", found);
        char *slash = strrchr(grp, '/');
        const char *dname = found + (slash - grp) + 1;
        *slash = 0;
        hid_t g = H5Gopen2(f, grp[0] ? grp : "/", H5P_DEFAULT);
        st = veil_h5_read(g, grp, dname, 1, 1, 1 + raw->ranks[i], in->dims, &in->rank, &in->data);
        H5Gclose(g);
    }
    const char *lab = NULL;
    if (st == VEIL_OK) {
        /* veil's own names are labels whatever they hold (refused when not
         * integers); /y and /Y only when they look like labels, 1-D
         * integers: a regression target or float labels are no labels here,
         * and no reason to refuse the inputs beside them. A regressor's
         * targets: numbers [S] or [S, K] under the same names. */
        const char *lc[] = {"/golden/labels", "/labels", "/y", "/Y"};
        for (int c = 0; c < 4 && !lab; c++)
            if (h5_exists(f, lc[c]) && (c < 2 || h5_label_like(f, lc[c], raw->regression)))
                lab = lc[c];
    }
    if (st == VEIL_OK && lab && raw->regression) {
        snprintf(raw->label_path, sizeof raw->label_path, "%s", lab);
        const char *dname = strrchr(lab, '/') + 1;
        char grp[64];
        snprintf(grp, sizeof grp, "%.*s", (int)(dname - 1 - lab), lab);
        hid_t g = H5Gopen2(f, grp[0] ? grp : "/", H5P_DEFAULT);
        st = veil_h5_read(g, grp, dname, 1, 1, 2, raw->target_dims, &raw->target_rank,
                          &raw->targets);
        H5Gclose(g);
    } else if (st == VEIL_OK && lab) {
        snprintf(raw->label_path, sizeof raw->label_path, "%s", lab);
        hsize_t dims[8];
        int r = 0;
        const char *dname = strrchr(lab, '/') + 1;
        char grp[64];
        snprintf(grp, sizeof grp, "%.*s", (int)(dname - 1 - lab), lab);
        hid_t g = H5Gopen2(f, grp[0] ? grp : "/", H5P_DEFAULT);
        st = veil_h5_read(g, grp, dname, 0, 1, 1, dims, &r, (void **)&raw->labels);
        H5Gclose(g);
        if (st == VEIL_OK) raw->label_count = dims[0];
    }
    return st;
}

/* The argument after the inputs' names and ranks that says the labels are a
 * regressor's targets. */
static const char k_regression_arg[] = "--regression";

veil_status veil_h5_inputs_check(hid_t file, int argc, char *const *argv) {
    const int regression = argc % 2 && !strcmp(argv[argc - 1], k_regression_arg);
    argc -= regression;
    if (argc < 2 || argc % 2 || argc > 2 * VEIL_MAX_PORTS)
        return veil_error(VEIL_ERR_ARG,
                          "veil-h5check inputs: expected a name and a rank for each "
                          "input (at most %d), got %d arguments",
                          VEIL_MAX_PORTS, argc);
    const char *names[VEIL_MAX_PORTS];
    int ranks[VEIL_MAX_PORTS];
    for (int i = 0; i < argc / 2; i++) {
        char *end = NULL;
        long r = strtol(argv[2 * i + 1], &end, 10);
        if (!*argv[2 * i + 1] || *end || r < 0 || r > VEIL_MAX_RANK)
            return veil_error(VEIL_ERR_ARG, "veil-h5check inputs: rank '%s' of input '%s'",
                              argv[2 * i + 1], argv[2 * i]);
        names[i] = argv[2 * i];
        ranks[i] = (int)r;
    }
    h5_inputs_raw raw = {
        .n = (size_t)argc / 2, .names = names, .ranks = ranks, .regression = regression};
    veil_status st = read_h5_raw(file, &raw);
    h5_inputs_raw_free(&raw);
    return st;
}

/* The checks and the quantization of what read_h5_raw found. */
static veil_status h5_raw_to_samples(const veil_model *m, const h5_inputs_raw *raw,
                                     veil_model_samples *s, const quant_policy *pol) {
    size_t count = 0;
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const veil_model_input *in = &m->inputs[i];
        const h5_input_raw *r = &raw->in[i];
        int is_float = r->rank < 0;
        int rank = r->rank < 0 ? -r->rank : r->rank;
        size_t per = 1;
        for (int d = 1; d < rank; d++)
            per *= r->dims[d];
        size_t n_samples = (size_t)r->dims[0];
        if (per != veil_shape_size(&in->shape))
            return veil_error(VEIL_ERR_FORMAT, "%s: %zu values per sample, input '%s' has %zu",
                              r->found, per, in->name, veil_shape_size(&in->shape));
        if (count && n_samples != count)
            return veil_error(VEIL_ERR_FORMAT, "%s: %zu samples, other inputs have %zu", r->found,
                              n_samples, count);
        VEIL_TRY(to_quantized(r->found, in, is_float, r->data, n_samples, pol, &s->inputs[i]));
        count = n_samples;
    }
    s->count = count;
    if (raw->labels && raw->label_count != count)
        return veil_error(VEIL_ERR_FORMAT, "%s: %llu labels for %zu samples", raw->label_path,
                          (unsigned long long)raw->label_count, count);
    return VEIL_OK;
}

veil_status veil_targets_take(const char *where, const veil_model *m, int rank, size_t d0,
                              size_t d1, size_t count, void **data, double **out) {
    if (!m->n_outputs)
        return veil_error(VEIL_ERR_FORMAT, "%s: targets, but the model has no output", where);
    const size_t k = veil_shape_size(&m->outputs[0].shape);
    const int r = rank < 0 ? -rank : rank;
    /* the rank first: d0 means nothing for a scalar (rank 0) */
    if (r >= 1 && r <= 2 && d0 != count)
        return veil_error(VEIL_ERR_FORMAT, "%s: %zu targets for %zu samples", where, d0, count);
    if ((r == 1 && k != 1) || (r == 2 && d1 != k) || r < 1 || r > 2) {
        if (k == 1)
            return veil_error(VEIL_ERR_FORMAT,
                              "%s: targets of rank %d (%zu per sample) for output '%s' of 1 "
                              "value: expected [%zu] or [%zu, 1]",
                              where, r, r == 2 ? d1 : (size_t)1, m->outputs[0].name, count, count);
        return veil_error(VEIL_ERR_FORMAT,
                          "%s: targets of rank %d (%zu per sample) for output '%s' of %zu "
                          "values: expected [%zu, %zu]",
                          where, r, r == 2 ? d1 : (size_t)1, m->outputs[0].name, k, count, k);
    }
    double *t = *data;
    if (rank > 0) { /* integers: converted in place (both 8 bytes a value) */
        const int64_t *v = *data;
        for (size_t i = 0; i < count * k; i++)
            t[i] = (double)v[i];
    }
    for (size_t i = 0; i < count * k; i++)
        if (!isfinite(t[i]))
            return veil_error(VEIL_ERR_FORMAT, "%s: target %g of sample %zu is not finite", where,
                              t[i], i / k);
    *out = t;
    *data = NULL;
    return VEIL_OK;
}

int veil_model_is_regression(const veil_model *m) {
    return m->task && !strcmp(m->task, "regression");
}

void veil_regression_error(const veil_model *m, const int64_t *out0, size_t n,
                           const double *targets, double *rmse, double *mae) {
    const size_t k = veil_shape_size(&m->outputs[0].shape);
    double se = 0, ae = 0;
    for (size_t s = 0; s < n; s++) {
        double x[64];
        for (size_t i = 0; i < k; i += 64) {
            const size_t c = k - i < 64 ? k - i : 64;
            veil_model_dequantize(&m->outputs[0], out0 + s * k + i, c, x);
            for (size_t j = 0; j < c; j++) {
                const double d = x[j] - targets[s * k + i + j];
                se += d * d;
                ae += fabs(d);
            }
        }
    }
    *rmse = n && k ? sqrt(se / (double)(n * k)) : NAN;
    *mae = n && k ? ae / (double)(n * k) : NAN;
}

static veil_status read_h5(const char *path, const veil_model *m, veil_model_samples *s,
                           const quant_policy *pol) {
    if (m->n_inputs > VEIL_MAX_PORTS)
        return veil_error(VEIL_ERR_ARG, "%s: a model of %u inputs, more than %d", path, m->n_inputs,
                          VEIL_MAX_PORTS);
    const char *names[VEIL_MAX_PORTS];
    int ranks[VEIL_MAX_PORTS];
    char rank_str[VEIL_MAX_PORTS][4];
    char *argv[2 * VEIL_MAX_PORTS + 1];
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        names[i] = m->inputs[i].name;
        ranks[i] = (int)m->inputs[i].shape.rank;
        snprintf(rank_str[i], sizeof rank_str[i], "%d", ranks[i]);
        argv[2 * i] = (char *)names[i];
        argv[2 * i + 1] = rank_str[i];
    }
    const int regression = veil_model_is_regression(m);
    if (regression) argv[2 * m->n_inputs] = (char *)k_regression_arg;
    const veil_h5_check check = {"inputs", 2 * (int)m->n_inputs + regression, argv};
    h5_inputs_raw raw = {
        .n = m->n_inputs, .names = names, .ranks = ranks, .regression = regression};
    veil_status st = veil_h5_read_untrusted(path, &check, read_h5_raw, &raw);
    if (st == VEIL_OK) st = alloc_inputs(m, s, path);
    if (st == VEIL_OK && (st = h5_raw_to_samples(m, &raw, s, pol)) != VEIL_OK)
        veil_error_prefix("%s: ", path);
    if (st == VEIL_OK && raw.targets &&
        (st = veil_targets_take(raw.label_path, m, raw.target_rank, (size_t)raw.target_dims[0],
                                (size_t)raw.target_dims[1], s->count, &raw.targets, &s->targets)) !=
            VEIL_OK)
        veil_error_prefix("%s: ", path);
    if (st == VEIL_OK) {
        s->labels = raw.labels; /* now the samples' */
        raw.labels = NULL;
    }
    h5_inputs_raw_free(&raw);
    return st;
}

/* ---- .npy ------------------------------------------------------------------ */

/* Reads a .npy (v1/v2/v3, little-endian, C order) of f4/f8/i1..i8/u1..u8 into
 * doubles or int64. */
static veil_status read_npy(const char *path, int *is_float, size_t *dims, int *rank, void **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return veil_error(VEIL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[10];
    veil_status st = VEIL_OK;
    char *hdr = NULL;
    void *raw = NULL, *res = NULL;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    size_t hlen = 0;
    if (magic[6] == 1) {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) st = veil_error(VEIL_ERR_FORMAT, "%s: truncated header", path);
        hlen = b[0] | (size_t)b[1] << 8;
    } else if (magic[6] == 2 || magic[6] == 3) {
        unsigned char b[4];
        if (fread(b, 1, 4, f) != 4) st = veil_error(VEIL_ERR_FORMAT, "%s: truncated header", path);
        hlen = b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
    } else {
        st = veil_error(VEIL_ERR_FORMAT, "%s: .npy version %u not supported", path, magic[6]);
    }
    if (st) goto done;
    if (hlen > 65536) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: header of %zu bytes", path, hlen);
        goto done;
    }
    hdr = calloc(hlen + 1, 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: truncated header", path);
        goto done;
    }
    char *descr = strstr(hdr, "'descr'");
    char *fo = strstr(hdr, "'fortran_order'");
    char *sh = strstr(hdr, "'shape'");
    if (!descr || !fo || !sh) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: header lacks descr/fortran_order/shape", path);
        goto done;
    }
    char *q = strchr(descr + 7, '\'');
    char type[16] = {0};
    if (!q || sscanf(q + 1, "%15[^']", type) != 1) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: bad descr", path);
        goto done;
    }
    if (strstr(fo, "True") && strstr(fo, "True") < fo + 25) {
        st = veil_error(VEIL_ERR_UNSUPPORTED, "%s: Fortran-order arrays are not supported", path);
        goto done;
    }
    char kind = 0;
    unsigned size = 0;
    if ((type[0] != '<' && type[0] != '|') || sscanf(type + 1, "%c%u", &kind, &size) != 2 ||
        !((kind == 'f' && (size == 4 || size == 8)) ||
          ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)))) {
        st = veil_error(VEIL_ERR_UNSUPPORTED,
                        "%s: dtype '%s' not supported (little-endian f4, f8, i1..i8, u1..u8)", path,
                        type);
        goto done;
    }
    char *p = strchr(sh, '(');
    *rank = 0;
    size_t n = 1;
    if (!p) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: bad shape", path);
        goto done;
    }
    p++;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')') break;
        char *e;
        unsigned long long v = strtoull(p, &e, 10);
        if (e == p || *rank >= 8 || v == 0 || v > (1ull << 31)) {
            st = veil_error(VEIL_ERR_FORMAT, "%s: bad shape", path);
            goto done;
        }
        dims[(*rank)++] = (size_t)v;
        n *= v;
        if (n > (1ull << 31)) {
            st = veil_error(VEIL_ERR_FORMAT, "%s: more than 2^31 values", path);
            goto done;
        }
        p = e;
    }
    /* the data must be in the file before anything is allocated for it: a
     * header may announce up to 2^31 values (16 GiB as int64) */
    const long here = ftell(f);
    if (here < 0 || fseek(f, 0, SEEK_END) != 0) {
        st = veil_error(VEIL_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
        goto done;
    }
    const long end = ftell(f);
    if (end < here || fseek(f, here, SEEK_SET) != 0) {
        st = veil_error(VEIL_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
        goto done;
    }
    if ((uint64_t)(end - here) < (uint64_t)n * size) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: truncated data (%zu values expected, %ld bytes left)",
                        path, n, end - here);
        goto done;
    }
    raw = malloc(n * size + 1);
    res = malloc(n * 8 + 1);
    if (!raw || !res) {
        st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fread(raw, size, n, f) != n) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: truncated data (%zu values expected)", path, n);
        goto done;
    }
    *is_float = kind == 'f';
    for (size_t i = 0; i < n; i++) {
        const unsigned char *b = (const unsigned char *)raw + i * size;
        if (kind == 'f') {
            double d;
            if (size == 4) {
                float x;
                memcpy(&x, b, 4);
                d = x;
            } else {
                memcpy(&d, b, 8);
            }
            ((double *)res)[i] = d;
        } else {
            int64_t v = 0;
            if (kind == 'i') {
                if (size == 1)
                    v = (int8_t)b[0];
                else if (size == 2) {
                    int16_t x;
                    memcpy(&x, b, 2);
                    v = x;
                } else if (size == 4) {
                    int32_t x;
                    memcpy(&x, b, 4);
                    v = x;
                } else
                    memcpy(&v, b, 8);
            } else {
                if (size == 1)
                    v = b[0];
                else if (size == 2) {
                    uint16_t x;
                    memcpy(&x, b, 2);
                    v = x;
                } else if (size == 4) {
                    uint32_t x;
                    memcpy(&x, b, 4);
                    v = x;
                } else {
                    uint64_t x;
                    memcpy(&x, b, 8);
                    v = (int64_t)(x > INT64_MAX ? INT64_MAX : x);
                }
            }
            ((int64_t *)res)[i] = v;
        }
    }
done:
    fclose(f);
    free(hdr);
    free(raw);
    if (st != VEIL_OK) {
        free(res);
        return st;
    }
    *out = res;
    return VEIL_OK;
}

static veil_status read_npy_inputs(const char *path, const veil_model *m, veil_model_samples *s,
                                   const quant_policy *pol) {
    if (m->n_inputs != 1)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "%s: a .npy file holds one array, the model has %u inputs (use .h5)",
                          path, m->n_inputs);
    size_t dims[8];
    int rank = 0, is_float = 0;
    void *data = NULL;
    VEIL_TRY(read_npy(path, &is_float, dims, &rank, &data));
    const veil_model_input *in = &m->inputs[0];
    size_t per = 1;
    for (int d = 1; d < rank; d++)
        per *= dims[d];
    veil_status st = VEIL_OK;
    if (rank < 1 || per != veil_shape_size(&in->shape))
        st = veil_error(VEIL_ERR_FORMAT, "%s: %zu values per sample, input '%s' has %zu", path,
                        rank < 1 ? 0 : per, in->name, veil_shape_size(&in->shape));
    if (st == VEIL_OK) st = alloc_inputs(m, s, path);
    if (st == VEIL_OK) st = to_quantized(path, in, is_float, data, dims[0], pol, &s->inputs[0]);
    free(data);
    if (st != VEIL_OK) return st;
    s->count = dims[0];
    /* optional labels: x.npy -> x_labels.npy */
    char lp[1024];
    size_t L = strlen(path);
    if (L > 4 && L < sizeof lp - 16) {
        snprintf(lp, sizeof lp, "%.*s_labels.npy", (int)(L - 4), path);
        FILE *t = fopen(lp, "rb");
        if (t) {
            fclose(t);
            size_t ld[8] = {0}; /* read_npy sets lr of them: none for a scalar */
            int lr = 0, lf = 0;
            void *ldata = NULL;
            VEIL_TRY(read_npy(lp, &lf, ld, &lr, &ldata));
            if (veil_model_is_regression(m)) {
                st = veil_targets_take(lp, m, lf ? -lr : lr, ld[0], lr > 1 ? ld[1] : 0, s->count,
                                       &ldata, &s->targets);
                free(ldata);
                return st;
            }
            if (lf || lr != 1 || ld[0] != s->count) {
                free(ldata);
                return veil_error(VEIL_ERR_FORMAT, "%s: expected %zu integer labels", lp, s->count);
            }
            s->labels = ldata;
        }
    }
    return VEIL_OK;
}

/* ---- .csv ------------------------------------------------------------------ */

/* d as an int64 when it is a whole number that fits (no NaN, no infinity,
 * nothing at or past 2^63: converting those is undefined); 0 otherwise. */
static int as_int64(double d, int64_t *out) {
    if (!(d == floor(d)) || !(d >= -0x1p63 && d < 0x1p63)) return 0;
    *out = (int64_t)d;
    return 1;
}

static veil_status read_csv(const char *path, const veil_model *m, int quantized,
                            veil_model_samples *s, const quant_policy *pol) {
    if (m->n_inputs != 1)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "%s: CSV holds one input per row, the model has %u inputs (use .h5)",
                          path, m->n_inputs);
    const veil_model_input *in = &m->inputs[0];
    const size_t per = veil_shape_size(&in->shape);
    FILE *f = fopen(path, "r");
    if (!f) return veil_error(VEIL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0, count = 0, line_no = 0;
    double *vals = NULL;
    int64_t *labels = NULL;
    /* a regressor's rows end in its K targets (K the values of output 0) */
    const int regression = veil_model_is_regression(m);
    const size_t nl = regression ? veil_shape_size(&m->outputs[0].shape) : 1;
    double *targets = NULL;
    int has_labels = -1;
    veil_status st = VEIL_OK;
    char *line = NULL;
    size_t lcap = 0;
    double *row = malloc((per + nl + 1) * sizeof *row);
    if (!row) st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    int first = 1; /* the first line that is neither blank nor a comment */
    while (st == VEIL_OK && getline(&line, &lcap, f) > 0) {
        line_no++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#') continue;
        /* a header names its columns: its first field begins with a letter
         * (or a quote, '_'); an empty first field is a data row's error */
        const int header_ok =
            first && (isalpha((unsigned char)*p) || *p == '"' || *p == '\'' || *p == '_');
        first = 0;
        /* fields: numbers separated by ',' or ';' (spaces around them
         * allowed) or by spaces alone; a separator may end the line */
        size_t nv = 0;
        int bad = 0; /* 1: a field is no number, 2: a number runs into the next */
        while (*p) {
            char *e;
            double v = strtod(p, &e);
            if (e == p) {
                bad = 1;
                break;
            }
            if (nv < per + nl) row[nv] = v;
            nv++;
            p = e;
            const char *end = p;
            while (isspace((unsigned char)*p))
                p++;
            if (*p == ',' || *p == ';') {
                p++;
                while (isspace((unsigned char)*p))
                    p++;
            } else if (*p && p == end) {
                bad = 2;
                break;
            }
        }
        if (bad) {
            /* a header: the first line, whose first field is a name */
            if (bad == 1 && nv == 0 && header_ok) continue;
            st = veil_error(
                VEIL_ERR_FORMAT, "%s:%zu: field %zu: %s", path, line_no, nv + (bad == 1),
                bad == 1 ? "not a number" : "no separator after the number (',', ';' or spaces)");
            break;
        }
        if (nv != per && nv != per + nl) {
            st = veil_error(VEIL_ERR_FORMAT, "%s:%zu: %zu values, expected %zu (or %zu with %s)",
                            path, line_no, nv, per, per + nl,
                            regression ? (nl == 1 ? "a target" : "the targets") : "a label");
            break;
        }
        int lab = nv == per + nl;
        if (has_labels < 0) has_labels = lab;
        if (has_labels != lab) {
            st = veil_error(VEIL_ERR_FORMAT, "%s:%zu: rows disagree on the %s", path, line_no,
                            regression ? "target columns" : "label column");
            break;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            double *nvals = realloc(vals, cap * per * sizeof *vals);
            int64_t *nlab = realloc(labels, cap * sizeof *labels);
            double *ntar = regression ? realloc(targets, cap * nl * sizeof *targets) : NULL;
            if (nvals) vals = nvals;
            if (nlab) labels = nlab;
            if (ntar) targets = ntar;
            if (!nvals || !nlab || (regression && !ntar)) {
                st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
        }
        memcpy(vals + count * per, row, per * sizeof *row);
        labels[count] = 0;
        if (regression && lab) {
            memcpy(targets + count * nl, row + per, nl * sizeof *row);
            for (size_t j = 0; j < nl && st == VEIL_OK; j++)
                if (!isfinite(row[per + j]))
                    st = veil_error(VEIL_ERR_FORMAT, "%s:%zu: target %g is not finite", path,
                                    line_no, row[per + j]);
            if (st != VEIL_OK) break;
        } else if (lab && !as_int64(row[per], &labels[count])) {
            st = veil_error(VEIL_ERR_FORMAT, "%s:%zu: label %g is not an integer", path, line_no,
                            row[per]);
            break;
        }
        count++;
    }
    fclose(f);
    free(line);
    free(row);
    if (st == VEIL_OK && count == 0) st = veil_error(VEIL_ERR_FORMAT, "%s: no samples", path);
    if (st == VEIL_OK) st = alloc_inputs(m, s, path);
    if (st == VEIL_OK) {
        if (quantized) {
            int64_t *iv = (int64_t *)vals; /* same size: convert in place */
            for (size_t i = 0; i < count * per; i++) {
                const double d = vals[i];
                if (!as_int64(d, &iv[i])) {
                    st = veil_error(VEIL_ERR_FORMAT,
                                    "%s: --quantized, but value %g of sample %zu is not an integer",
                                    path, d, i / per);
                    break;
                }
            }
            if (st == VEIL_OK) st = to_quantized(path, in, 0, iv, count, pol, &s->inputs[0]);
        } else {
            st = to_quantized(path, in, 1, vals, count, pol, &s->inputs[0]);
        }
    }
    free(vals);
    if (st != VEIL_OK) {
        free(labels);
        free(targets);
        veil_model_samples_free(s, m->n_inputs, 0);
        return st;
    }
    s->count = count;
    if (has_labels == 1 && regression) {
        s->targets = targets;
        targets = NULL;
    } else if (has_labels == 1) {
        s->labels = labels;
        labels = NULL;
    }
    free(labels);
    free(targets);
    return VEIL_OK;
}

veil_status veil_inputs_read(const char *path, const veil_model *m, unsigned flags,
                             veil_model_samples *out, veil_inputs_report *report) {
    if (!path || !m || !out) return veil_error(VEIL_ERR_ARG, "veil_inputs_read: NULL argument");
    if (report) memset(report, 0, sizeof *report);
    const quant_policy pol = {flags, report};
    const int quantized = (flags & VEIL_INPUTS_QUANTIZED) != 0;
    veil_model_samples s;
    memset(&s, 0, sizeof s);
    const char *e = ext_of(path);
    veil_status st;
    if (!strcasecmp(e, "h5") || !strcasecmp(e, "hdf5"))
        st = read_h5(path, m, &s, &pol);
    else if (!strcasecmp(e, "npy"))
        st = read_npy_inputs(path, m, &s, &pol);
    else if (!strcasecmp(e, "csv") || !strcasecmp(e, "txt"))
        st = read_csv(path, m, quantized, &s, &pol);
    else
        st = veil_error(VEIL_ERR_UNSUPPORTED, "%s: unknown input format '.%s' (.h5, .npy, .csv)",
                        path, e);
    if (st != VEIL_OK) {
        veil_model_samples_free(&s, m->n_inputs, 0);
        return st;
    }
    *out = s;
    return VEIL_OK;
}

void veil_inputs_report_print(const veil_inputs_report *r, const char *prog, FILE *f) {
    if (!r || !r->clamped) return;
    fprintf(f,
            "%s: warning: %zu input value(s) outside their input's range were clamped to it "
            "(--strict-range refuses them); first: %s\n",
            prog, r->clamped, r->first);
}

/* ---- writers ------------------------------------------------------------------ */

/* Writers fill a stdio stream; the file appears whole or not at all
 * (veil/atomic_file.h). */
static veil_status write_npy(FILE *f, const double *x, size_t count, const veil_shape *shape) {
    char hdr[256];
    int o =
        snprintf(hdr, sizeof hdr, "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu,", count);
    for (uint32_t d = 0; d < shape->rank; d++)
        o += snprintf(hdr + o, sizeof hdr - (size_t)o, "%s%u", d ? ", " : " ", shape->dim[d]);
    o += snprintf(hdr + o, sizeof hdr - (size_t)o, "), }");
    size_t total = 10 + (size_t)o + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)o + pad + 1;
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)o, f) == (size_t)o;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    size_t n = count * veil_shape_size(shape);
    ok = ok && fwrite(x, sizeof *x, n, f) == n;
    return ok ? VEIL_OK : veil_error(VEIL_ERR_IO, "write failed: %s", strerror(errno));
}

static veil_status write_csv(FILE *f, const veil_model *m, size_t count,
                             const int64_t *const *outputs, double *const *deq) {
    size_t n0 = veil_shape_size(&m->outputs[0].shape);
    const int classes = !veil_model_is_regression(m); /* a regressor's rows have no class */
    for (size_t j = 0; j < n0; j++)
        fprintf(f, "%s%s_%zu", j ? "," : "", m->outputs[0].name, j);
    fprintf(f, classes ? ",argmax\n" : "\n");
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < n0; j++)
            fprintf(f, "%s%.9g", j ? "," : "", deq[0][i * n0 + j]);
        if (classes)
            fprintf(f, ",%zu\n", veil_model_class(&m->outputs[0], outputs[0] + i * n0));
        else
            fprintf(f, "\n");
    }
    return ferror(f) ? veil_error(VEIL_ERR_IO, "write failed: %s", strerror(errno)) : VEIL_OK;
}

/* The HDF5 file is built in memory (core driver, no backing store) and its
 * image written by us: libhdf5 never writes to the disk, so a full disk or
 * `ulimit -f` is a write error here, never a half-closed file in libhdf5. */
static veil_status write_h5(FILE *out, const veil_model *m, size_t count,
                            const int64_t *const *outputs, double *const *deq) {
    const char *path = ""; /* messages are prefixed with the path by the caller */
    veil_h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        return veil_error(VEIL_ERR_INTERNAL, "cannot set up an in-memory HDF5 file");
    }
    char name[64];
    veil_h5_memory_name(name, sizeof name);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return veil_error(VEIL_ERR_INTERNAL, "cannot create an in-memory HDF5 file");
    veil_status st = VEIL_OK;
    /* no modification times in the objects (HDF5 records them by default): the
     * same outputs give the same bytes, whenever they are written */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (gcpl < 0 || dcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0 ||
        H5Pset_obj_track_times(dcpl, 0) < 0)
        st = veil_error(VEIL_ERR_INTERNAL, "cannot set up HDF5 creation properties");
    hid_t g1 = H5Gcreate2(f, "/outputs", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    hid_t g2 = H5Gcreate2(f, "/dequantized", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    for (uint32_t o = 0; st == VEIL_OK && o < m->n_outputs; o++) {
        hsize_t dims[VEIL_MAX_RANK + 1] = {count};
        for (uint32_t d = 0; d < m->outputs[o].shape.rank; d++)
            dims[d + 1] = m->outputs[o].shape.dim[d];
        hid_t sp = H5Screate_simple((int)m->outputs[o].shape.rank + 1, dims, NULL);
        hid_t d1 =
            H5Dcreate2(g1, m->outputs[o].name, H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        hid_t d2 =
            H5Dcreate2(g2, m->outputs[o].name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (d1 < 0 || d2 < 0 ||
            H5Dwrite(d1, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, outputs[o]) < 0 ||
            H5Dwrite(d2, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, deq[o]) < 0)
            st = veil_error(VEIL_ERR_IO, "%s: cannot write /outputs/%s", path, m->outputs[o].name);
        if (d1 >= 0) H5Dclose(d1);
        if (d2 >= 0) H5Dclose(d2);
        H5Sclose(sp);
    }
    if (st == VEIL_OK && m->n_outputs > 0 && !veil_model_is_regression(m)) {
        size_t n0 = veil_shape_size(&m->outputs[0].shape);
        int64_t *pred = malloc(count * sizeof *pred + 1);
        if (!pred) {
            st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
        } else {
            for (size_t i = 0; i < count; i++)
                pred[i] = (int64_t)veil_model_class(&m->outputs[0], outputs[0] + i * n0);
            hsize_t d = count;
            hid_t sp = H5Screate_simple(1, &d, NULL);
            hid_t ds =
                H5Dcreate2(f, "/predictions", H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, pred) < 0)
                st = veil_error(VEIL_ERR_IO, "%s: cannot write /predictions", path);
            if (ds >= 0) H5Dclose(ds);
            H5Sclose(sp);
            free(pred);
        }
    }
    if (g1 >= 0) H5Gclose(g1);
    if (g2 >= 0) H5Gclose(g2);
    if (gcpl >= 0) H5Pclose(gcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    void *img = NULL;
    ssize_t len = 0;
    if (st == VEIL_OK &&
        (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || (len = H5Fget_file_image(f, NULL, 0)) <= 0))
        st = veil_error(VEIL_ERR_INTERNAL, "cannot finish the in-memory HDF5 file");
    if (st == VEIL_OK && !(img = malloc((size_t)len)))
        st = veil_error(VEIL_ERR_NOMEM, "out of memory (%zd bytes)", len);
    if (st == VEIL_OK && H5Fget_file_image(f, img, (size_t)len) != len)
        st = veil_error(VEIL_ERR_INTERNAL, "cannot copy the in-memory HDF5 file");
    if (H5Fclose(f) < 0 && st == VEIL_OK)
        st = veil_error(VEIL_ERR_INTERNAL, "cannot close the in-memory HDF5 file");
    if (st == VEIL_OK && fwrite(img, 1, (size_t)len, out) != (size_t)len)
        st = veil_error(VEIL_ERR_IO, "write failed: %s", strerror(errno));
    free(img);
    return st;
}

static int output_ext_known(const char *e) {
    const char *known[] = {"h5", "hdf5", "npy", "csv", "txt"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcasecmp(e, known[i])) return 1;
    return 0;
}

/* .npy and .csv hold one output (the first); a model of several needs .h5 */
static veil_status output_fits(const char *path, const veil_model *m) {
    const char *e = ext_of(path);
    if (m && m->n_outputs > 1 && strcasecmp(e, "h5") && strcasecmp(e, "hdf5"))
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "%s: a .%s file holds one output, and model %s has %u: write .h5", path,
                          e, m->name ? m->name : "", m->n_outputs);
    return VEIL_OK;
}

veil_status veil_outputs_check(const char *path, const veil_model *m) {
    if (!path) return veil_error(VEIL_ERR_ARG, "veil_outputs_check: NULL argument");
    if (!output_ext_known(ext_of(path)))
        return veil_error(VEIL_ERR_UNSUPPORTED, "%s: unknown output format '.%s' (.h5, .npy, .csv)",
                          path, ext_of(path));
    VEIL_TRY(output_fits(path, m));
    return veil_atomic_file_check(path);
}

veil_status veil_outputs_write(const char *path, const veil_model *m, size_t count,
                               const int64_t *const *outputs) {
    if (!path || !m || !outputs)
        return veil_error(VEIL_ERR_ARG, "veil_outputs_write: NULL argument");
    VEIL_TRY(output_fits(path, m));
    double *deq[64] = {0};
    veil_status st = VEIL_OK;
    for (uint32_t o = 0; o < m->n_outputs && o < 64; o++) {
        size_t n = count * veil_shape_size(&m->outputs[o].shape);
        if (!(deq[o] = malloc(n * sizeof(double) + 1))) {
            st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        veil_model_dequantize(&m->outputs[o], outputs[o], n, deq[o]);
    }
    const char *e = ext_of(path);
    enum { H5, NPY, CSV } kind = CSV;
    if (!strcasecmp(e, "h5") || !strcasecmp(e, "hdf5"))
        kind = H5;
    else if (!strcasecmp(e, "npy"))
        kind = NPY;
    else if (!output_ext_known(e) && st == VEIL_OK)
        st = veil_error(VEIL_ERR_UNSUPPORTED, "%s: unknown output format '.%s' (.h5, .npy, .csv)",
                        path, e);
    veil_atomic_file af;
    if (st == VEIL_OK && (st = veil_atomic_file_open(&af, path, 0644)) == VEIL_OK) {
        if (kind == H5)
            st = write_h5(af.f, m, count, outputs, deq);
        else if (kind == NPY)
            st = write_npy(af.f, deq[0], count, &m->outputs[0].shape);
        else
            st = write_csv(af.f, m, count, outputs, deq);
        if (st == VEIL_OK) {
            st = veil_atomic_file_commit(&af);
        } else {
            veil_error_prefix("%s: ", path);
            veil_atomic_file_discard(&af);
        }
    }
    for (uint32_t o = 0; o < m->n_outputs && o < 64; o++)
        free(deq[o]);
    return st;
}
