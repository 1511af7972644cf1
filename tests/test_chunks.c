// LABELS: unit model
// LINKS: veil_loaders
/* Exact rounding's chunk widths (veil/program.h "Rounding", compile.c
 * choose_chunks): a choice of the cost model per ROUND node.
 *
 * - The choice: mlp_digits at --rounding-bits 4 compiled with the widths
 *   chosen, and with every width forced (--chunk-bits 1 .. the widest lookup
 *   + 1, today's width before the choice): the chosen program costs no more
 *   than any forced one, and strictly less than the widest (the case of
 *   issue 11: narrower chunks land in cheaper sets); the forced programs
 *   really have those widths and PBS counts; every program simulates the
 *   same integers on random inputs.
 * - The arithmetic: the chunk loop (veil_round_chunk_get, _sign_const) run
 *   on noiseless torus phases with the negacyclic PBS in the clear, for
 *   every chunk width, every number of bits cleared and every value of an
 *   accumulator encoding of up to 9 bits: it leaves exactly the value with
 *   its low bits cleared.
 * - The 1-bit chunk's read: its one PBS is the sign alone, on a table of one
 *   box per half torus (veil_lut_new at 0 bits), read right up to a quarter
 *   torus (2^62) from either value, twice a 1-bit table's margin, which is
 *   what the noise pass counts for it (read_bits 0).
 * - The lookup width and the chunk widths chosen together
 *   (test_width_and_chunks, source16_bc at 6 bits).
 * The encrypted run at a forced narrow width is in test_model_encrypted.c. */
#include "testutil.h"
#include "load_model.h"
#include "veil/loader.h"
#include "veil/program.h"
#include "veil/tfhe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static veil_program *compile_ok(const veil_model *m, const veil_compile_options *o) {
    veil_program *p = NULL;
    veil_status st = veil_program_compile(m, o, &p);
    if (st) fprintf(stderr, "\n  compile: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->params);
    return p;
}

/* Random inputs over the model's input ranges, n samples of input 0. */
static int64_t *random_inputs(const veil_model *m, const veil_program *p, size_t n) {
    const size_t sz = veil_program_input_size(p, 0);
    int64_t *x = malloc(n * sz * sizeof *x);
    const int64_t lo = m->inputs[0].range[0], hi = m->inputs[0].range[1];
    for (size_t i = 0; x && i < n * sz; i++)
        x[i] = lo + (int64_t)(veil_test_rand() % (uint64_t)(hi - lo + 1));
    return x;
}

/* Random inputs, the reference program's integers on them, and a check that
 * another program simulates the same integers. */
typedef struct sim_check {
    size_t n, sz_out;
    int64_t *x, *y0, *y;
} sim_check;

static void sim_check_new(sim_check *c, const veil_model *m, const veil_program *ref, size_t n) {
    c->n = n;
    c->sz_out = veil_program_output_size(ref, 0);
    c->x = random_inputs(m, ref, n);
    c->y0 = malloc(n * c->sz_out * 8);
    c->y = malloc(n * c->sz_out * 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->y0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->y);
    const int64_t *in = c->x;
    CU_ASSERT_EQUAL(veil_program_simulate(ref, &in, n, &c->y0, NULL, NULL), VEIL_OK);
}

static void sim_check_same(sim_check *c, const veil_program *p) {
    const int64_t *in = c->x;
    CU_ASSERT_EQUAL(veil_program_simulate(p, &in, c->n, &c->y, NULL, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(memcmp(c->y, c->y0, c->n * c->sz_out * 8), 0);
}

static void sim_check_free(sim_check *c) {
    free(c->x);
    free(c->y0);
    free(c->y);
}

static void test_chunk_choice(void) {
    veil_model *m = veil_test_load_model("models/mlp_digits.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 4;
    veil_program *chosen = compile_ok(m, &o);
    const unsigned widest = chosen->max_lut_bits + 1;
    CU_ASSERT_EQUAL(widest, 5);
    size_t n_round = 0, narrower = 0;
    for (size_t i = 0; i < chosen->n_nodes; i++)
        if (chosen->nodes[i].kind == VEIL_NODE_ROUND) {
            n_round++;
            narrower += chosen->nodes[i].chunk_bits < widest;
        }
    CU_ASSERT_EQUAL(n_round, 2);
    CU_ASSERT(narrower >= 1);

    sim_check sc;
    sim_check_new(&sc, m, chosen, 64);
    printf("\n  chosen: %.1f ms, %llu PBS, chunks", chosen->cost_per_sample,
           (unsigned long long)chosen->pbs_per_sample);
    for (size_t i = 0; i < chosen->n_nodes; i++)
        if (chosen->nodes[i].kind == VEIL_NODE_ROUND)
            printf(" %u of %u bits", chosen->nodes[i].chunk_bits, chosen->nodes[i].round_bits);
    size_t forced_n = 0;
    double widest_cost = 0;
    for (unsigned c = 1; c <= widest; c++) {
        veil_compile_options f = o;
        f.chunk_bits = c;
        veil_program *p = compile_ok(m, &f);
        for (size_t i = 0; i < p->n_nodes; i++) {
            const veil_node *nd = &p->nodes[i];
            if (nd->kind != VEIL_NODE_ROUND) continue;
            CU_ASSERT_EQUAL(nd->chunk_bits, c < nd->round_bits ? c : nd->round_bits);
            uint64_t per = 0;
            for (unsigned q = 0; q < veil_round_chunk_count(nd); q++)
                per += veil_round_chunk_get(nd, q).pbs;
            CU_ASSERT_EQUAL(nd->pbs_per_sample, per * nd->size);
        }
        printf("\n  --chunk-bits %u: %.1f ms, %llu PBS", c, p->cost_per_sample,
               (unsigned long long)p->pbs_per_sample);
        CU_ASSERT(chosen->cost_per_sample <= p->cost_per_sample * (1 + 1e-12));
        if (c == widest) widest_cost = p->cost_per_sample;
        sim_check_same(&sc, p);
        veil_program_free(p);
        forced_n++;
    }
    CU_ASSERT_EQUAL(forced_n, widest);
    /* narrower chunks are cheaper here (9.29 s -> 7.81 s per sample when
     * this test was written) */
    CU_ASSERT(chosen->cost_per_sample < 0.95 * widest_cost);
    sim_check_free(&sc);
    veil_program_free(chosen);
    veil_model_free(m);
}

/* The lookup width and the chunk width chosen together: source16_bc at
 * --rounding-bits 6 (16-bit accumulators, 6-bit lookups) costs no more with
 * the choices left to the cost model than with any lookup width from 4 to 7
 * forced with any uniform chunk width from 1 to 3 (when the width search
 * judged each lookup width by its widest chunks alone it chose 4-bit
 * decompositions at 1315 ms where 6-bit lookups with 1-bit chunks cost
 * 960 ms); every forced program simulates the chosen one's integers. */
static void test_width_and_chunks(void) {
    veil_model *m = veil_test_load_model("models/source16_bc.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 6;
    veil_program *chosen = compile_ok(m, &o);
    sim_check sc;
    sim_check_new(&sc, m, chosen, 32);
    printf("\n  chosen: %.1f ms, %llu PBS, widest read %u bits", chosen->cost_per_sample,
           (unsigned long long)chosen->pbs_per_sample, chosen->max_lut_bits);
    size_t tried = 0;
    double cheapest = INFINITY;
    for (unsigned l = 4; l <= 7; l++)
        for (unsigned c = 1; c <= 3; c++) {
            veil_compile_options f = o;
            f.lookup_bits = l;
            f.chunk_bits = c;
            veil_program *p = compile_ok(m, &f);
            CU_ASSERT(p->max_lut_bits <= l);
            CU_ASSERT(chosen->cost_per_sample <= p->cost_per_sample * (1 + 1e-12));
            cheapest = p->cost_per_sample < cheapest ? p->cost_per_sample : cheapest;
            sim_check_same(&sc, p);
            veil_program_free(p);
            tried++;
        }
    CU_ASSERT_EQUAL(tried, 12);
    printf(", cheapest forced %.1f ms", cheapest);
    sim_check_free(&sc);
    veil_program_free(chosen);
    veil_model_free(m);
}

/* The negacyclic PBS in the clear on a noiseless phase: reads the top
 * read_bits + 1 bits r; T[r] * scale below 2^read_bits, else the negation of
 * T[r - 2^read_bits] * scale. T: 1 (the sign PBS) or r (the identity). */
static uint64_t pbs_clear(uint64_t phase, unsigned read_bits, int identity, uint64_t scale) {
    const uint64_t r = phase >> (64 - (read_bits + 1)), half = (uint64_t)1 << read_bits;
    const uint64_t t = r < half ? r : r - half;
    const uint64_t v = (identity ? t : 1) * scale;
    return r < half ? v : 0 - v;
}

static void test_chunk_arithmetic(void) {
    size_t cases = 0, values = 0, wrong = 0;
    for (unsigned width = 2; width <= 9; width++)
        for (unsigned k = 1; k <= width; k++)
            for (unsigned c = 1; c <= k; c++) {
                veil_node n;
                memset(&n, 0, sizeof n);
                n.kind = VEIL_NODE_ROUND;
                n.round_bits = k;
                n.chunk_bits = c;
                n.width = width;
                const uint64_t delta = veil_node_delta(&n);
                for (uint64_t v = 0; v < ((uint64_t)1 << width); v++) {
                    uint64_t V = v * delta;
                    for (unsigned q = 0; q < veil_round_chunk_count(&n); q++) {
                        const veil_round_chunk ch = veil_round_chunk_get(&n, q);
                        const uint64_t f = (uint64_t)1 << ch.shift;
                        V += pbs_clear(V * f, ch.read_bits, 0,
                                       veil_round_chunk_sign_const(&ch, delta));
                        V -= veil_round_chunk_sign_const(&ch, delta);
                        if (ch.pbs > 1) V -= pbs_clear(V * f, ch.read_bits, 1, delta << ch.lo);
                    }
                    wrong += V != ((v >> k) << k) * delta;
                    values++;
                }
                cases++;
            }
    printf("\n  %zu (width, bits, chunk) cases, %zu values, %zu wrong", cases, values, wrong);
    CU_ASSERT_EQUAL(cases, 164); /* sum over widths 2..9 of width (width + 1) / 2 */
    CU_ASSERT_EQUAL(wrong, 0);
}

/* The blind rotation's output on test polynomial `poly` for a
 * modulus-switched phase t in [0, 2N): coefficient t, negated past N. */
static int64_t rotate_read(const veil_lut *l, uint32_t t) {
    const uint32_t N = l->poly_size;
    return (int64_t)(t < N ? l->poly[t] : 0 - l->poly[t - N]);
}

static void test_sign_read_margin(void) {
    veil_node n;
    memset(&n, 0, sizeof n);
    n.kind = VEIL_NODE_ROUND;
    n.round_bits = 3;
    n.chunk_bits = 1;
    n.width = 6;
    size_t chunks = 0;
    for (unsigned q = 0; q < veil_round_chunk_count(&n); q++, chunks++) {
        const veil_round_chunk c = veil_round_chunk_get(&n, q);
        CU_ASSERT_EQUAL(c.read_bits, 0);
        CU_ASSERT_EQUAL(c.pbs, 1);
        CU_ASSERT_EQUAL(c.shift, n.width - q); /* bit q in the padding position */
    }
    CU_ASSERT_EQUAL(chunks, 3);
    const veil_params *ps = veil_params_find_any("nn-p2-norm2e4-2m40");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
    const int64_t one[2] = {1, 1};
    const uint64_t C = (uint64_t)1 << 40;
    veil_lut *l0 = NULL, *l1 = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_lut_new(ps, one, 0, 0, C, &l0), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_lut_new(ps, one, 1, 0, C, &l1), VEIL_OK);
    CU_ASSERT_EQUAL(veil_lut_new(ps, one, 0, 1, C, &l1), VEIL_ERR_ARG); /* signed, 0 bits */
    /* the values sit at t = 0 and t = N; read right when within d of one */
    const uint32_t N = ps->poly_size;
    size_t in_margin = 0, wrong0 = 0, wrong1_q = 0, wrong1_beyond = 0;
    for (uint32_t t = 0; t < 2 * N; t++) {
        const uint32_t d0 = t < N ? t : 2 * N - t, dn = t > N ? t - N : N - t;
        const uint32_t d = d0 < dn ? d0 : dn;
        if (d >= N / 2) continue; /* past a quarter torus from both */
        const int64_t want = d0 < dn ? (int64_t)C : -(int64_t)C;
        in_margin++;
        wrong0 += rotate_read(l0, t) != want;
        if (d < N / 4)
            wrong1_q += rotate_read(l1, t) != want;
        else
            wrong1_beyond += rotate_read(l1, t) != want;
    }
    printf("\n  N = %u: %zu phases within 2^62 of a value: 0-bit table %zu wrong; 1-bit table "
           "%zu wrong within 2^61, %zu beyond",
           N, in_margin, wrong0, wrong1_q, wrong1_beyond);
    CU_ASSERT_EQUAL(in_margin, 2 * (size_t)N - 2); /* all but the two ties at N/2, 3N/2 */
    CU_ASSERT_EQUAL(wrong0, 0);
    CU_ASSERT_EQUAL(wrong1_q, 0);
    CU_ASSERT(wrong1_beyond >= N / 4); /* the 1-bit table's margin is half */
    veil_lut_free(l0);
    veil_lut_free(l1);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("chunks", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_chunk_choice);
    VEIL_ADD_TEST(s, test_width_and_chunks);
    VEIL_ADD_TEST(s, test_chunk_arithmetic);
    VEIL_ADD_TEST(s, test_sign_read_margin);
    return veil_test_run();
}
