"""Numba kernels of the rate-distortion-optimised tree encoder (:func:`.tree.rdo_order`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _local_sse_change(u, f, known, chg, on, wy0, wy1, wx0, wx1, tol, max_iter):
    """Change of the squared error inside the window [wy0, wy1] x [wx0, wx1] when the mask
    points ``chg`` (flat pixel indices) are switched to ``on``: homogeneous diffusion
    re-solved inside the window by SOR, with ``u`` (the current reconstruction) as
    Dirichlet data on window sides inside the image and reflecting sides on the image's
    border; mask points hold ``f``."""
    height, width = u.shape
    h, w = wy1 - wy0 + 1, wx1 - wx0 + 1
    # the window with a ring of zeros, flat: a free pixel's four neighbours are read
    # without bounds checks (a side's missing neighbour adds 0.0, which is exact)
    wp = w + 2
    v = np.zeros((h + 2) * wp)
    fixed = np.zeros((h, w), np.bool_)
    before = 0.0
    for i in range(h):
        y = wy0 + i
        for j in range(w):
            x = wx0 + j
            v[(i + 1) * wp + j + 1] = u[y, x]
            before += (u[y, x] - f[y, x]) ** 2
            if known[y, x]:
                fixed[i, j] = True
                v[(i + 1) * wp + j + 1] = f[y, x]
            elif ((i == 0 and y > 0) or (i == h - 1 and y < height - 1)
                  or (j == 0 and x > 0) or (j == w - 1 and x < width - 1)):
                fixed[i, j] = True
    for k in range(chg.size):
        y, x = chg[k] // width, chg[k] % width
        fixed[y - wy0, x - wx0] = on[k]
        if on[k]:
            v[(y - wy0 + 1) * wp + x - wx0 + 1] = f[y, x]
    # the free pixels in raster order (SOR's order), with their neighbour counts
    n_free = h * w - np.count_nonzero(fixed)
    at = np.empty(n_free, np.int64)
    count = np.empty(n_free)
    k = 0
    for i in range(h):
        for j in range(w):
            if not fixed[i, j]:
                at[k] = (i + 1) * wp + j + 1
                count[k] = (i > 0) + (i < h - 1) + (j > 0) + (j < w - 1)
                k += 1
    omega = 2.0 / (1.0 + np.sin(np.pi / (max(h, w) + 1)))
    for _ in range(max_iter):
        largest = 0.0
        for k in range(n_free):
            p = at[k]
            s = ((v[p - wp] + v[p + wp]) + v[p - 1]) + v[p + 1]
            c = count[k]
            # x * 0.25 is x / 4 exactly; the division's latency, on SOR's chain of
            # dependent updates, is left to the few pixels on the image's sides
            mean = s * 0.25 if c == 4.0 else s / c
            step = omega * (mean - v[p])
            v[p] += step
            if abs(step) > largest:
                largest = abs(step)
        if largest < tol:
            break
    after = 0.0
    for i in range(h):
        for j in range(w):
            after += (v[(i + 1) * wp + j + 1] - f[wy0 + i, wx0 + j]) ** 2
    return after - before


@njit(parallel=True, cache=True)
def merge_costs(u, f, count, old_pts, new_pts, windows, tol, max_iter):
    """For each twig t (a split cell whose children are all leaves): the change of the
    squared error (local re-solve in the window ``windows[t]``, inclusive y0, y1, x0, x1) and
    the number of mask points that go (less those that come) when it is merged, i.e. when
    the points of its children's cells ``old_pts[t]`` (flat indices, corners and centres,
    with repeats) give way to those of its own cell ``new_pts[t]``.  ``count`` holds, per
    pixel, how many leaves name it as a point.
    """
    n = old_pts.shape[0]
    d_sse = np.zeros(n)
    d_points = np.zeros(n, np.int64)
    known = count > 0
    flat = count.ravel()
    m_old, m_new = old_pts.shape[1], new_pts.shape[1]
    for t in prange(n):  # twigs are independent: each writes only its own outputs
        pix = np.empty(m_old + m_new, np.int64)
        delta = np.empty(m_old + m_new, np.int64)
        for k in range(m_old):
            pix[k] = old_pts[t, k]
            delta[k] = -1
        for k in range(m_new):
            pix[m_old + k] = new_pts[t, k]
            delta[m_old + k] = 1
        chg = np.empty(m_old + m_new, np.int64)
        on = np.empty(m_old + m_new, np.bool_)
        n_chg = 0
        for a in range(m_old + m_new):
            seen = False
            for b in range(a):
                if pix[b] == pix[a]:
                    seen = True
                    break
            if seen:
                continue
            total = flat[pix[a]]
            for b in range(a, m_old + m_new):
                if pix[b] == pix[a]:
                    total += delta[b]
            if (total > 0) != (flat[pix[a]] > 0):
                chg[n_chg] = pix[a]
                on[n_chg] = total > 0
                n_chg += 1
                d_points[t] += 1 if total <= 0 else -1
        if n_chg:
            d_sse[t] = _local_sse_change(u, f, known, chg[:n_chg], on[:n_chg], windows[t, 0],
                                         windows[t, 1], windows[t, 2], windows[t, 3], tol,
                                         max_iter)
    return d_sse, d_points
