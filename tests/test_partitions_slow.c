// LABELS: model slow
// LINKS: veil_loaders
/* test_partitions.c's noise, contract and exhaustive checks on every sample
 * model (the default, --rounding-bits 6 and 4), and the exhaustive check on
 * mlp_digits and target_bc: minutes under ASan, so under `slow`. */
#define SWEEP_ALL 1
#include "test_partitions.c"
