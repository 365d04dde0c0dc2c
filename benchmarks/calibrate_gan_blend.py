"""How much of the GAN post-processor's correction to apply to a tree file, by its density.

    python benchmarks/calibrate_gan_blend.py --data ../shared/data/train/bsds500/test \
        --skip 8 [--weights codec/postprocess/weights/gan_postprocess_tree.safetensors]

Over the oriented loop filter (section FILT) the post-processor trained on unfiltered
tree decodes gains PSNR at low rates and loses it at high ones (benchmarks/RESULTS.md,
"Oriented loop filters").  This script measures, on images held out from the
post-processor's training (BSDS500's test split without train-gan's 8 validation images:
the post-processors were trained on the training and validation splits; Kodak is never
used), how much of the correction g - p (g the post-processor's output, p the plain
decode) brings each file nearest the original f: alpha* = <g - p, f - p> / |g - p|^2,
with the mask density d of the file.  It fits alpha(d) = clip(a + b log2 d, 0, 1) by the least total
squared error of p + alpha(d) (g - p) over all files (a grid search), grey and colour
apart, and prints the fit and the PSNR each choice gives.  Rows go to a JSON-lines file
(resumable).  ``--weights``: the post-processor to calibrate (default: the one the decoder
refines the default's files with, those of tree files with a loop filter); the fit goes
into its ``<stem>_strength.json`` by hand, with this command beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from inpcodec.codec import pipeline as P
from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma
from inpcodec.codec.postprocess.inference import (
    TREE_MASK_CODER,
    load_generator,
    postprocess_weights,
    refine,
)


def measure(args):
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {(r["image"], r["mode"], r["bpp"]) for r in map(json.loads, out.open())}
    rng = np.random.default_rng(args.seed)
    paths = find_images([args.data])[args.skip:]
    paths = [paths[i] for i in sorted(rng.choice(len(paths), args.images, replace=False))]
    net = load_generator(args.weights, task="postprocess")
    for path in paths:
        rgb = load_image(path)
        for mode in ("grey", "colour"):
            img = rgb if mode == "colour" else np.clip(np.rint(luma(rgb)), 0, 255).astype(
                np.uint8)
            for bpp in args.bpp:
                if (path.stem, mode, bpp) in done:
                    continue
                rep = P.encode_report(img, bpp=bpp)
                plain, mask = P.decode(rep.data, return_info=True)
                gan = refine(plain, mask, network=net)  # the whole correction
                f, p, g = (a.astype(np.float64) for a in (img, plain, gan))
                row = dict(image=path.stem, mode=mode, bpp=bpp, real_bpp=rep.bpp,
                           density=float(mask.mean()), pixels=int(f.size),
                           ee=float(((f - p) ** 2).sum()), ge=float(((g - p) * (f - p)).sum()),
                           gg=float(((g - p) ** 2).sum()))
                with out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(row, flush=True)


def _psnr(mse):
    return 10 * np.log10(255.0 ** 2 / mse)


def fit(rows):
    d = np.log2([r["density"] for r in rows])
    ee, ge, gg, n = (np.array([r[k] for r in rows], float) for k in ("ee", "ge", "gg", "pixels"))

    def mean_psnr(alpha):
        return float(np.mean(_psnr((ee - 2 * alpha * ge + alpha ** 2 * gg) / n)))

    best = max(((a, b) for a in np.linspace(-3, 3, 241) for b in np.linspace(-1, 1, 201)),
               key=lambda ab: mean_psnr(np.clip(ab[0] + ab[1] * d, 0, 1)))
    alpha = np.clip(best[0] + best[1] * d, 0, 1)
    star = np.clip(ge / np.maximum(gg, 1e-12), 0, 1)
    rate = np.array([r["bpp"] for r in rows])
    return best, {"plain": mean_psnr(0.0), "gan": mean_psnr(1.0), "fit": mean_psnr(alpha),
                  "per-file best": mean_psnr(star),
                  "alpha at 0.05/0.1/0.2/0.3 bpp": [
                      round(float(alpha[rate == t].mean()), 2) for t in (0.05, 0.1, 0.2, 0.3)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--bpp", type=lambda s: [float(v) for v in s.split(",")],
                    default=[0.05, 0.1, 0.2, 0.3])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", type=int, default=0,
                    help="leave out the folder's first SKIP images (train-gan's validation "
                         "images, when the folder is its --val)")
    ap.add_argument("--weights", default=str(postprocess_weights(TREE_MASK_CODER, True)))
    ap.add_argument("--out", default="gan_blend_rows.jsonl")
    args = ap.parse_args()
    measure(args)
    rows = [json.loads(line) for line in Path(args.out).open()]
    for mode in ("grey", "colour"):
        sel = [r for r in rows if r["mode"] == mode]
        (a, b), scores = fit(sel)
        print(f"{mode}: {len(sel)} files, alpha(d) = clip({a:.3f} + {b:.3f} log2 d, 0, 1); "
              + ", ".join(f"{k} {v if isinstance(v, list) else round(v, 3)}"
                          for k, v in scores.items()))


if __name__ == "__main__":
    main()
