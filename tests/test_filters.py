"""codec.filters against scipy.ndimage, the reference the codec's filters replace: equal
to the last bit, so that files made with either are the same."""

import numpy as np
import pytest
from scipy import ndimage

from inpcodec.codec.filters import chessboard_distance, gaussian_blur, laplacian, uniform_mean

SHAPES = [(1, 1), (1, 7), (6, 1), (2, 3), (17, 23), (64, 40)]


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape) * 255.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.01, 0.2, 0.9])
def test_chessboard_distance_equals_scipy_capped(shape, density):
    rng = np.random.default_rng(1)
    mask = rng.random(shape) < density
    mask.flat[rng.integers(mask.size)] = True  # at least one point
    ref = ndimage.distance_transform_cdt(~mask, metric="chessboard")
    for cap in (1, 3, 255):
        np.testing.assert_array_equal(chessboard_distance(mask, cap), np.minimum(ref, cap))
    assert chessboard_distance(mask).dtype == np.uint8


def test_chessboard_distance_by_hand_and_empty_mask():
    mask = np.zeros((5, 7), bool)
    mask[2, 3] = True
    y, x = np.mgrid[0:5, 0:7]
    np.testing.assert_array_equal(chessboard_distance(mask),
                                  np.maximum(abs(y - 2), abs(x - 3)))
    np.testing.assert_array_equal(chessboard_distance(np.zeros((3, 4), bool), 6),
                                  np.full((3, 4), 6))
    # a far point: the distance saturates instead of wrapping round in a byte
    line = np.zeros((1, 600), bool)
    line[0, 0] = True
    assert chessboard_distance(line)[0, -1] == 255


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 9, 40])
def test_uniform_mean_equals_scipy(shape, size):
    a = _image(shape)
    np.testing.assert_array_equal(uniform_mean(a, size),
                               ndimage.uniform_filter(a, size=size, mode="reflect"))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5, 9.0])
def test_gaussian_blur_equals_scipy(shape, sigma):
    a = _image(shape, 2)
    np.testing.assert_array_equal(gaussian_blur(a, sigma),
                               ndimage.gaussian_filter(a, sigma, mode="reflect"))


@pytest.mark.parametrize("shape", SHAPES)
def test_laplacian_equals_scipy_and_a_hand_case(shape):
    a = _image(shape, 3)
    np.testing.assert_array_equal(laplacian(a), ndimage.laplace(a, mode="reflect"))
    # x^2 along the columns: second difference 2 inside, 1 at each reflecting side
    q = np.tile(np.arange(5.0) ** 2, (3, 1))
    np.testing.assert_array_equal(laplacian(q)[1], [1.0, 2.0, 2.0, 2.0, -7.0])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        uniform_mean(np.ones((3, 3)), 0)
    with pytest.raises(ValueError):
        gaussian_blur(np.ones((3, 3)), 0.0)
    with pytest.raises(ValueError):
        chessboard_distance(np.ones((3, 3), bool), 256)
