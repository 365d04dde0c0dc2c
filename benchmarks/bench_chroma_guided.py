"""Which luma-guided chroma settings pay?  The measurement behind the chroma guide.

    python benchmarks/bench_chroma_guided.py kodim01,kodim03,kodim05,kodim13,kodim19,kodim23 \
        0.05,0.1,0.2,0.3 --kodak ../shared/data/kodak

Encodes each image in colour with the default encoder at each rate, decodes the planes
(luma and chroma by homogeneous diffusion, as the decoder), then replaces each chroma
plane by He et al.'s guided filter of it with the decoded luma as guide (radius r,
regularisation eps on the 0-255 scale) and prints the RGB PSNR change per setting, then
per setting the mean gain over the files, and the mean gain when each file takes the
best of a candidate set (what an encoder that tries them and stores its choice gets).
With ``--codec``: the codec's own choice (section GUID) on each file, against the
same file with plain chroma.
"""
import argparse
import itertools

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter

from inpcodec.codec import decoder as D
from inpcodec.codec.colour import rgb_to_ycbcr, ycbcr_to_rgb
from inpcodec.codec.diffusion import Inpainter
from inpcodec.codec.metrics import psnr
from inpcodec.codec.pipeline import encode
from inpcodec.codec.quantiser import quantiser

RADII = (1, 2, 3, 4, 6, 8, 12)
EPS = (4.0, 9.0, 16.0, 25.0, 49.0, 100.0, 225.0)


def planes_of_file(data):
    cont, desc, mask_section, values = D.parse(data)
    masks = D.decode_masks(cont, desc, mask_section, values)
    h, w = cont.height, cont.width
    planes = np.zeros((h, w, 3))
    for c, (mask, st) in enumerate(masks):
        vals = values[c].decompress(mask, st, c)
        planes[:, :, c][mask] = quantiser(values[c].levels)[vals]
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
ap.add_argument("--codec", action="store_true",
                help="The codec's own choice instead of the grid: each file encoded with "
                "plain chroma, then given the encoder's guide (add_chroma_guide); prints "
                "both files' real bpp and RGB PSNR (the decoder's output).")
args = ap.parse_args()
if args.codec:
    from inpcodec.codec.decoder import decode, info
    from inpcodec.codec.format import add_chroma_guide
    from inpcodec.codec.pipeline import encode_report

    rows = []
    for name in args.images.split(","):
        img = np.asarray(Image.open(f"{args.kodak}/{name}.png").convert("RGB"))
        n = img.shape[0] * img.shape[1]
        for bpp in [float(b) for b in args.bpps.split(",")]:
            plain = encode_report(img, bpp=bpp, chroma_guide=False)
            guided = add_chroma_guide(plain.data, img,
                                      max_bytes=int(bpp * 1.03 * n / 8))
            p0, p1 = plain.psnr, psnr(decode(guided), img)
            rows.append((bpp, 8 * len(plain.data) / n, p0, 8 * len(guided) / n, p1))
            print(f"{name} {bpp} plain {rows[-1][1]:.4f} bpp {p0:.3f} dB, guided "
                  f"{rows[-1][3]:.4f} bpp {p1:.3f} dB ({p1 - p0:+.3f}, "
                  f"{info(guided).chroma_guide})", flush=True)
    rows = np.array(rows)
    for bpp in sorted(set(rows[:, 0])):
        r = rows[rows[:, 0] == bpp]
        print(f"{bpp}: {len(r)} files, plain {r[:, 1].mean():.4f} bpp {r[:, 2].mean():.3f} "
              f"dB, guided {r[:, 3].mean():.4f} bpp {r[:, 4].mean():.3f} dB "
              f"({(r[:, 4] - r[:, 2]).mean():+.3f} dB, {(r[:, 4] > r[:, 2]).sum()} gain)")
    print(f"all: {(rows[:, 4] - rows[:, 2]).mean():+.3f} dB")
    raise SystemExit
gains = {}  # (r, eps) -> list of gains, one per file
for name in args.images.split(","):
    img = np.asarray(Image.open(f"{args.kodak}/{name}.png").convert("RGB"))
    for bpp in [float(b) for b in args.bpps.split(",")]:
        data = encode(img, bpp=bpp)
        u, masks = planes_of_file(data)
        base = psnr(np.clip(np.rint(ycbcr_to_rgb(u)), 0, 255), img)
        ref = rgb_to_ycbcr(img)
        row = {}
        for r, eps in itertools.product(RADII, EPS):
            v = u.copy()
            for c in (1, 2):
                v[:, :, c] = guided(u[:, :, 0], u[:, :, c], r, eps)
            g = psnr(np.clip(np.rint(ycbcr_to_rgb(v)), 0, 255), img) - base
            gains.setdefault((r, eps), []).append(g)
            row[(r, eps)] = g
        best = max(row, key=row.get)
        print(f"{name} {bpp} base {base:.3f} chroma PSNR "
              f"{psnr(u[:, :, 1:], ref[:, :, 1:]):.2f} best r{best[0]} eps{best[1]:g} "
              f"{row[best]:+.3f} (r4 eps25 {row[(4, 25.0)]:+.3f})", flush=True)
print("setting: mean gain over files, min")
for k, v in sorted(gains.items(), key=lambda kv: -np.mean(kv[1]))[:12]:
    print(k, f"mean {np.mean(v):+.3f} min {np.min(v):+.3f}")
files = len(next(iter(gains.values())))
every = np.array([gains[k] for k in gains])  # settings x files
print(f"each file its best of all {len(gains)} settings (or none): "
      f"{np.mean(np.maximum(every.max(0), 0)):+.3f}")
for size in (1, 2, 3, 4, 6):  # the best candidate set of that size, greedily
    chosen = []
    for _ in range(size):
        keys = [k for k in gains if k not in chosen]
        score = [np.mean(np.maximum(np.max([gains[c] for c in chosen + [k]], 0), 0))
                 for k in keys]
        chosen.append(keys[int(np.argmax(score))])
    got = np.mean(np.maximum(np.max([gains[c] for c in chosen], 0), 0))
    print(f"best {size} candidates (greedy) {chosen}: {got:+.3f}")
