"""Values of tree masks coded down the tree: round trips, integer predictions, damage."""

import numpy as np
import pytest
from test_tree_coder import random_tree, smooth_image

from inpcodec.bitstreams.tree_coder import Tree, tree_mask
from inpcodec.bitstreams.tree_values import decode_tree_values, encode_tree_values, plan


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 3), (33, 47), (64, 96)])
@pytest.mark.parametrize("quad", [False, True])
@pytest.mark.parametrize("model", [1, 2])
def test_round_trip(shape, quad, model):
    rng = np.random.default_rng(0)
    for seed, levels in enumerate((2, 8, 64, 4096)):
        t = random_tree(*shape, quad, seed % 2 == 0, seed)
        n = int(tree_mask(t).sum())
        q = rng.integers(0, levels, n)
        q[: n // 3] = rng.choice([0, levels - 1], n // 3)  # the edge bins, often
        words = encode_tree_values(t, q, levels, model)
        assert np.array_equal(decode_tree_values(words, t, levels, model), q)


def test_unknown_model_is_refused():
    t = random_tree(9, 9, True, True, 0)
    with pytest.raises(ValueError, match="model 3"):
        encode_tree_values(t, np.zeros(int(tree_mask(t).sum()), np.int64), 8, 3)


def test_every_point_once_and_predictors_known():
    t = random_tree(64, 96, True, True, 1)
    mask, stages = plan(t)
    seen = np.zeros(int(mask.sum()), bool)
    for _, idx, cor, wts in stages:
        assert not seen[idx].any()
        if cor is not None:  # predicted from points coded in earlier stages only
            assert seen[cor].all()
            assert (wts >= 0).all() and (wts.sum(axis=1) > 0).all()
        seen[idx] = True
    assert seen.all()


def test_hand_computed_prediction():
    # 5 x 9, root split in the quadtree: the edge midpoints (0,4) (4,4) (2,0) (2,8) are the
    # means of the root corners they lie between, then the centre (2,4) the mean of those
    t = Tree(5, 9, quad=True, splits=[np.array([0])])
    mask, stages = plan(t)
    q = np.zeros(int(mask.sum()), np.int64)
    flat = np.flatnonzero(mask)
    val = {0: 0, 8: 8, 36: 4, 44: 12}  # corners (0,0) (0,8) (4,0) (4,8)
    for f, v in val.items():
        q[np.searchsorted(flat, f)] = v
    got = {}
    for _, idx, cor, wts in stages[1:3]:
        pred = (2 * (q[cor] * wts).sum(axis=1) + wts.sum(axis=1)) // (2 * wts.sum(axis=1))
        q[idx] = pred
        got.update(zip(flat[idx].tolist(), pred.tolist(), strict=True))
    assert got == {4: 4, 18: 2, 26: 10, 40: 8, 22: 6}
    assert flat[stages[2][1]].tolist() == [22]


@pytest.mark.parametrize("model", [1, 2])
def test_damaged_values_stay_in_range(model):
    t = random_tree(33, 47, True, True, 2)
    n = int(tree_mask(t).sum())
    q = np.random.default_rng(0).integers(0, 16, n)
    words = encode_tree_values(t, q, 16, model)
    rng = np.random.default_rng(1)
    for _ in range(20):
        bad = words.copy()
        bad[rng.integers(bad.size)] ^= np.uint32(1) << np.uint32(rng.integers(32))
        try:
            out = decode_tree_values(bad, t, 16, model)
        except (ValueError, RuntimeError, AssertionError):
            continue
        assert out.shape == (n,) and out.min() >= 0 and out.max() < 16


def test_smooth_image_costs_less_than_noise():
    f = smooth_image(64, 96)
    t = random_tree(64, 96, True, True, 0, p_deep=0.6)
    m = tree_mask(t)
    q_smooth = np.rint(f[m] / 255 * 15).astype(np.int64)
    q_noise = np.random.default_rng(0).integers(0, 16, q_smooth.size)
    assert encode_tree_values(t, q_smooth, 16).size < encode_tree_values(t, q_noise, 16).size


@pytest.mark.parametrize("levels", [8, 32])
@pytest.mark.parametrize("model", [1, 2])
def test_code_lengths_add_up_to_the_coded_size(levels, model):
    """The analytic Laplace code lengths (float64, written out in laplace_bits) against
    what constriction's fixed-point coder really spends."""
    from inpcodec.bitstreams.tree_values import code_lengths

    t = random_tree(96, 128, True, True, 2)
    mask = tree_mask(t)
    q = np.rint(smooth_image(96, 128)[mask] * (levels - 1) / 255).astype(np.int64)
    q[::7] = 0  # values in the edge bins (model 2 gives them the tails)
    bits = code_lengths(t, q, levels, model)
    assert bits.shape == q.shape and (bits > 0).all()
    coded = 32 * encode_tree_values(t, q, levels, model).size  # whole words: 32 bits more
    assert coded - 40 <= bits.sum() <= coded + 8


def test_model_2_hand_computed_means():
    """5 x 9, root split in the quadtree.  Model 2 centres each value's Laplace on the
    unrounded prediction: the root corners on the middle level (L - 1) / 2, the edge
    midpoints on the mean of the corners they lie between, the centre on the median of
    the four midpoints (the mean of the middle two)."""
    from inpcodec.bitstreams.tree_values import residual_model

    t = Tree(5, 9, quad=True, splits=[np.array([0])])
    mask = tree_mask(t)
    flat = np.flatnonzero(mask).tolist()
    val = {0: 0, 8: 9, 36: 4, 44: 12, 4: 3, 40: 8, 18: 1, 26: 15, 22: 5}
    q = np.array([val[f] for f in flat], np.int64)
    means, scales = residual_model(t, q, 16, model=2)
    got = dict(zip(flat, means.tolist(), strict=True))
    assert got == {0: 7.5, 8: 7.5, 36: 7.5, 44: 7.5,  # root corners: (16 - 1) / 2
                   4: 4.5, 40: 8.0, 18: 2.0, 26: 10.5,  # midpoints: (0+9)/2 (4+12)/2 ...
                   22: 5.5}  # centre: midpoints 3, 8, 1, 15 -> median (3 + 8) / 2
    assert (scales >= 0.5).all()


def test_model_2_spends_fewer_bits_on_smooth_values():
    """Its reason to exist: on values that follow the predictions (a smooth image), with
    values at the ends of the range, model 2 codes fewer bits than model 1."""
    t = random_tree(96, 128, True, True, 2, p_deep=0.6)
    mask = tree_mask(t)
    f = smooth_image(96, 128)
    q = np.clip(np.rint(f[mask] * 15 / 255 * 1.3 - 2), 0, 15).astype(np.int64)
    assert (q == 0).any() and (q == 15).any()
    assert encode_tree_values(t, q, 16, 2).size < encode_tree_values(t, q, 16, 1).size


def test_plans_are_kept_per_tree_not_per_object():
    # the encoder codes one tree many times; the plan is kept by the tree's content, so
    # an equal tree made anew gets it, and a tree that differs by one split does not
    from inpcodec.bitstreams import tree_values as TV
    from inpcodec.bitstreams.tree_coder import uniform_tree

    t = uniform_tree(33, 47, 3, quad=True, centres=True)
    first = TV._kept_plan(t)
    again = TV._kept_plan(Tree(t.height, t.width, t.quad, t.centres,
                               [s.copy() for s in t.splits]))
    assert again is first and first[0] == int(tree_mask(t).sum())
    assert not first[1][1][1].flags.writeable  # handed out again: nobody may change it
    pruned = Tree(t.height, t.width, t.quad, t.centres, [s.copy() for s in t.splits])
    d = max(i for i, s in enumerate(pruned.splits) if s.size > 1)  # the deepest splits
    pruned.splits[d] = pruned.splits[d][:-1]
    other = TV._kept_plan(pruned)
    mask, fresh = TV._make_plan(pruned)
    assert other is not first and other[0] == int(mask.sum()) != first[0]
    for a, b in zip(other[1], fresh, strict=True):
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
        assert (a[2] is None) == (b[2] is None)
        if a[2] is not None:
            assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])
