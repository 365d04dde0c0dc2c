"""Encoders that build a tree-structured mask (:mod:`bitstreams.tree_coder`) for a grey image.

Two ways to decide which cells to split, each driven by a knob instead of a density:

* :func:`error_driven_tree` (knob: a point count) -- densification by inpainting error: the
  leaves whose squared inpainting error (homogeneous diffusion of the current mask with
  the original grey values, summed over the leaf) is largest are split, a fixed fraction
  of the leaves per inpainting.  The split order does not depend on the knob (the knob
  only says where to stop, cutting the last batch by error), so :func:`error_driven_order`
  makes the whole order once and :func:`tree_from_order` cuts it anywhere: the trees for
  growing knobs are nested and a rate search needs no further inpainting.
* :func:`map_driven_tree` (knob: a threshold) -- no inpainting: a leaf is split while a
  density map integrated over it exceeds the threshold.  The first map is Belhachmi's
  (the Laplacian magnitude of the smoothed image, :func:`baselines.belhachmi_density`).
  The integral of a non-negative map can only shrink from a cell to its children, so the
  tree for a threshold is the prefix of the splits sorted by decreasing integral
  (:func:`map_driven_order`).

Batch size of the error-driven encoder, quadtree with centres at 0.1 bpp on kodim05/13/23
(mean PSNR after tonal optimisation / inpaintings to build the tree): batch 0.25 24.03 dB
/ 8.3, 0.5 24.00 / 5.0, 1.0 (uniform refinement) 23.36 / 4.0; 0.1 gave nothing over 0.25
on the binary tree (23.78 vs 23.77 dB, 49 vs 22 inpaintings).  The default is 0.5.
A tree-shaped exchange (split the worst leaves, merge the cheapest twigs, NLPE-like,
about 15 more inpaintings) gained 0.07 dB at a 1 % higher rate on the same images and
was dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from inpcodec.bitstreams.tree_coder import (
    Tree,
    cell_bounds,
    cell_points,
    children,
    leaves,
    n_children,
    schedule,
    tree_mask,
    uniform_tree,
)
from inpcodec.codec.diffusion import ESTIMATE_DTYPE, Inpainter
from inpcodec.codec.filters import uniform_mean
from inpcodec.codec.quantiser import quantise

from .belhachmi import belhachmi_density

START_LEAVES = 64  # the error-driven encoder starts from a uniform tree of this many leaves


@dataclass
class TreeResult:
    """A tree, its mask, and what it cost.

    Attributes
    ----------
    tree : bitstreams.tree_coder.Tree
    mask : ndarray of bool
    inpaintings : int
        Inpaintings spent to build it.
    seconds : float
    """

    tree: Tree
    mask: np.ndarray
    inpaintings: int
    seconds: float


@dataclass
class SplitOrder:
    """Splits in the order an encoder made them; every prefix is a valid tree.

    Attributes
    ----------
    height, width : int
    quad, centres : bool
        Tree geometry (see :class:`bitstreams.tree_coder.Tree`).
    depth, key : ndarray of int64
        The split cells, in order.
    cost : ndarray of int64
        Inpaintings spent before each split could be chosen (error-driven), or zeros.
    """

    height: int
    width: int
    quad: bool
    centres: bool
    depth: np.ndarray
    key: np.ndarray
    cost: np.ndarray
    #: Per split, the error score it was ordered by (map- and scale-error orders: the
    #: cell's integral or predicted squared error, non-increasing), or None.
    score: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.depth.size)

    def prefix(self, n: int) -> SplitOrder:
        """The first ``n`` splits as an order of their own."""
        return SplitOrder(self.height, self.width, self.quad, self.centres, self.depth[:n],
                          self.key[:n], self.cost[:n],
                          None if self.score is None else self.score[:n])


def tree_from_order(order: SplitOrder, n: int) -> Tree:
    """The tree made by the first ``n`` splits of ``order``."""
    n = int(np.clip(n, 0, len(order)))
    d, k = order.depth[:n], order.key[:n]
    top = int(d.max()) + 1 if n else 0
    splits = [np.sort(k[d == t]) for t in range(top)]
    return Tree(order.height, order.width, order.quad, order.centres, splits)


def _joined(parts: list, dtype=np.int64) -> np.ndarray:
    """The per-depth arrays of an order joined; empty for a 1 x 1 image (no depth to
    split)."""
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _sat(a: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row and column."""
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    s[1:, 1:] = a.cumsum(0).cumsum(1)
    return s


@njit(cache=True)
def _sat_squared_error(u, f):  # pragma: no cover (JIT)
    """``_sat((u - f) ** 2)`` in one pass and no temporary images: the same sums in the
    same order (the column sums down the rows, then each row's running sum)."""
    h, w = u.shape
    s = np.zeros((h + 1, w + 1))
    col = np.zeros(w)
    for i in range(h):
        run = 0.0
        for j in range(w):
            d = u[i, j] - f[i, j]
            col[j] += d * d
            run += col[j]
            s[i + 1, j + 1] = run
    return s


def _cell_sums(sat, y0, y1, x0, x1):
    """Sums of the table's image over the inclusive cells."""
    return sat[y1 + 1, x1 + 1] - sat[y0, x1 + 1] - sat[y1 + 1, x0] + sat[y0, x0]


def _check(image):
    f = np.asarray(image, np.float64)
    if f.ndim != 2 or f.size == 0 or not np.isfinite(f).all():
        raise ValueError(f"need a finite non-empty grey image, got shape {f.shape}")
    return f


def points_per_prefix(order: SplitOrder) -> np.ndarray:
    """Mask points of the tree of every prefix of ``order``: entry n is
    ``tree_mask(tree_from_order(order, n)).sum()``, for n = 0 ... len(order).

    One pass over the order instead of a mask per prefix: a split adds its children's
    corners (and centres) and takes away its own centre; a pixel stays a mask point while
    any cell counts it (:func:`_count_points`).
    """
    h, w = order.height, order.width
    sched = schedule(h, w, order.quad)
    n = len(order)
    per = 5 if order.centres else 4  # points per child: its corners (and centre)
    add = np.full((n, 4 * per), -1, np.int64)  # at most 4 children
    drop = np.full(n, -1, np.int64)
    for d in np.unique(order.depth):
        sel = np.flatnonzero(order.depth == d)
        if d + 1 >= len(sched):
            raise ValueError(f"depth {d} is the last: its cells cannot be split")
        grid, child = sched[d], sched[d + 1]
        keys = order.key[sel]
        if order.centres:
            drop[sel] = cell_points(h, w, grid, keys, True)[:, 4]
        nc = n_children(grid, child)
        pts = [cell_points(h, w, child, children(keys, grid, child, c), order.centres)
               for c in range(nc)]
        add[sel, :nc * per] = np.concatenate(pts, axis=1)
    root = cell_points(h, w, sched[0], np.zeros(1, np.int64), order.centres).ravel()
    return _count_points(h * w, root, add, drop)


@njit(cache=True)
def _count_points(size, root, add, drop):
    count = np.zeros(size, np.int32)  # how many cells give each pixel as a point
    out = np.empty(add.shape[0] + 1, np.int64)
    points = 0
    for p in root:
        count[p] += 1
        points += count[p] == 1
    out[0] = points
    for i in range(add.shape[0]):
        for p in add[i]:
            if p >= 0:
                count[p] += 1
                points += count[p] == 1
        p = drop[i]
        if p >= 0:
            count[p] -= 1
            points -= count[p] == 0
        out[i + 1] = points
    return out


def prefix_for_points(order: SplitOrder, points: int) -> int:
    """Shortest prefix of ``order`` whose mask has at least ``points`` points (or all)."""
    counts = points_per_prefix(order)
    reached = np.flatnonzero(counts >= points)
    return int(reached[0]) if reached.size else len(order)


# ----------------------------------------------------------------------------- error-driven


def _start_depth(h: int, w: int, quad: bool) -> int:
    """Depth of the uniform tree error-driven densification starts from (at least
    START_LEAVES leaves); its splits are never pruned."""
    sched = schedule(h, w, quad)
    start = 0
    while start < len(sched) - 1 and (1 << sum(sched[start])) < START_LEAVES:
        start += 1
    return start


class _Densification:
    """What error-driven and probabilistic densification share: the start (the uniform
    tree with at least START_LEAVES leaves), the current leaves, the splits made so far
    (the order) and the leaves' error sums."""

    def __init__(self, f, quad, centres, tol):
        self.f, self.quad, self.centres, self.tol = f, quad, centres, tol
        h, w = f.shape
        self.sched = schedule(h, w, quad)
        start = _start_depth(h, w, quad)
        t = uniform_tree(h, w, start, quad=quad, centres=centres)
        self.depth = [np.full(s.size, d, np.int64) for d, s in enumerate(t.splits)]
        self.key = list(t.splits)
        self.cost = [np.zeros(s.size, np.int64) for s in t.splits]
        self.leaf_d = np.full(1 << sum(self.sched[start]), start, np.int64)  # all at start
        self.leaf_k = np.arange(self.leaf_d.size, dtype=np.int64)
        self.mask = tree_mask(t)
        self.spent = 0

    def splittable(self) -> np.ndarray:
        return self.leaf_d < len(self.sched) - 1

    def order(self, extra_d=None, extra_k=None) -> SplitOrder:
        """The splits so far (and ``extra`` ones after them, at cost 0)."""
        h, w = self.f.shape
        d, k, c = self.depth, self.key, self.cost
        if extra_d is not None:
            d, k, c = d + [extra_d], k + [extra_k], c + [np.zeros(extra_d.size, np.int64)]
        return SplitOrder(h, w, self.quad, self.centres, _joined(d), _joined(k), _joined(c))

    def error_sums(self, mask, leaves, x0=None):
        """Squared inpainting error of ``mask`` summed over the cells of the leaves
        ``leaves`` (indices); returns (sums, the inpainting)."""
        f = self.f
        u = Inpainter(mask, solver="numba", dtype=ESTIMATE_DTYPE).solve(
            np.where(mask, f, 0.0), tol=self.tol, x0=x0)
        self.spent += 1
        sat = _sat_squared_error(u, f)
        out = np.empty(leaves.size)
        ds, ks = self.leaf_d[leaves], self.leaf_k[leaves]
        for d in np.unique(ds):
            sel = ds == d
            out[sel] = _cell_sums(sat, *cell_bounds(*f.shape, self.sched[d], ks[sel]))
        return out, u

    def split(self, pick):
        """Split the leaves ``pick`` (indices, in order), recording them at this cost."""
        sched, leaf_d, leaf_k = self.sched, self.leaf_d, self.leaf_k
        self.depth.append(leaf_d[pick])
        self.key.append(leaf_k[pick])
        self.cost.append(np.full(pick.size, self.spent, np.int64))
        new_d, new_k = [], []
        for d in np.unique(leaf_d[pick]):
            sel = pick[leaf_d[pick] == d]
            for c in range(n_children(sched[d], sched[d + 1])):
                new_k.append(children(leaf_k[sel], sched[d], sched[d + 1], c))
                new_d.append(np.full(sel.size, d + 1, np.int64))
        keep = np.ones(leaf_d.size, bool)
        keep[pick] = False
        self.leaf_d = np.concatenate([leaf_d[keep]] + new_d)
        self.leaf_k = np.concatenate([leaf_k[keep]] + new_k)
        so_far = self.order()
        self.mask = tree_mask(tree_from_order(so_far, len(so_far)))


def error_driven_order(image, max_points: int, *, batch: float = 0.5, quad: bool = True,
                       centres: bool = True, tol: float = 1e-3,
                       min_error: float = 0.0) -> SplitOrder:
    """Split order of error-driven densification, run until ``max_points`` points.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Grey image (any scale).
    max_points : int
        Stop once the mask holds this many points (or no leaf can be split).
    batch : float
        Fraction of the splittable leaves split after each inpainting, largest error
        first; fewer inpaintings for a larger fraction.
    quad, centres : bool
        Tree geometry.
    tol : float
        Relative residual of the inpainting solves (they only rank leaves).
    min_error : float
        Leaves whose squared error sum is below this are not split, and the growth stops
        once no leaf reaches it (the Lagrangian encoder's bound: a split cannot remove more
        error than its leaf holds, so one below its bits' price never pays).
    """
    state = _Densification(_check(image), quad, centres, tol)
    x0 = None
    while int(state.mask.sum()) < max_points:
        can = state.splittable()
        if not can.any():
            break
        sums, x0 = state.error_sums(state.mask, np.flatnonzero(can), x0)
        err = np.full(can.size, -1.0)
        err[can] = sums
        n = max(1, int(np.ceil(batch * int(can.sum()))))
        # largest error first; ties by (depth, key) so the order is reproducible
        pick = np.lexsort((state.leaf_k, state.leaf_d, -err))[:n]
        pick = pick[can[pick] & (err[pick] >= min_error)]
        if pick.size == 0:
            break
        state.split(pick)
    return state.order()


def probabilistic_order(image, max_points: int, *, candidates: float = 0.5,
                        keep: float = 0.5, quad: bool = True, centres: bool = True,
                        tol: float = 1e-3, seed: int = 0) -> SplitOrder:
    """Split order of probabilistic tree densification (Peter et al., PSIVT 2015).

    Each iteration splits a random fraction ``candidates`` of the splittable leaves
    tentatively, inpaints, and keeps the ``keep`` fraction of those splits that lowered
    the squared error inside their cell most; the others are undone.  Two inpaintings per
    iteration (with the tentative and with the kept splits).  Measured against
    error-driven densification in ``benchmarks/bench_tree_densification.py``.
    """
    if not (0.0 < candidates <= 1.0 and 0.0 < keep <= 1.0):
        raise ValueError("candidates and keep must lie in (0, 1]")
    state = _Densification(_check(image), quad, centres, tol)
    rng = np.random.default_rng(seed)
    while int(state.mask.sum()) < max_points:
        idx = np.flatnonzero(state.splittable())
        if idx.size == 0:
            break
        cand = np.sort(rng.choice(idx, max(1, int(np.ceil(candidates * idx.size))),
                                  replace=False))
        before, _ = state.error_sums(state.mask, cand)
        trial = state.order(state.leaf_d[cand], state.leaf_k[cand])
        after, _ = state.error_sums(tree_mask(tree_from_order(trial, len(trial))), cand)
        n = max(1, int(np.ceil(keep * cand.size)))
        rank = np.lexsort((state.leaf_k[cand], state.leaf_d[cand], -(before - after)))
        state.split(cand[rank[:n]])
    return state.order()


def error_driven_tree(image, points: int, *, batch: float = 0.5, quad: bool = True,
                      centres: bool = True) -> TreeResult:
    """Error-driven tree with at least ``points`` mask points (the knob); see the module."""
    t0 = time.perf_counter()
    order = error_driven_order(image, points, batch=batch, quad=quad, centres=centres)
    n = prefix_for_points(order, points)
    tree = tree_from_order(order, n)
    spent = int(order.cost[:n].max()) if n else 0
    return TreeResult(tree, tree_mask(tree), spent, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- rate-distortion


#: Bits of one split flag as the tree coder spends them (0.43 measured on Kodak quadtrees,
#: bitstreams/tree_coder.py); a merge saves its children's flags.
FLAG_BITS = 0.43
#: Luma levels at which :func:`rdo_order` prices the values (the rate search tries 8-23 at
#: 0.05-0.3 bpp; one order serves them all; pricing at 8 measured 0.03 dB worse with
#: per-point code lengths).
RDO_LEVELS = 16
#: The local re-solve of a merge covers the twig's cell widened by 1/RDO_MARGIN of its
#: side (at least 2 pixels) each way, to SOR steps below RDO_SOR_TOL grey levels.  On
#: kodim05/23 at 1.8-4.5 % points, 1/4 and 0.05 gave the inpainting PSNR of 1/2 and 0.01
#: (within +-0.06 dB) in 40 % of the time; 1/8 lost 0.02-0.05 dB on kodim05.  The slopes
#: only rank twigs, and the files' values carry a quantiser's rounding of several grey
#: levels: steps of 0.2 (was 0.05) take 2.4x less time at 4 MP, and the Lagrangian
#: encoder's J over 64 files (Kodak, boat, the large photographs' crops; quality 30-70)
#: moved by +0.035 % (Kodak) and -0.1 % (crops) on average, per file no more than a 10x
#: tighter tolerance moved it (benchmarks/RESULTS.md, "The pruning's SOR tolerance").
RDO_MARGIN = 4
RDO_SOR_TOL = 0.2


def _value_bits(f, tree, levels):
    """Mean bits the value coder spends per point of ``tree``'s mask, its values quantised
    uniformly to ``levels``."""
    from inpcodec.bitstreams.tree_values import code_lengths  # noqa: PLC0415

    mask = tree_mask(tree)
    return float(code_lengths(tree, quantise(f[mask], levels), levels).mean())


def rdo_order(image, max_points: int, *, min_points: int | None = None, batch: float = 0.2,
              levels: int = RDO_LEVELS, flag_bits: float = FLAG_BITS,
              tol: float = 1e-3) -> SplitOrder:
    """Split order of rate-distortion-optimised pruning of an error-driven tree.

    Error-driven densification (:func:`error_driven_order`) grows a tree to ``max_points``
    points; it is then pruned back to ``min_points`` (default a quarter of ``max_points``)
    by the Lagrangian rule (generalised BFOS pruning): each twig (a split whose children
    are all leaves) is priced by the slope dD / dR of undoing it, where dD is the growth of
    the squared inpainting error (homogeneous diffusion re-solved in a window of one and a
    half times the twig's cell, the current reconstruction outside) and dR the bits saved:
    per point that goes, the value coder's mean bits per value on the grown tree
    (:func:`bitstreams.tree_values.code_lengths`, values quantised to ``levels``), and
    ``flag_bits`` per child split flag no longer coded.  Each point's own code length
    instead of the mean lost 0.07 dB in the codec (Kodak grey, first 6 images; RESULTS.md):
    one point's residual says little about what the splits near it will cost after tonal
    optimisation.  A twig is undone where its bits buy least error, so at every
    rate left on the way the kept splits are those with the steepest slopes, the tree of
    some Lagrangian D + lambda R.  After each global inpainting the ``batch`` fraction of
    the twigs with the smallest slopes goes; slopes are recomputed only near what changed.
    The pruning stops after the round that brings the points to ``min_points`` or fewer.
    The returned order keeps the surviving splits in densification order and then the
    pruned ones in the reverse of their pruning, so every prefix is a tree and the
    prefixes between the points left and ``max_points`` follow the pruning.  The image is
    taken on the codec's 0-255 scale (its values are priced on ``levels`` levels of it).
    :class:`RdoPruning` is the same pruning, resumable to fewer points.
    """
    max_points = int(max_points)
    low = max_points // 4 if min_points is None else int(min_points)
    return RdoPruning(image, max_points, batch=batch, levels=levels, flag_bits=flag_bits,
                      tol=tol).prune_to(low)


class RdoPruning:
    """The pruning of :func:`rdo_order`, kept so that it can go on to fewer points.

    ``RdoPruning(image, max_points).prune_to(a).prune_to(b)`` returns the order of
    ``rdo_order(image, max_points, min_points=b)`` for b < a (the rounds are the same: a
    round is never cut short), so a rate search that asks for fewer points than it first
    did continues the pruning instead of starting again.
    """

    def __init__(self, image, max_points: int, *, batch: float = 0.2,
                 levels: int = RDO_LEVELS, flag_bits: float = FLAG_BITS, tol: float = 1e-3,
                 min_error: float = 0.0, grown: SplitOrder | None = None):
        f = _check(image)
        if not 0.0 < batch <= 1.0:
            raise ValueError(f"batch must lie in (0, 1], got {batch}")
        h, w = f.shape
        self.f, self.batch, self.flag_bits, self.tol = f, batch, flag_bits, tol
        if grown is None:
            grown = error_driven_order(f, int(max_points), tol=tol, min_error=min_error)
        else:  # another front-end's order (a map's): its splits above the start tree's
            grown = SplitOrder(grown.height, grown.width, grown.quad, grown.centres,
                               grown.depth, grown.key,
                               (grown.depth >= _start_depth(h, w, grown.quad)).astype(
                                   np.int64), grown.score)
        self.grown = grown
        self.sched = schedule(h, w, grown.quad)
        full = tree_from_order(grown, len(grown))
        self.value_bits = _value_bits(f, full, levels)
        # how many leaves hold each pixel as a point (a few: int8, 3 bytes a pixel less)
        self.count = np.zeros(h * w, np.int8)
        for grid, keys in leaves(full):
            np.add.at(self.count, cell_points(h, w, grid, keys, grown.centres).ravel(), 1)
        self.split = [np.sort(grown.key[grown.depth == d]) for d in range(len(self.sched))]
        self.start = {(int(d), int(k)) for d, k, c in zip(grown.depth, grown.key, grown.cost,
                                                          strict=True) if c == 0}
        self.slope = {}  # (depth, key) -> (slope, window), valid until something near changes
        self.pruned = []
        #: Per pruned twig, the largest slope pruned up to it (non-decreasing): the tree of
        #: a Lagrange multiplier lam keeps the pruned twigs whose entry is at least lam.
        self.pruned_slope = []
        #: Every twig left has a slope at least this (after ``prune_until``).
        self.lam_done = 0.0
        self.u = None
        self.rounds = 0
        self.exhausted = False

    def points(self) -> int:
        """Mask points of the tree left."""
        return int((self.count > 0).sum())

    def prune_to(self, min_points: int) -> SplitOrder:
        """Prune on until at most ``min_points`` points are left (or no twig is); the order."""
        while not self.exhausted and self.points() > min_points:
            self._round()
        return self.order()

    def prune_until(self, lam: float) -> int:
        """Prune on until every twig left is worth its bits at Lagrange multiplier ``lam``
        (squared error per bit: undoing it would add at least ``lam`` per bit saved).

        Returns the length of the prefix of :meth:`order` that is the tree of ``lam``;
        a smaller ``lam`` than pruned to already gives a longer prefix without pruning.
        """
        while not self.exhausted and lam > self.lam_done:
            if not self._round(lam):
                self.lam_done = max(self.lam_done, lam)
        # the reconstruction is only the next round's warm start: a whole float image kept
        # between a rate search's steps, at its peak memory; the next round solves anew
        self.u = None
        # pruned_slope is non-decreasing: the twigs pruned below lam stay pruned, the later
        # ones (first in the order's reversed tail) come back
        gone = int(np.searchsorted(np.asarray(self.pruned_slope, np.float64), lam))
        return len(self.grown) - gone

    def _twigs(self):
        sched, split = self.sched, self.split
        out = []
        for d in range(len(sched) - 1):
            if split[d].size == 0:
                continue
            nc = n_children(sched[d], sched[d + 1])
            kids = np.stack([children(split[d], sched[d], sched[d + 1], c)
                             for c in range(nc)], axis=1)
            twig = ~np.isin(kids, split[d + 1]).any(axis=1)
            for k, ch in zip(split[d][twig].tolist(), kids[twig], strict=True):
                if (d, k) not in self.start:
                    out.append((d, k, ch))
        return out

    def _price(self, todo):
        """Slopes of the twigs ``todo`` (local re-solves, one kernel call per depth)."""
        from ._tree_kernels import merge_costs  # noqa: PLC0415

        f, sched, centres = self.f, self.sched, self.grown.centres
        h, w = f.shape
        for d in sorted({t[0] for t in todo}):
            group = [t for t in todo if t[0] == d]
            keys = np.array([t[1] for t in group], np.int64)
            old = cell_points(h, w, sched[d + 1], np.concatenate([t[2] for t in group]),
                              centres).reshape(len(group), -1)
            new = cell_points(h, w, sched[d], keys, centres)
            y0, y1, x0, x1 = cell_bounds(h, w, sched[d], keys)
            m = np.maximum(2, np.maximum(y1 - y0, x1 - x0) // RDO_MARGIN)
            win = np.stack([np.maximum(0, y0 - m), np.minimum(h - 1, y1 + m),
                            np.maximum(0, x0 - m), np.minimum(w - 1, x1 + m)], axis=1)
            d_sse, d_points = merge_costs(self.u, f, self.count.reshape(h, w), old, new, win,
                                          RDO_SOR_TOL, 10_000)
            d_bits = self.value_bits * d_points + self.flag_bits * (old.shape[1]
                                                                    // new.shape[1])
            for k, a, b, wn in zip(keys.tolist(), d_sse, d_bits, win, strict=True):
                self.slope[(d, k)] = (max(a, 0.0) / max(b, 1e-3), wn)

    def _round(self, lam=None) -> bool:
        """One global inpainting, then the ``batch`` fraction of the cheapest twigs undone
        (with ``lam``: of those whose slope is below it).  False where none was undone."""
        f, sched, centres, count = self.f, self.sched, self.grown.centres, self.count
        h, w = f.shape
        mask = (count > 0).reshape(h, w)
        # to the growth's own tolerance (was 1 % of it): this is only the baseline that
        # the local SOR steps of RDO_SOR_TOL grey levels start from.  3-5 V-cycles a
        # round instead of 5-8; the Lagrangian encoder's J over 64 files (Kodak, boat,
        # the large photographs' crops, quality 30-70) moved by -0.02 % and -0.12 % on
        # average, per file by -3.9 to +2.8 % as other changes of its discrete choices
        # do (benchmarks/RESULTS.md, "Fewer solves in a rate search")
        self.u = Inpainter(mask, solver="numba", dtype=ESTIMATE_DTYPE).solve(
            np.where(mask, f, 0.0), tol=self.tol, x0=self.u)
        self.rounds += 1
        twigs = self._twigs()
        if not twigs:
            self.exhausted = True
            return False
        self._price([t for t in twigs if (t[0], t[1]) not in self.slope])
        g = np.array([self.slope[(t[0], t[1])][0] for t in twigs])
        rank = np.lexsort(([t[1] for t in twigs], [t[0] for t in twigs], g))
        rank = rank[:max(1, int(np.ceil(self.batch * len(twigs))))]
        if lam is not None:
            rank = rank[g[rank] < lam]
            if rank.size == 0:
                return False
        dirty = np.zeros((h, w), bool)
        top = self.pruned_slope[-1] if self.pruned_slope else 0.0
        for i in rank:
            d, k, ch = twigs[i]
            top = max(top, float(g[i]))
            self.pruned_slope.append(top)
            np.add.at(count, cell_points(h, w, sched[d + 1], ch, centres).ravel(), -1)
            np.add.at(count, cell_points(h, w, sched[d], np.array([k]), centres).ravel(), 1)
            self.split[d] = self.split[d][self.split[d] != k]
            self.pruned.append((d, k))
            wy0, wy1, wx0, wx1 = self.slope.pop((d, k))[1]
            dirty[wy0:wy1 + 1, wx0:wx1 + 1] = True
        sat = _sat(dirty)
        for key in [k for k, (_, wn) in self.slope.items() if _cell_sums(sat, *wn) > 0]:
            del self.slope[key]
        return True

    def order(self) -> SplitOrder:
        """The surviving splits in densification order, then the pruned ones in reverse."""
        grown = self.grown
        gone = set(self.pruned)
        keep = np.array([(int(d), int(k)) not in gone
                         for d, k in zip(grown.depth, grown.key, strict=True)], bool)
        back = np.array(self.pruned[::-1], np.int64).reshape(-1, 2)
        depth = np.concatenate([grown.depth[keep], back[:, 0]])
        key = np.concatenate([grown.key[keep], back[:, 1]])
        # every split was judged with all the inpaintings of both passes
        spent = (int(grown.cost.max()) + 1 if len(grown) else 0) + self.rounds
        return SplitOrder(grown.height, grown.width, grown.quad, grown.centres, depth, key,
                          np.full(depth.size, spent, np.int64))


# ----------------------------------------------------------------------------- map-driven


def laplacian_map(image, *, density: float = 0.02) -> np.ndarray:
    """Belhachmi's density map (Laplacian magnitude, smoothed at the scale of ``density``)."""
    return belhachmi_density(_check(image), density)


def map_driven_order(image, *, density_map=None, quad: bool = True, centres: bool = True,
                     min_integral: float = 0.0) -> SplitOrder:
    """All splits with integral above ``min_integral``, by decreasing integral of the map.

    A prefix of this order is :func:`map_driven_tree` for the threshold between the
    integrals of its last split and the next one.
    """
    f = _check(image)
    h, w = f.shape
    m = laplacian_map(f) if density_map is None else np.asarray(density_map, np.float64)
    if m.shape != f.shape or not np.isfinite(m).all() or (m < 0).any():
        raise ValueError("the density map must be finite, non-negative, image-shaped")
    sat = _sat(m)
    sched = schedule(h, w, quad)
    nodes = np.zeros(1, np.int64)
    depth, key, val = [], [], []
    for d in range(len(sched) - 1):
        v = _cell_sums(sat, *cell_bounds(h, w, sched[d], nodes))
        sel = v > min_integral
        depth.append(np.full(int(sel.sum()), d, np.int64))
        key.append(nodes[sel])
        val.append(v[sel])
        nc = n_children(sched[d], sched[d + 1])
        nodes = np.concatenate([children(nodes[sel], sched[d], sched[d + 1], c)
                                for c in range(nc)])
        if nodes.size == 0:
            break
    depth, key, val = _joined(depth), _joined(key), _joined(val, np.float64)
    # a child's integral never exceeds its parent's; ties go parent first (smaller depth)
    o = np.lexsort((key, depth, -val))
    return SplitOrder(h, w, quad, centres, depth[o], key[o], np.zeros(o.size, np.int64))


def map_driven_tree(image, threshold: float, *, density_map=None, quad: bool = True,
                    centres: bool = True) -> TreeResult:
    """Split every cell whose map integral exceeds ``threshold`` (the knob; smaller: more).

    The default map sums to about 2 % of the pixels, so the threshold is roughly the
    number of Belhachmi points a leaf may hold before it is split.
    """
    t0 = time.perf_counter()
    order = map_driven_order(image, density_map=density_map, quad=quad, centres=centres,
                             min_integral=threshold)
    tree = tree_from_order(order, len(order))
    return TreeResult(tree, tree_mask(tree), 0, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- scale errors


def cell_log2_side(height: int, width: int, grid: tuple) -> float:
    """log2 of a cell's side at grid ``(b, a)``: the geometric mean of its two extents."""
    b, a = grid
    return 0.5 * (np.log2(max(height - 1, 1) / (1 << b)) + np.log2(max(width - 1, 1) / (1 << a)))


def uniform_error_maps(image, *, quad: bool = True, centres: bool = True,
                       tol: float = 1e-3) -> list:
    """Squared inpainting error of the uniform tree of every splittable depth.

    Entry d is ``(u_d - f)^2`` for the mask of the tree whose leaves are all at depth d:
    what a leaf of that depth leaves unexplained, everywhere at once.  One inpainting per
    depth, none depending on another.
    """
    f = _check(image)
    h, w = f.shape
    out = []
    for d in range(len(schedule(h, w, quad)) - 1):
        m = tree_mask(uniform_tree(h, w, d, quad=quad, centres=centres))
        u = Inpainter(m, solver="numba").solve(np.where(m, f, 0.0), tol=tol)
        out.append((u - f) ** 2)
    return out


def scale_error_order(shape, error_at_depth, *, quad: bool = True,
                      centres: bool = True) -> SplitOrder:
    """Splits by decreasing error of the cells, each judged by the error map of its depth.

    A cell at depth d scores the sum over it of ``error_at_depth(d)`` (an image-shaped
    non-negative map: the squared error a leaf of that size leaves), capped by its
    parent's score so that every prefix of the order is a tree.  With the uniform trees'
    real errors (:func:`uniform_error_maps`) this reproduces error-driven densification
    to within 0.1 dB of inpainting PSNR or better at 2-8 % points (kodim03/05/13/23) without its
    sequential inpaintings; with maps predicted by a network
    (:mod:`inpcodec.learned_masks.tree_map`) it needs no inpainting at all.
    """
    h, w = shape
    sched = schedule(h, w, quad)
    nodes = np.zeros(1, np.int64)
    cap = np.array([np.inf])
    depth, key, val = [], [], []
    for d in range(len(sched) - 1):
        e = np.asarray(error_at_depth(d), np.float64)
        if e.shape != (h, w) or not np.isfinite(e).all() or (e < 0).any():
            raise ValueError("error maps must be finite, non-negative and image-shaped")
        v = np.minimum(_cell_sums(_sat(e), *cell_bounds(h, w, sched[d], nodes)), cap)
        depth.append(np.full(nodes.size, d, np.int64))
        key.append(nodes)
        val.append(v)
        nc = n_children(sched[d], sched[d + 1])
        nodes = np.concatenate([children(nodes, sched[d], sched[d + 1], c) for c in range(nc)])
        cap = np.concatenate([v] * nc)
    depth, key, val = _joined(depth), _joined(key), _joined(val, np.float64)
    o = np.lexsort((key, depth, -val))  # ties: parent first, then by key (reproducible)
    return SplitOrder(h, w, quad, centres, depth[o], key[o], np.zeros(o.size, np.int64),
                      val[o])


def smooth_log_error(error: np.ndarray, side: int) -> np.ndarray:
    """``log1p`` of a squared-error map, box-averaged over half a cell's side.

    Why: the pixel errors are spiky (zero at the mask points), and the tree only needs
    their sums over cells; the average in the log domain is a low-noise target, and its
    maps gave trees 0.0-0.2 dB *better* than the raw uniform-tree errors (inpainting PSNR at
    2-8 % points, kodim03/05/23), themselves within 0.1 dB of error-driven densification.
    """
    return uniform_mean(np.log1p(error), max(1, side // 2))


def teacher_error_maps(image, *, quad: bool = True) -> list:
    """What the network learns, for an image of any size: per depth, the uniform tree's
    squared error averaged in the log domain over half a cell (one inpainting per depth).
    """
    f = _check(image)
    h, w = f.shape
    sched = schedule(h, w, quad)
    return [np.expm1(smooth_log_error(e, int(round(2 ** cell_log2_side(h, w, sched[d])))))
            for d, e in enumerate(uniform_error_maps(f, quad=quad))]
