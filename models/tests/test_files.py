"""The committed sample models: schema v1 conformance and golden vectors."""

import glob
import os

import h5py
import numpy as np
import pytest

from veil_export import check_golden, dequantize, h5io, intpath, predict, validate

pytestmark = pytest.mark.exporter

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPECTED = ["tiny", "mlp_digits", "cnn_digits", "source_bc", "target_bc", "source14_bc",
            "source16_bc", "cnn_maxpool_digits", "diabetes_reg"]
FILES = sorted(glob.glob(os.path.join(MODELS, "*.h5")))


def test_expected_models_are_committed():
    names = {os.path.basename(f)[:-3] for f in FILES}
    assert set(EXPECTED) <= names, "missing: %s" % (set(EXPECTED) - names)


@pytest.fixture(params=FILES, ids=[os.path.basename(f) for f in FILES])
def path(request):
    return request.param


def test_schema_conformance(path):
    assert validate(path) == []


def test_root_attributes(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == b"veil-model"
        assert f.attrs["version"] == 1 and f.attrs["version"].dtype == np.int64
        assert f.attrs["name"].decode() == os.path.basename(path)[:-3]
        assert f.attrs["producer"].decode().startswith("veil_export")
        if f.attrs["task"] == b"regression":
            assert 0.3 < f.attrs["brevitas_r2"] <= 1.0
            assert abs(f.attrs["int_rmse"] - f.attrs["brevitas_rmse"]) <= \
                0.01 * f.attrs["brevitas_rmse"]
            assert "brevitas_accuracy" not in f.attrs and "int_accuracy" not in f.attrs
            return
        assert f.attrs["task"] == b"classification"
        assert 0.5 < f.attrs["brevitas_accuracy"] <= 1.0
        assert abs(f.attrs["int_accuracy"] - f.attrs["brevitas_accuracy"]) <= 0.01


def test_golden_outputs_recomputed_exactly(path):
    ok, msg = check_golden(path)
    assert ok, msg


def test_golden_close_to_brevitas(path):
    ir = h5io.read(path)
    g = ir["golden"]
    assert 50 <= g["attrs"]["samples"] <= 100
    errs = []
    for out in ir["outputs"]:
        deq = dequantize(out, g["outputs"][out["name"]])
        ref = g["float_outputs"][out["name"]]
        err = np.max(np.abs(deq - ref))
        errs.append(err)
        # Accumulator outputs are exact up to float32 rounding of Brevitas's forward.
        assert err < 1e-3 * max(1.0, np.max(np.abs(ref)))
        # ... well within the exporter's bound of 2 quantization steps of the output.
        step = np.asarray(out["scale"]).reshape((1, -1) + (1,) * (deq.ndim - 2))
        assert np.max(np.abs(deq - ref) / step) < 1e-3
    # The recorded max_abs_error is the error of these samples (not a bound above it).
    assert g["attrs"]["max_abs_error"] == pytest.approx(max(errs), rel=1e-9, abs=1e-15)
    first = ir["outputs"][0]["name"]
    if ir["attrs"]["task"] == "regression":
        t = g["labels"]
        assert t.dtype == np.float64 and len(t) == g["attrs"]["samples"]
        for key, out in (("int_rmse", dequantize(ir["outputs"][0], g["outputs"][first])),
                         ("brevitas_rmse", g["float_outputs"][first])):
            rmse = np.sqrt(np.mean((out.reshape(len(t), -1) - t.reshape(len(t), -1)) ** 2))
            assert g["attrs"][key] == pytest.approx(rmse, rel=1e-12)
        return
    pi = predict(dequantize(ir["outputs"][0], g["outputs"][first]))
    pf = predict(g["float_outputs"][first])
    assert int(np.sum(pi != pf)) == g["attrs"]["mismatch_count"]
    assert abs(np.mean(pi == g["labels"]) - g["attrs"]["int_accuracy"]) < 1e-12


def test_ranges_hold_and_tables_cover(path):
    """Every value of the integer path over calibration and golden inputs lies in
    its tensor's worst-case range; tables that say so cover their input's range."""
    ir = h5io.read(path)
    rng = {i["name"]: i["range"] for i in ir["inputs"]}
    for l in ir["layers"]:
        rng[l["output"]] = l["range"]
    for data in (ir["calibration"], ir["golden"]["inputs"]):
        tensors = intpath.run(ir["layers"], data)
        for name, v in tensors.items():
            assert rng[name][0] <= v.min() and v.max() <= rng[name][1], name
    for l in ir["layers"]:
        if l["op"] == "lut" and l["covers_worst_case"]:
            r = rng[l["inputs"][0]]
            assert l["in_min"] <= r[0] and r[1] <= l["in_max"], l["output"]
        if l["op"] in ("linear", "conv2d"):
            w = l["weight"]
            lim = 2 ** (l["weight_bits"] - 1)
            assert np.all(np.abs(w) < lim), l["output"]


def test_calibration_inside_recorded_ranges(path):
    """calib_range holds the /calibration values; files without range_samples
    (veil_export 1.0) took it over /calibration alone, so it is their exact range."""
    ir = h5io.read(path)
    tensors = intpath.run(ir["layers"], ir["calibration"])
    n = len(next(iter(ir["calibration"].values())))
    for t in ir["inputs"] + ir["layers"]:
        name = t.get("output", t.get("name"))
        v, (lo, hi) = tensors[name], t["calib_range"]
        if "range_samples" in ir:
            assert lo <= v.min() and v.max() <= hi, name
        else:
            assert [int(v.min()), int(v.max())] == [lo, hi], name
    assert ir.get("range_samples", n) >= n
    assert 100 <= n <= 200


def test_tiny_model_fits_5_bits():
    ir = h5io.read(os.path.join(MODELS, "tiny.h5"))
    for t in ir["inputs"] + ir["layers"]:
        assert intpath.bit_width(*t["range"]) <= 5, t
    for l in ir["layers"]:
        if l["op"] == "lut":
            assert l["in_max"] - l["in_min"] + 1 <= 32


@pytest.mark.parametrize("name", ["mlp_digits", "cnn_digits", "target_bc", "cnn_maxpool_digits"])
def test_four_bit_models_accumulators(name):
    ir = h5io.read(os.path.join(MODELS, name + ".h5"))
    bits = [intpath.bit_width(*l["range"]) for l in ir["layers"] if l["op"] in ("linear", "conv2d")]
    assert 11 <= max(bits) <= 14
    for l in ir["layers"]:
        if l["op"] == "lut" and l["kind"] == "activation":
            assert l["n_bits"] == 4


def _train_tiny(out_dir):
    import subprocess
    import sys
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, VEIL_MODELS_OUT=str(out_dir), PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, os.path.join(MODELS, "train_tiny.py")], env=env,
                       capture_output=True, text=True, cwd=MODELS)
    assert r.returncode == 0, r.stdout + r.stderr
    return h5io.read(str(out_dir / "tiny.h5"))


def _same_structure(new, old):
    """None when the two files have the same graph: inputs, layers (op, kind,
    inputs, shapes, bit widths, signedness, quantization bits) and outputs,
    whatever the trained values; else what differs."""
    keys = ("op", "kind", "inputs", "shape", "n_bits", "signed", "weight_bits", "per_channel",
            "source")
    if [(i["name"], list(i["shape"])) for i in new["inputs"]] != \
            [(i["name"], list(i["shape"])) for i in old["inputs"]]:
        return "inputs"
    if len(new["layers"]) != len(old["layers"]):
        return "layer count"
    for a, b in zip(new["layers"], old["layers"]):
        for k in keys:
            va, vb = a.get(k), b.get(k)
            va = va.tolist() if hasattr(va, "tolist") else va
            vb = vb.tolist() if hasattr(vb, "tolist") else vb
            if va != vb:
                return "%s/%s: %r against %r" % (b["output"], k, va, vb)
        # a table's length is its input's range: a trained value, not checked
        if ("table" in a) != ("table" in b):
            return "%s/table" % b["output"]
        if ("weight" in a) != ("weight" in b) or \
                ("weight" in b and np.shape(a["weight"]) != np.shape(b["weight"])):
            return "%s/weight shape" % b["output"]
    if [o["name"] for o in new["outputs"]] != [o["name"] for o in old["outputs"]]:
        return "outputs"
    return None


def _same_model(new, old):
    """None when equal (weights, tables, ranges, golden), else what differs."""
    if len(new["layers"]) != len(old["layers"]):
        return "layer count"
    for a, b in zip(new["layers"], old["layers"]):
        for k in ("weight", "table"):
            if k in b and not np.array_equal(a[k], b[k]):
                return "%s/%s" % (b["output"], k)
        if a["range"].tolist() != b["range"].tolist():
            return "%s/range" % b["output"]
    for k in ("inputs", "outputs"):
        for n, v in old["golden"][k].items():
            if not np.array_equal(new["golden"][k][n], v):
                return "golden/%s/%s" % (k, n)
    return None


def test_tiny_training_is_reproducible(tmp_path):
    """Re-running train_tiny.py gives the committed tiny.h5 (same tables, golden).

    Training is float32 on the CPU: seeded and single-threaded it is
    deterministic on one machine, but torch's CPU kernels give other
    last-bit results on other CPUs (the committed file was made on an Intel
    Xeon; on an AMD EPYC of the same ISA level the first weight differs, with
    every ATen/MKL/oneDNN dispatch setting tried). So: equal to the committed
    file, or else two runs here must agree with each other (deterministic
    training) and the test reports the machine difference as a skip."""
    new = _train_tiny(tmp_path / "a")
    diff = _same_model(new, h5io.read(os.path.join(MODELS, "tiny.h5")))
    if diff is None:
        return
    again = _train_tiny(tmp_path / "b")
    assert _same_model(again, new) is None, "training is not deterministic on this machine"
    # what no float kernel decides must still be the committed file's: a
    # change to train_tiny.py's model fails here, not only on the Xeon
    assert _same_structure(new, h5io.read(os.path.join(MODELS, "tiny.h5"))) is None
    pytest.skip("train_tiny.py is deterministic here but this CPU's float kernels give another "
                "model than the committed tiny.h5 (first difference: %s)" % diff)