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

#define VEIL_TEST_SKIP 77

/* One seeded RNG per test program: the seed comes from VEIL_TEST_SEED or the
 * OS, and is printed so a failure can be replayed. */
uint64_t veil_test_seed(void);
/* Derives a 32-byte seed for stream `which` from the test seed. */
void veil_test_seed_bytes(unsigned which, uint8_t out[32]);
/* Deterministic 64-bit pseudo-random numbers from the test seed (splitmix64). */
uint64_t veil_test_rand(void);

/* Path under the source tree (VEIL_SOURCE_DIR, set by CTest). Static buffer. */
const char *veil_test_path(const char *rel);

int veil_test_run(void);

/* The runtime on this branch runs one evaluation key (one parameter set);
 * the key sets that run a program of several partitions come with branch
 * keyset. A test that runs program p encrypted gets here the program to run:
 * NULL when p has one partition (run p), else the same model recompiled with
 * p's options and --partitions 1 (one set), which it must free; it prints
 * that it did. Remove once key sets land. */
struct veil_model;
struct veil_program;
int veil_test_single_set(const struct veil_model *m, const struct veil_program *p,
                         struct veil_program **one);

#define VEIL_ADD_TEST(suite, fn)                                                                   \
    do {                                                                                           \
        if (!CU_add_test(suite, #fn, fn)) {                                                        \
            CU_cleanup_registry();                                                                 \
            return CU_get_error();                                                                 \
        }                                                                                          \
    } while (0)

#endif
