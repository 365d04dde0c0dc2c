"""The Lagrangian encoder against the rate-search default it replaced, and its speed.

For each image and mode: the new default at each target rate (``encode(bpp=...)``), its
PSNR beside the rate-search default's stored curve (``benchmarks/results/kodak/<mode>/
results.csv``, codec ``tree-rdo-fast``, format 7) interpolated in log rate to the new
file's own rate, its solves, and its encode time over the time of Pillow's AVIF encode
(default speed, the largest quality whose file is no larger) of the same image in the
same run.

    python benchmarks/bench_lagrangian.py ../shared/data/kodak --images kodim03,kodim23 \
        --bpp 0.1,0.2 --threads 1
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inpcodec.codec.bench.refcodecs import pillow_encode
from inpcodec.codec.pipeline import encode_report

STORED = Path(__file__).parent / "results" / "kodak"


def _old_curve(image: str, mode: str):
    rows = [r for r in csv.DictReader(open(STORED / mode / "results.csv"))
            if r["image"] == image and r["codec"] == "tree-rdo-fast" and not r["error"]]
    pts = sorted((float(r["bpp"]), float(r["psnr"])) for r in rows)
    return np.log2([p[0] for p in pts]), np.array([p[1] for p in pts])


def _avif_seconds(img, max_bytes):
    """Seconds of Pillow's AVIF encode at the largest quality whose file fits."""
    best = 0
    for q in range(0, 101, 5):
        if len(pillow_encode(img, "avif", q)) <= max_bytes:
            best = q
    t = time.perf_counter()
    pillow_encode(img, "avif", best)
    return time.perf_counter() - t, best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--images", default="kodim03,kodim05,kodim13,kodim23")
    ap.add_argument("--bpp", default="0.1,0.2")
    ap.add_argument("--modes", default="grey,colour")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    print("| image | mode | target bpp | bpp | PSNR | old default at that rate | delta dB "
          "| solves | solve eq. | encode s | / AVIF |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    deltas = []
    for name in a.images.split(","):
        for mode in a.modes.split(","):
            img = np.asarray(Image.open(Path(a.folder) / f"{name}.png")
                             .convert("L" if mode == "grey" else "RGB"))
            x, y = _old_curve(name, mode)
            for b in map(float, a.bpp.split(",")):
                r = encode_report(img, bpp=b, threads=a.threads)
                old = float(np.interp(np.log2(r.bpp), x, y))
                avif_s, _ = _avif_seconds(img, len(r.data))
                deltas.append(r.psnr - old)
                print(f"| {name} | {mode} | {b} | {r.bpp:.4f} | {r.psnr:.2f} | {old:.2f} | "
                      f"{r.psnr - old:+.2f} | {r.solves} | {r.solve_equivalents:.1f} | "
                      f"{r.encode_seconds:.2f} | {r.encode_seconds / avif_s:.1f}x |",
                      flush=True)
    print(f"\nmean delta {np.mean(deltas):+.3f} dB over {len(deltas)} files")


if __name__ == "__main__":
    main()
