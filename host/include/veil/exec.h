/* veil/exec.h — encrypted execution of a compiled program.
 *
 * Plan once, run many (FFTW's shape): veil_plan_new(program, eval key,
 * backend, max batch) uploads the keys to the backend, builds every test
 * polynomial (per-channel tables, the rounding tables) and sizes every
 * ciphertext buffer (reused across nodes by liveness); veil_plan_execute then
 * runs batches of up to max_batch samples without allocating. All lookups of
 * one node for all samples of the batch go to veil_backend_ks_pbs as ONE call
 * (per-channel tables through lut_index); dense and conv layers go to
 * veil_backend_linear / veil_backend_conv2d.
 *
 * Ciphertexts are big-key LWEs (k*N + 1 words). Input i of a batch is
 * batch * input_size(i) ciphertexts, sample-major, element order of the
 * tensor (CHW). Outputs likewise.
 *
 * Client side: veil_program_encrypt encodes v * Delta (Delta = 2^(63 -
 * width)) and encrypts under the big key; veil_program_decrypt decodes with
 * the output's compiled range (veil_program_decode). */
#ifndef VEIL_EXEC_H
#define VEIL_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "veil/backend.h"
#include "veil/program.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_plan veil_plan;

/* Called after every node: done / total PBS of the batch, the node's layer. */
typedef void (*veil_progress_fn)(void *user, uint64_t pbs_done, uint64_t pbs_total,
                                 const char *layer);

/* The evaluation key's partition list must be the program's
 * (veil_program_check_eval_key). Each LUT/ROUND node's PBS runs with the keys
 * of its node->partition; every ciphertext between nodes is under the master
 * key (veil/tfhe.h "Key sets"). The backend is borrowed and must outlive the
 * plan. */
veil_status veil_plan_new(const veil_program *program, const veil_eval_key *ek, veil_backend *be,
                          size_t max_batch, veil_plan **out);
void veil_plan_free(veil_plan *plan);
void veil_plan_set_progress(veil_plan *plan, veil_progress_fn fn, void *user);

/* inputs[i]: batch * input_size(i) ciphertexts; outputs[i] (caller
 * allocated): batch * output_size(i). batch <= max_batch. */
veil_status veil_plan_execute(veil_plan *plan, const uint64_t *const *inputs, size_t batch,
                              uint64_t *const *outputs);

/* Words of one ciphertext of the program: the master key's D + 1 (D = k*N of
 * partition 0). */
size_t veil_program_ct_words(const veil_program *p);

/* The program's key sets: parts[i] = partition i's parameter set (parts holds
 * VEIL_MAX_PARTITIONS); returns their count, 0 for a simulate-only program. */
uint32_t veil_program_key_sets(const veil_program *p, const veil_params **parts);
/* A secret key with exactly the program's partitions (seed NULL: the OS). */
veil_status veil_program_keygen(const veil_program *p, const uint8_t *seed, veil_secret_key **out);
/* VEIL_ERR_PARAMS unless the key's partition list is the program's; the
 * message names both lists. */
veil_status veil_program_check_eval_key(const veil_program *p, const veil_eval_key *ek);
veil_status veil_program_check_secret_key(const veil_program *p, const veil_secret_key *sk);
/* Bytes of the program's evaluation key file (seeded) and of the same keys
 * with every mask stored (veil/serialize.h); 0 without parameters. */
size_t veil_program_eval_key_bytes(const veil_program *p);
size_t veil_program_eval_key_raw_bytes(const veil_program *p);
/* Prints the key set the program needs, one line per partition: its set,
 * BSK and KSK (standard domain), its share of the seeded eval.key file, and
 * the memory a prepared key takes (BSK in both domains and the KSK). */
void veil_program_print_keys(const veil_program *p, FILE *f);

/* Encrypts batch samples of input i (quantized values). */
veil_status veil_program_encrypt(const veil_program *p, veil_encryptor *enc,
                                 const veil_secret_key *sk, uint32_t input, const int64_t *values,
                                 size_t batch, uint64_t *cts);
/* Decrypts batch samples of output i. */
veil_status veil_program_decrypt(const veil_program *p, const veil_secret_key *sk, uint32_t output,
                                 const uint64_t *cts, size_t batch, int64_t *values);

#ifdef __cplusplus
}
#endif
#endif
