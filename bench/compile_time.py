#!/usr/bin/env python3
"""Compile time of two veil builds, in one run: `veil compile` on every sample
model under a set of option lists, the two builds alternated case by case
(old first, then new, then old again... on --repeat rounds), wall time per
case (the median of the rounds) and whether the two builds print the same
report (sha256 of stdout). For changes that must keep every program (the
search's pruning): "same" is the check, the ratio the gain. Writes JSON
(docs/results/).

usage: bench/compile_time.py --old OLD/veil --new NEW/veil --out FILE.json
       [--old-rev REV] [--new-rev REV] [--repeat R] [--models a,b,...]
       [--options 'OPTS;OPTS;...']
(--options: the option sets to time, separated by ';', an empty one the
defaults: e.g. ';--global-p-error 1e-5'; default: the list below)
(the revs are recorded as given: what each binary was built from)
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time

MODELS = ["tiny", "source_bc", "source14_bc", "source16_bc", "target_bc", "mlp_digits",
          "cnn_digits"]
OPTIONS = [
    [],
    ["--rounding-bits", "6"],
    ["--rounding-bits", "4"],
    ["--rounding-bits", "8"],
    ["--rounding-bits", "5", "--rounding", "approximate"],
    ["--p-error", "1e-6"],
    ["--max-poly-size", "4096"],
    ["--key-budget-mb", "512"],
    ["--partitions", "3"],
    ["--bounds", "worst-case"],
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(veil, model, opts):
    t0 = time.perf_counter()
    r = subprocess.run([veil, "compile", model] + opts, capture_output=True, timeout=1800)
    dt = time.perf_counter() - t0
    digest = hashlib.sha256(r.stdout + b"rc=%d" % r.returncode).hexdigest()
    return dt, digest, r.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--old-rev", help="what the old binary was built from (recorded)")
    ap.add_argument("--new-rev", help="what the new binary was built from (recorded)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--options", help="option sets separated by ';' (an empty one: the defaults)")
    args = ap.parse_args()
    option_sets = OPTIONS if args.options is None else [o.split() for o in args.options.split(";")]
    cases = []
    load0 = os.getloadavg()[0]
    for m in args.models.split(","):
        path = os.path.join(ROOT, "models", m + ".h5")
        for opts in option_sets:
            t = {"old": [], "new": []}
            h = {}
            rc = {}
            for _ in range(args.repeat):
                for side in ("old", "new"):
                    dt, digest, code = run(getattr(args, side), path, opts)
                    t[side].append(dt)
                    h[side] = digest
                    rc[side] = code
            c = {"model": m, "options": " ".join(opts) or "(default)",
                 "old_s": statistics.median(t["old"]), "new_s": statistics.median(t["new"]),
                 "old_runs_s": t["old"], "new_runs_s": t["new"],
                 "same_report": h["old"] == h["new"], "rc": rc}
            c["old_over_new"] = c["old_s"] / c["new_s"] if c["new_s"] > 0 else None
            cases.append(c)
            print("%-12s %-40s %7.2f %7.2f %5.2fx %s" % (m, c["options"], c["old_s"], c["new_s"],
                                                          c["old_over_new"] or 0,
                                                          "same" if c["same_report"] else "DIFF"),
                  flush=True)
    old_total = sum(c["old_s"] for c in cases)
    new_total = sum(c["new_s"] for c in cases)
    doc = {
        "benchmark": "compile_time",
        "machine": platform.processor() or platform.machine(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                     if l.startswith("model name")), None) if os.path.exists("/proc/cpuinfo")
        else None,
        "old": {"veil": args.old, "rev": args.old_rev},
        "new": {"veil": args.new, "rev": args.new_rev},
        "repeat": args.repeat,
        "load_avg_1min": [load0, os.getloadavg()[0]],
        "cases": cases,
        "old_total_s": old_total,
        "new_total_s": new_total,
        "same_reports": sum(c["same_report"] for c in cases),
        "cases_total": len(cases),
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, args.out)
    print("total %.1f -> %.1f s (%.2fx), %d of %d reports the same"
          % (old_total, new_total, old_total / new_total, doc["same_reports"], len(cases)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
