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

__version__ = "0.3.1"

__all__ = ["__version__", "decode", "encode", "inpaint"]


def __getattr__(name):
    # Loaded on first use, so that ``import inpcodec`` (and the command's start-up, which
    # must answer Ctrl-C with one line) does not wait for NumPy, Numba and the codec.
    # Absolute imports: pytest imports this file under the folder's name too (the
    # repository root is this package), and that copy must use the one installed
    # inpcodec, not load a second copy of every module.
    if name == "inpaint":
        from inpcodec.codec.diffusion import inpaint  # noqa: PLC0415

        return inpaint
    if name in ("decode", "encode"):
        from inpcodec.codec import postprocess  # noqa: F401, PLC0415 (registers "gan")
        from inpcodec.codec.decoder import decode  # noqa: PLC0415
        from inpcodec.codec.pipeline import encode  # noqa: PLC0415

        return {"decode": decode, "encode": encode}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
