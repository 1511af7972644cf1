// LABELS: server
// LINKS: veil_loaders
// RUNS: veil veil-server
/* README's "Deployment" commands, run as a user runs them: the `veil` and
 * `veil-server` binaries on models/tiny.h5 (cpu backend, loopback).
 *   veil keygen  -> keys/ (secret.key 0600, eval.key)
 *   veil-server  --keys-dir, port 0
 *   veil remote  (golden inputs; uploads eval.key once, then finds it on the
 *                server) -> remote.csv, and printed without --output
 *   veil encrypt (a CSV of quantized inputs) -> in.ct; POST /v1/infer with
 *                the key id from keys/servers -> out.ct; veil decrypt -> CSV
 *   veil run --mode simulate -> sim.csv
 *   veil keygen --force, its evaluation key unwritable -> both keys kept
 * Every CSV must equal simulate's byte for byte (the same integers, written
 * by one writer), the printed samples must name their class, and the server
 * must exit 0 on SIGTERM. test_server covers the library calls under
 * these commands; this one covers the commands (client/cmds.c's remote and
 * decrypt paths ran in no other test of `make test`). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include "server_common.h"
#include "testutil.h"
#include "veil/loader.h"

enum { SAMPLES = 8 };

static char g_dir[256], g_veil[512], g_server[512], g_model[512];

/* Runs argv (NULL-terminated) with stdout and stderr to DIR/NAME.out and
 * DIR/NAME.err; returns the exit code (128 + signal when killed). */
static int run(const char *name, const char *const *argv) {
    char out[400], err[400];
    snprintf(out, sizeof out, "%s/%s.out", g_dir, name);
    snprintf(err, sizeof err, "%s/%s.err", g_dir, name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr)) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    const int rc = WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
    if (rc) fprintf(stderr, "\n  %s: exit %d (see %s)", name, rc, err);
    return rc;
}

static char *file_in(const char *name, size_t *len) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return veil_test_read_file(p, len);
}

static void test_readme_deployment(void) {
    char keys[300], skeys[300], url[64], remote_csv[300], sim_csv[300], in_csv[300], in_ct[300],
        dec_csv[300], lim[16];
    snprintf(keys, sizeof keys, "%s/keys", g_dir);
    snprintf(skeys, sizeof skeys, "%s/server-keys", g_dir);
    snprintf(remote_csv, sizeof remote_csv, "%s/remote.csv", g_dir);
    snprintf(sim_csv, sizeof sim_csv, "%s/sim.csv", g_dir);
    snprintf(in_csv, sizeof in_csv, "%s/in.csv", g_dir);
    snprintf(in_ct, sizeof in_ct, "%s/in.ct", g_dir);
    snprintf(dec_csv, sizeof dec_csv, "%s/decrypted.csv", g_dir);
    snprintf(lim, sizeof lim, "%d", SAMPLES);

    /* client: keys */
    const char *kg[] = {g_veil, "keygen", g_model, "--out", keys, NULL};
    CU_ASSERT_EQUAL_FATAL(run("keygen", kg), 0);
    char sk[400];
    struct stat st;
    snprintf(sk, sizeof sk, "%s/secret.key", keys);
    CU_ASSERT_EQUAL_FATAL(stat(sk, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

    /* server */
    const char *sargs[] = {"--model",     g_model,      "--backend", "cpu", "--listen",
                           "127.0.0.1:0", "--keys-dir", skeys,       NULL};
    uint16_t port = 0;
    int errfd = -1;
    pid_t srv = spawn_server(g_server, sargs, &port, &errfd);
    CU_ASSERT_FATAL(srv > 0 && port != 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);

    /* veil remote twice: uploads, then finds the key on the server */
    const char *r1[] = {g_veil, "remote",  g_model, "--key",    keys,       "--server",
                        url,    "--limit", lim,     "--output", remote_csv, NULL};
    CU_ASSERT_EQUAL(run("remote1", r1), 0);
    char *e1 = file_in("remote1.err", NULL);
    CU_ASSERT(e1 && strstr(e1, "uploaded evaluation key"));
    const char *r2[] = {g_veil,     "remote", g_model,   "--key", keys,
                        "--server", url,      "--limit", "2",     NULL};
    CU_ASSERT_EQUAL(run("remote2", r2), 0);
    char *e2 = file_in("remote2.err", NULL), *o2 = file_in("remote2.out", NULL);
    CU_ASSERT(e2 && strstr(e2, "server already has"));
    /* printed: "sample 0: y = [..] class C" for each sample */
    CU_ASSERT(o2 && strstr(o2, "sample 0: y = ["));
    CU_ASSERT(o2 && strstr(o2, "sample 1: y = ["));
    CU_ASSERT(o2 && strstr(o2, "] class "));

    /* step by step: encrypt a CSV of quantized inputs (the golden ones),
     * POST it with the key id veil remote stored, decrypt */
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(g_model, &m), VEIL_OK);
    CU_ASSERT_FATAL(m->n_inputs == 1 && m->golden.count >= SAMPLES);
    const size_t per = veil_shape_size(&m->inputs[0].shape);
    FILE *f = fopen(in_csv, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (size_t s = 0; s < SAMPLES; s++)
        for (size_t j = 0; j < per; j++)
            fprintf(f, "%lld%s", (long long)m->golden.inputs[0][s * per + j],
                    j + 1 < per ? "," : "\n");
    fclose(f);
    veil_model_free(m);
    const char *enc[] = {g_veil, "encrypt",     g_model,    "--key", keys, "--input",
                         in_csv, "--quantized", "--output", in_ct,   NULL};
    CU_ASSERT_EQUAL_FATAL(run("encrypt", enc), 0);
    char *servers = file_in("keys/servers", NULL), id[64] = "";
    CU_ASSERT_FATAL(servers && sscanf(servers, "%*s %63s", id) == 1);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "X-Veil-Key-Id: %s\r\n", id);
    size_t ct_len = 0;
    char *ct = veil_test_read_file(in_ct, &ct_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ct);
    http_res res;
    CU_ASSERT_EQUAL_FATAL(
        http_raw_port(port, "POST", "/v1/infer", hdr, (const uint8_t *)ct, ct_len, 1, 0, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    char out_ct[300];
    snprintf(out_ct, sizeof out_ct, "%s/out.ct", g_dir);
    f = fopen(out_ct, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(res.body, 1, res.body_len, f);
    fclose(f);
    http_res_free(&res);
    free(ct);
    const char *dec[] = {g_veil,    "decrypt", g_model,    "--key", keys,
                         "--input", out_ct,    "--output", dec_csv, NULL};
    CU_ASSERT_EQUAL(run("decrypt", dec), 0);

    /* simulate, and every CSV equal to it */
    const char *sim[] = {g_veil,    "run", g_model,    "--mode", "simulate",
                         "--limit", lim,   "--output", sim_csv,  NULL};
    CU_ASSERT_EQUAL(run("simulate", sim), 0);
    size_t ls = 0, lr = 0, ld = 0;
    char *s_sim = veil_test_read_file(sim_csv, &ls), *s_rem = veil_test_read_file(remote_csv, &lr),
         *s_dec = veil_test_read_file(dec_csv, &ld);
    CU_ASSERT_PTR_NOT_NULL(s_sim);
    CU_ASSERT(s_sim && ls > 0 && s_rem && lr == ls && !memcmp(s_sim, s_rem, ls));
    CU_ASSERT(s_sim && s_dec && ld == ls && !memcmp(s_sim, s_dec, ls));
    /* one row per sample */
    size_t rows = 0;
    for (size_t i = 0; s_sim && i < ls; i++)
        rows += s_sim[i] == '\n';
    CU_ASSERT(rows >= SAMPLES);

    /* veil remote --delete-key: runs, then removes the key from the server
     * (every later use of the id 404) and from keys/servers; a second one
     * uploads again (nothing recorded) and removes that key too */
    const char *r3[] = {g_veil, "remote",  g_model, "--key",        keys, "--server",
                        url,    "--limit", "1",     "--delete-key", NULL};
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(run(k ? "remote-del2" : "remote-del1", r3), 0);
        char *e3 = file_in(k ? "remote-del2.err" : "remote-del1.err", NULL);
        CU_ASSERT(e3 && strstr(e3, k ? "uploaded evaluation key" : "server already has"));
        CU_ASSERT(e3 && strstr(e3, "deleted evaluation key"));
        free(e3);
        char *sv = file_in("keys/servers", NULL);
        CU_ASSERT(!sv || !strstr(sv, url));
        free(sv);
        DIR *d = opendir(skeys);
        size_t vek = 0;
        for (struct dirent *de; d && (de = readdir(d));)
            vek += strstr(de->d_name, ".vek") != NULL;
        if (d) closedir(d);
        CU_ASSERT_EQUAL(vek, 0);
    }
    char kpath[128];
    snprintf(kpath, sizeof kpath, "/v1/keys/%s", id);
    CU_ASSERT_EQUAL(http_raw_port(port, "GET", kpath, NULL, NULL, 0, 1, 0, &res), 0);
    CU_ASSERT_EQUAL(res.status, 404);
    http_res_free(&res);

    /* the server drains and exits 0 on SIGTERM */
    kill(srv, SIGTERM);
    int ws = 0;
    CU_ASSERT_EQUAL(wait_exit(srv, 60, &ws), 0);
    CU_ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    if (errfd >= 0) close(errfd);
    free(e1);
    free(e2);
    free(o2);
    free(servers);
    free(s_sim);
    free(s_rem);
    free(s_dec);
}

/* README's "Using it" commands that no other test runs as a binary: `veil
 * info` (inputs, layers, outputs, samples, accuracy) on every kind of model
 * file it can meet, and its refusals. */
static void test_readme_info(void) {
    const char *models[] = {"models/tiny.h5", "models/mlp_digits.h5", "models/cnn_digits.h5"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s", veil_test_path(models[i]));
        const char *info[] = {g_veil, "info", path, NULL};
        CU_ASSERT_EQUAL(run("info", info), 0);
        char *o = file_in("info.out", NULL);
        CU_ASSERT(o && strstr(o, "model "));
        CU_ASSERT(o && strstr(o, "\ninput  "));
        CU_ASSERT(o && strstr(o, "\nlayer  0000_"));
        CU_ASSERT(o && strstr(o, " lut "));
        CU_ASSERT(o && strstr(o, "\noutput "));
        CU_ASSERT(o && strstr(o, "\ncalibration "));
        CU_ASSERT(o && strstr(o, "\naccuracy: brevitas "));
        free(o);
    }
    /* a file that is not a model: exit 1, the path named */
    char bogus[300];
    snprintf(bogus, sizeof bogus, "%s/not-a-model.h5", g_dir);
    FILE *f = fopen(bogus, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("not hdf5\n", f);
    fclose(f);
    const char *bad[] = {g_veil, "info", bogus, NULL};
    CU_ASSERT_EQUAL(run("info-bad", bad), 1);
    char *e = file_in("info-bad.err", NULL);
    CU_ASSERT(e && strstr(e, bogus));
    free(e);
    /* usage errors: exit 2 */
    const char *two[] = {g_veil, "info", g_model, g_model, NULL};
    CU_ASSERT_EQUAL(run("info-two", two), 2);
    const char *none[] = {g_veil, "info", NULL};
    CU_ASSERT_EQUAL(run("info-none", none), 2);
}

/* keygen --force replaces the key pair together or not at all: when the
 * evaluation key cannot be written (a directory in the way of the name it is
 * written under first, as a full disk would fail it), the command fails and
 * both old files are untouched, byte for byte; once it can, both change. */
static void test_keygen_force_pair(void) {
    char keys[300], sk[400], ek[400], blocker[400];
    snprintf(keys, sizeof keys, "%s/pair", g_dir);
    snprintf(sk, sizeof sk, "%s/secret.key", keys);
    snprintf(ek, sizeof ek, "%s/eval.key", keys);
    snprintf(blocker, sizeof blocker, "%s/eval.key.new", keys);
    const char *kg[] = {g_veil, "keygen", g_model, "--out", keys, NULL};
    CU_ASSERT_EQUAL_FATAL(run("pair-keygen", kg), 0);
    size_t sk_len = 0, ek_len = 0;
    char *sk0 = veil_test_read_file(sk, &sk_len), *ek0 = veil_test_read_file(ek, &ek_len);
    CU_ASSERT_FATAL(sk0 && ek0);
    CU_ASSERT_EQUAL_FATAL(mkdir(blocker, 0700), 0);
    const char *force[] = {g_veil, "keygen", g_model, "--out", keys, "--force", NULL};
    CU_ASSERT_NOT_EQUAL(run("pair-force-blocked", force), 0);
    size_t l1 = 0, l2 = 0;
    char *sk1 = veil_test_read_file(sk, &l1), *ek1 = veil_test_read_file(ek, &l2);
    CU_ASSERT(sk1 && l1 == sk_len && memcmp(sk1, sk0, sk_len) == 0);
    CU_ASSERT(ek1 && l2 == ek_len && memcmp(ek1, ek0, ek_len) == 0);
    char *err = file_in("pair-force-blocked.err", NULL);
    CU_ASSERT(err && strstr(err, "eval.key.new"));
    CU_ASSERT_EQUAL(rmdir(blocker), 0);
    CU_ASSERT_EQUAL(run("pair-force", force), 0);
    size_t l3 = 0, l4 = 0;
    char *sk2 = veil_test_read_file(sk, &l3), *ek2 = veil_test_read_file(ek, &l4);
    CU_ASSERT(sk2 && (l3 != sk_len || memcmp(sk2, sk0, sk_len) != 0));
    CU_ASSERT(ek2 && (l4 != ek_len || memcmp(ek2, ek0, ek_len) != 0));
    CU_ASSERT_NOT_EQUAL(access(blocker, F_OK), 0); /* renamed into place */
    free(sk0), free(ek0), free(sk1), free(ek1), free(sk2), free(ek2), free(err);
}

/* `veil keygen --out keys/`, as README writes it: the files it names are
 * keys/secret.key and keys/eval.key (no doubled slash), and so are the paths
 * of the commands that read them (here encrypt's refusal of a missing key). */
static void test_keydir_trailing_slash(void) {
    char keys[300], want_sk[400], want_ek[400], none[300], want_none[400];
    snprintf(keys, sizeof keys, "%s/slash/", g_dir);
    snprintf(want_sk, sizeof want_sk, "%ssecret.key ", keys);
    snprintf(want_ek, sizeof want_ek, "%seval.key ", keys);
    const char *kg[] = {g_veil, "keygen", g_model, "--out", keys, NULL};
    CU_ASSERT_EQUAL_FATAL(run("slash-keygen", kg), 0);
    char *o = file_in("slash-keygen.out", NULL);
    CU_ASSERT(o && strstr(o, want_sk) && strstr(o, want_ek));
    CU_ASSERT(o && !strstr(o, "//"));
    free(o);
    snprintf(none, sizeof none, "%s/no-keys/", g_dir);
    snprintf(want_none, sizeof want_none, "%ssecret.key: ", none);
    const char *enc[] = {g_veil,    "encrypt", g_model,    "--key",     none,
                         "--input", g_model,   "--output", "/dev/null", NULL};
    CU_ASSERT_EQUAL(run("slash-encrypt", enc), 1);
    char *e = file_in("slash-encrypt.err", NULL);
    CU_ASSERT(e && strstr(e, want_none) && !strstr(e, "//"));
    free(e);
}

int main(void) {
    if (veil_test_build_path("host/veil", g_veil, sizeof g_veil) ||
        veil_test_build_path("host/veil-server", g_server, sizeof g_server)) {
        printf("SKIPPED: VEIL_BUILD_DIR is not set (run through ctest)\n");
        return VEIL_TEST_SKIP;
    }
    snprintf(g_model, sizeof g_model, "%s", veil_test_path("models/tiny.h5"));
    if (access(g_veil, X_OK) != 0 || access(g_server, X_OK) != 0) {
        printf("SKIPPED: %s or %s not built\n", g_veil, g_server);
        return VEIL_TEST_SKIP;
    }
    if (veil_test_mkdtemp("deploy", g_dir, sizeof g_dir) != 0) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("cli_deploy", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_readme_deployment);
    VEIL_ADD_TEST(s, test_readme_info);
    VEIL_ADD_TEST(s, test_keygen_force_pair);
    VEIL_ADD_TEST(s, test_keydir_trailing_slash);
    const int rc = veil_test_run();
    if (!getenv("VEIL_TEST_KEEP")) veil_test_rm_rf(g_dir);
    return rc;
}
