// LABELS: crypto slow
/* test_multibit.c at every published multi-bit set and one derived set per
 * grouping (nn-mb<g>-p4-norm2e5: every table entry, unsigned, and signed at
 * the first published set and the derived ones) and the noise checks at four
 * sets with 1000 PBS each (+-22% at 5 standard deviations): minutes here. */
#define MB_ALL_SETS 1
#define NOISE_S_PBS 1000
#include "test_multibit.c"
