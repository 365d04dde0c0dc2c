"""Multigrid-preconditioned conjugate gradients for homogeneous diffusion inpainting.

The system on the unknown pixels (c < 1) is symmetric positive definite:

    (deg_i + c_i / (1 - c_i)) u_i - sum_{j ~ i, c_j < 1} u_j
        = c_i / (1 - c_i) f_i + sum_{j ~ i, c_j = 1} f_j,

which is the discrete inpainting equation C (u - f) - (I - C) A u = 0 divided row-wise by
1 - c_i (A: 5-point Laplacian, reflecting boundaries; deg_i: number of neighbours inside
the image).  It is solved by CG preconditioned with one symmetric multigrid V-cycle:

* interpolation P: bilinear (tensor product of 1-D linear interpolation, constant
  extrapolation at an even-sized border), zeroed at known pixels on the finest level;
* coarse operators: Galerkin products P^T A P (9-point stencils), which see the mask at
  every scale, so the cycle stays effective for 1 % masks as well as 30 % masks;
* smoother: one l1-Jacobi sweep before and after the coarse correction, z = omega r / d_i
  with d_i = a_ii + sum_j |a_ij| and omega = 4/3.  Since lambda_max(D_l1^-1 A) <= 1, the
  smoother converges for every SPD level, so the V-cycle is an SPD preconditioner for any
  mask (Baker, Falgout, Kolev, Yang 2011).  Plain damped Jacobi (omega = 0.8 on a_ii) is
  equally fast on binary masks but makes the V-cycle indefinite on strongly non-binary
  ones (CG then breaks down: measured on c = U^8); Jacobi in either form keeps the
  preconditioner symmetric, fully parallel and thread-count independent;
* coarsest grid (at most ``COARSEST`` points): exact solve with a pseudo-inverse;
* precision: CG, the fine operator and the residuals are float64; the preconditioner's
  coarse levels and Jacobi weights are float32 (``PRECONDITIONER_DTYPE``), which halves
  their memory traffic without changing the iteration counts measured.

Measured on 512 x 512 masks (see benchmarks/bench_decoder.py) the method needs 6-10
iterations to a relative residual of 1e-6 for random 1-30 % masks and structured masks,
where unpreconditioned CG needs 100-900.

The driver (:func:`pcg`, :func:`vcycle`) is written once; the kernels come from a backend:
:class:`NumbaBackend` (CPU) or :class:`ArrayBackend` over an array module (NumPy for tests,
CuPy on a GPU).  The set-up (Galerkin products, coarsest inverse) always runs in Numba on
the CPU and is shared by both.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import _kernels as K

OMEGA = 4.0 / 3.0  # l1-Jacobi weight: safe below 2, 4/3 balances smoothing of all modes
COARSEST = 128  # grids with at most this many points are solved exactly
PRECONDITIONER_DTYPE = np.float32
POOL_MAX_POINTS = 1 << 22  # workspaces up to 4 M pixel-channels are kept for reuse


# ----------------------------------------------------------------------------- hierarchy


@lru_cache(maxsize=256)
def _transfer_tables(n: int, coarsen: bool):
    """1-D interpolation tables between a fine axis of length n and its coarse axis.

    Returns ``(nc, pc, pw, fi, fw)`` in padded indices: fine point i interpolates from
    coarse points ``pc[i, 0:2]`` with weights ``pw[i, 0:2]``; coarse point I is the
    weighted sum over fine points ``fi[I, 0:3]`` with weights ``fw[I, 0:3]`` (its column
    of P).  Absent entries have weight 0 and a valid (ghost) index.
    """
    nc = (n + 1) // 2 if coarsen else n
    pc = np.zeros((n + 2, 2), np.int64)
    pw = np.zeros((n + 2, 2))
    for i in range(n):
        if not coarsen:
            pc[i + 1] = (i + 1, i + 1)
            pw[i + 1] = (1.0, 0.0)
        elif i % 2 == 0:
            pc[i + 1] = (i // 2 + 1, i // 2 + 1)
            pw[i + 1] = (1.0, 0.0)
        elif (i + 1) // 2 < nc:
            pc[i + 1] = ((i - 1) // 2 + 1, (i + 1) // 2 + 1)
            pw[i + 1] = (0.5, 0.5)
        else:  # last point of an even-length axis: constant extrapolation keeps P 1 = 1
            pc[i + 1] = ((i - 1) // 2 + 1, (i - 1) // 2 + 1)
            pw[i + 1] = (1.0, 0.0)
    fi = np.zeros((nc + 2, 3), np.int64)
    fw = np.zeros((nc + 2, 3))
    for big in range(nc):
        centre = 2 * big if coarsen else big
        for k, i in enumerate((centre - 1, centre, centre + 1)):
            if 0 <= i < n:
                w = sum(pw[i + 1, m] for m in range(2) if pc[i + 1, m] == big + 1)
                if w != 0.0:
                    fi[big + 1, k] = i + 1
                    fw[big + 1, k] = w
    for a in (pc, pw, fi, fw):  # cached and shared between hierarchies: keep them immutable
        a.flags.writeable = False
    return nc, pc, pw, fi, fw


@dataclass
class Transfer:
    """Interpolation tables between level l (fine) and level l + 1."""

    pcy: np.ndarray
    pwy: np.ndarray
    pcx: np.ndarray
    pwx: np.ndarray
    fiy: np.ndarray
    fwy: np.ndarray
    fix: np.ndarray
    fwx: np.ndarray
    sy: int  # coarsening factor along y (2, or 1 for an axis of length 1)
    sx: int


@dataclass
class Hierarchy:
    """Everything the V-cycle needs for one mask; built once, reused for every solve."""

    shape: tuple
    unk: np.ndarray  # (H+2, W+2) uint8, 1 at unknown pixels
    diag: np.ndarray  # (H+2, W+2) level-0 diagonal (0 at known pixels)
    dinv: np.ndarray  # (H+2, W+2) its inverse (0 at known pixels)
    stencils: list = field(default_factory=list)  # coarse levels: (5, h+2, w+2)
    dinvs: list = field(default_factory=list)  # coarse levels: inverse diagonals
    transfers: list = field(default_factory=list)  # len(stencils) transfers (0 if no coarse)
    coarsest_inv: np.ndarray | None = None  # dense pseudo-inverse of the last level
    n_unknown: int = 0
    #: Working precision of the level-0 vectors (x, r, p and the V-cycle's two buffers).
    dtype: np.dtype = np.dtype(np.float64)

    @property
    def n_levels(self) -> int:
        return 1 + len(self.stencils)

    def level_shape(self, level: int) -> tuple:
        if level == 0:
            return self.shape
        _, hp, wp = self.stencils[level - 1].shape
        return (hp - 2, wp - 2)


def build_hierarchy(mask_padded: np.ndarray, dtype=np.float64) -> Hierarchy:
    """Set up the multigrid hierarchy for a padded confidence mask (float64); ``dtype``:
    the working precision of the level-0 vectors (:class:`_Workspace`), in which the
    level-0 diagonal is then kept too."""
    hp, wp = mask_padded.shape
    h, w = hp - 2, wp - 2
    unk = np.zeros((hp, wp), np.uint8)
    diag = np.zeros((hp, wp))
    dinv = np.zeros((hp, wp))
    K.fine_setup(mask_padded, unk, diag, dinv)
    hier = Hierarchy(shape=(h, w), unk=unk, diag=diag, dinv=dinv)
    hier.n_unknown = int(np.count_nonzero(unk))
    hier.dtype = np.dtype(dtype)
    if h * w <= COARSEST:
        hier.coarsest_inv = K.pseudo_inverse_spd(K.dense_from_fine(unk, diag))
        hier.dinv = hier.dinv.astype(PRECONDITIONER_DTYPE)
        hier.diag = hier.diag.astype(hier.dtype, copy=False)
        return hier
    while h * w > COARSEST:
        cy, cx = h > 1, w > 1
        hc, pcy, pwy, fiy, fwy = _transfer_tables(h, cy)
        wc, pcx, pwx, fix, fwx = _transfer_tables(w, cx)
        tr = Transfer(pcy, pwy, pcx, pwx, fiy, fwy, fix, fwx, 2 if cy else 1, 2 if cx else 1)
        st = np.zeros((5, hc + 2, wc + 2))
        if not hier.stencils:
            K.rap_fine(unk, diag, fwy, fwx, tr.sy, tr.sx, st)
        else:
            K.rap_coarse(hier.stencils[-1], fwy, fwx, tr.sy, tr.sx, st)
        # rows of coarse points whose whole support is known are zero: inactive (dinv 0)
        dv = np.zeros_like(st[0])
        K.coarse_l1_dinv(st, dv)
        hier.transfers.append(tr)
        hier.stencils.append(st)
        hier.dinvs.append(dv)
        h, w = hc, wc
    hier.coarsest_inv = K.pseudo_inverse_spd(K.dense_from_stencil(hier.stencils[-1]))
    # the products are formed in float64; the V-cycle then reads them in its own precision
    hier.dinv = hier.dinv.astype(PRECONDITIONER_DTYPE)
    hier.stencils = [st.astype(PRECONDITIONER_DTYPE) for st in hier.stencils]
    hier.dinvs = [d.astype(PRECONDITIONER_DTYPE) for d in hier.dinvs]
    hier.diag = hier.diag.astype(hier.dtype, copy=False)
    return hier


# ----------------------------------------------------------------------------- backends


class NumbaBackend:
    """CPU kernels (Numba, parallel over rows, deterministic reductions)."""

    name = "numba"
    xp = np

    def __init__(self, hier: Hierarchy):
        self.h = hier
        self._partials = {}

    def workspace(self, channels):
        return _pooled_workspace(self, self.h, channels)

    # -- memory
    def zeros(self, shape, dtype=np.float64):
        return np.zeros(shape, dtype)

    def asarray(self, a):
        return np.ascontiguousarray(a, dtype=np.float64)

    def to_host(self, a):
        return a

    def copy(self, src, dst):
        np.copyto(dst, src)

    def upload(self, host, dst):
        np.copyto(dst, host)

    def upload_interior(self, host, mult, dst):
        """dst (C, H + 2, W + 2) = host (H, W, C) x mult's interior, zero ghosts; in
        place, with no padded copy of host (an image fewer at an encode's peak)."""
        dst[...] = 0.0
        for c in range(dst.shape[0]):
            np.multiply(host[:, :, c], mult[1:-1, 1:-1], out=dst[c, 1:-1, 1:-1])

    def rhs(self, mask_p, values, out):
        K.fine_rhs(mask_p, values, out)

    def _reduce(self, partial):
        out = np.empty(partial.shape[0])
        K.sum_rows(partial, out)
        return out

    def _partial(self, x):
        key = (x.shape[0], x.shape[1])
        p = self._partials.get(key)
        if p is None:
            p = self._partials[key] = np.zeros(key)
        return p

    # -- level 0
    def dot(self, x, y):
        p = self._partial(x)
        K.dot_rows(x, y, p)
        return self._reduce(p)

    def fine_residual(self, b, x, out):
        K.fine_residual(self.h.unk, self.h.diag, b, x, out)

    def fine_apply(self, x, out):
        p = self._partial(x)
        K.fine_apply(self.h.unk, self.h.diag, x, out, p)
        return self._reduce(p)

    def fine_presmooth(self, r, z, t):
        K.fine_presmooth(self.h.unk, self.h.diag, self.h.dinv, r, OMEGA, z, t)

    def fine_postsmooth(self, r, z, out):
        p = self._partial(r)
        K.fine_postsmooth(self.h.unk, self.h.diag, self.h.dinv, r, z, OMEGA, out, p)
        return self._reduce(p)

    def cg_update_xr(self, x, r, p, q, alpha):
        part = self._partial(x)
        K.cg_update_xr(x, r, p, q, alpha, part)
        return self._reduce(part)

    def cg_update_p(self, z, beta, p):
        K.cg_update_p(z, beta, p)

    # -- coarse levels (level >= 1 uses stencils[level - 1])
    def coarse_presmooth(self, level, r, z, t):
        K.coarse_presmooth(self.h.stencils[level - 1], self.h.dinvs[level - 1], r, OMEGA, z, t)

    def coarse_postsmooth(self, level, r, z, out):
        K.coarse_postsmooth(self.h.stencils[level - 1], self.h.dinvs[level - 1], r, z, OMEGA, out)

    def restrict(self, level, t, out):
        tr = self.h.transfers[level]
        K.restrict(t, tr.fwy, tr.fwx, tr.sy, tr.sx, out)

    def prolong_add(self, level, e, z):
        tr = self.h.transfers[level]
        K.prolong_add(e, tr.pwy, tr.fwx, tr.sy, tr.sx, z, self.h.unk, level == 0)

    def coarsest_solve(self, r, z):
        K.coarsest_solve(self.h.coarsest_inv, r, z)


class ArrayBackend:
    """The same kernels written with whole-array operations of an array module.

    With ``xp = numpy`` it runs (slowly) on the CPU and is what the tests compare with the
    Numba backend; with ``xp = cupy`` it is the GPU solver.
    """

    def __init__(self, hier: Hierarchy, xp):
        self.xp = xp
        self.name = "cupy" if xp.__name__ == "cupy" else "array"
        a = xp.asarray
        self.unk = a(hier.unk.astype(np.float64))
        self.diag = a(hier.diag)
        self.dinv = a(hier.dinv)
        self.stencils = [a(s) for s in hier.stencils]
        self.dinvs = [a(d) for d in hier.dinvs]
        self.transfers = [
            Transfer(*(a(getattr(t, f)) if f not in ("sy", "sx") else getattr(t, f)
                       for f in Transfer.__dataclass_fields__))
            for t in hier.transfers
        ]
        self.inv = a(hier.coarsest_inv)
        self.h = hier
        self._ws = {}

    def workspace(self, channels):
        if channels not in self._ws:
            self._ws = {channels: _Workspace(self, self.h, channels)}
        return self._ws[channels]

    def zeros(self, shape, dtype=np.float64):
        return self.xp.zeros(shape, dtype)

    def asarray(self, a):
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=self.xp.float64))

    def to_host(self, a):
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def copy(self, src, dst):
        dst[...] = src

    def upload(self, host, dst):
        dst[...] = self.xp.asarray(host)

    def upload_interior(self, host, mult, dst):
        """dst (C, H + 2, W + 2) = host (H, W, C) x mult's interior, zero ghosts."""
        padded = np.zeros(dst.shape)
        padded[:, 1:-1, 1:-1] = np.moveaxis(host, -1, 0)
        padded *= mult
        self.upload(padded, dst)

    def rhs(self, mask_p, values, out):  # assembled on the CPU (cheap, one pass), then sent
        host = np.zeros(out.shape)
        K.fine_rhs(mask_p, values, host)
        self.upload(host, out)

    def _host(self, v):
        return np.asarray(self.to_host(v), dtype=np.float64)

    def dot(self, x, y):
        return self._host((x * y).sum(axis=(1, 2)))

    @staticmethod
    def _nbsum(x):
        return x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:]

    def _apply_fine(self, x):
        i = slice(1, -1)
        return (self.diag[i, i] * x[:, i, i] - self._nbsum(x)) * self.unk[i, i]

    @staticmethod
    def _apply9(st, x):
        i = slice(1, -1)
        return (
            st[0, i, i] * x[:, i, i]
            + st[1, i, i] * x[:, i, :-2]
            + st[2, i, i] * x[:, :-2, i]
            + st[3, i, i] * x[:, :-2, :-2]
            + st[4, i, i] * x[:, :-2, 2:]
            + st[1, i, 2:] * x[:, i, 2:]
            + st[2, 2:, i] * x[:, 2:, i]
            + st[3, 2:, 2:] * x[:, 2:, 2:]
            + st[4, 2:, :-2] * x[:, 2:, :-2]
        )

    def fine_residual(self, b, x, out):
        i = slice(1, -1)
        out[:, i, i] = (b[:, i, i] - self._apply_fine(x)) * self.unk[i, i]

    def fine_apply(self, x, out):
        out[:, 1:-1, 1:-1] = self._apply_fine(x)
        return self.dot(x, out)

    def fine_presmooth(self, r, z, t):
        z[...] = OMEGA * r * self.dinv
        self.fine_residual(r, z, t)  # t = r - A z

    def fine_postsmooth(self, r, z, out):
        i = slice(1, -1)
        out[:, i, i] = z[:, i, i] + OMEGA * self.dinv[i, i] * (r[:, i, i] - self._apply_fine(z))
        return self.dot(r, out)

    def cg_update_xr(self, x, r, p, q, alpha):
        a = self.xp.asarray(alpha)[:, None, None]
        x += a * p
        r -= a * q
        return self.dot(r, r)

    def cg_update_p(self, z, beta, p):
        p[...] = z + self.xp.asarray(beta)[:, None, None] * p

    def coarse_presmooth(self, level, r, z, t):
        st, dv = self.stencils[level - 1], self.dinvs[level - 1]
        z[...] = OMEGA * r * dv
        t[:, 1:-1, 1:-1] = r[:, 1:-1, 1:-1] - self._apply9(st, z)

    def coarse_postsmooth(self, level, r, z, out):
        st, dv = self.stencils[level - 1], self.dinvs[level - 1]
        i = slice(1, -1)
        out[:, i, i] = z[:, i, i] + OMEGA * dv[i, i] * (r[:, i, i] - self._apply9(st, z))

    def restrict(self, level, t, out):
        tr = self.transfers[level]
        tx = (t[:, :, tr.fix] * tr.fwx).sum(axis=-1)  # (C, Hp, Wcp)
        out[...] = (tx[:, tr.fiy, :] * tr.fwy[:, :, None]).sum(axis=2)

    def prolong_add(self, level, e, z):
        tr = self.transfers[level]
        ex = (e[:, :, tr.pcx] * tr.pwx).sum(axis=-1)  # (C, Hcp, Wp)
        v = (ex[:, tr.pcy, :] * tr.pwy[:, :, None]).sum(axis=2)  # (C, Hp, Wp)
        i = slice(1, -1)
        if level == 0:
            v = v * self.unk
        z[:, i, i] += v[:, i, i]

    def coarsest_solve(self, r, z):
        c, hp, wp = r.shape
        flat = r[:, 1:-1, 1:-1].reshape(c, -1)
        z[:, 1:-1, 1:-1] = (flat @ self.inv.T).reshape(c, hp - 2, wp - 2)


# ----------------------------------------------------------------------------- algorithm


_POOL = threading.local()


def _pooled_workspace(be, hier: Hierarchy, channels: int) -> _Workspace:
    """The buffers of the last solve of this shape in this thread, or new ones.

    Encoders (PS, NLPE, tonal optimisation) build thousands of hierarchies of one image
    size; reusing the buffers spares the page faults of fresh allocations.  A solve
    re-initialises every buffer it reads, so sharing between sequential solves is safe;
    the pool is per thread, so concurrent solves never share.
    """
    h, w = hier.shape
    if (h + 2) * (w + 2) * channels > POOL_MAX_POINTS:
        # large images: a solve is long against its page faults, and a pooled workspace
        # would keep hundreds of MB alive after the call returns
        _POOL.pool = None
        return _Workspace(be, hier, channels)
    key = (type(be).__name__, hier.shape, channels, hier.dtype,
           tuple(hier.level_shape(lev) for lev in range(hier.n_levels)))
    pool = getattr(_POOL, "pool", None)
    if pool is None or pool[0] != key:
        pool = _POOL.pool = (key, _Workspace(be, hier, channels))
    return pool[1]


class _Workspace:
    """Buffers of one solve, allocated once per (mask, channel count) and reused.

    Level 0 needs five vectors: the iterate x, the residual r, the search direction p, and
    two V-cycle buffers W and T.  The V-cycle leaves its result z in T; W then holds
    A p during the CG update.  Coarse levels have r, e, w, t each.
    """

    def __init__(self, be, hier: Hierarchy, channels: int):
        h, w = hier.shape
        shape = (channels, h + 2, w + 2)
        self.x, self.r, self.p, self.W, self.T = (be.zeros(shape, hier.dtype)
                                                  for _ in range(5))
        self.cr, self.ce, self.cw, self.ct = [None], [None], [None], [None]
        for lev in range(1, hier.n_levels):
            hl, wl = hier.level_shape(lev)
            shape = (channels, hl + 2, wl + 2)
            for lst in (self.cr, self.ce, self.cw, self.ct):
                lst.append(be.zeros(shape, PRECONDITIONER_DTYPE))


def _vcycle_coarse(be, hier, ws, level):
    """ce[level] = V-cycle applied to cr[level]."""
    r, e = ws.cr[level], ws.ce[level]
    if level == hier.n_levels - 1:
        be.coarsest_solve(r, e)
        return
    be.coarse_presmooth(level, r, ws.cw[level], ws.ct[level])
    be.restrict(level, ws.ct[level], ws.cr[level + 1])
    _vcycle_coarse(be, hier, ws, level + 1)
    be.prolong_add(level, ws.ce[level + 1], ws.cw[level])
    be.coarse_postsmooth(level, r, ws.cw[level], e)


def vcycle(be, hier, ws, r):
    """ws.T = M^-1 r (one symmetric V-cycle on the unknowns); returns <r, z> per channel."""
    if hier.n_levels == 1:
        be.coarsest_solve(r, ws.T)
        return be.dot(r, ws.T)
    be.fine_presmooth(r, ws.W, ws.T)
    be.restrict(0, ws.T, ws.cr[1])
    _vcycle_coarse(be, hier, ws, 1)
    be.prolong_add(0, ws.ce[1], ws.W)
    return be.fine_postsmooth(r, ws.W, ws.T)


@dataclass
class PCGResult:
    iterations: int
    converged: bool


def pcg(be, hier: Hierarchy, ws: _Workspace, bnorm: np.ndarray, tol: float,
        max_iter: int) -> PCGResult:
    """Solve A x = b for ``ws.x``, given ``ws.r = b - A ws.x`` and ``bnorm = ||b||``.

    Stops when every channel has ||r|| <= tol ||b||.  Channels are iterated together (one
    pass over the operator serves all of them) with their own CG scalars; a converged
    channel is frozen.  Channels with b = 0 must be zero in x and r on entry.
    """
    x, r, p = ws.x, ws.r, ws.p
    target = tol * bnorm
    active = np.sqrt(be.dot(r, r)) > target
    it = 0
    if not active.any():
        return PCGResult(0, True)
    rz = vcycle(be, hier, ws, r)
    be.copy(ws.T, p)
    while it < max_iter:
        it += 1
        pq = be.fine_apply(p, ws.W)  # q = A p lives in W until the next V-cycle
        if np.any(active & ~(pq > 0)):  # breakdown: A or M^-1 not positive definite
            return PCGResult(iterations=it, converged=False)
        alpha = np.where(active, rz / np.where(active, pq, 1.0), 0.0)
        rr = be.cg_update_xr(x, r, p, ws.W, alpha)
        active &= np.sqrt(rr) > target
        if not active.any():
            break
        rz_new = vcycle(be, hier, ws, r)
        if np.any(active & ~(rz_new > 0)):
            return PCGResult(iterations=it, converged=False)
        beta = np.where(active, rz_new / np.where(active, rz, 1.0), 0.0)
        rz = rz_new
        be.cg_update_p(ws.T, beta, p)
    return PCGResult(iterations=it, converged=not active.any())
