// LABELS: server slow
// LINKS: veil_server veil_client
// RUNS: veil-server
/* test_server_soak.c — the veil-server binary (cpu backend, models/tiny.h5)
 * for several minutes (VEIL_SOAK_SECONDS, default 240) under concurrent
 * loopback traffic, restarted in the middle (SIGTERM, then a new server on
 * the same port while the old one drains):
 *   good clients (3 keys, a key cache of 2: plans are evicted and reloaded)
 *   encrypt golden samples, infer through veil_remote_* (which retries
 *   refused connections and 503s) and decrypt: every request must end
 *   correct, retried when needed (a 404 re-uploads the key);
 *   bad clients send garbage, truncated and bit-flipped batches, other
 *   clients' batches, unknown ids and paths, secret keys, oversized and
 *   stalled bodies: every answer must be the expected 4xx (or 503 while
 *   restarting), never a 200 or a 500.
 * Afterwards: both servers exited 0 when told to (no crash), their RSS grew
 * by a bounded amount after warm-up, every stored key verifies (none
 * quarantined, no temporary file left). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "server_common.h"
#include "testutil.h"
#include "veil/client.h"
#include "veil/exec.h"
#include "veil/keystore.h"

enum { N_GOOD = 3, N_BAD = 2 };

#if defined(__SANITIZE_THREAD__)
#define VEIL_SOAK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VEIL_SOAK_TSAN 1
#endif
#endif
#ifndef VEIL_SOAK_TSAN
#define VEIL_SOAK_TSAN 0
#endif

static char g_tmp[256], g_keys[300], g_dirs[N_GOOD][300], g_bin[1200];
static char g_ids[N_GOOD][VEIL_KEY_ID_CHARS + 1];
static veil_client *g_client;
static uint16_t g_port;
static char g_url[64];
static atomic_int g_stop;
static uint8_t *g_ek_head; /* the first bytes of an evaluation key (wrong kind) */
static size_t g_ek_head_len;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the server processes -------------------------------------------------------- */

/* Reads a server's stderr until it exits (a full pipe would block the
 * server): its own lines ("veil-server: ...") are copied to ours, the rest
 * (libmicrohttpd's notes on the bad clients' cut connections) counted. */
static atomic_long g_mhd_lines;

static void *stderr_copier(void *p) {
    FILE *f = fdopen((int)(intptr_t)p, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "veil-server", 11))
            fputs(line, stderr);
        else
            atomic_fetch_add(&g_mhd_lines, 1);
    }
    if (f) fclose(f);
    return NULL;
}

static pid_t start_server(pthread_t *copier) {
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", g_port);
    const char *args[] = {"--model",
                          veil_test_path("models/tiny.h5"),
                          "--backend",
                          "cpu",
                          "--listen",
                          listen,
                          "--keys-dir",
                          g_keys,
                          "--key-cache",
                          "2",
                          "--max-wait-ms",
                          "20",
                          "--max-request-samples",
                          "8",
                          "--read-timeout-ms",
                          "5000",
                          NULL};
    uint16_t port = 0;
    int errfd = -1;
    pid_t pid = spawn_server(g_bin, args, &port, &errfd);
    if (pid > 0 && !g_port) g_port = port;
    if (pid > 0 && port != g_port) { /* did not start (port not yet free) */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(errfd);
        return -1;
    }
    if (pid > 0 && pthread_create(copier, NULL, stderr_copier, (void *)(intptr_t)errfd) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(errfd);
        return -1;
    }
    return pid;
}

static long rss_kb(pid_t pid) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

/* ---- good clients -------------------------------------------------------------- */

static const int64_t *golden(size_t s0) {
    const veil_program *p = g_client->prog;
    return g_client->model->golden.inputs[0] + s0 * veil_program_input_size(p, 0);
}

typedef struct good_arg {
    int idx;
    uint64_t seed;
    long requests, retried, wrong, failed;
} good_arg;

static uint64_t next_rand(uint64_t *s) { /* splitmix64: one stream per thread */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* One good request, tried until it succeeds (at most 10 times): 1 correct,
 * 0 wrong result, -1 never succeeded. */
static int good_request(good_arg *a, veil_secret_key *sk, const veil_remote_options *ro) {
    const veil_program *p = g_client->prog;
    const size_t golden_n = g_client->model->golden.count;
    const size_t n = 1 + (size_t)(next_rand(&a->seed) % 3);
    const size_t s0 = (size_t)(next_rand(&a->seed) % (golden_n - n + 1));
    const int64_t *in[1] = {golden(s0)};
    uint8_t *body = NULL;
    size_t len = 0;
    if (veil_client_encrypt(g_client, sk, in, n, &body, &len) != VEIL_OK) return -1;
    int result = -1;
    for (int attempt = 0; attempt < 10 && result < 0; attempt++) {
        if (attempt) a->retried++;
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        veil_status st =
            veil_remote_infer(g_url, g_ids[a->idx], body, len, ro, &resp, &resp_len, NULL);
        if (st != VEIL_OK) {
            fprintf(stderr, "good client %d: %s\n", a->idx, veil_error_message());
            int up;
            if (veil_remote_last_status() == 404)
                veil_remote_ensure_key(g_url, g_dirs[a->idx], ro, g_ids[a->idx], &up);
            else
                usleep(500000);
            continue;
        }
        veil_ct_batch *b = NULL;
        int64_t **outs = NULL;
        size_t got = 0;
        result = 0;
        if (veil_ct_batch_deserialize(resp, resp_len, &b) == VEIL_OK &&
            veil_client_decrypt(g_client, sk, b, &got, &outs) == VEIL_OK && got == n) {
            int64_t *sim = malloc(n * veil_program_output_size(p, 0) * sizeof(int64_t));
            int64_t *souts[1] = {sim};
            if (veil_program_simulate(p, in, n, souts, NULL, NULL) == VEIL_OK &&
                !memcmp(sim, outs[0], n * veil_program_output_size(p, 0) * sizeof(int64_t)))
                result = 1;
            free(sim);
        }
        veil_client_outputs_free(g_client, outs);
        veil_ct_batch_free(b);
        free(resp);
    }
    veil_serial_buffer_free(body, len);
    return result;
}

static void *good_client(void *p) {
    good_arg *a = p;
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    ro.retries = 8; /* 0.2 .. 25.6 s of backoff: longer than a restart */
    ro.timeout_s = 120;
    veil_secret_key *sk = NULL;
    if (veil_client_load_secret_key(g_client, g_dirs[a->idx], &sk) != VEIL_OK) {
        a->failed++;
        return NULL;
    }
    while (!atomic_load(&g_stop)) {
        a->requests++;
        int r = good_request(a, sk, &ro);
        if (r == 0) a->wrong++;
        if (r < 0) a->failed++;
    }
    veil_secret_key_free(sk);
    return NULL;
}

/* ---- bad clients --------------------------------------------------------------- */

typedef struct bad_arg {
    char id[VEIL_KEY_ID_CHARS + 1]; /* key 0's id (good client 0 may renew its own) */
    uint64_t seed;
    long requests, refused, unexpected;
    uint8_t *good; /* a valid 1-sample batch under key 0, and one under key 1 */
    size_t good_len;
    uint8_t *other;
    size_t other_len;
    uint8_t *secret;
    size_t secret_len;
} bad_arg;

static void *bad_client(void *p) {
    bad_arg *a = p;
    uint8_t junk[4096];
    while (!atomic_load(&g_stop)) {
        a->requests++;
        char h[128];
        snprintf(h, sizeof h, "X-Veil-Key-Id: %s\r\n", a->id);
        const int kind = (int)(next_rand(&a->seed) % 10);
        http_res r = {0};
        int want = 400, rc = -1;
        uint8_t *buf = NULL;
        switch (kind) {
        case 0: { /* random bytes */
            size_t n = 1 + next_rand(&a->seed) % sizeof junk;
            for (size_t i = 0; i < n; i++)
                junk[i] = (uint8_t)next_rand(&a->seed);
            rc = http_raw_port(g_port, "POST", "/v1/infer", h, junk, n, 1, 0, &r);
            break;
        }
        case 1: /* truncated */
            rc = http_raw_port(g_port, "POST", "/v1/infer", h, a->good,
                               1 + next_rand(&a->seed) % (a->good_len - 1), 1, 0, &r);
            break;
        case 2: /* one byte flipped */
            buf = malloc(a->good_len);
            memcpy(buf, a->good, a->good_len);
            buf[next_rand(&a->seed) % a->good_len] ^= (uint8_t)(1 + next_rand(&a->seed) % 255);
            rc = http_raw_port(g_port, "POST", "/v1/infer", h, buf, a->good_len, 1, 0, &r);
            break;
        case 3: /* another client's batch under key 0's id */
            want = 403;
            rc = http_raw_port(g_port, "POST", "/v1/infer", h, a->other, a->other_len, 1, 0, &r);
            break;
        case 4: /* an unknown key id */
            want = 404;
            rc = http_raw_port(g_port, "POST", "/v1/infer",
                               "X-Veil-Key-Id: 00000000000000000000000000000000\r\n", a->good,
                               a->good_len, 1, 0, &r);
            break;
        case 5: /* an unknown path */
            want = 404;
            rc = http_raw_port(g_port, "GET", "/v1/../etc/passwd", NULL, NULL, 0, 0, 0, &r);
            break;
        case 6: /* a secret key, as an upload */
            rc =
                http_raw_port(g_port, "POST", "/v1/keys", NULL, a->secret, a->secret_len, 1, 0, &r);
            break;
        case 7: /* an evaluation key's header as a batch */
            rc = http_raw_port(g_port, "POST", "/v1/infer", h, g_ek_head, g_ek_head_len, 1, 0, &r);
            break;
        case 8: /* 100 MB announced */
            want = 413;
            rc = http_raw_port(g_port, "POST", "/v1/infer", h, NULL, 0, 0, (size_t)100 << 20, &r);
            break;
        case 9: { /* stalled: headers and half a body, then gone */
            want = 0;
            int fd = conn_open(g_port);
            if (fd < 0) {
                a->refused++;
                break;
            }
            char head[256];
            int hn = snprintf(head, sizeof head,
                              "POST /v1/infer HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n",
                              h, a->good_len);
            send(fd, head, (size_t)hn, MSG_NOSIGNAL);
            send(fd, a->good, a->good_len / 2, MSG_NOSIGNAL);
            usleep(100000);
            close(fd);
            break;
        }
        }
        free(buf);
        if (want && rc != 0) {
            a->refused++; /* restarting: refused or closed */
        } else if (want && r.status != want && r.status != 503) {
            a->unexpected++;
            fprintf(stderr, "bad client, case %d: got %d, want %d: %s\n", kind, r.status, want,
                    r.body ? r.body : "");
        }
        http_res_free(&r);
        if (rc != 0 && want) usleep(100000);
    }
    return NULL;
}

/* ---- the run ------------------------------------------------------------------- */

/* RSS after warm-up and at the end of one server's life. */
typedef struct rss_track {
    long warm, end, peak;
} rss_track;

/* Samples the server's RSS each second for `seconds`; the first third is
 * warm-up (keys loaded, caches filled): warm is the peak after it... up to
 * two thirds, end the peak of the last third. 0 when the server died. */
static int watch(pid_t pid, double seconds, rss_track *t) {
    const double t0 = now_s();
    memset(t, 0, sizeof *t);
    while (now_s() - t0 < seconds) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "veil-server died: status %d\n", status);
            return 0;
        }
        const double f = (now_s() - t0) / seconds;
        long kb = rss_kb(pid);
        if (kb > t->peak) t->peak = kb;
        if (f >= 1.0 / 3 && f < 2.0 / 3 && kb > t->warm) t->warm = kb;
        if (f >= 2.0 / 3 && kb > t->end) t->end = kb;
        sleep(1);
    }
    return 1;
}

static void test_soak(void) {
    const char *env = getenv("VEIL_SOAK_SECONDS");
    const double total = env ? atof(env) : 240;
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    pthread_t copier1, copier2;
    pid_t s1 = start_server(&copier1);
    CU_ASSERT_FATAL(s1 > 0 && g_port != 0);
    snprintf(g_url, sizeof g_url, "http://127.0.0.1:%u", g_port);
    for (int i = 0; i < N_GOOD; i++) {
        int up;
        CU_ASSERT_EQUAL_FATAL(veil_remote_ensure_key(g_url, g_dirs[i], &ro, g_ids[i], &up),
                              VEIL_OK);
    }
    /* Bodies for the bad clients. */
    veil_secret_key *sk0 = NULL, *sk1 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_client_load_secret_key(g_client, g_dirs[0], &sk0), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_client_load_secret_key(g_client, g_dirs[1], &sk1), VEIL_OK);
    const int64_t *in[1] = {golden(0)};
    bad_arg bad[N_BAD];
    memset(bad, 0, sizeof bad);
    char skp[512], ekp[512];
    snprintf(skp, sizeof skp, "%s/secret.key", g_dirs[2]);
    snprintf(ekp, sizeof ekp, "%s/eval.key", g_dirs[2]);
    size_t ekn = 0;
    uint8_t *ek = (uint8_t *)veil_test_read_file(ekp, &ekn);
    CU_ASSERT_FATAL(ek && ekn > 4096);
    g_ek_head = ek;
    g_ek_head_len = 4096;
    for (int i = 0; i < N_BAD; i++) {
        bad[i].seed = veil_test_rand();
        memcpy(bad[i].id, g_ids[0], sizeof bad[i].id);
        CU_ASSERT_EQUAL_FATAL(
            veil_client_encrypt(g_client, sk0, in, 1, &bad[i].good, &bad[i].good_len), VEIL_OK);
        CU_ASSERT_EQUAL_FATAL(
            veil_client_encrypt(g_client, sk1, in, 1, &bad[i].other, &bad[i].other_len), VEIL_OK);
        bad[i].secret = (uint8_t *)veil_test_read_file(skp, &bad[i].secret_len);
        CU_ASSERT_FATAL(bad[i].secret != NULL);
    }
    veil_secret_key_free(sk0);
    veil_secret_key_free(sk1);

    good_arg good[N_GOOD];
    pthread_t gth[N_GOOD], bth[N_BAD];
    for (int i = 0; i < N_GOOD; i++) {
        good[i] = (good_arg){.idx = i, .seed = veil_test_rand()};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&gth[i], NULL, good_client, &good[i]), 0);
    }
    for (int i = 0; i < N_BAD; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&bth[i], NULL, bad_client, &bad[i]), 0);

    /* First half, a restart (SIGTERM; the replacement binds the port while
     * the old one drains), second half. */
    rss_track r1, r2;
    int alive1 = watch(s1, total / 2, &r1);
    CU_ASSERT(alive1);
    kill(s1, SIGTERM);
    const double t_restart = now_s();
    pid_t s2 = -1;
    for (int i = 0; i < 50 && s2 <= 0; i++) { /* the port is free as soon as s1 drains */
        s2 = start_server(&copier2);
        if (s2 <= 0) usleep(100000);
    }
    CU_ASSERT_FATAL(s2 > 0);
    printf("restart: replacement listening %.2f s after SIGTERM\n", now_s() - t_restart);
    int st1 = -1;
    CU_ASSERT_EQUAL(wait_exit(s1, 120, &st1), 0);
    CU_ASSERT(WIFEXITED(st1) && WEXITSTATUS(st1) == 0);
    int alive2 = watch(s2, total / 2, &r2);
    CU_ASSERT(alive2);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < N_GOOD; i++)
        pthread_join(gth[i], NULL);
    for (int i = 0; i < N_BAD; i++)
        pthread_join(bth[i], NULL);
    kill(s2, SIGTERM);
    int st2 = -1;
    CU_ASSERT_EQUAL(wait_exit(s2, 120, &st2), 0);
    CU_ASSERT(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
    pthread_join(copier1, NULL);
    pthread_join(copier2, NULL);

    long reqs = 0, retried = 0, wrong = 0, failed = 0, breqs = 0, refused = 0, unexpected = 0;
    for (int i = 0; i < N_GOOD; i++) {
        reqs += good[i].requests;
        retried += good[i].retried;
        wrong += good[i].wrong;
        failed += good[i].failed;
    }
    for (int i = 0; i < N_BAD; i++) {
        breqs += bad[i].requests;
        refused += bad[i].refused;
        unexpected += bad[i].unexpected;
    }
    printf("soak %.0f s: %ld good requests (%ld retries, %ld wrong, %ld never succeeded), %ld bad "
           "requests (%ld refused while restarting, %ld unexpected answers)\n",
           total, reqs, retried, wrong, failed, breqs, refused, unexpected);
    printf("libmicrohttpd logged %ld lines (cut connections)\n", atomic_load(&g_mhd_lines));
    printf("RSS MiB, first server: warm %.0f, end %.0f, peak %.0f; second: warm %.0f, end %.0f, "
           "peak %.0f\n",
           r1.warm / 1024.0, r1.end / 1024.0, r1.peak / 1024.0, r2.warm / 1024.0, r2.end / 1024.0,
           r2.peak / 1024.0);
    CU_ASSERT(reqs > N_GOOD);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(unexpected, 0);
    /* Bounded growth after warm-up: a leak of even a few KiB per request
     * would pass this over minutes only if tiny; the plans themselves are
     * hundreds of MiB and already counted in warm. */
#if VEIL_SOAK_TSAN
    /* make tsan: ThreadSanitizer's shadow memory and allocator grow the RSS
     * with every byte touched (1.8 -> 3.3 GiB in 60 s, no leak: the same run
     * without TSan stays flat), so the bound says nothing there. */
    printf("RSS bound not checked: ThreadSanitizer build\n");
#else
    CU_ASSERT(r1.end <= r1.warm + r1.warm / 5 + 65536);
    CU_ASSERT(r2.end <= r2.warm + r2.warm / 5 + 65536);
#endif
    /* Keys intact: every stored key verifies; nothing quarantined or half
     * written. */
    veil_keystore *ks = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_keystore_open(g_keys, &ks), VEIL_OK);
    DIR *d = opendir(g_keys);
    size_t keys = 0, other = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        const char *dot = strchr(e->d_name, '.');
        if (dot && !strcmp(dot, ".vek") && dot - e->d_name == VEIL_KEY_ID_CHARS) {
            char id[VEIL_KEY_ID_CHARS + 1];
            memcpy(id, e->d_name, VEIL_KEY_ID_CHARS);
            id[VEIL_KEY_ID_CHARS] = 0;
            CU_ASSERT_EQUAL(veil_keystore_verify(ks, id, NULL), VEIL_OK);
            keys++;
        } else {
            fprintf(stderr, "unexpected file in the keys dir: %s\n", e->d_name);
            other++;
        }
    }
    if (d) closedir(d);
    veil_keystore_free(ks);
    printf("keys dir: %zu keys verified, %zu other files\n", keys, other);
    CU_ASSERT_EQUAL(keys, N_GOOD);
    CU_ASSERT_EQUAL(other, 0);
    for (int i = 0; i < N_BAD; i++) {
        veil_serial_buffer_free(bad[i].good, bad[i].good_len);
        veil_serial_buffer_free(bad[i].other, bad[i].other_len);
        sodium_memzero(bad[i].secret, bad[i].secret_len);
        free(bad[i].secret);
    }
    free(ek);
}

static int suite_init(void) {
    if (sodium_init() < 0) return -1;
    if (server_binary(g_bin, sizeof g_bin) != 0) {
        fprintf(stderr, "no veil-server binary at %s\n", g_bin);
        return -1;
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/veil-test-soak-XXXXXX");
    if (!mkdtemp(g_tmp)) return -1;
    snprintf(g_keys, sizeof g_keys, "%s/keys", g_tmp);
    if (veil_client_open(veil_test_path("models/tiny.h5"), NULL, &g_client) != VEIL_OK) {
        fprintf(stderr, "client open: %s\n", veil_error_message());
        return -1;
    }
    for (int i = 0; i < N_GOOD; i++) {
        snprintf(g_dirs[i], sizeof g_dirs[i], "%s/client-%d", g_tmp, i);
        veil_keygen_info info;
        if (veil_client_keygen(g_client, g_dirs[i], 0, &info) != VEIL_OK) {
            fprintf(stderr, "keygen: %s\n", veil_error_message());
            return -1;
        }
    }
    return 0;
}

static int suite_clean(void) {
    veil_client_free(g_client);
    veil_test_rm_rf(g_tmp);
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("server_soak", suite_init, suite_clean);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_soak);
    return veil_test_run();
}
