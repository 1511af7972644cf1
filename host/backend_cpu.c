/* The cpu backend: the engine's reference code (veil_ks_pbs, veil_lwe_dot)
 * behind the backend interface. Lookups run on worker threads, one PBS
 * context (FFT tables and buffers) per thread, made once in keys_new. A
 * batch is cut into one contiguous share per thread, sizes differing by at
 * most one: every KS-PBS costs the same, so the shares take the same time. */
#include "backend_internal.h"
#include "veil/fft.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cpu_keys {
    unsigned n_threads;
    veil_pbs_ctx **ctx; /* n_threads */
} cpu_keys;

static unsigned cpu_thread_count(size_t max_batch) {
    long n = 0;
    const char *env = getenv("VEIL_THREADS");
    if (env && *env) n = strtol(env, NULL, 10);
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    if (n > 256) n = 256;
    if ((size_t)n > max_batch) n = (long)max_batch;
    return (unsigned)n;
}

static void cpu_keys_free(veil_backend_keys *keys) {
    cpu_keys *c = keys->impl;
    if (!c) return;
    if (c->ctx)
        for (unsigned t = 0; t < c->n_threads; t++)
            veil_pbs_ctx_free(c->ctx[t]);
    free(c->ctx);
    free(c);
    keys->impl = NULL;
}

static veil_status cpu_keys_new(veil_backend *be, veil_backend_keys *keys, size_t max_batch) {
    const veil_eval_key *ek = keys->ek;
    if (!ek->bsk_fourier)
        return veil_error(VEIL_ERR_ARG, "cpu keys: evaluation key has no Fourier bootstrapping "
                                        "key (call veil_eval_key_prepare)");
    cpu_keys *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "cpu keys: out of memory");
    keys->impl = c;
    c->n_threads = cpu_thread_count(max_batch);
    c->ctx = calloc(c->n_threads, sizeof *c->ctx);
    if (!c->ctx) {
        cpu_keys_free(keys);
        return veil_error(VEIL_ERR_NOMEM, "cpu keys: out of memory");
    }
    for (unsigned t = 0; t < c->n_threads; t++) {
        veil_status s = veil_pbs_ctx_new(keys->params, &c->ctx[t]);
        if (s != VEIL_OK) {
            cpu_keys_free(keys);
            return s;
        }
    }
    (void)be;
    snprintf(keys->detail, sizeof keys->detail, "%u threads", c->n_threads);
    return VEIL_OK;
}

typedef struct pbs_job {
    veil_backend_keys *keys;
    veil_pbs_ctx *ctx;
    const uint64_t *in;
    uint64_t *out;
    const veil_lut *const *luts;
    const uint32_t *lut_index;
    size_t begin, end, lwe;
} pbs_job;

static void *pbs_worker(void *arg) {
    pbs_job *j = arg;
    for (size_t i = j->begin; i < j->end; i++) {
        const veil_lut *lut = j->luts[j->lut_index ? j->lut_index[i] : 0];
        veil_ks_pbs(j->ctx, j->keys->ek, lut, j->in + i * j->lwe, j->out + i * j->lwe);
    }
    return NULL;
}

static veil_status cpu_ks_pbs(veil_backend_keys *keys, const uint64_t *in, size_t count,
                              const veil_lut *const *luts, size_t n_luts, const uint32_t *lut_index,
                              uint64_t *out) {
    cpu_keys *c = keys->impl;
    (void)n_luts;
    size_t lwe = (size_t)veil_params_big_dim(keys->params) + 1;
    unsigned nt = c->n_threads;
    if ((size_t)nt > count) nt = (unsigned)count;
    pbs_job jobs[256];
    pthread_t tid[256];
    int started[256] = {0};
    for (unsigned t = 0; t < nt; t++) {
        jobs[t] = (pbs_job){.keys = keys,
                            .ctx = c->ctx[t],
                            .in = in,
                            .out = out,
                            .luts = luts,
                            .lut_index = lut_index,
                            .begin = count * t / nt,
                            .end = count * (t + 1) / nt,
                            .lwe = lwe};
    }
    /* Thread 0's share runs here; a thread that cannot start runs here too. */
    for (unsigned t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, pbs_worker, &jobs[t]) == 0;
    if (nt > 0) pbs_worker(&jobs[0]);
    for (unsigned t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            pbs_worker(&jobs[t]);
    }
    return VEIL_OK;
}

static veil_status cpu_linear(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                              size_t in_features, const int64_t *w, const uint64_t *bias,
                              size_t out_features, size_t out_stride, uint64_t *out) {
    const uint32_t d = veil_params_big_dim(keys->params);
    const size_t lwe = (size_t)d + 1;
    for (size_t b = 0; b < batch; b++) {
        const uint64_t *x = in + b * in_features * lwe;
        for (size_t o = 0; o < out_features; o++) {
            uint64_t *y = out + (b * out_stride + o) * lwe;
            veil_lwe_dot(y, x, w + o * in_features, in_features, d);
            if (bias) veil_lwe_add_plain(y, bias[o], d);
        }
    }
    return VEIL_OK;
}

static veil_status cpu_conv2d(veil_backend_keys *keys, const uint64_t *in, size_t batch,
                              const veil_conv2d_shape *s, const int64_t *w, const uint64_t *bias,
                              size_t out_stride, uint64_t *out) {
    const uint32_t d = veil_params_big_dim(keys->params);
    const size_t lwe = (size_t)d + 1;
    uint32_t ho, wo;
    veil_conv2d_out_hw(s, &ho, &wo);
    const size_t per_in = (size_t)s->c_in * s->h_in * s->w_in;
    for (size_t b = 0; b < batch; b++) {
        const uint64_t *x = in + b * per_in * lwe;
        for (uint32_t co = 0; co < s->c_out; co++) {
            const int64_t *wc = w + (size_t)co * s->c_in * s->kh * s->kw;
            for (uint32_t oy = 0; oy < ho; oy++) {
                for (uint32_t ox = 0; ox < wo; ox++) {
                    uint64_t *y = out + (b * out_stride + ((size_t)co * ho + oy) * wo + ox) * lwe;
                    memset(y, 0, sizeof(uint64_t) * lwe);
                    for (uint32_t ci = 0; ci < s->c_in; ci++) {
                        for (uint32_t ky = 0; ky < s->kh; ky++) {
                            int64_t iy = (int64_t)oy * s->stride_h + ky - s->pad_h;
                            if (iy < 0 || iy >= s->h_in) continue;
                            for (uint32_t kx = 0; kx < s->kw; kx++) {
                                int64_t ix = (int64_t)ox * s->stride_w + kx - s->pad_w;
                                if (ix < 0 || ix >= s->w_in) continue;
                                const uint64_t wv =
                                    (uint64_t)wc[((size_t)ci * s->kh + ky) * s->kw + kx];
                                if (!wv) continue;
                                const uint64_t *xc =
                                    x +
                                    (((size_t)ci * s->h_in + (size_t)iy) * s->w_in + (size_t)ix) *
                                        lwe;
                                for (size_t t = 0; t < lwe; t++)
                                    y[t] += wv * xc[t];
                            }
                        }
                    }
                    if (bias) y[d] += bias[co];
                }
            }
        }
    }
    return VEIL_OK;
}

static void cpu_free(veil_backend *be) {
    (void)be;
}

static const struct veil_backend_i cpu_iface = {
    /* .name      = */ "cpu",
    /* .free      = */ cpu_free,
    /* .keys_new  = */ cpu_keys_new,
    /* .keys_free = */ cpu_keys_free,
    /* .ks_pbs    = */ cpu_ks_pbs,
    /* .linear    = */ cpu_linear,
    /* .conv2d    = */ cpu_conv2d,
};

veil_status veil_backend_cpu_init(veil_backend *be) {
    be->iface = &cpu_iface;
    be->ctx = NULL;
    snprintf(be->describe, sizeof be->describe, "cpu: %u threads (FFT: %s)",
             cpu_thread_count(SIZE_MAX), veil_fft_path_name(veil_fft_path_default()));
    return VEIL_OK;
}
