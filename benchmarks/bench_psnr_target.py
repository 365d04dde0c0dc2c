"""Encoding to a PSNR target (`inpcodec encode --psnr`): how close, how many encodes, how long.

    python benchmarks/bench_psnr_target.py --data ../shared/data/kodak --images \
        kodim03,kodim15,kodim23 --targets 26,29,32 --write-results

The targets there ask for 0.015-0.41 bpp, about the codec's range; a textured image needs
much more for the same PSNR (kodim01 in grey: 0.37 bpp for 26 dB, 0.89 bpp for 30 dB),
and the encodes at such rates take longer.

For every image (grey and colour) and target: the search's file (real bpp and PSNR of its
real decoding), the encodes it made, its time, and as the reference measured in the same
run the time of one encode at the rate it found (``--bpp``, the file a user who knew the
rate would make).  Timings are reported as that ratio (the machines are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _results import command_line, write_section

from inpcodec.codec import pipeline as P
from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder of the test images")
    ap.add_argument("--images", default=None, help="comma-separated stems (default: all)")
    ap.add_argument("--targets", default="26,30,34", help="PSNR targets in dB")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    paths = find_images([args.data])
    if args.images:
        keep = args.images.split(",")
        paths = [p for p in paths if p.stem in keep]
    targets = [float(t) for t in args.targets.split(",")]
    rows = []
    for path in paths:
        rgb = load_image(path)
        for mode in ("grey", "colour"):
            img = rgb if mode == "colour" else np.clip(np.rint(luma(rgb)), 0, 255).astype(
                np.uint8)
            for t in targets:
                t0 = time.perf_counter()
                r = P.encode_report(img, psnr=t)
                search = time.perf_counter() - t0
                t1 = time.perf_counter()
                P.encode_report(img, bpp=r.bpp)
                single = time.perf_counter() - t1
                rows.append(dict(image=path.stem, mode=mode, target=t, bpp=r.bpp,
                                 psnr=r.psnr, encodes=len(r.psnr_search),
                                 ratio=search / single))
                print(rows[-1], flush=True)
    lines = [
        f"Command: `{command_line()} --write-results` · {time.strftime('%Y-%m-%d')}.",
        "",
        "Per image and target: real bpp / PSNR (dB) of the file found, the encodes the "
        "search made, and its time over one `--bpp` encode at the rate it found (same run).",
        "",
        "| image | mode | " + " | ".join(f"{t:g} dB" for t in targets) + " |",
        "|---|---|" + "---|" * len(targets),
    ]
    for path in paths:
        for mode in ("grey", "colour"):
            cells = []
            for t in targets:
                r = next(x for x in rows if x["image"] == path.stem and x["mode"] == mode
                         and x["target"] == t)
                cells.append(f"{r['bpp']:.3f} / {r['psnr']:.2f}, {r['encodes']} encodes, "
                             f"{r['ratio']:.1f}x")
            lines.append(f"| {path.stem} | {mode} | " + " | ".join(cells) + " |")
    over = [r["psnr"] - r["target"] for r in rows]
    lines += [
        "",
        f"Every file reaches its target: {all(o >= 0 for o in over)}; PSNR above the target: "
        f"median {statistics.median(over):.3f} dB, at most {max(over):.3f} dB. Encodes per "
        f"search: median {statistics.median(r['encodes'] for r in rows):g}, at most "
        f"{max(r['encodes'] for r in rows)}; time over one encode at the rate found: median "
        f"{statistics.median(r['ratio'] for r in rows):.1f}x.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        write_section("bench_psnr_target", "## Encoding to a PSNR target (`--psnr`)", text)


if __name__ == "__main__":
    main()
