#!/usr/bin/env python3
"""Peer measurement for issue 10: what Concrete pays for one wide table lookup.

Optional, outside CI and outside veil's dependencies. Run it with the venv of
scripts/peers/setup-concrete.sh:

    VENV=$(bash scripts/peers/setup-concrete.sh)
    "$VENV/bin/python" scripts/peers/concrete_wide.py --out concrete-wide.json

For each input width w (default 10, 12, 14, 16 bits; unsigned inputs in
[0, 2^w)) it compiles with concrete-python a circuit that applies ONE table
lookup to a vector of 4 encrypted values, with an inputset covering the whole
range. Tables: "staircase" (output = clamp(x >> (w - 4), 0, 15): a 4-bit
ReLU-like quantized activation, 15 steps) and "random" (a seeded random 4-bit
table, not monotone). It records the compile time, what Concrete chose
(parameters, classic PBS or WoP-PBS, the optimizer's own report), keygen time,
key sizes, the encrypted run time (median of --runs runs; with 1 thread and
with the default thread count) and checks every decrypted output against numpy.

Each (width, table, threads) case runs in its own child process so that
OMP_NUM_THREADS / RAYON_NUM_THREADS take effect before the runtime starts,
a case that runs past --timeout is stopped and recorded as such, and a case
killed for memory (the child asks the kernel to pick it first) is recorded
instead of taking the machine down. Before keygen the child compares the key
size Concrete reports with MemAvailable and skips keygen, saying so, when the
keys cannot fit.

Writes JSON to --out and a table on stdout.
"""

import argparse
import ctypes
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

N_VALUES = 4
OUT_BITS = 4


def table_values(kind, w):
    """The lookup table for width w, as a list of 2^w ints in [0, 15]."""
    import numpy as np

    x = np.arange(2**w, dtype=np.int64)
    if kind == "staircase":
        return np.clip(x >> (w - OUT_BITS), 0, 2**OUT_BITS - 1).tolist()
    if kind == "random":
        rng = np.random.default_rng(1000 + w)
        return rng.integers(0, 2**OUT_BITS, size=2**w).tolist()
    raise ValueError("unknown table kind %r (staircase, random)" % kind)


def mem_available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def cpu_seconds():
    t = os.times()
    return t.user + t.system


class CaptureFds:
    """Captures what native code writes to file descriptors 1 and 2 (the
    optimizer's report is printed by the native compiler, not through
    sys.stdout)."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.tmp = tempfile.TemporaryFile(mode="w+b")
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.tmp.fileno(), 1)
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        ctypes.CDLL(None).fflush(None)  # C stdio buffers fully when not a terminal
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.tmp.seek(0)
        self.text = self.tmp.read().decode("utf-8", "replace")
        self.tmp.close()
        return False


def compile_recorded(compiler, inputset, cfg, res):
    """Compile with Concrete's optimizer report captured; record the time, the
    report, the parameters it chose, p_error and the PBS count in res."""
    t0 = time.perf_counter()
    with CaptureFds() as cap:
        circuit = compiler.compile(inputset, cfg)
    res["compile_s"] = time.perf_counter() - t0
    res["optimizer_report"] = cap.text
    res["params"] = parse_optimizer(cap.text)
    st = circuit.statistics
    res["p_error"] = st["p_error"]
    res["global_p_error"] = st["global_p_error"]
    res["pbs_count"] = st["programmable_bootstrap_count"]
    return circuit


def parse_optimizer(text):
    """Pulls the chosen parameters out of show_optimizer's report."""
    out = {}

    def grab(key, pattern, conv=int):
        m = re.search(pattern, text)
        if m:
            out[key] = conv(m.group(1)) if len(m.groups()) == 1 else [conv(g) for g in m.groups()]

    grab("glwe_dimension", r"(\d+)x glwe_dimension")
    grab("polynomial_size", r"2\*\*\d+ polynomial \((\d+)\)")
    grab("lwe_dimension", r"(\d+) lwe dimension")
    grab("keyswitch_level_base", r"keyswitch l,b=(\d+),(\d+)")
    grab("blind_rotate_level_base", r"blindrota l,b=(\d+),(\d+)")
    grab("circuit_bootstrap_level_base", r"cb_decomp l,b=(\d+),(\d+)")
    grab("packing_keyswitch_level_base", r"pp_decomp l,b=(\d+),(\d+)")
    m = re.search(r"wopPbs : (true|false)", text)
    if m:
        out["wop_pbs"] = m.group(1) == "true"
    if "CircuitSolution" in text:
        # multi-parameter report: take the keys it lists
        big = re.findall(r"polynomial_size: (\d+),\s*glwe_dimension: (\d+),\s*description: \"big", text)
        small = re.findall(r"polynomial_size: (\d+),\s*glwe_dimension: \d+,\s*description: \"small", text)
        if big:
            out["polynomial_size"] = int(big[0][0])
            out["glwe_dimension"] = int(big[0][1])
        if small:
            out["lwe_dimension"] = int(small[0])
        ks = re.search(r"ks_decomposition_parameter: KsDecompositionParameters \{\s*level: (\d+),\s*log2_base: (\d+)", text)
        if ks:
            out["keyswitch_level_base"] = [int(ks.group(1)), int(ks.group(2))]
        br = re.search(r"br_decomposition_parameter: BrDecompositionParameters \{\s*level: (\d+),\s*log2_base: (\d+)", text)
        if br:
            out["blind_rotate_level_base"] = [int(br.group(1)), int(br.group(2))]
        cbk = re.search(r"circuit_bootstrap_keys: \[\s*\]", text)
        out["wop_pbs"] = out.get("wop_pbs", False) or (cbk is None)
        crt = re.search(r"crt_decomposition: \[([^\]]*)\]", text)
        if crt and crt.group(1).strip():
            out["crt_decomposition"] = [int(v) for v in re.findall(r"\d+", crt.group(1))]
    return out


def run_case(w, kind, threads, runs, seed, result_path):
    """Child: one width, one table, one thread setting. Writes JSON as it goes
    so the parent knows how far a killed or stopped child got."""
    res = {"width": w, "table": kind, "threads_requested": threads, "stage": "start"}

    def save():
        with open(result_path, "w") as f:
            json.dump(res, f)

    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")  # if memory runs out, this child goes first
    except OSError:
        pass
    save()

    import numpy as np
    from concrete import fhe

    res["concrete_python"] = fhe.__version__
    res["default_p_error"] = fhe.DEFAULT_P_ERROR
    res["default_global_p_error"] = fhe.DEFAULT_GLOBAL_P_ERROR
    res["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    res["rayon_num_threads_env"] = os.environ.get("RAYON_NUM_THREADS")
    table = fhe.LookupTable(table_values(kind, w))
    ref = np.array(table_values(kind, w), dtype=np.int64)

    def f(x):
        return table[x]

    compiler = fhe.Compiler(f, {"x": "encrypted"})
    full = np.arange(2**w, dtype=np.int64)
    inputset = [full[i : i + N_VALUES] for i in range(0, 2**w, N_VALUES)]
    res["stage"] = "compile"
    save()
    circuit = compile_recorded(compiler, inputset, fhe.Configuration(show_optimizer=True), res)
    st = circuit.statistics
    res["complexity"] = st["complexity"]
    res["pbs_count_per_parameter"] = {str(k): v for k, v in st["programmable_bootstrap_count_per_parameter"].items()}
    res["keyswitch_count"] = st["key_switch_count"]
    res["packing_keyswitch_count"] = st["packing_key_switch_count"]
    res["key_bytes"] = {
        "secret": st["size_of_secret_keys"],
        "bootstrap": st["size_of_bootstrap_keys"],
        "keyswitch": st["size_of_keyswitch_keys"],
    }
    res["ciphertext_bytes_in"] = st["size_of_inputs"]
    res["ciphertext_bytes_out"] = st["size_of_outputs"]
    p = res["params"]
    if res["packing_keyswitch_count"] > 0:
        p["wop_pbs"] = True  # vertical packing: the WoP-PBS path
    if p.get("wop_pbs"):
        res["strategy"] = "WoP-PBS (bit extraction, circuit bootstrapping, vertical packing)"
    elif p.get("crt_decomposition"):
        res["strategy"] = "CRT decomposition"
    else:
        res["strategy"] = "classic PBS (one PBS per value on the whole %d-bit input)" % w
    res["mlir_ops"] = [l.strip() for l in circuit.mlir.splitlines() if "FHE" in l and "constant" not in l]
    save()

    need = sum(res["key_bytes"].values())
    avail = mem_available_bytes()
    res["mem_available_before_keygen"] = avail
    # keys that cannot fit are not tried; keys that fit but leave keygen short
    # of memory get this child killed (oom_score_adj above), and say so
    if avail is not None and need + 512 * 2**20 > avail:
        res["stage"] = "skipped"
        res["error"] = "keys need %.2f GB, only %.2f GB available: keygen not attempted" % (
            need / 1e9,
            avail / 1e9,
        )
        save()
        return
    res["stage"] = "keygen"
    save()
    t0 = time.perf_counter()
    circuit.keygen(force=True, seed=seed)
    res["keygen_s"] = time.perf_counter() - t0
    res["stage"] = "run"
    save()

    rng = np.random.default_rng(seed)
    enc_s, run_s, dec_s, ratio, wrong, checked = [], [], [], [], 0, 0
    for i in range(runs):
        x = rng.integers(0, 2**w, size=N_VALUES)
        if i == 0:
            x[0], x[1] = 0, 2**w - 1
        t0 = time.perf_counter()
        ex = circuit.encrypt(x)
        t1 = time.perf_counter()
        c0 = cpu_seconds()
        ey = circuit.run(ex)
        c1 = cpu_seconds()
        t2 = time.perf_counter()
        y = np.asarray(circuit.decrypt(ey)).astype(np.int64)
        t3 = time.perf_counter()
        enc_s.append(t1 - t0)
        run_s.append(t2 - t1)
        dec_s.append(t3 - t2)
        ratio.append((c1 - c0) / max(t2 - t1, 1e-9))
        wrong += int(np.sum(y != ref[x]))
        checked += N_VALUES
        res["runs_done"] = i + 1
        res["run_s_all"] = run_s
        save()
    res["encrypt_s_median"] = float(np.median(enc_s))
    res["run_s_median"] = float(np.median(run_s))
    res["run_s_per_lookup"] = res["run_s_median"] / N_VALUES
    res["decrypt_s_median"] = float(np.median(dec_s))
    res["cpu_over_wall_in_run"] = float(np.median(ratio))
    res["values_checked"] = checked
    res["values_wrong"] = wrong
    res["stage"] = "done"
    save()


def spawn(args, w, kind, threads):
    env = dict(os.environ)
    if threads == 1:
        env["OMP_NUM_THREADS"] = "1"
        env["RAYON_NUM_THREADS"] = "1"
    else:
        env.pop("OMP_NUM_THREADS", None)
        env.pop("RAYON_NUM_THREADS", None)
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(w), kind, str(threads), "--runs", str(args.runs), "--seed", str(args.seed), "--out", path]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=args.timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        rc, tail = proc.returncode, proc.stdout.decode("utf-8", "replace")[-2000:]
    except subprocess.TimeoutExpired as e:
        rc, tail = "timeout", (e.stdout or b"").decode("utf-8", "replace")[-2000:]
    wall = time.perf_counter() - t0
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = {"width": w, "table": kind, "threads_requested": threads, "stage": "start"}
    os.unlink(path)
    res["case_wall_s"] = wall
    if res.get("stage") not in ("done", "skipped"):
        if rc == "timeout":
            res["error"] = "stopped after %.0f s (--timeout) during %s" % (wall, res.get("stage"))
        elif rc == -9:
            res["error"] = "killed (SIGKILL, most likely out of memory) during %s" % res.get("stage")
        else:
            res["error"] = "child exited with %s during %s: %s" % (rc, res.get("stage"), tail.strip()[-600:])
    return res


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def machine():
    model = None
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, check=True).stdout.decode()
        m = re.search(r"Model name:\s*(.+)", out)
        model = m.group(1).strip() if m else None
    except (OSError, subprocess.CalledProcessError):
        pass
    mem = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {"cpu_model": model, "cpus": os.cpu_count(), "mem_total_bytes": mem, "python": platform.python_version(), "platform": platform.platform()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="JSON result path")
    ap.add_argument("--widths", default="10,12,14,16")
    ap.add_argument("--tables", default="staircase", help="comma list of staircase, random")
    ap.add_argument("--threads", default="1,0", help="comma list; 0 = Concrete's default thread count")
    ap.add_argument("--runs", type=int, default=3, help="encrypted runs per case (median reported)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per case (compile+keygen+runs)")
    ap.add_argument("--append", action="store_true", help="add the cases to those already in --out")
    ap.add_argument("--child", nargs=3, metavar=("W", "TABLE", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        run_case(int(args.child[0]), args.child[1], int(args.child[2]), args.runs, args.seed, args.out)
        return

    from concrete import fhe

    doc = {
        "what": "one table lookup on a vector of %d encrypted values, Concrete (concrete-python)" % N_VALUES,
        "concrete_python": fhe.__version__,
        "default_p_error": fhe.DEFAULT_P_ERROR,
        "default_global_p_error": fhe.DEFAULT_GLOBAL_P_ERROR,
        "machine": machine(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cases": [],
    }
    if args.append and os.path.exists(args.out):
        with open(args.out) as f:
            prev = json.load(f)
        doc["cases"] = prev["cases"]
        doc["command"] = prev["command"] + " ; " + doc["command"]
        doc["started_utc"] = prev["started_utc"]
    widths = [int(v) for v in args.widths.split(",")]
    tables = args.tables.split(",")
    threads = [int(v) for v in args.threads.split(",")]
    for kind in tables:
        for w in widths:
            for th in threads:
                print("concrete_wide: w=%d table=%s threads=%s ..." % (w, kind, th or "default"), file=sys.stderr, flush=True)
                res = spawn(args, w, kind, th)
                doc["cases"].append(res)
                with open(args.out, "w") as f:
                    json.dump(doc, f, indent=1)
                print("concrete_wide:   %s %s" % (res.get("stage"), res.get("error", "")), file=sys.stderr, flush=True)
    doc["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)

    hdr = "%-5s %-9s %-7s %-9s %-4s %-7s %-3s %-5s %-7s %-7s %-9s %-9s %-10s %-8s %-6s %s" % (
        "w", "table", "threads", "kind", "PBS", "N", "k", "n", "KS l,b", "BR l,b", "keys GB", "keygen s", "run s/lkp", "cpu/wall", "wrong", "note")
    print(hdr)
    for r in doc["cases"]:
        p = r.get("params", {})
        kind = "WoP-PBS" if p.get("wop_pbs") else ("CRT" if p.get("crt_decomposition") else ("classic" if p else "-"))
        keys = sum(r["key_bytes"].values()) / 1e9 if "key_bytes" in r else None
        lb = lambda v: "%d,%d" % tuple(v) if v else "-"
        print("%-5d %-9s %-7s %-9s %-4s %-7s %-3s %-5s %-7s %-7s %-9s %-9s %-10s %-8s %-6s %s" % (
            r["width"], r["table"], r["threads_requested"] or "default", kind, fmt(r.get("pbs_count"), "d"),
            fmt(p.get("polynomial_size"), "d"), fmt(p.get("glwe_dimension"), "d"), fmt(p.get("lwe_dimension"), "d"),
            lb(p.get("keyswitch_level_base")), lb(p.get("blind_rotate_level_base")), fmt(keys, ".2f"),
            fmt(r.get("keygen_s"), ".1f"), fmt(r.get("run_s_per_lookup"), ".3f"), fmt(r.get("cpu_over_wall_in_run"), ".2f"),
            "%s/%s" % (r.get("values_wrong", "-"), r.get("values_checked", "-")), r.get("error", "")))


if __name__ == "__main__":
    main()
