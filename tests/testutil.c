#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "testutil.h"
#include "veil/fft.h"
#include "veil/serialize.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "veil/program.h"

static uint64_t seed_value;
static int seed_ready;
static uint64_t rand_state;

uint64_t veil_test_seed(void) {
    if (!seed_ready) {
        const char *env = getenv("VEIL_TEST_SEED");
        if (env && *env) {
            seed_value = strtoull(env, NULL, 0);
        } else {
            if (sodium_init() < 0) abort();
            randombytes_buf(&seed_value, sizeof seed_value);
        }
        seed_ready = 1;
        rand_state = seed_value;
        printf("test seed: VEIL_TEST_SEED=0x%016" PRIx64 "\n", seed_value);
    }
    return seed_value;
}

int veil_test_selected(const char *name) {
    const char *only = getenv("VEIL_TEST_ONLY");
    if (!only || !*only || strstr(name, only)) return 1;
    printf("VEIL_TEST_ONLY=%s: %s left out\n", only, name);
    return 0;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void veil_test_seed_bytes(unsigned which, uint8_t out[32]) {
    uint64_t s = veil_test_seed() ^ (0x1234567ULL * (which + 1));
    for (int i = 0; i < 4; i++) {
        uint64_t v = splitmix(&s);
        memcpy(out + 8 * i, &v, 8);
    }
}

uint64_t veil_test_rand(void) {
    veil_test_seed();
    return splitmix(&rand_state);
}

const char *veil_test_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("VEIL_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

int veil_test_build_path(const char *rel, char *out, size_t cap) {
    const char *b = getenv("VEIL_BUILD_DIR");
    if (!b) return -1;
    int n = snprintf(out, cap, "%s/%s", b, rel);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int veil_test_mkdtemp(const char *name, char *out, size_t cap) {
    int n = snprintf(out, cap, "/tmp/veil-test-%s-XXXXXX", name);
    if (n <= 0 || (size_t)n >= cap) return -1;
    return mkdtemp(out) ? 0 : -1;
}

int veil_test_age_file(const char *path, long age_s) {
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= age_s;
    ts[1] = ts[0];
    return utimensat(AT_FDCWD, path, ts, 0);
}

int veil_test_plant_file(const char *dir, const char *name, long age_s) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    const int bad = fputs("partial", f) < 0;
    if (fclose(f) != 0 || bad) return -1;
    return veil_test_age_file(p, age_s);
}

void veil_test_rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) { /* a link to a directory is unlinked, not followed */
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char p[1024];
                int n = snprintf(p, sizeof p, "%s/%s", path, e->d_name);
                if (n > 0 && (size_t)n < sizeof p) veil_test_rm_rf(p);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

char *veil_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) &&
        fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = 0;
        if (len) *len = (size_t)n;
    } else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

int veil_test_write_npy(const char *path, int version, const char *descr, const char *shape,
                        const char *fortran, const void *data, size_t bytes) {
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                      descr, fortran, shape);
    if (dl < 0 || (size_t)dl >= sizeof dict) return -1;
    const size_t pre = version == 1 ? 10 : 12;
    size_t hl = (size_t)dl + 1;
    while ((pre + hl) % 64)
        hl++;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char head[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)version, 0};
    head[8] = (unsigned char)(hl & 0xff);
    head[9] = (unsigned char)(hl >> 8);
    head[10] = head[11] = 0;
    int ok = fwrite(head, 1, pre, f) == pre && fwrite(dict, 1, (size_t)dl, f) == (size_t)dl;
    for (size_t i = (size_t)dl; ok && i + 1 < hl; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, 1, bytes, f) == bytes;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int veil_test_run(void) {
    veil_test_seed();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (failed) printf("test seed was VEIL_TEST_SEED=0x%016" PRIx64 "\n", seed_value);
    return (failed || run == 0) ? 1 : 0;
}

size_t veil_test_sk_bits(const veil_secret_key *sk, uint32_t part, uint64_t *out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (veil_secret_key_serialize(sk, &buf, &len) != VEIL_OK) return 0;
    const uint32_t np = veil_secret_key_n_partitions(sk);
    size_t o = VEIL_SERIAL_HEADER_BYTES + (size_t)VEIL_SERIAL_PARAMS_ID_BYTES * np, count = 0;
    for (uint32_t i = 0; i <= np; i++) {
        const veil_params *p = veil_secret_key_partition(sk, i < np ? i : 0);
        size_t bits = i < np ? p->lwe_dim : veil_params_big_dim(p);
        if (i == part || (i == np && part == VEIL_TEST_MASTER)) {
            for (size_t t = 0; t < bits; t++)
                out[t] = (buf[o + t / 8] >> (t % 8)) & 1;
            count = bits;
            break;
        }
        o += (bits + 7) / 8;
    }
    veil_serial_buffer_free(buf, len);
    return count;
}

int veil_test_keys_make(const veil_params *p, unsigned seed_base, veil_test_keys *f) {
    uint8_t s[5][32];
    for (unsigned i = 0; i < 5; i++)
        veil_test_seed_bytes(seed_base + i, s[i]);
    memset(f, 0, sizeof *f);
    f->p = p;
    if (veil_secret_key_new(p, s[0], &f->sk) || veil_eval_key_new(f->sk, s[1], s[2], &f->ek) ||
        veil_encryptor_new(s[3], s[4], &f->enc) || veil_pbs_ctx_new(p, &f->ctx)) {
        printf("keys for %s: %s\n", p->id, veil_error_message());
        return 0;
    }
    return 1;
}

void veil_test_keys_free(veil_test_keys *f) {
    veil_pbs_ctx_free(f->ctx);
    veil_encryptor_free(f->enc);
    veil_eval_key_free(f->ek);
    veil_secret_key_free(f->sk);
    memset(f, 0, sizeof *f);
}

double *veil_test_bsk_natural(const veil_params *p, const double *bsk_fourier) {
    const size_t words = veil_eval_key_bsk_words(p), N = p->poly_size;
    double *out = malloc(sizeof(double) * words);
    if (!out) return NULL;
    /* each GGSW out of the CPU's interleaved layout (veil_fft_ggsw_get) */
    const uint32_t per = (p->glwe_dim + 1) * p->pbs_level * (p->glwe_dim + 1);
    double *one = veil_fft_alloc(sizeof(double) * N);
    if (!one) {
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < words; i += N) {
        const size_t g = i / (N * per), q = (i / N) % per;
        veil_fft_ggsw_get(p->poly_size, per, (uint32_t)q, bsk_fourier + g * per * N, one);
        veil_fft_to_natural(p->poly_size, one, out + i);
    }
    veil_fft_dealloc(one);
    return out;
}

int veil_test_fft_path_here(veil_fft_path p) {
    static unsigned said; /* one bit per path */
    if (veil_fft_path_available(p)) return 1;
    const unsigned bit = 1u << ((unsigned)p & 31);
    if (!(said & bit))
        printf("\n  SKIPPED: FFT path %s: %s\n", veil_fft_path_name(p),
               p == VEIL_FFT_FFTW ? "built with VEIL_FFTW=OFF" : "this CPU lacks its instructions");
    said |= bit;
    return 0;
}

void veil_test_variance_band(double n, double kurt, double z, double *lo, double *hi) {
    const double nu = 2.0 * n / (kurt > 1.0 ? kurt - 1.0 : 2.0), c = 2.0 / (9.0 * nu);
    const double a = 1.0 - c - z * sqrt(c), b = 1.0 - c + z * sqrt(c);
    *lo = a > 0 ? a * a * a : 0.0;
    *hi = b * b * b;
}

int veil_test_help_option(const char *line, char opt[64], char syntax[128]) {
    memset(opt, 0, 64);
    memset(syntax, 0, 128);
    if (strncmp(line, "  --", 4)) return 0;
    const size_t on = strcspn(line + 2, " ");
    if (on >= 64) return 0;
    memcpy(opt, line + 2, on);
    const char *after = line + 2 + on;
    if (after[0] == ' ' && after[1] && after[1] != ' ') {
        const size_t sn = strcspn(after + 1, " ");
        if (sn < 128) memcpy(syntax, after + 1, sn);
    }
    return 1;
}

void veil_test_help_unlisted(const char *help, const char (*listed)[64], size_t n_listed,
                             const char *label) {
    for (const char *m = strstr(help, "--"); m; m = strstr(m + 2, "--")) {
        if (m[2] < 'a' || m[2] > 'z' ||
            (m > help && (isalnum((unsigned char)m[-1]) || m[-1] == '-')))
            continue;
        char opt[64] = {0};
        const size_t on = strspn(m, "-abcdefghijklmnopqrstuvwxyz0123456789");
        if (on >= sizeof opt) continue;
        memcpy(opt, m, on);
        if (!strcmp(opt, "--help")) continue;
        int found = 0;
        for (size_t k = 0; k < n_listed && !found; k++)
            found = !strcmp(listed[k], opt);
        if (!found) {
            printf("\n  %s --help mentions %s but no line starts with it (not tried)", label, opt);
            CU_FAIL("an option mentioned in --help is not on a line of its own");
        }
    }
}
