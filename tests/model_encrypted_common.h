/* model_encrypted_common.h — shared by test_model_encrypted*.c: compile a
 * sample model, make keys with fixed seeds, run golden inputs encrypted on
 * the cpu backend and compare with simulate. */
#ifndef VEIL_MODEL_ENCRYPTED_COMMON_H
#define VEIL_MODEL_ENCRYPTED_COMMON_H

#include "load_model.h"
#include "testutil.h"
#include "veil/exec.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct enc_result {
    size_t values, equal;   /* encrypted vs simulate */
    size_t samples, argmax; /* argmax agreement */
    size_t samples_equal;   /* samples whose every output value is equal */
    double seconds_per_sample;
} enc_result;

static double enc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs n golden samples of m through program p encrypted (batch b) on a
 * backend of the given kind and compares with simulate. Returns VEIL_OK or
 * the first error. */
static veil_status run_encrypted_vs_simulate_on(veil_backend_kind kind, const veil_model *m,
                                                const veil_program *p, size_t n, size_t b,
                                                enc_result *res) {
    memset(res, 0, sizeof *res);
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(40 + i, s[i]);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_encryptor *enc = NULL;
    veil_backend *be = NULL;
    veil_plan *plan = NULL;
    uint64_t *cin[8] = {0}, *cout[8] = {0};
    int64_t *sim[8] = {0}, *dec[8] = {0};
    veil_status st;
    const size_t lwe = veil_program_ct_words(p);
    /* keys prepared for the backend, as veil run and veil-server do */
    if ((st = veil_backend_new(kind, &be)) || (st = veil_program_keygen(p, s[0], &sk)) ||
        (st = veil_program_eval_key_new(p, sk, veil_backend_key_domains(be), s[1], s[2], &ek)) ||
        (st = veil_encryptor_new(s[3], s[4], &enc)) || (st = veil_plan_new(p, ek, be, b, &plan)))
        goto out;
    for (uint32_t i = 0; i < p->n_inputs; i++)
        cin[i] = malloc(b * veil_program_input_size(p, i) * lwe * 8);
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        cout[o] = malloc(b * veil_program_output_size(p, o) * lwe * 8);
        sim[o] = malloc(n * veil_program_output_size(p, o) * 8);
        dec[o] = malloc(n * veil_program_output_size(p, o) * 8);
    }
    if ((st = veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, sim, NULL,
                                    NULL)))
        goto out;
    double t = 0;
    for (size_t s0 = 0; s0 < n; s0 += b) {
        size_t bb = n - s0 < b ? n - s0 : b;
        for (uint32_t i = 0; i < p->n_inputs; i++) {
            size_t sz = veil_program_input_size(p, i);
            if ((st = veil_program_encrypt(p, enc, sk, i, m->golden.inputs[i] + s0 * sz, bb,
                                           cin[i])))
                goto out;
        }
        double t0 = enc_now();
        if ((st = veil_plan_execute(plan, (const uint64_t *const *)cin, bb, cout))) goto out;
        t += enc_now() - t0;
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            size_t sz = veil_program_output_size(p, o);
            if ((st = veil_program_decrypt(p, sk, o, cout[o], bb, dec[o] + s0 * sz))) goto out;
        }
    }
    for (uint32_t o = 0; o < p->n_outputs; o++) {
        size_t sz = veil_program_output_size(p, o);
        for (size_t j = 0; j < n * sz; j++) {
            res->values++;
            res->equal += dec[o][j] == sim[o][j];
        }
    }
    size_t sz0 = veil_program_output_size(p, 0);
    for (size_t j = 0; j < n; j++) {
        int all = 1;
        for (uint32_t o = 0; o < p->n_outputs; o++) {
            size_t sz = veil_program_output_size(p, o);
            all &= memcmp(dec[o] + j * sz, sim[o] + j * sz, sz * 8) == 0;
        }
        res->samples_equal += (size_t)all;
        res->samples++;
        res->argmax += veil_model_class(&m->outputs[0], dec[0] + j * sz0) ==
                       veil_model_class(&m->outputs[0], sim[0] + j * sz0);
    }
    res->seconds_per_sample = t / (double)n;
out:
    for (int i = 0; i < 8; i++) {
        free(cin[i]);
        free(cout[i]);
        free(sim[i]);
        free(dec[i]);
    }
    veil_plan_free(plan);
    veil_backend_free(be);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    return st;
}

/* The same on the cpu backend. */
static inline veil_status run_encrypted_vs_simulate(const veil_model *m, const veil_program *p,
                                                    size_t n, size_t b, enc_result *res) {
    return run_encrypted_vs_simulate_on(VEIL_BACKEND_CPU, m, p, n, b, res);
}

#endif
