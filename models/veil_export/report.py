"""The bit-width report of a model file's IR (veil_export.h5io.read): what
`python -m veil_export info` and export() print. Needs no torch, so `info`
starts in a fraction of a second."""

from . import intpath


def summary(ir):
    """Bit widths of every tensor (worst case and calibration) and of every lookup."""
    rows = []
    for inp in ir["inputs"]:
        rows.append((inp["name"], "input", inp["range"], inp["calib_range"]))
    for l in ir["layers"]:
        rows.append((l["output"], l["op"], l["range"], l["calib_range"]))
    luts = []
    for l in ir["layers"]:
        if l["op"] == "lut":
            luts.append((l["output"], int(l["in_max"]) - int(l["in_min"]) + 1))
    acc_ops = ("linear", "conv2d", "avgpool2d", "add", "sub", "mul")
    acc_bits = [intpath.bit_width(*r[2]) for r in rows if r[1] in acc_ops]
    acc_bits_cal = [intpath.bit_width(*r[3]) for r in rows if r[1] in acc_ops]
    # The widest value a lookup reads (its input tensor's range), by calibration / worst case.
    producers = {r[0]: r for r in rows}
    lut_in = [producers[l["inputs"][0]] for l in ir["layers"] if l["op"] == "lut"]
    return dict(rows=rows, luts=luts,
                max_acc_bits_worst=max(acc_bits) if acc_bits else 0,
                max_acc_bits_calib=max(acc_bits_cal) if acc_bits_cal else 0,
                max_lut_in_bits_worst=max((intpath.bit_width(*r[2]) for r in lut_in), default=0),
                max_lut_in_bits_calib=max((intpath.bit_width(*r[3]) for r in lut_in), default=0),
                max_lut_in_values_calib=max((r[3][1] - r[3][0] + 1 for r in lut_in), default=0),
                max_lut_in_values_worst=max((r[2][1] - r[2][0] + 1 for r in lut_in), default=0))


def format_summary(rep):
    lines = ["%-14s %-10s %-22s %-6s %-22s %-6s" % ("tensor", "op", "worst range", "bits",
                                                    "calib range", "bits")]
    for name, op, r, c in rep["rows"]:
        lines.append("%-14s %-10s %-22s %-6d %-22s %-6d" % (
            name, op, "[%d, %d]" % (r[0], r[1]), intpath.bit_width(*r),
            "[%d, %d]" % (c[0], c[1]), intpath.bit_width(*c)))
    lines.append("max accumulator bits: worst case %d, calibration %d; widest lookup input: "
                 "worst case %d bits, calibration %d bits (%d values)" % (
                     rep["max_acc_bits_worst"], rep["max_acc_bits_calib"],
                     rep["max_lut_in_bits_worst"], rep["max_lut_in_bits_calib"],
                     rep["max_lut_in_values_calib"]))
    return "\n".join(lines)
