/* deploy.c — the sample-major wire layout and key ids shared by the client
 * commands and veil-server (see veil/deploy.h). */
#include <string.h>

#include "veil/deploy.h"

size_t veil_program_sample_in_cts(const veil_program *p) {
    size_t t = 0;
    for (uint32_t i = 0; i < p->n_inputs; i++)
        t += veil_program_input_size(p, i);
    return t;
}

size_t veil_deploy_request_samples(const veil_program *p, size_t max_samples, size_t max_decoded) {
    const uint64_t big = p->params ? veil_params_big_dim(p->params) : 0;
    const uint64_t per = (uint64_t)veil_program_sample_in_cts(p) * (big + 1) * 8;
    const uint64_t fit = per ? max_decoded / per : max_samples;
    return max_samples < fit ? max_samples : fit ? (size_t)fit : 1;
}

size_t veil_program_sample_out_cts(const veil_program *p) {
    size_t t = 0;
    for (uint32_t i = 0; i < p->n_outputs; i++)
        t += veil_program_output_size(p, i);
    return t;
}

void veil_hex(const uint8_t *b, size_t n, char *out) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = 0;
}

int veil_key_id_valid(const char *s) {
    if (!s) return 0;
    size_t i = 0;
    for (; s[i]; i++) {
        char c = s[i];
        if (i >= VEIL_KEY_ID_CHARS || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return i == VEIL_KEY_ID_CHARS;
}
