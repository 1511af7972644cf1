/* bench_pbs_split — latency of one KS-PBS on one thread (veil_ks_pbs)
 * against the same KS-PBS with its blind rotation split over T threads
 * (veil_pbs_split, veil/tfhe.h), wall time, the variants alternated run by
 * run so they see the same load: "one" (veil_ks_pbs), "split" (the
 * barrier's default: 4096 pauses, then sleep), "yield" (4096 pauses, then
 * yield in a loop) and "spin" (spin only). The keyswitch runs on the calling thread in every
 * variant (the cpu backend splits it separately). Each split result is
 * checked against veil_ks_pbs's, bit for bit. The load average is read
 * before and after each set. JSON to stdout (or --out FILE).
 *
 * --only V (one, split, yield, spin): that variant alone, for counting its
 * instructions (valgrind --tool=callgrind --separate-threads=yes): the
 * split's work on each thread against the one-thread PBS's, whatever the
 * machine's load.
 *
 * usage: bench_pbs_split [--runs R] [--threads T] [--params ID[,ID...]] [--only V]
 *                        [--out FILE] */
#include "veil/fft.h"
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

static double load_avg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *t, int r) {
    qsort(t, (size_t)r, sizeof *t, cmp_d);
    return t[r / 2];
}

static void die(const char *what) {
    fprintf(stderr, "bench_pbs_split: %s: %s\n", what, veil_error_message());
    exit(1);
}

#define VARIANTS 4
static const char *const variant_names[VARIANTS] = {"one", "split", "yield", "spin"};

static int only = -1; /* --only: one variant */

static void bench_set(FILE *o, const veil_params *p, int runs, unsigned threads, int last) {
    uint8_t seed[5][32];
    for (unsigned i = 0; i < 5; i++)
        memset(seed[i], 0x31 + (int)i, 32);
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_pbs_ctx *ctx;
    veil_lut *lut;
    if (veil_secret_key_new(p, seed[0], &sk) != VEIL_OK) die("secret key");
    if (veil_eval_key_new(sk, seed[1], seed[2], &ek) != VEIL_OK) die("eval key");
    if (veil_encryptor_new(seed[3], seed[4], &enc) != VEIL_OK) die("encryptor");
    if (veil_pbs_ctx_new(p, &ctx) != VEIL_OK) die("pbs ctx");
    const unsigned prec = p->precision, nt = 1u << prec;
    int64_t *table = malloc(sizeof(int64_t) * nt);
    for (unsigned i = 0; i < nt; i++)
        table[i] = (int64_t)((i * 3 + 1) % nt);
    if (veil_lut_new(p, table, prec, 0, veil_delta(prec), &lut) != VEIL_OK) die("lut");
    veil_pbs_split *sp[VARIANTS] = {0};
    for (int v = 1; v < VARIANTS; v++)
        if (veil_pbs_split_new(p, threads, &sp[v]) != VEIL_OK) die("split");
    veil_pbs_split_set_wait(sp[2], 4096, 0);
    veil_pbs_split_set_wait(sp[3], UINT32_MAX, 0);
    const veil_pbs_key *pk = veil_eval_key_part(ek, 0);
    const size_t lwe = (size_t)pk->in_dim + 1, n1 = (size_t)p->lwe_dim + 1;
    uint64_t *in = malloc(sizeof(uint64_t) * lwe), *ref = malloc(sizeof(uint64_t) * lwe),
             *out = malloc(sizeof(uint64_t) * lwe), *small = malloc(sizeof(uint64_t) * n1);
    veil_encrypt_big(enc, sk, veil_encode(1, prec), in);
    double *t = malloc(sizeof(double) * (size_t)runs * VARIANTS);
    const double load0 = load_avg();
    int mismatches = 0;
    veil_ks_pbs(ctx, pk, lut, in, ref); /* warm-up and the reference */
    for (int r = 0; r < runs; r++)
        for (int v = 0; v < VARIANTS; v++) {
            if (only >= 0 && v != only) {
                t[v * runs + r] = 0;
                continue;
            }
            const double t0 = now_s();
            if (v == 0) {
                veil_ks_pbs(ctx, pk, lut, in, out);
            } else {
                veil_keyswitch(pk, in, small);
                veil_pbs_split_run(sp[v], pk, lut, small, out);
            }
            t[v * runs + r] = now_s() - t0;
            mismatches += memcmp(out, ref, sizeof(uint64_t) * lwe) != 0;
        }
    const double load1 = load_avg();
    double med[VARIANTS];
    for (int v = 0; v < VARIANTS; v++)
        med[v] = median_of(t + v * runs, runs);
    fprintf(o,
            "    {\"params\": \"%s\", \"k\": %u, \"N\": %u, \"l\": %u, \"n\": %u, \"threads\": %u, "
            "\"runs\": %d, \"load_before\": %.2f, \"load_after\": %.2f, \"mismatches\": %d,\n",
            p->id, p->glwe_dim, p->poly_size, p->pbs_level, p->lwe_dim,
            veil_pbs_split_threads(sp[1]), runs, load0, load1, mismatches);
    fprintf(o, "     \"median_ms\": {");
    for (int v = 0; v < VARIANTS; v++)
        fprintf(o, "\"%s\": %.3f%s", variant_names[v], 1e3 * med[v], v + 1 < VARIANTS ? ", " : "");
    fprintf(o, "},\n     \"speedup_vs_one\": {");
    for (int v = 1; v < VARIANTS; v++)
        fprintf(o, "\"%s\": %.3f%s", variant_names[v], med[0] / med[v],
                v + 1 < VARIANTS ? ", " : "");
    fprintf(o, "}}%s\n", last ? "" : ",");
    fflush(o);
    if (mismatches) fprintf(stderr, "bench_pbs_split: %s: %d results differ\n", p->id, mismatches);
    for (int v = 1; v < VARIANTS; v++)
        veil_pbs_split_free(sp[v]);
    free(t), free(in), free(ref), free(out), free(small), free(table);
    veil_lut_free(lut);
    veil_pbs_ctx_free(ctx);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
}

int main(int argc, char **argv) {
    int runs = 11;
    unsigned threads = 2;
    const char *list = "tfhers-2_2-gaussian-2m64,nn-p4-norm2e10-2m40,nn-p6-norm2e10-2m40,"
                       "nn-p2-norm2e4-2m40";
    const char *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--params") && i + 1 < argc)
            list = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_path = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            i++;
            for (int v = 0; v < VARIANTS; v++)
                if (!strcmp(argv[i], variant_names[v])) only = v;
            if (only < 0) {
                fprintf(stderr, "bench_pbs_split: --only: one of one, split, yield, spin\n");
                return 2;
            }
        } else {
            fprintf(strcmp(argv[i], "--help") ? stderr : stdout,
                    "usage: %s [--runs R] [--threads T] [--params ID[,ID...]] [--only V] "
                    "[--out FILE]\n",
                    argv[0]);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (runs < 1 || threads < 1) {
        fprintf(stderr, "bench_pbs_split: --runs and --threads must be >= 1\n");
        return 2;
    }
    char ids[1024];
    snprintf(ids, sizeof ids, "%s", list);
    const veil_params *sets[32];
    int ns = 0;
    for (char *s = strtok(ids, ","); s && ns < 32; s = strtok(NULL, ",")) {
        sets[ns] = veil_params_find(s);
        if (!sets[ns]) {
            fprintf(stderr, "bench_pbs_split: --params: unknown set '%s'\n", s);
            return 2;
        }
        ns++;
    }
    FILE *o = out_path ? fopen(out_path, "w") : stdout;
    if (!o) {
        fprintf(stderr, "bench_pbs_split: cannot write %s\n", out_path);
        return 1;
    }
    char cpu[128] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[256];
        while (fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) snprintf(cpu, sizeof cpu, "%s", c + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(ci);
    }
    fprintf(o, "{\n  \"bench\": \"bench_pbs_split\", \"cpu\": \"%s\", \"fft_path\": \"%s\",\n", cpu,
            veil_fft_path_name(veil_fft_path_default()));
    fprintf(o, "  \"note\": \"wall time, median of runs; variants alternated run by run; "
               "keyswitch on the caller in every variant\",\n  \"sets\": [\n");
    for (int i = 0; i < ns; i++)
        bench_set(o, sets[i], runs, threads, i + 1 == ns);
    fprintf(o, "  ]\n}\n");
    if (o != stdout) fclose(o);
    return 0;
}
