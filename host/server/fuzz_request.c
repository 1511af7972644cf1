/* libFuzzer target: what veil-server reads from a client before any
 * evaluation — routes and key ids, evaluation-key uploads and infer batches —
 * checked against the program of models/tiny.h5 (VEIL_FUZZ_MODEL overrides).
 *
 * Input: byte 0 picks the parser (low 2 bits) and whether to recompute the
 * BLAKE2b checksum of the rest (bit 2), so that mutated headers and payloads
 * get past the checksum and reach the checks behind it; the rest is the body
 * (for routes: "METHOD\0PATH"). Every refusal must be a 4xx with a code and a
 * message; every acceptance must satisfy the invariants the worker relies on.
 * Build: CC=clang cmake -DVEIL_FUZZ=ON ...; run: build/host/fuzz_request DIR. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "veil/loader.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static veil_model *g_model;
static veil_program *g_prog;
static srv_program_info g_pi;
static uint8_t g_key_fp[VEIL_KEY_FP_BYTES];

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
        if (r == SRV_KEY_GET) VEIL_ASSERT(veil_key_id_valid(id) && strchr(id, '/') == NULL);
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
