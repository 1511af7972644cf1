// LABELS: model
// COST: 105
// LINKS: veil_loaders
/* Per-value encoding and partitions (veil/program.h "Encoding", the compiler's
 * parameter search), without keys:
 *  - every sample model, default options: simulate equals the golden vectors
 *    (exact, per-value Delta), and the encoding classes are consistent (the
 *    operands of a linear/add node share its width, a lookup's input is wide
 *    enough for what it reads);
 *  - sample models (tiny and source_bc here, every one in
 *    test_partitions_slow.c) at the default, --rounding-bits 6 and 4: the exact
 *    noise pass keeps every PBS and output under p_error, partition 0 holds
 *    the widest big key, every PBS reads at most its set's precision, and
 *    the partitioned program costs no more than the one-set program;
 *  - a model whose lookups differ in precision gets >= 2 partitions; --params
 *    and --partitions 1 give 1, --partitions 2 at most 2;
 *  - mlp_digits at --partitions 3 costs no more than any 3-partition
 *    coarsening of its uncapped program, and at --key-budget-mb of its
 *    default program's keys no more than that program;
 *  - exhaustive (source_bc here; mlp_digits and target_bc in the slow file):
 *    for programs capped at two partitions, no assignment of any parameter sets to
 *    the program's partitions that the noise model accepts is cheaper than
 *    the compiler's;
 *  - per node (tiny and source_bc at --rounding-bits 4 and 6 here; mlp_digits
 *    at 4 and 6 in the slow file): no assignment of a set to each PBS node, a
 *    partition per node, that the noise model and the key budget accept is
 *    cheaper than the compiler's program. */
#include "testutil.h"
#include "load_model.h"
#include "veil/loader.h"
#include "veil/noise.h"
#include "veil/program.h"
#include "veil/tfhe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_models[] = {"models/tiny.h5",        "models/mlp_digits.h5",
                                       "models/cnn_digits.h5",  "models/source_bc.h5",
                                       "models/target_bc.h5",   "models/source14_bc.h5",
                                       "models/source16_bc.h5", "models/cnn_maxpool_digits.h5"};
#define N_MODELS (sizeof k_models / sizeof *k_models)

static veil_program *compile(const veil_model *m, unsigned rounding_bits, unsigned max_partitions,
                             const char *params_id) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = rounding_bits;
    o.max_partitions = max_partitions;
    o.params_id = params_id;
    veil_program *p = NULL;
    veil_status st = veil_program_compile(m, &o, &p);
    if (st) fprintf(stderr, "\n  %s: %s\n", m->name, veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    return p;
}

static int is_pbs(const veil_node *n) {
    return n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND;
}

#ifndef SWEEP_ALL
/* The encoding classes: one width across linear/add/round/output edges, and
 * each lookup's input wide enough for the bits it reads. Returns the checks. */
static size_t check_widths(const veil_program *p) {
    size_t checks = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        CU_ASSERT(n->width >= 1 && n->width <= 62);
        CU_ASSERT(n->width <= p->width);
        switch (n->kind) {
        case VEIL_NODE_LINEAR:
        case VEIL_NODE_ADD:
        case VEIL_NODE_ROUND:
        case VEIL_NODE_OUTPUT:
            for (uint32_t j = 0; j < n->n_in; j++, checks++)
                CU_ASSERT_EQUAL(p->nodes[n->in[j]].width, n->width);
            break;
        case VEIL_NODE_LUT:
            CU_ASSERT_EQUAL(n->shift + n->round_bits + n->in_bits, p->nodes[n->in[0]].width);
            checks++;
            break;
        case VEIL_NODE_INPUT:
            break;
        }
    }
    return checks;
}

/* The per-value encoding keeps simulate exact: the golden vectors, value for
 * value, with the default options, and some lookup reads narrower than the
 * program's widest value (what per-value encoding is for) on a model with
 * a wide accumulator and narrow lookups. */
static void test_golden_default(void) {
    size_t models = 0, narrower = 0;
    for (size_t k = 0; k < N_MODELS; k++) {
        veil_model *m = veil_test_load_model(k_models[k]);
        veil_compile_options o;
        veil_compile_options_default(&o);
        o.simulate_only = 1;
        veil_program *p = NULL;
        CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
        const size_t n = m->golden.count;
        CU_ASSERT_FATAL(n > 0);
        int64_t **out = calloc(p->n_outputs, sizeof *out);
        for (uint32_t i = 0; i < p->n_outputs; i++)
            out[i] = malloc(n * veil_program_output_size(p, i) * sizeof(int64_t));
        CU_ASSERT_EQUAL(
            veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, out, NULL, NULL),
            VEIL_OK);
        size_t eq = 0, tot = 0;
        for (uint32_t i = 0; i < p->n_outputs; i++)
            for (size_t j = 0; j < n * veil_program_output_size(p, i); j++, tot++)
                eq += out[i][j] == m->golden.outputs[i][j];
        unsigned wmin = p->width;
        for (size_t i = 0; i < p->n_nodes; i++)
            if (p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[p->nodes[i].in[0]].width < wmin)
                wmin = p->nodes[p->nodes[i].in[0]].width;
        narrower += wmin < p->width;
        printf("\n  %-12s default: %zu/%zu golden values equal; widths %u..%u bits, %zu class "
               "checks",
               m->name, eq, tot, wmin, p->width, check_widths(p));
        CU_ASSERT(tot > 0);
        CU_ASSERT_EQUAL(eq, tot);
        for (uint32_t i = 0; i < p->n_outputs; i++)
            free(out[i]);
        free(out);
        veil_program_free(p);
        veil_model_free(m);
        models++;
    }
    CU_ASSERT_EQUAL(models, N_MODELS);
    CU_ASSERT(narrower >= 1);
    printf("\n");
}

#endif

/* Every PBS under p_error, partition 0 the widest big key, precision held. */
static void check_program(const veil_program *p) {
    const double target = log2(p->options.p_error);
    CU_ASSERT_FATAL(p->params != NULL);
    CU_ASSERT_FATAL(p->n_partitions >= 1);
    CU_ASSERT(p->params == p->partitions[0].params);
    uint64_t pbs = 0;
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        const veil_params *ps = p->partitions[k].params;
        CU_ASSERT(veil_params_big_dim(ps) <= veil_params_big_dim(p->params));
        CU_ASSERT(p->partitions[k].pbs_per_sample > 0);
        CU_ASSERT(p->partitions[k].log2_p_fail <= target);
        pbs += p->partitions[k].pbs_per_sample;
        for (uint32_t q = 0; q < k; q++)
            CU_ASSERT(p->partitions[q].params != ps); /* one partition per set */
    }
    CU_ASSERT_EQUAL(pbs, p->pbs_per_sample);
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (is_pbs(n) || n->kind == VEIL_NODE_OUTPUT) {
            if (!(n->read_log2_pfail <= target))
                fprintf(stderr, "\n  %s node %zu (%s): log2 p_fail %.1f > %.1f\n", p->model_name, i,
                        n->layer, n->read_log2_pfail, target);
            CU_ASSERT(n->read_log2_pfail <= target);
        }
        if (!is_pbs(n)) continue;
        CU_ASSERT_FATAL(n->partition < p->n_partitions);
        const veil_params *ps = p->partitions[n->partition].params;
        if (n->kind == VEIL_NODE_LUT) {
            CU_ASSERT(n->in_bits <= ps->precision);
            /* a WoP-PBS reads its bits one by one (veil/wop.h) */
            CU_ASSERT(n->wop || ((uint64_t)1 << n->in_bits) <= ps->poly_size);
        }
    }
    CU_ASSERT(p->log2_p_fail_pbs <= target);
    CU_ASSERT(p->cost_per_sample > 0 && p->cost_per_sample < INFINITY);
}

#ifndef SWEEP_ALL
/* fast (CI runs it under ASan): two models; test_partitions_slow.c sweeps
 * every sample model */
static const char *const k_sweep[] = {"models/tiny.h5", "models/source_bc.h5"};
#else
#define k_sweep k_models
#endif
#define N_SWEEP (sizeof k_sweep / sizeof *k_sweep)

static void test_noise_and_contract(void) {
    static const unsigned rb[] = {0, 6, 4};
    size_t programs = 0, multi = 0;
    for (size_t k = 0; k < N_SWEEP; k++) {
        veil_model *m = veil_test_load_model(k_sweep[k]);
        for (size_t r = 0; r < sizeof rb / sizeof *rb; r++) {
            veil_program *p = compile(m, rb[r], 0, NULL);
            veil_program *one = compile(m, rb[r], 1, NULL);
            check_program(p);
            check_program(one);
            CU_ASSERT_EQUAL(one->n_partitions, 1);
            /* the search keeps the one-set program when nothing beats it */
            CU_ASSERT(p->cost_per_sample <= one->cost_per_sample * (1 + 1e-12));
            /* the objective as the public function computes it */
            const veil_params **sets = calloc(p->n_partitions, sizeof *sets);
            for (uint32_t q = 0; q < p->n_partitions; q++)
                sets[q] = p->partitions[q].params;
            const double c = veil_program_assignment_cost(p, sets);
            CU_ASSERT(fabs(c - p->cost_per_sample) <= 1e-9 * p->cost_per_sample);
            free(sets);
            printf("\n  %-12s rounding %u: %u partitions, cost %.3g (one set %.3g, x%.2f), "
                   "%llu PBS",
                   m->name, rb[r], p->n_partitions, p->cost_per_sample, one->cost_per_sample,
                   one->cost_per_sample / p->cost_per_sample,
                   (unsigned long long)p->pbs_per_sample);
            multi += p->n_partitions >= 2;
            programs++;
            veil_program_free(p);
            veil_program_free(one);
        }
        veil_model_free(m);
    }
    CU_ASSERT_EQUAL(programs, N_SWEEP * 3);
    CU_ASSERT(multi >= 1);
    printf("\n");
}

#ifndef SWEEP_ALL
/* mlp_digits' exact lookups are decomposed into reads of several
 * precisions and 2-norms: several partitions; forcing one set gives one. */
static void test_partition_counts(void) {
    veil_model *m = veil_test_load_model("models/mlp_digits.h5");
    veil_program *p = compile(m, 0, 0, NULL);
    unsigned pmin = 64, pmax = 0;
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        pmin = p->partitions[k].precision < pmin ? p->partitions[k].precision : pmin;
        pmax = p->partitions[k].precision > pmax ? p->partitions[k].precision : pmax;
    }
    CU_ASSERT(p->n_partitions >= 2);
    CU_ASSERT(pmin < pmax); /* lookups that differ in precision */
    veil_program *two = compile(m, 0, 2, NULL);
    CU_ASSERT(two->n_partitions <= 2);
    check_program(two);
    CU_ASSERT(p->cost_per_sample <= two->cost_per_sample * (1 + 1e-12));
    veil_program *one = compile(m, 0, 1, NULL); /* a set that runs every PBS */
    veil_program *forced = compile(m, 0, 0, one->params->id);
    CU_ASSERT_EQUAL(one->n_partitions, 1);
    CU_ASSERT_EQUAL(forced->n_partitions, 1);
    CU_ASSERT(forced->params == one->params);
    CU_ASSERT(p->cost_per_sample < one->cost_per_sample);
    for (size_t i = 0; i < forced->n_nodes; i++)
        CU_ASSERT_EQUAL(forced->nodes[i].partition, 0);
    printf("\n  mlp_digits: %u partitions (precision %u..%u), 2 at most: %u, --params: %u",
           p->n_partitions, pmin, pmax, two->n_partitions, forced->n_partitions);
    veil_program_free(p);
    veil_program_free(two);
    veil_program_free(forced);
    veil_program_free(one);
    veil_model_free(m);
    printf("\n");
}

/* A program capped at K partitions (--partitions K) costs no more than any
 * K-partition coarsening of the uncapped program: its partitions grouped
 * into K, each group on the set of one of its members, inputs at the
 * uncapped program's width or the master's, the exact noise pass
 * (veil_program_assignment_cost) and the key budget deciding (keys bounded
 * from above, every KSK at the master's D rows). The search narrows the
 * inputs last (narrow_inputs), splitting nodes onto cheaper sets again;
 * before its programs were merged down to the cap they were dropped, and
 * mlp_digits at --partitions 3 kept 35.4 s of un-narrowed inputs where
 * such a coarsening costs less. */
static void test_cap_coarsening(void) {
    enum { K = 3, MAXN = 8 };
    veil_model *m = veil_test_load_model("models/mlp_digits.h5");
    veil_program *u = compile(m, 0, 0, NULL);
    veil_program *p = compile(m, 0, K, NULL);
    check_program(u);
    check_program(p);
    CU_ASSERT(p->n_partitions <= K);
    const uint32_t n = u->n_partitions;
    CU_ASSERT_FATAL(n > K && n <= MAXN);
    for (size_t i = 0; i < u->n_nodes; i++)
        CU_ASSERT_FATAL(!u->nodes[i].wop); /* every partition the search's */
    veil_partition saved[MAXN], grouped[K];
    veil_partition *const own_parts = u->partitions; /* put back at the end */
    memcpy(saved, u->partitions, n * sizeof *saved);
    uint32_t *part = malloc(u->n_nodes * sizeof *part);
    CU_ASSERT_FATAL(part != NULL);
    for (size_t i = 0; i < u->n_nodes; i++)
        part[i] = u->nodes[i].partition;
    const uint32_t w0 = u->input_width;
    const double budget = 1048576.0 * (double)u->options.key_budget_mb;
    double best = INFINITY;
    size_t groupings = 0, tried = 0, feasible = 0;
    /* g: partition -> group, restricted growth strings with K groups */
    uint32_t g[MAXN] = {0};
    for (;;) {
        uint32_t ng = 0;
        for (uint32_t k = 0; k < n; k++)
            ng = g[k] + 1 > ng ? g[k] + 1 : ng;
        if (ng == K) {
            groupings++;
            /* r[j]: the member whose set group j takes, one choice at a time */
            uint32_t r[K], members[K][MAXN], nm[K] = {0};
            for (uint32_t k = 0; k < n; k++)
                members[g[k]][nm[g[k]]++] = k;
            uint32_t idx[K] = {0};
            for (;;) {
                const veil_params *sets[K];
                uint32_t mi = 0;
                for (uint32_t j = 0; j < K; j++) {
                    r[j] = members[j][idx[j]];
                    sets[j] = saved[r[j]].params;
                    const uint32_t d = veil_params_big_dim(sets[j]),
                                   dm = veil_params_big_dim(sets[mi]);
                    if (d > dm || (d == dm && veil_noise_fresh_variance(sets[j]) >
                                                  veil_noise_fresh_variance(sets[mi])))
                        mi = j;
                }
                /* the master in partition 0, as a compiled program has it */
                const veil_params *t = sets[0];
                sets[0] = sets[mi];
                sets[mi] = t;
                double bytes = 0;
                for (uint32_t j = 0; j < K; j++) {
                    int dup = 0;
                    for (uint32_t q = 0; q < j; q++)
                        dup |= sets[q] == sets[j];
                    if (!dup)
                        bytes += (double)veil_eval_key_prepared_bytes(sets[j],
                                                                      veil_params_big_dim(sets[0]));
                }
                for (size_t i = 0; i < u->n_nodes; i++) {
                    const uint32_t j = is_pbs(&u->nodes[i]) ? g[part[i]] : 0;
                    u->nodes[i].partition = j == mi ? 0 : j == 0 ? mi : j;
                }
                for (uint32_t j = 0; j < K; j++) {
                    grouped[j] = saved[0];
                    grouped[j].params = sets[j];
                }
                u->partitions = grouped;
                u->n_partitions = K;
                for (int w = 0; w < 2; w++) {
                    u->input_width = w ? 0 : w0;
                    const double c = budget > 0 && bytes > budget
                                         ? INFINITY
                                         : veil_program_assignment_cost(u, sets);
                    tried++;
                    feasible += c < INFINITY;
                    best = c < best ? c : best;
                }
                uint32_t q = 0;
                while (q < K && ++idx[q] == nm[q])
                    idx[q++] = 0;
                if (q == K) break;
            }
        }
        /* the next restricted growth string */
        int k = (int)n - 1;
        for (; k > 0; k--) {
            uint32_t mx = 0;
            for (int q = 0; q < k; q++)
                mx = g[q] > mx ? g[q] : mx;
            if (g[k] <= mx && g[k] + 1 < K) {
                g[k]++;
                for (uint32_t q = (uint32_t)k + 1; q < n; q++)
                    g[q] = 0;
                break;
            }
        }
        if (k == 0) break;
    }
    /* back to the compiled program (its own array, unchanged: the trials
     * pointed at `grouped`) */
    u->partitions = own_parts;
    u->n_partitions = n;
    u->input_width = w0;
    for (size_t i = 0; i < u->n_nodes; i++)
        u->nodes[i].partition = part[i];
    const veil_params *own[MAXN]; /* and its own variances (the trials left theirs) */
    for (uint32_t k = 0; k < n; k++)
        own[k] = saved[k].params;
    CU_ASSERT(fabs(veil_program_assignment_cost(u, own) - u->cost_per_sample) <=
              1e-9 * u->cost_per_sample);
    CU_ASSERT(groupings >= 1);
    CU_ASSERT(feasible >= 1);
    printf("\n  mlp_digits: %u partitions, %.5g; capped at %u: %.5g (%u partitions); "
           "%zu groupings, %zu of %zu coarsenings feasible, cheapest %.5g",
           n, u->cost_per_sample, K, p->cost_per_sample, p->n_partitions, groupings, feasible,
           tried, best);
    CU_ASSERT(p->cost_per_sample <= best * (1 + 1e-12));
    check_program(u);
    free(part);
    veil_program_free(u);
    veil_program_free(p);
    veil_model_free(m);
    printf("\n");
}

/* A key budget that the default budget's program fits costs nothing: with
 * --key-budget-mb at that program's keys (MiB, rounded up) the compiler finds
 * a program no costlier. The search merges partitions while the keys are
 * over the budget, and narrower inputs (narrow_inputs, last) shrink the
 * KSKs; merging first, mlp_digits at 1018 MiB kept 31.4 s where the default
 * program (1017 MiB) costs 23.6 s. */
static void test_budget_fits(void) {
    veil_model *m = veil_test_load_model("models/mlp_digits.h5");
    veil_program *u = compile(m, 0, 0, NULL);
    CU_ASSERT_FATAL(u->key_bytes > 0);
    veil_compile_options o;
    veil_compile_options_default(&o);
    CU_ASSERT_FATAL(u->key_bytes < 1048576.0 * (double)o.key_budget_mb);
    o.key_budget_mb = (unsigned)ceil(u->key_bytes / 1048576.0);
    veil_program *p = NULL;
    CU_ASSERT_FATAL(veil_program_compile(m, &o, &p) == VEIL_OK);
    check_program(p);
    CU_ASSERT(p->key_bytes <= 1048576.0 * (double)o.key_budget_mb);
    printf("\n  mlp_digits: %.5g with %.0f MiB of keys; --key-budget-mb %u: %.5g with %.0f MiB",
           u->cost_per_sample, u->key_bytes / 1048576.0, o.key_budget_mb, p->cost_per_sample,
           p->key_bytes / 1048576.0);
    CU_ASSERT(p->cost_per_sample <= u->cost_per_sample * (1 + 1e-12));
    veil_program_free(u);
    veil_program_free(p);
    veil_model_free(m);
    printf("\n");
}
#endif

/* For programs of two partitions (capped with --partitions 2), every pair
 * of parameter sets of the table: the compiler's is the cheapest pair the
 * noise model accepts. */
static void test_exhaustive(void) {
#ifndef SWEEP_ALL
    static const char *const models[] = {"models/source_bc.h5"};
    static const unsigned rb[] = {0, 4};
#else
    static const char *const models[] = {"models/mlp_digits.h5", "models/target_bc.h5"};
    static const unsigned rb[] = {0, 6, 4};
#endif
    const size_t ns = veil_params_count();
    size_t cases = 0;
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        veil_model *m = veil_test_load_model(models[k]);
        for (size_t r = 0; r < sizeof rb / sizeof *rb; r++) {
            veil_program *p = compile(m, rb[r], 2, NULL);
            const uint32_t np = p->n_partitions;
            CU_ASSERT_FATAL(np >= 1 && np <= 2);
            const veil_params *sets[2], *best[2] = {NULL, NULL};
            double best_cost = INFINITY;
            size_t feasible = 0, tried = 0;
            for (size_t a = 0; a < ns; a++)
                for (size_t b = 0; b < (np == 2 ? ns : 1); b++) {
                    sets[0] = veil_params_at(a);
                    sets[1] = veil_params_at(b);
                    const double c = veil_program_assignment_cost(p, sets);
                    tried++;
                    if (c < INFINITY) feasible++;
                    if (c < best_cost) {
                        best_cost = c;
                        best[0] = sets[0];
                        best[1] = sets[1];
                    }
                }
            CU_ASSERT_EQUAL(tried, np == 2 ? ns * ns : ns);
            CU_ASSERT(feasible >= 1);
            printf("\n  %-12s rounding %u, %u partitions: %zu of %zu assignments feasible; "
                   "cheapest %.4g (%s%s%s), the compiler's %.4g",
                   m->name, rb[r], np, feasible, tried, best_cost, best[0] ? best[0]->id : "-",
                   np == 2 ? " + " : "", np == 2 && best[1] ? best[1]->id : "", p->cost_per_sample);
            CU_ASSERT(p->cost_per_sample <= best_cost * (1 + 1e-12));
            /* and the program was left as compiled */
            check_program(p);
            veil_program_free(p);
            cases++;
        }
        veil_model_free(m);
    }
    CU_ASSERT_EQUAL(cases, (sizeof models / sizeof *models) * (sizeof rb / sizeof *rb));
    printf("\n");
}

/* Every assignment of a parameter set to each PBS node (a partition per
 * node, more freedom than the compiler's partitions have), the exact noise
 * pass (veil_program_assignment_cost) and the key budget deciding: none is
 * cheaper than the compiler's program. The search gives every node the
 * noise of its own producers (issue 11: a lookup's input carries its
 * producers' output variance, not the noisiest set's), so it reaches this
 * optimum; before the node moves (split_nodes) mlp_digits 6-bit was 9%
 * above it. */
static int node_reads(const veil_node *n, const veil_params *ps) {
    /* a ROUND node of 1-bit chunks reads at 0 bits: the nn-p0-* sets too */
    unsigned prec = n->kind == VEIL_NODE_LUT ? n->in_bits : 0;
    for (unsigned q = 0; n->kind == VEIL_NODE_ROUND && q < veil_round_chunk_count(n); q++)
        prec = veil_round_chunk_get(n, q).read_bits > prec ? veil_round_chunk_get(n, q).read_bits
                                                           : prec;
    return ps->precision >= prec && ((uint64_t)1 << prec) <= ps->poly_size && ps->poly_size <= 8192;
}

static void test_per_node_exhaustive(void) {
#ifndef SWEEP_ALL
    /* 6 bits: source_bc is one of the two programs below issue 11's bar there
     * (docs/results/amd-cpu-joint.json: no per-node assignment beats it) */
    static const char *const models[] = {"models/tiny.h5", "models/source_bc.h5"};
    static const unsigned rb[] = {4, 6};
#else
    static const char *const models[] = {"models/mlp_digits.h5"};
    static const unsigned rb[] = {4, 6};
#endif
    size_t cases = 0;
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        veil_model *m = veil_test_load_model(models[k]);
        for (size_t r = 0; r < sizeof rb / sizeof *rb; r++) {
            veil_program *p = compile(m, rb[r], 0, NULL);
            check_program(p);
            enum { MAXK = 6 };
            uint32_t node[MAXK], K = 0;
            for (size_t i = 0; i < p->n_nodes; i++)
                if (is_pbs(&p->nodes[i])) {
                    CU_ASSERT_FATAL(K < MAXK);
                    node[K++] = (uint32_t)i;
                }
            /* candidates per node */
            const size_t ns = veil_params_count();
            const veil_params **cand = calloc(K * ns, sizeof *cand);
            size_t nc[MAXK], total = 1;
            for (uint32_t q = 0; q < K; q++) {
                nc[q] = 0;
                for (size_t a = 0; a < ns; a++)
                    if (node_reads(&p->nodes[node[q]], veil_params_at(a)))
                        cand[q * ns + nc[q]++] = veil_params_at(a);
                CU_ASSERT_FATAL(nc[q] > 0);
                total *= nc[q];
            }
            /* a partition per node: the program's partitions saved, then
             * restored below */
            const uint32_t np0 = p->n_partitions;
            veil_partition *saved = malloc(np0 * sizeof *saved);
            uint32_t saved_part[MAXK];
            memcpy(saved, p->partitions, np0 * sizeof *saved);
            veil_partition *grown = realloc(p->partitions, (K > np0 ? K : np0) * sizeof *grown);
            CU_ASSERT_FATAL(grown != NULL);
            p->partitions = grown;
            for (uint32_t q = 0; q < K; q++) {
                saved_part[q] = p->nodes[node[q]].partition;
                p->partitions[q] = saved[saved_part[q]];
                p->nodes[node[q]].partition = q;
            }
            p->n_partitions = K;
            const double budget = 1048576.0 * (double)p->options.key_budget_mb;
            size_t idx[MAXK] = {0}, tried = 0, feasible = 0;
            double best = INFINITY;
            for (;;) {
                const veil_params *sets[MAXK];
                uint32_t mi = 0;
                for (uint32_t q = 0; q < K; q++) {
                    sets[q] = cand[q * ns + idx[q]];
                    const uint32_t d = veil_params_big_dim(sets[q]),
                                   dm = veil_params_big_dim(sets[mi]);
                    if (d > dm || (d == dm && veil_noise_fresh_variance(sets[q]) >
                                                  veil_noise_fresh_variance(sets[mi])))
                        mi = q;
                }
                double bytes = 0; /* distinct sets' keys, from the master's big key */
                for (uint32_t q = 0; q < K; q++) {
                    int dup = 0;
                    for (uint32_t j = 0; j < q; j++)
                        dup |= sets[j] == sets[q];
                    if (!dup)
                        bytes += (double)veil_eval_key_prepared_bytes(
                            sets[q], veil_params_big_dim(sets[mi]));
                }
                /* the master in partition 0, as a compiled program has it */
                const veil_params *t = sets[0];
                sets[0] = sets[mi];
                sets[mi] = t;
                p->nodes[node[0]].partition = mi;
                p->nodes[node[mi]].partition = 0;
                const double c =
                    budget > 0 && bytes > budget ? INFINITY : veil_program_assignment_cost(p, sets);
                p->nodes[node[0]].partition = 0;
                p->nodes[node[mi]].partition = mi;
                tried++;
                feasible += c < INFINITY;
                best = c < best ? c : best;
                uint32_t q = 0;
                while (q < K && ++idx[q] == nc[q])
                    idx[q++] = 0;
                if (q == K) break;
            }
            CU_ASSERT_EQUAL(tried, total);
            CU_ASSERT(feasible >= 1);
            /* back to the compiled program */
            for (uint32_t q = 0; q < K; q++)
                p->nodes[node[q]].partition = saved_part[q];
            memcpy(p->partitions, saved, np0 * sizeof *saved);
            p->n_partitions = np0;
            const veil_params **own = calloc(np0, sizeof *own);
            for (uint32_t q = 0; q < np0; q++)
                own[q] = p->partitions[q].params;
            CU_ASSERT(fabs(veil_program_assignment_cost(p, own) - p->cost_per_sample) <=
                      1e-9 * p->cost_per_sample);
            printf("\n  %-12s rounding %u, %u PBS nodes: %zu of %zu per-node assignments "
                   "feasible; cheapest %.5g, the compiler's %.5g (%u partitions)",
                   m->name, rb[r], K, feasible, tried, best, p->cost_per_sample, np0);
            CU_ASSERT(p->cost_per_sample <= best * (1 + 1e-12));
            check_program(p);
            free(own);
            free(saved);
            free(cand);
            veil_program_free(p);
            cases++;
        }
        veil_model_free(m);
    }
    CU_ASSERT_EQUAL(cases, (sizeof models / sizeof *models) * (sizeof rb / sizeof *rb));
    printf("\n");
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("partitions", NULL, NULL);
    if (!s) return CU_get_error();
#ifndef SWEEP_ALL
    VEIL_ADD_TEST(s, test_golden_default);
    VEIL_ADD_TEST(s, test_partition_counts);
    VEIL_ADD_TEST(s, test_cap_coarsening);
    VEIL_ADD_TEST(s, test_budget_fits);
#endif
    VEIL_ADD_TEST(s, test_noise_and_contract);
    VEIL_ADD_TEST(s, test_exhaustive);
    VEIL_ADD_TEST(s, test_per_node_exhaustive);
    return veil_test_run();
}
