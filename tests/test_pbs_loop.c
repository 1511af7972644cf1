// LABELS: unit crypto
/* The vectorised loops of the PBS (engine/src/fft/fft_template.h, one build
 * per code path) against their scalar definitions, on every path this CPU
 * runs:
 *   - decompose_rotated: the gadget digits (veil/gadget.h) of X^a src - src,
 *     for rotations that put the run boundary on and off a vector edge, and
 *     decompositions from 1 to 64 bits (B*l = 64 keeps every bit);
 *   - decompose: the digits of src itself with ties rounded to even
 *     (veil_gadget_decompose_even, the multi-bit PBS's), on inputs where a
 *     quarter are exact ties of either parity;
 *   - add_monomial: out + X^d in, the multi-bit step's sum, for every d;
 *   - rotate_sub and forward_digits (the difference X^a src - src and its
 *     decomposition fused with the forward transform's first pass, the
 *     PBS's route on veil paths): bit for bit the digits' forward_i64, on
 *     every path;
 *   - mac_ggsw: bit for bit the sum of veil_fft_mac calls into a zeroed
 *     accumulator (same operations, same order), on a GGSW put in its
 *     interleaved layout by veil_fft_ggsw_put (and read back by _get);
 *     mac_ggsw_lanes (1 to 9 lanes' spectra against one GGSW, in groups)
 *     likewise per lane;
 *   - ks_lanes: the keyswitch's multiply-subtract mod 2^64 over a block of
 *     key rows for up to 8 ciphertexts in lockstep;
 *   - pfpks_lanes: the WoP-PBS packing keyswitch's multiply-add mod 2^64
 *     (64-bit key words, digits below 2^32) for up to 20 values in lockstep;
 *   - add_torus: the inverse transform's rounding to the torus against
 *     its definition, on edge values (ties, 2^52, 2^63, 2^64, 2^116);
 *   - the prefetch stream (veil_fft_prefetch): a GGSW's lines spread over
 *     one CMux's transforms, all of them asked for by its last one and not
 *     all by its first, at every size and shape of the tables;
 * then veil_ks_pbs_many (lockstep groups of VEIL_PBS_LANES, a different
 * table per ciphertext, a count that leaves a partial group) against
 * veil_ks_pbs one at a time, bit for bit, and the decryptions. */
#include "../engine/src/fft/fft_internal.h"
#include "testutil.h"
#include "veil/fft.h"
#include "veil/gadget.h"
#include "veil/tfhe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    veil_fft_path path;
    const veil_fft_kernels *k;
} path_kernels;

static size_t paths_here(path_kernels *out) {
    size_t m = 0;
    out[m++] = (path_kernels){VEIL_FFT_PORTABLE, &veil_fft_kernels_portable};
#ifdef VEIL_FFT_X86
    if (veil_test_fft_path_here(VEIL_FFT_AVX2))
        out[m++] = (path_kernels){VEIL_FFT_AVX2, &veil_fft_kernels_avx2};
    if (veil_test_fft_path_here(VEIL_FFT_AVX512))
        out[m++] = (path_kernels){VEIL_FFT_AVX512, &veil_fft_kernels_avx512};
#endif
    return m;
}

/* out = X^a * in mod X^N + 1, a in [0, 2N), straight from the definition */
static void monomial_ref(uint64_t *out, const uint64_t *in, uint32_t N, uint32_t a) {
    for (uint32_t j = 0; j < N; j++) {
        const uint32_t t = (j + a) % (2 * N);
        if (t < N)
            out[t] = in[j];
        else
            out[t - N] = 0 - in[j];
    }
}

/* add_monomial (the multi-bit step's out += X^d in) against monomial_ref
 * plus out, for every d of a small N and run boundaries on and off a vector
 * edge at 2048, on every path; out starts random, and 0 - x of the
 * wrapped run is checked at its extreme values (0 and 2^63). */
static void test_add_monomial(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    const uint32_t sizes[] = {16, 2048};
    size_t cases = 0, bad = 0;
    for (size_t s = 0; s < 2; s++) {
        const uint32_t N = sizes[s];
        uint64_t *in = malloc(sizeof(uint64_t) * N), *out0 = malloc(sizeof(uint64_t) * N),
                 *rot = malloc(sizeof(uint64_t) * N), *got = malloc(sizeof(uint64_t) * N);
        CU_ASSERT_FATAL(in && out0 && rot && got);
        for (uint32_t t = 0; t < N; t++) {
            in[t] = veil_test_rand();
            out0[t] = veil_test_rand();
        }
        in[0] = 0;
        in[N - 1] = (uint64_t)1 << 63;
        const uint32_t big[] = {0, 1, 7, 8, 9, N - 1, N, N + 1, N + 8, 2 * N - 1, 1234, N + 1234};
        const uint32_t nd = N == 16 ? 2 * N : (uint32_t)(sizeof big / sizeof *big);
        for (uint32_t i = 0; i < nd; i++) {
            const uint32_t d = N == 16 ? i : big[i];
            monomial_ref(rot, in, N, d);
            for (size_t p = 0; p < np; p++) {
                memcpy(got, out0, sizeof(uint64_t) * N);
                pk[p].k->add_monomial(got, in, N, d);
                for (uint32_t t = 0; t < N; t++)
                    bad += got[t] != out0[t] + rot[t];
                cases++;
            }
        }
        free(in);
        free(out0);
        free(rot);
        free(got);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(cases, np * (32 + 12));
}

static void test_decompose_rotated(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    const uint32_t sizes[] = {16, 64, 2048};
    const uint32_t bl[][2] = {{23, 1}, {15, 2}, {3, 5}, {1, 20}, {8, 8}, {32, 2}, {10, 4}};
    const size_t n_bl = sizeof bl / sizeof *bl;
    size_t cases = 0, expected = 0;
    for (size_t s = 0; s < 3; s++) {
        const uint32_t N = sizes[s];
        const uint32_t rots[] = {0, 1, 3, 7, 8, 9, N / 2 + 5, N - 1, N, N + 3, N + 8, 2 * N - 1};
        const size_t n_rot = sizeof rots / sizeof *rots;
        expected += np * n_rot * n_bl;
        uint64_t *src = malloc(sizeof(uint64_t) * N), *v = malloc(sizeof(uint64_t) * N);
        int64_t *ref = malloc(sizeof(int64_t) * 20 * N), *got = malloc(sizeof(int64_t) * 20 * N);
        int64_t dig[64];
        CU_ASSERT_FATAL(src && v && ref && got);
        for (uint32_t t = 0; t < N; t++)
            src[t] = veil_test_rand();
        for (size_t r = 0; r < n_rot; r++) {
            monomial_ref(v, src, N, rots[r]);
            for (uint32_t t = 0; t < N; t++)
                v[t] -= src[t];
            for (size_t b = 0; b < n_bl; b++) {
                const uint32_t B = bl[b][0], l = bl[b][1];
                for (uint32_t t = 0; t < N; t++) {
                    veil_gadget_decompose(v[t], B, l, dig);
                    for (uint32_t j = 0; j < l; j++)
                        ref[(size_t)j * N + t] = dig[j];
                }
                for (size_t p = 0; p < np; p++) {
                    memset(got, 0x5a, sizeof(int64_t) * l * N);
                    pk[p].k->decompose_rotated(src, N, rots[r], B, l, got);
                    const int same = !memcmp(got, ref, sizeof(int64_t) * l * N);
                    if (!same)
                        printf("\n  %s: N %u a %u B %u l %u: digits differ",
                               veil_fft_path_name(pk[p].path), N, rots[r], B, l);
                    CU_ASSERT(same);
                    cases++;
                }
            }
        }
        free(src), free(v), free(ref), free(got);
    }
    CU_ASSERT_EQUAL(cases, expected);
    CU_ASSERT(cases >= 3 * 12 * 7);
}

/* decompose_rotated on differences that are exact rounding ties: half of
 * src is 0, the other half has exactly one half below the kept bits, so
 * most of X^a src - src are ties (+-tie - 0). The CMux rounds ties up
 * (veil_gadget_decompose, VEIL_GADGET_INIT) like forward_digits and the CUDA
 * kernels; only the multi-bit step's decompose rounds them to even, and a
 * shared loop once gave decompose_rotated that rule too. */
static void test_decompose_rotated_ties(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    const uint32_t N = 64, rots[] = {1, 3, 8, N + 5};
    const uint32_t bl[][2] = {{23, 1}, {15, 2}, {3, 5}, {10, 4}};
    uint64_t src[64], v[64];
    int64_t ref[5 * 64], got[5 * 64], dig[64];
    size_t cases = 0, ties = 0;
    for (size_t b = 0; b < sizeof bl / sizeof *bl; b++) {
        const uint32_t B = bl[b][0], l = bl[b][1], bits = B * l;
        const uint64_t low = ((uint64_t)1 << (64 - bits)) - 1, half = (uint64_t)1 << (63 - bits);
        for (uint32_t t = 0; t < N; t++)
            src[t] = t % 2 ? (veil_test_rand() & ~low) | half : 0;
        for (size_t r = 0; r < sizeof rots / sizeof *rots; r++) {
            monomial_ref(v, src, N, rots[r]);
            for (uint32_t t = 0; t < N; t++) {
                v[t] -= src[t];
                ties += (v[t] & low) == half;
                veil_gadget_decompose(v[t], B, l, dig);
                for (uint32_t j = 0; j < l; j++)
                    ref[(size_t)j * N + t] = dig[j];
            }
            for (size_t p = 0; p < np; p++) {
                pk[p].k->decompose_rotated(src, N, rots[r], B, l, got);
                const int same = !memcmp(got, ref, sizeof(int64_t) * l * N);
                if (!same)
                    printf("\n  %s: ties, a %u B %u l %u: digits differ",
                           veil_fft_path_name(pk[p].path), rots[r], B, l);
                CU_ASSERT(same);
                cases++;
            }
        }
    }
    CU_ASSERT_EQUAL(cases, np * 4 * 4);
    CU_ASSERT(ties >= 4 * 4 * N / 4); /* the case is about ties: most values are */
}

/* rotate_sub (X^a src - src) against the definition, and forward_digits
 * (the digits' transforms of X^a src - src with the difference and the
 * decomposition fused into the first pass) bit for bit against veil_gadget_decompose's digits
 * through veil_fft_forward_i64 on the same transform, and against the portable path's bits: the PBS
 * on a veil path takes this route. B = 52 and 60 run the general int64 conversion of a digit, the
 * others the short one; l = 1 skips the digit step (the digit is the rounded value), checked on the
 * rounding edges too (rotation 0's case). */
static void test_forward_digits(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    const uint32_t sizes[] = {16, 64, 2048};
    /* one level: 1 and 51 bits are digit1_f64's edges, 52 the first past it */
    const uint32_t bl[][2] = {{23, 1}, {15, 2}, {3, 5}, {8, 8}, {52, 1},
                              {60, 1}, {10, 4}, {1, 1}, {51, 1}};
    const size_t n_bl = sizeof bl / sizeof *bl;
    size_t cases = 0, expected = 0;
    for (size_t s = 0; s < 3; s++) {
        const uint32_t N = sizes[s];
        /* the run boundary e = a mod N inside a vector (3, 1, N + 5), on a
         * vector edge (N + 8), and at the last coefficient (N - 1) */
        const uint32_t rots[] = {0, 3, N - 1, N + 8, N + 5, 1};
        const size_t n_rots = sizeof rots / sizeof *rots;
        expected += np * n_rots * n_bl;
        uint64_t *src = malloc(sizeof(uint64_t) * N), *v = malloc(sizeof(uint64_t) * N),
                 *d = malloc(sizeof(uint64_t) * N);
        int64_t *dig_poly = malloc(sizeof(int64_t) * N), dig[64];
        double *ref = veil_fft_alloc(sizeof(double) * 8 * N),
               *got = veil_fft_alloc(sizeof(double) * 8 * N),
               *port = veil_fft_alloc(sizeof(double) * 8 * N);
        CU_ASSERT_FATAL(src && v && d && dig_poly && ref && got && port);
        for (uint32_t t = 0; t < N; t++)
            src[t] = veil_test_rand();
        for (size_t r = 0; r < n_rots; r++) {
            monomial_ref(v, src, N, rots[r]);
            for (uint32_t t = 0; t < N; t++)
                v[t] -= src[t];
            for (size_t b = 0; b < n_bl; b++) {
                const uint32_t B = bl[b][0], l = bl[b][1];
                if (r == 0) {
                    /* rotation 0 gives v = 0: instead, the rounding edges
                     * of this decomposition (half the torus with the
                     * rounding bit clear or set, the rounding bit alone,
                     * all ones) between random values */
                    const uint32_t bits = B * l;
                    const uint64_t half = 1ull << 63, rb = bits < 64 ? 1ull << (63 - bits) : 0;
                    const uint64_t edge[8] = {half,  half | rb, half - rb,     rb,
                                              ~0ull, 0,         half + 3 * rb, veil_test_rand()};
                    for (uint32_t t = 0; t < N; t++)
                        v[t] = edge[t % 8];
                }
                for (size_t p = 0; p < np; p++) {
                    veil_fft *f;
                    CU_ASSERT_FATAL(veil_fft_new_path(N, pk[p].path, &f) == VEIL_OK);
                    memset(d, 0x5a, sizeof(uint64_t) * N);
                    pk[p].k->rotate_sub(src, N, rots[r], d);
                    int same = 1;
                    for (uint32_t t = 0; t < N; t++)
                        same &= d[t] == (r == 0 ? 0 : v[t]);        /* X^0 src - src = 0 */
                    if (r == 0) memcpy(d, v, sizeof(uint64_t) * N); /* then the edges */
                    for (uint32_t j = 0; j < l; j++) {
                        for (uint32_t t = 0; t < N; t++) {
                            veil_gadget_decompose(v[t], B, l, dig);
                            dig_poly[t] = dig[j];
                        }
                        veil_fft_forward_i64(f, dig_poly, ref + (size_t)j * N);
                    }
                    /* rotation 0: forward_digits of the edges themselves;
                     * else of the difference it forms from src */
                    memset(got, 0x5a, sizeof(double) * l * N);
                    veil_fft_forward_digits(f, r == 0 ? d : src, rots[r], B, l, got);
                    same = same && !memcmp(got, ref, sizeof(double) * l * N);
                    if (p == 0) memcpy(port, got, sizeof(double) * l * N);
                    same = same && !memcmp(got, port, sizeof(double) * l * N);
                    if (!same)
                        printf("\n  %s: N %u a %u B %u l %u: rotate_sub or forward_digits differ",
                               veil_fft_path_name(pk[p].path), N, rots[r], B, l);
                    CU_ASSERT(same);
                    cases++;
                    veil_fft_free(f);
                }
            }
        }
        free(src), free(v), free(d), free(dig_poly);
        veil_fft_dealloc(ref), veil_fft_dealloc(got), veil_fft_dealloc(port);
    }
    CU_ASSERT_EQUAL(cases, expected);
    CU_ASSERT(cases >= 3 * 6 * 7);
}

/* The stream the blind rotation gives the transforms (pbs.c: the next
 * GGSW over a CMux's (k + 1)(l + 1) transforms): its line count per loop
 * iteration comes from a count of the template's loops in fft.c, so a
 * change to either shows here as lines never fetched, or as a burst. */
static void test_prefetch_stream(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    const uint32_t sizes[] = {128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536};
    const uint32_t shapes[][2] = {{2, 1}, {2, 2}, {2, 3}, {3, 1}, {5, 1}, {2, 5}};
    size_t cases = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const uint32_t N = sizes[s];
        uint64_t *x = calloc(N, sizeof(uint64_t));
        double *fd = veil_fft_alloc(sizeof(double) * 5 * N);
        CU_ASSERT_FATAL(x && fd);
        for (size_t p = 0; p < np; p++) {
            veil_fft *f;
            CU_ASSERT_FATAL(veil_fft_new_path(N, pk[p].path, &f) == VEIL_OK);
            for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
                const uint32_t k1 = shapes[sh][0], l = shapes[sh][1];
                const size_t bytes = sizeof(double) * k1 * l * k1 * N;
                char *ggsw = malloc(bytes); /* only prefetched, never read */
                CU_ASSERT_FATAL(ggsw != NULL);
                veil_fft_prefetch(f, ggsw, bytes, k1 * (l + 1));
                size_t after_first = 0;
                for (uint32_t q = 0; q < k1; q++) {
                    veil_fft_forward_digits(f, x, 0, 23, l, fd);
                    if (q == 0) after_first = veil_fft_prefetch_left(f);
                }
                for (uint32_t q = 0; q < k1; q++)
                    veil_fft_backward_add_torus(f, fd, x);
                const size_t left = veil_fft_prefetch_left(f);
                if (left != 0 || after_first == 0)
                    printf("\n  %s: N %u k+1 %u l %u: %zu of %zu bytes left at the end, %zu after "
                           "the first forward",
                           veil_fft_path_name(pk[p].path), N, k1, l, left, bytes, after_first);
                CU_ASSERT_EQUAL(left, 0);
                CU_ASSERT(after_first > 0);
                veil_fft_prefetch(f, NULL, 0, 0);
                CU_ASSERT_EQUAL(veil_fft_prefetch_left(f), 0);
                free(ggsw);
                cases++;
            }
            veil_fft_free(f);
        }
        free(x);
        veil_fft_dealloc(fd);
    }
    CU_ASSERT_EQUAL(cases, np * 9 * 6);
}

/* decompose (the multi-bit external product's): the digits of src itself,
 * ties to even, N off and on a vector multiple so the scalar tail runs too;
 * every fourth input is made an exact tie for each (B, l) (its rounded-off
 * bits exactly one half), where the two rounding rules differ. */
static void test_decompose(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    const uint32_t sizes[] = {16, 2048, 21};
    const uint32_t bl[][2] = {{22, 1}, {15, 2}, {3, 5}, {8, 8}, {32, 2}};
    const size_t n_bl = sizeof bl / sizeof *bl;
    size_t cases = 0;
    for (size_t s = 0; s < 3; s++) {
        const uint32_t N = sizes[s];
        uint64_t *src = malloc(sizeof(uint64_t) * N);
        int64_t *ref = malloc(sizeof(int64_t) * 8 * N), *got = malloc(sizeof(int64_t) * 8 * N);
        int64_t dig[64];
        CU_ASSERT_FATAL(src && ref && got);
        for (uint32_t t = 0; t < N; t++)
            src[t] = veil_test_rand();
        for (size_t b = 0; b < n_bl; b++) {
            const uint32_t B = bl[b][0], l = bl[b][1], drop = 64 - B * l;
            size_t ties = 0, differ = 0;
            for (uint32_t t = 0; t < N; t++) {
                if (drop > 0 && t % 4 == 0) {
                    src[t] = (veil_test_rand() & ~(((uint64_t)1 << drop) - 1)) |
                             ((uint64_t)1 << (drop - 1));
                    ties++;
                    differ += (size_t)(veil_gadget_round(src[t], B, l) !=
                                       veil_gadget_round_even(src[t], B, l));
                }
                veil_gadget_decompose_even(src[t], B, l, dig);
                for (uint32_t j = 0; j < l; j++)
                    ref[(size_t)j * N + t] = dig[j];
            }
            for (size_t p = 0; p < np; p++) {
                memset(got, 0x5a, sizeof(int64_t) * l * N);
                pk[p].k->decompose(src, N, B, l, got);
                const int same = !memcmp(got, ref, sizeof(int64_t) * l * N);
                if (!same)
                    printf("\n  %s: N %u B %u l %u: digits differ", veil_fft_path_name(pk[p].path),
                           N, B, l);
                CU_ASSERT(same);
                cases++;
            }
            /* about half the ties round differently (odd kept bits) */
            if (drop > 0) {
                CU_ASSERT(ties == (N + 3) / 4 && (N < 64 || (differ > ties / 4 && differ < ties)));
            } else {
                CU_ASSERT(ties == 0); /* B l = 64: nothing rounded off */
            }
        }
        free(src), free(ref), free(got);
    }
    CU_ASSERT_EQUAL(cases, 3 * n_bl * np);
}

static void test_mac_ggsw(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    const uint32_t N = 256;
    size_t cases = 0;
    /* two digit spectra: mac_ggsw on the first, mac_ggsw_lanes on 1 to 9
     * lanes of them */
    double *fd = veil_fft_alloc(sizeof(double) * 12 * N),
           *g = veil_fft_alloc(sizeof(double) * 36 * N),
           *gil = veil_fft_alloc(sizeof(double) * 36 * N);
    double *ref = veil_fft_alloc(sizeof(double) * 12 * N),
           *got = veil_fft_alloc(sizeof(double) * 12 * N);
    CU_ASSERT_FATAL(fd && g && gil && ref && got);
    for (uint32_t t = 0; t < 12 * N; t++)
        fd[t] = (double)(int64_t)(veil_test_rand() >> 40) * 0x1p-7;
    for (uint32_t t = 0; t < 36 * N; t++)
        g[t] = (double)(int64_t)veil_test_rand() * 0x1p-3;
    /* k + 1 = 2 .. 5 sum their columns side by side (mac_cols; mac_ggsw_lanes:
     * two lanes in one pass on AVX-512), the others one at a time */
    for (uint32_t k1 = 1; k1 <= 6; k1++)
        for (uint32_t rows = 1; rows <= 6; rows++) {
            memset(ref, 0, sizeof(double) * 12 * N);
            for (uint32_t lane = 0; lane < 2; lane++)
                for (uint32_t r = 0; r < rows; r++)
                    for (uint32_t q = 0; q < k1; q++)
                        veil_fft_mac(ref + (size_t)(6 * lane + q) * N,
                                     fd + (size_t)(6 * lane + r) * N, g + ((size_t)r * k1 + q) * N,
                                     N);
            /* the GGSW in the layout mac_ggsw reads */
            for (uint32_t q = 0; q < rows * k1; q++)
                veil_fft_ggsw_put(N, rows * k1, q, g + (size_t)q * N, gil);
            for (uint32_t q = 0; q < rows * k1; q++) { /* and back */
                veil_fft_ggsw_get(N, rows * k1, q, gil, got);
                CU_ASSERT(!memcmp(got, g + (size_t)q * N, sizeof(double) * N));
            }
            for (size_t p = 0; p < np; p++) {
                memset(got, 0x5a, sizeof(double) * k1 * N);
                pk[p].k->mac_ggsw(got, fd, gil, rows, k1, N);
                CU_ASSERT(!memcmp(got, ref, sizeof(double) * k1 * N));
                for (uint32_t P = 1; P <= 2 * VEIL_MAC_LANES + 1; P++) {
                    /* P lanes: the two spectra alternately */
                    double *acc[2 * VEIL_MAC_LANES + 1];
                    const double *fdl[2 * VEIL_MAC_LANES + 1];
                    for (uint32_t j = 0; j < P; j++) {
                        acc[j] = veil_fft_alloc(sizeof(double) * k1 * N);
                        CU_ASSERT_FATAL(acc[j] != NULL);
                        memset(acc[j], 0x5a, sizeof(double) * k1 * N);
                        fdl[j] = fd + (size_t)6 * (j % 2) * N;
                    }
                    pk[p].k->mac_ggsw_lanes(acc, fdl, P, gil, rows, k1, N);
                    int same = 1;
                    for (uint32_t j = 0; j < P; j++) {
                        same &=
                            !memcmp(acc[j], ref + (size_t)6 * (j % 2) * N, sizeof(double) * k1 * N);
                        veil_fft_dealloc(acc[j]);
                    }
                    if (!same)
                        printf("\n  %s: mac_ggsw_lanes P %u k+1 %u rows %u differs from mac_ggsw",
                               veil_fft_path_name(pk[p].path), P, k1, rows);
                    CU_ASSERT(same);
                }
                cases++;
            }
        }
    CU_ASSERT_EQUAL(cases, 6 * 6 * np);
    veil_fft_dealloc(fd), veil_fft_dealloc(g), veil_fft_dealloc(gil), veil_fft_dealloc(ref),
        veil_fft_dealloc(got);
}

/* ks_lanes (the lockstep keyswitch over a block of 32-bit key rows,
 * veil/ks32.h) against its definition mod 2^32: 1 to 16 lanes, widths around
 * the vector and tile widths (16 and 32 words on AVX-512), 1 to 17 rows,
 * digits of both signs and 0, on every path */
static void test_ks_lanes(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    enum { RS = 41, MAXR = 17, OS = 43 };
    enum { ML = VEIL_KS_LANES };
    uint32_t rows[MAXR * RS], d[MAXR * ML], init[ML * OS], got[ML * OS];
    for (size_t t = 0; t < MAXR * RS; t++)
        rows[t] = (uint32_t)veil_test_rand();
    for (size_t t = 0; t < MAXR * ML; t++)
        d[t] = (uint32_t)((int32_t)(veil_test_rand() % 33) - 16);
    size_t cases = 0, bad = 0;
    for (uint32_t lanes = 1; lanes <= ML; lanes++)
        for (uint32_t width = 1; width <= RS; width += 5)
            for (uint32_t count = 1; count <= MAXR; count += 4) {
                for (size_t t = 0; t < ML * OS; t++)
                    init[t] = (uint32_t)veil_test_rand();
                for (size_t p = 0; p < np; p++) {
                    memcpy(got, init, sizeof got);
                    pk[p].k->ks_lanes(got, OS, rows, RS, d, count, lanes, width);
                    for (uint32_t c = 0; c < ML; c++)
                        for (uint32_t t = 0; t < OS; t++) {
                            uint32_t want = init[c * OS + t];
                            if (c < lanes && t < width)
                                for (uint32_t r = 0; r < count; r++)
                                    want -= d[r * lanes + c] * rows[r * RS + t];
                            bad += got[c * OS + t] != want;
                        }
                    cases++;
                }
            }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(cases, ML * 9 * 5 * np);
}

/* pfpks_lanes (the WoP-PBS packing keyswitch's lockstep multiply-add,
 * engine/src/wop.c) against its definition mod 2^64: 1 to 20 lanes (groups
 * and a partial group on every path), widths around the vector and tile
 * widths, 1 to 17 rows, key words of every bit, digits of 0, 1 and up to
 * 2^32 - 1, on every path */
static void test_pfpks_lanes(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    enum { RS = 41, MAXR = 17, OS = 43, ML = 20 };
    uint64_t rows[MAXR * RS], init[ML * OS], got[ML * OS];
    uint32_t d[MAXR * ML];
    for (size_t t = 0; t < MAXR * RS; t++)
        rows[t] = veil_test_rand();
    for (size_t t = 0; t < MAXR * ML; t++) {
        const uint64_t r = veil_test_rand();
        d[t] = t % 7 == 0 ? 0 : t % 7 == 1 ? 0xffffffffu : t % 7 == 2 ? 1 : (uint32_t)r;
    }
    size_t cases = 0, bad = 0;
    for (uint32_t lanes = 1; lanes <= ML; lanes++)
        for (uint32_t width = 1; width <= RS; width += 5)
            for (uint32_t count = 1; count <= MAXR; count += 4) {
                for (size_t t = 0; t < ML * OS; t++)
                    init[t] = veil_test_rand();
                for (size_t p = 0; p < np; p++) {
                    memcpy(got, init, sizeof got);
                    pk[p].k->pfpks_lanes(got, OS, rows, RS, d, count, lanes, width);
                    for (uint32_t c = 0; c < ML; c++)
                        for (uint32_t t = 0; t < OS; t++) {
                            uint64_t want = init[c * OS + t];
                            if (c < lanes && t < width)
                                for (uint32_t r = 0; r < count; r++)
                                    want += (uint64_t)d[r * lanes + c] * rows[r * RS + t];
                            bad += got[c * OS + t] != want;
                        }
                    cases++;
                }
            }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(cases, ML * 9 * 5 * np);
}

/* round(v) mod 2^64, ties to even, straight from the definition: below
 * 2^63 llrint (the default rounding mode, nearest even), above it v is an
 * integer and fmod reduces it exactly */
static uint64_t torus_ref(double v) {
    if (fabs(v) < 0x1p63) return (uint64_t)llrint(v);
    double r = fmod(v, 0x1p64); /* exact, |r| < 2^64, an integer */
    if (r >= 0x1p63) r -= 0x1p64;
    if (r < -0x1p63) r += 0x1p64;
    return (uint64_t)(int64_t)r;
}

/* add_torus (the inverse transform's rounding to the torus, on its own) on
 * every path against torus_ref: ties of both signs and parities, both sides
 * of 2^52, 2^63, 2^64 and 2^116, zeros, and random values of every exponent
 * from 2^-4 to 2^130; counts that leave a tail */
static void test_add_torus(void) {
    path_kernels pk[3];
    const size_t np = paths_here(pk);
    enum { CNT = 4096 };
    static const double edge[] = {0.0,
                                  -0.0,
                                  0.5,
                                  -0.5,
                                  1.5,
                                  -1.5,
                                  2.5,
                                  -2.5,
                                  0x1.fffffffffffffp-2,
                                  -0x1.fffffffffffffp-2,
                                  0x1p52 - 0.5,
                                  -(0x1p52 - 0.5),
                                  0x1p52 - 1.5,
                                  0x1p52,
                                  0x1p52 + 1,
                                  0x1p53 + 2,
                                  0x1p62 + 0x1p10,
                                  0x1p63,
                                  -0x1p63,
                                  0x1p63 - 0x1p10,
                                  0x1p64,
                                  -0x1p64,
                                  0x1p64 - 0x1p11,
                                  0x1p64 + 0x1p12,
                                  0x1p64 + 0x1p63,
                                  -0x1p64 - 0x1p63,
                                  0x1.8p64,
                                  0x1.fffffffffffffp115,
                                  -0x1.fffffffffffffp115,
                                  0x1p116,
                                  -0x1p116,
                                  0x1.0000000000001p116,
                                  0x1p200,
                                  3.0e-310};
    const size_t n_edge = sizeof edge / sizeof edge[0];
    double *v = malloc(sizeof(double) * CNT);
    uint64_t *init = malloc(sizeof(uint64_t) * CNT), *got = malloc(sizeof(uint64_t) * CNT);
    CU_ASSERT_FATAL(v && init && got);
    for (size_t j = 0; j < CNT; j++) {
        init[j] = veil_test_rand();
        if (j < n_edge) {
            v[j] = edge[j];
            continue;
        }
        const uint64_t r = veil_test_rand();
        const int e = (int)(r % 135) - 4;                              /* 2^-4 .. 2^130 */
        double m = ldexp((double)(veil_test_rand() >> 11), -53) + 1.0; /* [1, 2) */
        if (j % 4 == 1) m = floor(ldexp(m, 20)) * 0x1p-20 + 0x1p-21;   /* a tie from 2^-1 to 2^51 */
        v[j] = (r >> 63 ? -1 : 1) * ldexp(m, e);
    }
    size_t cases = 0;
    for (size_t p = 0; p < np; p++)
        for (uint32_t count = CNT - 13; count <= CNT; count += 13) {
            memcpy(got, init, sizeof(uint64_t) * CNT);
            pk[p].k->add_torus(got, v, count);
            size_t bad = 0;
            for (size_t j = 0; j < CNT; j++) {
                const uint64_t want = init[j] + (j < count ? torus_ref(v[j]) : 0);
                if (got[j] != want && bad++ < 4)
                    printf("\n  path %s: v = %a: got %016llx, want %016llx",
                           veil_fft_path_name(pk[p].path), v[j],
                           (unsigned long long)(got[j] - init[j]),
                           (unsigned long long)(want - init[j]));
            }
            CU_ASSERT_EQUAL(bad, 0);
            cases++;
        }
    CU_ASSERT_EQUAL(cases, 2 * np);
    /* the scalar veil_f64_to_torus (FFTW path, N < 128) rounds by the same
     * rule (it truncated toward zero before: 2.5 gave 2) */
    size_t scalar_bad = 0;
    for (size_t j = 0; j < CNT; j++)
        if (veil_f64_to_torus(v[j]) != torus_ref(v[j]) && scalar_bad++ < 4)
            printf("\n  veil_f64_to_torus(%a) = %016llx, want %016llx", v[j],
                   (unsigned long long)veil_f64_to_torus(v[j]),
                   (unsigned long long)torus_ref(v[j]));
    CU_ASSERT_EQUAL(scalar_bad, 0);
    free(v), free(init), free(got);
}

/* one full keyswitch group (two full PBS groups), then a partial one (a
 * full PBS group and a partial one) */
#define MANY (VEIL_KS_LANES + VEIL_PBS_LANES + 3)

/* Keys, an encryptor and a PBS context of tfhers-1_1-gaussian-2m64 from
 * test seeds seed .. seed + 4 (the lockstep tests below). */
typedef struct keys_1_1 {
    const veil_params *p;
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_pbs_ctx *ctx;
} keys_1_1;

static void keys_1_1_new(unsigned seed, keys_1_1 *k) {
    k->p = veil_params_find("tfhers-1_1-gaussian-2m64");
    CU_ASSERT_FATAL(k->p != NULL);
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(seed + i, s[i]);
    CU_ASSERT_FATAL(veil_secret_key_new(k->p, s[0], &k->sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new(k->sk, s[1], s[2], &k->ek) == VEIL_OK);
    CU_ASSERT_FATAL(veil_encryptor_new(s[3], s[4], &k->enc) == VEIL_OK);
    CU_ASSERT_FATAL(veil_pbs_ctx_new(k->p, &k->ctx) == VEIL_OK);
}

static void keys_1_1_free(keys_1_1 *k) {
    veil_pbs_ctx_free(k->ctx);
    veil_encryptor_free(k->enc);
    veil_eval_key_free(k->ek);
    veil_secret_key_free(k->sk);
}

static void test_ks_pbs_many(void) {
    keys_1_1 k;
    keys_1_1_new(40, &k);
    const veil_params *p = k.p;
    veil_secret_key *sk = k.sk;
    veil_eval_key *ek = k.ek;
    veil_encryptor *enc = k.enc;
    veil_pbs_ctx *ctx = k.ctx;
    veil_lut *lut[2];
    const unsigned prec = p->precision, n = 1u << prec;
    int64_t table[2][64];
    for (unsigned i = 0; i < n; i++) {
        table[0][i] = (int64_t)((i * 3 + 1) % n);
        table[1][i] = (int64_t)(n - 1 - i);
    }
    for (int t = 0; t < 2; t++)
        CU_ASSERT_FATAL(veil_lut_new(p, table[t], prec, 0, veil_delta(prec), &lut[t]) == VEIL_OK);
    const size_t lwe = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = malloc(sizeof(uint64_t) * lwe * MANY);
    uint64_t *ref = malloc(sizeof(uint64_t) * lwe * MANY);
    uint64_t *out = malloc(sizeof(uint64_t) * lwe * MANY);
    CU_ASSERT_FATAL(in && ref && out);
    const veil_lut *luts[MANY];
    int64_t msg[MANY];
    for (size_t i = 0; i < MANY; i++) {
        msg[i] = (int64_t)(veil_test_rand() % n);
        luts[i] = lut[(i * 5) % 3 == 1];
        veil_encrypt_big(enc, sk, veil_encode(msg[i], prec), in + i * lwe);
        veil_ks_pbs(ctx, veil_eval_key_part(ek, 0), luts[i], in + i * lwe, ref + i * lwe);
    }
    memset(out, 0, sizeof(uint64_t) * lwe * MANY);
    veil_ks_pbs_many(ctx, veil_eval_key_part(ek, 0), luts, in, MANY, out);
    CU_ASSERT(!memcmp(out, ref, sizeof(uint64_t) * lwe * MANY));
    size_t checked = 0;
    for (size_t i = 0; i < MANY; i++) {
        const int t = luts[i] == lut[1];
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(sk, out + i * lwe), prec, 0), table[t][msg[i]]);
        checked++;
    }
    CU_ASSERT_EQUAL(checked, MANY);
    free(in), free(ref), free(out);
    for (int t = 0; t < 2; t++)
        veil_lut_free(lut[t]);
    keys_1_1_free(&k);
}

/* Threshold reads (veil_lut_steps_new, veil_ks_pbs_many_extract): every
 * threshold t in [0, 2^prec] of every input, one rotation each, decrypts to
 * V [m >= t]; extraction {0, 0} of an ordinary table gives
 * veil_ks_pbs_many's bits. The extractions repeat with period 3 over the
 * inputs, and the call starts at input 1 of that period. */
static void test_ks_pbs_many_extract(void) {
    keys_1_1 k;
    keys_1_1_new(50, &k);
    const veil_params *p = k.p;
    veil_secret_key *sk = k.sk;
    veil_eval_key *ek = k.ek;
    veil_encryptor *enc = k.enc;
    veil_pbs_ctx *ctx = k.ctx;
    veil_lut *steps, *lut;
    const unsigned prec = p->precision, n = 1u << prec, R = n + 1, period = 3;
    const uint64_t V = veil_delta(prec) * 2; /* 2: a value other than 1 */
    int64_t table[64];
    for (unsigned i = 0; i < n; i++)
        table[i] = (int64_t)((i * 3 + 1) % n);
    CU_ASSERT_FATAL(veil_lut_steps_new(p, prec, V, &steps) == VEIL_OK);
    CU_ASSERT_FATAL(veil_lut_new(p, table, prec, 0, veil_delta(prec), &lut) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_lut_steps_new(p, prec, V + 1, &(veil_lut *){NULL}), VEIL_ERR_ARG);
    const size_t lwe = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = malloc(sizeof(uint64_t) * lwe * MANY);
    uint64_t *ref = malloc(sizeof(uint64_t) * lwe * MANY);
    uint64_t *out = malloc(sizeof(uint64_t) * lwe * MANY * R);
    veil_extract ext[64 * 3];
    CU_ASSERT_FATAL(in && ref && out && R * period <= 64 * 3);
    /* slot q of the period, result r: threshold (r + q) mod R */
    for (unsigned q = 0; q < period; q++)
        for (unsigned r = 0; r < R; r++)
            ext[r * period + q] = veil_lut_step(steps, V, (r + q) % R);
    int64_t msg[MANY];
    const veil_lut *luts[MANY];
    for (size_t i = 0; i < MANY; i++) {
        msg[i] = (int64_t)(i < n ? i : veil_test_rand() % n); /* every value */
        luts[i] = lut;
        veil_encrypt_big(enc, sk, veil_encode(msg[i], prec), in + i * lwe);
    }
    veil_ks_pbs_many_extract(ctx, veil_eval_key_part(ek, 0), steps, in, MANY, ext, R, period, 1,
                             out, MANY);
    size_t right = 0;
    for (size_t i = 0; i < MANY; i++)
        for (unsigned r = 0; r < R; r++) {
            const uint64_t t = (r + (1 + i) % period) % R;
            const uint64_t ph = veil_phase_big(sk, out + (r * MANY + i) * lwe);
            /* V [m >= t], read back within a quarter of V */
            const uint64_t want = (uint64_t)msg[i] >= t ? V : 0, d = ph - want;
            right += (int64_t)d < (int64_t)(V / 4) && (int64_t)d > -(int64_t)(V / 4);
        }
    CU_ASSERT_EQUAL(right, (size_t)MANY * R);
    const veil_extract zero = {0, 0};
    veil_ks_pbs_many(ctx, veil_eval_key_part(ek, 0), luts, in, MANY, ref);
    veil_ks_pbs_many_extract(ctx, veil_eval_key_part(ek, 0), lut, in, MANY, &zero, 1, 1, 0, out,
                             MANY);
    CU_ASSERT(!memcmp(out, ref, sizeof(uint64_t) * lwe * MANY));
    free(in), free(ref), free(out);
    veil_lut_free(steps);
    veil_lut_free(lut);
    keys_1_1_free(&k);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("pbs_loop", NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_decompose_rotated);
    VEIL_ADD_TEST(s, test_decompose_rotated_ties);
    VEIL_ADD_TEST(s, test_decompose);
    VEIL_ADD_TEST(s, test_add_monomial);
    VEIL_ADD_TEST(s, test_forward_digits);
    VEIL_ADD_TEST(s, test_mac_ggsw);
    VEIL_ADD_TEST(s, test_add_torus);
    VEIL_ADD_TEST(s, test_prefetch_stream);
    VEIL_ADD_TEST(s, test_ks_lanes);
    VEIL_ADD_TEST(s, test_pfpks_lanes);
    VEIL_ADD_TEST(s, test_ks_pbs_many);
    VEIL_ADD_TEST(s, test_ks_pbs_many_extract);
    return veil_test_run();
}
