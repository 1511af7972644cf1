// LABELS: unit triton
// LINKS: veil_triton_config
/* test_triton_config.c — the Triton backend's reader of config.pbtxt (as the
 * JSON Triton hands a backend) and the compile options it shares with the
 * command line (veil_compile_options_set): every parameter, refusals that name
 * the parameter, and every truncation of a valid configuration refused
 * without a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

/* What Triton 2.51 serializes for a veil model (abridged, same shape). */
static const char k_cfg[] =
    "{\"name\":\"tiny\",\"platform\":\"\",\"backend\":\"veil\",\"version_policy\":{\"latest\":"
    "{\"num_versions\":1}},\"max_batch_size\":8,\"input\":[{\"name\":\"KEY_ID\",\"data_type\":"
    "\"TYPE_STRING\",\"dims\":[1],\"optional\":false},{\"name\":\"CT_BATCH\",\"data_type\":"
    "\"TYPE_STRING\",\"dims\":[1]}],\"output\":[{\"name\":\"RESULT\",\"dims\":[1]}],"
    "\"dynamic_batching\":{\"preferred_batch_size\":[8],\"max_queue_delay_microseconds\":10000},"
    "\"instance_group\":[{\"name\":\"tiny_0\",\"kind\":\"KIND_CPU\",\"count\":1,\"gpus\":[]}],"
    "\"parameters\":{\"keys_dir\":{\"string_value\":\"/var/lib/veil/keys\"},\"rounding_bits\":"
    "{\"string_value\":\"6\"},\"p_error\":{\"string_value\":\"1e-9\"},\"max_batch\":"
    "{\"string_value\":\"32\"},\"key_cache\":{\"string_value\":\"2\"},\"params\":"
    "{\"string_value\":\"nn-p5-norm2e0-2m40\"},\"bounds\":{\"string_value\":\"worst-case\"},"
    "\"rounding\":{\"string_value\":\"approximate\"}},\"model_warmup\":[]}";

static veil_status parse(const char *json, vt_config *c) {
    return vt_config_parse(json, strlen(json), c);
}

/* k_cfg with its parameters object replaced. */
static veil_status parse_params(const char *params, vt_config *c) {
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"name\":\"m\",\"max_batch_size\":4,\"parameters\":{%s}}", params);
    return parse(buf, c);
}

static void test_full_config(void) {
    vt_config c;
    CU_ASSERT_EQUAL_FATAL(parse(k_cfg, &c), VEIL_OK);
    CU_ASSERT_EQUAL(c.role, VT_ROLE_INFER);
    CU_ASSERT_STRING_EQUAL(c.keys_dir, "/var/lib/veil/keys");
    CU_ASSERT_EQUAL(c.max_batch_size, 8);
    CU_ASSERT_EQUAL(c.max_batch, 32);
    CU_ASSERT_EQUAL(c.key_cache, 2);
    CU_ASSERT_EQUAL(c.max_request_samples, 1024); /* default */
    CU_ASSERT_EQUAL(c.compile.rounding_bits, 6);
    CU_ASSERT_EQUAL(c.compile.rounding, VEIL_ROUNDING_APPROXIMATE);
    CU_ASSERT_EQUAL(c.compile.bounds, VEIL_BOUNDS_WORST_CASE);
    CU_ASSERT_DOUBLE_EQUAL(c.compile.p_error, 1e-9, 1e-15);
    CU_ASSERT_PTR_EQUAL(c.compile.params_id, c.params_id);
    CU_ASSERT_STRING_EQUAL(c.params_id, "nn-p5-norm2e0-2m40");
}

static void test_defaults_and_role(void) {
    vt_config c;
    CU_ASSERT_EQUAL_FATAL(
        parse_params("\"keys_dir\":{\"string_value\":\"k\"},\"role\":{\"string_value\":\"keys\"}",
                     &c),
        VEIL_OK);
    CU_ASSERT_EQUAL(c.role, VT_ROLE_KEYS);
    veil_compile_options d;
    veil_compile_options_default(&d);
    CU_ASSERT_EQUAL(c.compile.rounding_bits, d.rounding_bits);
    CU_ASSERT_EQUAL(c.max_batch, 16);
    CU_ASSERT_EQUAL(c.key_cache, 4);
    CU_ASSERT_EQUAL(c.key_store_max_mb, 10240); /* veil-server's --key-store-max-mb default */
    CU_ASSERT_EQUAL(c.key_ttl_hours, 0);
    CU_ASSERT_EQUAL_FATAL(parse_params("\"keys_dir\":{\"string_value\":\"k\"},"
                                       "\"key_store_max_mb\":{\"string_value\":\"0\"},"
                                       "\"key_ttl_hours\":{\"string_value\":\"48\"}",
                                       &c),
                          VEIL_OK);
    CU_ASSERT_EQUAL(c.key_store_max_mb, 0);
    CU_ASSERT_EQUAL(c.key_ttl_hours, 48);
    /* rounding_bits none = no rounding; escapes in strings decoded */
    CU_ASSERT_EQUAL_FATAL(parse_params("\"keys_dir\":{\"string_value\":\"a\\\\b\\\"c\"},"
                                       "\"rounding_bits\":{\"string_value\":\"none\"}",
                                       &c),
                          VEIL_OK);
    CU_ASSERT_EQUAL(c.compile.rounding_bits, 0);
    CU_ASSERT_STRING_EQUAL(c.keys_dir, "a\\b\"c");
}

static void expect_refusal(const char *params, const char *want) {
    vt_config c;
    veil_status st = parse_params(params, &c);
    CU_ASSERT_NOT_EQUAL(st, VEIL_OK);
    if (!strstr(veil_error_message(), want))
        fprintf(stderr, "'%s': expected '%s' in: %s\n", params, want, veil_error_message());
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), want));
}

static void test_refusals(void) {
    expect_refusal("", "keys_dir is required");
    expect_refusal(
        "\"keys_dir\":{\"string_value\":\"k\"},\"rounding_bit\":{\"string_value\":\"6\"}",
        "unknown parameter 'rounding_bit'");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"rounding_bits\":{\"string_value\":"
                   "\"17\"}",
                   "rounding-bits 17");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"p_error\":{\"string_value\":\"2\"}",
                   "p-error 2");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"max_batch\":{\"string_value\":\"0\"}",
                   "parameter max_batch '0'");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"key_cache\":{\"string_value\":\"-1\"}",
                   "parameter key_cache '-1'");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"key_store_max_mb\":{\"string_value\":"
                   "\"-5\"}",
                   "parameter key_store_max_mb '-5'");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"key_ttl_hours\":{\"string_value\":"
                   "\"1h\"}",
                   "parameter key_ttl_hours '1h'");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"role\":{\"string_value\":\"admin\"}",
                   "role 'admin'");
    expect_refusal("\"keys_dir\":{\"string_value\":\"k\"},\"bounds\":{\"string_value\":\"tight\"}",
                   "--bounds tight");
    expect_refusal("\"keys_dir\":{\"int64_value\":3}", "has no string_value");
    expect_refusal("\"keys_dir\":{\"string_value\":\"\"}", "keys_dir: empty");
}

static void test_truncations(void) {
    /* Every proper prefix of a valid configuration is refused, none crashes
     * (run under the sanitizers in `make sanitize`); so are a few bytes
     * flipped to quotes and braces. */
    const size_t n = strlen(k_cfg);
    char *buf = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    size_t accepted = 0;
    for (size_t len = 0; len < n; len++) {
        /* exactly len bytes, so that AddressSanitizer sees a read past them
         * (max_batch_size's number was read with strtol, past the end of
         * "...\"max_batch_size\":8" when the text ended there) */
        char *exact = malloc(len + 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(exact);
        memcpy(exact, k_cfg, len);
        vt_config c;
        accepted += vt_config_parse(exact, len, &c) == VEIL_OK;
        free(exact);
    }
    CU_ASSERT_EQUAL(accepted, 0);
    for (size_t i = 0; i < n; i += 7) {
        static const char k_bad[] = "\"{}[],:\\";
        memcpy(buf, k_cfg, n + 1);
        buf[i] = k_bad[i % (sizeof k_bad - 1)];
        vt_config c;
        (void)vt_config_parse(buf, n, &c); /* may or may not parse; must not crash */
    }
    free(buf);
}

static void test_compile_option_names(void) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "rounding-bits", "5"), VEIL_OK);
    CU_ASSERT_EQUAL(o.rounding_bits, 5);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "rounding_bits", "7"), VEIL_OK);
    CU_ASSERT_EQUAL(o.rounding_bits, 7);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "max_poly_size", "4096"), VEIL_OK);
    CU_ASSERT_EQUAL(o.max_poly_size, 4096);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "max-poly-size", "3000"), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "rounding-bits", ""), VEIL_ERR_ARG);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "rounding-bitsx", "5"), VEIL_ERR_ARG);
    CU_ASSERT(veil_compile_option_known("p_error"));
    CU_ASSERT(!veil_compile_option_known("keys_dir"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("triton_config", NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_full_config);
    VEIL_ADD_TEST(s, test_defaults_and_role);
    VEIL_ADD_TEST(s, test_refusals);
    VEIL_ADD_TEST(s, test_truncations);
    VEIL_ADD_TEST(s, test_compile_option_names);
    return veil_test_run();
}
