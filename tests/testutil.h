/* tests/testutil.h — shared helpers for the CUnit suites.
 *
 * veil_test_run() runs the registered suites and returns the exit code:
 * 0 when all passed, 1 on any failure. A test program that cannot run here
 * (no GPU, for example) prints why and returns VEIL_TEST_SKIP (77), which
 * CTest reports as skipped. */
#ifndef VEIL_TESTUTIL_H
#define VEIL_TESTUTIL_H

#include <CUnit/Basic.h>
#include <stdint.h>

#include "veil/fft.h"
#include "veil/tfhe.h"

#define VEIL_TEST_SKIP 77

/* VEIL_TEST_SANITIZED: 1 in a build under AddressSanitizer or UBSan (make
 * sanitize, CMake's VEIL_SANITIZE), where a PBS costs several times more.
 * What counts there is that every code path runs, not sample sizes: a test
 * may run fewer samples in such a build (each says which and how many), the
 * full count staying in the plain build (make test) or in its `slow` twin.
 * The one definition of "sanitizer build" for the tests. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define VEIL_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define VEIL_TEST_SANITIZED 1
#endif
#endif
#ifndef VEIL_TEST_SANITIZED
#define VEIL_TEST_SANITIZED 0
#endif

/* One seeded RNG per test program: the seed comes from VEIL_TEST_SEED or the
 * OS, and is printed so a failure can be replayed. */
uint64_t veil_test_seed(void);
/* Derives a 32-byte seed for stream `which` from the test seed. */
void veil_test_seed_bytes(unsigned which, uint8_t out[32]);
/* Deterministic 64-bit pseudo-random numbers from the test seed (splitmix64). */
uint64_t veil_test_rand(void);

/* Path under the source tree (VEIL_SOURCE_DIR, set by CTest). Static buffer. */
const char *veil_test_path(const char *rel);

/* Path under the build tree (VEIL_BUILD_DIR, set by CTest) into out, e.g.
 * "host/veil"; -1 when VEIL_BUILD_DIR is not set or the path does not fit. */
int veil_test_build_path(const char *rel, char *out, size_t cap);

/* A fresh directory of the test's own, mode 0700, named
 * /tmp/veil-test-<name>-XXXXXX by mkdtemp (no name that a stale run, another
 * run with the same pid or another user can have taken first) into out:
 * 0, or -1 when it does not fit or mkdtemp fails (errno says why). The
 * one way the tests make their scratch directories. */
int veil_test_mkdtemp(const char *name, char *out, size_t cap);

/* Removes path: a directory with everything under it (symbolic links
 * removed, never followed), or a file. Errors are ignored: test cleanup. */
void veil_test_rm_rf(const char *path);
/* Sets path's access and modification times age_s seconds back (a file
 * "last used", or left by a crash, that long ago). 0 on success. */
int veil_test_age_file(const char *path, long age_s);
/* Creates dir/name holding a few bytes ("partial": a stand-in for a
 * temporary or quarantined file), aged age_s seconds. 0 on success. */
int veil_test_plant_file(const char *dir, const char *name, long age_s);

/* The whole file (malloc, NUL-terminated past *len), NULL if it cannot be
 * read whole. len may be NULL. */
char *veil_test_read_file(const char *path, size_t *len);

/* Writes a .npy file: the magic, `version` (1: a 2-byte header length,
 * else 4 bytes: versions 2 and 3), a header dictionary of descr,
 * fortran_order (the text "False" or "True") and shape (the text, e.g.
 * "(2, 3)" or "()") padded to 64 bytes, then `bytes` of data. 0 on
 * success, -1 when the file cannot be written. */
int veil_test_write_npy(const char *path, int version, const char *descr, const char *shape,
                        const char *fortran, const void *data, size_t bytes);

int veil_test_run(void);

/* |a - b| on the torus mod 2^64 (the shorter way round): how far two
 * phases are apart, as the kernel tests bound GPU against CPU outputs. */
static inline uint64_t veil_test_phase_dist(uint64_t a, uint64_t b) {
    const int64_t d = (int64_t)(a - b);
    return d < 0 ? 0 - (uint64_t)d : (uint64_t)d;
}

/* The acceptance band of a sample variance over its model: measured /
 * model of n independent errors of kurtosis kurt (3 for a Gaussian; pass
 * at least 3) lies in [*lo, *hi] except with probability about that of a
 * normal beyond z on either side. The ratio is taken as chi-square / nu
 * with nu = 2 n / (kurt - 1) degrees of freedom (the same variance), whose
 * quantiles come from the Wilson-Hilferty cube: unlike 1 +- z sqrt(2 / n)
 * it keeps the right tail's skew, which at n = 200 and z = 4.5 put the
 * false alarm at 3e-5 a check instead of 3e-6 (the statistical audit of
 * 2026-12-04). The one rule of the noise tests. */
void veil_test_variance_band(double n, double kurt, double z, double *lo, double *hi);

/* 1 when FFT path p runs here; otherwise prints, once per path and
 * program, "SKIPPED: FFT path P: why" (the line make test's summary lists)
 * and returns 0. Tests that cover every path skip the ones this CPU or
 * build lacks this way: CI on an AVX-512 machine runs them all. */
int veil_test_fft_path_here(veil_fft_path p);

/* The secret key is opaque (engine/src/internal.h); tests that need its bits
 * (to check a phase by hand) read them from its serialized form
 * (veil/serialize.h): part < n_partitions: that partition's small key
 * (n words, 0/1); VEIL_TEST_MASTER: the master key (k*N of partition 0).
 * Returns the word count, 0 on error. out: caller buffer large enough. */
#define VEIL_TEST_MASTER 0xffffffffu
size_t veil_test_sk_bits(const veil_secret_key *sk, uint32_t part, uint64_t *out);

/* The keys of one parameter set for a crypto test: secret key, evaluation
 * key, encryptor and PBS context, from seed streams seed_base .. seed_base+4.
 * veil_test_keys_make returns 1, or prints why and returns 0 (the struct is
 * then safe to free). */
typedef struct veil_test_keys {
    const veil_params *p;
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_encryptor *enc;
    veil_pbs_ctx *ctx;
} veil_test_keys;
int veil_test_keys_make(const veil_params *p, unsigned seed_base, veil_test_keys *f);
void veil_test_keys_free(veil_test_keys *f);

/* The CPU's Fourier bootstrapping key (veil/fft.h's split, permuted
 * spectrum) in the interleaved natural order of the CUDA kernels, for tests
 * that hand it to them (the emulation, the device comparison): a malloc'd
 * copy of veil_eval_key_bsk_words(p) doubles, NULL when out of memory. */
double *veil_test_bsk_natural(const veil_params *p, const double *bsk_fourier);

/* 1 unless VEIL_TEST_ONLY is set and does not occur in the test's name (a
 * developer's filter to run one test of a file: VEIL_TEST_ONLY=wrapped; the
 * run then says which it left out). */
int veil_test_selected(const char *name);

#define VEIL_ADD_TEST(suite, fn)                                                                   \
    do {                                                                                           \
        if (veil_test_selected(#fn) && !CU_add_test(suite, #fn, fn)) {                             \
            CU_cleanup_registry();                                                                 \
            return CU_get_error();                                                                 \
        }                                                                                          \
    } while (0)

/* --help parsing for the option tests (test_cli_options, test_bench_options).
 * A line "  --opt SYNTAX  text": 1, opt and its syntax ("" for a flag);
 * else 0. */
int veil_test_help_option(const char *line, char opt[64], char syntax[128]);
/* CU_FAIL, naming label, for each --option the help text mentions that no
 * option line (listed[0..n)) starts with: an option nobody tries. */
void veil_test_help_unlisted(const char *help, const char (*listed)[64], size_t n_listed,
                             const char *label);

#endif
