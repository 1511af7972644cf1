/* keystore.c — the evaluation-key directory (see veil/keystore.h). */
#define _POSIX_C_SOURCE 200809L
#include "veil/keystore.h"

#include "veil/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct veil_keystore {
    char *dir;
    _Atomic uint64_t quarantined, deleted, pruned;
    long swept;         /* temporaries removed at open */
    unsigned max_mb;    /* 0: unbounded (veil_keystore_set_max_mb) */
    pthread_mutex_t mu; /* a put's room check and write */
};

/* Quarantined files and crashed writers' temporaries are kept at least this
 * long by veil_keystore_prune (for inspection; a write in progress on a slow
 * shared mount). */
#define PRUNE_KEEP_S 86400

/* Temporaries older than this are a crash's leftovers, not a write in
 * progress (a key is written in well under a second once validated). */
#define SWEEP_MIN_AGE_S 60

/* "<32 hex>.vek.tmp": the fixed temporary name of keystores before the
 * atomic_file pattern; may still lie in an old directory. */
static int legacy_temp(const char *name) {
    char id[VEIL_KEY_ID_CHARS + 1];
    if (strlen(name) != VEIL_KEY_ID_CHARS + 8 || strcmp(name + VEIL_KEY_ID_CHARS, ".vek.tmp"))
        return 0;
    memcpy(id, name, VEIL_KEY_ID_CHARS);
    id[VEIL_KEY_ID_CHARS] = 0;
    return veil_key_id_valid(id);
}

#define EK_MAGIC "VEILEK01"
#define KEY_FP_OFF 64 /* header offsets, veil/serialize.h */
#define PARAMS_ID_OFF 16
#define SUM_BYTES VEIL_SERIAL_CHECKSUM_BYTES

static veil_status mkdir_p(const char *dir) {
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) return veil_error(VEIL_ERR_ARG, "key store %s: bad path", dir);
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return veil_error(VEIL_ERR_IO, "key store %s: mkdir %s: %s", dir, tmp,
                                  strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return veil_error(VEIL_ERR_IO, "key store %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return veil_error(VEIL_ERR_IO, "key store %s: not a directory", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return veil_error(VEIL_ERR_IO, "key store %s: not writable", dir);
    return VEIL_OK;
}

veil_status veil_keystore_open(const char *dir, veil_keystore **out) {
    if (!dir || !out) return veil_error(VEIL_ERR_ARG, "veil_keystore_open: NULL argument");
    if (sodium_init() < 0) return veil_error(VEIL_ERR_INTERNAL, "libsodium failed to initialise");
    VEIL_TRY(mkdir_p(dir));
    veil_keystore *ks = calloc(1, sizeof *ks);
    if (!ks || !(ks->dir = strdup(dir))) {
        free(ks);
        return veil_error(VEIL_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&ks->mu, NULL);
    /* A crash between creating a temporary and renaming it leaves the
     * temporary; only our own names, only old ones. Never served: a key id
     * only ever names <id>.vek. */
    ks->swept = veil_atomic_file_sweep(dir, SWEEP_MIN_AGE_S, legacy_temp);
    if (ks->swept < 0) {
        veil_status s = veil_error(VEIL_ERR_IO, "key store %s: %s", dir, veil_error_message());
        veil_keystore_free(ks);
        return s;
    }
    *out = ks;
    return VEIL_OK;
}

long veil_keystore_swept(const veil_keystore *ks) {
    return ks ? ks->swept : 0;
}

void veil_keystore_free(veil_keystore *ks) {
    if (!ks) return;
    pthread_mutex_destroy(&ks->mu);
    free(ks->dir);
    free(ks);
}

const char *veil_keystore_dir(const veil_keystore *ks) {
    return ks ? ks->dir : NULL;
}

/* <dir>/<id>.vek<suffix>; the id is checked first, so nothing but 32 hex
 * characters ever reaches a path. */
static veil_status key_path(const veil_keystore *ks, const char *id, const char *suffix, char *out,
                            size_t cap) {
    if (!ks || !id || !veil_key_id_valid(id))
        return veil_error(VEIL_ERR_ARG, "key id: not a key id (32 lower-case hex)");
    int n = snprintf(out, cap, "%s/%s.vek%s", ks->dir, id, suffix);
    if (n < 0 || (size_t)n >= cap) return veil_error(VEIL_ERR_ARG, "key store: path too long");
    return VEIL_OK;
}

static veil_status unknown(const char *id) {
    return veil_error(VEIL_ERR_ARG, "key id %s: no such evaluation key", id);
}

static veil_status io_error(const char *id, const char *what, int err) {
    return veil_error(VEIL_ERR_IO, "key store: %s key %s: %s", what, id, strerror(err));
}

/* Copies msg to out with every occurrence of dir replaced by "<keys dir>". */
static void without_dir(const char *msg, const char *dir, char *out, size_t cap) {
    const size_t dn = strlen(dir);
    size_t o = 0;
    while (*msg && o + 1 < cap) {
        if (dn && !strncmp(msg, dir, dn)) {
            o += (size_t)snprintf(out + o, cap - o, "<keys dir>");
            if (o >= cap) o = cap - 1;
            msg += dn;
        } else {
            out[o++] = *msg++;
        }
    }
    out[o] = 0;
}

veil_status veil_keystore_put(veil_keystore *ks, const uint8_t *buf, size_t len,
                              char id[VEIL_KEY_ID_CHARS + 1]) {
    if (!ks || !buf || !id) return veil_error(VEIL_ERR_ARG, "veil_keystore_put: NULL argument");
    if (len < VEIL_SERIAL_HEADER_BYTES + SUM_BYTES || memcmp(buf, EK_MAGIC, 8) != 0)
        return veil_error(VEIL_ERR_ARG, "veil_keystore_put: not a serialized evaluation key");
    uint8_t rnd[VEIL_KEY_ID_CHARS / 2];
    randombytes_buf(rnd, sizeof rnd);
    char nid[VEIL_KEY_ID_CHARS + 1];
    veil_hex(rnd, sizeof rnd, nid);
    char path[4096];
    VEIL_TRY(key_path(ks, nid, "", path, sizeof path));
    /* the room check and the write one step in this process (another process
     * sharing the directory may write between them: the limit can be passed
     * by the keys being written at that moment elsewhere) */
    pthread_mutex_lock(&ks->mu);
    veil_status st = veil_keystore_room(ks, len);
    /* temporary beside it, fsync, rename, fsync the directory; 0600 */
    if (st == VEIL_OK && veil_atomic_file_write(path, buf, len, 0600) != VEIL_OK) {
        /* the message goes to clients: say what failed, not where */
        char why[512];
        without_dir(veil_error_message(), ks->dir, why, sizeof why);
        st = veil_error(VEIL_ERR_IO, "key store: cannot store key %s: %s", nid, why);
    }
    pthread_mutex_unlock(&ks->mu);
    if (st == VEIL_OK) memcpy(id, nid, sizeof nid);
    return st;
}

veil_status veil_keystore_set_max_mb(veil_keystore *ks, unsigned max_mb, size_t key_bytes) {
    if (!ks) return veil_error(VEIL_ERR_ARG, "veil_keystore_set_max_mb: NULL argument");
    if (max_mb && ((uint64_t)max_mb << 20) < key_bytes)
        return veil_error(VEIL_ERR_ARG,
                          "%u: less than one evaluation key of this model (%zu bytes): every "
                          "upload would be refused",
                          max_mb, key_bytes);
    ks->max_mb = max_mb;
    return VEIL_OK;
}

veil_status veil_keystore_room(const veil_keystore *ks, uint64_t len) {
    if (!ks) return veil_error(VEIL_ERR_ARG, "veil_keystore_room: NULL argument");
    if (!ks->max_mb) return VEIL_OK;
    veil_keystore_usage u;
    VEIL_TRY(veil_keystore_usage_read(ks, &u));
    if (u.bytes + len <= (uint64_t)ks->max_mb << 20) return VEIL_OK;
    return veil_error(VEIL_ERR_RANGE,
                      "the key store holds %.1f MiB (%llu keys); this upload of %.1f MiB would "
                      "pass its limit of %u MiB: its operator must remove old keys or raise the "
                      "limit",
                      (double)u.bytes / 1048576.0, (unsigned long long)u.keys,
                      (double)len / 1048576.0, ks->max_mb);
}

static void info_from_header(const uint8_t *h, uint64_t bytes, veil_keystore_info *info) {
    if (!info) return;
    memcpy(info->key_fp, h + KEY_FP_OFF, VEIL_KEY_FP_BYTES);
    memcpy(info->params_id, h + PARAMS_ID_OFF, VEIL_SERIAL_PARAMS_ID_BYTES);
    info->params_id[VEIL_SERIAL_PARAMS_ID_BYTES - 1] = 0;
    info->bytes = bytes;
}

/* Opens <id>.vek for reading (fd < 0), or reads fd (an open key file, from
 * its start; fd stays the caller's): VEIL_ERR_ARG when absent. touch: mark
 * it used (VEIL_KEYSTORE_TOUCH_S). */
static veil_status open_key(const veil_keystore *ks, const char *id, int fd, int touch, FILE **f,
                            uint64_t *bytes) {
    char path[4096];
    VEIL_TRY(key_path(ks, id, "", path, sizeof path));
    FILE *fp = NULL;
    if (fd >= 0) {
        const int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0 || lseek(own, 0, SEEK_SET) != 0 || !(fp = fdopen(own, "rb"))) {
            const int err = errno;
            if (own >= 0) close(own);
            return io_error(id, "cannot read", err);
        }
    } else if (!(fp = fopen(path, "rbe"))) {
        return errno == ENOENT || errno == ENOTDIR ? unknown(id)
                                                   : io_error(id, "cannot read", errno);
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return unknown(id);
    }
    /* "last used", what prune reads; a file of another user (EPERM) keeps
     * its time: the owner's processes move it */
    if (touch && time(NULL) - st.st_mtime >= VEIL_KEYSTORE_TOUCH_S) futimens(fileno(fp), NULL);
    *f = fp;
    *bytes = (uint64_t)st.st_size;
    return VEIL_OK;
}

veil_status veil_keystore_header(const veil_keystore *ks, const char *id, veil_keystore_info *info,
                                 int *fd) {
    FILE *f;
    uint64_t bytes;
    if (fd) *fd = -1;
    VEIL_TRY(open_key(ks, id, -1, 1, &f, &bytes));
    uint8_t h[VEIL_SERIAL_HEADER_BYTES];
    size_t n = fread(h, 1, sizeof h, f);
    int kept = -1;
    if (fd && (kept = fcntl(fileno(f), F_DUPFD_CLOEXEC, 0)) < 0) {
        const int err = errno;
        fclose(f);
        return io_error(id, "cannot read", err);
    }
    fclose(f);
    if (n != sizeof h || memcmp(h, EK_MAGIC, 8) != 0) {
        if (kept >= 0) close(kept);
        veil_keystore_quarantine(ks, id);
        return veil_error(VEIL_ERR_ARG,
                          "key id %s: the stored key was corrupted (not an evaluation key) and "
                          "has been quarantined; upload it again",
                          id);
    }
    info_from_header(h, bytes, info);
    if (fd) *fd = kept;
    return VEIL_OK;
}

static veil_status corrupted(const veil_keystore *ks, const char *id, const char *why) {
    veil_keystore_quarantine(ks, id);
    return veil_error(VEIL_ERR_ARG,
                      "key id %s: the stored key was corrupted (%s) and has been quarantined; "
                      "upload it again",
                      id, why);
}

/* One pass over the file: header, size, BLAKE2b checksum. When buf is not
 * NULL the whole file is returned in *buf (the caller frees it). */
static veil_status verify(const veil_keystore *ks, const char *id, int fd, veil_keystore_info *info,
                          uint8_t **buf) {
    FILE *f;
    uint64_t bytes;
    VEIL_TRY(open_key(ks, id, fd, 0, &f, &bytes));
    if (bytes < VEIL_SERIAL_HEADER_BYTES + SUM_BYTES || bytes > SIZE_MAX) {
        fclose(f);
        return corrupted(ks, id, "truncated");
    }
    uint8_t *whole = NULL;
    if (buf && !(whole = malloc((size_t)bytes))) {
        fclose(f);
        return veil_error(VEIL_ERR_NOMEM, "key id %s: no memory to load %llu bytes", id,
                          (unsigned long long)bytes);
    }
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, SUM_BYTES);
    uint8_t head[VEIL_SERIAL_HEADER_BYTES], sum[SUM_BYTES], chunk[65536];
    const uint64_t hashed = bytes - SUM_BYTES;
    uint64_t off = 0;
    int err = 0;
    while (off < bytes) {
        uint8_t *dst = whole ? whole + off : chunk;
        size_t want = whole ? (size_t)(bytes - off) : sizeof chunk;
        if (!whole && want > bytes - off) want = (size_t)(bytes - off);
        size_t got = fread(dst, 1, want, f);
        if (got == 0) {
            err = ferror(f) ? EIO : 0;
            break;
        }
        /* Split what was read into the hashed part and the checksum. */
        size_t h = off < hashed ? (size_t)((hashed - off) < got ? hashed - off : got) : 0;
        crypto_generichash_update(&hs, dst, h);
        for (size_t i = h; i < got; i++)
            sum[off + i - hashed] = dst[i];
        for (size_t i = 0; i < got && off + i < sizeof head; i++)
            head[off + i] = dst[i];
        off += got;
    }
    fclose(f);
    if (off != bytes) {
        free(whole);
        if (err) return io_error(id, "cannot read", err);
        return corrupted(ks, id, "shorter than its size"); /* changed under us */
    }
    uint8_t want_sum[SUM_BYTES];
    crypto_generichash_final(&hs, want_sum, SUM_BYTES);
    if (memcmp(head, EK_MAGIC, 8) != 0) {
        free(whole);
        return corrupted(ks, id, "not an evaluation key");
    }
    if (sodium_memcmp(want_sum, sum, SUM_BYTES) != 0) {
        free(whole);
        return corrupted(ks, id, "checksum mismatch");
    }
    info_from_header(head, bytes, info);
    if (buf) *buf = whole;
    return VEIL_OK;
}

veil_status veil_keystore_verify(const veil_keystore *ks, const char *id,
                                 veil_keystore_info *info) {
    return verify(ks, id, -1, info, NULL);
}

veil_status veil_keystore_load(const veil_keystore *ks, const char *id, int fd,
                               const veil_params *params, veil_key_domains keep,
                               veil_eval_key **out) {
    if (!out) return veil_error(VEIL_ERR_ARG, "veil_keystore_load: NULL argument");
    uint8_t *buf = NULL;
    veil_keystore_info info;
    VEIL_TRY(verify(ks, id, fd, &info, &buf));
    if (params && strcmp(info.params_id, params->id) != 0) {
        free(buf);
        return veil_error(VEIL_ERR_PARAMS, "key id %s: an evaluation key for %s, not %s", id,
                          info.params_id, params->id);
    }
    veil_eval_key *ek = NULL;
    veil_status st = veil_eval_key_deserialize(buf, (size_t)info.bytes, keep, &ek);
    free(buf);
    if (st == VEIL_ERR_FORMAT) {
        /* the checksum matched: the bytes are what was stored, a key this
         * build cannot read (another version, from a newer server sharing
         * the directory), not a damaged one: left in place for it */
        veil_error_prefix("stored intact (its checksum matches) but not readable by this build, "
                          "left in place: ");
        return st;
    }
    if (st != VEIL_OK) {
        veil_error_prefix("key id %s: ", id);
        return st;
    }
    *out = ek;
    return VEIL_OK;
}

/* "<32 hex>.vek": a stored key. */
static int key_name(const char *name) {
    char id[VEIL_KEY_ID_CHARS + 1];
    if (strlen(name) != VEIL_KEY_ID_CHARS + 4 || strcmp(name + VEIL_KEY_ID_CHARS, ".vek")) return 0;
    memcpy(id, name, VEIL_KEY_ID_CHARS);
    id[VEIL_KEY_ID_CHARS] = 0;
    return veil_key_id_valid(id);
}

veil_status veil_keystore_usage_read(const veil_keystore *ks, veil_keystore_usage *out) {
    if (!ks || !out) return veil_error(VEIL_ERR_ARG, "veil_keystore_usage_read: NULL argument");
    DIR *d = opendir(ks->dir);
    if (!d) return veil_error(VEIL_ERR_IO, "key store: cannot list it: %s", strerror(errno));
    const int dfd = dirfd(d);
    veil_keystore_usage u = {0, 0};
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]))) continue;
        struct stat st;
        /* gone meanwhile (renamed, removed by another process): not there */
        if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        u.bytes += (uint64_t)st.st_size;
        u.keys += (uint64_t)key_name(n);
    }
    closedir(d);
    *out = u;
    return VEIL_OK;
}

veil_status veil_keystore_quarantine(const veil_keystore *ks, const char *id) {
    char path[4096], bad[4096];
    VEIL_TRY(key_path(ks, id, "", path, sizeof path));
    VEIL_TRY(key_path(ks, id, ".corrupt", bad, sizeof bad));
    if (rename(path, bad) != 0) {
        if (errno == ENOENT) return VEIL_OK; /* another process was first */
        return io_error(id, "cannot quarantine", errno);
    }
    atomic_fetch_add(&((veil_keystore *)ks)->quarantined, 1);
    return VEIL_OK;
}

uint64_t veil_keystore_quarantined(const veil_keystore *ks) {
    return ks ? atomic_load(&((veil_keystore *)ks)->quarantined) : 0;
}

veil_status veil_keystore_delete(veil_keystore *ks, const char *id) {
    char path[4096];
    VEIL_TRY(key_path(ks, id, "", path, sizeof path));
    if (unlink(path) != 0)
        return errno == ENOENT || errno == ENOTDIR ? unknown(id)
                                                   : io_error(id, "cannot remove", errno);
    atomic_fetch_add(&ks->deleted, 1);
    return VEIL_OK;
}

int veil_keystore_stored(const veil_keystore *ks, const char *id) {
    char path[4096];
    if (!ks || key_path(ks, id, "", path, sizeof path) != VEIL_OK) return 0;
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    /* gone (removed, quarantined); any other failure is no proof */
    return !(errno == ENOENT || errno == ENOTDIR);
}

/* "<32 hex>.vek.corrupt": a quarantined key. */
static int corrupt_name(const char *name) {
    char key[VEIL_KEY_ID_CHARS + 5];
    if (strlen(name) != VEIL_KEY_ID_CHARS + 12 || strcmp(name + VEIL_KEY_ID_CHARS + 4, ".corrupt"))
        return 0;
    memcpy(key, name, VEIL_KEY_ID_CHARS + 4);
    key[VEIL_KEY_ID_CHARS + 4] = 0;
    return key_name(key);
}

veil_status veil_keystore_prune(veil_keystore *ks, uint64_t ttl_s, veil_keystore_pruned *counts) {
    veil_keystore_pruned c = {0, 0, 0};
    if (counts) *counts = c;
    if (!ks) return veil_error(VEIL_ERR_ARG, "veil_keystore_prune: NULL argument");
    if (!ttl_s) return VEIL_OK;
    DIR *d = opendir(ks->dir);
    if (!d) return veil_error(VEIL_ERR_IO, "key store: cannot list it: %s", strerror(errno));
    const int dfd = dirfd(d);
    const time_t now = time(NULL);
    const uint64_t keep_corrupt = ttl_s > PRUNE_KEEP_S ? ttl_s : PRUNE_KEEP_S;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        const int key = key_name(n), bad = !key && corrupt_name(n);
        if (!key && !bad) continue;
        struct stat st;
        if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        /* a key: last used (mtime); a quarantined one: since its rename
         * (ctime; its mtime is the key's) */
        const time_t since = key ? st.st_mtime : st.st_ctime;
        if (now < since || (uint64_t)(now - since) < (key ? ttl_s : keep_corrupt)) continue;
        if (unlinkat(dfd, n, 0) != 0) continue; /* gone meanwhile, or not ours to remove */
        if (key) {
            c.keys++;
            /* counted as it goes: /metrics follows the directory, not the end of the pass */
            atomic_fetch_add(&ks->pruned, 1);
        } else {
            c.corrupt++;
        }
    }
    closedir(d);
    const long swept = veil_atomic_file_sweep(ks->dir, PRUNE_KEEP_S, legacy_temp);
    if (swept > 0) c.temporaries = (uint64_t)swept;
    if (counts) *counts = c;
    return VEIL_OK;
}

uint64_t veil_keystore_deleted(const veil_keystore *ks) {
    return ks ? atomic_load(&((veil_keystore *)ks)->deleted) : 0;
}

uint64_t veil_keystore_pruned_keys(const veil_keystore *ks) {
    return ks ? atomic_load(&((veil_keystore *)ks)->pruned) : 0;
}
