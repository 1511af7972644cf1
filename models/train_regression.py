#!/usr/bin/env python3
"""diabetes_reg.h5: the sample regressor of veil. scikit-learn's bundled
diabetes data (no download), 4 of its 10 features, 4-bit inputs, 4-bit
weights, 4-bit ReLU, one output: the disease progression a year later, in
the data's own units (25..346). The last linear is the output accumulator
(its float bias a zero point), as Concrete ML's NeuralNetRegressor has it.
Small enough that `veil run --mode cpu` runs a few samples in seconds.

    python train_regression.py     (writes models/diabetes_reg.h5; ~10 s on 2 cores)
"""

import brevitas.nn as qnn
import numpy as np
import torch
import torch.nn as nn

import sample_common as sc

SEED = 11
# 'bmi', 's5' (log of serum triglycerides), 'bp', 's3'
FEATURES = [2, 8, 3, 6]
HIDDEN = 6


class DiabetesReg(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_in = qnn.QuantIdentity(bit_width=4)
        self.fc1 = qnn.QuantLinear(len(FEATURES), HIDDEN, bias=True, weight_bit_width=4)
        self.act1 = qnn.QuantReLU(bit_width=4)
        self.fc2 = qnn.QuantLinear(HIDDEN, 1, bias=True, weight_bit_width=4)

    def forward(self, x):
        return self.fc2(self.act1(self.fc1(self.q_in(x))))


def main():
    sc.seed_all(SEED)
    xtr, xte, ytr, yte = sc.diabetes(SEED, FEATURES)
    # Trained on standardized targets; the mean and scale are then folded into
    # fc2 (weight * sd, bias * sd + mu): its weight quantizer's scale follows the
    # weight's largest magnitude, so the integer weights stay the same and the
    # model predicts in the data's own units.
    mu, sd = float(ytr.mean()), float(ytr.std())
    ys = ((ytr - mu) / sd).astype(np.float32).reshape(-1, 1)
    model = sc.train(DiabetesReg(), xtr, ys, epochs=120, lr=0.02, batch=32, seed=SEED,
                     loss_fn=nn.MSELoss())
    with torch.no_grad():
        model.fc2.weight.mul_(sd)
        model.fc2.bias.mul_(sd).add_(mu)
    rep = sc.export_model(model, xtr, xte, yte, "diabetes_reg",
                          "diabetes (sklearn) regression, features %s, 4-bit inputs, 4-bit "
                          "weights, 4-bit ReLU, %d hidden; target in its own units"
                          % (FEATURES, HIDDEN), SEED, task="regression")
    # A constant prediction (the training mean) has R^2 ~ 0 and RMSE ~ the targets' sd.
    assert rep["brevitas_r2"] >= 0.3, "regressor trained badly: R^2 %.3f" % rep["brevitas_r2"]
    print("diabetes_reg: RMSE %.2f (targets' sd %.2f), R^2 %.3f; max lookup input %d values "
          "(calibration) / %d (worst case)" % (rep["int_rmse"], float(yte.std()), rep["int_r2"],
                                               rep["max_lut_in_values_calib"],
                                               rep["max_lut_in_values_worst"]))


if __name__ == "__main__":
    main()
