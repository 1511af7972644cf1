/* veil/server.h — veil-server, the HTTP inference service, as a library:
 * `veil-server` (host/veil-server.c) is a thin main around it, and the tests
 * and the load benchmark start it in-process on a free loopback port.
 *
 * At start: load the model, compile it once (the same compile options a
 * client uses, so both sides get the same program fingerprint), create the
 * backend, open (create) the keys directory, listen.
 *
 * HTTP API (JSON errors: {"error": "<code>", "message": "<what and where>"}):
 *   POST /v1/keys        body: a serialized, seeded evaluation key
 *                        (veil/serialize.h, "VEILEK01") for the program's
 *                        parameter set. -> 201 {"key_id": "<32 hex>", ...}.
 *                        The id is 128 random bits (libsodium randombytes):
 *                        holding it is what lets a client use the key. The key
 *                        is stored as <keys-dir>/<id>.vek, so a restart (or
 *                        another server sharing the directory) keeps it. A
 *                        secret key ("VEILSK01") is refused with 400
 *                        secret_key_refused and never stored.
 *   GET  /v1/keys/<id>   200 {"key_id", "params_id", "key_fp"} or 404.
 *   DELETE /v1/keys/<id> 204, or 404 unknown_key (none stored under it). The
 *                        id is the capability: its holder may remove the key.
 *                        An infer already admitted with it still finishes;
 *                        later ones (here and on every server sharing the
 *                        directory) get 404. key_ttl_hours removes unused
 *                        keys by itself.
 *   POST /v1/infer       key id in the header `X-Veil-Key-Id` or the query
 *                        `?key_id=`; body: a ciphertext batch (raw or seeded)
 *                        of S samples in the sample-major layout of
 *                        veil/deploy.h, with the program's params id, the
 *                        program fingerprint and the key's fingerprint,
 *                        every mask 0 past the program's input width
 *                        (veil_program.input_width: the client encrypts under
 *                        that prefix of the master key, and the compiler's
 *                        noise model counts on it).
 *                        -> 200 application/octet-stream: the result batch
 *                        (raw), S samples of the outputs, same fingerprints.
 *                        Response headers X-Veil-Batch-Samples (samples of
 *                        the backend batch the request ran in) and
 *                        X-Veil-Queue-Ms / X-Veil-Exec-Ms.
 *   GET  /v1/model       inputs, shapes, quantization, parameter set id,
 *                        program fingerprint, layout sizes.
 *   GET  /v1/health      200 {"status":"ok"}; 503 {"status":"unhealthy"} when the
 *                        backend is dead, {"status":"draining"} while shutting down.
 *   GET  /metrics        Prometheus text format.
 * Health and metrics are never refused by the in-flight limit.
 * Status codes: 400 malformed or empty body / wrong kind (a result batch sent
 * as input included) / params or model mismatch / a mask word past the input
 * width (mask_past_width, naming the ciphertext, the word and the width), 403 batch encrypted under
 * another key than the key id's, 404 unknown key id or path, 405 wrong
 * method, 413 body over the limit (or batch over --max-request-samples), 503
 * queue full / too many requests / backend dead / draining, 504 per-request
 * timeout, 507 key_store_full (POST /v1/keys past key_store_max_mb), 500
 * evaluation failed. Messages never hold server paths.
 *
 * Stored keys (veil/keystore.h): GET /v1/keys/<id> verifies the file's
 * checksum; a corrupted file is moved aside (<id>.vek.corrupt) and the id
 * answers 404 from then on, on GET and on infer, so the client uploads its key
 * again (veil remote does).
 *
 * Connections: read_timeout_ms closes a connection that sends (or reads)
 * nothing for that long, so a stalled client frees its slot; the wait for a
 * result is bounded by timeout_ms instead. read_timeout_ms restarts on every
 * byte, so request_timeout_ms bounds the whole request: a client trickling
 * its headers or body a byte at a time is cut off when it runs out; so is
 * one reading its answer a byte at a time (the clock restarts when the
 * answer is ready). At most max_conn_per_ip connections per client address.
 *
 * Shutdown: veil_server_drain below; veil-server drains on the first SIGTERM
 * or SIGINT and exits at once on a second. For a hand-over without refused
 * connections, start the replacement with --reuse-port on the same port
 * (both servers need it, same user), wait for its health, then SIGTERM the
 * old one; without it, the port is free as soon as the old one drains and
 * clients retry refused connections (veil remote does).
 *
 * Dynamic batching: one worker owns the backends. It takes the oldest queued
 * request, waits up to max_wait_ms (from that request's arrival) for more
 * requests under the SAME key id, merges them up to max_batch samples into one
 * veil_plan_group_execute, and splits the result back. Batches never mix key
 * ids. With backend_opts' device list (--devices) the group has one plan per
 * device and each batch is cut into one share per plan, run side by side
 * (veil/exec.h); without one, a single plan. Plan groups (evaluation keys
 * resident in the backends, one copy per plan) form an LRU cache of key_cache
 * entries. */
#ifndef VEIL_SERVER_H
#define VEIL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "veil/backend.h"
#include "veil/program.h"
#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_server veil_server;

/* The most of max_batch, max_queue and max_inflight (a count of samples or
 * requests held at once), and of key_cache (plans resident): past them a
 * server would only run out of memory, so they are refused naming the
 * option. */
#define VEIL_SERVER_MAX_COUNT (1u << 20)
#define VEIL_SERVER_MAX_KEY_CACHE 1024u

typedef struct veil_server_options {
    const char *model_path;
    veil_compile_options compile;
    veil_backend_kind backend;
    veil_backend_options backend_opts; /* threads, device, kernel, devices (veil/backend.h) */
    const char *listen;                /* "HOST:PORT", IPv4 or [IPv6]; port 0: any free port */
    const char *keys_dir;              /* created (0700) if missing */
    size_t max_batch;                  /* samples per backend batch (default 16) */
    unsigned max_wait_ms;              /* batching window (default 10) */
    size_t max_body;                   /* bytes of an infer body (default 64 MiB) */
    size_t max_request_samples;        /* samples of one infer request (default 1024;
                                        * fewer when that many, decoded, take more
                                        * than max_body: GET /v1/model gives the
                                        * figure in force) */
    unsigned max_inflight;             /* requests received or computed at once (default
                                        * 64, at most VEIL_SERVER_MAX_COUNT)
                                        * 64); an answer being read does not count */
    size_t max_queue;                  /* queued infer requests (default 256) */
    unsigned timeout_ms;               /* per infer request, queue + execution (default 300000) */
    size_t key_cache;                  /* plans resident in the backend (default 4) */
    unsigned max_key_uploads;          /* key uploads validated at once (default 2) */
    unsigned key_store_max_mb;         /* uploads that would take the keys directory (every
                                        * file in it, veil_keystore_usage_read, read again
                                        * at each upload) past this many MiB are refused
                                        * 507 key_store_full (default 10240; 0: no limit) */
    unsigned key_ttl_hours;            /* keys not used for this many hours are removed
                                        * (veil_keystore_prune, every SRV_PRUNE_EVERY_S and
                                        * at start; default 0: kept forever) */
    unsigned read_timeout_ms;    /* a connection on which the client sends or reads nothing for
                                    this long is closed (default 30000, whole seconds); not
                                    counted while its request is computed (timeout_ms) */
    unsigned max_conn_per_ip;    /* open connections per client address (default 32; 0: no
                                    limit, for a reverse proxy in front) */
    unsigned request_timeout_ms; /* a request (headers and body) still arriving this long after
                                    the connection opened, or after the previous answer on it,
                                    or an answer still being read this long after it was
                                    ready, is dropped and its connection closed
                                    (default 120000) */
    unsigned drain_timeout_ms;   /* veil_server_drain's deadline (default 25000, under
                                    Kubernetes' 30 s grace period): past it, requests still
                                    arriving and answers still being read are cut */
    int reuse_port;              /* SO_REUSEPORT: servers of one user share the port, e.g. a
                                    replacement started before the old one drains */
    int verbose;                 /* log each request to stderr */
} veil_server_options;

void veil_server_options_default(veil_server_options *o);

/* Checks an address for --listen (HOST:PORT, [IPv6]:PORT; the host
 * resolved) as veil_server_start reads it, without binding: VEIL_ERR_ARG
 * naming it when it is not one. A port in use is found only at start. */
veil_status veil_server_listen_check(const char *listen);

/* Loads, compiles, listens; returns once the server accepts connections. */
veil_status veil_server_start(const veil_server_options *o, veil_server **out);
/* The port it listens on (useful with port 0). */
uint16_t veil_server_port(const veil_server *s);
/* The compiled program (borrowed, valid until stop). */
const veil_program *veil_server_program(const veil_server *s);
/* Counters since start (what /metrics exports), for in-process benchmarks. */
typedef struct veil_server_stats {
    uint64_t requests, batches, batch_samples, pbs;
    double exec_seconds;
    uint64_t batch_hist[9]; /* batches of <= 1, 2, 4, 8, 16, 32, 64, 128, more samples */
    uint64_t cache_hits, cache_misses, cache_evictions;
} veil_server_stats;
void veil_server_get_stats(veil_server *s, veil_server_stats *out);

/* What a drain had to cut at its deadline (all 0: every request finished). */
typedef struct veil_server_drain_report {
    unsigned arriving;  /* connections closed while their request was still arriving (a
                           slow or trickling upload): the client never got an answer */
    unsigned reading;   /* connections closed while their answer was still being read */
    unsigned refused;   /* queued infer requests answered 503 draining, never computed */
    unsigned abandoned; /* requests still computing (a batch, a key upload's validation) */
} veil_server_drain_report;

/* Graceful shutdown (veil-server calls it on SIGTERM), then veil_server_stop:
 * closes the listening socket at once (the port is free for a replacement,
 * even one without reuse_port), answers GET /v1/health 503
 * {"status":"draining"} and any request that starts now 503 draining (with
 * Connection: close) on connections still open, and lets every request
 * already started finish: its body is read, its batch computed (the batching
 * window is not waited out) and its answer sent. Returns 0 when none has been
 * left for 100 ms (a request already sent but not yet started gets its
 * answer).
 *
 * The deadline, timeout_ms (0: the options' drain_timeout_ms), bounds it
 * whatever the clients do: when it passes, every connection still receiving
 * a request (a body trickling in) or still sending an answer is closed,
 * queued infer requests not yet in a batch are answered 503 draining (the
 * client retries elsewhere), and what is left are requests being computed:
 * their number is returned (the caller cannot veil_server_stop without
 * waiting for them: veil-server exits instead). report (NULL ok) says what
 * was cut. */
unsigned veil_server_drain(veil_server *s, unsigned timeout_ms, veil_server_drain_report *report);

/* Stops listening, fails queued requests with 503, frees everything. NULL ok. */
void veil_server_stop(veil_server *s);

#ifdef __cplusplus
}
#endif
#endif
