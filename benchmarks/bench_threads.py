"""Two inpcodec processes at once against the same two one after the other.

    python benchmarks/bench_threads.py IMAGE [--threads N ...] [--repeat K]

For each thread setting: the wall time of two ``inpcodec encode`` (then two ``inpcodec
decode``) processes started together on this machine's cores, over the wall time of the
same two run one after the other; and one alone.  With ``--threads`` given several times,
each setting is measured in the same run, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(cmds):
    t = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in cmds]
    if any(p.wait() for p in procs):
        sys.exit(f"failed: {cmds}")
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("--threads", action="append", default=None,
                    help="thread settings to compare (default: the default and 2)")
    ap.add_argument("--extra", default="", help="more encode options, e.g. '--bpp 0.1'")
    a = ap.parse_args()
    exe = str(Path(sys.executable).with_name("inpcodec"))
    settings = a.threads or ["default", "2"]
    with tempfile.TemporaryDirectory() as tmp:
        files = [f"{tmp}/{i}.inpc" for i in range(2)]
        print("| threads | job | one alone (s) | two one after the other (s) | two at once (s) "
              "| at once / after |")
        print("|---|---|---:|---:|---:|---:|")
        for th in settings:
            opt = [] if th == "default" else ["--threads", th]
            enc = [[exe, "encode", a.image, f, "--quiet", *opt, *a.extra.split()]
                   for f in files]
            dec = [[exe, "decode", f, f + ".png", "--quiet", *opt] for f in files]
            for job, cmds in (("encode", enc), ("decode", dec)):
                if job == "decode":  # a decode is short: ten in a row per process
                    cmds = [["sh", "-c", " && ".join([" ".join(c)] * 10)] for c in cmds]
                alone = _run(cmds[:1])
                after = _run(cmds[:1]) + _run(cmds[1:])
                once = _run(cmds)
                print(f"| {th} | {job}{' x10' if job == 'decode' else ''} | {alone:.2f} | "
                      f"{after:.2f} | {once:.2f} | {once / after:.2f} |", flush=True)


if __name__ == "__main__":
    main()
