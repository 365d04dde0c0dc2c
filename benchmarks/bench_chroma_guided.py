"""Does chroma guided by the decoded luma pay?  A measurement, not (yet) in the decoder.

    python benchmarks/bench_chroma_guided.py kodim03,kodim23 0.1 --kodak ../shared/data/kodak

Encodes each image in colour with the `tree` encoder at each rate, decodes the planes
(luma and chroma by homogeneous diffusion, as the decoder), then replaces each chroma
plane by He et al.'s guided filter of it with the decoded luma as guide (radius r,
regularisation eps on the 0-255 scale) and prints the RGB PSNR change per setting.
"""
import argparse

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter

from inpcodec.bitstreams.tree_values import decode_tree_values
from inpcodec.codec import format as F
from inpcodec.codec.colour import rgb_to_ycbcr, ycbcr_to_rgb
from inpcodec.codec.diffusion import Inpainter
from inpcodec.codec.metrics import psnr
from inpcodec.codec.pipeline import encode
from inpcodec.codec.quantiser import quantiser


def planes_of_file(data):
    cont, params = F._parse(data)
    masks = F._decode_mask_checked(cont, params)
    h, w = cont.height, cont.width
    planes = np.zeros((h, w, 3))
    for c, (mask, st) in enumerate(masks):
        q = params.levels if c == 0 else params.chroma_levels
        vals = decode_tree_values(F._words(cont.section(f"VAL{c}")), st, q)
        planes[:, :, c][mask] = quantiser(q)[vals]
    u = np.empty_like(planes)
    u[:, :, :1] = Inpainter(masks[0][0]).solve(planes[:, :, :1])
    u[:, :, 1:] = Inpainter(masks[1][0]).solve(planes[:, :, 1:])
    return u, masks

def guided(I, p, r, eps):
    def mean(x):
        return uniform_filter(x, 2 * r + 1, mode="reflect")
    mI, mp = mean(I), mean(p)
    cov = mean(I * p) - mI * mp
    var = mean(I * I) - mI * mI
    a = cov / (var + eps)
    b = mp - a * mI
    return mean(a) * I + mean(b)

ap = argparse.ArgumentParser()
ap.add_argument("images")
ap.add_argument("bpps")
ap.add_argument("--kodak", required=True)
args = ap.parse_args()
res = {}
for name in args.images.split(","):
    img = np.asarray(Image.open(f"{args.kodak}/{name}.png").convert("RGB"))
    for bpp in [float(b) for b in args.bpps.split(",")]:
        data = encode(img, encoder="tree", bpp=bpp)
        u, masks = planes_of_file(data)
        base = psnr(np.clip(np.rint(ycbcr_to_rgb(u)), 0, 255), img)
        ref = rgb_to_ycbcr(img)
        line = f"{name} {bpp} base {base:.3f} chromaPSNR {psnr(u[:,:,1:], ref[:,:,1:]):.2f}"
        for r in (4, 8, 16):
            for eps in (25.0, 100.0, 400.0):
                v = u.copy()
                for c in (1, 2):
                    v[:, :, c] = guided(u[:, :, 0], u[:, :, c], r, eps)
                g = psnr(np.clip(np.rint(ycbcr_to_rgb(v)), 0, 255), img)
                res.setdefault((r, eps), []).append(g - base)
                line += f" | r{r} e{eps:g} {g - base:+.3f}"
        print(line, flush=True)
for k, v in sorted(res.items()):
    print(k, f"mean {np.mean(v):+.3f} min {np.min(v):+.3f}")
