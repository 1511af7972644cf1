/* config.c — reads the parameters veil needs from Triton's model
 * configuration JSON (see config.h). A small scanner over the JSON text:
 * strings, numbers, objects, arrays; enough for protobuf's JSON output. */
#include "config.h"

#include "veil/keystore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct scan {
    const char *p, *end;
} scan;

static void ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\t' || *s->p == '\r'))
        s->p++;
}

static int eat(scan *s, char c) {
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

/* A JSON string into out (escapes other than \uXXXX decoded; \u kept as '?'). */
static int str(scan *s, char *out, size_t cap) {
    if (!eat(s, '"')) return -1;
    size_t n = 0;
    while (s->p < s->end && *s->p != '"') {
        char c = *s->p++;
        if (c == '\\' && s->p < s->end) {
            c = *s->p++;
            if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            else if (c == 'u') {
                s->p += s->end - s->p >= 4 ? 4 : s->end - s->p;
                c = '?';
            }
        }
        if (n + 1 >= cap) return -1;
        out[n++] = c;
    }
    if (s->p >= s->end) return -1;
    s->p++;
    out[n] = 0;
    return 0;
}

static int skip(scan *s, int depth) {
    ws(s);
    if (s->p >= s->end || depth > 64) return -1;
    char c = *s->p;
    if (c == '"') {
        for (s->p++; s->p < s->end && *s->p != '"'; s->p++)
            if (*s->p == '\\' && s->p + 1 < s->end) s->p++;
        if (s->p >= s->end) return -1;
        s->p++;
        return 0;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        if (eat(s, close)) return 0;
        for (;;) {
            if (c == '{') {
                if (skip(s, depth + 1) || !eat(s, ':')) return -1;
            }
            if (skip(s, depth + 1)) return -1;
            if (eat(s, close)) return 0;
            if (!eat(s, ',')) return -1;
        }
    }
    while (s->p < s->end && !strchr(",}] \n\t\r", *s->p))
        s->p++;
    return 0;
}

static veil_status set_param(vt_config *c, const char *name, const char *v) {
    char *e = NULL;
    if (!strcmp(name, "role")) {
        if (!strcmp(v, "infer"))
            c->role = VT_ROLE_INFER;
        else if (!strcmp(v, "keys"))
            c->role = VT_ROLE_KEYS;
        else
            return veil_error(VEIL_ERR_ARG, "parameter role '%s': expected infer or keys", v);
    } else if (!strcmp(name, "keys_dir")) {
        if (!*v || strlen(v) >= sizeof c->keys_dir)
            return veil_error(VEIL_ERR_ARG, "parameter keys_dir: empty or too long");
        snprintf(c->keys_dir, sizeof c->keys_dir, "%s", v);
    } else if (!strcmp(name, "max_batch") || !strcmp(name, "max_request_samples") ||
               !strcmp(name, "key_cache")) {
        unsigned long long n = strtoull(v, &e, 10);
        if (!*v || *e || v[0] == '-' || n == 0 || n > (1u << 20))
            return veil_error(VEIL_ERR_ARG, "parameter %s '%s': expected an integer in 1..%u", name,
                              v, 1u << 20);
        size_t *dst = !strcmp(name, "max_batch")   ? &c->max_batch
                      : !strcmp(name, "key_cache") ? &c->key_cache
                                                   : &c->max_request_samples;
        *dst = (size_t)n;
    } else if (!strcmp(name, "key_store_max_mb") || !strcmp(name, "key_ttl_hours")) {
        unsigned long long n = strtoull(v, &e, 10);
        if (!*v || *e || v[0] == '-' || n > 0xffffffffu)
            return veil_error(VEIL_ERR_ARG,
                              "parameter %s '%s': expected an integer in 0..4294967295 (0: %s)",
                              name, v, !strcmp(name, "key_ttl_hours") ? "keep keys" : "no limit");
        *(!strcmp(name, "key_ttl_hours") ? &c->key_ttl_hours : &c->key_store_max_mb) = (unsigned)n;
    } else if (veil_compile_option_known(name)) {
        if (!strcmp(name, "params")) {
            if (strlen(v) >= sizeof c->params_id)
                return veil_error(VEIL_ERR_ARG, "parameter params: too long");
            memcpy(c->params_id, v, strlen(v) + 1); /* fits: checked above */
            v = c->params_id;
        }
        if (veil_compile_options_set(&c->compile, name, v) != VEIL_OK) {
            char why[512]; /* veil_error() rewrites the message it would read */
            snprintf(why, sizeof why, "%s", veil_error_message());
            return veil_error(VEIL_ERR_ARG, "parameter %s", why);
        }
    } else {
        return veil_error(VEIL_ERR_ARG,
                          "unknown parameter '%s' (role, keys_dir, max_batch, "
                          "max_request_samples, key_cache, key_store_max_mb, key_ttl_hours, or a "
                          "compile option of `veil compile --help` with _ for -, as "
                          "rounding_bits)",
                          name);
    }
    return VEIL_OK;
}

/* "parameters": { "<name>": { "string_value": "<v>" }, ... } */
static veil_status parameters(scan *s, vt_config *c) {
    if (!eat(s, '{')) return veil_error(VEIL_ERR_FORMAT, "model config: parameters not an object");
    if (eat(s, '}')) return VEIL_OK;
    for (;;) {
        char name[128], key[64], value[4096];
        int have = 0;
        if (str(s, name, sizeof name) || !eat(s, ':') || !eat(s, '{'))
            return veil_error(VEIL_ERR_FORMAT, "model config: malformed parameters");
        if (!eat(s, '}'))
            for (;;) {
                if (str(s, key, sizeof key) || !eat(s, ':'))
                    return veil_error(VEIL_ERR_FORMAT, "model config: parameter %s", name);
                if (!strcmp(key, "string_value")) {
                    if (str(s, value, sizeof value))
                        return veil_error(VEIL_ERR_FORMAT,
                                          "model config: parameter %s: bad string_value", name);
                    have = 1;
                } else if (skip(s, 0)) {
                    return veil_error(VEIL_ERR_FORMAT, "model config: parameter %s", name);
                }
                if (eat(s, '}')) break;
                if (!eat(s, ','))
                    return veil_error(VEIL_ERR_FORMAT, "model config: parameter %s", name);
            }
        if (!have)
            return veil_error(VEIL_ERR_FORMAT, "model config: parameter %s has no string_value",
                              name);
        VEIL_TRY(set_param(c, name, value));
        if (eat(s, '}')) return VEIL_OK;
        if (!eat(s, ',')) return veil_error(VEIL_ERR_FORMAT, "model config: malformed parameters");
    }
}

veil_status vt_config_parse(const char *json, size_t len, vt_config *c) {
    memset(c, 0, sizeof *c);
    veil_compile_options_default(&c->compile);
    c->max_batch = 16;
    c->max_request_samples = 1024;
    c->key_cache = 4;
    c->key_store_max_mb = VEIL_KEYSTORE_DEFAULT_MAX_MB;
    scan s = {json, json + len};
    if (!eat(&s, '{')) return veil_error(VEIL_ERR_FORMAT, "model config: not a JSON object");
    if (!eat(&s, '}'))
        for (;;) {
            char key[128];
            if (str(&s, key, sizeof key) || !eat(&s, ':'))
                return veil_error(VEIL_ERR_FORMAT, "model config: malformed JSON");
            if (!strcmp(key, "parameters")) {
                VEIL_TRY(parameters(&s, c));
            } else if (!strcmp(key, "max_batch_size")) {
                /* the number copied out first: the text is not NUL-terminated */
                ws(&s);
                char num[24];
                size_t k = 0;
                while (s.p + k < s.end && k + 1 < sizeof num &&
                       (s.p[k] == '-' || (s.p[k] >= '0' && s.p[k] <= '9')))
                    num[k] = s.p[k], k++;
                num[k] = 0;
                char *e;
                c->max_batch_size = strtol(num, &e, 10);
                if (e == num) return veil_error(VEIL_ERR_FORMAT, "model config: max_batch_size");
                s.p += e - num;
            } else if (skip(&s, 0)) {
                return veil_error(VEIL_ERR_FORMAT, "model config: malformed JSON at %s", key);
            }
            if (eat(&s, '}')) break;
            if (!eat(&s, ','))
                return veil_error(VEIL_ERR_FORMAT, "model config: malformed JSON after %s", key);
        }
    if (!c->keys_dir[0])
        return veil_error(VEIL_ERR_ARG,
                          "parameter keys_dir is required: the key store directory every "
                          "instance and replica shares (e.g. a mounted volume)");
    return VEIL_OK;
}
