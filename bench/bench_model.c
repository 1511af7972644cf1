/* bench_model — per sample model: accuracy (a regressor: RMSE) and time per sample of
 * simulate, cpu and cuda (when built and present) for several batch sizes,
 * as JSON. The time is a batch's over its size ("s_per_sample_amortised"),
 * after one untimed run of each plan: not one sample's latency, except at
 * batch 1. A failed keygen, plan or run exits 1, naming it.
 *
 *   bench_model [--models a.h5,b.h5] [--enc-models tiny.h5] [--modes simulate,cpu,cuda]
 *               [--batches 1,4,16] [--samples N] [--out FILE.json] [--devices LIST|all]
 *               [compile options]
 *
 * Encrypted modes run only the --enc-models (default: models/tiny.h5; the
 * others need N = 32768 sets at 8-bit lookups), on --samples inputs (default
 * 8: the golden inputs in order, repeated past their count, so that a batch
 * of 256 runs on a model with 64), and report the agreement with simulate. --devices runs
 * them on a plan group (veil/exec.h), one plan per listed device; "plans" in
 * the JSON says how many. */
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int in_list(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; (p = strstr(p, item)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

/* Every entry of a comma list is a mode bench_model runs, or every entry a
 * batch size (1 .. 2^20); else a message naming the option and entry. */
static int list_ok(const char *opt, const char *list, int batches) {
    const size_t len = strlen(list);
    if (len && (list[0] == ',' || list[len - 1] == ',' || strstr(list, ",,"))) {
        fprintf(stderr, "bench_model: %s %s: an empty entry\n", opt, list); /* strtok skips it */
        return 0;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    int any = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save), any = 1) {
        uint64_t b;
        veil_backend_kind kind;
        if (batches ? veil_arg_u64(opt, t, 1, 1u << 20, &b) != VEIL_OK
                    : strcmp(t, "simulate") && (veil_backend_kind_parse(t, &kind) != VEIL_OK ||
                                                kind == VEIL_BACKEND_AUTO)) {
            fprintf(stderr, "bench_model: %s %s: '%s' is not %s\n", opt, list, t,
                    batches ? "a batch size of 1 .. 2^20" : "simulate, cpu or cuda");
            return 0;
        }
    }
    if (!any) fprintf(stderr, "bench_model: %s: empty list\n", opt);
    return any;
}

/* How well the outputs score: a classifier's accuracy against the labels, a
 * regressor's RMSE against its targets (NAN where the file has neither).
 * Sample s is golden sample s mod golden (encrypted runs longer than the
 * golden set repeat it in order). */
typedef struct score {
    double accuracy, rmse;
} score;
static score score_of(const veil_model *m, const veil_program *p, int64_t *const *out, size_t n,
                      size_t golden) {
    score r = {NAN, NAN};
    const size_t sz = veil_program_output_size(p, 0);
    if (m->golden.labels) {
        size_t ok = 0;
        for (size_t s = 0; s < n; s++)
            ok += (int64_t)veil_model_class(&m->outputs[0], out[0] + s * sz) ==
                  m->golden.labels[s % golden];
        r.accuracy = (double)ok / (double)n;
    }
    if (m->golden.targets && n) {
        double se = 0;
        for (size_t s = 0; s < n; s++) {
            double rmse, mae;
            veil_regression_error(m, out[0] + s * sz, 1, m->golden.targets + s % golden * sz, &rmse,
                                  &mae);
            se += rmse * rmse;
        }
        r.rmse = sqrt(se / (double)n);
    }
    return r;
}

static void json_num(FILE *f, const char *k, double v, int last) {
    if (isfinite(v))
        fprintf(f, "\"%s\": %.9g%s", k, v, last ? "" : ", ");
    else
        fprintf(f, "\"%s\": null%s", k, last ? "" : ", ");
}

static int first_result = 1;

static void emit(FILE *f, const veil_model *m, const veil_program *p, const char *mode,
                 const char *device, size_t plans, size_t batch, size_t n, double lat, score sc,
                 double agree) {
    fprintf(
        f, "%s\n    {\"model\": \"%s\", \"mode\": \"%s\", \"device\": \"%s\", \"params\": \"%s\", ",
        first_result ? "" : ",", m->name, mode, device, p->params ? p->params->id : "");
    first_result = 0;
    fprintf(f, "\"plans\": %zu, \"batch\": %zu, \"samples\": %zu, \"pbs_per_sample\": %llu, ",
            plans, batch, n, (unsigned long long)p->pbs_per_sample);
    /* The PBS of each partition (its own parameter set): a prediction from
     * per-set KS-PBS times needs them, "params" is partition 0's set only. */
    fprintf(f, "\"partitions\": [");
    for (uint32_t i = 0; i < p->n_partitions; i++)
        fprintf(f, "%s{\"params\": \"%s\", \"pbs_per_sample\": %llu}", i ? ", " : "",
                p->partitions[i].params->id, (unsigned long long)p->partitions[i].pbs_per_sample);
    fprintf(f, "], ");
    json_num(f, "s_per_sample_amortised", lat, 0);
    json_num(f, "accuracy", sc.accuracy, 0);
    json_num(f, "brevitas_accuracy", m->brevitas_accuracy, 0);
    json_num(f, "rmse", sc.rmse, 0);
    json_num(f, "agreement_with_simulate", agree, 1);
    fprintf(f, "}");
    fflush(f);
    fprintf(stderr,
            "%-12s %-8s plans %zu batch %-4zu %6zu samples  %12.4g s/sample  %s %.4f  agree "
            "%.4f\n",
            m->name, mode, plans, batch, n, lat, isnan(sc.rmse) ? "accuracy" : "rmse",
            isnan(sc.rmse) ? sc.accuracy : sc.rmse, agree);
}

static int bench_encrypted(FILE *f, const veil_model *m, const veil_program *p,
                           veil_backend_kind kind, const veil_backend_options *bo, const char *mode,
                           const char *batches, size_t n, size_t golden, int64_t *const *sim) {
    veil_backend *bes[VEIL_BACKEND_MAX_DEVICES] = {0};
    size_t n_bes = 0;
    if (veil_backends_new(kind, bo, bes, &n_bes) != VEIL_OK) {
        fprintf(stderr, "bench_model: %s skipped: %s\n", mode, veil_error_message());
        return 0;
    }
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    int rc = 1;
    if (veil_program_keygen(p, NULL, &sk) ||
        veil_program_eval_key_new(p, sk, veil_backend_key_domains(bes[0]), NULL, NULL, &ek) ||
        veil_encryptor_new(NULL, NULL, &enc)) {
        fprintf(stderr, "bench_model: %s %s: keygen: %s\n", m->name, mode, veil_error_message());
        goto out;
    }
    const size_t lwe = veil_program_ct_words(p);
    int failed = 0;
    char *bl = strdup(batches);
    char *save = NULL;
    for (char *tok = strtok_r(bl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t b = (size_t)strtoul(tok, NULL, 10); /* checked: list_ok */
        if (b > n) {
            fprintf(stderr, "bench_model: %s %s batch %zu: more than --samples %zu, skipped\n",
                    m->name, mode, b, n);
            continue;
        }
        veil_plan_group *plan = NULL;
        if (veil_plan_group_new(p, ek, bes, n_bes, b, &plan) != VEIL_OK) {
            fprintf(stderr, "bench_model: %s %s batch %zu: plan: %s\n", m->name, mode, b,
                    veil_error_message());
            failed = 1;
            break;
        }
        uint64_t *ci[VEIL_MAX_PORTS] = {0}, *co[VEIL_MAX_PORTS] = {0};
        int64_t *dec[VEIL_MAX_PORTS] = {0}, *stage[VEIL_MAX_PORTS] = {0};
        for (uint32_t i = 0; i < p->n_inputs; i++) {
            ci[i] = malloc(b * veil_program_input_size(p, i) * lwe * 8);
            stage[i] = malloc(b * veil_program_input_size(p, i) * 8);
        }
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            co[o] = malloc(b * veil_program_output_size(p, o) * lwe * 8);
            dec[o] = malloc(n * veil_program_output_size(p, o) * 8);
        }
        size_t runs = (n / b) * b; /* whole batches only */
        double t = 0;
        int ok = 1;
        for (uint32_t i = 0; i < p->n_inputs; i++)
            ok = ok && ci[i] && stage[i];
        for (uint32_t o = 0; o < p->n_outputs; o++)
            ok = ok && co[o] && dec[o];
        if (!ok) veil_error(VEIL_ERR_NOMEM, "out of memory for the batch's buffers");
        for (size_t s0 = 0; ok && s0 < runs; s0 += b) {
            for (uint32_t i = 0; i < p->n_inputs; i++) {
                const size_t isz = veil_program_input_size(p, i);
                for (size_t j = 0; ok && j < b; j++)
                    memcpy(stage[i] + j * isz, m->golden.inputs[i] + (s0 + j) % golden * isz,
                           isz * 8);
                ok = ok && veil_program_encrypt(p, enc, sk, i, stage[i], b, ci[i]) == VEIL_OK;
            }
            /* one untimed execute per plan first (lazily built state, caches) */
            if (ok && s0 == 0)
                ok = veil_plan_group_execute(plan, (const uint64_t *const *)ci, b, co) == VEIL_OK;
            if (ok) {
                double t0 = now_s();
                ok = veil_plan_group_execute(plan, (const uint64_t *const *)ci, b, co) == VEIL_OK;
                t += now_s() - t0;
            }
            for (uint32_t o = 0; ok && o < p->n_outputs; o++)
                ok = veil_program_decrypt(p, sk, o, co[o], b,
                                          dec[o] + s0 * veil_program_output_size(p, o)) == VEIL_OK;
        }
        if (ok && runs) {
            size_t eq = 0, tot = 0;
            for (uint32_t o = 0; o < p->n_outputs; o++) {
                const size_t osz = veil_program_output_size(p, o);
                for (size_t j = 0; j < runs * osz; j++, tot++)
                    eq += dec[o][j] == sim[o][j / osz % golden * osz + j % osz];
            }
            emit(f, m, p, mode, veil_backend_describe(bes[0]), n_bes, b, runs, t / (double)runs,
                 score_of(m, p, dec, runs, golden), (double)eq / (double)tot);
        } else if (!ok) {
            fprintf(stderr, "bench_model: %s %s batch %zu: %s\n", m->name, mode, b,
                    veil_error_message());
            failed = 1;
        }
        for (int i = 0; i < 8; i++) {
            free(stage[i]);
            free(ci[i]);
            free(co[i]);
            free(dec[i]);
        }
        veil_plan_group_free(plan);
    }
    free(bl);
    rc = failed;
out:
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    veil_backends_free(bes, n_bes);
    return rc;
}

int main(int argc, char **argv) {
    const char *models = "models/tiny.h5,models/mlp_digits.h5,models/cnn_digits.h5,"
                         "models/source_bc.h5,models/target_bc.h5";
    const char *enc_models = "models/tiny.h5", *modes = "simulate,cpu,cuda", *batches = "1,4,16";
    const char *out_path = NULL;
    size_t samples = 8;
    veil_compile_options o;
    veil_compile_options_default(&o);
    veil_backend_options bo;
    veil_backend_options_default(&bo);
    for (int i = 1; i < argc; i++) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf(
                "usage: bench_model [options] [compile options]\n\noptions:\n"
                "  --models LIST            comma-separated .h5 files (default: tiny, mlp_digits,\n"
                "                           cnn_digits, source_bc and target_bc in models/)\n"
                "  --enc-models LIST        those also run encrypted (default models/tiny.h5)\n"
                "  --modes LIST             simulate,cpu,cuda (default all three)\n"
                "  --batches LIST           batch sizes (default 1,4,16)\n"
                "  --samples N              inputs per encrypted run (default 8): the golden\n"
                "                           inputs in order, repeated past their count (for\n"
                "                           batches larger than the golden set, e.g. 256)\n"
                "  --out FILE.json          default: standard output\n");
            veil_backend_options_help(stdout);
            veil_compile_options_help(stdout);
            return 0;
        }
        int consumed = 0;
        if (veil_compile_options_parse_arg(&o, argc, argv, &i, &consumed) != VEIL_OK) {
            fprintf(stderr, "bench_model: %s\n", veil_error_message());
            return 2;
        }
        if (consumed) continue;
        if (veil_backend_options_parse_arg(&bo, argc, argv, &i, &consumed) != VEIL_OK) {
            fprintf(stderr, "bench_model: %s\n", veil_error_message());
            return 2;
        }
        if (consumed) continue;
        if (!v) {
            fprintf(stderr, "bench_model: %s needs a value\n", a);
            return 2;
        }
        i++;
        uint64_t n = 0;
        if (!strcmp(a, "--models"))
            models = v;
        else if (!strcmp(a, "--enc-models"))
            enc_models = v;
        else if (!strcmp(a, "--modes"))
            modes = v;
        else if (!strcmp(a, "--batches"))
            batches = v;
        else if (!strcmp(a, "--samples") && veil_arg_u64(a, v, 1, 1u << 20, &n) == VEIL_OK)
            samples = (size_t)n;
        else if (!strcmp(a, "--out"))
            out_path = v;
        else {
            if (!strcmp(a, "--samples"))
                fprintf(stderr, "bench_model: %s\n", veil_error_message());
            else
                fprintf(stderr, "bench_model: unknown option %s (or missing value)\n", a);
            return 2;
        }
    }
    if (!list_ok("--modes", modes, 0) || !list_ok("--batches", batches, 1)) return 2;
    if (veil_backend_options_from_env(&bo) != VEIL_OK) {
        fprintf(stderr, "bench_model: %s\n", veil_error_message());
        return 2;
    }
    /* --out appears whole at the end, or not at all (a previous file kept) */
    veil_atomic_file af = {0};
    if (out_path && veil_atomic_file_open(&af, out_path, 0644) != VEIL_OK) {
        fprintf(stderr, "bench_model: %s\n", veil_error_message());
        return 1;
    }
    FILE *f = out_path ? af.f : stdout;
    fprintf(f, "{\"benchmark\": \"bench_model\", \"results\": [");
    char *ml = strdup(models);
    int rc = 0;
    char *msave = NULL;
    for (char *path = strtok_r(ml, ",", &msave); path; path = strtok_r(NULL, ",", &msave)) {
        veil_model *m = NULL;
        veil_program *p = NULL;
        if (veil_model_load(path, &m) != VEIL_OK) {
            fprintf(stderr, "bench_model: %s\n", veil_error_message());
            rc = 1;
            continue;
        }
        o.simulate_only = !in_list(enc_models, path);
        if (veil_program_compile(m, &o, &p) != VEIL_OK) {
            fprintf(stderr, "bench_model: %s: %s\n", path, veil_error_message());
            veil_model_free(m);
            rc = 1;
            continue;
        }
        size_t n = m->golden.count;
        if (n == 0) { /* every mode runs the golden samples */
            fprintf(stderr, "bench_model: %s: no golden samples (/golden): nothing to run\n", path);
            veil_program_free(p);
            veil_model_free(m);
            rc = 1;
            continue;
        }
        int64_t *sim[VEIL_MAX_PORTS] = {0};
        for (uint32_t q = 0; q < p->n_outputs; q++)
            sim[q] = malloc(n * veil_program_output_size(p, q) * 8);
        if (in_list(modes, "simulate")) {
            char bl[256];
            snprintf(bl, sizeof bl, "%s", batches);
            char *save = NULL;
            for (char *tok = strtok_r(bl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                size_t b = (size_t)strtoul(tok, NULL, 10); /* checked: list_ok */
                if (b > n) {
                    fprintf(stderr,
                            "bench_model: %s simulate batch %zu: more than its %zu golden "
                            "samples, skipped\n",
                            m->name, b, n);
                    continue;
                }
                size_t runs = (n / b) * b, reps = 0;
                double t0 = now_s(), t;
                do { /* repeat for at least 0.2 s of timing */
                    for (size_t s0 = 0; s0 < runs; s0 += b) {
                        const int64_t *ins[VEIL_MAX_PORTS];
                        int64_t *outs[VEIL_MAX_PORTS];
                        for (uint32_t i = 0; i < p->n_inputs; i++)
                            ins[i] = m->golden.inputs[i] + s0 * veil_program_input_size(p, i);
                        for (uint32_t q = 0; q < p->n_outputs; q++)
                            outs[q] = sim[q] + s0 * veil_program_output_size(p, q);
                        veil_program_simulate(p, ins, b, outs, NULL, NULL);
                    }
                    reps++;
                    t = now_s() - t0;
                } while (t < 0.2);
                emit(f, m, p, "simulate", "cpu", 1, b, runs, t / (double)(runs * reps),
                     score_of(m, p, sim, runs, n), 1.0);
            }
        }
        /* the simulate reference for every golden sample */
        veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, sim, NULL, NULL);
        if (p->params && in_list(enc_models, path)) {
            if (in_list(modes, "cpu"))
                rc |= bench_encrypted(f, m, p, VEIL_BACKEND_CPU, &bo, "cpu", batches, samples, n,
                                      sim);
            if (in_list(modes, "cuda"))
                rc |= bench_encrypted(f, m, p, VEIL_BACKEND_CUDA, &bo, "cuda", batches, samples, n,
                                      sim);
        }
        for (uint32_t q = 0; q < VEIL_MAX_PORTS; q++)
            free(sim[q]);
        veil_program_free(p);
        veil_model_free(m);
    }
    free(ml);
    fprintf(f, "\n]}\n");
    if (out_path && veil_atomic_file_commit(&af) != VEIL_OK) {
        fprintf(stderr, "bench_model: %s\n", veil_error_message());
        return 1;
    }
    return rc;
}
