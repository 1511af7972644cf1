"""The wide sample models (train_wide.py): source14_bc and source16_bc reach
the seed's accumulator widths, 14 and 16 bits; a 17-bit variant (made here,
not committed) is refused by `veil compile` naming the layer; their
calib_range is the min/max over the whole training set.

The `veil` binary is found through VEIL_BIN (CTest sets it to the build's
host/veil); without it the tests that run it skip and say so."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from veil_export import h5io, intpath

pytestmark = pytest.mark.exporter

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDE = {"source14_bc": 14, "source16_bc": 16}
MARGIN = 0.25  # the compiler's stated range margin (VEIL_RANGE_MARGIN_DEFAULT)


def _bits(span):
    return max(1, int(span).bit_length())


def _widened_bits(lo, hi, worst):
    """Bits of the span of [lo, hi] widened by MARGIN of its width on each side,
    clipped to the worst case (veil compile's default calibrated bounds)."""
    mg = MARGIN * (hi - lo)
    return _bits(min(math.ceil(hi + mg), worst[1]) - max(math.floor(lo - mg), worst[0]))


def _lookup_inputs(ir):
    """(layer, calibration values) of every tensor a lookup reads."""
    layers = {l["output"]: l for l in ir["layers"]}
    tensors = intpath.run(ir["layers"], ir["calibration"])
    return [(layers[l["inputs"][0]], tensors[l["inputs"][0]])
            for l in ir["layers"] if l["op"] == "lut" and l["inputs"][0] in layers]


def _widest(ir):
    """Widest lookup input by the stored calib_range and by the /calibration samples."""
    by_range = max(_widened_bits(*l["calib_range"], l["range"]) for l, _ in _lookup_inputs(ir))
    by_samples = max(_widened_bits(int(v.min()), int(v.max()), l["range"])
                     for l, v in _lookup_inputs(ir))
    return by_range, by_samples


def _veil():
    exe = os.environ.get("VEIL_BIN", "")
    if not exe or not os.access(exe, os.X_OK):
        pytest.skip("VEIL_BIN is not set to the veil binary (CTest sets it to build/host/veil)")
    return exe


def _training_inputs():
    sys.path.insert(0, MODELS)
    import sample_common as sc
    import train_source_target as st
    xtr = sc.breast_cancer(st.SEED)[0]
    return xtr[:, :st.PART].copy()


@pytest.mark.parametrize("name", sorted(WIDE))
def test_wide_model_accumulator_width(name):
    ir = h5io.read(os.path.join(MODELS, name + ".h5"))
    assert _widest(ir) == (WIDE[name], WIDE[name])
    assert ir["attrs"]["int_accuracy"] >= 0.9


@pytest.mark.parametrize("name", sorted(WIDE))
def test_wide_model_calib_range_is_the_training_set_range(name):
    """Quantizing the training split with the file's input scale and running the
    integer path reproduces every stored calib_range exactly (min and max)."""
    ir = h5io.read(os.path.join(MODELS, name + ".h5"))
    (inp,) = ir["inputs"]
    x = _training_inputs()
    assert ir["range_samples"] == len(ir["calibration"][inp["name"]]) + len(x)
    q = np.rint(x.astype(np.float32) / np.float32(inp["scale"])).astype(np.int64)
    q = np.clip(q + int(inp["zero_point"]), *inp["range"]) - int(inp["zero_point"])
    tensors = intpath.run(ir["layers"], {inp["name"]: q})
    for t in ir["inputs"] + ir["layers"]:
        name_t = t.get("output", t.get("name"))
        v = tensors[name_t]
        assert [int(v.min()), int(v.max())] == list(t["calib_range"]), name_t
        cal = intpath.run(ir["layers"], ir["calibration"])[name_t]
        assert t["calib_range"][0] <= cal.min() and cal.max() <= t["calib_range"][1]


@pytest.mark.parametrize("name", sorted(WIDE))
def test_veil_compile_reports_widest_accumulator(name):
    exe = _veil()
    path = os.path.join(MODELS, name + ".h5")
    r = subprocess.run([exe, "compile", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "widest accumulator %d bits" % WIDE[name] in r.stdout, r.stdout
    r = subprocess.run([exe, "run", path, "--mode", "simulate"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "golden vectors (unrounded integer path): 128/128 values equal, 64/64 argmax" \
        in r.stdout, r.stdout


@pytest.fixture(scope="module")
def model17(tmp_path_factory):
    """train_wide.py's 17-bit variant, written to a temporary directory."""
    out = tmp_path_factory.mktemp("wide17")
    env = dict(os.environ, VEIL_MODELS_OUT=str(out), PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, os.path.join(MODELS, "train_wide.py"), "source17_bc"],
                       env=env, capture_output=True, text=True, cwd=MODELS)
    assert r.returncode == 0, r.stdout + r.stderr
    return str(out / "source17_bc.h5")


def test_17_bit_variant_is_17_bits(model17):
    assert _widest(h5io.read(model17)) == (17, 17)


def test_veil_compile_refuses_17_bits_naming_the_layer(model17):
    exe = _veil()
    r = subprocess.run([exe, "compile", model17], capture_output=True, text=True)
    assert r.returncode != 0, r.stdout
    assert "layer 0001_lut: lookup input of 17 bits" in r.stderr, r.stderr
