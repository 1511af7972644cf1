/* bench_pbs — single-threaded CPU micro-benchmark of the TFHE core.
 *
 * For each parameter set: key generation time, key sizes (raw and seeded), and
 * the median and spread (min, max, p10, p90) over R runs of encrypt, keyswitch,
 * PBS and KS-PBS. JSON to stdout (or --out FILE).
 *
 * usage: bench_pbs [--runs R] [--params ID[,ID...]] [--max-n N] [--out FILE] */
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

static void stats(FILE *o, const char *name, double *t, int r, int last) {
    qsort(t, (size_t)r, sizeof *t, cmp_d);
    fprintf(o,
            "      \"%s\": {\"median_ms\": %.4f, \"min_ms\": %.4f, \"p10_ms\": %.4f, "
            "\"p90_ms\": %.4f, \"max_ms\": %.4f, \"runs\": %d}%s\n",
            name, 1e3 * t[r / 2], 1e3 * t[0], 1e3 * t[r / 10], 1e3 * t[(r * 9) / 10],
            1e3 * t[r - 1], r, last ? "" : ",");
}

static int wanted(const veil_params *p, const char *list, uint32_t max_n) {
    if (p->poly_size > max_n) return 0;
    if (!list) return !(p->flags & VEIL_PARAMS_NN);
    size_t len = strlen(p->id);
    for (const char *s = list; (s = strstr(s, p->id)); s += len)
        if ((s == list || s[-1] == ',') && (s[len] == 0 || s[len] == ',')) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int runs = 30;
    const char *list = NULL, *out_path = NULL;
    uint32_t max_n = 8192;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--params") && i + 1 < argc)
            list = argv[++i];
        else if (!strcmp(argv[i], "--max-n") && i + 1 < argc)
            max_n = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_path = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--runs R] [--params ID[,ID...]] [--max-n N] [--out FILE]\n"
                    "Single-threaded CPU benchmark of keygen, encrypt, keyswitch, PBS, KS-PBS.\n",
                    argv[0]);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (runs < 3) runs = 3;
    FILE *o = out_path ? fopen(out_path, "w") : stdout;
    if (!o) {
        perror(out_path);
        return 1;
    }
    char cpu[256] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(cpu, sizeof cpu, "%s", c + 2);
                    cpu[strcspn(cpu, "\n")] = 0;
                }
                break;
            }
        fclose(ci);
    }
    fprintf(o, "{\n  \"benchmark\": \"pbs\",\n  \"backend\": \"cpu\",\n  \"threads\": 1,\n");
    fprintf(o, "  \"cpu\": \"%s\",\n  \"sets\": [\n", cpu);
    int first = 1;
    double *t = malloc(sizeof(double) * (size_t)runs);
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (!wanted(p, list, max_n)) continue;
        veil_secret_key *sk;
        veil_eval_key *ek;
        veil_encryptor *enc;
        veil_pbs_ctx *ctx;
        veil_lut *lut;
        double t0 = now_s();
        if (veil_secret_key_new(p, NULL, &sk) || veil_eval_key_new(sk, NULL, NULL, &ek)) {
            fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
            return 1;
        }
        double keygen = now_s() - t0;
        int64_t *table = malloc(sizeof(int64_t) << p->precision);
        for (int64_t i = 0; i < (1 << p->precision); i++)
            table[i] = ((1 << p->precision) - 1) - i;
        if (veil_encryptor_new(NULL, NULL, &enc) || veil_pbs_ctx_new(p, &ctx) ||
            veil_lut_new(p, table, p->precision, 0, veil_delta(p->precision), &lut)) {
            fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
            return 1;
        }
        const uint32_t big = veil_params_big_dim(p), n = p->lwe_dim;
        uint64_t *in = malloc(8 * (big + 1)), *o2 = malloc(8 * (big + 1)),
                 *sm = malloc(8 * (n + 1));
        const size_t k1 = p->glwe_dim + 1;
        size_t bsk_raw = veil_eval_key_bsk_words(p) * 8, ksk_raw = veil_eval_key_ksk_words(p) * 8;
        /* seeded: the bodies only (N words per BSK row, one word per KSK row) + seed */
        size_t bsk_seeded = bsk_raw / k1, ksk_seeded = ksk_raw / (n + 1);
        fprintf(o, "%s    {\n      \"id\": \"%s\", \"n\": %u, \"k\": %u, \"N\": %u,\n",
                first ? "" : ",\n", p->id, n, p->glwe_dim, p->poly_size);
        first = 0;
        fprintf(o, "      \"keygen_s\": %.3f,\n", keygen);
        fprintf(o,
                "      \"bsk_bytes\": %zu, \"ksk_bytes\": %zu, \"eval_key_seeded_bytes\": %zu,\n",
                bsk_raw, ksk_raw, bsk_seeded + ksk_seeded + VEIL_SEED_BYTES);
        for (int r = 0; r < runs; r++) {
            double a = now_s();
            veil_encrypt_big(enc, sk, veil_encode(r % (1 << p->precision), p->precision), in);
            t[r] = now_s() - a;
        }
        stats(o, "encrypt", t, runs, 0);
        for (int r = 0; r < runs; r++) {
            double a = now_s();
            veil_keyswitch(ek, in, sm);
            t[r] = now_s() - a;
        }
        stats(o, "keyswitch", t, runs, 0);
        for (int r = 0; r < runs; r++) {
            double a = now_s();
            veil_pbs(ctx, ek, lut, sm, o2);
            t[r] = now_s() - a;
        }
        stats(o, "pbs", t, runs, 0);
        for (int r = 0; r < runs; r++) {
            double a = now_s();
            veil_ks_pbs(ctx, ek, lut, in, o2);
            t[r] = now_s() - a;
        }
        stats(o, "ks_pbs", t, runs, 1);
        fprintf(o, "    }");
        fflush(o);
        free(in);
        free(o2);
        free(sm);
        free(table);
        veil_lut_free(lut);
        veil_pbs_ctx_free(ctx);
        veil_encryptor_free(enc);
        veil_eval_key_free(ek);
        veil_secret_key_free(sk);
    }
    fprintf(o, "\n  ]\n}\n");
    free(t);
    if (o != stdout) fclose(o);
    return 0;
}
