// LABELS: crypto
// COST: 65
/* test_crypto.c's checks on one N = 8192 set (3_3, 6-bit lookups) in the
 * default run: every table entry, signed and unsigned. The other N = 8192
 * sets run under `slow` (test_crypto_large.c). */
#define VEIL_TEST_ONLY_ID "tfhers-3_3-gaussian-2m64"
#include "test_crypto.c"
