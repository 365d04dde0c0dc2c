"""inpcodec: image compression with homogeneous diffusion inpainting.

    import inpcodec
    data = inpcodec.encode(image, bpp=0.2)        # bytes of a real .inpc file
    image2 = inpcodec.decode(data)                # uint8, the same pixels on every machine
    u = inpcodec.inpaint(values, mask)            # homogeneous diffusion inpainting

Subpackages: :mod:`inpcodec.codec` (solvers, tonal optimisation, colour, the pipeline,
the GAN post-processor, the benchmark), :mod:`inpcodec.baselines` (classical mask
encoders), :mod:`inpcodec.learned_masks` (mask networks), :mod:`inpcodec.bitstreams` (file
format and entropy coding), :mod:`inpcodec.cli` (the ``inpcodec`` command).
"""

__version__ = "0.2.0"

# Absolute imports: pytest imports this file under the folder's name too (the repository
# root is this package), and that copy must use the one installed inpcodec, not load a
# second copy of every module.
from inpcodec.codec import postprocess as _postprocess  # noqa: E402, F401 (registers "gan")
from inpcodec.codec.diffusion import inpaint  # noqa: E402
from inpcodec.codec.format import decode  # noqa: E402
from inpcodec.codec.pipeline import encode  # noqa: E402

__all__ = ["__version__", "decode", "encode", "inpaint"]
