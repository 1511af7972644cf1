/* server.c — veil-server: HTTP (libmicrohttpd, one thread per connection),
 * the key store, the dynamic batcher and the metrics (see veil/server.h). */
#define _POSIX_C_SOURCE 200809L
#include "veil/server.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "request.h"
#include "veil/deploy.h"
#include "veil/exec.h"
#include "veil/loader.h"
#include "veil/serialize.h"

/* ---- small helpers ------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* ---- jobs and the key cache ------------------------------------------------------ */

typedef struct job {
    char key_id[VEIL_KEY_ID_CHARS + 1];
    veil_ct_batch *in;
    veil_ct_batch *out; /* allocated by the handler, filled by the worker */
    size_t samples;
    double t_enqueue, t_start, t_end;
    size_t batch_samples; /* samples of the backend batch it ran in */
    int done, abandoned;
    srv_error err; /* err.status 0 = success */
    struct job *next;
} job;

typedef struct cache_entry {
    char key_id[VEIL_KEY_ID_CHARS + 1];
    veil_eval_key *ek;
    veil_plan *plan;
    uint64_t last_used;
} cache_entry;

#define N_BATCH_BUCKETS 8
static const unsigned k_batch_buckets[N_BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_LAT_BUCKETS 10
static const double k_lat_buckets[N_LAT_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};
#define N_ENDPOINTS 7
static const char *const k_endpoint_names[N_ENDPOINTS] = {
    "other", "health", "model", "metrics", "keys_post", "key_get", "infer"};

typedef struct metrics {
    uint64_t requests[N_ENDPOINTS];
    uint64_t responses[600];
    uint64_t batches, batch_samples_sum, batch_bucket[N_BATCH_BUCKETS + 1];
    uint64_t pbs_total;
    double exec_seconds;
    double last_pbs_per_s;
    uint64_t cache_hits, cache_misses, cache_evictions;
    uint64_t keys_uploaded;
    uint64_t lat_bucket[N_LAT_BUCKETS + 1]; /* successful infer requests, queue + exec */
    uint64_t lat_count;
    double lat_sum;
} metrics;

struct veil_server {
    veil_server_options o;
    veil_model *model;
    veil_program *prog;
    srv_program_info pi;
    char fp_hex[2 * VEIL_PROGRAM_FP_BYTES + 1];
    char *model_json;
    veil_backend *be;
    char *keys_dir;
    struct MHD_Daemon *mhd;
    uint16_t port;
    size_t max_key_body;

    pthread_mutex_t mu; /* queue, jobs, metrics, inflight */
    pthread_cond_t queue_cv, done_cv, key_cv;
    job *head, *tail;
    size_t queue_len;
    unsigned inflight;
    unsigned validating; /* key uploads being deserialized (memory-heavy) */
    int stopping;
    pthread_t worker;
    int worker_started;
    metrics m;

    /* worker-only */
    cache_entry *cache;
    size_t n_cache;
    uint64_t tick;
    uint64_t **in_bufs, **out_bufs;
    job **batch_list; /* max_batch */
};

static void job_free(job *j) {
    if (!j) return;
    veil_ct_batch_free(j->in);
    veil_ct_batch_free(j->out);
    free(j);
}

static void cache_entry_clear(cache_entry *c) {
    veil_plan_free(c->plan);
    veil_eval_key_free(c->ek);
    memset(c, 0, sizeof *c);
}

static void key_path(const veil_server *s, const char *id, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.vek", s->keys_dir, id);
}

/* Worker: the plan of key id, from the LRU or loaded from the keys dir. */
static veil_plan *cache_get(veil_server *s, const char *id, veil_eval_key **ek_out, srv_error *e) {
    cache_entry *victim = NULL;
    for (size_t i = 0; i < s->n_cache; i++) {
        cache_entry *c = &s->cache[i];
        if (c->plan && !strcmp(c->key_id, id)) {
            c->last_used = ++s->tick;
            pthread_mutex_lock(&s->mu);
            s->m.cache_hits++;
            pthread_mutex_unlock(&s->mu);
            *ek_out = c->ek;
            return c->plan;
        }
        if (!victim || !c->plan || (victim->plan && c->last_used < victim->last_used)) victim = c;
    }
    pthread_mutex_lock(&s->mu);
    s->m.cache_misses++;
    if (victim->plan) s->m.cache_evictions++;
    pthread_mutex_unlock(&s->mu);
    cache_entry_clear(victim);
    char path[4096];
    key_path(s, id, path, sizeof path);
    veil_eval_key *ek;
    if (access(path, F_OK) != 0) {
        srv_fail(e, 404, "unknown_key",
                 "key id %s: no such evaluation key (upload it with POST "
                 "/v1/keys)",
                 id);
        return NULL;
    }
    if (veil_eval_key_load(path, &ek) != VEIL_OK) {
        srv_fail(e, 500, "key_load_failed", "stored key %s: %s", id, veil_error_message());
        return NULL;
    }
    if (ek->params != s->prog->params) {
        srv_fail(e, 400, "params_mismatch", "stored key %s is for %s, this model runs %s", id,
                 ek->params->id, s->prog->params->id);
        veil_eval_key_free(ek);
        return NULL;
    }
    veil_plan *plan;
    if (veil_plan_new(s->prog, ek, s->be, s->o.max_batch, &plan) != VEIL_OK) {
        srv_fail(e, 500, "plan_failed", "key %s: %s", id, veil_error_message());
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

/* Worker: runs the jobs (same key id, samples in order) in chunks of at most
 * max_batch samples. */
static void run_jobs(veil_server *s, job **jobs, size_t n_jobs, size_t total) {
    veil_eval_key *ek = NULL;
    srv_error e = {0};
    veil_plan *plan = cache_get(s, jobs[0]->key_id, &ek, &e);
    if (!plan) {
        for (size_t j = 0; j < n_jobs; j++)
            jobs[j]->err = e;
        return;
    }
    /* Defence in depth: the handler checked the key fingerprint against the
     * stored key's header; check it against the loaded key too. */
    size_t live_total = 0;
    for (size_t j = 0; j < n_jobs; j++) {
        if (veil_ct_batch_check_eval_key(jobs[j]->in, ek) != VEIL_OK)
            srv_fail(&jobs[j]->err, 403, "key_mismatch", "batch: %s", veil_error_message());
        else
            live_total += jobs[j]->samples;
    }
    (void)total;
    const veil_program *p = s->prog;
    const size_t lwe = veil_program_ct_words(p);
    size_t jj = 0, local = 0; /* cursor: job, sample within it */
    while (jj < n_jobs) {
        /* Gather up to max_batch samples from the cursor on. */
        size_t b = 0;
        size_t cj = jj, cl = local;
        while (cj < n_jobs && b < s->o.max_batch) {
            job *jb = jobs[cj];
            if (jb->err.status) {
                cj++;
                cl = 0;
                continue;
            }
            size_t off_in = 0;
            for (uint32_t i = 0; i < p->n_inputs; i++) {
                size_t sz = veil_program_input_size(p, i);
                memcpy(s->in_bufs[i] + b * sz * lwe,
                       jb->in->data + (cl * s->pi.in_cts + off_in) * lwe, sz * lwe * 8);
                off_in += sz;
            }
            b++;
            if (++cl == jb->samples) {
                cj++;
                cl = 0;
            }
        }
        if (b == 0) break;
        double t0 = now_s();
        for (size_t k = jj; k <= cj && k < n_jobs; k++)
            if (!jobs[k]->t_start) jobs[k]->t_start = t0;
        veil_status st =
            veil_plan_execute(plan, (const uint64_t *const *)s->in_bufs, b, s->out_bufs);
        double dt = now_s() - t0;
        pthread_mutex_lock(&s->mu);
        s->m.batches++;
        s->m.batch_samples_sum += b;
        size_t bk = 0;
        while (bk < N_BATCH_BUCKETS && b > k_batch_buckets[bk])
            bk++;
        s->m.batch_bucket[bk]++;
        if (st == VEIL_OK) {
            s->m.pbs_total += p->pbs_per_sample * b;
            s->m.exec_seconds += dt;
            s->m.last_pbs_per_s = dt > 0 ? (double)(p->pbs_per_sample * b) / dt : 0;
        }
        pthread_mutex_unlock(&s->mu);
        /* Scatter the results back (same walk). */
        size_t k = 0;
        while (jj < n_jobs && k < b) {
            job *jb = jobs[jj];
            if (jb->err.status) {
                jj++;
                local = 0;
                continue;
            }
            if (st != VEIL_OK) {
                srv_fail(&jb->err, veil_backend_healthy(s->be) ? 500 : 503, "evaluation_failed",
                         "backend %s: %s", veil_backend_name(s->be), veil_error_message());
            } else {
                size_t off_out = 0;
                for (uint32_t o = 0; o < p->n_outputs; o++) {
                    size_t sz = veil_program_output_size(p, o);
                    memcpy(jb->out->data + (local * s->pi.out_cts + off_out) * lwe,
                           s->out_bufs[o] + k * sz * lwe, sz * lwe * 8);
                    off_out += sz;
                }
            }
            if (jb->batch_samples < b) jb->batch_samples = b;
            k++;
            if (++local == jb->samples || jb->err.status) {
                jb->t_end = now_s();
                jj++;
                local = 0;
            }
        }
    }
    (void)live_total;
}

static void *worker_main(void *arg) {
    veil_server *s = arg;
    job **batch = s->batch_list;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && !s->head)
            pthread_cond_wait(&s->queue_cv, &s->mu);
        if (s->stopping) break;
        /* Wait for more requests under the first one's key id, until the
         * batch is full or the window from the first one's arrival closes. */
        job *first = s->head;
        const double deadline = first->t_enqueue + s->o.max_wait_ms * 1e-3;
        for (;;) {
            size_t same = 0;
            for (job *j = s->head; j; j = j->next)
                if (!strcmp(j->key_id, first->key_id)) same += j->samples;
            if (same >= s->o.max_batch || s->stopping || s->head != first) break;
            double now = now_s();
            if (now >= deadline) break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double wait = deadline - now;
            ts.tv_sec += (time_t)wait;
            ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->queue_cv, &s->mu, &ts);
        }
        if (s->stopping) break;
        if (!s->head) continue; /* the requests timed out meanwhile */
        first = s->head;
        /* Take the first job and every later one with the same key id that
         * fits (each job holds >= 1 sample, so at most max_batch jobs). */
        size_t n = 0, total = 0;
        job **pp = &s->head, *prev = NULL;
        while (*pp && total < s->o.max_batch) {
            job *j = *pp;
            if (!strcmp(j->key_id, first->key_id) &&
                (n == 0 || total + j->samples <= s->o.max_batch)) {
                *pp = j->next;
                if (s->tail == j) s->tail = prev;
                j->next = NULL;
                s->queue_len--;
                batch[n++] = j;
                total += j->samples;
            } else {
                prev = j;
                pp = &j->next;
            }
        }
        pthread_mutex_unlock(&s->mu);
        job **list = batch;
        run_jobs(s, list, n, total);
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < n; i++) {
            if (list[i]->abandoned)
                job_free(list[i]);
            else
                list[i]->done = 1;
        }
        pthread_cond_broadcast(&s->done_cv);
    }
    /* Stopping: fail what is still queued. */
    for (job *j = s->head, *nx; j; j = nx) {
        nx = j->next;
        j->next = NULL;
        if (j->abandoned) {
            job_free(j);
        } else {
            srv_fail(&j->err, 503, "shutting_down", "the server is stopping");
            j->done = 1;
        }
    }
    s->head = s->tail = NULL;
    s->queue_len = 0;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- HTTP ------------------------------------------------------------------------ */

typedef struct req {
    uint8_t *body;
    size_t len, cap;
    int too_big;
    int counted; /* counted in inflight */
    int endpoint;
} req;

static enum MHD_Result send_bytes(struct MHD_Connection *c, veil_server *s, int status,
                                  const char *ctype, void *data, size_t len, int must_free,
                                  const char *const *extra_headers) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, data, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (must_free) free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    for (size_t i = 0; extra_headers && extra_headers[i]; i += 2)
        MHD_add_response_header(r, extra_headers[i], extra_headers[i + 1]);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    pthread_mutex_lock(&s->mu);
    if (status >= 100 && status < 600) s->m.responses[status]++;
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, veil_server *s, int status, sbuf *b) {
    if (b->oom || !b->p) {
        free(b->p);
        static const char k_oom[] = "{\"error\":\"out_of_memory\"}";
        return send_bytes(c, s, 500, "application/json", (void *)k_oom, sizeof k_oom - 1, 0, NULL);
    }
    return send_bytes(c, s, status, "application/json", b->p, b->len, 1, NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, veil_server *s, const srv_error *e) {
    char msg[2 * sizeof e->message];
    srv_json_escape(e->message, msg, sizeof msg);
    sbuf b = {0};
    sb_printf(&b, "{\"error\":\"%s\",\"status\":%d,\"message\":\"%s\"}\n", e->code, e->status, msg);
    if (s->o.verbose) fprintf(stderr, "veil-server: %d %s: %s\n", e->status, e->code, e->message);
    return send_json(c, s, e->status, &b);
}

static char *build_model_json(veil_server *s) {
    const veil_program *p = s->prog;
    const veil_model *m = s->model;
    sbuf b = {0};
    char esc[512];
    srv_json_escape(m->name ? m->name : "", esc, sizeof esc);
    sb_printf(&b, "{\"name\":\"%s\",\"params_id\":\"%s\",\"model_fp\":\"%s\",", esc, p->params->id,
              s->fp_hex);
    sb_printf(&b,
              "\"lwe_dim\":%u,\"ct_words\":%zu,\"width\":%u,\"pbs_per_sample\":%llu,"
              "\"sample_in_cts\":%zu,\"sample_out_cts\":%zu,\"max_batch\":%zu,"
              "\"max_request_samples\":%zu,\"max_body\":%zu,\"eval_key_bytes\":%zu,"
              "\"backend\":\"%s\",",
              s->pi.big_dim, veil_program_ct_words(p), p->width,
              (unsigned long long)p->pbs_per_sample, s->pi.in_cts, s->pi.out_cts, s->o.max_batch,
              s->o.max_request_samples, s->o.max_body, s->max_key_body, veil_backend_name(s->be));
    sb_printf(&b, "\"inputs\":[");
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const veil_model_input *in = &m->inputs[i];
        const veil_node *n = &p->nodes[p->input_nodes[i]];
        srv_json_escape(in->name, esc, sizeof esc);
        sb_printf(&b, "%s{\"name\":\"%s\",\"shape\":[", i ? "," : "", esc);
        for (uint32_t d = 0; d < in->shape.rank; d++)
            sb_printf(&b, "%s%u", d ? "," : "", in->shape.dim[d]);
        sb_printf(&b,
                  "],\"scale\":%.17g,\"zero_point\":%lld,\"n_bits\":%u,\"signed\":%s,"
                  "\"range\":[%lld,%lld]}",
                  in->scale, (long long)in->zero_point, in->n_bits,
                  in->is_signed ? "true" : "false", (long long)n->lo, (long long)n->hi);
    }
    sb_printf(&b, "],\"outputs\":[");
    for (uint32_t o = 0; o < m->n_outputs; o++) {
        const veil_model_output *out = &m->outputs[o];
        srv_json_escape(out->name, esc, sizeof esc);
        sb_printf(&b, "%s{\"name\":\"%s\",\"shape\":[", o ? "," : "", esc);
        for (uint32_t d = 0; d < out->shape.rank; d++)
            sb_printf(&b, "%s%u", d ? "," : "", out->shape.dim[d]);
        sb_printf(&b, "],\"scale\":[");
        for (uint32_t k = 0; k < out->n_scale; k++)
            sb_printf(&b, "%s%.17g", k ? "," : "", out->scale[k]);
        sb_printf(&b, "],\"zero_point\":[");
        for (uint32_t k = 0; k < out->n_scale; k++)
            sb_printf(&b, "%s%.17g", k ? "," : "", out->zero_point[k]);
        sb_printf(&b, "]}");
    }
    sb_printf(&b, "]}\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c, veil_server *s) {
    metrics m;
    size_t qlen, resident = 0;
    unsigned inflight;
    pthread_mutex_lock(&s->mu);
    m = s->m;
    qlen = s->queue_len;
    inflight = s->inflight;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n_cache; i++) /* racy read of a pointer: a gauge */
        resident += s->cache[i].plan != NULL;
    sbuf b = {0};
    sb_printf(&b, "# HELP veil_requests_total HTTP requests by endpoint.\n"
                  "# TYPE veil_requests_total counter\n");
    for (int i = 0; i < N_ENDPOINTS; i++)
        sb_printf(&b, "veil_requests_total{endpoint=\"%s\"} %llu\n", k_endpoint_names[i],
                  (unsigned long long)m.requests[i]);
    sb_printf(&b, "# HELP veil_responses_total HTTP responses by status code.\n"
                  "# TYPE veil_responses_total counter\n");
    for (int i = 100; i < 600; i++)
        if (m.responses[i])
            sb_printf(&b, "veil_responses_total{code=\"%d\"} %llu\n", i,
                      (unsigned long long)m.responses[i]);
    uint64_t errs = 0;
    for (int i = 400; i < 600; i++)
        errs += m.responses[i];
    sb_printf(&b,
              "# HELP veil_errors_total responses with status >= 400.\n"
              "# TYPE veil_errors_total counter\nveil_errors_total %llu\n",
              (unsigned long long)errs);
    sb_printf(&b, "# HELP veil_batch_samples samples per backend batch (dynamic batching).\n"
                  "# TYPE veil_batch_samples histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < N_BATCH_BUCKETS; i++) {
        cum += m.batch_bucket[i];
        sb_printf(&b, "veil_batch_samples_bucket{le=\"%u\"} %llu\n", k_batch_buckets[i],
                  (unsigned long long)cum);
    }
    cum += m.batch_bucket[N_BATCH_BUCKETS];
    sb_printf(&b, "veil_batch_samples_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    sb_printf(&b, "veil_batch_samples_sum %llu\nveil_batch_samples_count %llu\n",
              (unsigned long long)m.batch_samples_sum, (unsigned long long)m.batches);
    sb_printf(&b,
              "# HELP veil_pbs_total programmable bootstrappings executed.\n"
              "# TYPE veil_pbs_total counter\nveil_pbs_total %llu\n"
              "# HELP veil_exec_seconds_total time in veil_plan_execute.\n"
              "# TYPE veil_exec_seconds_total counter\nveil_exec_seconds_total %.6f\n"
              "# HELP veil_pbs_per_second PBS throughput of the last batch.\n"
              "# TYPE veil_pbs_per_second gauge\nveil_pbs_per_second %.3f\n",
              (unsigned long long)m.pbs_total, m.exec_seconds, m.last_pbs_per_s);
    sb_printf(&b,
              "# HELP veil_queue_depth infer requests waiting for the backend.\n"
              "# TYPE veil_queue_depth gauge\nveil_queue_depth %zu\n"
              "# HELP veil_inflight_requests requests being handled.\n"
              "# TYPE veil_inflight_requests gauge\nveil_inflight_requests %u\n",
              qlen, inflight);
    sb_printf(&b,
              "# HELP veil_key_cache_hits_total infer batches whose keys were resident.\n"
              "# TYPE veil_key_cache_hits_total counter\nveil_key_cache_hits_total %llu\n"
              "# HELP veil_key_cache_misses_total batches that loaded their keys.\n"
              "# TYPE veil_key_cache_misses_total counter\nveil_key_cache_misses_total %llu\n"
              "# HELP veil_key_cache_evictions_total keys evicted (LRU).\n"
              "# TYPE veil_key_cache_evictions_total counter\n"
              "veil_key_cache_evictions_total %llu\n"
              "# HELP veil_key_cache_resident keys resident in the backend.\n"
              "# TYPE veil_key_cache_resident gauge\nveil_key_cache_resident %zu\n"
              "# HELP veil_keys_uploaded_total evaluation keys accepted.\n"
              "# TYPE veil_keys_uploaded_total counter\nveil_keys_uploaded_total %llu\n",
              (unsigned long long)m.cache_hits, (unsigned long long)m.cache_misses,
              (unsigned long long)m.cache_evictions, resident, (unsigned long long)m.keys_uploaded);
    sb_printf(&b, "# HELP veil_infer_duration_seconds successful POST /v1/infer, queue and "
                  "execution.\n# TYPE veil_infer_duration_seconds histogram\n");
    cum = 0;
    for (int i = 0; i < N_LAT_BUCKETS; i++) {
        cum += m.lat_bucket[i];
        sb_printf(&b, "veil_infer_duration_seconds_bucket{le=\"%g\"} %llu\n", k_lat_buckets[i],
                  (unsigned long long)cum);
    }
    cum += m.lat_bucket[N_LAT_BUCKETS];
    sb_printf(&b,
              "veil_infer_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
              "veil_infer_duration_seconds_sum %.6f\nveil_infer_duration_seconds_count %llu\n",
              (unsigned long long)cum, m.lat_sum, (unsigned long long)m.lat_count);
    sb_printf(&b,
              "# HELP veil_backend_healthy 1 while the backend accepts work.\n"
              "# TYPE veil_backend_healthy gauge\nveil_backend_healthy %d\n",
              veil_backend_healthy(s->be));
    if (b.oom || !b.p) {
        free(b.p);
        srv_error e;
        srv_fail(&e, 500, "out_of_memory", "metrics");
        return send_error(c, s, &e);
    }
    return send_bytes(c, s, 200, "text/plain; version=0.0.4", b.p, b.len, 1, NULL);
}

static enum MHD_Result handle_keys_post(struct MHD_Connection *c, veil_server *s, req *r) {
    srv_error e;
    veil_eval_key *ek = NULL;
    /* Validating a key expands it (masks, Fourier BSK: several times the
     * upload): at most max_key_uploads at once, the others wait their turn. */
    pthread_mutex_lock(&s->mu);
    while (s->validating >= s->o.max_key_uploads && !s->stopping)
        pthread_cond_wait(&s->key_cv, &s->mu);
    s->validating++;
    pthread_mutex_unlock(&s->mu);
    int bad = srv_parse_key_upload(&s->pi, r->body, r->len, &ek, &e);
    pthread_mutex_lock(&s->mu);
    s->validating--;
    pthread_cond_signal(&s->key_cv);
    pthread_mutex_unlock(&s->mu);
    if (bad) return send_error(c, s, &e);
    char fp_hex[2 * VEIL_KEY_FP_BYTES + 1];
    veil_hex(ek->key_fp, VEIL_KEY_FP_BYTES, fp_hex);
    veil_eval_key_free(ek);
    uint8_t rnd[VEIL_KEY_ID_CHARS / 2];
    randombytes_buf(rnd, sizeof rnd);
    char id[VEIL_KEY_ID_CHARS + 1];
    veil_hex(rnd, sizeof rnd, id);
    char path[4096], tmp[4200];
    key_path(s, id, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    int ok = fd >= 0;
    for (size_t off = 0; ok && off < r->len;) {
        ssize_t w = write(fd, r->body + off, r->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            ok = 0;
        else
            off += (size_t)w;
    }
    if (fd >= 0) {
        if (ok && fsync(fd) != 0) ok = 0;
        if (close(fd) != 0) ok = 0;
    }
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        int err = errno;
        unlink(tmp);
        srv_fail(&e, 500, "store_failed", "keys dir %s: %s", s->keys_dir, strerror(err));
        return send_error(c, s, &e);
    }
    pthread_mutex_lock(&s->mu);
    s->m.keys_uploaded++;
    pthread_mutex_unlock(&s->mu);
    if (s->o.verbose)
        fprintf(stderr, "veil-server: stored evaluation key %.8s... (%zu bytes)\n", id, r->len);
    sbuf b = {0};
    sb_printf(&b, "{\"key_id\":\"%s\",\"params_id\":\"%s\",\"key_fp\":\"%s\",\"bytes\":%zu}\n", id,
              s->prog->params->id, fp_hex, r->len);
    return send_json(c, s, 201, &b);
}

static enum MHD_Result handle_key_get(struct MHD_Connection *c, veil_server *s, const char *id) {
    char path[4096], params_id[VEIL_SERIAL_PARAMS_ID_BYTES];
    uint8_t fp[VEIL_KEY_FP_BYTES];
    key_path(s, id, path, sizeof path);
    srv_error e;
    if (srv_key_file_header(path, fp, params_id)) {
        srv_fail(&e, 404, "unknown_key", "key id %s: no such evaluation key", id);
        return send_error(c, s, &e);
    }
    char fp_hex[2 * VEIL_KEY_FP_BYTES + 1];
    veil_hex(fp, sizeof fp, fp_hex);
    sbuf b = {0};
    sb_printf(&b, "{\"key_id\":\"%s\",\"params_id\":\"%s\",\"key_fp\":\"%s\"}\n", id, params_id,
              fp_hex);
    return send_json(c, s, 200, &b);
}

static enum MHD_Result handle_infer(struct MHD_Connection *c, veil_server *s, req *r) {
    srv_error e;
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Veil-Key-Id");
    if (!id) id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key_id");
    if (!id) {
        srv_fail(&e, 400, "missing_key_id",
                 "POST /v1/infer: give the key id in the X-Veil-Key-Id header or ?key_id=");
        return send_error(c, s, &e);
    }
    if (!veil_key_id_valid(id)) {
        srv_fail(&e, 404, "unknown_key", "key id: not a key id (32 lower-case hex)");
        return send_error(c, s, &e);
    }
    char path[4096], params_id[VEIL_SERIAL_PARAMS_ID_BYTES];
    uint8_t key_fp[VEIL_KEY_FP_BYTES];
    key_path(s, id, path, sizeof path);
    if (srv_key_file_header(path, key_fp, params_id)) {
        srv_fail(&e, 404, "unknown_key",
                 "key id %s: no such evaluation key (upload it with POST "
                 "/v1/keys)",
                 id);
        return send_error(c, s, &e);
    }
    veil_ct_batch *in = NULL;
    size_t samples = 0;
    if (srv_parse_infer_batch(&s->pi, r->body, r->len, key_fp, &in, &samples, &e))
        return send_error(c, s, &e);
    /* The body is no longer needed: free it before waiting. */
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    job *j = calloc(1, sizeof *j);
    veil_ct_batch *out = NULL;
    if (!j || veil_ct_batch_new(s->prog->params, s->pi.big_dim, samples * s->pi.out_cts, &out)) {
        free(j);
        veil_ct_batch_free(in);
        srv_fail(&e, 503, "out_of_memory", "no memory for a batch of %zu samples", samples);
        return send_error(c, s, &e);
    }
    memcpy(out->key_fp, in->key_fp, VEIL_KEY_FP_BYTES);
    memcpy(out->model_fp, s->pi.fp_out, VEIL_PROGRAM_FP_BYTES);
    snprintf(j->key_id, sizeof j->key_id, "%s", id);
    j->in = in;
    j->out = out;
    j->samples = samples;
    j->t_enqueue = now_s();
    pthread_mutex_lock(&s->mu);
    if (s->stopping || !veil_backend_healthy(s->be) || s->queue_len >= s->o.max_queue) {
        int stopping = s->stopping, healthy = veil_backend_healthy(s->be);
        pthread_mutex_unlock(&s->mu);
        job_free(j);
        if (stopping)
            srv_fail(&e, 503, "shutting_down", "the server is stopping");
        else if (!healthy)
            srv_fail(&e, 503, "backend_unhealthy", "backend %s is dead: %s",
                     veil_backend_name(s->be), "see GET /v1/health");
        else
            srv_fail(&e, 503, "queue_full", "%zu requests queued (--max-queue); retry later",
                     s->o.max_queue);
        return send_error(c, s, &e);
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queue_len++;
    pthread_cond_broadcast(&s->queue_cv);
    const double deadline = j->t_enqueue + s->o.timeout_ms * 1e-3;
    while (!j->done) {
        double now = now_s();
        if (now >= deadline) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double w = deadline - now;
        if (w > 1) w = 1;
        long ns = ts.tv_nsec + (long)(w * 1e9);
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&s->done_cv, &s->mu, &ts);
    }
    if (!j->done) {
        /* Timed out: unlink it if still queued, else the worker frees it. */
        int queued = 0;
        for (job **pp = &s->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                if (s->tail == j) s->tail = prev;
                s->queue_len--;
                queued = 1;
                break;
            }
        if (queued)
            job_free(j);
        else
            j->abandoned = 1;
        pthread_mutex_unlock(&s->mu);
        srv_fail(&e, 504, "timeout", "no result within %u ms (%s)", s->o.timeout_ms,
                 queued ? "still queued" : "still running");
        return send_error(c, s, &e);
    }
    pthread_mutex_unlock(&s->mu);
    if (j->err.status) {
        e = j->err;
        job_free(j);
        return send_error(c, s, &e);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (veil_ct_batch_serialize(j->out, &buf, &len) != VEIL_OK) {
        srv_fail(&e, 500, "serialize_failed", "result: %s", veil_error_message());
        job_free(j);
        return send_error(c, s, &e);
    }
    char bs[32], qms[32], ems[32];
    snprintf(bs, sizeof bs, "%zu", j->batch_samples);
    snprintf(qms, sizeof qms, "%.3f", 1e3 * (j->t_start - j->t_enqueue));
    snprintf(ems, sizeof ems, "%.3f", 1e3 * (j->t_end - j->t_start));
    const char *hdrs[] = {
        "X-Veil-Batch-Samples", bs, "X-Veil-Queue-Ms", qms, "X-Veil-Exec-Ms", ems, NULL};
    const double lat = now_s() - j->t_enqueue;
    job_free(j);
    pthread_mutex_lock(&s->mu);
    size_t lb = 0;
    while (lb < N_LAT_BUCKETS && lat > k_lat_buckets[lb])
        lb++;
    s->m.lat_bucket[lb]++;
    s->m.lat_count++;
    s->m.lat_sum += lat;
    pthread_mutex_unlock(&s->mu);
    /* buf came from the serializer (plain malloc of a public batch). */
    enum MHD_Result ret =
        send_bytes(c, s, 200, "application/octet-stream", buf, len, 1, (const char *const *)hdrs);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    veil_server *s = cls;
    req *r = *con_cls;
    srv_error e;
    char key_id[VEIL_KEY_ID_CHARS + 1] = {0};
    srv_route route = srv_route_parse(method, url, key_id, &e);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->endpoint = (int)route;
        pthread_mutex_lock(&s->mu);
        s->m.requests[route]++;
        int busy = s->inflight >= s->o.max_inflight;
        if (!busy) {
            s->inflight++;
            r->counted = 1;
        }
        pthread_mutex_unlock(&s->mu);
        if (route == SRV_NOT_FOUND) return send_error(c, s, &e);
        if (busy) {
            srv_fail(&e, 503, "too_many_requests", "%u requests in flight (--max-inflight)",
                     s->o.max_inflight);
            return send_error(c, s, &e);
        }
        if (route == SRV_KEYS_POST || route == SRV_INFER) {
            const size_t limit = route == SRV_KEYS_POST ? s->max_key_body : s->o.max_body;
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl) {
                char *end;
                unsigned long long n = strtoull(cl, &end, 10);
                if (*end || n > limit) {
                    srv_fail(&e, 413, "body_too_large", "Content-Length %s: at most %zu bytes", cl,
                             limit);
                    return send_error(c, s, &e);
                }
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        const size_t limit = route == SRV_KEYS_POST ? s->max_key_body : s->o.max_body;
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_big || route == SRV_NOT_FOUND) return MHD_YES;
        if (r->len + n > limit) {
            r->too_big = 1;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 65536;
            while (cap < r->len + n)
                cap *= 2;
            if (cap > limit) cap = limit;
            uint8_t *q = realloc(r->body, cap);
            if (!q) {
                r->too_big = 2;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
                return MHD_YES;
            }
            r->body = q;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    (void)version;
    if (r->too_big) {
        const size_t limit = route == SRV_KEYS_POST ? s->max_key_body : s->o.max_body;
        if (r->too_big == 2)
            srv_fail(&e, 503, "out_of_memory", "no memory for the body");
        else
            srv_fail(&e, 413, "body_too_large", "body over %zu bytes", limit);
        return send_error(c, s, &e);
    }
    switch (route) {
    case SRV_HEALTH: {
        sbuf b = {0};
        int ok = veil_backend_healthy(s->be);
        sb_printf(&b, "{\"status\":\"%s\",\"backend\":\"%s\"}\n", ok ? "ok" : "unhealthy",
                  veil_backend_name(s->be));
        return send_json(c, s, ok ? 200 : 503, &b);
    }
    case SRV_MODEL:
        return send_bytes(c, s, 200, "application/json", s->model_json, strlen(s->model_json), 0,
                          NULL);
    case SRV_METRICS:
        return handle_metrics(c, s);
    case SRV_KEYS_POST:
        return handle_keys_post(c, s, r);
    case SRV_KEY_GET:
        return handle_key_get(c, s, key_id);
    case SRV_INFER:
        return handle_infer(c, s, r);
    case SRV_NOT_FOUND:
        break;
    }
    return send_error(c, s, &e);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    veil_server *s = cls;
    req *r = *con_cls;
    (void)c;
    (void)toe;
    if (!r) return;
    if (r->counted) {
        pthread_mutex_lock(&s->mu);
        s->inflight--;
        pthread_mutex_unlock(&s->mu);
    }
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- start / stop -------------------------------------------------------------- */

void veil_server_options_default(veil_server_options *o) {
    memset(o, 0, sizeof *o);
    veil_compile_options_default(&o->compile);
    o->backend = VEIL_BACKEND_AUTO;
    o->listen = "127.0.0.1:8080";
    o->keys_dir = "veil-keys";
    o->max_batch = 16;
    o->max_wait_ms = 10;
    o->max_body = (size_t)64 << 20;
    o->max_request_samples = 1024;
    o->max_inflight = 64;
    o->max_queue = 256;
    o->timeout_ms = 300000;
    o->key_cache = 4;
    o->max_key_uploads = 2;
}

static veil_status parse_listen(const char *listen, struct sockaddr_storage *ss, int *family) {
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return veil_error(VEIL_ERR_ARG, "--listen %s: expected HOST:PORT", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *h = host;
    if (h[0] == '[') {
        size_t n = strlen(h);
        if (h[n - 1] != ']') return veil_error(VEIL_ERR_ARG, "--listen %s: unbalanced [", listen);
        h[n - 1] = 0;
        h++;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return veil_error(VEIL_ERR_ARG, "--listen %s: bad port", listen);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(h, colon + 1, &hints, &res);
    if (rc || !res) return veil_error(VEIL_ERR_ARG, "--listen %s: %s", listen, gai_strerror(rc));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *family = res->ai_family;
    freeaddrinfo(res);
    return VEIL_OK;
}

static veil_status mkdir_p(const char *dir) {
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) return veil_error(VEIL_ERR_ARG, "--keys-dir: bad path");
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return veil_error(VEIL_ERR_IO, "--keys-dir %s: mkdir %s: %s", dir, tmp,
                                  strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return veil_error(VEIL_ERR_IO, "--keys-dir %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return veil_error(VEIL_ERR_IO, "--keys-dir %s: not a directory", dir);
    if (access(dir, W_OK) != 0) return veil_error(VEIL_ERR_IO, "--keys-dir %s: not writable", dir);
    return VEIL_OK;
}

veil_status veil_server_start(const veil_server_options *o, veil_server **out) {
    if (!o || !out || !o->model_path || !o->keys_dir || !o->listen)
        return veil_error(VEIL_ERR_ARG, "veil_server_start: model, keys dir and listen needed");
    if (o->max_batch == 0 || o->max_queue == 0 || o->max_inflight == 0 || o->key_cache == 0 ||
        o->max_key_uploads == 0 || o->max_request_samples == 0)
        return veil_error(VEIL_ERR_ARG,
                          "veil_server_start: max batch, queue, inflight, key cache and request "
                          "samples must be > 0");
    if (sodium_init() < 0) return veil_error(VEIL_ERR_INTERNAL, "libsodium failed to initialise");
    veil_server *s = calloc(1, sizeof *s);
    if (!s) return veil_error(VEIL_ERR_NOMEM, "out of memory");
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->queue_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_cond_init(&s->key_cv, NULL);
    veil_status st;
    struct sockaddr_storage addr;
    int family = AF_INET;
    if ((st = parse_listen(o->listen, &addr, &family))) goto fail;
    if (!(s->keys_dir = strdup(o->keys_dir))) {
        st = veil_error(VEIL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->o.keys_dir = s->keys_dir;
    s->o.listen = NULL;
    s->o.model_path = NULL;
    if ((st = mkdir_p(s->keys_dir))) goto fail;
    if ((st = veil_model_load(o->model_path, &s->model))) goto fail; /* names the path */
    veil_compile_options co = o->compile;
    co.simulate_only = 0;
    if ((st = veil_program_compile(s->model, &co, &s->prog))) goto fail;
    if (!s->prog->params) {
        st = veil_error(VEIL_ERR_PARAMS, "%s: no parameter set fits this program", o->model_path);
        goto fail;
    }
    s->o.compile.params_id = NULL; /* borrowed; not needed any more */
    srv_program_info_init(&s->pi, s->prog, o->max_request_samples);
    veil_hex(s->pi.fp, VEIL_PROGRAM_FP_BYTES, s->fp_hex);
    s->max_key_body = veil_eval_key_serialized_bytes(s->prog->params);
    if ((st = veil_backend_new(o->backend, &s->be))) goto fail;
    if (!(s->model_json = build_model_json(s))) {
        st = veil_error(VEIL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->cache = calloc(o->key_cache, sizeof *s->cache);
    s->n_cache = o->key_cache;
    s->in_bufs = calloc(s->prog->n_inputs + 1, sizeof *s->in_bufs);
    s->out_bufs = calloc(s->prog->n_outputs + 1, sizeof *s->out_bufs);
    s->batch_list = calloc(o->max_batch, sizeof *s->batch_list);
    if (!s->cache || !s->in_bufs || !s->out_bufs || !s->batch_list) {
        st = veil_error(VEIL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const size_t lwe = veil_program_ct_words(s->prog);
    for (uint32_t i = 0; i < s->prog->n_inputs; i++)
        if (!(s->in_bufs[i] =
                  malloc(o->max_batch * veil_program_input_size(s->prog, i) * lwe * 8))) {
            st = veil_error(VEIL_ERR_NOMEM, "out of memory for %zu-sample batches", o->max_batch);
            goto fail;
        }
    for (uint32_t i = 0; i < s->prog->n_outputs; i++)
        if (!(s->out_bufs[i] =
                  malloc(o->max_batch * veil_program_output_size(s->prog, i) * lwe * 8))) {
            st = veil_error(VEIL_ERR_NOMEM, "out of memory for %zu-sample batches", o->max_batch);
            goto fail;
        }
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
        st = veil_error(VEIL_ERR_INTERNAL, "cannot start the worker thread");
        goto fail;
    }
    s->worker_started = 1;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                              s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->max_inflight * 2 + 16),
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_ms / 1000 + 60),
                              MHD_OPTION_END);
    if (!s->mhd) {
        st = veil_error(VEIL_ERR_IO, "--listen %s: cannot listen (address in use?)", o->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return VEIL_OK;
fail:
    veil_server_stop(s);
    return st;
}

uint16_t veil_server_port(const veil_server *s) {
    return s ? s->port : 0;
}

const veil_program *veil_server_program(const veil_server *s) {
    return s ? s->prog : NULL;
}

void veil_server_get_stats(veil_server *s, veil_server_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < N_ENDPOINTS; i++)
        out->requests += s->m.requests[i];
    out->batches = s->m.batches;
    out->batch_samples = s->m.batch_samples_sum;
    out->pbs = s->m.pbs_total;
    out->exec_seconds = s->m.exec_seconds;
    for (int i = 0; i <= N_BATCH_BUCKETS; i++)
        out->batch_hist[i] = s->m.batch_bucket[i];
    out->cache_hits = s->m.cache_hits;
    out->cache_misses = s->m.cache_misses;
    out->cache_evictions = s->m.cache_evictions;
    pthread_mutex_unlock(&s->mu);
}

void veil_server_stop(veil_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->queue_cv);
    pthread_cond_broadcast(&s->done_cv);
    pthread_cond_broadcast(&s->key_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->worker_started) pthread_join(s->worker, NULL);
    if (s->mhd) MHD_stop_daemon(s->mhd);
    for (size_t i = 0; s->cache && i < s->n_cache; i++)
        cache_entry_clear(&s->cache[i]);
    free(s->cache);
    if (s->prog) {
        for (uint32_t i = 0; s->in_bufs && i < s->prog->n_inputs; i++)
            free(s->in_bufs[i]);
        for (uint32_t i = 0; s->out_bufs && i < s->prog->n_outputs; i++)
            free(s->out_bufs[i]);
    }
    free(s->in_bufs);
    free(s->out_bufs);
    free(s->batch_list);
    free(s->model_json);
    veil_backend_free(s->be);
    veil_program_free(s->prog);
    veil_model_free(s->model);
    free(s->keys_dir);
    pthread_cond_destroy(&s->queue_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_cond_destroy(&s->key_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
