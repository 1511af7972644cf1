/* compile.c — veil_model -> veil_program (see veil/program.h): the graph
 * builder, lookups (wide ones decomposed), the range check and the encoding
 * widths. The parameter choice is compile_params.c, the report
 * compile_report.c (compile_internal.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compile_internal.h"
#include "model_ops.h"
#include "program_internal.h"
#include "veil/compile_options.h"
#include "veil/cost.h"
#include "veil/program.h"
#include "veil/wop.h"

__extension__ typedef __int128 i128;

/* v clamped to [-cap, cap] */
static inline i128 sat128(i128 v, i128 cap) {
    return v < -cap ? -cap : v > cap ? cap : v;
}

void veil_program_free(veil_program *p) {
    if (!p) return;
    for (size_t i = 0; p->nodes && i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        free(n->layer);
        free(n->in);
        free(n->weight);
        free(n->bias);
        free(n->tables);
    }
    free(p->nodes);
    free(p->input_nodes);
    free(p->output_nodes);
    free(p->report);
    free(p->partitions);
    free(p->model_name);
    free(p->params_note);
    free(p->options_canonical);
    free(p);
}

size_t veil_program_input_size(const veil_program *p, uint32_t i) {
    return p->nodes[p->input_nodes[i]].size;
}

size_t veil_program_output_size(const veil_program *p, uint32_t i) {
    return p->nodes[p->output_nodes[i]].size;
}

/* ---- builder ------------------------------------------------------------------ */

/* Calibration value buffers given back (a decomposed lookup's internal
 * nodes at its end, lookup_done; every node's at the end of a compilation)
 * and taken again by later nodes, through every compilation of one
 * veil_program_compile (the search compiles the model once per read width):
 * memory the process already has, where a fresh allocation of these sizes
 * (megabytes each) came as new pages the kernel zeroes, and zeroing was a
 * third of the calibration's time on cnn_digits. At most CAL_POOL_MAX kept,
 * the largest, and 64 MiB in all (what it adds to the compiler's peak
 * memory). The values are written in full before they are read
 * (veil_node_eval), whatever the buffer held. */
#define CAL_POOL_MAX 16u
#define CAL_POOL_VALUES ((size_t)8 << 20) /* 64 MiB */
typedef struct cal_pool {
    int64_t *buf[CAL_POOL_MAX];
    size_t cap[CAL_POOL_MAX]; /* values each holds */
    unsigned n;
} cal_pool;

/* A buffer of at least `count` values (the smallest kept one that holds
 * them, else a new one); *cap its size. NULL when out of memory. */
static int64_t *cal_take(cal_pool *pl, size_t count, size_t *cap) {
    unsigned best = CAL_POOL_MAX;
    for (unsigned i = 0; pl && i < pl->n; i++)
        if (pl->cap[i] >= count && (best == CAL_POOL_MAX || pl->cap[i] < pl->cap[best])) best = i;
    if (best < CAL_POOL_MAX) {
        int64_t *b = pl->buf[best];
        *cap = pl->cap[best];
        pl->n--;
        pl->buf[best] = pl->buf[pl->n];
        pl->cap[best] = pl->cap[pl->n];
        return b;
    }
    *cap = count;
    return malloc(count * sizeof(int64_t) + 1);
}

/* Gives buffer b of cap values back: kept while the pool holds at most
 * CAL_POOL_MAX buffers and CAL_POOL_VALUES values, the largest first (the
 * smallest freed to make room), else freed. */
static void cal_give(cal_pool *pl, int64_t *b, size_t cap) {
    if (!b) return;
    if (!pl || cap > CAL_POOL_VALUES) {
        free(b);
        return;
    }
    for (;;) {
        size_t held = 0;
        unsigned small = 0;
        for (unsigned i = 0; i < pl->n; i++) {
            held += pl->cap[i];
            if (pl->cap[i] < pl->cap[small]) small = i;
        }
        if (pl->n < CAL_POOL_MAX && held + cap <= CAL_POOL_VALUES) break;
        if (pl->cap[small] >= cap) { /* what the pool holds is larger */
            free(b);
            return;
        }
        free(pl->buf[small]);
        pl->n--;
        pl->buf[small] = pl->buf[pl->n];
        pl->cap[small] = pl->cap[pl->n];
    }
    pl->buf[pl->n] = b;
    pl->cap[pl->n++] = cap;
}

static void cal_pool_free(cal_pool *pl) {
    for (unsigned i = 0; i < pl->n; i++)
        free(pl->buf[i]);
    pl->n = 0;
}

typedef struct builder {
    veil_program *p;
    size_t cap;
    const veil_model *m;
    const veil_compile_options *o;
    uint32_t *tensor_node; /* model inputs then layers -> node index */
    uint32_t *pool_after;  /* per layer: a lut's max pool (layer + 1) run after it, or 0 */
    int64_t **cal;         /* per node: calibration values (NULL in worst-case mode) */
    size_t *cal_cap;       /* per node: the values its cal buffer holds (cal_take) */
    cal_pool *pool;        /* where they come from and go back to */
    size_t n_cal;
    unsigned lut_bits;   /* widest PBS read; wider exact lookups are decomposed */
    unsigned n_wide;     /* lookups decomposed */
    int select_open;     /* take selection where the prices leave it open (lookup) */
    unsigned n_open;     /* lookups where they did */
    int no_wop;          /* --wop auto where no WoP-PBS can run: the digits only */
    unsigned n_wop;      /* WoP-PBS lookups */
    double price[33];    /* read_price by width; 0: not looked up yet */
    const int64_t *seen; /* the layer's stored calib_range (whole inputset), or NULL */
    uint64_t pbs;        /* lookup elements so far (one PBS each) */
    uint64_t pbs_max;    /* give up past this (a cheaper program is known) */
    int check_narrow;    /* range check windows no wider than the model's width */
    uint32_t *checked;   /* range check: the nodes whose values are read */
    size_t n_checked, cap_checked;
} builder;

/* 1 when [lo, hi] holds every entry of n_tables tables of `size` entries. */
static int holds_entries(int64_t lo, int64_t hi, const int64_t *tables, uint32_t n_tables,
                         size_t size) {
    for (size_t i = 0; i < (size_t)n_tables * size; i++)
        if (tables[i] < lo || tables[i] > hi) return 0;
    return 1;
}

/* Remembers a node whose values a lookup or an output reads, for the range
 * check (once each; inputs are clamped by the client, a lookup's results
 * stay in its range: its table over its compiled input range, never
 * narrowed by calibration, finish_node). */
static veil_status check_later(builder *b, uint32_t idx) {
    const veil_node *n = &b->p->nodes[idx];
    if (!b->o->range_check || n->kind == VEIL_NODE_INPUT || n->kind == VEIL_NODE_LUT)
        return VEIL_OK;
    for (size_t i = 0; i < b->n_checked; i++)
        if (b->checked[i] == idx) return VEIL_OK;
    if (b->n_checked == b->cap_checked) {
        size_t cap = b->cap_checked ? 2 * b->cap_checked : 16;
        uint32_t *c = realloc(b->checked, cap * sizeof *c);
        if (!c) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        b->checked = c;
        b->cap_checked = cap;
    }
    b->checked[b->n_checked++] = idx;
    return VEIL_OK;
}

static veil_status new_node(builder *b, veil_node_kind kind, const char *layer, uint32_t n_in,
                            const uint32_t *in, const veil_shape *shape, uint32_t *idx) {
    veil_program *p = b->p;
    const veil_shape sh = *shape; /* may point into p->nodes, which may move */
    if (p->n_nodes == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        veil_node *nn = realloc(p->nodes, cap * sizeof *nn);
        if (!nn) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        p->nodes = nn;
        int64_t **nc = realloc(b->cal, cap * sizeof *nc);
        if (!nc) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        b->cal = nc;
        size_t *ncc = realloc(b->cal_cap, cap * sizeof *ncc);
        if (!ncc) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        b->cal_cap = ncc;
        b->cap = cap;
    }
    veil_node *n = &p->nodes[p->n_nodes];
    memset(n, 0, sizeof *n);
    b->cal[p->n_nodes] = NULL;
    b->cal_cap[p->n_nodes] = 0;
    p->n_nodes++; /* owned from here: freed with the program */
    n->kind = kind;
    n->read_log2_pfail = -INFINITY;
    n->layer = strdup(layer);
    n->in = calloc(n_in ? n_in : 1, sizeof *n->in);
    if (!n->layer || !n->in) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    n->n_in = n_in;
    if (n_in) memcpy(n->in, in, n_in * sizeof *in);
    n->shape = sh;
    n->size = veil_shape_size(&sh);
    *idx = (uint32_t)(p->n_nodes - 1);
    return VEIL_OK;
}

/* Worst-case interval of one node from its operands' intervals. */
static void worst_case(const veil_program *p, veil_node *n) {
    const veil_node *x = n->n_in ? &p->nodes[n->in[0]] : NULL;
    i128 lo = 0, hi = 0;
    switch (n->kind) {
    case VEIL_NODE_INPUT:
        return; /* set by the caller */
    case VEIL_NODE_OUTPUT:
        lo = x->lo;
        hi = x->hi;
        break;
    case VEIL_NODE_ADD:
        lo = (i128)x->lo + p->nodes[n->in[1]].lo;
        hi = (i128)x->hi + p->nodes[n->in[1]].hi;
        break;
    case VEIL_NODE_LINEAR:
        switch (n->linear) {
        case VEIL_LINEAR_FLATTEN:
            lo = x->lo;
            hi = x->hi;
            break;
        case VEIL_LINEAR_CONCAT:
            lo = x->lo;
            hi = x->hi;
            for (uint32_t j = 1; j < n->n_in; j++) {
                if (p->nodes[n->in[j]].lo < lo) lo = p->nodes[n->in[j]].lo;
                if (p->nodes[n->in[j]].hi > hi) hi = p->nodes[n->in[j]].hi;
            }
            break;
        case VEIL_LINEAR_SUMPOOL2D: {
            i128 k = (i128)n->conv.kh * n->conv.kw;
            int pad = n->conv.pad_h || n->conv.pad_w;
            lo = k * (pad && x->lo > 0 ? 0 : x->lo);
            hi = k * (pad && x->hi < 0 ? 0 : x->hi);
            break;
        }
        case VEIL_LINEAR_DENSE:
        case VEIL_LINEAR_CONV2D: {
            size_t rows, cols;
            int pad = 0;
            if (n->linear == VEIL_LINEAR_DENSE) {
                rows = n->n_weight_rows;
                cols = n->n_weight_cols;
            } else {
                rows = n->conv.c_out;
                cols = (size_t)n->conv.c_in * n->conv.kh * n->conv.kw;
                pad = n->conv.pad_h || n->conv.pad_w;
            }
            /* each term is below 2^126 in magnitude (63-bit weights, 62-bit
             * ranges): the sums saturate at 2^100, far past any width the
             * compiler accepts, so a row of many such terms cannot wrap
             * int128 into a narrow range */
            const i128 cap = (i128)1 << 100;
            for (size_t r = 0; r < rows; r++) {
                i128 l = n->bias ? n->bias[r] : 0, h = l;
                for (size_t c = 0; c < cols; c++) {
                    i128 w = n->weight[r * cols + c];
                    i128 a = w * x->lo, bb = w * x->hi;
                    i128 mn = a < bb ? a : bb, mx = a < bb ? bb : a;
                    if (pad) {
                        mn = mn > 0 ? 0 : mn;
                        mx = mx < 0 ? 0 : mx;
                    }
                    l = sat128(l + sat128(mn, cap), cap);
                    h = sat128(h + sat128(mx, cap), cap);
                }
                if (r == 0 || l < lo) lo = l;
                if (r == 0 || h > hi) hi = h;
            }
            break;
        }
        }
        break;
    case VEIL_NODE_ROUND:
        lo = 0;
        hi = (i128)((x->hi + n->offset) >> n->round_bits) << n->round_bits;
        break;
    case VEIL_NODE_LUT: {
        size_t t = (size_t)1 << n->in_bits;
        int first = 1;
        for (uint32_t c = 0; c < n->n_tables; c++)
            for (size_t r = 0; r <= (size_t)n->r_max && r < t; r++) {
                int64_t v = n->tables[c * t + r];
                if (first || v < lo) lo = v;
                if (first || v > hi) hi = v;
                first = 0;
            }
        break;
    }
    }
    const i128 lim = (i128)1 << 62;
    n->lo = (int64_t)(lo < -lim ? -lim : lo > lim ? lim : lo);
    n->hi = (int64_t)(hi < -lim ? -lim : hi > lim ? lim : hi);
}

/* Sets the node's range (worst case, or observed on the calibration set)
 * and evaluates it on the calibration set. */
/* [lo, hi] widened by margin times its width on each side, rounded out to
 * integers, in integer arithmetic that saturates at the int64 limits: the
 * result always contains [lo, hi] (a double would round values past 2^53
 * inward). */
static void widen_by_margin(double margin, int64_t *lo, int64_t *hi) {
    const double w = margin * ((double)*hi - (double)*lo), mg = ceil(w);
    const int64_t m = mg >= 0x1p63 ? INT64_MAX : (int64_t)mg;
    *lo = *lo < INT64_MIN + m ? INT64_MIN : *lo - m;
    *hi = *hi > INT64_MAX - m ? INT64_MAX : *hi + m;
}

static veil_status finish_node(builder *b, uint32_t idx) {
    veil_program *p = b->p;
    veil_node *n = &p->nodes[idx];
    worst_case(p, n);
    if (b->n_cal && b->cal) {
        int64_t *out = cal_take(b->pool, b->n_cal * n->size, &b->cal_cap[idx]);
        if (!out) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        b->cal[idx] = out;
        if (n->kind != VEIL_NODE_INPUT) {
            const int64_t *ins[64];
            for (uint32_t j = 0; j < n->n_in && j < 64; j++)
                ins[j] = b->cal[n->in[j]];
            veil_node_eval(p, n, ins, b->n_cal, out, NULL, NULL);
        }
        /* not a lookup's: its range is what its table gives over its
         * compiled input range (worst_range), and a value it gives outside a
         * narrower range could not be read back nor checked (the encoding
         * wraps) */
        if (b->o->bounds == VEIL_BOUNDS_CALIBRATION && n->kind != VEIL_NODE_OUTPUT &&
            n->kind != VEIL_NODE_INPUT && n->kind != VEIL_NODE_ROUND && n->kind != VEIL_NODE_LUT) {
            int64_t lo = out[0], hi = out[0];
            for (size_t i = 1; i < b->n_cal * n->size; i++) {
                lo = out[i] < lo ? out[i] : lo;
                hi = out[i] > hi ? out[i] : hi;
            }
            /* the exporter's range over the whole inputset it was given
             * (the stored calibration samples are a subset of it) */
            if (b->seen) {
                lo = b->seen[0] < lo ? b->seen[0] : lo;
                hi = b->seen[1] > hi ? b->seen[1] : hi;
            }
            /* the stated margin: calibration sets are samples, real inputs
             * go a little further; never wider than the worst case */
            widen_by_margin(b->o->range_margin, &lo, &hi);
            n->lo = lo > n->lo ? lo : n->lo;
            n->hi = hi < n->hi ? hi : n->hi;
            if (n->lo > n->hi) n->lo = n->hi;
        }
        if (n->kind == VEIL_NODE_OUTPUT) {
            n->lo = p->nodes[n->in[0]].lo;
            n->hi = p->nodes[n->in[0]].hi;
        }
    }
    n->bits = veil_bits_for_range(n->lo, n->hi);
    return VEIL_OK;
}

/* Overrides a node's range with one known from the construction (internal
 * nodes of a decomposed lookup): the calibration set must not narrow them,
 * or an input inside its own range could read outside an internal one. */
static void set_range(builder *b, uint32_t idx, int64_t lo, int64_t hi) {
    veil_node *n = &b->p->nodes[idx];
    n->lo = lo;
    n->hi = hi;
    n->bits = veil_bits_for_range(lo, hi);
}

/* Range of tables tabs[G][span + 1]. */
static void tables_range(const int64_t *tabs, uint32_t groups, uint64_t span, int64_t *lo,
                         int64_t *hi) {
    *lo = *hi = tabs[0];
    for (size_t i = 0; i < (size_t)groups * (span + 1); i++) {
        *lo = tabs[i] < *lo ? tabs[i] : *lo;
        *hi = tabs[i] > *hi ? tabs[i] : *hi;
    }
}

/* One LUT node (one PBS per element; wop: one WoP-PBS) reading r = (x +
 * off) >> g in [0, span] with tables tabs[G][span + 1] (entries past span
 * repeat T[span]). */
static veil_status lut_node(builder *b, const char *layer, uint32_t src, int64_t off, unsigned g,
                            uint64_t span, uint32_t groups, const int64_t *tabs,
                            const veil_shape *shape, int approximate, int wop, uint32_t *out_idx) {
    veil_program *p = b->p;
    const unsigned in_bits = veil_bits_for_range(0, (int64_t)span);
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_LUT, layer, 1, &src, shape, &idx));
    veil_node *n = &p->nodes[idx];
    n->round_bits = g;
    n->in_bits = in_bits;
    n->r_max = (int64_t)span;
    n->approximate = approximate;
    n->wop = (unsigned)wop;
    n->offset = off;
    n->n_tables = groups;
    n->table_inner = groups > 1 ? n->size / groups : n->size;
    const size_t t = (size_t)1 << in_bits;
    n->tables = malloc(groups * t * sizeof *n->tables);
    if (!n->tables) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint32_t c = 0; c < groups; c++)
        for (size_t r = 0; r < t; r++)
            n->tables[c * t + r] = tabs[c * (span + 1) + (r > span ? span : r)];
    VEIL_TRY(finish_node(b, idx));
    *out_idx = idx;
    return VEIL_OK;
}

/* A LINEAR node over one operand with the given geometry (a sum pool), or a
 * CONCAT of `copies` copies of it. */
static veil_status linear_node(builder *b, const char *layer, veil_linear_kind kind, uint32_t src,
                               uint32_t copies, const veil_shape *shape, const veil_conv_geom *conv,
                               double sum_w2, uint32_t *out_idx) {
    uint32_t ins[64];
    VEIL_ASSERT(copies >= 1 && copies <= 64);
    for (uint32_t j = 0; j < copies; j++)
        ins[j] = src;
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_LINEAR, layer, copies, ins, shape, &idx));
    veil_node *n = &b->p->nodes[idx];
    n->linear = kind;
    n->sum_w2 = sum_w2;
    if (conv) n->conv = *conv;
    VEIL_TRY(finish_node(b, idx));
    *out_idx = idx;
    return VEIL_OK;
}

/* x * f + c elementwise: a 1x1 convolution over the values as one channel
 * (the bias, a clear constant, adds no noise). */
static veil_status scale_node(builder *b, const char *layer, uint32_t x, int64_t f, int64_t c,
                              const veil_shape *shape, uint32_t *out_idx) {
    const uint32_t n = (uint32_t)b->p->nodes[x].size;
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_LINEAR, layer, 1, &x, shape, &idx));
    veil_node *nd = &b->p->nodes[idx];
    nd->linear = VEIL_LINEAR_CONV2D;
    nd->conv = (veil_conv_geom){1, 1, n, 1, 1, 1, 1, 1, 0, 0, 1, n};
    nd->sum_w2 = (double)f * (double)f;
    nd->weight = malloc(sizeof *nd->weight);
    if (!nd->weight) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    nd->weight[0] = f;
    if (c) {
        if (!(nd->bias = malloc(sizeof *nd->bias)))
            return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        nd->bias[0] = c;
    }
    VEIL_TRY(finish_node(b, idx));
    /* f x + c of a value in its compiled range: exactly that range's image,
     * never narrowed by calibration (a negation's values are its input's,
     * negated; narrowed, in-range inputs read as out of range) */
    const veil_node *xn = &b->p->nodes[x];
    const i128 a = (i128)f * xn->lo + c, z = (i128)f * xn->hi + c, lim = (i128)1 << 62;
    const i128 lo = a < z ? a : z, hi = a < z ? z : a;
    set_range(b, idx, (int64_t)sat128(lo, lim), (int64_t)sat128(hi, lim));
    *out_idx = idx;
    return VEIL_OK;
}

/* wa A + wb B elementwise, x = [A, B] (two halves of equal size): a 1x1
 * convolution of two channels into one. The range is the halves' image. */
static veil_status pair_node(builder *b, const char *layer, uint32_t x, int64_t wa, int64_t wb,
                             const veil_shape *shape, uint32_t *out_idx) {
    const uint32_t h = (uint32_t)(b->p->nodes[x].size / 2);
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_LINEAR, layer, 1, &x, shape, &idx));
    veil_node *nd = &b->p->nodes[idx];
    nd->linear = VEIL_LINEAR_CONV2D;
    nd->conv = (veil_conv_geom){2, 1, h, 1, 1, 1, 1, 1, 0, 0, 1, h};
    nd->sum_w2 = (double)wa * (double)wa + (double)wb * (double)wb;
    nd->weight = malloc(2 * sizeof *nd->weight);
    if (!nd->weight) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    nd->weight[0] = wa;
    nd->weight[1] = wb;
    VEIL_TRY(finish_node(b, idx));
    const veil_node *xn = &b->p->nodes[x];
    const i128 c[4] = {(i128)wa * xn->lo + (i128)wb * xn->lo, (i128)wa * xn->lo + (i128)wb * xn->hi,
                       (i128)wa * xn->hi + (i128)wb * xn->lo,
                       (i128)wa * xn->hi + (i128)wb * xn->hi};
    i128 lo = c[0], hi = c[0];
    for (int i = 1; i < 4; i++) {
        lo = c[i] < lo ? c[i] : lo;
        hi = c[i] > hi ? c[i] : hi;
    }
    const i128 lim = (i128)1 << 62;
    set_range(b, idx, (int64_t)sat128(lo, lim), (int64_t)sat128(hi, lim));
    *out_idx = idx;
    return VEIL_OK;
}

/* `copies` copies of x one after another (CONCAT's layout), any number of
 * them: a 1x1 convolution of one channel into `copies`, every weight 1. */
static veil_status repeat_node(builder *b, const char *layer, uint32_t x, uint32_t copies,
                               uint32_t *out_idx) {
    const uint32_t n = (uint32_t)b->p->nodes[x].size;
    const veil_shape shape = {1, {copies * n}};
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_LINEAR, layer, 1, &x, &shape, &idx));
    veil_node *nd = &b->p->nodes[idx];
    nd->linear = VEIL_LINEAR_CONV2D;
    nd->conv = (veil_conv_geom){1, 1, n, copies, 1, 1, 1, 1, 0, 0, 1, n};
    nd->sum_w2 = 1;
    nd->weight = malloc(copies * sizeof *nd->weight);
    if (!nd->weight) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint32_t j = 0; j < copies; j++)
        nd->weight[j] = 1;
    VEIL_TRY(finish_node(b, idx));
    set_range(b, idx, b->p->nodes[x].lo, b->p->nodes[x].hi);
    *out_idx = idx;
    return VEIL_OK;
}

static veil_status add_node(builder *b, const char *layer, uint32_t x, uint32_t y,
                            const veil_shape *shape, uint32_t *out_idx) {
    const uint32_t ins[2] = {x, y};
    VEIL_TRY(new_node(b, VEIL_NODE_ADD, layer, 2, ins, shape, out_idx));
    return finish_node(b, *out_idx);
}

/* x - y: a noiseless negation of y (x * f + c with f = -1, *neg) and an ADD
 * (*out_idx, of the given shape) */
static veil_status sub_node(builder *b, const char *layer, uint32_t x, uint32_t y,
                            const veil_shape *shape, uint32_t *neg, uint32_t *out_idx) {
    const veil_shape flat = {1, {(uint32_t)b->p->nodes[y].size}};
    VEIL_TRY(scale_node(b, layer, y, -1, 0, &flat, neg));
    return add_node(b, layer, x, *neg, shape, out_idx);
}

/* A decomposed lookup's digits (see lookup()): R_j = ROUND(x + off, g + K_j)
 * (R_0 = x), digit j of kd[j] bits at bit Kd[j] of r, d digits, the top's
 * largest value hmax; n elements, element i of table group (i / inner) %
 * groups. */
typedef struct wide_digits {
    uint32_t R[VEIL_MAX_BITS + 1];
    unsigned kd[VEIL_MAX_BITS + 1], Kd[VEIL_MAX_BITS + 2], d, g;
    int64_t off;
    uint64_t hmax;
    size_t n;
    uint32_t groups;
} wide_digits;

/* The most steps off the top digit's multiples a decomposed table may have:
 * its program grows with them (2 J copies of every digit, J PBS a level),
 * and past this past use (a random 16-bit table has about 61,000). */
#define WIDE_MAX_STEPS 4096u
/* The most ciphertexts a sample one node of a decomposed lookup may hold
 * (2J copies of a digit of n elements, or 2 nh for a selection): past it a
 * sample's buffers (kN + 1 words each) and the compiler's calibration
 * values (128 samples) run to gigabytes. The sample models' largest holds
 * 15,360 (cnn_digits, every read width the search tries). */
#define WIDE_MAX_COPIES ((uint64_t)1 << 18)

static veil_status lookup(builder *b, const char *layer, uint32_t x, int64_t off, unsigned g,
                          uint64_t span, uint32_t groups, const int64_t *tabs,
                          const veil_shape *shape, int internal, uint32_t *out_idx);

/* Steps s = 0 .. J-1 of a decomposed lookup: step
 * s of group c at position st_t[s * groups + c] with delta st_d[...] (0: a
 * padding copy). J copies of every digit compared with the steps, the
 * carries taken up the digits, the top's deltas summed over the copies into
 * *S, of range [slo, shi]. */
static veil_status step_sum(builder *b, const char *layer, const wide_digits *w, uint32_t J,
                            const uint64_t *st_t, const int64_t *st_d, int64_t slo, int64_t shi,
                            uint32_t *S) {
    veil_program *p = b->p;
    const unsigned d = w->d, g = w->g, *kd = w->kd, *Kd = w->Kd;
    const uint32_t *R = w->R, groups = w->groups;
    const int64_t off = w->off;
    const uint64_t hmax = w->hmax;
    const size_t n = w->n;
    const veil_shape flat = {1, {(uint32_t)n}}, rep = {1, {(uint32_t)(J * n)}};
    VEIL_ASSERT(J >= 1 && J <= WIDE_MAX_STEPS);
    veil_status st = VEIL_OK;
    /* J >= 2: majority carries (see lookup()); J = 1: the carry in place
     * (one copy) */
    const int maj = J >= 2;
    uint32_t carry = 0; /* c_{j-1} per copy: 0 or 1 (maj), else c 2^(g+K_j-1) */
    for (unsigned j = 0; st == VEIL_OK && j < d; j++) {
        /* the digit in place: D_j 2^(g+K_j) (D_0: minus off) */
        uint32_t dig = R[d - 1], negn = 0, rp = 0, u = 0;
        const int top = j == d - 1;
        if (!top) {
            st = scale_node(b, layer, R[j + 1], -1, 0, &flat, &negn);
            if (st == VEIL_OK) st = add_node(b, layer, R[j], negn, &flat, &dig);
            if (st != VEIL_OK) break;
            const int64_t base = j ? 0 : -off;
            set_range(b, dig, base, base + (int64_t)((((uint64_t)1 << kd[j]) - 1) << (g + Kd[j])));
        }
        const uint64_t dmax = top ? hmax : ((uint64_t)1 << kd[j]) - 1;
        if (maj) {
            /* threshold reads of D_j: copy s < J reads [D_j >= t_j + 1]
             * (A), copy J + s [D_j >= t_j] (B); level 0: [D_0 >= t_0]
             * (the carry) only */
            const uint32_t Rc = j ? 2 * J : J;
            const veil_shape repR = {1, {(uint32_t)(Rc * n)}};
            st = repeat_node(b, layer, dig, Rc, &rp);
            if (st != VEIL_OK) break;
            int64_t *tt = calloc((size_t)Rc * groups * (dmax + 1), sizeof *tt);
            if (!tt) {
                st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
                break;
            }
            for (size_t q = 0; q < (size_t)J * groups; q++) {
                if (!st_d[q]) continue; /* a padding copy: all zero */
                const uint64_t tj =
                    (st_t[q] >> Kd[j]) & (top ? ~(uint64_t)0 : ((uint64_t)1 << kd[j]) - 1);
                for (uint64_t v = 0; v <= dmax; v++) {
                    tt[q * (dmax + 1) + v] = v >= tj + (j ? 1 : 0);
                    if (j) tt[((size_t)J * groups + q) * (dmax + 1) + v] = v >= tj;
                }
            }
            uint32_t thr = 0;
            st =
                lookup(b, layer, rp, j ? 0 : off, g + Kd[j], dmax, Rc * groups, tt, &repR, 1, &thr);
            free(tt);
            if (st != VEIL_OK) break;
            VEIL_ASSERT(p->nodes[thr].kind == VEIL_NODE_LUT && p->nodes[thr].in[0] == rp);
            p->nodes[thr].rotation_results = Rc;
            b->pbs -= (uint64_t)(Rc - 1) * n; /* counted as Rc n by the lookup */
            if (!j) {
                carry = thr;
                continue;
            }
            /* A + B + c (a middle digit: its carry is the majority) or
             * B - A + c (the top: [H == t_h] c is [B - A + c >= 2]) */
            uint32_t ab = 0;
            st = pair_node(b, layer, thr, top ? -1 : 1, 1, &rep, &ab);
            if (st == VEIL_OK) st = add_node(b, layer, ab, carry, &rep, &u);
            if (st != VEIL_OK) break;
            set_range(b, u, top ? -1 : 0, top ? 2 : 3);
            int64_t *mt = calloc((size_t)J * groups * 4, sizeof *mt);
            if (!mt) {
                st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
                break;
            }
            /* index u + top in [0, 3]: the top gives the step's delta */
            for (size_t q = 0; q < (size_t)J * groups; q++)
                for (unsigned v = 0; v < 4 && st_d[q]; v++)
                    mt[q * 4 + v] = top ? (v == 3 ? st_d[q] : 0) : v >= 2;
            st = lookup(b, layer, u, top ? 1 : 0, 0, 3, J * groups, mt, &rep, 1, &carry);
            free(mt);
            continue;
        }
        st = linear_node(b, layer, VEIL_LINEAR_CONCAT, dig, J, &rep, NULL, 1, &rp);
        if (st != VEIL_OK) break;
        set_range(b, rp, p->nodes[dig].lo, p->nodes[dig].hi);
        /* the value read: D_0 (j = 0), or 2 D_j + c at unit 2^(g+K_j-1) */
        const uint64_t rmax = j ? 2 * dmax + 1 : dmax;
        const unsigned rg = j ? g + Kd[j] - 1 : g;
        if (j) {
            st = add_node(b, layer, rp, carry, &rep, &u);
            if (st != VEIL_OK) break;
            set_range(b, u, 0, (int64_t)(rmax << rg));
        } else {
            u = rp;
        }
        int64_t *tt = calloc((size_t)J * groups * (rmax + 1), sizeof *tt);
        if (!tt) {
            st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
            break;
        }
        const int64_t cunit = top ? 0 : (int64_t)1 << (g + Kd[j + 1] - 1);
        for (size_t q = 0; q < (size_t)J * groups; q++) {
            if (!st_d[q]) continue; /* a padding copy: all zero */
            const uint64_t tj =
                (st_t[q] >> Kd[j]) & (top ? ~(uint64_t)0 : ((uint64_t)1 << kd[j]) - 1);
            for (uint64_t v = 0; v <= rmax; v++) {
                if (top)
                    tt[q * (rmax + 1) + v] = v == 2 * tj + 1 ? st_d[q] : 0;
                else
                    tt[q * (rmax + 1) + v] = (j ? v >= 2 * tj + 1 : v >= tj) ? cunit : 0;
            }
        }
        st = lookup(b, layer, u, j ? 0 : off, rg, rmax, J * groups, tt, &rep, 1, &carry);
        free(tt);
    }
    VEIL_TRY(st);
    const veil_conv_geom pool = {1, J, (uint32_t)n, 1, J, 1, 1, 1, 0, 0, 1, (uint32_t)n};
    VEIL_TRY(linear_node(b, layer, VEIL_LINEAR_SUMPOOL2D, carry, 1, &flat, &pool, J, S));
    set_range(b, *S, slo, shi);
    return VEIL_OK;
}

/* floor(r / 2^k) 2^(g+k), r = (x + off) >> g in [0, span]: the digits
 * above bit k of a decomposed lookup's index, in place (exact). */
static veil_status round_node(builder *b, const char *layer, uint32_t x, int64_t off, unsigned g,
                              unsigned k, uint64_t span, uint32_t *out_idx) {
    const veil_shape flat = {1, {(uint32_t)b->p->nodes[x].size}};
    VEIL_TRY(new_node(b, VEIL_NODE_ROUND, layer, 1, &x, &flat, out_idx));
    b->p->nodes[*out_idx].offset = off;
    b->p->nodes[*out_idx].round_bits = g + k;
    VEIL_TRY(finish_node(b, *out_idx));
    set_range(b, *out_idx, 0, (int64_t)((span >> k) << (g + k)));
    return VEIL_OK;
}

/* The end of a decomposed lookup (nodes first.. made, out its value): its
 * values are T's, never wider whatever the bounds mode (internal values
 * keep the whole table range, see set_range), and only out is read outside:
 * the other nodes' calibration values are dropped. */
static veil_status lookup_done(builder *b, size_t first, uint32_t out, int64_t tlo, int64_t thi,
                               int internal, uint32_t *out_idx) {
    veil_program *p = b->p;
    const veil_node *o = &p->nodes[out];
    int64_t olo = o->lo < tlo || o->lo > thi ? tlo : o->lo;
    int64_t ohi = o->hi > thi || o->hi < tlo ? thi : o->hi;
    if (internal || olo > ohi) olo = tlo, ohi = thi;
    set_range(b, out, olo, ohi);
    for (size_t i = first; b->cal && i < p->n_nodes; i++)
        if (i != out) {
            cal_give(b->pool, b->cal[i], b->cal_cap[i]);
            b->cal[i] = NULL;
        }
    *out_idx = out;
    return VEIL_OK;
}

/* A PBS reading `bits` bits (<= 32), priced as the cheapest blind rotation of
 * a set that precise (veil/cost.h; +INFINITY when none is): the wide-lookup
 * methods' PBS compared before the program has its sets. */
static double read_price(builder *b, unsigned bits) {
    if (b->price[bits] == 0) {
        double c = INFINITY;
        for (size_t i = 0; i < veil_params_count(); i++) {
            const veil_params *ps = veil_params_at(i);
            const double ci = ps->precision >= bits ? veil_cost_cpu_ms(ps, 0) : INFINITY;
            c = ci < c ? ci : c;
        }
        b->price[bits] = c;
    }
    return b->price[bits];
}

/* A ROUND node of `bits` round bits at read_price: in chunks of the widest
 * a program with lookups of b->lut_bits takes (choose_chunks' first try),
 * each two PBS reading one bit less than the chunk (one for a 1-bit chunk;
 * veil_round_chunk_get). */
static double round_price(builder *b, unsigned bits) {
    const unsigned c = b->lut_bits + 1;
    double price = 0;
    for (unsigned lo = 0; lo < bits; lo += c) {
        const unsigned cb = bits - lo < c ? bits - lo : c;
        price += cb > 1 ? 2 * read_price(b, cb - 1) : read_price(b, 1);
    }
    return price;
}

/* The WoP-PBS route of lookup() (veil/program.h "WoP lookups"): one LUT
 * node marked wop reading r = (x + off) >> g at w bits (its partition a WoP
 * set's: compile_params.c assign_wop_partitions), then a classic lookup of
 * its output (the identity on [tlo, thi], read at the values' own width):
 * the WoP-PBS's output carries the noise of its vertical packing (a
 * standard deviation near 2^52 with Concrete's single-lookup sets), which
 * that PBS brings back to a classic set's output noise. Per element w + 1 blind rotations and
 * the WoP-PBS's circuit bootstrapping and packing. */
static veil_status wop_lookup(builder *b, const char *layer, uint32_t x, int64_t off, unsigned g,
                              uint64_t span, uint32_t groups, const int64_t *tabs,
                              const veil_shape *shape, int64_t tlo, int64_t thi,
                              uint32_t *out_idx) {
    veil_program *p = b->p;
    const unsigned w = veil_bits_for_range(0, (int64_t)span);
    const veil_wop_params *wp = veil_wop_params_for_width(w);
    VEIL_ASSERT(wp);
    const size_t n = p->nodes[x].size;
    b->n_wop++;
    b->pbs += n * veil_wop_count(wp, w).pbs; /* the refresh below adds its own */
    if (b->pbs > b->pbs_max)
        return veil_error(VEIL_ERR_UNSUPPORTED, "layer %s: more than %llu PBS per sample", layer,
                          (unsigned long long)b->pbs_max);
    uint32_t idx;
    VEIL_TRY(lut_node(b, layer, x, off, g, span, groups, tabs, shape, 0, 1, &idx));
    set_range(b, idx, tlo, thi);
    /* the refresh: the identity on the values */
    const uint64_t vspan = (uint64_t)(thi - tlo);
    int64_t *id = malloc((vspan + 1) * sizeof *id);
    if (!id) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint64_t v = 0; v <= vspan; v++)
        id[v] = tlo + (int64_t)v;
    b->pbs += n;
    const veil_status st = lut_node(b, layer, idx, -tlo, 0, vspan, 1, id, shape, 0, 0, out_idx);
    free(id);
    VEIL_TRY(st);
    set_range(b, *out_idx, tlo, thi);
    return VEIL_OK;
}

/* Milliseconds per element of wop_lookup's nodes on one core at the
 * cheapest sets (the WoP set's estimate, veil_cost_wop_cpu_ms, its bit
 * reads keyswitching the WoP set's own k N rows, and the refresh at
 * read_price), +INFINITY when no WoP set takes w bits or the values are
 * wider than the refresh's reads. */
static double wop_price(builder *b, unsigned w, int64_t tlo, int64_t thi) {
    const veil_wop_params *wp = veil_wop_params_for_width(w);
    const unsigned vb = veil_bits_for_range(0, thi - tlo);
    if (!wp || vb > VEIL_MAX_BITS) return INFINITY;
    return veil_cost_wop_cpu_ms(wp, w, veil_params_big_dim(&wp->pbs)) + read_price(b, vb);
}

/* Selection by the top part (a table with many steps: a random one). r = H
 * 2^ks + L, L the low ks bits, H the other bits (nh = (span >> ks) + 1
 * values): T[r] = sum over h of [H == h] Y_h[L], Y_h[L] = T[h 2^ks + L] -
 * tlo (0 past the span). Nodes: H 2^(g+ks) = ROUND(x + off, g + ks) and L
 * in place (x minus it); nh copies of L read by the tables Y_h (a PBS each);
 * 2 nh copies of H read by one rotation each for [H >= h] and [H >= h + 1]
 * (threshold reads of value S = 2^bits(thi - tlo) > thi - tlo); per copy u
 * = Y_h + S ([H >= h] - [H >= h + 1]), read by u >= S ? u - S + tlo : 0;
 * the copies summed (one is T[r], the others 0). Per element 2 nh PBS and
 * one rotation, whatever the steps; nh of the PBS ks bits wide. *out has
 * the given shape. */
static veil_status select_lookup(builder *b, const char *layer, uint32_t x, int64_t off, unsigned g,
                                 uint64_t span, uint32_t groups, const int64_t *tabs,
                                 const veil_shape *shape, unsigned ks, int64_t tlo, int64_t thi,
                                 uint32_t *out) {
    veil_program *p = b->p;
    const size_t n = p->nodes[x].size, rows = span + 1;
    const uint64_t hmax = span >> ks, nh = hmax + 1, lmax = ((uint64_t)1 << ks) - 1;
    const uint64_t S = (uint64_t)1 << veil_bits_for_range(0, thi - tlo);
    const veil_shape flat = {1, {(uint32_t)n}}, rep = {1, {(uint32_t)(nh * n)}},
                     rep2 = {1, {(uint32_t)(2 * nh * n)}};
    uint32_t Rh, negh, L, Lc, Y, Hc, thr, fl, u, z;
    VEIL_TRY(round_node(b, layer, x, off, g, ks, span, &Rh));
    VEIL_TRY(scale_node(b, layer, Rh, -1, 0, &flat, &negh));
    VEIL_TRY(add_node(b, layer, x, negh, &flat, &L));
    set_range(b, L, -off, -off + (int64_t)(lmax << g));
    /* Y_h[L], table q = h * groups + c (the copies' order) */
    int64_t *yt = malloc((size_t)nh * groups * (lmax + 1) * sizeof *yt);
    int64_t *ft = malloc((size_t)2 * nh * groups * (hmax + 1) * sizeof *ft);
    int64_t *zt = malloc(2 * S * sizeof *zt);
    veil_status st =
        yt && ft && zt ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint64_t h = 0; st == VEIL_OK && h < nh; h++)
        for (uint32_t c = 0; c < groups; c++) {
            for (uint64_t l = 0; l <= lmax; l++) {
                const uint64_t r = (h << ks) + l;
                yt[((size_t)h * groups + c) * (lmax + 1) + l] =
                    r <= span ? tabs[c * rows + r] - tlo : 0;
            }
            /* copy h groups + c: [H >= h] S; copy (nh + h) groups + c: [H >= h + 1] S */
            for (uint64_t v = 0; v <= hmax; v++) {
                ft[((size_t)h * groups + c) * (hmax + 1) + v] = v >= h ? (int64_t)S : 0;
                ft[((size_t)(nh + h) * groups + c) * (hmax + 1) + v] = v > h ? (int64_t)S : 0;
            }
        }
    for (uint64_t v = 0; st == VEIL_OK && v < 2 * S; v++)
        zt[v] = v >= S ? (int64_t)(v - S) + tlo : 0;
    if (st == VEIL_OK) st = repeat_node(b, layer, L, (uint32_t)nh, &Lc);
    if (st == VEIL_OK)
        st = lookup(b, layer, Lc, off, g, lmax, (uint32_t)(nh * groups), yt, &rep, 1, &Y);
    if (st == VEIL_OK) st = repeat_node(b, layer, Rh, (uint32_t)(2 * nh), &Hc);
    if (st == VEIL_OK)
        st = lookup(b, layer, Hc, 0, g + ks, hmax, (uint32_t)(2 * nh * groups), ft, &rep2, 1, &thr);
    if (st == VEIL_OK) {
        VEIL_ASSERT(p->nodes[thr].kind == VEIL_NODE_LUT && p->nodes[thr].in[0] == Hc);
        p->nodes[thr].rotation_results = (uint32_t)(2 * nh);
        b->pbs -= (2 * nh - 1) * n; /* counted as 2 nh n by the lookup */
        st = pair_node(b, layer, thr, 1, -1, &rep, &fl);
    }
    if (st == VEIL_OK) st = add_node(b, layer, Y, fl, &rep, &u);
    if (st == VEIL_OK) {
        set_range(b, u, 0, (int64_t)(2 * S - 1));
        st = lookup(b, layer, u, 0, 0, 2 * S - 1, 1, zt, &rep, 1, &z);
    }
    free(yt);
    free(ft);
    free(zt);
    VEIL_TRY(st);
    const veil_conv_geom pool = {1, (uint32_t)nh, (uint32_t)n, 1, (uint32_t)nh, 1, 1, 1, 0, 0,
                                 1, (uint32_t)n};
    VEIL_TRY(linear_node(b, layer, VEIL_LINEAR_SUMPOOL2D, z, 1, shape, &pool, (double)nh, out));
    return VEIL_OK;
}

/* The exact lookup T_grp[r], r = (x + off) >> g in [0, span] (the low g bits
 * of x + off are zero), element i of x in group (i / inner) % groups.
 *
 * Up to the program's lookup precision P (b->lut_bits) it is one LUT node.
 * Wider (the model's own accumulators, up to 16 bits), it is decomposed
 * exactly into PBS of at most P bits (the threshold method on digits; see
 * veil/program.h). r has d digits D_0 (k_0 <= P bits, lowest) ... D_{d-2}
 * (<= P - 1 bits) and H (the top, <= P - 1 bits), D_j at bit K_j, H at bit
 * K = K_{d-1}. For a step t of the table (T[t] != T[t-1]) with digits t_j, th:
 *   [r >= t] = [H >= th + 1] + [H == th] * [r mod 2^K >= t mod 2^K]
 * and the low comparison is a carry chain, one PBS a digit:
 *   c_0 = [D_0 >= t_0],  c_j = [2 D_j + c_{j-1} >= 2 t_j + 1],
 *   [H == th] * c_{d-2} = [2H + c_{d-2} == 2 th + 1].
 * So T[r] = F(H) + sum over the steps with t mod 2^K != 0 of
 * delta_t [2H + c == 2th + 1], F(H) = T[H * 2^K] holding every other step.
 * Nodes: R_j = ROUND(x + off, g + K_j) (exact, = floor(r / 2^K_j) 2^(g+K_j));
 * the digits in place, D_0 2^g - off = x - R_1 and D_j 2^(g+K_j) = R_j -
 * R_{j+1} (a 1x1 convolution by -1 and an ADD); F, a lookup on R_{d-1}; then
 * J copies of every digit (CONCAT; threshold reads below: repeat_node, any
 * number of copies), copy s carrying step s of its group: C_0
 * a lookup of D_0 giving c 2^(g+K_1-1), so that digit 1 + C_0 = (2 D_1 + c)
 * 2^(g+K_1-1), read by the next lookup, and so on up to E = delta [2H + c ==
 * 2th + 1]; out = F + a sum pool of E over the copies. J is the most steps of
 * one group's table outside multiples of 2^K (at most WIDE_MAX_STEPS). Cost
 * per element: the ROUND chunks, 1 + d J PBS, none wider than P bits.
 *
 * With J >= 2 the digits are compared by threshold reads instead
 * (veil_node.rotation_results: one blind rotation per element gives all of a
 * digit's comparisons, on the cpu and cuda backends), with the carries as 0/1 values:
 *   c_0 = [D_0 >= t_0];  A_j = [D_j >= t_j + 1], B_j = [D_j >= t_j] (one
 *   rotation for all 2J), c_j = [A_j + B_j + c_{j-1} >= 2] (the majority:
 *   A + (B - A) c, as B >= A), and at the top E = delta [B - A + c >= 2]
 *   ([H == th] c).
 * The majority and the top's test read 2 bits (the cheapest sets), the
 * digits their own width (one bit less than 2 D_j + c): per element the
 * ROUND chunks, 1 + 1 + (d - 1)(1 + J) PBS, J of each level at 2 bits. */
static veil_status lookup(builder *b, const char *layer, uint32_t x, int64_t off, unsigned g,
                          uint64_t span, uint32_t groups, const int64_t *tabs,
                          const veil_shape *shape, int internal, uint32_t *out_idx) {
    veil_program *p = b->p;
    const unsigned w = veil_bits_for_range(0, (int64_t)span), P = b->lut_bits;
    const size_t first = p->n_nodes;
    int64_t tlo, thi;
    tables_range(tabs, groups, span, &tlo, &thi);
    if (w <= P) {
        b->pbs += p->nodes[x].size;
        if (b->pbs > b->pbs_max)
            return veil_error(VEIL_ERR_UNSUPPORTED,
                              "layer %s: more than %llu PBS per sample with %u-bit reads", layer,
                              (unsigned long long)b->pbs_max, P);
        VEIL_TRY(lut_node(b, layer, x, off, g, span, groups, tabs, shape, 0, 0, out_idx));
        if (internal) set_range(b, *out_idx, tlo, thi);
        return VEIL_OK;
    }
    b->n_wide++;
    VEIL_ASSERT(P >= 2);
    /* digits: k_0 <= P, the others (H included) <= P - 1 */
    wide_digits wd = {.g = g, .off = off, .groups = groups};
    unsigned *kd = wd.kd, *Kd = wd.Kd, d = 0, left = w;
    if (w <= 2 * P - 1) {
        kd[d++] = w + 1 - P > 1 ? w + 1 - P : 1;
        left -= kd[0];
    } else {
        kd[d++] = P;
        left -= P;
        while (left > P - 1) {
            kd[d++] = P - 1;
            left -= P - 1;
        }
    }
    kd[d++] = left; /* H */
    Kd[0] = 0;
    for (unsigned j = 0; j < d; j++)
        Kd[j + 1] = Kd[j] + kd[j];
    const unsigned K = Kd[d - 1];
    const uint64_t hmax = span >> K, kmask = ((uint64_t)1 << K) - 1;
    const size_t n = p->nodes[x].size, rows = span + 1;
    /* steps off the multiples of 2^K, per group */
    uint32_t J = 0;
    for (uint32_t c = 0; c < groups; c++) {
        uint32_t cnt = 0;
        for (uint64_t t = 1; t <= span; t++)
            cnt += (t & kmask) && tabs[c * rows + t] != tabs[c * rows + t - 1];
        J = cnt > J ? cnt : J;
    }
    /* many steps: selection by the top part (per element nh reads ks bits
     * wide and nh one bit wider than the values) where the table's values
     * are narrower than the reads, against the threshold method's J (d - 1)
     * 2-bit reads, each PBS at read_price. A quarter of the other's price
     * or less decides (selection: random tables; threshold reads: the
     * usual activation's few steps); in between the choice is open, and
     * the search compiles the program both ways (compile_once's
     * select_open) and keeps the cheaper, with the sets each gets (the
     * PBS-count rule before this gave random 4-bit tables of 128 to 256
     * pieces at 9 and 10 bits programs up to 1.9x dearer,
     * docs/results/HISTORY.md 0p) */
    const unsigned ks = w - 1 < P ? w - 1 : P;
    const uint64_t nh = (span >> ks) + 1;
    uint32_t out = 0, F = 0;
    /* (its last read, u = Y_h + S flag, is one bit wider than the table's
     * values: only narrow values, else that read would be a wide lookup of
     * as many steps again) */
    const unsigned vb = veil_bits_for_range(0, thi - tlo) + 1; /* that last read's width */
    const int can_select = J >= 2 && w - ks <= P && vb <= P && 2 * nh * n <= WIDE_MAX_COPIES;
    const double sel_price = (double)nh * (read_price(b, ks) + read_price(b, vb < 32 ? vb : 32)),
                 thr_price = (double)J * (d - 1) * read_price(b, 2);
    const int sure = 4 * sel_price <= thr_price, open = !sure && sel_price < 4 * thr_price;
    /* the WoP-PBS where asked (--wop): always, or below both methods'
     * whole prices: the above, plus their ROUND chunks and the reads every
     * table has (selection: the top part's rotation; threshold reads: F
     * and each digit's rotation), which the choice between the two leaves
     * out */
    const double wprice =
        b->o->wop != VEIL_WOP_OFF && !b->no_wop ? wop_price(b, w, tlo, thi) : INFINITY;
    double digits_price = thr_price + read_price(b, kd[d - 1]);
    for (unsigned j = 0; j < d; j++)
        digits_price += read_price(b, kd[j]) + (j ? round_price(b, g + Kd[j]) : 0);
    if (can_select)
        digits_price =
            fmin(digits_price, sel_price + read_price(b, w - ks) + round_price(b, g + ks));
    if (wprice < INFINITY && (b->o->wop == VEIL_WOP_ALWAYS || wprice < digits_price)) {
        VEIL_TRY(wop_lookup(b, layer, x, off, g, span, groups, tabs, shape, tlo, thi, &out));
        return lookup_done(b, first, out, tlo, thi, internal, out_idx);
    }
    b->n_open += can_select && open;
    if (can_select && (sure || (open && b->select_open))) {
        VEIL_TRY(select_lookup(b, layer, x, off, g, span, groups, tabs, shape, ks, tlo, thi, &out));
        return lookup_done(b, first, out, tlo, thi, internal, out_idx);
    }
    if (J <= WIDE_MAX_STEPS && 2 * (uint64_t)J * n > WIDE_MAX_COPIES)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: the table changes value at %u points of its %u-bit input off "
                          "the multiples of 2^%u, on %zu elements: an exact wide lookup would "
                          "hold %llu ciphertexts a sample in one node, and veil allows %llu "
                          "(round the accumulator with --rounding-bits)",
                          layer, J, w, K, n, (unsigned long long)(2 * (uint64_t)J * n),
                          (unsigned long long)WIDE_MAX_COPIES);
    if (J > WIDE_MAX_STEPS)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: the table changes value at %u points of its %u-bit input off "
                          "the multiples of 2^%u; an exact wide lookup compares the digits with "
                          "each (about %u PBS a point) and veil allows %u points (wider "
                          "--lookup-bits select by the top part instead; or round the "
                          "accumulator with --rounding-bits)",
                          layer, J, w, K, d > 1 ? d - 1 : 1, WIDE_MAX_STEPS);
    const veil_shape flat = {1, {(uint32_t)n}};
    /* R_j, j = 1..d-1 */
    uint32_t *R = wd.R;
    R[0] = x;
    for (unsigned j = 1; j < d; j++)
        VEIL_TRY(round_node(b, layer, x, off, g, Kd[j], span, &R[j]));
    /* F = T[H * 2^K] */
    int64_t *ft = malloc((size_t)groups * (hmax + 1) * sizeof *ft);
    if (!ft) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint32_t c = 0; c < groups; c++)
        for (uint64_t h = 0; h <= hmax; h++)
            ft[c * (hmax + 1) + h] = tabs[c * rows + (h << K)];
    veil_status st = lookup(b, layer, R[d - 1], 0, g + K, hmax, groups, ft, &flat, 1, &F);
    free(ft);
    VEIL_TRY(st);
    out = F;
    if (J) {
        wd.d = d;
        wd.hmax = hmax;
        wd.n = n;
        /* step s of group c, in order: its position t and delta */
        uint64_t *st_t = calloc((size_t)J * groups, sizeof *st_t);
        int64_t *st_d = calloc((size_t)J * groups, sizeof *st_d);
        if (!st_t || !st_d) {
            free(st_t);
            free(st_d);
            return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        }
        for (uint32_t c = 0; c < groups; c++) {
            uint32_t s = 0;
            for (uint64_t t = 1; t <= span; t++) {
                int64_t dl = tabs[c * rows + t] - tabs[c * rows + t - 1];
                if (!(t & kmask) || !dl) continue;
                st_t[(size_t)s * groups + c] = t;
                st_d[(size_t)s * groups + c] = dl;
                s++;
            }
        }
        const i128 tw = (i128)thi - tlo, lim = (i128)1 << 62;
        uint32_t sum = 0;
        st = step_sum(b, layer, &wd, J, st_t, st_d, (int64_t)sat128(-tw, lim),
                      (int64_t)sat128(tw, lim), &sum);
        free(st_t);
        free(st_d);
        VEIL_TRY(st);
        VEIL_TRY(add_node(b, layer, F, sum, shape, &out));
    }
    if (out == F) p->nodes[out].shape = *shape, p->nodes[out].size = veil_shape_size(shape);
    return lookup_done(b, first, out, tlo, thi, internal, out_idx);
}

static veil_status add_lut(builder *b, const veil_model_layer *l, uint32_t x_idx,
                           const veil_shape *shape, uint32_t *out_idx) {
    veil_program *p = b->p;
    const veil_node *x = &p->nodes[x_idx];
    const int64_t lo = x->lo, hi = x->hi;
    const uint64_t span = (uint64_t)hi - (uint64_t)lo;
    const unsigned w = veil_bits_for_range(0, (int64_t)span);
    if (w > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: lookup input of %u bits (range [%lld, %lld]); veil reads at "
                          "most %u bits (%s)",
                          l->name, w, (long long)lo, (long long)hi, VEIL_MAX_BITS,
                          b->o->bounds == VEIL_BOUNDS_WORST_CASE
                              ? "try --bounds calibration, or a model with narrower accumulators"
                              : "quantize the layer's inputs or weights with fewer bits");
    unsigned k = 0;
    const unsigned keep = b->o->rounding_bits;
    if (keep && w > keep) {
        for (k = 1; k < w; k++) {
            uint64_t rmax = (span + ((uint64_t)1 << (k - 1))) >> k;
            if (veil_bits_for_range(0, (int64_t)rmax) <= keep) break;
        }
    }
    const uint64_t r_max = k ? (span + ((uint64_t)1 << (k - 1))) >> k : span;
    const int64_t offset = -lo + (k ? ((int64_t)1 << (k - 1)) : 0);
    /* T'[r] = T[clamp(lo + r * 2^k, lo, hi)], clamped to the table (schema) */
    VEIL_TRY(check_later(b, x_idx));
    const size_t size = (size_t)(l->in_max - l->in_min) + 1;
    int64_t *tabs = malloc((size_t)l->n_tables * (r_max + 1) * sizeof *tabs);
    if (!tabs) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint32_t c = 0; c < l->n_tables; c++)
        for (uint64_t r = 0; r <= r_max; r++) {
            i128 v = (i128)lo + ((i128)r << k);
            if (v > hi) v = hi;
            if (v < l->in_min) v = l->in_min;
            if (v > l->in_max) v = l->in_max;
            tabs[c * (r_max + 1) + r] = l->table[c * size + (size_t)(v - l->in_min)];
        }
    veil_status st;
    if (k && b->o->rounding == VEIL_ROUNDING_APPROXIMATE &&
        veil_bits_for_range(0, (int64_t)r_max) > b->lut_bits) {
        /* one PBS reads the rounded value: it cannot be split into narrower reads */
        st = veil_error(VEIL_ERR_UNSUPPORTED,
                        "layer %s: --rounding approximate reads its %u rounded bits in one PBS, "
                        "wider than the %u-bit lookups of this program (--lookup-bits; --rounding "
                        "exact decomposes its reads)",
                        l->name, veil_bits_for_range(0, (int64_t)r_max), b->lut_bits);
    } else if (k && b->o->rounding == VEIL_ROUNDING_APPROXIMATE) {
        st = lut_node(b, l->name, x_idx, offset, k, r_max, l->n_tables, tabs, shape, 1, 0, out_idx);
    } else if (k) {
        uint32_t r_idx;
        st = new_node(b, VEIL_NODE_ROUND, l->name, 1, &x_idx, &p->nodes[x_idx].shape, &r_idx);
        if (st == VEIL_OK) {
            p->nodes[r_idx].offset = offset;
            p->nodes[r_idx].round_bits = k;
            st = finish_node(b, r_idx);
        }
        /* after ROUND the value is already offset */
        if (st == VEIL_OK)
            st = lookup(b, l->name, r_idx, 0, k, r_max, l->n_tables, tabs, shape, 0, out_idx);
    } else {
        st = lookup(b, l->name, x_idx, offset, 0, r_max, l->n_tables, tabs, shape, 0, out_idx);
    }
    free(tabs);
    return st;
}

/* Bits of the differences a - b of values in [lo, hi] (the span 2 (hi - lo)
 * of a lookup index), without overflow: 64 past 62 bits. */
static unsigned diff_bits(int64_t lo, int64_t hi) {
    const uint64_t w = (uint64_t)hi - (uint64_t)lo;
    return w < ((uint64_t)1 << 61) ? veil_bits_for_range(0, (int64_t)(2 * w)) : 64;
}

/* Window element (dy, dx) of every channel's window of x under the pool
 * geometry g: a convolution whose only weights are 1 at (c, c, dy, dx). */
static veil_status window_element(builder *b, const char *layer, uint32_t x,
                                  const veil_conv_geom *g, uint32_t dy, uint32_t dx,
                                  const veil_shape *shape, uint32_t *out_idx) {
    veil_program *p = b->p;
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_LINEAR, layer, 1, &x, shape, &idx));
    veil_node *n = &p->nodes[idx];
    n->linear = VEIL_LINEAR_CONV2D;
    n->conv = *g;
    n->sum_w2 = 1;
    const size_t kk = (size_t)g->kh * g->kw;
    n->weight = calloc((size_t)g->c_out * g->c_in * kk, sizeof *n->weight);
    if (!n->weight) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint32_t c = 0; c < g->c_out; c++)
        n->weight[((size_t)c * g->c_in + c) * kk + (size_t)dy * g->kw + dx] = 1;
    VEIL_TRY(finish_node(b, idx));
    *out_idx = idx;
    return VEIL_OK;
}

/* max(a, b) = b + relu(a - b) of two nodes with values in [lo, hi]: a
 * negation (a 1x1 convolution by -1), an ADD, one exact lookup on the
 * difference (decomposed when it is wider than the program's reads) and an
 * ADD (Concrete's "subtraction" min/max strategy, one TLU on x - y plus y:
 * docs/core-features/minmax/subtraction.md in zama-ai/concrete). The ranges are the construction's,
 * never narrowed by calibration: a value inside [lo, hi] must not read outside the difference's
 * range. */
static veil_status max_pair(builder *b, const char *layer, uint32_t a, uint32_t bn, int64_t lo,
                            int64_t hi, const int64_t *relu, uint32_t *out_idx) {
    const size_t n = b->p->nodes[a].size;
    const veil_shape flat = {1, {(uint32_t)n}};
    const int64_t w = (int64_t)sat128((i128)hi - lo, (i128)1 << 62);
    uint32_t nb, d, r, m;
    VEIL_TRY(sub_node(b, layer, a, bn, &flat, &nb, &d));
    set_range(b, nb, -hi, -lo);
    set_range(b, d, -w, w);
    /* a ramp is no staircase: wider than the reads it would cost a PBS per
     * value of the difference (the threshold method, 2^(bits - 1) steps) */
    if (b->p->nodes[d].bits > b->lut_bits)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: a max pool of values in [%lld, %lld]: their differences need "
                          "%u bits, wider than the %u-bit lookups of this program; pool a "
                          "quantized tensor (put the quantizer before the pool) or one that a "
                          "non-decreasing lookup alone reads",
                          layer, (long long)lo, (long long)hi, b->p->nodes[d].bits, b->lut_bits);
    VEIL_TRY(lookup(b, layer, d, w, 0, 2 * (uint64_t)w, 1, relu, &flat, 1, &r));
    VEIL_TRY(add_node(b, layer, bn, r, &flat, &m));
    set_range(b, m, lo, hi);
    *out_idx = m;
    return VEIL_OK;
}

/* A lookup-read operand's range (a max pool's, a product's): a LUT node's
 * widened to its tables' (a lookup's output never leaves its table,
 * whatever calibration saw; the node's class width comes from its readers,
 * so this costs nothing), any other node's the compiled one, which the
 * range check then watches. */
static veil_status operand_range(builder *b, uint32_t x_idx) {
    veil_program *p = b->p;
    if (p->nodes[x_idx].kind == VEIL_NODE_LUT) {
        veil_node tables = p->nodes[x_idx]; /* its worst case: the range of its tables */
        worst_case(p, &tables);
        set_range(b, x_idx, tables.lo, tables.hi);
    }
    return check_later(b, x_idx);
}

/* A max pool: per output element the maximum of its window's K = kh * kw
 * values, as a tree of max_pair (K - 1 PBS per element, ceil(log2 K) of them
 * in a row). Its operand's range is the lookup table's when a lookup gives
 * it (table_range, or read from a LUT node: a lookup's output never leaves
 * its table, whatever calibration saw), else the compiled one, which the
 * range check then watches. calib: the stored calib_range of the tensor the
 * result stands for ([0, 0]: none). */
static veil_status add_maxpool(builder *b, const veil_model_layer *l, uint32_t x_idx,
                               const int64_t *table_range, const int64_t *calib,
                               uint32_t *out_idx) {
    veil_program *p = b->p;
    veil_node *x = &p->nodes[x_idx];
    if (table_range) {
        set_range(b, x_idx, table_range[0], table_range[1]);
        VEIL_TRY(check_later(b, x_idx));
    } else {
        VEIL_TRY(operand_range(b, x_idx));
    }
    const int64_t lo = x->lo, hi = x->hi;
    const veil_conv_geom g = veil_layer_conv_geom(l, &x->shape);
    const uint64_t w = (uint64_t)hi - (uint64_t)lo;
    if (diff_bits(lo, hi) > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: max pool of values in [%lld, %lld]: their differences need "
                          "%u bits, veil reads at most %u",
                          l->name, (long long)lo, (long long)hi, diff_bits(lo, hi), VEIL_MAX_BITS);
    const uint32_t K = g.kh * g.kw;
    if (K > VEIL_MAXPOOL_WINDOW_MAX)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: a max pool window of %u x %u values; veil compiles at most %u",
                          l->name, g.kh, g.kw, VEIL_MAXPOOL_WINDOW_MAX);
    uint32_t *t = malloc((size_t)K * sizeof *t);
    int64_t *relu = malloc((2 * w + 1) * sizeof *relu);
    veil_status st = t && relu ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint64_t r = 0; relu && r <= 2 * w; r++)
        relu[r] = r > w ? (int64_t)(r - w) : 0;
    const size_t first = p->n_nodes;
    /* Padding: the pool runs on x - lo >= 0, where the selections' zero
     * padding is the smallest value and so never the maximum (PyTorch's
     * -inf), and lo is added back at the end. */
    const int pad = g.pad_h || g.pad_w;
    const int64_t base = pad ? lo : 0;
    uint32_t src = x_idx;
    if (st == VEIL_OK && pad) {
        const veil_shape xs = p->nodes[x_idx].shape; /* nodes may move */
        st = scale_node(b, l->name, x_idx, 1, -lo, &xs, &src);
        if (st == VEIL_OK) set_range(b, src, 0, (int64_t)w);
    }
    for (uint32_t j = 0; st == VEIL_OK && j < K; j++) {
        st = window_element(b, l->name, src, &g, j / g.kw, j % g.kw, &l->out_shape, &t[j]);
        if (st == VEIL_OK) set_range(b, t[j], lo - base, hi - base);
    }
    /* pairwise, level by level: t[0..K) -> t[0..ceil(K/2)) -> ... */
    for (uint32_t k = K; st == VEIL_OK && k > 1; k = (k + 1) / 2) {
        for (uint32_t j = 0; st == VEIL_OK && j < k / 2; j++)
            st = max_pair(b, l->name, t[2 * j], t[2 * j + 1], lo - base, hi - base, relu, &t[j]);
        if (k % 2) t[k / 2] = t[k - 1]; /* an odd last one moves up as it is */
    }
    if (st == VEIL_OK && pad) {
        st = scale_node(b, l->name, t[0], 1, lo, &l->out_shape, &t[0]);
        if (st == VEIL_OK) set_range(b, t[0], lo, hi);
    }
    uint32_t out = 0;
    if (st == VEIL_OK) {
        out = t[0];
        veil_node *o = &p->nodes[out];
        o->shape = l->out_shape;
        o->size = veil_shape_size(&l->out_shape);
        p->nodes[first].report_op = "maxpool2d";
    }
    free(t);
    free(relu);
    VEIL_TRY(st);
    /* the layer's calibrated range with the stated margin, if narrower */
    if (b->o->bounds == VEIL_BOUNDS_CALIBRATION && (calib[0] || calib[1])) {
        veil_node *o = &p->nodes[out];
        int64_t clo = calib[0], chi = calib[1];
        widen_by_margin(b->o->range_margin, &clo, &chi);
        o->lo = clo > o->lo ? clo : o->lo;
        o->hi = chi < o->hi ? chi : o->hi;
        if (o->lo > o->hi) o->lo = o->hi;
        o->bits = veil_bits_for_range(o->lo, o->hi);
    }
    for (size_t i = first; b->cal && i < p->n_nodes; i++)
        if (i != out) {
            cal_give(b->pool, b->cal[i], b->cal_cap[i]);
            b->cal[i] = NULL;
        }
    *out_idx = out;
    return VEIL_OK;
}

/* [min, max] over every entry of a lut layer's tables. */
static void table_minmax(const veil_model_layer *l, int64_t out[2]) {
    const size_t n = (size_t)l->n_tables * (size_t)(l->in_max - l->in_min + 1);
    out[0] = out[1] = l->table[0];
    for (size_t i = 1; i < n; i++) {
        out[0] = l->table[i] < out[0] ? l->table[i] : out[0];
        out[1] = l->table[i] > out[1] ? l->table[i] : out[1];
    }
}

/* A max pool and the lookup after it commute when every table of the lookup
 * is non-decreasing (max f(a_i) = f(max a_i), also with rounding, which is
 * non-decreasing too): the lookup then runs on every value of the windows
 * and the pool on its narrow results, where the pool's differences of the
 * accumulator (PyTorch's F.relu(F.max_pool2d(conv(x), 2))) would be wide
 * lookups. Returns that lookup's layer index when max pool li (operand node
 * x) is read by one layer only, a lut, and not by a model output, its
 * tables are non-decreasing, and its differences are wider than the
 * lookup's results'; else -1. */
static int pool_before_lut(const builder *b, uint32_t li, uint32_t x) {
    const veil_model *m = b->m;
    const char *name = m->layers[li].name;
    for (uint32_t o = 0; o < m->n_outputs; o++)
        if (!strcmp(m->outputs[o].source, name)) return -1;
    int reader = -1;
    for (uint32_t j = li + 1; j < m->n_layers; j++)
        for (uint32_t k = 0; k < m->layers[j].n_inputs; k++)
            if (!strcmp(m->layers[j].inputs[k], name)) {
                if (reader >= 0 || m->layers[j].op != VEIL_OP_LUT) return -1;
                reader = (int)j;
            }
    if (reader < 0) return -1;
    const veil_model_layer *l = &m->layers[reader];
    const size_t T = (size_t)(l->in_max - l->in_min + 1);
    for (uint32_t c = 0; c < l->n_tables; c++)
        for (size_t t = 1; t < T; t++)
            if (l->table[c * T + t] < l->table[c * T + t - 1]) return -1;
    int64_t tr[2];
    table_minmax(l, tr);
    const veil_node *xn = &b->p->nodes[x];
    const unsigned wide = diff_bits(xn->lo, xn->hi), narrow = diff_bits(tr[0], tr[1]);
    return wide > narrow ? reader : -1;
}

/* The exact lookup floor(v^2 / div) of x, v in [lo, hi] (|v| < 2^16, the
 * table the whole range: an internal lookup) */
static veil_status square_lookup(builder *b, const char *layer, uint32_t x, int64_t lo, int64_t hi,
                                 int64_t div, const veil_shape *shape, uint32_t *out_idx) {
    const uint64_t span = (uint64_t)hi - (uint64_t)lo;
    int64_t *tab = malloc((span + 1) * sizeof *tab);
    if (!tab) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint64_t r = 0; r <= span; r++) {
        const int64_t v = lo + (int64_t)r;
        tab[r] = v * v / div; /* v^2 >= 0: the floor */
    }
    const veil_status st = lookup(b, layer, x, -lo, 0, span, 1, tab, shape, 1, out_idx);
    free(tab);
    return st;
}

/* a * b of two tensors of one shape (as the Concrete compiler's
 * EncryptedMulToDoubleTLU pass does it: a TLU on the sum, one on the
 * difference): a b = floor(s^2 / 4) - floor(d^2 / 4) with s = a + b and
 * d = a - b, exact since s and d have one parity (s - d = 2 b), so s^2 and
 * d^2 are equal mod 4. Two exact lookups per element, on s and d, whose
 * ranges (and tables) are what the operands' ranges give (operand_range: a
 * lookup's output its whole table), never narrowed by calibration: operands
 * inside their ranges read inside the tables; then an ADD of the first and
 * the negated second. x * x (one
 * operand twice) is one lookup of the square. */
static veil_status add_mul(builder *b, const veil_model_layer *l, const uint32_t ins[2],
                           uint32_t *out_idx) {
    veil_program *p = b->p;
    VEIL_TRY(operand_range(b, ins[0]));
    if (ins[1] != ins[0]) VEIL_TRY(operand_range(b, ins[1]));
    const size_t n = p->nodes[ins[0]].size;
    const veil_shape flat = {1, {(uint32_t)n}};
    const i128 alo = p->nodes[ins[0]].lo, ahi = p->nodes[ins[0]].hi;
    const i128 blo = p->nodes[ins[1]].lo, bhi = p->nodes[ins[1]].hi;
    const i128 lim = (i128)1 << VEIL_MAX_BITS; /* |s|, |d| < 2^16: s^2 / 4 < 2^30 */
    if (ins[0] == ins[1]) {                    /* x * x: one lookup of the square */
        if (alo <= -lim || ahi >= lim)
            return veil_error(VEIL_ERR_UNSUPPORTED,
                              "layer %s: a square of values in [%lld, %lld], past the %d bits veil "
                              "compiles; quantize the operand to fewer bits",
                              l->name, (long long)alo, (long long)ahi, VEIL_MAX_BITS);
        const size_t first = p->n_nodes;
        VEIL_TRY(square_lookup(b, l->name, ins[0], (int64_t)alo, (int64_t)ahi, 1, &l->out_shape,
                               out_idx));
        for (size_t j = first; j < p->n_nodes; j++) /* the report's row, whichever comes first */
            p->nodes[j].report_op = "mul";
        return VEIL_OK;
    }
    const i128 lo[2] = {alo + blo, alo - bhi}, hi[2] = {ahi + bhi, ahi - blo};
    for (int k = 0; k < 2; k++)
        if (lo[k] <= -lim || hi[k] >= lim)
            return veil_error(VEIL_ERR_UNSUPPORTED,
                              "layer %s: a product of values in [%lld, %lld] and [%lld, %lld]: "
                              "its lookups read a %s b in [%lld, %lld], past the %d bits veil "
                              "compiles; quantize the operands to fewer bits",
                              l->name, (long long)alo, (long long)ahi, (long long)blo,
                              (long long)bhi, k ? "-" : "+", (long long)lo[k], (long long)hi[k],
                              VEIL_MAX_BITS);
    uint32_t sd[2], q[2], nb, nq;
    VEIL_TRY(add_node(b, l->name, ins[0], ins[1], &flat, &sd[0]));
    p->nodes[sd[0]].report_op = "mul"; /* the report's row */
    VEIL_TRY(sub_node(b, l->name, ins[0], ins[1], &flat, &nb, &sd[1]));
    set_range(b, nb, (int64_t)-bhi, (int64_t)-blo);
    for (int k = 0; k < 2; k++) {
        set_range(b, sd[k], (int64_t)lo[k], (int64_t)hi[k]);
        VEIL_TRY(square_lookup(b, l->name, sd[k], (int64_t)lo[k], (int64_t)hi[k], 4, &flat, &q[k]));
    }
    VEIL_TRY(sub_node(b, l->name, q[0], q[1], &l->out_shape, &nq, out_idx));
    /* the product's own range, inside the worst case of the two tables' */
    i128 plo = alo * blo, phi = plo;
    const i128 c[3] = {alo * bhi, ahi * blo, ahi * bhi};
    for (int k = 0; k < 3; k++) {
        plo = c[k] < plo ? c[k] : plo;
        phi = c[k] > phi ? c[k] : phi;
    }
    veil_node *o = &p->nodes[*out_idx];
    if (o->lo < plo || o->hi > phi)
        set_range(b, *out_idx, o->lo > plo ? o->lo : (int64_t)plo,
                  o->hi < phi ? o->hi : (int64_t)phi);
    return VEIL_OK;
}

static veil_status add_layer(builder *b, uint32_t li) {
    const veil_model *m = b->m;
    const veil_model_layer *l = &m->layers[li];
    veil_program *p = b->p;
    uint32_t ins[64];
    for (uint32_t j = 0; j < l->n_inputs && j < 64; j++) {
        int is_in = 0;
        int t = veil_model_find(m, l->inputs[j], &is_in);
        VEIL_ASSERT(t >= 0);
        ins[j] = b->tensor_node[is_in ? (uint32_t)t : m->n_inputs + (uint32_t)t];
    }
    uint32_t idx = 0;
    if (l->op == VEIL_OP_MAXPOOL2D) {
        const int j = pool_before_lut(b, li, ins[0]);
        if (j >= 0) {
            /* run after the lookup that reads it (its only reader) */
            b->pool_after[j] = li + 1;
            b->tensor_node[m->n_inputs + li] = ins[0];
            return VEIL_OK;
        }
        VEIL_TRY(add_maxpool(b, l, ins[0], NULL, l->calib_range, &idx));
        b->tensor_node[m->n_inputs + li] = idx;
        return VEIL_OK;
    }
    if (l->op == VEIL_OP_LUT && b->pool_after[li]) {
        const veil_model_layer *pl = &m->layers[b->pool_after[li] - 1];
        int64_t tr[2];
        table_minmax(l, tr);
        const veil_shape unpooled = p->nodes[ins[0]].shape; /* nodes may move */
        VEIL_TRY(add_lut(b, l, ins[0], &unpooled, &idx));
        VEIL_TRY(add_maxpool(b, pl, idx, tr, l->calib_range, &idx));
        b->tensor_node[m->n_inputs + li] = idx;
        return VEIL_OK;
    }
    if (l->op == VEIL_OP_LUT) {
        VEIL_TRY(add_lut(b, l, ins[0], &l->out_shape, &idx));
        b->tensor_node[m->n_inputs + li] = idx;
        return VEIL_OK;
    }
    if (l->op == VEIL_OP_MUL) {
        VEIL_TRY(add_mul(b, l, ins, &idx));
        b->tensor_node[m->n_inputs + li] = idx;
        return VEIL_OK;
    }
    if (l->op == VEIL_OP_SUB) {
        uint32_t neg;
        VEIL_TRY(sub_node(b, l->name, ins[0], ins[1], &l->out_shape, &neg, &idx));
        p->nodes[neg].report_op = p->nodes[idx].report_op = "sub"; /* the report's row */
        b->tensor_node[m->n_inputs + li] = idx;
        return VEIL_OK;
    }
    veil_node_kind kind = l->op == VEIL_OP_ADD ? VEIL_NODE_ADD : VEIL_NODE_LINEAR;
    VEIL_TRY(new_node(b, kind, l->name, l->n_inputs, ins, &l->out_shape, &idx));
    veil_node *n = &p->nodes[idx];
    const veil_node *x = &p->nodes[ins[0]];
    switch (l->op) {
    case VEIL_OP_LINEAR: {
        n->linear = VEIL_LINEAR_DENSE;
        n->n_weight_rows = l->weight_shape.dim[0];
        n->n_weight_cols = l->weight_shape.dim[1];
        break;
    }
    case VEIL_OP_CONV2D:
    case VEIL_OP_AVGPOOL2D: {
        n->linear = l->op == VEIL_OP_CONV2D ? VEIL_LINEAR_CONV2D : VEIL_LINEAR_SUMPOOL2D;
        n->conv = veil_layer_conv_geom(l, &x->shape);
        break;
    }
    case VEIL_OP_FLATTEN:
        n->linear = VEIL_LINEAR_FLATTEN;
        break;
    case VEIL_OP_RESHAPE: /* the same data, another shape */
        n->linear = VEIL_LINEAR_FLATTEN;
        n->report_op = "reshape";
        break;
    case VEIL_OP_CONCAT:
        n->linear = VEIL_LINEAR_CONCAT;
        break;
    default:
        break;
    }
    if (l->weight) {
        size_t nw = veil_shape_size(&l->weight_shape);
        n->weight = malloc(nw * sizeof *n->weight);
        if (!n->weight) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        memcpy(n->weight, l->weight, nw * sizeof *n->weight);
        size_t rows = l->weight_shape.dim[0], cols = nw / rows;
        n->sum_w2 = 0;
        for (size_t r = 0; r < rows; r++) {
            double s = 0;
            for (size_t c = 0; c < cols; c++)
                s += (double)n->weight[r * cols + c] * (double)n->weight[r * cols + c];
            n->sum_w2 = s > n->sum_w2 ? s : n->sum_w2;
        }
    } else if (n->linear == VEIL_LINEAR_SUMPOOL2D) {
        n->sum_w2 = (double)n->conv.kh * n->conv.kw;
    } else {
        n->sum_w2 = 1;
    }
    if (l->bias) {
        size_t nb = l->weight_shape.dim[0];
        n->bias = malloc(nb * sizeof *n->bias);
        if (!n->bias) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        memcpy(n->bias, l->bias, nb * sizeof *n->bias);
    }
    /* [0, 0]: not stored (the attribute is optional) */
    b->seen = l->calib_range[0] || l->calib_range[1] ? l->calib_range : NULL;
    veil_status st = finish_node(b, idx);
    b->seen = NULL;
    VEIL_TRY(st);
    b->tensor_node[m->n_inputs + li] = idx;
    return VEIL_OK;
}

/* ---- range check (veil/program.h, "Range check") ------------------------------ */

/* Bits of the encoding node n needs (0: none): a lookup's read, an output's
 * range. The program's width is the largest. */
static unsigned node_width(const veil_node *n) {
    if (n->kind == VEIL_NODE_LUT) return n->round_bits + n->in_bits;
    if (n->kind == VEIL_NODE_OUTPUT) return veil_bits_for_span(n->lo, n->hi);
    return 0;
}

/* reach[i] = 1 for every node output `root` depends on (nodes are in
 * topological order). */
static void mark_ancestors(const veil_program *p, uint32_t root, uint8_t *reach) {
    memset(reach, 0, p->n_nodes);
    reach[root] = 1;
    for (size_t i = root + 1; i-- > 0;)
        if (reach[i])
            for (uint32_t j = 0; j < p->nodes[i].n_in; j++)
                reach[p->nodes[i].in[j]] = 1;
}

/* After the model's outputs: a flag lookup per checked node, summed per
 * model output by a 0/1 dense layer, as one more output. */
static veil_status add_range_check(builder *b) {
    veil_program *p = b->p;
    const uint32_t n_out = p->n_outputs;
    if (n_out >= VEIL_MAX_PORTS)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "compile: --range-check on: the model has %u outputs, the most a "
                          "program has; the check would be one more",
                          n_out);
    for (uint32_t o = 0; o < n_out; o++) {
        /* an output a lookup layer gives needs no check: a LUT node is never
         * narrowed (check_later). Decomposed, the lookup ends in an ADD of
         * partial lookups: checked unless its range holds the layer's whole
         * table (calibration may have narrowed it) */
        int is_in = 0;
        const int t = veil_model_find(b->m, b->m->outputs[o].source, &is_in);
        const uint32_t src = p->nodes[p->output_nodes[o]].in[0];
        if (t >= 0 && !is_in && b->m->layers[t].op == VEIL_OP_LUT &&
            p->nodes[src].kind != VEIL_NODE_LUT) {
            const veil_model_layer *l = &b->m->layers[t];
            const size_t size = (size_t)((uint64_t)l->in_max - (uint64_t)l->in_min + 1);
            if (holds_entries(p->nodes[src].lo, p->nodes[src].hi, l->table, l->n_tables, size))
                continue;
        }
        VEIL_TRY(check_later(b, src));
    }
    const size_t n_model_nodes = p->n_nodes;
    p->range_check_first = n_model_nodes;
    /* narrow: no window wider than the model's own encoding (when one more
     * bit costs a parameter set that no longer fits the noise) */
    unsigned model_width = 1;
    for (size_t i = 0; i < n_model_nodes; i++)
        model_width =
            node_width(&p->nodes[i]) > model_width ? node_width(&p->nodes[i]) : model_width;
    uint8_t *reach = malloc((size_t)n_out * n_model_nodes + 1);
    uint32_t *outs = realloc(p->output_nodes, (n_out + 1) * sizeof *outs);
    if (outs) p->output_nodes = outs;
    if (!reach || !outs) {
        free(reach);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    for (uint32_t o = 0; o < n_out; o++)
        mark_ancestors(p, p->output_nodes[o], reach + (size_t)o * n_model_nodes);
    veil_status st = VEIL_OK;
    uint32_t sum = UINT32_MAX;
    int64_t sum_hi = 0;
    const veil_shape counts = {1, {n_out}};
    for (size_t c = 0; st == VEIL_OK && c < b->n_checked; c++) {
        const uint32_t x = b->checked[c];
        const veil_node *xn = &p->nodes[x];
        const size_t size = xn->size;
        const int64_t lo = xn->lo;
        const uint64_t span = (uint64_t)xn->hi - (uint64_t)xn->lo;
        /* headroom: one more bit than the range needs, centred: a >= W / 2
         * each side (W = span + 1 <= 2^w); at most 16 bits in all */
        const unsigned need = veil_bits_for_range(0, (int64_t)span) + 1;
        unsigned wb = need < VEIL_MAX_BITS ? need : VEIL_MAX_BITS;
        if (b->check_narrow && wb > model_width) wb = model_width;
        const uint64_t maxw = ((uint64_t)1 << wb) - 1;
        const uint64_t a = span < maxw ? (maxw - span) / 2 : 0;
        const uint64_t win = span + 2 * a;
        char name[160];
        snprintf(name, sizeof name, "%s:%s", VEIL_RANGE_CHECK_OUTPUT, xn->layer);
        int64_t *tab = malloc((win + 1) * sizeof *tab);
        if (!tab) {
            st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
            break;
        }
        for (uint64_t r = 0; r <= win; r++)
            tab[r] = r < a || r > a + span;
        const veil_shape flat = {1, {(uint32_t)size}};
        uint32_t flag, dense;
        /* r = x - (lo - a) */
        st = lookup(b, name, x, (int64_t)a - lo, 0, win, 1, tab, &flat, 1, &flag);
        free(tab);
        if (st != VEIL_OK) break;
        st = new_node(b, VEIL_NODE_LINEAR, name, 1, &flag, &counts, &dense);
        if (st != VEIL_OK) break;
        veil_node *d = &p->nodes[dense];
        d->linear = VEIL_LINEAR_DENSE;
        d->n_weight_rows = n_out;
        d->n_weight_cols = size;
        d->weight = calloc((size_t)n_out * size, sizeof *d->weight);
        if (!d->weight) {
            st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
            break;
        }
        uint64_t ones = 0;
        for (uint32_t o = 0; o < n_out; o++)
            if (reach[(size_t)o * n_model_nodes + x]) {
                for (size_t e = 0; e < size; e++)
                    d->weight[(size_t)o * size + e] = 1;
                ones = size;
            }
        d->sum_w2 = (double)(ones ? ones : 1);
        if ((st = finish_node(b, dense)) != VEIL_OK) break;
        /* counts, not calibrated values: every count from 0 to all */
        set_range(b, dense, 0, (int64_t)ones);
        p->range_check_values += size;
        if (sum == UINT32_MAX) {
            sum = dense;
            sum_hi = (int64_t)ones;
        } else {
            uint32_t s2;
            if ((st = add_node(b, name, sum, dense, &counts, &s2)) != VEIL_OK) break;
            sum_hi += (int64_t)ones;
            set_range(b, s2, 0, sum_hi);
            sum = s2;
        }
    }
    free(reach);
    VEIL_TRY(st);
    if (sum == UINT32_MAX)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "compile: --range-check on: the model reads no value a lookup or an "
                          "output could see out of range (nothing to check)");
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_OUTPUT, VEIL_RANGE_CHECK_OUTPUT, 1, &sum, &counts, &idx));
    VEIL_TRY(finish_node(b, idx));
    p->output_nodes[n_out] = idx;
    p->n_outputs = n_out + 1;
    p->range_check = 1;
    return VEIL_OK;
}

size_t veil_program_range_check_warn(const veil_program *p, const char *const *model_output_names,
                                     int64_t *const *outputs, size_t n, const char *who, FILE *f) {
    if (!p->range_check) return 0;
    const uint32_t nm = veil_program_model_outputs(p);
    const int64_t *cnt = outputs[p->n_outputs - 1];
    size_t flagged = 0;
    for (size_t s = 0; s < n; s++) {
        int64_t worst = 0;
        for (uint32_t o = 0; o < nm; o++)
            worst = cnt[s * nm + o] > worst ? cnt[s * nm + o] : worst;
        int any = 0;
        for (uint32_t o = 0; o < nm; o++)
            any |= cnt[s * nm + o] != 0;
        if (!any) continue;
        flagged++;
        fprintf(f, "%s: warning: sample %zu: %lld value(s) left their compiled ranges; output", who,
                s, (long long)worst);
        for (uint32_t o = 0, k = 0; o < nm; o++)
            if (cnt[s * nm + o]) fprintf(f, "%s %s", k++ ? "," : "", model_output_names[o]);
        fprintf(f, " may not be the model's (recompile with a wider --range-margin or --bounds "
                   "worst-case)\n");
    }
    return flagged;
}

/* ---- compile ----------------------------------------------------------------- */

static uint32_t uf_find(uint32_t *par, uint32_t i) {
    while (par[i] != i) {
        par[i] = par[par[i]];
        i = par[i];
    }
    return i;
}

static void uf_union(uint32_t *par, uint32_t a, uint32_t b) {
    a = uf_find(par, a);
    b = uf_find(par, b);
    if (a != b) par[a > b ? a : b] = a < b ? a : b;
}

/* Per-value encoding (veil/program.h "Encoding"): the classes of values that
 * share Delta, each as wide as its widest need. */
static veil_status assign_widths(veil_program *p) {
    uint32_t *par = malloc(p->n_nodes * sizeof *par + 1);
    unsigned *need = calloc(p->n_nodes + 1, sizeof *need);
    if (!par || !need) {
        free(par);
        free(need);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    for (size_t i = 0; i < p->n_nodes; i++)
        par[i] = (uint32_t)i;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        switch (n->kind) {
        case VEIL_NODE_LINEAR:
        case VEIL_NODE_ADD:
            for (uint32_t j = 0; j < n->n_in; j++)
                uf_union(par, (uint32_t)i, n->in[j]);
            break;
        case VEIL_NODE_ROUND:
        case VEIL_NODE_OUTPUT:
            uf_union(par, (uint32_t)i, n->in[0]);
            break;
        case VEIL_NODE_INPUT:
        case VEIL_NODE_LUT:
            break;
        }
    }
    veil_status st = VEIL_OK;
    const char *why = NULL;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        unsigned w = 0;
        uint32_t c = uf_find(par, (uint32_t)i);
        if (n->kind == VEIL_NODE_LUT) {
            c = uf_find(par, n->in[0]);
            w = n->round_bits + n->in_bits; /* r's top bit just under the padding */
        } else if (n->kind == VEIL_NODE_ROUND) {
            w = n->round_bits; /* the last chunk's top bit */
        } else if (n->kind == VEIL_NODE_OUTPUT) {
            w = veil_bits_for_span(n->lo, n->hi); /* decoding */
        }
        if (w > need[c]) need[c] = w;
        if (need[c] > 62 && !why) why = n->layer;
    }
    if (why) {
        st = veil_error(VEIL_ERR_UNSUPPORTED, "layer %s: a value needs more than 62 bits", why);
    } else {
        p->width = 1;
        for (size_t i = 0; i < p->n_nodes; i++) {
            const unsigned w = need[uf_find(par, (uint32_t)i)];
            p->nodes[i].width = w ? w : 1;
            if (p->nodes[i].width > p->width) p->width = p->nodes[i].width;
        }
    }
    free(par);
    free(need);
    return st;
}

/* Exact rounding's chunks (veil/program.h "Rounding"): ROUND node n clears
 * its low bits in chunks of c bits (c at most its round_bits: wider is the
 * same single chunk), and its PBS count follows. */
static void set_chunk_bits(veil_node *n, unsigned c) {
    n->chunk_bits = c < n->round_bits ? c : n->round_bits;
    uint64_t per = 0;
    for (unsigned q = 0; q < veil_round_chunk_count(n); q++)
        per += veil_round_chunk_get(n, q).pbs;
    n->pbs_per_sample = per * n->size;
}

/* A bound under p's cost whatever sets the search gives it: every PBS at
 * the cheapest blind rotation of a set that reads its precision (noise and
 * the keyswitch ignored). min_ms[prec]: that cheapest figure. A WoP-PBS
 * lookup adds nothing: its price does not depend on the chunk widths, and
 * no classic set reads its 9 to 16 bits (min_ms +INFINITY there, which
 * would cut every trial). */
static double chunk_bound(const veil_program *p, const double *min_ms) {
    double c = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if ((n->kind == VEIL_NODE_LUT && !n->wop) || n->kind == VEIL_NODE_ROUND)
            c += (double)n->pbs_per_sample * min_ms[veil_pbs_prec(n)];
    }
    return c;
}

/* The uniform trials of choose_chunks (every rounding at one width) of one
 * compilation, in order: each trial's widths and its chunk_trial cost (a
 * search of its own, 11 of them under --global-p-error). The last
 * compilation of veil_program_compile (CHUNKS_EACH) builds the cheapest
 * width's graph again and starts with the very trials of that width's
 * CHUNKS_UNIFORM compilation: it takes their costs from here (replay) as
 * long as each trial's widths are the recorded ones, in the same graph
 * (its node count), and runs the search from the first that is not. */
typedef struct chunk_memo {
    size_t nodes;     /* the graph's node count */
    size_t nr;        /* its roundings */
    size_t n, cap;    /* trials recorded */
    unsigned *widths; /* n * nr */
    double *cost;     /* n */
    size_t next;      /* replay: the next trial to take (n or more: none) */
} chunk_memo;

static void chunk_memo_free(chunk_memo *m) {
    free(m->widths);
    free(m->cost);
    memset(m, 0, sizeof *m);
}

/* Records a trial of p's roundings rn[0..nr) at cost; a memo out of memory
 * stops recording (n = SIZE_MAX: nothing to replay). */
static void chunk_memo_add(chunk_memo *m, const veil_program *p, const uint32_t *rn, size_t nr,
                           double cost) {
    if (m->n == SIZE_MAX) return;
    if (m->n == 0) {
        if (m->nr != nr) m->cap = 0; /* cap counts trials of m->nr widths */
        m->nodes = p->n_nodes;
        m->nr = nr;
    }
    if (m->n == m->cap) {
        const size_t cap = m->cap ? m->cap * 2 : 16;
        unsigned *w = realloc(m->widths, cap * (nr + 1) * sizeof *w);
        if (w) m->widths = w;
        double *c = w ? realloc(m->cost, cap * sizeof *c) : NULL;
        if (c) m->cost = c;
        if (!w || !c) {
            m->n = SIZE_MAX;
            return;
        }
        m->cap = cap;
    }
    for (size_t k = 0; k < nr; k++)
        m->widths[m->n * nr + k] = p->nodes[rn[k]].chunk_bits;
    m->cost[m->n++] = cost;
}

/* The recorded cost of the next trial when p's widths are its widths (1),
 * else 0 (and no more replay). */
static int chunk_memo_take(chunk_memo *m, const veil_program *p, const uint32_t *rn, size_t nr,
                           double *cost) {
    if (m->n == SIZE_MAX || m->next >= m->n || m->nodes != p->n_nodes || m->nr != nr) {
        m->next = SIZE_MAX;
        return 0;
    }
    for (size_t k = 0; k < nr; k++)
        if (m->widths[m->next * nr + k] != p->nodes[rn[k]].chunk_bits) {
            m->next = SIZE_MAX;
            return 0;
        }
    *cost = m->cost[m->next++];
    return 1;
}

/* The parameter search for p's current chunk widths: its predicted cost
 * per sample; +INFINITY when no set fits (not an error here) or when
 * chunk_bound shows it cannot beat `best` (no search then). */
static veil_status chunk_trial(veil_program *p, const char *params_id, const double *min_ms,
                               double best, double *cost) {
    *cost = INFINITY;
    if (chunk_bound(p, min_ms) >= best) return VEIL_OK;
    veil_status st = veil_choose_params(p, params_id);
    if (st == VEIL_OK) st = veil_fill_partitions(p);
    if (st == VEIL_OK) *cost = p->cost_per_sample;
    return st == VEIL_ERR_UNSUPPORTED ? VEIL_OK : st;
}

/* chunk_trial with a memo: recorded there (record), or its cost taken from
 * it (replay) while the widths are the recorded ones; *held: p holds the
 * trial's parameters (the search ran). */
static veil_status chunk_trial_memo(veil_program *p, const char *params_id, const double *min_ms,
                                    double best, double *cost, chunk_memo *memo, int replay,
                                    const uint32_t *rn, size_t nr, int *held) {
    *held = 0;
    if (memo && replay && chunk_memo_take(memo, p, rn, nr, cost)) return VEIL_OK;
    *held = 1;
    const veil_status st = chunk_trial(p, params_id, min_ms, best, cost);
    if (memo && !replay && st == VEIL_OK) chunk_memo_add(memo, p, rn, nr, *cost);
    return st;
}

/* The chunk width of every ROUND node, a choice of the cost model, then the
 * parameter sets (veil_choose_params) for it. Wide chunks mean few PBS, each
 * reading c - 1 bits; narrow ones more PBS at a lower precision, which can
 * land in a cheaper set (mlp_digits at --rounding-bits 4: a 7-bit rounding
 * in chunks of 4 + 3 read at 3 bits on N = 1024 and a 6-bit one in 3 + 3
 * read at 2 bits, instead of 5 + 2 and 5 + 1 read at 4 bits on N = 2048:
 * 9.29 s -> 7.81 s predicted). Candidates run from 1 bit (one PBS per bit,
 * each the sign alone, read at 0 bits) up to p + 1, p the
 * program's widest lookup (today's width, chunk_bits = widest; a wider chunk
 * would raise the program's precision), less those another candidate
 * dominates (as many PBS or more at as wide a read or wider: for 7 bits,
 * chunks of 5 (5 + 2: 4 PBS, 4-bit reads) lose to 4 (4 + 3: 4 PBS, 3-bit),
 * and 2 (2 + 2 + 2 + 1: 7 PBS, 1-bit reads) to 1 (7 PBS, 0-bit)).
 * search = CHUNKS_WIDEST: every node at the widest. CHUNKS_UNIFORM: every
 * node at the widest, then every node at each narrower width, keeping the
 * cheapest. CHUNKS_EACH: from there, each node alone at each other width,
 * keeping a change when the whole program (partitions and sets searched
 * again) costs less. A trial whose chunk_bound is no better than the best is
 * skipped. So the result never costs more than the widest chunks'. */
enum { CHUNKS_WIDEST, CHUNKS_UNIFORM, CHUNKS_EACH };
static veil_status choose_chunks(veil_program *p, const char *params_id, unsigned widest,
                                 int search, chunk_memo *memo) {
    /* CHUNKS_UNIFORM records its trials in memo, CHUNKS_EACH replays them */
    const int replay = search == CHUNKS_EACH;
    int held;
    uint32_t *rn = malloc((p->n_nodes + 1) * sizeof *rn);
    unsigned *best = malloc((p->n_nodes + 1) * sizeof *best);
    if (!rn || !best) {
        free(rn);
        free(best);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    size_t nr = 0;
    unsigned top = 1; /* the widest chunk any node uses */
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_ROUND) {
            veil_node *n = &p->nodes[i];
            set_chunk_bits(n, widest);
            best[nr] = n->chunk_bits;
            rn[nr++] = (uint32_t)i;
            top = n->chunk_bits > top ? n->chunk_bits : top;
        }
    if (p->options.chunk_bits) /* forced */
        for (size_t k = 0; k < nr; k++)
            set_chunk_bits(&p->nodes[rn[k]],
                           p->options.chunk_bits < widest ? p->options.chunk_bits : widest);
    if (search == CHUNKS_WIDEST || top <= 1 || p->options.chunk_bits) { /* nothing to choose */
        free(rn);
        free(best);
        return veil_choose_params(p, params_id);
    }
    double min_ms[VEIL_MAX_BITS + 2];
    for (unsigned q = 0; q <= VEIL_MAX_BITS + 1; q++) {
        min_ms[q] = INFINITY;
        for (size_t i = 0; i < veil_params_count(); i++) {
            const veil_params *ps = veil_params_at(i);
            const double c = veil_cost_cpu_ms(ps, 0);
            if (veil_set_reads(ps, q, p->options.max_poly_size) && c < min_ms[q]) min_ms[q] = c;
        }
    }
    double best_cost = INFINITY, c;
    veil_status st =
        chunk_trial_memo(p, params_id, min_ms, INFINITY, &best_cost, memo, replay, rn, nr, &held);
    int last_best = held; /* p holds the parameters of the best widths */
    /* every node at one narrower width */
    for (unsigned w = widest - 1; st == VEIL_OK && w >= 1; w--) {
        int same = 1;
        for (size_t k = 0; k < nr; k++) {
            set_chunk_bits(&p->nodes[rn[k]], w);
            same &= p->nodes[rn[k]].chunk_bits == best[k];
        }
        if (same) continue;
        st = chunk_trial_memo(p, params_id, min_ms, best_cost, &c, memo, replay, rn, nr, &held);
        last_best = c < best_cost && held;
        if (c < best_cost) {
            best_cost = c;
            for (size_t k = 0; k < nr; k++)
                best[k] = p->nodes[rn[k]].chunk_bits;
        }
    }
    /* one node at a time, over its undominated widths */
    for (size_t k = 0; search == CHUNKS_EACH && st == VEIL_OK && k < nr; k++) {
        veil_node *n = &p->nodes[rn[k]];
        for (unsigned w = 1; st == VEIL_OK && w <= widest && w <= n->round_bits; w++) {
            if (w == best[k]) continue;
            set_chunk_bits(n, w);
            const uint64_t pbs = n->pbs_per_sample;
            const unsigned prec = veil_pbs_prec(n);
            int dominated = 0;
            for (unsigned v = 1; !dominated && v <= widest && v <= n->round_bits; v++) {
                if (v == w) continue;
                set_chunk_bits(n, v);
                dominated = n->pbs_per_sample <= pbs && veil_pbs_prec(n) <= prec &&
                            (n->pbs_per_sample < pbs || veil_pbs_prec(n) < prec || v > w);
            }
            if (dominated) continue;
            for (size_t j = 0; j < nr; j++)
                set_chunk_bits(&p->nodes[rn[j]], best[j]);
            set_chunk_bits(n, w);
            st = chunk_trial_memo(p, params_id, min_ms, best_cost, &c, memo, replay, rn, nr, &held);
            last_best = c < best_cost && held;
            if (c < best_cost) {
                best_cost = c;
                best[k] = w;
            }
        }
    }
    for (size_t k = 0; k < nr; k++)
        set_chunk_bits(&p->nodes[rn[k]], best[k]);
    free(rn);
    free(best);
    if (st != VEIL_OK) return st;
    /* the parameters of the chosen widths (again, unless the last trial
     * was that program; also when nothing fits, for veil_choose_params' error) */
    if (last_best && best_cost < INFINITY) return VEIL_OK;
    return veil_choose_params(p, params_id);
}

/* What one compilation decomposed: n_wide lookups (n_wop by WoP-PBS); n_open of them could
 * take either method (lookup). */
typedef struct compile_counts {
    unsigned n_wide, n_open, n_wop;
} compile_counts;

/* One compilation with lookups read at most lut_bits wide (wider exact
 * lookups decomposed; select_open: the open ones by selection; no_wop:
 * --wop auto takes no WoP-PBS).
 * search_chunks: how far the cost model chooses the exact rounding's chunk
 * widths (choose_chunks' CHUNKS_*). */
static veil_status compile_once(const veil_model *m, const veil_compile_options *opts,
                                unsigned lut_bits, uint64_t pbs_max, int check_narrow,
                                int search_chunks, int select_open, int no_wop, cal_pool *pool,
                                chunk_memo *memo, veil_program **out, compile_counts *counts) {
    const veil_compile_options o = *opts;
    veil_program *p = calloc(1, sizeof *p);
    builder b = {0};
    veil_status st = VEIL_OK;
    if (!p) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    p->options = o;
    p->options.params_id = NULL; /* not owned */
    const size_t canon_len = veil_compile_options_canonical(&o, NULL, 0);
    p->options_canonical = malloc(canon_len + 1);
    if (!p->options_canonical) {
        free(p);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    veil_compile_options_canonical(&o, p->options_canonical, canon_len + 1);
    b.p = p;
    b.m = m;
    b.o = &p->options;
    b.n_cal = m->calibration.count;
    b.pool = pool;
    b.lut_bits = lut_bits;
    b.pbs_max = pbs_max;
    b.check_narrow = check_narrow;
    b.select_open = select_open;
    /* auto: not where a WoP-PBS cannot have its partition (--always refuses
     * there, veil_choose_params) */
    b.no_wop = no_wop || (o.wop == VEIL_WOP_AUTO && (o.params_id || o.max_partitions == 1));
    p->range_check_narrow = check_narrow;
    p->model_name = strdup(m->name ? m->name : "model");
    p->input_nodes = calloc(m->n_inputs, sizeof *p->input_nodes);
    p->output_nodes = calloc(m->n_outputs, sizeof *p->output_nodes);
    b.tensor_node = calloc((size_t)m->n_inputs + m->n_layers, sizeof *b.tensor_node);
    b.pool_after = calloc((size_t)m->n_layers + 1, sizeof *b.pool_after);
    if (!p->model_name || !p->input_nodes || !p->output_nodes || !b.tensor_node || !b.pool_after)
        st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    p->n_inputs = m->n_inputs;
    p->n_outputs = m->n_outputs;
    for (uint32_t i = 0; st == VEIL_OK && i < m->n_inputs; i++) {
        uint32_t idx;
        st = new_node(&b, VEIL_NODE_INPUT, m->inputs[i].name, 0, NULL, &m->inputs[i].shape, &idx);
        if (st != VEIL_OK) break;
        veil_node *n = &p->nodes[idx];
        n->lo = m->inputs[i].range[0];
        n->hi = m->inputs[i].range[1];
        st = finish_node(&b, idx);
        if (st == VEIL_OK && b.n_cal)
            memcpy(b.cal[idx], m->calibration.inputs[i],
                   b.n_cal * p->nodes[idx].size * sizeof(int64_t));
        p->input_nodes[i] = idx;
        b.tensor_node[i] = idx;
    }
    for (uint32_t li = 0; st == VEIL_OK && li < m->n_layers; li++)
        st = add_layer(&b, li);
    for (uint32_t i = 0; st == VEIL_OK && i < m->n_outputs; i++) {
        int is_in = 0;
        int t = veil_model_find(m, m->outputs[i].source, &is_in);
        uint32_t src = b.tensor_node[is_in ? (uint32_t)t : m->n_inputs + (uint32_t)t], idx;
        st =
            new_node(&b, VEIL_NODE_OUTPUT, m->outputs[i].name, 1, &src, &m->outputs[i].shape, &idx);
        if (st == VEIL_OK) st = finish_node(&b, idx);
        p->output_nodes[i] = idx;
    }
    if (st == VEIL_OK && o.range_check) st = add_range_check(&b);
    /* widths, precision, per-node PBS counts and shifts */
    if (st == VEIL_OK) st = assign_widths(p);
    if (st == VEIL_OK) {
        unsigned maxp = 0, maxacc = 0;
        for (size_t i = 0; i < p->n_nodes; i++) {
            veil_node *n = &p->nodes[i];
            if (n->kind == VEIL_NODE_LUT) {
                /* the classic reads' widest (a WoP-PBS reads its bits by sign) */
                if (!n->wop) maxp = n->in_bits > maxp ? n->in_bits : maxp;
                const veil_node *x = &p->nodes[n->in[0]];
                if (x->kind == VEIL_NODE_ROUND) x = &p->nodes[x->in[0]];
                unsigned acc = veil_bits_for_span(x->lo, x->hi);
                /* the model's accumulators, not the range check's windows */
                if (!p->range_check || i < p->range_check_first)
                    maxacc = acc > maxacc ? acc : maxacc;
            }
        }
        p->max_lut_bits = maxp;
        p->max_acc_bits = maxacc;
        for (size_t i = 0; st == VEIL_OK && i < p->n_nodes; i++) {
            veil_node *n = &p->nodes[i];
            if (n->kind == VEIL_NODE_LUT) {
                n->shift = p->nodes[n->in[0]].width - n->round_bits - n->in_bits;
                n->pbs_per_sample =
                    n->wop
                        ? n->size *
                              veil_wop_count(veil_wop_params_for_width(n->in_bits), n->in_bits).pbs
                    : n->rotation_results > 1 ? n->size / n->rotation_results
                                              : n->size;
            }
        }
    }
    /* the noise pass's factors, from the graph as built (the searches
     * below change chunk widths and sets, not the graph) */
    if (st == VEIL_OK) st = veil_noise_factors(p);
    if (st == VEIL_OK) {
        /* and the parameter sets */
        st = choose_chunks(p, o.params_id, (p->max_lut_bits ? p->max_lut_bits : 1) + 1,
                           search_chunks, memo);
        if (st == VEIL_ERR_UNSUPPORTED && p->options.simulate_only) {
            p->params = NULL;
            p->params_note = strdup(veil_error_message());
            st = p->params_note ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        }
    }
    for (size_t i = p->range_check ? p->range_check_first : p->n_nodes; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_LUT || p->nodes[i].kind == VEIL_NODE_ROUND)
            p->range_check_pbs += p->nodes[i].pbs_per_sample;
    if (st == VEIL_OK) {
        if (p->params) st = veil_fill_partitions(p); /* final variances for the chosen sets */
        if (st == VEIL_OK) st = veil_latency_sets(p, o.params_id);
        if (st == VEIL_OK) st = veil_build_report(p);
    }
    if (b.cal)
        for (size_t i = 0; i < p->n_nodes; i++)
            cal_give(b.pool, b.cal[i], b.cal_cap[i]);
    free(b.cal);
    free(b.cal_cap);
    free(b.tensor_node);
    free(b.pool_after);
    free(b.checked);
    *counts = (compile_counts){b.n_wide, b.n_open, b.n_wop}; /* so far, on a refusal */
    if (st != VEIL_OK) {
        veil_program_free(p);
        return st;
    }
    *out = p;
    return VEIL_OK;
}

/* veil_program_compile, its compilations' calibration buffers from pool;
 * memo[0] the uniform chunk trials of the compilation running, memo[1] those
 * of the best so far (chunk_memo; the caller frees both). */
static veil_status compile_pooled(const veil_model *m, const veil_compile_options *options,
                                  cal_pool *pool, chunk_memo memo[2], veil_program **out) {
    if (!m || !out) return veil_error(VEIL_ERR_ARG, "veil_program_compile: NULL argument");
    veil_compile_options o;
    if (options)
        o = *options;
    else
        veil_compile_options_default(&o);
    VEIL_TRY(veil_compile_options_check(&o));
    if (o.bounds == VEIL_BOUNDS_CALIBRATION && m->calibration.count == 0)
        return veil_error(VEIL_ERR_ARG,
                          "compile: the model has no /calibration set; use worst-case bounds");
    VEIL_TRY(veil_model_validate(m));
    /* The widest PBS: given, the forced set's precision, or searched: every
     * width from the widest parameter set's precision down to 2, keeping the
     * program the cost model finds cheapest (wider reads need larger N, but
     * narrower ones decompose wide lookups into more PBS). */
    unsigned hi = 2;
    for (size_t i = 0; i < veil_params_count(); i++)
        hi = veil_params_at(i)->precision > hi ? veil_params_at(i)->precision : hi;
    unsigned lo = 2;
    if (o.lookup_bits) {
        hi = lo = o.lookup_bits;
    } else if (o.params_id && veil_params_find_any(o.params_id)) {
        hi = lo = veil_params_find_any(o.params_id)->precision;
        lo = hi = hi < 2 ? 2 : hi;
    }
    veil_program *best = NULL;
    unsigned best_bits = hi;
    int best_narrow = 0, best_select = 0, best_no_wop = 0;
    double best_cost = INFINITY, min_pbs = INFINITY;
    for (size_t i = 0; i < veil_params_count(); i++) {
        const double c = veil_cost_cpu_ms(veil_params_at(i), 0); /* no keyswitch: a bound */
        min_pbs = c < min_pbs ? c : min_pbs;
    }
    veil_status first_err = VEIL_OK;
    char first_msg[512] = "";
    veil_compile_options strict = o;
    strict.simulate_only = 0;
    /* the range check's windows one bit wider than the ranges, or, when no
     * program fits that way, no wider than the model's encoding */
    for (int narrow = 0; !best && narrow <= (o.range_check ? 1 : 0) &&
                         (first_err == VEIL_OK || first_err == VEIL_ERR_UNSUPPORTED);
         narrow++) {
        for (unsigned bits = hi; bits >= lo; bits--) {
            /* a program of P PBS costs at least P times the cheapest
             * blind rotation of the table: past best_cost / that it cannot
             * win (deep decompositions grow fast). Measured, an N = 32768
             * PBS costs ~100x an N = 512 one, so a fixed multiple of the best
             * program's PBS count (8x before the measured table) cut off
             * cheaper narrow programs: mlp_digits --rounding-bits 8 then
             * kept 9.7 GiB of N = 32768 keys at 105 s per sample where a
             * decomposition into narrower PBS costs 101 s with 1.6 GiB */
            compile_counts first = {0, 0, 0};
            unsigned widest = 0;
            veil_status st = VEIL_OK;
            /* a second pass where a lookup's method was left open (also when
             * the first was refused: past the limit, its threshold reads may
             * be what a selection saves) */
            for (int sel = 0; sel <= 1 && (sel == 0 || first.n_open); sel++) {
                veil_program *p = NULL;
                compile_counts counts = {0, 0, 0};
                uint64_t limit = UINT64_MAX;
                /* a bound from the cost per sample on one core: none under
                 * --objective latency, whose figure is another quantity */
                if (best && !o.latency_cores && best_cost / min_pbs < 1e15)
                    limit = (uint64_t)ceil(best_cost / min_pbs);
                int no_wop = 0;
                memo[0].n = memo[0].next = 0;
                veil_status s1 = compile_once(m, &strict, bits, limit, narrow, CHUNKS_UNIFORM, sel,
                                              0, pool, &memo[0], &p, &counts);
                if (s1 == VEIL_ERR_UNSUPPORTED && o.wop == VEIL_WOP_AUTO && counts.n_wop) {
                    /* auto takes the WoP-PBS only where the program around
                     * it compiles (its refresh has a set, the master key is
                     * at least its set's k N): else the digits */
                    no_wop = 1;
                    memo[0].n = memo[0].next = 0;
                    s1 = compile_once(m, &strict, bits, limit, narrow, CHUNKS_UNIFORM, sel, 1, pool,
                                      &memo[0], &p, &counts);
                }
                if (sel == 0) first = counts;
                if (s1 != VEIL_OK) {
                    if (sel == 0) st = s1;
                    if (s1 != VEIL_ERR_UNSUPPORTED) {
                        st = s1;
                        break;
                    }
                    continue;
                }
                if (sel == 0) widest = p->max_lut_bits;
                st = VEIL_OK; /* the selection pass compiled where the first was refused */
                if (veil_objective_cost(p) < best_cost) {
                    veil_program_free(best);
                    best = p;
                    best_cost = veil_objective_cost(p);
                    best_bits = bits;
                    best_narrow = narrow;
                    best_select = sel;
                    best_no_wop = no_wop;
                    const chunk_memo t = memo[1]; /* its trials kept */
                    memo[1] = memo[0];
                    memo[0] = t;
                } else {
                    veil_program_free(p);
                }
            }
            if (st != VEIL_OK) {
                if (first_err == VEIL_OK) {
                    first_err = st;
                    snprintf(first_msg, sizeof first_msg, "%s", veil_error_message());
                }
                if (st != VEIL_ERR_UNSUPPORTED) break;
                continue;
            }
            /* narrower reads only change a program that has lookups that
             * wide (the next width tried is widest - 1: at widest it is
             * this very program) */
            if (first.n_wide == 0 && widest < bits) bits = widest > lo ? widest : lo;
        }
    }
    if (best && !o.chunk_bits) {
        /* the exact rounding's chunk widths node by node, for the cheapest
         * width only (a search per width multiplied compile time by up to
         * 20: cnn_digits exact 3.6 s -> 35 s); every width above was
         * compared with its best uniform chunk width, since its widest
         * chunks alone misjudge wide lookups (source16_bc at 6 bits: 7-bit
         * reads, widest chunks 7 bits wide read at 6 bits on N = 8192, lost
         * to 4-bit reads at 1315 ms where 1-bit chunks cost 960 ms); it
         * starts from this very program, so it costs no more */
        veil_program *p = NULL;
        compile_counts counts;
        memo[1].next = 0;
        veil_status st = compile_once(m, &strict, best_bits, UINT64_MAX, best_narrow, CHUNKS_EACH,
                                      best_select, best_no_wop, pool, &memo[1], &p, &counts);
        if (st == VEIL_OK && veil_objective_cost(p) <= best_cost) {
            veil_program_free(best);
            best = p;
        } else {
            veil_program_free(p);
            if (st == VEIL_ERR_NOMEM) {
                veil_program_free(best);
                return st;
            }
        }
    }
    if (best) {
        best->options.simulate_only = o.simulate_only;
        *out = best;
        return VEIL_OK;
    }
    if (o.simulate_only && first_err == VEIL_ERR_UNSUPPORTED) {
        /* no parameter set: a program to simulate, with the widest reads
         * tried (the same integers inside the ranges, whatever the width) */
        compile_counts counts;
        return compile_once(m, &o, hi, UINT64_MAX, 0, 0, 0, 0, pool, NULL, out, &counts);
    }
    return veil_error(first_err, "%s", first_msg);
}

veil_status veil_program_compile(const veil_model *m, const veil_compile_options *options,
                                 veil_program **out) {
    cal_pool pool = {0};
    chunk_memo memo[2] = {{0}, {0}};
    const veil_status st = compile_pooled(m, options, &pool, memo, out);
    cal_pool_free(&pool);
    chunk_memo_free(&memo[0]);
    chunk_memo_free(&memo[1]);
    return st;
}
