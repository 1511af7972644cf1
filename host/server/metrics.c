/* metrics.c — veil-server's counters and their Prometheus text (GET /metrics)
 * and veil_server_get_stats. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

static const unsigned k_batch_buckets[SRV_BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128};
static const double k_lat_buckets[SRV_LAT_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};
static const char *const k_endpoint_names[SRV_ENDPOINTS] = {
    "other", "health", "model", "metrics", "keys_post", "key_get", "infer", "key_delete"};

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void srv_metrics_destroy(srv_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

void srv_metrics_request(srv_metrics *m, srv_route route) {
    pthread_mutex_lock(&m->mu);
    if ((unsigned)route < SRV_ENDPOINTS) m->requests[route]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_response(srv_metrics *m, int status) {
    pthread_mutex_lock(&m->mu);
    if (status >= 100 && status < 600) m->responses[status]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_batch(srv_metrics *m, size_t samples, int ok, uint64_t pbs, double seconds) {
    size_t bk = 0;
    while (bk < SRV_BATCH_BUCKETS && samples > k_batch_buckets[bk])
        bk++;
    pthread_mutex_lock(&m->mu);
    m->batches++;
    m->batch_samples_sum += samples;
    m->batch_bucket[bk]++;
    if (ok) {
        m->pbs_total += pbs;
        m->exec_seconds += seconds;
        m->last_pbs_per_s = seconds > 0 ? (double)pbs / seconds : 0;
    }
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_latency(srv_metrics *m, double seconds) {
    size_t lb = 0;
    while (lb < SRV_LAT_BUCKETS && seconds > k_lat_buckets[lb])
        lb++;
    pthread_mutex_lock(&m->mu);
    m->lat_bucket[lb]++;
    m->lat_count++;
    m->lat_sum += seconds;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_cache(srv_metrics *m, int hit, int evicted, size_t resident) {
    pthread_mutex_lock(&m->mu);
    if (hit)
        m->cache_hits++;
    else
        m->cache_misses++;
    m->cache_evictions += evicted != 0;
    m->cache_resident = resident;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_cache_dropped(srv_metrics *m, unsigned n, size_t resident) {
    pthread_mutex_lock(&m->mu);
    m->cache_dropped += n;
    m->cache_resident = resident;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_request_timeouts(srv_metrics *m, unsigned n) {
    pthread_mutex_lock(&m->mu);
    m->request_timeouts += n;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_conns_evicted(srv_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->conns_evicted++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_key_uploaded(srv_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->keys_uploaded++;
    pthread_mutex_unlock(&m->mu);
}

/* A copy of the counters (the mutex is not copied). */
static void snapshot(srv_metrics *m, srv_metrics *out) {
    pthread_mutex_lock(&m->mu);
    memcpy(out, m, sizeof *out);
    pthread_mutex_unlock(&m->mu);
    memset(&out->mu, 0, sizeof out->mu);
}

void veil_server_get_stats(veil_server *s, veil_server_stats *out) {
    memset(out, 0, sizeof *out);
    srv_metrics m;
    snapshot(&s->m, &m);
    for (int i = 0; i < SRV_ENDPOINTS; i++)
        out->requests += m.requests[i];
    out->batches = m.batches;
    out->batch_samples = m.batch_samples_sum;
    out->pbs = m.pbs_total;
    out->exec_seconds = m.exec_seconds;
    for (int i = 0; i <= SRV_BATCH_BUCKETS; i++)
        out->batch_hist[i] = m.batch_bucket[i];
    out->cache_hits = m.cache_hits;
    out->cache_misses = m.cache_misses;
    out->cache_evictions = m.cache_evictions;
}

/* The key store's size, read again when SRV_USAGE_EVERY_S old (one readdir
 * and a stat per file: not on every scrape). 0 when it cannot be listed. */
static int store_usage(veil_server *s, veil_keystore_usage *u) {
    pthread_mutex_lock(&s->usage_mu);
    const double now = srv_now();
    if (!s->usage_at || now - s->usage_at >= SRV_USAGE_EVERY_S) {
        s->usage_ok = veil_keystore_usage_read(s->ks, &s->usage) == VEIL_OK;
        s->usage_at = now;
    }
    *u = s->usage;
    const int ok = s->usage_ok;
    pthread_mutex_unlock(&s->usage_mu);
    return ok;
}

void srv_metrics_store_changed(veil_server *s) {
    pthread_mutex_lock(&s->usage_mu);
    s->usage_at = 0;
    pthread_mutex_unlock(&s->usage_mu);
}

char *srv_metrics_text(veil_server *s, size_t *len) {
    srv_metrics m;
    size_t qlen;
    unsigned inflight;
    pthread_mutex_lock(&s->mu);
    qlen = s->queue_len;
    inflight = s->inflight;
    pthread_mutex_unlock(&s->mu);
    snapshot(&s->m, &m);
    srv_sbuf b = {0};
    srv_sbuf_printf(&b, "# HELP veil_requests_total HTTP requests by endpoint.\n"
                        "# TYPE veil_requests_total counter\n");
    for (int i = 0; i < SRV_ENDPOINTS; i++)
        srv_sbuf_printf(&b, "veil_requests_total{endpoint=\"%s\"} %llu\n", k_endpoint_names[i],
                        (unsigned long long)m.requests[i]);
    srv_sbuf_printf(&b, "# HELP veil_responses_total HTTP responses by status code.\n"
                        "# TYPE veil_responses_total counter\n");
    for (int i = 100; i < 600; i++)
        if (m.responses[i])
            srv_sbuf_printf(&b, "veil_responses_total{code=\"%d\"} %llu\n", i,
                            (unsigned long long)m.responses[i]);
    uint64_t errs = 0;
    for (int i = 400; i < 600; i++)
        errs += m.responses[i];
    srv_sbuf_printf(&b,
                    "# HELP veil_errors_total responses with status >= 400.\n"
                    "# TYPE veil_errors_total counter\nveil_errors_total %llu\n",
                    (unsigned long long)errs);
    srv_sbuf_printf(&b, "# HELP veil_batch_samples samples per backend batch (dynamic batching).\n"
                        "# TYPE veil_batch_samples histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < SRV_BATCH_BUCKETS; i++) {
        cum += m.batch_bucket[i];
        srv_sbuf_printf(&b, "veil_batch_samples_bucket{le=\"%u\"} %llu\n", k_batch_buckets[i],
                        (unsigned long long)cum);
    }
    cum += m.batch_bucket[SRV_BATCH_BUCKETS];
    srv_sbuf_printf(&b, "veil_batch_samples_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    srv_sbuf_printf(&b, "veil_batch_samples_sum %llu\nveil_batch_samples_count %llu\n",
                    (unsigned long long)m.batch_samples_sum, (unsigned long long)m.batches);
    srv_sbuf_printf(&b,
                    "# HELP veil_pbs_total programmable bootstrappings executed.\n"
                    "# TYPE veil_pbs_total counter\nveil_pbs_total %llu\n"
                    "# HELP veil_exec_seconds_total time in veil_plan_execute.\n"
                    "# TYPE veil_exec_seconds_total counter\nveil_exec_seconds_total %.6f\n"
                    "# HELP veil_pbs_per_second PBS throughput of the last batch.\n"
                    "# TYPE veil_pbs_per_second gauge\nveil_pbs_per_second %.3f\n",
                    (unsigned long long)m.pbs_total, m.exec_seconds, m.last_pbs_per_s);
    srv_sbuf_printf(&b,
                    "# HELP veil_queue_depth infer requests waiting for the backend.\n"
                    "# TYPE veil_queue_depth gauge\nveil_queue_depth %zu\n"
                    "# HELP veil_inflight_requests requests being handled.\n"
                    "# TYPE veil_inflight_requests gauge\nveil_inflight_requests %u\n",
                    qlen, inflight);
    srv_sbuf_printf(
        &b,
        "# HELP veil_key_cache_hits_total infer batches whose keys were resident.\n"
        "# TYPE veil_key_cache_hits_total counter\nveil_key_cache_hits_total %llu\n"
        "# HELP veil_key_cache_misses_total batches that loaded their keys.\n"
        "# TYPE veil_key_cache_misses_total counter\nveil_key_cache_misses_total %llu\n"
        "# HELP veil_key_cache_evictions_total keys evicted (LRU).\n"
        "# TYPE veil_key_cache_evictions_total counter\n"
        "veil_key_cache_evictions_total %llu\n"
        "# HELP veil_key_cache_dropped_total resident keys freed because their key was "
        "removed from the store (deleted, expired, or by another server sharing it).\n"
        "# TYPE veil_key_cache_dropped_total counter\nveil_key_cache_dropped_total %llu\n"
        "# HELP veil_key_cache_resident keys resident in the backend.\n"
        "# TYPE veil_key_cache_resident gauge\nveil_key_cache_resident %llu\n"
        "# HELP veil_keys_uploaded_total evaluation keys accepted.\n"
        "# TYPE veil_keys_uploaded_total counter\nveil_keys_uploaded_total %llu\n"
        "# HELP veil_keys_quarantined_total stored keys found corrupted and set aside.\n"
        "# TYPE veil_keys_quarantined_total counter\nveil_keys_quarantined_total %llu\n"
        "# HELP veil_request_timeouts_total connections closed still sending their request "
        "after --request-timeout-ms.\n"
        "# TYPE veil_request_timeouts_total counter\nveil_request_timeouts_total %llu\n"
        "# HELP veil_connections_evicted_total slow connections (sending their request or "
        "idle) closed to make room for a new one when the connection table or the "
        "in-flight slots were full.\n"
        "# TYPE veil_connections_evicted_total counter\nveil_connections_evicted_total %llu\n",
        (unsigned long long)m.cache_hits, (unsigned long long)m.cache_misses,
        (unsigned long long)m.cache_evictions, (unsigned long long)m.cache_dropped,
        (unsigned long long)m.cache_resident, (unsigned long long)m.keys_uploaded,
        (unsigned long long)veil_keystore_quarantined(s->ks),
        (unsigned long long)m.request_timeouts, (unsigned long long)m.conns_evicted);
    veil_keystore_usage u;
    if (store_usage(s, &u))
        srv_sbuf_printf(&b,
                        "# HELP veil_key_store_keys evaluation keys in the key store (every "
                        "server sharing it; read at most every %g s).\n"
                        "# TYPE veil_key_store_keys gauge\nveil_key_store_keys %llu\n"
                        "# HELP veil_key_store_bytes bytes of every file in the key store "
                        "(what --key-store-max-mb bounds).\n"
                        "# TYPE veil_key_store_bytes gauge\nveil_key_store_bytes %llu\n",
                        SRV_USAGE_EVERY_S, (unsigned long long)u.keys, (unsigned long long)u.bytes);
    srv_sbuf_printf(&b,
                    "# HELP veil_keys_removed_total evaluation keys this server removed: deleted "
                    "by their holder (DELETE /v1/keys/<id>), or unused past --key-ttl-hours.\n"
                    "# TYPE veil_keys_removed_total counter\n"
                    "veil_keys_removed_total{reason=\"deleted\"} %llu\n"
                    "veil_keys_removed_total{reason=\"expired\"} %llu\n",
                    (unsigned long long)veil_keystore_deleted(s->ks),
                    (unsigned long long)veil_keystore_pruned_keys(s->ks));
    srv_sbuf_printf(&b, "# HELP veil_infer_duration_seconds successful POST /v1/infer, queue and "
                        "execution.\n# TYPE veil_infer_duration_seconds histogram\n");
    cum = 0;
    for (int i = 0; i < SRV_LAT_BUCKETS; i++) {
        cum += m.lat_bucket[i];
        srv_sbuf_printf(&b, "veil_infer_duration_seconds_bucket{le=\"%g\"} %llu\n",
                        k_lat_buckets[i], (unsigned long long)cum);
    }
    cum += m.lat_bucket[SRV_LAT_BUCKETS];
    srv_sbuf_printf(
        &b,
        "veil_infer_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
        "veil_infer_duration_seconds_sum %.6f\nveil_infer_duration_seconds_count %llu\n",
        (unsigned long long)cum, m.lat_sum, (unsigned long long)m.lat_count);
    srv_sbuf_printf(&b,
                    "# HELP veil_backend_healthy 1 while the backend accepts work (every "
                    "plan's device).\n"
                    "# TYPE veil_backend_healthy gauge\nveil_backend_healthy %d\n"
                    "# HELP veil_backend_plans Plans (devices, --devices) a batch is split "
                    "across.\n"
                    "# TYPE veil_backend_plans gauge\nveil_backend_plans %zu\n",
                    veil_backends_healthy(s->bes, s->n_bes), s->n_bes);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
