/* fingerprint.c — the program fingerprint (veil/program.h): BLAKE2b-256 over
 * every field of the compiled program that decides what a ciphertext means.
 * It lives beside the compiler so that a new node field is hashed when it is
 * added. */
#include <sodium.h>
#include <string.h>

#include "veil/params.h"
#include "veil/program.h"

static void h_u64(crypto_generichash_state *st, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    crypto_generichash_update(st, b, 8);
}

static void h_i64s(crypto_generichash_state *st, const int64_t *v, size_t n) {
    h_u64(st, v ? n : 0);
    for (size_t i = 0; v && i < n; i++)
        h_u64(st, (uint64_t)v[i]);
}

static void h_str(crypto_generichash_state *st, const char *s) {
    size_t n = s ? strlen(s) : 0;
    h_u64(st, n);
    if (n) crypto_generichash_update(st, (const unsigned char *)s, n);
}

static void h_noise(crypto_generichash_state *st, const veil_noise *n) {
    uint64_t bits;
    memcpy(&bits, &n->std_dev, sizeof bits);
    h_u64(st, (uint64_t)n->kind);
    h_u64(st, bits);
    h_u64(st, n->bound_log2);
}

/* A set by its id and everything a key or ciphertext of it depends on: a set
 * derived again under the same id (docs/PARAMS.md section 5) makes another
 * program, so keys and ciphertexts of the old one are refused as such. */
static void h_params(crypto_generichash_state *st, const veil_params *ps) {
    h_str(st, ps ? ps->id : "");
    if (!ps) return;
    const uint64_t v[] = {ps->lwe_dim,      ps->glwe_dim,     ps->poly_size,
                          ps->pbs_base_log, ps->pbs_level,    ps->ks_base_log,
                          ps->ks_level,     (uint64_t)ps->ms, ps->grouping};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        h_u64(st, v[i]);
    h_noise(st, &ps->lwe_noise);
    h_noise(st, &ps->glwe_noise);
}

void veil_program_fingerprint(const veil_program *p, uint8_t fp[VEIL_PROGRAM_FP_BYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, VEIL_PROGRAM_FP_BYTES);
    h_str(&st, "veil-program-fp-v4");
    /* the options it was compiled from: client and server agree by construction */
    h_str(&st, p->options_canonical);
    h_params(&st, p->params);
    h_u64(&st, p->width);
    /* the sets the PBS run with: another partitioning needs other keys */
    h_u64(&st, p->n_partitions);
    for (uint32_t k = 0; k < p->n_partitions; k++)
        h_params(&st, p->partitions[k].params);
    /* the key the inputs are encrypted under */
    h_u64(&st, p->input_width);
    h_u64(&st, p->n_nodes);
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        h_u64(&st, (uint64_t)n->kind);
        h_u64(&st, n->partition);
        h_u64(&st, n->n_in);
        for (uint32_t j = 0; j < n->n_in; j++)
            h_u64(&st, n->in[j]);
        h_u64(&st, n->shape.rank);
        for (uint32_t d = 0; d < n->shape.rank && d < VEIL_MAX_RANK; d++)
            h_u64(&st, n->shape.dim[d]);
        h_u64(&st, (uint64_t)n->lo);
        h_u64(&st, (uint64_t)n->hi);
        h_u64(&st, n->bits);
        h_u64(&st, n->width);
        if (n->kind == VEIL_NODE_LINEAR) {
            h_u64(&st, (uint64_t)n->linear);
            const veil_conv_geom *c = &n->conv;
            const uint32_t cv[] = {c->c_in,  c->h_in,  c->w_in,     c->c_out,
                                   c->kh,    c->kw,    c->stride_h, c->stride_w,
                                   c->pad_h, c->pad_w, c->h_out,    c->w_out};
            for (size_t j = 0; j < sizeof cv / sizeof cv[0]; j++)
                h_u64(&st, cv[j]);
            size_t nw = 0, nb = 0;
            if (n->linear == VEIL_LINEAR_DENSE) {
                nw = n->n_weight_rows * n->n_weight_cols;
                nb = n->n_weight_rows;
            } else if (n->linear == VEIL_LINEAR_CONV2D) {
                nw = (size_t)c->c_out * c->c_in * c->kh * c->kw;
                nb = c->c_out;
            }
            h_i64s(&st, n->weight, nw);
            h_i64s(&st, n->bias, nb);
        }
        if (n->kind == VEIL_NODE_ROUND || n->kind == VEIL_NODE_LUT) {
            h_u64(&st, (uint64_t)n->offset);
            h_u64(&st, n->round_bits);
            h_u64(&st, n->chunk_bits);
            h_u64(&st, n->in_bits);
            h_u64(&st, n->shift);
            h_u64(&st, (uint64_t)n->approximate);
        }
        if (n->kind == VEIL_NODE_LUT) {
            h_u64(&st, n->n_tables);
            h_u64(&st, n->table_inner);
            h_u64(&st, n->wop);
            h_i64s(&st, n->tables, (size_t)n->n_tables << n->in_bits);
        }
    }
    h_u64(&st, p->n_inputs);
    for (uint32_t i = 0; i < p->n_inputs; i++)
        h_u64(&st, p->input_nodes[i]);
    h_u64(&st, p->n_outputs);
    for (uint32_t i = 0; i < p->n_outputs; i++)
        h_u64(&st, p->output_nodes[i]);
    crypto_generichash_final(&st, fp, VEIL_PROGRAM_FP_BYTES);
}

void veil_program_output_fingerprint(const uint8_t program_fp[VEIL_PROGRAM_FP_BYTES],
                                     uint8_t fp[VEIL_PROGRAM_FP_BYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, VEIL_PROGRAM_FP_BYTES);
    h_str(&st, "veil-program-output-fp-v1");
    crypto_generichash_update(&st, program_fp, VEIL_PROGRAM_FP_BYTES);
    crypto_generichash_final(&st, fp, VEIL_PROGRAM_FP_BYTES);
}
