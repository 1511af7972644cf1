/* the definition of veil_error, not the analyzer's macro (veil/status.h) */
#define VEIL_STATUS_IMPL
#include "veil/status.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char veil_errmsg[1024];

const char *veil_status_str(veil_status s) {
    switch (s) {
    case VEIL_OK:
        return "VEIL_OK";
    case VEIL_ERR_ARG:
        return "VEIL_ERR_ARG: invalid argument";
    case VEIL_ERR_NOMEM:
        return "VEIL_ERR_NOMEM: out of memory";
    case VEIL_ERR_IO:
        return "VEIL_ERR_IO: input/output error";
    case VEIL_ERR_FORMAT:
        return "VEIL_ERR_FORMAT: malformed input";
    case VEIL_ERR_UNSUPPORTED:
        return "VEIL_ERR_UNSUPPORTED: not supported";
    case VEIL_ERR_DEVICE:
        return "VEIL_ERR_DEVICE: device error";
    case VEIL_ERR_PARAMS:
        return "VEIL_ERR_PARAMS: mismatched parameters or keys";
    case VEIL_ERR_RANGE:
        return "VEIL_ERR_RANGE: value out of range";
    case VEIL_ERR_INTERNAL:
        return "VEIL_ERR_INTERNAL: internal error";
    }
    return "VEIL_ERR_?: unknown status";
}

const char *veil_error_message(void) {
    return veil_errmsg;
}

/* Formatted beside the message, then copied over it: an argument may be
 * veil_error_message() itself (the key store once passed it; formatting
 * into the buffer a %s reads from is undefined, and printed the context
 * twice). */
veil_status veil_error(veil_status s, const char *fmt, ...) {
    char msg[sizeof veil_errmsg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(veil_errmsg, msg, sizeof msg);
    return s;
}

void veil_error_prefix(const char *fmt, ...) {
    char pre[512], old[sizeof veil_errmsg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, veil_errmsg, sizeof old);
    size_t lp = strlen(pre), lo = strlen(old);
    if (lp > sizeof veil_errmsg - 1) lp = sizeof veil_errmsg - 1;
    if (lo > sizeof veil_errmsg - 1 - lp) lo = sizeof veil_errmsg - 1 - lp;
    memcpy(veil_errmsg, pre, lp);
    memcpy(veil_errmsg + lp, old, lo);
    veil_errmsg[lp + lo] = 0;
}

void veil_error_clear(void) {
    veil_errmsg[0] = 0;
}
