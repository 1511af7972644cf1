/* veil/program.h — a compiled model: the DAG the encrypted runtime executes
 * and the clear simulator reproduces bit for bit.
 *
 * veil_program_compile(model, options) turns a veil_model into nodes
 *   INPUT  -> LINEAR (dense, conv2d, sum-pool, flatten, concat: clear integer
 *             weights on ciphertexts, exact mod 2^64) / ADD
 *          -> ROUND (exact removal of low bits before a lookup)
 *          -> LUT (one PBS per element, a table per tensor or per channel)
 *          -> OUTPUT
 * in topological order. Every node carries the integer range of its values
 * (from the calibration set, Concrete's "inputset", or the worst case) and
 * its bit width and its encoding width (below). The compiler then chooses
 * parameter sets (compile_params.c veil_choose_params): every PBS (LUT, or a ROUND's
 * chunk PBS) gets a precision (its widest read) and a 2-norm (the noise it
 * reads, x 2^shift, in PBS-output units); PBS of equal precision and 2-norm
 * within a factor 2 form a group; each group gets its cheapest set under a
 * bound model that makes groups independent (for a master dimension D, the
 * widest k*N, and a bound V on every set's PBS output variance, over the
 * candidates' values of D and V); then sets are lowered group by group and
 * pairwise while the exact noise pass (veil/noise.h, keyswitch from the
 * master key) keeps every PBS and output under p_error, and groups that got
 * one set become one partition. The objective is the predicted cost per
 * sample (cost_per_sample: each PBS at its set's measured KS-PBS time,
 * veil/cost.h); the result is kept only if it beats the best single set.
 * options.max_partitions caps the partitions and options.key_budget_mb the
 * prepared evaluation keys (merging the pair that costs least until both
 * hold; 1: one set); options.params_id forces one set. With
 * options.global_p_error the search runs at several per-PBS targets and
 * then moves partitions past them while a sample's failure probability (the
 * union bound) stays within that budget (compile_params.c,
 * choose_params_global). It refuses naming the layer (beyond 16 bits, or
 * when no set fits), the budget when no set's keys fit it, or
 * --global-p-error when no program keeps within it.
 *
 * Encoding (DESIGN.md "Cryptography"): every ciphertext holds an integer v as
 * v * Delta with Delta = 2^(63 - width), one padding bit above, and `width`
 * is per value (veil_node.width, veil_node_delta()): values that are added,
 * weighted, concatenated or pooled together, a ROUND node and its input (its
 * chunk PBS outputs are added to it), and an OUTPUT and its source must share
 * Delta, so they form one class (union-find in compile.c) whose width is the
 * widest need of its members: what a lookup reading a member reads
 * (k + in_bits below) and what decoding an output needs (its range's bits).
 * A LUT's output starts a new class (its table is scaled to the Delta its
 * consumers need) and an INPUT is encrypted at its class's Delta. So a narrow
 * lookup of a program with one wide accumulator reads at its own width, its
 * noise not amplified by the wide one's 2^shift. A lookup of x in [lo, hi]
 * reads the index r = floor((x + offset) / 2^k) (offset = -lo, plus 2^(k-1)
 * when rounding to nearest, k = rounding bits): the runtime adds
 * offset*Delta_x (a clear constant), multiplies by 2^shift (shift = width_x -
 * k - in_bits) so that r sits in the top in_bits bits under the padding bit,
 * and runs a KS-PBS
 * with an unsigned table T'[r] = T[clamp(lo + r*2^k, lo, hi)] (T clamped to
 * its [in_min, in_max] as the schema says). The clamp at hi is what keeps
 * round-to-nearest from overflowing past the top of the range; k is chosen so
 * that the largest r still fits in_bits.
 *
 * Rounding. Exact (default): a ROUND node clears the k low bits of
 * V = x + offset exactly, so encrypted equals simulate. A PBS can only read
 * the top bits of the torus with the padding bit clear, so the low bits are
 * removed LSB-first in chunks of c bits, 1 <= c <= p+1 (p = the program's
 * widest lookup), c chosen per ROUND node by the cost model (compile.c
 * choose_chunks: narrow chunks are more PBS at a lower precision, which may
 * land in a cheaper set; options.chunk_bits forces one c):
 * multiply V by 2^(width - j - c + 1) so bits j..j+c-1 of V fill
 * the top c bits of the torus (the higher bits wrap away mod 2^64), then
 *   PBS 1, a constant table: returns +C or -C by the chunk's top bit (the
 *          negacyclic sign); V += out - C clears that bit (C = 2^(j+c-2)*Delta);
 *   PBS 2, the identity on the c-1 remaining bits (padding now clear):
 *          V -= out clears them.
 * That is 2 PBS per chunk (1 when c = 1); both are read at c-1 bits of
 * precision, so rounding never raises the parameter set's precision. A 1-bit
 * chunk is read at 0 bits: its one PBS is the sign of the bit in the padding
 * position, a table of one box per half torus, so its values 0 and 2^63 are
 * a quarter torus (2^62) from the sign's boundaries instead of 2^61 for a
 * 1-bit table; that is 4 times the variance a 1-bit read holds (Concrete's
 * optimizer models its rounding the same way: each cleared bit one lookup
 * at precision 0, concrete-optimizer dag add_truncate_1_bit /
 * add_shift_left_lsb_to_msb_no_padding). The
 * lookup that follows reads r exactly (no low bits left). Cheaper exact
 * alternatives fail: reading the high bits directly with the low bits present
 * needs the noise margin of a full-width PBS, and one PBS cannot return the
 * chunk value itself because it is not a negacyclic function.
 * Approximate (--rounding approximate): no ROUND node; the lookup reads r
 * directly with the low bits still in the phase (offset shifted by half a
 * unit so the boundaries fall between integers), and the modulus switch and
 * noise decide the last bit near the rounding boundary: off by one at a rate
 * the simulator models when asked to inject noise.
 *
 * Wide lookups (the default: no rounding). The model's accumulators reach 10
 * to 16 bits; no parameter set reads more than 8 (and the cheap ones 3 to 6),
 * so a lookup wider than the program's PBS width P (options.lookup_bits, or
 * the cheapest by the cost model) is decomposed exactly into PBS of at most P
 * bits (compile.c, lookup()). The accumulator's index r is cut into exact
 * digits by ROUND nodes, r = H * 2^K + (lower digits D_0 .. D_{d-2}); for each
 * step t of the table (T[t] != T[t-1]) not on a multiple of 2^K,
 *   [r >= t] = [H >= th + 1] + [2H + c == 2th + 1],
 * c = [lower digits of r >= those of t], a carry chain of one PBS a digit
 * (c_0 = [D_0 >= t_0], c_j = [2 D_j + c_{j-1} >= 2 t_j + 1]). So
 *   T[r] = T[H * 2^K] + sum over those steps of delta_t [2H + c_t == 2th + 1]:
 * one PBS on H, d PBS a step. The steps of one element run as J copies of
 * the digits, J the most steps of one table (up to 4096 at one read width,
 * and 2J copies of the lookup's elements up to 2^18 ciphertexts a sample;
 * past them the selection below, or at a read width where that does not
 * fit, a refusal naming the layer), summed back by a sum pool. With two or
 * more steps,
 * each digit's comparisons are threshold
 * reads of that digit (veil_node.rotation_results; veil/tfhe.h
 * veil_extract: the backend runs one blind rotation per element and
 * extracts every comparison from its accumulator; on cuda the PBS kernels
 * write the accumulators and veil_cuda_extract reads them), and the carries 0/1
 * values combined by a 2-bit lookup each (the majority of [D_j > t_j],
 * [D_j >= t_j] and the carry; compile.c lookup()). Cost per element: the
 * ROUND chunks + 2 + (d - 1)(1 + J) PBS on the cpu, J of each level at 2
 * bits (the cheapest sets): a 10-bit activation with a 4-bit output (at
 * most 15 steps) read with 6-bit PBS costs about 19 PBS, 15 of them 2-bit
 * reads, instead of one 10-bit PBS that no parameter set offers; 16 bits
 * with 6-bit PBS, d = 3. A backend without the extraction op cannot run the
 * program (a PBS per comparison would read a top digit past its range
 * otherwise, below; veil_backend_supports_op says no). A table with many steps
 * (a random one: a step at nearly every value) is selected by its top part
 * instead when that is cheaper (each method's reads priced at the cheapest set
 * of their width; where the prices are within 4x of each other the program is
 * compiled both ways and the cheaper kept): r = H 2^P + L, one P-bit PBS per
 * value h of H reading T[h 2^P + L], one rotation of H giving every [H == h]
 * (threshold reads), and a small PBS per h keeping the one whose flag is set:
 * 2 nh PBS whatever the steps (a random 12-bit table, 6-bit reads: 133 PBS
 * instead of 3,787). Every table up to 16 bits compiles (at 8-bit reads at
 * worst). Exact: encrypted equals simulate equals the model's integers; nodes
 * inside a decomposition keep the ranges of their construction, not of the
 * calibration set.
 *
 * WoP lookups (options.wop, auto by default). A lookup wider than the PBS
 * reads may instead be one WoP-PBS a value (veil/wop.h: bit extraction,
 * circuit bootstrapping, vertical packing; Concrete's method past its
 * classic PBS), whose cost does not depend on the table: a LUT node marked
 * wop reading r = (x + offset) >> k at its w bits (9 to 16, the WoP set
 * veil_wop_params_for_width(w)), then a classic lookup of its output (the
 * identity on the table's values, read at their own width), which brings
 * the WoP-PBS's output noise (a standard deviation near 2^52 with Concrete's
 * single-lookup sets) back to a classic set's. The WoP node runs in a
 * partition of its own set, appended after the parameter search (which
 * never moves it; its bit reads are in the noise pass like any read, and
 * its output's key width is its set's k N, so the program's master key must
 * be at least that). With auto the compiler takes it where its price
 * (veil/cost.h veil_cost_wop_cpu_ms, measured in KS-PBS of its set, plus
 * the refresh) is below the digits' whole price (selection or threshold
 * reads with their ROUND chunks) and it can have a partition of its own
 * (not with --params or --partitions 1, nor where the program's master key
 * is narrower than its set's k N: there the digits); with always wherever
 * a WoP set takes the width, and --params and --partitions 1 are refused.
 * Past its range the WoP node reads r mod 2^w (no padding bit), and
 * simulate does the same. The cpu and cuda backends run it (a backend
 * without the op refuses the program at plan time, naming the layer).
 *
 * Ranges. Calibration bounds widen every observed range by
 * options.range_margin (default 25%) of its width on each side, never past
 * the worst case: the calibration set is a sample, and the decomposed
 * lookups make wider ranges cheap (a flat part of a table has no steps).
 *
 * Range check (options.range_check, off by default). A value outside its
 * compiled range is not the model's value, and nothing in the result shows
 * it. With the check on, the program gets one more output, the last one,
 * named VEIL_RANGE_CHECK_OUTPUT, of shape [n model outputs]: element o counts
 * the values that left their compiled range among the lookup inputs and the
 * output accumulators output o depends on. Each checked value x in [lo, hi]
 * (W = hi - lo + 1 <= 2^w values) is read by one more exact lookup, built
 * like any other (decomposed when wide), on the window [lo - a, hi + a] of
 * 2^(w+1) - 1 values (one bit of headroom: a >= W/2 each side; the window
 * stops at 16 bits): T = 0 inside [lo, hi], 1 outside; a dense layer of 0/1
 * weights sums the flags per output. It is
 * ordinary program nodes, so simulate computes the same counts and the
 * encrypted run decrypts to them. What it cannot see: a value further than a
 * from its range reads the window modulo its power of two (the padding bit
 * negates it; a decomposed window's top digit reads its thresholds past
 * their range, above), so it may count 0, -1 or another small value (-1
 * decodes as a large count, still non-zero; but it can cancel another
 * value's 1 in the same output's sum);
 * and an input outside its own range (the client clamps float inputs, and
 * says so). When no parameter set fits the wider encoding (noisy first
 * layers), the compiler caps every window at the model's own width instead:
 * the widest accumulators then get less headroom (as little as none past a
 * power of two). The window may widen the program's encoding by one bit,
 * which can move it to a larger parameter set: `veil compile` prints the
 * check's PBS per sample.
 *
 * The simulator (veil_program_simulate) computes exactly what an encrypted run
 * decrypts to when no PBS fails, also for values that leave a node's compiled
 * range: such a lookup reads its index r mod 2^(in_bits+1) through the
 * padding bit, as the PBS does (r in [t, 2t) reads -T'[r - t], t = 2^in_bits;
 * a digit's threshold reads, which are coefficients of one rotation, read
 * T'[0] + T'[t - 1] - T'[r - t] there: veil/tfhe.h veil_lut_step_wrapped, so
 * a backend runs them only by that extraction), and the simulator counts and
 * names those values (the result is then not the model's function, but it is
 * what the encrypted run returns).
 */
#ifndef VEIL_PROGRAM_H
#define VEIL_PROGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "veil/conv.h"
#include "veil/model.h"
#include "veil/params.h"
#include "veil/status.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum veil_bounds {
    VEIL_BOUNDS_CALIBRATION = 0, /* ranges observed on the calibration set */
    VEIL_BOUNDS_WORST_CASE = 1,  /* interval arithmetic from the input ranges */
} veil_bounds;

/* Wide lookups by WoP-PBS (veil/wop.h; "WoP lookups" above). */
typedef enum veil_wop_mode {
    VEIL_WOP_OFF = 0,    /* never: digits (threshold reads or selection) */
    VEIL_WOP_AUTO = 1,   /* where the cost model prices it below the digits */
    VEIL_WOP_ALWAYS = 2, /* every lookup wider than the PBS reads that can take one */
} veil_wop_mode;

typedef enum veil_rounding {
    VEIL_ROUNDING_EXACT = 0,
    VEIL_ROUNDING_APPROXIMATE = 1,
} veil_rounding;

#define VEIL_RANGE_MARGIN_DEFAULT 0.25
/* --p-error's default, 2^-40 (Concrete ML's) */
#define VEIL_P_ERROR_DEFAULT 0x1p-40
/* docs/results/cost-model.md: the trade-off per sample model behind it */
#define VEIL_KEY_BUDGET_MB_DEFAULT 4096

/* the cpu backend's most threads: the model is of that backend */
#define VEIL_LATENCY_CORES_MAX VEIL_THREADS_MAX

typedef struct veil_compile_options {
    /* Keep at most this many bits of a lookup's input (Concrete ML's
     * rounding_threshold_bits); wider inputs are rounded to nearest.
     * 0 (default): no rounding, every lookup reads its whole input: the
     * model's own integers, as Concrete ML computes them by default. */
    unsigned rounding_bits;
    /* Widest PBS read, 2..16: exact lookups wider than this are decomposed
     * into PBS of at most this many bits (see "Wide lookups" above). 0
     * (default): the compiler tries every width the parameter sets allow and
     * keeps the program with the lowest modelled cost (PBS count x set
     * cost). */
    unsigned lookup_bits;
    /* Exact rounding: clear the low bits in chunks of this many bits (see
     * "Rounding" above), at most the program's widest lookup + 1. 0
     * (default): per ROUND node, the width the cost model finds cheapest. */
    unsigned chunk_bits;
    veil_rounding rounding;
    veil_bounds bounds;
    /* Wide lookups by WoP-PBS (default VEIL_WOP_AUTO). */
    veil_wop_mode wop;
    /* Calibration bounds: each observed range [lo, hi] is widened by this
     * fraction of hi - lo on both sides (never past the worst case), because
     * a calibration set is a sample and real inputs go a little further.
     * Default VEIL_RANGE_MARGIN_DEFAULT; 0: the observed ranges. */
    double range_margin;
    /* Target failure probability of one PBS (default VEIL_P_ERROR_DEFAULT,
     * 2^-40, Concrete ML's). */
    double p_error;
    /* A failure budget per sample (--global-p-error, Concrete's
     * global_p_error; 0, the default: none): the probability that one run
     * of the program has any failed PBS read or output decoding (the union
     * bound over them, the report's "per sample" figure) is at most this,
     * and the search spreads it over the partitions, a looser set where it
     * saves the most (compile_params.c, choose_params_global). With it,
     * p_error is a cap on each PBS only when set to another value than its
     * default: Concrete's rule, both hold when both are set
     * (veil_compile_options_pbs_p_error). */
    double global_p_error;
    /* Force a parameter set by id (NULL: the compiler chooses). */
    const char *params_id;
    /* Only consider sets with N <= this (0: any): e.g. to trade lookup bits
     * for speed (8-bit lookups need N = 32768 at p_fail 2^-40). */
    uint32_t max_poly_size;
    /* At most this many parameter sets (partitions, each with its own
     * bootstrapping and keyswitching keys; a WoP-PBS's set counts too): 1
     * gives one set for the whole program (smallest keys); 0 (default): as
     * many as the cost model finds cheapest. */
    unsigned max_partitions;
    /* Cap on the evaluation keys prepared for one backend (every partition's
     * BSK in the domain the backend reads and its 32-bit KSK,
     * veil_eval_key_prepared_bytes), MiB: the search
     * merges partitions until the keys fit, and refuses when no program
     * does. Default VEIL_KEY_BUDGET_MB_DEFAULT; 0: no cap. */
    unsigned key_budget_mb;
    /* The objective of the parameter sets (--objective). 0 (default):
     * throughput, the cost per sample on one core (each PBS at its set's
     * batch figure, veil/cost.h). C >= 1: latency, one sample's time at
     * batch 1 on the cpu backend with C cores (veil_cost_cpu_latency_ms):
     * after the throughput search the partitions' sets are replaced, one
     * at a time, by any set (classic or multi-bit) that lowers it and keeps
     * every PBS and output under p_error and the keys in their budget. The
     * program's structure (chunk widths, digits) stays the throughput
     * search's. */
    unsigned latency_cores;
    /* Add the range-check output (see "Range check" above). */
    int range_check;
    /* When no parameter set fits (e.g. a 10-bit lookup without rounding),
     * still return the program, with params NULL: it can be simulated (the
     * golden-vector check of an unrounded model) but not encrypted. */
    int simulate_only;
} veil_compile_options;

/* The defaults, the parsers below and the option table all live in
 * engine/src/compile_options.c (veil/compile_options.h). */
void veil_compile_options_default(veil_compile_options *o);
/* The failure probability every single PBS read and output decoding is held
 * to: p_error without a global budget; with one (global_p_error > 0),
 * p_error where it is set to another value than VEIL_P_ERROR_DEFAULT (then
 * both hold, as Concrete does), else the budget itself (one read alone may
 * spend it), never above the budget. */
double veil_compile_options_pbs_p_error(const veil_compile_options *o);
/* "calibration" | "worst-case"; "exact" | "approximate". */
veil_status veil_bounds_parse(const char *s, veil_bounds *out);
veil_status veil_rounding_parse(const char *s, veil_rounding *out);
/* Sets one option by its command-line name without the dashes' prefix
 * ("rounding-bits" = "rounding_bits", "rounding", "bounds", "p-error", "global-p-error",
 * "max-poly-size", "lookup-bits", "chunk-bits", "range-margin", "range-check", "params",
 * "partitions", "key-budget-mb", "objective") from text, as `veil compile --NAME VALUE` reads it;
 * for configurations that are text (Triton's config.pbtxt parameters). "params" borrows value.
 * VEIL_ERR_ARG names the option and what it takes. */
veil_status veil_compile_options_set(veil_compile_options *o, const char *name, const char *value);
/* 1 if name is one of the names above. */
int veil_compile_option_known(const char *name);

/* The largest max pool window (kh * kw values; 7 x 7 fits) the compiler
 * takes: a window of K values is K - 1 lookups per output value and about
 * 5 K nodes. */
#define VEIL_MAXPOOL_WINDOW_MAX 64

typedef enum veil_node_kind {
    VEIL_NODE_INPUT = 0,
    VEIL_NODE_LINEAR,
    VEIL_NODE_ADD,
    VEIL_NODE_ROUND,
    VEIL_NODE_LUT,
    VEIL_NODE_OUTPUT,
} veil_node_kind;

typedef enum veil_linear_kind {
    VEIL_LINEAR_DENSE = 0, /* weight [out][in], bias [out] */
    VEIL_LINEAR_CONV2D,    /* weight [c_out][c_in][kh][kw], bias [c_out], NCHW */
    VEIL_LINEAR_SUMPOOL2D, /* per channel sum over the window */
    VEIL_LINEAR_FLATTEN,   /* identity on the data (row-major) */
    VEIL_LINEAR_CONCAT,    /* operands stacked along dim 0 */
} veil_linear_kind;

/* An ADD's exact noise terms at most (veil_node.noise_term_*). */
#define VEIL_NOISE_TERMS_MAX 8

typedef struct veil_node {
    veil_node_kind kind;
    char *layer; /* the model tensor it computes (layer, input or output name) */
    uint32_t n_in;
    uint32_t *in; /* operand node indices (earlier nodes) */
    veil_shape shape;
    size_t size;    /* elements per sample */
    int64_t lo, hi; /* compiled range of the values */
    unsigned bits;  /* veil_bits_for_range(lo, hi) */

    /* LINEAR */
    veil_linear_kind linear;
    int64_t *weight;                     /* owned copy; NULL for sum-pool / flatten / concat */
    int64_t *bias;                       /* owned copy or NULL; added as bias * Delta */
    size_t n_weight_rows, n_weight_cols; /* dense: out, in */
    veil_conv_geom conv;                 /* conv2d, sum-pool */
    double sum_w2; /* max over outputs of sum of squared weights (noise growth) */
    /* The noise pass's factors (veil_noise_factors, compile_params.c
     * "Correlated noise"): a LINEAR node's variance is its inputs' (the
     * largest) times noise_w2, which is sum_w2 when its inputs' noises are
     * independent and more when a leveled chain correlates them; an ADD
     * whose operands share a noise source (add_correlated) is the sum of
     * its noise terms, w times a node's variance (an elementwise chain's
     * exact variance, x - round(x) cancelling x's noise), or without terms
     * 2 (va + vb) instead of va + vb. */
    double noise_w2;
    int add_correlated;
    uint32_t n_noise_terms;
    uint32_t noise_term_node[VEIL_NOISE_TERMS_MAX];
    double noise_term_w[VEIL_NOISE_TERMS_MAX];

    /* ROUND and LUT: the index read is r = floor((x + offset) / 2^round_bits) */
    int64_t offset;
    unsigned round_bits; /* k */
    /* ROUND: chunk size c of the exact extraction (2 PBS per chunk) */
    unsigned chunk_bits;
    /* LUT */
    unsigned in_bits;   /* bits of r: the PBS precision */
    unsigned shift;     /* multiply by 2^shift before the PBS */
    int approximate;    /* low bits still present (approximate rounding) */
    uint32_t n_tables;  /* 1 or channels */
    size_t table_inner; /* elements per channel: element i uses table (i / inner) % n_tables */
    int64_t *tables;    /* n_tables * 2^in_bits entries */
    int64_t r_max;      /* largest index inside the compiled range */
    /* Threshold reads ("Wide lookups": a digit's comparisons): 2 or more when
     * the input is a CONCAT of that many copies of one value and every table
     * is 0 below a threshold and one common value V from it (or 0
     * throughout); the backend does one blind rotation per value for all
     * its copies (veil/tfhe.h veil_extract; a backend without that op cannot
     * run the node). Else 0. */
    uint32_t rotation_results;
    /* WoP-PBS (veil/wop.h; "WoP lookups" above): 1 when this LUT is one
     * WoP-PBS of in_bits bits a value, its partition's set a WoP set's pbs.
     * It reads r = (x + offset) mod 2^in_bits (bit extraction: no padding
     * bit, so a value past its range reads T'[r mod 2^in_bits], not the
     * negacyclic wrap). Else 0. */
    unsigned wop;

    /* Encoding of the values: Delta = 2^(63 - width) (veil_node_delta). A
     * LUT's table is scaled by its own Delta; it reads its input at the
     * input's. ROUND, OUTPUT: their input's. */
    unsigned width;

    /* LUT and ROUND: the partition (index into veil_program.partitions) whose
     * keys run this node's PBS (keyswitch into its small key, bootstrap with
     * its BSK). 0 for every other node. */
    uint32_t partition;

    /* The model op the report names the node's layer by when its first
     * nodes do not say it (a static string: "maxpool2d"), else NULL. */
    const char *report_op;

    /* Cost and noise (for the chosen parameter set). pbs_per_sample: the
     * blind rotations (KS-PBS) the cpu engine runs, veil_node_results the
     * values they give (more for threshold reads). */
    uint64_t pbs_per_sample;
    double variance;        /* modelled noise variance of the values (2^-64 units^2) */
    double read_log2_pfail; /* worst PBS of the node (-inf: none) */
    /* The values' key width: their masks are 0 past the first key_dim
     * coefficients of the master key (an input: the program's input width;
     * a PBS output: its set's k*N; a sum: the widest of its terms). A
     * keyswitch reading them adds the noise of key_dim rows, not D (the
     * other digits are 0). Filled with variance. */
    uint32_t key_dim;
} veil_node;

/* The table a LUT node reads for ciphertext i of a batch (element i mod
 * size): its channel's, (element / table_inner) mod n_tables. */
static inline uint32_t veil_node_table_of(const veil_node *n, size_t i) {
    return n->n_tables > 1 ? (uint32_t)(((i % n->size) / n->table_inner) % n->n_tables) : 0;
}

/* The PBS results of node n per sample: each can fail (the failure
 * probability's count). */
static inline uint64_t veil_node_results(const veil_node *n) {
    return n->rotation_results > 1 ? n->pbs_per_sample * n->rotation_results : n->pbs_per_sample;
}

/* One line of the per-layer report (one per model layer with work). */
typedef struct veil_layer_report {
    const char *layer; /* borrowed from the node */
    const char *op;
    unsigned acc_bits;   /* width of the lookup input (or of the values) */
    uint64_t lookups;    /* PBS per sample (rounding PBS included) */
    uint64_t table_size; /* entries per table (2^in_bits) */
    uint32_t n_tables;
    unsigned round_bits;
    unsigned in_bits;
    double norm2;       /* 2-norm of the dot product read by the PBS (x 2^shift) */
    double log2_p_fail; /* worst PBS of the layer */
    int decomposed;     /* a wide exact lookup made of narrower PBS */
} veil_layer_report;

/* A partition: the PBS of a program that share one parameter set (Concrete's
 * multi-parameter optimisation: each lookup gets the cheapest set that keeps
 * its precision and noise). Partition 0 always exists when params is set;
 * its set is the one ciphertexts between PBS and fresh inputs are encrypted
 * for (the widest big key, k*N, of the program: every other partition's
 * k*N is at most partition 0's, and among sets of equal k*N partition 0 has
 * the noisiest fresh encryption). Noise model the compiler uses (the key-set
 * design: each partition's GLWE key a prefix of one master key of partition
 * 0's dimension): a PBS of partition X keyswitches what it reads with X's
 * KSK, adding the noise of the rows of the read's key width (veil_node.key_dim,
 * at most partition 0's k*N), modulus-switches with X's n and N, and outputs
 * with X's PBS output variance. Two partitions never share a set. */
typedef struct veil_partition {
    const veil_params *params;
    unsigned precision;      /* widest PBS read of the partition (bits, without padding) */
    double norm2;            /* worst 2-norm (x 2^shift) read by a PBS of the partition */
    uint64_t pbs_per_sample; /* PBS of the partition per sample */
    double log2_p_fail;      /* worst PBS of the partition */
    /* Its share of the per-sample failure figure: the sum over its PBS
     * reads (each value's worst, veil_node_results of them) of their p_fail,
     * what --global-p-error's budget is spent on (veil_build_report). */
    double p_fail_share;
    /* Rows of its keyswitching key: the widest value its PBS read
     * (veil_node_read_dim), the master key's first ksk_rows coefficients;
     * its keys need no more (veil_pbs_key.ksk_rows). */
    uint32_t ksk_rows;
} veil_partition;

typedef struct veil_program {
    char *model_name;
    veil_compile_options options;
    /* veil_compile_options_canonical of the options it was compiled from
     * (params_id included, which options no longer holds) */
    char *options_canonical;
    const veil_params *params; /* NULL: simulate only (see simulate_only); else
                                * partitions[0].params */
    uint32_t n_partitions;     /* 0 when params is NULL */
    veil_partition *partitions;
    /* The inputs' key width: the client encrypts them under the first
     * input_width coefficients of the master key, the GLWE key of the
     * partitions of that k*N, with the noise of veil_input_set's (0: the
     * whole master key, partition 0's noise). Narrower inputs keep every
     * value a narrower PBS made narrow, so its keyswitches add less noise
     * (veil_node.key_dim): the compiler chooses it (compile_params.c). */
    uint32_t input_width;
    char *params_note;     /* why params is NULL, or NULL */
    unsigned width;        /* the widest value encoding (see veil_node.width) */
    unsigned max_lut_bits; /* widest PBS read */
    unsigned max_acc_bits; /* widest accumulator feeding a lookup */
    size_t n_nodes;
    veil_node *nodes;
    uint32_t n_inputs;
    uint32_t *input_nodes; /* per model input */
    uint32_t n_outputs;
    uint32_t *output_nodes; /* per model output, then the range check's when on */
    /* options.range_check: the last output counts values out of range, and
     * the nodes from range_check_first on compute it. */
    int range_check;
    size_t range_check_first;
    uint64_t range_check_values; /* values checked per sample */
    uint64_t range_check_pbs;    /* PBS per sample the check costs */
    int range_check_narrow;      /* windows capped at the model's width (see above) */
    uint64_t pbs_per_sample;
    /* Predicted cost of one sample: sum over PBS of the set's measured
     * KS-PBS cost (veil/cost.h, keyswitch from partition 0's big key), in
     * milliseconds on one CPU core (what the parameter search minimises),
     * and on cuda at full throughput. */
    double cost_per_sample;
    double cost_per_sample_cuda;
    /* With options.latency_cores: one sample's modelled time at batch 1 on
     * the cpu backend with that many cores, ms (veil_cost_cpu_latency_ms
     * summed over the nodes); 0 otherwise. */
    double latency_per_sample;
    /* Bytes of the prepared evaluation keys (veil_eval_key_prepared_bytes
     * over the partitions). */
    double key_bytes;
    double log2_p_fail_pbs; /* worst single PBS */
    /* 1 - prod (1 - p_i) over one sample's PBS reads and output decodings, log2 */
    double log2_p_fail_sample;
    /* The output decodings' share of it (sum of their p_fail; the partitions'
     * are veil_partition.p_fail_share). */
    double p_fail_outputs_share;
    /* The search's per-PBS target, log2, while a global budget
     * (options.global_p_error) tries several (compile_params.c); 0: the
     * options' (veil_compile_options_pbs_p_error). */
    double search_log2_p_error;
    size_t n_report;
    veil_layer_report *report;
} veil_program;

/* The set whose GLWE key (the first `width` coefficients of the master key)
 * and GLWE noise the inputs of a program with sets[0..n) and input width
 * `width` are encrypted under: among the sets of k*N = width (0: the master
 * set's), the noisiest fresh encryption, then the first; NULL when no set
 * has that k*N. The one rule for the compiler's noise pass and the client's
 * encryption. */
const veil_params *veil_input_set(const veil_params *const *sets, uint32_t n, uint32_t width);
/* The program's: veil_input_set over its partitions, never NULL for a
 * compiled program with parameters. */
const veil_params *veil_program_input_set(const veil_program *p);
/* The key width (rows of the master key) the pbs-th PBS (from 0) of one
 * value of PBS node n keyswitches when n runs with set ps, its input's
 * veil_node.key_dim filled: a lookup's PBS read its input; a rounding's
 * first PBS reads its input, each later one the input plus the PBS outputs
 * before it (host/exec.c, run_round), so at least ps's k*N. The one rule
 * for the compiler's noise pass and cost and simulate's noise. */
uint32_t veil_node_read_dim(const veil_program *p, const veil_node *n, const veil_params *ps,
                            unsigned pbs);

/* The scale of node n's values: v is encrypted as v * Delta, Delta =
 * veil_delta(width) (veil/tfhe.h "encoding": one padding bit above). */
static inline uint64_t veil_node_delta(const veil_node *n) {
    return veil_delta(n->width);
}
static inline uint64_t veil_program_node_delta(const veil_program *p, uint32_t node) {
    return veil_node_delta(&p->nodes[node]);
}

/* One chunk of a ROUND node's exact extraction ("Rounding" above): bits
 * [lo, lo + bits) of V = x + offset, LSB first. The one description of the
 * chunk loop: the compiler's PBS count and noise pass, the simulator's noise
 * sampling and the executor's tables and PBS all iterate it. */
typedef struct veil_round_chunk {
    unsigned lo;        /* j: the chunk's lowest bit */
    unsigned bits;      /* c: chunk_bits, or fewer for the last chunk */
    unsigned shift;     /* width - j - c + 1: V * 2^shift puts the chunk in the top c bits */
    unsigned read_bits; /* precision of its PBS reads: c - 1 (0: the sign alone, c = 1) */
    unsigned pbs;       /* 2 (sign, then the identity on c - 1 bits), 1 when c = 1 */
} veil_round_chunk;

/* Chunks of ROUND node n (0 for chunk_bits 0). */
static inline unsigned veil_round_chunk_count(const veil_node *n) {
    return n->chunk_bits ? (n->round_bits + n->chunk_bits - 1) / n->chunk_bits : 0;
}
/* Chunk q < veil_round_chunk_count(n) of n; shift is meaningful once n->width is set. */
static inline veil_round_chunk veil_round_chunk_get(const veil_node *n, unsigned q) {
    veil_round_chunk c;
    c.lo = q * n->chunk_bits;
    c.bits = n->round_bits - c.lo < n->chunk_bits ? n->round_bits - c.lo : n->chunk_bits;
    c.shift = n->width - c.lo - c.bits + 1;
    c.read_bits = c.bits - 1;
    c.pbs = c.bits > 1 ? 2 : 1;
    return c;
}
/* The constant C of the chunk's sign PBS for values at scale delta: half the
 * weight of its top bit, 2^(j+c-2) * Delta (V += out - C clears that bit). */
static inline uint64_t veil_round_chunk_sign_const(const veil_round_chunk *c, uint64_t delta) {
    return c->lo + c->bits >= 2 ? delta << (c->lo + c->bits - 2) : delta >> 1;
}

veil_status veil_program_compile(const veil_model *model, const veil_compile_options *options,
                                 veil_program **out);
void veil_program_free(veil_program *p);

/* The compiler's objective for p with sets[i] running partition i's PBS
 * (i < p->n_partitions, the program's grouping of its PBS): the modelled
 * cost per sample (as cost_per_sample), or +INFINITY when a PBS or an output
 * would exceed p_error (veil_compile_options_pbs_p_error), a sample would
 * spend more than options.global_p_error (when set), a set lacks a
 * partition's precision (or breaks
 * max_poly_size), or a set's k*N exceeds sets[0]'s (the master key). p is
 * left as it was. For tests and tools: the search finds the cheapest. */
double veil_program_assignment_cost(veil_program *p, const veil_params *const *sets);
/* One sample's modelled time (ms) at batch 1 on the cpu backend with
 * `cores` threads, p's sets as they are (what --objective latency
 * minimises, veil_cost_cpu_latency_ms over the nodes); +INFINITY for a
 * program without sets. For tests and tools. */
double veil_program_latency_ms(veil_program *p, unsigned cores);
#define VEIL_RANGE_CHECK_OUTPUT "range_check"

/* Outputs of the model itself (n_outputs less the range check's). */
static inline uint32_t veil_program_model_outputs(const veil_program *p) {
    return p->n_outputs - (p->range_check ? 1u : 0u);
}

/* With the range check on: for every one of n samples whose range-check
 * counts (outputs[n_outputs - 1], as decrypted or simulated) are not all
 * zero, writes a warning to f naming the sample and the model outputs
 * affected ("who: warning: sample 3: 2 value(s) left their compiled ranges;
 * output logits may be wrong"). Returns how many samples were flagged (0
 * when the check is off). model_output_names: the model's output names. */
size_t veil_program_range_check_warn(const veil_program *p, const char *const *model_output_names,
                                     int64_t *const *outputs, size_t n, const char *who, FILE *f);

/* Prints the per-layer report and the program summary. */
void veil_program_print_report(const veil_program *p, FILE *f);

/* Elements per sample of input / output i. */
size_t veil_program_input_size(const veil_program *p, uint32_t i);
size_t veil_program_output_size(const veil_program *p, uint32_t i);

typedef struct veil_sim_stats {
    uint64_t range_errors; /* values outside their node's compiled range */
    uint64_t pbs_errors;   /* lookups decoded wrongly (noise injection only) */
    char first_error[256]; /* the first range error, naming the layer */
} veil_sim_stats;

typedef struct veil_sim_options {
    /* Sample the modelled noise at every PBS read (KS + MS + accumulated
     * linear noise, as veil/noise.h models it), like Concrete's simulation
     * with p_error: failures and approximate-rounding off-by-ones happen at
     * the modelled rate. */
    int inject_noise;
    uint64_t seed;
} veil_sim_options;

/* Clear int64 execution. inputs: per program input, batch * input_size
 * values; outputs: per output, batch * output_size (caller allocated).
 * opts NULL: exact. stats may be NULL. Range errors are counted, not fatal. */
veil_status veil_program_simulate(const veil_program *p, const int64_t *const *inputs, size_t batch,
                                  int64_t *const *outputs, const veil_sim_options *opts,
                                  veil_sim_stats *stats);

/* Decodes an output phase of output i to its integer: rounds to a multiple
 * of the output node's Delta and picks the representative in
 * [lo, lo + 2^(width+1)) (the node's width). */
int64_t veil_program_decode(const veil_program *p, uint32_t output, uint64_t phase);

/* Program fingerprint. A ciphertext batch file carries a 32-byte "model fp"
 * (veil/serialize.h): veil fills it with veil_program_fingerprint(), a
 * BLAKE2b-256 over everything of the compiled program that decides what a
 * ciphertext means: the parameter sets (each by its id and its shape: n, k,
 * N, decompositions, modulus switch, noises, so a set derived again under the
 * same id makes another program), every node's encoding width, every node (kind,
 * operands, shape, range, weights, biases, tables, rounding). Two programs
 * with the same fingerprint evaluate the same function on the same encoding,
 * so a batch encrypted for one can be run by the other; anything else
 * (another model, other compile options that change a table or the width)
 * gives another fingerprint. The canonical form of the compile options
 * (options_canonical, veil/compile_options.h) is hashed too: a client and a
 * server agree by construction only when they compiled from the same options,
 * and otherwise refuse, showing both forms, even where the options happen to
 * give the same nodes (a forced set that the search would have chosen). */
#define VEIL_PROGRAM_FP_BYTES 32
void veil_program_fingerprint(const veil_program *p, uint8_t fp[VEIL_PROGRAM_FP_BYTES]);
/* The fingerprint result batches carry: BLAKE2b-256 of a domain string and
 * the program fingerprint. Distinct, so encrypted inputs are never decrypted
 * as results (nor results sent back as inputs). */
void veil_program_output_fingerprint(const uint8_t program_fp[VEIL_PROGRAM_FP_BYTES],
                                     uint8_t fp[VEIL_PROGRAM_FP_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
