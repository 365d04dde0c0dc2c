"""Tonal optimisation inside the codec: accuracy against time of its stopping rules.

    python benchmarks/bench_tonal_settings.py --kodak ../shared/data/kodak --write-results

PSNR and time of quantised tonal optimisation (`baselines.tonal_optimisation` with the
codec's quantiser) on full 768 x 512 Kodak luma images with Belhachmi masks, for the CGLS
tolerance and refinement-sweep limits the codec could use; one Numba thread, as the bench
jobs run.  Times are reported as ratios to the tightest setting measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _results import write_section

# (image, density, luma levels): the densities and level counts the rate search picks for
# these images at about 0.05, 0.2 and 0.5 bpp.
CASES = [("kodim01", 0.003, 8), ("kodim05", 0.018, 8), ("kodim13", 0.03, 16),
         ("kodim23", 0.05, 32)]
#: (CGLS tol, max refinement sweeps); the first is the reference.
SETTINGS = [(1e-2, 8), (3e-2, 3), (3e-2, 1), (3e-2, 0)]


def main():
    import numba
    from PIL import Image

    from inpcodec.baselines import tonal_optimisation
    from inpcodec.codec.encoders import make_mask
    from inpcodec.codec.format import TONAL_SOLVE_TOL
    from inpcodec.codec.quantiser import quantiser

    ap = argparse.ArgumentParser()
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    numba.set_num_threads(1)
    rows = []
    for name, d, lv in CASES:
        f = np.asarray(Image.open(Path(args.kodak) / f"{name}.png").convert("L"), float)
        mask = make_mask("belhachmi", f, d).mask
        tonal_optimisation(f[:32, :32], mask[:32, :32] | (np.arange(32) == 0)[:, None],
                           levels=quantiser(lv))  # compile outside the timing
        for tol, sweeps in SETTINGS:
            t0 = time.perf_counter()
            r = tonal_optimisation(f, mask, levels=quantiser(lv), tol=tol,
                                   solve_tol=TONAL_SOLVE_TOL, max_sweeps=sweeps)
            rows.append((name, d, lv, tol, sweeps, time.perf_counter() - t0,
                         r.inpaintings, 10 * np.log10(255**2 / r.mse)))
            print(rows[-1], flush=True)
    lines = ["Command: `python benchmarks/bench_tonal_settings.py --kodak ../shared/data/kodak "
             "--write-results` (Kodak luma 768 x 512, Belhachmi masks, quantised tonal "
             f"optimisation, inner solves to {TONAL_SOLVE_TOL:g}, one Numba thread). PSNR "
             "difference and time ratio against the first setting, per case.", "",
             "| image, density, levels | " + " | ".join(
                 f"tol {t:g}, {s} sweeps" for t, s in SETTINGS) + " |",
             "|---|" + "---|" * len(SETTINGS)]
    for name, d, lv in CASES:
        mine = [r for r in rows if r[0] == name]
        ref = mine[0]
        cells = [f"{ref[7]:.2f} dB, {ref[6]} inp."] + [
            f"{r[7] - ref[7]:+.3f} dB, x{r[5] / ref[5]:.2f} time" for r in mine[1:]]
        lines.append(f"| {name}, {d * 100:g} %, {lv} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        write_section("bench_tonal_settings", "### Rate search speed: tonal settings", text)


if __name__ == "__main__":
    main()
