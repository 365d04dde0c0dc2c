"""Test images made in code (the tests never need a data folder)."""

import numpy as np
from scipy.ndimage import gaussian_filter


def natural_like(h, w, seed=0):
    """Smooth random texture in 20..250 with a straight edge: a stand-in for a photo."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.standard_normal((h, w)), 3)
    img = (img - img.min()) / np.ptp(img) * 180 + 30
    img[h // 3:, w // 2:] += 40
    return img


def make_image(h=48, w=64, colour=False, seed=0):
    """A smooth random uint8 image with a little noise, grey (h, w) or RGB (h, w, 3)."""
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if colour else (h, w)
    img = gaussian_filter(rng.standard_normal(shape), (3, 3, 0) if colour else 3)
    img = (img - img.min()) / np.ptp(img) * 220 + 15
    return np.clip(img + rng.normal(0, 3, shape), 0, 255).astype(np.uint8)


def disc_image(h=48, w=64):
    """RGB: a saturated disc and a bar on a colour ramp, chroma edges where the luma's are
    (the decoded luma guides chroma well here: format version 4)."""
    i, j = np.mgrid[:h, :w]
    img = np.stack([60 + i, 70 + j // 2, 80 + (i + j) // 3], axis=-1)
    img[(i - 20) ** 2 + (j - 24) ** 2 < 150] = (220, 40, 50)
    img[30:40, 40:60] = (30, 90, 200)
    return np.clip(img, 0, 255).astype(np.uint8)
