/* exec.c — veil_plan: a compiled program on encrypted data, through the
 * backend interface (see veil/exec.h and veil/program.h for the encoding). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "veil/exec.h"

typedef struct node_exec {
    veil_backend_buffer *buf; /* this node's ciphertexts (a liveness slot); NULL for OUTPUT */
    veil_lut **luts;          /* LUT: n_tables; ROUND: 2 per chunk (sign, identity) */
    size_t n_luts;
    veil_backend_tables **tables; /* LUT: one set (all tables, per-channel index;
                                   * WoP: the node's tables); ROUND: one per table */
    size_t n_tables;
    veil_backend_weights *weights; /* dense, conv2d, sum pool */
    uint64_t *bias_pt;             /* dense / conv bias * Delta */
    int64_t *pool_w;               /* sum pool as a conv: identity over channels */
    int extract;                   /* LUT: threshold reads, one rotation per value (plan_extract) */
} node_exec;

struct veil_plan {
    const veil_program *prog;
    const veil_eval_key *ek;
    veil_backend *be;
    veil_backend_keys *keys;
    size_t max_batch;
    node_exec *nx;
    veil_backend_buffer **slots;
    size_t n_slots;
    veil_backend_buffer *tmp, *tmp2; /* scratch: max_batch * max node size ciphertexts */
    veil_progress_fn progress;
    void *progress_user;
    veil_node_observer_fn observer;
    void *observer_user;
};

/* The partition whose keys run node n's PBS (0 for programs without them). */
static uint32_t node_partition(const veil_program *p, const veil_node *n) {
    return p->n_partitions ? n->partition : 0;
}

/* What node n needs of a backend (veil_backend_supports_op), for messages. */
static const char *node_needs(const veil_node *n) {
    switch (n->kind) {
    case VEIL_NODE_LUT:
        return n->wop                    ? "WoP-PBS lookups (with scale)"
               : n->rotation_results > 1 ? "threshold reads (KS-PBS with extraction, and scale)"
                                         : "KS-PBS (with scale)";
    case VEIL_NODE_ROUND:
        return "KS-PBS (with scale and add)";
    case VEIL_NODE_ADD:
        return "additions";
    case VEIL_NODE_LINEAR:
        return n->linear == VEIL_LINEAR_DENSE       ? "dense layers"
               : n->linear == VEIL_LINEAR_CONV2D    ? "conv2d or sum pools"
               : n->linear == VEIL_LINEAR_SUMPOOL2D ? "conv2d or sum pools"
                                                    : "copies (flatten, concat)";
    default:
        return "uploads and downloads";
    }
}

void veil_plan_set_progress(veil_plan *plan, veil_progress_fn fn, void *user) {
    plan->progress = fn;
    plan->progress_user = user;
}

void veil_plan_set_observer(veil_plan *plan, veil_node_observer_fn fn, void *user) {
    plan->observer = fn;
    plan->observer_user = user;
}

/* The observer's copy of node i's ciphertexts (veil_plan_set_observer). */
static veil_status observe_node(veil_plan *plan, size_t i, size_t count) {
    const size_t words = veil_program_ct_words(plan->prog);
    uint64_t *h = malloc(count * words * sizeof *h);
    if (!h) return veil_error(VEIL_ERR_NOMEM, "observer: out of memory");
    const veil_status st = veil_backend_buffer_download(plan->nx[i].buf, count, h);
    if (st == VEIL_OK) plan->observer(plan->observer_user, (uint32_t)i, h, count);
    free(h);
    return st;
}

void veil_plan_free(veil_plan *plan) {
    if (!plan) return;
    if (plan->nx) {
        for (size_t i = 0; i < plan->prog->n_nodes; i++) {
            node_exec *x = &plan->nx[i];
            for (size_t j = 0; x->tables && j < x->n_tables; j++)
                veil_backend_tables_free(x->tables[j]);
            free(x->tables);
            for (size_t j = 0; x->luts && j < x->n_luts; j++)
                veil_lut_free(x->luts[j]);
            free(x->luts);
            veil_backend_weights_free(x->weights);
            free(x->bias_pt);
            free(x->pool_w);
        }
    }
    free(plan->nx);
    for (size_t i = 0; plan->slots && i < plan->n_slots; i++)
        veil_backend_buffer_free(plan->slots[i]);
    free(plan->slots);
    veil_backend_buffer_free(plan->tmp);
    veil_backend_buffer_free(plan->tmp2);
    veil_backend_keys_free(plan->keys);
    free(plan);
}

/* Threshold reads (veil_node.rotation_results): the node's copies of one
 * value as one rotation per value, result s of value i = output s n + i
 * (n = the value's size), extracted at the threshold of that output's
 * table. The tables must be what the compiler marks: 0 below a threshold,
 * one common value from it (or 0 throughout). */
static veil_status plan_extract(veil_plan *plan, size_t i) {
    const veil_program *p = plan->prog;
    const veil_node *n = &p->nodes[i];
    node_exec *x = &plan->nx[i];
    const veil_params *ps = plan->ek->parts[node_partition(p, n)].params;
    /* the input: J copies of one value (compile.c repeat_node: a 1x1
     * convolution of one channel into J, every weight 1, no bias) */
    const veil_node *c = &p->nodes[n->in[0]];
    const uint32_t J = n->rotation_results;
    const veil_conv_geom *g = &c->conv;
    const size_t R = (size_t)1 << n->in_bits, vn = c->n_in ? p->nodes[c->in[0]].size : 0;
    int ok = c->kind == VEIL_NODE_LINEAR && c->linear == VEIL_LINEAR_CONV2D && c->n_in == 1 &&
             g->c_in == 1 && g->c_out == J && g->kh == 1 && g->kw == 1 && g->stride_h == 1 &&
             g->stride_w == 1 && g->pad_h == 0 && g->pad_w == 0 &&
             (size_t)g->h_in * g->w_in == vn && !c->bias && c->weight && vn * J == n->size &&
             !n->approximate;
    for (uint32_t j = 0; ok && j < J; j++)
        ok = c->weight[j] == 1;
    uint64_t *thr = malloc(n->n_tables * sizeof *thr);
    if (!thr) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
    int64_t v = 0;
    for (uint32_t t = 0; ok && t < n->n_tables; t++) {
        const int64_t *T = n->tables + t * R;
        size_t r = 0;
        while (r < R && !T[r])
            r++;
        thr[t] = r; /* R: 0 throughout */
        if (r < R && !v) v = T[r];
        for (; ok && r < R; r++)
            ok = T[r] == v;
    }
    if (!ok) {
        free(thr);
        return veil_error(VEIL_ERR_FORMAT,
                          "node %zu is marked for threshold reads, and its input or tables are "
                          "not those of threshold reads",
                          i);
    }
    const uint64_t V = (uint64_t)v * veil_node_delta(n);
    veil_extract *ext = malloc(n->size * sizeof *ext);
    x->luts = calloc(1, sizeof *x->luts);
    x->tables = calloc(1, sizeof *x->tables);
    veil_status st = ext && x->luts && x->tables
                         ? veil_lut_steps_new(ps, n->in_bits, V, &x->luts[0])
                         : veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
    if (st == VEIL_OK) {
        x->n_luts = 1;
        x->n_tables = 1;
        for (size_t e = 0; e < n->size; e++)
            ext[e] = veil_lut_step(x->luts[0], V, thr[veil_node_table_of(n, e)]);
        st = veil_backend_tables_new_extract(plan->keys, node_partition(p, n), x->luts[0], ext, J,
                                             vn, &x->tables[0]);
    }
    free(ext);
    free(thr);
    if (st == VEIL_OK) x->extract = 1;
    return st;
}

static veil_status plan_luts(veil_plan *plan, size_t i) {
    const veil_program *p = plan->prog;
    const veil_node *n = &p->nodes[i];
    node_exec *x = &plan->nx[i];
    /* the test polynomials have the N of the node's partition */
    const veil_params *ps = plan->ek->parts[node_partition(p, n)].params;
    const uint64_t delta = veil_node_delta(n); /* LUT: its output's; ROUND: its input's */
    if (n->kind == VEIL_NODE_LUT && n->wop) {
        /* the node's tables as they are, on the backend's device once */
        x->tables = calloc(1, sizeof *x->tables);
        if (!x->tables) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
        x->n_tables = 1;
        return veil_backend_tables_new_wop(plan->keys, node_partition(p, n), n->tables, n->n_tables,
                                           n->size, n->table_inner, n->in_bits, delta,
                                           &x->tables[0]);
    }
    if (n->kind == VEIL_NODE_LUT && n->rotation_results > 1) return plan_extract(plan, i);
    if (n->kind == VEIL_NODE_LUT) {
        const size_t t = (size_t)1 << n->in_bits;
        x->n_luts = n->n_tables;
        x->luts = calloc(n->n_tables, sizeof *x->luts);
        if (!x->luts) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
        for (uint32_t c = 0; c < n->n_tables; c++)
            VEIL_TRY(veil_lut_new(ps, n->tables + c * t, n->in_bits, 0, delta, &x->luts[c]));
        x->tables = calloc(1, sizeof *x->tables);
        if (!x->tables) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
        x->n_tables = 1;
        uint32_t *index = NULL;
        const size_t n_index = plan->max_batch * n->size;
        if (n->n_tables > 1) {
            /* per channel: ciphertext e of a batch reads its channel's table */
            index = malloc(n_index * sizeof *index);
            if (!index) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
            for (size_t e = 0; e < n_index; e++)
                index[e] = veil_node_table_of(n, e);
        }
        veil_status st = veil_backend_tables_new(plan->keys, node_partition(p, n),
                                                 (const veil_lut *const *)x->luts, x->n_luts, index,
                                                 index ? n_index : 0, &x->tables[0]);
        free(index);
        VEIL_TRY(st);
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
        x->tables = calloc(x->n_luts, sizeof *x->tables);
        if (!x->tables) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
        x->n_tables = x->n_luts;
        for (size_t t = 0; t < x->n_luts; t++)
            if (x->luts[t])
                VEIL_TRY(veil_backend_tables_new(plan->keys, node_partition(p, n),
                                                 (const veil_lut *const *)&x->luts[t], 1, NULL, 0,
                                                 &x->tables[t]));
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
                              n->layer, veil_backend_name(be), node_needs(n));
    }
    veil_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return veil_error(VEIL_ERR_NOMEM, "plan: out of memory");
    plan->prog = prog;
    plan->ek = ek;
    plan->be = be;
    plan->max_batch = max_batch;
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
    /* liveness: a node's buffer is free after its last consumer ran; a slot
     * (a backend buffer) holds one live node at a time. Inputs take slots too
     * and are uploaded when their node comes, so a slot is never written
     * before its previous node's last use. */
    for (size_t i = 0; st == VEIL_OK && i < nn; i++)
        for (uint32_t j = 0; j < prog->nodes[i].n_in; j++)
            last[prog->nodes[i].in[j]] = i;
    size_t n_slots = 0;
    for (size_t i = 0; st == VEIL_OK && i < nn; i++) {
        const veil_node *n = &prog->nodes[i];
        if (n->kind != VEIL_NODE_OUTPUT) {
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
            if (last[src] == i && prog->nodes[src].kind != VEIL_NODE_OUTPUT)
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
        st = veil_backend_buffer_new(plan->keys, max_batch * slot_cap[k], &plan->slots[k]);
    if (st == VEIL_OK) st = veil_backend_buffer_new(plan->keys, max_batch * max_size, &plan->tmp);
    if (st == VEIL_OK) st = veil_backend_buffer_new(plan->keys, max_batch * max_size, &plan->tmp2);
    for (size_t i = 0; st == VEIL_OK && i < nn; i++) {
        const veil_node *n = &prog->nodes[i];
        const uint64_t delta = veil_node_delta(n);
        node_exec *x = &plan->nx[i];
        if (n->kind != VEIL_NODE_OUTPUT) x->buf = plan->slots[slot_of[i]];
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
        if (n->kind == VEIL_NODE_LINEAR && n->linear == VEIL_LINEAR_DENSE)
            st = veil_backend_weights_new_dense(plan->keys, n->weight, n->n_weight_cols,
                                                n->n_weight_rows, x->bias_pt, &x->weights);
        else if (n->kind == VEIL_NODE_LINEAR &&
                 (n->linear == VEIL_LINEAR_CONV2D || n->linear == VEIL_LINEAR_SUMPOOL2D))
            st = veil_backend_weights_new_conv2d(
                plan->keys, &n->conv, n->linear == VEIL_LINEAR_CONV2D ? n->weight : x->pool_w,
                x->bias_pt, &x->weights);
        if (st == VEIL_OK) st = plan_luts(plan, i);
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

/* The rounding chunks (veil_round_chunk_*): V = in + offset; per chunk, the
 * sign PBS added and its constant taken off, then the identity PBS on the low
 * bits subtracted. Every step is a backend op on the node's buffer. */
static veil_status run_round(veil_plan *plan, const veil_node *n, node_exec *x,
                             const veil_backend_buffer *in, size_t batch) {
    const size_t count = batch * n->size;
    const uint64_t delta = veil_node_delta(n);
    veil_backend_buffer *V = x->buf;
    VEIL_TRY(veil_backend_scale(V, in, count, 1, (uint64_t)n->offset * delta));
    for (unsigned q = 0; q < veil_round_chunk_count(n); q++) {
        const veil_round_chunk c = veil_round_chunk_get(n, q);
        const uint64_t f = (uint64_t)1 << c.shift;
        /* bits j..j+c-1 of V to the top c bits of the torus */
        VEIL_TRY(veil_backend_scale(plan->tmp, V, count, f, 0));
        VEIL_TRY(veil_backend_ks_pbs(x->tables[2 * q], plan->tmp, count, plan->tmp2));
        VEIL_TRY(veil_backend_add(V, V, plan->tmp2, count, 1));
        VEIL_TRY(veil_backend_scale(V, V, count, 1, 0 - veil_round_chunk_sign_const(&c, delta)));
        if (c.pbs > 1) {
            VEIL_TRY(veil_backend_scale(plan->tmp, V, count, f, 0));
            VEIL_TRY(veil_backend_ks_pbs(x->tables[2 * q + 1], plan->tmp, count, plan->tmp2));
            VEIL_TRY(veil_backend_add(V, V, plan->tmp2, count, (uint64_t)0 - 1));
        }
    }
    return VEIL_OK;
}

/* position of node i in a list of node indices */
static uint32_t node_slot_in(const uint32_t *list, uint32_t n, size_t i) {
    uint32_t o = 0;
    while (o < n && list[o] != i)
        o++;
    VEIL_ASSERT(o < n);
    return o;
}

veil_status veil_plan_execute(veil_plan *plan, const uint64_t *const *inputs, size_t batch,
                              uint64_t *const *outputs) {
    if (!plan || !inputs || !outputs)
        return veil_error(VEIL_ERR_ARG, "veil_plan_execute: NULL argument");
    if (batch == 0 || batch > plan->max_batch)
        return veil_error(VEIL_ERR_ARG, "veil_plan_execute: batch %zu, the plan holds 1..%zu",
                          batch, plan->max_batch);
    const veil_program *p = plan->prog;
    const uint64_t total = p->pbs_per_sample * batch;
    uint64_t done = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        node_exec *x = &plan->nx[i];
        const veil_backend_buffer *in = n->n_in ? plan->nx[n->in[0]].buf : NULL;
        const size_t count = batch * n->size;
        veil_status st = VEIL_OK;
        switch (n->kind) {
        case VEIL_NODE_INPUT:
            st = veil_backend_buffer_upload(
                x->buf, inputs[node_slot_in(p->input_nodes, p->n_inputs, i)], count);
            break;
        case VEIL_NODE_OUTPUT:
            st = veil_backend_buffer_download(
                in, count, outputs[node_slot_in(p->output_nodes, p->n_outputs, i)]);
            break;
        case VEIL_NODE_ADD:
            st = veil_backend_add(x->buf, in, plan->nx[n->in[1]].buf, count, 1);
            break;
        case VEIL_NODE_LINEAR:
            switch (n->linear) {
            case VEIL_LINEAR_DENSE:
                st = veil_backend_linear(x->weights, in, batch, x->buf);
                break;
            case VEIL_LINEAR_CONV2D:
            case VEIL_LINEAR_SUMPOOL2D:
                st = veil_backend_conv2d(x->weights, in, batch, x->buf);
                break;
            case VEIL_LINEAR_FLATTEN:
                st = veil_backend_copy(x->buf, 0, 0, in, 0, 0, count, 1);
                break;
            case VEIL_LINEAR_CONCAT: {
                /* input j's slice of every sample */
                size_t off = 0;
                for (uint32_t j = 0; st == VEIL_OK && j < n->n_in; j++) {
                    const size_t nj = p->nodes[n->in[j]].size;
                    st = veil_backend_copy(x->buf, off, n->size, plan->nx[n->in[j]].buf, 0, nj, nj,
                                           batch);
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
            if (n->approximate) {
                /* boundaries between integers: -2^(k-1) + 1/2 (k >= 1, the compiler's) */
                VEIL_ASSERT(n->round_bits >= 1);
                add += (0 - (delta << (n->round_bits - 1))) + (delta >> 1);
            }
            const uint64_t f = (uint64_t)1 << n->shift;
            if (n->wop) {
                /* its bits at the top (the shift as a PBS's), then one
                 * WoP-PBS a value */
                st = veil_backend_scale(plan->tmp, in, count, f, add * f);
                if (st == VEIL_OK)
                    st = veil_backend_wop_pbs(x->tables[0], plan->tmp, count, x->buf);
            } else if (x->extract) {
                /* copy 0 of the value (plan_extract), then its J results
                 * into their copies' places */
                const uint32_t J = n->rotation_results;
                const size_t vn = n->size / J, vc = batch * vn;
                st = veil_backend_copy(plan->tmp, 0, vn, in, 0, n->size, vn, batch);
                if (st == VEIL_OK) st = veil_backend_scale(plan->tmp, plan->tmp, vc, f, add * f);
                if (st == VEIL_OK)
                    st = veil_backend_ks_pbs_extract(x->tables[0], plan->tmp, vc, plan->tmp2);
                for (uint32_t j = 0; st == VEIL_OK && j < J; j++)
                    st = veil_backend_copy(x->buf, j * vn, n->size, plan->tmp2, j * vc, vn, vn,
                                           batch);
            } else {
                st = veil_backend_scale(plan->tmp, in, count, f, add * f);
                if (st == VEIL_OK) st = veil_backend_ks_pbs(x->tables[0], plan->tmp, count, x->buf);
            }
            done += n->pbs_per_sample * batch;
            break;
        }
        }
        if (st != VEIL_OK) {
            veil_error_prefix("layer %s: ", n->layer);
            return st;
        }
        if (plan->observer && n->kind != VEIL_NODE_OUTPUT &&
            (st = observe_node(plan, i, count)) != VEIL_OK) {
            veil_error_prefix("layer %s: ", n->layer);
            return st;
        }
        if (plan->progress && (n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND))
            plan->progress(plan->progress_user, done, total, n->layer);
    }
    return VEIL_OK;
}

/* ---- plan groups ------------------------------------------------------------------ */

/* One plan's part of a call: samples [begin, begin + count) of the batch. */
typedef struct group_share {
    veil_plan_group *g;
    size_t plan, begin, count;
    const uint64_t **in; /* the caller's inputs at the share's first sample */
    uint64_t **out;      /* the group's output buffers at the share's first sample */
    uint64_t done;       /* PBS done (progress) */
    veil_status st;
    char msg[1024]; /* the plan's error message (thread-local there) */
} group_share;

struct veil_plan_group {
    const veil_program *prog;
    size_t n, max_batch;
    veil_plan **plans;
    group_share *shares;
    uint64_t **stage; /* per output: max_batch samples of ciphertexts (n > 1) */
    veil_progress_fn progress;
    void *progress_user;
    uint64_t progress_total;
    pthread_mutex_t mu; /* progress */
};

void veil_plan_group_free(veil_plan_group *g) {
    if (!g) return;
    for (size_t i = 0; g->plans && i < g->n; i++)
        veil_plan_free(g->plans[i]);
    free(g->plans);
    for (size_t i = 0; g->shares && i < g->n; i++) {
        free(g->shares[i].in);
        free(g->shares[i].out);
    }
    free(g->shares);
    for (uint32_t o = 0; g->stage && o < g->prog->n_outputs; o++)
        free(g->stage[o]);
    free(g->stage);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

veil_status veil_plan_group_new(const veil_program *prog, const veil_eval_key *ek,
                                veil_backend *const *bes, size_t n, size_t max_batch,
                                veil_plan_group **out) {
    if (!prog || !ek || !bes || !out || n == 0 || n > VEIL_BACKEND_MAX_DEVICES || max_batch == 0)
        return veil_error(VEIL_ERR_ARG,
                          "veil_plan_group_new: NULL argument, %zu backends (expected 1..%d) or "
                          "max_batch 0",
                          n, VEIL_BACKEND_MAX_DEVICES);
    for (size_t i = 0; i < n; i++)
        if (!bes[i]) return veil_error(VEIL_ERR_ARG, "veil_plan_group_new: backend %zu is NULL", i);
    veil_plan_group *g = calloc(1, sizeof *g);
    if (!g) return veil_error(VEIL_ERR_NOMEM, "plan group: out of memory");
    pthread_mutex_init(&g->mu, NULL);
    g->prog = prog;
    g->n = n;
    g->max_batch = max_batch;
    g->plans = calloc(n, sizeof *g->plans);
    g->shares = calloc(n, sizeof *g->shares);
    veil_status st =
        g->plans && g->shares ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "plan group: out of memory");
    /* a share holds at most ceil(max_batch / n) samples */
    const size_t per_plan = n == 1 ? max_batch : (max_batch + n - 1) / n;
    for (size_t i = 0; st == VEIL_OK && i < n; i++) {
        group_share *sh = &g->shares[i];
        sh->g = g;
        sh->plan = i;
        sh->in = calloc(prog->n_inputs + 1, sizeof *sh->in);
        sh->out = calloc(prog->n_outputs + 1, sizeof *sh->out);
        if (!sh->in || !sh->out) st = veil_error(VEIL_ERR_NOMEM, "plan group: out of memory");
        if (st == VEIL_OK) st = veil_plan_new(prog, ek, bes[i], per_plan, &g->plans[i]);
        if (st != VEIL_OK && n > 1)
            veil_error_prefix("plan %zu of %zu (%s): ", i, n, veil_backend_describe(bes[i]));
    }
    if (st == VEIL_OK && n > 1) {
        const size_t lwe = veil_program_ct_words(prog);
        g->stage = calloc(prog->n_outputs + 1, sizeof *g->stage);
        if (!g->stage) st = veil_error(VEIL_ERR_NOMEM, "plan group: out of memory");
        for (uint32_t o = 0; st == VEIL_OK && o < prog->n_outputs; o++)
            if (!(g->stage[o] = malloc(max_batch * veil_program_output_size(prog, o) * lwe *
                                       sizeof(uint64_t))))
                st = veil_error(VEIL_ERR_NOMEM, "plan group: out of memory for %zu-sample outputs",
                                max_batch);
    }
    if (st != VEIL_OK) {
        veil_plan_group_free(g);
        return st;
    }
    *out = g;
    return VEIL_OK;
}

size_t veil_plan_group_size(const veil_plan_group *g) {
    return g ? g->n : 0;
}

/* A plan's progress: the sum over the shares, against the whole batch. */
static void group_progress(void *user, uint64_t done, uint64_t total, const char *layer) {
    group_share *sh = user;
    veil_plan_group *g = sh->g;
    (void)total;
    pthread_mutex_lock(&g->mu);
    sh->done = done;
    uint64_t sum = 0;
    for (size_t i = 0; i < g->n; i++)
        sum += g->shares[i].done;
    g->progress(g->progress_user, sum, g->progress_total, layer);
    pthread_mutex_unlock(&g->mu);
}

void veil_plan_group_set_progress(veil_plan_group *g, veil_progress_fn fn, void *user) {
    if (!g) return;
    g->progress = fn;
    g->progress_user = user;
    for (size_t i = 0; i < g->n; i++) {
        if (g->n == 1)
            veil_plan_set_progress(g->plans[i], fn, user);
        else
            veil_plan_set_progress(g->plans[i], fn ? group_progress : NULL, &g->shares[i]);
    }
}

static void *group_share_run(void *arg) {
    group_share *sh = arg;
    veil_plan *plan = sh->g->plans[sh->plan];
    sh->st = veil_plan_execute(plan, sh->in, sh->count, sh->out);
    if (sh->st != VEIL_OK) snprintf(sh->msg, sizeof sh->msg, "%s", veil_error_message());
    return NULL;
}

veil_status veil_plan_group_execute(veil_plan_group *g, const uint64_t *const *inputs, size_t batch,
                                    uint64_t *const *outputs) {
    if (!g || !inputs || !outputs)
        return veil_error(VEIL_ERR_ARG, "veil_plan_group_execute: NULL argument");
    if (g->n == 1) return veil_plan_execute(g->plans[0], inputs, batch, outputs);
    for (uint32_t k = 0; k < g->prog->n_inputs; k++)
        if (!inputs[k])
            return veil_error(VEIL_ERR_ARG, "veil_plan_group_execute: input %u is NULL", k);
    for (uint32_t o = 0; o < g->prog->n_outputs; o++)
        if (!outputs[o])
            return veil_error(VEIL_ERR_ARG, "veil_plan_group_execute: output %u is NULL", o);
    if (batch == 0 || batch > g->max_batch)
        return veil_error(VEIL_ERR_ARG,
                          "veil_plan_group_execute: batch %zu, the group holds 1..%zu", batch,
                          g->max_batch);
    const veil_program *p = g->prog;
    const size_t lwe = veil_program_ct_words(p), q = batch / g->n, r = batch % g->n;
    g->progress_total = p->pbs_per_sample * batch;
    for (size_t i = 0; i < g->n; i++) {
        group_share *sh = &g->shares[i];
        sh->count = q + (i < r);
        sh->begin = i * q + (i < r ? i : r);
        sh->done = 0;
        sh->st = VEIL_OK;
        sh->msg[0] = 0;
        for (uint32_t k = 0; k < p->n_inputs; k++)
            sh->in[k] = inputs[k] + sh->begin * veil_program_input_size(p, k) * lwe;
        for (uint32_t o = 0; o < p->n_outputs; o++)
            sh->out[o] = g->stage[o] + sh->begin * veil_program_output_size(p, o) * lwe;
    }
    /* shares 1.. on their own threads, share 0 here; a thread that cannot
     * start has its share run here too */
    pthread_t tid[VEIL_BACKEND_MAX_DEVICES];
    int started[VEIL_BACKEND_MAX_DEVICES] = {0};
    for (size_t i = 1; i < g->n; i++)
        if (g->shares[i].count)
            started[i] = pthread_create(&tid[i], NULL, group_share_run, &g->shares[i]) == 0;
    group_share_run(&g->shares[0]);
    for (size_t i = 1; i < g->n; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else if (g->shares[i].count)
            group_share_run(&g->shares[i]);
    }
    for (size_t i = 0; i < g->n; i++) {
        const group_share *sh = &g->shares[i];
        if (sh->count && sh->st != VEIL_OK) {
            return veil_error(sh->st, "plan %zu of %zu (%s), samples %zu..%zu of %zu: %s", i, g->n,
                              veil_backend_describe(g->plans[i]->be), sh->begin,
                              sh->begin + sh->count - 1, batch, sh->msg);
        }
    }
    for (uint32_t o = 0; o < p->n_outputs; o++)
        memcpy(outputs[o], g->stage[o],
               batch * veil_program_output_size(p, o) * lwe * sizeof(uint64_t));
    return VEIL_OK;
}
