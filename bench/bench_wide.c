/* bench_wide — the cost of one exact wide lookup on a backend: for each
 * input width, a model x[n] -> lut (a 4-bit activation table over [0, 2^w))
 * compiled with the default options (exact; the compiler decomposes the
 * lookup into PBS of the width its cost model picks), then keygen, encrypt,
 * execute, decrypt, every output checked against the table. JSON out.
 *
 *   bench_wide [--widths 10,12,14,16] [--tables requant,aligned,random] [--n 4]
 *              [--lookup-bits N] [--wop off|auto|always] [--methods compiled,wop]
 *              [--backend cpu|cuda] [--out FILE.json]
 *
 * --wop is the compile option (veil/program.h "WoP lookups": the compiled
 * program then holds a WoP-PBS and its refresh where asked; default auto,
 * the compiler's). --backend runs the compiled programs there (default
 * cpu; cuda: the WoP-PBS of kernels/src/wop.cu). --methods wop
 * runs the same tables and inputs through the WoP-PBS primitive alone
 * (veil/wop.h, no program) with the set for the
 * width (the 9-bit one below 9 bits), the n lookups one after another on
 * one thread; "compiled,wop" runs both in one process, each width's two
 * right after each other (the default: compiled).
 *
 * Tables: "requant", a ReLU requantization to 4 bits with its zero point in
 * the middle of the range (15 steps at unaligned positions: the usual
 * activation); "aligned", clamp(x >> (w - 4), 0, 15) (steps on multiples of
 * 2^(w-4): the decomposition needs no step PBS, like exact rounding);
 * "random", every value a seeded pseudo-random 4-bit number (a step at
 * nearly every input: the decomposition's worst case; veil takes at most
 * 4096 steps off the top digit's multiples, a random table of 12 bits). Set
 * VEIL_THREADS=1 for one core; the JSON has wall and process CPU seconds. */
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
#include "veil/program.h"
#include "veil/wop.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *dup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

static int64_t table_value(const char *kind, unsigned w, int64_t x) {
    if (!strcmp(kind, "random")) { /* splitmix64 of (w, x) */
        uint64_t z = ((uint64_t)w << 32) + (uint64_t)x + 0x9e3779b97f4a7c15u;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        return (int64_t)((z ^ (z >> 31)) & 15);
    }
    if (!strcmp(kind, "aligned")) {
        int64_t y = x >> (w - 4);
        return y > 15 ? 15 : y;
    }
    const double half = ldexp(1.0, (int)w - 1);
    double y = nearbyint(((double)x - half) * 15.5 / half);
    return y < 0 ? 0 : y > 15 ? 15 : (int64_t)y;
}

static veil_model *make_model(unsigned w, const char *kind, uint32_t n) {
    veil_model *m = NULL;
    if (veil_model_new(&m)) return NULL;
    m->name = dup("wide");
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->inputs[0].name = dup("x");
    m->inputs[0].shape = (veil_shape){1, {n}};
    m->inputs[0].scale = 1;
    m->inputs[0].n_bits = w;
    m->inputs[0].range[1] = ((int64_t)1 << w) - 1;
    m->n_layers = 1;
    m->layers = calloc(1, sizeof *m->layers);
    veil_model_layer *l = m->layers;
    l->name = dup("0000_lut");
    l->op = VEIL_OP_LUT;
    l->n_inputs = 1;
    l->inputs = calloc(1, sizeof(char *));
    l->inputs[0] = dup("x");
    l->out_shape = (veil_shape){1, {n}};
    l->in_max = m->inputs[0].range[1];
    l->n_tables = 1;
    l->table = malloc(((size_t)1 << w) * sizeof *l->table);
    for (int64_t x = 0; x <= l->in_max; x++)
        l->table[x] = table_value(kind, w, x);
    l->range[1] = 15;
    m->n_outputs = 1;
    m->outputs = calloc(1, sizeof *m->outputs);
    m->outputs[0].name = dup("y");
    m->outputs[0].source = dup("0000_lut");
    m->outputs[0].shape = (veil_shape){1, {n}};
    m->outputs[0].n_scale = 1;
    m->outputs[0].scale = malloc(sizeof(double));
    m->outputs[0].scale[0] = 1;
    m->outputs[0].zero_point = calloc(1, sizeof(double));
    return m;
}

/* One width and table: a JSON object on f (led by a comma unless *first,
 * which it clears once it printed). 0 when every output was right. */
static int bench_one(FILE *f, int *first, unsigned w, const char *kind, uint32_t n,
                     unsigned lookup_bits, veil_wop_mode wop, veil_backend_kind backend) {
    veil_model *m = make_model(w, kind, n);
    veil_program *p = NULL;
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.bounds = VEIL_BOUNDS_WORST_CASE; /* the inputs cover the whole range */
    o.lookup_bits = lookup_bits;
    o.wop = wop;
    uint8_t seed[5][32];
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    veil_backend *be = NULL;
    veil_plan *plan = NULL;
    int64_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint64_t *cin = NULL, *cout = NULL;
    int rc = 1;
    double t0, c0, keygen = 0, wall = 0, cpu = 0;
    size_t ok = 0;
    if (!m || !x || !y || veil_program_compile(m, &o, &p)) goto out;
    unsigned widest = 0, wop_nodes = 0; /* widest: of the classic PBS */
    for (size_t i = 0; i < p->n_nodes; i++) {
        if (p->nodes[i].kind != VEIL_NODE_LUT) continue;
        if (p->nodes[i].wop)
            wop_nodes++;
        else if (p->nodes[i].in_bits > widest)
            widest = p->nodes[i].in_bits;
    }
    const size_t lwe = veil_program_ct_words(p);
    cin = malloc(n * lwe * sizeof *cin);
    cout = malloc(n * lwe * sizeof *cout);
    for (unsigned i = 0; i < 5; i++)
        for (unsigned j = 0; j < 32; j++)
            seed[i][j] = (uint8_t)(i * 77 + j * 13 + w);
    t0 = clock_s(CLOCK_MONOTONIC);
    if (!cin || !cout || veil_program_keygen(p, seed[0], &sk) ||
        veil_eval_key_new(sk, seed[1], seed[2], &ek))
        goto out;
    keygen = clock_s(CLOCK_MONOTONIC) - t0;
    if (veil_encryptor_new(seed[3], seed[4], &enc) || veil_backend_new_env(backend, &be) ||
        veil_plan_new(p, ek, be, 1, &plan))
        goto out;
    /* inputs spread over the range, around the steps */
    for (uint32_t i = 0; i < n; i++)
        x[i] = (int64_t)(((uint64_t)i * 2654435761u + 12345) % ((uint64_t)1 << w));
    if (veil_program_encrypt(p, enc, sk, 0, x, 1, cin)) goto out;
    t0 = clock_s(CLOCK_MONOTONIC);
    c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (veil_plan_execute(plan, (const uint64_t *const *)&cin, 1, &cout)) goto out;
    wall = clock_s(CLOCK_MONOTONIC) - t0;
    cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (veil_program_decrypt(p, sk, 0, cout, 1, y)) goto out;
    for (uint32_t i = 0; i < n; i++)
        ok += y[i] == table_value(kind, w, x[i]);
    fprintf(f,
            "%s\n    {\"method\": \"compiled\", \"backend\": \"%s\", \"wop\": \"%s\", "
            "\"wop_nodes\": %u, "
            "\"width\": %u, \"table\": \"%s\", \"params\": \"%s\", \"N\": %u, "
            "\"widest_pbs_bits\": %u, \"pbs_per_lookup\": %.2f, \"lookups\": %u, "
            "\"keygen_s\": %.3f, \"run_s_per_lookup\": %.4f, \"cpu_s_per_lookup\": %.4f, "
            "\"predicted_ms_per_lookup\": %.1f, \"correct\": %zu}",
            *first ? "" : ",", veil_backend_name(be),
            strstr(p->options_canonical, "wop=always") ? "always"
            : strstr(p->options_canonical, "wop=auto") ? "auto"
                                                       : "off",
            wop_nodes, w, kind, p->params->id, p->params->poly_size, widest,
            (double)p->pbs_per_sample / n, n, keygen, wall / n, cpu / n, p->cost_per_sample / n,
            ok);
    fprintf(stderr,
            "w=%-2u %-8s %-22s widest PBS %u bits, %u WoP, %6.1f PBS/lookup, keygen %6.2f s, "
            "%8.3f s/lookup (cpu %8.3f; predicted %.3f), %zu/%u correct\n",
            w, kind, p->params->id, widest, wop_nodes, (double)p->pbs_per_sample / n, keygen,
            wall / n, cpu / n, 1e-3 * p->cost_per_sample / n, ok, n);
    *first = 0;
    rc = ok == n ? 0 : 1;
    if (rc) fprintf(stderr, "bench_wide: w=%u %s: %zu of %u outputs wrong\n", w, kind, n - ok, n);
out:
    if (rc && *first) fprintf(stderr, "bench_wide: w=%u %s: %s\n", w, kind, veil_error_message());
    veil_plan_free(plan);
    veil_backend_free(be);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    veil_program_free(p);
    veil_model_free(m);
    free(x);
    free(y);
    free(cin);
    free(cout);
    return rc;
}

#define KS_PBS_RUNS 16u /* two lockstep groups (VEIL_PBS_LANES) */

/* bench_one through the WoP-PBS: keygen (the secret key and the WoP keys),
 * then the same n inputs as bench_one, one lookup at a time; then
 * KS_PBS_RUNS KS-PBS of the WoP set's own keys in lockstep groups, as the
 * compiler's cost table measures a set, for the lookup's cost in KS-PBS of
 * its set (ks_pbs_per_lookup: the unit of its WoP price, veil/cost.h). */
static int bench_one_wop(FILE *f, int *first, unsigned w, const char *kind, uint32_t n) {
    const veil_wop_params *wp = veil_wop_params_for_width(w < 9 ? 9 : w);
    const size_t D = veil_params_big_dim(&wp->pbs), entries = (size_t)1 << w;
    uint8_t seed[5][32];
    for (unsigned i = 0; i < 5; i++)
        for (unsigned j = 0; j < 32; j++)
            seed[i][j] = (uint8_t)(i * 77 + j * 13 + w);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    veil_wop_ctx *ctx = NULL;
    veil_pbs_ctx *pctx = NULL;
    veil_lut *lut = NULL;
    uint64_t *many_in = NULL, *many_out = NULL;
    int64_t *table = malloc(entries * sizeof *table);
    uint64_t *cin = malloc((D + 1) * sizeof *cin), *cout = malloc((D + 1) * sizeof *cout);
    int rc = 1;
    size_t ok = 0;
    int printed = 0;
    double keygen = 0, wall = 0, cpu = 0, err2 = 0, err_max = 0;
    double t0 = clock_s(CLOCK_MONOTONIC);
    if (!table || !cin || !cout || veil_secret_key_new(&wp->pbs, seed[0], &sk) ||
        veil_eval_key_new_rows(sk, NULL, VEIL_KEY_FOURIER, seed[1], seed[2], &ek))
        goto out;
    keygen = clock_s(CLOCK_MONOTONIC) - t0;
    if (veil_encryptor_new(seed[3], seed[4], &enc) || veil_wop_ctx_new(wp, (uint32_t)D, &ctx))
        goto out;
    for (size_t x = 0; x < entries; x++)
        table[x] = table_value(kind, w, (int64_t)x);
    for (uint32_t i = 0; i < n; i++) {
        const int64_t x = (int64_t)(((uint64_t)i * 2654435761u + 12345) % entries);
        veil_encrypt_big(enc, sk, veil_encode(x, w), cin);
        t0 = clock_s(CLOCK_MONOTONIC);
        const double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (veil_wop_pbs(ctx, veil_eval_key_part(ek, 0), table, w, 0, veil_delta(4), cin, cout))
            goto out;
        wall += clock_s(CLOCK_MONOTONIC) - t0;
        cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        const uint64_t phase = veil_phase_big(sk, cout);
        ok += veil_decode(phase, 4, 0) == table[x];
        /* the output's error on the torus (units of 2^-64) */
        const double e = fabs((double)(int64_t)(phase - (uint64_t)table[x] * veil_delta(4)));
        err2 += e * e;
        err_max = e > err_max ? e : err_max;
    }
    /* one KS-PBS of the set's own, as many one at a time: the unit the
     * compiler's WoP price counts in (veil/cost.h veil_cost_wop_cpu_ms) */
    if (veil_pbs_ctx_new(&wp->pbs, &pctx) ||
        veil_lut_new(&wp->pbs, table, 4, 0, veil_delta(4), &lut))
        goto out;
    many_in = malloc(KS_PBS_RUNS * (D + 1) * sizeof *many_in);
    many_out = malloc(KS_PBS_RUNS * (D + 1) * sizeof *many_out);
    if (!many_in || !many_out) goto out;
    const veil_lut *luts[KS_PBS_RUNS];
    for (uint32_t i = 0; i < KS_PBS_RUNS; i++) {
        memcpy(many_in + i * (D + 1), cin, (D + 1) * sizeof *cin);
        luts[i] = lut;
    }
    const double k0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    veil_ks_pbs_many(pctx, veil_eval_key_part(ek, 0), luts, many_in, KS_PBS_RUNS, many_out);
    const double ks_pbs = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - k0) / KS_PBS_RUNS;
    const veil_wop_counts c = veil_wop_count(wp, w);
    const size_t key_bytes =
        veil_eval_key_prepared_bytes(&wp->pbs, (uint32_t)D); /* the packing keys too */
    fprintf(f,
            "%s\n    {\"method\": \"wop\", \"width\": %u, \"table\": \"%s\", \"params\": \"%s\", "
            "\"N\": %u, \"k\": %u, \"n\": %u, \"pbs_per_lookup\": %u, \"packing_keyswitches\": "
            "%u, \"external_products\": %u, \"key_bytes\": %zu, \"lookups\": %u, \"keygen_s\": "
            "%.3f, \"run_s_per_lookup\": %.4f, \"cpu_s_per_lookup\": %.4f, \"correct\": %zu, "
            "\"out_err_log2_rms\": %.2f, \"out_err_log2_max\": %.2f, \"out_delta_log2\": %u, "
            "\"ks_pbs_cpu_ms\": %.3f, \"ks_pbs_per_lookup\": %.1f}",
            *first ? "" : ",", w, kind, wp->id, wp->pbs.poly_size, wp->pbs.glwe_dim,
            wp->pbs.lwe_dim, c.pbs, c.packing_keyswitches, c.external_products, key_bytes, n,
            keygen, wall / n, cpu / n, ok, 0.5 * log2(err2 / n), log2(err_max), 63u - 4u,
            1e3 * ks_pbs, cpu / n / ks_pbs);
    fprintf(stderr,
            "w=%-2u %-8s %-22s WoP-PBS, %4u PBS/lookup, keys %.2f GB, keygen %6.2f s, "
            "%8.3f s/lookup (cpu %8.3f, %.1f KS-PBS of its set), %zu/%u correct\n",
            w, kind, wp->id, c.pbs, (double)key_bytes / 1e9, keygen, wall / n, cpu / n,
            cpu / n / ks_pbs, ok, n);
    *first = 0;
    printed = 1;
    rc = ok == n ? 0 : 1;
    if (rc)
        fprintf(stderr, "bench_wide: wop w=%u %s: %zu of %u outputs wrong\n", w, kind, n - ok, n);
out:
    if (rc && !printed)
        fprintf(stderr, "bench_wide: wop w=%u %s: %s\n", w, kind, veil_error_message());
    veil_wop_ctx_free(ctx);
    veil_pbs_ctx_free(pctx);
    veil_lut_free(lut);
    free(many_in);
    free(many_out);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    free(table);
    free(cin);
    free(cout);
    return rc;
}

/* Each entry of a comma-separated list: 0 when every one is valid (a width
 * 5..16, a table requant, aligned or random), else 2 after naming the bad
 * one. */
static int list_check(const char *opt, const char *list, int widths) {
    const int methods = !strcmp(opt, "--methods");
    char buf[256];
    if (!*list || strlen(list) >= sizeof buf) {
        fprintf(stderr, "bench_wide: %s '%s': expected a comma-separated list\n", opt, list);
        return 2;
    }
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t u;
        if (widths && veil_arg_u64("--widths", t, 5, 16, &u) != VEIL_OK) {
            fprintf(stderr, "bench_wide: %s\n", veil_error_message());
            return 2;
        }
        if (methods && strcmp(t, "compiled") && strcmp(t, "wop")) {
            fprintf(stderr, "bench_wide: --methods: '%s' is not compiled or wop\n", t);
            return 2;
        }
        if (!widths && !methods && strcmp(t, "requant") && strcmp(t, "aligned") &&
            strcmp(t, "random")) {
            fprintf(stderr, "bench_wide: --tables: '%s' is not requant, aligned or random\n", t);
            return 2;
        }
    }
    return 0;
}

/* The defaults, here once: the options and --help read them. */
#define DEFAULT_WIDTHS "10,12,14,16"
#define DEFAULT_TABLES "requant,aligned"
#define DEFAULT_METHODS "compiled"
#define DEFAULT_N 4

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_wide [--widths 10,12,14,16] [--tables requant,aligned,random] [--n 4]\n"
            "                  [--lookup-bits N] [--wop off|auto|always] [--methods compiled,wop]\n"
            "                  [--backend cpu|cuda] [--out FILE.json]\n"
            "One exact wide lookup per width: compile, keygen, encrypt, run, decrypt, check.\n\n"
            "options:\n"
            "  --widths LIST   input widths, each 5 to 16 (default %s)\n"
            "  --tables LIST   of requant, aligned and random (default %s)\n"
            "  --n N           lookups per width, 1 to 4096 (default %d)\n"
            "  --lookup-bits N\n"
            "                  the compile option (default 0: the cost model's choice)\n"
            "  --wop off|auto|always\n"
            "                  the compile option (default auto)\n"
            "  --methods LIST  of compiled (the program) and wop (the WoP-PBS alone)\n"
            "                  (default %s)\n"
            "  --backend cpu|cuda\n"
            "                  where the compiled programs run (default cpu)\n"
            "  --out FILE.json\n"
            "                  the JSON (default: standard output)\n",
            DEFAULT_WIDTHS, DEFAULT_TABLES, DEFAULT_N, DEFAULT_METHODS);
}

int main(int argc, char **argv) {
    const char *widths = DEFAULT_WIDTHS, *tables = DEFAULT_TABLES, *methods = DEFAULT_METHODS;
    const char *out = NULL;
    uint64_t n = DEFAULT_N, lookup_bits = 0;
    veil_compile_options defaults;
    veil_compile_options_default(&defaults);
    veil_wop_mode wop_mode = defaults.wop;
    veil_backend_kind backend = VEIL_BACKEND_CPU;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--widths") && v)
            widths = v;
        else if (!strcmp(a, "--tables") && v)
            tables = v;
        else if (!strcmp(a, "--methods") && v)
            methods = v;
        else if ((!strcmp(a, "--n") || !strcmp(a, "--lookup-bits") || !strcmp(a, "--wop")) && v) {
            /* --lookup-bits, --wop: the compile options' own parser (their values) */
            veil_compile_options co;
            veil_compile_options_default(&co);
            if ((!strcmp(a, "--n") ? veil_arg_u64(a, v, 1, 4096, &n)
                                   : veil_compile_options_set(&co, a + 2, v)) != VEIL_OK) {
                fprintf(stderr, "bench_wide: %s\n", veil_error_message());
                return 2;
            }
            if (!strcmp(a, "--lookup-bits")) lookup_bits = co.lookup_bits;
            if (!strcmp(a, "--wop")) wop_mode = co.wop;
        } else if (!strcmp(a, "--backend") && v) {
            if (veil_backend_kind_parse(v, &backend) != VEIL_OK || backend == VEIL_BACKEND_AUTO) {
                fprintf(stderr, "bench_wide: --backend %s: expected cpu or cuda\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--out") && v)
            out = v;
        else {
            /* --help: the usage on stdout, exit 0; anything else: stderr, 2 */
            const int help = !strcmp(a, "--help") || !strcmp(a, "-h");
            usage(help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    if (list_check("--widths", widths, 1) || list_check("--tables", tables, 0) ||
        list_check("--methods", methods, 0))
        return 2;
    /* cuda on a machine without it fails now, not after compiling and making
     * the keys of every width (scripts/gpu-check.sh --dry-run relies on it) */
    if (strstr(methods, "compiled")) {
        veil_backend_options bo;
        veil_backend_options_default(&bo);
        if (veil_backend_options_from_env(&bo) != VEIL_OK ||
            veil_backend_devices_check(backend, &bo) != VEIL_OK) {
            fprintf(stderr, "bench_wide: --backend: %s\n", veil_error_message());
            return 1;
        }
    }
    const int compiled = strstr(methods, "compiled") != NULL, wop = strstr(methods, "wop") != NULL;
    /* --out appears whole at the end (veil_atomic_file) */
    veil_atomic_file af = {0};
    if (out && veil_atomic_file_open(&af, out, 0644) != VEIL_OK) {
        fprintf(stderr, "bench_wide: %s\n", veil_error_message());
        return 1;
    }
    FILE *f = out ? af.f : stdout;
    fprintf(f, "{\"benchmark\": \"bench_wide\", \"threads\": \"%s\", \"results\": [",
            getenv("VEIL_THREADS") ? getenv("VEIL_THREADS") : "all");
    int rc = 0, first = 1;
    char wl[256];
    snprintf(wl, sizeof wl, "%s", widths);
    char *wsave = NULL;
    for (char *ws = strtok_r(wl, ",", &wsave); ws; ws = strtok_r(NULL, ",", &wsave)) {
        const unsigned w = (unsigned)strtoul(ws, NULL, 10); /* checked: list_check */
        const char *t = tables;
        while (*t) {
            size_t len = strcspn(t, ",");
            char kind[32];
            snprintf(kind, sizeof kind, "%.*s", (int)len, t);
            if (len && compiled)
                rc |= bench_one(f, &first, w, kind, (uint32_t)n, (unsigned)lookup_bits, wop_mode,
                                backend);
            if (len && wop) rc |= bench_one_wop(f, &first, w, kind, (uint32_t)n);
            t += len + (t[len] == ',');
        }
    }
    fprintf(f, "\n]}\n");
    if (out && veil_atomic_file_commit(&af) != VEIL_OK) {
        fprintf(stderr, "bench_wide: %s\n", veil_error_message());
        return 1;
    }
    return rc;
}
