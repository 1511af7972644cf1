/* veil — the command line: inspect, compile and run quantized models on
 * encrypted data.
 *
 *   veil info MODEL
 *   veil compile MODEL [compile options]
 *   veil run MODEL [--input FILE] [--mode simulate|cpu|cuda|auto] [--batch N] ...
 *
 * Subcommands live in one table (k_commands); each has a --help. Errors go to
 * stderr with a non-zero exit; progress bars only when stderr is a terminal. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "veil/backend.h"
#include "veil/client_cmds.h"
#include "veil/compile_options.h"
#include "veil/exec.h"
#include "veil/fft.h"
#include "veil/loader.h"
#include "veil/program.h"

static int fail(veil_status st, const char *what) {
    fprintf(stderr, "veil: %s: %s\n", what, veil_error_message());
    (void)st;
    return 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Process CPU time (user + system, all threads): on a shared machine a fairer
 * figure than wall time, which other processes' load inflates. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- progress bar -------------------------------------------------------------- */

typedef struct progress {
    int tty;
    double t0;
    uint64_t base, grand_total;
} progress;

static void progress_cb(void *user, uint64_t done, uint64_t total, const char *layer) {
    progress *pr = user;
    (void)total;
    if (!pr->tty) return;
    uint64_t d = pr->base + done;
    double frac = pr->grand_total ? (double)d / (double)pr->grand_total : 1.0;
    int w = 30, fill = (int)(frac * w + 0.5);
    double el = now_s() - pr->t0;
    fprintf(stderr, "\r[%.*s%*s] %5.1f%% %llu/%llu PBS %6.1fs %-16.16s", fill,
            "##############################", w - fill, "", 100 * frac, (unsigned long long)d,
            (unsigned long long)pr->grand_total, el, layer);
    fflush(stderr);
}

/* ---- shared options ------------------------------------------------------------ */

/* Consumes one compile option at argv[*i] (veil/compile_options.h); 1 if
 * consumed, 0 if not, -1 on error (printed). */
static int parse_compile_opt(const char *cmd, int argc, char **argv, int *i,
                             veil_compile_options *o) {
    int consumed = 0;
    if (veil_compile_options_parse_arg(o, argc, argv, i, &consumed) != VEIL_OK)
        return veil_cmd_usage_error(cmd, "%s", veil_error_message()), -1;
    return consumed;
}

/* A positive count option (--batch, --limit); -1 on error (printed). */
static int parse_count(const char *cmd, const char *opt, const char *v, size_t *out) {
    uint64_t n = 0;
    if (veil_arg_u64(opt, v, 1, (uint64_t)1 << 40, &n) != VEIL_OK)
        return veil_cmd_usage_error(cmd, "%s", veil_error_message()), -1;
    *out = (size_t)n;
    return 0;
}

/* ---- info ------------------------------------------------------------------------ */

static int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') return veil_cmd_usage_error("info", "unknown option %s", argv[i]);
        if (path) return veil_cmd_usage_error("info", "one MODEL only");
        path = argv[i];
    }
    if (!path) return veil_cmd_usage_error("info", "missing MODEL");
    veil_model *m;
    veil_status st = veil_model_load(path, &m);
    if (st) return fail(st, "info");
    char b[96];
    printf("model %s (%s)\n", m->name, m->producer ? m->producer : "unknown producer");
    if (m->task) printf("task %s\n", m->task);
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const veil_model_input *in = &m->inputs[i];
        printf("input  %-12s %-14s %2u-bit %s, scale %.6g, zero point %lld, range [%lld, %lld]\n",
               in->name, veil_shape_str(&in->shape, b, sizeof b), in->n_bits,
               in->is_signed ? "signed" : "unsigned", in->scale, (long long)in->zero_point,
               (long long)in->range[0], (long long)in->range[1]);
    }
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const veil_model_layer *l = &m->layers[i];
        printf("layer  %-14s %-10s <- %-14s out %-14s range [%lld, %lld] calib [%lld, %lld]",
               l->name, veil_op_name(l->op), l->inputs[0],
               veil_shape_str(&l->out_shape, b, sizeof b), (long long)l->range[0],
               (long long)l->range[1], (long long)l->calib_range[0], (long long)l->calib_range[1]);
        if (l->op == VEIL_OP_LUT)
            printf(" table %u x %lld [%lld, %lld]", l->n_tables,
                   (long long)(l->in_max - l->in_min + 1), (long long)l->in_min,
                   (long long)l->in_max);
        printf("\n");
    }
    for (uint32_t i = 0; i < m->n_outputs; i++)
        printf("output %-12s = %s %s, %u scale(s)\n", m->outputs[i].name, m->outputs[i].source,
               veil_shape_str(&m->outputs[i].shape, b, sizeof b), m->outputs[i].n_scale);
    printf("calibration %zu samples, golden %zu samples%s\n", m->calibration.count, m->golden.count,
           m->golden.labels    ? " (with labels)"
           : m->golden.targets ? " (with targets)"
                               : "");
    if (!isnan(m->brevitas_rmse))
        printf("regression: RMSE brevitas %.6g, integer path %.6g; R^2 brevitas %.4f, integer "
               "path %.4f (%lld test samples)\n"
               "integer path vs brevitas: RMSE %.3g, max error %.3g\n",
               m->brevitas_rmse, m->int_rmse, m->brevitas_r2, m->int_r2, (long long)m->test_samples,
               m->int_vs_brevitas_rmse, m->int_vs_brevitas_max_error);
    if (!isnan(m->brevitas_accuracy))
        printf("accuracy: brevitas %.4f, integer path %.4f (%lld test samples)\n",
               m->brevitas_accuracy, m->int_accuracy, (long long)m->test_samples);
    veil_model_free(m);
    return 0;
}

/* ---- compile --------------------------------------------------------------------- */

static int cmd_compile(int argc, char **argv) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        int r = parse_compile_opt("compile", argc, argv, &i, &o);
        if (r < 0) return 2;
        if (r) continue;
        if (argv[i][0] == '-') return veil_cmd_usage_error("compile", "unknown option %s", argv[i]);
        if (path) return veil_cmd_usage_error("compile", "one MODEL only");
        path = argv[i];
    }
    if (!path) return veil_cmd_usage_error("compile", "missing MODEL");
    veil_model *m;
    veil_status st = veil_model_load(path, &m);
    if (st) return fail(st, "compile");
    veil_program *p;
    st = veil_program_compile(m, &o, &p);
    veil_model_free(m);
    if (st) return fail(st, "compile");
    veil_program_print_report(p, stdout);
    veil_program_print_keys(p, stdout);
    veil_program_free(p);
    return 0;
}

/* ---- run --------------------------------------------------------------------------- */

typedef struct run_args {
    veil_compile_options c;
    veil_backend_options bo; /* --devices (veil_backend_options_parse_arg), then the environment */
    const char *model, *input, *output, *mode;
    size_t batch, limit;
    unsigned input_flags; /* VEIL_INPUTS_* */
    int noise;
} run_args;

/* Over the first n_out outputs (all of them, or the model's: goldens have
 * no range-check output). */
static int count_matches(const veil_model *m, const veil_program *p, uint32_t n_out,
                         int64_t *const *a, int64_t *const *b, size_t n, size_t *elem_eq,
                         size_t *elem_tot, size_t *argmax_eq) {
    *elem_eq = *elem_tot = *argmax_eq = 0;
    for (uint32_t o = 0; o < n_out; o++) {
        size_t sz = veil_program_output_size(p, o);
        for (size_t i = 0; i < n * sz; i++) {
            (*elem_tot)++;
            *elem_eq += a[o][i] == b[o][i];
        }
    }
    size_t sz0 = veil_program_output_size(p, 0);
    for (size_t s = 0; s < n; s++)
        *argmax_eq += veil_model_class(&m->outputs[0], a[0] + s * sz0) ==
                      veil_model_class(&m->outputs[0], b[0] + s * sz0);
    return 0;
}

static double accuracy(const veil_model *m, const veil_program *p, int64_t *const *out,
                       const int64_t *labels, size_t n) {
    size_t sz0 = veil_program_output_size(p, 0), ok = 0;
    for (size_t s = 0; s < n; s++)
        ok += (int64_t)veil_model_class(&m->outputs[0], out[0] + s * sz0) == labels[s];
    return n ? (double)ok / (double)n : NAN;
}

static int run_encrypted(const run_args *a, const veil_program *p, const veil_model_samples *in,
                         size_t n, int64_t *const *enc_out, double *lat_per_sample,
                         double *keygen_s, double *cpu_per_sample, double *keygen_cpu_s) {
    veil_backend_kind kind;
    veil_status st = veil_backend_kind_parse(a->mode, &kind);
    if (st) return fail(st, "run");
    veil_backend *bes[VEIL_BACKEND_MAX_DEVICES] = {0};
    size_t n_bes = 0;
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_plan_group *plan = NULL;
    veil_encryptor *enc = NULL;
    uint64_t *ct_in[VEIL_MAX_PORTS] = {0}, *ct_out[VEIL_MAX_PORTS] = {0};
    int rc = 1;
    const int tty = isatty(2);
    veil_backend_options bo = a->bo;
    if ((st = veil_backend_options_from_env(&bo)) ||
        (st = veil_backends_new(kind, &bo, bes, &n_bes)))
        goto out;
    for (size_t i = 0; i < n_bes; i++) {
        if (n_bes > 1)
            fprintf(stderr, "backend (plan %zu of %zu): %s\n", i, n_bes,
                    veil_backend_describe(bes[i]));
        else
            fprintf(stderr, "backend: %s\n", veil_backend_describe(bes[i]));
    }
    double t0 = now_s(), c0 = cpu_s();
    if (tty) fprintf(stderr, "keygen (%s)...", p->params->id);
    if ((st = veil_program_keygen(p, NULL, &sk)) ||
        (st =
             veil_program_eval_key_new(p, sk, veil_backend_key_domains(bes[0]), NULL, NULL, &ek)) ||
        (st = veil_encryptor_new(NULL, NULL, &enc)))
        goto out;
    *keygen_s = now_s() - t0;
    *keygen_cpu_s = cpu_s() - c0;
    if (tty) fprintf(stderr, " %.1fs\n", *keygen_s);
    const size_t batch = a->batch < n ? a->batch : n;
    if ((st = veil_plan_group_new(p, ek, bes, n_bes, batch, &plan))) goto out;
    progress pr = {tty, now_s(), 0, p->pbs_per_sample * n};
    veil_plan_group_set_progress(plan, progress_cb, &pr);
    const size_t lwe = veil_program_ct_words(p);
    for (uint32_t i = 0; i < p->n_inputs; i++)
        if (!(ct_in[i] = malloc(batch * veil_program_input_size(p, i) * lwe * 8))) {
            st = veil_error(VEIL_ERR_NOMEM, "out of memory for input ciphertexts");
            goto out;
        }
    for (uint32_t o = 0; o < p->n_outputs; o++)
        if (!(ct_out[o] = malloc(batch * veil_program_output_size(p, o) * lwe * 8))) {
            st = veil_error(VEIL_ERR_NOMEM, "out of memory for output ciphertexts");
            goto out;
        }
    double exec_s = 0, exec_cpu = 0;
    for (size_t s0 = 0; s0 < n; s0 += batch) {
        size_t b = n - s0 < batch ? n - s0 : batch;
        for (uint32_t i = 0; i < p->n_inputs; i++) {
            size_t sz = veil_program_input_size(p, i);
            if ((st = veil_program_encrypt(p, enc, sk, i, in->inputs[i] + s0 * sz, b, ct_in[i])))
                goto out;
        }
        pr.base = p->pbs_per_sample * s0;
        double t = now_s(), c = cpu_s();
        st = veil_plan_group_execute(plan, (const uint64_t *const *)ct_in, b, ct_out);
        exec_s += now_s() - t;
        exec_cpu += cpu_s() - c;
        if (st) goto out;
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            size_t sz = veil_program_output_size(p, o);
            if ((st = veil_program_decrypt(p, sk, o, ct_out[o], b, enc_out[o] + s0 * sz))) goto out;
        }
    }
    if (tty) fprintf(stderr, "\n");
    *lat_per_sample = exec_s / (double)n;
    *cpu_per_sample = exec_cpu / (double)n;
    rc = 0;
out:
    if (rc) {
        if (tty) fprintf(stderr, "\n");
        fail(st, "run");
    }
    for (uint32_t i = 0; i < VEIL_MAX_PORTS; i++) {
        free(ct_in[i]);
        free(ct_out[i]);
    }
    veil_plan_group_free(plan);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    veil_backends_free(bes, n_bes);
    return rc;
}

/* One line of count_matches' figures: what, eq/tot values, then the argmax
 * agreement of a classifier (none for a regressor: its values are its
 * answer). */
static void print_matches(const veil_model *m, const char *what, const char *equal, size_t eq,
                          size_t tot, size_t am, size_t n) {
    printf("%s %zu/%zu values%s", what, eq, tot, equal);
    if (!veil_model_is_regression(m)) printf(", %zu/%zu argmax", am, n);
    printf("\n");
}

static int cmd_run(int argc, char **argv) {
    run_args a;
    memset(&a, 0, sizeof a);
    veil_compile_options_default(&a.c);
    veil_backend_options_default(&a.bo);
    a.mode = "simulate";
    a.batch = 1;
    int objective_given = 0;
    for (int i = 1; i < argc; i++) {
        objective_given |= !strcmp(argv[i], "--objective");
        int r = parse_compile_opt("run", argc, argv, &i, &a.c);
        if (r < 0) return 2;
        if (r) continue;
        if (veil_backend_options_parse_arg(&a.bo, argc, argv, &i, &r) != VEIL_OK)
            return veil_cmd_usage_error("run", "%s", veil_error_message());
        if (r) continue;
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--mode") && v) {
            a.mode = v;
            i++;
        } else if (!strcmp(s, "--input") && v) {
            a.input = v;
            i++;
        } else if (!strcmp(s, "--output") && v) {
            a.output = v;
            i++;
        } else if ((!strcmp(s, "--batch") || !strcmp(s, "--limit")) && v) {
            if (parse_count("run", s, v, !strcmp(s, "--batch") ? &a.batch : &a.limit)) return 2;
            i++;
        } else if (!strcmp(s, "--quantized")) {
            a.input_flags |= VEIL_INPUTS_QUANTIZED;
        } else if (!strcmp(s, "--strict-range")) {
            a.input_flags |= VEIL_INPUTS_STRICT_RANGE;
        } else if (!strcmp(s, "--noise")) {
            a.noise = 1;
        } else if (s[0] == '-') {
            return veil_cmd_usage_error("run", "unknown option %s (or missing value)", s);
        } else if (!a.model) {
            a.model = s;
        } else {
            return veil_cmd_usage_error("run", "one MODEL only");
        }
    }
    if (!a.model) return veil_cmd_usage_error("run", "missing MODEL");
    /* --mode: simulate, or a backend by the one rule that names them */
    veil_backend_kind run_kind = VEIL_BACKEND_AUTO;
    if (strcmp(a.mode, "simulate") && veil_backend_kind_parse(a.mode, &run_kind) != VEIL_OK)
        return veil_cmd_usage_error("run", "--mode %s: expected simulate, cpu, cuda or auto",
                                    a.mode);
    if (!a.input) a.input = a.model; /* the model's golden inputs */
    /* --mode auto: the backend it will be, for the objective below */
    if (strcmp(a.mode, "simulate")) run_kind = veil_backend_kind_resolve(run_kind);
    if (!objective_given && a.batch == 1 && run_kind == VEIL_BACKEND_CPU && !a.c.params_id) {
        /* one sample at a time on the cpu: its latency on this backend's
         * threads is what the run measures (--objective) */
        veil_backend_options bo = a.bo;
        if (veil_backend_options_from_env(&bo) != VEIL_OK) return fail(VEIL_ERR_ARG, "run");
        a.c.latency_cores = veil_backend_cpu_threads(&bo);
        fprintf(stderr,
                "veil run: --objective latency:%u (batch 1 on the cpu backend; "
                "--objective throughput for the batch figure)\n",
                a.c.latency_cores);
    }
    /* Before any work: an --output that cannot be written fails now, and so
     * does a backend or --devices list the run cannot have. */
    if (a.output && veil_outputs_check(a.output, NULL)) return fail(VEIL_ERR_IO, "run");
    if (run_kind != VEIL_BACKEND_AUTO) {
        const veil_status dst = veil_backend_devices_check(run_kind, &a.bo);
        if (dst != VEIL_OK) return fail(dst, "run");
    }
    veil_model *m = NULL;
    veil_program *p = NULL;
    veil_model_samples in = {0};
    int64_t *sim[VEIL_MAX_PORTS] = {0}, *encv[VEIL_MAX_PORTS] = {0};
    int rc = 1;
    veil_status st = veil_model_load(a.model, &m);
    if (st || (a.output && (st = veil_outputs_check(a.output, m)))) {
        fail(st, "run");
        goto out;
    }
    int encrypted = strcmp(a.mode, "simulate") != 0;
    a.c.simulate_only = !encrypted;
    if ((st = veil_program_compile(m, &a.c, &p))) {
        fail(st, "run");
        goto out;
    }
    veil_inputs_report rep;
    if ((st = veil_inputs_read(a.input, m, a.input_flags, &in, &rep))) {
        fail(st, "run");
        goto out;
    }
    veil_inputs_report_print(&rep, "veil run", stderr);
    size_t n = in.count;
    if (a.limit && a.limit < n) n = a.limit;
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        sim[o] = malloc(n * veil_program_output_size(p, o) * sizeof(int64_t) + 1);
        encv[o] = malloc(n * veil_program_output_size(p, o) * sizeof(int64_t) + 1);
        if (!sim[o] || !encv[o]) {
            fprintf(stderr, "veil: run: out of memory\n");
            goto out;
        }
    }
    printf("model %s, %zu samples from %s, parameters %s, %llu PBS per sample\n", m->name, n,
           a.input, p->params ? p->params->id : "(none: simulate only)",
           (unsigned long long)p->pbs_per_sample);
    veil_sim_stats ss;
    veil_sim_options so = {a.noise, 0x5eed};
    double t = now_s();
    st = veil_program_simulate(p, (const int64_t *const *)in.inputs, n, sim, a.noise ? &so : NULL,
                               &ss);
    double sim_s = now_s() - t;
    if (st) {
        fail(st, "run");
        goto out;
    }
    printf("simulate: %.3f ms per sample (batch %zu)\n", 1e3 * sim_s / (double)n, n);
    if (ss.range_errors)
        fprintf(stderr,
                "veil: warning: %llu value(s) left their compiled range: those lookups wrap "
                "around (mod 2^(p+1), negacyclic), in simulate as encrypted, so those samples' "
                "outputs are not the model's (compile with --bounds worst-case to avoid it); "
                "first: %s\n",
                (unsigned long long)ss.range_errors, ss.first_error);
    if (a.noise)
        printf("simulate with noise: %llu PBS decoded wrongly\n",
               (unsigned long long)ss.pbs_errors);
    int64_t *const *final = sim;
    if (encrypted) {
        double lat = 0, kg = 0, lat_cpu = 0, kg_cpu = 0;
        if (run_encrypted(&a, p, &in, n, encv, &lat, &kg, &lat_cpu, &kg_cpu)) goto out;
        size_t eq, tot, am;
        count_matches(m, p, p->n_outputs, encv, sim, n, &eq, &tot, &am);
        printf("%s: %.3f s per sample (batch %zu), keygen %.1f s\n", a.mode, lat,
               a.batch < n ? a.batch : n, kg);
        printf("%s process cpu time (all threads): %.3f s per sample, keygen %.1f s\n", a.mode,
               lat_cpu, kg_cpu);
        print_matches(m, "agreement with simulate:", "", eq, tot, am, n);
        final = encv;
    }
    if (p->range_check) {
        const char *names[VEIL_MAX_PORTS];
        for (uint32_t o = 0; o < m->n_outputs && o < 64; o++)
            names[o] = m->outputs[o].name;
        size_t fl = veil_program_range_check_warn(p, names, final, n, "veil", stderr);
        printf("range check (%s): %zu/%zu samples flagged\n", encrypted ? a.mode : "simulate", fl,
               n);
    }
    if (in.labels) {
        printf("accuracy (%s, %zu labelled samples): %.4f", encrypted ? a.mode : "simulate", n,
               accuracy(m, p, final, in.labels, n));
        if (!isnan(m->brevitas_accuracy))
            printf("; brevitas %.4f, integer path %.4f on the exporter's test set",
                   m->brevitas_accuracy, m->int_accuracy);
        printf("\n");
    }
    if (in.targets) {
        double rmse, mae;
        veil_regression_error(m, final[0], n, in.targets, &rmse, &mae);
        printf("regression (%s, %zu samples with targets): RMSE %.6g, MAE %.6g",
               encrypted ? a.mode : "simulate", n, rmse, mae);
        if (!isnan(m->int_rmse))
            printf("; RMSE brevitas %.6g, integer path %.6g on the exporter's test set",
                   m->brevitas_rmse, m->int_rmse);
        printf("\n");
    }
    if (a.input == a.model && m->golden.count) {
        size_t eq, tot, am;
        count_matches(m, p, veil_program_model_outputs(p), final, m->golden.outputs, n, &eq, &tot,
                      &am);
        print_matches(m, "golden vectors (unrounded integer path):", " equal", eq, tot, am, n);
    }
    if (a.output) {
        if ((st = veil_outputs_write(a.output, m, n, (const int64_t *const *) final))) {
            fail(st, "run");
            goto out;
        }
        printf("wrote %s\n", a.output);
    }
    rc = 0;
out:
    for (uint32_t o = 0; o < 64; o++) {
        free(sim[o]);
        free(encv[o]);
    }
    if (m) veil_model_samples_free(&in, m->n_inputs, 0);
    veil_program_free(p);
    veil_model_free(m);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------ */

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *usage;
    const char *help; /* options; may be NULL */
} command;

static const char k_run_help[] =
    "  --input FILE             .h5, .npy or .csv (default: the model's golden inputs)\n"
    "  --mode simulate|cpu|cuda|auto\n"
    "                           simulate (default): clear integers; cpu/cuda: keygen in\n"
    "                           memory, encrypt, run, decrypt, compare with simulate;\n"
    "                           auto: cuda when built with CUDA and a GPU is present, else cpu\n"
    "  --batch N                samples per encrypted batch (default 1; at batch 1 on the\n"
    "                           cpu the parameter sets minimise latency, --objective below)\n"
    "  --limit N                only the first N samples\n"
    "  --output FILE            write the outputs (.h5, .npy or .csv)\n"
    "  --quantized              CSV values are already quantized integers\n"
    "  --strict-range           refuse float inputs outside an input's range (default: clamp\n"
    "                           them, with a warning); NaN is always refused\n"
    "  --noise                  simulate with sampled noise (modelled PBS failures)\n";

static const command k_commands[] = {
    {"info", cmd_info, "show a model's inputs, layers, ranges and accuracy", "veil info MODEL",
     NULL},
    {"compile", cmd_compile, "compile a model and print the per-layer report",
     "veil compile MODEL [options]", ""},
    {"run", cmd_run, "run a model (simulate, or encrypted on cpu / cuda)",
     "veil run MODEL [--input FILE] [--mode simulate|cpu|cuda|auto] [options]", k_run_help},
    /* Client side of a deployment (host/client/cmds.c). */
    {"keygen", veil_cmd_keygen, "make a secret key and the evaluation keys for a model",
     veil_cmd_keygen_usage, veil_cmd_keygen_help},
    {"encrypt", veil_cmd_encrypt, "quantize and encrypt samples into a ciphertext batch",
     veil_cmd_encrypt_usage, veil_cmd_encrypt_help},
    {"decrypt", veil_cmd_decrypt, "decrypt and dequantize a result batch", veil_cmd_decrypt_usage,
     veil_cmd_decrypt_help},
    {"remote", veil_cmd_remote, "run samples on a veil-server (upload keys once, encrypt, decrypt)",
     veil_cmd_remote_usage, veil_cmd_remote_help},
};
#define N_COMMANDS (sizeof k_commands / sizeof k_commands[0])

static void print_usage(FILE *f) {
    fprintf(f, "usage: veil COMMAND [options]  (veil COMMAND --help)\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    /* auto is the build's default: the fastest veil path this CPU runs, or
     * fftw in a -DVEIL_FFT=fftw build (veil_fft_path_default) */
    fprintf(f,
            "\nenvironment:\n  VEIL_FFT=auto|portable|avx2|avx512|fftw  FFT code path of the cpu "
            "backend\n                (default auto: this build's default, %s here)\n",
            veil_fft_path_name(veil_fft_path_default()));
    veil_backend_options_env_help(f);
    veil_loader_env_help(f);
}

int main(int argc, char **argv) {
    /* Over `ulimit -f`, write() fails with EFBIG and the output is refused
     * whole (veil/atomic_file.h) instead of the process being killed. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return 0;
    }
    const char *fft = getenv("VEIL_FFT");
    veil_fft_path fft_path;
    if (fft && *fft &&
        (veil_fft_path_parse(fft, &fft_path) || veil_fft_path_set_default(fft_path))) {
        fprintf(stderr, "veil: VEIL_FFT: %s\n", veil_error_message());
        return 2;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const command *c = &k_commands[i];
        if (strcmp(argv[1], c->name)) continue;
        for (int j = 2; j < argc; j++)
            if (!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) {
                printf("usage: %s\n%s\n", c->usage, c->summary);
                if (c->help) printf("\noptions:\n%s", c->help);
                if (c->fn == cmd_run) veil_backend_options_help(stdout);
                if (c->fn == cmd_compile || c->fn == cmd_run || c->fn == veil_cmd_keygen ||
                    c->fn == veil_cmd_encrypt || c->fn == veil_cmd_decrypt ||
                    c->fn == veil_cmd_remote)
                    veil_compile_options_help(stdout);
                return 0;
            }
        return c->fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "veil: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return 2;
}
