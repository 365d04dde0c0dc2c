"""Belhachmi masks: the Gaussian pre-smoothing scale against the density.

    python benchmarks/bench_belhachmi_sigma.py --kodak ../shared/data/kodak --write-results

PSNR of homogeneous diffusion inpainting (original values) from Belhachmi masks with
sigma = 1, 2, 3, 4 and the default "auto" (0.35 / sqrt(density)), on the 256 x 256
cameraman and the centre 256 x 256 luma crops of six Kodak images, with random masks of
the same density for reference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _results import write_section

KODAK = ["kodim01", "kodim05", "kodim08", "kodim13", "kodim19", "kodim23"]


def main():
    from PIL import Image
    from skimage.transform import resize

    from inpcodec.baselines import belhachmi_mask
    from inpcodec.codec import inpaint
    from inpcodec.codec.data import cameraman

    ap = argparse.ArgumentParser()
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    imgs = [resize(cameraman().astype(float), (256, 256), order=3, anti_aliasing=True)]
    for k in KODAK:
        g = np.asarray(Image.open(Path(args.kodak) / f"{k}.png").convert("L"), float)
        h, w = g.shape
        imgs.append(g[(h - 256) // 2:(h + 256) // 2, (w - 256) // 2:(w + 256) // 2])
    sigmas = [1.0, 2.0, 3.0, 4.0, "auto"]
    lines = ["Command: `python benchmarks/bench_belhachmi_sigma.py --kodak ../shared/data/kodak "
             "--write-results` (cameraman 256 x 256 and 6 Kodak crops: "
             f"{', '.join(KODAK)}; mean PSNR in dB, original values, no tonal optimisation).",
             "", "| density | random | " + " | ".join(f"sigma {s}" for s in sigmas) + " |",
             "|---:|" + "---:|" * (len(sigmas) + 1)]
    for d in (0.01, 0.02, 0.03, 0.04, 0.05, 0.10):
        cells = []
        rnd = []
        for f in imgs:
            rng = np.random.default_rng(0)
            m = np.zeros(f.size, bool)
            m[rng.choice(f.size, round(d * f.size), replace=False)] = True
            u = inpaint(f, m.reshape(f.shape))
            rnd.append(10 * np.log10(255**2 / np.mean((u - f) ** 2)))
        for s in sigmas:
            vals = []
            for f in imgs:
                m = belhachmi_mask(f, d, sigma=s).mask
                u = inpaint(f, m)
                vals.append(10 * np.log10(255**2 / np.mean((u - f) ** 2)))
            cells.append(f"{np.mean(vals):.2f}")
        lines.append(f"| {d * 100:g} % | {np.mean(rnd):.2f} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        write_section("bench_belhachmi_sigma", "### Belhachmi: pre-smoothing scale", text)


if __name__ == "__main__":
    main()
