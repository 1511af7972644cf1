/* veil/program_crypt.h — a compiled program's keys and its client side.
 *
 * The key sets a program needs (one parameter set per partition,
 * veil/program.h "partitions"; veil/tfhe.h "Key sets"), a secret key made
 * for them, the checks that a key fits the program, and the sizes of its
 * evaluation key. Then the client's two steps around an encrypted run
 * (veil/exec.h): veil_program_encrypt encodes each quantized input value v
 * as v * Delta of its input node (Delta = 2^(63 - width), veil_node_delta)
 * and encrypts it under the big (master) key; veil_program_decrypt takes the
 * phase of each output ciphertext and decodes it with the output node's
 * Delta and compiled range (veil_program_decode). And the server's side of
 * the encryption: veil_program_check_inputs, that a client's inputs keep the
 * program's input width. This is the one place the program's encoding meets
 * the keys: the CLI, the client library, the server, the Triton backend, the
 * benchmarks and the tests call these.
 *
 * Ciphertexts are big-key LWEs of veil_program_ct_words(p) words, input i of
 * a batch being batch * veil_program_input_size(p, i) of them, sample-major,
 * in the tensor's element order (CHW); outputs likewise. */
#ifndef VEIL_PROGRAM_CRYPT_H
#define VEIL_PROGRAM_CRYPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "veil/params.h"
#include "veil/program.h"
#include "veil/serialize.h"
#include "veil/status.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Words of one ciphertext of the program: the master key's D + 1 (D = k*N of
 * partition 0). */
size_t veil_program_ct_words(const veil_program *p);

/* The program's key sets: parts[i] = partition i's parameter set (parts holds
 * VEIL_MAX_PARTITIONS); returns their count, 0 for a simulate-only program. */
uint32_t veil_program_key_sets(const veil_program *p, const veil_params **parts);
/* Rows of each partition's KSK (veil_partition.ksk_rows, D for a partition
 * that does not say): rows holds VEIL_MAX_PARTITIONS; returns the count. */
uint32_t veil_program_ksk_rows(const veil_program *p, uint32_t *rows);
/* A secret key with exactly the program's partitions (seed NULL: the OS). */
veil_status veil_program_keygen(const veil_program *p, const uint8_t *seed, veil_secret_key **out);
/* The program's evaluation keys from its secret key sk: each partition's KSK
 * of the program's rows (veil_program_ksk_rows), prepared for keep (the
 * backend's, veil_backend_key_domains, or VEIL_KEY_STANDARD to save them).
 * mask_seed / noise_seed as veil_eval_key_new_rows's. */
veil_status veil_program_eval_key_new(const veil_program *p, const veil_secret_key *sk,
                                      veil_key_domains keep, const uint8_t *mask_seed,
                                      const uint8_t *noise_seed, veil_eval_key **out);
/* VEIL_ERR_PARAMS unless the key's partition list is the program's and each
 * partition's KSK has at least the rows the program reads; the message names
 * both. */
veil_status veil_program_check_eval_key(const veil_program *p, const veil_eval_key *ek);
veil_status veil_program_check_secret_key(const veil_program *p, const veil_secret_key *sk);
/* Bytes of the program's evaluation key file (seeded) and of the same keys
 * with every mask stored (veil/serialize.h); 0 without parameters. */
size_t veil_program_eval_key_bytes(const veil_program *p);
size_t veil_program_eval_key_raw_bytes(const veil_program *p);
/* Prints the key set the program needs, one line per partition: its set,
 * BSK (one domain) and KSK (its 32-bit words, as held), its share of the
 * seeded eval.key file, and
 * the memory a key prepared for one backend takes (veil_eval_key_prepared_bytes:
 * the BSK in one domain and the 32-bit KSK). */
void veil_program_print_keys(const veil_program *p, FILE *f);

/* Encrypts batch samples of input i (quantized values). VEIL_ERR_RANGE,
 * naming the input, sample and element, for a value outside the input
 * node's compiled range; VEIL_ERR_PARAMS when sk is not the program's. */
veil_status veil_program_encrypt(const veil_program *p, veil_encryptor *enc,
                                 const veil_secret_key *sk, uint32_t input, const int64_t *values,
                                 size_t batch, uint64_t *cts);
/* Decrypts batch samples of output i (veil_program_decode of each phase). */
veil_status veil_program_decrypt(const veil_program *p, const veil_secret_key *sk, uint32_t output,
                                 const uint64_t *cts, size_t batch, int64_t *values);

/* The server's check of a client's inputs against the program's input width
 * (veil_program.input_width, w): veil_program_encrypt encrypts under the
 * master key's first w coefficients, so every input mask is 0 from word w to
 * D - 1, and the compiler's noise model counts on it (a read's keyswitch
 * rows, veil_node.key_dim). An input with a nonzero word there decrypts with
 * noise past the model (its results wrong with unmodelled probability) and
 * costs more keyswitch work, so whatever evaluates a client's ciphertexts
 * (veil-server and the Triton backend, host/server/request.c) refuses it.
 * cts: count ciphertexts of veil_program_ct_words(p) words. VEIL_ERR_ARG
 * naming the first offending ciphertext (its index in cts), its word and the
 * width; VEIL_OK at once when the program has no width (0 or D). O(D - w)
 * reads a ciphertext. */
veil_status veil_program_check_inputs(const veil_program *p, const uint64_t *cts, size_t count);
/* The same on a batch of dimension D, after its mask_width: a batch whose
 * masks were drawn over more than w words (a seeded batch's header field,
 * serialize.h; 0, all D words, is read word by word like a raw batch's) is
 * refused naming both widths before a word is read. */
veil_status veil_program_check_input_batch(const veil_program *p, const veil_ct_batch *b);

#ifdef __cplusplus
}
#endif
#endif
