"""Write the bundled test images to a folder, for `inpcodec bench` (which reads folders).

    python benchmarks/sample_images.py ../runs/cameraman            # 512 x 512 cameraman
    python benchmarks/sample_images.py ../runs/cameraman256 --side 256

The cameraman is scikit-image's (`codec.data.cameraman`); ``--side`` resizes it (cubic,
anti-aliased, as the other benchmarks' 256 x 256 cameraman: the seed paper's size).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main():
    from PIL import Image
    from skimage.transform import resize

    from inpcodec.codec.data import cameraman

    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--side", type=int, default=None, help="resize to side x side")
    args = ap.parse_args()
    img = cameraman()
    if args.side:
        img = resize(img.astype(float), (args.side, args.side), order=3, anti_aliasing=True)
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    out = Path(args.folder)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(out / "cameraman.png")
    print(f"wrote {out / 'cameraman.png'} ({img.shape[1]} x {img.shape[0]})")


if __name__ == "__main__":
    main()
