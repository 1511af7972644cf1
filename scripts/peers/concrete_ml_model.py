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

  3. side-by-side (the Concrete ML venv; issues 10 and 11): measure, then
     `veil run WEIGHTS.h5 --mode cpu` with the matching --rounding-bits, into one
     JSON with both sides' PBS per parameter set, keys, keygen, wall and process
     CPU seconds per sample, load averages and outputs (--concrete-json: take a
     separately started, long measure run instead; veil runs first):
       $VENV/bin/python scripts/peers/concrete_ml_model.py side-by-side \
           --model mlp_digits --weights /tmp/mlp_digits.pt --h5 /tmp/mlp_digits.pt.h5 \
           --rounding 4 --samples 2 --out docs/results/side-by-side-mlp_digits-4.json
     and `table docs/results/side-by-side-*.json` prints the markdown table.
     Models: mlp_digits, cnn_digits, cnn_maxpool_digits, source_bc, target_bc, source14_bc,
     source16_bc, tiny.

The measure JSON holds, per rounding setting: PBS count per sample (Concrete's
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

# model name -> (training script module, network, dataset, training call). The
# network and its hyperparameters stay in the training script: "network" is the
# class name there, or "Class:CONFIGS" for a class built from the script's
# CONFIGS[model] (train_wide.py's source14_bc / source16_bc: its Source network
# with wider bit widths). dataset: "digits" / "digits-image" (8x8 images),
# "bc-K" (breast cancer, the first K parts of PART features: one encrypted
# input each, as train_source_target.py splits them) or "bc-features" (the
# script's FEATURES columns, train_tiny.py). training call: "main()" or
# "main([model])" (train_wide.py trains the names it is given).
SCRIPTS = {
    "mlp_digits": ("train_mlp_digits", "MLP", "digits", "main()"),
    "cnn_digits": ("train_cnn_digits", "CNN", "digits-image", "main()"),
    "cnn_maxpool_digits": ("train_cnn_maxpool_digits", "CNN", "digits-image", "main()"),
    "source_bc": ("train_source_target", "Source", "bc-1", "main()"),
    "target_bc": ("train_source_target", "Target", "bc-3", "main()"),
    "source14_bc": ("train_wide", "Source:CONFIGS", "bc-1", "main([model])"),
    "source16_bc": ("train_wide", "Source:CONFIGS", "bc-1", "main([model])"),
    "tiny": ("train_tiny", "Tiny", "bc-features", "main()"),
}


def seed_part(mod):
    """SEED and PART of the script (train_wide.py takes source_bc's)."""
    base = getattr(mod, "st", mod)
    return getattr(mod, "SEED", base.SEED), getattr(base, "PART", None)


def inputset(mod, name):
    """The training split the script trained on (Concrete ML's inputset): one
    array, or a tuple of arrays for a model of several inputs."""
    data = SCRIPTS[name][2]
    seed, part = seed_part(mod)
    if data.startswith("digits"):
        return mod.sc.digits(seed, image=(data == "digits-image"))[0]
    if data == "bc-features":
        return mod.sc.breast_cancer(seed, mod.FEATURES)[0]
    k = int(data.split("-")[1])
    xtr = mod.sc.breast_cancer(seed)[0]
    parts = tuple(xtr[:, i * part:(i + 1) * part].copy() for i in range(k))
    return parts[0] if k == 1 else parts


def script_for(name):
    """(training script module, a function making a fresh network of the model)."""
    if name not in SCRIPTS:
        sys.exit("concrete_ml_model: --model %s: supported: %s (the others have inputs Concrete "
                 "ML's compile_brevitas_qat_model takes as well, but no entry here yet)"
                 % (name, ", ".join(sorted(SCRIPTS))))
    if MODELS not in sys.path:
        sys.path.insert(0, MODELS)
    mod = importlib.import_module(SCRIPTS[name][0])
    cls, _, configs = SCRIPTS[name][1].partition(":")
    if configs:
        base = getattr(mod, "st", mod)  # train_wide.py builds train_source_target's class
        return mod, lambda: getattr(base, cls)(*getattr(mod, configs)[name])
    return mod, getattr(mod, cls)


def train(mod, name):
    """Runs the training script's main as SCRIPTS says (it exports the .h5)."""
    if SCRIPTS[name][3] == "main([model])":
        mod.main([name])
    else:
        mod.main()


def cmd_weights(a):
    import h5py
    import numpy as np
    import torch

    mod, _ = script_for(a.model)
    import sample_common as sc  # models/ is on the path now
    kept = {}
    real_export = sc.export_model

    def capture(model, xtr, xte, yte, name, *args, **kw):
        # a script may export several models (train_source_target.py: both)
        if name == a.model:
            kept["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return real_export(model, xtr, xte, yte, name, *args, **kw)

    sc.export_model = capture
    mod.sc.export_model = capture
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VEIL_MODELS_OUT"] = tmp
        train(mod, a.model)
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

    mod, make_net = script_for(a.model)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    net = make_net()
    state = torch.load(a.weights, map_location="cpu")
    missing, unexpected = net.load_state_dict(state, strict=False)
    net.eval()
    # the training split the script trained on: Concrete ML's inputset
    xtr = inputset(mod, a.model)
    h5 = a.h5 or os.path.join(MODELS, a.model + ".h5")
    xg = []  # the golden inputs as floats that quantize back to the same integers
    with h5py.File(h5, "r") as f:
        inames = sorted(f["inputs"].keys(), key=lambda k: int(f["inputs"][k].attrs["index"]))
        for iname in inames:
            ia = f["inputs"][iname].attrs
            q = f["golden/inputs"][iname][()]
            scale, zp = float(ia["scale"]), float(ia["zero_point"])
            x = ((q.astype(np.float64) - zp) * scale).astype(np.float32)
            xg.append(x.reshape(-1, 1, 8, 8) if SCRIPTS[a.model][2] == "digits-image" else x)
        gold_f = {k: f["golden/float_outputs"][k][()] for k in f["golden/float_outputs"]}
        labels = f["golden/labels"][()]
    (oname,) = list(gold_f)
    ntrain = len(xtr[0]) if isinstance(xtr, tuple) else len(xtr)
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
        "inputset": "the training split of the model's training script (%d samples)" % ntrain,
        "results": [],
    }
    def save(partial=None):
        # after every stage: a run cut by a timeout keeps what it measured, and
        # "running" says which stage it was in and since when
        res["running"] = partial
        with open(a.out + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(a.out + ".tmp", a.out)

    for r in a.rounding.split(","):
        rb = None if r == "none" else int(r)
        row = {"rounding_threshold_bits": rb}
        save({"rounding_threshold_bits": rb, "stage": "compile", "since_unix": time.time()})
        t, c = time.time(), time.process_time()
        qm = compile_brevitas_qat_model(net, xtr, n_bits={"model_inputs": 4, "model_outputs": 4},
                                        rounding_threshold_bits=rb)
        row["compile_s"] = time.time() - t
        row["compile_cpu_s"] = time.process_time() - c
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
        try:  # PBS per parameter set (Concrete's partitions)
            row["pbs_per_parameter_set"] = {
                str(k): int(v) for k, v in circ.programmable_bootstrap_count_per_parameter.items()}
            row["ks_per_parameter_set"] = {
                str(k): int(v) for k, v in circ.key_switch_count_per_parameter.items()}
        except Exception as e:  # noqa: BLE001
            row["pbs_per_parameter_set"] = "unavailable: %s" % e
        print("rounding %s: compiled in %.1f s, %d PBS per sample" %
              (r, row["compile_s"], row["pbs_per_sample"]), file=sys.stderr, flush=True)
        save({**row, "stage": "keygen", "since_unix": time.time()})
        t, c = time.time(), time.process_time()
        circ.keygen(force=True)
        row["keygen_s"] = time.time() - t
        row["keygen_cpu_s"] = time.process_time() - c
        print("  keygen %.1f s" % row["keygen_s"], file=sys.stderr, flush=True)
        n = min(a.samples, len(xg[0]))
        sim = qm.forward(*[x[:n] for x in xg], fhe="simulate")
        lat, cpu = [], []
        outs = []
        for i in range(n):
            save({**row, "stage": "sample %d of %d" % (i + 1, n), "since_unix": time.time(),
                  "fhe_s_done": lat, "fhe_cpu_s_done": cpu})
            t, c = time.time(), time.process_time()
            outs.append(qm.forward(*[x[i:i + 1] for x in xg], fhe="execute"))
            lat.append(time.time() - t)
            cpu.append(time.process_time() - c)
            print("  sample %d: %.1f s" % (i, lat[-1]), file=sys.stderr, flush=True)
        fhe = np.concatenate(outs, 0)
        ref = gold_f[oname][:n]
        tol = 1e-6 * max(1.0, float(np.abs(ref).max()))
        row.update({
            "samples": n,
            "fhe_s_per_sample": float(np.mean(lat)),
            "fhe_s": lat,
            # process CPU time (all threads): the machine's 2 cores are shared
            "fhe_cpu_s_per_sample": float(np.mean(cpu)),
            "fhe_cpu_s": cpu,
            "fhe_equals_simulate": int(np.sum(np.isclose(fhe, sim, rtol=0, atol=1e-9))),
            "values": int(fhe.size),
            "fhe_equals_veil_golden": int(np.sum(np.abs(fhe - ref) <= tol)),
            "argmax_equals_veil_golden": int(np.sum(fhe.argmax(1) == ref.argmax(1))),
            "argmax_equals_label": int(np.sum(fhe.argmax(1) == labels[:n])),
            "max_abs_diff_to_veil_golden": float(np.abs(fhe - ref).max()),
            "fhe_outputs": fhe.tolist(),
        })
        res["results"].append(row)
        save()
        print(json.dumps(row), file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_child(cmd, timeout, log):
    """Runs cmd (stdout and stderr to log), at most timeout seconds (SIGINT,
    then SIGKILL 60 s later). Returns (rc or None when cut, wall s, CPU s of
    the process and its threads: user + sys, from RUSAGE_CHILDREN)."""
    import signal
    import subprocess
    c0, t0 = children_cpu(), time.time()
    with open(log, "w") as lf:
        p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            rc = None
    return rc, time.time() - t0, children_cpu() - c0


def veil_report(text):
    """The parts of `veil compile`'s report the comparison needs."""
    import re
    rep = {"partitions": [], "keys_mib": None}
    part = re.compile(r"^\s+(\d+)\s+(\d+)\s+([0-9.e+-]+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+"
                      r"(\d+)\s+(\d+)\s+(-?[0-9.]+)\s*$")
    for line in text.splitlines():
        m = part.match(line)
        if m:
            rep["partitions"].append({"partition": int(m[1]), "precision": int(m[2]),
                                      "norm2": float(m[3]), "params": m[4], "n": int(m[5]),
                                      "k": int(m[6]), "N": int(m[7]), "l": int(m[8]),
                                      "pbs_per_sample": int(m[9]), "log2_pfail": float(m[10])})
        m = re.match(r"^\s+total\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", line)
        if m:
            rep["keys_mib"] = {"bsk": float(m[1]), "ksk": float(m[2]), "file": float(m[3]),
                               "memory": float(m[4])}
        m = re.match(r"^PBS per sample (\d+)", line)
        if m:
            rep["pbs_per_sample"] = int(m[1])
    return rep


def veil_run_parse(text):
    import re
    pats = {
        "pbs_per_sample": (r"(\d+) PBS per sample", int),
        "wall_s_per_sample": (r"^cpu: ([0-9.]+) s per sample", float),
        "keygen_s": (r"^cpu: .* keygen ([0-9.]+) s", float),
        "cpu_s_per_sample": (r"process cpu time \(all threads\): ([0-9.]+) s per sample", float),
        "keygen_cpu_s": (r"process cpu time .* keygen ([0-9.]+) s", float),
        "agreement_with_simulate": (r"agreement with simulate: (.*)$", str),
        "golden_vectors": (r"golden vectors \(unrounded integer path\): (.*)$", str),
        "accuracy": (r"^accuracy \(cpu.*?\): ([0-9.]+)", float),
    }
    out = {}
    for k, (pat, f) in pats.items():
        m = re.search(pat, text, re.M)
        if m:
            out[k] = f(m[1])
    return out


def git_head():
    """The commit of the tree this script is in (the veil build's source when
    --veil is the tree's build/host/veil), '+dirty' if it has changes."""
    import subprocess
    root = os.path.join(HERE, "..", "..")
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def cmd_side(a):
    """Concrete ML, then veil, on the same weights and samples: one JSON."""
    import subprocess
    import numpy as np
    import h5py
    h5 = os.path.abspath(a.h5)
    r = a.rounding
    res = {"model": a.model, "rounding": r, "samples": a.samples,
           "veil_model": os.path.basename(h5),
           "weights": os.path.basename(a.weights),
           "machine": a.machine,
           "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "loadavg_start": loadavg(), "nproc": os.cpu_count(),
           "veil_binary": os.path.relpath(os.path.abspath(a.veil), os.path.join(HERE, "..", "..")),
           "veil_commit": git_head(),
           "cpu_time_note": "cpu_s: user + sys of the process and all its threads; the "
                            "machine's cores are shared with other sessions, so CPU seconds "
                            "are the fairer figure, wall seconds depend on the load"}
    tmp = tempfile.mkdtemp(prefix="veil-side-")
    out_npy = os.path.join(tmp, "veil.npy")
    def concrete_side():
            # -- Concrete ML
        cml = {"options": {"n_bits": {"model_inputs": 4, "model_outputs": 4},
                           "rounding_threshold_bits": None if r == "none" else
                           {"n_bits": int(r), "method": "EXACT"}}}
        if a.concrete_json:
            cml["measured_separately"] = a.concrete_json
            with open(a.concrete_json) as f:
                cj = json.load(f)
            rc = 0 if cj.get("results") else None
        else:
            cjp = os.path.join(tmp, "concrete.json")
            cmd = [a.python, os.path.abspath(__file__), "measure", "--model", a.model,
                   "--weights", a.weights, "--h5", h5, "--rounding", r,
                   "--samples", str(a.samples), "--machine", a.machine, "--out", cjp]
            print("side-by-side: Concrete ML (timeout %d s)..." % a.concrete_timeout, file=sys.stderr,
                  flush=True)
            rc, wall, cpu = run_child(cmd, a.concrete_timeout, os.path.join(tmp, "concrete.log"))
            cml.update({"process_wall_s": wall, "process_cpu_s": cpu, "exit": rc})
            cj = {}
            if os.path.exists(cjp):
                with open(cjp) as f:
                    cj = json.load(f)
            if rc != 0:
                with open(os.path.join(tmp, "concrete.log")) as f:
                    cml["log_tail"] = f.read()[-3000:]
        for k in ("concrete_ml", "concrete_python", "torch", "inputset"):
            if k in cj:
                cml[k] = cj[k]
        if cj.get("results"):
            cml.update(cj["results"][0])
            cml["finished"] = True
        else:
            cml["finished"] = False
            run = cj.get("running") or {}
            cml.update({k: v for k, v in run.items() if k != "since_unix"})
            if "since_unix" in run:
                cml["stage_unfinished"] = run["stage"]
                # when read: right after the timeout stopped it, or (--concrete-json)
                # while the separate run is still going, or after it was stopped
                cml["stage_elapsed_s_when_read"] = time.time() - run["since_unix"]
                cml["stage_started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(run["since_unix"]))
                cml["read_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        res["concrete_ml"] = cml
        res["loadavg_between"] = loadavg()
        return cml

    def veil_side():
        # -- veil
        vopts = ["--rounding-bits", r] + (a.veil_opts.split() if a.veil_opts else [])
        comp = subprocess.run([a.veil, "compile", h5] + vopts, capture_output=True, text=True)
        if comp.returncode:
            sys.exit("side-by-side: veil compile failed: %s" % comp.stderr)
        vv = {"options": vopts, "compile_report": veil_report(comp.stdout + comp.stderr)}
        log = os.path.join(tmp, "veil.log")
        print("side-by-side: veil...", file=sys.stderr, flush=True)
        rc, wall, cpu = run_child([a.veil, "run", h5, "--mode", "cpu", "--limit", str(a.samples),
                                   "--output", out_npy] + vopts, a.veil_timeout, log)
        with open(log) as f:
            text = f.read()
        vv.update({"process_wall_s": wall, "process_cpu_s": cpu, "exit": rc, "stdout": text[-4000:]})
        vv.update(veil_run_parse(text))
        res["veil"] = vv
        res["loadavg_end"] = loadavg()
        return vv, rc

    if a.concrete_json:
        # a Concrete ML run started separately (a long one, in the background):
        # veil runs first, then that run's JSON is read, finished or not
        vv, rc = veil_side()
        cml = concrete_side()
    else:
        cml = concrete_side()
        vv, rc = veil_side()
    # -- outputs compared
    cmp = {}
    if rc == 0 and cml.get("fhe_outputs"):
        v = np.load(out_npy).reshape(len(cml["fhe_outputs"]), -1)
        c = np.asarray(cml["fhe_outputs"]).reshape(len(v), -1)
        with h5py.File(h5, "r") as f:
            (oname,) = list(f["golden/float_outputs"])
            bf = f["golden/float_outputs"][oname][()][:len(v)].reshape(len(v), -1)
        # equal up to float32 rounding of the dequantized values (the measure
        # step's tolerance against the golden vectors)
        tol = 1e-6 * max(1.0, float(np.abs(c).max()))
        cmp = {"samples": len(v), "values": int(v.size),
               "argmax_veil_equals_concrete": int(np.sum(v.argmax(1) == c.argmax(1))),
               "values_equal": int(np.sum(np.abs(v - c) <= tol)),
               "values_equal_tolerance": tol,
               "max_abs_diff": float(np.abs(v - c).max()),
               "veil_dequantized": v.tolist(), "concrete_ml_dequantized": c.tolist(),
               "max_abs_diff_to_brevitas_float": {"veil": float(np.abs(v - bf).max()),
                                                  "concrete_ml": float(np.abs(c - bf).max())},
               "semantics": "both sides return the last layer's accumulator, dequantized; "
                            "at the exact defaults they compute the same integers (tiny: "
                            "every value equal); with rounding each compiler clears the low "
                            "bits of each accumulator where its own range analysis puts them, "
                            "so the values differ and the argmax is what is comparable"}
    res["outputs_compared"] = cmp
    if cml.get("fhe_cpu_s_per_sample") and vv.get("cpu_s_per_sample"):
        res["concrete_over_veil_cpu_s_per_sample"] = cml["fhe_cpu_s_per_sample"] / vv["cpu_s_per_sample"]
    if cml.get("fhe_s_per_sample") and vv.get("wall_s_per_sample"):
        res["concrete_over_veil_wall_s_per_sample"] = cml["fhe_s_per_sample"] / vv["wall_s_per_sample"]
    res["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(a.out + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(a.out + ".tmp", a.out)
    shutil.rmtree(tmp, ignore_errors=True)
    brief = {k: res.get(k) for k in ("concrete_over_veil_cpu_s_per_sample",
                                     "concrete_over_veil_wall_s_per_sample")}
    print(json.dumps(brief), file=sys.stderr)


def short_set(k):
    """'BootstrapKeyParam(polynomial_size=512, glwe_dimension=4, input_lwe_dimension=621,
    level=1, ...)' -> 'N=512 k=4 n=621 l=1'."""
    import re
    f = dict(re.findall(r"(\w+)=([0-9.]+)", k))
    if "polynomial_size" not in f:
        return k
    return "N=%s k=%s n=%s l=%s" % (f["polynomial_size"], f["glwe_dimension"],
                                     f["input_lwe_dimension"], f["level"])


def cmd_table(a):
    """A markdown table of side-by-side JSONs (docs/results/concrete-ml.md)."""
    print("| model | rounding | side | PBS / sample (per set) | keys MB | keygen s (CPU) | "
          "CPU s / sample | wall s / sample | CML / veil, CPU (wall) | argmax equal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in a.json:
        with open(path) as f:
            d = json.load(f)
        c, v, cmp = d["concrete_ml"], d["veil"], d.get("outputs_compared", {})
        r = "none (exact)" if d["rounding"] == "none" else "%s bits" % d["rounding"]
        extra = v.get("options", [])[2:]  # veil's options after --rounding-bits R
        if extra:
            r += " (veil %s)" % " ".join(extra)
        if isinstance(c.get("pbs_per_parameter_set"), dict):
            sets = ", ".join("%d at %s" % (n, short_set(k))
                             for k, n in sorted(c["pbs_per_parameter_set"].items(),
                                                key=lambda kv: -kv[1]))
        else:
            sets = "?"
        st = c.get("statistics") if isinstance(c.get("statistics"), dict) else {}
        keys = (st.get("size_of_bootstrap_keys", 0) + st.get("size_of_keyswitch_keys", 0)) / 1e6
        # Concrete ML's first sample carries a one-time start (about 2 s of CPU
        # here: keys loaded into its runtime); with several samples the mean of
        # the others is its steady state, and the ratio against it is given too
        rest = c.get("fhe_cpu_s", [])[1:]
        if c.get("finished"):
            cpu = "%.2f" % c["fhe_cpu_s_per_sample"]
            if rest:
                cpu += " (%.3f after the first)" % (sum(rest) / len(rest))
            wall = "%.1f" % c["fhe_s_per_sample"]
        else:
            cpu = "not finished"
            wall = "over %.0f (%s)" % (c.get("stage_elapsed_s_when_read", 0),
                                       c.get("stage_unfinished", "?"))
        kg = ("%.1f (%.1f)" % (c["keygen_s"], c["keygen_cpu_s"])) if "keygen_s" in c else "-"
        ratio = ""
        if d.get("concrete_over_veil_cpu_s_per_sample"):
            ratio = "%.2f (%.2f)" % (d["concrete_over_veil_cpu_s_per_sample"],
                                     d.get("concrete_over_veil_wall_s_per_sample", float("nan")))
            if rest and v.get("cpu_s_per_sample"):
                ratio += "; %.2f after the first" % (sum(rest) / len(rest) / v["cpu_s_per_sample"])
        elif (not c.get("finished") and v.get("wall_s_per_sample")
              and c.get("stage_unfinished", "").startswith("sample")):
            ratio = "over %.1f by wall" % (c.get("stage_elapsed_s_when_read", 0)
                                           / v["wall_s_per_sample"])
        am = ("%d/%d" % (cmp["argmax_veil_equals_concrete"], cmp["samples"])) if cmp else "-"
        print("| %s | %s | Concrete ML | %s (%s) | %.0f | %s | %s | %s | %s | %s |"
              % (d["model"], r, c.get("pbs_per_sample", "?"), sets, keys, kg, cpu, wall, ratio, am))
        rep = v.get("compile_report", {})
        vsets = ", ".join("%d at N=%d k=%d n=%d l=%d" % (q["pbs_per_sample"], q["N"], q["k"],
                                                        q["n"], q["l"])
                          for q in sorted(rep.get("partitions", []),
                                          key=lambda q: -q["pbs_per_sample"]))
        km = rep.get("keys_mib") or {}
        vkeys = (km.get("bsk", 0) + km.get("ksk", 0)) * 1.048576
        print("| | | veil | %s (%s) | %.0f | %s (%s) | %s | %s | | |"
              % (v.get("pbs_per_sample", "?"), vsets, vkeys, v.get("keygen_s", "-"),
                 v.get("keygen_cpu_s", "-"), v.get("cpu_s_per_sample", "-"),
                 v.get("wall_s_per_sample", "-")))


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
    b = sub.add_parser("side-by-side", help="Concrete ML then veil (veil run --mode cpu), same "
                       "weights and samples, one JSON")
    b.add_argument("--model", required=True)
    b.add_argument("--weights", required=True, help="step 1's state dict")
    b.add_argument("--h5", required=True, help="the veil model of these weights (step 1's .h5)")
    b.add_argument("--rounding", required=True, help="4, 6, ... (exact rounding in both) or none")
    b.add_argument("--samples", type=int, default=1)
    b.add_argument("--veil", default=os.path.join(HERE, "..", "..", "build", "host", "veil"))
    b.add_argument("--veil-opts", default="", help="more veil compile options")
    b.add_argument("--python", default=sys.executable,
                   help="the Concrete ML venv's interpreter (default: this one)")
    b.add_argument("--concrete-timeout", type=int, default=3600)
    b.add_argument("--veil-timeout", type=int, default=3600)
    b.add_argument("--concrete-json", help="take Concrete ML's side from this measure JSON "
                   "(a run started separately, e.g. in the background) instead of running it")
    b.add_argument("--machine", default="AMD EPYC, 2 shared cores (loaded)")
    b.add_argument("--out", required=True)
    t = sub.add_parser("table", help="markdown table of side-by-side JSONs")
    t.add_argument("json", nargs="+")
    a = ap.parse_args()
    {"weights": cmd_weights, "measure": cmd_measure, "side-by-side": cmd_side,
     "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
