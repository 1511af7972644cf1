/* veil/keystore.h — the evaluation-key store shared by veil-server and the
 * Triton backend: a directory of <id>.vek files, each the serialized, seeded
 * evaluation key a client uploaded (veil/serialize.h, "VEILEK01"), that
 * several processes (servers, Triton instances) read and write at once.
 *
 * - An id is 128 random bits from libsodium (32 lower-case hex, veil/deploy.h
 *   veil_key_id_valid): holding it is what lets a client use the key.
 * - A key is written once, atomically (a temporary name in the directory,
 *   fsync, rename, fsync of the directory) and never modified, so a reader in
 *   any process sees either no file or the whole file.
 * - A file whose checksum or structure is wrong (disk corruption, a partial
 *   copy) is quarantined when a reader finds out: renamed to <id>.vek.corrupt
 *   in the same directory, kept for inspection, never read again. For the
 *   caller the id is then unknown, like one never stored, and the client
 *   uploads its key again (veil remote does so on a 404).
 * - Messages never name the directory or any path: servers put them in HTTP
 *   answers. They name the key id and what was wrong.
 *
 * Status codes: VEIL_ERR_ARG when no usable key is stored under the id (a
 * malformed id, never stored, removed, or quarantined: the message says
 * which); VEIL_ERR_IO when the store cannot read or write (permissions, disk
 * full); VEIL_ERR_PARAMS when the key is for another parameter set than the
 * caller's; VEIL_ERR_NOMEM. Thread-safe: after open the store holds only an
 * atomic counter. */
#ifndef VEIL_KEYSTORE_H
#define VEIL_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "veil/deploy.h"
#include "veil/params.h"
#include "veil/serialize.h"
#include "veil/status.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_keystore veil_keystore;

/* Opens (creating it 0700, parents too, if missing) the key directory; it
 * must be a writable directory. */
veil_status veil_keystore_open(const char *dir, veil_keystore **out);
void veil_keystore_free(veil_keystore *ks); /* NULL ok */
/* The directory (borrowed), for the owner's own logs, not for answers. */
const char *veil_keystore_dir(const veil_keystore *ks);

/* Stores len bytes of a serialized evaluation key under a fresh id. The caller
 * has validated the bytes (the server deserializes every upload first: see
 * host/server/request.h srv_parse_key_upload); the store checks only the
 * magic. */
veil_status veil_keystore_put(veil_keystore *ks, const uint8_t *buf, size_t len,
                              char id[VEIL_KEY_ID_CHARS + 1]);

/* What a stored key's header says. */
typedef struct veil_keystore_info {
    uint8_t key_fp[VEIL_KEY_FP_BYTES];           /* the secret key it was made from */
    char params_id[VEIL_SERIAL_PARAMS_ID_BYTES]; /* NUL-terminated */
    uint64_t bytes;                              /* file size */
} veil_keystore_info;

/* Reads the header only (cheap: for checking a request against the key
 * before queueing it). Does not verify the checksum. */
veil_status veil_keystore_header(const veil_keystore *ks, const char *id, veil_keystore_info *info);

/* Reads the whole file and verifies its checksum (BLAKE2b over the file,
 * veil/serialize.h) without expanding the key: cost one pass over the file.
 * A corrupted file is quarantined (VEIL_ERR_ARG). info may be NULL. */
veil_status veil_keystore_verify(const veil_keystore *ks, const char *id, veil_keystore_info *info);

/* Loads the key: checksum, then the full deserialization (masks regenerated,
 * prepared for keep: the backend's domains, veil_backend_key_domains). A
 * corrupted file is quarantined (VEIL_ERR_ARG). When
 * params is not NULL a key for another set gives VEIL_ERR_PARAMS (the file
 * is kept: another server sharing the directory may serve that set). */
veil_status veil_keystore_load(const veil_keystore *ks, const char *id, const veil_params *params,
                               veil_key_domains keep, veil_eval_key **out);

/* Renames <id>.vek to <id>.vek.corrupt. VEIL_OK also when another process
 * did it first. */
veil_status veil_keystore_quarantine(const veil_keystore *ks, const char *id);
/* Files this process has quarantined since open (for metrics). */
uint64_t veil_keystore_quarantined(const veil_keystore *ks);
/* What the directory holds now, read from it (every process sharing it
 * sees the same): bytes counts every regular file (keys, quarantined keys,
 * temporaries being written, anything else put there), keys the <id>.vek
 * files. One readdir and one stat per file. VEIL_ERR_IO when it cannot be
 * listed (the message names no path). Servers bound uploads with it
 * (veil-server --key-store-max-mb). */
typedef struct veil_keystore_usage {
    uint64_t bytes;
    uint64_t keys;
} veil_keystore_usage;
veil_status veil_keystore_usage_read(const veil_keystore *ks, veil_keystore_usage *out);

/* How many temporaries a crash had left (veil_atomic_file_sweep: our own
 * names, older than a minute) veil_keystore_open removed. */
long veil_keystore_swept(const veil_keystore *ks);

#ifdef __cplusplus
}
#endif
#endif
