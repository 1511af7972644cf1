#!/usr/bin/env python3
"""tiny.h5: the CI model of veil. Breast cancer, 3 features, 3-bit signed
inputs, 2-bit weights, 2-bit ReLU: every lookup reads at most 5 bits in the
worst case (<= 32 distinct accumulator values), so the C side can run it
encrypted with N <= 4096 in seconds. Asserted below.

    python train_tiny.py     (writes models/tiny.h5; ~10 s on 2 cores)
"""

import brevitas.nn as qnn
import torch.nn as nn

import sample_common as sc
from veil_export import intpath

SEED = 7
# 'worst concave points', 'worst perimeter', 'mean texture'
FEATURES = [27, 22, 1]


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_in = qnn.QuantIdentity(bit_width=3)
        self.fc1 = qnn.QuantLinear(3, 4, bias=True, weight_bit_width=2)
        self.bn1 = nn.BatchNorm1d(4)
        self.act1 = qnn.QuantReLU(bit_width=2)
        self.fc2 = qnn.QuantLinear(4, 2, bias=True, weight_bit_width=2)

    def forward(self, x):
        return self.fc2(self.act1(self.bn1(self.fc1(self.q_in(x)))))


def main():
    sc.seed_all(SEED)
    xtr, xte, ytr, yte = sc.breast_cancer(SEED, FEATURES)
    model = sc.train(Tiny(), xtr, ytr, epochs=60, lr=0.02, batch=32, seed=SEED)
    rep = sc.export_model(model, xtr, xte, yte, "tiny",
                          "breast cancer (sklearn), features %s, 3-bit inputs, 2-bit weights, "
                          "2-bit ReLU; CI model: lookups <= 5 bits" % FEATURES, SEED)
    # The CI contract: every lookup's input and every tensor fits 5 bits, worst case.
    for name, op, worst, calib in rep["rows"]:
        bits = intpath.bit_width(*worst)
        assert bits <= 5, "%s (%s): worst-case range %s needs %d bits > 5" % (name, op, worst, bits)
        assert worst[1] - worst[0] + 1 <= 32, "%s: more than 32 values" % name
    assert rep["max_lut_in_values_worst"] <= 32
    assert rep["brevitas_accuracy"] >= 0.85, "tiny model trained badly"
    print("tiny: all tensors and lookups within 5 bits (worst case)")


if __name__ == "__main__":
    main()
