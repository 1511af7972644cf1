// LABELS: unit server
// LINKS: veil_keystore
/* The key store's life cycle (veil/keystore.h), on its own (no model):
 *   its size limit (veil_keystore_set_max_mb): a put past it is refused
 *   VEIL_ERR_RANGE and writes nothing, a limit under one key is refused;
 *   delete: the id is unknown after it, a second delete says so, and a file
 *   a request opened before (veil_keystore_header's fd) is still read;
 *   use marks a key (its mtime) at most once a minute;
 *   prune: keys unused past the TTL go, used ones stay, quarantined files
 *   are kept a day, crashed writers' temporaries go after a day. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"
#include "veil/keystore.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

static void make_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/veil-test-keystore-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(g_dir));
}

static void path_of(const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static int exists(const char *name) {
    char p[512];
    path_of(name, p, sizeof p);
    return access(p, F_OK) == 0;
}

static size_t count_keys(const veil_keystore *ks) {
    veil_keystore_usage u = {0, 0};
    CU_ASSERT_EQUAL(veil_keystore_usage_read(ks, &u), VEIL_OK);
    return (size_t)u.keys;
}

/* Sets name's modification time age_s seconds back. */
static void age(const char *name, long age_s) {
    char p[512];
    path_of(name, p, sizeof p);
    CU_ASSERT_EQUAL(veil_test_age_file(p, age_s), 0);
}

static time_t mtime(const char *name) {
    char p[512];
    struct stat st;
    path_of(name, p, sizeof p);
    return stat(p, &st) == 0 ? st.st_mtime : 0;
}

/* A well-formed file of len bytes (magic, checksum) that is no evaluation
 * key the deserializer reads: loading it fails VEIL_ERR_FORMAT, not
 * VEIL_ERR_ARG (unknown), which tells "the bytes were read" apart. */
static uint8_t *fake_key(size_t len) {
    uint8_t *b = calloc(1, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    memcpy(b, "VEILEK01", 8);
    crypto_generichash(b + len - VEIL_SERIAL_CHECKSUM_BYTES, VEIL_SERIAL_CHECKSUM_BYTES, b,
                       len - VEIL_SERIAL_CHECKSUM_BYTES, NULL, 0);
    return b;
}

static void put(veil_keystore *ks, size_t len, char id[VEIL_KEY_ID_CHARS + 1], char *name) {
    uint8_t *b = fake_key(len);
    CU_ASSERT_EQUAL_FATAL(veil_keystore_put(ks, b, len, id), VEIL_OK);
    free(b);
    snprintf(name, VEIL_KEY_ID_CHARS + 5, "%s.vek", id);
}

static void test_limit(void) {
    make_dir();
    veil_keystore *ks = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_keystore_open(g_dir, &ks), VEIL_OK);
    const size_t key = 600u << 10; /* one fits in 1 MiB, two do not */
    CU_ASSERT_EQUAL(veil_keystore_set_max_mb(ks, 1, (size_t)2 << 20), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "less than one evaluation key"));
    CU_ASSERT_EQUAL_FATAL(veil_keystore_set_max_mb(ks, 1, key), VEIL_OK);
    char id[VEIL_KEY_ID_CHARS + 1], name[64];
    put(ks, key, id, name);
    CU_ASSERT_EQUAL(veil_keystore_room(ks, key), VEIL_ERR_RANGE);
    uint8_t *b = fake_key(key);
    CU_ASSERT_EQUAL(veil_keystore_put(ks, b, key, id), VEIL_ERR_RANGE);
    const char *msg = veil_error_message();
    printf("\n  full: %s", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "limit of 1 MiB"));
    CU_ASSERT_PTR_NULL(strstr(msg, g_dir)); /* never the path */
    CU_ASSERT_EQUAL(count_keys(ks), 1u);
    /* 0: unbounded */
    CU_ASSERT_EQUAL(veil_keystore_set_max_mb(ks, 0, key), VEIL_OK);
    CU_ASSERT_EQUAL(veil_keystore_put(ks, b, key, id), VEIL_OK);
    CU_ASSERT_EQUAL(count_keys(ks), 2u);
    free(b);
    veil_keystore_free(ks);
    veil_test_rm_rf(g_dir);
}

static void test_delete_and_open_file(void) {
    make_dir();
    veil_keystore *ks = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_keystore_open(g_dir, &ks), VEIL_OK);
    char id[VEIL_KEY_ID_CHARS + 1], name[64];
    put(ks, 4096, id, name);
    veil_keystore_info info;
    int fd = -1;
    CU_ASSERT_EQUAL_FATAL(veil_keystore_header(ks, id, &info, &fd), VEIL_OK);
    CU_ASSERT(fd >= 0);
    CU_ASSERT_EQUAL(info.bytes, 4096u);
    CU_ASSERT_EQUAL(veil_keystore_delete(ks, id), VEIL_OK);
    CU_ASSERT(!exists(name));
    CU_ASSERT_EQUAL(veil_keystore_deleted(ks), 1u);
    CU_ASSERT_EQUAL(veil_keystore_delete(ks, id), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "no such evaluation key"));
    CU_ASSERT_EQUAL(veil_keystore_header(ks, id, &info, NULL), VEIL_ERR_ARG);
    veil_eval_key *ek = NULL;
    /* by id: gone; through the file opened before: its bytes are read (and
     * are no real key: FORMAT, not ARG), twice (read from its start) */
    CU_ASSERT_EQUAL(veil_keystore_load(ks, id, -1, NULL, VEIL_KEY_STANDARD, &ek), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_keystore_load(ks, id, fd, NULL, VEIL_KEY_STANDARD, &ek), VEIL_ERR_FORMAT);
    CU_ASSERT_EQUAL(veil_keystore_load(ks, id, fd, NULL, VEIL_KEY_STANDARD, &ek), VEIL_ERR_FORMAT);
    CU_ASSERT(!exists(name)); /* nothing quarantined or written back */
    close(fd);
    CU_ASSERT_EQUAL(veil_keystore_delete(ks, "not-an-id"), VEIL_ERR_ARG);
    veil_keystore_free(ks);
    veil_test_rm_rf(g_dir);
}

static void test_use_marks_key(void) {
    make_dir();
    veil_keystore *ks = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_keystore_open(g_dir, &ks), VEIL_OK);
    char id[VEIL_KEY_ID_CHARS + 1], name[64];
    put(ks, 4096, id, name);
    veil_keystore_info info;
    /* used 2 h ago: marked now */
    age(name, 7200);
    CU_ASSERT_EQUAL(veil_keystore_header(ks, id, &info, NULL), VEIL_OK);
    CU_ASSERT(time(NULL) - mtime(name) < 10);
    /* used 20 s ago: left alone (no metadata write per request) */
    age(name, 20);
    const time_t before = mtime(name);
    CU_ASSERT_EQUAL(veil_keystore_header(ks, id, &info, NULL), VEIL_OK);
    CU_ASSERT_EQUAL(mtime(name), before);
    /* verify (GET /v1/keys/<id>) is not a use */
    age(name, 7200);
    CU_ASSERT_EQUAL(veil_keystore_verify(ks, id, &info), VEIL_OK);
    CU_ASSERT(time(NULL) - mtime(name) >= 7200 - 10);
    veil_keystore_free(ks);
    veil_test_rm_rf(g_dir);
}

static void plant(const char *name, long age_s) {
    CU_ASSERT_EQUAL_FATAL(veil_test_plant_file(g_dir, name, age_s), 0);
}

static void test_prune(void) {
    make_dir();
    veil_keystore *ks = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_keystore_open(g_dir, &ks), VEIL_OK);
    char old_id[VEIL_KEY_ID_CHARS + 1], old[64], used_id[VEIL_KEY_ID_CHARS + 1], used[64];
    char fresh_id[VEIL_KEY_ID_CHARS + 1], fresh[64];
    put(ks, 4096, old_id, old);
    put(ks, 4096, used_id, used);
    put(ks, 4096, fresh_id, fresh);
    age(old, 7200);
    age(used, 7200);
    veil_keystore_info info;
    CU_ASSERT_EQUAL(veil_keystore_header(ks, used_id, &info, NULL), VEIL_OK); /* used now */
    /* quarantined now, of a key last used long ago: kept (a day, by ctime) */
    char bad[96], tmp_old[96], tmp_young[96];
    snprintf(bad, sizeof bad, "%s.corrupt", fresh);
    char p[512], q[512];
    path_of(fresh, p, sizeof p);
    path_of(bad, q, sizeof q);
    CU_ASSERT_EQUAL(veil_keystore_quarantine(ks, fresh_id), VEIL_OK);
    age(bad, 3 * 86400);
    snprintf(tmp_old, sizeof tmp_old, "%s.vek.tmpAAAAAA", old_id);
    snprintf(tmp_young, sizeof tmp_young, "%s.vek.tmpBBBBBB", used_id);
    plant(tmp_old, 2 * 86400);
    plant(tmp_young, 3600);        /* a write on a slow mount, maybe: kept */
    plant("notes.txt", 3 * 86400); /* not the store's: kept */
    veil_keystore_pruned n;
    CU_ASSERT_EQUAL(veil_keystore_prune(ks, 0, &n), VEIL_OK); /* 0: nothing */
    CU_ASSERT(exists(old) && exists(tmp_old));
    CU_ASSERT_EQUAL(veil_keystore_prune(ks, 3600, &n), VEIL_OK);
    CU_ASSERT_EQUAL(n.keys, 1u);
    CU_ASSERT_EQUAL(n.corrupt, 0u);
    CU_ASSERT_EQUAL(n.temporaries, 1u);
    CU_ASSERT(!exists(old));
    CU_ASSERT(exists(used));
    CU_ASSERT(exists(bad));
    CU_ASSERT(!exists(tmp_old));
    CU_ASSERT(exists(tmp_young));
    CU_ASSERT(exists("notes.txt"));
    CU_ASSERT_EQUAL(veil_keystore_pruned_keys(ks), 1u);
    CU_ASSERT_EQUAL(veil_keystore_header(ks, old_id, &info, NULL), VEIL_ERR_ARG);
    /* again: nothing more */
    CU_ASSERT_EQUAL(veil_keystore_prune(ks, 3600, &n), VEIL_OK);
    CU_ASSERT_EQUAL(n.keys + n.corrupt + n.temporaries, 0u);
    veil_keystore_free(ks);
    veil_test_rm_rf(g_dir);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("keystore_lifecycle", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_limit);
    VEIL_ADD_TEST(s, test_delete_and_open_file);
    VEIL_ADD_TEST(s, test_use_marks_key);
    VEIL_ADD_TEST(s, test_prune);
    return veil_test_run();
}
