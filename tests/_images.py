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
