// LABELS: model slow
// LINKS: veil_loaders
/* test_loader_corrupt on every byte of tiny.h5 (two flips each, 25 minutes
 * on one core of a Zen 5 in a release build: each load starts veil-h5check). */
#define VEIL_CORRUPT_DEFAULT_STRIDE 1
#include "test_loader_corrupt.c"
