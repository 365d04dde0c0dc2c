"""Uniformly random masks: the floor every mask encoder must beat."""

from __future__ import annotations

import time

import numpy as np

from inpcodec.codec.encoders import MaskEncoder, MaskResult, check_image, register, target_count


def random_mask(image, density: float, *, seed: int = 0) -> MaskResult:
    """``round(density * H * W)`` pixels drawn uniformly without replacement (seeded)."""
    t0 = time.perf_counter()
    f = check_image(image)
    rng = np.random.default_rng(seed)
    m = np.zeros(f.size, bool)
    m[rng.choice(f.size, target_count(f.shape, density), replace=False)] = True
    return MaskResult(m.reshape(f.shape), 0, time.perf_counter() - t0,
                      {"method": "random", "seed": seed})


def _make(luma, density, *, levels=None, seed=0, progress=False):
    return random_mask(luma, density, seed=seed)


register(MaskEncoder("random", _make, "uniformly random points (a floor, not a codec)"))
