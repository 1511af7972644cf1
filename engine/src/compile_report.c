/* compile_report.c — the per-layer report of a compiled program
 * (veil_layer_report, built once at compile time) and its printout
 * (veil_program_print_report). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile_internal.h"
#include "veil/cost.h"
#include "veil/noise.h"
#include "veil/program.h"

/* ---- report ---------------------------------------------------------------- */

/* Every PBS of a layer's nodes (its lookups, their rounding chunks, a
 * decomposed lookup's parts); *worst_pf raised to their worst log2 p_fail. */
static uint64_t layer_pbs(const veil_program *p, const char *layer, double *worst_pf) {
    uint64_t pbs = 0;
    for (size_t j = 0; j < p->n_nodes; j++) {
        const veil_node *q = &p->nodes[j];
        if ((q->kind == VEIL_NODE_LUT || q->kind == VEIL_NODE_ROUND) && !strcmp(q->layer, layer)) {
            pbs += q->pbs_per_sample;
            *worst_pf = q->read_log2_pfail > *worst_pf ? q->read_log2_pfail : *worst_pf;
        }
    }
    return pbs;
}

veil_status veil_build_report(veil_program *p) {
    p->report = calloc(p->n_nodes + 1, sizeof *p->report);
    if (!p->report) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    const double pbs = p->params ? veil_noise_pbs_output_variance(p->params) : 1;
    p->pbs_per_sample = 0;
    p->log2_p_fail_pbs = -INFINITY;
    for (size_t i = 0; i < p->n_nodes; i++) {
        veil_node *n = &p->nodes[i];
        if (n->kind == VEIL_NODE_INPUT || n->kind == VEIL_NODE_OUTPUT) continue;
        if (n->kind == VEIL_NODE_ROUND || n->kind == VEIL_NODE_LUT) {
            p->pbs_per_sample += n->pbs_per_sample;
            if (n->read_log2_pfail > p->log2_p_fail_pbs) p->log2_p_fail_pbs = n->read_log2_pfail;
        }
        if (n->kind == VEIL_NODE_ROUND) continue; /* reported with its lookup */
        if (p->n_report && !strcmp(p->report[p->n_report - 1].layer, n->layer)) {
            /* a decomposed lookup: its nodes make one line */
            veil_layer_report *r = &p->report[p->n_report - 1];
            if (n->kind == VEIL_NODE_LUT && strcmp(r->op, "lut")) {
                /* a layer made of lookups and additions (a max pool, a
                 * product): its PBS are counted below */
                r->in_bits = n->in_bits > r->in_bits ? n->in_bits : r->in_bits;
                r->log2_p_fail =
                    n->read_log2_pfail > r->log2_p_fail ? n->read_log2_pfail : r->log2_p_fail;
            } else if (n->kind == VEIL_NODE_LUT) {
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
            const uint64_t pbs_n = layer_pbs(p, n->layer, &pf);
            r->op = "lut";
            r->acc_bits = veil_bits_for_span(acc->lo, acc->hi);
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
        if (n->report_op) r->op = n->report_op;
    }
    /* a layer made of lookups and additions (its row's op not "lut"): every
     * PBS of the layer, its lookups' rounding chunks included */
    for (size_t k = 0; k < p->n_report; k++) {
        veil_layer_report *r = &p->report[k];
        if (strcmp(r->op, "lut")) r->lookups = layer_pbs(p, r->layer, &r->log2_p_fail);
    }
    /* per sample: every PBS read and output decoding (the noise pass holds
     * an output's half step of margin to p_error like a read); each
     * partition's share, what --global-p-error spends */
    double *share = calloc(p->n_partitions + 1, sizeof *share);
    if (!share) return veil_error(VEIL_ERR_NOMEM, "compile: out of memory");
    veil_program_p_fail_shares(p, share, p->n_partitions, &p->log2_p_fail_sample);
    for (uint32_t k = 0; k < p->n_partitions; k++)
        p->partitions[k].p_fail_share = share[k];
    p->p_fail_outputs_share = share[p->n_partitions];
    free(share);
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
        } else if (r->lookups) {
            /* a max pool: lookups of the differences, no table of the model's */
            fprintf(f, "%-24s %-9s %8u %10llu %8s %6s %6u %10s %9.1f\n", r->layer, r->op,
                    r->acc_bits, (unsigned long long)r->lookups, "-", "-", r->in_bits, "-",
                    r->log2_p_fail);
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
    fprintf(f, "  %-4s %-5s %9s %-26s %5s %2s %6s %2s %12s %9s\n", "part", "prec", "norm2", "set",
            "n", "k", "N", "l", "PBS/sample", "log2 pf");
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        const veil_partition *pt = &p->partitions[k];
        fprintf(f, "  %-4u %-5u %9.3g %-26s %5u %2u %6u %2u %12llu %9.1f\n", k, pt->precision,
                pt->norm2, pt->params->id, pt->params->lwe_dim, pt->params->glwe_dim,
                pt->params->poly_size, pt->params->pbs_level,
                (unsigned long long)pt->pbs_per_sample, pt->log2_p_fail);
    }
    size_t fitted = 0, scaled = 0, multibit = 0;
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        fitted += veil_cost_cpu_origin(p->partitions[k].params) != VEIL_COST_MEASURED;
        scaled += veil_cost_cuda_origin(p->partitions[k].params) != VEIL_COST_MEASURED;
        multibit += p->partitions[k].params->grouping >= 2;
    }
    fprintf(f,
            "predicted cost per sample %.4g ms on one cpu core (measured per set: %s%s%s%s), "
            "%.4g ms on cuda at full throughput (bench_gpu, NVIDIA H100%s)\n",
            p->cost_per_sample, veil_cost_source(),
            multibit ? "; multi-bit sets by their ratio to a classic one, " : "",
            multibit ? veil_cost_multibit_source() : "",
            fitted ? "; some sets from the table's fit" : "", p->cost_per_sample_cuda,
            scaled ? "; sets without a GPU figure scaled from their CPU figure" : "");
    if (p->options.latency_cores)
        fprintf(f,
                "objective latency: predicted %.4g ms for one sample at batch 1 on the cpu "
                "backend with %u cores (the cost table's figures, lone lookups and multi-bit "
                "teams by their measured ratios)\n",
                p->latency_per_sample, p->options.latency_cores);
    if (p->options.key_budget_mb)
        fprintf(f, "prepared evaluation keys %.0f MiB (budget %u MiB, --key-budget-mb)\n",
                p->key_bytes / 1048576.0, p->options.key_budget_mb);
    else
        fprintf(f, "prepared evaluation keys %.0f MiB (no budget)\n", p->key_bytes / 1048576.0);
    /* the union bound over the same reads: what --global-p-error caps */
    double spent = p->p_fail_outputs_share;
    for (uint32_t k = 0; k < p->n_partitions; k++)
        spent += p->partitions[k].p_fail_share;
    fprintf(f,
            "PBS per sample %llu; p_fail per PBS <= 2^%.1f (target 2^%.1f); per sample 2^%.1f "
            "(sum over reads %.6g)\n",
            (unsigned long long)p->pbs_per_sample, p->log2_p_fail_pbs,
            log2(veil_compile_options_pbs_p_error(&p->options)), p->log2_p_fail_sample, spent);
    if (p->options.global_p_error > 0) {
        /* the budget, what the program spends of it and on what */
        fprintf(f,
                "failure budget per sample (--global-p-error) %.3g = 2^%.1f: spent %.3g = 2^%.1f "
                "(%.1f%%, sum over reads and decodings), of it",
                p->options.global_p_error, log2(p->options.global_p_error), spent, log2(spent),
                100.0 * spent / p->options.global_p_error);
        for (uint32_t k = 0; k < p->n_partitions; k++)
            fprintf(f, " partition %u %.1f%%", k,
                    spent > 0 ? 100.0 * p->partitions[k].p_fail_share / spent : 0.0);
        fprintf(f, " outputs %.1f%%\n", spent > 0 ? 100.0 * p->p_fail_outputs_share / spent : 0.0);
    }
    uint64_t rot = 0, res = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].rotation_results > 1) {
            rot += p->nodes[i].pbs_per_sample;
            res += veil_node_results(&p->nodes[i]);
        }
    if (rot)
        fprintf(f,
                "threshold reads: %llu of those PBS give %llu results, several from one blind "
                "rotation\n",
                (unsigned long long)rot, (unsigned long long)res);
    uint64_t wop = 0, wop_pbs = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].wop) {
            wop += p->nodes[i].size;
            wop_pbs += p->nodes[i].pbs_per_sample;
        }
    if (wop)
        fprintf(f,
                "WoP-PBS (--wop): %llu lookups a sample, %llu of those PBS (a bit each; plus "
                "their circuit bootstrapping and vertical packing, in the cpu cost above; "
                "in the cuda cost an estimate: the cpu's times its set's KS-PBS cuda/cpu ratio)\n",
                (unsigned long long)wop, (unsigned long long)wop_pbs);
    if (p->options.rounding == VEIL_ROUNDING_EXACT) {
        uint64_t extra = 0;
        for (size_t i = 0; i < p->n_nodes; i++)
            if (p->nodes[i].kind == VEIL_NODE_ROUND) extra += p->nodes[i].pbs_per_sample;
        if (extra)
            fprintf(f,
                    "exact rounding: %llu of those PBS clear low bits (2 per chunk, 1 per "
                    "1-bit chunk)\n",
                    (unsigned long long)extra);
    }
}
