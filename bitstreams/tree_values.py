"""Lossless coding of the quantised values of a tree mask, predicted down the tree.

The decoder knows the tree before the values, so the values can be coded in the tree's
own coarse-to-fine order and predicted from what the coarser levels already gave.  Every
corner of every cell of the tree is a mask point (it is a corner of one of the cell's
leaves), so:

* stage 0: the root's corners (predicted as the middle level);
* stage d + 1: the new corners made by the splits of depth d: first the edge midpoints,
  each predicted by bilinear interpolation of the four corners of the cell that was split
  (the coarse image the decoder already has; on a straight edge simply the mean of the
  edge's two ends), then, in the quadtree, the centres of the split cells, predicted by
  the mean of their four edge midpoints (nearer than the corners);
* last stage: the leaves' centre points (trees with ``centres``), predicted by bilinear
  interpolation of the leaf's four corners.

Predictions are integer: sum(w_k v_k) with integer weights (products of distances to the
cell's sides), rounded division by their sum, so encoder and decoder agree bit for bit.
The residual is coded with constriction's quantised Laplace model, mean 0, scale estimated
per context from the residuals coded before, b = (sum |r| + 2) / (n + 2), at least 0.3,
as in :mod:`bitstreams.value_coder`; contexts = stage (depth 0..10, 11+, centres) x local
activity (spread of the four nearest predictor values: <= Q/32, <= Q/8, more).  A stage
is coded in chunks of doubling size so the scales adapt from the first symbols.

Measured on error-driven quadtrees (with centres) of 6k, 12k and 26k points on kodim01/05/
13/23 with tonally optimised values at 8 levels, bits per value: value_coder.py 2.759,
this order with centres from the corners 2.648, from the edge midpoints 2.604 (with
weights 2 midpoints - 1 corners 2.627, 2 midpoints + 1 corners 2.612); at 16 levels
3.825 / 3.695 / 3.642.  At 0.1 bpp that gave +0.11 dB (kodim05/13/23, bench_tree.py).

Two value models share that order (``model``; the file's value coder names it):

* model 1 (inpcodec 0.2.0's version-2 files): the residual from the rounded
  prediction, quantised Laplace of mean 0 over [-(L - 1), L - 1], contexts stage x 3
  activity classes, scale at least 0.3;
* model 2 (format 1.0's value model 2): the value itself, quantised Laplace
  over [0, L - 1] centred on the *unrounded* prediction (fixed point, 1/256 of a level),
  so the probability of values the prediction cannot reach is not wasted and the model's
  edge bins take the tails (tonally optimised values pile up at 0 and L - 1); the centres
  (of cells cut both ways, and of leaves) predicted by the median of their four nearest
  predictors instead of their mean; 6 activity classes (spread <= Q/32, then doublings up
  to > Q/4); scale at least 0.5.  On the default encoder's Kodak files at 0.05, 0.1 and
  0.3 bpp (benchmarks/bench_value_model.py; RESULTS.md, "Value model 2"), cumulative
  savings in value bits, grey luma, kodim01-06 (where the choices were made) / the 18
  images held out: tails in the edge bins 2.1 / 2.6 %, median centres 2.9 / 3.4 %,
  unrounded predictions 4.4 / 4.9 %, 6 activity classes 4.7 / 5.4 %, scale floor
  5.0 / 5.7 %; colour files 5.0-5.4 % (luma) and 5.0-5.3 % (chroma, where the floor of
  0.5 costs 1.2 % against 0.3 but is kept for one rule).  Tried and not kept: a Gaussian
  or logistic shape (-2.5 / -4.6 % against the Laplace's -5.0 %), adaptive symbol counts
  on top of the Laplace (0.25 % more), leaf-size contexts for the leaf centres (0.02 %).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from inpcodec.bitstreams.adaptive import (
    doubling_chunks,
    laplace_decode,
    laplace_decode_values,
    laplace_encode,
    laplace_encode_values,
)
from inpcodec.bitstreams.tree_coder import (
    Tree,
    cell_bounds,
    children,
    leaves,
    n_children,
    schedule,
    tree_mask,
)

N_DEPTH_STAGES = 12
N_STAGE = N_DEPTH_STAGES + 1  # + the leaf centres
N_ACT = 3
N_CONTEXTS = N_STAGE * N_ACT
MIN_SCALE = 0.3
MID_WEIGHT, CORNER_WEIGHT = 1, 0  # centre of a cell cut both ways (measured)
#: Value models (see the module's docstring); files name theirs by their value coder.
MODELS = (1, 2)
#: Model 2: fixed-point unit of the prediction (1/FX of a level), activity classes,
#: smallest Laplace scale.
FX = 256
N_ACT2 = 6
N_CONTEXTS2 = N_STAGE * N_ACT2
MIN_SCALE2 = 0.5



def _bilinear(y0, y1, x0, x1, y, x):
    """Integer weights (n, 4) of the corners (y0,x0) (y0,x1) (y1,x0) (y1,x1) at (y, x)."""
    dy, dx = y1 - y0, x1 - x0
    ay1 = np.where(dy > 0, y - y0, 0)
    ay0 = np.where(dy > 0, y1 - y, 1)
    ax1 = np.where(dx > 0, x - x0, 0)
    ax0 = np.where(dx > 0, x1 - x, 1)
    return np.stack([ay0 * ax0, ay0 * ax1, ay1 * ax0, ay1 * ax1], axis=1)


#: Plans of the trees coded last, by :func:`_tree_key`: (point count, stages).  An encoder
#: codes one tree many times (luma, then Cb and Cr on the chroma tree; several level
#: counts while it chooses), and the plan costs about as much as coding the values.  Two:
#: the luma's tree and the chroma's.  A plan's stages hold about 60 bytes per point (7 MB
#: for a 4 MP photograph's tree at quality 50), alive through the encode's peak.  Per
#: thread: encodes in threads of one process neither share nor race on them.
class _Plans(threading.local):
    def __init__(self):
        self.kept = OrderedDict()


_PLANS = _Plans()
_PLANS_KEPT = 2


def _tree_key(tree: Tree) -> bytes:
    """A digest of everything the plan depends on: the size, the flags and the splits."""
    d = hashlib.blake2b(digest_size=20)
    d.update(np.array([tree.height, tree.width, tree.quad, tree.centres], np.int64).tobytes())
    for split in tree.splits:
        a = np.ascontiguousarray(split, np.int64)
        d.update(np.int64(a.size).tobytes())
        d.update(a.tobytes())
    return d.digest()


def forget_plans() -> None:
    """Drop this thread's kept plans (before a solve's large allocations: a decoder has no
    more use for them once the values are decoded)."""
    _PLANS.kept = OrderedDict()


def _kept_plan(tree: Tree):
    """``(points, stages)`` of :func:`plan`, kept for the trees coded last; the stages'
    arrays are read-only, their indices int32 (a file has at most 2^26 points)."""
    key = _tree_key(tree)
    kept = _PLANS.kept
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    mask, stages = _make_plan(tree)
    small = []
    for stage, idx, cor, wts in stages:
        idx = idx.astype(np.int32)
        cor = None if cor is None else cor.astype(np.int32)
        for a in (idx, cor, wts):
            if a is not None:
                a.setflags(write=False)
        small.append((stage, idx, cor, wts))
    kept[key] = out = (int(mask.sum()), small)
    if len(kept) > _PLANS_KEPT:
        kept.popitem(last=False)
    return out


def plan(tree: Tree):
    """Coding order of the tree's mask points.

    Returns ``(mask, stages)``; each stage is ``(stage number, point indices into the
    raster order of the mask points, predictor point indices (n, k) or None, integer
    weights (n, k))``.  The stages' arrays are read-only: the plans of recent trees are
    kept and handed out again.
    """
    return tree_mask(tree), _kept_plan(tree)[1]


def _make_plan(tree: Tree):
    h, w = tree.height, tree.width
    mask = tree_mask(tree)
    flat = np.flatnonzero(mask)
    index = np.full(h * w, -1, np.int64)
    index[flat] = np.arange(flat.size)
    known = np.zeros(h * w, bool)
    sched = schedule(h, w, tree.quad)
    stages = []

    def corners(grid, keys):
        y0, y1, x0, x1 = cell_bounds(h, w, grid, keys)
        return (y0, y1, x0, x1), np.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0,
                                           y1 * w + x1], axis=1)

    # stage 0: the root's corners
    _, c = corners(sched[0], np.zeros(1, np.int64))
    root = np.unique(c)
    stages.append((0, index[root], None, None))
    known[root] = True
    for d in range(len(sched) - 1):
        split = tree.splits[d] if d < len(tree.splits) else np.zeros(0, np.int64)
        if split.size == 0:
            break
        pb, pc = corners(sched[d], split)
        new_pts, new_par = [], []
        for k in range(n_children(sched[d], sched[d + 1])):
            _, cc = corners(sched[d + 1], children(split, sched[d], sched[d + 1], k))
            new_pts.append(cc.ravel())
            new_par.append(np.repeat(np.arange(split.size), 4))
        pts, par = np.concatenate(new_pts), np.concatenate(new_par)
        fresh = ~known[pts]
        pts, first = np.unique(pts[fresh], return_index=True)  # raster order, one parent each
        par = par[fresh][first]
        y, x = np.divmod(pts, w)
        y0, y1, x0, x1 = pb[0][par], pb[1][par], pb[2][par], pb[3][par]
        stage = min(d + 1, N_DEPTH_STAGES - 1)
        # the centre of a cell cut both ways comes after its four edge midpoints, which
        # are nearer to it than the corners: predicted from all eight
        centre = np.zeros(pts.size, bool)
        if sched[d + 1][0] > sched[d][0] and sched[d + 1][1] > sched[d][1]:
            last = children(split, sched[d], sched[d + 1],
                            n_children(sched[d], sched[d + 1]) - 1)
            centre = np.isin(pts, corners(sched[d + 1], last)[1][:, 0])  # its top-left corner
        e = ~centre
        known[pts[e]] = True
        wts = _bilinear(y0[e], y1[e], x0[e], x1[e], y[e], x[e])
        stages.append((stage, index[pts[e]], index[pc[par[e]]], wts))
        if centre.any():
            c_par = par[centre]
            cy_, cx_ = y[centre], x[centre]
            mids = np.stack([y0[centre] * w + cx_, y1[centre] * w + cx_, cy_ * w + x0[centre],
                             cy_ * w + x1[centre]], axis=1)
            cor = np.concatenate([index[mids], index[pc[c_par]]], axis=1)
            wts = np.concatenate([np.full((c_par.size, 4), MID_WEIGHT),
                                  np.full((c_par.size, 4), CORNER_WEIGHT)], axis=1)
            known[pts[centre]] = True
            stages.append((stage, index[pts[centre]], cor, wts))
    if tree.centres:
        cen, cor, wts = [], [], []
        for grid, keys in leaves(tree):
            (y0, y1, x0, x1), c = corners(grid, keys)
            cy, cx = (y0 + y1) >> 1, (x0 + x1) >> 1
            cen.append(cy * w + cx)
            cor.append(c)
            wts.append(_bilinear(y0, y1, x0, x1, cy, cx))
        cen, cor, wts = np.concatenate(cen), np.concatenate(cor), np.concatenate(wts)
        fresh = ~known[cen]
        cen, first = np.unique(cen[fresh], return_index=True)
        stages.append((N_STAGE - 1, index[cen], index[cor[fresh][first]],
                       wts[fresh][first]))
    return mask, stages


def _run(tree: Tree, levels: int, q, coder):
    n, stages = _kept_plan(tree)
    if q is None:
        q = np.zeros(n, np.int64)
    abs_sum = np.zeros(N_CONTEXTS, np.int64)
    count = np.zeros(N_CONTEXTS, np.int64)
    for stage, idx, cor, wts in stages:
        if idx.size == 0:
            continue
        if cor is None:
            pred = np.full(idx.size, levels // 2, np.int64)
            act = np.full(idx.size, N_ACT - 1)
        else:
            v = q[cor]
            den = wts.sum(axis=1)
            pred = np.clip((2 * (v * wts).sum(axis=1) + den) // (2 * den), 0, levels - 1)
            spread = v[:, :4].max(axis=1) - v[:, :4].min(axis=1)
            act = np.where(32 * spread <= levels, 0, np.where(8 * spread <= levels, 1, 2))
        ctx = stage * N_ACT + act
        for a, b in doubling_chunks(idx.size):
            sel = idx[a:b]
            scales = np.maximum((abs_sum[ctx[a:b]] + 2.0) / (count[ctx[a:b]] + 2.0), MIN_SCALE)
            res = coder(q[sel] - pred[a:b], scales)
            q[sel] = np.clip(pred[a:b] + res, 0, levels - 1)  # damaged data stays in range
            np.add.at(abs_sum, ctx[a:b], np.abs(res))
            np.add.at(count, ctx[a:b], 1)
    return q


def _activity2(spread, levels):
    """Model 2's activity class of a spread of predictor values: 0 up to Q/32, then one
    class per doubling, the last above Q/4."""
    t = 32 * np.asarray(spread, np.int64)
    act = np.zeros(t.shape, np.int64)
    for k in range(N_ACT2 - 1):
        act += t > (levels << k)
    return act


def _run2(tree: Tree, levels: int, q, coder):
    """Model 2: ``coder(values, means, scales)`` codes the values of a chunk on
    [0, levels - 1] with Laplace models of those means (float64, exact multiples of 1/FX)
    and scales; everything else is integer arithmetic."""
    n, stages = _kept_plan(tree)
    if q is None:
        q = np.zeros(n, np.int64)
    abs_sum = np.zeros(N_CONTEXTS2, np.int64)  # sum of |FX q - mean|, per context
    count = np.zeros(N_CONTEXTS2, np.int64)
    for stage, idx, cor, wts in stages:
        if idx.size == 0:
            continue
        if cor is None:
            mean = np.full(idx.size, (levels - 1) * (FX // 2), np.int64)
            act = np.full(idx.size, N_ACT2 - 1, np.int64)
        else:
            v = q[cor]
            near = v[:, :4]  # the four nearest predictors (a centre's edge midpoints)
            if stage == N_STAGE - 1 or cor.shape[1] == 8:  # centres: median of the four
                srt = np.sort(near, axis=1)
                mean = (srt[:, 1] + srt[:, 2]) * (FX // 2)
            else:
                den = wts.sum(axis=1)
                mean = (2 * FX * (v * wts).sum(axis=1) + den) // (2 * den)
            act = _activity2(near.max(axis=1) - near.min(axis=1), levels)
        ctx = stage * N_ACT2 + act
        for a, b in doubling_chunks(idx.size):
            sel, c = idx[a:b], ctx[a:b]
            scales = np.maximum((abs_sum[c] + 2 * FX) / (FX * (count[c] + 2.0)), MIN_SCALE2)
            q[sel] = np.clip(coder(q[sel], mean[a:b] / FX, scales), 0, levels - 1)
            np.add.at(abs_sum, c, np.abs(FX * q[sel] - mean[a:b]))
            np.add.at(count, c, 1)
    return q


def _check_model(model):
    if model not in MODELS:
        raise ValueError(f"unknown tree value model {model} (known: {MODELS})")


def encode_tree_values(tree: Tree, q: np.ndarray, levels: int, model: int = 2) -> np.ndarray:
    """Compressed words of ``q`` (raster order of the points of ``tree_mask(tree)``)."""
    _check_model(model)
    q = np.asarray(q, np.int64)
    n = _kept_plan(tree)[0]  # kept for the coding that follows
    if q.shape != (n,):
        raise ValueError(f"need one value per mask point: {q.shape} vs {n}")
    if q.min() < 0 or q.max() >= levels:
        raise ValueError(f"quantised values must lie in [0, {levels - 1}]")
    if model == 1:
        return laplace_encode(lambda v, coder: _run(tree, levels, v, coder), levels,
                              q.copy())
    return laplace_encode_values(lambda v, coder: _run2(tree, levels, v, coder), levels,
                                 q.copy())


def decode_tree_values(words: np.ndarray, tree: Tree, levels: int, model: int = 2
                       ) -> np.ndarray:
    """Inverse of :func:`encode_tree_values` (the same ``model``)."""
    _check_model(model)
    if model == 1:
        return laplace_decode(lambda v, coder: _run(tree, levels, v, coder), levels, words)
    return laplace_decode_values(lambda v, coder: _run2(tree, levels, v, coder), levels,
                                 words)


def residual_model(tree: Tree, q: np.ndarray, levels: int, model: int = 2):
    """The value coder's view of ``q`` (raster order of the mask points), without coding:
    per value its prediction (the Laplace model's mean; model 1: 0, the model codes the
    residual ``q - pred`` then, so ``pred`` is returned as ``q - residual``) and the
    Laplace scale it is coded with.  Returns ``(means, scales)``."""
    _check_model(model)
    q = np.asarray(q, np.int64)
    _, stages = _kept_plan(tree)
    order = np.concatenate([idx for _, idx, _, _ in stages if idx.size])
    seen_mean, seen_scale = [], []

    if model == 1:
        def coder(res, scales):
            seen_mean.append(res)
            seen_scale.append(scales)
            return res

        _run(tree, levels, q.copy(), coder)
    else:
        def coder(vals, means, scales):
            seen_mean.append(means)
            seen_scale.append(scales)
            return vals

        _run2(tree, levels, q.copy(), coder)
    mean, scale = np.zeros(order.size), np.ones(order.size)
    if seen_mean:
        mean[order], scale[order] = np.concatenate(seen_mean), np.concatenate(seen_scale)
    if model == 1:
        mean = q - mean  # the prediction that residual came from
    return mean, scale


def laplace_bits(x, means, scales, lo=None, hi=None) -> np.ndarray:
    """-log2 of the quantised Laplace probability of each integer ``x``: the continuous
    Laplace of that mean and scale integrated over the unit interval of ``x``, the tails
    beyond ``lo`` and ``hi`` (where given) taken by those edge bins, as constriction's
    quantised models do (its fixed-point probabilities differ from these by far less than
    a bit)."""
    x, means = np.asarray(x, np.float64), np.asarray(means, np.float64)
    scales = np.asarray(scales, np.float64)

    def cdf(t):
        z = (t - means) / scales
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0.0)),
                        1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)))

    upper = cdf(x + 0.5) if hi is None else np.where(x >= hi, 1.0, cdf(x + 0.5))
    lower = cdf(x - 0.5) if lo is None else np.where(x <= lo, 0.0, cdf(x - 0.5))
    return -np.log2(np.clip(upper - lower, 2.0 ** -24, 1.0))


def code_lengths(tree: Tree, q: np.ndarray, levels: int, model: int = 2) -> np.ndarray:
    """Bits the value coder spends on each value of ``q`` (raster order of the mask points):
    :func:`laplace_bits` of :func:`residual_model`.  The rate-distortion-optimised tree
    encoder (:func:`inpcodec.baselines.tree.rdo_order`) prices its splits with them."""
    q = np.asarray(q, np.int64)
    means, scales = residual_model(tree, q, levels, model)
    if model == 1:
        return laplace_bits(q - means, 0.0, scales)
    return laplace_bits(q, means, scales, 0, levels - 1)
