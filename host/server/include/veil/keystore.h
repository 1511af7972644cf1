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
 * caller's; VEIL_ERR_RANGE when a put would pass the store's size limit
 * (veil_keystore_set_max_mb); VEIL_ERR_NOMEM. Thread-safe: after open the
 * store holds atomic counters and a mutex that makes a put's room check and
 * write one step in this process.
 *
 * Life cycle: a key is removed by whoever holds its id
 * (veil_keystore_delete), or once unused for a while (veil_keystore_prune:
 * "used" is the file's modification time, which veil_keystore_header moves
 * forward at most once every VEIL_KEYSTORE_TOUCH_S). A request that opened
 * the key before it was removed still reads it (veil_keystore_header's fd:
 * POSIX keeps an unlinked file's bytes while it is open); every later one
 * finds the id unknown. Processes sharing the directory see the same. */
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

/* Bounds the directory: a put that would take it (every file in it,
 * veil_keystore_usage_read, read again at each put: processes sharing it see
 * each other's keys, removed files free room at once) past max_mb MiB is
 * refused with VEIL_ERR_RANGE. 0, the default at open: unbounded.
 * VEIL_ERR_ARG when max_mb is less than one key of key_bytes (every upload
 * would be refused); the message starts with the number, callers prefix the
 * option's name. Call it before the store is shared between threads. */
/* The limit servers set unless told otherwise (veil-server
 * --key-store-max-mb, Triton's key_store_max_mb): 10 GiB. */
#define VEIL_KEYSTORE_DEFAULT_MAX_MB 10240
veil_status veil_keystore_set_max_mb(veil_keystore *ks, unsigned max_mb, size_t key_bytes);
/* VEIL_OK when len more bytes fit under the limit (always when unbounded);
 * VEIL_ERR_RANGE when not (the message says how full the store is, the
 * limit, and that its operator must remove keys or raise it: callers append
 * their option's name); VEIL_ERR_IO when it cannot be listed. For refusing
 * an upload before its body is in; put checks again. */
veil_status veil_keystore_room(const veil_keystore *ks, uint64_t len);

/* What a stored key's header says. */
typedef struct veil_keystore_info {
    uint8_t key_fp[VEIL_KEY_FP_BYTES];           /* the secret key it was made from */
    char params_id[VEIL_SERIAL_PARAMS_ID_BYTES]; /* NUL-terminated */
    uint64_t bytes;                              /* file size */
} veil_keystore_info;

/* A key's modification time is moved to now when a request uses it and it
 * is at least this old: an infer burst writes no metadata per request. */
#define VEIL_KEYSTORE_TOUCH_S 60

/* Reads the header only (cheap: for checking a request against the key
 * before queueing it) and marks the key used (its modification time, when
 * VEIL_KEYSTORE_TOUCH_S old). Does not verify the checksum. When fd is not
 * NULL, *fd is the key's file, open for reading (the caller closes it): pass
 * it to veil_keystore_load, and the key loads even if it is deleted or
 * pruned meanwhile. */
veil_status veil_keystore_header(const veil_keystore *ks, const char *id, veil_keystore_info *info,
                                 int *fd);

/* Reads the whole file and verifies its checksum (BLAKE2b over the file,
 * veil/serialize.h) without expanding the key: cost one pass over the file.
 * A corrupted file is quarantined (VEIL_ERR_ARG). info may be NULL. */
veil_status veil_keystore_verify(const veil_keystore *ks, const char *id, veil_keystore_info *info);

/* Loads the key: checksum, then the full deserialization (masks regenerated,
 * prepared for keep: the backend's domains, veil_backend_key_domains). A
 * corrupted file is quarantined (VEIL_ERR_ARG). When
 * params is not NULL a key for another set gives VEIL_ERR_PARAMS (the file
 * is kept: another server sharing the directory may serve that set). fd:
 * the file veil_keystore_header opened for this id (read from its start;
 * left open), or -1 to open <id>.vek now. */
veil_status veil_keystore_load(const veil_keystore *ks, const char *id, int fd,
                               const veil_params *params, veil_key_domains keep,
                               veil_eval_key **out);

/* Removes the key stored under id: the id is the capability, whoever holds
 * it may. VEIL_ERR_ARG when none is (never stored, removed already here or
 * by another process, quarantined). */
veil_status veil_keystore_delete(veil_keystore *ks, const char *id);

/* 1 while a key is stored under id (no read, no touch: one stat), 0 once it
 * is not (never stored, deleted, pruned, quarantined: here or by another
 * process sharing the directory; a malformed id). A failure that proves
 * nothing (permissions, I/O) answers 1. For dropping the resident copy of
 * a removed key (veil-server's and Triton's key caches). */
int veil_keystore_stored(const veil_keystore *ks, const char *id);

/* Removes what has lain unused in the directory:
 *   <id>.vek        keys not used (veil_keystore_header) for ttl_s seconds;
 *   <id>.vek.corrupt quarantined longer than ttl_s ago, and at least a day
 *                   (kept that long for inspection);
 *   temporaries a crashed writer left (veil_atomic_file_sweep's), a day old.
 * Safe beside other processes using the directory: a key one of them has
 * open stays readable to it; one it touches between this listing and the
 * removal may go (its next request is told unknown_key and its client
 * uploads again). ttl_s 0: nothing. counts (may be NULL): what was removed
 * (keys, corrupt, temporaries). VEIL_ERR_IO when the directory cannot be
 * listed. */
typedef struct veil_keystore_pruned {
    uint64_t keys, corrupt, temporaries;
} veil_keystore_pruned;
veil_status veil_keystore_prune(veil_keystore *ks, uint64_t ttl_s, veil_keystore_pruned *counts);
/* Keys this process has removed since open: deleted by their holder, and
 * pruned (for metrics). */
uint64_t veil_keystore_deleted(const veil_keystore *ks);
uint64_t veil_keystore_pruned_keys(const veil_keystore *ks);

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
