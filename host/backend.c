/* Backend dispatch: choice of implementation, argument checks, and splitting
 * of work into pieces that fit the implementation's limits. */
#include "backend_internal.h"
#include "veil/compile_options.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

veil_status veil_backend_kind_parse(const char *s, veil_backend_kind *out) {
    if (!s || !out) return veil_error(VEIL_ERR_ARG, "backend kind: NULL argument");
    veil_backend_kind k;
    if (strcasecmp(s, "auto") == 0)
        k = VEIL_BACKEND_AUTO;
    else if (strcasecmp(s, "cpu") == 0)
        k = VEIL_BACKEND_CPU;
    else if (strcasecmp(s, "cuda") == 0 || strcasecmp(s, "gpu") == 0)
        k = VEIL_BACKEND_CUDA;
    else
        return veil_error(VEIL_ERR_ARG, "backend kind '%s': expected auto, cpu or cuda", s);
    *out = k;
    return VEIL_OK;
}

veil_status veil_backend_pbs_parse(const char *s, veil_backend_pbs *out) {
    static const char *const names[] = {"auto", "cufft", "fused", "cluster"};
    if (!s || !out) return veil_error(VEIL_ERR_ARG, "pbs kernel: NULL argument");
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) {
            *out = (veil_backend_pbs)i;
            return VEIL_OK;
        }
    return veil_error(VEIL_ERR_ARG, "pbs kernel '%s': expected auto, cufft, fused or cluster", s);
}

void veil_backend_options_default(veil_backend_options *o) {
    memset(o, 0, sizeof *o);
    o->pbs = VEIL_BACKEND_PBS_AUTO;
    o->memory_mb = -1;
}

static const char *env_value(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

veil_status veil_backend_options_from_env(veil_backend_options *o) {
    if (!o) return veil_error(VEIL_ERR_ARG, "veil_backend_options_from_env: NULL argument");
    veil_backend_options t = *o;
    const char *v;
    uint64_t u;
    if ((v = env_value("VEIL_THREADS"))) {
        VEIL_TRY(veil_arg_u64("VEIL_THREADS", v, 1, 256, &u));
        t.threads = (unsigned)u;
    }
    if ((v = env_value("VEIL_CUDA_DEVICE"))) {
        VEIL_TRY(veil_arg_u64("VEIL_CUDA_DEVICE", v, 0, 1023, &u));
        t.device = (int)u;
    }
    if ((v = env_value("VEIL_CUDA_PBS")) && veil_backend_pbs_parse(v, &t.pbs) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG, "VEIL_CUDA_PBS=%s: expected auto, cufft, fused or cluster",
                          v);
    if ((v = env_value("VEIL_CUDA_MEMORY_MB"))) {
        VEIL_TRY(veil_arg_u64("VEIL_CUDA_MEMORY_MB", v, 0, (uint64_t)1 << 40, &u));
        t.memory_mb = (int64_t)u;
    }
    *o = t;
    return VEIL_OK;
}

veil_status veil_backend_new(veil_backend_kind kind, veil_backend **out) {
    return veil_backend_new_opts(kind, NULL, out);
}

void veil_backend_options_env_help(FILE *f) {
    fputs("  VEIL_THREADS=N            cpu backend: worker threads (default: one per CPU)\n"
          "  VEIL_CUDA_DEVICE=N        cuda backend: the GPU (default 0)\n"
          "  VEIL_CUDA_PBS=auto|cufft|fused|cluster\n"
          "                            cuda backend: the blind rotation kernel (default auto)\n"
          "  VEIL_CUDA_MEMORY_MB=N     cuda backend: cap on its batch buffers (default: 90% of\n"
          "                            the free memory)\n",
          f);
}

veil_status veil_backend_new_env(veil_backend_kind kind, veil_backend **out) {
    veil_backend_options o;
    veil_backend_options_default(&o);
    VEIL_TRY(veil_backend_options_from_env(&o));
    return veil_backend_new_opts(kind, &o, out);
}

veil_status veil_backend_new_opts(veil_backend_kind kind, const veil_backend_options *opts,
                                  veil_backend **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_backend_new: out is NULL");
    veil_backend_options o;
    veil_backend_options_default(&o);
    if (opts) o = *opts;
    if (o.threads > 256)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: threads %u, expected 0..256", o.threads);
    if (o.device < 0)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: device %d, expected >= 0", o.device);
    if ((unsigned)o.pbs > VEIL_BACKEND_PBS_CLUSTER)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: unknown pbs kernel %d", (int)o.pbs);
    if (kind != VEIL_BACKEND_AUTO && kind != VEIL_BACKEND_CPU && kind != VEIL_BACKEND_CUDA)
        return veil_error(VEIL_ERR_ARG, "veil_backend_new: unknown kind %d", (int)kind);
    if (kind == VEIL_BACKEND_AUTO)
        kind = veil_backend_cuda_available(NULL, 0) ? VEIL_BACKEND_CUDA : VEIL_BACKEND_CPU;
    veil_backend *be = calloc(1, sizeof *be);
    if (!be) return veil_error(VEIL_ERR_NOMEM, "veil_backend_new: out of memory");
    be->kind = kind;
    be->opts = o;
    veil_status s =
        kind == VEIL_BACKEND_CUDA ? veil_backend_cuda_init(be) : veil_backend_cpu_init(be);
    if (s != VEIL_OK) {
        free(be);
        return s;
    }
    *out = be;
    return VEIL_OK;
}

void veil_backend_free(veil_backend *be) {
    if (!be) return;
    if (be->iface && be->iface->free) be->iface->free(be);
    free(be);
}

const char *veil_backend_name(const veil_backend *be) {
    return be && be->iface ? be->iface->name : "none";
}

const char *veil_backend_describe(const veil_backend *be) {
    return be ? be->describe : "none";
}

int veil_backend_healthy(const veil_backend *be) {
    return be && !be->dead;
}

int veil_backend_supports_op(const veil_backend *be, const veil_node *n) {
    if (!be || !be->iface || !n) return 0;
    switch (n->kind) {
    case VEIL_NODE_INPUT:
    case VEIL_NODE_OUTPUT:
    case VEIL_NODE_ADD:
        return 1;
    case VEIL_NODE_ROUND:
    case VEIL_NODE_LUT:
        return be->iface->ks_pbs != NULL;
    case VEIL_NODE_LINEAR:
        switch (n->linear) {
        case VEIL_LINEAR_DENSE:
            return be->iface->linear != NULL;
        case VEIL_LINEAR_CONV2D:
        case VEIL_LINEAR_SUMPOOL2D:
            return be->iface->conv2d != NULL;
        case VEIL_LINEAR_FLATTEN:
        case VEIL_LINEAR_CONCAT:
            return 1;
        }
        return 0;
    }
    return 0;
}

static veil_status check_alive(const veil_backend_keys *keys, const char *what) {
    if (!keys) return veil_error(VEIL_ERR_ARG, "%s: keys is NULL", what);
    if (keys->be->dead)
        return veil_error(VEIL_ERR_DEVICE,
                          "%s: backend %s is dead after an earlier unrecoverable device error",
                          what, keys->be->iface->name);
    return VEIL_OK;
}

veil_status veil_backend_keys_new(veil_backend *be, const veil_eval_key *ek, size_t max_batch,
                                  veil_backend_keys **out) {
    if (!be || !ek || !out) return veil_error(VEIL_ERR_ARG, "veil_backend_keys_new: NULL argument");
    if (be->dead)
        return veil_error(VEIL_ERR_DEVICE, "veil_backend_keys_new: backend %s is dead",
                          be->iface->name);
    if (!ek->params || !ek->parts || ek->n_parts < 1)
        return veil_error(VEIL_ERR_ARG, "veil_backend_keys_new: evaluation key without partitions");
    for (uint32_t i = 0; i < ek->n_parts; i++)
        if (!ek->parts[i].params || !ek->parts[i].bsk || !ek->parts[i].ksk)
            return veil_error(VEIL_ERR_ARG,
                              "veil_backend_keys_new: partition %u of the evaluation key without "
                              "params, bsk or ksk",
                              i);
    if (max_batch == 0)
        return veil_error(VEIL_ERR_ARG, "veil_backend_keys_new: max_batch must be > 0");
    veil_backend_keys *k = calloc(1, sizeof *k);
    if (!k) return veil_error(VEIL_ERR_NOMEM, "veil_backend_keys_new: out of memory");
    k->be = be;
    k->ek = ek;
    k->params = ek->params;
    k->max_batch = max_batch;
    k->limits.max_pbs = SIZE_MAX;
    k->limits.max_cts = SIZE_MAX;
    k->limits.max_weights = SIZE_MAX;
    k->limits.max_luts = SIZE_MAX;
    veil_status s = be->iface->keys_new(be, k, max_batch);
    if (s != VEIL_OK) {
        free(k);
        return s;
    }
    VEIL_ASSERT(k->limits.max_pbs > 0 && k->limits.max_cts > 0 && k->limits.max_weights > 0 &&
                k->limits.max_luts > 0);
    *out = k;
    return VEIL_OK;
}

void veil_backend_keys_free(veil_backend_keys *keys) {
    if (!keys) return;
    if (keys->be->iface->keys_free) keys->be->iface->keys_free(keys);
    free(keys);
}

void veil_backend_keys_limits(veil_backend_keys *keys, const veil_backend_limits *lim) {
    if (lim->max_pbs && lim->max_pbs < keys->limits.max_pbs) keys->limits.max_pbs = lim->max_pbs;
    if (lim->max_cts && lim->max_cts < keys->limits.max_cts) keys->limits.max_cts = lim->max_cts;
    if (lim->max_weights && lim->max_weights < keys->limits.max_weights)
        keys->limits.max_weights = lim->max_weights;
    if (lim->max_luts && lim->max_luts < keys->limits.max_luts)
        keys->limits.max_luts = lim->max_luts;
}

/* 1 when [a, a+na) and [b, b+nb) (in words) overlap. */
static int overlaps(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    uintptr_t a0 = (uintptr_t)a, a1 = a0 + na * sizeof *a;
    uintptr_t b0 = (uintptr_t)b, b1 = b0 + nb * sizeof *b;
    return na && nb && a0 < b1 && b0 < a1;
}

static int mul_overflows(size_t a, size_t b, size_t *r) {
    if (a && b > SIZE_MAX / a) return 1;
    *r = a * b;
    return 0;
}

veil_status veil_backend_ks_pbs(veil_backend_keys *keys, uint32_t partition, const uint64_t *in,
                                size_t count, const veil_lut *const *luts, size_t n_luts,
                                const uint32_t *lut_index, uint64_t *out) {
    VEIL_TRY(check_alive(keys, "ks_pbs"));
    if (partition >= keys->ek->n_parts)
        return veil_error(VEIL_ERR_ARG, "ks_pbs: partition %u, the evaluation key has %u",
                          partition, keys->ek->n_parts);
    if (count == 0) return VEIL_OK;
    if (!in || !out) return veil_error(VEIL_ERR_ARG, "ks_pbs: in or out is NULL");
    if (!luts || n_luts == 0) return veil_error(VEIL_ERR_ARG, "ks_pbs: no lookup tables");
    const veil_params *p = keys->ek->parts[partition].params;
    size_t lwe = (size_t)veil_params_big_dim(keys->params) + 1, words;
    if (mul_overflows(count, lwe, &words))
        return veil_error(VEIL_ERR_ARG, "ks_pbs: count = %zu is too large", count);
    if (overlaps(in, words, out, words))
        return veil_error(VEIL_ERR_ARG, "ks_pbs: in and out overlap");
    if (!lut_index) n_luts = 1; /* only luts[0] is read */
    for (size_t t = 0; t < n_luts; t++) {
        if (!luts[t] || !luts[t]->poly)
            return veil_error(VEIL_ERR_ARG, "ks_pbs: luts[%zu] is NULL", t);
        if (luts[t]->poly_size != p->poly_size)
            return veil_error(VEIL_ERR_PARAMS,
                              "ks_pbs: luts[%zu] has polynomial size %u, keys of partition %u "
                              "(%s) have N = %u",
                              t, luts[t]->poly_size, partition, p->id, p->poly_size);
    }
    if (lut_index) {
        for (size_t i = 0; i < count; i++)
            if (lut_index[i] >= n_luts)
                return veil_error(VEIL_ERR_ARG, "ks_pbs: lut_index[%zu] = %u, only %zu tables", i,
                                  lut_index[i], n_luts);
    }
    if (n_luts > keys->limits.max_luts)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "ks_pbs: %zu tables in one call, backend %s holds at most %zu", n_luts,
                          keys->be->iface->name, keys->limits.max_luts);
    if (!keys->be->iface->ks_pbs)
        return veil_error(VEIL_ERR_UNSUPPORTED, "ks_pbs: not supported by backend %s",
                          keys->be->iface->name);
    size_t piece = keys->limits.max_pbs;
    for (size_t done = 0; done < count; done += piece) {
        size_t c = count - done < piece ? count - done : piece;
        veil_status s =
            keys->be->iface->ks_pbs(keys, partition, in + done * lwe, c, luts, n_luts,
                                    lut_index ? lut_index + done : NULL, out + done * lwe);
        if (s != VEIL_OK) return s;
    }
    return VEIL_OK;
}

static size_t min_sz(size_t a, size_t b) {
    return a < b ? a : b;
}

veil_status veil_backend_linear(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                                size_t in_features, const int64_t *w, const uint64_t *bias,
                                size_t out_features, uint64_t *out) {
    VEIL_TRY(check_alive(keys, "linear"));
    if (batch == 0 || out_features == 0) return VEIL_OK;
    if (!in || !w || !out) return veil_error(VEIL_ERR_ARG, "linear: in, w or out is NULL");
    if (in_features == 0) return veil_error(VEIL_ERR_ARG, "linear: in_features = 0");
    size_t lwe = (size_t)veil_params_big_dim(keys->params) + 1, n_in, n_out, t;
    if (mul_overflows(batch, in_features, &t) || mul_overflows(t, lwe, &n_in) ||
        mul_overflows(batch, out_features, &t) || mul_overflows(t, lwe, &n_out) ||
        mul_overflows(in_features, out_features, &t))
        return veil_error(VEIL_ERR_ARG, "linear: shape %zu x %zu x %zu is too large", batch,
                          in_features, out_features);
    if (overlaps(in, n_in, out, n_out))
        return veil_error(VEIL_ERR_ARG, "linear: in and out overlap");
    if (!keys->be->iface->linear)
        return veil_error(VEIL_ERR_UNSUPPORTED, "linear: not supported by backend %s",
                          keys->be->iface->name);
    const veil_backend_limits *lim = &keys->limits;
    size_t o_tile = min_sz(out_features, lim->max_weights / in_features);
    if (o_tile == 0 || in_features > lim->max_cts)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "linear: in_features = %zu does not fit backend %s (%zu weights, %zu "
                          "ciphertexts per call)",
                          in_features, keys->be->iface->name, lim->max_weights, lim->max_cts);
    o_tile = min_sz(o_tile, lim->max_cts);
    for (size_t o0 = 0; o0 < out_features; o0 += o_tile) {
        size_t oc = min_sz(o_tile, out_features - o0);
        size_t b_piece = min_sz(lim->max_cts / in_features, lim->max_cts / oc);
        VEIL_ASSERT(b_piece > 0);
        for (size_t b0 = 0; b0 < batch; b0 += b_piece) {
            size_t bc = min_sz(b_piece, batch - b0);
            veil_status s = keys->be->iface->linear(
                keys, in + b0 * in_features * lwe, bc, in_features, w + o0 * in_features,
                bias ? bias + o0 : NULL, oc, out_features, out + (b0 * out_features + o0) * lwe);
            if (s != VEIL_OK) return s;
        }
    }
    return VEIL_OK;
}

veil_status veil_backend_conv2d(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                                const veil_conv_geom *shape, const int64_t *w, const uint64_t *bias,
                                uint64_t *out) {
    VEIL_TRY(check_alive(keys, "conv2d"));
    if (!shape) return veil_error(VEIL_ERR_ARG, "conv2d: shape is NULL");
    veil_conv_geom geom = *shape;
    const veil_conv_geom *s = &geom;
    if (!s->c_in || !s->h_in || !s->w_in || !s->c_out || !s->kh || !s->kw)
        return veil_error(VEIL_ERR_ARG,
                          "conv2d: zero dimension (c_in %u, h %u, w %u, c_out %u, kernel %ux%u)",
                          s->c_in, s->h_in, s->w_in, s->c_out, s->kh, s->kw);
    if (!s->stride_h || !s->stride_w)
        return veil_error(VEIL_ERR_ARG, "conv2d: stride %ux%u must be > 0", s->stride_h,
                          s->stride_w);
    if (!veil_conv_geom_finish(&geom)) {
        if (!veil_conv_out_dim(s->h_in, s->kh, s->stride_h, s->pad_h) ||
            !veil_conv_out_dim(s->w_in, s->kw, s->stride_w, s->pad_w))
            return veil_error(VEIL_ERR_ARG, "conv2d: kernel %ux%u larger than padded input %ux%u",
                              s->kh, s->kw, s->h_in + 2 * s->pad_h, s->w_in + 2 * s->pad_w);
        return veil_error(VEIL_ERR_ARG, "conv2d: output %ux%u, the geometry gives %ux%u", s->h_out,
                          s->w_out, veil_conv_out_dim(s->h_in, s->kh, s->stride_h, s->pad_h),
                          veil_conv_out_dim(s->w_in, s->kw, s->stride_w, s->pad_w));
    }
    const uint32_t ho = s->h_out, wo = s->w_out;
    if (batch == 0) return VEIL_OK;
    if (!in || !w || !out) return veil_error(VEIL_ERR_ARG, "conv2d: in, w or out is NULL");
    size_t lwe = (size_t)veil_params_big_dim(keys->params) + 1;
    size_t per_in = (size_t)s->c_in * s->h_in * s->w_in, hw_out = (size_t)ho * wo;
    size_t per_out = (size_t)s->c_out * hw_out, per_w = (size_t)s->c_in * s->kh * s->kw, t, n_in,
           n_out;
    if (mul_overflows(batch, per_in, &t) || mul_overflows(t, lwe, &n_in) ||
        mul_overflows(batch, per_out, &t) || mul_overflows(t, lwe, &n_out))
        return veil_error(VEIL_ERR_ARG, "conv2d: batch %zu is too large", batch);
    if (overlaps(in, n_in, out, n_out))
        return veil_error(VEIL_ERR_ARG, "conv2d: in and out overlap");
    if (!keys->be->iface->conv2d)
        return veil_error(VEIL_ERR_UNSUPPORTED, "conv2d: not supported by backend %s",
                          keys->be->iface->name);
    const veil_backend_limits *lim = &keys->limits;
    size_t c_tile = min_sz(s->c_out, lim->max_weights / per_w);
    c_tile = min_sz(c_tile, lim->max_cts / hw_out);
    if (c_tile == 0 || per_in > lim->max_cts)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "conv2d: one sample (%zu inputs, %zu weights per channel) does not fit "
                          "backend %s (%zu ciphertexts, %zu weights per call)",
                          per_in, per_w, keys->be->iface->name, lim->max_cts, lim->max_weights);
    for (size_t c0 = 0; c0 < s->c_out; c0 += c_tile) {
        veil_conv_geom tile = *s;
        tile.c_out = (uint32_t)min_sz(c_tile, s->c_out - c0);
        size_t b_piece = min_sz(lim->max_cts / per_in, lim->max_cts / (tile.c_out * hw_out));
        VEIL_ASSERT(b_piece > 0);
        for (size_t b0 = 0; b0 < batch; b0 += b_piece) {
            size_t bc = min_sz(b_piece, batch - b0);
            veil_status st = keys->be->iface->conv2d(
                keys, in + b0 * per_in * lwe, bc, &tile, w + c0 * per_w, bias ? bias + c0 : NULL,
                per_out, out + (b0 * per_out + c0 * hw_out) * lwe);
            if (st != VEIL_OK) return st;
        }
    }
    return VEIL_OK;
}
