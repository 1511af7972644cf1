#!/usr/bin/env python3
"""mlp_digits.h5: MLP on scikit-learn's 8x8 digits, 4-bit inputs, weights and
activations (the shape of Concrete ML's 4-bit QAT models: accumulators of
11-14 bits, 4-bit lookups after rounding).

    python train_mlp_digits.py     (writes models/mlp_digits.h5; ~1 min on 2 cores)
"""

import brevitas.nn as qnn
import torch.nn as nn
from brevitas.quant import Uint8ActPerTensorFloat

import sample_common as sc

SEED = 1
BITS = 4
HIDDEN = 64


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        # Pixels are in [0, 1]: an unsigned 4-bit input quantizer (0..15).
        self.q_in = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=BITS)
        self.fc1 = qnn.QuantLinear(64, HIDDEN, bias=True, weight_bit_width=BITS)
        self.bn1 = nn.BatchNorm1d(HIDDEN)
        self.act1 = qnn.QuantReLU(bit_width=BITS)
        self.fc2 = qnn.QuantLinear(HIDDEN, HIDDEN, bias=True, weight_bit_width=BITS)
        self.bn2 = nn.BatchNorm1d(HIDDEN)
        self.act2 = qnn.QuantReLU(bit_width=BITS)
        self.fc3 = qnn.QuantLinear(HIDDEN, 10, bias=True, weight_bit_width=BITS)

    def forward(self, x):
        x = self.act1(self.bn1(self.fc1(self.q_in(x))))
        x = self.act2(self.bn2(self.fc2(x)))
        return self.fc3(x)


def main():
    sc.seed_all(SEED)
    xtr, xte, ytr, yte = sc.digits(SEED)
    model = sc.train(MLP(), xtr, ytr, epochs=40, lr=0.01, batch=64, seed=SEED)
    rep = sc.export_model(model, xtr, xte, yte, "mlp_digits",
                          "8x8 digits (sklearn), MLP 64-%d-%d-10, %d-bit inputs/weights/"
                          "activations, BatchNorm folded into the tables" % (HIDDEN, HIDDEN, BITS),
                          SEED)
    assert rep["brevitas_accuracy"] >= 0.9, "MLP trained badly"
    assert 11 <= rep["max_acc_bits_worst"] <= 14, rep["max_acc_bits_worst"]


if __name__ == "__main__":
    main()
