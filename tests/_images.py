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


def grey_image(h=24, w=32):
    """Integer recipe (exact on every machine): a gradient, a bright disc, an edge.  The
    committed format samples and the conformance set were made from it: do not change."""
    i, j = np.mgrid[:h, :w]
    img = 40 + 4 * i + 3 * j
    img[(i - 12) ** 2 + (j - 10) ** 2 < 36] = 230
    img[:, 22:] -= 30
    return np.clip(img, 0, 255).astype(np.uint8)


def colour_image(h=24, w=32):
    """R: the grey recipe; G: it turned by 180 degrees; B: vertical bars on a ramp (the
    samples' colour recipe: do not change)."""
    g = grey_image(h, w)
    i, j = np.mgrid[:h, :w]
    b = 60 + 5 * i + 80 * ((j // 8) % 2)
    return np.stack([g, g[::-1, ::-1], np.clip(b, 0, 255).astype(np.uint8)], axis=-1)
