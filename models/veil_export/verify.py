"""Checks a veil model file against schema v1 (models/SCHEMA.md) and recomputes
its golden vectors on the integer path."""

import re

import h5py
import numpy as np

from . import h5io, intpath

NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
LAYER_RE = re.compile(r"^(\d{4})_(%s)$" % "|".join(intpath.OPS))


class _Checker:
    def __init__(self):
        self.errors = []

    def err(self, path, msg):
        self.errors.append("%s: %s" % (path, msg))

    def attr(self, obj, key, kind, shape=None):
        """kind: 'str', 'strlist', 'i64', 'f64'. Returns the value or None."""
        path = "%s@%s" % (obj.name, key)
        if key not in obj.attrs:
            self.err(path, "missing attribute")
            return None
        aid = obj.attrs.get_id(key)
        tid = aid.get_type()
        sp = aid.shape
        if kind in ("str", "strlist"):
            if not isinstance(tid, h5py.h5t.TypeStringID) or tid.is_variable_str():
                self.err(path, "expected a fixed-length string")
                return None
            if tid.get_cset() != h5py.h5t.CSET_ASCII:
                self.err(path, "expected an ASCII string")
            if kind == "str" and sp != ():
                self.err(path, "expected a scalar string, shape %s" % (sp,))
            if kind == "strlist" and len(sp) != 1:
                self.err(path, "expected a 1-D string list, shape %s" % (sp,))
            return h5io._attr(obj.attrs[key])
        want = {"i64": np.dtype("<i8"), "f64": np.dtype("<f8")}[kind]
        if obj.attrs[key].dtype != want if hasattr(obj.attrs[key], "dtype") else True:
            self.err(path, "expected dtype %s, got %s" % (
                want, getattr(obj.attrs[key], "dtype", type(obj.attrs[key]))))
            return None
        if shape is not None and sp != shape:
            self.err(path, "expected shape %s, got %s" % (shape, sp))
            return None
        return h5io._attr(obj.attrs[key])

    def dataset(self, obj, key, dtype, shape=None):
        path = "%s/%s" % (obj.name, key)
        if key not in obj or not isinstance(obj[key], h5py.Dataset):
            self.err(path, "missing dataset")
            return None
        d = obj[key]
        if d.dtype != np.dtype(dtype):
            self.err(path, "expected dtype %s, got %s" % (np.dtype(dtype), d.dtype))
            return None
        if shape is not None and tuple(d.shape) != tuple(shape):
            self.err(path, "expected shape %s, got %s" % (tuple(shape), d.shape))
            return None
        return d[()]


# The float64 root attributes of each task (models/SCHEMA.md).
TASK_METRICS = {
    "classification": ("brevitas_accuracy", "int_accuracy"),
    "regression": ("brevitas_rmse", "int_rmse", "brevitas_r2", "int_r2", "int_vs_brevitas_rmse",
                   "int_vs_brevitas_max_error"),
}


def validate(path):
    """Returns the list of schema violations of the file (empty when it conforms)."""
    c = _Checker()
    with h5py.File(path, "r") as f:
        if c.attr(f, "format", "str") != "veil-model":
            c.err("/@format", "not 'veil-model'")
        if c.attr(f, "version", "i64", ()) != 1:
            c.err("/@version", "not 1")
        for k in ("name", "producer", "task", "description"):
            c.attr(f, k, "str")
        task = h5io._attr(f.attrs.get("task", b"classification"))
        if task not in TASK_METRICS:
            c.err("/@task", "%r is neither %s" % (task, " nor ".join(TASK_METRICS)))
        for k in TASK_METRICS.get(task, ()):
            c.attr(f, k, "f64", ())
        c.attr(f, "test_samples", "i64", ())
        for g in ("inputs", "layers", "outputs", "calibration", "golden"):
            if g not in f:
                c.err("/" + g, "missing group")
        if c.errors:
            return c.errors
        shapes = {}
        ranges = {}
        for name, g in f["inputs"].items():
            if not NAME_RE.match(name):
                c.err(g.name, "bad tensor name")
            shp = c.attr(g, "shape", "i64")
            c.attr(g, "index", "i64", ())
            c.attr(g, "scale", "f64", ())
            c.attr(g, "zero_point", "i64", ())
            c.attr(g, "n_bits", "i64", ())
            c.attr(g, "signed", "i64", ())
            r = c.attr(g, "range", "i64", (2,))
            c.attr(g, "calib_range", "i64", (2,))
            if shp is not None:
                shapes[name] = tuple(int(s) for s in shp)
            if r is not None:
                ranges[name] = r
        names = sorted(f["layers"].keys())
        for i, name in enumerate(names):
            g = f["layers"][name]
            m = LAYER_RE.match(name)
            if not m or int(m.group(1)) != i:
                c.err(g.name, "layer group name must be %04d_<op>" % i)
                continue
            op = c.attr(g, "op", "str")
            if op != m.group(2):
                c.err(g.name + "@op", "is %r, group name says %r" % (op, m.group(2)))
                continue
            ins = c.attr(g, "inputs", "strlist")
            if c.attr(g, "output", "str") != name:
                c.err(g.name + "@output", "must equal the group name")
            shp = c.attr(g, "shape", "i64")
            r = c.attr(g, "range", "i64", (2,))
            cr = c.attr(g, "calib_range", "i64", (2,))
            c.attr(g, "source", "str")
            if ins is None or shp is None or r is None:
                continue
            for n in ins:
                if n not in shapes:
                    c.err(g.name + "@inputs", "%r is not an input or an earlier layer" % n)
            if any(n not in shapes for n in ins):
                continue
            shp = tuple(int(s) for s in shp)
            xs = [shapes[n] for n in ins]
            nin = {"add": 2, "sub": 2, "mul": 2, "concat": None}.get(op, 1)
            if (nin and len(ins) != nin) or (op == "concat" and len(ins) < 2):
                c.err(g.name + "@inputs", "wrong number of inputs for %s" % op)
                continue
            if r[0] > r[1] or (cr is not None and (cr[0] < r[0] or cr[1] > r[1])):
                c.err(g.name + "@range", "calib_range %s not inside range %s" % (cr, r))
            x = xs[0]
            if op == "linear":
                if len(x) != 1:
                    c.err(g.name, "linear input must be 1-D, got %s" % (x,))
                c.dataset(g, "weight", "<i8", (shp[0], x[0]))
                c.attr(g, "weight_bits", "i64", ())
            elif op == "conv2d":
                w = c.dataset(g, "weight", "<i8")
                st = c.attr(g, "strides", "i64", (2,))
                pd = c.attr(g, "padding", "i64", (2,))
                if w is not None and st is not None and pd is not None and len(x) == 3:
                    oh = (x[1] + 2 * pd[0] - w.shape[2]) // st[0] + 1
                    ow = (x[2] + 2 * pd[1] - w.shape[3]) // st[1] + 1
                    if w.ndim != 4 or w.shape[1] != x[0] or shp != (w.shape[0], oh, ow):
                        c.err(g.name, "conv2d shapes do not fit: input %s weight %s output %s" % (
                            x, w.shape, shp))
            elif op == "avgpool2d":
                k = c.attr(g, "kernel", "i64", (2,))
                st = c.attr(g, "strides", "i64", (2,))
                pd = c.attr(g, "padding", "i64", (2,))
                if k is not None and st is not None and pd is not None:
                    want = (x[0], (x[1] + 2 * pd[0] - k[0]) // st[0] + 1,
                            (x[2] + 2 * pd[1] - k[1]) // st[1] + 1)
                    if shp != want:
                        c.err(g.name + "@shape", "expected %s" % (want,))
            elif op == "maxpool2d":
                k = c.attr(g, "kernel", "i64", (2,))
                st = c.attr(g, "strides", "i64", (2,))
                pd = [int(v) for v in g.attrs["padding"]] if "padding" in g.attrs else [0, 0]
                if k is not None and (2 * pd[0] > k[0] or 2 * pd[1] > k[1]):
                    c.err(g.name + "@padding", "more than half the kernel")
                if k is not None and st is not None and len(x) == 3:
                    want = (x[0], (x[1] + 2 * pd[0] - k[0]) // st[0] + 1,
                            (x[2] + 2 * pd[1] - k[1]) // st[1] + 1)
                    if shp != want:
                        c.err(g.name + "@shape", "expected %s" % (want,))
                if ins[0] in ranges and (r[0] < ranges[ins[0]][0] or r[1] > ranges[ins[0]][1]):
                    c.err(g.name + "@range", "must lie within the input's range %s"
                          % (list(ranges[ins[0]]),))
            elif op in ("add", "sub", "mul"):
                if xs[0] != xs[1] or shp != xs[0]:
                    c.err(g.name, "%s shapes %s -> %s" % (op, xs, shp))
            elif op == "concat":
                if c.attr(g, "axis", "i64", ()) != 0:
                    c.err(g.name + "@axis", "must be 0")
                if shp != (sum(s[0] for s in xs),) + xs[0][1:]:
                    c.err(g.name, "concat shapes %s -> %s" % (xs, shp))
            elif op == "reshape":
                if int(np.prod(shp)) != int(np.prod(x)):
                    c.err(g.name + "@shape", "%s has not the %d elements of its input" % (
                        list(shp), int(np.prod(x))))
            elif op == "flatten":
                if shp != (int(np.prod(x)),):
                    c.err(g.name + "@shape", "expected [%d]" % int(np.prod(x)))
            elif op == "lut":
                lo = c.attr(g, "in_min", "i64", ())
                hi = c.attr(g, "in_max", "i64", ())
                pc = c.attr(g, "per_channel", "i64", ())
                c.attr(g, "covers_worst_case", "i64", ())
                c.attr(g, "scale", "f64", ())
                c.attr(g, "zero_point", "i64", ())
                c.attr(g, "n_bits", "i64", ())
                c.attr(g, "signed", "i64", ())
                c.attr(g, "kind", "str")
                if lo is not None and hi is not None and pc is not None:
                    t = hi - lo + 1
                    tab = c.dataset(g, "table", "<i8", (x[0], t) if pc else (t,))
                    if tab is not None and (tab.min() != r[0] or tab.max() != r[1]):
                        c.err(g.name + "@range", "must be the table's [min, max]")
                if shp != x:
                    c.err(g.name + "@shape", "lut keeps its input's shape")
            shapes[name] = shp
            ranges[name] = r
        out_values = {}  # output index -> its values per sample (a regressor's K)
        for name, g in f["outputs"].items():
            t = c.attr(g, "tensor", "str")
            idx = c.attr(g, "index", "i64", ())
            shp = c.attr(g, "shape", "i64")
            if idx is not None and shp is not None:
                out_values[int(idx)] = int(np.prod(shp))
            sc = c.attr(g, "scale", "f64")
            zp = c.attr(g, "zero_point", "f64")
            c.attr(g, "range", "i64", (2,))
            c.attr(g, "calib_range", "i64", (2,))
            if t not in shapes:
                c.err(g.name + "@tensor", "unknown tensor %r" % t)
            elif shp is not None and tuple(shp) != shapes[t]:
                c.err(g.name + "@shape", "differs from tensor %s" % t)
            if sc is not None and zp is not None:
                if sc.shape != zp.shape or sc.ndim != 1 or sc.shape[0] not in (1, shapes.get(t, (0,))[0]):
                    c.err(g.name + "@scale", "must be [1] or [C], same as zero_point")
        for name in f["inputs"]:
            d = c.dataset(f["calibration"], name, "<i8")
            if d is not None:
                if d.shape[1:] != shapes[name]:
                    c.err("/calibration/" + name, "shape %s does not fit %s" % (d.shape, shapes[name]))
                elif d.size and (d.min() < ranges[name][0] or d.max() > ranges[name][1]):
                    c.err("/calibration/" + name, "values outside the input range")
        gg = f["golden"]
        s = c.attr(gg, "samples", "i64", ())
        if task == "regression":
            for k in ("int_rmse", "brevitas_rmse", "max_abs_error"):
                c.attr(gg, k, "f64", ())
            lab = c.dataset(gg, "labels", "<f8")
            k = out_values.get(0)
            if lab is not None and s is not None and (lab.ndim not in (1, 2) or len(lab) != s):
                c.err("/golden/labels", "expected [%d] or [%d, outputs], got %s"
                      % (s, s, list(lab.shape)))
            elif lab is not None and k is not None and (
                    (lab.ndim == 1 and k != 1) or (lab.ndim == 2 and lab.shape[1] != k)):
                c.err("/golden/labels", "%s targets for output 0 of %d value(s) a sample: "
                      "expected %s" % (list(lab.shape), k,
                                       "[S] or [S, 1]" if k == 1 else "[S, %d]" % k))
            if lab is not None and not np.all(np.isfinite(lab)):
                c.err("/golden/labels", "%d targets are not finite"
                      % int(np.sum(~np.isfinite(lab))))
        else:
            for k in ("int_accuracy", "brevitas_accuracy", "max_abs_error"):
                c.attr(gg, k, "f64", ())
            c.attr(gg, "mismatch_count", "i64", ())
            c.dataset(gg, "labels", "<i8", (s,) if s is not None else None)
        for name in f["inputs"]:
            c.dataset(gg["inputs"], name, "<i8", (s,) + shapes[name] if s is not None else None)
        for name, g in f["outputs"].items():
            t = h5io._attr(g.attrs.get("tensor", b""))
            if t in shapes and s is not None:
                c.dataset(gg["outputs"], name, "<i8", (s,) + shapes[t])
                c.dataset(gg["float_outputs"], name, "<f8", (s,) + shapes[t])
    return c.errors


def check_golden(path):
    """Recomputes the golden outputs from the file's golden inputs on the integer
    path; returns (ok, message)."""
    ir = h5io.read(path)
    gold = ir["golden"]
    tensors = intpath.run(ir["layers"], gold["inputs"])
    bad = []
    for out in ir["outputs"]:
        got = tensors[out["tensor"]]
        want = gold["outputs"][out["name"]]
        if got.shape != want.shape or not np.array_equal(got, want):
            n = int(np.sum(got != want)) if got.shape == want.shape else -1
            bad.append("%s: %d values differ" % (out["name"], n))
    if bad:
        return False, "; ".join(bad)
    return True, "%d golden samples reproduced exactly" % len(gold["labels"])
