"""Regressors (export(..., task="regression")): the file's task, metrics and
float targets, the regression checks, and classification exports unchanged."""

import importlib
import os
import shutil

import brevitas.nn as qnn
import h5py
import numpy as np
import pytest
import torch
import torch.nn as nn

from veil_export import ExportError, check_golden, dequantize, export, h5io, validate
from veil_export.verify import TASK_METRICS
from test_exporter import blobs, fit

pytestmark = pytest.mark.exporter
export_mod = importlib.import_module("veil_export.export")


def _data(n=300, k=1, seed=5):
    """A smooth synthetic target of 5 features (no download): [n] or [n, k]."""
    g = np.random.default_rng(seed)
    x = g.normal(0, 1, size=(n, 5)).astype(np.float32)
    w = g.normal(0, 1, size=(5, k))
    y = 40 * np.tanh(x @ w) + 100 + g.normal(0, 2, size=(n, k))
    return x, (y[:, 0] if k == 1 else y)


def _regressor(x, y, k=1, steps=300):
    torch.manual_seed(0)
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4), qnn.QuantLinear(5, 8, weight_bit_width=4),
                      qnn.QuantReLU(bit_width=4), qnn.QuantLinear(8, k, weight_bit_width=4))
    xt = torch.as_tensor(x)
    yt = torch.as_tensor(((y - 100) / 40).reshape(len(y), k), dtype=torch.float32)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for _ in range(steps):
        m.train()
        idx = torch.randint(0, len(yt), (64,))
        loss = nn.functional.mse_loss(m(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # predict in the targets' units
        m[3].weight.mul_(40)
        m[3].bias.mul_(40).add_(100)
    return m.eval()


def _r2(pred, t):
    """scikit-learn's R^2 (uniform average over target columns), written out."""
    pred, t = pred.reshape(len(t), -1), t.reshape(len(t), -1)
    return float(np.mean(1 - ((pred - t) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0)))


@pytest.mark.parametrize("k", [1, 2])
def test_regressor_file(tmp_path, k):
    x, y = _data(k=k)
    model = _regressor(x[:200], y[:200], k=k)
    path = str(tmp_path / "r.h5")
    rep = export(model, x[:64], x[200:], y[200:], path, name="r", verbose=False,
                 task="regression")
    assert validate(path) == []
    ok, msg = check_golden(path)
    assert ok, msg
    with h5py.File(path, "r") as f:
        assert f.attrs["task"] == b"regression"
        assert set(TASK_METRICS["regression"]) <= set(f.attrs)
        assert "brevitas_accuracy" not in f.attrs and "int_accuracy" not in f.attrs
        for key in TASK_METRICS["regression"]:
            assert f.attrs[key].dtype == np.float64
        lab = f["golden/labels"]
        assert lab.dtype == np.float64 and lab.shape == ((64,) if k == 1 else (64, k))
        np.testing.assert_array_equal(lab[()], y[200:264])
        assert f["golden"].attrs["samples"] == 64
        assert "mismatch_count" not in f["golden"].attrs
    # The metrics, recomputed from the model itself on the whole test set.
    ir = h5io.read(path)
    at = ir["attrs"]
    with torch.no_grad():
        flt = model(torch.as_tensor(x[200:])).numpy().astype(np.float64)
    t = y[200:].reshape(100, -1)
    assert at["brevitas_rmse"] == pytest.approx(np.sqrt(np.mean((flt - t) ** 2)), rel=1e-5)
    assert at["brevitas_r2"] == pytest.approx(_r2(flt, t), rel=1e-5)
    assert at["brevitas_r2"] > 0.5, "the test regressor did not learn"
    assert at["test_samples"] == 100
    # The integer path's own metrics, from the golden outputs (the first 64).
    g = ir["golden"]
    deq = dequantize(ir["outputs"][0], g["outputs"][ir["outputs"][0]["name"]]).reshape(64, -1)
    tg = g["labels"].reshape(64, -1)
    assert g["attrs"]["int_rmse"] == pytest.approx(np.sqrt(np.mean((deq - tg) ** 2)), rel=1e-12)
    assert abs(at["int_rmse"] - at["brevitas_rmse"]) <= 0.01 * at["brevitas_rmse"]
    assert at["int_vs_brevitas_max_error"] < 1e-3 * np.max(np.abs(flt))
    assert 0 <= at["int_vs_brevitas_rmse"] <= at["int_vs_brevitas_max_error"]
    assert rep["task"] == "regression" and rep["int_rmse"] == at["int_rmse"]


def test_regression_tolerance_fails(tmp_path, monkeypatch):
    """The RMSE check can fail: a Brevitas forward 10% off the integer path is
    caught (and the step bound waived, so the RMSE check is the one that says
    so)."""
    x, y = _data()
    model = _regressor(x[:200], y[:200])
    real = export_mod._float_forward
    monkeypatch.setattr(export_mod, "_float_forward",
                        lambda m, i: [1.1 * o for o in real(m, i)])
    path = str(tmp_path / "never.h5")
    with pytest.raises(ExportError, match="RMSE .* differs from Brevitas"):
        export(model, x[:64], x[200:], y[200:], path, name="r", verbose=False,
               task="regression", max_error_steps=None)
    assert not os.path.exists(path)
    # ... and a looser tolerance accepts it.
    export(model, x[:64], x[200:], y[200:], path, name="r", verbose=False,
           task="regression", max_error_steps=None, accuracy_tolerance=10.0)
    assert validate(path) == []


def test_regression_refusals(tmp_path):
    x, y = _data()
    model = _regressor(x[:200], y[:200], steps=10)
    path = str(tmp_path / "never.h5")
    with pytest.raises(ExportError, match=r"targets \[100, 3\] do not fit output 0, 1 value"):
        export(model, x[:64], x[200:], np.stack([y[200:]] * 3, 1), path, name="r",
               verbose=False, task="regression")
    bad = y[200:].copy()
    bad[7] = np.nan
    with pytest.raises(ExportError, match="1 values are not finite"):
        export(model, x[:64], x[200:], bad, path, name="r", verbose=False, task="regression")
    with pytest.raises(ExportError, match="task must be one of classification, regression"):
        export(model, x[:64], x[200:], y[200:], path, name="r", verbose=False, task="ranking")
    # A regressor's float targets exported as a classifier: refused, not truncated.
    with pytest.raises(ExportError, match=r"labels must be integers.*task=\"regression\""):
        export(model, x[:64], x[200:], y[200:], path, name="r", verbose=False)
    assert not os.path.exists(path)


def test_classification_export_unchanged(tmp_path):
    """A classifier's file has exactly the attributes it had before tasks:
    accuracies, int64 labels, mismatch_count; no regression metric. Float labels
    of integer values are still class labels."""
    x, y = blobs(300, 6, seed=3)
    torch.manual_seed(0)
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4), qnn.QuantLinear(6, 4, weight_bit_width=4),
                      qnn.QuantReLU(bit_width=4), qnn.QuantLinear(4, 3, weight_bit_width=4))
    m = fit(m, [x[:200]], y[:200])
    path = str(tmp_path / "c.h5")
    export(m, x[:64], x[200:], y[200:].astype(np.float64), path, name="c", verbose=False)
    assert validate(path) == []
    with h5py.File(path, "r") as f:
        assert sorted(f.attrs) == sorted(["format", "version", "name", "producer", "task",
                                          "brevitas_accuracy", "int_accuracy", "test_samples",
                                          "description"])
        assert f.attrs["task"] == b"classification"
        assert sorted(f["golden"].attrs) == sorted(["samples", "int_accuracy",
                                                    "brevitas_accuracy", "max_abs_error",
                                                    "mismatch_count"])
        assert f["golden/labels"].dtype == np.int64
        np.testing.assert_array_equal(f["golden/labels"][()], y[200:264])


def test_validate_refuses_unknown_task(tmp_path):
    x, y = _data()
    path = str(tmp_path / "r.h5")
    export(_regressor(x[:200], y[:200], steps=10), x[:64], x[200:], y[200:], path, name="r",
           verbose=False, task="regression", accuracy_tolerance=10.0)
    with h5py.File(path, "a") as f:
        f.attrs["task"] = np.bytes_(b"ranking")
    assert any("/@task" in e and "ranking" in e for e in validate(path))


@pytest.mark.parametrize("bad", ["nan", "inf", "columns"])
def test_validate_refuses_bad_targets(tmp_path, bad):
    """Golden targets veil's loader refuses (veil_targets_take): a NaN or an
    infinity, or [S, 2] for an output of one value. validate() passed all
    three as conforming."""
    path = tmp_path / "r.h5"
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(here, "..", "diabetes_reg.h5"), path)
    with h5py.File(path, "a") as f:
        t = f["golden/labels"][()]
        del f["golden/labels"]
        if bad == "columns":
            t = np.stack([t, t], axis=1)
        else:
            t[3] = float(bad)
        f["golden/labels"] = t
    errs = validate(str(path))
    want = ("[64, 2] targets for output 0 of 1 value(s) a sample: expected [S] or [S, 1]"
            if bad == "columns" else "1 targets are not finite")
    assert errs == ["/golden/labels: " + want], errs


REG_FACTORY = """
import brevitas.nn as qnn
import torch.nn as nn


def build():
    return nn.Sequential(qnn.QuantIdentity(bit_width=4), qnn.QuantLinear(5, 8, weight_bit_width=4),
                         qnn.QuantReLU(bit_width=4), qnn.QuantLinear(8, 1, weight_bit_width=4))
"""


def test_cli_export_regressor(tmp_path):
    """python -m veil_export export --task regression, then info prints the
    metrics; without --task the float targets are refused."""
    from test_exporter import _run_cli
    (tmp_path / "factory.py").write_text(REG_FACTORY)
    x, y = _data()
    torch.save(_regressor(x[:200], y[:200]).state_dict(), str(tmp_path / "m.pt"))
    np.savez(str(tmp_path / "calib.npz"), input0=x[:64])
    np.savez(str(tmp_path / "test.npz"), input0=x[200:], labels=y[200:])
    out = str(tmp_path / "r.h5")
    args = ["export", str(tmp_path / "factory.py") + ":build", str(tmp_path / "calib.npz"),
            str(tmp_path / "test.npz"), "--weights", str(tmp_path / "m.pt"), "-o", out, "-q"]
    r = _run_cli(*args)
    assert r.returncode == 1 and "labels must be integers" in r.stderr, r.stderr
    assert not os.path.exists(out)
    r = _run_cli(*args, "--task", "regression")
    assert r.returncode == 0, r.stderr + r.stdout
    assert validate(out) == []
    r = _run_cli("info", out)
    assert r.returncode == 0 and "regression on 100 test samples: RMSE Brevitas " in r.stdout
    assert "accuracy" not in r.stdout


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_label_count_refused(tmp_path, task):
    """Labels or targets of another count than the test set's samples: an
    ExportError naming both counts (it was numpy's ValueError from a reshape or
    a broadcast, after the whole integer path ran)."""
    x, y = _data()
    model = _regressor(x[:200], y[:200], steps=10)
    lab = y[200:299] if task == "regression" else (y[200:299] > 100).astype(np.int64)
    path = tmp_path / "r.h5"
    with pytest.raises(ExportError, match="test_labels: 99 %s for 100 test samples"
                       % ("targets" if task == "regression" else "labels")):
        export(model, x[:64], x[200:], lab, str(path), name="r", verbose=False, task=task)
    assert not path.exists()
