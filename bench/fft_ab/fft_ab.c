/* The transform kernels of two versions of engine/src/fft/fft_template.h in
 * one process (scripts/fft_ab.sh builds it): kern_a (a git revision's) and
 * kern_b (the working tree's), the same code path (W), called alternately
 * on the same tables and data, `rounds` rounds of 50 calls each, the order
 * swapped every round, thread CPU time. On a shared machine, where
 * separate runs of one binary vary by 30%, the ratio of one such run is
 * what compares. Prints per N: forward (forward_i64), inverse (a copy of
 * the spectrum, then backward_add_torus), the CMux's forward
 * (forward_digits, one level, base 2^23, a rotation per call), a CMux
 * at k = 1, l = 1 as the blind rotation runs it one lookup at a time (the
 * two digit transforms, mac_ggsw, the two inverses, the next GGSW
 * prefetched during them, the key, 64 MiB, streamed from memory: "cmux_us"),
 * a / b times and ratios (the inverse's copies timed alone in the same rounds,
 * "copy_us", and taken off its times), and whether both give the same bits (they must, for a
 * change that only reorganises the code). JSON lines on stdout. */
#include "fft_internal.h"
#include "veil/compile_options.h"
#include "veil/fft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const veil_fft_kernels kern_a, kern_b;

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int run(uint32_t N, veil_fft_path path, int rounds) {
    veil_fft *f = NULL;
    if (veil_fft_new_path(N, path, &f) != VEIL_OK) {
        fprintf(stderr, "fft_ab: N = %u: %s\n", N, veil_error_message());
        return 1;
    }
    const veil_fft_tables *t = veil_fft_tables_of(f);
    const int K = 50;
    int64_t *in = malloc(N * sizeof *in);
    uint64_t *x = malloc(N * sizeof *x), *acc = calloc(N, sizeof *acc);
    uint64_t *acc_a = calloc(N, sizeof *acc_a), *acc_b = calloc(N, sizeof *acc_b);
    double *o1 = veil_fft_alloc(N * sizeof(double)), *o2 = veil_fft_alloc(N * sizeof(double));
    double *tmp = veil_fft_alloc(N * sizeof(double));
    uint64_t s = 1;
    for (uint32_t i = 0; i < N; i++) {
        in[i] = (int64_t)(rnd(&s) >> 20) - ((int64_t)1 << 43); /* in [-2^43, 2^43) */
        x[i] = rnd(&s);
    }
    /* the CMux's key: GGSWs of 2 x 2 transformed polynomials, finite
     * values of a key's size (|v| < 2^63), more than the caches hold */
    const size_t gw = 4 * (size_t)N, n_ggsw = ((size_t)64 << 20) / (gw * sizeof(double));
    double *key = veil_fft_alloc(n_ggsw * gw * sizeof(double));
    double *fd = veil_fft_alloc(2 * N * sizeof(double)),
           *facc = veil_fft_alloc(2 * N * sizeof(double));
    uint64_t *cacc = malloc(2 * N * sizeof *cacc);
    if (!in || !x || !acc || !acc_a || !acc_b || !o1 || !o2 || !tmp || !key || !fd || !facc ||
        !cacc) {
        fprintf(stderr, "fft_ab: N = %u: out of memory\n", N);
        return 1;
    }
    for (size_t i = 0; i < n_ggsw * gw; i++)
        key[i] = (double)(int64_t)rnd(&s);
    for (uint32_t i = 0; i < 2 * N; i++)
        cacc[i] = rnd(&s);
    size_t g = 0; /* the next GGSW: the key cycles through memory */
    const veil_fft_kernels *ks[2] = {&kern_a, &kern_b};
    double tf[2] = {0}, tb[2] = {0}, td[2] = {0}, tm[2] = {0}, tc = 0;
    for (int r = 0; r < rounds; r++) {
        double c0 = cpu_now(); /* the inverse's copies alone */
        for (int i = 0; i < K; i++) {
            memcpy(tmp, o1, N * sizeof *tmp);
            __asm__ volatile("" : : "r"(tmp) : "memory"); /* keep every copy */
        }
        tc += cpu_now() - c0;
        for (int w = 0; w < 2; w++) {
            const int id = (r + w) & 1;
            const veil_fft_kernels *k = ks[id];
            double a = cpu_now();
            for (int i = 0; i < K; i++)
                k->forward_i64(t, in, o1);
            tf[id] += cpu_now() - a;
            a = cpu_now();
            for (int i = 0; i < K; i++) {
                memcpy(tmp, o1, N * sizeof *tmp);
                k->backward_add_torus(t, tmp, acc);
            }
            tb[id] += cpu_now() - a;
            a = cpu_now();
            for (int i = 0; i < K; i++)
                k->forward_digits(t, x, (uint32_t)(i * 37 % (2 * N)), 23, 1, o2);
            td[id] += cpu_now() - a;
            a = cpu_now();
            for (int i = 0; i < K; i++) {
                const double *gg = key + g * gw;
                g = (g + 1) % n_ggsw;
                veil_fft_prefetch(f, key + g * gw, gw * sizeof(double), 4);
                const uint32_t rot = (uint32_t)(1 + i * 37 % (2 * N - 1));
                for (int q = 0; q < 2; q++)
                    k->forward_digits(t, cacc + (size_t)q * N, rot, 23, 1, fd + (size_t)q * N);
                k->mac_ggsw(facc, fd, gg, 2, 2, N);
                for (int q = 0; q < 2; q++)
                    k->backward_add_torus(t, facc + (size_t)q * N, cacc + (size_t)q * N);
            }
            tm[id] += cpu_now() - a;
        }
    }
    veil_fft_prefetch(f, NULL, 0, 0);
    tb[0] -= tc, tb[1] -= tc;
    int same = 1;
    kern_a.forward_i64(t, in, o1);
    kern_b.forward_i64(t, in, o2);
    same &= !memcmp(o1, o2, N * sizeof *o1);
    memcpy(tmp, o1, N * sizeof *tmp);
    kern_a.backward_add_torus(t, tmp, acc_a);
    memcpy(tmp, o1, N * sizeof *tmp);
    kern_b.backward_add_torus(t, tmp, acc_b);
    same &= !memcmp(acc_a, acc_b, N * sizeof *acc_a);
    kern_a.forward_digits(t, x, 77, 23, 1, o1);
    kern_b.forward_digits(t, x, 77, 23, 1, o2);
    same &= !memcmp(o1, o2, N * sizeof *o1);
    const double n = (double)rounds * K * 1e-6;
    printf(
        "{\"N\": %u, \"path\": \"%s\", \"calls\": %d, \"forward_us\": [%.3f, %.3f], "
        "\"copy_us\": %.3f, \"inverse_us\": [%.3f, %.3f], \"forward_digits_us\": [%.3f, %.3f], "
        "\"cmux_us\": [%.3f, %.3f], \"b_over_a\": [%.3f, %.3f, %.3f, %.3f], \"same_bits\": %s}\n",
        N, veil_fft_path_name(path), rounds * K, tf[0] / n, tf[1] / n, tc / n, tb[0] / n, tb[1] / n,
        td[0] / n, td[1] / n, tm[0] / n, tm[1] / n, tf[1] / tf[0], tb[1] / tb[0], td[1] / td[0],
        tm[1] / tm[0], same ? "true" : "false");
    free(in);
    free(x);
    free(acc);
    free(acc_a);
    free(acc_b);
    veil_fft_dealloc(o1);
    veil_fft_dealloc(o2);
    veil_fft_dealloc(tmp);
    veil_fft_dealloc(key);
    veil_fft_dealloc(fd);
    veil_fft_dealloc(facc);
    free(cacc);
    veil_fft_free(f);
    return !same;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: fft_ab PATH ROUNDS N...\n");
        return 2;
    }
    veil_fft_path path;
    if (veil_fft_path_parse(argv[1], &path) != VEIL_OK) {
        fprintf(stderr, "fft_ab: %s\n", veil_error_message());
        return 2;
    }
    uint64_t rounds, n[64];
    if (argc - 3 > 64) {
        fprintf(stderr, "fft_ab: at most 64 sizes\n");
        return 2;
    }
    if (veil_arg_u64("ROUNDS", argv[2], 1, 1000000, &rounds) != VEIL_OK) {
        fprintf(stderr, "fft_ab: %s\n", veil_error_message());
        return 2;
    }
    for (int i = 3; i < argc; i++) /* veil_fft_new_path checks the rest (a power of 2) */
        if (veil_arg_u64("N", argv[i], 2, 65536, &n[i - 3]) != VEIL_OK) {
            fprintf(stderr, "fft_ab: %s\n", veil_error_message());
            return 2;
        }
    int rc = 0;
    for (int i = 3; i < argc; i++)
        rc |= run((uint32_t)n[i - 3], path, (int)rounds);
    return rc;
}
