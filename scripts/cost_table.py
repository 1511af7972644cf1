#!/usr/bin/env python3
"""The compiler's measured cost table: engine/src/cost_table.inc from
`bench_pbs --cost` (CPU, one core, thread CPU time) and the stored
`bench_gpu` figures (GPU throughput), with a fitted fallback for sets or
shapes without a figure. Run by hand after re-measuring; the output is
committed.

  build/bench/bench_pbs --cost --clock cpu --out docs/results/zen4-cpu-cost.json
  ~/.cache/veil/venv/bin/python scripts/cost_table.py docs/results/zen4-cpu-cost.json
(any Python with numpy; the exporter's venv has it)

One pass over the 147 sets takes about 3.5 minutes, and single sets moved by up to 20% between
two passes on this shared VM (frequency, neighbours), enough to change which partitions the
compiler picks; so the table is the per-set median of several passes:
  for i in 1 2 3; do build/bench/bench_pbs --cost --clock cpu --runs 5 \
      --out docs/results/cost-passes/zen4-cost-pass$i.json; done
  python scripts/cost_table.py docs/results/zen4-cpu-cost.json \
      --median docs/results/cost-passes/zen4-cost-pass*.json
(each set's blind rotation and keyswitch row apart; the passes' figures stay in the JSON).
Sets added later (new parameter sets) are measured alone, beside a few sets
the table has, and merged (merge(): scaled to the table by those references):
  build/bench/bench_pbs --cost --clock cpu --runs 5 --params NEW,...,REF,... \
      --out build/new-cost.json
  python scripts/cost_table.py docs/results/zen4-cpu-cost.json --merge build/new-cost.json

CPU cost of one KS-PBS of set X keyswitching from a master key of D rows:
    blind_rotation_ms(X) + keyswitch_ns_per_row(X) * D * 1e-6
both measured per parameter-set shape (n, k, N, l_pbs, l_ks), then pooled
over the shapes that differ in n alone (pooled_figures: cost per CMux step
and per keyswitch output word, the family's median, times n): lockstep
batches of VEIL_PBS_LANES (the keyswitch, since 2026-12-02, in groups of
VEIL_KS_LANES), what the cpu backend runs. Sets of one shape
share the figure ("same_shape_as"). The fallback (a set added after the
measurement, or a test's own set) is a least-squares fit in logs:
    log br = b0 + b1 log n + b2 log(k+1) + b3 log N + b4 log l_pbs + b5 log log2 N
    log ks_row = c0 + c1 log(n+1) + c2 log l_ks
whose residuals per shape go back into the JSON ("fit").

Multi-bit sets (engine/src/cost_multibit.inc), ratios to the classic table:
  build/bench/bench_pbs --cost --multibit --runs 5 --out docs/results/intel-cpu-cost-multibit.json
  python3 scripts/cost_table.py --multibit docs/results/intel-cpu-cost-multibit.json
(the same Python as above).

CUDA: microseconds per KS-PBS at the best throughput that bench_gpu
recorded (docs/results/h100-bench_gpu*.json: NVIDIA H100, the one GPU with
figures for more than one set); sets without a figure get the CPU figure
times the geometric mean of (GPU us / CPU ms) over the sets that have both,
marked "scaled" in the table and the JSON.
"""
import glob
import json
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def br_features(n, k, N, l):
    return [1.0, math.log(n), math.log(k + 1), math.log(N), math.log(l), math.log(math.log2(N))]


def ks_features(n, l_ks):
    return [1.0, math.log(n + 1), math.log(l_ks)]


SHAPE_KEYS = (("n", "n"), ("k", "k"), ("N", "N"), ("pbs_level", "l_pbs"), ("ks_level", "l_ks"))


def gpu_figures(by_id):
    """set id -> (us per KS-PBS, file, device, batch) at the best throughput,
    for runs whose recorded shape is the set's shape today (by_id: this
    table's sets); a figure measured on a set since re-derived (another n, k,
    N or levels under the same id) is left out, and its file named."""
    out = {}
    for f in sorted(glob.glob(os.path.join(ROOT, "docs/results/h100-bench_gpu*.json"))):
        d = json.load(open(f))
        pr, cur = d["params"], by_id.get(d["params"]["id"])
        if cur is None or any(pr.get(a) != cur.get(b) for a, b in SHAPE_KEYS if a in pr):
            print("%s: %s measured at another shape than today's set: not used"
                  % (os.path.relpath(f, ROOT), pr["id"]))
            continue
        for r in d["runs"]:
            if r["backend"] != "cuda":
                continue
            best = max(r["ks_pbs"], key=lambda x: x["per_second"])
            us = 1e6 / best["per_second"]
            pid = d["params"]["id"]
            if pid not in out or us < out[pid][0]:
                out[pid] = (us, os.path.relpath(f, ROOT), r["device"], best["batch"])
    return out


def merge(path, new_path):
    """Adds the sets of a later `bench_pbs --cost --params LIST` run (new_path)
    to the table's JSON (path). The run must also list sets the table
    measured ("references"): the new figures are scaled by the geometric
    mean of table / run over them (blind rotation and keyswitch apart), so
    that a set added later is priced against the table's sets as if measured
    with them, whatever the kernels and the load did in between. The raw
    figures and the factors stay in the JSON ("merged")."""
    d = json.load(open(path))
    new = json.load(open(new_path))
    old = {s["id"]: s for s in d["sets"] if "blind_rotation_ms" in s}
    refs = [s for s in new["sets"] if s["id"] in old and "blind_rotation_ms" in s]
    adds = [s for s in new["sets"] if not any(s["id"] == t["id"] for t in d["sets"])]
    if not refs or not adds:
        raise SystemExit("%s: needs sets the table measured (references) and sets it lacks; "
                         "has %d and %d" % (new_path, len(refs), len(adds)))
    def gmean(xs):
        return math.exp(sum(math.log(x) for x in xs) / len(xs))
    f_br = gmean([old[s["id"]]["blind_rotation_ms"] / s["blind_rotation_ms"] for s in refs])
    f_ks = gmean([old[s["id"]]["keyswitch_ns_per_row"] / s["keyswitch_ns_per_row"] for s in refs])
    for s in adds:
        # same shape as a set of this run: it shares that set's (scaled) figure; as a
        # reference: that set's figure in the table
        if "same_shape_as" in s and s["same_shape_as"] not in [a["id"] for a in adds] + list(old):
            raise SystemExit("%s: same shape as %s, which has no figure" % (s["id"],
                                                                           s["same_shape_as"]))
        if "blind_rotation_ms" in s:
            s["blind_rotation_ms_raw"] = s["blind_rotation_ms"]
            s["keyswitch_ns_per_row_raw"] = s["keyswitch_ns_per_row"]
            s["blind_rotation_ms"] = round(s["blind_rotation_ms"] * f_br, 4)
            s["keyswitch_ns_per_row"] = round(s["keyswitch_ns_per_row"] * f_ks, 3)
        d["sets"].append(s)
    d.setdefault("merged", []).append({
        "file": os.path.basename(new_path), "command": new.get("command", ""),
        "machine": new.get("machine", d.get("machine", "")),
        "load_avg_1min": [new.get("load_avg_1min_start"), new.get("load_avg_1min_end")],
        "added": [s["id"] for s in adds],
        "references": {s["id"]: {"blind_rotation_ms": s["blind_rotation_ms"],
                                 "keyswitch_ns_per_row": s["keyswitch_ns_per_row"]}
                       for s in refs},
        "scale_blind_rotation": f_br, "scale_keyswitch_row": f_ks})
    d["shapes_measured"] = sum(1 for s in d["sets"] if "blind_rotation_ms" in s)
    json.dump(d, open(path, "w"), indent=1)
    print("merged %d sets from %s, scaled by %.4f (blind rotation) and %.4f (keyswitch row) "
          "over %d references" % (len(adds), new_path, f_br, f_ks, len(refs)))


def median_of_passes(path, pass_paths):
    """Writes path: the first pass's JSON with each measured set's blind
    rotation and keyswitch row replaced by their medians over the passes
    (kept beside them), and the passes' files and loads."""
    passes = [json.load(open(f)) for f in pass_paths]
    d = passes[0]
    by_id = [{s["id"]: s for s in p["sets"]} for p in passes]
    for s in d["sets"]:
        if "blind_rotation_ms" not in s:
            continue
        got = [b[s["id"]] for b in by_id if "blind_rotation_ms" in b.get(s["id"], {})]
        if len(got) != len(passes):
            raise SystemExit("%s: not measured in every pass" % s["id"])
        for key, digits in (("blind_rotation_ms", 4), ("keyswitch_ns_per_row", 3)):
            vals = [g[key] for g in got]
            s[key + "_passes"] = vals
            s[key] = round(float(np.median(vals)), digits)
        s["ks_pbs_own_master_ms"] = round(
            s["blind_rotation_ms"] + 1e-6 * s["keyswitch_ns_per_row"] * s["k"] * s["N"], 4)
    d["passes"] = [{"file": os.path.basename(f),
                    "load_avg_1min": [p.get("load_avg_1min_start"), p.get("load_avg_1min_end")]}
                   for f, p in zip(pass_paths, passes)]
    d["load_avg_1min_start"] = passes[0].get("load_avg_1min_start")
    d["load_avg_1min_end"] = passes[-1].get("load_avg_1min_end")
    json.dump(d, open(path, "w"), indent=1)
    print("%s: medians of %d passes" % (path, len(passes)))


def pooled_figures(measured):
    """Per-shape figures pooled over the shapes that differ in n alone. A blind
    rotation is n identical CMux steps at a given (k, N, l_pbs), and a
    keyswitch row writes n + 1 words l_ks times, so within such a family the
    cost per step (per output word) is one number measured at several n; each
    shape's own figure carries the host's noise (passes moved a set by 14% at
    the median on the Zen 4 host), enough to price a set of larger n below one
    of smaller n of the same family and have the search take it. Returns
    id -> (blind rotation ms, keyswitch ns per row): the family's median per
    step times the shape's n (n + 1), for families measured at two shapes or
    more; other shapes keep their own figures."""
    def family_median(key_of, per_unit):
        fam = {}
        for s in measured:
            fam.setdefault(key_of(s), []).append(per_unit(s))
        return {k: (float(np.median(v)), len(v)) for k, v in fam.items()}
    br_fam = family_median(lambda s: (s["k"], s["N"], s["l_pbs"]),
                           lambda s: s["blind_rotation_ms"] / s["n"])
    ks_fam = family_median(lambda s: s["l_ks"], lambda s: s["keyswitch_ns_per_row"] / (s["n"] + 1))
    out = {}
    for s in measured:
        mb, cb = br_fam[(s["k"], s["N"], s["l_pbs"])]
        mk, ck = ks_fam[s["l_ks"]]
        out[s["id"]] = (round(mb * s["n"], 4) if cb >= 2 else s["blind_rotation_ms"],
                        round(mk * (s["n"] + 1), 3) if ck >= 2 else s["keyswitch_ns_per_row"])
    families = {"blind_rotation_ms_per_step": [
                    {"k": k[0], "N": k[1], "l_pbs": k[2], "median": round(v[0], 7), "shapes": v[1]}
                    for k, v in sorted(br_fam.items())],
                "keyswitch_ns_per_row_per_word": [
                    {"l_ks": k, "median": round(v[0], 5), "shapes": v[1]}
                    for k, v in sorted(ks_fam.items())]}
    return out, families


def multibit_table(path):
    """engine/src/cost_multibit.inc from `bench_pbs --cost --multibit`: per
    multi-bit set, its blind rotation over a classic one of the same n, k, N,
    l in a lockstep batch (batch_ratio) and alone (lone_ratio), and that
    classic one alone (classic_lone_ratio), each over the classic batch
    figure; engine/src/cost.c multiplies them by the classic table's figure
    for that shape. Sorted by id (binary search)."""
    with open(path) as f:
        data = json.load(f)
    rows = sorted(data["multibit_sets"], key=lambda r: r["id"])
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    src = "%s (%s, one core, %s clock)" % (rel, data.get("cpu", "unknown"), data.get("clock"))
    lines = [
        "/* Generated by scripts/cost_table.py --multibit from %s -- do not edit by hand." % rel,
        " * Per multi-bit set: {id, {n, k, N, l_pbs}, batch_ratio, lone_ratio,",
        " * classic_lone_ratio}: its blind rotation in a lockstep batch and alone, and",
        " * a classic set's of the same shape alone, over that classic set's batch",
        " * figure (bench_pbs --cost --multibit, random keys). Sorted by id. */",
        "#define VEIL_COST_MB_SOURCE \"%s\"" % src,
    ]
    for r in rows:
        lines.append('{"%s", {%d, %d, %d, %d}, %.4f, %.4f, %.4f},' % (
            r["id"], r["n"], r["k"], r["N"], r["l_pbs"], r["batch_ratio"], r["lone_ratio"],
            r["classic_lone_ratio"]))
    out = os.path.join(ROOT, "engine/src/cost_multibit.inc")
    with open(out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(out + ".tmp", out)
    print("wrote %s: %d multi-bit sets" % (out, len(rows)))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--multibit":
        multibit_table(sys.argv[2])
        return
    if len(sys.argv) == 4 and sys.argv[2] == "--merge":
        merge(sys.argv[1], sys.argv[3])
        sys.argv = sys.argv[:2]
    if len(sys.argv) >= 5 and sys.argv[2] == "--median":
        median_of_passes(sys.argv[1], sys.argv[3:])
        sys.argv = sys.argv[:2]
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    path = sys.argv[1]
    d = json.load(open(path))
    sets = d["sets"]
    by_id = {s["id"]: s for s in sets}
    measured = [s for s in sets if "blind_rotation_ms" in s]
    # least squares in logs
    xb = np.array([br_features(s["n"], s["k"], s["N"], s["l_pbs"]) for s in measured])
    yb = np.array([math.log(s["blind_rotation_ms"]) for s in measured])
    cb, *_ = np.linalg.lstsq(xb, yb, rcond=None)
    xk = np.array([ks_features(s["n"], s["l_ks"]) for s in measured])
    yk = np.array([math.log(s["keyswitch_ns_per_row"]) for s in measured])
    ck, *_ = np.linalg.lstsq(xk, yk, rcond=None)
    res_b = np.exp(xb @ cb - yb) - 1
    res_k = np.exp(xk @ ck - yk) - 1
    fit = {
        "blind_rotation_log_coefficients": [float(c) for c in cb],
        "keyswitch_row_log_coefficients": [float(c) for c in ck],
        "shapes": len(measured),
        "blind_rotation_rms_relative_residual": float(np.sqrt(np.mean(res_b ** 2))),
        "blind_rotation_max_abs_relative_residual": float(np.max(np.abs(res_b))),
        "keyswitch_row_rms_relative_residual": float(np.sqrt(np.mean(res_k ** 2))),
        "keyswitch_row_max_abs_relative_residual": float(np.max(np.abs(res_k))),
        "residuals": [{"id": s["id"], "blind_rotation": round(float(rb), 4),
                       "keyswitch_row": round(float(rk), 4)}
                      for s, rb, rk in zip(measured, res_b, res_k)],
    }
    pooled, families = pooled_figures(measured)
    gpu = gpu_figures(by_id)
    rows = []
    for s in sets:
        src = by_id[s.get("same_shape_as", s["id"])]
        br, ks = pooled[src["id"]]
        rows.append({"id": s["id"], "br": br, "ks": ks, "measured_as": src["id"],
                     "shape": tuple(s[b] for _, b in SHAPE_KEYS)})
    ratios = []
    for r in rows:
        if r["id"] in gpu:
            cpu_ms = r["br"] + r["ks"] * 1e-6 * by_id[r["id"]]["k"] * by_id[r["id"]]["N"]
            ratios.append(gpu[r["id"]][0] / cpu_ms)
    scale = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
    no_gpu = []
    for r in rows:
        s = by_id[r["id"]]
        cpu_ms = r["br"] + r["ks"] * 1e-6 * s["k"] * s["N"]
        if r["id"] in gpu:
            r["cuda_us"], r["cuda_measured"] = gpu[r["id"]][0], 1
        else:
            r["cuda_us"], r["cuda_measured"] = cpu_ms * scale, 0
            no_gpu.append(r["id"])
    d["fit"] = fit
    d["pooled"] = {
        "what": "the figures the table holds: per shape, its family's median cost per CMux "
                "step (k, N, l_pbs) or per keyswitch output word (l_ks) times its n (n + 1), "
                "for families measured at two shapes or more (pooled_figures)",
        "families": families,
        "sets": {k: {"blind_rotation_ms": v[0], "keyswitch_ns_per_row": v[1]}
                 for k, v in sorted(pooled.items())}}
    d["cuda"] = {
        "figures": {k: {"us_per_ks_pbs": v[0], "file": v[1], "device": v[2], "batch": v[3]}
                    for k, v in gpu.items()},
        "scale_us_per_cpu_ms": scale,
        "ratios_us_per_cpu_ms": ratios,
        "sets_without_gpu_figure": len(no_gpu),
    }
    json.dump(d, open(path, "w"), indent=1)
    rows.sort(key=lambda r: r["id"])
    out = os.path.join(ROOT, "engine/src/cost_table.inc")
    with open(out, "w") as f:
        f.write("/* Generated by scripts/cost_table.py from %s -- do not edit by hand.\n"
                " * CPU: %s, one core, %s clock (bench_pbs --cost): per set, blind rotation\n"
                " * ms and keyswitch ns per master-key row, pooled over the shapes that\n"
                " * differ in n alone (per CMux step and per output word, times n).\n"
                " * CUDA: us per KS-PBS at the best\n"
                " * throughput bench_gpu recorded (NVIDIA H100), or the CPU figure scaled\n"
                " * (measured 0). Each row carries the shape it was measured at (n, k, N,\n"
                " * l_pbs, l_ks): a set re-derived since (same id, another shape) gets the\n"
                " * fit, not the row (engine/src/cost.c). Sorted by id (binary search). */\n"
                % (os.path.relpath(path, ROOT), d["cpu"], d["clock"]))
        f.write("#define VEIL_COST_FIT_BR {%s}\n" % ", ".join("%.9g" % c for c in cb))
        f.write("#define VEIL_COST_FIT_KS {%s}\n" % ", ".join("%.9g" % c for c in ck))
        f.write("#define VEIL_COST_CUDA_SCALE %.9g\n" % scale)
        f.write("#define VEIL_COST_SOURCE \"%s (%s, one core, %s clock)\"\n"
                % (os.path.relpath(path, ROOT), d["cpu"], d["clock"]))
        for r in rows:
            f.write('{"%s", {%d, %d, %d, %d, %d}, %.6g, %.6g, %.6g, %d},\n'
                    % ((r["id"],) + r["shape"] + (r["br"], r["ks"], r["cuda_us"],
                                                  r["cuda_measured"])))
    print("%d sets (%d shapes measured), fit rms residual: blind rotation %.1f%%, keyswitch "
          "row %.1f%%; %d sets without a GPU figure (scaled by %.3g us per cpu ms)"
          % (len(rows), len(measured), 100 * fit["blind_rotation_rms_relative_residual"],
             100 * fit["keyswitch_row_rms_relative_residual"], len(no_gpu), scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
