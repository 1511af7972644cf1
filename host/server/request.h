/* request.h — the parts of veil-server that read what a client sent: routes,
 * key ids, evaluation-key uploads and ciphertext batches. No sockets here, so
 * the libFuzzer target (fuzz_request.c) and the tests can drive them
 * directly. Every refusal fills an srv_error: the HTTP status, a short code
 * and a message naming what was wrong. */
#ifndef VEIL_SERVER_REQUEST_H
#define VEIL_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "veil/deploy.h"
#include "veil/program.h"
#include "veil/serialize.h"
#include "veil/tfhe.h"

typedef struct srv_error {
    int status;        /* HTTP status */
    char code[40];     /* machine-readable: "malformed_batch", "params_mismatch", ... */
    char message[320]; /* human-readable: what and where */
} srv_error;

/* The code of a refused secret key (a body that must not linger: the
 * handler wipes it). */
#define SRV_SECRET_KEY_REFUSED "secret_key_refused"

/* Sets *e and returns e->status. */
int srv_fail(srv_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef enum srv_route {
    SRV_NOT_FOUND = 0,
    SRV_HEALTH,
    SRV_MODEL,
    SRV_METRICS,
    SRV_KEYS_POST,
    SRV_KEY_GET,
    SRV_INFER,
    SRV_KEY_DELETE,
} srv_route;

/* Routes method + path (query string already split off by the HTTP layer).
 * SRV_KEY_GET and SRV_KEY_DELETE fill key_id (validated: 32 lower-case hex). On a refusal
 * returns SRV_NOT_FOUND with e set (404, or 405 for a known path with the
 * wrong method). */
srv_route srv_route_parse(const char *method, const char *path, char key_id[VEIL_KEY_ID_CHARS + 1],
                          srv_error *e);

/* What the server checks requests against. */
typedef struct srv_program_info {
    const veil_program *prog;
    uint8_t fp[VEIL_PROGRAM_FP_BYTES];     /* input batches carry it */
    uint8_t fp_out[VEIL_PROGRAM_FP_BYTES]; /* result batches carry it */
    size_t in_cts, out_cts;                /* per sample */
    uint32_t big_dim;                      /* k*N */
    size_t max_samples;                    /* per request */
} srv_program_info;

/* veil-server's default --max-body, and the Triton backend's bound on a
 * request's decoded batch (Triton's frontends limit the bytes it receives). */
#define SRV_DEFAULT_MAX_BODY VEIL_DEPLOY_MAX_DECODED

/* max_samples: the request limit asked for, lowered so that a request's
 * batch, decoded, takes at most max_decoded bytes (at least one sample): a
 * seeded batch is about (k N + 1) times smaller on the wire than in memory,
 * so the body limit alone would let a few megabytes ask for gigabytes. */
void srv_program_info_init(srv_program_info *pi, const veil_program *prog, size_t max_samples,
                           size_t max_decoded);

/* An evaluation-key upload: refuses secret keys (400 secret_key_refused),
 * other kinds, other parameter sets, and anything the deserializer rejects.
 * On success *out is the loaded key (the caller frees it). */
int srv_parse_key_upload(const srv_program_info *pi, const uint8_t *body, size_t len,
                         veil_eval_key **out, srv_error *e);

/* A ciphertext batch for POST /v1/infer: well formed (checksum, sizes),
 * the program's parameter set, the big dimension, the program fingerprint, a
 * whole number of samples (1..max_samples), when key_fp is not NULL
 * encrypted under that key (403 key_mismatch otherwise; veil_key_fp_match:
 * a zero fingerprint matches nothing), and every mask 0
 * past the program's input width (400 mask_past_width naming the ciphertext,
 * its word and the width: veil_program_check_input_batch). */
int srv_parse_infer_batch(const srv_program_info *pi, const uint8_t *body, size_t len,
                          const uint8_t *key_fp, veil_ct_batch **out, size_t *samples,
                          srv_error *e);

/* Copies s to out (cap bytes, cut to fit) with every key id in it (32
 * lower-case hex digits, not inside a longer hex run) shortened to its first
 * 8 and "...": key ids are unguessable capabilities, and a log is no place
 * for one whole (the answer to the client that sent it may name it). */
void srv_redact_key_ids(const char *s, char *out, size_t cap);

/* Appends s to the buffer as a JSON string body (no quotes), escaped. */
void srv_json_escape(const char *s, char *out, size_t cap);

/* A growing string for answers (JSON, metrics). oom: an allocation failed,
 * later printfs do nothing; the owner frees p. */
typedef struct srv_sbuf {
    char *p;
    size_t len, cap;
    int oom;
} srv_sbuf;

void srv_sbuf_printf(srv_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
