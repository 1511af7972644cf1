/* wop_plan_common.h — shared by test_wop_program (the cpu backend) and
 * test_gpu_ops (cuda): a program with WoP lookups (one input, one output)
 * run encrypted through a copy of a backend whose interface counts what the
 * executor asks of it (backend_internal.h):
 *   - veil_plan_new makes one WoP table set per WoP node (tables_new with
 *     t->wop: the node's own tables, n_tables of 2^in_bits entries, its
 *     partition and output Delta);
 *   - veil_plan_execute makes no tables of any kind, and every wop_pbs call
 *     reads a set veil_plan_new made (which node's set is not checked: the
 *     programs here have one WoP node, and a wrong set would show in the
 *     decryptions);
 *   - veil_plan_free frees every set it made; a KS-PBS refuses a WoP set;
 * each run's decryptions are compared with simulate; then the same program
 * on a copy without the WoP op is refused at plan time, naming the layer. */
#ifndef VEIL_TESTS_WOP_PLAN_COMMON_H
#define VEIL_TESTS_WOP_PLAN_COMMON_H

#include "testutil.h"
#include "veil/exec.h"
#include "veil/program.h"
#include "../host/backend_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WOP_PLAN_MAX_MADE 16

static double wop_plan_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct wop_count {
    const struct veil_backend_i *base;                  /* the backend's own interface */
    size_t tables_new;                                  /* every tables set made */
    size_t wop_new, wop_free;                           /* WoP sets made and freed */
    const veil_backend_tables *made[WOP_PLAN_MAX_MADE]; /* the WoP sets made */
    size_t planned;                                     /* of them, by veil_plan_new */
    size_t wop_pbs;                                     /* wop_pbs calls */
    size_t wop_pbs_planned;                             /* of them, reading a planned set */
} wop_count;

static wop_count WOP_COUNT;

static veil_status wc_tables_new(veil_backend_keys *keys, veil_backend_tables *t,
                                 const veil_lut *const *luts, const uint32_t *index) {
    const veil_status st = WOP_COUNT.base->tables_new(keys, t, luts, index);
    if (st != VEIL_OK) return st;
    WOP_COUNT.tables_new++;
    if (t->wop && WOP_COUNT.wop_new < WOP_PLAN_MAX_MADE) WOP_COUNT.made[WOP_COUNT.wop_new] = t;
    WOP_COUNT.wop_new += t->wop != NULL;
    return st;
}

static void wc_tables_free(veil_backend_keys *keys, veil_backend_tables *t) {
    WOP_COUNT.wop_free += t->wop != NULL;
    WOP_COUNT.base->tables_free(keys, t);
}

static veil_status wc_wop_pbs(veil_backend_keys *keys, const veil_backend_tables *t,
                              const uint64_t *in, size_t count, uint64_t *out) {
    WOP_COUNT.wop_pbs++;
    for (size_t k = 0; k < WOP_COUNT.planned; k++)
        WOP_COUNT.wop_pbs_planned += WOP_COUNT.made[k] == t;
    return WOP_COUNT.base->wop_pbs(keys, t, in, count, out);
}

/* 1 when node n's WoP set is among those made: its own tables as they are. */
static int wop_plan_made_for(const veil_program *p, const veil_node *n) {
    for (size_t k = 0; k < WOP_COUNT.wop_new && k < WOP_PLAN_MAX_MADE; k++) {
        const veil_backend_tables *t = WOP_COUNT.made[k];
        if (t->wop == n->tables && t->n_luts == n->n_tables && t->wop_w == n->in_bits &&
            t->wop_size == n->size && t->wop_inner == n->table_inner &&
            t->partition == (p->n_partitions ? n->partition : 0) &&
            t->out_delta == veil_node_delta(n))
            return 1;
    }
    return 0;
}

/* n samples of x (input 0, sample-major), encrypted, on a backend of kind:
 * one plan of batch n, executed `runs` times; *equal counts the decryptions
 * equal to simulate's (sim gets them: n * output size values) over every
 * run; *seconds the first execute's. Returns 0 when a step failed (the
 * callers assert it fatally: they run only where the backend can be made),
 * else 1. */
static int wop_plan_run(veil_backend_kind kind, const veil_program *p, const int64_t *x, size_t n,
                        unsigned runs, int64_t *sim, size_t *equal, double *seconds) {
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(70 + i, s[i]);
    veil_backend *be = NULL;
    *equal = 0;
    *seconds = 0;
    if (veil_backend_new(kind, &be) != VEIL_OK) return 0;
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    veil_plan *plan = NULL;
    const size_t lwe = veil_program_ct_words(p), in_sz = veil_program_input_size(p, 0),
                 out_sz = veil_program_output_size(p, 0);
    uint64_t *cin = malloc(n * in_sz * lwe * 8), *cout = malloc(n * out_sz * lwe * 8);
    int64_t *dec = malloc(n * out_sz * 8);
    CU_ASSERT_FATAL(cin && cout && dec);
    size_t wop = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        wop += p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].wop;
    CU_ASSERT_FATAL(wop >= 1 && wop <= WOP_PLAN_MAX_MADE);
    CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, &x, n, &sim, NULL, NULL), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_program_keygen(p, s[0], &sk), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(
        veil_program_eval_key_new(p, sk, veil_backend_key_domains(be), s[1], s[2], &ek), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_encryptor_new(s[3], s[4], &enc), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_program_encrypt(p, enc, sk, 0, x, n, cin), VEIL_OK);
    /* the counting copy of the backend (it shares the context; only be is
     * freed) */
    memset(&WOP_COUNT, 0, sizeof WOP_COUNT);
    WOP_COUNT.base = be->iface;
    struct veil_backend_i counting = *be->iface;
    counting.tables_new = wc_tables_new;
    counting.tables_free = wc_tables_free;
    counting.wop_pbs = wc_wop_pbs;
    veil_backend counted = *be;
    counted.iface = &counting;
    const veil_status pst = veil_plan_new(p, ek, &counted, n, &plan);
    if (pst != VEIL_OK) fprintf(stderr, "\n  plan: %s", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(pst, VEIL_OK);
    /* at plan time: one WoP set a WoP node, its own tables */
    CU_ASSERT_EQUAL_FATAL(WOP_COUNT.wop_new, wop);
    WOP_COUNT.planned = WOP_COUNT.wop_new;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].wop)
            CU_ASSERT(wop_plan_made_for(p, &p->nodes[i]));
    /* WoP tables are the WoP-PBS's only */
    veil_backend_buffer *b1 = NULL, *b2 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_backend_buffer_new(WOP_COUNT.made[0]->keys, 1, &b1), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backend_buffer_new(WOP_COUNT.made[0]->keys, 1, &b2), VEIL_OK);
    CU_ASSERT_EQUAL(veil_backend_ks_pbs(WOP_COUNT.made[0], b1, 1, b2), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "WoP-PBS tables"));
    veil_backend_buffer_free(b1);
    veil_backend_buffer_free(b2);
    const size_t made_at_plan = WOP_COUNT.tables_new;
    for (unsigned r = 0; r < runs; r++) {
        const double t0 = wop_plan_now();
        const veil_status st = veil_plan_execute(plan, (const uint64_t *const *)&cin, n, &cout);
        if (r == 0) *seconds = wop_plan_now() - t0;
        if (st != VEIL_OK) fprintf(stderr, "\n  execute: %s", veil_error_message());
        CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
        CU_ASSERT_EQUAL_FATAL(veil_program_decrypt(p, sk, 0, cout, n, dec), VEIL_OK);
        for (size_t i = 0; i < n * out_sz; i++) {
            if (dec[i] != sim[i])
                fprintf(stderr, "\n  run %u, value %zu (x = %lld): encrypted %lld, simulate %lld",
                        r, i, (long long)x[i % (n * in_sz)], (long long)dec[i], (long long)sim[i]);
            *equal += dec[i] == sim[i];
        }
    }
    /* while running: no tables made, every lookup through the plan's sets */
    CU_ASSERT_EQUAL(WOP_COUNT.tables_new, made_at_plan);
    CU_ASSERT_EQUAL(WOP_COUNT.wop_pbs, runs * wop);
    CU_ASSERT_EQUAL(WOP_COUNT.wop_pbs_planned, WOP_COUNT.wop_pbs);
    veil_plan_free(plan);
    plan = NULL;
    CU_ASSERT_EQUAL(WOP_COUNT.wop_free, WOP_COUNT.wop_new);
    printf("\n  %s: %zu WoP table set(s) made at plan time, %zu wop_pbs call(s) in %u run(s), "
           "all reading them",
           veil_backend_name(be), WOP_COUNT.planned, WOP_COUNT.wop_pbs, runs);
    /* a backend without the op: refused at plan time, naming the layer */
    struct veil_backend_i no_wop = *be->iface;
    no_wop.wop_pbs = NULL;
    veil_backend plain = *be;
    plain.iface = &no_wop;
    CU_ASSERT_EQUAL(veil_plan_new(p, ek, &plain, n, &plan), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "layer 0001_lut"));
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "WoP-PBS"));
    veil_backend_free(be);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    free(cin);
    free(cout);
    free(dec);
    return 1;
}

#endif
