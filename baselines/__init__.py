"""Classical mask encoders: the yardsticks for the learned masks.

Each takes a grey image and a target density and returns a :class:`MaskResult` (the
binary mask plus what it cost: inpaintings and wall time).
"""

from ._common import MaskResult
from .belhachmi import belhachmi_density, belhachmi_mask, dither_to_count, floyd_steinberg
from .sparsification import nonlocal_pixel_exchange, probabilistic_sparsification
from .tonal import TonalResult, tonal_optimisation

__all__ = [
    "MaskResult",
    "TonalResult",
    "belhachmi_density",
    "belhachmi_mask",
    "dither_to_count",
    "floyd_steinberg",
    "nonlocal_pixel_exchange",
    "probabilistic_sparsification",
    "tonal_optimisation",
]
