// LABELS: unit triton
// LINKS: veil_triton_abi
/* test_triton_abi.c — libtriton_veil.so as Triton sees it: it exports the
 * seven TRITONBACKEND_* entry points and nothing of veil, and
 * TRITONBACKEND_Initialize checks the server's TRITONBACKEND API version
 * (major equal, minor at least 1.19's) and refuses another with a message
 * naming both versions. Triton's side is a stand-in (host/triton/fake_triton.c)
 * loaded RTLD_GLOBAL first, as tritonserver's symbols would be. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "triton_api.h"

typedef TRITONSERVER_Error *(*init_fn)(TRITONBACKEND_Backend *);
typedef void (*set_version_fn)(uint32_t, uint32_t);
typedef const char *(*msg_fn)(TRITONSERVER_Error *);
typedef void (*del_fn)(TRITONSERVER_Error *);

static void *g_fake, *g_be;

static int suite_init(void) {
    g_fake = dlopen(VEIL_FAKE_TRITON_SO, RTLD_NOW | RTLD_GLOBAL);
    if (!g_fake) fprintf(stderr, "%s\n", dlerror());
    g_be = g_fake ? dlopen(VEIL_TRITON_BACKEND_SO, RTLD_LAZY | RTLD_LOCAL) : NULL;
    if (g_fake && !g_be) fprintf(stderr, "%s\n", dlerror());
    return g_be ? 0 : -1;
}

static int suite_clean(void) {
    if (g_be) dlclose(g_be);
    if (g_fake) dlclose(g_fake);
    return 0;
}

static void test_exports(void) {
    static const char *const k_entry[] = {"TRITONBACKEND_Initialize",
                                          "TRITONBACKEND_Finalize",
                                          "TRITONBACKEND_ModelInitialize",
                                          "TRITONBACKEND_ModelFinalize",
                                          "TRITONBACKEND_ModelInstanceInitialize",
                                          "TRITONBACKEND_ModelInstanceFinalize",
                                          "TRITONBACKEND_ModelInstanceExecute"};
    for (size_t i = 0; i < sizeof k_entry / sizeof *k_entry; i++)
        CU_ASSERT_PTR_NOT_NULL(dlsym(g_be, k_entry[i]));
    /* veil's own symbols stay inside the library */
    CU_ASSERT_PTR_NULL(dlsym(g_be, "veil_program_compile"));
    CU_ASSERT_PTR_NULL(dlsym(g_be, "veil_keystore_open"));
    CU_ASSERT_PTR_NULL(dlsym(g_be, "vt_config_parse"));
}

/* Initialize against a Triton reporting major.minor: NULL (accepted) or the
 * error's message, copied into msg. */
static int init_with(uint32_t major, uint32_t minor, char *msg, size_t cap) {
    set_version_fn set = (set_version_fn)dlsym(g_fake, "fake_triton_set_version");
    init_fn init = (init_fn)dlsym(g_be, "TRITONBACKEND_Initialize");
    msg_fn m = (msg_fn)dlsym(g_fake, "TRITONSERVER_ErrorMessage");
    del_fn del = (del_fn)dlsym(g_fake, "TRITONSERVER_ErrorDelete");
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT_PTR_NOT_NULL_FATAL(init);
    set(major, minor);
    TRITONSERVER_Error *e = init(NULL);
    msg[0] = 0;
    if (!e) return 0;
    snprintf(msg, cap, "%s", m(e));
    del(e);
    return -1;
}

static void test_api_version(void) {
    char msg[1024];
    CU_ASSERT_EQUAL(init_with(1, 19, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(init_with(1, 20, msg, sizeof msg), 0); /* newer minor: compatible */
    CU_ASSERT_EQUAL(init_with(1, 18, msg, sizeof msg), -1);
    printf("refusal: %s\n", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "API 1.19"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "provides 1.18"));
    CU_ASSERT_EQUAL(init_with(2, 0, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "provides 2.0"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("triton_abi", suite_init, suite_clean);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_exports);
    VEIL_ADD_TEST(s, test_api_version);
    return veil_test_run();
}
