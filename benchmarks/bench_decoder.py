"""Decoder benchmark: homogeneous diffusion inpainting solvers, time / iterations / memory.

    python benchmarks/bench_decoder.py                    # full table (about 5 minutes)
    python benchmarks/bench_decoder.py --write-results    # also update benchmarks/RESULTS.md
    python benchmarks/bench_decoder.py --sizes 512x512 --repeats 3   # quick look

For every image size and mask (4 % random; 4 % "Belhachmi-like": density proportional to
the Laplacian magnitude of the Gaussian-smoothed image, sampled by a seeded coin flip) and
every solver, a fresh worker process decodes the image ``--repeats`` times and reports the
median time of a whole decode (set-up for the mask + solve), its parts, the CG
iterations, the final relative residual, and the peak resident memory of the decode
(Linux VmHWM, reset just before).  Speed-ups over ``direct`` are taken within the same run.
The time is also given in *sweep-equivalents*: the decode time divided by the time of one
parallel Numba 5-point stencil sweep over an array of that size, measured in the same
worker, i.e. how many plain stencil passes the whole decode costs.

The image is the scikit-image cameraman resized to each size (bundled, no data folder).
The first-call rows time a fresh process: with an empty Numba cache (compilation) and with
the cache warm (loading the compiled kernels), against the steady-state decode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_section

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- worker side


def make_case(h: int, w: int, kind: str, density: float = 0.04):
    from scipy.ndimage import gaussian_filter, laplace
    from skimage import data
    from skimage.transform import resize

    f = resize(data.camera().astype(np.float64), (h, w), order=3, anti_aliasing=True)
    rng = np.random.default_rng(0)
    if kind == "random":
        mask = rng.random((h, w)) < density
    else:
        lap = np.abs(laplace(gaussian_filter(f, 1.0)))
        p = np.clip(lap / lap.mean() * density, 0.0, 1.0)
        mask = rng.random((h, w)) < p
    return f, mask


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def sweep_time(h: int, w: int) -> float:
    import numba

    @numba.njit(parallel=True, cache=False)
    def sweep(x, y):
        for i in numba.prange(1, x.shape[0] - 1):
            for j in range(1, x.shape[1] - 1):
                y[i, j] = 4.0 * x[i, j] - x[i - 1, j] - x[i + 1, j] - x[i, j - 1] - x[i, j + 1]

    x = np.random.default_rng(1).random((h + 2, w + 2))
    y = np.zeros_like(x)
    sweep(x, y)
    times = []
    for _ in range(max(20, int(2e8 / (h * w)))):
        t0 = time.perf_counter()
        sweep(x, y)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def worker(args) -> dict:
    t_start = time.perf_counter()
    from inpcodec.codec import Inpainter

    h, w = args.size
    f, mask = make_case(h, w, args.kind)
    out = {"size": f"{w}x{h}", "kind": args.kind, "solver": args.solver,
           "density": float(mask.mean())}
    if args.first_call:  # one decode in this fresh process: import + JIT load/compile + solve
        t0 = time.perf_counter()
        Inpainter(mask, solver=args.solver).solve(f)
        out["first_call"] = time.perf_counter() - t0
        out["process"] = time.perf_counter() - t_start
        return out
    Inpainter(mask, solver=args.solver).solve(f)  # warm-up (kernels loaded, pages touched)
    totals, setups, solves, peaks, extra = [], [], [], [], []
    for _ in range(args.repeats):
        before = _rss_mb("VmRSS")
        _reset_peak()
        t0 = time.perf_counter()
        ip = Inpainter(mask, solver=args.solver)
        u, info = ip.solve(f, return_info=True)
        totals.append(time.perf_counter() - t0)
        peaks.append(_rss_mb("VmHWM"))
        extra.append(peaks[-1] - before)
        setups.append(info.setup_time)
        solves.append(info.solve_time)
        del ip, u
    out.update(time=float(np.median(totals)), setup=float(np.median(setups)),
               solve=float(np.median(solves)), iterations=info.iterations,
               residual=info.residual, levels=info.levels, peak_rss_mb=max(peaks),
               peak_extra_mb=max(extra), repeats=args.repeats)
    if args.solver != "direct":
        out["sweep"] = sweep_time(h, w)
    return out


# ----------------------------------------------------------------------------- driver side


def run_worker(size, kind, solver, repeats, first_call=False, env=None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--sizes", f"{size[1]}x{size[0]}",
           "--kind", kind, "--solver", solver, "--repeats", str(repeats)]
    if first_call:
        cmd.append("--first-call")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"worker failed: {' '.join(cmd)}\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def parse_size(text: str):
    w, h = (int(v) for v in text.lower().split("x"))
    return (h, w)


def machine() -> str:
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Numba {numba.__version__} with "
            f"{numba.config.NUMBA_NUM_THREADS} threads, NumPy {np.__version__}, "
            f"Python {platform.python_version()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="256x256,512x512,768x512,3840x2160",
                    help="comma-separated WIDTHxHEIGHT")
    ap.add_argument("--solvers", default="numba,direct")
    ap.add_argument("--repeats", type=int, default=5, help="runs per fast-solver cell")
    ap.add_argument("--direct-repeats", type=int, default=3)
    ap.add_argument("--direct-max-pixels", type=int, default=1_000_000,
                    help="skip the direct solver above this size")
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--first-call", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="random", help=argparse.SUPPRESS)
    ap.add_argument("--solver", default="numba", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if args.worker:
        args.size = sizes[0]
        print(json.dumps(worker(args)))
        return

    solvers = args.solvers.split(",")
    from inpcodec.codec import gpu_status

    if "cupy" not in solvers and gpu_status()[0]:
        solvers.insert(1, "cupy")
    rows = []
    for size in sizes:
        for kind in ("random", "structured"):
            ref = None
            cells = []
            for solver in solvers:
                if solver == "direct" and size[0] * size[1] > args.direct_max_pixels:
                    continue
                reps = args.direct_repeats if solver == "direct" else args.repeats
                r = run_worker(size, kind, solver, reps)
                print(json.dumps(r), file=sys.stderr)
                cells.append(r)
                if solver == "direct":
                    ref = r["time"]
            for r in cells:
                r["speedup"] = ref / r["time"] if ref else None
            rows += cells

    # first call: empty cache (compile) and warm cache (load), 512x512 random
    first = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        first.append(("empty Numba cache (compile)",
                      run_worker((512, 512), "random", "numba", 1, True, env)))
        first.append(("warm Numba cache (load)",
                      run_worker((512, 512), "random", "numba", 1, True, env)))
    steady = next((r["time"] for r in rows if r["size"] == "512x512" and r["kind"] == "random"
                   and r["solver"] == "numba"), None)
    text = render(rows, first, steady, args)
    print(text)
    if args.write_results:
        write_results(text, gpu="cupy" in solvers)


def render(rows, first, steady, args) -> str:
    cmd = "python benchmarks/bench_decoder.py" + (
        f" --sizes {args.sizes}" if args.sizes != "256x256,512x512,768x512,3840x2160" else "") + (
        f" --solvers {args.solvers}" if args.solvers != "numba,direct" else "")
    lines = [
        f"Command: `{cmd} --write-results` · machine: {machine()} · "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        "Median of the repeats; *time* is a whole decode (set-up for the mask + solve); "
        "*sweeps* is that time in units of one parallel 5-point stencil sweep of the same "
        "size measured in the same worker; *peak RSS* is the process's resident-memory "
        "high-water mark during the decode (the interpreter and libraries included), "
        "*extra* the part above the resident memory just before it; tolerance 1e-6.",
        "",
        "| size | mask | solver | time (ms) | set-up (ms) | solve (ms) | iterations | "
        "residual | levels | sweeps | peak RSS (MB) | extra (MB) | speed-up vs direct |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sweeps = f"{r['time'] / r['sweep']:.0f}" if r.get("sweep") else "-"
        speed = f"{r['speedup']:.0f}x" if r.get("speedup") and r["solver"] != "direct" else "-"
        mask = f"{r['kind']} {r['density'] * 100:.1f} %"
        lines.append(
            f"| {r['size']} | {mask} | {r['solver']} | {r['time'] * 1e3:.1f} | "
            f"{r['setup'] * 1e3:.1f} | {r['solve'] * 1e3:.1f} | {r['iterations']} | "
            f"{r['residual']:.1e} | {r['levels']} | {sweeps} | {r['peak_rss_mb']:.0f} | "
            f"{r['peak_extra_mb']:.0f} | {speed} |")
    lines += ["", "First call in a fresh process (512x512, 4 % random, numba): "]
    for label, r in first:
        lines.append(f"- {label}: first decode {r['first_call']:.2f} s "
                     f"(whole process incl. imports {r['process']:.2f} s)")
    if steady:
        lines.append(f"- steady state, same case: {steady * 1e3:.1f} ms")
    return "\n".join(lines)


def write_results(text: str, gpu: bool) -> None:
    """The CPU table and the table of a machine with a CUDA GPU are kept apart."""
    if gpu:
        write_section("bench_decoder_gpu", "### Decoder on a CUDA GPU (CuPy) beside Numba", text)
    else:
        write_section("bench_decoder", "## Decoder (homogeneous diffusion inpainting)", text)


if __name__ == "__main__":
    main()
