"""Losses of the joint training (seed paper 000, section 3).

Images are in [0, 1].  As in the seed, the inpainting and residual losses are squared
Euclidean norms, i.e. sums over the pixels of an image (averaged over the batch), and the
regulariser alpha / (var(c) + eps) uses the variance, a mean.  This balance matters: with
a per-pixel mean instead of the sum, the seed's alpha = 0.01 is 128^2 times stronger on a
128x128 crop, and the mask network only learns blob-like masks of high variance that are
worse than random ones (measured, benchmarks/RESULTS.md, "Learned masks: training set-ups").
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


def _sum_per_image(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(dim=1).mean()


def residual_loss(u: torch.Tensor, c: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``||C (u - f) - (I - C) A u||^2`` per image; zero exactly when u solves the PDE."""
    r = c * (u - f) - (1.0 - c) * laplacian(u)
    return _sum_per_image(r * r)


def inpainting_loss(u: torch.Tensor, f: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``||scale (u - f)||^2`` per image (sum over pixels), averaged over the batch."""
    d = scale * (u - f)
    return _sum_per_image(d * d)


def variance_regulariser(c: torch.Tensor, alpha: float = ALPHA,
                         eps: float = EPSILON) -> torch.Tensor:
    """``alpha / (var(c) + eps)`` per mask, averaged over the batch.

    Penalises flat masks (a random sampling the mask network otherwise gets stuck in) and
    pushes confidences towards 0 and 1.
    """
    var = c.var(dim=(1, 2, 3), unbiased=False)
    return (alpha / (var + eps)).mean()
