"""Shared helpers of the sample-model training scripts (models/train_*.py):
seeding, the data sets that ship inside scikit-learn, a small QAT training
loop, and the export call. Everything is seeded: the same versions give the
same .h5 on every run (single-threaded torch for determinism)."""

import os
import random
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from veil_export import export  # noqa: E402

# Brevitas uses named tensors internally; PyTorch warns on every call.
warnings.filterwarnings("ignore", message="Named tensors")

N_CALIB = 128
N_GOLDEN = 64


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def split(x, y, seed, test_fraction=0.25):
    from sklearn.model_selection import train_test_split
    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def digits(seed, image=False):
    """8x8 digits, pixels scaled to [0, 1]. Returns (xtr, xte, ytr, yte) float32/int64."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    return split(x, d.target.astype(np.int64), seed)


def breast_cancer(seed, features=None):
    """Breast-cancer features standardized with the training split's mean/std."""
    from sklearn.datasets import load_breast_cancer
    d = load_breast_cancer()
    x = d.data.astype(np.float64)
    if features is not None:
        x = x[:, features]
    xtr, xte, ytr, yte = split(x, d.target.astype(np.int64), seed)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-9
    return ((xtr - mu) / sd).astype(np.float32), ((xte - mu) / sd).astype(np.float32), ytr, yte


def diabetes(seed, features=None):
    """Diabetes regression (442 samples, 10 features, target: disease progression
    after one year, 25..346): features standardized with the training split's
    mean/std, targets as they are. Returns (xtr, xte, ytr, yte) float32/float64."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    d = load_diabetes()
    x = d.data.astype(np.float64)
    if features is not None:
        x = x[:, features]
    xtr, xte, ytr, yte = train_test_split(x, d.target.astype(np.float64), test_size=0.25,
                                          random_state=seed)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-9
    return ((xtr - mu) / sd).astype(np.float32), ((xte - mu) / sd).astype(np.float32), ytr, yte


def as_inputs(x):
    return tuple(torch.as_tensor(t) for t in x) if isinstance(x, (tuple, list)) else (torch.as_tensor(x),)


def train(model, xtr, ytr, epochs, lr=0.01, batch=64, seed=0, weight_decay=0.0, loss_fn=None):
    """Adam + cross-entropy on [S, C] scores (loss_fn: another loss, e.g.
    nn.MSELoss() with float targets shaped like the output). xtr: array or tuple
    of arrays."""
    xs = as_inputs(xtr)
    y = torch.as_tensor(ytr)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    n = len(y)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            out = model(*[t[idx] for t in xs])
            out = out.value if hasattr(out, "value") else out
            loss = loss_fn(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        if ep % max(1, epochs // 5) == 0 or ep == epochs - 1:
            print("epoch %3d loss %.4f" % (ep, total / n))
    model.eval()
    return model


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        out = model(*as_inputs(x))
    out = out.value if hasattr(out, "value") else out
    return float((out.argmax(1).numpy() == np.asarray(y)).mean())


def export_model(model, xtr, xte, yte, name, description, seed, task="classification"):
    """Calibration: N_CALIB training samples; ranges (calib_range): over the whole
    training set; golden: the first N_GOLDEN test samples."""
    rng = np.random.default_rng(seed)
    n = len(xtr[0]) if isinstance(xtr, (tuple, list)) else len(xtr)
    pick = np.sort(rng.choice(n, size=min(N_CALIB, n), replace=False))
    calib = tuple(t[pick] for t in xtr) if isinstance(xtr, (tuple, list)) else xtr[pick]
    # VEIL_MODELS_OUT: write elsewhere (the reproducibility test does).
    path = os.path.join(os.environ.get("VEIL_MODELS_OUT", HERE), name + ".h5")
    rep = export(model, calib, xte, yte, path, name=name, description=description,
                 n_golden=N_GOLDEN, range_inputs=xtr, task=task)
    if task == "regression":
        quality = "RMSE Brevitas %.4g, integer path %.4g" % (rep["brevitas_rmse"], rep["int_rmse"])
    else:
        quality = "Brevitas accuracy %.4f, integer path %.4f" % (rep["brevitas_accuracy"],
                                                                 rep["int_accuracy"])
    print("wrote %s: %s, max accumulator bits %d (worst case) / %d (calibration)"
          % (path, quality, rep["max_acc_bits_worst"], rep["max_acc_bits_calib"]))
    return rep
