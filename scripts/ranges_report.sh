#!/usr/bin/env bash
# Ranges report (issue 10, "ranges that hold"): for every sample model, how
# many values leave their compiled ranges, on the golden inputs and on the
# whole test split of the model's own training script (scikit-learn's bundled
# digits and breast-cancer sets: offline), under three compilations:
#   old       the 128 stored calibration samples only, margin 0 (veil before
#             issue 10: a copy of the model whose layers' calib_range are
#             [0, 0], which the compiler reads as "not stored")
#   margin 0  ranges over the exporter's range set (the training split,
#             calib_range), no margin
#   default   the training-split ranges plus --range-margin 0.25
# "values": simulate's count of values outside a node's compiled range (the
# count `veil run` warns with; a value read by a decomposed lookup also counts
# the internal values it pushes out); "samples flagged": samples whose
# --range-check counts are not zero (lookup inputs and output accumulators).
#
#   scripts/ranges_report.sh [BUILD_DIR] [OUT_MD]     (default build, docs/results/ranges.md)
#   MODELS="tiny mlp_digits" scripts/ranges_report.sh
#
# Needs the exporter venv (scripts/setup-python.sh) for the data sets.
set -euo pipefail
build=${1:-build}
out=${2:-docs/results/ranges.md}
cd "$(dirname "$0")/.."
veil="$build/host/veil"
[ -x "$veil" ] || { echo "ranges_report: no $veil (build first)" >&2; exit 1; }
models=${MODELS:-tiny mlp_digits cnn_digits source_bc target_bc source14_bc source16_bc}
venv=$(bash scripts/setup-python.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Test splits and calib_range-free copies, from the training scripts' own data
# code (training and export replaced by stubs: nothing is trained here).
"$venv/bin/python" - "$tmp" $models <<'EOF'
import importlib, os, shutil, sys
import h5py, numpy as np
tmp, names = sys.argv[1], sys.argv[2:]
sys.path.insert(0, "models")
import sample_common as sc

class Any:  # passes the scripts' sanity asserts on the stub's report
    def __ge__(self, o): return True
    __le__ = __gt__ = __lt__ = __ge__
    def __format__(self, spec): return "-"
    def __float__(self): return 0.0

class Rep(dict):
    def __getitem__(self, k): return Any()

got = {}
def export_stub(model, xtr, xte, yte, name, *a, **k):
    got[name] = (xte, yte)
    return Rep()

sc.train = lambda model, *a, **k: model
sc.export_model = export_stub
for script in ("train_tiny", "train_mlp_digits", "train_cnn_digits", "train_source_target"):
    m = importlib.import_module(script)
    m.sc.train, m.sc.export_model = sc.train, sc.export_model
    try:
        m.main()
    except Exception as e:  # noqa: BLE001
        print("ranges_report: %s: %s (after the exports it reached)" % (script, e), file=sys.stderr)
wide = importlib.import_module("train_wide")
wide.sc.train, wide.sc.export_model = sc.train, sc.export_model
for n in ("source14_bc", "source16_bc"):
    try:
        wide.main([n])
    except Exception as e:  # noqa: BLE001
        print("ranges_report: train_wide %s: %s" % (n, e), file=sys.stderr)
for name in names:
    src = os.path.join("models", name + ".h5")
    old = os.path.join(tmp, name + "-old.h5")
    shutil.copy(src, old)
    with h5py.File(old, "r+") as f:
        for g in ("layers", "outputs", "inputs"):
            for k in f[g]:
                if "calib_range" in f[g][k].attrs and g != "inputs":
                    # [0, 0]: "not stored" to the compiler (an absent attribute
                    # loads as the widest range, i.e. worst-case bounds)
                    f[g][k].attrs["calib_range"] = np.zeros(2, dtype=np.int64)
        inputs = sorted(f["inputs"], key=lambda k: int(f["inputs"][k].attrs["index"]))
    if name not in got:
        print("ranges_report: %s: no test split (its training script did not reach the export)"
              % name, file=sys.stderr)
        continue
    xte, yte = got[name]
    xs = xte if isinstance(xte, (tuple, list)) else (xte,)
    with h5py.File(os.path.join(tmp, name + "-test.h5"), "w") as f:
        for k, x in zip(inputs, xs):
            f.create_dataset("inputs/" + k, data=np.asarray(x, dtype=np.float32))
        f.create_dataset("labels", data=np.asarray(yte, dtype=np.int64))
EOF

# values out of range and samples flagged for one (model file, inputs, margin)
count() {
  local model=$1 input=$2 margin=$3 o v f
  o=$("$veil" run "$model" --input "$input" --range-margin "$margin" 2>&1 >/dev/null) || {
    echo "ranges_report: veil run $model --input $input failed: $o" >&2; echo "error error"; return; }
  v=$(sed -n 's/^veil: warning: \([0-9]*\) value(s) left their compiled range.*/\1/p' <<<"$o")
  o=$("$veil" run "$model" --input "$input" --range-margin "$margin" --range-check on 2>/dev/null) || {
    echo "${v:-0} error"; return; }
  f=$(sed -n 's/^range check (simulate): \([0-9]*\/[0-9]*\) samples flagged/\1/p' <<<"$o")
  echo "${v:-0} ${f:-?}"
}

{
  echo "# Values outside their compiled ranges, per sample model"
  echo
  echo "Made by \`scripts/ranges_report.sh\` ($(date -u +%Y-%m-%d), veil $(git rev-parse --short HEAD))."
  echo "Golden: the 64 (tiny: all) stored golden inputs; test: the whole test split of the model's"
  echo "training script (scikit-learn's bundled data, offline). Each cell: values out of range"
  echo "(simulate's count) / samples flagged by \`--range-check on\`."
  echo "*old*: the 128 stored calibration samples, margin 0 (before issue 10); *margin 0*: ranges"
  echo "over the training split (the exporter's \`calib_range\`); *default*: those plus"
  echo "\`--range-margin 0.25\`."
  echo
  echo '*range set*: the samples the stored `calib_range` was taken over (`/calibration@range_samples`;'
  echo "128: the file predates the exporter's \`--range-set\`, its calib_range is the 128 calibration"
  echo "samples' range, so *margin 0* equals *old* until the model is exported again)."
  echo
  echo "| model | range set | golden, old | golden, margin 0 | golden, default | test, old | test, margin 0 | test, default | test samples |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for name in $models; do
    m="models/$name.h5" old="$tmp/$name-old.h5" test="$tmp/$name-test.h5"
    rs=$("$venv/bin/python" -c "import h5py,sys; a=h5py.File(sys.argv[1])['calibration'].attrs; print(int(a.get('range_samples', a['samples'])))" "$m" 2>/dev/null)
    row="| $name | $rs"
    for spec in "$old $m 0" "$m $m 0" "$m $m 0.25"; do
      set -- $spec
      read -r v f < <(count "$1" "$2" "$3")
      row="$row | $v / $f"
    done
    if [ -f "$test" ]; then
      for spec in "$old 0" "$m 0" "$m 0.25"; do
        set -- $spec
        read -r v f < <(count "$1" "$test" "$2")
        row="$row | $v / $f"
      done
      n=$("$venv/bin/python" -c "import h5py,sys; print(len(h5py.File(sys.argv[1])['labels']))" "$test")
      row="$row | $n |"
    else
      row="$row | n/a | n/a | n/a | no test split |"
    fi
    echo "$row"
    echo "ranges_report: $name done" >&2
  done
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
