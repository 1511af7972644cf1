/* bench_e2e_lut — one encrypted table lookup end to end, with timings:
 * key generation, encryption, keyswitch + PBS with a table, decryption.
 * `make demo` runs it before the model demo.
 *
 * usage: bench_e2e_lut [--params ID] [--count C] */
#include "veil/compile_options.h"
#include "veil/tfhe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The defaults, here once: the variables and --help read them. */
#define DEFAULT_PARAMS "tfhers-2_2-gaussian-2m64"
#define DEFAULT_COUNT 8

int main(int argc, char **argv) {
    const char *id = DEFAULT_PARAMS;
    int count = DEFAULT_COUNT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--params") && i + 1 < argc)
            id = argv[++i];
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            uint64_t u; /* at least 1: the per-lookup means divide by it */
            if (veil_arg_u64("--count", argv[++i], 1, 1000000, &u) != VEIL_OK) {
                fprintf(stderr, "%s: %s\n", argv[0], veil_error_message());
                return 2;
            }
            count = (int)u;
        } else {
            /* --help: the usage on stdout, exit 0; anything else: stderr, 2 */
            const int help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
            fprintf(help ? stdout : stderr,
                    "usage: %s [--params ID] [--count C]\n"
                    "Encrypts C values, looks each up in a table with KS-PBS, decrypts.\n\n"
                    "options:\n"
                    "  --params ID     parameter set (default %s)\n"
                    "  --count C       values to look up, 1 to 1000000 (default %d)\n",
                    argv[0], DEFAULT_PARAMS, DEFAULT_COUNT);
            return help ? 0 : 2;
        }
    }
    const veil_params *p = veil_params_find(id);
    if (!p) {
        fprintf(stderr, "%s: --params: no parameter set '%s'\n", argv[0], id);
        return 2;
    }
    const unsigned bits = p->precision;
    const int64_t entries = (int64_t)1 << bits;
    printf("parameter set %s: n=%u k=%u N=%u, %u-bit lookups, log2 p_fail %.1f, %.0f-bit "
           "security\n  source: %s\n",
           p->id, p->lwe_dim, p->glwe_dim, p->poly_size, bits, p->log2_p_fail, p->security_bits,
           p->source);
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_pbs_ctx *ctx;
    veil_lut *lut;
    double t0 = now_s();
    if (veil_secret_key_new(p, NULL, &sk) || veil_eval_key_new(sk, NULL, NULL, &ek)) {
        fprintf(stderr, "error: %s\n", veil_error_message());
        return 1;
    }
    double t_keygen = now_s() - t0;
    /* the table: x -> x^2 mod 2^bits */
    int64_t table[256];
    for (int64_t x = 0; x < entries; x++)
        table[x] = (x * x) % entries;
    if (veil_encryptor_new(NULL, NULL, &enc) || veil_pbs_ctx_new(p, &ctx) ||
        veil_lut_new(p, table, bits, 0, veil_delta(bits), &lut)) {
        fprintf(stderr, "error: %s\n", veil_error_message());
        return 1;
    }
    printf("key generation: %.3f s (bootstrapping key %.1f MiB, keyswitching key %.1f MiB)\n",
           t_keygen, veil_eval_key_bsk_words(p) * 8.0 / 1048576.0,
           veil_eval_key_ksk_words(p, veil_params_big_dim(p)) * 8.0 / 1048576.0);
    const uint32_t big = veil_params_big_dim(p);
    uint64_t *ct = malloc(8 * (big + 1)), *res = malloc(8 * (big + 1));
    double t_enc = 0, t_pbs = 0, t_dec = 0;
    int ok = 0;
    printf("table: x -> x^2 mod %" PRId64 "\n", entries);
    for (int i = 0; i < count; i++) {
        int64_t x = i % entries;
        double a = now_s();
        veil_encrypt_big(enc, sk, veil_encode(x, bits), ct);
        double b = now_s();
        veil_ks_pbs(ctx, veil_eval_key_part(ek, 0), lut, ct, res);
        double c = now_s();
        int64_t y = veil_decode(veil_phase_big(sk, res), bits, 0);
        double d = now_s();
        t_enc += b - a;
        t_pbs += c - b;
        t_dec += d - c;
        ok += y == table[x];
        printf("  x = %2" PRId64 "  ->  decrypt(PBS(encrypt(x))) = %2" PRId64
               "  (expected %2" PRId64 ")  %s\n",
               x, y, table[x], y == table[x] ? "ok" : "WRONG");
    }
    printf("per lookup: encrypt %.3f ms, keyswitch+PBS %.2f ms, decrypt %.3f ms (one core)\n",
           1e3 * t_enc / count, 1e3 * t_pbs / count, 1e3 * t_dec / count);
    printf("%d/%d correct\n", ok, count);
    free(ct);
    free(res);
    veil_lut_free(lut);
    veil_pbs_ctx_free(ctx);
    veil_encryptor_free(enc);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    return ok == count ? 0 : 1;
}
