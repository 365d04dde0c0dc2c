"""The tree encoders as registered mask encoders of the codec (format version 2 files).

Both turn the density knob of the rate search into a point count and take the shortest
prefix of their split order that reaches it (:func:`.tree.prefix_for_points`), so the
rate search treats them like the free-mask encoders.  The split order of an image is
computed once and kept (for the last few images), so the many knobs a rate search tries
cost one order: error-driven densification (and the pruning of ``tree-rdo``) runs its
inpaintings once per image, up to twice the points asked for, and again only if a later
knob asks for more.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from inpcodec.bitstreams.tree_coder import tree_mask
from inpcodec.codec.encoders import (
    TREE_MASK_CODER,
    MaskEncoder,
    MaskResult,
    check_image,
    register,
    register_cache,
    target_count,
)

from .tree import (
    RdoPruning,
    error_driven_order,
    map_driven_order,
    prefix_for_points,
    scale_error_order,
    teacher_error_maps,
    tree_from_order,
)


class _Orders(threading.local):
    """The last images' split orders, per thread (encodes in threads of one process would
    otherwise evict or prune each other's)."""

    def __init__(self):
        self.kept = OrderedDict()


_CACHE = _Orders()
_CACHE_SIZE = 4
register_cache(lambda: _CACHE.kept.clear())


#: ``tree-rdo`` grows its tree to RDO_GROWTH times the points asked for and prunes it to
#: RDO_PRUNE_TO times them; a later knob above that range computes a new order, one below
#: it prunes on (to RDO_PRUNE_TO times its points).  The fast rate search's first knob
#: lands within about 20 % of the answer, and in grey its next level counts ask for down
#: to 0.66 times the points (kodim05 at 0.1 bpp), so one growth serves a search.  Kodak
#: grey, first 6 images: growth 1.5 gave +0.05 dB over growth 2 (benchmarks/RESULTS.md);
#: on kodim05/23 its pruning took 1.0-1.4 s against 2.6-2.9 s.  Pruning on when asked,
#: instead of down to 0.5 times the points at once, saves a third of the pruning in
#: colour, where the search tries one level count.
RDO_GROWTH = 1.5
RDO_PRUNE_TO = 0.8


@dataclass
class _Entry:
    """A cached split order: it serves point counts from ``low`` to ``budget`` (any count
    above ``low`` where ``complete``: the tree could not grow further)."""

    order: object
    budget: int
    complete: bool
    low: int = 0
    pruning: RdoPruning | None = None


def _order(kind: str, f: np.ndarray, points: int):
    key = (kind, f.shape, hashlib.sha1(np.ascontiguousarray(f).tobytes()).hexdigest())
    cache = _CACHE.kept
    hit = cache.get(key)
    if hit is not None and (hit.budget >= points or hit.complete):
        cache.move_to_end(key)
        if points >= hit.low:
            return hit.order, 0
        if hit.pruning is not None:  # fewer points than pruned to: prune on
            rounds = hit.pruning.rounds
            hit.order = hit.pruning.prune_to(int(RDO_PRUNE_TO * points))
            hit.low = 0 if hit.pruning.exhausted else hit.pruning.points()
            return hit.order, hit.pruning.rounds - rounds
    pruning = None
    if kind == "error":
        budget = min(f.size, 2 * points)
        order = error_driven_order(f, budget)
    elif kind == "rdo":
        budget = min(f.size, int(RDO_GROWTH * points))
        pruning = RdoPruning(f, budget)
        order = pruning.prune_to(int(RDO_PRUNE_TO * points))
    elif kind == "teacher":
        maps = teacher_error_maps(f)
        order = scale_error_order(f.shape, lambda d: maps[d])
        budget = f.size
    else:
        order, budget = map_driven_order(f), f.size
    if kind in ("error", "rdo"):
        complete = int(tree_mask(tree_from_order(order, len(order))).sum()) < budget
        spent = int(order.cost.max()) if len(order) else 0
    else:
        complete, spent = True, (len(maps) if kind == "teacher" else 0)
    low = 0 if pruning is None or pruning.exhausted else pruning.points()
    cache[key] = _Entry(order, budget, complete, low, pruning)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return order, spent


def _tree_result(kind: str, luma, density: float) -> MaskResult:
    t0 = time.perf_counter()
    f = check_image(luma)
    points = target_count(f.shape, density)
    order, spent = _order(kind, f, points)
    n = prefix_for_points(order, points)
    tree = tree_from_order(order, n)
    return MaskResult(tree_mask(tree), spent, time.perf_counter() - t0,
                      {"method": f"tree-{kind}", "splits": tree.n_splits()},
                      coder=TREE_MASK_CODER, structure=tree)


def _maker(kind: str):
    def make(luma, density, *, levels=None, seed=0, progress=False):
        return _tree_result(kind, luma, density)
    return make


for _name, _kind, _about in (
        ("tree", "error", "quadtree of corners and centres, split where the inpainting "
         "error is largest (a few inpaintings; tree-coded positions)"),
        ("tree-rdo", "rdo", "the default: every choice by D + lambda R; the error-driven "
         "quadtree grown while a leaf holds more error than a split's bits' price, then "
         "pruned where a split's bits buy less error than lambda (local re-solves; "
         "tree-coded positions; with --density: grown to 1.5 times the points, pruned to "
         "them)"),
        ("tree-teacher", "teacher", "quadtree split by the errors that uniform trees of each "
         "depth leave (one inpainting per depth, none sequential; the tree-map network's "
         "teacher; tree-coded positions)"),
        ("tree-map", "map", "quadtree split by Belhachmi's Laplacian map (no inpainting; "
         "tree-coded positions)")):
    register(MaskEncoder(_name, _maker(_kind), _about))
