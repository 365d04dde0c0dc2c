"""Belhachmi et al.'s analytic mask: dithered Laplacian magnitude.

Belhachmi, Bucur, Burgeth, Weickert (2009) show that in the continuous setting the optimal
density of known points for homogeneous diffusion inpainting is proportional to the
Laplacian magnitude of the image.  The discrete mask is that density, rescaled to the
target mean, turned into points by binary Floyd-Steinberg error diffusion.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit
from scipy.ndimage import gaussian_filter, laplace

from ._common import MaskResult, check_image, target_count


@njit(cache=True)
def _floyd_steinberg(p, serpentine):
    h, w = p.shape
    e = p.copy()
    out = np.zeros((h, w), np.bool_)
    for i in range(h):
        rev = serpentine and (i % 2 == 1)
        for k in range(w):
            j = w - 1 - k if rev else k
            step = -1 if rev else 1
            old = e[i, j]
            new = 1.0 if old >= 0.5 else 0.0
            out[i, j] = new == 1.0
            err = old - new
            jn = j + step
            if 0 <= jn < w:
                e[i, jn] += err * (7.0 / 16.0)
            if i + 1 < h:
                jb = j - step
                if 0 <= jb < w:
                    e[i + 1, jb] += err * (3.0 / 16.0)
                e[i + 1, j] += err * (5.0 / 16.0)
                if 0 <= jn < w:
                    e[i + 1, jn] += err * (1.0 / 16.0)
    return out


def floyd_steinberg(density, *, serpentine: bool = False) -> np.ndarray:
    """Binary Floyd-Steinberg error diffusion of a density map with values in [0, 1].

    Threshold 0.5; the quantisation error goes 7/16 to the next pixel in scan direction,
    3/16, 5/16, 1/16 to the row below.  With ``serpentine`` odd rows are scanned right to
    left (mirrored weights), which avoids the directional artefacts of a raster scan.
    """
    p = np.asarray(density, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"density must be 2-D, got shape {p.shape}")
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValueError("density must be finite and lie in [0, 1]")
    return _floyd_steinberg(p, serpentine)


def _scaled_density(weight: np.ndarray, count: int) -> np.ndarray:
    """min(1, s * weight) with s chosen by bisection so that the sum equals ``count``."""
    n = weight.size
    if count >= n:
        return np.ones_like(weight)
    if not np.any(weight > 0):
        return np.full_like(weight, count / n)
    lo, hi = 0.0, count / weight[weight > 0].min() * 2 + 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.minimum(1.0, mid * weight).sum() < count:
            lo = mid
        else:
            hi = mid
    return np.minimum(1.0, hi * weight)


def belhachmi_mask(image, density: float, *, sigma: float = 1.0,
                   serpentine: bool = True) -> MaskResult:
    """Mask from the dithered Laplacian magnitude (Belhachmi et al. 2009).

    Parameters
    ----------
    image : array_like, shape (H, W)
        Grey image (any range).
    density : float
        Fraction of pixels to keep, in (0, 1].
    sigma : float
        Standard deviation of the Gaussian pre-smoothing (0 for none).
    serpentine : bool
        Serpentine scan in the Floyd-Steinberg dithering.

    Returns
    -------
    MaskResult
        The mask has exactly ``round(density * H * W)`` pixels: after dithering (which
        conserves the mean up to the error lost at the borders) the few missing or
        surplus points are added at the largest, or removed at the smallest, remaining
        Laplacian magnitudes.  ``inpaintings`` is 0.
    """
    f = check_image(image)
    count = target_count(f.shape, density)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    t0 = time.perf_counter()
    g = gaussian_filter(f, sigma, mode="reflect") if sigma > 0 else f
    weight = np.abs(laplace(g, mode="reflect"))  # reflect = the Neumann boundary
    p = _scaled_density(weight, count)
    mask = _floyd_steinberg(p, serpentine)
    dithered = int(mask.sum())
    diff = count - dithered
    if diff != 0:  # exact count: fix the remainder by rank of the density
        flat, pf = mask.ravel(), p.ravel()
        if diff > 0:
            cand = np.flatnonzero(~flat)
            flat[cand[np.argsort(-pf[cand], kind="stable")[:diff]]] = True
        else:
            cand = np.flatnonzero(flat)
            flat[cand[np.argsort(pf[cand], kind="stable")[:-diff]]] = False
    return MaskResult(mask, 0, time.perf_counter() - t0,
                      {"method": "belhachmi", "sigma": sigma, "serpentine": serpentine,
                       "dithered_count": dithered, "target_count": count})
