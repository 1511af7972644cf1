#!/usr/bin/env python3
"""cnn_digits.h5: small CNN on scikit-learn's 8x8 digits, 4-bit inputs, weights
and activations: conv-BN-ReLU-avgpool twice, then a linear head. Exercises
conv2d (zero padding), avgpool2d (an integer sum pool whose division lives in
the next table) and flatten.

    python train_cnn_digits.py     (writes models/cnn_digits.h5; ~1-2 min on 2 cores)
"""

import brevitas.nn as qnn
import torch.nn as nn
from brevitas.quant import Uint8ActPerTensorFloat

import sample_common as sc

SEED = 2
BITS = 4


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_in = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=BITS)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=True, weight_bit_width=BITS)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = qnn.QuantReLU(bit_width=BITS)
        self.pool1 = nn.AvgPool2d(2)
        self.q_pool1 = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=BITS)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=True, weight_bit_width=BITS)
        self.bn2 = nn.BatchNorm2d(16)
        self.act2 = qnn.QuantReLU(bit_width=BITS)
        self.pool2 = nn.AvgPool2d(2)
        self.q_pool2 = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=BITS)
        self.flatten = nn.Flatten()
        self.fc = qnn.QuantLinear(16 * 2 * 2, 10, bias=True, weight_bit_width=BITS)

    def forward(self, x):
        x = self.q_pool1(self.pool1(self.act1(self.bn1(self.conv1(self.q_in(x))))))
        x = self.q_pool2(self.pool2(self.act2(self.bn2(self.conv2(x)))))
        return self.fc(self.flatten(x))


def main():
    sc.seed_all(SEED)
    xtr, xte, ytr, yte = sc.digits(SEED, image=True)
    model = sc.train(CNN(), xtr, ytr, epochs=40, lr=0.01, batch=64, seed=SEED)
    rep = sc.export_model(model, xtr, xte, yte, "cnn_digits",
                          "8x8 digits (sklearn), CNN conv3x3(8)-BN-ReLU-avgpool2-conv3x3(16)-BN-"
                          "ReLU-avgpool2-linear(64,10), %d-bit inputs/weights/activations" % BITS,
                          SEED)
    assert rep["brevitas_accuracy"] >= 0.85, "CNN trained badly"
    assert 11 <= rep["max_acc_bits_worst"] <= 14, rep["max_acc_bits_worst"]


if __name__ == "__main__":
    main()
