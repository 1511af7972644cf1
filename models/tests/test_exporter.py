"""The exporter on freshly built models: round trips, refusals, command line."""

import os
import shutil
import subprocess
import sys

import brevitas.nn as qnn
import h5py
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int32Bias,
                            Uint8ActPerTensorFloat)

from veil_export import ExportError, check_golden, export, h5io, intpath, validate
from test_golden_independent import assert_golden_independent

pytestmark = pytest.mark.exporter

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blobs(n, d, seed, classes=3):
    """A separable synthetic problem (no download)."""
    g = np.random.default_rng(seed)
    centers = g.normal(0, 2.5, size=(classes, d))
    y = g.integers(0, classes, size=n)
    x = centers[y] + g.normal(0, 0.6, size=(n, d))
    return x.astype(np.float32), y.astype(np.int64)


def fit(model, xs, y, steps=150, seed=0):
    torch.manual_seed(seed)
    xs = [torch.as_tensor(x) for x in xs]
    y = torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        model.train()
        idx = torch.randint(0, len(y), (64,))
        out = model(*[x[idx] for x in xs])
        loss = nn.functional.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


class Small(nn.Module):
    """Per-channel weight scales, BatchNorm, a sigmoid quantizer, a requantizing
    QuantIdentity after a QuantReLU (a lut over a lut)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4)
        self.fc1 = qnn.QuantLinear(6, 8, bias=True, weight_bit_width=3,
                                   weight_quant=Int8WeightPerChannelFloat)
        self.bn = nn.BatchNorm1d(8)
        self.act = qnn.QuantSigmoid(bit_width=3)
        self.fc2 = qnn.QuantLinear(8, 8, bias=True, weight_bit_width=3)
        self.relu = qnn.QuantReLU(bit_width=4)
        self.requant = qnn.QuantIdentity(bit_width=3)
        self.fc3 = qnn.QuantLinear(8, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.act(self.bn(self.fc1(self.q(x))))
        return self.fc3(self.requant(self.relu(self.fc2(x))))


def test_round_trip_small_model(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(600, 6, seed=1)
    model = fit(Small(), [x[:400]], y[:400])
    path = str(tmp_path / "small.h5")
    rep = export(model, x[:128], x[400:], y[400:], path, name="small", verbose=False)
    assert validate(path) == []
    ok, msg = check_golden(path)
    assert ok, msg
    assert rep["mismatch"] <= 1
    ir = h5io.read(path)
    ops = [l["op"] for l in ir["layers"]]
    assert ops == ["linear", "lut", "linear", "lut", "lut", "linear"]
    # fc1's table is per channel (per-channel weight scales, BN).
    assert ir["layers"][1]["per_channel"] == 1 and ir["layers"][1]["table"].shape[0] == 8
    # The sigmoid table is what the module itself computes on acc * s_x * s_w + b.
    l1 = ir["layers"][1]
    with torch.no_grad():
        qw = model.fc1.quant_weight()
    s = ir["inputs"][0]["scale"]
    acc = np.arange(l1["in_min"], l1["in_max"] + 1, dtype=np.float64)
    z = acc[:, None] * (s * qw.scale.double().numpy().reshape(1, -1)) + \
        model.fc1.bias.double().detach().numpy()[None, :]
    model.act.return_quant_tensor = True
    with torch.no_grad():
        qt = model.act(model.bn(torch.tensor(z, dtype=torch.float32)))
    model.act.return_quant_tensor = False
    assert np.array_equal(qt.int().numpy().astype(np.int64).T, l1["table"])
    # Integer path on fresh inputs agrees with Brevitas's float forward.
    xq = model.q  # input quantizer
    xq.return_quant_tensor = True
    with torch.no_grad():
        v = xq(torch.as_tensor(x)).int().numpy().astype(np.int64)
    xq.return_quant_tensor = False
    out = intpath.run(ir["layers"], {"x": v})[ir["outputs"][0]["tensor"]]
    o = ir["outputs"][0]
    deq = np.asarray(o["scale"]) * (out - np.asarray(o["zero_point"]))
    with torch.no_grad():
        ref = model(torch.as_tensor(x)).double().numpy()
    assert np.max(np.abs(deq - ref)) < 1e-4
    assert np.sum(deq.argmax(1) != ref.argmax(1)) <= 2


class TwoInputs(nn.Module):
    """add of operands with different scales (rescale tables inserted) and a concat."""

    def __init__(self):
        super().__init__()
        self.qa = qnn.QuantIdentity(bit_width=4)
        self.qb = qnn.QuantIdentity(bit_width=4)
        self.fa = qnn.QuantLinear(4, 6, bias=True, weight_bit_width=4)
        self.fb = qnn.QuantLinear(4, 6, bias=True, weight_bit_width=4)
        self.ra = qnn.QuantReLU(bit_width=3)
        self.rb = qnn.QuantReLU(bit_width=3)
        self.join = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4)
        self.head = qnn.QuantLinear(12, 3, bias=True, weight_bit_width=4)

    def forward(self, a, b):
        ra, rb = self.ra(self.fa(self.qa(a))), self.rb(self.fb(self.qb(b)))
        s = self.join(ra + rb)
        return self.head(torch.cat([s, self.join(rb)], dim=1))


def test_round_trip_two_inputs_add_concat(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(600, 8, seed=2)
    xa, xb = x[:, :4].copy(), x[:, 4:].copy()
    model = fit(TwoInputs(), [xa[:400], xb[:400]], y[:400])
    path = str(tmp_path / "two.h5")
    # the approximate rescale is said at export, not only in verbose mode; its
    # error (one step of the rescaled tensor, through the head's weights) is
    # beyond 2 output steps: an explicit bound of 2 refuses it
    with pytest.warns(UserWarning, match=r"the coarser one is rescaled by a rounding table"):
        with pytest.raises(ExportError, match=r"output 'y': .* more than max_error_steps=2: "
                                              r"an approximate rescale"):
            export(model, (xa[:128], xb[:128]), (xa[400:], xb[400:]), y[400:], path,
                   name="two", verbose=False, accuracy_tolerance=0.03, max_error_steps=2)
    assert not os.path.exists(path)
    # the default ("auto") leaves the bound out when a rescale table was
    # inserted: the accuracy tolerance gates it, as Concrete ML compiles it
    with pytest.warns(UserWarning, match=r"the coarser one is rescaled by a rounding table"):
        rep = export(model, (xa[:128], xb[:128]), (xa[400:], xb[400:]), y[400:], path,
                     name="two", verbose=False, accuracy_tolerance=0.03)
    assert rep["max_error_steps"] > 2
    assert validate(path) == []
    assert check_golden(path)[0]
    assert_golden_independent(path)
    ir = h5io.read(path)
    assert [i["name"] for i in ir["inputs"]] == ["a", "b"]
    kinds = [(l["op"], l.get("kind")) for l in ir["layers"]]
    assert ("add", None) in kinds and ("concat", None) in kinds
    # ra and rb have independent scales: the exporter rescaled one operand.
    assert ("lut", "rescale") in kinds
    add = next(l for l in ir["layers"] if l["op"] == "add")
    assert len(add["inputs"]) == 2
    assert rep["mismatch"] <= 6


def _raises(model, xs, match):
    x = np.zeros((8,) + xs, dtype=np.float32)
    with pytest.raises(ExportError, match=match):
        export(model, x, x, np.zeros(8, dtype=np.int64), "/nonexistent/never.h5", name="n",
               verbose=False)


def test_refuses_unsupported_layer_naming_it():
    m = nn.Sequential()
    m.add_module("q", qnn.QuantIdentity(bit_width=4))
    m.add_module("conv", qnn.QuantConv2d(1, 2, 3, padding=1, weight_bit_width=4))
    m.add_module("up", nn.Upsample(scale_factor=2))
    _raises(m.eval(), (1, 6, 6), r"unsupported layer 'up' \(Upsample\)")


def test_refuses_functional_op_naming_it():
    class F(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(bit_width=4)
            self.fc = qnn.QuantLinear(4, 2, weight_bit_width=4)

        def forward(self, x):
            return self.fc(torch.cumsum(self.q(x), 1))  # not elementwise
    _raises(F().eval(), (4,), r"unsupported operation 'cumsum'")


def test_refuses_unquantized_linear_input():
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4), qnn.QuantLinear(4, 4, weight_bit_width=4),
                      nn.ReLU(), qnn.QuantLinear(4, 2, weight_bit_width=4))
    _raises(m.eval(), (4,), r"'3' \(QuantLinear\): its input is not quantized")


def test_refuses_raw_input():
    m = nn.Sequential(qnn.QuantLinear(4, 2, weight_bit_width=4))
    _raises(m.eval(), (4,), r"model input 'input\w*' must go to exactly one Brevitas quantizer")


def test_refuses_float_tail_output():
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4), qnn.QuantLinear(4, 2, weight_bit_width=4),
                      nn.Sigmoid())
    _raises(m.eval(), (4,), r"model output 0 goes through float modules \(Sigmoid\)")


def _run_cli(*args):
    env = dict(os.environ, PYTHONPATH=MODELS, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "veil_export"] + list(args), env=env,
                          capture_output=True, text=True, cwd=MODELS)


def test_cli_check_passes_and_detects_corruption(tmp_path):
    r = _run_cli("check", os.path.join(MODELS, "tiny.h5"))
    assert r.returncode == 0, r.stderr
    assert "reproduced exactly" in r.stdout
    bad = str(tmp_path / "bad.h5")
    shutil.copy(os.path.join(MODELS, "tiny.h5"), bad)
    with h5py.File(bad, "r+") as f:
        d = f["golden/outputs/y"]
        v = d[()]
        v[0, 0] += 1
        d[...] = v
    r = _run_cli("check", bad)
    assert r.returncode == 1 and "1 values differ" in r.stdout
    with h5py.File(bad, "r+") as f:
        f["layers/0000_linear"].attrs["op"] = np.bytes_(b"conv2d")
    r = _run_cli("check", bad)
    assert r.returncode == 1 and "/layers/0000_linear@op" in r.stderr


FACTORY = """
import brevitas.nn as qnn
import torch.nn as nn


def build():
    return nn.Sequential(qnn.QuantIdentity(bit_width=3), qnn.QuantLinear(6, 4, weight_bit_width=3),
                         nn.BatchNorm1d(4), qnn.QuantReLU(bit_width=3),
                         qnn.QuantLinear(4, 3, weight_bit_width=3))
"""


def test_cli_export_round_trip(tmp_path):
    (tmp_path / "factory.py").write_text(FACTORY)
    sys.path.insert(0, str(tmp_path))
    try:
        import factory
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    x, y = blobs(400, 6, seed=3)
    m = fit(factory.build(), [x[:300]], y[:300])
    torch.save(m.state_dict(), str(tmp_path / "m.pt"))
    np.savez(str(tmp_path / "calib.npz"), input0=x[:100])
    np.savez(str(tmp_path / "test.npz"), input0=x[300:], labels=y[300:])
    out = str(tmp_path / "m.h5")
    r = _run_cli("export", str(tmp_path / "factory.py") + ":build", str(tmp_path / "calib.npz"),
                 str(tmp_path / "test.npz"), "--weights", str(tmp_path / "m.pt"), "-o", out,
                 "--name", "cli", "-q")
    assert r.returncode == 0, r.stderr + r.stdout
    r = _run_cli("check", out)
    assert r.returncode == 0, r.stderr
    r = _run_cli("info", out)
    assert r.returncode == 0 and "0001_lut" in r.stdout
    # A model that cannot be exported: the error names the layer, exit code 1.
    (tmp_path / "bad.py").write_text("import torch.nn as nn\nimport brevitas.nn as qnn\n"
                                     "def build():\n    return nn.Sequential(qnn.QuantIdentity("
                                     "bit_width=3), nn.Linear(6, 3))\n")
    r = _run_cli("export", str(tmp_path / "bad.py") + ":build", str(tmp_path / "calib.npz"),
                 str(tmp_path / "test.npz"), "-o", str(tmp_path / "bad.h5"))
    assert r.returncode == 1 and "unsupported layer '1' (Linear)" in r.stderr


def test_range_set_gives_calib_range(tmp_path):
    """--range-set: calib_range is taken over the range set and the calibration
    samples (as one calibration set of both would give), /calibration keeps the
    calibration samples only."""
    (tmp_path / "factory.py").write_text(FACTORY)
    sys.path.insert(0, str(tmp_path))
    try:
        import factory
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    x, y = blobs(400, 6, seed=3)
    m = fit(factory.build(), [x[:300]], y[:300])
    torch.save(m.state_dict(), str(tmp_path / "m.pt"))
    np.savez(str(tmp_path / "calib.npz"), input0=x[:100])
    np.savez(str(tmp_path / "range.npz"), input0=x[100:300])
    np.savez(str(tmp_path / "all.npz"), input0=x[:300])
    np.savez(str(tmp_path / "test.npz"), input0=x[300:], labels=y[300:])
    common = [str(tmp_path / "test.npz"), "--weights", str(tmp_path / "m.pt"), "-q"]
    a, b = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    r = _run_cli("export", str(tmp_path / "factory.py") + ":build", str(tmp_path / "calib.npz"),
                 *common, "--range-set", str(tmp_path / "range.npz"), "-o", a)
    assert r.returncode == 0, r.stderr + r.stdout
    r = _run_cli("export", str(tmp_path / "factory.py") + ":build", str(tmp_path / "all.npz"),
                 *common, "-o", b)
    assert r.returncode == 0, r.stderr + r.stdout
    assert validate(a) == []
    ia, ib = h5io.read(a), h5io.read(b)
    assert ia["range_samples"] == 300 and ib["range_samples"] == 300
    # without --name, the name is the output file's (as the sample models')
    assert ia["attrs"]["name"] == "a" and ib["attrs"]["name"] == "b"
    name = ia["inputs"][0]["name"]
    assert np.array_equal(ia["calibration"][name], ib["calibration"][name][:100])
    own = intpath.run(ia["layers"], ia["calibration"])
    wider = 0
    for ta, tb in zip(ia["inputs"] + ia["layers"], ib["inputs"] + ib["layers"]):
        assert list(ta["calib_range"]) == list(tb["calib_range"])
        v = own[ta.get("output", ta.get("name"))]
        wider += int(v.min() > ta["calib_range"][0] or v.max() < ta["calib_range"][1])
    assert wider > 0  # the range set reaches further than the 100 samples


def test_cli_help():
    r = _run_cli("--help")
    # the subcommand list itself (the program name and the description hold
    # "export" and "check" whatever the parser has)
    assert r.returncode == 0 and "{export,info,check}" in r.stdout, r.stdout
    r = _run_cli("export", "--help")
    assert r.returncode == 0 and "--max-error-steps" in r.stdout
    assert "output file's name without its extension" in " ".join(r.stdout.split())


def test_cli_reads_without_torch():
    """info, check and --help never import torch (seconds of CPU a call); the
    package's export is the function, also when veil_export.export is
    imported first (one process: the last check imports torch)."""
    tiny = os.path.join(MODELS, "tiny.h5")
    code = ("import importlib, runpy, sys\n"
            "for args in (['info', %r], ['check', %r], ['--help']):\n"
            "    sys.argv = ['veil_export'] + args\n"
            "    try:\n"
            "        runpy.run_module('veil_export', run_name='__main__')\n"
            "    except SystemExit as e:\n"
            "        assert not e.code, (args, e.code)\n"
            "    assert 'torch' not in sys.modules, ('torch imported', args)\n"
            "m = importlib.import_module('veil_export.export')\n"
            "import veil_export\n"
            "from veil_export import export, ExportError\n"
            "assert export is m.export and veil_export.export is m.export, export\n"
            "assert ExportError is m.ExportError\n" % (tiny, tiny))
    env = dict(os.environ, PYTHONPATH=MODELS, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=MODELS)
    assert r.returncode == 0, r.stderr
    assert "reproduced exactly" in r.stdout and "{export,info,check}" in r.stdout, r.stdout


class FloatActs(nn.Module):
    """A float activation after a QuantIdentity (quantizer - Tanh - quantizer), a
    QuantTanh and a QuantHardTanh: each step is one table."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4)
        self.fc1 = qnn.QuantLinear(5, 6, bias=True, weight_bit_width=4)
        self.t = qnn.QuantTanh(bit_width=4)
        self.fc2 = qnn.QuantLinear(6, 6, bias=True, weight_bit_width=4)
        self.q2 = qnn.QuantIdentity(bit_width=4)
        self.tanh = nn.Tanh()
        self.q3 = qnn.QuantHardTanh(bit_width=4, min_val=-0.5, max_val=0.5)
        self.fc3 = qnn.QuantLinear(6, 3, bias=True, weight_bit_width=4)

    def forward(self, x):
        x = self.t(self.fc1(self.q(x)))
        x = self.q3(self.tanh(self.q2(self.fc2(x))))
        return self.fc3(x)


def test_round_trip_float_activation_between_quantizers(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(500, 5, seed=4)
    model = fit(FloatActs(), [x[:300]], y[:300])
    path = str(tmp_path / "acts.h5")
    rep = export(model, x[:128], x[300:], y[300:], path, name="acts", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    ir = h5io.read(path)
    assert [l["op"] for l in ir["layers"]] == ["linear", "lut", "linear", "lut", "lut", "linear"]
    # q2 -> Tanh -> q3 is one table indexed by q2's 4-bit output.
    l4 = ir["layers"][4]
    assert l4["inputs"] == ["0003_lut"] and l4["in_max"] - l4["in_min"] + 1 <= 16
    assert rep["mismatch"] <= 2


def test_table_over_calibration_range_when_worst_case_is_too_wide(tmp_path, monkeypatch):
    """Tables wider than the limit cover the calibration range plus a margin and say so."""
    import importlib
    monkeypatch.setattr(importlib.import_module("veil_export.export"), "TABLE_LIMIT", 128)
    torch.manual_seed(0)
    x, y = blobs(500, 6, seed=5)
    model = fit(Small(), [x[:300]], y[:300])
    path = str(tmp_path / "narrow.h5")
    export(model, x[:128], x[300:], y[300:], path, name="narrow", verbose=False,
           accuracy_tolerance=0.05)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    ir = h5io.read(path)
    lut = ir["layers"][1]
    src = ir["layers"][0]
    assert lut["covers_worst_case"] == 0
    assert lut["in_max"] - lut["in_min"] + 1 <= 128
    assert lut["in_min"] <= src["calib_range"][0] and src["calib_range"][1] <= lut["in_max"]
    assert src["range"][0] < lut["in_min"] or lut["in_max"] < src["range"][1]


class ConcreteStyle(nn.Module):
    """The way Concrete ML's QAT examples are written: return_quant_tensor=True,
    functional torch.relu between a layer and a QuantIdentity, x.view(x.size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.q_in = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 4, 3, stride=2, padding=1, bias=True, weight_bit_width=3)
        self.q1 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.pool = nn.AvgPool2d(2, stride=1)
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 2 * 2, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.q1(torch.relu(self.conv(self.q_in(x))))
        x = self.q2(self.pool(x))
        return self.fc(x.view(x.size(0), -1))


def test_round_trip_concrete_ml_style(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(500, 36, seed=6)
    x = x.reshape(-1, 1, 6, 6)
    model = fit(ConcreteStyle(), [x[:300]], y[:300])
    path = str(tmp_path / "cml.h5")
    rep = export(model, x[:128], x[300:], y[300:], path, name="cml", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    ir = h5io.read(path)
    assert [l["op"] for l in ir["layers"]] == ["conv2d", "lut", "avgpool2d", "lut", "flatten",
                                               "linear"]
    assert ir["layers"][0]["strides"].tolist() == [2, 2]
    assert ir["layers"][0]["shape"].tolist() == [4, 3, 3]
    assert rep["mismatch"] <= 2


class MaxPools(nn.Module):
    """Max pools where Brevitas CNNs put them: after a quantized activation
    (a module), on a conv accumulator before its activation (functional, an
    affine pending map), with overlapping windows and a non-square kernel."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, weight_bit_width=3)
        self.r1 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(3, stride=1, padding=1)
        self.conv2 = qnn.QuantConv2d(4, 4, 2, bias=True, weight_bit_width=3)
        self.r2 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 2 * 3, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.pool1(self.r1(self.conv1(self.q(x))))                 # [4, 6, 6]
        x = self.r2(nn.functional.max_pool2d(self.conv2(x), (2, 1), 2))  # [4, 2, 3]
        return self.fc(x.view(x.size(0), -1))


def test_round_trip_maxpool(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(500, 36, seed=7)
    x = x.reshape(-1, 1, 6, 6)
    model = fit(MaxPools(), [x[:300]], y[:300])
    path = str(tmp_path / "maxpool.h5")
    rep = export(model, x[:128], x[300:], y[300:], path, name="maxpool", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    ir = h5io.read(path)
    assert [l["op"] for l in ir["layers"]] == ["conv2d", "lut", "maxpool2d", "conv2d",
                                               "maxpool2d", "lut", "flatten", "linear"]
    p1, p2 = ir["layers"][2], ir["layers"][4]
    assert p1["kernel"].tolist() == [3, 3] and p1["strides"].tolist() == [1, 1]
    assert p1["padding"].tolist() == [1, 1]
    assert p2["kernel"].tolist() == [2, 1] and p2["strides"].tolist() == [2, 2]
    assert p1["shape"].tolist() == [4, 6, 6] and p2["shape"].tolist() == [4, 2, 3]
    # the pool keeps its input's range; what calibration saw lies inside it
    assert p1["range"].tolist() == ir["layers"][1]["range"].tolist()
    assert rep["mismatch"] <= 2


class Separable(nn.Module):
    """MobileNet-style: a depthwise (groups = channels) and a dilated
    convolution, then global average pooling, as a module and as a call."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, weight_bit_width=3)
        self.r0 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.dw = qnn.QuantConv2d(4, 4, 3, padding=1, groups=4, bias=True, weight_bit_width=3)
        self.r1 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.dil = qnn.QuantConv2d(4, 6, 3, padding=2, dilation=2, groups=2, bias=True,
                                   weight_bit_width=3)
        self.r2 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(6 + 6 * 3 * 3, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.r2(self.dil(self.r1(self.dw(self.r0(self.conv(self.q(x)))))))  # [6, 6, 6]
        g = self.q2(self.gap(x)).view(x.size(0), -1)                              # [6]
        h = self.q2(nn.functional.adaptive_avg_pool2d(x, (3, 3))).view(x.size(0), -1)
        return self.fc(torch.cat([g, h], dim=1))


def test_round_trip_grouped_dilated_conv_and_global_pool(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(500, 36, seed=8)
    x = x.reshape(-1, 1, 6, 6)
    model = fit(Separable(), [x[:300]], y[:300])
    path = str(tmp_path / "sep.h5")
    rep = export(model, x[:128], x[300:], y[300:], path, name="sep", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    # the integer path is Brevitas's forward pass, up to float32 rounding
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] <= 1
    ir = h5io.read(path)
    convs = [l for l in ir["layers"] if l["op"] == "conv2d"]
    # depthwise: [4, 4, 3, 3] with the weights on the diagonal only
    dw = convs[1]["weight"]
    assert dw.shape == (4, 4, 3, 3)
    assert all(not dw[o, c].any() for o in range(4) for c in range(4) if o != c)
    # dilated 2, groups 2: a 5x5 kernel, taps at even positions, each half of
    # the outputs reading its half of the inputs
    dil = convs[2]["weight"]
    assert dil.shape == (6, 4, 5, 5)
    assert not dil[:, :, 1::2, :].any() and not dil[:, :, :, 1::2].any()
    assert not dil[:3, 2:].any() and not dil[3:, :2].any()
    pools = [l for l in ir["layers"] if l["op"] == "avgpool2d"]
    assert [p["kernel"].tolist() for p in pools] == [[6, 6], [2, 2]]
    assert [p["shape"].tolist() for p in pools] == [[6, 1, 1], [6, 3, 3]]


class Signal(nn.Module):
    """A 1-D CNN on a 2-channel signal of length 16: QuantConv1d with
    BatchNorm1d, MaxPool1d, a grouped and dilated QuantConv1d, AvgPool1d and
    global AdaptiveAvgPool1d beside it."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.c1 = qnn.QuantConv1d(2, 4, 3, padding=1, bias=True, weight_bit_width=3)
        self.bn = nn.BatchNorm1d(4)
        self.r1 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.mp = nn.MaxPool1d(2)
        self.c2 = qnn.QuantConv1d(4, 4, 3, padding=2, dilation=2, groups=2, bias=True,
                                  weight_bit_width=3)
        self.r2 = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.ap = nn.AvgPool1d(2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 4 + 4, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.r2(self.c2(self.mp(self.r1(self.bn(self.c1(self.q(x)))))))  # [4, 8]
        a = self.q2(self.ap(x)).view(x.size(0), -1)                          # [16]
        g = self.q2(self.gap(x)).view(x.size(0), -1)                         # [4]
        return self.fc(torch.cat([a, g], dim=1))


def test_round_trip_conv1d(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(500, 32, seed=10)
    x = x.reshape(-1, 2, 16)
    model = fit(Signal(), [x[:300]], y[:300])
    path = str(tmp_path / "signal.h5")
    rep = export(model, x[:128], x[300:], y[300:], path, name="signal", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] <= 1
    ir = h5io.read(path)
    assert ir["inputs"][0]["shape"].tolist() == [2, 16]
    ops = [l["op"] for l in ir["layers"]]
    assert ops[:5] == ["reshape", "conv2d", "lut", "maxpool2d", "conv2d"]
    assert ir["layers"][0]["shape"].tolist() == [2, 1, 16]
    c2 = ir["layers"][4]
    assert c2["weight"].shape == (4, 4, 1, 5) and c2["padding"].tolist() == [0, 2]
    pools = [l for l in ir["layers"] if l["op"] == "avgpool2d"]
    assert [p["kernel"].tolist() for p in pools] == [[1, 2], [1, 8]]


class Residual1d(nn.Module):
    """A 1-D residual block, x + conv1d(x), where a Conv1d's output (an image
    [C, 1, L] in the file) meets the signal [C, L] it came from, a
    concatenation of the two kinds, and a Conv1d's output as the model's
    output (per position scores, [3, L] as Brevitas returns it)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.c1 = qnn.QuantConv1d(2, 2, 3, padding=1, bias=True, weight_bit_width=3)
        self.r1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.c2 = qnn.QuantConv1d(4, 3, 1, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.q(x)
        y = self.r1(self.q(self.c1(x)) + x)
        return self.c2(torch.cat([self.q(y), x], dim=1))


def test_round_trip_residual1d(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(300, 32, seed=11)
    x = x.reshape(-1, 2, 16)
    model = Residual1d()
    path = str(tmp_path / "res1d.h5")
    rep = export(model, x[:128], x[128:], y[128:], path, name="res1d", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3
    ir = h5io.read(path)
    assert ir["outputs"][0]["shape"].tolist() == [3, 16]
    reshapes = [(l["inputs"], l["shape"].tolist()) for l in ir["layers"] if l["op"] == "reshape"]
    # the input's image made once (the convolution, the sum and the
    # concatenation share it), and the output back to [3, 16]
    assert len(reshapes) == 2 and reshapes[0] == (["x"], [2, 1, 16])
    assert reshapes[1][1] == [3, 16] and ir["layers"][-1]["op"] == "reshape"


class SubMul(nn.Module):
    """a - b and a * b of two quantized tensors (two branches of one input;
    one quantizer for both, as Brevitas's a - b needs one scale), a gate
    (ReLU times sigmoid) and the two re-quantized and concatenated."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(32, 8, bias=True, weight_bit_width=3)
        self.fc2 = qnn.QuantLinear(32, 8, bias=True, weight_bit_width=3)
        self.r = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.s = qnn.QuantSigmoid(bit_width=3, return_quant_tensor=True)
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(24, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.q(x)
        f2 = self.fc2(x)
        a, b = self.r(self.fc1(x)), self.r(f2)
        gate = a * self.s(f2)
        return self.fc3(torch.cat([self.q2(a - b), self.q2(a * b), self.q2(gate)], dim=1))


def export_sub_mul(path, n_calib=128, n_golden=64):
    """SubMul trained on blobs and exported to path (also the C test's
    tests/data/sub_mul.h5: tests/data/make_sub_mul.py)."""
    torch.manual_seed(0)
    x, y = blobs(500, 32, seed=12)
    model = fit(SubMul(), [x[:300]], y[:300])
    return export(model, x[:n_calib], x[300:], y[300:], path, name="sub_mul", verbose=False,
                  n_golden=n_golden)


def test_round_trip_sub_mul(tmp_path):
    path = str(tmp_path / "sub_mul.h5")
    rep = export_sub_mul(path)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] <= 1
    ir = h5io.read(path)
    rng = {l["output"]: l["range"].tolist() for l in ir["layers"]}
    sub = [l for l in ir["layers"] if l["op"] == "sub"]
    mul = [l for l in ir["layers"] if l["op"] == "mul"]
    assert len(sub) == 1 and len(mul) == 2
    # a - b: a's low end minus b's high end, and the other way; a * b: the
    # corners' products (a and b non-negative here)
    ra, rb = (rng[n] for n in sub[0]["inputs"])
    assert sub[0]["range"].tolist() == [ra[0] - rb[1], ra[1] - rb[0]]
    for m in mul:
        ra, rb = (rng[n] for n in m["inputs"])
        assert m["range"].tolist() == [ra[0] * rb[0], ra[1] * rb[1]]


class Powers(nn.Module):
    """x ** 2 and torch.pow(x, 3) with constant exponents: folded into the
    next quantizer's table like any constant arithmetic (one lookup, no
    product)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(32, 8, bias=True, weight_bit_width=3)
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(16, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.q(x)
        h = self.q2(self.fc1(x) ** 2 * 2.0)
        return self.fc3(torch.cat([h, self.q2(torch.pow(h, 3))], dim=1))


def test_round_trip_powers(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(300, 32, seed=13)
    path = str(tmp_path / "powers.h5")
    rep = export(Powers().eval(), x[:128], x[128:], y[128:], path, name="powers", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3
    ir = h5io.read(path)
    assert [l["op"] for l in ir["layers"]] == ["linear", "lut", "lut", "concat", "linear"]
    assert ir["layers"][1]["calib_range"][1] > 0  # the squares are not all quantized to 0


class Univariate(nn.Module):
    """PyTorch's elementwise functions between a layer and its quantizer, as
    calls, tensor methods and modules, chained: all fold into the
    quantizer's table."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(32, 8, bias=True, weight_bit_width=3)
        self.mish = nn.Mish()
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(24, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        h = self.fc1(self.q(x))
        a = torch.erf(F.hardswish(torch.clamp(h, -2, 2)).abs() * 0.5)
        b = torch.exp(-h.clip(min=-1.0)).sqrt()
        c = self.mish(torch.log1p(h.square()))
        return self.fc3(torch.cat([self.q2(a), self.q2(b), self.q2(c)], dim=1))


def test_round_trip_univariate(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(300, 32, seed=14)
    path = str(tmp_path / "univariate.h5")
    rep = export(Univariate().eval(), x[:128], x[128:], y[128:], path, name="univariate",
                 verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3
    ops = [l["op"] for l in h5io.read(path)["layers"]]
    assert ops.count("lut") == 3 and ops.count("linear") == 2  # one table each chain


def test_refuses_a_function_undefined_on_its_table():
    class Log(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            self.fc = qnn.QuantLinear(4, 2, bias=True, weight_bit_width=3)
            self.q2 = qnn.QuantIdentity(bit_width=4)

        def forward(self, x):
            return self.q2(torch.log(self.fc(self.q(x))))
    _raises(Log().eval(), (4,), r"'q2' \(QuantIdentity\): log gives NaN at the accumulator "
            r"value -?\d+ .*clamp the input into the function's domain first")


class PoolForms(nn.Module):
    """Pooling as functions and reductions, global max pooling:
    F.avg_pool2d, AdaptiveMaxPool2d(1), F.adaptive_max_pool2d, torch.amax and
    x.sum over height and width, Dropout2d (identity in eval), and
    x.view(x.size()[0], -1)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 2, 3, padding=1, weight_bit_width=3)
        self.r = qnn.QuantReLU(bit_width=4)
        self.drop = nn.Dropout2d(0.2)
        self.gmp = nn.AdaptiveMaxPool2d(1)
        self.q2 = qnn.QuantIdentity(bit_width=4)
        self.fc = qnn.QuantLinear(8 + 2 + 2 + 2 + 2, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        z = self.drop(self.r(self.conv(self.q(x))))
        a = self.q2(F.avg_pool2d(z, 2))
        b = self.q2(self.gmp(z))  # one quantizer for the three: one scale
        c = self.q2(F.adaptive_max_pool2d(z, (1, 1)))
        d = self.q2(torch.amax(z, dim=(2, 3)))  # global max pooling as a reduction
        e = self.q2(z.sum(dim=(-2, -1)) * 0.125)  # and a sum pool, scaled
        h = torch.cat([a.flatten(1), b.flatten(1), c.view(c.size()[0], -1), d, e], dim=1)
        return self.fc(h)


def test_round_trip_pool_forms(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(300, 16, seed=15)
    x = x.reshape(-1, 1, 4, 4)
    path = str(tmp_path / "pools.h5")
    rep = export(PoolForms().eval(), x[:128], x[128:], y[128:], path, name="pools", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3
    ir = h5io.read(path)
    kernels = {l["op"]: [] for l in ir["layers"]}
    for l in ir["layers"]:
        if "kernel" in l:
            kernels[l["op"]].append(l["kernel"].tolist())
    assert kernels["avgpool2d"] == [[2, 2], [4, 4]]
    assert kernels["maxpool2d"] == [[4, 4], [4, 4], [4, 4]]


class Arith(nn.Module):
    """Constant arithmetic between a layer and its quantizer (folded into the
    quantizer's table) and the mean over height and width. The means have a
    quantizer of their own: re-quantized by the quantizer of the values they
    average, a mean lands exactly between two steps whenever its sum is an odd
    multiple of half the window, and Brevitas's float32 sum rounds such ties
    either way (the integer path rounds them half to even)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, weight_bit_width=3)
        self.r = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.q3 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 + 4, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.conv(self.q(x))
        a = self.r(x * 0.5 + 1)                                   # [4, 6, 6]
        b = self.q2(2 - torch.relu(x) / 4)                        # [4, 6, 6]
        m = self.q3(torch.mean(a, dim=(2, 3)))                    # [4]
        n = self.q3(torch.mean(b, (-1, -2), keepdim=True)).view(x.size(0), -1)
        return self.fc(torch.cat([m, n], dim=1))


def test_round_trip_constant_arithmetic_and_mean(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(500, 36, seed=11)
    x = x.reshape(-1, 1, 6, 6)
    model = fit(Arith(), [x[:300]], y[:300])
    path = str(tmp_path / "arith.h5")
    rep = export(model, x[:128], x[300:], y[300:], path, name="arith", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] <= 1
    ir = h5io.read(path)
    pools = [l for l in ir["layers"] if l["op"] == "avgpool2d"]
    assert [p["kernel"].tolist() for p in pools] == [[6, 6], [6, 6]]


def test_refuses_what_constant_arithmetic_cannot_do():
    class Mul(nn.Module):
        def __init__(self, neg):
            super().__init__()
            self.neg = neg
            self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            self.conv = qnn.QuantConv2d(1, 2, 3, padding=1, weight_bit_width=4)
            self.r = qnn.QuantReLU(bit_width=3)

        def forward(self, x):
            x = self.conv(self.q(x))
            if self.neg == 1:  # order reversed before a max pool
                return self.r(nn.functional.max_pool2d(x * -2.0, 2))
            if self.neg == 2:
                return self.r(x / x)
            if self.neg == 3:
                return self.r(x ** x)
            return self.r(x * x)
    _raises(Mul(1).eval(), (1, 6, 6), r"does not keep the order of the integers "
            r"\(pending mul -2\)")
    _raises(Mul(2).eval(), (1, 6, 6), r"div of two encrypted tensors is not supported")
    _raises(Mul(3).eval(), (1, 6, 6), r"pow of two encrypted tensors is not supported")
    # a product of two tensors needs quantized operands (the product of two
    # accumulators is no integer layer's)
    _raises(Mul(0).eval(), (1, 6, 6), r"its first operand is not quantized")


def test_refuses_adaptive_pool_of_unequal_windows():
    m = nn.Sequential()
    m.add_module("q", qnn.QuantIdentity(bit_width=4))
    m.add_module("conv", qnn.QuantConv2d(1, 2, 3, padding=1, weight_bit_width=4))
    m.add_module("r", qnn.QuantReLU(bit_width=3))
    m.add_module("gap", nn.AdaptiveAvgPool2d(4))
    _raises(m.eval(), (1, 6, 6), r"'gap' \(AdaptiveAvgPool2d\): output size \[4, 4\] does not "
            r"divide the input \[6, 6\]")


class PoolAfterFloatActivation(nn.Module):
    """PyTorch tutorials' order with a Brevitas quantizer after it:
    pool(relu(bn(conv(x)))) -> QuantIdentity; the pool sees the accumulator
    through BatchNorm and ReLU, which keep its order."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, weight_bit_width=3)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.q1 = qnn.QuantIdentity(bit_width=3, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 3 * 3, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.q1(self.pool(torch.relu(self.bn(self.conv(self.q(x))))))
        return self.fc(x.view(x.size(0), -1))


def test_round_trip_maxpool_after_float_activation(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(500, 36, seed=9)
    x = x.reshape(-1, 1, 6, 6)
    model = fit(PoolAfterFloatActivation(), [x[:300]], y[:300])
    with torch.no_grad():  # one channel's BatchNorm scale tiny but positive
        model.bn.weight[1] = 1e-3
    path = str(tmp_path / "pool_relu.h5")
    rep = export(model, x[:128], x[300:], y[300:], path, name="pool_relu", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] <= 1
    ir = h5io.read(path)
    assert [l["op"] for l in ir["layers"]] == ["conv2d", "maxpool2d", "lut", "flatten", "linear"]


def test_refuses_maxpool_it_cannot_compute():
    def model(pool, bn=False, gamma=1.0, act=None):
        m = nn.Sequential()
        m.add_module("q", qnn.QuantIdentity(bit_width=4))
        m.add_module("conv", qnn.QuantConv2d(1, 2, 3, padding=1, weight_bit_width=4))
        if bn:
            m.add_module("bn", nn.BatchNorm2d(2))
            with torch.no_grad():
                m.bn.weight.fill_(gamma)
        if act is not None:
            m.add_module("act", act)
        m.add_module("pool", pool)
        m.add_module("r", qnn.QuantReLU(bit_width=3))
        return m.eval()
    _raises(model(nn.MaxPool2d(3, padding=2)), (1, 6, 6),
            r"'pool' \(MaxPool2d\): padding=2 is more than half the kernel")
    _raises(model(nn.MaxPool2d(2, dilation=2)), (1, 6, 6), r"'pool' \(MaxPool2d\): dilation")
    _raises(model(nn.MaxPool2d(2, ceil_mode=True)), (1, 7, 7),
            r"'pool' \(MaxPool2d\): ceil_mode=True adds a partial last window on the input "
            r"\[7, 7\] \(output \[4, 4\], not \[3, 3\]\)")
    _raises(model(nn.MaxPool2d(2), bn=True, gamma=-1.0), (1, 6, 6),
            r"'pool' \(MaxPool2d\): max pool of a float value that does not keep the order of "
            r"the integers \(pending BatchNorm2d\)")
    _raises(model(nn.MaxPool2d(2), act=nn.GELU()), (1, 6, 6), r"\(pending GELU\)")
    _raises(model(nn.MaxPool2d(9, stride=1)), (1, 10, 10), r"a window of 81 values")


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4)
        self.fc = qnn.QuantLinear(5, 6, bias=True, weight_bit_width=4)
        self.act = qnn.QuantReLU(bit_width=4)
        self.h1 = qnn.QuantLinear(6, 3, bias=True, weight_bit_width=4)
        self.h2 = qnn.QuantLinear(6, 2, bias=True, weight_bit_width=4)

    def forward(self, x):
        h = self.act(self.fc(self.q(x)))
        return self.h1(h), self.h2(h)


def test_round_trip_two_outputs(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(400, 5, seed=7)
    model = TwoHeads()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.as_tensor(x[:300]), torch.as_tensor(y[:300])
    for _ in range(100):
        model.train()
        a, b = model(xt)
        loss = nn.functional.cross_entropy(a, yt) + nn.functional.cross_entropy(b, yt % 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = str(tmp_path / "heads.h5")
    export(model, x[:128], x[300:], y[300:], path, name="heads", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    ir = h5io.read(path)
    assert [(o["name"], o["index"]) for o in ir["outputs"]] == [("y0", 0), ("y1", 1)]
    assert ir["golden"]["outputs"]["y1"].shape == (64, 2)


def test_export_fails_when_integer_path_disagrees(tmp_path, monkeypatch):
    """The accuracy check can fail: a Brevitas forward that disagrees is caught."""
    import importlib
    ex = importlib.import_module("veil_export.export")
    real = ex._float_forward

    def shifted(model, inputs):
        outs = real(model, inputs)
        return [np.roll(o, 1, axis=1) for o in outs]
    monkeypatch.setattr(ex, "_float_forward", shifted)
    torch.manual_seed(0)
    x, y = blobs(400, 6, seed=1)
    model = fit(Small(), [x[:300]], y[:300])
    with pytest.raises(ExportError, match="differs from Brevitas"):
        export(model, x[:128], x[300:], y[300:], str(tmp_path / "never.h5"), name="n",
               verbose=False)
    assert not os.path.exists(str(tmp_path / "never.h5"))


class Eltwise(nn.Module):
    """Brevitas's own quantized add, QuantEltwiseAdd (input_quant on both
    operands, output_quant on the sum): an accumulator and a quantized tensor
    added at 4 bits, then a sum of one tensor with itself with the default
    8-bit quantizers; and one without quantizers (input_quant=None,
    output_quant=None: a plain add of two tensors of one scale)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(6, 8, bias=True, weight_bit_width=3)
        self.r1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(8, 8, bias=True, weight_bit_width=3)
        self.add = qnn.QuantEltwiseAdd(input_bit_width=4, output_bit_width=5,
                                       return_quant_tensor=True)
        self.add8 = qnn.QuantEltwiseAdd(return_quant_tensor=True)
        self.plain = qnn.QuantEltwiseAdd(input_quant=None, output_quant=None,
                                         return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(8, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        x = self.q(x)
        h = self.r1(self.fc1(x))
        s = self.add(h, self.fc2(h))
        return self.fc3(self.plain(self.add8(s, s), self.add8(s, s)))


def test_round_trip_eltwise_add(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(600, 6, seed=13)
    model = fit(Eltwise(), [x[:400]], y[:400])
    path = str(tmp_path / "eltwise.h5")
    rep = export(model, x[:128], x[400:], y[400:], path, name="eltwise", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] == 0
    ops = [l["op"] for l in h5io.read(path)["layers"]]
    # fc1 + ReLU, fc2; add: input_quant on both operands, the sum,
    # output_quant; add8 twice likewise; plain: the sum alone; fc3
    assert ops == ["linear", "lut", "linear", "lut", "lut", "add", "lut"] + \
        ["lut", "lut", "add", "lut"] * 2 + ["add", "linear"]


class LayerQuant(nn.Module):
    """A layer's own quantizers, as Brevitas's examples write them: the
    model input quantized by the first layer's input_quant, Int32Bias
    biases, a layer's output_quant as the next layer's input, and a
    convolution with all three."""

    def __init__(self):
        super().__init__()
        self.fc1 = qnn.QuantLinear(6, 8, bias=True, weight_bit_width=3, input_bit_width=4,
                                   input_quant=Int8ActPerTensorFloat, bias_quant=Int32Bias,
                                   output_quant=Int8ActPerTensorFloat, output_bit_width=4,
                                   return_quant_tensor=True)
        self.r = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(8, 3, bias=True, weight_bit_width=3, bias_quant=Int32Bias)

    def forward(self, x):
        return self.fc2(self.r(self.fc1(x)))


class ConvLayerQuant(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = qnn.QuantConv2d(1, 4, 3, bias=True, weight_bit_width=3,
                                 input_quant=Int8ActPerTensorFloat, input_bit_width=4,
                                 bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                                 output_bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 4 * 4, 3, bias=True, weight_bit_width=3)

    def forward(self, x):
        return self.fc(torch.flatten(self.c(x), 1))


def test_round_trip_layer_quantizers(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(600, 6, seed=14)
    model = fit(LayerQuant(), [x[:400]], y[:400])
    path = str(tmp_path / "layerq.h5")
    rep = export(model, x[:128], x[400:], y[400:], path, name="layerq", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] == 0
    ir = h5io.read(path)
    assert ir["inputs"][0]["n_bits"] == 4
    # fc1 (its input_quant is the model input's quantizer), output_quant,
    # the ReLU's requantization, fc2
    assert [l["op"] for l in ir["layers"]] == ["linear", "lut", "lut", "linear"]
    x2, y2 = blobs(600, 36, seed=15)
    x2 = x2.reshape(-1, 1, 6, 6)
    model = fit(ConvLayerQuant(), [x2[:400]], y2[:400])
    path = str(tmp_path / "convq.h5")
    rep = export(model, x2[:128], x2[400:], y2[400:], path, name="convq", verbose=False)
    assert validate(path) == [] and check_golden(path)[0]
    assert_golden_independent(path)
    assert rep["max_abs_error"] < 1e-3 and rep["mismatch"] == 0
