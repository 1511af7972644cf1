// LABELS: unit
// RUNS: bench_pbs bench_gpu bench_keyset bench_server bench_wide bench_e2e_lut bench_plan_group
/* Every option a bench program's --help lists is accepted (the project rule:
 * a test tries every option --help lists): --help goes to stdout with exit
 * 0, and for each "  --option [VALUE]" line, `prog --option VALUE --help`
 * exits 0, i.e. the parser took the option and reached --help (a refused
 * option stops it there with exit 2); every alternative of an a|b|c value
 * too. An option the help mentions but lists on no line of its own, a
 * value this test has no sample for, and a bench program in the build tree
 * that neither this test nor test_cli_options (bench_model) covers fail it.
 * The bench programs also refuse bad option values before measuring anything:
 * each case below runs one program with one bad value and must get exit 2
 * and a message naming the option (they read numbers with the shared
 * parsers veil_arg_u64 / veil_arg_double; atoi read junk as 0, so --count 0
 * printed NaN and --runs x ran with a default). Also veil_arg_double itself,
 * and that a refused run leaves an earlier --out file as it was.
 * A program this configuration does not build is skipped with a line saying
 * so. Binaries come from VEIL_BUILD_DIR (set by CTest). */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"
#include "veil/compile_options.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];

/* Runs argv (argv[0] a path under the build tree) with stderr to a file;
 * the exit code (-1 when not built; 128+signal when killed), stderr in err;
 * stdout in *out (malloc'd) when out is not NULL, else discarded. */
static int run_bench_out(char **argv, char **out, char *err, size_t cap) {
    char bin[512], err_path[300], out_path[300];
    if (veil_test_build_path(argv[0], bin, sizeof bin) || access(bin, X_OK)) return -1;
    snprintf(err_path, sizeof err_path, "%s/stderr", g_dir);
    snprintf(out_path, sizeof out_path, "%s/stdout", g_dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int o =
            out ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : open("/dev/null", O_WRONLY);
        if (fd < 0 || o < 0) _exit(126);
        dup2(fd, 2);
        dup2(o, 1);
        argv[0] = bin;
        execv(bin, argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -2;
    size_t len = 0;
    char *e = veil_test_read_file(err_path, &len);
    snprintf(err, cap, "%s", e ? e : "");
    free(e);
    if (out) *out = veil_test_read_file(out_path, &len);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_bench(char **argv, char *err, size_t cap) {
    return run_bench_out(argv, NULL, err, cap);
}

static void test_bad_values_refused(void) {
    static char out_arg[300];
    snprintf(out_arg, sizeof out_arg, "%s/kept.json", g_dir);
    FILE *f = fopen(out_arg, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"earlier\": 1}\n", f);
    fclose(f);
    static char model[512];
    snprintf(model, sizeof model, "%s", veil_test_path("models/tiny.h5"));
    /* program, option, value, what stderr must name */
    struct {
        const char *prog, *opt, *val, *want;
    } cases[] = {
        {"bench/bench_pbs", "--runs", "x", "--runs x"},
        {"bench/bench_pbs", "--runs", "2", "--runs 2"},
        {"bench/bench_pbs", "--max-n", "8192k", "--max-n 8192k"},
        {"bench/bench_pbs", "--fft", "bogus", "--fft bogus"},
        {"bench/bench_gpu", "--min-time", "x", "--min-time x"},
        {"bench/bench_gpu", "--min-time", "nan", "--min-time nan"},
        {"bench/bench_gpu", "--max-batch", "-1", "--max-batch -1"},
        {"bench/bench_gpu", "--cpu-max-batch", "1e3", "--cpu-max-batch 1e3"},
        {"bench/bench_keyset", "--runs", "0", "--runs 0"},
        {"bench/bench_keyset", "--runs", "3x", "--runs 3x"},
        {"bench/bench_server", "--seconds", "0", "--seconds 0"},
        {"bench/bench_server", "--requests", "ten", "--requests ten"},
        {"bench/bench_server", "--clients", "1,x", "--clients x"},
        {"bench/bench_server", "--gpus", "-1", "--gpus -1"},
        {"bench/bench_server", "--samples", "65", "--samples 65"}, /* tiny.h5: 64 golden */
        {"bench/bench_wide", "--n", "0", "--n 0"},
        {"bench/bench_wide", "--lookup-bits", "1", "--lookup-bits 1"},
        {"bench/bench_wide", "--tables", "requant,typo", "'typo'"},
        {"bench/bench_wide", "--widths", "4", "--widths 4"},
        {"bench/bench_wide", "--methods", "compiled,typo", "'typo'"},
        {"bench/bench_wide", "--backend", "tpu", "--backend tpu"},
        {"bench/bench_wide", "--backend", "auto", "--backend auto"},
        {"bench/bench_e2e_lut", "--count", "0", "--count 0"},
    };
    int ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *argv[8] = {(char *)cases[i].prog, (char *)cases[i].opt, (char *)cases[i].val};
        int k = 3;
        if (!strcmp(cases[i].prog, "bench/bench_server")) {
            argv[k++] = "--model";
            argv[k++] = model;
        }
        if (strcmp(cases[i].prog, "bench/bench_e2e_lut")) {
            argv[k++] = "--out";
            argv[k++] = out_arg;
        }
        argv[k] = NULL;
        char err[4096];
        const int rc = run_bench(argv, err, sizeof err);
        if (rc == -1) {
            printf("\n  SKIPPED: %s not built in this configuration", cases[i].prog);
            continue;
        }
        ran++;
        if (rc != 2 || !strstr(err, cases[i].want))
            printf("\n  %s %s %s: rc %d, stderr: %s", cases[i].prog, cases[i].opt, cases[i].val, rc,
                   err);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
    }
    CU_ASSERT(ran > 0);
    char *kept = veil_test_read_file(out_arg, NULL);
    CU_ASSERT(kept && strstr(kept, "earlier"));
    free(kept);
}

/* The values bench_wide's --backend accepts go through: the run stops at
 * the next option's bad value instead (its message, not --backend's or the
 * usage). */
static void test_backend_accepted(void) {
    static const char *const kinds[] = {"cpu", "cuda"};
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {"bench/bench_wide", "--backend", (char *)kinds[i], "--n", "0", NULL};
        char err[4096];
        const int rc = run_bench(argv, err, sizeof err);
        if (rc == -1) {
            printf("\n  SKIPPED: bench/bench_wide not built in this configuration");
            return;
        }
        if (rc != 2 || !strstr(err, "--n 0") || strstr(err, "usage"))
            printf("\n  bench_wide --backend %s --n 0: rc %d, stderr: %s", kinds[i], rc, err);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "--n 0"));
        CU_ASSERT_PTR_NULL(strstr(err, "usage"));
    }
}

/* bench_pbs --exchange (two threads sharing a buffer a round, each size
 * N = 512 .. 65536) runs and writes its JSON: every size, both timings. */
static void test_exchange_runs(void) {
    char out[300];
    snprintf(out, sizeof out, "%s/exchange.json", g_dir);
    char *argv[] = {"bench/bench_pbs", "--exchange", "--runs", "3", "--out", out, NULL};
    char err[4096];
    const int rc = run_bench(argv, err, sizeof err);
    if (rc == -1) {
        printf("\n  SKIPPED: bench/bench_pbs not built in this configuration");
        return;
    }
    CU_ASSERT_EQUAL(rc, 0);
    char *json = veil_test_read_file(out, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"benchmark\": \"exchange\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "{\"N\": 512,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "{\"N\": 65536,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"two_threads_us\""));
    free(json);
}

/* A value the parser of opt takes (it may still be refused after parsing,
 * e.g. a server URL nobody listens on: the run stops at --help first);
 * NULL: this test has none. */
static const char *help_sample(const char *opt) {
    static char path[300];
    static const struct {
        const char *opt, *value;
    } k_samples[] = {
        /* bench_pbs, bench_gpu, bench_keyset, bench_e2e_lut */
        {"--runs", "3"},
        {"--params", "tfhers-2_2-gaussian-2m64"},
        {"--max-n", "8192"},
        {"--fft", "auto"},
        {"--count", "2"},
        {"--max-batch", "4"},
        {"--cpu-max-batch", "4"},
        {"--min-time", "0.5"},
        {"--wide", "nn-p6-norm2e2-2m40"},
        {"--narrow", "nn-p3-norm2e7-2m40"},
        /* bench_server */
        {"--clients", "1,4"},
        {"--seconds", "1"},
        {"--requests", "10"},
        {"--samples", "1"},
        {"--max-wait-ms", "10"},
        {"--url", "http://127.0.0.1:1"},
        {"--gpus", "0"},
        /* bench_wide */
        {"--widths", "10,12"},
        {"--tables", "requant"},
        {"--n", "2"},
        {"--methods", "compiled"},
        /* bench_plan_group, its backend and compile options */
        {"--batches", "2"},
        {"--pairs", "1"},
        {"--machine", "test"},
        {"--devices", "0"},
        {"--rounding-bits", "8"},
        {"--lookup-bits", "0"},
        {"--chunk-bits", "0"},
        {"--partitions", "0"},
        {"--range-margin", "0.25"},
        {"--p-error", "1e-12"},
        {"--global-p-error", "1e-9"},
        {"--max-poly-size", "65536"},
        {"--key-budget-mb", "4096"},
    };
    if (!strcmp(opt, "--out")) return snprintf(path, sizeof path, "%s/help.json", g_dir), path;
    if (!strcmp(opt, "--model")) return veil_test_path("models/tiny.h5");
    for (size_t i = 0; i < sizeof k_samples / sizeof *k_samples; i++)
        if (!strcmp(k_samples[i].opt, opt)) return k_samples[i].value;
    return NULL;
}

/* Runs prog with opt (and value, when not NULL) then --help: 1 when it exits
 * 0 (the parser took the option), else 0 after printing why. */
static size_t g_help_tried;

static int takes(const char *prog, const char *opt, const char *value) {
    char *argv[6] = {(char *)prog, (char *)opt};
    int k = 2;
    if (value) argv[k++] = (char *)value;
    argv[k++] = "--help";
    argv[k] = NULL;
    char err[4096];
    const int rc = run_bench_out(argv, NULL, err, sizeof err);
    g_help_tried++;
    if (rc != 0)
        printf("\n  %s %s%s%s --help: exit %d: %s", prog, opt, value ? " " : "", value ? value : "",
               rc, err);
    return rc == 0;
}

/* Programs whose --help this test reads; bench_model's is test_cli_options's. */
static const char *const k_help_programs[] = {
    "bench/bench_pbs",  "bench/bench_gpu",     "bench/bench_keyset",     "bench/bench_server",
    "bench/bench_wide", "bench/bench_e2e_lut", "bench/bench_plan_group",
};

static void check_help(const char *prog) {
    char *argv[] = {(char *)prog, "--help", NULL}, *help = NULL, err[4096];
    const int rc = run_bench_out(argv, &help, err, sizeof err);
    if (rc == -1) {
        printf("\n  SKIPPED: %s not built in this configuration", prog);
        return;
    }
    if (rc != 0 || !help || !strstr(help, "usage:"))
        printf("\n  %s --help: exit %d, stdout: %s, stderr: %s", prog, rc, help ? help : "(none)",
               err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(help);
    CU_ASSERT_PTR_NOT_NULL(strstr(help, "usage:")); /* on stdout */
    char *whole = strdup(help);
    CU_ASSERT_PTR_NOT_NULL_FATAL(whole);
    char listed[64][64];
    size_t n_listed = 0;
    for (char *line = strtok(help, "\n"); line; line = strtok(NULL, "\n")) {
        char opt[64], syntax[128];
        if (!veil_test_help_option(line, opt, syntax)) continue;
        if (n_listed < sizeof listed / sizeof *listed) memcpy(listed[n_listed++], opt, sizeof opt);
        if (!syntax[0]) { /* a flag */
            if (!takes(prog, opt, NULL)) CU_FAIL("a flag --help lists was refused");
            continue;
        }
        /* a|b|c: every lower-case alternative is taken as it is; an
         * upper-case placeholder (N|none, ID|auto) and a plain VALUE by the
         * sample table; latency[:C] as latency and latency:4 */
        char alts[128];
        snprintf(alts, sizeof alts, "%s", syntax);
        int placeholder = !strchr(syntax, '|');
        char *save = NULL;
        for (char *a = strtok_r(alts, "|", &save); a && !placeholder;
             a = strtok_r(NULL, "|", &save))
            placeholder = isupper((unsigned char)a[0]);
        if (placeholder) {
            const char *v = help_sample(opt);
            if (!v) {
                printf("\n  %s --help lists %s %s: this test has no sample value for it", prog, opt,
                       syntax);
                CU_FAIL("an option without a sample value in test_bench_options.c");
            } else if (!takes(prog, opt, v)) {
                CU_FAIL("an option --help lists was refused");
            }
        }
        if (!strchr(syntax, '|')) continue;
        snprintf(alts, sizeof alts, "%s", syntax);
        for (char *a = strtok_r(alts, "|", &save); a; a = strtok_r(NULL, "|", &save)) {
            if (isupper((unsigned char)a[0])) continue;
            char base[64], full[160];
            snprintf(base, sizeof base, "%s", a);
            char *br = strchr(base, '[');
            if (br) {
                /* the optional part, its placeholder (upper case) as 4 */
                char tail[32];
                snprintf(tail, sizeof tail, "%.*s", (int)strcspn(br + 1, "]"), br + 1);
                for (char *q = tail; *q; q++)
                    if (isupper((unsigned char)*q)) *q = '4';
                *br = 0;
                snprintf(full, sizeof full, "%s%s", base, tail);
                if (!takes(prog, opt, full)) CU_FAIL("an alternative --help lists was refused");
            }
            if (!takes(prog, opt, base)) CU_FAIL("an alternative --help lists was refused");
        }
    }
    if (!n_listed) {
        printf("\n  %s --help lists no option on a line of its own", prog);
        CU_FAIL("no option found in --help");
    }
    /* Every option the text mentions ("--xyz" anywhere: the usage line, a
     * description) is one it lists, so the loop above tried it. */
    veil_test_help_unlisted(whole, (const char(*)[64])listed, n_listed, prog);
    free(whole);
    free(help);
}

static void test_help_lists_accepted(void) {
    for (size_t i = 0; i < sizeof k_help_programs / sizeof *k_help_programs; i++)
        check_help(k_help_programs[i]);
    /* Every bench program built is covered: here, or bench_model by
     * test_cli_options. */
    char dir[512];
    CU_ASSERT_EQUAL_FATAL(veil_test_build_path("bench", dir, sizeof dir), 0);
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    size_t seen = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[800];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strncmp(e->d_name, "bench_", 6) || stat(path, &sb) || !S_ISREG(sb.st_mode) ||
            access(path, X_OK))
            continue;
        seen++;
        int covered = !strcmp(e->d_name, "bench_model");
        for (size_t i = 0; i < sizeof k_help_programs / sizeof *k_help_programs && !covered; i++)
            covered = !strcmp(k_help_programs[i] + 6, e->d_name);
        if (!covered) {
            printf("\n  %s: a bench program whose --help no test reads", path);
            CU_FAIL("a bench program missing from k_help_programs");
        }
    }
    closedir(d);
    CU_ASSERT(seen > 0);
    printf("\n  %zu command lines tried\n", g_help_tried);
}

static void test_arg_double(void) {
    double v = -1;
    CU_ASSERT_EQUAL(veil_arg_double("--x", "0.25", 0, 1, &v), VEIL_OK);
    CU_ASSERT_EQUAL(v, 0.25);
    CU_ASSERT_EQUAL(veil_arg_double("--x", "1e-3", 0, 1, &v), VEIL_OK);
    CU_ASSERT_EQUAL(v, 1e-3);
    const char *bad[] = {"", " 1", "1 ", "x", "0.5s", "nan", "inf", "-0.1", "1.5", "1e999", NULL};
    for (int i = 0; i < 11; i++) {
        v = 42;
        const veil_status s = veil_arg_double("--x", bad[i], 0, 1, &v);
        if (s != VEIL_ERR_ARG)
            printf("\n  veil_arg_double '%s' accepted", bad[i] ? bad[i] : "NULL");
        CU_ASSERT_EQUAL(s, VEIL_ERR_ARG);
        CU_ASSERT_EQUAL(v, 42); /* untouched */
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--x"));
    }
}

int main(void) {
    char probe[512];
    if (veil_test_build_path("bench", probe, sizeof probe)) {
        printf("SKIPPED: VEIL_BUILD_DIR is not set (run through ctest)\n");
        return VEIL_TEST_SKIP;
    }
    if (veil_test_mkdtemp("bench-options", g_dir, sizeof g_dir) != 0) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("bench_options", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_arg_double);
    VEIL_ADD_TEST(s, test_help_lists_accepted);
    VEIL_ADD_TEST(s, test_bad_values_refused);
    VEIL_ADD_TEST(s, test_backend_accepted);
    VEIL_ADD_TEST(s, test_exchange_runs);
    int rc = veil_test_run();
    veil_test_rm_rf(g_dir);
    return rc;
}
