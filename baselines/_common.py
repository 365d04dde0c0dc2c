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


class Budget:
    """Stops a long search after a wall time or a number of inpaintings, whichever first.

    Parameters
    ----------
    max_seconds : float, optional
    max_inpaintings : int, optional
        ``None`` means no limit.
    """

    def __init__(self, max_seconds: float | None = None, max_inpaintings: int | None = None):
        import time  # noqa: PLC0415

        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        if max_inpaintings is not None and max_inpaintings < 1:
            raise ValueError(f"max_inpaintings must be at least 1, got {max_inpaintings}")
        self._clock = time.perf_counter
        self.start = self._clock()
        self.max_seconds = max_seconds
        self.max_inpaintings = max_inpaintings
        self.inpaintings = 0

    def spend(self, n: int = 1) -> None:
        self.inpaintings += n

    @property
    def seconds(self) -> float:
        return self._clock() - self.start

    def exhausted(self) -> bool:
        if self.max_inpaintings is not None and self.inpaintings >= self.max_inpaintings:
            return True
        return self.max_seconds is not None and self.seconds >= self.max_seconds


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar when ``enabled`` (the CLI), a silent stand-in otherwise."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, unit="step")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(np.mean(d * d))
