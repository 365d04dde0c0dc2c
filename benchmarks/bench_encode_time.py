"""Encode and decode time of the default encoder against the free masks, kodim23 in colour.

    NUMBA_NUM_THREADS=2 python benchmarks/bench_encode_time.py --kodak ../shared/data/kodak

Each encoder encodes twice at ``--bpp`` (rate search included, kernels warm, the
encoders' caches cleared before each encode); the decode is the median of 5.  All run in
the same process, so their times compare.  ``ENCODER:EFFORT`` picks the rate search's
effort (default: the codec's), ``ENCODER:EFFORT:nofilter`` writes the file without the
loop filter (section FILT).  ``--gan`` also times the decode with the GAN
post-processor (median of 3, after one warm-up) beside the plain decode of the same file.
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
    ap.add_argument("--gan", action="store_true", help="also time the GAN decode")
    args = ap.parse_args()
    img = np.asarray(Image.open(args.kodak / f"{args.image}.png").convert("RGB"))
    encode_report(img[:64, :64], bpp=0.5)  # warm the kernels
    for name in args.encoders.split(",") * 2:
        enc, effort, *flags = name.split(":") + [""]
        clear_caches()
        t = time.perf_counter()
        r = encode_report(img, encoder=enc, bpp=args.bpp, effort=effort or DEFAULT_EFFORT,
                          loop_filter="nofilter" not in flags)
        seconds = time.perf_counter() - t
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            inpcodec.decode(r.data)
            ts.append(time.perf_counter() - t)
        print(f"{name}: encode {seconds:.1f} s, decode median {np.median(ts):.3f} s, "
              f"{r.bpp:.4f} bpp, PSNR {r.psnr:.2f} dB, levels {r.levels}/{r.chroma_levels}")
        if args.gan:
            inpcodec.decode(r.data, postprocess="gan")  # load the weights
            gs = []
            for _ in range(3):
                t = time.perf_counter()
                inpcodec.decode(r.data, postprocess="gan")
                gs.append(time.perf_counter() - t)
            print(f"{name}: decode with the GAN median {np.median(gs):.2f} s "
                  f"({np.median(gs) / np.median(ts):.1f}x the plain decode)")


if __name__ == "__main__":
    main()
