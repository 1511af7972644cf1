/* One classic PBS spread over several threads (veil/tfhe.h veil_pbs_split):
 * the k + 1 columns of the accumulator are cut into one contiguous share per
 * thread. Per CMux each thread multiplies-adds its columns from every digit
 * spectrum (the GGSW's rows in order, from +0.0: mac_ggsw's sum), inverts
 * them into the accumulator, then rotates, decomposes and forwards its
 * columns for the next CMux into the other of two spectrum buffers, and
 * waits at one barrier. Two buffers make one barrier enough: a thread that
 * passes barrier i writes buffer i % 2 only after every thread has arrived
 * at barrier i, i.e. has finished reading it (CMux i's multiply-add comes
 * before its forward for CMux i + 1). Every column sees the operations of
 * pbs.c's cmux_step in the same order, so the result is the one-thread PBS's,
 * bit for bit, for any thread count. */
#define _GNU_SOURCE
#include "internal.h"
#include "fft/fft_internal.h"
#include "veil/fft.h"
#include "veil/tfhe.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A centralised barrier: the last thread in bumps the generation; the others
 * spin on it with a pause, then (a pure spin starves the thread it waits for
 * when the machine is oversubscribed) either yield in a loop or sleep on a
 * condition variable until the last one wakes them. Yielding keeps the
 * waiter runnable, competing for a core with the very thread it waits for;
 * sleeping leaves the core to it. Measured (bench_pbs_split, 2 cores at load
 * 3, docs/results/amd-cpu-split1.json) the two were level within the noise,
 * a pure spin 1.15-3.5x slower than either. Sleepers
 * announce themselves (seq_cst, as the generation's store): the last thread
 * in locks and broadcasts only when one may be asleep. Own cache lines. */
typedef struct split_sync {
    _Alignas(64) atomic_uint count;
    _Alignas(64) atomic_uint gen;
    _Alignas(64) atomic_uint go; /* run number the workers may start */
    _Alignas(64) atomic_uint sleepers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    unsigned n;
    uint32_t spins;
    int sleep; /* after the spins: 1 sleep, 0 yield */
} split_sync;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Waits until *v != old (v: gen or go, both announced by sync_announce). */
static void sync_wait_change(split_sync *b, atomic_uint *v, unsigned old) {
    for (uint32_t s = 0; atomic_load(v) == old;) {
        if (s < b->spins) {
            cpu_relax();
            s++;
        } else if (!b->sleep) {
            sched_yield();
        } else {
            pthread_mutex_lock(&b->lock);
            atomic_fetch_add(&b->sleepers, 1);
            while (atomic_load(v) == old)
                pthread_cond_wait(&b->wake, &b->lock);
            atomic_fetch_sub(&b->sleepers, 1);
            pthread_mutex_unlock(&b->lock);
        }
    }
}

/* *v = value, waking any sleeper: the store and the sleepers' count are
 * seq_cst, so either the sleeper sees the value before it waits or this
 * sees the sleeper and broadcasts under the lock it waits with. */
static void sync_announce(split_sync *b, atomic_uint *v, unsigned value) {
    atomic_store(v, value);
    if (atomic_load(&b->sleepers)) {
        pthread_mutex_lock(&b->lock);
        pthread_cond_broadcast(&b->wake);
        pthread_mutex_unlock(&b->lock);
    }
}

static void barrier_wait(split_sync *b) {
    const unsigned g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1 == b->n) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        sync_announce(b, &b->gen, g + 1);
        return;
    }
    sync_wait_change(b, &b->gen, g);
}

typedef struct split_worker {
    struct veil_pbs_split *sp;
    unsigned index;
    veil_fft *fft;  /* its own: the FFTW path's plans have buffers */
    uint64_t *diff; /* fused: N words; FFTW path: l N digits */
    pthread_t tid;
} split_worker;

struct veil_pbs_split {
    const veil_params *params;
    unsigned n_threads; /* min(threads asked, k + 1): a column is the unit */
    const veil_fft_kernels *kern;
    int fused; /* a veil FFT path: forward_digits, as cmux_step */
    split_worker *w;
    uint32_t *ms;    /* n + 1 */
    uint64_t *small; /* n + 1 */
    uint64_t *acc;   /* (k+1) N */
    double *fd[2];   /* (k+1) l N each: the digit spectra, double-buffered */
    double *facc;    /* (k+1) N */
    split_sync *sync;
    /* the run in progress */
    const veil_pbs_key *pk;
    unsigned run_threads;
    unsigned run_id;
#ifdef __linux__
    cpu_set_t allowed; /* the caller's CPUs at the run's start */
    int caller_cpu;
#endif
};

#define SPLIT_SPINS_DEFAULT 4096u
#define SPLIT_SLEEP_DEFAULT 1

veil_status veil_pbs_split_new(const veil_params *p, unsigned threads, veil_pbs_split **out) {
    if (!p || !out || threads == 0)
        return veil_error(VEIL_ERR_ARG, "veil_pbs_split_new: NULL argument or 0 threads");
    if (p->grouping >= 2)
        return veil_error(VEIL_ERR_UNSUPPORTED,
                          "veil_pbs_split_new: %s is a multi-bit set (grouping %u): only the "
                          "classic blind rotation is split",
                          p->id, p->grouping);
    veil_pbs_split *sp = calloc(1, sizeof *sp);
    if (!sp) return veil_error(VEIL_ERR_NOMEM, "veil_pbs_split_new: out of memory");
    const size_t N = p->poly_size, k1 = p->glwe_dim + 1, l = p->pbs_level;
    const size_t n1 = (size_t)p->lwe_dim + 1;
    sp->params = p;
    sp->n_threads = threads < k1 ? threads : (unsigned)k1;
    veil_status s = VEIL_OK;
    sp->w = calloc(sp->n_threads, sizeof *sp->w);
    sp->sync = aligned_alloc(64, (sizeof(split_sync) + 63) / 64 * 64);
    sp->ms = malloc(sizeof(uint32_t) * n1);
    sp->small = malloc(sizeof(uint64_t) * n1);
    sp->acc = malloc(sizeof(uint64_t) * k1 * N);
    sp->fd[0] = veil_fft_alloc(sizeof(double) * k1 * l * N);
    sp->fd[1] = veil_fft_alloc(sizeof(double) * k1 * l * N);
    sp->facc = veil_fft_alloc(sizeof(double) * k1 * N);
    if (!sp->w || !sp->sync || !sp->ms || !sp->small || !sp->acc || !sp->fd[0] || !sp->fd[1] ||
        !sp->facc)
        s = veil_error(VEIL_ERR_NOMEM, "veil_pbs_split_new: out of memory");
    if (sp->sync) {
        memset(sp->sync, 0, sizeof *sp->sync);
        sp->sync->spins = SPLIT_SPINS_DEFAULT;
        sp->sync->sleep = SPLIT_SLEEP_DEFAULT;
        if (pthread_mutex_init(&sp->sync->lock, NULL) != 0) {
            free(sp->sync);
            sp->sync = NULL;
        } else if (pthread_cond_init(&sp->sync->wake, NULL) != 0) {
            pthread_mutex_destroy(&sp->sync->lock);
            free(sp->sync);
            sp->sync = NULL;
        }
    }
    for (unsigned t = 0; s == VEIL_OK && t < sp->n_threads; t++) {
        sp->w[t].sp = sp;
        sp->w[t].index = t;
        s = veil_fft_new(p->poly_size, &sp->w[t].fft);
        if (s != VEIL_OK) break;
        sp->w[t].diff = malloc(sizeof(uint64_t) * l * N);
        if (!sp->w[t].diff) s = veil_error(VEIL_ERR_NOMEM, "veil_pbs_split_new: out of memory");
    }
    if (s == VEIL_OK) {
        sp->kern = veil_fft_loop_kernels(sp->w[0].fft);
        sp->fused = veil_fft_path_of(sp->w[0].fft) != VEIL_FFT_FFTW;
    }
    if (s != VEIL_OK) {
        veil_pbs_split_free(sp);
        return s;
    }
    *out = sp;
    return VEIL_OK;
}

void veil_pbs_split_free(veil_pbs_split *sp) {
    if (!sp) return;
    if (sp->w)
        for (unsigned t = 0; t < sp->n_threads; t++) {
            veil_fft_free(sp->w[t].fft);
            free(sp->w[t].diff);
        }
    free(sp->w);
    if (sp->sync) {
        pthread_cond_destroy(&sp->sync->wake);
        pthread_mutex_destroy(&sp->sync->lock);
    }
    free(sp->sync);
    free(sp->ms);
    free(sp->small);
    free(sp->acc);
    veil_fft_dealloc(sp->fd[0]);
    veil_fft_dealloc(sp->fd[1]);
    veil_fft_dealloc(sp->facc);
    free(sp);
}

unsigned veil_pbs_split_threads(const veil_pbs_split *sp) {
    return sp->n_threads;
}

void veil_pbs_split_set_wait(veil_pbs_split *sp, uint32_t spins, int sleep) {
    sp->sync->spins = spins;
    sp->sync->sleep = sleep != 0;
}

/* Column q's digit spectra for the CMux that rotates by a: cmux_step's
 * operations (fused: rotate, then forward_digits; FFTW: decompose_rotated,
 * then a transform per level) into fd + q l N. */
static void split_forward(veil_pbs_split *sp, split_worker *w, uint32_t q, uint32_t a, double *fd) {
    const veil_params *p = sp->params;
    const uint32_t N = p->poly_size, l = p->pbs_level;
    const uint64_t *col = sp->acc + (size_t)q * N;
    double *dst = fd + (size_t)q * l * N;
    if (sp->fused) {
        sp->kern->rotate_sub(col, N, a, w->diff);
        veil_fft_forward_digits(w->fft, w->diff, p->pbs_base_log, l, dst);
    } else {
        int64_t *digits = (int64_t *)w->diff;
        sp->kern->decompose_rotated(col, N, a, p->pbs_base_log, l, digits);
        for (uint32_t j = 0; j < l; j++)
            veil_fft_forward_i64(w->fft, digits + (size_t)j * N, dst + (size_t)j * N);
    }
}

/* facc[q] = sum_r fd[r] ggsw[r k1 + q] for q in [q0, q1), r = 0, 1, ... from
 * +0.0 with mac's operations: mac_ggsw's bits (fft_internal.h). All columns:
 * mac_ggsw itself; a share: mac over whole polynomials where the GGSW keeps
 * them one after another, over its blocks of 8 slots where it interleaves
 * them (VEIL_FFT_GGSW_BLOCK). */
static void split_mac(veil_pbs_split *sp, const double *fd, const double *ggsw, uint32_t q0,
                      uint32_t q1) {
    const veil_params *p = sp->params;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, rows = k1 * p->pbs_level;
    const uint32_t polys = rows * k1;
    const veil_fft_kernels *kr = sp->kern;
    if (q0 == 0 && q1 == k1) {
        kr->mac_ggsw(sp->facc, fd, ggsw, rows, k1, N);
        return;
    }
    for (uint32_t q = q0; q < q1; q++) {
        double *acc = sp->facc + (size_t)q * N;
        memset(acc, 0, sizeof(double) * N);
        if (polys <= VEIL_FFT_GGSW_STREAMS) {
            for (uint32_t r = 0; r < rows; r++)
                kr->mac(acc, fd + (size_t)r * N,
                        ggsw + VEIL_FFT_GGSW_BLOCK(polys, N, 0, r * k1 + q), N);
            continue;
        }
        for (uint32_t b = 0; b < N / 16; b++)
            for (uint32_t r = 0; r < rows; r++)
                kr->mac(acc + 16 * (size_t)b, fd + (size_t)r * N + 16 * (size_t)b,
                        ggsw + VEIL_FFT_GGSW_BLOCK(polys, N, b, r * k1 + q), 16);
    }
}

static uint32_t next_cmux(const uint32_t *ms, uint32_t i, uint32_t n) {
    while (i < n && !ms[i])
        i++;
    return i;
}

/* Thread t's share of the blind rotation: columns [q0, q1). Every thread
 * walks the same CMuxes (the switched mask is shared), so all pass the same
 * number of barriers. */
static void split_work(veil_pbs_split *sp, split_worker *w) {
    const veil_params *p = sp->params;
    const uint32_t N = p->poly_size, k1 = p->glwe_dim + 1, n = p->lwe_dim;
    const size_t gw = (size_t)k1 * p->pbs_level * k1 * N;
    const unsigned T = sp->run_threads;
    const uint32_t q0 = (uint32_t)((size_t)k1 * w->index / T),
                   q1 = (uint32_t)((size_t)k1 * (w->index + 1) / T);
    uint32_t i = next_cmux(sp->ms, 0, n);
    if (i >= n) return;
    unsigned cur = 0;
    for (uint32_t q = q0; q < q1; q++)
        split_forward(sp, w, q, sp->ms[i], sp->fd[cur]);
    barrier_wait(sp->sync);
    while (i < n) {
        const uint32_t next = next_cmux(sp->ms, i + 1, n);
        split_mac(sp, sp->fd[cur], sp->pk->bsk_fourier + (size_t)i * gw, q0, q1);
        for (uint32_t q = q0; q < q1; q++)
            veil_fft_backward_add_torus(w->fft, sp->facc + (size_t)q * N, sp->acc + (size_t)q * N);
        if (next < n) {
            for (uint32_t q = q0; q < q1; q++)
                split_forward(sp, w, q, sp->ms[next], sp->fd[cur ^ 1]);
            barrier_wait(sp->sync);
        }
        cur ^= 1;
        i = next;
    }
}

/* Worker t on the t-th of the caller's allowed CPUs after the one the
 * caller runs on (cyclically; none when it has only one). Left to itself,
 * Linux put a fresh worker on its creator's CPU, where the two shared one
 * core: on the 2 loaded cores here a spin-only barrier took 3.4 s a PBS
 * unpinned, 81 ms pinned (tfhers-2_2; one thread: 19-22 ms). */
static void pin_worker(const veil_pbs_split *sp, unsigned t) {
#ifdef __linux__
    const int count = CPU_COUNT(&sp->allowed);
    if (sp->caller_cpu < 0 || count < 2) return;
    int cpu = sp->caller_cpu;
    for (unsigned step = 0; step < t % (unsigned)count;) {
        cpu = (cpu + 1) % CPU_SETSIZE;
        if (CPU_ISSET(cpu, &sp->allowed)) step++;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    (void)pthread_setaffinity_np(pthread_self(), sizeof one, &one); /* a hint: ignore failure */
#else
    (void)sp, (void)t;
#endif
}

static void *split_thread(void *arg) {
    split_worker *w = arg;
    veil_pbs_split *sp = w->sp;
    pin_worker(sp, w->index);
    /* released once the caller knows how many threads started */
    sync_wait_change(sp->sync, &sp->sync->go, sp->run_id - 1);
    if (w->index < sp->run_threads) split_work(sp, w);
    return NULL;
}

void veil_pbs_split_run(veil_pbs_split *sp, const veil_pbs_key *pk, const veil_lut *lut,
                        const uint64_t *in, uint64_t *out) {
    const veil_params *p = sp->params;
    VEIL_ASSERT(pk->params == p && pk->bsk_fourier != NULL &&
                pk->in_dim >= veil_params_big_dim(p) && lut->poly_size == p->poly_size);
    const uint32_t N = p->poly_size, k = p->glwe_dim, n = p->lwe_dim;
    /* pbs_lanes's start (copied, as the extraction below): the signed-input
     * offset on the body, the switch, acc = (0, ..., 0, X^-b * V) */
    memcpy(sp->small, in, sizeof(uint64_t) * n);
    sp->small[n] = in[n] + lut->in_offset;
    veil_modulus_switch(p, sp->small, sp->ms);
    memset(sp->acc, 0, sizeof(uint64_t) * k * N);
    veil_poly_mul_monomial(sp->acc + (size_t)k * N, lut->poly, N, (2 * N - sp->ms[n]) % (2 * N));

    sp->pk = pk;
#ifdef __linux__
    sp->caller_cpu = sched_getcpu();
    if (sp->caller_cpu < 0 || sched_getaffinity(0, sizeof sp->allowed, &sp->allowed) != 0)
        sp->caller_cpu = -1;
#endif
    sp->run_id++;
    sp->run_threads = sp->n_threads; /* lowered below if a thread cannot start */
    unsigned started = 1;
    while (started < sp->n_threads &&
           pthread_create(&sp->w[started].tid, NULL, split_thread, &sp->w[started]) == 0)
        started++;
    sp->run_threads = started;
    sp->sync->n = started;
    atomic_store_explicit(&sp->sync->count, 0, memory_order_relaxed);
    sync_announce(sp->sync, &sp->sync->go, sp->run_id);
    split_work(sp, &sp->w[0]);
    for (unsigned t = 1; t < started; t++)
        pthread_join(sp->w[t].tid, NULL);

    /* sample extract the constant coefficient: pbs_lanes's lines, copied
     * while pbs.c is being reworked (branch kern); one helper of pbs.c for
     * both once that lands */
    const uint64_t *acc = sp->acc;
    for (uint32_t q = 0; q < k; q++) {
        const uint64_t *A = acc + (size_t)q * N;
        uint64_t *o = out + (size_t)q * N;
        o[0] = A[0];
        for (uint32_t j = 1; j < N; j++)
            o[j] = 0 - A[N - j];
    }
    if (pk->in_dim > (size_t)k * N)
        memset(out + (size_t)k * N, 0, sizeof(uint64_t) * (pk->in_dim - (size_t)k * N));
    out[pk->in_dim] = acc[(size_t)k * N];
}
