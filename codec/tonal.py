"""Tonal optimisation: the best values to store at the mask pixels.

For a fixed binary mask K the reconstruction is linear in the stored values g:
u = B g = [g on K; L^-1 N g on the rest], L the symmetric operator on the unknown pixels
and N their coupling to known neighbours.  The values minimising ||B g - f||^2 solve the
normal equations B^T B g = B^T f, here by CGLS (conjugate gradients on the normal
equations, in the numerically stable form), each iteration costing one inpainting (B p)
and one adjoint solve (B^T r = r_K + N^T L^-1 r_U, :meth:`codec.Inpainter.solve_unknowns`).

With ``levels`` the values must come from a finite set (the codec's quantiser): the
continuous optimum is rounded to the nearest levels, then improved by quantised
re-optimisation: sweeps of one-level moves for the pixels whose move is predicted to
lower the error (from the gradient and the diagonal of B^T B, estimated by random
probing), kept only when the real MSE falls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .diffusion import Inpainter
from .limits import release_free_memory
from .progress import Budget, progress_bar


@dataclass
class TonalResult:
    """Optimised values and what they cost.

    Attributes
    ----------
    values : ndarray, shape of the image
        The image with its mask pixels replaced by the optimised values (other pixels
        unchanged); ``codec.inpaint(values, mask)`` is the optimised reconstruction.
    reconstruction : ndarray
        That reconstruction.
    mse, mse_before : float
        MSE of the reconstruction with the optimised and with the original values (for
        ``levels``: with the original values rounded to the levels).
    iterations : int
        CGLS iterations (plus quantised refinement sweeps).
    inpaintings : int
        Forward and adjoint solves spent.
    seconds : float
    continuous : ndarray
        As ``values``, with CGLS's continuous values (before the quantiser): the
        ``start`` of a later optimisation with a similar mask.
    stop_norm : ndarray
        Per channel, the gradient norm at which CGLS stopped (its ``stop_norm``).
    area : ndarray, shape (K,)
        The column sums B^T 1 at the K mask pixels (``area`` of a later call with the
        same mask).
    """

    values: np.ndarray
    reconstruction: np.ndarray
    mse: float
    mse_before: float
    iterations: int
    inpaintings: int
    seconds: float
    continuous: np.ndarray
    stop_norm: np.ndarray
    area: np.ndarray


class _Operator:
    """B and B^T for one binary mask, on value vectors of shape (K, C)."""

    def __init__(self, mask, shape, solver, tol, budget, dtype=np.float64):
        self.ip = Inpainter(mask, solver=solver, dtype=dtype)
        self.known = np.asarray(mask, bool)
        self.idx = np.flatnonzero(self.known)
        self.shape = shape  # (H, W, C)
        self.tol = tol
        self.budget = budget
        self._y = None

    def forward(self, g):
        h, w, c = self.shape
        full = np.zeros((h * w, c))
        full[self.idx] = g
        self.budget.spend()
        return self.ip.solve(full.reshape(h, w, c), tol=self.tol)

    def column_sums(self):
        """B^T 1: each mask pixel's column sum, the area its value fills (at least 1)."""
        h, w, _ = self.shape
        one = np.ones((h, w, 1))
        self.budget.spend()
        return self._adjoint_from(one, self.ip.solve_unknowns(one, tol=self.tol))

    def adjoint(self, r):
        y = self.ip.solve_unknowns(r, tol=self.tol, x0=self._y)  # zero at known pixels
        self._y = y  # successive residuals differ little: warm-start the next adjoint solve
        self.budget.spend()
        return self._adjoint_from(r, y)

    def _adjoint_from(self, r, y):
        """r_K + N^T y for y = L^-1 r_U (zero at the known pixels)."""
        h, w, c = r.shape
        yp = np.pad(y, ((1, 1), (1, 1), (0, 0)))
        nt = yp[:-2, 1:-1] + yp[2:, 1:-1] + yp[1:-1, :-2] + yp[1:-1, 2:]
        return r.reshape(h * w, c)[self.idx] + nt.reshape(h * w, c)[self.idx]


def _mse(u, f):
    d = u - f
    return float(np.mean(d * d))


def _quantise(g, levels):
    pos = np.clip(np.searchsorted(levels, g), 1, len(levels) - 1)
    lo, hi = levels[pos - 1], levels[pos]
    return np.where(g - lo <= hi - g, lo, hi)


def tonal_optimisation(image, mask, *, levels=None, tol: float = 1e-4, max_iter: int = 200,
                       solver: str = "numba", solve_tol: float = 1e-7, max_sweeps: int = 8,
                       max_seconds: float | None = None, max_inpaintings: int | None = None,
                       progress: bool = False, precondition: bool = True, start=None,
                       stop_norm=None, dtype=np.float64, area=None) -> TonalResult:
    """Grey (or colour) values at the mask pixels that minimise the reconstruction's MSE.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        The original; every channel is optimised (jointly, one solve serves all).
    mask : array_like of bool, shape (H, W)
        Binary mask (non-empty).
    levels : array_like, optional
        Allowed values (e.g. ``np.linspace(0, 255, 64)``): optimise over these only.
    tol : float
        CGLS stops when ||S B^T (f - B g)|| <= tol * ||S B^T (f - B g0)|| in every channel
        (S the column scaling, the identity without ``precondition``).
    max_iter : int
        CGLS iteration limit.
    solver, solve_tol
        Inpainting solver and the tolerance of its inner solves (tight, so that B and
        B^T stay each other's transpose to the precision CGLS needs).
    max_sweeps : int
        Quantised refinement: at most this many sweeps of one-level moves.
    max_seconds, max_inpaintings : optional
        Budget; when spent, the best values so far are returned.
    progress : bool
        Show a tqdm progress bar.
    precondition : bool
        Scale the columns of B by 1 / sqrt(B^T 1) (see the module; one more solve).
    start : array_like, optional
        Shape of ``image``: start from its values at the mask pixels (rounded to
        ``levels``) instead of the image's, e.g. a previous result's ``continuous`` for a
        mask that differs a little; ``mse_before`` is then the start's error.
    stop_norm : array_like, optional
        Per channel: CGLS also stops once the scaled gradient norm falls to this (a
        previous result's ``stop_norm``: the same accuracy from a warm start, whose own
        first gradient is small).
    dtype : {numpy.float64, numpy.float32}
        Working precision of the inner solves (:class:`~.diffusion.Inpainter`'s); float32
        is enough for inner tolerances of about 1e-5 and looser.
    area : array_like, optional
        A previous result's ``area`` for the same mask, ``solver``, ``solve_tol`` and
        ``dtype`` (another channel's: its chroma twin): one solve fewer, the same result.
    """
    f = np.asarray(image, dtype=np.float64)
    if f.ndim not in (2, 3) or f.size == 0:
        raise ValueError(f"image must be a non-empty (H, W) or (H, W, C) array, got {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("image contains NaN or infinite values")
    m = np.asarray(mask)
    if m.shape != f.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match image shape {f.shape[:2]}")
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise ValueError("tonal optimisation needs a binary mask")
    m = m.astype(bool)
    if not m.any():
        raise ValueError("mask has no known pixel: nothing to optimise")
    if levels is not None:
        levels = np.unique(np.asarray(levels, dtype=np.float64))
        if levels.size < 2 or not np.isfinite(levels).all():
            raise ValueError("levels must hold at least two finite values")
    t0 = time.perf_counter()
    f3 = f.reshape(f.shape[0], f.shape[1], -1)
    budget = Budget(max_seconds, max_inpaintings)
    B = _Operator(m, f3.shape, solver, solve_tol, budget, dtype)
    if start is None:
        g0 = f3.reshape(-1, f3.shape[2])[B.idx].copy()
    else:
        st = np.asarray(start, dtype=np.float64).reshape(f3.shape)
        g0 = st.reshape(-1, f3.shape[2])[B.idx].copy()
        st = start = None  # a whole image no longer needed
    if levels is not None:
        g0 = _quantise(g0, levels)
    bar = progress_bar(max_iter, "tonal", progress)

    # CGLS on the scaled columns B S (g = g0 + S h), per channel scalars
    if area is None:
        area = B.column_sums()  # the scaling's and the quantised refinement's
    else:
        area = np.asarray(area, np.float64).reshape(B.idx.size, 1)
    scale = 1.0 / np.sqrt(np.maximum(area, 1.0)) if precondition else 1.0
    g = g0.copy()
    u = B.forward(g)
    mse_before = _mse(u, f3)
    r = f3 - u
    u = None  # one image fewer during CGLS (the peak of an encode's memory)
    s = scale * B.adjoint(r)
    p = s.copy()
    gamma = np.sum(s * s, axis=0)
    stop = tol * np.sqrt(gamma)
    if stop_norm is not None:
        stop = np.maximum(stop, np.broadcast_to(np.asarray(stop_norm, np.float64), stop.shape))
    it = 0
    while it < max_iter and np.any(np.sqrt(gamma) > stop) and not budget.exhausted():
        q = B.forward(scale * p)
        qq = np.sum(q * q, axis=(0, 1))
        alpha = np.where(qq > 0, gamma / np.where(qq > 0, qq, 1.0), 0.0)
        g += alpha * (scale * p)
        r -= alpha * q
        s = scale * B.adjoint(r)
        gamma_new = np.sum(s * s, axis=0)
        p = s + np.where(gamma > 0, gamma_new / np.where(gamma > 0, gamma, 1.0), 0.0) * p
        gamma = gamma_new
        it += 1
        bar.update(1)
    bar.close()
    if levels is None:
        u = B.forward(g)
        best_g, best_u, best_err = g, u, _mse(u, f3)
        if best_err > mse_before:  # inexact inner solves can only cost a rounding error
            best_g, best_u, best_err = g0, B.forward(g0), mse_before
    else:
        u = r = q = None  # CGLS's images: not needed by the refinement (its peak memory)
        best_g, best_u, best_err, sweeps = _quantised_refinement(
            B, f3, g, g0, mse_before, levels, max_sweeps, budget, area)
        it += sweeps
    values = f3.copy().reshape(-1, f3.shape[2])
    continuous = values.copy()
    values[B.idx] = best_g
    continuous[B.idx] = g
    return TonalResult(values.reshape(f.shape), best_u.reshape(f.shape), best_err, mse_before,
                       it, budget.inpaintings, time.perf_counter() - t0,
                       continuous.reshape(f.shape), stop, area[:, 0])


def _quantised_refinement(B, f3, g_cont, g_start, err_start, levels, max_sweeps, budget,
                          area):
    """Round the continuous optimum, then improve it by one-level moves.

    Moving value k alone by delta changes ||f - B g||^2 by -2 delta s_k + delta^2 d_k, with
    s = B^T (f - B g) and d_k = ||B e_k||^2 = diag(B^T B).  d_k lies between 1 (the pixel
    itself) and the column sum a_k (``area``; the column's entries lie in [0, 1]); it is
    taken as a_k / 2, a cone's ratio (a cone of height 1 has mean square half its mean),
    with no solve (2-probe Hutchinson estimates cost 4 solves and were noisier; at half
    the area the sweep lowered J more than at 0.3, the median measured ratio, on Kodak and
    boat; benchmarks/RESULTS.md, "Preconditioned tonal optimisation").  Each sweep moves
    the pixels whose one-level move towards -gradient is predicted to gain, best first,
    and halves that set until the real MSE falls.
    """
    diag = np.maximum(0.5 * area, 1.0)
    best_g, best_err, best_u = g_start, err_start, None
    gq = _quantise(g_cont, levels)
    uq = B.forward(gq)
    eq = _mse(uq, f3)
    if eq < best_err:
        best_g, best_err, best_u = gq, eq, uq
    pos = np.searchsorted(levels, best_g)  # exact level indices of the current values
    sweeps = 0
    while sweeps < max_sweeps and not budget.exhausted():
        sweeps += 1
        u = best_u if best_u is not None else B.forward(best_g)
        grad = B.adjoint(f3 - u)
        up = grad > 0
        target = np.clip(pos + np.where(up, 1, -1), 0, len(levels) - 1)
        delta = levels[target] - best_g
        gain = 2.0 * grad * delta - diag * delta * delta
        order = np.argsort(-gain, axis=None)
        n_good = int(np.count_nonzero(gain > 0))
        improved = False
        while n_good >= 1 and not budget.exhausted():
            sel = np.zeros(gain.size, bool)
            sel[order[:n_good]] = True
            sel = sel.reshape(gain.shape)
            cand = np.where(sel, levels[target], best_g)
            uc = B.forward(cand)
            ec = _mse(uc, f3)
            if ec < best_err:
                best_g, best_err, best_u, improved = cand, ec, uc, True
                pos = np.where(sel, target, pos)
                break
            n_good //= 2
        if not improved:
            break
    if best_u is None:
        best_u = B.forward(best_g)
    return best_g, best_u, best_err, sweeps


# ----------------------------------------------------------------------------- tiles

#: Tiles of :func:`tiled_tonal_optimisation`: cores of at most this many pixels a side
#: (the image cut evenly), each optimised in a window :data:`TILE_MARGIN` pixels wider on
#: every side.  An 896-pixel window's solver workspace (a few images of 3.2 MB in the
#: codec's float32, 6.4 MB in float64) stays mostly in a server's L3 cache (32 MB here),
#: where a 4 MP image's does not; and
#: memory is the window's, not the image's.  On a 4 MP photograph at quality 50 (one
#: thread): 768 with margin 64 took 0.96x the global optimisation's encode time at
#: +0.01 dB; 512 with 64 1.01x at -0.01 dB; margin 32 0.89-0.94x at -0.02 to -0.05 dB
#: (benchmarks/RESULTS.md, "Tonal optimisation on overlapping tiles").  Kodak's images
#: are one tile.
TILE = 768
#: A stored value's influence decays within a few point spacings; the margin lets the
#: points near a core's edge be optimised with their neighbours on both sides.
TILE_MARGIN = 64


@dataclass
class TiledTonalResult:
    """What :func:`tiled_tonal_optimisation` found, at the mask pixels only.

    Attributes
    ----------
    values, continuous : ndarray, shape (K, C)
        The optimised (quantised, where ``levels`` were given) and CGLS's continuous
        values at the K mask pixels, in row-major order (``image[mask]``).
    stop_norm : ndarray, shape (tiles, C)
        Per tile, the gradient norms its CGLS stopped at (``stop_norm`` of a later call).
    inpaintings : float
        Solves spent, in solves of the whole image (a window's solve counts by its pixels).
    iterations : int
        CGLS iterations and refinement sweeps, summed over the tiles.
    seconds : float
    areas : list
        Per tile, its window's column sums (``areas`` of a later call with the same mask;
        None for a tile without points).
    """

    values: np.ndarray
    continuous: np.ndarray
    stop_norm: np.ndarray
    inpaintings: float
    iterations: int
    seconds: float
    areas: list


def tile_bounds(n: int, tile: int) -> np.ndarray:
    """Edges of ``ceil(n / tile)`` cores of (nearly) equal size covering ``0..n``."""
    k = max(1, -(-n // tile))
    return np.round(np.linspace(0, n, k + 1)).astype(np.int64)


def tile_overlap(height: int, width: int, tile: int | None = None,
                 margin: int | None = None) -> float:
    """The windows' pixels over the image's: the solver work of a tiled optimisation
    against a global one's, at equal iterations (1 for an image within one tile)."""
    tile = TILE if tile is None else int(tile)
    margin = TILE_MARGIN if margin is None else int(margin)

    def spans(n):
        b = tile_bounds(n, tile)
        return sum(min(n, e + margin) - max(0, s - margin)
                   for s, e in zip(b[:-1], b[1:], strict=True))

    return spans(height) * spans(width) / (height * width)


def tiled_tonal_optimisation(image, mask, *, tile: int | None = None, margin: int | None = None,
                             start=None, stop_norm=None, areas=None, progress: bool = False,
                             **options) -> TiledTonalResult:
    """:func:`tonal_optimisation` on overlapping windows: cost and memory per tile.

    The image is cut into cores of at most ``tile`` pixels a side; each core is
    optimised in its window (the core and ``margin`` pixels on every side that the image
    has, reflecting sides like the image's own), and the values of the mask pixels in the
    core are kept.  An image within one tile is one window: the same values as
    :func:`tonal_optimisation`.

    Parameters
    ----------
    image, mask
        As :func:`tonal_optimisation` (``image`` (H, W) or (H, W, C)).
    tile, margin : int, optional
        Core size and the window's margin, in pixels (default :data:`TILE`,
        :data:`TILE_MARGIN`).
    start : array_like, optional
        As :func:`tonal_optimisation`'s, for the whole image.
    stop_norm : array_like, optional
        A previous result's ``stop_norm`` (one row per tile of the same tiling).
    areas : list, optional
        A previous result's ``areas``, for the same mask and tiling (and ``solver``,
        ``solve_tol``, ``dtype``): one solve fewer per tile, the same result.
    progress : bool
        A tqdm bar counting the tiles.
    **options
        ``levels``, ``tol``, ``solve_tol``, ``max_sweeps``, ``solver``, ``precondition``,
        ``dtype``: passed to every window's :func:`tonal_optimisation`.
    """
    t0 = time.perf_counter()
    tile = TILE if tile is None else int(tile)
    margin = TILE_MARGIN if margin is None else int(margin)
    f = np.asarray(image, dtype=np.float64)
    m = np.asarray(mask)
    if f.ndim not in (2, 3) or m.shape != f.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match image shape {f.shape[:2]}")
    if tile < 1 or margin < 0:
        raise ValueError(f"tile must be positive and margin non-negative, got {tile}, {margin}")
    m = m.astype(bool)
    h, w = m.shape
    channels = 1 if f.ndim == 2 else f.shape[2]
    ys, xs = tile_bounds(h, tile), tile_bounds(w, tile)
    n_tiles = (len(ys) - 1) * (len(xs) - 1)
    if stop_norm is not None:
        stop_norm = np.asarray(stop_norm, np.float64).reshape(n_tiles, channels)
    k = int(np.count_nonzero(m))
    values = np.empty((k, channels))
    continuous = np.empty((k, channels))
    stops = np.zeros((n_tiles, channels))
    tile_areas = [None] * n_tiles
    spent, iterations, done, t = 0.0, 0, 0, 0
    bar = progress_bar(n_tiles, "tonal", progress)
    for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
        # the band's points in row-major order are the image's, from ``done`` on; a
        # tile's core points are those of the band in its columns, in the same order
        band_x = np.nonzero(m[y0:y1])[1]
        wy0, wy1 = max(0, y0 - margin), min(h, y1 + margin)
        for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
            in_core = (band_x >= x0) & (band_x < x1)
            bar.update(1)
            if not in_core.any():
                t += 1
                continue
            wx0, wx1 = max(0, x0 - margin), min(w, x1 + margin)
            mw = m[wy0:wy1, wx0:wx1]
            res = tonal_optimisation(
                f[wy0:wy1, wx0:wx1], mw,
                start=None if start is None else np.asarray(start)[wy0:wy1, wx0:wx1],
                stop_norm=None if stop_norm is None else stop_norm[t],
                area=None if areas is None else areas[t], **options)
            tile_areas[t] = res.area
            core = np.zeros(mw.shape, bool)
            core[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] = True
            at = done + np.flatnonzero(in_core)
            values[at] = res.values[mw & core].reshape(-1, channels)
            continuous[at] = res.continuous[mw & core].reshape(-1, channels)
            stops[t] = res.stop_norm
            spent += res.inpaintings * mw.size / m.size
            iterations += res.iterations
            res = None
            t += 1
        done += band_x.size
    bar.close()
    release_free_memory()  # the windows' arrays, freed into malloc's heap
    return TiledTonalResult(values, continuous, stops, spent, iterations,
                            time.perf_counter() - t0, tile_areas)
