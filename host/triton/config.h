/* config.h — what libtriton_veil.so reads from a model's config.pbtxt.
 *
 * Triton hands the backend the model configuration as JSON (protobuf's JSON
 * mapping of config.pbtxt). veil reads `max_batch_size` and the `parameters`
 * map, whose values are strings:
 *
 *   parameters: { key: "keys_dir" value: { string_value: "/var/lib/veil/keys" } }
 *
 * Parameters (the names of veil-server's options, with '_' for '-'):
 *   role                 "infer" (default) or "keys": the veil_keys model,
 *                        which stores uploaded evaluation keys
 *   keys_dir             the key store shared by every instance and replica
 *                        (required; created 0700 if missing)
 *   max_batch            samples per backend batch (default 16)
 *   max_request_samples  samples in one request's ciphertext batch (default
 *                        1024; fewer when that many, decoded, exceed 64 MiB:
 *                        the model's load log says the figure)
 *   key_cache            evaluation keys resident per instance, LRU (default 4)
 *   key_store_max_mb     uploads (role keys) that would take keys_dir past this
 *                        many MiB are refused, veil key_store_full (default
 *                        10240; 0: no limit); as veil-server's option
 *   key_ttl_hours        keys not used for this many hours are removed (at
 *                        load and every 5 minutes, by a thread of the model;
 *                        default 0: kept forever); as veil-server's option
 *   rounding_bits, rounding, bounds, p_error, params, ... every compile
 *                        option of `veil compile --help`, '_' for '-' (they
 *                        must match the clients': the program fingerprint
 *                        says so)
 * Anything else is refused, naming the parameter. */
#ifndef VEIL_TRITON_CONFIG_H
#define VEIL_TRITON_CONFIG_H

#include <stddef.h>

#include "veil/program.h"
#include "veil/status.h"

typedef enum vt_role { VT_ROLE_INFER = 0, VT_ROLE_KEYS = 1 } vt_role;

typedef struct vt_config {
    vt_role role;
    char keys_dir[4096];
    long max_batch_size; /* Triton's (requests per execute; 0: no batching) */
    size_t max_batch, max_request_samples, key_cache;
    unsigned key_store_max_mb; /* 0: unbounded */
    unsigned key_ttl_hours;    /* 0: keys kept forever */
    veil_compile_options compile;
    char params_id[64]; /* compile.params_id points here when set */
} vt_config;

/* Parses the model configuration JSON (len bytes, not NUL-terminated).
 * VEIL_ERR_FORMAT / VEIL_ERR_ARG name the parameter that is wrong. */
veil_status vt_config_parse(const char *json, size_t len, vt_config *out);

#endif
