"""GAN inpainter with multi-head temperature masked self-attention (MHTMA).

The design of Zhou, Gong and Zeng, "Learning to Scale Temperature in Masked Self-Attention
for Image Inpainting": a coarse network and a refinement network of gated convolutions,
whose attention branch uses MHTMA (learned per-head temperatures), trained against a
spectrally normalised global-local discriminator with the hinge loss.  Two uses:

* decoder post-processor: the homogeneous-diffusion reconstruction and the mask of stored
  pixels in, a refined image out, stored pixels unchanged (:func:`refine`;
  ``inpcodec.decode(data, postprocess="gan")``, ``inpcodec decode --postprocess gan``);
* free-form hole inpainting (:func:`inpaint_holes`, ``inpcodec inpaint``).

Training: :mod:`.training` (``inpcodec train-gan``).  Importing this package registers
the ``gan`` post-processor with the decoder but imports no torch: the names below load
:mod:`.inference` (and torch) when first used.
"""

from inpcodec.codec.decoder import register_postprocessor
from inpcodec.codec.limits import require_learned

__all__ = ["DEFAULT_WEIGHTS", "inpaint_holes", "load_generator", "refine"]


def __getattr__(name):
    if name in __all__:  # deferred: these import torch
        require_learned("the GAN inpainter")
        from . import inference  # noqa: PLC0415

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load_postprocessor(mask_coder: int, weights=None, filtered: bool = False):
    """The decoder's ``refine(image, mask)`` for files of ``mask_coder`` (``filtered``:
    with a loop filter): with the given ``weights``, else with the post-processor trained
    on such decodes; at the strength their calibration gives for the file's mask density
    (their whole correction where they have none)."""
    require_learned("the GAN post-processor")
    from .inference import (  # noqa: PLC0415 (imports torch)
        load_generator,
        postprocess_weights,
        refine,
        strength,
    )

    net = load_generator(weights, task="postprocess", mask_coder=mask_coder,
                         filtered=filtered)
    file = weights if weights is not None else postprocess_weights(mask_coder, filtered)
    return lambda image, mask: refine(
        image, mask, network=net, strength=strength(file, float(mask.mean()), image.ndim == 3))


register_postprocessor("gan", _load_postprocessor)
