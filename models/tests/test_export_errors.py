"""The exporter's refusals and failure modes: atomic writes, input rounding,
BatchNorm statistics, the error bound, unsupported quantizers, keyword calls."""

import importlib
import os
import stat

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8ActPerTensorFloat
from brevitas.quant.shifted_scaled_int import ShiftedUint8ActPerTensorFloat

from veil_export import ExportError, check_golden, export, h5io, validate
from test_exporter import blobs, fit

pytestmark = pytest.mark.exporter
export_mod = importlib.import_module("veil_export.export")  # the package's export is the function


def _data():
    return blobs(300, 6, seed=3)


def _export(model, path, **kw):
    x, y = _data()
    kw.setdefault("verbose", False)
    kw.setdefault("name", "m")
    return export(model, x[:64], x[200:], y[200:], str(path), **kw)


def _small(q=None, steps=60):
    torch.manual_seed(0)
    x, y = _data()
    m = nn.Sequential(q or qnn.QuantIdentity(bit_width=4),
                      qnn.QuantLinear(6, 4, weight_bit_width=4), nn.BatchNorm1d(4),
                      qnn.QuantReLU(bit_width=4), qnn.QuantLinear(4, 3, weight_bit_width=4))
    return fit(m, [x[:200]], y[:200], steps=steps)


# -- F1: a failed export leaves the previous file as it was ------------------

def _listing(d):
    return sorted(os.listdir(d))


def test_failed_export_leaves_previous_file(tmp_path, monkeypatch):
    model = _small()
    path = tmp_path / "m.h5"
    _export(model, path)
    good = path.read_bytes()
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert _listing(tmp_path) == ["m.h5"]

    # A non-ASCII string: refused before anything is written, naming the attribute.
    with pytest.raises(ExportError, match=r"/@description is not ASCII"):
        _export(model, path, description="caf\u00e9")
    assert path.read_bytes() == good and _listing(tmp_path) == ["m.h5"]
    with pytest.raises(ValueError, match=r"/@name is not ASCII"):
        h5io.write(str(tmp_path / "other.h5"), dict(h5io.read(str(path)),
                                                    attrs={"name": "\u00e9"}))
    assert _listing(tmp_path) == ["m.h5"]

    # An exception or an interrupt in the middle of writing the datasets.
    real = h5io._dataset
    for exc in (RuntimeError("disk full"), KeyboardInterrupt()):
        calls = [0]

        def boom(*a, **k):
            calls[0] += 1
            if calls[0] == 3:
                raise exc
            return real(*a, **k)
        monkeypatch.setattr(h5io, "_dataset", boom)
        with pytest.raises(type(exc)):
            _export(model, path, description="second try")
        assert calls[0] == 3
        assert path.read_bytes() == good and _listing(tmp_path) == ["m.h5"]
        with pytest.raises(type(exc)):  # a new file: nothing at all is left
            calls[0] = 0
            _export(model, tmp_path / "new.h5")
        assert _listing(tmp_path) == ["m.h5"]
    monkeypatch.setattr(h5io, "_dataset", real)

    # A successful export replaces the file.
    _export(model, path, description="second try")
    assert validate(str(path)) == [] and check_golden(str(path))[0]
    assert h5io.read(str(path))["attrs"]["description"] == "second try"
    assert _listing(tmp_path) == ["m.h5"]


# -- F2: input quantizers must round as the client does ----------------------

@pytest.mark.parametrize("rounding", ["FLOOR", "CEIL", "ROUND_TO_ZERO", "DPU"])
def test_refuses_input_quantizer_not_rounding_to_nearest_even(tmp_path, rounding):
    model = _small(qnn.QuantIdentity(bit_width=4, float_to_int_impl_type=rounding), steps=20)
    with pytest.raises(ExportError, match=r"^'0' \(QuantIdentity\): .*(quantizes x = |the tie )"
                                          r".*ties to even"):
        _export(model, tmp_path / "r.h5", accuracy_tolerance=1.0)
    assert not os.path.exists(tmp_path / "r.h5")


def test_refuses_floor_input_quant_of_a_layer(tmp_path):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = qnn.QuantLinear(6, 3, weight_bit_width=4, input_quant=Int8ActPerTensorFloat,
                                      input_bit_width=4, input_float_to_int_impl_type="FLOOR")

        def forward(self, x):
            return self.fc(x)
    with pytest.raises(ExportError, match=r"^'fc' \(QuantLinear\) input_quant: quantizes x = "):
        _export(M().eval(), tmp_path / "r.h5", accuracy_tolerance=1.0)


@pytest.mark.parametrize("quant", [
    lambda: qnn.QuantIdentity(bit_width=4),
    lambda: qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, bit_width=4),  # zp != 0
    lambda: qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=5),  # exact ties
    lambda: qnn.QuantReLU(bit_width=4),
    lambda: qnn.QuantHardTanh(bit_width=4, min_val=-1.0, max_val=1.0, narrow_range=True),
], ids=["int4", "shifted_uint4", "fixed_point", "relu", "hardtanh_narrow"])
def test_accepts_round_to_nearest_input_quantizers(tmp_path, quant):
    model = _small(quant(), steps=20)
    _export(model, tmp_path / "ok.h5", accuracy_tolerance=1.0)
    assert validate(str(tmp_path / "ok.h5")) == []


def test_input_rule_reproduces_brevitas_on_exact_ties():
    """The rule the probes compare with, on a power-of-two scale (every tie
    exact in float32 and float64): Brevitas's integers, ties to even after the
    zero point is added."""
    q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=5,
                          return_quant_tensor=True).eval()
    with torch.no_grad():
        scale = float(q(torch.zeros(1, 1)).scale)
    x = (np.arange(-20, 20) + 0.5) * scale
    with torch.no_grad():
        out = q(torch.tensor(x, dtype=torch.float32).reshape(-1, 1))
    zp = int(out.zero_point)
    rule = np.clip(np.rint(x / scale + zp), -16, 15)
    assert np.array_equal(out.int().numpy().reshape(-1), rule)


# -- F4: BatchNorm statistics, the error bound --------------------------------

def test_refuses_batchnorm_without_running_stats(tmp_path):
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4), qnn.QuantLinear(6, 4, weight_bit_width=4))
    m.add_module("bn", nn.BatchNorm1d(4, track_running_stats=False))
    m.add_module("act", qnn.QuantReLU(bit_width=4))
    m.add_module("fc", qnn.QuantLinear(4, 3, weight_bit_width=4))
    with pytest.raises(ExportError, match=r"'bn' \(BatchNorm1d\): BatchNorm without running "
                                          r"statistics \(track_running_stats=False\)"):
        _export(m.eval(), tmp_path / "bn.h5", accuracy_tolerance=1.0)


def test_max_error_bound(tmp_path):
    model = _small()
    rep = _export(model, tmp_path / "a.h5")
    assert 0 <= rep["max_error_steps"] < 1e-3  # the accumulator output: float32 rounding only
    ir = h5io.read(str(tmp_path / "a.h5"))
    assert rep["max_error_steps"] >= rep["max_abs_error"] / np.max(ir["outputs"][0]["scale"])
    with pytest.raises(ExportError, match=r"output 'y': the integer path differs from Brevitas's "
                                          r"float output by up to [0-9.e-]+ .* more than "
                                          r"max_error_steps=0"):
        _export(model, tmp_path / "b.h5", max_error_steps=0.0)
    assert not os.path.exists(tmp_path / "b.h5")
    _export(model, tmp_path / "c.h5", max_error_steps=None)


def test_max_error_steps_values():
    """The bound export() applies: 'auto' is 2 steps unless a rescale table
    was inserted; numbers and None as given; anything else refused."""
    plain = [{"op": "lut", "kind": "activation"}, {"op": "add"}]
    rescaled = plain + [{"op": "lut", "kind": "rescale"}]
    resolve = export_mod.resolve_max_error_steps
    assert resolve("auto", plain) == export_mod.DEFAULT_MAX_ERROR_STEPS == 2.0
    assert resolve("auto", rescaled) is None
    assert resolve(0.5, rescaled) == 0.5 and resolve(None, plain) is None
    for bad in ("two", -1.0, float("nan")):
        with pytest.raises(ExportError, match=r"max_error_steps must be"):
            resolve(bad, plain)
    from veil_export.__main__ import _error_steps
    assert _error_steps("auto") == "auto" and _error_steps("none") is None
    assert _error_steps("3.5") == 3.5
    for bad in ("-1", "nan", "inf", "x"):
        with pytest.raises(Exception, match=r"expected a number >= 0, 'auto' or 'none'"):
            _error_steps(bad)


def test_max_error_bound_catches_a_wrong_table(tmp_path, monkeypatch):
    """A table that does not reproduce its quantizer (here shifted by one
    step) keeps the argmax on most samples but leaves the bound."""
    model = _small()
    real = export_mod._Exporter.lut

    def shifted(self, *a, **k):
        q = real(self, *a, **k)
        layer = self.layers[-1]
        layer["table"] = np.asarray(layer["table"]) + 3
        self.calib[layer["output"]] = self.calib[layer["output"]] + 3
        layer["range"] = [layer["range"][0] + 3, layer["range"][1] + 3]
        layer["calib_range"] = [layer["calib_range"][0] + 3, layer["calib_range"][1] + 3]
        return export_mod.Quant(q.name, q.shape, q.lo + 3, q.hi + 3, q.scale)
    monkeypatch.setattr(export_mod._Exporter, "lut", shifted)
    with pytest.raises(ExportError, match=r"quantization steps of the output"):
        _export(model, tmp_path / "w.h5", accuracy_tolerance=1.0)


# -- F5: unsupported quantizers and calls name the module ---------------------

def _plain(**fc):
    return nn.Sequential(qnn.QuantIdentity(bit_width=4), qnn.QuantLinear(6, 3, **fc)).eval()


def test_refuses_unquantized_weights(tmp_path):
    with pytest.raises(ExportError, match=r"'1' \(QuantLinear\): weight quantization disabled"):
        _export(_plain(weight_quant=None), tmp_path / "n.h5")


def test_refuses_fp8(tmp_path):
    fq = pytest.importorskip("brevitas.quant.experimental.float")
    with pytest.raises(ExportError, match=r"'1' \(QuantLinear\): weight_quant gives a "
                                          r"FloatQuantTensor, a float format"):
        _export(_plain(weight_quant=fq.Fp8e4m3WeightPerTensorFloat), tmp_path / "n.h5")
    m = nn.Sequential(qnn.QuantIdentity(act_quant=fq.Fp8e4m3ActPerTensorFloat),
                      qnn.QuantLinear(6, 3, weight_bit_width=4)).eval()
    with pytest.raises(ExportError, match=r"'0' \(QuantIdentity\): the quantizer gives a "
                                          r"FloatQuantTensor, a float format"):
        _export(m, tmp_path / "n.h5")


class Keywords(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4)
        self.fc = qnn.QuantLinear(6, 6, weight_bit_width=4)
        self.r = qnn.QuantReLU(bit_width=4)
        self.add = qnn.QuantEltwiseAdd()
        self.head = qnn.QuantLinear(6, 3, weight_bit_width=4)

    def forward(self, x):
        x = self.q(input=x)
        return self.head(self.add(x, other=self.r(self.fc(input=x))))


class Positional(Keywords):
    def forward(self, x):
        x = self.q(x)
        return self.head(self.add(x, self.r(self.fc(x))))


def test_keyword_module_calls(tmp_path):
    torch.manual_seed(0)
    x, y = _data()
    a = fit(Keywords(), [x[:200]], y[:200], steps=40)
    b = Positional()
    b.load_state_dict(a.state_dict())
    _export(a, tmp_path / "a.h5")
    _export(b.eval(), tmp_path / "b.h5")
    la, lb = h5io.read(str(tmp_path / "a.h5"))["layers"], h5io.read(str(tmp_path / "b.h5"))["layers"]
    assert [l["op"] for l in la] == [l["op"] for l in lb]
    for u, v in zip(la, lb):
        for k in ("weight", "table"):
            assert (u.get(k) is None) == (v.get(k) is None)
            if u.get(k) is not None:
                assert np.array_equal(u[k], v[k])

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(bit_width=4)
            self.fc = qnn.QuantLinear(6, 3, weight_bit_width=4)

        def forward(self, x):
            return self.fc(self.q(x), bogus=1)
    with pytest.raises(ExportError, match=r"'fc' \(QuantLinear\): the call's arguments .* do not "
                                          r"fit forward"):
        _export(Bad().eval(), tmp_path / "bad.h5")


def test_unexpected_error_names_the_node(tmp_path, monkeypatch):
    def broken(self, m, x, where):
        raise ZeroDivisionError("float division by zero")
    monkeypatch.setattr(export_mod._Exporter, "weight_layer", broken)
    with pytest.raises(ExportError, match=r"^'1' \(QuantLinear\): cannot be exported "
                                          r"\(ZeroDivisionError: float division by zero\)") as e:
        _export(_plain(weight_bit_width=4), tmp_path / "z.h5")
    assert isinstance(e.value.__cause__, ZeroDivisionError)


# -- a test set of another shape than the calibration's ----------------------

def test_test_set_of_another_shape_is_named(tmp_path):
    """A test file with 5 features for a 6-feature model: refused naming the test
    set and both shapes, before Brevitas's first layer fails on it (which named
    only the layer and a matmul's shapes)."""
    model = _small(steps=5)
    x, y = _data()
    with pytest.raises(ExportError, match=r"the test set's inputs \[\[5\]\] do not fit the "
                                          r"calibration's \[\[6\]\]"):
        export(model, x[:64], x[200:, :5], y[200:], str(tmp_path / "m.h5"), name="m",
               verbose=False)
    with pytest.raises(ExportError, match=r"the range set's inputs \[\[5\]\] do not fit"):
        export(model, x[:64], x[200:], y[200:], str(tmp_path / "m.h5"), name="m",
               verbose=False, range_inputs=x[:, :5])
    assert not (tmp_path / "m.h5").exists()
