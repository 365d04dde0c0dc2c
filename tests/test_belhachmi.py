"""Belhachmi masks and Floyd-Steinberg dithering."""

import numpy as np
import pytest
from _images import natural_like

from inpcodec.baselines import belhachmi_mask, floyd_steinberg


def test_floyd_steinberg_constant_gives_regular_patterns():
    # 1/2: a checkerboard from the first pixel on
    half = floyd_steinberg(np.full((6, 6), 0.5))
    np.testing.assert_array_equal(half, np.indices((6, 6)).sum(axis=0) % 2 == 0)
    # 1/4: a point on every second pixel of every second row (the classic
    # Floyd-Steinberg lattice); error piling up at the right border later shifts its
    # phase along a diagonal, so look at the top-left block
    quarter = floyd_steinberg(np.full((32, 32), 0.25))[:16, :16]
    lattice = np.zeros_like(quarter)
    lattice[1::2, 1::2] = True
    np.testing.assert_array_equal(quarter, lattice)
    # one row: 9/16 of every error leaves through the missing row below, so a density
    # below 1/2 * (1 - 7/16) = 0.28 never reaches the threshold
    assert not floyd_steinberg(np.full((1, 64), 0.25)).any()


def test_floyd_steinberg_extremes_and_errors():
    assert not floyd_steinberg(np.zeros((5, 7))).any()
    assert floyd_steinberg(np.ones((5, 7))).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        floyd_steinberg(np.full((3, 3), 1.5))


@pytest.mark.parametrize("density", [0.01, 0.03, 0.05, 0.10])
@pytest.mark.parametrize("serpentine", [False, True])
def test_belhachmi_density_is_exact(density, serpentine):
    f = natural_like(96, 128)
    res = belhachmi_mask(f, density, serpentine=serpentine)
    assert res.mask.dtype == bool and res.mask.shape == f.shape
    assert res.mask.sum() == round(density * f.size)
    assert res.inpaintings == 0 and res.seconds >= 0
    # the dithering itself lands close to the target: the rank fix-up adds or removes
    # only a few points
    assert abs(res.info["dithered_count"] - res.info["target_count"]) <= max(
        5, 0.01 * res.info["target_count"])


def test_belhachmi_follows_the_laplacian():
    f = natural_like(128, 128)
    m = belhachmi_mask(f, 0.05, sigma=1.0).mask
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


def test_belhachmi_auto_sigma_tracks_point_spacing():
    from inpcodec.baselines.belhachmi import auto_sigma

    assert auto_sigma(0.01) == pytest.approx(3.5)
    assert auto_sigma(0.04) == pytest.approx(1.75)
    f = natural_like(64, 64)
    a = belhachmi_mask(f, 0.02).mask
    b = belhachmi_mask(f, 0.02, sigma=auto_sigma(0.02)).mask
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="auto"):
        belhachmi_mask(f, 0.02, sigma="wide")


def test_belhachmi_bad_input():
    with pytest.raises(ValueError, match="density"):
        belhachmi_mask(np.zeros((8, 8)), 0.0)
    with pytest.raises(ValueError, match="density"):
        belhachmi_mask(np.zeros((8, 8)), 1.5)
    with pytest.raises(ValueError, match="2-D"):
        belhachmi_mask(np.zeros((8, 8, 3)), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        belhachmi_mask(np.full((8, 8), np.nan), 0.1)
