// LABELS: crypto slow
/* test_wop.c and every WoP set at the width it was chosen for, 9 to 16
 * bits, unsigned and signed, on random tables (about 10 minutes on the
 * 2-core Zen 1: a keygen and ten lookups of 2 to 6 s a set). */
#define WOP_ALL_SETS 1
#include "test_wop.c"
