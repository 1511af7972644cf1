/* server.c — veil-server's life cycle: start (model, program, backend, key
 * store, batcher, listener) and stop. The parts: server_internal.h. */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server_internal.h"

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
    srv_metrics_init(&s->m);
    pthread_cond_init(&s->queue_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_cond_init(&s->key_cv, NULL);
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
    srv_program_info_init(&s->pi, s->prog, o->max_request_samples);
    veil_hex(s->pi.fp, VEIL_PROGRAM_FP_BYTES, s->fp_hex);
    s->max_key_body = veil_eval_key_serialized_bytes(s->prog->params);
    if ((st = veil_backend_new(o->backend, &s->be))) goto fail;
    if (!(s->model_json = srv_model_json(s))) {
        st = veil_error(VEIL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = srv_batcher_start(s))) goto fail;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, srv_http_on_request, s, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
                              srv_http_on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)(o->max_inflight * 2 + 16), MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)(o->timeout_ms / 1000 + 60), MHD_OPTION_END);
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

void veil_server_stop(veil_server *s) {
    if (!s) return;
    srv_batcher_stop(s); /* fails queued requests: their handlers answer 503 */
    if (s->mhd) MHD_stop_daemon(s->mhd);
    free(s->model_json);
    veil_backend_free(s->be);
    veil_program_free(s->prog);
    veil_model_free(s->model);
    veil_keystore_free(s->ks);
    srv_metrics_destroy(&s->m);
    pthread_cond_destroy(&s->queue_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_cond_destroy(&s->key_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
