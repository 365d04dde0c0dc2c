"""Picture sheet: the same crops of a few Kodak images decoded by each codec at one rate.

    python benchmarks/picture_sheet.py --kodak ../shared/data/kodak --write-results

Every codec compresses the *whole* image at ``--bpp`` (the reference codecs through
Pillow at the quality whose file is closest to the rate, as ``inpcodec bench`` does;
inpcodec with its rate search), the real file is decoded, and a ``--crop`` square of the
decoded image is shown beside the same square of the original.  Each tile is titled with
the file's real bpp and the PSNR of the whole image (RGB).  For the inpcodec codecs the
table below the sheet splits their files: mask points, bits per point of the positions,
bits per stored value.  The sheet goes to ``benchmarks/results/picture_sheet.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _results import command_line, write_section

HERE = Path(__file__).resolve().parent
MARK = "picture_sheet"
#: Crop centres (row, column) per image: detail a viewer looks at (faces, text, edges).
CENTRES = {"kodim05": (250, 420), "kodim15": (180, 330), "kodim23": (170, 360),
           "kodim19": (400, 300), "kodim08": (300, 380)}


def crop(img, centre, side):
    h, w = img.shape[:2]
    y = int(np.clip(centre[0] - side // 2, 0, h - side))
    x = int(np.clip(centre[1] - side // 2, 0, w - side))
    return img[y:y + side, x:x + side]


def encode_decode(img, codec, bpp):
    """(decoded image, real bpp, extra info) of ``codec`` at ``bpp``."""
    from inpcodec.bitstreams import container
    from inpcodec.codec.bench.jobs import parse_codec
    from inpcodec.codec.bench.refcodecs import encode_at_rate, pillow_decode
    from inpcodec.codec.pipeline import decode, encode_report

    n = img.shape[0] * img.shape[1]
    spec = parse_codec(codec)
    if spec.kind == "reference":
        data, _ = encode_at_rate(img, codec, bpp)
        return pillow_decode(data, img.ndim == 2), 8.0 * len(data) / n, {}
    r = encode_report(img, encoder=spec.encoder, bpp=bpp, tonal=spec.tonal,
                      effort=spec.effort)
    dec = decode(r.data, postprocess=spec.postprocess)
    sections = container.read(r.data).sections
    extra = {"points": r.points, "mask_bits_per_point": 8.0 * r.bytes_mask / r.points,
             "luma_bits_per_value": 8.0 * len(sections["VAL0"]) / r.points,
             "chroma_bytes": sum(len(sections.get(k, b"")) for k in ("VAL1", "VAL2")),
             "levels": f"{r.levels}/{r.chroma_levels}"}
    return dec, r.bpp, extra


def main():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from inpcodec.codec.metrics import psnr

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True, type=Path)
    ap.add_argument("--images", default="kodim05,kodim15,kodim23")
    ap.add_argument("--codecs", default="jpeg,jpeg2000,webp,avif,jpegxl,tree-rdo-fast,belhachmi")
    ap.add_argument("--bpp", type=float, default=0.1)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--out", default=str(HERE / "results" / "picture_sheet.png"))
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    names, codecs = args.images.split(","), args.codecs.split(",")
    fig, axes = plt.subplots(len(names), len(codecs) + 1,
                             figsize=(2.2 * (len(codecs) + 1), 2.75 * len(names)),
                             squeeze=False)
    rows = []
    for i, name in enumerate(names):
        with Image.open(args.kodak / f"{name}.png") as im:
            img = np.asarray(im.convert("RGB"))
        centre = CENTRES.get(name, (img.shape[0] // 2, img.shape[1] // 2))
        axes[i][0].imshow(crop(img, centre, args.crop))
        axes[i][0].set_title(f"{name}\noriginal", fontsize=8)
        for j, codec in enumerate(codecs):
            t0 = time.perf_counter()
            dec, bpp, extra = encode_decode(img, codec, args.bpp)
            p = psnr(dec, img)
            rows.append({"image": name, "codec": codec, "bpp": bpp, "psnr": p, **extra,
                         "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
            axes[i][j + 1].imshow(crop(dec, centre, args.crop))
            axes[i][j + 1].set_title(f"{codec}\n{bpp:.3f} bpp, {p:.2f} dB", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Kodak at {args.bpp:g} bpp: {args.crop} x {args.crop} crops of the decoded "
                 "images (bpp and PSNR of the whole image, RGB)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    lines = ["| image | codec | bpp | PSNR (dB) | mask points | position bits / point | "
             "luma bits / value | chroma bytes | levels |", "|---" * 9 + "|"]
    for r in rows:
        if "points" in r:
            lines.append(f"| {r['image']} | {r['codec']} | {r['bpp']:.4f} | {r['psnr']:.2f} | "
                         f"{r['points']} | {r['mask_bits_per_point']:.2f} | "
                         f"{r['luma_bits_per_value']:.2f} | {r['chroma_bytes']} | "
                         f"{r['levels']} |")
        else:
            lines.append(f"| {r['image']} | {r['codec']} | {r['bpp']:.4f} | {r['psnr']:.2f} "
                         "| | | | | |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        cmd = command_line()
        rel = Path(args.out).resolve().relative_to(HERE)
        write_section(MARK, "### Picture sheet at 0.1 bpp (issue 20)",
                      f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')})\n\n![picture sheet]"
                      f"({rel.as_posix()})\n\n{text}")


if __name__ == "__main__":
    main()
