/* compile_params.c — the compiler's noise accounting and parameter choice
 * (veil/program.h: how sets are chosen; veil/noise.h: the noise model):
 * the noise pass over a program for a list of sets, the modelled cost, the
 * single-set and partition searches, and the chosen partitions' statistics.
 * compile.c builds the graph and calls veil_choose_params and veil_fill_partitions
 * (compile_internal.h). */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile_internal.h"
#include "program_internal.h"
#include "veil/cost.h"
#include "veil/noise.h"
#include "veil/program.h"
#include "veil/tfhe.h"

/* ---- noise and parameter choice -------------------------------------------- */

/* log2 of the failure probability the search holds every PBS read and
 * output decoding to: the options' (veil_compile_options_pbs_p_error), or
 * the one a global budget's search is trying (choose_params_global). */
static double pbs_target(const veil_program *p) {
    return p->search_log2_p_error < 0 ? p->search_log2_p_error
                                      : log2(veil_compile_options_pbs_p_error(&p->options));
}

double veil_program_p_fail_shares(const veil_program *p, double *share, uint32_t n_share,
                                  double *log2_sample) {
    double log_ok = 0, sum = 0; /* sum log(1 - p_i), sum p_i */
    if (share) memset(share, 0, (n_share + 1) * sizeof *share);
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        /* an output's decoding fails too (half a step of margin): the noise
         * pass holds it to p_error like a read, so it counts here */
        const int out = n->kind == VEIL_NODE_OUTPUT;
        if (!out && n->kind != VEIL_NODE_ROUND && n->kind != VEIL_NODE_LUT) continue;
        if (!(n->read_log2_pfail > -INFINITY)) continue;
        const double pf = exp2(n->read_log2_pfail);
        const double count = out ? (double)n->size : (double)veil_node_results(n);
        log_ok += count * log1p(-pf);
        sum += count * pf;
        if (share) share[out || n->partition >= n_share ? n_share : n->partition] += count * pf;
    }
    if (log2_sample) {
        *log2_sample = log2(-expm1(log_ok));
        if (!(*log2_sample > -1e9)) *log2_sample = -INFINITY;
    }
    return sum;
}

double veil_read_variance(const veil_params *ps, double value_var, unsigned shift) {
    return value_var * veil_pow2(2 * (int)shift);
}

/* The set whose big key is the master key among sets[0..n): the widest k*N,
 * then the noisiest fresh encryption, then the first. The compiler puts it
 * first (partition 0). */
static uint32_t master_index(const veil_params *const *sets, uint32_t n) {
    uint32_t m = 0, dm = veil_params_big_dim(sets[0]);
    double vm = -1; /* sets[m]'s fresh variance, computed at the first tie */
    for (uint32_t i = 1; i < n; i++) {
        const uint32_t di = veil_params_big_dim(sets[i]);
        if (di < dm || sets[i] == sets[m]) continue;
        if (di > dm) {
            m = i, dm = di, vm = -1;
            continue;
        }
        if (vm < 0) vm = veil_noise_fresh_variance(sets[m]);
        const double vi = veil_noise_fresh_variance(sets[i]);
        if (vi > vm) m = i, vm = vi;
    }
    return m;
}

/* veil_input_set for a width that is not 0. */
static const veil_params *input_set_at(const veil_params *const *sets, uint32_t n, uint32_t width) {
    const veil_params *best = NULL;
    double vb = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (veil_params_big_dim(sets[i]) != width) continue;
        const double v = veil_noise_fresh_variance(sets[i]);
        if (v > vb) best = sets[i], vb = v;
    }
    return best;
}

const veil_params *veil_input_set(const veil_params *const *sets, uint32_t n, uint32_t width) {
    if (!sets || !n) return NULL;
    /* among the sets of that k*N, master_index's rule: the noisiest fresh
     * encryption, then the first (width 0: the master's own) */
    return input_set_at(sets, n, width ? width : veil_params_big_dim(sets[master_index(sets, n)]));
}

const veil_params *veil_program_input_set(const veil_program *p) {
    if (!p || !p->n_partitions) return p ? p->params : NULL;
    const veil_params *sets[VEIL_MAX_PARTITIONS];
    const uint32_t n =
        p->n_partitions < VEIL_MAX_PARTITIONS ? p->n_partitions : VEIL_MAX_PARTITIONS;
    for (uint32_t i = 0; i < n; i++)
        sets[i] = p->partitions[i].params;
    return veil_input_set(sets, n, p->input_width);
}

/* A WoP-PBS node's set (veil/wop.h), fixed by its width: the search never
 * moves it (is_pbs_node), assign_wop_partitions gives it a partition
 * of that set after the search, and the noise pass reads it from here
 * whatever its partition index says during the search. NULL for any other
 * node. */
static const veil_wop_params *wop_of(const veil_node *n) {
    return n->kind == VEIL_NODE_LUT && n->wop ? veil_wop_params_for_width(n->in_bits) : NULL;
}

/* The WoP-PBS's sets (one partition each, assign_wop_partitions). */
static uint32_t wop_sets(const veil_program *p) {
    const veil_wop_params *seen[16]; /* one set a width, 9 to 16 */
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_wop_params *wp = wop_of(&p->nodes[i]);
        uint32_t j = 0;
        while (wp && j < n && seen[j] != wp)
            j++;
        if (wp && j == n && n < 16) seen[n++] = wp;
    }
    return n;
}

/* The search's cap on its partitions: --partitions less the WoP-PBS's own,
 * appended after the search (veil_choose_params refuses a cap they fill);
 * 0: none. */
static uint32_t search_cap(const veil_program *p) {
    const uint32_t maxp = p->options.max_partitions, w = maxp ? wop_sets(p) : 0;
    return !maxp ? 0 : maxp > w ? maxp - w : 1;
}

/* veil_node_read_dim's rule from the input's width `in` and the set's k*N
 * `own` (the search has them without the node widths). */
static inline uint32_t read_dim(const veil_node *n, uint32_t in, uint32_t own, unsigned pbs) {
    return n->kind == VEIL_NODE_ROUND && pbs > 0 && own > in ? own : in;
}

uint32_t veil_node_read_dim(const veil_program *p, const veil_node *n, const veil_params *ps,
                            unsigned pbs) {
    return read_dim(n, p->nodes[n->in[0]].key_dim, veil_params_big_dim(ps), pbs);
}

/* Node n's key width (veil_node.key_dim) with set ps (its partition's) and
 * inputs under the first in_width coefficients of the master key, its
 * inputs' filled: an input has in_width, a lookup's output its set's k*N, a
 * rounding's the wider of its input's and its set's (it adds PBS outputs to
 * its input), anything else the widest of its inputs'. */
static inline uint32_t node_key_dim(const veil_program *p, const veil_node *n,
                                    const veil_params *ps, uint32_t in_width) {
    if (n->kind == VEIL_NODE_INPUT) return in_width;
    if (n->kind == VEIL_NODE_LUT) return veil_params_big_dim(n->wop ? &wop_of(n)->pbs : ps);
    uint32_t w = n->kind == VEIL_NODE_ROUND ? veil_params_big_dim(ps) : 0;
    for (uint32_t j = 0; j < n->n_in; j++)
        if (p->nodes[n->in[j]].key_dim > w) w = p->nodes[n->in[j]].key_dim;
    return w;
}

/* Fills every node's key width for sets[0..nsets) (node partition). */
static void key_width_pass(veil_program *p, const veil_params *const *sets, uint32_t in_width) {
    for (size_t i = 0; i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        n->key_dim = node_key_dim(p, n, sets[n->partition], in_width);
    }
}

/* Milliseconds on one core of PBS node n's PBS per sample with a set of
 * cost terms br + ks * rows (veil_cost_cpu_terms), each keyswitch priced
 * at the rows it reads (veil_node_read_dim): the first PBS of every value
 * r0, the rest (a rounding's later chunks) r1. */
static double node_cost_rows(const veil_node *n, double br, double ks, uint32_t r0, uint32_t r1) {
    if (r0 == r1) return (double)n->pbs_per_sample * veil_cost_cpu_ms_of(br, ks, r0);
    const double first = (double)(n->pbs_per_sample < n->size ? n->pbs_per_sample : n->size);
    return first * veil_cost_cpu_ms_of(br, ks, r0) +
           ((double)n->pbs_per_sample - first) * veil_cost_cpu_ms_of(br, ks, r1);
}

/* The same with set ps, the key widths filled. */
static double node_cost(const veil_program *p, const veil_node *n, const veil_params *ps) {
    double br, ks;
    veil_cost_cpu_terms(ps, &br, &ks);
    return node_cost_rows(n, br, ks, veil_node_read_dim(p, n, ps, 0),
                          veil_node_read_dim(p, n, ps, 1));
}

/* The per-partition noise terms of the noise pass for sets[0..n)
 * keyswitching the whole master key of dimension `master`, computed at a
 * partition's first read and kept for the rest of the pass (the search runs
 * these passes thousands of times, over programs of a few partitions and
 * many nodes); partitions past the cache are computed at every read, with
 * the same calls, so the values never depend on the cache. */
#define PART_TERMS_CACHED 32u
typedef struct part_terms {
    const veil_params *const *sets;
    uint32_t master;
    unsigned char noise_done[PART_TERMS_CACHED];
    double ks[PART_TERMS_CACHED], ms[PART_TERMS_CACHED], pbs[PART_TERMS_CACHED];
} part_terms;

static void part_terms_init(part_terms *t, const veil_params *const *sets, uint32_t master) {
    t->sets = sets;
    t->master = master;
    memset(t->noise_done, 0, sizeof t->noise_done);
}

/* The keyswitch, modulus-switch and PBS output variances of partition k. */
static void term_noise(part_terms *t, uint32_t k, double *ks, double *ms, double *pbs) {
    if (k < PART_TERMS_CACHED && t->noise_done[k]) {
        *ks = t->ks[k], *ms = t->ms[k], *pbs = t->pbs[k];
        return;
    }
    *ks = veil_noise_ks_variance_dim(t->sets[k], t->master);
    *ms = veil_noise_ms_variance(t->sets[k]);
    *pbs = veil_noise_pbs_output_variance(t->sets[k]);
    if (k < PART_TERMS_CACHED) {
        t->ks[k] = *ks, t->ms[k] = *ms, t->pbs[k] = *pbs;
        t->noise_done[k] = 1;
    }
}

/* An output's decoding margin: half a step of its Delta over its noise's
 * standard deviation times sqrt 2 (+INFINITY without noise). */
static double output_margin(const veil_node *n) {
    const double sd = sqrt(n->variance), half = ldexp(1.0, 62 - (int)n->width);
    return sd > 0 ? half / (sd * sqrt(2.0)) : INFINITY;
}

/* Propagates variances with sets[i] running partition i's PBS (node
 * partition), the master big key (fresh inputs, every ciphertext between
 * PBS) being master_index()'s (partition 0's in a compiled program): a PBS of partition X
 * keyswitches from the master key with X's KSK, modulus-switches with X's n and N and outputs with
 * X's PBS output variance. Fills per-node variance and read_log2_pfail, and returns the
 * worst log2 p_fail of one PBS (or output decoding) and the node holding it.
 *
 * With cut (the search's trials: feasible or not is all they ask), read_log2_pfail is
 * left as it was and the result is exact only between two margins: cut[0], under which
 * a read's log2 p_fail is above the target by more than 1, and cut[1], over which it is
 * below by more than 1 (search_cuts). A read under cut[0] ends the pass with +1 (above
 * any target; the variances after it are not filled), every read over cut[1] makes it
 * return -INFINITY without the log2 erfc. Either way the comparison with the target
 * comes out as the exact value's would. */
/* ---- correlated noise ------------------------------------------------------
 * The pass keeps one variance per node: an upper bound V on the variance of
 * each of its values. Leveled ops combine values whose noises are
 * independent only when they come from different fresh sources (an
 * encryption, a PBS output: distinct ciphertexts, independent noise, as
 * Concrete and TFHE-rs model them). Through a leveled chain they are not: a
 * sum pool of a convolution's overlapping outputs reads the same inputs
 * several times (3x3 ones, then 2x2 stride 1: 100 times an input's variance,
 * where sum_w2 times sum_w2 gives 36), and b + W b adds a value to a
 * multiple of itself. tests/test_noise_program.c measures both.
 *
 * One exception among the fresh sources: a PBS is deterministic, so a LUT
 * node that runs an earlier one's PBS again (same_pbs: the same ciphertexts
 * read, the same table) gives its ciphertexts again and takes its source:
 * three lookup layers of one tensor with one table, summed, have 9 times a
 * lookup's variance, not 3 (tests/test_noise_program.c test_twin_lookups);
 * with the table negated its noise is minus the other's, or nearly
 * (same_pbs; test_negated_lookups: t1 - t2 measured 1.8 times 2 V);
 * a LUT reading a concatenation of one value m times has rho = m
 * (pbs_copies; test_repeated_reads).
 *
 * So each node also carries rho >= 1 with L <= rho V, L the largest
 * eigenvalue of its values' noise covariance (rho = 1 for fresh sources,
 * whose covariance is diagonal). A LINEAR node y = W x then has, per row w,
 * var(w . x) <= min(L ||w||^2, V ||w||_1^2) (the second: standard
 * deviations add at worst), so V_y = V_x noise_w2 with
 * noise_w2 = min(rho sum_w2, r1^2), r1 the largest row 1-norm: sum_w2 itself
 * when rho = 1, the pass as before. Its covariance's eigenvalue is at most
 * ||W||_2^2 L_x <= r1 c1 rho V_x (Schur's bound, c1 the largest column
 * 1-norm), so rho_y = r1 c1 rho / noise_w2. Inputs concatenated (several
 * operands) have rho the largest of theirs when they share no source and
 * the sum of theirs when they do (a block PSD matrix's top eigenvalue is at
 * most the sum of its blocks'). An ADD of operands that share a source
 * (add_correlated; the same node twice included) has variance at most
 * (sa + sb)^2 <= 2 (va + vb), a linear form as the search's unit forms need;
 * rho_y = max(rho_a, rho_b) either way. A ROUND node adds fresh PBS noise to
 * its input's: rho_y = rho_x. Every bound is above the exact variance, and
 * equal to the independent model wherever no source is shared.
 *
 * Elementwise chains are exact instead (add_terms): through ADD, one-weight
 * scales, flattens and ROUND nodes an ADD's noise is sum c_a e_a over atoms
 * a (any other node) plus, per ROUND r, c_r times r's fresh PBS noise, of
 * variance V_r - V_in(r). Coefficients are integers, so the same atom with
 * +1 and -1 cancels exactly: a wide lookup's digit R_j - R_(j+1), both
 * rounds of x, has only the two rounds' PBS noise, not x's twice. When the
 * atoms left share no source (and none holds a round of the form), the
 * variance is sum c_a^2 V_a + sum c_r^2 (V_r - V_in(r)), exact, and rho_y
 * the atoms' largest; else the 2 (va + vb) bound above. */

/* How many outputs of a window of k at stride st, out of `out`, read one
 * input position: at most ceil(k / st), and at most out. */
static double window_reads(uint32_t k, uint32_t st, uint32_t out) {
    const uint32_t r = st ? (k + st - 1) / st : k;
    return (double)(r < out ? r : out);
}

/* Largest row and column 1-norms of a LINEAR node's operator. */
static void linear_norms(const veil_node *n, double *r1, double *c1) {
    const veil_conv_geom *g = &n->conv;
    *r1 = *c1 = 1;
    if (n->linear == VEIL_LINEAR_SUMPOOL2D) {
        *r1 = (double)g->kh * g->kw;
        *c1 =
            window_reads(g->kh, g->stride_h, g->h_out) * window_reads(g->kw, g->stride_w, g->w_out);
        return;
    }
    if (!n->weight) return; /* flatten, concat: each value copied once */
    size_t rows, cols, taps = 1;
    double reads = 1;
    if (n->linear == VEIL_LINEAR_DENSE) {
        rows = n->n_weight_rows, cols = n->n_weight_cols;
    } else {
        /* conv2d [c_out][c_in][kh][kw]: an input value meets each output
         * channel through at most `reads` taps of its kernel slice */
        rows = g->c_out, taps = (size_t)g->kh * g->kw;
        cols = (size_t)g->c_in * taps;
        reads =
            window_reads(g->kh, g->stride_h, g->h_out) * window_reads(g->kw, g->stride_w, g->w_out);
    }
    double r = 0, c = 0;
    for (size_t o = 0; o < rows; o++) {
        double s = 0;
        for (size_t j = 0; j < cols; j++)
            s += fabs((double)n->weight[o * cols + j]);
        r = s > r ? s : r;
    }
    for (size_t ci = 0; ci < cols / taps; ci++) {
        double s = 0;
        for (size_t o = 0; o < rows; o++) {
            double sum = 0, top = 0;
            for (size_t t = 0; t < taps; t++) {
                const double a = fabs((double)n->weight[o * cols + ci * taps + t]);
                sum += a;
                top = a > top ? a : top;
            }
            s += sum < reads * top ? sum : reads * top;
        }
        c = s > c ? s : c;
    }
    *r1 = r, *c1 = c;
}

/* Do the noise sources of nodes a and b meet (bit sets of src_words words)? */
static int sources_meet(const uint64_t *src, size_t words, uint32_t a, uint32_t b) {
    for (size_t w = 0; w < words; w++)
        if (src[(size_t)a * words + w] & src[(size_t)b * words + w]) return 1;
    return 0;
}

/* An elementwise form: coefficient c of node `node` (round: its fresh PBS
 * noise; else the node's whole noise). */
#define FORM_MAX 8
typedef struct form_term {
    uint32_t node;
    int round;
    double c;
} form_term;

typedef struct noise_form {
    unsigned n;
    form_term t[FORM_MAX];
} noise_form;

/* f += c * (node's term); 0 when the form is full */
static int form_add(noise_form *f, uint32_t node, int round, double c) {
    for (unsigned i = 0; i < f->n; i++)
        if (f->t[i].node == node && f->t[i].round == round) {
            f->t[i].c += c;
            return 1;
        }
    if (f->n == FORM_MAX) return 0;
    f->t[f->n++] = (form_term){node, round, c};
    return 1;
}

/* Is node n a one-weight scale of its input, value for value (compile.c
 * scale_node: a 1x1 convolution of one channel into one)? Its weight in *f. */
static int is_scale(const veil_program *p, const veil_node *n, double *f) {
    const veil_conv_geom *g = &n->conv;
    if (n->kind != VEIL_NODE_LINEAR || n->linear != VEIL_LINEAR_CONV2D || n->n_in != 1 ||
        !n->weight || g->c_in != 1 || g->c_out != 1 || g->kh != 1 || g->kw != 1 ||
        g->stride_h != 1 || g->stride_w != 1 || g->pad_h || g->pad_w ||
        n->size != p->nodes[n->in[0]].size)
        return 0;
    *f = (double)n->weight[0];
    return 1;
}

/* f += c * (node i's noise as an elementwise form); 0 when it does not fit */
static int form_of(const veil_program *p, uint32_t i, double c, noise_form *f, unsigned depth) {
    const veil_node *n = &p->nodes[i];
    double w;
    if (depth > 16) return 0;
    if (n->kind == VEIL_NODE_ADD)
        return form_of(p, n->in[0], c, f, depth + 1) && form_of(p, n->in[1], c, f, depth + 1);
    if (n->kind == VEIL_NODE_ROUND)
        return form_add(f, i, 1, c) && form_of(p, n->in[0], c, f, depth + 1);
    if (n->kind == VEIL_NODE_LINEAR && n->linear == VEIL_LINEAR_FLATTEN)
        return form_of(p, n->in[0], c, f, depth + 1);
    if (is_scale(p, n, &w)) return form_of(p, n->in[0], c * w, f, depth + 1);
    return form_add(f, i, 0, c);
}

/* The exact terms of ADD node i (above), or 0 terms: the bound. rho of the
 * sum in *rho_out when it has terms. */
static void add_terms(veil_program *p, uint32_t i, const uint64_t *src, size_t words,
                      const double *rho, double *rho_out) {
    veil_node *n = &p->nodes[i];
    noise_form f = {0};
    n->n_noise_terms = 0;
    if (!src || !form_of(p, i, 1, &f, 0)) return;
    unsigned nt = 0;
    double r = 1;
    for (unsigned a = 0; a < f.n; a++) {
        if (f.t[a].c == 0) continue;
        const uint32_t x = f.t[a].node;
        for (unsigned b = 0; b < f.n; b++) {
            if (b == a || f.t[b].c == 0) continue;
            const uint32_t y = f.t[b].node;
            /* an atom sharing a source with another atom, or holding a
             * round of the form (its fresh noise): correlated */
            if (!f.t[a].round && !f.t[b].round && sources_meet(src, words, x, y)) return;
            if (!f.t[a].round && f.t[b].round && (src[(size_t)x * words + y / 64] >> (y % 64) & 1))
                return;
        }
        const double c2 = f.t[a].c * f.t[a].c;
        if (nt + (f.t[a].round ? 2u : 1u) > VEIL_NOISE_TERMS_MAX) return;
        n->noise_term_node[nt] = x;
        n->noise_term_w[nt++] = c2;
        if (f.t[a].round) {
            n->noise_term_node[nt] = p->nodes[x].in[0];
            n->noise_term_w[nt++] = -c2;
        } else if (rho[x] > r) {
            r = rho[x];
        }
    }
    if (!nt) return; /* everything cancelled: no noise term is no noise, but keep the bound */
    n->n_noise_terms = nt;
    *rho_out = r;
}

/* The node whose ciphertexts node i's are, value for value: through
 * flattens and weight-1 scales without a bias (copies, no noise added). */
static uint32_t ct_origin(const veil_program *p, uint32_t i) {
    for (;;) {
        const veil_node *n = &p->nodes[i];
        double w;
        if (n->kind == VEIL_NODE_LINEAR && n->linear == VEIL_LINEAR_FLATTEN && n->n_in == 1)
            i = n->in[0];
        else if (is_scale(p, n, &w) && w == 1 && !n->bias)
            i = n->in[0];
        else
            return i;
    }
}

/* Do LUT nodes a and b run the same PBS on the same ciphertexts (ct_origin
 * of their inputs equal), table for table or with every table negated? A
 * PBS is deterministic (the keyswitch, the blind rotation): with the same
 * tables their outputs are the same ciphertexts, the same noise. And a
 * blind rotation is odd in its test polynomial (veil_lut_new: linear in
 * the table; the decomposition of -x is minus x's, veil/gadget.h; the
 * FFT's products and sums are sign-symmetric): with the tables negated the
 * accumulators are each other's negation, and so are the outputs' noises,
 * until some rounding of the two parts them. Measured
 * (tests/test_noise_program.c test_negated_lookups): t1 - t2 at 1.8 times
 * the independent 2 V at nn-p2-norm2e0 (one level of base 2^23: a rounding
 * that differs seldom reaches a digit), no correlation at nn-p3-norm2e6 or
 * nn-p5-norm2e6. Either way one source: the bounds of a shared source
 * hold for any correlation (an ADD never takes exact terms over them). */
static int same_pbs(const veil_program *p, const veil_node *a, const veil_node *b) {
    if (ct_origin(p, a->in[0]) != ct_origin(p, b->in[0]) || a->size != b->size ||
        a->offset != b->offset || a->round_bits != b->round_bits || a->in_bits != b->in_bits ||
        a->shift != b->shift || a->approximate != b->approximate || a->wop != b->wop ||
        a->rotation_results != b->rotation_results || a->width != b->width ||
        a->n_tables != b->n_tables || a->table_inner != b->table_inner)
        return 0;
    const size_t t = (size_t)a->n_tables << a->in_bits;
    int eq = 1, neg = 1;
    for (size_t k = 0; k < t && (eq || neg); k++) {
        eq &= a->tables[k] == b->tables[k];
        neg &= (uint64_t)a->tables[k] == 0 - (uint64_t)b->tables[k];
    }
    return eq || neg;
}

/* How many of a LUT's input values can be one ciphertext: its input a
 * concatenation that holds one operand (ct_origin) m times gives m copies
 * of each of its PBS, whose outputs are then the same ciphertexts where
 * the tables agree (counted as if they did): the outputs' covariance has m
 * times their variance in its top eigenvalue. */
static double pbs_copies(const veil_program *p, const veil_node *n) {
    const veil_node *x = &p->nodes[ct_origin(p, n->in[0])];
    uint32_t m = 1;
    if (x->kind != VEIL_NODE_LINEAR || x->linear != VEIL_LINEAR_CONCAT) return 1;
    for (uint32_t j = 0; j < x->n_in; j++) {
        uint32_t c = 0;
        for (uint32_t k = 0; k < x->n_in; k++)
            c += ct_origin(p, x->in[k]) == ct_origin(p, x->in[j]);
        m = c > m ? c : m;
    }
    return m;
}

/* How many of a LUT's values one blind rotation gives (threshold reads,
 * veil_node.rotation_results), which the outputs' covariance may hold in
 * its top eigenvalue: the results of one rotation are coefficients of one
 * accumulator, never independent. Two copies reading one threshold extract
 * the same coefficient (the same ciphertext), and distinct coefficients
 * share the decomposition's rounding error: its phase is that error times
 * the GLWE key, whose bits have mean 1/2, so coefficients j and j + D have
 * a covariance near half the rounding term's variance (1 - 2 D / N), where
 * the independent model has none. Measured (test_noise_program's audit):
 * A and B of one rotation (thresholds one box apart) correlated 0.41-0.45
 * at nn-p5-norm2e0 (one level, the rounding term most of the noise; mlp_digits
 * exact), 0.08 at nn-p3-norm2e0; A + B, a middle digit's majority sum, 1.04
 * of the independent 2 V there (2048 pairs), under it before only by the
 * PBS model's own margin. So a row of two results takes (sa + sb)^2. */
static double rotation_share(const veil_node *n) {
    return n->rotation_results > 1 ? (double)n->rotation_results : 1;
}

/* Programs past this many nodes take every ADD and concatenation as
 * correlated (a bound all the same) instead of tracking sources. */
#define NOISE_SOURCES_MAX_NODES 16384u

veil_status veil_noise_factors(veil_program *p) {
    const size_t nn = p->n_nodes, words = (nn + 63) / 64;
    const int track = nn <= NOISE_SOURCES_MAX_NODES;
    uint64_t *src = track ? calloc(nn * words + 1, sizeof *src) : NULL;
    double *rho = calloc(nn + 1, sizeof *rho);
    /* LUT nodes by the ct_origin of their inputs: first[o], then next[] */
    uint32_t *first = calloc(nn + 1, sizeof *first), *next = calloc(nn + 1, sizeof *next);
    if ((track && !src) || !rho || !first || !next) {
        free(src);
        free(rho);
        free(first);
        free(next);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    for (size_t i = 0; i < nn; i++)
        first[i] = next[i] = UINT32_MAX;
    for (size_t i = 0; i < nn; i++) {
        veil_node *n = &p->nodes[i];
        uint64_t *si = src ? src + i * words : NULL;
        int shared = !track && n->n_in > 1;
        for (uint32_t j = 0; si && j < n->n_in; j++) {
            for (uint32_t k = 0; k < j && !shared; k++)
                shared = sources_meet(src, words, n->in[j], n->in[k]);
            for (size_t w = 0; w < words; w++)
                si[w] |= src[(size_t)n->in[j] * words + w];
        }
        n->noise_w2 = n->sum_w2;
        n->add_correlated = 0;
        switch (n->kind) {
        case VEIL_NODE_INPUT:
        case VEIL_NODE_LUT: {
            /* fresh noise: its own source (a LUT's input's are not its),
             * but a LUT running an earlier one's PBS again gives its
             * ciphertexts again (same_pbs): that one's source */
            uint32_t own = (uint32_t)i;
            if (n->kind == VEIL_NODE_LUT) {
                const uint32_t o = ct_origin(p, n->in[0]);
                for (uint32_t j = first[o]; j != UINT32_MAX && own == i; j = next[j])
                    if (same_pbs(p, n, &p->nodes[j])) own = j;
                if (own == i) next[i] = first[o], first[o] = (uint32_t)i;
            }
            if (si) {
                memset(si, 0, words * sizeof *si);
                si[own / 64] |= (uint64_t)1 << (own % 64);
            }
            rho[i] = n->kind == VEIL_NODE_LUT ? pbs_copies(p, n) * rotation_share(n) : 1;
            break;
        }
        case VEIL_NODE_ROUND:
            if (si) si[i / 64] |= (uint64_t)1 << (i % 64);
            rho[i] = rho[n->in[0]];
            break;
        case VEIL_NODE_OUTPUT:
            rho[i] = rho[n->in[0]];
            break;
        case VEIL_NODE_ADD:
            n->add_correlated = shared || n->in[0] == n->in[1];
            rho[i] = rho[n->in[0]] > rho[n->in[1]] ? rho[n->in[0]] : rho[n->in[1]];
            if (n->add_correlated) add_terms(p, (uint32_t)i, src, words, rho, &rho[i]);
            break;
        case VEIL_NODE_LINEAR: {
            double rx = 0;
            for (uint32_t j = 0; j < n->n_in; j++) {
                const double r = rho[n->in[j]];
                rx = shared ? rx + r : (r > rx ? r : rx);
            }
            double r1, c1;
            linear_norms(n, &r1, &c1);
            const double m = rx * n->sum_w2 < r1 * r1 ? rx * n->sum_w2 : r1 * r1;
            n->noise_w2 = m > n->sum_w2 ? m : n->sum_w2;
            const double ry = n->noise_w2 > 0 ? r1 * c1 * rx / n->noise_w2 : 1;
            rho[i] = ry > 1 ? ry : 1;
            break;
        }
        }
    }
    free(src);
    free(rho);
    free(first);
    free(next);
    return VEIL_OK;
}

/* A variance by node: the noise pass's (ctx the program) or a unit form's
 * (ctx its array). */
typedef double (*var_of_fn)(const void *ctx, uint32_t node);
static double var_of_node(const void *ctx, uint32_t node) {
    return ((const veil_program *)ctx)->nodes[node].variance;
}
static double var_of_array(const void *ctx, uint32_t node) {
    return ((const double *)ctx)[node];
}

/* The variance of an ADD node's sum from the variances of the nodes before
 * it: independent operands' add; operands that share a noise source
 * (veil_noise_factors: the same node on both sides, or a leveled chain) are
 * the sum of the node's exact terms, or without terms at most 2 (va + vb). */
static double veil_add_variance(const veil_node *n, var_of_fn var, const void *ctx) {
    const double va = var(ctx, n->in[0]), vb = var(ctx, n->in[1]);
    if (!n->add_correlated) return va + vb;
    if (!n->n_noise_terms) return 2 * (va + vb);
    double s = 0;
    for (uint32_t t = 0; t < n->n_noise_terms; t++)
        s += n->noise_term_w[t] * var(ctx, n->noise_term_node[t]);
    return s > 0 ? s : 0;
}

/* What a search's noise passes (cut ones, cost_below) gave node by node:
 * the values of nodes [0, valid) are the pass's for the trial's sets, as long
 * as no PBS node before them has another set (cost_below keeps that true).
 * A pass over sets that differ only from some node on starts there: a node's
 * values depend on its own set and the nodes before it alone, and are written
 * back for the nodes before (another pass may have overwritten them). */
typedef struct pass_cache {
    double *var;          /* per node: variance */
    uint32_t *key_dim;    /* per node: key width */
    double *worst;        /* per node: the smallest read margin of nodes 0 .. it */
    uint32_t *worst_node; /* ... and its node (the pass's *worst_node so far) */
    size_t valid;         /* nodes [0, valid) filled */
} pass_cache;

/* noise_pass_fill with the master key's dimension and the inputs' set
 * (veil_input_set) given: a search trial has them already. fill_pfail (no
 * cut only): every node's read_log2_pfail written; without it, a pass with
 * no cut gives the same return value and *worst_node (the worst margin
 * found the same way, one log2 erfc at the end) and writes no node's
 * read_log2_pfail. With pc (no fill_pfail), nodes [0, start) are taken from
 * it (start <= pc->valid) and the pass's values recorded there. */
static double noise_pass_at(veil_program *p, const veil_params *const *sets, uint32_t master,
                            const veil_params *is, uint32_t *worst_node, const double *cut,
                            int fill_pfail, pass_cache *pc, size_t start) {
    /* inputs under a prefix of the master key: no set of that k*N left (a
     * search move took it), no program */
    if (!is) {
        *worst_node = 0;
        return 0;
    }
    const double fresh = veil_noise_fresh_variance(is);
    const uint32_t in_width = veil_params_big_dim(is);
    part_terms terms;
    part_terms_init(&terms, sets, master);
    double worst_margin = INFINITY;
    *worst_node = 0;
    if (!pc) start = 0;
    for (size_t i = 0; i < start; i++) {
        p->nodes[i].variance = pc->var[i];
        p->nodes[i].key_dim = pc->key_dim[i];
    }
    if (start) {
        worst_margin = pc->worst[start - 1];
        *worst_node = pc->worst_node[start - 1];
    }
    for (size_t i = start; i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        const double vin = n->n_in ? p->nodes[n->in[0]].variance : 0;
        const veil_params *ps = sets[n->partition];
        n->key_dim = node_key_dim(p, n, ps, in_width);
        double margin = INFINITY; /* of the node's worst read */
        switch (n->kind) {
        case VEIL_NODE_INPUT:
            n->variance = fresh;
            break;
        case VEIL_NODE_OUTPUT:
            n->variance = vin;
            break;
        case VEIL_NODE_ADD:
            /* independent operands' variances add; correlated ones by
             * their exact terms or at most twice that (veil_add_variance) */
            n->variance = veil_add_variance(n, var_of_node, p);
            break;
        case VEIL_NODE_LINEAR: {
            double v = vin;
            for (uint32_t j = 1; j < n->n_in; j++)
                v = p->nodes[n->in[j]].variance > v ? p->nodes[n->in[j]].variance : v;
            n->variance = v * n->noise_w2;
            break;
        }
        case VEIL_NODE_ROUND: {
            double ksv, msv, pbs, v = vin;
            term_noise(&terms, n->partition, &ksv, &msv, &pbs);
            /* the first PBS reads x, the later ones x minus the clears
             * (PBS outputs of ps): their keyswitches read their widths */
            const uint32_t r0 = veil_node_read_dim(p, n, ps, 0),
                           r1 = veil_node_read_dim(p, n, ps, 1);
            const double ks0 = r0 == master ? ksv : veil_noise_ks_variance_dim(ps, r0);
            const double ks1 = r1 == master ? ksv : veil_noise_ks_variance_dim(ps, r1);
            unsigned done = 0;
            for (unsigned q = 0; q < veil_round_chunk_count(n); q++) {
                const veil_round_chunk c = veil_round_chunk_get(n, q);
                for (unsigned t = 0; t < c.pbs; t++) {
                    const double m = veil_noise_fail_margin_terms(
                        c.read_bits, veil_read_variance(ps, v, c.shift), done++ ? ks1 : ks0, msv);
                    margin = m < margin ? m : margin;
                    v = veil_round_variance_after_pbs(v, pbs);
                }
            }
            n->variance = v;
            break;
        }
        case VEIL_NODE_LUT: {
            if (n->wop) {
                /* its w bit reads (veil_noise_wop_margin), its input scaled
                 * by 2^shift as a PBS reads it */
                const veil_wop_params *wp = wop_of(n);
                margin = veil_noise_wop_margin(wp, n->in_bits, ldexp(vin, 2 * (int)n->shift),
                                               p->nodes[n->in[0]].key_dim);
                n->variance = veil_noise_wop_output_variance(wp, n->in_bits);
                break;
            }
            double ksv, msv, pbs;
            term_noise(&terms, n->partition, &ksv, &msv, &pbs);
            const uint32_t rw = veil_node_read_dim(p, n, ps, 0);
            if (rw != master) ksv = veil_noise_ks_variance_dim(ps, rw);
            margin = veil_noise_fail_margin_terms(n->in_bits, veil_read_variance(ps, vin, n->shift),
                                                  ksv, msv);
            n->variance = pbs;
            break;
        }
        }
        if (fill_pfail)
            n->read_log2_pfail =
                margin < INFINITY ? veil_noise_log2_p_fail_margin(margin) : -INFINITY;
        else if (cut && margin < cut[0]) {
            *worst_node = (uint32_t)i;
            if (pc) pc->valid = i;
            return 1;
        }
        /* log2 p_fail falls as the margin grows: the worst read is the
         * smallest margin, one log2 erfc for the pass */
        if (margin < worst_margin) {
            worst_margin = margin;
            *worst_node = (uint32_t)i;
        }
        if (pc) {
            pc->var[i] = n->variance;
            pc->key_dim[i] = n->key_dim;
            pc->worst[i] = worst_margin;
            pc->worst_node[i] = *worst_node;
        }
    }
    if (pc) pc->valid = p->n_nodes;
    /* outputs are decoded at their Delta: half a step of margin */
    if (cut) {
        int clear = worst_margin >= cut[1];
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            const double m = output_margin(&p->nodes[p->output_nodes[o]]);
            if (m < cut[0]) {
                *worst_node = p->output_nodes[o];
                return 1;
            }
            clear &= m >= cut[1];
        }
        if (clear) return -INFINITY;
    }
    double worst =
        worst_margin < INFINITY ? veil_noise_log2_p_fail_margin(worst_margin) : -INFINITY;
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        veil_node *n = &p->nodes[p->output_nodes[o]];
        const double m = output_margin(n);
        double f = m < INFINITY ? log2(erfc(m)) : -INFINITY;
        if (!(f > -1e9)) f = -INFINITY;
        if (fill_pfail) n->read_log2_pfail = f;
        if (f > worst) {
            worst = f;
            *worst_node = p->output_nodes[o];
        }
    }
    return worst;
}

static double noise_pass_fill(veil_program *p, const veil_params *const *sets, uint32_t nsets,
                              uint32_t *worst_node, const double *cut) {
    const uint32_t master = veil_params_big_dim(sets[master_index(sets, nsets)]);
    return noise_pass_at(p, sets, master, veil_input_set(sets, nsets, p->input_width), worst_node,
                         cut, !cut, NULL, 0);
}

static double noise_pass(veil_program *p, const veil_params *const *sets, uint32_t nsets,
                         uint32_t *worst_node) {
    return noise_pass_fill(p, sets, nsets, worst_node, NULL);
}

/* Set a's KS-PBS (terms ab + ak * rows, veil_cost_cpu_terms) costs at least
 * b's (bb, bk) at every key width up to D (a cost is
 * linear in the rows its keyswitch reads, veil/cost.h: compared at 0 and
 * D): the searches' moves skip such a candidate. */
static int never_cheaper_terms(double ab, double ak, double bb, double bk, uint32_t D) {
    return veil_cost_cpu_ms_of(ab, ak, 0) >= veil_cost_cpu_ms_of(bb, bk, 0) &&
           veil_cost_cpu_ms_of(ab, ak, D) >= veil_cost_cpu_ms_of(bb, bk, D);
}

/* The searches' candidates' cost terms (veil_cost_cpu_terms), looked up
 * once a search step instead of at every trial: br[j], ks[j] for cand[j];
 * NULL terms (out of memory) look each up as it comes. */
typedef struct cand_terms {
    double *br, *ks;
} cand_terms;

static cand_terms cand_terms_new(const veil_params *const *cand, size_t nc) {
    cand_terms t = {malloc((nc + 1) * sizeof(double)), malloc((nc + 1) * sizeof(double))};
    if (!t.br || !t.ks) {
        free(t.br), free(t.ks);
        t.br = t.ks = NULL;
        return t;
    }
    for (size_t j = 0; j < nc; j++)
        veil_cost_cpu_terms(cand[j], &t.br[j], &t.ks[j]);
    return t;
}

static void cand_terms_free(cand_terms *t) {
    free(t->br), free(t->ks);
}

static void cand_terms_at(const cand_terms *t, const veil_params *const *cand, size_t j, double *br,
                          double *ks) {
    if (t->br)
        *br = t->br[j], *ks = t->ks[j];
    else
        veil_cost_cpu_terms(cand[j], br, ks);
}

/* Set cand[j] is never cheaper than a set of terms (bb, bk) (never_cheaper_terms). */
static int never_cheaper_at(const cand_terms *t, const veil_params *const *cand, size_t j,
                            double bb, double bk, uint32_t D) {
    double ab, ak;
    cand_terms_at(t, cand, j, &ab, &ak);
    return never_cheaper_terms(ab, ak, bb, bk, D);
}

static int is_pbs_node(const veil_node *n);

/* The rows of each partition's KSK with sets[0..n) (node partition; rows
 * holds n): the widest value its PBS read (veil_node_read_dim; key widths
 * filled here), the master key's D for a partition without PBS. */
static void ksk_rows(veil_program *p, const veil_params *const *sets, uint32_t n, uint32_t *rows) {
    const uint32_t D = veil_params_big_dim(sets[master_index(sets, n)]);
    const veil_params *is = veil_input_set(sets, n, p->input_width);
    key_width_pass(p, sets, is ? veil_params_big_dim(is) : D);
    memset(rows, 0, n * sizeof *rows);
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *x = &p->nodes[i];
        if (!is_pbs_node(x) || x->partition >= n) continue;
        const veil_params *ps = sets[x->partition];
        uint32_t r = veil_node_read_dim(p, x, ps, 0);
        if (x->pbs_per_sample > x->size && veil_node_read_dim(p, x, ps, 1) > r)
            r = veil_node_read_dim(p, x, ps, 1);
        if (r > rows[x->partition]) rows[x->partition] = r;
    }
    for (uint32_t k = 0; k < n; k++)
        if (!rows[k] || rows[k] > D) rows[k] = D;
}

/* Bytes of the prepared evaluation keys of sets[0..n) (distinct sets, node
 * partition): what a plan holds in memory, each KSK of its ksk_rows. */
static double key_bytes(veil_program *p, const veil_params *const *sets, uint32_t n) {
    uint32_t *rows = malloc((n + 1) * sizeof *rows);
    const uint32_t D = veil_params_big_dim(sets[master_index(sets, n)]);
    if (rows) ksk_rows(p, sets, n, rows);
    double b = 0;
    for (uint32_t i = 0; i < n; i++) /* no room for the rows: D each, a bound */
        b += (double)veil_eval_key_prepared_bytes(sets[i], rows ? rows[i] : D);
    free(rows);
    return b;
}

static int over_budget(veil_program *p, const veil_params *const *sets, uint32_t n) {
    return p->options.key_budget_mb &&
           key_bytes(p, sets, n) > 1048576.0 * (double)p->options.key_budget_mb;
}

static double params_cost(const veil_params *ps) {
    return veil_cost_cpu_ms(ps, veil_params_big_dim(ps));
}

static int cmp_cost(const void *a, const void *b) {
    double x = params_cost(*(const veil_params *const *)a);
    double y = params_cost(*(const veil_params *const *)b);
    return x < y ? -1 : x > y;
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
            u->a[i] = veil_add_variance(n, var_of_array, u->a);
            u->b[i] = veil_add_variance(n, var_of_array, u->b);
            break;
        case VEIL_NODE_LINEAR: {
            double a = ia, b = ib;
            for (uint32_t j = 1; j < n->n_in; j++) {
                a = u->a[n->in[j]] > a ? u->a[n->in[j]] : a;
                b = u->b[n->in[j]] > b ? u->b[n->in[j]] : b;
            }
            u->a[i] = a * n->noise_w2;
            u->b[i] = b * n->noise_w2;
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
            u->prec[i] = veil_pbs_prec(n);
            break;
        }
        case VEIL_NODE_LUT:
            u->ra[i] = ldexp(ia, 2 * (int)n->shift);
            u->rb[i] = ldexp(ib, 2 * (int)n->shift);
            u->prec[i] = veil_pbs_prec(n);
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

/* Candidate c's PBS output variance: from vout when there is one. */
static inline double cand_vout(const double *vout, const veil_params *const *cand, size_t c) {
    return vout ? vout[c] : veil_noise_pbs_output_variance(cand[c]);
}

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
    const double target = pbs_target(p);
    double best_cost = INFINITY;
    /* each candidate's PBS output variance, and its cost at the D of the
     * loop, looked up once instead of in the loops over (V, group,
     * candidate): the same values (without room, computed where used) */
    double *vout = malloc((nc + 1) * sizeof *vout), *cd = malloc((nc + 1) * sizeof *cd);
    for (size_t c = 0; vout && c < nc; c++)
        vout[c] = veil_noise_pbs_output_variance(cand[c]);
    for (size_t di = 0; di < nc; di++) {
        const uint32_t D = veil_params_big_dim(cand[di]);
        int seen = 0; /* each D once */
        for (size_t j = 0; j < di; j++)
            seen |= veil_params_big_dim(cand[j]) == D;
        if (seen) continue;
        for (size_t c = 0; cd && c < nc; c++)
            cd[c] = veil_cost_cpu_ms(cand[c], D);
        double vfresh = 0;
        for (size_t j = 0; j < nc; j++)
            if (veil_params_big_dim(cand[j]) == D && veil_noise_fresh_variance(cand[j]) > vfresh)
                vfresh = veil_noise_fresh_variance(cand[j]);
        for (size_t vi = 0; vi < nc; vi++) {
            const double V = cand_vout(vout, cand, vi);
            if (veil_params_big_dim(cand[vi]) > D) continue;
            int dup = 0;
            for (size_t j = 0; j < vi; j++)
                dup |= veil_params_big_dim(cand[j]) <= D && cand_vout(vout, cand, j) == V;
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
                    if (veil_params_big_dim(ps) > D || cand_vout(vout, cand, c) > V ||
                        !veil_set_reads(ps, groups[g].prec, p->options.max_poly_size))
                        continue;
                    const double cc = cd ? cd[c] : veil_cost_cpu_ms(ps, D);
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
    free(vout);
    free(cd);
    return best_cost;
}

/* A PBS node of the search: a lookup or rounding of a classic set (a
 * WoP-PBS's set is fixed, wop_of). */
static int is_pbs_node(const veil_node *n) {
    return (n->kind == VEIL_NODE_LUT && !n->wop) || n->kind == VEIL_NODE_ROUND;
}

/* What the searches over one program read at every trial (millions on
 * target_bc): its PBS nodes in node order, with their widest reads. The
 * nodes' kinds, chunks and PBS counts do not change during a search (their
 * partitions do). */
/* The last trial of a search (cost_below), for the next: the searches try
 * sets that differ from the last trial's in one or two partitions, or one
 * node, so a trial's nodes up to the first PBS node whose set differs give
 * what they gave (the sum of costs in node order up to there, the noise
 * pass's values): taken from here, the same numbers, not computed again.
 * Valid for the context (master key, inputs' set, whether every set has
 * the inputs' k*N) it was made in. */
typedef struct trial_cache {
    uint32_t master;
    const veil_params *is;
    int uniform;
    const veil_params **set; /* per PBS position: its set in the last trial */
    double *cost;            /* per PBS position: the cost sum up to it */
    size_t valid;            /* positions [0, valid) filled (set, cost, search.kn) */
    /* per PBS position: its cost term (node_cost_rows) the last time it was
     * computed, and the set and read width it was computed for (a pure
     * function of the two, whatever else the trial had) */
    const veil_params **term_set;
    uint32_t *term_w0;
    uint32_t *term_own; /* ... and that set's k*N */
    double *term;
    pass_cache pc; /* nodes before node[valid] at most */
} trial_cache;

typedef struct search {
    veil_program *p;
    size_t n;       /* PBS nodes */
    uint32_t *node; /* their indices, ascending */
    unsigned *prec; /* veil_pbs_prec of each */
    /* What sets the key width PBS node node[k] reads (veil_node_read_dim,
     * its first PBS): src[src_off[k] .. src_off[k+1]), inputs
     * (the program's input width) and lookups and roundings (their set's
     * k*N) whose values reach its input through leveled nodes and roundings
     * only; the width is the widest of theirs (node_key_dim's rule, followed
     * back). A search trial prices its keyswitches from them without a pass
     * over every node. */
    uint32_t *src_off, *src; /* the PBS nodes by position k' < n; SRC_INPUT an input */
    uint32_t *kn;            /* scratch, n: the k*N of node[k']'s set in a trial */
    /* the narrowest and widest WoP-PBS output width among the sources
     * (SRC_FIXED; none: UINT32_MAX and 0) */
    uint32_t fixed_lo, fixed_hi;
    double cut[2];   /* noise_pass_fill's margins for p_error (search_cuts) */
    trial_cache *tc; /* what the last trials left (cost_below) */
} search;

static void trial_cache_free(trial_cache *t) {
    if (!t) return;
    free(t->set);
    free(t->cost);
    free(t->term_set);
    free(t->term_w0);
    free(t->term_own);
    free(t->term);
    free(t->pc.var);
    free(t->pc.key_dim);
    free(t->pc.worst);
    free(t->pc.worst_node);
    free(t);
}

/* A search's trial cache, empty; NULL when out of memory. */
static trial_cache *trial_cache_new(size_t n_pbs, size_t n_nodes) {
    trial_cache *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->set = calloc(n_pbs + 1, sizeof *t->set);
    t->cost = calloc(n_pbs + 1, sizeof *t->cost);
    t->term_set = calloc(n_pbs + 1, sizeof *t->term_set);
    t->term_w0 = calloc(n_pbs + 1, sizeof *t->term_w0);
    t->term_own = calloc(n_pbs + 1, sizeof *t->term_own);
    t->term = calloc(n_pbs + 1, sizeof *t->term);
    t->pc.var = calloc(n_nodes + 1, sizeof *t->pc.var);
    t->pc.key_dim = calloc(n_nodes + 1, sizeof *t->pc.key_dim);
    t->pc.worst = calloc(n_nodes + 1, sizeof *t->pc.worst);
    t->pc.worst_node = calloc(n_nodes + 1, sizeof *t->pc.worst_node);
    if (!t->set || !t->cost || !t->term_set || !t->term_w0 || !t->term_own || !t->term ||
        !t->pc.var || !t->pc.key_dim || !t->pc.worst || !t->pc.worst_node) {
        trial_cache_free(t);
        return NULL;
    }
    return t;
}

static void search_free(search *s) {
    trial_cache_free(s->tc);
    s->tc = NULL;
    free(s->node);
    free(s->prec);
    free(s->src_off);
    free(s->src);
    free(s->kn);
}

#define SRC_INPUT UINT32_MAX
/* a WoP-PBS's output: SRC_FIXED | its set's k*N (at most 2^17) */
#define SRC_FIXED 0x80000000u

/* Sorted union of sorted lists a (na) and b (nb), each without repeats, into
 * out; returns its length. */
static uint32_t union_sorted(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb,
                             uint32_t *out) {
    uint32_t i = 0, j = 0, o = 0;
    while (i < na || j < nb) {
        const uint32_t v = j >= nb || (i < na && a[i] <= b[j]) ? a[i++] : b[j++];
        if (!o || out[o - 1] != v) out[o++] = v;
    }
    return o;
}

/* search.src_off and src: every node's width sources in node order (an
 * input or a lookup: itself; a rounding: its inputs' and itself; anything
 * else: its inputs'), then each PBS node's input's, as one array. */
static veil_status search_sources(search *s) {
    const veil_program *p = s->p;
    const size_t nn = p->n_nodes;
    uint32_t **ls = calloc(nn + 1, sizeof *ls), *cnt = calloc(nn + 1, sizeof *cnt);
    uint32_t *a = malloc((nn + 1) * sizeof *a), *b = malloc((nn + 1) * sizeof *b);
    int ok = ls && cnt && a && b;
    for (size_t i = 0; ok && i < nn; i++) {
        const veil_node *n = &p->nodes[i];
        const uint32_t self = (uint32_t)i;
        uint32_t m = 0, *t;
        if (n->kind == VEIL_NODE_INPUT || n->kind == VEIL_NODE_LUT) {
            a[m++] = self;
        } else {
            for (uint32_t j = 0; j < n->n_in; j++) {
                m = union_sorted(a, m, ls[n->in[j]], cnt[n->in[j]], b);
                t = a, a = b, b = t;
            }
            if (n->kind == VEIL_NODE_ROUND) {
                m = union_sorted(a, m, &self, 1, b);
                t = a, a = b, b = t;
            }
        }
        ls[i] = malloc((m + 1) * sizeof **ls);
        ok = ls[i] != NULL;
        if (ok) memcpy(ls[i], a, m * sizeof *a);
        cnt[i] = m;
    }
    size_t total = 0;
    for (size_t k = 0; ok && k < s->n; k++)
        total += cnt[p->nodes[s->node[k]].in[0]];
    s->src_off = ok ? malloc((s->n + 1) * sizeof *s->src_off) : NULL;
    s->src = ok ? malloc((total + 1) * sizeof *s->src) : NULL;
    s->kn = ok ? malloc((s->n + 1) * sizeof *s->kn) : NULL;
    ok = s->src_off && s->src && s->kn;
    /* a node's PBS position (a source that is not an input is a PBS node) */
    for (size_t k = 0; ok && k < s->n; k++)
        a[s->node[k]] = (uint32_t)k;
    s->fixed_lo = UINT32_MAX, s->fixed_hi = 0;
    for (size_t k = 0, o = 0; ok && k < s->n; k++) {
        const uint32_t x = p->nodes[s->node[k]].in[0];
        s->src_off[k] = (uint32_t)o;
        for (uint32_t j = 0; j < cnt[x]; j++) {
            const uint32_t c = ls[x][j];
            const veil_wop_params *wp = wop_of(&p->nodes[c]);
            s->src[o++] = p->nodes[c].kind == VEIL_NODE_INPUT ? SRC_INPUT
                          : wp ? SRC_FIXED | veil_params_big_dim(&wp->pbs)
                               : a[c];
            if (wp) {
                const uint32_t w = veil_params_big_dim(&wp->pbs);
                s->fixed_lo = w < s->fixed_lo ? w : s->fixed_lo;
                s->fixed_hi = w > s->fixed_hi ? w : s->fixed_hi;
            }
        }
        s->src_off[k + 1] = (uint32_t)o;
    }
    for (size_t i = 0; ls && i < nn; i++)
        free(ls[i]);
    free(ls);
    free(cnt);
    free(a);
    free(b);
    return ok ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
}

/* The margins m at which a read's log2 p_fail (veil_noise_log2_p_fail_margin,
 * falling as m grows) is target + 1 (cut[0]) and target - 1 (cut[1]), by
 * bisection: under cut[0] a read fails the target, over cut[1] it holds, with
 * a whole unit of log2 p_fail to spare for the function's rounding. */
static void search_cuts(double target, double *cut) {
    for (int c = 0; c < 2; c++) {
        const double want = c ? target - 1 : target + 1;
        double lo = 0, hi = 64; /* log2 p_fail 0 at 0, far below any target at 64 */
        for (int it = 0; it < 200; it++) {
            const double mid = 0.5 * (lo + hi);
            if (mid <= lo || mid >= hi) break;
            if (veil_noise_log2_p_fail_margin(mid) > want)
                lo = mid;
            else
                hi = mid;
        }
        cut[c] = c ? hi : lo;
    }
}

static veil_status search_new(veil_program *p, search *s) {
    s->p = p;
    search_cuts(pbs_target(p), s->cut);
    s->n = 0;
    s->src_off = s->src = s->kn = NULL;
    s->fixed_lo = UINT32_MAX, s->fixed_hi = 0;
    s->tc = NULL;
    s->node = calloc(p->n_nodes + 1, sizeof *s->node);
    s->prec = calloc(p->n_nodes + 1, sizeof *s->prec);
    if (!s->node || !s->prec) {
        search_free(s);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    for (size_t i = 0; i < p->n_nodes; i++)
        if (is_pbs_node(&p->nodes[i])) {
            s->node[s->n] = (uint32_t)i;
            s->prec[s->n++] = veil_pbs_prec(&p->nodes[i]);
        }
    veil_status st = search_sources(s);
    if (st == VEIL_OK && !(s->tc = trial_cache_new(s->n, p->n_nodes)))
        st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    if (st != VEIL_OK) search_free(s);
    return st;
}

/* The key width the first PBS of PBS node s->node[k] reads, inputs
 * in_width wide, from its sources (search.src), s->kn[k'] holding the k*N
 * of node[k']'s set for every k' < k (its sources come before it): what
 * veil_node_read_dim gives once the noise pass has filled the widths. */
static uint32_t source_width(const search *s, size_t k, uint32_t in_width) {
    uint32_t w0 = 0;
    for (uint32_t o = s->src_off[k]; o < s->src_off[k + 1]; o++) {
        const uint32_t c = s->src[o], w = c == SRC_INPUT  ? in_width
                                          : c & SRC_FIXED ? c & ~SRC_FIXED
                                                          : s->kn[c];
        if (w > w0) w0 = w;
    }
    return w0;
}

/* The narrowest key width any value of p can have with sets[0..n): its
 * inputs' or the narrowest set's k*N (veil_node.key_dim). */
static uint32_t min_width(const veil_program *p, const veil_params *const *sets, uint32_t n) {
    uint32_t w = p->input_width ? p->input_width : UINT32_MAX;
    for (uint32_t k = 0; k < n; k++)
        if (veil_params_big_dim(sets[k]) < w) w = veil_params_big_dim(sets[k]);
    return w;
}

/* The reuse guard (veil_search_check_reuse): on, counts of the trials
 * checked and of those whose reuse differed from the fresh computation. */
static atomic_int reuse_check;
static atomic_ulong reuse_trials, reuse_mismatches;

void veil_search_check_reuse(int on) {
    atomic_store(&reuse_check, on != 0);
    atomic_store(&reuse_trials, 0);
    atomic_store(&reuse_mismatches, 0);
}

void veil_search_reuse_counts(unsigned long *trials, unsigned long *mismatches) {
    *trials = atomic_load(&reuse_trials);
    *mismatches = atomic_load(&reuse_mismatches);
}

/* One trial of cost_below computed again from scratch: a noise pass from
 * node 0 (no pass_cache) and the cost sum from position 0 with every term
 * looked up again, compared bit for bit with what the trial found with the
 * last trial's prefix (worst, wn, every node's variance and key width, the
 * cost, every keyswitch priced at its sources' widths: a trial that took the
 * `uniform` shortcut, every read at the inputs' k*N, must price the same).
 * The prefix holds only while a node's values depend
 * on the nodes before it and on its own set alone when it is a PBS node: a node of another kind
 * whose values read its partition's set would change with a set the prefix test does not look at.
 */
static void check_reuse(const search *s, const veil_params *const *sets, uint32_t nparts,
                        uint32_t master, const veil_params *is, uint32_t in_width, double cost,
                        double worst, uint32_t wn) {
    veil_program *p = s->p;
    const size_t nn = p->n_nodes;
    double *var = malloc((nn + 1) * sizeof *var);
    uint32_t *kd = malloc((nn + 1) * sizeof *kd);
    int same = var && kd;
    for (size_t i = 0; same && i < nn; i++) {
        var[i] = p->nodes[i].variance;
        kd[i] = p->nodes[i].key_dim;
    }
    if (same) {
        uint32_t wn2;
        const double worst2 = noise_pass_at(p, sets, master, is, &wn2, s->cut, 0, NULL, 0);
        same = memcmp(&worst, &worst2, sizeof worst) == 0 && wn == wn2;
        for (size_t i = 0; i < nn; i++)
            same &= memcmp(&var[i], &p->nodes[i].variance, sizeof *var) == 0 &&
                    kd[i] == p->nodes[i].key_dim;
        double c = 0;
        for (size_t k = 0; k < s->n; k++) {
            const veil_node *n = &p->nodes[s->node[k]];
            const uint32_t part = n->partition;
            if (part >= nparts) {
                same = 0;
                break;
            }
            const uint32_t own = veil_params_big_dim(sets[part]);
            s->kn[k] = own;
            const uint32_t w0 = source_width(s, k, in_width);
            double b, r;
            veil_cost_cpu_terms(sets[part], &b, &r);
            c += node_cost_rows(n, b, r, w0, read_dim(n, w0, own, 1));
        }
        same &= memcmp(&c, &cost, sizeof c) == 0;
    }
    free(var);
    free(kd);
    atomic_fetch_add(&reuse_trials, 1);
    if (!same) atomic_fetch_add(&reuse_mismatches, 1);
}

/* Modelled cost per sample of the program with sets[i] for partition i, or
 * +INFINITY when it is not below `bound` (cost_below: then without the
 * noise pass) or breaks p_error, a set's precision, max_poly_size or the
 * master-key rule (no set's k*N above sets[0]'s). Every keyswitch is priced
 * at the rows it reads (node_cost_rows, the widths from search.src). Runs
 * the noise pass with the search's cuts (its verdict is the exact pass's;
 * node variances are left for these sets, up to where it stopped). The sum
 * runs in node order and stops once it reaches the bound: its terms are
 * positive, so it could only end there or above. */
static double cost_below(const search *s, const veil_params *const *sets, uint32_t nparts,
                         int master0, double bound) {
    veil_program *p = s->p;
    const uint32_t mi = master_index(sets, nparts), master = veil_params_big_dim(sets[mi]);
    if (master0 && mi != 0) return INFINITY;
    const veil_params *is = input_set_at(sets, nparts, p->input_width ? p->input_width : master);
    if (!is) return INFINITY;
    const uint32_t in_width = veil_params_big_dim(is);
    /* each partition's cost terms looked up once a trial (a lookup per node
     * costs the search a tenth; partitions past PART_TERMS_CACHED at every
     * node, with the same call) */
    double br[PART_TERMS_CACHED], ks[PART_TERMS_CACHED];
    unsigned char done[PART_TERMS_CACHED] = {0};
    /* every set of the inputs' k*N, and every WoP-PBS output a read comes
     * from too: every read is that wide (the exact programs' trials, most of
     * them); a WoP-PBS of another k*N sets its readers' widths (source_width) */
    int uniform = !s->fixed_hi || (s->fixed_lo == in_width && s->fixed_hi == in_width);
    for (uint32_t k = 0; uniform && k < nparts; k++)
        uniform = veil_params_big_dim(sets[k]) == in_width;
    /* the last trial's positions before the first whose set differs
     * (trial_cache): their costs summed as then; the sum only grows (its
     * terms are positive), so a prefix at or over the bound ends the trial
     * as the loop would have at one of them */
    trial_cache *tc = s->tc;
    if (tc->master != master || tc->is != is || tc->uniform != uniform) {
        tc->master = master, tc->is = is, tc->uniform = uniform;
        tc->valid = tc->pc.valid = 0;
    }
    size_t f = 0;
    while (f < tc->valid) {
        const uint32_t part = p->nodes[s->node[f]].partition;
        if (part >= nparts || sets[part] != tc->set[f]) break;
        f++;
    }
    tc->valid = f;
    const size_t fnode = f < s->n ? s->node[f] : p->n_nodes;
    if (tc->pc.valid > fnode) tc->pc.valid = fnode;
    double cost = f ? tc->cost[f - 1] : 0;
    if (f && !(cost < bound)) return INFINITY;
    for (size_t k = f; k < s->n; k++) {
        const veil_node *n = &p->nodes[s->node[k]];
        const uint32_t part = n->partition;
        if (part >= nparts) return INFINITY;
        const veil_params *ps = sets[part];
        /* the keyswitch widths of a uniform trial are the inputs' (its
         * kn[] is not read: a trial of the other kind starts over) */
        if (!uniform) s->kn[k] = tc->term_set[k] == ps ? tc->term_own[k] : veil_params_big_dim(ps);
        const uint32_t w0 = uniform ? in_width : source_width(s, k, in_width);
        /* a term kept for this set was computed once it read the node's
         * precision (the same prec and max_poly_size through a search) */
        if (tc->term_set[k] != ps || tc->term_w0[k] != w0) {
            if (!veil_set_reads(ps, s->prec[k], p->options.max_poly_size)) return INFINITY;
            const uint32_t own = veil_params_big_dim(ps);
            if (part < PART_TERMS_CACHED && !done[part]) {
                veil_cost_cpu_terms(sets[part], &br[part], &ks[part]);
                done[part] = 1;
            }
            double b, r;
            if (part < PART_TERMS_CACHED)
                b = br[part], r = ks[part];
            else
                veil_cost_cpu_terms(sets[part], &b, &r);
            tc->term[k] = node_cost_rows(n, b, r, w0, read_dim(n, w0, own, 1));
            tc->term_set[k] = sets[part];
            tc->term_w0[k] = w0;
            tc->term_own[k] = own;
        }
        cost += tc->term[k];
        tc->set[k] = sets[part];
        tc->cost[k] = cost;
        tc->valid = k + 1;
        if (!(cost < bound)) return INFINITY; /* no noise pass for what cannot win */
    }
    uint32_t wn;
    const double worst = noise_pass_at(p, sets, master, is, &wn, s->cut, 0, &tc->pc, tc->pc.valid);
    if (atomic_load_explicit(&reuse_check, memory_order_relaxed))
        check_reuse(s, sets, nparts, master, is, in_width, cost, worst, wn);
    if (worst > pbs_target(p)) return INFINITY;
    return cost;
}

static double assignment_cost(const search *s, const veil_params *const *sets, uint32_t nparts,
                              int master0) {
    return cost_below(s, sets, nparts, master0, INFINITY);
}

/* The worst read's node of p with sets[0..n): noise_pass's *worst_node,
 * the same node, without writing any node's read_log2_pfail (no log2 erfc
 * per node: split_nodes asks it of every trial the noise refuses). */
static uint32_t worst_node_of(const search *s, const veil_params *const *sets, uint32_t n) {
    veil_program *p = s->p;
    const uint32_t master = veil_params_big_dim(sets[master_index(sets, n)]);
    uint32_t wn;
    noise_pass_at(p, sets, master, veil_input_set(sets, n, p->input_width), &wn, NULL, 0, NULL, 0);
    if (atomic_load_explicit(&reuse_check, memory_order_relaxed)) {
        uint32_t wn2; /* the filled pass from node 0 */
        noise_pass(p, sets, n, &wn2);
        atomic_fetch_add(&reuse_trials, 1);
        if (wn2 != wn) atomic_fetch_add(&reuse_mismatches, 1);
    }
    return wn;
}

double veil_program_assignment_cost(veil_program *p, const veil_params *const *sets) {
    if (!p || !sets || !p->n_partitions) return INFINITY;
    for (uint32_t i = 0; i < p->n_partitions; i++)
        if (!sets[i]) return INFINITY;
    const veil_params **cur = calloc(p->n_partitions, sizeof *cur);
    if (!cur) return INFINITY;
    for (uint32_t i = 0; i < p->n_partitions; i++)
        cur[i] = p->partitions[i].params;
    search s;
    double c = INFINITY;
    if (search_new(p, &s) == VEIL_OK) {
        c = assignment_cost(&s, sets, p->n_partitions, 1);
        search_free(&s);
    }
    uint32_t wn;
    /* and within the budget per sample, with one: every read's p_fail */
    if (c < INFINITY && p->options.global_p_error > 0) {
        noise_pass(p, sets, p->n_partitions, &wn);
        if (!(veil_program_p_fail_shares(p, NULL, 0, NULL) <= p->options.global_p_error))
            c = INFINITY;
    }
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
    const double target = pbs_target(p);
    size_t count = veil_params_count();
    const veil_params **cand = calloc(count + 1, sizeof *cand);
    if (!cand) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    size_t nc = 0;
    unsigned need = p->max_lut_bits ? p->max_lut_bits : 1;
    if (params_id) {
        const veil_params *ps = veil_params_find_any(params_id);
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
            if (!too_big || key_bytes(p, &cand[i], 1) < key_bytes(p, &too_big, 1))
                too_big = cand[i];
            continue;
        }
        if (w <= target && ((uint64_t)1 << need) <= cand[i]->poly_size) {
            veil_status st = set_partitions(p, &cand[i], 1);
            double pbs = 0;
            for (size_t j = 0; j < p->n_nodes; j++)
                if (is_pbs_node(&p->nodes[j])) pbs += (double)p->nodes[j].pbs_per_sample;
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
                          key_bytes(p, &too_big, 1) / 1048576.0);
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

/* The widest read of each partition's PBS (prec[k], k < n; 0 for an empty
 * one): a set that cannot read it makes any program with it infeasible
 * (cost_below), so the searches skip it without a pass. Returns prec, or
 * NULL when out of memory (then nothing is skipped). */
static unsigned *part_precs(const search *s, uint32_t n) {
    unsigned *prec = calloc(n + 1, sizeof *prec);
    for (size_t k = 0; prec && k < s->n; k++) {
        const uint32_t part = s->p->nodes[s->node[k]].partition;
        if (part < n && s->prec[k] > prec[part]) prec[part] = s->prec[k];
    }
    return prec;
}

static int reads(const veil_program *p, const veil_params *ps, const unsigned *prec, uint32_t k) {
    return !prec || veil_set_reads(ps, prec[k], p->options.max_poly_size);
}

/* Lowers sets[k] (node partition k) to cheaper candidates one at a time
 * while the exact noise pass keeps the program feasible; returns the cost.
 * A trial that cannot beat c is refused before its noise pass (cost_below). */
static double descend(const search *s, const veil_params **sets, uint32_t n,
                      const veil_params *const *cand, size_t nc, double c) {
    const veil_program *p = s->p;
    unsigned *prec = part_precs(s, n);
    cand_terms ct = cand_terms_new(cand, nc);
    for (int changed = 1, rounds = 0; c < INFINITY && changed && rounds < 16; rounds++) {
        changed = 0;
        for (uint32_t k = 0; k < n; k++) {
            const veil_params *old = sets[k];
            double ob, ok;
            veil_cost_cpu_terms(old, &ob, &ok);
            for (size_t j = 0; j < nc; j++) {
                const uint32_t D = veil_params_big_dim(sets[master_index(sets, n)]);
                if (cand[j] == old || never_cheaper_at(&ct, cand, j, ob, ok, D) ||
                    !reads(p, cand[j], prec, k))
                    continue;
                sets[k] = cand[j];
                const double c2 = cost_below(s, sets, n, 0, c);
                if (c2 < c) {
                    c = c2;
                    old = cand[j];
                    veil_cost_cpu_terms(old, &ob, &ok);
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
                    if (!reads(p, cand[j], prec, k) || !reads(p, cand[j], prec, q)) continue;
                    const veil_params *ok = sets[k], *oq = sets[q];
                    sets[k] = sets[q] = cand[j];
                    const double c2 = cost_below(s, sets, n, 0, c);
                    if (c2 < c) {
                        c = c2;
                        changed = 1;
                    } else {
                        sets[k] = ok;
                        sets[q] = oq;
                    }
                }
    }
    cand_terms_free(&ct);
    free(prec);
    return c;
}

/* Puts node i in the partition of set s (a new one, sets[*n], when no
 * partition has s); returns its old partition. */
static uint32_t move_node(veil_program *p, const veil_params **sets, uint32_t *n, size_t i,
                          const veil_params *s) {
    const uint32_t old = p->nodes[i].partition;
    uint32_t to = 0;
    while (to < *n && sets[to] != s)
        to++;
    if (to == *n) sets[(*n)++] = s;
    p->nodes[i].partition = to;
    return old;
}

/* Drops the partitions no PBS node is in (node partitions renumbered);
 * returns how many are left. */
static uint32_t drop_empty(veil_program *p, const veil_params **sets, uint32_t n) {
    uint32_t *map = calloc(n + 1, sizeof *map), m = 0;
    if (!map) return n; /* kept: costs at most a wider master key */
    for (size_t i = 0; i < p->n_nodes; i++)
        if (is_pbs_node(&p->nodes[i])) map[p->nodes[i].partition] = 1;
    for (uint32_t k = 0; k < n; k++)
        if (map[k]) {
            sets[m] = sets[k];
            map[k] = m++;
        }
    for (size_t i = 0; i < p->n_nodes; i++)
        if (is_pbs_node(&p->nodes[i])) p->nodes[i].partition = map[p->nodes[i].partition];
    free(map);
    return m;
}

/* Moves single PBS nodes out of their partition onto a cheaper candidate
 * set (a new partition, or the one that has that set) while the exact noise
 * pass keeps the program feasible: what the bound model's groups cannot
 * express when nodes of one group read different producers. A move that
 * breaks one read may be repaired by moving the node of that read (the
 * exact pass's worst) onto another set too: mlp_digits 6-bit, a cheaper set
 * for the first layer's lookups (noisier outputs) with another for the
 * second layer's rounding that reads them. Each round applies the move (or
 * pair) that lowers the cost most, ties to the first node and candidate
 * (deterministic); sets[] must hold a partition per PBS node plus two.
 * Returns the cost; *n is the new partition count. */
static double split_nodes(const search *s, const veil_params **sets, uint32_t *n,
                          const veil_params *const *cand, size_t nc, double c) {
    veil_program *p = s->p;
    cand_terms ct = cand_terms_new(cand, nc);
    for (int rounds = 0; c < INFINITY && rounds < 16; rounds++) {
        size_t bi = 0, bj = 0, bw = 0, br = 0;
        int found = 0, pair = 0;
        double bc = c;
        /* the trials move one node at a time and put it back: sets[0..*n)
         * and so the master key stay as they are through the round */
        const uint32_t D = veil_params_big_dim(sets[master_index(sets, *n)]);
        for (size_t x = 0; x < s->n; x++) {
            const size_t i = s->node[x];
            const veil_params *cur = sets[p->nodes[i].partition];
            const unsigned prec = s->prec[x];
            double cb, ck;
            veil_cost_cpu_terms(cur, &cb, &ck);
            for (size_t j = 0; j < nc; j++) {
                /* a set that cannot read node i: infeasible with any repair */
                if (cand[j] == cur || never_cheaper_at(&ct, cand, j, cb, ck, D) ||
                    !veil_set_reads(cand[j], prec, p->options.max_poly_size))
                    continue;
                uint32_t ni = *n;
                const uint32_t old = move_node(p, sets, &ni, i, cand[j]);
                const double c2 = cost_below(s, sets, ni, 0, INFINITY);
                if (c2 < bc) {
                    bc = c2;
                    bi = i;
                    bj = j;
                    found = 1;
                    pair = 0;
                } else if (c2 == INFINITY) {
                    const uint32_t wn = worst_node_of(s, sets, ni);
                    const unsigned wprec = veil_pbs_prec(&p->nodes[wn]);
                    /* a repair's cost is at least every PBS at the narrowest
                     * width a value can have (min_width, with cand[r]'s
                     * k*N: a repair can narrow the values after wn, and the
                     * keyswitches that read them), a + b w with the other
                     * nodes' terms; the repairs that cannot beat bc (with a
                     * margin far above the sums' rounding) are not tried */
                    double a = 0, b = 0;
                    /* each partition's terms looked up once (the same
                     * values; partitions past the array at every node) */
                    double pb[PART_TERMS_CACHED], pk[PART_TERMS_CACHED];
                    unsigned char pdone[PART_TERMS_CACHED] = {0};
                    for (size_t y = 0; y < s->n; y++) {
                        const veil_node *ny = &p->nodes[s->node[y]];
                        if (s->node[y] == wn) continue;
                        const uint32_t q = ny->partition;
                        double by, ky;
                        if (q < PART_TERMS_CACHED && pdone[q]) {
                            by = pb[q], ky = pk[q];
                        } else {
                            veil_cost_cpu_terms(sets[q], &by, &ky);
                            if (q < PART_TERMS_CACHED) pb[q] = by, pk[q] = ky, pdone[q] = 1;
                        }
                        a += (double)ny->pbs_per_sample * by;
                        b += (double)ny->pbs_per_sample * ky;
                    }
                    const uint32_t w0 = min_width(p, sets, ni);
                    const double wpbs = (double)p->nodes[wn].pbs_per_sample;
                    for (size_t r = 0; wn != i && is_pbs_node(&p->nodes[wn]) && r < nc; r++) {
                        if (cand[r] == sets[p->nodes[wn].partition] ||
                            !veil_set_reads(cand[r], wprec, p->options.max_poly_size))
                            continue;
                        const uint32_t wr =
                            veil_params_big_dim(cand[r]) < w0 ? veil_params_big_dim(cand[r]) : w0;
                        double bcr, kcr;
                        cand_terms_at(&ct, cand, r, &bcr, &kcr);
                        if (a + b * wr + wpbs * (bcr + kcr * wr) > bc * (1 + 1e-9)) continue;
                        uint32_t nr = ni;
                        const uint32_t wold = move_node(p, sets, &nr, wn, cand[r]);
                        const double c3 = cost_below(s, sets, nr, 0, bc);
                        p->nodes[wn].partition = wold;
                        if (c3 < bc) {
                            bc = c3;
                            bi = i;
                            bj = j;
                            bw = wn;
                            br = r;
                            found = pair = 1;
                        }
                    }
                }
                p->nodes[i].partition = old;
            }
        }
        if (!found) break;
        /* applied, and the partitions it emptied dropped; dropping one can
         * change the master key (its fresh noise), so the move is kept only
         * if the exact pass still holds it */
        const uint32_t n0 = *n;
        const veil_params **s0 = malloc((n0 + 1) * sizeof *s0);
        uint32_t *part0 = malloc((p->n_nodes + 1) * sizeof *part0);
        if (!s0 || !part0) { /* no room to undo: keep the program as it is */
            free(s0);
            free(part0);
            break;
        }
        memcpy(s0, sets, n0 * sizeof *sets);
        for (size_t i = 0; i < p->n_nodes; i++)
            part0[i] = p->nodes[i].partition;
        move_node(p, sets, n, bi, cand[bj]);
        if (pair) move_node(p, sets, n, bw, cand[br]);
        *n = drop_empty(p, sets, *n);
        const double c2 = assignment_cost(s, sets, *n, 0);
        const int keep = c2 < c;
        if (keep)
            c = c2;
        else {
            memcpy(sets, s0, n0 * sizeof *sets);
            *n = n0;
            for (size_t i = 0; i < p->n_nodes; i++)
                p->nodes[i].partition = part0[i];
        }
        free(s0);
        free(part0);
        if (!keep) break;
    }
    cand_terms_free(&ct);
    return c;
}

/* Puts two partitions on one set, the pair and set that cost least (every
 * other partition keeps its set); returns the cost (+INFINITY: no merge
 * fits). The caller merges the two (merge_sets). */
static double merge_cheapest_pair(const search *s, const veil_params **sets, uint32_t n,
                                  const veil_params *const *cand, size_t nc) {
    const veil_program *p = s->p;
    double best = INFINITY;
    uint32_t bk = 0, bq = 0;
    const veil_params *bs = NULL;
    unsigned *prec = part_precs(s, n);
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t q = k + 1; q < n; q++)
            for (size_t j = 0; j < nc; j++) {
                if (!reads(p, cand[j], prec, k) || !reads(p, cand[j], prec, q)) continue;
                const veil_params *ok = sets[k], *oq = sets[q];
                sets[k] = sets[q] = cand[j];
                const double c = cost_below(s, sets, n, 0, best);
                if (c < best) {
                    best = c;
                    bk = k;
                    bq = q;
                    bs = cand[j];
                }
                sets[k] = ok;
                sets[q] = oq;
            }
    free(prec);
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
        if (is_pbs_node(&p->nodes[i])) p->nodes[i].partition = map[p->nodes[i].partition];
    free(map);
    return m;
}

/* More partitions than the search's cap (search_cap) or VEIL_MAX_PARTITIONS,
 * or keys over the budget, with sets[0..n) (node partition). */
static int over_limits(veil_program *p, const veil_params *const *sets, uint32_t n) {
    const uint32_t maxp = search_cap(p);
    return (maxp && n > maxp) || n > VEIL_MAX_PARTITIONS || over_budget(p, sets, n);
}

/* Merges the pair of partitions that costs least (merge_cheapest_pair),
 * lowering the sets after each merge, until there are at most the search's
 * cap (search_cap) and VEIL_MAX_PARTITIONS and the keys fit the budget;
 * returns the cost, +INFINITY when one set left is still over the budget
 * (*np: the partitions left). */
static double merge_to_limits(const search *s, const veil_params **sets, uint32_t *np,
                              const veil_params *const *cand, size_t nc, double c) {
    veil_program *p = s->p;
    uint32_t n = *np;
    while (c < INFINITY && n > 1 && over_limits(p, sets, n)) {
        c = merge_cheapest_pair(s, sets, n, cand, nc);
        n = merge_sets(p, sets, n);
        /* and lowered again, as after every merge of the search (the cap
         * and the budget are checked again by the loop) */
        c = descend(s, sets, n, cand, nc, c);
        n = merge_sets(p, sets, n);
    }
    *np = n;
    return over_budget(p, sets, n) ? INFINITY : c;
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

/* Inputs under a prefix of the master key (veil_program.input_width): for
 * each k*N below the master key's among sets[0..*np), narrowest first, the
 * inputs are encrypted under it and the sets lowered again (descend,
 * split_nodes, descend): a value a narrower PBS made keeps that width (the
 * first layer's, once its inputs are narrow), so its keyswitches add the
 * noise of fewer rows and cheaper sets may read it (docs/results/
 * concrete-ml.md, "Values keep their key width"). Keeps the cheapest program within the
 * partition cap and the key budget that costs less than c (the program's
 * own cost, or +INFINITY when it is over them); returns its cost.
 * (undo, undo_part): scratch as partition_copy wants it. */
static double narrow_inputs(const search *s, const veil_params **sets, uint32_t *np,
                            const veil_params *const *cand, size_t nc, double c,
                            const veil_params **undo, uint32_t *undo_part) {
    veil_program *p = s->p;
    const uint32_t D = veil_params_big_dim(sets[master_index(sets, *np)]);
    uint32_t widths[VEIL_MAX_PARTITIONS], nw = 0;
    for (uint32_t k = 0; k < *np && nw < VEIL_MAX_PARTITIONS; k++) {
        const uint32_t w = veil_params_big_dim(sets[k]);
        uint32_t j = 0;
        while (j < nw && widths[j] != w)
            j++;
        if (w >= D || j < nw) continue;
        /* ascending: insertion */
        for (j = nw++; j > 0 && widths[j - 1] > w; j--)
            widths[j] = widths[j - 1];
        widths[j] = w;
    }
    uint32_t best_w = p->input_width, best_np = *np;
    double best = c;
    partition_copy(p, undo, undo_part, sets, best_np, 1);
    for (uint32_t t = 0; t < nw; t++) {
        uint32_t n = best_np;
        partition_copy(p, undo, undo_part, sets, n, 0);
        p->input_width = widths[t];
        double c2 = assignment_cost(s, sets, n, 0);
        c2 = descend(s, sets, n, cand, nc, c2);
        n = merge_sets(p, sets, n);
        c2 = split_nodes(s, sets, &n, cand, nc, c2);
        n = merge_sets(p, sets, n);
        c2 = descend(s, sets, n, cand, nc, c2);
        n = merge_sets(p, sets, n);
        /* the splits may leave more partitions than the cap or keys over
         * the budget: merged down to them, as the search's own result
         * (cnn_digits --range-check on at 6-bit reads: 267 s in 18
         * partitions merged to fit, where discarding it kept 389 s) */
        c2 = merge_to_limits(s, sets, &n, cand, nc, c2);
        if (c2 < best && !over_limits(p, sets, n)) {
            best = c2;
            best_w = widths[t];
            best_np = n;
            partition_copy(p, undo, undo_part, sets, n, 1);
        }
    }
    partition_copy(p, undo, undo_part, sets, best_np, 0);
    *np = best_np;
    /* one encoding: the master key's own width is 0 */
    p->input_width = best_w == veil_params_big_dim(sets[master_index(sets, best_np)]) ? 0 : best_w;
    return best;
}

static veil_status choose_partitions(veil_program *p, double single) {
    unit_noise u = {0};
    search srch;
    VEIL_TRY(search_new(p, &srch));
    const veil_status ust = unit_noise_new(p, &u);
    if (ust != VEIL_OK) {
        search_free(&srch);
        return ust;
    }
    const size_t count = veil_params_count();
    const veil_params **cand = calloc(count + 1, sizeof *cand);
    pbs_group *groups = calloc(p->n_nodes + 1, sizeof *groups);
    uint32_t *gof = calloc(p->n_nodes + 1, sizeof *gof);
    const veil_params **pick = calloc(p->n_nodes + 1, sizeof *pick);
    const veil_params **best = calloc(p->n_nodes + 1, sizeof *best);
    const veil_params **sets = calloc(p->n_nodes + 3, sizeof *sets);
    const veil_params **keep = calloc(p->n_partitions + 1, sizeof *keep);
    uint32_t *keep_part = calloc(p->n_nodes + 1, sizeof *keep_part);
    const veil_params **undo = calloc(p->n_nodes + 1, sizeof *undo);
    uint32_t *undo_part = calloc(p->n_nodes + 1, sizeof *undo_part);
    const veil_params **from = calloc(p->n_nodes + 3, sizeof *from);
    uint32_t *from_part = calloc(p->n_nodes + 1, sizeof *from_part);
    const veil_params **first = calloc(p->n_nodes + 3, sizeof *first);
    uint32_t *first_part = calloc(p->n_nodes + 1, sizeof *first_part);
    veil_status st = VEIL_OK;
    if (!cand || !groups || !gof || !pick || !best || !sets || !keep || !keep_part || !undo ||
        !undo_part || !from || !from_part || !first || !first_part)
        st = veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    size_t nc = 0, ng = 0;
    for (size_t i = 0; st == VEIL_OK && i < count; i++) {
        const veil_params *ps = veil_params_at(i);
        if (!p->options.max_poly_size || ps->poly_size <= p->options.max_poly_size) cand[nc++] = ps;
    }
    if (st == VEIL_OK) qsort(cand, nc, sizeof *cand, cmp_cost);
    for (size_t i = 0; st == VEIL_OK && i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (!is_pbs_node(n)) continue;
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
        double c = assignment_cost(&srch, sets, np, 0);
        /* lower the sets while the exact model allows: the bound model
         * charges every group the noisiest output of any set, and the
         * outputs' decoding (say) may bind only the groups feeding them;
         * group by group, then partition by partition (groups that share a
         * set move together) */
        c = descend(&srch, sets, np, cand, nc, c);
        np = merge_sets(p, sets, np);
        c = descend(&srch, sets, np, cand, nc, c);
        np = merge_sets(p, sets, np);
        /* then node by node, and the partitions lowered again */
        c = split_nodes(&srch, sets, &np, cand, nc, c);
        np = merge_sets(p, sets, np);
        c = descend(&srch, sets, np, cand, nc, c);
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
                c2 = merge_cheapest_pair(&srch, sets, np, cand, nc);
                np = merge_sets(p, sets, np);
                c2 = descend(&srch, sets, np, cand, nc, c2);
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
         * holds), and keys within the budget (one set left over budget:
         * no partitioned program), then the inputs narrowed */
        const int over = over_limits(p, sets, np);
        const uint32_t from_np = np;
        if (over) partition_copy(p, from, from_part, sets, np, 1);
        c = merge_to_limits(&srch, sets, &np, cand, nc, c);
        if (c < INFINITY) c = narrow_inputs(&srch, sets, &np, cand, nc, c, undo, undo_part);
        if (over) {
            /* and the other order: narrowed before the merges (each
             * narrowed program merged to the limits, narrow_inputs), then
             * merged if none fit; the cheaper kept. Narrower inputs shrink
             * the KSKs (their rows) and so may fit the budget unmerged:
             * mlp_digits at --key-budget-mb 1024 merged its program first
             * and kept 31.4 s, where narrowed it fits in 1017 MiB at
             * 23.6 s (the default budget's program) */
            const uint32_t first_np = np, first_w = p->input_width;
            const double first_c = c;
            partition_copy(p, first, first_part, sets, np, 1);
            partition_copy(p, from, from_part, sets, from_np, 0);
            np = from_np;
            p->input_width = 0;
            /* no program within the limits yet: the cheapest narrowed one
             * that fits, whatever it costs */
            double c2 = narrow_inputs(&srch, sets, &np, cand, nc, INFINITY, undo, undo_part);
            c2 = merge_to_limits(&srch, sets, &np, cand, nc, c2);
            if (c2 < first_c)
                c = c2;
            else {
                partition_copy(p, first, first_part, sets, first_np, 0);
                np = first_np;
                p->input_width = first_w;
            }
        }
        if (c < single) {
            /* the master first */
            const uint32_t m = master_index(sets, np);
            const veil_params *t = sets[0];
            sets[0] = sets[m];
            sets[m] = t;
            for (size_t i = 0; i < p->n_nodes; i++) {
                veil_node *n = &p->nodes[i];
                if (!is_pbs_node(n))
                    n->partition = 0;
                else if (n->partition == m)
                    n->partition = 0;
                else if (n->partition == 0)
                    n->partition = m;
            }
            st = set_partitions(p, sets, np);
        } else {
            p->input_width = 0;
            for (size_t i = 0; i < p->n_nodes; i++)
                p->nodes[i].partition = keep_part[i];
            if (p->n_partitions) st = set_partitions(p, keep, p->n_partitions);
        }
    }
    unit_noise_free(&u);
    search_free(&srch);
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
    free(from);
    free(from_part);
    free(first);
    free(first_part);
    return st;
}

/* After the search: each WoP-PBS node (wop_of) in a partition of its set,
 * appended after the search's (one per set). Its keys need the master key
 * to be at least its set's k*N (its GLWE key a prefix of it, like every
 * partition's; the noise pass took the master from the search's sets). */
static veil_status assign_wop_partitions(veil_program *p) {
    const uint32_t D = p->n_partitions ? veil_params_big_dim(p->partitions[0].params) : 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        const veil_wop_params *wp = wop_of(n);
        if (!wp) continue;
        if (veil_params_big_dim(&wp->pbs) > D)
            return veil_error(VEIL_ERR_UNSUPPORTED,
                              "layer %s: its WoP-PBS (%s) needs a master key of at least %u "
                              "coefficients, and the program's sets give %u (compile with "
                              "--wop off)",
                              n->layer, wp->id, veil_params_big_dim(&wp->pbs), D);
        uint32_t k = 0;
        while (k < p->n_partitions && p->partitions[k].params != &wp->pbs)
            k++;
        if (k == p->n_partitions) {
            if (k >= VEIL_MAX_PARTITIONS)
                return veil_error(VEIL_ERR_UNSUPPORTED,
                                  "layer %s: no partition left for its WoP-PBS (at most %u)",
                                  n->layer, VEIL_MAX_PARTITIONS);
            veil_partition *grown = realloc(p->partitions, (k + 1) * sizeof *grown);
            if (!grown) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
            p->partitions = grown;
            memset(&grown[k], 0, sizeof grown[k]);
            grown[k].params = &wp->pbs;
            p->n_partitions = k + 1;
        }
        n->partition = k;
    }
    return VEIL_OK;
}

static veil_status choose_params(veil_program *p, const char *params_id);

veil_status veil_choose_params(veil_program *p, const char *params_id) {
    /* the search's partitions only: a WoP node's index is the last pass's */
    for (size_t i = 0; i < p->n_nodes; i++)
        if (wop_of(&p->nodes[i])) p->nodes[i].partition = 0;
    if (wop_sets(p) && (params_id || p->options.max_partitions == 1))
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "a WoP-PBS runs in a partition of its own set: not with %s (compile "
                          "with --wop off)",
                          params_id ? "--params" : "--partitions 1");
    if (p->options.max_partitions && p->options.max_partitions <= wop_sets(p))
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "--partitions %u: the WoP-PBS lookups take %u partition(s) of their "
                          "own and leave none for the other lookups (compile with --wop off)",
                          p->options.max_partitions, wop_sets(p));
    VEIL_TRY(choose_params(p, params_id));
    VEIL_TRY(assign_wop_partitions(p));
    /* the search kept its own partitions' keys within the budget; the WoP
     * sets' come on top (hundreds of MiB each) */
    const veil_params *sets[VEIL_MAX_PARTITIONS];
    for (uint32_t k = 0; k < p->n_partitions; k++)
        sets[k] = p->partitions[k].params;
    if (wop_sets(p) && over_budget(p, sets, p->n_partitions))
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "--key-budget-mb %u: the WoP-PBS lookups' keys with the other "
                          "partitions' take %.0f MiB (compile with --wop off, or a larger budget)",
                          p->options.key_budget_mb,
                          key_bytes(p, sets, p->n_partitions) / 1048576.0);
    return VEIL_OK;
}

/* The search for the per-PBS target pbs_target(p) (choose_params: without a
 * global budget, the options'). */
static veil_status choose_params_at(veil_program *p, const char *params_id) {
    double single = INFINITY;
    p->input_width = 0; /* the master key's, until narrow_inputs finds better */
    veil_status st = choose_single(p, params_id, &single);
    if (params_id || search_cap(p) == 1) return st; /* one set, one partition */
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

/* ---- --global-p-error -------------------------------------------------------
 * A budget P on the probability that a sample (one run) has any failed PBS
 * read or output decoding, spent as the union bound sum p_i over them
 * (veil_program_p_fail_shares: each value's worst read, as the report's per
 * sample figure counts them). The search for one per-PBS target t is the
 * program's usual one (choose_params_at); the budget chooses t and then
 * lets partitions go past it:
 *  1. t = the per-PBS cap (veil_compile_options_pbs_p_error): taken if it
 *     spends at most P (no looser program exists);
 *  2. t_lo = P over the count of reads and decodings: every one under it
 *     spends at most P (the union bound), so it fits whenever a set reaches
 *     it; the default p_error's program (2^-40) when it is between, so the
 *     budget that program spends never gives a dearer one;
 *  3. bisection between them on "spends more than P" (a search that finds
 *     no set is on the tight side), 7 steps;
 *  the cheapest program that fits is kept (ties: the first tried), with its
 *  partitions, then
 *  4. a greedy exchange over its partitions at the cap: each round takes the
 *     move of one partition onto another candidate set (one no other
 *     partition has) that lowers the cost most and keeps every read under
 *     the cap, the sample within P, partition 0 the master and the keys
 *     within the budget (a rare or cheap partition takes a looser set, the
 *     budget the uniform targets left).
 * Deterministic (fixed orders, strict comparisons); never returns a
 * program that spends more than P (each kept program's spend is the exact
 * noise pass's). */
typedef struct gpe_snapshot {
    double cost, spent;
    uint32_t n, input_width;
    const veil_params **sets; /* n */
    uint32_t *part;           /* per node */
} gpe_snapshot;

/* After choose_params_at: p's cost (its PBS nodes at the rows they read, the
 * search's figure; a WoP-PBS's is fixed) and spend (a filled noise pass). */
static veil_status gpe_eval(veil_program *p, double *cost, double *spent) {
    const uint32_t n = p->n_partitions;
    const veil_params **sets = calloc(n + 1, sizeof *sets);
    if (!sets) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    for (uint32_t k = 0; k < n; k++)
        sets[k] = p->partitions[k].params;
    uint32_t wn;
    noise_pass(p, sets, n, &wn);
    double c = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (is_pbs_node(&p->nodes[i])) c += node_cost(p, &p->nodes[i], sets[p->nodes[i].partition]);
    *cost = c;
    *spent = veil_program_p_fail_shares(p, NULL, 0, NULL);
    free(sets);
    return VEIL_OK;
}

static void gpe_save(veil_program *p, gpe_snapshot *s, double cost, double spent) {
    s->cost = cost;
    s->spent = spent;
    s->n = p->n_partitions;
    s->input_width = p->input_width;
    for (uint32_t k = 0; k < s->n; k++)
        s->sets[k] = p->partitions[k].params;
    for (size_t i = 0; i < p->n_nodes; i++)
        s->part[i] = p->nodes[i].partition;
}

/* Set c is some partition's among sets[0..n). */
static int taken_by(const veil_params *const *sets, uint32_t n, const veil_params *c) {
    for (uint32_t q = 0; q < n; q++)
        if (sets[q] == c) return 1;
    return 0;
}

/* sets[0..n) (node partition) spend at most the budget (the exact noise
 * pass) and keep the partition cap and the key budget. */
static int fits(veil_program *p, const veil_params *const *sets, uint32_t n, double budget) {
    if (over_limits(p, sets, n)) return 0;
    uint32_t wn;
    noise_pass(p, sets, n, &wn);
    return veil_program_p_fail_shares(p, NULL, 0, NULL) <= budget;
}

/* The greedy exchange (4. above) on p's partitions; p->search_log2_p_error
 * the cap. */
static veil_status gpe_exchange(veil_program *p, double *cost) {
    const double budget = p->options.global_p_error;
    const uint32_t n = p->n_partitions;
    search s;
    VEIL_TRY(search_new(p, &s));
    const size_t count = veil_params_count();
    const veil_params **cand = calloc(count + 1, sizeof *cand);
    const veil_params **sets = calloc(n + 1, sizeof *sets);
    unsigned *prec = part_precs(&s, n);
    if (!cand || !sets || !prec) {
        free(cand), free(sets), free(prec);
        search_free(&s);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    size_t nc = 0;
    for (size_t i = 0; i < count; i++) {
        const veil_params *ps = veil_params_at(i);
        if (!p->options.max_poly_size || ps->poly_size <= p->options.max_poly_size) cand[nc++] = ps;
    }
    qsort(cand, nc, sizeof *cand, cmp_cost);
    for (uint32_t k = 0; k < n; k++)
        sets[k] = p->partitions[k].params;
    double c = *cost;
    for (int round = 0; round < 32; round++) {
        double bc = c;
        uint32_t bk = 0;
        const veil_params *bs = NULL;
        for (uint32_t k = 0; k < n; k++) {
            const veil_params *old = sets[k];
            for (size_t j = 0; j < nc; j++) {
                if (taken_by(sets, n, cand[j]) || !reads(p, cand[j], prec, k)) continue;
                sets[k] = cand[j];
                /* cheaper than the best move so far, every read under the
                 * cap, partition 0 the master */
                const double c2 = cost_below(&s, sets, n, 1, bc);
                if (c2 < bc && fits(p, sets, n, budget)) {
                    bc = c2;
                    bk = k;
                    bs = cand[j];
                }
                sets[k] = old;
            }
        }
        if (!bs) {
            /* no single move fits: a pair, one partition onto a cheaper set
             * that alone spends too much, another onto one that spends less
             * (dearer or not), the pair cheaper than now */
            uint32_t bq = 0;
            const veil_params *bs2 = NULL;
            for (uint32_t q = 0; q < n; q++) {
                const veil_params *oq = sets[q];
                for (size_t j = 0; j < nc; j++) {
                    if (taken_by(sets, n, cand[j]) || !reads(p, cand[j], prec, q)) continue;
                    sets[q] = cand[j];
                    if (cost_below(&s, sets, n, 1, c) < c)
                        for (uint32_t k = 0; k < n; k++) {
                            if (k == q) continue;
                            const veil_params *ok = sets[k];
                            for (size_t i = 0; i < nc; i++) {
                                if (taken_by(sets, n, cand[i]) || !reads(p, cand[i], prec, k))
                                    continue;
                                sets[k] = cand[i];
                                const double c2 = cost_below(&s, sets, n, 1, bc);
                                if (c2 < bc && fits(p, sets, n, budget)) {
                                    bc = c2;
                                    bk = k;
                                    bs = cand[i];
                                    bq = q;
                                    bs2 = cand[j];
                                }
                                sets[k] = ok;
                            }
                        }
                    sets[q] = oq;
                }
            }
            if (!bs) break;
            sets[bq] = bs2;
        }
        sets[bk] = bs;
        c = bc;
    }
    veil_status st = VEIL_OK;
    if (c < *cost) {
        const uint32_t in_width = p->input_width;
        st = set_partitions(p, sets, n);
        p->input_width = in_width;
        *cost = c;
    }
    free(cand), free(sets), free(prec);
    search_free(&s);
    return st;
}

static veil_status choose_params_global(veil_program *p, const char *params_id) {
    const double budget = p->options.global_p_error, lbudget = log2(budget);
    const double lcap = log2(veil_compile_options_pbs_p_error(&p->options));
    double terms = 0; /* reads and decodings a sample */
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND)
            terms += (double)veil_node_results(n);
        else if (n->kind == VEIL_NODE_OUTPUT)
            terms += (double)n->size;
    }
    /* a hair under the union bound's share: the sum's rounding */
    double t_lo = lbudget - log2(terms > 1 ? terms : 1) - 1e-9;
    if (t_lo > lcap) t_lo = lcap;
    gpe_snapshot best = {.cost = INFINITY};
    best.sets = calloc(p->n_nodes + 3, sizeof *best.sets);
    best.part = calloc(p->n_nodes + 1, sizeof *best.part);
    if (!best.sets || !best.part) {
        free(best.sets), free(best.part);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    double least = INFINITY; /* the least any program found spends */
    veil_status st = VEIL_OK, first_err = VEIL_OK;
    char msg[512] = "";
    /* one search at target t: -1 no set reaches it (too tight), 0 fits,
     * +1 spends more than the budget (too loose) */
    const double dflt = log2(VEIL_P_ERROR_DEFAULT);
    double lo = t_lo, hi = lcap;
    for (int step = 0; step < 11 && st == VEIL_OK; step++) {
        double t;
        if (step == 0)
            t = lcap;
        else if (step == 1)
            t = t_lo;
        else if (step == 2)
            t = dflt;
        else
            t = 0.5 * (lo + hi);
        if (step == 1 && !(t < lcap)) break;
        if (step == 2 && !(t > t_lo && t < lcap)) continue;
        if (step >= 3 && !(hi - lo > 1.0 / 64)) break;
        p->search_log2_p_error = t;
        const veil_status sst = choose_params_at(p, params_id);
        int v;
        if (sst == VEIL_ERR_UNSUPPORTED) {
            v = -1;
            if (first_err == VEIL_OK) {
                first_err = sst;
                snprintf(msg, sizeof msg, "%s", veil_error_message());
            }
        } else if (sst != VEIL_OK) {
            st = sst;
            break;
        } else {
            double spent = INFINITY, c = INFINITY;
            st = gpe_eval(p, &c, &spent);
            if (st != VEIL_OK) break;
            least = spent < least ? spent : least;
            v = spent <= budget ? 0 : 1;
            if (!v && c < best.cost) gpe_save(p, &best, c, spent);
        }
        /* the cap fits: nothing looser exists; no set under it: none
         * under a tighter one either; a forced set: its one program */
        if (step == 0 && (v <= 0 || params_id)) break;
        /* the bisection's bracket: lo on the side that fits or finds no set,
         * hi on the side that spends too much */
        if (t > lo && t < hi) {
            if (v > 0)
                hi = t;
            else
                lo = t;
        }
    }
    if (st == VEIL_OK && best.cost == INFINITY) {
        if (least < INFINITY)
            st = veil_error(VEIL_ERR_UNSUPPORTED,
                            "--global-p-error %g (2^%.1f): no program keeps a sample's failure "
                            "probability under it (%.0f PBS reads and output decodings a sample; "
                            "the most reliable program found spends 2^%.1f%s%s); raise it",
                            budget, lbudget, terms, log2(least), params_id ? " with --params " : "",
                            params_id ? params_id : "");
        else
            st = veil_error(first_err ? first_err : VEIL_ERR_UNSUPPORTED,
                            "--global-p-error %g (2^%.1f), each PBS under 2^%.1f: %s", budget,
                            lbudget, lcap, msg);
    }
    if (st == VEIL_OK) {
        /* the cheapest program that fits, and its partitions let go past
         * the uniform target where the budget allows */
        st = set_partitions(p, best.sets, best.n);
        if (st == VEIL_OK) {
            p->input_width = best.input_width;
            for (size_t i = 0; i < p->n_nodes; i++)
                p->nodes[i].partition = best.part[i];
            p->search_log2_p_error = lcap;
            if (!params_id) st = gpe_exchange(p, &best.cost);
        }
    }
    p->search_log2_p_error = 0; /* the options' from here on: the cap */
    free(best.sets), free(best.part);
    return st;
}

static veil_status choose_params(veil_program *p, const char *params_id) {
    if (p->options.global_p_error > 0) return choose_params_global(p, params_id);
    p->search_log2_p_error = 0;
    return choose_params_at(p, params_id);
}

/* The chosen partitions' final variances and statistics. */
veil_status veil_fill_partitions(veil_program *p) {
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
    uint32_t *rows = calloc(p->n_partitions + 1, sizeof *rows);
    if (!rows) {
        unit_noise_free(&u);
        free(sets);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    ksk_rows(p, sets, p->n_partitions, rows);
    for (uint32_t k = 0; k < p->n_partitions; k++)
        p->partitions[k].ksk_rows = rows[k];
    free(rows);
    uint32_t wn;
    noise_pass(p, sets, p->n_partitions, &wn);
    /* the search's widths from each read's sources are the pass's */
    search srch;
    if (search_new(p, &srch) == VEIL_OK) {
        const uint32_t in_width =
            veil_params_big_dim(veil_input_set(sets, p->n_partitions, p->input_width));
        for (size_t k = 0; k < srch.n; k++)
            srch.kn[k] = veil_params_big_dim(sets[p->nodes[srch.node[k]].partition]);
        for (size_t k = 0; k < srch.n; k++) {
            const veil_node *n = &p->nodes[srch.node[k]];
            VEIL_ASSERT(source_width(&srch, k, in_width) ==
                        veil_node_read_dim(p, n, sets[n->partition], 0));
        }
        search_free(&srch);
    }
    p->params = sets[0];
    p->cost_per_sample = 0;
    p->cost_per_sample_cuda = 0;
    p->key_bytes = key_bytes(p, sets, p->n_partitions);
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        const veil_wop_params *wp = wop_of(n);
        if (wp) {
            /* the cuda figure is the cpu's ratio to a KS-PBS, not timed
             * on a GPU (veil_cost_wop_cuda_us) */
            veil_partition *pt = &p->partitions[n->partition];
            pt->pbs_per_sample += n->pbs_per_sample;
            p->cost_per_sample +=
                (double)n->size * veil_cost_wop_cpu_ms(wp, n->in_bits, pt->ksk_rows);
            p->cost_per_sample_cuda +=
                1e-3 * (double)n->size * veil_cost_wop_cuda_us(wp, n->in_bits, pt->ksk_rows);
            if (n->in_bits + 1 > pt->precision) pt->precision = n->in_bits + 1;
            if (n->read_log2_pfail > pt->log2_p_fail) pt->log2_p_fail = n->read_log2_pfail;
            continue;
        }
        if (!is_pbs_node(n)) continue;
        veil_partition *pt = &p->partitions[n->partition];
        pt->pbs_per_sample += n->pbs_per_sample;
        /* the cpu's keyswitch reads the rows of what it reads (node_cost);
         * the CUDA kernel every row of the partition's key (ks_rows) */
        p->cost_per_sample += node_cost(p, n, pt->params);
        /* the cuda backend: a KS-PBS a blind rotation, as the cpu (threshold
         * reads: one for all of a value's results, veil_cuda_extract) */
        p->cost_per_sample_cuda +=
            1e-3 * (double)n->pbs_per_sample * veil_cost_cuda_us(pt->params, pt->ksk_rows);
        if (u.prec[i] > pt->precision) pt->precision = u.prec[i];
        if (sqrt(u.ra[i]) > pt->norm2) pt->norm2 = sqrt(u.ra[i]);
        if (n->read_log2_pfail > pt->log2_p_fail) pt->log2_p_fail = n->read_log2_pfail;
    }
    unit_noise_free(&u);
    free(sets);
    return VEIL_OK;
}

/* ---- --objective latency ------------------------------------------------- */

/* Node n's time at batch 1 on `cores` cores with the terms of its set: its
 * PBS in waves of at most its size (a rounding's chunks, the digits of a
 * wide lookup, one after the other), a WoP-PBS each lookup on one core.
 * Threshold reads (several results a blind rotation) go through the
 * backend's extraction path, whose lone lookup keyswitches on one thread. */
static double node_latency(const veil_program *p, const veil_node *n, const veil_latency_terms *t,
                           const veil_params *ps, unsigned cores) {
    const veil_wop_params *wp = wop_of(n);
    const uint64_t size = n->size ? n->size : 1;
    if (wp) {
        const uint64_t share = size / cores + (size % cores != 0);
        return (double)share *
               veil_cost_wop_cpu_ms(wp, n->in_bits, p->partitions[n->partition].ksk_rows);
    }
    const uint64_t pbs = n->pbs_per_sample, wave = pbs < size ? pbs : size;
    if (!wave) return 0;
    const uint64_t waves = pbs / wave + (pbs % wave != 0);
    const int lookup = !(n->kind == VEIL_NODE_LUT && n->rotation_results > 1);
    /* a rounding's first chunk reads its input's rows, the later ones its
     * own set's (node_cost_rows) */
    const uint32_t r0 = veil_node_read_dim(p, n, ps, 0), r1 = veil_node_read_dim(p, n, ps, 1);
    return veil_cost_latency_of(t, r0, wave, cores, lookup) +
           (double)(waves - 1) * veil_cost_latency_of(t, r1, wave, cores, lookup);
}

/* One sample's modelled time with sets[] (node partition), the node key
 * widths filled for them first (they change with the master set); +INFINITY
 * when no set holds the inputs. */
static double program_latency(veil_program *p, const veil_params *const *sets,
                              const veil_latency_terms *terms, unsigned cores) {
    const veil_params *is = veil_input_set(sets, p->n_partitions, p->input_width);
    if (!is) return INFINITY;
    key_width_pass(p, sets, veil_params_big_dim(is));
    double ms = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (wop_of(n))
            ms += node_latency(p, n, NULL, NULL, cores);
        else if (is_pbs_node(n))
            ms += node_latency(p, n, &terms[n->partition], sets[n->partition], cores);
    }
    return ms;
}

double veil_program_latency_ms(veil_program *p, unsigned cores) {
    if (!p || !p->params || !p->n_partitions || !cores) return INFINITY;
    const veil_params **sets = calloc(p->n_partitions, sizeof *sets);
    veil_latency_terms *terms = calloc(p->n_partitions, sizeof *terms);
    double ms = INFINITY;
    if (sets && terms) {
        for (uint32_t k = 0; k < p->n_partitions; k++) {
            sets[k] = p->partitions[k].params;
            veil_cost_cpu_latency_terms(sets[k], &terms[k]);
        }
        ms = program_latency(p, sets, terms, cores);
    }
    free(sets);
    free(terms);
    return ms;
}

veil_status veil_latency_sets(veil_program *p, const char *params_id) {
    const unsigned cores = p->options.latency_cores;
    p->latency_per_sample = 0;
    if (!cores || !p->params) return VEIL_OK;
    const uint32_t np = p->n_partitions, ns = np - wop_sets(p);
    const veil_params **sets = calloc(np, sizeof *sets), **trial = calloc(np, sizeof *trial);
    veil_latency_terms *terms = calloc(np, sizeof *terms);
    unsigned *prec = calloc(np, sizeof *prec);
    if (!sets || !trial || !terms || !prec) {
        free(sets), free(trial), free(terms), free(prec);
        return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    }
    for (uint32_t k = 0; k < np; k++) {
        sets[k] = p->partitions[k].params;
        veil_cost_cpu_latency_terms(sets[k], &terms[k]);
    }
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (is_pbs_node(n) && n->partition < np && veil_pbs_prec(n) > prec[n->partition])
            prec[n->partition] = veil_pbs_prec(n);
    }
    double best = program_latency(p, sets, terms, cores);
    int changed = 0;
    const size_t n_classic = veil_params_count(), n_all = n_classic + veil_params_multibit_count();
    /* a forced set stays; otherwise two rounds over the partitions (a
     * partition's best set can change once another's key width has) */
    for (int round = 0; round < 2 && !params_id; round++) {
        int moved = 0;
        for (uint32_t k = 0; k < ns; k++)
            for (size_t c = 0; c < n_all; c++) {
                const veil_params *cand =
                    c < n_classic ? veil_params_at(c) : veil_params_multibit_at(c - n_classic);
                if (!veil_set_reads(cand, prec[k], p->options.max_poly_size)) continue;
                int taken = 0; /* a set of another partition: two with the same keys */
                for (uint32_t j = 0; j < np && !taken; j++)
                    taken = sets[j] == cand;
                if (taken) continue;
                const veil_latency_terms keep = terms[k];
                veil_cost_cpu_latency_terms(cand, &terms[k]);
                memcpy(trial, sets, np * sizeof *trial);
                trial[k] = cand;
                const double ms = program_latency(p, trial, terms, cores);
                /* the noise pass and the key sizes only for what is faster */
                if (ms < best * (1 - 1e-9) && !over_budget(p, trial, np) &&
                    veil_program_assignment_cost(p, trial) < INFINITY) {
                    sets[k] = cand;
                    best = ms;
                    moved = changed = 1;
                } else {
                    terms[k] = keep;
                }
            }
        if (!moved) break;
    }
    veil_status st = VEIL_OK;
    if (changed) {
        for (uint32_t k = 0; k < np; k++)
            p->partitions[k].params = sets[k];
        p->params = sets[0];
        st = veil_fill_partitions(p); /* the new sets' variances and statistics */
    }
    /* and their key widths: the trials left theirs (the noise passes of
     * veil_program_assignment_cost put the variances back) */
    if (st == VEIL_OK) p->latency_per_sample = program_latency(p, sets, terms, cores);
    free(sets), free(trial), free(terms), free(prec);
    return st;
}
