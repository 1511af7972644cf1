/* veil/compile_options.h — the compile options on a command line: one table,
 * one parser, one help text, used by every `veil` command that compiles,
 * `veil-server` and the benchmarks, so that they cannot drift apart (they
 * did: `--max-poly-size` was offered by `veil --help` and refused by the
 * client commands and the server, so such a model could not be deployed).
 *
 * To add an option: one row in k_options (engine/src/compile_options.c)
 * with its name, value syntax, help lines and a parse function that checks
 * the value's range and says what it expected. The help test
 * (tests/test_cli_options.c) then tries it on every command.
 *
 * Also here: the strict integer parser every command uses for its own
 * numeric options (digits only, range checked, no wrap-around). */
#ifndef VEIL_COMPILE_OPTIONS_H
#define VEIL_COMPILE_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "veil/program.h"
#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* If argv[*i] is a compile option, parses it (and its value, argv[*i + 1])
 * into o, advances *i past the value and sets *consumed = 1; otherwise
 * *consumed = 0 and nothing changes. On a bad or missing value returns
 * VEIL_ERR_ARG with a message naming the option, the value and what was
 * expected ("--max-poly-size 300: expected a power of two from 256 to
 * 65536"). */
veil_status veil_compile_options_parse_arg(veil_compile_options *o, int argc, char *const *argv,
                                           int *i, int *consumed);

/* Writes the help lines of every compile option ("  --name VALUE   text"),
 * aligned as the commands' own options are (text at column 27). */
void veil_compile_options_help(FILE *f);

/* The canonical form of o: every option in the table's order as
 * "name=value" (name without the dashes, value as the option reads it, so
 * veil_compile_options_set reads each pair back to the same option; doubles
 * exactly, %.17g), separated by single spaces, e.g. "rounding-bits=none
 * lookup-bits=0 ... params=auto max-poly-size=any partitions=0". Hashed into
 * the program fingerprint (veil_program_fingerprint), so that a client and
 * a server agree on a program only when they compiled it from the same
 * options; shown when they do not. simulate_only is not in it: it decides
 * only whether a program without a parameter set is returned, and such a
 * program never meets a server. Writes at most cap bytes (NUL included) and
 * returns the length of the whole form, as snprintf. */
size_t veil_compile_options_canonical(const veil_compile_options *o, char *buf, size_t cap);

/* VEIL_OK when every value of o is one its option's text could give (the
 * ranges the parsers accept), so that the canonical form reads back; else
 * VEIL_ERR_ARG naming the option and the value. veil_program_compile checks
 * the options it is given with it (callers of the C API may fill the
 * struct themselves). */
veil_status veil_compile_options_check(const veil_compile_options *o);

/* Parses a whole decimal string (digits only: no sign, space or suffix) in
 * [min, max]. VEIL_ERR_ARG names `what` (the option) otherwise. */
veil_status veil_arg_u64(const char *what, const char *s, uint64_t min, uint64_t max,
                         uint64_t *out);

/* Parses a whole decimal number (strtod's syntax, nothing after it) in
 * [min, max]; NaN, infinities and out-of-range values are refused.
 * VEIL_ERR_ARG names `what` (the option) otherwise. */
veil_status veil_arg_double(const char *what, const char *s, double min, double max, double *out);

#ifdef __cplusplus
}
#endif
#endif
