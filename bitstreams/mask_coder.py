"""Lossless coding of sparse binary masks: an adaptive quadtree (OR-pyramid) coder.

Level 0 is the mask; level l + 1 marks the 2 x 2 blocks of level l that hold at least one
point, up to a single pixel (which is 1: masks are never empty).  Top-down, each level
codes the children of its parents that are 1, in four phases (child (0,0), (0,1), (1,0),
(1,1) of every block), each phase as one vectorised call of constriction's range coder.
A child whose earlier siblings are all 0 and which is the last child of its block inside
the image is forced to 1 and costs nothing.  Large empty regions thus cost a few bits
at a coarse level, and the densities of structured masks are learned per context:

    context = (level (0..4, 5+), phase and number of earlier siblings that are 1 (10),
               number of the parent's 4 neighbours that are 1 (0, 1-2, 3-4))

The section starts with the number of points (one uint32 word), which gives the exact
probabilities of every (level, phase, siblings) context for an i.i.d. mask of that
density (:func:`iid_prior`).  The probability of a 1 in a context is estimated from the
counts of the symbols coded before, (n1 + a p) / (n0 + n1 + a), backed off (a = 4) to p,
the same context pooled over the neighbour buckets, itself backed off (weight 16) to the
i.i.d. prior; computed in float64 from integer counts, identically in encoder and
decoder, and clipped to [1e-6, 1 - 1e-6].  A phase is
coded in chunks of doubling size (1, 2, 4, ...) with the counts updated between chunks,
so the model adapts from the first symbols at the cost of about log2(n) calls per phase.
"""

from __future__ import annotations

import numpy as np

from inpcodec.bitstreams.adaptive import doubling_chunks

N_LEVEL = 6
N_COMBO = 10  # (phase, earlier ones): (0,0) (1,0) (1,1) (2,0) (2,1) (2,2) (3,0) .. (3,3)
N_NB = 3
N_CONTEXTS = N_LEVEL * N_COMBO * N_NB
_COMBO_BASE = np.array([0, 1, 3, 6])  # combo index = base[phase] + earlier ones
P_MIN = 1e-6
FIRST_CHUNK = 1
BACKOFF = 4.0
PRIOR_WEIGHT = 16.0


def _model():
    import constriction  # noqa: PLC0415

    return constriction.stream.model.Bernoulli(perfect=False)


def pyramid(mask: np.ndarray) -> list:
    """[level 0 (the mask), level 1 (OR of 2 x 2 blocks), ..., 1 x 1]."""
    levels = [np.asarray(mask, bool)]
    while levels[-1].shape != (1, 1):
        m = levels[-1]
        h, w = m.shape
        p = np.zeros((h + h % 2, w + w % 2), bool)
        p[:h, :w] = m
        levels.append(p[0::2, 0::2] | p[0::2, 1::2] | p[1::2, 0::2] | p[1::2, 1::2])
    return levels


def level_shapes(h: int, w: int) -> list:
    shapes = [(h, w)]
    while shapes[-1] != (1, 1):
        a, b = shapes[-1]
        shapes.append(((a + 1) // 2, (b + 1) // 2))
    return shapes


def _neighbour_bucket(parent: np.ndarray, pi: np.ndarray, pj: np.ndarray) -> np.ndarray:
    pp = np.pad(parent, 1).astype(np.int8)
    n = (pp[pi, pj + 1] + pp[pi + 2, pj + 1] + pp[pi + 1, pj] + pp[pi + 1, pj + 2])
    return np.minimum((n + 1) // 2, 2)  # 0 -> 0, 1-2 -> 1, 3-4 -> 2


def _phase_plan(child_shape, parent, parents, nb, level, phase, child):
    """Positions, contexts and forced flags of one phase.

    ``parents`` are the coordinates of the parent level's ones and ``nb`` their neighbour
    buckets; ``child`` is the level being coded (earlier phases already filled in).
    Returns the child coordinates (ci, cj), the context of each, and the forced ones.
    """
    h, w = child_shape
    a, b = divmod(phase, 2)
    pi, pj = parents
    ci, cj = 2 * pi + a, 2 * pj + b
    ok = (ci < h) & (cj < w)
    pi, pj, ci, cj, nb = pi[ok], pj[ok], ci[ok], cj[ok], nb[ok]
    ones = np.zeros(ci.size, np.int64)
    exists_later = np.zeros(ci.size, bool)
    for k in range(4):
        ka, kb = divmod(k, 2)
        yi, yj = 2 * pi + ka, 2 * pj + kb
        inb = (yi < h) & (yj < w)
        if k < phase:
            ones += np.where(inb, child[np.minimum(yi, h - 1), np.minimum(yj, w - 1)], 0)
        elif k > phase:
            exists_later |= inb
    forced = (ones == 0) & ~exists_later
    combo = _COMBO_BASE[phase] + ones
    ctx = (min(level, N_LEVEL - 1) * N_COMBO + combo) * N_NB + nb
    return ci, cj, ctx, forced


def _level_plan(parent):
    parents = np.nonzero(parent)
    return parents, _neighbour_bucket(parent, *parents)


def _count(n0, n1, ctx, sym):
    n1 += np.bincount(ctx[sym == 1], minlength=N_CONTEXTS)
    n0 += np.bincount(ctx[sym == 0], minlength=N_CONTEXTS)


def _chunks(n: int):
    return doubling_chunks(n, FIRST_CHUNK)


def iid_prior(density: float) -> np.ndarray:
    """P(child block holds a point) per (level, combo) context for an i.i.d. mask.

    A block of 4^l pixels is non-empty with probability pi = 1 - (1 - d)^(4^l).  Once a
    sibling is known to be non-empty the children are independent (P = pi); while all
    earlier siblings are empty, one of the r = 4 - phase remaining children must hold the
    parent's point: P = pi / (1 - (1 - pi)^r).
    """
    d = min(max(density, 1e-12), 1.0)
    prior = np.empty((N_LEVEL, N_COMBO))
    for lev in range(N_LEVEL):
        pi = -np.expm1(4.0**lev * np.log1p(-d)) if d < 1.0 else 1.0
        for phase in range(4):
            r = 4 - phase
            first = pi / (-np.expm1(r * np.log1p(-pi))) if 0 < pi < 1 else pi
            for ones in range(phase + 1):
                prior[lev, _COMBO_BASE[phase] + ones] = first if ones == 0 else pi
    return np.clip(prior.ravel(), P_MIN, 1.0 - P_MIN)


def _probabilities(n0, n1, ctx, prior):
    """P(1) per symbol, by two stages of backoff ending in the i.i.d. prior.

    The (level, combo) counts pooled over neighbour buckets start from the i.i.d.
    prior (weight ``PRIOR_WEIGHT``); each full context starts from its pool (weight
    ``BACKOFF``).  On an i.i.d. mask nothing is left to learn; on a structured mask the
    counts take over where the data differ.
    """
    t0 = n0.reshape(-1, N_NB).sum(axis=1)
    t1 = n1.reshape(-1, N_NB).sum(axis=1)
    pooled = (t1 + PRIOR_WEIGHT * prior) / (t0 + t1 + PRIOR_WEIGHT)
    p = (n1[ctx] + BACKOFF * pooled[ctx // N_NB]) / (n0[ctx] + n1[ctx] + BACKOFF)
    return np.clip(p, P_MIN, 1.0 - P_MIN)


def encode_mask(mask: np.ndarray) -> np.ndarray:
    """Compressed words (uint32) of a non-empty boolean mask."""
    import constriction  # noqa: PLC0415

    m = np.asarray(mask, bool)
    if m.ndim != 2 or m.size == 0 or not m.any():
        raise ValueError("the mask must be a non-empty 2-D array with at least one point")
    levels = pyramid(m)
    count = int(m.sum())
    prior = iid_prior(count / m.size)
    enc = constriction.stream.queue.RangeEncoder()
    model = _model()
    n0 = np.zeros(N_CONTEXTS, np.int64)
    n1 = np.zeros(N_CONTEXTS, np.int64)
    for lev in range(len(levels) - 2, -1, -1):
        child, parent = levels[lev], levels[lev + 1]
        parents, nb = _level_plan(parent)
        for phase in range(4):
            ci, cj, ctx, forced = _phase_plan(child.shape, parent, parents, nb, lev, phase,
                                              child)
            keep = ~forced
            sym = child[ci[keep], cj[keep]].astype(np.int32)
            cx = ctx[keep]
            for s, e in _chunks(sym.size):
                enc.encode(sym[s:e], model, _probabilities(n0, n1, cx[s:e], prior))
                _count(n0, n1, cx[s:e], sym[s:e])
    return np.concatenate([np.array([count], np.uint32), enc.get_compressed()])


def decode_mask(words: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`encode_mask`; ``words`` are uint32 compressed words."""
    import constriction  # noqa: PLC0415

    words = np.asarray(words, np.uint32)
    if words.size < 1 or not 1 <= int(words[0]) <= height * width:
        raise ValueError("invalid point count in the mask section")
    count = int(words[0])
    prior = iid_prior(count / (height * width))
    dec = constriction.stream.queue.RangeDecoder(words[1:])
    model = _model()
    shapes = level_shapes(height, width)
    parent = np.ones((1, 1), bool)
    n0 = np.zeros(N_CONTEXTS, np.int64)
    n1 = np.zeros(N_CONTEXTS, np.int64)
    for lev in range(len(shapes) - 2, -1, -1):
        child = np.zeros(shapes[lev], bool)
        parents, nb = _level_plan(parent)
        for phase in range(4):
            ci, cj, ctx, forced = _phase_plan(child.shape, parent, parents, nb, lev, phase,
                                              child)
            child[ci[forced], cj[forced]] = True
            keep = ~forced
            cx = ctx[keep]
            ti, tj = ci[keep], cj[keep]
            for s, e in _chunks(cx.size):
                sym = np.asarray(dec.decode(model, _probabilities(n0, n1, cx[s:e], prior)),
                                 np.int64)
                child[ti[s:e], tj[s:e]] = sym.astype(bool)
                _count(n0, n1, cx[s:e], sym)
        # every occupied block holds a point: no level has more ones than the point count,
        # which bounds the work on damaged or forged data by the count, not the image size
        if int(np.count_nonzero(child)) > count:
            raise ValueError(f"level {lev} has more occupied blocks than the {count} points")
        parent = child
    return parent
