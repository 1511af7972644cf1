// LABELS: triton
// LINKS: veil_triton_launch veil_client
/* test_triton.c — veil as a Triton Inference Server backend, end to end:
 * a real tritonserver (PyPI's nvidia-pytriton, installed by
 * scripts/setup-triton.sh) on loopback with libtriton_veil.so on the CPU and
 * a test-made model repository serving models/tiny.h5:
 *   two clients' keys uploaded through the veil_keys model; batches from 4
 *   concurrent clients under the two keys (Triton's dynamic batcher merges
 *   them; the backend groups rows by key id, with one resident key per
 *   instance so keys are evicted and reloaded), every decrypted result equal
 *   to simulate;
 *   an unknown key id, a result batch sent as input (wrong model), a
 *   truncated batch, an evaluation key as a batch, a secret-key upload, a
 *   mask word past a narrow program's input width (a third tritonserver):
 *   each a Triton error carrying veil's message, and the server keeps serving;
 *   deploy/triton/client.py (tritonclient) round trip;
 *   a key deleted through veil_keys (DELETE_KEY_ID): its resident copy
 *   freed, the id unknown after;
 *   a second tritonserver sharing the key store serves the key uploaded to
 *   the first.
 * Without the wheel (no network, another CPU architecture): SKIPPED, 77;
 * under VEIL_REQUIRE_VENVS=1 (CI) only where the wheel cannot exist: a
 * failed install fails the test there. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../host/client/http.h"
#include "launch.h"
#include "remote_client.h"
#include "testutil.h"
#include "veil/client.h"
#include "veil/exec.h"

static veil_triton_env g_env;
static char g_tmp[256], g_keys[300], g_repo_a[300], g_repo_b[300], g_client_dir[300];
static veil_client *g_client;
static veil_secret_key *g_sk, *g_sk2; /* two clients, two keys */
static char g_client_dir2[300], g_id2[VEIL_KEY_ID_CHARS + 1];
static veil_triton_server g_a, g_b;
static char g_id[VEIL_KEY_ID_CHARS + 1];

static size_t count_files(const char *dir) {
    size_t n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void triton_options(veil_remote_options *ro) {
    veil_remote_options_default(ro);
    ro->triton_model = "tiny";
    ro->retries = 0;
    ro->timeout_s = 300;
}

/* extra: more parameters (compile options), or NULL */
static veil_status start_with(const char *repo, const char *log, const char *extra,
                              veil_triton_server *s) {
    veil_triton_repo_options o = {0};
    o.name = "tiny";
    o.model_path = veil_test_path("models/tiny.h5");
    o.keys_dir = g_keys;
    o.max_batch_size = 8;
    o.max_queue_delay_us = 200000; /* let the 4 clients' requests meet */
    o.max_batch = 8;
    /* one resident key per instance: the two clients' keys evict each other */
    char params[512];
    snprintf(params, sizeof params,
             "parameters: { key: \"key_cache\" value: { string_value: \"1\" } }\n%s",
             extra ? extra : "");
    o.extra = params;
    VEIL_TRY(veil_triton_repo_write(repo, &o));
    char path[400];
    snprintf(path, sizeof path, "%s/%s", g_tmp, log);
    return veil_triton_server_start(&g_env, repo, VEIL_TRITON_BACKEND_DIR, "tiny", path, 180, s);
}

static veil_status start(const char *repo, const char *log, veil_triton_server *s) {
    return start_with(repo, log, NULL, s);
}

static int suite_init(void) {
    if (sodium_init() < 0) return -1;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/veil-test-triton-XXXXXX");
    if (!mkdtemp(g_tmp)) return -1;
    snprintf(g_keys, sizeof g_keys, "%s/keys", g_tmp);
    snprintf(g_repo_a, sizeof g_repo_a, "%s/repo-a", g_tmp);
    snprintf(g_repo_b, sizeof g_repo_b, "%s/repo-b", g_tmp);
    snprintf(g_client_dir, sizeof g_client_dir, "%s/client", g_tmp);
    snprintf(g_client_dir2, sizeof g_client_dir2, "%s/client2", g_tmp);
    veil_keygen_info info;
    if (veil_client_open(veil_test_path("models/tiny.h5"), NULL, &g_client) ||
        veil_client_keygen(g_client, g_client_dir, 0, &info) ||
        veil_client_load_secret_key(g_client, g_client_dir, &g_sk) ||
        veil_client_keygen(g_client, g_client_dir2, 0, &info) ||
        veil_client_load_secret_key(g_client, g_client_dir2, &g_sk2)) {
        fprintf(stderr, "client: %s\n", veil_error_message());
        return -1;
    }
    if (start(g_repo_a, "triton-a.log", &g_a)) {
        fprintf(stderr, "%s\n", veil_error_message());
        return -1;
    }
    printf("tritonserver A at %s\n", g_a.url);
    return 0;
}

static int suite_clean(void) {
    veil_triton_server_stop(&g_a);
    veil_triton_server_stop(&g_b);
    veil_secret_key_free(g_sk);
    veil_secret_key_free(g_sk2);
    veil_client_free(g_client);
    veil_test_rm_rf(g_tmp);
    return 0;
}

static const int64_t *golden(size_t s0) {
    return g_client->model->golden.inputs[0] + s0 * veil_program_input_size(g_client->prog, 0);
}

/* Encrypts golden samples s0..s0+n-1, runs them on url under key id,
 * decrypts and compares with simulate. 0 on success. */
static int roundtrip_sk(const char *url, const veil_secret_key *sk, const char *id, size_t s0,
                        size_t n) {
    veil_remote_options ro;
    triton_options(&ro);
    const int64_t *in[1] = {golden(s0)};
    uint8_t *body = NULL, *resp = NULL;
    size_t len = 0, resp_len = 0;
    if (veil_client_encrypt(g_client, sk, in, n, &body, &len)) return -1;
    veil_status st = veil_remote_infer(url, id, body, len, &ro, &resp, &resp_len, NULL);
    veil_serial_buffer_free(body, len);
    if (st) {
        fprintf(stderr, "infer on %s: %s\n", url, veil_error_message());
        return -1;
    }
    veil_ct_batch *b = NULL;
    int64_t **outs = NULL;
    size_t got = 0;
    int rc = -1;
    if (veil_ct_batch_deserialize(resp, resp_len, &b) == VEIL_OK &&
        veil_client_decrypt(g_client, sk, b, &got, &outs) == VEIL_OK && got == n) {
        const veil_program *p = g_client->prog;
        const size_t sz = veil_program_output_size(p, 0);
        int64_t *sim = malloc(n * sz * sizeof(int64_t));
        int64_t *souts[1] = {sim};
        if (sim && veil_program_simulate(p, in, n, souts, NULL, NULL) == VEIL_OK &&
            !memcmp(sim, outs[0], n * sz * sizeof(int64_t)))
            rc = 0;
        else
            fprintf(stderr, "samples %zu..%zu: decrypted result differs from simulate\n", s0,
                    s0 + n - 1);
        free(sim);
    } else {
        fprintf(stderr, "result: %s\n", veil_error_message());
    }
    free(resp);
    veil_client_outputs_free(g_client, outs);
    veil_ct_batch_free(b);
    return rc;
}

static int roundtrip(const char *url, const char *id, size_t s0, size_t n) {
    return roundtrip_sk(url, g_sk, id, s0, n);
}

static void test_upload_and_roundtrip(void) {
    veil_remote_options ro;
    triton_options(&ro);
    int uploaded = 1; /* force an upload */
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_a.url, g_client_dir, &ro, g_id, &uploaded),
                          VEIL_OK);
    CU_ASSERT(uploaded);
    CU_ASSERT(veil_key_id_valid(g_id));
    char path[512];
    snprintf(path, sizeof path, "%s/%s.vek", g_keys, g_id);
    CU_ASSERT_EQUAL(access(path, R_OK), 0);
    CU_ASSERT_EQUAL(roundtrip(g_a.url, g_id, 0, 3), 0);
    uploaded = 1;
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_a.url, g_client_dir2, &ro, g_id2, &uploaded),
                          VEIL_OK);
    CU_ASSERT_NOT_EQUAL(strcmp(g_id, g_id2), 0);
}

typedef struct client_arg {
    size_t s0;
    int second_key;
    int failures;
} client_arg;

static void *client_main(void *p) {
    client_arg *a = p;
    for (int r = 0; r < 2; r++)
        a->failures += roundtrip_sk(g_a.url, a->second_key ? g_sk2 : g_sk,
                                    a->second_key ? g_id2 : g_id, a->s0 + 2 * (size_t)r, 2) != 0;
    return NULL;
}

/* A client compiled with other options than the Triton model's config is
 * told which, before anything is sent (the fingerprint would refuse its
 * batches with no more than "model_mismatch"); the same options pass. */
static void test_options_compared(void) {
    veil_remote_options ro;
    triton_options(&ro);
    size_t ms = 0;
    CU_ASSERT_EQUAL(veil_remote_check_model(g_client, g_a.url, &ro, &ms), VEIL_OK);
    CU_ASSERT(ms >= 1);
    veil_compile_options co;
    veil_compile_options_default(&co);
    co.range_margin = 0.5;
    veil_client *other = NULL;
    CU_ASSERT_FATAL(veil_client_open(veil_test_path("models/tiny.h5"), &co, &other) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_remote_check_model(other, g_a.url, &ro, &ms), VEIL_ERR_PARAMS);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "range-margin=0.5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "range-margin=0.25"));
    veil_client_free(other);
}

static void test_concurrent_clients(void) {
    pthread_t t[4];
    client_arg a[4];
    const size_t golden_n = g_client->model->golden.count;
    for (int i = 0; i < 4; i++) {
        a[i].s0 = (4 * (size_t)i) % (golden_n >= 4 ? golden_n - 3 : 1);
        a[i].failures = 0;
        a[i].second_key = i & 1; /* Triton's batches mix keys; the backend must not */
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, client_main, &a[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        failures += a[i].failures;
    }
    CU_ASSERT_EQUAL(failures, 0);
    /* Triton's statistics: 9 requests so far (1 + 4 x 2); the dynamic batcher
     * merged some of the concurrent ones into one execution. */
    veil_remote_options ro;
    triton_options(&ro);
    char u[128];
    snprintf(u, sizeof u, "%s/v2/models/tiny/stats", g_a.url);
    /* Triton updates its statistics once a response is out: poll briefly. */
    long inferences = -1, executions = -1;
    for (int tries = 0; tries < 40 && inferences != 9; tries++) {
        veil_http_resp r;
        CU_ASSERT_EQUAL_FATAL(
            veil_http_do("GET", u, NULL, NULL, 0, 1, VEIL_REMOTE_JSON_MAX, &ro, &r), VEIL_OK);
        const char *j = r.body ? (const char *)r.body : "";
        const char *ic = strstr(j, "\"inference_count\":"), *ec = strstr(j, "\"execution_count\":");
        inferences = ic ? atol(ic + 18) : -1;
        executions = ec ? atol(ec + 18) : -1;
        free(r.body);
        if (inferences != 9) usleep(250000);
    }
    printf("Triton: %ld requests in %ld executions\n", inferences, executions);
    CU_ASSERT_EQUAL(inferences, 9);
    CU_ASSERT(executions >= 1 && executions < 9);
}

/* Sends raw bytes as CT_BATCH under id; expects an error whose message holds
 * `want`, then checks the server still serves. */
static void expect_refusal(const char *id, const uint8_t *body, size_t len, const char *want) {
    veil_remote_options ro;
    triton_options(&ro);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    veil_status st = veil_remote_infer(g_a.url, id, body, len, &ro, &resp, &resp_len, NULL);
    CU_ASSERT_NOT_EQUAL(st, VEIL_OK);
    if (st == VEIL_OK) free(resp);
    const char *msg = veil_error_message();
    if (!strstr(msg, want)) fprintf(stderr, "expected '%s' in: %s\n", want, msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    CU_ASSERT(veil_triton_server_alive(&g_a));
}

static void test_bad_inputs(void) {
    const int64_t *in[1] = {golden(0)};
    uint8_t *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(veil_client_encrypt(g_client, g_sk, in, 1, &body, &len), VEIL_OK);
    /* no such key */
    expect_refusal("0123456789abcdef0123456789abcdef", body, len, "unknown_key");
    CU_ASSERT_EQUAL(veil_remote_last_status(), 404);
    expect_refusal("not-a-key-id", body, len, "unknown_key");
    /* truncated batch */
    expect_refusal(g_id, body, len / 2, "malformed_batch");
    /* a result batch sent as input (the program's output fingerprint) */
    veil_ct_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_deserialize(body, len, &b), VEIL_OK);
    memcpy(b->model_fp, g_client->fp_out, sizeof g_client->fp_out);
    uint8_t *res = NULL;
    size_t res_len = 0;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_serialize(b, &res, &res_len), VEIL_OK);
    expect_refusal(g_id, res, res_len, "result batch");
    b->model_fp[0] ^= 1; /* another model or other compile options */
    veil_serial_buffer_free(res, res_len);
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_serialize(b, &res, &res_len), VEIL_OK);
    expect_refusal(g_id, res, res_len, "model_mismatch");
    veil_serial_buffer_free(res, res_len);
    veil_ct_batch_free(b);
    /* an evaluation key where a batch belongs */
    char ekp[512];
    snprintf(ekp, sizeof ekp, "%s/eval.key", g_client_dir);
    FILE *f = fopen(ekp, "rb");
    uint8_t head[4096];
    size_t hn = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    expect_refusal(g_id, head, hn, "wrong_kind");
    veil_serial_buffer_free(body, len);

    /* a secret key uploaded to veil_keys: the client will not send it, and
     * the backend refuses it if sent anyway; nothing stored */
    char other[512], dst[600], skp[512];
    snprintf(skp, sizeof skp, "%s/secret.key", g_client_dir);
    snprintf(other, sizeof other, "%s/evil", g_tmp);
    mkdir(other, 0700);
    snprintf(dst, sizeof dst, "%s/eval.key", other);
    CU_ASSERT_EQUAL_FATAL(symlink(skp, dst), 0);
    const size_t before = count_files(g_keys);
    veil_remote_options ro;
    triton_options(&ro);
    char id[VEIL_KEY_ID_CHARS + 1];
    int uploaded = 1;
    CU_ASSERT_EQUAL(veil_remote_ensure_key(g_a.url, other, &ro, id, &uploaded), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "not an evaluation key"));
    uint8_t *sk = NULL, *ans = NULL;
    size_t sk_len = 0, ans_len = 0;
    CU_ASSERT_EQUAL_FATAL(veil_read_file(skp, &sk, &sk_len), VEIL_OK);
    const char *names[] = {"EVAL_KEY"};
    const uint8_t *data[] = {sk};
    CU_ASSERT_NOT_EQUAL(veil_triton_call(g_a.url, "veil_keys", 1, names, data, &sk_len, "KEY_ID", 0,
                                         &ro, &ans, &ans_len),
                        VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "secret_key_refused"));
    sodium_memzero(sk, sk_len);
    free(sk);
    /* a truncated evaluation key */
    data[0] = head;
    CU_ASSERT_NOT_EQUAL(veil_triton_call(g_a.url, "veil_keys", 1, names, data, &hn, "KEY_ID", 0,
                                         &ro, &ans, &ans_len),
                        VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "malformed_key"));
    CU_ASSERT_EQUAL(count_files(g_keys), before);
    /* still serving */
    CU_ASSERT(veil_triton_server_alive(&g_a));
    CU_ASSERT_EQUAL(roundtrip(g_a.url, g_id, 1, 1), 0);
}

/* A program with an input width (tiny rounded to 3 bits: inputs under 1536 of
 * the master key's 2048 coefficients) on a third tritonserver: the client's
 * batch is answered; the same batch with its last ciphertext's last mask
 * word set, sent raw, is refused with veil's mask_past_width naming the row,
 * the ciphertext, the word and the width; the server keeps serving. */
static void test_mask_past_width(void) {
    char repo[320], dir[320];
    snprintf(repo, sizeof repo, "%s/repo-narrow", g_tmp);
    snprintf(dir, sizeof dir, "%s/client-narrow", g_tmp);
    veil_triton_server t = {0};
    veil_status st =
        start_with(repo, "triton-narrow.log",
                   "parameters: { key: \"rounding_bits\" value: { string_value: \"3\" } }\n", &t);
    if (st) fprintf(stderr, "%s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    veil_compile_options co;
    veil_compile_options_default(&co);
    co.rounding_bits = 3;
    veil_client *c = NULL;
    veil_secret_key *sk = NULL;
    veil_ct_batch *b = NULL;
    uint8_t *body = NULL, *bad = NULL, *resp = NULL;
    size_t len = 0, bad_len = 0, resp_len = 0;
    veil_remote_options ro;
    triton_options(&ro);
    char id[VEIL_KEY_ID_CHARS + 1];
    if (veil_test_remote_client("narrow client", &co, dir, t.url, &ro, &c, &sk, id)) {
        CU_FAIL("narrow client");
        goto out;
    }
    const uint32_t D = veil_params_big_dim(c->prog->params), w = c->prog->input_width;
    CU_ASSERT_FATAL(w > 0 && w < D);
    const int64_t *in[1] = {c->model->golden.inputs[0]};
    CU_ASSERT_EQUAL_FATAL(veil_client_encrypt(c, sk, in, 1, &body, &len), VEIL_OK);
    CU_ASSERT_EQUAL(veil_remote_infer(t.url, id, body, len, &ro, &resp, &resp_len, NULL), VEIL_OK);
    free(resp);
    resp = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_deserialize(body, len, &b), VEIL_OK);
    const size_t k = (size_t)b->count - 1;
    b->data[k * (D + 1) + D - 1] = 1;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_serialize(b, &bad, &bad_len), VEIL_OK);
    CU_ASSERT_NOT_EQUAL(veil_remote_infer(t.url, id, bad, bad_len, &ro, &resp, &resp_len, NULL),
                        VEIL_OK);
    const char *msg = veil_error_message();
    char want[96];
    snprintf(want, sizeof want, "CT_BATCH row 0: batch: ciphertext %zu: mask word %u is not 0", k,
             D - 1);
    if (!strstr(msg, "mask_past_width") || !strstr(msg, want))
        fprintf(stderr, "expected mask_past_width and '%s' in: %s\n", want, msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "mask_past_width"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    snprintf(want, sizeof want, "input width %u", w);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    free(resp);
    resp = NULL;
    /* still serving */
    CU_ASSERT(veil_triton_server_alive(&t));
    CU_ASSERT_EQUAL(veil_remote_infer(t.url, id, body, len, &ro, &resp, &resp_len, NULL), VEIL_OK);
out:
    free(resp);
    veil_serial_buffer_free(bad, bad_len);
    veil_serial_buffer_free(body, len);
    veil_ct_batch_free(b);
    veil_secret_key_free(sk);
    veil_client_free(c);
    veil_triton_server_stop(&t);
}

/* deploy/triton/client.py (tritonclient) against server A: a batch from
 * veil's client library in, the result decrypted here. */
static void test_python_client(void) {
    const int64_t *in[1] = {golden(0)};
    uint8_t *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(veil_client_encrypt(g_client, g_sk, in, 2, &body, &len), VEIL_OK);
    char in_path[400], out_path[400], cmd[16384];
    snprintf(in_path, sizeof in_path, "%s/py-in.ct", g_tmp);
    snprintf(out_path, sizeof out_path, "%s/py-out.ct", g_tmp);
    FILE *f = fopen(in_path, "wb");
    CU_ASSERT_FATAL(f && fwrite(body, 1, len, f) == len);
    fclose(f);
    veil_serial_buffer_free(body, len);
    snprintf(cmd, sizeof cmd,
             "'%s' '%s' --url 127.0.0.1:%d --model tiny --eval-key '%s/eval.key' --input '%s' "
             "--output '%s'",
             g_env.python, veil_test_path("deploy/triton/client.py"), g_a.http_port, g_client_dir,
             in_path, out_path);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    veil_ct_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_load(out_path, &b), VEIL_OK);
    int64_t **outs = NULL;
    size_t got = 0;
    CU_ASSERT_EQUAL_FATAL(veil_client_decrypt(g_client, g_sk, b, &got, &outs), VEIL_OK);
    CU_ASSERT_EQUAL(got, 2);
    const size_t sz = veil_program_output_size(g_client->prog, 0);
    int64_t *sim = malloc(2 * sz * sizeof(int64_t));
    int64_t *souts[1] = {sim};
    CU_ASSERT_EQUAL(veil_program_simulate(g_client->prog, in, 2, souts, NULL, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(memcmp(sim, outs[0], 2 * sz * sizeof(int64_t)), 0);
    free(sim);
    veil_client_outputs_free(g_client, outs);
    veil_ct_batch_free(b);
    /* its refusal path: an unknown key id is reported, exit status 1 */
    snprintf(cmd, sizeof cmd,
             "'%s' '%s' --url 127.0.0.1:%d --key-id 0123456789abcdef0123456789abcdef --input "
             "'%s' --output '%s.2' 2>&1 | grep -q 'veil unknown_key'",
             g_env.python, veil_test_path("deploy/triton/client.py"), g_a.http_port, in_path,
             out_path);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Bytes of every file in dir (what key_store_max_mb bounds). */
static uint64_t dir_bytes(const char *dir) {
    DIR *d = opendir(dir);
    uint64_t n = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[800];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            n += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

static void test_delete_key(void) {
    /* veil_keys' DELETE_KEY_ID (veil remote --delete-key): a key uploaded
     * and resident in A's instance (key_cache 1) is removed: gone from the
     * store and from keys/servers, its resident copy freed (A's log says
     * so; it was held until evicted before), a later batch under the id
     * answered 404 unknown_key, not run on that copy; a second delete, a
     * malformed id: 404 unknown_key; EVAL_KEY and DELETE_KEY_ID together,
     * or neither: 400. */
    char dir[320], src[400], dst[400], id[VEIL_KEY_ID_CHARS + 1], got[VEIL_KEY_ID_CHARS + 1];
    snprintf(dir, sizeof dir, "%s/client-del", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    snprintf(src, sizeof src, "%s/eval.key", g_client_dir);
    snprintf(dst, sizeof dst, "%s/eval.key", dir);
    CU_ASSERT_EQUAL_FATAL(link(src, dst), 0);
    veil_remote_options ro;
    triton_options(&ro);
    int up = 1, was = -1;
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_a.url, dir, &ro, id, &up), VEIL_OK);
    CU_ASSERT_EQUAL(roundtrip(g_a.url, id, 0, 1), 0); /* resident now */
    CU_ASSERT_EQUAL(veil_remote_delete_key(g_a.url, dir, &ro, got, &was), VEIL_OK);
    CU_ASSERT_EQUAL(was, 1);
    CU_ASSERT_STRING_EQUAL(got, id);
    char p[600], none[VEIL_KEY_ID_CHARS + 1], tag[400];
    snprintf(p, sizeof p, "%s/%s.vek", g_keys, id);
    CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
    snprintf(tag, sizeof tag, "%s/v2/models/veil_keys", g_a.url);
    CU_ASSERT_NOT_EQUAL(veil_keydir_servers_lookup(dir, tag, none), 0);
    /* the idle instance freed its copy (vt_keys_removed) */
    char want[96], logp[400];
    snprintf(want, sizeof want, "freed the resident copy of removed key %.8s", id);
    snprintf(logp, sizeof logp, "%s/triton-a.log", g_tmp);
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        free(log);
        log = veil_test_read_file(logp, NULL);
        if (log && strstr(log, want)) break;
        usleep(50000);
    }
    CU_ASSERT(log && strstr(log, want));
    free(log);
    CU_ASSERT_NOT_EQUAL(roundtrip(g_a.url, id, 0, 1), 0);
    CU_ASSERT_EQUAL(veil_remote_last_status(), 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "unknown_key"));
    CU_ASSERT_NOT_EQUAL(veil_triton_delete_key(g_a.url, id, &ro), VEIL_OK);
    CU_ASSERT_EQUAL(veil_remote_last_status(), 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "veil unknown_key"));
    CU_ASSERT_NOT_EQUAL(veil_triton_delete_key(g_a.url, "not-a-key-id", &ro), VEIL_OK);
    CU_ASSERT_EQUAL(veil_remote_last_status(), 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "not a key id"));
    const char *names[] = {"EVAL_KEY", "DELETE_KEY_ID"};
    const uint8_t *data[] = {(const uint8_t *)id, (const uint8_t *)id};
    const size_t lens[] = {VEIL_KEY_ID_CHARS, VEIL_KEY_ID_CHARS};
    uint8_t *ans = NULL;
    size_t ans_len = 0;
    CU_ASSERT_NOT_EQUAL(veil_triton_call(g_a.url, "veil_keys", 2, names, data, lens, "KEY_ID", 0,
                                         &ro, &ans, &ans_len),
                        VEIL_OK);
    CU_ASSERT_EQUAL(veil_remote_last_status(), 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "not both"));
    CU_ASSERT_NOT_EQUAL(veil_triton_call(g_a.url, "veil_keys", 0, names, data, lens, "KEY_ID", 0,
                                         &ro, &ans, &ans_len),
                        VEIL_OK);
    CU_ASSERT_EQUAL(veil_remote_last_status(), 400);
    printf("\n  neither input: %s", veil_error_message());
    free(ans);
    /* a 404 that is not veil unknown_key (the key model is not loaded) says
     * nothing about the key: a failure, the entry kept (it was taken for a
     * key already gone and dropped) */
    veil_remote_options gone_model = ro;
    gone_model.triton_keys_model = "no_such_keys";
    snprintf(tag, sizeof tag, "%s/v2/models/no_such_keys", g_a.url);
    CU_ASSERT_EQUAL_FATAL(veil_keydir_servers_store(dir, tag, id), VEIL_OK);
    was = -1;
    CU_ASSERT_NOT_EQUAL(veil_remote_delete_key(g_a.url, dir, &gone_model, got, &was), VEIL_OK);
    printf("\n  key model not loaded: %s", veil_error_message());
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, tag, none), 0);
    veil_test_rm_rf(dir);
}

static void test_shared_key_store(void) {
    /* B's veil_keys bounds the shared store (key_store_max_mb): room for
     * one more key, not two */
    const uint64_t key = veil_program_eval_key_bytes(g_client->prog);
    const uint64_t limit_mb = (dir_bytes(g_keys) + key * 3 / 2) / 1048576 + 1;
    char extra[256];
    snprintf(extra, sizeof extra,
             "parameters: { key: \"key_store_max_mb\" value: { string_value: \"%llu\" } }\n",
             (unsigned long long)limit_mb);
    veil_status st = start_with(g_repo_b, "triton-b.log", extra, &g_b);
    if (st) fprintf(stderr, "%s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    printf("tritonserver B at %s\n", g_b.url);
    /* the key uploaded to A, served by B and still by A */
    CU_ASSERT_EQUAL(roundtrip(g_b.url, g_id, 2, 2), 0);
    CU_ASSERT_EQUAL(roundtrip(g_a.url, g_id, 0, 1), 0);
    /* and a key uploaded to B is served by A */
    veil_remote_options ro;
    triton_options(&ro);
    char id[VEIL_KEY_ID_CHARS + 1];
    int uploaded = 1;
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_b.url, g_client_dir, &ro, id, &uploaded),
                          VEIL_OK);
    CU_ASSERT_NOT_EQUAL(strcmp(id, g_id), 0);
    CU_ASSERT_EQUAL(roundtrip(g_a.url, id, 3, 1), 0);
    /* a second key does not fit under B's limit: refused with veil's code,
     * nothing stored */
    const uint64_t before = dir_bytes(g_keys);
    char id2[VEIL_KEY_ID_CHARS + 1];
    /* Triton has no 507: UNAVAILABLE, 503, read as veil-server's 507 is */
    CU_ASSERT_EQUAL(veil_remote_ensure_key(g_b.url, g_client_dir2, &ro, id2, &uploaded),
                    VEIL_ERR_RANGE);
    CU_ASSERT_EQUAL(veil_remote_last_status(), 503);
    printf("\n  B full: %s", veil_error_message());
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "key_store_full"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "key_store_max_mb"));
    CU_ASSERT_EQUAL(dir_bytes(g_keys), before);
}

int main(void) {
    veil_status st = veil_triton_env_find(veil_test_path("."), &g_env);
    if (st == VEIL_ERR_UNSUPPORTED) {
        printf("SKIPPED: %s\n", veil_error_message());
        return VEIL_TEST_SKIP;
    }
    if (st) {
        printf("FAILED: %s\n", veil_error_message());
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("triton", suite_init, suite_clean);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_upload_and_roundtrip);
    VEIL_ADD_TEST(s, test_options_compared);
    VEIL_ADD_TEST(s, test_concurrent_clients);
    VEIL_ADD_TEST(s, test_bad_inputs);
    VEIL_ADD_TEST(s, test_mask_past_width);
    VEIL_ADD_TEST(s, test_python_client);
    VEIL_ADD_TEST(s, test_delete_key);
    VEIL_ADD_TEST(s, test_shared_key_store);
    return veil_test_run();
}
