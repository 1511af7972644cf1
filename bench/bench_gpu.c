/* bench_gpu — batch throughput and latency of the backends.
 *
 * One run measures, for the chosen backend (auto: cuda when present):
 *   - KS-PBS through the backend interface on its buffers (the inputs uploaded
 *     once, as a plan's values stay on the device; each timed call ends with
 *     the download of one ciphertext, which waits for the device) for batch
 *     sizes 1, 4, 16, ... up to --max-batch (65536 on the GPU, 256 on the CPU
 *     by default), with a decryption check of each batch;
 *   - dense-layer throughput through the backend (ciphertext multiply-adds/s),
 *     likewise on buffers;
 *   - on cuda also, through the kernel ABI with device-resident data: PBS alone
 *     and keyswitch alone, per batch size.
 * JSON to stdout or --out FILE; progress on stderr; the backend and device
 * that ran are printed and stored.
 *
 * usage: bench_gpu [--backend auto|cpu|cuda|all] [--params ID] [--max-batch B]
 *                  [--cpu-max-batch B] [--min-time S] [--out FILE] (--help)
 * --params: a classic or a multi-bit set (tfhers-mb4-2_2-tuniform-2m128: the
 * kernel sweeps run veil_cuda_pbs_multibit on the standard-domain key). */
#include "veil/atomic_file.h"
#include "veil/backend.h"
#include "veil/compile_options.h"
#include "../host/backend_internal.h"
#include "veil/tfhe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef VEIL_WITH_CUDA
#include <cuda_runtime_api.h>

#include "veil/cuda.h"
#endif

/* The defaults, here once: the options and --help read them. */
#define DEFAULT_PARAMS "tfhers-2_2-tuniform-2m128"
#define DEFAULT_GPU_MAX 65536
#define DEFAULT_CPU_MAX 256
#define DEFAULT_MIN_TIME 0.5

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int die(const char *what) {
    fprintf(stderr, "bench_gpu: %s: %s\n", what, veil_error_message());
    return 1;
}

typedef struct {
    size_t batch;
    double mean_s, min_s;
    int reps;
    size_t errors, checked;
} point;

static void print_points(FILE *o, const char *name, const point *pt, size_t n, int last) {
    fprintf(o, "      \"%s\": [\n", name);
    for (size_t i = 0; i < n; i++)
        fprintf(o,
                "        {\"batch\": %zu, \"latency_ms\": %.4f, \"min_ms\": %.4f, \"per_second\": "
                "%.1f, \"reps\": %d, \"checked\": %zu, \"errors\": %zu}%s\n",
                pt[i].batch, 1e3 * pt[i].mean_s, 1e3 * pt[i].min_s,
                (double)pt[i].batch / pt[i].mean_s, pt[i].reps, pt[i].checked, pt[i].errors,
                i + 1 < n ? "," : "");
    fprintf(o, "      ]%s\n", last ? "" : ",");
}

/* One untimed warm-up call of fn (caches, lazily built plans, the device's
 * clocks), then timed calls: at least 3, more until min_time has passed, at
 * most 20. */
typedef int (*run_fn)(void *ctx, size_t batch);
static int measure(run_fn fn, void *ctx, size_t batch, double min_time, point *pt) {
    if (fn(ctx, batch)) return 1;
    double total = 0, best = 0;
    int reps = 0;
    while (reps < 3 || (reps < 20 && total < min_time)) {
        double t = now_s();
        if (fn(ctx, batch)) return 1;
        t = now_s() - t;
        total += t;
        if (reps == 0 || t < best) best = t;
        reps++;
    }
    /* checked/errors stay 0 unless the caller decrypts (kernel points: not) */
    *pt = (point){.batch = batch, .mean_s = total / reps, .min_s = best, .reps = reps};
    return 0;
}

typedef struct {
    const veil_backend_tables *t;
    const veil_backend_buffer *in;
    veil_backend_buffer *out;
    const veil_secret_key *sk;
    uint64_t *host; /* 256 ciphertexts: the checked outputs */
    const int64_t *msg;
    size_t distinct, lwe;
    unsigned bits;
} kspbs_ctx;

static int run_kspbs(void *vc, size_t batch) {
    kspbs_ctx *c = vc;
    if (veil_backend_ks_pbs(c->t, c->in, batch, c->out) != VEIL_OK ||
        veil_backend_buffer_download(c->out, 1, c->host) != VEIL_OK)
        return die("ks_pbs");
    return 0;
}

static size_t check_kspbs(kspbs_ctx *c, size_t batch, size_t *checked) {
    size_t errors = 0, n = batch < 256 ? batch : 256;
    if (veil_backend_buffer_download(c->out, n, c->host) != VEIL_OK) {
        die("ks_pbs download");
        *checked = 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t want = (c->msg[i % c->distinct] + 1) & ((1 << c->bits) - 1);
        int64_t got = veil_decode(veil_phase_big(c->sk, c->host + i * c->lwe), c->bits, 0);
        errors += got != want;
    }
    *checked = n;
    return errors;
}

typedef struct {
    const veil_backend_weights *w;
    const veil_backend_buffer *in;
    veil_backend_buffer *out;
    uint64_t *host; /* one ciphertext */
    size_t in_f, out_f;
} linear_ctx;

static int run_linear(void *vc, size_t batch) {
    linear_ctx *c = vc;
    if (veil_backend_linear(c->w, c->in, batch, c->out) != VEIL_OK ||
        veil_backend_buffer_download(c->out, 1, c->host) != VEIL_OK)
        return die("linear");
    return 0;
}

#ifdef VEIL_WITH_CUDA
typedef struct {
    veil_cuda_params p;
    veil_cuda_pbs_buffer *buf;
    uint64_t *d_big, *d_small, *d_ksk, *d_luts, *d_off;
    double *d_bsk;      /* classic: the Fourier BSK */
    uint64_t *d_bsk_mb; /* multi-bit: the standard-domain BSK (group sums on the device) */
    int pbs;            /* 1: PBS, 0: keyswitch */
} kernel_ctx;

static int run_kernel(void *vc, size_t batch) {
    kernel_ctx *c = vc;
    int e;
    if (c->pbs) {
        veil_cuda_lut_set set = {.d_polys = c->d_luts, .d_offsets = c->d_off, .n_luts = 1};
        e = c->d_bsk_mb ? veil_cuda_pbs_multibit(NULL, 0, c->buf, c->d_big, c->d_small, &set,
                                                 c->d_bsk_mb, (uint32_t)batch)
                        : veil_cuda_pbs(NULL, 0, c->buf, c->d_big, c->d_small, &set, c->d_bsk,
                                        (uint32_t)batch);
    } else {
        e = veil_cuda_keyswitch(NULL, 0, &c->p, c->d_small, c->d_big, c->d_ksk, (uint32_t)batch);
    }
    if (!e) e = (int)cudaDeviceSynchronize();
    if (e) {
        fprintf(stderr, "bench_gpu: kernel: %s\n", veil_cuda_error_string(e));
        return 1;
    }
    return 0;
}

/* kernel_sweep's answer for a kernel the set does not run (not a failure) */
#define KERNEL_NOT_FOR_SET (-2)

/* PBS and keyswitch alone, device-resident data, at every batch size of
 * the kind's kernel: the points in pbs[] / ks[], *n_done of them; 0, an
 * error, or KERNEL_NOT_FOR_SET. */
static int kernel_sweep(const veil_eval_key *ek, const veil_lut *lut, const uint64_t *in_small,
                        const uint64_t *in_big, size_t distinct, const size_t *batches,
                        size_t n_batches, double min_time, uint32_t kind, point *pbs, point *ks,
                        size_t *n_done) {
    const veil_params *p = ek->params;
    const veil_pbs_key *pk = veil_eval_key_part(ek, 0);
    kernel_ctx c = {.p = veil_cuda_params_from(p, kind)};
    const size_t maxb = batches[n_batches - 1], big1 = veil_params_big_dim(p) + 1,
                 small1 = p->lwe_dim + 1, bw = veil_eval_key_bsk_words(p),
                 kw = veil_eval_key_ksk_words(p, pk->in_dim);
    uint64_t *d_bsk_std = NULL, zero = 0;
    *n_done = 0;
    /* a kernel this set or device does not run (the fused and cluster
     * kernels past N = 4096, the split kernel below 8192, the fused and split
     * ones for multi-bit sets): said before any key goes to the device */
    size_t need = 0;
    int e = veil_cuda_scratch_pbs(NULL, 0, &c.p, (uint32_t)maxb, NULL, &need, 0);
    if (e == VEIL_CUDA_ERR_UNSUPPORTED) return KERNEL_NOT_FOR_SET;
    if (!e) e = (int)cudaMalloc((void **)&c.d_big, maxb * big1 * 8);
    if (!e) e = (int)cudaMalloc((void **)&c.d_small, maxb * small1 * 8);
    if (!e) e = (int)cudaMalloc((void **)&c.d_ksk, kw * 8);
    if (!e) e = (int)cudaMalloc((void **)&c.d_luts, p->poly_size * 8);
    if (!e) e = (int)cudaMalloc((void **)&c.d_off, 8);
    if (!e && !p->grouping)
        e = (int)cudaMalloc((void **)&c.d_bsk, veil_cuda_bsk_fourier_bytes(&c.p));
    if (!e) e = (int)cudaMalloc((void **)&d_bsk_std, bw * 8);
    if (!e) e = (int)cudaMemcpy(d_bsk_std, pk->bsk, bw * 8, cudaMemcpyHostToDevice);
    if (!e && !p->grouping) e = veil_cuda_bsk_to_fourier(NULL, 0, &c.p, c.d_bsk, d_bsk_std);
    if (p->grouping) { /* the kernels read it as it is */
        c.d_bsk_mb = d_bsk_std;
        d_bsk_std = NULL;
    }
    uint64_t *wide = e ? NULL : malloc(kw * 8); /* the backend's key: veil_keyswitch_key_wide */
    if (!e && !wide) e = 2;                     /* cudaErrorMemoryAllocation */
    if (!e) veil_keyswitch_key_wide(pk, 0, kw, wide);
    if (!e) e = (int)cudaMemcpy(c.d_ksk, wide, kw * 8, cudaMemcpyHostToDevice);
    free(wide);
    if (!e) e = (int)cudaMemcpy(c.d_luts, lut->poly, p->poly_size * 8, cudaMemcpyHostToDevice);
    if (!e) e = (int)cudaMemcpy(c.d_off, &zero, 8, cudaMemcpyHostToDevice);
    for (size_t b = 0; !e && b < maxb; b += distinct) {
        size_t m = maxb - b < distinct ? maxb - b : distinct;
        e = (int)cudaMemcpy(c.d_small + b * small1, in_small, m * small1 * 8,
                            cudaMemcpyHostToDevice);
        if (!e)
            e = (int)cudaMemcpy(c.d_big + b * big1, in_big, m * big1 * 8, cudaMemcpyHostToDevice);
    }
    if (!e) e = veil_cuda_scratch_pbs(NULL, 0, &c.p, (uint32_t)maxb, &c.buf, NULL, 1);
    cudaFree(d_bsk_std);
    for (size_t i = 0; !e && i < n_batches; i++) {
        c.pbs = 1;
        if (measure(run_kernel, &c, batches[i], min_time, &pbs[i])) e = 1;
        /* keyswitch overwrites d_small with equivalent inputs for the next PBS */
        c.pbs = 0;
        if (!e && measure(run_kernel, &c, batches[i], min_time, &ks[i])) e = 1;
        if (!e) {
            fprintf(stderr, "  kernels batch %6zu: PBS (%s) %9.1f/s (%.3f ms), KS %10.1f/s\n",
                    batches[i], veil_cuda_pbs_kernel_name(c.buf), batches[i] / pbs[i].mean_s,
                    1e3 * pbs[i].mean_s, batches[i] / ks[i].mean_s);
            *n_done = i + 1;
        }
    }
    if (e > 1) fprintf(stderr, "bench_gpu: kernel sweep: %s\n", veil_cuda_error_string(e));
    veil_cuda_cleanup_pbs(NULL, 0, &c.buf);
    cudaFree(c.d_big);
    cudaFree(c.d_small);
    cudaFree(c.d_ksk);
    cudaFree(c.d_luts);
    cudaFree(c.d_off);
    cudaFree(c.d_bsk);
    cudaFree(c.d_bsk_mb);
    return e ? 1 : 0;
}
#endif

typedef struct {
    const veil_params *p;
    const veil_secret_key *sk;
    const veil_eval_key *ek;
    const veil_lut *lut;
    const uint64_t *in; /* max_batch inputs */
    const int64_t *msg;
    size_t distinct, lwe;
    double min_time, keygen_s;
} bench_input;

/* One backend: sweeps, then one JSON object on o. Returns wrong decryptions,
 * or -1 when a part failed (the message on stderr names it; the JSON holds
 * the parts that ran). */
static long bench_backend(FILE *o, veil_backend_kind kind, size_t max_batch,
                          const bench_input *bi) {
    veil_backend *be;
    if (veil_backend_new_env(kind, &be)) return die("backend"), -1;
    const veil_params *p = bi->p;
    const int gpu = !strcmp(veil_backend_name(be), "cuda");
    if (!max_batch) max_batch = gpu ? DEFAULT_GPU_MAX : DEFAULT_CPU_MAX;
    fprintf(stderr, "bench_gpu: backend %s — %s; params %s (n=%u k=%u N=%u), batches up to %zu\n",
            veil_backend_name(be), veil_backend_describe(be), p->id, p->lwe_dim, p->glwe_dim,
            p->poly_size, max_batch);
    double t = now_s();
    veil_backend_keys *keys;
    if (veil_backend_keys_new(be, bi->ek, max_batch, &keys)) {
        veil_backend_free(be);
        return die("keys"), -1;
    }
    const double plan_s = now_s() - t;
    const size_t max_cts = keys->limits.max_pbs;
    char detail[sizeof keys->detail];
    memcpy(detail, keys->detail, sizeof detail);
    fprintf(stderr, "  plan (key upload, buffers) %.2f s, %s, pieces of %zu\n", plan_s, detail,
            max_cts);
    const size_t lwe = bi->lwe, distinct = bi->distinct < max_batch ? bi->distinct : max_batch;
    size_t batches[32], nb = 0;
    for (size_t b = 1; b <= max_batch && nb < 32; b *= 4)
        batches[nb++] = b;
    if (batches[nb - 1] != max_batch && nb < 32) batches[nb++] = max_batch;

    long errors = 0;
    point kp[32];
    size_t nk = 0;
    uint64_t *host = malloc(256 * lwe * 8);
    veil_backend_buffer *d_in = NULL, *d_out = NULL;
    veil_backend_tables *tables = NULL;
    const veil_lut *const luts[1] = {bi->lut};
    if (!host || veil_backend_buffer_new(keys, max_batch, &d_in) ||
        veil_backend_buffer_new(keys, max_batch, &d_out) ||
        veil_backend_buffer_upload(d_in, bi->in, max_batch) ||
        veil_backend_tables_new(keys, 0, luts, 1, NULL, 0, &tables)) {
        die("buffers");
        errors = -1;
    }
    kspbs_ctx kc = {tables, d_in, d_out, bi->sk, host, bi->msg, distinct, lwe, p->precision};
    for (size_t i = 0; errors >= 0 && i < nb; i++) {
        if (measure(run_kspbs, &kc, batches[i], bi->min_time, &kp[i])) break;
        kp[i].errors = check_kspbs(&kc, batches[i], &kp[i].checked);
        errors += (long)kp[i].errors;
        fprintf(stderr, "  ks_pbs batch %6zu: %9.1f/s, latency %.3f ms, errors %zu/%zu\n",
                batches[i], batches[i] / kp[i].mean_s, 1e3 * kp[i].mean_s, kp[i].errors,
                kp[i].checked);
        nk++;
    }
    if (nk < nb) errors = -1;
    veil_backend_tables_free(tables);
    veil_backend_buffer_free(d_in);
    veil_backend_buffer_free(d_out);

    /* Dense layer: in 512 -> out 256 per sample, the same ciphertexts. */
    linear_ctx lc = {NULL, NULL, NULL, host, 512, 256};
    size_t lin_batch = gpu ? 16 : 1;
    uint64_t *lin_in = malloc(lin_batch * lc.in_f * lwe * 8);
    int64_t *w = malloc(lc.in_f * lc.out_f * 8);
    veil_backend_weights *lw = NULL;
    veil_backend_buffer *l_in = NULL, *l_out = NULL;
    point lp = {0};
    int have_linear = 0, part_failed = 0;
    if (lin_in && w && host && errors >= 0) {
        for (size_t i = 0; i < lin_batch * lc.in_f; i++)
            memcpy(lin_in + i * lwe, bi->in + (i % distinct) * lwe, lwe * 8);
        for (size_t i = 0; i < lc.in_f * lc.out_f; i++)
            w[i] = (int64_t)(i * 2654435761u % 15) - 7;
        if (veil_backend_weights_new_dense(keys, w, lc.in_f, lc.out_f, NULL, &lw) ||
            veil_backend_buffer_new(keys, lin_batch * lc.in_f, &l_in) ||
            veil_backend_buffer_new(keys, lin_batch * lc.out_f, &l_out) ||
            veil_backend_buffer_upload(l_in, lin_in, lin_batch * lc.in_f)) {
            die("linear buffers");
            part_failed = 1;
        } else {
            lc.w = lw;
            lc.in = l_in;
            lc.out = l_out;
            if (!measure(run_linear, &lc, lin_batch, bi->min_time, &lp)) {
                have_linear = 1;
                fprintf(stderr, "  linear %zu x %zu, batch %zu: %.3f ms, %.3g ciphertext MACs/s\n",
                        lc.in_f, lc.out_f, lin_batch, 1e3 * lp.mean_s,
                        (double)(lin_batch * lc.in_f * lc.out_f) / lp.mean_s);
            } else {
                part_failed = 1; /* run_linear said why */
            }
        }
    } else if (errors >= 0) {
        fprintf(stderr, "bench_gpu: linear: out of host memory\n");
        part_failed = 1;
    }
    veil_backend_weights_free(lw);
    veil_backend_buffer_free(l_in);
    veil_backend_buffer_free(l_out);
    free(lin_in);
    free(w);
    free(host);
    veil_backend_keys_free(keys);

    point pf[32], pl[32], ps[32], pc[32], ksc[32];
    size_t nf = 0, nl = 0, ns = 0, nc = 0;
#ifdef VEIL_WITH_CUDA
    point ksp[32];
    if (gpu && errors >= 0) {
        uint64_t *small = malloc(distinct * (p->lwe_dim + 1) * 8);
        if (small) {
            for (size_t i = 0; i < distinct; i++)
                veil_keyswitch(veil_eval_key_part(bi->ek, 0), bi->in + i * lwe,
                               small + i * (p->lwe_dim + 1));
            /* every kernel sweep the set runs must finish: a failed one
             * fails the run; a kernel it does not run is skipped, said */
            const struct {
                uint32_t kind;
                const char *name;
                point *pbs, *ks;
                size_t *n;
            } sweeps[] = {{VEIL_CUDA_PBS_FUSED, "fused", pf, ksp, &nf},
                          {VEIL_CUDA_PBS_CLUSTER, "cluster", pl, ksp, &nl},
                          {VEIL_CUDA_PBS_SPLIT, "split", ps, ksp, &ns},
                          {VEIL_CUDA_PBS_CUFFT, "cufft", pc, ksc, &nc}};
            for (size_t k = 0; k < sizeof sweeps / sizeof *sweeps; k++) {
                const int r = kernel_sweep(bi->ek, bi->lut, small, bi->in, distinct, batches, nb,
                                           bi->min_time, sweeps[k].kind, sweeps[k].pbs,
                                           sweeps[k].ks, sweeps[k].n);
                if (r == KERNEL_NOT_FOR_SET) {
                    fprintf(stderr, "  %s kernel: skipped, it does not run %s on this device\n",
                            sweeps[k].name, p->id);
                } else if (r) {
                    fprintf(stderr,
                            "bench_gpu: %s kernel sweep failed after %zu of %zu batch sizes\n",
                            sweeps[k].name, *sweeps[k].n, nb);
                    part_failed = 1;
                }
            }
            free(small);
        } else {
            fprintf(stderr, "bench_gpu: kernel sweeps: out of host memory\n");
            part_failed = 1;
        }
    }
#endif
    fprintf(o, "    {\n      \"backend\": \"%s\",\n      \"device\": \"%s\",\n",
            veil_backend_name(be), veil_backend_describe(be));
    fprintf(o, "      \"plan_s\": %.3f,\n      \"detail\": \"%s\",\n", plan_s, detail);
    if (have_linear)
        fprintf(o,
                "      \"linear\": {\"batch\": %zu, \"in\": %zu, \"out\": %zu, \"latency_ms\": "
                "%.4f, \"ct_macs_per_second\": %.4g},\n",
                lin_batch, lc.in_f, lc.out_f, 1e3 * lp.mean_s,
                (double)(lin_batch * lc.in_f * lc.out_f) / lp.mean_s);
    print_points(o, "ks_pbs", kp, nk, nf == 0 && nl == 0 && ns == 0 && nc == 0);
    if (nf) print_points(o, "pbs_kernel_fused", pf, nf, nl == 0 && ns == 0 && nc == 0);
    if (nl) print_points(o, "pbs_kernel_cluster", pl, nl, ns == 0 && nc == 0);
    if (ns) print_points(o, "pbs_kernel_split", ps, ns, nc == 0);
    if (nc) {
        print_points(o, "pbs_kernel_cufft", pc, nc, 0);
        print_points(o, "keyswitch_kernel", ksc, nc, 1);
    }
    fprintf(o, "    }");
    if (part_failed || errors < 0)
        fprintf(stderr, "bench_gpu: backend %s: a part failed (above)\n", veil_backend_name(be));
    veil_backend_free(be);
    return part_failed ? -1 : errors;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_gpu [--backend auto|cpu|cuda|all] [--params ID] [--max-batch B]\n"
            "                 [--cpu-max-batch B] [--min-time S] [--out FILE]\n"
            "KS-PBS and dense-layer throughput and latency of a backend per batch size\n"
            "(1, 4, 16, ... up to the largest batch); on cuda also PBS and keyswitch alone.\n\n"
            "options:\n"
            "  --backend auto|cpu|cuda|all\n"
            "                  default auto (cuda when present); all: cpu, then cuda when present\n"
            "  --params ID     a classic or multi-bit parameter set (default %s)\n"
            "  --max-batch B   largest batch, 0 to 2^24 (default 0: %d on cuda, --cpu-max-batch\n"
            "                  on the cpu)\n"
            "  --cpu-max-batch B\n"
            "                  largest batch on the cpu (default %d)\n"
            "  --min-time S    seconds each point is timed for at least (3 to 20 calls;\n"
            "                  default %g)\n"
            "  --out FILE      the JSON (default: standard output)\n",
            DEFAULT_PARAMS, DEFAULT_GPU_MAX, DEFAULT_CPU_MAX, DEFAULT_MIN_TIME);
}

int main(int argc, char **argv) {
    const char *backend = "auto", *params_id = DEFAULT_PARAMS, *out_path = NULL;
    size_t max_batch = 0, cpu_max = DEFAULT_CPU_MAX;
    double min_time = DEFAULT_MIN_TIME;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(argv[i], "--params") && i + 1 < argc)
            params_id = argv[++i];
        else if ((!strcmp(argv[i], "--max-batch") || !strcmp(argv[i], "--cpu-max-batch")) &&
                 i + 1 < argc) {
            /* 0: the backend's default; the ceiling keeps batch * ciphertext bytes in size_t */
            uint64_t v;
            if (veil_arg_u64(argv[i], argv[i + 1], 0, (uint64_t)1 << 24, &v) != VEIL_OK) {
                fprintf(stderr, "bench_gpu: %s\n", veil_error_message());
                return 2;
            }
            *(!strcmp(argv[i], "--max-batch") ? &max_batch : &cpu_max) = (size_t)v;
            i++;
        } else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
            if (veil_arg_double("--min-time", argv[++i], 0, 3600, &min_time) != VEIL_OK) {
                fprintf(stderr, "bench_gpu: %s\n", veil_error_message());
                return 2;
            }
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_path = argv[++i];
        else {
            /* --help: the usage on stdout, exit 0; anything else: stderr, 2 */
            const int help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
            usage(help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    /* Which backends: all = cpu, then cuda when present. */
    veil_backend_kind kinds[2];
    size_t maxes[2];
    int n_kinds = 0;
    if (!strcmp(backend, "all")) {
        kinds[n_kinds] = VEIL_BACKEND_CPU;
        maxes[n_kinds++] = cpu_max;
        if (veil_backend_cuda_available(NULL, 0)) {
            kinds[n_kinds] = VEIL_BACKEND_CUDA;
            maxes[n_kinds++] = max_batch;
        }
    } else {
        if (veil_backend_kind_parse(backend, &kinds[0])) return die("--backend"), 2;
        maxes[0] = kinds[0] == VEIL_BACKEND_CPU && !max_batch ? cpu_max : max_batch;
        n_kinds = 1;
    }
    const veil_params *p = veil_params_find_any(params_id); /* multi-bit sets too */
    if (!p) {
        fprintf(stderr, "bench_gpu: unknown parameter set %s\n", params_id);
        return 2;
    }
    /* A backend this machine cannot have fails now, not after the keygen
     * (minutes at N = 32768): scripts/gpu-check.sh --dry-run relies on it */
    for (int k = 0; k < n_kinds; k++) {
        veil_backend_options bo;
        veil_backend_options_default(&bo);
        if (veil_backend_options_from_env(&bo) != VEIL_OK ||
            veil_backend_devices_check(kinds[k], &bo) != VEIL_OK)
            return die("--backend");
    }
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    double t = now_s();
    if (veil_secret_key_new(p, NULL, &sk) || veil_eval_key_new(sk, NULL, NULL, &ek) ||
        veil_encryptor_new(NULL, NULL, &enc))
        return die("keygen");
    const double keygen_s = now_s() - t;
    fprintf(stderr, "bench_gpu: params %s, keygen %.2f s\n", p->id, keygen_s);

    const unsigned bits = p->precision;
    /* 2^precision entries: on the heap, as the sets go up to the poly size's
     * bits (nn-p8-*: 256 entries) */
    int64_t *table = malloc(sizeof(int64_t) << bits);
    if (!table) {
        fprintf(stderr, "bench_gpu: out of host memory for a %u-bit table\n", bits);
        return 1;
    }
    for (unsigned i = 0; i < (1u << bits); i++)
        table[i] = (int64_t)((i + 1) & ((1u << bits) - 1));
    veil_lut *lut;
    const int lut_failed = veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut) != VEIL_OK;
    free(table);
    if (lut_failed) return die("lut");
    size_t biggest = 1;
    for (int k = 0; k < n_kinds; k++) {
        size_t m = maxes[k] ? maxes[k] : 65536;
        if (m > biggest) biggest = m;
    }
    const size_t lwe = veil_params_big_dim(p) + 1, distinct = biggest < 256 ? biggest : 256;
    uint64_t *in = malloc(biggest * lwe * 8);
    int64_t msg[256];
    if (!in) {
        fprintf(stderr, "bench_gpu: out of host memory for %zu ciphertexts\n", biggest);
        return 1;
    }
    for (size_t i = 0; i < distinct; i++) {
        msg[i] = (int64_t)(i * 7 % (1u << bits));
        veil_encrypt_big(enc, sk, veil_encode(msg[i], bits), in + i * lwe);
    }
    for (size_t b = distinct; b < biggest; b++)
        memcpy(in + b * lwe, in + (b % distinct) * lwe, lwe * 8);
    bench_input bi = {p, sk, ek, lut, in, msg, distinct, lwe, min_time, keygen_s};

    /* --out appears whole at the end (veil_atomic_file) */
    veil_atomic_file af = {0};
    if (out_path && veil_atomic_file_open(&af, out_path, 0644) != VEIL_OK) {
        fprintf(stderr, "bench_gpu: %s\n", veil_error_message());
        return 1;
    }
    FILE *o = out_path ? af.f : stdout;
    fprintf(o, "{\n  \"bench\": \"bench_gpu\",\n");
    fprintf(o,
            "  \"params\": {\"id\": \"%s\", \"n\": %u, \"k\": %u, \"N\": %u, \"pbs_level\": %u, "
            "\"pbs_base_log\": %u, \"ks_level\": %u, \"ks_base_log\": %u},\n",
            p->id, p->lwe_dim, p->glwe_dim, p->poly_size, p->pbs_level, p->pbs_base_log,
            p->ks_level, p->ks_base_log);
    fprintf(o, "  \"keygen_s\": %.3f,\n  \"runs\": [\n", keygen_s);
    long errors = 0;
    int failed = 0;
    for (int k = 0; k < n_kinds; k++) {
        long e = bench_backend(o, kinds[k], maxes[k], &bi);
        if (e < 0)
            failed = 1;
        else
            errors += e;
        fprintf(o, "%s\n", k + 1 < n_kinds ? "," : "");
    }
    fprintf(o, "  ]\n}\n");
    if (out_path && veil_atomic_file_commit(&af) != VEIL_OK) {
        fprintf(stderr, "bench_gpu: %s\n", veil_error_message());
        failed = 1;
    }
    free(in);
    veil_lut_free(lut);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    if (errors) fprintf(stderr, "bench_gpu: %ld wrong decryptions\n", errors);
    return errors || failed ? 1 : 0;
}
