/* tests/pfail_common.h — counting KS-PBS decoding failures on deliberately
 * weak parameter sets and comparing the count with the noise model
 * (issue 15, "Failure probability, measured"; docs/PARAMS.md section 7).
 *
 * The sets (tests/params_weak.inc, made by scripts/params/derive.py --weak)
 * exist only here: no engine table and no compiler option reaches them.
 *
 * Experiment: a batch of 1-bit values (precision 1, one padding bit) goes
 * round after round through the cpu backend's batched KS-PBS with the table
 * NOT = {1, 0}, so every value alternates. From the second round on, every
 * input is the output of a PBS (2-norm 1), the situation the model's p_fail
 * is computed for: input variance = veil_noise_pbs_output_variance(), plus
 * keyswitch and modulus switch. Round 0 (fresh inputs, less noise) is a
 * warm-up and is not counted. After each round every output is decrypted; a
 * failure is an output that is not NOT(the previous output's value). The
 * output's own noise (about 2^53 against a limit of 2^61) cannot flip it.
 *
 * Comparison: the count k of n gives a two-sided Clopper-Pearson interval at
 * confidence 1 - alpha for the true failure rate. The model gives an upper
 * prediction (Concrete's FFT term is fitted to Zama's FFT; FFTW and veil's
 * FFT are 2^10 below it, docs/PARAMS.md section 6) and a lower one (the
 * same without the FFT term). The check passes when the interval meets
 * [lower / slack, upper * slack]: the measured rate is consistent with the
 * model (slack 1: exactly, what both tests use).
 *
 * Two models: the average one (the set's p_fail, an average over keys) and
 * the per-key one (veil_noise_log2_p_fail_key with the key's Hamming weights
 * and its KSK's actual noise energy, pfail_key_noise). A count belongs to one
 * key, whose p_fail can differ from the average by tens of percent at these
 * rates (docs/results/pfail.md), so the check uses the per-key model; the
 * average one is printed beside it. */
#ifndef VEIL_TEST_PFAIL_COMMON_H
#define VEIL_TEST_PFAIL_COMMON_H

#include "testutil.h"
#include "backend_host.h"
#include "veil/backend.h"
#include "veil/ks32.h"
#include "veil/noise.h"
#include "veil/tfhe.h"
#include "../host/backend_internal.h"
#include "weak_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* log P(X <= k) for X ~ Binomial(n, p), summed in log space. */
static double binom_log_cdf(long k, long n, double p) {
    if (k < 0) return -INFINITY;
    if (k >= n) return 0.0;
    double lp = log(p), lq = log1p(-p), m = -INFINITY, acc = 0.0;
    double lg_n1 = lgamma((double)n + 1);
    /* terms rise to the mode then fall: accumulate relative to the largest */
    for (long i = 0; i <= k; i++) {
        double t = lg_n1 - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) + i * lp +
                   (double)(n - i) * lq;
        if (t > m) {
            acc = acc * exp(m - t) + 1.0;
            m = t;
        } else {
            acc += exp(t - m);
        }
    }
    return m + log(acc);
}

/* Two-sided Clopper-Pearson interval for k successes in n at 1 - alpha:
 * lo solves P(X >= k; lo) = alpha/2, hi solves P(X <= k; hi) = alpha/2. */
static void clopper_pearson(long k, long n, double alpha, double *lo, double *hi) {
    double target = log(alpha / 2);
    if (k == 0) {
        *lo = 0.0;
    } else {
        double a = 0.0, b = 1.0; /* P(X >= k; p) = 1 - P(X <= k-1; p), rising in p */
        for (int it = 0; it < 200; it++) {
            double mid = 0.5 * (a + b);
            /* log(1 - P(X <= k-1)); the sum can round to >= 1 */
            double c = binom_log_cdf(k - 1, n, mid);
            double ge = c >= 0 ? -INFINITY : log(-expm1(c));
            if (ge < target)
                a = mid;
            else
                b = mid;
        }
        *lo = a;
    }
    if (k == n) {
        *hi = 1.0;
    } else {
        double a = 0.0, b = 1.0; /* P(X <= k; p) falls in p */
        for (int it = 0; it < 200; it++) {
            double mid = 0.5 * (a + b);
            if (binom_log_cdf(k, n, mid) > target)
                a = mid;
            else
                b = mid;
        }
        *hi = b;
    }
}

/* The key-dependent quantities of veil/noise.h for partition 0 of (sk, ek):
 * the small and big keys' Hamming weights and the keyswitch's key term from
 * the KSK's noises e_ij (each row's body minus <mask, s> minus its message
 * S_i * 2^(64 - B (j+1)), as a signed 64-bit integer) with the digits'
 * exact moments (veil_noise_gadget_moments): *out. concrete (if not NULL):
 * the same key with Concrete's digit moments, (B^2 + 2)/12 times the
 * noises' energy; energy_ratio (if not NULL): that energy over its
 * expectation. Returns 0, or -1 with a line printed. Wipes its copies of the
 * key bits. */
static int pfail_key_noise(const veil_secret_key *sk, const veil_eval_key *ek, veil_noise_key *out,
                           veil_noise_key *concrete, double *energy_ratio) {
    const veil_pbs_key *pk = veil_eval_key_part(ek, 0);
    const veil_params *p = pk->params;
    const uint32_t n = p->lwe_dim, big = pk->in_dim, l = p->ks_level;
    uint64_t *s = calloc(n, 8), *S = calloc(big, 8);
    static double dd[64 * 64];
    double rd[64], e[64];
    int rc = -1;
    if (l > 64 || veil_noise_gadget_moments(p->ks_base_log, l, dd, rd)) {
        printf("pfail_key_noise (%s): no digit moments for B = 2^%u, %u levels\n", p->id,
               p->ks_base_log, l);
        goto done;
    }
    if (!s || !S || veil_test_sk_bits(sk, 0, s) != n ||
        veil_test_sk_bits(sk, VEIL_TEST_MASTER, S) != big) {
        printf("pfail_key_noise (%s): cannot read the key bits\n", p->id);
        goto done;
    }
    double ws = 0, wb = 0, energy = 0, quad = 0;
    for (uint32_t t = 0; t < n; t++)
        ws += (double)s[t];
    for (uint32_t i = 0; i < big; i++) {
        wb += (double)S[i];
        for (uint32_t j = 0; j < l; j++) {
            /* the words the keyswitch reads (veil/ks32.h): their rounding is
             * in e too, which the model also charges on average (a term
             * 2^-25 of the key's own noise at most: counted twice here) */
            const uint32_t *ct = pk->ksk32 + ((size_t)i * l + j) * (n + 1);
            uint64_t ph = veil_ks32_word(ct[n]) - (S[i] << (64 - p->ks_base_log * (j + 1)));
            for (uint32_t t = 0; t < n; t++)
                ph -= veil_ks32_word(ct[t]) * s[t];
            e[j] = (double)(int64_t)ph;
            energy += e[j] * e[j];
        }
        /* E[(S_i r_i - sum_j d_ij e_ij)^2] less S_i E[r^2] (the rounding
         * term, res2 of the model) */
        for (uint32_t j = 0; j < l; j++) {
            quad -= 2.0 * (double)S[i] * rd[j] * e[j];
            for (uint32_t k = 0; k < l; k++)
                quad += dd[j * l + k] * e[j] * e[k];
        }
    }
    out->small_weight = ws;
    out->big_weight = wb;
    out->ks_key_variance = quad;
    const double base = ldexp(1.0, (int)p->ks_base_log);
    if (concrete) {
        *concrete = *out;
        concrete->ks_key_variance = energy * (base * base + 2.0) / 12.0;
    }
    if (energy_ratio)
        *energy_ratio = energy / ((double)big * l * veil_noise_variance(&p->lwe_noise));
    rc = 0;
done:
    memset(e, 0, sizeof e);
    if (s) memset(s, 0, (size_t)n * 8);
    if (S) memset(S, 0, (size_t)big * 8);
    free(s);
    free(S);
    return rc;
}

typedef struct pfail_result {
    long pbs;                    /* counted KS-PBS (warm-up excluded) */
    long failures;               /* outputs that decoded wrongly */
    long skipped;                /* PBS of re-encrypted slots, not counted */
    double p_avg;                /* the average model's p_fail (with the FFT term) */
    double p_avg_lo;             /* without the FFT term */
    veil_noise_key key;          /* this key's weights and keyswitch key term (exact digits) */
    veil_noise_key key_concrete; /* the same with Concrete's digit moments */
    double energy_ratio;         /* the KSK's noise energy over its expectation */
    double p_concrete;           /* per key, Concrete's digit moments (with the FFT term) */
    double p_model;      /* the per-key model's p_fail, exact digit moments (with the FFT term) */
    double p_model_lo;   /* without the FFT term */
    double ci_lo, ci_hi; /* Clopper-Pearson at 1 - alpha */
    double seconds;      /* wall time of the counted rounds */
    unsigned threads;
    int consistent;     /* the interval meets [p_model_lo, p_model] (per key) */
    int consistent_avg; /* the same for the average model (printed, not checked) */
} pfail_result;

static double pfail_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs `rounds` counted rounds of `batch` KS-PBS (plus one warm-up round)
 * on set p with the cpu backend. progress: if not NULL, one line there
 * after every counted round (flushed: a log to follow a long run). Returns 0
 * on success. */
__attribute__((unused)) /* test_noise.c takes only pfail_key_noise */
static int
pfail_measure(const veil_params *p, size_t batch, long rounds, double alpha, double slack,
              FILE *progress, pfail_result *r) {
    memset(r, 0, sizeof *r);
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(40 + i, s[i]);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    veil_backend *be = NULL;
    veil_backend_keys *keys = NULL;
    veil_lut *lut = NULL;
    const size_t lwe = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = calloc(batch * lwe, 8), *out = calloc(batch * lwe, 8);
    int64_t *val = calloc(batch, sizeof *val);
    unsigned char *fresh = calloc(batch, 1);
    /* the table reverses the values (1 - v at 1 bit): every PBS moves each
     * value, so a failure cannot hide as the value it already had */
    const unsigned bits = p->precision ? p->precision : 1;
    const int64_t top = ((int64_t)1 << bits) - 1;
    int64_t *table = calloc((size_t)top + 1, sizeof *table);
    int rc = -1;
    if (!in || !out || !val || !fresh || !table) goto done;
    for (int64_t v = 0; v <= top; v++)
        table[v] = top - v;
    if (veil_secret_key_new(p, s[0], &sk) || veil_eval_key_new(sk, s[1], s[2], &ek) ||
        veil_encryptor_new(s[3], s[4], &enc) || veil_backend_new_env(VEIL_BACKEND_CPU, &be) ||
        veil_backend_keys_new(be, ek, batch, &keys) ||
        veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut)) {
        printf("pfail setup (%s): %s\n", p->id, veil_error_message());
        goto done;
    }
    sscanf(keys->detail, "%u", &r->threads);
    if (pfail_key_noise(sk, ek, &r->key, &r->key_concrete, &r->energy_ratio)) goto done;
    for (size_t i = 0; i < batch; i++) {
        val[i] = (int64_t)(veil_test_rand() & (uint64_t)top);
        veil_encrypt_big(enc, sk, veil_encode(val[i], bits), in + i * lwe);
    }
    double t0 = 0;
    for (long round = 0; round <= rounds; round++) {
        if (round == 1) t0 = pfail_now();
        if (bh_ks_pbs(keys, 0, in, batch, (const veil_lut *const *)&lut, 1, NULL, out)) {
            printf("pfail ks_pbs (%s): %s\n", p->id, veil_error_message());
            goto done;
        }
        for (size_t i = 0; i < batch; i++) {
            int64_t got = veil_decode(veil_phase_big(sk, out + i * lwe), bits, 0);
            int failed = got != top - val[i];
            if (round > 0 && !fresh[i]) {
                r->pbs++;
                r->failures += failed;
            } else if (round > 0) {
                r->skipped++;
            }
            fresh[i] = failed;
            if (failed) {
                /* a failed output may hold a padding-bit value: replace it
                 * by a fresh encryption, whose next PBS is not counted (its
                 * input noise is not a PBS output's) */
                val[i] = (int64_t)(veil_test_rand() & (uint64_t)top);
                veil_encrypt_big(enc, sk, veil_encode(val[i], bits), out + i * lwe);
            } else {
                val[i] = got;
            }
        }
        uint64_t *t = in;
        in = out;
        out = t;
        if (progress && round > 0) {
            fprintf(progress, "%s round %ld/%ld: %ld failures / %ld KS-PBS, %.1f s\n", p->id, round,
                    rounds, r->failures, r->pbs, pfail_now() - t0);
            fflush(progress);
        }
    }
    r->seconds = pfail_now() - t0;
    const double v_fft = p->lwe_dim * veil_noise_fft_variance(p->glwe_dim, p->poly_size,
                                                              p->pbs_base_log, p->pbs_level);
    const double v_in = veil_noise_pbs_output_variance(p);
    const double v_in_key = veil_noise_pbs_output_variance_key(p, &r->key);
    r->p_avg = exp2(veil_noise_log2_p_fail(p, bits, v_in));
    r->p_avg_lo = exp2(veil_noise_log2_p_fail(p, bits, v_in - v_fft));
    r->p_concrete = exp2(veil_noise_log2_p_fail_key(p, bits, v_in_key, &r->key_concrete));
    r->p_model = exp2(veil_noise_log2_p_fail_key(p, bits, v_in_key, &r->key));
    r->p_model_lo = exp2(veil_noise_log2_p_fail_key(p, bits, v_in_key - v_fft, &r->key));
    clopper_pearson(r->failures, r->pbs, alpha, &r->ci_lo, &r->ci_hi);
    r->consistent = r->ci_hi >= r->p_model_lo / slack && r->ci_lo <= r->p_model * slack;
    r->consistent_avg = r->ci_hi >= r->p_avg_lo / slack && r->ci_lo <= r->p_avg * slack;
    veil_noise_key avg;
    veil_noise_key_expected(p, &avg);
    printf("  %-15s %ld failures / %ld KS-PBS = %.3e (2^%.2f); 1 - %g Clopper-Pearson "
           "[%.3e, %.3e]; per-key model [%.3e, %.3e] (2^%.2f with the FFT term), accepted x%g: "
           "%s; average model [%.3e, %.3e]: %s; %.1f s, %u threads\n"
           "  %-15s key: small weight %.0f (mean %.1f), big weight %.0f (mean %.1f), KSK noise "
           "energy %.4f x its mean; with Concrete's digit moments this key's p_fail is %.3e\n",
           p->id, r->failures, r->pbs, (double)r->failures / r->pbs,
           log2((double)(r->failures ? r->failures : 1) / r->pbs), alpha, r->ci_lo, r->ci_hi,
           r->p_model_lo, r->p_model, log2(r->p_model), slack,
           r->consistent ? "consistent" : "NOT CONSISTENT", r->p_avg_lo, r->p_avg,
           r->consistent_avg ? "consistent" : "not consistent", r->seconds, r->threads, "",
           r->key.small_weight, avg.small_weight, r->key.big_weight, avg.big_weight,
           r->energy_ratio, r->p_concrete);
    rc = 0;
done:
    veil_lut_free(lut);
    veil_backend_keys_free(keys);
    veil_backend_free(be);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    free(in);
    free(out);
    free(val);
    free(fresh);
    free(table);
    return rc;
}

#endif
