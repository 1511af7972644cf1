#!/usr/bin/env bash
# Fuzzes every deserializer for a fixed time on a seed corpus of real files.
#   scripts/fuzz.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 20, or $VEIL_FUZZ_SECONDS)
# BUILD_DIR is configured with CC=clang -DVEIL_FUZZ=ON (`make fuzz` does it).
# Writes under BUILD_DIR/fuzz-run/: seeds/ (from fuzz_make_corpus), corpus/
# (what the fuzzers found interesting, kept between runs), logs/, and
# artifacts/ (inputs that crashed). Exits non-zero if any target crashed,
# leaked, timed out or ran out of memory. A target this configuration did not
# build (no libhdf5, libmicrohttpd, Triton backend) prints "SKIPPED: fuzz_X not
# built: WHY".
set -euo pipefail
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [SECONDS_PER_TARGET]}
secs=${2:-${VEIL_FUZZ_SECONDS:-20}}
bin=$build/fuzz
for t in fuzz_make_corpus fuzz_secret_key fuzz_eval_key fuzz_ct_batch; do
  if [ ! -x "$bin/$t" ]; then
    echo "fuzz.sh: $bin/$t missing; configure with CC=clang -DVEIL_FUZZ=ON and build" >&2
    exit 2
  fi
done
run=$build/fuzz-run
rm -rf "$run/seeds" "$run/logs"
mkdir -p "$run/seeds" "$run/logs" "$run/artifacts"
"$bin/fuzz_make_corpus" "$run/seeds"

# The seed evaluation key is ~16 MB: let libFuzzer keep it whole.
ek_len=$(( $(find "$run/seeds/eval_key" -type f -printf '%s\n' | sort -n | tail -1) + 4096 ))
status=0
printf '%-18s %10s %10s %8s %s\n' target executions exec/s corpus result
# fuzz_one NAME BINARY MAX_LEN [SEED_DIR]
fuzz_one() {
  local t=$1 exe=$2 max_len=$3 seeds=${4:-}
  mkdir -p "$run/corpus/$t"
  local log=$run/logs/$t.log rc=0
  "$exe" "$run/corpus/$t" ${seeds:+"$seeds"} \
    -max_total_time="$secs" -max_len="$max_len" -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$run/artifacts/$t-" >"$log" 2>&1 || rc=$?
  local execs speed ncorp result
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  ncorp=$(find "$run/corpus/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc, see $log)"
    status=1
    grep -E '^==[0-9]+==ERROR|SUMMARY|runtime error|internal error|Test unit written' "$log" | head -5 >&2 || true
  fi
  printf '%-18s %10s %10s %8s %s\n' "fuzz_$t" "$execs" "$speed" "$ncorp" "$result"
}
# not_built NAME WHY: a target this configuration did not build is said, in
# the format the test summary collects, never left out in silence.
not_built() {
  echo "SKIPPED: fuzz_$1 not built: $2"
}
fuzz_one secret_key "$bin/fuzz_secret_key" 65536 "$run/seeds/secret_key"
fuzz_one eval_key "$bin/fuzz_eval_key" "$ek_len" "$run/seeds/eval_key"
fuzz_one ct_batch "$bin/fuzz_ct_batch" 65536 "$run/seeds/ct_batch"
# The model loader: structurally valid HDF5 files of arbitrary content
# (written by the target itself) and, for inputs starting with 'R', raw byte
# mutations of HDF5 files; then the server's request parsing. The target
# writes its own small seeds (loaders/fuzz_model.c write_seeds: generator
# inputs of a few hundred bytes, and small model files as raw seeds, a few
# kB): the real sample models (30 to 116 kB) held it to about one run a second.
if [ -x "$build/loaders/fuzz_model" ]; then
  mkdir -p "$run/seeds/model"
  VEIL_FUZZ_MODEL_SEEDS="$run/seeds/model" "$build/loaders/fuzz_model" 2>"$run/logs/model-seeds.log" || {
    echo "fuzz.sh: fuzz_model could not write its seeds:" >&2; cat "$run/logs/model-seeds.log" >&2; exit 1; }
  model_len=$(( $(find "$run/seeds/model" -type f -printf '%s\n' | sort -n | tail -1) + 4096 ))
  fuzz_one model "$build/loaders/fuzz_model" "$model_len" "$run/seeds/model"
else
  not_built model "needs the HDF5 loader (libhdf5 not found when $build was configured)"
fi
# The .npy and .csv input readers: the target writes its own seeds (a few
# valid files of each format, the first byte picking format and flags).
if [ -x "$build/loaders/fuzz_inputs" ]; then
  mkdir -p "$run/seeds/inputs"
  VEIL_FUZZ_INPUTS_SEEDS="$run/seeds/inputs" "$build/loaders/fuzz_inputs" 2>"$run/logs/inputs-seeds.log" || {
    echo "fuzz.sh: fuzz_inputs could not write its seeds:" >&2; cat "$run/logs/inputs-seeds.log" >&2; exit 1; }
  fuzz_one inputs "$build/loaders/fuzz_inputs" 65536 "$run/seeds/inputs"
else
  not_built inputs "needs the HDF5 loader (libhdf5 not found when $build was configured)"
fi
# The Triton backend's model-configuration reader: seeded with a configuration
# as Triton serializes it.
if [ -x "$build/host/triton/fuzz_triton_config" ]; then
  mkdir -p "$run/seeds/triton_config"
  printf '%s' '{"name":"tiny","backend":"veil","max_batch_size":8,"input":[{"name":"KEY_ID","data_type":"TYPE_STRING","dims":[1]}],"parameters":{"keys_dir":{"string_value":"/var/lib/veil/keys"},"role":{"string_value":"infer"},"rounding_bits":{"string_value":"6"},"p_error":{"string_value":"1e-9"},"max_batch":{"string_value":"32"},"key_cache":{"string_value":"2"},"params":{"string_value":"nn-p5-norm2e0-2m40"},"bounds":{"string_value":"worst-case"}},"model_warmup":[]}' \
    > "$run/seeds/triton_config/full.json"
  fuzz_one triton_config "$build/host/triton/fuzz_triton_config" 8192 "$run/seeds/triton_config"
else
  not_built triton_config "needs the Triton backend (VEIL_TRITON not OFF, libhdf5 and libmicrohttpd)"
fi
# veil-server's request parsing: the target writes its own seeds (routes,
# real infer batches of models/tiny.h5 under its fixed key, an evaluation
# key's header).
if [ -x "$build/host/fuzz_request" ]; then
  mkdir -p "$run/seeds/request"
  VEIL_FUZZ_REQUEST_SEEDS="$run/seeds/request" "$build/host/fuzz_request" 2>"$run/logs/request-seeds.log" || {
    echo "fuzz.sh: fuzz_request could not write its seeds:" >&2; cat "$run/logs/request-seeds.log" >&2; exit 1; }
  request_len=$(( $(find "$run/seeds/request" -type f -printf '%s\n' | sort -n | tail -1) + 4096 ))
  fuzz_one request "$build/host/fuzz_request" "$request_len" "$run/seeds/request"
else
  not_built request "needs veil-server's parts (libmicrohttpd and libhdf5)"
fi
# What `veil remote` reads of a server's answers (a hostile server): JSON
# answers of veil-server and Triton (first byte: even, the rest the body)
# and a Triton binary output (first byte 1, a 4-byte header length, the body).
if [ -x "$build/host/fuzz_client_answer" ]; then
  s=$run/seeds/client_answer
  mkdir -p "$s"
  printf '\176%s' '{"error":"params_mismatch","status":400,"message":"key for \"a\\\\b\""}' >"$s/error.json"
  printf '\176%s' '{"key_id":"0123456789abcdef0123456789abcdef","params_id":"nn-p5","key_fp":"00ff"}' >"$s/key.json"
  printf '\376%s' '{"name":"tiny","params_id":"nn-p5-norm2e0-2m40","model_fp":"ab","compile_options":"rounding-bits=6"}' >"$s/model.json"
  printf '\000%s' '{"backend":"veil","parameters":{"rounding_bits":{"string_value":"6"},"p_error":{"string_value":"1e-9"},"params":{"string_value":"nn-p5-norm2e0-2m40"},"bounds":{"string_value":"worst-case"}}}' >"$s/triton-config.json"
  printf '\001\032\000\000\000{"outputs":[{"name":"R"}]}\005\000\000\000hello' >"$s/triton-answer.bin"
  fuzz_one client_answer "$build/host/fuzz_client_answer" 8192 "$s"
else
  not_built client_answer "needs the client (libhdf5)"
fi
exit $status
