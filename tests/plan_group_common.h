/* tests/plan_group_common.h — a plan group against one plan on the same
 * ciphertexts (test_plan_group on the cpu, test_gpu_ops on cuda): keys with
 * fixed seeds, n samples encrypted once; the reference is ONE plan (backend
 * options `one`) running all n samples as one batch; then a plan group
 * (veil_backends_new with options `grp`) runs every batch size b = 1..n on
 * the first b samples. Each call's outputs are compared word for word with
 * the reference's first b samples, decrypted and compared with simulate, and
 * a sentinel after every output buffer must survive. */
#ifndef VEIL_TESTS_PLAN_GROUP_COMMON_H
#define VEIL_TESTS_PLAN_GROUP_COMMON_H

#include "testutil.h"
#include "veil/exec.h"
#include "veil/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_SENTINEL 0x5e47e15e47e15e47ull

typedef struct pg_result {
    size_t plans;                 /* of the group */
    size_t cases;                 /* batch sizes run */
    size_t identical;             /* cases whose outputs equal the reference word for word */
    size_t values, equal;         /* decrypted group outputs vs simulate, all cases */
    size_t ref_values, ref_equal; /* the reference's decryptions vs simulate */
    size_t sentinels_ok;          /* cases with every sentinel intact */
} pg_result;

/* in[i]: n samples of input i (simulate's integers). */
static veil_status pg_group_vs_one(veil_backend_kind kind, const veil_backend_options *one,
                                   const veil_backend_options *grp, const veil_program *p,
                                   const int64_t *const *in, size_t n, pg_result *r) {
    memset(r, 0, sizeof *r);
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(120 + i, s[i]);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    veil_backend *be1[VEIL_BACKEND_MAX_DEVICES] = {0}, *beg[VEIL_BACKEND_MAX_DEVICES] = {0};
    size_t n1 = 0, ng = 0;
    veil_plan_group *ref = NULL, *g = NULL;
    uint64_t *cin[8] = {0}, *cref[8] = {0}, *cout[8] = {0};
    int64_t *sim[8] = {0}, *dec = NULL;
    const size_t lwe = veil_program_ct_words(p);
    size_t max_out = 1;
    veil_status st;
    if (p->n_inputs > 8 || p->n_outputs > 8)
        return veil_error(VEIL_ERR_ARG, "pg_group_vs_one: at most 8 inputs and outputs");
    if ((st = veil_program_keygen(p, s[0], &sk)) ||
        (st = veil_program_eval_key_new(p, sk, VEIL_KEY_BOTH, s[1], s[2], &ek)) ||
        (st = veil_encryptor_new(s[3], s[4], &enc)) ||
        (st = veil_backends_new(kind, one, be1, &n1)) ||
        (st = veil_backends_new(kind, grp, beg, &ng)) ||
        (st = veil_plan_group_new(p, ek, be1, n1, n, &ref)) ||
        (st = veil_plan_group_new(p, ek, beg, ng, n, &g)))
        goto out;
    r->plans = ng;
    for (uint32_t i = 0; i < p->n_inputs; i++) {
        const size_t sz = veil_program_input_size(p, i);
        if (!(cin[i] = malloc(n * sz * lwe * 8))) goto nomem;
        if ((st = veil_program_encrypt(p, enc, sk, i, in[i], n, cin[i]))) goto out;
    }
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        const size_t sz = veil_program_output_size(p, o);
        max_out = sz > max_out ? sz : max_out;
        cref[o] = malloc(n * sz * lwe * 8);
        cout[o] = malloc((n * sz + 1) * lwe * 8);
        sim[o] = malloc(n * sz * 8);
        if (!cref[o] || !cout[o] || !sim[o]) goto nomem;
    }
    if (!(dec = malloc(n * max_out * 8))) goto nomem;
    if ((st = veil_program_simulate(p, in, n, sim, NULL, NULL))) goto out;
    /* the reference: one plan, all n samples in one batch */
    if ((st = veil_plan_group_execute(ref, (const uint64_t *const *)cin, n, cref))) goto out;
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        const size_t sz = veil_program_output_size(p, o);
        if ((st = veil_program_decrypt(p, sk, o, cref[o], n, dec))) goto out;
        for (size_t v = 0; v < n * sz; v++)
            r->ref_equal += dec[v] == sim[o][v];
        r->ref_values += n * sz;
    }
    for (size_t b = 1; b <= n; b++) {
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            const size_t words = (n * veil_program_output_size(p, o) + 1) * lwe;
            for (size_t w = 0; w < words; w++)
                cout[o][w] = PG_SENTINEL;
        }
        if ((st = veil_plan_group_execute(g, (const uint64_t *const *)cin, b, cout))) goto out;
        int same = 1, sentinel = 1;
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            const size_t sz = veil_program_output_size(p, o);
            same &= memcmp(cout[o], cref[o], b * sz * lwe * 8) == 0;
            /* nothing written past the batch's b samples */
            for (size_t w = b * sz * lwe; w < (n * sz + 1) * lwe; w++)
                sentinel &= cout[o][w] == PG_SENTINEL;
            if ((st = veil_program_decrypt(p, sk, o, cout[o], b, dec))) goto out;
            for (size_t v = 0; v < b * sz; v++)
                r->equal += dec[v] == sim[o][v];
            r->values += b * sz;
        }
        if (!same) printf("\n  batch %zu on %zu plans: outputs differ from one plan's", b, ng);
        r->identical += same;
        r->sentinels_ok += sentinel;
        r->cases++;
    }
    goto out;
nomem:
    st = veil_error(VEIL_ERR_NOMEM, "pg_group_vs_one: out of memory");
out:
    for (int i = 0; i < 8; i++) {
        free(cin[i]);
        free(cref[i]);
        free(cout[i]);
        free(sim[i]);
    }
    free(dec);
    veil_plan_group_free(g);
    veil_plan_group_free(ref);
    veil_backends_free(beg, ng);
    veil_backends_free(be1, n1);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    return st;
}

#endif
