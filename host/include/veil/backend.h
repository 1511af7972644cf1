/* veil/backend.h — one interface, two implementations: `cpu` (the engine's
 * reference code) and `cuda` (kernels/, batched on the GPU).
 *
 * Shape (ggml's backend buffers, TFHE-rs's scratch/run/cleanup):
 *   veil_backend_new(kind)          pick a backend (AUTO: cuda when built with
 *                                   CUDA and a device is present, else cpu)
 *   veil_backend_keys_new(be, ek, max_batch)
 *                                   upload the evaluation keys once (Fourier
 *                                   BSK on the device), make FFT plans, size
 *                                   the KS-PBS work memory for max_batch
 *   veil_backend_buffer_new(keys, count)
 *                                   count ciphertexts on the backend's device
 *                                   (host memory for cpu, device memory for
 *                                   cuda); upload / download move whole
 *                                   batches between it and the caller
 *   veil_backend_tables_new(_extract, _wop), veil_backend_weights_new_*
 *                                   test polynomials, WoP-PBS tables and
 *                                   layer weights, on the device once (at
 *                                   plan time), not per call
 *   veil_backend_ks_pbs, _wop_pbs, _linear, _conv2d, _add, _scale, _copy
 *                                   every op reads and writes buffers; none
 *                                   allocates; a KS-PBS larger than the work
 *                                   memory is split, not refused
 *
 * So a program's values never leave the device between its nodes: the
 * executor (veil/exec.h) uploads one input batch and downloads one output
 * batch. Ciphertexts are LWEs under the master key (dimension D = k*N of
 * partition 0, the widest; D+1 words each). Buffers, tables and weights
 * belong to the keys they were made with, every op takes objects of one keys
 * only, and all of them must be freed before the keys. Errors come back as
 * VEIL_ERR_DEVICE with the CUDA message. After a sticky CUDA error the backend
 * marks itself dead (veil_backend_healthy() returns 0) and refuses work. */
#ifndef VEIL_BACKEND_H
#define VEIL_BACKEND_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "veil/conv.h"
#include "veil/program.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum veil_backend_kind {
    VEIL_BACKEND_AUTO = 0,
    VEIL_BACKEND_CPU = 1,
    VEIL_BACKEND_CUDA = 2,
} veil_backend_kind;

typedef struct veil_backend veil_backend;
typedef struct veil_backend_keys veil_backend_keys;

/* AUTO as veil_backend_new resolves it: cuda when this build has it and a
 * device answers, else cpu; CPU and CUDA as they are. */
veil_backend_kind veil_backend_kind_resolve(veil_backend_kind kind);

/* Parses "auto" | "cpu" | "cuda". */
veil_status veil_backend_kind_parse(const char *s, veil_backend_kind *out);

/* The blind rotation the cuda backend runs (veil/cuda.h VEIL_CUDA_PBS_*). */
typedef enum veil_backend_pbs {
    VEIL_BACKEND_PBS_AUTO = 0, /* by parameter set and GPU (VEIL_CUDA_PBS_AUTO) */
    VEIL_BACKEND_PBS_CUFFT = 1,
    VEIL_BACKEND_PBS_FUSED = 2,
    VEIL_BACKEND_PBS_CLUSTER = 3,
    VEIL_BACKEND_PBS_SPLIT = 4,
} veil_backend_pbs;
/* Parses "auto" | "cufft" | "fused" | "cluster" | "split". */
veil_status veil_backend_pbs_parse(const char *s, veil_backend_pbs *out);

/* Most plans of one plan group (veil/exec.h veil_plan_group): entries of a
 * --devices list. */
#define VEIL_BACKEND_MAX_DEVICES 64

/* Policy of a backend, fixed at veil_backend_new_opts: the library reads no
 * environment variable. Each field serves one implementation and is ignored
 * by the other. */
typedef struct veil_backend_options {
    unsigned threads;     /* cpu: worker threads, 1..256; 0: one per online CPU */
    int device;           /* cuda: device id (one backend per GPU; Triton's instance_group) */
    veil_backend_pbs pbs; /* cuda: blind rotation kernel */
    /* cuda: at most this many MiB of batch buffers (sharing a device; tests);
     * < 0: no cap (90% of the free memory, less a margin); 0: room for no
     * batch, every keys_new fails (tests; the environment's value is >= 1). */
    int64_t memory_mb;
    /* The devices of a plan group (--devices, veil_backend_devices_parse):
     * veil_backends_new makes one backend per entry, in order, and the group
     * one plan per backend. Neither set (the default): one backend on
     * `device`. devices_all: every device of the kind, once each. A list may
     * repeat a device: several plans share it. veil_backend_new_opts itself
     * ignores these fields. */
    unsigned n_devices;
    int devices_all;
    int devices[VEIL_BACKEND_MAX_DEVICES];
} veil_backend_options;

/* threads 0, device 0, pbs auto, memory_mb -1, no device list. */
void veil_backend_options_default(veil_backend_options *o);

/* Parses the value of --devices into o: "all", or device ids (decimal
 * digits, 0..1023) separated by single commas, at most
 * VEIL_BACKEND_MAX_DEVICES of them ("0,1", "0,0"). A bad list is
 * VEIL_ERR_ARG naming the entry and what was wrong ("--devices 0,,1: entry 2
 * is empty") and leaves o unchanged. Ids are checked against the devices
 * there are by veil_backends_new. */
veil_status veil_backend_devices_parse(veil_backend_options *o, const char *s);

/* The backend options of a command line (today --devices), for every program
 * that runs a program locally (veil run, veil-server, bench_model): as
 * veil_compile_options_parse_arg, argv[*i] is consumed with its value
 * (*consumed = 1) or left (*consumed = 0); a bad or missing value is
 * VEIL_ERR_ARG naming the option. */
veil_status veil_backend_options_parse_arg(veil_backend_options *o, int argc, char *const *argv,
                                           int *i, int *consumed);
/* The worker threads a cpu backend with options o runs: o->threads, else one
 * per online CPU (1..256). */
unsigned veil_backend_cpu_threads(const veil_backend_options *o);
/* Their --help lines (text at column 27, as the compile options'). */
void veil_backend_options_help(FILE *f);
/* The environment overrides that the programs (veil, veil-server, the Triton
 * backend, the benchmarks) honour, read here and nowhere else:
 *   VEIL_THREADS         threads (digits, 1..256)
 *   VEIL_CUDA_DEVICE     device (digits)
 *   VEIL_CUDA_PBS        pbs (auto | cufft | fused | cluster)
 *   VEIL_CUDA_MEMORY_MB  memory_mb (digits)
 * An unset or empty variable leaves its field; a bad value is VEIL_ERR_ARG
 * naming the variable and what it takes, and leaves o unchanged. */
veil_status veil_backend_options_from_env(veil_backend_options *o);
/* The lines of the programs' --help that list those variables. */
void veil_backend_options_env_help(FILE *f);

/* CUDA requested but not built or no device: VEIL_ERR_UNSUPPORTED with why.
 * veil_backend_new: default options. opts NULL: the defaults. */
veil_status veil_backend_new(veil_backend_kind kind, veil_backend **out);
veil_status veil_backend_new_opts(veil_backend_kind kind, const veil_backend_options *opts,
                                  veil_backend **out);
/* For programs (the CLI, the benchmarks): the defaults, the environment's
 * overrides (veil_backend_options_from_env), then veil_backend_new_opts. */
veil_status veil_backend_new_env(veil_backend_kind kind, veil_backend **out);
void veil_backend_free(veil_backend *be);

/* The devices a kind has: cuda the visible GPUs (0 without CUDA or a
 * device); cpu exactly 1, device 0, the CPU (its cores are the backend's
 * threads). AUTO: cuda's count when it has a device, else cpu's. */
unsigned veil_backend_device_count(veil_backend_kind kind);

/* The backends of a plan group (veil/exec.h): one per device of o's list
 * (veil_backend_options.devices), in its order; without a list one, on
 * o->device (veil_backend_new_opts). AUTO is resolved once, for all of them.
 * Every id must be below veil_backend_device_count (VEIL_ERR_ARG naming the
 * entry, the id and the count); a device may repeat:
 *   cuda  one backend per entry, on its GPU; plans sharing a GPU each have
 *         their own stream, and share o->memory_mb (when set) equally;
 *   cpu   the list names device 0 (the CPU) once per plan: "0,0" is two
 *         plans, "all" one. The plans divide o->threads (0: one per online
 *         CPU) between them, contiguous shares differing by at most one, at
 *         least one thread each, so two plans of one thread each run two
 *         batch shares side by side where one plan runs one share of two.
 * Writes *n backends (1..VEIL_BACKEND_MAX_DEVICES) to out[] only on success;
 * free them with veil_backends_free. */
veil_status veil_backends_new(veil_backend_kind kind, const veil_backend_options *o,
                              veil_backend **out, size_t *n);
/* What veil_backends_new would refuse of kind and o's device list before it
 * makes anything (a cuda backend with no device, an entry the kind does not
 * have), for a command to say so before it loads and compiles. */
veil_status veil_backend_devices_check(veil_backend_kind kind, const veil_backend_options *o);
void veil_backends_free(veil_backend **bes, size_t n);
/* 1 when every one of the n backends is healthy (veil_backend_healthy). */
int veil_backends_healthy(veil_backend *const *bes, size_t n);
/* "cpu" or "cuda"; describe: e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)". */
const char *veil_backend_name(const veil_backend *be);
const char *veil_backend_describe(const veil_backend *be);
int veil_backend_healthy(const veil_backend *be);

/* 1 when the backend runs what node n of a compiled program needs (ggml's
 * supports_op): LUT needs its KS-PBS and scale, ROUND those and add, ADD its
 * add, a dense LINEAR its linear, a conv2d or sum pool its conv2d, flatten
 * and concat its copy; inputs and outputs its upload and download (which
 * every backend has). The executor asks for every node at veil_plan_new and
 * refuses, naming the layer, what the backend lacks. */
int veil_backend_supports_op(const veil_backend *be, const veil_node *n);

/* The bootstrapping keys the backend reads (veil_key_domains): the cpu's
 * the Fourier domain (VEIL_KEY_FOURIER), the cuda's the standard one, which
 * it transforms on the device (VEIL_KEY_STANDARD). Whatever loads or makes
 * keys for a backend prepares them so (veil_eval_key_prepare), and they
 * take half the BSK memory of keys kept in both domains. */
veil_key_domains veil_backend_key_domains(const veil_backend *be);

/* max_batch: ciphertexts of KS-PBS work memory (a larger veil_backend_ks_pbs
 * runs in pieces of at most that many). */
veil_status veil_backend_keys_new(veil_backend *be, const veil_eval_key *ek, size_t max_batch,
                                  veil_backend_keys **out);
/* Every buffer, table set and weight set of the keys must be freed first. */
void veil_backend_keys_free(veil_backend_keys *keys);

/* ---- buffers ------------------------------------------------------------------
 * count ciphertexts of D + 1 words on the backend's device (contents
 * undefined until written). Positions below are in ciphertexts. */
typedef struct veil_backend_buffer veil_backend_buffer;
veil_status veil_backend_buffer_new(veil_backend_keys *keys, size_t count,
                                    veil_backend_buffer **out);
void veil_backend_buffer_free(veil_backend_buffer *buf);
size_t veil_backend_buffer_count(const veil_backend_buffer *buf);
/* Host src (count ciphertexts) -> buf[0, count); buf[0, count) -> host dst.
 * Both return when the host memory may be reused / holds the result. */
veil_status veil_backend_buffer_upload(veil_backend_buffer *buf, const uint64_t *src, size_t count);
veil_status veil_backend_buffer_download(const veil_backend_buffer *buf, size_t count,
                                         uint64_t *dst);

/* ---- constants, made once at plan time ------------------------------------------
 * Test polynomials for KS-PBS with the keys of `partition` (index into the
 * evaluation key's partitions, veil/tfhe.h "Key sets"; every table must have
 * that partition's N). index NULL: every ciphertext reads luts[0]; else
 * ciphertext i of a KS-PBS reads luts[index[i]], and a KS-PBS may then take
 * at most n_index ciphertexts (per-channel activations: one table per
 * channel, no table per ciphertext). The cpu backend keeps the pointers (luts
 * must outlive the tables); cuda copies the tables and the index. */
typedef struct veil_backend_tables veil_backend_tables;
veil_status veil_backend_tables_new(veil_backend_keys *keys, uint32_t partition,
                                    const veil_lut *const *luts, size_t n_luts,
                                    const uint32_t *index, size_t n_index,
                                    veil_backend_tables **out);
/* Threshold reads (veil/tfhe.h veil_extract): one KS-PBS of `lut` (a
 * veil_lut_steps_new table) per input ciphertext, giving n_res results each;
 * result s of input i of a veil_backend_ks_pbs_extract call is extraction
 * ext[s * period + i % period] (copied). Backends without it: this returns
 * VEIL_ERR_UNSUPPORTED (and veil_backend_supports_op 0 for threshold reads). */
veil_status veil_backend_tables_new_extract(veil_backend_keys *keys, uint32_t partition,
                                            const veil_lut *lut, const veil_extract *ext,
                                            uint32_t n_res, size_t period,
                                            veil_backend_tables **out);
/* WoP-PBS lookup tables (veil/wop.h) for the keys of `partition` (a WoP
 * set's, veil_wop_params_of): n_tables tables of 2^w entries (table t at
 * tables[t << w]); ciphertext i of a veil_backend_wop_pbs call reads table
 * ((i % size) / inner) % n_tables, each result table[x] * out_delta (a
 * node's values, per channel: veil_node_table_of's rule). The cpu backend
 * keeps the pointer (tables must outlive them); cuda copies them to the
 * device. Backends without WoP-PBS: VEIL_ERR_UNSUPPORTED. */
veil_status veil_backend_tables_new_wop(veil_backend_keys *keys, uint32_t partition,
                                        const int64_t *tables, uint32_t n_tables, size_t size,
                                        size_t inner, unsigned w, uint64_t out_delta,
                                        veil_backend_tables **out);
void veil_backend_tables_free(veil_backend_tables *t);

/* The weights of a dense layer (w[o * in_features + i]) or a 2-D convolution
 * (NCHW, w[C_out][C_in][KH][KW]; geometry veil/conv.h, h_out and w_out 0 are
 * computed, else they must be what the other fields give), with an optional
 * bias of one plaintext per output feature / channel, added to the body.
 * The cpu backend keeps the pointers (w and bias must outlive the weights);
 * cuda copies them. */
typedef struct veil_backend_weights veil_backend_weights;
veil_status veil_backend_weights_new_dense(veil_backend_keys *keys, const int64_t *w,
                                           size_t in_features, size_t out_features,
                                           const uint64_t *bias, veil_backend_weights **out);
veil_status veil_backend_weights_new_conv2d(veil_backend_keys *keys, const veil_conv_geom *shape,
                                            const int64_t *w, const uint64_t *bias,
                                            veil_backend_weights **out);
void veil_backend_weights_free(veil_backend_weights *w);

/* ---- ops: buffers in, buffers out, nothing allocated ---------------------------
 * Batched keyswitch + PBS: out[0, count) = KS-PBS of in[0, count) with the
 * tables' partition and tables (a partition with a smaller k*N returns its
 * outputs zero-extended to D). in and out must differ. */
veil_status veil_backend_ks_pbs(const veil_backend_tables *t, const veil_backend_buffer *in,
                                size_t count, veil_backend_buffer *out);
/* With tables from veil_backend_tables_new_extract: count KS-PBS, n_res *
 * count results, result s of input i at out[s * count + i]. */
veil_status veil_backend_ks_pbs_extract(const veil_backend_tables *t, const veil_backend_buffer *in,
                                        size_t count, veil_backend_buffer *out);

/* WoP-PBS lookups (veil/wop.h) through tables from
 * veil_backend_tables_new_wop: count ciphertexts of in, ciphertext i read by
 * table ((i % size) / inner) % n_tables of them, each result table[x] *
 * out_delta. in and out must differ. */
veil_status veil_backend_wop_pbs(const veil_backend_tables *t, const veil_backend_buffer *in,
                                 size_t count, veil_backend_buffer *out);

/* Dense layer, exact mod 2^64, for a batch of samples (in: batch *
 * in_features, out: batch * out_features, sample-major):
 * out[b][o] = sum_i w[o][i] * in[b][i] + bias[o]. in and out must differ. */
veil_status veil_backend_linear(const veil_backend_weights *w, const veil_backend_buffer *in,
                                size_t batch, veil_backend_buffer *out);
/* 2-D convolution of a batch (in: batch * C_in*H*W, out: batch *
 * C_out*H_out*W_out), exact mod 2^64. in and out must differ. */
veil_status veil_backend_conv2d(const veil_backend_weights *w, const veil_backend_buffer *in,
                                size_t batch, veil_backend_buffer *out);

/* out[i] = a[i] + f * b[i] (every word, mod 2^64), i < count: f = 1 adds,
 * f = -1 subtracts. out may be a or b. */
veil_status veil_backend_add(veil_backend_buffer *out, const veil_backend_buffer *a,
                             const veil_backend_buffer *b, size_t count, uint64_t f);
/* out[i] = f * in[i], then pt added to its body, i < count (f = 1: add a
 * plaintext; pt = 0: scale). out may be in. */
veil_status veil_backend_scale(veil_backend_buffer *out, const veil_backend_buffer *in,
                               size_t count, uint64_t f, uint64_t pt);
/* rows runs of len ciphertexts: dst[dst_at + r * dst_stride + j] =
 * src[src_at + r * src_stride + j], r < rows, j < len (concat: each input's
 * slice of every sample; flatten: one run). dst and src must differ. */
veil_status veil_backend_copy(veil_backend_buffer *dst, size_t dst_at, size_t dst_stride,
                              const veil_backend_buffer *src, size_t src_at, size_t src_stride,
                              size_t len, size_t rows);

#ifdef __cplusplus
}
#endif
#endif
