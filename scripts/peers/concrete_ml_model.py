#!/usr/bin/env python3
"""The peer, whole model: a veil sample model compiled and run by Concrete ML
1.9 on this machine, for issue 10's bar (veil's exact default per sample
against Concrete ML's default on the same model and machine). Optional, outside
CI; not a dependency of veil.

Two steps, because the sample .h5 files keep integer weights and tables
(BatchNorm folded in), not the float Brevitas weights Concrete ML compiles:

  1. weights (the exporter's venv, torch 2.6 / brevitas 0.13.4, the versions
     that wrote the .h5): rerun the model's training script (models/train_*.py,
     same seed, single-threaded, deterministic), keep the trained network's
     state dict, and check that its export equals the stored .h5 goldens
     (value for value). It also keeps that export as OUT.h5: when the stored
     .h5 was trained elsewhere (another CPU's float rounding), step 2 and veil
     both use OUT.h5, so the two compilers see the same weights:
       ~/.cache/veil/venv/bin/python scripts/peers/concrete_ml_model.py weights \
           --model mlp_digits --out /tmp/mlp_digits.pt
  2. measure (the Concrete ML venv, scripts/peers/setup-concrete.sh ml):
     load the state dict into the same Brevitas class of the training script,
     compile_brevitas_qat_model(model, x_train, n_bits={"model_inputs": 4,
     "model_outputs": 4}, rounding_threshold_bits=R) for R in --rounding
     (none = Concrete ML's default, exact), keygen, run --samples golden
     inputs with fhe="execute", and compare with fhe="simulate" and with
     veil's golden vectors (dequantized: Concrete ML returns floats):
       VENV=$(bash scripts/peers/setup-concrete.sh ml)
       $VENV/bin/python scripts/peers/concrete_ml_model.py measure \
           --model mlp_digits --weights /tmp/mlp_digits.pt --h5 /tmp/mlp_digits.pt.h5 \
           --rounding 4,none \
           --samples 2 --out docs/results/concrete-ml-mlp_digits.json

The JSON holds, per rounding setting: PBS count per sample (Concrete's
circuit statistics), widest TLU input bits, compile and keygen seconds, FHE
seconds per sample (measured, one sample at a time), and agreement of the
FHE outputs with Concrete ML's simulation and with veil's golden outputs.
"""

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.normpath(os.path.join(HERE, "..", "..", "models"))

# model name -> (training script module, network class)
SCRIPTS = {
    "mlp_digits": ("train_mlp_digits", "MLP"),
    "cnn_digits": ("train_cnn_digits", "CNN"),
}


def script_for(name):
    if name not in SCRIPTS:
        sys.exit("concrete_ml_model: --model %s: supported: %s (the others have inputs Concrete "
                 "ML's compile_brevitas_qat_model takes as well, but no entry here yet)"
                 % (name, ", ".join(sorted(SCRIPTS))))
    if MODELS not in sys.path:
        sys.path.insert(0, MODELS)
    mod = importlib.import_module(SCRIPTS[name][0])
    return mod, getattr(mod, SCRIPTS[name][1])


def cmd_weights(a):
    import h5py
    import numpy as np
    import torch

    mod, _ = script_for(a.model)
    import sample_common as sc  # models/ is on the path now
    kept = {}
    real_export = sc.export_model

    def capture(model, *args, **kw):
        kept["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return real_export(model, *args, **kw)

    sc.export_model = capture
    mod.sc.export_model = capture
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VEIL_MODELS_OUT"] = tmp
        mod.main()
        fresh = os.path.join(tmp, a.model + ".h5")
        with h5py.File(fresh, "r") as f, h5py.File(os.path.join(MODELS, a.model + ".h5"), "r") as g:
            same = all(np.array_equal(f["golden/outputs"][k][()], g["golden/outputs"][k][()])
                       for k in g["golden/outputs"])
        shutil.copy(fresh, a.out + ".h5")
    torch.save(kept["state"], a.out)
    print(json.dumps({"weights": a.out, "model": a.out + ".h5",
                      "retrained_equals_stored_goldens": bool(same)}))
    if not same:
        print("concrete_ml_model: note: the retrained model's goldens differ from models/%s.h5 "
              "(trained on another CPU or library build); %s.h5 is the export of these very "
              "weights: give it to step 2 (--h5) and to veil for a like-for-like comparison"
              % (a.model, a.out), file=sys.stderr)


def cmd_measure(a):
    import h5py
    import numpy as np
    import torch
    from concrete.ml.torch.compile import compile_brevitas_qat_model
    import concrete.ml
    import concrete.fhe

    mod, cls = script_for(a.model)
    sc = mod.sc
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    net = cls()
    state = torch.load(a.weights, map_location="cpu")
    missing, unexpected = net.load_state_dict(state, strict=False)
    net.eval()
    # the training split the script trained on: Concrete ML's inputset
    xtr, xte, ytr, yte = sc.digits(mod.SEED, image=(a.model == "cnn_digits"))
    h5 = a.h5 or os.path.join(MODELS, a.model + ".h5")
    with h5py.File(h5, "r") as f:
        (iname,) = list(f["inputs"].keys())
        ia = f["inputs"][iname].attrs
        q = f["golden/inputs"][iname][()]
        gold_f = {k: f["golden/float_outputs"][k][()] for k in f["golden/float_outputs"]}
        labels = f["golden/labels"][()]
        scale, zp = float(ia["scale"]), float(ia["zero_point"])
    (oname,) = list(gold_f)
    # the golden inputs as floats that quantize back to the same integers
    xg = ((q.astype(np.float64) - zp) * scale).astype(np.float32)
    if a.model == "cnn_digits":
        xg = xg.reshape(-1, 1, 8, 8)
    res = {
        "model": a.model,
        "machine": a.machine,
        "concrete_ml": concrete.ml.__version__,
        "concrete_python": concrete.fhe.__version__ if hasattr(concrete.fhe, "__version__") else "2.10.0",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "veil_model": os.path.relpath(h5) if a.h5 is None else os.path.basename(h5),
        "state_dict_missing_keys": list(missing),
        "state_dict_unexpected_keys": list(unexpected),
        "n_bits": {"model_inputs": 4, "model_outputs": 4},
        "inputset": "the training split of the model's training script (%d samples)" % len(xtr),
        "results": [],
    }
    for r in a.rounding.split(","):
        rb = None if r == "none" else int(r)
        row = {"rounding_threshold_bits": rb}
        t = time.time()
        qm = compile_brevitas_qat_model(net, xtr, n_bits={"model_inputs": 4, "model_outputs": 4},
                                        rounding_threshold_bits=rb)
        row["compile_s"] = time.time() - t
        circ = qm.fhe_circuit
        row["pbs_per_sample"] = int(circ.programmable_bootstrap_count)
        try:
            row["max_tlu_bits"] = int(circ.graph.maximum_integer_bit_width())
        except Exception:  # noqa: BLE001
            pass
        try:
            row["statistics"] = {k: (v if isinstance(v, (int, float, str)) else str(v))
                                 for k, v in circ.statistics.items()
                                 if k in ("programmable_bootstrap_count", "key_switch_count",
                                          "packing_key_switch_count", "clear_addition_count",
                                          "encrypted_addition_count", "size_of_secret_keys",
                                          "size_of_bootstrap_keys", "size_of_keyswitch_keys",
                                          "p_error", "global_p_error", "complexity")}
        except Exception as e:  # noqa: BLE001
            row["statistics"] = "unavailable: %s" % e
        print("rounding %s: compiled in %.1f s, %d PBS per sample" %
              (r, row["compile_s"], row["pbs_per_sample"]), file=sys.stderr, flush=True)
        t = time.time()
        circ.keygen(force=True)
        row["keygen_s"] = time.time() - t
        print("  keygen %.1f s" % row["keygen_s"], file=sys.stderr, flush=True)
        n = min(a.samples, len(xg))
        sim = qm.forward(xg[:n], fhe="simulate")
        lat = []
        outs = []
        for i in range(n):
            t = time.time()
            outs.append(qm.forward(xg[i:i + 1], fhe="execute"))
            lat.append(time.time() - t)
            print("  sample %d: %.1f s" % (i, lat[-1]), file=sys.stderr, flush=True)
        fhe = np.concatenate(outs, 0)
        ref = gold_f[oname][:n]
        tol = 1e-6 * max(1.0, float(np.abs(ref).max()))
        row.update({
            "samples": n,
            "fhe_s_per_sample": float(np.mean(lat)),
            "fhe_s": lat,
            "fhe_equals_simulate": int(np.sum(np.isclose(fhe, sim, rtol=0, atol=1e-9))),
            "values": int(fhe.size),
            "fhe_equals_veil_golden": int(np.sum(np.abs(fhe - ref) <= tol)),
            "argmax_equals_veil_golden": int(np.sum(fhe.argmax(1) == ref.argmax(1))),
            "argmax_equals_label": int(np.sum(fhe.argmax(1) == labels[:n])),
            "max_abs_diff_to_veil_golden": float(np.abs(fhe - ref).max()),
        })
        res["results"].append(row)
        with open(a.out, "w") as f:  # after every setting: a cut run keeps what it measured
            json.dump(res, f, indent=1)
        print(json.dumps(row), file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("weights", help="retrain with the training script, save the state dict")
    w.add_argument("--model", required=True)
    w.add_argument("--out", required=True)
    m = sub.add_parser("measure", help="compile with Concrete ML, keygen, run, compare")
    m.add_argument("--model", required=True)
    m.add_argument("--weights", required=True)
    m.add_argument("--h5", help="the veil model of these weights (default models/MODEL.h5; "
                   "step 1 writes WEIGHTS.h5)")
    m.add_argument("--rounding", default="4,none",
                   help="comma list of rounding_threshold_bits, none = Concrete ML's default")
    m.add_argument("--samples", type=int, default=2)
    m.add_argument("--machine", default="AMD EPYC, 2 shared cores (loaded)")
    m.add_argument("--out", required=True)
    a = ap.parse_args()
    (cmd_weights if a.cmd == "weights" else cmd_measure)(a)


if __name__ == "__main__":
    main()
