// LABELS: crypto slow
/* test_crypto.c's checks on the parameter sets with 2048 < N <= 8192 (the
 * 3_3 sets): every table entry, signed and unsigned, on every such set. A
 * KS-PBS at N = 8192 costs about 0.1 s here, so this runs under `slow`;
 * test_crypto_n8192.c covers one of these sets in the default run. */
#define VEIL_TEST_MIN_N 2048
#define VEIL_TEST_MAX_N 8192
#define VEIL_TEST_EXPECT_SETS 4
#include "test_crypto.c"
