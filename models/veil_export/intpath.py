"""The integer path of a veil model (schema v1), in numpy int64.

This is the reference semantics of every layer op of models/SCHEMA.md: the
exporter uses it to propagate calibration data and to compute the golden
vectors, and the tests use it to recompute the golden outputs from a file.
All tensors are batch-first int64 arrays ([S, ...per-sample shape]).
"""

import numpy as np

OPS = ("linear", "conv2d", "avgpool2d", "maxpool2d", "add", "sub", "mul", "concat", "flatten",
       "reshape", "lut")


def _windows(x, kernel, strides, padding):
    """[S, C, H, W] -> [S, C, OH, OW, KH, KW] views over the zero-padded input."""
    ph, pw = int(padding[0]), int(padding[1])
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = int(kernel[0]), int(kernel[1])
    sh, sw = int(strides[0]), int(strides[1])
    w = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return w[:, :, ::sh, ::sw, :, :]


def lut_apply(x, table, in_min, in_max):
    """out[c, ...] = table[c][clamp(x, in_min, in_max) - in_min] (table [T] or [C, T])."""
    idx = np.clip(x, in_min, in_max) - in_min
    table = np.asarray(table, dtype=np.int64)
    if table.ndim == 1:
        return table[idx]
    c = table.shape[0]
    if x.shape[1] != c:
        raise ValueError("lut: table has %d channels, input has %d" % (c, x.shape[1]))
    cidx = np.arange(c).reshape((1, c) + (1,) * (x.ndim - 2))
    return table[cidx, idx]


def apply_layer(layer, tensors):
    """Runs one layer (a dict with 'op', 'inputs', attrs and datasets) on the
    batch tensors named in `tensors` (name -> int64 array); returns the output."""
    op = layer["op"]
    xs = [np.asarray(tensors[n], dtype=np.int64) for n in layer["inputs"]]
    if op == "linear":
        w = np.asarray(layer["weight"], dtype=np.int64)
        out = xs[0] @ w.T
    elif op == "conv2d":
        w = np.asarray(layer["weight"], dtype=np.int64)
        win = _windows(xs[0], w.shape[2:], layer["strides"], layer["padding"])
        out = np.einsum("schwij,ocij->sohw", win, w, optimize=False)
    elif op == "avgpool2d":
        win = _windows(xs[0], layer["kernel"], layer["strides"], layer["padding"])
        out = win.sum(axis=(4, 5))
    elif op == "maxpool2d":  # padded positions are ignored (PyTorch's -inf)
        ph, pw = (int(v) for v in layer.get("padding", (0, 0)))
        x = np.pad(xs[0], ((0, 0), (0, 0), (ph, ph), (pw, pw)),
                   constant_values=np.iinfo(np.int64).min)
        win = _windows(x, layer["kernel"], layer["strides"], (0, 0))
        out = win.max(axis=(4, 5))
    elif op == "add":
        out = xs[0] + xs[1]
    elif op == "sub":
        out = xs[0] - xs[1]
    elif op == "mul":
        out = xs[0] * xs[1]
    elif op == "concat":
        if int(layer.get("axis", 0)) != 0:
            raise ValueError("concat: only axis 0 is defined")
        out = np.concatenate(xs, axis=1)
    elif op == "flatten":
        out = xs[0].reshape(xs[0].shape[0], -1)
    elif op == "reshape":
        out = xs[0].reshape((xs[0].shape[0],) + tuple(int(s) for s in layer["shape"]))
    elif op == "lut":
        out = lut_apply(xs[0], layer["table"], int(layer["in_min"]), int(layer["in_max"]))
    else:
        raise ValueError("unknown op %r" % (op,))
    if op in ("linear", "conv2d") and layer.get("bias") is not None:
        b = np.asarray(layer["bias"], dtype=np.int64)
        out = out + b.reshape((1, -1) + (1,) * (out.ndim - 2))
    return np.ascontiguousarray(out, dtype=np.int64)


def run(layers, inputs):
    """Runs all layers in order. inputs: name -> [S, ...] int64. Returns the
    dict of every tensor (inputs and layer outputs)."""
    tensors = dict(inputs)
    for layer in layers:
        tensors[layer["output"]] = apply_layer(layer, tensors)
    return tensors


def bit_width(lo, hi):
    """Bits needed to hold every integer of [lo, hi] (two's complement when lo < 0)."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return max(1, hi.bit_length())
    return 1 + max(max(hi, 0).bit_length(), (-lo - 1).bit_length())
