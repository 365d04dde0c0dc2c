"""The real inpainting as a differentiable layer: a training alternative to the surrogate.

The seed trains a surrogate U-net so that gradients can flow from the reconstruction to
the mask.  Here the gradient is exact instead: the forward pass runs the decoder's own
solver (:class:`codec.Inpainter`, which accepts non-binary masks), the backward pass one
adjoint solve with the same multigrid hierarchy.

With c in [0, 1) the inpainting equation c (u - f) - (1 - c) A u = 0 (A the Neumann
Laplacian) reads D L u = C f with D = diag(1 - c) and L = diag(c / (1 - c)) - A, the
symmetric operator the solver works with.  Differentiating in c_i gives
du/dc_i = -(D L)^-1 e_i (u_i - f_i) / (1 - c_i), so for a loss E with gradient g = dE/du

    dE/dc_i = -y_i (u_i - f_i) / (1 - c_i)^2,    y = L^-1 g,

one solve with L (:meth:`codec.Inpainter.solve_unknowns`).  ``u`` does not depend on ``f``
through the mask network, and ``f`` gets no gradient.
"""

from __future__ import annotations

import numpy as np
import torch

#: Confidences are kept below 1 so that every pixel stays in the solver's unknowns (the
#: formula above needs 1 - c > 0); 1 - 1e-4 changes a reconstruction by far less than 1e-4.
C_MAX = 1.0 - 1e-4
SOLVE_TOL = 1e-6


class ExactInpainting(torch.autograd.Function):
    """u = inpaint(f, c) per batch item, shapes (B, 1, H, W); gradient in c only."""

    @staticmethod
    def forward(ctx, c: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        from codec.diffusion import Inpainter  # noqa: PLC0415

        cn = c.detach().double().clamp(0.0, C_MAX).cpu().numpy()[:, 0]
        fn = f.detach().double().cpu().numpy()[:, 0]
        us, solvers = [], []
        for b in range(cn.shape[0]):
            ip = Inpainter(cn[b], solver="numba")
            us.append(ip.solve(fn[b], tol=SOLVE_TOL))
            solvers.append(ip)
        u = np.stack(us)
        ctx.solvers, ctx.u, ctx.f, ctx.c = solvers, u, fn, cn
        return torch.from_numpy(u[:, None]).to(device=c.device, dtype=c.dtype)

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):
        g = grad_u.detach().double().cpu().numpy()[:, 0]
        out = np.empty_like(g)
        for b, ip in enumerate(ctx.solvers):
            y = ip.solve_unknowns(g[b], tol=SOLVE_TOL)
            one_minus = 1.0 - ctx.c[b]
            out[b] = -y * (ctx.u[b] - ctx.f[b]) / (one_minus * one_minus)
        return torch.from_numpy(out[:, None]).to(device=grad_u.device, dtype=grad_u.dtype), None


def exact_inpaint(c: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Homogeneous diffusion inpainting of ``f`` with confidences ``c``, differentiable in c."""
    return ExactInpainting.apply(c, f)
