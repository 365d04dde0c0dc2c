"""Belhachmi masks and Floyd-Steinberg dithering."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from baselines import belhachmi_mask, floyd_steinberg


@pytest.mark.parametrize("value, period", [(0.5, 2), (0.25, 4), (0.125, 8)])
def test_floyd_steinberg_constant_gives_regular_pattern(value, period):
    # hand-derived: from zero error, each row of a constant 1/period density fires every
    # period-th pixel (error reaches 0.5 after period/2 steps... first at index period/2 - 1
    # for the raster scan's first row); the total count equals the mass exactly
    out = floyd_steinberg(np.full((1, 64), value))
    ones = np.flatnonzero(out[0])
    assert np.all(np.diff(ones) == period)
    assert ones.size == 64 // period
    big = floyd_steinberg(np.full((64, 64), value), serpentine=True)
    assert abs(int(big.sum()) - 64 * 64 * value) <= 64 * 0.02 * 64 * value


def test_floyd_steinberg_checkerboard_at_half():
    out = floyd_steinberg(np.full((6, 6), 0.5))
    # 0.5 thresholds to 1 at the first pixel, error -0.5 pushes its right neighbour to 0 ...
    expect = (np.indices((6, 6)).sum(axis=0) % 2 == 0)
    np.testing.assert_array_equal(out, expect)


def test_floyd_steinberg_extremes_and_errors():
    assert not floyd_steinberg(np.zeros((5, 7))).any()
    assert floyd_steinberg(np.ones((5, 7))).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        floyd_steinberg(np.full((3, 3), 1.5))


def natural_like(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.standard_normal((h, w)), 4)
    img = (img - img.min()) / np.ptp(img) * 200 + 20
    img[h // 3:, w // 2:] += 30  # an edge
    return img


@pytest.mark.parametrize("density", [0.01, 0.03, 0.05, 0.10])
@pytest.mark.parametrize("serpentine", [False, True])
def test_belhachmi_density_is_exact(density, serpentine):
    f = natural_like(96, 128)
    res = belhachmi_mask(f, density, serpentine=serpentine)
    assert res.mask.dtype == bool and res.mask.shape == f.shape
    assert res.mask.sum() == round(density * f.size)
    assert res.inpaintings == 0 and res.seconds >= 0
    # dithering alone already lands within 0.5 % of the target (the fix-up is a few points)
    assert abs(res.info["dithered_count"] - res.info["target_count"]) <= max(
        2, 0.005 * res.info["target_count"])


def test_belhachmi_follows_the_laplacian():
    f = natural_like(128, 128)
    m = belhachmi_mask(f, 0.05).mask
    # more points on the edge region than in a flat one of the same size
    edge = np.zeros_like(m)
    edge[128 // 3 - 3:128 // 3 + 3, 64:] = True
    flat = np.zeros_like(m)
    flat[5:11, 5:69] = True
    assert m[edge].mean() > 2 * m[flat].mean()


def test_belhachmi_constant_image_is_uniform():
    m = belhachmi_mask(np.full((64, 64), 7.0), 0.0625).mask
    assert m.sum() == 256
    # evenly spread: every 8x8 block holds about 4 points
    blocks = m.reshape(8, 8, 8, 8).sum(axis=(1, 3))
    assert blocks.min() >= 2 and blocks.max() <= 6


def test_belhachmi_bad_input():
    with pytest.raises(ValueError, match="density"):
        belhachmi_mask(np.zeros((8, 8)), 0.0)
    with pytest.raises(ValueError, match="density"):
        belhachmi_mask(np.zeros((8, 8)), 1.5)
    with pytest.raises(ValueError, match="2-D"):
        belhachmi_mask(np.zeros((8, 8, 3)), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        belhachmi_mask(np.full((8, 8), np.nan), 0.1)
