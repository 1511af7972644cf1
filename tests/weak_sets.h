/* tests/weak_sets.h — the TEST-ONLY weak parameter sets (tests/params_weak.inc,
 * made by scripts/params/derive.py --weak), one table for every test that
 * uses them (test_pfail*, test_gadget). No engine table and no compiler
 * option reaches them. */
#ifndef VEIL_TEST_WEAK_SETS_H
#define VEIL_TEST_WEAK_SETS_H

#include "veil/params.h"

#include <string.h>

/* classic sets: `grouping` (veil/params.h) left out, 0 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const veil_params WEAK_SETS[] = {
#include "params_weak.inc"
};
#pragma GCC diagnostic pop
#define WEAK_SET_COUNT (sizeof WEAK_SETS / sizeof *WEAK_SETS)

static inline const veil_params *weak_set(const char *id) {
    for (size_t i = 0; i < WEAK_SET_COUNT; i++)
        if (strcmp(WEAK_SETS[i].id, id) == 0) return &WEAK_SETS[i];
    return NULL;
}

#endif
