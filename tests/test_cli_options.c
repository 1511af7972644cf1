// LABELS: unit model
// LINKS: veil_loaders
/* Every option that --help lists is accepted (issue 15 item 9, issue 12
 * point 1): for every `veil` command, `veil-server` and `bench_model`, the
 * test reads `--help`, takes each "  --option [VALUE]" line and runs the
 * command with it on models/tiny.h5:
 *   - with a value that means the default (so keys made with the defaults
 *     still fit), the command must succeed (exit 0; veil-server: listen);
 *     decrypt and remote, which need a server's result, must get past their
 *     option parsing (no usage error, exit != 2);
 *   - every alternative of an "a|b|c" value must pass the parser (exit != 2);
 *   - bad values of the numeric compile options (--max-poly-size 257, 300,
 *     5000, 4294967552 that wrapped to 256, -256; --rounding-bits 0, 17;
 *     --p-error 1, nan) and bad --devices lists ("", "0,,1", "-1", "x") must
 *     be refused with exit 2 and a message naming the option.
 * An option the test has no sample value for fails the test: add one below.
 * Also: a secret key file readable by others gets a warning; `veil remote`
 * refuses an eval.key that does not belong to the secret key before uploading.
 * Binaries come from VEIL_BUILD_DIR (set by CTest). */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VEIL_TEST_STR(x) #x
#define VEIL_TEST_XSTR(x) VEIL_TEST_STR(x)

static char g_dir[256], g_veil[512], g_server[512], g_bench[512], g_model[512];
static char g_params[64]; /* the set tiny.h5 compiles to by default */

enum { MAX_ARGS = 40 };

/* Runs argv with stdout/stderr to files under g_dir; waits (server: until it
 * says "listening" or exits, then SIGTERM). Returns the exit code, 128+signal
 * when killed by a signal, or 0 for a server that listened. The output goes
 * to *err (static). */
static int run_cmd(char *const *argv, int server, const char **err) {
    static char errbuf[8192];
    char out_path[300], err_path[300];
    snprintf(out_path, sizeof out_path, "%s/stdout", g_dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", g_dir);
    unlink(err_path); /* never read the previous command's "listening" */
    unlink(out_path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out_path, "w", stdout) || !freopen(err_path, "w", stderr)) _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int ws = 0, listened = 0;
    if (server) {
        for (int t = 0; t < 600 && !listened; t++) {
            if (waitpid(pid, &ws, WNOHANG) == pid) break;
            FILE *f = fopen(err_path, "r");
            size_t n = f ? fread(errbuf, 1, sizeof errbuf - 1, f) : 0;
            if (f) fclose(f);
            errbuf[n] = 0;
            listened = strstr(errbuf, "listening on") != NULL;
            if (!listened) {
                struct timespec ts = {0, 50 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        if (listened || waitpid(pid, &ws, WNOHANG) == 0) {
            kill(pid, SIGTERM);
            waitpid(pid, &ws, 0);
        }
    } else {
        waitpid(pid, &ws, 0);
    }
    FILE *f = fopen(err_path, "r");
    size_t n = f ? fread(errbuf, 1, sizeof errbuf - 1, f) : 0;
    if (f) fclose(f);
    errbuf[n] = 0;
    *err = errbuf;
    if (server && listened) return 0;
    if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
    return WEXITSTATUS(ws);
}

/* The `--help` text of a command. */
static char *help_of(char *const *argv) {
    const char *err;
    char *args[MAX_ARGS];
    int n = 0;
    while (argv[n]) {
        args[n] = argv[n];
        n++;
    }
    args[n++] = "--help";
    args[n] = NULL;
    if (run_cmd(args, 0, &err) != 0) return NULL;
    char path[300];
    snprintf(path, sizeof path, "%s/stdout", g_dir);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    size_t got = fread(buf, 1, 65535, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

typedef struct command {
    const char *label; /* "veil keygen" */
    char *base[16];    /* argv that runs the command successfully */
    int must_succeed;  /* 0: only the option parsing is checked */
    int server;
} command;

/* A value meaning the default, for an option of command c; NULL: unknown. */
static const char *sample_value(const command *c, const char *opt, const char *syntax) {
    static char buf[600];
    int bench = strstr(c->label, "bench") != NULL, serv = c->server;
    if (!strcmp(opt, "--rounding-bits")) return "8";
    if (!strcmp(opt, "--rounding")) return "exact";
    if (!strcmp(opt, "--bounds")) return "calibration";
    if (!strcmp(opt, "--p-error")) return "9.094947017729282e-13"; /* 2^-40 */
    if (!strcmp(opt, "--params")) return g_params;
    if (!strcmp(opt, "--max-poly-size")) return "65536";
    if (!strcmp(opt, "--lookup-bits")) return "0"; /* the cost model's choice */
    if (!strcmp(opt, "--chunk-bits")) return "0";  /* the cost model's choice */
    if (!strcmp(opt, "--partitions")) return "0";  /* the cost model's choice */
    if (!strcmp(opt, "--key-budget-mb")) return VEIL_TEST_XSTR(VEIL_KEY_BUDGET_MB_DEFAULT);
    if (!strcmp(opt, "--range-margin")) return "0.25";
    if (!strcmp(opt, "--range-check")) return "off";
    if (!strcmp(opt, "--triton")) return "http://127.0.0.1:1"; /* replaces --server */
    if (!strcmp(opt, "--triton-model") || !strcmp(opt, "--triton-keys-model")) return "veil";
    if (serv && !strcmp(opt, "--read-timeout-ms")) return "30000";
    if (serv && !strcmp(opt, "--request-timeout-ms")) return "120000";
    if (serv && !strcmp(opt, "--max-conn-per-ip")) return "32";
    if (!strcmp(opt, "--key")) return snprintf(buf, sizeof buf, "%s/keys", g_dir), buf;
    if (!strcmp(opt, "--out") && !bench) return snprintf(buf, sizeof buf, "%s/keys", g_dir), buf;
    if (!strcmp(opt, "--out")) return snprintf(buf, sizeof buf, "%s/bench.json", g_dir), buf;
    if (!strcmp(opt, "--input") && strstr(c->label, "decrypt"))
        return snprintf(buf, sizeof buf, "%s/ct.bin", g_dir), buf;
    if (!strcmp(opt, "--input")) return g_model;
    if (!strcmp(opt, "--output") && strstr(c->label, "encrypt"))
        return snprintf(buf, sizeof buf, "%s/ct.bin", g_dir), buf;
    if (!strcmp(opt, "--output")) return snprintf(buf, sizeof buf, "%s/out.csv", g_dir), buf;
    if (!strcmp(opt, "--server")) return "http://127.0.0.1:1";
    if (!strcmp(opt, "--mode")) return "simulate";
    if (!strcmp(opt, "--batch") || !strcmp(opt, "--limit")) return "2";
    if (!strcmp(opt, "--timeout")) return "5";
    if (!strcmp(opt, "--retries")) return "0";
    if (!strcmp(opt, "--model")) return g_model;
    if (!strcmp(opt, "--backend")) return "cpu";
    if (!strcmp(opt, "--devices")) return "0"; /* one plan on device 0 (cpu: the CPU) */
    if (!strcmp(opt, "--listen")) return "127.0.0.1:0";
    if (!strcmp(opt, "--keys-dir") && serv)
        return snprintf(buf, sizeof buf, "%s/server-keys", g_dir), buf;
    if (serv && (!strcmp(opt, "--max-batch") || !strcmp(opt, "--max-wait-ms") ||
                 !strcmp(opt, "--max-request-samples") || !strcmp(opt, "--max-inflight") ||
                 !strcmp(opt, "--max-queue") || !strcmp(opt, "--key-cache") ||
                 !strcmp(opt, "--max-key-uploads")))
        return "4";
    if (serv && !strcmp(opt, "--max-body")) return "1000000";
    if (serv && !strcmp(opt, "--timeout-ms")) return "60000";
    if (bench && (!strcmp(opt, "--models") || !strcmp(opt, "--enc-models"))) return g_model;
    if (bench && !strcmp(opt, "--modes")) return "simulate";
    if (bench && !strcmp(opt, "--batches")) return "1";
    if (bench && !strcmp(opt, "--samples")) return "1";
    (void)syntax;
    return NULL;
}

/* Runs c's base argv plus extra args (NULL-terminated). */
static int run_with(const command *c, const char *const *extra, const char **err) {
    char *args[MAX_ARGS];
    int n = 0;
    /* one server: --server or --triton URL, given once (veil remote) */
    const int triton = extra[0] && (!strcmp(extra[0], "--triton") || !strcmp(extra[0], "--server"));
    for (int i = 0; c->base[i]; i++) {
        if (triton && !strcmp(c->base[i], "--server") && c->base[i + 1]) {
            i++;
            continue;
        }
        args[n++] = c->base[i];
    }
    for (int i = 0; extra[i] && n < MAX_ARGS - 1; i++)
        args[n++] = (char *)extra[i];
    args[n] = NULL;
    return run_cmd(args, c->server, err);
}

static int is_usage_error(int rc, const char *err) {
    return rc == 2 || strstr(err, "unknown option") || strstr(err, "--help)");
}

static size_t g_tried;

static void check_command(const command *c) {
    char *argv0[4] = {c->base[0], NULL, NULL, NULL};
    if (!strncmp(c->label, "veil ", 5)) argv0[1] = c->base[1];
    char *help = help_of(argv0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(help);
    size_t options = 0;
    for (char *line = strtok(help, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "  --", 4)) continue;
        char opt[64] = {0}, syntax[128] = {0};
        size_t on = strcspn(line + 2, " ");
        if (on >= sizeof opt) continue;
        memcpy(opt, line + 2, on);
        const char *after = line + 2 + on;
        if (after[0] == ' ' && after[1] && after[1] != ' ') {
            size_t sn = strcspn(after + 1, " ");
            if (sn < sizeof syntax) memcpy(syntax, after + 1, sn);
        }
        if (opt[strlen(opt) - 1] == ',') continue; /* not expected any more, but safe */
        options++;
        const char *err = "";
        if (!syntax[0]) { /* a flag */
            const char *extra[] = {opt, NULL};
            int rc = run_with(c, extra, &err);
            g_tried++;
            if (c->must_succeed ? rc != 0 : is_usage_error(rc, err)) {
                printf("\n  %s %s: exit %d: %s", c->label, opt, rc, err);
                CU_FAIL("a flag --help lists was not accepted");
            }
            continue;
        }
        const char *v = sample_value(c, opt, syntax);
        if (!v) {
            printf("\n  %s --help lists %s %s: this test has no sample value for it\n", c->label,
                   opt, syntax);
            CU_FAIL("an option without a sample value in test_cli_options.c");
            continue;
        }
        const char *extra[] = {opt, v, NULL};
        int rc = run_with(c, extra, &err);
        g_tried++;
        if (c->must_succeed ? rc != 0 : is_usage_error(rc, err)) {
            printf("\n  %s %s %s: exit %d: %s", c->label, opt, v, rc, err);
            CU_FAIL("an option --help lists was not accepted");
        }
        /* Every alternative of a|b|c passes the parser. */
        if (strchr(syntax, '|')) {
            char alts[128];
            snprintf(alts, sizeof alts, "%s", syntax);
            char *save = NULL;
            for (char *a = strtok_r(alts, "|", &save); a; a = strtok_r(NULL, "|", &save)) {
                /* N|none, ID|auto: the placeholder is the sample above */
                if (strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(a)) continue;
                const char *extra2[] = {opt, a, NULL};
                rc = run_with(c, extra2, &err);
                g_tried++;
                if (is_usage_error(rc, err)) {
                    printf("\n  %s %s %s: exit %d: %s", c->label, opt, a, rc, err);
                    CU_FAIL("an alternative --help lists was refused");
                }
            }
        }
        /* Bad values are refused, naming the option. */
        static const char *const bad_poly[] = {"257",  "300", "5000",  "4294967552",
                                               "-256", "",    "2048x", NULL};
        static const char *const bad_bits[] = {"0", "17", "-1", "8.5", NULL};
        static const char *const bad_p[] = {"1", "0", "nan", "1e-400x", NULL};
        static const char *const bad_budget[] = {"-1", "1e3", "16777217", "512MB", NULL};
        static const char *const bad_devices[] = {"", "0,,1", "-1", "x", "0,", NULL};
        const char *const *bad = !strcmp(opt, "--max-poly-size")   ? bad_poly
                                 : !strcmp(opt, "--rounding-bits") ? bad_bits
                                 : !strcmp(opt, "--p-error")       ? bad_p
                                 : !strcmp(opt, "--key-budget-mb") ? bad_budget
                                 : !strcmp(opt, "--devices")       ? bad_devices
                                                                   : NULL;
        for (int b = 0; bad && bad[b]; b++) {
            const char *extra3[] = {opt, bad[b], NULL};
            rc = run_with(c, extra3, &err);
            g_tried++;
            if (rc != 2 || !strstr(err, opt)) {
                printf("\n  %s %s '%s': exit %d (expected 2 naming the option): %s", c->label, opt,
                       bad[b], rc, err);
                CU_FAIL("a bad value was not refused");
            }
        }
    }
    if (!options && strcmp(c->label, "veil info")) {
        printf("\n  %s --help lists no option\n", c->label);
        CU_FAIL("no option found in --help");
    }
    free(help);
}

static char k_path_keys[300], k_path_ct[300], k_path_out[300], k_path_json[300], k_path_skeys[300];

static void test_every_option_of_every_command(void) {
    char *M = g_model;
    command cmds[] = {
        {"veil info", {g_veil, "info", M, NULL}, 1, 0},
        {"veil compile", {g_veil, "compile", M, NULL}, 1, 0},
        {"veil run", {g_veil, "run", M, "--limit", "2", NULL}, 1, 0},
        {"veil keygen", {g_veil, "keygen", M, "--out", k_path_keys, "--force", NULL}, 1, 0},
        {"veil encrypt",
         {g_veil, "encrypt", M, "--key", k_path_keys, "--input", M, "--output", k_path_ct,
          "--limit", "2", NULL},
         1,
         0},
        {"veil decrypt",
         {g_veil, "decrypt", M, "--key", k_path_keys, "--input", k_path_ct, NULL},
         0,
         0},
        {"veil remote",
         {g_veil, "remote", M, "--key", k_path_keys, "--server", "http://127.0.0.1:1", "--retries",
          "0", "--timeout", "5", NULL},
         0,
         0},
        {"veil-server",
         {g_server, "--model", M, "--listen", "127.0.0.1:0", "--keys-dir", k_path_skeys,
          "--backend", "cpu", NULL},
         1,
         1},
        {"bench_model",
         {g_bench, "--models", M, "--enc-models", M, "--modes", "simulate", "--batches", "1",
          "--samples", "1", "--out", k_path_json, NULL},
         1,
         0},
    };
    const char *err;
    /* Keys and a ciphertext made with the default options first. */
    {
        const char *none[] = {NULL};
        CU_ASSERT_EQUAL_FATAL(run_with(&cmds[3], none, &err), 0);
        CU_ASSERT_EQUAL_FATAL(run_with(&cmds[4], none, &err), 0);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        if (access(cmds[i].base[0], X_OK) != 0) {
            printf("\n  %s: %s not built, not checked", cmds[i].label, cmds[i].base[0]);
            continue;
        }
        check_command(&cmds[i]);
    }
    printf("\n  %zu command lines tried\n", g_tried);
}

/* A secret key file readable by others is used, with a warning (issue 15,
 * item 10). */
static void test_secret_key_mode_warning(void) {
    command enc = {"veil encrypt",
                   {g_veil, "encrypt", g_model, "--key", k_path_keys, "--input", g_model,
                    "--output", k_path_ct, "--limit", "1", NULL},
                   1,
                   0};
    char skp[400];
    snprintf(skp, sizeof skp, "%s/secret.key", k_path_keys);
    const char *none[] = {NULL}, *err = "";
    CU_ASSERT_EQUAL_FATAL(chmod(skp, 0600), 0);
    CU_ASSERT_EQUAL(run_with(&enc, none, &err), 0);
    CU_ASSERT_PTR_NULL(strstr(err, "readable"));
    CU_ASSERT_EQUAL_FATAL(chmod(skp, 0644), 0);
    CU_ASSERT_EQUAL(run_with(&enc, none, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "readable or writable by others (mode 0644)"));
    chmod(skp, 0600);
}

/* `veil remote` refuses an eval.key made from another secret key before it
 * uploads anything (issue 15, item 11): here the server does not even exist,
 * so the only possible error is the fingerprint's. */
static void test_remote_checks_key_pair(void) {
    char other[300], mixed[300], cmd[2000];
    snprintf(other, sizeof other, "%s/other-keys", g_dir);
    snprintf(mixed, sizeof mixed, "%s/mixed-keys", g_dir);
    command kg = {"veil keygen", {g_veil, "keygen", g_model, "--out", other, NULL}, 1, 0};
    const char *none[] = {NULL}, *err = "";
    CU_ASSERT_EQUAL_FATAL(run_with(&kg, none, &err), 0);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && cp -p '%s/secret.key' '%s/' && cp '%s/eval.key' '%s/'", mixed,
             k_path_keys, mixed, other, mixed);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    command rem = {"veil remote",
                   {g_veil, "remote", g_model, "--key", mixed, "--server", "http://127.0.0.1:1",
                    "--retries", "0", NULL},
                   0,
                   0};
    CU_ASSERT_EQUAL(run_with(&rem, none, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "was not made from the secret key beside it"));
}

/* An --output that cannot be written fails before any work (issue 15, item
 * 4): each command is given a model (or ciphertext) that does not exist and
 * an unreachable server too, so an error naming the output proves the output
 * was checked first. */
static void test_output_checked_first(void) {
    char bad_out[300], no_model[300], no_ct[300];
    snprintf(bad_out, sizeof bad_out, "%s/missing-dir/out.csv", g_dir);
    snprintf(no_model, sizeof no_model, "%s/no-such-model.h5", g_dir);
    snprintf(no_ct, sizeof no_ct, "%s/no-such-ct.bin", g_dir);
    const command cmds[] = {
        {"veil run", {g_veil, "run", no_model, "--mode", "cpu", "--output", bad_out, NULL}, 0, 0},
        {"veil remote",
         {g_veil, "remote", no_model, "--key", k_path_keys, "--server", "http://127.0.0.1:1",
          "--retries", "0", "--output", bad_out, NULL},
         0,
         0},
        {"veil decrypt",
         {g_veil, "decrypt", no_model, "--key", k_path_keys, "--input", no_ct, "--output", bad_out,
          NULL},
         0,
         0},
    };
    const char *none[] = {NULL}, *err = "";
    size_t checked = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        const int rc = run_with(&cmds[i], none, &err);
        const int named = strstr(err, bad_out) != NULL;
        if (rc == 0 || !named) printf("\n  %s: rc %d, stderr: %s", cmds[i].label, rc, err);
        CU_ASSERT(rc != 0);
        CU_ASSERT(named);
        CU_ASSERT_PTR_NULL(strstr(err, "no-such-model"));
        checked++;
    }
    CU_ASSERT_EQUAL(checked, 3);
}

/* bench_model's list options are checked entry by entry (a misspelt mode or
 * a batch of 0 gave empty results and exit 0), and a failed run leaves an
 * earlier --out file as it was. */
static void test_bench_model_lists(void) {
    if (access(g_bench, X_OK) != 0) {
        printf("\n  bench_model not built: not checked");
        return;
    }
    char json[300];
    snprintf(json, sizeof json, "%s/lists.json", g_dir);
    FILE *f = fopen(json, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"earlier\": 1}\n", f);
    fclose(f);
    const char *M = veil_test_path("models/tiny.h5");
    struct {
        const char *opt, *val, *want;
    } bad[] = {{"--modes", "simluate", "'simluate' is not simulate, cpu or cuda"},
               {"--batches", "x,4", "'x' is not a batch size"},
               {"--batches", "4,0", "'0' is not a batch size"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *argv[] = {g_bench, "--models", (char *)M, (char *)bad[i].opt, (char *)bad[i].val,
                        "--out", json,       NULL};
        const char *err = "";
        const int rc = run_cmd(argv, 0, &err);
        if (rc != 2 || !strstr(err, bad[i].want))
            printf("\n  bench_model %s %s: rc %d, stderr: %s", bad[i].opt, bad[i].val, rc, err);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
    }
    size_t len = 0;
    char *kept = veil_test_read_file(json, &len);
    CU_ASSERT(kept && strstr(kept, "earlier"));
    free(kept);
}

int main(void) {
    if (veil_test_build_path("host/veil", g_veil, sizeof g_veil) ||
        veil_test_build_path("host/veil-server", g_server, sizeof g_server) ||
        veil_test_build_path("bench/bench_model", g_bench, sizeof g_bench)) {
        printf("SKIPPED: VEIL_BUILD_DIR is not set (run through ctest)\n");
        return VEIL_TEST_SKIP;
    }
    snprintf(g_model, sizeof g_model, "%s", veil_test_path("models/tiny.h5"));
    if (access(g_veil, X_OK) != 0) {
        printf("SKIPPED: %s not built\n", g_veil);
        return VEIL_TEST_SKIP;
    }
    if (veil_test_mkdtemp("cli", g_dir, sizeof g_dir) != 0) return 1;
    snprintf(k_path_keys, sizeof k_path_keys, "%s/keys", g_dir);
    snprintf(k_path_ct, sizeof k_path_ct, "%s/ct.bin", g_dir);
    snprintf(k_path_out, sizeof k_path_out, "%s/out.csv", g_dir);
    snprintf(k_path_json, sizeof k_path_json, "%s/bench.json", g_dir);
    snprintf(k_path_skeys, sizeof k_path_skeys, "%s/server-keys", g_dir);
    veil_model *m = NULL;
    veil_program *p = NULL;
    veil_compile_options o;
    veil_compile_options_default(&o);
    if (veil_model_load(g_model, &m) || veil_program_compile(m, &o, &p)) {
        printf("tiny.h5: %s\n", veil_error_message());
        return 1;
    }
    snprintf(g_params, sizeof g_params, "%s", p->params->id);
    veil_program_free(p);
    veil_model_free(m);
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("cli_options", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_every_option_of_every_command);
    VEIL_ADD_TEST(s, test_secret_key_mode_warning);
    VEIL_ADD_TEST(s, test_remote_checks_key_pair);
    VEIL_ADD_TEST(s, test_output_checked_first);
    VEIL_ADD_TEST(s, test_bench_model_lists);
    int rc = veil_test_run();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("could not remove %s\n", g_dir);
    return rc;
}
