#!/usr/bin/env python3
"""Derive veil's neural-network TFHE parameter sets with Concrete's method.

Pure Python 3 (stdlib only). For every cell (precision p, weight 2-norm) it
searches (n, k, N, PBS base/level, KS base/level) for the cheapest KS-PBS
parameter set whose failure probability per PBS is <= 2^-40, with every noise
at the minimum the 128-bit security curve allows, and writes

  engine/src/params_nn.inc   (the C table rows, included by engine/src/params.c)
  docs/PARAMS.md             (the table between its NN-TABLE markers)

With `--grouping G` (2, 3, 4, or a comma list) it derives multi-bit KS-PBS
sets instead (n a multiple of G, 2^G GGSWs per group), with the multi-bit noise
model [MB] and cost [MBX], the standard modulus switch per group (what veil's
multi-bit PBS runs), and writes

  engine/src/params_nn_mb.inc (rows of k_params_multibit, engine/src/params.c)
  docs/PARAMS.md              (the table between its NN-MB-TABLE markers)

It also recomputes the failure probability of published TFHE-rs sets as a check
of the noise model (`--validate`).

Units: every variance here is a *modular* variance, i.e. in units of 2^-64
squared (the variance of the integer representative of a torus element on a
64-bit torus). Concrete writes its formulas for the torus variance (a fraction
of 1); we multiply them by q^2 = 2^128. The same formulas are implemented in C
in engine/src/params.c (veil_noise_*); keep the two in sync.

Sources (zama-ai/concrete, read for this derivation):
  [SEC]  tools/parameter-curves/concrete-security-curves-rust/src/gaussian/curves_gen.rs
         (crate concrete_security_curves, @0128521c; PR #873) and
         security_weights.rs beside it (secure_log2_std)
  [KS1]  backends/concrete-cpu/noise-model/src/gaussian_noise/noise/keyswitch_one_bit.rs
  [KS]   backends/concrete-cpu/noise-model/src/gaussian_noise/noise/keyswitch.rs
  [EP]   backends/concrete-cpu/noise-model/src/gaussian_noise/noise/external_product_glwe.rs
  [BR]   backends/concrete-cpu/noise-model/src/gaussian_noise/noise/blind_rotate.rs
  [MS]   estimate_modulus_switching_noise_with_binary_key, module
         gaussian_noise::noise::modulus_switching of the same crate (exported
         to C by backends/concrete-cpu/noise-model/src/c_api/modulus_switching.rs)
  [ERR]  compilers/concrete-optimizer/concrete-optimizer/src/noise_estimator/error.rs
  [CX]   compilers/concrete-optimizer/concrete-optimizer/src/computing_cost/operators/
         {cmux,pbs,keyswitch_lwe}.rs, computing_cost/fft.rs
  [AP]   the atomic pattern of concrete-optimizer (optimization/atomic_pattern.rs):
         noise before the PBS = norm2^2 * v_pbs + v_ks + v_ms
  [MB]   backends/concrete-cpu/noise-model/src/gaussian_noise/noise/
         {multi_bit_external_product_glwe,multi_bit_blind_rotate}.rs (@fd8fb4c1),
         with veil's corrections (engine/src/params.c, docs/PARAMS.md section 9)
  [MBX]  compilers/concrete-optimizer/concrete-optimizer/src/computing_cost/operators/
         multi_bit_pbs.rs (MultiBitPbsComplexity, read at @b695d636)
"""

import argparse
import math
import os
import re
import sys

LOG2_Q = 64
Q2 = 2.0 ** (2 * LOG2_Q)

# [SEC] the 128-bit line: concrete-security-curves-rust gaussian/curves_gen.rs
# SECURITY_WEIGHTS_ARRAY @0128521c, set by zama-ai/concrete PR #873 (June 2024;
# lattice estimator @60808bdc, MATZOV cost model). Until 2026-12-04 veil used
# the 2022 line of concrete-cpu security_weight.rs (-0.026405028765226220,
# 2.4826422691043177, 450), which asks for less noise: about 0.7 bit of log2
# std at n ~ 740, 1.6 bits at kN = 2048. engine/src/params.c k_sec128_* holds
# the same numbers.
SEC128_SLOPE = -0.025696778711484593
SEC128_BIAS = 2.675931372549016
SEC128_MIN_DIM = 450
# Every line the current crate publishes, used only to report a security
# estimate: 128 (PR #873) and 132 (added by PR #1174, Dec 2024). PR #873 left
# only the 128-bit line in the crate (its earlier 80/112/192-bit lines, like
# the 2022 80..256-bit ones, came from older estimator runs); mixing those in
# would compare against another estimator version, so an estimate here is 0
# (none) below the 128-bit line and at most 132.
SEC_LINES = [
    (128, SEC128_SLOPE, SEC128_BIAS, SEC128_MIN_DIM),
    (132, -0.024891456582633045, 2.65734593837534, 450),
]

# [EP] FFT_SCALING_WEIGHT and the 53-bit mantissa (lost bits = 64 - 53 = 11).
FFT_SCALING_WEIGHT = -2.57722494
FFT_PRECISION = 53


def secure_log2_std(dim, slope=SEC128_SLOPE, bias=SEC128_BIAS, min_dim=SEC128_MIN_DIM):
    """[SEC] SecurityWeights::secure_log2_std: the smallest secure log2 of the
    torus std dev (fraction of 1) for an LWE/GLWE of dimension `dim` (k*N for
    GLWE), floored at 2 - log2(q) (two lowest modular bits always noisy)."""
    if dim < min_dim:
        return math.inf  # Concrete returns ciphertext_modulus_log: nothing is secure
    return max(slope * dim + bias, 2.0 - LOG2_Q)


def min_variance(dim):
    """Modular variance of the minimal secure Gaussian for dimension `dim`."""
    return 2.0 ** (2 * (secure_log2_std(dim) + LOG2_Q))


def security_estimate(dim, log2_std):
    """Highest level of SEC_LINES whose line the (dim, std) pair meets: 128 or
    132, or 0 below the 128-bit line (no published line to estimate with).
    Not a lattice-estimator run: a lower bound read off the published lines."""
    best = 0
    for lam, slope, bias, mind in SEC_LINES:
        if dim >= mind and log2_std >= max(slope * dim + bias, 2.0 - LOG2_Q) - 1e-12:
            best = lam
    return best


def var_ks32(big_n, base_log, level, small_n):
    """veil's keyswitch runs on the top 32 bits of every word (engine/include/
    veil/ks32.h): each key word rounded to 32 bits (a uniform error of at most
    2^31, variance 2^64/12), seen through the small key (1 + n/2 words) and
    times each of the big_n * level digits (E[d^2] = (B^2 + 2)/12), plus the
    body's own rounding. engine/src/params.c ks32_variance."""
    base = 2.0 ** base_log
    word = 2.0 ** 64 / 12.0
    return (big_n * level * (base * base + 2.0) / 12.0 * (1.0 + 0.5 * small_n) + 1.0) * word


def var_keyswitch(big_n, base_log, level, var_ksk, small_n):
    """[KS1] x [KS]: keyswitch from dimension big_n with binary keys.
    per input coefficient: (q^2/(12 B^2l) - 1/12) * (Var(s)+E(s)^2)
                           + Var(s)/4 + l * var_ksk * (B^2 + 2)/12
    with Var(s) = E(s)^2 = 1/4 (binary key), all modular; plus veil's 32-bit
    rounding of the key (var_ks32) into a small key of dimension small_n."""
    b2l = 2.0 ** (2 * base_log * level)
    base = 2.0 ** base_log
    res2 = (Q2 / (12.0 * b2l) - 1.0 / 12.0) * (0.25 + 0.25)
    res3 = 0.25 * 0.25
    res4 = level * var_ksk * (base * base + 2.0) / 12.0
    return big_n * (res2 + res3 + res4) + var_ks32(big_n, base_log, level, small_n)


def var_fft(k, poly, base_log, level):
    """[EP] fft_noise_variance_external_product_glwe, modular:
    2^FFT_SCALING_WEIGHT * 2^(2*(64-53)) * l * B^2 * N^2 * (k+1)."""
    lost = LOG2_Q - FFT_PRECISION
    return (2.0 ** FFT_SCALING_WEIGHT * 2.0 ** (2 * lost) * level
            * (2.0 ** base_log) ** 2 * float(poly) ** 2 * (k + 1))


def ext_prod_terms(k, poly, base_log, level, var_bsk):
    """[EP] theoretical_variance_external_product_glwe's two terms, modular:
    the key's (the GGSW noise through the digits) and the decomposition's."""
    b = 2.0 ** base_log
    b2l = 2.0 ** (2 * base_log * level)
    kn = float(k * poly)
    key = level * (k + 1) * poly * (b * b + 2.0) / 12.0 * var_bsk
    decomp = ((Q2 - b2l) / (24.0 * b2l) * (1.0 + kn * (0.25 + 0.25))
              + kn / 8.0 * 0.25 + (1.0 / 16.0) * (1.0 - kn) ** 2 * 0.25)
    return key, decomp


def var_external_product(k, poly, base_log, level, var_bsk):
    """[EP] theoretical_variance_external_product_glwe + FFT term, modular."""
    key, decomp = ext_prod_terms(k, poly, base_log, level, var_bsk)
    return key + decomp + var_fft(k, poly, base_log, level)


def var_blind_rotate(n, k, poly, base_log, level, var_bsk):
    """[BR] n CMUXes, each one external product (cmux.rs)."""
    return n * var_external_product(k, poly, base_log, level, var_bsk)


def var_modulus_switch(n, poly):
    """[MS] estimate_modulus_switching_noise_with_binary_key, modular, w = 2N:
    (1/12 + n/24) * q^2/w^2 + (-1/12 + n/48)."""
    w = 2.0 * poly
    return (1.0 / 12.0 + n / 24.0) * Q2 / (w * w) + (-1.0 / 12.0 + n / 48.0)


def var_modulus_switch_centered(n, poly):
    """TFHE-rs noise_formulas/centered_mean_shifted_modulus_switch.rs (for
    VEIL_MS_CENTERED sets): n * (1/24 + 1/48 * q^2/w^2), modular, plus the
    body's own rounding (q^2/w^2 - 1)/12, which that formula leaves out
    (engine/src/params.c ms_variance_of). Independent of the key's weight:
    each mask rounding is seen through s_i - 1/2, of square 1/4."""
    w = 2.0 * poly
    return n * (1.0 / 24.0 + (1.0 / 48.0) * Q2 / (w * w)) + (Q2 / (w * w) - 1.0) / 12.0


# [MB] Concrete's JIT_FFT_SCALING_WEIGHT: veil sums a group's 2^g GGSWs exactly
# in the standard domain and transforms the sum (engine/src/pbs.c multibit_step).
JIT_FFT_SCALING_WEIGHT = -2.0155414942985717


def var_multibit_blind_rotate(n, grouping, k, poly, base_log, level, var_bsk):
    """[MB] as veil corrects it, exactly engine/src/params.c
    veil_noise_multibit_pbs_output_variance (keep the two in sync): n/g
    external products, each with the classic key term times 2^g (a group's
    2^g GGSWs add their noises), the classic decomposition term doubled (the
    message is a monomial, of norm 1 every time, where a CMux's is a key bit)
    and the jit-FFT term (weight JIT_FFT_SCALING_WEIGHT)."""
    key, decomp = ext_prod_terms(k, poly, base_log, level, var_bsk)
    b = 2.0 ** base_log
    fft = (2.0 ** JIT_FFT_SCALING_WEIGHT * 2.0 ** (2 * (LOG2_Q - FFT_PRECISION)) * level
           * b ** 2 * float(poly) ** 2 * (k + 1))
    return (n // grouping) * (key * 2.0 ** grouping + 2.0 * decomp + fft)


def var_modulus_switch_multibit(n, grouping, poly):
    """veil's multi-bit switch (engine/src/params.c ms_variance_of, grouping >=
    2; keep in sync): each group's selected subset is switched as one 64-bit
    sum (TFHE-rs's modulus_switch_multi_bit), one uniform rounding per group
    whose key bits are not all 0 (probability 1 - 2^-g), plus the body's:
    ((n/g)(1 - 2^-g) + 1)(q^2/w^2 - 1)/12, w = 2N."""
    qw2 = Q2 / (2.0 * poly) ** 2
    return ((n // grouping) * (1.0 - 2.0 ** -grouping) + 1.0) * (qw2 - 1.0) / 12.0


def bsk_bytes_multibit(n, grouping, k, poly, level):
    """The standard-domain multi-bit BSK veil keeps (no Fourier copy): (n/g)
    2^g GGSWs of (k+1)^2 l polynomials of N 64-bit words."""
    return (n // grouping) * 2 ** grouping * (k + 1) ** 2 * level * poly * 8


def fatal_limit(precision):
    """[ERR] fatal_variance_limit with 1 left (padding) + 1 right padding bit:
    a value of p bits with one padding bit has Delta = 2^(63-p); it decodes
    correctly while |noise| < Delta/2 = 2^(64 - p - 2)."""
    return 2.0 ** (LOG2_Q - precision - 2)


def log2_erfc(x):
    """log2(erfc(x)), accurate for large x too (asymptotic expansion)."""
    if x < 25.0:
        v = math.erfc(x)
        if v > 0.0:
            return math.log2(v)
    # erfc(x) ~ exp(-x^2)/(x sqrt(pi)) * (1 - 1/(2x^2) + 3/(4x^4))
    s = 1.0 - 1.0 / (2 * x * x) + 3.0 / (4 * x ** 4)
    return (-x * x - math.log(x * math.sqrt(math.pi)) + math.log(s)) / math.log(2.0)


def log2_p_fail(precision, variance):
    """[ERR] inverted: P(|N(0, variance)| > fatal_limit) = erfc(limit / sqrt(2 var))."""
    return log2_erfc(fatal_limit(precision) / math.sqrt(2.0 * variance))


def cost_pbs(n, k, poly, level):
    """[CX] PbsComplexity = n * cmux, cmux.rs SimpleWithFactors (factors 1):
    (k+1) l (N log2 N + N) + (k+1) (N log2 N + N) + (k+1)^2 l N."""
    fft = poly * math.log2(poly) + poly
    return n * ((k + 1) * level * fft + (k + 1) * fft + (k + 1) ** 2 * level * poly)


def cost_multibit_pbs(n, grouping, k, poly, level):
    """[MBX] MultiBitPbsComplexity with jit_fft (veil's case): (n/g) CMuxes of
    cost_pbs, plus 2 (2^g - 1) ggsw_size for the group sum and ggsw_size log2 N
    for its transform, ggsw_size = l (k+1)^2 N. As Concrete writes it, those
    last two terms count once per PBS, not once per group (n/g times) as the
    engine runs them; kept as Concrete has it."""
    ggsw_size = level * (k + 1) ** 2 * poly
    return ((n / grouping) * cost_pbs(1, k, poly, level)
            + 2.0 * (2.0 ** grouping - 1.0) * ggsw_size + ggsw_size * math.log2(poly))


def cost_ks(big_n, n, level):
    """[CX] keyswitch_lwe.rs KsComplexity."""
    dec = big_n * level
    mul = big_n * level * (n + 1)
    add = (big_n * level - 1) * (n + 1) + 1
    return float(dec + mul + add)


# ------------------------------------------------------------------ search --

def decompositions(max_level=12):
    out = []
    for level in range(1, max_level + 1):
        for base_log in range(1, 64 // level + 1):
            out.append((base_log, level))
    return out


def pareto(options):
    """options: (cost, var, payload). Keep the points no other dominates,
    sorted by increasing cost (hence decreasing variance)."""
    options.sort(key=lambda o: (o[0], o[1]))
    front = []
    best_var = float("inf")
    for o in options:
        if o[1] < best_var:
            front.append(o)
            best_var = o[1]
    return front


# The modulus switch of the derived sets, by the C name of its kind: the
# variance function and the veil_ms_kind written in each row.
MS_KINDS = {"centered": (var_modulus_switch_centered, "VEIL_MS_CENTERED"),
            "standard": (var_modulus_switch, "VEIL_MS_STANDARD")}


# The largest standard-domain multi-bit BSK a derived set may have (1 GiB).
MB_BSK_MAX_BYTES = 2 ** 30


def search(cells, n_range, glwe_shapes, p_fail_log2_target, ms="centered", ks_dim=None,
           grouping=0):
    """Brute force over (k, N, n) with Pareto fronts for the two
    decompositions, with the modulus switch `ms` (a key of MS_KINDS).
    ks_dim: the keyswitch reads that many rows (values under a prefix of the
    key, veil_program.input_width) instead of the set's own k*N; only shapes
    with k*N > ks_dim. grouping g >= 2: multi-bit sets (ms "standard", n a
    multiple of g, the multi-bit noise and cost, BSK <= MB_BSK_MAX_BYTES).
    Returns {cell: best} with best a dict (its "ms" the kind)."""
    var_ms = MS_KINDS[ms][0]
    if grouping:
        if ms != "standard":
            raise SystemExit("multi-bit sets switch the standard way (engine/src/pbs.c)")
        n_range = [n for n in n_range if n % grouping == 0]
    decs = decompositions()
    best = {c: None for c in cells}
    kappa_var = {}
    for (prec, norm2) in cells:
        # largest total variance allowed: solve log2_p_fail(prec, V) = target
        lo, hi = 0.0, 2.0 ** 130
        for _ in range(200):
            mid = math.sqrt(lo * hi) if lo > 0 else hi / 2 ** 60
            if log2_p_fail(prec, mid) <= p_fail_log2_target:
                lo = mid
            else:
                hi = mid
        kappa_var[(prec, norm2)] = lo
    for (k, poly) in glwe_shapes:
        big_n = k * poly
        if ks_dim is not None and big_n <= ks_dim:
            continue
        ks_n = big_n if ks_dim is None else ks_dim
        var_bsk = min_variance(big_n)
        for n in n_range:
            var_ksk = min_variance(n)
            if grouping:
                v_ms = var_modulus_switch_multibit(n, grouping, poly)
                br = pareto([(cost_multibit_pbs(n, grouping, k, poly, l),
                              var_multibit_blind_rotate(n, grouping, k, poly, b, l, var_bsk),
                              (b, l)) for (b, l) in decs
                             if bsk_bytes_multibit(n, grouping, k, poly, l) <= MB_BSK_MAX_BYTES])
            else:
                v_ms = var_ms(n, poly)
                br = pareto([(cost_pbs(n, k, poly, l),
                              var_blind_rotate(n, k, poly, b, l, var_bsk), (b, l))
                             for (b, l) in decs])
            ks = pareto([(cost_ks(ks_n, n, l), var_keyswitch(ks_n, b, l, var_ksk, n), (b, l))
                         for (b, l) in decs])
            for cell in cells:
                prec, norm2 = cell
                vmax = kappa_var[cell]
                if v_ms >= vmax:
                    continue
                cur = best[cell]
                for (c_br, v_br, d_br) in br:
                    rest = vmax - v_ms - norm2 * norm2 * v_br
                    if rest <= 0:
                        continue
                    if cur is not None and c_br >= cur["cost"]:
                        break
                    # cheapest ks with v_ks <= rest (ks sorted: cost up, var down)
                    for (c_ks, v_ks, d_ks) in ks:
                        if v_ks <= rest:
                            total = c_br + c_ks
                            if cur is None or total < cur["cost"]:
                                cur = {"cost": total, "n": n, "k": k, "N": poly,
                                       "pbs": d_br, "ks": d_ks, "v_br": v_br,
                                       "v_ks": v_ks, "v_ms": v_ms, "ms": ms,
                                       "ks_dim": ks_dim, "grouping": grouping}
                            break
                best[cell] = cur
    return best


# -------------------------------------------------------------- validation --

# TFHE-rs v1.1 classic KS-PBS Gaussian 2^-64 sets (standard modulus switch),
# copied in engine/src/params.c: (name, n, k, N, lwe_std, glwe_std, pbs B, l,
# ks B, l, precision, 2-norm, published log2_p_fail)
PUBLISHED = [
    ("V1_1_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M64", 781, 4, 512,
     8.868480365938865e-06, 2.845267479601915e-15, 23, 1, 4, 3, 2, 3, -64.01),
    ("V1_1_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M64", 833, 1, 2048,
     3.6158408373309336e-06, 2.845267479601915e-15, 23, 1, 3, 5, 4, 5, -64.014),
    ("V1_1_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M64", 977, 1, 8192,
     3.0144389706858286e-07, 2.168404344971009e-19, 15, 2, 3, 6, 6, 9, -64.177),
]


def model_p_fail(n, k, poly, lwe_std, glwe_std, pb, pl, kb, kl, prec, norm2):
    v_lwe = (lwe_std * 2.0 ** 64) ** 2
    v_glwe = (glwe_std * 2.0 ** 64) ** 2
    v_br = var_blind_rotate(n, k, poly, pb, pl, v_glwe)
    v_ks = var_keyswitch(k * poly, kb, kl, v_lwe, n)
    v_ms = var_modulus_switch(n, poly)
    total = norm2 * norm2 * v_br + v_ks + v_ms
    return log2_p_fail(prec, total), v_br, v_ks, v_ms


def validate():
    rows = []
    for (name, n, k, poly, ls, gs, pb, pl, kb, kl, prec, norm2, pub) in PUBLISHED:
        lp, v_br, v_ks, v_ms = model_p_fail(n, k, poly, ls, gs, pb, pl, kb, kl, prec, norm2)
        rows.append((name, pub, lp, v_br, v_ks, v_ms))
    return rows


# ------------------------------------------------------------------ output --

def params_row(ident, n, k, poly, lwe_std, glwe_std, pbs, ks, prec, norm2, ms, lp, sec, flags,
               src, ks_dim=None, grouping=0):
    """One C initializer of veil_params (engine/include/veil/params.h): stds
    on the torus, pbs and ks as (base log, level), ms a key of MS_KINDS;
    ks_dim (not None): the trailing grouping 0 and ks_in_dim fields;
    grouping (multi-bit): the trailing grouping and ks_in_dim 0."""
    tail = "" if ks_dim is None else ", 0, %d" % ks_dim
    if grouping:
        tail = ", %d, 0" % grouping
    return ('{"%s", %d, %d, %d, {VEIL_NOISE_GAUSSIAN, %.17g, 0}, {VEIL_NOISE_GAUSSIAN, %.17g, 0}, '
            '%d, %d, %d, %d, %d, %.17g, %s, %.6f, %.1f, %s, "%s"%s},'
            % (ident, n, k, poly, lwe_std, glwe_std, pbs[0], pbs[1], ks[0], ks[1], prec,
               float(norm2), MS_KINDS[ms][1], lp, float(sec), flags, src, tail))


def weak_md_row(ident, target, prec, norm2, n, k, poly, pbs, ks, v_br, v_ks, v_ms, lp):
    """One row of the weak sets' table in docs/PARAMS.md."""
    return ("| %s | 2^%d | %d | %d | %d | %d | %d | %d,%d | %d,%d | %.2f | %.2f | %.2f | %.3f |"
            % (ident, int(target), prec, norm2, n, k, poly, pbs[0], pbs[1], ks[0], ks[1],
               math.log2(v_br), math.log2(v_ks), math.log2(v_ms), lp))


def c_row(ident, b, prec, norm2, flags, src):
    """The C row of the search result b, noises at the 128-bit minimum of [SEC]."""
    n, k, poly = b["n"], b["k"], b["N"]
    lwe_l2, glwe_l2 = secure_log2_std(n), secure_log2_std(k * poly)
    total = norm2 * norm2 * b["v_br"] + b["v_ks"] + b["v_ms"]
    lp = log2_p_fail(prec, total)
    sec = min(security_estimate(n, lwe_l2), security_estimate(k * poly, glwe_l2))
    return params_row(ident, n, k, poly, 2.0 ** lwe_l2, 2.0 ** glwe_l2, b["pbs"], b["ks"], prec,
                      norm2, b["ms"], lp, sec, flags, src, b.get("ks_dim"), b.get("grouping", 0))


def replace_between(path, begin, end, lines):
    with open(path) as f:
        doc = f.read()
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        raise SystemExit("%s: markers %s ... %s not found" % (path, begin, end))
    doc = doc[:i + len(begin)] + "\n" + "\n".join(lines) + "\n" + doc[j:]
    with open(path, "w") as f:
        f.write(doc)


# Deliberately weak sets, for measuring failures (tests/test_pfail*.c): the
# same search at loose targets, so that a PBS fails often enough to count.
# Precision 1 with 2-norm 1 is the cheapest cell; at these targets the search
# keeps the shape (k=3, N=512) and lowers n, and the keyswitch noise dominates
# (the FFT term, an upper estimate for FFTW, hardly matters).
WEAK_PRECISION = 1
WEAK_NORM2 = 1
WEAK_TARGETS = (-8.0, -11.0, -14.0)


def emit_weak(out_inc, out_md, n_range, shapes):
    cell = (WEAK_PRECISION, WEAK_NORM2)
    lines = [
        "/* Generated by scripts/params/derive.py --weak -- do not edit by hand.",
        " * TEST ONLY: deliberately weak KS-PBS sets (p_fail 2^-8 .. 2^-14 per PBS) for",
        " * counting decoding failures against the noise model (tests/test_pfail*.c).",
        " * weak-p1-*: noises at the 128-bit minimum, k = 3, N = 512, n searched.",
        " * weak-k1-p1-*: NOT SECURE, relaxed for speed (derive.py, WEAK_CHEAP_SHAPE):",
        " * n = 256, k = 1, N = 256, GLWE std 2^-40, the KSK noise solved for the target.",
        " * weak-ms-p4-*: NOT SECURE (derive.py, WEAK_MS_SHAPE): k = 1, N = 256, precision 4,",
        " * the centred modulus switch nearly all the noise, n solved for the target.",
        " * Never add them to engine/src/params.c: no compiler option can select them. */",
    ]
    md = ["| id | target | p | norm2 | n | k | N | pbs B,l | ks B,l | log2 vbr | log2 vks "
          "| log2 vms | log2 p_fail |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for target in WEAK_TARGETS:
        b = search([cell], n_range, shapes, target, ms="standard")[cell]
        ident = "weak-p%d-2m%d" % (WEAK_PRECISION, int(-target))
        total = WEAK_NORM2 ** 2 * b["v_br"] + b["v_ks"] + b["v_ms"]
        lp = log2_p_fail(WEAK_PRECISION, total)
        src = ("scripts/params/derive.py --weak: TEST ONLY, cheapest set with log2 p_fail <= %g "
               "at p=%d, norm2=%d (Concrete noise model, 128-bit curve)"
               % (target, WEAK_PRECISION, WEAK_NORM2))
        lines.append(c_row(ident, b, WEAK_PRECISION, WEAK_NORM2, "0", src))
        md.append(weak_md_row(ident, target, WEAK_PRECISION, WEAK_NORM2, b["n"], b["k"], b["N"],
                              b["pbs"], b["ks"], b["v_br"], b["v_ks"], b["v_ms"], lp))
    for target in WEAK_TARGETS:
        row, mdrow = cheap_weak_set(target)
        lines.append(row)
        md.append(mdrow)
    row, mdrow = centred_weak_set(WEAK_TARGETS[0])
    lines.append(row)
    md.append(mdrow)
    with open(out_inc, "w") as f:
        f.write("\n".join(lines) + "\n")
    replace_between(out_md, "<!-- BEGIN WEAK-TABLE (derive.py --weak) -->",
                    "<!-- END WEAK-TABLE -->", md)
    return 2 * len(WEAK_TARGETS) + 1


# Cheaper weak sets, for the 10^6-PBS count (tests/test_pfail_slow.c): the
# sets above cost about 12 ms a KS-PBS on one core (10^6: 3.3 CPU-hours).
# These fix a small shape instead of searching: k = 1, N = 256, n = 256
# (about 10x cheaper). RELAXED, deliberately: no security at all (n and
# k*N = 256 are below the 128-bit curve's minimal dimension 450); the GLWE
# noise is fixed at 2^-40 (std dev), small enough that the blind rotation adds
# almost nothing, like the sets above; the KSK noise (lwe_noise) is free,
# solved so that the model's p_fail equals the target. The keyswitch base
# 2^2, 4 levels (2^8 precision) makes its rounding term about 10% of the
# error and the modulus switch about 2-4%, so the key-dependent terms
# (Hamming weights, the KSK's actual noise; veil_noise_log2_p_fail_key)
# all show. Same precision 1 and 2-norm 1 as above.
WEAK_CHEAP_SHAPE = {"n": 256, "k": 1, "N": 256, "pbs": (18, 1), "ks": (2, 4)}
WEAK_CHEAP_GLWE_LOG2_STD = -40.0


def cheap_weak_set(target):
    s = WEAK_CHEAP_SHAPE
    n, k, poly = s["n"], s["k"], s["N"]
    (pb, pl), (kb, kl) = s["pbs"], s["ks"]
    v_br = var_blind_rotate(n, k, poly, pb, pl, 2.0 ** (2 * (WEAK_CHEAP_GLWE_LOG2_STD + LOG2_Q)))
    v_ms = var_modulus_switch(n, poly)
    v_ks0 = var_keyswitch(k * poly, kb, kl, 0.0, n)
    # total variance at the target, then the KSK noise that fills it
    lo, hi = 0.0, 2.0 ** 130
    for _ in range(300):
        mid = 0.5 * (lo + hi)
        if log2_p_fail(WEAK_PRECISION, mid) <= target:
            lo = mid
        else:
            hi = mid
    per_var = k * poly * kl * ((2.0 ** kb) ** 2 + 2.0) / 12.0
    var_ksk = (lo - WEAK_NORM2 ** 2 * v_br - v_ms - v_ks0) / per_var
    if var_ksk <= 0:
        raise SystemExit("cheap weak set at 2^%g: no room for the KSK noise" % target)
    lwe_std = math.sqrt(var_ksk) / 2.0 ** LOG2_Q
    v_ks = var_keyswitch(k * poly, kb, kl, var_ksk, n)
    lp = log2_p_fail(WEAK_PRECISION, WEAK_NORM2 ** 2 * v_br + v_ks + v_ms)
    ident = "weak-k1-p%d-2m%d" % (WEAK_PRECISION, int(-target))
    src = ("scripts/params/derive.py --weak: TEST ONLY, NOT SECURE (relaxed: n = %d, k*N = %d below "
           "the 128-bit curve; GLWE std 2^%g fixed; KSK noise solved for log2 p_fail = %g at p=%d, "
           "norm2=%d, Concrete noise model)"
           % (n, k * poly, WEAK_CHEAP_GLWE_LOG2_STD, target, WEAK_PRECISION, WEAK_NORM2))
    row = params_row(ident, n, k, poly, lwe_std, 2.0 ** WEAK_CHEAP_GLWE_LOG2_STD, s["pbs"],
                     s["ks"], WEAK_PRECISION, WEAK_NORM2, "standard", lp, 0.0, "0", src)
    return row, weak_md_row(ident, target, WEAK_PRECISION, WEAK_NORM2, n, k, poly, s["pbs"],
                            s["ks"], v_br, v_ks, v_ms, lp)


# A weak set whose noise is almost all the centred modulus switch (what the
# derived 5- and 6-bit sets spend 90% and more of their budget on), for
# counting its failures (tests/test_pfail.c): NOT SECURE, like the cheap sets
# above (k = 1, N = 256, GLWE std 2^-40), with a quiet keyswitch (base 2^4, 5
# levels, KSK std 2^-25) and precision 4, n solved so that the model's
# p_fail is at most the target: the switch is then about 99.9% of the
# variance before the blind rotation.
WEAK_MS_SHAPE = {"k": 1, "N": 256, "pbs": (18, 1), "ks": (4, 5), "precision": 4}
WEAK_MS_LWE_LOG2_STD = -25.0


def centred_weak_set(target):
    s = WEAK_MS_SHAPE
    k, poly, prec = s["k"], s["N"], s["precision"]
    (pb, pl), (kb, kl) = s["pbs"], s["ks"]
    var_glwe = 2.0 ** (2 * (WEAK_CHEAP_GLWE_LOG2_STD + LOG2_Q))
    var_ksk = 2.0 ** (2 * (WEAK_MS_LWE_LOG2_STD + LOG2_Q))
    best = None
    for n in range(64, 4097):
        v_br = var_blind_rotate(n, k, poly, pb, pl, var_glwe)
        v_ks = var_keyswitch(k * poly, kb, kl, var_ksk, n)
        v_ms = var_modulus_switch_centered(n, poly)
        lp = log2_p_fail(prec, v_br + v_ks + v_ms)
        if lp > target:
            break
        best = (n, v_br, v_ks, v_ms, lp)
    if best is None:
        raise SystemExit("centred weak set at 2^%g: no n" % target)
    n, v_br, v_ks, v_ms, lp = best
    ident = "weak-ms-p%d-2m%d" % (prec, int(-target))
    src = ("scripts/params/derive.py --weak: TEST ONLY, NOT SECURE (relaxed: k*N = %d, GLWE std "
           "2^%g, KSK std 2^%g; centred modulus switch %.1f%% of the variance; n solved for "
           "log2 p_fail <= %g at p=%d, norm2=1, Concrete noise model)"
           % (k * poly, WEAK_CHEAP_GLWE_LOG2_STD, WEAK_MS_LWE_LOG2_STD,
              100.0 * v_ms / (v_br + v_ks + v_ms), target, prec))
    row = params_row(ident, n, k, poly, 2.0 ** WEAK_MS_LWE_LOG2_STD,
                     2.0 ** WEAK_CHEAP_GLWE_LOG2_STD, s["pbs"], s["ks"], prec, 1, "centered", lp,
                     0.0, "0", src)
    return row, weak_md_row(ident, target, prec, 1, n, k, poly, s["pbs"], s["ks"], v_br, v_ks,
                            v_ms, lp)


def cell_of_id(ident):
    """(keyswitch rows, precision, log2 norm) of an id nn-p<P>-norm2e<E>-2m40
    (rows 0: the set's own k*N) or nn-p<P>-norm2e<E>-r<D>-2m40."""
    m = re.match(r"nn-p(\d+)-norm2e(\d+)-(?:r(\d+)-)?", ident)
    return (int(m.group(3) or 0), int(m.group(1)), int(m.group(2))) if m else None


def keep_rows(lines, md, out_inc, out_md):
    """With --keep: the rows already in out_inc and out_md for cells not
    derived in this run, merged with this run's, sorted by (precision,
    2-norm); this run's row wins for a cell in both."""
    def row_id(line, prefix):
        m = re.match(prefix, line)
        return m.group(1) if m else None
    new_inc = {row_id(l, r'\{"([^"]+)"'): l for l in lines if row_id(l, r'\{"([^"]+)"')}
    new_md = {row_id(l, r"\| (nn-\S+) \|"): l for l in md if row_id(l, r"\| (nn-\S+) \|")}
    with open(out_inc) as f:
        for l in f.read().splitlines():
            i = row_id(l, r'\{"([^"]+)"')
            if i and i not in new_inc:
                new_inc[i] = l
    with open(out_md) as f:
        doc = f.read()
    begin, end = "<!-- BEGIN NN-TABLE (derive.py) -->", "<!-- END NN-TABLE -->"
    for l in doc[doc.find(begin):doc.find(end)].splitlines():
        i = row_id(l, r"\| (nn-\S+) \|")
        if i and i not in new_md:
            new_md[i] = l
    order = lambda d: [d[i] for i in sorted(d, key=cell_of_id)]
    return (lines[:len(lines) - sum(1 for l in lines if row_id(l, r'\{"([^"]+)"'))] + order(new_inc),
            md[:2] + order(new_md))


def emit(best, cells, target, out_inc, out_md, keep=False, ms="centered", ks_dim=None):
    lines = [
        "/* Generated by scripts/params/derive.py -- do not edit by hand.",
        " * Neural-network KS-PBS sets: cheapest set (Concrete's cost model) with",
        " * log2 p_fail <= %g per PBS at the given precision and 2-norm, all noises at" % target,
        " * the 128-bit minimum of Concrete's security curve (docs/PARAMS.md), with",
        " * the %s modulus switch (%s). */" % (ms, MS_KINDS[ms][1]),
    ]
    md = ["| id | p | norm2 | n | k | N | pbs B,l | ks B,l | log2 std lwe | log2 std glwe "
          "| log2 p_fail | cost |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    count = 0
    for cell in cells:
        prec, norm2 = cell
        b = best[cell]
        lognorm = int(round(math.log2(norm2)))
        ident = "nn-p%d-norm2e%d-%s2m40" % (prec, lognorm, "" if ks_dim is None else
                                             "r%d-" % ks_dim)
        if b is None and ks_dim is not None:
            continue  # no shape wider than ks_dim reads it: the normal set does
        if b is None:
            md.append("| %s | %d | 2^%d | infeasible for N <= 2^16 | | | | | | | | |"
                      % (ident, prec, lognorm))
            continue
        n, k, poly = b["n"], b["k"], b["N"]
        lwe_l2 = secure_log2_std(n)
        glwe_l2 = secure_log2_std(k * poly)
        lp = log2_p_fail(prec, norm2 * norm2 * b["v_br"] + b["v_ks"] + b["v_ms"])
        flags = "VEIL_PARAMS_NN" + (" | VEIL_PARAMS_SLOW" if poly >= 16384 else "")
        src = ("scripts/params/derive.py: Concrete noise model (concrete-cpu noise-model), %s "
               "modulus switch, 128-bit security curve, p=%d, norm2=2^%d, log2 p_fail <= %g, "
               "cost %.4g" % (ms, prec, lognorm, target, b["cost"]))
        if ks_dim is not None:
            src += ", keyswitch from %d rows (values under a prefix of the key)" % ks_dim
        lines.append(c_row(ident, b, prec, norm2, flags, src))
        md.append("| %s | %d | 2^%d | %d | %d | %d | %d,%d | %d,%d | %.3f | %.3f | %.2f | %.3g |"
                  % (ident, prec, lognorm, n, k, poly, b["pbs"][0], b["pbs"][1], b["ks"][0],
                     b["ks"][1], lwe_l2, glwe_l2, lp, b["cost"]))
        count += 1
    if keep:
        lines, md = keep_rows(lines, md, out_inc, out_md)
    with open(out_inc, "w") as f:
        f.write("\n".join(lines) + "\n")
    replace_between(out_md, "<!-- BEGIN NN-TABLE (derive.py) -->", "<!-- END NN-TABLE -->", md)
    return count


MB_BEGIN = "<!-- BEGIN NN-MB-TABLE (derive.py --grouping) -->"
MB_END = "<!-- END NN-MB-TABLE -->"


def mb_id(grouping, prec, lognorm):
    """Ids of the derived multi-bit sets: the classic scheme with the grouping."""
    return "nn-mb%d-p%d-norm2e%d-2m40" % (grouping, prec, lognorm)


def mb_key_of_id(ident):
    """(grouping, precision, log2 norm) of an id of mb_id, else None."""
    m = re.match(r"nn-mb(\d+)-p(\d+)-norm2e(\d+)-2m40$", ident)
    return tuple(int(x) for x in m.groups()) if m else None


def emit_multibit(results, cells, target, out_inc, out_md):
    """results: {grouping: {cell: best}}. Writes every grouping's rows to
    out_inc and out_md; the rows of a grouping not derived in this run are
    kept from the files, so one grouping can be derived again alone."""
    inc, md = {}, {}
    for g in sorted(results):
        for cell in cells:
            prec, norm2 = cell
            lognorm = int(round(math.log2(norm2)))
            ident = mb_id(g, prec, lognorm)
            b = results[g][cell]
            if b is None:
                md[ident] = ("| %s | %d | %d | 2^%d | infeasible (N <= 2^16, BSK <= 1 GiB) "
                             "| | | | | | | | | | |" % (ident, g, prec, lognorm))
                continue
            n, k, poly = b["n"], b["k"], b["N"]
            lwe_l2, glwe_l2 = secure_log2_std(n), secure_log2_std(k * poly)
            lp = log2_p_fail(prec, norm2 * norm2 * b["v_br"] + b["v_ks"] + b["v_ms"])
            sec = min(security_estimate(n, lwe_l2), security_estimate(k * poly, glwe_l2))
            flags = "VEIL_PARAMS_NN" + (" | VEIL_PARAMS_SLOW" if poly >= 16384 else "")
            src = ("scripts/params/derive.py --grouping %d: Concrete multi-bit noise model "
                   "(concrete-cpu noise-model, veil's corrections), standard modulus switch per "
                   "group, 128-bit security curve, p=%d, norm2=2^%d, log2 p_fail <= %g, "
                   "cost %.4g (concrete-optimizer MultiBitPbsComplexity, jit FFT)"
                   % (g, prec, lognorm, target, b["cost"]))
            inc[ident] = c_row(ident, b, prec, norm2, flags, src)
            mib = bsk_bytes_multibit(n, g, k, poly, b["pbs"][1]) / 2.0 ** 20
            md[ident] = ("| %s | %d | %d | 2^%d | %d | %d | %d | %d,%d | %d,%d | %.0f | %.3f "
                         "| %.3f | %d | %.2f | %.3g |"
                         % (ident, g, prec, lognorm, n, k, poly, b["pbs"][0], b["pbs"][1],
                            b["ks"][0], b["ks"][1], mib, lwe_l2, glwe_l2, sec, lp, b["cost"]))
    # the other groupings' rows, as the files have them
    if os.path.exists(out_inc):
        with open(out_inc) as f:
            for line in f.read().splitlines():
                m = re.match(r'\{"([^"]+)"', line)
                if m and mb_key_of_id(m.group(1)) and mb_key_of_id(m.group(1))[0] not in results:
                    inc[m.group(1)] = line
    with open(out_md) as f:
        doc = f.read()
    if doc.find(MB_BEGIN) >= 0:
        for line in doc[doc.find(MB_BEGIN):doc.find(MB_END)].splitlines():
            m = re.match(r"\| (nn-mb\S+) \|", line)
            if m and mb_key_of_id(m.group(1)) and mb_key_of_id(m.group(1))[0] not in results:
                md[m.group(1)] = line
    lines = [
        "/* Generated by scripts/params/derive.py --grouping -- do not edit by hand.",
        " * Neural-network multi-bit KS-PBS sets (grouping g = 2, 3, 4; n a multiple of g):",
        " * cheapest set (concrete-optimizer's MultiBitPbsComplexity + keyswitch cost)",
        " * with log2 p_fail <= %g per PBS at the given precision and 2-norm by" % target,
        " * veil's multi-bit noise model (params.c veil_noise_multibit_pbs_output_variance), all",
        " * noises at the 128-bit minimum of Concrete's security curve, the standard modulus",
        " * switch per group (VEIL_MS_STANDARD), standard-domain BSK <= 1 GiB",
        " * (docs/PARAMS.md section 9). */",
    ]
    lines += [inc[i] for i in sorted(inc, key=mb_key_of_id)]
    table = ["| id | g | p | norm2 | n | k | N | pbs B,l | ks B,l | BSK MiB | log2 std lwe "
             "| log2 std glwe | security | log2 p_fail | cost |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    table += [md[i] for i in sorted(md, key=mb_key_of_id)]
    with open(out_inc, "w") as f:
        f.write("\n".join(lines) + "\n")
    replace_between(out_md, MB_BEGIN, MB_END, table)
    return len(inc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--validate", action="store_true", help="only recompute published p_fail")
    ap.add_argument("--weak", action="store_true",
                    help="write only the TEST-ONLY weak sets (tests/params_weak.inc)")
    ap.add_argument("--out-weak", default=os.path.join(root, "tests/params_weak.inc"))
    ap.add_argument("--target", type=float, default=-40.0, help="log2 p_fail per PBS")
    ap.add_argument("--ms", choices=sorted(MS_KINDS), default=None,
                    help="modulus switch of the derived sets (default centered: TFHE-rs's "
                         "CenteredMeanNoiseReduction, half the standard switch's mask term; "
                         "multi-bit sets: standard only, what engine/src/pbs.c runs)")
    ap.add_argument("--grouping", default="",
                    help="comma list of 2, 3, 4: derive multi-bit sets of those groupings "
                         "(ids nn-mb<G>-p<P>-norm2e<E>-2m40) into --out-inc-mb and the "
                         "NN-MB-TABLE of --out-md; the other groupings' rows are kept")
    ap.add_argument("--out-inc-mb", default=os.path.join(root, "engine/src/params_nn_mb.inc"))
    ap.add_argument("--precisions", default=None,
                    help="comma list (default 0..8; multi-bit: 1..5)")
    ap.add_argument("--norms-log2", default="0,1,2,3,4,5,6,7,8,9,10,11,12,13,14")
    ap.add_argument("--keep", action="store_true",
                    help="keep the rows of --out-inc and --out-md for cells not derived in this "
                         "run (add a few cells without deriving the whole grid again)")
    ap.add_argument("--ks-dims", default="",
                    help="comma list: derive the cells again with the keyswitch reading only that "
                         "many rows (sets nn-...-r<D>-2m40 for values under a prefix of the "
                         "master key, veil_program.input_width; shapes with k*N > D only); "
                         "with --keep, added to the table")
    ap.add_argument("--n-min", type=int, default=500)
    ap.add_argument("--n-max", type=int, default=1400)
    ap.add_argument("--n-step", type=int, default=1)
    ap.add_argument("--out-inc", default=os.path.join(root, "engine/src/params_nn.inc"))
    ap.add_argument("--out-md", default=os.path.join(root, "docs/PARAMS.md"))
    args = ap.parse_args()

    print("validation against TFHE-rs v1.1 Gaussian 2^-64 sets (standard modulus switch):")
    print("%-52s %10s %10s %9s %9s %9s" % ("set", "published", "model", "log2 vbr",
                                           "log2 vks", "log2 vms"))
    for (name, pub, lp, v_br, v_ks, v_ms) in validate():
        print("%-52s %10.3f %10.3f %9.3f %9.3f %9.3f" % (name, pub, lp, math.log2(v_br),
                                                         math.log2(v_ks), math.log2(v_ms)))
    if args.validate:
        return 0

    shapes = [(k, 2 ** lg) for lg in range(9, 17) for k in range(1, 7) if k * 2 ** lg <= 2 ** 16]
    n_range = range(args.n_min, args.n_max + 1, args.n_step)
    if args.weak:
        count = emit_weak(args.out_weak, args.out_md, range(450, args.n_max + 1), shapes)
        print("wrote %d weak sets to %s and %s" % (count, args.out_weak, args.out_md))
        return 0
    if args.precisions is None:
        args.precisions = "1,2,3,4,5" if args.grouping else "0,1,2,3,4,5,6,7,8"
    precs = [int(x) for x in args.precisions.split(",")]
    norms = [2 ** int(x) for x in args.norms_log2.split(",")]
    cells = [(p, m) for p in precs for m in norms]
    if args.grouping:
        groupings = [int(x) for x in args.grouping.split(",")]
        if any(g not in (2, 3, 4) for g in groupings):
            raise SystemExit("--grouping: 2, 3 or 4 (VEIL_MULTIBIT_MAX_G)")
        results = {}
        for g in groupings:
            results[g] = search(cells, n_range, shapes, args.target, args.ms or "standard",
                                grouping=g)
            for cell, b in sorted(results[g].items()):
                if b is not None and b["n"] + g > args.n_max:
                    print("warning: g=%d cell %s at n = %d, the top of --n-max" % (g, cell, b["n"]))
        count = emit_multibit(results, cells, args.target, args.out_inc_mb, args.out_md)
        print("wrote %d multi-bit sets to %s and %s" % (count, args.out_inc_mb, args.out_md))
        return 0
    args.ms = args.ms or "centered"
    if args.ks_dims:
        count = 0
        for d in [int(x) for x in args.ks_dims.split(",")]:
            best = search(cells, n_range, shapes, args.target, args.ms, ks_dim=d)
            count += emit(best, cells, args.target, args.out_inc, args.out_md, True, args.ms,
                          ks_dim=d)
        print("wrote %d sets to %s and %s" % (count, args.out_inc, args.out_md))
        return 0
    best = search(cells, n_range, shapes, args.target, args.ms)
    count = emit(best, cells, args.target, args.out_inc, args.out_md, args.keep, args.ms)
    print("wrote %d sets to %s and %s" % (count, args.out_inc, args.out_md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
