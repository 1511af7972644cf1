/* model_h5.c — HDF5 (schema v1) -> veil_model, then content validation.
 *
 * Structure is checked here (groups, attributes, datasets, types, ranks);
 * content (shapes between layers, operands, table sizes, ranges) by
 * veil_model_validate. Every error names the HDF5 path. */
#define _GNU_SOURCE /* memfd_create, dladdr1 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <link.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "h5util.h"
#include "veil/loader.h"

/* ---- attribute / dataset helpers (shared with io.c through h5util.h) ------ */

void veil_h5_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---- untrusted files -------------------------------------------------------
 *
 * Why a child process: libhdf5 (1.10 here) does not check the sizes written
 * inside an object header against the header itself. Flipping byte 1261 of
 * models/tiny.h5 turns the datatype size in the root's 'description'
 * attribute message from 8 into 65288 (the whole message is 160 bytes); the
 * attribute decoder then reads far past its buffer while H5Aexists iterates
 * the root's messages, and dies with SIGSEGV (sec2 driver) before any of the
 * API-level checks below (object types, classes, sizes) can look at the
 * object. Opening the bytes in memory (core driver, strong close) only moves
 * where such an over-read lands. So an untrusted file is first read in full
 * by a child process; only if the child loads it without crashing does this
 * process open the same bytes.
 *
 * Why a new program, not fork(): the child of a fork in a process with other
 * threads may only call async-signal-safe functions, and libhdf5 allocates.
 * A thread that held an allocator's lock (or libhdf5's own, in its
 * threadsafe build) at the fork leaves that lock held forever in the child.
 * glibc's malloc guards against this; GCC 12's AddressSanitizer allocator
 * does not (no fork interceptor), and tritonserver, which loads veil models
 * from its own threads, hung that way in the sanitized Triton test. So the
 * check runs in veil-h5check, started with posix_spawn: a fresh process
 * that gets the file's bytes on its stdin (a memfd) and writes its status
 * and message to its stdout. Not sharing this process's heap layout, it
 * reads with a guarded heap (h5check.c), so that an over-read that would
 * have passed unseen here stops it. */

enum { H5_MAX_FILE_BYTES = 1 << 30 };

static const unsigned char k_h5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

void veil_h5_memory_name(char *buf, size_t size) {
    static unsigned long counter;
    snprintf(buf, size, "/proc/self/veil-h5-memory-%lu",
             __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
}

veil_status veil_h5_image_read(const char *path, veil_h5_image *img) {
    memset(img, 0, sizeof *img);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return veil_error(VEIL_ERR_IO, "%s: cannot open the file: %s", path, strerror(errno));
    struct stat sb;
    veil_status st = VEIL_OK;
    if (fstat(fd, &sb) != 0)
        st = veil_error(VEIL_ERR_IO, "%s: stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = veil_error(VEIL_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size > H5_MAX_FILE_BYTES)
        st = veil_error(VEIL_ERR_FORMAT, "%s: %lld bytes, more than the %d veil reads", path,
                        (long long)sb.st_size, H5_MAX_FILE_BYTES);
    size_t len = st == VEIL_OK ? (size_t)sb.st_size : 0;
    unsigned char *buf = st == VEIL_OK ? malloc(len + 1) : NULL;
    if (st == VEIL_OK && !buf) st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    for (size_t got = 0; st == VEIL_OK && got < len;) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            st = veil_error(VEIL_ERR_IO, "%s: read: %s", path, r ? strerror(errno) : "short file");
        else
            got += (size_t)r;
    }
    close(fd);
    /* The superblock is at 0, 512, 1024, 2048... */
    int found = 0;
    for (size_t off = 0; st == VEIL_OK && !found && off + 8 <= len; off = off ? 2 * off : 512)
        found = !memcmp(buf + off, k_h5_signature, 8);
    if (st == VEIL_OK && !found) st = veil_error(VEIL_ERR_FORMAT, "%s: not an HDF5 file", path);
    if (st != VEIL_OK) {
        free(buf);
        return st;
    }
    img->buf = buf;
    img->len = len;
    img->name = path;
    return VEIL_OK;
}

void veil_h5_image_free(veil_h5_image *img) {
    if (!img) return;
    free(img->buf);
    memset(img, 0, sizeof *img);
}

/* H5Lvisit: the first link that could reach outside the image. A soft or
 * external link, or a dataset whose data lives in other files (external
 * storage) or other datasets (a virtual layout), would have libhdf5 open
 * paths of the file's choosing: neither the checking process nor this one
 * has seen those bytes, and a model file has no business reading them. */
typedef struct link_scan {
    char bad[256];
} link_scan;

static herr_t refuse_outside(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    link_scan *ls = data;
    if (info->type != H5L_TYPE_HARD) {
        snprintf(ls->bad, sizeof ls->bad, "/%s: %s link (only hard links are read)", name,
                 info->type == H5L_TYPE_SOFT       ? "a soft"
                 : info->type == H5L_TYPE_EXTERNAL ? "an external"
                                                   : "a user-defined");
        return 1;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) {
        snprintf(ls->bad, sizeof ls->bad, "/%s: cannot read its object", name);
        return 1;
    }
    if (oi.type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t dcpl = d >= 0 ? H5Dget_create_plist(d) : -1;
    int outside = dcpl < 0;
    if (!outside) outside = H5Pget_external_count(dcpl) != 0 || H5Pget_layout(dcpl) == H5D_VIRTUAL;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (d >= 0) H5Dclose(d);
    if (outside) {
        snprintf(ls->bad, sizeof ls->bad,
                 "/%s: a dataset stored outside the file (external or virtual storage)", name);
        return 1;
    }
    return 0;
}

veil_status veil_h5_image_run(const veil_h5_image *img, veil_h5_job job, void *ctx) {
    veil_h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return veil_error(VEIL_ERR_INTERNAL, "H5Pcreate failed");
    /* In memory, never written back; every object closed with the file. */
    veil_status st = VEIL_OK;
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, img->buf, img->len) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0)
        st = veil_error(VEIL_ERR_INTERNAL, "cannot set the file access properties");
    char name[64];
    veil_h5_memory_name(name, sizeof name);
    hid_t file = st == VEIL_OK ? H5Fopen(name, H5F_ACC_RDONLY, fapl) : -1;
    H5Pclose(fapl);
    if (st == VEIL_OK && file < 0) st = veil_error(VEIL_ERR_FORMAT, "libhdf5 cannot open it");
    if (st != VEIL_OK) return st;
    link_scan ls = {""};
    const herr_t scan = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, refuse_outside, &ls);
    if (scan != 0) {
        H5Fclose(file);
        return veil_error(VEIL_ERR_FORMAT, "%s",
                          ls.bad[0] ? ls.bad : "libhdf5 cannot list its links");
    }
    st = job(file, ctx);
    H5Fclose(file);
    return st;
}

/* Where veil-h5check is: $VEIL_H5CHECK when set; else beside the program or
 * shared library holding this code (an installed copy, libtriton_veil.so's
 * directory); else where this build tree made it (VEIL_H5CHECK_PATH). */
static veil_status find_checker(char *out, size_t size) {
    const char *env = getenv("VEIL_H5CHECK");
    if (env && *env) {
        if (access(env, X_OK) != 0)
            return veil_error(VEIL_ERR_IO, "VEIL_H5CHECK=%s: not an executable: %s", env,
                              strerror(errno));
        snprintf(out, size, "%s", env);
        return VEIL_OK;
    }
    char self[4096] = "";
    Dl_info info;
    struct link_map *lm = NULL;
    if (dladdr1((void *)find_checker, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm && lm->l_name &&
        lm->l_name[0] == '/') {
        snprintf(self, sizeof self, "%s", lm->l_name); /* a shared library */
    } else {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = 0;
    }
    if (self[0]) {
        snprintf(out, size, "%s/veil-h5check", dirname(self));
        if (access(out, X_OK) == 0) return VEIL_OK;
    }
#ifdef VEIL_H5CHECK_PATH
    snprintf(out, size, "%s", VEIL_H5CHECK_PATH);
    if (access(out, X_OK) == 0) return VEIL_OK;
#else
#define VEIL_H5CHECK_PATH "(no build path)"
#endif
    return veil_error(VEIL_ERR_IO,
                      "cannot find veil-h5check, the program that checks untrusted HDF5 files "
                      "(looked in %s and at %s; set VEIL_H5CHECK to its path)",
                      self[0] ? self : "(this program's directory: unknown)", VEIL_H5CHECK_PATH);
}

void veil_loader_env_help(FILE *f) {
    fputs("  VEIL_H5CHECK=PATH         the veil-h5check program that opens untrusted .h5 files\n"
          "                            first (default: beside this program, then the build's)\n",
          f);
}

static veil_status write_all(int fd, const unsigned char *p, size_t len) {
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return veil_error(VEIL_ERR_IO, "write: %s", w ? strerror(errno) : "short");
        done += (size_t)w;
    }
    return VEIL_OK;
}

/* Runs check on the image in veil-h5check; its status and message come back
 * on its stdout. */
static veil_status run_checker(const veil_h5_image *img, const veil_h5_check *check) {
    char exe[4096];
    VEIL_TRY(find_checker(exe, sizeof exe));
    enum { MAX_ARGS = 2 * VEIL_MAX_PORTS + 3 }; /* inputs: a name and a rank each */
    if (check->argc < 0 || check->argc > MAX_ARGS - 3)
        return veil_error(VEIL_ERR_INTERNAL, "veil-h5check: %d arguments", check->argc);
    char *argv[MAX_ARGS + 1];
    argv[0] = exe;
    argv[1] = (char *)check->job;
    for (int i = 0; i < check->argc; i++)
        argv[2 + i] = check->argv[i];
    argv[2 + check->argc] = NULL;

    int image = memfd_create("veil-h5-image", MFD_CLOEXEC);
    if (image < 0) return veil_error(VEIL_ERR_IO, "memfd_create: %s", strerror(errno));
    veil_status st = write_all(image, img->buf, img->len);
    int fds[2] = {-1, -1};
    if (st == VEIL_OK && pipe2(fds, O_CLOEXEC) != 0)
        st = veil_error(VEIL_ERR_IO, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid = -1;
    if (st == VEIL_OK) {
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        /* The image as stdin (read from 0), the answer on stdout; a crash
         * report (ASan's, in sanitized builds) is the parent's error, not
         * its output. The dup2'd descriptors lose FD_CLOEXEC. */
        posix_spawn_file_actions_adddup2(&fa, image, 0);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
        /* Nothing else of the caller's (a server's sockets) stays open. */
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
        /* No signal blocked or ignored whatever the caller's thread set, so
         * that the checker's alarm ends a libhdf5 loop. */
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        extern char **environ;
        int e = posix_spawn(&pid, exe, &fa, &attr, argv, environ);
        if (e != 0) st = veil_error(VEIL_ERR_IO, "cannot start %s: %s", exe, strerror(e));
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
    }
    close(image);
    if (fds[1] >= 0) close(fds[1]);
    char msg[2049];
    size_t got = 0;
    while (st == VEIL_OK && got < sizeof msg - 1) {
        ssize_t r = read(fds[0], msg + got, sizeof msg - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (fds[0] >= 0) close(fds[0]);
    if (st != VEIL_OK) return st;
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0) {
        if (errno == EINTR) continue;
        if (errno != ECHILD) return veil_error(VEIL_ERR_IO, "waitpid: %s", strerror(errno));
        /* A host that ignores SIGCHLD has its children reaped for it: then
         * the answer alone says (a crash leaves none). */
        ws = 0;
        break;
    }
    if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
        return veil_error(VEIL_ERR_FORMAT,
                          "corrupt HDF5 file: libhdf5 did not finish reading it in %d s (in the "
                          "child process that checks untrusted files)",
                          VEIL_H5_CHECK_SECONDS);
    if (WIFSIGNALED(ws))
        return veil_error(VEIL_ERR_FORMAT,
                          "corrupt HDF5 file: libhdf5 crashed reading it (signal %d, in the "
                          "child process that checks untrusted files)",
                          WTERMSIG(ws));
    int32_t code = 0;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || got < sizeof code)
        return veil_error(VEIL_ERR_FORMAT,
                          "corrupt HDF5 file: the child process reading it failed (exit %d)",
                          WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    memcpy(&code, msg, sizeof code);
    if (code == VEIL_OK) return VEIL_OK;
    msg[got] = 0;
    if (code < 0 || code > VEIL_ERR_INTERNAL) code = VEIL_ERR_FORMAT;
    return veil_error((veil_status)code, "%s", msg + sizeof code);
}

veil_status veil_h5_read_untrusted(const char *path, const veil_h5_check *check, veil_h5_job job,
                                   void *ctx) {
    veil_h5_image img;
    VEIL_TRY(veil_h5_image_read(path, &img));
    veil_status st = run_checker(&img, check);
    if (st == VEIL_OK) st = veil_h5_image_run(&img, job, ctx);
    veil_h5_image_free(&img);
    if (st != VEIL_OK) veil_error_prefix("%s: ", path);
    return st;
}

static veil_status check_model(hid_t file, void *ctx) {
    (void)ctx;
    veil_model *m = NULL;
    veil_status st = veil_h5_model_job(file, &m);
    veil_model_free(m);
    return st;
}

typedef struct check_args {
    int argc;
    char *const *argv;
} check_args;

static veil_status check_inputs(hid_t file, void *ctx) {
    const check_args *a = ctx;
    return veil_h5_inputs_check(file, a->argc, a->argv);
}

veil_status veil_h5_check_image(const veil_h5_image *img, const char *job, int argc,
                                char *const *argv) {
    check_args a = {argc, argv};
    if (!strcmp(job, "model") && argc == 0) return veil_h5_image_run(img, check_model, NULL);
    if (!strcmp(job, "inputs")) return veil_h5_image_run(img, check_inputs, &a);
    return veil_error(VEIL_ERR_ARG, "veil-h5check: unknown job '%s' (with %d arguments)", job,
                      argc);
}

int veil_h5_has_attr(hid_t obj, const char *name) {
    return H5Aexists(obj, name) > 0;
}

/* Reads a string attribute (fixed or variable length) into a malloc'd copy. */
veil_status veil_h5_attr_str(hid_t obj, const char *path, const char *name, char **out) {
    if (H5Aexists(obj, name) <= 0)
        return veil_error(VEIL_ERR_FORMAT, "%s: missing attribute '%s'", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot open attribute", path, name);
    veil_status st = VEIL_OK;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    char *s = NULL;
    if (t < 0 || H5Tget_class(t) != H5T_STRING) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected a string attribute", path, name);
    } else if (H5Sget_simple_extent_npoints(sp) != 1) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected one string", path, name);
    } else if (H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        char *v = NULL;
        if (H5Aread(a, mt, &v) < 0 || !v) {
            st = veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot read the string", path, name);
        } else {
            s = strdup(v);
            H5free_memory(v);
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(t);
        if (n == 0 || n > (1u << 20)) {
            st = veil_error(VEIL_ERR_FORMAT, "%s/%s: string of %zu bytes", path, name, n);
        } else if (!(s = calloc(n + 1, 1))) {
            st = veil_error(VEIL_ERR_NOMEM, "%s/%s: out of memory", path, name);
        } else {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, n);
            H5Tset_strpad(mt, H5T_STR_NULLPAD);
            if (H5Aread(a, mt, s) < 0)
                st = veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot read the string", path, name);
            s[n] = 0;
            H5Tclose(mt);
        }
    }
    if (st == VEIL_OK && !s) st = veil_error(VEIL_ERR_NOMEM, "%s/%s: out of memory", path, name);
    if (st != VEIL_OK) {
        free(s);
        s = NULL;
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    if (st == VEIL_OK) *out = s;
    return st;
}

/* A 1-D (or scalar) string list attribute. */
static veil_status attr_str_list(hid_t obj, const char *path, const char *name, char ***out,
                                 uint32_t *count) {
    if (H5Aexists(obj, name) <= 0)
        return veil_error(VEIL_ERR_FORMAT, "%s: missing attribute '%s'", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot open attribute", path, name);
    veil_status st = VEIL_OK;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    char **list = NULL;
    if (t < 0 || H5Tget_class(t) != H5T_STRING) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected a list of strings", path, name);
    } else if (n < 1 || n > VEIL_MAX_PORTS || H5Sget_simple_extent_ndims(sp) > 1) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected 1..%d strings in a 1-D list, got %lld",
                        path, name, VEIL_MAX_PORTS, (long long)n);
    } else if (!(list = calloc((size_t)n, sizeof *list))) {
        st = veil_error(VEIL_ERR_NOMEM, "%s/%s: out of memory", path, name);
    } else if (H5Tis_variable_str(t) > 0) {
        char **v = calloc((size_t)n, sizeof *v);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        if (!v || H5Aread(a, mt, v) < 0) {
            st = veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot read the strings", path, name);
        } else {
            for (hssize_t i = 0; i < n; i++) {
                list[i] = strdup(v[i] ? v[i] : "");
                if (!list[i]) st = veil_error(VEIL_ERR_NOMEM, "%s/%s: out of memory", path, name);
            }
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
        }
        free(v);
        H5Tclose(mt);
    } else {
        size_t w = H5Tget_size(t);
        char *buf = (w && w < 4096) ? calloc((size_t)n, w) : NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, w ? w : 1);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        if (!buf || H5Aread(a, mt, buf) < 0) {
            st = veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot read the strings", path, name);
        } else {
            for (hssize_t i = 0; i < n; i++) {
                list[i] = strndup(buf + (size_t)i * w, w);
                if (!list[i]) st = veil_error(VEIL_ERR_NOMEM, "%s/%s: out of memory", path, name);
            }
        }
        free(buf);
        H5Tclose(mt);
    }
    if (st != VEIL_OK && list) {
        for (hssize_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    if (st == VEIL_OK) {
        *out = list;
        *count = (uint32_t)n;
    }
    return st;
}

/* Reads a numeric attribute of exactly `count` values (count 0: any number up
 * to max, returned in *got) as int64 or double. */
static veil_status attr_num(hid_t obj, const char *path, const char *name, hid_t mem_type,
                            void *out, size_t count, size_t max, size_t *got) {
    if (H5Aexists(obj, name) <= 0)
        return veil_error(VEIL_ERR_FORMAT, "%s: missing attribute '%s'", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot open attribute", path, name);
    veil_status st = VEIL_OK;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t cls = H5Tget_class(t);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    int want_int = H5Tequal(mem_type, H5T_NATIVE_INT64) > 0;
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected a number", path, name);
    } else if (want_int && cls != H5T_INTEGER) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected an integer, got a float", path, name);
    } else if (H5Sget_simple_extent_ndims(sp) > 1) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected a scalar or a 1-D array", path, name);
    } else if (count ? (size_t)n != count : (n < 1 || (size_t)n > max)) {
        if (count)
            st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected %zu value(s), got %lld", path, name,
                            count, (long long)n);
        else
            st = veil_error(VEIL_ERR_FORMAT, "%s/%s: expected 1..%zu values, got %lld", path, name,
                            max, (long long)n);
    } else if (H5Aread(a, mem_type, out) < 0) {
        st = veil_error(VEIL_ERR_FORMAT, "%s/%s: cannot read", path, name);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    if (st == VEIL_OK && got) *got = (size_t)n;
    return st;
}

veil_status veil_h5_attr_i64(hid_t obj, const char *path, const char *name, int64_t *out,
                             size_t count) {
    return attr_num(obj, path, name, H5T_NATIVE_INT64, out, count, count, NULL);
}

veil_status veil_h5_attr_f64(hid_t obj, const char *path, const char *name, double *out,
                             size_t count) {
    return attr_num(obj, path, name, H5T_NATIVE_DOUBLE, out, count, count, NULL);
}

/* deflate's largest expansion (a run of one byte, 258 bytes per 2 bits): no
 * chunk of gzip-compressed data (the exporter's, models/veil_export/h5io.py)
 * decodes to more than this many times its stored bytes. Data compressed
 * further (another filter) is refused. */
#define H5_MAX_EXPANSION 1032

/* Whether the file holds the bytes that dataset d (file type t, n values)
 * declares, before anything is allocated for them: its chunks or contiguous
 * block unwritten read as the fill value, so a model file of a few kB could
 * declare 2^31 values and have them allocated and filled here and in
 * veil-h5check (16 GiB). Unfiltered data must be all there; filtered
 * (compressed) data decodes to at most H5_MAX_EXPANSION times its size. */
static veil_status stored_enough(hid_t d, hid_t t, uint64_t n, const char *full) {
    const size_t tsize = H5Tget_size(t);
    hid_t dcpl = H5Dget_create_plist(d);
    const int filters = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (tsize == 0 || filters < 0)
        return veil_error(VEIL_ERR_FORMAT, "%s: cannot read its type or storage", full);
    const uint64_t stored = H5Dget_storage_size(d); /* the chunk index's word */
    const uint64_t most = !filters                                 ? stored
                          : stored > UINT64_MAX / H5_MAX_EXPANSION ? UINT64_MAX
                                                                   : stored * H5_MAX_EXPANSION;
    if (n > most / tsize)
        return veil_error(VEIL_ERR_FORMAT,
                          "%s: %llu values of %zu bytes, but the file stores %llu bytes of them%s "
                          "(a dataset not written, or written in part)",
                          full, (unsigned long long)n, tsize, (unsigned long long)stored,
                          filters ? " compressed" : "");
    return VEIL_OK;
}

/* Reads a whole dataset as int64 (integers) or double (floats), checking its
 * rank (rank_min..rank_max) and element count limit. The shape goes to dims. */
veil_status veil_h5_read(hid_t loc, const char *path, const char *name, int want_float,
                         int rank_min, int rank_max, hsize_t *dims, int *rank, void **out) {
    char full[512];
    snprintf(full, sizeof full, "%s/%s", path, name);
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return veil_error(VEIL_ERR_FORMAT, "%s: missing dataset", full);
    H5O_info_t info;
    if (H5Oget_info_by_name(loc, name, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET)
        return veil_error(VEIL_ERR_FORMAT, "%s: not a dataset", full);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return veil_error(VEIL_ERR_FORMAT, "%s: cannot open dataset", full);
    veil_status st = VEIL_OK;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    H5T_class_t cls = H5Tget_class(t);
    int r = H5Sget_simple_extent_ndims(sp);
    void *buf = NULL;
    if (cls != H5T_INTEGER && !(want_float && cls == H5T_FLOAT)) {
        st = veil_error(VEIL_ERR_FORMAT, "%s: expected %s data", full,
                        want_float ? "numeric" : "integer");
    } else if (r < rank_min || r > rank_max) {
        if (rank_min == rank_max)
            st = veil_error(VEIL_ERR_FORMAT, "%s: expected rank %d, got %d", full, rank_min, r);
        else
            st = veil_error(VEIL_ERR_FORMAT, "%s: expected rank %d..%d, got %d", full, rank_min,
                            rank_max, r);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        uint64_t n = 1;
        for (int i = 0; i < r; i++) {
            if (dims[i] == 0) st = veil_error(VEIL_ERR_FORMAT, "%s: dimension %d is 0", full, i);
            n *= dims[i] ? dims[i] : 1;
            if (n > ((uint64_t)1 << 31))
                st = veil_error(VEIL_ERR_FORMAT, "%s: more than 2^31 elements", full);
            if (st) break;
        }
        if (st == VEIL_OK) st = stored_enough(d, t, n, full);
        int is_float = cls == H5T_FLOAT;
        if (st == VEIL_OK && !(buf = malloc(n * 8)))
            st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory (%llu values)", full,
                            (unsigned long long)n);
        if (st == VEIL_OK && H5Dread(d, is_float ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, H5S_ALL,
                                     H5S_ALL, H5P_DEFAULT, buf) < 0)
            st = veil_error(VEIL_ERR_FORMAT, "%s: cannot read the data", full);
        if (st == VEIL_OK && want_float)
            *rank = is_float ? -r : r; /* negative rank: float data */
        else if (st == VEIL_OK)
            *rank = r;
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    if (st != VEIL_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return VEIL_OK;
}

/* ---- groups ---------------------------------------------------------------- */

typedef struct name_list {
    char **names;
    size_t count, cap;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    name_list *l = data;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **n = realloc(l->names, cap * sizeof *n);
        if (!n) return -1;
        l->names = n;
        l->cap = cap;
    }
    if (!(l->names[l->count] = strdup(name))) return -1;
    l->count++;
    return 0;
}

static void name_list_free(name_list *l) {
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

/* Names of a group's members, sorted by name. */
static veil_status list_group(hid_t file, const char *path, int required, hid_t *group,
                              name_list *out) {
    memset(out, 0, sizeof *out);
    *group = -1;
    if (H5Lexists(file, path, H5P_DEFAULT) <= 0) {
        if (required) return veil_error(VEIL_ERR_FORMAT, "%s: missing group", path);
        return VEIL_OK;
    }
    hid_t g = H5Gopen2(file, path, H5P_DEFAULT);
    if (g < 0) return veil_error(VEIL_ERR_FORMAT, "%s: not a group", path);
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, out) < 0) {
        name_list_free(out);
        H5Gclose(g);
        return veil_error(VEIL_ERR_FORMAT, "%s: cannot list the group", path);
    }
    *group = g;
    return VEIL_OK;
}

static veil_status read_shape(hid_t obj, const char *path, const char *attr, veil_shape *s) {
    int64_t v[VEIL_MAX_RANK];
    size_t n = 0;
    VEIL_TRY(attr_num(obj, path, attr, H5T_NATIVE_INT64, v, 0, VEIL_MAX_RANK, &n));
    s->rank = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 1 || v[i] > (1 << 24))
            return veil_error(VEIL_ERR_FORMAT, "%s/%s: dimension %zu is %lld", path, attr, i,
                              (long long)v[i]);
        s->dim[i] = (uint32_t)v[i];
    }
    return VEIL_OK;
}

static veil_status read_range(hid_t obj, const char *path, const char *attr, int64_t r[2],
                              int required) {
    if (!required && H5Aexists(obj, attr) <= 0) {
        /* not stored: [0, 0], as the compiler reads it (the ranges then
         * come from /calibration alone, as for veil_export 1.0 files) */
        r[0] = r[1] = 0;
        return VEIL_OK;
    }
    VEIL_TRY(veil_h5_attr_i64(obj, path, attr, r, 2));
    if (r[0] > r[1])
        return veil_error(VEIL_ERR_FORMAT, "%s/%s: [%lld, %lld] is not ordered", path, attr,
                          (long long)r[0], (long long)r[1]);
    return VEIL_OK;
}

typedef struct indexed {
    int64_t index;
    size_t pos;
} indexed;

static int cmp_indexed(const void *a, const void *b) {
    const indexed *x = a, *y = b;
    return x->index < y->index   ? -1
           : x->index > y->index ? 1
                                 : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Reads one member of /inputs or /outputs (object o at path, named name)
 * into *elem. */
typedef veil_status (*port_reader)(hid_t o, const char *path, const char *name, void *elem);

/* Reads every member of group (/inputs or /outputs; what: "input" or
 * "output", for messages) into an array of elem_size elements, 1 to 64 of
 * them, in the order of their optional `index` attribute (forward()'s
 * argument order; equal indices keep the group's order). *arr and *count
 * are set before the first member is read, so the model frees whatever was
 * read when this fails. */
static veil_status load_ports(hid_t file, const char *group, const char *what, size_t elem_size,
                              port_reader read_one, void **arr, uint32_t *count) {
    hid_t g;
    name_list names;
    VEIL_TRY(list_group(file, group, 1, &g, &names));
    veil_status st = VEIL_OK;
    indexed *order = calloc(names.count + 1, sizeof *order);
    if (names.count == 0)
        st = veil_error(VEIL_ERR_FORMAT, "%s: the model has no %s", group, what);
    else if (names.count > VEIL_MAX_PORTS)
        st = veil_error(VEIL_ERR_FORMAT, "%s: %zu %ss, at most %d", group, names.count, what,
                        VEIL_MAX_PORTS);
    else if (!order || !(*arr = calloc(names.count, elem_size)))
        st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", group);
    if (st == VEIL_OK) *count = (uint32_t)names.count;
    for (size_t i = 0; st == VEIL_OK && i < names.count; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", group, names.names[i]);
        hid_t o = H5Oopen(g, names.names[i], H5P_DEFAULT);
        if (o < 0) {
            st = veil_error(VEIL_ERR_FORMAT, "%s: cannot open", path);
            break;
        }
        st = read_one(o, path, names.names[i], (char *)*arr + i * elem_size);
        order[i].index = (int64_t)i;
        order[i].pos = i;
        if (st == VEIL_OK && veil_h5_has_attr(o, "index"))
            st = veil_h5_attr_i64(o, path, "index", &order[i].index, 1);
        H5Oclose(o);
    }
    if (st == VEIL_OK) {
        qsort(order, names.count, sizeof *order, cmp_indexed);
        char *sorted = calloc(names.count, elem_size);
        if (!sorted) {
            st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", group);
        } else {
            for (size_t i = 0; i < names.count; i++)
                memcpy(sorted + i * elem_size, (char *)*arr + order[i].pos * elem_size, elem_size);
            free(*arr);
            *arr = sorted;
        }
    }
    free(order);
    name_list_free(&names);
    H5Gclose(g);
    return st;
}

static veil_status read_input(hid_t o, const char *path, const char *name, void *elem) {
    veil_model_input *in = elem;
    int64_t v = 0;
    veil_status st = VEIL_OK;
    if (!(in->name = strdup(name))) st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    if (st == VEIL_OK) st = read_shape(o, path, "shape", &in->shape);
    if (st == VEIL_OK) st = veil_h5_attr_f64(o, path, "scale", &in->scale, 1);
    if (st == VEIL_OK) st = veil_h5_attr_i64(o, path, "zero_point", &in->zero_point, 1);
    if (st == VEIL_OK && (st = veil_h5_attr_i64(o, path, "n_bits", &v, 1)) == VEIL_OK) {
        if (v < 1 || v > VEIL_MAX_BITS)
            st = veil_error(VEIL_ERR_FORMAT, "%s/n_bits: %lld, expected 1..%u", path, (long long)v,
                            VEIL_MAX_BITS);
        in->n_bits = (uint32_t)v;
    }
    if (st == VEIL_OK && (st = veil_h5_attr_i64(o, path, "signed", &v, 1)) == VEIL_OK)
        in->is_signed = v != 0;
    if (st == VEIL_OK) st = read_range(o, path, "range", in->range, 1);
    if (st == VEIL_OK) st = read_range(o, path, "calib_range", in->calib_range, 0);
    return st;
}

static veil_status load_inputs(hid_t file, veil_model *m) {
    return load_ports(file, "/inputs", "input", sizeof *m->inputs, read_input, (void **)&m->inputs,
                      &m->n_inputs);
}

static veil_status load_weights(hid_t o, const char *path, veil_model_layer *l, int rank) {
    hsize_t dims[8];
    int r = 0;
    VEIL_TRY(veil_h5_read(o, path, "weight", 0, rank, rank, dims, &r, (void **)&l->weight));
    l->weight_shape.rank = (uint32_t)r;
    for (int i = 0; i < r; i++) {
        if (dims[i] > (1u << 24))
            return veil_error(VEIL_ERR_FORMAT, "%s/weight: dimension %d is %llu", path, i,
                              (unsigned long long)dims[i]);
        l->weight_shape.dim[i] = (uint32_t)dims[i];
    }
    if (H5Lexists(o, "bias", H5P_DEFAULT) > 0) {
        VEIL_TRY(veil_h5_read(o, path, "bias", 0, 1, 1, dims, &r, (void **)&l->bias));
        if (dims[0] != l->weight_shape.dim[0])
            return veil_error(VEIL_ERR_FORMAT, "%s/bias: %llu values for %u outputs", path,
                              (unsigned long long)dims[0], l->weight_shape.dim[0]);
    }
    return VEIL_OK;
}

static veil_status load_pair(hid_t o, const char *path, const char *name, uint32_t out[2],
                             uint32_t dflt, int required) {
    int64_t v[2];
    if (!required && !veil_h5_has_attr(o, name)) {
        out[0] = out[1] = dflt;
        return VEIL_OK;
    }
    VEIL_TRY(veil_h5_attr_i64(o, path, name, v, 2));
    for (int i = 0; i < 2; i++) {
        if (v[i] < 0 || v[i] > 4096)
            return veil_error(VEIL_ERR_FORMAT, "%s/%s: value %lld out of range 0..4096", path, name,
                              (long long)v[i]);
        out[i] = (uint32_t)v[i];
    }
    return VEIL_OK;
}

static veil_status load_layer(hid_t g, const char *gname, veil_model_layer *l) {
    char path[256];
    snprintf(path, sizeof path, "/layers/%s", gname);
    H5O_info_t info;
    if (H5Oget_info_by_name(g, gname, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_GROUP)
        return veil_error(VEIL_ERR_FORMAT, "%s: not a group", path);
    hid_t o = H5Gopen2(g, gname, H5P_DEFAULT);
    if (o < 0) return veil_error(VEIL_ERR_FORMAT, "%s: cannot open", path);
    veil_status st = VEIL_OK;
    char *op = NULL, *output = NULL;
    if (!(l->name = strdup(gname))) st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    if (st == VEIL_OK) st = veil_h5_attr_str(o, path, "op", &op);
    if (st == VEIL_OK) {
        l->op = veil_op_parse(op);
        const char *us = strchr(gname, '_');
        if (!l->op)
            st = veil_error(VEIL_ERR_FORMAT, "%s/op: unknown op '%s'", path, op);
        else if (!us || strcmp(us + 1, op) != 0)
            st = veil_error(VEIL_ERR_FORMAT, "%s: group name does not end with its op '_%s'", path,
                            op);
    }
    if (st == VEIL_OK) st = attr_str_list(o, path, "inputs", &l->inputs, &l->n_inputs);
    if (st == VEIL_OK && veil_h5_has_attr(o, "output") &&
        (st = veil_h5_attr_str(o, path, "output", &output)) == VEIL_OK && strcmp(output, gname))
        st = veil_error(VEIL_ERR_FORMAT, "%s/output: '%s', expected the group name", path, output);
    if (st == VEIL_OK) st = read_shape(o, path, "shape", &l->out_shape);
    if (st == VEIL_OK) st = read_range(o, path, "range", l->range, 1);
    if (st == VEIL_OK) st = read_range(o, path, "calib_range", l->calib_range, 0);
    if (st == VEIL_OK && veil_h5_has_attr(o, "source"))
        st = veil_h5_attr_str(o, path, "source", &l->source);
    if (st == VEIL_OK) {
        switch (l->op) {
        case VEIL_OP_LINEAR:
            st = load_weights(o, path, l, 2);
            break;
        case VEIL_OP_CONV2D:
            st = load_weights(o, path, l, 4);
            if (st == VEIL_OK) st = load_pair(o, path, "strides", l->stride, 1, 1);
            if (st == VEIL_OK) st = load_pair(o, path, "padding", l->padding, 0, 1);
            if (st == VEIL_OK) {
                l->kernel[0] = l->weight_shape.dim[2];
                l->kernel[1] = l->weight_shape.dim[3];
            }
            break;
        case VEIL_OP_AVGPOOL2D:
        case VEIL_OP_MAXPOOL2D:
            st = load_pair(o, path, "kernel", l->kernel, 1, 1);
            if (st == VEIL_OK) st = load_pair(o, path, "strides", l->stride, 1, 1);
            if (st == VEIL_OK) st = load_pair(o, path, "padding", l->padding, 0, 0);
            break;
        case VEIL_OP_CONCAT: {
            int64_t axis = 0;
            if (veil_h5_has_attr(o, "axis")) st = veil_h5_attr_i64(o, path, "axis", &axis, 1);
            if (st == VEIL_OK && axis != 0)
                st = veil_error(VEIL_ERR_FORMAT, "%s/axis: %lld, only 0 is supported", path,
                                (long long)axis);
            break;
        }
        case VEIL_OP_LUT: {
            int64_t per_channel = 0, cov = 1;
            hsize_t dims[8];
            int r = 0;
            st = veil_h5_attr_i64(o, path, "in_min", &l->in_min, 1);
            if (st == VEIL_OK) st = veil_h5_attr_i64(o, path, "in_max", &l->in_max, 1);
            if (st == VEIL_OK && l->in_min > l->in_max)
                st = veil_error(VEIL_ERR_FORMAT, "%s/in_min: %lld is larger than in_max %lld", path,
                                (long long)l->in_min, (long long)l->in_max);
            if (st == VEIL_OK && veil_h5_has_attr(o, "per_channel"))
                st = veil_h5_attr_i64(o, path, "per_channel", &per_channel, 1);
            if (st == VEIL_OK && veil_h5_has_attr(o, "covers_worst_case"))
                st = veil_h5_attr_i64(o, path, "covers_worst_case", &cov, 1);
            l->covers_worst_case = cov != 0;
            if (st == VEIL_OK && veil_h5_has_attr(o, "scale"))
                st = veil_h5_attr_f64(o, path, "scale", &l->out_scale, 1);
            if (st == VEIL_OK)
                st = veil_h5_read(o, path, "table", 0, per_channel ? 2 : 1, per_channel ? 2 : 1,
                                  dims, &r, (void **)&l->table);
            if (st == VEIL_OK) {
                uint64_t want =
                    (uint64_t)l->in_max - (uint64_t)l->in_min + 1; /* no int64 overflow */
                uint64_t got = dims[r - 1];
                l->n_tables = per_channel ? (uint32_t)dims[0] : 1;
                l->per_channel = per_channel != 0;
                if (got != want)
                    st = veil_error(VEIL_ERR_FORMAT,
                                    "%s/table: %llu entries per table, but [in_min, in_max] = "
                                    "[%lld, %lld] needs %llu",
                                    path, (unsigned long long)got, (long long)l->in_min,
                                    (long long)l->in_max, (unsigned long long)want);
            }
            break;
        }
        case VEIL_OP_ADD:
        case VEIL_OP_SUB:
        case VEIL_OP_MUL:
        case VEIL_OP_FLATTEN:
        case VEIL_OP_RESHAPE:
            break;
        }
    }
    free(op);
    free(output);
    H5Gclose(o);
    return st;
}

static veil_status load_layers(hid_t file, veil_model *m) {
    hid_t g;
    name_list names;
    VEIL_TRY(list_group(file, "/layers", 1, &g, &names));
    veil_status st = VEIL_OK;
    if (names.count > 100000)
        st = veil_error(VEIL_ERR_FORMAT, "/layers: %zu layers", names.count);
    else if (names.count && !(m->layers = calloc(names.count, sizeof *m->layers)))
        st = veil_error(VEIL_ERR_NOMEM, "/layers: out of memory");
    for (size_t i = 0; st == VEIL_OK && i < names.count; i++) {
        const char *nm = names.names[i];
        /* NNNN_op, NNNN = i */
        if (strlen(nm) < 6 || nm[4] != '_' || strspn(nm, "0123456789") != 4 ||
            strtol(nm, NULL, 10) != (long)i) {
            st = veil_error(VEIL_ERR_FORMAT,
                            "/layers/%s: expected the name %04zu_<op> (layers numbered from 0000)",
                            nm, i);
            break;
        }
        m->n_layers = (uint32_t)(i + 1);
        st = load_layer(g, nm, &m->layers[i]);
    }
    name_list_free(&names);
    H5Gclose(g);
    return st;
}

static veil_status read_output(hid_t o, const char *path, const char *name, void *elem) {
    veil_model_output *out = elem;
    veil_status st = VEIL_OK;
    double sc[4096], zp[4096];
    size_t n_sc = 0, n_zp = 0;
    if (!(out->name = strdup(name))) st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
    if (st == VEIL_OK) st = veil_h5_attr_str(o, path, "tensor", &out->source);
    if (st == VEIL_OK) st = read_shape(o, path, "shape", &out->shape);
    if (st == VEIL_OK) st = attr_num(o, path, "scale", H5T_NATIVE_DOUBLE, sc, 0, 4096, &n_sc);
    if (st == VEIL_OK) st = attr_num(o, path, "zero_point", H5T_NATIVE_DOUBLE, zp, 0, 4096, &n_zp);
    if (st == VEIL_OK && n_sc != n_zp)
        st = veil_error(VEIL_ERR_FORMAT, "%s/zero_point: %zu values, but scale has %zu", path, n_zp,
                        n_sc);
    if (st == VEIL_OK) {
        out->scale = malloc(n_sc * sizeof *out->scale);
        out->zero_point = malloc(n_sc * sizeof *out->zero_point);
        if (!out->scale || !out->zero_point) {
            st = veil_error(VEIL_ERR_NOMEM, "%s: out of memory", path);
        } else {
            memcpy(out->scale, sc, n_sc * sizeof *sc);
            memcpy(out->zero_point, zp, n_sc * sizeof *zp);
            out->n_scale = (uint32_t)n_sc;
        }
    }
    return st;
}

static veil_status load_outputs(hid_t file, veil_model *m) {
    return load_ports(file, "/outputs", "output", sizeof *m->outputs, read_output,
                      (void **)&m->outputs, &m->n_outputs);
}

/* Reads count-first sample arrays /<group>/<name> for every input (or output). */
static veil_status load_sample_arrays(hid_t file, const char *group, uint32_t n,
                                      const char *const *names, const veil_shape *const *shapes,
                                      int want_float, size_t *count, void ***out) {
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0) return veil_error(VEIL_ERR_FORMAT, "%s: not a group", group);
    void **arr = calloc(n, sizeof *arr);
    veil_status st = arr ? VEIL_OK : veil_error(VEIL_ERR_NOMEM, "%s: out of memory", group);
    for (uint32_t i = 0; st == VEIL_OK && i < n; i++) {
        hsize_t dims[8];
        int r = 0;
        const veil_shape *s = shapes[i];
        st = veil_h5_read(g, group, names[i], want_float, (int)s->rank + 1, (int)s->rank + 1, dims,
                          &r, &arr[i]);
        if (st != VEIL_OK) break;
        /* the dataset's own shape first: the conversion below walks the
         * tensor's shape, which a file may contradict */
        for (uint32_t d = 0; st == VEIL_OK && d < s->rank; d++)
            if (dims[d + 1] != s->dim[d]) {
                char b[96];
                st = veil_error(VEIL_ERR_FORMAT,
                                "%s/%s: sample shape differs from the tensor's %s in dimension %u",
                                group, names[i], veil_shape_str(s, b, sizeof b), d);
            }
        if (st == VEIL_OK && want_float && r > 0) {
            /* integer data where floats were expected: convert */
            double *d = arr[i];
            int64_t *v = arr[i];
            size_t tot = (size_t)dims[0] * veil_shape_size(s);
            for (size_t j = 0; j < tot; j++)
                d[j] = (double)v[j];
        }
        if (st == VEIL_OK && *count && dims[0] != *count)
            st = veil_error(VEIL_ERR_FORMAT, "%s/%s: %llu samples, expected %zu", group, names[i],
                            (unsigned long long)dims[0], *count);
        if (st == VEIL_OK) *count = (size_t)dims[0];
    }
    H5Gclose(g);
    if (st != VEIL_OK) {
        for (uint32_t i = 0; arr && i < n; i++)
            free(arr[i]);
        free(arr);
        return st;
    }
    *out = arr;
    return VEIL_OK;
}

/* A regressor's /golden/labels: float64 (or integer) targets [S] or [S, K],
 * K the values of output 0 ([S] for one), into m->golden.targets. */
static veil_status load_targets(hid_t file, veil_model *m, size_t count) {
    hsize_t dims[8];
    int r = 0;
    void *data = NULL;
    hid_t gg = H5Gopen2(file, "/golden", H5P_DEFAULT);
    veil_status st = veil_h5_read(gg, "/golden", "labels", 1, 1, 2, dims, &r, &data);
    H5Gclose(gg);
    VEIL_TRY(st);
    st = veil_targets_take("/golden/labels", m, r, (size_t)dims[0],
                           r == 2 || r == -2 ? (size_t)dims[1] : 0, count, &data,
                           &m->golden.targets);
    free(data);
    return st;
}

static veil_status load_samples(hid_t file, veil_model *m) {
    const char *in_names[64], *out_names[64];
    const veil_shape *in_shapes[64], *out_shapes[64];
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        in_names[i] = m->inputs[i].name;
        in_shapes[i] = &m->inputs[i].shape;
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        out_names[i] = m->outputs[i].name;
        out_shapes[i] = &m->outputs[i].shape;
    }
    if (H5Lexists(file, "/calibration", H5P_DEFAULT) > 0) {
        size_t count = 0;
        VEIL_TRY(load_sample_arrays(file, "/calibration", m->n_inputs, in_names, in_shapes, 0,
                                    &count, (void ***)&m->calibration.inputs));
        m->calibration.count = count;
    }
    if (H5Lexists(file, "/golden", H5P_DEFAULT) > 0) {
        size_t count = 0;
        veil_model_samples *g = &m->golden;
        if (H5Lexists(file, "/golden/inputs", H5P_DEFAULT) <= 0)
            return veil_error(VEIL_ERR_FORMAT, "/golden/inputs: missing group");
        VEIL_TRY(load_sample_arrays(file, "/golden/inputs", m->n_inputs, in_names, in_shapes, 0,
                                    &count, (void ***)&g->inputs));
        g->count = count;
        if (H5Lexists(file, "/golden/outputs", H5P_DEFAULT) <= 0)
            return veil_error(VEIL_ERR_FORMAT, "/golden/outputs: missing group");
        VEIL_TRY(load_sample_arrays(file, "/golden/outputs", m->n_outputs, out_names, out_shapes, 0,
                                    &count, (void ***)&g->outputs));
        if (H5Lexists(file, "/golden/float_outputs", H5P_DEFAULT) > 0)
            VEIL_TRY(load_sample_arrays(file, "/golden/float_outputs", m->n_outputs, out_names,
                                        out_shapes, 1, &count, (void ***)&g->float_outputs));
        if (H5Lexists(file, "/golden/labels", H5P_DEFAULT) > 0 && veil_model_is_regression(m)) {
            VEIL_TRY(load_targets(file, m, count));
        } else if (H5Lexists(file, "/golden/labels", H5P_DEFAULT) > 0) {
            hsize_t dims[8];
            int r = 0;
            hid_t gg = H5Gopen2(file, "/golden", H5P_DEFAULT);
            veil_status st =
                veil_h5_read(gg, "/golden", "labels", 0, 1, 1, dims, &r, (void **)&g->labels);
            H5Gclose(gg);
            VEIL_TRY(st);
            if (dims[0] != count)
                return veil_error(VEIL_ERR_FORMAT, "/golden/labels: %llu labels for %zu samples",
                                  (unsigned long long)dims[0], count);
        }
    }
    return VEIL_OK;
}

static veil_status load_root(hid_t file, veil_model *m) {
    char *fmt = NULL;
    VEIL_TRY(veil_h5_attr_str(file, "", "format", &fmt));
    int ok = strcmp(fmt, "veil-model") == 0;
    veil_status st = VEIL_OK;
    if (!ok) st = veil_error(VEIL_ERR_FORMAT, "/format: '%s', expected 'veil-model'", fmt);
    free(fmt);
    VEIL_TRY(st);
    int64_t version = 0;
    VEIL_TRY(veil_h5_attr_i64(file, "", "version", &version, 1));
    if (version != 1)
        return veil_error(VEIL_ERR_UNSUPPORTED, "/version: %lld, this veil reads version 1",
                          (long long)version);
    m->version = 1;
    VEIL_TRY(veil_h5_attr_str(file, "", "name", &m->name));
    if (veil_h5_has_attr(file, "producer"))
        VEIL_TRY(veil_h5_attr_str(file, "", "producer", &m->producer));
    if (veil_h5_has_attr(file, "task")) {
        VEIL_TRY(veil_h5_attr_str(file, "", "task", &m->task));
        /* the value quoted up to 40 bytes: a long one (up to 1 MiB) would
         * push the rest of the message past the error buffer */
        if (strcmp(m->task, "classification") && strcmp(m->task, "regression"))
            return veil_error(VEIL_ERR_UNSUPPORTED,
                              "/task: '%.40s'%s, this veil reads 'classification' or 'regression'",
                              m->task, strlen(m->task) > 40 ? " (cut)" : "");
    }
    const struct {
        const char *name;
        double *to;
    } metrics[] = {
        {"brevitas_accuracy", &m->brevitas_accuracy},
        {"int_accuracy", &m->int_accuracy},
        {"brevitas_rmse", &m->brevitas_rmse},
        {"int_rmse", &m->int_rmse},
        {"brevitas_r2", &m->brevitas_r2},
        {"int_r2", &m->int_r2},
        {"int_vs_brevitas_rmse", &m->int_vs_brevitas_rmse},
        {"int_vs_brevitas_max_error", &m->int_vs_brevitas_max_error},
    };
    for (size_t i = 0; i < sizeof metrics / sizeof *metrics; i++)
        if (veil_h5_has_attr(file, metrics[i].name))
            VEIL_TRY(veil_h5_attr_f64(file, "", metrics[i].name, metrics[i].to, 1));
    if (veil_h5_has_attr(file, "test_samples"))
        VEIL_TRY(veil_h5_attr_i64(file, "", "test_samples", &m->test_samples, 1));
    return VEIL_OK;
}

/* The loads below run on a file image (the bytes read once, so the child and
 * this process see the same file), opened with the core driver: libhdf5 does
 * no file I/O of its own. */
veil_status veil_h5_model_job(hid_t file, void *ctx) {
    veil_model **out = ctx;
    veil_model *m = NULL;
    veil_status st = veil_model_new(&m);
    if (st == VEIL_OK) st = load_root(file, m);
    if (st == VEIL_OK) st = load_inputs(file, m);
    if (st == VEIL_OK) st = load_layers(file, m);
    if (st == VEIL_OK) st = load_outputs(file, m);
    if (st == VEIL_OK) st = load_samples(file, m);
    if (st == VEIL_OK) st = veil_model_validate(m);
    if (st != VEIL_OK) {
        veil_model_free(m);
        return st;
    }
    *out = m;
    return VEIL_OK;
}

veil_status veil_model_load(const char *path, veil_model **out) {
    if (!path || !out) return veil_error(VEIL_ERR_ARG, "veil_model_load: NULL argument");
    veil_model *m = NULL;
    static const veil_h5_check check = {"model", 0, NULL};
    VEIL_TRY(veil_h5_read_untrusted(path, &check, veil_h5_model_job, &m));
    *out = m;
    return VEIL_OK;
}

veil_status veil_model_load_image_unguarded(const void *bytes, size_t len, const char *name,
                                            veil_model **out) {
    if (!bytes || !name || !out)
        return veil_error(VEIL_ERR_ARG, "veil_model_load_image_unguarded: NULL argument");
    veil_h5_image img = {(void *)bytes, len, name};
    veil_model *m = NULL;
    veil_status st = veil_h5_image_run(&img, veil_h5_model_job, &m);
    if (st != VEIL_OK) {
        veil_error_prefix("%s: ", name);
        return st;
    }
    *out = m;
    return VEIL_OK;
}
