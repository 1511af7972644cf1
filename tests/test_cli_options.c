// LABELS: unit model
// COST: 90
// LINKS: veil_loaders veil_host
// RUNS: veil veil-server bench_model
/* Every option that --help lists is accepted (issue 15 item 9, issue 12
 * point 1): for every `veil` command, `veil-server` and `bench_model`, the
 * test reads `--help`, takes each "  --option [VALUE]" line and runs the
 * command with it on models/tiny.h5:
 *   - with a value that means the default (so keys made with the defaults
 *     still fit), the command must succeed (exit 0; veil-server: listen);
 *     decrypt and remote, which need a server's result, must get past their
 *     option parsing (no usage error, exit != 2);
 *   - every alternative of an "a|b|c" value must pass the parser (exit != 2);
 *   - bad values of every numeric and enum option (the table k_bad: not a
 *     number, negative, 0 where 0 is invalid, out of range, past 2^64, a
 *     junk suffix, an unknown word) must be refused with exit 2 and a
 *     message naming the option.
 * An option the test has no sample value for, a numeric or a|b option with
 * no bad values, an entry of k_bad no --help lists, and an option that a
 * --help text mentions ("--xyz" anywhere) but lists on no line of its own
 * (so the loop never tried it) fail the test. A veil-server that never says
 * "listening" within 30 s fails too (SIGTERM would make it exit 0).
 * Every command `veil --help` lists must be one of those checked.
 * Also: a secret key file readable by others gets a warning; `veil remote`
 * refuses an eval.key that does not belong to the secret key before uploading.
 * Binaries come from VEIL_BUILD_DIR (set by CTest). */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"
#include "veil/backend.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <ctype.h>
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

enum { MAX_ARGS = 40, RC_NEVER_LISTENED = 124 /* as timeout(1) */ };

/* Runs argv with stdout/stderr to files under g_dir; waits (server: until it
 * says "listening" or exits, then SIGTERM). Returns the exit code, 128+signal
 * when killed by a signal, 0 for a server that listened, RC_NEVER_LISTENED
 * for a server still running, silent, after 30 s. The output goes to *err
 * (static). */
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
    int ws = 0, listened = 0, never_listened = 0;
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
            never_listened = !listened; /* still running after 30 s, silent */
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
    if (never_listened) {
        /* SIGTERM makes it drain and exit 0: that is no success */
        printf("\n  %s: did not say \"listening on\" within 30 s (killed)", argv[0]);
        return RC_NEVER_LISTENED;
    }
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
    if (!strcmp(opt, "--global-p-error")) return "none";
    if (!strcmp(opt, "--params")) return g_params;
    if (!strcmp(opt, "--max-poly-size")) return "65536";
    if (!strcmp(opt, "--lookup-bits")) return "0"; /* the cost model's choice */
    if (!strcmp(opt, "--chunk-bits")) return "0";  /* the cost model's choice */
    if (!strcmp(opt, "--partitions")) return "0";  /* the cost model's choice */
    if (!strcmp(opt, "--key-budget-mb")) return VEIL_TEST_XSTR(VEIL_KEY_BUDGET_MB_DEFAULT);
    if (!strcmp(opt, "--range-margin")) return "0.25";
    if (!strcmp(opt, "--range-check")) return "off";
    if (!strcmp(opt, "--wop")) return "off";
    if (!strcmp(opt, "--objective")) return "throughput";
    if (!strcmp(opt, "--triton")) return "http://127.0.0.1:1"; /* replaces --server */
    if (!strcmp(opt, "--triton-model") || !strcmp(opt, "--triton-keys-model")) return "veil";
    if (serv && !strcmp(opt, "--read-timeout-ms")) return "30000";
    if (serv && !strcmp(opt, "--request-timeout-ms")) return "120000";
    if (serv && !strcmp(opt, "--drain-timeout-ms")) return "25000";
    if (serv && !strcmp(opt, "--key-store-max-mb")) return "10240";
    if (serv && !strcmp(opt, "--key-ttl-hours")) return "0";
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
    /* --triton-model and --triton-keys-model are for a Triton URL */
    const int to_triton = extra[0] && !strncmp(extra[0], "--triton-", 9);
    for (int i = 0; c->base[i]; i++) {
        if (triton && !strcmp(c->base[i], "--server") && c->base[i + 1]) {
            i++;
            continue;
        }
        args[n++] = to_triton && !strcmp(c->base[i], "--server") ? "--triton" : c->base[i];
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

/* Why a program can be missing: its `// RUNS:` line above builds every one
 * this configuration has. */
static const char k_why_not_built[] =
    "not in this configuration: veil-server needs libmicrohttpd, bench_model the bench/ tree";

/* Bad values of every numeric and enum option, tried on every command whose
 * --help lists the option: each must exit with rc (2: a usage error) and name
 * the option in stderr. Numbers: not a number, negative, zero where 0 is
 * not allowed, above the range, overflowing 64 bits, a junk suffix, empty. */
typedef struct bad_values {
    const char *opt;
    int rc;
    const char *values[12];
} bad_values;

#define VEIL_OVERFLOW "99999999999999999999" /* > 2^64 */
#define VEIL_BAD_COUNT "0", "-1", "x", "4x", "1.5", "", VEIL_OVERFLOW
#define VEIL_BAD_COUNT0 "-1", "x", "4x", "1.5", "", " 1", VEIL_OVERFLOW /* 0 allowed */

static const bad_values k_bad[] = {
    /* compile options (veil/compile_options.h) */
    {"--max-poly-size", 2, {"257", "300", "5000", "4294967552", "-256", "", "2048x", NULL}},
    {"--rounding-bits", 2, {"0", "17", "-1", "8.5", "x", "nonE", VEIL_OVERFLOW, NULL}},
    {"--lookup-bits", 2, {"1", "17", "-1", "x", "4x", "", VEIL_OVERFLOW, NULL}},
    {"--chunk-bits", 2, {"17", "-1", "x", "4x", "", VEIL_OVERFLOW, NULL}},
    {"--partitions", 2, {"17", "-1", "x", "4x", "", VEIL_OVERFLOW, NULL}},
    {"--key-budget-mb", 2, {"-1", "1e3", "16777217", "512MB", "", VEIL_OVERFLOW, NULL}},
    {"--p-error", 2, {"1", "0", "-1e-9", "nan", "1e-400x", "", "x", NULL}},
    {"--global-p-error", 2, {"1", "0", "-1e-9", "nan", "1e-320", "1e-5x", "", "NONE", NULL}},
    {"--range-margin", 2, {"-0.1", "17", "nan", "inf", "1e999", "0.25x", "", "x", NULL}},
    {"--range-check", 2, {"yes", "ON", "1", "", NULL}},
    {"--wop", 2, {"on", "OFF", "1", "", NULL}},
    {"--objective",
     2,
     {"speed", "Latency", "latency:0", "latency:257", "latency:", "latency:2x", "", NULL}},
    {"--rounding", 2, {"exactly", "round", "Exact", "", NULL}},
    {"--bounds", 2, {"worst", "calibrate", "worst case", "", NULL}},
    {"--params", 2, {"no-such-set", "AUTO", "", NULL}},
    /* backend options */
    {"--devices", 2, {"", "0,,1", "-1", "x", "0,", "1x", VEIL_OVERFLOW, NULL}},
    /* veil run, encrypt, remote */
    {"--mode", 2, {"simluate", "gpu", "Cpu", "SIMULATE", "", NULL}},
    {"--batch", 2, {VEIL_BAD_COUNT, NULL}},
    {"--limit", 2, {VEIL_BAD_COUNT, NULL}},
    {"--timeout", 2, {VEIL_BAD_COUNT, NULL}},
    {"--retries", 2, {"101", "-1", "x", "4x", "", VEIL_OVERFLOW, NULL}},
    /* veil-server */
    {"--backend", 2, {"gpu", "CUDA", "Cpu", "gpus", "cpu0", "c", "", NULL}},
    {"--listen",
     2,
     {"127.0.0.1", "127.0.0.1:-1", "127.0.0.1:65536", "127.0.0.1:80x", "127.0.0.1:" VEIL_OVERFLOW,
      "[::1:0", ":8080", "", NULL}},
    {"--max-batch", 2, {VEIL_BAD_COUNT, "1048577", NULL}},
    {"--max-wait-ms", 2, {VEIL_BAD_COUNT0, "4294967296", NULL}},
    {"--max-body", 2, {VEIL_BAD_COUNT, NULL}},
    {"--max-request-samples", 2, {VEIL_BAD_COUNT, NULL}},
    {"--max-inflight", 2, {VEIL_BAD_COUNT, "1048577", NULL}},
    {"--max-queue", 2, {VEIL_BAD_COUNT, "1048577", NULL}},
    {"--timeout-ms", 2, {VEIL_BAD_COUNT, "4294967296", NULL}},
    {"--key-cache", 2, {VEIL_BAD_COUNT, "1025", NULL}},
    {"--max-key-uploads", 2, {VEIL_BAD_COUNT, "4294967296", NULL}},
    {"--read-timeout-ms", 2, {VEIL_BAD_COUNT, "4294967296", NULL}},
    {"--request-timeout-ms", 2, {VEIL_BAD_COUNT, "4294967296", NULL}},
    {"--drain-timeout-ms", 2, {VEIL_BAD_COUNT, "4294967296", NULL}},
    {"--key-store-max-mb", 2, {VEIL_BAD_COUNT0, "4294967296", NULL}},
    {"--key-ttl-hours", 2, {VEIL_BAD_COUNT0, "4294967296", NULL}},
    {"--max-conn-per-ip", 2, {VEIL_BAD_COUNT0, "4294967296", NULL}},
    /* bench_model (its list syntax: test_bench_model_lists) */
    {"--samples", 2, {VEIL_BAD_COUNT, NULL}},
    {"--batches", 2, {"0", "-1", "x", "4x", "", "1,,4", ",1", "1,", VEIL_OVERFLOW, NULL}},
    {"--modes", 2, {"simluate", "", "simulate,gpu", "simulate,auto", "simulate,", NULL}},
};
static size_t bad_tried[sizeof k_bad / sizeof *k_bad];

static const bad_values *bad_values_of(const char *opt) {
    for (size_t i = 0; i < sizeof k_bad / sizeof *k_bad; i++)
        if (!strcmp(k_bad[i].opt, opt)) return &k_bad[i];
    return NULL;
}

/* A value that is a number (N, MS, S, F, P, MB, BYTES) or one of a few words
 * (a|b) must have bad values above. */
static int needs_bad_values(const char *syntax) {
    static const char *const numeric[] = {"N", "MS", "S", "F", "P", "MB", "BYTES"};
    for (size_t i = 0; i < sizeof numeric / sizeof *numeric; i++)
        if (!strcmp(syntax, numeric[i])) return 1;
    return strchr(syntax, '|') != NULL;
}

/* Under a sanitizer (testutil.h VEIL_TEST_SANITIZED, make sanitize) `veil
 * keygen` is given only its own options and every option's bad values: the
 * options `veil compile` lists too (the compile options, one parser:
 * veil_compile_options_parse_arg) are parsed under the sanitizer in `veil
 * compile`'s turn, and the keygen each accepted value runs is the default
 * keygen's above (the sample values mean the default), a whole keygen per
 * value under a sanitizer: 15 of its 17 options (2026-12-07). make test runs
 * them all. Returns 1 when opt is such an option of c. */
static char *g_compile_help;
static size_t g_left_to_plain;
static int plain_pass_only(const command *c, const char *opt) {
    if (!VEIL_TEST_SANITIZED || strcmp(c->label, "veil keygen")) return 0;
    char line[80];
    snprintf(line, sizeof line, "\n  %s ", opt);
    return g_compile_help && strstr(g_compile_help, line) != NULL;
}

static void check_command(const command *c) {
    char *argv0[4] = {c->base[0], NULL, NULL, NULL};
    if (!strncmp(c->label, "veil ", 5)) argv0[1] = c->base[1];
    char *help = help_of(argv0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(help);
    char *whole = strdup(help); /* strtok cuts help */
    CU_ASSERT_PTR_NOT_NULL_FATAL(whole);
    char listed[64][64];
    size_t n_listed = 0, options = 0;
    for (char *line = strtok(help, "\n"); line; line = strtok(NULL, "\n")) {
        char opt[64], syntax[128];
        if (!veil_test_help_option(line, opt, syntax)) continue;
        if (opt[strlen(opt) - 1] == ',') continue; /* not expected any more, but safe */
        options++;
        if (n_listed < sizeof listed / sizeof *listed) memcpy(listed[n_listed++], opt, sizeof opt);
        const char *err = "";
        const int plain_only = plain_pass_only(c, opt);
        g_left_to_plain += (size_t)plain_only;
        if (!syntax[0] && plain_only) continue;
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
        int rc = plain_only ? 0 : run_with(c, extra, &err);
        g_tried += !plain_only;
        if (c->must_succeed ? rc != 0 : is_usage_error(rc, err)) {
            printf("\n  %s %s %s: exit %d: %s", c->label, opt, v, rc, err);
            CU_FAIL("an option --help lists was not accepted");
        }
        /* Every alternative of a|b|c passes the parser. */
        if (strchr(syntax, '|') && !plain_only) {
            char alts[128];
            snprintf(alts, sizeof alts, "%s", syntax);
            char *save = NULL;
            for (char *a = strtok_r(alts, "|", &save); a; a = strtok_r(NULL, "|", &save)) {
                /* N|none, ID|auto: the placeholder is the sample above */
                if (strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(a)) continue;
                /* latency[:C]: "latency" and "latency:4" (the optional
                 * part with its placeholder, an upper-case letter, as 4) */
                char forms[2][160];
                int n_forms = 1;
                snprintf(forms[0], sizeof forms[0], "%s", a);
                char *br = strchr(forms[0], '[');
                if (br) {
                    snprintf(forms[1], sizeof forms[1], "%.*s", (int)strcspn(br + 1, "]"), br + 1);
                    for (char *q = forms[1]; *q; q++)
                        if (*q >= 'A' && *q <= 'Z') *q = '4';
                    *br = 0;
                    char tail[32];
                    snprintf(tail, sizeof tail, "%.31s", forms[1]);
                    snprintf(forms[1], sizeof forms[1], "%.64s%s", forms[0], tail);
                    n_forms = 2;
                }
                for (int fi = 0; fi < n_forms; fi++) {
                    const char *extra2[] = {opt, forms[fi], NULL};
                    rc = run_with(c, extra2, &err);
                    g_tried++;
                    if (is_usage_error(rc, err)) {
                        printf("\n  %s %s %s: exit %d: %s", c->label, opt, forms[fi], rc, err);
                        CU_FAIL("an alternative --help lists was refused");
                    }
                }
            }
        }
        /* Bad values are refused, naming the option. */
        const bad_values *bad = bad_values_of(opt);
        if (!bad && needs_bad_values(syntax)) {
            printf("\n  %s --help lists %s %s: this test has no bad values for it\n", c->label, opt,
                   syntax);
            CU_FAIL("a numeric or enum option without bad values in test_cli_options.c");
        }
        for (int b = 0; bad && bad->values[b]; b++) {
            const char *extra3[] = {opt, bad->values[b], NULL};
            rc = run_with(c, extra3, &err);
            g_tried++;
            if (rc != bad->rc || !strstr(err, opt)) {
                printf("\n  %s %s '%s': exit %d (expected %d naming the option): %s", c->label, opt,
                       bad->values[b], rc, bad->rc, err);
                CU_FAIL("a bad value was not refused");
            }
        }
        if (bad) bad_tried[bad - k_bad]++;
    }
    /* Every option the help text mentions anywhere ("--xyz", in a
     * description, the usage line or between two options) is one it lists
     * at the start of a line, so the loop above tried it. */
    veil_test_help_unlisted(whole, (const char(*)[64])listed, n_listed, c->label);
    if (!options && strcmp(c->label, "veil info")) {
        printf("\n  %s --help lists no option\n", c->label);
        CU_FAIL("no option found in --help");
    }
    free(whole);
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
    /* Every command `veil --help` lists is one checked below (a new
     * command's options are tried as soon as it is listed). */
    {
        char *top[] = {g_veil, NULL};
        char *usage = help_of(top);
        CU_ASSERT_PTR_NOT_NULL_FATAL(usage);
        const char *c = strstr(usage, "\ncommands:\n");
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        size_t listed = 0;
        for (c += 11; !strncmp(c, "  ", 2) && isalpha((unsigned char)c[2]); listed++) {
            char label[64];
            snprintf(label, sizeof label, "veil %.*s", (int)strcspn(c + 2, " \n"), c + 2);
            int found = 0;
            for (size_t i = 0; i < sizeof cmds / sizeof *cmds && !found; i++)
                found = !strcmp(cmds[i].label, label);
            if (!found) {
                printf("\n  `veil --help` lists %s, which this test does not check", label);
                CU_FAIL("a veil command missing from test_every_option_of_every_command");
            }
            c = strchr(c, '\n');
            if (!c) break;
            c++;
        }
        CU_ASSERT(listed >= 7);
        free(usage);
    }
    char *compile_argv[] = {g_veil, "compile", NULL};
    g_compile_help = VEIL_TEST_SANITIZED ? help_of(compile_argv) : NULL;
    CU_ASSERT(!VEIL_TEST_SANITIZED || g_compile_help);
    int all_built = 1;
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        if (access(cmds[i].base[0], X_OK) != 0) {
            printf("\nSKIPPED: %s: %s not built (%s), its options not checked\n", cmds[i].label,
                   cmds[i].base[0], k_why_not_built);
            all_built = 0;
            continue;
        }
        check_command(&cmds[i]);
    }
    for (size_t i = 0; all_built && i < sizeof k_bad / sizeof *k_bad; i++)
        if (!bad_tried[i]) {
            printf("\n  bad values of %s: no command's --help lists it (stale table)",
                   k_bad[i].opt);
            CU_FAIL("a bad-value table entry was never tried");
        }
    printf("\n  %zu command lines tried\n", g_tried);
    if (g_left_to_plain)
        printf("  veil keygen: %zu compile options accepted in make test only (sanitizer build)\n",
               g_left_to_plain);
    free(g_compile_help);
    g_compile_help = NULL;
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

/* veil run at batch 1 takes --objective latency where the run is on the cpu
 * backend: --mode cpu, and --mode auto where auto is the cpu (no GPU); not
 * simulate, and not where --objective is given. */
static void test_run_objective_follows_backend(void) {
    const int auto_cpu = veil_backend_kind_resolve(VEIL_BACKEND_AUTO) == VEIL_BACKEND_CPU;
    const struct {
        const char *mode, *objective;
        int want;
    } cases[] = {{"cpu", NULL, 1},
                 {"auto", NULL, auto_cpu},
                 {"simulate", NULL, 0},
                 {"cpu", "throughput", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *argv[12] = {g_veil, "run", g_model, "--mode", (char *)cases[i].mode, "--limit", "1"};
        if (cases[i].objective) argv[7] = "--objective", argv[8] = (char *)cases[i].objective;
        const char *err = "";
        const int rc = run_cmd(argv, 0, &err);
        const int said = strstr(err, "--objective latency:") != NULL;
        if (rc != 0 || said != cases[i].want)
            printf("\n  veil run --mode %s%s%s: rc %d, stderr: %s", cases[i].mode,
                   cases[i].objective ? " --objective " : "",
                   cases[i].objective ? cases[i].objective : "", rc, err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(said, cases[i].want);
    }
}

/* A --devices entry the backend does not have, or a cuda run where there is
 * no GPU, is refused before the model is loaded and compiled (nothing on
 * stdout), naming what is wrong. */
static void test_run_devices_checked_first(void) {
    char *argv[] = {g_veil,      "run", g_model,   "--mode", "cpu",
                    "--devices", "1",   "--limit", "1",      NULL};
    const char *err = "";
    int rc = run_cmd(argv, 0, &err);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--devices 1"));
    char out_path[300];
    snprintf(out_path, sizeof out_path, "%s/stdout", g_dir);
    char *out = veil_test_read_file(out_path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NULL(strstr(out, "samples from"));
    free(out);
    if (veil_backend_kind_resolve(VEIL_BACKEND_AUTO) == VEIL_BACKEND_CPU) {
        char *cu[] = {g_veil, "run", g_model, "--mode", "cuda", "--limit", "1", NULL};
        rc = run_cmd(cu, 0, &err);
        CU_ASSERT_EQUAL(rc, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "cuda backend"));
        out = veil_test_read_file(out_path, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        CU_ASSERT_PTR_NULL(strstr(out, "samples from"));
        free(out);
    }
}

/* bench_model's list options are checked entry by entry (a misspelt mode or
 * a batch of 0 gave empty results and exit 0), and a failed run leaves an
 * earlier --out file as it was. */
static void test_bench_model_lists(void) {
    if (access(g_bench, X_OK) != 0) {
        printf("\nSKIPPED: bench_model lists: %s not built (%s)\n", g_bench, k_why_not_built);
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
    VEIL_ADD_TEST(s, test_run_objective_follows_backend);
    VEIL_ADD_TEST(s, test_run_devices_checked_first);
    VEIL_ADD_TEST(s, test_bench_model_lists);
    int rc = veil_test_run();
    veil_test_rm_rf(g_dir);
    return rc;
}
