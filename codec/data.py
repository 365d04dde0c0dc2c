"""Images: those that ship with the installed packages (no download, no data folder
needed), and the image files of training and benchmark folders."""

from pathlib import Path

import numpy as np

#: File suffixes read as images from data folders (Pillow reads them all).
IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".pnm", ".tif", ".tiff", ".bmp", ".webp", ".jpg",
                  ".jpeg")


def find_images(folders) -> list[Path]:
    """All image files under the folders, sorted (a fixed order for a fixed seed)."""
    files = []
    for folder in folders:
        p = Path(folder)
        if not p.is_dir():
            raise ValueError(f"data folder {folder!r} does not exist or is not a folder")
        files += [q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in "
                         f"{', '.join(map(str, folders))}")
    return sorted(files)




def cameraman() -> np.ndarray:
    """The 512 x 512 grey cameraman bundled with scikit-image (uint8)."""
    from skimage import data  # noqa: PLC0415

    return data.camera()


def astronaut() -> np.ndarray:
    """The 512 x 512 RGB astronaut (NASA, public domain) bundled with scikit-image (uint8)."""
    from skimage import data  # noqa: PLC0415

    return data.astronaut()
