"""Command line of the veil exporter: python -m veil_export {export,info,check} ..."""

import argparse
import os
import sys

import numpy as np


def _load_inputs(path, what):
    data = np.load(path)
    keys = sorted(k for k in data.files if k.startswith("input"))
    if not keys:
        raise SystemExit("veil_export: %s %s has no arrays named input0, input1, ..." % (what, path))
    keys.sort(key=lambda k: int(k[5:]) if k[5:].isdigit() else 1 << 30)
    return [data[k] for k in keys], data


def _build_model(spec, weights):
    """spec: 'path/to/file.py:factory' or 'package.module:factory'; factory() returns
    the (untrained or trained) model; weights: optional torch.save(model.state_dict())."""
    import importlib
    import importlib.util
    import torch
    if ":" not in spec:
        raise SystemExit("veil_export: model must be FILE.py:FACTORY or MODULE:FACTORY, got %r" % spec)
    src, attr = spec.rsplit(":", 1)
    try:
        if src.endswith(".py"):
            sp = importlib.util.spec_from_file_location(
                os.path.splitext(os.path.basename(src))[0], src)
            mod = importlib.util.module_from_spec(sp)
            sys.path.insert(0, os.path.dirname(os.path.abspath(src)))
            sp.loader.exec_module(mod)
        else:
            mod = importlib.import_module(src)
        model = getattr(mod, attr)()
    except Exception as e:
        raise SystemExit("veil_export: cannot build the model from %s: %s" % (spec, e))
    if weights:
        try:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except Exception as e:
            raise SystemExit("veil_export: cannot load weights %s: %s" % (weights, e))
    return model.eval()


def _error_steps(v):
    """--max-error-steps: a number >= 0, 'auto' or 'none'."""
    if v in ("auto", "none"):
        return None if v == "none" else v
    try:
        f = float(v)
    except ValueError:
        f = float("nan")
    if not f >= 0 or f == float("inf"):
        raise argparse.ArgumentTypeError("expected a number >= 0, 'auto' or 'none', not %r" % v)
    return f


def cmd_export(a):
    import warnings
    warnings.filterwarnings("ignore", message="Named tensors")
    from .export import export, ExportError
    model = _build_model(a.model, a.weights)
    calib, _ = _load_inputs(a.calib, "calibration file")
    test, tdata = _load_inputs(a.test, "test file")
    rset = _load_inputs(a.range_set, "range-set file")[0] if a.range_set else None
    if "labels" not in tdata.files:
        raise SystemExit("veil_export: test file %s has no 'labels' array" % a.test)
    try:
        name = a.name or os.path.splitext(os.path.basename(a.output))[0] or "model"
        export(model, calib, test, tdata["labels"], a.output, name=name,
               description=a.description, n_golden=a.golden,
               accuracy_tolerance=a.tolerance, verbose=not a.quiet, range_inputs=rset,
               max_error_steps=a.max_error_steps, task=a.task)
    except ExportError as e:
        print("veil_export: error: %s" % e, file=sys.stderr)
        return 1
    return 0


def cmd_info(a):
    from . import h5io
    from .report import summary, format_summary
    ir = h5io.read(a.file)
    at = ir["attrs"]
    print("%s: %s v%s, %s" % (a.file, at.get("name"), at.get("version"), at.get("producer")))
    if at.get("task") == "regression":
        print("regression on %d test samples: RMSE Brevitas %.6g, integer path %.6g; R^2 "
              "Brevitas %.4f, integer path %.4f; integer path vs Brevitas: RMSE %.3g, max "
              "error %.3g" % (at.get("test_samples", 0), at["brevitas_rmse"], at["int_rmse"],
                              at["brevitas_r2"], at["int_r2"], at["int_vs_brevitas_rmse"],
                              at["int_vs_brevitas_max_error"]))
    else:
        print("accuracy: Brevitas %.4f, integer path %.4f on %d test samples" % (
            at.get("brevitas_accuracy", float("nan")), at.get("int_accuracy", float("nan")),
            at.get("test_samples", 0)))
    for inp in ir["inputs"]:
        print("input %s shape %s scale %g %d-bit %s" % (inp["name"], [int(s) for s in inp["shape"]],
              inp["scale"], inp["n_bits"], "signed" if inp["signed"] else "unsigned"))
    for l in ir["layers"]:
        extra = ""
        if l["op"] == "lut":
            extra = " table %s over [%d, %d]%s" % (list(np.shape(l["table"])), l["in_min"],
                                                   l["in_max"], "" if l["covers_worst_case"]
                                                   else " (calibration range)")
        print("%s %s <- %s%s  [%s]" % (l["output"], [int(s) for s in l["shape"]], ",".join(l["inputs"]),
                                       extra, l["source"]))
    for o in ir["outputs"]:
        print("output %s = %s shape %s" % (o["name"], o["tensor"], [int(s) for s in o["shape"]]))
    print(format_summary(summary(ir)))
    return 0


def cmd_check(a):
    from .verify import validate, check_golden
    errors = validate(a.file)
    for e in errors:
        print("veil_export: %s" % e, file=sys.stderr)
    if errors:
        return 1
    ok, msg = check_golden(a.file)
    print("%s: schema v1 ok; %s" % (a.file, msg) if ok else "%s: golden mismatch: %s" % (a.file, msg))
    return 0 if ok else 1


def main(argv=None):
    # the name the user typed: the installed command, or the module run with -m
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    p = argparse.ArgumentParser(
        prog=prog if prog == "veil-export" else "python -m veil_export",
        description="Export Brevitas quantization-aware models to veil model files "
                    "(HDF5 schema v1, see models/SCHEMA.md), inspect and check them.")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="export a Brevitas model built by a Python factory")
    e.add_argument("model", help="FILE.py:FACTORY or MODULE:FACTORY, a function (or class) "
                                 "returning the torch.nn.Module")
    e.add_argument("--weights", help="state dict saved with torch.save(model.state_dict())")
    e.add_argument("calib", help=".npz with float arrays input0, input1, ... [S, ...]")
    e.add_argument("test", help=".npz with input0, ... and labels: int labels [S], or for "
                                "--task regression float targets [S] or [S, outputs]")
    e.add_argument("--task", choices=("classification", "regression"), default="classification",
                   help="classification (default: output 0 holds class scores) or regression "
                        "(output 0 is the prediction)")
    e.add_argument("-o", "--output", required=True, help="output .h5")
    e.add_argument("--range-set", help=".npz like calib: the inputs every calib_range is taken "
                                       "over (with calib), e.g. the whole training set")
    e.add_argument("--name", help="model name, the file's name attribute (default: the output "
                                  "file's name without its extension, as the sample models)")
    e.add_argument("--description", default="")
    e.add_argument("--golden", type=int, default=64, help="golden samples (default 64)")
    e.add_argument("--tolerance", type=float, default=0.01,
                   help="max accuracy difference integer path vs Brevitas (default 0.01); "
                        "regression: max RMSE difference relative to Brevitas's RMSE")
    e.add_argument("--max-error-steps", type=_error_steps, default="auto",
                   help="max |dequantized integer output - Brevitas output| on the test set, "
                        "in quantization steps of the output; 'none': not checked; 'auto' "
                        "(default): 2, or not checked when an approximate rescale table "
                        "was inserted (the accuracy --tolerance still applies)")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_export)
    i = sub.add_parser("info", help="print the layers, ranges and bit widths of a model file")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
    c = sub.add_parser("check", help="validate a model file against schema v1 and recompute "
                                     "its golden outputs")
    c.add_argument("file")
    c.set_defaults(func=cmd_check)
    a = p.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
