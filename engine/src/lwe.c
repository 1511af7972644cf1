/* LWE encryption, decryption, encoding and the leveled operations. */
#include "internal.h"
#include "veil/tfhe.h"

#include <string.h>

veil_status veil_encryptor_new(const uint8_t *mask_seed, const uint8_t *noise_seed,
                               veil_encryptor **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_encryptor_new: out is NULL");
    veil_encryptor *e = calloc(1, sizeof *e);
    if (!e) return veil_error(VEIL_ERR_NOMEM, "veil_encryptor_new: out of memory");
    veil_status s = veil_csprng_new(mask_seed, &e->mask);
    if (s == VEIL_OK) s = veil_csprng_new(noise_seed, &e->noise);
    if (s != VEIL_OK) {
        veil_encryptor_free(e);
        return s;
    }
    *out = e;
    return VEIL_OK;
}

void veil_encryptor_free(veil_encryptor *e) {
    if (!e) return;
    veil_csprng_free(e->mask);
    veil_csprng_free(e->noise);
    free(e);
}

static uint64_t dot_key(const uint64_t *key, uint32_t dim, const uint64_t *a) {
    uint64_t acc = 0;
    for (uint32_t i = 0; i < dim; i++)
        acc += a[i] & (0 - key[i]); /* key bits are 0/1: branch-free select */
    return acc;
}

void veil_lwe_encrypt(veil_encryptor *enc, const uint64_t *key, uint32_t dim,
                      const veil_noise *noise, uint64_t plaintext, uint64_t *ct) {
    veil_csprng_fill_u64(enc->mask, ct, dim);
    ct[dim] = dot_key(key, dim, ct) + plaintext + veil_csprng_noise(enc->noise, noise);
}

uint64_t veil_lwe_phase(const uint64_t *key, uint32_t dim, const uint64_t *ct) {
    return ct[dim] - dot_key(key, dim, ct);
}

void veil_encrypt_big(veil_encryptor *enc, const veil_secret_key *sk, uint64_t plaintext,
                      uint64_t *ct) {
    veil_encrypt_big_prefix(enc, sk, sk->dim, &sk->params->glwe_noise, plaintext, ct);
}

void veil_encrypt_big_prefix(veil_encryptor *enc, const veil_secret_key *sk, uint32_t width,
                             const veil_noise *noise, uint64_t plaintext, uint64_t *ct) {
    VEIL_ASSERT(width >= 1 && width <= sk->dim);
    veil_lwe_encrypt(enc, sk->master, width, noise, plaintext, ct);
    if (width == sk->dim) return;
    ct[sk->dim] = ct[width];
    memset(ct + width, 0, sizeof(uint64_t) * (sk->dim - width));
}

uint64_t veil_phase_big(const veil_secret_key *sk, const uint64_t *ct) {
    return veil_lwe_phase(sk->master, sk->dim, ct);
}

void veil_encrypt_small(veil_encryptor *enc, const veil_secret_key *sk, uint32_t part,
                        uint64_t plaintext, uint64_t *ct) {
    VEIL_ASSERT(part < sk->n_parts);
    const veil_params *p = sk->parts[part];
    veil_lwe_encrypt(enc, sk->small[part], p->lwe_dim, &p->lwe_noise, plaintext, ct);
}

uint64_t veil_phase_small(const veil_secret_key *sk, uint32_t part, const uint64_t *ct) {
    VEIL_ASSERT(part < sk->n_parts);
    return veil_lwe_phase(sk->small[part], sk->parts[part]->lwe_dim, ct);
}

int64_t veil_decode(uint64_t phase, unsigned bits, int is_signed) {
    VEIL_ASSERT(bits >= 1 && bits <= 62); /* delta = 2^(63 - bits) >= 2 */
    const unsigned shift = 63 - bits;
    /* round to nearest multiple of delta, keep bits + 1 (padding) bits */
    uint64_t m = (phase + ((uint64_t)1 << (shift - 1))) >> shift;
    if (is_signed) {
        /* sign-extend from bits + 1 bits (the padding bit carries the sign) */
        const unsigned w = bits + 1;
        m &= (w >= 64) ? ~(uint64_t)0 : (((uint64_t)1 << w) - 1);
        if (w < 64 && (m >> (w - 1)) & 1) return (int64_t)(m | ~(((uint64_t)1 << w) - 1));
        return (int64_t)m;
    }
    return (int64_t)(m & (((uint64_t)1 << (bits + 1)) - 1));
}

void veil_lwe_add(uint64_t *out, const uint64_t *a, const uint64_t *b, uint32_t d) {
    for (uint32_t i = 0; i <= d; i++)
        out[i] = a[i] + b[i];
}

void veil_lwe_sub(uint64_t *out, const uint64_t *a, const uint64_t *b, uint32_t d) {
    for (uint32_t i = 0; i <= d; i++)
        out[i] = a[i] - b[i];
}

void veil_lwe_neg(uint64_t *out, const uint64_t *a, uint32_t d) {
    for (uint32_t i = 0; i <= d; i++)
        out[i] = 0 - a[i];
}

void veil_lwe_mul_scalar(uint64_t *out, const uint64_t *a, int64_t w, uint32_t d) {
    for (uint32_t i = 0; i <= d; i++)
        out[i] = a[i] * (uint64_t)w;
}

void veil_lwe_add_plain(uint64_t *ct, uint64_t plaintext, uint32_t d) {
    ct[d] += plaintext;
}

void veil_lwe_dot(uint64_t *out, const uint64_t *cts, const int64_t *w, size_t count, uint32_t d) {
    memset(out, 0, sizeof(uint64_t) * (d + 1));
    for (size_t c = 0; c < count; c++) {
        const uint64_t wc = (uint64_t)w[c];
        if (!wc) continue;
        const uint64_t *ct = cts + c * (size_t)(d + 1);
        for (uint32_t i = 0; i <= d; i++)
            out[i] += ct[i] * wc;
    }
}
