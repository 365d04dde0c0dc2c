"""GAN inpainter with multi-head temperature masked self-attention (MHTMA).

The design of Zhou, Gong and Zeng, "Learning to Scale Temperature in Masked Self-Attention
for Image Inpainting": a coarse network and a refinement network of gated convolutions,
whose attention branch uses MHTMA (learned per-head temperatures), trained against a
spectrally normalised global-local discriminator with the hinge loss.  Two uses:

* decoder post-processor: the homogeneous-diffusion reconstruction and the mask of stored
  pixels in, a refined image out, stored pixels unchanged (:func:`refine`;
  ``codec.decode(data, postprocess="gan")``, ``inpcodec decode --postprocess gan``);
* free-form hole inpainting (:func:`inpaint_holes`, ``inpcodec inpaint``).

Training: :mod:`.training` (``inpcodec train-gan``).  This package imports torch; the codec
imports it only when the post-processor is asked for.
"""

from .inference import DEFAULT_WEIGHTS, inpaint_holes, load_generator, refine

__all__ = ["DEFAULT_WEIGHTS", "inpaint_holes", "load_generator", "refine"]
