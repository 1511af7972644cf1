/* compile.c — veil_model -> veil_program (see veil/program.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_ops.h"
#include "program_internal.h"
#include "veil/compile_options.h"
#include "veil/cost.h"
#include "veil/noise.h"
#include "veil/program.h"
#include "veil/tfhe.h"

__extension__ typedef __int128 i128;

void veil_compile_options_default(veil_compile_options *o) {
    memset(o, 0, sizeof *o);
    o->rounding_bits = 0;
    o->range_margin = VEIL_RANGE_MARGIN_DEFAULT;
    o->rounding = VEIL_ROUNDING_EXACT;
    o->bounds = VEIL_BOUNDS_CALIBRATION;
    o->p_error = ldexp(1.0, -40);
    o->params_id = NULL;
    o->key_budget_mb = VEIL_KEY_BUDGET_MB_DEFAULT;
}

veil_status veil_bounds_parse(const char *s, veil_bounds *out) {
    if (s && !strcmp(s, "calibration"))
        *out = VEIL_BOUNDS_CALIBRATION;
    else if (s && (!strcmp(s, "worst-case") || !strcmp(s, "worst_case")))
        *out = VEIL_BOUNDS_WORST_CASE;
    else
        return veil_error(VEIL_ERR_ARG, "bounds '%s': expected calibration or worst-case",
                          s ? s : "(null)");
    return VEIL_OK;
}

veil_status veil_rounding_parse(const char *s, veil_rounding *out) {
    if (s && !strcmp(s, "exact"))
        *out = VEIL_ROUNDING_EXACT;
    else if (s && !strcmp(s, "approximate"))
        *out = VEIL_ROUNDING_APPROXIMATE;
    else
        return veil_error(VEIL_ERR_ARG, "rounding '%s': expected exact or approximate",
                          s ? s : "(null)");
    return VEIL_OK;
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

typedef struct builder {
    veil_program *p;
    size_t cap;
    const veil_model *m;
    const veil_compile_options *o;
    uint32_t *tensor_node; /* model inputs then layers -> node index */
    int64_t **cal;         /* per node: calibration values (NULL in worst-case mode) */
    size_t n_cal;
    unsigned lut_bits;   /* widest PBS read; wider exact lookups are decomposed */
    unsigned n_wide;     /* lookups decomposed */
    const int64_t *seen; /* the layer's stored calib_range (whole inputset), or NULL */
    uint64_t pbs;        /* lookup elements so far (one PBS each) */
    uint64_t pbs_max;    /* give up past this (a cheaper program is known) */
    int check_narrow;    /* range check windows no wider than the model's width */
    uint32_t *checked;   /* range check: the nodes whose values are read */
    size_t n_checked, cap_checked;
} builder;

/* Remembers a node whose values a lookup or an output reads, for the range
 * check (once each; inputs are clamped by the client, lookup results stay in
 * their table's range). */
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
        b->cap = cap;
    }
    veil_node *n = &p->nodes[p->n_nodes];
    memset(n, 0, sizeof *n);
    b->cal[p->n_nodes] = NULL;
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
                    l += mn;
                    h += mx;
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
static veil_status finish_node(builder *b, uint32_t idx) {
    veil_program *p = b->p;
    veil_node *n = &p->nodes[idx];
    worst_case(p, n);
    if (b->n_cal && b->cal) {
        int64_t *out = malloc(b->n_cal * n->size * sizeof *out + 1);
        if (!out) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        b->cal[idx] = out;
        if (n->kind != VEIL_NODE_INPUT) {
            const int64_t *ins[64];
            for (uint32_t j = 0; j < n->n_in && j < 64; j++)
                ins[j] = b->cal[n->in[j]];
            veil_node_eval(p, n, ins, b->n_cal, out, NULL, NULL);
        }
        if (b->o->bounds == VEIL_BOUNDS_CALIBRATION && n->kind != VEIL_NODE_OUTPUT &&
            n->kind != VEIL_NODE_INPUT && n->kind != VEIL_NODE_ROUND) {
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
            const double mg = b->o->range_margin * (double)(hi - lo);
            lo = (int64_t)floor((double)lo - mg);
            hi = (int64_t)ceil((double)hi + mg);
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

static unsigned ubits(uint64_t v) {
    unsigned b = 1;
    while (b < 64 && v >= ((uint64_t)1 << b))
        b++;
    return b;
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

/* One LUT node (one PBS per element) reading r = (x + off) >> g in
 * [0, span] with tables tabs[G][span + 1] (entries past span repeat T[span]). */
static veil_status lut_node(builder *b, const char *layer, uint32_t src, int64_t off, unsigned g,
                            uint64_t span, uint32_t groups, const int64_t *tabs,
                            const veil_shape *shape, int approximate, uint32_t *out_idx) {
    veil_program *p = b->p;
    const unsigned in_bits = ubits(span);
    uint32_t idx;
    VEIL_TRY(new_node(b, VEIL_NODE_LUT, layer, 1, &src, shape, &idx));
    veil_node *n = &p->nodes[idx];
    n->round_bits = g;
    n->in_bits = in_bits;
    n->r_max = (int64_t)span;
    n->approximate = approximate;
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

/* A LINEAR node over one operand with the given geometry, or a CONCAT of
 * `copies` copies of it. */
static veil_status linear_node(builder *b, const char *layer, veil_linear_kind kind, uint32_t src,
                               uint32_t copies, const veil_shape *shape, const veil_conv_geom *conv,
                               int64_t weight, double sum_w2, uint32_t *out_idx) {
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
    if (kind == VEIL_LINEAR_CONV2D) {
        n->weight = malloc(sizeof *n->weight);
        if (!n->weight) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
        n->weight[0] = weight;
    }
    VEIL_TRY(finish_node(b, idx));
    *out_idx = idx;
    return VEIL_OK;
}

static veil_status add_node(builder *b, const char *layer, uint32_t x, uint32_t y,
                            const veil_shape *shape, uint32_t *out_idx) {
    const uint32_t ins[2] = {x, y};
    VEIL_TRY(new_node(b, VEIL_NODE_ADD, layer, 2, ins, shape, out_idx));
    return finish_node(b, *out_idx);
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
 * J copies (CONCAT) of every digit, copy s carrying step s of its group: C_0
 * a lookup of D_0 giving c 2^(g+K_1-1), so that digit 1 + C_0 = (2 D_1 + c)
 * 2^(g+K_1-1), read by the next lookup, and so on up to E = delta [2H + c ==
 * 2th + 1]; out = F + a sum pool of E over the copies. J is the most steps of
 * one group's table outside multiples of 2^K. Cost per element: the ROUND
 * chunks, 1 + d J PBS, none wider than P bits. */
static veil_status lookup(builder *b, const char *layer, uint32_t x, int64_t off, unsigned g,
                          uint64_t span, uint32_t groups, const int64_t *tabs,
                          const veil_shape *shape, int internal, uint32_t *out_idx) {
    veil_program *p = b->p;
    const unsigned w = ubits(span), P = b->lut_bits;
    const size_t first = p->n_nodes;
    int64_t tlo, thi;
    tables_range(tabs, groups, span, &tlo, &thi);
    if (w <= P) {
        b->pbs += p->nodes[x].size;
        if (b->pbs > b->pbs_max)
            return veil_error(VEIL_ERR_UNSUPPORTED,
                              "layer %s: more than %llu PBS per sample with %u-bit reads", layer,
                              (unsigned long long)b->pbs_max, P);
        VEIL_TRY(lut_node(b, layer, x, off, g, span, groups, tabs, shape, 0, out_idx));
        if (internal) set_range(b, *out_idx, tlo, thi);
        return VEIL_OK;
    }
    b->n_wide++;
    VEIL_ASSERT(P >= 2);
    /* digits: k_0 <= P, the others (H included) <= P - 1 */
    unsigned kd[VEIL_MAX_BITS + 1], Kd[VEIL_MAX_BITS + 2], d = 0, left = w;
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
    if (J > 64)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: the table changes value at %u points of its %u-bit input off "
                          "the multiples of 2^%u; an exact wide lookup takes %u PBS per such "
                          "point and veil allows 64 (round the accumulator with --rounding-bits)",
                          layer, J, w, K, d);
    const veil_shape flat = {1, {(uint32_t)n}};
    /* R_j, j = 1..d-1 */
    uint32_t R[VEIL_MAX_BITS + 1];
    R[0] = x;
    for (unsigned j = 1; j < d; j++) {
        VEIL_TRY(new_node(b, VEIL_NODE_ROUND, layer, 1, &x, &flat, &R[j]));
        p->nodes[R[j]].offset = off;
        p->nodes[R[j]].round_bits = g + Kd[j];
        VEIL_TRY(finish_node(b, R[j]));
        set_range(b, R[j], 0, (int64_t)((span >> Kd[j]) << (g + Kd[j])));
    }
    /* F = T[H * 2^K] */
    int64_t *ft = malloc((size_t)groups * (hmax + 1) * sizeof *ft);
    if (!ft) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint32_t c = 0; c < groups; c++)
        for (uint64_t h = 0; h <= hmax; h++)
            ft[c * (hmax + 1) + h] = tabs[c * rows + (h << K)];
    uint32_t F;
    veil_status st = lookup(b, layer, R[d - 1], 0, g + K, hmax, groups, ft, &flat, 1, &F);
    free(ft);
    VEIL_TRY(st);
    uint32_t out = F;
    if (J) {
        const veil_conv_geom neg = {1, 1, (uint32_t)n, 1, 1, 1, 1, 1, 0, 0, 1, (uint32_t)n};
        const veil_shape rep = {1, {(uint32_t)(J * n)}};
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
        uint32_t carry = 0; /* C_{j-1}: c * 2^(g+K_j-1) per copy */
        for (unsigned j = 0; st == VEIL_OK && j < d; j++) {
            /* the digit in place: D_j 2^(g+K_j) (D_0: minus off) */
            uint32_t dig = R[d - 1], negn = 0, rp = 0, u = 0;
            const int top = j == d - 1;
            if (!top) {
                st = linear_node(b, layer, VEIL_LINEAR_CONV2D, R[j + 1], 1, &flat, &neg, -1, 1,
                                 &negn);
                if (st == VEIL_OK) st = add_node(b, layer, R[j], negn, &flat, &dig);
                if (st != VEIL_OK) break;
                const int64_t base = j ? 0 : -off;
                set_range(b, dig, base,
                          base + (int64_t)((((uint64_t)1 << kd[j]) - 1) << (g + Kd[j])));
            }
            st = linear_node(b, layer, VEIL_LINEAR_CONCAT, dig, J, &rep, NULL, 0, 1, &rp);
            if (st != VEIL_OK) break;
            set_range(b, rp, p->nodes[dig].lo, p->nodes[dig].hi);
            /* the value read: D_0 (j = 0), or 2 D_j + c at unit 2^(g+K_j-1) */
            const uint64_t dmax = top ? hmax : ((uint64_t)1 << kd[j]) - 1;
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
        free(st_t);
        free(st_d);
        VEIL_TRY(st);
        uint32_t S;
        const veil_conv_geom pool = {1, J, (uint32_t)n, 1, J, 1, 1, 1, 0, 0, 1, (uint32_t)n};
        VEIL_TRY(linear_node(b, layer, VEIL_LINEAR_SUMPOOL2D, carry, 1, &flat, &pool, 0, J, &S));
        set_range(b, S, tlo - thi, thi - tlo);
        VEIL_TRY(add_node(b, layer, F, S, shape, &out));
    }
    /* the lookup's values are T's: never wider, whatever the bounds mode;
     * internal values keep the whole table range (see set_range) */
    const veil_node *o = &p->nodes[out];
    int64_t olo = o->lo < tlo || o->lo > thi ? tlo : o->lo;
    int64_t ohi = o->hi > thi || o->hi < tlo ? thi : o->hi;
    if (internal || olo > ohi) olo = tlo, ohi = thi;
    set_range(b, out, olo, ohi);
    if (out == F) p->nodes[out].shape = *shape, p->nodes[out].size = veil_shape_size(shape);
    /* only the result is read outside: drop the internal calibration values */
    for (size_t i = first; b->cal && i < p->n_nodes; i++)
        if (i != out) {
            free(b->cal[i]);
            b->cal[i] = NULL;
        }
    *out_idx = out;
    return VEIL_OK;
}

static veil_status add_lut(builder *b, const veil_model_layer *l, uint32_t x_idx,
                           uint32_t *out_idx) {
    veil_program *p = b->p;
    const veil_node *x = &p->nodes[x_idx];
    const int64_t lo = x->lo, hi = x->hi;
    const uint64_t span = (uint64_t)(hi - lo);
    const unsigned w = ubits(span);
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
            if (ubits(rmax) <= keep) break;
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
    if (k && b->o->rounding == VEIL_ROUNDING_APPROXIMATE) {
        st = lut_node(b, l->name, x_idx, offset, k, r_max, l->n_tables, tabs, &l->out_shape, 1,
                      out_idx);
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
            st = lookup(b, l->name, r_idx, 0, k, r_max, l->n_tables, tabs, &l->out_shape, 0,
                        out_idx);
    } else {
        st = lookup(b, l->name, x_idx, offset, 0, r_max, l->n_tables, tabs, &l->out_shape, 0,
                    out_idx);
    }
    free(tabs);
    return st;
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
    if (l->op == VEIL_OP_LUT) {
        VEIL_TRY(add_lut(b, l, ins[0], &idx));
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

/* ---- noise and parameter choice -------------------------------------------- */

double veil_read_variance(const veil_params *ps, double value_var, unsigned shift) {
    return ldexp(value_var, 2 * (int)shift);
}

/* The set whose big key is the master key among sets[0..n): the widest k*N,
 * then the noisiest fresh encryption, then the first. The compiler puts it
 * first (partition 0). */
static uint32_t master_index(const veil_params *const *sets, uint32_t n) {
    uint32_t m = 0;
    for (uint32_t i = 1; i < n; i++) {
        const uint32_t di = veil_params_big_dim(sets[i]), dm = veil_params_big_dim(sets[m]);
        if (di > dm ||
            (di == dm && veil_noise_fresh_variance(sets[i]) > veil_noise_fresh_variance(sets[m])))
            m = i;
    }
    return m;
}

/* Propagates variances with sets[i] running partition i's PBS (node
 * partition), the master big key (fresh inputs, every ciphertext between
 * PBS) being master_index()'s (partition 0's in a compiled program): a PBS of partition X
 * keyswitches from the master key with X's KSK, modulus-switches with X's n and N and outputs with
 * X's PBS output variance. Fills per-node variance and read_log2_pfail. Returns the worst log2
 * p_fail of one PBS (or output decoding) and the node holding it. */
static double noise_pass(veil_program *p, const veil_params *const *sets, uint32_t nsets,
                         uint32_t *worst_node) {
    const veil_params *ms = sets[master_index(sets, nsets)];
    const double fresh = veil_noise_fresh_variance(ms);
    const uint32_t master = veil_params_big_dim(ms);
    double worst = -INFINITY;
    *worst_node = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        const double vin = n->n_in ? p->nodes[n->in[0]].variance : 0;
        const veil_params *ps = sets[n->partition];
        n->read_log2_pfail = -INFINITY;
        switch (n->kind) {
        case VEIL_NODE_INPUT:
            n->variance = fresh;
            break;
        case VEIL_NODE_OUTPUT:
            n->variance = vin;
            break;
        case VEIL_NODE_ADD:
            n->variance = vin + p->nodes[n->in[1]].variance;
            break;
        case VEIL_NODE_LINEAR: {
            double v = vin;
            for (uint32_t j = 1; j < n->n_in; j++)
                v = p->nodes[n->in[j]].variance > v ? p->nodes[n->in[j]].variance : v;
            n->variance = v * n->sum_w2;
            break;
        }
        case VEIL_NODE_ROUND: {
            const double pbs = veil_noise_pbs_output_variance(ps);
            double v = vin;
            for (unsigned q = 0; q < veil_round_chunk_count(n); q++) {
                const veil_round_chunk c = veil_round_chunk_get(n, q);
                for (unsigned t = 0; t < c.pbs; t++) {
                    double f = veil_noise_log2_p_fail_dim(
                        ps, c.read_bits, veil_read_variance(ps, v, c.shift), master);
                    n->read_log2_pfail = f > n->read_log2_pfail ? f : n->read_log2_pfail;
                    v += pbs;
                }
            }
            n->variance = v;
            break;
        }
        case VEIL_NODE_LUT:
            n->read_log2_pfail = veil_noise_log2_p_fail_dim(
                ps, n->in_bits, veil_read_variance(ps, vin, n->shift), master);
            n->variance = veil_noise_pbs_output_variance(ps);
            break;
        }
        if (n->read_log2_pfail > worst) {
            worst = n->read_log2_pfail;
            *worst_node = (uint32_t)i;
        }
    }
    /* outputs are decoded at their Delta: half a step of margin */
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        veil_node *n = &p->nodes[p->output_nodes[o]];
        double sd = sqrt(n->variance), half = ldexp(1.0, 62 - (int)n->width);
        double f = sd > 0 ? log2(erfc(half / (sd * sqrt(2.0)))) : -INFINITY;
        if (!(f > -1e9)) f = -INFINITY;
        n->read_log2_pfail = f;
        if (f > worst) {
            worst = f;
            *worst_node = p->output_nodes[o];
        }
    }
    return worst;
}

/* Cost of one KS-PBS with set ps keyswitching from a master key of
 * dimension master: milliseconds on one CPU core, measured (veil/cost.h:
 * blind rotation + keyswitch per master-key row, bench_pbs --cost). */
static double pbs_cost(const veil_params *ps, uint32_t master) {
    return veil_cost_cpu_ms(ps, master);
}

/* Bytes of the prepared evaluation keys of sets[0..n) (distinct sets, the
 * master key's D from master_index): what a plan holds in memory. */
static double key_bytes(const veil_params *const *sets, uint32_t n) {
    const uint32_t D = veil_params_big_dim(sets[master_index(sets, n)]);
    double b = 0;
    for (uint32_t i = 0; i < n; i++)
        b += (double)veil_eval_key_prepared_bytes(sets[i], D);
    return b;
}

static int over_budget(const veil_program *p, const veil_params *const *sets, uint32_t n) {
    return p->options.key_budget_mb &&
           key_bytes(sets, n) > 1048576.0 * (double)p->options.key_budget_mb;
}

static double params_cost(const veil_params *ps) {
    return pbs_cost(ps, veil_params_big_dim(ps));
}

static int cmp_cost(const void *a, const void *b) {
    double x = params_cost(*(const veil_params *const *)a);
    double y = params_cost(*(const veil_params *const *)b);
    return x < y ? -1 : x > y;
}

/* The set's table holds 2^prec boxes and its p_fail was derived for prec. */
static int set_reads(const veil_params *ps, unsigned prec, uint32_t max_poly) {
    prec = prec ? prec : 1;
    return ps->precision >= prec && ((uint64_t)1 << prec) <= ps->poly_size &&
           (!max_poly || ps->poly_size <= max_poly);
}

/* The widest read of a PBS node (bits of precision, without padding). */
static unsigned pbs_prec(const veil_node *n) {
    if (n->kind == VEIL_NODE_LUT) return n->in_bits ? n->in_bits : 1;
    unsigned w = 1;
    for (unsigned q = 0; q < veil_round_chunk_count(n); q++) {
        const veil_round_chunk c = veil_round_chunk_get(n, q);
        w = c.read_bits > w ? c.read_bits : w;
    }
    return w;
}

/* The noise of every value as a linear form a * V_pbs + b * V_fresh, when
 * every PBS outputs variance V_pbs and inputs are fresh with V_fresh (the
 * same propagation as noise_pass), and per PBS node its worst read: the
 * precision and the forms (x 4^shift) A, B of the read variance. norm2 of a
 * read = sqrt(A): the 2-norm of what it reads in PBS outputs, times 2^shift. */
typedef struct unit_noise {
    double *a, *b;   /* per node */
    double *ra, *rb; /* per PBS node: worst read */
    unsigned *prec;  /* per PBS node: widest read */
} unit_noise;

static void unit_noise_free(unit_noise *u) {
    free(u->a);
    free(u->b);
    free(u->ra);
    free(u->rb);
    free(u->prec);
}

static veil_status unit_noise_new(const veil_program *p, unit_noise *u) {
    const size_t nn = p->n_nodes + 1;
    u->a = calloc(nn, sizeof *u->a);
    u->b = calloc(nn, sizeof *u->b);
    u->ra = calloc(nn, sizeof *u->ra);
    u->rb = calloc(nn, sizeof *u->rb);
    u->prec = calloc(nn, sizeof *u->prec);
    if (!u->a || !u->b || !u->ra || !u->rb || !u->prec) {
        unit_noise_free(u);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        const double ia = n->n_in ? u->a[n->in[0]] : 0, ib = n->n_in ? u->b[n->in[0]] : 0;
        switch (n->kind) {
        case VEIL_NODE_INPUT:
            u->b[i] = 1;
            break;
        case VEIL_NODE_OUTPUT:
            u->a[i] = ia;
            u->b[i] = ib;
            break;
        case VEIL_NODE_ADD:
            u->a[i] = ia + u->a[n->in[1]];
            u->b[i] = ib + u->b[n->in[1]];
            break;
        case VEIL_NODE_LINEAR: {
            double a = ia, b = ib;
            for (uint32_t j = 1; j < n->n_in; j++) {
                a = u->a[n->in[j]] > a ? u->a[n->in[j]] : a;
                b = u->b[n->in[j]] > b ? u->b[n->in[j]] : b;
            }
            u->a[i] = a * n->sum_w2;
            u->b[i] = b * n->sum_w2;
            break;
        }
        case VEIL_NODE_ROUND: {
            double a = ia;
            for (unsigned q = 0; q < veil_round_chunk_count(n); q++) {
                const veil_round_chunk c = veil_round_chunk_get(n, q);
                for (unsigned t = 0; t < c.pbs; t++) {
                    const double ra = ldexp(a, 2 * (int)c.shift), rb = ldexp(ib, 2 * (int)c.shift);
                    u->ra[i] = ra > u->ra[i] ? ra : u->ra[i];
                    u->rb[i] = rb > u->rb[i] ? rb : u->rb[i];
                    a += 1;
                }
            }
            u->a[i] = a;
            u->b[i] = ib;
            u->prec[i] = pbs_prec(n);
            break;
        }
        case VEIL_NODE_LUT:
            u->ra[i] = ldexp(ia, 2 * (int)n->shift);
            u->rb[i] = ldexp(ib, 2 * (int)n->shift);
            u->prec[i] = pbs_prec(n);
            u->a[i] = 1;
            break;
        }
    }
    return VEIL_OK;
}

/* A group of PBS nodes that the search gives one set: same precision and
 * 2-norm within a factor 2 (the sets are derived per precision and per
 * 2-norm, Concrete's partitions by precision and noise). */
typedef struct pbs_group {
    unsigned prec;
    int norm_log2; /* floor(log2 norm2) */
    double ra, rb; /* worst read in the group */
    double pbs;    /* PBS per sample */
    const veil_params *set;
} pbs_group;

/* The cheapest assignment of candidate sets to the groups under a bound
 * model that makes the groups independent: for a master dimension D (the
 * widest big key, partition 0's) and a bound V on every set's PBS output
 * variance, a group's reads have variance <= A V + B V_fresh(D) and each
 * group takes its cheapest set with k*N <= D and output variance <= V that
 * keeps them under p_error; (D, V) run over the candidates' values, at least
 * one set must have k*N = D, and the outputs' decoding must hold. Fills
 * groups[g].set; returns the cost, +INFINITY when nothing fits. */
static double search_groups(const veil_program *p, const unit_noise *u, pbs_group *groups,
                            size_t ng, const veil_params *const *cand, size_t nc,
                            const veil_params **pick, const veil_params **best) {
    const double target = log2(p->options.p_error);
    double best_cost = INFINITY;
    for (size_t di = 0; di < nc; di++) {
        const uint32_t D = veil_params_big_dim(cand[di]);
        int seen = 0; /* each D once */
        for (size_t j = 0; j < di; j++)
            seen |= veil_params_big_dim(cand[j]) == D;
        if (seen) continue;
        double vfresh = 0;
        for (size_t j = 0; j < nc; j++)
            if (veil_params_big_dim(cand[j]) == D && veil_noise_fresh_variance(cand[j]) > vfresh)
                vfresh = veil_noise_fresh_variance(cand[j]);
        for (size_t vi = 0; vi < nc; vi++) {
            const double V = veil_noise_pbs_output_variance(cand[vi]);
            if (veil_params_big_dim(cand[vi]) > D) continue;
            int dup = 0;
            for (size_t j = 0; j < vi; j++)
                dup |= veil_params_big_dim(cand[j]) <= D &&
                       veil_noise_pbs_output_variance(cand[j]) == V;
            if (dup) continue;
            /* outputs decode */
            int ok = 1;
            for (uint32_t o = 0; ok && o < p->n_outputs; o++) {
                const uint32_t on = p->output_nodes[o];
                const double var = u->a[on] * V + u->b[on] * vfresh;
                const double half = ldexp(1.0, 62 - (int)p->nodes[on].width);
                const double f = var > 0 ? log2(erfc(half / sqrt(2.0 * var))) : -INFINITY;
                ok = !(f > target);
            }
            double cost = 0;
            int has_d = 0;
            for (size_t g = 0; ok && g < ng; g++) {
                const double var = groups[g].ra * V + groups[g].rb * vfresh;
                pick[g] = NULL;
                double gc = INFINITY;
                for (size_t c = 0; c < nc; c++) {
                    const veil_params *ps = cand[c];
                    if (veil_params_big_dim(ps) > D || veil_noise_pbs_output_variance(ps) > V ||
                        !set_reads(ps, groups[g].prec, p->options.max_poly_size))
                        continue;
                    const double cc = pbs_cost(ps, D);
                    if (cc >= gc) continue;
                    if (veil_noise_log2_p_fail_dim(ps, groups[g].prec, var, D) > target) continue;
                    gc = cc;
                    pick[g] = ps;
                }
                if (!pick[g])
                    ok = 0;
                else {
                    cost += groups[g].pbs * gc;
                    has_d |= veil_params_big_dim(pick[g]) == D;
                }
            }
            if (ok && has_d && cost < best_cost) {
                best_cost = cost;
                memcpy(best, pick, ng * sizeof *best);
            }
        }
    }
    return best_cost;
}

/* Modelled cost per sample of the program with sets[i] for partition i, or
 * +INFINITY when it breaks p_error, a set's precision, max_poly_size or the
 * master-key rule (no set's k*N above sets[0]'s). Runs the exact noise pass
 * (node variances are left for these sets). */
static double assignment_cost(veil_program *p, const veil_params *const *sets, uint32_t nparts,
                              int master0) {
    const uint32_t mi = master_index(sets, nparts);
    if (master0 && mi != 0) return INFINITY;
    const uint32_t D = veil_params_big_dim(sets[mi]);
    double cost = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind != VEIL_NODE_LUT && n->kind != VEIL_NODE_ROUND) continue;
        if (n->partition >= nparts) return INFINITY;
        const veil_params *ps = sets[n->partition];
        if (!set_reads(ps, pbs_prec(n), p->options.max_poly_size)) return INFINITY;
        cost += (double)n->pbs_per_sample * pbs_cost(ps, D);
    }
    uint32_t wn;
    if (noise_pass(p, sets, nparts, &wn) > log2(p->options.p_error)) return INFINITY;
    return cost;
}

double veil_program_assignment_cost(veil_program *p, const veil_params *const *sets) {
    if (!p || !sets || !p->n_partitions) return INFINITY;
    for (uint32_t i = 0; i < p->n_partitions; i++)
        if (!sets[i]) return INFINITY;
    const veil_params **cur = calloc(p->n_partitions, sizeof *cur);
    if (!cur) return INFINITY;
    for (uint32_t i = 0; i < p->n_partitions; i++)
        cur[i] = p->partitions[i].params;
    const double c = assignment_cost(p, sets, p->n_partitions, 1);
    uint32_t wn;
    noise_pass(p, cur, p->n_partitions, &wn); /* back to the program's own variances */
    free(cur);
    return c;
}

static veil_status set_partitions(veil_program *p, const veil_params *const *sets, uint32_t n) {
    free(p->partitions);
    p->partitions = calloc(n, sizeof *p->partitions);
    if (!p->partitions) {
        p->n_partitions = 0;
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    p->n_partitions = n;
    for (uint32_t i = 0; i < n; i++)
        p->partitions[i].params = sets[i];
    p->params = sets[0];
    return VEIL_OK;
}

/* One set for every PBS: the cheapest candidate that keeps every PBS and
 * output under p_error (the forced --params set, or the search's fallback). */
static veil_status choose_single(veil_program *p, const char *params_id, double *cost) {
    const double target = log2(p->options.p_error);
    size_t count = veil_params_count();
    const veil_params **cand = calloc(count + 1, sizeof *cand);
    if (!cand) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    size_t nc = 0;
    unsigned need = p->max_lut_bits ? p->max_lut_bits : 1;
    if (params_id) {
        const veil_params *ps = veil_params_find(params_id);
        if (!ps) {
            free(cand);
            return veil_error(VEIL_ERR_ARG, "compile: no parameter set '%s'", params_id);
        }
        cand[nc++] = ps;
    } else {
        for (size_t i = 0; i < count; i++) {
            const veil_params *ps = veil_params_at(i);
            if (ps->precision >= need && ((uint64_t)1 << need) <= ps->poly_size &&
                (!p->options.max_poly_size || ps->poly_size <= p->options.max_poly_size))
                cand[nc++] = ps;
        }
        qsort(cand, nc, sizeof *cand, cmp_cost);
    }
    for (size_t i = 0; i < p->n_nodes; i++)
        p->nodes[i].partition = 0;
    const veil_params *best_fail = NULL, *too_big = NULL;
    double best_fail_v = INFINITY;
    uint32_t best_fail_node = 0;
    for (size_t i = 0; i < nc; i++) {
        uint32_t wn;
        double w = noise_pass(p, &cand[i], 1, &wn);
        if (w <= target && ((uint64_t)1 << need) <= cand[i]->poly_size &&
            over_budget(p, &cand[i], 1)) {
            if (!too_big || key_bytes(&cand[i], 1) < key_bytes(&too_big, 1)) too_big = cand[i];
            continue;
        }
        if (w <= target && ((uint64_t)1 << need) <= cand[i]->poly_size) {
            veil_status st = set_partitions(p, &cand[i], 1);
            double pbs = 0;
            for (size_t j = 0; j < p->n_nodes; j++)
                if (p->nodes[j].kind == VEIL_NODE_LUT || p->nodes[j].kind == VEIL_NODE_ROUND)
                    pbs += (double)p->nodes[j].pbs_per_sample;
            *cost = pbs * params_cost(cand[i]);
            free(cand);
            return st;
        }
        if (w < best_fail_v || !best_fail) {
            best_fail = cand[i];
            best_fail_v = w;
            best_fail_node = wn;
        }
    }
    free(cand);
    if (too_big)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "no program keeps its noise with prepared evaluation keys under "
                          "--key-budget-mb %u (with lookups read %u bits at a time, the "
                          "smallest one-set keys that do: %s, %.0f MiB; raise the budget, or "
                          "0 for none)",
                          p->options.key_budget_mb, p->max_lut_bits, too_big->id,
                          key_bytes(&too_big, 1) / 1048576.0);
    if (!best_fail) {
        /* name the widest lookup */
        const char *layer = "?";
        for (size_t i = 0; i < p->n_nodes; i++)
            if (p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].in_bits == p->max_lut_bits)
                layer = p->nodes[i].layer;
        char lim[64] = "";
        if (p->options.max_poly_size)
            snprintf(lim, sizeof lim, " with N <= %u", p->options.max_poly_size);
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "layer %s: a %u-bit lookup, and no parameter set%s has %u bits of "
                          "precision (use --rounding-bits to round the accumulator)",
                          layer, p->max_lut_bits, lim, p->max_lut_bits);
    }
    const veil_node *wn = &p->nodes[best_fail_node];
    return veil_error(VEIL_ERR_UNSUPPORTED,
                      "layer %s: no parameter set keeps this %s under p_error 2^%.1f (best: %s "
                      "gives 2^%.1f; value width %u bits, lookup %u bits)",
                      wn->layer,
                      wn->kind == VEIL_NODE_OUTPUT ? "output's decoding" : "lookup's noise", target,
                      best_fail->id, best_fail_v, wn->width, wn->in_bits);
}

/* Lowers sets[k] (node partition k) to cheaper candidates one at a time
 * while the exact noise pass keeps the program feasible; returns the cost. */
static double descend(veil_program *p, const veil_params **sets, uint32_t n,
                      const veil_params *const *cand, size_t nc, double c) {
    for (int changed = 1, rounds = 0; c < INFINITY && changed && rounds < 16; rounds++) {
        changed = 0;
        for (uint32_t k = 0; k < n; k++) {
            const veil_params *old = sets[k];
            for (size_t j = 0; j < nc; j++) {
                const uint32_t D = veil_params_big_dim(sets[master_index(sets, n)]);
                if (cand[j] == old || pbs_cost(cand[j], D) >= pbs_cost(old, D)) continue;
                sets[k] = cand[j];
                const double c2 = assignment_cost(p, sets, n, 0);
                if (c2 < c) {
                    c = c2;
                    old = cand[j];
                    changed = 1;
                }
                sets[k] = old;
            }
        }
        /* two partitions onto one set: what two single moves cannot reach
         * when each alone breaks the other's noise */
        for (uint32_t k = 0; !changed && k < n; k++)
            for (uint32_t q = k + 1; !changed && q < n; q++)
                for (size_t j = 0; !changed && j < nc; j++) {
                    const veil_params *ok = sets[k], *oq = sets[q];
                    sets[k] = sets[q] = cand[j];
                    const double c2 = assignment_cost(p, sets, n, 0);
                    if (c2 < c) {
                        c = c2;
                        changed = 1;
                    } else {
                        sets[k] = ok;
                        sets[q] = oq;
                    }
                }
    }
    return c;
}

/* Puts two partitions on one set, the pair and set that cost least (every
 * other partition keeps its set); returns the cost (+INFINITY: no merge
 * fits). The caller merges the two (merge_sets). */
static double merge_cheapest_pair(veil_program *p, const veil_params **sets, uint32_t n,
                                  const veil_params *const *cand, size_t nc) {
    double best = INFINITY;
    uint32_t bk = 0, bq = 0;
    const veil_params *bs = NULL;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t q = k + 1; q < n; q++)
            for (size_t j = 0; j < nc; j++) {
                const veil_params *ok = sets[k], *oq = sets[q];
                sets[k] = sets[q] = cand[j];
                const double c = assignment_cost(p, sets, n, 0);
                if (c < best) {
                    best = c;
                    bk = k;
                    bq = q;
                    bs = cand[j];
                }
                sets[k] = ok;
                sets[q] = oq;
            }
    if (bs) sets[bk] = sets[bq] = bs;
    return best;
}

/* Partitions with one set become one (node partitions renumbered); returns
 * how many are left. */
static uint32_t merge_sets(veil_program *p, const veil_params **sets, uint32_t n) {
    uint32_t *map = malloc((n + 1) * sizeof *map), m = 0;
    if (!map) return n; /* unmerged: still correct */
    for (uint32_t k = 0; k < n; k++) {
        uint32_t q = 0;
        while (q < m && sets[q] != sets[k])
            q++;
        if (q == m) sets[m++] = sets[k];
        map[k] = q;
    }
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_LUT || p->nodes[i].kind == VEIL_NODE_ROUND)
            p->nodes[i].partition = map[p->nodes[i].partition];
    free(map);
    return m;
}

/* Several sets (Concrete's multi-parameter optimisation): group the PBS by
 * precision and 2-norm, give each group its cheapest set (search_groups),
 * merge the groups that got the same set into one partition (partition 0:
 * the widest k*N, the master key), then lower the sets one partition at a
 * time while the exact noise pass allows. Keeps the result only if it beats
 * `single` (the cost of the best single set). */
/* Saves (save = 1) the partitioning of p, sets[0..np) and every node's
 * partition, into (saved, saved_part), or restores it (save = 0). */
static void partition_copy(veil_program *p, const veil_params **saved, uint32_t *saved_part,
                           const veil_params **sets, uint32_t np, int save) {
    memcpy(save ? saved : sets, save ? sets : saved, np * sizeof *sets);
    for (size_t i = 0; i < p->n_nodes; i++) {
        if (save)
            saved_part[i] = p->nodes[i].partition;
        else
            p->nodes[i].partition = saved_part[i];
    }
}

static veil_status choose_partitions(veil_program *p, double single) {
    unit_noise u = {0};
    VEIL_TRY(unit_noise_new(p, &u));
    const size_t count = veil_params_count();
    const veil_params **cand = calloc(count + 1, sizeof *cand);
    pbs_group *groups = calloc(p->n_nodes + 1, sizeof *groups);
    uint32_t *gof = calloc(p->n_nodes + 1, sizeof *gof);
    const veil_params **pick = calloc(p->n_nodes + 1, sizeof *pick);
    const veil_params **best = calloc(p->n_nodes + 1, sizeof *best);
    const veil_params **sets = calloc(p->n_nodes + 1, sizeof *sets);
    const veil_params **keep = calloc(p->n_partitions + 1, sizeof *keep);
    uint32_t *keep_part = calloc(p->n_nodes + 1, sizeof *keep_part);
    const veil_params **undo = calloc(p->n_nodes + 1, sizeof *undo);
    uint32_t *undo_part = calloc(p->n_nodes + 1, sizeof *undo_part);
    veil_status st = VEIL_OK;
    if (!cand || !groups || !gof || !pick || !best || !sets || !keep || !keep_part || !undo ||
        !undo_part)
        st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    size_t nc = 0, ng = 0;
    for (size_t i = 0; st == VEIL_OK && i < count; i++) {
        const veil_params *ps = veil_params_at(i);
        if (!p->options.max_poly_size || ps->poly_size <= p->options.max_poly_size) cand[nc++] = ps;
    }
    if (st == VEIL_OK) qsort(cand, nc, sizeof *cand, cmp_cost);
    for (size_t i = 0; st == VEIL_OK && i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind != VEIL_NODE_LUT && n->kind != VEIL_NODE_ROUND) continue;
        const int nl = u.ra[i] > 0 ? (int)floor(0.5 * log2(u.ra[i])) : -1000;
        size_t g = 0;
        while (g < ng && (groups[g].prec != u.prec[i] || groups[g].norm_log2 != nl))
            g++;
        if (g == ng) {
            groups[ng].prec = u.prec[i];
            groups[ng].norm_log2 = nl;
            ng++;
        }
        groups[g].ra = u.ra[i] > groups[g].ra ? u.ra[i] : groups[g].ra;
        groups[g].rb = u.rb[i] > groups[g].rb ? u.rb[i] : groups[g].rb;
        groups[g].pbs += (double)n->pbs_per_sample;
        gof[i] = (uint32_t)g;
    }
    double cost = INFINITY;
    if (st == VEIL_OK && ng) cost = search_groups(p, &u, groups, ng, cand, nc, pick, best);
    if (st == VEIL_OK && cost < INFINITY) {
        for (uint32_t i = 0; i < p->n_partitions; i++)
            keep[i] = p->partitions[i].params;
        for (size_t i = 0; i < p->n_nodes; i++) {
            keep_part[i] = p->nodes[i].partition;
            p->nodes[i].partition = gof[i]; /* a partition per group, for now */
        }
        uint32_t np = (uint32_t)ng;
        memcpy(sets, best, ng * sizeof *sets);
        double c = assignment_cost(p, sets, np, 0);
        /* lower the sets while the exact model allows: the bound model
         * charges every group the noisiest output of any set, and the
         * outputs' decoding (say) may bind only the groups feeding them;
         * group by group, then partition by partition (groups that share a
         * set move together) */
        c = descend(p, sets, np, cand, nc, c);
        np = merge_sets(p, sets, np);
        c = descend(p, sets, np, cand, nc, c);
        np = merge_sets(p, sets, np);
        /* merge the cheapest pair down to one partition, lowering sets
         * after each merge, and keep the cheapest program on the way: one
         * partition fewer can shrink the master key (every keyswitch reads
         * its D rows) or lift a noise bound that held other sets up, so the
         * cost along the path need not fall at every step (cnn_digits:
         * 8 partitions 871 s, 2 partitions 812 s) */
        {
            uint32_t bnp = np;
            double bc = c;
            partition_copy(p, undo, undo_part, sets, np, 1);
            for (double c2 = c; c2 < INFINITY && np > 1;) {
                c2 = merge_cheapest_pair(p, sets, np, cand, nc);
                np = merge_sets(p, sets, np);
                c2 = descend(p, sets, np, cand, nc, c2);
                np = merge_sets(p, sets, np);
                if (c2 < bc) {
                    bc = c2;
                    bnp = np;
                    partition_copy(p, undo, undo_part, sets, np, 1);
                }
            }
            np = bnp;
            c = bc;
            partition_copy(p, undo, undo_part, sets, np, 0);
        }
        /* at most max_partitions (and the VEIL_MAX_PARTITIONS a key set
         * holds), and keys within the budget: merge the
         * pair that costs least until both hold (one set left over budget:
         * no partitioned program) */
        const uint32_t maxp = p->options.max_partitions;
        while (c < INFINITY && np > 1 &&
               ((maxp && np > maxp) || np > VEIL_MAX_PARTITIONS || over_budget(p, sets, np))) {
            c = merge_cheapest_pair(p, sets, np, cand, nc);
            np = merge_sets(p, sets, np);
        }
        if (over_budget(p, sets, np)) c = INFINITY;
        if (c < single) {
            /* the master first */
            const uint32_t m = master_index(sets, np);
            const veil_params *t = sets[0];
            sets[0] = sets[m];
            sets[m] = t;
            for (size_t i = 0; i < p->n_nodes; i++) {
                veil_node *n = &p->nodes[i];
                if (n->kind != VEIL_NODE_LUT && n->kind != VEIL_NODE_ROUND)
                    n->partition = 0;
                else if (n->partition == m)
                    n->partition = 0;
                else if (n->partition == 0)
                    n->partition = m;
            }
            st = set_partitions(p, sets, np);
        } else {
            for (size_t i = 0; i < p->n_nodes; i++)
                p->nodes[i].partition = keep_part[i];
            if (p->n_partitions) st = set_partitions(p, keep, p->n_partitions);
        }
    }
    unit_noise_free(&u);
    free(cand);
    free(groups);
    free(gof);
    free(pick);
    free(best);
    free(sets);
    free(keep);
    free(keep_part);
    free(undo);
    free(undo_part);
    return st;
}

static veil_status choose_params(veil_program *p, const char *params_id) {
    double single = INFINITY;
    veil_status st = choose_single(p, params_id, &single);
    if (params_id || p->options.max_partitions == 1) return st; /* one set, one partition */
    if (st != VEIL_OK && st != VEIL_ERR_UNSUPPORTED) return st;
    const veil_status single_st = st;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", veil_error_message());
    if (single_st != VEIL_OK) {
        /* no single set fits: partitions may (a set per precision) */
        p->n_partitions = 0;
    }
    st = choose_partitions(p, single);
    if (st != VEIL_OK) return st;
    if (!p->n_partitions) return veil_error(single_st, "%s", msg);
    return VEIL_OK;
}

/* The chosen partitions' final variances and statistics. */
static veil_status fill_partitions(veil_program *p) {
    const veil_params **sets = calloc(p->n_partitions, sizeof *sets);
    unit_noise u = {0};
    if (!sets) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    veil_status st = unit_noise_new(p, &u);
    if (st != VEIL_OK) {
        free(sets);
        return st;
    }
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        sets[k] = p->partitions[k].params;
        p->partitions[k].log2_p_fail = -INFINITY;
        p->partitions[k].pbs_per_sample = 0;
        p->partitions[k].precision = 0;
        p->partitions[k].norm2 = 0;
    }
    uint32_t wn;
    noise_pass(p, sets, p->n_partitions, &wn);
    p->params = sets[0];
    p->cost_per_sample = 0;
    p->cost_per_sample_cuda = 0;
    p->key_bytes = key_bytes(sets, p->n_partitions);
    const uint32_t D = veil_params_big_dim(sets[0]);
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind != VEIL_NODE_LUT && n->kind != VEIL_NODE_ROUND) continue;
        veil_partition *pt = &p->partitions[n->partition];
        pt->pbs_per_sample += n->pbs_per_sample;
        p->cost_per_sample += (double)n->pbs_per_sample * pbs_cost(pt->params, D);
        p->cost_per_sample_cuda +=
            1e-3 * (double)n->pbs_per_sample * veil_cost_cuda_us(pt->params, D);
        if (u.prec[i] > pt->precision) pt->precision = u.prec[i];
        if (sqrt(u.ra[i]) > pt->norm2) pt->norm2 = sqrt(u.ra[i]);
        if (n->read_log2_pfail > pt->log2_p_fail) pt->log2_p_fail = n->read_log2_pfail;
    }
    unit_noise_free(&u);
    free(sets);
    return VEIL_OK;
}

/* ---- report ---------------------------------------------------------------- */

static veil_status build_report(veil_program *p) {
    p->report = calloc(p->n_nodes + 1, sizeof *p->report);
    if (!p->report) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    const double pbs = p->params ? veil_noise_pbs_output_variance(p->params) : 1;
    double log_ok = 0; /* sum log(1 - p_i) */
    p->pbs_per_sample = 0;
    p->log2_p_fail_pbs = -INFINITY;
    for (size_t i = 0; i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        if (n->kind == VEIL_NODE_INPUT || n->kind == VEIL_NODE_OUTPUT) continue;
        if (n->kind == VEIL_NODE_ROUND || n->kind == VEIL_NODE_LUT) {
            double pf = exp2(n->read_log2_pfail);
            log_ok += (double)n->pbs_per_sample * log1p(-pf);
            p->pbs_per_sample += n->pbs_per_sample;
            if (n->read_log2_pfail > p->log2_p_fail_pbs) p->log2_p_fail_pbs = n->read_log2_pfail;
        }
        if (n->kind == VEIL_NODE_ROUND) continue; /* reported with its lookup */
        if (p->n_report && !strcmp(p->report[p->n_report - 1].layer, n->layer)) {
            /* a decomposed lookup: its nodes make one line */
            veil_layer_report *r = &p->report[p->n_report - 1];
            if (n->kind == VEIL_NODE_LUT) {
                r->in_bits = n->in_bits > r->in_bits ? n->in_bits : r->in_bits;
                r->decomposed = 1;
            }
            continue;
        }
        veil_layer_report *r = &p->report[p->n_report++];
        r->layer = n->layer;
        r->log2_p_fail = n->read_log2_pfail;
        switch (n->kind) {
        case VEIL_NODE_LUT: {
            const veil_node *x = &p->nodes[n->in[0]];
            double pf = n->read_log2_pfail;
            const veil_node *acc = x;
            while (acc->kind == VEIL_NODE_ROUND)
                acc = &p->nodes[acc->in[0]];
            /* every PBS of the layer (rounding chunks, decomposed lookups) */
            uint64_t pbs_n = 0;
            for (size_t j = 0; j < p->n_nodes; j++) {
                const veil_node *q = &p->nodes[j];
                if ((q->kind == VEIL_NODE_LUT || q->kind == VEIL_NODE_ROUND) &&
                    !strcmp(q->layer, n->layer)) {
                    pbs_n += q->pbs_per_sample;
                    pf = q->read_log2_pfail > pf ? q->read_log2_pfail : pf;
                }
            }
            r->op = "lut";
            r->acc_bits = ubits((uint64_t)(acc->hi - acc->lo));
            r->lookups = pbs_n;
            r->table_size = (uint64_t)1 << n->in_bits;
            r->n_tables = n->n_tables;
            r->round_bits = n->round_bits;
            r->in_bits = n->in_bits;
            r->norm2 = ldexp(sqrt(x->variance / pbs), (int)n->shift);
            r->log2_p_fail = pf;
            break;
        }
        case VEIL_NODE_ADD:
            r->op = "add";
            r->acc_bits = n->bits;
            break;
        default: {
            static const char *const names[] = {"linear", "conv2d", "avgpool2d", "flatten",
                                                "concat"};
            r->op = names[n->linear];
            r->acc_bits = n->bits;
            break;
        }
        }
    }
    p->log2_p_fail_sample = log2(-expm1(log_ok));
    if (!(p->log2_p_fail_sample > -1e9)) p->log2_p_fail_sample = -INFINITY;
    return VEIL_OK;
}

void veil_program_print_report(const veil_program *p, FILE *f) {
    const veil_params *ps = p->params;
    fprintf(f, "model %s: %zu nodes, bounds %s, rounding %s", p->model_name, p->n_nodes,
            p->options.bounds == VEIL_BOUNDS_CALIBRATION ? "calibration" : "worst-case",
            p->options.rounding == VEIL_ROUNDING_EXACT ? "exact" : "approximate");
    if (p->options.rounding_bits)
        fprintf(f, " (keep %u bits)\n", p->options.rounding_bits);
    else
        fprintf(f, " (none)\n");
    fprintf(f, "%-24s %-9s %8s %10s %8s %6s %6s %10s %9s\n", "layer", "op", "acc_bits", "lookups",
            "table", "round", "read", "norm2", "log2 pf");
    for (size_t i = 0; i < p->n_report; i++) {
        const veil_layer_report *r = &p->report[i];
        if (!strcmp(r->op, "lut")) {
            char tab[32];
            if (r->decomposed)
                snprintf(tab, sizeof tab, "wide");
            else if (r->n_tables > 1)
                snprintf(tab, sizeof tab, "%ux%llu", r->n_tables,
                         (unsigned long long)r->table_size);
            else
                snprintf(tab, sizeof tab, "%llu", (unsigned long long)r->table_size);
            fprintf(f, "%-24s %-9s %8u %10llu %8s %6u %6u %10.3g %9.1f\n", r->layer, r->op,
                    r->acc_bits, (unsigned long long)r->lookups, tab, r->round_bits, r->in_bits,
                    r->norm2, r->log2_p_fail);
        } else {
            fprintf(f, "%-24s %-9s %8u %10s %8s %6s %6s %10s %9s\n", r->layer, r->op, r->acc_bits,
                    "-", "-", "-", "-", "-", "-");
        }
    }
    if (p->range_check)
        fprintf(f,
                "range check: %llu values per sample checked (lookup inputs and outputs), %llu "
                "PBS per sample (%.1f%% of the program's), windows %s, output '%s'\n",
                (unsigned long long)p->range_check_values, (unsigned long long)p->range_check_pbs,
                p->pbs_per_sample ? 100.0 * (double)p->range_check_pbs / (double)p->pbs_per_sample
                                  : 0.0,
                p->range_check_narrow ? "within the model's encoding"
                                      : "one bit wider than the ranges",
                VEIL_RANGE_CHECK_OUTPUT);
    if (!ps) {
        fprintf(f,
                "width %u bits, widest lookup %u bits, widest accumulator %u bits, PBS per "
                "sample %llu\n",
                p->width, p->max_lut_bits, p->max_acc_bits, (unsigned long long)p->pbs_per_sample);
        fprintf(f, "no parameter set: simulate only (%s)\n",
                p->params_note ? p->params_note : "not chosen");
        return;
    }
    fprintf(f,
            "width %u bits (Delta per value, smallest 2^%u), widest lookup %u bits, widest "
            "accumulator %u bits\n",
            p->width, 63 - p->width, p->max_lut_bits, p->max_acc_bits);
    fprintf(f,
            "parameters %s: n=%u k=%u N=%u pbs %u/%u ks %u/%u, precision %u, %.0f-bit security "
            "(partition 0)\n",
            ps->id, ps->lwe_dim, ps->glwe_dim, ps->poly_size, ps->pbs_base_log, ps->pbs_level,
            ps->ks_base_log, ps->ks_level, ps->precision, ps->security_bits);
    fprintf(f, "partitions %u (a parameter set each; partition 0's big key is the master key)\n",
            p->n_partitions);
    fprintf(f, "  %-4s %-5s %9s %-22s %5s %2s %6s %2s %12s %9s\n", "part", "prec", "norm2", "set",
            "n", "k", "N", "l", "PBS/sample", "log2 pf");
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        const veil_partition *pt = &p->partitions[k];
        fprintf(f, "  %-4u %-5u %9.3g %-22s %5u %2u %6u %2u %12llu %9.1f\n", k, pt->precision,
                pt->norm2, pt->params->id, pt->params->lwe_dim, pt->params->glwe_dim,
                pt->params->poly_size, pt->params->pbs_level,
                (unsigned long long)pt->pbs_per_sample, pt->log2_p_fail);
    }
    size_t fitted = 0, scaled = 0;
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        fitted += veil_cost_cpu_origin(p->partitions[k].params) != VEIL_COST_MEASURED;
        scaled += veil_cost_cuda_origin(p->partitions[k].params) != VEIL_COST_MEASURED;
    }
    fprintf(f,
            "predicted cost per sample %.4g ms on one cpu core (measured per set: %s%s), %.4g "
            "ms on cuda at full throughput (bench_gpu, NVIDIA H100%s)\n",
            p->cost_per_sample, veil_cost_source(),
            fitted ? "; some sets from the table's fit" : "", p->cost_per_sample_cuda,
            scaled ? "; sets without a GPU figure scaled from their CPU figure" : "");
    if (p->options.key_budget_mb)
        fprintf(f, "prepared evaluation keys %.0f MiB (budget %u MiB, --key-budget-mb)\n",
                p->key_bytes / 1048576.0, p->options.key_budget_mb);
    else
        fprintf(f, "prepared evaluation keys %.0f MiB (no budget)\n", p->key_bytes / 1048576.0);
    fprintf(f, "PBS per sample %llu; p_fail per PBS <= 2^%.1f (target 2^%.1f); per sample 2^%.1f\n",
            (unsigned long long)p->pbs_per_sample, p->log2_p_fail_pbs, log2(p->options.p_error),
            p->log2_p_fail_sample);
    if (p->options.rounding == VEIL_ROUNDING_EXACT) {
        uint64_t extra = 0;
        for (size_t i = 0; i < p->n_nodes; i++)
            if (p->nodes[i].kind == VEIL_NODE_ROUND) extra += p->nodes[i].pbs_per_sample;
        if (extra)
            fprintf(f, "exact rounding: %llu of those PBS clear low bits (2 per chunk)\n",
                    (unsigned long long)extra);
    }
}

/* ---- range check (veil/program.h, "Range check") ------------------------------ */

/* Bits of the encoding node n needs (0: none): a lookup's read, an output's
 * range. The program's width is the largest. */
static unsigned node_width(const veil_node *n) {
    if (n->kind == VEIL_NODE_LUT) return n->round_bits + n->in_bits;
    if (n->kind == VEIL_NODE_OUTPUT) return ubits((uint64_t)(n->hi - n->lo));
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
    for (uint32_t o = 0; o < n_out; o++)
        VEIL_TRY(check_later(b, p->nodes[p->output_nodes[o]].in[0]));
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
        const uint64_t span = (uint64_t)(xn->hi - xn->lo);
        /* headroom: one more bit than the range needs, centred: a >= W / 2
         * each side (W = span + 1 <= 2^w); at most 16 bits in all */
        unsigned wb = ubits(span) + 1 < VEIL_MAX_BITS ? ubits(span) + 1 : VEIL_MAX_BITS;
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
            w = ubits((uint64_t)(n->hi - n->lo)); /* decoding */
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
 * the keyswitch ignored). min_ms[prec]: that cheapest figure. */
static double chunk_bound(const veil_program *p, const double *min_ms) {
    double c = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND)
            c += (double)n->pbs_per_sample * min_ms[pbs_prec(n)];
    }
    return c;
}

/* The parameter search for p's current chunk widths: its predicted cost
 * per sample; +INFINITY when no set fits (not an error here) or when
 * chunk_bound shows it cannot beat `best` (no search then). */
static veil_status chunk_trial(veil_program *p, const char *params_id, const double *min_ms,
                               double best, double *cost) {
    *cost = INFINITY;
    if (chunk_bound(p, min_ms) >= best) return VEIL_OK;
    veil_status st = choose_params(p, params_id);
    if (st == VEIL_OK) st = fill_partitions(p);
    if (st == VEIL_OK) *cost = p->cost_per_sample;
    return st == VEIL_ERR_UNSUPPORTED ? VEIL_OK : st;
}

/* The chunk width of every ROUND node, a choice of the cost model, then the
 * parameter sets (choose_params) for it. Wide chunks mean few PBS, each
 * reading c - 1 bits; narrow ones more PBS at a lower precision, which can
 * land in a cheaper set (mlp_digits at --rounding-bits 4: a 7-bit rounding
 * in chunks of 4 + 3 read at 3 bits on N = 1024 and a 6-bit one in 3 + 3
 * read at 2 bits, instead of 5 + 2 and 5 + 1 read at 4 bits on N = 2048:
 * 9.29 s -> 7.81 s predicted). Candidates run from 2 bits (a 1-bit chunk
 * costs as many PBS per bit at the same 1-bit read) up to p + 1, p the
 * program's widest lookup (today's width, chunk_bits = widest; a wider chunk
 * would raise the program's precision), less those another candidate
 * dominates (as many PBS or more at as wide a read or wider: for 7 bits,
 * chunks of 5 (5 + 2: 4 PBS, 4-bit reads) lose to 4 (4 + 3: 4 PBS, 3-bit)).
 * search = 0: every node at the widest. Else: every node at the widest,
 * then every node at each narrower width, then from the cheapest of those
 * each node alone at each other width, keeping a change when the whole
 * program (partitions and sets searched again) costs less; a trial whose
 * chunk_bound is no better than the best is skipped. So the result never
 * costs more than the widest chunks'. */
static veil_status choose_chunks(veil_program *p, const char *params_id, unsigned widest,
                                 int search) {
    uint32_t *rn = malloc((p->n_nodes + 1) * sizeof *rn);
    unsigned *best = malloc((p->n_nodes + 1) * sizeof *best);
    if (!rn || !best) {
        free(rn);
        free(best);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    size_t nr = 0;
    unsigned top = 2; /* the widest chunk any node uses */
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
    if (!search || top <= 2 || p->options.chunk_bits) { /* nothing to choose */
        free(rn);
        free(best);
        return choose_params(p, params_id);
    }
    double min_ms[VEIL_MAX_BITS + 2];
    for (unsigned q = 0; q <= VEIL_MAX_BITS + 1; q++) {
        min_ms[q] = INFINITY;
        for (size_t i = 0; i < veil_params_count(); i++) {
            const veil_params *ps = veil_params_at(i);
            const double c = veil_cost_cpu_ms(ps, 0);
            if (set_reads(ps, q, p->options.max_poly_size) && c < min_ms[q]) min_ms[q] = c;
        }
    }
    double best_cost = INFINITY, c;
    veil_status st = chunk_trial(p, params_id, min_ms, INFINITY, &best_cost);
    int last_best = 1; /* p holds the parameters of the best widths */
    /* every node at one narrower width */
    for (unsigned w = widest - 1; st == VEIL_OK && w >= 2; w--) {
        int same = 1;
        for (size_t k = 0; k < nr; k++) {
            set_chunk_bits(&p->nodes[rn[k]], w);
            same &= p->nodes[rn[k]].chunk_bits == best[k];
        }
        if (same) continue;
        st = chunk_trial(p, params_id, min_ms, best_cost, &c);
        last_best = c < best_cost;
        if (last_best) {
            best_cost = c;
            for (size_t k = 0; k < nr; k++)
                best[k] = p->nodes[rn[k]].chunk_bits;
        }
    }
    /* one node at a time, over its undominated widths */
    for (size_t k = 0; st == VEIL_OK && k < nr; k++) {
        veil_node *n = &p->nodes[rn[k]];
        for (unsigned w = 2; st == VEIL_OK && w <= widest && w <= n->round_bits; w++) {
            if (w == best[k]) continue;
            set_chunk_bits(n, w);
            const uint64_t pbs = n->pbs_per_sample;
            const unsigned prec = pbs_prec(n);
            int dominated = 0;
            for (unsigned v = 2; !dominated && v <= widest && v <= n->round_bits; v++) {
                if (v == w) continue;
                set_chunk_bits(n, v);
                dominated = n->pbs_per_sample <= pbs && pbs_prec(n) <= prec &&
                            (n->pbs_per_sample < pbs || pbs_prec(n) < prec || v > w);
            }
            if (dominated) continue;
            for (size_t j = 0; j < nr; j++)
                set_chunk_bits(&p->nodes[rn[j]], best[j]);
            set_chunk_bits(n, w);
            st = chunk_trial(p, params_id, min_ms, best_cost, &c);
            last_best = c < best_cost;
            if (last_best) {
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
     * was that program; also when nothing fits, for choose_params' error) */
    if (last_best && best_cost < INFINITY) return VEIL_OK;
    return choose_params(p, params_id);
}

/* One compilation with lookups read at most lut_bits wide (wider exact
 * lookups decomposed). n_wide: how many were decomposed. search_chunks: the
 * exact rounding's chunk widths chosen by the cost model (choose_chunks),
 * else all at the widest. */
static veil_status compile_once(const veil_model *m, const veil_compile_options *opts,
                                unsigned lut_bits, uint64_t pbs_max, int check_narrow,
                                int search_chunks, veil_program **out, unsigned *n_wide) {
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
    b.lut_bits = lut_bits;
    b.pbs_max = pbs_max;
    b.check_narrow = check_narrow;
    p->range_check_narrow = check_narrow;
    p->model_name = strdup(m->name ? m->name : "model");
    p->input_nodes = calloc(m->n_inputs, sizeof *p->input_nodes);
    p->output_nodes = calloc(m->n_outputs, sizeof *p->output_nodes);
    b.tensor_node = calloc((size_t)m->n_inputs + m->n_layers, sizeof *b.tensor_node);
    if (!p->model_name || !p->input_nodes || !p->output_nodes || !b.tensor_node)
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
                maxp = n->in_bits > maxp ? n->in_bits : maxp;
                const veil_node *x = &p->nodes[n->in[0]];
                if (x->kind == VEIL_NODE_ROUND) x = &p->nodes[x->in[0]];
                unsigned acc = ubits((uint64_t)(x->hi - x->lo));
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
                n->pbs_per_sample = n->size;
            }
        }
    }
    if (st == VEIL_OK) {
        /* and the parameter sets */
        st = choose_chunks(p, o.params_id, (p->max_lut_bits ? p->max_lut_bits : 1) + 1,
                           search_chunks);
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
        if (p->params) st = fill_partitions(p); /* final variances for the chosen sets */
        if (st == VEIL_OK) st = build_report(p);
    }
    if (b.cal)
        for (size_t i = 0; i < p->n_nodes; i++)
            free(b.cal[i]);
    free(b.cal);
    free(b.tensor_node);
    free(b.checked);
    if (st != VEIL_OK) {
        veil_program_free(p);
        return st;
    }
    *n_wide = b.n_wide;
    *out = p;
    return VEIL_OK;
}

veil_status veil_program_compile(const veil_model *m, const veil_compile_options *options,
                                 veil_program **out) {
    if (!m || !out) return veil_error(VEIL_ERR_ARG, "veil_program_compile: NULL argument");
    veil_compile_options o;
    if (options)
        o = *options;
    else
        veil_compile_options_default(&o);
    if (!(o.p_error > 0 && o.p_error < 1))
        return veil_error(VEIL_ERR_ARG, "compile: p_error %g must be in (0, 1)", o.p_error);
    if (o.rounding_bits > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_ARG, "compile: rounding bits %u, at most %u", o.rounding_bits,
                          VEIL_MAX_BITS);
    if (!(o.range_margin >= 0 && o.range_margin <= 16))
        return veil_error(VEIL_ERR_ARG, "compile: range margin %g, expected 0 to 16",
                          o.range_margin);
    if (o.max_partitions > 64)
        return veil_error(VEIL_ERR_ARG, "compile: partitions %u, expected 1 to 64 (or 0: auto)",
                          o.max_partitions);
    if (o.lookup_bits == 1 || o.lookup_bits > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_ARG, "compile: lookup bits %u, expected 2 to %u (or 0: auto)",
                          o.lookup_bits, VEIL_MAX_BITS);
    if (o.chunk_bits > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_ARG, "compile: chunk bits %u, expected 1 to %u (or 0: auto)",
                          o.chunk_bits, VEIL_MAX_BITS);
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
    } else if (o.params_id && veil_params_find(o.params_id)) {
        hi = lo = veil_params_find(o.params_id)->precision;
        lo = hi = hi < 2 ? 2 : hi;
    }
    veil_program *best = NULL;
    unsigned best_bits = hi;
    int best_narrow = 0;
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
            veil_program *p = NULL;
            unsigned n_wide = 0;
            /* a program of P PBS costs at least P times the cheapest
             * blind rotation of the table: past best_cost / that it cannot
             * win (deep decompositions grow fast). Measured, an N = 32768
             * PBS costs ~100x an N = 512 one, so a fixed multiple of the best
             * program's PBS count (8x before the measured table) cut off
             * cheaper narrow programs: mlp_digits --rounding-bits 8 then
             * kept 9.7 GiB of N = 32768 keys at 105 s per sample where a
             * decomposition into narrower PBS costs 101 s with 1.6 GiB */
            uint64_t limit = UINT64_MAX;
            if (best && best_cost / min_pbs < 1e15) limit = (uint64_t)ceil(best_cost / min_pbs);
            veil_status st = compile_once(m, &strict, bits, limit, narrow, 0, &p, &n_wide);
            if (st != VEIL_OK) {
                if (first_err == VEIL_OK) {
                    first_err = st;
                    snprintf(first_msg, sizeof first_msg, "%s", veil_error_message());
                }
                if (st != VEIL_ERR_UNSUPPORTED) break;
                continue;
            }
            /* narrower reads only change a program that has lookups that wide */
            const unsigned widest = p->max_lut_bits;
            const double c = p->cost_per_sample;
            if (c < best_cost) {
                veil_program_free(best);
                best = p;
                best_cost = c;
                best_bits = bits;
                best_narrow = narrow;
            } else {
                veil_program_free(p);
            }
            /* (the next width tried is widest - 1: at widest it is this
             * very program) */
            if (n_wide == 0 && widest < bits) bits = widest > lo ? widest : lo;
        }
    }
    if (best && !o.chunk_bits) {
        /* the exact rounding's chunk widths by the cost model, for the
         * cheapest width only (a search per width multiplied compile time
         * by up to 20: cnn_digits exact 3.6 s -> 35 s); it starts from
         * this very program, so it costs no more */
        veil_program *p = NULL;
        unsigned n_wide = 0;
        veil_status st =
            compile_once(m, &strict, best_bits, UINT64_MAX, best_narrow, 1, &p, &n_wide);
        if (st == VEIL_OK && p->cost_per_sample <= best_cost) {
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
        unsigned n_wide = 0;
        return compile_once(m, &o, hi, UINT64_MAX, 0, 0, out, &n_wide);
    }
    return veil_error(first_err, "%s", first_msg);
}

int64_t veil_program_decode(const veil_program *p, uint32_t output, uint64_t phase) {
    const veil_node *n = &p->nodes[p->output_nodes[output]];
    const unsigned shift = 63 - n->width;
    /* m = round(phase / Delta) mod 2^(width+1), then the representative in
     * [lo, lo + 2^(width+1)) */
    uint64_t m = (phase + ((uint64_t)1 << (shift - 1))) >> shift;
    const uint64_t mod_mask = ((uint64_t)1 << (n->width + 1)) - 1;
    uint64_t d = (m - (uint64_t)n->lo) & mod_mask;
    return (int64_t)((uint64_t)n->lo + d);
}
