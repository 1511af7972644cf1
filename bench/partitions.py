#!/usr/bin/env python3
"""PBS per partition and modelled cost per sample of every sample model, two
veil builds side by side (e.g. main's and this branch's), at the default
(exact), --rounding-bits 6 and 4; the new build also with --partitions 1 (its
one-set program: per-value encoding alone). Writes JSON (docs/results/).

Cost = the "predicted cost per sample" `veil compile` prints: builds before
the measured cost table (veil/cost.h) printed MAC counts (blind rotation
n (k+1) l (N log2 N + (k+1) N) plus keyswitch D l_ks (n+1), D = partition
0's k*N; for a one-set report of such a build it is computed here from the
printed set with that formula), later builds milliseconds on one cpu core:
compare costs within one build only.

usage: bench/partitions.py --old OLD/veil --new NEW/veil --out FILE.json
"""
import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys

MODELS = ["tiny", "mlp_digits", "cnn_digits", "source_bc", "target_bc", "source14_bc",
          "source16_bc"]
ROUNDING = [None, 6, 4]


def set_cost(n, k, N, l, ks_l, D):
    return n * (k + 1) * l * (N * math.log2(N) + (k + 1) * N) + D * ks_l * (n + 1)


def compile_report(veil, model, rb, extra):
    cmd = [veil, "compile", model] + (["--rounding-bits", str(rb)] if rb else []) + extra
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}
    out = r.stdout
    res = {}
    m = re.search(r"parameters (\S+): n=(\d+) k=(\d+) N=(\d+) pbs (\d+)/(\d+) ks (\d+)/(\d+)", out)
    pbs = int(re.search(r"PBS per sample (\d+)", out).group(1))
    res["pbs_per_sample"] = pbs
    parts = re.findall(r"^  (\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)$",
                       out, re.M)
    if parts:
        res["partitions"] = [{"precision": int(p[1]), "norm2": float(p[2]), "set": p[3],
                              "n": int(p[4]), "k": int(p[5]), "N": int(p[6]), "l": int(p[7]),
                              "pbs_per_sample": int(p[8]), "log2_p_fail": float(p[9])}
                             for p in parts]
        res["cost_per_sample"] = float(re.search(r"predicted cost per sample (\S+)", out).group(1))
    else:
        n, k, N, l, ks_l = (int(m.group(i)) for i in (2, 3, 4, 6, 8))
        res["partitions"] = [{"set": m.group(1), "n": n, "k": k, "N": N, "l": l,
                              "pbs_per_sample": pbs}]
        res["cost_per_sample"] = pbs * set_cost(n, k, N, l, ks_l, k * N)
    pf = re.search(r"p_fail per PBS <= 2\^(\S+) \(target .*\); per sample 2\^(\S+)", out)
    res["log2_p_fail_pbs"] = float(pf.group(1))
    res["log2_p_fail_sample"] = float(pf.group(2))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--models", default="models")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = []
    for name in MODELS:
        path = os.path.join(a.models, name + ".h5")
        for rb in ROUNDING:
            row = {"model": name, "rounding_bits": rb or "none",
                   "old": compile_report(a.old, path, rb, []),
                   "new_one_set": compile_report(a.new, path, rb, ["--partitions", "1"]),
                   "new": compile_report(a.new, path, rb, [])}
            c = [row[k].get("cost_per_sample") for k in ("old", "new_one_set", "new")]
            if all(c):
                row["cost_ratio_old_over_new"] = c[0] / c[2]
                row["cost_ratio_old_over_one_set"] = c[0] / c[1]
            rows.append(row)
            print(f"{name:12s} rb {str(rb or 'none'):4s} "
                  + " | ".join(f"{k}: {row[k].get('pbs_per_sample', '-')} PBS, "
                               f"{len(row[k].get('partitions', []))} part, "
                               f"cost {row[k].get('cost_per_sample', float('nan')):.3g}"
                               for k in ("old", "new_one_set", "new")),
                  file=sys.stderr)
    doc = {"what": "PBS per partition and modelled cost per sample (model units, compile_params.c "
                   "pbs_cost), main vs per-value encoding (--partitions 1) vs partitions",
           "machine": "AMD EPYC, 2 shared cores (compile only: no timing)",
           "host": platform.node(), "old": a.old, "new": a.new, "rows": rows}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
