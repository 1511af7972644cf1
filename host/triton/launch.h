/* launch.h — starting NVIDIA Triton Inference Server with veil's backend on
 * this machine, for the tests (tests/test_triton.c) and the benchmark
 * (bench/bench_triton.c): find the tritonserver binary
 * (scripts/setup-triton.sh), write a model repository, start the server on
 * loopback ports, wait until its models are ready, stop it.
 *
 * A model repository for one veil model (what a user writes by hand; see
 * deploy/triton/README.md):
 *   REPO/<name>/config.pbtxt   backend "veil", inputs KEY_ID and CT_BATCH,
 *                              output RESULT, instance_group, parameters
 *   REPO/<name>/1/model.h5     (a symbolic link to the model file)
 *   REPO/veil_keys/...         the key upload model, same model file */
#ifndef VEIL_TRITON_LAUNCH_H
#define VEIL_TRITON_LAUNCH_H

#include <stddef.h>
#include <sys/types.h>

#include "veil/status.h"

typedef struct veil_triton_env {
    char server[4096]; /* the tritonserver binary */
    char libs[4096];   /* its libraries (LD_LIBRARY_PATH) */
    char python[4096]; /* the venv's python (tritonclient, numpy, PyYAML) */
} veil_triton_env;

/* Runs scripts/setup-triton.sh of source_dir (installs the venv the first
 * time, bounded by VEIL_TRITON_PIP_TIMEOUT). VEIL_ERR_UNSUPPORTED with the
 * script's reason when Triton cannot be had here (its exit 77: a skip);
 * VEIL_ERR_IO when the script failed otherwise (VEIL_REQUIRE_VENVS=1: an
 * install that should have worked did not). */
veil_status veil_triton_env_find(const char *source_dir, veil_triton_env *out);

typedef struct veil_triton_repo_options {
    const char *name;       /* the inference model's name (e.g. "tiny") */
    const char *model_path; /* the .h5 */
    const char *keys_dir;   /* the key store */
    int gpu;                /* instance_group KIND_GPU (else KIND_CPU) */
    int gpus;               /* KIND_GPU: on devices 0..gpus-1 (0: all) */
    int count;              /* instances per device (default 1) */
    int max_batch_size;     /* Triton's (requests), default 8 */
    int max_queue_delay_us; /* dynamic batching window, default 10000 */
    size_t max_batch;       /* veil's samples per backend batch, default 16 */
    const char *extra;      /* more config.pbtxt text (parameters), or NULL */
} veil_triton_repo_options;

/* Writes REPO (created) with the inference model and veil_keys. */
veil_status veil_triton_repo_write(const char *repo, const veil_triton_repo_options *o);

typedef struct veil_triton_server {
    pid_t pid;
    int http_port, grpc_port, metrics_port;
    char url[64]; /* http://127.0.0.1:<http_port> */
    char log[4200];
} veil_triton_server;

/* Starts tritonserver on 127.0.0.1 (free ports) with the backends in
 * backend_dir, output to log_path; returns when `model` answers its config
 * (at most timeout_s), or fails with the log's last lines; on that timeout
 * it first writes the log's tail, the server's threads and their stacks (gdb)
 * to stderr and to <log_path>.threads. */
veil_status veil_triton_server_start(const veil_triton_env *env, const char *repo,
                                     const char *backend_dir, const char *model,
                                     const char *log_path, int timeout_s, veil_triton_server *out);
/* 1 while the process runs. */
int veil_triton_server_alive(veil_triton_server *s);
/* SIGTERM, then SIGKILL after 20 s; reaps the process. */
void veil_triton_server_stop(veil_triton_server *s);

#endif
