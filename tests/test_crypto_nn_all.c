// LABELS: crypto slow
/* test_crypto_nn.c on every neural-network set (N = 32768: every 8th entry). */
#define VEIL_TEST_NN_ALL 1
#define VEIL_TEST_EXPECT_SETS                                                                      \
    195 /* p = 0..8 at 15 norms; p = 5, 6 at 15 norms for 2048 and 4096 rows */
#include "test_crypto_nn.c"
