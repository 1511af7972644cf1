/* program_internal.h — shared by the compiler (compile*.c) and simulate.c
 * (private). */
#ifndef VEIL_PROGRAM_INTERNAL_H
#define VEIL_PROGRAM_INTERNAL_H

#include "veil/params.h"
#include "veil/program.h"

/* Noise sampling state of the simulator (NULL: exact). */
typedef struct veil_sim_noise {
    uint64_t state; /* splitmix64 */
    const veil_params *params;
} veil_sim_noise;

/* Evaluates node n on its operands' values (in[j]: batch * size of operand j)
 * into out (batch * n->size). INPUT/OUTPUT copy in[0]. */
void veil_node_eval(const veil_program *p, const veil_node *n, const int64_t *const *in,
                    size_t batch, int64_t *out, veil_sim_noise *noise, veil_sim_stats *stats);

/* floor(a / 2^k) for any sign. */
static inline int64_t veil_floor_shift(int64_t a, unsigned k) {
    return k ? (a >> k) : a; /* arithmetic shift is floor on gcc/clang */
}

/* Total variance at the read of a PBS whose input has `value_var` before the
 * 2^shift multiplication. */
double veil_read_variance(const veil_params *ps, double value_var, unsigned shift);

/* A ROUND node's value variance after one more of its chunk PBS with set ps:
 * every chunk PBS output is added into V (veil/program.h "Rounding"), so the
 * t-th PBS of the node (chunks in order, t from 0) reads the input's variance
 * plus t PBS output variances, before its 2^shift. The rule of the noise
 * pass (compile_params.c noise_pass, p_fail per read) and of the simulator's
 * sampled noise (simulate.c). */
static inline double veil_round_variance_after_pbs(double value_var, double pbs_output_var) {
    return value_var + pbs_output_var; /* pbs_output_var: veil_noise_pbs_output_variance(set) */
}

#endif
