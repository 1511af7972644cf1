/* client.c — keygen, encryption and decryption bound to a compiled model
 * (see veil/client.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "veil/atomic_file.h"
#include "veil/client.h"
#include "veil/program_crypt.h"
#include "veil/loader.h"

veil_status veil_client_open(const char *model_path, const veil_compile_options *options,
                             veil_client **out) {
    if (!model_path || !out) return veil_error(VEIL_ERR_ARG, "veil_client_open: model path needed");
    if (sodium_init() < 0) return veil_error(VEIL_ERR_INTERNAL, "libsodium failed to initialise");
    veil_client *c = calloc(1, sizeof *c);
    if (!c) return veil_error(VEIL_ERR_NOMEM, "out of memory");
    veil_compile_options o;
    if (options)
        o = *options;
    else
        veil_compile_options_default(&o);
    o.simulate_only = 0;
    veil_status st = veil_model_load(model_path, &c->model);
    if (st) goto fail; /* the loader names the path */
    if ((st = veil_program_compile(c->model, &o, &c->prog))) {
        veil_error_prefix("%s: ", model_path);
        goto fail;
    }
    if (!c->prog->params) {
        st = veil_error(VEIL_ERR_PARAMS, "%s: no parameter set fits the program (%s)", model_path,
                        c->prog->params_note ? c->prog->params_note : "simulate only");
        goto fail;
    }
    veil_program_fingerprint(c->prog, c->fp);
    veil_program_output_fingerprint(c->fp, c->fp_out);
    veil_hex(c->fp, sizeof c->fp, c->fp_hex);
    *out = c;
    return VEIL_OK;
fail:
    veil_client_free(c);
    return st;
}

void veil_client_free(veil_client *c) {
    if (!c) return;
    veil_program_free(c->prog);
    veil_model_free(c->model);
    free(c);
}

const char *veil_keydir_path(const char *dir, const char *file, char *buf, size_t cap) {
    /* `--out keys/`, as README writes it: keys/secret.key, not keys//secret.key */
    const size_t n = strlen(dir);
    snprintf(buf, cap, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", file);
    return buf;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

veil_status veil_client_keygen(const veil_client *c, const char *dir, int force,
                               veil_keygen_info *info) {
    if (!c || !dir) return veil_error(VEIL_ERR_ARG, "keygen: model and directory needed");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return veil_error(VEIL_ERR_IO, "keygen: mkdir %s: %s", dir, strerror(errno));
    char skp[4096], ekp[4096];
    veil_keydir_path(dir, "secret.key", skp, sizeof skp);
    veil_keydir_path(dir, "eval.key", ekp, sizeof ekp);
    if (!force && access(skp, F_OK) == 0)
        return veil_error(VEIL_ERR_IO,
                          "keygen: %s exists: refusing to overwrite a secret key (ciphertexts "
                          "under it could no longer be decrypted); use another --out or --force",
                          skp);
    /* A target that cannot be replaced (read-only, a directory in the way) is
     * refused before the keys are made, not halfway through the pair. */
    VEIL_TRY(veil_atomic_file_check(skp));
    VEIL_TRY(veil_atomic_file_check(ekp));
    double t0 = now_s();
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_status st;
    if ((st = veil_program_keygen(c->prog, NULL, &sk)) ||
        (st = veil_program_eval_key_new(c->prog, sk, VEIL_KEY_STANDARD, NULL, NULL, &ek)))
        goto out;
    /* The pair is replaced together or not at all (--force over an earlier
     * pair: a new secret key beside the old evaluation key would be a pair
     * no server can use and no command can tell apart): the evaluation key,
     * by far the larger and the likelier to meet a full disk, is written
     * whole beside its place first, then the secret key replaces its own,
     * then the evaluation key is renamed over the old one. */
    char ekn[4200];
    snprintf(ekn, sizeof ekn, "%s.new", ekp);
    if ((st = veil_eval_key_save(ek, ekn))) goto out;
    if ((st = veil_secret_key_save(sk, skp))) {
        unlink(ekn);
        goto out;
    }
    if ((st = veil_atomic_file_rename(ekn, ekp))) {
        veil_error_prefix("keygen: %s holds the new secret key but %s the old evaluation key "
                          "(the new one is %s): ",
                          skp, ekp, ekn);
        goto out;
    }
    /* A new secret key invalidates every key id the servers gave for the old
     * evaluation key. */
    char svp[4096];
    veil_keydir_path(dir, "servers", svp, sizeof svp);
    if (unlink(svp) != 0 && errno != ENOENT) {
        st = veil_error(VEIL_ERR_IO, "keygen: cannot remove %s: %s", svp, strerror(errno));
        goto out;
    }
    if (info) {
        struct stat s1, s2;
        memset(info, 0, sizeof *info);
        if (stat(skp, &s1) == 0) info->secret_key_bytes = (size_t)s1.st_size;
        if (stat(ekp, &s2) == 0) info->eval_key_bytes = (size_t)s2.st_size;
        info->eval_key_raw_bytes = veil_program_eval_key_raw_bytes(c->prog);
        info->seconds = now_s() - t0;
    }
out:
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    return st;
}

veil_status veil_client_load_secret_key(const veil_client *c, const char *dir,
                                        veil_secret_key **out) {
    char skp[4096];
    veil_keydir_path(dir, "secret.key", skp, sizeof skp);
    /* keygen writes it 0600; a copy or an archive may not have kept that. */
    struct stat sb;
    if (stat(skp, &sb) == 0 && (sb.st_mode & 077))
        fprintf(stderr,
                "veil: warning: %s is readable or writable by others (mode %04o): it holds the "
                "secret key; chmod 600 it\n",
                skp, (unsigned)(sb.st_mode & 07777));
    veil_secret_key *sk;
    veil_status st = veil_secret_key_load(skp, &sk);
    if (st) return st; /* its messages name the file */
    if ((st = veil_program_check_secret_key(c->prog, sk)) != VEIL_OK) {
        veil_error_prefix("%s: model %s: ", skp, c->model->name);
        veil_secret_key_free(sk);
        return st;
    }
    *out = sk;
    return VEIL_OK;
}

veil_status veil_client_check_eval_key(const veil_secret_key *sk, const char *dir) {
    if (!sk || !dir) return veil_error(VEIL_ERR_ARG, "veil_client_check_eval_key: NULL argument");
    char ekp[4096];
    veil_keydir_path(dir, "eval.key", ekp, sizeof ekp);
    uint8_t h[VEIL_SERIAL_HEADER_BYTES];
    FILE *f = fopen(ekp, "rb");
    if (!f) return veil_error(VEIL_ERR_IO, "%s: cannot open: %s", ekp, strerror(errno));
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got != sizeof h || memcmp(h, "VEILEK01", 8) != 0)
        return veil_error(VEIL_ERR_FORMAT, "%s: not an evaluation key file", ekp);
    uint8_t fp[VEIL_KEY_FP_BYTES];
    veil_secret_key_fingerprint(sk, fp);
    if (memcmp(h + 64, fp, VEIL_KEY_FP_BYTES) != 0) {
        char a[2 * VEIL_KEY_FP_BYTES + 1], b[2 * VEIL_KEY_FP_BYTES + 1];
        veil_hex(h + 64, VEIL_KEY_FP_BYTES, a);
        veil_hex(fp, VEIL_KEY_FP_BYTES, b);
        return veil_error(
            VEIL_ERR_PARAMS,
            "%s was not made from the secret key beside it (key fingerprint %.16s..., "
            "the secret key's %.16s...): run `veil keygen` again",
            ekp, a, b);
    }
    return VEIL_OK;
}

veil_status veil_client_encrypt(const veil_client *c, const veil_secret_key *sk,
                                const int64_t *const *inputs, size_t samples, uint8_t **buf,
                                size_t *len) {
    if (!c || !sk || !inputs || !buf || !len || samples == 0)
        return veil_error(VEIL_ERR_ARG, "encrypt: bad argument (no samples?)");
    if (veil_program_check_secret_key(c->prog, sk) != VEIL_OK) {
        veil_error_prefix("encrypt: ");
        return VEIL_ERR_PARAMS;
    }
    const veil_program *p = c->prog;
    const size_t in_cts = veil_program_sample_in_cts(p), lwe = veil_program_ct_words(p);
    veil_ct_batch *b = NULL;
    veil_encryptor *enc = NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    veil_seed_random(seed); /* fresh per batch: never reuse a mask seed */
    veil_status st = veil_ct_batch_new(p->params, veil_params_big_dim(p->params),
                                       (uint64_t)samples * in_cts, &b);
    if (st || (st = veil_encryptor_new(seed, NULL, &enc))) goto out;
    b->mask_width = p->input_width; /* the inputs' masks past it are 0 */
    veil_secret_key_fingerprint(sk, b->key_fp);
    memcpy(b->model_fp, c->fp, VEIL_PROGRAM_FP_BYTES);
    /* Sample-major, in order: the mask stream is drawn in exactly the order
     * the seeded format regenerates it. */
    for (size_t s = 0; s < samples; s++) {
        size_t off = 0;
        for (uint32_t i = 0; i < p->n_inputs; i++) {
            size_t sz = veil_program_input_size(p, i);
            if ((st = veil_program_encrypt(p, enc, sk, i, inputs[i] + s * sz, 1,
                                           b->data + (s * in_cts + off) * lwe))) {
                veil_error_prefix("sample %zu: ", s);
                goto out;
            }
            off += sz;
        }
    }
    st = veil_ct_batch_serialize_seeded(b, seed, buf, len);
out:
    sodium_memzero(seed, sizeof seed);
    veil_encryptor_free(enc);
    veil_ct_batch_free(b);
    return st;
}

veil_status veil_client_check_result(const veil_client *c, const veil_secret_key *sk,
                                     const veil_ct_batch *b, size_t *samples) {
    const veil_program *p = c->prog;
    if (b->params != p->params)
        return veil_error(VEIL_ERR_PARAMS,
                          "ciphertexts are for parameter set %s, model %s compiles to %s",
                          b->params->id, c->model->name, p->params->id);
    if (memcmp(b->model_fp, c->fp, VEIL_PROGRAM_FP_BYTES) == 0)
        return veil_error(VEIL_ERR_ARG,
                          "these are encrypted inputs of %s, not results: send them to the "
                          "server first",
                          c->model->name);
    if (memcmp(b->model_fp, c->fp_out, VEIL_PROGRAM_FP_BYTES) != 0)
        return veil_error(VEIL_ERR_PARAMS,
                          "ciphertexts are for another model or other compile options (model "
                          "fingerprint differs from %s's)",
                          c->model->name);
    uint8_t fp[VEIL_KEY_FP_BYTES];
    veil_secret_key_fingerprint(sk, fp);
    if (memcmp(b->key_fp, fp, sizeof fp) != 0)
        return veil_error(VEIL_ERR_PARAMS,
                          "ciphertexts are encrypted under another secret key (key fingerprint "
                          "differs)");
    const size_t out_cts = veil_program_sample_out_cts(p);
    if (b->dim != veil_params_big_dim(p->params) || b->count == 0 || b->count % out_cts)
        return veil_error(VEIL_ERR_FORMAT,
                          "ciphertexts: %llu of dimension %u are not whole result samples (%zu "
                          "ciphertexts of dimension %u each)",
                          (unsigned long long)b->count, b->dim, out_cts,
                          veil_params_big_dim(p->params));
    *samples = (size_t)(b->count / out_cts);
    return VEIL_OK;
}

void veil_client_outputs_free(const veil_client *c, int64_t **outputs) {
    if (!outputs) return;
    for (uint32_t o = 0; o < c->prog->n_outputs; o++)
        free(outputs[o]);
    free(outputs);
}

veil_status veil_client_decrypt(const veil_client *c, const veil_secret_key *sk,
                                const veil_ct_batch *b, size_t *samples, int64_t ***outputs) {
    size_t n;
    VEIL_TRY(veil_client_check_result(c, sk, b, &n));
    const veil_program *p = c->prog;
    const size_t out_cts = veil_program_sample_out_cts(p), lwe = veil_program_ct_words(p);
    int64_t **outs = calloc(p->n_outputs, sizeof *outs);
    if (!outs) return veil_error(VEIL_ERR_NOMEM, "out of memory");
    veil_status st = VEIL_OK;
    for (uint32_t o = 0; o < p->n_outputs && !st; o++)
        if (!(outs[o] = malloc(n * veil_program_output_size(p, o) * sizeof(int64_t) + 1)))
            st = veil_error(VEIL_ERR_NOMEM, "out of memory");
    for (size_t s = 0; s < n && !st; s++) {
        size_t off = 0;
        for (uint32_t o = 0; o < p->n_outputs && !st; o++) {
            size_t sz = veil_program_output_size(p, o);
            st = veil_program_decrypt(p, sk, o, b->data + (s * out_cts + off) * lwe, 1,
                                      outs[o] + s * sz);
            off += sz;
        }
    }
    if (st) {
        veil_client_outputs_free(c, outs);
        return st;
    }
    *samples = n;
    *outputs = outs;
    return VEIL_OK;
}
