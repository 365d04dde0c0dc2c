"""The four image filters the codec uses, with reflecting boundaries.

Why not ``scipy.ndimage``: SciPy is 143 MB of the light install's 472 (issue 39's bound
is 400 MB), and the codec used four of its filters, each a few lines.  These follow
``scipy.ndimage``'s definitions and summation order (``mode="reflect"``: d c b a | a b c d,
repeated for windows wider than the image), so that they give the same values to the
last bit: ``tests/test_filters.py`` checks each against SciPy, which stays the tests' reference
(``inpcodec[dev]``).

- :func:`chessboard_distance`: ``distance_transform_cdt(~mask, metric="chessboard")``,
  capped (the loop filter's distance classes, in the decoder);
- :func:`uniform_mean`: ``uniform_filter(a, size)`` (the tree teacher's error maps);
- :func:`gaussian_blur`: ``gaussian_filter(a, sigma)`` (Belhachmi's density);
- :func:`laplacian`: ``laplace(a)`` (Belhachmi's density).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Gaussian kernels reach this many standard deviations (SciPy's ``truncate``).
GAUSSIAN_TRUNCATE = 4.0


@njit(cache=True)
def _chessboard(mask, cap, out):  # pragma: no cover (JIT)
    # Two raster passes over the 8-neighbourhood with unit steps: exact for the chessboard
    # metric.  Capping every value keeps it exact (min(cap, min(d + 1)) = min(cap, t + 1)
    # for d = min(cap, t)) and lets it live in one byte.
    h, w = mask.shape
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                out[y, x] = 0
                continue
            d = cap
            if y > 0:
                for dx in (-1, 0, 1):
                    if 0 <= x + dx < w and out[y - 1, x + dx] + 1 < d:
                        d = out[y - 1, x + dx] + 1
            if x > 0 and out[y, x - 1] + 1 < d:
                d = out[y, x - 1] + 1
            out[y, x] = d
    for y in range(h - 1, -1, -1):
        for x in range(w - 1, -1, -1):
            d = out[y, x]
            if d == 0:
                continue
            if y < h - 1:
                for dx in (-1, 0, 1):
                    if 0 <= x + dx < w and out[y + 1, x + dx] + 1 < d:
                        d = out[y + 1, x + dx] + 1
            if x < w - 1 and out[y, x + 1] + 1 < d:
                d = out[y, x + 1] + 1
            out[y, x] = d


def chessboard_distance(mask: np.ndarray, cap: int = 255) -> np.ndarray:
    """Chessboard distance (max(|dy|, |dx|)) of each pixel to the nearest True pixel of
    ``mask``, capped at ``cap`` (at most 255), as uint8; ``cap`` everywhere where the
    mask is empty.  One byte per pixel and no temporary images."""
    if not 0 <= cap <= 255:
        raise ValueError(f"cap must lie in 0..255, got {cap}")
    mask = np.ascontiguousarray(mask, dtype=bool)
    out = np.empty(mask.shape, np.uint8)
    _chessboard(mask, np.uint8(cap), out)
    return out


def _reflect_pad(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """``a`` (2-D) extended along its last axis as ``scipy.ndimage``'s ``reflect``."""
    return np.pad(a, ((0, 0), (before, after)), mode="symmetric")


@njit(cache=True)
def _running_mean_rows(p, size, out):  # pragma: no cover (JIT)
    # scipy.ndimage's uniform_filter1d, in its order: the first window summed, then the
    # running sum moved by (entering - leaving), each output divided by size
    for i in range(out.shape[0]):
        tmp = 0.0
        for k in range(size):
            tmp += p[i, k]
        out[i, 0] = tmp / size
        for j in range(1, out.shape[1]):
            tmp += p[i, j + size - 1] - p[i, j - 1]
            out[i, j] = tmp / size


@njit(cache=True)
def _symmetric_correlate_rows(p, half, out):  # pragma: no cover (JIT)
    # scipy.ndimage's correlate1d for a symmetric kernel (``half`` = its centre and right
    # half), in its order: centre first, then the pairs from the outermost in
    r = half.size - 1
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            c = j + r
            tmp = p[i, c] * half[0]
            for k in range(r, 0, -1):
                tmp += (p[i, c - k] + p[i, c + k]) * half[k]
            out[i, j] = tmp


def _rows_then_columns(a: np.ndarray, rows) -> np.ndarray:
    """``rows`` (a filter of the last axis) applied along axis 0, then axis 1, as
    ``scipy.ndimage`` applies a separable filter."""
    a = np.asarray(a, np.float64)
    return rows(np.ascontiguousarray(rows(np.ascontiguousarray(a.T)).T))


def uniform_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size`` x ``size`` window (SciPy's ``uniform_filter``, reflecting;
    even windows reach one pixel further back than forward).

    Not :func:`.colour.box_mean`: that one takes odd windows only (a radius) and sums in
    the chroma guide's own order, which the decoder fixes; this one must equal SciPy's,
    with which the tree-map network's training targets were made."""
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if size == 1:  # SciPy skips it: no running sum's rounding
        return np.array(a, np.float64)

    def rows(x):
        out = np.empty_like(x)
        _running_mean_rows(_reflect_pad(x, size // 2, size - 1 - size // 2), size, out)
        return out

    return _rows_then_columns(a, rows)


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter of standard deviation ``sigma`` pixels, truncated at
    :data:`GAUSSIAN_TRUNCATE` sigma (SciPy's ``gaussian_filter``, reflecting)."""
    sigma = float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    radius = int(GAUSSIAN_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    half = np.ascontiguousarray((phi / phi.sum())[radius:])

    def rows(y):
        out = np.empty_like(y)
        _symmetric_correlate_rows(_reflect_pad(y, radius, radius), half, out)
        return out

    return _rows_then_columns(a, rows)


def laplacian(a: np.ndarray) -> np.ndarray:
    """The 5-point Laplacian with reflecting sides (SciPy's ``laplace``): the second
    differences along axis 0 plus those along axis 1."""
    a = np.asarray(a, np.float64)
    p0 = np.pad(a, ((1, 1), (0, 0)), mode="symmetric")
    p1 = np.pad(a, ((0, 0), (1, 1)), mode="symmetric")
    d0 = p0[1:-1] * -2.0 + (p0[:-2] + p0[2:])
    d1 = p1[:, 1:-1] * -2.0 + (p1[:, :-2] + p1[:, 2:])
    return d0 + d1
