/* libFuzzer target: what veil-server reads from a client before any
 * evaluation — routes and key ids, evaluation-key uploads and infer batches —
 * checked against the program of models/tiny.h5 (VEIL_FUZZ_MODEL overrides).
 *
 * Input: byte 0 picks the parser (low 2 bits) and whether to recompute the
 * BLAKE2b checksum of the rest (bit 2), so that mutated headers and payloads
 * get past the checksum and reach the checks behind it; the rest is the body
 * (for routes: "METHOD\0PATH"). Every refusal must be a 4xx with a code and a
 * message; every acceptance must satisfy the invariants the worker relies on.
 * Build: CC=clang cmake -DVEIL_FUZZ=ON ...; run: build/host/fuzz_request DIR.
 *
 * Seeds: run with VEIL_FUZZ_REQUEST_SEEDS=DIR, the target writes its own
 * seeds into DIR and exits (scripts/fuzz.sh does it): the routes, and real
 * infer batches of the model (seeded and raw, one and two samples, under a
 * fixed secret key whose fingerprint mode 3 expects) with the checksum bit
 * set, so the fuzzer starts past the header checks; and an evaluation key's
 * header for the model's parameters (the key itself is megabytes: the
 * payload is fuzz_eval_key's). Without them it started from nothing and
 * rarely got past veil_serial_peek. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "veil/loader.h"
#include "veil/program_crypt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static veil_model *g_model;
static veil_program *g_prog;
static srv_program_info g_pi;
static uint8_t g_key_fp[VEIL_KEY_FP_BYTES];

/* DIR/NAME: the mode byte, then len bytes. */
static int write_seed(const char *dir, const char *name, uint8_t mode, const void *p, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int bad = !f || fputc(mode, f) == EOF || fwrite(p, 1, len, f) != len;
    if (f && fclose(f) != 0) bad = 1;
    if (bad) fprintf(stderr, "fuzz_request: cannot write %s\n", path);
    return bad;
}

/* A batch of the golden set's first `samples` samples, serialized seeded or
 * raw (the seed's masks drawn in veil_client_encrypt's order). */
static int write_batch(const char *dir, const veil_secret_key *sk, size_t samples, int seeded) {
    const veil_program *p = g_prog;
    const size_t lwe = veil_program_ct_words(p);
    const uint8_t mask_seed[VEIL_SEED_BYTES] = {(uint8_t)(samples + 16 * seeded)};
    veil_ct_batch *b = NULL;
    veil_encryptor *enc = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_status st = veil_ct_batch_new(p->params, g_pi.big_dim, samples * g_pi.in_cts, &b);
    if (!st) st = veil_encryptor_new(mask_seed, NULL, &enc);
    if (!st) {
        b->mask_width = p->input_width;
        veil_secret_key_fingerprint(sk, b->key_fp);
        memcpy(b->model_fp, g_pi.fp, VEIL_PROGRAM_FP_BYTES);
    }
    for (size_t s = 0; !st && s < samples; s++) {
        size_t off = 0;
        for (uint32_t i = 0; !st && i < p->n_inputs; i++) {
            const size_t sz = veil_program_input_size(p, i);
            st = veil_program_encrypt(p, enc, sk, i, g_model->golden.inputs[i] + s * sz, 1,
                                      b->data + (s * g_pi.in_cts + off) * lwe);
            off += sz;
        }
    }
    if (!st)
        st = seeded ? veil_ct_batch_serialize_seeded(b, mask_seed, &buf, &len)
                    : veil_ct_batch_serialize(b, &buf, &len);
    int bad = st != VEIL_OK;
    if (bad) fprintf(stderr, "fuzz_request: batch: %s\n", veil_error_message());
    /* a seed the parser refuses would start the fuzzer short of its checks */
    veil_ct_batch *got = NULL;
    size_t n = 0;
    srv_error e = {0};
    if (!bad && srv_parse_infer_batch(&g_pi, buf, len, g_key_fp, &got, &n, &e)) {
        fprintf(stderr, "fuzz_request: seed batch refused: %s: %s\n", e.code, e.message);
        bad = 1;
    }
    veil_ct_batch_free(got);
    for (int mode = 2; !bad && mode <= 3; mode++) {
        char name[64];
        snprintf(name, sizeof name, "infer-%zu-%s-mode%d", samples, seeded ? "seeded" : "raw",
                 mode);
        bad = write_seed(dir, name, (uint8_t)(mode | 4), buf, len);
    }
    veil_serial_buffer_free(buf, len);
    veil_encryptor_free(enc);
    veil_ct_batch_free(b);
    return bad;
}

static int write_seeds(const char *dir, veil_secret_key *sk) {
    int bad = g_model->golden.count < 2;
    static const char *const routes[][2] = {
        {"GET", "/v1/health"},
        {"GET", "/v1/model"},
        {"HEAD", "/metrics"},
        {"POST", "/v1/keys"},
        {"POST", "/v1/infer"},
        {"GET", "/v1/keys/0123456789abcdef0123456789abcdef"},
        {"DELETE", "/v1/keys/0123456789abcdef0123456789abcdef"}};
    for (size_t i = 0; !bad && i < sizeof routes / sizeof *routes; i++) {
        char name[32], r[96];
        snprintf(name, sizeof name, "route-%zu", i);
        const size_t ml = strlen(routes[i][0]), pl = strlen(routes[i][1]);
        memcpy(r, routes[i][0], ml + 1); /* "METHOD\0PATH" */
        memcpy(r + ml + 1, routes[i][1], pl);
        bad = write_seed(dir, name, 0, r, ml + 1 + pl);
    }
    for (size_t samples = 1; !bad && samples <= 2; samples++)
        for (int seeded = 0; !bad && seeded < 2; seeded++)
            bad = write_batch(dir, sk, samples, seeded);
    /* an evaluation key's header (and checksum) for the program's
     * parameters: past the kind and parameter checks, to the sizes */
    veil_eval_key *ek = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    const uint8_t ms[VEIL_SEED_BYTES] = {1}, ns[VEIL_SEED_BYTES] = {2};
    if (!bad && (veil_program_eval_key_new(g_prog, sk, VEIL_KEY_STANDARD, ms, ns, &ek) ||
                 veil_eval_key_serialize(ek, &buf, &len))) {
        fprintf(stderr, "fuzz_request: eval key: %s\n", veil_error_message());
        bad = 1;
    }
    if (!bad) {
        uint8_t head[VEIL_SERIAL_HEADER_BYTES + VEIL_SERIAL_CHECKSUM_BYTES];
        memcpy(head, buf, VEIL_SERIAL_HEADER_BYTES);
        memcpy(head + VEIL_SERIAL_HEADER_BYTES, buf + len - VEIL_SERIAL_CHECKSUM_BYTES,
               VEIL_SERIAL_CHECKSUM_BYTES);
        bad = write_seed(dir, "key-header", 1, head, sizeof head);
    }
    veil_serial_buffer_free(buf, len);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    return bad;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *path = getenv("VEIL_FUZZ_MODEL");
#ifdef VEIL_FUZZ_MODEL_PATH
    if (!path) path = VEIL_FUZZ_MODEL_PATH;
#endif
    veil_compile_options o;
    veil_compile_options_default(&o);
    if (!path || sodium_init() < 0 || veil_model_load(path, &g_model) ||
        veil_program_compile(g_model, &o, &g_prog) || !g_prog->params) {
        fprintf(stderr, "fuzz_request: cannot load %s: %s\n", path ? path : "(no model)",
                veil_error_message());
        abort();
    }
    srv_program_info_init(&g_pi, g_prog, 8, SRV_DEFAULT_MAX_BODY);
    /* mode 3's key: a fixed secret key of the program, so that the seeds'
     * batches match it */
    static const uint8_t k_seed[VEIL_SEED_BYTES] = {7};
    veil_secret_key *sk = NULL;
    if (veil_program_keygen(g_prog, k_seed, &sk)) {
        fprintf(stderr, "fuzz_request: keygen: %s\n", veil_error_message());
        abort();
    }
    veil_secret_key_fingerprint(sk, g_key_fp);
    const char *seeds = getenv("VEIL_FUZZ_REQUEST_SEEDS");
    if (seeds) exit(write_seeds(seeds, sk));
    veil_secret_key_free(sk);
    return 0;
}

static void check_error(const srv_error *e) {
    VEIL_ASSERT(e->status == 400 || e->status == 403 || e->status == 404 || e->status == 405 ||
                e->status == 413);
    VEIL_ASSERT(e->code[0] != 0 && e->message[0] != 0);
    char esc[2 * sizeof e->message];
    srv_json_escape(e->message, esc, sizeof esc);
    for (const char *p = esc; *p; p++)
        VEIL_ASSERT((unsigned char)*p >= 0x20);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const unsigned mode = data[0] & 3, fix = data[0] & 4;
    size_t len = size - 1;
    uint8_t *body = malloc(len + 1);
    if (!body) return 0;
    memcpy(body, data + 1, len);
    body[len] = 0;
    if (fix && len > VEIL_SERIAL_CHECKSUM_BYTES)
        crypto_generichash(body + len - VEIL_SERIAL_CHECKSUM_BYTES, VEIL_SERIAL_CHECKSUM_BYTES,
                           body, len - VEIL_SERIAL_CHECKSUM_BYTES, NULL, 0);
    srv_error e = {0};
    if (mode == 0) {
        /* "METHOD\0PATH" */
        const char *method = (const char *)body;
        size_t ml = strlen(method);
        const char *path = ml < len ? (const char *)body + ml + 1 : "";
        char id[VEIL_KEY_ID_CHARS + 1] = {0};
        srv_route r = srv_route_parse(method, path, id, &e);
        if (r == SRV_NOT_FOUND) check_error(&e);
        if (r == SRV_KEY_GET || r == SRV_KEY_DELETE)
            VEIL_ASSERT(veil_key_id_valid(id) && strchr(id, '/') == NULL);
    } else if (mode == 1) {
        veil_eval_key *ek = NULL;
        if (srv_parse_key_upload(&g_pi, body, len, &ek, &e))
            check_error(&e);
        else
            VEIL_ASSERT(ek && ek->params == g_prog->params);
        veil_eval_key_free(ek);
    } else {
        veil_ct_batch *b = NULL;
        size_t samples = 0;
        /* mode 2: any key; mode 3: the key fingerprint must match a fixed one */
        if (srv_parse_infer_batch(&g_pi, body, len, mode == 3 ? g_key_fp : NULL, &b, &samples,
                                  &e)) {
            check_error(&e);
            VEIL_ASSERT(b == NULL);
        } else {
            VEIL_ASSERT(b && samples >= 1 && samples <= g_pi.max_samples);
            VEIL_ASSERT(b->count == samples * g_pi.in_cts && b->dim == g_pi.big_dim);
            VEIL_ASSERT(!memcmp(b->model_fp, g_pi.fp, VEIL_PROGRAM_FP_BYTES));
            VEIL_ASSERT(mode != 3 || !memcmp(b->key_fp, g_key_fp, VEIL_KEY_FP_BYTES));
        }
        veil_ct_batch_free(b);
    }
    free(body);
    return 0;
}
