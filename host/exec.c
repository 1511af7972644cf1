/* exec.c — veil_plan: a compiled program on encrypted data, through the
 * backend interface (see veil/exec.h and veil/program.h for the encoding). */
#include <stdlib.h>
#include <string.h>

#include "veil/exec.h"

typedef struct node_exec {
    uint64_t *buf;        /* this node's ciphertexts (slot), NULL for INPUT / OUTPUT */
    const uint64_t *view; /* where the values are during a run */
    veil_lut **luts;      /* LUT: n_tables; ROUND: 2 per chunk (sign, identity) */
    size_t n_luts;
    uint32_t *lut_index; /* LUT per-channel: max_batch * size */
    uint64_t *bias_pt;   /* dense / conv bias * Delta */
    int64_t *pool_w;     /* sum pool as a conv: identity over channels */
} node_exec;

struct veil_plan {
    const veil_program *prog;
    const veil_eval_key *ek;
    veil_backend *be;
    veil_backend_keys *keys;
    size_t max_batch;
    size_t lwe; /* words per ciphertext */
    node_exec *nx;
    uint64_t **slots;
    size_t n_slots;
    uint64_t *tmp, *tmp2; /* scratch: max_batch * max node size ciphertexts */
    veil_progress_fn progress;
    void *progress_user;
};

/* The partition whose keys run node n's PBS (0 for programs without them). */
static uint32_t node_partition(const veil_program *p, const veil_node *n) {
    return p->n_partitions ? n->partition : 0;
}

void veil_plan_set_progress(veil_plan *plan, veil_progress_fn fn, void *user) {
    plan->progress = fn;
    plan->progress_user = user;
}

void veil_plan_free(veil_plan *plan) {
    if (!plan) return;
    if (plan->nx) {
        for (size_t i = 0; i < plan->prog->n_nodes; i++) {
            node_exec *x = &plan->nx[i];
            for (size_t j = 0; x->luts && j < x->n_luts; j++)
                veil_lut_free(x->luts[j]);
            free(x->luts);
            free(x->lut_index);
            free(x->bias_pt);
            free(x->pool_w);
        }
    }
    free(plan->nx);
    for (size_t i = 0; i < plan->n_slots; i++)
        free(plan->slots[i]);
    free(plan->slots);
    free(plan->tmp);
    free(plan->tmp2);
    veil_backend_keys_free(plan->keys);
    free(plan);
}

static veil_status plan_luts(veil_plan *plan, size_t i) {
    const veil_program *p = plan->prog;
    const veil_node *n = &p->nodes[i];
    node_exec *x = &plan->nx[i];
    /* the test polynomials have the N of the node's partition */
    const veil_params *ps = plan->ek->parts[node_partition(p, n)].params;
    const uint64_t delta = veil_node_delta(n); /* LUT: its output's; ROUND: its input's */
    if (n->kind == VEIL_NODE_LUT) {
        const size_t t = (size_t)1 << n->in_bits;
        x->n_luts = n->n_tables;
        x->luts = calloc(n->n_tables, sizeof *x->luts);
        if (!x->luts) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
        for (uint32_t c = 0; c < n->n_tables; c++)
            VEIL_TRY(veil_lut_new(ps, n->tables + c * t, n->in_bits, 0, delta, &x->luts[c]));
        if (n->n_tables > 1) {
            x->lut_index = malloc(plan->max_batch * n->size * sizeof *x->lut_index);
            if (!x->lut_index) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
            for (size_t e = 0; e < plan->max_batch * n->size; e++)
                x->lut_index[e] = (uint32_t)(((e % n->size) / n->table_inner) % n->n_tables);
        }
    } else if (n->kind == VEIL_NODE_ROUND) {
        const unsigned chunks = veil_round_chunk_count(n);
        x->n_luts = 2 * (size_t)chunks;
        x->luts = calloc(x->n_luts, sizeof *x->luts);
        int64_t *tab = malloc(((size_t)1 << n->chunk_bits) * sizeof *tab);
        if (!x->luts || !tab) {
            free(tab);
            return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
        }
        veil_status st = VEIL_OK;
        for (unsigned q = 0; st == VEIL_OK && q < chunks; q++) {
            const veil_round_chunk c = veil_round_chunk_get(n, q);
            /* PBS 1: constant +C (negacyclic: -C when the chunk's top bit is
             * set), C = half the weight of that bit */
            for (size_t r = 0; r < ((size_t)1 << c.read_bits); r++)
                tab[r] = 1;
            st = veil_lut_new(ps, tab, c.read_bits, 0, veil_round_chunk_sign_const(&c, delta),
                              &x->luts[2 * q]);
            /* PBS 2: the identity on the c-1 low bits of the chunk, output at
             * 2^j * Delta */
            if (st == VEIL_OK && c.pbs > 1) {
                for (size_t r = 0; r < ((size_t)1 << c.read_bits); r++)
                    tab[r] = (int64_t)r;
                st = veil_lut_new(ps, tab, c.read_bits, 0, delta << c.lo, &x->luts[2 * q + 1]);
            }
        }
        free(tab);
        VEIL_TRY(st);
    }
    return VEIL_OK;
}

veil_status veil_plan_new(const veil_program *prog, const veil_eval_key *ek, veil_backend *be,
                          size_t max_batch, veil_plan **out) {
    if (!prog || !ek || !be || !out || max_batch == 0)
        return veil_error(VEIL_ERR_ARG, "veil_plan_new: NULL argument or max_batch 0");
    if (!prog->params)
        return veil_error(VEIL_ERR_PARAMS,
                          "plan: the program has no parameter set (simulate only: %s)",
                          prog->params_note ? prog->params_note : "none");
    if (veil_program_check_eval_key(prog, ek) != VEIL_OK) {
        veil_error_prefix("plan: ");
        return VEIL_ERR_PARAMS;
    }
    for (size_t i = 0; i < prog->n_nodes; i++) {
        const veil_node *n = &prog->nodes[i];
        if ((n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND) &&
            node_partition(prog, n) >= ek->n_parts)
            return veil_error(VEIL_ERR_FORMAT,
                              "plan: layer %s runs its PBS in partition %u, the "
                              "program has %u",
                              n->layer, n->partition, ek->n_parts);
        if (!veil_backend_supports_op(be, n))
            return veil_error(VEIL_ERR_UNSUPPORTED, "plan: layer %s: backend %s does not run %s",
                              n->layer, veil_backend_name(be),
                              n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND ? "KS-PBS"
                              : n->linear == VEIL_LINEAR_DENSE ? "dense layers"
                                                               : "conv2d or sum pools");
    }
    veil_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
    plan->prog = prog;
    plan->ek = ek;
    plan->be = be;
    plan->max_batch = max_batch;
    plan->lwe = veil_program_ct_words(prog);
    const size_t nn = prog->n_nodes;
    veil_status st = VEIL_OK;
    size_t max_size = 1;
    for (size_t i = 0; i < nn; i++)
        max_size = prog->nodes[i].size > max_size ? prog->nodes[i].size : max_size;
    size_t per_call = max_batch * max_size;
    if (per_call > 4096) per_call = 4096;
    st = veil_backend_keys_new(be, ek, per_call, &plan->keys);
    plan->nx = calloc(nn, sizeof *plan->nx);
    size_t *last = calloc(nn, sizeof *last);
    size_t *slot_of = calloc(nn, sizeof *slot_of);
    size_t *slot_cap = calloc(nn + 1, sizeof *slot_cap);
    int *slot_busy = calloc(nn + 1, sizeof *slot_busy);
    if (st == VEIL_OK && (!plan->nx || !last || !slot_of || !slot_cap || !slot_busy))
        st = veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
    /* liveness: a node's buffer is free after its last consumer ran */
    for (size_t i = 0; st == VEIL_OK && i < nn; i++)
        for (uint32_t j = 0; j < prog->nodes[i].n_in; j++)
            last[prog->nodes[i].in[j]] = i;
    size_t n_slots = 0;
    for (size_t i = 0; st == VEIL_OK && i < nn; i++) {
        const veil_node *n = &prog->nodes[i];
        if (n->kind != VEIL_NODE_INPUT && n->kind != VEIL_NODE_OUTPUT) {
            size_t s = n_slots;
            for (size_t k = 0; k < n_slots; k++)
                if (!slot_busy[k] && (s == n_slots || slot_cap[k] > slot_cap[s])) s = k;
            if (s == n_slots) n_slots++;
            slot_busy[s] = 1;
            slot_cap[s] = n->size > slot_cap[s] ? n->size : slot_cap[s];
            slot_of[i] = s;
        }
        for (uint32_t j = 0; j < n->n_in; j++) {
            size_t src = n->in[j];
            const veil_node *sn = &prog->nodes[src];
            if (last[src] == i && sn->kind != VEIL_NODE_INPUT && sn->kind != VEIL_NODE_OUTPUT)
                slot_busy[slot_of[src]] = 0;
        }
    }
    if (st == VEIL_OK) {
        plan->slots = calloc(n_slots + 1, sizeof *plan->slots);
        if (!plan->slots)
            st = veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
        else
            plan->n_slots = n_slots;
    }
    for (size_t k = 0; st == VEIL_OK && k < n_slots; k++)
        if (!(plan->slots[k] = malloc(max_batch * slot_cap[k] * plan->lwe * sizeof(uint64_t))))
            st = veil_error(VEIL_ERR_NOMEM, "plan: out of memory for %zu ciphertexts",
                            max_batch * slot_cap[k]);
    if (st == VEIL_OK) {
        plan->tmp = malloc(max_batch * max_size * plan->lwe * sizeof(uint64_t));
        plan->tmp2 = malloc(max_batch * max_size * plan->lwe * sizeof(uint64_t));
        if (!plan->tmp || !plan->tmp2)
            st = veil_error(VEIL_ERR_NOMEM, "plan: out of memory for scratch ciphertexts");
    }
    for (size_t i = 0; st == VEIL_OK && i < nn; i++) {
        const veil_node *n = &prog->nodes[i];
        const uint64_t delta = veil_node_delta(n);
        node_exec *x = &plan->nx[i];
        if (n->kind != VEIL_NODE_INPUT && n->kind != VEIL_NODE_OUTPUT)
            x->buf = plan->slots[slot_of[i]];
        if (n->kind == VEIL_NODE_LINEAR && n->bias) {
            size_t nb = n->linear == VEIL_LINEAR_DENSE ? n->n_weight_rows : n->conv.c_out;
            x->bias_pt = malloc(nb * sizeof *x->bias_pt);
            if (!x->bias_pt) {
                st = veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
                break;
            }
            for (size_t r = 0; r < nb; r++)
                x->bias_pt[r] = (uint64_t)n->bias[r] * delta;
        }
        if (n->kind == VEIL_NODE_LINEAR && n->linear == VEIL_LINEAR_SUMPOOL2D) {
            const veil_conv_geom *c = &n->conv;
            size_t kk = (size_t)c->kh * c->kw;
            x->pool_w = calloc((size_t)c->c_out * c->c_in * kk, sizeof *x->pool_w);
            if (!x->pool_w) {
                st = veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
                break;
            }
            for (uint32_t ch = 0; ch < c->c_out; ch++)
                for (size_t t = 0; t < kk; t++)
                    x->pool_w[((size_t)ch * c->c_in + ch) * kk + t] = 1;
        }
        st = plan_luts(plan, i);
        if (st != VEIL_OK) veil_error_prefix("plan: layer %s: ", n->layer);
    }
    free(last);
    free(slot_of);
    free(slot_cap);
    free(slot_busy);
    if (st != VEIL_OK) {
        veil_plan_free(plan);
        return st;
    }
    *out = plan;
    return VEIL_OK;
}

/* ---- execution --------------------------------------------------------------- */

static void add_plain_all(uint64_t *cts, size_t count, size_t lwe, uint64_t pt) {
    for (size_t i = 0; i < count; i++)
        cts[i * lwe + lwe - 1] += pt;
}

static void mul_all(uint64_t *out, const uint64_t *in, size_t words, uint64_t f) {
    for (size_t i = 0; i < words; i++)
        out[i] = in[i] * f;
}

static veil_status run_round(veil_plan *plan, const veil_node *n, node_exec *x, const uint64_t *in,
                             size_t batch) {
    const size_t count = batch * n->size, words = count * plan->lwe;
    const uint64_t delta = veil_node_delta(n);
    const uint32_t part = node_partition(plan->prog, n);
    uint64_t *V = x->buf;
    memcpy(V, in, words * sizeof *V);
    add_plain_all(V, count, plan->lwe, (uint64_t)n->offset * delta);
    for (unsigned q = 0; q < veil_round_chunk_count(n); q++) {
        const veil_round_chunk c = veil_round_chunk_get(n, q);
        const uint64_t f = (uint64_t)1 << c.shift;
        /* bits j..j+c-1 of V to the top c bits of the torus */
        mul_all(plan->tmp, V, words, f);
        const veil_lut *const *l1 = (const veil_lut *const *)&x->luts[2 * q];
        VEIL_TRY(veil_backend_ks_pbs(plan->keys, part, plan->tmp, count, l1, 1, NULL, plan->tmp2));
        for (size_t w = 0; w < words; w++)
            V[w] += plan->tmp2[w];
        add_plain_all(V, count, plan->lwe, 0 - veil_round_chunk_sign_const(&c, delta));
        if (c.pbs > 1) {
            mul_all(plan->tmp, V, words, f);
            const veil_lut *const *l2 = (const veil_lut *const *)&x->luts[2 * q + 1];
            VEIL_TRY(
                veil_backend_ks_pbs(plan->keys, part, plan->tmp, count, l2, 1, NULL, plan->tmp2));
            for (size_t w = 0; w < words; w++)
                V[w] -= plan->tmp2[w];
        }
    }
    return VEIL_OK;
}

veil_status veil_plan_execute(veil_plan *plan, const uint64_t *const *inputs, size_t batch,
                              uint64_t *const *outputs) {
    if (!plan || !inputs || !outputs)
        return veil_error(VEIL_ERR_ARG, "veil_plan_execute: NULL argument");
    if (batch == 0 || batch > plan->max_batch)
        return veil_error(VEIL_ERR_ARG, "veil_plan_execute: batch %zu, the plan holds 1..%zu",
                          batch, plan->max_batch);
    const veil_program *p = plan->prog;
    const size_t lwe = plan->lwe;
    const uint64_t total = p->pbs_per_sample * batch;
    uint64_t done = 0;
    for (uint32_t i = 0; i < p->n_inputs; i++)
        plan->nx[p->input_nodes[i]].view = inputs[i];
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        node_exec *x = &plan->nx[i];
        const uint64_t *in = n->n_in ? plan->nx[n->in[0]].view : NULL;
        const size_t count = batch * n->size;
        veil_status st = VEIL_OK;
        switch (n->kind) {
        case VEIL_NODE_INPUT:
            break;
        case VEIL_NODE_OUTPUT: {
            uint32_t o = 0;
            while (o < p->n_outputs && p->output_nodes[o] != i)
                o++;
            memcpy(outputs[o], in, count * lwe * sizeof(uint64_t));
            break;
        }
        case VEIL_NODE_ADD: {
            const uint64_t *b = plan->nx[n->in[1]].view;
            for (size_t w = 0; w < count * lwe; w++)
                x->buf[w] = in[w] + b[w];
            break;
        }
        case VEIL_NODE_LINEAR:
            switch (n->linear) {
            case VEIL_LINEAR_DENSE:
                st = veil_backend_linear(plan->keys, in, batch, n->n_weight_cols, n->weight,
                                         x->bias_pt, n->n_weight_rows, x->buf);
                break;
            case VEIL_LINEAR_CONV2D:
            case VEIL_LINEAR_SUMPOOL2D:
                st = veil_backend_conv2d(plan->keys, in, batch, &n->conv,
                                         n->linear == VEIL_LINEAR_CONV2D ? n->weight : x->pool_w,
                                         x->bias_pt, x->buf);
                break;
            case VEIL_LINEAR_FLATTEN:
                memcpy(x->buf, in, count * lwe * sizeof(uint64_t));
                break;
            case VEIL_LINEAR_CONCAT: {
                size_t off = 0;
                for (size_t b = 0; b < batch; b++)
                    for (uint32_t j = 0; j < n->n_in; j++) {
                        size_t nj = p->nodes[n->in[j]].size;
                        memcpy(x->buf + off * lwe, plan->nx[n->in[j]].view + b * nj * lwe,
                               nj * lwe * sizeof(uint64_t));
                        off += nj;
                    }
                break;
            }
            }
            break;
        case VEIL_NODE_ROUND:
            st = run_round(plan, n, x, in, batch);
            done += n->pbs_per_sample * batch;
            break;
        case VEIL_NODE_LUT: {
            /* index r = floor((v + offset) / 2^k) to the top in_bits bits,
             * at the input's Delta */
            const uint64_t delta = veil_program_node_delta(p, n->in[0]);
            uint64_t add = (uint64_t)n->offset * delta;
            if (n->approximate) /* boundaries between integers: -2^(k-1) + 1/2 */
                add += (0 - (delta << (n->round_bits - 1))) + (delta >> 1);
            const uint64_t f = (uint64_t)1 << n->shift;
            for (size_t w = 0; w < count * lwe; w++)
                plan->tmp[w] = in[w] * f;
            add_plain_all(plan->tmp, count, lwe, add * f);
            st = veil_backend_ks_pbs(plan->keys, node_partition(p, n), plan->tmp, count,
                                     (const veil_lut *const *)x->luts, x->n_luts, x->lut_index,
                                     x->buf);
            done += n->pbs_per_sample * batch;
            break;
        }
        }
        if (st != VEIL_OK) {
            veil_error_prefix("layer %s: ", n->layer);
            return st;
        }
        if (n->kind != VEIL_NODE_INPUT && n->kind != VEIL_NODE_OUTPUT) x->view = x->buf;
        if (plan->progress && (n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND))
            plan->progress(plan->progress_user, done, total, n->layer);
    }
    return VEIL_OK;
}
