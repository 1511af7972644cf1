// LABELS: crypto slow
// LINKS: veil_host
/* test_noise.c with 5000 PBS per parameter set (15000 KS-PBS, minutes here):
 * the PBS output variance inside +-10% at 5 standard deviations, like the
 * fresh, keyswitch and modulus-switch checks of the default run; and 20,000
 * PBS on the digit-moment set (+-7%: Concrete's digit model, 12% above, is
 * then told apart from the exact one). */
#define NOISE_S_PBS 5000
#define NOISE_S_DIGITS 20000
#include "test_noise.c"
