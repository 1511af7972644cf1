// LABELS: unit crypto
/* Serialization of secret keys, evaluation keys and ciphertext batches:
 * round trips (bit-identical re-serialization, decryption and PBS after
 * load), and rejection of truncated, corrupted, mislabelled and hostile input.
 *
 * Rejection asserts WHICH check fired, so deleting a field check fails a
 * test (the BLAKE2b checksum would otherwise refuse every corruption):
 *  - field tables (test_fields_*): per type, every header field set to a bad
 *    value with the checksum RECOMPUTED, each row naming the status and the
 *    message of the check that must refuse it; fields the loader cannot judge
 *    (fingerprints, a seeded batch's mask seed) are rows that must load, with
 *    where they are checked instead. Key rows follow the current VEILSK01 /
 *    VEILEK01 layout: issue 11 changes the key formats, adding its fields is
 *    one row each.
 *  - bit flips (flips_refused): every header bit, checksum left stale; a
 *    header field is checked before the payload is read, so the message must
 *    name the flipped field (expected_check); payload and checksum flips must
 *    name the checksum. Evaluation-key payload and checksum bits are sampled
 *    (each costs a full read of the key). */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "veil/ks32.h"
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

static uint32_t get_le32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void put_le32(uint8_t *b, uint32_t v) {
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

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

static veil_status de_sk(const uint8_t *b, size_t l, void **o) {
    veil_secret_key *k = NULL;
    veil_status s = veil_secret_key_deserialize(b, l, &k);
    if (s == VEIL_OK) veil_secret_key_free(k);
    *o = s == VEIL_OK ? (void *)1 : NULL;
    return s;
}
static veil_status de_ek(const uint8_t *b, size_t l, void **o) {
    veil_eval_key *k = NULL;
    veil_status s = veil_eval_key_deserialize(b, l, VEIL_KEY_BOTH, &k);
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

/* Which check must refuse a file of `kind` whose bit at byte `off` was flipped
 * (checksum left as it is). Header fields are checked before the payload is
 * read, so a flip there must be refused by that field's own check, named in
 * the message; fields the loader cannot judge (a batch's key and model
 * fingerprints, the mask seed of an evaluation key or seeded batch, a seeded
 * batch's mask width below its dim) and the
 * payload fall to the checksum. Up to two acceptable message prefixes: a
 * batch's count is checked through the payload length it implies. */
/* Key files (format 2, evaluation keys 3) open their payload with the
 * partition table: one params id of 48 bytes per partition; the keys here
 * have one partition. An evaluation key's row table follows it. */
#define KEY_TABLE_BYTES 48
static void expected_check(uint32_t kind, size_t off, size_t len, const char *want[2]) {
    const int batch = kind == VEIL_SERIAL_CT_BATCH || kind == VEIL_SERIAL_CT_SEEDED;
    const int key = kind == VEIL_SERIAL_SECRET_KEY || kind == VEIL_SERIAL_EVAL_KEY;
    want[1] = NULL;
    if (off < 8)
        want[0] = "magic: ";
    else if (off < 12) {
        want[0] = "version: ";
        /* an evaluation key read as version 2 (KSKs of D rows, no row
         * table): its sizes do not add up */
        if (kind == VEIL_SERIAL_EVAL_KEY) want[1] = "payload bytes: ";
    } else if (off < 16)
        want[0] = "kind: ";
    else if (off < 64)
        want[0] = "params id: ";
    else if (off < 80)
        want[0] = "checksum: "; /* a secret key's fp is compared after the checksum */
    else if (off < 112)
        want[0] = batch ? "checksum: " : "model fp: ";
    else if (off < 144)
        want[0] = kind == VEIL_SERIAL_SECRET_KEY || kind == VEIL_SERIAL_CT_BATCH ? "mask seed: "
                                                                                 : "checksum: ";
    else if (off < 152) {
        want[0] = "len_a ";
        if (batch) want[1] = "payload bytes: ";
    } else if (off < 160)
        want[0] = "len_b ";
    else if (off < 164)
        want[0] = "dim: ";
    else if (off < 168) {
        /* a key's partition count: refused as such, or by the table it then
         * names (an id that is not one, or a table past the file's end) */
        want[0] = key ? "partition" : "mask width: ";
        if (key) want[1] = "truncated: ";
        /* a seeded batch's mask width below dim regenerates other masks:
         * the checksum's (the header is in it) */
        if (kind == VEIL_SERIAL_CT_SEEDED) want[1] = "checksum: ";
    } else if (off < 176)
        want[0] = "payload bytes: ";
    else if (key && off < 176 + KEY_TABLE_BYTES)
        want[0] = "partition 0 params id"; /* the one-partition table opens a key's payload */
    else if (kind == VEIL_SERIAL_EVAL_KEY && off < 176 + KEY_TABLE_BYTES + 4) {
        /* then an evaluation key's row table: rows out of 1..D, or sizes
         * that no longer add up */
        want[0] = "partition 0 KSK rows: ";
        want[1] = "len_b ";
    } else if (off < len - 32)
        want[0] = "checksum: ";
    else
        want[0] = "checksum: ";
}

/* Flips each listed bit and asserts that the load is refused by the check
 * expected_check names (a secret key's padding bits by the padding check).
 * A params-id flip that happens to spell another known set is refused by a
 * later field instead; those are counted apart. Returns the number of flips
 * tried; every mismatch fails the test. */
static size_t flips_refused(uint32_t kind, uint8_t *buf, size_t len, size_t first_bit, size_t nbits,
                            size_t step, veil_status (*de)(const uint8_t *, size_t, void **)) {
    size_t tried = 0, wrong = 0, other_set = 0;
    const size_t lwe_pad_byte = 176 + KEY_TABLE_BYTES + (P->lwe_dim + 7) / 8 - 1;
    for (size_t bit = first_bit; bit < first_bit + nbits && bit < 8 * len; bit += step) {
        const size_t off = bit / 8;
        buf[off] ^= (uint8_t)(1u << (bit % 8));
        const char *want[2];
        expected_check(kind, off, len, want);
        if (kind == VEIL_SERIAL_SECRET_KEY && P->lwe_dim % 8 && off == lwe_pad_byte &&
            bit % 8 >= P->lwe_dim % 8)
            want[0] = "payload: padding bits";
        int known_set = 0; /* a flip inside the id that spells another set */
        if (off >= 16 && off < 16 + strlen(P->id)) {
            char id[49] = {0};
            memcpy(id, buf + 16, 48);
            known_set = veil_params_find(id) != NULL;
        }
        void *obj = NULL;
        veil_status s = de(buf, len, &obj);
        const char *msg = veil_error_message();
        int ok = s != VEIL_OK && !obj;
        if (known_set)
            other_set++;
        else if (ok && strncmp(msg, want[0], strlen(want[0])) != 0 &&
                 !(want[1] && strncmp(msg, want[1], strlen(want[1])) == 0))
            ok = 0;
        if (!ok && wrong++ < 5)
            printf("\n  flip of bit %zu (byte %zu): status %d \"%s\", expected a refusal by \"%s\"",
                   bit, off, (int)s, s == VEIL_OK ? "" : msg, want[0]);
        tried++;
        buf[off] ^= (uint8_t)(1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(wrong, 0);
    if (other_set) printf("\n  %zu params-id flips spelled another known set", other_set);
    return tried;
}

/* ---- field-level rejection, checksum recomputed --------------------------------------- */

/* One bad header value: up to two fields overwritten (a second one to keep
 * the header consistent past the first), the checksum recomputed so only the
 * field checks can refuse it, and the check that must fire: the status and a
 * message fragment naming the field and its complaint. Deleting that check
 * makes the row fail (a later check names another field, or the file loads).
 * want == VEIL_OK marks a field the loader cannot judge (documented there). */
typedef struct {
    const char *what;
    size_t off, width;
    uint64_t value;    /* little-endian integer, width <= 8 */
    const char *bytes; /* or: these bytes, NUL-padded to width */
    size_t off2, width2;
    uint64_t value2;
    veil_status want;
    const char *needle;
} field_case;

static void put_field(uint8_t *buf, size_t off, size_t width, uint64_t v, const char *bytes) {
    if (bytes) {
        memset(buf + off, 0, width);
        memcpy(buf + off, bytes, strnlen(bytes, width));
    } else {
        for (size_t i = 0; i < width; i++)
            buf[off + i] = (uint8_t)(i < 8 ? v >> (8 * i) : 0);
    }
}

/* Runs every row against a valid serialized object; returns how many ran. */
static size_t run_field_cases(const char *type, const uint8_t *orig, size_t len,
                              veil_status (*de)(const uint8_t *, size_t, void **),
                              const field_case *cases, size_t ncases) {
    uint8_t *buf = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memcpy(buf, orig, len);
    void *obj = NULL;
    CU_ASSERT_EQUAL_FATAL(de(buf, len, &obj), VEIL_OK); /* the unmodified file loads */
    size_t ran = 0;
    for (size_t i = 0; i < ncases; i++) {
        const field_case *c = &cases[i];
        memcpy(buf, orig, len);
        put_field(buf, c->off, c->width, c->value, c->bytes);
        if (c->width2) put_field(buf, c->off2, c->width2, c->value2, NULL);
        CU_ASSERT_FATAL(memcmp(buf, orig, len) != 0); /* the row changed something */
        fix_checksum(buf, len);
        obj = NULL;
        veil_status s = de(buf, len, &obj);
        int ok = s == c->want && (c->want == VEIL_OK ? obj != NULL : obj == NULL);
        if (ok && c->want != VEIL_OK) ok = msg_has(c->needle);
        if (!ok)
            printf("\n  %s, %s: status %d \"%s\", expected %d \"%s\"", type, c->what, (int)s,
                   s == VEIL_OK ? "" : veil_error_message(), (int)c->want, c->needle);
        CU_ASSERT(ok);
        ran++;
    }
    free(buf);
    return ran;
}

/* Rows every type shares: magic, version, kind, params id, reserved, payload
 * length. `kind` is the type's, `other` another type's kind. */
static size_t common_cases(uint32_t kind, uint32_t other, field_case *c) {
    static const char *const magics[] = {NULL, "VEILSK01", "VEILEK01", "VEILCT01", "VEILCS01"};
    static char expect_other[4][64], expect_kind[4][64];
    snprintf(expect_other[kind - 1], 64, "magic: expected %s, got %s",
             kind == 1   ? "a secret key"
             : kind == 2 ? "an evaluation key"
                         : "a ciphertext batch",
             magics[other]);
    snprintf(expect_kind[kind - 1], 64, "kind: %u does not match magic %s", other, magics[kind]);
    char *a48 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    size_t n = 0;
    c[n++] = (field_case){"unknown magic",
                          0,
                          8,
                          0,
                          "VEILXX01",
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "magic: \"VEILXX01\" is not a veil file"};
    c[n++] = (field_case){"another type's magic", 0, 8, 0, magics[other], 0, 0, 0, VEIL_ERR_FORMAT,
                          expect_other[kind - 1]};
    c[n++] = (field_case){"version 2",
                          8,
                          4,
                          2,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "version: 2, this build reads version 1"};
    c[n++] = (field_case){"version 0", 8, 4, 0, NULL, 0, 0, 0, VEIL_ERR_FORMAT, "version: 0"};
    c[n++] = (field_case){"kind of another type", 12, 4, other, NULL, 0, 0, 0, VEIL_ERR_FORMAT,
                          expect_kind[kind - 1]};
    c[n++] = (field_case){"params id unknown",
                          16,
                          48,
                          0,
                          "no-such-set",
                          0,
                          0,
                          0,
                          VEIL_ERR_PARAMS,
                          "params id: \"no-such-set\" is not a known parameter set"};
    c[n++] = (field_case){"params id without NUL", 16, 48, 0, a48, 0, 0, 0, VEIL_ERR_FORMAT,
                          "is not NUL-terminated"};
    c[n++] = (field_case){"params id empty", 16, 48, 0, "", 0, 0, 0, VEIL_ERR_FORMAT,
                          "params id: empty"};
    c[n++] = (field_case){
        "params id with bytes after its NUL", 16 + 40, 1, 1, NULL, 0, 0, 0, VEIL_ERR_FORMAT,
        "non-zero bytes after its end"};
    /* the mask width: 0 in a raw batch; below dim in a seeded one */
    if (kind == VEIL_SERIAL_CT_BATCH)
        c[n++] = (field_case){"mask width in a raw batch",
                              164,
                              4,
                              1,
                              NULL,
                              0,
                              0,
                              0,
                              VEIL_ERR_FORMAT,
                              "mask width: 1, must be 0 in a raw batch"};
    else
        c[n++] = (field_case){"mask width 2^32 - 1",
                              164,
                              4,
                              UINT32_MAX,
                              NULL,
                              0,
                              0,
                              0,
                              VEIL_ERR_FORMAT,
                              "mask width: 4294967295, must be below dim"};
    c[n++] = (field_case){"payload bytes 0",
                          168,
                          8,
                          0,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "payload bytes: 0, the header fields imply"};
    return n;
}

static void test_secret_key_rejects(void) {
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_secret_key_serialize(SK, &buf, &len) == VEIL_OK);
    check_all_truncations(buf, len, de_sk);
    /* every bit of the file (header, payload, checksum) */
    CU_ASSERT_EQUAL(flips_refused(VEIL_SERIAL_SECRET_KEY, buf, len, 0, 8 * len, 1, de_sk), 8 * len);

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

/* ---- header fields, one table per type ------------------------------------------------ */

/* Number of bits flips_refused tries for (nbits, step) inside the file. */
static size_t flips_expected(size_t nbits, size_t step) {
    return (nbits + step - 1) / step;
}

/* A raw batch: every header field. */
static void test_fields_ct_batch(void) {
    int64_t msgs[3];
    veil_ct_batch *b = make_big_batch(3, msgs);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_ct_batch_serialize(b, &buf, &len) == VEIL_OK);
    const uint64_t per = (uint64_t)b->dim + 1, hostile = (uint64_t)1 << 40;
    static char big_dim[96], n_len_b[96];
    snprintf(big_dim, sizeof big_dim, "dim: %u, parameter set %s", b->dim, BIG_ID);
    snprintf(n_len_b, sizeof n_len_b, "len_b (words per ciphertext): %llu, expected %u",
             (unsigned long long)per, P->lwe_dim + 1);
    field_case c[32];
    size_t n = common_cases(VEIL_SERIAL_CT_BATCH, VEIL_SERIAL_SECRET_KEY, c);
    c[n++] = (field_case){"mask seed in a raw batch",
                          112,
                          1,
                          1,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "mask seed: must be zero in a raw batch"};
    c[n++] = (field_case){"dim 100",
                          160,
                          4,
                          100,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "dim: 100, parameter set " SMALL_ID};
    c[n++] = (field_case){"dim n, len_b of k*N", 160,    4, P->lwe_dim, NULL, 0, 0, 0,
                          VEIL_ERR_FORMAT,       n_len_b};
    c[n++] = (field_case){"len_b",
                          152,
                          8,
                          7,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "len_b (words per ciphertext): 7, expected"};
    c[n++] =
        (field_case){"count + 1", 144, 8, 4, NULL, 0, 0, 0, VEIL_ERR_FORMAT, "payload bytes: "};
    c[n++] = (field_case){"count overflowing",
                          144,
                          8,
                          UINT64_MAX / per,
                          NULL,
                          168,
                          8,
                          (UINT64_MAX / per) * per * 8,
                          VEIL_ERR_FORMAT,
                          "is too many"};
    /* consistent header, short input: refused before any allocation (ASan
     * would report a failed multi-terabyte calloc) */
    c[n++] = (field_case){"count 2^40, payload to match",
                          144,
                          8,
                          hostile,
                          NULL,
                          168,
                          8,
                          hostile * per * 8,
                          VEIL_ERR_FORMAT,
                          "truncated: "};
    c[n++] = (field_case){"count 2, payload to match",
                          144,
                          8,
                          2,
                          NULL,
                          168,
                          8,
                          2 * per * 8,
                          VEIL_ERR_FORMAT,
                          "trailing data: "};
    c[n++] = (field_case){"a set whose k*N differs", 16,     48, 0, BIG_ID, 0, 0, 0,
                          VEIL_ERR_FORMAT,           big_dim};
    /* Fields the loader cannot judge (each row flips bits of the byte it
     * writes: a fixed value matched the random byte 1 run in 256 and the row
     * changed nothing): the fingerprints are checked against
     * the evaluation key (veil_ct_batch_check_eval_key, test_mismatch) and the
     * program (the server's model_mismatch, test_server.c), a set of the same
     * k*N only against the evaluation key (below). */
    c[n++] =
        (field_case){"key fp (opaque here)", 64, 1, buf[64] ^ 0x5au, NULL, 0, 0, 0, VEIL_OK, NULL};
    c[n++] = (field_case){
        "model fp (opaque here)", 80, 1, buf[80] ^ 0x5au, NULL, 0, 0, 0, VEIL_OK, NULL};
    c[n++] = (field_case){"a set of the same k*N", 16, 48, 0, OTHER_ID, 0, 0, 0, VEIL_OK, NULL};
    CU_ASSERT_EQUAL(run_field_cases("raw batch", buf, len, de_ct, c, n), 11 + 12);

    /* the set of the same k*N: only veil_ct_batch_check_eval_key refuses it */
    uint8_t *other = malloc(len);
    memcpy(other, buf, len);
    put_field(other, 16, 48, 0, OTHER_ID);
    fix_checksum(other, len);
    veil_ct_batch *out = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_ct_batch_deserialize(other, len, &out), VEIL_OK);
    CU_ASSERT_EQUAL(veil_ct_batch_check_eval_key(out, EK), VEIL_ERR_PARAMS);
    CU_ASSERT(msg_has(OTHER_ID));
    veil_ct_batch_free(out);
    free(other);
    /* the size cap: its own status, naming the count */
    out = NULL;
    CU_ASSERT_EQUAL(veil_ct_batch_deserialize_limited(buf, len, 3 * per * 8 - 1, &out),
                    VEIL_ERR_UNSUPPORTED);
    CU_ASSERT(msg_has("len_a (count): 3 ciphertexts"));
    CU_ASSERT(msg_has("over the limit"));
    CU_ASSERT_PTR_NULL(out);
    veil_serial_buffer_free(buf, len);
    veil_ct_batch_free(b);
}

/* A zeroed batch of `count` ciphertexts of dimension dim under P, and an
 * encryptor whose mask seed (ms) and noise seed come from test seeds seed and
 * seed + 1. */
static veil_encryptor *batch_and_encryptor(uint32_t dim, uint64_t count, unsigned seed,
                                           veil_ct_batch **b, uint8_t ms[32]) {
    CU_ASSERT_FATAL(veil_ct_batch_new(P, dim, count, b) == VEIL_OK);
    uint8_t ns[32];
    veil_test_seed_bytes(seed, ms);
    veil_test_seed_bytes(seed + 1, ns);
    veil_encryptor *enc = NULL;
    CU_ASSERT_FATAL(veil_encryptor_new(ms, ns, &enc) == VEIL_OK);
    return enc;
}

/* A seeded batch of `count` fresh small-key encryptions, serialized. */
static uint8_t *make_seeded_buf(uint64_t count, size_t *len) {
    const uint32_t n = P->lwe_dim;
    veil_ct_batch *b = NULL;
    uint8_t ms[32];
    veil_encryptor *enc = batch_and_encryptor(n, count, 50, &b, ms);
    for (uint64_t i = 0; i < count; i++)
        veil_encrypt_small(enc, SK, 0, veil_encode((int64_t)(i % 4), 2), b->data + i * (n + 1));
    veil_encryptor_free(enc);
    veil_secret_key_fingerprint(SK, b->key_fp);
    uint8_t *buf = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_serialize_seeded(b, ms, &buf, len) == VEIL_OK);
    veil_ct_batch_free(b);
    return buf;
}

/* A seeded batch: every header field. */
static void test_fields_ct_seeded(void) {
    size_t len = 0;
    uint8_t *buf = make_seeded_buf(7, &len);
    const uint64_t hostile = (uint64_t)1 << 40;
    field_case c[32];
    size_t n = common_cases(VEIL_SERIAL_CT_SEEDED, VEIL_SERIAL_EVAL_KEY, c);
    c[n++] = (field_case){"dim 100",
                          160,
                          4,
                          100,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "dim: 100, parameter set " SMALL_ID};
    c[n++] = (field_case){"len_b 2",
                          152,
                          8,
                          2,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "len_b (words per ciphertext): 2, expected 1"};
    c[n++] = (field_case){"count + 1",
                          144,
                          8,
                          8,
                          NULL,
                          0,
                          0,
                          0,
                          VEIL_ERR_FORMAT,
                          "payload bytes: 56, the header fields imply 64"};
    c[n++] = (field_case){
        "count overflowing", 144,          8, UINT64_MAX / 8, NULL, 168, 8, (UINT64_MAX / 8) * 8,
        VEIL_ERR_FORMAT,     "is too many"};
    c[n++] = (field_case){"count 2^40, payload to match",
                          144,
                          8,
                          hostile,
                          NULL,
                          168,
                          8,
                          hostile * 8,
                          VEIL_ERR_FORMAT,
                          "truncated: "};
    c[n++] = (field_case){"count 1, payload to match",
                          144,
                          8,
                          1,
                          NULL,
                          168,
                          8,
                          8,
                          VEIL_ERR_FORMAT,
                          "trailing data: "};
    /* Fields the loader cannot judge: another mask seed regenerates other
     * masks, and the other valid dimension (k*N for n) regenerates longer
     * ones: both load and decrypt to noise; only the checksum (which anyone
     * can recompute) guards them. The fingerprints as for raw batches. */
    c[n++] =
        (field_case){"mask seed (opaque)", 112, 1, buf[112] ^ 0x5au, NULL, 0, 0, 0, VEIL_OK, NULL};
    c[n++] = (field_case){
        "dim k*N (opaque)", 160, 4, veil_params_big_dim(P), NULL, 0, 0, 0, VEIL_OK, NULL};
    /* a mask width below dim regenerates shorter masks: loads, decrypts to
     * noise; dim itself is refused (0 says it: one encoding) */
    c[n++] = (field_case){"mask width 5 (opaque)", 164, 4, 5, NULL, 0, 0, 0, VEIL_OK, NULL};
    c[n++] = (field_case){"mask width = dim", 164, 4, P->lwe_dim, NULL, 0, 0, 0, VEIL_ERR_FORMAT,
                          "must be below dim"};
    c[n++] =
        (field_case){"key fp (opaque here)", 64, 1, buf[64] ^ 0x5au, NULL, 0, 0, 0, VEIL_OK, NULL};
    c[n++] = (field_case){
        "model fp (opaque here)", 80, 1, buf[80] ^ 0x5au, NULL, 0, 0, 0, VEIL_OK, NULL};
    CU_ASSERT_EQUAL(run_field_cases("seeded batch", buf, len, de_ct, c, n), 11 + 12);
    veil_serial_buffer_free(buf, len);
}

/* The key files' header fields (format 2: partition table, per-partition
 * keys) are rejected field by field, checksum recomputed, in test_keyset.c
 * (test_serialize_key_set): the rows here covered the one-set layout that
 * format replaced. */

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
    CU_ASSERT_EQUAL(flips_refused(VEIL_SERIAL_CT_BATCH, buf, len, 0, 8 * 176, 1, de_ct), 8 * 176);
    CU_ASSERT_EQUAL(flips_refused(VEIL_SERIAL_CT_BATCH, buf, len, 8 * (len - 32), 8 * 32, 1, de_ct),
                    8 * 32);
    CU_ASSERT_EQUAL(
        flips_refused(VEIL_SERIAL_CT_BATCH, buf, len, 8 * 176, 8 * (len - 208), 61, de_ct),
        flips_expected(8 * (len - 208), 61));

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

/* Inputs under a prefix of the master key (veil_encrypt_big_prefix): the
 * mask past the width is 0, the phase under the whole key is the message;
 * the seeded form draws `mask_width` words a ciphertext and loads them back
 * equal; a width that is not the encryption's is refused on the way out. */
static void test_ct_batch_seeded_prefix(void) {
    const uint64_t count = 5;
    const uint32_t D = veil_params_big_dim(P), w = D / 2;
    veil_ct_batch *b = NULL;
    uint8_t ms[32];
    veil_encryptor *enc = batch_and_encryptor(D, count, 60, &b, ms);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t *ct = b->data + i * (D + 1);
        veil_encrypt_big_prefix(enc, SK, w, &P->glwe_noise, veil_encode((int64_t)i % 4, 2), ct);
        int zero = 1;
        for (uint32_t j = w; j < D; j++)
            zero &= ct[j] == 0;
        CU_ASSERT(zero);
        CU_ASSERT_EQUAL(veil_decode(veil_phase_big(SK, ct), 2, 0), (int64_t)i % 4);
    }
    veil_encryptor_free(enc);
    veil_secret_key_fingerprint(SK, b->key_fp);
    uint8_t *buf = NULL;
    size_t len = 0;
    /* the whole mask is not the stream (its second half is 0) */
    CU_ASSERT_EQUAL(veil_ct_batch_serialize_seeded(b, ms, &buf, &len), VEIL_ERR_ARG);
    CU_ASSERT(msg_has("first"));
    b->mask_width = D;
    CU_ASSERT_EQUAL(veil_ct_batch_serialize_seeded(b, ms, &buf, &len), VEIL_ERR_ARG);
    CU_ASSERT(msg_has("must be below dim"));
    b->mask_width = w;
    CU_ASSERT_FATAL(veil_ct_batch_serialize_seeded(b, ms, &buf, &len) == VEIL_OK);
    CU_ASSERT_EQUAL(len, 176 + 8 * count + 32);
    veil_ct_batch *c = NULL;
    CU_ASSERT_FATAL(veil_ct_batch_deserialize(buf, len, &c) == VEIL_OK);
    CU_ASSERT_EQUAL(c->mask_width, w);
    CU_ASSERT(memcmp(c->data, b->data, 8 * count * (D + 1)) == 0);
    /* and out again: the same bytes */
    uint8_t *buf2 = NULL;
    size_t len2 = 0;
    CU_ASSERT_FATAL(veil_ct_batch_serialize_seeded(c, ms, &buf2, &len2) == VEIL_OK);
    CU_ASSERT(len2 == len && memcmp(buf, buf2, len) == 0);
    veil_serial_buffer_free(buf2, len2);
    veil_ct_batch_free(c);
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
    CU_ASSERT_EQUAL(flips_refused(VEIL_SERIAL_CT_SEEDED, buf, len, 0, 8 * len, 1, de_ct), 8 * len);

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
    CU_ASSERT_EQUAL(len, veil_eval_key_serialized_bytes(&P, NULL, 1));
    printf("\n  evaluation key %s: seeded %zu bytes, raw %zu bytes (ratio %.4f)\n", P->id, len,
           veil_eval_key_raw_bytes(&P, NULL, 1),
           (double)len / (double)veil_eval_key_raw_bytes(&P, NULL, 1));
    veil_eval_key *ek = NULL;
    CU_ASSERT_FATAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_BOTH, &ek) == VEIL_OK);
    CU_ASSERT_PTR_EQUAL(ek->params, P);
    CU_ASSERT(memcmp(ek->mask_seed, EK->mask_seed, 32) == 0);
    CU_ASSERT(memcmp(ek->key_fp, EK->key_fp, 16) == 0);
    CU_ASSERT(memcmp(ek->parts[0].bsk, EK->parts[0].bsk, 8 * veil_eval_key_bsk_words(P)) == 0);
    CU_ASSERT(memcmp(ek->parts[0].ksk32, EK->parts[0].ksk32,
                     4 * veil_eval_key_ksk_words(P, veil_params_big_dim(P))) == 0);
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
    CU_ASSERT_FATAL(veil_eval_key_load(path, VEIL_KEY_BOTH, &ek2) == VEIL_OK);
    CU_ASSERT(memcmp(ek2->parts[0].bsk, EK->parts[0].bsk, 8 * veil_eval_key_bsk_words(P)) == 0);
    CU_ASSERT(memcmp(ek2->parts[0].ksk32, EK->parts[0].ksk32,
                     4 * veil_eval_key_ksk_words(P, veil_params_big_dim(P))) == 0);
    veil_eval_key_free(ek2);

    /* a key whose masks are not the seed's stream cannot be stored seeded */
    ek->parts[0].bsk[5] ^= 1;
    CU_ASSERT_EQUAL(veil_eval_key_serialize(ek, &buf2, &len2), VEIL_ERR_ARG);
    CU_ASSERT(msg_has("BSK GGSW 0 row 0"));
    ek->parts[0].bsk[5] ^= 1;
    ek->parts[0].ksk32[(size_t)7 * (n + 1)] ^= 1;
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
        if (veil_eval_key_deserialize(buf, l, VEIL_KEY_BOTH, &k) != VEIL_ERR_FORMAT || k) bad++;
    }
    veil_eval_key *k = NULL;
    if (veil_eval_key_deserialize(buf, len - 1, VEIL_KEY_BOTH, &k) != VEIL_ERR_FORMAT) bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* every bit of the fields that are checked before the payload is read
     * (magic .. params id, lengths), a sample of the fingerprint, seed and
     * payload bits (each of those costs a full read), the checksum */
    const uint32_t EKK = VEIL_SERIAL_EVAL_KEY;
    const size_t pl = 8 * (len - 208);
    CU_ASSERT_EQUAL(flips_refused(EKK, buf, len, 0, 8 * 64, 1, de_ek), 8 * 64);
    CU_ASSERT_EQUAL(flips_refused(EKK, buf, len, 8 * 144, 8 * 32, 1, de_ek), 8 * 32);
    CU_ASSERT_EQUAL(flips_refused(EKK, buf, len, 8 * 64, 8 * 80, 37, de_ek),
                    flips_expected(8 * 80, 37));
    CU_ASSERT_EQUAL(flips_refused(EKK, buf, len, 8 * 176, pl, pl / 6, de_ek),
                    flips_expected(pl, pl / 6));
    CU_ASSERT_EQUAL(flips_refused(EKK, buf, len, 8 * (len - 32), 8 * 32, 29, de_ek),
                    flips_expected(8 * 32, 29));
    /* a keyswitching body word with low bits set (the file stores 32-bit
     * keyswitch words, veil/ks32.h), checksum valid: refused, naming it,
     * not rounded into another file's key (the last word before the
     * checksum is the last entry's body, little-endian) */
    buf[len - 32 - 8] ^= 1;
    fix_checksum(buf, len);
    CU_ASSERT_EQUAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_BOTH, &k), VEIL_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT(msg_has("KSK entry") && msg_has("low 32 bits set"));
    buf[len - 32 - 8] ^= 1;
    fix_checksum(buf, len);
    CU_ASSERT_EQUAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_BOTH, &k), VEIL_OK);
    veil_eval_key_free(k);
    k = NULL;
    /* the secret key file is not an evaluation key */
    uint8_t *skb = NULL;
    size_t skl = 0;
    CU_ASSERT_FATAL(veil_secret_key_serialize(SK, &skb, &skl) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_eval_key_deserialize(skb, skl, VEIL_KEY_BOTH, &k), VEIL_ERR_FORMAT);
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
    /* the rule itself, which the server's request parse (HTTP and Triton) uses too */
    CU_ASSERT_FALSE(veil_key_fp_match(b->key_fp, zero_ek.key_fp));
    CU_ASSERT_TRUE(veil_key_fp_match(EK->key_fp, EK->key_fp));
    uint8_t fp_other[VEIL_KEY_FP_BYTES];
    veil_secret_key_fingerprint(other, fp_other);
    CU_ASSERT_FALSE(veil_key_fp_match(EK->key_fp, fp_other));
    CU_ASSERT_FALSE(veil_key_fp_match(fp_other, EK->key_fp));
    /* what the server wipes before freeing a body: a secret key's bytes, by their magic */
    uint8_t *sbuf = NULL, *ebuf = NULL;
    size_t slen = 0, elen = 0;
    CU_ASSERT_FATAL(veil_secret_key_serialize(SK, &sbuf, &slen) == VEIL_OK);
    CU_ASSERT_FATAL(veil_eval_key_serialize(EK, &ebuf, &elen) == VEIL_OK);
    CU_ASSERT_TRUE(veil_serial_is_secret(sbuf, slen));
    CU_ASSERT_TRUE(veil_serial_is_secret(sbuf, 8));
    CU_ASSERT_FALSE(veil_serial_is_secret(sbuf, 7));
    CU_ASSERT_FALSE(veil_serial_is_secret(ebuf, elen));
    CU_ASSERT_FALSE(veil_serial_is_secret(NULL, 8));
    veil_serial_buffer_free(sbuf, slen);
    veil_serial_buffer_free(ebuf, elen);

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
        veil_ct_batch_save(&(veil_ct_batch){P, P->lwe_dim, 0, 0, (uint64_t[1]){0}, {0}, {0}},
                           path) == VEIL_OK);
    CU_ASSERT_EQUAL(veil_secret_key_load(path, &k), VEIL_ERR_FORMAT);
    CU_ASSERT(msg_has("magic"));
}

/* A key whose KSK has fewer rows than D (the widest value its partition
 * reads, veil_partition.ksk_rows): it is the same key as the whole one on
 * those rows (one stream of masks and noise, drawn in the same order), its
 * file holds only them and says how many (the row table), and it keyswitches
 * a value 0 past them to the same words; rows out of 1..D are refused, and
 * a version 2 file (every KSK of D rows, no row table) still loads. */
static void test_eval_key_rows(void) {
    const uint32_t D = veil_params_big_dim(P), half = D / 2, n = P->lwe_dim;
    uint8_t s1[32], s2[32];
    veil_test_seed_bytes(1, s1);
    veil_test_seed_bytes(2, s2);
    veil_eval_key *ek = NULL, *back = NULL;
    CU_ASSERT_FATAL(veil_eval_key_new_rows(SK, &half, VEIL_KEY_BOTH, s1, s2, &ek) == VEIL_OK);
    CU_ASSERT_EQUAL(ek->parts[0].ksk_rows, half);
    CU_ASSERT(
        memcmp(ek->parts[0].ksk32, EK->parts[0].ksk32, 4 * veil_eval_key_ksk_words(P, half)) == 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(veil_eval_key_serialize(ek, &buf, &len) == VEIL_OK);
    CU_ASSERT_EQUAL(len, veil_eval_key_serialized_bytes(&P, &half, 1));
    CU_ASSERT_EQUAL(len + 8 * (size_t)(D - half) * P->ks_level,
                    veil_eval_key_serialized_bytes(&P, NULL, 1));
    CU_ASSERT_EQUAL(get_le32(buf + 8), VEIL_SERIAL_EVAL_KEY_VERSION);
    CU_ASSERT_EQUAL(get_le32(buf + 176 + 48), half);
    CU_ASSERT_FATAL(veil_eval_key_deserialize(buf, len, VEIL_KEY_BOTH, &back) == VEIL_OK);
    CU_ASSERT_EQUAL(back->parts[0].ksk_rows, half);
    CU_ASSERT(memcmp(back->parts[0].ksk32, EK->parts[0].ksk32,
                     4 * veil_eval_key_ksk_words(P, half)) == 0);

    /* a value under the first half of the master key: the same words with
     * either key; a wider one reads only the rows the key has */
    uint8_t ms[32], ns[32];
    veil_test_seed_bytes(32, ms);
    veil_test_seed_bytes(33, ns);
    veil_encryptor *enc = NULL;
    CU_ASSERT_FATAL(veil_encryptor_new(ms, ns, &enc) == VEIL_OK);
    uint64_t *ct = calloc(D + 1, 8), *a = malloc(8 * (n + 1)), *b = malloc(8 * (n + 1));
    CU_ASSERT_FATAL(ct && a && b);
    veil_encrypt_big_prefix(enc, SK, half, &P->glwe_noise, veil_encode(1, 2), ct);
    CU_ASSERT_EQUAL(veil_keyswitch_rows(veil_eval_key_part(back, 0), ct), veil_lwe_mask_end(ct, D));
    veil_keyswitch(veil_eval_key_part(EK, 0), ct, a);
    veil_keyswitch(veil_eval_key_part(back, 0), ct, b);
    CU_ASSERT(memcmp(a, b, 8 * (n + 1)) == 0);
    CU_ASSERT_EQUAL(veil_decode(veil_phase_small(SK, 0, b), 2, 0), 1);
    ct[D - 1] = 1;
    CU_ASSERT_EQUAL(veil_keyswitch_rows(veil_eval_key_part(back, 0), ct), half);
    /* the key widened as if of D rows: the rows past half 0 */
    const size_t kw = veil_eval_key_ksk_words(P, D), kh = veil_eval_key_ksk_words(P, half);
    uint64_t *wide = malloc(8 * kw);
    CU_ASSERT_FATAL(wide != NULL);
    veil_keyswitch_key_wide(veil_eval_key_part(back, 0), 0, kw, wide);
    size_t off = 0;
    for (size_t i = 0; i < kw; i++)
        off += wide[i] != (i < kh ? veil_ks32_word(back->parts[0].ksk32[i]) : 0);
    CU_ASSERT_EQUAL(off, 0);
    free(wide);
    veil_encryptor_free(enc);
    free(ct), free(a), free(b);

    /* the row table's value: 0 and D + 1 refused naming it; another value
     * in range breaks the sizes (len_b) */
    const uint32_t bad[3] = {0, D + 1, half + 1};
    const char *msg[3] = {"partition 0 KSK rows: 0", "partition 0 KSK rows: ", "len_b "};
    for (int i = 0; i < 3; i++) {
        uint8_t *c = malloc(len);
        CU_ASSERT_FATAL(c != NULL);
        memcpy(c, buf, len);
        put_le32(c + 176 + 48, bad[i]);
        veil_eval_key *x = NULL;
        CU_ASSERT_EQUAL(veil_eval_key_deserialize(c, len, VEIL_KEY_BOTH, &x), VEIL_ERR_FORMAT);
        CU_ASSERT_PTR_NULL(x);
        CU_ASSERT(strncmp(veil_error_message(), msg[i], strlen(msg[i])) == 0);
        free(c);
    }
    /* out of range at keygen too */
    const uint32_t zero = 0, over = D + 1;
    veil_eval_key *x = NULL;
    CU_ASSERT_EQUAL(veil_eval_key_new_rows(SK, &zero, VEIL_KEY_BOTH, s1, s2, &x), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_eval_key_new_rows(SK, &over, VEIL_KEY_BOTH, s1, s2, &x), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NULL(x);

    /* version 2: the whole key's file without the row table, version 2, its
     * payload length and checksum made again */
    uint8_t *full = NULL;
    size_t flen = 0;
    CU_ASSERT_FATAL(veil_eval_key_serialize(EK, &full, &flen) == VEIL_OK);
    const size_t v2len = flen - 4;
    uint8_t *v2 = malloc(v2len);
    CU_ASSERT_FATAL(v2 != NULL);
    memcpy(v2, full, 176 + 48);
    memcpy(v2 + 176 + 48, full + 176 + 48 + 4, flen - 176 - 48 - 4 - 32);
    put_le32(v2 + 8, 2);
    uint64_t pl = 0;
    for (int i = 7; i >= 0; i--)
        pl = pl << 8 | v2[168 + i];
    pl -= 4;
    for (int i = 0; i < 8; i++)
        v2[168 + i] = (uint8_t)(pl >> (8 * i));
    crypto_generichash(v2 + v2len - 32, 32, v2, v2len - 32, NULL, 0);
    veil_eval_key *old = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_eval_key_deserialize(v2, v2len, VEIL_KEY_BOTH, &old), VEIL_OK);
    CU_ASSERT_EQUAL(old->parts[0].ksk_rows, D);
    CU_ASSERT(memcmp(old->parts[0].ksk32, EK->parts[0].ksk32, 4 * veil_eval_key_ksk_words(P, D)) ==
              0);
    /* written back as version 3: the whole key's bytes */
    uint8_t *again = NULL;
    size_t alen = 0;
    CU_ASSERT_FATAL(veil_eval_key_serialize(old, &again, &alen) == VEIL_OK);
    CU_ASSERT(alen == flen && memcmp(again, full, flen) == 0);
    veil_serial_buffer_free(again, alen);
    veil_eval_key_free(old);
    free(v2);
    veil_serial_buffer_free(full, flen);
    veil_serial_buffer_free(buf, len);
    veil_eval_key_free(back);
    veil_eval_key_free(ek);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("serialize", suite_init, suite_clean);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_secret_key_roundtrip);
    VEIL_ADD_TEST(s, test_secret_key_rejects);
    VEIL_ADD_TEST(s, test_fields_ct_batch);
    VEIL_ADD_TEST(s, test_fields_ct_seeded);
    VEIL_ADD_TEST(s, test_ct_batch_roundtrip);
    VEIL_ADD_TEST(s, test_ct_batch_seeded);
    VEIL_ADD_TEST(s, test_ct_batch_seeded_prefix);
    VEIL_ADD_TEST(s, test_eval_key_roundtrip);
    VEIL_ADD_TEST(s, test_eval_key_rejects);
    VEIL_ADD_TEST(s, test_eval_key_rows);
    VEIL_ADD_TEST(s, test_mismatch);
    VEIL_ADD_TEST(s, test_file_errors);
    return veil_test_run();
}
