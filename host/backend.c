/* Backend dispatch: choice of implementation, argument checks, and splitting
 * of work into pieces that fit the implementation's limits. */
#include "backend_internal.h"
#include "veil/compile_options.h"
#include "veil/wop.h"

#include <stdlib.h>
#include <string.h>

veil_status veil_backend_kind_parse(const char *s, veil_backend_kind *out) {
    if (!s || !out) return veil_error(VEIL_ERR_ARG, "backend kind: NULL argument");
    veil_backend_kind k;
    if (strcmp(s, "auto") == 0)
        k = VEIL_BACKEND_AUTO;
    else if (strcmp(s, "cpu") == 0)
        k = VEIL_BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0)
        k = VEIL_BACKEND_CUDA;
    else
        return veil_error(VEIL_ERR_ARG, "backend kind '%s': expected auto, cpu or cuda", s);
    *out = k;
    return VEIL_OK;
}

/* The blind rotation kernels by name, in veil_backend_pbs order. */
#define VEIL_PBS_EXPECTED "expected auto, cufft, fused, cluster or split"

veil_status veil_backend_pbs_parse(const char *s, veil_backend_pbs *out) {
    static const char *const names[] = {"auto", "cufft", "fused", "cluster", "split"};
    if (!s || !out) return veil_error(VEIL_ERR_ARG, "pbs kernel: NULL argument");
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (veil_backend_pbs)i;
            return VEIL_OK;
        }
    return veil_error(VEIL_ERR_ARG, "pbs kernel '%s': " VEIL_PBS_EXPECTED, s);
}

void veil_backend_options_default(veil_backend_options *o) {
    memset(o, 0, sizeof *o);
    o->pbs = VEIL_BACKEND_PBS_AUTO;
    o->memory_mb = -1;
}

static const char *env_value(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

veil_status veil_backend_options_from_env(veil_backend_options *o) {
    if (!o) return veil_error(VEIL_ERR_ARG, "veil_backend_options_from_env: NULL argument");
    veil_backend_options t = *o;
    const char *v;
    uint64_t u;
    if ((v = env_value("VEIL_THREADS"))) {
        VEIL_TRY(veil_arg_u64("VEIL_THREADS", v, 1, VEIL_THREADS_MAX, &u));
        t.threads = (unsigned)u;
    }
    if ((v = env_value("VEIL_CUDA_DEVICE"))) {
        VEIL_TRY(veil_arg_u64("VEIL_CUDA_DEVICE", v, 0, 1023, &u));
        t.device = (int)u;
    }
    if ((v = env_value("VEIL_CUDA_PBS")) && veil_backend_pbs_parse(v, &t.pbs) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG, "VEIL_CUDA_PBS=%s: " VEIL_PBS_EXPECTED, v);
    if ((v = env_value("VEIL_CUDA_MEMORY_MB"))) {
        VEIL_TRY(veil_arg_u64("VEIL_CUDA_MEMORY_MB", v, 1, (uint64_t)1 << 40, &u));
        t.memory_mb = (int64_t)u;
    }
    *o = t;
    return VEIL_OK;
}

veil_status veil_backend_new(veil_backend_kind kind, veil_backend **out) {
    return veil_backend_new_opts(kind, NULL, out);
}

/* ---- device lists (plan groups) ------------------------------------------------- */

static const char k_devices_expect[] =
    "expected all, or device ids separated by commas (0,1; a repeated id is another plan on "
    "that device)";

veil_status veil_backend_devices_parse(veil_backend_options *o, const char *s) {
    if (!o || !s) return veil_error(VEIL_ERR_ARG, "--devices: NULL argument");
    if (!strcmp(s, "all")) {
        o->devices_all = 1;
        o->n_devices = 0;
        return VEIL_OK;
    }
    if (!*s) return veil_error(VEIL_ERR_ARG, "--devices '': empty list; %s", k_devices_expect);
    int ids[VEIL_BACKEND_MAX_DEVICES];
    unsigned n = 0;
    for (const char *p = s;; n++) {
        const size_t len = strcspn(p, ",");
        if (n == VEIL_BACKEND_MAX_DEVICES)
            return veil_error(VEIL_ERR_ARG, "--devices %s: more than %d entries", s,
                              VEIL_BACKEND_MAX_DEVICES);
        if (len == 0)
            return veil_error(VEIL_ERR_ARG, "--devices %s: entry %u is empty; %s", s, n + 1,
                              k_devices_expect);
        char tok[16];
        uint64_t id = 0;
        if (len >= sizeof tok || strspn(p, "0123456789") < len)
            return veil_error(VEIL_ERR_ARG, "--devices %s: entry %u '%.*s' is not a device id; %s",
                              s, n + 1, (int)(len < 40 ? len : 40), p, k_devices_expect);
        memcpy(tok, p, len);
        tok[len] = 0;
        if (veil_arg_u64("device", tok, 0, 1023, &id) != VEIL_OK)
            return veil_error(VEIL_ERR_ARG, "--devices %s: entry %u is device %s, expected 0..1023",
                              s, n + 1, tok);
        ids[n] = (int)id;
        if (!p[len]) break;
        p += len + 1;
    }
    memcpy(o->devices, ids, (n + 1) * sizeof *ids);
    o->n_devices = n + 1;
    o->devices_all = 0;
    return VEIL_OK;
}

veil_status veil_backend_options_parse_arg(veil_backend_options *o, int argc, char *const *argv,
                                           int *i, int *consumed) {
    if (!o || !argv || !i || !consumed || *i >= argc)
        return veil_error(VEIL_ERR_ARG, "veil_backend_options_parse_arg: bad argument");
    *consumed = 0;
    if (strcmp(argv[*i], "--devices")) return VEIL_OK;
    if (*i + 1 >= argc)
        return veil_error(VEIL_ERR_ARG, "--devices needs a value (%s)", k_devices_expect);
    VEIL_TRY(veil_backend_devices_parse(o, argv[*i + 1]));
    *i += 1;
    *consumed = 1;
    return VEIL_OK;
}

void veil_backend_options_help(FILE *f) {
    fputs("  --devices LIST|all       one plan per listed device, each with its own copy of the\n"
          "                           evaluation key; a batch is cut into contiguous shares that\n"
          "                           run side by side (cuda: GPU ids, all = every visible GPU,\n"
          "                           an id twice = two plans on that GPU; cpu: 0 once per plan,\n"
          "                           0,0 = two plans sharing the threads; default: one plan)\n",
          f);
}

veil_backend_kind veil_backend_kind_resolve(veil_backend_kind kind) {
    if (kind != VEIL_BACKEND_AUTO) return kind;
    return veil_backend_cuda_available(NULL, 0) ? VEIL_BACKEND_CUDA : VEIL_BACKEND_CPU;
}

unsigned veil_backend_device_count(veil_backend_kind kind) {
    const unsigned cuda = veil_backend_cuda_device_count();
    if (kind == VEIL_BACKEND_CUDA || (kind == VEIL_BACKEND_AUTO && cuda > 0)) return cuda;
    return 1;
}

void veil_backends_free(veil_backend **bes, size_t n) {
    for (size_t i = 0; bes && i < n; i++) {
        veil_backend_free(bes[i]);
        bes[i] = NULL;
    }
}

int veil_backends_healthy(veil_backend *const *bes, size_t n) {
    if (!bes || n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!veil_backend_healthy(bes[i])) return 0;
    return 1;
}

/* The device of each plan o asks for, into ids (*n of them), kind resolved:
 * VEIL_ERR_ARG naming the entry a kind does not have, VEIL_ERR_UNSUPPORTED
 * where cuda has no device. */
static veil_status plan_devices(veil_backend_kind kind, const veil_backend_options *opts,
                                int ids[VEIL_BACKEND_MAX_DEVICES], size_t *n_out) {
    const veil_backend_options o = *opts;
    const char *name = kind == VEIL_BACKEND_CUDA ? "cuda" : "cpu";
    size_t n = 0;
    if (kind == VEIL_BACKEND_CUDA && !veil_backend_cuda_available(NULL, 0)) {
        char why[256];
        veil_backend_cuda_available(why, sizeof why);
        return veil_error(VEIL_ERR_UNSUPPORTED, "%s cuda backend has no device: %s",
                          o.devices_all || o.n_devices ? "--devices: the" : "the", why);
    }
    if (o.n_devices > VEIL_BACKEND_MAX_DEVICES)
        return veil_error(VEIL_ERR_ARG, "--devices: %u entries, at most %d", o.n_devices,
                          VEIL_BACKEND_MAX_DEVICES);
    if (o.devices_all || o.n_devices) {
        const unsigned count = veil_backend_device_count(kind); /* >= 1: checked above */
        n = o.devices_all ? (count < VEIL_BACKEND_MAX_DEVICES ? count : VEIL_BACKEND_MAX_DEVICES)
                          : o.n_devices;
        for (size_t i = 0; i < n; i++) {
            ids[i] = o.devices_all ? (int)i : o.devices[i];
            if (ids[i] < 0 || (unsigned)ids[i] >= count) {
                char list[VEIL_BACKEND_MAX_DEVICES * 6] = "";
                for (size_t k = 0, at = 0; k < n && at < sizeof list; k++)
                    at += (size_t)snprintf(list + at, sizeof list - at, "%s%d", k ? "," : "",
                                           o.devices[k]);
                return veil_error(VEIL_ERR_ARG,
                                  "--devices %s: entry %zu is device %d, but the %s backend has %u "
                                  "device%s (%s)",
                                  list, i + 1, ids[i], name, count, count == 1 ? "" : "s",
                                  kind == VEIL_BACKEND_CPU
                                      ? "0, the CPU: name it once per plan, 0,0 is two plans"
                                      : "ids from 0; all: every one");
            }
        }
    } else {
        ids[0] = o.device;
        n = 1;
    }
    *n_out = n;
    return VEIL_OK;
}

veil_status veil_backend_devices_check(veil_backend_kind kind, const veil_backend_options *o) {
    veil_backend_options d;
    veil_backend_options_default(&d);
    int ids[VEIL_BACKEND_MAX_DEVICES];
    size_t n = 0;
    return plan_devices(veil_backend_kind_resolve(kind), o ? o : &d, ids, &n);
}

veil_status veil_backends_new(veil_backend_kind kind, const veil_backend_options *opts,
                              veil_backend **out, size_t *n_out) {
    if (!out || !n_out) return veil_error(VEIL_ERR_ARG, "veil_backends_new: NULL argument");
    veil_backend_options o;
    veil_backend_options_default(&o);
    if (opts) o = *opts;
    kind = veil_backend_kind_resolve(kind);
    int ids[VEIL_BACKEND_MAX_DEVICES];
    size_t n = 0;
    VEIL_TRY(plan_devices(kind, &o, ids, &n));
    /* cpu: the plans divide the threads; cuda: plans of one GPU its memory cap */
    const unsigned threads = kind == VEIL_BACKEND_CPU ? veil_backend_cpu_threads(&o) : 0;
    veil_backend *bes[VEIL_BACKEND_MAX_DEVICES] = {0};
    veil_status st = VEIL_OK;
    for (size_t i = 0; st == VEIL_OK && i < n; i++) {
        veil_backend_options bo = o;
        bo.n_devices = 0;
        bo.devices_all = 0;
        bo.device = ids[i];
        if (kind == VEIL_BACKEND_CPU && n > 1) {
            /* the spare threads to the first plans, as veil_plan_group_execute
             * gives them the spare samples: equal shares finish together */
            const unsigned t = (unsigned)(threads * (n - i) / n - threads * (n - i - 1) / n);
            bo.threads = t ? t : 1;
        }
        if (kind == VEIL_BACKEND_CUDA && o.memory_mb >= 0) {
            int64_t sharing = 0;
            for (size_t j = 0; j < n; j++)
                sharing += ids[j] == ids[i];
            bo.memory_mb = o.memory_mb / sharing;
        }
        st = veil_backend_new_opts(kind, &bo, &bes[i]);
        if (st != VEIL_OK && n > 1)
            veil_error_prefix("--devices: entry %zu (device %d): ", i + 1, ids[i]);
    }
    if (st != VEIL_OK) {
        veil_backends_free(bes, n);
        return st;
    }
    memcpy(out, bes, n * sizeof *bes);
    *n_out = n;
    return VEIL_OK;
}

void veil_backend_options_env_help(FILE *f) {
    fputs("  VEIL_THREADS=N            cpu backend: worker threads (default: one per CPU)\n"
          "  VEIL_CUDA_DEVICE=N        cuda backend: the GPU (default 0; --devices, where a\n"
          "                            command has it, lists several)\n"
          "  VEIL_CUDA_PBS=auto|cufft|fused|cluster|split\n"
          "                            cuda backend: the blind rotation kernel (default auto;\n"
          "                            split: N = 8192 to 32768, opt-in)\n"
          "  VEIL_CUDA_MEMORY_MB=N     cuda backend: cap on its batch buffers (default: 90% of\n"
          "                            the free memory)\n",
          f);
}

veil_status veil_backend_new_env(veil_backend_kind kind, veil_backend **out) {
    veil_backend_options o;
    veil_backend_options_default(&o);
    VEIL_TRY(veil_backend_options_from_env(&o));
    return veil_backend_new_opts(kind, &o, out);
}

veil_status veil_backend_new_opts(veil_backend_kind kind, const veil_backend_options *opts,
                                  veil_backend **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_backend_new: out is NULL");
    veil_backend_options o;
    veil_backend_options_default(&o);
    if (opts) o = *opts;
    if (o.threads > VEIL_THREADS_MAX)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: threads %u, expected 0..%u", o.threads,
                          VEIL_THREADS_MAX);
    if (o.device < 0)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: device %d, expected >= 0", o.device);
    if ((unsigned)o.pbs > VEIL_BACKEND_PBS_SPLIT)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: unknown pbs kernel %d", (int)o.pbs);
    if (kind != VEIL_BACKEND_AUTO && kind != VEIL_BACKEND_CPU && kind != VEIL_BACKEND_CUDA)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: unknown kind %d", (int)kind);
    kind = veil_backend_kind_resolve(kind);
    veil_backend *be = calloc(1, sizeof *be);
    if (!be) return veil_error(VEIL_ERR_NOMEM, "veil_backend_new: out of memory");
    be->kind = kind;
    be->opts = o;
    veil_status s =
        kind == VEIL_BACKEND_CUDA ? veil_backend_cuda_init(be) : veil_backend_cpu_init(be);
    if (s != VEIL_OK) {
        free(be);
        return s;
    }
    *out = be;
    return VEIL_OK;
}

void veil_backend_free(veil_backend *be) {
    if (!be) return;
    if (be->iface && be->iface->free) be->iface->free(be);
    free(be);
}

const char *veil_backend_name(const veil_backend *be) {
    return be && be->iface ? be->iface->name : "none";
}

veil_key_domains veil_backend_key_domains(const veil_backend *be) {
    return be && be->kind == VEIL_BACKEND_CUDA ? VEIL_KEY_STANDARD : VEIL_KEY_FOURIER;
}

const char *veil_backend_describe(const veil_backend *be) {
    return be ? be->describe : "none";
}

int veil_backend_healthy(const veil_backend *be) {
    return be && !be->dead;
}

int veil_backend_supports_op(const veil_backend *be, const veil_node *n) {
    if (!be || !be->iface || !n) return 0;
    const struct veil_backend_i *f = be->iface;
    switch (n->kind) {
    case VEIL_NODE_INPUT:
    case VEIL_NODE_OUTPUT:
        return 1; /* upload and download: every backend has them */
    case VEIL_NODE_ADD:
        return f->add != NULL;
    case VEIL_NODE_ROUND:
        return f->ks_pbs && f->scale && f->add;
    case VEIL_NODE_LUT: /* threshold reads: their extraction (program.h); WoP: its op */
        return f->scale && (n->wop                    ? f->wop_pbs != NULL
                            : n->rotation_results > 1 ? f->ks_pbs_extract != NULL
                                                      : f->ks_pbs != NULL);
    case VEIL_NODE_LINEAR:
        switch (n->linear) {
        case VEIL_LINEAR_DENSE:
            return f->linear != NULL;
        case VEIL_LINEAR_CONV2D:
        case VEIL_LINEAR_SUMPOOL2D:
            return f->conv2d != NULL;
        case VEIL_LINEAR_FLATTEN:
        case VEIL_LINEAR_CONCAT:
            return f->copy != NULL;
        }
        return 0;
    }
    return 0;
}

static veil_status check_alive(const veil_backend_keys *keys, const char *what) {
    if (!keys) return veil_error(VEIL_ERR_ARG, "%s: NULL argument", what);
    if (keys->be->dead)
        return veil_error(VEIL_ERR_DEVICE,
                          "%s: backend %s is dead after an earlier unrecoverable device error",
                          what, keys->be->iface->name);
    return VEIL_OK;
}

static veil_status check_op(const veil_backend_keys *keys, const void *op, const char *what) {
    VEIL_TRY(check_alive(keys, what));
    if (!op)
        return veil_error(VEIL_ERR_UNSUPPORTED, "%s: not supported by backend %s", what,
                          keys->be->iface->name);
    return VEIL_OK;
}

veil_status veil_backend_keys_new(veil_backend *be, const veil_eval_key *ek, size_t max_batch,
                                  veil_backend_keys **out) {
    if (!be || !ek || !out) return veil_error(VEIL_ERR_ARG, "veil_backend_keys_new: NULL argument");
    if (be->dead)
        return veil_error(VEIL_ERR_DEVICE, "veil_backend_keys_new: backend %s is dead",
                          be->iface->name);
    if (!ek->params || !ek->parts || ek->n_parts < 1)
        return veil_error(VEIL_ERR_ARG, "veil_backend_keys_new: evaluation key without partitions");
    for (uint32_t i = 0; i < ek->n_parts; i++)
        if (!ek->parts[i].params || !ek->parts[i].ksk32) /* the BSK: the backend's own check */
            return veil_error(VEIL_ERR_ARG,
                              "veil_backend_keys_new: partition %u of the evaluation key without "
                              "params or ksk",
                              i);
    if (max_batch == 0)
        return veil_error(VEIL_ERR_ARG, "veil_backend_keys_new: max_batch must be > 0");
    veil_backend_keys *k = calloc(1, sizeof *k);
    if (!k) return veil_error(VEIL_ERR_NOMEM, "veil_backend_keys_new: out of memory");
    k->be = be;
    k->ek = ek;
    k->params = ek->params;
    k->max_batch = max_batch;
    k->lwe = (size_t)veil_params_big_dim(ek->params) + 1;
    k->limits.max_pbs = SIZE_MAX;
    veil_status s = be->iface->keys_new(be, k, max_batch);
    if (s != VEIL_OK) {
        free(k);
        return s;
    }
    VEIL_ASSERT(k->limits.max_pbs > 0);
    *out = k;
    return VEIL_OK;
}

void veil_backend_keys_free(veil_backend_keys *keys) {
    if (!keys) return;
    VEIL_ASSERT(keys->n_live == 0); /* a buffer, table or weight set outlives its keys */
    if (keys->be->iface->keys_free) keys->be->iface->keys_free(keys);
    free(keys);
}

void veil_backend_keys_limits(veil_backend_keys *keys, const veil_backend_limits *lim) {
    if (lim->max_pbs && lim->max_pbs < keys->limits.max_pbs) keys->limits.max_pbs = lim->max_pbs;
}

static int mul_overflows(size_t a, size_t b, size_t *r) {
    if (a && b > SIZE_MAX / a) return 1;
    *r = a * b;
    return 0;
}

/* ---- buffers ---------------------------------------------------------------- */

veil_status veil_backend_buffer_new(veil_backend_keys *keys, size_t count,
                                    veil_backend_buffer **out) {
    VEIL_TRY(check_alive(keys, "buffer_new"));
    if (!out) return veil_error(VEIL_ERR_ARG, "buffer_new: out is NULL");
    size_t words;
    if (count == 0 || mul_overflows(count, keys->lwe, &words) || words > SIZE_MAX / 8)
        return veil_error(VEIL_ERR_ARG,
                          "buffer_new: %zu ciphertexts, expected 1.. (and a size "
                          "that fits memory)",
                          count);
    veil_backend_buffer *b = calloc(1, sizeof *b);
    if (!b) return veil_error(VEIL_ERR_NOMEM, "buffer_new: out of memory");
    veil_status s = keys->be->iface->buffer_alloc(keys, words, &b->data);
    if (s != VEIL_OK) {
        free(b);
        return s;
    }
    b->keys = keys;
    b->count = count;
    keys->n_live++;
    *out = b;
    return VEIL_OK;
}

void veil_backend_buffer_free(veil_backend_buffer *buf) {
    if (!buf) return;
    buf->keys->be->iface->buffer_free(buf->keys, buf->data);
    buf->keys->n_live--;
    free(buf);
}

size_t veil_backend_buffer_count(const veil_backend_buffer *buf) {
    return buf ? buf->count : 0;
}

/* buf holds [at, at + n) (n > 0 or an empty range at <= count). */
static veil_status check_range(const veil_backend_buffer *buf, size_t at, size_t n,
                               const char *what, const char *name) {
    if (!buf) return veil_error(VEIL_ERR_ARG, "%s: %s is NULL", what, name);
    if (at > buf->count || n > buf->count - at)
        return veil_error(VEIL_ERR_ARG, "%s: %s holds %zu ciphertexts, the call needs [%zu, %zu)",
                          what, name, buf->count, at, at + n);
    return VEIL_OK;
}

/* a and b made with the same keys. */
static veil_status check_same(const veil_backend_keys *a, const veil_backend_keys *b,
                              const char *what) {
    if (a != b) return veil_error(VEIL_ERR_ARG, "%s: objects of two different backend keys", what);
    return VEIL_OK;
}

veil_status veil_backend_buffer_upload(veil_backend_buffer *buf, const uint64_t *src,
                                       size_t count) {
    VEIL_TRY(check_range(buf, 0, count, "upload", "buf"));
    VEIL_TRY(check_alive(buf->keys, "upload"));
    if (count == 0) return VEIL_OK;
    if (!src) return veil_error(VEIL_ERR_ARG, "upload: src is NULL");
    return buf->keys->be->iface->upload(buf->keys, buf->data, src, count * buf->keys->lwe);
}

veil_status veil_backend_buffer_download(const veil_backend_buffer *buf, size_t count,
                                         uint64_t *dst) {
    VEIL_TRY(check_range(buf, 0, count, "download", "buf"));
    VEIL_TRY(check_alive(buf->keys, "download"));
    if (count == 0) return VEIL_OK;
    if (!dst) return veil_error(VEIL_ERR_ARG, "download: dst is NULL");
    return buf->keys->be->iface->download(buf->keys, dst, buf->data, count * buf->keys->lwe);
}

/* ---- tables and weights --------------------------------------------------------- */

/* Checked tables (proto's fields) to the backend, which sets their impl;
 * *out only on success. */
static veil_status tables_finish(veil_backend_keys *keys, const veil_backend_tables *proto,
                                 const veil_lut *const *luts, const uint32_t *index,
                                 veil_backend_tables **out) {
    veil_backend_tables *t = malloc(sizeof *t);
    if (!t) return veil_error(VEIL_ERR_NOMEM, "tables_new: out of memory");
    *t = *proto;
    t->keys = keys;
    t->impl = NULL;
    veil_status s = keys->be->iface->tables_new(keys, t, luts, index);
    if (s != VEIL_OK) {
        free(t);
        return s;
    }
    keys->n_live++;
    *out = t;
    return VEIL_OK;
}

/* veil_backend_tables_new, with the extractions (ext: n_res * period, owned
 * by the tables once made; NULL: none) set before the backend sees them. */
static veil_status tables_make(veil_backend_keys *keys, uint32_t partition,
                               const veil_lut *const *luts, size_t n_luts, const uint32_t *index,
                               size_t n_index, veil_extract *ext, uint32_t n_res, size_t period,
                               veil_backend_tables **out) {
    VEIL_TRY(check_op(keys, keys ? keys->be->iface->ks_pbs : NULL, "tables_new"));
    if (!out) return veil_error(VEIL_ERR_ARG, "tables_new: out is NULL");
    if (partition >= keys->ek->n_parts)
        return veil_error(VEIL_ERR_ARG, "tables_new: partition %u, the evaluation key has %u",
                          partition, keys->ek->n_parts);
    if (!luts || n_luts == 0) return veil_error(VEIL_ERR_ARG, "tables_new: no lookup tables");
    if (n_luts > UINT32_MAX) return veil_error(VEIL_ERR_ARG, "tables_new: %zu tables", n_luts);
    if (!index) {
        n_luts = 1; /* only luts[0] is read */
        n_index = 0;
    } else if (n_index == 0) {
        return veil_error(VEIL_ERR_ARG, "tables_new: an index of 0 entries");
    }
    const veil_params *p = keys->ek->parts[partition].params;
    for (size_t t = 0; t < n_luts; t++) {
        if (!luts[t] || !luts[t]->poly)
            return veil_error(VEIL_ERR_ARG, "tables_new: luts[%zu] is NULL", t);
        if (luts[t]->poly_size != p->poly_size)
            return veil_error(VEIL_ERR_PARAMS,
                              "tables_new: luts[%zu] has polynomial size %u, keys of partition "
                              "%u (%s) have N = %u",
                              t, luts[t]->poly_size, partition, p->id, p->poly_size);
    }
    for (size_t i = 0; i < n_index; i++)
        if (index[i] >= n_luts)
            return veil_error(VEIL_ERR_ARG, "tables_new: index[%zu] = %u, only %zu tables", i,
                              index[i], n_luts);
    const veil_backend_tables proto = {.partition = partition,
                                       .n_luts = n_luts,
                                       .n_index = n_index,
                                       .ext = ext,
                                       .n_res = n_res,
                                       .period = period};
    return tables_finish(keys, &proto, luts, index, out);
}

veil_status veil_backend_tables_new(veil_backend_keys *keys, uint32_t partition,
                                    const veil_lut *const *luts, size_t n_luts,
                                    const uint32_t *index, size_t n_index,
                                    veil_backend_tables **out) {
    return tables_make(keys, partition, luts, n_luts, index, n_index, NULL, 0, 0, out);
}

veil_status veil_backend_tables_new_extract(veil_backend_keys *keys, uint32_t partition,
                                            const veil_lut *lut, const veil_extract *ext,
                                            uint32_t n_res, size_t period,
                                            veil_backend_tables **out) {
    VEIL_TRY(check_op(keys, keys ? keys->be->iface->ks_pbs_extract : NULL, "tables_new_extract"));
    if (!out || !ext || n_res == 0 || period == 0)
        return veil_error(VEIL_ERR_ARG, "tables_new_extract: NULL argument or no extraction");
    if (lut && partition < keys->ek->n_parts) {
        const uint32_t N = keys->ek->parts[partition].params->poly_size;
        for (size_t e = 0; e < (size_t)n_res * period; e++)
            if (ext[e].coef != VEIL_EXTRACT_TRIVIAL && ext[e].coef >= N)
                return veil_error(VEIL_ERR_ARG,
                                  "tables_new_extract: ext[%zu] extracts coefficient %u, N = %u", e,
                                  ext[e].coef, N);
    }
    veil_extract *copy = malloc((size_t)n_res * period * sizeof *copy);
    if (!copy) return veil_error(VEIL_ERR_NOMEM, "tables_new_extract: out of memory");
    memcpy(copy, ext, (size_t)n_res * period * sizeof *copy);
    veil_status s = tables_make(keys, partition, &lut, 1, NULL, 0, copy, n_res, period, out);
    if (s != VEIL_OK) {
        free(copy);
        veil_error_prefix("tables_new_extract: ");
    }
    return s;
}

veil_status veil_backend_tables_new_wop(veil_backend_keys *keys, uint32_t partition,
                                        const int64_t *tables, uint32_t n_tables, size_t size,
                                        size_t inner, unsigned w, uint64_t out_delta,
                                        veil_backend_tables **out) {
    VEIL_TRY(check_op(keys, keys ? keys->be->iface->wop_pbs : NULL, "tables_new_wop"));
    if (!out) return veil_error(VEIL_ERR_ARG, "tables_new_wop: out is NULL");
    if (partition >= keys->ek->n_parts)
        return veil_error(VEIL_ERR_ARG, "tables_new_wop: partition %u, the evaluation key has %u",
                          partition, keys->ek->n_parts);
    if (!tables || !n_tables)
        return veil_error(VEIL_ERR_ARG, "tables_new_wop: no tables (%u given)", n_tables);
    if (!size || !inner)
        return veil_error(VEIL_ERR_ARG, "tables_new_wop: size %zu and inner %zu must be positive",
                          size, inner);
    if (w < 1 || w > VEIL_WOP_MAX_WIDTH)
        return veil_error(VEIL_ERR_ARG, "tables_new_wop: %u bits (1 to %u)", w, VEIL_WOP_MAX_WIDTH);
    const veil_params *p = keys->ek->parts[partition].params;
    if (!veil_wop_params_of(p))
        return veil_error(VEIL_ERR_ARG, "tables_new_wop: partition %u (%s) is not a WoP set's",
                          partition, p->id);
    const veil_backend_tables proto = {.partition = partition,
                                       .n_luts = n_tables,
                                       .wop = tables,
                                       .wop_w = w,
                                       .wop_size = size,
                                       .wop_inner = inner,
                                       .out_delta = out_delta};
    return tables_finish(keys, &proto, NULL, NULL, out);
}

void veil_backend_tables_free(veil_backend_tables *t) {
    if (!t) return;
    t->keys->be->iface->tables_free(t->keys, t);
    t->keys->n_live--;
    free(t->ext);
    free(t);
}

static veil_status weights_make(veil_backend_keys *keys, veil_backend_weights *proto,
                                const int64_t *w, size_t n_w, const uint64_t *bias, size_t n_bias,
                                veil_backend_weights **out) {
    veil_backend_weights *x = malloc(sizeof *x);
    if (!x) return veil_error(VEIL_ERR_NOMEM, "weights_new: out of memory");
    *x = *proto;
    x->keys = keys;
    x->has_bias = bias != NULL;
    x->impl = NULL;
    veil_status s = keys->be->iface->weights_new(keys, x, w, n_w, bias, n_bias);
    if (s != VEIL_OK) {
        free(x);
        return s;
    }
    keys->n_live++;
    *out = x;
    return VEIL_OK;
}

veil_status veil_backend_weights_new_dense(veil_backend_keys *keys, const int64_t *w,
                                           size_t in_features, size_t out_features,
                                           const uint64_t *bias, veil_backend_weights **out) {
    VEIL_TRY(check_op(keys, keys ? keys->be->iface->linear : NULL, "linear"));
    if (!w || !out) return veil_error(VEIL_ERR_ARG, "linear: weights or out is NULL");
    size_t n_w;
    if (in_features == 0 || out_features == 0 || in_features > UINT32_MAX ||
        out_features > UINT32_MAX || mul_overflows(in_features, out_features, &n_w))
        return veil_error(VEIL_ERR_ARG, "linear: %zu x %zu weights, expected 1..2^32 each",
                          out_features, in_features);
    veil_backend_weights proto = {.in_features = in_features, .out_features = out_features};
    return weights_make(keys, &proto, w, n_w, bias, out_features, out);
}

veil_status veil_backend_weights_new_conv2d(veil_backend_keys *keys, const veil_conv_geom *shape,
                                            const int64_t *w, const uint64_t *bias,
                                            veil_backend_weights **out) {
    VEIL_TRY(check_op(keys, keys ? keys->be->iface->conv2d : NULL, "conv2d"));
    if (!shape || !w || !out) return veil_error(VEIL_ERR_ARG, "conv2d: shape, w or out is NULL");
    veil_conv_geom geom = *shape;
    const veil_conv_geom *s = &geom;
    if (!s->c_in || !s->h_in || !s->w_in || !s->c_out || !s->kh || !s->kw)
        return veil_error(VEIL_ERR_ARG,
                          "conv2d: zero dimension (c_in %u, h %u, w %u, c_out %u, kernel %ux%u)",
                          s->c_in, s->h_in, s->w_in, s->c_out, s->kh, s->kw);
    if (!s->stride_h || !s->stride_w)
        return veil_error(VEIL_ERR_ARG, "conv2d: stride %ux%u must be > 0", s->stride_h,
                          s->stride_w);
    if (!veil_conv_geom_finish(&geom)) {
        if (!veil_conv_out_dim(s->h_in, s->kh, s->stride_h, s->pad_h) ||
            !veil_conv_out_dim(s->w_in, s->kw, s->stride_w, s->pad_w))
            return veil_error(VEIL_ERR_ARG, "conv2d: kernel %ux%u larger than padded input %ux%u",
                              s->kh, s->kw, s->h_in + 2 * s->pad_h, s->w_in + 2 * s->pad_w);
        return veil_error(VEIL_ERR_ARG, "conv2d: output %ux%u, the geometry gives %ux%u", s->h_out,
                          s->w_out, veil_conv_out_dim(s->h_in, s->kh, s->stride_h, s->pad_h),
                          veil_conv_out_dim(s->w_in, s->kw, s->stride_w, s->pad_w));
    }
    veil_backend_weights proto = {.conv = 1, .geom = geom};
    const size_t n_w = (size_t)s->c_out * s->c_in * s->kh * s->kw;
    return weights_make(keys, &proto, w, n_w, bias, s->c_out, out);
}

void veil_backend_weights_free(veil_backend_weights *w) {
    if (!w) return;
    w->keys->be->iface->weights_free(w->keys, w);
    w->keys->n_live--;
    free(w);
}

/* ---- ops ------------------------------------------------------------------------ */

veil_status veil_backend_ks_pbs(const veil_backend_tables *t, const veil_backend_buffer *in,
                                size_t count, veil_backend_buffer *out) {
    if (!t) return veil_error(VEIL_ERR_ARG, "ks_pbs: tables is NULL");
    veil_backend_keys *keys = t->keys;
    VEIL_TRY(check_alive(keys, "ks_pbs"));
    VEIL_TRY(check_range(in, 0, count, "ks_pbs", "in"));
    VEIL_TRY(check_range(out, 0, count, "ks_pbs", "out"));
    VEIL_TRY(check_same(keys, in->keys, "ks_pbs"));
    VEIL_TRY(check_same(keys, out->keys, "ks_pbs"));
    if (in == out) return veil_error(VEIL_ERR_ARG, "ks_pbs: in and out are the same buffer");
    if (t->wop)
        return veil_error(VEIL_ERR_ARG, "ks_pbs: WoP-PBS tables (veil_backend_wop_pbs reads them)");
    if (t->n_index && count > t->n_index)
        return veil_error(VEIL_ERR_ARG, "ks_pbs: %zu ciphertexts, the tables index %zu", count,
                          t->n_index);
    const size_t lwe = keys->lwe, piece = keys->limits.max_pbs;
    for (size_t done = 0; done < count; done += piece) {
        size_t c = count - done < piece ? count - done : piece;
        VEIL_TRY(keys->be->iface->ks_pbs(keys, t, done, in->data + done * lwe, c,
                                         out->data + done * lwe));
    }
    return VEIL_OK;
}

veil_status veil_backend_ks_pbs_extract(const veil_backend_tables *t, const veil_backend_buffer *in,
                                        size_t count, veil_backend_buffer *out) {
    if (!t || !t->ext)
        return veil_error(VEIL_ERR_ARG,
                          "ks_pbs_extract: tables NULL or not from tables_new_extract");
    veil_backend_keys *keys = t->keys;
    VEIL_TRY(check_op(keys, keys->be->iface->ks_pbs_extract, "ks_pbs_extract"));
    VEIL_TRY(check_range(in, 0, count, "ks_pbs_extract", "in"));
    if (count && (size_t)t->n_res > SIZE_MAX / count)
        return veil_error(VEIL_ERR_ARG, "ks_pbs_extract: %zu results of %u", count, t->n_res);
    VEIL_TRY(check_range(out, 0, count * t->n_res, "ks_pbs_extract", "out"));
    VEIL_TRY(check_same(keys, in->keys, "ks_pbs_extract"));
    VEIL_TRY(check_same(keys, out->keys, "ks_pbs_extract"));
    if (in == out)
        return veil_error(VEIL_ERR_ARG, "ks_pbs_extract: in and out are the same buffer");
    const size_t lwe = keys->lwe, piece = keys->limits.max_pbs;
    for (size_t done = 0; done < count; done += piece) {
        size_t c = count - done < piece ? count - done : piece;
        VEIL_TRY(keys->be->iface->ks_pbs_extract(keys, t, done, in->data + done * lwe, c,
                                                 out->data + done * lwe, count));
    }
    return VEIL_OK;
}

veil_status veil_backend_wop_pbs(const veil_backend_tables *t, const veil_backend_buffer *in,
                                 size_t count, veil_backend_buffer *out) {
    if (!t || !t->wop)
        return veil_error(VEIL_ERR_ARG, "wop_pbs: tables NULL or not from tables_new_wop");
    veil_backend_keys *keys = t->keys;
    VEIL_TRY(check_op(keys, keys->be->iface->wop_pbs, "wop_pbs"));
    VEIL_TRY(check_range(in, 0, count, "wop_pbs", "in"));
    VEIL_TRY(check_range(out, 0, count, "wop_pbs", "out"));
    VEIL_TRY(check_same(keys, in->keys, "wop_pbs"));
    VEIL_TRY(check_same(keys, out->keys, "wop_pbs"));
    if (in == out) return veil_error(VEIL_ERR_ARG, "wop_pbs: in and out are the same buffer");
    return keys->be->iface->wop_pbs(keys, t, in->data, count, out->data);
}

static veil_status linear_args(const veil_backend_weights *w, int conv,
                               const veil_backend_buffer *in, size_t batch,
                               const veil_backend_buffer *out, const char *what) {
    if (!w) return veil_error(VEIL_ERR_ARG, "%s: weights is NULL", what);
    VEIL_TRY(check_alive(w->keys, what));
    if (w->conv != conv)
        return veil_error(VEIL_ERR_ARG, "%s: the weights are of a %s layer", what,
                          w->conv ? "conv2d" : "dense");
    const veil_conv_geom *g = &w->geom;
    const size_t per_in = conv ? (size_t)g->c_in * g->h_in * g->w_in : w->in_features;
    const size_t per_out = conv ? (size_t)g->c_out * g->h_out * g->w_out : w->out_features;
    size_t n_in, n_out;
    if (mul_overflows(batch, per_in, &n_in) || mul_overflows(batch, per_out, &n_out) ||
        batch > UINT32_MAX)
        return veil_error(VEIL_ERR_ARG, "%s: batch %zu is too large", what, batch);
    VEIL_TRY(check_range(in, 0, n_in, what, "in"));
    VEIL_TRY(check_range(out, 0, n_out, what, "out"));
    VEIL_TRY(check_same(w->keys, in->keys, what));
    VEIL_TRY(check_same(w->keys, out->keys, what));
    if (in == out) return veil_error(VEIL_ERR_ARG, "%s: in and out are the same buffer", what);
    return VEIL_OK;
}

veil_status veil_backend_linear(const veil_backend_weights *w, const veil_backend_buffer *in,
                                size_t batch, veil_backend_buffer *out) {
    VEIL_TRY(linear_args(w, 0, in, batch, out, "linear"));
    if (batch == 0) return VEIL_OK;
    return w->keys->be->iface->linear(w->keys, w, in->data, batch, out->data);
}

veil_status veil_backend_conv2d(const veil_backend_weights *w, const veil_backend_buffer *in,
                                size_t batch, veil_backend_buffer *out) {
    VEIL_TRY(linear_args(w, 1, in, batch, out, "conv2d"));
    if (batch == 0) return VEIL_OK;
    return w->keys->be->iface->conv2d(w->keys, w, in->data, batch, out->data);
}

veil_status veil_backend_add(veil_backend_buffer *out, const veil_backend_buffer *a,
                             const veil_backend_buffer *b, size_t count, uint64_t f) {
    VEIL_TRY(check_range(out, 0, count, "add", "out"));
    VEIL_TRY(check_range(a, 0, count, "add", "a"));
    VEIL_TRY(check_range(b, 0, count, "add", "b"));
    VEIL_TRY(check_same(out->keys, a->keys, "add"));
    VEIL_TRY(check_same(out->keys, b->keys, "add"));
    VEIL_TRY(check_op(out->keys, out->keys->be->iface->add, "add"));
    if (count == 0) return VEIL_OK;
    return out->keys->be->iface->add(out->keys, out->data, a->data, b->data, count, f);
}

veil_status veil_backend_scale(veil_backend_buffer *out, const veil_backend_buffer *in,
                               size_t count, uint64_t f, uint64_t pt) {
    VEIL_TRY(check_range(out, 0, count, "scale", "out"));
    VEIL_TRY(check_range(in, 0, count, "scale", "in"));
    VEIL_TRY(check_same(out->keys, in->keys, "scale"));
    VEIL_TRY(check_op(out->keys, out->keys->be->iface->scale, "scale"));
    if (count == 0) return VEIL_OK;
    return out->keys->be->iface->scale(out->keys, out->data, in->data, count, f, pt);
}

veil_status veil_backend_copy(veil_backend_buffer *dst, size_t dst_at, size_t dst_stride,
                              const veil_backend_buffer *src, size_t src_at, size_t src_stride,
                              size_t len, size_t rows) {
    if (!dst || !src) return veil_error(VEIL_ERR_ARG, "copy: dst or src is NULL");
    VEIL_TRY(check_same(dst->keys, src->keys, "copy"));
    VEIL_TRY(check_op(dst->keys, dst->keys->be->iface->copy, "copy"));
    if (dst == src) return veil_error(VEIL_ERR_ARG, "copy: dst and src are the same buffer");
    if (len == 0 || rows == 0) return VEIL_OK;
    /* the last run ends at at + (rows - 1) * stride + len */
    size_t dst_span, src_span;
    if (mul_overflows(rows - 1, dst_stride, &dst_span) ||
        mul_overflows(rows - 1, src_stride, &src_span) || dst_span > SIZE_MAX - len ||
        src_span > SIZE_MAX - len)
        return veil_error(VEIL_ERR_ARG, "copy: %zu runs of stride %zu/%zu are too large", rows,
                          dst_stride, src_stride);
    if (rows > 1 && (dst_stride < len || src_stride < len))
        return veil_error(VEIL_ERR_ARG, "copy: strides %zu/%zu below the run length %zu",
                          dst_stride, src_stride, len);
    VEIL_TRY(check_range(dst, dst_at, dst_span + len, "copy", "dst"));
    VEIL_TRY(check_range(src, src_at, src_span + len, "copy", "src"));
    const size_t lwe = dst->keys->lwe;
    return dst->keys->be->iface->copy(dst->keys, dst->data + dst_at * lwe, dst_stride * lwe,
                                      src->data + src_at * lwe, src_stride * lwe, len * lwe, rows);
}
