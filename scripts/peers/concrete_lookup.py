#!/usr/bin/env python3
"""Peer measurement for issue 16: Concrete's cost per narrow table lookup
against veil's KS-PBS at the parameter set of the same shape, on one core, in
one run, alternated.

Optional, outside CI and outside veil's dependencies. Run it with the venv of
scripts/peers/setup-concrete.sh (either venv: concrete-python 2.10.0):

    VENV=$(bash scripts/peers/setup-concrete.sh)
    "$VENV/bin/python" scripts/peers/concrete_lookup.py \\
        --bench build/bench/bench_pbs --out concrete-lookup.json

For each width w (default 4 and 6 bits) and each Concrete configuration
(`default`: Concrete's own defaults, global_p_error 1e-5 over the circuit;
`2m40`: p_error 2^-40 per lookup and no global bound, the failure probability
veil's nn-* sets are derived for), a child process compiles with
concrete-python a circuit applying ONE seeded random w-bit -> w-bit table to
a vector of --lookups encrypted w-bit values (so the lookups of one
`circuit.run` are amortised as in the issue's earlier figure), records the
parameters Concrete chose (n, k, N, PBS and keyswitch levels and base logs,
from its optimizer's report), generates keys and then waits. The parent then
runs --rounds rounds, each timing --runs `circuit.run` calls in the child and
one `bench_pbs --clock cpu --runs --bench-runs` of veil at the set whose shape
(k, N, PBS level l, nearest n) matches Concrete's among the derived sets of
that precision (the cost table's JSON, named in engine/src/cost_table.inc, lists them with their shapes),
and at nn-p<w>-norm2e0-2m40 (the set a fresh w-bit input takes), alternating
which side goes first. Everything runs pinned to one core (`taskset -c
--cpu`), Concrete with OMP_NUM_THREADS=1 and RAYON_NUM_THREADS=1 set before
its runtime starts (its loop parallelisation is OpenMP: the wheel ships LLVM's
libomp in concrete_python.libs/; RAYON_NUM_THREADS as concrete_wide.py sets it,
in case its Rust CPU code runs a rayon pool), and every decrypted value is
checked against the table.

Concrete's figure is process CPU seconds (user + sys, all threads) of
`circuit.run` divided by the lookups, median over the round's runs; veil's is
bench_pbs's thread CPU time of one KS-PBS (median of --bench-runs), one at a
time and per KS-PBS in lockstep groups of 8 (what a batch costs). Load
averages are recorded at each step: the machine may be shared, so compare
the ratios within one round.

Optionally (--fftw-set ID) one bench_pbs run at that set with both FFT paths
(`--fft auto,fftw`), for issue 16's other ratio (veil's FFT path against its
FFTW path of the same commit).

Writes JSON to --out and a table on stdout.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from concrete_wide import compile_recorded, machine  # noqa: E402

CONFIGS = ("default", "2m40")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def proc_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def table_values(w, seed):
    import numpy as np

    return np.random.default_rng(seed + w).integers(0, 2**w, size=2**w).tolist()


def child(w, config, lookups, seed, result_path):
    """Compiles and keys the circuit, then answers `run K` lines on stdin with
    one JSON line appended to result_path and `done` on stdout."""
    import numpy as np
    from concrete import fhe

    res = {"width": w, "config": config, "lookups_per_run": lookups, "concrete_python": fhe.__version__,
           "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
           "rayon_num_threads_env": os.environ.get("RAYON_NUM_THREADS"),
           "affinity": sorted(os.sched_getaffinity(0))}
    ref = np.array(table_values(w, seed), dtype=np.int64)
    table = fhe.LookupTable(ref.tolist())

    def f(x):
        return table[x]

    if config == "default":
        cfg = fhe.Configuration(show_optimizer=True)
    else:
        cfg = fhe.Configuration(show_optimizer=True, p_error=2.0**-40, global_p_error=None)
    full = np.arange(2**w, dtype=np.int64)
    inputset = [np.resize(np.roll(full, i), lookups) for i in range(0, 2**w)]
    circuit = compile_recorded(fhe.Compiler(f, {"x": "encrypted"}), inputset, cfg, res)
    st = circuit.statistics
    res["keyswitch_count"] = st["key_switch_count"]
    res["key_bytes"] = {"bootstrap": st["size_of_bootstrap_keys"], "keyswitch": st["size_of_keyswitch_keys"]}
    t0, c0 = time.perf_counter(), proc_cpu_s()
    circuit.keygen(force=True, seed=seed)
    res["keygen_s"], res["keygen_cpu_s"] = time.perf_counter() - t0, proc_cpu_s() - c0
    with open(result_path, "a") as out:
        out.write(json.dumps(res) + "\n")
    print("done", flush=True)

    rng = np.random.default_rng(seed)
    for line in sys.stdin:
        runs = int(line.split()[1])
        cpu, wall, wrong = [], [], 0
        for _ in range(runs):
            x = rng.integers(0, 2**w, size=lookups)
            ex = circuit.encrypt(x)
            t0, c0 = time.perf_counter(), proc_cpu_s()
            ey = circuit.run(ex)
            c1, t1 = proc_cpu_s(), time.perf_counter()
            y = np.asarray(circuit.decrypt(ey)).astype(np.int64)
            wrong += int(np.sum(y != ref[x]))
            cpu.append((c1 - c0) / lookups * 1e3)
            wall.append((t1 - t0) / lookups * 1e3)
        with open(result_path, "a") as out:
            out.write(json.dumps({"cpu_ms_per_lookup": cpu, "wall_ms_per_lookup": wall,
                                  "values_checked": runs * lookups, "values_wrong": wrong}) + "\n")
        print("done", flush=True)


class Concrete:
    """The child process of one (width, configuration)."""

    def __init__(self, args, w, config):
        env = dict(os.environ, OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1")
        fd, self.path = tempfile.mkstemp(suffix=".jsonl")
        os.close(fd)
        cmd = ["taskset", "-c", str(args.cpu), sys.executable, os.path.abspath(__file__), "--child", str(w), config,
               "--lookups", str(args.lookups), "--seed", str(args.seed), "--out", self.path]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = 0
        self.setup = self._wait()

    def _wait(self):
        for line in self.proc.stdout:  # native code may print too: wait for our line
            if line.strip() == "done":
                with open(self.path) as f:
                    rows = f.read().splitlines()
                self.lines = len(rows)
                return json.loads(rows[-1])
        raise RuntimeError("Concrete child exited with %s before answering" % self.proc.wait())

    def run(self, runs):
        self.proc.stdin.write("run %d\n" % runs)
        self.proc.stdin.flush()
        return self._wait()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
        os.unlink(self.path)


def cost_table_json():
    """The JSON the compiler's cost table was generated from (its sets at their
    current shapes): the path engine/src/cost_table.inc names."""
    with open(os.path.join(REPO, "engine/src/cost_table.inc")) as f:
        for line in f:
            if line.startswith("#define VEIL_COST_SOURCE"):
                return os.path.join(REPO, line.split('"')[1].split()[0])
    raise SystemExit("engine/src/cost_table.inc: no VEIL_COST_SOURCE line")


def veil_sets(w, params):
    """The derived sets of precision w: the one whose shape matches Concrete's
    (same k, N and PBS level, nearest n) and nn-p<w>-norm2e0-2m40."""
    with open(cost_table_json()) as f:
        sets = [s for s in json.load(f)["sets"] if s["id"].startswith("nn-p%d-" % w)]
    k, N = params.get("glwe_dimension"), params.get("polynomial_size")
    l = (params.get("blind_rotate_level_base") or [None])[0]
    n = params.get("lwe_dimension")
    same = [s for s in sets if (s["k"], s["N"], s["l_pbs"]) == (k, N, l)]
    out = {}
    if same and n is not None:
        best = min(same, key=lambda s: (abs(s["n"] - n), s["id"]))
        out["matched"] = {"id": best["id"], "n": best["n"], "k": best["k"], "N": best["N"], "l": best["l_pbs"],
                          "note": "same k, N, l as Concrete's; n %d against Concrete's %d" % (best["n"], n)}
    else:
        # the same GLWE dimension k*N first (what the blind rotation's
        # transforms and key size scale with), then the PBS level, then n
        near = [s for s in sets if k and N and s["k"] * s["N"] == k * N] or sets
        best = min(near, key=lambda s: (abs(s["l_pbs"] - (l or 1)), abs(s["n"] - (n or 0)), s["id"]))
        out["matched"] = {"id": best["id"], "n": best["n"], "k": best["k"], "N": best["N"], "l": best["l_pbs"],
                          "note": "no nn-p%d set has Concrete's shape (k %s, N %s, l %s): the nearest" % (w, k, N, l)}
    ref = "nn-p%d-norm2e0-2m40" % w
    if ref != out["matched"]["id"]:
        r = next(s for s in sets if s["id"] == ref)
        out["norm2e0"] = {"id": ref, "n": r["n"], "k": r["k"], "N": r["N"], "l": r["l_pbs"]}
    return out


def bench(args, ids, fft="auto"):
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = ["taskset", "-c", str(args.cpu), args.bench, "--params", ",".join(ids), "--clock", "cpu", "--runs",
           str(args.bench_runs), "--fft", fft, "--out", path]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        doc = json.load(f)
    os.unlink(path)
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="JSON result path")
    ap.add_argument("--bench", default=os.path.join(REPO, "build/bench/bench_pbs"), help="veil's bench_pbs")
    ap.add_argument("--widths", default="4,6")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma list of default, 2m40")
    ap.add_argument("--lookups", type=int, default=32, help="lookups per circuit.run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3, help="circuit.run calls per round")
    ap.add_argument("--bench-runs", type=int, default=9, help="bench_pbs --runs")
    ap.add_argument("--cpu", type=int, default=0, help="the core everything is pinned to")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fftw-set", default="", help="also one bench_pbs --fft auto,fftw run at this set")
    ap.add_argument("--child", nargs=2, metavar=("W", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        child(int(args.child[0]), args.child[1], args.lookups, args.seed, args.out)
        return
    for c in args.configs.split(","):
        if c not in CONFIGS:
            sys.exit("concrete_lookup: unknown configuration '%s' in --configs (default, 2m40)" % c)
    if not os.access(args.bench, os.X_OK):
        sys.exit("concrete_lookup: no bench_pbs at %s (build it, or pass --bench)" % args.bench)

    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE, text=True)
    doc = {"what": "one w-bit table lookup: Concrete (concrete-python) per lookup, amortised over %d in one "
                   "circuit.run, against veil's KS-PBS at the set of the same shape; one core, alternated" % args.lookups,
           "machine": machine(), "veil_commit": git.stdout.strip(), "command": " ".join(sys.argv),
           "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases": []}
    with open("/proc/cpuinfo") as f:
        info = f.read()
    for key in ("cpu family", "model\t"):
        line = next((l for l in info.splitlines() if l.startswith(key)), "")
        doc["machine"][key.strip().replace(" ", "_")] = line.split(":")[-1].strip()

    def save():
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)

    for w in [int(v) for v in args.widths.split(",")]:
        for config in args.configs.split(","):
            print("concrete_lookup: w=%d %s: compile and keygen ..." % (w, config), file=sys.stderr, flush=True)
            case = {"width": w, "config": config, "load_setup": loadavg()}
            cc = Concrete(args, w, config)
            case["concrete"] = cc.setup
            case["veil_sets"] = veil_sets(w, cc.setup["params"])
            ids = [v["id"] for v in case["veil_sets"].values()]
            case["rounds"] = []
            doc["cases"].append(case)
            for r in range(args.rounds):
                rnd = {"round": r + 1, "order": "concrete first" if r % 2 == 0 else "veil first"}
                for side in (("concrete", "veil") if r % 2 == 0 else ("veil", "concrete")):
                    rnd["load_before_" + side] = loadavg()
                    if side == "concrete":
                        rnd["concrete"] = cc.run(args.runs)
                    else:
                        b = bench(args, ids)
                        rnd["veil"] = {s["id"]: {"keyswitch_ms": s["keyswitch"]["median_ms"],
                                                 "pbs_ms": s["pbs"]["median_ms"],
                                                 "ks_pbs_ms": s["ks_pbs"]["median_ms"],
                                                 "ks_pbs_lockstep_ms": s["batch"]["lockstep_ms_per_ks_pbs"],
                                                 "bench_load": [b.get("load_avg_1min_start"), b.get("load_avg_1min_end")]}
                                       for s in b["sets"]}
                        rnd["veil_fft_path"] = b.get("fft_paths")
                rnd["load_end"] = loadavg()
                case["rounds"].append(rnd)
                print("concrete_lookup:   round %d: Concrete %.2f ms/lookup, veil %s" % (
                    r + 1, statistics.median(rnd["concrete"]["cpu_ms_per_lookup"]),
                    ", ".join("%s %.2f ms" % (k, v["ks_pbs_ms"]) for k, v in rnd["veil"].items())),
                    file=sys.stderr, flush=True)
                save()
            cc.close()
            summarize(case)
            save()
    if args.fftw_set:
        doc["fftw_path"] = {"load_start": loadavg(), "bench_pbs": bench(args, [args.fftw_set], "auto,fftw"),
                            "load_end": loadavg()}
    doc["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save()
    print_table(doc)


def summarize(case):
    """Per round the ratio Concrete / veil (CPU ms per lookup against one KS-PBS);
    the case's figures are the medians over rounds."""
    conc = [statistics.median(r["concrete"]["cpu_ms_per_lookup"]) for r in case["rounds"]]
    s = {"concrete_cpu_ms_per_lookup": statistics.median(conc), "concrete_per_round": conc,
         "values_checked": sum(r["concrete"]["values_checked"] for r in case["rounds"]),
         "values_wrong": sum(r["concrete"]["values_wrong"] for r in case["rounds"]), "veil": {}}
    for sid in case["rounds"][0]["veil"]:
        one = [r["veil"][sid]["ks_pbs_ms"] for r in case["rounds"]]
        lock = [r["veil"][sid]["ks_pbs_lockstep_ms"] for r in case["rounds"]]
        s["veil"][sid] = {"ks_pbs_ms": statistics.median(one), "ks_pbs_lockstep_ms": statistics.median(lock),
                          "ratio_one_at_a_time_per_round": [c / v for c, v in zip(conc, one)],
                          "ratio_lockstep_per_round": [c / v for c, v in zip(conc, lock)]}
        s["veil"][sid]["ratio_one_at_a_time"] = statistics.median(s["veil"][sid]["ratio_one_at_a_time_per_round"])
        s["veil"][sid]["ratio_lockstep"] = statistics.median(s["veil"][sid]["ratio_lockstep_per_round"])
    case["summary"] = s


def print_table(doc):
    print("| w | Concrete config | Concrete n, k, N, l (KS l,b; PBS l,b) | Concrete ms / lookup | veil set | n, k, N, l "
          "| veil KS-PBS ms | Concrete / veil | veil lockstep ms | Concrete / lockstep | wrong |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in doc["cases"]:
        if "summary" not in c:
            continue
        p, s = c["concrete"]["params"], c["summary"]
        shape = "%s, %s, %s, %s (%s; %s)" % (p.get("lwe_dimension"), p.get("glwe_dimension"), p.get("polynomial_size"),
                                             (p.get("blind_rotate_level_base") or ["-"])[0],
                                             ",".join(map(str, p.get("keyswitch_level_base") or [])),
                                             ",".join(map(str, p.get("blind_rotate_level_base") or [])))
        for role, v in c["veil_sets"].items():
            f = s["veil"][v["id"]]
            print("| %d | %s | %s | %.2f | %s (%s) | %d, %d, %d, %d | %.2f | %.2f | %.2f | %.2f | %d/%d |" % (
                c["width"], c["config"], shape, s["concrete_cpu_ms_per_lookup"], v["id"], role, v["n"], v["k"], v["N"],
                v["l"], f["ks_pbs_ms"], f["ratio_one_at_a_time"], f["ks_pbs_lockstep_ms"], f["ratio_lockstep"],
                s["values_wrong"], s["values_checked"]))


if __name__ == "__main__":
    main()
