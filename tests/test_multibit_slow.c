// LABELS: crypto slow
/* test_multibit.c at every multi-bit set (every table entry, unsigned, and
 * signed at the first) and the noise checks at three sets with 1000 PBS
 * each (+-22% at 5 standard deviations): minutes here. */
#define MB_ALL_SETS 1
#define NOISE_S_PBS 1000
#include "test_multibit.c"
