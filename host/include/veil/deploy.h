/* veil/deploy.h — what the client (`veil keygen|encrypt|decrypt|remote`) and
 * the server (`veil-server`) must agree on, beyond the file formats of
 * veil/serialize.h.
 *
 * Program fingerprint (veil_program_fingerprint, veil/program.h): a batch
 * file's 32-byte "model fp" (veil/serialize.h); the server refuses a batch
 * whose fingerprint is not its program's (400, "model_mismatch").
 *
 * Wire layout of a batch of S samples (client -> server, and back). A model
 * with inputs 0..I-1 of sizes n_0..n_{I-1} elements: the batch holds
 * S * (n_0 + ... + n_{I-1}) big-key LWEs (dimension k*N), sample-major:
 * sample 0's input 0 elements, then its input 1 elements, ..., then sample 1.
 * Results likewise with the outputs. Sample-major keeps a batch of S samples
 * the concatenation of S one-sample batches, which is what lets the server
 * merge requests (dynamic batching) and split the result back. */
#ifndef VEIL_DEPLOY_H
#define VEIL_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

#include "veil/program.h"
#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ciphertexts per sample over all inputs / all outputs. */
size_t veil_program_sample_in_cts(const veil_program *p);
size_t veil_program_sample_out_cts(const veil_program *p);

/* Samples of one request: at most max_samples, and no more than take
 * max_decoded bytes once the batch is decoded (a seeded upload grows
 * (k N + 1)-fold when its masks are regenerated), at least 1. The server
 * (veil-server, the Triton backend) applies it to its limits; a client that
 * knows those limits but not the server's figure (Triton's config) cuts its
 * requests by it too. VEIL_DEPLOY_MAX_DECODED: the servers' default body. */
#define VEIL_DEPLOY_MAX_DECODED ((size_t)64 << 20)
size_t veil_deploy_request_samples(const veil_program *p, size_t max_samples, size_t max_decoded);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void veil_hex(const uint8_t *b, size_t n, char *out);

/* Key ids: 32 lower-case hex characters (128 random bits). 1 if s is one. */
#define VEIL_KEY_ID_CHARS 32
int veil_key_id_valid(const char *s);

#ifdef __cplusplus
}
#endif
#endif
