#!/usr/bin/env python3
"""Key size against predicted cost: every sample model compiled (exact, the
default) under several --key-budget-mb values; per budget the partitions, the
prepared evaluation-key MiB, PBS per sample and the predicted cost per sample
(measured table, engine/src/cost_table.inc: ms on one cpu core and on cuda)
that `veil compile` prints. Compile only. Writes JSON (docs/results/).

usage: bench/key_budget.py --veil build/host/veil --out FILE.json [--budgets 0,2048,...]
"""
import argparse
import json
import os
import platform
import re
import subprocess

MODELS = ["tiny", "mlp_digits", "cnn_digits", "source_bc", "target_bc", "source14_bc",
          "source16_bc"]


def compile_report(veil, model, budget, rounding_bits):
    cmd = [veil, "compile", model, "--key-budget-mb", str(budget)]
    if rounding_bits:
        cmd += ["--rounding-bits", str(rounding_bits)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1]}
    out = r.stdout
    cost = re.search(r"predicted cost per sample (\S+) ms on one cpu core .*?, (\S+) ms on cuda",
                     out)
    keys = re.search(r"prepared evaluation keys (\d+) MiB", out)
    parts = re.search(r"^partitions (\d+)", out, re.M)
    sets = re.findall(r"^  \d+\s+\d+\s+\S+\s+(\S+)\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)\s+\S+$", out,
                      re.M)
    return {"partitions": int(parts.group(1)), "key_mib": int(keys.group(1)),
            "pbs_per_sample": int(re.search(r"^PBS per sample (\d+)", out, re.M).group(1)),
            "cpu_ms_per_sample": float(cost.group(1)), "cuda_ms_per_sample": float(cost.group(2)),
            "sets": [{"set": s, "pbs_per_sample": int(n)} for s, n in sets]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--veil", required=True)
    ap.add_argument("--models", default="models")
    ap.add_argument("--budgets", default="0,4096,2048,1536,1024,768,512,384,256")
    ap.add_argument("--rounding-bits", default="none,6")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    budgets = [int(b) for b in a.budgets.split(",")]
    rows = []
    for name in MODELS:
        for rb in a.rounding_bits.split(","):
            rbits = None if rb == "none" else int(rb)
            row = {"model": name, "rounding_bits": rb, "budgets": []}
            for b in budgets:
                rep = compile_report(a.veil, os.path.join(a.models, name + ".h5"), b, rbits)
                rep["budget_mib"] = b
                row["budgets"].append(rep)
                print(name, rb, b, rep.get("partitions"), rep.get("key_mib"),
                      rep.get("cpu_ms_per_sample"), rep.get("error", ""), flush=True)
            rows.append(row)
    doc = {"what": "partitions, prepared evaluation-key MiB and predicted cost per sample "
                   "(measured cost table) against --key-budget-mb, every sample model, compile "
                   "only",
           "machine": "AMD EPYC, 2 shared cores (compile only: no timing)",
           "host": platform.node(), "veil": a.veil, "rows": rows}
    json.dump(doc, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
