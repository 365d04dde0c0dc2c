"""Tonal optimisation on overlapping tiles (codec.tonal.tiled_tonal_optimisation)."""

import numpy as np
import pytest
from _images import natural_like

from inpcodec.baselines import belhachmi_mask
from inpcodec.codec import inpaint
from inpcodec.codec.tonal import (
    tile_bounds,
    tile_overlap,
    tiled_tonal_optimisation,
    tonal_optimisation,
)


def _mse(f, mask, values_at_mask):
    v = np.array(f, np.float64)
    v[mask] = values_at_mask
    u = inpaint(v, mask, tol=1e-10)
    return float(np.mean((u - f) ** 2))


def test_tile_bounds_cut_evenly():
    np.testing.assert_array_equal(tile_bounds(1000, 512), [0, 500, 1000])
    np.testing.assert_array_equal(tile_bounds(512, 512), [0, 512])
    np.testing.assert_array_equal(tile_bounds(1, 512), [0, 1])
    b = tile_bounds(1265, 512)
    assert b[0] == 0 and b[-1] == 1265 and np.diff(b).max() <= 512 and len(b) == 4


def test_tile_overlap_by_hand():
    # two cores of 500 each way, each window 564 wide (64 inward, the image's side out)
    assert tile_overlap(1000, 1000, tile=512, margin=64) == pytest.approx((1128 / 1000) ** 2)
    assert tile_overlap(512, 768, tile=768, margin=64) == 1.0  # one tile


def test_one_tile_is_the_global_optimisation():
    f = natural_like(40, 52, seed=1)
    mask = belhachmi_mask(f, 0.06).mask
    levels = np.linspace(0, 255, 24)
    glob = tonal_optimisation(f, mask, levels=levels)
    tiled = tiled_tonal_optimisation(f, mask, levels=levels, tile=64)
    np.testing.assert_array_equal(tiled.values[:, 0], glob.values[mask])
    np.testing.assert_array_equal(tiled.continuous[:, 0], glob.continuous[mask])
    assert tiled.inpaintings == glob.inpaintings and tiled.stop_norm.shape == (1, 1)


def test_windows_as_large_as_the_image_give_the_global_values_at_every_point():
    # every window is the whole image, so each tile's run is the global one: a check of
    # which core point each window's value goes to
    f = natural_like(37, 45, seed=2)
    mask = belhachmi_mask(f, 0.08).mask
    glob = tonal_optimisation(f, mask, tol=1e-6)
    tiled = tiled_tonal_optimisation(f, mask, tile=10, margin=100, tol=1e-6)
    np.testing.assert_array_equal(tiled.values[:, 0], glob.values[mask])
    assert tiled.stop_norm.shape == (4 * 5, 1)
    assert tiled.inpaintings == pytest.approx(20 * glob.inpaintings)


def test_tiles_come_close_to_the_global_optimum():
    f = natural_like(90, 110, seed=3)
    mask = belhachmi_mask(f, 0.05).mask
    glob = tonal_optimisation(f, mask, tol=1e-7)
    before = _mse(f, mask, f[mask])
    for tile, margin in ((32, 16), (40, 12)):
        tiled = tiled_tonal_optimisation(f, mask, tile=tile, margin=margin, tol=1e-7)
        err = _mse(f, mask, tiled.values[:, 0])
        # most of the gain over the original values, and within 2 % of the optimum
        assert err < glob.mse * 1.02 and before - err > 0.9 * (before - glob.mse)
        # a window's solve counts by its share of the image
        assert 0 < tiled.inpaintings < 4 * glob.inpaintings


def test_colour_and_warm_start_per_tile():
    f = np.dstack([natural_like(50, 60, seed=s) for s in (4, 5)])
    mask = belhachmi_mask(f[..., 0], 0.07).mask
    levels = np.linspace(0, 255, 32)
    first = tiled_tonal_optimisation(f, mask, levels=levels, tile=24, margin=8)
    assert first.values.shape == (mask.sum(), 2) and np.isin(first.values, levels).all()
    start = f.copy()
    start[mask] = first.continuous
    again = tiled_tonal_optimisation(f, mask, levels=levels, tile=24, margin=8, start=start,
                                     stop_norm=first.stop_norm)
    # from the previous optimum at its stopping accuracy: little or nothing left to do
    assert again.iterations < first.iterations
    assert _mse(f, mask, again.values) <= _mse(f, mask, first.values) * 1.01


def test_a_channel_reuses_its_twins_column_sums():
    # Cb and Cr share their mask: the second takes the first's B^T 1 and saves its solve
    cb, cr = natural_like(50, 60, seed=6), natural_like(50, 60, seed=7)
    mask = belhachmi_mask(cb, 0.07).mask
    levels = np.linspace(0, 255, 32)
    first = tiled_tonal_optimisation(cb, mask, levels=levels, tile=24, margin=8)
    alone = tiled_tonal_optimisation(cr, mask, levels=levels, tile=24, margin=8)
    twin = tiled_tonal_optimisation(cr, mask, levels=levels, tile=24, margin=8,
                                    areas=first.areas)
    np.testing.assert_array_equal(twin.values, alone.values)
    np.testing.assert_array_equal(twin.continuous, alone.continuous)
    # one solve fewer per window (a window's solve counts by its share of the image)
    windows = sum(a is not None for a in first.areas)
    assert windows > 1
    assert twin.inpaintings < alone.inpaintings - 0.9 * windows * (24 * 24) / cb.size
    for a, b in zip(first.areas, alone.areas, strict=True):
        np.testing.assert_array_equal(a, b)


def test_tiles_reject_bad_arguments():
    f = natural_like(20, 20)
    mask = belhachmi_mask(f, 0.1).mask
    with pytest.raises(ValueError, match="does not match"):
        tiled_tonal_optimisation(f, mask[:10])
    with pytest.raises(ValueError, match="tile must be positive"):
        tiled_tonal_optimisation(f, mask, tile=0)
