/* Programmable bootstrapping on the CPU: modulus switch, blind rotation with
 * negacyclic products through veil/fft.h, sample extraction. */
#include "internal.h"
#include "fft/fft_internal.h"
#include "veil/fft.h"
#include "veil/tfhe.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct veil_pbs_ctx {
    const veil_params *params;
    veil_fft *fft;
    const veil_fft_kernels *kern; /* decomposition, Fourier MAC */
    int fused;                    /* a veil FFT path: digits decomposed inside the transform */
    /* per lane (VEIL_PBS_LANES ciphertexts in lockstep, veil_ks_pbs_many) */
    uint32_t *ms;    /* lanes x (n + 1) switched coefficients */
    uint64_t *acc;   /* lanes x (k+1) N */
    uint64_t *small; /* lanes x (n + 1), PBS input with the lut offset */
    uint64_t *ks;    /* VEIL_KS_LANES x (n + 1), keyswitch output */
    /* shared by the lanes (one CMux at a time) */
    int64_t *digits; /* (k+1) l N */
    double *fdigits; /* VEIL_MAC_LANES x (k+1) l N: lanes' digit spectra (cmux_lanes) */
    double *facc;    /* VEIL_MAC_LANES x (k+1) N */
    /* multi-bit sets only (grouping g >= 2), NULL otherwise */
    uint64_t *sum; /* N: one polynomial of a group's GGSWs times monomials, summed */
    double *fsum;  /* its transform, in the GGSW layout (veil_fft_ggsw_put) */
};

veil_status veil_pbs_ctx_new(const veil_params *p, veil_pbs_ctx **out) {
    if (!p || !out) return veil_error(VEIL_ERR_ARG, "veil_pbs_ctx_new: NULL argument");
    /* the centred switch's body correction sums per-coefficient roundings;
     * a multi-bit switch rounds once per subset (multibit_group) */
    if (p->grouping >= 2 && p->ms == VEIL_MS_CENTERED)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "veil_pbs_ctx_new: %s: a multi-bit set with the centred modulus switch",
                          p->id);
    veil_pbs_ctx *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "veil_pbs_ctx_new: out of memory");
    c->params = p;
    const size_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level;
    const size_t L = VEIL_PBS_LANES, n1 = (size_t)p->lwe_dim + 1;
    veil_status s = veil_fft_new(p->poly_size, &c->fft);
    if (s == VEIL_OK) {
        c->kern = veil_fft_loop_kernels(c->fft);
        c->fused = veil_fft_path_of(c->fft) != VEIL_FFT_FFTW;
        c->ms = malloc(sizeof(uint32_t) * L * n1);
        c->acc = malloc(sizeof(uint64_t) * L * k1 * N);
        c->small = malloc(sizeof(uint64_t) * L * n1);
        c->ks = malloc(sizeof(uint64_t) * VEIL_KS_LANES * n1);
        c->digits = malloc(sizeof(int64_t) * k1 * l * N);
        c->fdigits = veil_fft_alloc(sizeof(double) * VEIL_MAC_LANES * k1 * l * N);
        c->facc = veil_fft_alloc(sizeof(double) * VEIL_MAC_LANES * k1 * N);
        if (!c->ms || !c->acc || !c->digits || !c->fdigits || !c->facc || !c->small || !c->ks)
            s = veil_error(VEIL_ERR_NOMEM, "veil_pbs_ctx_new: out of memory");
    }
    if (s == VEIL_OK && p->grouping >= 2) {
        c->sum = malloc(sizeof(uint64_t) * N);
        c->fsum = veil_fft_alloc(sizeof(double) * k1 * l * k1 * N);
        if (!c->sum || !c->fsum) s = veil_error(VEIL_ERR_NOMEM, "veil_pbs_ctx_new: out of memory");
    }
    if (s != VEIL_OK) {
        veil_pbs_ctx_free(c);
        return s;
    }
    *out = c;
    return VEIL_OK;
}

void veil_pbs_ctx_free(veil_pbs_ctx *c) {
    if (!c) return;
    veil_fft_free(c->fft);
    free(c->ms);
    free(c->acc);
    free(c->digits);
    veil_fft_dealloc(c->fdigits);
    veil_fft_dealloc(c->facc);
    free(c->sum);
    veil_fft_dealloc(c->fsum);
    free(c->small);
    free(c->ks);
    free(c);
}

static uint32_t log2u(uint32_t x) {
    return (uint32_t)__builtin_ctz(x);
}

void veil_modulus_switch(const veil_params *p, const uint64_t *in, uint32_t *out) {
    const uint32_t n = p->lwe_dim, lg = log2u(p->poly_size) + 1;
    if (p->ms == VEIL_MS_CENTERED) {
        /* Centred mean: the rounding errors r_i = switched(a_i) - a_i are
         * public. With binary s_i, sum r_i s_i = sum r_i (s_i - 1/2) +
         * (1/2) sum r_i, so adding (1/2) sum r_i to the body before switching
         * it leaves only the centred term, whose variance is half. Each
         * |r_i| is at most 2^63 / 2N, so the int64 sum holds for n < 2N
         * (every centred set: test_params test_modulus_switch_assumptions). */
        int64_t sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            out[i] = veil_ms_coef(in[i], lg);
            sum += (int64_t)(((uint64_t)out[i] << (64 - lg)) - in[i]);
        }
        out[n] = veil_ms_body(in[n] + (uint64_t)(sum / 2), lg);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        out[i] = veil_ms_coef(in[i], lg);
    out[n] = veil_ms_body(in[n], lg);
}

void veil_poly_mul_monomial(uint64_t *out, const uint64_t *in, uint32_t N, uint32_t e) {
    /* X^e with e in [0, 2N): X^N = -1. */
    int neg = e >= N;
    if (neg) e -= N;
    for (uint32_t j = 0; j < N; j++) {
        uint32_t t = j + e;
        uint64_t v = in[j];
        if (t >= N) {
            out[t - N] = neg ? v : 0 - v;
        } else {
            out[t] = neg ? 0 - v : v;
        }
    }
}

/* acc = acc + ExtProd(bsk_i, X^a * acc - acc): the CMux on s_i. Per
 * external product (k+1) l forward transforms and (k+1) inverse ones, the
 * least there can be: the digit polynomials are transformed once each, the
 * products summed in the Fourier domain per output column. cmux_forward
 * makes the digit spectra fd of X^a acc - acc (digit poly (q, j) at index
 * q*l + j, most significant level first); cmux_backward adds the inverse
 * of the k + 1 sums to acc. */
static void cmux_forward(veil_pbs_ctx *c, uint32_t a, const uint64_t *acc, double *fd) {
    const veil_params *p = c->params;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level;
    const veil_fft_kernels *kr = c->kern;
    if (c->fused) {
        /* the digits' transforms of X^a acc - acc (neither stored) */
        for (uint32_t q = 0; q < k1; q++)
            veil_fft_forward_digits(c->fft, acc + (size_t)q * N, a, p->pbs_base_log, l,
                                    fd + (size_t)q * l * N);
    } else {
        for (uint32_t q = 0; q < k1; q++)
            kr->decompose_rotated(acc + (size_t)q * N, N, a, p->pbs_base_log, l,
                                  c->digits + (size_t)q * l * N);
        for (size_t r = 0; r < (size_t)k1 * l; r++)
            veil_fft_forward_i64(c->fft, c->digits + r * N, fd + r * N);
    }
}

static void cmux_backward(veil_pbs_ctx *c, double *facc, uint64_t *acc) {
    const uint32_t N = c->params->poly_size, k1 = c->params->glwe_dim + 1;
    for (uint32_t q = 0; q < k1; q++)
        veil_fft_backward_add_torus(c->fft, facc + (size_t)q * N, acc + (size_t)q * N);
}

/* the GGSW of s_i: rows x (k+1) transformed polynomials, read in order */
static const double *ggsw_of(const veil_pbs_ctx *c, const veil_pbs_key *pk, uint32_t i) {
    const veil_params *p = c->params;
    const size_t k1 = p->glwe_dim + 1;
    return pk->bsk_fourier + (size_t)i * k1 * p->pbs_level * k1 * p->poly_size;
}

/* P <= VEIL_MAC_LANES lanes' CMux on s_i, each exactly a lone CMux's
 * operations, with one multiply-add pass over the GGSW for all of them
 * (mac_ggsw_lanes): the key is read from L2 once per group instead of once
 * per lane. */
static void cmux_lanes(veil_pbs_ctx *c, const veil_pbs_key *pk, uint32_t i, uint32_t P,
                       const uint32_t *a, uint64_t *const *acc) {
    const veil_params *p = c->params;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level;
    double *facc[VEIL_MAC_LANES] = {0};
    const double *fd[VEIL_MAC_LANES] = {0};
    for (uint32_t j = 0; j < P; j++) {
        double *f = c->fdigits + (size_t)j * k1 * l * N;
        cmux_forward(c, a[j], acc[j], f);
        fd[j] = f;
        facc[j] = c->facc + (size_t)j * k1 * N;
    }
    c->kern->mac_ggsw_lanes(facc, fd, P, ggsw_of(c, pk, i), k1 * l, k1, N);
    for (uint32_t j = 0; j < P; j++)
        cmux_backward(c, facc[j], acc[j]);
}

/* Multi-bit step for group q (a: the group's g mask coefficients, 64-bit):
 * acc = ExtProd(sum_t GGSW_{q,t} X^{d_t}, acc), a GGSW of X^{<a_q, s_q>}
 * (up to the switch's rounding) since exactly one indicator GGSW_{q,t} is
 * 1. d_t is the switch to 2N of the 64-bit sum of t's coefficients, one
 * rounding per subset (TFHE-rs's modulus_switch_multi_bit in
 * lwe_multi_bit_programmable_bootstrapping.rs): the selected subset adds one
 * rounding error per group, not one per coefficient (veil_noise_ms_variance).
 * The sum is formed exactly in the standard domain and transformed once per
 * polynomial (Concrete's "jit FFT" multi-bit variant): the FFT error is that
 * of one transformed GGSW, where a sum of 2^g transformed GGSWs times
 * transformed monomials measured 1.8x Concrete's multi-bit FFT term at
 * tfhers-mb4-2_2 (test_multibit.c). The external product is the CMux's with
 * the accumulator's own digits (multibit_apply). multibit_group
 * forms the sum into fggsw ((k+1) l (k+1) N doubles), with c's scratch. */
static void multibit_group(veil_pbs_ctx *c, const veil_pbs_key *pk, uint32_t q, const uint64_t *a,
                           double *fggsw) {
    const veil_params *p = c->params;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level, g = p->grouping;
    const uint32_t lg = log2u(N) + 1;
    const veil_fft_kernels *kr = c->kern;
    const size_t polys = (size_t)k1 * l * k1, gw = polys * N;
    const uint64_t *grp = pk->bsk + ((size_t)q << g) * gw;
    uint32_t d[1u << VEIL_MULTIBIT_MAX_G];
    for (uint32_t t = 1; t < (1u << g); t++) {
        uint64_t sel = 0;
        for (uint32_t b = 0; b < g; b++)
            if ((t >> b) & 1) sel += a[b];
        d[t] = veil_ms_coef(sel, lg);
    }
    /* one polynomial of the sum at a time, so that it stays in L1 while the
     * group's 2^g key polynomials of its position are added (t = 0: the
     * monomial 1), then transformed into facc (free until the multiply-add)
     * and put in the GGSW layout mac_ggsw reads (veil_fft_ggsw_put) */
    for (size_t r = 0; r < polys; r++) {
        memcpy(c->sum, grp + r * N, sizeof(uint64_t) * N);
        for (uint32_t t = 1; t < (1u << g); t++)
            kr->add_monomial(c->sum, grp + t * gw + r * N, N, d[t]);
        veil_fft_forward_torus(c->fft, c->sum, c->facc);
        veil_fft_ggsw_put(N, (uint32_t)polys, (uint32_t)r, c->facc, fggsw);
    }
}

/* acc = ExtProd(fggsw, acc), fggsw a group's transformed GGSW
 * (multibit_group). */
static void multibit_apply(veil_pbs_ctx *c, const double *fggsw, uint64_t *acc) {
    const veil_params *p = c->params;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level;
    const veil_fft_kernels *kr = c->kern;
    const size_t rows = (size_t)k1 * l;
    /* not forward_digits (the CMux's fused route): its ties round up, and
     * the accumulator an inverse FFT wrote is full of exact ties, which then
     * bias the noise (veil/gadget.h VEIL_GADGET_INIT_EVEN) */
    for (uint32_t col = 0; col < k1; col++)
        kr->decompose(acc + (size_t)col * N, N, p->pbs_base_log, l,
                      c->digits + (size_t)col * l * N);
    for (size_t r = 0; r < rows; r++)
        veil_fft_forward_i64(c->fft, c->digits + r * N, c->fdigits + r * N);
    kr->mac_ggsw(c->facc, c->fdigits, fggsw, (uint32_t)rows, k1, N);
    memset(acc, 0, sizeof(uint64_t) * k1 * N);
    for (uint32_t col = 0; col < k1; col++)
        veil_fft_backward_add_torus(c->fft, c->facc + (size_t)col * N, acc + (size_t)col * N);
}

/* Sample extraction of coefficient x.coef (or the trivial x.add) of a
 * (k+1) N accumulator into a big LWE (pk->in_dim + 1 words), body + x.add:
 * coefficient h of sum_q A_q S_q + B is sum_j A_q[h - j] S_q[j] over j <= h
 * and -A_q[N + h - j] S_q[j] over j > h (X^N = -1). */
void veil_sample_extract(const veil_pbs_key *pk, const uint64_t *acc, veil_extract x,
                         uint64_t *o0) {
    const veil_params *p = pk->params;
    const uint32_t N = p->poly_size, k = p->glwe_dim, h = x.coef;
    if (h == VEIL_EXTRACT_TRIVIAL) {
        memset(o0, 0, sizeof(uint64_t) * pk->in_dim);
        o0[pk->in_dim] = x.add;
        return;
    }
    VEIL_ASSERT(h < N);
    for (uint32_t q = 0; q < k; q++) {
        const uint64_t *A = acc + (size_t)q * N;
        uint64_t *o = o0 + (size_t)q * N;
        for (uint32_t j = 0; j <= h; j++)
            o[j] = A[h - j];
        for (uint32_t j = h + 1; j < N; j++)
            o[j] = 0 - A[N + h - j];
    }
    /* under S_X = S[0 : kN]: zero-extended to the master key (nested
     * keys, veil/tfhe.h), so the body sits at in_dim */
    if (pk->in_dim > (size_t)k * N)
        memset(o0 + (size_t)k * N, 0, sizeof(uint64_t) * (pk->in_dim - (size_t)k * N));
    o0[pk->in_dim] = acc[(size_t)k * N + h] + x.add;
}

/* Where the results go: n_res per lane, result s of lane L (the call's
 * ciphertext first + L) is extraction ext[s * period + (first + L) % period]
 * at out + s * res_stride + L * out_stride; ext NULL: one result, {0, 0}. */
typedef struct lane_out {
    uint64_t *out;
    size_t out_stride, res_stride;
    const veil_extract *ext;
    uint32_t n_res;
    size_t period, first;
} lane_out;

/* The lanes' modulus switch and accumulator X^-b * V (pbs_lanes' start). */
static void lanes_init(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *const *luts,
                       const uint64_t *in, size_t in_stride, uint32_t lanes) {
    const veil_params *p = c->params;
    VEIL_ASSERT(pk->params == p && (p->grouping >= 2 ? pk->bsk != NULL : pk->bsk_fourier != NULL) &&
                lanes <= VEIL_PBS_LANES && pk->in_dim >= veil_params_big_dim(p));
    const uint32_t N = p->poly_size, k = p->glwe_dim, n = p->lwe_dim;
    const size_t n1 = (size_t)n + 1, accw = (size_t)(k + 1) * N;
    for (uint32_t L = 0; L < lanes; L++) {
        const veil_lut *lut = luts[L];
        VEIL_ASSERT(lut->poly_size == p->poly_size);
        uint64_t *small = c->small + L * n1, *acc = c->acc + L * accw;
        uint32_t *ms = c->ms + L * n1;
        /* the signed-input offset is a clear constant on the body */
        memcpy(small, in + L * in_stride, sizeof(uint64_t) * n);
        small[n] = in[L * in_stride + n] + lut->in_offset;
        veil_modulus_switch(p, small, ms);
        /* acc = (0, ..., 0, X^-b * V) */
        memset(acc, 0, sizeof(uint64_t) * k * N);
        veil_poly_mul_monomial(acc + (size_t)k * N, lut->poly, N, (2 * N - ms[n]) % (2 * N));
    }
}

/* The lanes' sample extractions (pbs_lanes' end). */
static void lanes_extract(veil_pbs_ctx *c, const veil_pbs_key *pk, const lane_out *lo,
                          uint32_t lanes) {
    const size_t accw = (size_t)(c->params->glwe_dim + 1) * c->params->poly_size;
    for (uint32_t L = 0; L < lanes; L++)
        for (uint32_t r = 0; r < (lo->ext ? lo->n_res : 1); r++)
            veil_sample_extract(pk, c->acc + L * accw,
                                lo->ext ? lo->ext[r * lo->period + (lo->first + L) % lo->period]
                                        : (veil_extract){0, 0},
                                lo->out + r * lo->res_stride + L * lo->out_stride);
}

/* Blind rotation and sample extraction of `lanes` small LWEs in lockstep:
 * CMux i runs for every lane before CMux i + 1, so each GGSW of the
 * bootstrapping key is read from memory once for all of them (the next
 * lanes find it in cache). Each lane's operations are those of a lone PBS,
 * in the same order: the results do not depend on the grouping. */
static void pbs_lanes(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *const *luts,
                      const uint64_t *in, size_t in_stride, const lane_out *lo, uint32_t lanes) {
    const veil_params *p = c->params;
    const uint32_t N = p->poly_size, k = p->glwe_dim, n = p->lwe_dim;
    const size_t n1 = (size_t)n + 1, accw = (size_t)(k + 1) * N;
    lanes_init(c, pk, luts, in, in_stride, lanes);
    const uint32_t g = p->grouping;
    if (g >= 2) {
        VEIL_ASSERT(c->fsum && n % g == 0);
        /* every group, even an all-zero one: skipping it would leak nothing
         * (the mask is public) but the noise model counts n/g products */
        for (uint32_t q = 0; q < n / g; q++)
            for (uint32_t L = 0; L < lanes; L++) {
                multibit_group(c, pk, q, c->small + L * n1 + (size_t)q * g, c->fsum);
                multibit_apply(c, c->fsum, c->acc + L * accw);
            }
    } else {
        /* the next GGSW streams into L2 during this one's transforms, over
         * every lane's CMux ((k + 1)(l + 1) transforms each) */
        const uint32_t k1 = k + 1, l = p->pbs_level;
        const size_t ggsw_bytes = sizeof(double) * k1 * l * k1 * N;
        for (uint32_t i = 0; i < n; i++) {
            if (c->fused && i + 1 < n)
                veil_fft_prefetch(c->fft, ggsw_of(c, pk, i + 1), ggsw_bytes, k1 * (l + 1) * lanes);
            /* the lanes with a CMux to do (a != 0), VEIL_MAC_LANES at a time */
            uint32_t grp = 0, ga[VEIL_MAC_LANES];
            uint64_t *gacc[VEIL_MAC_LANES];
            for (uint32_t L = 0; L < lanes; L++) {
                const uint32_t a = c->ms[L * n1 + i];
                if (!a) continue;
                ga[grp] = a;
                gacc[grp++] = c->acc + L * accw;
                if (grp == VEIL_MAC_LANES) {
                    cmux_lanes(c, pk, i, grp, ga, gacc);
                    grp = 0;
                }
            }
            if (grp) cmux_lanes(c, pk, i, grp, ga, gacc);
        }
        veil_fft_prefetch(c->fft, NULL, 0, 0);
    }
    lanes_extract(c, pk, lo, lanes);
}

void veil_pbs(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *lut, const uint64_t *in,
              uint64_t *out) {
    const lane_out lo = {.out = out};
    pbs_lanes(c, pk, &lut, in, 0, &lo, 1);
}

/* ---- one multi-bit PBS on several threads ----------------------------------
 * The groups' GGSW sums depend only on the key and the (public) mask, not
 * on the accumulator, so any thread can form group q's ahead of its
 * external product: every thread (the caller's too) takes the next group
 * not yet formed and writes its transformed GGSW into one of `slots`
 * buffers; the caller applies them in order, q = 0, 1, ..., and frees each
 * slot as it goes. A group is formed into slot q % slots only once group
 * q - slots has been applied; the caller forms one itself only when its slot
 * is free already, so it never waits for a slot. Every group is formed by
 * the same code on a context of the same set, whichever thread forms it, and
 * applied in order by the caller: the bits are veil_pbs's. */
typedef struct mb_team {
    veil_pbs_ctx *const *ctx;
    const veil_pbs_key *pk;
    const uint64_t *small; /* the caller's lane 0: the mask before the switch */
    double *slots;
    size_t slot_len;
    uint32_t n_slots, groups;
    atomic_uint next;    /* the next group to form */
    atomic_uint applied; /* groups the caller has applied */
    atomic_uint *ready;  /* per slot: 1 + the group formed there, 0: none yet */
} mb_team;

typedef struct mb_worker {
    mb_team *team;
    unsigned thread;
} mb_worker;

/* A short busy wait, then the core given up between polls: the waits here
 * last a fraction of one group's work (tens of microseconds), but a thread
 * that spins on a core another thread needs would stall both. */
static void team_wait(unsigned *spins) {
    if (++*spins < 512) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

static void team_form(mb_team *t, unsigned thread, uint32_t q) {
    const uint32_t g = t->pk->params->grouping;
    multibit_group(t->ctx[thread], t->pk, q, t->small + (size_t)q * g,
                   t->slots + (size_t)(q % t->n_slots) * t->slot_len);
    atomic_store_explicit(&t->ready[q % t->n_slots], q + 1, memory_order_release);
}

static void *team_worker(void *arg) {
    const mb_worker *w = arg;
    mb_team *t = w->team;
    for (;;) {
        const uint32_t q = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (q >= t->groups) break;
        unsigned spins = 0;
        while (q >= atomic_load_explicit(&t->applied, memory_order_acquire) + t->n_slots)
            team_wait(&spins);
        team_form(t, w->thread, q);
    }
    return NULL;
}

/* The caller's part: apply every group in order, forming groups while the
 * next one is not ready. */
static void team_apply(mb_team *t, uint64_t *acc) {
    for (uint32_t q = 0; q < t->groups; q++) {
        unsigned spins = 0;
        while (atomic_load_explicit(&t->ready[q % t->n_slots], memory_order_acquire) != q + 1) {
            unsigned v = atomic_load_explicit(&t->next, memory_order_relaxed);
            if (v < t->groups && v < q + t->n_slots &&
                atomic_compare_exchange_weak_explicit(&t->next, &v, v + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                team_form(t, 0, v);
                spins = 0;
            } else {
                team_wait(&spins);
            }
        }
        multibit_apply(t->ctx[0], t->slots + (size_t)(q % t->n_slots) * t->slot_len, acc);
        atomic_store_explicit(&t->applied, q + 1, memory_order_release);
    }
}

unsigned veil_online_cpus(void) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > (long)VEIL_THREADS_MAX ? VEIL_THREADS_MAX : (unsigned)n;
}

/* One small LWE's PBS on `threads` threads, its results where lo says
 * (one lane). */
static void pbs_threads_lo(veil_pbs_ctx *const *ctx, unsigned threads, const veil_pbs_key *pk,
                           const veil_lut *lut, const uint64_t *in, const lane_out *lo) {
    veil_pbs_ctx *c = ctx[0];
    const veil_params *p = c->params;
    if (threads > VEIL_THREADS_MAX) threads = VEIL_THREADS_MAX;
    if (threads <= 1 || p->grouping < 2) {
        pbs_lanes(c, pk, &lut, in, 0, lo, 1);
        return;
    }
    VEIL_ASSERT(c->fsum && p->lwe_dim % p->grouping == 0);
    lanes_init(c, pk, &lut, in, 0, 1);
    const size_t k1 = p->glwe_dim + 1;
    const uint32_t groups = p->lwe_dim / p->grouping;
    mb_team t = {.ctx = ctx,
                 .pk = pk,
                 .small = c->small,
                 .slot_len = k1 * p->pbs_level * k1 * p->poly_size,
                 /* one a thread and two ahead of the caller: more only
                  * costs fresh pages each call */
                 .n_slots = threads + 2 < groups ? threads + 2 : groups,
                 .groups = groups};
    atomic_init(&t.next, 0);
    atomic_init(&t.applied, 0);
    t.slots = veil_fft_alloc(sizeof(double) * t.slot_len * t.n_slots);
    t.ready = malloc(sizeof *t.ready * t.n_slots);
    if (!t.slots || !t.ready) {
        /* no memory for the slots: the same PBS on this thread alone */
        veil_fft_dealloc(t.slots);
        free(t.ready);
        pbs_lanes(c, pk, &lut, in, 0, lo, 1);
        return;
    }
    for (uint32_t s = 0; s < t.n_slots; s++)
        atomic_init(&t.ready[s], 0);
    mb_worker w[VEIL_THREADS_MAX];
    pthread_t tid[VEIL_THREADS_MAX];
    int started[VEIL_THREADS_MAX] = {0};
    for (unsigned i = 1; i < threads; i++) {
        w[i] = (mb_worker){&t, i};
        /* a thread that does not start leaves its groups to the others */
        started[i] = pthread_create(&tid[i], NULL, team_worker, &w[i]) == 0;
    }
    team_apply(&t, c->acc);
    for (unsigned i = 1; i < threads; i++)
        if (started[i]) pthread_join(tid[i], NULL);
    veil_fft_dealloc(t.slots);
    free(t.ready);
    lanes_extract(c, pk, lo, 1);
}

void veil_pbs_threads(veil_pbs_ctx *const *ctx, unsigned threads, const veil_pbs_key *pk,
                      const veil_lut *lut, const uint64_t *in, uint64_t *out) {
    const lane_out lo = {.out = out};
    pbs_threads_lo(ctx, threads, pk, lut, in, &lo);
}

void veil_ks_pbs_threads(veil_pbs_ctx *const *ctx, unsigned threads, const veil_pbs_key *pk,
                         const veil_lut *lut, const uint64_t *in, uint64_t *out) {
    veil_keyswitch(pk, in, ctx[0]->ks);
    veil_pbs_threads(ctx, threads, pk, lut, ctx[0]->ks, out);
}

void veil_ks_pbs_threads_extract(veil_pbs_ctx *const *ctx, unsigned threads, const veil_pbs_key *pk,
                                 const veil_lut *lut, const uint64_t *in, const veil_extract *ext,
                                 uint32_t n_res, size_t period, size_t first, uint64_t *out,
                                 size_t out_stride) {
    VEIL_ASSERT(ext && n_res >= 1 && period >= 1);
    const size_t big1 = (size_t)pk->in_dim + 1;
    const lane_out lo = {.out = out,
                         .out_stride = big1,
                         .res_stride = out_stride * big1,
                         .ext = ext,
                         .n_res = n_res,
                         .period = period,
                         .first = first};
    veil_keyswitch(pk, in, ctx[0]->ks);
    pbs_threads_lo(ctx, threads, pk, lut, ctx[0]->ks, &lo);
}

void veil_pbs_extract(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *lut,
                      const uint64_t *in, const veil_extract *ext, uint32_t n_res, uint64_t *out) {
    const lane_out lo = {.out = out,
                         .res_stride = (size_t)pk->in_dim + 1,
                         .ext = ext,
                         .n_res = n_res,
                         .period = 1,
                         .first = 0};
    pbs_lanes(c, pk, &lut, in, 0, &lo, 1);
}

void veil_ks_pbs(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *lut, const uint64_t *in,
                 uint64_t *out) {
    veil_keyswitch(pk, in, c->ks);
    veil_pbs(c, pk, lut, c->ks, out);
}

/* count KS-PBS in groups: VEIL_KS_LANES keyswitches, then their PBS
 * VEIL_PBS_LANES at a time. Ciphertext e reads luts[e] (one_lut: luts[0]
 * for all); lo's out and first are for ciphertext 0. */
static void ks_pbs_groups(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *const *luts,
                          int one_lut, const uint64_t *in, size_t count, lane_out lo) {
    const size_t big1 = (size_t)pk->in_dim + 1, n1 = (size_t)c->params->lwe_dim + 1;
    const veil_lut *same[VEIL_PBS_LANES];
    for (uint32_t L = 0; L < VEIL_PBS_LANES; L++)
        same[L] = luts[0];
    uint64_t *const out = lo.out;
    const size_t first = lo.first;
    for (size_t b = 0; b < count; b += VEIL_KS_LANES) {
        const size_t kl = count - b < VEIL_KS_LANES ? count - b : VEIL_KS_LANES;
        veil_keyswitch_many(pk, in + b * big1, kl, c->ks);
        for (size_t p = 0; p < kl; p += VEIL_PBS_LANES) {
            const uint32_t lanes = (uint32_t)(kl - p < VEIL_PBS_LANES ? kl - p : VEIL_PBS_LANES);
            lo.out = out + (b + p) * big1;
            lo.first = first + b + p;
            pbs_lanes(c, pk, one_lut ? same : luts + b + p, c->ks + p * n1, n1, &lo, lanes);
        }
    }
}

void veil_ks_pbs_many(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *const *luts,
                      const uint64_t *in, size_t count, uint64_t *out) {
    ks_pbs_groups(c, pk, luts, 0, in, count,
                  (lane_out){.out = out, .out_stride = (size_t)pk->in_dim + 1});
}

void veil_ks_pbs_many_extract(veil_pbs_ctx *c, const veil_pbs_key *pk, const veil_lut *lut,
                              const uint64_t *in, size_t count, const veil_extract *ext,
                              uint32_t n_res, size_t period, size_t first, uint64_t *out,
                              size_t out_stride) {
    VEIL_ASSERT(ext && n_res >= 1 && period >= 1);
    const size_t big1 = (size_t)pk->in_dim + 1;
    ks_pbs_groups(c, pk, &lut, 1, in, count,
                  (lane_out){.out = out,
                             .out_stride = big1,
                             .res_stride = out_stride * big1,
                             .ext = ext,
                             .n_res = n_res,
                             .period = period,
                             .first = first});
}
