/* request.c — route parsing and validation of uploads (see request.h). */
#include "request.h"
#include "veil/program_crypt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_fail(srv_error *e, int status, const char *code, const char *fmt, ...) {
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status;
}

srv_route srv_route_parse(const char *method, const char *path, char key_id[VEIL_KEY_ID_CHARS + 1],
                          srv_error *e) {
    const int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    const int post = !strcmp(method, "POST");
    static const struct {
        const char *path;
        srv_route route;
        int is_post;
    } fixed[] = {
        {"/v1/health", SRV_HEALTH, 0},  {"/v1/model", SRV_MODEL, 0}, {"/metrics", SRV_METRICS, 0},
        {"/v1/keys", SRV_KEYS_POST, 1}, {"/v1/infer", SRV_INFER, 1},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (strcmp(path, fixed[i].path)) continue;
        if (fixed[i].is_post ? post : get) return fixed[i].route;
        srv_fail(e, 405, "method_not_allowed", "%s %s: use %s", method, path,
                 fixed[i].is_post ? "POST" : "GET");
        return SRV_NOT_FOUND;
    }
    static const char kp[] = "/v1/keys/";
    if (!strncmp(path, kp, sizeof kp - 1)) {
        const char *id = path + sizeof kp - 1;
        const int del = !strcmp(method, "DELETE");
        if (!get && !del) {
            srv_fail(e, 405, "method_not_allowed", "%s /v1/keys/<id>: use GET or DELETE", method);
            return SRV_NOT_FOUND;
        }
        if (!veil_key_id_valid(id)) {
            srv_fail(e, 404, "unknown_key", "/v1/keys/<id>: not a key id (32 lower-case hex)");
            return SRV_NOT_FOUND;
        }
        memcpy(key_id, id, VEIL_KEY_ID_CHARS + 1);
        return del ? SRV_KEY_DELETE : SRV_KEY_GET;
    }
    srv_fail(e, 404, "not_found",
             "no such path (see GET /v1/model, POST /v1/keys, POST /v1/infer)");
    return SRV_NOT_FOUND;
}

void srv_program_info_init(srv_program_info *pi, const veil_program *prog, size_t max_samples,
                           size_t max_decoded) {
    memset(pi, 0, sizeof *pi);
    pi->prog = prog;
    veil_program_fingerprint(prog, pi->fp);
    veil_program_output_fingerprint(pi->fp, pi->fp_out);
    pi->in_cts = veil_program_sample_in_cts(prog);
    pi->out_cts = veil_program_sample_out_cts(prog);
    pi->big_dim = prog->params ? veil_params_big_dim(prog->params) : 0;
    pi->max_samples = veil_deploy_request_samples(prog, max_samples, max_decoded);
}

static const char *kind_name(veil_serial_kind k) {
    switch (k) {
    case VEIL_SERIAL_SECRET_KEY:
        return "a secret key";
    case VEIL_SERIAL_EVAL_KEY:
        return "an evaluation key";
    case VEIL_SERIAL_CT_BATCH:
        return "a ciphertext batch";
    case VEIL_SERIAL_CT_SEEDED:
        return "a seeded ciphertext batch";
    }
    return "unknown";
}

int srv_parse_key_upload(const srv_program_info *pi, const uint8_t *body, size_t len,
                         veil_eval_key **out, srv_error *e) {
    veil_serial_kind kind;
    const veil_params *params;
    if (!body || len == 0)
        return srv_fail(e, 400, "malformed_key",
                        "body: empty, expected an evaluation key (VEILEK01, eval.key)");
    if (veil_serial_peek(body, len, &kind, &params) != VEIL_OK)
        return srv_fail(e, 400, "malformed_key", "body: %s", veil_error_message());
    if (kind == VEIL_SERIAL_SECRET_KEY)
        return srv_fail(e, 400, SRV_SECRET_KEY_REFUSED,
                        "body is a SECRET key file (VEILSK01): it never leaves the client; upload "
                        "the evaluation key (eval.key) instead. Nothing was stored.");
    if (kind != VEIL_SERIAL_EVAL_KEY)
        return srv_fail(e, 400, "wrong_kind", "body is %s, expected an evaluation key (VEILEK01)",
                        kind_name(kind));
    if (params != pi->prog->params)
        return srv_fail(e, 400, "params_mismatch",
                        "evaluation key is for parameter set %s, this model runs %s", params->id,
                        pi->prog->params->id);
    veil_eval_key *ek;
    if (veil_eval_key_deserialize(body, len, VEIL_KEY_STANDARD, &ek) != VEIL_OK)
        return srv_fail(e, 400, "malformed_key", "evaluation key: %s", veil_error_message());
    /* a key set for another partition list (issue 11): refused before it is
     * stored, naming both lists */
    if (veil_program_check_eval_key(pi->prog, ek) != VEIL_OK) {
        veil_eval_key_free(ek);
        return srv_fail(e, 400, "params_mismatch", "%s", veil_error_message());
    }
    *out = ek;
    return 0;
}

int srv_parse_infer_batch(const srv_program_info *pi, const uint8_t *body, size_t len,
                          const uint8_t *key_fp, veil_ct_batch **out, size_t *samples,
                          srv_error *e) {
    veil_serial_kind kind;
    const veil_params *params;
    if (!body || len == 0)
        return srv_fail(e, 400, "malformed_batch",
                        "body: empty, expected a ciphertext batch (VEILCT01 or VEILCS01)");
    if (veil_serial_peek(body, len, &kind, &params) != VEIL_OK)
        return srv_fail(e, 400, "malformed_batch", "body: %s", veil_error_message());
    if (kind == VEIL_SERIAL_SECRET_KEY)
        return srv_fail(
            e, 400, SRV_SECRET_KEY_REFUSED,
            "body is a SECRET key file: it never leaves the client; nothing was stored");
    if (kind != VEIL_SERIAL_CT_BATCH && kind != VEIL_SERIAL_CT_SEEDED)
        return srv_fail(e, 400, "wrong_kind", "body is %s, expected a ciphertext batch",
                        kind_name(kind));
    if (params != pi->prog->params)
        return srv_fail(e, 400, "params_mismatch",
                        "batch is for parameter set %s, this model runs %s", params->id,
                        pi->prog->params->id);
    /* What max_samples samples take once the masks are regenerated. */
    const uint64_t cap = (uint64_t)pi->max_samples * pi->in_cts * ((uint64_t)pi->big_dim + 1) * 8;
    veil_ct_batch *b;
    veil_status st = veil_ct_batch_deserialize_limited(body, len, cap, &b);
    if (st == VEIL_ERR_UNSUPPORTED)
        return srv_fail(e, 413, "batch_too_large", "batch: %s (at most %zu samples per request)",
                        veil_error_message(), pi->max_samples);
    if (st != VEIL_OK)
        return srv_fail(e, 400, "malformed_batch", "batch: %s", veil_error_message());
    int rc = 0;
    if (b->dim != pi->big_dim)
        rc = srv_fail(e, 400, "wrong_dimension",
                      "batch: ciphertexts of dimension %u, the program takes big-key LWEs of "
                      "dimension %u",
                      b->dim, pi->big_dim);
    else if (memcmp(b->model_fp, pi->fp_out, VEIL_PROGRAM_FP_BYTES) == 0)
        rc = srv_fail(e, 400, "wrong_kind",
                      "batch: a result batch of this model (its encrypted outputs), expected "
                      "encrypted inputs");
    else if (memcmp(b->model_fp, pi->fp, VEIL_PROGRAM_FP_BYTES) != 0)
        rc = srv_fail(e, 400, "model_mismatch",
                      "batch: encrypted for another model or other compile options (model "
                      "fingerprint differs; the options: veil-server's GET /v1/model, a Triton "
                      "model's config parameters)");
    else if (b->count == 0 || b->count % pi->in_cts != 0)
        rc = srv_fail(e, 400, "malformed_batch",
                      "batch: %llu ciphertexts is not a whole number of samples of %zu "
                      "ciphertexts",
                      (unsigned long long)b->count, pi->in_cts);
    else if (b->count / pi->in_cts > pi->max_samples)
        rc = srv_fail(e, 413, "batch_too_large", "batch: %llu samples, at most %zu per request",
                      (unsigned long long)(b->count / pi->in_cts), pi->max_samples);
    else if (key_fp && !veil_key_fp_match(b->key_fp, key_fp))
        rc = srv_fail(e, 403, "key_mismatch",
                      "batch: encrypted under another secret key than the evaluation key of this "
                      "key id");
    /* masks 0 past the program's input width, as its noise model assumes */
    else if (veil_program_check_input_batch(pi->prog, b) != VEIL_OK)
        rc = srv_fail(e, 400, "mask_past_width", "batch: %s", veil_error_message());
    if (rc) {
        veil_ct_batch_free(b);
        return rc;
    }
    *samples = (size_t)(b->count / pi->in_cts);
    *out = b;
    return 0;
}

static int lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

void srv_redact_key_ids(const char *s, char *out, size_t cap) {
    if (!cap) return;
    size_t o = 0;
    while (*s && o + 1 < cap) {
        size_t run = 0;
        while (lower_hex(s[run]))
            run++;
        if (run == VEIL_KEY_ID_CHARS) {
            const int w = snprintf(out + o, cap - o, "%.8s...", s);
            o += (size_t)w < cap - o ? (size_t)w : cap - o - 1;
            s += run;
        } else if (run) { /* another hex run (a fingerprint, a number): as it is */
            for (; run && o + 1 < cap; run--)
                out[o++] = *s++;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = 0;
}

void srv_json_escape(const char *s, char *out, size_t cap) {
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
}

void srv_sbuf_printf(srv_sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}
