/* server_internal.h — how the parts of veil-server fit together (see
 * veil/server.h for what it does):
 *   server.c    start, stop: owns every part below
 *   http.c      libmicrohttpd handlers, one thread per connection
 *   batcher.c   the job queue, the worker that owns the backends, the LRU of
 *               plan groups (evaluation keys resident in the backends: one
 *               plan per --devices entry, veil/exec.h veil_plan_group)
 *   metrics.c   counters and the Prometheus text
 *   keystore.c  the key directory (veil/keystore.h, shared with Triton)
 *   request.c   validation of what clients send (request.h)
 *   conns.c     open connections and the request deadline (a reaper thread)
 * Locking: s->mu guards the queue, the jobs' done/abandoned flags and the
 * request counters; the metrics have their own mutex (m.mu); conn_mu guards
 * the connection list; usage_mu the key store's size shown by /metrics.
 * conn_mu may be held while taking m.mu, no other nesting. */
#ifndef VEIL_SERVER_INTERNAL_H
#define VEIL_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "request.h"
#include "veil/exec.h"
#include "veil/keystore.h"
#include "veil/loader.h"
#include "veil/server.h"

static inline double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The server's condition variables time out on CLOCK_MONOTONIC, as srv_now
 * counts: a wall clock stepped back (NTP, date -s, a resumed VM) would
 * otherwise stretch every timed wait by the step (the reaper's, the batching
 * window's, a request's). */
static inline void srv_cond_init(pthread_cond_t *cv) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* Waits on cv (srv_cond_init; mu held) for at most seconds (>= 0). Callers
 * loop on their own condition. */
static inline void srv_cond_wait_s(pthread_cond_t *cv, pthread_mutex_t *mu, double seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const long long ns = (long long)ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- metrics.c ------------------------------------------------------------------ */

#define SRV_BATCH_BUCKETS 8
#define SRV_LAT_BUCKETS 10
#define SRV_ENDPOINTS 8 /* srv_route values */

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t requests[SRV_ENDPOINTS];
    uint64_t responses[600];
    uint64_t batches, batch_samples_sum, batch_bucket[SRV_BATCH_BUCKETS + 1];
    uint64_t pbs_total;
    double exec_seconds;
    double last_pbs_per_s;
    uint64_t cache_hits, cache_misses, cache_evictions;
    uint64_t cache_dropped;  /* plans freed because their key was removed */
    uint64_t cache_resident; /* plans resident now (a gauge the worker keeps) */
    uint64_t keys_uploaded;
    uint64_t request_timeouts;                /* connections closed by the request deadline */
    uint64_t conns_evicted;                   /* slow connections closed to make room (conns.c) */
    uint64_t lat_bucket[SRV_LAT_BUCKETS + 1]; /* successful infer requests, queue + exec */
    uint64_t lat_count;
    double lat_sum;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, srv_route route);
void srv_metrics_response(srv_metrics *m, int status);
/* One backend batch of `samples`; ok: it succeeded, pbs and seconds count. */
void srv_metrics_batch(srv_metrics *m, size_t samples, int ok, uint64_t pbs, double seconds);
void srv_metrics_latency(srv_metrics *m, double seconds);
/* Key cache: a hit, or a miss (evicted: a plan made room); resident now. */
void srv_metrics_cache(srv_metrics *m, int hit, int evicted, size_t resident);
/* n plans freed because their key was removed; resident now. */
void srv_metrics_cache_dropped(srv_metrics *m, unsigned n, size_t resident);
void srv_metrics_key_uploaded(srv_metrics *m);
void srv_metrics_request_timeouts(srv_metrics *m, unsigned n);
void srv_metrics_conns_evicted(srv_metrics *m);

/* ---- batcher.c ------------------------------------------------------------------ */

typedef struct srv_job {
    char key_id[VEIL_KEY_ID_CHARS + 1];
    int key_fd; /* the key's file, open since the handler read its header (-1: none): it loads
                 * even if the key is deleted or pruned while the job waits */
    veil_ct_batch *in;
    veil_ct_batch *out; /* allocated by the handler, filled by the worker */
    size_t samples;
    double t_enqueue, t_start, t_end;
    size_t batch_samples; /* samples of the backend batch it ran in */
    int done, abandoned;
    srv_error err; /* err.status 0 = success */
    struct srv_job *next;
} srv_job;

void srv_job_free(srv_job *j);

typedef struct srv_cache_entry {
    char key_id[VEIL_KEY_ID_CHARS + 1];
    veil_eval_key *ek;
    veil_plan_group *plan; /* one plan per backend (s->bes) */
    uint64_t last_used;
    int gone; /* drop_removed_keys: its key is no longer stored */
} srv_cache_entry;

/* A key was removed from the store (DELETE, --key-ttl-hours, or now and then
 * for removals by other servers sharing it): the worker frees the plans of
 * keys no longer stored that no queued request waits for. */
void srv_batcher_keys_removed(veil_server *s);
/* Allocates the worker's buffers and starts it. */
veil_status srv_batcher_start(veil_server *s);
/* Stops the worker (queued jobs fail with 503) and frees its state. */
void srv_batcher_stop(veil_server *s);
/* The drain deadline passed: every queued request not yet in a batch is
 * answered 503 draining (never computed). Returns how many. */
unsigned srv_batcher_refuse_queued(veil_server *s);
/* s->mu held: requests being computed now: key uploads validated, and the
 * worker's batch (less those whose client has gone). */
unsigned srv_batcher_computing(const veil_server *s);
/* How often a waiting request looks whether its client is still there. */
#define SRV_GONE_POLL_S 0.25
/* srv_batcher_run: the client of fd closed its connection while waiting. */
#define SRV_CLIENT_GONE 1
/* Queues j and waits for it until the per-request deadline, or until the
 * client on fd (its connection, -1: not watched) has gone. 0: j is done (the
 * caller owns it again; j->err says how it went). Otherwise e is set (503
 * queue full / stopping / backend dead, 504 timeout; SRV_CLIENT_GONE: nobody
 * to answer, e->status 0) and the batcher owns j (it frees it). */
int srv_batcher_run(veil_server *s, srv_job *j, int fd, srv_error *e);

/* ---- conns.c -------------------------------------------------------------------- */

typedef struct srv_conn srv_conn;

/* MHD_OPTION_NOTIFY_CONNECTION: tracks a connection from open to close. */
void srv_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe);
/* A request that arrives for less than this never loses its slot to
 * another (srv_conn_evict_slow_body): a burst of quick ones are refused 503
 * as before, never reset. */
#define SRV_EVICT_MIN_AGE_S 1.0
/* How long a request waits for the slot of the one it evicted. */
#define SRV_SLOT_WAIT_S 0.5
/* A request has begun on c (its headers are in); admitted: it holds an
 * in-flight slot while its body arrives. */
void srv_conn_began(veil_server *s, struct MHD_Connection *c, int admitted);
/* The in-flight slots are full (c's request got none): closes the
 * connection, other than c, whose admitted request has been arriving the
 * longest, at least SRV_EVICT_MIN_AGE_S; 1 when there was one. */
int srv_conn_evict_slow_body(veil_server *s, struct MHD_Connection *c);
/* The request on c is all in (its handler runs): the deadline stops. */
void srv_conn_arrived(veil_server *s, struct MHD_Connection *c);
/* Its answer is queued: the deadline runs again, for reading it. */
void srv_conn_sending(veil_server *s, struct MHD_Connection *c);
/* Its answer is done; a kept-alive connection's next request starts now. */
void srv_conn_answered(veil_server *s, struct MHD_Connection *c);
/* 1 when c's request has been arriving for longer than request_timeout_ms
 * (counted once in the metrics, with the reaper's closes): drop it. */
int srv_conn_late(veil_server *s, struct MHD_Connection *c);
/* The drain deadline passed: closes every connection still receiving a
 * request (counted in *arriving when one had begun; idle ones are closed
 * uncounted) or still sending an answer (*reading); one whose handler runs
 * (its request computed) is left alone. */
void srv_conn_drain_cut(veil_server *s, unsigned *arriving, unsigned *reading);
/* The reaper also prunes the key store (--key-ttl-hours), at start and this
 * often, with conn_mu released, and has the worker free the resident plans of
 * keys removed meanwhile (srv_batcher_keys_removed). */
#define SRV_PRUNE_EVERY_S 300.0
veil_status srv_reaper_start(veil_server *s);
void srv_reaper_stop(veil_server *s);

/* ---- the server ----------------------------------------------------------------- */

struct veil_server {
    veil_server_options o;
    veil_model *model;
    veil_program *prog;
    srv_program_info pi;
    char fp_hex[2 * VEIL_PROGRAM_FP_BYTES + 1];
    char *model_json;
    veil_backend *bes[VEIL_BACKEND_MAX_DEVICES]; /* one per --devices entry (veil_backends_new) */
    size_t n_bes;
    veil_keystore *ks;
    pthread_mutex_t usage_mu;  /* usage, usage_at: the store's size for /metrics */
    veil_keystore_usage usage; /* read at most every SRV_USAGE_EVERY_S (a directory walk) */
    double usage_at;           /* srv_now() of the reading; 0: none yet */
    int usage_ok;
    double next_prune; /* the reaper's: srv_now() of the next veil_keystore_prune */
    struct MHD_Daemon *mhd;
    int listen_fd; /* ours: MHD borrows it */
    int quiesced;  /* MHD gave it back (drain): ours to close */
    uint16_t port;
    size_t max_key_body;
    unsigned read_timeout_s; /* MHD's connection timeout */

    pthread_mutex_t mu; /* queue, jobs, inflight, active, validating, stopping */
    pthread_cond_t queue_cv, done_cv, key_cv, idle_cv, slot_cv; /* slot_cv: inflight fell */
    srv_job *head, *tail;
    size_t queue_len;
    unsigned inflight;   /* requests under the in-flight limit (all but health, metrics) */
    unsigned active;     /* requests started and not yet answered (drain waits for 0) */
    unsigned validating; /* key uploads being deserialized (memory-heavy) */
    size_t running;      /* jobs of the batch the worker runs now (batch_list) */
    int stopping;
    int keys_removed;    /* srv_batcher_keys_removed: the worker looks at its resident keys */
    int keys_recheck;    /* a removed key's plan was spared for a queued request: look again
                          * after the next batch */
    atomic_int draining; /* set once by veil_server_drain; read without the lock */
    pthread_t worker;
    int worker_started;
    srv_metrics m;

    pthread_mutex_t conn_mu; /* conns, n_conns, reaper_stop */
    pthread_cond_t reaper_cv;
    srv_conn *conns;
    unsigned n_conns;    /* tracked connections open now */
    unsigned conn_limit; /* MHD's connection limit: reaching it evicts a slow one */
    pthread_t reaper;
    int reaper_started, reaper_stop;

    /* worker-only */
    srv_cache_entry *cache;
    size_t n_cache;
    uint64_t tick;
    uint64_t **in_bufs, **out_bufs;
    srv_job **batch_list; /* max_batch */
};

/* ---- http.c --------------------------------------------------------------------- */

/* The /v1/model answer (malloc'ed), built once at start. */
char *srv_model_json(const veil_server *s);
/* The libmicrohttpd callbacks; cls is the server. */
enum MHD_Result srv_http_on_request(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);
void srv_http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe);

/* ---- metrics.c (needs the server) ------------------------------------------------ */

/* /metrics reads the key store's size at most this often. */
#define SRV_USAGE_EVERY_S 5.0
/* The Prometheus text (malloc'ed), NULL when out of memory. */
char *srv_metrics_text(veil_server *s, size_t *len);
/* This server stored or removed a key: the next /metrics reads the store's
 * size again (other servers' changes show within SRV_USAGE_EVERY_S). */
void srv_metrics_store_changed(veil_server *s);

#endif
