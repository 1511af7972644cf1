/* compile_options.c — compile options by name (see veil_compile_options_set in
 * veil/program.h): the one reader of "rounding-bits 6"-style settings for
 * configurations that are text (Triton's config.pbtxt parameters). */
#include <stdlib.h>
#include <string.h>

#include "veil/program.h"

/* "rounding-bits" and "rounding_bits" are the same name. */
static int name_is(const char *name, const char *want) {
    for (; *name && *want; name++, want++)
        if (*name != *want && !(*name == '_' && *want == '-')) return 0;
    return *name == *want;
}

veil_status veil_compile_options_set(veil_compile_options *o, const char *name, const char *value) {
    if (!o || !name || !value)
        return veil_error(VEIL_ERR_ARG, "compile option: name and value needed");
    char *e = NULL;
    if (name_is(name, "rounding-bits")) {
        if (!strcmp(value, "none")) {
            o->rounding_bits = 0;
            return VEIL_OK;
        }
        long n = strtol(value, &e, 10);
        if (!*value || *e || n < 1 || n > VEIL_MAX_BITS)
            return veil_error(VEIL_ERR_ARG, "rounding-bits %s: expected 1..%d or none", value,
                              VEIL_MAX_BITS);
        o->rounding_bits = (unsigned)n;
    } else if (name_is(name, "rounding")) {
        return veil_rounding_parse(value, &o->rounding);
    } else if (name_is(name, "bounds")) {
        return veil_bounds_parse(value, &o->bounds);
    } else if (name_is(name, "p-error")) {
        double p = strtod(value, &e);
        if (!*value || *e || !(p > 0 && p < 1))
            return veil_error(VEIL_ERR_ARG, "p-error %s: expected a probability in (0, 1)", value);
        o->p_error = p;
    } else if (name_is(name, "max-poly-size")) {
        long n = strtol(value, &e, 10);
        if (!*value || *e || n < 256 || (n & (n - 1)))
            return veil_error(VEIL_ERR_ARG, "max-poly-size %s: expected a power of two >= 256",
                              value);
        o->max_poly_size = (uint32_t)n;
    } else if (name_is(name, "lookup-bits")) {
        long n = strtol(value, &e, 10);
        if (!*value || *e || n < 0 || n == 1 || n > VEIL_MAX_BITS)
            return veil_error(VEIL_ERR_ARG, "lookup-bits %s: expected 2..%d, or 0 for the cheapest",
                              value, VEIL_MAX_BITS);
        o->lookup_bits = (unsigned)n;
    } else if (name_is(name, "range-margin")) {
        double f = strtod(value, &e);
        if (!*value || *e || !(f >= 0 && f <= 16))
            return veil_error(VEIL_ERR_ARG, "range-margin %s: expected a fraction in [0, 16]",
                              value);
        o->range_margin = f;
    } else if (name_is(name, "params")) {
        o->params_id = value; /* borrowed */
    } else {
        return veil_error(VEIL_ERR_ARG,
                          "unknown compile option '%s' (rounding-bits, rounding, bounds, p-error, "
                          "max-poly-size, lookup-bits, range-margin, params)",
                          name);
    }
    return VEIL_OK;
}

int veil_compile_option_known(const char *name) {
    static const char *const k[] = {"rounding-bits", "rounding",    "bounds",       "p-error",
                                    "max-poly-size", "lookup-bits", "range-margin", "params"};
    for (size_t i = 0; name && i < sizeof k / sizeof *k; i++)
        if (name_is(name, k[i])) return 1;
    return 0;
}
