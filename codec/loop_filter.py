"""The decoder's loop filter: a small linear filter on the inpainted luma, fitted per file.

Homogeneous diffusion with tonally optimised values leaves a characteristic error: the
stored values over- and undershoot so that the smooth interpolant between them fits the
image on average, and the reconstruction has a cusp at every stored pixel.  A linear
filter of the inpainted luma, fitted by least squares to the original image by the
encoder and stored in the file (format version 6, section ``FILT``), removes much of that
error: on all 24 Kodak images at 0.05-0.3 bpp, at the same rate, +0.20 to +0.57 dB in grey
(every file gains) and +0.15 to +0.39 dB in colour (benchmarks/RESULTS.md, "The loop
filter").  Adaptive loop filters
of video codecs (the ALF of H.266/VVC) are the same idea for block transforms.

The filter (radius R, K classes, coefficient shift S) changes pixel p of class k to

    u'(p) = u(p) + b_k + sum_i c_{k,i} (u(p + o_i) + u(p - o_i) - 2 u(p))

over the ``(2R+1)^2 // 2`` offsets ``o_i`` of one half of the square window
(:func:`offsets`), with the image extended by reflection; ``c`` and ``b`` are integers
divided by ``2^S``.  The second differences keep the filter's response to a constant at
one whatever its quantised coefficients.  Class 0 holds the stored pixels, class j (1 <=
j < K) the pixels at chessboard distance j from the nearest stored pixel, the last class
also every pixel further away; with K = 1 one filter serves all pixels.

Decoding is float64 arithmetic in a fixed order per pixel (:func:`apply_loop_filter`), so
it gives the same values on every machine and thread count, like the solver.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy.ndimage import distance_transform_cdt

#: Largest radius and class count a file may hold (the encoder tries all of them).
MAX_RADIUS = 3
MAX_CLASSES = 4
#: The encoder's coefficient shift: steps of 2^-10 cost 0.00-0.01 dB against the
#: unquantised least-squares filter (every fourth default grey file of kodim01-24 at
#: 0.05/0.1/0.3 bpp, a one-off script).
SHIFT = 10
MAX_SHIFT = 15
_HEAD = struct.Struct("<BBB")  # radius, classes, shift
#: Rows of the image per block when the encoder sums the normal equations: the features
#: of 64 rows are in memory at a time, whatever the image's height.
_BLOCK_ROWS = 64


@dataclass(frozen=True)
class LoopFilter:
    """A fitted filter: ``coeffs`` int64 of shape (classes, len(offsets(radius)) + 1), the
    last column the bias, all in units of 2^-shift."""

    radius: int
    classes: int
    shift: int
    coeffs: np.ndarray

    def to_bytes(self) -> bytes:
        return _HEAD.pack(self.radius, self.classes, self.shift) + np.asarray(
            self.coeffs, "<i2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LoopFilter:
        """Parse a ``FILT`` section; ValueError (one line) for anything malformed."""
        if len(data) < _HEAD.size:
            raise ValueError("loop filter section is too short")
        radius, classes, shift = _HEAD.unpack(data[:_HEAD.size])
        if not (1 <= radius <= MAX_RADIUS and 1 <= classes <= MAX_CLASSES
                and shift <= MAX_SHIFT):
            raise ValueError(f"loop filter radius {radius}, classes {classes} or shift "
                             f"{shift} outside 1..{MAX_RADIUS}, 1..{MAX_CLASSES}, "
                             f"0..{MAX_SHIFT}")
        n = len(offsets(radius)) + 1
        if len(data) != _HEAD.size + 2 * classes * n:
            raise ValueError("loop filter section has the wrong length")
        coeffs = np.frombuffer(data[_HEAD.size:], "<i2").astype(np.int64)
        return cls(radius, classes, shift, coeffs.reshape(classes, n))

    @property
    def nbytes(self) -> int:
        return _HEAD.size + 2 * self.coeffs.size


def smallest_nbytes() -> int:
    """Payload bytes of the smallest filter (radius 1, one class)."""
    return _HEAD.size + 2 * (len(offsets(1)) + 1)


def offsets(radius: int) -> list:
    """One half of the (2R+1)^2 window without its centre: (dy, dx), dy > 0 or dx > 0."""
    return [(dy, dx) for dy in range(radius + 1) for dx in range(-radius, radius + 1)
            if dy > 0 or dx > 0]


def pixel_classes(mask: np.ndarray, classes: int) -> np.ndarray:
    """Class of each pixel (uint8): 0 stored, j at chessboard distance j, capped at K-1."""
    mask = np.asarray(mask, bool)
    if classes == 1:
        return np.zeros(mask.shape, np.uint8)
    dist = distance_transform_cdt(~mask, metric="chessboard") if mask.any() else \
        np.full(mask.shape, classes - 1)
    return np.minimum(dist, classes - 1).astype(np.uint8)


def _second_differences(padded, radius, rows, width):
    """The second difference of each offset for image rows ``rows`` (a slice)."""
    r0, r1 = rows.start + radius, rows.stop + radius
    centre = padded[r0:r1, radius:radius + width]
    for dy, dx in offsets(radius):
        yield (padded[r0 + dy:r1 + dy, radius + dx:radius + dx + width]
               + padded[r0 - dy:r1 - dy, radius - dx:radius - dx + width] - 2.0 * centre)


@njit(parallel=True, cache=True)
def _filter_kernel(padded, cls, coef, dy, dx, radius, out):  # pragma: no cover (JIT)
    h, w = out.shape
    n = dy.size
    for y in prange(h):
        for x in range(w):
            k = cls[y, x]
            centre = padded[y + radius, x + radius]
            twice = 2.0 * centre
            acc = coef[k, n]
            for i in range(n):
                a = padded[y + radius + dy[i], x + radius + dx[i]]
                b = padded[y + radius - dy[i], x + radius - dx[i]]
                acc += coef[k, i] * ((a + b) - twice)
            out[y, x] = centre + acc


def apply_loop_filter(u: np.ndarray, mask: np.ndarray, filt: LoopFilter) -> np.ndarray:
    """The filtered plane (float64): the decoder's reference arithmetic.

    Every pixel's sum is accumulated in the order of :func:`offsets`, bias first, one
    pixel per loop iteration (Numba without fast-math: no fused or reordered
    arithmetic, whatever the thread count), so the result is the same on every machine;
    ``tests/test_loop_filter.py`` checks it bit for bit against element-wise numpy.
    """
    u = np.asarray(u, np.float64)
    coef = filt.coeffs.astype(np.float64) * 2.0 ** -filt.shift  # exact: |c| < 2^15
    cls = pixel_classes(mask, filt.classes)
    padded = np.pad(u, filt.radius, mode="reflect")
    off = np.array(offsets(filt.radius), np.int64)
    out = np.empty_like(u)
    _filter_kernel(padded, cls, coef, off[:, 0].copy(), off[:, 1].copy(), filt.radius, out)
    return out


def _normal_equations(u, target, mask):
    """Per class of the largest shape (MAX_RADIUS, MAX_CLASSES): X^T X, X^T y and y^T y of
    the least-squares problem, with y = target - u; summed over blocks of rows, so the
    features take memory O(width x block) whatever the image size."""
    h, w = u.shape
    n = len(offsets(MAX_RADIUS)) + 1
    cls = pixel_classes(mask, MAX_CLASSES)
    gram = np.zeros((MAX_CLASSES, n, n))
    rhs = np.zeros((MAX_CLASSES, n))
    yy = np.zeros(MAX_CLASSES)
    padded = np.pad(u, MAX_RADIUS, mode="reflect")
    for start in range(0, h, _BLOCK_ROWS):
        rows = slice(start, min(h, start + _BLOCK_ROWS))
        x = np.empty((rows.stop - rows.start, w, n))
        for i, d in enumerate(_second_differences(padded, MAX_RADIUS, rows, w)):
            x[..., i] = d
        x[..., -1] = 1.0
        # the block's pixels grouped by class: one gather, then contiguous slices
        k = cls[rows].ravel()
        order = np.argsort(k, kind="stable")
        xs = x.reshape(-1, n)[order]
        ys = (target[rows] - u[rows]).ravel()[order]
        ends = np.searchsorted(k[order], np.arange(MAX_CLASSES + 1))
        for c in range(MAX_CLASSES):
            a, b = ends[c], ends[c + 1]
            if b > a:
                gram[c] += xs[a:b].T @ xs[a:b]
                rhs[c] += xs[a:b].T @ ys[a:b]
                yy[c] += ys[a:b] @ ys[a:b]
    return gram, rhs, yy


def _shape_of(gram, rhs, yy, radius, classes):
    """The normal equations of a smaller shape, from those of the largest: its offsets
    are a subset of the largest radius's, its classes unions of the largest's."""
    inner = [i for i, (dy, dx) in enumerate(offsets(MAX_RADIUS))
             if abs(dy) <= radius and abs(dx) <= radius] + [gram.shape[1] - 1]
    groups = [[c] for c in range(classes - 1)] + [list(range(classes - 1, MAX_CLASSES))]
    if classes == 1:
        groups = [list(range(MAX_CLASSES))]
    idx = np.ix_(inner, inner)
    return ([gram[g].sum(0)[idx] for g in groups], [rhs[g].sum(0)[inner] for g in groups],
            [yy[g].sum() for g in groups])


def _solve(gram, rhs, radius, classes, shift):
    """Quantised least-squares coefficients per class (identity where a class has fewer
    pixels than coefficients or no finite solution), in steps of 2^-shift, or coarser
    steps where the largest coefficient would not fit in int16."""
    n = len(offsets(radius)) + 1
    sols = np.zeros((classes, n))
    for c in range(classes):
        if gram[c][-1, -1] < n:
            continue
        sol, *_ = np.linalg.lstsq(gram[c], rhs[c], rcond=1e-12)
        if np.all(np.isfinite(sol)):
            sols[c] = sol
    limit = 2 ** 15 - 1
    biggest = float(np.abs(sols).max())
    while shift > 0 and biggest * 2.0 ** shift > limit:
        shift -= 1
    coeffs = np.clip(np.rint(sols * 2.0 ** shift), -limit, limit).astype(np.int64)
    return LoopFilter(radius, classes, shift, coeffs)


def fit_loop_filter(u: np.ndarray, target: np.ndarray, mask: np.ndarray, radius: int,
                    classes: int, shift: int = SHIFT) -> LoopFilter:
    """The least-squares filter of this shape that maps ``u`` nearest to ``target``
    (coefficients rounded to steps of 2^-shift, coarser where they would not fit in
    int16)."""
    if not (1 <= radius <= MAX_RADIUS and 1 <= classes <= MAX_CLASSES):
        raise ValueError(f"radius and classes must lie in 1..{MAX_RADIUS}, "
                         f"1..{MAX_CLASSES}")
    u, target = np.asarray(u, np.float64), np.asarray(target, np.float64)
    g, r, _ = _shape_of(*_normal_equations(u, target, mask), radius, classes)
    return _solve(g, r, radius, classes, shift)


def choose_loop_filter(u: np.ndarray, target: np.ndarray, mask: np.ndarray,
                       file_bytes: int, *, rd_slope: float, section_overhead: int,
                       max_bytes: int | None = None):
    """The filter shape that pays most, or None where none pays.

    Every radius 1..MAX_RADIUS and class count 1..MAX_CLASSES is fitted from one pass of
    normal equations, and judged by its squared error against ``target`` (exact for the
    quantised coefficients, before rounding to 8 bits).  A filter pays where its PSNR
    gain exceeds the cost of its bytes at ``rd_slope`` dB per doubling of the file
    (codec.rate.RD_SLOPE), and the file with it and its section's ``section_overhead``
    bytes must stay within ``max_bytes``.
    """
    u, target = np.asarray(u, np.float64), np.asarray(target, np.float64)
    eqs = _normal_equations(u, target, mask)
    best, best_score = None, 10 * math.log10(max(float(eqs[2].sum()), 1e-12))
    for radius in range(1, MAX_RADIUS + 1):
        for classes in range(1, MAX_CLASSES + 1):
            gram, rhs, yy = _shape_of(*eqs, radius, classes)
            filt = _solve(gram, rhs, radius, classes, SHIFT)
            size = file_bytes + filt.nbytes + section_overhead
            if max_bytes is not None and size > max_bytes:
                continue
            q = filt.coeffs * 2.0 ** -filt.shift
            err = sum(yy[c] - 2 * q[c] @ rhs[c] + q[c] @ gram[c] @ q[c]
                      for c in range(classes))
            # squared error in dB plus the rate's price: lower is better
            score = (10 * math.log10(max(float(err), 1e-12))
                     + rd_slope * math.log2(size / file_bytes))
            if score < best_score:
                best, best_score = filt, score
    return best
