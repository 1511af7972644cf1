"""The integer semantics of models/SCHEMA.md (intpath.py) against PyTorch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from veil_export import intpath

pytestmark = pytest.mark.exporter


def test_conv2d_is_pytorch_cross_correlation():
    rng = np.random.default_rng(1)
    for pad, stride in ((0, 1), (1, 1), (1, 2), (2, 1)):
        x = rng.integers(-8, 8, size=(5, 3, 7, 6))
        w = rng.integers(-7, 8, size=(4, 3, 3, 3))
        b = rng.integers(-50, 50, size=4)
        layer = dict(op="conv2d", inputs=["x"], weight=w, bias=b, strides=[stride, stride],
                     padding=[pad, pad])
        got = intpath.apply_layer(layer, {"x": x})
        ref = F.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                       torch.tensor(b, dtype=torch.float64), stride=stride, padding=pad)
        assert got.dtype == np.int64
        assert np.array_equal(got, ref.numpy().astype(np.int64))


def test_avgpool2d_is_a_sum_pool():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 16, size=(3, 2, 8, 8))
    for k, s, p in ((2, 2, 0), (3, 1, 1), (2, 1, 0)):
        layer = dict(op="avgpool2d", inputs=["x"], kernel=[k, k], strides=[s, s], padding=[p, p])
        got = intpath.apply_layer(layer, {"x": x})
        ref = F.avg_pool2d(torch.tensor(x, dtype=torch.float64), k, s, p) * (k * k)
        assert np.array_equal(got, np.rint(ref.numpy()).astype(np.int64))


def test_linear_flatten_concat_add():
    rng = np.random.default_rng(3)
    x = rng.integers(-8, 8, size=(4, 2, 3, 3))
    t = {"x": x}
    t["f"] = intpath.apply_layer(dict(op="flatten", inputs=["x"]), t)
    assert np.array_equal(t["f"], torch.flatten(torch.tensor(x), 1).numpy())
    w = rng.integers(-7, 8, size=(5, 18))
    t["l"] = intpath.apply_layer(dict(op="linear", inputs=["f"], weight=w), t)
    assert np.array_equal(t["l"], t["f"] @ w.T)
    t["c"] = intpath.apply_layer(dict(op="concat", inputs=["l", "l", "f"], axis=0), t)
    assert t["c"].shape == (4, 28) and np.array_equal(t["c"][:, 5:10], t["l"])
    t["a"] = intpath.apply_layer(dict(op="add", inputs=["l", "l"]), t)
    assert np.array_equal(t["a"], 2 * t["l"])


def test_lut_per_tensor_and_per_channel_clamp():
    x = np.array([[[-5, 0], [3, 9]]])  # [1, 2, 2]: channel 0 = [-5, 0], channel 1 = [3, 9]
    table = np.arange(10) * 10  # indices -2..7
    out = intpath.lut_apply(x, table, -2, 7)
    assert out.tolist() == [[[0, 20], [50, 90]]]
    tab2 = np.stack([np.arange(10), -np.arange(10)])
    out = intpath.lut_apply(x, tab2, -2, 7)
    assert out.tolist() == [[[0, 2], [-5, -9]]]


def test_bit_width():
    assert intpath.bit_width(0, 15) == 4
    assert intpath.bit_width(-16, 15) == 5
    assert intpath.bit_width(-17, 0) == 6
    assert intpath.bit_width(-10, 12) == 5
    assert intpath.bit_width(0, 0) == 1
