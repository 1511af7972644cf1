"""Writing and reading veil model files (schema v1, models/SCHEMA.md).

The in-memory form is a plain dict ("ir"):
  attrs:   root attributes
  inputs:  list of dicts (name, index, shape, scale, zero_point, n_bits, signed, range, calib_range)
  layers:  list of dicts (op, inputs, output, shape, range, calib_range, source, op-specific
           attributes, and the datasets weight / bias / table as int64 numpy arrays)
  outputs: list of dicts (name, index, tensor, shape, scale, zero_point, range, calib_range)
  calibration: input name -> int64 [S, ...]
  range_samples: optional int, the samples calib_range was taken over (attribute of
           /calibration; absent in files of veil_export 1.0: the calibration samples)
  golden: dict(inputs=..., outputs=..., float_outputs=..., labels=..., attrs=...)
"""

import os
import tempfile

import h5py
import numpy as np

FORMAT = "veil-model"
VERSION = 1
DATASET_KEYS = ("weight", "bias", "table")
STRING_KEYS = ("op", "output", "source", "kind", "tensor", "format", "name", "producer",
               "task", "description")
FLOAT_KEYS = ("scale", "brevitas_accuracy", "int_accuracy", "max_abs_error")


def labels_dtype(task):
    """The dtype of /golden/labels: float64 targets for a regressor, else int64
    class labels (files without a task are classifiers)."""
    return np.float64 if task == "regression" else np.int64
INT_ARRAY_KEYS = ("shape", "range", "calib_range", "strides", "padding", "kernel")


def _str(s):
    s = str(s)
    s.encode("ascii")
    return np.bytes_(s.encode("ascii"))


def _strlist(items):
    items = [str(i).encode("ascii") for i in items]
    n = max(1, max(len(i) for i in items))
    return np.array(items, dtype="S%d" % n)


def _set_attrs(obj, d, skip=()):
    for k, v in d.items():
        if k in skip or v is None:
            continue
        if k == "inputs":
            obj.attrs[k] = _strlist(v)
        elif isinstance(v, str):
            obj.attrs[k] = _str(v)
        elif isinstance(v, (bool, np.bool_)):
            obj.attrs[k] = np.int64(int(v))
        elif isinstance(v, (int, np.integer)):
            obj.attrs[k] = np.int64(v)
        elif isinstance(v, (float, np.floating)):
            obj.attrs[k] = np.float64(v)
        else:
            a = np.asarray(v)
            if a.dtype.kind in "iub":
                obj.attrs[k] = a.astype(np.int64)
            elif a.dtype.kind == "f":
                obj.attrs[k] = a.astype(np.float64)
            else:
                raise TypeError("attribute %s: unsupported value %r" % (k, v))


def _dataset(group, name, data):
    data = np.ascontiguousarray(data)
    kw = {}
    if data.size >= 4096:
        kw = dict(chunks=True, compression="gzip", compression_opts=4, shuffle=True)
    return group.create_dataset(name, data=data, **kw)


def _non_ascii(where, d, skip=()):
    bad = []
    for k, v in d.items():
        if k in skip or v is None:
            continue
        items = v if k == "inputs" and isinstance(v, (list, tuple)) else [v]
        for item in items:
            if isinstance(item, bytes):
                ok = all(c < 128 for c in item)
            elif isinstance(item, str):
                ok = item.isascii()
            else:
                continue
            if not ok:
                bad.append(("%s@%s" % (where, k), item))
    return bad


def non_ascii_strings(ir):
    """The string attributes of ir that are not ASCII (schema v1 stores fixed-length
    ASCII strings): a list of (attribute path, value), e.g. ("/@description", ...)."""
    bad = _non_ascii("/", ir["attrs"])
    for inp in ir["inputs"]:
        bad += _non_ascii("/inputs/%s" % inp["name"], inp)
    for layer in ir["layers"]:
        bad += _non_ascii("/layers/%s" % layer["output"], layer, skip=DATASET_KEYS)
    for out in ir["outputs"]:
        bad += _non_ascii("/outputs/%s" % out["name"], out)
    bad += _non_ascii("/golden", ir["golden"]["attrs"])
    return bad


def _fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # not every file system syncs a directory
        pass
    finally:
        os.close(fd)


def write(path, ir):
    """Writes ir to path atomically: every string is checked to be ASCII first
    (ValueError naming the attribute, nothing written), the file is written to a
    temporary file in the same directory, synced, and renamed onto path, so an
    error or an interrupt part-way leaves a previous file at path as it was and
    no temporary file behind."""
    bad = non_ascii_strings(ir)
    if bad:
        raise ValueError("attribute %s is not ASCII: %r (schema v1 strings are ASCII)" % bad[0])
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=os.path.basename(path) + ".tmp")
    try:
        os.close(fd)
        try:  # the mode a new file would have (mkstemp's is 0600), or the old file's
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            umask = os.umask(0o022)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with h5py.File(tmp, "w") as f:
            _write(f, ir)
            f.flush()
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(d)


def _write(f, ir):
    """The groups, attributes and datasets of ir into the open file f."""
    _set_attrs(f, dict(ir["attrs"], format=FORMAT, version=VERSION))
    g = f.create_group("inputs")
    for inp in ir["inputs"]:
        _set_attrs(g.create_group(inp["name"]), inp, skip=("name",))
    g = f.create_group("layers")
    for layer in ir["layers"]:
        lg = g.create_group(layer["output"])
        _set_attrs(lg, layer, skip=DATASET_KEYS)
        for k in DATASET_KEYS:
            if layer.get(k) is not None:
                _dataset(lg, k, np.asarray(layer[k], dtype=np.int64))
    g = f.create_group("outputs")
    for out in ir["outputs"]:
        _set_attrs(g.create_group(out["name"]), out, skip=("name",))
    g = f.create_group("calibration")
    for name, data in ir["calibration"].items():
        _dataset(g, name, np.asarray(data, dtype=np.int64))
        g.attrs["samples"] = np.int64(len(data))
    if ir.get("range_samples") is not None:
        g.attrs["range_samples"] = np.int64(ir["range_samples"])
    gold = ir["golden"]
    g = f.create_group("golden")
    _set_attrs(g, gold["attrs"])
    for sub, dtype in (("inputs", np.int64), ("outputs", np.int64),
                       ("float_outputs", np.float64)):
        sg = g.create_group(sub)
        for name, data in gold[sub].items():
            _dataset(sg, name, np.asarray(data, dtype=dtype))
    g.create_dataset("labels", data=np.asarray(gold["labels"],
                                               dtype=labels_dtype(ir["attrs"].get("task"))))


def _attr(v):
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("ascii")
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        return [x.decode("ascii") for x in v]
    if isinstance(v, np.ndarray):
        return v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _attrs(obj):
    return {k: _attr(v) for k, v in obj.attrs.items()}


def read(path):
    with h5py.File(path, "r") as f:
        ir = {"attrs": _attrs(f)}
        ir["inputs"] = sorted(
            [dict(_attrs(g), name=n) for n, g in f["inputs"].items()], key=lambda d: d["index"])
        layers = []
        for n in sorted(f["layers"].keys()):
            g = f["layers"][n]
            d = _attrs(g)
            for k in DATASET_KEYS:
                if k in g:
                    d[k] = g[k][()]
            d["_group"] = n
            layers.append(d)
        ir["layers"] = layers
        ir["outputs"] = sorted(
            [dict(_attrs(g), name=n) for n, g in f["outputs"].items()], key=lambda d: d["index"])
        ir["calibration"] = {n: d[()] for n, d in f["calibration"].items()}
        if "range_samples" in f["calibration"].attrs:
            ir["range_samples"] = int(f["calibration"].attrs["range_samples"])
        g = f["golden"]
        ir["golden"] = {
            "attrs": _attrs(g),
            "inputs": {n: d[()] for n, d in g["inputs"].items()},
            "outputs": {n: d[()] for n, d in g["outputs"].items()},
            "float_outputs": {n: d[()] for n, d in g["float_outputs"].items()},
            "labels": g["labels"][()],
        }
    return ir
