/* http.c — veil-server's HTTP side (libmicrohttpd, one thread per
 * connection): routing, bodies, answers (see veil/server.h). */
#define _POSIX_C_SOURCE 200809L
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server_internal.h"
#include "veil/deploy.h"

typedef struct req {
    uint8_t *body;
    size_t len, cap;
    int too_big;
    int refused;       /* refused at its headers: the body is dropped as it comes, */
    srv_error refusal; /* then this is answered (an answer sent before the body is
                        * in would be reset by the close, and the client would see
                        * a send error instead) */
    int counted;       /* counted in inflight */
    int endpoint;
} req;

/* While the handler waits for the worker or the key validation, the client
 * is idle by design: lift the read timeout, and put it back (which restarts
 * its timer) before the answer is sent. */
static void read_timeout_hold(struct MHD_Connection *c, const veil_server *s, int hold) {
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, hold ? 0u : s->read_timeout_s);
}

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
    if (atomic_load(&s->draining)) MHD_add_response_header(r, "Connection", "close");
    for (size_t i = 0; extra_headers && extra_headers[i]; i += 2)
        MHD_add_response_header(r, extra_headers[i], extra_headers[i + 1]);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    srv_metrics_response(&s->m, status);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, veil_server *s, int status,
                                 srv_sbuf *b) {
    if (b->oom || !b->p) {
        free(b->p);
        static const char k_oom[] = "{\"error\":\"out_of_memory\"}";
        return send_bytes(c, s, 500, "application/json", (void *)k_oom, sizeof k_oom - 1, 0, NULL);
    }
    return send_bytes(c, s, status, "application/json", b->p, b->len, 1, NULL);
}

/* extra_headers: name, value pairs, NULL-terminated (NULL: none). */
static enum MHD_Result send_error_h(struct MHD_Connection *c, veil_server *s, const srv_error *e,
                                    const char *const *extra_headers) {
    char msg[2 * sizeof e->message];
    srv_json_escape(e->message, msg, sizeof msg);
    srv_sbuf b = {0};
    srv_sbuf_printf(&b, "{\"error\":\"%s\",\"status\":%d,\"message\":\"%s\"}\n", e->code, e->status,
                    msg);
    if (s->o.verbose) {
        char logged[sizeof e->message];
        srv_redact_key_ids(e->message, logged, sizeof logged);
        fprintf(stderr, "veil-server: %d %s: %s\n", e->status, e->code, logged);
    }
    if (b.oom || !b.p) return send_json(c, s, e->status, &b);
    return send_bytes(c, s, e->status, "application/json", b.p, b.len, 1, extra_headers);
}

static enum MHD_Result send_error(struct MHD_Connection *c, veil_server *s, const srv_error *e) {
    return send_error_h(c, s, e, NULL);
}

static enum MHD_Result count_content_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value) {
    (void)kind;
    (void)value;
    if (key && !strcasecmp(key, "Content-Length")) (*(unsigned *)cls)++;
    return MHD_YES;
}

/* 1 (e set) when the request's body length is ambiguous: several
 * Content-Length headers, or Transfer-Encoding beside one or other than
 * "chunked" (RFC 9112 6.1, 6.3). libmicrohttpd takes the first length, or
 * chunked over a length, and keeps the connection: a proxy in front that
 * read the other length would send the rest of the body as a request of its
 * own (request smuggling) and take its answer for the next client's. */
static int framing_ambiguous(struct MHD_Connection *c, srv_error *e) {
    unsigned n_cl = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_content_length, &n_cl);
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    if (n_cl > 1)
        srv_fail(e, 400, "ambiguous_length", "%u Content-Length headers: send one", n_cl);
    else if (te && n_cl)
        srv_fail(e, 400, "ambiguous_length",
                 "both Transfer-Encoding and Content-Length: send one of them");
    else if (te && strcasecmp(te, "chunked") != 0)
        srv_fail(e, 400, "ambiguous_length",
                 "Transfer-Encoding: only chunked is understood (or none, with Content-Length)");
    else
        return 0;
    return 1;
}

char *srv_model_json(const veil_server *s) {
    const veil_program *p = s->prog;
    const veil_model *m = s->model;
    srv_sbuf b = {0};
    char esc[512];
    srv_json_escape(m->name ? m->name : "", esc, sizeof esc);
    srv_sbuf_printf(&b, "{\"name\":\"%s\",\"params_id\":\"%s\",\"model_fp\":\"%s\",", esc,
                    p->params->id, s->fp_hex);
    srv_json_escape(p->options_canonical, esc, sizeof esc);
    srv_sbuf_printf(&b, "\"compile_options\":\"%s\",", esc);
    srv_sbuf_printf(&b,
                    "\"lwe_dim\":%u,\"ct_words\":%zu,\"width\":%u,\"pbs_per_sample\":%llu,"
                    "\"sample_in_cts\":%zu,\"sample_out_cts\":%zu,\"max_batch\":%zu,"
                    "\"max_request_samples\":%zu,\"max_body\":%zu,\"eval_key_bytes\":%zu,"
                    "\"backend\":\"%s\",\"plans\":%zu,",
                    s->pi.big_dim, veil_program_ct_words(p), p->width,
                    (unsigned long long)p->pbs_per_sample, s->pi.in_cts, s->pi.out_cts,
                    s->o.max_batch, s->pi.max_samples, s->o.max_body, s->max_key_body,
                    veil_backend_name(s->bes[0]), s->n_bes);
    srv_sbuf_printf(&b, "\"inputs\":[");
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const veil_model_input *in = &m->inputs[i];
        const veil_node *n = &p->nodes[p->input_nodes[i]];
        srv_json_escape(in->name, esc, sizeof esc);
        srv_sbuf_printf(&b, "%s{\"name\":\"%s\",\"shape\":[", i ? "," : "", esc);
        for (uint32_t d = 0; d < in->shape.rank; d++)
            srv_sbuf_printf(&b, "%s%u", d ? "," : "", in->shape.dim[d]);
        srv_sbuf_printf(&b,
                        "],\"scale\":%.17g,\"zero_point\":%lld,\"n_bits\":%u,\"signed\":%s,"
                        "\"range\":[%lld,%lld]}",
                        in->scale, (long long)in->zero_point, in->n_bits,
                        in->is_signed ? "true" : "false", (long long)n->lo, (long long)n->hi);
    }
    srv_sbuf_printf(&b, "],\"outputs\":[");
    for (uint32_t o = 0; o < m->n_outputs; o++) {
        const veil_model_output *out = &m->outputs[o];
        srv_json_escape(out->name, esc, sizeof esc);
        srv_sbuf_printf(&b, "%s{\"name\":\"%s\",\"shape\":[", o ? "," : "", esc);
        for (uint32_t d = 0; d < out->shape.rank; d++)
            srv_sbuf_printf(&b, "%s%u", d ? "," : "", out->shape.dim[d]);
        srv_sbuf_printf(&b, "],\"scale\":[");
        for (uint32_t k = 0; k < out->n_scale; k++)
            srv_sbuf_printf(&b, "%s%.17g", k ? "," : "", out->scale[k]);
        srv_sbuf_printf(&b, "],\"zero_point\":[");
        for (uint32_t k = 0; k < out->n_scale; k++)
            srv_sbuf_printf(&b, "%s%.17g", k ? "," : "", out->zero_point[k]);
        srv_sbuf_printf(&b, "]}");
    }
    srv_sbuf_printf(&b, "]}\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c, veil_server *s) {
    size_t len = 0;
    char *text = srv_metrics_text(s, &len);
    if (!text) {
        srv_error e;
        srv_fail(&e, 500, "out_of_memory", "metrics");
        return send_error(c, s, &e);
    }
    return send_bytes(c, s, 200, "text/plain; version=0.0.4", text, len, 1, NULL);
}

/* Frees the body. A secret key sent by mistake (to any route, whatever its
 * answer: refused, unknown key id, too big, too late) is wiped first rather
 * than left in freed memory; what libmicrohttpd's own read buffer held is
 * beyond reach here. */
static void body_release(req *r) {
    if (veil_serial_is_secret(r->body, r->len)) sodium_memzero(r->body, r->len);
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
}

/* 1 (e set) when len more bytes would take the keys directory past
 * --key-store-max-mb (the store's rule, veil_keystore_room), or it cannot be
 * listed. */
static int key_store_full(veil_server *s, uint64_t len, srv_error *e) {
    const veil_status st = veil_keystore_room(s->ks, len);
    if (st == VEIL_OK) return 0;
    if (st == VEIL_ERR_RANGE)
        srv_fail(e, 507, "key_store_full", "%s (--key-store-max-mb)", veil_error_message());
    else
        srv_fail(e, 500, "store_failed", "%s", veil_error_message());
    return 1;
}

static enum MHD_Result handle_keys_post(struct MHD_Connection *c, veil_server *s, req *r) {
    srv_error e;
    veil_eval_key *ek = NULL;
    /* Validating a key expands it (every mask regenerated: several times the
     * upload; no Fourier transform, VEIL_KEY_STANDARD): at most
     * max_key_uploads at once, the others wait their turn. */
    pthread_mutex_lock(&s->mu);
    while (s->validating >= s->o.max_key_uploads && !s->stopping)
        pthread_cond_wait(&s->key_cv, &s->mu);
    s->validating++;
    pthread_mutex_unlock(&s->mu);
    int bad = srv_parse_key_upload(&s->pi, r->body, r->len, &ek, &e);
    if (bad) body_release(r); /* a secret key refused: wiped at once */
    pthread_mutex_lock(&s->mu);
    s->validating--;
    pthread_cond_signal(&s->key_cv);
    pthread_mutex_unlock(&s->mu);
    if (bad) return send_error(c, s, &e);
    char fp_hex[2 * VEIL_KEY_FP_BYTES + 1];
    veil_hex(ek->key_fp, VEIL_KEY_FP_BYTES, fp_hex);
    veil_eval_key_free(ek);
    char id[VEIL_KEY_ID_CHARS + 1];
    /* the room checked again with the bytes in hand (veil_keystore_put) */
    const veil_status put = veil_keystore_put(s->ks, r->body, r->len, id);
    if (put == VEIL_ERR_RANGE) {
        srv_fail(&e, 507, "key_store_full", "%s (--key-store-max-mb)", veil_error_message());
        return send_error(c, s, &e);
    }
    if (put != VEIL_OK) {
        /* The message names the key id and the errno, never the directory. */
        if (s->o.verbose) {
            char logged[512];
            srv_redact_key_ids(veil_error_message(), logged, sizeof logged);
            fprintf(stderr, "veil-server: keys dir %s: %s\n", veil_keystore_dir(s->ks), logged);
        }
        srv_fail(&e, 500, "store_failed", "%s", veil_error_message());
        return send_error(c, s, &e);
    }
    srv_metrics_key_uploaded(&s->m);
    srv_metrics_store_changed(s);
    if (s->o.verbose)
        fprintf(stderr, "veil-server: stored evaluation key %.8s... (%zu bytes)\n", id, r->len);
    srv_sbuf b = {0};
    srv_sbuf_printf(&b,
                    "{\"key_id\":\"%s\",\"params_id\":\"%s\",\"key_fp\":\"%s\",\"bytes\":%zu}\n",
                    id, s->prog->params->id, fp_hex, r->len);
    return send_json(c, s, 201, &b);
}

/* Verifies the whole file (checksum), so a corrupted key answers 404 and the
 * client uploads it again, instead of 200 and a failure at infer time. */
static enum MHD_Result handle_key_get(struct MHD_Connection *c, veil_server *s, const char *id) {
    veil_keystore_info info;
    srv_error e;
    veil_status st = veil_keystore_verify(s->ks, id, &info);
    if (st != VEIL_OK) {
        if (st == VEIL_ERR_ARG)
            srv_fail(&e, 404, "unknown_key", "%s", veil_error_message());
        else
            srv_fail(&e, st == VEIL_ERR_NOMEM ? 503 : 500, "key_read_failed", "%s",
                     veil_error_message());
        return send_error(c, s, &e);
    }
    char fp_hex[2 * VEIL_KEY_FP_BYTES + 1];
    veil_hex(info.key_fp, sizeof info.key_fp, fp_hex);
    srv_sbuf b = {0};
    srv_sbuf_printf(&b, "{\"key_id\":\"%s\",\"params_id\":\"%s\",\"key_fp\":\"%s\"}\n", id,
                    info.params_id, fp_hex);
    return send_json(c, s, 200, &b);
}

/* The id is the capability: whoever holds it may remove the key. A request
 * already using it finishes (it holds the file open: srv_job.key_fd, and the
 * resident plan serves it); every later one is told unknown_key, here and on
 * every server sharing the directory. The resident plan is freed once no
 * queued request waits for it (srv_batcher_keys_removed). */
static enum MHD_Result handle_key_delete(struct MHD_Connection *c, veil_server *s, const char *id) {
    srv_error e;
    const veil_status st = veil_keystore_delete(s->ks, id);
    if (st != VEIL_OK) {
        if (st == VEIL_ERR_ARG)
            srv_fail(&e, 404, "unknown_key", "%s", veil_error_message());
        else
            srv_fail(&e, 500, "store_failed", "%s", veil_error_message());
        return send_error(c, s, &e);
    }
    srv_metrics_store_changed(s);
    srv_batcher_keys_removed(s);
    if (s->o.verbose) fprintf(stderr, "veil-server: deleted evaluation key %.8s...\n", id);
    return send_bytes(c, s, 204, "application/json", NULL, 0, 0, NULL);
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
    veil_keystore_info info;
    int key_fd = -1; /* the key stays readable for this request if removed meanwhile */
    veil_status kst = veil_keystore_header(s->ks, id, &info, &key_fd);
    if (kst != VEIL_OK) {
        if (kst == VEIL_ERR_ARG)
            srv_fail(&e, 404, "unknown_key", "%s (upload it with POST /v1/keys)",
                     veil_error_message());
        else
            srv_fail(&e, 500, "key_read_failed", "%s", veil_error_message());
        return send_error(c, s, &e);
    }
    const uint8_t *key_fp = info.key_fp;
    veil_ct_batch *in = NULL;
    size_t samples = 0;
    if (srv_parse_infer_batch(&s->pi, r->body, r->len, key_fp, &in, &samples, &e)) {
        close(key_fd);
        body_release(r); /* a secret key refused: wiped at once */
        return send_error(c, s, &e);
    }
    /* The body is no longer needed: free it before waiting. */
    body_release(r);
    srv_job *j = calloc(1, sizeof *j);
    veil_ct_batch *out = NULL;
    if (!j || veil_ct_batch_new(s->prog->params, s->pi.big_dim, samples * s->pi.out_cts, &out)) {
        free(j);
        close(key_fd);
        veil_ct_batch_free(in);
        srv_fail(&e, 503, "out_of_memory", "no memory for a batch of %zu samples", samples);
        return send_error(c, s, &e);
    }
    memcpy(out->key_fp, in->key_fp, VEIL_KEY_FP_BYTES);
    memcpy(out->model_fp, s->pi.fp_out, VEIL_PROGRAM_FP_BYTES);
    snprintf(j->key_id, sizeof j->key_id, "%s", id);
    j->key_fd = key_fd;
    j->in = in;
    j->out = out;
    j->samples = samples;
    read_timeout_hold(c, s, 1);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const int refused = srv_batcher_run(s, j, ci ? ci->connect_fd : -1, &e);
    read_timeout_hold(c, s, 0);
    if (refused == SRV_CLIENT_GONE) {
        if (s->o.verbose) fprintf(stderr, "veil-server: infer dropped: %s\n", e.message);
        return MHD_NO; /* nobody to answer: MHD closes the connection */
    }
    if (refused) return send_error(c, s, &e);
    if (j->err.status) {
        e = j->err;
        srv_job_free(j);
        return send_error(c, s, &e);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (veil_ct_batch_serialize(j->out, &buf, &len) != VEIL_OK) {
        srv_fail(&e, 500, "serialize_failed", "result: %s", veil_error_message());
        srv_job_free(j);
        return send_error(c, s, &e);
    }
    char bs[32], qms[32], ems[32];
    snprintf(bs, sizeof bs, "%zu", j->batch_samples);
    snprintf(qms, sizeof qms, "%.3f", 1e3 * (j->t_start - j->t_enqueue));
    snprintf(ems, sizeof ems, "%.3f", 1e3 * (j->t_end - j->t_start));
    const char *hdrs[] = {
        "X-Veil-Batch-Samples", bs, "X-Veil-Queue-Ms", qms, "X-Veil-Exec-Ms", ems, NULL};
    srv_metrics_latency(&s->m, srv_now() - j->t_enqueue);
    srv_job_free(j);
    /* buf came from the serializer (plain malloc of a public batch). */
    enum MHD_Result ret =
        send_bytes(c, s, 200, "application/octet-stream", buf, len, 1, (const char *const *)hdrs);
    return ret;
}

/* The final call of a request whose body is all in: its answer. */
static enum MHD_Result answer(struct MHD_Connection *c, veil_server *s, req *r, srv_route route,
                              const char *key_id, srv_error *e) {
    if (r->refused) return send_error(c, s, &r->refusal);
    if (r->too_big) {
        const size_t limit = route == SRV_KEYS_POST ? s->max_key_body : s->o.max_body;
        if (r->too_big == 2)
            srv_fail(e, 503, "out_of_memory", "no memory for the body");
        else
            srv_fail(e, 413, "body_too_large", "body over %zu bytes", limit);
        return send_error(c, s, e);
    }
    switch (route) {
    case SRV_HEALTH: {
        srv_sbuf b = {0};
        const int healthy = veil_backends_healthy(s->bes, s->n_bes),
                  draining = atomic_load(&s->draining);
        srv_sbuf_printf(&b, "{\"status\":\"%s\",\"backend\":\"%s\"}\n",
                        !healthy   ? "unhealthy"
                        : draining ? "draining"
                                   : "ok",
                        veil_backend_name(s->bes[0]));
        return send_json(c, s, healthy && !draining ? 200 : 503, &b);
    }
    case SRV_MODEL:
        return send_bytes(c, s, 200, "application/json", s->model_json, strlen(s->model_json), 0,
                          NULL);
    case SRV_METRICS:
        return handle_metrics(c, s);
    case SRV_KEYS_POST: {
        read_timeout_hold(c, s, 1); /* waits its turn, validates (seconds) */
        const enum MHD_Result ret = handle_keys_post(c, s, r);
        read_timeout_hold(c, s, 0);
        return ret;
    }
    case SRV_KEY_GET:
        return handle_key_get(c, s, key_id);
    case SRV_KEY_DELETE:
        return handle_key_delete(c, s, key_id);
    case SRV_INFER:
        return handle_infer(c, s, r);
    case SRV_NOT_FOUND:
        break;
    }
    return send_error(c, s, e);
}

enum MHD_Result srv_http_on_request(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls) {
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
        srv_metrics_request(&s->m, route);
        /* Health, metrics and refusals answer at once: never limited, so a
         * full server still says how it is. */
        const int limited = route != SRV_HEALTH && route != SRV_METRICS && route != SRV_NOT_FOUND;
        pthread_mutex_lock(&s->mu);
        s->active++;
        int busy = limited && s->inflight >= s->o.max_inflight;
        if (limited && !busy) {
            s->inflight++;
            r->counted = 1;
        }
        pthread_mutex_unlock(&s->mu);
        /* Full: a body trickling in for a while loses its slot to this
         * request (slow clients must not hold every slot until the request
         * deadline); it is freed when that connection closes, a moment on. */
        if (busy && !atomic_load(&s->draining) && srv_conn_evict_slow_body(s, c)) {
            pthread_mutex_lock(&s->mu);
            const double until = srv_now() + SRV_SLOT_WAIT_S;
            double now;
            while (s->inflight >= s->o.max_inflight && (now = srv_now()) < until)
                srv_cond_wait_s(&s->slot_cv, &s->mu, until - now);
            busy = s->inflight >= s->o.max_inflight;
            if (!busy) {
                s->inflight++;
                r->counted = 1;
            }
            pthread_mutex_unlock(&s->mu);
        }
        srv_conn_began(s, c, r->counted);
        if (framing_ambiguous(c, &e)) {
            /* the body's end is unknown: nothing after it can be read */
            static const char *const k_close[] = {"Connection", "close", NULL};
            return send_error_h(c, s, &e, k_close);
        }
        if (route == SRV_NOT_FOUND) return send_error(c, s, &e);
        if (limited && atomic_load(&s->draining)) {
            srv_fail(&e, 503, "draining",
                     "the server is shutting down; retry (another replica or its replacement)");
            return send_error(c, s, &e);
        }
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
                /* no room: the key's megabytes are neither kept nor validated */
                if (route == SRV_KEYS_POST && key_store_full(s, n, &r->refusal)) r->refused = 1;
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* the reaper closes it within a moment; refuse the bytes at once */
        if (srv_conn_late(s, c)) return MHD_NO;
        const size_t limit = route == SRV_KEYS_POST ? s->max_key_body : s->o.max_body;
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* only key uploads and infer read a body: any other route's is
         * dropped as it comes, never held (health and metrics are not
         * limited, so a body kept for them would be memory for the asking) */
        if (r->too_big || r->refused || (route != SRV_KEYS_POST && route != SRV_INFER))
            return MHD_YES;
        if (r->len + n > limit) {
            r->too_big = 1;
            body_release(r);
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 65536;
            while (cap < r->len + n)
                cap *= 2;
            if (cap > limit) cap = limit;
            /* a secret key's: not realloc, whose freed block would keep its
             * first bytes (a key upload's hundreds of MiB keep realloc) */
            const int secret = veil_serial_is_secret(r->body, r->len);
            uint8_t *q = secret ? malloc(cap) : realloc(r->body, cap);
            if (!q) {
                r->too_big = 2;
                body_release(r);
                return MHD_YES;
            }
            if (secret) {
                memcpy(q, r->body, r->len);
                const size_t len = r->len;
                body_release(r);
                r->len = len;
            }
            r->body = q;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    (void)version;
    srv_conn_arrived(s, c);
    const enum MHD_Result ret = answer(c, s, r, route, key_id, &e);
    /* The answer is queued: its request no longer counts against
     * --max-inflight (a client reading it slowly must not hold a slot), and
     * the request deadline bounds its reading. */
    pthread_mutex_lock(&s->mu);
    if (r->counted) {
        s->inflight--;
        pthread_cond_broadcast(&s->slot_cv);
    }
    r->counted = 0;
    pthread_mutex_unlock(&s->mu);
    srv_conn_sending(s, c);
    return ret;
}

void srv_http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe) {
    veil_server *s = cls;
    req *r = *con_cls;
    (void)toe;
    srv_conn_answered(s, c);
    if (!r) return;
    pthread_mutex_lock(&s->mu);
    if (r->counted) {
        s->inflight--;
        pthread_cond_broadcast(&s->slot_cv);
    }
    if (--s->active == 0) pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
    body_release(r);
    free(r);
    *con_cls = NULL;
}
