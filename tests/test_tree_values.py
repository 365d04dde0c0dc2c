"""Values of tree masks coded down the tree: round trips, integer predictions, damage."""

import numpy as np
import pytest
from test_tree_coder import random_tree, smooth_image

from inpcodec.bitstreams.tree_coder import Tree, tree_mask
from inpcodec.bitstreams.tree_values import decode_tree_values, encode_tree_values, plan


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 3), (33, 47), (64, 96)])
@pytest.mark.parametrize("quad", [False, True])
def test_round_trip(shape, quad):
    rng = np.random.default_rng(0)
    for seed, levels in enumerate((2, 8, 64)):
        t = random_tree(*shape, quad, seed % 2 == 0, seed)
        n = int(tree_mask(t).sum())
        q = rng.integers(0, levels, n)
        words = encode_tree_values(t, q, levels)
        assert np.array_equal(decode_tree_values(words, t, levels), q)


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


def test_damaged_values_stay_in_range():
    t = random_tree(33, 47, True, True, 2)
    n = int(tree_mask(t).sum())
    q = np.random.default_rng(0).integers(0, 16, n)
    words = encode_tree_values(t, q, 16)
    rng = np.random.default_rng(1)
    for _ in range(20):
        bad = words.copy()
        bad[rng.integers(bad.size)] ^= np.uint32(1) << np.uint32(rng.integers(32))
        try:
            out = decode_tree_values(bad, t, 16)
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
def test_code_lengths_add_up_to_the_coded_size(levels):
    from inpcodec.bitstreams.tree_values import code_lengths

    t = random_tree(96, 128, True, True, 2)
    mask = tree_mask(t)
    q = np.rint(smooth_image(96, 128)[mask] * (levels - 1) / 255).astype(np.int64)
    bits = code_lengths(t, q, levels)
    assert bits.shape == q.shape and (bits > 0).all()
    coded = 32 * encode_tree_values(t, q, levels).size  # whole words: up to 32 bits more
    assert coded - 40 <= bits.sum() <= coded + 8
