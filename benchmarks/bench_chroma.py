"""Does a coarser chroma tree pay?  Rate-distortion of chroma on a merged luma tree.

    python benchmarks/bench_chroma.py --kodak ../shared/data/kodak --write-results

A colour tree file may store Cb and Cr on the luma's tree with its bottom splits merged
k times (``codec.format.encode_with_mask(chroma_merges=k)``, section CTRE): each
merge halves the tree's resolution everywhere, as 4:2:0 subsampling does for a pixel
grid, and divides the chroma points by about 3-4.  k = 0 stores chroma at every luma
point (format version 2).  For each image and density: the default tree encoder's mask
on the luma, then one real file per variant (k and chroma levels; luma levels fixed,
tonal optimisation with the quantiser in the loop for every channel) and the RGB PSNR of
the real decoder's output.  The curves of each variant are compared with the first by
their Bjontegaard deltas (the ``bjontegaard`` package, PCHIP).  Rows go to a JSON-lines
file and are skipped when present (resumable).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from _results import command_line, write_section

HERE = Path(__file__).resolve().parent
MARK = "bench_chroma"


def parse_variants(text: str) -> list[tuple[int, int]]:
    """"0:8,1:8" -> [(merges, chroma levels), ...]."""
    out = []
    for part in text.split(","):
        k, q = part.split(":")
        out.append((int(k), int(q)))
    return out


def run_case(rgb, density, variants, levels):
    from inpcodec.codec.decoder import decode, info
    from inpcodec.codec.encoders import get_encoder
    from inpcodec.codec.format import encode_with_mask, planes_of
    from inpcodec.codec.metrics import psnr
    from inpcodec.codec.pipeline import DEFAULT_ENCODER

    planes = planes_of(rgb, 1)
    found = get_encoder(DEFAULT_ENCODER).make(planes[:, :, 0], density)
    rows = []
    for k, clv in variants:
        data, _, _ = encode_with_mask(rgb, planes, found, levels, clv, True, chroma_merges=k)
        i = info(data)
        rows.append({"merges": k, "chroma_levels": clv, "bpp": 8.0 * len(data) / rgb[..., 0].size,
                     "psnr": psnr(decode(data), rgb), "points": i.points,
                     "chroma_points": i.chroma_points,
                     "bytes_luma": i.bytes_values[0], "bytes_chroma": sum(i.bytes_values[1:])})
    return rows


def bd_gain(curve, ref):
    """Bjontegaard deltas of ``curve`` against ``ref``: (PSNR in dB, rate in %); the rate
    is NaN where the PSNR ranges do not overlap."""
    import bjontegaard as bd

    (r1, p1), (r0, p0) = zip(*sorted(curve), strict=True), zip(*sorted(ref), strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partial overlaps: the table says where
        return (bd.bd_psnr(r0, p0, r1, p1, method="pchip", min_overlap=0),
                bd.bd_rate(r0, p0, r1, p1, method="pchip", min_overlap=0))


def _cell(g):
    rate = "no overlap" if not np.isfinite(g[1]) else f"{g[1]:+.1f} %"
    return f"{g[0]:+.2f} dB / {rate}"


def main():
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--images", default="kodim01,kodim02,kodim03,kodim04,kodim05,kodim06")
    ap.add_argument("--densities", default="0.6,1.2,2.4,3.6",
                    help="percent of the pixels as luma points (about 0.05-0.3 bpp)")
    ap.add_argument("--variants", default="0:8,1:8,2:8,1:16",
                    help="merges:chroma levels, the first is the reference")
    ap.add_argument("--levels", type=int, default=16, help="luma levels")
    ap.add_argument("--out", default=str(HERE / "results" / "chroma_tree.jsonl"))
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    variants = parse_variants(args.variants)
    densities = [float(x) / 100 for x in args.densities.split(",")]
    names = args.images.split(",")
    for name in names:
        with Image.open(Path(args.kodak) / f"{name}.png") as im:
            rgb = np.asarray(im.convert("RGB"))
        for d in densities:
            todo = [v for v in variants if not any(
                (r["image"], r["density"], r["merges"], r["chroma_levels"], r["levels"])
                == (name, d, *v, args.levels) for r in rows)]
            if not todo:
                continue
            t0 = time.perf_counter()
            new = run_case(rgb, d, todo, args.levels)
            for r in new:
                r.update(image=name, density=d, levels=args.levels,
                         seconds=(time.perf_counter() - t0) / len(new))
                rows.append(r)
                with out.open("a") as fh:
                    fh.write(json.dumps(r) + "\n")
                print(json.dumps(r), flush=True)
    ref, others = variants[0], variants[1:]

    def curve(name, v):
        return [(r["bpp"], r["psnr"]) for r in rows if r["image"] == name
                and (r["merges"], r["chroma_levels"], r["levels"]) == (*v, args.levels)]

    head = [f"k = {k}, Qc = {q}" for k, q in others]
    lines = [f"Kodak colour, the default tree encoder's masks at {args.densities} % luma "
             f"points, luma {args.levels} levels, tonal optimisation; chroma on the luma "
             f"tree merged k times with Qc levels.  Bjontegaard deltas against k = "
             f"{ref[0]}, Qc = {ref[1]} (`bjontegaard`, PCHIP; RGB PSNR): BD-PSNR in dB "
             "(positive = pays) / BD-rate in % (negative = pays); last row: chroma share "
             "of the file and chroma points per luma point at the middle density.", "",
             "| image | " + " | ".join(head) + " |", "|---" * (len(others) + 1) + "|"]
    gains = {v: [] for v in others}
    for name in names:
        cells = []
        for v in others:
            g = bd_gain(curve(name, v), curve(name, ref))
            gains[v].append(g)
            cells.append(_cell(g))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| mean | " + " | ".join(
        _cell((np.mean([g[0] for g in gains[v]]), np.mean([g[1] for g in gains[v]])))
        for v in others) + " |")
    mid = densities[len(densities) // 2]
    share = []
    for v in variants:
        sel = [r for r in rows if r["density"] == mid and r["image"] in names
               and (r["merges"], r["chroma_levels"], r["levels"]) == (*v, args.levels)]
        total = sum(r["bytes_luma"] + r["bytes_chroma"] for r in sel)
        share.append((sum(r["bytes_chroma"] for r in sel) / total,
                      sum(r["chroma_points"] for r in sel) / sum(r["points"] for r in sel)))
    lines.append("")
    lines.append("Chroma share of the value bytes / chroma points per luma point at "
                 f"{mid * 100:g} %: " + "; ".join(
                     f"k = {k}, Qc = {q}: {s:.0%} / {p:.2f}"
                     for (k, q), (s, p) in zip(variants, share, strict=True)))
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        cmd = command_line()
        write_section(MARK, "### Chroma on a coarser tree (issue 20)",
                      f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')})\n\n{text}")


if __name__ == "__main__":
    main()
