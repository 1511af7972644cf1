// LABELS: unit
// RUNS: bench_pbs bench_gpu bench_keyset bench_server bench_wide bench_e2e_lut
/* The bench programs refuse bad option values before measuring anything:
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

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];

/* Runs argv (argv[0] a path under the build tree) with stderr to a file;
 * the exit code (-1 when not built; 128+signal when killed), stderr in err. */
static int run_bench(char **argv, char *err, size_t cap) {
    char bin[512], err_path[300];
    if (veil_test_build_path(argv[0], bin, sizeof bin) || access(bin, X_OK)) return -1;
    snprintf(err_path, sizeof err_path, "%s/stderr", g_dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int nul = open("/dev/null", O_WRONLY);
        if (fd < 0 || nul < 0) _exit(126);
        dup2(fd, 2);
        dup2(nul, 1);
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
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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
    VEIL_ADD_TEST(s, test_bad_values_refused);
    VEIL_ADD_TEST(s, test_backend_accepted);
    VEIL_ADD_TEST(s, test_exchange_runs);
    int rc = veil_test_run();
    veil_test_rm_rf(g_dir);
    return rc;
}
