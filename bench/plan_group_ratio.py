#!/usr/bin/env python3
"""plan_group_ratio.py - one plan against a plan group of two on the CPU, in one run.

old: one plan with 2 threads (VEIL_THREADS=2, no --devices): every node's
     KS-PBS is cut between the 2 threads, which meet after every node.
new: two plans of 1 thread each (VEIL_THREADS=2 --devices 0,0: the group
     divides the threads), each running its half of the batch alone.

Both run bench_model --modes cpu on the same model, options, batch and
samples; the runs alternate (old first on even passes, new first on odd ones,
to cancel drift) and the ratio old/new of bench_model's wall latency per sample
is taken pass by pass (> 1: the group is faster). The machine is shared, so
only ratios from one run mean anything. Every run's decryptions must agree
with simulate (agreement_with_simulate 1), or the script fails.

usage: bench/plan_group_ratio.py [--build build] [--passes 3] [--out FILE.json]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

CASES = [
    # name, model, compile options, batch, samples
    ("tiny exact, batch 2", "models/tiny.h5", [], 2, 64),
    ("tiny exact, batch 16", "models/tiny.h5", [], 16, 64),
    ("mlp_digits --rounding-bits 4, batch 2", "models/mlp_digits.h5", ["--rounding-bits", "4"], 2, 4),
    ("mlp_digits --rounding-bits 4, batch 16", "models/mlp_digits.h5", ["--rounding-bits", "4"], 16, 16),
]
CONFIGS = {"old": [], "new": ["--devices", "0,0"]}


def run(build, model, opts, batch, samples, extra, tmp):
    out = os.path.join(tmp, "r.json")
    cmd = [os.path.join(build, "bench", "bench_model"), "--models", model, "--enc-models", model,
           "--modes", "cpu", "--batches", str(batch), "--samples", str(samples), "--out", out]
    cmd += opts + extra
    env = dict(os.environ, VEIL_THREADS="2")
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(out) as f:
        res = [r for r in json.load(f)["results"] if r["mode"] == "cpu"]
    if len(res) != 1:
        sys.exit("plan_group_ratio: %s: expected one cpu result, got %d" % (" ".join(cmd), len(res)))
    r = res[0]
    if r["agreement_with_simulate"] != 1:
        sys.exit("plan_group_ratio: %s: agreement with simulate %s" % (" ".join(cmd), r["agreement_with_simulate"]))
    shown = [c for c in cmd[1:] if c != out and c != "--out"]
    return r, " ".join([os.path.join(build, "bench", "bench_model")] + shown)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--out", default="docs/results/amd-cpu-plan-group.json")
    ap.add_argument("--cases", default="", help="comma-separated indices into CASES (default all)")
    a = ap.parse_args()
    cases = [CASES[int(i)] for i in a.cases.split(",")] if a.cases else CASES
    runs = []
    with tempfile.TemporaryDirectory(prefix="plan_group_ratio_") as tmp:
        for name, model, opts, batch, samples in cases:
            lat = {"old": [], "new": []}
            commands = {}
            plans = {}
            for p in range(a.passes):
                order = ["old", "new"] if p % 2 == 0 else ["new", "old"]
                for c in order:
                    r, cmd = run(a.build, model, opts, batch, samples, CONFIGS[c], tmp)
                    lat[c].append(r["latency_s_per_sample"])
                    commands[c] = "VEIL_THREADS=2 " + cmd
                    plans[c] = r["plans"]
                    print("%-40s pass %d %s: %.4f s/sample (%d plan(s))" % (name, p, c, lat[c][-1], r["plans"]),
                          file=sys.stderr, flush=True)
            ratios = [o / n for o, n in zip(lat["old"], lat["new"])]
            runs.append({
                "name": name, "batch": batch, "samples": samples,
                "command_old": commands["old"], "command_new": commands["new"],
                "plans_old": plans["old"], "plans_new": plans["new"],
                "latency_s_per_sample_old": lat["old"], "latency_s_per_sample_new": lat["new"],
                "ratio_old_over_new": [round(x, 4) for x in ratios],
                "median_ratio_old_over_new": round(statistics.median(ratios), 4),
            })
    doc = {
        "benchmark": "plan group of two cpu plans (1 thread each) against one plan of 2 threads "
                     "(issue 12 item 3, branch plans)",
        "machine": "AMD EPYC (Zen 5, AVX-512), 2 cores shared with other sessions (loaded): "
                   "only the ratios, measured alternately in one run, mean anything",
        "date": datetime.date.today().isoformat(),
        "method": __doc__.strip().split("\n\n", 1)[1],
        "load_average_end": os.getloadavg(),
        "runs": runs,
    }
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    for r in runs:
        print("%-40s old/new %s median %.3f" % (r["name"], r["ratio_old_over_new"], r["median_ratio_old_over_new"]))


if __name__ == "__main__":
    main()
