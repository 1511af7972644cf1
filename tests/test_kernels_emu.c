// LABELS: unit crypto
// COST: 225
// LINKS: veil_kernels veil_host
/* The fused, cluster and split CUDA blind rotations, run on the host by their
 * own phase code (veil_cuda_pbs_fused_emulate: the functions the kernels call,
 * one emulated thread, and block of a cluster, after another), against the
 * CPU PBS on the same keys: decryptions equal the table and the CPU's, and
 * the phases agree within the FFT error bound. Needs nvcc to build, no GPU
 * to run.
 *
 * What runs the kernels' own code here: every phase function of the fused
 * and cluster blind rotations; the modulus switch kernel's phases (mask,
 * tree reduction, body with its table's offset and the centred correction:
 * veil_cuda_modulus_switch_emulate, bit for bit against the CPU); the
 * per-ciphertext table choice (veil_lut_poly_of, shared by both kernels and
 * veil_cuda_pbs_batch_emulate), with three tables of different offsets and
 * with index NULL (test_batch_indexed, 40 PBS); on a
 * two-partition key set (test_two_partitions, 9 PBS), the keyswitch's digit
 * loader and epilogue with an input dimension D above the set's k*N
 * (veil_cuda_keyswitch_emulate, bit for bit against veil_keyswitch) and the
 * fused and cluster extractions into zero-extended D + 1 word slots (71
 * PBS in all).
 *
 * What the host cannot emulate, and where the GPU suite (test_gpu_ops.c,
 * label gpu; SKIPPED here without a device) covers it instead:
 *  - the cluster and split kernels' distributed shared memory (peers'
 *    buffers through cluster.map_shared_rank) and cluster barriers: the
 *    emulation gives every block the others' buffers in host memory;
 *    test_ks_pbs runs both kernels (options.pbs cluster, split) against the
 *    CPU;
 *  - warp-only barriers (veil_fused_stage_barrier: __syncwarp for the first
 *    FFT stages) and the __CUDA_ARCH__ branches: the emulation runs threads
 *    one after another, so a missing barrier is invisible here; test_ks_pbs
 *    on the device (fused, cluster, cufft);
 *  - the BSK converted on the device (veil_cuda_bsk_to_fourier, cuFFT): this
 *    test feeds the CPU's Fourier BSK, put in the kernels' interleaved
 *    natural order (veil_test_bsk_natural: the CPU keeps a split, permuted
 *    spectrum, veil/fft.h); test_bsk_fourier compares the device conversion
 *    with it;
 *  - the device modulus switch kernel itself: test_modulus_switch_exact.
 *  - the keyswitch's tiled product (veil_gemm_u64: shared-memory tiles, K
 *    split over blocks with atomicAdd): the emulation sums the same digits
 *    and key rows in one pass; test_keyswitch_exact (bit-exact) and
 *    test_two_partitions (D > k*N) run it on the device;
 * The multi-bit blind rotation (test_multibit_every_set): the kernels'
 * per-element code (pbs_multibit.cuh: exponents, group sums, twist, digits
 * with ties to even) with a host radix-2 transform for cuFFT, at every
 * published multi-bit set and one derived set of every other shape
 * (test_multibit_derived_shapes) against the CPU engine; the device run is
 * test_gpu_ops's test_multibit_ks_pbs.
 * The executor's elementwise kernels (elementwise.cu: add, scale) run on the
 * host by their own per-word code (veil_cuda_lwe_*_emulate) against the cpu
 * backend's add and scale on its buffers, word for word (test_elementwise);
 * the launches themselves run in test_gpu_ops's random programs.
 * The FFT-error check below goes through veil_cuda_fused_product_emulate,
 * which calls the kernel's FFT stages but does its own fold/twist and
 * multiply-accumulate (the kernel's are fused with the decomposition and
 * the GGSW layout): it measures the kernel's FFT, not its MAC; the MAC is
 * covered by the PBS checks above (phase within the bound of the CPU's). */
#include "fft_measure.h"
#include "testutil.h"
#include "veil/backend.h"
#include "veil/cuda.h"
#include "veil/noise.h"
#include "veil/tfhe.h"
#include "veil/wop.h"
#include "wop_kernel_case.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same bound as test_gpu_ops (see there): phases within delta / 2^5. */
#define PHASE_BOUND_SHIFT 5

/* Prints "label: N PBS, wrong W, max phase diff vs CPU 2^x (bound 2^y)" and
 * checks that no decryption was wrong and the phases stay within the bound
 * (delta / 2^PHASE_BOUND_SHIFT). */
static void check_phases(const char *label, size_t count, size_t wrong, uint64_t max_diff,
                         unsigned bits) {
    const uint64_t bound = veil_delta(bits) >> PHASE_BOUND_SHIFT;
    printf("\n  %s: %zu PBS, wrong %zu, max phase diff vs CPU 2^%.1f (bound 2^%.1f)", label, count,
           wrong, max_diff ? log2((double)max_diff) : -INFINITY, log2((double)bound));
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(max_diff <= bound);
}

static const char *kernel_name(uint32_t kernel) {
    return kernel == VEIL_CUDA_PBS_CLUSTER ? "cluster"
           : kernel == VEIL_CUDA_PBS_SPLIT ? "split"
                                           : "fused";
}

/* The split kernel's sample extraction into a wider ciphertext (in_dim D >
 * kN: a partition whose outputs feed a wider one, as in test_two_partitions
 * for the other kernels): the same kN mask words, zeros up to D, the body
 * at D, bit for bit the in_dim = kN output `narrow` of the same emulation. */
static void check_split_wide(const veil_cuda_params *cp, const double *bsk_nat, const uint32_t *ms,
                             const uint64_t *lut_poly, const uint64_t *narrow) {
    veil_cuda_params w = *cp;
    const uint32_t kN = cp->glwe_dim * cp->poly_size, D = kN + 3 * cp->poly_size / 2 + 5;
    w.in_dim = D;
    uint64_t *wide = malloc(((size_t)D + 1) * 8);
    CU_ASSERT_FATAL(wide != NULL);
    memset(wide, 0xa5, ((size_t)D + 1) * 8);
    CU_ASSERT_EQUAL_FATAL(veil_cuda_pbs_fused_emulate(&w, bsk_nat, ms, lut_poly, wide), 0);
    size_t differ = 0, nonzero = 0;
    for (uint32_t i = 0; i < kN; i++)
        differ += wide[i] != narrow[i];
    for (uint32_t i = kN; i < D; i++)
        nonzero += wide[i] != 0;
    differ += wide[D] != narrow[kN];
    printf("\n  split S=%u, D = kN + %u: %zu words differ from D = kN, %zu nonzero past kN",
           cp->split, D - kN, differ, nonzero);
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT_EQUAL(nonzero, 0);
    free(wide);
}

/* split: the split kernel's blocks a polynomial (0: as on an sm_90 device;
 * other kernels: 0). */
static void check_set_split(veil_params p, const char *name, size_t count, uint32_t kernel,
                            uint32_t split) {
    uint8_t s[4][32];
    for (unsigned i = 0; i < 4; i++)
        veil_test_seed_bytes(40 + i, s[i]);
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_pbs_ctx *ctx;
    CU_ASSERT_FATAL(veil_secret_key_new(&p, s[0], &sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new(sk, s[1], s[2], &ek) == VEIL_OK);
    CU_ASSERT_FATAL(veil_encryptor_new(s[3], NULL, &enc) == VEIL_OK);
    CU_ASSERT_FATAL(veil_pbs_ctx_new(&p, &ctx) == VEIL_OK);
    const unsigned bits = p.precision, n_vals = 1u << bits;
    int64_t table[256];
    for (unsigned i = 0; i < n_vals; i++)
        table[i] = (int64_t)(n_vals / 2) - 1 - (int64_t)((3 * i + 1) % n_vals); /* signed out */
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(&p, table, bits, 1, veil_delta(bits), &lut) == VEIL_OK);
    veil_cuda_params cp = veil_cuda_params_from(&p, kernel);
    cp.split = split;
    const size_t big1 = veil_params_big_dim(&p) + 1, n1 = p.lwe_dim + 1;
    uint64_t *in = malloc(big1 * 8), *small = malloc(n1 * 8), *ref = malloc(big1 * 8),
             *got = malloc(big1 * 8), *shifted = malloc(n1 * 8);
    uint32_t *ms = malloc(n1 * 4);
    double *bsk_nat = veil_test_bsk_natural(&p, ek->parts[0].bsk_fourier);
    CU_ASSERT_FATAL(in && small && ref && got && shifted && ms && bsk_nat);
    uint64_t max_diff = 0;
    size_t wrong = 0;
    for (size_t c = 0; c < count; c++) {
        int64_t m = (int64_t)(veil_test_rand() % n_vals) - (int64_t)(n_vals / 2);
        veil_encrypt_big(enc, sk, veil_encode(m, bits), in);
        veil_keyswitch(veil_eval_key_part(ek, 0), in, small);
        veil_pbs(ctx, veil_eval_key_part(ek, 0), lut, small, ref);
        memcpy(shifted, small, n1 * 8);
        shifted[n1 - 1] += lut->in_offset;
        veil_modulus_switch(&p, shifted, ms);
        CU_ASSERT_EQUAL_FATAL(veil_cuda_pbs_fused_emulate(&cp, bsk_nat, ms, lut->poly, got), 0);
        if (c == 0 && kernel == VEIL_CUDA_PBS_SPLIT && p.poly_size <= 4096)
            check_split_wide(&cp, bsk_nat, ms, lut->poly, got);
        const uint64_t pg = veil_phase_big(sk, got), pc = veil_phase_big(sk, ref);
        const int64_t want = table[m + (int64_t)(n_vals / 2)];
        wrong += veil_decode(pg, bits, 1) != want || veil_decode(pc, bits, 1) != want;
        const uint64_t ad = veil_test_phase_dist(pg, pc);
        if (ad > max_diff) max_diff = ad;
    }
    char label[128];
    snprintf(label, sizeof label, "%s %s", kernel_name(kernel), name);
    check_phases(label, count, wrong, max_diff, bits);
    free(in);
    free(small);
    free(ref);
    free(got);
    free(shifted);
    free(ms);
    free(bsk_nat);
    veil_lut_free(lut);
    veil_pbs_ctx_free(ctx);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
}

static void check_set(veil_params p, const char *name, size_t count, uint32_t kernel) {
    check_set_split(p, name, count, kernel, 0);
}

static const uint32_t KERNELS[2] = {VEIL_CUDA_PBS_FUSED, VEIL_CUDA_PBS_CLUSTER};

/* The device's parameter check refuses a base of 2^64 (one level), whose
 * digit shift by 64 the host and the device would treat differently. */
static void test_params_base_log(void) {
    veil_cuda_params c =
        veil_cuda_params_from(veil_params_find("tfhers-2_2-tuniform-2m128"), VEIL_CUDA_PBS_AUTO);
    CU_ASSERT_EQUAL(veil_cuda_params_check(&c, NULL, 0), 0);
    c.pbs_base_log = 64;
    c.pbs_level = 1;
    CU_ASSERT_EQUAL(veil_cuda_params_check(&c, NULL, 0), VEIL_CUDA_ERR_UNSUPPORTED);
    c = veil_cuda_params_from(veil_params_find("tfhers-2_2-tuniform-2m128"), VEIL_CUDA_PBS_AUTO);
    c.ks_base_log = 64;
    c.ks_level = 1;
    CU_ASSERT_EQUAL(veil_cuda_params_check(&c, NULL, 0), VEIL_CUDA_ERR_UNSUPPORTED);
}

static void test_k4_n512(void) {
    for (int k = 0; k < 2; k++)
        check_set(*veil_params_find("tfhers-1_1-gaussian-2m64"), "1_1 k=4 N=512", 3, KERNELS[k]);
}

static void test_n2048_centered(void) {
    for (int k = 0; k < 2; k++)
        check_set(*veil_params_find("tfhers-2_2-tuniform-2m128"), "2_2 N=2048 centred", 2,
                  KERNELS[k]);
}

static void test_two_levels(void) {
    veil_params p = *veil_params_find("tfhers-2_2-gaussian-2m64");
    p.id = "test-2_2-pbs-2x15";
    p.pbs_level = 2;
    p.pbs_base_log = 15;
    for (int k = 0; k < 2; k++)
        check_set(p, "2_2 l=2", 2, KERNELS[k]);
}

/* N = 1024, odd log2(N/2): the radix-2 last stage (merged with the
 * accumulation in the cluster kernel). The 4-bit NN sets of 2-norm up to 2^9
 * (k = 2: a cluster of three, compile-time shape (2, 10, 1)), and k = 1 (runtime dims; a test
 * shape, not a published set). */
static void test_n1024(void) {
    const veil_params *nn = veil_params_find("nn-p4-norm2e0-2m40");
    CU_ASSERT_PTR_NOT_NULL_FATAL(nn);
    CU_ASSERT_EQUAL_FATAL(nn->poly_size, 1024);
    veil_params k1 = *veil_params_find("tfhers-2_2-gaussian-2m64");
    k1.id = "test-2_2-n1024";
    k1.poly_size = 1024;
    for (int k = 0; k < 2; k++) {
        check_set(*nn, "nn-p4 k=2 N=1024", 2, KERNELS[k]);
        check_set(k1, "2_2 k=1 N=1024", 2, KERNELS[k]);
    }
}

/* The split kernel (pbs_split.cuh): every polynomial over S = 2, 4 and 8
 * blocks at N = 2048 (k = 1: clusters of 4, 8 and 16), k = 2 at N = 1024
 * (clusters of 6 and 12), two levels, and the size it is for: N = 16384,
 * nn-p7-norm2e6-2m40 (l = 2: S = 4 as on an sm_90 device, the 7-bit
 * lookups of the digits MLP). Against the CPU engine as the other kernels. */
static void test_split(void) {
    const veil_params p22 = *veil_params_find("tfhers-2_2-gaussian-2m64");
    for (uint32_t S = 2; S <= 8; S *= 2) {
        char name[64];
        snprintf(name, sizeof name, "2_2 N=2048 S=%u", S);
        check_set_split(p22, name, 2, VEIL_CUDA_PBS_SPLIT, S);
    }
    const veil_params *nn = veil_params_find("nn-p4-norm2e0-2m40");
    CU_ASSERT_PTR_NOT_NULL_FATAL(nn);
    check_set_split(*nn, "nn-p4 k=2 N=1024 S=2", 2, VEIL_CUDA_PBS_SPLIT, 2);
    check_set_split(*nn, "nn-p4 k=2 N=1024 S=4", 2, VEIL_CUDA_PBS_SPLIT, 4);
    veil_params l2 = p22;
    l2.id = "test-2_2-pbs-2x15";
    l2.pbs_level = 2;
    l2.pbs_base_log = 15;
    check_set_split(l2, "2_2 l=2 S=4", 2, VEIL_CUDA_PBS_SPLIT, 4);
    const veil_params *p7 = veil_params_find("nn-p7-norm2e6-2m40");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p7);
    CU_ASSERT_EQUAL_FATAL(p7->poly_size, 16384);
    check_set_split(*p7, "nn-p7 N=16384 l=2 (S as on sm_90)", 1, VEIL_CUDA_PBS_SPLIT, 0);
}

/* ---- a two-partition key set (veil/tfhe.h "Key sets") ----------------------
 * tiny's split of test_keyset: partition 0 nn-p6-norm2e2-2m40 (k = 1, N =
 * 8192: D = 8192), partition 1 nn-p3-norm2e7-2m40 (k = 2, N = 1024: kN =
 * 2048 < D). For each partition, on ciphertexts of D + 1 words under the
 * master key: the keyswitch kernel's code (veil_cuda_keyswitch_emulate,
 * with in_dim = D) equals veil_keyswitch bit for bit; the batch PBS
 * (veil_cuda_pbs_batch_emulate, fused and, for partition 1, cluster) writes
 * D + 1 words whose words kN..D-1 are exactly zero and whose phase under the
 * master key decodes to the table, within the phase bound of the CPU's
 * pbs_lanes output (the FFTs differ, so the masks are not bit-equal). */
static void test_two_partitions(void) {
    const veil_params *parts[2] = {veil_params_find("nn-p6-norm2e2-2m40"),
                                   veil_params_find("nn-p3-norm2e7-2m40")};
    CU_ASSERT_PTR_NOT_NULL_FATAL(parts[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(parts[1]);
    uint8_t s[4][32];
    for (unsigned i = 0; i < 4; i++)
        veil_test_seed_bytes(90 + i, s[i]);
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    CU_ASSERT_FATAL(veil_secret_key_new_set(parts, 2, s[0], &sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new(sk, s[1], s[2], &ek) == VEIL_OK);
    CU_ASSERT_FATAL(veil_encryptor_new(s[3], NULL, &enc) == VEIL_OK);
    const uint32_t D = veil_params_big_dim(parts[0]);
    CU_ASSERT_EQUAL_FATAL(ek->n_parts, 2);
    CU_ASSERT_EQUAL_FATAL(ek->parts[1].in_dim, D);
    CU_ASSERT_FATAL(veil_params_big_dim(parts[1]) < D);
    enum { COUNT = 3 };
    const unsigned bits = 3;
    const int64_t table[8] = {5, 1, 7, 0, 3, 6, 2, 4};
    size_t ks_runs = 0, pbs_runs = 0;
    for (uint32_t x = 0; x < 2; x++) {
        const veil_params *p = parts[x];
        const veil_pbs_key *pk = veil_eval_key_part(ek, x);
        const size_t n1 = (size_t)p->lwe_dim + 1, big1 = (size_t)D + 1;
        const uint32_t kN = veil_params_big_dim(p);
        veil_pbs_ctx *ctx;
        veil_lut *lut;
        CU_ASSERT_FATAL(veil_pbs_ctx_new(p, &ctx) == VEIL_OK);
        CU_ASSERT_FATAL(veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut) == VEIL_OK);
        uint64_t *in = malloc(COUNT * big1 * 8), *ks_cpu = malloc(COUNT * n1 * 8),
                 *ks_emu = malloc(COUNT * n1 * 8), *ref = malloc(COUNT * big1 * 8),
                 *got = malloc(COUNT * big1 * 8);
        int64_t msg[COUNT];
        double *bsk_nat = veil_test_bsk_natural(p, pk->bsk_fourier);
        CU_ASSERT_FATAL(in && ks_cpu && ks_emu && ref && got && bsk_nat);
        for (uint32_t c = 0; c < COUNT; c++) {
            msg[c] = (int64_t)((3 * c + 5 * x + 1) % 8);
            veil_encrypt_big(enc, sk, veil_encode(msg[c], bits), in + c * big1);
            veil_keyswitch(pk, in + c * big1, ks_cpu + c * n1);
            veil_pbs(ctx, pk, lut, ks_cpu + c * n1, ref + c * big1);
        }
        for (uint32_t kernel = VEIL_CUDA_PBS_FUSED; kernel <= VEIL_CUDA_PBS_CLUSTER; kernel++) {
            /* the cluster emulation at N = 8192 costs minutes under ASan:
             * partition 1 (N = 1024) runs it, the zero-extended extraction
             * is the same code path */
            if (kernel == VEIL_CUDA_PBS_CLUSTER && x == 0) continue;
            veil_cuda_params cp = veil_cuda_params_from(p, kernel);
            cp.in_dim = pk->in_dim;
            CU_ASSERT_EQUAL(veil_cuda_in_dim(&cp), D);
            if (kernel == VEIL_CUDA_PBS_FUSED) {
                /* the key the kernel gets (backend_cuda.c's upload) */
                const size_t kw = veil_eval_key_ksk_words(p, pk->in_dim);
                uint64_t *wide = malloc(kw * 8);
                CU_ASSERT_FATAL(wide != NULL);
                veil_keyswitch_key_wide(pk, 0, kw, wide);
                memset(ks_emu, 0xa5, COUNT * n1 * 8);
                CU_ASSERT_EQUAL_FATAL(veil_cuda_keyswitch_emulate(&cp, ks_emu, in, wide, COUNT), 0);
                CU_ASSERT_EQUAL(memcmp(ks_emu, ks_cpu, COUNT * n1 * 8), 0);
                /* a key of the first D/2 rows only (veil_pbs_key.ksk_rows,
                 * what the backend uploads), inputs whose masks are 0
                 * past them: the kernel reads those rows, the cpu its own */
                veil_cuda_params half = cp;
                half.ks_rows = D / 2;
                uint64_t *narrow = malloc(COUNT * big1 * 8), *ks_half = malloc(COUNT * n1 * 8);
                CU_ASSERT_FATAL(narrow && ks_half);
                memcpy(narrow, in, COUNT * big1 * 8);
                for (uint32_t c = 0; c < COUNT; c++) {
                    memset(narrow + c * big1 + D / 2, 0, (D - D / 2) * 8);
                    veil_keyswitch(pk, narrow + c * big1, ks_half + c * n1);
                }
                memset(ks_emu, 0xa5, COUNT * n1 * 8);
                CU_ASSERT_EQUAL_FATAL(
                    veil_cuda_keyswitch_emulate(&half, ks_emu, narrow, wide, COUNT), 0);
                CU_ASSERT_EQUAL(memcmp(ks_emu, ks_half, COUNT * n1 * 8), 0);
                half.ks_rows = D + 1; /* past the input */
                CU_ASSERT_NOT_EQUAL(veil_cuda_keyswitch_emulate(&half, ks_emu, narrow, wide, 1), 0);
                free(narrow);
                free(ks_half);
                free(wide);
                ks_runs += 2 * COUNT;
            }
            memset(got, 0xa5, COUNT * big1 * 8);
            CU_ASSERT_EQUAL_FATAL(veil_cuda_pbs_batch_emulate(&cp, bsk_nat, ks_cpu, lut->poly,
                                                              &lut->in_offset, NULL, COUNT, got),
                                  0);
            size_t nonzero = 0, wrong = 0;
            uint64_t max_diff = 0;
            for (uint32_t c = 0; c < COUNT; c++, pbs_runs++) {
                for (uint32_t w = kN; w < D; w++)
                    nonzero += got[c * big1 + w] != 0 || ref[c * big1 + w] != 0;
                const uint64_t pg = veil_phase_big(sk, got + c * big1),
                               pc = veil_phase_big(sk, ref + c * big1);
                wrong += veil_decode(pg, bits, 0) != table[msg[c]] ||
                         veil_decode(pc, bits, 0) != table[msg[c]];
                const uint64_t ad = veil_test_phase_dist(pg, pc);
                if (ad > max_diff) max_diff = ad;
            }
            const uint64_t bound = veil_delta(bits) >> PHASE_BOUND_SHIFT;
            printf("\n  partition %u (%s, kN %u of D %u), %s: %d PBS, %zu nonzero past kN, "
                   "wrong %zu, max phase diff 2^%.1f (bound 2^%.1f)",
                   x, p->id, kN, D, kernel_name(kernel), COUNT, nonzero, wrong,
                   max_diff ? log2((double)max_diff) : -INFINITY, log2((double)bound));
            CU_ASSERT_EQUAL(nonzero, 0);
            CU_ASSERT_EQUAL(wrong, 0);
            CU_ASSERT(max_diff <= bound);
        }
        free(in), free(ks_cpu), free(ks_emu), free(ref), free(got), free(bsk_nat);
        veil_lut_free(lut);
        veil_pbs_ctx_free(ctx);
    }
    CU_ASSERT_EQUAL(ks_runs, 4 * COUNT);
    CU_ASSERT_EQUAL(pbs_runs, 3 * COUNT);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
}

/* ---- a batch: the device modulus switch with offsets, per-ciphertext tables ---- */

/* count ciphertexts over three tables of different offsets (unsigned,
 * signed, unsigned), ciphertext c reading table index[c]: the modulus
 * switch emulated by the kernel's phases (veil_cuda_modulus_switch_emulate)
 * equals veil_modulus_switch of the body plus that table's offset bit for
 * bit, and the batch PBS (veil_cuda_pbs_batch_emulate: the kernels' table
 * choice, then the fused or cluster emulation) decodes to that table's
 * entry, within the phase bound of the CPU PBS with the same table. Then the
 * same with index NULL (every ciphertext on table 0). */
static void check_batch(const char *id, uint32_t kernel, uint32_t count) {
    const veil_params *p = veil_params_find(id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    uint8_t s[4][32];
    for (unsigned i = 0; i < 4; i++)
        veil_test_seed_bytes(60 + i, s[i]);
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_pbs_ctx *ctx;
    CU_ASSERT_FATAL(veil_secret_key_new(p, s[0], &sk) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_new(sk, s[1], s[2], &ek) == VEIL_OK);
    CU_ASSERT_FATAL(veil_encryptor_new(s[3], NULL, &enc) == VEIL_OK);
    CU_ASSERT_FATAL(veil_pbs_ctx_new(p, &ctx) == VEIL_OK);
    const unsigned bits = p->precision, n_vals = 1u << bits;
    const uint32_t N = p->poly_size;
    enum { T = 3 };
    const int is_signed[T] = {0, 1, 0};
    int64_t table[T][64];
    veil_lut *lut[T];
    uint64_t *polys = malloc(sizeof(uint64_t) * T * N), offsets[T];
    CU_ASSERT_FATAL(polys != NULL);
    for (int t = 0; t < T; t++) {
        for (unsigned i = 0; i < n_vals; i++)
            table[t][i] = is_signed[t] ? (int64_t)(n_vals / 2) - 1 - (int64_t)((5 * i + 3) % n_vals)
                                       : (int64_t)((i * (2 * (unsigned)t + 1) + 1) % n_vals);
        CU_ASSERT_FATAL(veil_lut_new(p, table[t], bits, is_signed[t], veil_delta(bits), &lut[t]) ==
                        VEIL_OK);
        memcpy(polys + (size_t)t * N, lut[t]->poly, sizeof(uint64_t) * N);
        offsets[t] = lut[t]->in_offset;
    }
    CU_ASSERT(offsets[0] != offsets[1]); /* the offsets matter */
    const veil_cuda_params cp = veil_cuda_params_from(p, kernel);
    const size_t big1 = veil_params_big_dim(p) + 1, n1 = p->lwe_dim + 1;
    uint64_t *in = malloc(big1 * 8), *small = malloc(count * n1 * 8),
             *ref = malloc(count * big1 * 8), *got = malloc(count * big1 * 8),
             *shifted = malloc(n1 * 8);
    uint32_t *ms_dev = malloc(count * n1 * 4), *ms_cpu = malloc(n1 * 4), *index = malloc(count * 4);
    int64_t *msg = malloc(count * 8);
    double *bsk_nat = veil_test_bsk_natural(p, ek->parts[0].bsk_fourier);
    CU_ASSERT_FATAL(in && small && ref && got && shifted && ms_dev && ms_cpu && index && msg &&
                    bsk_nat);
    size_t runs = 0;
    for (int with_index = 1; with_index >= 0; with_index--) {
        for (uint32_t c = 0; c < count; c++) {
            index[c] = with_index ? (c * 2 + 1) % T : 0;
            const int sg = is_signed[index[c]];
            msg[c] = (int64_t)(veil_test_rand() % n_vals) - (sg ? (int64_t)(n_vals / 2) : 0);
            veil_encrypt_big(enc, sk, veil_encode(msg[c], bits), in);
            veil_keyswitch(veil_eval_key_part(ek, 0), in, small + c * n1);
            veil_pbs(ctx, veil_eval_key_part(ek, 0), lut[index[c]], small + c * n1, ref + c * big1);
        }
        const uint32_t *ix = with_index ? index : NULL;
        CU_ASSERT_EQUAL_FATAL(
            veil_cuda_modulus_switch_emulate(&cp, ms_dev, small, offsets, ix, count), 0);
        size_t ms_bad = 0;
        for (uint32_t c = 0; c < count; c++) {
            memcpy(shifted, small + c * n1, n1 * 8);
            shifted[n1 - 1] += offsets[index[c]];
            veil_modulus_switch(p, shifted, ms_cpu);
            ms_bad += memcmp(ms_cpu, ms_dev + c * n1, n1 * 4) != 0;
        }
        CU_ASSERT_EQUAL(ms_bad, 0);
        CU_ASSERT_EQUAL_FATAL(
            veil_cuda_pbs_batch_emulate(&cp, bsk_nat, small, polys, offsets, ix, count, got), 0);
        size_t wrong = 0;
        uint64_t max_diff = 0;
        for (uint32_t c = 0; c < count; c++, runs++) {
            const int sg = is_signed[index[c]];
            const int64_t want = table[index[c]][msg[c] + (sg ? (int64_t)(n_vals / 2) : 0)];
            const uint64_t pg = veil_phase_big(sk, got + c * big1),
                           pc = veil_phase_big(sk, ref + c * big1);
            wrong += veil_decode(pg, bits, sg) != want || veil_decode(pc, bits, sg) != want;
            const uint64_t ad = veil_test_phase_dist(pg, pc);
            if (ad > max_diff) max_diff = ad;
        }
        const uint64_t bound = veil_delta(bits) >> PHASE_BOUND_SHIFT;
        printf("\n  %s batch %s, %s: %u PBS, modulus switch %zu differ, wrong %zu, max phase diff "
               "2^%.1f (bound 2^%.1f)",
               kernel_name(kernel), id, with_index ? "3 tables indexed" : "index NULL", count,
               ms_bad, wrong, max_diff ? log2((double)max_diff) : -INFINITY, log2((double)bound));
        CU_ASSERT_EQUAL(wrong, 0);
        CU_ASSERT(max_diff <= bound);
    }
    CU_ASSERT_EQUAL(runs, 2 * (size_t)count);
    free(in), free(small), free(ref), free(got), free(shifted);
    free(ms_dev), free(ms_cpu), free(index), free(msg), free(polys), free(bsk_nat);
    for (int t = 0; t < T; t++)
        veil_lut_free(lut[t]);
    veil_pbs_ctx_free(ctx);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
}

static void test_batch_indexed(void) {
    for (int k = 0; k < 2; k++) {
        check_batch("tfhers-1_1-gaussian-2m64", KERNELS[k], 6);  /* standard MS */
        check_batch("tfhers-2_2-tuniform-2m128", KERNELS[k], 4); /* centred MS */
    }
}

/* ---- the fused FFT's error, as test_fft_error measures FFTW's ---------------- */
/* exact_coeff and diff_exact: fft_measure.h, the same reference test_fft_error uses */

/* Measured error variance of the fused FFT's external product against the
 * exact one, compared with Concrete's FFT model (veil_noise_fft_variance, the
 * term every p_fail includes): it must not exceed it, as FFTW must not. */
/* The multi-bit blind rotation (veil_cuda_pbs_multibit's per-element code,
 * pbs_multibit.cuh, with a host radix-2 transform in place of cuFFT) against
 * the CPU engine's veil_pbs on the same keys, at every published multi-bit
 * set (the first six of the list; not the derived nn-mb ones after them), on
 * both paths: the cuFFT path (a group sum a step) and the cluster kernel
 * (every key bundle first, then the n/g external products on chip, its
 * phases emulated): a batch of 2 (ciphertext index and offsets as the
 * kernels read them), decryptions equal the table and the CPU's, phases
 * within the bound. Under the sanitizers (tens of times slower) only the
 * first set. */
#define EMU_MB_SETS_PUBLISHED 6
#if VEIL_TEST_SANITIZED
#define EMU_MB_SETS 1
#else
#define EMU_MB_SETS EMU_MB_SETS_PUBLISHED
#endif
static void multibit_emu_case(const veil_params *p) {
    veil_test_keys f;
    CU_ASSERT_FATAL(veil_test_keys_make(p, 60, &f));
    const unsigned bits = p->precision, n_vals = 1u << bits;
    int64_t table[64];
    for (unsigned v = 0; v < n_vals; v++)
        table[v] = (int64_t)((5 * v + 3) % n_vals);
    veil_lut *lut;
    CU_ASSERT_FATAL(veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut) == VEIL_OK);
    for (int path = 0; path < 2; path++) {
        const veil_cuda_params cp =
            veil_cuda_params_from(p, path ? VEIL_CUDA_PBS_CLUSTER : VEIL_CUDA_PBS_AUTO);
        CU_ASSERT_EQUAL(cp.grouping, p->grouping);
        const size_t big1 = veil_params_big_dim(p) + 1, n1 = p->lwe_dim + 1, count = 2;
        uint64_t *in = malloc(big1 * 8), *small = malloc(count * n1 * 8),
                 *ref = malloc(count * big1 * 8), *got = malloc(count * big1 * 8);
        CU_ASSERT_FATAL(in && small && ref && got);
        int64_t want[2];
        for (size_t c = 0; c < count; c++) {
            const int64_t m = (int64_t)(veil_test_rand() % n_vals);
            want[c] = table[m];
            veil_encrypt_big(f.enc, f.sk, veil_encode(m, bits), in);
            veil_keyswitch(veil_eval_key_part(f.ek, 0), in, small + c * n1);
            veil_pbs(f.ctx, veil_eval_key_part(f.ek, 0), lut, small + c * n1, ref + c * big1);
        }
        const uint64_t offsets[1] = {lut->in_offset};
        CU_ASSERT_EQUAL_FATAL(veil_cuda_pbs_multibit_emulate(&cp, f.ek->parts[0].bsk, small,
                                                             lut->poly, offsets, NULL,
                                                             (uint32_t)count, got),
                              0);
        uint64_t max_diff = 0;
        size_t wrong = 0;
        for (size_t c = 0; c < count; c++) {
            const uint64_t pg = veil_phase_big(f.sk, got + c * big1),
                           pc = veil_phase_big(f.sk, ref + c * big1);
            wrong += veil_decode(pg, bits, 0) != want[c] || veil_decode(pc, bits, 0) != want[c];
            const uint64_t ad = veil_test_phase_dist(pg, pc);
            if (ad > max_diff) max_diff = ad;
        }
        char label[128];
        snprintf(label, sizeof label, "multi-bit %s, %s", p->id, path ? "cluster" : "cufft");
        check_phases(label, count, wrong, max_diff, bits);
        free(in);
        free(small);
        free(ref);
        free(got);
    }
    /* the other classic kernels are refused for a multi-bit set */
    const uint32_t refused[2] = {VEIL_CUDA_PBS_FUSED, VEIL_CUDA_PBS_SPLIT};
    for (int r = 0; r < 2; r++) {
        const veil_cuda_params cr = veil_cuda_params_from(p, refused[r]);
        CU_ASSERT_EQUAL(veil_cuda_params_check(&cr, NULL, 0), VEIL_CUDA_ERR_UNSUPPORTED);
    }
    veil_lut_free(lut);
    veil_test_keys_free(&f);
}

static void test_multibit_every_set(void) {
    size_t ran = 0;
    for (size_t i = 0; i < veil_params_multibit_count() && ran < EMU_MB_SETS; i++, ran++)
        multibit_emu_case(veil_params_multibit_at(i));
    CU_ASSERT_EQUAL(ran, EMU_MB_SETS);
    if (VEIL_TEST_SANITIZED)
        printf("\n  (sanitizer build: %d of the 6 published multi-bit sets; all six in the plain "
               "build)",
               EMU_MB_SETS);
}

/* The derived multi-bit sets (nn-mb*, docs/PARAMS.md section 9), which the
 * compiler may choose for a cuda program: every one is a shape both
 * multi-bit paths accept (veil_cuda_params_check), and the first set of
 * each shape (g, k, N, l) that no published set has runs through
 * multibit_emu_case, as the published ones do: 30 shapes, 90 s on the
 * 2-core development machine (none under the sanitizers, tens of times
 * slower there). */
#define EMU_MB_SHAPES (VEIL_TEST_SANITIZED ? 0 : 64)
static int same_shape(const veil_params *a, const veil_params *b) {
    return a->grouping == b->grouping && a->glwe_dim == b->glwe_dim &&
           a->poly_size == b->poly_size && a->pbs_level == b->pbs_level;
}

static void test_multibit_derived_shapes(void) {
    const size_t count = veil_params_multibit_count();
    size_t checked = 0, shapes = 0;
    for (size_t i = 0; i < count; i++) {
        const veil_params *p = veil_params_multibit_at(i);
        for (int path = 0; path < 3; path++) {
            static const uint32_t kern[3] = {VEIL_CUDA_PBS_AUTO, VEIL_CUDA_PBS_CUFFT,
                                             VEIL_CUDA_PBS_CLUSTER};
            const veil_cuda_params cp = veil_cuda_params_from(p, kern[path]);
            char why[160] = "";
            const int e = veil_cuda_params_check(&cp, why, sizeof why);
            if (e) printf("\n  %s, kernel %u: %s", p->id, kern[path], why);
            CU_ASSERT_EQUAL(e, 0);
        }
        checked++;
        if (i < EMU_MB_SETS_PUBLISHED) continue;
        size_t j = 0;
        while (j < i && !same_shape(veil_params_multibit_at(j), p))
            j++;
        if (j < i || shapes >= EMU_MB_SHAPES) continue;
        printf("\n  %s (g %u, k %u, N %u, l %u)", p->id, p->grouping, p->glwe_dim, p->poly_size,
               p->pbs_level);
        fflush(stdout);
        multibit_emu_case(p);
        shapes++;
    }
    CU_ASSERT_EQUAL(checked, count);
    printf("\n  %zu multi-bit sets checked; %zu derived shapes emulated", checked, shapes);
}

/* ---- threshold reads on the device's path (issue 10) ------------------------
 * cuda's ks_pbs_extract: the PBS kernels write each ciphertext's
 * accumulator (veil_cuda_params.out_acc) and veil_cuda_extract's per-word
 * code reads any coefficients from it. For the fused, cluster and split
 * (S = 2) kernels on nn-p4-norm2e0-2m40 (k = 2, N = 1024) and the
 * multi-bit cuFFT and cluster paths on the first multi-bit set, EXT_COUNT
 * inputs (the lowest and highest values, then random) of a
 * veil_lut_steps_new table:
 *  - the accumulators read at coefficient 0 ({0, 0}) are the kernels' own
 *    LWE outputs of the same inputs, bit for bit (each accumulator comes
 *    out whole and in place);
 *  - every threshold t in [0, 2^bits] (veil_lut_step: trivial at 0 and past
 *    the range), period 2 (odd inputs read the thresholds in reverse), the
 *    call's first input at 1 of the period, results EXT_COUNT + 1 apart:
 *    each decrypts to V [r >= t], as the CPU engine's
 *    veil_ks_pbs_many_extract of the same inputs does, phases within the
 *    bound of the CPU's;
 *  - read into D = kN + 7 words a ciphertext: the kN mask words and the
 *    body as at D = kN, zeros between. */
#define EXT_COUNT 3

static void check_reads(const veil_test_keys *f, veil_cuda_params cp, const char *label) {
    const veil_params *p = f->p;
    const unsigned bits = p->precision < 4 ? p->precision : 4, n_vals = 1u << bits, R = n_vals + 1,
                   period = 2;
    const uint64_t V = veil_delta(bits) * 2;
    veil_lut *steps;
    CU_ASSERT_FATAL(veil_lut_steps_new(p, bits, V, &steps) == VEIL_OK);
    veil_extract ext[2 * 17];
    for (unsigned r = 0; r < R; r++) {
        ext[r * period] = veil_lut_step(steps, V, r);
        ext[r * period + 1] = veil_lut_step(steps, V, R - 1 - r);
    }
    const uint32_t count = EXT_COUNT, kN = p->glwe_dim * p->poly_size, D = kN + 7;
    const size_t big1 = (size_t)kN + 1, n1 = p->lwe_dim + 1, aw = (size_t)kN + p->poly_size,
                 rs = count + 1;
    uint64_t *in = malloc(count * big1 * 8), *small = malloc(count * n1 * 8),
             *ref = malloc(R * count * big1 * 8), *lwe = malloc(count * big1 * 8),
             *acc = malloc(count * aw * 8), *got = malloc(R * rs * big1 * 8),
             *wide = malloc(R * count * ((size_t)D + 1) * 8);
    double *bsk_nat = cp.grouping ? NULL : veil_test_bsk_natural(p, f->ek->parts[0].bsk_fourier);
    CU_ASSERT_FATAL(in && small && ref && lwe && acc && got && wide && (cp.grouping || bsk_nat));
    int64_t m[EXT_COUNT];
    for (uint32_t c = 0; c < count; c++) {
        m[c] = c == 0 ? 0 : c == 1 ? (int64_t)n_vals - 1 : (int64_t)(veil_test_rand() % n_vals);
        veil_encrypt_big(f->enc, f->sk, veil_encode(m[c], bits), in + c * big1);
        veil_keyswitch(veil_eval_key_part(f->ek, 0), in + c * big1, small + c * n1);
    }
    veil_ks_pbs_many_extract(f->ctx, veil_eval_key_part(f->ek, 0), steps, in, count, ext, R, period,
                             1, ref, count);
    const uint64_t offsets[1] = {steps->in_offset};
    for (uint32_t a = 0; a < 2; a++) {
        cp.out_acc = a;
        CU_ASSERT_EQUAL_FATAL(
            cp.grouping
                ? veil_cuda_pbs_multibit_emulate(&cp, f->ek->parts[0].bsk, small, steps->poly,
                                                 offsets, NULL, count, a ? acc : lwe)
                : veil_cuda_pbs_batch_emulate(&cp, bsk_nat, small, steps->poly, offsets, NULL,
                                              count, a ? acc : lwe),
            0);
    }
    cp.out_acc = 0;
    const veil_extract zero = {0, 0};
    CU_ASSERT_EQUAL(veil_cuda_extract_emulate(&cp, got, count, acc, &zero, 1, 1, 0, count), 0);
    CU_ASSERT(memcmp(got, lwe, count * big1 * 8) == 0);
    CU_ASSERT_EQUAL(veil_cuda_extract_emulate(&cp, got, rs, acc, ext, R, period, 1, count), 0);
    size_t wrong = 0;
    uint64_t max_diff = 0;
    for (uint32_t i = 0; i < count; i++)
        for (unsigned r = 0; r < R; r++) {
            const uint64_t t = (1 + i) % period ? R - 1 - r : r, want = (uint64_t)m[i] >= t ? V : 0;
            const uint64_t pg = veil_phase_big(f->sk, got + (r * rs + i) * big1),
                           pc = veil_phase_big(f->sk, ref + ((size_t)r * count + i) * big1);
            wrong +=
                veil_test_phase_dist(pg, want) >= V / 4 || veil_test_phase_dist(pc, want) >= V / 4;
            const uint64_t ad = veil_test_phase_dist(pg, pc);
            if (ad > max_diff) max_diff = ad;
        }
    check_phases(label, count * R, wrong, max_diff, bits);
    /* zero-extended to D */
    veil_cuda_params cw = cp;
    cw.in_dim = D;
    CU_ASSERT_EQUAL(veil_cuda_extract_emulate(&cw, wide, count, acc, ext, R, period, 1, count), 0);
    size_t differ = 0;
    for (size_t x = 0; x < (size_t)R * count; x++) {
        const uint64_t *w = wide + x * ((size_t)D + 1),
                       *g = got + ((x / count) * rs + x % count) * big1;
        differ += memcmp(w, g, (size_t)kN * 8) != 0 || w[D] != g[kN];
        for (uint32_t z = kN; z < D; z++)
            differ += w[z] != 0;
    }
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT_EQUAL(veil_cuda_extract_emulate(&cp, got, count - 1, acc, ext, R, period, 1, count),
                    VEIL_CUDA_ERR_ARG); /* results overlapping */
    free(in), free(small), free(ref), free(lwe), free(acc), free(got), free(wide), free(bsk_nat);
    veil_lut_free(steps);
}

static void test_threshold_reads(void) {
    const veil_params *nn = veil_params_find("nn-p4-norm2e0-2m40");
    CU_ASSERT_PTR_NOT_NULL_FATAL(nn);
    veil_test_keys f;
    CU_ASSERT_FATAL(veil_test_keys_make(nn, 90, &f));
    const uint32_t kernels[3] = {VEIL_CUDA_PBS_FUSED, VEIL_CUDA_PBS_CLUSTER, VEIL_CUDA_PBS_SPLIT};
    for (int k = 0; k < 3; k++) {
        veil_cuda_params cp = veil_cuda_params_from(nn, kernels[k]);
        cp.split = kernels[k] == VEIL_CUDA_PBS_SPLIT ? 2 : 0;
        char label[96];
        snprintf(label, sizeof label, "threshold reads, %s nn-p4 k=2 N=1024",
                 kernel_name(kernels[k]));
        check_reads(&f, cp, label);
    }
    veil_test_keys_free(&f);
    const veil_params *mb = veil_params_multibit_at(0);
    CU_ASSERT_FATAL(veil_test_keys_make(mb, 95, &f));
    for (int path = 0; path < 2; path++) {
        char label[128];
        snprintf(label, sizeof label, "threshold reads, multi-bit %s, %s", mb->id,
                 path ? "cluster" : "cufft");
        check_reads(&f,
                    veil_cuda_params_from(mb, path ? VEIL_CUDA_PBS_CLUSTER : VEIL_CUDA_PBS_AUTO),
                    label);
    }
    veil_test_keys_free(&f);
}

static void test_fused_fft_error_within_model(void) {
    const uint32_t cfg[][4] = {
        {4, 512, 23, 1}, {1, 2048, 23, 1}, {1, 2048, 15, 2}, {1, 1024, 23, 1}};
    printf("\n  %5s %2s %3s %2s %14s %14s %9s", "N", "k", "B", "l", "measured var", "model var",
           "log2 m/M");
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        const uint32_t k = cfg[c][0], n = cfg[c][1], B = cfg[c][2], l = cfg[c][3];
        const uint32_t pairs = (k + 1) * l;
        const veil_cuda_params cp = {.lwe_dim = 1,
                                     .glwe_dim = k,
                                     .poly_size = n,
                                     .pbs_base_log = B,
                                     .pbs_level = l,
                                     .ks_base_log = 1,
                                     .ks_level = 1};
        int64_t *d = malloc(sizeof(int64_t) * n * pairs), *t = malloc(sizeof(int64_t) * n * pairs);
        double *out = malloc(sizeof(double) * n);
        CU_ASSERT_FATAL(d && t && out);
        double sum2 = 0;
        uint64_t count = 0;
        const uint32_t trials = n <= 1024 ? 4 : 2, step = n / 512;
        for (uint32_t tr = 0; tr < trials; tr++) {
            for (size_t i = 0; i < (size_t)n * pairs; i++) {
                const uint64_t span = (1ull << B) + 1;
                d[i] = (int64_t)(veil_test_rand() % span) - (int64_t)(1ull << (B - 1));
                t[i] = (int64_t)veil_test_rand();
            }
            CU_ASSERT_EQUAL_FATAL(veil_cuda_fused_product_emulate(&cp, d, (const uint64_t *)t, out),
                                  0);
            for (uint32_t j = tr % step; j < n; j += step) {
                const double e = diff_exact(out[j], exact_coeff(d, t, pairs, n, j));
                sum2 += e * e;
                count++;
            }
        }
        const double var = sum2 / (double)count, model = veil_noise_fft_variance(k, n, B, l);
        printf("\n  %5u %2u %3u %2u %14.6e %14.6e %9.3f", n, k, B, l, var, model,
               log2(var / model));
        CU_ASSERT(var > 0.0);
        CU_ASSERT(var <= model);
        free(d);
        free(t);
        free(out);
    }
}

/* The elementwise kernels' per-word code against the cpu backend's ops:
 * counts 1, 5, 33 at two ciphertext sizes, f = 1, -1 and random, in place
 * and not. */
static void test_elementwise(void) {
    const char *const sets[2] = {"tfhers-1_1-gaussian-2m64", "tfhers-2_2-gaussian-2m64"};
    const size_t counts[3] = {1, 5, 33};
    veil_backend *be;
    CU_ASSERT_FATAL(veil_backend_new(VEIL_BACKEND_CPU, &be) == VEIL_OK);
    size_t cases = 0;
    for (int si = 0; si < 2; si++) {
        const veil_params *p = veil_params_find(sets[si]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        uint8_t s[3][32];
        for (unsigned i = 0; i < 3; i++)
            veil_test_seed_bytes(80 + i, s[i]);
        veil_secret_key *sk;
        veil_eval_key *ek;
        veil_backend_keys *keys;
        CU_ASSERT_FATAL(veil_secret_key_new(p, s[0], &sk) == VEIL_OK);
        CU_ASSERT_FATAL(veil_eval_key_new(sk, s[1], s[2], &ek) == VEIL_OK);
        CU_ASSERT_FATAL(veil_backend_keys_new(be, ek, 4, &keys) == VEIL_OK);
        const uint32_t lwe = veil_params_big_dim(p) + 1;
        for (int ci = 0; ci < 3; ci++) {
            const size_t n = counts[ci], words = n * lwe;
            uint64_t *a = malloc(words * 8), *b = malloc(words * 8), *emu = malloc(words * 8),
                     *cpu = malloc(words * 8);
            CU_ASSERT_FATAL(a && b && emu && cpu);
            for (size_t w = 0; w < words; w++) {
                a[w] = veil_test_rand();
                b[w] = veil_test_rand();
            }
            veil_backend_buffer *ba, *bb, *bo;
            CU_ASSERT_FATAL(veil_backend_buffer_new(keys, n, &ba) == VEIL_OK);
            CU_ASSERT_FATAL(veil_backend_buffer_new(keys, n, &bb) == VEIL_OK);
            CU_ASSERT_FATAL(veil_backend_buffer_new(keys, n, &bo) == VEIL_OK);
            CU_ASSERT_EQUAL(veil_backend_buffer_upload(ba, a, n), VEIL_OK);
            CU_ASSERT_EQUAL(veil_backend_buffer_upload(bb, b, n), VEIL_OK);
            const uint64_t fs[3] = {1, (uint64_t)0 - 1, veil_test_rand()};
            for (int fi = 0; fi < 3; fi++, cases++) {
                const uint64_t f = fs[fi], pt = veil_test_rand();
                CU_ASSERT_EQUAL(veil_cuda_lwe_add_emulate(emu, a, b, n, lwe, f), 0);
                CU_ASSERT_EQUAL(veil_backend_add(bo, ba, bb, n, f), VEIL_OK);
                CU_ASSERT_EQUAL(veil_backend_buffer_download(bo, n, cpu), VEIL_OK);
                CU_ASSERT(memcmp(emu, cpu, words * 8) == 0);
                CU_ASSERT_EQUAL(veil_cuda_lwe_scale_emulate(emu, a, n, lwe, f, pt), 0);
                CU_ASSERT_EQUAL(veil_backend_scale(bo, ba, n, f, pt), VEIL_OK);
                CU_ASSERT_EQUAL(veil_backend_buffer_download(bo, n, cpu), VEIL_OK);
                CU_ASSERT(memcmp(emu, cpu, words * 8) == 0);
                /* in place, as the rounding chunks use them: a = f * (a + f * b) + pt */
                CU_ASSERT_EQUAL(veil_cuda_lwe_add_emulate(a, a, b, n, lwe, f), 0);
                CU_ASSERT_EQUAL(veil_cuda_lwe_scale_emulate(a, a, n, lwe, f, pt), 0);
                CU_ASSERT_EQUAL(veil_backend_add(ba, ba, bb, n, f), VEIL_OK);
                CU_ASSERT_EQUAL(veil_backend_scale(ba, ba, n, f, pt), VEIL_OK);
                CU_ASSERT_EQUAL(veil_backend_buffer_download(ba, n, cpu), VEIL_OK);
                CU_ASSERT(memcmp(a, cpu, words * 8) == 0);
            }
            veil_backend_buffer_free(ba);
            veil_backend_buffer_free(bb);
            veil_backend_buffer_free(bo);
            free(a), free(b), free(emu), free(cpu);
        }
        CU_ASSERT_EQUAL(veil_cuda_lwe_add_emulate(NULL, NULL, NULL, 3, lwe, 1), VEIL_CUDA_ERR_ARG);
        CU_ASSERT_EQUAL(veil_cuda_lwe_scale_emulate(NULL, NULL, 1, 0, 1, 0), VEIL_CUDA_ERR_ARG);
        veil_backend_keys_free(keys);
        veil_eval_key_free(ek);
        veil_secret_key_free(sk);
    }
    CU_ASSERT_EQUAL(cases, 2 * 3 * 3);
    veil_backend_free(be);
}

/* The cuda WoP-PBS's sequence of steps (veil_cuda_wop_emulate: wop.cu's
 * wop_run with the host executor, the GGSWs' transforms through the
 * device's plan ladder) on wop_kernel_case.h's case, on the set and on the
 * small run's n = 32 copy. What the device adds (the launches, cuFFT's
 * plans, the pairs' padding) runs in test_gpu_ops's test_wop_kernel and
 * test_wop_program. */
typedef struct emu_exec {
    wop_exec x;
    uint64_t *wide;
    double *bsk_nat;
    veil_cuda_wop_keys keys;
} emu_exec;

static int emu_keys(wop_exec *x, const veil_pbs_key *pk, const veil_cuda_wop_params *cwp) {
    emu_exec *e = (emu_exec *)x;
    const size_t kw = veil_eval_key_ksk_words(pk->params, cwp->pbs.ks_rows);
    e->wide = malloc(kw * 8);
    e->bsk_nat = veil_test_bsk_natural(pk->params, pk->bsk_fourier);
    if (!e->wide || !e->bsk_nat) return 1;
    veil_keyswitch_key_wide(pk, 0, kw, e->wide);
    e->keys = (veil_cuda_wop_keys){e->wide, e->bsk_nat, pk->pfpks};
    return 0;
}

static int emu_run(wop_exec *x, const veil_cuda_wop_params *cwp, const veil_cuda_wop_tables *t,
                   size_t table_words, const uint64_t *in, uint32_t count, size_t big1,
                   uint64_t *out) {
    (void)table_words, (void)big1;
    return veil_cuda_wop_emulate(cwp, t, &((emu_exec *)x)->keys, in, count, out);
}

static void emu_release(wop_exec *x) {
    emu_exec *e = (emu_exec *)x;
    free(e->wide);
    free(e->bsk_nat);
    e->wide = NULL, e->bsk_nat = NULL;
}

static void test_wop(void) {
    emu_exec e = {{"emulated", emu_keys, emu_run, emu_release}, NULL, NULL, {0}};
    wop_kernel_case(&e.x, 0, VEIL_CUDA_PBS_FUSED, 150);
    wop_kernel_case(&e.x, 1, VEIL_CUDA_PBS_FUSED, 150);
    /* refused before any key is read: no tables, 17 bits */
    const veil_wop_params *wp = veil_wop_params_for_width(9);
    const veil_cuda_wop_params cwp = {veil_cuda_params_from(&wp->pbs, VEIL_CUDA_PBS_FUSED),
                                      wp->cbs_base_log, wp->cbs_level, wp->pp_base_log,
                                      wp->pp_level};
    const veil_cuda_wop_keys none_keys = {NULL, NULL, NULL};
    const veil_cuda_wop_tables none = {NULL, 2, 9, 3, 1, 0, 1};
    uint64_t dummy[1];
    CU_ASSERT_EQUAL(veil_cuda_wop_emulate(&cwp, &none, &none_keys, dummy, 1, dummy),
                    VEIL_CUDA_ERR_ARG);
    int64_t tab1[1] = {0};
    const veil_cuda_wop_tables wide17 = {tab1, 1, 17, 1, 1, 0, 1};
    CU_ASSERT_EQUAL(veil_cuda_wop_emulate(&cwp, &wide17, &none_keys, dummy, 1, dummy),
                    VEIL_CUDA_ERR_ARG);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("kernels_emu", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_params_base_log);
    VEIL_ADD_TEST(s, test_k4_n512);
    VEIL_ADD_TEST(s, test_n2048_centered);
    VEIL_ADD_TEST(s, test_two_levels);
    VEIL_ADD_TEST(s, test_n1024);
    VEIL_ADD_TEST(s, test_split);
    VEIL_ADD_TEST(s, test_batch_indexed);
    VEIL_ADD_TEST(s, test_two_partitions);
    VEIL_ADD_TEST(s, test_multibit_every_set);
    VEIL_ADD_TEST(s, test_multibit_derived_shapes);
    VEIL_ADD_TEST(s, test_threshold_reads);
    VEIL_ADD_TEST(s, test_fused_fft_error_within_model);
    VEIL_ADD_TEST(s, test_elementwise);
    VEIL_ADD_TEST(s, test_wop);
    return veil_test_run();
}
