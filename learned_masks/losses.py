"""Losses of the joint training (seed paper 000, section 3).

Images are in [0, 1] and every loss is a mean over pixels (and the batch), so that its
size does not depend on the crop size.  At this scale the seed's alpha = 0.01 makes the
regulariser dominate until the masks are nearly binary, which is what closes the gap
between the non-binary masks the networks see and the binarised masks the codec stores.
Measured: with the inpainting loss in 8-bit grey values (255^2 larger) the masks stayed
flat (confidence <= 0.14 at 5 %) and their coin-flip binarisations were worse than random
masks after 750 steps (benchmarks/RESULTS.md, learned masks section).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

#: Weight of the inverse-variance regulariser (the seed's alpha).
ALPHA = 0.01
#: Keeps the regulariser finite for a flat mask (the seed leaves epsilon unspecified).
EPSILON = 1e-6


def laplacian(u: torch.Tensor) -> torch.Tensor:
    """5-point Laplacian (grid size 1) with reflecting (homogeneous Neumann) boundaries.

    Replicate padding mirrors the image about the cell faces, the same discretisation as the
    decoder's :func:`codec.inpaint`.
    """
    p = F.pad(u, (1, 1, 1, 1), mode="replicate")
    return (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
            - 4.0 * u)


def residual_loss(u: torch.Tensor, c: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Mean of ``(C (u - f) - (I - C) A u)^2``: zero exactly when ``u`` solves the inpainting."""
    r = c * (u - f) - (1.0 - c) * laplacian(u)
    return (r * r).mean()


def inpainting_loss(u: torch.Tensor, f: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean squared reconstruction error of ``scale * (u - f)``."""
    d = scale * (u - f)
    return (d * d).mean()


def variance_regulariser(c: torch.Tensor, alpha: float = ALPHA,
                         eps: float = EPSILON) -> torch.Tensor:
    """``alpha / (var(c) + eps)`` per mask, averaged over the batch.

    Penalises flat masks (a random sampling the mask network otherwise gets stuck in) and
    pushes confidences towards 0 and 1.
    """
    var = c.var(dim=(1, 2, 3), unbiased=False)
    return (alpha / (var + eps)).mean()
