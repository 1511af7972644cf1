/* simulate.c — clear int64 execution of a veil_program, bit-exact to an
 * encrypted run without PBS failure (see veil/program.h), with optional
 * sampling of the modelled noise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_ops.h"
#include "program_internal.h"
#include "veil/noise.h"
#include "veil/program.h"

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double normal(uint64_t *s) {
    double u1 = ((double)(splitmix(s) >> 11) + 0.5) * 0x1p-53;
    double u2 = (double)(splitmix(s) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The error of one PBS read, in units of the read step (2^(63 - in_bits) on
 * the torus): Gaussian with the modelled variance of the input (times
 * 4^shift), the keyswitch and the modulus switch. */
static double read_error(veil_sim_noise *nz, const veil_program *p, const veil_node *n,
                         const veil_params *ps, unsigned pbs, double value_var, unsigned shift,
                         unsigned in_bits) {
    /* the node's partition's set, keyswitching the rows of what its pbs-th
     * PBS reads (veil_node_read_dim, the compiler's noise pass; at most the
     * master key's) */
    const uint32_t w = veil_node_read_dim(p, n, ps, pbs);
    const uint32_t rows = w ? w : veil_params_big_dim(nz->params);
    double var = ldexp(value_var, 2 * (int)shift) + veil_noise_ks_variance_dim(ps, rows) +
                 veil_noise_ms_variance(ps);
    return normal(&nz->state) * sqrt(var) / ldexp(1.0, 63 - (int)in_bits);
}

/* The parameter set a PBS node runs with. */
static const veil_params *node_set(const veil_program *p, const veil_node *n) {
    return n->partition < p->n_partitions ? p->partitions[n->partition].params : p->params;
}

/* veil_node_table_of(n, i) for i = 0, 1, 2, ... by counting (a lookup's
 * loop over a batch: no divisions per element): ch the table of element i,
 * e = i mod size, q = e mod table_inner. */
typedef struct table_walk {
    size_t e, q;
    uint32_t ch;
} table_walk;

static inline void table_walk_next(table_walk *w, const veil_node *n) {
    if (++w->e == n->size) {
        w->e = w->q = 0;
        w->ch = 0;
    } else if (n->n_tables > 1 && ++w->q == n->table_inner) {
        w->q = 0;
        w->ch = w->ch + 1 == n->n_tables ? 0 : w->ch + 1;
    }
}

void veil_node_eval(const veil_program *p, const veil_node *n, const int64_t *const *in,
                    size_t batch, int64_t *out, veil_sim_noise *nz, veil_sim_stats *stats) {
    const veil_node *x = n->n_in ? &p->nodes[n->in[0]] : NULL;
    switch (n->kind) {
    case VEIL_NODE_INPUT:
    case VEIL_NODE_OUTPUT:
        memcpy(out, in[0], batch * n->size * sizeof *out);
        break;
    case VEIL_NODE_ADD:
        veil_op_add(in[0], in[1], batch * n->size, out);
        break;
    case VEIL_NODE_LINEAR:
        switch (n->linear) {
        case VEIL_LINEAR_DENSE:
            veil_op_dense(in[0], batch, n->n_weight_cols, n->weight, n->bias, n->n_weight_rows,
                          out);
            break;
        case VEIL_LINEAR_CONV2D:
        case VEIL_LINEAR_SUMPOOL2D:
            veil_op_conv2d(in[0], batch, &n->conv, n->linear == VEIL_LINEAR_SUMPOOL2D, n->weight,
                           n->bias, out);
            break;
        case VEIL_LINEAR_FLATTEN:
            memcpy(out, in[0], batch * n->size * sizeof *out);
            break;
        case VEIL_LINEAR_CONCAT: {
            size_t sizes[64];
            VEIL_ASSERT(n->n_in <= 64);
            for (uint32_t j = 0; j < n->n_in; j++)
                sizes[j] = p->nodes[n->in[j]].size;
            veil_op_concat(in, sizes, n->n_in, batch, out);
            break;
        }
        }
        break;
    case VEIL_NODE_ROUND: {
        const unsigned k = n->round_bits;
        for (size_t i = 0; i < batch * n->size; i++) {
            int64_t v = (int64_t)((uint64_t)in[0][i] + (uint64_t)n->offset);
            int64_t r = veil_floor_shift(v, k);
            if (nz) {
                /* each chunk PBS may fail; a failed chunk leaves the rounded
                 * value off by one unit of that chunk's top bit, which is at
                 * worst one step of r for the last chunk: model it as +-1.
                 * Each read sees the variance accumulated by the PBS before
                 * it, as in the noise pass. */
                const veil_params *ps = node_set(p, n);
                const double pbs_var = veil_noise_pbs_output_variance(ps);
                double var = x->variance;
                unsigned done = 0;
                for (unsigned q = 0; q < veil_round_chunk_count(n); q++) {
                    const veil_round_chunk c = veil_round_chunk_get(n, q);
                    for (unsigned t = 0; t < c.pbs; t++) {
                        double e = read_error(nz, p, n, ps, done++, var, c.shift, c.read_bits);
                        if (fabs(e) >= 0.5) {
                            r += e > 0 ? 1 : -1;
                            if (stats) stats->pbs_errors++;
                        }
                        var = veil_round_variance_after_pbs(var, pbs_var);
                    }
                }
            }
            out[i] = (int64_t)((uint64_t)r << k);
        }
        break;
    }
    case VEIL_NODE_LUT: {
        const unsigned k = n->round_bits;
        const int64_t t = (int64_t)1 << n->in_bits;
        if (n->wop) {
            /* bit extraction reads the index's low in_bits bits (no padding
             * bit); noise injection does not sample its failures (the noise
             * pass holds its bit reads to the program's target like any
             * read) */
            table_walk tw = {0};
            for (size_t i = 0; i < batch * n->size; i++, table_walk_next(&tw, n)) {
                const int64_t v = (int64_t)((uint64_t)in[0][i] + (uint64_t)n->offset);
                const uint64_t r = (uint64_t)veil_floor_shift(v, k) & (uint64_t)(t - 1);
                out[i] = n->tables[tw.ch * (size_t)t + r];
            }
            break;
        }
        table_walk tw = {0};
        for (size_t i = 0; i < batch * n->size; i++, table_walk_next(&tw, n)) {
            int64_t v = (int64_t)((uint64_t)in[0][i] + (uint64_t)n->offset);
            int64_t r = veil_floor_shift(v, k);
            int neg = 0;
            const size_t ch = tw.ch;
            if (nz) {
                double e =
                    read_error(nz, p, n, node_set(p, n), 0, x->variance, n->shift, n->in_bits);
                double pos;
                if (n->approximate) {
                    /* the phase is (v - 2^(k-1) + 1/2) / 2^k steps: the PBS
                     * rounds it to the nearest box */
                    pos = ((double)v - ldexp(1.0, (int)k - 1) + 0.5) / ldexp(1.0, (int)k) + e;
                } else {
                    pos = (double)r + e;
                }
                int64_t rn = (int64_t)floor(pos + 0.5);
                if (rn != r && stats) stats->pbs_errors++;
                r = rn;
            }
            /* What the PBS reads, also for a value that left its compiled
             * range: the index modulo 2t, negacyclic (the padding bit):
             * [t, 2t) reads -T[r - t], [-t, 0) reads -T[r + t]. */
            int64_t m2 = (int64_t)((uint64_t)r & (uint64_t)(2 * t - 1)); /* t a power of 2 */
            if (m2 >= t) {
                neg = 1;
                m2 -= t;
            }
            r = m2;
            const int64_t *T = n->tables + ch * (size_t)t;
            if (!neg)
                out[i] = T[r];
            else if (n->rotation_results > 1)
                out[i] = veil_lut_step_wrapped(T, (size_t)t, (size_t)r);
            else
                out[i] = (int64_t)(0 - (uint64_t)T[r]);
        }
        break;
    }
    }
}

veil_status veil_program_simulate(const veil_program *p, const int64_t *const *inputs, size_t batch,
                                  int64_t *const *outputs, const veil_sim_options *opts,
                                  veil_sim_stats *stats) {
    if (!p || !inputs || !outputs)
        return veil_error(VEIL_ERR_ARG, "veil_program_simulate: NULL argument");
    if (stats) memset(stats, 0, sizeof *stats);
    veil_sim_noise nz = {0}, *pnz = NULL;
    if (opts && opts->inject_noise) {
        if (!p->params)
            return veil_error(VEIL_ERR_ARG, "simulate: noise injection needs a parameter set (%s)",
                              p->params_note ? p->params_note : "none chosen");
        nz.state = opts->seed;
        nz.params = p->params;
        pnz = &nz;
    }
    /* last use of every node, to free values early */
    size_t *last = calloc(p->n_nodes, sizeof *last);
    int64_t **val = calloc(p->n_nodes, sizeof *val);
    if (!last || !val) {
        free(last);
        free(val);
        return veil_error(VEIL_ERR_NOMEM, "simulate: out of memory");
    }
    for (size_t i = 0; i < p->n_nodes; i++)
        for (uint32_t j = 0; j < p->nodes[i].n_in; j++)
            last[p->nodes[i].in[j]] = i;
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < p->n_nodes && st == VEIL_OK; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind == VEIL_NODE_OUTPUT) continue;
        val[i] = malloc(batch * n->size * sizeof(int64_t) + 1);
        if (!val[i]) {
            st = veil_error(VEIL_ERR_NOMEM, "simulate: out of memory");
            break;
        }
        if (n->kind == VEIL_NODE_INPUT) {
            uint32_t k = 0;
            while (k < p->n_inputs && p->input_nodes[k] != i)
                k++;
            memcpy(val[i], inputs[k], batch * n->size * sizeof(int64_t));
        } else {
            const int64_t *ins[64];
            for (uint32_t j = 0; j < n->n_in && j < 64; j++)
                ins[j] = val[n->in[j]];
            veil_node_eval(p, n, ins, batch, val[i], pnz, stats);
        }
        /* range check: a value outside [lo, hi] would spill into the padding
         * bit (or read a wrong table entry) when encrypted */
        if (n->kind != VEIL_NODE_ROUND) {
            for (size_t e = 0; e < batch * n->size; e++) {
                int64_t v = val[i][e];
                if (v < n->lo || v > n->hi) {
                    if (stats && stats->range_errors == 0)
                        snprintf(stats->first_error, sizeof stats->first_error,
                                 "layer %s: sample %zu element %zu = %lld outside the compiled "
                                 "range [%lld, %lld]",
                                 n->layer, e / n->size, e % n->size, (long long)v, (long long)n->lo,
                                 (long long)n->hi);
                    if (stats) stats->range_errors++;
                }
            }
        }
        for (uint32_t j = 0; j < n->n_in; j++) {
            uint32_t s = n->in[j];
            if (last[s] == i && p->nodes[s].kind != VEIL_NODE_INPUT) {
                int used_by_output = 0;
                for (uint32_t o = 0; o < p->n_outputs; o++)
                    if (p->nodes[p->output_nodes[o]].in[0] == s) used_by_output = 1;
                if (!used_by_output) {
                    free(val[s]);
                    val[s] = NULL;
                }
            }
        }
    }
    for (uint32_t o = 0; st == VEIL_OK && o < p->n_outputs; o++) {
        const veil_node *n = &p->nodes[p->output_nodes[o]];
        uint32_t src = n->in[0];
        const int64_t *sv = val[src];
        if (!sv) { /* an input used directly as an output */
            uint32_t k = 0;
            while (k < p->n_inputs && p->input_nodes[k] != src)
                k++;
            sv = inputs[k];
        }
        /* what decryption returns (veil_program_decode): the value mod
         * 2^(width+1), represented in [lo, lo + 2^(width+1)); the value
         * itself inside the compiled range (every node computes mod
         * 2^(width+1) as the torus does, each at its own width: a value
         * crosses widths only through a lookup, which reads its index mod
         * 2^(in_bits+1), a divisor; so only the output needs it) */
        const uint64_t mask = ((uint64_t)1 << (n->width + 1)) - 1;
        for (size_t e = 0; e < batch * n->size; e++)
            outputs[o][e] =
                (int64_t)((uint64_t)n->lo + (((uint64_t)sv[e] - (uint64_t)n->lo) & mask));
    }
    for (size_t i = 0; i < p->n_nodes; i++)
        free(val[i]);
    free(val);
    free(last);
    return st;
}
