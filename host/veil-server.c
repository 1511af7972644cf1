/* veil-server — serves one compiled model on encrypted data over HTTP.
 *
 *   veil-server --model MODEL [--backend auto|cpu|cuda] [--listen HOST:PORT]
 *               [--keys-dir DIR] [--max-batch N] [--max-wait-ms MS]
 *               [--max-body BYTES] [--max-request-samples N] [--max-inflight N]
 *               [--max-queue N] [--timeout-ms MS] [--key-cache N] [--max-key-uploads N]
 *               [--key-store-max-mb MB]
 *               [--read-timeout-ms MS] [--request-timeout-ms MS] [--max-conn-per-ip N]
 *               [--drain-timeout-ms MS] [--reuse-port] [--devices LIST|all]
 *               [compile options, as `veil compile`] [--verbose]
 *
 * The compile options come from one parser (veil/compile_options.h) shared
 * with the veil commands, so a model compiled with any of them deploys.
 *
 * The HTTP API and the batching are described in veil/server.h. The first
 * SIGINT / SIGTERM drains (veil_server_drain: the port is released, accepted
 * requests are answered, until --drain-timeout-ms), a second one exits at
 * once. Exit status: 0 when every request finished or only clients were cut
 * (a body still arriving, an answer still being read, a queued request
 * answered 503) at the drain deadline; 3 when requests still being computed
 * were abandoned there; 1 when the server could not start; 2 usage; 128 +
 * the signal on a second signal. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "veil/compile_options.h"
#include "veil/loader.h"
#include "veil/server.h"

static const char k_usage[] =
    "usage: veil-server --model MODEL [options]\n"
    "serves MODEL on encrypted data: POST /v1/keys, POST /v1/infer, GET /v1/model,\n"
    "GET /v1/keys/<id>, DELETE /v1/keys/<id>, GET /v1/health, GET /metrics\n\n"
    "options:\n"
    "  --model MODEL             the .h5 model (compiled once at start)\n"
    "  --backend auto|cpu|cuda   default auto (cuda when built with CUDA and a GPU is present)\n"
    "  --listen HOST:PORT        default 127.0.0.1:8080 (port 0: any free port; [::1]:PORT for\n"
    "                            IPv6). Put a TLS reverse proxy in front for remote clients.\n"
    "  --keys-dir DIR            where uploaded evaluation keys live (default ./veil-keys,\n"
    "                            created 0700); servers may share one directory\n"
    "  --max-batch N             samples per backend batch (default 16, at most 2^20)\n"
    "  --max-wait-ms MS          how long the batcher waits for more requests (default 10)\n"
    "  --max-body BYTES          largest infer body (default 67108864); key uploads are\n"
    "                            limited to the size of an evaluation key\n"
    "  --max-request-samples N   samples per infer request (default 1024; fewer when that\n"
    "                            many, decoded, exceed --max-body: GET /v1/model says)\n"
    "  --max-inflight N          requests received or computed at once (default 64, at most\n"
    "                            2^20; more: 503, or the slot of a body arriving for 1 s\n"
    "                            or more); answers being read do not count.\n"
    "                            Connections: at most 2N + 16; a new one that fills the\n"
    "                            table closes the one sending its request the longest\n"
    "  --max-queue N             queued infer requests (default 256, at most 2^20; more: 503)\n"
    "  --timeout-ms MS           per infer request, queue and execution (default 300000)\n"
    "  --key-cache N             evaluation keys resident in the backend, LRU (default 4, at\n"
    "                            most 1024); a removed key's (DELETE, --key-ttl-hours,\n"
    "                            another server sharing --keys-dir) is freed once no queued\n"
    "                            request needs it\n"
    "  --max-key-uploads N       key uploads validated at once (default 2; each takes several\n"
    "                            times the key's size in memory)\n"
    "  --key-store-max-mb MB     refuse key uploads (507 key_store_full) that would take the\n"
    "                            keys directory past MB MiB (default 10240; 0: no limit).\n"
    "                            Counted from its files at each upload: servers sharing it\n"
    "                            share the limit; removing old keys frees room at once\n"
    "  --key-ttl-hours H         remove keys not used for H hours (default 0: keep them\n"
    "                            forever). Looked at every 5 minutes (and at start); a key\n"
    "                            removed while a request uses it still serves that request\n"
    "  --read-timeout-ms MS      close a connection idle this long while sending its request\n"
    "                            or reading the answer (default 30000; computing does not count)\n"
    "  --request-timeout-ms MS   close a connection whose request (headers and body) is still\n"
    "                            arriving this long after it began, or whose answer is still\n"
    "                            being read this long after it was ready (default 120000),\n"
    "                            however steadily it trickles\n"
    "  --max-conn-per-ip N       open connections per client address (default 32; 0: no limit,\n"
    "                            e.g. behind a reverse proxy)\n"
    "  --drain-timeout-ms MS     the drain's deadline after SIGTERM (default 25000, under\n"
    "                            Kubernetes' 30 s grace period): then connections still sending\n"
    "                            a request or reading an answer are closed, queued requests\n"
    "                            answered 503 draining, and the server exits; 3 if requests\n"
    "                            were still being computed (abandoned), else 0\n"
    "  --reuse-port              SO_REUSEPORT: a replacement server can listen on the same port\n"
    "                            before this one is stopped (both need it)\n"
    "  --verbose                 log refusals and uploads to stderr\n"
    "SIGTERM or SIGINT: stop accepting (the port is released), answer health 503 draining,\n"
    "finish and answer every accepted request (until --drain-timeout-ms), then exit 0; a\n"
    "second signal exits at once.\n"
    "compile options (must match the clients', `veil keygen`):\n";

typedef struct drain_arg {
    veil_server *s;
    veil_server_drain_report rep;
    atomic_int done;
} drain_arg;

static void *drain_main(void *p) {
    drain_arg *d = p;
    veil_server_drain(d->s, 0, &d->rep);
    atomic_store(&d->done, 1);
    return NULL;
}

int main(int argc, char **argv) {
    veil_server_options o;
    veil_server_options_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int consumed = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_usage, stdout);
            veil_compile_options_help(stdout);
            fputs("backend options:\n", stdout);
            veil_backend_options_help(stdout);
            fputs("\nenvironment:\n", stdout);
            veil_backend_options_env_help(stdout);
            veil_loader_env_help(stdout);
            return 0;
        } else if (veil_compile_options_parse_arg(&o.compile, argc, argv, &i, &consumed)) {
            fprintf(stderr, "veil-server: %s\n", veil_error_message());
            return 2;
        } else if (consumed) {
            continue;
        } else if (veil_backend_options_parse_arg(&o.backend_opts, argc, argv, &i, &consumed)) {
            fprintf(stderr, "veil-server: %s\n", veil_error_message());
            return 2;
        } else if (consumed) {
            continue;
        } else if (!strcmp(a, "--verbose")) {
            o.verbose = 1;
            continue;
        } else if (!strcmp(a, "--reuse-port")) {
            o.reuse_port = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "veil-server: %s: missing value or unknown option\n%s", a, k_usage);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model")) {
            o.model_path = v;
        } else if (!strcmp(a, "--backend")) {
            if (veil_backend_kind_parse(v, &o.backend) != VEIL_OK) {
                fprintf(stderr, "veil-server: --backend %s: expected auto, cpu or cuda\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--listen")) {
            /* a malformed address is a usage error (2), found before the
             * model loads; a port in use is found at start (1) */
            if (veil_server_listen_check(v) != VEIL_OK) {
                fprintf(stderr, "veil-server: %s\n", veil_error_message());
                return 2;
            }
            o.listen = v;
        } else if (!strcmp(a, "--keys-dir")) {
            o.keys_dir = v;
        } else {
            size_t *dst = NULL;
            unsigned *udst = NULL;
            int zero_ok = 0; /* 0 means "none": no wait, no per-address cap, no store limit */
            if (!strcmp(a, "--max-batch"))
                dst = &o.max_batch;
            else if (!strcmp(a, "--max-body"))
                dst = &o.max_body;
            else if (!strcmp(a, "--max-request-samples"))
                dst = &o.max_request_samples;
            else if (!strcmp(a, "--max-queue"))
                dst = &o.max_queue;
            else if (!strcmp(a, "--key-cache"))
                dst = &o.key_cache;
            else if (!strcmp(a, "--max-wait-ms"))
                udst = &o.max_wait_ms, zero_ok = 1;
            else if (!strcmp(a, "--max-inflight"))
                udst = &o.max_inflight;
            else if (!strcmp(a, "--timeout-ms"))
                udst = &o.timeout_ms;
            else if (!strcmp(a, "--max-key-uploads"))
                udst = &o.max_key_uploads;
            else if (!strcmp(a, "--key-store-max-mb"))
                udst = &o.key_store_max_mb, zero_ok = 1;
            else if (!strcmp(a, "--key-ttl-hours"))
                udst = &o.key_ttl_hours, zero_ok = 1;
            else if (!strcmp(a, "--read-timeout-ms"))
                udst = &o.read_timeout_ms;
            else if (!strcmp(a, "--request-timeout-ms"))
                udst = &o.request_timeout_ms;
            else if (!strcmp(a, "--drain-timeout-ms"))
                udst = &o.drain_timeout_ms;
            else if (!strcmp(a, "--max-conn-per-ip"))
                udst = &o.max_conn_per_ip, zero_ok = 1;
            if (!dst && !udst) {
                fprintf(stderr, "veil-server: unknown option %s\n%s", a, k_usage);
                return 2;
            }
            /* the shared integer rule (veil_arg_u64): digits only, in range */
            uint64_t n = 0, max = dst ? SIZE_MAX : 0xffffffffu;
            if (dst == &o.max_batch || dst == &o.max_queue || udst == &o.max_inflight)
                max = VEIL_SERVER_MAX_COUNT;
            else if (dst == &o.key_cache)
                max = VEIL_SERVER_MAX_KEY_CACHE;
            if (veil_arg_u64(a, v, zero_ok ? 0 : 1, max, &n)) {
                fprintf(stderr, "veil-server: %s\n", veil_error_message());
                return 2;
            }
            if (dst)
                *dst = (size_t)n;
            else
                *udst = (unsigned)n;
        }
    }
    if (!o.model_path) {
        fprintf(stderr, "veil-server: --model MODEL is required\n%s", k_usage);
        return 2;
    }
    if (veil_backend_options_from_env(&o.backend_opts) != VEIL_OK) {
        fprintf(stderr, "veil-server: %s\n", veil_error_message());
        return 2;
    }
    /* Block the stop signals in every thread (the server's threads inherit
     * the mask), then wait for one here. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    veil_server *s;
    veil_status st = veil_server_start(&o, &s);
    if (st) {
        fprintf(stderr, "veil-server: %s\n", veil_error_message());
        return 1;
    }
    const veil_program *p = veil_server_program(s);
    fprintf(stderr,
            "veil-server: model %s, parameters %s, %llu PBS per sample; keys in %s; listening on "
            "%s (port %u)\n",
            o.model_path, p->params->id, (unsigned long long)p->pbs_per_sample, o.keys_dir,
            o.listen, veil_server_port(s));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr,
            "veil-server: signal %d: draining (port released; answering accepted requests; a "
            "second signal exits at once)\n",
            sig);
    pthread_t th;
    drain_arg d = {s, {0}, 0};
    if (pthread_create(&th, NULL, drain_main, &d) != 0) {
        veil_server_stop(s);
        return 1;
    }
    while (!atomic_load(&d.done)) {
        const struct timespec tick = {0, 50 * 1000 * 1000};
        const int again = sigtimedwait(&set, NULL, &tick);
        if (again > 0) {
            fprintf(stderr, "veil-server: signal %d again: exiting now\n", again);
            _exit(128 + again);
        }
    }
    pthread_join(th, NULL);
    const veil_server_drain_report *r = &d.rep;
    if (r->arriving || r->reading || r->refused || r->abandoned)
        fprintf(stderr,
                "veil-server: drain deadline (--drain-timeout-ms %u) passed: closed %u "
                "connection(s) still sending their request and %u still reading their answer, "
                "answered %u queued request(s) 503 draining, abandoned %u still being computed\n",
                o.drain_timeout_ms, r->arriving, r->reading, r->refused, r->abandoned);
    if (r->abandoned) {
        /* stopping would wait for them (a batch is not interruptible) */
        fprintf(stderr, "veil-server: exiting with %u request(s) unfinished (status 3)\n",
                r->abandoned);
        _exit(3);
    }
    veil_server_stop(s);
    fprintf(stderr, "veil-server: drained, stopped\n");
    return 0;
}
