/* atomic_file.c — write a temporary beside the target, sync, rename (see
 * veil/atomic_file.h). */
#define _POSIX_C_SOURCE 200809L
#include "veil/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the suffix of a temporary; mkstemp replaces the X's */
static const char k_tmp_suffix[] = ".tmpXXXXXX";

static void release(veil_atomic_file *a) {
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

/* What may replace PATH: not a directory, not a file without write bits (a
 * user's chmod a-w says "keep this"; rename would ignore it, and root's
 * writes too). *mode narrows to the existing file's permissions: replacing a
 * file never widens who can read it. */
static veil_status target_check(const char *path, unsigned *mode) {
    struct stat st;
    if (stat(path, &st) != 0) return VEIL_OK;
    if (S_ISDIR(st.st_mode)) return veil_error(VEIL_ERR_IO, "%s: is a directory", path);
    if (S_ISREG(st.st_mode) && (st.st_mode & 0222) == 0)
        return veil_error(VEIL_ERR_IO,
                          "%s: read-only (mode %03o): not replaced (make it writable first)", path,
                          (unsigned)(st.st_mode & 0777));
    if (mode && S_ISREG(st.st_mode)) *mode &= (unsigned)st.st_mode & 0777;
    return VEIL_OK;
}

veil_status veil_atomic_file_open(veil_atomic_file *a, const char *path, unsigned mode) {
    if (!a || !path || !*path) return veil_error(VEIL_ERR_ARG, "veil_atomic_file_open: no path");
    memset(a, 0, sizeof *a);
    size_t plen = strlen(path);
    VEIL_TRY(target_check(path, &mode));
    a->path = strdup(path);
    a->tmp = malloc(plen + 16);
    if (!a->path || !a->tmp) {
        release(a);
        return veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(a->tmp, path, plen);
    memcpy(a->tmp + plen, k_tmp_suffix, sizeof k_tmp_suffix);
    int fd = mkstemp(a->tmp); /* 0600 */
    if (fd < 0) {
        veil_status s = veil_error(VEIL_ERR_IO, "%s: cannot create a file in its directory: %s",
                                   path, strerror(errno));
        release(a);
        return s;
    }
    veil_status s = VEIL_OK;
    if ((mode & 0777) != 0600 && fchmod(fd, (mode_t)(mode & 0777)) != 0)
        s = veil_error(VEIL_ERR_IO, "%s: chmod: %s", a->tmp, strerror(errno));
    if (s == VEIL_OK && !(a->f = fdopen(fd, "wb")))
        s = veil_error(VEIL_ERR_IO, "%s: fdopen: %s", a->tmp, strerror(errno));
    if (s != VEIL_OK) {
        close(fd);
        unlink(a->tmp);
        release(a);
    }
    return s;
}

/* The rename is durable only once the directory entry is on disk. */
static void sync_dir(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *d = dir;
    if (!slash)
        d = ".";
    else if (slash == dir)
        slash[1] = 0;
    else
        *slash = 0;
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some filesystems refuse fsync on a directory */
        close(fd);
    }
    free(dir);
}

veil_status veil_atomic_file_commit(veil_atomic_file *a) {
    if (!a || !a->f) return veil_error(VEIL_ERR_ARG, "veil_atomic_file_commit: not open");
    veil_status s = VEIL_OK;
    if (ferror(a->f) || fflush(a->f) != 0)
        s = veil_error(VEIL_ERR_IO, "%s: write failed: %s", a->path,
                       errno ? strerror(errno) : "stream error");
    if (s == VEIL_OK && fsync(fileno(a->f)) != 0)
        s = veil_error(VEIL_ERR_IO, "%s: fsync: %s", a->path, strerror(errno));
    if (fclose(a->f) != 0 && s == VEIL_OK)
        s = veil_error(VEIL_ERR_IO, "%s: close: %s", a->path, strerror(errno));
    a->f = NULL;
    if (s == VEIL_OK && rename(a->tmp, a->path) != 0)
        s = veil_error(VEIL_ERR_IO, "%s: rename from %s: %s", a->path, a->tmp, strerror(errno));
    if (s != VEIL_OK)
        unlink(a->tmp);
    else
        sync_dir(a->path);
    release(a);
    return s;
}

veil_status veil_atomic_file_rename(const char *from, const char *to) {
    if (!from || !to) return veil_error(VEIL_ERR_ARG, "veil_atomic_file_rename: NULL path");
    VEIL_TRY(target_check(to, NULL));
    if (rename(from, to) != 0)
        return veil_error(VEIL_ERR_IO, "%s: rename from %s: %s", to, from, strerror(errno));
    sync_dir(to);
    return VEIL_OK;
}

void veil_atomic_file_discard(veil_atomic_file *a) {
    if (!a) return;
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    release(a);
}

veil_status veil_atomic_file_write(const char *path, const void *data, size_t len, unsigned mode) {
    veil_atomic_file a;
    VEIL_TRY(veil_atomic_file_open(&a, path, mode));
    if (len && fwrite(data, 1, len, a.f) != len) {
        veil_status s = veil_error(VEIL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        veil_atomic_file_discard(&a);
        return s;
    }
    return veil_atomic_file_commit(&a);
}

veil_status veil_atomic_file_check(const char *path) {
    veil_atomic_file a;
    VEIL_TRY(veil_atomic_file_open(&a, path, 0600));
    veil_atomic_file_discard(&a);
    return VEIL_OK;
}

int veil_atomic_file_is_temp(const char *name) {
    const size_t n = name ? strlen(name) : 0, k = sizeof k_tmp_suffix - 1;
    if (n <= k || memcmp(name + n - k, ".tmp", 4) != 0) return 0;
    for (size_t i = n - 6; i < n; i++) {
        const char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return 0;
    }
    return 1;
}

long veil_atomic_file_sweep(const char *dir, unsigned min_age_s, int (*also)(const char *name)) {
    if (!dir) {
        veil_error(VEIL_ERR_ARG, "veil_atomic_file_sweep: no directory");
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        veil_error(VEIL_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
        return -1;
    }
    const int dfd = dirfd(d);
    const time_t now = time(NULL);
    const uid_t me = geteuid();
    long removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!veil_atomic_file_is_temp(e->d_name) && !(also && also(e->d_name))) continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISREG(st.st_mode) || st.st_uid != me) continue;
        if (st.st_mtime > now || (unsigned long long)(now - st.st_mtime) < min_age_s) continue;
        if (unlinkat(dfd, e->d_name, 0) == 0) removed++;
    }
    closedir(d);
    return removed;
}
