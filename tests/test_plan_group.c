// LABELS: model crypto
// COST: 70
// LINKS: veil_host veil_loaders
/* Plan groups (veil/exec.h veil_plan_group, issue 12 item 3) on the cpu
 * backend, where "--devices 0,0" is two plans sharing the CPU's threads:
 *   - the --devices parser: good lists, and bad ones ("", "0,,1", "-1", "x",
 *     ...) refused naming the entry; a device beyond the count refused by
 *     veil_backends_new naming the entry, the device and the count; the
 *     threads divided between the plans;
 *   - a group of 2 (and 3) cpu plans gives, for every batch size 1..5, the
 *     same output ciphertexts word for word as ONE plan on the same inputs
 *     (odd sizes; a batch of 1 leaves the other plans idle), with a sentinel
 *     after every output intact, on tiny.h5 and on a program with every node
 *     kind, two inputs and two outputs and random weights (model_kinds.h,
 *     rounded to 3 bits so its lookups are cheap);
 *   - an error in one share (its backend marked dead, as after a device
 *     fault) fails the whole call, names the plan, and leaves every output
 *     of the caller as it was; an idle plan's error does not matter;
 *   - progress adds up the shares to the batch's PBS.
 * The cuda variant (two plans on one GPU) is in test_gpu_ops, which skips
 * without a device. */
#include "../host/backend_internal.h" /* be->dead: the injected fault */
#include "load_model.h"
#include "model_kinds.h"
#include "plan_group_common.h"
#include "testutil.h"
#include "veil/backend.h"
#include "veil/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the option parser -------------------------------------------------------- */

static void test_devices_parse(void) {
    static const struct {
        const char *s;
        unsigned n;
        int all;
        int first, last;
    } good[] = {{"0", 1, 0, 0, 0},     {"0,1", 2, 0, 0, 1},   {"0,0", 2, 0, 0, 0},
                {"3,1,2", 3, 0, 3, 2}, {"all", 0, 1, -1, -1}, {"1023", 1, 0, 1023, 1023}};
    size_t ran = 0;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++, ran++) {
        veil_backend_options o;
        veil_backend_options_default(&o);
        CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&o, good[i].s), VEIL_OK);
        CU_ASSERT_EQUAL(o.n_devices, good[i].n);
        CU_ASSERT_EQUAL(o.devices_all, good[i].all);
        if (good[i].n) {
            CU_ASSERT_EQUAL(o.devices[0], good[i].first);
            CU_ASSERT_EQUAL(o.devices[good[i].n - 1], good[i].last);
        }
    }
    /* the longest list, and one entry more */
    char list[VEIL_BACKEND_MAX_DEVICES * 2 + 8] = "";
    for (int i = 0; i < VEIL_BACKEND_MAX_DEVICES; i++)
        strcat(list, i ? ",0" : "0");
    veil_backend_options o;
    veil_backend_options_default(&o);
    CU_ASSERT_EQUAL(veil_backend_devices_parse(&o, list), VEIL_OK);
    CU_ASSERT_EQUAL(o.n_devices, VEIL_BACKEND_MAX_DEVICES);
    strcat(list, ",0");
    CU_ASSERT_EQUAL(veil_backend_devices_parse(&o, list), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "more than"));
    ran += 2;
    /* bad lists: refused, naming the option and the entry; o unchanged */
    static const struct {
        const char *s, *where;
    } bad[] = {{"", "empty list"},
               {"0,,1", "entry 2 is empty"},
               {"-1", "entry 1 '-1'"},
               {"x", "entry 1 'x'"},
               {",0", "entry 1 is empty"},
               {"0,", "entry 2 is empty"},
               {"1x", "entry 1 '1x'"},
               {" 0", "entry 1 ' 0'"},
               {"0,1024", "entry 2 is device 1024"},
               {"ALL", "entry 1 'ALL'"},
               {"0;1", "entry 1 '0;1'"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++, ran++) {
        veil_backend_options_default(&o);
        o.n_devices = 1;
        o.devices[0] = 7;
        const veil_status st = veil_backend_devices_parse(&o, bad[i].s);
        const char *msg = veil_error_message();
        if (st != VEIL_ERR_ARG || !strstr(msg, "--devices") || !strstr(msg, bad[i].where))
            printf("\n  --devices '%s': %d, '%s' (expected to name '%s')", bad[i].s, (int)st, msg,
                   bad[i].where);
        CU_ASSERT_EQUAL(st, VEIL_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--devices"));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, bad[i].where));
        CU_ASSERT(o.n_devices == 1 && o.devices[0] == 7 && !o.devices_all);
    }
    /* the command-line form: consumed with its value, or left alone */
    char *argv[] = {"veil", "--devices", "0,0", "--batch", "2", "--devices"};
    int i = 1, consumed = -1;
    veil_backend_options_default(&o);
    CU_ASSERT_EQUAL(veil_backend_options_parse_arg(&o, 6, argv, &i, &consumed), VEIL_OK);
    CU_ASSERT(consumed == 1 && i == 2 && o.n_devices == 2);
    i = 3;
    CU_ASSERT_EQUAL(veil_backend_options_parse_arg(&o, 6, argv, &i, &consumed), VEIL_OK);
    CU_ASSERT(consumed == 0 && i == 3);
    i = 5;
    CU_ASSERT_EQUAL(veil_backend_options_parse_arg(&o, 6, argv, &i, &consumed), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--devices needs a value"));
    ran += 3;
    CU_ASSERT_EQUAL(ran, sizeof good / sizeof *good + 2 + sizeof bad / sizeof *bad + 3);
}

/* veil_backends_new on the cpu: 0 once per plan, the threads divided. */
static void test_backends_cpu(void) {
    veil_backend_options o;
    veil_backend_options_default(&o);
    veil_backend *bes[VEIL_BACKEND_MAX_DEVICES] = {0};
    size_t n = 99;
    CU_ASSERT_EQUAL(veil_backend_device_count(VEIL_BACKEND_CPU), 1);
    /* no list: one backend, as veil_backend_new_opts */
    o.threads = 3;
    CU_ASSERT_EQUAL_FATAL(veil_backends_new(VEIL_BACKEND_CPU, &o, bes, &n), VEIL_OK);
    CU_ASSERT(n == 1 && bes[0]->opts.threads == 3);
    veil_backends_free(bes, n);
    /* 0,0: two plans of 3 threads -> 2 + 1, the spare thread to the first
     * plan, which gets the spare sample of an odd batch */
    CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&o, "0,0"), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backends_new(VEIL_BACKEND_CPU, &o, bes, &n), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(bes[0]->opts.threads, 2);
    CU_ASSERT_EQUAL(bes[1]->opts.threads, 1);
    CU_ASSERT(veil_backends_healthy(bes, n));
    veil_backends_free(bes, n);
    /* more plans than threads: one thread each */
    o.threads = 1;
    CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&o, "0,0,0"), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backends_new(VEIL_BACKEND_CPU, &o, bes, &n), VEIL_OK);
    CU_ASSERT(n == 3 && bes[0]->opts.threads == 1 && bes[2]->opts.threads == 1);
    veil_backends_free(bes, n);
    /* all: the cpu's one device */
    CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&o, "all"), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backends_new(VEIL_BACKEND_CPU, &o, bes, &n), VEIL_OK);
    CU_ASSERT_EQUAL(n, 1);
    veil_backends_free(bes, n);
    /* a device beyond the count: refused naming the entry, the device and the
     * count; nothing written */
    CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&o, "0,1"), VEIL_OK);
    n = 99;
    bes[0] = NULL;
    CU_ASSERT_EQUAL(veil_backends_new(VEIL_BACKEND_CPU, &o, bes, &n), VEIL_ERR_ARG);
    const char *msg = veil_error_message();
    printf("\n  %s", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--devices 0,1: entry 2 is device 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "cpu backend has 1 device"));
    CU_ASSERT(n == 99 && bes[0] == NULL);
    /* cuda without a device: refused with the reason */
    char why[256];
    if (!veil_backend_cuda_available(why, sizeof why)) {
        CU_ASSERT_EQUAL(veil_backend_device_count(VEIL_BACKEND_CUDA), 0);
        CU_ASSERT_EQUAL(veil_backends_new(VEIL_BACKEND_CUDA, &o, bes, &n), VEIL_ERR_UNSUPPORTED);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "no device"));
    }
}

/* ---- the split ------------------------------------------------------------------- */

/* Group of `plans` cpu plans (2 threads between them) against one plan of 2
 * threads, every batch 1..n. */
static void group_vs_one(const veil_program *p, const int64_t *const *in, size_t n,
                         const char *devices, const char *what) {
    veil_backend_options one, grp;
    veil_backend_options_default(&one);
    one.threads = 2;
    grp = one;
    CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&grp, devices), VEIL_OK);
    pg_result r;
    const veil_status st = pg_group_vs_one(VEIL_BACKEND_CPU, &one, &grp, p, in, n, &r);
    if (st) printf("\n  %s: %s", what, veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    printf("\n  %s, %llu PBS per sample, %zu plans (--devices %s): batches 1..%zu, %zu/%zu "
           "identical to one plan, %zu/%zu values equal to simulate (one plan: %zu/%zu)",
           what, (unsigned long long)p->pbs_per_sample, r.plans, devices, n, r.identical, r.cases,
           r.equal, r.values, r.ref_equal, r.ref_values);
    CU_ASSERT_EQUAL(r.cases, n);
    CU_ASSERT_EQUAL(r.identical, n);
    CU_ASSERT_EQUAL(r.sentinels_ok, n);
    CU_ASSERT(r.values > 0 && r.equal == r.values);
    CU_ASSERT(r.ref_values > 0 && r.ref_equal == r.ref_values);
}

static void test_split_tiny(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    const size_t n = 5;
    CU_ASSERT_FATAL(m->golden.count >= n);
    group_vs_one(p, (const int64_t *const *)m->golden.inputs, n, "0,0", "tiny");
    if (!VEIL_TEST_SANITIZED) /* shares 2, 2, 1 and a batch that leaves two plans idle */
        group_vs_one(p, (const int64_t *const *)m->golden.inputs, n, "0,0,0", "tiny");
    veil_program_free(p);
    veil_model_free(m);
}

static void test_split_random_program(void) {
    veil_model *m = make_model();
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3; /* cheap lookups; adds the rounding nodes */
    veil_program *p = NULL;
    const veil_status st = veil_program_compile(m, &o, &p);
    if (st) printf("\n  %s", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    CU_ASSERT_FATAL(p->n_inputs == 2 && p->n_outputs == 2);
    /* inputs drawn inside the calibration ranges (0..2) */
    const size_t n = VEIL_TEST_SANITIZED ? 3 : 5;
    int64_t *a = malloc(n * 16 * 8), *b = malloc(n * 8 * 8);
    CU_ASSERT_FATAL(a && b);
    for (size_t i = 0; i < n * 16; i++)
        a[i] = (int64_t)(veil_test_rand() % 3);
    for (size_t i = 0; i < n * 8; i++)
        b[i] = (int64_t)(veil_test_rand() % 3);
    const int64_t *in[2] = {a, b};
    group_vs_one(p, in, n, "0,0", "every node kind, random weights, 3-bit rounding");
    free(a);
    free(b);
    veil_program_free(p);
    veil_model_free(m);
}

/* ---- errors and progress ------------------------------------------------------------ */

/* tiny, keys, n encrypted golden samples, and a group of two cpu plans (2
 * threads between them) for batches up to n. */
typedef struct fixture {
    veil_model *m;
    veil_program *p;
    veil_secret_key *sk;
    veil_eval_key *ek;
    uint64_t *cin, *cout;
    size_t in_words, out_words; /* per sample */
    veil_backend *bes[VEIL_BACKEND_MAX_DEVICES];
    size_t nb;
    veil_plan_group *g;
} fixture;

static void fixture_new(fixture *f, size_t n) {
    memset(f, 0, sizeof *f);
    f->m = veil_test_load_model("models/tiny.h5");
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(f->m, NULL, &f->p), VEIL_OK);
    CU_ASSERT_FATAL(f->p->n_inputs == 1 && f->p->n_outputs == 1 && f->m->golden.count >= n);
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(140 + i, s[i]);
    veil_encryptor *enc = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_keygen(f->p, s[0], &f->sk), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_program_eval_key_new(f->p, f->sk, VEIL_KEY_BOTH, s[1], s[2], &f->ek),
                          VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_encryptor_new(s[3], s[4], &enc), VEIL_OK);
    const size_t lwe = veil_program_ct_words(f->p);
    f->in_words = veil_program_input_size(f->p, 0) * lwe;
    f->out_words = veil_program_output_size(f->p, 0) * lwe;
    f->cin = malloc(n * f->in_words * 8);
    f->cout = malloc(n * f->out_words * 8);
    CU_ASSERT_FATAL(f->cin && f->cout);
    CU_ASSERT_EQUAL_FATAL(
        veil_program_encrypt(f->p, enc, f->sk, 0, f->m->golden.inputs[0], n, f->cin), VEIL_OK);
    veil_encryptor_free(enc);
    veil_backend_options o;
    veil_backend_options_default(&o);
    o.threads = 2;
    CU_ASSERT_EQUAL_FATAL(veil_backend_devices_parse(&o, "0,0"), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backends_new(VEIL_BACKEND_CPU, &o, f->bes, &f->nb), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_plan_group_new(f->p, f->ek, f->bes, f->nb, n, &f->g), VEIL_OK);
    CU_ASSERT_EQUAL(veil_plan_group_size(f->g), 2);
}

static void fixture_free(fixture *f) {
    veil_plan_group_free(f->g);
    veil_backends_free(f->bes, f->nb);
    free(f->cin);
    free(f->cout);
    veil_eval_key_free(f->ek);
    veil_secret_key_free(f->sk);
    veil_program_free(f->p);
    veil_model_free(f->m);
}

static int all_sentinel(const uint64_t *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (w[i] != PG_SENTINEL) return 0;
    return 1;
}

/* A share whose backend died fails the whole call, names its plan, and the
 * caller's outputs stay as they were, whichever share it is. */
static void test_share_error(void) {
    fixture f;
    fixture_new(&f, 2);
    veil_backend **bes = f.bes;
    veil_plan_group *g = f.g;
    const uint64_t *in[1] = {f.cin};
    uint64_t *out[1] = {f.cout};
    /* the reference: both shares healthy */
    uint64_t *ref = malloc(2 * f.out_words * 8);
    CU_ASSERT_FATAL(ref != NULL);
    CU_ASSERT_EQUAL_FATAL(veil_plan_group_execute(g, in, 2, out), VEIL_OK);
    memcpy(ref, f.cout, 2 * f.out_words * 8);
    size_t cases = 0;
    for (size_t dead = 0; dead < 2; dead++, cases++) {
        for (size_t w = 0; w < 2 * f.out_words; w++)
            f.cout[w] = PG_SENTINEL;
        bes[dead]->dead = 1; /* as after a sticky device fault */
        const veil_status st = veil_plan_group_execute(g, in, 2, out);
        const char *msg = veil_error_message();
        char want[32];
        snprintf(want, sizeof want, "plan %zu of 2", dead);
        printf("\n  share %zu failing: %s", dead, msg);
        CU_ASSERT_EQUAL(st, VEIL_ERR_DEVICE);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "dead"));
        /* nothing written: not even the healthy share's sample */
        CU_ASSERT(all_sentinel(f.cout, 2 * f.out_words));
        /* a batch of 1 runs on plan 0 only: plan 1's death does not matter */
        const veil_status st1 = veil_plan_group_execute(g, in, 1, out);
        CU_ASSERT_EQUAL(st1, dead == 1 ? VEIL_OK : VEIL_ERR_DEVICE);
        if (dead == 1) CU_ASSERT(memcmp(f.cout, ref, f.out_words * 8) == 0);
        bes[dead]->dead = 0;
    }
    CU_ASSERT_EQUAL(cases, 2);
    /* healthy again: the same results */
    CU_ASSERT_EQUAL(veil_plan_group_execute(g, in, 2, out), VEIL_OK);
    CU_ASSERT(memcmp(f.cout, ref, 2 * f.out_words * 8) == 0);
    /* bad calls */
    CU_ASSERT_EQUAL(veil_plan_group_execute(g, in, 0, out), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_plan_group_execute(g, in, 3, out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "batch 3, the group holds 1..2"));
    /* a NULL input or output is refused, as by one plan (it was a crash on a
     * share's thread) */
    const uint64_t *no_in[1] = {NULL};
    uint64_t *no_out[1] = {NULL};
    CU_ASSERT_EQUAL(veil_plan_group_execute(g, no_in, 2, out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "input 0 is NULL"));
    CU_ASSERT_EQUAL(veil_plan_group_execute(g, in, 2, no_out), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "output 0 is NULL"));
    veil_plan_group_free(f.g);
    f.g = NULL;
    /* a dead backend at plan time: the group is not made, the plan named */
    bes[1]->dead = 1;
    g = (veil_plan_group *)&cases; /* must stay untouched */
    CU_ASSERT_EQUAL(veil_plan_group_new(f.p, f.ek, bes, f.nb, 2, &g), VEIL_ERR_DEVICE);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "plan 1 of 2"));
    CU_ASSERT(g == (veil_plan_group *)&cases);
    bes[1]->dead = 0;
    CU_ASSERT_EQUAL(veil_plan_group_new(f.p, f.ek, bes, 0, 2, &g), VEIL_ERR_ARG);
    free(ref);
    fixture_free(&f);
}

typedef struct prog_seen {
    uint64_t max_done, total;
    size_t calls;
} prog_seen;

static void on_progress(void *user, uint64_t done, uint64_t total, const char *layer) {
    prog_seen *s = user;
    (void)layer;
    if (done > s->max_done) s->max_done = done;
    s->total = total;
    s->calls++;
}

/* Progress adds up the shares: the last call says the whole batch. */
static void test_progress(void) {
    fixture f;
    fixture_new(&f, 3);
    veil_plan_group *g = f.g;
    prog_seen seen = {0};
    veil_plan_group_set_progress(g, on_progress, &seen);
    const uint64_t *in[1] = {f.cin};
    uint64_t *out[1] = {f.cout};
    CU_ASSERT_EQUAL(veil_plan_group_execute(g, in, 3, out), VEIL_OK);
    const uint64_t want = f.p->pbs_per_sample * 3;
    printf("\n  %zu progress calls, %llu / %llu PBS", seen.calls, (unsigned long long)seen.max_done,
           (unsigned long long)seen.total);
    CU_ASSERT(seen.calls > 0);
    CU_ASSERT_EQUAL(seen.max_done, want);
    CU_ASSERT_EQUAL(seen.total, want);
    fixture_free(&f);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("plan_group", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_devices_parse);
    VEIL_ADD_TEST(s, test_backends_cpu);
    VEIL_ADD_TEST(s, test_split_tiny);
    VEIL_ADD_TEST(s, test_split_random_program);
    VEIL_ADD_TEST(s, test_share_error);
    VEIL_ADD_TEST(s, test_progress);
    return veil_test_run();
}
