"""Probabilistic tree densification (Peter et al., PSIVT 2015) against the error-driven one.

    python benchmarks/bench_tree_densification.py --kodak ../shared/data/kodak --limit 6 \\
        --write-results

Error-driven densification (``tree``) splits, after each inpainting, the ``batch`` fraction
of all splittable leaves with the largest inpainting error.  Probabilistic densification
(``baselines.tree.probabilistic_order``) splits a random fraction ``candidates`` of the
leaves tentatively, inpaints, and keeps the ``keep`` fraction of those splits that lowered
the error in their cell most (two inpaintings per iteration); with ``candidates`` 1 every
leaf is tried, a deterministic ranking by error reduction instead of error.  Masks only:
each variant's tree at 2, 4 and 8 % points (the codec's 0.05-0.3 bpp) is inpainted with
the original grey values (no tonal optimisation, no coding), as ``bench_tree_map.py``
does; the inpaintings each order needed to reach 8 % are counted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _results import command_line, write_section

from inpcodec.baselines.tree import (
    error_driven_order,
    prefix_for_points,
    probabilistic_order,
    tree_from_order,
)
from inpcodec.bitstreams.tree_coder import tree_mask
from inpcodec.codec import inpaint
from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma, psnr

FRACTIONS = (0.02, 0.04, 0.08)
#: name -> (order function, its options, random)
VARIANTS = {
    "tree (batch 0.5)": (error_driven_order, dict(batch=0.5), False),
    "error-driven, batch 0.25": (error_driven_order, dict(batch=0.25), False),
    "error-driven, batch 0.125": (error_driven_order, dict(batch=0.125), False),
    "probabilistic, candidates 0.5, keep 0.5": (probabilistic_order,
                                                dict(candidates=0.5, keep=0.5), True),
    "probabilistic, candidates 0.25, keep 0.5": (probabilistic_order,
                                                 dict(candidates=0.25, keep=0.5), True),
    "error reduction, candidates 1, keep 0.5": (probabilistic_order,
                                                dict(candidates=1.0, keep=0.5), False),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=2, help="runs of each random variant")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    paths = find_images([args.kodak])[:args.limit]
    rows = {v: {p: [] for p in FRACTIONS} for v in VARIANTS}
    spent = {v: [] for v in VARIANTS}
    for path in paths:
        f = np.rint(luma(load_image(path)))
        top = int(max(FRACTIONS) * f.size * 1.05)
        for name, (make, opts, random) in VARIANTS.items():
            for seed in range(args.seeds) if random else [0]:
                o = make(f, top, **opts, **({"seed": seed} if random else {}))
                for p in FRACTIONS:
                    n = prefix_for_points(o, int(p * f.size))
                    m = tree_mask(tree_from_order(o, n))
                    rows[name][p].append(psnr(f, inpaint(f, m, solver="numba")))
                spent[name].append(int(o.cost.max()))
        print(path.stem, {k: round(v[0.04][-1], 2) for k, v in rows.items()}, flush=True)
    ref = np.mean([np.mean(rows["tree (batch 0.5)"][p]) for p in FRACTIONS])
    lines = [f"{len(paths)} Kodak images, luma; random variants run with {args.seeds} seeds "
             "(their rows average over the seeds). Mean inpainting PSNR (dB) of the masks "
             "with the original values, and the inpaintings each order needed for 8 %:", "",
             "| variant | " + " | ".join(f"{p * 100:.0f} % points" for p in FRACTIONS)
             + " | mean | vs tree | inpaintings |", "|---|" + "---:|" * 6]
    for name in VARIANTS:
        means = [float(np.mean(rows[name][p])) for p in FRACTIONS]
        lines.append(f"| {name} | " + " | ".join(f"{m:.2f}" for m in means)
                     + f" | {np.mean(means):.2f} | {np.mean(means) - ref:+.2f} | "
                     f"{np.mean(spent[name]):.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        cmd = command_line()
        write_section("bench_tree_densification",
                      "### Probabilistic tree densification (issue 20)",
                      f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')})\n\n{text}")


if __name__ == "__main__":
    main()
