// LABELS: unit crypto
/* Serialization of secret keys, evaluation keys and ciphertext batches:
 * round trips (bit-identical re-serialization, decryption and PBS after
 * load), and rejection of truncated, corrupted, mislabelled and hostile input. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "veil/serialize.h"
#include "veil/tfhe.h"

/* The smallest TFHE-rs set by evaluation-key size (n = 781, k = 4, N = 512). */
#define SMALL_ID "tfhers-1_1-gaussian-2m64"
#define OTHER_ID "tfhers-2_2-gaussian-2m64" /* k*N = 2048 too */
#define BIG_ID "tfhers-3_3-gaussian-2m64"

static const veil_params *P;
static veil_secret_key *SK;
static veil_eval_key *EK;
static char tmpdir[256];

static int suite_init(void) {
    P = veil_params_find(SMALL_ID);
    if (!P) return 1;
    uint8_t s0[32], s1[32], s2[32];
    veil_test_seed_bytes(0, s0);
    veil_test_seed_bytes(1, s1);
    veil_test_seed_bytes(2, s2);
    if (veil_secret_key_new(P, s0, &SK) != VEIL_OK) return 1;
    if (veil_eval_key_new(SK, s1, s2, &EK) != VEIL_OK) return 1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/veil-test-serialize-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    return 0;
}

static int suite_clean(void) {
    veil_eval_key_free(EK);
    veil_secret_key_free(SK);
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
                unlink(path);
            }
        closedir(d);
        rmdir(tmpdir);
    }
    return 0;
}

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static size_t count_dir_entries(void) {
    DIR *d = opendir(tmpdir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

/* Recomputes the trailing checksum, so a test can reach the field checks
 * behind it with a deliberately wrong header. */
static void fix_checksum(uint8_t *buf, size_t len) {
    crypto_generichash(buf + len - 32, 32, buf, len - 32, NULL, 0);
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int msg_has(const char *needle) {
    return strstr(veil_error_message(), needle) != NULL;
}

/* A batch of `count` fresh encryptions of small messages under the big key. */
static veil_ct_batch *make_big_batch(uint64_t count, int64_t *msgs) {
    veil_ct_batch *b = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_new(P, veil_params_big_dim(P), count, &b) == VEIL_OK);
    uint8_t ms[32], ns[32];
    veil_test_seed_bytes(10, ms);
    veil_test_seed_bytes(11, ns);
    veil_encryptor *enc = NULL;
    CU_ASSERT_FATAL(veil_encryptor_new(ms, ns, &enc) == VEIL_OK);
    for (uint64_t i = 0; i < count; i++) {
        msgs[i] = (int64_t)(veil_test_rand() % 4);
        veil_encrypt_big(enc, SK, veil_encode(msgs[i], 2), b->data + i * (b->dim + 1));
    }
    veil_encryptor_free(enc);
    veil_secret_key_fingerprint(SK, b->key_fp);
    for (int i = 0; i < 32; i++)
        b->model_fp[i] = (uint8_t)veil_test_rand();
    return b;
}

/* ---- secret key --------------------------------------------------------------- */

static void test_secret_key_roundtrip(void) {
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    CU_ASSERT_FATAL(veil_secret_key_serialize(SK, &buf, &len) == VEIL_OK);
    size_t n = P->lwe_dim, big = veil_params_big_dim(P);
    CU_ASSERT_EQUAL(len, 176 + 48 + (n + 7) / 8 + (big + 7) / 8 + 32);
    CU_ASSERT(memcmp(buf, "VEILSK01", 8) == 0);
    veil_secret_key *sk2 = NULL;
    CU_ASSERT_FATAL(veil_secret_key_deserialize(buf, len, &sk2) == VEIL_OK);
    CU_ASSERT_PTR_EQUAL(veil_secret_key_params(sk2), P);
    CU_ASSERT_EQUAL(veil_secret_key_n_partitions(sk2), 1);
    uint64_t *b1 = malloc(8 * big), *b2 = malloc(8 * big);
    CU_ASSERT_FATAL(veil_test_sk_bits(sk2, 0, b1) == n && veil_test_sk_bits(SK, 0, b2) == n);
    CU_ASSERT(memcmp(b1, b2, 8 * n) == 0);
    CU_ASSERT_FATAL(veil_test_sk_bits(sk2, VEIL_TEST_MASTER, b1) == big &&
                    veil_test_sk_bits(SK, VEIL_TEST_MASTER, b2) == big);
    CU_ASSERT(memcmp(b1, b2, 8 * big) == 0);
    CU_ASSERT_FATAL(veil_secret_key_serialize(sk2, &buf2, &len2) == VEIL_OK);
    CU_ASSERT(len2 == len && memcmp(buf, buf2, len) == 0);
    uint8_t fp1[16], fp2[16];
    veil_secret_key_fingerprint(SK, fp1);
    veil_secret_key_fingerprint(sk2, fp2);
    CU_ASSERT(memcmp(fp1, fp2, 16) == 0);
    CU_ASSERT(memcmp(buf + 64, fp1, 16) == 0);
    /* a different key has a different fingerprint */
    veil_secret_key_free(sk2);
    uint8_t s9[32];
    veil_test_seed_bytes(9, s9);
    CU_ASSERT_FATAL(veil_secret_key_new(P, s9, &sk2) == VEIL_OK);
    veil_secret_key_fingerprint(sk2, fp2);
    CU_ASSERT(memcmp(fp1, fp2, 16) != 0);
    veil_secret_key_free(sk2);
    veil_serial_buffer_free(buf2, len2);

    /* file: mode 0600, content identical, no temporary left behind */
    size_t before = count_dir_entries();
    const char *path = tmp_path("key.sk");
    CU_ASSERT_FATAL(veil_secret_key_save(SK, path) == VEIL_OK);
    CU_ASSERT_EQUAL(count_dir_entries(), before + 1);
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL((size_t)st.st_size, len);
    veil_secret_key *sk3 = NULL;
    CU_ASSERT_FATAL(veil_secret_key_load(path, &sk3) == VEIL_OK);
    CU_ASSERT_FATAL(veil_test_sk_bits(sk3, 0, b1) == n && veil_test_sk_bits(SK, 0, b2) == n);
    CU_ASSERT(memcmp(b1, b2, 8 * n) == 0);
    CU_ASSERT_FATAL(veil_test_sk_bits(sk3, VEIL_TEST_MASTER, b1) == big);
    CU_ASSERT_FATAL(veil_test_sk_bits(SK, VEIL_TEST_MASTER, b2) == big);
    CU_ASSERT(memcmp(b1, b2, 8 * big) == 0);
    veil_secret_key_free(sk3);
    free(b1);
    free(b2);
    /* overwrite in place */
    CU_ASSERT(veil_secret_key_save(SK, path) == VEIL_OK);
    CU_ASSERT_EQUAL(count_dir_entries(), before + 1);
    veil_serial_buffer_free(buf, len);
}

/* Every prefix and one byte too many are refused, with VEIL_ERR_FORMAT. */
static void check_all_truncations(const uint8_t *buf, size_t len,
                                  veil_status (*de)(const uint8_t *, size_t, void **)) {
    size_t bad = 0;
    for (size_t l = 0; l < len; l++) {
        void *obj = NULL;
        if (de(buf, l, &obj) != VEIL_ERR_FORMAT || obj) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    void *obj = NULL;
    CU_ASSERT_EQUAL(de(longer, len + 1, &obj), VEIL_ERR_FORMAT);
    CU_ASSERT(msg_has("trailing data"));
    free(longer);
}

/* Flips each listed bit; every flip must be refused (FORMAT or PARAMS) and
 * leave the output pointer alone. */
static size_t flips_accepted(uint8_t *buf, size_t len, size_t first_bit, size_t nbits, size_t step,
                             veil_status (*de)(const uint8_t *, size_t, void **)) {
    size_t accepted = 0;
    for (size_t bit = first_bit; bit < first_bit + nbits && bit < 8 * len; bit += step) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        void *obj = NULL;
        veil_status s = de(buf, len, &obj);
        if ((s != VEIL_ERR_FORMAT && s != VEIL_ERR_PARAMS) || obj) accepted++;
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    return accepted;
}

static veil_status de_sk(const uint8_t *b, size_t l, void **o) {
    veil_secret_key *k = NULL;
    veil_status s = veil_secret_key_deserialize(b, l, &k);
    if (s == VEIL_OK) veil_secret_key_free(k);
    *o = s == VEIL_OK ? (void *)1 : NULL;
    return s;
}
static veil_status de_ek(const uint8_t *b, size_t l, void **o) {
    veil_eval_key *k = NULL;
    veil_status s = veil_eval_key_deserialize(b, l, &k);
    if (s == VEIL_OK) veil_eval_key_free(k);
    *o = s == VEIL_OK ? (void *)1 : NULL;
    return s;
}
static veil_status de_ct(const uint8_t *b, size_t l, void **o) {
    veil_ct_batch *k = NULL;
    veil_status s = veil_ct_batch_deserialize(b, l, &k);
    if (s == VEIL_OK) veil_ct_batch_free(k);
    *o = s == VEIL_OK ? (void *)1 : NULL;
    return s;
}

static void test_secret_key_rejects(void) {
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_secret_key_serialize(SK, &buf, &len) == VEIL_OK);
    check_all_truncations(buf, len, de_sk);
    /* every bit of the file (header, payload, checksum) */
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 0, 8 * len, 1, de_sk), 0);

    /* padding bits of the packed small key (after the 48-byte partition
     * table), with a valid checksum */
    size_t n = P->lwe_dim;
    if (n % 8) {
        buf[176 + 48 + n / 8] |= 0x80;
        fix_checksum(buf, len);
        veil_secret_key *k = NULL;
        CU_ASSERT_EQUAL(veil_secret_key_deserialize(buf, len, &k), VEIL_ERR_FORMAT);
        CU_ASSERT(msg_has("padding"));
        CU_ASSERT_PTR_NULL(k);
        buf[176 + 48 + n / 8] &= 0x7f;
    }
    /* a key bit changed consistently (valid checksum): the stored fingerprint
     * no longer matches */
    buf[176 + 48] ^= 1;
    fix_checksum(buf, len);
    veil_secret_key *k = NULL;
    CU_ASSERT_EQUAL(veil_secret_key_deserialize(buf, len, &k), VEIL_ERR_FORMAT);
    CU_ASSERT(msg_has("key fp"));
    buf[176 + 48] ^= 1;
    fix_checksum(buf, len);
    CU_ASSERT_EQUAL(veil_secret_key_deserialize(buf, len, &k), VEIL_OK);
    veil_secret_key_free(k);
    veil_serial_buffer_free(buf, len);
}

/* ---- header fields, on a small batch ------------------------------------------------ */

static void test_header_fields(void) {
    int64_t msgs[3];
    veil_ct_batch *b = make_big_batch(3, msgs);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_ct_batch_serialize(b, &buf, &len) == VEIL_OK);
    uint8_t *orig = malloc(len);
    memcpy(orig, buf, len);
    veil_ct_batch *out = NULL;
#define RESET() memcpy(buf, orig, len)
#define EXPECT(status, needle)                                                                     \
    do {                                                                                           \
        fix_checksum(buf, len);                                                                    \
        out = NULL;                                                                                \
        CU_ASSERT_EQUAL(veil_ct_batch_deserialize(buf, len, &out), status);                        \
        CU_ASSERT_PTR_NULL(out);                                                                   \
        if (!msg_has(needle))                                                                      \
            printf("\n  message \"%s\" lacks \"%s\"\n", veil_error_message(), needle);             \
        CU_ASSERT(msg_has(needle));                                                                \
        RESET();                                                                                   \
    } while (0)

    memcpy(buf, "VEILXX01", 8);
    EXPECT(VEIL_ERR_FORMAT, "magic");
    memcpy(buf, "VEILSK01", 8); /* a secret-key magic on a batch */
    EXPECT(VEIL_ERR_FORMAT, "magic: expected a ciphertext batch");
    put_u32(buf + 8, 2);
    EXPECT(VEIL_ERR_FORMAT, "version");
    put_u32(buf + 12, 1);
    EXPECT(VEIL_ERR_FORMAT, "kind");
    memset(buf + 16, 0, 48);
    memcpy(buf + 16, "no-such-set", 11);
    EXPECT(VEIL_ERR_PARAMS, "params id");
    memset(buf + 16, 'a', 48);
    EXPECT(VEIL_ERR_FORMAT, "params id");
    buf[16 + 40] = 1; /* garbage after the id's NUL */
    EXPECT(VEIL_ERR_FORMAT, "params id");
    memset(buf + 16, 0, 48);
    EXPECT(VEIL_ERR_FORMAT, "params id: empty");
    /* an existing but different set whose dimensions do not fit (k*N = 8192) */
    memset(buf + 16, 0, 48);
    memcpy(buf + 16, BIG_ID, strlen(BIG_ID));
    EXPECT(VEIL_ERR_FORMAT, "dim");
    /* one whose k*N is the same 2048: a valid batch of that set, which only
     * veil_ct_batch_check_eval_key can refuse */
    memset(buf + 16, 0, 48);
    memcpy(buf + 16, OTHER_ID, strlen(OTHER_ID));
    fix_checksum(buf, len);
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_deserialize(buf, len, &out), VEIL_OK);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(out, EK), VEIL_ERR_PARAMS);
    veil_ct_batch_free(out);
    memcpy(buf, orig, len);
    buf[112] = 1; /* mask seed in a raw batch */
    EXPECT(VEIL_ERR_FORMAT, "mask seed");
    put_u64(buf + 144, 4); /* count */
    EXPECT(VEIL_ERR_FORMAT, "payload bytes");
    put_u64(buf + 152, 7);
    EXPECT(VEIL_ERR_FORMAT, "len_b");
    put_u32(buf + 160, 100);
    EXPECT(VEIL_ERR_FORMAT, "dim");
    put_u32(buf + 164, 1);
    EXPECT(VEIL_ERR_FORMAT, "reserved");
    put_u64(buf + 168, 8);
    EXPECT(VEIL_ERR_FORMAT, "payload bytes");

    /* hostile counts: consistent header, short input: refused before any
     * allocation (ASan would report a failed multi-terabyte calloc) */
    uint64_t per = (uint64_t)b->dim + 1;
    uint64_t hostile = ((uint64_t)1 << 40);
    put_u64(buf + 144, hostile);
    put_u64(buf + 168, hostile * per * 8);
    EXPECT(VEIL_ERR_FORMAT, "truncated");
    put_u64(buf + 144, UINT64_MAX / per);
    put_u64(buf + 168, (UINT64_MAX / per) * per * 8);
    EXPECT(VEIL_ERR_FORMAT, "count");

    /* the original still loads */
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize(buf, len, &out), VEIL_OK);
    veil_ct_batch_free(out);
#undef EXPECT
#undef RESET
    free(orig);
    veil_serial_buffer_free(buf, len);
    veil_ct_batch_free(b);
}

/* ---- ciphertext batches ------------------------------------------------------------- */

static void test_ct_batch_roundtrip(void) {
    int64_t msgs[5];
    veil_ct_batch *b = make_big_batch(5, msgs);
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    CU_ASSERT_FATAL(veil_ct_batch_serialize(b, &buf, &len) == VEIL_OK);
    CU_ASSERT_EQUAL(len, 176 + 5 * 8 * ((size_t)b->dim + 1) + 32);
    veil_ct_batch *c = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_deserialize(buf, len, &c) == VEIL_OK);
    CU_ASSERT_PTR_EQUAL(c->params, P);
    CU_ASSERT_EQUAL(c->dim, b->dim);
    CU_ASSERT_EQUAL(c->count, 5);
    CU_ASSERT(memcmp(c->data, b->data, 8 * 5 * ((size_t)b->dim + 1)) == 0);
    CU_ASSERT(memcmp(c->key_fp, b->key_fp, 16) == 0);
    CU_ASSERT(memcmp(c->model_fp, b->model_fp, 32) == 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(SK, c->data + i * (c->dim + 1)), 2, 0), msgs[i]);
    CU_ASSERT_FATAL(veil_ct_batch_serialize(c, &buf2, &len2) == VEIL_OK);
    CU_ASSERT(len2 == len && memcmp(buf, buf2, len) == 0);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(c, EK), VEIL_OK);
    veil_ct_batch_free(c);
    veil_serial_buffer_free(buf2, len2);

    check_all_truncations(buf, len, de_ct);
    /* every header bit, every checksum bit, and every 61st payload bit */
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 0, 8 * 176, 1, de_ct), 0);
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 8 * (len - 32), 8 * 32, 1, de_ct), 0);
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 8 * 176, 8 * (len - 208), 61, de_ct), 0);

    const char *path = tmp_path("batch.ct");
    CU_ASSERT_FATAL(veil_ct_batch_save(b, path) == VEIL_OK);
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
    CU_ASSERT_FATAL(veil_ct_batch_load(path, &c) == VEIL_OK);
    CU_ASSERT(memcmp(c->data, b->data, 8 * 5 * ((size_t)b->dim + 1)) == 0);
    veil_ct_batch_free(c);

    /* an empty batch is a valid batch */
    veil_ct_batch *e = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_new(P, P->lwe_dim, 0, &e) == VEIL_OK);
    CU_ASSERT_FATAL(veil_ct_batch_serialize(e, &buf2, &len2) == VEIL_OK);
    CU_ASSERT_EQUAL(len2, 208);
    CU_ASSERT_FATAL(veil_ct_batch_deserialize(buf2, len2, &c) == VEIL_OK);
    CU_ASSERT_EQUAL(c->count, 0);
    CU_ASSERT_EQUAL(c->dim, P->lwe_dim);
    veil_ct_batch_free(c);
    veil_ct_batch_free(e);
    veil_serial_buffer_free(buf2, len2);

    CU_ASSERT_EQUAL(veil_ct_batch_new(P, 1234, 1, &e), VEIL_ERR_ARG);
    veil_serial_buffer_free(buf, len);
    veil_ct_batch_free(b);
}

static void test_ct_batch_seeded(void) {
    const uint64_t count = 7;
    const uint32_t n = P->lwe_dim;
    veil_ct_batch *b = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_new(P, n, count, &b) == VEIL_OK);
    uint8_t ms[32], ns[32];
    veil_test_seed_bytes(20, ms);
    veil_test_seed_bytes(21, ns);
    veil_encryptor *enc = NULL;
    CU_ASSERT_FATAL(veil_encryptor_new(ms, ns, &enc) == VEIL_OK);
    int64_t msgs[7];
    for (uint64_t i = 0; i < count; i++) {
        msgs[i] = (int64_t)(veil_test_rand() % 4);
        veil_encrypt_small(enc, SK, 0, veil_encode(msgs[i], 2), b->data + i * (n + 1));
    }
    veil_encryptor_free(enc);
    veil_secret_key_fingerprint(SK, b->key_fp);

    uint8_t *buf = NULL, *raw = NULL;
    size_t len = 0, rawlen = 0;
    CU_ASSERT_FATAL(veil_ct_batch_serialize_seeded(b, ms, &buf, &len) == VEIL_OK);
    CU_ASSERT_FATAL(veil_ct_batch_serialize(b, &raw, &rawlen) == VEIL_OK);
    CU_ASSERT_EQUAL(len, 176 + 8 * count + 32);
    CU_ASSERT(memcmp(buf, "VEILCS01", 8) == 0);
    printf("\n  seeded batch of %llu (n = %u): %zu bytes, raw %zu bytes\n",
           (unsigned long long)count, n, len, rawlen);
    veil_ct_batch *c = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_deserialize(buf, len, &c) == VEIL_OK);
    CU_ASSERT_EQUAL(c->dim, n);
    CU_ASSERT(memcmp(c->data, b->data, 8 * count * (n + 1)) == 0);
    for (uint64_t i = 0; i < count; i++)
        CU_ASSERT_EQUAL(veil_decode(veil_phase_small(SK, 0, c->data + i * (n + 1)), 2, 0), msgs[i]);
    veil_ct_batch_free(c);
    /* the memory cap counts the expanded batch, not the upload */
    const uint64_t expanded = 8 * count * (n + 1);
    c = NULL;
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize_limited(buf, len, expanded - 1, &c),
                    VEIL_ERR_UNSUPPORTED);
    CU_ASSERT(msg_has("over the limit"));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize_limited(buf, len, expanded, &c), VEIL_OK);
    veil_ct_batch_free(c);
    check_all_truncations(buf, len, de_ct);
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 0, 8 * len, 1, de_ct), 0);

    /* file form */
    const char *path = tmp_path("seeded.ct");
    CU_ASSERT_FATAL(veil_ct_batch_save_seeded(b, ms, path) == VEIL_OK);
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT_EQUAL((size_t)st.st_size, len);
    CU_ASSERT_FATAL(veil_ct_batch_load(path, &c) == VEIL_OK);
    CU_ASSERT(memcmp(c->data, b->data, 8 * count * (n + 1)) == 0);
    veil_ct_batch_free(c);

    /* the wrong seed, or a mask that is not the stream: refused */
    uint8_t *bad = NULL;
    size_t badlen = 0;
    ns[0] ^= 1;
    CU_ASSERT_EQUAL(veil_ct_batch_serialize_seeded(b, ns, &bad, &badlen), VEIL_ERR_ARG);
    b->data[3 * (n + 1) + 5] ^= 1;
    CU_ASSERT_EQUAL(veil_ct_batch_serialize_seeded(b, ms, &bad, &badlen), VEIL_ERR_ARG);
    CU_ASSERT(msg_has("ciphertext 3"));
    CU_ASSERT_PTR_NULL(bad);
    veil_serial_buffer_free(buf, len);
    veil_serial_buffer_free(raw, rawlen);
    veil_ct_batch_free(b);
}

/* ---- evaluation key ----------------------------------------------------------------- */

static void test_eval_key_roundtrip(void) {
    /* keygen records the fingerprint of the secret key */
    uint8_t fp[16];
    veil_secret_key_fingerprint(SK, fp);
    CU_ASSERT(memcmp(EK->key_fp, fp, 16) == 0);
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    CU_ASSERT_FATAL(veil_eval_key_serialize(EK, &buf, &len) == VEIL_OK);
    CU_ASSERT_EQUAL(len, veil_eval_key_serialized_bytes(&P, 1));
    printf("\n  evaluation key %s: seeded %zu bytes, raw %zu bytes (ratio %.4f)\n", P->id, len,
           veil_eval_key_raw_bytes(&P, 1), (double)len / (double)veil_eval_key_raw_bytes(&P, 1));
    veil_eval_key *ek = NULL;
    CU_ASSERT_FATAL(veil_eval_key_deserialize(buf, len, &ek) == VEIL_OK);
    CU_ASSERT_PTR_EQUAL(ek->params, P);
    CU_ASSERT(memcmp(ek->mask_seed, EK->mask_seed, 32) == 0);
    CU_ASSERT(memcmp(ek->key_fp, EK->key_fp, 16) == 0);
    CU_ASSERT(memcmp(ek->parts[0].bsk, EK->parts[0].bsk, 8 * veil_eval_key_bsk_words(P)) == 0);
    CU_ASSERT(memcmp(ek->parts[0].ksk, EK->parts[0].ksk,
                     8 * veil_eval_key_ksk_words(P, veil_params_big_dim(P))) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ek->parts[0].bsk_fourier);
    CU_ASSERT(memcmp(ek->parts[0].bsk_fourier, EK->parts[0].bsk_fourier,
                     8 * veil_eval_key_bsk_words(P)) == 0);
    CU_ASSERT_FATAL(veil_eval_key_serialize(ek, &buf2, &len2) == VEIL_OK);
    CU_ASSERT(len2 == len && memcmp(buf, buf2, len) == 0);
    veil_serial_buffer_free(buf2, len2);
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(ek, SK), VEIL_OK);

    /* the loaded key works: keyswitch, then a PBS of every table entry */
    const uint32_t n = P->lwe_dim, big = veil_params_big_dim(P);
    uint64_t *ct = malloc(8 * (big + 1)), *small = malloc(8 * (n + 1)),
             *out = malloc(8 * (big + 1));
    uint8_t ms[32], ns[32];
    veil_test_seed_bytes(30, ms);
    veil_test_seed_bytes(31, ns);
    veil_encryptor *enc = NULL;
    CU_ASSERT_FATAL(veil_encryptor_new(ms, ns, &enc) == VEIL_OK);
    const int64_t table[4] = {3, 0, 2, 1};
    veil_lut *lut = NULL;
    veil_pbs_ctx *ctx = NULL;
    CU_ASSERT_FATAL(veil_lut_new(P, table, 2, 0, veil_delta(2), &lut) == VEIL_OK);
    CU_ASSERT_FATAL(veil_pbs_ctx_new(P, &ctx) == VEIL_OK);
    for (int64_t m = 0; m < 4; m++) {
        veil_encrypt_big(enc, SK, veil_encode(m, 2), ct);
        veil_keyswitch(veil_eval_key_part(ek, 0), ct, small);
        CU_ASSERT_EQUAL(veil_decode(veil_phase_small(SK, 0, small), 2, 0), m);
        veil_ks_pbs(ctx, veil_eval_key_part(ek, 0), lut, ct, out);
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(SK, out), 2, 0), table[m]);
    }
    veil_pbs_ctx_free(ctx);
    veil_lut_free(lut);
    veil_encryptor_free(enc);
    free(ct);
    free(small);
    free(out);

    /* file form */
    const char *path = tmp_path("eval.ek");
    CU_ASSERT_FATAL(veil_eval_key_save(EK, path) == VEIL_OK);
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
    CU_ASSERT_EQUAL((size_t)st.st_size, len);
    veil_eval_key *ek2 = NULL;
    CU_ASSERT_FATAL(veil_eval_key_load(path, &ek2) == VEIL_OK);
    CU_ASSERT(memcmp(ek2->parts[0].bsk, EK->parts[0].bsk, 8 * veil_eval_key_bsk_words(P)) == 0);
    CU_ASSERT(memcmp(ek2->parts[0].ksk, EK->parts[0].ksk,
                     8 * veil_eval_key_ksk_words(P, veil_params_big_dim(P))) == 0);
    veil_eval_key_free(ek2);

    /* a key whose masks are not the seed's stream cannot be stored seeded */
    ek->parts[0].bsk[5] ^= 1;
    CU_ASSERT_EQUAL(veil_eval_key_serialize(ek, &buf2, &len2), VEIL_ERR_ARG);
    CU_ASSERT(msg_has("BSK GGSW 0 row 0"));
    ek->parts[0].bsk[5] ^= 1;
    ek->parts[0].ksk[(size_t)7 * (n + 1)] ^= 1;
    CU_ASSERT_EQUAL(veil_eval_key_serialize(ek, &buf2, &len2), VEIL_ERR_ARG);
    CU_ASSERT(msg_has("KSK entry"));
    veil_eval_key_free(ek);
    veil_serial_buffer_free(buf, len);
}

static void test_eval_key_rejects(void) {
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_eval_key_serialize(EK, &buf, &len) == VEIL_OK);
    /* truncations: every length up to the end of the header, then a sample
     * (each is refused on the length, before allocating) */
    size_t bad = 0;
    for (size_t l = 0; l < len; l += (l < 512 ? 1 : 1 + (size_t)(veil_test_rand() % 99991))) {
        veil_eval_key *k = NULL;
        if (veil_eval_key_deserialize(buf, l, &k) != VEIL_ERR_FORMAT || k) bad++;
    }
    veil_eval_key *k = NULL;
    if (veil_eval_key_deserialize(buf, len - 1, &k) != VEIL_ERR_FORMAT) bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* every bit of the fields that are checked before the payload is read
     * (magic .. params id, lengths), a sample of the fingerprint, seed and
     * payload bits (each of those costs a full read), the checksum */
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 0, 8 * 64, 1, de_ek), 0);
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 8 * 144, 8 * 32, 1, de_ek), 0);
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 8 * 64, 8 * 80, 37, de_ek), 0);
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 8 * 176, 8 * (len - 208), 8 * (len - 208) / 6, de_ek),
                    0);
    CU_ASSERT_EQUAL(flips_accepted(buf, len, 8 * (len - 32), 8 * 32, 29, de_ek), 0);
    /* the secret key file is not an evaluation key */
    uint8_t *skb = NULL;
    size_t skl = 0;
    CU_ASSERT_FATAL(veil_secret_key_serialize(SK, &skb, &skl) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_deserialize(skb, skl, &k), VEIL_ERR_FORMAT);
    CU_ASSERT(msg_has("magic: expected an evaluation key, got VEILSK01"));
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize(buf, len, &(veil_ct_batch *){NULL}), VEIL_ERR_FORMAT);
    veil_serial_buffer_free(skb, skl);
    veil_serial_buffer_free(buf, len);
}

/* ---- objects that do not belong together ---------------------------------------------- */

static void test_mismatch(void) {
    uint8_t s[32];
    veil_test_seed_bytes(40, s);
    veil_secret_key *other = NULL;
    CU_ASSERT_FATAL(veil_secret_key_new(P, s, &other) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(EK, SK), VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(EK, other), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("key fp"));

    int64_t msgs[2];
    veil_ct_batch *b = make_big_batch(2, msgs);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(b, EK), VEIL_OK);
    veil_secret_key_fingerprint(other, b->key_fp);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(b, EK), VEIL_ERR_PARAMS);
    /* an unrecorded (zero) fingerprint never matches, not even another zero */
    memset(b->key_fp, 0, 16);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(b, EK), VEIL_ERR_PARAMS);
    veil_eval_key zero_ek = *EK;
    memset(zero_ek.key_fp, 0, 16);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(b, &zero_ek), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has("no key fp"));

    const veil_params *q = veil_params_find(OTHER_ID);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    veil_ct_batch *c = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_new(q, q->lwe_dim, 1, &c) == VEIL_OK);
    veil_secret_key_fingerprint(SK, c->key_fp);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(c, EK), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has(OTHER_ID));
    veil_secret_key *sq = NULL;
    CU_ASSERT_FATAL(veil_secret_key_new(q, s, &sq) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_check_secret_key(EK, sq), VEIL_ERR_PARAMS);

    /* peek tells kind and params without the payload */
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_ct_batch_serialize(c, &buf, &len) == VEIL_OK);
    veil_serial_kind kind;
    const veil_params *pp = NULL;
    CU_ASSERT_EQUAL(veil_serial_peek(buf, len, &kind, &pp), VEIL_OK);
    CU_ASSERT_EQUAL(kind, VEIL_SERIAL_CT_BATCH);
    CU_ASSERT_PTR_EQUAL(pp, q);
    CU_ASSERT_EQUAL(veil_serial_peek(buf, 100, &kind, &pp), VEIL_ERR_FORMAT);
    /* An empty HTTP body: a format error that says so (issue 15, item 11). */
    CU_ASSERT_EQUAL(veil_serial_peek(NULL, 0, &kind, &pp), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "empty"));
    veil_serial_buffer_free(buf, len);

    veil_secret_key_free(sq);
    veil_ct_batch_free(c);
    veil_ct_batch_free(b);
    veil_secret_key_free(other);
}

static void test_file_errors(void) {
    veil_secret_key *k = NULL;
    CU_ASSERT_EQUAL(veil_secret_key_load(tmp_path("does-not-exist"), &k), VEIL_ERR_IO);
    CU_ASSERT(msg_has("does-not-exist"));
    CU_ASSERT_EQUAL(veil_secret_key_save(SK, tmp_path("no-dir/key.sk")), VEIL_ERR_IO);
    CU_ASSERT_EQUAL(veil_secret_key_load(tmpdir, &k), VEIL_ERR_IO); /* a directory */
    /* a truncated file names the path and the problem */
    const char *path = tmp_path("short.sk");
    CU_ASSERT_FATAL(veil_secret_key_save(SK, path) == VEIL_OK);
    CU_ASSERT_FATAL(truncate(path, 300) == 0);
    CU_ASSERT_EQUAL(veil_secret_key_load(path, &k), VEIL_ERR_FORMAT);
    CU_ASSERT(msg_has("short.sk: truncated"));
    CU_ASSERT_PTR_NULL(k);
    /* an evaluation key file is not a secret key */
    CU_ASSERT_FATAL(
        veil_ct_batch_save(&(veil_ct_batch){P, P->lwe_dim, 0, (uint64_t[1]){0}, {0}, {0}}, path) ==
        VEIL_OK);
    CU_ASSERT_EQUAL(veil_secret_key_load(path, &k), VEIL_ERR_FORMAT);
    CU_ASSERT(msg_has("magic"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("serialize", suite_init, suite_clean);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_secret_key_roundtrip);
    VEIL_ADD_TEST(s, test_secret_key_rejects);
    VEIL_ADD_TEST(s, test_header_fields);
    VEIL_ADD_TEST(s, test_ct_batch_roundtrip);
    VEIL_ADD_TEST(s, test_ct_batch_seeded);
    VEIL_ADD_TEST(s, test_eval_key_roundtrip);
    VEIL_ADD_TEST(s, test_eval_key_rejects);
    VEIL_ADD_TEST(s, test_mismatch);
    VEIL_ADD_TEST(s, test_file_errors);
    return veil_test_run();
}
