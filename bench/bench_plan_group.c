/* bench_plan_group — one plan against a plan group (veil/exec.h), in one
 * process on the same keys and ciphertexts, calls alternated pair by pair so
 * that a shared machine's changing load hits both alike (issue 12 item 3).
 *
 *   bench_plan_group --model M.h5 [--backend cpu|cuda] [--devices LIST|all]
 *                    [--batches 2,16] [--pairs N] [--out FILE.json]
 *                    [--machine TEXT] [compile options]
 *
 * old: one plan, the backend options of the environment (VEIL_THREADS, ...);
 * new: the same options with --devices (default 0,0: on the cpu two plans
 * dividing the threads). For each batch size both run the same encrypted
 * golden samples (repeated when the model has fewer), old first in even
 * pairs, new first in odd ones; each call's wall time is taken (process CPU
 * time too), and the ratio old/new per pair (> 1: the group is faster). Every
 * new call's outputs must equal old's word for word and old's decryptions
 * simulate's, or the program fails. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "veil/atomic_file.h"
#include "veil/backend.h"
#include "veil/compile_options.h"
#include "veil/exec.h"
#include "veil/loader.h"
#include "veil/program.h"

static double clock_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void json_list(FILE *f, const char *k, const double *v, size_t n) {
    fprintf(f, "\"%s\": [", k);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.6g", i ? ", " : "", v[i]);
    fprintf(f, "], ");
}

typedef struct side {
    veil_backend *bes[VEIL_BACKEND_MAX_DEVICES];
    size_t n;
    veil_plan_group *g;
    uint64_t *out[8];
} side;

/* --out, written whole at the end (veil_atomic_file); a failed run drops
 * it and keeps a previous file */
static veil_atomic_file g_out;

static int fail(const char *what) {
    fprintf(stderr, "bench_plan_group: %s: %s\n", what, veil_error_message());
    veil_atomic_file_discard(&g_out);
    return 1;
}

int main(int argc, char **argv) {
    const char *model = NULL, *batches = "2,16", *out_path = NULL, *machine = "";
    size_t pairs = 3;
    veil_backend_kind kind = VEIL_BACKEND_CPU;
    veil_compile_options co;
    veil_compile_options_default(&co);
    veil_backend_options bo_new;
    veil_backend_options_default(&bo_new);
    int have_devices = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: bench_plan_group --model M.h5 [options] [compile options]\n\noptions:\n"
                   "  --model M.h5             the model (encrypted runs of its golden inputs)\n"
                   "  --backend cpu|cuda       default cpu\n"
                   "  --batches LIST           batch sizes (default 2,16)\n"
                   "  --pairs N                alternated old/new pairs per batch (default 3)\n"
                   "  --out FILE.json          default: standard output\n"
                   "  --machine TEXT           recorded in the JSON\n"
                   "one plan (old) against the plan group of --devices (new), whose default\n"
                   "here is 0,0 (the cpu: two plans dividing the threads), not one plan:\n");
            veil_backend_options_help(stdout);
            veil_compile_options_help(stdout);
            return 0;
        }
        int consumed = 0;
        if (veil_compile_options_parse_arg(&co, argc, argv, &i, &consumed) ||
            (!consumed && veil_backend_options_parse_arg(&bo_new, argc, argv, &i, &consumed))) {
            fprintf(stderr, "bench_plan_group: %s\n", veil_error_message());
            return 2;
        }
        if (consumed) {
            have_devices |= !strcmp(a, "--devices");
            continue;
        }
        uint64_t n = 0;
        if (!v) {
            fprintf(stderr, "bench_plan_group: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model")) {
            model = v;
        } else if (!strcmp(a, "--backend")) {
            if (veil_backend_kind_parse(v, &kind)) {
                fprintf(stderr, "bench_plan_group: %s\n", veil_error_message());
                return 2;
            }
        } else if (!strcmp(a, "--batches")) {
            batches = v;
        } else if (!strcmp(a, "--pairs")) {
            if (veil_arg_u64(a, v, 1, 1000, &n)) {
                fprintf(stderr, "bench_plan_group: %s\n", veil_error_message());
                return 2;
            }
            pairs = (size_t)n;
        } else if (!strcmp(a, "--out")) {
            out_path = v;
        } else if (!strcmp(a, "--machine")) {
            machine = v;
        } else {
            fprintf(stderr, "bench_plan_group: unknown option %s\n", a);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "bench_plan_group: --model is required\n");
        return 2;
    }
    if (!have_devices && veil_backend_devices_parse(&bo_new, "0,0")) return fail("--devices");
    veil_backend_options bo_old = bo_new;
    bo_old.n_devices = 0;
    bo_old.devices_all = 0;
    if (veil_backend_options_from_env(&bo_old) || veil_backend_options_from_env(&bo_new))
        return fail("environment");
    veil_model *m = NULL;
    veil_program *p = NULL;
    if (veil_model_load(model, &m)) return fail(model);
    if (veil_program_compile(m, &co, &p)) return fail("compile");
    if (!m->golden.count || p->n_inputs > 8 || p->n_outputs > 8) {
        fprintf(stderr, "bench_plan_group: %s: no golden inputs, or over 8 inputs/outputs\n",
                model);
        return 1;
    }
    size_t max_b = 0;
    {
        char *bl = strdup(batches), *save = NULL;
        for (char *t = strtok_r(bl, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            uint64_t b = 0;
            if (veil_arg_u64("--batches", t, 1, 1u << 16, &b)) {
                free(bl);
                return fail("--batches");
            }
            max_b = b > max_b ? b : max_b;
        }
        free(bl);
    }
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    if (veil_program_keygen(p, NULL, &sk) ||
        veil_program_eval_key_new(p, sk, VEIL_KEY_BOTH, NULL, NULL, &ek) ||
        veil_encryptor_new(NULL, NULL, &enc))
        return fail("keygen");
    /* max_b samples: the golden inputs, repeated */
    const size_t lwe = veil_program_ct_words(p), G = m->golden.count;
    uint64_t *cin[8] = {0};
    int64_t *sim[8] = {0}, *dec = NULL;
    int64_t *in_int[8] = {0};
    size_t max_out = 1;
    for (uint32_t i = 0; i < p->n_inputs; i++) {
        const size_t sz = veil_program_input_size(p, i);
        in_int[i] = malloc(max_b * sz * 8);
        cin[i] = malloc(max_b * sz * lwe * 8);
        if (!in_int[i] || !cin[i]) return fail("out of memory");
        for (size_t s = 0; s < max_b; s++)
            memcpy(in_int[i] + s * sz, m->golden.inputs[i] + (s % G) * sz, sz * 8);
        if (veil_program_encrypt(p, enc, sk, i, in_int[i], max_b, cin[i])) return fail("encrypt");
    }
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        const size_t sz = veil_program_output_size(p, o);
        max_out = sz > max_out ? sz : max_out;
        sim[o] = malloc(max_b * sz * 8);
        if (!sim[o]) return fail("out of memory");
    }
    dec = malloc(max_b * max_out * 8);
    if (veil_program_simulate(p, (const int64_t *const *)in_int, max_b, sim, NULL, NULL))
        return fail("simulate");
    side sides[2];
    memset(sides, 0, sizeof sides);
    const veil_backend_options *bo[2] = {&bo_old, &bo_new};
    for (int k = 0; k < 2; k++) {
        if (veil_backends_new(kind, bo[k], sides[k].bes, &sides[k].n)) return fail("backends");
        for (uint32_t o = 0; o < p->n_outputs; o++)
            if (!(sides[k].out[o] = malloc(max_b * veil_program_output_size(p, o) * lwe * 8)))
                return fail("out of memory");
    }
    if (out_path && veil_atomic_file_open(&g_out, out_path, 0644) != VEIL_OK) return fail("--out");
    FILE *f = out_path ? g_out.f : stdout;
    fprintf(f,
            "{\"benchmark\": \"bench_plan_group\", \"machine\": \"%s\", \"model\": \"%s\", "
            "\"params\": \"%s\", \"pbs_per_sample\": %llu, \"old\": \"%s\", \"old_plans\": %zu, "
            "\"new\": \"%s\", \"new_plans\": %zu, \"results\": [",
            machine, m->name, p->params ? p->params->id : "", (unsigned long long)p->pbs_per_sample,
            veil_backend_describe(sides[0].bes[0]), sides[0].n,
            veil_backend_describe(sides[1].bes[0]), sides[1].n);
    int rc = 0, first = 1;
    char *bl = strdup(batches), *save = NULL;
    for (char *t = strtok_r(bl, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        const size_t b = (size_t)strtoull(t, NULL, 10);
        for (int k = 0; k < 2; k++)
            if (veil_plan_group_new(p, ek, sides[k].bes, sides[k].n, b, &sides[k].g))
                return fail("plan");
        double wall[2][1000], cpu[2][1000], ratio[1000], cpu_ratio[1000];
        size_t identical = 0, dec_equal = 0, dec_values = 0;
        for (size_t r = 0; r < pairs && !rc; r++) {
            for (int step = 0; step < 2; step++) {
                const int k = (int)(r % 2) ^ step; /* old first in even pairs */
                const double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
                if (veil_plan_group_execute(sides[k].g, (const uint64_t *const *)cin, b,
                                            sides[k].out))
                    return fail("execute");
                wall[k][r] = clock_s(CLOCK_MONOTONIC) - w0;
                cpu[k][r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            }
            ratio[r] = wall[0][r] / wall[1][r];
            cpu_ratio[r] = cpu[0][r] / cpu[1][r];
            int same = 1;
            for (uint32_t o = 0; o < p->n_outputs; o++) {
                const size_t sz = veil_program_output_size(p, o);
                same &= !memcmp(sides[0].out[o], sides[1].out[o], b * sz * lwe * 8);
                if (veil_program_decrypt(p, sk, o, sides[0].out[o], b, dec)) return fail("decrypt");
                for (size_t v = 0; v < b * sz; v++)
                    dec_equal += dec[v] == sim[o][v];
                dec_values += b * sz;
            }
            identical += same;
            fprintf(stderr,
                    "%s batch %zu pair %zu: old %.3f s, new %.3f s (%zu plans): old/new %.3f%s\n",
                    m->name, b, r, wall[0][r], wall[1][r], sides[1].n, ratio[r],
                    same ? "" : "  OUTPUTS DIFFER");
        }
        if (identical != pairs || dec_equal != dec_values) {
            fprintf(stderr,
                    "bench_plan_group: batch %zu: %zu/%zu pairs identical, %zu/%zu values equal "
                    "to simulate\n",
                    b, identical, pairs, dec_equal, dec_values);
            rc = 1;
        }
        fprintf(f, "%s\n  {\"batch\": %zu, \"pairs\": %zu, ", first ? "" : ",", b, pairs);
        first = 0;
        json_list(f, "wall_s_old", wall[0], pairs);
        json_list(f, "wall_s_new", wall[1], pairs);
        json_list(f, "process_cpu_s_old", cpu[0], pairs);
        json_list(f, "process_cpu_s_new", cpu[1], pairs);
        json_list(f, "wall_ratio_old_over_new", ratio, pairs);
        double rs[1000], cs[1000];
        memcpy(rs, ratio, pairs * sizeof *rs);
        memcpy(cs, cpu_ratio, pairs * sizeof *cs);
        fprintf(f,
                "\"median_wall_ratio_old_over_new\": %.4f, \"median_cpu_ratio_old_over_new\": "
                "%.4f, \"identical_pairs\": %zu, \"values_equal_to_simulate\": %zu, \"values\": "
                "%zu}",
                median(rs, pairs), median(cs, pairs), identical, dec_equal, dec_values);
        fflush(f);
        for (int k = 0; k < 2; k++) {
            veil_plan_group_free(sides[k].g);
            sides[k].g = NULL;
        }
    }
    free(bl);
    double load[3] = {NAN, NAN, NAN};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = NAN;
        fclose(la);
    }
    fprintf(f, "\n], \"load_average_end\": [%.2f, %.2f, %.2f]}\n", load[0], load[1], load[2]);
    if (out_path && veil_atomic_file_commit(&g_out) != VEIL_OK) rc = fail("--out");
    for (int k = 0; k < 2; k++) {
        for (uint32_t o = 0; o < 8; o++)
            free(sides[k].out[o]);
        veil_backends_free(sides[k].bes, sides[k].n);
    }
    for (int i = 0; i < 8; i++) {
        free(cin[i]);
        free(in_int[i]);
        free(sim[i]);
    }
    free(dec);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    veil_program_free(p);
    veil_model_free(m);
    return rc;
}
