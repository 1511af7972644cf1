/* fuzz_triton_config — libFuzzer target for the Triton backend's reader of
 * the model configuration JSON (config.c: a scanner over text that is not
 * NUL-terminated). vt_config_parse must refuse or accept without reading
 * past the bytes it is given, and every refusal must say what. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a copy of exactly size bytes: AddressSanitizer sees any read past it */
    char *json = malloc(size ? size : 1);
    if (!json) return 0;
    memcpy(json, data, size);
    vt_config c;
    if (vt_config_parse(json, size, &c) != VEIL_OK && !*veil_error_message()) abort();
    free(json);
    return 0;
}
