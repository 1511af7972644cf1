// LABELS: unit server
// LINKS: veil_keystore
/* Temporaries left by a crash (issue 15): veil_atomic_file_sweep removes only
 * this module's own temporary names (NAME.tmpXXXXXX), only regular files of
 * this user, only ones older than the minimum age; the key store sweeps its
 * directory at open (a minute, plus its old fixed name <id>.vek.tmp), writes
 * keys through atomic_file (no temporary survives a put), and never serves a
 * temporary: a key id names <id>.vek only. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"
#include "veil/atomic_file.h"
#include "veil/keystore.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

static const char ID[] = "0123456789abcdef0123456789abcdef";

/* Creates dir/name with some bytes, modified age_s seconds ago. */
static void plant(const char *name, long age_s) {
    CU_ASSERT_EQUAL_FATAL(veil_test_plant_file(g_dir, name, age_s), 0);
}

static int exists(const char *name) {
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return lstat(p, &st) == 0;
}

static size_t count_entries(void) {
    DIR *d = opendir(g_dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void make_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/veil_sweep_XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(g_dir));
}

static void remove_dir(void) {
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    if (d) closedir(d);
    rmdir(g_dir);
}

static void test_is_temp(void) {
    static const struct {
        const char *name;
        int want;
    } cases[] = {
        {"out.csv.tmpAb3xZ9", 1},
        {"k.vek.tmp000000", 1},
        {".tmpABCDEF", 0} /* no name */,
        {"out.csv.tmpAb3xZ", 0},
        {"out.csv.tmp", 0},
        {"out.csv.tmpAb3x-9", 0},
        {"out.csv", 0},
        {"tmpABCDEF", 0},
        {"x.tmpABCDEFG", 0},
        {"", 0},
    };
    int ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++, ran++) {
        if (veil_atomic_file_is_temp(cases[i].name) != cases[i].want)
            printf("\n  is_temp(\"%s\") != %d", cases[i].name, cases[i].want);
        CU_ASSERT_EQUAL(veil_atomic_file_is_temp(cases[i].name), cases[i].want);
    }
    CU_ASSERT_EQUAL(ran, 10);
    CU_ASSERT_EQUAL(veil_atomic_file_is_temp(NULL), 0);
}

static void test_sweep(void) {
    make_dir();
    plant("old.csv.tmpAb3xZ9", 600); /* removed */
    plant("young.csv.tmpQQQQQQ", 5); /* a write in progress: kept */
    plant("result.csv", 600);        /* not a temporary: kept */
    plant("notes.tmp", 600);         /* not our pattern: kept */
    plant(ID, 600);                  /* kept */
    char sub[512], link[512], target[512];
    snprintf(sub, sizeof sub, "%s/dir.tmpABCDEF", g_dir); /* a directory: kept */
    CU_ASSERT_EQUAL(mkdir(sub, 0700), 0);
    snprintf(target, sizeof target, "%s/result.csv", g_dir);
    snprintf(link, sizeof link, "%s/link.tmpABCDEF", g_dir); /* a link: kept */
    CU_ASSERT_EQUAL(symlink(target, link), 0);
    CU_ASSERT_EQUAL(veil_atomic_file_sweep(g_dir, 60, NULL), 1);
    CU_ASSERT(!exists("old.csv.tmpAb3xZ9"));
    CU_ASSERT(exists("young.csv.tmpQQQQQQ") && exists("result.csv") && exists("notes.tmp"));
    CU_ASSERT(exists("dir.tmpABCDEF") && exists("link.tmpABCDEF") && exists(ID));
    CU_ASSERT(exists("result.csv")); /* the link's target too */
    /* age 0: the young one goes as well */
    CU_ASSERT_EQUAL(veil_atomic_file_sweep(g_dir, 0, NULL), 1);
    CU_ASSERT(!exists("young.csv.tmpQQQQQQ"));
    CU_ASSERT_EQUAL(count_entries(), 5u);
    /* a directory that cannot be listed: -1 and its name */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing", g_dir);
    CU_ASSERT_EQUAL(veil_atomic_file_sweep(missing, 60, NULL), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), missing));
    rmdir(sub);
    remove_dir();
}

static void test_keystore_sweeps_and_never_serves(void) {
    make_dir();
    char name[128];
    snprintf(name, sizeof name, "%s.vek.tmpAAAAAA", ID); /* old: removed */
    plant(name, 120);
    snprintf(name, sizeof name, "%s.vek.tmp", ID); /* old fixed name, old: removed */
    plant(name, 120);
    static const char other[] = "fedcba9876543210fedcba9876543210";
    snprintf(name, sizeof name, "%s.vek.tmpBBBBBB", other); /* young: kept, never served */
    plant(name, 1);
    plant("zz.vek.tmp", 120); /* not a key id: not ours, kept */
    veil_keystore *ks = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_keystore_open(g_dir, &ks), VEIL_OK);
    CU_ASSERT_EQUAL(veil_keystore_swept(ks), 2);
    CU_ASSERT_EQUAL(count_entries(), 2u);
    CU_ASSERT(exists(name) && exists("zz.vek.tmp"));
    veil_keystore_info info;
    CU_ASSERT_EQUAL(veil_keystore_header(ks, other, &info, NULL), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_keystore_verify(ks, other, &info), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_keystore_header(ks, ID, &info, NULL), VEIL_ERR_ARG);
    /* a put leaves exactly <id>.vek, mode 0600, and no temporary */
    size_t len = VEIL_SERIAL_HEADER_BYTES + VEIL_SERIAL_CHECKSUM_BYTES + 64;
    uint8_t *buf = calloc(1, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memcpy(buf, "VEILEK01", 8);
    char id[VEIL_KEY_ID_CHARS + 1];
    CU_ASSERT_EQUAL(veil_keystore_put(ks, buf, len, id), VEIL_OK);
    free(buf);
    snprintf(name, sizeof name, "%s.vek", id);
    CU_ASSERT(exists(name));
    CU_ASSERT_EQUAL(count_entries(), 3u);
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    CU_ASSERT(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600 && (size_t)st.st_size == len);
    veil_keystore_free(ks);
    remove_dir();
}

/* The key store wraps the sweep's message in its own (keystore.c): an
 * argument of veil_error may be veil_error_message() itself. Formatting into
 * the buffer being read printed "key store D: key store D: t: ..." once. */
static void test_error_wraps_its_own_message(void) {
    veil_error(VEIL_ERR_IO, "%s: cannot list: %s", "/srv/keys", "Permission denied");
    CU_ASSERT_EQUAL(veil_error(VEIL_ERR_IO, "key store %s: %s", "/srv/keys", veil_error_message()),
                    VEIL_ERR_IO);
    CU_ASSERT_STRING_EQUAL(veil_error_message(),
                           "key store /srv/keys: /srv/keys: cannot list: Permission denied");
    veil_error_clear();
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("tmp_sweep", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_is_temp);
    VEIL_ADD_TEST(s, test_sweep);
    VEIL_ADD_TEST(s, test_keystore_sweeps_and_never_serves);
    VEIL_ADD_TEST(s, test_error_wraps_its_own_message);
    return veil_test_run();
}
