"""Images that ship with the installed packages (no download, no data folder needed)."""

import numpy as np


def cameraman() -> np.ndarray:
    """The 512 x 512 grey cameraman bundled with scikit-image (uint8)."""
    from skimage import data  # noqa: PLC0415

    return data.camera()


def astronaut() -> np.ndarray:
    """The 512 x 512 RGB astronaut (NASA, public domain) bundled with scikit-image (uint8)."""
    from skimage import data  # noqa: PLC0415

    return data.astronaut()
