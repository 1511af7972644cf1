/* veil/status.h — error codes and the thread-local error message.
 *
 * Every fallible veil function returns a veil_status. On failure it also sets a
 * thread-local message saying what went wrong and where (for example
 * "layers/0003_conv2d/weight: expected rank 4, got 2"); read it with
 * veil_error_message(). Output pointers are written only on success.
 * Internal invariants use VEIL_ASSERT, which aborts in every build. */
#ifndef VEIL_STATUS_H
#define VEIL_STATUS_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum veil_status {
    VEIL_OK = 0,
    VEIL_ERR_ARG,         /* a caller passed an invalid argument */
    VEIL_ERR_NOMEM,       /* an allocation failed */
    VEIL_ERR_IO,          /* a file or socket could not be read or written */
    VEIL_ERR_FORMAT,      /* input bytes are malformed, truncated or corrupted */
    VEIL_ERR_UNSUPPORTED, /* valid, but veil cannot run it (e.g. > 16 bits) */
    VEIL_ERR_DEVICE,      /* a CUDA error; the message carries CUDA's text */
    VEIL_ERR_PARAMS,      /* objects bound to different parameter sets or keys */
    VEIL_ERR_RANGE,       /* a value left its compiled range */
    VEIL_ERR_INTERNAL,
} veil_status;

/* A static, human readable name of a status ("VEIL_ERR_FORMAT: malformed input"). */
const char *veil_status_str(veil_status s);

/* The message of the last error on this thread ("" when none). */
const char *veil_error_message(void);

/* Sets the thread-local message and returns s, so callers can write
 * `return veil_error(VEIL_ERR_ARG, "n = %u: must be > 0", n);`. An
 * argument may be veil_error_message() (the old message, wrapped). */
veil_status veil_error(veil_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#if defined(__clang_analyzer__) && !defined(VEIL_STATUS_IMPL)
/* For the static analyzer (scan-build), which does not see status.c: the
 * call returns its code, so `return veil_error(...)` is never VEIL_OK. */
#define veil_error(s, ...) (veil_error((s), __VA_ARGS__), (veil_status)(s))
#endif

/* Prefixes the current message with a context ("layers/0001_linear: "). */
void veil_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void veil_error_clear(void);

#define VEIL_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "veil: internal error at %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define VEIL_TRY(expr)                                                                             \
    do {                                                                                           \
        veil_status veil_try_s_ = (expr);                                                          \
        if (veil_try_s_ != VEIL_OK) return veil_try_s_;                                            \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
