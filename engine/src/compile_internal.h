/* compile_internal.h — what the compiler's files share (private to
 * engine/src): compile.c builds the graph (builder, lookups, range check,
 * encoding widths) and calls the parameter choice (compile_params.c) and the
 * report (compile_report.c) on the built program. */
#ifndef VEIL_COMPILE_INTERNAL_H
#define VEIL_COMPILE_INTERNAL_H

#include <stdint.h>

#include "veil/program.h"
#include "veil/status.h"

/* Set ps can read prec bits: its table holds 2^prec boxes and its p_fail was
 * derived for prec (and N <= max_poly when max_poly != 0). prec 0 (the sign
 * reads of 1-bit rounding chunks) is read by every set, the nn-p0-* sets
 * (derived at precision 0, 2^62 of margin) among them. Inline: the
 * parameter search asks it for every PBS node of every trial. */
static inline int veil_set_reads(const veil_params *ps, unsigned prec, uint32_t max_poly) {
    return ps->precision >= prec && ((uint64_t)1 << prec) <= ps->poly_size &&
           (!max_poly || ps->poly_size <= max_poly);
}
/* The widest read of a PBS node (bits of precision, without padding; 0 when
 * a ROUND node reads only signs: veil/program.h "Rounding"). A ROUND node's
 * chunk 0 is its widest: every chunk has chunk_bits bits but the last, which
 * may have fewer. */
static inline unsigned veil_pbs_prec(const veil_node *n) {
    if (n->kind == VEIL_NODE_LUT) return n->in_bits ? n->in_bits : 1;
    return veil_round_chunk_count(n) ? veil_round_chunk_get(n, 0).read_bits : 0;
}

/* Parameter sets for p's PBS (veil/program.h: one set forced by params_id or
 * options.max_partitions 1, else the cheapest single set, then the partition
 * search when it beats it): sets p->partitions and every LUT/ROUND node's
 * partition. VEIL_ERR_UNSUPPORTED naming the layer (or the key budget) when
 * no set fits; VEIL_ERR_ARG for an unknown params_id. */
/* Every node's noise_w2 and add_correlated (veil/program.h), from the
 * graph and its weights: before any noise pass. */
veil_status veil_noise_factors(veil_program *p);
veil_status veil_choose_params(veil_program *p, const char *params_id);
/* The chosen partitions' final variances and statistics (per node variance
 * and p_fail, per partition precision, 2-norm, PBS and p_fail; the program's
 * params, cost per sample and key bytes). */
veil_status veil_fill_partitions(veil_program *p);
/* --objective latency (options.latency_cores): after veil_fill_partitions,
 * replaces the search partitions' sets one at a time by any classic or
 * multi-bit set that lowers the modelled latency at batch 1 and keeps every
 * PBS and output under p_error, a sample within options.global_p_error (when
 * set: veil_program_assignment_cost) and the keys in their budget, then fills
 * the partitions again; sets p->latency_per_sample. A forced set
 * (params_id, not kept in p->options) stays: only the figure. */
veil_status veil_latency_sets(veil_program *p, const char *params_id);
/* What the variants of one compile are compared by: latency_per_sample
 * with --objective latency, else cost_per_sample. */
static inline double veil_objective_cost(const veil_program *p) {
    return p->options.latency_cores ? p->latency_per_sample : p->cost_per_sample;
}
/* The failure figures of p from its nodes' read_log2_pfail (a filled noise
 * pass): returns the union bound sum p_i over one sample's PBS reads (each
 * value's worst read, veil_node_results of them per node) and output
 * decodings, what --global-p-error's budget caps; share (NULL, or n_share +
 * 1 doubles): those sums per node partition (0..n_share), the outputs' (and
 * any partition index past n_share) at share[n_share]; log2_sample (or
 * NULL): log2 of 1 - prod (1 - p_i), the report's per sample figure. The
 * one rule for the report and the budget. */
double veil_program_p_fail_shares(const veil_program *p, double *share, uint32_t n_share,
                                  double *log2_sample);
/* A guard on the parameter search's reuse of the last trial (compile_params.c
 * trial_cache and pass_cache: a trial starts its cost sum and noise pass at
 * the first PBS node whose set changed): with on, every search trial that
 * runs its noise pass is computed again from node 0 and compared bit for bit
 * (tests; a compile is several times slower). Counts reset by each call;
 * veil_search_reuse_counts gives the trials checked and those that differed
 * (any compile of the process, threads included). */
void veil_search_check_reuse(int on);
void veil_search_reuse_counts(unsigned long *trials, unsigned long *mismatches);
/* p->report: one line per model layer with work, and the program's PBS count
 * and p_fail per PBS and per sample. */
veil_status veil_build_report(veil_program *p);

#endif
