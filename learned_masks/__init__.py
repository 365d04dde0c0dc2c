"""Learned inpainting masks (Alt, Peter and Weickert 2021).

A mask network (U-net) turns an image and a target density into a non-binary mask in one
forward pass; it is trained jointly with a surrogate inpainting U-net (:mod:`.training`).
At inference the mask is binarised by a seeded weighted coin flip (optionally best of N,
judged by the real decoder) or by dithering (:func:`learned_mask`).

Importing this package registers the ``learned`` mask encoder but imports no torch: the
names below load :mod:`.inference` (and torch) when first used.
"""

from . import encoder as _encoder  # noqa: F401  (registers the "learned" encoder)

__all__ = ["DEFAULT_WEIGHTS", "binarise", "learned_mask", "load_mask_network",
           "mask_probabilities"]


def __getattr__(name):
    if name in __all__:  # deferred: these import torch
        from inpcodec.codec.limits import require_learned  # noqa: PLC0415

        require_learned("the learned mask network")
        from . import inference  # noqa: PLC0415

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
