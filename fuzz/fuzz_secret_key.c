/* libFuzzer target: veil_secret_key_deserialize on arbitrary bytes.
 * A refused input must leave the output alone and say why; an accepted one
 * must re-serialize to the same bytes (up to the checksum, which fuzzing
 * builds do not enforce: see fuzz/CMakeLists.txt). */
#include <string.h>

#include "veil/serialize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    veil_serial_kind kind;
    const veil_params *p;
    (void)veil_serial_peek(data, size, &kind, &p);
    veil_error_clear();
    veil_secret_key *sk = NULL;
    if (veil_secret_key_deserialize(data, size, &sk) != VEIL_OK) {
        VEIL_ASSERT(sk == NULL);
        VEIL_ASSERT(veil_error_message()[0] != 0);
        return 0;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    VEIL_ASSERT(veil_secret_key_serialize(sk, &buf, &len) == VEIL_OK);
    VEIL_ASSERT(len == size && memcmp(buf, data, size - VEIL_SERIAL_CHECKSUM_BYTES) == 0);
    veil_serial_buffer_free(buf, len);
    veil_secret_key_free(sk);
    return 0;
}
