/* compile_options.c — everything about the compile options in one place:
 * their defaults (veil_compile_options_default), the value parsers
 * (veil_bounds_parse, veil_rounding_parse, the table's parse_* functions),
 * and the table of options (veil/compile_options.h), read from a command
 * line (veil_compile_options_parse_arg) or by name from text configurations
 * such as Triton's config.pbtxt (veil_compile_options_set in veil/program.h):
 * one table, so both accept the same options and values, and one canonical
 * form (veil_compile_options_canonical) hashed into the fingerprint. */
#include "veil/compile_options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "veil/params.h"

enum { POLY_MIN = 256, POLY_MAX = 65536 };
#define VEIL_STR(x) #x
#define VEIL_XSTR(x) VEIL_STR(x)

veil_status veil_arg_u64(const char *what, const char *s, uint64_t min, uint64_t max,
                         uint64_t *out) {
    if (!s || !*s || strspn(s, "0123456789") != strlen(s))
        return veil_error(VEIL_ERR_ARG, "%s %s: expected an integer from %llu to %llu", what,
                          s ? s : "(missing)", (unsigned long long)min, (unsigned long long)max);
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max)
        return veil_error(VEIL_ERR_ARG, "%s %s: expected an integer from %llu to %llu", what, s,
                          (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return VEIL_OK;
}

/* The one syntax of a decimal option value: the whole string is strtod's
 * number (no leading space, nothing after it), finite and in range. */
static int number_parse(const char *s, double *out) {
    char *e = NULL;
    errno = 0;
    const double v = s && *s && !isspace((unsigned char)*s) ? strtod(s, &e) : NAN;
    if (!e || e == s || *e || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

veil_status veil_arg_double(const char *what, const char *s, double min, double max, double *out) {
    double v;
    if (!number_parse(s, &v) || !(v >= min && v <= max))
        return veil_error(VEIL_ERR_ARG, "%s %s: expected a number from %g to %g", what,
                          s ? s : "(missing)", min, max);
    *out = v;
    return VEIL_OK;
}

void veil_compile_options_default(veil_compile_options *o) {
    memset(o, 0, sizeof *o);
    o->rounding_bits = 0;
    o->range_margin = VEIL_RANGE_MARGIN_DEFAULT;
    o->rounding = VEIL_ROUNDING_EXACT;
    o->bounds = VEIL_BOUNDS_CALIBRATION;
    o->p_error = VEIL_P_ERROR_DEFAULT;
    o->global_p_error = 0; /* no budget per sample */
    o->params_id = NULL;
    o->key_budget_mb = VEIL_KEY_BUDGET_MB_DEFAULT;
    o->wop = VEIL_WOP_AUTO;
}

veil_status veil_bounds_parse(const char *s, veil_bounds *out) {
    if (s && !strcmp(s, "calibration"))
        *out = VEIL_BOUNDS_CALIBRATION;
    else if (s && (!strcmp(s, "worst-case") || !strcmp(s, "worst_case")))
        *out = VEIL_BOUNDS_WORST_CASE;
    else
        return veil_error(VEIL_ERR_ARG, "bounds '%s': expected calibration or worst-case",
                          s ? s : "(null)");
    return VEIL_OK;
}

veil_status veil_rounding_parse(const char *s, veil_rounding *out) {
    if (s && !strcmp(s, "exact"))
        *out = VEIL_ROUNDING_EXACT;
    else if (s && !strcmp(s, "approximate"))
        *out = VEIL_ROUNDING_APPROXIMATE;
    else
        return veil_error(VEIL_ERR_ARG, "rounding '%s': expected exact or approximate",
                          s ? s : "(null)");
    return VEIL_OK;
}

static veil_status parse_rounding_bits(const char *v, veil_compile_options *o) {
    if (!strcmp(v, "none")) {
        o->rounding_bits = 0;
        return VEIL_OK;
    }
    uint64_t n = 0;
    if (veil_arg_u64("--rounding-bits", v, 1, VEIL_MAX_BITS, &n) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG, "--rounding-bits %s: expected 1..%u or none", v,
                          VEIL_MAX_BITS);
    o->rounding_bits = (unsigned)n;
    return VEIL_OK;
}

static veil_status parse_rounding(const char *v, veil_compile_options *o) {
    if (veil_rounding_parse(v, &o->rounding) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG, "--rounding %s: expected exact or approximate", v);
    return VEIL_OK;
}

static veil_status parse_bounds(const char *v, veil_compile_options *o) {
    if (veil_bounds_parse(v, &o->bounds) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG, "--bounds %s: expected calibration or worst-case", v);
    return VEIL_OK;
}

static veil_status parse_p_error(const char *v, veil_compile_options *o) {
    double p;
    if (!number_parse(v, &p) || !(p > 0 && p < 1))
        return veil_error(VEIL_ERR_ARG,
                          "--p-error %s: expected a probability in (0, 1), e.g. 1e-12", v);
    o->p_error = p;
    return VEIL_OK;
}

/* --global-p-error P or none. With an explicit --p-error (another value than
 * its default) both hold: Concrete's rule for p_error with global_p_error
 * ("If you set both of them, both will be satisfied. Essentially, the
 * stricter one will be used": zama-ai/concrete,
 * docs/core-features/table_lookups_advanced.md, "Table lookup exactness"). */
static veil_status parse_global_p_error(const char *v, veil_compile_options *o) {
    double p;
    if (!strcmp(v, "none")) {
        o->global_p_error = 0;
        return VEIL_OK;
    }
    if (!number_parse(v, &p) || !(p > 0 && p < 1) || !isnormal(p))
        return veil_error(VEIL_ERR_ARG,
                          "--global-p-error %s: expected a probability in (0, 1), e.g. 1e-5, or "
                          "none",
                          v);
    o->global_p_error = p;
    return VEIL_OK;
}

double veil_compile_options_pbs_p_error(const veil_compile_options *o) {
    if (!(o->global_p_error > 0)) return o->p_error;
    if (o->p_error == VEIL_P_ERROR_DEFAULT) return o->global_p_error;
    return o->p_error < o->global_p_error ? o->p_error : o->global_p_error;
}

static veil_status parse_params(const char *v, veil_compile_options *o) {
    if (!strcmp(v, "auto")) {
        o->params_id = NULL;
        return VEIL_OK;
    }
    if (!veil_params_find_any(v)) /* a multi-bit set too */
        return veil_error(VEIL_ERR_ARG,
                          "--params %s: no such parameter set (veil compile MODEL "
                          "prints the one it chose; engine/src/params.c lists all)",
                          v);
    o->params_id = v; /* borrowed from argv */
    return VEIL_OK;
}

static veil_status parse_max_poly_size(const char *v, veil_compile_options *o) {
    uint64_t n = 0;
    if (!strcmp(v, "any")) {
        o->max_poly_size = 0;
        return VEIL_OK;
    }
    if (veil_arg_u64("--max-poly-size", v, POLY_MIN, POLY_MAX, &n) != VEIL_OK || (n & (n - 1)))
        return veil_error(VEIL_ERR_ARG,
                          "--max-poly-size %s: expected a power of two from %d to %d, or any", v,
                          POLY_MIN, POLY_MAX);
    o->max_poly_size = (uint32_t)n;
    return VEIL_OK;
}

static veil_status parse_lookup_bits(const char *v, veil_compile_options *o) {
    uint64_t n = 0;
    if (veil_arg_u64("--lookup-bits", v, 0, VEIL_MAX_BITS, &n) != VEIL_OK || n == 1)
        return veil_error(VEIL_ERR_ARG, "--lookup-bits %s: expected 2..%u, or 0 for the cheapest",
                          v, VEIL_MAX_BITS);
    o->lookup_bits = (unsigned)n;
    return VEIL_OK;
}

static veil_status parse_chunk_bits(const char *v, veil_compile_options *o) {
    uint64_t n = 0;
    if (veil_arg_u64("--chunk-bits", v, 0, VEIL_MAX_BITS, &n) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG,
                          "--chunk-bits %s: expected 1..%u, or 0 for the cheapest per rounding", v,
                          VEIL_MAX_BITS);
    o->chunk_bits = (unsigned)n;
    return VEIL_OK;
}

static veil_status parse_partitions(const char *v, veil_compile_options *o) {
    uint64_t n = 0;
    if (veil_arg_u64("--partitions", v, 0, VEIL_MAX_PARTITIONS, &n) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG,
                          "--partitions %s: expected 1..%u (a key set's most), or 0 for the "
                          "cheapest",
                          v, VEIL_MAX_PARTITIONS);
    o->max_partitions = (unsigned)n;
    return VEIL_OK;
}

static veil_status parse_key_budget(const char *v, veil_compile_options *o) {
    uint64_t n = 0;
    if (veil_arg_u64("--key-budget-mb", v, 0, 1u << 24, &n) != VEIL_OK)
        return veil_error(VEIL_ERR_ARG,
                          "--key-budget-mb %s: expected MiB from 0 to %u (0: no budget)", v,
                          1u << 24);
    o->key_budget_mb = (unsigned)n;
    return VEIL_OK;
}

static veil_status parse_range_margin(const char *v, veil_compile_options *o) {
    double f;
    if (!number_parse(v, &f) || !(f >= 0 && f <= 16))
        return veil_error(VEIL_ERR_ARG,
                          "--range-margin %s: expected a fraction from 0 to 16, e.g. 0.25", v);
    o->range_margin = f;
    return VEIL_OK;
}

static veil_status parse_range_check(const char *v, veil_compile_options *o) {
    if (!strcmp(v, "on") || !strcmp(v, "off")) {
        o->range_check = !strcmp(v, "on");
        return VEIL_OK;
    }
    return veil_error(VEIL_ERR_ARG, "--range-check %s: expected on or off", v);
}

static veil_status parse_objective(const char *v, veil_compile_options *o) {
    if (!strcmp(v, "throughput")) {
        o->latency_cores = 0;
        return VEIL_OK;
    }
    if (!strcmp(v, "latency")) {
        /* this machine's cores, written into the canonical form
         * (latency:N), so that a server compiling elsewhere sees it */
        o->latency_cores = veil_online_cpus();
        return VEIL_OK;
    }
    uint64_t n = 0;
    if (!strncmp(v, "latency:", 8) &&
        veil_arg_u64("--objective latency:", v + 8, 1, VEIL_LATENCY_CORES_MAX, &n) == VEIL_OK) {
        o->latency_cores = (unsigned)n;
        return VEIL_OK;
    }
    return veil_error(VEIL_ERR_ARG,
                      "--objective %s: expected throughput, latency or latency:CORES (1..%u)", v,
                      VEIL_LATENCY_CORES_MAX);
}

static veil_status parse_wop(const char *v, veil_compile_options *o) {
    static const char *const names[] = {"off", "auto", "always"};
    for (unsigned i = 0; i < 3; i++)
        if (!strcmp(v, names[i])) {
            o->wop = (veil_wop_mode)i;
            return VEIL_OK;
        }
    return veil_error(VEIL_ERR_ARG, "--wop %s: expected off, auto or always", v);
}

/* The value of each option as its parser reads it (the canonical form). */
static int show_wop(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%s",
                    o->wop == VEIL_WOP_ALWAYS ? "always"
                    : o->wop == VEIL_WOP_AUTO ? "auto"
                                              : "off");
}
static int show_rounding_bits(const veil_compile_options *o, char *b, size_t n) {
    return o->rounding_bits ? snprintf(b, n, "%u", o->rounding_bits) : snprintf(b, n, "none");
}
static int show_lookup_bits(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%u", o->lookup_bits);
}
static int show_chunk_bits(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%u", o->chunk_bits);
}
/* %.17g: every double reads back as itself */
static int show_range_margin(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%.17g", o->range_margin);
}
static int show_range_check(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%s", o->range_check ? "on" : "off");
}
static int show_rounding(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%s", o->rounding == VEIL_ROUNDING_APPROXIMATE ? "approximate" : "exact");
}
static int show_bounds(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%s", o->bounds == VEIL_BOUNDS_WORST_CASE ? "worst-case" : "calibration");
}
static int show_p_error(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%.17g", o->p_error);
}
static int show_global_p_error(const veil_compile_options *o, char *b, size_t n) {
    return o->global_p_error > 0 ? snprintf(b, n, "%.17g", o->global_p_error)
                                 : snprintf(b, n, "none");
}
static int show_params(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%s", o->params_id ? o->params_id : "auto");
}
static int show_max_poly_size(const veil_compile_options *o, char *b, size_t n) {
    return o->max_poly_size ? snprintf(b, n, "%u", o->max_poly_size) : snprintf(b, n, "any");
}
static int show_partitions(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%u", o->max_partitions);
}
static int show_objective(const veil_compile_options *o, char *b, size_t n) {
    return o->latency_cores ? snprintf(b, n, "latency:%u", o->latency_cores)
                            : snprintf(b, n, "throughput");
}
static int show_key_budget(const veil_compile_options *o, char *b, size_t n) {
    return snprintf(b, n, "%u", o->key_budget_mb);
}

typedef struct option_row {
    const char *name;  /* "--rounding-bits" */
    const char *value; /* the value's syntax in the help */
    const char *help;  /* lines separated by '\n' */
    veil_status (*parse)(const char *value, veil_compile_options *o);
    int (*show)(const veil_compile_options *o, char *buf, size_t cap); /* snprintf's return */
} option_row;

static const option_row k_options[] = {
    {"--rounding-bits", "N|none",
     "keep at most N bits of every lookup input, rounding the\n"
     "accumulator to nearest (Concrete ML's rounding_threshold_bits);\n"
     "none (default): exact lookups on the whole accumulator, the\n"
     "model's own integers",
     parse_rounding_bits, show_rounding_bits},
    {"--lookup-bits", "N",
     "widest PBS read, 2..16: wider exact lookups are decomposed into\n"
     "PBS of at most N bits (an approximate rounding's one read is\n"
     "refused when wider; default 0: the cheapest by the cost model)",
     parse_lookup_bits, show_lookup_bits},
    {"--wop", "off|auto|always",
     "lookups wider than the PBS reads by one WoP-PBS each (bit\n"
     "extraction, circuit bootstrapping, vertical packing: a cost that\n"
     "does not depend on the table; cpu and cuda backends): auto\n"
     "(default) where the cost model prices it below the digits and it\n"
     "can have a partition of its own, always wherever it fits; off:\n"
     "digits only",
     parse_wop, show_wop},
    {"--chunk-bits", "N",
     "exact rounding clears the low bits in chunks of N bits, 2 PBS\n"
     "each read at N - 1 bits (1 PBS for N = 1, the sign read at 0 bits;\n"
     "at most the widest lookup's bits + 1);\n"
     "default 0: per rounding, the cheapest by the cost model",
     parse_chunk_bits, show_chunk_bits},
    {"--range-margin", "F",
     "widen every calibrated range by F times its width on both sides\n"
     "(default 0.25; never past the worst case)",
     parse_range_margin, show_range_margin},
    {"--range-check", "on|off",
     "on: one more output, per sample and model output, counting the\n"
     "values that left their compiled ranges (extra PBS; the client\n"
     "warns naming the output); off (default)",
     parse_range_check, show_range_check},
    {"--rounding", "exact|approximate",
     "exact (default): clear the low bits with extra PBS, so the\n"
     "encrypted result equals simulate; approximate: let the modulus\n"
     "switch drop them (1 PBS, off by one near the boundary)",
     parse_rounding, show_rounding},
    {"--bounds", "calibration|worst-case",
     "value ranges from the model's calibration set (default) or\n"
     "from interval arithmetic over the input ranges",
     parse_bounds, show_bounds},
    {"--p-error", "P", "target failure probability of one PBS (default 2^-40)", parse_p_error,
     show_p_error},
    {"--global-p-error", "P|none",
     "failure budget per sample: the probability that one run has any\n"
     "failed PBS or output is at most P (0 < P < 1; the union bound),\n"
     "spread over the partitions where looser sets save the most\n"
     "(Concrete's global_p_error); each PBS then under P, or under\n"
     "--p-error too when that is another value than its default 2^-40\n"
     "(both hold; --p-error 2^-40 with it reads as not given); none\n"
     "(default): no budget, every PBS under --p-error",
     parse_global_p_error, show_global_p_error},
    {"--params", "ID|auto", "force a parameter set (default auto: the cheapest that fits)",
     parse_params, show_params},
    {"--max-poly-size", "N|any",
     "only parameter sets with N <= this (a power of two, 256..65536;\n"
     "any (default): no limit)",
     parse_max_poly_size, show_max_poly_size},
    {"--partitions", "N",
     "at most N parameter sets, each with its own keys (1: one set for\n"
     "the program, the smallest keys; default 0: the cheapest by the\n"
     "cost model)",
     parse_partitions, show_partitions},
    {"--key-budget-mb", "MB",
     "cap on the prepared evaluation keys (MiB; partitions are merged\n"
     "until they fit, refused if nothing fits; 0: no cap; default\n" VEIL_XSTR(
         VEIL_KEY_BUDGET_MB_DEFAULT) ")",
     parse_key_budget, show_key_budget},
    {"--objective", "throughput|latency[:C]",
     "what the parameter sets minimise: throughput (default), the\n"
     "cost per sample on one core; latency, one sample's time at batch\n"
     "1 on the cpu backend with C cores (default this machine's; name C\n"
     "where a client and a server compile the same program), where a\n"
     "multi-bit set's lookups fewer than the cores run on several cores\n"
     "each",
     parse_objective, show_objective},
};
#define N_OPTIONS (sizeof k_options / sizeof k_options[0])

veil_status veil_compile_options_parse_arg(veil_compile_options *o, int argc, char *const *argv,
                                           int *i, int *consumed) {
    if (!o || !argv || !i || !consumed || *i >= argc)
        return veil_error(VEIL_ERR_ARG, "veil_compile_options_parse_arg: bad argument");
    *consumed = 0;
    const char *s = argv[*i];
    for (size_t k = 0; k < N_OPTIONS; k++) {
        if (strcmp(s, k_options[k].name)) continue;
        if (*i + 1 >= argc)
            return veil_error(VEIL_ERR_ARG, "%s needs a value (%s)", s, k_options[k].value);
        VEIL_TRY(k_options[k].parse(argv[*i + 1], o));
        *i += 1;
        *consumed = 1;
        return VEIL_OK;
    }
    return VEIL_OK;
}

void veil_compile_options_help(FILE *f) {
    for (size_t k = 0; k < N_OPTIONS; k++) {
        const option_row *r = &k_options[k];
        char head[64];
        snprintf(head, sizeof head, "%s %s", r->name, r->value);
        /* Long heads get a line of their own. */
        if (strlen(head) > 24)
            fprintf(f, "  %s\n%27s", head, "");
        else
            fprintf(f, "  %-24s ", head);
        for (const char *p = r->help; *p;) {
            size_t n = strcspn(p, "\n");
            fprintf(f, "%.*s\n", (int)n, p);
            p += n;
            if (*p == '\n') {
                p++;
                fprintf(f, "%27s", "");
            }
        }
    }
}

/* Text configurations write "rounding-bits" or "rounding_bits" for
 * --rounding-bits. NULL when name is no option. */
static const option_row *row_named(const char *name) {
    for (size_t k = 0; name && k < N_OPTIONS; k++) {
        const char *a = k_options[k].name + 2, *b = name;
        while (*a && *b && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (!*a && !*b) return &k_options[k];
    }
    return NULL;
}

veil_status veil_compile_options_set(veil_compile_options *o, const char *name, const char *value) {
    if (!o || !name || !value)
        return veil_error(VEIL_ERR_ARG, "compile option: name and value needed");
    const option_row *r = row_named(name);
    if (!r) {
        char known[256] = "";
        for (size_t k = 0; k < N_OPTIONS; k++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "",
                     k_options[k].name + 2);
        return veil_error(VEIL_ERR_ARG, "unknown compile option '%s' (%s)", name, known);
    }
    return r->parse(value, o);
}

veil_status veil_compile_options_check(const veil_compile_options *o) {
    if (!o) return veil_error(VEIL_ERR_ARG, "compile: NULL options");
    if (!(o->p_error > 0 && o->p_error < 1) || !isnormal(o->p_error))
        return veil_error(VEIL_ERR_ARG, "compile: p_error %g must be in (0, 1), a normal double",
                          o->p_error);
    if (o->global_p_error != 0 &&
        !(o->global_p_error > 0 && o->global_p_error < 1 && isnormal(o->global_p_error)))
        return veil_error(VEIL_ERR_ARG,
                          "compile: global_p_error %g must be in (0, 1), a normal double (or 0: "
                          "none)",
                          o->global_p_error);
    if (o->rounding_bits > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_ARG, "compile: rounding bits %u, at most %u", o->rounding_bits,
                          VEIL_MAX_BITS);
    if (!(o->range_margin >= 0 && o->range_margin <= 16) ||
        (o->range_margin != 0 && !isnormal(o->range_margin)))
        return veil_error(VEIL_ERR_ARG, "compile: range margin %g, expected 0 to 16",
                          o->range_margin);
    if (o->max_partitions > VEIL_MAX_PARTITIONS)
        return veil_error(VEIL_ERR_ARG, "compile: partitions %u, expected 1 to %u (or 0: auto)",
                          o->max_partitions, VEIL_MAX_PARTITIONS);
    if (o->lookup_bits == 1 || o->lookup_bits > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_ARG, "compile: lookup bits %u, expected 2 to %u (or 0: auto)",
                          o->lookup_bits, VEIL_MAX_BITS);
    if (o->chunk_bits > VEIL_MAX_BITS)
        return veil_error(VEIL_ERR_ARG, "compile: chunk bits %u, expected 1 to %u (or 0: auto)",
                          o->chunk_bits, VEIL_MAX_BITS);
    if ((unsigned)o->wop > VEIL_WOP_ALWAYS)
        return veil_error(VEIL_ERR_ARG, "compile: wop mode %u, expected 0 to 2", (unsigned)o->wop);
    if (o->latency_cores > VEIL_LATENCY_CORES_MAX)
        return veil_error(VEIL_ERR_ARG, "compile: latency cores %u, at most %u (or 0: throughput)",
                          o->latency_cores, VEIL_LATENCY_CORES_MAX);
    if (o->key_budget_mb > (1u << 24))
        return veil_error(VEIL_ERR_ARG, "compile: key budget %u MiB, at most 2^24 (or 0: none)",
                          o->key_budget_mb);
    if (o->params_id && !veil_params_find_any(o->params_id))
        return veil_error(VEIL_ERR_ARG, "compile: params id \"%.64s\" is no parameter set",
                          o->params_id);
    if (o->max_poly_size && (o->max_poly_size < POLY_MIN || o->max_poly_size > POLY_MAX ||
                             (o->max_poly_size & (o->max_poly_size - 1))))
        return veil_error(VEIL_ERR_ARG,
                          "compile: max poly size %u, expected a power of two from %d to %d (or "
                          "0: any)",
                          o->max_poly_size, POLY_MIN, POLY_MAX);
    return VEIL_OK;
}

int veil_compile_option_known(const char *name) {
    return row_named(name) != NULL;
}

size_t veil_compile_options_canonical(const veil_compile_options *o, char *buf, size_t cap) {
    size_t len = 0;
    for (size_t k = 0; k < N_OPTIONS; k++) {
        char v[128];
        const int n = k_options[k].show(o, v, sizeof v);
        VEIL_ASSERT(n > 0 && (size_t)n < sizeof v);
        const int w =
            snprintf(buf ? buf + (len < cap ? len : cap) : NULL, buf && len < cap ? cap - len : 0,
                     "%s%s=%s", k ? " " : "", k_options[k].name + 2, v);
        len += (size_t)w;
    }
    if (buf && cap && len >= cap) buf[cap - 1] = 0;
    return len;
}
