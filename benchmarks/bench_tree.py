"""Tree-structured masks on the Kodak luma at fixed rates: PSNR of the real decoder.

    python benchmarks/bench_tree.py --kodak /work/shared/data/kodak \\
        --images kodim01 kodim05 --bpp 0.05 0.1 0.2 0.3

Per image, encoder and target rate, for each luma level count (``--levels``, default
8/16/32; the reported runs used 5/6/8/11 at 0.05 bpp, 6/8/11/16 at 0.1 and 8/11/16/23 at
0.2 and 0.3, as the best count falls with the rate and a dense mask needs fine levels):
the knob (the prefix of the encoder's split order, i.e. the point count for the
error-driven encoder and the threshold for the map-driven one) is searched so that the
REAL size lands within 3 % of the target:

    bits = 32 x (tree words) + 32 x (value words) + HEADER_BITS,

tree words from ``encode_tree``, value words from ``bitstreams.tree_values`` (``--values
tree``, the default; ``--values mask``: ``bitstreams.value_coder.encode_values``) of the
quantised tonally optimised values (``tonal_optimisation(luma, mask, levels=quantiser(q), tol=3e-2,
solve_tol=1e-5, max_sweeps=3)``, the codec's settings), HEADER_BITS = 160 (a 20-byte
allowance for the container header, section tags and CRC).  The search bisects the prefix
on the size predicted with the rounded original values, scaled by the measured ratio of
tonal to rounded value bits, and re-runs tonal optimisation until the real size is within
3 % (at most 5 tries; the closest is kept and its real bpp reported).  The stream is then
decoded with the real decoders (decode_tree, decode_tree_values, inpaint) and the PSNR taken
against the luma.  The level count with the best PSNR is reported per (image, encoder,
rate); rows for all level counts go to the JSONL.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inpcodec.baselines.tree import error_driven_order, map_driven_order, tree_from_order
from inpcodec.bitstreams.tree_coder import decode_tree, encode_tree, tree_mask
from inpcodec.bitstreams.tree_values import decode_tree_values, encode_tree_values
from inpcodec.bitstreams.value_coder import decode_values, encode_values
from inpcodec.codec.diffusion import inpaint
from inpcodec.codec.quantiser import quantise, quantiser
from inpcodec.codec.tonal import tonal_optimisation

HEADER_BITS = 160
TOLERANCE = 0.03
RESULTS = Path(__file__).resolve().parent / "results"


def psnr(a, b) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((np.asarray(a, float) - b) ** 2)))


VALUE_CODER = "tree"  # "mask": bitstreams.value_coder; "tree": bitstreams.tree_values


def value_words(tree, mask, q, levels):
    if VALUE_CODER == "tree":
        return encode_tree_values(tree, q, levels)
    return encode_values(mask, q, levels)


def decode_value_words(words, tree, mask, levels):
    if VALUE_CODER == "tree":
        return decode_tree_values(words, tree, levels)
    return decode_values(words, mask, levels)


def proxy_bits(luma, order, n, levels):
    """(tree bits, value bits of the rounded original values, mask) of prefix ``n``."""
    tree = tree_from_order(order, n)
    mask = tree_mask(tree)
    tb = 32 * encode_tree(tree).size
    vb = 32 * value_words(tree, mask, quantise(luma[mask], levels), levels).size
    return tb, vb, mask


def real_encode(luma, order, n, levels):
    """Tonal optimisation, the real streams, and their decoding."""
    tree = tree_from_order(order, n)
    mask = tree_mask(tree)
    t0 = time.perf_counter()
    res = tonal_optimisation(luma, mask, levels=quantiser(levels), tol=3e-2, solve_tol=1e-5,
                             max_sweeps=3)
    q = quantise(res.values[mask], levels)
    tw = encode_tree(tree)
    vw = value_words(tree, mask, q, levels)
    tonal_s = time.perf_counter() - t0
    # the decoder side: only the words
    t1 = time.perf_counter()
    tree2 = decode_tree(tw.astype("<u4"), *luma.shape)
    mask2 = tree_mask(tree2)
    q2 = decode_value_words(vw.astype("<u4"), tree2, mask2, levels)
    vals = np.zeros(luma.shape)
    vals[mask2] = quantiser(levels)[q2]
    rec = inpaint(vals, mask2)
    assert tree2 == tree and np.array_equal(q2, q), "decoder mismatch"
    return dict(points=int(mask.sum()), splits=n, tree_bits=32 * tw.size,
                value_bits=32 * vw.size, psnr=psnr(rec, luma), tonal_inpaintings=res.inpaintings,
                tonal_s=tonal_s, decode_s=time.perf_counter() - t1)


def search(luma, order, target_bits, levels):
    """Prefix whose real size is within TOLERANCE of ``target_bits`` (or the closest)."""
    scale = 1.0
    best = None
    tried = set()
    for _ in range(5):
        lo, hi = 0, len(order)
        while lo < hi:  # largest n with predicted bits <= target
            mid = (lo + hi + 1) // 2
            tb, vb, _ = proxy_bits(luma, order, mid, levels)
            if tb + scale * vb + HEADER_BITS <= target_bits:
                lo = mid
            else:
                hi = mid - 1
        n = lo
        if n in tried:
            break
        tried.add(n)
        r = real_encode(luma, order, n, levels)
        r["bits"] = r["tree_bits"] + r["value_bits"] + HEADER_BITS
        r["miss"] = r["bits"] / target_bits - 1
        if best is None or abs(r["miss"]) < abs(best["miss"]):
            best = r
        if abs(r["miss"]) <= TOLERANCE:
            break
        _, vb, _ = proxy_bits(luma, order, n, levels)
        scale = r["value_bits"] / max(vb, 1)
        if n == len(order):
            break
    return best


def build_order(name, luma, max_points, args):
    t0 = time.perf_counter()
    if name == "error":
        o = error_driven_order(luma, max_points, batch=args.batch, quad=not args.binary,
                               centres=not args.no_centres)
    elif name == "map":
        o = map_driven_order(luma, quad=not args.binary, centres=not args.no_centres,
                             min_integral=0.02)
    else:
        raise ValueError(name)
    return o, time.perf_counter() - t0


def reference(images, bpps):
    """Mean PSNR of JPEG, JPEG 2000 and inpcodec (Belhachmi masks) on the same images, from
    the project's Kodak grey results (results/kodak/grey/results.csv), where present."""
    import csv  # noqa: PLC0415

    path = RESULTS / "kodak" / "grey" / "results.csv"
    if not path.exists():
        return {}
    rows = list(csv.DictReader(path.open()))
    out = {}
    for codec in ("jpeg", "jpeg2000", "belhachmi"):
        for bpp in bpps:
            v = [(float(r["psnr"]), float(r["bpp"])) for r in rows if r["codec"] == codec
                 and abs(float(r["target_bpp"]) - bpp) < 1e-9 and r["image"] in images]
            if len(v) == len(images):
                out[codec, bpp] = tuple(np.mean(v, axis=0))  # (PSNR, real bpp)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kodak")
    ap.add_argument("--summary", metavar="JSONL", help="only print the table of a JSONL")
    ap.add_argument("--images", nargs="*", default=[f"kodim{i:02d}" for i in range(1, 25)])
    ap.add_argument("--bpp", nargs="*", type=float, default=[0.05, 0.1, 0.2, 0.3])
    ap.add_argument("--encoders", nargs="*", default=["error", "map"])
    ap.add_argument("--levels", nargs="*", type=int, default=[8, 16, 32])
    ap.add_argument("--batch", type=float, default=0.5)
    ap.add_argument("--binary", action="store_true", help="binary R-EED tree, not the quadtree")
    ap.add_argument("--no-centres", action="store_true", help="leaf corners only")
    ap.add_argument("--out", default=str(RESULTS / "tree.jsonl"))
    ap.add_argument("--values", choices=["mask", "tree"], default="tree",
                    help="value coder: value_coder.py (mask) or tree_values.py (tree)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    global VALUE_CODER
    VALUE_CODER = args.values
    if args.summary:
        summary(args.summary, args.tag)
        return
    if not args.kodak:
        ap.error("--kodak is required")
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for img in args.images:
        luma = np.asarray(Image.open(Path(args.kodak) / f"{img}.png").convert("L"), np.float64)
        h, w = luma.shape
        max_points = int(max(args.bpp) * h * w / 1.5)  # >= 1.5 bits per point
        for enc in args.encoders:
            order, order_s = build_order(enc, luma, max_points, args)
            for bpp in args.bpp:
                target = bpp * h * w
                cands = []
                for lv in args.levels:
                    t0 = time.perf_counter()
                    r = search(luma, order, target, lv)
                    n = r["splits"]
                    r.update(image=img, encoder=enc, target_bpp=bpp, levels=lv,
                             bpp=r["bits"] / (h * w), order_s=order_s,
                             search_s=time.perf_counter() - t0,
                             order_inpaintings=int(order.cost[:n].max()) if n else 0,
                             order_exhausted=n == len(order), batch=args.batch,
                             quad=not args.binary, centres=not args.no_centres, tag=args.tag,
                             values=args.values,
                             tree_bpp_point=r["tree_bits"] / r["points"],
                             value_bpp_point=r["value_bits"] / r["points"])
                    cands.append(r)
                ok = [c for c in cands if abs(c["miss"]) <= TOLERANCE] or cands
                best = max(ok, key=lambda c: c["psnr"])
                for c in cands:
                    c["best"] = c is best
                    with out.open("a") as fh:
                        fh.write(json.dumps(c) + "\n")
                rows.append(best)
                print(f"{img} {enc:5s} {bpp:.2f} -> {best['bpp']:.4f} bpp L={best['levels']:2d} "
                      f"{best['psnr']:.2f} dB pts={best['points']} "
                      f"tree {best['tree_bpp_point']:.2f} val {best['value_bpp_point']:.2f} b/pt "
                      f"ip={best['order_inpaintings']}+{best['tonal_inpaintings']} "
                      f"order {order_s:.1f}s search {best['search_s']:.1f}s", flush=True)
    table(rows, args.encoders, args.bpp, args.images)

def table(rows, encoders, bpps, images):
    """Mean table of the chosen (best level count) rows, and the references."""
    print("\nmean over images (best level count per image)")
    print("encoder target  bpp     PSNR   tree b/pt  value b/pt  inpaint    order_s tonal_s"
          " search_s  n")
    for enc in encoders:
        for bpp in bpps:
            sel = [r for r in rows if r["encoder"] == enc and r["target_bpp"] == bpp]
            if not sel:
                continue
            m = {k: float(np.mean([r[k] for r in sel])) for k in
                 ("bpp", "psnr", "tree_bpp_point", "value_bpp_point", "order_inpaintings",
                  "tonal_inpaintings", "order_s", "tonal_s", "search_s")}
            print(f"{enc:7s} {bpp:5.2f}  {m['bpp']:.4f}  {m['psnr']:6.2f}"
                  f"  {m['tree_bpp_point']:8.3f}"
                  f"  {m['value_bpp_point']:9.3f}  {m['order_inpaintings']:4.1f}+"
                  f"{m['tonal_inpaintings']:4.1f}  {m['order_s']:6.1f}  {m['tonal_s']:6.1f}"
                  f"  {m['search_s']:7.1f}  {len(sel)}")
    ref = reference(set(images), bpps)
    if ref:
        print("\nsame images, results/kodak/grey/results.csv (inpcodec = belhachmi masks);"
              " PSNR dB @ mean real bpp")
        for bpp in bpps:
            print(f"{bpp:5.2f}  " + "  ".join(f"{c} {ref[c, bpp][0]:.2f} @ {ref[c, bpp][1]:.3f}"
                                             for c in
                                             ("jpeg", "jpeg2000", "belhachmi")
                                             if (c, bpp) in ref))


def summary(path, tag):
    """The mean table of a JSONL written before (rows with ``best`` and the given tag)."""
    rows = [json.loads(line) for line in Path(path).open()]
    rows = [r for r in rows if r.get("best") and (not tag or r.get("tag") == tag)]
    encoders = sorted({r["encoder"] for r in rows})
    bpps = sorted({r["target_bpp"] for r in rows})
    images = sorted({r["image"] for r in rows})
    print(f"{path} tag={tag!r}: {len(images)} images")
    table(rows, encoders, bpps, images)


if __name__ == "__main__":
    main()
