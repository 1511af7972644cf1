/* batcher.c — veil-server's dynamic batching: the queue of infer jobs, the
 * one worker thread that owns the backends, and the LRU cache of plan groups
 * (evaluation keys resident in the backends). Each batch is one
 * veil_plan_group_execute: with --devices it is cut into one share per plan
 * (device), run side by side, so the worker feeds every device at once. See
 * veil/server.h. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server_internal.h"

void srv_job_free(srv_job *j) {
    if (!j) return;
    if (j->key_fd >= 0) close(j->key_fd);
    veil_ct_batch_free(j->in);
    veil_ct_batch_free(j->out);
    free(j);
}

static void cache_entry_clear(srv_cache_entry *c) {
    veil_plan_group_free(c->plan);
    veil_eval_key_free(c->ek);
    memset(c, 0, sizeof *c);
}

static size_t cache_resident(const veil_server *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->n_cache; i++)
        n += s->cache[i].plan != NULL;
    return n;
}

/* The HTTP answer for a key the store could not give. */
static void key_error(veil_server *s, const char *id, veil_status st, srv_error *e) {
    switch (st) {
    case VEIL_ERR_ARG: /* unknown, or corrupted and quarantined: the client uploads again */
        srv_fail(e, 404, "unknown_key", "%s (upload it with POST /v1/keys)", veil_error_message());
        break;
    case VEIL_ERR_PARAMS:
        srv_fail(e, 400, "params_mismatch", "%s: this model runs %s", veil_error_message(),
                 s->prog->params->id);
        break;
    case VEIL_ERR_NOMEM:
        srv_fail(e, 503, "out_of_memory", "%s", veil_error_message());
        break;
    default:
        srv_fail(e, 500, "key_load_failed", "key id %s: %s", id, veil_error_message());
        break;
    }
}

/* Worker: the plan of key id, from the LRU or loaded from the key store. The
 * least recently used plan is evicted only once the new key is loaded and
 * verified: a request for a missing or corrupted key evicts nothing. */
static veil_plan_group *cache_get(veil_server *s, const char *id, int fd, veil_eval_key **ek_out,
                                  srv_error *e) {
    srv_cache_entry *victim = NULL;
    for (size_t i = 0; i < s->n_cache; i++) {
        srv_cache_entry *c = &s->cache[i];
        if (c->plan && !strcmp(c->key_id, id)) {
            c->last_used = ++s->tick;
            srv_metrics_cache(&s->m, 1, 0, cache_resident(s));
            *ek_out = c->ek;
            return c->plan;
        }
        if (!victim || !c->plan || (victim->plan && c->last_used < victim->last_used)) victim = c;
    }
    veil_eval_key *ek = NULL;
    veil_status st = veil_keystore_load(s->ks, id, fd, s->prog->params,
                                        veil_backend_key_domains(s->bes[0]), &ek);
    if (st != VEIL_OK) {
        srv_metrics_cache(&s->m, 0, 0, cache_resident(s));
        key_error(s, id, st, e);
        return NULL;
    }
    const int evicted = victim->plan != NULL;
    cache_entry_clear(victim); /* frees the victim's device memory before planning */
    veil_plan_group *plan;
    veil_status pst = veil_plan_group_new(s->prog, ek, s->bes, s->n_bes, s->o.max_batch, &plan);
    if (pst != VEIL_OK) {
        if (pst == VEIL_ERR_PARAMS) /* a stored key set of another partition list */
            srv_fail(e, 400, "params_mismatch", "key %s: %s", id, veil_error_message());
        else
            srv_fail(e, 500, "plan_failed", "key %s: %s", id, veil_error_message());
        veil_eval_key_free(ek);
        srv_metrics_cache(&s->m, 0, evicted, cache_resident(s));
        return NULL;
    }
    snprintf(victim->key_id, sizeof victim->key_id, "%s", id);
    victim->ek = ek;
    victim->plan = plan;
    victim->last_used = ++s->tick;
    srv_metrics_cache(&s->m, 0, evicted, cache_resident(s));
    *ek_out = ek;
    return plan;
}

/* Worker, s->mu held (released while it looks at the store and frees): the
 * plans whose key is no longer stored (deleted, pruned, quarantined: by this
 * server or another sharing the directory) and that no queued job waits for
 * are freed, their bootstrapping keys with them, instead of holding their
 * memory until the LRU evicts them. A job queued meanwhile under such a key
 * holds its file (srv_job.key_fd) and loads it again. */
static void drop_removed_keys(veil_server *s) {
    pthread_mutex_unlock(&s->mu);
    size_t n_gone = 0;
    for (size_t i = 0; i < s->n_cache; i++) {
        srv_cache_entry *c = &s->cache[i];
        c->gone = c->plan && !veil_keystore_stored(s->ks, c->key_id);
        n_gone += c->gone;
    }
    if (!n_gone) {
        pthread_mutex_lock(&s->mu);
        return;
    }
    pthread_mutex_lock(&s->mu);
    for (srv_job *j = s->head; j; j = j->next)
        for (size_t i = 0; i < s->n_cache; i++)
            if (s->cache[i].gone && !strcmp(s->cache[i].key_id, j->key_id)) {
                s->cache[i].gone = 0;
                /* spared for that request: looked at again once a batch
                 * has run, else it stays until the next removal */
                s->keys_recheck = 1;
            }
    pthread_mutex_unlock(&s->mu);
    unsigned dropped = 0;
    for (size_t i = 0; i < s->n_cache; i++)
        if (s->cache[i].gone) {
            cache_entry_clear(&s->cache[i]);
            dropped++;
        }
    if (dropped) srv_metrics_cache_dropped(&s->m, dropped, cache_resident(s));
    pthread_mutex_lock(&s->mu);
}

void srv_batcher_keys_removed(veil_server *s) {
    pthread_mutex_lock(&s->mu);
    s->keys_removed = 1;
    pthread_cond_broadcast(&s->queue_cv);
    pthread_mutex_unlock(&s->mu);
}

/* Worker: runs the jobs (same key id, samples in order) in chunks of at most
 * max_batch samples. */
static void run_jobs(veil_server *s, srv_job **jobs, size_t n_jobs) {
    veil_eval_key *ek = NULL;
    srv_error e = {0};
    veil_plan_group *plan = cache_get(s, jobs[0]->key_id, jobs[0]->key_fd, &ek, &e);
    if (!plan) {
        for (size_t j = 0; j < n_jobs; j++)
            jobs[j]->err = e;
        return;
    }
    /* Defence in depth: the handler checked the key fingerprint against the
     * stored key's header; check it against the loaded key too. */
    for (size_t j = 0; j < n_jobs; j++)
        if (veil_ct_batch_check_eval_key(jobs[j]->in, ek) != VEIL_OK)
            srv_fail(&jobs[j]->err, 403, "key_mismatch", "batch: %s", veil_error_message());
    const veil_program *p = s->prog;
    const size_t lwe = veil_program_ct_words(p);
    size_t jj = 0, local = 0; /* cursor: job, sample within it */
    while (jj < n_jobs) {
        /* Gather up to max_batch samples from the cursor on. */
        size_t b = 0;
        size_t cj = jj, cl = local;
        while (cj < n_jobs && b < s->o.max_batch) {
            srv_job *jb = jobs[cj];
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
        double t0 = srv_now();
        for (size_t k = jj; k <= cj && k < n_jobs; k++)
            if (!jobs[k]->t_start) jobs[k]->t_start = t0;
        veil_status st =
            veil_plan_group_execute(plan, (const uint64_t *const *)s->in_bufs, b, s->out_bufs);
        double dt = srv_now() - t0;
        srv_metrics_batch(&s->m, b, st == VEIL_OK, p->pbs_per_sample * b, dt);
        /* Scatter the results back (same walk). */
        size_t k = 0;
        while (jj < n_jobs && k < b) {
            srv_job *jb = jobs[jj];
            if (jb->err.status) {
                jj++;
                local = 0;
                continue;
            }
            if (st != VEIL_OK) {
                srv_fail(&jb->err, veil_backends_healthy(s->bes, s->n_bes) ? 500 : 503,
                         "evaluation_failed", "backend %s: %s", veil_backend_name(s->bes[0]),
                         veil_error_message());
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
                jb->t_end = srv_now();
                jj++;
                local = 0;
            }
        }
    }
}

/* s->mu held: every queued job (none is in a batch yet) fails with 503
 * code; its handler answers it. Returns how many. */
static unsigned fail_queued(veil_server *s, const char *code, const char *message) {
    unsigned n = 0;
    for (srv_job *j = s->head, *nx; j; j = nx) {
        nx = j->next;
        j->next = NULL;
        if (j->abandoned) {
            srv_job_free(j);
        } else {
            srv_fail(&j->err, 503, code, "%s", message);
            j->done = 1;
            n++;
        }
    }
    s->head = s->tail = NULL;
    s->queue_len = 0;
    pthread_cond_broadcast(&s->done_cv);
    return n;
}

unsigned srv_batcher_refuse_queued(veil_server *s) {
    pthread_mutex_lock(&s->mu);
    const unsigned n = fail_queued(s, "draining",
                                   "the server's drain deadline passed before this request was "
                                   "computed; retry (another replica or its replacement)");
    pthread_mutex_unlock(&s->mu);
    return n;
}

unsigned srv_batcher_computing(const veil_server *s) {
    unsigned n = s->validating;
    for (size_t i = 0; i < s->running; i++)
        n += !s->batch_list[i]->abandoned;
    return n;
}

static void *worker_main(void *arg) {
    veil_server *s = arg;
    srv_job **batch = s->batch_list;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->keys_recheck && !s->head) { /* the request it was spared for timed out */
            s->keys_recheck = 0;
            s->keys_removed = 1;
        }
        while (!s->stopping && !s->head && !s->keys_removed)
            pthread_cond_wait(&s->queue_cv, &s->mu);
        if (s->stopping) break;
        if (s->keys_removed) {
            s->keys_removed = 0;
            drop_removed_keys(s);
            continue; /* the queue may have changed meanwhile */
        }
        /* Wait for more requests under the first one's key id, until the
         * batch is full or the window from the first one's arrival closes. */
        srv_job *first = s->head;
        const double deadline = first->t_enqueue + s->o.max_wait_ms * 1e-3;
        for (;;) {
            /* first before anything reads it: a handler whose request timed
             * out while queued unlinks and frees its job (srv_batcher_run) */
            if (s->stopping || s->head != first || atomic_load(&s->draining))
                break; /* draining: no more requests will come */
            size_t same = 0;
            for (srv_job *j = s->head; j; j = j->next)
                if (!strcmp(j->key_id, first->key_id)) same += j->samples;
            if (same >= s->o.max_batch) break;
            double now = srv_now();
            if (now >= deadline) break;
            srv_cond_wait_s(&s->queue_cv, &s->mu, deadline - now);
        }
        if (s->stopping) break;
        if (!s->head) continue; /* the requests timed out meanwhile */
        first = s->head;
        /* Take the first job and every later one with the same key id that
         * fits (each job holds >= 1 sample, so at most max_batch jobs). */
        size_t n = 0, total = 0;
        srv_job **pp = &s->head, *prev = NULL;
        while (*pp && total < s->o.max_batch) {
            srv_job *j = *pp;
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
        s->running = n;
        pthread_mutex_unlock(&s->mu);
        run_jobs(s, batch, n);
        pthread_mutex_lock(&s->mu);
        s->running = 0;
        if (s->keys_recheck) { /* drop_removed_keys spared a plan for a queued request */
            s->keys_recheck = 0;
            s->keys_removed = 1;
        }
        for (size_t i = 0; i < n; i++) {
            if (batch[i]->abandoned)
                srv_job_free(batch[i]);
            else
                batch[i]->done = 1;
        }
        pthread_cond_broadcast(&s->done_cv);
    }
    fail_queued(s, "shutting_down", "the server is stopping");
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

veil_status srv_batcher_start(veil_server *s) {
    const veil_program *p = s->prog;
    const size_t mb = s->o.max_batch;
    s->cache = calloc(s->o.key_cache, sizeof *s->cache);
    s->n_cache = s->o.key_cache;
    s->in_bufs = calloc(p->n_inputs + 1, sizeof *s->in_bufs);
    s->out_bufs = calloc(p->n_outputs + 1, sizeof *s->out_bufs);
    s->batch_list = calloc(mb, sizeof *s->batch_list);
    if (!s->cache || !s->in_bufs || !s->out_bufs || !s->batch_list)
        return veil_error(VEIL_ERR_NOMEM, "out of memory");
    const size_t lwe = veil_program_ct_words(p);
    for (uint32_t i = 0; i < p->n_inputs; i++)
        if (!(s->in_bufs[i] = malloc(mb * veil_program_input_size(p, i) * lwe * 8)))
            return veil_error(VEIL_ERR_NOMEM, "out of memory for %zu-sample batches", mb);
    for (uint32_t i = 0; i < p->n_outputs; i++)
        if (!(s->out_bufs[i] = malloc(mb * veil_program_output_size(p, i) * lwe * 8)))
            return veil_error(VEIL_ERR_NOMEM, "out of memory for %zu-sample batches", mb);
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0)
        return veil_error(VEIL_ERR_INTERNAL, "cannot start the worker thread");
    s->worker_started = 1;
    return VEIL_OK;
}

void srv_batcher_stop(veil_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->queue_cv);
    pthread_cond_broadcast(&s->done_cv);
    pthread_cond_broadcast(&s->key_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->worker_started) pthread_join(s->worker, NULL);
    s->worker_started = 0;
    for (size_t i = 0; s->cache && i < s->n_cache; i++)
        cache_entry_clear(&s->cache[i]);
    free(s->cache);
    s->cache = NULL;
    if (s->prog) {
        for (uint32_t i = 0; s->in_bufs && i < s->prog->n_inputs; i++)
            free(s->in_bufs[i]);
        for (uint32_t i = 0; s->out_bufs && i < s->prog->n_outputs; i++)
            free(s->out_bufs[i]);
    }
    free(s->in_bufs);
    free(s->out_bufs);
    free(s->batch_list);
    s->in_bufs = s->out_bufs = NULL;
    s->batch_list = NULL;
}

/* 1 when the client on fd has gone while its answer is computed: the
 * connection was reset, or closed with nothing left to read (a request
 * pipelined behind this one keeps it). */
static int client_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (fd < 0 || poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return 1;
    char b;
    const ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

int srv_batcher_run(veil_server *s, srv_job *j, int fd, srv_error *e) {
    j->t_enqueue = srv_now();
    pthread_mutex_lock(&s->mu);
    const int healthy = veil_backends_healthy(s->bes, s->n_bes);
    if (s->stopping || !healthy || s->queue_len >= s->o.max_queue) {
        const int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        srv_job_free(j);
        if (stopping) return srv_fail(e, 503, "shutting_down", "the server is stopping");
        if (!healthy)
            return srv_fail(e, 503, "backend_unhealthy", "backend %s is dead: %s",
                            veil_backend_name(s->bes[0]), "see GET /v1/health");
        return srv_fail(e, 503, "queue_full", "%zu requests queued (--max-queue); retry later",
                        s->o.max_queue);
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queue_len++;
    pthread_cond_broadcast(&s->queue_cv);
    const double deadline = j->t_enqueue + s->o.timeout_ms * 1e-3;
    int gone = 0;
    while (!j->done) {
        double now = srv_now();
        if (now >= deadline || (gone = client_gone(fd))) break;
        srv_cond_wait_s(&s->done_cv, &s->mu,
                        deadline - now > SRV_GONE_POLL_S ? SRV_GONE_POLL_S : deadline - now);
    }
    if (j->done) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    /* Timed out, or nobody left to answer: unlink it if still queued (its
     * queue place and in-flight slot are free at once), else the worker
     * frees it. */
    int queued = 0;
    for (srv_job **pp = &s->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            if (s->tail == j) s->tail = prev;
            s->queue_len--;
            queued = 1;
            break;
        }
    if (queued)
        srv_job_free(j);
    else
        j->abandoned = 1;
    pthread_mutex_unlock(&s->mu);
    if (gone) {
        srv_fail(e, 0, "client_gone", "the client closed its connection (%s)",
                 queued ? "still queued" : "still running");
        return SRV_CLIENT_GONE;
    }
    return srv_fail(e, 504, "timeout", "no result within %u ms (%s)", s->o.timeout_ms,
                    queued ? "still queued" : "still running");
}
