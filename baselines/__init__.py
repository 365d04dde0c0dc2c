"""Classical mask encoders: the yardsticks for the learned masks.

Each takes a grey image and a target density and returns a
:class:`~inpcodec.codec.encoders.MaskResult` (the binary mask plus what it cost:
inpaintings and wall time), and registers itself as a mask encoder of the codec.
"""

from .belhachmi import belhachmi_density, belhachmi_mask, dither_to_count, floyd_steinberg
from .random_mask import random_mask
from .sparsification import nonlocal_pixel_exchange, probabilistic_sparsification
from .tree_encoders import RDO_GROWTH  # noqa: F401  (the import registers the tree encoders)

__all__ = [
    "belhachmi_density",
    "belhachmi_mask",
    "dither_to_count",
    "floyd_steinberg",
    "nonlocal_pixel_exchange",
    "probabilistic_sparsification",
    "random_mask",
]
