"""Colour transforms of the codec and the luma-guided chroma reconstruction (element-wise
float64 arithmetic and fixed-order running sums: no BLAS, so the same result on every
machine)."""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JPEG (BT.601 full range) RGB -> YCbCr, element-wise in float64 (no BLAS)."""
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168735892 * r - 0.331264108 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418687589 * g - 0.081312411 * b
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128.0, ycc[..., 2] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136286 * cb - 0.714136286 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1)


@njit(inline="always")
def _reflect(i, n):
    """Index i of a line of n samples extended by half-sample reflection (period 2n)."""
    i %= 2 * n
    return i if i < n else 2 * n - 1 - i


@njit(cache=True)
def _window_ends(n, r):
    """For a running window sum along a line of n samples: the reflected indices of the
    first window's samples, and per position j the sample that enters (j + r + 1) and
    the one that leaves (j - r) on the step to j + 1."""
    first = np.empty(2 * r + 1, np.int64)
    for k in range(-r, r + 1):
        first[k + r] = _reflect(k, n)
    enter = np.empty(n, np.int64)
    leave = np.empty(n, np.int64)
    for j in range(n):
        enter[j] = _reflect(j + r + 1, n)
        leave[j] = _reflect(j - r, n)
    return first, enter, leave


def _box_sums(x, r, out):
    """out[p] = sums of the (2r+1)^2 windows of x[p] (reflected edges): running sums
    along each row, then down each column (one plane of row sums at a time: O(H W)
    extra memory)."""
    rows = np.empty(x.shape[1:])
    firsts = _window_ends(x.shape[2], r), _window_ends(x.shape[1], r)
    # a chunk of columns per thread, of at least 256: a row's span is then read in one
    # run (chunks of 64 columns, 512 bytes a row, took twice the time at 4 MP)
    chunk = max(256, -(-x.shape[2] // get_num_threads()))
    for p in range(x.shape[0]):
        _row_sums(x[p], r, *firsts[0], rows)
        _column_sums(rows, r, *firsts[1], out[p], chunk)


@njit(parallel=True, cache=True)
def _row_sums(x, r, first, enter, leave, out):
    """Window sums along each row of x (H, W); one thread per row, in a fixed order, so
    the result does not depend on the thread count."""
    h, w = x.shape
    for i in prange(h):
        line, dst = x[i], out[i]
        s = 0.0
        for k in range(2 * r + 1):
            s += line[first[k]]
        for j in range(w):
            dst[j] = s
            s = (s + line[enter[j]]) - line[leave[j]]


@njit(parallel=True, cache=True)
def _column_sums(rows, r, first, enter, leave, out, chunk):
    """Window sums down each column of rows (H, W); one thread per ``chunk`` columns, in
    a fixed order (each column's sums are the same whatever the chunks)."""
    h, w = rows.shape
    for t in prange((w + chunk - 1) // chunk):
        j0 = t * chunk
        j1 = min(j0 + chunk, w)
        acc = np.zeros(j1 - j0)
        for k in range(2 * r + 1):
            src = rows[first[k]]
            for j in range(j0, j1):
                acc[j - j0] += src[j]
        for i in range(h):
            a, b, dst = rows[enter[i]], rows[leave[i]], out[i]
            for j in range(j0, j1):
                dst[j] = acc[j - j0]
                acc[j - j0] = (acc[j - j0] + a[j]) - b[j]


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean of each (2 radius + 1)^2 window of each plane of ``x`` ((H, W) or (P, H, W)),
    the image extended by half-sample reflection (``d c b a | a b c d``, repeated where
    the window outruns the image).

    Running sums in float64, along each row and then down each column, in a fixed order
    (:func:`_box_sums`): the same result on every machine and thread count.
    """
    x = np.asarray(x, np.float64)
    stack = np.ascontiguousarray(x.reshape((-1,) + x.shape[-2:]))
    out = np.empty_like(stack)
    _box_sums(stack, int(radius), out)
    k = 2 * int(radius) + 1
    return (out / (k * k)).reshape(x.shape)


def guide_chroma(planes: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """(H, W, 3) YCbCr planes with Cb and Cr replaced by the guided filter (He, Sun and
    Tang, "Guided image filtering", ECCV 2010 / TPAMI 2013) of each, the Y plane as guide.

    In every (2 radius + 1)^2 window chroma is fitted as a * Y + b by least squares
    regularised by ``eps`` (a variance on the 0-255 scale: edges of luma contrast well
    above sqrt(eps) carry over to chroma, flatter luma smooths it); each pixel takes the
    mean of the coefficients of the windows that hold it.  Float64, element-wise and
    :func:`box_mean` only, so deterministic.  This is how a format-version-4 decoder
    reconstructs chroma (``bitstreams/FORMAT.md``, "Chroma guided by the luma").
    """
    planes = np.ascontiguousarray(planes, np.float64)
    return guided_rows(planes, guide_sums(planes, radius, eps), radius, slice(None))


def guide_sums(planes: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The window sums of the guided filter's coefficients a_Cb, a_Cr, b_Cb, b_Cr (in
    the first four planes of the (6, H, W) array returned): what
    :func:`guided_rows` turns into chroma, a strip of rows at a time if need be."""
    r = int(radius)
    k2 = float((2 * r + 1) ** 2)
    work = _guide_inputs(np.ascontiguousarray(planes, np.float64))
    # in place (O(H W) memory): each plane's row sums are taken before its window sums
    # are written, and each pixel's coefficients after its sums are read
    _box_sums(work, r, work)
    _guide_coefficients(work, k2, float(eps))
    _box_sums(work[:4], r, work[:4])
    return work


def guided_rows(planes: np.ndarray, sums: np.ndarray, radius: int, rows: slice) -> np.ndarray:
    """Rows ``rows`` of :func:`guide_chroma`'s result, from :func:`guide_sums`'s ``sums``
    (the same arithmetic per pixel, whichever rows)."""
    k2 = float((2 * int(radius) + 1) ** 2)
    return _guide_apply(planes[rows], sums[:, rows], k2)


@njit(parallel=True, cache=True)
def _guide_inputs(planes):
    """The planes whose window means the guided filter needs: Y, Cb, Cr, Y^2, Y Cb, Y Cr."""
    h, w, _ = planes.shape
    out = np.empty((6, h, w))
    for i in prange(h):
        for j in range(w):
            y, cb, cr = planes[i, j, 0], planes[i, j, 1], planes[i, j, 2]
            out[0, i, j] = y
            out[1, i, j] = cb
            out[2, i, j] = cr
            out[3, i, j] = y * y
            out[4, i, j] = y * cb
            out[5, i, j] = y * cr
    return out


@njit(parallel=True, cache=True)
def _guide_coefficients(work, k2, eps):
    """Per window the line chroma ~ a Y + b (ridge eps) from the window sums of Y, Cb,
    Cr, Y^2, Y Cb, Y Cr in work[0:6]; written over work[0:4] as a_Cb, a_Cr, b_Cb, b_Cr."""
    _, h, w = work.shape
    for i in prange(h):
        for j in range(w):
            my = work[0, i, j] / k2
            var = work[3, i, j] / k2 - my * my
            mcb, mcr = work[1, i, j] / k2, work[2, i, j] / k2
            acb = (work[4, i, j] / k2 - my * mcb) / (var + eps)
            acr = (work[5, i, j] / k2 - my * mcr) / (var + eps)
            work[0, i, j] = acb
            work[1, i, j] = acr
            work[2, i, j] = mcb - acb * my
            work[3, i, j] = mcr - acr * my


@njit(parallel=True, cache=True)
def _guide_apply(planes, sums, k2):
    """Y kept; chroma = (window mean of a) Y + (window mean of b)."""
    h, w, _ = planes.shape
    out = np.empty_like(planes)
    for i in prange(h):
        for j in range(w):
            y = planes[i, j, 0]
            out[i, j, 0] = y
            for c in range(2):
                out[i, j, 1 + c] = (sums[c, i, j] / k2) * y + sums[2 + c, i, j] / k2
    return out
