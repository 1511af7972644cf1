/* triton.c — the client of NVIDIA Triton Inference Server running veil's
 * backend (libtriton_veil.so, host/triton/backend.c): the veil_remote_*
 * operations of veil/client.h when veil_remote_options.triton_model is set,
 * over remote.c's HTTP plumbing (http.h).
 *
 * Protocol: KServe v2 / Triton HTTP inference, POST
 * /v2/models/<model>/infer, with Triton's binary tensor data extension: the
 * body is a JSON header (its length in the Inference-Header-Content-Length
 * header) followed by the raw bytes of each input; every veil tensor is one
 * TYPE_STRING element of shape [1, 1] (batch dimension first), a 4-byte
 * little-endian length then the bytes. The answer has the same layout. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "veil/compile_options.h"
#include "veil/client.h"

/* Outside libcurl's part: what the client reads of a Triton server's answers,
 * which fuzz_client_answer (host/client/fuzz_answer.c) fuzzes. */
veil_status veil_triton_output(const char *u, const char *out_name, veil_http_resp *r,
                               uint8_t **out, size_t *out_len) {
    /* JSON header, then the output's bytes: one element, length-prefixed. */
    const size_t h = r->has_infer_header ? r->infer_header_len : r->len;
    if (!r->has_infer_header || h > r->len || r->len - h < 4) {
        free(r->body);
        r->body = NULL;
        return veil_error(VEIL_ERR_FORMAT, "%s: answer without binary output %s", u, out_name);
    }
    const uint8_t *p = r->body + h;
    const size_t l = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    if (l != r->len - h - 4) {
        free(r->body);
        r->body = NULL;
        return veil_error(VEIL_ERR_FORMAT,
                          "%s: output %s is not one element (%zu bytes declared, %zu sent)", u,
                          out_name, l, r->len - h - 4);
    }
    memmove(r->body, p + 4, l);
    *out = r->body;
    *out_len = l;
    r->body = NULL;
    return VEIL_OK;
}

/* Its parameters named as the options (rounding_bits, ...), the rest
 * default, read as the backend reads them (veil_compile_options_set). */
veil_status veil_triton_config_options(const char *json, char *out, size_t cap) {
    veil_compile_options co;
    veil_compile_options_default(&co);
    char names[1024], params_id[128] = "";
    veil_compile_options_canonical(&co, names, sizeof names);
    char *save = NULL;
    for (char *tok = strtok_r(names, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (eq) *eq = 0;
        char key[64];
        snprintf(key, sizeof key, "\"%s\"", tok);
        for (char *k = key; *k; k++)
            if (*k == '-') *k = '_';
        const char *at = strstr(json, key);
        char v[128];
        if (!at || veil_json_str(at, "string_value", v, sizeof v)) continue;
        key[strlen(key) - 1] = 0; /* the name alone, after its quote */
        const char *val = v;
        if (!strcmp(key + 1, "params")) { /* the options borrow it */
            snprintf(params_id, sizeof params_id, "%s", v);
            val = params_id;
        }
        VEIL_TRY(veil_compile_options_set(&co, key + 1, val));
    }
    veil_compile_options_canonical(&co, out, cap);
    return VEIL_OK;
}

static const char *keys_model(const veil_remote_options *o) {
    return o->triton_keys_model ? o->triton_keys_model : "veil_keys";
}

void veil_triton_key_tag(const char *base, const veil_remote_options *o, char *out, size_t cap) {
    snprintf(out, cap, "%s/v2/models/%s", base, keys_model(o));
}

#ifdef VEIL_WITH_CURL

static void put_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

/* Triton's error answer ({"error": "..."}) as a veil error. */
static veil_status triton_error(const char *url, const veil_http_resp *r) {
    char msg[1024] = "";
    veil_json_str(r->body ? (const char *)r->body : "", "error", msg, sizeof msg);
    veil_status s = VEIL_ERR_IO;
    if (strstr(msg, "params_mismatch") || strstr(msg, "model_mismatch") ||
        strstr(msg, "key_mismatch"))
        s = VEIL_ERR_PARAMS;
    else if (strstr(msg, "veil key_store_full")) /* Triton has no 507: its 503, as veil-server's */
        s = VEIL_ERR_RANGE;
    else if (r->status == 400 || r->status == 404)
        s = VEIL_ERR_FORMAT;
    return veil_error(s, "POST %s: Triton answered %ld: %s", url, r->status,
                      msg[0] ? msg : "(no message)");
}

veil_status veil_triton_call(const char *url, const char *model, size_t n, const char *const *names,
                             const uint8_t *const *data, const size_t *lens, const char *out_name,
                             int idempotent, const veil_remote_options *o, uint8_t **out,
                             size_t *out_len) {
    char base[2048], u[2400], json[1024];
    veil_url_base(url, base, sizeof base);
    snprintf(u, sizeof u, "%s/v2/models/%s/infer", base, model);
    size_t jl = (size_t)snprintf(json, sizeof json, "{\"inputs\":[");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > UINT32_MAX)
            return veil_error(VEIL_ERR_UNSUPPORTED, "%s: input %s over 4 GiB", u, names[i]);
        jl += (size_t)snprintf(json + jl, sizeof json - jl,
                               "%s{\"name\":\"%s\",\"shape\":[1,1],\"datatype\":\"BYTES\","
                               "\"parameters\":{\"binary_data_size\":%zu}}",
                               i ? "," : "", names[i], lens[i] + 4);
        total += lens[i] + 4;
    }
    jl += (size_t)snprintf(
        json + jl, sizeof json - jl,
        "],\"outputs\":[{\"name\":\"%s\",\"parameters\":{\"binary_data\":true}}]}", out_name);
    if (jl >= sizeof json) return veil_error(VEIL_ERR_ARG, "%s: request header too long", u);
    uint8_t *body = malloc(jl + total);
    if (!body) return veil_error(VEIL_ERR_NOMEM, "%s: out of memory for the request", u);
    memcpy(body, json, jl);
    size_t off = jl;
    for (size_t i = 0; i < n; i++) {
        put_u32le(body + off, (uint32_t)lens[i]);
        memcpy(body + off + 4, data[i], lens[i]);
        off += 4 + lens[i];
    }
    char hdr[96];
    snprintf(hdr, sizeof hdr, "Inference-Header-Content-Length: %zu", jl);
    veil_http_resp r;
    veil_status st =
        veil_http_do("POST", u, hdr, body, off, idempotent, o->max_answer_bytes, o, &r);
    free(body);
    if (st) return st;
    if (r.status != 200) {
        st = triton_error(u, &r);
        free(r.body);
        return st;
    }
    return veil_triton_output(u, out_name, &r, out, out_len);
}

veil_status veil_triton_check_model(const veil_client *c, const char *url,
                                    const veil_remote_options *o, size_t *max_samples) {
    char base[2048], u[2400];
    veil_url_base(url, base, sizeof base);
    snprintf(u, sizeof u, "%s/v2/models/%s/config", base, o->triton_model);
    veil_http_resp r;
    VEIL_TRY(veil_http_do("GET", u, NULL, NULL, 0, 1, VEIL_REMOTE_JSON_MAX, o, &r));
    veil_status st = VEIL_OK;
    char backend[64] = "";
    const char *j = r.body ? (const char *)r.body : "";
    if (r.status != 200) {
        char msg[512] = "";
        veil_json_str(j, "error", msg, sizeof msg);
        st = veil_error(VEIL_ERR_IO, "GET %s: Triton answered %ld: %s", u, r.status,
                        msg[0] ? msg : "(no message)");
    } else if (veil_json_str(j, "backend", backend, sizeof backend) || strcmp(backend, "veil")) {
        st = veil_error(VEIL_ERR_PARAMS, "%s: Triton model %s runs backend '%s', not veil", base,
                        o->triton_model, backend);
    }
    char copts[1024] = "";
    if (st == VEIL_OK && c &&
        (st = veil_triton_config_options(j, copts, sizeof copts)) == VEIL_OK &&
        strcmp(copts, c->prog->options_canonical) != 0) {
        /* the options are in the fingerprint: say which differ, as against
         * veil-server's GET /v1/model */
        st = veil_error(VEIL_ERR_PARAMS,
                        "Triton model %s compiles %s with other compile options (its config's "
                        "parameters); pass the same:\n  Triton: %s\n  here:   %s",
                        o->triton_model, c->model->name, copts, c->prog->options_canonical);
    }
    if (st == VEIL_OK && max_samples) {
        /* parameters: {"max_request_samples": {"string_value": "N"}} */
        const char *p = strstr(j, "\"max_request_samples\"");
        char v[32] = "";
        if (p && veil_json_str(p, "string_value", v, sizeof v) == 0 && atol(v) > 0)
            *max_samples = (size_t)atol(v);
        else
            *max_samples = 1024; /* the backend's default */
        /* and what the backend lowers it to: the samples whose decoded
         * batch fits its body limit (the config does not say that figure);
         * no client (a readiness check): the config's figure */
        if (c)
            *max_samples =
                veil_deploy_request_samples(c->prog, *max_samples, VEIL_DEPLOY_MAX_DECODED);
    }
    /* the program fingerprint is checked by the backend on every batch */
    free(r.body);
    return st;
}

veil_status veil_triton_ensure_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *uploaded) {
    char base[2048], tag[2400];
    veil_url_base(url, base, sizeof base);
    /* Triton has no key lookup: the id in DIR/servers is reused as is, and a
     * batch under a lost key is answered unknown_key (the caller uploads
     * again). */
    veil_triton_key_tag(base, o, tag, sizeof tag);
    char id[VEIL_KEY_ID_CHARS + 1];
    if (veil_keydir_servers_lookup(dir, tag, id) == 0 && !*uploaded) {
        memcpy(key_id, id, sizeof id);
        return VEIL_OK;
    }
    VEIL_TRY(veil_keydir_servers_check(dir));
    uint8_t *ek = NULL, *ans = NULL;
    size_t ek_len = 0, ans_len = 0;
    VEIL_TRY(veil_read_eval_key_file(dir, &ek, &ek_len));
    const char *names[] = {"EVAL_KEY"};
    const uint8_t *data[] = {ek};
    veil_status st = veil_triton_call(base, keys_model(o), 1, names, data, &ek_len, "KEY_ID", 0, o,
                                      &ans, &ans_len);
    free(ek);
    if (st) return st;
    if (ans_len != VEIL_KEY_ID_CHARS) {
        free(ans);
        return veil_error(VEIL_ERR_FORMAT, "%s: KEY_ID of %zu bytes, expected %d", tag, ans_len,
                          VEIL_KEY_ID_CHARS);
    }
    memcpy(id, ans, VEIL_KEY_ID_CHARS);
    id[VEIL_KEY_ID_CHARS] = 0;
    free(ans);
    if (!veil_key_id_valid(id))
        return veil_error(VEIL_ERR_FORMAT, "%s: answer is not a key id", tag);
    VEIL_TRY(veil_keydir_servers_store(dir, tag, id));
    memcpy(key_id, id, sizeof id);
    *uploaded = 1;
    return VEIL_OK;
}

veil_status veil_triton_delete_key(const char *url, const char *key_id,
                                   const veil_remote_options *o) {
    const char *names[] = {"DELETE_KEY_ID"};
    const uint8_t *data[] = {(const uint8_t *)key_id};
    const size_t lens[] = {strlen(key_id)};
    uint8_t *ans = NULL;
    size_t ans_len = 0;
    /* idempotent: a retry after a lost answer finds it gone (404) */
    VEIL_TRY(
        veil_triton_call(url, keys_model(o), 1, names, data, lens, "KEY_ID", 1, o, &ans, &ans_len));
    const int same = ans_len == lens[0] && !memcmp(ans, key_id, ans_len);
    free(ans);
    if (!same)
        return veil_error(VEIL_ERR_FORMAT, "%s: Triton model %s answered another key id than %s",
                          url, keys_model(o), key_id);
    return VEIL_OK;
}

veil_status veil_triton_infer(const char *url, const char *key_id, const uint8_t *body, size_t len,
                              const veil_remote_options *o, uint8_t **out, size_t *out_len) {
    const char *names[] = {"KEY_ID", "CT_BATCH"};
    const uint8_t *data[] = {(const uint8_t *)key_id, body};
    const size_t lens[] = {strlen(key_id), len};
    return veil_triton_call(url, o->triton_model, 2, names, data, lens, "RESULT", 1, o, out,
                            out_len);
}

#else

veil_status veil_triton_call(const char *url, const char *model, size_t n, const char *const *names,
                             const uint8_t *const *data, const size_t *lens, const char *out_name,
                             int idempotent, const veil_remote_options *o, uint8_t **out,
                             size_t *out_len) {
    (void)url, (void)model, (void)n, (void)names, (void)data, (void)lens, (void)out_name;
    (void)idempotent, (void)o, (void)out, (void)out_len;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
veil_status veil_triton_check_model(const veil_client *c, const char *url,
                                    const veil_remote_options *o, size_t *max_samples) {
    (void)c, (void)url, (void)o, (void)max_samples;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
veil_status veil_triton_ensure_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *uploaded) {
    (void)url, (void)dir, (void)o, (void)key_id, (void)uploaded;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
veil_status veil_triton_delete_key(const char *url, const char *key_id,
                                   const veil_remote_options *o) {
    (void)url, (void)key_id, (void)o;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
veil_status veil_triton_infer(const char *url, const char *key_id, const uint8_t *body, size_t len,
                              const veil_remote_options *o, uint8_t **out, size_t *out_len) {
    (void)url, (void)key_id, (void)body, (void)len, (void)o, (void)out, (void)out_len;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}

#endif
