/* veil/client_cmds.h — the deployment subcommands of `veil` (host/client/):
 *   veil keygen  MODEL --out DIR [--force]
 *   veil encrypt MODEL --key DIR --input FILE --output CT [--quantized]
 *   veil decrypt MODEL --key DIR --input CT [--output FILE]
 *   veil remote  MODEL --key DIR --server URL [--input FILE] [--output FILE]
 * each also takes the compile options of `veil compile` (which must match the
 * server's). argv[0] is the subcommand name. Return: 0 ok, 1 failure, 2 usage. */
#ifndef VEIL_CLIENT_CMDS_H
#define VEIL_CLIENT_CMDS_H

#ifdef __cplusplus
extern "C" {
#endif

int veil_cmd_keygen(int argc, char **argv);
int veil_cmd_encrypt(int argc, char **argv);
int veil_cmd_decrypt(int argc, char **argv);
int veil_cmd_remote(int argc, char **argv);

/* A usage error of subcommand cmd: "veil CMD: <message>" and the pointer to
 * its --help on stderr; returns 2, the usage exit code. */
int veil_cmd_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One-line summaries, usage lines and option help, for the dispatch table. */
extern const char veil_cmd_keygen_usage[], veil_cmd_keygen_help[];
extern const char veil_cmd_encrypt_usage[], veil_cmd_encrypt_help[];
extern const char veil_cmd_decrypt_usage[], veil_cmd_decrypt_help[];
extern const char veil_cmd_remote_usage[], veil_cmd_remote_help[];

#ifdef __cplusplus
}
#endif
#endif
