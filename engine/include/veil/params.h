/* veil/params.h — TFHE parameter sets, as data.
 *
 * Every set carries its source (the published TFHE-rs or Concrete set it comes
 * from, or the derivation that produced it), its security level and its PBS
 * failure probability. veil never invents parameters: the table in
 * engine/src/params.c is the only place they live, and each entry says where
 * it came from. Files (keys, ciphertexts) store the set's `id` string, so ids
 * are stable forever; a renamed set gets a new id.
 *
 * Noise is given as TFHE-rs does: a Gaussian standard deviation as a fraction
 * of the torus (the modular std dev divided by 2^64), or a TUniform bound b
 * (integers uniform in [-2^b, 2^b], the two ends with half weight). */
#ifndef VEIL_PARAMS_H
#define VEIL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum veil_noise_kind { VEIL_NOISE_GAUSSIAN = 0, VEIL_NOISE_TUNIFORM = 1 } veil_noise_kind;

typedef struct veil_noise {
    veil_noise_kind kind;
    double std_dev;      /* Gaussian: standard deviation on the torus [0,1) */
    unsigned bound_log2; /* TUniform: support [-2^b, 2^b] in units of 2^-64 */
} veil_noise;

/* Variance of one sample, on the torus scaled to 2^64 (units of 2^-64, squared). */
double veil_noise_variance(const veil_noise *noise);

typedef enum veil_ms_kind {
    /* Round every coefficient to the nearest multiple of 2^64 / 2N. */
    VEIL_MS_STANDARD = 0,
    /* TFHE-rs's CenteredMeanNoiseReduction (core_crypto/algorithms/
     * modulus_switch.rs): the mask is switched as STANDARD; the rounding
     * errors e_i = switched(a_i) - a_i are public, and with a binary key
     * sum e_i s_i = sum e_i (s_i - 1/2) + (1/2) sum e_i, so adding
     * (1/2) sum e_i to the 64-bit body before rounding it leaves only the
     * centred term: the mask part of the variance halves. Like TFHE-rs,
     * veil also takes half a switched step off the body (of both kinds:
     * veil_ms_body, veil/tfhe.h), which centres the phase in its box of the
     * table (lut.c; test_noise.c checks the mean, test_crypto.c the box's
     * edges). */
    VEIL_MS_CENTERED = 1,
} veil_ms_kind;

enum {
    VEIL_PARAMS_SLOW = 1u << 0, /* N >= 16384: tests only under the `slow` label */
    VEIL_PARAMS_NN = 1u << 1,   /* derived for neural-network lookups (large 2-norms) */
};

typedef struct veil_params {
    const char *id;        /* stable, stored in files, e.g. "tfhers-v1_1-2_2-gaussian-2m64" */
    uint32_t lwe_dim;      /* n: small LWE key, input of blind rotation */
    uint32_t glwe_dim;     /* k */
    uint32_t poly_size;    /* N, a power of two */
    veil_noise lwe_noise;  /* noise of LWE encryptions under the small key (KSK) */
    veil_noise glwe_noise; /* noise of GLWE encryptions (BSK), and of fresh big-key LWE */
    uint32_t pbs_base_log; /* B_pbs: gadget base 2^B of the bootstrapping key */
    uint32_t pbs_level;    /* l_pbs */
    uint32_t ks_base_log;  /* B_ks */
    uint32_t ks_level;     /* l_ks */
    uint32_t precision;    /* p: bits of message (message + carry), 2^p table entries */
    double norm2;          /* the largest 2-norm of a dot product before a PBS the set allows */
    veil_ms_kind ms;       /* modulus switch the p_fail was computed for */
    /* log2 p_fail per PBS at `precision` bits and `norm2`, with `ms`, as the
     * set's source states it: for a TFHE-rs set the figure TFHE-rs publishes
     * (its own noise formulas, in the constant's doc comment), for a derived
     * set derive.py's result (veil's model, equal to veil_noise_log2_p_fail
     * to 1e-3). A label, read by nothing that decides: the compiler computes
     * every read's p_fail with veil's model (veil/noise.h). For the classic
     * TFHE-rs sets veil's model is more pessimistic than TFHE-rs's published
     * figures, by up to 2% of the variance (tests/test_params.c
     * test_p_fail_recomputed; docs/PARAMS.md §3, validation); for the
     * multi-bit ones it is below them (tfhers-mb2-2_2: 2^-154.1 against
     * 2^-140.3; mb4-2_2: 2^-143.5 against 2^-134.4, 6-9% less variance),
     * where veil's measured noise sits at its model (docs/PARAMS.md §9). */
    double log2_p_fail;
    /* Claimed security level, bits, as the source states it: TFHE-rs's own
     * lattice-estimator figure for its sets, 128 for the derived sets (every
     * noise at the minimum of Concrete's 128-bit curve). Checked against
     * Concrete's current 128-bit curve for every set (test_security_by_curve,
     * veil_noise_min_log2_std_128). */
    double security_bits;
    uint32_t flags;     /* VEIL_PARAMS_* */
    const char *source; /* where the numbers come from */
    /* Multi-bit PBS grouping factor g (TFHE-rs's LweBskGroupingFactor): the
     * blind rotation walks the small key g bits at a time with 2^g GGSWs per
     * group (veil/tfhe.h "multi-bit"). 0 for the classic sets, which leave it
     * out of their initializers; 2, 3 or 4 for the multi-bit sets. */
    uint32_t grouping;
    /* Derived sets for values under a prefix of the master key
     * (veil_program.input_width): the keyswitch rows their log2_p_fail
     * assumes, below k*N (scripts/params/derive.py --ks-dims; ids
     * nn-...-r<rows>-2m40). 0 for every other set: its own k*N. The
     * compiler computes every read from its actual width (veil_node.key_dim)
     * whatever this says. */
    uint32_t ks_in_dim;
} veil_params;

/* The largest multi-bit grouping factor (keys, the CPU and CUDA PBS). */
#define VEIL_MULTIBIT_MAX_G 4

/* The classic sets (grouping 0): what the compiler, the key files and every
 * backend choose from. */
size_t veil_params_count(void);
const veil_params *veil_params_at(size_t i);
/* NULL when no classic set has that id. */
const veil_params *veil_params_find(const char *id);

/* The multi-bit sets (grouping >= 2), a list of their own: the compiler's
 * throughput search chooses from the classic list only (multi-bit costs
 * more per PBS in a batch, veil/cost.h); --objective latency may replace a
 * partition's set by one (veil/program.h), and --params forces one for the
 * whole program. Key files carry them (veil/serialize.h); the
 * CPU engine runs them (veil_eval_key_new, veil_pbs, veil_ks_pbs_many).
 * Ids never collide with classic ids. */
size_t veil_params_multibit_count(void);
const veil_params *veil_params_multibit_at(size_t i);
/* NULL when no multi-bit set has that id. */
const veil_params *veil_params_multibit_find(const char *id);
/* Either list: a classic set, else a multi-bit one; NULL when neither has
 * that id. What names a set from outside (files, --params) goes through it. */
const veil_params *veil_params_find_any(const char *id);

/* WoP-PBS sets (veil/wop.h): a table lookup of `width` bits by bit
 * extraction, circuit bootstrapping and vertical packing, whose cost does
 * not depend on the table (Carpov, Izabachène and Mollimard, "New
 * techniques for multi-value input homomorphic evaluation and applications",
 * CT-RSA 2019; Bergerat, Boudi, Bourgerie, Chillotti, Ligier, Orfila and
 * Tap, "Parameter optimization and larger precision for (T)FHE", J.
 * Cryptology 2023, which Concrete implements). Each set is the solution
 * Concrete's optimizer (concrete-python 2.10.0) gives for one lookup of
 * `width` bits on a fresh input (2-norm 1) at p_error 2^-40 per PBS
 * (scripts/params/wop_concrete.py; docs/results/wop-concrete-optimizer.json
 * holds its reports): the noises are the minimum of Concrete's 128-bit curve
 * at n and k*N (veil_noise_min_log2_std_128). `pbs` is the keyswitch and
 * blind-rotation part every PBS of the lookup runs (its precision field:
 * `width`, its log2_p_fail: log2 of p_error, Concrete's figure for its own
 * algorithm; veil's model is veil_noise_wop_* below). */
typedef struct veil_wop_params {
    const char *id; /* = pbs.id */
    unsigned width;
    veil_params pbs;
    uint32_t cbs_base_log, cbs_level; /* gadget of each bit's GGSW (circuit bootstrapping) */
    uint32_t pp_base_log, pp_level;   /* private functional packing keyswitch */
    double p_error;                   /* Concrete's per-PBS error probability */
} veil_wop_params;

size_t veil_wop_params_count(void);
const veil_wop_params *veil_wop_params_at(size_t i);
/* NULL when no WoP set has that id. */
const veil_wop_params *veil_wop_params_find(const char *id);
/* The WoP set whose `pbs` has p's id, p itself or a copy (the GPU tests'
 * small run shortens a set's n): a partition of that set is a WoP one, its
 * keys include the packing keyswitching keys. NULL for any other set. */
const veil_wop_params *veil_wop_params_of(const veil_params *p);
/* The set chosen for `width` input bits; NULL when none is. */
const veil_wop_params *veil_wop_params_for_width(unsigned width);

/* Bit i's reads are one blind rotation: its extraction output and its l_cb
 * circuit-bootstrapping levels are functions of the same bit, so one test
 * polynomial holds them all, function j in the coefficients j mod slots,
 * and the small LWE is switched to 2N / slots instead of 2N: the rotation
 * is then a multiple of slots and coefficient j reads function j (a
 * multi-value PBS, Carpov, Izabachène and Mollimard above, section 4). The
 * coarser switch multiplies its rounding's variance by about slots^2; the
 * reads' quarter torus of margin keeps that far below p_error. slots: the
 * power of 2 >= l_cb + 1 (veil_wop_slots_for: the cuda WoP-PBS's gadget
 * comes without the rest of the set). */
#define VEIL_WOP_MAX_SLOTS 8u /* every set's l_cb + 1 <= 8 (test_wop) */
static inline uint32_t veil_wop_slots_for(uint32_t cbs_level) {
    uint32_t s = 1;
    while (s < cbs_level + 1)
        s <<= 1;
    return s;
}
static inline uint32_t veil_wop_slots(const veil_wop_params *wp) {
    return veil_wop_slots_for(wp->cbs_level);
}

/* veil's noise model of a WoP-PBS (engine/src/params.c; units of
 * veil/noise.h): the variance of a row of a circuit-bootstrapped GGSW; of
 * the output of a w-bit lookup; the modulus switch of a bit's read (to
 * 2N / veil_wop_slots); log2 p_fail of the lookup's w bit reads for an
 * input of that variance under a key of in_dim coefficients. */
double veil_noise_wop_ggsw_variance(const veil_wop_params *wp);
double veil_noise_wop_ms_variance(const veil_wop_params *wp);
double veil_noise_wop_output_variance(const veil_wop_params *wp, unsigned w);
double veil_noise_wop_log2_p_fail(const veil_wop_params *wp, unsigned w, double input_variance,
                                  uint32_t in_dim);
/* The smallest of those w reads' margins (veil_noise_fail_margin's units):
 * the compiler's noise pass compares it like a PBS read's. */
double veil_noise_wop_margin(const veil_wop_params *wp, unsigned w, double input_variance,
                             uint32_t in_dim);

/* Derived sizes. "big" LWE dimension = k*N (the sample-extracted key). */
static inline uint32_t veil_params_big_dim(const veil_params *p) {
    return p->glwe_dim * p->poly_size;
}

#ifdef __cplusplus
}
#endif
#endif
