"""Forms Brevitas users write that the exporter used to mishandle: Brevitas
layers that subclass a torch layer with a forward of their own
(TruncAvgPool2d), convolutions with padding='same'/'valid', a model whose
own eval-mode forward pass fails (quant tensors of different scales added),
pools with ceil_mode=True where it changes nothing."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from veil_export import ExportError, check_golden, export, h5io, validate
from test_exporter import blobs, fit
from test_golden_independent import assert_golden_independent

pytestmark = pytest.mark.exporter


def _images(n, c, h, w, seed):
    g = np.random.default_rng(seed)
    centers = g.normal(0, 1.5, size=(3, c, h, w))
    y = g.integers(0, 3, size=n)
    return (centers[y] + g.normal(0, 0.5, size=(n, c, h, w))).astype(np.float32), y


class TruncPool(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 4, 3, padding=1, weight_bit_width=4)
        self.a1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.p = pool
        self.a2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 16, 3, weight_bit_width=4)

    def forward(self, x):
        return self.fc(torch.flatten(self.a2(self.p(self.a1(self.c1(self.q(x))))), 1))


@pytest.mark.parametrize("pool", ["TruncAvgPool2d", "TruncAdaptiveAvgPool2d"])
def test_refuses_trunc_avgpool_naming_it(tmp_path, pool):
    """TruncAvgPool2d is an AvgPool2d whose forward also truncates the mean to
    bit_width bits; it was exported as the plain sum pool (the truncation
    lost), refused only by the end-to-end error check, naming the output."""
    p = (qnn.TruncAvgPool2d(2, 2, bit_width=3) if pool == "TruncAvgPool2d"
         else qnn.TruncAdaptiveAvgPool2d((4, 4), bit_width=3))
    torch.manual_seed(0)
    x, y = _images(96, 1, 8, 8, seed=1)
    model = TruncPool(p).eval()
    path = tmp_path / "t.h5"
    with pytest.raises(ExportError, match=r"unsupported layer 'p' \(%s\): a subclass of "
                                          r"\w*AvgPool2d with a forward of its own" % pool):
        export(model, x[:32], x[32:], y[32:], str(path), name="t", verbose=False)
    assert not path.exists()


class Padded(nn.Module):
    """padding='same' (an odd kernel, dilated) and 'valid'."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(2, 4, 3, dilation=2, padding="same", weight_bit_width=4)
        self.a1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.c2 = qnn.QuantConv2d(4, 4, 3, padding="valid", weight_bit_width=4)
        self.a2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 36, 3, weight_bit_width=4)

    def forward(self, x):
        return self.fc(torch.flatten(self.a2(self.c2(self.a1(self.c1(self.q(x))))), 1))


class Padded1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.c1 = qnn.QuantConv1d(2, 4, 5, padding="same", weight_bit_width=4)
        self.a1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 12, 3, weight_bit_width=4)

    def forward(self, x):
        return self.fc(torch.flatten(self.a1(self.c1(self.q(x))), 1))


def _export_checked(model, x, y, path):
    export(model, x[:64], x[150:], y[150:], path, name="pad", verbose=False)
    assert validate(path) == []
    ok, msg = check_golden(path)
    assert ok, msg
    assert_golden_independent(path)
    return [l for l in h5io.read(path)["layers"] if l["op"] == "conv2d"]


def test_conv_padding_same_and_valid(tmp_path):
    """padding='same' and 'valid' were refused ("give integers"): 'same' with
    an odd kernel is the symmetric padding dilation * (kernel - 1) / 2; the
    export's own check compares the integer path with Brevitas."""
    torch.manual_seed(0)
    x, y = _images(200, 2, 8, 8, seed=2)
    model = fit(Padded(), [x[:150]], y[:150], steps=5)
    convs = _export_checked(model, x, y, str(tmp_path / "pad.h5"))
    assert [list(l["padding"]) for l in convs] == [[2, 2], [0, 0]]
    assert [list(l["shape"]) for l in convs] == [[4, 8, 8], [4, 6, 6]]
    torch.manual_seed(0)
    x, y = _images(200, 2, 1, 12, seed=3)
    x = x[:, :, 0, :].copy()
    model = fit(Padded1d(), [x[:150]], y[:150], steps=5)
    convs = _export_checked(model, x, y, str(tmp_path / "pad1d.h5"))
    assert [list(l["padding"]) for l in convs] == [[0, 2]]
    assert [list(l["shape"]) for l in convs] == [[4, 1, 12]]


def test_refuses_asymmetric_same_padding_naming_it():
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4),
                      qnn.QuantConv2d(1, 2, 2, padding="same", weight_bit_width=4)).eval()
    x = np.zeros((8, 1, 6, 6), dtype=np.float32)
    with pytest.raises(ExportError, match=r"'1' \(QuantConv2d\): padding='same' with kernel "
                                          r"\[2, 2\] .* only symmetric zero padding"):
        export(m, x, x, np.zeros(8, dtype=np.int64), "/nonexistent/never.h5", name="n",
               verbose=False)


class AddQuantTensors(nn.Module):
    """Two QuantReLU (return_quant_tensor=True) of different bit widths added:
    Brevitas trains it, then refuses its own eval forward pass."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fa = qnn.QuantLinear(6, 6, weight_bit_width=4)
        self.fb = qnn.QuantLinear(6, 6, weight_bit_width=4)
        self.a = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.b = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(6, 3, weight_bit_width=4)

    def forward(self, x):
        x = self.q(x)
        return self.fc(self.a(self.fa(x)) + self.b(self.fb(x)))


@pytest.mark.filterwarnings("ignore:.*rescaled by a rounding table")
def test_brevitas_forward_failure_names_the_node(tmp_path):
    """It escaped as Brevitas's bare RuntimeError ('Scaling factors are
    different'), with neither the node nor what to do."""
    x, y = blobs(120, 6, seed=4)
    model = fit(AddQuantTensors(), [x[:80]], y[:80], steps=3)
    with pytest.raises(ExportError, match=r"^'add' \(call_function add\): Brevitas's own "
                                          r"forward pass \(eval mode\) fails here.*Scaling "
                                          r"factors are different.*one shared quantizer") as e:
        export(model, x[:32], x[80:], y[80:], str(tmp_path / "a.h5"), name="a", verbose=False)
    assert isinstance(e.value.__cause__, RuntimeError)
    assert not (tmp_path / "a.h5").exists()


class CeilPools(nn.Module):
    def __init__(self, ceil_mode):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 4, 3, padding=1, weight_bit_width=4)
        self.mp = nn.MaxPool2d(2, 2, ceil_mode=ceil_mode)
        self.a1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.ap = nn.AvgPool2d(3, 1, padding=1, ceil_mode=ceil_mode)
        self.a2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 4, 3, weight_bit_width=4)

    def forward(self, x):
        y = self.a1(self.mp(self.c1(self.q(x))))  # [4, 4, 4]
        return self.fc(torch.flatten(self.a2(F.max_pool2d(self.ap(y), 2, ceil_mode=self.mp.ceil_mode)), 1))


def test_ceil_mode_that_adds_no_window(tmp_path):
    """MaxPool2d(2, 2, ceil_mode=True) on an even input (SqueezeNet's and
    many CNNs' habit) pools exactly as ceil_mode=False; it was refused. The
    export equals that of the same model with ceil_mode=False, layer for layer."""
    torch.manual_seed(0)
    x, y = _images(160, 1, 8, 8, seed=5)
    model = fit(CeilPools(True), [x[:120]], y[:120], steps=5)
    floor = CeilPools(False)
    floor.load_state_dict(model.state_dict())
    floor.eval()
    paths = [str(tmp_path / "ceil.h5"), str(tmp_path / "floor.h5")]
    for m, path in zip((model, floor), paths):
        export(m, x[:64], x[120:], y[120:], path, name="p", verbose=False)
    ceil_ir, floor_ir = h5io.read(paths[0]), h5io.read(paths[1])
    assert [l["op"] for l in ceil_ir["layers"]].count("maxpool2d") == 2
    for a, b in zip(ceil_ir["layers"], floor_ir["layers"]):
        for k in a:
            if k != "source":
                assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), (a["output"], k)
    ok, msg = check_golden(paths[0])
    assert ok, msg
