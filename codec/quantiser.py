"""The uniform quantiser of the stored values."""

from __future__ import annotations

import numpy as np

#: Most quantisation levels a file may use.
MAX_LEVELS = 4096


def quantiser(levels: int) -> np.ndarray:
    """The reconstruction values of a uniform quantiser of [0, 255] with ``levels`` levels."""
    return np.arange(levels, dtype=np.float64) * (255.0 / (levels - 1))


def quantise(v: np.ndarray, levels: int) -> np.ndarray:
    return np.clip(np.rint(np.asarray(v, np.float64) * ((levels - 1) / 255.0)), 0,
                   levels - 1).astype(np.int64)
