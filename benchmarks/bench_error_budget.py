"""Where the error of a tree file comes from, against JPEG 2000 at the same rate (issue 20).

    python benchmarks/bench_error_budget.py --kodak ../shared/data/kodak \\
        --files ../runs/files_budget --write-results

For every Kodak image (luma) and rate: the default encoder's file (read from ``--files``
as ``<image>_<bpp>.inpc``, encoded there when missing), its PSNR, where its bytes go
(split tree, values), and the PSNR of the same mask with the *continuous* optimal values
(tonal optimisation without a quantiser, tight tolerances): the best any value coder
could do with these points, its values free of charge.  Beside them JPEG 2000 (OpenJPEG
through Pillow, the quality whose file is closest to the rate, as ``inpcodec bench``).
If the continuous values on the file's mask stay below JPEG 2000, no coding of the
values can close the gap: only more points for the bits, or another interpolant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _results import command_line, default_file, write_section

from inpcodec.codec import decoder as D
from inpcodec.codec.bench.refcodecs import encode_at_rate, pillow_decode
from inpcodec.codec.io import load_image
from inpcodec.codec.metrics import psnr
from inpcodec.codec.pipeline import decode
from inpcodec.codec.tonal import tonal_optimisation


def budget(img, data):
    cont, params, mask_section, values = D.parse(data)
    (mask, _), = D.decode_masks(cont, params, mask_section, values)
    n = img.size
    free = tonal_optimisation(img.astype(np.float64), mask, tol=1e-3, solve_tol=1e-7)
    return {"bpp": 8 * len(data) / n, "mask_bpp": 8 * len(cont.section("MASK")) / n,
            "value_bpp": 8 * len(cont.section("VAL0")) / n, "points": int(mask.sum()),
            "levels": params.levels, "psnr": psnr(decode(data), img),
            "psnr_free": 10 * np.log10(255.0 ** 2 / free.mse)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", required=True, help="folder of the Kodak PNG images")
    ap.add_argument("--files", required=True, help="folder of the files (made if missing)")
    ap.add_argument("--bpp", default="0.1,0.3")
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    files = Path(args.files)
    files.mkdir(parents=True, exist_ok=True)
    rates = [float(b) for b in args.bpp.split(",")]
    rows = {b: [] for b in rates}
    for path in sorted(Path(args.kodak).glob("kodim*.png"))[: args.limit]:
        img = load_image(path, grey=True)
        for bpp in rates:
            r = budget(img, default_file(files, path.stem, bpp, img))
            j2k, _ = encode_at_rate(img, "jpeg2000", bpp)
            r["j2k_bpp"] = 8 * len(j2k) / img.size
            r["j2k"] = psnr(pillow_decode(j2k, True), img)
            rows[bpp].append(r)
            print(path.stem, bpp, {k: round(v, 3) for k, v in r.items()}, flush=True)
    lines = [f"Command: `{command_line()}`.", "",
             "Means over the images (luma): the file's rate and PSNR, the share of its "
             "bits in the split tree and in the values, its PSNR with the continuous "
             "optimal values on the same mask, JPEG 2000's at the same rate:", "",
             "| target | images | points | levels | bpp (tree / values) | PSNR | PSNR, "
             "continuous values | JPEG 2000 (bpp) | gap to JPEG 2000: quantisation + "
             "mask |",
             "|---|---:|---:|---:|---|---:|---:|---|---|"]
    for bpp, rs in rows.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
        quant, shape = m["psnr_free"] - m["psnr"], m["j2k"] - m["psnr_free"]
        below = sum(r["psnr_free"] < r["j2k"] for r in rs)
        lines.append(
            f"| {bpp:g} | {len(rs)} | {m['points']:.0f} | {m['levels']:.1f} | "
            f"{m['bpp']:.4f} ({m['mask_bpp'] / m['bpp']:.0%} / "
            f"{m['value_bpp'] / m['bpp']:.0%}) | {m['psnr']:.2f} | {m['psnr_free']:.2f} | "
            f"{m['j2k']:.2f} ({m['j2k_bpp']:.4f}) | {m['j2k'] - m['psnr']:.2f} dB = "
            f"{quant:.2f} + {shape:.2f} (continuous values below JPEG 2000 on {below} of "
            f"{len(rs)}) |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        write_section("bench_error_budget", "### Where the error comes from (issue 20)",
                      text)


if __name__ == "__main__":
    main()
