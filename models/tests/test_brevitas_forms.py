"""Forms Brevitas users write that the exporter used to mishandle: Brevitas
layers that subclass a torch layer with a forward of their own
(TruncAvgPool2d)."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn

from veil_export import ExportError, export

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
