"""Tree encoders: deterministic, monotone in their knob, nested orders."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from inpcodec.baselines.tree import (
    error_driven_order,
    error_driven_tree,
    map_driven_order,
    map_driven_tree,
    prefix_for_points,
    probabilistic_order,
    tree_from_order,
)
from inpcodec.bitstreams.tree_coder import tree_mask


def image(h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    f = gaussian_filter(rng.standard_normal((h, w)), 4)
    f = (f - f.min()) / np.ptp(f) * 200 + 20
    f[h // 3:, w // 2] += 30  # an edge: the trees must refine there
    return f


@pytest.mark.parametrize("quad", [False, True])
def test_error_driven_deterministic_and_monotone(quad):
    f = image()
    a = error_driven_tree(f, 400, quad=quad)
    b = error_driven_tree(f, 400, quad=quad)
    assert a.tree == b.tree and np.array_equal(a.mask, b.mask)
    counts = [int(error_driven_tree(f, p, quad=quad).mask.sum()) for p in (50, 150, 400, 900)]
    assert counts == sorted(counts)
    assert all(c >= p for c, p in zip(counts, (50, 150, 400, 900), strict=True))
    assert a.inpaintings >= 1


def test_error_driven_refines_where_the_error_is():
    f = np.full((64, 64), 100.0)
    f[20:40, 30:50] = 200.0  # one bright square: its edges need the points
    m = error_driven_tree(f, 300).mask
    near = np.zeros_like(m)
    near[16:44, 26:54] = True
    assert m[near].mean() > 1.5 * m[~near].mean()  # 2.0x measured (64 uniform leaves first)


def test_probabilistic_order_is_seeded_and_refines_where_the_error_is():
    f = np.full((64, 64), 100.0)
    f[20:40, 30:50] = 200.0
    a = probabilistic_order(f, 300, seed=3)
    b = probabilistic_order(f, 300, seed=3)
    assert np.array_equal(a.depth, b.depth) and np.array_equal(a.key, b.key)
    assert not np.array_equal(a.key, probabilistic_order(f, 300, seed=4).key)
    m = tree_mask(tree_from_order(a, prefix_for_points(a, 300)))
    assert m.sum() >= 300
    near = np.zeros_like(m)
    near[16:44, 26:54] = True
    assert m[near].mean() > 1.5 * m[~near].mean()
    assert a.cost.max() >= 2  # two inpaintings per iteration
    with pytest.raises(ValueError):
        probabilistic_order(f, 300, candidates=0.0)


def test_map_driven_deterministic_and_monotone():
    f = image()
    a, b = map_driven_tree(f, 0.3), map_driven_tree(f, 0.3)
    assert a.tree == b.tree and a.inpaintings == 0
    counts = [int(map_driven_tree(f, t).mask.sum()) for t in (2.0, 1.0, 0.3, 0.1)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_orders_are_nested_prefixes():
    f = image()
    o = map_driven_order(f, min_integral=0.05)
    for t in (1.0, 0.3, 0.1):
        tree = map_driven_tree(f, t).tree
        n = int(np.sum(_integrals(f, o) > t))
        assert tree_from_order(o, n) == tree
    e = error_driven_order(f, 800)
    prev = 0
    for p in (100, 300, 800):
        n = prefix_for_points(e, p)
        assert n >= prev and int(tree_mask(tree_from_order(e, n)).sum()) >= p
        prev = n


def _integrals(f, order):
    from inpcodec.baselines.tree import _cell_sums, _sat, laplacian_map
    from inpcodec.bitstreams.tree_coder import cell_bounds, schedule

    sat = _sat(laplacian_map(f))
    sched = schedule(*f.shape, order.quad)
    return np.array([_cell_sums(sat, *cell_bounds(*f.shape, sched[d], np.array([k])))[0]
                     for d, k in zip(order.depth, order.key, strict=True)])

