/* cmds.c — `veil keygen|encrypt|decrypt|remote` (see veil/client_cmds.h). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "veil/atomic_file.h"
#include "veil/client.h"
#include "veil/client_cmds.h"
#include "veil/compile_options.h"
#include "veil/program_crypt.h"
#include "veil/loader.h"

const char veil_cmd_keygen_usage[] = "veil keygen MODEL --out DIR [--force] [compile options]";
const char veil_cmd_keygen_help[] =
    "  --out DIR                where to write secret.key (0600, stays here) and eval.key\n"
    "                           (the seeded evaluation keys to upload)\n"
    "  --force                  overwrite an existing secret key\n";
const char veil_cmd_encrypt_usage[] =
    "veil encrypt MODEL --key DIR --input FILE --output CT [--quantized] [compile options]";
const char veil_cmd_encrypt_help[] =
    "  --key DIR                key directory of `veil keygen`\n"
    "  --input FILE             .h5, .npy or .csv samples (floats are quantized with the\n"
    "                           model's input scales; the model file itself: its golden inputs)\n"
    "  --output CT              the ciphertext batch (seeded: bodies + one seed)\n"
    "  --limit N                only the first N samples\n"
    "  --quantized              CSV values are already quantized integers\n"
    "  --strict-range           refuse float inputs outside an input's range (default: clamp\n"
    "                           them, with a warning); NaN is always refused\n";
const char veil_cmd_decrypt_usage[] =
    "veil decrypt MODEL --key DIR --input CT [--output FILE] [compile options]";
const char veil_cmd_decrypt_help[] =
    "  --key DIR                key directory of `veil keygen`\n"
    "  --input CT               a result batch (the body of a veil-server /v1/infer answer)\n"
    "  --output FILE            .h5, .npy or .csv (default: print the results)\n";
const char veil_cmd_remote_usage[] =
    "veil remote MODEL --key DIR (--server URL | --triton URL) [--input FILE] [--output FILE]\n"
    "            [compile options]";
const char veil_cmd_remote_help[] =
    "  --key DIR                key directory of `veil keygen`: DIR/eval.key is uploaded once\n"
    "                           per server (the key id is kept in DIR/servers and checked with\n"
    "                           GET /v1/keys/<id>; Triton: through the veil_keys model, and\n"
    "                           again when Triton answers unknown_key)\n"
    "  --server URL             e.g. http://127.0.0.1:8080 or https://fhe.example.com\n"
    "  --triton URL             a Triton Inference Server running the veil backend (its HTTP\n"
    "                           port, e.g. http://127.0.0.1:8000): v2 inference protocol\n"
    "  --triton-model NAME      the model's name in Triton's repository (default: MODEL's\n"
    "                           file name without .h5)\n"
    "  --triton-keys-model NAME the key-upload model's name in Triton's repository (default\n"
    "                           veil_keys)\n"
    "  --input FILE             samples (.h5, .npy, .csv; default: the model's golden inputs)\n"
    "  --output FILE            write the decrypted outputs (.h5, .npy or .csv)\n"
    "  --limit N                only the first N samples\n"
    "  --quantized              CSV values are already quantized integers\n"
    "  --strict-range           refuse float inputs outside an input's range (default: clamp\n"
    "                           them, with a warning); NaN is always refused\n"
    "  --timeout S              per request (default 600)\n"
    "  --retries N              per request (default 3, at most 100; waits 0.2 s\n"
    "                           doubling to at most 10 s between tries)\n"
    "  --verbose                say what is retried\n"
    "  --delete-key             after the run (a failed one too, once the key is there),\n"
    "                           remove the evaluation key from the server (DELETE\n"
    "                           /v1/keys/<id>; Triton: veil_keys' DELETE_KEY_ID) and its\n"
    "                           DIR/servers entry: the next run uploads it again\n";

int veil_cmd_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "veil %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see veil %s --help)\n", cmd);
    va_end(ap);
    return 2;
}

static int fail(const char *cmd) {
    fprintf(stderr, "veil %s: %s\n", cmd, veil_error_message());
    return 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct args {
    const char *model, *key, *out, *input, *output, *server;
    const char *triton_model, *triton_keys_model;
    int triton;
    size_t limit;
    int force, verbose, delete_key;
    unsigned input_flags; /* VEIL_INPUTS_* */
    long timeout;
    int retries;
    veil_compile_options co;
} args;

/* 1 when the command's help lists opt (a line "  --opt ..."): a command
 * takes the options its --help names, and no other command's. */
static int documented(const char *help, const char *opt) {
    const size_t n = strlen(opt);
    for (const char *h = help; (h = strstr(h, opt)) != NULL; h += n)
        if (h - help >= 2 && h[-1] == ' ' && h[-2] == ' ' && (h - help == 2 || h[-3] == '\n') &&
            (h[n] == ' ' || h[n] == '\n'))
            return 1;
    return 0;
}

/* Parses the options of a deployment command: the compile options
 * (veil/compile_options.h) and those its help lists. -1: usage error. */
static int parse_args(const char *cmd, const char *help, int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    veil_compile_options_default(&a->co);
    a->timeout = 600;
    a->retries = 3;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int consumed = 0;
        if (veil_compile_options_parse_arg(&a->co, argc, argv, &i, &consumed) != VEIL_OK)
            return veil_cmd_usage_error(cmd, "%s", veil_error_message()), -1;
        if (consumed) continue;
        if (s[0] == '-' && !documented(help, s))
            return veil_cmd_usage_error(cmd, "unknown option %s", s), -1;
        if (!strcmp(s, "--force")) {
            a->force = 1;
            continue;
        }
        if (!strcmp(s, "--quantized")) {
            a->input_flags |= VEIL_INPUTS_QUANTIZED;
            continue;
        }
        if (!strcmp(s, "--strict-range")) {
            a->input_flags |= VEIL_INPUTS_STRICT_RANGE;
            continue;
        }
        if (!strcmp(s, "--verbose")) {
            a->verbose = 1;
            continue;
        }
        if (!strcmp(s, "--delete-key")) {
            a->delete_key = 1;
            continue;
        }
        if (s[0] != '-') {
            if (a->model)
                return veil_cmd_usage_error(cmd, "one MODEL only (got %s and %s)", a->model, s), -1;
            a->model = s;
            continue;
        }
        if (!v) return veil_cmd_usage_error(cmd, "%s: missing value or unknown option", s), -1;
        i++;
        if (!strcmp(s, "--key"))
            a->key = v;
        else if (!strcmp(s, "--out"))
            a->out = v;
        else if (!strcmp(s, "--input"))
            a->input = v;
        else if (!strcmp(s, "--output"))
            a->output = v;
        else if (!strcmp(s, "--server") || !strcmp(s, "--triton")) {
            if (a->server) return veil_cmd_usage_error(cmd, "one of --server and --triton"), -1;
            a->server = v;
            a->triton = !strcmp(s, "--triton");
        } else if (!strcmp(s, "--triton-model"))
            a->triton_model = v;
        else if (!strcmp(s, "--triton-keys-model"))
            a->triton_keys_model = v;
        else if (!strcmp(s, "--limit") || !strcmp(s, "--timeout") || !strcmp(s, "--retries")) {
            uint64_t n = 0;
            int retries = !strcmp(s, "--retries");
            if (veil_arg_u64(s, v, retries ? 0 : 1, retries ? 100 : (uint64_t)1 << 40, &n))
                return veil_cmd_usage_error(cmd, "%s", veil_error_message()), -1;
            if (!strcmp(s, "--limit"))
                a->limit = (size_t)n;
            else if (!strcmp(s, "--timeout"))
                a->timeout = (long)n;
            else
                a->retries = (int)n;
        } else {
            return veil_cmd_usage_error(cmd, "unknown option %s", s), -1;
        }
    }
    if (!a->model) return veil_cmd_usage_error(cmd, "missing MODEL"), -1;
    return 0;
}

int veil_cmd_keygen(int argc, char **argv) {
    args a;
    if (parse_args("keygen", veil_cmd_keygen_help, argc, argv, &a)) return 2;
    if (!a.out) return veil_cmd_usage_error("keygen", "missing --out DIR");
    veil_client *c;
    if (veil_client_open(a.model, &a.co, &c)) return fail("keygen");
    veil_keygen_info info;
    int rc = 0;
    if (veil_client_keygen(c, a.out, a.force, &info)) {
        rc = fail("keygen");
    } else {
        printf("model %s, parameter set %s, model fingerprint %.16s...\n", c->model->name,
               c->prog->params->id, c->fp_hex);
        char skp[4096], ekp[4096];
        veil_keydir_path(a.out, "secret.key", skp, sizeof skp);
        veil_keydir_path(a.out, "eval.key", ekp, sizeof ekp);
        printf("%-*s %10zu bytes  (mode 0600: keep it here, never upload it)\n",
               (int)strlen(skp) + 1, skp, info.secret_key_bytes);
        printf("%-*s %10zu bytes  (seeded; %.1f MiB with every mask stored): upload this\n",
               (int)strlen(skp) + 1, ekp, info.eval_key_bytes,
               (double)info.eval_key_raw_bytes / (1 << 20));
        veil_program_print_keys(c->prog, stdout);
        printf("keygen %.2f s\n", info.seconds);
    }
    veil_client_free(c);
    return rc;
}

/* Reads the samples (quantized), keeping at most limit. */
static int read_samples(const char *cmd, const veil_client *c, const args *a,
                        veil_model_samples *in, size_t *n) {
    const char *path = a->input ? a->input : a->model;
    veil_inputs_report rep;
    if (veil_inputs_read(path, c->model, a->input_flags, in, &rep)) return fail(cmd);
    char prog[32];
    snprintf(prog, sizeof prog, "veil %s", cmd);
    veil_inputs_report_print(&rep, prog, stderr);
    *n = in->count;
    if (a->limit && a->limit < *n) *n = a->limit;
    if (*n == 0) {
        fprintf(stderr, "veil %s: %s: no samples\n", cmd, path);
        return 1;
    }
    return 0;
}

int veil_cmd_encrypt(int argc, char **argv) {
    args a;
    if (parse_args("encrypt", veil_cmd_encrypt_help, argc, argv, &a)) return 2;
    if (!a.key || !a.input || !a.output)
        return veil_cmd_usage_error("encrypt",
                                    "--key DIR, --input FILE and --output CT are required");
    veil_client *c = NULL;
    veil_secret_key *sk = NULL;
    veil_model_samples in = {0};
    uint8_t *buf = NULL;
    size_t len = 0, n = 0;
    int rc = 1;
    if (veil_atomic_file_check(a.output) || veil_client_open(a.model, &a.co, &c) ||
        veil_client_load_secret_key(c, a.key, &sk)) {
        fail("encrypt");
        goto out;
    }
    if (read_samples("encrypt", c, &a, &in, &n)) goto out;
    double t0 = now_s();
    if (veil_client_encrypt(c, sk, (const int64_t *const *)in.inputs, n, &buf, &len)) {
        fail("encrypt");
        goto out;
    }
    double dt = now_s() - t0;
    if (veil_atomic_file_write(a.output, buf, len, 0644)) {
        fail("encrypt");
        goto out;
    }
    printf("encrypted %zu samples (%zu ciphertexts) in %.2f s: %s, %zu bytes\n", n,
           n * veil_program_sample_in_cts(c->prog), dt, a.output, len);
    rc = 0;
out:
    veil_serial_buffer_free(buf, len);
    if (c) veil_model_samples_free(&in, c->model->n_inputs, 0);
    veil_secret_key_free(sk);
    veil_client_free(c);
    return rc;
}

/* Prints the dequantized outputs (and the argmax of a classifier; a
 * regressor's values are its answer). */
static void print_outputs(const veil_client *c, int64_t **outs, size_t n) {
    const veil_model *m = c->model;
    for (size_t s = 0; s < n; s++) {
        printf("sample %zu:", s);
        for (uint32_t o = 0; o < m->n_outputs; o++) {
            size_t sz = veil_program_output_size(c->prog, o);
            double *x = malloc(sz * sizeof *x + 1);
            if (!x) return;
            veil_model_dequantize(&m->outputs[o], outs[o] + s * sz, sz, x);
            printf(" %s = [", m->outputs[o].name);
            for (size_t i = 0; i < sz; i++)
                printf("%s%.4g", i ? ", " : "", x[i]);
            printf("]");
            free(x);
        }
        if (m->task && !strcmp(m->task, "classification")) {
            size_t sz = veil_program_output_size(c->prog, 0);
            printf(" class %zu", veil_model_class(&m->outputs[0], outs[0] + s * sz));
        }
        printf("\n");
    }
}

static int write_or_print(const char *cmd, const veil_client *c, const char *output, int64_t **outs,
                          size_t n) {
    /* --range-check on: name the outputs of the samples it flagged */
    if (c->prog->range_check) {
        const veil_model *m = c->model;
        const char *names[VEIL_MAX_PORTS];
        for (uint32_t o = 0; o < m->n_outputs && o < 64; o++)
            names[o] = m->outputs[o].name;
        char who[32];
        snprintf(who, sizeof who, "veil %s", cmd);
        size_t fl = veil_program_range_check_warn(c->prog, names, outs, n, who, stderr);
        fprintf(stderr, "veil %s: range check: %zu/%zu samples flagged\n", cmd, fl, n);
    }
    if (output) {
        if (veil_outputs_write(output, c->model, n, (const int64_t *const *)outs)) return fail(cmd);
        printf("wrote %zu samples to %s\n", n, output);
    } else {
        print_outputs(c, outs, n);
    }
    return 0;
}

int veil_cmd_decrypt(int argc, char **argv) {
    args a;
    if (parse_args("decrypt", veil_cmd_decrypt_help, argc, argv, &a)) return 2;
    if (!a.key || !a.input)
        return veil_cmd_usage_error("decrypt", "--key DIR and --input CT are required");
    veil_client *c = NULL;
    veil_secret_key *sk = NULL;
    veil_ct_batch *b = NULL;
    int64_t **outs = NULL;
    size_t n = 0;
    int rc = 1;
    if ((a.output && veil_outputs_check(a.output, NULL)) || veil_client_open(a.model, &a.co, &c) ||
        (a.output && veil_outputs_check(a.output, c->model)) ||
        veil_client_load_secret_key(c, a.key, &sk)) {
        fail("decrypt");
        goto out;
    }
    if (veil_ct_batch_load(a.input, &b)) { /* its messages name the file */
        fail("decrypt");
        goto out;
    }
    if (veil_client_decrypt(c, sk, b, &n, &outs)) {
        veil_error_prefix("%s: ", a.input);
        fail("decrypt");
        goto out;
    }
    rc = write_or_print("decrypt", c, a.output, outs, n);
out:
    if (c) veil_client_outputs_free(c, outs);
    veil_ct_batch_free(b);
    veil_secret_key_free(sk);
    veil_client_free(c);
    return rc;
}

int veil_cmd_remote(int argc, char **argv) {
    args a;
    if (parse_args("remote", veil_cmd_remote_help, argc, argv, &a)) return 2;
    if (!a.key || !a.server)
        return veil_cmd_usage_error("remote",
                                    "--key DIR and --server URL (or --triton URL) are required");
    if (!a.triton && (a.triton_model || a.triton_keys_model))
        return veil_cmd_usage_error("remote", "%s is for --triton, not --server",
                                    a.triton_model ? "--triton-model" : "--triton-keys-model");
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    /* Triton's model name: the model file's name without directory and .h5. */
    char tmodel[256];
    const char *slash = strrchr(a.model, '/');
    snprintf(tmodel, sizeof tmodel, "%s", slash ? slash + 1 : a.model);
    char *dot = strrchr(tmodel, '.');
    if (dot && !strcmp(dot, ".h5")) *dot = 0;
    if (a.triton) {
        ro.triton_model = a.triton_model ? a.triton_model : tmodel;
        ro.triton_keys_model = a.triton_keys_model;
    }
    ro.timeout_s = a.timeout;
    ro.retries = a.retries;
    ro.verbose = a.verbose;
    veil_client *c = NULL;
    veil_secret_key *sk = NULL;
    veil_model_samples in = {0};
    int64_t **all = NULL;
    size_t n = 0;
    int rc = 1, key_there = 0;
    if ((a.output && veil_outputs_check(a.output, NULL)) || veil_client_open(a.model, &a.co, &c) ||
        (a.output && veil_outputs_check(a.output, c->model)) ||
        veil_client_load_secret_key(c, a.key, &sk)) {
        fail("remote");
        goto out;
    }
    if (c->prog->n_inputs > 64) {
        fprintf(stderr, "veil remote: models with more than 64 inputs are not supported\n");
        goto out;
    }
    if (veil_client_check_eval_key(sk, a.key)) { /* before any upload */
        fail("remote");
        goto out;
    }
    if (read_samples("remote", c, &a, &in, &n)) goto out;
    size_t max_samples = 1;
    if (veil_remote_check_model(c, a.server, &ro, &max_samples)) {
        fail("remote");
        goto out;
    }
    char key_id[VEIL_KEY_ID_CHARS + 1];
    int uploaded = 0;
    double t0 = now_s();
    if (veil_remote_ensure_key(a.server, a.key, &ro, key_id, &uploaded)) {
        fail("remote");
        goto out;
    }
    key_there = 1;
    fprintf(stderr, "veil remote: %s evaluation key %.8s... (%.2f s)\n",
            uploaded ? "uploaded" : "server already has", key_id, now_s() - t0);
    const veil_program *p = c->prog;
    all = calloc(p->n_outputs, sizeof *all);
    if (!all) goto out;
    for (uint32_t o = 0; o < p->n_outputs; o++)
        if (!(all[o] = malloc(n * veil_program_output_size(p, o) * sizeof(int64_t) + 1))) goto out;
    /* Requests of at most the server's per-request limit. */
    double t_req = 0;
    for (size_t s0 = 0; s0 < n; s0 += max_samples) {
        size_t cnt = n - s0 < max_samples ? n - s0 : max_samples;
        const int64_t *ins[VEIL_MAX_PORTS];
        for (uint32_t i = 0; i < p->n_inputs; i++)
            ins[i] = in.inputs[i] + s0 * veil_program_input_size(p, i);
        uint8_t *body = NULL, *resp = NULL;
        size_t len = 0, resp_len = 0, bs = 0;
        if (veil_client_encrypt(c, sk, ins, cnt, &body, &len)) {
            fail("remote");
            goto out;
        }
        double t1 = now_s();
        veil_status st = veil_remote_infer(a.server, key_id, body, len, &ro, &resp, &resp_len, &bs);
        if (st && veil_remote_last_status() == 404) {
            /* The server lost the key (keys dir wiped, another server behind
             * the same URL): upload it again, once, and resend. */
            fprintf(stderr, "veil remote: %s; uploading the evaluation key again\n",
                    veil_error_message());
            uploaded = 1; /* force: Triton cannot look the cached id up */
            if (veil_remote_ensure_key(a.server, a.key, &ro, key_id, &uploaded) == VEIL_OK)
                st = veil_remote_infer(a.server, key_id, body, len, &ro, &resp, &resp_len, &bs);
        }
        t_req += now_s() - t1;
        veil_serial_buffer_free(body, len);
        if (st) {
            fail("remote");
            goto out;
        }
        veil_ct_batch *b = NULL;
        int64_t **outs = NULL;
        size_t got = 0;
        /* at most the result of cnt samples in memory: a seeded answer grows
         * (dim+1)-fold, and the server is not trusted with this process's memory */
        const uint64_t want = (uint64_t)cnt * veil_program_sample_out_cts(p) *
                              (veil_params_big_dim(p->params) + 1) * sizeof(uint64_t);
        st = veil_ct_batch_deserialize_limited(resp, resp_len, want, &b);
        free(resp);
        if (st || veil_client_decrypt(c, sk, b, &got, &outs)) {
            veil_error_prefix("result from %s: ", a.server);
            veil_ct_batch_free(b);
            fail("remote");
            goto out;
        }
        veil_ct_batch_free(b);
        if (got != cnt) {
            veil_client_outputs_free(c, outs);
            fprintf(stderr, "veil remote: the server returned %zu samples for %zu\n", got, cnt);
            goto out;
        }
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            size_t sz = veil_program_output_size(p, o);
            memcpy(all[o] + s0 * sz, outs[o], cnt * sz * sizeof(int64_t));
        }
        veil_client_outputs_free(c, outs);
        fprintf(stderr, "veil remote: %zu samples in %.2f s (server batch %zu)\n", cnt,
                now_s() - t1, bs);
    }
    if (in.labels) {
        size_t sz = veil_program_output_size(p, 0), ok = 0;
        for (size_t s = 0; s < n; s++)
            ok += (int64_t)veil_model_class(&c->model->outputs[0], all[0] + s * sz) == in.labels[s];
        fprintf(stderr, "veil remote: accuracy %.4f on %zu labelled samples\n",
                (double)ok / (double)n, n);
    }
    if (in.targets) {
        double rmse, mae;
        veil_regression_error(c->model, all[0], n, in.targets, &rmse, &mae);
        fprintf(stderr, "veil remote: RMSE %.6g, MAE %.6g on %zu samples with targets\n", rmse, mae,
                n);
    }
    fprintf(stderr, "veil remote: %zu samples, %.3f s per sample round trip\n", n,
            t_req / (double)n);
    rc = write_or_print("remote", c, a.output, all, n);
out:
    if (a.delete_key && key_there) {
        char gone[VEIL_KEY_ID_CHARS + 1];
        int was = 0;
        if (veil_remote_delete_key(a.server, a.key, &ro, gone, &was)) {
            rc = fail("remote");
        } else {
            fprintf(stderr, "veil remote: %s evaluation key %.8s... from %s\n",
                    was ? "deleted" : "the server had already lost", gone, a.server);
        }
    }
    if (c) {
        veil_client_outputs_free(c, all);
        veil_model_samples_free(&in, c->model->n_inputs, 0);
    }
    veil_secret_key_free(sk);
    veil_client_free(c);
    return rc;
}
