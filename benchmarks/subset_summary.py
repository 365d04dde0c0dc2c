"""Mean curves and mean-curve Bjontegaard deltas of a subset of a bench run's images.

    python benchmarks/subset_summary.py benchmarks/results/kodak --mode grey \\
        --images kodim01,kodim02,kodim03,kodim04,kodim05,kodim06 --targets 0.05,0.1,0.2,0.3 \\
        --anchors jpeg,jpeg2000,belhachmi

``inpcodec bench`` reports every codec over the images it ran; when a codec ran on a few
images only (the slow or new ones), this compares all codecs on exactly those images,
from the stored job rows (nothing is re-encoded).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from inpcodec.codec.bench.report import bd_mean_curves, mean_curves
from inpcodec.codec.bench.runner import load_all


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path, help="the bench's --out folder")
    ap.add_argument("--mode", default="grey")
    ap.add_argument("--images", required=True)
    ap.add_argument("--targets", default="0.05,0.1,0.2,0.3")
    ap.add_argument("--anchors", default="jpeg,jpeg2000,belhachmi")
    ap.add_argument("--codecs", default=None, help="default: all with every image")
    ap.add_argument("--extra", type=Path, action="append", default=[],
                    help="another bench --out folder whose rows join these (a new codec "
                    "run apart from the stored ones)")
    args = ap.parse_args()
    images = set(args.images.split(","))
    targets = [float(t) for t in args.targets.split(",")]
    rows = [r for out in [args.out, *args.extra] for r in load_all(out, args.mode)
            if r["image"] in images and r["target_bpp"] in targets]
    curves = {c: v for c, v in mean_curves(rows).items() if set(v["images"]) == images
              and len(v["points"]) == len(targets)}
    if args.codecs:
        curves = {c: v for c, v in curves.items() if c in args.codecs.split(",")}
    print(f"{args.mode}, {len(images)} images ({', '.join(sorted(images))}): mean real bpp /"
          " PSNR (dB) per target\n")
    print("| codec | " + " | ".join(f"{t:g} bpp" for t in targets) + " |")
    print("|---|" + "---|" * len(targets))
    for c, v in curves.items():
        print(f"| {c} | " + " | ".join(f"{p['bpp']:.3f} / {p['psnr']:.2f}"
                                       for p in v["points"]) + " |")
    anchors = [a for a in args.anchors.split(",") if a in curves]
    bd = bd_mean_curves(curves, anchors=anchors)
    print("\nMean-curve Bjontegaard deltas (pchip; in brackets the share of the range the "
          "two curves overlap):\n")
    print("| codec | " + " | ".join(f"BD-rate vs {a} | BD-PSNR vs {a}" for a in anchors)
          + " |")
    print("|---|" + "---:|" * (2 * len(anchors)))
    for c in curves:
        cells = []
        for a in anchors:
            r = bd.get((c, a))
            if r is None:
                cells += ["", ""]
                continue
            for key, unit, digits in (("bd_rate", " %", 1), ("bd_psnr", " dB", 2)):
                v = r[key]
                cells.append("-" if math.isnan(v) else
                             f"{v:+.{digits}f}{unit} ({r[key + '_overlap']:.0%})")
        print(f"| {c} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
