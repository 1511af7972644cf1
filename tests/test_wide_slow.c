// LABELS: slow model
// LINKS: veil_host
/* test_wide.c's clear-reference check over every input value at 14, 15 and
 * 16 bits (minutes: 2^16 samples through deep decompositions). */
#define WIDE_MIN_BITS 14
#define WIDE_MAX_BITS 16
#define WIDE_ENCRYPTED 0
#include "test_wide.c"
