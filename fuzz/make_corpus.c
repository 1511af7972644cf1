/* Writes the seed corpus of the fuzzers: real files made by keygen and
 * encryption with the normal engine, through the same save functions users
 * call. Usage: fuzz_make_corpus OUT_DIR (creates OUT_DIR/{secret_key,
 * eval_key,ct_batch}/). Seeds are fixed, so the corpus is reproducible.
 * Parameter sets: the smallest TFHE-rs set by evaluation-key size
 * (tfhers-1_1-gaussian-2m64: n = 781, k = 4, N = 512) for everything, and two
 * others for secret keys and batches (other n, k*N, padding bits). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "veil/serialize.h"

static const char *out_dir;

static const char *path(const char *sub, const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s/%s", out_dir, sub, name);
    return buf;
}

static void check(veil_status s, const char *what) {
    if (s != VEIL_OK) {
        fprintf(stderr, "fuzz_make_corpus: %s: %s: %s\n", what, veil_status_str(s),
                veil_error_message());
        exit(1);
    }
}

static void write_bytes(const char *p, const uint8_t *buf, size_t len) {
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_make_corpus: %s: write failed\n", p);
        exit(1);
    }
}

static void seed_of(uint8_t seed[VEIL_SEED_BYTES], unsigned which) {
    for (unsigned i = 0; i < VEIL_SEED_BYTES; i++)
        seed[i] = (uint8_t)(which * 37u + i);
}

/* count fresh encryptions of i % 4 (2 bits) under the big or small key. */
static veil_ct_batch *encrypt_batch(const veil_secret_key *sk, int big, uint64_t count,
                                    const uint8_t mask_seed[VEIL_SEED_BYTES]) {
    const veil_params *p = veil_secret_key_params(sk);
    const uint32_t dim = big ? veil_params_big_dim(p) : p->lwe_dim;
    veil_ct_batch *b;
    check(veil_ct_batch_new(p, dim, count, &b), "batch");
    uint8_t noise_seed[VEIL_SEED_BYTES];
    seed_of(noise_seed, 99);
    veil_encryptor *enc;
    check(veil_encryptor_new(mask_seed, noise_seed, &enc), "encryptor");
    for (uint64_t i = 0; i < count; i++) {
        uint64_t *ct = b->data + i * ((size_t)dim + 1);
        uint64_t m = veil_encode((int64_t)(i % 4), 2);
        if (big)
            veil_encrypt_big(enc, sk, m, ct);
        else
            veil_encrypt_small(enc, sk, 0, m, ct);
    }
    veil_encryptor_free(enc);
    veil_secret_key_fingerprint(sk, b->key_fp);
    return b;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_corpus OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    const char *subs[] = {"secret_key", "eval_key", "ct_batch"};
    mkdir(out_dir, 0755);
    for (int i = 0; i < 3; i++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", out_dir, subs[i]);
        mkdir(d, 0755);
    }
    const char *ids[] = {"tfhers-1_1-gaussian-2m64", "tfhers-2_2-gaussian-2m64",
                         "tfhers-3_3-tuniform-2m128"};
    uint8_t seed[VEIL_SEED_BYTES], seed2[VEIL_SEED_BYTES];
    for (int i = 0; i < 3; i++) {
        const veil_params *p = veil_params_find(ids[i]);
        if (!p) check(veil_error(VEIL_ERR_PARAMS, "%s: no such set", ids[i]), "params");
        veil_secret_key *sk;
        seed_of(seed, (unsigned)i);
        check(veil_secret_key_new(p, seed, &sk), "secret key");
        char name[128];
        snprintf(name, sizeof name, "%s.sk", p->id);
        check(veil_secret_key_save(sk, path("secret_key", name)), "save secret key");

        seed_of(seed, 10u + (unsigned)i);
        veil_ct_batch *b = encrypt_batch(sk, 1, i == 0 ? 2 : 1, seed);
        for (int j = 0; j < 32; j++)
            b->model_fp[j] = (uint8_t)(j * 7 + i);
        snprintf(name, sizeof name, "%s-big.ct", p->id);
        check(veil_ct_batch_save(b, path("ct_batch", name)), "save batch");
        veil_ct_batch_free(b);

        seed_of(seed, 20u + (unsigned)i);
        b = encrypt_batch(sk, 0, 3, seed);
        snprintf(name, sizeof name, "%s-small.ct", p->id);
        check(veil_ct_batch_save(b, path("ct_batch", name)), "save batch");
        uint8_t *buf;
        size_t len;
        check(veil_ct_batch_serialize_seeded(b, seed, &buf, &len), "seeded batch");
        snprintf(name, sizeof name, "%s-small-seeded.ct", p->id);
        write_bytes(path("ct_batch", name), buf, len);
        veil_serial_buffer_free(buf, len);
        veil_ct_batch_free(b);

        if (i == 0) {
            check(veil_ct_batch_new(p, p->lwe_dim, 0, &b), "empty batch");
            check(veil_ct_batch_save(b, path("ct_batch", "empty.ct")), "save batch");
            veil_ct_batch_free(b);

            veil_eval_key *ek;
            seed_of(seed, 30);
            seed_of(seed2, 31);
            check(veil_eval_key_new(sk, seed, seed2, &ek), "eval key");
            snprintf(name, sizeof name, "%s.ek", p->id);
            check(veil_eval_key_save(ek, path("eval_key", name)), "save eval key");
            /* the header and checksum alone: short inputs that exercise the
             * header checks quickly */
            check(veil_eval_key_serialize(ek, &buf, &len), "eval key");
            uint8_t head[VEIL_SERIAL_HEADER_BYTES + VEIL_SERIAL_CHECKSUM_BYTES];
            memcpy(head, buf, VEIL_SERIAL_HEADER_BYTES);
            memcpy(head + VEIL_SERIAL_HEADER_BYTES, buf + len - VEIL_SERIAL_CHECKSUM_BYTES,
                   VEIL_SERIAL_CHECKSUM_BYTES);
            write_bytes(path("eval_key", "header-only.ek"), head, sizeof head);
            veil_serial_buffer_free(buf, len);
            veil_eval_key_free(ek);
            /* a KSK of half the rows (the row table below D) */
            const uint32_t half = veil_params_big_dim(p) / 2;
            check(veil_eval_key_new_rows(sk, &half, VEIL_KEY_BOTH, seed, seed2, &ek),
                  "eval key, half rows");
            snprintf(name, sizeof name, "%s-half-rows.ek", p->id);
            check(veil_eval_key_save(ek, path("eval_key", name)), "save eval key");
            veil_eval_key_free(ek);
        }
        veil_secret_key_free(sk);
    }
    /* a key set of two partitions (partition table, two small keys); its
     * evaluation key would be tens of MB, the header checks are the same */
    {
        const veil_params *two[2] = {veil_params_find("tfhers-3_3-tuniform-2m128"),
                                     veil_params_find("tfhers-1_1-gaussian-2m64")};
        if (!two[0] || !two[1]) check(veil_error(VEIL_ERR_PARAMS, "no such set"), "params");
        veil_secret_key *sk;
        seed_of(seed, 40);
        check(veil_secret_key_new_set(two, 2, seed, &sk), "secret key set");
        check(veil_secret_key_save(sk, path("secret_key", "two-partitions.sk")), "save key set");
        veil_secret_key_free(sk);
    }
    printf("fuzz_make_corpus: wrote the seed corpus under %s\n", out_dir);
    return 0;
}
