/* veil/client.h — the client side of a deployment: key generation, encryption
 * and decryption bound to one compiled model, and the HTTP client of
 * veil-server (libcurl). The `veil keygen|encrypt|decrypt|remote` commands
 * (veil/client_cmds.h) are thin wrappers; tests and the load benchmark use
 * these functions directly.
 *
 * Key directory (veil keygen MODEL --out DIR):
 *   DIR/secret.key   the secret key (VEILSK01, mode 0600). Never sent.
 *   DIR/eval.key     the seeded evaluation keys (VEILEK01): upload this.
 *   DIR/servers      one line per server: "<url> <key id>", the key ids the
 *                    servers gave for eval.key (so `veil remote` uploads once).
 *
 * Binding. A ciphertext batch file carries the params id, the program
 * fingerprint (veil/deploy.h) and the secret key's fingerprint; every
 * function here checks all three against the model and key it is given and
 * refuses with VEIL_ERR_PARAMS and a message naming which one differs. */
#ifndef VEIL_CLIENT_H
#define VEIL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "veil/deploy.h"
#include "veil/model.h"
#include "veil/program.h"
#include "veil/serialize.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A model compiled for deployment (the same options on client and server). */
typedef struct veil_client {
    veil_model *model;
    veil_program *prog;
    uint8_t fp[VEIL_PROGRAM_FP_BYTES];     /* inputs */
    uint8_t fp_out[VEIL_PROGRAM_FP_BYTES]; /* results */
    char fp_hex[2 * VEIL_PROGRAM_FP_BYTES + 1];
} veil_client;

/* Loads and compiles the model (options NULL: defaults). Refuses a program
 * without a parameter set (simulate-only). */
veil_status veil_client_open(const char *model_path, const veil_compile_options *options,
                             veil_client **out);
void veil_client_free(veil_client *c);

/* Paths inside a key directory (into buf). */
const char *veil_keydir_path(const char *dir, const char *file, char *buf, size_t cap);

typedef struct veil_keygen_info {
    size_t secret_key_bytes, eval_key_bytes, eval_key_raw_bytes;
    double seconds;
} veil_keygen_info;

/* Makes a secret key and its seeded evaluation keys for the program's
 * parameter set and writes DIR/secret.key (0600) and DIR/eval.key (DIR is
 * created 0700). Refuses to overwrite an existing secret key unless force. */
veil_status veil_client_keygen(const veil_client *c, const char *dir, int force,
                               veil_keygen_info *info);

/* Loads DIR/secret.key and checks it against the program's parameter set
 * (warns on stderr when the file is readable by others). */
veil_status veil_client_load_secret_key(const veil_client *c, const char *dir,
                                        veil_secret_key **out);

/* VEIL_ERR_PARAMS unless DIR/eval.key was made from sk, read from its header
 * only: `veil remote` checks it before uploading tens of MB. */
veil_status veil_client_check_eval_key(const veil_secret_key *sk, const char *dir);

/* Encrypts `samples` samples (inputs[i]: samples * input_size(i) quantized
 * values per model input) into a seeded batch in the sample-major wire layout,
 * bound to the program and the key. *buf: free with veil_serial_buffer_free. */
veil_status veil_client_encrypt(const veil_client *c, const veil_secret_key *sk,
                                const int64_t *const *inputs, size_t samples, uint8_t **buf,
                                size_t *len);

/* Checks a result batch against the program and the key (params, program
 * fingerprint, key fingerprint, dimension, whole samples) and returns its
 * number of samples. */
veil_status veil_client_check_result(const veil_client *c, const veil_secret_key *sk,
                                     const veil_ct_batch *b, size_t *samples);

/* Decrypts a checked result batch: outputs[o] gets samples * output_size(o)
 * integers (allocated here, free each with free()). */
veil_status veil_client_decrypt(const veil_client *c, const veil_secret_key *sk,
                                const veil_ct_batch *b, size_t *samples, int64_t ***outputs);
void veil_client_outputs_free(const veil_client *c, int64_t **outputs);

/* ---- HTTP (veil-server) ------------------------------------------------------ */

typedef struct veil_remote_options {
    long connect_timeout_s; /* default 10 */
    long timeout_s;         /* whole request, default 600 */
    int retries;            /* extra tries of idempotent requests, default 3 */
    int verbose;
    /* Non-NULL: the server is NVIDIA Triton Inference Server with the veil
     * backend (libtriton_veil.so), spoken to in Triton's v2 HTTP inference
     * protocol with binary tensors: this names the inference model in its
     * repository; keys go to triton_keys_model (NULL: "veil_keys"). */
    const char *triton_model;
    const char *triton_keys_model;
    /* The largest answer to an inference request the client takes, bytes
     * (default VEIL_REMOTE_ANSWER_MAX): a server that sends more is cut off
     * with an error instead of filling the client's memory. Answers to the
     * key and model requests (JSON) are capped at VEIL_REMOTE_JSON_MAX. */
    size_t max_answer_bytes;
} veil_remote_options;
#define VEIL_REMOTE_ANSWER_MAX ((size_t)1 << 32)
#define VEIL_REMOTE_JSON_MAX ((size_t)1 << 20)
void veil_remote_options_default(veil_remote_options *o);

/* Makes sure the server `url` has DIR/eval.key: reuses the key id cached in
 * DIR/servers if GET /v1/keys/<id> says it is there (and has this key's
 * fingerprint), else uploads it and caches the new id. *uploaded tells which.
 * Triton (o->triton_model set) cannot look a key id up: the cached id is
 * reused unless *uploaded is 1 on entry, which forces a new upload (what to
 * do once a batch was answered unknown_key). */
veil_status veil_remote_ensure_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *uploaded);

/* Removes DIR/eval.key's copy from the server `url`: the key id DIR/servers
 * records for it (*key_id), deleted with DELETE /v1/keys/<id> (Triton: the
 * key model's DELETE_KEY_ID input), and its DIR/servers entry with it, so a
 * later run uploads again. *was_stored is 0 when the server had lost it
 * already (404 unknown_key: expired, or deleted by another holder of the
 * id), which is no failure; any other 404 (no such route or Triton model)
 * is one, the entry kept. VEIL_ERR_ARG when DIR/servers records no id for
 * the server. */
veil_status veil_remote_delete_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *was_stored);

/* Checks that the server runs the same program (GET /v1/model: params id and
 * fingerprint); *max_samples gets its per-request limit. */
veil_status veil_remote_check_model(const veil_client *c, const char *url,
                                    const veil_remote_options *o, size_t *max_samples);

/* The HTTP status of this thread's last answered request (0: none answered,
 * e.g. connection refused), to tell a 404 unknown key from other failures. */
long veil_remote_last_status(void);

/* POST /v1/infer: sends a serialized batch, returns the result batch bytes
 * (free()) and the samples of the backend batch it ran in (0 if unknown). */
veil_status veil_remote_infer(const char *url, const char *key_id, const uint8_t *body, size_t len,
                              const veil_remote_options *o, uint8_t **out, size_t *out_len,
                              size_t *batch_samples);

#ifdef __cplusplus
}
#endif
#endif
