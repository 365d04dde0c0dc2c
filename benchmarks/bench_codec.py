"""First rate-distortion table: inpcodec files against Pillow's JPEG at the same rate.

    python benchmarks/bench_codec.py --kodak ../shared/data/kodak --write-results
    python benchmarks/bench_codec.py --kodak ../shared/data/kodak \\
        --images kodim01,kodim05,kodim08,kodim13,kodim19,kodim23 --write-results

For every image (grey: Pillow's luma ``L``; colour: RGB), every target rate and every
encoder, ``encode_report(image, bpp=B)`` produces a real file (rate control searches
density and quantisation, tonal optimisation on); bpp is the file's size and PSNR that of
the decoder's output of the file.  JPEG: Pillow with optimised Huffman tables, the
quality whose file size is closest to the same target.  Rows go to a JSON-lines file
(``--out``), so a run can be resumed.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
from _results import command_line, write_section

HERE = Path(__file__).resolve().parent
MARK = "bench_codec"


from inpcodec.codec.metrics import psnr  # noqa: E402 (the project's one PSNR)


def jpeg_at(img, target_bpp):
    from PIL import Image

    n = img.shape[0] * img.shape[1]
    best = None
    for q in range(1, 96):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q, optimize=True)
        b = 8 * buf.tell() / n
        if best is None or abs(b - target_bpp) < abs(best[1] - target_bpp):
            best = (q, b, buf.getvalue())
        if b > 1.5 * target_bpp:
            break
    q, b, data = best
    with Image.open(io.BytesIO(data)) as im:
        dec = np.asarray(im.convert("L" if img.ndim == 2 else "RGB"))
    return q, b, psnr(dec, img)


def main():
    from PIL import Image

    from inpcodec.codec.pipeline import encode_report

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--images", default=None, help="comma-separated subset (default: all 24)")
    ap.add_argument("--bpp", default="0.1,0.2,0.3")
    ap.add_argument("--encoders", default="belhachmi")
    ap.add_argument("--modes", default="grey,colour")
    ap.add_argument("--levels", type=int, default=None,
                    help="fix the luma levels (the rate search then varies only the density: "
                    "4x fewer encodes, for the slow encoders)")
    ap.add_argument("--out", default=str(HERE / "results" / "codec.jsonl"))
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    command = command_line()
    folder = Path(args.kodak)
    names = args.images.split(",") if args.images else sorted(
        p.stem for p in folder.glob("kodim*.png"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in out.read_text().splitlines() if x.strip()] \
        if out.exists() else []
    have = {(r["image"], r["mode"], r["target"], r["codec"]) for r in rows}
    for name in names:
        with Image.open(folder / f"{name}.png") as im:
            rgb = np.asarray(im.convert("RGB"))
            grey = np.asarray(im.convert("L"))
        for mode in args.modes.split(","):
            img = grey if mode == "grey" else rgb
            for target in (float(b) for b in args.bpp.split(",")):
                for enc in args.encoders.split(","):
                    key = (name, mode, target, enc)
                    if key in have:
                        continue
                    t0 = time.perf_counter()
                    r = encode_report(img, bpp=target, encoder=enc, levels=args.levels)
                    row = {"image": name, "mode": mode, "target": target, "codec": enc,
                           "command": command,
                           "bpp": r.bpp, "psnr": r.psnr, "psnr_luma": r.psnr_luma,
                           "density": r.density, "levels": r.levels,
                           "chroma_levels": r.chroma_levels,
                           "mask_bits_per_point": r.mask_bits_per_point,
                           "value_bits_per_point": r.value_bits_per_point,
                           "encode_seconds": r.encode_seconds,
                           "decode_seconds": r.decode_seconds,
                           "wall_seconds": time.perf_counter() - t0}
                    rows.append(row)
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
                key = (name, mode, target, "jpeg")
                if key not in have:
                    q, b, p = jpeg_at(img, target)
                    row = {"image": name, "mode": mode, "target": target, "codec": "jpeg",
                           "bpp": b, "psnr": p, "quality": q}
                    rows.append(row)
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
    text = render(rows, args)
    print(text)
    if args.write_results:
        write_section(MARK, "## Codec: real files against JPEG", text)


def render(rows, args):
    imgs = sorted({r["image"] for r in rows})
    # Rows measured before the command was stored came from the first, Belhachmi-only run.
    first = ("python benchmarks/bench_codec.py --kodak ../shared/data/kodak "
             "--images kodim05,kodim13,kodim23")
    cmds = sorted({r.get("command", first) for r in rows if r["codec"] != "jpeg"})
    lines = ["Commands (each with `--write-results`): "
             + "; ".join(f"`{c}`" for c in cmds) + " "
             f"({len(imgs)} Kodak image{'s' if len(imgs) != 1 else ''}: {', '.join(imgs)}; "
             "raw rows, with the command of each, in `benchmarks/results/codec.jsonl`).", "",
             "Means over the images of each table (the slow encoders ran on fewer images, so "
             "each set of images gets its own table with every codec measured on all of "
             "them). bpp from the file size, PSNR of the decoded file (colour: over RGB); "
             "JPEG: Pillow, optimised Huffman, the quality closest to the target."]
    # every (mode, set of images) an encoder covers at all its targets gets a table
    groups = {}
    for mode in ("grey", "colour"):
        for codec in sorted({r["codec"] for r in rows if r["mode"] == mode}):
            done = frozenset(r["image"] for r in rows if r["mode"] == mode
                             and r["codec"] == codec)
            if done:
                groups.setdefault((mode, done), None)
    for mode, images in sorted(groups, key=lambda g: (g[0] != "grey", -len(g[1]))):
        codecs = [c for c in sorted({r["codec"] for r in rows}, key=lambda c: c == "jpeg")
                  if images <= {r["image"] for r in rows
                                if r["mode"] == mode and r["codec"] == c}]
        lines += ["", f"**{mode}, {len(images)} image{'s' if len(images) != 1 else ''}** "
                  f"({', '.join(sorted(images))})", "",
                  "| target bpp | codec | bpp | PSNR (dB) | density | levels | mask bits/point"
                  " | value bits/value | encode (s) | decode (s) |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for target in sorted({r["target"] for r in rows if r["mode"] == mode}):
            for codec in codecs:
                sel = [r for r in rows if r["mode"] == mode and r["target"] == target
                       and r["codec"] == codec and r["image"] in images]
                if not sel:
                    continue

                def m(k, fmt, sel=sel):
                    vals = [r[k] for r in sel if k in r]
                    return format(float(np.mean(vals)), fmt) if vals else "-"

                lines.append(
                    f"| {target:g} | {codec} | {m('bpp', '.3f')} | {m('psnr', '.2f')} | "
                    f"{m('density', '.4f')} | {m('levels', '.0f')} | "
                    f"{m('mask_bits_per_point', '.2f')} | {m('value_bits_per_point', '.2f')} | "
                    f"{m('encode_seconds', '.1f')} | {m('decode_seconds', '.2f')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
