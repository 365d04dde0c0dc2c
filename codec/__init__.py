"""inpcodec core: homogeneous diffusion inpainting and the codec pipeline."""

from .diffusion import SOLVERS, Inpainter, SolveInfo, gpu_status, inpaint

__all__ = ["SOLVERS", "Inpainter", "SolveInfo", "gpu_status", "inpaint"]
__version__ = "0.1.0"
