// LABELS: crypto slow
/* test_crypto_nn.c on every neural-network set with N <= 16384. */
#define VEIL_TEST_NN_ALL 1
#include "test_crypto_nn.c"
