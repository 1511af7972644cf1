/* conns.c — the request deadline: every open connection is tracked from
 * libmicrohttpd's connection notifications, and a reaper thread closes one
 * whose request (headers and body) has been arriving for longer than
 * request_timeout_ms. MHD's own timeout (read_timeout_ms) restarts on every
 * byte, so without this a client trickling one byte every few seconds would
 * hold a connection slot for ever. The same deadline bounds the reading of
 * an answer, from when it is queued (a client reading a byte at a time would
 * otherwise hold its connection as long); while its request is computed a
 * connection is neither and the deadline does not apply (timeout_ms does).
 *
 * The connection table is full (conn_limit, MHD's limit) when slow clients
 * hold every slot: MHD then leaves new connections in the listen backlog,
 * unanswered, until the deadline frees one (a slowloris from a few addresses
 * shut every other client out for request_timeout_ms). So a connection that
 * fills the table closes the one that has been sending its request (or idling
 * between requests) the longest: a slow client loses its slot to a new one,
 * never a request being computed or an answer being read. Likewise, when
 * the --max-inflight slots are full, a new request takes the slot of the one
 * whose body has been arriving the longest (at least SRV_EVICT_MIN_AGE_S):
 * slow bodies from a few connections held every slot until the deadline. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "server_internal.h"

struct srv_conn {
    int fd;
    int arriving;   /* the current request is still being received */
    int sending;    /* its answer is queued, not read whole yet */
    int shut;       /* the reaper or an eviction shut it down */
    int admitted;   /* its request holds an in-flight slot while arriving */
    int requested;  /* arriving: a request has begun (else idle between requests) */
    double t_start; /* when the current phase began (connect, last answer, answer queued) */
    srv_conn *prev, *next;
};

/* conn_mu held: the reaper or an eviction closes k; MHD's connection thread
 * sees end of file and closes it. */
static void conn_shut(srv_conn *k) {
    shutdown(k->fd, SHUT_RDWR);
    k->shut = 1;
}

/* conn_mu held: closes the connection, other than self, that has been
 * arriving the longest (only one whose request holds an in-flight slot, and
 * since before not_after, when admitted_only); 1 when there was one. */
static int evict_oldest_arriving(veil_server *s, const srv_conn *self, int admitted_only,
                                 double not_after) {
    srv_conn *oldest = NULL;
    for (srv_conn *k = s->conns; k; k = k->next)
        if (k != self && k->arriving && !k->shut && k->fd >= 0 &&
            (!admitted_only || (k->admitted && k->t_start <= not_after)) &&
            (!oldest || k->t_start < oldest->t_start))
            oldest = k;
    if (!oldest) return 0;
    conn_shut(oldest);
    return 1;
}

static srv_conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? (srv_conn *)ci->socket_context : NULL;
}

void srv_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe) {
    veil_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        srv_conn *k = calloc(1, sizeof *k);
        if (!k) return; /* untracked: MHD's read timeout still applies */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? ci->connect_fd : -1;
        k->arriving = 1;
        k->t_start = srv_now();
        pthread_mutex_lock(&s->conn_mu);
        k->next = s->conns;
        if (s->conns) s->conns->prev = k;
        s->conns = k;
        const int evicted = ++s->n_conns >= s->conn_limit && evict_oldest_arriving(s, k, 0, 0);
        pthread_mutex_unlock(&s->conn_mu);
        if (evicted) srv_metrics_conns_evicted(&s->m);
        *socket_context = k;
        return;
    }
    /* CLOSED: MHD closes the socket after this returns, so once the entry is
     * unlinked (under conn_mu) the reaper can no longer touch its fd. */
    srv_conn *k = *socket_context;
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    if (k->prev)
        k->prev->next = k->next;
    else
        s->conns = k->next;
    if (k->next) k->next->prev = k->prev;
    s->n_conns--;
    pthread_mutex_unlock(&s->conn_mu);
    free(k);
    *socket_context = NULL;
}

void srv_conn_began(veil_server *s, struct MHD_Connection *c, int admitted) {
    srv_conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    k->requested = 1;
    k->admitted = admitted;
    pthread_mutex_unlock(&s->conn_mu);
}

int srv_conn_evict_slow_body(veil_server *s, struct MHD_Connection *c) {
    const srv_conn *self = conn_of(c);
    pthread_mutex_lock(&s->conn_mu);
    const int evicted = evict_oldest_arriving(s, self, 1, srv_now() - SRV_EVICT_MIN_AGE_S);
    pthread_mutex_unlock(&s->conn_mu);
    if (evicted) srv_metrics_conns_evicted(&s->m);
    return evicted;
}

void srv_conn_arrived(veil_server *s, struct MHD_Connection *c) {
    srv_conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    k->arriving = 0;
    k->admitted = 0;
    k->requested = 0;
    pthread_mutex_unlock(&s->conn_mu);
}

void srv_conn_answered(veil_server *s, struct MHD_Connection *c) {
    srv_conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    k->arriving = 1; /* a kept-alive connection: the next request's clock starts */
    k->sending = 0;
    k->admitted = 0;
    k->requested = 0;
    k->t_start = srv_now();
    pthread_mutex_unlock(&s->conn_mu);
}

void srv_conn_sending(veil_server *s, struct MHD_Connection *c) {
    srv_conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    k->arriving = 0;
    k->sending = 1;
    k->t_start = srv_now();
    pthread_mutex_unlock(&s->conn_mu);
}

int srv_conn_late(veil_server *s, struct MHD_Connection *c) {
    srv_conn *k = conn_of(c);
    if (!k) return 0;
    pthread_mutex_lock(&s->conn_mu);
    const int late = k->arriving && srv_now() - k->t_start > 1e-3 * s->o.request_timeout_ms;
    const int first = late && !k->shut;
    if (late) k->shut = 1; /* the handler drops it: the reaper leaves it alone */
    pthread_mutex_unlock(&s->conn_mu);
    if (first) srv_metrics_request_timeouts(&s->m, 1);
    return late;
}

void srv_conn_drain_cut(veil_server *s, unsigned *arriving, unsigned *reading) {
    *arriving = *reading = 0;
    pthread_mutex_lock(&s->conn_mu);
    for (srv_conn *k = s->conns; k; k = k->next) {
        /* neither: its handler runs (computed, validated): left alone */
        if ((!k->arriving && !k->sending) || k->shut || k->fd < 0) continue;
        if (k->sending)
            ++*reading;
        else if (k->requested)
            ++*arriving;
        conn_shut(k); /* an idle one too: it would only take a request to refuse */
    }
    pthread_mutex_unlock(&s->conn_mu);
}

/* --key-ttl-hours: removes the keys unused that long (veil_keystore_prune). */
static void prune_keys(veil_server *s) {
    veil_keystore_pruned n;
    if (veil_keystore_prune(s->ks, (uint64_t)s->o.key_ttl_hours * 3600u, &n) != VEIL_OK) {
        fprintf(stderr, "veil-server: key store %s: %s\n", veil_keystore_dir(s->ks),
                veil_error_message());
        return;
    }
    if (n.keys) srv_batcher_keys_removed(s);
    if (s->o.verbose && (n.keys || n.corrupt || n.temporaries))
        fprintf(stderr,
                "veil-server: removed %llu key(s) unused for %u h (--key-ttl-hours), %llu "
                "quarantined file(s), %llu stale temporary file(s)\n",
                (unsigned long long)n.keys, s->o.key_ttl_hours, (unsigned long long)n.corrupt,
                (unsigned long long)n.temporaries);
}

static void *reaper_main(void *arg) {
    veil_server *s = arg;
    const double limit = 1e-3 * s->o.request_timeout_ms;
    /* look a few times per deadline, at least every 250 ms */
    double step = limit / 8;
    if (step > 0.25) step = 0.25;
    if (step < 0.01) step = 0.01;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->reaper_stop) {
        const double now = srv_now();
        unsigned closed = 0;
        for (srv_conn *k = s->conns; k; k = k->next)
            if ((k->arriving || k->sending) && !k->shut && k->fd >= 0 && now - k->t_start > limit) {
                conn_shut(k);
                closed++;
            }
        if (closed) {
            srv_metrics_request_timeouts(&s->m, closed);
            if (s->o.verbose)
                fprintf(stderr,
                        "veil-server: closed %u connection(s) still sending their "
                        "request or reading their answer after %u ms (--request-timeout-ms)\n",
                        closed, s->o.request_timeout_ms);
        }
        if (now >= s->next_prune) {
            /* a directory walk: never under conn_mu (requests take it) */
            s->next_prune = now + SRV_PRUNE_EVERY_S;
            pthread_mutex_unlock(&s->conn_mu);
            if (s->o.key_ttl_hours) prune_keys(s);
            /* keys other servers sharing the directory removed: their
             * resident plans here go too (a stat per resident key) */
            srv_batcher_keys_removed(s);
            pthread_mutex_lock(&s->conn_mu);
            if (s->reaper_stop) break;
        }
        srv_cond_wait_s(&s->reaper_cv, &s->conn_mu, step);
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

veil_status srv_reaper_start(veil_server *s) {
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        return veil_error(VEIL_ERR_INTERNAL, "cannot start the request-deadline thread");
    s->reaper_started = 1;
    return VEIL_OK;
}

void srv_reaper_stop(veil_server *s) {
    if (!s->reaper_started) return;
    pthread_mutex_lock(&s->conn_mu);
    s->reaper_stop = 1;
    pthread_cond_broadcast(&s->reaper_cv);
    pthread_mutex_unlock(&s->conn_mu);
    pthread_join(s->reaper, NULL);
    s->reaper_started = 0;
}
