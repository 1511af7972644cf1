#!/usr/bin/env python3
"""cnn_maxpool_digits.h5: the digits CNN with max pools, 4-bit inputs, weights
and activations, in the two places PyTorch code puts them:

    conv3x3(8)-BN-QuantReLU-maxpool2           (the pool on quantized values)
    F.relu(F.max_pool2d(conv3x3(16)(x), 2))-QuantReLU
                                                (LeNet's order: the pool on the
                                                 accumulator, before the activation)
    linear(64, 10)

Exercises maxpool2d both ways the compiler evaluates it: on narrow quantized
values (a tree of lookups on differences), and before a non-decreasing lookup
(the lookup first, then the pool on its results).

    python train_cnn_maxpool_digits.py   (writes models/cnn_maxpool_digits.h5; ~1-2 min)
"""

import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Uint8ActPerTensorFloat

import sample_common as sc

SEED = 3
BITS = 4


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_in = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=BITS)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=True, weight_bit_width=BITS)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = qnn.QuantReLU(bit_width=BITS)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=True, weight_bit_width=BITS)
        self.act2 = qnn.QuantReLU(bit_width=BITS)
        self.flatten = nn.Flatten()
        self.fc = qnn.QuantLinear(16 * 2 * 2, 10, bias=True, weight_bit_width=BITS)

    def forward(self, x):
        x = self.pool1(self.act1(self.bn1(self.conv1(self.q_in(x)))))
        x = self.act2(F.relu(F.max_pool2d(self.conv2(x), 2)))
        return self.fc(self.flatten(x))


def main():
    sc.seed_all(SEED)
    xtr, xte, ytr, yte = sc.digits(SEED, image=True)
    model = sc.train(CNN(), xtr, ytr, epochs=40, lr=0.01, batch=64, seed=SEED)
    rep = sc.export_model(model, xtr, xte, yte, "cnn_maxpool_digits",
                          "8x8 digits (sklearn), CNN conv3x3(8)-BN-ReLU-maxpool2-conv3x3(16)-"
                          "maxpool2-ReLU-linear(64,10), %d-bit inputs/weights/activations" % BITS,
                          SEED)
    assert rep["brevitas_accuracy"] >= 0.85, "CNN trained badly"


if __name__ == "__main__":
    main()
