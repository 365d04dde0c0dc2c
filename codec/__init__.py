"""inpcodec core: homogeneous diffusion inpainting and what the codec builds on.

The modules of this package form layers (checked by import-linter, see setup.cfg):
the solver core (:mod:`.diffusion`, :mod:`.colour`, :mod:`.quantiser`, :mod:`.tonal`,
:mod:`.limits`, :mod:`.encoders`, :mod:`.io`, :mod:`.metrics`) below the mask encoders
(``inpcodec.baselines``, ``inpcodec.learned_masks``), below the pipeline and rate control
(:mod:`.pipeline`, :mod:`.rate`), below the post-processor (:mod:`.postprocess`) and the
benchmark (:mod:`.bench`).  This package's namespace holds the solver core only.
"""

from .diffusion import SOLVERS, Inpainter, SolveInfo, gpu_status, inpaint

__all__ = ["SOLVERS", "Inpainter", "SolveInfo", "gpu_status", "inpaint"]
