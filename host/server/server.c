/* server.c — veil-server's life cycle: start (model, program, backend, key
 * store, batcher, listener) and stop. The parts: server_internal.h. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_internal.h"

void veil_server_options_default(veil_server_options *o) {
    memset(o, 0, sizeof *o);
    veil_compile_options_default(&o->compile);
    o->backend = VEIL_BACKEND_AUTO;
    veil_backend_options_default(&o->backend_opts);
    o->listen = "127.0.0.1:8080";
    o->keys_dir = "veil-keys";
    o->max_batch = 16;
    o->max_wait_ms = 10;
    o->max_body = SRV_DEFAULT_MAX_BODY;
    o->max_request_samples = 1024;
    o->max_inflight = 64;
    o->max_queue = 256;
    o->timeout_ms = 300000;
    o->key_cache = 4;
    o->max_key_uploads = 2;
    o->key_store_max_mb = VEIL_KEYSTORE_DEFAULT_MAX_MB;
    o->read_timeout_ms = 30000;
    o->max_conn_per_ip = 32;
    o->request_timeout_ms = 120000;
    o->drain_timeout_ms = 25000;
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

veil_status veil_server_listen_check(const char *listen) {
    struct sockaddr_storage ss;
    int family;
    if (!listen) return veil_error(VEIL_ERR_ARG, "--listen: NULL address");
    return parse_listen(listen, &ss, &family);
}

/* The listening socket is ours (MHD borrows it): bind errors are named with
 * the real port, and a draining server can release the port early. */
static veil_status listen_socket(const char *spec, const struct sockaddr_storage *addr, int family,
                                 int reuse_port, int *out) {
    const socklen_t alen =
        family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    const unsigned port = ntohs(family == AF_INET6 ? ((const struct sockaddr_in6 *)addr)->sin6_port
                                                   : ((const struct sockaddr_in *)addr)->sin_port);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return veil_error(VEIL_ERR_IO, "--listen %s: socket: %s", spec, strerror(errno));
    const int one = 1;
    veil_status st = VEIL_OK;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0))
        st = veil_error(VEIL_ERR_IO, "--listen %s: setsockopt: %s", spec, strerror(errno));
    else if (bind(fd, (const struct sockaddr *)addr, alen) != 0)
        st = veil_error(VEIL_ERR_IO, "--listen %s: cannot bind port %u: %s%s", spec, port,
                        strerror(errno),
                        errno == EADDRINUSE ? " (another server there? see --reuse-port)" : "");
    else if (listen(fd, SOMAXCONN) != 0)
        st = veil_error(VEIL_ERR_IO, "--listen %s: listen on port %u: %s", spec, port,
                        strerror(errno));
    if (st) {
        close(fd);
        return st;
    }
    *out = fd;
    return VEIL_OK;
}

veil_status veil_server_start(const veil_server_options *o, veil_server **out) {
    if (!o || !out || !o->model_path || !o->keys_dir || !o->listen)
        return veil_error(VEIL_ERR_ARG, "veil_server_start: model, keys dir and listen needed");
    if (o->max_batch == 0 || o->max_queue == 0 || o->max_inflight == 0 || o->key_cache == 0 ||
        o->max_key_uploads == 0 || o->max_request_samples == 0 || o->request_timeout_ms == 0 ||
        o->drain_timeout_ms == 0)
        return veil_error(VEIL_ERR_ARG,
                          "veil_server_start: max batch, queue, inflight, key cache, request "
                          "samples, request timeout and drain timeout must be > 0");
    if (o->max_batch > VEIL_SERVER_MAX_COUNT || o->max_queue > VEIL_SERVER_MAX_COUNT ||
        o->max_inflight > VEIL_SERVER_MAX_COUNT || o->key_cache > VEIL_SERVER_MAX_KEY_CACHE)
        return veil_error(VEIL_ERR_ARG,
                          "veil_server_start: max batch %zu, max queue %zu, max inflight %u (each "
                          "at most %u) and key cache %zu (at most %u)",
                          o->max_batch, o->max_queue, o->max_inflight, VEIL_SERVER_MAX_COUNT,
                          o->key_cache, VEIL_SERVER_MAX_KEY_CACHE);
    if (sodium_init() < 0) return veil_error(VEIL_ERR_INTERNAL, "libsodium failed to initialise");
    veil_server *s = calloc(1, sizeof *s);
    if (!s) return veil_error(VEIL_ERR_NOMEM, "out of memory");
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    srv_metrics_init(&s->m);
    srv_cond_init(&s->queue_cv);
    srv_cond_init(&s->done_cv);
    srv_cond_init(&s->key_cv);
    srv_cond_init(&s->idle_cv);
    srv_cond_init(&s->slot_cv);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_mutex_init(&s->usage_mu, NULL);
    srv_cond_init(&s->reaper_cv);
    s->listen_fd = -1;
    veil_status st;
    struct sockaddr_storage addr;
    int family = AF_INET;
    if ((st = parse_listen(o->listen, &addr, &family))) goto fail;
    if ((st = veil_keystore_open(o->keys_dir, &s->ks))) goto fail;
    s->o.keys_dir = veil_keystore_dir(s->ks);
    s->o.listen = NULL;
    s->o.model_path = NULL;
    if ((st = veil_model_load(o->model_path, &s->model))) goto fail; /* names the path */
    veil_compile_options co = o->compile;
    co.simulate_only = 0;
    if ((st = veil_program_compile(s->model, &co, &s->prog))) goto fail;
    if (!s->prog->params) {
        st = veil_error(VEIL_ERR_PARAMS, "%s: no parameter set fits this program", o->model_path);
        goto fail;
    }
    s->o.compile.params_id = NULL; /* borrowed; not needed any more */
    srv_program_info_init(&s->pi, s->prog, o->max_request_samples, o->max_body);
    veil_hex(s->pi.fp, VEIL_PROGRAM_FP_BYTES, s->fp_hex);
    s->max_key_body = veil_program_eval_key_bytes(s->prog);
    if ((st = veil_keystore_set_max_mb(s->ks, o->key_store_max_mb, s->max_key_body))) {
        veil_error_prefix("--key-store-max-mb ");
        goto fail;
    }
    if ((st = veil_backends_new(o->backend, &o->backend_opts, s->bes, &s->n_bes))) goto fail;
    if (!(s->model_json = srv_model_json(s))) {
        st = veil_error(VEIL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = srv_batcher_start(s))) goto fail;
    if ((st = srv_reaper_start(s))) goto fail;
    if ((st = listen_socket(o->listen, &addr, family, o->reuse_port, &s->listen_fd))) goto fail;
    s->read_timeout_s = o->read_timeout_ms ? (o->read_timeout_ms + 999) / 1000 : 0;
    s->conn_limit = o->max_inflight * 2 + 16;
    /* ITC: MHD_quiesce_daemon (drain) needs it in this threading mode. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, srv_http_on_request, s,
                              MHD_OPTION_LISTEN_SOCKET, s->listen_fd, MHD_OPTION_NOTIFY_COMPLETED,
                              srv_http_on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                              srv_conn_notify, s, MHD_OPTION_CONNECTION_LIMIT, s->conn_limit,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_conn_per_ip,
                              MHD_OPTION_CONNECTION_TIMEOUT, s->read_timeout_s, MHD_OPTION_END);
    if (!s->mhd) {
        st = veil_error(VEIL_ERR_IO, "--listen %s: libmicrohttpd could not start", o->listen);
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(s->listen_fd, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
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

#define DRAIN_SETTLE_S 0.1
/* After the drain deadline's cut, how long the closed connections' handlers
 * have to notice and finish (they only see end of file and return). */
#define DRAIN_CUT_GRACE_S 1.0

unsigned veil_server_drain(veil_server *s, unsigned timeout_ms, veil_server_drain_report *report) {
    veil_server_drain_report rep = {0};
    if (report) *report = rep;
    if (!s) return 0;
    if (atomic_exchange(&s->draining, 1) == 0 && s->mhd) {
        /* Stop accepting, then release the port: MHD may still hold the fd
         * number until MHD_stop_daemon, so point it at /dev/null instead of
         * closing it (the socket closes, the number stays valid). */
        s->quiesced = MHD_quiesce_daemon(s->mhd) != MHD_INVALID_SOCKET;
        int nul = s->quiesced ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
        if (nul >= 0) {
            dup2(nul, s->listen_fd);
            close(nul);
        } else {
            shutdown(s->listen_fd, SHUT_RDWR);
        }
    }
    const double deadline = srv_now() + 1e-3 * (timeout_ms ? timeout_ms : s->o.drain_timeout_ms);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->queue_cv); /* the worker stops waiting for fuller batches */
    /* Done when nothing has been active for DRAIN_SETTLE_S: a request whose
     * bytes are in but whose handler has not run yet is not counted, so a
     * moment of quiet lets it start and be answered (503 draining, or its
     * result) rather than reset by the stop. */
    double quiet_since = -1;
    for (;;) {
        const double now = srv_now();
        if (now >= deadline) break;
        double wait = deadline - now > 0.2 ? 0.2 : deadline - now;
        if (s->active > 0) {
            quiet_since = -1;
        } else {
            if (quiet_since < 0) quiet_since = now;
            if (now - quiet_since >= DRAIN_SETTLE_S) break;
            if (wait > DRAIN_SETTLE_S - (now - quiet_since))
                wait = DRAIN_SETTLE_S - (now - quiet_since);
        }
        srv_cond_wait_s(&s->idle_cv, &s->mu, wait);
    }
    if (s->active > 0) {
        /* The deadline passed (a client trickling its body would otherwise
         * hold the drain for request_timeout_ms, past an orchestrator's grace
         * period and into a SIGKILL): cut what only waits on clients, answer
         * what waits in the queue, keep what is being computed. */
        pthread_mutex_unlock(&s->mu);
        rep.refused = srv_batcher_refuse_queued(s);
        srv_conn_drain_cut(s, &rep.arriving, &rep.reading);
        /* the cut connections' handlers see end of file, the refused
         * requests' 503 is sent: wait for those, not for the computing */
        const double until = srv_now() + DRAIN_CUT_GRACE_S;
        pthread_mutex_lock(&s->mu);
        double now;
        while (s->active > srv_batcher_computing(s) && (now = srv_now()) < until)
            srv_cond_wait_s(&s->idle_cv, &s->mu, until - now > 0.02 ? 0.02 : until - now);
    }
    rep.abandoned = s->active;
    pthread_mutex_unlock(&s->mu);
    if (report) *report = rep;
    return rep.abandoned;
}

void veil_server_stop(veil_server *s) {
    if (!s) return;
    srv_batcher_stop(s);                 /* fails queued requests: their handlers answer 503 */
    if (s->mhd) MHD_stop_daemon(s->mhd); /* closes every connection: conns is empty */
    srv_reaper_stop(s);
    /* MHD closes the socket it was given unless quiesced (drain). */
    if (s->listen_fd >= 0 && (!s->mhd || s->quiesced)) close(s->listen_fd);
    free(s->model_json);
    veil_backends_free(s->bes, s->n_bes);
    veil_program_free(s->prog);
    veil_model_free(s->model);
    veil_keystore_free(s->ks);
    srv_metrics_destroy(&s->m);
    pthread_cond_destroy(&s->queue_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_cond_destroy(&s->key_cv);
    pthread_cond_destroy(&s->idle_cv);
    pthread_cond_destroy(&s->slot_cv);
    pthread_cond_destroy(&s->reaper_cv);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_mutex_destroy(&s->usage_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
