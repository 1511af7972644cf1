/* fake_triton.c — the few Triton server functions TRITONBACKEND_Initialize
 * calls, for tests/test_triton_abi.c: loaded RTLD_GLOBAL before
 * libtriton_veil.so, it plays a Triton of any TRITONBACKEND API version
 * (fake_triton_set_version) without a tritonserver. Test-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "triton_api.h"

struct TRITONSERVER_Error {
    TRITONSERVER_Error_Code code;
    char msg[1024];
};

static uint32_t g_major = VEIL_TRITONBACKEND_API_MAJOR, g_minor = VEIL_TRITONBACKEND_API_MINOR;
static char g_log[4096];

VEIL_TRITON_EXPORT void fake_triton_set_version(uint32_t major, uint32_t minor);
VEIL_TRITON_EXPORT const char *fake_triton_last_log(void);

void fake_triton_set_version(uint32_t major, uint32_t minor) {
    g_major = major;
    g_minor = minor;
}

const char *fake_triton_last_log(void) {
    return g_log;
}

VEIL_TRITON_EXPORT TRITONSERVER_Error *TRITONSERVER_ErrorNew(TRITONSERVER_Error_Code code,
                                                             const char *msg) {
    TRITONSERVER_Error *e = calloc(1, sizeof *e);
    if (!e) abort();
    e->code = code;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    return e;
}

VEIL_TRITON_EXPORT void TRITONSERVER_ErrorDelete(TRITONSERVER_Error *error) {
    free(error);
}

VEIL_TRITON_EXPORT const char *TRITONSERVER_ErrorMessage(TRITONSERVER_Error *error) {
    return error->msg;
}

VEIL_TRITON_EXPORT TRITONSERVER_Error *TRITONSERVER_LogMessage(TRITONSERVER_LogLevel level,
                                                               const char *filename, const int line,
                                                               const char *msg) {
    (void)level, (void)filename, (void)line;
    snprintf(g_log, sizeof g_log, "%s", msg);
    return NULL;
}

VEIL_TRITON_EXPORT TRITONSERVER_Error *TRITONBACKEND_ApiVersion(uint32_t *major, uint32_t *minor) {
    *major = g_major;
    *minor = g_minor;
    return NULL;
}

VEIL_TRITON_EXPORT TRITONSERVER_Error *TRITONBACKEND_BackendName(TRITONBACKEND_Backend *backend,
                                                                 const char **name) {
    (void)backend;
    *name = "veil";
    return NULL;
}
