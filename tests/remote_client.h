/* remote_client.h — a client of tiny, compiled with given options, whose keys
 * are made in a folder and uploaded to a server (veil-server or Triton), for
 * the tests that drive a server through veil's client library. */
#ifndef VEIL_TEST_REMOTE_CLIENT_H
#define VEIL_TEST_REMOTE_CLIENT_H

#include <stdio.h>

#include "testutil.h"
#include "veil/client.h"

/* Opens tiny with o into *c, makes its keys in dir, uploads them to url with
 * ro (their id into id, VEIL_KEY_ID_CHARS + 1 bytes) and loads the secret key
 * into *sk. 0 on success; else prints why, naming `what`, and returns -1
 * (*c and *sk as far as they got: the caller frees them). */
static inline int veil_test_remote_client(const char *what, const veil_compile_options *o,
                                          const char *dir, const char *url,
                                          const veil_remote_options *ro, veil_client **c,
                                          veil_secret_key **sk, char *id) {
    veil_keygen_info info;
    int up = 0;
    if (veil_client_open(veil_test_path("models/tiny.h5"), o, c) ||
        veil_client_keygen(*c, dir, 0, &info) || veil_remote_ensure_key(url, dir, ro, id, &up) ||
        veil_client_load_secret_key(*c, dir, sk)) {
        fprintf(stderr, "%s: %s\n", what, veil_error_message());
        return -1;
    }
    return 0;
}

#endif
