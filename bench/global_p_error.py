#!/usr/bin/env python3
"""--global-p-error against the uniform --p-error: every sample model compiled
(exact, the default, and --rounding-bits 6) with the default per-PBS p_error
2^-40, then with --global-p-error P, P the union bound that program spends
(the report's "sum over reads", printed to 6 digits, raised by 1e-5 of
itself for that rounding). Per row: the predicted cost per sample on one cpu
core of each, the spend, partitions and compile seconds. Compile only.

usage: bench/global_p_error.py --veil build/host/veil [--models models] [--out FILE.json]
"""
import argparse
import json
import os
import re
import subprocess
import time

MODELS = ["tiny", "mlp_digits", "cnn_digits", "cnn_maxpool_digits", "source_bc", "target_bc",
          "source14_bc", "source16_bc"]


def compile_report(veil, model, extra):
    t = time.time()
    r = subprocess.run([veil, "compile", model] + extra, capture_output=True, text=True,
                       timeout=3600)
    secs = time.time() - t
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1], "seconds": secs}
    out = r.stdout
    cost = re.search(r"predicted cost per sample (\S+) ms on one cpu core", out)
    pf = re.search(r"per sample 2\^(\S+) \(sum over reads (\S+)\)", out)
    parts = re.search(r"^partitions (\d+)", out, re.M)
    return {"cpu_ms_per_sample": float(cost.group(1)), "log2_p_fail_sample": float(pf.group(1)),
            "spent": float(pf.group(2)), "partitions": int(parts.group(1)), "seconds": secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--veil", required=True)
    ap.add_argument("--models", default="models")
    ap.add_argument("--names", default=",".join(MODELS))
    ap.add_argument("--rounding-bits", default="none,6")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = []
    print("| model | rounding | uniform 2^-40: ms | spends | budget P: ms | spends | gain |")
    print("|---|---|---|---|---|---|---|")
    for name in a.names.split(","):
        for rb in a.rounding_bits.split(","):
            extra = [] if rb == "none" else ["--rounding-bits", rb]
            path = os.path.join(a.models, name + ".h5")
            u = compile_report(a.veil, path, extra)
            row = {"model": name, "rounding_bits": rb, "uniform": u}
            if "error" not in u:
                budget = u["spent"] * (1 + 1e-5)
                g = compile_report(a.veil, path, extra + ["--global-p-error", "%.9g" % budget])
                row.update({"budget": budget, "global": g})
                if "error" not in g:
                    print("| %s | %s | %.5g | %.3g | %.5g | %.3g | %.1f%% |" %
                          (name, rb, u["cpu_ms_per_sample"], u["spent"], g["cpu_ms_per_sample"],
                           g["spent"], 100 * (1 - g["cpu_ms_per_sample"] / u["cpu_ms_per_sample"])),
                          flush=True)
                else:
                    print("| %s | %s | %s |" % (name, rb, g["error"]), flush=True)
            rows.append(row)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
