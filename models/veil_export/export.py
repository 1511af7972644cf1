"""Brevitas QAT model -> veil model file (schema v1, models/SCHEMA.md).

How it works. The model is traced with torch.fx, Brevitas layers and the
supported torch.nn layers being leaves. The graph is then walked in order
while every value is tracked as one of:

  FloatInput  a model input before its input quantizer (a Brevitas
              activation quantizer, usually QuantIdentity);
  Quant       an integer tensor v with a real value scale * v (the output of
              a quantizer, an add/concat of same-scale tensors, a flatten);
  Pending     an integer tensor acc (a linear/conv accumulator or an
              integer sum pool) whose real value is acc * mult[c] + offset[c]
              followed by elementwise float modules (BatchNorm, float
              activations) that have not been applied yet.

A linear/conv/avgpool consumes a Quant and emits an integer layer giving a
Pending; an elementwise module is appended to a Pending; a Brevitas
activation quantizer turns a Pending (or a Quant) into a `lut` layer whose
table is computed by running the model's own modules (the affine part, the
pending modules, the quantizer) on every integer index of the table's range.
Float biases and BatchNorm therefore live in the tables and never in the
integer weights. Calibration data is pushed through each emitted layer (the
numpy integer path of intpath.py) together with the range set (the whole
training set, Concrete ML's inputset) to know the observed ranges
(`calib_range`); worst-case ranges come from interval arithmetic.
"""

import inspect
import math
import operator
import warnings

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

import brevitas
import brevitas.nn as qnn
from brevitas.nn.quant_layer import QuantNonLinearActLayer

from . import intpath
from .report import summary, format_summary
from .version import __version__

TABLE_LIMIT = 1 << 16  # tables cover the worst case when it has at most this many entries
RANGE_LIMIT = 1 << 62  # |value| bound for int64 accumulators


class ExportError(Exception):
    """The model cannot be exported; the message names the module and why."""


ELEMENTWISE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh,
               nn.Hardtanh, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Softplus, nn.Hardswish,
               nn.Hardsigmoid, nn.Mish, nn.SELU, nn.CELU, nn.Softsign, nn.Tanhshrink,
               nn.Hardshrink, nn.Softshrink, nn.LogSigmoid)
IDENTITY = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)  # the exporter runs the model in eval mode
LEAF_TORCH = ELEMENTWISE + IDENTITY + (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d,
                                       nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool1d,
                                       nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.MaxPool1d,
                                       nn.Flatten)


# Univariate: each output element a function of its own input element (and
# of constant arguments), so the whole chain folds into the next quantizer's
# table (Concrete ML's univariate functions, one lookup).
ELEMENTWISE_FUNCS = {torch.relu, torch.sigmoid, torch.tanh, F.relu, F.relu6, F.leaky_relu,
                     F.gelu, F.silu, F.hardtanh, F.elu, F.softplus, F.sigmoid, F.tanh,
                     F.hardswish, F.hardsigmoid, F.mish, F.selu, F.celu, F.softsign,
                     F.tanhshrink, F.hardshrink, F.softshrink, F.logsigmoid,
                     torch.abs, torch.neg, operator.neg, torch.exp, torch.expm1, torch.log,
                     torch.log1p, torch.log2, torch.sqrt, torch.rsqrt, torch.square, torch.sin,
                     torch.cos, torch.erf, torch.reciprocal, torch.clamp, torch.clip}
ELEMENTWISE_METHODS = {"relu", "sigmoid", "tanh", "abs", "neg", "exp", "expm1", "log", "log1p",
                       "log2", "sqrt", "rsqrt", "square", "sin", "cos", "erf", "reciprocal",
                       "clamp", "clip"}


class _Fn:
    """An elementwise torch function or tensor method pending before a quantizer."""

    def __init__(self, fn, method, args, kwargs):
        self.fn, self.method, self.args, self.kwargs = fn, method, tuple(args), dict(kwargs)
        self.name = method or getattr(fn, "__name__", str(fn))

    def __call__(self, z):
        if self.method:
            return getattr(z, self.method)(*self.args, **self.kwargs)
        return self.fn(z, *self.args, **self.kwargs)


class _Const:
    """Arithmetic with a constant (x + c, x - c, c - x, x * c, x / c, c / x,
    x ** c, c ** x) pending before a quantizer, computed in float32 as
    PyTorch does."""

    OPS = {"add": lambda z, c: z + c, "sub": lambda z, c: z - c, "rsub": lambda z, c: c - z,
           "mul": lambda z, c: z * c, "div": lambda z, c: z / c, "rdiv": lambda z, c: c / z,
           "pow": lambda z, c: z ** c, "rpow": lambda z, c: c ** z}

    def __init__(self, op, c):
        self.op, self.c = op, float(c)
        self.name = "%s %g" % (op, self.c)

    def __call__(self, z):
        return _Const.OPS[self.op](z, self.c)

    def non_decreasing(self):
        return self.op in ("add", "sub") or (self.op in ("mul", "div") and self.c > 0)


_ARITH = {operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub",
          operator.mul: "mul", torch.mul: "mul", operator.truediv: "div", torch.div: "div",
          operator.pow: "pow", torch.pow: "pow"}
_ARITH_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "pow": "pow"}


_BATCH = object()  # x.size(0) / x.shape[0]
_SHAPE = object()  # x.shape


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m, qualname):
        if type(m).__module__.startswith("brevitas"):
            return True
        if isinstance(m, LEAF_TORCH):
            return True
        return super().is_leaf_module(m, qualname)


def _pair(v):
    """A PyTorch int-or-pair argument (kernel, stride, padding) as two ints."""
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(u) for u in v)


_NON_DECREASING_FNS = {"relu", "relu6", "sigmoid", "tanh", "hardtanh", "softplus", "hardsigmoid",
                       "selu", "softsign", "logsigmoid", "exp", "expm1", "log", "log1p", "log2",
                       "sqrt", "erf", "clamp", "clip"}


def _non_decreasing(m):
    """Whether a pending elementwise module or call is non-decreasing in its
    input (on every channel), so that it commutes with a max pool."""
    if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Softplus,
                      nn.Hardsigmoid, nn.SELU, nn.Softsign, nn.LogSigmoid)):
        return True
    if isinstance(m, nn.LeakyReLU):
        return m.negative_slope >= 0
    if isinstance(m, nn.ELU):
        return m.alpha >= 0
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.training or m.running_var is None:
            return False
        w = m.weight.detach() if m.weight is not None else torch.ones_like(m.running_var)
        return bool(torch.all(w / torch.sqrt(m.running_var + m.eps) > 0))
    if isinstance(m, _Const):
        return m.non_decreasing()
    if isinstance(m, _Fn):
        name = m.name.lstrip("_")
        if name in _NON_DECREASING_FNS:
            return True
        if name == "leaky_relu":
            slope = m.args[0] if m.args else m.kwargs.get("negative_slope", 0.01)
            return float(slope) >= 0
        if name == "elu":
            alpha = m.args[0] if m.args else m.kwargs.get("alpha", 1.0)
            return float(alpha) >= 0
    return False


def _conv_padding(m, where):
    """A convolution's zero padding on each side of each spatial dimension, as
    ints: padding='valid' is none; padding='same' (stride 1) pads dilation *
    (kernel - 1) in all, half on each side, which the schema's symmetric
    padding holds when that total is even (any odd kernel); PyTorch puts an
    odd total's extra row or column on the far side only, which it cannot."""
    if not isinstance(m.padding, str):
        return tuple(int(p) for p in m.padding)
    if m.padding == "valid":
        return (0,) * len(m.kernel_size)
    total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
    if any(t % 2 for t in total):
        raise ExportError("%s: padding='%s' with kernel %s and dilation %s pads %s rows/columns "
                          "in all, one more on the far side than the near one; only symmetric "
                          "zero padding is supported (dilation * (kernel - 1) even, as for "
                          "any odd kernel, or integer padding)" % (
                              where, m.padding, list(m.kernel_size), list(m.dilation), total))
    return tuple(t // 2 for t in total)


def _pool_size(size, k, s, p, ceil_mode):
    """PyTorch's pooled length (dilation 1): with ceil_mode a last, partial
    window is kept when it starts inside the input or its left padding."""
    if not ceil_mode:
        return (size + 2 * p - k) // s + 1
    out = -(-(size + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= size + p else out


def _check_ceil_mode(where, hw, kernel, stride, padding):
    """ceil_mode=True computes what ceil_mode=False does when it adds no
    partial window (an 8 x 8 input, kernel and stride 2); the schema's pools
    have the floor sizes, so a model where it adds one is refused."""
    floor = [_pool_size(n, k, s, p, False) for n, k, s, p in zip(hw, kernel, stride, padding)]
    ceil = [_pool_size(n, k, s, p, True) for n, k, s, p in zip(hw, kernel, stride, padding)]
    if ceil != floor:
        raise ExportError("%s: ceil_mode=True adds a partial last window on the input %s "
                          "(output %s, not %s), which is not supported; pad the input or "
                          "choose a kernel and stride that tile it" % (
                              where, list(hw), ceil, floor))


def _dense_conv_weight(w, groups, dilation):
    """The weight [O, C, KH', KW'] of the plain convolution (groups 1, dilation
    1) that computes a grouped and dilated one exactly: each output channel's
    weights over its group's input channels and zeros over the others (a
    depthwise convolution becomes a diagonal one), and the kernel spread out
    with zeros between its taps, KH' = (KH - 1) * dh + 1. The zeros add no noise
    and the CPU skips them; they cost memory, O * C * KH' * KW' weights."""
    o, cg, kh, kw = w.shape
    dh, dw = dilation
    if groups == 1 and (dh, dw) == (1, 1):
        return w
    out = np.zeros((o, cg * groups, (kh - 1) * dh + 1, (kw - 1) * dw + 1), dtype=w.dtype)
    per = o // groups
    for g in range(groups):
        out[g * per:(g + 1) * per, g * cg:(g + 1) * cg, ::dh, ::dw] = w[g * per:(g + 1) * per]
    return out


class FloatInput:
    def __init__(self, index, name, calib, test):
        self.index, self.name, self.calib, self.test = index, name, calib, test


class Quant:
    def __init__(self, name, shape, lo, hi, scale):
        self.name, self.shape, self.lo, self.hi, self.scale = name, tuple(shape), int(lo), int(hi), float(scale)


class Pending:
    def __init__(self, name, shape, lo, hi, mult, offset, modules=()):
        self.name, self.shape, self.lo, self.hi = name, tuple(shape), int(lo), int(hi)
        self.mult = np.asarray(mult, dtype=np.float64).reshape(-1)
        self.offset = np.asarray(offset, dtype=np.float64).reshape(-1)
        self.modules = list(modules)

    def per_tensor(self):
        return (not self.modules and np.all(self.mult == self.mult[0])
                and np.all(self.offset == self.offset[0]))


def _describe(node, module=None):
    if module is not None:
        return "'%s' (%s)" % (node.target, type(module).__name__)
    t = node.target
    return "'%s' (%s %s)" % (node.name, node.op, getattr(t, "__name__", str(t)))


def _int_quant_tensor(t, where, what):
    """Refuses t unless it is Brevitas's integer quantized tensor (an
    IntQuantTensor; QuantTensor before Brevitas 0.11) with a scale, zero point
    and bit width: float quantizers (FP8, minifloat: FloatQuantTensor) and
    disabled quantizers (a plain tensor) are named as such."""
    try:
        from brevitas.quant_tensor import IntQuantTensor as QT
    except ImportError:  # Brevitas before 0.11: every QuantTensor is an integer one
        from brevitas.quant_tensor import QuantTensor as QT
    if not isinstance(t, QT):
        kind = type(t).__name__
        why = ("a float format (minifloat, FP8)" if "Float" in kind else
               "group-wise scales" if "Group" in kind else None)
        if why:
            raise ExportError("%s: %s gives a %s, %s; only integer quantizers with a per-tensor "
                              "or per-channel scale (IntQuantTensor) are supported" % (
                                  where, what, kind, why))
        raise ExportError("%s: %s gives a %s, not an integer quantized tensor (quantization "
                          "disabled?)" % (where, what, kind))
    if any(getattr(t, a, None) is None for a in ("scale", "zero_point", "bit_width", "signed")):
        raise ExportError("%s: %s gives a quantized tensor without scale, zero point, bit "
                          "width or sign" % (where, what))
    return t


def _quant_call(m, x, where):
    """Runs a Brevitas activation quantizer and returns (v = q - zp int64 numpy,
    scale, zp, bit_width, signed)."""
    saved = m.return_quant_tensor
    m.return_quant_tensor = True
    try:
        with torch.no_grad():
            out = m(x)
    finally:
        m.return_quant_tensor = saved
    _int_quant_tensor(out, where, "the quantizer")
    if out.scale.numel() != 1 or out.zero_point.numel() != 1:
        raise ExportError("%s: per-channel activation scales are not supported" % where)
    zp = float(out.zero_point)
    if zp != round(zp):
        raise ExportError("%s: non-integer zero point %g" % (where, zp))
    v = out.int().to(torch.int64).numpy() - int(round(zp))
    return v, float(out.scale), int(round(zp)), int(out.bit_width), bool(out.signed)


class _Proxy:
    """A Brevitas quantizer proxy (QuantEltwiseAdd's input_quant and
    output_quant) called as _quant_call calls an activation layer."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.return_quant_tensor = True

    def __call__(self, x):
        return self.proxy(x)


class _Exporter:
    def __init__(self, model, calib, test, verbose, range_set=None):
        self.model = model
        # The stored calibration samples come first, then the range set: every
        # tensor's calib_range is its min/max over both; /calibration keeps
        # only the first n_calib rows.
        self.n_calib = len(calib[0])
        if range_set is not None:
            calib = [torch.cat([c, r]) for c, r in zip(calib, range_set)]
        self.calib_f = calib
        self.test_f = test
        self.verbose = verbose
        self.layers = []
        self.images = {}  # signal name -> its image (as_image): one reshape each
        self.inputs = []
        self.input_quantizers = []  # (module, FloatInput) for quantizing test data
        self.calib = {}  # tensor name -> int64 [S, ...] calibration + range-set values
        self.modules = dict(model.named_modules())
        self.env = {}  # graph node -> its value, during walk()
        self.graph = None  # the traced torch.fx graph, after walk()

    # -- helpers -------------------------------------------------------
    def log(self, msg):
        if self.verbose:
            print("veil_export: " + msg)

    def emit(self, op, inputs, shape, lo, hi, source, **attrs):
        name = "%04d_%s" % (len(self.layers), op)
        lo, hi = int(lo), int(hi)
        if max(abs(lo), abs(hi)) >= RANGE_LIMIT:
            raise ExportError("%s: integer range [%d, %d] overflows int64" % (source, lo, hi))
        layer = dict(op=op, inputs=[v.name for v in inputs], output=name,
                     shape=[int(s) for s in shape], range=[lo, hi], source=source, **attrs)
        out = intpath.apply_layer(layer, self.calib)
        if tuple(out.shape[1:]) != tuple(shape):
            raise AssertionError("%s: shape %s != %s" % (name, out.shape[1:], shape))
        if out.size and (out.min() < lo or out.max() > hi):
            raise AssertionError("%s: calibration values outside the worst-case range" % name)
        layer["calib_range"] = [int(out.min()), int(out.max())]
        self.calib[name] = out
        self.layers.append(layer)
        self.log("%s %s <- %s range [%d, %d] (%d bits) calib [%d, %d]" % (
            name, list(shape), layer["inputs"], lo, hi, intpath.bit_width(lo, hi),
            layer["calib_range"][0], layer["calib_range"][1]))
        return name

    def as_pending(self, v):
        if isinstance(v, Pending):
            return v
        return Pending(v.name, v.shape, v.lo, v.hi, [v.scale], [0.0])

    def need_quant(self, v, where, what="input"):
        if isinstance(v, FloatInput):
            raise ExportError("%s: its %s is the raw model input '%s'; quantize it first "
                              "(QuantIdentity)" % (where, what, v.name))
        if not isinstance(v, Quant):
            raise ExportError("%s: its %s is not quantized (a float accumulator or float "
                              "activation); put a Brevitas quantizer (QuantIdentity, QuantReLU, "
                              "...) before it" % (where, what))
        return v

    def as_image(self, x, channels, where):
        """A 1-D signal [C, L] as the image [C, 1, L] (a reshape layer; the data
        stays as it is); [C, 1, L] as it is."""
        if len(x.shape) == 3 and x.shape[1] == 1:
            return x
        x = self.need_quant(x, where)
        if len(x.shape) != 2 or x.shape[0] != channels:
            raise ExportError("%s: input shape %s, expected [%d, L]" % (
                where, list(x.shape), channels))
        if x.name not in self.images:
            c, n = x.shape
            name = self.emit("reshape", [x], [c, 1, n], x.lo, x.hi, where)
            self.images[x.name] = Quant(name, (c, 1, n), x.lo, x.hi, x.scale)
        return self.images[x.name]

    def as_signal(self, x, where):
        """The image [C, 1, L] back as the signal [C, L] (a reshape layer): a
        model output a Conv1d or 1-D pool gives, which Brevitas returns as
        [C, L]."""
        c, _, n = x.shape
        name = self.emit("reshape", [x], [c, n], x.lo, x.hi, where)
        if isinstance(x, Quant):
            return Quant(name, (c, n), x.lo, x.hi, x.scale)
        return Pending(name, (c, n), x.lo, x.hi, x.mult, x.offset, x.modules)

    # -- lookup tables -------------------------------------------------
    def lut(self, src, m, where, kind="activation"):
        p = self.as_pending(src)
        rank = len(p.shape)
        if rank not in (1, 3):
            raise ExportError("%s: tensors of rank %d are not supported (only [F] and [C,H,W])"
                              % (where, rank))
        cmin, cmax = self.calib_range(p.name)
        lo, hi = p.lo, p.hi
        if hi - lo + 1 <= TABLE_LIMIT:
            in_min, in_max, covers = lo, hi, 1
        else:
            if cmax - cmin + 1 > TABLE_LIMIT:
                raise ExportError("%s: its input's calibration range [%d, %d] needs a table of "
                                  "more than %d entries" % (where, cmin, cmax, TABLE_LIMIT))
            # Margin max(16, width/4) on each side, less if the limit requires it.
            margin = min(max(16, (cmax - cmin) // 4), (TABLE_LIMIT - (cmax - cmin + 1)) // 2)
            in_min, in_max, covers = max(lo, cmin - margin), min(hi, cmax + margin), 0
        c = p.shape[0]
        idx = np.arange(in_min, in_max + 1, dtype=np.float64)
        mult = np.broadcast_to(p.mult, (c,)) if p.mult.size == 1 else p.mult
        offset = np.broadcast_to(p.offset, (c,)) if p.offset.size == 1 else p.offset
        if mult.size != c or offset.size != c:
            raise ExportError("%s: %d channels but %d scales" % (where, c, mult.size))
        z = torch.tensor(idx[:, None] * mult[None, :] + offset[None, :], dtype=torch.float32)
        if rank == 3 and any(isinstance(mod, nn.BatchNorm1d) for mod in p.modules):
            z = z[:, :, None]  # a 1-D signal [C, 1, L] (BatchNorm1d takes [N, C, L])
        elif rank == 3:
            z = z[:, :, None, None]
        with torch.no_grad():
            for mod in p.modules:
                z = mod(z)
                if hasattr(z, "value"):
                    z = z.value
        bad = torch.isnan(z)
        if bool(bad.any()):
            i = int(torch.nonzero(bad.reshape(len(idx), -1))[0][0])
            raise ExportError("%s: %s gives NaN at the accumulator value %d (its table covers "
                              "[%d, %d]); clamp the input into the function's domain first "
                              "(torch.clamp)" % (where, ", ".join(getattr(mod, "name", type(mod).__name__)
                                                                 for mod in p.modules),
                                                 in_min + i, in_min, in_max))
        v, scale, zp, bits, signed = _quant_call(m, z, where)
        table = v.reshape(v.shape[0], c).T.copy()  # [C, T]
        per_channel = not np.all(table == table[0:1])
        if not per_channel:
            table = table[0].copy()
        name = self.emit("lut", [p], p.shape, table.min(), table.max(), where,
                         table=table, in_min=in_min, in_max=in_max,
                         per_channel=int(per_channel), covers_worst_case=covers,
                         scale=scale, zero_point=zp, n_bits=bits, signed=int(signed), kind=kind)
        if not covers:
            self.log("%s: table covers [%d, %d] of worst case [%d, %d]" % (
                name, in_min, in_max, lo, hi))
        layer = self.layers[-1]
        return Quant(name, p.shape, layer["range"][0], layer["range"][1], scale)

    def calib_range(self, name):
        a = self.calib[name]
        return int(a.min()), int(a.max())

    def rescale(self, v, scale, where):
        """Inserts a table v -> round(v * v.scale / scale) (same-scale rule of add/concat)."""
        ratio = v.scale / scale
        idx = np.arange(v.lo, v.hi + 1, dtype=np.float64)
        table = np.rint(idx * ratio).astype(np.int64)
        if v.hi - v.lo + 1 > TABLE_LIMIT:
            raise ExportError("%s: operand range [%d, %d] too wide to rescale" % (where, v.lo, v.hi))
        lo, hi = int(table.min()), int(table.max())
        name = self.emit("lut", [v], v.shape, lo, hi, where + " (rescale)", table=table,
                         in_min=v.lo, in_max=v.hi, per_channel=0, covers_worst_case=1,
                         scale=scale, zero_point=0, n_bits=intpath.bit_width(lo, hi),
                         signed=int(lo < 0), kind="rescale")
        return Quant(name, v.shape, lo, hi, scale)

    def same_scale(self, vals, where):
        s = min(v.scale for v in vals)
        out = []
        for v in vals:
            if math.isclose(v.scale, s, rel_tol=1e-7, abs_tol=0.0):
                out.append(v)
            else:
                self.log("%s: rescaling operand %s from scale %g to %g" % (where, v.name, v.scale, s))
                warnings.warn("%s: operands at scales %g and %g: the coarser one is rescaled by a "
                              "rounding table, not exactly (models/README.md, 'Exact vs. "
                              "approximate' (2)); one quantizer for all operands keeps it exact"
                              % (where, v.scale, s), stacklevel=2)
                out.append(self.rescale(v, s, where))
        return out, s

    # -- graph walk ----------------------------------------------------
    def input_quantizer(self, fin, m, where):
        v, scale, zp, bits, signed = _quant_call(m, fin.calib, where)
        probe = torch.tensor([-1e6, -1e3, 0.0, 1e3, 1e6], dtype=torch.float32)
        probe = probe.reshape((5,) + (1,) * (fin.calib.dim() - 1)).expand(
            (5,) + tuple(fin.calib.shape[1:]))
        pv = _quant_call(m, probe, where)[0]
        lo, hi = int(pv.min()), int(pv.max())
        shape = tuple(fin.calib.shape[1:])
        self.check_input_rounding(m, shape, scale, zp, lo, hi, where)
        self.calib[fin.name] = v
        self.inputs.append(dict(name=fin.name, index=fin.index, shape=list(shape), scale=scale,
                                zero_point=zp, n_bits=bits, signed=int(signed), range=[lo, hi],
                                calib_range=[int(v.min()), int(v.max())]))
        self.input_quantizers.append((m, fin))
        self.log("input %s %s scale %g zp %d %d-bit %s range [%d, %d]" % (
            fin.name, list(shape), scale, zp, bits, "signed" if signed else "unsigned", lo, hi))
        return Quant(fin.name, shape, lo, hi, scale)

    @staticmethod
    def module_args(node, m):
        """The arguments of a module call in the order of its forward()'s
        parameters: keyword arguments (self.fc(input=x), self.add(a, other=b))
        put in their places, a skipped parameter given its default."""
        if not node.kwargs:
            return list(node.args)
        where = _describe(node, m)
        call = ", ".join([str(a) for a in node.args] +
                         ["%s=%s" % kv for kv in node.kwargs.items()])
        try:
            sig = inspect.signature(m.forward)
        except (TypeError, ValueError) as e:
            raise ExportError("%s: called with keyword arguments (%s) and its forward() has no "
                              "signature to place them; pass them positionally" % (
                                  where, call)) from e
        try:
            bound = sig.bind(*node.args, **node.kwargs)
        except TypeError as e:
            raise ExportError("%s: the call's arguments (%s) do not fit forward%s: %s" % (
                where, call, sig, e)) from e
        args, missing = [], []
        for pname, p in sig.parameters.items():
            if p.kind == p.VAR_POSITIONAL:
                args += missing + list(bound.arguments.get(pname, ()))
                missing = []
            elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                if pname in bound.arguments:
                    args += missing + [bound.arguments[pname]]
                    missing = []
                else:
                    missing.append(p.default)
            elif pname in bound.arguments:  # keyword-only, **kwargs
                raise ExportError("%s: keyword argument '%s' of forward() is not supported; "
                                  "pass the tensors positionally" % (where, pname))
        return args

    def check_input_rounding(self, m, shape, scale, zp, lo, hi, where):
        """Refuses an input quantizer whose integers differ from the client's
        rule (models/SCHEMA.md, Concrete ML's QuantizedArray): q = clamp(rint(x /
        scale + zero_point), qmin, qmax) in float64, ties to even, v = q - zp,
        lo/hi = qmin - zp, qmax - zp. Probes: x = (k + 0.25) * scale and
        (k + 0.75) * scale over the range (far from ties, so float32, as Brevitas
        computes, and float64 agree), the exact ties x = (k + 0.5) * scale where
        that product is a float32 number (k = 0 and -1 always: a tie between an
        even and an odd neighbour), and Brevitas's own rounding function
        (float_to_int_impl) on the ties k + 0.5 directly. FLOOR, CEIL,
        ROUND_TO_ZERO, DPU rounding and the like are refused."""
        ks = np.arange(lo - 1, hi + 2, dtype=np.int64)
        if len(ks) > 1 << 14:  # a wide input: both ends and a sample of the middle
            ks = np.unique(np.concatenate([ks[:4096], ks[-4096:],
                                           np.linspace(lo, hi, 4096).astype(np.int64)]))
        ks = ks[np.abs(ks) < 1 << 20].astype(np.float64)  # k + 0.25 exact in float32
        away = np.concatenate([ks + 0.25, ks + 0.75])
        x_away = (away * scale).astype(np.float32)
        t = ks + 0.5
        exact = t * scale  # exact in float64 (24-bit scale times a <= 22-bit t)
        x_ties = exact.astype(np.float32)[exact.astype(np.float32).astype(np.float64) == exact]
        xs = np.concatenate([x_away, x_ties])
        if not len(xs):  # only integers beyond float32's half-integers
            return
        n = int(np.prod(shape)) if shape else 1
        pad = (-len(xs)) % n
        probe = torch.from_numpy(np.concatenate([xs, np.zeros(pad, np.float32)]).reshape(
            (-1,) + tuple(shape)))
        v, pscale, pzp = _quant_call(m, probe, where)[:3]
        if pscale != scale or pzp != zp:
            raise ExportError("%s: its scale and zero point depend on the input (%g, %d on the "
                              "calibration set, %g, %d on other values); a model input needs a "
                              "fixed quantizer" % (where, scale, zp, pscale, pzp))
        v = v.reshape(-1)[:len(xs)]
        rule = np.clip(np.rint(xs.astype(np.float64) / scale + zp), lo + zp, hi + zp) - zp
        bad = np.nonzero(v != rule)[0]
        if bad.size:
            i = int(bad[0])
            y = float(xs[i]) / scale + zp
            raise ExportError(
                "%s: quantizes x = %.9g (x / scale + zero_point = %.6g) to q = %d where the "
                "client's rule, q = clamp(rint(x / scale + zero_point)) rounding to nearest "
                "with ties to even (models/SCHEMA.md), gives %d (%d of %d probes differ): the "
                "client would encrypt other integers than the model computes on; use a "
                "round-to-nearest input quantizer (float_to_int_impl_type ROUND, Brevitas's "
                "default)" % (where, xs[i], y, int(v[i]) + zp, int(rule[i]) + zp, bad.size,
                              len(xs)))
        root = m.proxy if isinstance(m, _Proxy) else m
        ties = torch.arange(-8, 8, dtype=torch.float32) + 0.5
        # the rounding of the values (IntQuant's), not the one a scaling may have
        # (a power-of-two scale's ceil)
        for name, parent in root.named_modules():
            impl = getattr(parent, "float_to_int_impl", None)
            if type(parent).__name__ not in ("IntQuant", "DecoupledIntQuant") or impl is None:
                continue
            name = (name + "." if name else "") + "float_to_int_impl"
            try:
                with torch.no_grad():
                    r = impl(ties.clone())
                r = np.asarray(r.detach().to(torch.float64).numpy()).reshape(-1)
            except Exception:  # a rounding function of another form: the probes above
                continue
            want = np.rint(ties.numpy().astype(np.float64))
            if r.shape != want.shape:
                continue
            if np.any(r != want):
                i = int(np.nonzero(r != want)[0][0])
                raise ExportError(
                    "%s: its rounding function (%s, %s) rounds the tie %g to %g; the client "
                    "rounds ties to even (%g, models/SCHEMA.md); use float_to_int_impl_type "
                    "ROUND" % (where, name, type(impl).__name__, float(ties[i]), r[i], want[i]))

    def call_module(self, node, m, args):
        where = _describe(node, m)
        if isinstance(m, LEAF_TORCH):
            # A subclass computes what its base does only with the base's forward:
            # Brevitas's TruncAvgPool2d is an AvgPool2d that truncates its result
            # to a bit width; exported as its base it would lose that step.
            base = next(c for c in type(m).__mro__ if c in LEAF_TORCH)
            if type(m).forward is not base.forward:
                raise ExportError("unsupported layer %s: a subclass of %s with a forward of its "
                                  "own, which the exporter cannot compute as %s (for an average "
                                  "pool: use nn.AvgPool2d and a quantizer after it, e.g. "
                                  "QuantIdentity)" % (where, base.__name__, base.__name__))
        if isinstance(m, IDENTITY):
            return args[0]
        if isinstance(m, qnn.QuantEltwiseAdd):
            return self.eltwise_add(node, m, args, where)
        x = args[0]
        if isinstance(m, QuantNonLinearActLayer):
            if not m.act_quant.is_quant_enabled:
                raise ExportError("%s: quantization disabled (act_quant=None)" % where)
            if isinstance(x, FloatInput):
                return self.input_quantizer(x, m, where)
            return self.lut(x, m, where)
        if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d, qnn.QuantConv1d)):
            return self.weight_layer(m, x, where)
        if isinstance(m, ELEMENTWISE):
            if isinstance(x, FloatInput):
                raise ExportError("%s: applied to the raw model input '%s'; quantize it first"
                                  % (where, x.name))
            p = self.as_pending(x)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                if m.running_mean is None or m.running_var is None:
                    raise ExportError("%s: BatchNorm without running statistics "
                                      "(track_running_stats=False) normalizes every batch "
                                      "by its own mean and variance, so no fixed table "
                                      "computes it; train with track_running_stats=True"
                                      % where)
                # BatchNorm1d: features [F] or a 1-D signal (here [C, 1, L])
                want = (1, 3) if isinstance(m, nn.BatchNorm1d) else (3,)
                signal = len(p.shape) == 3 and (p.shape[1] == 1 or not isinstance(
                    m, nn.BatchNorm1d))
                if len(p.shape) not in want or (len(p.shape) == 3 and not signal) or \
                        p.shape[0] != m.num_features:
                    raise ExportError("%s: input shape %s does not fit" % (where, list(p.shape)))
            return Pending(p.name, p.shape, p.lo, p.hi, p.mult, p.offset, p.modules + [m])
        if isinstance(m, nn.AvgPool2d):
            return self.avgpool(m, x, where)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return self.adaptive_avgpool(x, m.output_size, where)
        if isinstance(m, nn.AdaptiveMaxPool2d):
            if m.return_indices:
                raise ExportError("%s: return_indices is not supported" % where)
            return self.adaptive_maxpool(x, m.output_size, where)
        if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)):
            return self.pool1d(m, x, where)
        if isinstance(m, nn.MaxPool2d):
            return self.maxpool(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                m.return_indices, where)
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ExportError("%s: only Flatten(start_dim=1, end_dim=-1) is supported" % where)
            return self.flatten(x, where)
        raise ExportError("unsupported layer %s" % where)

    def weight_layer(self, m, x, where):
        """QuantLinear, QuantConv2d, QuantConv1d; the layer's own quantizers
        as Brevitas runs them: input_quant (the model input's quantizer, or a
        lookup), bias_quant (the bias Brevitas adds, on the accumulator's
        grid for Int32Bias), output_quant (a lookup on the accumulator)."""
        if m.input_quant.is_quant_enabled:
            q = _Proxy(m.input_quant)
            x = (self.input_quantizer(x, q, where + " input_quant") if isinstance(x, FloatInput)
                 else self.lut(self.need_float_chain(x, where, "input"), q,
                               where + " input_quant"))
        x = self.need_quant(x, where)
        if not m.weight_quant.is_quant_enabled:
            raise ExportError("%s: weight quantization disabled (weight_quant=None); give it an "
                              "integer weight quantizer (weight_bit_width=...)" % where)
        with torch.no_grad():
            qw = _int_quant_tensor(m.quant_weight(), where, "weight_quant")
            w = qw.int().to(torch.int64).numpy()
            wzp = qw.zero_point.detach().numpy()
            if np.any(wzp != np.round(wzp)):
                raise ExportError("%s: non-integer weight zero point" % where)
            w = w - np.broadcast_to(np.round(wzp).astype(np.int64), w.shape)
            sw = qw.scale.detach().to(torch.float64).numpy().reshape(-1)
            bias = (m.bias.detach().to(torch.float64).numpy() if m.bias is not None
                    else np.zeros(w.shape[0]))
            if m.bias is not None and m.bias_quant.is_quant_enabled:
                bias = self.quant_bias(m, x, qw, where)
        o = w.shape[0]
        sw = np.broadcast_to(sw, (o,)) if sw.size == 1 else sw
        if sw.size != o:
            raise ExportError("%s: weight scale shape not per tensor or per output channel" % where)
        wpos, wneg = np.maximum(w, 0), np.minimum(w, 0)
        if isinstance(m, qnn.QuantLinear):
            if len(x.shape) != 1 or x.shape[0] != m.in_features:
                raise ExportError("%s: input shape %s, expected [%d] (flatten first)" % (
                    where, list(x.shape), m.in_features))
            los = wpos.sum(1) * x.lo + wneg.sum(1) * x.hi
            his = wpos.sum(1) * x.hi + wneg.sum(1) * x.lo
            name = self.emit("linear", [x], [o], los.min(), his.max(), where, weight=w,
                             weight_bits=int(qw.bit_width))
            shape = (o,)
        else:
            if m.padding_mode != "zeros":
                raise ExportError("%s: only zero padding is supported" % where)
            padding = _conv_padding(m, where)
            one_d = isinstance(m, qnn.QuantConv1d)
            if one_d:
                # [C, L] is the image [C, 1, L]: a 1 x K kernel
                x = self.as_image(x, m.in_channels, where)
                w = w[:, :, None, :]
                dilation, (ph, pw), (sh, sw_) = (1,) + tuple(m.dilation), (0,) + padding, (
                    1,) + tuple(m.stride)
            else:
                dilation, (ph, pw), (sh, sw_) = tuple(m.dilation), padding, m.stride
            if len(x.shape) != 3 or x.shape[0] != m.in_channels:
                raise ExportError("%s: input shape %s, expected [%d, H, W]" % (
                    where, list(x.shape), m.in_channels))
            w = _dense_conv_weight(w, m.groups, dilation)
            kh, kw = w.shape[2:]
            c, hgt, wid = x.shape
            oh, ow = (hgt + 2 * ph - kh) // sh + 1, (wid + 2 * pw - kw) // sw_ + 1
            tlo = np.minimum(w * x.lo, w * x.hi)
            thi = np.maximum(w * x.lo, w * x.hi)
            if ph or pw:
                tlo, thi = np.minimum(tlo, 0), np.maximum(thi, 0)
            los, his = tlo.reshape(o, -1).sum(1), thi.reshape(o, -1).sum(1)
            name = self.emit("conv2d", [x], [o, oh, ow], los.min(), his.max(), where, weight=w,
                             strides=[sh, sw_], padding=[ph, pw], weight_bits=int(qw.bit_width))
            shape = (o, oh, ow)
        layer = self.layers[-1]
        out = Pending(name, shape, layer["range"][0], layer["range"][1], x.scale * sw, bias)
        if m.output_quant.is_quant_enabled:
            out = self.lut(out, _Proxy(m.output_quant), where + " output_quant")
        return out

    def quant_bias(self, m, x, qw, where):
        """The bias as the layer's bias_quant gives it (float64 of Brevitas's
        values), for an input at x's scale: Int32Bias puts it on the grid of
        input scale x weight scale, so the sum stays the model's own."""
        try:
            from brevitas.quant_tensor import IntQuantTensor as QT
            new_api = True
        except ImportError:  # Brevitas before 0.11 (Concrete ML 1.9 pins 0.10.2)
            from brevitas.quant_tensor import QuantTensor as QT
            new_api = False
        qx = QT(torch.zeros((1,) + tuple(x.shape)), torch.tensor(float(x.scale)),
                torch.tensor(0.0), torch.tensor(float(intpath.bit_width(x.lo, x.hi))),
                torch.tensor(bool(x.lo < 0)), torch.tensor(False))
        try:
            if new_api:  # bias_quant(bias, input, weight), the quant tensors themselves
                qb = m.bias_quant(m.bias, qx, qw)
            else:  # bias_quant(bias, output scale, output bit width), as the layer forms them
                qb = m.bias_quant(m.bias, m.quant_output_scale_impl(qx, qx.scale, qw.scale),
                                  m.max_acc_bit_width(qx.bit_width, qw.bit_width))
        except Exception as e:  # Brevitas raises several types here
            raise ExportError("%s: bias_quant failed on an input of scale %g: %s" % (
                where, x.scale, e)) from e
        value = getattr(qb, "value", qb)
        return value.detach().to(torch.float64).numpy().reshape(-1)

    def avgpool(self, m, x, where):
        x = self.need_quant(x, where)
        if len(x.shape) != 3:
            raise ExportError("%s: input shape %s, expected [C, H, W]" % (where, list(x.shape)))
        kh, kw = _pair(m.kernel_size)
        sh, sw = _pair(m.stride if m.stride is not None else m.kernel_size)
        ph, pw = _pair(m.padding)
        if m.divisor_override is not None or ((ph or pw) and not m.count_include_pad):
            raise ExportError("%s: divisor_override and count_include_pad=False are "
                              "not supported" % where)
        c, hgt, wid = x.shape
        if m.ceil_mode:
            _check_ceil_mode(where, (hgt, wid), (kh, kw), (sh, sw), (ph, pw))
        oh, ow = (hgt + 2 * ph - kh) // sh + 1, (wid + 2 * pw - kw) // sw + 1
        lo, hi = x.lo, x.hi
        if ph or pw:
            lo, hi = min(lo, 0), max(hi, 0)
        k = kh * kw
        name = self.emit("avgpool2d", [x], [c, oh, ow], k * lo, k * hi, where,
                         kernel=[kh, kw], strides=[sh, sw], padding=[ph, pw])
        return Pending(name, (c, oh, ow), k * lo, k * hi, [x.scale / k], [0.0])

    def pool1d(self, m, x, where):
        """MaxPool1d, AvgPool1d, AdaptiveAvgPool1d on a 1-D signal: the 2-D pool
        of its image [C, 1, L] with a 1 x K window."""
        if isinstance(x, FloatInput):
            raise ExportError("%s: applied to the raw model input '%s'; quantize it first"
                              % (where, x.name))
        if len(x.shape) == 2:
            x = self.as_image(x, x.shape[0], where)
        if len(x.shape) != 3 or x.shape[1] != 1:
            raise ExportError("%s: input shape %s, expected [C, L]" % (where, list(x.shape)))

        def one(v):
            return int(v[0]) if isinstance(v, (tuple, list)) else int(v)
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)):
            size = (1, m.output_size if isinstance(m.output_size, int) else m.output_size[0])
            if isinstance(m, nn.AdaptiveAvgPool1d):
                return self.adaptive_avgpool(x, size, where)
            if m.return_indices:
                raise ExportError("%s: return_indices is not supported" % where)
            return self.adaptive_maxpool(x, size, where)
        k = one(m.kernel_size)
        s = one(m.stride) if m.stride is not None and m.stride != () else k
        if isinstance(m, nn.MaxPool1d):
            return self.maxpool(x, (1, k), (1, s), (0, one(m.padding)), (1, one(m.dilation)),
                                m.ceil_mode, m.return_indices, where)
        pool = nn.AvgPool2d((1, k), (1, s), (0, one(m.padding)), ceil_mode=m.ceil_mode,
                            count_include_pad=m.count_include_pad)
        return self.avgpool(pool, x, where)

    @staticmethod
    def adaptive_window(shape, output_size, where):
        """The window (kh, kw) of PyTorch's adaptive pools on an image of
        `shape` [C, H, W], when the output's height and width divide the
        input's (PyTorch's windows are then all of one size and tile it);
        output_size: an int, a pair, None entries keeping the input's."""
        _, hgt, wid = shape
        if isinstance(output_size, int) or output_size is None:
            output_size = (output_size, output_size)
        oh = hgt if output_size[0] is None else int(output_size[0])
        ow = wid if output_size[1] is None else int(output_size[1])
        if oh < 1 or ow < 1 or hgt % oh or wid % ow:
            raise ExportError("%s: output size %s does not divide the input %s (windows of "
                              "unequal sizes are not supported)" % (where, [oh, ow], [hgt, wid]))
        return hgt // oh, wid // ow

    def adaptive_avgpool(self, x, output_size, where):
        """AdaptiveAvgPool2d (global average pooling: output_size 1): the average
        pool whose windows tile the input, when the input's height and width are
        multiples of the output's (PyTorch's windows are then all of one size)."""
        x = self.need_quant(x, where)
        if len(x.shape) != 3:
            raise ExportError("%s: input shape %s, expected [C, H, W]" % (where, list(x.shape)))
        c, hgt, wid = x.shape
        kh, kw = self.adaptive_window(x.shape, output_size, where)
        oh, ow, k = hgt // kh, wid // kw, kh * kw
        name = self.emit("avgpool2d", [x], [c, oh, ow], k * x.lo, k * x.hi, where,
                         kernel=[kh, kw], strides=[kh, kw], padding=[0, 0])
        return Pending(name, (c, oh, ow), k * x.lo, k * x.hi, [x.scale / k], [0.0])

    def adaptive_maxpool(self, x, output_size, where):
        """AdaptiveMaxPool2d (global max pooling: output_size 1): the max pool
        whose windows tile the input, when they are all of one size"""
        if isinstance(x, FloatInput) or len(x.shape) != 3:
            raise ExportError("%s: expected an image [C, H, W] after an integer layer" % where)
        k = self.adaptive_window(x.shape, output_size, where)
        return self.maxpool(x, k, k, 0, 1, False, False, where)

    def maxpool(self, x, kernel, stride, padding, dilation, ceil_mode, return_indices, where):
        """MaxPool2d: the window maximum of the integers. Exact on a quantized
        tensor (positive scale, zero point subtracted) and on an accumulator whose
        pending float map keeps the order of the integers (positive per-channel
        multipliers, then non-decreasing modules: ReLU, sigmoid, BatchNorm with
        a positive scale, ...), so the largest integer gives the largest value."""
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride if stride is not None and stride != [] else kernel)
        ph, pw = _pair(padding)
        if 2 * ph > kh or 2 * pw > kw:  # PyTorch refuses them too
            raise ExportError("%s: padding=%s is more than half the kernel %s" % (
                where, padding, [kh, kw]))
        if _pair(dilation) != (1, 1) or return_indices:
            raise ExportError("%s: dilation and return_indices are not supported" % where)
        if isinstance(x, FloatInput):
            raise ExportError("%s: applied to the raw model input '%s'; quantize it first"
                              % (where, x.name))
        if isinstance(x, Pending):
            bad = [getattr(mm, "name", type(mm).__name__) for mm in x.modules
                   if not _non_decreasing(mm)]
            if np.any(x.mult <= 0):
                bad.append("a negative scale")
            if bad:
                raise ExportError("%s: max pool of a float value that does not keep the order "
                                  "of the integers (pending %s); put a Brevitas quantizer "
                                  "(QuantReLU, QuantIdentity, ...) before it" % (
                                      where, ", ".join(bad)))
        if len(x.shape) != 3:
            raise ExportError("%s: input shape %s, expected [C, H, W]" % (where, list(x.shape)))
        c, hgt, wid = x.shape
        if kh > hgt + 2 * ph or kw > wid + 2 * pw or kh < 1 or kw < 1 or sh < 1 or sw < 1:
            raise ExportError("%s: kernel %s does not fit input %s" % (
                where, [kh, kw], list(x.shape)))
        if kh * kw > 64:
            raise ExportError("%s: a window of %d values; veil compiles at most 64" % (
                where, kh * kw))
        if ceil_mode:
            _check_ceil_mode(where, (hgt, wid), (kh, kw), (sh, sw), (ph, pw))
        oh, ow = (hgt + 2 * ph - kh) // sh + 1, (wid + 2 * pw - kw) // sw + 1
        name = self.emit("maxpool2d", [x], [c, oh, ow], x.lo, x.hi, where,
                         kernel=[kh, kw], strides=[sh, sw], padding=[ph, pw])
        if isinstance(x, Quant):
            return Quant(name, (c, oh, ow), x.lo, x.hi, x.scale)
        return Pending(name, (c, oh, ow), x.lo, x.hi, x.mult, x.offset, x.modules)

    def flatten(self, x, where):
        if isinstance(x, FloatInput):
            raise ExportError("%s: applied to the raw model input; quantize it first" % where)
        if isinstance(x, Pending) and not x.per_tensor():
            raise ExportError("%s: flattening a tensor with per-channel float scale/bias or "
                              "pending BatchNorm/activation; put a quantizer before it" % where)
        n = int(np.prod(x.shape))
        name = self.emit("flatten", [x], [n], x.lo, x.hi, where)
        if isinstance(x, Quant):
            return Quant(name, (n,), x.lo, x.hi, x.scale)
        return Pending(name, (n,), x.lo, x.hi, x.mult[:1], x.offset[:1])

    def signals_as_images(self, vals, where):
        """Operands of an elementwise op or a concatenation where some are 1-D
        signals after a Conv1d or a pool (written as images [C, 1, L]) and
        others still signals [C, L]: the latter as images too (a reshape, the
        data unchanged), so a 1-D residual block x + conv1d(x) adds like
        shapes. Anything else as it is."""
        if not any(len(v.shape) == 3 and v.shape[1] == 1 for v in vals):
            return vals
        return [self.as_image(v, v.shape[0], where) if len(v.shape) == 2 else v for v in vals]

    def add(self, a, b, where, op="add"):
        """a + b, or a - b (op "sub"), of two quantized tensors of one shape
        (brought to one scale by same_scale)"""
        a, b = self.need_quant(a, where, "first operand"), self.need_quant(b, where, "second operand")
        a, b = self.signals_as_images([a, b], where)
        if a.shape != b.shape:
            raise ExportError("%s: shapes %s and %s differ" % (where, list(a.shape), list(b.shape)))
        (a, b), s = self.same_scale([a, b], where)
        lo, hi = (a.lo + b.lo, a.hi + b.hi) if op == "add" else (a.lo - b.hi, a.hi - b.lo)
        name = self.emit(op, [a, b], a.shape, lo, hi, where)
        return Quant(name, a.shape, lo, hi, s)

    def mul(self, a, b, where):
        """a * b of two quantized tensors of one shape: the integers' product,
        at the product of the scales (Brevitas's QuantTensor product); any
        two scales"""
        a, b = self.need_quant(a, where, "first operand"), self.need_quant(b, where, "second operand")
        a, b = self.signals_as_images([a, b], where)
        if a.shape != b.shape:
            raise ExportError("%s: shapes %s and %s differ" % (where, list(a.shape), list(b.shape)))
        corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        lo, hi = min(corners), max(corners)
        name = self.emit("mul", [a, b], a.shape, lo, hi, where)
        return Quant(name, a.shape, lo, hi, a.scale * b.scale)

    def concat(self, vals, dim, where):
        vals = [self.need_quant(v, where, "operand %d" % i) for i, v in enumerate(vals)]
        vals = self.signals_as_images(vals, where)
        rank = len(vals[0].shape)
        if dim not in (1, 1 - (rank + 1)):
            raise ExportError("%s: only concatenation along dim 1 (channels/features) is "
                              "supported, got dim=%d" % (where, dim))
        if any(v.shape[1:] != vals[0].shape[1:] or len(v.shape) != rank for v in vals):
            raise ExportError("%s: operand shapes %s differ beyond dim 1" % (
                where, [list(v.shape) for v in vals]))
        vals, s = self.same_scale(vals, where)
        shape = (sum(v.shape[0] for v in vals),) + vals[0].shape[1:]
        lo, hi = min(v.lo for v in vals), max(v.hi for v in vals)
        name = self.emit("concat", vals, shape, lo, hi, where, axis=0)
        return Quant(name, shape, lo, hi, s)

    def eltwise_add(self, node, m, args, where):
        """Brevitas's QuantEltwiseAdd: both operands through input_quant (a
        lookup each, as Brevitas requantizes even a quantized operand), their
        sum at input_quant's scale (exact), then output_quant (a lookup). A
        quantizer set to None is left out, as Brevitas leaves it out.
        (Brevitas 0.13's QuantCat fails in its own forward, QuantTensor.cat
        missing, so it stays refused.)"""
        vals = list(args)  # keyword operands put in place by module_args
        if len(vals) != 2:
            raise ExportError("%s: expected two operands, got %d" % (where, len(vals)))
        if m.input_quant.is_quant_enabled:
            q = _Proxy(m.input_quant)
            vals = [self.lut(self.need_float_chain(v, where, "operand %d" % i), q,
                             "%s input_quant (operand %d)" % (where, i))
                    for i, v in enumerate(vals)]
        out = self.add(vals[0], vals[1], where)
        if m.output_quant.is_quant_enabled:
            out = self.lut(out, _Proxy(m.output_quant), where + " output_quant")
        return out

    def need_float_chain(self, v, where, what):
        """v as a lookup's input: a quantized tensor or an accumulator with its
        float chain (not the raw model input)."""
        if isinstance(v, FloatInput):
            raise ExportError("%s: its %s is the raw model input '%s'; quantize it first "
                              "(QuantIdentity)" % (where, what, v.name))
        if not isinstance(v, (Quant, Pending)):
            raise ExportError("%s: its %s is not a tensor of the model" % (where, what))
        return v

    def call_function(self, node, env):
        t = node.target
        where = _describe(node)

        def arg(i, key, default):
            if len(node.args) > i:
                return node.args[i]
            return node.kwargs.get(key, default)
        op = _ARITH.get(t) if node.op == "call_function" else (
            _ARITH_METHODS.get(t) if node.op == "call_method" else None)
        if op is not None:
            if len(node.args) != 2 or node.kwargs:
                raise ExportError("%s: only %s of two operands is supported" % (where, op))
            a, b = node.args
            tensors = [isinstance(v, torch.fx.Node) for v in (a, b)]
            if all(tensors):
                if op in ("add", "sub"):
                    return self.add(env[a], env[b], where, op)
                if op == "mul":
                    return self.mul(env[a], env[b], where)
                raise ExportError("%s: %s of two encrypted tensors is not supported (only a + b, "
                                  "a - b and a * b; a constant may stand on either side)" % (where, op))
            c = b if tensors[0] else a
            if not isinstance(c, (int, float)) or isinstance(c, bool):
                raise ExportError("%s: only a Python number may be the constant of %s"
                                  % (where, op))
            x = env[a if tensors[0] else b]
            if isinstance(x, FloatInput):
                raise ExportError("%s: applied to the raw model input '%s'; quantize it first"
                                  % (where, x.name))
            if not tensors[0] and op in ("sub", "div", "pow"):
                op = "r" + op
            p = self.as_pending(x)
            return Pending(p.name, p.shape, p.lo, p.hi, p.mult, p.offset,
                           p.modules + [_Const(op, c)])
        reductions = {torch.mean: "mean", torch.sum: "sum", torch.amax: "amax"}
        red = reductions.get(t) if node.op == "call_function" else (
            t if node.op == "call_method" and t in ("mean", "sum", "amax") else None)
        if red is not None:
            # over height and width: global average, sum and max pooling
            dims = arg(1, "dim", None)
            keep = arg(2, "keepdim", False)
            x = env[node.args[0]]
            dims = sorted(int(d) % 4 for d in ((dims,) if isinstance(dims, int) else dims or ()))
            if dims != [2, 3] or not isinstance(x, (Quant, Pending)) or len(x.shape) != 3:
                raise ExportError("%s: only the %s over height and width (dim=(2, 3)) of an "
                                  "image is supported" % (where, red))
            if red == "amax":
                pooled = self.adaptive_maxpool(x, 1, where)
            else:
                xq = self.need_quant(x, where)
                pooled = self.adaptive_avgpool(xq, 1, where)
                if red == "sum":  # the same integer sum, at the operand's own scale
                    pooled = Pending(pooled.name, pooled.shape, pooled.lo, pooled.hi,
                                     [xq.scale], [0.0])
            return pooled if keep else self.flatten(pooled, where)
        if t in (torch.cat, torch.concat):
            seq = arg(0, "tensors", None)
            dim = arg(1, "dim", 0)
            return self.concat([env[n] for n in seq], dim, where)
        if t is torch.flatten or (node.op == "call_method" and t == "flatten"):
            start, end = arg(1, "start_dim", 0), arg(2, "end_dim", -1)
            if start != 1 or end != -1:
                raise ExportError("%s: only flatten(x, 1) is supported" % where)
            return self.flatten(env[node.args[0]], where)
        if t is F.adaptive_avg_pool2d:
            if any(isinstance(a, torch.fx.Node) for a in list(node.args[1:]) +
                   list(node.kwargs.values())):
                raise ExportError("%s: only a constant output size is supported" % where)
            return self.adaptive_avgpool(env[node.args[0]], arg(1, "output_size", None), where)
        if t in (F.adaptive_max_pool2d, F.avg_pool2d, F.avg_pool1d, F.max_pool1d):
            if any(isinstance(a, torch.fx.Node) for a in list(node.args[1:]) +
                   list(node.kwargs.values())):
                raise ExportError("%s: only constant pooling arguments are supported" % where)
            x = env[node.args[0]]
            args, kw = list(node.args[1:]), dict(node.kwargs)
            # the module of the same arguments (PyTorch's own defaults)
            mod = {F.adaptive_max_pool2d: nn.AdaptiveMaxPool2d, F.avg_pool2d: nn.AvgPool2d,
                   F.avg_pool1d: nn.AvgPool1d, F.max_pool1d: nn.MaxPool1d}[t](*args, **kw)
            if isinstance(x, FloatInput):
                raise ExportError("%s: applied to the raw model input '%s'; quantize it first"
                                  % (where, x.name))
            if t is F.adaptive_max_pool2d:
                if mod.return_indices:
                    raise ExportError("%s: return_indices is not supported" % where)
                return self.adaptive_maxpool(x, mod.output_size, where)
            if t is F.avg_pool2d:
                return self.avgpool(mod, x, where)
            return self.pool1d(mod, x, where)
        if t in (F.max_pool2d, torch.max_pool2d):
            x = env[node.args[0]]
            if any(isinstance(a, torch.fx.Node) for a in list(node.args[1:]) +
                   list(node.kwargs.values())):
                raise ExportError("%s: only constant pooling arguments are supported" % where)
            k = arg(1, "kernel_size", None)
            return self.maxpool(x, k, arg(2, "stride", None) or k, arg(3, "padding", 0),
                                arg(4, "dilation", 1), arg(5, "ceil_mode", False),
                                arg(6, "return_indices", False), where)
        if t in ELEMENTWISE_FUNCS or (node.op == "call_method" and t in ELEMENTWISE_METHODS):
            x = env[node.args[0]]
            extra = list(node.args[1:]) + list(node.kwargs.values())
            if any(isinstance(a, torch.fx.Node) for a in extra):
                raise ExportError("%s: only constant extra arguments are supported" % where)
            if isinstance(x, FloatInput):
                raise ExportError("%s: applied to the raw model input '%s'; quantize it first"
                                  % (where, x.name))
            fn = _Fn(t if node.op == "call_function" else None,
                     t if node.op == "call_method" else None, node.args[1:], node.kwargs)
            p = self.as_pending(x)
            return Pending(p.name, p.shape, p.lo, p.hi, p.mult, p.offset, p.modules + [fn])
        # x.size(0), x.shape[0]: only as the batch size of a view/reshape.
        if node.op == "call_method" and t == "size" and arg(1, "dim", None) is None:
            return _SHAPE  # x.size()[0]
        if node.op == "call_method" and t == "size" and arg(1, "dim", None) == 0:
            return _BATCH
        if t is getattr and node.args[1] == "shape":
            return _SHAPE
        if t is operator.getitem and env.get(node.args[0]) is _SHAPE and node.args[1] == 0:
            return _BATCH
        if (node.op == "call_method" and t in ("view", "reshape")) or t is torch.reshape:
            dims = list(node.args[1:])
            if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                dims = list(dims[0])
            x = env[node.args[0]]
            n = int(np.prod(x.shape)) if not isinstance(x, FloatInput) else -2
            dims = [_BATCH if isinstance(d, torch.fx.Node) and env.get(d) is _BATCH else d
                    for d in dims]
            ok = len(dims) == 2 and ((dims[0] is _BATCH and dims[1] in (-1, n))
                                     or (dims[0] == -1 and dims[1] == n))
            if not ok:
                raise ExportError("%s: only reshaping to (batch, -1), i.e. a flatten, is "
                                  "supported" % where)
            return self.flatten(x, where)
        raise ExportError("unsupported operation %s" % where)

    def walk(self):
        self.model.eval()
        try:
            graph = self.graph = _Tracer().trace(self.model)
        except Exception as e:  # fx gives many exception types
            raise ExportError("cannot trace the model with torch.fx: %s" % e) from e
        env = self.env = {}  # graph node -> its value
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(placeholders) != len(self.calib_f):
            raise ExportError("model takes %d inputs, %d calibration tensors given" % (
                len(placeholders), len(self.calib_f)))
        outputs = None
        for node in graph.nodes:
            m = self.modules.get(node.target) if node.op == "call_module" else None
            try:
                res = self.visit(node, m, placeholders)
            except ExportError:
                raise
            except Exception as e:  # a case the checks above did not foresee
                raise ExportError("%s: cannot be exported (%s: %s)" % (
                    _describe(node, m), type(e).__name__, e)) from e
            if node.op == "output":
                outputs = res
            else:
                env[node] = res
        return outputs

    def visit(self, node, m, placeholders):
        """The value of one graph node (the list of the model's outputs for the
        output node)."""
        env = self.env
        if node.op == "placeholder":
            i = placeholders.index(node)
            users = list(node.users)
            first = self.modules.get(users[0].target) if len(users) == 1 and \
                users[0].op == "call_module" else None
            ok = isinstance(first, QuantNonLinearActLayer) or (
                isinstance(first, (qnn.QuantLinear, qnn.QuantConv2d, qnn.QuantConv1d)) and
                first.input_quant.is_quant_enabled)
            if not ok:
                raise ExportError("model input '%s' must go to exactly one Brevitas "
                                  "quantizer first (QuantIdentity, or a layer's "
                                  "input_quant)" % node.name)
            return FloatInput(i, node.name, self.calib_f[i], self.test_f[i])
        if node.op == "call_module":
            return self.call_module(node, m, [env[a] if isinstance(a, torch.fx.Node) else a
                                              for a in self.module_args(node, m)])
        if node.op in ("call_function", "call_method"):
            return self.call_function(node, env)
        if node.op == "output":
            res = node.args[0]
            outputs = list(res) if isinstance(res, (tuple, list)) else [res]
            return [env[o] for o in outputs]
        raise ExportError("unsupported graph node %s" % _describe(node))

    def make_outputs(self, outs):
        res = []
        for i, v in enumerate(outs):
            where = "model output %d" % i
            if isinstance(v, FloatInput):
                raise ExportError("%s is a raw input" % where)
            if isinstance(v, Pending) and v.modules:
                raise ExportError("%s goes through float modules (%s) after its last integer "
                                  "layer; end the model with a quantizer or the linear layer" % (
                                      where, ", ".join(getattr(m, "name", type(m).__name__) for m in v.modules)))
            if isinstance(v, Quant):
                scale, zp = np.array([v.scale]), np.array([0.0])
            else:
                c = v.shape[0]
                scale = np.broadcast_to(v.mult, (c,)).copy() if v.mult.size == 1 else v.mult
                off = np.broadcast_to(v.offset, (c,)).copy() if v.offset.size == 1 else v.offset
                zp = -off / scale
                if np.all(scale == scale[0]) and np.all(zp == zp[0]):
                    scale, zp = scale[:1], zp[:1]
            cr = self.calib_range(v.name)
            res.append(dict(name="y%d" % i if len(outs) > 1 else "y", index=i, tensor=v.name,
                            shape=list(v.shape), scale=scale, zero_point=zp,
                            range=[v.lo, v.hi], calib_range=list(cr)))
        return res


def dequantize(out_desc, v):
    scale = np.asarray(out_desc["scale"], dtype=np.float64)
    zp = np.asarray(out_desc["zero_point"], dtype=np.float64)
    shp = (1, -1) + (1,) * (v.ndim - 2)
    return scale.reshape(shp) * (v.astype(np.float64) - zp.reshape(shp))


def predict(scores):
    """Class prediction from [S, C] scores (C == 1: logit > 0)."""
    scores = scores.reshape(scores.shape[0], -1)
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0).astype(np.int64)
    return scores.argmax(1)


TASKS = ("classification", "regression")


def _labels(test_labels, task):
    """The test set's labels for task: int64 [S] class labels, or float64 targets
    [S] / [S, K] of a regressor. Refuses an unknown task, class labels that are not
    integers (a regressor's targets passed without task="regression") and targets
    that are not finite."""
    if task not in TASKS:
        raise ExportError("task must be one of %s, not %r" % (", ".join(TASKS), task))
    a = np.asarray(test_labels)
    if task == "regression":
        if a.ndim not in (1, 2) or a.dtype.kind not in "iuf" or not a.size:
            raise ExportError("regression targets must be numbers [S] or [S, outputs], got "
                              "%s %s" % (a.dtype, list(a.shape)))
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ExportError("regression targets: %d values are not finite"
                              % int(np.sum(~np.isfinite(a))))
        return a
    flat = a.reshape(-1)
    if a.dtype.kind == "f" and not np.all(flat == np.rint(flat)):
        first = float(flat[np.flatnonzero(flat != np.rint(flat))[0]])
        raise ExportError("classification labels must be integers, got float values such as %r "
                          "(a regressor's targets: export(..., task=\"regression\"))" % first)
    return a.astype(np.int64).reshape(-1)


def regression_metrics(pred, targets):
    """RMSE and R^2 of pred against targets (both [S, K] or [S]): R^2 per target
    column, averaged (scikit-learn's r2_score, multioutput='uniform_average');
    NaN for a column whose targets are constant."""
    p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    t = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    rmse = float(np.sqrt(np.mean((p - t) ** 2)))
    ss_res = np.sum((p - t) ** 2, axis=0)
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)
    return rmse, float(np.mean(r2))


def _as_list(x):
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return [x]
    return list(x)


def _float_forward(model, inputs):
    with torch.no_grad():
        out = model(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [(o.value if hasattr(o, "value") else o).detach().to(torch.float64).numpy()
            for o in outs]


def _forward_failure(model, graph, inputs, e):
    """The ExportError for Brevitas's own forward pass (eval mode) failing with
    e: it names the graph node that fails (found by running the traced graph
    node by node) and what Brevitas said."""
    where = _failing_node(model, graph, inputs) or "the model"
    hint = ""
    if any(k in str(e) for k in ("Scaling factors are different", "Bit widths are different",
                                 "Zero points are different", "Signs are different")):
        hint = ("; Brevitas adds or concatenates quantized tensors (return_quant_tensor="
                "True) only when their scales, zero points, bit widths and signs agree "
                "(it checks that in eval mode, not in training): give the operands one "
                "shared quantizer, or return_quant_tensor=False (the exporter then "
                "rescales the coarser operand)")
    return ExportError("%s: Brevitas's own forward pass (eval mode) fails here, so there is "
                       "nothing to export or compare with (%s: %s)%s" % (
                           where, type(e).__name__, e, hint))


def _failing_node(model, graph, inputs):
    """The description of the first node of the traced graph whose call fails
    on inputs, or None when the graph runs (or cannot be run)."""
    failed = []

    class _Run(torch.fx.Interpreter):
        def run_node(self, n):
            try:
                return super().run_node(n)
            except Exception:
                failed.append(n)
                raise
    try:
        with torch.no_grad():
            _Run(torch.fx.GraphModule(model, graph)).run(*inputs)
    except Exception:
        pass
    if not failed:
        return None
    n = failed[0]
    return _describe(n, model.get_submodule(n.target) if n.op == "call_module" else None)


# The error bound of an exact export, in quantization steps of the output: the
# sample models stay below 1e-4 steps; a table that does not reproduce its
# quantizer is off by at least one step of an inner tensor, many of the output.
DEFAULT_MAX_ERROR_STEPS = 2.0


def resolve_max_error_steps(max_error_steps, layers):
    """The bound export() applies (None: none): max_error_steps itself, or for
    "auto" DEFAULT_MAX_ERROR_STEPS unless a rescale table was inserted."""
    if isinstance(max_error_steps, str):
        if max_error_steps != "auto":
            raise ExportError("max_error_steps must be a number, None or 'auto', not %r"
                              % max_error_steps)
        if any(l.get("kind") == "rescale" for l in layers):
            return None
        return DEFAULT_MAX_ERROR_STEPS
    if max_error_steps is not None and not max_error_steps >= 0:
        raise ExportError("max_error_steps must be >= 0, not %r" % max_error_steps)
    return max_error_steps


def _regression_checks(deq, flt, targets, tolerance, verbose):
    """The root metrics of a regressor (SCHEMA.md): output 0 dequantized (deq) and
    Brevitas's (flt) against the targets, and against each other. Raises
    ExportError when the targets do not fit output 0 or the integer path's RMSE
    differs from Brevitas's by more than tolerance (relative)."""
    s = len(targets)
    k = int(np.prod(deq.shape[1:]))
    if (targets.ndim == 1 and k != 1) or (targets.ndim == 2 and targets.shape[1] != k):
        raise ExportError("regression targets %s do not fit output 0, %d value(s) per sample"
                          " (targets [S] for one value, [S, %d] for %d)"
                          % (list(targets.shape), k, k, k))
    d, f = deq.reshape(s, k), flt.reshape(s, k)
    int_rmse, int_r2 = regression_metrics(d, targets)
    brev_rmse, brev_r2 = regression_metrics(f, targets)
    m = dict(brevitas_rmse=brev_rmse, int_rmse=int_rmse, brevitas_r2=brev_r2, int_r2=int_r2,
             int_vs_brevitas_rmse=float(np.sqrt(np.mean((d - f) ** 2))),
             int_vs_brevitas_max_error=float(np.max(np.abs(d - f))))
    if verbose:
        print("veil_export: test set %d samples: RMSE Brevitas %.4g, integer path %.4g; R^2 "
              "Brevitas %.4f, integer path %.4f; integer path vs Brevitas: RMSE %.3g, max "
              "error %.3g" % (s, brev_rmse, int_rmse, brev_r2, int_r2,
                              m["int_vs_brevitas_rmse"], m["int_vs_brevitas_max_error"]))
    if not abs(int_rmse - brev_rmse) <= tolerance * brev_rmse:
        raise ExportError("integer path RMSE %.6g differs from Brevitas's %.6g by more than "
                          "%g of it (accuracy_tolerance, relative for a regressor)"
                          % (int_rmse, brev_rmse, tolerance))
    return m


def export(model, calib_inputs, test_inputs, test_labels, path, name, description="",
           n_golden=64, accuracy_tolerance=0.01, verbose=True, range_inputs=None,
           max_error_steps="auto", task="classification"):
    """Exports a Brevitas QAT model to a veil model file.

    model:        torch.nn.Module built from Brevitas layers (see models/README.md).
    calib_inputs: float tensor, or tuple of them (one per forward() argument), [S, ...]:
                  stored as /calibration.
    range_inputs: optional, same form: the inputset the ranges are taken over (the
                  whole training set, as Concrete ML's compile takes it). Every
                  tensor's calib_range is its min/max over range_inputs and
                  calib_inputs together (calib_inputs alone when not given).
    test_inputs:  same for the held-out test set; the golden vectors are its first
                  n_golden samples; test_labels: int labels [S_test] (classification),
                  or float targets [S_test] / [S_test, K] (regression: K = the values of
                  output 0).
    task:         "classification" (default: output 0 holds class scores, argmax =
                  label) or "regression" (output 0 dequantized is the prediction).
                  Not inferred from the labels: float labels of integer values are
                  class labels; classification refuses non-integer labels.
    accuracy_tolerance: classification: the most the integer path's accuracy may
                  differ from Brevitas's (absolute, 0.01 = 1 point); regression: the
                  most its RMSE against the targets may differ from Brevitas's,
                  relative to Brevitas's (0.01 = 1 percent).
    max_error_steps: the most |dequantized integer output - Brevitas output| may be on
                  the test set, in quantization steps of the output (its scale, per
                  channel); None: not checked; "auto" (default): DEFAULT_MAX_ERROR_STEPS
                  when the integer path is the model's own computation, not checked
                  when the exporter inserted an approximate rescale table (it warned
                  then; the accuracy tolerance still applies, as Concrete ML accepts
                  such models).
    Returns a dict report (accuracies and mismatches, or for regression the RMSEs and
    R^2s; bit widths, max_error_steps: the error in steps). Raises ExportError when the model has an unsupported layer, the
    integer path disagrees with Brevitas by more than accuracy_tolerance in
    accuracy or by more than max_error_steps on an output. The file is written
    atomically (a temporary file renamed onto path): an export that fails leaves
    a previous file at path as it was.
    """
    calib = [torch.as_tensor(t, dtype=torch.float32) for t in _as_list(calib_inputs)]
    test = [torch.as_tensor(t, dtype=torch.float32) for t in _as_list(test_inputs)]
    labels = _labels(test_labels, task)
    if len(calib) != len(test):
        raise ExportError("calibration has %d inputs, test set %d" % (len(calib), len(test)))
    if test and len(labels) != test[0].shape[0]:
        raise ExportError("test_labels: %d %s for %d test samples" % (
            len(labels), "targets" if task == "regression" else "labels", test[0].shape[0]))
    def fits(what, xs):
        # every input's per-sample shape the calibration's, so a wrong file is named
        # here rather than by the model's first layer failing on it
        if len(xs) != len(calib) or any(x.shape[1:] != c.shape[1:] for x, c in zip(xs, calib)):
            raise ExportError("%s's inputs %s do not fit the calibration's %s" % (
                what, [list(x.shape[1:]) for x in xs], [list(c.shape[1:]) for c in calib]))

    fits("the test set", test)
    rset = None
    if range_inputs is not None:
        rset = [torch.as_tensor(t, dtype=torch.float32) for t in _as_list(range_inputs)]
        fits("the range set", rset)
    ex = _Exporter(model, calib, test, verbose, rset)
    outs = ex.walk()
    try:
        float_out = _float_forward(model, test)
    except Exception as e:  # Brevitas and torch raise several types
        raise _forward_failure(model, ex.graph, test, e) from e
    if len(float_out) != len(outs):
        raise ExportError("model returned %d outputs, traced %d" % (len(float_out), len(outs)))
    outs = [ex.as_signal(v, "model output %d" % i)
            if not isinstance(v, FloatInput) and len(v.shape) == 3 and v.shape[1] == 1
            and tuple(f.shape[1:]) == (v.shape[0], v.shape[2]) else v
            for i, (v, f) in enumerate(zip(outs, float_out))]
    outputs = ex.make_outputs(outs)
    if not ex.layers:
        raise ExportError("the model has no integer layer")

    # Integer path on the test set (inputs quantized by the model's own input quantizers).
    test_q = {}
    for m, fin in ex.input_quantizers:
        test_q[fin.name] = _quant_call(m, fin.test, "input quantizer")[0]
    tensors = intpath.run(ex.layers, test_q)
    int_out = [tensors[o["tensor"]] for o in outputs]
    deq = [dequantize(o, v) for o, v in zip(outputs, int_out)]
    for i, (d, f) in enumerate(zip(deq, float_out)):
        if d.shape != f.shape:
            raise ExportError("output %d: integer path shape %s, Brevitas %s" % (i, d.shape, f.shape))
    max_err = max(float(np.max(np.abs(d - f))) if d.size else 0.0 for d, f in zip(deq, float_out))
    # The same error in quantization steps of each output (scale per channel).
    err_steps = []
    for o, d, f in zip(outputs, deq, float_out):
        step = np.asarray(o["scale"], dtype=np.float64).reshape((1, -1) + (1,) * (d.ndim - 2))
        err_steps.append(float(np.max(np.abs(d - f) / step)) if d.size else 0.0)
    if task == "regression":
        metrics = _regression_checks(deq[0], float_out[0], labels, accuracy_tolerance, verbose)
    else:
        pred_int, pred_float = predict(deq[0]), predict(float_out[0])
        mismatch = int(np.sum(pred_int != pred_float))
        acc_int = float(np.mean(pred_int == labels))
        acc_float = float(np.mean(pred_float == labels))
        if verbose:
            print("veil_export: test set %d samples: Brevitas accuracy %.4f, integer path %.4f, "
                  "argmax disagreements %d, max |dequantized - float| %.3g (%.3g output "
                  "quantization steps)" % (len(labels), acc_float, acc_int, mismatch, max_err,
                                           max(err_steps)))
        if abs(acc_int - acc_float) > accuracy_tolerance:
            raise ExportError("integer path accuracy %.4f differs from Brevitas's %.4f by more "
                              "than %.4f" % (acc_int, acc_float, accuracy_tolerance))
    bound = resolve_max_error_steps(max_error_steps, ex.layers)
    for o, d, f, e in zip(outputs, deq, float_out, err_steps):
        if bound is not None and not e <= bound:
            raise ExportError(
                "output '%s': the integer path differs from Brevitas's float output by up to "
                "%.4g (max |dequantized - float| on %d test samples), %.3g quantization steps "
                "of the output (scale %s), more than max_error_steps=%g: an approximate "
                "rescale, a table that does not cover its input's range, or a quantizer "
                "the tables do not reproduce (raise max_error_steps, --max-error-steps, "
                "to accept it)" % (o["name"], float(np.max(np.abs(d - f))), len(labels), e,
                                   "%g" % np.min(o["scale"])
                                   if np.min(o["scale"]) == np.max(o["scale"]) else
                                   "%g..%g" % (np.min(o["scale"]), np.max(o["scale"])),
                                   bound))

    g = min(n_golden, len(labels))
    gl = labels[:g]
    golden = {
        "inputs": {k: v[:g] for k, v in test_q.items()},
        "outputs": {o["name"]: v[:g] for o, v in zip(outputs, int_out)},
        "float_outputs": {o["name"]: f[:g] for o, f in zip(outputs, float_out)},
        "labels": gl,
        "attrs": dict(samples=g,
                      max_abs_error=float(max(np.max(np.abs(d[:g] - f[:g]))
                                              for d, f in zip(deq, float_out)))),
    }
    attrs = dict(name=name, producer="veil_export %s (torch %s, brevitas %s)" % (
        __version__, torch.__version__, brevitas.__version__), task=task)
    if task == "regression":
        attrs.update(metrics)
        golden["attrs"].update(
            int_rmse=regression_metrics(deq[0][:g], gl)[0],
            brevitas_rmse=regression_metrics(float_out[0][:g], gl)[0])
    else:
        attrs.update(brevitas_accuracy=acc_float, int_accuracy=acc_int)
        golden["attrs"].update(
            int_accuracy=float(np.mean(pred_int[:g] == gl)),
            brevitas_accuracy=float(np.mean(pred_float[:g] == gl)),
            mismatch_count=int(np.sum(pred_int[:g] != pred_float[:g])))
    attrs.update(test_samples=len(labels), description=description)
    ir = {
        "attrs": attrs,
        "inputs": sorted(ex.inputs, key=lambda d: d["index"]),
        "layers": ex.layers,
        "outputs": outputs,
        "calibration": {fin.name: ex.calib[fin.name][:ex.n_calib]
                        for _, fin in ex.input_quantizers},
        "range_samples": len(ex.calib_f[0]),
        "golden": golden,
    }
    from . import h5io
    bad = h5io.non_ascii_strings(ir)
    if bad:
        raise ExportError("attribute %s is not ASCII: %r (the file's strings are ASCII, "
                          "models/SCHEMA.md)" % bad[0])
    h5io.write(path, ir)
    report = summary(ir)
    if task == "regression":
        report.update(metrics)
    else:
        report.update(brevitas_accuracy=acc_float, int_accuracy=acc_int, mismatch=mismatch)
    report.update(task=task, max_abs_error=max_err, max_error_steps=max(err_steps), path=str(path),
                  outside=outside_counts(ex.calib, ex.n_calib, tensors, ir))
    if verbose:
        print(format_summary(report))
        print(format_outside(report["outside"]))
    return report


def outside_counts(train, n_calib, test, ir):
    """Values (tensor elements, over every input and layer output) that leave the
    range the n_calib stored calibration samples give, and the stored calib_range:
    train[name] holds the calibration rows then the range-set rows, test[name] the
    test set's values."""
    ranges = {t["name"]: t["calib_range"] for t in ir["inputs"]}
    ranges.update({l["output"]: l["calib_range"] for l in ir["layers"]})
    res = dict(train_values=0, test_values=0, train_outside_calib=0, test_outside_calib=0,
               train_outside_range=0, test_outside_range=0)
    for name, (lo, hi) in ranges.items():
        cal = train[name][:n_calib]
        clo, chi = int(cal.min()), int(cal.max())
        for key, v in (("train", train[name][n_calib:]), ("test", test[name])):
            res[key + "_values"] += int(v.size)
            res[key + "_outside_calib"] += int(np.sum((v < clo) | (v > chi)))
            res[key + "_outside_range"] += int(np.sum((v < lo) | (v > hi)))
    return res


def format_outside(o):
    return ("values outside their ranges (every input and layer output): training set %d of "
            "%d outside the %s, %d outside calib_range; test set %d of %d outside the %s, %d "
            "outside calib_range" % (
                o["train_outside_calib"], o["train_values"], "calibration samples' range",
                o["train_outside_range"], o["test_outside_calib"], o["test_values"],
                "calibration samples' range", o["test_outside_range"]))
