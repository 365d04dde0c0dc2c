"""Does a sparser chroma mask pay?  Rate-distortion of chroma on a subset of the luma mask.

    python benchmarks/bench_chroma.py --kodak ../shared/data/kodak --write-results

The codec stores Cb and Cr at every luma mask point (with half the luma's quantisation
levels).  The alternative measured here stores chroma only at every k-th luma point in
Morton (Z-curve) order: a subset the decoder can derive from the mask, so it costs no
mask bits, spreads evenly over the image, and divides the chroma value bits by about k.
For each image, density and k: Belhachmi mask on the luma, tonal optimisation with the
quantiser in the loop (luma on the mask, chroma on its subset), the real mask and value
coders for the sizes (plus the fixed 66-byte container), and the RGB PSNR of the decoded,
rounded image.  The RD curves of each k are compared with k = 1 by their Bjontegaard
deltas (the ``bjontegaard`` package: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _results import write_section

HERE = Path(__file__).resolve().parent
MARK = "bench_chroma"
CONTAINER_BYTES = 66  # colour file: fixed header, 5 section heads, PARM payload, CRC


def morton_subset(mask: np.ndarray, k: int) -> np.ndarray:
    """Every k-th point of the mask in Z-curve order (the first one included)."""
    if k == 1:
        return mask.copy()
    ys, xs = np.nonzero(mask)
    code = np.zeros(ys.size, np.int64)
    for b in range(16):
        code |= ((xs >> b) & 1).astype(np.int64) << (2 * b)
        code |= ((ys >> b) & 1).astype(np.int64) << (2 * b + 1)
    keep = np.argsort(code, kind="stable")[::k]
    sub = np.zeros_like(mask)
    sub[ys[keep], xs[keep]] = True
    return sub


def run_case(rgb, density, k, levels, chroma_levels):
    from inpcodec.baselines import belhachmi_mask, tonal_optimisation
    from inpcodec.bitstreams.mask_coder import encode_mask
    from inpcodec.bitstreams.value_coder import encode_values
    from inpcodec.codec import inpaint
    from inpcodec.codec.colour import rgb_to_ycbcr, ycbcr_to_rgb
    from inpcodec.codec.quantiser import quantise, quantiser

    ycc = rgb_to_ycbcr(rgb)
    mask = belhachmi_mask(ycc[..., 0], density).mask
    sub = morton_subset(mask, k)
    nbytes = CONTAINER_BYTES + 4 * encode_mask(mask).size
    out = np.empty_like(ycc)
    for sl, m, q in ((slice(0, 1), mask, levels), (slice(1, 3), sub, chroma_levels)):
        part = ycc[..., sl]
        vals = tonal_optimisation(part, m, levels=quantiser(q)).values[m]
        recon = np.zeros_like(part)
        for c in range(vals.shape[1]):
            qv = quantise(vals[:, c], q)
            nbytes += 4 * encode_values(m, qv, q).size
            recon[..., c][m] = qv * (255.0 / (q - 1))
        out[..., sl] = inpaint(recon, m)
    dec = np.clip(np.rint(ycbcr_to_rgb(out)), 0, 255)
    mse = np.mean((dec - rgb.astype(np.float64)) ** 2)
    return {"bpp": 8.0 * nbytes / mask.size, "psnr": float(10 * np.log10(255**2 / mse)),
            "points": int(mask.sum()), "chroma_points": int(sub.sum())}


def bd_gain(curve, ref):
    """Bjontegaard deltas of ``curve`` against ``ref``: (PSNR in dB, rate in %)."""
    import bjontegaard as bd

    (r1, p1), (r0, p0) = zip(*sorted(curve), strict=True), zip(*sorted(ref), strict=True)
    return (bd.bd_psnr(r0, p0, r1, p1, method="pchip"),
            bd.bd_rate(r0, p0, r1, p1, method="pchip"))


def main():
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--kodak-images", default="kodim05,kodim13,kodim23")
    ap.add_argument("--densities", default="0.5,1,2,4", help="percent")
    ap.add_argument("--k", default="1,2,4", help="chroma subset factors")
    ap.add_argument("--levels", type=int, default=64)
    ap.add_argument("--chroma-levels", type=int, default=32)
    ap.add_argument("--out", default=str(HERE / "results" / "chroma.jsonl"))
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    done = {(r["image"], r["density"], r["k"]) for r in rows}
    ks = [int(x) for x in args.k.split(",")]
    densities = [float(x) / 100 for x in args.densities.split(",")]
    for name in args.kodak_images.split(","):
        with Image.open(Path(args.kodak) / f"{name}.png") as im:
            rgb = np.asarray(im.convert("RGB"))
        for d in densities:
            for k in ks:
                if (name, d, k) in done:
                    continue
                t0 = time.perf_counter()
                r = {"image": name, "density": d, "k": k,
                     **run_case(rgb, d, k, args.levels, args.chroma_levels)}
                r["seconds"] = time.perf_counter() - t0
                rows.append(r)
                with out.open("a") as fh:
                    fh.write(json.dumps(r) + "\n")
                print(json.dumps(r), flush=True)
    names = sorted({r["image"] for r in rows})
    others = [k for k in ks if k != 1]
    lines = [f"Belhachmi masks + tonal optimisation, luma {args.levels} levels, chroma "
             f"{args.chroma_levels} levels, densities {args.densities} %; chroma at every "
             f"k-th luma point (Z-order).  Bjontegaard deltas against k = 1 (chroma at "
             "every luma point), `bjontegaard` package, PCHIP: BD-PSNR in dB (positive = "
             "the sparser chroma pays) / BD-rate in % (negative = pays):", "",
             "| image | " + " | ".join(f"k = {k}" for k in others) + " |",
             "|---" * len(ks) + "|"]
    for name in names:
        curve = {k: [(r["bpp"], r["psnr"]) for r in rows if r["image"] == name and r["k"] == k]
                 for k in ks}
        cells = [bd_gain(curve[k], curve[1]) for k in others]
        lines.append(f"| {name} | " + " | ".join(f"{p:+.2f} dB / {r:+.1f} %" for p, r in cells)
                     + " |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        cmd = "python benchmarks/bench_chroma.py " + " ".join(
            a for a in __import__("sys").argv[1:] if a != "--write-results")
        write_section(MARK, "## Chroma on a sparser mask (issue 4)",
                      f"`{cmd} --write-results`\n\n{text}")


if __name__ == "__main__":
    main()
