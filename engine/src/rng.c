/* ChaCha20 keystreams (libsodium) and the noise samplers. */
#include "veil/rng.h"

#include <math.h>

#define VEIL_PI 3.14159265358979323846
#include <string.h>

#include <sodium.h>

#define VEIL_RNG_BUF 4096

struct veil_csprng {
    uint8_t key[crypto_stream_chacha20_ietf_KEYBYTES];
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
    uint32_t block; /* next 64-byte block counter */
    size_t pos;     /* bytes of buf already used */
    uint8_t buf[VEIL_RNG_BUF];
};

static void sodium_ready(void) {
    if (sodium_init() < 0) {
        fprintf(stderr, "veil: libsodium failed to initialise\n");
        abort();
    }
}

void veil_seed_random(uint8_t seed[VEIL_SEED_BYTES]) {
    sodium_ready();
    randombytes_buf(seed, VEIL_SEED_BYTES);
}

static void refill(veil_csprng *r) {
    const uint32_t blocks = VEIL_RNG_BUF / 64;
    if (r->block > UINT32_MAX - blocks) {
        /* 256 GiB used under this nonce: move to the next nonce. */
        for (size_t i = 0; i < sizeof r->nonce && ++r->nonce[i] == 0; i++) {
        }
        r->block = 0;
    }
    memset(r->buf, 0, sizeof r->buf);
    crypto_stream_chacha20_ietf_xor_ic(r->buf, r->buf, sizeof r->buf, r->nonce, r->block, r->key);
    r->block += blocks;
    r->pos = 0;
}

veil_status veil_csprng_new(const uint8_t *seed, veil_csprng **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_csprng_new: out is NULL");
    sodium_ready();
    veil_csprng *r = sodium_malloc(sizeof *r);
    if (!r) return veil_error(VEIL_ERR_NOMEM, "veil_csprng_new: out of memory");
    memset(r, 0, sizeof *r);
    if (seed)
        memcpy(r->key, seed, sizeof r->key);
    else
        randombytes_buf(r->key, sizeof r->key);
    refill(r);
    *out = r;
    return VEIL_OK;
}

void veil_csprng_free(veil_csprng *r) {
    if (r) sodium_free(r); /* wipes */
}

void veil_csprng_bytes(veil_csprng *r, void *buf, size_t len) {
    uint8_t *p = buf;
    while (len) {
        if (r->pos == VEIL_RNG_BUF) refill(r);
        size_t n = VEIL_RNG_BUF - r->pos;
        if (n > len) n = len;
        memcpy(p, r->buf + r->pos, n);
        sodium_memzero(r->buf + r->pos, n);
        r->pos += n;
        p += n;
        len -= n;
    }
}

uint64_t veil_csprng_u64(veil_csprng *r) {
    uint64_t v;
    veil_csprng_bytes(r, &v, sizeof v);
    return v;
}

void veil_csprng_fill_u64(veil_csprng *r, uint64_t *out, size_t count) {
    veil_csprng_bytes(r, out, count * sizeof *out);
}

void veil_csprng_fill_bits(veil_csprng *r, uint64_t *out, size_t count) {
    uint64_t word = 0;
    for (size_t i = 0; i < count; i++) {
        if (i % 64 == 0) word = veil_csprng_u64(r);
        out[i] = (word >> (i % 64)) & 1;
    }
    sodium_memzero(&word, sizeof word);
}

/* Uniform in (0, 1]: 53 random bits, never 0 (log stays finite). */
static double uniform_open0(veil_csprng *r) {
    return ((double)(veil_csprng_u64(r) >> 11) + 1.0) * 0x1p-53;
}

double veil_csprng_normal(veil_csprng *r) {
    double u1 = uniform_open0(r), u2 = uniform_open0(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * VEIL_PI * u2);
}

uint64_t veil_csprng_noise(veil_csprng *r, const veil_noise *noise) {
    if (noise->kind == VEIL_NOISE_TUNIFORM) {
        /* TUniform(b): b + 2 random bits r; value = (r >> 1) + (r & 1) - 2^b,
         * uniform on [-2^b, 2^b] with the two ends at half weight
         * (TFHE-rs, core_crypto/commons/math/random/t_uniform.rs). */
        unsigned b = noise->bound_log2;
        uint64_t v = veil_csprng_u64(r);
        v &= (b + 2 >= 64) ? ~(uint64_t)0 : (((uint64_t)1 << (b + 2)) - 1);
        return (v >> 1) + (v & 1) - ((uint64_t)1 << b);
    }
    double x = veil_csprng_normal(r) * noise->std_dev * 0x1p64;
    return (uint64_t)(int64_t)llround(x);
}
