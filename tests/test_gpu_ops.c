// LABELS: gpu
// LINKS: veil_host veil_loaders
/* Every CUDA operation against the CPU on the same keys and inputs (ggml's
 * test-backend-ops pattern), on three parameter sets (k = 4 / N = 512;
 * k = 1 / N = 2048 with the centred modulus switch; a two-level PBS
 * decomposition):
 *   - keyswitch and modulus switch (kernel ABI): bit-exact;
 *   - bootstrapping key in the Fourier domain: cuFFT vs FFTW, relative error;
 *   - ks_pbs (backend, on device buffers), with every blind rotation (fused,
 *     cluster, cufft, split: N = 32768 runs on cufft and split only):
 *     decryptions equal the CPU's and the table, phase difference within
 *     the FFT error bound below; batches
 *     of 1, odd sizes, a large one, and more than one launch (small
 *     max_batch); multi-bit sets (g = 2, 3, 4) on the cuFFT path likewise;
 *   - ks_pbs_extract (threshold reads: the kernels' accumulators, then
 *     veil_cuda_extract) likewise against the cpu backend's;
 *   - linear and conv2d (backend): bit-exact on random words and full-range
 *     weights;
 *   - every leveled op (add, scale, copy, dense, conv2d) in random programs
 *     on device buffers (backend_random_ops.h), bit-exact against the cpu;
 *   - a plan group of two plans on one GPU (and "all" with two or more)
 *     against one plan (plan_group_common.h);
 *   - two host threads on one GPU, each KS-PBS of its own partition (its own
 *     parameter set) through its own keys, launches interleaved;
 *   - freeing a buffer, tables, weights and keys leaves the calling
 *     thread's current device as it was (two devices or more);
 *   - the WoP-PBS kernels (veil_cuda_wop, kernel ABI) at 9 and 12 bits
 *     against the engine's veil_wop_pbs and the table (the small run too:
 *     n = 32, 9 bits); the WoP-PBS (wop_pbs) in a compiled 12-bit program:
 *     its tables made once at plan time, every decryption equal to
 *     simulate;
 * every op's outputs with a sentinel after them on the device
 * (backend_host.h).
 * Without a CUDA build or a device: prints SKIPPED and exits 77. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "testutil.h"
#include "veil/backend.h"
#include "../host/backend_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef VEIL_WITH_CUDA
#include <cuda_runtime_api.h>

#include "backend_host.h"
#include "backend_random_ops.h"
#include "model_encrypted_common.h"
#include "plan_group_common.h"
#include "wide_model.h"
#include "wop_kernel_case.h"
#include "wop_plan_common.h"
#include "veil/compile_options.h"
#include "veil/cuda.h"

/* FFT error bound on the PBS output phase: CPU (FFTW) and GPU (cuFFT or the
 * fused kernel's FFT) results may differ by at most Δ / 2^5 (Δ = 2^(63 - p)),
 * 16 times below the Δ / 2 that would change a decryption; the measured
 * maximum is printed. The difference is f64 rounding in the products of
 * digits (up to 2^(B-1)) with 64-bit key coefficients, so it scales with 2^B:
 * measured on the host emulation about 2^49..2^50 for B = 23 (N = 512 and
 * 2048) and 2^42 for B = 15, i.e. 2^-9 of Δ at p = 4. */
#define PHASE_BOUND_SHIFT 5

/* The blind rotations each PBS test runs explicitly (KINDS below). */
#define N_KINDS 4

typedef struct {
    const char *name;
    veil_params p;
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_backend_keys *cpu, *gpu;     /* gpu: pbs auto */
    veil_backend_keys *kind[N_KINDS]; /* KINDS; NULL where that kernel cannot run */
    size_t lwe;
} fixture;

static veil_backend *CPU, *GPU;
/* The blind rotations each PBS test runs explicitly (options.pbs), one
 * backend each. */
static const char *const KINDS[N_KINDS] = {"fused", "cluster", "cufft", "split"};
static veil_backend *GPU_KIND[N_KINDS];
/* VEIL_TEST_GPU_SMALL=1 (for compute-sanitizer, whose tools run kernels tens
 * to thousands of times slower): the same shapes with n = 32 (a 32-step
 * blind rotation: every phase of the kernels, for a fraction of the time),
 * small batches. Not secure parameters; the results are still checked
 * against the CPU. */
static int SMALL;
#define N_FX 4
static fixture FX[N_FX];
static int n_fx;
static int CC_MAJOR; /* the device's compute capability */

static int fixture_make(fixture *f, const char *name, const veil_params *p) {
    uint8_t s[4][32];
    for (unsigned i = 0; i < 4; i++)
        veil_test_seed_bytes(20 + 4 * (unsigned)n_fx + i, s[i]);
    f->name = name;
    f->p = *p;
    f->lwe = (size_t)veil_params_big_dim(p) + 1;
    if (veil_secret_key_new(&f->p, s[0], &f->sk) || veil_eval_key_new(f->sk, s[1], s[2], &f->ek) ||
        veil_encryptor_new(s[3], NULL, &f->enc) ||
        veil_backend_keys_new(CPU, f->ek, 1024, &f->cpu) ||
        veil_backend_keys_new(GPU, f->ek, 4096, &f->gpu)) {
        printf("fixture %s: %s\n", name, veil_error_message());
        return 0;
    }
    printf("fixture %s: n=%u k=%u N=%u pbs %u x 2^%u ks %u x 2^%u ms=%s\n  auto: %s, pieces of "
           "%zu\n",
           name, p->lwe_dim, p->glwe_dim, p->poly_size, p->pbs_level, p->pbs_base_log, p->ks_level,
           p->ks_base_log, p->ms == VEIL_MS_CENTERED ? "centered" : "standard", f->gpu->detail,
           f->gpu->limits.max_pbs);
    for (int k = 0; k < N_KINDS; k++) {
        veil_status st = veil_backend_keys_new(GPU_KIND[k], f->ek, 4096, &f->kind[k]);
        if (st == VEIL_OK)
            printf("  %s: %s\n", KINDS[k], f->kind[k]->detail);
        else if (st == VEIL_ERR_UNSUPPORTED || st == VEIL_ERR_DEVICE) /* checked in test_ks_pbs */
            printf("  %s: does not run here: %s\n", KINDS[k], veil_error_message());
        else
            return 0;
    }
    return f->kind[2] != NULL; /* cuFFT runs every set */
}

static void fixture_free(fixture *f) {
    veil_backend_keys_free(f->gpu);
    for (int k = 0; k < N_KINDS; k++)
        veil_backend_keys_free(f->kind[k]);
    veil_backend_keys_free(f->cpu);
    veil_encryptor_free(f->enc);
    veil_eval_key_free(f->ek);
    veil_secret_key_free(f->sk);
}

static int suite_init(void) {
    if (veil_backend_new(VEIL_BACKEND_CPU, &CPU) || veil_backend_new(VEIL_BACKEND_CUDA, &GPU)) {
        printf("backends: %s\n", veil_error_message());
        return 1;
    }
    for (int k = 0; k < N_KINDS; k++) {
        veil_backend_options bo;
        veil_backend_options_default(&bo);
        if (veil_backend_pbs_parse(KINDS[k], &bo.pbs) ||
            veil_backend_new_opts(VEIL_BACKEND_CUDA, &bo, &GPU_KIND[k])) {
            printf("backend %s: %s\n", KINDS[k], veil_error_message());
            return 1;
        }
    }
    printf("\n%s\n%s\n", veil_backend_describe(GPU), veil_backend_describe(CPU));
    const veil_params *a = veil_params_find("tfhers-1_1-gaussian-2m64");
    const veil_params *b = veil_params_find("tfhers-2_2-tuniform-2m128");
    if (!a || !b) return 1;
    veil_params two = *veil_params_find("tfhers-2_2-gaussian-2m64");
    two.id = "test-2_2-pbs-2x15";
    two.pbs_level = 2;
    two.pbs_base_log = 15;
    veil_params set[3] = {*a, *b, two};
    const char *names[3] = {"1_1 k=4", "2_2 centred", "2_2 l=2"};
    if (SMALL) {
        const char *ids[3] = {"test-1_1-n32", "test-2_2-centred-n32", "test-2_2-pbs-2x15-n32"};
        const char *small_names[3] = {"1_1 k=4 n=32", "2_2 centred n=32", "2_2 l=2 n=32"};
        for (int i = 0; i < 3; i++) {
            set[i].id = ids[i];
            set[i].lwe_dim = 32;
            names[i] = small_names[i];
        }
    }
    for (int i = 0; i < 3; i++) {
        if (!fixture_make(&FX[n_fx], names[i], &set[i])) return 1;
        n_fx++;
    }
    /* N = 32768 (the 8-bit NN sets; cuFFT and split only: neither the
     * fused nor the cluster kernel's shared memory fits), with n = 32 in
     * both modes: N is what the test is for (the kernels' indexing and
     * plans at that size); n only counts the steps, and the real n = 1017
     * would spend minutes in CPU keygen. */
    const veil_params *p8 = veil_params_find("nn-p8-norm2e0-2m40");
    if (!p8) return 1;
    veil_params big = *p8;
    big.id = "test-nn-p8-n32";
    big.lwe_dim = 32;
    if (!fixture_make(&FX[n_fx], "8-bit N=32768 n=32", &big)) return 1;
    n_fx++;
    if (cudaDeviceGetAttribute(&CC_MAJOR, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess)
        return 1;
    return 0;
}

static int suite_clean(void) {
    for (int i = 0; i < n_fx; i++)
        fixture_free(&FX[i]);
    for (int k = 0; k < N_KINDS; k++)
        veil_backend_free(GPU_KIND[k]);
    veil_backend_free(GPU);
    veil_backend_free(CPU);
    return 0;
}

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    CU_ASSERT_FATAL(cudaMalloc(&p, bytes) == cudaSuccess);
    return p;
}

static void rand_words(uint64_t *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        w[i] = veil_test_rand();
}

static veil_cuda_params cuda_params(const veil_params *p) {
    return veil_cuda_params_from(p, VEIL_CUDA_PBS_AUTO);
}

static void test_keyswitch_exact(void) {
    const size_t counts[] = {1, 37, 300};
    for (int f = 0; f < n_fx; f++) {
        fixture *x = &FX[f];
        veil_cuda_params cp = cuda_params(&x->p);
        const size_t n1 = x->p.lwe_dim + 1,
                     kw = veil_eval_key_ksk_words(&x->p, veil_params_big_dim(&x->p));
        uint64_t *d_ksk = dev_alloc(kw * 8), *wide = malloc(kw * 8);
        CU_ASSERT_FATAL(wide != NULL);
        /* the key as the backend uploads it (veil/ks32.h) */
        veil_keyswitch_key_wide(veil_eval_key_part(x->ek, 0), 0, kw, wide);
        CU_ASSERT_FATAL(cudaMemcpy(d_ksk, wide, kw * 8, cudaMemcpyHostToDevice) == 0);
        free(wide);
        for (size_t ci = 0; ci < (SMALL ? 2u : 3u); ci++) {
            size_t c = counts[ci];
            uint64_t *in = malloc(c * x->lwe * 8), *ref = malloc(c * n1 * 8),
                     *got = malloc(c * n1 * 8);
            CU_ASSERT_FATAL(in && ref && got);
            rand_words(in, c * x->lwe);
            for (size_t i = 0; i < c; i++)
                veil_keyswitch(veil_eval_key_part(x->ek, 0), in + i * x->lwe, ref + i * n1);
            uint64_t *d_in = dev_alloc(c * x->lwe * 8), *d_out = dev_alloc(c * n1 * 8);
            CU_ASSERT_FATAL(cudaMemcpy(d_in, in, c * x->lwe * 8, cudaMemcpyHostToDevice) == 0);
            CU_ASSERT_EQUAL(veil_cuda_keyswitch(NULL, 0, &cp, d_out, d_in, d_ksk, (uint32_t)c), 0);
            CU_ASSERT_FATAL(cudaMemcpy(got, d_out, c * n1 * 8, cudaMemcpyDeviceToHost) == 0);
            size_t bad = 0;
            for (size_t i = 0; i < c * n1; i++)
                bad += got[i] != ref[i];
            if (bad) printf("\n%s keyswitch batch %zu: %zu words differ\n", x->name, c, bad);
            CU_ASSERT_EQUAL(bad, 0);
            cudaFree(d_in);
            cudaFree(d_out);
            free(in);
            free(ref);
            free(got);
        }
        {
            /* the kernel told to read the key's first D/2 rows only
             * (ks_rows, as the backend does for a narrow partition), on
             * inputs whose masks are 0 past them */
            const uint32_t D = veil_params_big_dim(&x->p);
            veil_cuda_params half = cp;
            half.ks_rows = D / 2;
            const size_t c = 37;
            uint64_t *in = malloc(c * x->lwe * 8), *ref = malloc(c * n1 * 8),
                     *got = malloc(c * n1 * 8);
            CU_ASSERT_FATAL(in && ref && got);
            rand_words(in, c * x->lwe);
            for (size_t i = 0; i < c; i++) {
                memset(in + i * x->lwe + D / 2, 0, (D - D / 2) * 8);
                veil_keyswitch(veil_eval_key_part(x->ek, 0), in + i * x->lwe, ref + i * n1);
            }
            uint64_t *d_in = dev_alloc(c * x->lwe * 8), *d_out = dev_alloc(c * n1 * 8);
            CU_ASSERT_FATAL(cudaMemcpy(d_in, in, c * x->lwe * 8, cudaMemcpyHostToDevice) == 0);
            CU_ASSERT_EQUAL(veil_cuda_keyswitch(NULL, 0, &half, d_out, d_in, d_ksk, (uint32_t)c),
                            0);
            CU_ASSERT_FATAL(cudaMemcpy(got, d_out, c * n1 * 8, cudaMemcpyDeviceToHost) == 0);
            CU_ASSERT_EQUAL(memcmp(got, ref, c * n1 * 8), 0);
            cudaFree(d_in);
            cudaFree(d_out);
            free(in);
            free(ref);
            free(got);
        }
        cudaFree(d_ksk);
    }
}

/* Both switch variants on every set, with per-table offsets and indices. */
static void test_modulus_switch_exact(void) {
    const size_t c = 129;
    for (int f = 0; f < n_fx; f++) {
        fixture *x = &FX[f];
        for (int centered = 0; centered < 2; centered++) {
            veil_params p = x->p;
            p.ms = centered ? VEIL_MS_CENTERED : VEIL_MS_STANDARD;
            veil_cuda_params cp = cuda_params(&p);
            const size_t n1 = p.lwe_dim + 1;
            uint64_t *in = malloc(c * n1 * 8), off[3] = {0, veil_test_rand(), (uint64_t)1 << 60},
                     *tmp = malloc(n1 * 8);
            uint32_t idx[129], *ref = malloc(c * n1 * 4), *got = malloc(c * n1 * 4);
            CU_ASSERT_FATAL(in && ref && got && tmp);
            rand_words(in, c * n1);
            for (size_t i = 0; i < c; i++) {
                idx[i] = (uint32_t)(veil_test_rand() % 3);
                memcpy(tmp, in + i * n1, n1 * 8);
                tmp[n1 - 1] += off[idx[i]];
                veil_modulus_switch(&p, tmp, ref + i * n1);
            }
            uint64_t *d_in = dev_alloc(c * n1 * 8), *d_off = dev_alloc(3 * 8);
            uint32_t *d_idx = dev_alloc(c * 4), *d_out = dev_alloc(c * n1 * 4);
            CU_ASSERT_FATAL(cudaMemcpy(d_in, in, c * n1 * 8, cudaMemcpyHostToDevice) == 0);
            CU_ASSERT_FATAL(cudaMemcpy(d_off, off, 3 * 8, cudaMemcpyHostToDevice) == 0);
            CU_ASSERT_FATAL(cudaMemcpy(d_idx, idx, c * 4, cudaMemcpyHostToDevice) == 0);
            veil_cuda_lut_set set = {
                .d_polys = NULL, .d_offsets = d_off, .d_index = d_idx, .n_luts = 3};
            CU_ASSERT_EQUAL(veil_cuda_modulus_switch(NULL, 0, &cp, d_out, d_in, &set, (uint32_t)c),
                            0);
            CU_ASSERT_FATAL(cudaMemcpy(got, d_out, c * n1 * 4, cudaMemcpyDeviceToHost) == 0);
            size_t bad = 0;
            for (size_t i = 0; i < c * n1; i++)
                bad += got[i] != ref[i];
            if (bad)
                printf("\n%s modulus switch (%s): %zu values differ\n", x->name,
                       centered ? "centred" : "standard", bad);
            CU_ASSERT_EQUAL(bad, 0);
            cudaFree(d_in);
            cudaFree(d_off);
            cudaFree(d_idx);
            cudaFree(d_out);
            free(in);
            free(tmp);
            free(ref);
            free(got);
        }
    }
}

static void test_bsk_fourier(void) {
    for (int f = 0; f < n_fx; f++) {
        fixture *x = &FX[f];
        veil_cuda_params cp = cuda_params(&x->p);
        const size_t words = veil_eval_key_bsk_words(&x->p);
        const size_t fb = veil_cuda_bsk_fourier_bytes(&cp);
        CU_ASSERT_EQUAL_FATAL(fb, words * sizeof(double));
        uint64_t *d_bsk = dev_alloc(words * 8);
        double *d_f = dev_alloc(fb), *got = malloc(fb);
        CU_ASSERT_FATAL(got != NULL);
        CU_ASSERT_FATAL(cudaMemcpy(d_bsk, x->ek->parts[0].bsk, words * 8, cudaMemcpyHostToDevice) ==
                        0);
        CU_ASSERT_EQUAL(veil_cuda_bsk_to_fourier(NULL, 0, &cp, d_f, d_bsk), 0);
        CU_ASSERT_FATAL(cudaMemcpy(got, d_f, fb, cudaMemcpyDeviceToHost) == 0);
        /* the CPU's split, permuted spectrum in the device's natural order */
        double *cpu = veil_test_bsk_natural(&x->p, x->ek->parts[0].bsk_fourier);
        CU_ASSERT_FATAL(cpu != NULL);
        double max_diff = 0, max_abs = 0;
        for (size_t i = 0; i < words; i++) {
            double d = fabs(got[i] - cpu[i]);
            if (!(d <= max_diff)) max_diff = d; /* also catches NaN */
            if (fabs(cpu[i]) > max_abs) max_abs = fabs(cpu[i]);
        }
        free(cpu);
        printf("\n  %s: Fourier BSK cuFFT vs FFTW: max |diff| = 2^%.1f, max |value| = 2^%.1f",
               x->name, log2(max_diff), log2(max_abs));
        CU_ASSERT(max_diff <= max_abs * 0x1p-45);
        cudaFree(d_bsk);
        cudaFree(d_f);
        free(got);
    }
}

/* One table per parity of the index; signed and unsigned. */
static void ks_pbs_case(fixture *x, veil_backend_keys *gpu, size_t count) {
    const unsigned p = x->p.precision, n = 1u << p;
    int64_t tu[256], ts[256];
    for (unsigned i = 0; i < n; i++) {
        tu[i] = (5 * (int64_t)i + 3) % n;
        ts[i] = (3 * (int64_t)i + 1) % (int64_t)n - (int64_t)(n / 2);
    }
    veil_lut *lu, *ls;
    CU_ASSERT_FATAL(veil_lut_new(&x->p, tu, p, 0, veil_delta(p), &lu) == VEIL_OK);
    CU_ASSERT_FATAL(veil_lut_new(&x->p, ts, p, 1, veil_delta(p), &ls) == VEIL_OK);
    const veil_lut *const luts[2] = {lu, ls};
    uint64_t *in = malloc(count * x->lwe * 8), *ref = malloc(count * x->lwe * 8),
             *got = malloc(count * x->lwe * 8);
    uint32_t *idx = malloc(count * 4);
    int64_t *m = malloc(count * 8);
    CU_ASSERT_FATAL(in && ref && got && idx && m);
    for (size_t i = 0; i < count; i++) {
        idx[i] = (uint32_t)(veil_test_rand() % 2);
        m[i] = idx[i] ? (int64_t)(veil_test_rand() % n) - (int64_t)n / 2
                      : (int64_t)(veil_test_rand() % n);
        veil_encrypt_big(x->enc, x->sk, veil_encode(m[i], p), in + i * x->lwe);
    }
    CU_ASSERT_EQUAL_FATAL(bh_ks_pbs(x->cpu, 0, in, count, luts, 2, idx, ref), VEIL_OK);
    CU_ASSERT_EQUAL(bh_ks_pbs(gpu, 0, in, count, luts, 2, idx, got), VEIL_OK);
    if (!veil_backend_healthy(GPU)) printf("\n%s\n", veil_error_message());
    size_t wrong = 0, differ = 0;
    uint64_t max_diff = 0;
    const uint64_t bound = veil_delta(p) >> PHASE_BOUND_SHIFT;
    for (size_t i = 0; i < count; i++) {
        uint64_t pg = veil_phase_big(x->sk, got + i * x->lwe);
        uint64_t pc = veil_phase_big(x->sk, ref + i * x->lwe);
        int64_t dg = veil_decode(pg, p, (int)idx[i]), dc = veil_decode(pc, p, (int)idx[i]);
        int64_t want = idx[i] ? ts[m[i] + n / 2] : tu[m[i]];
        wrong += dg != want;
        differ += dg != dc;
        const uint64_t ad = veil_test_phase_dist(pg, pc);
        if (ad > max_diff) max_diff = ad;
    }
    printf("\n  %s ks_pbs batch %zu (%s): wrong %zu, differ %zu, max phase diff "
           "2^%.1f (bound 2^%.1f)",
           x->name, count, gpu->detail, wrong, differ,
           max_diff ? log2((double)max_diff) : -INFINITY, log2((double)bound));
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT(max_diff <= bound);
    free(in);
    free(ref);
    free(got);
    free(idx);
    free(m);
    veil_lut_free(lu);
    veil_lut_free(ls);
}

/* Every kernel on every set where it runs, and AUTO; the kernels that must
 * run here did. */
static void test_ks_pbs(void) {
    const size_t counts[] = {1, 7, 129};
    for (int f = 0; f < n_fx; f++) {
        fixture *x = &FX[f];
        const int small_n = x->p.poly_size <= 2048; /* both on-chip kernels fit */
        CU_ASSERT(!small_n || x->kind[0] != NULL);
        CU_ASSERT(!small_n || CC_MAJOR < 9 || x->kind[1] != NULL);
        /* the split kernel runs on sm_90 wherever its cluster is portable
         * (k = 1 at N <= 2048: 2 x 2 blocks); larger clusters (k = 4: 10
         * blocks; N = 32768: 16) need the device's non-portable size, and
         * fixture_make prints whether it ran */
        CU_ASSERT(!small_n || x->p.glwe_dim > 1 || CC_MAJOR < 9 || x->kind[3] != NULL);
        for (size_t c = 0; c < (SMALL ? 2u : 3u); c++)
            for (int k = 0; k < N_KINDS; k++)
                if (x->kind[k]) ks_pbs_case(x, x->kind[k], counts[c]);
        ks_pbs_case(x, x->gpu, SMALL ? 7 : 129);
    }
    if (SMALL) return;
    /* A large call (601: once two streams' pieces), on the first set. */
    ks_pbs_case(&FX[0], FX[0].gpu, 601);
    for (int k = 0; k < N_KINDS; k++)
        if (FX[0].kind[k]) ks_pbs_case(&FX[0], FX[0].kind[k], 601);
    /* More than one launch: pieces of 16, 37 ciphertexts. */
    for (int f = 0; f < n_fx; f++) {
        for (int k = 0; k < N_KINDS; k++) {
            if (!FX[f].kind[k]) continue;
            veil_backend_keys *small;
            CU_ASSERT_FATAL(veil_backend_keys_new(GPU_KIND[k], FX[f].ek, 16, &small) == VEIL_OK);
            CU_ASSERT_EQUAL(small->limits.max_pbs, 16);
            ks_pbs_case(&FX[f], small, 37);
            veil_backend_keys_free(small);
        }
    }
    CU_ASSERT(veil_backend_healthy(GPU));
}

/* Threshold reads (the backends' ks_pbs_extract; on cuda the kernels'
 * accumulators, then veil_cuda_extract): every threshold t of a
 * veil_lut_steps_new table of min(precision, 4) bits, period 2 (odd inputs
 * read them in reverse), on the gpu keys and on the cpu's: each result
 * decrypts to V [m >= t] on both, phases within the bound, nothing written
 * past the results (bh_finish's sentinel). */
static void ks_pbs_extract_case(fixture *x, veil_backend_keys *gpu, size_t count) {
    const unsigned bits = x->p.precision < 4 ? x->p.precision : 4, n = 1u << bits, R = n + 1;
    const uint64_t V = veil_delta(bits) * 2;
    veil_lut *steps;
    CU_ASSERT_FATAL(veil_lut_steps_new(&x->p, bits, V, &steps) == VEIL_OK);
    veil_extract ext[2 * 17];
    for (unsigned r = 0; r < R; r++) {
        ext[2 * r] = veil_lut_step(steps, V, r);
        ext[2 * r + 1] = veil_lut_step(steps, V, R - 1 - r);
    }
    uint64_t *in = malloc(count * x->lwe * 8), *ref = malloc(count * R * x->lwe * 8),
             *got = malloc(count * R * x->lwe * 8);
    int64_t *m = malloc(count * 8);
    CU_ASSERT_FATAL(in && ref && got && m);
    for (size_t i = 0; i < count; i++) {
        m[i] = (int64_t)(veil_test_rand() % n);
        veil_encrypt_big(x->enc, x->sk, veil_encode(m[i], bits), in + i * x->lwe);
    }
    CU_ASSERT_EQUAL_FATAL(bh_ks_pbs_extract(x->cpu, 0, in, count, steps, ext, R, 2, ref), VEIL_OK);
    CU_ASSERT_EQUAL(bh_ks_pbs_extract(gpu, 0, in, count, steps, ext, R, 2, got), VEIL_OK);
    if (!veil_backend_healthy(GPU)) printf("\n%s\n", veil_error_message());
    size_t wrong = 0, wrong_cpu = 0;
    uint64_t max_diff = 0;
    const uint64_t bound = veil_delta(bits) >> PHASE_BOUND_SHIFT;
    for (size_t i = 0; i < count; i++)
        for (unsigned r = 0; r < R; r++) {
            const uint64_t t = i % 2 ? R - 1 - r : r, want = (uint64_t)m[i] >= t ? V : 0;
            const uint64_t pg = veil_phase_big(x->sk, got + (r * count + i) * x->lwe),
                           pc = veil_phase_big(x->sk, ref + (r * count + i) * x->lwe);
            wrong += veil_test_phase_dist(pg, want) >= V / 4;
            wrong_cpu += veil_test_phase_dist(pc, want) >= V / 4;
            const uint64_t ad = veil_test_phase_dist(pg, pc);
            if (ad > max_diff) max_diff = ad;
        }
    printf("\n  %s ks_pbs_extract batch %zu x %u results (%s): wrong %zu (cpu %zu), max phase "
           "diff 2^%.1f (bound 2^%.1f)",
           x->name, count, R, gpu->detail, wrong, wrong_cpu,
           max_diff ? log2((double)max_diff) : -INFINITY, log2((double)bound));
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(wrong_cpu, 0);
    CU_ASSERT(max_diff <= bound);
    free(in);
    free(ref);
    free(got);
    free(m);
    veil_lut_free(steps);
}

/* Threshold reads with every blind rotation on every set where it runs,
 * and AUTO; batches of 1, 7 and 129 (7 at N = 32768), and more than one
 * piece (pieces of 16, 37 inputs). */
static void test_ks_pbs_extract(void) {
    for (int f = 0; f < n_fx; f++) {
        fixture *x = &FX[f];
        const size_t counts[3] = {1, 7, x->p.poly_size <= 2048 && !SMALL ? 129 : 7};
        for (size_t c = 0; c < 3; c++)
            for (int k = 0; k < N_KINDS; k++)
                if (x->kind[k]) ks_pbs_extract_case(x, x->kind[k], counts[c]);
        ks_pbs_extract_case(x, x->gpu, counts[2]);
    }
    veil_backend_keys *small;
    CU_ASSERT_FATAL(veil_backend_keys_new(GPU, FX[0].ek, 16, &small) == VEIL_OK);
    CU_ASSERT_EQUAL(small->limits.max_pbs, 16);
    ks_pbs_extract_case(&FX[0], small, 37);
    veil_backend_keys_free(small);
    CU_ASSERT(veil_backend_healthy(GPU));
}

/* Multi-bit PBS (veil_cuda_pbs_multibit) at one set per grouping factor,
 * l = 1 and l = 2: the backend's ks_pbs against the CPU's (decryptions
 * equal it and the table, phases within the bound), batches of 1, 7 and
 * 129, auto, cufft and (sm_90) the cluster kernel, and threshold reads
 * (batch 7) on cufft and cluster; the fused and split kernels refuse the
 * set. With
 * VEIL_TEST_GPU_SMALL, n = 24 (divisible by 2, 3 and 4). */
static void test_multibit_ks_pbs(void) {
    static const char *const ids[3] = {"tfhers-mb2-1_1-tuniform-2m128",
                                       "tfhers-mb3-2_2-tuniform-2m128",
                                       "tfhers-mb4-2_2-tuniform-2m128"};
    const size_t counts[] = {1, 7, 129};
    size_t ran = 0;
    for (int i = 0; i < 3; i++) {
        const veil_params *mp = veil_params_multibit_find(ids[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
        veil_params p = *mp;
        if (SMALL) p.lwe_dim = 24;
        fixture *x = calloc(1, sizeof *x);
        CU_ASSERT_PTR_NOT_NULL_FATAL(x);
        CU_ASSERT_FATAL(fixture_make(x, ids[i], &p));
        CU_ASSERT_PTR_NULL(x->kind[0]); /* fused */
        CU_ASSERT_PTR_NULL(x->kind[3]); /* split */
        /* the cluster kernel: key bundles first, then n/g steps on chip */
        CU_ASSERT(CC_MAJOR < 9 || x->kind[1] != NULL);
        for (size_t c = 0; c < (SMALL ? 2u : 3u); c++) {
            ks_pbs_case(x, x->kind[2], counts[c]);
            if (x->kind[1]) ks_pbs_case(x, x->kind[1], counts[c]);
            ks_pbs_case(x, x->gpu, counts[c]);
        }
        ks_pbs_extract_case(x, x->kind[2], 7);
        if (x->kind[1]) ks_pbs_extract_case(x, x->kind[1], 7);
        fixture_free(x);
        free(x);
        ran++;
    }
    CU_ASSERT_EQUAL(ran, 3);
    CU_ASSERT(veil_backend_healthy(GPU));
}

/* A two-partition key set (veil/tfhe.h "Key sets"; tiny's split of
 * test_keyset): partition 0 nn-p6-norm2e2-2m40 (k = 1, N = 8192: D = 8192),
 * partition 1 nn-p3-norm2e7-2m40 (k = 2, N = 1024). For each partition and
 * each blind rotation that runs here, and AUTO: the cuda backend's ks_pbs on
 * ciphertexts of D + 1 words decodes like the cpu backend's and the table,
 * phases within the bound, words kN..D-1 exactly zero in both, and nothing
 * written past the last output (tests/backend_host.h's sentinel). */
/* One thread's share of concurrent_partitions: `rounds` KS-PBS of its own
 * partition on its own keys, every decryption checked against the table. */
typedef struct {
    veil_backend_keys *keys;
    const veil_secret_key *sk;
    uint32_t partition;
    const uint64_t *in;
    const int64_t *m;
    const veil_lut *lut;
    const int64_t *table;
    size_t count, lwe;
    unsigned bits, rounds;
    size_t wrong, failed;
    char msg[256];
} cp_share;

static void *cp_run(void *arg) {
    cp_share *s = arg;
    uint64_t *got = malloc(s->count * s->lwe * 8);
    if (!got) {
        s->failed = s->rounds;
        return NULL;
    }
    const veil_lut *const luts[1] = {s->lut};
    for (unsigned r = 0; r < s->rounds; r++) {
        if (bh_ks_pbs(s->keys, s->partition, s->in, s->count, luts, 1, NULL, got) != VEIL_OK) {
            if (!s->failed++) snprintf(s->msg, sizeof s->msg, "%s", veil_error_message());
            continue;
        }
        for (size_t i = 0; i < s->count; i++)
            s->wrong += veil_decode(veil_phase_big(s->sk, got + i * s->lwe), s->bits, 0) !=
                        s->table[s->m[i]];
    }
    free(got);
    return NULL;
}

/* Two host threads on one device, each KS-PBS of its own partition (its own
 * parameter set, so its own shared-memory size for the same kernel instance
 * where the shapes are not compiled in) through its own keys, as two plans
 * on one GPU or two Triton instances run them: every kernel kind that runs
 * both sets, interleaved launches, every decryption right and no launch
 * refused (the kernels set the shared-memory attribute and launch under one
 * lock, kernels/src/common.cuh veil_cuda_launch_lock). */
static void concurrent_partitions(const veil_params *const parts[2], const veil_secret_key *sk,
                                  const veil_eval_key *ek, veil_encryptor *enc,
                                  veil_backend_keys *const gpu[N_KINDS + 1]) {
    const unsigned bits = 3, rounds = 12;
    const int64_t table[8] = {3, 6, 1, 0, 7, 2, 5, 4};
    const size_t count = 9, lwe = (size_t)veil_params_big_dim(parts[0]) + 1;
    uint64_t *in[2];
    int64_t m[2][9];
    veil_lut *lut[2];
    for (uint32_t x = 0; x < 2; x++) {
        in[x] = malloc(count * lwe * 8);
        CU_ASSERT_FATAL(in[x] != NULL);
        CU_ASSERT_FATAL(veil_lut_new(parts[x], table, bits, 0, veil_delta(bits), &lut[x]) ==
                        VEIL_OK);
        for (size_t i = 0; i < count; i++) {
            m[x][i] = (int64_t)(veil_test_rand() % 8);
            veil_encrypt_big(enc, sk, veil_encode(m[x][i], bits), in[x] + i * lwe);
        }
    }
    size_t runs = 0;
    for (int k = 0; k <= N_KINDS; k++) {
        if (!gpu[k]) continue;
        veil_backend_keys *second = NULL;
        if (veil_backend_keys_new(k < N_KINDS ? GPU_KIND[k] : GPU, ek, 64, &second) != VEIL_OK) {
            printf("\n  concurrent, %s: second keys: %s", gpu[k]->detail, veil_error_message());
            CU_FAIL("second keys on the same device");
            continue;
        }
        cp_share sh[2];
        for (uint32_t x = 0; x < 2; x++)
            sh[x] = (cp_share){.keys = x ? second : gpu[k],
                               .sk = sk,
                               .partition = x,
                               .in = in[x],
                               .m = m[x],
                               .lut = lut[x],
                               .table = table,
                               .count = count,
                               .lwe = lwe,
                               .bits = bits,
                               .rounds = rounds};
        pthread_t tid;
        const int started = pthread_create(&tid, NULL, cp_run, &sh[1]) == 0;
        CU_ASSERT(started);
        cp_run(&sh[0]);
        if (started) pthread_join(tid, NULL);
        for (uint32_t x = 0; x < 2; x++) {
            printf("\n  concurrent, partition %u (%s) on %s: %u rounds of %zu, %zu failed%s%s, "
                   "%zu wrong",
                   x, parts[x]->id, gpu[k]->detail, rounds, count, sh[x].failed,
                   sh[x].failed ? ": " : "", sh[x].msg, sh[x].wrong);
            CU_ASSERT_EQUAL(sh[x].failed, 0);
            CU_ASSERT_EQUAL(sh[x].wrong, 0);
        }
        veil_backend_keys_free(second);
        runs += started;
    }
    CU_ASSERT(runs >= 2); /* auto and cuFFT */
    for (uint32_t x = 0; x < 2; x++) {
        veil_lut_free(lut[x]);
        free(in[x]);
    }
}

static void test_two_partitions(void) {
    const veil_params *parts[2] = {veil_params_find("nn-p6-norm2e2-2m40"),
                                   veil_params_find("nn-p3-norm2e7-2m40")};
    CU_ASSERT_PTR_NOT_NULL_FATAL(parts[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(parts[1]);
    uint8_t s[4][32];
    for (unsigned i = 0; i < 4; i++)
        veil_test_seed_bytes(70 + i, s[i]);
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_backend_keys *cpu, *gpu[N_KINDS + 1] = {0}; /* the kinds, then auto */
    CU_ASSERT_FATAL(veil_secret_key_new_set(parts, 2, s[0], &sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new(sk, s[1], s[2], &ek) == VEIL_OK);
    CU_ASSERT_FATAL(veil_encryptor_new(s[3], NULL, &enc) == VEIL_OK);
    CU_ASSERT_FATAL(veil_backend_keys_new(CPU, ek, 1024, &cpu) == VEIL_OK);
    const veil_status st_auto = veil_backend_keys_new(GPU, ek, 4096, &gpu[N_KINDS]);
    if (st_auto) printf("\n  auto: %s", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st_auto, VEIL_OK);
    for (int k = 0; k < N_KINDS; k++) {
        if (veil_backend_keys_new(GPU_KIND[k], ek, 4096, &gpu[k]) != VEIL_OK)
            printf("\n  %s: does not run here: %s", KINDS[k], veil_error_message());
    }
    CU_ASSERT_PTR_NOT_NULL(gpu[2]); /* cuFFT runs every set */
    const uint32_t D = veil_params_big_dim(parts[0]);
    const size_t lwe = (size_t)D + 1, count = 37;
    const unsigned bits = 3;
    const int64_t table[8] = {5, 1, 7, 0, 3, 6, 2, 4};
    uint64_t *in = malloc(count * lwe * 8), *ref = malloc(count * lwe * 8),
             *got = malloc(count * lwe * 8);
    int64_t *m = malloc(count * 8);
    CU_ASSERT_FATAL(in && ref && got && m);
    size_t cases = 0;
    for (uint32_t x = 0; x < 2; x++) {
        const uint32_t kN = veil_params_big_dim(parts[x]);
        veil_lut *lut;
        CU_ASSERT_FATAL(veil_lut_new(parts[x], table, bits, 0, veil_delta(bits), &lut) == VEIL_OK);
        const veil_lut *const luts[1] = {lut};
        for (size_t i = 0; i < count; i++) {
            m[i] = (int64_t)(veil_test_rand() % 8);
            veil_encrypt_big(enc, sk, veil_encode(m[i], bits), in + i * lwe);
        }
        CU_ASSERT_EQUAL_FATAL(bh_ks_pbs(cpu, x, in, count, luts, 1, NULL, ref), VEIL_OK);
        for (int k = 0; k <= N_KINDS; k++) {
            if (!gpu[k]) continue;
            CU_ASSERT_EQUAL(bh_ks_pbs(gpu[k], x, in, count, luts, 1, NULL, got), VEIL_OK);
            size_t wrong = 0, differ = 0, nonzero = 0;
            uint64_t max_diff = 0;
            for (size_t i = 0; i < count; i++) {
                const uint64_t pg = veil_phase_big(sk, got + i * lwe),
                               pc = veil_phase_big(sk, ref + i * lwe);
                const int64_t dg = veil_decode(pg, bits, 0), dc = veil_decode(pc, bits, 0);
                wrong += dg != table[m[i]];
                differ += dg != dc;
                for (uint32_t w = kN; w < D; w++)
                    nonzero += got[i * lwe + w] != 0 || ref[i * lwe + w] != 0;
                const uint64_t ad = veil_test_phase_dist(pg, pc);
                if (ad > max_diff) max_diff = ad;
            }
            const uint64_t bound = veil_delta(bits) >> PHASE_BOUND_SHIFT;
            printf("\n  partition %u (%s, kN %u of D %u) batch %zu (%s): wrong %zu, differ %zu, "
                   "%zu nonzero past kN, max phase diff 2^%.1f (bound 2^%.1f)",
                   x, parts[x]->id, kN, D, count, gpu[k]->detail, wrong, differ, nonzero,
                   max_diff ? log2((double)max_diff) : -INFINITY, log2((double)bound));
            CU_ASSERT_EQUAL(wrong, 0);
            CU_ASSERT_EQUAL(differ, 0);
            CU_ASSERT_EQUAL(nonzero, 0);
            CU_ASSERT(max_diff <= bound);
            cases++;
        }
        veil_lut_free(lut);
    }
    CU_ASSERT(cases >= 4); /* auto and cuFFT, both partitions */
    free(in), free(ref), free(got), free(m);
    concurrent_partitions(parts, sk, ek, enc, gpu);
    for (int k = 0; k <= N_KINDS; k++)
        veil_backend_keys_free(gpu[k]);
    veil_backend_keys_free(cpu);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    CU_ASSERT(veil_backend_healthy(GPU));
}

/* A program of several partitions end to end: tiny as the compiler gives it
 * at 3 rounding bits (two partitions, as test_keyset), golden samples encrypted through a
 * plan on the cuda backend and on the cpu backend: both decrypt to
 * simulate's integers, value for value. */
static void test_program_partitions(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_program *p = NULL;
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT(p->n_partitions >= 2);
    const size_t n = m->golden.count < 8 ? m->golden.count : 8;
    CU_ASSERT_FATAL(n > 0);
    const veil_backend_kind kinds[2] = {VEIL_BACKEND_CUDA, VEIL_BACKEND_CPU};
    size_t runs = 0;
    for (int b = 0; b < 2; b++) {
        enc_result r;
        const veil_status st = run_encrypted_vs_simulate_on(kinds[b], m, p, n, 4, &r);
        if (st) printf("\n  %s", veil_error_message());
        CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
        printf("\n  tiny, %u partitions (%s first), %s backend: %zu / %zu values equal to "
               "simulate, %.3f s per sample",
               p->n_partitions, p->partitions[0].params->id, b ? "cpu" : "cuda", r.equal, r.values,
               r.seconds_per_sample);
        CU_ASSERT_EQUAL(r.values, n * veil_program_output_size(p, 0));
        CU_ASSERT_EQUAL(r.equal, r.values);
        runs++;
    }
    CU_ASSERT_EQUAL(runs, 2);
    veil_program_free(p);
    veil_model_free(m);
}

/* Plan groups on the GPU (issue 12 item 3): two plans on ONE device
 * (--devices 0,0: each its own key copy and stream) against one plan, every
 * batch 1..5 of tiny's golden samples: every decryption equals simulate and
 * nothing is written past a batch; with two or more GPUs, "all" likewise.
 * Ciphertexts equal to one plan's word for word are counted and printed, not
 * required: a share's KS-PBS runs in smaller cuFFT batches. */
static void test_plan_group(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    const size_t n = 5;
    CU_ASSERT_FATAL(m->golden.count >= n);
    const char *lists[2] = {"0,0", "all"};
    const unsigned gpus = veil_backend_device_count(VEIL_BACKEND_CUDA);
    size_t runs = 0;
    for (int l = 0; l < (gpus >= 2 ? 2 : 1); l++, runs++) {
        veil_backend_options one, grp;
        veil_backend_options_default(&one);
        grp = one;
        CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&grp, lists[l]), VEIL_OK);
        pg_result r;
        const veil_status st = pg_group_vs_one(VEIL_BACKEND_CUDA, &one, &grp, p,
                                               (const int64_t *const *)m->golden.inputs, n, &r);
        if (st) printf("\n  --devices %s: %s", lists[l], veil_error_message());
        CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
        printf(
            "\n  tiny on cuda, --devices %s (%zu plans): batches 1..%zu, %zu/%zu values equal to "
            "simulate, %zu/%zu batches identical to one plan's ciphertexts",
            lists[l], r.plans, n, r.equal, r.values, r.identical, r.cases);
        CU_ASSERT_EQUAL(r.cases, n);
        CU_ASSERT_EQUAL(r.sentinels_ok, n);
        CU_ASSERT(r.values > 0 && r.equal == r.values);
        CU_ASSERT(r.ref_values > 0 && r.ref_equal == r.ref_values);
    }
    if (gpus < 2) printf("\n  --devices all: not run, %u GPU", gpus);
    CU_ASSERT(runs >= 1);
    veil_program_free(p);
    veil_model_free(m);
}

static void linear_case(fixture *x, size_t batch, size_t in_f, size_t out_f) {
    const size_t lwe = x->lwe, n_out = batch * out_f * lwe;
    uint64_t *in = malloc(batch * in_f * lwe * 8), *ref = malloc(n_out * 8),
             *got = malloc(n_out * 8), bias[64];
    int64_t *w = malloc(in_f * out_f * 8);
    CU_ASSERT_FATAL(in && ref && got && w && out_f <= 64);
    rand_words(in, batch * in_f * lwe);
    for (size_t i = 0; i < in_f * out_f; i++)
        w[i] = (int64_t)veil_test_rand(); /* full range: exercises the wrap mod 2^64 */
    rand_words(bias, out_f);
    veil_backend_keys *gk = x->gpu;
    CU_ASSERT_EQUAL_FATAL(bh_linear(x->cpu, in, batch, in_f, w, bias, out_f, ref), VEIL_OK);
    CU_ASSERT_EQUAL(bh_linear(gk, in, batch, in_f, w, bias, out_f, got), VEIL_OK);
    CU_ASSERT(memcmp(got, ref, n_out * 8) == 0);
    /* without bias */
    CU_ASSERT_EQUAL_FATAL(bh_linear(x->cpu, in, batch, in_f, w, NULL, out_f, ref), VEIL_OK);
    CU_ASSERT_EQUAL(bh_linear(gk, in, batch, in_f, w, NULL, out_f, got), VEIL_OK);
    CU_ASSERT(memcmp(got, ref, n_out * 8) == 0);
    free(in);
    free(ref);
    free(got);
    free(w);
}

/* The WoP-PBS kernels on the device (veil_cuda_wop, the kernel ABI) on
 * wop_kernel_case.h's case, as test_kernels_emu checks their host
 * emulation; the keys as the backend uploads them. In the small run too (n
 * = 32, 9 bits), so that compute-sanitizer checks every WoP kernel. */
typedef struct dev_exec {
    wop_exec x;
    uint64_t *d_ksk, *d_bsk, *d_pfpks, *d_in, *d_out;
    double *d_bsk_f;
    int64_t *d_tables;
    size_t in_words, table_words;
    veil_cuda_wop_keys keys;
    veil_cuda_wop_buffer *buf;
    uint32_t buf_count;
} dev_exec;

static int dev_keys(wop_exec *x, const veil_pbs_key *pk, const veil_cuda_wop_params *cwp) {
    dev_exec *e = (dev_exec *)x;
    const veil_params *p = pk->params;
    const size_t kw = veil_eval_key_ksk_words(p, cwp->pbs.ks_rows), bw = veil_eval_key_bsk_words(p),
                 pw = veil_eval_key_pfpks_words(p);
    uint64_t *wide = malloc(kw * 8);
    if (!wide) return 1;
    veil_keyswitch_key_wide(pk, 0, kw, wide);
    e->d_ksk = dev_alloc(kw * 8);
    e->d_bsk = dev_alloc(bw * 8);
    e->d_pfpks = dev_alloc(pw * 8);
    e->d_bsk_f = dev_alloc(veil_cuda_bsk_fourier_bytes(&cwp->pbs));
    int r = (int)cudaMemcpy(e->d_ksk, wide, kw * 8, cudaMemcpyHostToDevice);
    free(wide);
    if (!r) r = (int)cudaMemcpy(e->d_bsk, pk->bsk, bw * 8, cudaMemcpyHostToDevice);
    if (!r) r = (int)cudaMemcpy(e->d_pfpks, pk->pfpks, pw * 8, cudaMemcpyHostToDevice);
    if (!r) r = veil_cuda_bsk_to_fourier(NULL, 0, &cwp->pbs, e->d_bsk_f, e->d_bsk);
    e->keys = (veil_cuda_wop_keys){e->d_ksk, e->d_bsk_f, e->d_pfpks};
    return r;
}

static int dev_run(wop_exec *x, const veil_cuda_wop_params *cwp, const veil_cuda_wop_tables *t,
                   size_t table_words, const uint64_t *in, uint32_t count, size_t big1,
                   uint64_t *out) {
    dev_exec *e = (dev_exec *)x;
    const size_t words = count * big1;
    if (!e->buf) {
        int r = veil_cuda_scratch_wop(NULL, 0, cwp, count, &e->buf, NULL, 1);
        if (r) return r;
        e->buf_count = count;
    }
    if (count > e->buf_count) return VEIL_CUDA_ERR_ARG;
    if (words > e->in_words) {
        cudaFree(e->d_in), cudaFree(e->d_out);
        e->d_in = dev_alloc(words * 8);
        e->d_out = dev_alloc(words * 8);
        e->in_words = words;
    }
    if (table_words > e->table_words) {
        cudaFree(e->d_tables);
        e->d_tables = dev_alloc(table_words * sizeof *e->d_tables);
        e->table_words = table_words;
    }
    int r = (int)cudaMemcpy(e->d_tables, t->tables, table_words * sizeof *e->d_tables,
                            cudaMemcpyHostToDevice);
    if (!r) r = (int)cudaMemcpy(e->d_in, in, words * 8, cudaMemcpyHostToDevice);
    veil_cuda_wop_tables dt = *t;
    dt.tables = e->d_tables;
    if (!r) r = veil_cuda_wop(NULL, 0, e->buf, e->d_out, e->d_in, &dt, &e->keys, count);
    if (!r) r = (int)cudaMemcpy(out, e->d_out, words * 8, cudaMemcpyDeviceToHost);
    return r;
}

static void dev_release(wop_exec *x) {
    dev_exec *e = (dev_exec *)x;
    veil_cuda_cleanup_wop(NULL, 0, &e->buf);
    cudaFree(e->d_ksk), cudaFree(e->d_bsk), cudaFree(e->d_pfpks), cudaFree(e->d_bsk_f);
    cudaFree(e->d_in), cudaFree(e->d_out), cudaFree(e->d_tables);
    memset((char *)e + sizeof e->x, 0, sizeof *e - sizeof e->x);
}

static void test_wop_kernel(void) {
    dev_exec e;
    memset(&e, 0, sizeof e);
    e.x = (wop_exec){"device", dev_keys, dev_run, dev_release};
    wop_kernel_case(&e.x, SMALL, VEIL_CUDA_PBS_AUTO, 160);
}

/* The WoP-PBS on the device (wop.cu through the backend's wop_pbs): a model
 * of two 12-bit lookups with random 4-bit tables, compiled with --wop
 * always (set wop-w12, N = 1024: a packing tree of 4 leaves, two levels of
 * pairs), 150 samples in one batch (300 lookups: pieces of at most 256),
 * inputs over the whole range, the top among them, run twice on one plan:
 * its WoP tables made once at plan time (on the device: cuda_tables_new) and
 * read by every lookup of both runs (wop_plan_common.h), every decryption
 * equal to simulate, which equals the table (test_wop_program). */
static void test_wop_program(void) {
    const unsigned w = 12;
    veil_model *m = make_wide_random(w, 4, 1, 1);
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.wop = VEIL_WOP_ALWAYS;
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    size_t wop = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        wop += p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].wop;
    CU_ASSERT_EQUAL_FATAL(wop, 1);
    enum { N_SAMPLES = 150, RUNS = 2 };
    int64_t *x = malloc(2 * N_SAMPLES * sizeof *x), *sim = malloc(2 * N_SAMPLES * sizeof *sim);
    CU_ASSERT_FATAL(x && sim);
    for (size_t i = 0; i < 2 * N_SAMPLES; i++)
        x[i] = (int64_t)(veil_test_rand() % (1u << w));
    x[0] = ((int64_t)1 << w) - 1;
    size_t equal = 0;
    double seconds = 0;
    CU_ASSERT_FATAL(wop_plan_run(VEIL_BACKEND_CUDA, p, x, N_SAMPLES, RUNS, sim, &equal, &seconds));
    size_t table = 0;
    for (size_t i = 0; i < 2 * N_SAMPLES; i++)
        table += sim[i] == m->layers[1].table[(i % 2) * ((size_t)1 << w) + (size_t)x[i]];
    printf("\n  WoP-PBS, %u bits, cuda: %zu / %u values equal to simulate (%u runs), %.4f s per "
           "sample",
           w, equal, RUNS * 2 * N_SAMPLES, RUNS, seconds / N_SAMPLES);
    CU_ASSERT_EQUAL(equal, (size_t)RUNS * 2 * N_SAMPLES);
    CU_ASSERT_EQUAL(table, 2 * N_SAMPLES);
    free(x);
    free(sim);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_linear_exact(void) {
    fixture *x = &FX[0];
    linear_case(x, 1, 1, 1);
    linear_case(x, 3, 37, 5);
    if (SMALL) return;
    linear_case(x, 40, 70, 33); /* several tiles of the product */
    linear_case(x, 2, 300, 3);
    linear_case(&FX[1], 9, 11, 3);
}

static void conv_case(fixture *x, size_t batch, veil_conv_geom s) {
    CU_ASSERT_FATAL(veil_conv_geom_finish(&s));
    const uint32_t ho = s.h_out, wo = s.w_out;
    const size_t lwe = x->lwe, n_in = batch * s.c_in * s.h_in * s.w_in,
                 n_out = batch * s.c_out * (size_t)ho * wo * lwe,
                 nw = (size_t)s.c_out * s.c_in * s.kh * s.kw;
    uint64_t *in = malloc(n_in * lwe * 8), *ref = malloc(n_out * 8), *got = malloc(n_out * 8),
             *bias = malloc(s.c_out * 8);
    int64_t *w = malloc(nw * 8);
    CU_ASSERT_FATAL(in && ref && got && w && bias);
    rand_words(in, n_in * lwe);
    for (size_t i = 0; i < nw; i++)
        w[i] = (int64_t)veil_test_rand();
    rand_words(bias, s.c_out);
    veil_backend_keys *gk = x->gpu;
    CU_ASSERT_EQUAL_FATAL(bh_conv2d(x->cpu, in, batch, &s, w, bias, ref), VEIL_OK);
    CU_ASSERT_EQUAL(bh_conv2d(gk, in, batch, &s, w, bias, got), VEIL_OK);
    CU_ASSERT(memcmp(got, ref, n_out * 8) == 0);
    free(in);
    free(ref);
    free(got);
    free(w);
    free(bias);
}

static void test_conv2d_exact(void) {
    fixture *x = &FX[0];
    conv_case(x, 1,
              (veil_conv_geom){.c_in = 1,
                               .h_in = 5,
                               .w_in = 5,
                               .c_out = 2,
                               .kh = 3,
                               .kw = 3,
                               .stride_h = 1,
                               .stride_w = 1});
    conv_case(x, 3,
              (veil_conv_geom){.c_in = 3,
                               .h_in = 7,
                               .w_in = 6,
                               .c_out = 4,
                               .kh = 3,
                               .kw = 2,
                               .stride_h = 2,
                               .stride_w = 1,
                               .pad_h = 1,
                               .pad_w = 1});
    conv_case(x, 4,
              (veil_conv_geom){.c_in = 2,
                               .h_in = 6,
                               .w_in = 6,
                               .c_out = 5,
                               .kh = 3,
                               .kw = 3,
                               .stride_h = 1,
                               .stride_w = 2,
                               .pad_h = 2,
                               .pad_w = 1});
}

/* Every leveled op in random programs on device buffers against the cpu,
 * bit for bit (backend_random_ops.h), on two sets (different D + 1), and a
 * large add and scale (more blocks than the kernels' grid: grid-stride). */
static void test_random_programs(void) {
    ro_run(FX[0].cpu, FX[0].gpu, SMALL ? 2 : 10, SMALL ? 10 : 40, 64);
    if (n_fx > 1) ro_run(FX[1].cpu, FX[1].gpu, SMALL ? 1 : 4, 30, 48);
    if (SMALL) return;
    veil_backend_keys *k[2] = {FX[0].cpu, FX[0].gpu};
    const size_t cnt = 40000, words = cnt * FX[0].lwe; /* 2^26+ words: > 2^16 blocks of 256 */
    uint64_t *a = malloc(words * 8), *b = malloc(words * 8),
             *got[2] = {malloc(words * 8), malloc(words * 8)};
    CU_ASSERT_FATAL(a && b && got[0] && got[1]);
    rand_words(a, words);
    rand_words(b, words);
    for (int side = 0; side < 2; side++) {
        veil_backend_buffer *ba, *bb;
        CU_ASSERT_FATAL(veil_backend_buffer_new(k[side], cnt, &ba) == VEIL_OK);
        CU_ASSERT_FATAL(veil_backend_buffer_new(k[side], cnt, &bb) == VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_buffer_upload(ba, a, cnt), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_buffer_upload(bb, b, cnt), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_add(ba, ba, bb, cnt, 3), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_scale(ba, ba, cnt, 5, 7), VEIL_OK);
        CU_ASSERT_EQUAL(veil_backend_buffer_download(ba, cnt, got[side]), VEIL_OK);
        veil_backend_buffer_free(ba);
        veil_backend_buffer_free(bb);
    }
    CU_ASSERT(memcmp(got[0], got[1], words * 8) == 0);
    free(a), free(b), free(got[0]), free(got[1]);
}

/* Too little device memory (options.memory_mb 0) is a recoverable
 * VEIL_ERR_DEVICE: that backend stays healthy and the device's next keys
 * work. */
static void test_out_of_memory_recoverable(void) {
    veil_backend_keys *k = NULL;
    veil_backend_options bo;
    veil_backend_options_default(&bo);
    bo.memory_mb = 0;
    veil_backend *capped = NULL;
    CU_ASSERT_FATAL(veil_backend_new_opts(VEIL_BACKEND_CUDA, &bo, &capped) == VEIL_OK);
    veil_status s = veil_backend_keys_new(capped, FX[0].ek, 1024, &k);
    printf("\n  0 MiB: %s: %s", veil_status_str(s), veil_error_message());
    CU_ASSERT_EQUAL(s, VEIL_ERR_DEVICE);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT(veil_backend_healthy(capped));
    veil_backend_free(capped);
    CU_ASSERT(veil_backend_healthy(GPU));
    CU_ASSERT_EQUAL(veil_backend_keys_new(GPU, FX[0].ek, 8, &k), VEIL_OK);
    ks_pbs_case(&FX[0], k, 3);
    veil_backend_keys_free(k);
}

/* Last: a kernel fault (illegal address) kills the backend, which then
 * refuses work with VEIL_ERR_DEVICE instead of crashing. */
static void test_sticky_error_kills_backend(void) {
    veil_status s = veil_backend_cuda_fault_for_test(FX[0].gpu);
    printf("\n  fault: %s: %s", veil_status_str(s), veil_error_message());
    CU_ASSERT_EQUAL(s, VEIL_ERR_DEVICE);
    CU_ASSERT_FALSE(veil_backend_healthy(GPU));
    uint64_t *in = calloc(FX[0].lwe, 8), *out = calloc(FX[0].lwe, 8);
    int64_t w = 1;
    CU_ASSERT_FATAL(in && out);
    CU_ASSERT_EQUAL(bh_linear(FX[0].gpu, in, 1, 1, &w, NULL, 1, out), VEIL_ERR_DEVICE);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "dead"));
    free(in);
    free(out);
}

/* The free functions give the calling thread its current device back
 * (backend_cuda.c device_enter / device_leave): a buffer, tables, weights
 * and keys of a backend on device 1, each freed while device 0 is current.
 * With one device the caller's device is the keys' own: nothing to tell
 * apart, not checked. */
#define FREED_ON_DEVICE_0(call)                                                                    \
    do {                                                                                           \
        int dev_ = -1;                                                                             \
        CU_ASSERT_EQUAL(cudaSetDevice(0), cudaSuccess);                                            \
        call;                                                                                      \
        CU_ASSERT_EQUAL(cudaGetDevice(&dev_), cudaSuccess);                                        \
        CU_ASSERT_EQUAL(dev_, 0);                                                                  \
    } while (0)

static void test_free_keeps_device(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 2) {
        printf("\n  %d device(s): needs two, not checked", n);
        return;
    }
    const fixture *x = &FX[0];
    const unsigned p = x->p.precision;
    int64_t tab[256] = {0};
    const int64_t wt = 1;
    veil_backend_options o;
    veil_backend_options_default(&o);
    o.device = 1;
    veil_backend *be = NULL;
    veil_backend_keys *k = NULL;
    veil_backend_buffer *b = NULL;
    veil_backend_tables *t = NULL;
    veil_backend_weights *w = NULL;
    veil_lut *lut = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_backend_new_opts(VEIL_BACKEND_CUDA, &o, &be), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backend_keys_new(be, x->ek, 4, &k), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_lut_new(&x->p, tab, p, 0, veil_delta(p), &lut), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backend_buffer_new(k, 1, &b), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(
        veil_backend_tables_new(k, 0, (const veil_lut *const *)&lut, 1, NULL, 0, &t), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backend_weights_new_dense(k, &wt, 1, 1, NULL, &w), VEIL_OK);
    FREED_ON_DEVICE_0(veil_backend_buffer_free(b));
    FREED_ON_DEVICE_0(veil_backend_tables_free(t));
    FREED_ON_DEVICE_0(veil_backend_weights_free(w));
    FREED_ON_DEVICE_0(veil_backend_keys_free(k));
    printf("\n  buffer, tables, weights and keys of device 1 freed: device 0 still current");
    veil_lut_free(lut);
    veil_backend_free(be);
}

int main(void) {
    char why[256];
    if (!veil_backend_cuda_available(why, sizeof why)) {
        printf("SKIPPED: %s\n", why);
        return VEIL_TEST_SKIP;
    }
    const char *small = getenv("VEIL_TEST_GPU_SMALL");
    SMALL = small && *small && *small != '0';
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("gpu_ops", suite_init, suite_clean);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_keyswitch_exact);
    VEIL_ADD_TEST(s, test_modulus_switch_exact);
    VEIL_ADD_TEST(s, test_bsk_fourier);
    VEIL_ADD_TEST(s, test_ks_pbs);
    VEIL_ADD_TEST(s, test_ks_pbs_extract);
    VEIL_ADD_TEST(s, test_multibit_ks_pbs);
    if (SMALL)
        printf("SKIPPED [VEIL_TEST_GPU_SMALL]: test_two_partitions, test_program_partitions, "
               "test_plan_group (real n: CPU keygen and PBS of two sets, too slow under "
               "compute-sanitizer), test_wop_program (300 WoP lookups with real keys, "
               "thousands of real-n PBS), test_sticky_error_kills_backend (memcheck would, "
               "rightly, report its deliberate fault)\n");
    if (!SMALL) /* real n: CPU keygen and PBS of two sets */
        VEIL_ADD_TEST(s, test_two_partitions);
    if (!SMALL) VEIL_ADD_TEST(s, test_program_partitions);
    if (!SMALL) VEIL_ADD_TEST(s, test_plan_group);
    VEIL_ADD_TEST(s, test_wop_kernel);
    if (!SMALL) VEIL_ADD_TEST(s, test_wop_program);
    VEIL_ADD_TEST(s, test_linear_exact);
    VEIL_ADD_TEST(s, test_conv2d_exact);
    VEIL_ADD_TEST(s, test_random_programs);
    VEIL_ADD_TEST(s, test_out_of_memory_recoverable);
    VEIL_ADD_TEST(s, test_free_keeps_device);
    if (!SMALL) /* memcheck would (rightly) report the deliberate fault */
        VEIL_ADD_TEST(s, test_sticky_error_kills_backend);
    return veil_test_run();
}

#else

int main(void) {
    printf("SKIPPED: veil was built without CUDA (configure with -DVEIL_CUDA=ON)\n");
    return VEIL_TEST_SKIP;
}

#endif
