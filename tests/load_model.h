/* tests/load_model.h — load a sample model by its path in the repository,
 * failing the test with the loader's message (tests that link veil_loaders;
 * testutil does not, so this is a header). */
#ifndef VEIL_TEST_LOAD_MODEL_H
#define VEIL_TEST_LOAD_MODEL_H

#include "testutil.h"
#include "veil/loader.h"

#include <stdio.h>

static inline veil_model *veil_test_load_model(const char *rel) {
    veil_model *m = NULL;
    veil_status st = veil_model_load(veil_test_path(rel), &m);
    if (st) fprintf(stderr, "\n  %s: %s\n", rel, veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    return m;
}

#endif
