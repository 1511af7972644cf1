/* http.h — the HTTP plumbing (libcurl) the client shares between veil-server
 * (remote.c) and Triton Inference Server (triton.c). Internal to the client
 * library. */
#ifndef VEIL_CLIENT_HTTP_H
#define VEIL_CLIENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "veil/client.h"

typedef struct veil_http_resp {
    long status;
    uint8_t *body; /* NUL-terminated past len; free() */
    size_t len, cap;
    size_t batch_samples;    /* X-Veil-Batch-Samples */
    size_t infer_header_len; /* Inference-Header-Content-Length (Triton) */
    int has_infer_header;
    int oom;
    size_t max;  /* the most body bytes taken (veil_http_do's max_answer) */
    int too_big; /* the server sent more: the transfer was cut */
} veil_http_resp;

/* One request with retries (remote.c's policy); header: one extra header
 * line or NULL. On success (any HTTP status) fills r and records the status
 * for veil_remote_last_status(). An answer body of more than max_answer
 * bytes is cut off: VEIL_ERR_FORMAT naming the limit, not retried. */
veil_status veil_http_do(const char *method, const char *url, const char *header,
                         const uint8_t *body, size_t len, int idempotent, size_t max_answer,
                         const veil_remote_options *o, veil_http_resp *r);
/* veil-server's JSON error answer as a veil error. */
veil_status veil_http_error(const char *method, const char *url, const veil_http_resp *r);
veil_status veil_read_file(const char *path, uint8_t **buf, size_t *len);
/* DIR/eval.key, refused unless it is an evaluation key (a secret key never
 * leaves the client). */
veil_status veil_read_eval_key_file(const char *dir, uint8_t **buf, size_t *len);
/* url without trailing slashes. */
void veil_url_base(const char *url, char *out, size_t cap);
/* A string field of a flat JSON object; 0 if found. */
int veil_json_str(const char *json, const char *key, char *out, size_t cap);
/* DIR/servers: "<url> <key id>" lines (the ids servers gave for eval.key).
 * store replaces url's line (id NULL: removes it), atomically. */
int veil_keydir_servers_lookup(const char *dir, const char *url, char id[VEIL_KEY_ID_CHARS + 1]);
veil_status veil_keydir_servers_store(const char *dir, const char *url, const char *id);
/* Before an upload: DIR/servers could be replaced (else the id the server
 * gives would be lost, its key held there unused until it expires). */
veil_status veil_keydir_servers_check(const char *dir);

/* Triton (triton.c): the veil_remote_* operations when o->triton_model is set. */
/* One inference on Triton's model: n BYTES inputs of one element each (shape
 * [1, 1]), one BYTES output, whose element is returned (free()). */
veil_status veil_triton_call(const char *url, const char *model, size_t n, const char *const *names,
                             const uint8_t *const *data, const size_t *lens, const char *out_name,
                             int idempotent, const veil_remote_options *o, uint8_t **out,
                             size_t *out_len);
/* The one element of out_name in Triton's answer r (JSON header of
 * r->infer_header_len bytes, then a 4-byte little-endian length and the
 * bytes): moved to the front of r->body, which becomes *out (r->body is NULL
 * after, on error too: freed). u names the request in errors. */
veil_status veil_triton_output(const char *u, const char *out_name, veil_http_resp *r,
                               uint8_t **out, size_t *out_len);
/* The compile options a Triton model's configuration (JSON, as GET
 * /v2/models/<m>/config answers) gives the backend, in canonical form. */
veil_status veil_triton_config_options(const char *json, char *out, size_t cap);
/* c may be NULL (a readiness check): then *max_samples is the config's. */
veil_status veil_triton_check_model(const veil_client *c, const char *url,
                                    const veil_remote_options *o, size_t *max_samples);
veil_status veil_triton_ensure_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *uploaded);
/* The DIR/servers entry of a Triton server's keys: its key model's URL
 * (base: the server's URL without trailing slashes). */
void veil_triton_key_tag(const char *base, const veil_remote_options *o, char *out, size_t cap);
/* DELETE_KEY_ID through the key model: removes the key stored under key_id. */
veil_status veil_triton_delete_key(const char *url, const char *key_id,
                                   const veil_remote_options *o);
veil_status veil_triton_infer(const char *url, const char *key_id, const uint8_t *body, size_t len,
                              const veil_remote_options *o, uint8_t **out, size_t *out_len);

#endif
