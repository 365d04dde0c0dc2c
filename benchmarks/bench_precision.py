"""The networks in bfloat16 against float32: masks, post-processor gains, forward times.

    python benchmarks/bench_precision.py [DATA_FOLDER ...] [--limit N]
        [--gan-files FOLDER --gan-originals FOLDER]

For each grey (luma) image and density, the masks of ``tree-learned`` (at 2, 4, 8 %) and
``learned`` (dithered, at 2, 5, 10 %) made by the networks loaded in float32 and in
bfloat16 (:func:`inpcodec.codec.precision.inference_dtype`) are inpainted with
the original values (no tonal optimisation, no coding). Prints the mean PSNR of each,
the per-file range of the difference, the share of equal tree-mask pixels, and the
forward pass's time of the tree-map network at 256 x 256 and 512 x 512 in both
precisions (one thread, best of 7, same run).

With ``--gan-files``: every ``.inpc`` file there (named ``IMAGE_...``, its original
``IMAGE.png`` in ``--gan-originals``) is decoded and refined by the post-processor of its
mask coder in both precisions; prints the mean PSNR gain over the plain decode of each,
the per-file range of their difference, and the median refinement time of each (two
threads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from inpcodec.codec import inpaint
from inpcodec.codec.decoder import decode, info
from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma, psnr
from inpcodec.codec.precision import native_bfloat16
from inpcodec.codec.sections import Mask
from inpcodec.learned_masks import learned_mask, load_mask_network
from inpcodec.learned_masks.tree_map import learned_tree, load_tree_map_network

TREE_DENSITIES = (0.02, 0.04, 0.08)
CODER_IDS = {name: key for key, name in Mask.NAMES.items()}
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
    ap.add_argument("data", nargs="*", help="folders of test images (the masks' study)")
    ap.add_argument("--limit", type=int, default=None, help="first N images per folder")
    ap.add_argument("--gan-files", default=None, help="folder of .inpc files")
    ap.add_argument("--gan-originals", default=None, help="folder of their originals")
    args = ap.parse_args()
    if args.gan_files:
        if not args.gan_originals:
            ap.error("--gan-files needs --gan-originals")
        gan_gains(args.gan_files, args.gan_originals)
    elif not args.data:
        ap.error("give image folders, --gan-files, or both")
    if args.data:
        mask_study(args.data, args.limit)


def mask_study(folders, limit):
    """The masks and forward passes in both precisions (see the module's docstring)."""
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
    paths = [p for folder in folders for p in find_images([folder])[:limit]]
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


def gan_gains(files: str, originals: str) -> None:
    """The post-processor's gains in both precisions (see the module's docstring)."""
    from inpcodec.codec.postprocess.inference import load_generator, refine  # noqa: PLC0415

    torch.set_num_threads(2)
    gains = {"float32": [], "bfloat16": []}
    secs = {"float32": [], "bfloat16": []}
    paths = sorted(Path(files).glob("*.inpc"))
    for path in paths:
        data = path.read_bytes()
        plain, mask = decode(data, return_info=True)
        coder = CODER_IDS[info(data).mask_coder]
        ref = load_image(Path(originals) / f"{path.stem.split('_')[0]}.png")
        ref = np.rint(luma(ref)) if plain.ndim == 2 else ref
        base = psnr(ref, plain)
        for prec in gains:
            net = load_generator(mask_coder=coder, precision=prec)
            t0 = time.perf_counter()
            out = refine(plain, mask, network=net)
            secs[prec].append(time.perf_counter() - t0)
            gains[prec].append(psnr(ref, out) - base)
        print(path.name, " ".join(f"{k} {v[-1]:+.3f}" for k, v in gains.items()), flush=True)
    a, b = np.array(gains["float32"]), np.array(gains["bfloat16"])
    print(f"\n{len(paths)} files; post-processor gain over the plain decode (dB)\n")
    print("| float32 | bfloat16 | difference | per file | refinement s, float32 / bfloat16 |")
    print("|---:|---:|---:|---|---|")
    print(f"| {a.mean():+.3f} | {b.mean():+.3f} | {b.mean() - a.mean():+.4f} | "
          f"{(b - a).min():+.3f} to {(b - a).max():+.3f} | "
          f"{np.median(secs['float32']):.2f} / {np.median(secs['bfloat16']):.2f} |\n")


if __name__ == "__main__":
    main()
