#include "backend_internal.h"
#include <stdio.h>
int veil_backend_cuda_available(char *why, size_t why_len) {
    if (why && why_len) snprintf(why, why_len, "veil was built without CUDA");
    return 0;
}
veil_status veil_backend_cuda_init(veil_backend *be) {
    (void)be;
    return veil_error(VEIL_ERR_UNSUPPORTED, "cuda backend: veil was built without CUDA");
}
