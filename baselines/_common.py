"""What every mask encoder returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MaskResult:
    """A binary inpainting mask and what it cost to find.

    Attributes
    ----------
    mask : ndarray of bool, shape (H, W)
        True at the pixels to store.
    inpaintings : int
        Number of inpainting solves spent (0 for analytic methods).
    seconds : float
        Wall time of the mask generation.
    info : dict
        Method-specific details (parameters, intermediate figures).
    """

    mask: np.ndarray
    inpaintings: int
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def density(self) -> float:
        return float(self.mask.mean())


def check_image(image, name: str = "image") -> np.ndarray:
    """A finite, non-empty 2-D grey image as float64."""
    a = np.asarray(image)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer)
                               or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grey image, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def target_count(shape, density: float) -> int:
    """Number of mask pixels for a density in (0, 1]; at least one."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    return max(1, int(round(density * shape[0] * shape[1])))
