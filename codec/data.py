"""Images that ship with the installed package (no download, no data folder needed)."""

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).parent / "samples"


def cameraman() -> np.ndarray:
    """The 512 x 512 grey cameraman (uint8; CC0, Lav Varshney, as in scikit-image:
    ``codec/samples/README.md``)."""
    with Image.open(SAMPLES / "cameraman.png") as im:
        return np.asarray(im.convert("L"))
