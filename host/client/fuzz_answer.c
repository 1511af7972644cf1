/* libFuzzer target: what `veil remote` reads of a server's answers before
 * the ciphertexts (whose deserializer fuzz_ct_batch fuzzes): veil-server's
 * JSON (key ids, fingerprints, error codes and messages: veil_json_str,
 * veil_http_error) and Triton's (a model configuration's compile options:
 * veil_triton_config_options; an inference answer's binary output framing:
 * veil_triton_output). A hostile or broken server must get an error or a
 * value inside the buffer given, never a crash or an over-read.
 *
 * Input: byte 0 picks the parser (low bit) and, for JSON, the output
 * buffer's size (the rest); for the Triton answer, bytes 1..4 are its
 * Inference-Header-Content-Length (little-endian; byte 0 bit 1: the header
 * is absent) and the rest is the body. Build: CC=clang cmake -DVEIL_FUZZ=ON;
 * run: build/host/fuzz_client_answer DIR (scripts/fuzz.sh writes seeds). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void json(const uint8_t *data, size_t size, size_t cap) {
    /* a body as on_body stores it: NUL-terminated past its bytes */
    char *body = malloc(size + 1), *out = malloc(cap);
    if (!body || !out) abort();
    memcpy(body, data, size);
    body[size] = 0;
    static const char *const keys[] = {"error",     "message",  "key_id",          "key_fp",
                                       "params_id", "model_fp", "compile_options", "backend"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        memset(out, 'x', cap);
        if (veil_json_str(body, keys[k], out, cap) == 0) VEIL_ASSERT(memchr(out, 0, cap) != NULL);
    }
    veil_http_resp r = {.status = 400 + (long)(size % 200), .body = (uint8_t *)body, .len = size};
    veil_error_clear();
    VEIL_ASSERT(veil_http_error("POST", "http://h/v1/infer", &r) != VEIL_OK);
    VEIL_ASSERT(veil_error_message()[0] != 0);
    char opts[1024];
    veil_error_clear();
    if (veil_triton_config_options(body, opts, sizeof opts) != VEIL_OK)
        VEIL_ASSERT(veil_error_message()[0] != 0);
    else
        VEIL_ASSERT(memchr(opts, 0, sizeof opts) != NULL);
    free(out);
    free(body);
}

static void triton_answer(const uint8_t *data, size_t size, int has_header) {
    if (size < 4) return;
    veil_http_resp r = {.status = 200};
    r.infer_header_len =
        (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    r.has_infer_header = has_header;
    r.len = size - 4;
    r.body = malloc(r.len + 1);
    if (!r.body) abort();
    memcpy(r.body, data + 4, r.len);
    r.body[r.len] = 0;
    uint8_t *out = NULL;
    size_t out_len = 0;
    veil_error_clear();
    if (veil_triton_output("http://h/v2/models/m/infer", "RESULT", &r, &out, &out_len) != VEIL_OK) {
        VEIL_ASSERT(out == NULL && r.body == NULL && veil_error_message()[0] != 0);
        return;
    }
    /* the element is the body's last out_len bytes, after its 4-byte length */
    VEIL_ASSERT(has_header && r.body == NULL && out_len + 4 <= size - 4 &&
                r.infer_header_len + 4 + out_len == size - 4);
    VEIL_ASSERT(memcmp(out, data + size - out_len, out_len) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1)
        triton_answer(data + 1, size - 1, !(data[0] & 2));
    else
        json(data + 1, size - 1, 1 + (data[0] >> 1)); /* 1..128 bytes */
    return 0;
}
