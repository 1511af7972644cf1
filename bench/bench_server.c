/* bench_server — load test of veil-server on loopback: requests/s, samples/s
 * and latency percentiles for 1, 4 and 16 concurrent clients, with the batch
 * sizes the server's dynamic batcher formed. JSON on stdout (or --out).
 *
 * By default it starts the server in-process on 127.0.0.1 (a free port) with
 * a temporary keys dir, makes a key (`veil keygen`), uploads it once, and
 * drives POST /v1/infer from N client threads (libcurl, one connection per
 * request, like `veil remote`) for --seconds per level or --requests per
 * client, whichever comes first. Each client checks its first answer against
 * the clear simulation. --url drives an already running server instead
 * (loopback addresses only: this is a local load test).
 *
 * --target triton|both: the same load through NVIDIA Triton Inference Server
 * with veil's backend (libtriton_veil.so; tritonserver from
 * scripts/setup-triton.sh) on the same backend and model: a model repository
 * with max_batch_size = --max-batch requests, max_queue_delay = --max-wait-ms
 * and veil's backend batches of --max-batch samples, one instance (KIND_GPU on
 * --gpus devices for --backend cuda, else KIND_CPU). "both" runs veil-server
 * then Triton in one run; the JSON then has one object per target under
 * "targets".
 *
 * usage: bench_server [--model M] [--backend auto|cpu|cuda] [--clients 1,4,16]
 *                     [--seconds S] [--requests R] [--samples K] [--max-batch B]
 *                     [--max-wait-ms W] [--url http://127.0.0.1:PORT] [--out F]
 *                     [--target server|triton|both] [--gpus N] */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "veil/atomic_file.h"
#include "veil/client.h"
#include "veil/compile_options.h"
#include "veil/exec.h"
#include "veil/server.h"
#ifdef VEIL_BENCH_TRITON
#include "../host/client/http.h"
#include "launch.h"
#endif

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct bench_cfg {
    const char *model, *url, *out, *backend;
    int clients[8], n_levels;
    double seconds;
    size_t requests, samples, max_batch;
    unsigned max_wait_ms;
    const char *target; /* server, triton or both */
    int gpus;
} bench_cfg;

typedef struct shared {
    const bench_cfg *cfg;
    const veil_client *c;
    const veil_secret_key *sk;
    const char *url;
    const char *triton_model; /* NULL: veil-server */
    char key_id[VEIL_KEY_ID_CHARS + 1];
    double t_end;
} shared;

typedef struct client_res {
    shared *sh;
    int index;
    double *lat; /* seconds per request */
    size_t *batch;
    size_t n, cap;
    size_t errors;
    int checked_ok;
    char first_error[256];
} client_res;

static int64_t *simulate(const veil_client *c, const int64_t *in0, size_t n) {
    const veil_program *p = c->prog;
    int64_t *out = malloc(n * veil_program_output_size(p, 0) * sizeof(int64_t) + 1);
    const int64_t *in[1] = {in0};
    int64_t *outs[1] = {out};
    if (!out || veil_program_simulate(p, in, n, outs, NULL, NULL)) {
        free(out);
        return NULL;
    }
    return out;
}

static void *client_main(void *arg) {
    client_res *r = arg;
    shared *sh = r->sh;
    const veil_client *c = sh->c;
    const veil_program *p = c->prog;
    const size_t k = sh->cfg->samples, golden = c->model->golden.count;
    const size_t s0 = golden > k ? ((size_t)r->index * k) % (golden - k + 1) : 0;
    const int64_t *in[64];
    for (uint32_t i = 0; i < p->n_inputs && i < 64; i++)
        in[i] = c->model->golden.inputs[i] + s0 * veil_program_input_size(p, i);
    uint8_t *body = NULL;
    size_t len = 0;
    if (veil_client_encrypt(c, sh->sk, in, k, &body, &len)) {
        snprintf(r->first_error, sizeof r->first_error, "encrypt: %s", veil_error_message());
        r->errors++;
        return NULL;
    }
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    ro.retries = 0; /* count refusals instead of hiding them */
    ro.triton_model = sh->triton_model;
    while (now_s() < sh->t_end && r->n < sh->cfg->requests) {
        uint8_t *resp = NULL;
        size_t resp_len = 0, bs = 0;
        double t0 = now_s();
        veil_status st =
            veil_remote_infer(sh->url, sh->key_id, body, len, &ro, &resp, &resp_len, &bs);
        double dt = now_s() - t0;
        if (st) {
            if (!r->errors++)
                snprintf(r->first_error, sizeof r->first_error, "%s", veil_error_message());
            continue;
        }
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 64;
            r->lat = realloc(r->lat, r->cap * sizeof *r->lat);
            r->batch = realloc(r->batch, r->cap * sizeof *r->batch);
        }
        r->lat[r->n] = dt;
        r->batch[r->n] = bs;
        if (r->n == 0 && p->n_inputs == 1) { /* check the first answer */
            veil_ct_batch *b = NULL;
            int64_t **outs = NULL;
            size_t got = 0;
            int64_t *sim = simulate(c, in[0], k);
            r->checked_ok =
                sim && veil_ct_batch_deserialize(resp, resp_len, &b) == VEIL_OK &&
                veil_client_decrypt(c, sh->sk, b, &got, &outs) == VEIL_OK && got == k &&
                !memcmp(sim, outs[0], k * veil_program_output_size(p, 0) * sizeof(int64_t));
            free(sim);
            veil_client_outputs_free(c, outs);
            veil_ct_batch_free(b);
        }
        r->n++;
        free(resp);
    }
    veil_serial_buffer_free(body, len);
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q) {
    if (!n) return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int loopback_url(const char *u) {
    const char *h = strstr(u, "://");
    h = h ? h + 3 : u;
    return !strncmp(h, "127.", 4) || !strncmp(h, "localhost", 9) || !strncmp(h, "[::1]", 5);
}

/* Triton's counters of model `name` (GET /v2/models/<name>/stats): requests
 * answered and executions (backend calls) so far; -1 when unknown. */
static void triton_counts(const char *url, const char *name, long *requests, long *executions) {
    *requests = *executions = -1;
#ifdef VEIL_BENCH_TRITON
    char u[256];
    snprintf(u, sizeof u, "%s/v2/models/%s/stats", url, name);
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    veil_http_resp r;
    if (veil_http_do("GET", u, NULL, NULL, 0, 1, VEIL_REMOTE_JSON_MAX, &ro, &r) || r.status != 200)
        return;
    const char *j = (const char *)r.body;
    const char *ic = strstr(j, "\"inference_count\":"), *ec = strstr(j, "\"execution_count\":");
    if (ic) *requests = atol(ic + 18);
    if (ec) *executions = atol(ec + 18);
    free(r.body);
#else
    (void)url, (void)name;
#endif
}

/* Uploads the key to the target at url (veil-server srv, or Triton when
 * triton_model is set), warms up, runs every client level and writes the
 * target's JSON object. 0 on success; 1 when a level had failed requests or
 * wrong first answers (the JSON is whole; stderr names the level); -1 when
 * the target could not be measured (veil_error_message says why; the JSON
 * is not whole). */
static int run_target(bench_cfg *pcfg, const veil_client *c, const veil_secret_key *sk,
                      const char *keydir, const veil_keygen_info *pkg, const char *url,
                      veil_server *srv, const char *triton_model, FILE *out) {
    bench_cfg cfg = *pcfg;
    const veil_keygen_info kg = *pkg;
    shared sh = {0};
    sh.triton_model = triton_model;
    const char *label = triton_model ? "triton" : "server";
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    ro.triton_model = triton_model;
    int uploaded = 1;
    double tu = now_s();
    if (veil_remote_check_model(c, url, &ro, NULL) ||
        veil_remote_ensure_key(url, keydir, &ro, sh.key_id, &uploaded))
        return -1;
    tu = now_s() - tu;
    fprintf(stderr, "bench_server: %s on %s, key upload %.2f s (%zu bytes)\n", cfg.model, url, tu,
            kg.eval_key_bytes);
    sh.cfg = &cfg;
    sh.c = c;
    sh.sk = sk;
    sh.url = url;
    /* Warm-up: loads the key into the backend (plan) outside the timings. */
    {
        client_res w = {0};
        w.sh = &sh;
        size_t saved = cfg.requests;
        cfg.requests = 1;
        sh.t_end = now_s() + 600;
        client_main(&w);
        cfg.requests = saved;
        if (w.n != 1 || !w.checked_ok) {
            veil_error(VEIL_ERR_IO, "%s: warm-up failed (%s)", label,
                       w.errors ? w.first_error : "wrong result");
            free(w.lat);
            free(w.batch);
            return -1;
        }
        free(w.lat);
        free(w.batch);
    }
    fprintf(out,
            "    {\"target\": \"%s\",\n  \"model\": \"%s\",\n  \"params\": \"%s\",\n"
            "  \"pbs_per_sample\": %llu,\n  \"backend\": \"%s\",\n  \"max_batch\": %zu,\n"
            "  \"max_wait_ms\": %u,\n  \"samples_per_request\": %zu,\n"
            "  \"eval_key_bytes\": %zu,\n  \"key_upload_s\": %.3f,\n  \"levels\": [\n",
            label, cfg.model, c->prog->params->id, (unsigned long long)c->prog->pbs_per_sample,
            cfg.url ? "external" : cfg.backend, cfg.max_batch, cfg.max_wait_ms, cfg.samples,
            kg.eval_key_bytes, tu);
    int level_failed = 0;
    for (int L = 0; L < cfg.n_levels; L++) {
        const int n = cfg.clients[L];
        client_res *res = calloc((size_t)n, sizeof *res);
        pthread_t *th = calloc((size_t)n, sizeof *th);
        if (!res || !th) {
            free(res);
            free(th);
            veil_error(VEIL_ERR_NOMEM, "%s: %d clients: out of memory", label, n);
            return -1;
        }
        veil_server_stats before = {0}, after = {0};
        long treq0 = -1, texec0 = -1, treq1 = -1, texec1 = -1;
        if (srv) veil_server_get_stats(srv, &before);
        if (triton_model) triton_counts(url, triton_model, &treq0, &texec0);
        double t0 = now_s();
        sh.t_end = t0 + cfg.seconds;
        for (int i = 0; i < n; i++) {
            res[i].sh = &sh;
            res[i].index = i;
            pthread_create(&th[i], NULL, client_main, &res[i]);
        }
        size_t total = 0, errors = 0, checked = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            total += res[i].n;
            errors += res[i].errors;
            checked += res[i].checked_ok;
        }
        double wall = now_s() - t0;
        const char *first_err = "";
        for (int i = n - 1; i >= 0; i--)
            if (res[i].errors) first_err = res[i].first_error;
        if (srv) veil_server_get_stats(srv, &after);
        if (triton_model) triton_counts(url, triton_model, &treq1, &texec1);
        double *lat = malloc((total + 1) * sizeof *lat);
        size_t k = 0, bmax = 0;
        double bsum = 0;
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < res[i].n; j++) {
                lat[k++] = res[i].lat[j];
                bsum += (double)res[i].batch[j];
                if (res[i].batch[j] > bmax) bmax = res[i].batch[j];
            }
        qsort(lat, total, sizeof *lat, cmp_d);
        uint64_t nb = after.batches - before.batches;
        uint64_t ns = after.batch_samples - before.batch_samples;
        if (triton_model && treq0 >= 0 && treq1 >= treq0 && texec1 >= texec0) {
            /* Triton: executions, and samples per execution (its requests
             * each carry --samples samples). */
            nb = (uint64_t)(texec1 - texec0);
            ns = (uint64_t)(treq1 - treq0) * cfg.samples;
        }
        const double es = after.exec_seconds - before.exec_seconds;
        fprintf(out,
                "    {\"clients\": %d, \"seconds\": %.3f, \"requests\": %zu, \"errors\": %zu,"
                " \"checked_ok\": %zu, \"requests_per_s\": %.3f, \"samples_per_s\": %.3f,\n"
                "     \"latency_ms\": {\"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, \"max\": "
                "%.2f},\n"
                "     \"batch_seen_by_requests\": {\"mean\": %.2f, \"max\": %zu},\n",
                n, wall, total, errors, checked, (double)total / wall,
                (double)(total * cfg.samples) / wall, 1e3 * pct(lat, total, 0.5),
                1e3 * pct(lat, total, 0.9), 1e3 * pct(lat, total, 0.99), 1e3 * pct(lat, total, 1.0),
                total ? bsum / (double)total : 0, bmax);
        /* The server's own counters: an in-process veil-server has them all;
         * Triton only its execution counts (when its stats answered); an
         * external --url none. Unmeasured ones are null, not 0. */
        const int have_batches =
            srv || (triton_model && treq0 >= 0 && treq1 >= treq0 && texec1 >= texec0);
        fprintf(out, "     \"server\": {\"batches\": ");
        if (have_batches)
            fprintf(out, "%llu, \"mean_batch_samples\": %.2f", (unsigned long long)nb,
                    nb ? (double)ns / (double)nb : 0);
        else
            fprintf(out, "null, \"mean_batch_samples\": null");
        fprintf(out, ", \"pbs_per_s_in_exec\": ");
        if (srv)
            fprintf(out, "%.1f", es > 0 ? (double)(ns * c->prog->pbs_per_sample) / es : 0);
        else
            fprintf(out, "null");
        fprintf(out, ", \"batch_hist_le_1_2_4_8_16_32_64_128_inf\": ");
        if (srv) {
            for (int h = 0; h < 9; h++)
                fprintf(out, "%s%llu", h ? ", " : "[",
                        (unsigned long long)(after.batch_hist[h] - before.batch_hist[h]));
            fprintf(out, "]");
        } else {
            fprintf(out, "null");
        }
        fprintf(out, "}}%s\n", L + 1 < cfg.n_levels ? "," : "");
        /* every request answered, and every client's first answer checked
         * against the simulation (programs of one input: client_main) */
        const int checks = c->prog->n_inputs == 1;
        if (errors || (checks && checked < (size_t)n)) {
            fprintf(stderr,
                    "bench_server: %s, %d clients: %zu failed requests, %zu of %d first answers "
                    "checked right%s%s\n",
                    label, n, errors, checks ? checked : (size_t)n, n, errors ? ": " : "",
                    first_err);
            level_failed = 1;
        }
        fprintf(stderr,
                "bench_server: %s %2d clients: %zu requests in %.1f s, %.2f req/s, p50 %.0f ms, "
                "p99 %.0f ms, mean server batch %.2f, %zu errors%s%s\n",
                label, n, total, wall, (double)total / wall, 1e3 * pct(lat, total, 0.5),
                1e3 * pct(lat, total, 0.99), nb ? (double)ns / (double)nb : 0, errors,
                errors ? ": " : "", first_err);
        for (int i = 0; i < n; i++) {
            free(res[i].lat);
            free(res[i].batch);
        }
        free(lat);
        free(res);
        free(th);
    }
    fprintf(out, "  ]}");
    return level_failed;
}

static int usage_error(void) {
    fprintf(stderr, "bench_server: %s\n", veil_error_message());
    return 2;
}

/* The defaults, here once: the run and --help read them. */
static void cfg_default(bench_cfg *c) {
    memset(c, 0, sizeof *c);
    c->model = "models/tiny.h5";
    c->backend = "auto";
    c->clients[0] = 1, c->clients[1] = 4, c->clients[2] = 16, c->n_levels = 3;
    c->seconds = 10;
    c->requests = 1000;
    c->samples = 1;
    c->max_batch = 16;
    c->max_wait_ms = 10;
    c->target = "server";
}

static void usage(FILE *f, const char *argv0) {
    bench_cfg d;
    cfg_default(&d);
    fprintf(f,
            "usage: %s [--model M] [--backend auto|cpu|cuda] [--clients 1,4,16] [--seconds S]\n"
            "       [--requests R] [--samples K] [--max-batch B] [--max-wait-ms W]\n"
            "       [--url http://127.0.0.1:PORT] [--out FILE] [--target server|triton|both]\n"
            "       [--gpus N]\n"
            "Load test of veil-server (and of Triton with veil's backend) on loopback.\n\n"
            "options:\n"
            "  --model M       the model (default %s)\n"
            "  --backend auto|cpu|cuda\n"
            "                  the server's backend (default %s)\n"
            "  --clients LIST  concurrent clients per level, each 1 to 256, at most 8 levels\n"
            "                  (default %d,%d,%d)\n"
            "  --seconds S     per level, at most 600 (default %g)\n"
            "  --requests R    per client and level, whichever comes first (default %zu)\n"
            "  --samples K     samples per request (default %zu)\n"
            "  --max-batch B   the server's --max-batch (default %zu)\n"
            "  --max-wait-ms W\n"
            "                  the server's --max-wait-ms (default %u)\n"
            "  --url URL       drive a running server on loopback instead of starting one\n"
            "  --out FILE      the JSON (default: standard output)\n"
            "  --target server|triton|both\n"
            "                  default %s; triton needs scripts/setup-triton.sh's venv\n"
            "  --gpus N        with --backend cuda, Triton's KIND_GPU instances on GPUs 0 to\n"
            "                  N - 1 (default 0: every GPU)\n",
            argv0, d.model, d.backend, d.clients[0], d.clients[1], d.clients[2], d.seconds,
            d.requests, d.samples, d.max_batch, d.max_wait_ms, d.target);
}

int main(int argc, char **argv) {
    bench_cfg cfg;
    cfg_default(&cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v || !strcmp(a, "--help") || !strcmp(a, "-h")) {
            /* --help: the usage on stdout, exit 0; anything else: stderr, 2 */
            const int help = !strcmp(a, "--help") || !strcmp(a, "-h");
            usage(help ? stdout : stderr, argv[0]);
            return help ? 0 : 2;
        }
        i++;
        if (!strcmp(a, "--model"))
            cfg.model = v;
        else if (!strcmp(a, "--backend"))
            cfg.backend = v;
        else if (!strcmp(a, "--url"))
            cfg.url = v;
        else if (!strcmp(a, "--out"))
            cfg.out = v;
        else if (!strcmp(a, "--target"))
            cfg.target = v;
        else if (!strcmp(a, "--seconds")) {
            if (veil_arg_double(a, v, 1e-3, 600, &cfg.seconds) != VEIL_OK) return usage_error();
        } else if (!strcmp(a, "--gpus") || !strcmp(a, "--requests") || !strcmp(a, "--samples") ||
                   !strcmp(a, "--max-batch") || !strcmp(a, "--max-wait-ms")) {
            /* the shared integer rule (veil_arg_u64): digits only, in range */
            const int gpus = !strcmp(a, "--gpus"), wait = !strcmp(a, "--max-wait-ms");
            uint64_t u;
            if (veil_arg_u64(a, v, gpus || wait ? 0 : 1,
                             gpus   ? 64
                             : wait ? 600000
                                    : (uint64_t)1 << 20,
                             &u) != VEIL_OK)
                return usage_error();
            if (gpus)
                cfg.gpus = (int)u;
            else if (wait)
                cfg.max_wait_ms = (unsigned)u;
            else
                *(!strcmp(a, "--requests")  ? &cfg.requests
                  : !strcmp(a, "--samples") ? &cfg.samples
                                            : &cfg.max_batch) = (size_t)u;
        } else if (!strcmp(a, "--clients")) {
            cfg.n_levels = 0;
            char list[256];
            snprintf(list, sizeof list, "%s", v);
            char *save = NULL;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                uint64_t u;
                if (cfg.n_levels == 8) {
                    fprintf(stderr, "bench_server: --clients %s: at most 8 levels\n", v);
                    return 2;
                }
                if (veil_arg_u64("--clients", t, 1, 256, &u) != VEIL_OK) return usage_error();
                cfg.clients[cfg.n_levels++] = (int)u;
            }
            if (!cfg.n_levels) {
                fprintf(stderr, "bench_server: --clients '%s': expected a list such as 1,4,16\n",
                        v);
                return 2;
            }
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (strcmp(cfg.target, "server") && strcmp(cfg.target, "triton") &&
        strcmp(cfg.target, "both")) {
        fprintf(stderr, "bench_server: --target server, triton or both\n");
        return 2;
    }
    if (cfg.url && !loopback_url(cfg.url)) {
        fprintf(stderr, "bench_server: --url must be a loopback address (127.x, localhost, "
                        "[::1]): this is a local load test\n");
        return 2;
    }
    veil_client *c = NULL;
    if (veil_client_open(cfg.model, NULL, &c)) {
        fprintf(stderr, "bench_server: %s\n", veil_error_message());
        return 1;
    }
    if (!c->model->golden.count) {
        fprintf(stderr, "bench_server: %s has no golden inputs to send\n", cfg.model);
        veil_client_free(c);
        return 1;
    }
    /* each request sends --samples consecutive golden inputs */
    if (cfg.samples > c->model->golden.count) {
        fprintf(stderr, "bench_server: --samples %zu: %s has only %zu golden inputs to send\n",
                cfg.samples, cfg.model, (size_t)c->model->golden.count);
        veil_client_free(c);
        return 2;
    }
    char tmp[] = "/tmp/veil-bench-server-XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char keydir[512], keys[512];
    snprintf(keydir, sizeof keydir, "%s/client", tmp);
    snprintf(keys, sizeof keys, "%s/keys", tmp);
    veil_keygen_info kg;
    veil_secret_key *sk = NULL;
    veil_server *srv = NULL;
    int rc = 1;
    char url[128];
    FILE *out = stdout;
    veil_atomic_file af = {0};
    int measured_failed = 0; /* a level's failures: the JSON is whole, rc 1 */
#ifdef VEIL_BENCH_TRITON
    veil_triton_server tsrv = {0};
#endif
    if (veil_client_keygen(c, keydir, 0, &kg) || veil_client_load_secret_key(c, keydir, &sk))
        goto fail;
    if (cfg.out) {
        if (veil_atomic_file_open(&af, cfg.out, 0644) != VEIL_OK) goto fail;
        out = af.f;
    }
    fprintf(out, "{\n  \"bench\": \"server\",\n  \"targets\": [\n");
    const int want_server = strcmp(cfg.target, "triton") != 0;
    const int want_triton = strcmp(cfg.target, "server") != 0;
    if (want_server) {
        if (cfg.url) {
            snprintf(url, sizeof url, "%s", cfg.url);
        } else {
            veil_server_options o;
            veil_server_options_default(&o);
            o.model_path = cfg.model;
            o.listen = "127.0.0.1:0";
            o.keys_dir = keys;
            o.max_batch = cfg.max_batch;
            o.max_wait_ms = cfg.max_wait_ms;
            o.max_request_samples = cfg.samples > 1024 ? cfg.samples : 1024;
            o.max_inflight = 512;
            o.max_queue = 1024;
            if (veil_backend_kind_parse(cfg.backend, &o.backend) || veil_server_start(&o, &srv))
                goto fail;
            snprintf(url, sizeof url, "http://127.0.0.1:%u", veil_server_port(srv));
        }
        const int src = run_target(&cfg, c, sk, keydir, &kg, url, srv, NULL, out);
        if (src < 0) goto fail;
        measured_failed |= src;
        veil_server_stop(srv);
        srv = NULL;
    }
    if (want_triton) {
#ifdef VEIL_BENCH_TRITON
        veil_triton_env env;
        veil_triton_repo_options ro = {0};
        char repo[600], log[600];
        snprintf(repo, sizeof repo, "%s/repo", tmp);
        snprintf(log, sizeof log, "%s/tritonserver.log", tmp);
        ro.name = "bench";
        ro.model_path = cfg.model;
        ro.keys_dir = keys;
        ro.gpu = !strcmp(cfg.backend, "cuda");
        ro.gpus = cfg.gpus;
        ro.max_batch_size = (int)cfg.max_batch;
        ro.max_queue_delay_us = (int)cfg.max_wait_ms * 1000;
        ro.max_batch = cfg.max_batch;
        char extra[128];
        snprintf(extra, sizeof extra,
                 "parameters: { key: \"max_request_samples\" value: { string_value: \"%zu\" } }\n",
                 cfg.samples > 1024 ? cfg.samples : (size_t)1024);
        ro.extra = extra;
        if (veil_triton_env_find(VEIL_BENCH_SOURCE_DIR, &env) ||
            veil_triton_repo_write(repo, &ro) ||
            veil_triton_server_start(&env, repo, VEIL_TRITON_BACKEND_DIR, "bench", log, 300, &tsrv))
            goto fail;
        fprintf(out, want_server ? ",\n" : "");
        int trc = run_target(&cfg, c, sk, keydir, &kg, tsrv.url, NULL, "bench", out);
        veil_triton_server_stop(&tsrv);
        if (trc < 0) goto fail;
        measured_failed |= trc;
#else
        veil_error(VEIL_ERR_UNSUPPORTED, "built without the Triton backend (VEIL_TRITON)");
        goto fail;
#endif
    }
    fprintf(out, "\n  ]\n}\n");
    /* the JSON is whole: --out appears, even when a level failed */
    if (cfg.out && veil_atomic_file_commit(&af) != VEIL_OK) goto fail;
    out = stdout;
    rc = measured_failed;
    if (rc) fprintf(stderr, "bench_server: failed: a level had failed requests (above)\n");
fail:
    if (rc && !measured_failed) fprintf(stderr, "bench_server: %s\n", veil_error_message());
#ifdef VEIL_BENCH_TRITON
    veil_triton_server_stop(&tsrv);
#endif
    if (out != stdout) veil_atomic_file_discard(&af); /* not whole: a previous file kept */
    veil_server_stop(srv);
    veil_secret_key_free(sk);
    veil_client_free(c);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "bench_server: could not remove %s\n", tmp);
    return rc;
}
