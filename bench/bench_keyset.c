/* bench_keyset — key sets (issue 11): what a second partition costs and buys.
 *
 * Two key sets over the same master key width: one partition (a set) and two
 * partitions (a wide set as partition 0, a narrow one as partition 1, the
 * split tests/test_keyset.c runs encrypted). For each: key generation time,
 * and per partition the BSK and KSK sizes (standard domain), its share of the
 * seeded eval.key and the prepared memory (veil_eval_key_prepared_bytes: the
 * BSK in one backend's domain and the KSK in 32-bit words);
 * then the median single-thread KS-PBS time of every partition of the
 * two-partition set (its KSK reads the D-row master key), interleaved run by
 * run so both see the same machine load, and their ratio. JSON to stdout (or
 * --out FILE, written whole or not at all: veil_atomic_file).
 *
 * usage: bench_keyset [--runs R] [--wide ID] [--narrow ID] [--out FILE]
 *   defaults: R = 15, wide nn-p6-norm2e2-2m40, narrow nn-p3-norm2e7-2m40 */
#include "veil/atomic_file.h"
#include "veil/compile_options.h"
#include "veil/serialize.h"
#include "veil/tfhe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int r) {
    qsort(t, (size_t)r, sizeof *t, cmp_d);
    return r % 2 ? t[r / 2] : 0.5 * (t[r / 2 - 1] + t[r / 2]);
}

static int die(const char *what) {
    fprintf(stderr, "bench_keyset: %s: %s\n", what, veil_error_message());
    return 1;
}

/* Key generation of a set and its size lines. */
static int keyset(FILE *o, const char *name, const veil_params *const *parts, uint32_t n,
                  veil_secret_key **sk_out, veil_eval_key **ek_out, int last) {
    double t0 = now_s();
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    if (veil_secret_key_new_set(parts, n, NULL, &sk) || veil_eval_key_new(sk, NULL, NULL, &ek))
        return die("keygen");
    const double keygen = now_s() - t0;
    const uint32_t D = veil_params_big_dim(parts[0]);
    fprintf(o, "    \"%s\": {\n      \"keygen_s\": %.3f, \"master_dim\": %u,\n", name, keygen, D);
    fprintf(o, "      \"eval_key_file_bytes\": %zu, \"partitions\": [\n",
            veil_eval_key_serialized_bytes(parts, NULL, n));
    for (uint32_t i = 0; i < n; i++) {
        const size_t bsk = 8 * veil_eval_key_bsk_words(parts[i]);
        const size_t ksk = 8 * veil_eval_key_ksk_words(parts[i], D);
        fprintf(o,
                "        {\"id\": \"%s\", \"n\": %u, \"k\": %u, \"N\": %u, \"bsk_bytes\": %zu, "
                "\"ksk_bytes\": %zu, \"file_bytes\": %zu, \"memory_bytes\": %zu}%s\n",
                parts[i]->id, parts[i]->lwe_dim, parts[i]->glwe_dim, parts[i]->poly_size, bsk, ksk,
                veil_eval_key_partition_serialized_bytes(parts[i], D),
                veil_eval_key_prepared_bytes(parts[i], D), i + 1 < n ? "," : "");
    }
    fprintf(o, "      ]\n    }%s\n", last ? "" : ",");
    *sk_out = sk;
    *ek_out = ek;
    return 0;
}

/* The measurements, JSON on o; *complete once the JSON is whole. */
static int bench(FILE *o, int runs, const veil_params *wide, const veil_params *narrow,
                 int *complete) {
    fprintf(o, "{\n  \"bench\": \"bench_keyset\", \"runs\": %d,\n  \"sets\": {\n", runs);
    const veil_params *one[1] = {narrow}, *two[2] = {wide, narrow};
    veil_secret_key *sk1 = NULL, *sk2 = NULL;
    veil_eval_key *ek1 = NULL, *ek2 = NULL;
    if (keyset(o, "one_partition", one, 1, &sk1, &ek1, 0) ||
        keyset(o, "two_partitions", two, 2, &sk2, &ek2, 1))
        return 1;
    fprintf(o, "  },\n");
    /* KS-PBS per partition: the narrow set alone (its own k*N rows) and both
     * partitions of the two-partition set (D rows) */
    const uint32_t D = veil_params_big_dim(wide);
    const int64_t table[8] = {1, 2, 3, 4, 5, 6, 7, 0};
    veil_pbs_ctx *ctx[3] = {0};
    veil_lut *lut[3] = {0};
    const veil_params *ps[3] = {narrow, wide, narrow};
    const veil_pbs_key *pk[3] = {veil_eval_key_part(ek1, 0), veil_eval_key_part(ek2, 0),
                                 veil_eval_key_part(ek2, 1)};
    for (int c = 0; c < 3; c++)
        if (veil_pbs_ctx_new(ps[c], &ctx[c]) ||
            veil_lut_new(ps[c], table, 3, 0, veil_delta(3), &lut[c]))
            return die("pbs");
    veil_encryptor *enc = NULL;
    if (veil_encryptor_new(NULL, NULL, &enc)) return die("encryptor");
    uint64_t *in1 = malloc(8 * ((size_t)veil_params_big_dim(narrow) + 1));
    uint64_t *in2 = malloc(8 * ((size_t)D + 1)), *res = malloc(8 * ((size_t)D + 1));
    double *t = malloc(sizeof(double) * 3 * (size_t)runs);
    if (!in1 || !in2 || !res || !t) return die("out of memory");
    veil_encrypt_big(enc, sk1, veil_encode(3, 3), in1);
    veil_encrypt_big(enc, sk2, veil_encode(3, 3), in2);
    int wrong = 0;
    for (int r = 0; r < runs; r++)
        for (int c = 0; c < 3; c++) {
            double a = now_s();
            veil_ks_pbs(ctx[c], pk[c], lut[c], c ? in2 : in1, res);
            t[c * runs + r] = now_s() - a;
            wrong += veil_decode(veil_phase_big(c ? sk2 : sk1, res), 3, 0) != 4;
        }
    const char *names[3] = {"one_partition/0", "two_partitions/0", "two_partitions/1"};
    double med[3];
    fprintf(o, "  \"ks_pbs_median_ms\": {");
    for (int c = 0; c < 3; c++) {
        med[c] = median(t + c * runs, runs);
        fprintf(o, "%s\"%s\": %.3f", c ? ", " : "", names[c], 1e3 * med[c]);
    }
    fprintf(o, "},\n  \"ratio_narrow_in_set_to_alone\": %.3f,\n", med[2] / med[0]);
    fprintf(o, "  \"ratio_wide_to_narrow_in_set\": %.3f,\n", med[1] / med[2]);
    fprintf(o, "  \"wrong_decryptions\": %d\n}\n", wrong);
    *complete = 1;
    if (wrong) fprintf(stderr, "bench_keyset: %d wrong decryptions\n", wrong);
    for (int c = 0; c < 3; c++) {
        veil_pbs_ctx_free(ctx[c]);
        veil_lut_free(lut[c]);
    }
    free(in1);
    free(in2);
    free(res);
    free(t);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek1);
    veil_eval_key_free(ek2);
    veil_secret_key_free(sk1);
    veil_secret_key_free(sk2);
    return wrong ? 1 : 0;
}

/* The defaults, here once: the options and --help read them. */
#define DEFAULT_RUNS 15
#define DEFAULT_WIDE "nn-p6-norm2e2-2m40"
#define DEFAULT_NARROW "nn-p3-norm2e7-2m40"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_keyset [--runs R] [--wide ID] [--narrow ID] [--out FILE]\n"
            "Key sets of one and of two partitions: keygen time, key sizes, and the\n"
            "single-thread KS-PBS time of each partition of the two-partition set.\n\n"
            "options:\n"
            "  --runs R        KS-PBS runs per partition, 1 to 10000 (default %d; the median)\n"
            "  --wide ID       partition 0's parameter set (default %s)\n"
            "  --narrow ID     partition 1's parameter set (default %s)\n"
            "  --out FILE      the JSON (default: standard output)\n",
            DEFAULT_RUNS, DEFAULT_WIDE, DEFAULT_NARROW);
}

int main(int argc, char **argv) {
    uint64_t runs = DEFAULT_RUNS;
    const char *wide_id = DEFAULT_WIDE, *narrow_id = DEFAULT_NARROW, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            if (veil_arg_u64("--runs", argv[++i], 1, 10000, &runs) != VEIL_OK) {
                fprintf(stderr, "bench_keyset: %s\n", veil_error_message());
                return 2;
            }
        } else if (!strcmp(argv[i], "--wide") && i + 1 < argc)
            wide_id = argv[++i];
        else if (!strcmp(argv[i], "--narrow") && i + 1 < argc)
            narrow_id = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            /* --help: the usage on stdout, exit 0; anything else: stderr, 2 */
            const int help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
            usage(help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    const veil_params *wide = veil_params_find(wide_id), *narrow = veil_params_find(narrow_id);
    if (!wide || !narrow) {
        fprintf(stderr, "bench_keyset: unknown parameter set %s\n", wide ? narrow_id : wide_id);
        return 2;
    }
    /* --out appears whole once the JSON is complete (a failed run keeps a
     * previous file) */
    veil_atomic_file af = {0};
    if (out && veil_atomic_file_open(&af, out, 0644) != VEIL_OK) {
        fprintf(stderr, "bench_keyset: %s\n", veil_error_message());
        return 1;
    }
    int complete = 0;
    const int rc = bench(out ? af.f : stdout, (int)runs, wide, narrow, &complete);
    if (out && !complete) veil_atomic_file_discard(&af);
    if (out && complete && veil_atomic_file_commit(&af) != VEIL_OK) {
        fprintf(stderr, "bench_keyset: --out: %s\n", veil_error_message());
        return 1;
    }
    return rc;
}
