/* remote.c — the HTTP client of veil-server, on libcurl (see veil/client.h).
 *
 * Retries: a request that never reached the server (connection refused or
 * reset before an answer) is retried whatever it is; GET /v1/... and POST
 * /v1/infer are idempotent (an inference has no side effect on the server),
 * so they are also retried on 502/503/504 and on timeouts, with exponential
 * backoff. POST /v1/keys is not (each upload makes a new key id). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "veil/atomic_file.h"
#include "veil/client.h"

void veil_remote_options_default(veil_remote_options *o) {
    memset(o, 0, sizeof *o);
    o->connect_timeout_s = 10;
    o->timeout_s = 600;
    o->retries = 3;
    o->max_answer_bytes = VEIL_REMOTE_ANSWER_MAX;
}

/* ---- minimal JSON field extraction (the server's flat objects) -------------- */

static const char *json_field(const char *json, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    return p;
}

int veil_json_str(const char *json, const char *key, char *out, size_t cap) {
    const char *p = json_field(json, key);
    if (!p || *p != '"' || cap == 0) return -1;
    p++;
    size_t n = 0;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) p++;
        if (n + 1 < cap) out[n++] = *p;
    }
    out[n] = 0;
    return *p == '"' ? 0 : -1;
}

static int json_num(const char *json, const char *key, double *out) {
    const char *p = json_field(json, key);
    if (!p) return -1;
    char *e;
    double v = strtod(p, &e);
    if (e == p) return -1;
    *out = v;
    return 0;
}

static _Thread_local long g_last_status;

long veil_remote_last_status(void) {
    return g_last_status;
}

void veil_url_base(const char *url, char *out, size_t cap) {
    snprintf(out, cap, "%s", url);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = 0;
}

/* veil-server's JSON error answer; outside libcurl's part, for
 * fuzz_client_answer (fuzz_answer.c). */
veil_status veil_http_error(const char *method, const char *url, const veil_http_resp *r) {
    char code[64] = "", msg[512] = "";
    const char *j = r->body ? (const char *)r->body : "";
    veil_json_str(j, "error", code, sizeof code);
    veil_json_str(j, "message", msg, sizeof msg);
    veil_status s = VEIL_ERR_IO;
    if (!strcmp(code, "params_mismatch") || !strcmp(code, "model_mismatch") ||
        !strcmp(code, "key_mismatch"))
        s = VEIL_ERR_PARAMS;
    else if (!strcmp(code, "key_store_full")) /* 507; Triton's 503 reads the same (triton.c) */
        s = VEIL_ERR_RANGE;
    else if (r->status == 413)
        s = VEIL_ERR_UNSUPPORTED;
    else if (r->status == 400)
        s = VEIL_ERR_FORMAT;
    return veil_error(s, "%s %s: server answered %ld %s%s%s", method, url, r->status,
                      code[0] ? code : (r->status >= 500 ? "(server error)" : "(client error)"),
                      msg[0] ? ": " : "", msg);
}

#ifdef VEIL_WITH_CURL
#include <curl/curl.h>
#include <pthread.h>

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
    veil_http_resp *r = user;
    size_t n = size * nmemb;
    if (n > r->max - r->len) {
        r->too_big = 1;
        return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        uint8_t *q = realloc(r->body, cap);
        if (!q) {
            r->oom = 1;
            return 0;
        }
        r->body = q;
        r->cap = cap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = 0; /* so a JSON body is a C string */
    return n;
}

/* The number after a header's name (ptr[skip..n)): libcurl's header lines are
 * not NUL-terminated, so the value is copied out before strtoull reads it. */
static size_t header_value(const char *ptr, size_t n, size_t skip) {
    char v[32];
    size_t k = 0;
    while (skip < n && (ptr[skip] == ' ' || ptr[skip] == '\t'))
        skip++;
    while (skip + k < n && k + 1 < sizeof v && ptr[skip + k] >= '0' && ptr[skip + k] <= '9') {
        v[k] = ptr[skip + k];
        k++;
    }
    v[k] = 0;
    return (size_t)strtoull(v, NULL, 10);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *user) {
    veil_http_resp *r = user;
    size_t n = size * nmemb;
    static const char k[] = "x-veil-batch-samples:";
    static const char kt[] = "inference-header-content-length:";
    if (n > sizeof k - 1 && !strncasecmp(ptr, k, sizeof k - 1))
        r->batch_samples = header_value(ptr, n, sizeof k - 1);
    if (n > sizeof kt - 1 && !strncasecmp(ptr, kt, sizeof kt - 1)) {
        r->infer_header_len = header_value(ptr, n, sizeof kt - 1);
        r->has_infer_header = 1;
    }
    return n;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

veil_status veil_http_do(const char *method, const char *url, const char *header,
                         const uint8_t *body, size_t len, int idempotent, size_t max_answer,
                         const veil_remote_options *o, veil_http_resp *r) {
    pthread_once(&g_curl_once, curl_init_once);
    memset(r, 0, sizeof *r);
    g_last_status = 0;
    CURL *h = curl_easy_init();
    if (!h) return veil_error(VEIL_ERR_NOMEM, "libcurl: cannot create a handle");
    struct curl_slist *hdrs = NULL;
    if (header) hdrs = curl_slist_append(hdrs, header);
    if (body) hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    veil_status st = VEIL_OK;
    for (int attempt = 0;; attempt++) {
        free(r->body);
        memset(r, 0, sizeof *r);
        r->max = max_answer;
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout_s);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (body) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        } else if (strcmp(method, "GET") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        }
        CURLcode cc = curl_easy_perform(h);
        int retry = 0;
        if (cc == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
            g_last_status = r->status;
            retry = idempotent && (r->status == 502 || r->status == 503 || r->status == 504);
            if (!retry) break;
        } else {
            int not_sent = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST;
            retry = not_sent ||
                    (idempotent && (cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_RECV_ERROR ||
                                    cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING));
            if (cc == CURLE_COULDNT_RESOLVE_HOST || r->too_big) retry = 0; /* these do not heal */
            if (!retry || attempt >= o->retries) {
                if (cc == CURLE_COULDNT_CONNECT)
                    st = veil_error(VEIL_ERR_IO,
                                    "%s %s: connection refused (is veil-server running and "
                                    "listening there?) after %d tries",
                                    method, url, attempt + 1);
                else if (cc == CURLE_OPERATION_TIMEDOUT)
                    st = veil_error(VEIL_ERR_IO, "%s %s: timed out (connect %lds, request %lds)",
                                    method, url, o->connect_timeout_s, o->timeout_s);
                else if (r->too_big)
                    st = veil_error(VEIL_ERR_FORMAT,
                                    "%s %s: the answer is larger than %zu bytes (cut off; a "
                                    "larger one is not an answer to this request)",
                                    method, url, r->max);
                else if (r->oom)
                    st = veil_error(VEIL_ERR_NOMEM, "%s %s: out of memory for the answer", method,
                                    url);
                else
                    st = veil_error(VEIL_ERR_IO, "%s %s: %s", method, url, curl_easy_strerror(cc));
                break;
            }
        }
        if (attempt >= o->retries) break; /* the last HTTP answer stands */
        /* 0.2 s doubling, at most 10 s between tries (--retries 100 waited
         * hours, and the shift overflowed past 50) */
        const long ms = attempt < 6 ? 200L << attempt : 10000L;
        if (o->verbose)
            fprintf(stderr, "veil: %s %s: %s, retrying in %ld ms\n", method, url,
                    cc == CURLE_OK ? "server busy" : curl_easy_strerror(cc), ms);
        sleep_ms(ms);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (st) {
        free(r->body);
        memset(r, 0, sizeof *r);
    }
    return st;
}

veil_status veil_read_file(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return veil_error(VEIL_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0) {
        fclose(f);
        return veil_error(VEIL_ERR_IO, "%s: empty or unreadable", path);
    }
    uint8_t *b = malloc((size_t)st.st_size);
    if (!b) {
        fclose(f);
        return veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(b, 1, (size_t)st.st_size, f);
    fclose(f);
    if (n != (size_t)st.st_size) {
        free(b);
        return veil_error(VEIL_ERR_IO, "%s: short read", path);
    }
    *buf = b;
    *len = n;
    return VEIL_OK;
}

veil_status veil_read_eval_key_file(const char *dir, uint8_t **buf, size_t *len) {
    char ekp[4096];
    veil_keydir_path(dir, "eval.key", ekp, sizeof ekp);
    uint8_t *ek = NULL;
    size_t ek_len = 0;
    VEIL_TRY(veil_read_file(ekp, &ek, &ek_len));
    if (ek_len < VEIL_SERIAL_HEADER_BYTES || memcmp(ek, "VEILEK01", 8) != 0) {
        free(ek);
        return veil_error(VEIL_ERR_FORMAT, "%s: not an evaluation key file", ekp);
    }
    *buf = ek;
    *len = ek_len;
    return VEIL_OK;
}

/* DIR/servers: "<url> <key id>" lines. */
int veil_keydir_servers_lookup(const char *dir, const char *url, char id[VEIL_KEY_ID_CHARS + 1]) {
    char path[4096], line[4096 + 64];
    veil_keydir_path(dir, "servers", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        char *sp = strrchr(line, ' ');
        if (!sp) continue;
        *sp = 0;
        char *kid = sp + 1;
        kid[strcspn(kid, "\r\n")] = 0;
        if (!strcmp(line, url) && veil_key_id_valid(kid)) {
            memcpy(id, kid, VEIL_KEY_ID_CHARS + 1);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

veil_status veil_keydir_servers_check(const char *dir) {
    char path[4096];
    veil_keydir_path(dir, "servers", path, sizeof path);
    return veil_atomic_file_check(path);
}

veil_status veil_keydir_servers_store(const char *dir, const char *url, const char *id) {
    char path[4096], line[4096 + 64];
    veil_keydir_path(dir, "servers", path, sizeof path);
    veil_atomic_file af;
    VEIL_TRY(veil_atomic_file_open(&af, path, 0644));
    /* the other servers' entries are copied over: a file that is there but
     * cannot be read (permissions, I/O) is not replaced by this one entry */
    FILE *in = fopen(path, "r");
    if (!in && errno != ENOENT) {
        const int err = errno;
        veil_atomic_file_discard(&af);
        return veil_error(VEIL_ERR_IO, "%s: cannot read it (%s), so it is left as it is", path,
                          strerror(err));
    }
    while (in && fgets(line, sizeof line, in)) {
        char copy[sizeof line];
        memcpy(copy, line, sizeof line);
        char *sp = strrchr(copy, ' ');
        if (sp) {
            *sp = 0;
            if (!strcmp(copy, url)) continue;
        }
        fputs(line, af.f);
        /* a hand-edited last line without its newline: the entry after it
         * must not join it */
        const size_t n = strlen(line);
        if (n && line[n - 1] != '\n' && feof(in)) fputc('\n', af.f);
    }
    if (in && ferror(in)) {
        fclose(in);
        veil_atomic_file_discard(&af);
        return veil_error(VEIL_ERR_IO, "%s: read error, so it is left as it is", path);
    }
    if (in) fclose(in);
    if (id) fprintf(af.f, "%s %s\n", url, id);
    return veil_atomic_file_commit(&af);
}

veil_status veil_remote_ensure_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *uploaded) {
    if (o->triton_model) return veil_triton_ensure_key(url, dir, o, key_id, uploaded);
    char base[2048], u[2200];
    veil_url_base(url, base, sizeof base);
    uint8_t *ek = NULL;
    size_t ek_len = 0;
    VEIL_TRY(veil_read_eval_key_file(dir, &ek, &ek_len));
    char fp_hex[2 * VEIL_KEY_FP_BYTES + 1];
    veil_hex(ek + 64, VEIL_KEY_FP_BYTES, fp_hex);
    veil_http_resp r;
    veil_status st;
    char id[VEIL_KEY_ID_CHARS + 1];
    if (veil_keydir_servers_lookup(dir, base, id) == 0) {
        snprintf(u, sizeof u, "%s/v1/keys/%s", base, id);
        if ((st = veil_http_do("GET", u, NULL, NULL, 0, 1, VEIL_REMOTE_JSON_MAX, o, &r))) {
            free(ek);
            return st;
        }
        char got_fp[64] = "";
        veil_json_str((const char *)r.body, "key_fp", got_fp, sizeof got_fp);
        if (r.status == 200 && !strcmp(got_fp, fp_hex)) {
            free(r.body);
            free(ek);
            memcpy(key_id, id, sizeof id);
            *uploaded = 0;
            return VEIL_OK;
        }
        if (r.status != 404 && r.status != 200) {
            st = veil_http_error("GET", u, &r);
            free(r.body);
            free(ek);
            return st;
        }
        free(r.body); /* gone (404) or another key: upload again */
    }
    if ((st = veil_keydir_servers_check(dir))) {
        free(ek);
        return st;
    }
    snprintf(u, sizeof u, "%s/v1/keys", base);
    st = veil_http_do("POST", u, NULL, ek, ek_len, 0, VEIL_REMOTE_JSON_MAX, o, &r);
    free(ek);
    if (st) return st;
    if (r.status != 201 && r.status != 200) {
        st = veil_http_error("POST", u, &r);
        free(r.body);
        return st;
    }
    int ok =
        veil_json_str((const char *)r.body, "key_id", id, sizeof id) == 0 && veil_key_id_valid(id);
    free(r.body);
    if (!ok) return veil_error(VEIL_ERR_FORMAT, "POST %s: answer has no valid key_id", u);
    VEIL_TRY(veil_keydir_servers_store(dir, base, id));
    memcpy(key_id, id, sizeof id);
    *uploaded = 1;
    return VEIL_OK;
}

veil_status veil_remote_delete_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *was_stored) {
    char base[2048], tag[2400], u[2400];
    veil_url_base(url, base, sizeof base);
    if (o->triton_model)
        veil_triton_key_tag(base, o, tag, sizeof tag);
    else
        snprintf(tag, sizeof tag, "%s", base);
    char id[VEIL_KEY_ID_CHARS + 1], svp[4096];
    if (veil_keydir_servers_lookup(dir, tag, id) != 0)
        return veil_error(VEIL_ERR_ARG,
                          "%s: no key id recorded for %s (nothing uploaded "
                          "there from this key directory, or deleted already)",
                          veil_keydir_path(dir, "servers", svp, sizeof svp), tag);
    /* 404 unknown_key: the server had lost it already (expired, deleted by
     * whoever holds the id): gone all the same. Any other 404 (no such route
     * or Triton model: a proxy, the key model unloaded) proves nothing about
     * the key: a failure, the entry kept. */
    veil_status st;
    int lost = 0;
    if (o->triton_model) {
        st = veil_triton_delete_key(base, id, o);
        lost = st != VEIL_OK && veil_remote_last_status() == 404 &&
               strstr(veil_error_message(), "veil unknown_key") != NULL;
    } else {
        snprintf(u, sizeof u, "%s/v1/keys/%s", base, id);
        veil_http_resp r;
        /* idempotent: a retry after a lost answer finds it gone (404) */
        VEIL_TRY(veil_http_do("DELETE", u, NULL, NULL, 0, 1, VEIL_REMOTE_JSON_MAX, o, &r));
        char code[64] = "";
        if (r.status == 404)
            veil_json_str(r.body ? (const char *)r.body : "", "error", code, sizeof code);
        lost = r.status == 404 && !strcmp(code, "unknown_key");
        st =
            r.status == 204 || r.status == 200 || lost ? VEIL_OK : veil_http_error("DELETE", u, &r);
        free(r.body);
    }
    if (st != VEIL_OK && !lost) return st;
    *was_stored = !lost;
    VEIL_TRY(veil_keydir_servers_store(dir, tag, NULL));
    memcpy(key_id, id, sizeof id);
    return VEIL_OK;
}

veil_status veil_remote_check_model(const veil_client *c, const char *url,
                                    const veil_remote_options *o, size_t *max_samples) {
    if (o->triton_model) return veil_triton_check_model(c, url, o, max_samples);
    char base[2048], u[2200];
    veil_url_base(url, base, sizeof base);
    snprintf(u, sizeof u, "%s/v1/model", base);
    veil_http_resp r;
    VEIL_TRY(veil_http_do("GET", u, NULL, NULL, 0, 1, VEIL_REMOTE_JSON_MAX, o, &r));
    veil_status st = VEIL_OK;
    char params[64] = "", fp[80] = "", copts[1024] = "";
    double ms = 0;
    if (r.status != 200) {
        st = veil_http_error("GET", u, &r);
    } else if (veil_json_str((const char *)r.body, "params_id", params, sizeof params) ||
               veil_json_str((const char *)r.body, "model_fp", fp, sizeof fp)) {
        st = veil_error(VEIL_ERR_FORMAT, "GET %s: not a veil-server model description", u);
    } else if (veil_json_str((const char *)r.body, "compile_options", copts, sizeof copts) == 0 &&
               strcmp(copts, c->prog->options_canonical) != 0) {
        /* the options are in the fingerprint: say which differ, not only that */
        st = veil_error(VEIL_ERR_PARAMS,
                        "%s compiles %s with other compile options; pass the server's:\n"
                        "  server: %s\n  here:   %s",
                        base, c->model->name, copts, c->prog->options_canonical);
    } else if (strcmp(params, c->prog->params->id) != 0) {
        st = veil_error(VEIL_ERR_PARAMS,
                        "%s runs parameter set %s, model %s compiles to %s here (another model "
                        "or other compile options)",
                        base, params, c->model->name, c->prog->params->id);
    } else if (strcmp(fp, c->fp_hex) != 0) {
        st = veil_error(VEIL_ERR_PARAMS,
                        "%s serves another program than %s compiled with these options (model "
                        "fingerprint %.16s... vs %.16s...)",
                        base, c->model->name, fp, c->fp_hex);
    } else if (max_samples) {
        /* the server's figure, not trusted to fit a size_t (NaN, inf, 1e300):
         * clamped to 1 .. 2^32 samples a request */
        *max_samples = json_num((const char *)r.body, "max_request_samples", &ms) == 0 && ms >= 1
                           ? (ms < 0x1p32 ? (size_t)ms : (size_t)1 << 32)
                           : 1;
    }
    free(r.body);
    return st;
}

veil_status veil_remote_infer(const char *url, const char *key_id, const uint8_t *body, size_t len,
                              const veil_remote_options *o, uint8_t **out, size_t *out_len,
                              size_t *batch_samples) {
    if (o->triton_model) {
        if (batch_samples) *batch_samples = 0;
        return veil_triton_infer(url, key_id, body, len, o, out, out_len);
    }
    char base[2048], u[2200];
    veil_url_base(url, base, sizeof base);
    snprintf(u, sizeof u, "%s/v1/infer", base);
    veil_http_resp r;
    char kh[96];
    snprintf(kh, sizeof kh, "X-Veil-Key-Id: %s", key_id);
    VEIL_TRY(veil_http_do("POST", u, kh, body, len, 1, o->max_answer_bytes, o, &r));
    if (r.status != 200) {
        veil_status st = veil_http_error("POST", u, &r);
        free(r.body);
        return st;
    }
    *out = r.body;
    *out_len = r.len;
    if (batch_samples) *batch_samples = r.batch_samples;
    return VEIL_OK;
}

#else /* !VEIL_WITH_CURL */

veil_status veil_remote_ensure_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *uploaded) {
    (void)url, (void)dir, (void)o, (void)key_id, (void)uploaded;
    (void)json_num; /* used by the libcurl build only */
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
veil_status veil_remote_delete_key(const char *url, const char *dir, const veil_remote_options *o,
                                   char key_id[VEIL_KEY_ID_CHARS + 1], int *was_stored) {
    (void)url, (void)dir, (void)o, (void)key_id, (void)was_stored;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
veil_status veil_remote_check_model(const veil_client *c, const char *url,
                                    const veil_remote_options *o, size_t *max_samples) {
    (void)c, (void)url, (void)o, (void)max_samples;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
veil_status veil_remote_infer(const char *url, const char *key_id, const uint8_t *body, size_t len,
                              const veil_remote_options *o, uint8_t **out, size_t *out_len,
                              size_t *batch_samples) {
    (void)url, (void)key_id, (void)body, (void)len, (void)o, (void)out, (void)out_len;
    (void)batch_samples;
    return veil_error(VEIL_ERR_UNSUPPORTED, "veil was built without libcurl: no remote");
}
#endif
