#!/usr/bin/env python3
"""Plots bench_model JSON: time per sample (a batch's time / its size: amortised,
not one sample's latency) against batch size, one line per
(model, mode), log scale, so simulate and encrypted (cpu, cuda) sit on one
chart. Writes OUT.png (matplotlib, Debian's python3-matplotlib) and prints
the table, with the accuracy and the agreement with simulate.

usage: scripts/plot_model.py OUT.png RESULT.json [RESULT.json ...]
"""
import json
import sys


def per_sample(r):
    """s_per_sample_amortised; latency_s_per_sample in JSON written before its rename."""
    return r["s_per_sample_amortised"] if "s_per_sample_amortised" in r else r["latency_s_per_sample"]


def fmt(v, spec):
    """v formatted, or "-" for null (no labels: accuracy null)."""
    return "-".rjust(int(spec.split(".")[0] or 0)) if v is None else format(v, spec)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, paths = argv[1], argv[2:]
    rows = []
    for path in paths:
        with open(path) as f:
            rows += json.load(f)["results"]
    series = {}
    print(f"{'model':12} {'mode':9} {'batch':>5} {'s/sample':>12} {'accuracy':>8} {'agree':>6}  device")
    for r in rows:
        key = (r["model"], r["mode"])
        series.setdefault(key, []).append((r["batch"], per_sample(r)))
        print(f"{r['model']:12} {r['mode']:9} {r['batch']:5d} {fmt(per_sample(r), '12.4g')} "
              f"{fmt(r['accuracy'], '8.4f')} {fmt(r['agreement_with_simulate'], '6.3f')}  "
              f"{r['device']}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_model.py: matplotlib missing (apt-get install python3-matplotlib): no PNG",
              file=sys.stderr)
        return 1
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"simulate": ":", "cpu": "--", "cuda": "-"}
    for (model, mode), pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], styles.get(mode, "-"), marker="o",
                label=f"{model} ({mode})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (samples)")
    ax.set_ylabel("time per sample, amortised over the batch (s)")
    ax.set_title("veil: simulate vs encrypted, per sample")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
