#!/usr/bin/env python3
"""Merges bench_model runs made with different --rounding-bits into one JSON
and plots, per model, PBS per sample and latency per sample (log scale) for
exact (none) and rounded lookups, with the accuracy printed.

usage: scripts/plot_exact.py [--pbs BENCH_PBS.json] OUT.png OUT.json ROUNDING=RESULT.json [...]

--pbs: bench_pbs's JSON; adds per (model, rounding) a row with "mode":
"cpu-predicted", latency = the sum over the program's partitions of their
PBS per sample x the set's median KS-PBS time (one thread, measured there), "predicted": true; whole encrypted runs ("mode":
"cpu"/"cuda") are measured.
"""
import json
import sys

from plot_model import per_sample  # scripts/: the script's own folder


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    ks_pbs, pbs_meta = {}, None
    if argv[1] == "--pbs":
        with open(argv[2]) as f:
            pbs_meta = json.load(f)
        for st in pbs_meta["sets"]:
            paths = st.get("fft_paths", {})
            if paths:
                ks_pbs[st["id"]] = min(v["ks_pbs_median_ms"] for v in paths.values()) / 1e3
        argv = argv[:1] + argv[3:]
        if len(argv) < 4:
            print(__doc__, file=sys.stderr)
            return 2
    png, merged, parts = argv[1], argv[2], argv[3:]
    rows, order = [], []
    for part in parts:
        label, path = part.split("=", 1)
        order.append(label)
        with open(path) as f:
            for r in json.load(f)["results"]:
                r["rounding"] = label
                r["predicted"] = False
                r["s_per_sample_amortised"] = per_sample(r)  # the name before the rename too
                r.pop("latency_s_per_sample", None)
                rows.append(r)
    for r in [r for r in rows if r["mode"] == "simulate"]:
        # per partition (its own set) when bench_model lists them; older
        # bench_model JSON has one set per program ("params")
        parts = r.get("partitions") or [{"params": r["params"],
                                         "pbs_per_sample": r["pbs_per_sample"]}]
        if all(q["params"] in ks_pbs for q in parts) and not any(
                q["model"] == r["model"] and q["rounding"] == r["rounding"]
                and q["mode"] == "cpu-predicted" for q in rows):
            rows.append({"model": r["model"], "mode": "cpu-predicted",
                         "device": "cpu: 1 thread, sum over partitions of KS-PBS time x PBS count",
                         "params": r["params"], "partitions": parts, "batch": 1, "samples": 0,
                         "pbs_per_sample": r["pbs_per_sample"],
                         "ks_pbs_s": {q["params"]: ks_pbs[q["params"]] for q in parts},
                         "s_per_sample_amortised": sum(q["pbs_per_sample"] * ks_pbs[q["params"]]
                                                     for q in parts),
                         "accuracy": r["accuracy"], "brevitas_accuracy": r["brevitas_accuracy"],
                         "agreement_with_simulate": None, "rounding": r["rounding"],
                         "predicted": True})
    out = {"rounding": order, "results": rows}
    if pbs_meta:
        out["ks_pbs"] = {"cpu": pbs_meta.get("cpu"), "clock": pbs_meta.get("clock"),
                         "threads": pbs_meta.get("threads"), "seconds": ks_pbs}
    with open(merged + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    import os
    os.replace(merged + ".tmp", merged)
    print(f"{'model':12} {'rounding':8} {'mode':8} {'PBS/sample':>10} {'s/sample':>10} "
          f"{'accuracy':>8} {'agree':>6}")
    for r in rows:
        lat = r["s_per_sample_amortised"]
        print(f"{r['model']:12} {r['rounding']:8} {r['mode']:8} {r['pbs_per_sample']:10d} "
              f"{lat if lat is not None else float('nan'):10.4g} "
              f"{r['accuracy'] if r['accuracy'] is not None else float('nan'):8.4f} "
              f"{r['agreement_with_simulate'] if r['agreement_with_simulate'] is not None else float('nan'):6.3f}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_exact: matplotlib missing, no plot", file=sys.stderr)
        return 0
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(order))
    for i, label in enumerate(order):
        pbs = [next((r["pbs_per_sample"] for r in rows
                     if r["model"] == m and r["rounding"] == label), 0) for m in models]
        axes[0].bar([x + i * width for x in range(len(models))], pbs, width, label=label)
        for mode, mk in (("cpu", "o"), ("cuda", "s"), ("cpu-predicted", "x")):
            pts = [(j, r["s_per_sample_amortised"]) for j, m in enumerate(models) for r in rows
                   if r["model"] == m and r["rounding"] == label and r["mode"] == mode
                   and r["s_per_sample_amortised"]]
            if pts:
                axes[1].scatter([j + i * width for j, _ in pts], [v for _, v in pts], marker=mk,
                                label=f"{label} {mode}")
    for ax, title in ((axes[0], "PBS per sample (rounding bits; none = exact)"),
                      (axes[1], "encrypted s/sample (o measured, x predicted)")):
        ax.set_yscale("log")
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(models))])
        ax.set_xticklabels(models, rotation=20)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
