"""Tree-structured masks: geometry, split-flag coder round trips, damaged streams."""

import time

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from inpcodec.baselines.tree import error_driven_tree, map_driven_tree
from inpcodec.bitstreams.tree_coder import (
    Tree,
    children,
    decode_tree,
    encode_tree,
    leaves,
    merge_bottom_splits,
    n_children,
    schedule,
    tree_mask,
    uniform_tree,
)


def random_tree(h, w, quad, centres, seed, p_shallow=0.9, p_deep=0.45):
    rng = np.random.default_rng(seed)
    sched = schedule(h, w, quad)
    splits, nodes = [], np.zeros(1, np.int64)
    for d in range(len(sched) - 1):
        s = np.sort(nodes[rng.random(nodes.size) < (p_shallow if d < 5 else p_deep)])
        splits.append(s)
        nc = n_children(sched[d], sched[d + 1])
        nodes = np.sort(np.concatenate([children(s, sched[d], sched[d + 1], k)
                                        for k in range(nc)]))
        if s.size == 0:
            break
    return Tree(h, w, quad, centres, splits)


def smooth_image(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.standard_normal((h, w)), 3)
    return (img - img.min()) / np.ptp(img) * 220 + 15


def test_schedule_hand_computed():
    # 5 x 9: lengths 4 (rows) and 8 (cols); x is cut while its nominal length is the
    # larger (ties cut x), a direction only while its nominal length is >= 2
    assert schedule(5, 9) == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert schedule(5, 9, quad=True) == [(0, 0), (1, 1), (2, 2), (2, 3)]
    assert schedule(1, 1) == [(0, 0)]
    assert schedule(1, 5) == [(0, 0), (0, 1), (0, 2)]  # cells 4, 2, 1 pixels wide


def test_mask_hand_computed():
    # split the root (cols 0..4 | 4..8), then the left half (cols 0..2 | 2..4)
    t = Tree(5, 9, splits=[np.array([0]), np.array([0])])
    expect = np.zeros((5, 9), bool)
    for y in (0, 4):
        for x in (0, 2, 4, 8):
            expect[y, x] = True
    assert np.array_equal(tree_mask(t), expect)  # shared corners count once: 8 points
    t.centres = True
    for y, x in ((2, 6), (2, 1), (2, 3)):
        expect[y, x] = True
    assert np.array_equal(tree_mask(t), expect)
    assert tree_mask(Tree(1, 1)).sum() == 1
    assert np.array_equal(tree_mask(uniform_tree(5, 9, 2)),
                          np.isin(np.arange(5), (0, 4))[:, None]
                          & (np.arange(9) % 2 == 0)[None, :])


def test_merge_bottom_splits_hand_computed():
    # the tree of test_mask_hand_computed: the left half's split is the only bottom one
    t = Tree(5, 9, splits=[np.array([0]), np.array([0])])
    assert merge_bottom_splits(t) == Tree(5, 9, splits=[np.array([0])])
    assert merge_bottom_splits(t, 2) == Tree(5, 9)
    assert merge_bottom_splits(t, 0) == t
    # a uniform tree loses its last depth per merge, down to the root alone
    for quad in (False, True):
        u = uniform_tree(33, 47, 5, quad=quad, centres=True)
        assert merge_bottom_splits(u, 2) == uniform_tree(33, 47, 3, quad=quad, centres=True)
        assert merge_bottom_splits(u, 9).n_splits() == 0
    with pytest.raises(ValueError):
        merge_bottom_splits(t, -1)


@pytest.mark.parametrize("quad", [False, True])
def test_merge_bottom_splits_random_trees(quad):
    for seed in range(6):
        t = random_tree(40, 57, quad, True, seed)
        m = merge_bottom_splits(t)
        list(leaves(m))  # a valid tree
        kept = {d: set(s.tolist()) for d, s in enumerate(t.splits)}
        for d, s in enumerate(m.splits):  # its splits are the tree's ...
            assert set(s.tolist()) <= kept[d]
        # ... less exactly those whose children were all leaves
        parents_of_split = set()
        sched = schedule(40, 57, quad)
        for d in range(1, len(t.splits)):
            for key in t.splits[d].tolist():
                for p in t.splits[d - 1].tolist():
                    kids = [children(np.array([p]), sched[d - 1], sched[d], k)[0]
                            for k in range(n_children(sched[d - 1], sched[d]))]
                    if key in kids:
                        parents_of_split.add((d - 1, p))
        expect = {(d, k) for d, s in enumerate(t.splits) for k in s.tolist()
                  if (d, k) in parents_of_split}
        got = {(d, k) for d, s in enumerate(m.splits) for k in s.tolist()}
        assert got == expect
        # every leaf corner of the merged tree is a point of the tree's mask
        corners = tree_mask(Tree(40, 57, quad, False, m.splits))
        assert not (corners & ~tree_mask(t)).any()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (3, 8), (17, 33),
                                   (64, 64), (129, 65)])
@pytest.mark.parametrize("quad", [False, True])
def test_round_trip_random(shape, quad):
    for seed in range(4):
        t = random_tree(*shape, quad, seed % 2 == 0, seed)
        words = encode_tree(t)
        assert words.dtype == np.uint32
        back = decode_tree(words, *shape)
        assert back == t
        assert np.array_equal(tree_mask(back), tree_mask(t))


def test_round_trip_encoders():
    f = smooth_image(96, 128)
    for r in (error_driven_tree(f, 300), map_driven_tree(f, 0.5),
              error_driven_tree(f, 300, quad=True, centres=True)):
        back = decode_tree(encode_tree(r.tree), *f.shape)
        assert back == r.tree
        assert np.array_equal(tree_mask(back), r.mask)


def test_invalid_tree_refused():
    with pytest.raises(ValueError):
        encode_tree(Tree(5, 9, splits=[np.array([0]), np.array([3])]))  # key 3 not a cell
    with pytest.raises(ValueError):
        encode_tree(Tree(5, 9, splits=[np.zeros(0, np.int64), np.array([0])]))  # orphan


def _decode_or_value_error(words, h, w):
    t0 = time.perf_counter()
    try:
        t = decode_tree(words, h, w)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        t = None
    assert time.perf_counter() - t0 < 5.0
    return t


def test_damaged_streams():
    h, w = 129, 65
    t = random_tree(h, w, False, False, 3)
    words = encode_tree(t)
    with pytest.raises(ValueError):
        decode_tree(np.zeros(0, np.uint32), h, w)
    with pytest.raises(ValueError):  # more splits than pixels
        decode_tree(np.array([4 * (h * w + 1)], np.uint32), h, w)
    with pytest.raises(ValueError):  # count announced, no data
        decode_tree(words[:1], h, w)
    with pytest.raises(ValueError):  # count off by one
        decode_tree(np.concatenate([[words[0] + 4], words[1:]]).astype(np.uint32), h, w)
    for cut in range(1, words.size - 1):  # truncated
        back = _decode_or_value_error(words[:cut], h, w)
        assert back != t
    rng = np.random.default_rng(0)
    for _ in range(50):  # flipped bits: ValueError or some valid tree, never a hang
        bad = words.copy()
        k = rng.integers(1, bad.size)
        bad[k] ^= np.uint32(1) << np.uint32(rng.integers(32))
        back = _decode_or_value_error(bad, h, w)
        if back is not None:
            tree_mask(back)
    for _ in range(20):  # garbage with a forged, large count
        bad = rng.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
        bad[0] = 4 * int(rng.integers(0, h * w))
        _decode_or_value_error(bad, h, w)


def test_forged_count_on_a_large_image_is_bounded():
    h, w = 1024, 1024
    bad = np.random.default_rng(1).integers(0, 2**32, 256, dtype=np.uint64).astype(np.uint32)
    bad[0] = 4 * h * w
    _decode_or_value_error(bad, h, w)
