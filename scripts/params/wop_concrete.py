#!/usr/bin/env python3
"""The WoP-PBS parameter sets of engine/src/params.c (veil_wop_params), from
Concrete's optimizer.

Optional, outside CI and outside veil's dependencies; run it with the venv of
scripts/peers/setup-concrete.sh (concrete-python 2.10.0, the version Concrete
ML 1.9 pins):

    VENV=$(bash scripts/peers/setup-concrete.sh)
    "$VENV/bin/python" scripts/params/wop_concrete.py --out docs/results/wop-concrete-optimizer.json

For each width w (default 9..16) it compiles with concrete-python one table
lookup of a w-bit encrypted input (a seeded random 4-bit table over the whole
range [0, 2^w), a fresh input: 2-norm 1) at p_error 2^-40 per PBS
(global_p_error None) with the MONO parameter-selection strategy (one
parameter set for the circuit, the strategy whose search includes the WoP-PBS
atomic pattern; the default MULTI strategy answers this circuit with a classic
PBS at N = 65536 from 9 bits on), captures the optimizer's report and parses the
solution: n, k, N, the keyswitch and blind-rotation gadgets, whether it is a
WoP-PBS, the circuit-bootstrapping and packing-keyswitch gadgets, and the
per-PBS p_error. Concrete's noises are the minimum of its 128-bit security
curve at n and k N, which is how veil's table states them
(veil_noise_min_log2_std_128). It writes the JSON to --out and prints the C
initializers of k_params_wop. Each width runs in a child process (the native
optimizer prints its report on stderr).
"""

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys

CHILD = r'''
import sys, numpy as np
from concrete import fhe
w = int(sys.argv[1]); pe = float(sys.argv[2])
rng = np.random.default_rng(1000 + w)
t = fhe.LookupTable(rng.integers(0, 16, size=2**w).tolist())
@fhe.compiler({"x": "encrypted"})
def f(x):
    return t[x]
cfg = fhe.Configuration(p_error=pe, global_p_error=None, show_optimizer=True,
                        single_precision=False,
                        parameter_selection_strategy=fhe.ParameterSelectionStrategy.MONO)
f.compile([np.arange(2**w)], configuration=cfg)
'''

SLOPE, BIAS = -0.025696778711484593, 2.675931372549016  # engine/src/params.c k_sec128_*


def min_std(dim):
    return 2.0 ** max(SLOPE * dim + BIAS, 2.0 - 64.0)


def parse(report):
    def grab(pattern, cast=int):
        m = re.search(pattern, report)
        if not m:
            raise ValueError("optimizer report: no match for %r" % pattern)
        return tuple(cast(g) for g in m.groups())

    (k,) = grab(r"(\d+)x glwe_dimension")
    (logn,) = grab(r"2\*\*(\d+) polynomial")
    (n,) = grab(r"(\d+) lwe dimension")
    ks_l, ks_b = grab(r"keyswitch l,b=(\d+),(\d+)")
    br_l, br_b = grab(r"blindrota l,b=(\d+),(\d+)")
    wop = "wopPbs : true" in report
    sol = {"n": n, "k": k, "N": 2**logn, "ks_level": ks_l, "ks_base_log": ks_b,
           "pbs_level": br_l, "pbs_base_log": br_b, "wop_pbs": wop}
    if wop:
        sol["cbs_level"], sol["cbs_base_log"] = grab(r"cb_decomp l,b=(\d+),(\d+)")
        sol["pp_level"], sol["pp_base_log"] = grab(r"pp_decomp l,b=(\d+),(\d+)")
    (sol["p_error"],) = grab(r"For each pbs call:.*p_error \(([0-9.e+-]+)\)", float)
    (sol["global_p_error"],) = grab(r"global_p_error\(([0-9.e+-]+)\)", float)
    return sol


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--widths", default="9,10,11,12,13,14,15,16")
    ap.add_argument("--p-error", type=float, default=2.0**-40)
    a = ap.parse_args()
    import concrete  # noqa: F401  (fails early outside the venv)
    from importlib.metadata import version

    res = {"concrete_python": version("concrete-python"), "p_error_per_pbs": a.p_error,
           "machine": platform.platform(), "cases": []}
    for w in [int(x) for x in a.widths.split(",")]:
        r = subprocess.run([sys.executable, "-c", CHILD, str(w), repr(a.p_error)],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            sys.exit("width %d: concrete failed:\n%s" % (w, r.stderr[-2000:]))
        report = r.stdout + r.stderr  # the native optimizer prints on stderr
        sol = parse(report)
        sol["width"] = w
        sol["lwe_std"] = min_std(sol["n"])
        sol["glwe_std"] = min_std(sol["k"] * sol["N"])
        sol["optimizer_report"] = report
        res["cases"].append(sol)
        print("width %d: %s" % (w, {k: v for k, v in sol.items() if k != "optimizer_report"}),
              file=sys.stderr)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, a.out)
    for s in res["cases"]:
        if not s["wop_pbs"]:
            print("/* width %d: Concrete chose a classic PBS, no WoP set */" % s["width"])
            continue
        print('{"wop-w%d-2m40", %d, {"wop-w%d-2m40", %d, %d, %d, GAUSS(%r), GAUSS(%r), %d, %d, %d, '
              '%d, %d, 1.0, VEIL_MS_STANDARD, %.3f, 128.0, 0, WOP_SRC, 0, 0}, %d, %d, %d, %d, %e},'
              % (s["width"], s["width"], s["width"], s["n"], s["k"], s["N"], s["lwe_std"],
                 s["glwe_std"], s["pbs_base_log"], s["pbs_level"], s["ks_base_log"], s["ks_level"],
                 s["width"], math.log2(s["p_error"]), s["cbs_base_log"], s["cbs_level"],
                 s["pp_base_log"], s["pp_level"], s["p_error"]))


if __name__ == "__main__":
    main()
