"""What the Lagrangian encoder's files cost, and whether a change moved them.

Three measurements (benchmarks/RESULTS.md, "Fewer solves in a rate search"):

``stages``: the decoder-solve equivalents of ``--bpp`` searches (or quality encodes), per
stage: V-cycles weighted by pixels, divided by those of the file's own decode.

    python benchmarks/bench_search_cost.py stages ../shared/data/kodak/kodim23.png --bpp 0.1
    python benchmarks/bench_search_cost.py stages ../shared/data/classic/boat.png --bpp 0.15 --grey

``quality``: J = MSE + lam x bpp of the default encoder at some qualities (one thread), as
JSON; ``compare`` then gives the files that changed and the change of J and time.

    python benchmarks/bench_search_cost.py quality IMAGES... --qualities 30,50,70 \
        --modes grey,colour [--crop 768x1024] --out j_new.json
    python benchmarks/bench_search_cost.py compare j_old.json j_new.json

``floor``: what an encode costs beside Pillow's AVIF encode of the same image at the
largest quality whose file is no larger (default speed), in one run: the encode, one
decode of its file (a decoder solve of every channel, as the encoder's report makes) and
the time per decoder-solve equivalent; so the encode time a number of solves implies.

    python benchmarks/bench_search_cost.py floor ../shared/data/kodak/kodim23.png --bpp 0.1

``tiny``: rate searches of generated images of 1,920-6,144 pixels (grey and colour, 0.5, 1
and 2 bpp): how many miss the 3 % tolerance, and the real files they made.

    python benchmarks/bench_search_cost.py tiny
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np


def _load(path: str, grey: bool, crop=None) -> np.ndarray:
    from inpcodec.codec.io import load_image

    img = load_image(path)
    if crop is not None:
        h, w = img.shape[:2]
        ch, cw = crop
        img = np.ascontiguousarray(img[h // 2 - ch // 2:h // 2 + ch // 2,
                                       w // 2 - cw // 2:w // 2 + cw // 2])
    if grey and img.ndim == 3:
        img = np.asarray(np.round(img @ [0.299, 0.587, 0.114]), np.uint8)
    if not grey and img.ndim == 2:
        img = np.dstack([img] * 3)
    return img


def stages(args) -> None:
    from inpcodec.baselines import tree as T
    from inpcodec.bitstreams import container as C
    from inpcodec.codec import diffusion as D
    from inpcodec.codec import format as F
    from inpcodec.codec import lagrangian as L
    from inpcodec.codec.decoder import decode
    from inpcodec.codec.metrics import psnr
    from inpcodec.codec.pipeline import planes_of

    acc, tim, stack = collections.Counter(), collections.Counter(), []

    def wrap(owner, name, label):
        f = getattr(owner, name)

        @functools.wraps(f)
        def timed(*a, **k):
            v0, t0 = D.vcycles_run(), time.perf_counter()
            stack.append(label)
            try:
                return f(*a, **k)
            finally:
                stack.pop()
                dv, dt = D.vcycles_run() - v0, time.perf_counter() - t0
                acc[label] += dv
                tim[label] += dt
                if stack:  # the caller's own share excludes it
                    acc[stack[-1]] -= dv
                    tim[stack[-1]] -= dt
        setattr(owner, name, timed)

    wrap(L, "encode_lambda", "real file: reconstruction, filter, guide")
    wrap(L, "choose", "choices: the rest")
    wrap(L.TreeFamily, "mask_for", "mask: the rest")
    wrap(T, "error_driven_order", "mask: growth")
    wrap(T.RdoPruning, "_round", "mask: pruning rounds")
    wrap(T.RdoPruning, "_price", "mask: pricing (merge_costs)")
    wrap(L, "_plane_sse", "choices: plain files' errors")
    wrap(F, "tiled_tonal_optimisation", "tonal optimisation")
    for path in args.images:
        acc.clear()
        tim.clear()
        L.clear_families()
        img = _load(path, args.grey)
        planes = planes_of(img, C.COLOUR_YCBCR)
        t0 = time.perf_counter()
        if args.bpp is not None:
            out, log, _ = L.search_lambda_for_bpp(img, planes, args.bpp)
        else:
            out, log = L.encode_lambda(img, planes, L.quality_to_lambda(args.quality)), []
        wall = time.perf_counter() - t0
        v0 = D.vcycles_run()
        decode(out.data)
        per = D.vcycles_run() - v0
        n = img.shape[0] * img.shape[1]
        what = f"bpp {args.bpp:g}" if args.bpp is not None else f"q{args.quality:g}"
        print(f"{Path(path).name} {'grey' if args.grey else 'colour'} {what}: "
              f"bpp {8 * len(out.data) / n:.4f} psnr {psnr(out.decoded, img):.3f} "
              f"wall {wall:.2f}s total {sum(acc.values()) / per:.1f} decoder solves; "
              f"estimates {sum('plain_bpp' in e for e in log)} "
              f"real {sum(bool(e.get('full')) for e in log)}")
        for k, v in sorted(acc.items(), key=lambda kv: -kv[1]):
            print(f"  {k:42s} {v / per:6.1f} solves {tim[k]:6.2f} s")


def quality(args) -> None:
    from inpcodec.codec.lagrangian import quality_to_lambda
    from inpcodec.codec.pipeline import encode_report

    crop = None if args.crop is None else tuple(int(v) for v in args.crop.split("x"))
    rows = {}
    for path in args.images:
        for mode in args.modes.split(","):
            img = _load(path, mode == "grey", crop)
            for q in (float(v) for v in args.qualities.split(",")):
                t0 = time.perf_counter()
                r = encode_report(img, quality=q, threads=1)
                mse = 255.0 ** 2 / 10 ** (r.psnr / 10)
                rows[f"{Path(path).name} {mode} q{q:g}"] = dict(
                    bytes=len(r.data), psnr=r.psnr, bpp=r.bpp,
                    J=mse + quality_to_lambda(q) * r.bpp, s=time.perf_counter() - t0)
    Path(args.out).write_text(json.dumps(rows, indent=1))


def compare(args) -> None:
    a, b = (json.loads(Path(p).read_text()) for p in (args.old, args.new))
    keys = [k for k in a if k in b]
    dj = np.array([b[k]["J"] / a[k]["J"] - 1 for k in keys])
    same = sum(a[k]["bytes"] == b[k]["bytes"] for k in keys)
    ratio = sum(b[k]["s"] for k in keys) / sum(a[k]["s"] for k in keys)
    print(f"same files {same}/{len(keys)}; J {100 * dj.mean():+.3f} % on average, "
          f"{100 * dj.min():+.2f} to {100 * dj.max():+.2f} %; time {ratio:.3f}x")
    for k, d in zip(keys, dj, strict=True):
        if a[k]["bytes"] != b[k]["bytes"]:
            print(f"  {k}: J {100 * d:+.2f} %")


def floor(args) -> None:
    from PIL import Image

    from inpcodec.codec.bench.refcodecs import pillow_encode
    from inpcodec.codec.decoder import decode
    from inpcodec.codec.pipeline import encode_report

    def best_of(f, k=3):
        times = []
        for _ in range(k):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    for path in args.images:
        img = np.asarray(Image.open(path).convert("RGB"))
        r = encode_report(img, bpp=args.bpp, threads=1)  # warm: kernels loaded
        t_enc = best_of(lambda img=img: encode_report(img, bpp=args.bpp, threads=1), 2)
        t_dec = best_of(lambda r=r: decode(r.data, threads=1))
        lo, hi = 0, 100
        while lo < hi:  # the largest AVIF quality whose file is no larger
            mid = (lo + hi + 1) // 2
            if len(pillow_encode(img, "avif", mid)) <= len(r.data):
                lo = mid
            else:
                hi = mid - 1
        t_avif = best_of(lambda img=img, q=lo: pillow_encode(img, "avif", q))
        per_solve = t_enc / r.solve_equivalents
        print(f"{Path(path).name} --bpp {args.bpp:g}: {len(r.data)} bytes; encode "
              f"{t_enc:.3f} s ({r.solve_equivalents:.1f} decoder solves, {per_solve:.3f} s "
              f"each); decode {t_dec:.3f} s; AVIF q{lo} {t_avif:.3f} s")
        print(f"  encode {t_enc / t_avif:.0f}x AVIF; one decode {t_dec / t_avif:.1f}x AVIF; "
              f"8x AVIF is {8 * t_avif / per_solve:.1f} of the encoder's solves, "
              f"{8 * t_avif / t_dec:.1f} decodes")


def tiny(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _images import natural_like

    from inpcodec.codec.pipeline import encode_report

    miss, real = [], []
    for seed in range(4):
        for h, w in ((40, 48), (64, 96)):
            for colour in (False, True):
                img = np.clip(np.rint(natural_like(h, w, seed)), 0, 255).astype(np.uint8)
                if colour:
                    img = np.dstack([img, np.roll(img, 3, 0), np.roll(img, 5, 1)])
                for b in (0.5, 1.0, 2.0):
                    r = encode_report(img, bpp=b)
                    miss.append(abs(r.bpp / b - 1))
                    real.append(sum(bool(s.get("full")) for s in r.search))
    miss = np.array(miss)
    print(f"{miss.size} searches: {int((miss > 0.03 + 1e-9).sum())} miss 3 % (largest "
          f"{100 * miss.max():.1f} %); real files {np.mean(real):.2f} on average, "
          f"{sum(r == 3 for r in real)} with three")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stages")
    s.add_argument("images", nargs="+")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--bpp", type=float)
    g.add_argument("--quality", type=float)
    s.add_argument("--grey", action="store_true")
    q = sub.add_parser("quality")
    q.add_argument("images", nargs="+")
    q.add_argument("--qualities", default="30,50,70")
    q.add_argument("--modes", default="grey,colour")
    q.add_argument("--crop", help="HxW centre crop, e.g. 768x1024")
    q.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("old")
    c.add_argument("new")
    fl = sub.add_parser("floor")
    fl.add_argument("images", nargs="+")
    fl.add_argument("--bpp", type=float, default=0.1)
    sub.add_parser("tiny")
    args = ap.parse_args()
    {"stages": stages, "quality": quality, "compare": compare, "floor": floor,
     "tiny": tiny}[args.cmd](args)


if __name__ == "__main__":
    main()
