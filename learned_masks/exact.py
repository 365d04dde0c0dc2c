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

one solve with L (:meth:`codec.Inpainter.solve_unknowns`).  At a known pixel (c_i = 1)
the equation gives u_i = f_i + (1 - c_i) (A u)_i + O((1 - c_i)^2): lowering c_i moves the
stored value by (A u)_i, so dE/dc_i = -(A u)_i dE/df_i with dE/df_i = g_i + sum of y over
the unknown 4-neighbours of i (the transpose of the map from known values to u; y is zero
at known pixels).  ``u`` does not depend on ``f`` through the mask network, and ``f`` gets
no gradient.

:func:`binary_inpaint` is the straight-through variant used to train on binary masks: the
forward pass inpaints with the binary mask the network's confidences are dithered to, the
backward pass hands the exact gradient at that binary mask to the confidences.
"""

from __future__ import annotations

import numpy as np
import torch

#: Non-binary confidences are kept below 1 so that the formula for unknown pixels holds
#: (it needs 1 - c > 0); 1 - 1e-4 changes a reconstruction by far less than 1e-4.  Exact
#: ones (binary masks) are known pixels with their own formula.
C_MAX = 1.0 - 1e-4
SOLVE_TOL = 1e-6


def _neighbour_sum(a: np.ndarray) -> np.ndarray:
    """Sum of the in-image 4-neighbours of every pixel (the off-diagonal of A)."""
    s = np.zeros_like(a)
    s[1:] += a[:-1]
    s[:-1] += a[1:]
    s[:, 1:] += a[:, :-1]
    s[:, :-1] += a[:, 1:]
    return s


def _neighbour_count(shape) -> np.ndarray:
    return _neighbour_sum(np.ones(shape))


def _prepare(c: torch.Tensor) -> np.ndarray:
    cn = c.detach().double().clamp(0.0, 1.0).cpu().numpy()[:, 0]
    return np.where(cn >= 1.0, 1.0, np.minimum(cn, C_MAX))


def _forward(ctx, cn: np.ndarray, f: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    from inpcodec.codec.diffusion import Inpainter  # noqa: PLC0415

    fn = f.detach().double().cpu().numpy()[:, 0]
    us, solvers = [], []
    for b in range(cn.shape[0]):
        ip = Inpainter(cn[b], solver="numba")
        us.append(ip.solve(fn[b], tol=SOLVE_TOL))
        solvers.append(ip)
    u = np.stack(us)
    ctx.solvers, ctx.u, ctx.f, ctx.c = solvers, u, fn, cn
    return torch.from_numpy(u[:, None]).to(device=like.device, dtype=like.dtype)


def _backward(ctx, grad_u: torch.Tensor) -> torch.Tensor:
    g = grad_u.detach().double().cpu().numpy()[:, 0]
    out = np.empty_like(g)
    for b, ip in enumerate(ctx.solvers):
        y = ip.solve_unknowns(g[b], tol=SOLVE_TOL)
        c, u, f = ctx.c[b], ctx.u[b], ctx.f[b]
        known = c >= 1.0
        one_minus = np.where(known, 1.0, 1.0 - c)
        grad = -y * (u - f) / (one_minus * one_minus)
        if known.any():
            au = _neighbour_sum(u) - _neighbour_count(u.shape) * u  # (A u), Neumann
            df = g[b] + _neighbour_sum(np.where(known, 0.0, y))
            grad = np.where(known, -au * df, grad)
        out[b] = grad
    return torch.from_numpy(out[:, None]).to(device=grad_u.device, dtype=grad_u.dtype)


class ExactInpainting(torch.autograd.Function):
    """u = inpaint(f, c) per batch item, shapes (B, 1, H, W); gradient in c only."""

    @staticmethod
    def forward(ctx, c: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return _forward(ctx, _prepare(c), f, c)

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):
        return _backward(ctx, grad_u), None


class BinaryInpainting(torch.autograd.Function):
    """u = inpaint(f, b) for a binary mask b; the gradient at b goes to c (straight through)."""

    @staticmethod
    def forward(ctx, c: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        bn = (b.detach().cpu().numpy()[:, 0] > 0.5).astype(np.float64)
        return _forward(ctx, bn, f, c)

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):
        return _backward(ctx, grad_u), None, None


def exact_inpaint(c: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Homogeneous diffusion inpainting of ``f`` with confidences ``c``, differentiable in c."""
    return ExactInpainting.apply(c, f)


def binary_inpaint(c: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Inpainting of ``f`` from the binary mask ``b``; ``c`` receives dE/db (straight through)."""
    return BinaryInpainting.apply(c, b, f)
