// LABELS: unit
// COST: 60
// RUNS: veil veil-h5check bench_gpu bench_wide bench_model test_gpu_ops
/* scripts/gpu-check.sh --dry-run on the build under test (no GPU is used:
 * the script empties CUDA_VISIBLE_DEVICES), with every check a lease may
 * ask for (--models --wop --multibit --large-n --racecheck --cpu-scaling
 * --pack): every program and model file there, each program's options
 * taken by its parser, bench_gpu and bench_wide refusing the missing device
 * before any keygen, tiny's cpu run printing the agreement line the check
 * greps, each model compiling with its step's options (veil compile), and
 * the pack alone in $OUT. A lease spent on a step that could
 * not start is what this guards against (gpu-stage.sh builds the stage
 * the lead dry-runs the same way). Also that the dry run can fail: a build
 * whose bench_gpu refuses an option, or that lacks bench_wide, fails it
 * naming the program; and a --budget that is not whole seconds is refused
 * (exit 2). In a build without CUDA the script says what it skipped.
 * Needs VEIL_SOURCE_DIR and VEIL_BUILD_DIR (set by CTest). */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256], g_build[512];

/* Runs gpu-check.sh on build with args (a dry run's OUT is g_dir/out, made
 * anew), its output into *out (static); returns its exit status. */
static int dry_run(const char *build, const char *args, const char **out) {
    static char *text;
    char cmd[2048], log[300], outdir[300];
    snprintf(log, sizeof log, "%s/log", g_dir);
    snprintf(outdir, sizeof outdir, "%s/out", g_dir);
    veil_test_rm_rf(outdir);
    snprintf(cmd, sizeof cmd, "OUT='%s' bash '%s' '%s' %s > '%s' 2>&1", outdir,
             veil_test_path("scripts/gpu-check.sh"), build, args, log);
    const int st = system(cmd);
    free(text);
    text = veil_test_read_file(log, NULL);
    *out = text ? text : "";
    printf("\n--- gpu-check.sh %s %s ---\n%s", build, args, *out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_dry_run_passes(void) {
    const char *out;
    const int rc = dry_run(g_build,
                           "--dry-run --models --wop --multibit --large-n --racecheck "
                           "--cpu-scaling --pack --budget 480",
                           &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PASSED (dry run)"));
    CU_ASSERT_PTR_NULL(strstr(out, "dry FAILED"));
    /* the steps it walked, each reaching what it checks */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "same run on the cpu: agreement with simulate: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bench_gpu: values checked, stopped at the device"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bench_wide: values checked, stopped at the device"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "test_gpu_ops: starts and skips without a device"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dry bench_model_mlp6 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dry model_diabetes_reg_gpe "));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "veil compile models/target_bc.h5 --rounding-bits 7: partitions "));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "veil compile models/mlp_digits.h5 --rounding-bits 6: partitions "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dry racecheck_test_gpu_ops "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dry cpu_scaling "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the pack holds "));
    /* only the pack is left in OUT */
    char tgz[300];
    snprintf(tgz, sizeof tgz, "%s/out/gpu-check.tgz", g_dir);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(tgz, &sb), 0);
}

static int write_script(const char *dir, const char *name, const char *body) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    return chmod(path, 0755);
}

/* A stage whose bench_gpu refuses every option and that has no bench_wide:
 * the dry run fails, naming both, and passes the test program that skips. */
static void test_dry_run_fails(void) {
    char fake[300], sub[320];
    snprintf(fake, sizeof fake, "%s/fake", g_dir);
    mkdir(fake, 0700);
    snprintf(sub, sizeof sub, "%s/bench", fake);
    mkdir(sub, 0700);
    CU_ASSERT_EQUAL_FATAL(
        write_script(sub, "bench_gpu", "echo 'bench_gpu: unknown option' >&2; exit 2"), 0);
    snprintf(sub, sizeof sub, "%s/tests", fake);
    mkdir(sub, 0700);
    CU_ASSERT_EQUAL_FATAL(
        write_script(sub, "test_gpu_ops", "echo 'SKIPPED: no usable CUDA device'; exit 77"), 0);
    const char *out;
    int rc = dry_run(fake, "--dry-run --no-memcheck --wop", &out);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bench_gpu --backend cuda --max-batch 65536"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(an option refused)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dry FAILED: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bench/bench_wide missing"));
    CU_ASSERT_PTR_NULL(strstr(out, "test_gpu_ops: exit"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "FAILED (dry run)"));
    rc = dry_run(fake, "--dry-run --budget 8m", &out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--budget 8m: expected whole seconds"));
}

int main(void) {
    if (veil_test_build_path("", g_build, sizeof g_build) || !getenv("VEIL_SOURCE_DIR")) {
        printf("SKIPPED: VEIL_BUILD_DIR or VEIL_SOURCE_DIR is not set (run through ctest)\n");
        return VEIL_TEST_SKIP;
    }
    if (veil_test_mkdtemp("gpucheck-dry", g_dir, sizeof g_dir) != 0) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("gpucheck_dry", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_dry_run_passes);
    VEIL_ADD_TEST(s, test_dry_run_fails);
    int rc = veil_test_run();
    veil_test_rm_rf(g_dir);
    return rc;
}
