"""Lossless coding of the quantised values at the mask points (one channel at a time).

Order and prediction (coarse to fine, integer arithmetic only, so identical everywhere):
a mask point's *stage* is the coarsest quadtree level l at which it is the first point
(in raster order) of its 2^l x 2^l block.  Stages are coded from the top down; a point
of stage s is predicted by the rounded integer mean of the values of the level-(s + 1)
block representatives in the 3 x 3 blocks around its own, all decoded in earlier stages
(the single top point is predicted as the middle level).  The decoder knows the mask
before the values, so it derives the same order and predictions.

The residual r = q - prediction is coded with constriction's quantised Laplace model,
mean 0 and scale estimated adaptively per context from the residuals coded before:
b = (sum |r| + 2) / (n + 2) (at least 0.3), contexts = stage (0, 1, 2, 3, 4+) x local
activity (spread of the neighbouring representatives: <= Q/32, <= Q/8, more).  Every
parameter is a float64 computed from integer sums, identically on both sides; a stage
is coded in chunks of doubling size so the scales adapt from the first symbols.
"""

from __future__ import annotations

import numpy as np

from inpcodec.bitstreams.adaptive import doubling_chunks, laplace_decode, laplace_encode

N_STAGE = 5
N_ACT = 3
N_CONTEXTS = N_STAGE * N_ACT
MIN_SCALE = 0.3


def max_values(n_bytes: int) -> int:
    """Most values a section of ``n_bytes`` can hold.

    With the scale never below MIN_SCALE the likeliest residual has probability at most
    P(0) = 1 - exp(-1 / (2 MIN_SCALE)), so every value costs at least -log2 P(0) bits
    (0.30 bits); with a margin for the coder's fixed-point rounding and its final words.
    """
    bits_per_value = -np.log2(1.0 - np.exp(-0.5 / MIN_SCALE))
    return int(8 * n_bytes / (0.9 * bits_per_value)) + 1024


def plan(mask: np.ndarray):
    """Coding order of the mask points: list of (stage, point indices in raster order).

    Returns ``(stages, order)`` where ``order`` is a list of per-stage index arrays into
    ``np.flatnonzero(mask)`` (top stage first) and ``stages`` the stage numbers.
    """
    h, w = mask.shape
    flat = np.flatnonzero(mask)
    ii, jj = np.divmod(flat, w)
    top = 0
    while (1 << top) < max(h, w):
        top += 1
    stage = np.zeros(flat.size, np.int64)
    for lev in range(1, top + 1):
        blocks = (ii >> lev) * ((w >> lev) + 1) + (jj >> lev)
        _, first = np.unique(blocks, return_index=True)  # flat is sorted: first = raster-first
        stage[first] = lev
    order = [np.flatnonzero(stage == s) for s in range(top, -1, -1)]
    return list(range(top, -1, -1)), order, (ii, jj)


def _predict(q, known, ii, jj, sel, s, h, w, levels):
    """Integer predictions and activity buckets for the points ``sel`` of stage ``s``."""
    lev = s + 1
    gh, gw = ((h - 1) >> lev) + 1, ((w - 1) >> lev) + 1
    reps = np.flatnonzero(known)
    grid = np.zeros((gh + 2, gw + 2), np.int64)
    have = np.zeros((gh + 2, gw + 2), np.int64)
    bi, bj = (ii[reps] >> lev) + 1, (jj[reps] >> lev) + 1
    # representatives of the level-(s+1) blocks: the raster-first known point of each
    blocks = bi * (gw + 2) + bj
    _, first = np.unique(blocks, return_index=True)
    grid[bi[first], bj[first]] = q[reps[first]]
    have[bi[first], bj[first]] = 1
    pi, pj = (ii[sel] >> lev) + 1, (jj[sel] >> lev) + 1
    total = np.zeros(sel.size, np.int64)
    count = np.zeros(sel.size, np.int64)
    hi = np.full(sel.size, -1, np.int64)
    lo = np.full(sel.size, levels, np.int64)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            v, hv = grid[pi + di, pj + dj], have[pi + di, pj + dj]
            total += v * hv
            count += hv
            hi = np.where(hv > 0, np.maximum(hi, v), hi)
            lo = np.where(hv > 0, np.minimum(lo, v), lo)
    pred = np.where(count > 0, (2 * total + count) // (2 * np.maximum(count, 1)), levels // 2)
    spread = np.where(count > 0, hi - lo, levels)
    act = np.where(32 * spread <= levels, 0, np.where(8 * spread <= levels, 1, 2))
    return pred, act


def _scales(abs_sum, count, ctx):
    return np.maximum((abs_sum[ctx] + 2.0) / (count[ctx] + 2.0), MIN_SCALE)


def _run(mask, levels, q, coder):
    """Shared walk of encoder and decoder; ``coder(residuals_or_None, scales) -> residuals``."""
    h, w = mask.shape
    stages, order, (ii, jj) = plan(mask)
    if q is None:
        q = np.zeros(ii.size, np.int64)
    known = np.zeros(ii.size, bool)
    abs_sum = np.zeros(N_CONTEXTS, np.int64)
    count = np.zeros(N_CONTEXTS, np.int64)
    for s, sel in zip(stages, order, strict=True):
        if sel.size == 0:
            continue
        if known.any():
            pred, act = _predict(q, known, ii, jj, sel, s, h, w, levels)
        else:
            pred, act = np.full(sel.size, levels // 2, np.int64), np.full(sel.size, 2)
        ctx = min(s, N_STAGE - 1) * N_ACT + act
        for a, b in doubling_chunks(sel.size):
            idx = sel[a:b]
            res = coder(q[idx] - pred[a:b], _scales(abs_sum, count, ctx[a:b]))
            q[idx] = pred[a:b] + res
            np.add.at(abs_sum, ctx[a:b], np.abs(res))
            np.add.at(count, ctx[a:b], 1)
        known[sel] = True
    return q


def encode_values(mask: np.ndarray, q: np.ndarray, levels: int) -> np.ndarray:
    """Compressed words of the quantised values ``q`` (raster order of the mask points)."""
    q = np.asarray(q, np.int64)
    m = np.asarray(mask, bool)
    if q.shape != (int(m.sum()),):
        raise ValueError(f"need one value per mask point: {q.shape} vs {int(m.sum())}")
    if q.size and (q.min() < 0 or q.max() >= levels):
        raise ValueError(f"quantised values must lie in [0, {levels - 1}]")
    return laplace_encode(lambda v, coder: _run(m, levels, v, coder), levels, q.copy())


def decode_values(words: np.ndarray, mask: np.ndarray, levels: int) -> np.ndarray:
    """Inverse of :func:`encode_values`: quantised values in raster order of the points."""
    m = np.asarray(mask, bool)
    q = laplace_decode(lambda v, coder: _run(m, levels, v, coder), levels, words)
    return np.clip(q, 0, levels - 1)  # garbage (damaged) input can predict out of range
