/* Binary files of keys and ciphertext batches (format: veil/serialize.h).
 *
 * One writer and one reader, each over either memory or a FILE, hash what
 * passes through them, so the in-memory and the file forms share every line
 * of encoding and validation. Loading validates the header against the
 * parameter table and the input length before allocating anything. */
#define _POSIX_C_SOURCE 200809L

#include "veil/serialize.h"
#include "veil/atomic_file.h"
#include "veil/ks32.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

enum { HDR = VEIL_SERIAL_HEADER_BYTES, SUM = VEIL_SERIAL_CHECKSUM_BYTES };
enum { ID_BYTES = VEIL_SERIAL_PARAMS_ID_BYTES, CHUNK_WORDS = 512 };

static const char *const k_magic[] = {NULL, "VEILSK01", "VEILEK01", "VEILCT01", "VEILCS01"};
static const char *const k_kind_name[] = {NULL, "a secret key", "an evaluation key",
                                          "a ciphertext batch", "a seeded ciphertext batch"};
#define KIND_MAX 4u
#define KIND_BIT(k) (1u << (k))
#define ALL_KINDS (KIND_BIT(1) | KIND_BIT(2) | KIND_BIT(3) | KIND_BIT(4))

/* Domain separation of the key fingerprint. */
static const char k_fp_domain[] = "veil/secret-key-fingerprint/v2";

/* ---- little-endian helpers ------------------------------------------------ */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int all_zero(const uint8_t *p, size_t n) {
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* ---- header ----------------------------------------------------------------- */

typedef struct header {
    uint32_t version, kind;
    char params_id[ID_BYTES];
    uint8_t key_fp[VEIL_KEY_FP_BYTES];
    uint8_t model_fp[VEIL_MODEL_FP_BYTES];
    uint8_t mask_seed[VEIL_SEED_BYTES];
    uint64_t len_a, len_b;
    uint32_t dim, reserved;
    uint64_t payload;
} header;

static void header_encode(const header *h, uint8_t out[HDR]) {
    memset(out, 0, HDR);
    memcpy(out, k_magic[h->kind], 8);
    put_u32(out + 8, h->version);
    put_u32(out + 12, h->kind);
    memcpy(out + 16, h->params_id, ID_BYTES);
    memcpy(out + 64, h->key_fp, VEIL_KEY_FP_BYTES);
    memcpy(out + 80, h->model_fp, VEIL_MODEL_FP_BYTES);
    memcpy(out + 112, h->mask_seed, VEIL_SEED_BYTES);
    put_u64(out + 144, h->len_a);
    put_u64(out + 152, h->len_b);
    put_u32(out + 160, h->dim);
    put_u32(out + 164, h->reserved);
    put_u64(out + 168, h->payload);
}

static int is_key_kind(uint32_t kind) {
    return kind == VEIL_SERIAL_SECRET_KEY || kind == VEIL_SERIAL_EVAL_KEY;
}

static uint32_t version_of(uint32_t kind) {
    return kind == VEIL_SERIAL_EVAL_KEY     ? VEIL_SERIAL_EVAL_KEY_VERSION
           : kind == VEIL_SERIAL_SECRET_KEY ? VEIL_SERIAL_KEY_VERSION
                                            : VEIL_SERIAL_VERSION;
}

static void header_init(header *h, uint32_t kind, const veil_params *p) {
    memset(h, 0, sizeof *h);
    h->version = version_of(kind);
    h->kind = kind;
    /* ids longer than 47 bytes are refused by the callers (id_fits) */
    strncpy(h->params_id, p->id, ID_BYTES - 1);
}

static int id_fits(const veil_params *p) {
    return p && p->id && strlen(p->id) > 0 && strlen(p->id) < ID_BYTES;
}

/* Printable rendering of untrusted bytes for error messages. */
static void escape(const uint8_t *p, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
    }
    out[o] = 0;
}

/* A NUL-padded params id field naming a known set. */
static veil_status id_parse(const uint8_t *id, const char *field, const veil_params **params) {
    char esc[64], name[ID_BYTES];
    const uint8_t *nul = memchr(id, 0, ID_BYTES);
    escape(id, nul ? (size_t)(nul - id) : ID_BYTES, esc, sizeof esc);
    if (!nul) return veil_error(VEIL_ERR_FORMAT, "%s: \"%s...\" is not NUL-terminated", field, esc);
    if (nul == id) return veil_error(VEIL_ERR_FORMAT, "%s: empty", field);
    if (!all_zero(nul, ID_BYTES - (size_t)(nul - id)))
        return veil_error(VEIL_ERR_FORMAT, "%s: \"%s\": non-zero bytes after its end", field, esc);
    memcpy(name, id, ID_BYTES);
    const veil_params *p = veil_params_find_any(name);
    if (!p) {
        const veil_wop_params *wp = veil_wop_params_find(name); /* a WoP partition */
        if (wp) p = &wp->pbs;
    }
    if (!p)
        return veil_error(VEIL_ERR_PARAMS, "%s: \"%s\" is not a known parameter set", field, esc);
    *params = p;
    return VEIL_OK;
}

/* Magic, version, kind and params id. `accept`: bit mask of kinds. */
static veil_status header_ident(const uint8_t raw[HDR], unsigned accept, header *h,
                                const veil_params **params) {
    uint32_t kind = 0;
    for (uint32_t k = 1; k <= KIND_MAX; k++)
        if (memcmp(raw, k_magic[k], 8) == 0) kind = k;
    char esc[64];
    if (!kind) {
        escape(raw, 8, esc, sizeof esc);
        return veil_error(VEIL_ERR_FORMAT, "magic: \"%s\" is not a veil file", esc);
    }
    if (!(accept & KIND_BIT(kind))) {
        const char *want = "";
        for (uint32_t k = 1; k <= KIND_MAX; k++)
            if (accept & KIND_BIT(k)) {
                want = k_kind_name[k];
                break;
            }
        return veil_error(VEIL_ERR_FORMAT, "magic: expected %s, got %s (%s)", want, k_magic[kind],
                          k_kind_name[kind]);
    }
    memset(h, 0, sizeof *h);
    h->version = get_u32(raw + 8);
    if (is_key_kind(kind) && h->version == 1)
        return veil_error(VEIL_ERR_FORMAT,
                          "version: 1, %s from before key sets (one parameter set per program); "
                          "this build reads version %u: make new keys with `veil keygen`",
                          k_kind_name[kind], VEIL_SERIAL_KEY_VERSION);
    /* an evaluation key of version 2 has every KSK of D rows (no row table) */
    const int ek_v2 = kind == VEIL_SERIAL_EVAL_KEY && h->version == 2;
    if (h->version != version_of(kind) && !ek_v2)
        return veil_error(VEIL_ERR_FORMAT, "version: %u, this build reads version %u of %s",
                          h->version, version_of(kind), k_kind_name[kind]);
    h->kind = get_u32(raw + 12);
    if (h->kind != kind)
        return veil_error(VEIL_ERR_FORMAT, "kind: %u does not match magic %s (kind %u)", h->kind,
                          k_magic[kind], kind);
    memcpy(h->params_id, raw + 16, ID_BYTES);
    return id_parse(raw + 16, "params id", params);
}

static size_t packed_bytes(uint64_t bits) {
    return (size_t)((bits + 7) / 8);
}

/* Words of the key bodies a seeded file stores, summed over partitions. */
static uint64_t sk_small_bits(const veil_params *const *parts, uint32_t n) {
    uint64_t t = 0;
    for (uint32_t i = 0; i < n; i++)
        t += parts[i]->lwe_dim;
    return t;
}
static uint64_t sk_payload(const veil_params *const *parts, uint32_t n) {
    uint64_t t = (uint64_t)ID_BYTES * n + packed_bytes(veil_params_big_dim(parts[0]));
    for (uint32_t i = 0; i < n; i++)
        t += packed_bytes(parts[i]->lwe_dim);
    return t;
}
/* GLWE bodies of a partition: its BSK's, and a WoP partition's packing
 * keys' (veil/tfhe.h veil_pbs_key.pfpks), after its KSK bodies */
static uint64_t ek_bsk_bodies(const veil_params *p) {
    return (veil_eval_key_bsk_words(p) + veil_eval_key_pfpks_words(p)) / (p->glwe_dim + 1);
}
static uint64_t ek_ksk_bodies(const veil_params *p, uint32_t rows) {
    return (uint64_t)rows * p->ks_level;
}
/* Bytes of an evaluation key's row table: P u32 (version 3; none in 2). */
static uint64_t ek_rows_bytes(const header *h, uint32_t n_parts) {
    return h->version >= 3 ? 4 * (uint64_t)n_parts : 0;
}

/* Every other field, checked against the parameter sets (keys: the partition
 * table, parts[0..n_parts), and an evaluation key's KSK rows) and the input
 * length (total bytes of header + payload + checksum). Nothing has been
 * allocated. */
static veil_status header_sizes(const uint8_t raw[HDR], uint64_t total, uint64_t max_batch,
                                header *h, const veil_params *p, const veil_params *const *parts,
                                const uint32_t *rows, uint32_t n_parts) {
    memcpy(h->key_fp, raw + 64, VEIL_KEY_FP_BYTES);
    memcpy(h->model_fp, raw + 80, VEIL_MODEL_FP_BYTES);
    memcpy(h->mask_seed, raw + 112, VEIL_SEED_BYTES);
    h->len_a = get_u64(raw + 144);
    h->len_b = get_u64(raw + 152);
    h->dim = get_u32(raw + 160);
    h->reserved = get_u32(raw + 164);
    h->payload = get_u64(raw + 168);
    if (h->kind == VEIL_SERIAL_CT_BATCH && h->reserved)
        return veil_error(VEIL_ERR_FORMAT, "mask width: %u, must be 0 in a raw batch", h->reserved);
    const uint64_t n = p->lwe_dim, big = veil_params_big_dim(p);
    uint64_t want = 0;
    switch (h->kind) {
    case VEIL_SERIAL_SECRET_KEY: {
        if (!all_zero(h->model_fp, VEIL_MODEL_FP_BYTES))
            return veil_error(VEIL_ERR_FORMAT, "model fp: must be zero in a secret key");
        if (!all_zero(h->mask_seed, VEIL_SEED_BYTES))
            return veil_error(VEIL_ERR_FORMAT, "mask seed: must be zero in a secret key");
        const uint64_t small = sk_small_bits(parts, n_parts);
        if (h->dim != big)
            return veil_error(VEIL_ERR_FORMAT, "dim: %u, partition 0 (%s) has k*N = %llu", h->dim,
                              p->id, (unsigned long long)big);
        if (h->len_a != small)
            return veil_error(VEIL_ERR_FORMAT,
                              "len_a (small key bits): %llu, the partitions imply %llu",
                              (unsigned long long)h->len_a, (unsigned long long)small);
        if (h->len_b != big)
            return veil_error(VEIL_ERR_FORMAT,
                              "len_b (master key bits): %llu, partition 0 (%s) has k*N = %llu",
                              (unsigned long long)h->len_b, p->id, (unsigned long long)big);
        want = sk_payload(parts, n_parts);
        break;
    }
    case VEIL_SERIAL_EVAL_KEY: {
        if (!all_zero(h->model_fp, VEIL_MODEL_FP_BYTES))
            return veil_error(VEIL_ERR_FORMAT, "model fp: must be zero in an evaluation key");
        uint64_t bsk = 0, ksk = 0;
        for (uint32_t i = 0; i < n_parts; i++) {
            bsk += ek_bsk_bodies(parts[i]);
            ksk += ek_ksk_bodies(parts[i], rows[i]);
        }
        if (h->dim != big)
            return veil_error(VEIL_ERR_FORMAT, "dim: %u, partition 0 (%s) has k*N = %llu", h->dim,
                              p->id, (unsigned long long)big);
        if (h->len_a != bsk)
            return veil_error(VEIL_ERR_FORMAT,
                              "len_a (GLWE body words: BSK and packing keys): %llu, the "
                              "partitions imply %llu",
                              (unsigned long long)h->len_a, (unsigned long long)bsk);
        if (h->len_b != ksk)
            return veil_error(VEIL_ERR_FORMAT,
                              "len_b (KSK body words): %llu, the partitions imply %llu",
                              (unsigned long long)h->len_b, (unsigned long long)ksk);
        want = (uint64_t)ID_BYTES * n_parts + ek_rows_bytes(h, n_parts) + 8 * (bsk + ksk);
        break;
    }
    case VEIL_SERIAL_CT_BATCH:
    case VEIL_SERIAL_CT_SEEDED: {
        const int seeded = h->kind == VEIL_SERIAL_CT_SEEDED;
        if (!seeded && !all_zero(h->mask_seed, VEIL_SEED_BYTES))
            return veil_error(VEIL_ERR_FORMAT, "mask seed: must be zero in a raw batch");
        if (h->dim != n && h->dim != big)
            return veil_error(VEIL_ERR_FORMAT,
                              "dim: %u, parameter set %s has LWE dimensions n = %u and "
                              "k*N = %u only",
                              h->dim, p->id, p->lwe_dim, (uint32_t)big);
        if (seeded && h->reserved >= h->dim)
            return veil_error(VEIL_ERR_FORMAT,
                              "mask width: %u, must be below dim %u (0: the whole mask)",
                              h->reserved, h->dim);
        const uint64_t per = seeded ? 1 : (uint64_t)h->dim + 1;
        if (h->len_b != per)
            return veil_error(VEIL_ERR_FORMAT, "len_b (words per ciphertext): %llu, expected %llu",
                              (unsigned long long)h->len_b, (unsigned long long)per);
        const uint64_t max_count = (UINT64_MAX - HDR - SUM) / (8 * per);
        if (h->len_a > max_count || h->len_a > SIZE_MAX / 8 / ((uint64_t)h->dim + 1))
            return veil_error(VEIL_ERR_FORMAT, "len_a (count): %llu ciphertexts is too many",
                              (unsigned long long)h->len_a);
        want = 8 * per * h->len_a;
        break;
    }
    default:
        VEIL_ASSERT(0);
    }
    if (h->payload != want)
        return veil_error(VEIL_ERR_FORMAT, "payload bytes: %llu, the header fields imply %llu",
                          (unsigned long long)h->payload, (unsigned long long)want);
    const uint64_t expect = HDR + want + SUM;
    if (total < expect)
        return veil_error(VEIL_ERR_FORMAT, "truncated: %llu bytes, %s of %s needs %llu",
                          (unsigned long long)total, k_kind_name[h->kind], p->id,
                          (unsigned long long)expect);
    if (total > expect)
        return veil_error(VEIL_ERR_FORMAT, "trailing data: %llu bytes, %s of %s has %llu",
                          (unsigned long long)total, k_kind_name[h->kind], p->id,
                          (unsigned long long)expect);
    if (h->kind == VEIL_SERIAL_CT_BATCH || h->kind == VEIL_SERIAL_CT_SEEDED) {
        /* a seeded batch expands (dim+1)-fold when its masks are regenerated */
        const uint64_t bytes = 8 * h->len_a * ((uint64_t)h->dim + 1);
        if (bytes > max_batch)
            return veil_error(VEIL_ERR_UNSUPPORTED,
                              "len_a (count): %llu ciphertexts of dimension %u take %llu bytes, "
                              "over the limit of %llu",
                              (unsigned long long)h->len_a, h->dim, (unsigned long long)bytes,
                              (unsigned long long)max_batch);
    }
    return VEIL_OK;
}

/* ---- writer: memory or FILE, hashing everything but the checksum ---------- */

typedef struct writer {
    uint8_t *mem;
    size_t pos, cap;
    FILE *f;
    const char *path;
    crypto_generichash_state h;
    veil_status st;
} writer;

static void w_raw(writer *w, const void *p, size_t n) {
    if (w->st != VEIL_OK || n == 0) return;
    if (w->f) {
        if (fwrite(p, 1, n, w->f) != n)
            w->st = veil_error(VEIL_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    } else {
        VEIL_ASSERT(w->pos + n <= w->cap);
        memcpy(w->mem + w->pos, p, n);
        w->pos += n;
    }
}

static void w_bytes(writer *w, const void *p, size_t n) {
    crypto_generichash_update(&w->h, p, n);
    w_raw(w, p, n);
}

static void w_words(writer *w, const uint64_t *src, size_t n) {
    uint8_t tmp[8 * CHUNK_WORDS];
    while (n) {
        size_t c = n < CHUNK_WORDS ? n : CHUNK_WORDS;
        for (size_t i = 0; i < c; i++)
            put_u64(tmp + 8 * i, src[i]);
        w_bytes(w, tmp, 8 * c);
        src += c;
        n -= c;
    }
}

/* Packs count 0/1 words, LSB first. */
static void pack_bits(const uint64_t *bits, size_t count, uint8_t *out) {
    memset(out, 0, packed_bytes(count));
    for (size_t i = 0; i < count; i++)
        out[i / 8] |= (uint8_t)((bits[i] & 1) << (i % 8));
}

/* ---- reader: memory or FILE --------------------------------------------------- */

typedef struct reader {
    const uint8_t *mem;
    size_t pos;
    uint64_t len;       /* total input bytes */
    uint64_t max_batch; /* most bytes a loaded batch may take */
    FILE *f;
    const char *path;
    crypto_generichash_state h;
} reader;

static veil_status r_raw(reader *r, void *p, size_t n) {
    if (r->f) {
        size_t got = fread(p, 1, n, r->f);
        if (got != n) {
            if (ferror(r->f)) return veil_error(VEIL_ERR_IO, "read failed: %s", strerror(errno));
            return veil_error(VEIL_ERR_FORMAT, "truncated at byte %zu (file changed?)", r->pos);
        }
    } else {
        if (n > r->len - r->pos)
            return veil_error(VEIL_ERR_FORMAT, "truncated at byte %zu", r->pos);
        memcpy(p, r->mem + r->pos, n);
    }
    r->pos += n;
    return VEIL_OK;
}

static veil_status r_bytes(reader *r, void *p, size_t n) {
    VEIL_TRY(r_raw(r, p, n));
    crypto_generichash_update(&r->h, p, n);
    return VEIL_OK;
}

/* n words, stored contiguously at dst with stride `stride` words. */
static veil_status r_words(reader *r, uint64_t *dst, size_t n, size_t stride) {
    uint8_t tmp[8 * CHUNK_WORDS];
    while (n) {
        size_t c = n < CHUNK_WORDS ? n : CHUNK_WORDS;
        VEIL_TRY(r_bytes(r, tmp, 8 * c));
        for (size_t i = 0; i < c; i++)
            dst[i * stride] = get_u64(tmp + 8 * i);
        dst += c * stride;
        n -= c;
    }
    return VEIL_OK;
}

static veil_status r_checksum(reader *r, const char *what) {
    uint8_t want[SUM], got[SUM];
    crypto_generichash_final(&r->h, want, SUM);
    VEIL_TRY(r_raw(r, got, SUM));
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* Fuzzing builds only: let mutated payloads reach the parsers. */
    (void)what;
    return VEIL_OK;
#else
    if (sodium_memcmp(want, got, SUM) != 0)
        return veil_error(VEIL_ERR_FORMAT, "checksum: BLAKE2b mismatch, %s is corrupted", what);
    return VEIL_OK;
#endif
}

/* ---- secret key ------------------------------------------------------------- */

/* The packed key bits: each partition's small key, then the master key. */
static size_t sk_bits_bytes(const veil_secret_key *sk) {
    return (size_t)(sk_payload(sk->parts, sk->n_parts) - (uint64_t)ID_BYTES * sk->n_parts);
}
static void sk_pack(const veil_secret_key *sk, uint8_t *bits) {
    size_t o = 0;
    for (uint32_t i = 0; i < sk->n_parts; i++) {
        pack_bits(sk->small[i], sk->parts[i]->lwe_dim, bits + o);
        o += packed_bytes(sk->parts[i]->lwe_dim);
    }
    pack_bits(sk->master, sk->dim, bits + o);
}
/* The partition table: n_parts NUL-padded ids. */
static void parts_table(const veil_params *const *parts, uint32_t n, uint8_t *out) {
    memset(out, 0, (size_t)ID_BYTES * n);
    for (uint32_t i = 0; i < n; i++)
        strncpy((char *)out + (size_t)ID_BYTES * i, parts[i]->id, ID_BYTES - 1);
}

/* Hashes key bits packed like pack_bits, 512 at a time through buf (64
 * bytes): the same bytes as packing them whole. */
static void fp_hash_bits(crypto_generichash_state *st, const uint64_t *bits, size_t count,
                         uint8_t buf[64]) {
    for (size_t o = 0; o < count; o += 512) {
        const size_t c = count - o < 512 ? count - o : 512;
        pack_bits(bits + o, c, buf);
        crypto_generichash_update(st, buf, packed_bytes(c));
    }
}

/* No allocation (it cannot fail): the key bits pass through a small stack
 * buffer, wiped after, in the order sk_pack writes them. */
void veil_secret_key_fingerprint(const veil_secret_key *sk, uint8_t fp[VEIL_KEY_FP_BYTES]) {
    uint8_t cnt[4], id[ID_BYTES], buf[64];
    put_u32(cnt, sk->n_parts);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, VEIL_KEY_FP_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)k_fp_domain, sizeof k_fp_domain);
    crypto_generichash_update(&st, cnt, sizeof cnt);
    for (uint32_t i = 0; i < sk->n_parts; i++) { /* parts_table, one id at a time */
        parts_table(sk->parts + i, 1, id);
        crypto_generichash_update(&st, id, sizeof id);
    }
    for (uint32_t i = 0; i < sk->n_parts; i++)
        fp_hash_bits(&st, sk->small[i], sk->parts[i]->lwe_dim, buf);
    fp_hash_bits(&st, sk->master, sk->dim, buf);
    crypto_generichash_final(&st, fp, VEIL_KEY_FP_BYTES);
    sodium_memzero(&st, sizeof st);
    sodium_memzero(buf, sizeof buf);
}

static veil_status sk_check(const veil_secret_key *sk, header *h) {
    if (!sk || !sk->params || !sk->master || sk->n_parts < 1)
        return veil_error(VEIL_ERR_ARG, "secret key: NULL key or key part");
    for (uint32_t i = 0; i < sk->n_parts; i++)
        if (!id_fits(sk->parts[i]) || !sk->small[i])
            return veil_error(VEIL_ERR_ARG,
                              "secret key: partition %u: params id must be 1..%u bytes", i,
                              ID_BYTES - 1);
    uint64_t bad = 0;
    for (uint32_t x = 0; x < sk->n_parts; x++)
        for (size_t i = 0; i < sk->parts[x]->lwe_dim; i++)
            bad |= sk->small[x][i] >> 1;
    for (size_t i = 0; i < sk->dim; i++)
        bad |= sk->master[i] >> 1;
    if (bad) return veil_error(VEIL_ERR_ARG, "secret key: a coefficient is not 0 or 1");
    header_init(h, VEIL_SERIAL_SECRET_KEY, sk->params);
    veil_secret_key_fingerprint(sk, h->key_fp);
    h->dim = sk->dim;
    h->len_a = sk_small_bits(sk->parts, sk->n_parts);
    h->len_b = sk->dim;
    h->reserved = sk->n_parts;
    h->payload = sk_payload(sk->parts, sk->n_parts);
    return VEIL_OK;
}

static void sk_emit(writer *w, const veil_secret_key *sk) {
    const size_t nb = sk_bits_bytes(sk), nt = (size_t)ID_BYTES * sk->n_parts;
    uint8_t *bits = sodium_malloc(nb + nt);
    if (!bits) {
        if (w->st == VEIL_OK) w->st = veil_error(VEIL_ERR_NOMEM, "secret key: out of memory");
        return;
    }
    parts_table(sk->parts, sk->n_parts, bits);
    sk_pack(sk, bits + nt);
    w_bytes(w, bits, nt + nb);
    sodium_free(bits); /* wipes */
}

/* Unpacks count bits; the unused high bits of the last byte must be 0. */
static veil_status unpack_bits(const uint8_t *in, size_t count, uint64_t *out, const char *what) {
    for (size_t i = 0; i < count; i++)
        out[i] = (in[i / 8] >> (i % 8)) & 1;
    if (count % 8 && (in[count / 8] >> (count % 8)))
        return veil_error(VEIL_ERR_FORMAT, "payload: padding bits of the %s are not zero", what);
    return VEIL_OK;
}

static veil_status sk_parse(reader *r, const header *h, const veil_params *const *parts,
                            uint32_t n_parts, void **out) {
    /* veil_secret_key_new_set allocates the key the way veil_secret_key_free
     * releases it; its bits (from a fixed seed) are all overwritten below. */
    static const uint8_t zero_seed[VEIL_SEED_BYTES];
    veil_secret_key *sk;
    VEIL_TRY(veil_secret_key_new_set(parts, n_parts, zero_seed, &sk));
    const size_t nb = sk_bits_bytes(sk);
    uint8_t *bits = sodium_malloc(nb);
    veil_status s =
        bits ? r_bytes(r, bits, nb) : veil_error(VEIL_ERR_NOMEM, "secret key: out of memory");
    size_t o = 0;
    for (uint32_t i = 0; i < n_parts && s == VEIL_OK; i++) {
        char what[48];
        snprintf(what, sizeof what, "small key of partition %u", i);
        s = unpack_bits(bits + o, parts[i]->lwe_dim, sk->small[i], what);
        o += packed_bytes(parts[i]->lwe_dim);
    }
    if (s == VEIL_OK) s = unpack_bits(bits + o, sk->dim, sk->master, "master key");
    sodium_free(bits); /* wipes; accepts NULL */
    if (s == VEIL_OK) s = r_checksum(r, "the secret key");
    if (s == VEIL_OK) {
        uint8_t fp[VEIL_KEY_FP_BYTES];
        veil_secret_key_fingerprint(sk, fp);
        if (sodium_memcmp(fp, h->key_fp, VEIL_KEY_FP_BYTES) != 0)
            s = veil_error(VEIL_ERR_FORMAT, "key fp: does not match the key bits");
    }
    if (s != VEIL_OK) {
        veil_secret_key_free(sk);
        return s;
    }
    *out = sk;
    return VEIL_OK;
}

/* ---- evaluation key ------------------------------------------------------------ */

static uint32_t rows_of(const veil_params *const *parts, const uint32_t *ksk_rows, uint32_t i) {
    return ksk_rows ? ksk_rows[i] : veil_params_big_dim(parts[0]);
}

size_t veil_eval_key_serialized_bytes(const veil_params *const *parts, const uint32_t *ksk_rows,
                                      uint32_t n_parts) {
    size_t t = 0;
    for (uint32_t i = 0; i < n_parts; i++)
        t += veil_eval_key_partition_serialized_bytes(parts[i], rows_of(parts, ksk_rows, i));
    return HDR + SUM + t;
}

size_t veil_eval_key_raw_bytes(const veil_params *const *parts, const uint32_t *ksk_rows,
                               uint32_t n_parts) {
    size_t t = 0;
    for (uint32_t i = 0; i < n_parts; i++)
        t += ID_BYTES + 4 +
             8 * (veil_eval_key_bsk_words(parts[i]) + veil_eval_key_pfpks_words(parts[i]) +
                  veil_eval_key_ksk_words(parts[i], rows_of(parts, ksk_rows, i)));
    return HDR + SUM + t;
}

size_t veil_eval_key_partition_serialized_bytes(const veil_params *p, uint32_t rows) {
    return ID_BYTES + 4 + 8 * (size_t)(ek_bsk_bodies(p) + ek_ksk_bodies(p, rows));
}

/* The masks must be the stream of the partition's seed (veil_eval_key_
 * regenerate_masks's order), or the seeded file would load as a different
 * key. Streams the comparison instead of regenerating a second key. */
static veil_status ek_check_masks(const veil_eval_key *ek, uint32_t x) {
    const veil_pbs_key *pk = &ek->parts[x];
    const veil_params *p = pk->params;
    const size_t k = p->glwe_dim, N = p->poly_size, n = p->lwe_dim;
    const size_t rows = (k + 1) * p->pbs_level, glwe = (k + 1) * N;
    const size_t ggsws = veil_eval_key_bsk_ggsws(p); /* multi-bit: (n/g) 2^g */
    uint8_t seed[VEIL_SEED_BYTES];
    veil_eval_key_partition_seed(ek->mask_seed, x, seed);
    uint64_t *buf = malloc(sizeof(uint64_t) * (k * N > n ? k * N : n));
    veil_csprng *rng = NULL;
    veil_status s = buf ? veil_csprng_new(seed, &rng)
                        : veil_error(VEIL_ERR_NOMEM, "evaluation key: out of memory");
    for (size_t i = 0; s == VEIL_OK && i < ggsws; i++)
        for (size_t r = 0; s == VEIL_OK && r < rows; r++) {
            veil_csprng_fill_u64(rng, buf, k * N);
            if (memcmp(buf, pk->bsk + (i * rows + r) * glwe, 8 * k * N) != 0)
                s = veil_error(VEIL_ERR_ARG,
                               "evaluation key: partition %u BSK GGSW %zu row %zu: masks are not "
                               "the stream of mask_seed (only seeded keys can be stored)",
                               x, i, r);
        }
    for (size_t i = 0; s == VEIL_OK && i < pk->ksk_rows; i++)
        for (size_t j = 0; s == VEIL_OK && j < p->ks_level; j++) {
            veil_csprng_fill_u64(rng, buf, n);
            const uint32_t *row = pk->ksk32 + (i * p->ks_level + j) * (n + 1);
            size_t t = 0;
            while (t < n && veil_ks32_round(buf[t]) == row[t])
                t++;
            if (t < n)
                s = veil_error(VEIL_ERR_ARG,
                               "evaluation key: partition %u KSK entry %zu level %zu: masks are "
                               "not the stream of mask_seed (only seeded keys can be stored)",
                               x, i, j);
        }
    const size_t pfpks = veil_eval_key_pfpks_words(p) / glwe;
    for (size_t e = 0; s == VEIL_OK && e < pfpks; e++) {
        veil_csprng_fill_u64(rng, buf, k * N);
        if (memcmp(buf, pk->pfpks + e * glwe, 8 * k * N) != 0)
            s = veil_error(VEIL_ERR_ARG,
                           "evaluation key: partition %u packing key GLWE %zu: masks are not the "
                           "stream of mask_seed (only seeded keys can be stored)",
                           x, e);
    }
    veil_csprng_free(rng);
    free(buf);
    return s;
}

static veil_status ek_check(const veil_eval_key *ek, header *h) {
    if (!ek || !ek->params || !ek->parts || ek->n_parts < 1 || ek->n_parts > VEIL_MAX_PARTITIONS ||
        ek->parts[0].params != ek->params)
        return veil_error(VEIL_ERR_ARG, "evaluation key: NULL key or key part");
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    const uint32_t D = veil_params_big_dim(ek->params);
    for (uint32_t x = 0; x < ek->n_parts; x++) {
        const veil_pbs_key *pk = &ek->parts[x];
        if (!pk->params || !pk->ksk32 || pk->in_dim != D)
            return veil_error(VEIL_ERR_ARG, "evaluation key: partition %u: NULL key part", x);
        if (pk->ksk_rows < 1 || pk->ksk_rows > D)
            return veil_error(VEIL_ERR_ARG,
                              "evaluation key: partition %u: keyswitching key of %u rows, not "
                              "1..%u",
                              x, pk->ksk_rows, D);
        if (!id_fits(pk->params))
            return veil_error(VEIL_ERR_ARG,
                              "evaluation key: partition %u: params id must be 1..%u bytes", x,
                              ID_BYTES - 1);
        parts[x] = pk->params;
    }
    VEIL_TRY(veil_partitions_check(parts, ek->n_parts, "evaluation key"));
    VEIL_TRY(veil_eval_key_check_domains(ek, VEIL_KEY_STANDARD, "saving an evaluation key"));
    for (uint32_t x = 0; x < ek->n_parts; x++)
        VEIL_TRY(ek_check_masks(ek, x));
    header_init(h, VEIL_SERIAL_EVAL_KEY, ek->params);
    memcpy(h->key_fp, ek->key_fp, VEIL_KEY_FP_BYTES);
    memcpy(h->mask_seed, ek->mask_seed, VEIL_SEED_BYTES);
    h->dim = D;
    h->reserved = ek->n_parts;
    for (uint32_t x = 0; x < ek->n_parts; x++) {
        h->len_a += ek_bsk_bodies(parts[x]);
        h->len_b += ek_ksk_bodies(parts[x], ek->parts[x].ksk_rows);
    }
    h->payload = (uint64_t)ID_BYTES * ek->n_parts + ek_rows_bytes(h, ek->n_parts) +
                 8 * (h->len_a + h->len_b);
    return VEIL_OK;
}

static void ek_emit(writer *w, const veil_eval_key *ek) {
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    for (uint32_t x = 0; x < ek->n_parts; x++)
        parts[x] = ek->parts[x].params;
    uint8_t table[ID_BYTES * VEIL_MAX_PARTITIONS];
    parts_table(parts, ek->n_parts, table);
    w_bytes(w, table, (size_t)ID_BYTES * ek->n_parts);
    for (uint32_t x = 0; x < ek->n_parts; x++) { /* the row table */
        uint8_t rows[4];
        put_u32(rows, ek->parts[x].ksk_rows);
        w_bytes(w, rows, sizeof rows);
    }
    for (uint32_t x = 0; x < ek->n_parts; x++) {
        const veil_pbs_key *pk = &ek->parts[x];
        const veil_params *p = pk->params;
        const size_t k = p->glwe_dim, N = p->poly_size, n = p->lwe_dim;
        const size_t rows = veil_eval_key_bsk_ggsws(p) * (k + 1) * p->pbs_level, glwe = (k + 1) * N;
        for (size_t r = 0; r < rows && w->st == VEIL_OK; r++)
            w_words(w, pk->bsk + r * glwe + k * N, N);
        const size_t entries = (size_t)pk->ksk_rows * p->ks_level;
        for (size_t e = 0; e < entries && w->st == VEIL_OK; e++) {
            const uint64_t body = veil_ks32_word(pk->ksk32[e * (n + 1) + n]); /* veil/ks32.h */
            w_words(w, &body, 1);
        }
        const size_t pfpks = veil_eval_key_pfpks_words(p) / glwe;
        for (size_t e = 0; e < pfpks && w->st == VEIL_OK; e++)
            w_words(w, pk->pfpks + e * glwe + k * N, N);
    }
}

static veil_status ek_parse(reader *r, const header *h, const veil_params *const *parts,
                            const uint32_t *ksk_rows, uint32_t n_parts, void **out) {
    veil_eval_key *ek;
    VEIL_TRY(veil_eval_key_alloc(parts, n_parts, ksk_rows, &ek));
    memcpy(ek->mask_seed, h->mask_seed, VEIL_SEED_BYTES);
    memcpy(ek->key_fp, h->key_fp, VEIL_KEY_FP_BYTES);
    veil_status s = VEIL_OK;
    typedef struct low_bits {
        uint32_t part; /* 1 + the partition of the first KSK body with low bits set; 0: none */
        size_t entry;
    } low_bits;
    low_bits bad_low = {0, 0};
    for (uint32_t x = 0; x < n_parts && s == VEIL_OK; x++) {
        veil_pbs_key *pk = &ek->parts[x];
        const veil_params *p = pk->params;
        const size_t k = p->glwe_dim, N = p->poly_size, n = p->lwe_dim;
        const size_t rows = veil_eval_key_bsk_ggsws(p) * (k + 1) * p->pbs_level, glwe = (k + 1) * N;
        for (size_t i = 0; i < rows && s == VEIL_OK; i++)
            s = r_words(r, pk->bsk + i * glwe + k * N, N, 1);
        const size_t entries = (size_t)pk->ksk_rows * p->ks_level;
        uint64_t w[CHUNK_WORDS];
        for (size_t e0 = 0; e0 < entries && s == VEIL_OK; e0 += CHUNK_WORDS) {
            const size_t c = entries - e0 < CHUNK_WORDS ? entries - e0 : CHUNK_WORDS;
            s = r_words(r, w, c, 1);
            for (size_t e = 0; e < c && s == VEIL_OK; e++) {
                pk->ksk32[(e0 + e) * (n + 1) + n] = (uint32_t)(w[e] >> 32);
                if (w[e] != veil_ks32_word((uint32_t)(w[e] >> 32)) && !bad_low.part)
                    bad_low = (low_bits){x + 1, e0 + e};
            }
        }
        const size_t pfpks = veil_eval_key_pfpks_words(p) / glwe;
        for (size_t e = 0; e < pfpks && s == VEIL_OK; e++)
            s = r_words(r, pk->pfpks + e * glwe + k * N, N, 1);
    }
    if (s == VEIL_OK) s = r_checksum(r, "the evaluation key");
    /* ek_emit writes each body as a 32-bit keyswitch word (veil/ks32.h):
     * one file per key, so low bits that the load would round away are
     * refused, not ignored (after the checksum: a corrupted file says so) */
    if (s == VEIL_OK && bad_low.part) {
        const size_t lv = ek->parts[bad_low.part - 1].params->ks_level;
        s = veil_error(VEIL_ERR_FORMAT,
                       "evaluation key: partition %u KSK entry %zu level %zu: body word has "
                       "low 32 bits set (keyswitch words are stored on 32 bits; a key written "
                       "before that: run veil keygen again)",
                       bad_low.part - 1, bad_low.entry / lv, bad_low.entry % lv);
    }
    /* the standard domain, as read (no transform): the callers prepare the
     * key for their use (ek_loaded) */
    if (s == VEIL_OK) s = veil_eval_key_regenerate_masks(ek);
    if (s != VEIL_OK) {
        veil_eval_key_free(ek);
        return s;
    }
    *out = ek;
    return VEIL_OK;
}

veil_status veil_eval_key_check_secret_key(const veil_eval_key *ek, const veil_secret_key *sk) {
    if (!ek || !sk)
        return veil_error(VEIL_ERR_ARG, "veil_eval_key_check_secret_key: NULL argument");
    int same = ek->n_parts == sk->n_parts;
    for (uint32_t i = 0; same && i < sk->n_parts; i++)
        same = ek->parts[i].params == sk->parts[i];
    if (!same) {
        char have[512];
        veil_eval_key_describe(ek, have, sizeof have);
        return veil_error(VEIL_ERR_PARAMS,
                          "evaluation key has partitions [%s], the secret key %u partitions "
                          "starting with %s: they were not made together",
                          have, sk->n_parts, sk->params->id);
    }
    uint8_t fp[VEIL_KEY_FP_BYTES];
    veil_secret_key_fingerprint(sk, fp);
    if (sodium_memcmp(fp, ek->key_fp, VEIL_KEY_FP_BYTES) != 0)
        return veil_error(VEIL_ERR_PARAMS,
                          "evaluation key: key fp differs, it was not made from this secret key");
    return VEIL_OK;
}

/* ---- ciphertext batches ---------------------------------------------------------- */

veil_status veil_ct_batch_new(const veil_params *params, uint32_t dim, uint64_t count,
                              veil_ct_batch **out) {
    if (!params || !out)
        return veil_error(VEIL_ERR_ARG, "veil_ct_batch_new: params or out is NULL");
    if (dim != params->lwe_dim && dim != veil_params_big_dim(params))
        return veil_error(VEIL_ERR_ARG, "ciphertext batch: dim %u is neither n = %u nor k*N = %u",
                          dim, params->lwe_dim, veil_params_big_dim(params));
    if (count > SIZE_MAX / sizeof(uint64_t) / ((uint64_t)dim + 1))
        return veil_error(VEIL_ERR_ARG, "ciphertext batch: count %llu is too large",
                          (unsigned long long)count);
    veil_ct_batch *b = calloc(1, sizeof *b);
    size_t words = (size_t)count * (dim + 1);
    uint64_t *data = calloc(words ? words : 1, sizeof *data);
    if (!b || !data) {
        free(b);
        free(data);
        return veil_error(VEIL_ERR_NOMEM, "ciphertext batch of %llu x %u: out of memory",
                          (unsigned long long)count, dim + 1);
    }
    b->params = params;
    b->dim = dim;
    b->count = count;
    b->data = data;
    *out = b;
    return VEIL_OK;
}

void veil_ct_batch_free(veil_ct_batch *b) {
    if (!b) return;
    free(b->data);
    free(b);
}

static veil_status ct_check(const veil_ct_batch *b, const uint8_t *seed, header *h) {
    if (!b || !b->params || !b->data)
        return veil_error(VEIL_ERR_ARG, "ciphertext batch: NULL batch or data");
    const veil_params *p = b->params;
    if (!id_fits(p))
        return veil_error(VEIL_ERR_ARG, "ciphertext batch: params id must be 1..%u bytes",
                          ID_BYTES - 1);
    if (b->dim != p->lwe_dim && b->dim != veil_params_big_dim(p))
        return veil_error(VEIL_ERR_ARG, "ciphertext batch: dim %u is neither n nor k*N of %s",
                          b->dim, p->id);
    const uint64_t per = seed ? 1 : (uint64_t)b->dim + 1;
    if (b->count > (UINT64_MAX - HDR - SUM) / (8 * per) ||
        b->count > SIZE_MAX / 8 / ((uint64_t)b->dim + 1))
        return veil_error(VEIL_ERR_ARG, "ciphertext batch: count %llu is too large",
                          (unsigned long long)b->count);
    if (seed && b->mask_width >= b->dim)
        return veil_error(
            VEIL_ERR_ARG,
            "ciphertext batch: mask width %u, must be below dim %u (0: the whole mask)",
            b->mask_width, b->dim);
    if (seed) {
        const size_t w = b->mask_width ? b->mask_width : b->dim;
        veil_csprng *rng;
        VEIL_TRY(veil_csprng_new(seed, &rng));
        uint64_t *mask = calloc(b->dim ? b->dim : 1, sizeof(uint64_t));
        veil_status s = mask ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "ciphertext batch: no memory");
        for (uint64_t i = 0; s == VEIL_OK && i < b->count; i++) {
            veil_csprng_fill_u64(rng, mask, w); /* the words past w stay 0 */
            if (memcmp(mask, b->data + i * ((size_t)b->dim + 1), 8 * (size_t)b->dim) != 0)
                s = veil_error(VEIL_ERR_ARG,
                               "ciphertext batch: ciphertext %llu: mask is not the stream of "
                               "the mask seed over its first %zu words, 0 after (seeded form is "
                               "for fresh encryptions only)",
                               (unsigned long long)i, w);
        }
        free(mask);
        veil_csprng_free(rng);
        VEIL_TRY(s);
    }
    header_init(h, seed ? VEIL_SERIAL_CT_SEEDED : VEIL_SERIAL_CT_BATCH, p);
    memcpy(h->key_fp, b->key_fp, VEIL_KEY_FP_BYTES);
    memcpy(h->model_fp, b->model_fp, VEIL_MODEL_FP_BYTES);
    if (seed) memcpy(h->mask_seed, seed, VEIL_SEED_BYTES);
    h->dim = b->dim;
    h->reserved = seed ? b->mask_width : 0;
    h->len_a = b->count;
    h->len_b = per;
    h->payload = 8 * per * b->count;
    return VEIL_OK;
}

static void ct_emit(writer *w, const veil_ct_batch *b, int seeded) {
    const size_t stride = (size_t)b->dim + 1;
    if (!seeded) {
        w_words(w, b->data, (size_t)b->count * stride);
        return;
    }
    uint64_t tmp[CHUNK_WORDS];
    for (uint64_t i = 0; i < b->count && w->st == VEIL_OK;) {
        size_t c = 0;
        for (; c < CHUNK_WORDS && i < b->count; c++, i++)
            tmp[c] = b->data[i * stride + b->dim];
        w_words(w, tmp, c);
    }
}

static veil_status ct_parse(reader *r, const header *h, const veil_params *p, void **out) {
    veil_ct_batch *b;
    VEIL_TRY(veil_ct_batch_new(p, h->dim, h->len_a, &b));
    memcpy(b->key_fp, h->key_fp, VEIL_KEY_FP_BYTES);
    memcpy(b->model_fp, h->model_fp, VEIL_MODEL_FP_BYTES);
    const size_t stride = (size_t)h->dim + 1;
    const int seeded = h->kind == VEIL_SERIAL_CT_SEEDED;
    veil_status s = seeded ? r_words(r, b->data + h->dim, (size_t)h->len_a, stride)
                           : r_words(r, b->data, (size_t)h->len_a * stride, 1);
    if (s == VEIL_OK)
        s = r_checksum(r, h->kind == VEIL_SERIAL_CT_SEEDED ? "the seeded batch" : "the batch");
    if (s == VEIL_OK && seeded) {
        /* the first mask_width words of each mask (0: all dim), the rest
         * left 0 (veil_ct_batch_new zeroes the data) */
        const size_t w = h->reserved ? h->reserved : h->dim;
        b->mask_width = h->reserved;
        veil_csprng *rng;
        s = veil_csprng_new(h->mask_seed, &rng);
        for (uint64_t i = 0; s == VEIL_OK && i < h->len_a; i++)
            veil_csprng_fill_u64(rng, b->data + i * stride, w);
        if (s == VEIL_OK) veil_csprng_free(rng);
    }
    if (s != VEIL_OK) {
        veil_ct_batch_free(b);
        return s;
    }
    *out = b;
    return VEIL_OK;
}

veil_status veil_ct_batch_check_eval_key(const veil_ct_batch *b, const veil_eval_key *ek) {
    if (!b || !ek) return veil_error(VEIL_ERR_ARG, "veil_ct_batch_check_eval_key: NULL argument");
    if (b->params != ek->params)
        return veil_error(VEIL_ERR_PARAMS,
                          "ciphertext batch is for parameter set %s, evaluation key's partition "
                          "0 (the encryption set) is %s",
                          b->params->id, ek->params->id);
    /* zero = not recorded: never a match, even with another zero */
    if (all_zero(ek->key_fp, VEIL_KEY_FP_BYTES))
        return veil_error(VEIL_ERR_PARAMS, "evaluation key: no key fp recorded, cannot tell "
                                           "which key its ciphertexts must be under");
    if (all_zero(b->key_fp, VEIL_KEY_FP_BYTES))
        return veil_error(VEIL_ERR_PARAMS, "ciphertext batch: no key fp recorded");
    if (!veil_key_fp_match(b->key_fp, ek->key_fp))
        return veil_error(VEIL_ERR_PARAMS, "ciphertext batch: key fp differs from the "
                                           "evaluation key's: encrypted under another key");
    return VEIL_OK;
}

int veil_serial_is_secret(const uint8_t *buf, size_t len) {
    const char *m = k_magic[VEIL_SERIAL_SECRET_KEY];
    return buf && len >= 8 && !memcmp(buf, m, 8);
}

int veil_key_fp_match(const uint8_t a[VEIL_KEY_FP_BYTES], const uint8_t b[VEIL_KEY_FP_BYTES]) {
    return !all_zero(a, VEIL_KEY_FP_BYTES) && sodium_memcmp(a, b, VEIL_KEY_FP_BYTES) == 0;
}

/* ---- generic serialize / deserialize / save / load ------------------------------- */

typedef struct source {
    uint32_t kind;
    const void *obj;
    const uint8_t *seed; /* seeded batches */
} source;

/* libsodium before its guarded allocations (the secret key's bits, the
 * stdio buffers): every write and every parse starts here. */
static veil_status sodium_ready(void) {
    return sodium_init() < 0 ? veil_error(VEIL_ERR_INTERNAL, "libsodium failed to initialise")
                             : VEIL_OK;
}

static veil_status src_check(const source *src, header *h) {
    VEIL_TRY(sodium_ready());
    switch (src->kind) {
    case VEIL_SERIAL_SECRET_KEY:
        return sk_check(src->obj, h);
    case VEIL_SERIAL_EVAL_KEY:
        return ek_check(src->obj, h);
    default:
        return ct_check(src->obj, src->seed, h);
    }
}

static veil_status emit(writer *w, const source *src, const header *h) {
    uint8_t raw[HDR];
    header_encode(h, raw);
    crypto_generichash_init(&w->h, NULL, 0, SUM);
    w_bytes(w, raw, HDR);
    switch (src->kind) {
    case VEIL_SERIAL_SECRET_KEY:
        sk_emit(w, src->obj);
        break;
    case VEIL_SERIAL_EVAL_KEY:
        ek_emit(w, src->obj);
        break;
    default:
        ct_emit(w, src->obj, src->kind == VEIL_SERIAL_CT_SEEDED);
        break;
    }
    uint8_t sum[SUM];
    crypto_generichash_final(&w->h, sum, SUM);
    w_raw(w, sum, SUM);
    sodium_memzero(&w->h, sizeof w->h);
    return w->st;
}

static veil_status serialize_mem(const source *src, uint8_t **buf, size_t *len) {
    if (!buf || !len) return veil_error(VEIL_ERR_ARG, "serialize: buf or len is NULL");
    header h;
    VEIL_TRY(src_check(src, &h));
    if (h.payload > SIZE_MAX - HDR - SUM)
        return veil_error(VEIL_ERR_ARG, "serialize: %s is too large", k_kind_name[h.kind]);
    writer w = {0};
    w.cap = HDR + (size_t)h.payload + SUM;
    w.mem = malloc(w.cap);
    if (!w.mem)
        return veil_error(VEIL_ERR_NOMEM, "serialize: %s of %zu bytes: out of memory",
                          k_kind_name[h.kind], w.cap);
    veil_status s = emit(&w, src, &h);
    if (s != VEIL_OK) {
        veil_serial_buffer_free(w.mem, w.cap);
        return s;
    }
    VEIL_ASSERT(w.pos == w.cap);
    *buf = w.mem;
    *len = w.cap;
    return VEIL_OK;
}

static veil_status parse(reader *r, unsigned accept, void **out) {
    VEIL_TRY(sodium_ready());
    uint8_t raw[HDR];
    if (r->len < HDR + SUM)
        return veil_error(VEIL_ERR_FORMAT,
                          "truncated: %llu bytes, shorter than the %u-byte header and checksum",
                          (unsigned long long)r->len, HDR + SUM);
    crypto_generichash_init(&r->h, NULL, 0, SUM);
    VEIL_TRY(r_bytes(r, raw, HDR));
    header h;
    const veil_params *p;
    VEIL_TRY(header_ident(raw, accept, &h, &p));
    const veil_params *parts[VEIL_MAX_PARTITIONS];
    uint32_t rows[VEIL_MAX_PARTITIONS], n_parts = 0;
    if (is_key_kind(h.kind)) {
        /* the partition table opens the payload: read it (at most 768 bytes)
         * before the sizes it decides are checked */
        n_parts = get_u32(raw + 164);
        if (n_parts < 1 || n_parts > VEIL_MAX_PARTITIONS)
            return veil_error(VEIL_ERR_FORMAT, "partitions: %u, expected 1..%u", n_parts,
                              VEIL_MAX_PARTITIONS);
        if (r->len < HDR + (uint64_t)ID_BYTES * n_parts + SUM)
            return veil_error(VEIL_ERR_FORMAT,
                              "truncated: %llu bytes, the %u-entry partition "
                              "table does not fit",
                              (unsigned long long)r->len, n_parts);
        uint8_t table[ID_BYTES * VEIL_MAX_PARTITIONS];
        VEIL_TRY(r_bytes(r, table, (size_t)ID_BYTES * n_parts));
        for (uint32_t i = 0; i < n_parts; i++) {
            char field[40];
            snprintf(field, sizeof field, "partition %u params id", i);
            VEIL_TRY(id_parse(table + (size_t)ID_BYTES * i, field, &parts[i]));
        }
        if (parts[0] != p)
            return veil_error(VEIL_ERR_FORMAT,
                              "partition 0 params id: %s, the header names %s (they must agree)",
                              parts[0]->id, p->id);
        veil_status s = veil_partitions_check(parts, n_parts, k_kind_name[h.kind]);
        if (s != VEIL_OK) {
            veil_error_prefix("partitions: ");
            return VEIL_ERR_FORMAT;
        }
        /* an evaluation key's row table (version 3) follows: each KSK's
         * rows, 1..D (version 2: D each) */
        const uint32_t D = veil_params_big_dim(p);
        for (uint32_t i = 0; i < n_parts; i++)
            rows[i] = D;
        if (h.kind == VEIL_SERIAL_EVAL_KEY && ek_rows_bytes(&h, n_parts)) {
            if (r->len < HDR + (uint64_t)(ID_BYTES + 4) * n_parts + SUM)
                return veil_error(VEIL_ERR_FORMAT,
                                  "truncated: %llu bytes, the %u-entry row table does not fit",
                                  (unsigned long long)r->len, n_parts);
            uint8_t rt[4 * VEIL_MAX_PARTITIONS];
            VEIL_TRY(r_bytes(r, rt, (size_t)4 * n_parts));
            for (uint32_t i = 0; i < n_parts; i++) {
                rows[i] = get_u32(rt + 4 * i);
                if (rows[i] < 1 || rows[i] > D)
                    return veil_error(VEIL_ERR_FORMAT,
                                      "partition %u KSK rows: %u, expected 1..%u (the master "
                                      "key's k*N)",
                                      i, rows[i], D);
            }
        }
    }
    VEIL_TRY(header_sizes(raw, r->len, r->max_batch, &h, p, parts, rows, n_parts));
    switch (h.kind) {
    case VEIL_SERIAL_SECRET_KEY:
        return sk_parse(r, &h, parts, n_parts, out);
    case VEIL_SERIAL_EVAL_KEY:
        return ek_parse(r, &h, parts, rows, n_parts, out);
    default:
        return ct_parse(r, &h, p, out);
    }
}

static veil_status deserialize_mem(const uint8_t *buf, size_t len, unsigned accept,
                                   uint64_t max_batch, void **out) {
    if ((!buf && len) || !out) return veil_error(VEIL_ERR_ARG, "deserialize: buf or out is NULL");
    reader r = {0};
    r.mem = buf;
    r.max_batch = max_batch;
    r.len = len;
    veil_status s = parse(&r, accept, out);
    sodium_memzero(&r.h, sizeof r.h);
    return s;
}

void veil_serial_buffer_free(uint8_t *buf, size_t len) {
    if (!buf) return;
    sodium_memzero(buf, len);
    free(buf);
}

veil_status veil_serial_peek(const uint8_t *buf, size_t len, veil_serial_kind *kind,
                             const veil_params **params) {
    if (!kind || !params || (!buf && len))
        return veil_error(VEIL_ERR_ARG, "veil_serial_peek: NULL argument");
    if (len == 0) /* an empty HTTP body comes as (NULL, 0) */
        return veil_error(VEIL_ERR_FORMAT,
                          "empty: 0 bytes, expected a veil file of at least the "
                          "%u-byte header",
                          HDR);
    if (len < HDR)
        return veil_error(VEIL_ERR_FORMAT, "truncated: %zu bytes, shorter than the %u-byte header",
                          len, HDR);
    header h;
    const veil_params *p;
    VEIL_TRY(header_ident(buf, ALL_KINDS, &h, &p));
    *kind = (veil_serial_kind)h.kind;
    *params = p;
    return VEIL_OK;
}

/* stdio buffers are ours, so they can be wiped (they held a secret key's
 * bits), and guarded like the key (sodium_malloc: out of swap and core
 * dumps; sodium_free wipes them). */
enum { IOBUF_BYTES = 1 << 16 };

/* Writes to a temporary beside PATH, then renames (veil/atomic_file.h). */
static veil_status save_file(const source *src, const char *path, int secret) {
    if (!path) return veil_error(VEIL_ERR_ARG, "save: path is NULL");
    header h;
    VEIL_TRY(src_check(src, &h));
    char *iobuf = sodium_malloc(IOBUF_BYTES);
    if (!iobuf) return veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    veil_atomic_file af;
    veil_status s = veil_atomic_file_open(&af, path, secret ? 0600 : 0644);
    if (s == VEIL_OK) {
        setvbuf(af.f, iobuf, _IOFBF, IOBUF_BYTES);
        writer w = {0};
        w.f = af.f;
        w.path = path;
        s = emit(&w, src, &h);
        if (s == VEIL_OK)
            s = veil_atomic_file_commit(&af);
        else
            veil_atomic_file_discard(&af);
    }
    sodium_free(iobuf);
    return s;
}

static veil_status load_file(const char *path, unsigned accept, uint64_t max_batch, void **out) {
    if (!path || !out) return veil_error(VEIL_ERR_ARG, "load: path or out is NULL");
    VEIL_TRY(sodium_ready());
    char *iobuf = sodium_malloc(IOBUF_BYTES);
    if (!iobuf) return veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        sodium_free(iobuf);
        return veil_error(VEIL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    setvbuf(f, iobuf, _IOFBF, IOBUF_BYTES);
    struct stat st;
    veil_status s = VEIL_OK;
    if (fstat(fileno(f), &st) != 0)
        s = veil_error(VEIL_ERR_IO, "%s: stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = veil_error(VEIL_ERR_IO, "%s: not a regular file", path);
    if (s == VEIL_OK) {
        reader r = {0};
        r.f = f;
        r.path = path;
        r.max_batch = max_batch;
        r.len = (uint64_t)st.st_size;
        s = parse(&r, accept, out);
        sodium_memzero(&r.h, sizeof r.h);
        if (s != VEIL_OK) veil_error_prefix("%s: ", path);
    }
    fclose(f);
    sodium_free(iobuf);
    return s;
}

/* ---- public entry points ----------------------------------------------------------- */

/* The output pointer is written only on success. */
#define DESERIALIZE(accept, max, out_type)                                                         \
    do {                                                                                           \
        if (!out) return veil_error(VEIL_ERR_ARG, "deserialize: out is NULL");                     \
        void *obj = NULL;                                                                          \
        veil_status s_ = deserialize_mem(buf, len, (accept), (max), &obj);                         \
        if (s_ == VEIL_OK) *out = (out_type *)obj;                                                 \
        return s_;                                                                                 \
    } while (0)
#define LOAD(accept, max, out_type)                                                                \
    do {                                                                                           \
        if (!out) return veil_error(VEIL_ERR_ARG, "load: out is NULL");                            \
        void *obj = NULL;                                                                          \
        veil_status s_ = load_file(path, (accept), (max), &obj);                                   \
        if (s_ == VEIL_OK) *out = (out_type *)obj;                                                 \
        return s_;                                                                                 \
    } while (0)

veil_status veil_secret_key_serialize(const veil_secret_key *sk, uint8_t **buf, size_t *len) {
    source src = {VEIL_SERIAL_SECRET_KEY, sk, NULL};
    return serialize_mem(&src, buf, len);
}
veil_status veil_secret_key_deserialize(const uint8_t *buf, size_t len, veil_secret_key **out) {
    DESERIALIZE(KIND_BIT(VEIL_SERIAL_SECRET_KEY), 0, veil_secret_key);
}
veil_status veil_secret_key_save(const veil_secret_key *sk, const char *path) {
    source src = {VEIL_SERIAL_SECRET_KEY, sk, NULL};
    return save_file(&src, path, 1);
}
veil_status veil_secret_key_load(const char *path, veil_secret_key **out) {
    LOAD(KIND_BIT(VEIL_SERIAL_SECRET_KEY), 0, veil_secret_key);
}

veil_status veil_eval_key_serialize(const veil_eval_key *ek, uint8_t **buf, size_t *len) {
    source src = {VEIL_SERIAL_EVAL_KEY, ek, NULL};
    return serialize_mem(&src, buf, len);
}
/* a loaded key (standard domain) prepared for keep; freed on failure */
static veil_status ek_loaded(veil_status s, veil_eval_key *ek, veil_key_domains keep,
                             veil_eval_key **out) {
    if (s == VEIL_OK && keep != VEIL_KEY_STANDARD) s = veil_eval_key_prepare(ek, keep);
    if (s != VEIL_OK) {
        veil_eval_key_free(ek);
        return s;
    }
    *out = ek;
    return VEIL_OK;
}
veil_status veil_eval_key_deserialize(const uint8_t *buf, size_t len, veil_key_domains keep,
                                      veil_eval_key **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "deserialize: out is NULL");
    void *obj = NULL;
    const veil_status s = deserialize_mem(buf, len, KIND_BIT(VEIL_SERIAL_EVAL_KEY), 0, &obj);
    return ek_loaded(s, obj, keep, out);
}
veil_status veil_eval_key_save(const veil_eval_key *ek, const char *path) {
    source src = {VEIL_SERIAL_EVAL_KEY, ek, NULL};
    return save_file(&src, path, 0);
}
veil_status veil_eval_key_load(const char *path, veil_key_domains keep, veil_eval_key **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "load: out is NULL");
    void *obj = NULL;
    const veil_status s = load_file(path, KIND_BIT(VEIL_SERIAL_EVAL_KEY), 0, &obj);
    return ek_loaded(s, obj, keep, out);
}

#define CT_KINDS (KIND_BIT(VEIL_SERIAL_CT_BATCH) | KIND_BIT(VEIL_SERIAL_CT_SEEDED))

veil_status veil_ct_batch_serialize(const veil_ct_batch *b, uint8_t **buf, size_t *len) {
    source src = {VEIL_SERIAL_CT_BATCH, b, NULL};
    return serialize_mem(&src, buf, len);
}
veil_status veil_ct_batch_serialize_seeded(const veil_ct_batch *b,
                                           const uint8_t mask_seed[VEIL_SEED_BYTES], uint8_t **buf,
                                           size_t *len) {
    if (!mask_seed)
        return veil_error(VEIL_ERR_ARG, "veil_ct_batch_serialize_seeded: mask_seed is NULL");
    source src = {VEIL_SERIAL_CT_SEEDED, b, mask_seed};
    return serialize_mem(&src, buf, len);
}
veil_status veil_ct_batch_deserialize(const uint8_t *buf, size_t len, veil_ct_batch **out) {
    DESERIALIZE(CT_KINDS, VEIL_CT_BATCH_DEFAULT_MAX_BYTES, veil_ct_batch);
}
veil_status veil_ct_batch_deserialize_limited(const uint8_t *buf, size_t len, uint64_t max_bytes,
                                              veil_ct_batch **out) {
    DESERIALIZE(CT_KINDS, max_bytes, veil_ct_batch);
}
veil_status veil_ct_batch_save_seeded(const veil_ct_batch *b,
                                      const uint8_t mask_seed[VEIL_SEED_BYTES], const char *path) {
    if (!mask_seed) return veil_error(VEIL_ERR_ARG, "veil_ct_batch_save_seeded: mask_seed is NULL");
    source src = {VEIL_SERIAL_CT_SEEDED, b, mask_seed};
    return save_file(&src, path, 0);
}
veil_status veil_ct_batch_save(const veil_ct_batch *b, const char *path) {
    source src = {VEIL_SERIAL_CT_BATCH, b, NULL};
    return save_file(&src, path, 0);
}
veil_status veil_ct_batch_load(const char *path, veil_ct_batch **out) {
    LOAD(CT_KINDS, VEIL_CT_BATCH_DEFAULT_MAX_BYTES, veil_ct_batch);
}
