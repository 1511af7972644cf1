/* program_crypt.c — a compiled program's key sets and its client side:
 * keygen and key checks for the program's partitions, encrypt (v * Delta of
 * the input node) and decrypt/decode (the output node's Delta and compiled
 * range), and the server's check that inputs keep the program's input
 * width. See veil/program_crypt.h; the encoding is veil/program.h's. */
#include <stdio.h>

#include "veil/program.h"
#include "veil/program_crypt.h"
#include "veil/serialize.h"
#include "veil/tfhe.h"

size_t veil_program_ct_words(const veil_program *p) {
    return p->params ? (size_t)veil_params_big_dim(p->params) + 1 : 0;
}

uint32_t veil_program_key_sets(const veil_program *p, const veil_params **parts) {
    if (!p || !p->params) return 0;
    if (p->n_partitions == 0 || !p->partitions) { /* a program from before partitions */
        parts[0] = p->params;
        return 1;
    }
    uint32_t n = p->n_partitions < VEIL_MAX_PARTITIONS ? p->n_partitions : VEIL_MAX_PARTITIONS;
    for (uint32_t i = 0; i < n; i++)
        parts[i] = p->partitions[i].params;
    return n;
}

uint32_t veil_program_ksk_rows(const veil_program *p, uint32_t *rows) {
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    const uint32_t n = veil_program_key_sets(p, parts);
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t r = p->partitions && i < p->n_partitions ? p->partitions[i].ksk_rows : 0;
        rows[i] = r ? r : veil_params_big_dim(parts[0]);
    }
    return n;
}

static veil_status program_parts(const veil_program *p, const char *what, const veil_params **parts,
                                 uint32_t *n) {
    if (!p->params)
        return veil_error(VEIL_ERR_PARAMS,
                          "%s: the program has no parameter set (simulate only: %s)", what,
                          p->params_note ? p->params_note : "none");
    if (p->n_partitions > VEIL_MAX_PARTITIONS)
        return veil_error(VEIL_ERR_UNSUPPORTED, "%s: the program has %u partitions, at most %u",
                          what, p->n_partitions, VEIL_MAX_PARTITIONS);
    *n = veil_program_key_sets(p, parts);
    return VEIL_OK;
}

veil_status veil_program_keygen(const veil_program *p, const uint8_t *seed, veil_secret_key **out) {
    if (!p || !out) return veil_error(VEIL_ERR_ARG, "veil_program_keygen: NULL argument");
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t n = 0;
    VEIL_TRY(program_parts(p, "keygen", parts, &n));
    return veil_secret_key_new_set(parts, n, seed, out);
}

veil_status veil_program_check_eval_key(const veil_program *p, const veil_eval_key *ek) {
    if (!p || !ek) return veil_error(VEIL_ERR_ARG, "veil_program_check_eval_key: NULL argument");
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t n = 0;
    VEIL_TRY(program_parts(p, "evaluation key", parts, &n));
    VEIL_TRY(veil_eval_key_check_partitions(ek, parts, n));
    uint32_t rows[VEIL_MAX_PARTITIONS];
    veil_program_ksk_rows(p, rows);
    for (uint32_t i = 0; i < n; i++)
        if (ek->parts[i].ksk_rows < rows[i])
            return veil_error(VEIL_ERR_PARAMS,
                              "evaluation key: partition %u (%s) has a keyswitching key of %u "
                              "rows, the program's lookups there read values %u wide: make "
                              "keys for this program (veil keygen)",
                              i, parts[i]->id, ek->parts[i].ksk_rows, rows[i]);
    return VEIL_OK;
}

veil_status veil_program_eval_key_new(const veil_program *p, const veil_secret_key *sk,
                                      veil_key_domains keep, const uint8_t *mask_seed,
                                      const uint8_t *noise_seed, veil_eval_key **out) {
    if (!p || !sk || !out)
        return veil_error(VEIL_ERR_ARG, "veil_program_eval_key_new: NULL argument");
    VEIL_TRY(veil_program_check_secret_key(p, sk));
    uint32_t rows[VEIL_MAX_PARTITIONS];
    veil_program_ksk_rows(p, rows);
    return veil_eval_key_new_rows(sk, rows, keep, mask_seed, noise_seed, out);
}

veil_status veil_program_check_secret_key(const veil_program *p, const veil_secret_key *sk) {
    if (!p || !sk) return veil_error(VEIL_ERR_ARG, "veil_program_check_secret_key: NULL argument");
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t n = 0;
    VEIL_TRY(program_parts(p, "secret key", parts, &n));
    int same = veil_secret_key_n_partitions(sk) == n;
    for (uint32_t i = 0; same && i < n; i++)
        same = veil_secret_key_partition(sk, i) == parts[i];
    if (same) return VEIL_OK;
    char have[512] = "", want[512] = "";
    size_t oh = 0, ow = 0;
    for (uint32_t i = 0; i < veil_secret_key_n_partitions(sk) && oh + 1 < sizeof have; i++)
        oh += (size_t)snprintf(have + oh, sizeof have - oh, "%s%s", i ? ", " : "",
                               veil_secret_key_partition(sk, i)->id);
    for (uint32_t i = 0; i < n && ow + 1 < sizeof want; i++)
        ow += (size_t)snprintf(want + ow, sizeof want - ow, "%s%s", i ? ", " : "", parts[i]->id);
    return veil_error(VEIL_ERR_PARAMS,
                      "the secret key has %u partitions [%s], the program needs %u [%s]: make "
                      "keys for this program (veil keygen)",
                      veil_secret_key_n_partitions(sk), have, n, want);
}

size_t veil_program_eval_key_bytes(const veil_program *p) {
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t rows[VEIL_MAX_PARTITIONS];
    const uint32_t n = veil_program_key_sets(p, parts);
    veil_program_ksk_rows(p, rows);
    return n ? veil_eval_key_serialized_bytes(parts, rows, n) : 0;
}

size_t veil_program_eval_key_raw_bytes(const veil_program *p) {
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t rows[VEIL_MAX_PARTITIONS];
    const uint32_t n = veil_program_key_sets(p, parts);
    veil_program_ksk_rows(p, rows);
    return n ? veil_eval_key_raw_bytes(parts, rows, n) : 0;
}

void veil_program_print_keys(const veil_program *p, FILE *f) {
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t rows[VEIL_MAX_PARTITIONS];
    const uint32_t n = veil_program_key_sets(p, parts);
    if (!n) return;
    veil_program_ksk_rows(p, rows);
    const uint32_t D = veil_params_big_dim(parts[0]);
    const double MiB = 1048576.0;
    fprintf(f, "keys: %u partition%s, master key D = %u (partition 0's k*N)\n", n, n > 1 ? "s" : "",
            D);
    if (p->input_width)
        fprintf(f, "inputs under the key's first %u coefficients (%s's GLWE key and noise)\n",
                p->input_width, veil_program_input_set(p)->id);
    fprintf(f, "  %-3s %-30s %10s %10s %10s %12s %12s\n", "#", "parameter set", "BSK MiB",
            "KSK rows", "KSK MiB", "file MiB", "memory MiB");
    double t_bsk = 0, t_ksk = 0, t_file = 0, t_mem = 0;
    for (uint32_t i = 0; i < n; i++) {
        const double bsk = 8.0 * (double)veil_eval_key_bsk_words(parts[i]);
        /* as held, in memory and in the file's bodies: 32-bit words (veil/ks32.h) */
        const double ksk = 4.0 * (double)veil_eval_key_ksk_words(parts[i], rows[i]);
        const double file = (double)veil_eval_key_partition_serialized_bytes(parts[i], rows[i]);
        const double mem = (double)veil_eval_key_prepared_bytes(parts[i], rows[i]);
        fprintf(f, "  %-3u %-30s %10.1f %10u %10.1f %12.1f %12.1f\n", i, parts[i]->id, bsk / MiB,
                rows[i], ksk / MiB, file / MiB, mem / MiB);
        t_bsk += bsk;
        t_ksk += ksk;
        t_file += file;
        t_mem += mem;
    }
    fprintf(f, "  %-3s %-30s %10.1f %10s %10.1f %12.1f %12.1f\n", "", "total", t_bsk / MiB, "",
            t_ksk / MiB, (double)veil_program_eval_key_bytes(p) / MiB, t_mem / MiB);
    (void)t_file;
}

int64_t veil_program_decode(const veil_program *p, uint32_t output, uint64_t phase) {
    const veil_node *n = &p->nodes[p->output_nodes[output]];
    /* m = round(phase / Delta) mod 2^(width+1) (veil_decode, unsigned), then
     * the representative in [lo, lo + 2^(width+1)) */
    const uint64_t m = (uint64_t)veil_decode(phase, n->width, 0);
    const uint64_t mod_mask = ((uint64_t)1 << (n->width + 1)) - 1;
    uint64_t d = (m - (uint64_t)n->lo) & mod_mask;
    return (int64_t)((uint64_t)n->lo + d);
}

veil_status veil_program_encrypt(const veil_program *p, veil_encryptor *enc,
                                 const veil_secret_key *sk, uint32_t input, const int64_t *values,
                                 size_t batch, uint64_t *cts) {
    if (!p || !enc || !sk || !values || !cts || input >= p->n_inputs)
        return veil_error(VEIL_ERR_ARG, "veil_program_encrypt: bad argument");
    if (veil_program_check_secret_key(p, sk) != VEIL_OK) {
        veil_error_prefix("encrypt: ");
        return VEIL_ERR_PARAMS;
    }
    const veil_node *n = &p->nodes[p->input_nodes[input]];
    const size_t lwe = veil_program_ct_words(p), count = batch * n->size;
    const uint64_t delta = veil_node_delta(n);
    /* under the input set's GLWE key, a prefix of the master key, with its
     * noise (veil_program.input_width) */
    const veil_params *is = veil_program_input_set(p);
    if (!is) return veil_error(VEIL_ERR_ARG, "encrypt: no parameter set has the input width");
    const uint32_t w = veil_params_big_dim(is);
    for (size_t i = 0; i < count; i++) {
        if (values[i] < n->lo || values[i] > n->hi)
            return veil_error(
                VEIL_ERR_RANGE,
                "encrypt: input %s sample %zu element %zu = %lld outside [%lld, %lld]", n->layer,
                i / n->size, i % n->size, (long long)values[i], (long long)n->lo, (long long)n->hi);
        veil_encrypt_big_prefix(enc, sk, w, &is->glwe_noise, (uint64_t)values[i] * delta,
                                cts + i * lwe);
    }
    return VEIL_OK;
}

veil_status veil_program_decrypt(const veil_program *p, const veil_secret_key *sk, uint32_t output,
                                 const uint64_t *cts, size_t batch, int64_t *values) {
    if (!p || !sk || !cts || !values || output >= p->n_outputs)
        return veil_error(VEIL_ERR_ARG, "veil_program_decrypt: bad argument");
    if (veil_program_check_secret_key(p, sk) != VEIL_OK) {
        veil_error_prefix("decrypt: ");
        return VEIL_ERR_PARAMS;
    }
    const veil_node *n = &p->nodes[p->output_nodes[output]];
    const size_t lwe = veil_program_ct_words(p), count = batch * n->size;
    for (size_t i = 0; i < count; i++)
        values[i] = veil_program_decode(p, output, veil_phase_big(sk, cts + i * lwe));
    return VEIL_OK;
}

veil_status veil_program_check_inputs(const veil_program *p, const uint64_t *cts, size_t count) {
    if (!p || !p->params || (count && !cts))
        return veil_error(VEIL_ERR_ARG, "veil_program_check_inputs: bad argument");
    const uint32_t D = veil_params_big_dim(p->params), w = p->input_width;
    if (w == 0 || w >= D) return VEIL_OK;
    const size_t lwe = veil_program_ct_words(p);
    for (size_t i = 0; i < count; i++) {
        const uint64_t *a = cts + i * lwe;
        for (uint32_t j = w; j < D; j++)
            if (a[j])
                return veil_error(VEIL_ERR_ARG,
                                  "ciphertext %zu: mask word %u is not 0, past the program's "
                                  "input width %u (inputs are encrypted under the first %u of "
                                  "the master key's %u coefficients, their masks 0 after)",
                                  i, j, w, w, D);
    }
    return VEIL_OK;
}

veil_status veil_program_check_input_batch(const veil_program *p, const veil_ct_batch *b) {
    if (!p || !p->params || !b || (b->count && !b->data))
        return veil_error(VEIL_ERR_ARG, "veil_program_check_input_batch: bad argument");
    const uint32_t D = veil_params_big_dim(p->params), w = p->input_width;
    if (b->dim != D)
        return veil_error(VEIL_ERR_ARG,
                          "ciphertext batch of dimension %u, the program's inputs are big-key "
                          "LWEs of dimension %u",
                          b->dim, D);
    if (w == 0 || w >= D) return VEIL_OK;
    if (b->mask_width > w)
        return veil_error(VEIL_ERR_ARG,
                          "masks drawn over %u words (seeded batch's mask width), past the "
                          "program's input width %u (inputs are encrypted under the first %u of "
                          "the master key's %u coefficients, their masks 0 after)",
                          b->mask_width, w, w, D);
    /* a batch's count * (dim + 1) words fit size_t (veil_ct_batch_new) */
    return veil_program_check_inputs(p, b->data, (size_t)b->count);
}
