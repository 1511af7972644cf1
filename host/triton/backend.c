/* backend.c — libtriton_veil.so: veil as an NVIDIA Triton Inference Server
 * backend (Triton's C backend API, declared in triton_api.h).
 *
 * Two kinds of model, told apart by the config parameter `role`
 * (config.h):
 *
 *   inference (role "infer", e.g. REPO/tiny): REPO/<model>/<version>/model.h5
 *     is loaded and compiled once in TRITONBACKEND_ModelInitialize with the
 *     config's compile options. Inputs, each TYPE_STRING with dims [1]:
 *       KEY_ID     the evaluation key's id (32 hex, from veil_keys or
 *                  veil-server: the same key store)
 *       CT_BATCH   a serialized ciphertext batch (raw or seeded, S samples in
 *                  the sample-major layout of veil/deploy.h)
 *     Output RESULT, TYPE_STRING [1]: the serialized result batch. Every row
 *     is checked as veil-server checks a POST /v1/infer body (parameter set,
 *     program fingerprint, key fingerprint, whole samples, every mask 0 past
 *     the program's input width: srv_parse_infer_batch) and refused with
 *     veil's message, naming the row, as a Triton error.
 *   keys (role "keys", the model veil_keys): input EVAL_KEY, TYPE_STRING [1],
 *     a seeded evaluation key for the model's parameter set (its own
 *     model.h5 and compile options tell which); output KEY_ID, its new id.
 *     Secret keys are refused and never stored. Or, instead of EVAL_KEY
 *     (both inputs optional: one of them per request), DELETE_KEY_ID, a key
 *     id: the key is removed, as veil-server's DELETE /v1/keys/<id> does
 *     (KEY_ID answers the id; veil unknown_key, NOT_FOUND, when none is
 *     stored under it).
 *
 * Dynamic batching: Triton gathers requests (max_batch_size rows); one
 * execute call regroups all rows by key id and runs each group through the
 * key's plan in backend batches of up to `max_batch` samples (batches never
 * mix keys). Instances: KIND_CPU runs the cpu backend; KIND_GPU runs the cuda
 * backend on the instance's device (built with CUDA). Each instance keeps an
 * LRU of `key_cache` plans (evaluation keys resident in its backend); the
 * plan of a key removed from the store (deleted, pruned) is freed at once
 * when the instance idles, else when its execute ends; one another process
 * removed, at the instance's next execute or the keys model's look every 5
 * minutes. Keys
 * live in the key store of veil/keystore.h (parameter keys_dir), the one
 * veil-server uses: every instance, replica and server sharing the directory
 * serves every key uploaded to any of them.
 *
 * Every failure is answered as a Triton error carrying veil's message;
 * nothing here aborts the server. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../server/request.h"
#include "config.h"
#include "triton_api.h"
#include "veil/backend.h"
#include "veil/deploy.h"
#include "veil/exec.h"
#include "veil/keystore.h"
#include "veil/loader.h"
#include "veil/serialize.h"

/* ---- helpers ----------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void vt_log(TRITONSERVER_LogLevel level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void vt_log(TRITONSERVER_LogLevel level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    TRITONSERVER_Error *e = TRITONSERVER_LogMessage(level, __FILE__, __LINE__, msg);
    if (e) TRITONSERVER_ErrorDelete(e);
}

/* A veil failure (the thread's veil message) as a Triton error. */
static TRITONSERVER_Error *vt_error(TRITONSERVER_Error_Code code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static TRITONSERVER_Error *vt_error(TRITONSERVER_Error_Code code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return TRITONSERVER_ErrorNew(code, msg);
}

/* veil-server's HTTP status of a refusal, as a Triton error code. Triton's
 * codes are few: 507 key_store_full becomes UNAVAILABLE, which Triton answers
 * 503 over HTTP; the message's "veil key_store_full" tells it from a busy
 * server (the veil client reads both as VEIL_ERR_RANGE, README "Past one
 * machine"). */
static TRITONSERVER_Error_Code vt_srv_code(const srv_error *e) {
    if (e->status == 404) return TRITONSERVER_ERROR_NOT_FOUND;
    if (e->status == 400 || e->status == 403 || e->status == 413)
        return TRITONSERVER_ERROR_INVALID_ARG;
    if (e->status == 503 || e->status == 507) return TRITONSERVER_ERROR_UNAVAILABLE;
    return TRITONSERVER_ERROR_INTERNAL;
}

static TRITONSERVER_Error *vt_srv_error(const srv_error *e) {
    return vt_error(vt_srv_code(e), "veil %s: %s", e->code, e->message);
}

/* ---- model and instance state ------------------------------------------------- */

typedef struct vt_model {
    char name[256];
    vt_config cfg;
    veil_model *model;
    veil_program *prog;
    srv_program_info pi;
    size_t max_key_bytes;
    veil_keystore *ks; /* cfg.keys_dir, shared with every process that mounts it */
    /* key_ttl_hours: a thread prunes the store at load and every
     * VT_PRUNE_EVERY_S, off Triton's execute threads */
    pthread_t pruner;
    int pruner_started, pruner_stop;
    pthread_mutex_t pruner_mu;
    pthread_cond_t pruner_cv;
} vt_model;

#define VT_PRUNE_EVERY_S 300

static void vt_keys_removed(void);

/* key_ttl_hours: removes what has lain unused in the store, and says so. */
static void vt_prune(const vt_model *m) {
    veil_keystore_pruned n;
    if (veil_keystore_prune(m->ks, (uint64_t)m->cfg.key_ttl_hours * 3600u, &n) != VEIL_OK)
        vt_log(TRITONSERVER_LOG_ERROR, "veil model %s: key store %s: %s", m->name, m->cfg.keys_dir,
               veil_error_message());
    else if (n.keys || n.corrupt || n.temporaries)
        vt_log(TRITONSERVER_LOG_INFO,
               "veil model %s: removed %llu key(s) unused for %u h (key_ttl_hours), %llu "
               "quarantined file(s), %llu stale temporary file(s)",
               m->name, (unsigned long long)n.keys, m->cfg.key_ttl_hours,
               (unsigned long long)n.corrupt, (unsigned long long)n.temporaries);
}

static void *vt_pruner_main(void *arg) {
    vt_model *m = arg;
    pthread_mutex_lock(&m->pruner_mu);
    while (!m->pruner_stop) {
        pthread_mutex_unlock(&m->pruner_mu);
        if (m->cfg.key_ttl_hours) vt_prune(m); /* the keys model without it only looks */
        /* these keys, and those other replicas or servers sharing the
         * store removed: idle instances free their resident copies (a busy
         * one does when its execute ends) */
        vt_keys_removed();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += VT_PRUNE_EVERY_S;
        pthread_mutex_lock(&m->pruner_mu);
        while (!m->pruner_stop && pthread_cond_timedwait(&m->pruner_cv, &m->pruner_mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&m->pruner_mu);
    return NULL;
}

typedef struct vt_cache {
    char key_id[VEIL_KEY_ID_CHARS + 1];
    veil_eval_key *ek;
    veil_plan *plan;
    uint64_t last_used;
} vt_cache;

typedef struct vt_instance {
    vt_model *m;
    TRITONBACKEND_ModelInstance *ti;
    char name[256];
    veil_backend *be; /* NULL for the keys model */
    /* cache_mu: the cache, held by execute and by vt_keys_removed (another
     * thread freeing the plans of removed keys while the instance idles) */
    pthread_mutex_t cache_mu;
    int registered; /* in vt_instances (inference instances) */
    struct vt_instance *next;
    vt_cache *cache;
    uint64_t tick;
    uint64_t **in_bufs, **out_bufs; /* per model input / output, max_batch samples */
} vt_instance;

/* Every inference instance of every veil model in this process: a key
 * deleted through veil_keys or pruned frees their resident copies. */
static pthread_mutex_t vt_instances_mu = PTHREAD_MUTEX_INITIALIZER;
static vt_instance *vt_instances;

static void vt_model_free(vt_model *m) {
    if (!m) return;
    if (m->pruner_started) {
        pthread_mutex_lock(&m->pruner_mu);
        m->pruner_stop = 1;
        pthread_cond_broadcast(&m->pruner_cv);
        pthread_mutex_unlock(&m->pruner_mu);
        pthread_join(m->pruner, NULL);
        pthread_mutex_destroy(&m->pruner_mu);
        pthread_cond_destroy(&m->pruner_cv);
    }
    veil_keystore_free(m->ks);
    veil_program_free(m->prog);
    veil_model_free(m->model);
    free(m);
}

static void vt_cache_clear(vt_cache *c) {
    veil_plan_free(c->plan);
    veil_eval_key_free(c->ek);
    memset(c, 0, sizeof *c);
}

/* cache_mu held: frees the plans whose key is no longer stored (deleted,
 * pruned, quarantined; here or by another process sharing the store) instead
 * of holding their memory until evicted. One stat per resident key. */
static void vt_cache_sweep(vt_instance *s) {
    for (size_t i = 0; s->cache && i < s->m->cfg.key_cache; i++) {
        vt_cache *c = &s->cache[i];
        if (c->plan && !veil_keystore_stored(s->m->ks, c->key_id)) {
            vt_log(TRITONSERVER_LOG_INFO,
                   "veil instance %s: freed the resident copy of removed key %.8s...", s->name,
                   c->key_id);
            vt_cache_clear(c);
        }
    }
}

/* A key left the store: every idle inference instance frees its copy now;
 * a busy one does at the end of its execute. */
static void vt_keys_removed(void) {
    pthread_mutex_lock(&vt_instances_mu);
    for (vt_instance *s = vt_instances; s; s = s->next)
        if (pthread_mutex_trylock(&s->cache_mu) == 0) {
            vt_cache_sweep(s);
            pthread_mutex_unlock(&s->cache_mu);
        }
    pthread_mutex_unlock(&vt_instances_mu);
}

static void vt_instance_free(vt_instance *s) {
    if (!s) return;
    if (s->registered) {
        pthread_mutex_lock(&vt_instances_mu);
        for (vt_instance **pp = &vt_instances; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        pthread_mutex_unlock(&vt_instances_mu);
        pthread_mutex_destroy(&s->cache_mu);
    }
    for (size_t i = 0; s->cache && i < s->m->cfg.key_cache; i++)
        vt_cache_clear(&s->cache[i]);
    free(s->cache);
    for (uint32_t i = 0; s->in_bufs && i < s->m->prog->n_inputs; i++)
        free(s->in_bufs[i]);
    for (uint32_t i = 0; s->out_bufs && i < s->m->prog->n_outputs; i++)
        free(s->out_bufs[i]);
    free(s->in_bufs);
    free(s->out_bufs);
    veil_backend_free(s->be);
    free(s);
}

/* ---- backend lifecycle ------------------------------------------------------- */

TRITONSERVER_Error *TRITONBACKEND_Initialize(TRITONBACKEND_Backend *backend) {
    uint32_t major = 0, minor = 0;
    TRITONSERVER_Error *e = TRITONBACKEND_ApiVersion(&major, &minor);
    if (e) return e;
    if (major != VEIL_TRITONBACKEND_API_MAJOR || minor < VEIL_TRITONBACKEND_API_MINOR)
        return vt_error(TRITONSERVER_ERROR_UNSUPPORTED,
                        "libtriton_veil.so was built for the TRITONBACKEND API %d.%d (Triton "
                        "2.51); this Triton provides %u.%u: it needs major %d and minor >= %d",
                        VEIL_TRITONBACKEND_API_MAJOR, VEIL_TRITONBACKEND_API_MINOR, major, minor,
                        VEIL_TRITONBACKEND_API_MAJOR, VEIL_TRITONBACKEND_API_MINOR);
    if (sodium_init() < 0)
        return vt_error(TRITONSERVER_ERROR_INTERNAL, "veil: libsodium failed to initialise");
    const char *name = "veil";
    if ((e = TRITONBACKEND_BackendName(backend, &name))) return e;
    vt_log(TRITONSERVER_LOG_INFO, "veil backend '%s' loaded (TRITONBACKEND API %u.%u)", name, major,
           minor);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_Finalize(TRITONBACKEND_Backend *backend) {
    (void)backend;
    return NULL;
}

/* Triton initialises models on several threads at once; their key store,
 * HDF5 load and compile run one model at a time. A model load that never
 * returned (model tiny "not ready after 180 s" while veil_keys, loading
 * beside it, took 40 ms; twice, under load, cause not found) is the reason;
 * a model loads once, so the lock costs nothing measurable. */
static pthread_mutex_t vt_model_init_lock = PTHREAD_MUTEX_INITIALIZER;

TRITONSERVER_Error *TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model *model) {
    const char *name = NULL, *location = NULL, *json = NULL;
    uint64_t version = 0;
    size_t json_len = 0;
    TRITONBACKEND_ArtifactType art;
    TRITONSERVER_Message *msg = NULL;
    TRITONSERVER_Error *e;
    if ((e = TRITONBACKEND_ModelName(model, &name))) return e;
    if ((e = TRITONBACKEND_ModelVersion(model, &version))) return e;
    if ((e = TRITONBACKEND_ModelRepository(model, &art, &location))) return e;
    if (art != TRITONBACKEND_ARTIFACT_FILESYSTEM)
        return vt_error(TRITONSERVER_ERROR_UNSUPPORTED,
                        "veil model %s: only model repositories on a file system are supported",
                        name);
    if ((e = TRITONBACKEND_ModelConfig(model, 1, &msg))) return e;
    if ((e = TRITONSERVER_MessageSerializeToJson(msg, &json, &json_len))) {
        TRITONSERVER_MessageDelete(msg);
        return e;
    }
    vt_model *m = calloc(1, sizeof *m);
    char *copy = malloc(json_len + 1);
    if (!m || !copy) {
        free(m);
        free(copy);
        TRITONSERVER_MessageDelete(msg);
        return vt_error(TRITONSERVER_ERROR_INTERNAL, "veil model %s: out of memory", name);
    }
    memcpy(copy, json, json_len);
    copy[json_len] = 0;
    TRITONSERVER_MessageDelete(msg);
    snprintf(m->name, sizeof m->name, "%s", name);
    veil_status st = vt_config_parse(copy, json_len, &m->cfg);
    free(copy);
    if (st) {
        vt_model_free(m);
        return vt_error(TRITONSERVER_ERROR_INVALID_ARG, "veil model %s: config.pbtxt: %s", name,
                        veil_error_message());
    }
    char path[4600];
    snprintf(path, sizeof path, "%s/%llu/model.h5", location, (unsigned long long)version);
    veil_compile_options co = m->cfg.compile;
    co.simulate_only = 0;
    pthread_mutex_lock(&vt_model_init_lock);
    if ((st = veil_keystore_open(m->cfg.keys_dir, &m->ks)) == VEIL_OK &&
        (st = veil_model_load(path, &m->model)) == VEIL_OK)
        st = veil_program_compile(m->model, &co, &m->prog);
    pthread_mutex_unlock(&vt_model_init_lock);
    if (st) {
        vt_model_free(m);
        return vt_error(TRITONSERVER_ERROR_INVALID_ARG, "veil model %s: %s", name,
                        veil_error_message());
    }
    if (!m->prog->params) {
        vt_model_free(m);
        return vt_error(TRITONSERVER_ERROR_INVALID_ARG,
                        "veil model %s: %s: no parameter set fits this program (try "
                        "rounding_bits)",
                        name, path);
    }
    m->cfg.compile.params_id = NULL; /* pointed into cfg; not needed after compiling */
    srv_program_info_init(&m->pi, m->prog, m->cfg.max_request_samples, SRV_DEFAULT_MAX_BODY);
    m->max_key_bytes = veil_program_eval_key_bytes(m->prog);
    if (veil_keystore_set_max_mb(m->ks, m->cfg.key_store_max_mb, m->max_key_bytes)) {
        e = vt_error(TRITONSERVER_ERROR_INVALID_ARG, "veil model %s: parameter key_store_max_mb %s",
                     name, veil_error_message());
        vt_model_free(m);
        return e;
    }
    /* the keys model looks every VT_PRUNE_EVERY_S even without key_ttl_hours:
     * an idle instance frees the plan of a key another process removed (as
     * veil-server's reaper has its worker do), not only at its next batch */
    if (m->cfg.key_ttl_hours || m->cfg.role == VT_ROLE_KEYS) {
        pthread_mutex_init(&m->pruner_mu, NULL);
        pthread_cond_init(&m->pruner_cv, NULL);
        if (pthread_create(&m->pruner, NULL, vt_pruner_main, m) != 0) {
            pthread_mutex_destroy(&m->pruner_mu);
            pthread_cond_destroy(&m->pruner_cv);
            vt_model_free(m);
            return vt_error(TRITONSERVER_ERROR_INTERNAL,
                            "veil model %s: cannot start the key store thread", name);
        }
        m->pruner_started = 1;
    }
    char fp[2 * VEIL_PROGRAM_FP_BYTES + 1];
    veil_hex(m->pi.fp, VEIL_PROGRAM_FP_BYTES, fp);
    vt_log(TRITONSERVER_LOG_INFO,
           "veil model %s (%s): %s, parameters %s, %llu PBS per sample, up to %zu samples a "
           "request, program fingerprint %s, keys in %s",
           name, m->cfg.role == VT_ROLE_KEYS ? "key uploads" : "inference", path,
           m->prog->params->id, (unsigned long long)m->prog->pbs_per_sample, m->pi.max_samples, fp,
           m->cfg.keys_dir);
    if ((e = TRITONBACKEND_ModelSetState(model, m))) vt_model_free(m);
    return e;
}

TRITONSERVER_Error *TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model *model) {
    void *st = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelState(model, &st);
    if (e) return e;
    vt_model_free(st);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance *instance) {
    TRITONBACKEND_Model *model;
    void *mst = NULL;
    const char *name = "?";
    TRITONSERVER_InstanceGroupKind kind;
    int32_t device = 0;
    TRITONSERVER_Error *e;
    if ((e = TRITONBACKEND_ModelInstanceName(instance, &name))) return e;
    if ((e = TRITONBACKEND_ModelInstanceModel(instance, &model))) return e;
    if ((e = TRITONBACKEND_ModelState(model, &mst))) return e;
    if ((e = TRITONBACKEND_ModelInstanceKind(instance, &kind))) return e;
    if ((e = TRITONBACKEND_ModelInstanceDeviceId(instance, &device))) return e;
    vt_model *m = mst;
    vt_instance *s = calloc(1, sizeof *s);
    if (!s) return vt_error(TRITONSERVER_ERROR_INTERNAL, "veil instance %s: out of memory", name);
    s->m = m;
    s->ti = instance;
    snprintf(s->name, sizeof s->name, "%s", name);
    if (m->cfg.role == VT_ROLE_INFER) {
        veil_backend_kind bk;
        if (kind == TRITONSERVER_INSTANCEGROUPKIND_GPU)
            bk = VEIL_BACKEND_CUDA;
        else if (kind == TRITONSERVER_INSTANCEGROUPKIND_CPU)
            bk = VEIL_BACKEND_CPU;
        else {
            vt_instance_free(s);
            return vt_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "veil instance %s: instance_group kind must be KIND_CPU or KIND_GPU",
                            name);
        }
        /* the environment's overrides (VEIL_THREADS...), then Triton's device */
        veil_backend_options bo;
        veil_backend_options_default(&bo);
        veil_status st = veil_backend_options_from_env(&bo);
        if (st == VEIL_OK && bk == VEIL_BACKEND_CUDA) bo.device = device;
        if (st == VEIL_OK) st = veil_backend_new_opts(bk, &bo, &s->be);
        const size_t lwe = veil_program_ct_words(m->prog);
        s->cache = calloc(m->cfg.key_cache, sizeof *s->cache);
        s->in_bufs = calloc(m->prog->n_inputs, sizeof *s->in_bufs);
        s->out_bufs = calloc(m->prog->n_outputs, sizeof *s->out_bufs);
        int oom = !s->cache || !s->in_bufs || !s->out_bufs;
        for (uint32_t i = 0; !oom && i < m->prog->n_inputs; i++)
            oom = !(s->in_bufs[i] = malloc(m->cfg.max_batch * veil_program_input_size(m->prog, i) *
                                           lwe * sizeof(uint64_t)));
        for (uint32_t i = 0; !oom && i < m->prog->n_outputs; i++)
            oom =
                !(s->out_bufs[i] = malloc(m->cfg.max_batch * veil_program_output_size(m->prog, i) *
                                          lwe * sizeof(uint64_t)));
        if (st || oom) {
            e = vt_error(TRITONSERVER_ERROR_UNAVAILABLE, "veil instance %s: %s", name,
                         st ? veil_error_message() : "out of memory for the batch buffers");
            vt_instance_free(s);
            return e;
        }
        vt_log(TRITONSERVER_LOG_INFO, "veil instance %s: %s, batches of up to %zu samples", name,
               veil_backend_describe(s->be), m->cfg.max_batch);
        pthread_mutex_init(&s->cache_mu, NULL);
        pthread_mutex_lock(&vt_instances_mu);
        s->next = vt_instances;
        vt_instances = s;
        s->registered = 1;
        pthread_mutex_unlock(&vt_instances_mu);
    }
    if ((e = TRITONBACKEND_ModelInstanceSetState(instance, s))) vt_instance_free(s);
    return e;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance *instance) {
    void *st = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceState(instance, &st);
    if (e) return e;
    vt_instance_free(st);
    return NULL;
}

/* ---- reading requests ---------------------------------------------------------- */

/* One TYPE_STRING input of a request, gathered into one CPU buffer, and its
 * elements (rows x 1). */
typedef struct vt_strings {
    uint8_t *buf;
    size_t n;
    const uint8_t **elem;
    size_t *len;
} vt_strings;

static void vt_strings_free(vt_strings *s) {
    free(s->buf);
    free(s->elem);
    free(s->len);
    memset(s, 0, sizeof *s);
}

static TRITONSERVER_Error *vt_read_strings(TRITONBACKEND_Request *req, const char *name,
                                           vt_strings *out) {
    memset(out, 0, sizeof *out);
    TRITONBACKEND_Input *in;
    TRITONSERVER_Error *e = TRITONBACKEND_RequestInput(req, name, &in);
    if (e) {
        TRITONSERVER_ErrorDelete(e);
        return vt_error(TRITONSERVER_ERROR_INVALID_ARG, "veil: the request has no input %s", name);
    }
    TRITONSERVER_DataType dt;
    const int64_t *shape;
    uint32_t dims, nbuf;
    uint64_t bytes;
    if ((e = TRITONBACKEND_InputProperties(in, NULL, &dt, &shape, &dims, &bytes, &nbuf))) return e;
    if (dt != TRITONSERVER_TYPE_BYTES)
        return vt_error(TRITONSERVER_ERROR_INVALID_ARG, "veil: input %s must be BYTES", name);
    uint64_t count = 1;
    for (uint32_t d = 0; d < dims; d++) {
        if (shape[d] < 0 || (shape[d] > 0 && count > UINT64_MAX / (uint64_t)shape[d]))
            return vt_error(TRITONSERVER_ERROR_INVALID_ARG, "veil: input %s: bad shape", name);
        count *= (uint64_t)shape[d];
    }
    if (count == 0 || count > bytes / 4)
        return vt_error(TRITONSERVER_ERROR_INVALID_ARG,
                        "veil: input %s: %llu elements in %llu bytes", name,
                        (unsigned long long)count, (unsigned long long)bytes);
    out->buf = malloc(bytes ? bytes : 1);
    out->elem = calloc(count, sizeof *out->elem);
    out->len = calloc(count, sizeof *out->len);
    if (!out->buf || !out->elem || !out->len) {
        vt_strings_free(out);
        return vt_error(TRITONSERVER_ERROR_UNAVAILABLE, "veil: input %s: out of memory", name);
    }
    uint64_t off = 0;
    for (uint32_t b = 0; b < nbuf; b++) {
        const void *p;
        uint64_t n;
        TRITONSERVER_MemoryType mt = TRITONSERVER_MEMORY_CPU;
        int64_t mid = 0;
        if ((e = TRITONBACKEND_InputBuffer(in, b, &p, &n, &mt, &mid))) {
            vt_strings_free(out);
            return e;
        }
        if (mt == TRITONSERVER_MEMORY_GPU || off + n > bytes) {
            vt_strings_free(out);
            return vt_error(TRITONSERVER_ERROR_INVALID_ARG, "veil: input %s: %s", name,
                            mt == TRITONSERVER_MEMORY_GPU ? "in GPU memory (send it from the host)"
                                                          : "buffers larger than the tensor");
        }
        memcpy(out->buf + off, p, n);
        off += n;
    }
    /* TYPE_STRING elements: a 4-byte little-endian length, then the bytes. */
    size_t pos = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (off - pos < 4) break;
        const uint8_t *q = out->buf + pos;
        uint64_t l =
            (uint64_t)q[0] | (uint64_t)q[1] << 8 | (uint64_t)q[2] << 16 | (uint64_t)q[3] << 24;
        if (l > off - pos - 4) break;
        out->elem[i] = q + 4;
        out->len[i] = (size_t)l;
        out->n++;
        pos += 4 + (size_t)l;
    }
    if (out->n != count || pos != off) {
        vt_strings_free(out);
        return vt_error(TRITONSERVER_ERROR_INVALID_ARG,
                        "veil: input %s: malformed BYTES tensor (%llu elements declared, lengths "
                        "do not add up to %llu bytes)",
                        name, (unsigned long long)count, (unsigned long long)off);
    }
    return NULL;
}

/* Answers one request with its TYPE_STRING output (rows elements), or with
 * err (deleted here once sent). */
static void vt_respond(TRITONBACKEND_Request *req, const char *out_name, size_t rows,
                       const uint8_t *const *elem, const size_t *len, TRITONSERVER_Error *err) {
    TRITONBACKEND_Response *resp;
    TRITONSERVER_Error *e = TRITONBACKEND_ResponseNew(&resp, req);
    if (e) {
        vt_log(TRITONSERVER_LOG_ERROR, "veil: cannot create a response: %s",
               TRITONSERVER_ErrorMessage(e));
        TRITONSERVER_ErrorDelete(e);
        if (err) TRITONSERVER_ErrorDelete(err);
        return;
    }
    if (!err) {
        uint64_t total = 0;
        for (size_t i = 0; i < rows; i++)
            total += 4 + len[i];
        const int64_t shape[2] = {(int64_t)rows, 1};
        TRITONBACKEND_Output *out;
        void *buf = NULL;
        TRITONSERVER_MemoryType mt = TRITONSERVER_MEMORY_CPU;
        int64_t mid = 0;
        err = TRITONBACKEND_ResponseOutput(resp, &out, out_name, TRITONSERVER_TYPE_BYTES, shape, 2);
        if (!err) err = TRITONBACKEND_OutputBuffer(out, &buf, total, &mt, &mid);
        if (!err && mt == TRITONSERVER_MEMORY_GPU)
            err = vt_error(TRITONSERVER_ERROR_UNSUPPORTED,
                           "veil: output %s: Triton gave GPU memory; veil writes host memory",
                           out_name);
        if (!err) {
            uint8_t *p = buf;
            for (size_t i = 0; i < rows; i++) {
                uint32_t l = (uint32_t)len[i];
                p[0] = (uint8_t)l, p[1] = (uint8_t)(l >> 8), p[2] = (uint8_t)(l >> 16),
                p[3] = (uint8_t)(l >> 24);
                memcpy(p + 4, elem[i], len[i]);
                p += 4 + len[i];
            }
        }
    }
    e = TRITONBACKEND_ResponseSend(resp, TRITONSERVER_RESPONSE_COMPLETE_FINAL, err);
    if (e) {
        vt_log(TRITONSERVER_LOG_ERROR, "veil: cannot send a response: %s",
               TRITONSERVER_ErrorMessage(e));
        TRITONSERVER_ErrorDelete(e);
    }
    /* Triton copies an error response's code and message; the error stays
     * the caller's (its own backends delete it after sending too) */
    if (err) TRITONSERVER_ErrorDelete(err);
}

/* ---- the keys model -------------------------------------------------------------- */

static TRITONSERVER_Error *vt_keys_row(vt_instance *s, const uint8_t *body, size_t len,
                                       char id[VEIL_KEY_ID_CHARS + 1]) {
    const vt_model *m = s->m;
    srv_error se;
    if (len > m->max_key_bytes) {
        srv_fail(&se, 413, "body_too_large",
                 "EVAL_KEY: %zu bytes, an evaluation key for %s takes at most %zu", len,
                 m->prog->params->id, m->max_key_bytes);
        return vt_srv_error(&se);
    }
    veil_eval_key *ek = NULL;
    if (srv_parse_key_upload(&m->pi, body, len, &ek, &se)) return vt_srv_error(&se);
    veil_eval_key_free(ek);
    const veil_status st = veil_keystore_put(m->ks, body, len, id);
    if (st == VEIL_ERR_RANGE) {
        srv_fail(&se, 507, "key_store_full", "%s (parameter key_store_max_mb)",
                 veil_error_message());
        return vt_srv_error(&se);
    }
    if (st)
        return vt_error(TRITONSERVER_ERROR_INTERNAL, "veil store_failed: %s", veil_error_message());
    vt_log(TRITONSERVER_LOG_VERBOSE, "veil: stored evaluation key %.8s... (%zu bytes)", id, len);
    return NULL;
}

/* DELETE_KEY_ID: removes the key stored under id, as veil-server's DELETE
 * /v1/keys/<id> (the id is the capability; 404 unknown_key when none is
 * stored under it, a second delete included). A request already using it
 * finishes; every later one, on every instance and replica sharing the
 * store, is told unknown_key. */
static TRITONSERVER_Error *vt_delete_row(vt_instance *s, const uint8_t *v, size_t len,
                                         char id[VEIL_KEY_ID_CHARS + 1]) {
    srv_error se;
    memset(id, 0, VEIL_KEY_ID_CHARS + 1);
    if (len == VEIL_KEY_ID_CHARS) memcpy(id, v, VEIL_KEY_ID_CHARS);
    if (!veil_key_id_valid(id)) {
        srv_fail(&se, 404, "unknown_key", "DELETE_KEY_ID: not a key id (32 lower-case hex)");
        return vt_srv_error(&se);
    }
    const veil_status st = veil_keystore_delete(s->m->ks, id);
    if (st == VEIL_ERR_ARG) {
        srv_fail(&se, 404, "unknown_key", "%s", veil_error_message());
        return vt_srv_error(&se);
    }
    if (st) {
        srv_fail(&se, 500, "store_failed", "%s", veil_error_message());
        return vt_srv_error(&se);
    }
    vt_log(TRITONSERVER_LOG_VERBOSE, "veil: deleted evaluation key %.8s...", id);
    return NULL;
}

/* 1 when the request carries the input. */
static int vt_has_input(TRITONBACKEND_Request *req, const char *name) {
    TRITONBACKEND_Input *in;
    TRITONSERVER_Error *e = TRITONBACKEND_RequestInput(req, name, &in);
    if (!e) return 1;
    TRITONSERVER_ErrorDelete(e);
    return 0;
}

/* A request uploads (EVAL_KEY: KEY_ID answers the new ids) or deletes
 * (DELETE_KEY_ID: KEY_ID answers the removed ids) keys. */
static void vt_execute_keys(vt_instance *s, TRITONBACKEND_Request **reqs, uint32_t n) {
    const uint64_t exec_start = now_ns();
    uint64_t stored = 0, deleted = 0;
    for (uint32_t r = 0; r < n; r++) {
        const uint64_t t0 = now_ns();
        vt_strings keys = {0};
        const int del = vt_has_input(reqs[r], "DELETE_KEY_ID"),
                  up = vt_has_input(reqs[r], "EVAL_KEY");
        TRITONSERVER_Error *err =
            del == up ? vt_error(TRITONSERVER_ERROR_INVALID_ARG,
                                 "veil: a %s request carries EVAL_KEY (an upload) or "
                                 "DELETE_KEY_ID (a delete): %s",
                                 s->m->name, del ? "not both" : "neither is there")
                      : vt_read_strings(reqs[r], del ? "DELETE_KEY_ID" : "EVAL_KEY", &keys);
        char(*ids)[VEIL_KEY_ID_CHARS + 1] = NULL;
        const uint8_t **elem = NULL;
        size_t *len = NULL;
        if (!err) {
            ids = calloc(keys.n, sizeof *ids);
            elem = calloc(keys.n, sizeof *elem);
            len = calloc(keys.n, sizeof *len);
            if (!ids || !elem || !len)
                err = vt_error(TRITONSERVER_ERROR_UNAVAILABLE, "veil: out of memory");
        }
        for (size_t i = 0; !err && i < keys.n; i++) {
            err = del ? vt_delete_row(s, keys.elem[i], keys.len[i], ids[i])
                      : vt_keys_row(s, keys.elem[i], keys.len[i], ids[i]);
            if (!err && del) deleted++;
            elem[i] = (const uint8_t *)ids[i];
            len[i] = VEIL_KEY_ID_CHARS;
        }
        const int ok = err == NULL;
        const uint64_t t1 = now_ns();
        if (ok) stored += keys.n;
        vt_respond(reqs[r], "KEY_ID", keys.n, elem, len, err);
        TRITONSERVER_Error *e =
            TRITONBACKEND_ModelInstanceReportStatistics(s->ti, reqs[r], ok, t0, t0, t1, now_ns());
        if (e) TRITONSERVER_ErrorDelete(e);
        vt_strings_free(&keys);
        free(ids);
        free(elem);
        free(len);
    }
    if (deleted) vt_keys_removed(); /* idle instances free their resident copies */
    if (stored) {
        const uint64_t t = now_ns();
        TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceReportBatchStatistics(
            s->ti, stored, exec_start, exec_start, t, t);
        if (e) TRITONSERVER_ErrorDelete(e);
    }
}

/* ---- the inference model ----------------------------------------------------- */

/* One row of one request: a key id and a ciphertext batch. */
typedef struct vt_row {
    uint32_t req;
    char key_id[VEIL_KEY_ID_CHARS + 1];
    int key_fd; /* the key's file, open since its header was read: the key loads even if
                 * deleted or pruned meanwhile (-1: none) */
    veil_ct_batch *in, *out;
    size_t samples;
    uint8_t *result; /* serialized out */
    size_t result_len;
    int done;
} vt_row;

/* Per request: its rows and its first error. */
typedef struct vt_req {
    size_t first_row, n_rows;
    TRITONSERVER_Error *err;
    uint64_t t_start;
} vt_req;

static void vt_fail_req(vt_req *q, TRITONSERVER_Error *e) {
    if (q->err)
        TRITONSERVER_ErrorDelete(e);
    else
        q->err = e;
}

/* A key the store could not give, as veil-server answers it (unknown or
 * quarantined: the client uploads again). */
static void vt_key_error(const vt_model *m, const char *id, veil_status st, srv_error *se) {
    if (st == VEIL_ERR_ARG)
        srv_fail(se, 404, "unknown_key", "%s (upload it through the veil_keys model)",
                 veil_error_message());
    else if (st == VEIL_ERR_PARAMS)
        srv_fail(se, 400, "params_mismatch", "%s: this model runs %s", veil_error_message(),
                 m->prog->params->id);
    else if (st == VEIL_ERR_NOMEM)
        srv_fail(se, 503, "out_of_memory", "%s", veil_error_message());
    else
        srv_fail(se, 500, "key_load_failed", "key id %s: %s", id, veil_error_message());
}

/* The plan of key id, from the LRU or loaded from the key store. The least
 * recently used plan is evicted only once the new key has loaded. */
static veil_plan *vt_plan_get(vt_instance *s, const char *id, int fd, veil_eval_key **ek_out,
                              srv_error *se) {
    const vt_model *m = s->m;
    vt_cache *victim = NULL;
    for (size_t i = 0; i < m->cfg.key_cache; i++) {
        vt_cache *c = &s->cache[i];
        if (c->plan && !strcmp(c->key_id, id)) {
            c->last_used = ++s->tick;
            *ek_out = c->ek;
            return c->plan;
        }
        if (!victim || !c->plan || (victim->plan && c->last_used < victim->last_used)) victim = c;
    }
    veil_eval_key *ek;
    veil_status st =
        veil_keystore_load(m->ks, id, fd, m->prog->params, veil_backend_key_domains(s->be), &ek);
    if (st) {
        vt_key_error(m, id, st, se);
        return NULL;
    }
    vt_cache_clear(victim); /* frees the victim's device memory before planning */
    veil_plan *plan;
    veil_status pst = veil_plan_new(m->prog, ek, s->be, m->cfg.max_batch, &plan);
    if (pst != VEIL_OK) {
        if (pst == VEIL_ERR_PARAMS) /* a stored key set of another partition list */
            srv_fail(se, 400, "params_mismatch", "key %s: %s", id, veil_error_message());
        else
            srv_fail(se, 500, "plan_failed", "key %s: %s", id, veil_error_message());
        veil_eval_key_free(ek);
        return NULL;
    }
    snprintf(victim->key_id, sizeof victim->key_id, "%s", id);
    victim->ek = ek;
    victim->plan = plan;
    victim->last_used = ++s->tick;
    *ek_out = ek;
    return plan;
}

/* Runs rows[idx[0..n)] (one key id, none failed) in backend batches of up to
 * max_batch samples; failures go to their requests. */
static void vt_run_group(vt_instance *s, vt_row *rows, vt_req *reqs, const size_t *idx, size_t n) {
    const vt_model *m = s->m;
    const veil_program *p = m->prog;
    veil_eval_key *ek = NULL;
    srv_error se;
    veil_plan *plan = vt_plan_get(s, rows[idx[0]].key_id, rows[idx[0]].key_fd, &ek, &se);
    if (!plan) {
        for (size_t j = 0; j < n; j++)
            vt_fail_req(&reqs[rows[idx[j]].req], vt_srv_error(&se));
        return;
    }
    const size_t lwe = veil_program_ct_words(p);
    size_t j = 0, k = 0; /* cursor: row idx[j], its sample k */
    while (j < n) {
        /* Gather up to max_batch samples. */
        size_t b = 0, gj = j, gk = k;
        while (gj < n && b < m->cfg.max_batch) {
            const vt_row *r = &rows[idx[gj]];
            size_t off = 0;
            for (uint32_t i = 0; i < p->n_inputs; i++) {
                const size_t sz = veil_program_input_size(p, i);
                memcpy(s->in_bufs[i] + b * sz * lwe, r->in->data + (gk * m->pi.in_cts + off) * lwe,
                       sz * lwe * sizeof(uint64_t));
                off += sz;
            }
            b++;
            if (++gk == r->samples) gj++, gk = 0;
        }
        veil_status st =
            veil_plan_execute(plan, (const uint64_t *const *)s->in_bufs, b, s->out_bufs);
        /* Scatter back (the same walk). */
        for (size_t t = 0; t < b; t++) {
            vt_row *r = &rows[idx[j]];
            if (st != VEIL_OK) {
                vt_fail_req(&reqs[r->req],
                            vt_error(veil_backend_healthy(s->be) ? TRITONSERVER_ERROR_INTERNAL
                                                                 : TRITONSERVER_ERROR_UNAVAILABLE,
                                     "veil evaluation_failed: backend %s: %s",
                                     veil_backend_name(s->be), veil_error_message()));
            } else {
                size_t off = 0;
                for (uint32_t o = 0; o < p->n_outputs; o++) {
                    const size_t sz = veil_program_output_size(p, o);
                    memcpy(r->out->data + (k * m->pi.out_cts + off) * lwe,
                           s->out_bufs[o] + t * sz * lwe, sz * lwe * sizeof(uint64_t));
                    off += sz;
                }
            }
            if (++k == r->samples) j++, k = 0;
        }
    }
}

/* Reads, checks and allocates the rows of request r. */
static TRITONSERVER_Error *vt_read_request(vt_instance *s, TRITONBACKEND_Request *req, uint32_t r,
                                           vt_row **rows, size_t *n_rows, size_t *cap) {
    const vt_model *m = s->m;
    vt_strings ids, cts;
    TRITONSERVER_Error *e = vt_read_strings(req, "KEY_ID", &ids);
    if (e) return e;
    if ((e = vt_read_strings(req, "CT_BATCH", &cts))) {
        vt_strings_free(&ids);
        return e;
    }
    if (ids.n != cts.n) {
        e = vt_error(TRITONSERVER_ERROR_INVALID_ARG,
                     "veil: KEY_ID has %zu rows and CT_BATCH %zu: one key id per batch", ids.n,
                     cts.n);
        goto out;
    }
    /* max_request_samples bounds the request, all rows together: each row
     * is parsed against what the rows before it left (the decoded size) */
    srv_program_info left = m->pi;
    for (size_t i = 0; i < ids.n && !e; i++) {
        if (left.max_samples == 0) {
            srv_error se;
            srv_fail(&se, 413, "batch_too_large",
                     "CT_BATCH: row %zu and later rows past %zu samples, the most a request holds "
                     "(max_request_samples)",
                     i, m->pi.max_samples);
            e = vt_srv_error(&se);
            break;
        }
        if (*n_rows == *cap) {
            size_t c = *cap ? 2 * *cap : 16;
            vt_row *q = realloc(*rows, c * sizeof *q);
            if (!q) {
                e = vt_error(TRITONSERVER_ERROR_UNAVAILABLE, "veil: out of memory");
                break;
            }
            *rows = q;
            *cap = c;
        }
        vt_row *row = &(*rows)[*n_rows];
        memset(row, 0, sizeof *row);
        row->req = r;
        row->key_fd = -1;
        srv_error se;
        char id[VEIL_KEY_ID_CHARS + 1] = {0};
        if (ids.len[i] == VEIL_KEY_ID_CHARS) memcpy(id, ids.elem[i], VEIL_KEY_ID_CHARS);
        veil_keystore_info info;
        veil_status kst;
        if (!veil_key_id_valid(id)) {
            srv_fail(&se, 404, "unknown_key", "KEY_ID: not a key id (32 lower-case hex)");
            e = vt_srv_error(&se);
            break;
        }
        if ((kst = veil_keystore_header(m->ks, id, &info, &row->key_fd))) {
            vt_key_error(m, id, kst, &se);
            e = vt_srv_error(&se);
            break;
        }
        if (srv_parse_infer_batch(&left, cts.elem[i], cts.len[i], info.key_fp, &row->in,
                                  &row->samples, &se)) {
            /* a request holds several batches: name the one refused */
            e = vt_error(vt_srv_code(&se), "veil %s: CT_BATCH row %zu: %s", se.code, i, se.message);
            close(row->key_fd);
            break;
        }
        left.max_samples -= row->samples;
        memcpy(row->key_id, id, sizeof id);
        if (veil_ct_batch_new(m->prog->params, m->pi.big_dim, row->samples * m->pi.out_cts,
                              &row->out)) {
            veil_ct_batch_free(row->in);
            close(row->key_fd);
            e = vt_error(TRITONSERVER_ERROR_UNAVAILABLE,
                         "veil: no memory for a result of %zu samples", row->samples);
            break;
        }
        memcpy(row->out->key_fp, row->in->key_fp, VEIL_KEY_FP_BYTES);
        memcpy(row->out->model_fp, m->pi.fp_out, VEIL_PROGRAM_FP_BYTES);
        (*n_rows)++;
    }
out:
    vt_strings_free(&ids);
    vt_strings_free(&cts);
    return e;
}

static void vt_execute_infer(vt_instance *s, TRITONBACKEND_Request **treqs, uint32_t n) {
    const uint64_t exec_start = now_ns();
    vt_req *reqs = calloc(n, sizeof *reqs);
    vt_row *rows = NULL;
    size_t n_rows = 0, cap = 0;
    size_t *idx = NULL;
    if (!reqs) {
        for (uint32_t r = 0; r < n; r++)
            vt_respond(treqs[r], "RESULT", 0, NULL, NULL,
                       vt_error(TRITONSERVER_ERROR_UNAVAILABLE, "veil: out of memory"));
        return;
    }
    for (uint32_t r = 0; r < n; r++) {
        reqs[r].t_start = now_ns();
        reqs[r].first_row = n_rows;
        reqs[r].err = vt_read_request(s, treqs[r], r, &rows, &n_rows, &cap);
        reqs[r].n_rows = n_rows - reqs[r].first_row;
    }
    uint64_t rows_run = 0;
    const uint64_t compute_start = now_ns();
    idx = calloc(n_rows ? n_rows : 1, sizeof *idx);
    /* Group the rows of requests that are still good by key id, in order of
     * first appearance. */
    for (size_t i = 0; idx && i < n_rows; i++) {
        if (rows[i].done || reqs[rows[i].req].err) continue;
        size_t g = 0;
        for (size_t j = i; j < n_rows; j++)
            if (!rows[j].done && !reqs[rows[j].req].err &&
                !strcmp(rows[j].key_id, rows[i].key_id)) {
                rows[j].done = 1;
                idx[g++] = j;
            }
        vt_run_group(s, rows, reqs, idx, g);
    }
    if (!idx)
        for (uint32_t r = 0; r < n; r++)
            vt_fail_req(&reqs[r], vt_error(TRITONSERVER_ERROR_UNAVAILABLE, "veil: out of memory"));
    const uint64_t compute_end = now_ns();
    for (uint32_t r = 0; r < n; r++) {
        vt_req *q = &reqs[r];
        const uint8_t **elem = calloc(q->n_rows ? q->n_rows : 1, sizeof *elem);
        size_t *len = calloc(q->n_rows ? q->n_rows : 1, sizeof *len);
        if (!q->err && (!elem || !len))
            q->err = vt_error(TRITONSERVER_ERROR_UNAVAILABLE, "veil: out of memory");
        for (size_t i = 0; !q->err && i < q->n_rows; i++) {
            vt_row *row = &rows[q->first_row + i];
            if (veil_ct_batch_serialize(row->out, &row->result, &row->result_len))
                q->err = vt_error(TRITONSERVER_ERROR_INTERNAL, "veil serialize_failed: %s",
                                  veil_error_message());
            elem[i] = row->result;
            len[i] = row->result_len;
        }
        const int ok = q->err == NULL;
        if (ok) rows_run += q->n_rows;
        vt_respond(treqs[r], "RESULT", q->n_rows, elem, len, q->err);
        q->err = NULL;
        free(elem);
        free(len);
        TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceReportStatistics(
            s->ti, treqs[r], ok, q->t_start, compute_start, compute_end, now_ns());
        if (e) TRITONSERVER_ErrorDelete(e);
    }
    /* Triton's batch size is the rows (the batch dimension of the config), not
     * the samples in their ciphertext batches */
    if (rows_run) {
        TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceReportBatchStatistics(
            s->ti, rows_run, exec_start, compute_start, compute_end, now_ns());
        if (e) TRITONSERVER_ErrorDelete(e);
    }
    for (size_t i = 0; i < n_rows; i++) {
        if (rows[i].key_fd >= 0) close(rows[i].key_fd);
        veil_ct_batch_free(rows[i].in);
        veil_ct_batch_free(rows[i].out);
        free(rows[i].result);
    }
    free(rows);
    free(idx);
    free(reqs);
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance *instance,
                                                       TRITONBACKEND_Request **requests,
                                                       const uint32_t request_count) {
    void *st = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceState(instance, &st);
    if (e) return e;
    vt_instance *s = st;
    if (s->m->cfg.role == VT_ROLE_KEYS) {
        vt_execute_keys(s, requests, request_count);
    } else {
        pthread_mutex_lock(&s->cache_mu);
        vt_execute_infer(s, requests, request_count);
        /* keys removed while it ran (or by another replica): their plans go */
        vt_cache_sweep(s);
        pthread_mutex_unlock(&s->cache_mu);
    }
    for (uint32_t r = 0; r < request_count; r++) {
        e = TRITONBACKEND_RequestRelease(requests[r], TRITONSERVER_REQUEST_RELEASE_ALL);
        if (e) {
            vt_log(TRITONSERVER_LOG_ERROR, "veil: cannot release a request: %s",
                   TRITONSERVER_ErrorMessage(e));
            TRITONSERVER_ErrorDelete(e);
        }
    }
    return NULL;
}
