// LABELS: model crypto
// LINKS: veil_host veil_loaders
#define _POSIX_C_SOURCE 200809L
/* The measured cost table and the key budget (veil/cost.h, issue 11):
 *  - every parameter set the compiler may select has a CPU cost: a figure
 *    of the table (engine/src/cost_table.inc, bench_pbs --cost) or the
 *    table's fit; every table row names a set of the parameter table; the
 *    fit stays within a factor 2 of every figure; costs grow with the master
 *    key's dimension; every set has a positive cuda figure; a set in the
 *    table costs exactly its row's figures, the same shape under another
 *    id exactly the fit (coefficients read from the .inc); between two
 *    measured sets that differ in n alone the smaller n never costs more;
 *  - every multi-bit set has a measured ratio to the classic figure of its
 *    shape, and the latency model (--objective latency) keeps its rules;
 *  - every WoP set has a price (its measured figure in KS-PBS of its set):
 *    between w and 64 of them, growing with the rows keyswitched;
 *  - the key budget (--key-budget-mb): tiny at 3 rounding bits compiles to
 *    two partitions without a budget; with budgets stepping down below the
 *    last program's keys every program's prepared keys fit, none costs less,
 *    and one with fewer partitions comes before a refusal; it runs
 *    encrypted equal to simulate on golden inputs; a budget no set fits is
 *    refused naming the option;
 *  - `veil compile`'s prediction comes from the table (the report says so). */
#include "model_encrypted_common.h"
#include "testutil.h"
#include "veil/cost.h"

#include <math.h>

static void test_every_set_has_a_cost(void) {
    size_t sets = 0, measured = 0, cuda_measured = 0;
    for (size_t i = 0; i < veil_params_count(); i++) {
        const veil_params *ps = veil_params_at(i);
        const uint32_t D = veil_params_big_dim(ps);
        const double c = veil_cost_cpu_ms(ps, D), g = veil_cost_cuda_us(ps, D);
        if (!(c > 0 && isfinite(c) && g > 0 && isfinite(g))) {
            printf("\n  %s: cpu %g ms, cuda %g us", ps->id, c, g);
            CU_FAIL("a parameter set without a cost");
        }
        /* the keyswitch share grows with the master key's rows */
        CU_ASSERT(veil_cost_cpu_ms(ps, 2 * D) > c);
        measured += veil_cost_cpu_origin(ps) == VEIL_COST_MEASURED;
        cuda_measured += veil_cost_cuda_origin(ps) == VEIL_COST_MEASURED;
        sets++;
    }
    CU_ASSERT_EQUAL(sets, veil_params_count());
    CU_ASSERT(sets >= 70);
    printf("\n  %zu sets: %zu with a measured cpu figure, %zu with a measured cuda figure", sets,
           measured, cuda_measured);
    printf("\n  source: %s", veil_cost_source());
}

/* Every multi-bit set has a measured row (bench_pbs --cost --multibit): its
 * batch figure is its ratio times the classic figure of its shape, above
 * that classic figure (multi-bit costs more per PBS in a batch on a CPU),
 * and the latency model: a classic lookup alone costs its lone factor
 * times the batch figure; a count at least the cores costs a share a core;
 * a multi-bit lookup alone gets faster with cores down to its chain of
 * n / g external products (its keyswitch split over the cores); a
 * threshold read (the extraction path) keyswitches on one. A huge count
 * does not wrap. */
static void test_multibit_costs_and_latency(void) {
    size_t sets = 0, measured = 0;
    for (size_t i = 0; i < veil_params_multibit_count(); i++) {
        const veil_params *ps = veil_params_multibit_at(i);
        const uint32_t D = veil_params_big_dim(ps);
        veil_params classic = *ps;
        classic.grouping = 0;
        classic.id = "a classic set of the same shape";
        const double c = veil_cost_cpu_ms(ps, D), cc = veil_cost_cpu_ms(&classic, D);
        CU_ASSERT(c > cc && isfinite(c));
        measured += veil_cost_cpu_origin(ps) == VEIL_COST_MEASURED;
        veil_latency_terms t;
        veil_cost_cpu_latency_terms(ps, &t);
        const double one = veil_cost_cpu_latency_ms(ps, D, 1, 1),
                     two = veil_cost_cpu_latency_ms(ps, D, 1, 2),
                     many = veil_cost_cpu_latency_ms(ps, D, 1, 1024);
        CU_ASSERT(t.lone > 1 && one > c * 0.99 && two < one && many <= two);
        /* 1024 cores: the chain, the keyswitch split over them */
        CU_ASSERT_DOUBLE_EQUAL(many, t.chain_ms + t.ks_ms_per_row * D / 1024, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(two, t.br_ms * t.lone / 2 + t.ks_ms_per_row * D / 2, 1e-9);
        /* more lookups than teams: a share a core, no team */
        CU_ASSERT_DOUBLE_EQUAL(veil_cost_cpu_latency_ms(ps, D, 8, 4),
                               t.br_ms * (2 - 1 + t.lone) + 2 * t.ks_ms_per_row * D, 1e-9);
        /* the extraction path (threshold reads): a team, the keyswitch on one */
        CU_ASSERT_DOUBLE_EQUAL(veil_cost_latency_of(&t, D, 1, 64, 0),
                               fmax(t.br_ms * t.lone / 64, t.chain_ms) + t.ks_ms_per_row * D, 1e-9);
        sets++;
    }
    CU_ASSERT_EQUAL(sets, veil_params_multibit_count());
    CU_ASSERT_EQUAL(measured, sets);
    {
        const veil_params *mb = veil_params_multibit_at(0);
        CU_ASSERT(veil_cost_cpu_latency_ms(mb, 1024, UINT64_MAX, 3) >
                  veil_cost_cpu_latency_ms(mb, 1024, 1u << 20, 3));
    }
    const veil_params *ps = veil_params_find("tfhers-2_2-tuniform-2m128");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
    veil_latency_terms t;
    veil_cost_cpu_latency_terms(ps, &t);
    const uint32_t D = veil_params_big_dim(ps);
    CU_ASSERT(t.lone > 1 && t.chain_ms == 0);
    /* a classic lookup alone: the lone figure and the keyswitch over the cores */
    CU_ASSERT_DOUBLE_EQUAL(veil_cost_cpu_latency_ms(ps, D, 1, 4),
                           t.br_ms * t.lone + t.ks_ms_per_row * D / 4, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(veil_cost_cpu_latency_ms(ps, D, 1, 4) - t.ks_ms_per_row * D / 4,
                           veil_cost_cpu_latency_ms(ps, D, 1, 1) - t.ks_ms_per_row * D, 1e-9);
    printf("\n  %zu multi-bit sets, all measured (%s)", sets, veil_cost_multibit_source());
}

/* Every WoP set has a price (veil_cost_wop_cpu_ms: a measured figure a
 * width): finite, more than its w bit reads as KS-PBS of its set and less
 * than 64 of them; more rows to keyswitch cost more; a width the set is not
 * for is priced in proportion. */
static void test_every_wop_set_has_a_cost(void) {
    size_t sets = 0;
    for (size_t i = 0; i < veil_wop_params_count(); i++) {
        const veil_wop_params *wp = veil_wop_params_at(i);
        const uint32_t D = veil_params_big_dim(&wp->pbs);
        const double one = veil_cost_cpu_ms(&wp->pbs, D);
        const double c = veil_cost_wop_cpu_ms(wp, wp->width, D);
        printf("\n  %s: %.1f KS-PBS of its set", wp->id, c / one);
        CU_ASSERT(isfinite(c) && c > wp->width * one && c < 64 * one);
        CU_ASSERT(veil_cost_wop_cpu_ms(wp, wp->width, 2 * D) > c);
        CU_ASSERT_DOUBLE_EQUAL(veil_cost_wop_cpu_ms(wp, wp->width - 1, D),
                               c * (wp->width - 1) / wp->width, 1e-9 * c);
        sets++;
    }
    CU_ASSERT_EQUAL(sets, 8); /* widths 9 to 16 */
}

/* A set outside the table (a copy under another id) gets the fit; the fit
 * is within a factor 2 of every figure (the JSON has the residuals). A row
 * measured at another shape than its set's today (the set re-derived since,
 * docs/PARAMS.md §5) is not used: that set gets the fit too. */
static void test_table_rows_and_fit(void) {
    size_t rows = 0, stale = 0;
    double worst = 1;
    const char *worst_id = "";
    for (size_t i = 0; i < veil_cost_table_count(); i++) {
        const char *id = veil_cost_table_id(i);
        const veil_params *ps = veil_params_find(id);
        if (!ps) {
            printf("\n  table row %s: no such parameter set", id);
            CU_FAIL("a stale cost-table row");
            continue;
        }
        if (i) CU_ASSERT(strcmp(veil_cost_table_id(i - 1), id) < 0); /* sorted: bsearch */
        veil_params copy = *ps;
        copy.id = "not-in-the-table";
        CU_ASSERT_EQUAL(veil_cost_cpu_origin(&copy), VEIL_COST_ESTIMATED);
        CU_ASSERT_EQUAL(veil_cost_cuda_origin(&copy), VEIL_COST_ESTIMATED);
        const uint32_t D = veil_params_big_dim(ps);
        rows++;
        if (veil_cost_cpu_origin(ps) != VEIL_COST_MEASURED) {
            /* a stale row: the set costs what the fit says */
            CU_ASSERT_EQUAL(veil_cost_cuda_origin(ps), VEIL_COST_ESTIMATED);
            CU_ASSERT_DOUBLE_EQUAL(veil_cost_cpu_ms(ps, D), veil_cost_cpu_ms(&copy, D), 1e-12);
            stale++;
            continue;
        }
        const double r = veil_cost_cpu_ms(&copy, D) / veil_cost_cpu_ms(ps, D);
        const double dev = r > 1 ? r : 1 / r;
        if (dev > worst) worst = dev, worst_id = id;
    }
    CU_ASSERT_EQUAL(rows, veil_cost_table_count());
    CU_ASSERT(rows >= 70);
    CU_ASSERT(rows - stale >= 12); /* the published sets never change shape */
    CU_ASSERT(worst < 2);
    printf("\n  %zu rows, %zu measured at another shape than today's set (fit used); fit vs "
           "figure at worst x%.2f (%s)",
           rows, stale, worst, worst_id);
}

/* The table itself, read here as cost.c reads it: the rows and the fit's
 * coefficients (scripts/cost_table.py writes them; its docstring gives the
 * fit's form, restated below). */
typedef struct ref_row {
    const char *id;
    uint32_t shape[5]; /* n, k, N, l_pbs, l_ks the row was measured at */
    double br_ms, ks_ns_per_row, cuda_us;
    int cuda_measured;
} ref_row;
static const ref_row k_ref_rows[] = {
#include "../engine/src/cost_table.inc"
};

/* A set in the table, at the shape its row was measured at, costs that
 * row's figure (blind rotation + keyswitch per master-key row; cuda: the
 * row's figure at its own dimension); a set whose shape changed since (a
 * re-derivation), and the same shape under an id not in the table, cost the
 * fit:
 *   log br = b0 + b1 log n + b2 log(k+1) + b3 log N + b4 log l_pbs + b5 log log2 N
 *   log ks_row = c0 + c1 log(n+1) + c2 log l_ks */
static void test_lookup_and_fit_values(void) {
    static const double b[] = VEIL_COST_FIT_BR, c[] = VEIL_COST_FIT_KS;
    const size_t n_rows = sizeof k_ref_rows / sizeof *k_ref_rows;
    CU_ASSERT_EQUAL(n_rows, veil_cost_table_count());
    size_t checked = 0, row_shape = 0;
    for (size_t i = 0; i < n_rows; i++) {
        const ref_row *r = &k_ref_rows[i];
        const veil_params *ps = veil_params_find(r->id);
        if (!ps) continue; /* test_table_rows_and_fit names stale rows */
        const int same = r->shape[0] == ps->lwe_dim && r->shape[1] == ps->glwe_dim &&
                         r->shape[2] == ps->poly_size && r->shape[3] == ps->pbs_level &&
                         r->shape[4] == ps->ks_level;
        row_shape += (size_t)same;
        for (uint32_t D = veil_params_big_dim(ps), t = 0; same && t < 2; t++, D *= 2) {
            const double want = r->br_ms + 1e-6 * r->ks_ns_per_row * D;
            const double got = veil_cost_cpu_ms(ps, D);
            if (fabs(got - want) > 1e-12 * want)
                printf("\n  %s at %u: %.12g ms, its row says %.12g", r->id, D, got, want);
            CU_ASSERT_DOUBLE_EQUAL(got, want, 1e-12 * want);
        }
        if (same) {
            const double cu = veil_cost_cuda_us(ps, veil_params_big_dim(ps));
            CU_ASSERT_DOUBLE_EQUAL(cu, r->cuda_us, 1e-12 * r->cuda_us);
            CU_ASSERT_EQUAL(veil_cost_cuda_origin(ps),
                            r->cuda_measured ? VEIL_COST_MEASURED : VEIL_COST_ESTIMATED);
        }
        veil_params copy = *ps;
        copy.id = "not-in-the-table";
        const double N = ps->poly_size, D = veil_params_big_dim(ps);
        const double br = exp(b[0] + b[1] * log(ps->lwe_dim) + b[2] * log(ps->glwe_dim + 1.0) +
                              b[3] * log(N) + b[4] * log(ps->pbs_level) + b[5] * log(log2(N)));
        const double ks = exp(c[0] + c[1] * log(ps->lwe_dim + 1.0) + c[2] * log(ps->ks_level));
        const double fit = br + 1e-6 * ks * D, got = veil_cost_cpu_ms(&copy, (uint32_t)D);
        if (fabs(got - fit) > 1e-9 * fit)
            printf("\n  %s's shape, not in the table: %.12g ms, the fit says %.12g", r->id, got,
                   fit);
        CU_ASSERT_DOUBLE_EQUAL(got, fit, 1e-9 * fit);
        if (!same) /* a row of another shape: the set itself costs the fit */
            CU_ASSERT_DOUBLE_EQUAL(veil_cost_cpu_ms(ps, (uint32_t)D), fit, 1e-9 * fit);
        checked++;
    }
    CU_ASSERT(checked >= 70);
    CU_ASSERT(row_shape >= 12); /* the published sets never change shape */
    printf("\n  %zu rows checked, %zu at their set's shape (their figures), the others the fit",
           checked, row_shape);
}

/* The table's figures are pooled over the shapes that differ in n alone
 * (scripts/cost_table.py, pooled_figures): a blind rotation is n CMux steps
 * of one (k, N, l_pbs), a keyswitch row writes n + 1 words l_ks times, so
 * between two measured sets of one family the one of smaller n never costs
 * more. A table generated from raw per-shape figures breaks this (on the Zen
 * 4 host nn-p4-norm2e5, n = 777, measured above tfhers-2_2, n = 833). */
static void test_cost_grows_with_n_in_a_family(void) {
    size_t pairs = 0;
    for (size_t i = 0; i < veil_params_count(); i++) {
        const veil_params *a = veil_params_at(i);
        if (veil_cost_cpu_origin(a) != VEIL_COST_MEASURED) continue;
        for (size_t j = 0; j < veil_params_count(); j++) {
            const veil_params *b = veil_params_at(j);
            if (veil_cost_cpu_origin(b) != VEIL_COST_MEASURED || a->lwe_dim >= b->lwe_dim) continue;
            const double br_a = veil_cost_cpu_ms(a, 0), br_b = veil_cost_cpu_ms(b, 0);
            const double ks_a = veil_cost_cpu_ms(a, 1000000) - br_a;
            const double ks_b = veil_cost_cpu_ms(b, 1000000) - br_b;
            if (a->glwe_dim == b->glwe_dim && a->poly_size == b->poly_size &&
                a->pbs_level == b->pbs_level) {
                if (br_a > br_b * (1 + 1e-9))
                    printf("\n  %s (n = %u) %.6g ms > %s (n = %u) %.6g ms", a->id, a->lwe_dim, br_a,
                           b->id, b->lwe_dim, br_b);
                CU_ASSERT(br_a <= br_b * (1 + 1e-9));
                pairs++;
            }
            if (a->ks_level == b->ks_level) {
                CU_ASSERT(ks_a <= ks_b * (1 + 1e-9));
                pairs++;
            }
        }
    }
    CU_ASSERT(pairs >= 100);
    printf("\n  %zu pairs of one family checked", pairs);
}

static veil_model *M;

static veil_status compile_tiny(unsigned budget_mb, veil_program **out) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    o.key_budget_mb = budget_mb;
    return veil_program_compile(M, &o, out);
}

static void test_budget(void) {
    M = veil_test_load_model("models/tiny.h5");
    veil_program *free_p = NULL, *capped = NULL, *none = NULL;
    CU_ASSERT_EQUAL_FATAL(compile_tiny(0, &free_p), VEIL_OK);
    const double mib = 1048576.0, all = free_p->key_bytes / mib;
    printf("\n  tiny --rounding-bits 3, no budget: %u partitions, %.0f MiB, %.3g ms/sample",
           free_p->n_partitions, all, free_p->cost_per_sample);
    CU_ASSERT_FATAL(free_p->n_partitions >= 2);
    /* budgets each 1 MiB below the last program's keys: every program fits its
     * budget and costs no less than the free one, and before the budget is
     * refused the search gives up a partition (merges two onto one set) */
    unsigned budget = (unsigned)(all - 1);
    for (;;) {
        CU_ASSERT_EQUAL_FATAL(compile_tiny(budget, &capped), VEIL_OK);
        printf("\n  --key-budget-mb %u: %u partitions, %.0f MiB, %.3g ms/sample", budget,
               capped->n_partitions, capped->key_bytes / mib, capped->cost_per_sample);
        CU_ASSERT(capped->key_bytes <= budget * mib);
        CU_ASSERT(capped->cost_per_sample >= free_p->cost_per_sample * (1 - 1e-12));
        if (capped->n_partitions < free_p->n_partitions) break;
        budget = (unsigned)(capped->key_bytes / mib) - 1;
        veil_program_free(capped);
        capped = NULL;
    }
    CU_ASSERT(capped->n_partitions < free_p->n_partitions);
    /* the capped program's keys: prepared bytes as a plan holds them */
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    const uint32_t np = veil_program_key_sets(capped, parts);
    CU_ASSERT_EQUAL(np, capped->n_partitions);
    double sum = 0;
    for (uint32_t i = 0; i < np; i++)
        sum += (double)veil_eval_key_prepared_bytes(parts[i], veil_params_big_dim(parts[0]));
    CU_ASSERT_DOUBLE_EQUAL(sum, capped->key_bytes, 1);
    enc_result r;
    const size_t n = M->golden.count < 4 ? M->golden.count : 4;
    CU_ASSERT_FATAL(n >= 1);
    veil_status st = run_encrypted_vs_simulate(M, capped, n, n, &r);
    if (st) printf("\n  %s", veil_error_message());
    CU_ASSERT_EQUAL(st, VEIL_OK);
    CU_ASSERT_EQUAL(r.samples, n);
    CU_ASSERT(r.values > 0);
    CU_ASSERT_EQUAL(r.equal, r.values);
    printf("\n  encrypted == simulate on %zu/%zu values (%zu samples)", r.equal, r.values,
           r.samples);
    /* nothing fits 1 MiB: refused, naming the option */
    st = compile_tiny(1, &none);
    CU_ASSERT_EQUAL(st, VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(none);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--key-budget-mb 1"));
    printf("\n  --key-budget-mb 1: %s\n", veil_error_message());
    veil_program_free(free_p);
    veil_program_free(capped);
    veil_model_free(M);
}

/* `veil compile` prints the prediction from the table, cpu and cuda. */
static void test_report(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    veil_program_print_report(p, f);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "ms on one cpu core (measured per set: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, veil_cost_source()));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "ms on cuda"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "prepared evaluation keys"));
    double want = 0;
    for (uint32_t k = 0; k < p->n_partitions; k++)
        want += (double)p->partitions[k].pbs_per_sample *
                veil_cost_cpu_ms(p->partitions[k].params, veil_params_big_dim(p->params));
    CU_ASSERT_DOUBLE_EQUAL(p->cost_per_sample, want, 1e-9 * want);
    free(buf);
    veil_program_free(p);
    veil_model_free(m);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("cost", NULL, NULL);
    VEIL_ADD_TEST(s, test_every_set_has_a_cost);
    VEIL_ADD_TEST(s, test_every_wop_set_has_a_cost);
    VEIL_ADD_TEST(s, test_multibit_costs_and_latency);
    VEIL_ADD_TEST(s, test_table_rows_and_fit);
    VEIL_ADD_TEST(s, test_lookup_and_fit_values);
    VEIL_ADD_TEST(s, test_cost_grows_with_n_in_a_family);
    VEIL_ADD_TEST(s, test_report);
    VEIL_ADD_TEST(s, test_budget);
    return veil_test_run();
}
