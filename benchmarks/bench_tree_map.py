"""The tree encoders' masks at equal point counts, and their mask-generation time.

    python benchmarks/bench_tree_map.py --kodak ../shared/data/kodak [--limit 6] [--write-results]

For each grey (luma) image and each point budget (2, 4, 8 % of the pixels, about the
0.05-0.3 bpp range of the codec) the masks of ``tree`` (error-driven densification),
``tree-learned`` (the tree-map network), ``tree-map`` (Belhachmi's map) and the
maps the network learns (``teacher``: the uniform trees' errors averaged in the log
domain, one inpainting per depth) are inpainted with the original grey values (no
tonal optimisation, no coding: a look at the masks alone; the codec's rows come from
``inpcodec bench``).
Mask generation is timed per image (median of 3, the Numba kernels and the network
loaded), with the speed-up of each encoder over ``tree`` in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _results import write_section

from inpcodec.baselines.tree import (
    error_driven_order,
    map_driven_order,
    prefix_for_points,
    scale_error_order,
    tree_from_order,
)
from inpcodec.bitstreams.tree_coder import tree_mask
from inpcodec.codec import inpaint
from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma, psnr
from inpcodec.learned_masks.tree_map import (
    learned_tree_order,
    load_tree_map_network,
    teacher_error_maps,
)

FRACTIONS = (0.02, 0.04, 0.08)


def orders(f, net):
    """Each encoder's split order and the seconds it took (fresh, no cache)."""
    top = int(max(FRACTIONS) * f.size * 1.05)
    makers = {
        "tree": lambda: error_driven_order(f, top),
        "tree-learned": lambda: learned_tree_order(f, network=net, cache=False),
        "tree-map": lambda: map_driven_order(f),
        "teacher": lambda: scale_error_order(f.shape, teacher_error_maps(f).__getitem__),
    }
    out = {}
    for name, make in makers.items():
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            o = make()
            times.append(time.perf_counter() - t0)
        out[name] = (o, statistics.median(times))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True, help="folder of the test images")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--weights", default=None, help="tree-map weights (default: shipped)")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    net = load_tree_map_network(args.weights)
    paths = find_images([args.kodak])[:args.limit]
    names = ("tree", "tree-learned", "tree-map", "teacher")
    rows = {n: {p: [] for p in FRACTIONS} for n in names}
    secs = {n: [] for n in names}
    for path in paths:
        f = np.rint(luma(load_image(path)))
        made = orders(f, net)
        line = [path.stem]
        for n in names:
            o, s = made[n]
            secs[n].append(s)
            for p in FRACTIONS:
                m = tree_mask(tree_from_order(o, prefix_for_points(o, int(p * f.size))))
                rows[n][p].append(psnr(f, inpaint(f, m, solver="numba")))
            line.append(f"{n} {' '.join(f'{rows[n][p][-1]:.2f}' for p in FRACTIONS)} "
                        f"({s:.2f} s)")
        print(" | ".join(line), flush=True)
    lines = [
        f"Command: `python benchmarks/bench_tree_map.py --kodak {args.kodak}"
        + (f" --limit {args.limit}" if args.limit else "") + " --write-results` · "
        f"{len(paths)} images, luma, {time.strftime('%Y-%m-%d')}.",
        "",
        "Mean inpainting PSNR (dB) of the tree masks with the original values (no tonal "
        "optimisation, no coding), and mask generation time (median of 3 per image; mean "
        "over images; speed-up over `tree` per image, median):",
        "",
        "| encoder | " + " | ".join(f"{p * 100:.0f} % points" for p in FRACTIONS)
        + " | mean | vs tree | mask time (s) | speed-up over tree |",
        "|---|" + "---:|" * (len(FRACTIONS) + 4),
    ]
    ref = np.mean([np.mean(rows["tree"][p]) for p in FRACTIONS])
    for n in names:
        means = [float(np.mean(rows[n][p])) for p in FRACTIONS]
        speed = statistics.median(a / b for a, b in zip(secs["tree"], secs[n], strict=True))
        lines.append(f"| {n} | " + " | ".join(f"{m:.2f}" for m in means)
                     + f" | {np.mean(means):.2f} | {np.mean(means) - ref:+.2f} | "
                     f"{np.mean(secs[n]):.2f} | {speed:.1f}x |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        write_section("bench_tree_map", "### The learned tree encoder's masks (issue 21)", text)


if __name__ == "__main__":
    main()
