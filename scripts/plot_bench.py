#!/usr/bin/env python3
"""Plots bench_gpu JSON files: throughput (per second) and latency against
batch size, one line per file and series (ks_pbs through the backend, and
pbs_kernel / keyswitch_kernel on cuda). Writes PNG with matplotlib when it is
installed, else SVG with no dependency. Also prints a table.

usage: scripts/plot_bench.py OUT_PREFIX RESULT.json [RESULT.json ...]
       -> OUT_PREFIX-throughput.{png,svg}, OUT_PREFIX-latency.{png,svg}
"""
import json
import math
import sys

SERIES = ("ks_pbs", "pbs_kernel_fused", "pbs_kernel_cluster", "pbs_kernel_split", "pbs_kernel_cufft", "pbs_kernel", "keyswitch_kernel")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def load(paths):
    lines = []
    for path in paths:
        with open(path) as f:
            top = json.load(f)
        pid = top.get("params", {}).get("id", "")
        for d in top.get("runs", [top]):
            who = "%s %s" % (d.get("backend", "?"), pid)
            for s in SERIES:
                pts = d.get(s) or []
                if pts:
                    lines.append({
                        "label": "%s: %s" % (who, s),
                        "device": d.get("device", ""),
                        "batch": [p["batch"] for p in pts],
                        "per_second": [p["per_second"] for p in pts],
                        "latency_ms": [p["latency_ms"] for p in pts],
                    })
    return lines


def svg_plot(path, title, ylabel, lines, key):
    W, H, L, R, T, B = 760, 460, 80, 260, 40, 60
    xs = [b for ln in lines for b in ln["batch"]]
    ys = [v for ln in lines for v in ln[key] if v > 0]
    x0, x1 = math.log2(min(xs)), math.log2(max(xs)) or 1
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if y1 == y0:
        y1 += 1
    if x1 == x0:
        x1 += 1
    px = lambda b: L + (math.log2(b) - x0) / (x1 - x0) * (W - L - R)
    py = lambda v: T + (1 - (math.log10(v) - y0) / (y1 - y0)) * (H - T - B)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="24" font-size="15">%s</text>' % (L, title)]
    for e in range(int(y0), int(y1) + 1):
        y = py(10 ** e)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (L, W - R, y, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end">1e%d</text>' % (L - 6, y + 4, e))
    for e in range(int(x0), int(math.ceil(x1)) + 1, 2):
        x = px(2 ** e)
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>' % (x, x, T, H - B))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x, H - B + 16, 2 ** e))
    out.append('<text x="%d" y="%d" text-anchor="middle">batch size</text>' % ((L + W - R) / 2, H - 20))
    out.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>'
               % ((T + H - B) / 2, (T + H - B) / 2, ylabel))
    for i, ln in enumerate(lines):
        c = COLORS[i % len(COLORS)]
        pts = " ".join("%.1f,%.1f" % (px(b), py(v)) for b, v in zip(ln["batch"], ln[key]) if v > 0)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, pts))
        y = T + 16 * i
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                   % (W - R + 10, W - R + 30, y, y, c))
        out.append('<text x="%d" y="%d">%s</text>' % (W - R + 34, y + 4, ln["label"]))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def mpl_plot(plt, path, title, ylabel, lines, key):
    fig, ax = plt.subplots(figsize=(8, 5))
    for ln in lines:
        ax.plot(ln["batch"], ln[key], marker="o", label=ln["label"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    prefix, paths = argv[1], argv[2:]
    lines = load(paths)
    if not lines:
        print("plot_bench: no series in %s" % ", ".join(paths), file=sys.stderr)
        return 1
    for ln in lines:
        print("%s (%s)" % (ln["label"], ln["device"]))
        for b, v, t in zip(ln["batch"], ln["per_second"], ln["latency_ms"]):
            print("  batch %6d  %12.1f /s  %10.3f ms" % (b, v, t))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        ext = "png"
        plot = lambda *a: mpl_plot(plt, *a)
    except ImportError:
        ext = "svg"
        plot = svg_plot
    plot("%s-throughput.%s" % (prefix, ext), "throughput", "operations per second", lines, "per_second")
    plot("%s-latency.%s" % (prefix, ext), "latency per batch call", "milliseconds", lines, "latency_ms")
    print("plot_bench: wrote %s-throughput.%s and %s-latency.%s" % (prefix, ext, prefix, ext))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
