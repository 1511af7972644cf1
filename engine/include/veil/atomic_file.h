/* veil/atomic_file.h — every file veil writes appears whole or not at all.
 *
 * The pattern (one place for it): write to PATH.tmpXXXXXX in the same
 * directory, fflush, fsync, close, rename over PATH, fsync the directory. A
 * failure at any step (disk full, `ulimit -f`, a read-only directory) removes
 * the temporary and leaves a previous PATH untouched; readers never see a
 * partial file. Keys, ciphertexts, `--output` files (CSV, .npy, .h5) and the
 * client's key-id list all go through it.
 *
 *   veil_atomic_file a;
 *   VEIL_TRY(veil_atomic_file_open(&a, path, 0644));
 *   fwrite(..., a.f);                 // any stdio on a.f
 *   return veil_atomic_file_commit(&a); // or veil_atomic_file_discard(&a)
 *
 * Callers that must exit cleanly when a write is over the file size limit
 * ignore SIGXFSZ (the veil commands do), so that write() fails with EFBIG
 * instead of killing the process. */
#ifndef VEIL_ATOMIC_FILE_H
#define VEIL_ATOMIC_FILE_H

#include <stdio.h>
#include <time.h>

#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_atomic_file {
    char *path; /* the final name (a copy) */
    char *tmp;  /* the temporary name beside it */
    FILE *f;    /* open for writing until commit or discard */
} veil_atomic_file;

/* Creates the temporary with `mode` (0600 for secrets: it never exists with
 * wider permissions, even briefly), narrowed to an existing PATH's
 * permissions (replacing a file never widens who may read it). Refuses a
 * PATH that is a directory or a file with no write bit (chmod a-w: kept,
 * though rename, and root, could replace it). The caller may setvbuf(a->f) before the
 * first write (serialize.c does, to wipe a secret's stdio buffer). */
veil_status veil_atomic_file_open(veil_atomic_file *a, const char *path, unsigned mode);

/* Flushes, syncs, closes and renames; on failure the temporary is removed and
 * the message names the path and the step. Always releases `a`. */
veil_status veil_atomic_file_commit(veil_atomic_file *a);

/* Closes and removes the temporary; PATH is untouched. Accepts a released or
 * zeroed `a`. */
void veil_atomic_file_discard(veil_atomic_file *a);

/* Writes len bytes to PATH atomically (open, one fwrite, commit). */
veil_status veil_atomic_file_write(const char *path, const void *data, size_t len, unsigned mode);

/* Renames FROM over TO (the same directory; a TO with no write bit is
 * refused, as by veil_atomic_file_open) and syncs the directory: the
 * second half of a commit for a file written whole under another name first
 * (a pair of files replaced together: veil keygen). Names both on failure;
 * FROM is left in place then. */
veil_status veil_atomic_file_rename(const char *from, const char *to);

/* 1 when NAME (a file name, no directory) is one of this module's
 * temporaries: ends in ".tmp" and the six characters mkstemp fills in
 * (letters and digits). */
int veil_atomic_file_is_temp(const char *name);

/* Removes temporaries a crash left in DIR (not below it): regular files (not
 * links) owned by this user, named as veil_atomic_file_is_temp() says or as
 * `also` (NULL: none) says, last modified at least min_age_s seconds ago (a
 * younger one may be a write in progress, here or in another process).
 * Returns how many it removed, or -1 with a message naming DIR when DIR
 * cannot be read; a file that cannot be removed is skipped. */
long veil_atomic_file_sweep(const char *dir, unsigned min_age_s, int (*also)(const char *name));

/* Checks, before a long computation, that PATH could be written: creates and
 * removes a temporary beside it. Names the path and the reason (missing or
 * read-only directory, a directory in the way, a read-only PATH). */
veil_status veil_atomic_file_check(const char *path);

#ifdef __cplusplus
}
#endif
#endif
