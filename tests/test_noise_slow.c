// LABELS: crypto slow
/* test_noise.c with 5000 PBS per parameter set (15000 KS-PBS, minutes here):
 * the PBS output variance inside +-10% at 5 standard deviations, like the
 * fresh, keyswitch and modulus-switch checks of the default run. */
#define NOISE_S_PBS 5000
#include "test_noise.c"
