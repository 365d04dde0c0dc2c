"""The colour transforms and the luma-guided chroma reconstruction against brute force."""

import numpy as np
import pytest

from inpcodec.codec.colour import box_mean, guide_chroma, rgb_to_ycbcr, ycbcr_to_rgb


def brute_box_mean(x, r):
    """Window means by explicit loops over a half-sample-reflected copy (np.pad
    'symmetric', which reflects again where the window outruns the image)."""
    p = np.pad(x, r, mode="symmetric")
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = p[i:i + 2 * r + 1, j:j + 2 * r + 1].mean()
    return out


def brute_guided(y, c, r, eps):
    """He et al.'s guided filter, one window at a time: the least-squares line
    c ~ a y + b with ridge eps in each window, then each pixel's mean of the (a, b) of
    the windows that hold it."""
    h, w = y.shape
    py, pc = np.pad(y, r, mode="symmetric"), np.pad(c, r, mode="symmetric")
    a, b = np.empty_like(y), np.empty_like(y)
    for i in range(h):
        for j in range(w):
            wy = py[i:i + 2 * r + 1, j:j + 2 * r + 1].ravel()
            wc = pc[i:i + 2 * r + 1, j:j + 2 * r + 1].ravel()
            cov = np.mean((wy - wy.mean()) * (wc - wc.mean()))
            a[i, j] = cov / (np.var(wy) + eps)
            b[i, j] = wc.mean() - a[i, j] * wy.mean()
    return brute_box_mean(a, r) * y + brute_box_mean(b, r)


@pytest.mark.parametrize("shape, r", [((7, 9), 1), ((6, 5), 3), ((3, 4), 5), ((1, 1), 2)])
def test_box_mean_is_the_window_mean_with_reflection(shape, r):
    x = np.random.default_rng(1).uniform(0, 255, shape)
    assert np.allclose(box_mean(x, r), brute_box_mean(x, r), rtol=0, atol=1e-9)
    stack = np.stack([x, 2 * x])  # planes filtered separately
    assert np.allclose(box_mean(stack, r)[1], 2 * brute_box_mean(x, r), atol=1e-9)


def test_box_sums_do_not_depend_on_the_column_chunks():
    # the decoder's guided chroma must be the same bits whatever the thread count, which
    # sets the chunks of columns the running sums are split into
    from inpcodec.codec.colour import _column_sums, _window_ends

    rows = np.random.default_rng(3).uniform(0, 255, (37, 700))
    ends = _window_ends(37, 4)
    outs = []
    for chunk in (1, 64, 256, 333, 700, 4096):
        out = np.empty_like(rows)
        _column_sums(rows, 4, *ends, out, chunk)
        outs.append(out)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    col = np.pad(rows[:, 5], 4, mode="symmetric")
    assert np.allclose(outs[0][:, 5], np.convolve(col, np.ones(9), "valid"), atol=1e-9)


@pytest.mark.parametrize("r, eps", [(1, 4.0), (2, 16.0), (4, 100.0)])
def test_guide_chroma_is_the_guided_filter(r, eps):
    rng = np.random.default_rng(2)
    planes = rng.uniform(0, 255, (11, 13, 3))
    planes[:, 6:, 0] += 60  # a luma edge
    out = guide_chroma(planes, r, eps)
    assert np.array_equal(out[:, :, 0], planes[:, :, 0])  # luma untouched
    for c in (1, 2):
        ref = brute_guided(planes[:, :, 0], planes[:, :, c], r, eps)
        assert np.allclose(out[:, :, c], ref, rtol=0, atol=1e-8)


def test_guide_chroma_hand_computed_cases():
    i, j = np.mgrid[:12, :10].astype(float)
    y = 20 + 3 * i + 2 * j
    # constant chroma stays constant (a = 0, b = the constant)
    planes = np.stack([y, np.full_like(y, 90.0), np.full_like(y, 170.0)], axis=-1)
    out = guide_chroma(planes, 2, 9.0)
    assert np.allclose(out[:, :, 1], 90.0) and np.allclose(out[:, :, 2], 170.0)
    # chroma that is a line of the luma comes back as that line, shrunk towards the
    # window mean only by eps: with eps -> 0 exactly the line
    planes[:, :, 1] = 0.5 * y + 7
    assert np.allclose(guide_chroma(planes, 2, 1e-9)[:, :, 1], planes[:, :, 1], atol=1e-6)


def test_colour_transform_round_trip():
    rgb = np.random.default_rng(3).integers(0, 256, (5, 6, 3)).astype(np.uint8)
    assert np.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-6)
