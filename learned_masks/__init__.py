"""Learned inpainting masks (Alt, Peter and Weickert 2021).

A mask network (U-net) turns an image and a target density into a non-binary mask in one
forward pass; it is trained jointly with a surrogate inpainting U-net (:mod:`.training`).
At inference the mask is binarised by a seeded weighted coin flip (optionally best of N,
judged by the real decoder) or by dithering (:func:`learned_mask`).
"""

from .inference import (
    DEFAULT_WEIGHTS,
    binarise,
    learned_mask,
    load_mask_network,
    mask_probabilities,
)

__all__ = ["DEFAULT_WEIGHTS", "binarise", "learned_mask", "load_mask_network",
           "mask_probabilities"]
