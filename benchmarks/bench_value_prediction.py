"""Would predicting tree values by diffusion of the coarser levels pay?  (issue 20, item 3)

    python benchmarks/bench_value_prediction.py --kodak ../shared/data/kodak --write-results

The tree value coder (``bitstreams/tree_values.py``) predicts each stage's values by
integer bilinear interpolation from the corners of the cell that was split.  The
alternative: predict them from the homogeneous-diffusion inpainting of all the points of
the earlier stages (the decoder has them), i.e. the decoder's own reconstruction of the
coarser tree.  Here that inpainting is done in float64 to a relative residual of 1e-6, an
upper bound on what a deterministic integer version could give.  For each image and
density: the default tree encoder's mask, tonally optimised values at ``--levels``, and,
stage by stage, the empirical entropy of the residuals of both predictors (a static
histogram per stage, the same measure for both), beside the real coder's bits per value.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _results import command_line, write_section

from inpcodec.bitstreams.tree_values import encode_tree_values, plan
from inpcodec.codec.diffusion import Inpainter
from inpcodec.codec.encoders import get_encoder
from inpcodec.codec.io import load_image
from inpcodec.codec.metrics import luma
from inpcodec.codec.pipeline import DEFAULT_ENCODER
from inpcodec.codec.quantiser import quantise, quantiser
from inpcodec.codec.tonal import tonal_optimisation


def entropy_bits(r: np.ndarray) -> float:
    """Total bits of ``r`` under its own empirical distribution."""
    _, c = np.unique(r, return_counts=True)
    return float(-(c * np.log2(c / c.sum())).sum())


def compare(f, density, levels):
    found = get_encoder(DEFAULT_ENCODER).make(f, density)
    res = tonal_optimisation(f, found.mask, levels=quantiser(levels), tol=3e-2,
                             solve_tol=1e-5, max_sweeps=3)
    q = quantise(res.values[found.mask], levels)
    mask, stages = plan(found.structure)
    flat = np.flatnonzero(mask)
    known = np.zeros(flat.size, bool)
    bits = {"bilinear": 0.0, "diffusion": 0.0}
    for _, idx, cor, wts in stages:
        if idx.size and cor is not None:
            v, den = q[cor], wts.sum(axis=1)
            bil = np.clip((2 * (v * wts).sum(axis=1) + den) // (2 * den), 0, levels - 1)
            m = np.zeros(f.size, bool)
            m[flat[known]] = True
            data = np.zeros(f.size)
            data[flat[known]] = q[known]
            u = Inpainter(m.reshape(f.shape)).solve(data.reshape(f.shape), tol=1e-6).ravel()
            dif = np.clip(np.rint(u[flat[idx]]), 0, levels - 1)
            bits["bilinear"] += entropy_bits(q[idx] - bil)
            bits["diffusion"] += entropy_bits(q[idx] - dif)
        known[idx] = True
    real = 32 * encode_tree_values(found.structure, q, levels).size
    n = flat.size
    return n, bits["bilinear"] / n, bits["diffusion"] / n, real / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True, type=Path)
    ap.add_argument("--images", default="kodim05,kodim13,kodim23")
    ap.add_argument("--densities", default="1.2,3", help="percent")
    ap.add_argument("--levels", type=int, default=16)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    lines = ["| image | points | bilinear (bits/value) | diffusion (bits/value) | change | "
             "real coder (bits/value) |", "|---|---:|---:|---:|---:|---:|"]
    changes = []
    for name in args.images.split(","):
        f = np.rint(luma(load_image(args.kodak / f"{name}.png")))
        for d in (float(x) / 100 for x in args.densities.split(",")):
            n, bil, dif, real = compare(f, d, args.levels)
            changes.append(dif / bil - 1)
            lines.append(f"| {name} | {n} | {bil:.3f} | {dif:.3f} | {dif / bil - 1:+.1%} | "
                         f"{real:.3f} |")
            print(lines[-1], flush=True)
    lines.append(f"\nMean change of the diffusion predictor: {np.mean(changes):+.1%} "
                 "(negative = fewer bits).")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        cmd = command_line()
        write_section("bench_value_prediction",
                      "### Values predicted by diffusion of the coarser levels (issue 20)",
                      f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')}); luma, "
                      f"{args.levels} levels, tonal optimisation; empirical entropy per "
                      f"stage:\n\n{text}")


if __name__ == "__main__":
    main()
