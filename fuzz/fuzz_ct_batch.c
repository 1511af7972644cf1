/* libFuzzer target: veil_ct_batch_deserialize (raw and seeded forms) on
 * arbitrary bytes, with a 256 MiB cap on the loaded batch. A refused input
 * must leave the output alone and say why; an accepted one must re-serialize
 * to the same bytes in the same form (up to the checksum, which fuzzing
 * builds do not enforce: see fuzz/CMakeLists.txt). */
#include <string.h>

#include "veil/serialize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    veil_error_clear();
    veil_ct_batch *b = NULL;
    if (veil_ct_batch_deserialize_limited(data, size, (uint64_t)256 << 20, &b) != VEIL_OK) {
        VEIL_ASSERT(b == NULL);
        VEIL_ASSERT(veil_error_message()[0] != 0);
        return 0;
    }
    VEIL_ASSERT(b->dim == b->params->lwe_dim || b->dim == veil_params_big_dim(b->params));
    uint8_t *buf = NULL;
    size_t len = 0;
    const int seeded = memcmp(data, "VEILCS01", 8) == 0;
    /* the seeded form keeps its mask seed at offset 112 of the header */
    VEIL_ASSERT((seeded ? veil_ct_batch_serialize_seeded(b, data + 112, &buf, &len)
                        : veil_ct_batch_serialize(b, &buf, &len)) == VEIL_OK);
    VEIL_ASSERT(len == size && memcmp(buf, data, size - VEIL_SERIAL_CHECKSUM_BYTES) == 0);
    veil_serial_buffer_free(buf, len);
    veil_ct_batch_free(b);
    return 0;
}
