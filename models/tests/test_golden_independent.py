"""The golden vectors recomputed by a second, independent implementation.

test_files.py checks the goldens with veil_export.check_golden, i.e. with the
exporter's own integer path, the code that wrote them: a bug there would
agree with itself. This file re-implements the integer semantics from
models/SCHEMA.md alone, in numpy int64, reading the HDF5 with h5py directly
(no veil_export import), and requires every golden output to be equal.
test_exporter.py applies it to the models it exports (two inputs with add
and concat, two outputs, conv2d with padding, per-channel tables).
"""

import glob
import os

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.exporter

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(MODELS, "*.h5")))


def _s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _pad(x, ph, pw):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _windows(xp, kh, kw, sh, sw):
    """Yields (i, j, view) with view[b, c, y, x] = xp[b, c, y*sh + i, x*sw + j]."""
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


def run_layer(g, ins):
    """One layer of SCHEMA.md on a batch (axis 0 = sample), int64 throughout."""
    op = _s(g.attrs["op"])
    a = g.attrs
    if op == "linear":
        w = g["weight"][()].astype(np.int64)
        out = ins[0] @ w.T
        if "bias" in g:
            out = out + g["bias"][()].astype(np.int64)
        return out
    if op in ("conv2d", "avgpool2d"):
        sh, sw = (int(v) for v in a["strides"])
        ph, pw = (int(v) for v in a["padding"])
        xp = _pad(ins[0], ph, pw)
        if op == "avgpool2d":  # an integer sum pool
            kh, kw = (int(v) for v in a["kernel"])
            out = None
            for _, _, v in _windows(xp, kh, kw, sh, sw):
                out = v.copy() if out is None else out + v
            return out
        w = g["weight"][()].astype(np.int64)  # [O, C, KH, KW]
        out = None
        for i, j, v in _windows(xp, w.shape[2], w.shape[3], sh, sw):
            t = np.einsum("bcyx,oc->boyx", v, w[:, :, i, j])
            out = t if out is None else out + t
        if "bias" in g:
            out = out + g["bias"][()].astype(np.int64)[None, :, None, None]
        return out
    if op == "maxpool2d":  # padding ignored: padded with the smallest int64
        sh, sw = (int(v) for v in a["strides"])
        kh, kw = (int(v) for v in a["kernel"])
        ph, pw = (int(v) for v in a["padding"]) if "padding" in a else (0, 0)
        xp = np.pad(ins[0], ((0, 0), (0, 0), (ph, ph), (pw, pw)),
                    constant_values=np.iinfo(np.int64).min)
        out = None
        for _, _, v in _windows(xp, kh, kw, sh, sw):
            out = v.copy() if out is None else np.maximum(out, v)
        return out
    if op == "add":
        return ins[0] + ins[1]
    if op == "sub":
        return ins[0] - ins[1]
    if op == "mul":
        return ins[0] * ins[1]
    if op == "concat":
        assert int(a["axis"]) == 0
        return np.concatenate(ins, axis=1)
    if op == "flatten":
        return ins[0].reshape(ins[0].shape[0], -1)
    if op == "reshape":
        return ins[0].reshape((ins[0].shape[0],) + tuple(int(v) for v in a["shape"]))
    if op == "lut":
        lo, hi = int(a["in_min"]), int(a["in_max"])
        t = g["table"][()].astype(np.int64)
        idx = np.clip(ins[0], lo, hi) - lo
        if t.ndim == 1:
            return t[idx]
        ch = np.arange(ins[0].shape[1]).reshape((1, -1) + (1,) * (ins[0].ndim - 2))
        return t[np.broadcast_to(ch, idx.shape), idx]
    raise AssertionError("unknown op %r" % op)


def recompute(path):
    """{output name: int64 [S, ...]} from /golden/inputs, by SCHEMA.md."""
    with h5py.File(path, "r") as f:
        vals = {k: f["golden/inputs"][k][()].astype(np.int64) for k in f["golden/inputs"]}
        names = sorted(f["layers"].keys())
        assert names == ["%04d_%s" % (i, _s(f["layers"][n].attrs["op"]))
                         for i, n in enumerate(names)]
        for n in names:
            g = f["layers"][n]
            ins = [vals[_s(i)] for i in g.attrs["inputs"]]
            out = run_layer(g, ins)
            shape = tuple(int(d) for d in g.attrs["shape"])
            assert out.shape[1:] == shape, (n, out.shape, shape)
            lo, hi = (int(v) for v in g.attrs["range"])
            assert out.min() >= lo and out.max() <= hi, n  # every value fits its range
            vals[_s(g.attrs["output"])] = out
        return {o: vals[_s(f["outputs"][o].attrs["tensor"])] for o in f["outputs"]}


@pytest.fixture(params=FILES, ids=[os.path.basename(f) for f in FILES])
def path(request):
    return request.param


def test_files_found():
    assert len(FILES) >= 7, FILES


def assert_golden_independent(path):
    """Every golden output of `path` equals recompute(path); returns the count."""
    got = recompute(path)
    with h5py.File(path, "r") as f:
        want = {k: f["golden/outputs"][k][()] for k in f["golden/outputs"]}
    assert sorted(got) == sorted(want)
    checked = 0
    for k, w in want.items():
        assert got[k].shape == w.shape, k
        diff = int(np.sum(got[k] != w))
        assert diff == 0, "%s: %d of %d golden values differ" % (k, diff, w.size)
        checked += w.size
    assert checked > 0
    return checked


def test_golden_equals_independent_recomputation(path):
    assert_golden_independent(path)
