/* The cpu backend: the engine's reference code (veil_ks_pbs, veil_lwe_dot)
 * behind the backend interface. Its buffers are host memory (malloc), its
 * tables and weights borrow the caller's (nothing is copied: the pointers
 * are the device data), so the ops run on the executor's memory in place. Lookups run on worker
 * threads, one PBS context (FFT tables and buffers) per thread, made once in keys_new. A batch is
 * cut into one contiguous share per thread, sizes differing by at most one: every KS-PBS costs the
 * same, so the shares take the same time. Within a share, lookups run in groups sharing each key
 * read. Fewer lookups than threads: a lone lookup's keyswitch is split over the threads, and a
 * multi-bit set's lookups (and threshold reads) run on a team of threads each (veil_pbs_threads:
 * the groups' GGSW sums formed by every thread of the team). */
#include "backend_internal.h"
#include "veil/fft.h"
#include "veil/ks32.h"
#include "veil/wop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cpu_keys {
    unsigned n_threads;
    uint32_t n_parts;
    veil_pbs_ctx **ctx; /* n_parts * n_threads: partition x, thread t at x * n_threads + t */
    veil_wop_ctx **wop; /* the same for WoP partitions (veil_wop_params_of), else NULL */
    uint64_t *ks_part;  /* n_threads x (n+1) (largest n): one lookup's keyswitch, split */
} cpu_keys;

/* options.threads, else one per online CPU; a lone lookup uses the threads
 * too (cpu_ks_pbs), so max_batch does not bound it. */
unsigned veil_backend_cpu_threads(const veil_backend_options *o) {
    if (!o->threads) return veil_online_cpus();
    return o->threads > VEIL_THREADS_MAX ? VEIL_THREADS_MAX : o->threads;
}

static void cpu_keys_free(veil_backend_keys *keys) {
    cpu_keys *c = keys->impl;
    if (!c) return;
    if (c->ctx)
        for (size_t t = 0; t < (size_t)c->n_threads * c->n_parts; t++)
            veil_pbs_ctx_free(c->ctx[t]);
    if (c->wop)
        for (size_t t = 0; t < (size_t)c->n_threads * c->n_parts; t++)
            veil_wop_ctx_free(c->wop[t]);
    free(c->ctx);
    free(c->wop);
    free(c->ks_part);
    free(c);
    keys->impl = NULL;
}

static veil_status cpu_keys_new(veil_backend *be, veil_backend_keys *keys, size_t max_batch) {
    const veil_eval_key *ek = keys->ek;
    VEIL_TRY(veil_eval_key_check_domains(ek, VEIL_KEY_FOURIER, "cpu keys"));
    cpu_keys *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "cpu keys: out of memory");
    keys->impl = c;
    c->n_threads = veil_backend_cpu_threads(&be->opts);
    c->n_parts = ek->n_parts;
    c->ctx = calloc((size_t)c->n_threads * c->n_parts, sizeof *c->ctx);
    c->wop = calloc((size_t)c->n_threads * c->n_parts, sizeof *c->wop);
    uint32_t n_max = 0;
    for (uint32_t x = 0; x < ek->n_parts; x++)
        if (ek->parts[x].params->lwe_dim > n_max) n_max = ek->parts[x].params->lwe_dim;
    c->ks_part = malloc(sizeof(uint64_t) * c->n_threads * ((size_t)n_max + 1));
    if (!c->ctx || !c->wop || !c->ks_part) {
        cpu_keys_free(keys);
        return veil_error(VEIL_ERR_NOMEM, "cpu keys: out of memory");
    }
    for (size_t t = 0; t < (size_t)c->n_threads * c->n_parts; t++) {
        const veil_pbs_key *pk = &ek->parts[t / c->n_threads];
        const veil_wop_params *wp = veil_wop_params_of(pk->params);
        veil_status s = veil_pbs_ctx_new(pk->params, &c->ctx[t]);
        if (s == VEIL_OK && wp) s = veil_wop_ctx_new(wp, pk->in_dim, &c->wop[t]);
        if (s != VEIL_OK) {
            cpu_keys_free(keys);
            return s;
        }
    }
    (void)be;
    snprintf(keys->detail, sizeof keys->detail, "%u thread%s, %u partition%s", c->n_threads,
             c->n_threads == 1 ? "" : "s", c->n_parts, c->n_parts == 1 ? "" : "s");
    return VEIL_OK;
}

/* ---- one parallel loop for every operation --------------------------------
 * Items [0, count) are cut into one contiguous share per thread, sizes
 * differing by at most one; within an operation every item costs the same
 * (a KS-PBS, an output neuron, an output pixel), so the shares take the same
 * time. Each item's result depends only on the item, so the output is the
 * same bit for bit whatever the thread count. Thread 0's share runs on the
 * caller; a thread that cannot start has its share run there too. */
typedef void (*cpu_task_fn)(void *arg, unsigned thread, size_t begin, size_t end);

typedef struct cpu_share {
    cpu_task_fn fn;
    void *arg;
    unsigned thread;
    size_t begin, end;
} cpu_share;

static void *cpu_share_run(void *p) {
    cpu_share *sh = p;
    sh->fn(sh->arg, sh->thread, sh->begin, sh->end);
    return NULL;
}

static void cpu_parallel(unsigned nt, size_t count, cpu_task_fn fn, void *arg) {
    if ((size_t)nt > count) nt = (unsigned)count;
    if (nt <= 1) {
        if (count) fn(arg, 0, 0, count);
        return;
    }
    cpu_share sh[VEIL_THREADS_MAX];
    pthread_t tid[VEIL_THREADS_MAX];
    int started[VEIL_THREADS_MAX] = {0};
    for (unsigned t = 0; t < nt; t++)
        sh[t] = (cpu_share){fn, arg, t, count * t / nt, count * (t + 1) / nt};
    for (unsigned t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, cpu_share_run, &sh[t]) == 0;
    cpu_share_run(&sh[0]);
    for (unsigned t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            cpu_share_run(&sh[t]);
    }
}

/* Threads for a leveled operation of `ops` word multiply-adds: one per
 * ~2^18 (below that, starting a thread costs more than it saves). */
static unsigned cpu_threads_for(const cpu_keys *c, double ops) {
    const double per = (double)(1u << 18);
    return ops < 2 * per ? 1 : ops / per < c->n_threads ? (unsigned)(ops / per) : c->n_threads;
}

typedef struct pbs_job {
    const veil_pbs_key *pk;
    uint64_t *ks_part;  /* cpu_keys.ks_part */
    veil_pbs_ctx **ctx; /* the partition's, one per thread */
    const uint64_t *in;
    uint64_t *out;
    const veil_lut *const *luts;
    const uint32_t *lut_index; /* NULL: luts[0] for all */
    size_t lwe;
    unsigned n_threads; /* contexts in ctx */
    size_t count;       /* lookups in the call */
} pbs_job;

/* The tables' implementation: the caller's veil_lut pointers and a copy of
 * the index. */
typedef struct cpu_tables {
    const veil_lut **luts;
    uint32_t *index;
} cpu_tables;

static veil_status cpu_tables_new(veil_backend_keys *keys, veil_backend_tables *t,
                                  const veil_lut *const *luts, const uint32_t *index) {
    (void)keys;
    if (t->wop) return VEIL_OK; /* WoP-PBS tables: the caller's (t->wop), nothing more */
    cpu_tables *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "cpu tables: out of memory");
    c->luts = malloc(t->n_luts * sizeof *c->luts);
    c->index = t->n_index ? malloc(t->n_index * sizeof *c->index) : NULL;
    if (!c->luts || (t->n_index && !c->index)) {
        free(c->luts);
        free(c->index);
        free(c);
        return veil_error(VEIL_ERR_NOMEM, "cpu tables: out of memory");
    }
    memcpy(c->luts, luts, t->n_luts * sizeof *c->luts);
    if (t->n_index) memcpy(c->index, index, t->n_index * sizeof *c->index);
    t->impl = c;
    return VEIL_OK;
}

static void cpu_tables_free(veil_backend_keys *keys, veil_backend_tables *t) {
    cpu_tables *c = t->impl;
    (void)keys;
    if (!c) return;
    free(c->luts);
    free(c->index);
    free(c);
}

/* A share runs VEIL_KS_LANES lookups at a time in lockstep: each group
 * reads the keys once (veil_ks_pbs_many: the keyswitching key once per 32,
 * the bootstrapping key once per 8), so the threads ask the memory for a
 * fraction of what one-at-a-time lookups would, and do not queue on it. */
static void pbs_share(void *arg, unsigned thread, size_t begin, size_t end) {
    pbs_job *j = arg;
    for (size_t b = begin; b < end; b += VEIL_KS_LANES) {
        const size_t g = end - b < VEIL_KS_LANES ? end - b : VEIL_KS_LANES;
        const veil_lut *luts[VEIL_KS_LANES];
        for (size_t i = 0; i < g; i++)
            luts[i] = j->luts[j->lut_index ? j->lut_index[b + i] : 0];
        veil_ks_pbs_many(j->ctx[thread], j->pk, luts, j->in + b * j->lwe, g, j->out + b * j->lwe);
    }
}

/* One multi-bit lookup per share (begin + 1 == end, one share a lookup),
 * on its team of n_threads / count threads (veil_ks_pbs_threads). */
static void team_share(void *arg, unsigned thread, size_t begin, size_t end) {
    pbs_job *j = arg;
    (void)end;
    const unsigned team = j->n_threads / (unsigned)j->count;
    veil_ks_pbs_threads(j->ctx + (size_t)thread * team, team, j->pk,
                        j->luts[j->lut_index ? j->lut_index[begin] : 0], j->in + begin * j->lwe,
                        j->out + begin * j->lwe);
}

static void ks_part_share(void *arg, unsigned thread, size_t begin, size_t end) {
    pbs_job *j = arg;
    veil_keyswitch_part(j->pk, j->in, (uint32_t)begin, (uint32_t)end,
                        j->ks_part + (size_t)thread * (j->pk->params->lwe_dim + 1));
}

static veil_status cpu_ks_pbs(veil_backend_keys *keys, const veil_backend_tables *t, size_t at,
                              const uint64_t *in, size_t count, uint64_t *out) {
    cpu_keys *c = keys->impl;
    const cpu_tables *ct = t->impl;
    const uint32_t partition = t->partition;
    const veil_lut *const *luts = ct->luts;
    const uint32_t *lut_index = ct->index ? ct->index + at : NULL;
    pbs_job job = {.pk = &keys->ek->parts[partition],
                   .ks_part = c->ks_part,
                   .ctx = c->ctx + (size_t)partition * c->n_threads,
                   .in = in,
                   .out = out,
                   .luts = luts,
                   .lut_index = lut_index,
                   .lwe = keys->lwe,
                   .n_threads = c->n_threads,
                   .count = count};
    if (count == 1 && c->n_threads > 1) {
        /* one lookup: its keyswitch (a stream over the keyswitching key's
         * rows up to its mask's end, veil_keyswitch_rows) split over the
         * threads, then the PBS on this one; a thread without a share (a
         * mask narrower than the thread count) adds 0 */
        const uint32_t n = job.pk->params->lwe_dim, big = job.pk->in_dim;
        memset(c->ks_part, 0, sizeof *c->ks_part * c->n_threads * (n + 1));
        cpu_parallel(c->n_threads, veil_keyswitch_rows(job.pk, in), ks_part_share, &job);
        uint64_t *small = c->ks_part; /* thread 0's share, summed in place */
        for (unsigned th = 1; th < c->n_threads; th++)
            for (uint32_t i = 0; i <= n; i++)
                small[i] += c->ks_part[(size_t)th * (n + 1) + i];
        small[n] += veil_ks32_body(in[big]);
        /* a multi-bit PBS on every thread; a classic one on this one */
        veil_pbs_threads(job.ctx, c->n_threads, job.pk, luts[lut_index ? lut_index[0] : 0], small,
                         out);
        return VEIL_OK;
    }
    if (job.pk->params->grouping >= 2 && c->n_threads / count >= 2) {
        /* fewer multi-bit lookups than threads: a team of threads each */
        cpu_parallel((unsigned)count, count, team_share, &job);
        return VEIL_OK;
    }
    cpu_parallel(c->n_threads, count, pbs_share, &job);
    return VEIL_OK;
}

typedef struct extract_job {
    const veil_pbs_key *pk;
    veil_pbs_ctx **ctx;
    const veil_backend_tables *t;
    const veil_lut *lut;
    const uint64_t *in;
    uint64_t *out;
    size_t at, out_stride, lwe;
    unsigned n_threads; /* contexts in ctx */
    size_t count;       /* inputs in the call */
} extract_job;

/* VEIL_KS_LANES inputs at a time, as pbs_share */
static void extract_share(void *arg, unsigned thread, size_t begin, size_t end) {
    extract_job *j = arg;
    for (size_t b = begin; b < end; b += VEIL_KS_LANES) {
        const size_t g = end - b < VEIL_KS_LANES ? end - b : VEIL_KS_LANES;
        veil_ks_pbs_many_extract(j->ctx[thread], j->pk, j->lut, j->in + b * j->lwe, g, j->t->ext,
                                 j->t->n_res, j->t->period, j->at + b, j->out + b * j->lwe,
                                 j->out_stride);
    }
}

/* One multi-bit input per share on its team of n_threads / count threads
 * (veil_ks_pbs_threads_extract), as team_share. */
static void extract_team_share(void *arg, unsigned thread, size_t begin, size_t end) {
    extract_job *j = arg;
    (void)end;
    const unsigned team = j->n_threads / (unsigned)j->count;
    veil_ks_pbs_threads_extract(j->ctx + (size_t)thread * team, team, j->pk, j->lut,
                                j->in + begin * j->lwe, j->t->ext, j->t->n_res, j->t->period,
                                j->at + begin, j->out + begin * j->lwe, j->out_stride);
}

static veil_status cpu_ks_pbs_extract(veil_backend_keys *keys, const veil_backend_tables *t,
                                      size_t at, const uint64_t *in, size_t count, uint64_t *out,
                                      size_t out_stride) {
    cpu_keys *c = keys->impl;
    const cpu_tables *ct = t->impl;
    extract_job job = {.pk = &keys->ek->parts[t->partition],
                       .ctx = c->ctx + (size_t)t->partition * c->n_threads,
                       .t = t,
                       .lut = ct->luts[0],
                       .in = in,
                       .out = out,
                       .at = at,
                       .out_stride = out_stride,
                       .lwe = keys->lwe,
                       .n_threads = c->n_threads,
                       .count = count};
    if (job.pk->params->grouping >= 2 && c->n_threads / count >= 2) {
        /* fewer multi-bit inputs than half the threads: a team each */
        cpu_parallel((unsigned)count, count, extract_team_share, &job);
        return VEIL_OK;
    }
    cpu_parallel(c->n_threads, count, extract_share, &job);
    return VEIL_OK;
}

typedef struct wop_job {
    const veil_pbs_key *pk;
    veil_wop_ctx **ctx; /* the partition's, one per thread */
    const int64_t *tables;
    uint32_t n_tables;
    size_t size, inner, lwe;
    unsigned w;
    uint64_t out_delta;
    const uint64_t *in;
    uint64_t *out;
    veil_status st[VEIL_THREADS_MAX]; /* per thread: the first error */
    char msg[VEIL_THREADS_MAX][256];  /* and its message (thread-local where it was set) */
} wop_job;

static void wop_share(void *arg, unsigned thread, size_t begin, size_t end) {
    wop_job *j = arg;
    for (size_t i = begin; i < end && j->st[thread] == VEIL_OK; i++) {
        const size_t tab = ((i % j->size) / j->inner) % j->n_tables;
        j->st[thread] = veil_wop_pbs(j->ctx[thread], j->pk, j->tables + (tab << j->w), j->w, 0,
                                     j->out_delta, j->in + i * j->lwe, j->out + i * j->lwe);
        if (j->st[thread] != VEIL_OK)
            snprintf(j->msg[thread], sizeof j->msg[thread], "%s", veil_error_message());
    }
}

/* One WoP-PBS a ciphertext, the batch cut into one share a thread (every
 * lookup costs the same). */
static veil_status cpu_wop_pbs(veil_backend_keys *keys, const veil_backend_tables *t,
                               const uint64_t *in, size_t count, uint64_t *out) {
    cpu_keys *c = keys->impl;
    const uint32_t partition = t->partition;
    if (!c->wop[(size_t)partition * c->n_threads])
        return veil_error(VEIL_ERR_ARG, "wop_pbs: partition %u (%s) is not a WoP set's", partition,
                          keys->ek->parts[partition].params->id);
    wop_job *j = calloc(1, sizeof *j);
    if (!j) return veil_error(VEIL_ERR_NOMEM, "wop_pbs: out of memory");
    *j = (wop_job){.pk = &keys->ek->parts[partition],
                   .ctx = &c->wop[(size_t)partition * c->n_threads],
                   .tables = t->wop,
                   .n_tables = (uint32_t)t->n_luts,
                   .size = t->wop_size,
                   .inner = t->wop_inner,
                   .lwe = keys->lwe,
                   .w = t->wop_w,
                   .out_delta = t->out_delta,
                   .in = in,
                   .out = out};
    cpu_parallel(c->n_threads, count, wop_share, j);
    veil_status st = VEIL_OK;
    unsigned failed = 0;
    for (unsigned th = 0; th < c->n_threads && st == VEIL_OK; th++)
        if ((st = j->st[th]) != VEIL_OK) failed = th;
    /* the message of the thread that failed, not this thread's last one */
    if (st != VEIL_OK) veil_error(st, "%s", j->msg[failed]);
    free(j);
    return st;
}

/* The weights' implementation: the caller's arrays. */
typedef struct cpu_weights {
    const int64_t *w;
    const uint64_t *bias;
} cpu_weights;

static veil_status cpu_weights_new(veil_backend_keys *keys, veil_backend_weights *w,
                                   const int64_t *weights, size_t n_w, const uint64_t *bias,
                                   size_t n_bias) {
    (void)keys;
    (void)n_w;
    (void)n_bias;
    cpu_weights *c = malloc(sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "cpu weights: out of memory");
    c->w = weights;
    c->bias = bias;
    w->impl = c;
    return VEIL_OK;
}

static void cpu_weights_free(veil_backend_keys *keys, veil_backend_weights *w) {
    (void)keys;
    free(w->impl);
}

typedef struct linear_job {
    const uint64_t *in;
    const int64_t *w;
    const uint64_t *bias;
    size_t in_features, out_features;
    uint32_t d;
    uint64_t *out;
} linear_job;

/* item i: sample i / out_features, output neuron i % out_features */
static void linear_share(void *arg, unsigned thread, size_t begin, size_t end) {
    const linear_job *j = arg;
    const size_t lwe = (size_t)j->d + 1;
    (void)thread;
    for (size_t i = begin; i < end; i++) {
        const size_t b = i / j->out_features, o = i % j->out_features;
        uint64_t *y = j->out + i * lwe;
        veil_lwe_dot(y, j->in + b * j->in_features * lwe, j->w + o * j->in_features, j->in_features,
                     j->d);
        if (j->bias) veil_lwe_add_plain(y, j->bias[o], j->d);
    }
}

static veil_status cpu_linear(veil_backend_keys *keys, const veil_backend_weights *w,
                              const uint64_t *in, size_t batch, uint64_t *out) {
    const cpu_weights *cw = w->impl;
    linear_job job = {in, cw->w, cw->bias, w->in_features, w->out_features, (uint32_t)keys->lwe - 1,
                      out};
    const size_t items = batch * w->out_features;
    const double ops = (double)items * (double)w->in_features * (double)keys->lwe;
    cpu_parallel(cpu_threads_for(keys->impl, ops), items, linear_share, &job);
    return VEIL_OK;
}

typedef struct conv_job {
    const uint64_t *in;
    const veil_conv_geom *s;
    const int64_t *w;
    const uint64_t *bias;
    uint32_t d, ho, wo;
    uint64_t *out;
} conv_job;
/* item i: (sample, output channel, output row, output column), row-major */
static void conv_share(void *arg, unsigned thread, size_t begin, size_t end) {
    const conv_job *j = arg;
    const veil_conv_geom *s = j->s;
    const size_t lwe = (size_t)j->d + 1;
    const size_t per_in = (size_t)s->c_in * s->h_in * s->w_in;
    const size_t per_out = (size_t)s->c_out * j->ho * j->wo;
    (void)thread;
    for (size_t i = begin; i < end; i++) {
        const size_t b = i / per_out, r = i % per_out;
        const uint32_t co = (uint32_t)(r / ((size_t)j->ho * j->wo));
        const uint32_t oy = (uint32_t)(r / j->wo % j->ho), ox = (uint32_t)(r % j->wo);
        const uint64_t *x = j->in + b * per_in * lwe;
        const int64_t *wc = j->w + (size_t)co * s->c_in * s->kh * s->kw;
        uint64_t *y = j->out + i * lwe;
        memset(y, 0, sizeof(uint64_t) * lwe);
        for (uint32_t ci = 0; ci < s->c_in; ci++) {
            for (uint32_t ky = 0; ky < s->kh; ky++) {
                int64_t iy = (int64_t)oy * s->stride_h + ky - s->pad_h;
                if (iy < 0 || iy >= s->h_in) continue;
                for (uint32_t kx = 0; kx < s->kw; kx++) {
                    int64_t ix = (int64_t)ox * s->stride_w + kx - s->pad_w;
                    if (ix < 0 || ix >= s->w_in) continue;
                    const uint64_t wv = (uint64_t)wc[((size_t)ci * s->kh + ky) * s->kw + kx];
                    if (!wv) continue;
                    const uint64_t *xc =
                        x + (((size_t)ci * s->h_in + (size_t)iy) * s->w_in + (size_t)ix) * lwe;
                    for (size_t t = 0; t < lwe; t++)
                        y[t] += wv * xc[t];
                }
            }
        }
        if (j->bias) y[j->d] += j->bias[co];
    }
}

static veil_status cpu_conv2d(veil_backend_keys *keys, const veil_backend_weights *w,
                              const uint64_t *in, size_t batch, uint64_t *out) {
    const cpu_weights *cw = w->impl;
    const veil_conv_geom *s = &w->geom;
    conv_job job = {in, s, cw->w, cw->bias, (uint32_t)keys->lwe - 1, s->h_out, s->w_out, out};
    const size_t items = batch * s->c_out * job.ho * job.wo;
    const double ops = (double)items * (double)s->c_in * s->kh * s->kw * (double)keys->lwe;
    cpu_parallel(cpu_threads_for(keys->impl, ops), items, conv_share, &job);
    return VEIL_OK;
}

/* ---- buffers and elementwise ops ------------------------------------------ */

static veil_status cpu_buffer_alloc(veil_backend_keys *keys, size_t words, uint64_t **data) {
    (void)keys;
    *data = malloc(words * sizeof **data);
    if (!*data) return veil_error(VEIL_ERR_NOMEM, "cpu buffer: out of memory for %zu words", words);
    return VEIL_OK;
}

static void cpu_buffer_free(veil_backend_keys *keys, uint64_t *data) {
    (void)keys;
    free(data);
}

/* upload, download and copy: memcpy (the buffers are host memory) */
static veil_status cpu_move(veil_backend_keys *keys, uint64_t *dst, const uint64_t *src,
                            size_t words) {
    (void)keys;
    memcpy(dst, src, words * sizeof *dst);
    return VEIL_OK;
}

static veil_status cpu_copy(veil_backend_keys *keys, uint64_t *dst, size_t dst_pitch,
                            const uint64_t *src, size_t src_pitch, size_t width, size_t rows) {
    (void)keys;
    for (size_t r = 0; r < rows; r++)
        memcpy(dst + r * dst_pitch, src + r * src_pitch, width * sizeof *dst);
    return VEIL_OK;
}

typedef struct elem_job {
    uint64_t *out;
    const uint64_t *a, *b; /* add: a + f * b; scale: f * a, body + pt */
    uint64_t f, pt;
    size_t lwe;
} elem_job;

/* items are ciphertexts */
static void add_share(void *arg, unsigned thread, size_t begin, size_t end) {
    const elem_job *j = arg;
    (void)thread;
    for (size_t w = begin * j->lwe; w < end * j->lwe; w++)
        j->out[w] = j->a[w] + j->f * j->b[w];
}

static void scale_share(void *arg, unsigned thread, size_t begin, size_t end) {
    const elem_job *j = arg;
    (void)thread;
    if (j->f != 1 || j->out != j->a)
        for (size_t w = begin * j->lwe; w < end * j->lwe; w++)
            j->out[w] = j->f * j->a[w];
    for (size_t i = begin; i < end; i++)
        j->out[i * j->lwe + j->lwe - 1] += j->pt;
}

static veil_status cpu_add(veil_backend_keys *keys, uint64_t *out, const uint64_t *a,
                           const uint64_t *b, size_t count, uint64_t f) {
    elem_job job = {out, a, b, f, 0, keys->lwe};
    cpu_parallel(cpu_threads_for(keys->impl, (double)count * (double)keys->lwe), count, add_share,
                 &job);
    return VEIL_OK;
}

static veil_status cpu_scale(veil_backend_keys *keys, uint64_t *out, const uint64_t *in,
                             size_t count, uint64_t f, uint64_t pt) {
    elem_job job = {out, in, NULL, f, pt, keys->lwe};
    cpu_parallel(cpu_threads_for(keys->impl, (double)count * (double)keys->lwe), count, scale_share,
                 &job);
    return VEIL_OK;
}

static void cpu_free(veil_backend *be) {
    (void)be;
}

static const struct veil_backend_i cpu_iface = {
    /* .name         = */ "cpu",
    /* .free         = */ cpu_free,
    /* .keys_new     = */ cpu_keys_new,
    /* .keys_free    = */ cpu_keys_free,
    /* .buffer_alloc = */ cpu_buffer_alloc,
    /* .buffer_free  = */ cpu_buffer_free,
    /* .upload       = */ cpu_move,
    /* .download     = */ cpu_move,
    /* .copy         = */ cpu_copy,
    /* .tables_new   = */ cpu_tables_new,
    /* .tables_free  = */ cpu_tables_free,
    /* .weights_new  = */ cpu_weights_new,
    /* .weights_free = */ cpu_weights_free,
    /* .ks_pbs       = */ cpu_ks_pbs,
    /* .ks_pbs_extract = */ cpu_ks_pbs_extract,
    /* .wop_pbs      = */ cpu_wop_pbs,
    /* .linear       = */ cpu_linear,
    /* .conv2d       = */ cpu_conv2d,
    /* .add          = */ cpu_add,
    /* .scale        = */ cpu_scale,
};

veil_status veil_backend_cpu_init(veil_backend *be) {
    be->iface = &cpu_iface;
    be->ctx = NULL;
    snprintf(be->describe, sizeof be->describe, "cpu: %u threads (FFT: %s)",
             veil_backend_cpu_threads(&be->opts), veil_fft_path_name(veil_fft_path_default()));
    return VEIL_OK;
}
