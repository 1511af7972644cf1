/* libFuzzer target: veil_eval_key_deserialize on arbitrary bytes. A refused
 * input must leave the output alone and say why; an accepted one must be
 * prepared for PBS in both domains (VEIL_KEY_BOTH: a classic partition's Fourier key; a multi-bit
 * one keeps only its standard key, which its PBS reads) and re-serialize to the same bytes (up to
 * the checksum, which fuzzing builds do not enforce: see fuzz/CMakeLists.txt); a version 2 key
 * (every KSK of D rows, no row table) is written back as version 3, a row table longer. Run with
 * -max_len above the seed key's size (scripts/fuzz.sh does), or libFuzzer truncates it. */
#include <string.h>

#include "veil/serialize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    veil_error_clear();
    veil_eval_key *ek = NULL;
    if (veil_eval_key_deserialize(data, size, VEIL_KEY_BOTH, &ek) != VEIL_OK) {
        VEIL_ASSERT(ek == NULL);
        VEIL_ASSERT(veil_error_message()[0] != 0);
        return 0;
    }
    VEIL_ASSERT(ek->n_parts >= 1);
    for (uint32_t x = 0; x < ek->n_parts; x++)
        VEIL_ASSERT(ek->parts[x].params->grouping >= 2 ? ek->parts[x].bsk != NULL
                                                       : ek->parts[x].bsk_fourier != NULL);
    uint8_t *buf = NULL;
    size_t len = 0;
    VEIL_ASSERT(veil_eval_key_serialize(ek, &buf, &len) == VEIL_OK);
    /* the version word (bytes 8..11) of the input; a version 2 key comes back as version 3 */
    const uint32_t version = size >= 12 ? (uint32_t)data[8] | (uint32_t)data[9] << 8 |
                                              (uint32_t)data[10] << 16 | (uint32_t)data[11] << 24
                                        : 0;
    if (version == 2)
        VEIL_ASSERT(len == size + 4 * (size_t)ek->n_parts);
    else
        VEIL_ASSERT(len == size && memcmp(buf, data, size - VEIL_SERIAL_CHECKSUM_BYTES) == 0);
    veil_serial_buffer_free(buf, len);
    veil_eval_key_free(ek);
    return 0;
}
