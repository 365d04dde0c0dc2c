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

from inpcodec.codec.encoders import MaskEncoder, MaskResult, check_image, register, target_count
from inpcodec.codec.filters import gaussian_blur, laplacian


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


def _scaled_density(weight: np.ndarray, mass: float) -> np.ndarray:
    """min(1, s * weight) with s such that its entries sum to ``mass``.

    F(s) = sum min(1, s w) is concave, increasing and piecewise linear, so Newton's method
    started left of the root (s = mass / sum w, where F <= mass) climbs monotonically and
    is exact once the set of saturated pixels stops changing (a handful of O(n) steps).
    """
    n = weight.size
    total = float(weight.sum())
    if mass >= n:
        return np.ones_like(weight)
    if total <= 0.0:
        return np.full_like(weight, mass / n)
    s = mass / total
    for _ in range(200):
        sw = s * weight
        free = sw < 1.0
        value = float(n - np.count_nonzero(free)) + float(sw[free].sum())
        slope = float(weight[free].sum())
        if value >= mass * (1.0 - 1e-12) or slope <= 0.0:
            break
        s += (mass - value) / slope
    return np.minimum(1.0, s * weight)


def dither_to_count(weight: np.ndarray, count: int, *, serpentine: bool = True,
                    max_rounds: int = 8):
    """Floyd-Steinberg dithering of ``weight`` rescaled so that about ``count`` points fire.

    Error diffusion conserves the mass only up to the error pushed over the right and
    bottom borders, so the mass given to the ditherer is corrected by the observed
    shortfall (a few rounds, until within 0.5 %), and the last few points are then added
    or removed by rank of the density, ties broken by a fixed pseudo-random order so that
    they spread instead of piling up in scan order.  Returns (mask, density, dithered
    count before the fix-up).
    """
    mass = float(count)
    for _ in range(max_rounds):
        p = _scaled_density(weight, mass)
        mask = _floyd_steinberg(p, serpentine)
        got = int(mask.sum())
        if abs(got - count) <= 0.005 * count or got == 0:
            break
        mass = min(float(weight.size), mass * count / got)
    dithered = got
    diff = count - got
    if diff != 0:
        flat = mask.ravel()
        # a 1e-12 seeded jitter only reorders exact ties (e.g. a flat image)
        key = p.ravel() + 1e-12 * np.random.default_rng(0).random(flat.size)
        if diff > 0:
            cand = np.flatnonzero(~flat)
            flat[cand[np.argpartition(-key[cand], diff - 1)[:diff]]] = True
        else:
            cand = np.flatnonzero(flat)
            flat[cand[np.argpartition(key[cand], -diff - 1)[:-diff]]] = False
    return mask, p, dithered


def auto_sigma(density: float) -> float:
    """Pre-smoothing scale that follows the mean point spacing 1 / sqrt(density).

    Measured (benchmarks/bench_belhachmi_sigma.py): the best sigma grows as the mask gets
    sparser, about a third of the spacing: 3.5 at 1 %, 2.5 at 2 %, 1.75 at 4 %.
    """
    return 0.35 / np.sqrt(density)


def belhachmi_density(image, density: float, *, sigma: float | str = "auto") -> np.ndarray:
    """Belhachmi's density map: the confidences :func:`belhachmi_mask` dithers.

    The Laplacian magnitude of the image smoothed at ``sigma`` (reflecting boundaries),
    scaled so that ``min(1, s |Laplacian|)`` sums to ``density * H * W``.  It does not
    depend on the grey-value scale of the image.
    """
    f = check_image(image)
    count = target_count(f.shape, density)
    if isinstance(sigma, str):
        if sigma != "auto":
            raise ValueError(f"sigma must be a number or 'auto', got {sigma!r}")
        sigma = auto_sigma(density)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    g = gaussian_blur(f, sigma) if sigma > 0 else f
    weight = np.abs(laplacian(g))  # reflecting sides: the Neumann boundary
    return _scaled_density(weight, float(count))


def belhachmi_mask(image, density: float, *, sigma: float | str = "auto",
                   serpentine: bool = True) -> MaskResult:
    """Mask from the dithered Laplacian magnitude (Belhachmi et al. 2009).

    Parameters
    ----------
    image : array_like, shape (H, W)
        Grey image (any range).
    density : float
        Fraction of pixels to keep, in (0, 1].
    sigma : float or "auto"
        Standard deviation of the Gaussian pre-smoothing (0 for none); ``"auto"`` (default)
        scales it with the point spacing, :func:`auto_sigma`.
    serpentine : bool
        Serpentine scan in the Floyd-Steinberg dithering.

    Returns
    -------
    MaskResult
        The mask has exactly ``round(density * H * W)`` pixels (see
        :func:`dither_to_count`).  ``inpaintings`` is 0.
    """
    t0 = time.perf_counter()
    f = check_image(image)
    count = target_count(f.shape, density)
    if isinstance(sigma, str) and sigma == "auto":
        sigma = auto_sigma(density)
    p = belhachmi_density(f, density, sigma=sigma)
    mask, _, dithered = dither_to_count(p, count, serpentine=serpentine)
    return MaskResult(mask, 0, time.perf_counter() - t0,
                      {"method": "belhachmi", "sigma": sigma, "serpentine": serpentine,
                       "dithered_count": dithered, "target_count": count})


def _make(luma, density, *, levels=None, seed=0, progress=False, sigma=None):
    return belhachmi_mask(luma, density, sigma="auto" if sigma is None else sigma)


register(MaskEncoder(
    "belhachmi", _make, "Belhachmi et al. 2009: dithered Laplacian magnitude (no inpainting)",
    options=("sigma",)))
