/* veil/exec.h — encrypted execution of a compiled program.
 *
 * Plan once, run many (FFTW's shape): veil_plan_new(program, eval key,
 * backend, max batch) uploads the keys to the backend, builds every test
 * polynomial (per-channel tables, the rounding tables) and puts them, the
 * WoP-PBS lookups' tables and the layers' weights on the backend's device
 * (veil_backend_tables_new, _new_wop, veil_backend_weights_new_*), and
 * allocates the ciphertext buffers there (veil_backend_buffer_new: one per
 * liveness slot, a slot reused by the next node once its value's last
 * consumer ran); veil_plan_execute then runs
 * batches of up to max_batch samples without allocating. Every node runs
 * where the data lives: each input is uploaded when its node comes, each
 * output downloaded, and between them every node is a backend op on device
 * buffers (KS-PBS, linear, conv2d, add, scale for the plaintext additions and
 * the rounding chunks' arithmetic, copy for flatten and concat). All lookups
 * of one node for all samples of the batch are ONE veil_backend_ks_pbs
 * (per-channel tables through the tables' index).
 *
 * Ciphertexts are big-key LWEs (k*N + 1 words). Input i of a batch is
 * batch * input_size(i) ciphertexts, sample-major, element order of the
 * tensor (CHW). Outputs likewise.
 *
 * Several devices (--devices): veil_plan_group, below, runs one plan per
 * device and cuts each batch between them.
 *
 * The program's key sets, keygen and the client side (encrypt, decrypt) are
 * the engine's: veil/program_crypt.h, included here. */
#ifndef VEIL_EXEC_H
#define VEIL_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "veil/backend.h"
#include "veil/program.h"
#include "veil/program_crypt.h"
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

/* Called after every node but OUTPUT with its ciphertexts copied to host
 * memory: count = batch * size ciphertexts of veil_program_ct_words words,
 * sample-major, valid during the call. For audits that hold the secret key
 * (the measured noise of every node against the compiler's model,
 * tests/test_noise_program.c); it costs one download a node. */
typedef void (*veil_node_observer_fn)(void *user, uint32_t node, const uint64_t *cts, size_t count);
void veil_plan_set_observer(veil_plan *plan, veil_node_observer_fn fn, void *user);

/* inputs[i]: batch * input_size(i) ciphertexts; outputs[i] (caller
 * allocated): batch * output_size(i). batch <= max_batch. */
veil_status veil_plan_execute(veil_plan *plan, const uint64_t *const *inputs, size_t batch,
                              uint64_t *const *outputs);

/* ---- plan groups: one program on several plans (devices) ----------------------
 * A group holds one plan per backend (veil_backends_new makes them from a
 * --devices list), each with its own copy of the evaluation key on its
 * device, sized for ceil(max_batch / n) samples. veil_plan_group_execute cuts
 * a batch into n contiguous shares of whole samples, sizes differing by at
 * most one, the larger ones first (a batch of 1 runs on plan 0 and leaves the
 * others idle): every sample costs the same, so equal shares finish together.
 * Shares run side by side, one host thread per busy plan (plan 0's on the
 * caller), each through veil_plan_execute; the results come back in sample
 * order, bit for bit what one plan gives (every sample's ciphertexts depend
 * on that sample only). A group of one is the single plan: its execute is
 * veil_plan_execute on the caller's thread, nothing more.
 *
 * Errors: if any share fails the call fails, returning the first failing
 * plan's status and message, prefixed with its plan and backend. With two or
 * more plans the shares write to the group's own output buffers, copied to
 * the caller's only when every share succeeded: a failed call leaves the
 * caller's outputs as they were. (A group of one writes them in place, as
 * veil_plan_execute does, and a failure may leave some outputs written.) */
typedef struct veil_plan_group veil_plan_group;

/* bes: n >= 1 backends (borrowed: they must outlive the group; the same
 * backend may appear twice). */
veil_status veil_plan_group_new(const veil_program *program, const veil_eval_key *ek,
                                veil_backend *const *bes, size_t n, size_t max_batch,
                                veil_plan_group **out);
void veil_plan_group_free(veil_plan_group *g);
size_t veil_plan_group_size(const veil_plan_group *g);
/* fn sees the PBS done by all shares together, against the whole batch's
 * total; with several plans it is called from their threads, one call at a
 * time. */
void veil_plan_group_set_progress(veil_plan_group *g, veil_progress_fn fn, void *user);
/* As veil_plan_execute, batch <= the group's max_batch. */
veil_status veil_plan_group_execute(veil_plan_group *g, const uint64_t *const *inputs, size_t batch,
                                    uint64_t *const *outputs);

#ifdef __cplusplus
}
#endif
#endif
