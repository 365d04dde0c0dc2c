"""Classical mask encoders: the yardsticks for the learned masks.

Each takes a grey image and a target density and returns a :class:`MaskResult` (the
binary mask plus what it cost: inpaintings and wall time).
"""

from ._common import MaskResult
from .belhachmi import belhachmi_mask, dither_to_count, floyd_steinberg

__all__ = ["MaskResult", "belhachmi_mask", "dither_to_count", "floyd_steinberg"]
