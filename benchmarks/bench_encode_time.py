"""Encode and decode time of the default encoder against the free masks, kodim23 in colour.

    NUMBA_NUM_THREADS=2 python benchmarks/bench_encode_time.py --kodak ../shared/data/kodak

Each encoder encodes twice at ``--bpp`` (rate search included, kernels warm, the
encoders' caches cleared before each encode); the decode is the median of 5.  All run in
the same process, so their times compare.  ``ENCODER:EFFORT`` picks the rate search's
effort (default: the codec's).
"""

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

import inpcodec
from inpcodec.codec.encoders import clear_caches
from inpcodec.codec.pipeline import encode_report
from inpcodec.codec.rate import DEFAULT_EFFORT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kodak", type=Path, required=True)
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--bpp", type=float, default=0.1)
    ap.add_argument("--encoders", default="tree,tree:best,belhachmi")
    args = ap.parse_args()
    img = np.asarray(Image.open(args.kodak / f"{args.image}.png").convert("RGB"))
    encode_report(img[:64, :64], bpp=0.5)  # warm the kernels
    for name in args.encoders.split(",") * 2:
        enc, _, effort = name.partition(":")
        clear_caches()
        t = time.perf_counter()
        r = encode_report(img, encoder=enc, bpp=args.bpp, effort=effort or DEFAULT_EFFORT)
        seconds = time.perf_counter() - t
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            inpcodec.decode(r.data)
            ts.append(time.perf_counter() - t)
        print(f"{name}: encode {seconds:.1f} s, decode median {np.median(ts):.3f} s, "
              f"{r.bpp:.4f} bpp, PSNR {r.psnr:.2f} dB, levels {r.levels}/{r.chroma_levels}")


if __name__ == "__main__":
    main()
