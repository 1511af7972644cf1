// LABELS: server
// LINKS: veil_server veil_client
// RUNS: veil-server
/* test_server.c — veil-server over real HTTP on loopback, with the client
 * library (libcurl) and a raw-socket client for malformed requests, on
 * models/tiny.h5 with the cpu backend:
 *   keygen -> upload -> infer -> decrypt equals simulate;
 *   16 concurrent clients under two keys (dynamic batching, never mixing keys,
 *   LRU of one plan so keys are evicted and reloaded);
 *   truncated / bit-flipped / wrong-kind / wrong-params / wrong-model /
 *   wrong-key batches, unknown key ids, oversized bodies, a secret-key upload,
 *   a mask word past the program's input width (a narrow program's server):
 *   the right status, and the server keeps serving;
 *   per-request timeout (504), full queue (503);
 *   a stalled client is closed after the read timeout while health and
 *   metrics still answer, a computation longer than it is still answered,
 *   connections per address are limited, a taken port is named;
 *   a corrupted stored key answers 404, is quarantined, evicts nothing, and
 *   the client uploads it again;
 *   --devices 0,0 (a plan group of two cpu plans) answers what one plan
 *   answers, ciphertext for ciphertext, and its metrics count the batch once;
 *   drain (in-process) and SIGTERM (the veil-server binary, with --devices
 *   0,0) answer the request in flight and release the port; past
 *   --drain-timeout-ms a trickling upload is cut (exit 0) and a request
 *   still computing abandoned (exit 3);
 *   --key-store-max-mb: uploads past it are refused 507 key_store_full;
 *   restart keeps the keys; connection refused is reported as such. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../host/client/http.h"
#include "../host/server/request.h"
#include "server_common.h"
#include "remote_client.h"
#include "testutil.h"
#include "veil/client.h"
#include "veil/exec.h"
#include "veil/server.h"

static char g_tmp[256];
static char g_keys[300], g_dir_a[300], g_dir_b[300];
static veil_client *g_client;
static veil_server *g_srv;
static char g_url[64];
static char g_id_a[VEIL_KEY_ID_CHARS + 1], g_id_b[VEIL_KEY_ID_CHARS + 1];

static void server_options(veil_server_options *o) {
    veil_server_options_default(o);
    o->model_path = veil_test_path("models/tiny.h5");
    o->backend = VEIL_BACKEND_CPU;
    o->listen = "127.0.0.1:0";
    o->keys_dir = g_keys;
    o->max_batch = 16;
    o->max_wait_ms = 50;
    o->max_body = 1 << 20;
    o->max_request_samples = 32;
    o->key_cache = 1; /* two clients' keys: every switch evicts (LRU) */
}

static int start_server(void) {
    veil_server_options o;
    server_options(&o);
    if (veil_server_start(&o, &g_srv) != VEIL_OK) {
        fprintf(stderr, "server start: %s\n", veil_error_message());
        return -1;
    }
    snprintf(g_url, sizeof g_url, "http://127.0.0.1:%u", veil_server_port(g_srv));
    return 0;
}

static size_t count_files(const char *dir) {
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int suite_init(void) {
    if (sodium_init() < 0) return -1;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/veil-test-server-XXXXXX");
    if (!mkdtemp(g_tmp)) return -1;
    snprintf(g_keys, sizeof g_keys, "%s/keys", g_tmp);
    snprintf(g_dir_a, sizeof g_dir_a, "%s/client-a", g_tmp);
    snprintf(g_dir_b, sizeof g_dir_b, "%s/client-b", g_tmp);
    if (veil_client_open(veil_test_path("models/tiny.h5"), NULL, &g_client) != VEIL_OK) {
        fprintf(stderr, "client open: %s\n", veil_error_message());
        return -1;
    }
    veil_keygen_info info;
    if (veil_client_keygen(g_client, g_dir_a, 0, &info) ||
        veil_client_keygen(g_client, g_dir_b, 0, &info)) {
        fprintf(stderr, "keygen: %s\n", veil_error_message());
        return -1;
    }
    printf("eval key %zu bytes (raw %zu), keygen %.2f s\n", info.eval_key_bytes,
           info.eval_key_raw_bytes, info.seconds);
    return start_server();
}

static int suite_clean(void) {
    veil_server_stop(g_srv);
    veil_client_free(g_client);
    veil_test_rm_rf(g_tmp);
    return 0;
}

static int http_raw(const char *method, const char *path, const char *headers, const uint8_t *body,
                    size_t len, int send_body, size_t content_length, http_res *r) {
    return http_raw_port(veil_server_port(g_srv), method, path, headers, body, len, send_body,
                         content_length, r);
}

static int http_get_status(const char *path, http_res *r) {
    if (http_raw("GET", path, NULL, NULL, 0, 0, 0, r)) return -1;
    return r->status;
}

/* POST /v1/infer with a key id header. */
static int post_infer(const char *key_id, const uint8_t *body, size_t len, http_res *r) {
    char h[128] = "";
    if (key_id) snprintf(h, sizeof h, "X-Veil-Key-Id: %s\r\n", key_id);
    if (http_raw("POST", "/v1/infer", h, body, len, 1, 0, r)) return -1;
    return r->status;
}

/* ---- helpers ------------------------------------------------------------------ */

static veil_secret_key *load_sk(const char *dir) {
    veil_secret_key *sk = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_client_load_secret_key(g_client, dir, &sk), VEIL_OK);
    return sk;
}

/* Golden samples s0..s0+n-1 of tiny (one input). */
static const int64_t *golden(size_t s0) {
    const veil_program *p = g_client->prog;
    return g_client->model->golden.inputs[0] + s0 * veil_program_input_size(p, 0);
}

static int64_t *simulate(size_t s0, size_t n) {
    const veil_program *p = g_client->prog;
    int64_t *out = malloc(n * veil_program_output_size(p, 0) * sizeof(int64_t));
    const int64_t *in[1] = {golden(s0)};
    int64_t *outs[1] = {out};
    CU_ASSERT_EQUAL(veil_program_simulate(p, in, n, outs, NULL, NULL), VEIL_OK);
    return out;
}

/* Decrypts a result batch with dir's key and compares it with simulate on
 * golden samples s0..s0+n-1. 1 when equal. */
static int check_result(const char *dir, size_t s0, size_t n, const uint8_t *resp,
                        size_t resp_len) {
    veil_secret_key *sk = load_sk(dir);
    veil_ct_batch *b = NULL;
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize(resp, resp_len, &b), VEIL_OK);
    int64_t **outs = NULL;
    size_t got = 0;
    int ok = b && veil_client_decrypt(g_client, sk, b, &got, &outs) == VEIL_OK;
    CU_ASSERT(ok);
    if (ok) {
        CU_ASSERT_EQUAL(got, n);
        int64_t *sim = simulate(s0, n);
        size_t sz = veil_program_output_size(g_client->prog, 0);
        ok = got == n && memcmp(sim, outs[0], n * sz * sizeof(int64_t)) == 0;
        CU_ASSERT(ok);
        free(sim);
    }
    veil_client_outputs_free(g_client, outs);
    veil_ct_batch_free(b);
    veil_secret_key_free(sk);
    return ok;
}

/* Encrypts, runs remotely, decrypts, compares with simulate. Returns the
 * server's batch size (0 on failure). */
static size_t roundtrip(const char *dir, const char *key_id, size_t s0, size_t n) {
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    veil_secret_key *sk = load_sk(dir);
    const int64_t *in[1] = {golden(s0)};
    uint8_t *body = NULL, *resp = NULL;
    size_t len = 0, resp_len = 0, bs = 0;
    CU_ASSERT_EQUAL_FATAL(veil_client_encrypt(g_client, sk, in, n, &body, &len), VEIL_OK);
    veil_secret_key_free(sk);
    veil_status st = veil_remote_infer(g_url, key_id, body, len, &ro, &resp, &resp_len, &bs);
    veil_serial_buffer_free(body, len);
    if (st) {
        fprintf(stderr, "infer: %s\n", veil_error_message());
        CU_FAIL("remote infer failed");
        return 0;
    }
    int ok = check_result(dir, s0, n, resp, resp_len);
    free(resp);
    return ok ? bs : 0;
}

/* A valid encrypted body of n golden samples under dir's key. */
static uint8_t *encrypt_body(const char *dir, size_t n, size_t *len) {
    veil_secret_key *sk = load_sk(dir);
    const int64_t *in[1] = {golden(0)};
    uint8_t *body = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_client_encrypt(g_client, sk, in, n, &body, len), VEIL_OK);
    veil_secret_key_free(sk);
    return body;
}

/* Recomputes the BLAKE2b-256 checksum after editing a file's bytes (to make
 * well-formed files with wrong content). */
static void fix_checksum(uint8_t *buf, size_t len) {
    crypto_generichash(buf + len - 32, 32, buf, len - 32, NULL, 0);
}

/* ---- tests --------------------------------------------------------------------- */

/* DIR/servers, the ids servers gave the client's key: a hand-edited last
 * line without its newline stays a line of its own when an entry is added. */
static void test_keydir_servers_file(void) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/servers-dir", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    snprintf(path, sizeof path, "%s/servers", dir);
    const char *id1 = "0123456789abcdef0123456789abcdef", *id2 = "fedcba9876543210fedcba9876543210";
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "http://a:1 %s", id1); /* no newline */
    fclose(f);
    CU_ASSERT_EQUAL(veil_keydir_servers_store(dir, "http://b:2", id2), VEIL_OK);
    char got[VEIL_KEY_ID_CHARS + 1];
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, "http://a:1", got), 0);
    CU_ASSERT_STRING_EQUAL(got, id1);
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, "http://b:2", got), 0);
    CU_ASSERT_STRING_EQUAL(got, id2);
    /* replacing an entry keeps the others */
    CU_ASSERT_EQUAL(veil_keydir_servers_store(dir, "http://a:1", id2), VEIL_OK);
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, "http://a:1", got), 0);
    CU_ASSERT_STRING_EQUAL(got, id2);
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, "http://b:2", got), 0);
    /* a file there that cannot be read (here a symbolic link to itself:
     * ELOOP, which root meets too, unlike a mode 000 file) is left alone:
     * its other servers' entries were replaced by the one stored */
    unlink(path);
    CU_ASSERT_FATAL(symlink("servers", path) == 0);
    CU_ASSERT_EQUAL(veil_keydir_servers_store(dir, "http://b:2", id2), VEIL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "cannot read it"));
    struct stat st;
    CU_ASSERT(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    unlink(path);
    CU_ASSERT_EQUAL(rmdir(dir), 0); /* no temporary left */
}

/* The samples of one request (veil_deploy_request_samples): the servers'
 * figure (srv_program_info_init) and what a Triton client cuts its requests
 * to are the same rule: at most the limit, no more than fit the decoded
 * body, at least one. */
static void test_request_samples_rule(void) {
    const veil_program *p = g_client->prog;
    const size_t per = veil_program_sample_in_cts(p) * (veil_params_big_dim(p->params) + 1) * 8;
    CU_ASSERT_EQUAL(veil_deploy_request_samples(p, 5, (size_t)64 << 20), 5);
    CU_ASSERT_EQUAL(veil_deploy_request_samples(p, 1024, 3 * per + 7), 3);
    CU_ASSERT_EQUAL(veil_deploy_request_samples(p, 1024, per - 1), 1);
    srv_program_info pi;
    srv_program_info_init(&pi, p, 1024, 3 * per + 7);
    CU_ASSERT_EQUAL(pi.max_samples, 3);
}

/* What --verbose logs of a refusal: key ids cut to 8 digits, any other hex
 * (a 64-digit fingerprint, a shorter number) and text as they are, and a
 * small buffer cut cleanly. */
static void test_log_redacts_key_ids(void) {
    const char *id = "0123456789abcdef0123456789abcdef";
    char in[512], out[512];
    snprintf(in, sizeof in, "key id %s: no such evaluation key; again %s.", id, id);
    srv_redact_key_ids(in, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "key id 01234567...: no such evaluation key; again 01234567....");
    CU_ASSERT_PTR_NULL(strstr(out, id));
    snprintf(in, sizeof in, "fp %s%s, id %s", id, id, id);
    srv_redact_key_ids(in, out, sizeof out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "fp 0123456789abcdef0123456789abcdef0123456789abcdef"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ", id 01234567..."));
    srv_redact_key_ids("status 404 (cafe)", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "status 404 (cafe)");
    char small[10];
    srv_redact_key_ids(in, small, sizeof small);
    CU_ASSERT_EQUAL(strlen(small), 9);
    srv_redact_key_ids(id, small, sizeof small);
    CU_ASSERT_STRING_EQUAL(small, "01234567.");
}

static void test_info_endpoints(void) {
    http_res r;
    CU_ASSERT_EQUAL(http_get_status("/v1/health", &r), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"ok\""));
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_get_status("/v1/model", &r), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, g_client->fp_hex));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, g_client->prog->params->id));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"inputs\":[{\"name\":\"x\",\"shape\":[3]"));
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_get_status("/nope", &r), 404);
    CU_ASSERT(has_code(&r, "not_found"));
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_get_status("/v1/infer", &r), 405);
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_get_status("/v1/keys/0123456789abcdef0123456789abcdef", &r), 404);
    CU_ASSERT(has_code(&r, "unknown_key"));
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_get_status("/v1/keys/../../etc/passwd", &r), 404);
    http_res_free(&r);
    size_t ml = 0;
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    CU_ASSERT_EQUAL(veil_remote_check_model(g_client, g_url, &ro, &ml), VEIL_OK);
    /* --max-request-samples 32, lowered to what --max-body (1 MiB) holds
     * decoded: tiny's 3 ciphertexts of D + 1 words a sample */
    const size_t per = veil_program_sample_in_cts(g_client->prog) *
                       ((size_t)veil_params_big_dim(g_client->prog->params) + 1) * 8;
    const size_t want = ((size_t)1 << 20) / per < 32 ? ((size_t)1 << 20) / per : 32;
    printf("\n  max_request_samples %zu (32 asked, %zu bytes a sample decoded)", ml, per);
    CU_ASSERT(want < 32); /* the lowering is what this checks */
    CU_ASSERT_EQUAL(ml, want);
}

static void test_keys_and_roundtrip(void) {
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    int up = -1;
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_url, g_dir_a, &ro, g_id_a, &up), VEIL_OK);
    CU_ASSERT_EQUAL(up, 1);
    CU_ASSERT(veil_key_id_valid(g_id_a));
    char id2[VEIL_KEY_ID_CHARS + 1];
    CU_ASSERT_EQUAL(veil_remote_ensure_key(g_url, g_dir_a, &ro, id2, &up), VEIL_OK);
    CU_ASSERT_EQUAL(up, 0); /* cached id, checked with GET */
    CU_ASSERT_STRING_EQUAL(id2, g_id_a);
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_url, g_dir_b, &ro, g_id_b, &up), VEIL_OK);
    CU_ASSERT_EQUAL(up, 1);
    CU_ASSERT_STRING_NOT_EQUAL(g_id_a, g_id_b);
    http_res r;
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", g_id_a);
    CU_ASSERT_EQUAL(http_get_status(path, &r), 200);
    http_res_free(&r);
    /* 4 golden samples in one request. */
    CU_ASSERT(roundtrip(g_dir_a, g_id_a, 0, 4) >= 4);
    /* The key id also works as a query parameter. */
    size_t len;
    uint8_t *body = encrypt_body(g_dir_a, 1, &len);
    char q[128];
    snprintf(q, sizeof q, "/v1/infer?key_id=%s", g_id_a);
    CU_ASSERT_EQUAL(http_raw("POST", q, NULL, body, len, 1, 0, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.raw, "X-Veil-Batch-Samples"));
    http_res_free(&r);
    veil_serial_buffer_free(body, len);
}

typedef struct worker_arg {
    const char *dir, *id;
    size_t sample;
    size_t batch;
} worker_arg;

static void *client_thread(void *p) {
    worker_arg *a = p;
    a->batch = roundtrip(a->dir, a->id, a->sample, 1);
    return NULL;
}

static void test_concurrent_clients(void) {
    enum { N = 16 };
    pthread_t th[N];
    worker_arg args[N];
    size_t golden_n = g_client->model->golden.count;
    CU_ASSERT_FATAL(golden_n > 0);
    for (int i = 0; i < N; i++) {
        args[i].dir = i % 2 ? g_dir_b : g_dir_a;
        args[i].id = i % 2 ? g_id_b : g_id_a;
        args[i].sample = (size_t)i % golden_n;
        args[i].batch = 0;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, client_thread, &args[i]), 0);
    }
    size_t max_batch = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].batch > 0;
        if (args[i].batch > max_batch) max_batch = args[i].batch;
    }
    CU_ASSERT_EQUAL(ok, N);
    printf("16 concurrent clients, 2 keys: largest server batch %zu samples\n", max_batch);
    CU_ASSERT(max_batch > 1);  /* requests were merged */
    CU_ASSERT(max_batch <= 8); /* never across the two keys (8 requests each) */
    http_res r;
    CU_ASSERT_EQUAL(http_get_status("/metrics", &r), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "veil_key_cache_misses_total"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "veil_infer_duration_seconds_count "));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "veil_batch_samples_bucket{le=\"8\"}"));
    unsigned long long ev = 0;
    const char *e = strstr(r.body, "\nveil_key_cache_evictions_total ");
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e) ev = strtoull(e + strlen("\nveil_key_cache_evictions_total "), NULL, 10);
    CU_ASSERT(ev >= 1); /* key cache of 1 plan, two keys */
    http_res_free(&r);
}

static void expect(int got, int want, const http_res *r, const char *code, const char *what) {
    if (got != want || (code && !has_code(r, code)))
        fprintf(stderr, "%s: got %d %s, want %d %s\n", what, got, r->body ? r->body : "", want,
                code ? code : "");
    CU_ASSERT_EQUAL(got, want);
    if (code) CU_ASSERT(has_code(r, code));
}

static void test_bad_requests(void) {
    size_t len;
    uint8_t *good = encrypt_body(g_dir_a, 2, &len);
    uint8_t *bad = malloc(len);
    http_res r;
    /* truncated */
    expect(post_infer(g_id_a, good, len - 10, &r), 400, &r, "malformed_batch", "truncated");
    http_res_free(&r);
    expect(post_infer(g_id_a, good, 100, &r), 400, &r, "malformed_batch", "header cut");
    http_res_free(&r);
    /* bit flips: in the payload, in the checksum, in the params id, in the
     * count; each refused as a malformed batch by the check that names it */
    const struct {
        size_t off;
        const char *check;
    } flips[] = {{VEIL_SERIAL_HEADER_BYTES + 3, "checksum: "},
                 {len - 1, "checksum: "},
                 {20, "params id: "},
                 {150, "len_a (count): "}};
    size_t flipped = 0;
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(bad, good, len);
        bad[flips[i].off] ^= 0x10;
        expect(post_infer(g_id_a, bad, len, &r), 400, &r, "malformed_batch", flips[i].check);
        if (!r.body || !strstr(r.body, flips[i].check))
            fprintf(stderr, "flip of byte %zu: %s lacks \"%s\"\n", flips[i].off,
                    r.body ? r.body : "", flips[i].check);
        CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, flips[i].check) : NULL);
        http_res_free(&r);
        flipped++;
    }
    CU_ASSERT_EQUAL(flipped, 4);
    /* garbage, empty */
    expect(post_infer(g_id_a, (const uint8_t *)"hello", 5, &r), 400, &r, "malformed_batch",
           "garbage");
    http_res_free(&r);
    expect(post_infer(g_id_a, NULL, 0, &r), 400, &r, "malformed_batch", "empty");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "empty")); /* not "veil_serial_peek: NULL argument" */
    CU_ASSERT_PTR_NULL(strstr(r.body, "NULL"));
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_raw("POST", "/v1/keys", NULL, NULL, 0, 1, 0, &r), 0);
    expect(r.status, 400, &r, "malformed_key", "empty key");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "empty"));
    http_res_free(&r);
    /* another model: same params, another program fingerprint */
    memcpy(bad, good, len);
    bad[80] ^= 1;
    fix_checksum(bad, len);
    expect(post_infer(g_id_a, bad, len, &r), 400, &r, "model_mismatch", "model fp");
    http_res_free(&r);
    /* a result batch sent back as input */
    CU_ASSERT_EQUAL(post_infer(g_id_a, good, len, &r), 200);
    if (r.status == 200) {
        http_res r2;
        expect(post_infer(g_id_a, (const uint8_t *)r.body, r.body_len, &r2), 400, &r2, "wrong_kind",
               "result as input");
        http_res_free(&r2);
    }
    http_res_free(&r);
    /* another parameter set */
    const veil_params *other = NULL;
    for (size_t i = 0; i < veil_params_count() && !other; i++)
        if (veil_params_at(i) != g_client->prog->params) other = veil_params_at(i);
    CU_ASSERT_FATAL(other != NULL);
    veil_ct_batch *ob = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_new(other, veil_params_big_dim(other), 3, &ob), VEIL_OK);
    memcpy(ob->model_fp, g_client->fp, sizeof g_client->fp);
    uint8_t *obuf = NULL;
    size_t olen = 0;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_serialize(ob, &obuf, &olen), VEIL_OK);
    expect(post_infer(g_id_a, obuf, olen, &r), 400, &r, "params_mismatch", "params");
    http_res_free(&r);
    veil_serial_buffer_free(obuf, olen);
    veil_ct_batch_free(ob);
    /* another client's batch under this key id */
    size_t blen;
    uint8_t *bbody = encrypt_body(g_dir_b, 1, &blen);
    expect(post_infer(g_id_a, bbody, blen, &r), 403, &r, "key_mismatch", "key fp");
    http_res_free(&r);
    veil_serial_buffer_free(bbody, blen);
    /* key ids: unknown, malformed, missing */
    expect(post_infer("0123456789abcdef0123456789abcdef", good, len, &r), 404, &r, "unknown_key",
           "unknown id");
    http_res_free(&r);
    expect(post_infer("../../secret", good, len, &r), 404, &r, "unknown_key", "bad id");
    http_res_free(&r);
    expect(post_infer(NULL, good, len, &r), 400, &r, "missing_key_id", "no id");
    http_res_free(&r);
    /* wrong kind: an evaluation key as an infer body (read its header only) */
    char ekp[512];
    snprintf(ekp, sizeof ekp, "%s/eval.key", g_dir_a);
    FILE *f = fopen(ekp, "rb");
    uint8_t ekh[VEIL_SERIAL_HEADER_BYTES + 64];
    size_t ekn = f ? fread(ekh, 1, sizeof ekh, f) : 0;
    if (f) fclose(f);
    CU_ASSERT_EQUAL(ekn, sizeof ekh);
    expect(post_infer(g_id_a, ekh, ekn, &r), 400, &r, "wrong_kind", "eval key as batch");
    http_res_free(&r);
    /* oversized: announced, and actually sent */
    expect(http_raw("POST", "/v1/infer", "X-Veil-Key-Id: 0123456789abcdef0123456789abcdef\r\n",
                    NULL, 0, 0, (size_t)2 << 20, &r) == 0
               ? r.status
               : -1,
           413, &r, "body_too_large", "announced");
    http_res_free(&r);
    size_t big = (1 << 20) + 4096;
    uint8_t *huge = calloc(1, big);
    expect(post_infer(g_id_a, huge, big, &r), 413, &r, "body_too_large", "sent");
    http_res_free(&r);
    /* a body on a route that reads none (health: never limited) is dropped as
     * it comes, not held and refused: the same oversized body answers 200 */
    CU_ASSERT_EQUAL(http_raw("GET", "/v1/health", NULL, huge, big, 1, 0, &r), 0);
    expect(r.status, 200, &r, NULL, "health with a body");
    http_res_free(&r);
    char kh[96];
    snprintf(kh, sizeof kh, "X-Veil-Key-Id: %s\r\n", g_id_a);
    CU_ASSERT_EQUAL(http_raw("POST", "/v1/infer", kh, huge, big, 1, (size_t)-1, &r), 0);
    expect(r.status, 413, &r, "body_too_large", "chunked");
    http_res_free(&r);
    /* a chunked body under the limit is read whole */
    CU_ASSERT_EQUAL(http_raw("POST", "/v1/infer", kh, good, len, 1, (size_t)-1, &r), 0);
    expect(r.status, 200, &r, NULL, "chunked ok");
    http_res_free(&r);
    free(huge);
    /* too many samples for one request: seeded, so the body is small. The
     * limit is --max-request-samples (32) lowered to what --max-body holds
     * decoded (test_info_endpoints): one more than the lowered figure is
     * refused before anything is decoded */
    size_t mlen, lim = 0;
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    CU_ASSERT_EQUAL_FATAL(veil_remote_check_model(g_client, g_url, &ro, &lim), VEIL_OK);
    CU_ASSERT_FATAL(lim >= 1 && lim < 32);
    uint8_t *many = encrypt_body(g_dir_a, lim + 1, &mlen);
    CU_ASSERT_FATAL(many && mlen < ((size_t)1 << 20));
    expect(post_infer(g_id_a, many, mlen, &r), 413, &r, "batch_too_large", "limit + 1 samples");
    http_res_free(&r);
    veil_serial_buffer_free(many, mlen);
    /* a secret key is refused, on both endpoints, and never stored */
    char skp[512];
    snprintf(skp, sizeof skp, "%s/secret.key", g_dir_a);
    f = fopen(skp, "rb");
    uint8_t skb[4096];
    size_t skn = f ? fread(skb, 1, sizeof skb, f) : 0;
    if (f) fclose(f);
    CU_ASSERT(skn > VEIL_SERIAL_HEADER_BYTES);
    size_t files_before = count_files(g_keys);
    CU_ASSERT_EQUAL(http_raw("POST", "/v1/keys", NULL, skb, skn, 1, 0, &r), 0);
    expect(r.status, 400, &r, "secret_key_refused", "secret key upload");
    http_res_free(&r);
    expect(post_infer(g_id_a, skb, skn, &r), 400, &r, "secret_key_refused", "secret key infer");
    http_res_free(&r);
    sodium_memzero(skb, sizeof skb);
    CU_ASSERT_EQUAL(count_files(g_keys), files_before);
    /* a corrupted evaluation key upload */
    CU_ASSERT_EQUAL(http_raw("POST", "/v1/keys", NULL, good, len, 1, 0, &r), 0);
    expect(r.status, 400, &r, "wrong_kind", "batch as key");
    http_res_free(&r);
    CU_ASSERT_EQUAL(count_files(g_keys), files_before);
    /* ... and the server still serves */
    CU_ASSERT_EQUAL(http_get_status("/v1/health", &r), 200);
    http_res_free(&r);
    CU_ASSERT(roundtrip(g_dir_a, g_id_a, 1, 2) > 0);
    free(bad);
    veil_serial_buffer_free(good, len);
}

/* A program with an input width (tiny rounded to 3 bits: inputs under 1536 of
 * the master key's 2048 coefficients), on its own server: the client's batch
 * is answered; the same batch with one mask word past the width set, sent
 * raw, is refused 400 mask_past_width naming the ciphertext, the word and the
 * width, before it is queued (no batch runs); the server keeps serving. */
static void test_mask_past_width(void) {
    veil_server_options o;
    server_options(&o);
    o.compile.rounding_bits = 3;
    char keys[320], dir[320];
    snprintf(keys, sizeof keys, "%s/keys-narrow", g_tmp);
    snprintf(dir, sizeof dir, "%s/client-narrow", g_tmp);
    o.keys_dir = keys;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    veil_client *c = NULL;
    veil_secret_key *sk = NULL;
    veil_ct_batch *b = NULL;
    uint8_t *body = NULL, *bad = NULL;
    size_t len = 0, bad_len = 0;
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    char id[VEIL_KEY_ID_CHARS + 1], h[96];
    if (veil_test_remote_client("narrow client", &o.compile, dir, url, &ro, &c, &sk, id)) {
        CU_FAIL("narrow client");
        goto out;
    }
    const uint32_t D = veil_params_big_dim(c->prog->params), w = c->prog->input_width;
    CU_ASSERT_FATAL(w > 0 && w < D);
    const int64_t *in[1] = {c->model->golden.inputs[0]};
    CU_ASSERT_EQUAL_FATAL(veil_client_encrypt(c, sk, in, 2, &body, &len), VEIL_OK);
    snprintf(h, sizeof h, "X-Veil-Key-Id: %s\r\n", id);
    http_res r;
    CU_ASSERT_EQUAL(http_raw_port(port, "POST", "/v1/infer", h, body, len, 1, 0, &r), 0);
    expect(r.status, 200, &r, NULL, "narrow inputs");
    http_res_free(&r);
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_deserialize(body, len, &b), VEIL_OK);
    const size_t k = (size_t)b->count - 1;
    b->data[k * (D + 1) + w + 3] = 1;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_serialize(b, &bad, &bad_len), VEIL_OK);
    uint64_t batches = 0;
    veil_server_stats st;
    veil_server_get_stats(s2, &st);
    batches = st.batches;
    CU_ASSERT_EQUAL(http_raw_port(port, "POST", "/v1/infer", h, bad, bad_len, 1, 0, &r), 0);
    expect(r.status, 400, &r, "mask_past_width", "a mask word past the width");
    char want[96];
    snprintf(want, sizeof want, "ciphertext %zu: mask word %u is not 0", k, w + 3);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, want) : NULL);
    snprintf(want, sizeof want, "input width %u", w);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, want) : NULL);
    http_res_free(&r);
    veil_server_get_stats(s2, &st);
    CU_ASSERT_EQUAL(st.batches, batches);
    /* still serving */
    CU_ASSERT_EQUAL(http_raw_port(port, "POST", "/v1/infer", h, body, len, 1, 0, &r), 0);
    expect(r.status, 200, &r, NULL, "narrow inputs again");
    http_res_free(&r);
out:
    veil_serial_buffer_free(bad, bad_len);
    veil_serial_buffer_free(body, len);
    veil_ct_batch_free(b);
    veil_secret_key_free(sk);
    veil_client_free(c);
    veil_server_stop(s2);
}

typedef struct queue_arg {
    const uint8_t *body;
    size_t len;
    int status;
} queue_arg;

static void *queue_thread(void *p) {
    queue_arg *a = p;
    http_res r;
    a->status = post_infer(g_id_a, a->body, a->len, &r);
    http_res_free(&r);
    return NULL;
}

static void test_timeout_and_queue(void) {
    /* A second server on the same keys dir (scale-out): a key uploaded to the
     * first is usable there; a 1 ms deadline gives 504. */
    veil_server_options o;
    server_options(&o);
    o.timeout_ms = 1;
    o.max_wait_ms = 0;
    veil_server *s1 = g_srv, *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    g_srv = s2; /* http_raw talks to g_srv */
    size_t len;
    uint8_t *body = encrypt_body(g_dir_a, 1, &len);
    http_res r;
    expect(post_infer(g_id_a, body, len, &r), 504, &r, "timeout", "deadline");
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_get_status("/v1/health", &r), 200);
    http_res_free(&r);
    veil_server_stop(s2);

    /* Queue of 1: of 10 simultaneous requests some are refused with 503, the
     * others succeed. */
    server_options(&o);
    o.max_queue = 1;
    o.max_wait_ms = 0;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    g_srv = s2;
    enum { N = 10 };
    pthread_t th[N];
    queue_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i].body = body;
        args[i].len = len;
        args[i].status = 0;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, queue_thread, &args[i]), 0);
    }
    int n200 = 0, n503 = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        n200 += args[i].status == 200;
        n503 += args[i].status == 503;
    }
    printf("queue of 1, %d simultaneous requests: %d served, %d refused with 503\n", N, n200, n503);
    CU_ASSERT(n200 >= 1);
    CU_ASSERT(n503 >= 1);
    CU_ASSERT_EQUAL(n200 + n503, N);
    g_srv = s1;
    veil_server_stop(s2);
    veil_serial_buffer_free(body, len);
}

/* Client and server compiled from other options: the client refuses the
 * server before sending anything, showing both canonical forms; from the
 * same options (the suite's server) they agree (test_info_endpoints). */
static void test_compile_options_mismatch(void) {
    veil_server_options o;
    server_options(&o);
    o.compile.range_margin = 0.5;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", veil_server_port(s2));
    size_t ml = 0;
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    CU_ASSERT_EQUAL(veil_remote_check_model(g_client, url, &ro, &ml), VEIL_ERR_PARAMS);
    const char *msg = veil_error_message();
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "other compile options"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "range-margin=0.5 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "range-margin=0.25 "));
    veil_server_stop(s2);
}

static void test_request_larger_than_batch(void) {
    /* --max-batch 2, one request of 5 samples: run in chunks 2 + 2 + 1, the
     * results stitched back in order. */
    veil_server_options o;
    server_options(&o);
    o.max_batch = 2;
    veil_server *s1 = g_srv, *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    g_srv = s2;
    char url[64];
    memcpy(url, g_url, sizeof url);
    snprintf(g_url, sizeof g_url, "http://127.0.0.1:%u", veil_server_port(s2));
    size_t n = g_client->model->golden.count < 5 ? g_client->model->golden.count : 5;
    CU_ASSERT_EQUAL(roundtrip(g_dir_a, g_id_a, 0, n), n < 2 ? n : 2);
    memcpy(g_url, url, sizeof url);
    g_srv = s1;
    veil_server_stop(s2);
}

/* GET path on port until it answers want (up to ~5 s). */
static int poll_status(uint16_t port, const char *path, int want, http_res *r) {
    int st = -1;
    for (int i = 0; i < 500; i++) {
        st = http_raw_port(port, "GET", path, NULL, NULL, 0, 0, 0, r) == 0 ? r->status : -1;
        if (st == want) return st;
        http_res_free(r);
        usleep(10000);
    }
    return st;
}

static void test_inflight_limit(void) {
    /* --max-inflight 1, a read timeout of 2 s: a client that sends headers
     * and then nothing holds the one slot (other requests: 503), health and
     * metrics still answer, and the server closes that connection after
     * about the read timeout, not the compute timeout (300 s here). */
    veil_server_options o;
    server_options(&o);
    o.max_inflight = 1;
    o.read_timeout_ms = 2000;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    int fd = conn_open(port);
    CU_ASSERT_FATAL(fd >= 0);
    const char head[] = "POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                        "X-Veil-Key-Id: 0123456789abcdef0123456789abcdef\r\n\r\nabc";
    const double t0 = (double)time(NULL);
    send(fd, head, sizeof head - 1, MSG_NOSIGNAL);
    http_res r;
    /* Wait on /metrics, which is never limited, until the server holds the
     * stalled request: polling /v1/model itself raced it for the one slot
     * (a loaded sanitizer run once answered the stalled client 503 instead). */
    int held_seen = 0;
    for (int i = 0; i < 500 && !held_seen; i++) {
        if (http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r) == 0)
            held_seen = r.body && strstr(r.body, "veil_inflight_requests 1") != NULL;
        http_res_free(&r);
        if (!held_seen) usleep(10000);
    }
    CU_ASSERT_FATAL(held_seen);
    int st = http_raw_port(port, "GET", "/v1/model", NULL, NULL, 0, 0, 0, &r) == 0 ? r.status : -1;
    expect(st, 503, &r, "too_many_requests", "inflight");
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_raw_port(port, "GET", "/v1/health", NULL, NULL, 0, 0, 0, &r), 0);
    expect(r.status, 200, &r, NULL, "health while full");
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r), 0);
    expect(r.status, 200, &r, NULL, "metrics while full");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "veil_inflight_requests 1"));
    http_res_free(&r);
    /* The stalled client: the server closes it (recv sees EOF, no answer). */
    char buf[256] = {0};
    ssize_t got = recv(fd, buf, sizeof buf - 1, 0);
    const double held = (double)time(NULL) - t0;
    printf("stalled client closed after ~%.0f s (read timeout 2 s)\n", held);
    CU_ASSERT(got <= 0 || strstr(buf, "HTTP/1.1 408") == buf);
    CU_ASSERT(held <= 10);
    close(fd);
    st = poll_status(port, "/v1/model", 200, &r);
    CU_ASSERT_EQUAL(st, 200);
    http_res_free(&r);
    veil_server_stop(s2);
}

static void test_compute_longer_than_read_timeout(void) {
    /* A request whose batch waits 2.5 s (the batching window) is answered
     * although the read timeout is 1 s: waiting for the result is not idling. */
    veil_server_options o;
    server_options(&o);
    o.read_timeout_ms = 1000;
    o.max_wait_ms = 2500;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    size_t len;
    uint8_t *body = encrypt_body(g_dir_a, 1, &len);
    char h[128];
    snprintf(h, sizeof h, "X-Veil-Key-Id: %s\r\n", g_id_a);
    http_res r;
    const time_t t0 = time(NULL);
    CU_ASSERT_EQUAL(
        http_raw_port(veil_server_port(s2), "POST", "/v1/infer", h, body, len, 1, 0, &r), 0);
    const time_t dt = time(NULL) - t0;
    expect(r.status, 200, &r, NULL, "long computation");
    CU_ASSERT(dt >= 2);
    if (r.status == 200)
        CU_ASSERT(check_result(g_dir_a, 0, 1, (const uint8_t *)r.body, r.body_len));
    http_res_free(&r);
    veil_serial_buffer_free(body, len);
    veil_server_stop(s2);
}

static double srv_test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1 when the server has closed fd (EOF or reset), without blocking. */
static int conn_closed(int fd) {
    char b[512];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void test_trickle_clients(void) {
    /* Read timeout 1 s, request deadline 2 s. Two clients trickle one byte
     * every 250 ms (never idle for the read timeout): one its headers, one
     * its body. Both connections are closed within the deadline plus the
     * reaper's step and scheduling (asserted: under 3.5 s), and other
     * clients are served all the while. */
    veil_server_options o;
    server_options(&o);
    o.read_timeout_ms = 1000;
    o.request_timeout_ms = 2000;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    http_res r;
    CU_ASSERT_EQUAL(poll_status(port, "/v1/health", 200, &r), 200);
    http_res_free(&r);
    static const char head_only[] = "GET /v1/model HTTP/1.1\r\nHost: x\r\nX-Padding: "
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    static const char body_head[] =
        "POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        "X-Veil-Key-Id: 0123456789abcdef0123456789abcdef\r\n\r\n";
    int fd[2] = {conn_open(port), conn_open(port)};
    CU_ASSERT_FATAL(fd[0] >= 0 && fd[1] >= 0);
    CU_ASSERT_EQUAL(send(fd[1], body_head, sizeof body_head - 1, MSG_NOSIGNAL),
                    (ssize_t)(sizeof body_head - 1));
    const double t0 = srv_test_now();
    double closed_at[2] = {-1, -1};
    size_t sent_head = 0;
    int served = 0, ticks = 0;
    while (srv_test_now() - t0 < 6.0 && (closed_at[0] < 0 || closed_at[1] < 0)) {
        for (int i = 0; i < 2; i++) {
            if (closed_at[i] >= 0) continue;
            if (conn_closed(fd[i])) {
                closed_at[i] = srv_test_now() - t0;
                continue;
            }
            /* one byte of the headers (never finished: 24 s of them) or of the body */
            const char *byte = i == 0 ? &head_only[sent_head % (sizeof head_only - 5)] : "x";
            if (send(fd[i], byte, 1, MSG_NOSIGNAL) != 1) closed_at[i] = srv_test_now() - t0;
        }
        sent_head++;
        /* meanwhile a well-behaved client is served */
        if (http_raw_port(port, "GET", "/v1/model", NULL, NULL, 0, 0, 0, &r) == 0 &&
            r.status == 200)
            served++;
        http_res_free(&r);
        ticks++;
        usleep(250000);
    }
    printf("trickling clients closed after %.2f s (headers) and %.2f s (body), deadline 2 s; "
           "%d/%d other requests served meanwhile\n",
           closed_at[0], closed_at[1], served, ticks);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(closed_at[i] >= 1.9 && closed_at[i] <= 3.5);
        close(fd[i]);
    }
    CU_ASSERT(ticks >= 8);
    CU_ASSERT_EQUAL(served, ticks);
    CU_ASSERT_EQUAL(http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body ? r.body : "", "\nveil_request_timeouts_total 2\n"));
    http_res_free(&r);
    veil_server_stop(s2);
}

static double metric_in(const char *text, const char *name);

static void test_slowloris_evicts(void) {
    /* --max-inflight 1 (a table of 2 * 1 + 16 = 18 connections), no
     * per-address cap (as behind a proxy, or many attacking addresses): 18
     * connections that each send one byte of headers fill the table. A new
     * client must still be answered at once, the oldest slow connection
     * closed to make room (it was: the new one waited in the listen backlog,
     * unanswered, until the request deadline, 120 s here). */
    veil_server_options o;
    server_options(&o);
    o.max_inflight = 1;
    o.max_conn_per_ip = 0;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    http_res r;
    CU_ASSERT_EQUAL(poll_status(port, "/v1/health", 200, &r), 200);
    http_res_free(&r);
    enum { N_SLOW = 18 };
    int slow[N_SLOW];
    for (int i = 0; i < N_SLOW; i++) {
        slow[i] = conn_open(port);
        CU_ASSERT_FATAL(slow[i] >= 0);
        CU_ASSERT_EQUAL(send(slow[i], "G", 1, MSG_NOSIGNAL), 1);
        usleep(20000); /* accepted in this order: the first is the oldest */
    }
    const double t0 = srv_test_now();
    int fd = conn_open(port);
    CU_ASSERT_FATAL(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char hq[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send(fd, hq, sizeof hq - 1, MSG_NOSIGNAL);
    const int got = read_response(fd, &r);
    const double dt = srv_test_now() - t0;
    printf("a new client beside %d slow connections (a full table): %s after %.3f s\n", N_SLOW,
           got == 0 ? "answered" : "no answer", dt);
    CU_ASSERT_EQUAL(got, 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(dt < 3.0);
    http_res_free(&r);
    close(fd);
    usleep(100000);
    CU_ASSERT(conn_closed(slow[0]));           /* the oldest made room */
    CU_ASSERT(!conn_closed(slow[N_SLOW - 1])); /* the newest kept its slot */
    CU_ASSERT_EQUAL(http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r), 0);
    CU_ASSERT(metric_in(r.body ? r.body : "", "veil_connections_evicted_total") >= 1);
    http_res_free(&r);
    for (int i = 0; i < N_SLOW; i++)
        close(slow[i]);
    veil_server_stop(s2);
}

static void test_slow_bodies_evicted(void) {
    /* --max-inflight 2: two clients send their infer headers and then their
     * bodies too slowly (here not at all), holding both slots. A request
     * that comes a second later takes the slot of the one arriving the
     * longest and is served (it was refused 503 too_many_requests until the
     * read timeout, and a body trickled a byte at a time held the slots to
     * the request deadline, 120 s); the other slow one keeps its slot. */
    veil_server_options o;
    server_options(&o);
    o.max_inflight = 2;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    static const char head[] = "POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                               "X-Veil-Key-Id: 0123456789abcdef0123456789abcdef\r\n\r\nabc";
    int slow[2];
    http_res r;
    for (int i = 0; i < 2; i++) {
        slow[i] = conn_open(port);
        CU_ASSERT_FATAL(slow[i] >= 0);
        send(slow[i], head, sizeof head - 1, MSG_NOSIGNAL);
        char want[64];
        snprintf(want, sizeof want, "veil_inflight_requests %d\n", i + 1);
        int held = 0; /* the server holds it (/metrics is never limited) */
        for (int k = 0; k < 300 && !held; k++) {
            if (http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r) == 0)
                held = r.body && strstr(r.body, want) != NULL;
            http_res_free(&r);
            if (!held) usleep(10000);
        }
        CU_ASSERT_FATAL(held);
    }
    usleep(1200000); /* past SRV_EVICT_MIN_AGE_S (1 s): younger ones are never evicted */
    size_t len;
    uint8_t *body = encrypt_body(g_dir_a, 1, &len);
    char h[128];
    snprintf(h, sizeof h, "X-Veil-Key-Id: %s\r\n", g_id_a);
    CU_ASSERT_EQUAL(http_raw_port(port, "POST", "/v1/infer", h, body, len, 1, 0, &r), 0);
    expect(r.status, 200, &r, NULL, "beside two slow bodies");
    if (r.status == 200)
        CU_ASSERT(check_result(g_dir_a, 0, 1, (const uint8_t *)r.body, r.body_len));
    http_res_free(&r);
    CU_ASSERT(conn_closed(slow[0]));  /* the one arriving the longest made room */
    CU_ASSERT(!conn_closed(slow[1])); /* the other kept its slot */
    CU_ASSERT_EQUAL(http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r), 0);
    CU_ASSERT_EQUAL(metric_in(r.body ? r.body : "", "veil_connections_evicted_total"), 1);
    http_res_free(&r);
    close(slow[0]);
    close(slow[1]);
    veil_serial_buffer_free(body, len);
    veil_server_stop(s2);
}

static void test_client_gone_frees_slot(void) {
    /* --max-inflight 1, a batching window of 2 s: a client sends an infer
     * request and closes its connection while the request waits. Its slot is
     * free within a moment, so another client 0.8 s later is served (it was
     * refused 503 too_many_requests until the abandoned request had been
     * computed, for nobody), and the abandoned request is never computed:
     * one batch in all. */
    veil_server_options o;
    server_options(&o);
    o.max_inflight = 1;
    o.max_wait_ms = 2000;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    size_t len;
    uint8_t *body = encrypt_body(g_dir_a, 1, &len);
    int fd = conn_open(port);
    CU_ASSERT_FATAL(fd >= 0);
    char head[512];
    const int hn = snprintf(head, sizeof head,
                            "POST /v1/infer HTTP/1.1\r\nHost: x\r\nX-Veil-Key-Id: %s\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            g_id_a, len);
    send(fd, head, (size_t)hn, MSG_NOSIGNAL);
    send(fd, body, len, MSG_NOSIGNAL);
    http_res r;
    int queued = 0; /* the server holds it (/metrics is never limited) */
    for (int i = 0; i < 300 && !queued; i++) {
        if (http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r) == 0)
            queued = r.body && strstr(r.body, "veil_queue_depth 1") != NULL;
        http_res_free(&r);
        if (!queued) usleep(10000);
    }
    CU_ASSERT_FATAL(queued);
    close(fd);
    usleep(800000);
    char h[128];
    snprintf(h, sizeof h, "X-Veil-Key-Id: %s\r\n", g_id_a);
    CU_ASSERT_EQUAL(http_raw_port(port, "POST", "/v1/infer", h, body, len, 1, 0, &r), 0);
    expect(r.status, 200, &r, NULL, "after an abandoned request");
    if (r.status == 200)
        CU_ASSERT(check_result(g_dir_a, 0, 1, (const uint8_t *)r.body, r.body_len));
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r), 0);
    CU_ASSERT_EQUAL(metric_in(r.body ? r.body : "", "veil_batch_samples_count"), 1);
    http_res_free(&r);
    veil_serial_buffer_free(body, len);
    veil_server_stop(s2);
}

/* Sends req on a new connection and reads until the server closes it (or
 * 3 s pass): every answer, NUL-terminated, in out. */
static size_t answers_until_close(uint16_t port, const char *req, char *out, size_t cap) {
    int fd = conn_open(port);
    if (fd < 0) return 0;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = recv(fd, out + n, cap - 1 - n, 0)) > 0)
        n += (size_t)got;
    out[n] = 0;
    close(fd);
    return n;
}

static void test_ambiguous_length(void) {
    /* A body length that two readers could read differently: two
     * Content-Length headers, Transfer-Encoding beside Content-Length, a
     * Transfer-Encoding other than chunked. Each is refused 400
     * ambiguous_length and the connection closed, so the bytes after the
     * body libmicrohttpd chose (here a whole GET /v1/health) are never
     * answered as a request of their own: libmicrohttpd took the first
     * length, or chunked, answered and then answered the smuggled health
     * request on the same connection (a proxy reading the other length
     * would hand that answer to its next client). */
    const uint16_t port = veil_server_port(g_srv);
    static const char smug[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    char req[1024], out[8192];
    const char *const heads[] = {
        "Content-Length: 5\r\nContent-Length: %zu\r\n",
        "Content-Length: %zu\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: identity\r\nContent-Length: %zu\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        char h[256];
        snprintf(h, sizeof h, heads[i], 5 + sizeof smug - 1);
        snprintf(req, sizeof req,
                 "POST /v1/infer HTTP/1.1\r\nHost: x\r\nX-Veil-Key-Id: %s\r\n%s\r\n%s%s", g_id_a, h,
                 i == 1 ? "5\r\nAAAAA\r\n0\r\n\r\n" : "AAAAA", smug);
        answers_until_close(port, req, out, sizeof out);
        size_t answers = 0;
        for (const char *p = out; (p = strstr(p, "HTTP/1.1 ")); p++)
            answers++;
        if (answers != 1 || !strstr(out, "\"ambiguous_length\""))
            printf("\n  framing %zu: %zu answers: %.300s\n", i, answers, out);
        CU_ASSERT_EQUAL(answers, 1);
        CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 400", 12), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"ambiguous_length\""));
        CU_ASSERT_PTR_NULL(strstr(out, "\"status\":\"ok\""));
    }
    http_res r;
    CU_ASSERT_EQUAL(http_get_status("/v1/health", &r), 200); /* still serving */
    http_res_free(&r);
}

static void test_connections_per_ip(void) {
    /* --max-conn-per-ip 2: two idle connections from 127.0.0.1, a third is
     * closed unanswered; once one of the two closes, served again. */
    veil_server_options o;
    server_options(&o);
    o.max_conn_per_ip = 2;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    http_res r;
    CU_ASSERT_EQUAL(poll_status(port, "/v1/health", 200, &r), 200);
    http_res_free(&r);
    usleep(300000); /* the server has let go of that connection (a loaded machine) */
    int a = conn_open(port), b = conn_open(port);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    usleep(100000); /* the server has accepted both */
    int st = http_raw_port(port, "GET", "/v1/health", NULL, NULL, 0, 0, 0, &r) == 0 ? r.status : -1;
    http_res_free(&r);
    CU_ASSERT_EQUAL(st, -1);
    close(a);
    CU_ASSERT_EQUAL(poll_status(port, "/v1/health", 200, &r), 200);
    http_res_free(&r);
    close(b);
    veil_server_stop(s2);
}

static void test_port_taken(void) {
    /* A taken port is named (it was "port 0"), with the system's reason. */
    veil_server_options o;
    server_options(&o);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", veil_server_port(g_srv));
    o.listen = listen;
    veil_server *s2 = NULL;
    CU_ASSERT_NOT_EQUAL(veil_server_start(&o, &s2), VEIL_OK);
    char want[64];
    snprintf(want, sizeof want, "port %u", veil_server_port(g_srv));
    printf("taken port: %s\n", veil_error_message());
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "in use"));
    /* --reuse-port on both: a replacement listens next to the old one. */
    server_options(&o);
    o.reuse_port = 1;
    veil_server *s3 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", veil_server_port(s2));
    o.listen = listen;
    CU_ASSERT_EQUAL(veil_server_start(&o, &s3), VEIL_OK);
    CU_ASSERT_EQUAL(veil_server_port(s3), veil_server_port(s2));
    veil_server_stop(s3);
    veil_server_stop(s2);
}

/* Fetches one counter or gauge of g_srv's /metrics (-1 when absent). */
static double metric(const char *name) {
    http_res r;
    double v = -1;
    if (http_get_status("/metrics", &r) == 200) {
        char pat[128];
        snprintf(pat, sizeof pat, "\n%s ", name);
        const char *p = strstr(r.body, pat);
        if (p) v = strtod(p + strlen(pat), NULL);
    }
    http_res_free(&r);
    return v;
}

/* Copies the stored key of id (in g_keys) to dir under a fresh id (out):
 * intact (KEY_INTACT), or damaged: one payload byte flipped, the checksum no
 * longer matching (KEY_FLIPPED); or its version word set to 9 and the
 * checksum made right again, intact bytes that this build cannot read
 * (KEY_UNREADABLE). */
enum { KEY_INTACT, KEY_FLIPPED, KEY_UNREADABLE };
static void copy_key(const char *id, const char *dir, int damage, char out[VEIL_KEY_ID_CHARS + 1]) {
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/%s.vek", g_keys, id);
    uint8_t rnd[VEIL_KEY_ID_CHARS / 2];
    randombytes_buf(rnd, sizeof rnd);
    veil_hex(rnd, sizeof rnd, out);
    snprintf(dst, sizeof dst, "%s/%s.vek", dir, out);
    FILE *f = fopen(src, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    const size_t len = (size_t)ftell(f);
    rewind(f);
    uint8_t *buf = malloc(len);
    CU_ASSERT_FATAL(buf && fread(buf, 1, len, f) == len);
    fclose(f);
    if (damage == KEY_UNREADABLE) {
        buf[8] = 9, buf[9] = buf[10] = buf[11] = 0;
        fix_checksum(buf, len);
    } else if (damage == KEY_FLIPPED) {
        buf[VEIL_SERIAL_HEADER_BYTES + 1000] ^= 0x40;
    }
    FILE *g = fopen(dst, "wb");
    CU_ASSERT_FATAL(g && fwrite(buf, 1, len, g) == len);
    fclose(g);
    free(buf);
}

static int file_exists(const char *dir, const char *id, const char *suffix) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.vek%s", dir, id, suffix);
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_corrupted_key(void) {
    /* A key file with a bad checksum: GET and infer answer 404 (never 200
     * then 500 with a path), the file is quarantined, the plan resident in
     * the LRU (key cache of 1) is not evicted for it, and the client uploads
     * its key again. */
    CU_ASSERT(roundtrip(g_dir_a, g_id_a, 0, 1) > 0); /* a's plan resident */
    const double ev0 = metric("veil_key_cache_evictions_total");
    const double miss0 = metric("veil_key_cache_misses_total");
    const double q0 = metric("veil_keys_quarantined_total");
    CU_ASSERT_EQUAL(metric("veil_key_cache_resident"), 1);
    /* Infer under a corrupted key (its header is intact, so the request is
     * queued and the worker finds the damage when loading). */
    char bad_id[VEIL_KEY_ID_CHARS + 1];
    copy_key(g_id_b, g_keys, KEY_FLIPPED, bad_id);
    size_t len;
    uint8_t *body = encrypt_body(g_dir_b, 1, &len);
    http_res r;
    expect(post_infer(bad_id, body, len, &r), 404, &r, "unknown_key", "corrupted key infer");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "quarantined"));
    CU_ASSERT_PTR_NULL(strstr(r.body, g_tmp)); /* no server path */
    http_res_free(&r);
    CU_ASSERT(!file_exists(g_keys, bad_id, ""));
    CU_ASSERT(file_exists(g_keys, bad_id, ".corrupt"));
    CU_ASSERT_EQUAL(metric("veil_key_cache_evictions_total"), ev0);
    CU_ASSERT_EQUAL(metric("veil_key_cache_resident"), 1);
    CU_ASSERT_EQUAL(metric("veil_keys_quarantined_total"), q0 + 1);
    CU_ASSERT_EQUAL(metric("veil_key_cache_misses_total"), miss0 + 1);
    CU_ASSERT(roundtrip(g_dir_a, g_id_a, 1, 1) > 0);
    CU_ASSERT_EQUAL(metric("veil_key_cache_misses_total"), miss0 + 1); /* a's plan: a hit */
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", bad_id);
    expect(http_get_status(path, &r), 404, &r, "unknown_key", "quarantined key get");
    http_res_free(&r);
    /* GET finds a corrupted file by itself (checksum), before any infer. */
    copy_key(g_id_b, g_keys, KEY_FLIPPED, bad_id);
    snprintf(path, sizeof path, "/v1/keys/%s", bad_id);
    expect(http_get_status(path, &r), 404, &r, "unknown_key", "corrupted key get");
    CU_ASSERT_PTR_NULL(strstr(r.body, g_tmp));
    http_res_free(&r);
    CU_ASSERT(file_exists(g_keys, bad_id, ".corrupt"));
    CU_ASSERT_EQUAL(metric("veil_keys_quarantined_total"), q0 + 2);
    /* Intact bytes this build cannot read (another version, as a newer
     * server sharing the directory writes): refused, left in place, not
     * quarantined. */
    copy_key(g_id_b, g_keys, KEY_UNREADABLE, bad_id);
    expect(post_infer(bad_id, body, len, &r), 500, &r, "key_load_failed", "unreadable key");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "not readable by this build"));
    http_res_free(&r);
    CU_ASSERT(file_exists(g_keys, bad_id, ""));
    CU_ASSERT(!file_exists(g_keys, bad_id, ".corrupt"));
    CU_ASSERT_EQUAL(metric("veil_keys_quarantined_total"), q0 + 2);
    /* The client's own key corrupted in place: veil remote's check (GET) gets
     * 404 and uploads it again under a new id, which works. */
    char own[512];
    snprintf(own, sizeof own, "%s/%s.vek", g_keys, g_id_b);
    FILE *f = fopen(own, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, VEIL_SERIAL_HEADER_BYTES + 5, SEEK_SET);
    int c = fgetc(f);
    fseek(f, VEIL_SERIAL_HEADER_BYTES + 5, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    char id2[VEIL_KEY_ID_CHARS + 1];
    int up = -1;
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_url, g_dir_b, &ro, id2, &up), VEIL_OK);
    CU_ASSERT_EQUAL(up, 1);
    CU_ASSERT_STRING_NOT_EQUAL(id2, g_id_b);
    memcpy(g_id_b, id2, sizeof id2);
    CU_ASSERT(roundtrip(g_dir_b, g_id_b, 0, 1) > 0);
    veil_serial_buffer_free(body, len);
}

typedef struct drain_arg {
    veil_server *s;
    unsigned left;
} drain_arg;

static void *drain_thread(void *p) {
    drain_arg *d = p;
    d->left = veil_server_drain(d->s, 0, NULL);
    return NULL;
}

/* Sends the headers of POST /v1/infer and the first half of body. */
static int start_partial_infer(uint16_t port, const uint8_t *body, size_t len) {
    int fd = conn_open(port);
    if (fd < 0) return -1;
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "X-Veil-Key-Id: %s\r\nContent-Length: %zu\r\n\r\n",
                      g_id_a, len);
    send(fd, head, (size_t)hn, MSG_NOSIGNAL);
    send(fd, body, len / 2, MSG_NOSIGNAL);
    return fd;
}

static void test_drain(void) {
    /* veil_server_drain while one request's body is still arriving: the
     * listening socket closes at once (a replacement binds the port), health
     * on an open connection says draining, and the request is still
     * computed and answered. */
    veil_server_options o;
    server_options(&o);
    veil_server *s2 = NULL, *s3 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    size_t len;
    uint8_t *body = encrypt_body(g_dir_a, 2, &len);
    int k = conn_open(port); /* keep-alive: asks health before and during */
    CU_ASSERT_FATAL(k >= 0);
    const char hq[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    http_res r;
    send(k, hq, sizeof hq - 1, MSG_NOSIGNAL);
    CU_ASSERT_EQUAL(read_response(k, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    http_res_free(&r);
    int u = start_partial_infer(port, body, len);
    CU_ASSERT_FATAL(u >= 0);
    veil_server_stats stats;
    for (int i = 0; i < 500; i++) { /* the server has the infer request's headers */
        veil_server_get_stats(s2, &stats);
        if (stats.requests >= 2) break;
        usleep(10000);
    }
    drain_arg d = {s2, 99};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, drain_thread, &d), 0);
    usleep(200000);
    send(k, hq, sizeof hq - 1, MSG_NOSIGNAL);
    CU_ASSERT_EQUAL(read_response(k, &r), 0);
    expect(r.status, 503, &r, NULL, "health while draining");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"draining\""));
    http_res_free(&r);
    close(k);
    errno = 0;
    int n = conn_open(port);
    CU_ASSERT_EQUAL(n, -1);
    CU_ASSERT_EQUAL(errno, ECONNREFUSED);
    if (n >= 0) close(n);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    o.listen = listen;
    const veil_status st3 = veil_server_start(&o, &s3); /* the replacement, same port */
    if (st3 != VEIL_OK) printf("\n  replacement server: %s\n", veil_error_message());
    CU_ASSERT_EQUAL(st3, VEIL_OK);
    send(u, body + len / 2, len - len / 2, MSG_NOSIGNAL);
    CU_ASSERT_EQUAL(read_response(u, &r), 0);
    expect(r.status, 200, &r, NULL, "request accepted before the drain");
    if (r.status == 200)
        CU_ASSERT(check_result(g_dir_a, 0, 2, (const uint8_t *)r.body, r.body_len));
    http_res_free(&r);
    close(u);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(d.left, 0);
    veil_server_stop(s2);
    if (s3) {
        CU_ASSERT_EQUAL(poll_status(port, "/v1/health", 200, &r), 200);
        http_res_free(&r);
        veil_server_stop(s3);
    }
    veil_serial_buffer_free(body, len);
}

static void test_sigterm(void) {
    /* The real veil-server: SIGTERM while a request's body is arriving: the
     * port is released at once, the request is answered, exit 0. A second
     * SIGTERM exits at once (128 + 15). */
    char bin[1200];
    /* Not a skip: test_server links veil_server, so this configuration has
     * the veil-server target, and its `// RUNS:` line builds it with us. */
    if (server_binary(bin, sizeof bin) != 0) {
        printf("\n  no veil-server binary at %s, although building test_server builds it\n", bin);
        CU_FAIL_FATAL("veil-server binary missing");
    }
    size_t len;
    uint8_t *body = encrypt_body(g_dir_a, 1, &len);
    for (int twice = 0; twice < 2; twice++) {
        uint16_t port = 0;
        int errfd = -1;
        const char *args[] = {"--model",       veil_test_path("models/tiny.h5"),
                              "--backend",     "cpu",
                              "--listen",      "127.0.0.1:0",
                              "--keys-dir",    g_keys,
                              "--max-wait-ms", "0",
                              "--devices", /* two plans: the drain waits for the group */
                              "0,0",           NULL};
        pid_t pid = spawn_server(bin, args, &port, &errfd);
        CU_ASSERT_FATAL(pid > 0);
        CU_ASSERT_FATAL(port != 0);
        int u = start_partial_infer(port, body, len);
        CU_ASSERT_FATAL(u >= 0);
        usleep(300000); /* headers read */
        kill(pid, SIGTERM);
        usleep(300000);
        errno = 0;
        int n = conn_open(port);
        CU_ASSERT_EQUAL(n, -1);
        CU_ASSERT_EQUAL(errno, ECONNREFUSED);
        if (n >= 0) close(n);
        int status = 0;
        http_res r;
        if (!twice) {
            send(u, body + len / 2, len - len / 2, MSG_NOSIGNAL);
            CU_ASSERT_EQUAL(read_response(u, &r), 0);
            expect(r.status, 200, &r, NULL, "in flight at SIGTERM");
            if (r.status == 200)
                CU_ASSERT(check_result(g_dir_a, 0, 1, (const uint8_t *)r.body, r.body_len));
            http_res_free(&r);
            CU_ASSERT_EQUAL(wait_exit(pid, 30, &status), 0);
            CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        } else {
            kill(pid, SIGTERM);
            CU_ASSERT_EQUAL(wait_exit(pid, 5, &status), 0);
            CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM);
            CU_ASSERT_NOT_EQUAL(read_response(u, &r), 0); /* closed, no answer */
            http_res_free(&r);
        }
        if (waitpid(pid, &status, WNOHANG) == 0) { /* a failed check left it running */
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        close(u);
        close(errfd);
    }
    veil_serial_buffer_free(body, len);
}

typedef struct trickle_arg {
    int fd;
    atomic_int stop;
} trickle_arg;

/* Sends one byte every 100 ms (never idle for a read timeout) until told to
 * stop or the server closes the connection. */
static void *trickle_main(void *p) {
    trickle_arg *t = p;
    while (!atomic_load(&t->stop) && send(t->fd, "x", 1, MSG_NOSIGNAL) == 1)
        usleep(100000);
    return NULL;
}

/* What the server wrote to stderr since it announced its port (it has
 * exited: reads to end of file). */
static void read_stderr(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A file of mib MiB (sparse: it takes no room, but counts by its size). */
static int make_filler(const char *path, unsigned mib) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const int rc = ftruncate(fileno(f), (off_t)mib << 20);
    fclose(f);
    return rc;
}

static void test_key_store_quota(void) {
    /* --key-store-max-mb 60 on a directory of its own, tiny's key 27 MiB:
     * 1. 40 MiB already there (a file of any name counts): the upload is
     *    refused 507 key_store_full at its headers, veil remote says so and
     *    names the option, nothing is stored;
     * 2. the filler removed (no restart: read at each upload): stored;
     * 3. room when its headers came, none when its body is in (another
     *    server sharing the directory wrote meanwhile): 507, nothing
     *    half-written;
     * 4. a limit below one key refuses to start. */
    char dir[400], filler[500];
    snprintf(dir, sizeof dir, "%s/quota-keys", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    CU_ASSERT_FATAL(make_filler(filler, 40) == 0);
    veil_server_options o;
    server_options(&o);
    o.keys_dir = dir;
    o.key_store_max_mb = 60;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    char id[VEIL_KEY_ID_CHARS + 1];
    int up = -1;
    /* VEIL_ERR_RANGE, as Triton's 503 key_store_full reads (test_triton) */
    CU_ASSERT_EQUAL(veil_remote_ensure_key(url, g_dir_a, &ro, id, &up), VEIL_ERR_RANGE);
    CU_ASSERT_EQUAL(veil_remote_last_status(), 507);
    const char *msg = veil_error_message();
    printf("\n  full: %s", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "507 key_store_full"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--key-store-max-mb"));
    CU_ASSERT_EQUAL(count_files(dir), 1);
    /* 2 */
    unlink(filler);
    CU_ASSERT_EQUAL(veil_remote_ensure_key(url, g_dir_a, &ro, id, &up), VEIL_OK);
    CU_ASSERT_EQUAL(up, 1);
    CU_ASSERT_EQUAL(count_files(dir), 1);
    /* 3: 27 + 27 MiB fit under 60 when the headers come; 40 more by the body */
    uint8_t *ek = NULL;
    size_t ek_len = 0;
    CU_ASSERT_EQUAL_FATAL(veil_read_eval_key_file(g_dir_a, &ek, &ek_len), VEIL_OK);
    int fd = conn_open(port);
    CU_ASSERT_FATAL(fd >= 0);
    char head[256];
    const int hn = snprintf(head, sizeof head,
                            "POST /v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            ek_len);
    send(fd, head, (size_t)hn, MSG_NOSIGNAL);
    usleep(300000); /* headers checked: room */
    CU_ASSERT_FATAL(make_filler(filler, 40) == 0);
    CU_ASSERT_EQUAL(send(fd, ek, ek_len, MSG_NOSIGNAL), (ssize_t)ek_len);
    http_res r;
    CU_ASSERT_EQUAL(read_response(fd, &r), 0);
    expect(r.status, 507, &r, NULL, "no room by the time the body is in");
    CU_ASSERT(has_code(&r, "key_store_full"));
    http_res_free(&r);
    close(fd);
    free(ek);
    CU_ASSERT_EQUAL(count_files(dir), 2); /* the first key and the filler */
    veil_server_stop(s2);
    /* 4 */
    o.key_store_max_mb = 1;
    s2 = NULL;
    CU_ASSERT_EQUAL(veil_server_start(&o, &s2), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--key-store-max-mb 1"));
    veil_server_stop(s2);
    veil_test_rm_rf(dir);
}

typedef struct infer_arg {
    const char *id;
    const uint8_t *body;
    size_t len;
    http_res r;
} infer_arg;

static void *infer_thread(void *p) {
    infer_arg *a = p;
    post_infer(a->id, a->body, a->len, &a->r);
    return NULL;
}

static void test_key_lifecycle(void) {
    /* One server (--key-ttl-hours 1, a 1.5 s batching window) on a
     * directory of its own:
     * 1. a key last used 2 h ago is removed at start, one used now stays;
     *    /metrics counts it expired;
     * 2. DELETE /v1/keys/<id> while an infer with that key waits in the
     *    batching window (its key not yet loaded): 204, then GET and a new
     *    infer 404 unknown_key, a second DELETE 404; the infer in flight is
     *    answered, decrypting to simulate;
     *    once answered, the key's resident plan is freed (veil_key_cache_resident
     *    0), and so is one of a key whose file another process removed;
     * 3. /metrics: the store's keys and bytes follow, the deletes counted. */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/lifecycle-keys", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    char old_id[VEIL_KEY_ID_CHARS + 1], id[VEIL_KEY_ID_CHARS + 1];
    copy_key(g_id_a, dir, KEY_INTACT, old_id);
    copy_key(g_id_a, dir, KEY_INTACT, id);
    char p[600];
    snprintf(p, sizeof p, "%s/%s.vek", dir, old_id);
    CU_ASSERT_EQUAL(veil_test_age_file(p, 7200), 0);
    veil_server_options o;
    server_options(&o);
    o.keys_dir = dir;
    o.key_ttl_hours = 1;
    o.max_wait_ms = 1500;
    veil_server *s1 = g_srv, *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    g_srv = s2; /* http_raw and metric talk to g_srv */
    /* 1: pruned by the reaper thread right after start */
    for (int i = 0; i < 500 && file_exists(dir, old_id, ""); i++)
        usleep(10000);
    CU_ASSERT(!file_exists(dir, old_id, ""));
    CU_ASSERT(file_exists(dir, id, ""));
    /* the reaper counts a key just after removing its file: a scrape may
     * fall between the two (seen once under ASan) */
    for (int i = 0; i < 500 && metric("veil_keys_removed_total{reason=\"expired\"}") < 1; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(metric("veil_keys_removed_total{reason=\"expired\"}"), 1);
    CU_ASSERT_EQUAL(metric("veil_key_store_keys"), 1);
    const double bytes1 = metric("veil_key_store_bytes");
    CU_ASSERT(bytes1 > 1e6);
    /* 2 */
    infer_arg a = {id, NULL, 0, {0}};
    a.body = encrypt_body(g_dir_a, 1, &a.len);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, infer_thread, &a), 0);
    usleep(500000); /* queued: the worker waits for a fuller batch until 1.5 s */
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", id);
    http_res r;
    CU_ASSERT_EQUAL(http_raw("DELETE", path, NULL, NULL, 0, 0, 0, &r), 0);
    expect(r.status, 204, &r, NULL, "DELETE /v1/keys/<id>");
    http_res_free(&r);
    CU_ASSERT(!file_exists(dir, id, ""));
    expect(http_get_status(path, &r), 404, &r, "unknown_key", "GET after DELETE");
    http_res_free(&r);
    CU_ASSERT_EQUAL(http_raw("DELETE", path, NULL, NULL, 0, 0, 0, &r), 0);
    expect(r.status, 404, &r, "unknown_key", "DELETE again");
    http_res_free(&r);
    pthread_join(th, NULL);
    expect(a.r.status, 200, &a.r, NULL, "the infer in flight when its key was deleted");
    if (a.r.status == 200)
        CU_ASSERT(check_result(g_dir_a, 0, 1, (const uint8_t *)a.r.body, a.r.body_len));
    http_res_free(&a.r);
    /* the in-flight infer loaded the key (from its open file) into the
     * cache; with it answered, nothing waits for that plan: freed, not held
     * until evicted (it stayed resident before) */
    for (int i = 0; i < 200 && metric("veil_key_cache_resident") != 0; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(metric("veil_key_cache_resident"), 0);
    CU_ASSERT_EQUAL(metric("veil_key_cache_dropped_total"), 1);
    expect(post_infer(id, a.body, a.len, &r), 404, &r, "unknown_key", "infer after DELETE");
    http_res_free(&r);
    /* a key another server sharing the directory removes (here: its file
     * unlinked behind this server's back) while resident: freed at the
     * reaper's next look, which a local DELETE of another key brings on */
    char id2[VEIL_KEY_ID_CHARS + 1], id3[VEIL_KEY_ID_CHARS + 1];
    copy_key(g_id_a, dir, KEY_INTACT, id2);
    copy_key(g_id_a, dir, KEY_INTACT, id3);
    expect(post_infer(id2, a.body, a.len, &r), 200, &r, NULL, "infer under a second key");
    http_res_free(&r);
    CU_ASSERT_EQUAL(metric("veil_key_cache_resident"), 1);
    snprintf(p, sizeof p, "%s/%s.vek", dir, id2);
    CU_ASSERT_EQUAL(unlink(p), 0);
    snprintf(path, sizeof path, "/v1/keys/%s", id3);
    CU_ASSERT_EQUAL(http_raw("DELETE", path, NULL, NULL, 0, 0, 0, &r), 0);
    expect(r.status, 204, &r, NULL, "DELETE of a key never loaded");
    http_res_free(&r);
    for (int i = 0; i < 200 && metric("veil_key_cache_resident") != 0; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(metric("veil_key_cache_resident"), 0);
    CU_ASSERT_EQUAL(metric("veil_key_cache_dropped_total"), 2);
    expect(post_infer(id2, a.body, a.len, &r), 404, &r, "unknown_key", "infer after unlink");
    http_res_free(&r);
    veil_serial_buffer_free((uint8_t *)a.body, a.len);
    /* 3 */
    CU_ASSERT_EQUAL(metric("veil_key_store_keys"), 0);
    CU_ASSERT_EQUAL(metric("veil_key_store_bytes"), 0);
    CU_ASSERT_EQUAL(metric("veil_keys_removed_total{reason=\"deleted\"}"), 2);
    CU_ASSERT_EQUAL(metric("veil_keys_removed_total{reason=\"expired\"}"), 1);
    g_srv = s1;
    veil_server_stop(s2);
    veil_test_rm_rf(dir);
}

static void test_key_spared_then_freed(void) {
    /* A resident key K is deleted while an infer under K waits behind
     * another key's batch (a 2 s batching window): the worker's look at
     * its resident keys, after that batch, spares K's plan for the waiting
     * request, which is answered from it. Once answered, nothing waits for
     * the plan: it is freed (veil_key_cache_resident back to 1, the other
     * key's), not held until the next removal or the reaper's look 5
     * minutes on (it was). */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/spared-keys", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    char kx[VEIL_KEY_ID_CHARS + 1], kk[VEIL_KEY_ID_CHARS + 1];
    copy_key(g_id_a, dir, KEY_INTACT, kx);
    copy_key(g_id_a, dir, KEY_INTACT, kk);
    veil_server_options o;
    server_options(&o);
    o.keys_dir = dir;
    o.max_wait_ms = 2000;
    o.key_cache = 2;
    veil_server *s1 = g_srv, *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    g_srv = s2; /* http_raw and metric talk to g_srv */
    infer_arg ax = {kx, NULL, 0, {0}}, ak = {kk, NULL, 0, {0}};
    ax.body = ak.body = encrypt_body(g_dir_a, 1, &ax.len);
    ak.len = ax.len;
    http_res r;
    expect(post_infer(kk, ak.body, ak.len, &r), 200, &r, NULL, "infer under K");
    http_res_free(&r);
    CU_ASSERT_EQUAL(metric("veil_key_cache_resident"), 1);
    pthread_t tx, tk;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tx, NULL, infer_thread, &ax), 0);
    usleep(500000); /* X's batch waits for more until 2 s */
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tk, NULL, infer_thread, &ak), 0);
    usleep(500000); /* K's request queued behind X's */
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", kk);
    CU_ASSERT_EQUAL(http_raw("DELETE", path, NULL, NULL, 0, 0, 0, &r), 0);
    expect(r.status, 204, &r, NULL, "DELETE K while a request under it waits");
    http_res_free(&r);
    pthread_join(tx, NULL);
    pthread_join(tk, NULL);
    expect(ax.r.status, 200, &ax.r, NULL, "the infer under X");
    expect(ak.r.status, 200, &ak.r, NULL, "the infer under K, queued when K was deleted");
    http_res_free(&ax.r);
    http_res_free(&ak.r);
    for (int i = 0; i < 300 && metric("veil_key_cache_resident") != 1; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(metric("veil_key_cache_resident"), 1);
    CU_ASSERT_EQUAL(metric("veil_key_cache_dropped_total"), 1);
    veil_serial_buffer_free((uint8_t *)ax.body, ax.len);
    g_srv = s1;
    veil_server_stop(s2);
    veil_test_rm_rf(dir);
}

static const char g_zero_id[] = "00000000000000000000000000000000";

static void test_remote_delete_key(void) {
    /* veil_remote_delete_key (veil remote --delete-key): the id DIR/servers
     * records for the server is deleted there and the entry dropped; one the
     * server had lost already (404) is no failure, was_stored 0; with no
     * entry left, VEIL_ERR_ARG and nothing sent. */
    char dir[400], id[VEIL_KEY_ID_CHARS + 1], got[VEIL_KEY_ID_CHARS + 1], none[64];
    snprintf(dir, sizeof dir, "%s/delete-client", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/eval.key", g_dir_a);
    snprintf(dst, sizeof dst, "%s/eval.key", dir);
    CU_ASSERT_EQUAL_FATAL(link(src, dst), 0);
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    ro.retries = 0;
    int was = 0;
    CU_ASSERT_EQUAL_FATAL(veil_keydir_servers_store(dir, "http://other.example", g_zero_id),
                          VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_url, dir, &ro, id, &was), VEIL_OK);
    CU_ASSERT(file_exists(g_keys, id, ""));
    was = -1;
    CU_ASSERT_EQUAL(veil_remote_delete_key(g_url, dir, &ro, got, &was), VEIL_OK);
    CU_ASSERT_EQUAL(was, 1);
    CU_ASSERT_STRING_EQUAL(got, id);
    CU_ASSERT(!file_exists(g_keys, id, ""));
    CU_ASSERT_NOT_EQUAL(veil_keydir_servers_lookup(dir, g_url, none), 0);
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, "http://other.example", none), 0);
    /* recorded, but the server has it no more */
    CU_ASSERT_EQUAL_FATAL(veil_keydir_servers_store(dir, g_url, id), VEIL_OK);
    was = -1;
    CU_ASSERT_EQUAL(veil_remote_delete_key(g_url, dir, &ro, got, &was), VEIL_OK);
    CU_ASSERT_EQUAL(was, 0);
    CU_ASSERT_NOT_EQUAL(veil_keydir_servers_lookup(dir, g_url, none), 0);
    CU_ASSERT_EQUAL(veil_remote_delete_key(g_url, dir, &ro, got, &was), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "no key id recorded"));
    /* a 404 that is not unknown_key (no such route: a proxy, a wrong base
     * URL) says nothing about the key: a failure, the entry kept (it was
     * taken for a key already gone and dropped) */
    char wrong[600];
    snprintf(wrong, sizeof wrong, "%s/not-veil", g_url);
    CU_ASSERT_EQUAL_FATAL(veil_keydir_servers_store(dir, wrong, g_zero_id), VEIL_OK);
    was = -1;
    CU_ASSERT_NOT_EQUAL(veil_remote_delete_key(wrong, dir, &ro, got, &was), VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "404"));
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, wrong, none), 0);
    veil_test_rm_rf(dir);
}

static void test_remote_servers_read_only(void) {
    /* A DIR/servers the user made read-only is refused before the key is
     * uploaded (the id the server gave would be lost, its key held there
     * unused until it expires), and left as it was. */
    char dir[400], path[600], src[600], dst[600], id[VEIL_KEY_ID_CHARS + 1];
    snprintf(dir, sizeof dir, "%s/ro-servers-client", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    snprintf(src, sizeof src, "%s/eval.key", g_dir_a);
    snprintf(dst, sizeof dst, "%s/eval.key", dir);
    CU_ASSERT_EQUAL_FATAL(link(src, dst), 0);
    CU_ASSERT_EQUAL_FATAL(veil_keydir_servers_store(dir, "http://other.example", g_zero_id),
                          VEIL_OK);
    snprintf(path, sizeof path, "%s/servers", dir);
    CU_ASSERT_EQUAL_FATAL(chmod(path, 0444), 0);
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    ro.retries = 0;
    const size_t keys_before = count_files(g_keys);
    int was = -1;
    CU_ASSERT_EQUAL(veil_remote_ensure_key(g_url, dir, &ro, id, &was), VEIL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "read-only"));
    CU_ASSERT_EQUAL(count_files(g_keys), keys_before); /* nothing uploaded */
    char none[64];
    CU_ASSERT_EQUAL(veil_keydir_servers_lookup(dir, "http://other.example", none), 0);
    struct stat st;
    CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0444);
    CU_ASSERT_EQUAL(count_files(dir), 2); /* eval.key, servers: no temporary */
    veil_test_rm_rf(dir);
}

/* A number in a /metrics text (-1 when absent). */
static double metric_in(const char *text, const char *name);

static void test_sigterm_drain_deadline(void) {
    /* The real veil-server with --drain-timeout-ms 1500 (request deadline
     * and read timeout at their defaults, 120 s and 30 s):
     * 1. a client trickles its body a byte every 100 ms, which held the
     *    drain for the request deadline (119.4 s measured): SIGTERM exits 0
     *    within the drain deadline + 2 s, the log names the cut upload, and
     *    the client's connection is closed without an answer;
     * 2. a request being computed when the deadline (here 0.5 s) passes
     *    (32 samples in one batch on one thread: seconds) is abandoned:
     *    exit 3 at the deadline, logged. */
    char bin[1200];
    if (server_binary(bin, sizeof bin) != 0) CU_FAIL_FATAL("veil-server binary missing");
    for (int computing = 0; computing < 2; computing++) {
        const double limit_s = computing ? 0.5 : 1.5;
        if (computing) setenv("VEIL_THREADS", "1", 1); /* the server inherits it */
        uint16_t port = 0;
        int errfd = -1;
        const char *args[] = {"--model",
                              veil_test_path("models/tiny.h5"),
                              "--backend",
                              "cpu",
                              "--listen",
                              "127.0.0.1:0",
                              "--keys-dir",
                              g_keys,
                              "--max-wait-ms",
                              "0",
                              "--max-batch",
                              "32",
                              "--drain-timeout-ms",
                              computing ? "500" : "1500",
                              NULL};
        pid_t pid = spawn_server(bin, args, &port, &errfd);
        unsetenv("VEIL_THREADS");
        CU_ASSERT_FATAL(pid > 0);
        CU_ASSERT_FATAL(port != 0);
        char id[VEIL_KEY_ID_CHARS + 1] = "0123456789abcdef0123456789abcdef";
        uint8_t *body = NULL;
        size_t len = 0;
        int u = -1;
        trickle_arg t = {-1, 0};
        pthread_t th;
        int trickling = 0;
        if (!computing) {
            u = conn_open(port);
            CU_ASSERT_FATAL(u >= 0);
            char head[512];
            int hn = snprintf(head, sizeof head,
                              "POST /v1/infer HTTP/1.1\r\nHost: x\r\nX-Veil-Key-Id: %s\r\n"
                              "Content-Length: 1000000\r\n\r\n",
                              id);
            send(u, head, (size_t)hn, MSG_NOSIGNAL);
            t.fd = u;
            trickling = pthread_create(&th, NULL, trickle_main, &t) == 0;
            CU_ASSERT_FATAL(trickling);
            usleep(500000); /* headers and a few bytes in */
        } else {
            /* a key this server knows, then 32 samples in one batch */
            char url[64];
            snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
            veil_remote_options ro;
            veil_remote_options_default(&ro);
            int up = 0;
            CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(url, g_dir_a, &ro, id, &up), VEIL_OK);
            body = encrypt_body(g_dir_a, 32, &len);
            u = conn_open(port);
            CU_ASSERT_FATAL(u >= 0);
            char head[512];
            int hn = snprintf(head, sizeof head,
                              "POST /v1/infer HTTP/1.1\r\nHost: x\r\nX-Veil-Key-Id: %s\r\n"
                              "Content-Length: %zu\r\n\r\n",
                              id, len);
            send(u, head, (size_t)hn, MSG_NOSIGNAL);
            CU_ASSERT_EQUAL(send(u, body, len, MSG_NOSIGNAL), (ssize_t)len);
            /* in the batch: in flight, nothing queued */
            int running = 0;
            for (int i = 0; i < 500 && !running; i++) {
                http_res r;
                if (http_raw_port(port, "GET", "/metrics", NULL, NULL, 0, 0, 0, &r) == 0) {
                    running = metric_in(r.body, "veil_inflight_requests") == 1 &&
                              metric_in(r.body, "veil_queue_depth") == 0;
                    http_res_free(&r);
                }
                if (!running) usleep(10000);
            }
            CU_ASSERT_FATAL(running);
            usleep(50000); /* parsed and queued: the worker has it */
        }
        const double t0 = now_s();
        kill(pid, SIGTERM);
        int status = 0;
        CU_ASSERT_EQUAL(wait_exit(pid, 30, &status), 0);
        const double took = now_s() - t0;
        if (waitpid(pid, &status, WNOHANG) == 0) { /* a failed check left it running */
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        char log[8192];
        read_stderr(errfd, log, sizeof log);
        printf("\n  %s: exit %d after %.2f s (drain deadline %.1f s)",
               computing ? "computing" : "trickling", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
               took, limit_s);
        CU_ASSERT(took >= limit_s - 0.1);
        CU_ASSERT(took < limit_s + 2.0);
        CU_ASSERT(WIFEXITED(status));
        if (!computing) {
            CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
            CU_ASSERT_PTR_NOT_NULL(
                strstr(log, "closed 1 connection(s) still sending their request"));
            CU_ASSERT_PTR_NOT_NULL(strstr(log, "abandoned 0 still being computed"));
            http_res r;
            CU_ASSERT_NOT_EQUAL(read_response(u, &r), 0); /* closed, no answer */
            http_res_free(&r);
        } else {
            CU_ASSERT_EQUAL(WEXITSTATUS(status), 3);
            CU_ASSERT_PTR_NOT_NULL(strstr(log, "abandoned 1 still being computed"));
        }
        if (!strstr(log, "drain deadline")) printf("\n  server log: %s", log);
        atomic_store(&t.stop, 1);
        if (trickling) pthread_join(th, NULL);
        if (body) veil_serial_buffer_free(body, len);
        close(u);
        close(errfd);
    }
}

/* A number in a /metrics text (-1 when absent). */
static double metric_in(const char *text, const char *name) {
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(text, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* --devices 0,0 (two cpu plans sharing the threads): one request of 5
 * samples is one batch cut into shares of 3 and 2; the answer is the one-plan
 * server's, ciphertext for ciphertext, and decrypts to simulate; /v1/model
 * and /metrics say 2 plans, the batch counts once with its 5 samples. */
static void test_devices_equal_one_plan(void) {
    veil_server_options o;
    server_options(&o);
    o.backend_opts.threads = 2;
    CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&o.backend_opts, "0,0"), VEIL_OK);
    o.key_cache = 2;
    veil_server *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s2), VEIL_OK);
    const uint16_t port = veil_server_port(s2);
    size_t len = 0;
    uint8_t *body = encrypt_body(g_dir_a, 5, &len);
    char h[128];
    snprintf(h, sizeof h, "X-Veil-Key-Id: %s\r\n", g_id_a);
    http_res one, two, r;
    CU_ASSERT_EQUAL_FATAL(http_raw("POST", "/v1/infer", h, body, len, 1, 0, &one), 0);
    CU_ASSERT_EQUAL_FATAL(http_raw_port(port, "POST", "/v1/infer", h, body, len, 1, 0, &two), 0);
    expect(one.status, 200, &one, NULL, "one plan");
    expect(two.status, 200, &two, NULL, "two plans");
    veil_ct_batch *b1 = NULL, *b2 = NULL;
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize((const uint8_t *)one.body, one.body_len, &b1),
                    VEIL_OK);
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize((const uint8_t *)two.body, two.body_len, &b2),
                    VEIL_OK);
    CU_ASSERT_FATAL(b1 && b2);
    const size_t words =
        5 * veil_program_output_size(g_client->prog, 0) * veil_program_ct_words(g_client->prog);
    CU_ASSERT(memcmp(b1->data, b2->data, words * sizeof(uint64_t)) == 0);
    CU_ASSERT(check_result(g_dir_a, 0, 5, (const uint8_t *)two.body, two.body_len));
    CU_ASSERT_EQUAL(poll_status(port, "/v1/model", 200, &r), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"plans\":2"));
    http_res_free(&r);
    CU_ASSERT_EQUAL(poll_status(port, "/metrics", 200, &r), 200);
    CU_ASSERT_EQUAL(metric_in(r.body, "veil_backend_plans"), 2);
    CU_ASSERT_EQUAL(metric_in(r.body, "veil_backend_healthy"), 1);
    CU_ASSERT_EQUAL(metric_in(r.body, "veil_batch_samples_sum"), 5);
    CU_ASSERT_EQUAL(metric_in(r.body, "veil_batch_samples_count"), 1);
    http_res_free(&r);
    veil_ct_batch_free(b1);
    veil_ct_batch_free(b2);
    http_res_free(&one);
    http_res_free(&two);
    veil_serial_buffer_free(body, len);
    veil_server_stop(s2);
}

static void test_restart_keeps_keys(void) {
    veil_server_stop(g_srv);
    g_srv = NULL;
    CU_ASSERT_EQUAL_FATAL(start_server(), 0); /* new port, same keys dir */
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    /* The cache in the key dir is per URL: the new port has no entry, so
     * check with GET directly that the old id survived. */
    http_res r;
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", g_id_b);
    CU_ASSERT_EQUAL(http_get_status(path, &r), 200);
    http_res_free(&r);
    CU_ASSERT(roundtrip(g_dir_b, g_id_b, 2, 3) > 0);
}

static void test_connection_refused(void) {
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    ro.retries = 1;
    /* Port of a server we stop: nothing listens there any more. */
    veil_server_options o;
    server_options(&o);
    veil_server *s = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_server_start(&o, &s), VEIL_OK);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", veil_server_port(s));
    veil_server_stop(s);
    size_t ml;
    veil_status st = veil_remote_check_model(g_client, url, &ro, &ml);
    CU_ASSERT_EQUAL(st, VEIL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "connection refused"));
    CU_ASSERT_EQUAL(veil_remote_last_status(), 0);
    /* A wrong key id through the client: a named 404. */
    uint8_t b[1] = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    st = veil_remote_infer(g_url, "0123456789abcdef0123456789abcdef", b, 1, &ro, &out, &out_len,
                           NULL);
    CU_ASSERT_NOT_EQUAL(st, VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "404 unknown_key"));
    CU_ASSERT_EQUAL(veil_remote_last_status(), 404);
}

/* A hostile server: accepts connections on a loopback port and answers every
 * request "200, Content-Length: 2^40", then sends zeros until the client
 * hangs up. */
typedef struct flood {
    int fd;
    uint16_t port;
    int conns; /* answered connections */
} flood;

static void *flood_thread(void *arg) {
    flood *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) return NULL; /* closed: done */
        char req[4096];
        size_t n = 0;
        while (n < sizeof req - 1) { /* the request head */
            ssize_t got = recv(c, req + n, sizeof req - 1 - n, 0);
            if (got <= 0) break;
            n += (size_t)got;
            req[n] = 0;
            if (strstr(req, "\r\n\r\n")) break;
        }
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n";
        static const char zeros[65536];
        ssize_t w = send(c, head, strlen(head), MSG_NOSIGNAL);
        while (w > 0)
            w = send(c, zeros, sizeof zeros, MSG_NOSIGNAL);
        close(c);
        f->conns++;
    }
}

/* The client cuts off an answer larger than it can be: an inference answer
 * past o.max_answer_bytes, and the JSON answers of the key and model checks
 * past VEIL_REMOTE_JSON_MAX, each with an error naming the limit, not retried
 * (one connection each), instead of buffering what a hostile server sends. */
static void test_client_caps_answers(void) {
    flood f = {0};
    f.fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(f.fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(bind(f.fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(f.fd, 4) == 0 &&
                    getsockname(f.fd, (struct sockaddr *)&a, &al) == 0);
    f.port = ntohs(a.sin_port);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, flood_thread, &f), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", f.port);
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    CU_ASSERT_EQUAL(ro.max_answer_bytes, VEIL_REMOTE_ANSWER_MAX);
    ro.max_answer_bytes = 3u << 20;
    uint8_t body[16] = {0}, *out = NULL;
    size_t out_len = 0, bs = 0;
    CU_ASSERT_EQUAL(veil_remote_infer(url, "0123456789abcdef0123456789abcdef", body, sizeof body,
                                      &ro, &out, &out_len, &bs),
                    VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "larger than 3145728 bytes"));
    CU_ASSERT_PTR_NULL(out);
    size_t ms = 0;
    CU_ASSERT_EQUAL(veil_remote_check_model(g_client, url, &ro, &ms), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "larger than 1048576 bytes"));
    shutdown(f.fd, SHUT_RDWR);
    close(f.fd);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(f.conns, 2); /* not retried */
}

static void test_client_refusals(void) {
    /* Decrypting a batch under another key or for another model is refused. */
    veil_secret_key *ska = load_sk(g_dir_a), *skb = load_sk(g_dir_b);
    veil_ct_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_new(g_client->prog->params,
                                            veil_params_big_dim(g_client->prog->params),
                                            veil_program_sample_out_cts(g_client->prog), &b),
                          VEIL_OK);
    memcpy(b->model_fp, g_client->fp, sizeof g_client->fp); /* an input batch */
    veil_secret_key_fingerprint(ska, b->key_fp);
    size_t n;
    CU_ASSERT_EQUAL(veil_client_check_result(g_client, ska, b, &n), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "not results"));
    memcpy(b->model_fp, g_client->fp_out, sizeof g_client->fp_out);
    CU_ASSERT_EQUAL(veil_client_check_result(g_client, ska, b, &n), VEIL_OK);
    CU_ASSERT_EQUAL(veil_client_check_result(g_client, skb, b, &n), VEIL_ERR_PARAMS);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "another secret key"));
    b->model_fp[0] ^= 1;
    CU_ASSERT_EQUAL(veil_client_check_result(g_client, ska, b, &n), VEIL_ERR_PARAMS);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "another model"));
    veil_ct_batch_free(b);
    /* keygen refuses to overwrite a secret key */
    CU_ASSERT_EQUAL(veil_client_keygen(g_client, g_dir_a, 0, NULL), VEIL_ERR_IO);
    struct stat st;
    char skp[512];
    snprintf(skp, sizeof skp, "%s/secret.key", g_dir_a);
    CU_ASSERT_EQUAL(stat(skp, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    veil_secret_key_free(ska);
    veil_secret_key_free(skb);
    /* --force over a pair whose evaluation key was made read-only: refused
     * before any key is made, the secret key not replaced (it was, and the
     * pair then split: a new secret key beside the old evaluation key) */
    char dir[400], src[600], dst[600], ekp[600], ekn[620];
    snprintf(dir, sizeof dir, "%s/ro-keygen", g_tmp);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    snprintf(dst, sizeof dst, "%s/secret.key", dir);
    CU_ASSERT_EQUAL_FATAL(link(skp, dst), 0);
    snprintf(src, sizeof src, "%s/eval.key", g_dir_a);
    snprintf(ekp, sizeof ekp, "%s/eval.key", dir);
    CU_ASSERT_EQUAL_FATAL(link(src, ekp), 0);
    struct stat before, after;
    CU_ASSERT_EQUAL_FATAL(stat(ekp, &before), 0);
    CU_ASSERT_EQUAL_FATAL(chmod(ekp, 0444), 0);
    CU_ASSERT_EQUAL(veil_client_keygen(g_client, dir, 1, NULL), VEIL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "read-only"));
    CU_ASSERT(stat(dst, &after) == 0 && after.st_ino == st.st_ino); /* the same secret key */
    snprintf(ekn, sizeof ekn, "%s.new", ekp);
    CU_ASSERT(access(ekn, F_OK) != 0);
    CU_ASSERT_EQUAL(chmod(src, before.st_mode & 0777), 0); /* g_dir_a's, the same inode */
    veil_test_rm_rf(dir);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("server", suite_init, suite_clean);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_log_redacts_key_ids);
    VEIL_ADD_TEST(s, test_request_samples_rule);
    VEIL_ADD_TEST(s, test_keydir_servers_file);
    VEIL_ADD_TEST(s, test_info_endpoints);
    VEIL_ADD_TEST(s, test_keys_and_roundtrip);
    VEIL_ADD_TEST(s, test_concurrent_clients);
    VEIL_ADD_TEST(s, test_bad_requests);
    VEIL_ADD_TEST(s, test_ambiguous_length);
    VEIL_ADD_TEST(s, test_mask_past_width);
    VEIL_ADD_TEST(s, test_timeout_and_queue);
    VEIL_ADD_TEST(s, test_request_larger_than_batch);
    VEIL_ADD_TEST(s, test_compile_options_mismatch);
    VEIL_ADD_TEST(s, test_inflight_limit);
    VEIL_ADD_TEST(s, test_compute_longer_than_read_timeout);
    VEIL_ADD_TEST(s, test_connections_per_ip);
    VEIL_ADD_TEST(s, test_trickle_clients);
    VEIL_ADD_TEST(s, test_slowloris_evicts);
    VEIL_ADD_TEST(s, test_client_gone_frees_slot);
    VEIL_ADD_TEST(s, test_slow_bodies_evicted);
    VEIL_ADD_TEST(s, test_port_taken);
    VEIL_ADD_TEST(s, test_corrupted_key);
    VEIL_ADD_TEST(s, test_key_store_quota);
    VEIL_ADD_TEST(s, test_key_lifecycle);
    VEIL_ADD_TEST(s, test_key_spared_then_freed);
    VEIL_ADD_TEST(s, test_remote_delete_key);
    VEIL_ADD_TEST(s, test_remote_servers_read_only);
    VEIL_ADD_TEST(s, test_devices_equal_one_plan);
    VEIL_ADD_TEST(s, test_drain);
    VEIL_ADD_TEST(s, test_sigterm);
    VEIL_ADD_TEST(s, test_sigterm_drain_deadline);
    VEIL_ADD_TEST(s, test_restart_keeps_keys);
    VEIL_ADD_TEST(s, test_connection_refused);
    VEIL_ADD_TEST(s, test_client_refusals);
    VEIL_ADD_TEST(s, test_client_caps_answers);
    return veil_test_run();
}
