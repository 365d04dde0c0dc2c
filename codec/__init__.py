"""inpcodec core: homogeneous diffusion inpainting and the codec pipeline."""

from .diffusion import SOLVERS, Inpainter, SolveInfo, gpu_status, inpaint
from .pipeline import CodecError, EncodeReport, decode, encode, encode_report, info

__all__ = [
    "SOLVERS",
    "CodecError",
    "EncodeReport",
    "Inpainter",
    "SolveInfo",
    "decode",
    "encode",
    "encode_report",
    "gpu_status",
    "info",
    "inpaint",
]
__version__ = "0.1.0"
