"""The mask networks in bfloat16 against float32: the masks, and the forward pass's time.

    python benchmarks/bench_precision.py DATA_FOLDER [DATA_FOLDER ...] [--limit N]

For each grey (luma) image and density, the masks of ``tree-learned`` (at 2, 4, 8 %) and
``learned`` (dithered, at 2, 5, 10 %) made by the networks loaded in float32 and in
bfloat16 (:func:`inpcodec.learned_masks.networks.inference_dtype`) are inpainted with
the original values (no tonal optimisation, no coding). Prints the mean PSNR of each,
the per-file range of the difference, the share of equal tree-mask pixels, and the
forward pass's time of the tree-map network at 256 x 256 and 512 x 512 in both
precisions (one thread, best of 7, same run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from inpcodec.codec import inpaint
from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma, psnr
from inpcodec.learned_masks import learned_mask, load_mask_network
from inpcodec.learned_masks.networks import native_bfloat16
from inpcodec.learned_masks.tree_map import learned_tree, load_tree_map_network

TREE_DENSITIES = (0.02, 0.04, 0.08)
FREE_DENSITIES = (0.02, 0.05, 0.1)


def _best_time(fn, n=7):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="+", help="folders of test images")
    ap.add_argument("--limit", type=int, default=None, help="first N images per folder")
    args = ap.parse_args()
    if not native_bfloat16():
        print("note: this CPU has no bfloat16 hardware; the bfloat16 timings are emulated")
    torch.set_num_threads(1)
    nets = {"float32": (load_tree_map_network(precision="float32"),
                        load_mask_network(precision="float32")),
            "bfloat16": (load_tree_map_network(precision="bfloat16"),
                         load_mask_network(precision="bfloat16"))}
    for side in (256, 512):
        x = torch.rand(1, 1, side, side)
        with torch.inference_mode():
            t = {k: _best_time(lambda n=n, x=x: n[0](x)) for k, n in nets.items()}
        print(f"tree-map forward {side}x{side}: float32 {t['float32']:.4f} s, bfloat16 "
              f"{t['bfloat16']:.4f} s ({t['float32'] / t['bfloat16']:.2f}x)")
    paths = [p for folder in args.data for p in find_images([folder])[:args.limit]]
    psnrs = {(kind, prec): [] for kind in ("tree-learned", "learned") for prec in nets}
    equal = []
    for path in paths:
        f = np.rint(luma(load_image(path)))
        for d in TREE_DENSITIES:
            masks = {k: learned_tree(f, d, network=n[0]).mask for k, n in nets.items()}
            equal.append(np.mean(masks["float32"] == masks["bfloat16"]))
            for k, m in masks.items():
                psnrs["tree-learned", k].append(psnr(f, inpaint(f, m, solver="numba")))
        for d in FREE_DENSITIES:
            for k, n in nets.items():
                m = learned_mask(f, d, network=n[1]).mask
                psnrs["learned", k].append(psnr(f, inpaint(f, m, solver="numba")))
        print(path.name, flush=True)
    print(f"\n{len(paths)} images; inpainting PSNR (dB) with the original values, mean over "
          "images and densities\n")
    print("| encoder | float32 | bfloat16 | difference | per file |")
    print("|---|---:|---:|---:|---|")
    for kind in ("tree-learned", "learned"):
        a = np.array(psnrs[kind, "float32"])
        b = np.array(psnrs[kind, "bfloat16"])
        print(f"| {kind} | {a.mean():.3f} | {b.mean():.3f} | {b.mean() - a.mean():+.3f} | "
              f"{(b - a).min():+.3f} to {(b - a).max():+.3f} |")
    print(f"\ntree masks: {100 * np.mean(equal):.2f} % of the pixels equal")


if __name__ == "__main__":
    main()
