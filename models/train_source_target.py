#!/usr/bin/env python3
"""source_bc.h5 and target_bc.h5: the Concrete ML deployment shape with several
encrypted inputs. Breast cancer's 30 features are split in three parts of 10,
as if held by three parties: a = the "mean" features, b = the "standard
error" features, c = the "worst" features.

- source_bc: a model on one input (part a only), 4-bit QAT.
- target_bc: takes a, b and c encrypted; one branch per input
  (QuantIdentity - QuantLinear - BatchNorm - QuantReLU); branches a and b share
  their output quantizer and are combined by `add` (same scale, no rescale);
  the sum and branch c go through one shared QuantIdentity and are joined by
  `concat` before the head (QuantLinear - BN - QuantReLU - QuantLinear).

    python train_source_target.py   (writes both files; ~30 s on 2 cores)
"""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.quant import Uint8ActPerTensorFloat

import sample_common as sc

SEED = 3
BITS = 4
PART = 10
HID = 16


class Source(nn.Module):
    """in_bits/w_bits: the input quantizer's and fc1's weight bit widths (fc1's
    accumulator, the lookup's input, follows), hid the hidden width, act_bits the
    hidden ReLU's, out_bits fc2's weight bit width; train_wide.py makes the wide
    variants."""

    def __init__(self, in_bits=BITS, w_bits=BITS, hid=HID, act_bits=BITS, out_bits=BITS):
        super().__init__()
        self.q_in = qnn.QuantIdentity(bit_width=in_bits)
        self.fc1 = qnn.QuantLinear(PART, hid, bias=True, weight_bit_width=w_bits)
        self.bn1 = nn.BatchNorm1d(hid)
        self.act1 = qnn.QuantReLU(bit_width=act_bits)
        self.fc2 = qnn.QuantLinear(hid, 2, bias=True, weight_bit_width=out_bits)

    def forward(self, a):
        return self.fc2(self.act1(self.bn1(self.fc1(self.q_in(a)))))


class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_in = qnn.QuantIdentity(bit_width=BITS)
        self.fc = qnn.QuantLinear(PART, HID, bias=True, weight_bit_width=BITS)
        self.bn = nn.BatchNorm1d(HID)

    def forward(self, x):
        return self.bn(self.fc(self.q_in(x)))


class Target(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch_a, self.branch_b, self.branch_c = Branch(), Branch(), Branch()
        self.act_ab = qnn.QuantReLU(bit_width=BITS)  # shared by a and b: one scale
        self.act_c = qnn.QuantReLU(bit_width=BITS)
        self.q_join = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=BITS)
        self.fc1 = qnn.QuantLinear(2 * HID, HID, bias=True, weight_bit_width=BITS)
        self.bn1 = nn.BatchNorm1d(HID)
        self.act1 = qnn.QuantReLU(bit_width=BITS)
        self.fc2 = qnn.QuantLinear(HID, 2, bias=True, weight_bit_width=BITS)

    def forward(self, a, b, c):
        ab = self.act_ab(self.branch_a(a)) + self.act_ab(self.branch_b(b))
        h = torch.cat([self.q_join(ab), self.q_join(self.act_c(self.branch_c(c)))], dim=1)
        return self.fc2(self.act1(self.bn1(self.fc1(h))))


def main():
    sc.seed_all(SEED)
    xtr, xte, ytr, yte = sc.breast_cancer(SEED)
    parts_tr = tuple(xtr[:, i * PART:(i + 1) * PART].copy() for i in range(3))
    parts_te = tuple(xte[:, i * PART:(i + 1) * PART].copy() for i in range(3))

    src = sc.train(Source(), parts_tr[0], ytr, epochs=60, lr=0.01, batch=32, seed=SEED)
    rep_s = sc.export_model(src, parts_tr[0], parts_te[0], yte, "source_bc",
                            "breast cancer (sklearn), source model on features 0-9 (one "
                            "encrypted input), %d-bit QAT" % BITS, SEED)

    sc.seed_all(SEED)
    tgt = sc.train(Target(), parts_tr, ytr, epochs=60, lr=0.01, batch=32, seed=SEED)
    rep_t = sc.export_model(tgt, parts_tr, parts_te, yte, "target_bc",
                            "breast cancer (sklearn), target model on three encrypted inputs "
                            "(features 0-9, 10-19, 20-29): add(a, b), concat with c, head; "
                            "%d-bit QAT" % BITS, SEED)
    assert rep_s["brevitas_accuracy"] >= 0.85 and rep_t["brevitas_accuracy"] >= 0.9
    assert 11 <= rep_t["max_acc_bits_worst"] <= 14, rep_t["max_acc_bits_worst"]


if __name__ == "__main__":
    main()
