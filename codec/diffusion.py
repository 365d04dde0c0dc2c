"""Homogeneous diffusion inpainting: the decoder of the codec.

Given values ``f`` and a confidence mask ``c`` in [0, 1], the reconstruction ``u`` solves the
discrete inpainting equation (Alt, Peter, Weickert 2021, eq. 4)

    C (u - f) - (I - C) A u = 0,    C = diag(c),

with A the 5-point Laplacian (grid size 1) and reflecting boundaries.  Pixels with c = 1 are
known (u = f there), pixels with c = 0 are filled by the Laplace equation, and 0 < c < 1
blends the data term with diffusion (used by the learned masks).

Example::

    import numpy as np
    from inpcodec.codec import inpaint

    f = np.linspace(0, 255, 64 * 64).reshape(64, 64)
    mask = np.zeros((64, 64))
    mask[::8, ::8] = 1
    u = inpaint(f, mask)                            # multigrid-preconditioned CG (auto)
    u, info = inpaint(f, mask, return_info=True)    # info.iterations, info.residual
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import _kernels as K
from . import _multigrid as MG
from .limits import require_scipy

SOLVERS = ("auto", "numba", "cupy", "direct")
DEFAULT_TOL = 1e-6
DEFAULT_MAX_ITER = 500
#: Working precision of the encoder's own solves (its estimates: the tree's growth and
#: pruning, the plain files' errors, the tonal optimisation), :class:`Inpainter`'s
#: ``dtype``.  The solver's sweeps are bound by memory traffic; in single precision they
#: move half the bytes.  The decoder, and so every file's pixels, stays in float64.
ESTIMATE_DTYPE = np.float32


class _Counts(threading.local):
    """Per thread (encodes in threads of one process count and report their own work):
    the iterative solves run and their preconditioned CG iterations (V-cycles, weighted by
    the channels and pixels solved), from whose differences the encoder reports its cost
    (:func:`solves_run`, :func:`vcycles_run`); and the hooks called after every solve
    with its number of pixels (the encoder's progress bar, which counts a window's solve
    by its share of the image)."""

    def __init__(self):
        self.solves = 0
        self.vcycles = 0
        self.hooks = []


_COUNTS = _Counts()


def on_solve(hook):
    """Call ``hook(pixels)`` after every iterative solve of this thread (``pixels``: the
    solved grid's size) until :func:`off_solve` removes it."""
    _COUNTS.hooks.append(hook)


def off_solve(hook):
    if hook in _COUNTS.hooks:
        _COUNTS.hooks.remove(hook)


def solves_run() -> int:
    """How many iterative solves (forward or adjoint, any size) this thread has run."""
    return _COUNTS.solves


def vcycles_run() -> int:
    """V-cycles times channels times pixels of all iterative solves this thread has run:
    the measure of solver work behind ``EncodeReport.solve_equivalents`` (divided by the
    decoder's own count for the file), in which a window's solve counts by its size."""
    return _COUNTS.vcycles


def kernels_cached() -> bool:
    """Whether Numba's on-disk cache holds compiled solver kernels (else the first solve
    compiles them, about 35 s): for a notice, not a guarantee."""
    import glob  # noqa: PLC0415
    import os  # noqa: PLC0415

    here = os.path.dirname(os.path.abspath(K.__file__))
    folders = [os.path.join(here, "__pycache__")]
    if os.environ.get("NUMBA_CACHE_DIR"):
        folders.append(os.environ["NUMBA_CACHE_DIR"])
    return any(glob.glob(os.path.join(f, "**", "_kernels.*.nbi"), recursive=True)
               for f in folders)


@dataclass(frozen=True)
class SolveInfo:
    """What a solve did.

    Attributes
    ----------
    solver : str
        The solver that ran (``"numba"``, ``"cupy"`` or ``"direct"``).
    iterations : int
        CG iterations (0 for ``direct`` and when nothing was unknown).
    residual : float
        Final relative residual ``||b - A u|| / ||b||`` of the symmetric system on the
        unknown pixels, recomputed from the returned solution (maximum over channels).
    converged : bool
        Whether every channel reached ``tol``.
    setup_time, solve_time : float
        Seconds spent building the solver for the mask and solving.
    levels : int
        Multigrid levels (1 for ``direct``).
    """

    solver: str
    iterations: int
    residual: float
    converged: bool
    setup_time: float
    solve_time: float
    levels: int


# ----------------------------------------------------------------------------- GPU detection


@lru_cache(maxsize=1)
def gpu_status() -> tuple[bool, str]:
    """Whether the CuPy solver can run here, and why not if it cannot."""
    try:
        import cupy  # noqa: PLC0415
    except ImportError:
        return False, "CuPy is not installed (pip install 'inpcodec[gpu]')"
    except Exception as exc:  # a broken CUDA install raises various errors on import
        return False, f"CuPy failed to import: {exc}"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False, "no CUDA device found"
        float(cupy.arange(4.0).sum())
    except Exception as exc:
        return False, f"CUDA is not usable: {exc}"
    return True, "CUDA device available"


def _resolve_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    if solver == "auto":
        return "cupy" if gpu_status()[0] else "numba"
    if solver == "cupy":
        ok, why = gpu_status()
        if not ok:
            raise RuntimeError(f"solver 'cupy' is not available: {why}")
    return solver


# ----------------------------------------------------------------------------- input checks


def _as_real_array(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.float64)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    return a


def check_mask(mask) -> np.ndarray:
    """Validate a confidence mask of shape (H, W); returns it as float64, or as it is
    where it is boolean (the codec's masks: no float64 copy of each, 8 bytes a pixel).

    Raises
    ------
    ValueError
        On a wrong number of dimensions, an empty image, non-finite entries, values
        outside [0, 1], or no pixel with c > 0.
    """
    m = np.asarray(mask)
    if m.dtype != bool:
        m = _as_real_array(m, "mask")
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    if m.size == 0:
        raise ValueError(f"image is empty (shape {m.shape})")
    if m.dtype == bool:
        if not m.any():
            raise ValueError("mask has no known pixel (all zero): nothing to inpaint from")
        return m
    m = m.astype(np.float64, copy=False)
    if not np.isfinite(m).all():
        raise ValueError("mask contains NaN or infinite values")
    lo, hi = float(m.min()), float(m.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"mask values must lie in [0, 1], found range [{lo:g}, {hi:g}]")
    if hi == 0.0:
        raise ValueError("mask has no known pixel (all zero): nothing to inpaint from")
    return m


def _check_values(values, mask: np.ndarray, name: str = "values") -> np.ndarray:
    v = _as_real_array(values, name)
    if v.shape[:2] != mask.shape or v.ndim not in (2, 3):
        raise ValueError(
            f"{name} shape {v.shape} does not match mask shape {mask.shape} "
            "(expected (H, W) or (H, W, C))"
        )
    if v.ndim == 3 and v.shape[2] == 0:
        raise ValueError(f"{name} has no channels (shape {v.shape})")
    return v


def _out_dtype(v: np.ndarray):
    return np.float32 if v.dtype == np.float32 else np.float64


# ----------------------------------------------------------------------------- solvers


class Inpainter:
    """Homogeneous diffusion inpainting for one mask, set up once and reused.

    Building the solver (the multigrid hierarchy, or the sparse LU factors for
    ``direct``) is the part that depends only on the mask; :meth:`solve` then handles any
    number of right-hand sides (channels, images, warm starts) without repeating it.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        Confidence in [0, 1]; 1 marks known pixels.
    solver : {"auto", "numba", "cupy", "direct"}
        ``numba``: multigrid-preconditioned CG on the CPU.  ``cupy``: the same algorithm on
        a CUDA GPU.  ``direct``: SciPy's sparse LU of the original (unsymmetric) equation,
        the reference; small images only.  ``auto``: ``cupy`` if usable, else ``numba``.
    dtype : {numpy.float64, numpy.float32}
        Working precision of the iterative solvers' vectors.  float64 (the default) is the
        decoder's.  float32 halves the memory the solver's sweeps read and write, for
        estimates that need no more than about 1e-5 relative accuracy (the encoder's own
        solves, :data:`ESTIMATE_DTYPE`); its reductions stay float64.
    """

    def __init__(self, mask, *, solver: str = "auto", dtype=np.float64):
        self.solver = _resolve_solver(solver)
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        t0 = time.perf_counter()
        m = check_mask(mask)
        # a binary mask (the codec's) is held in bytes, 7 bytes a pixel less than float64
        # at a decode's peak; the kernels read 0 and 1 the same in either type
        binary = m.dtype == bool or bool(np.all((m == 0.0) | (m == 1.0)))
        h, w = m.shape
        self._mask_p = np.zeros((h + 2, w + 2), np.uint8 if binary else np.float64)
        self._mask_p[1:-1, 1:-1] = m
        del m
        self.mask = self._mask_p[1:-1, 1:-1]  # view: one copy of the mask in memory
        if self.solver == "direct":
            self._lu = _direct_factor(self.mask)
            self.levels = 1
        else:
            self.hierarchy = MG.build_hierarchy(self._mask_p, dtype)
            self.levels = self.hierarchy.n_levels
            if self.solver == "cupy":
                import cupy  # noqa: PLC0415

                self._backend = MG.ArrayBackend(self.hierarchy, cupy)
            else:
                self._backend = MG.NumbaBackend(self.hierarchy)
        self.setup_time = time.perf_counter() - t0

    @property
    def shape(self) -> tuple:
        return self.mask.shape

    def solve(self, values, *, tol: float = DEFAULT_TOL, x0=None,
              max_iter: int = DEFAULT_MAX_ITER, return_info: bool = False, out=None):
        """Inpaint ``values`` (H, W) or (H, W, C) with this mask.

        Parameters
        ----------
        values : array_like
            Data; read only where the mask is > 0 (elsewhere it may hold anything, NaN
            included), and must be finite there.
        tol : float
            Relative residual at which CG stops (ignored by ``direct``).
        x0 : array_like, optional
            Initial guess of the shape of ``values`` (warm start), e.g. the previous
            solution when the mask or the data changed a little.
        max_iter : int
            Iteration limit; a :class:`RuntimeWarning` is issued if it is hit.
        return_info : bool
            Also return a :class:`SolveInfo`.
        out : ndarray, optional
            Where to write the reconstruction (shape of ``values``, its output dtype); may
            be ``values`` itself (each pixel is read before it is written), so that a
            plane is inpainted in place without a second copy of it.

        Returns
        -------
        u : ndarray
            The reconstruction, shape of ``values``; float32 for float32 input, float64
            otherwise.  Known pixels (c = 1) hold their values exactly.
        """
        v = _check_values(values, self.mask)
        data = self.mask > 0
        vd = v[data] if v.ndim == 2 else v[data, :]
        if vd.size and not np.isfinite(vd).all():
            raise ValueError("values contain NaN or infinite entries at mask pixels (c > 0)")
        if not 0.0 < tol < 1.0:
            raise ValueError(f"tol must lie in (0, 1), got {tol}")
        if int(max_iter) < 1:
            raise ValueError(f"max_iter must be at least 1, got {max_iter}")
        if x0 is not None:
            x0 = _as_real_array(x0, "x0")
            if x0.shape != v.shape:
                raise ValueError(f"x0 shape {x0.shape} does not match values shape {v.shape}")
            if not np.isfinite(x0).all():
                raise ValueError("x0 contains NaN or infinite values")
        t0 = time.perf_counter()
        h, w = self.mask.shape
        v3 = v.reshape(h, w, -1)
        if v3.dtype not in (np.float32, np.float64):
            v3 = v3.astype(np.float64)
        if self.solver == "direct":
            x = self._solve_direct(v3)
            it, res, converged = 0, _residual(self._mask_p, v3, x), True
        else:
            x, it, res, converged = self._solve_mg(v3, x0, tol, int(max_iter))
        if out is None:
            u = np.empty(v3.shape, _out_dtype(v))
        else:
            if not (isinstance(out, np.ndarray) and out.shape == v.shape
                    and out.dtype == _out_dtype(v)):
                raise ValueError(f"out must be a {_out_dtype(v).__name__} array of shape "
                                 f"{v.shape}")
            u = out[:, :, None] if out.ndim == 2 else out  # a view, never a copy
        K.assemble(self._mask_p, v3, x, u)  # known pixels hold their values exactly
        u = out if out is not None else u.reshape(v.shape)
        info = SolveInfo(self.solver, it, float(np.max(res)), converged,
                         self.setup_time, time.perf_counter() - t0, self.levels)
        if not converged:
            warnings.warn(
                f"inpainting did not reach tol={tol:g} in {max_iter} iterations "
                f"(relative residual {info.residual:.2e})", RuntimeWarning, stacklevel=2)
        return (u, info) if return_info else u

    __call__ = solve

    def solve_unknowns(self, rhs, *, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
                       x0=None):
        """Solve the symmetric system on the unknown pixels for an arbitrary right-hand side.

        ``L y = rhs`` with L the operator of :mod:`codec._multigrid` (rows of the inpainting
        equation divided by 1 - c).  ``rhs`` has shape (H, W) or (H, W, C) and is read at
        unknown pixels only; ``y`` is returned in the same shape, zero at known pixels.  This
        is the adjoint building block of tonal optimisation: for a binary mask the map from
        the known values g to the reconstruction is u = [g; L^-1 N g] (N couples each unknown
        pixel to its known neighbours), so its transpose is w -> w_K + N^T L^-1 w_U.
        ``x0`` (shape of ``rhs``) warm-starts the solve.
        """
        r = _as_real_array(rhs, "rhs")
        if r.shape[:2] != self.mask.shape or r.ndim not in (2, 3):
            raise ValueError(f"rhs shape {r.shape} does not match mask shape {self.mask.shape}")
        h, w = self.mask.shape
        r3 = r.reshape(h, w, -1)
        if self.solver == "direct":
            raise ValueError("solve_unknowns needs an iterative solver (numba or cupy)")
        if x0 is not None:
            x0 = _as_real_array(x0, "x0")
            if x0.shape != r.shape:
                raise ValueError(f"x0 shape {x0.shape} does not match rhs shape {r.shape}")
        x, *_ = self._solve_mg(None, x0, tol, int(max_iter), rhs_unknowns=r3)
        return np.ascontiguousarray(np.moveaxis(x[:, 1:-1, 1:-1], 0, -1),
                                    dtype=np.float64).reshape(r.shape)

    def _solve_mg(self, v3, x0, tol, max_iter, rhs_unknowns=None):
        _COUNTS.solves += 1
        hier, be = self.hierarchy, self._backend
        channels = v3.shape[2] if rhs_unknowns is None else rhs_unknowns.shape[2]
        if hier.n_unknown == 0:
            return np.zeros((channels,) + self._mask_p.shape), 0, np.zeros(channels), True
        ws = be.workspace(channels)

        def fill_rhs(out):
            if rhs_unknowns is None:
                be.rhs(self._mask_p, v3, out)
            else:  # (H, W, C), read at the unknowns
                be.upload_interior(rhs_unknowns, hier.unk, out)

        fill_rhs(ws.r)  # r = b
        bnorm = np.sqrt(be.dot(ws.r, ws.r))
        if x0 is None:
            ws.x[...] = 0.0
        else:
            # the iterate lives on the unknowns
            be.upload_interior(x0.reshape(x0.shape[0], x0.shape[1], -1), hier.unk, ws.x)
            be.fine_residual(ws.r, ws.x, ws.r)  # r = b - A x0
        for c in np.flatnonzero(bnorm == 0.0):  # no data in this channel: u = 0 exactly
            ws.x[c] = 0.0
            ws.r[c] = 0.0
        out = MG.pcg(be, hier, ws, bnorm, tol, max_iter)
        pixels = self.mask.size
        _COUNTS.vcycles += (out.iterations + 1) * channels * pixels
        for hook in _COUNTS.hooks:
            hook(pixels)
        # report the true residual b - A x, not CG's recursively updated one
        fill_rhs(ws.W)
        be.fine_residual(ws.W, ws.x, ws.W)
        res = np.sqrt(be.dot(ws.W, ws.W)) / np.where(bnorm > 0, bnorm, 1.0)
        return be.to_host(ws.x), out.iterations, res, out.converged  # pooled: use at once

    def _solve_direct(self, v3):
        h, w, channels = v3.shape
        x = np.zeros((channels, h + 2, w + 2))
        cf = self.mask.ravel()
        data = self.mask > 0
        for c in range(channels):
            rhs = np.where(data, v3[:, :, c], 0.0).ravel() * cf
            x[c, 1:-1, 1:-1] = self._lu.solve(rhs).reshape(h, w)
        return x


def _neumann_laplacian(h: int, w: int):
    """5-point Laplacian with reflecting boundaries as a SciPy sparse matrix (row-major)."""
    import scipy.sparse as sp  # noqa: PLC0415

    def second_difference(n):
        main = -2.0 * np.ones(n)
        main[0] += 1.0
        main[-1] += 1.0
        if n == 1:
            main[:] = 0.0
        off = np.ones(n - 1)
        return sp.diags([off, main, off], [-1, 0, 1], format="csr")

    return sp.kron(sp.eye(h), second_difference(w)) + sp.kron(second_difference(h), sp.eye(w))


def _direct_factor(mask: np.ndarray):
    """Sparse LU of the original equation (C - (I - C) A) u = C f, independent of the CG path."""
    require_scipy("the direct solver")
    import scipy.sparse as sp  # noqa: PLC0415
    import scipy.sparse.linalg as spl  # noqa: PLC0415

    h, w = mask.shape
    c = mask.ravel().astype(np.float64)
    system = sp.diags(c) - sp.diags(1.0 - c) @ _neumann_laplacian(h, w)
    return spl.splu(system.tocsc())


def _residual(mask_p: np.ndarray, v3: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Relative residual of the symmetric system on the unknowns, per channel."""
    hp, wp = mask_p.shape
    unk = np.zeros((hp, wp), np.uint8)
    diag = np.zeros((hp, wp))
    dinv = np.zeros((hp, wp))
    K.fine_setup(mask_p, unk, diag, dinv)
    b = np.zeros_like(x)
    K.fine_rhs(mask_p, v3, b)
    xu = x * unk
    r = np.zeros_like(x)
    K.fine_residual(unk, diag, b, xu, r)
    bn = np.sqrt((b * b).sum(axis=(1, 2)))
    return np.sqrt((r * r).sum(axis=(1, 2))) / np.where(bn > 0, bn, 1.0)


def inpaint(values, mask, *, solver: str = "auto", tol: float = DEFAULT_TOL, x0=None,
            max_iter: int = DEFAULT_MAX_ITER, return_info: bool = False):
    """Reconstruct an image from sparse data by homogeneous diffusion inpainting.

    Parameters
    ----------
    values : array_like, shape (H, W), (H, W, C), or for a batch of masks (B, H, W[, C])
        The data.  Only entries with ``mask > 0`` are read; they must be finite.  With a
        batch of masks, values of shape (H, W[, C]) are shared by every mask.
    mask : array_like, shape (H, W) or (B, H, W)
        Confidence in [0, 1], shared by all channels; 1 marks a known pixel.
    solver : {"auto", "numba", "cupy", "direct"}
        See :class:`Inpainter`.
    tol : float
        Relative residual of the CG solvers (default 1e-6).
    x0 : array_like, optional
        Warm start, shape of the result.
    max_iter : int
        Iteration limit of the CG solvers.
    return_info : bool
        Also return a :class:`SolveInfo` (a list of them for a batch).

    Returns
    -------
    u : ndarray
        The reconstruction, float32 for float32 values, float64 otherwise.

    Raises
    ------
    ValueError
        Shape mismatch, NaN/inf, mask outside [0, 1], a mask without any known pixel, an
        empty image, an unknown solver.
    RuntimeError
        ``solver="cupy"`` where CUDA is not usable.
    """
    m = _as_real_array(mask, "mask")
    if m.ndim != 3:
        return Inpainter(m, solver=solver).solve(
            values, tol=tol, x0=x0, max_iter=max_iter, return_info=return_info)
    v = _as_real_array(values, "values")
    batch = m.shape[0]
    if batch == 0:
        raise ValueError(f"the batch of masks is empty (shape {m.shape})")
    if v.ndim in (3, 4) and v.shape[:3] == m.shape:
        shared = False
    elif v.ndim in (2, 3) and v.shape[:2] == m.shape[1:]:
        shared = True
    else:
        raise ValueError(f"values shape {v.shape} does not match mask batch shape {m.shape}")
    if x0 is not None and np.shape(x0)[:1] != (batch,):
        raise ValueError(f"x0 shape {np.shape(x0)} does not match the batch of {batch} masks")
    outs, infos = [], []
    for k in range(batch):
        u, info = Inpainter(m[k], solver=solver).solve(
            v if shared else v[k], tol=tol, x0=None if x0 is None else np.asarray(x0)[k],
            max_iter=max_iter, return_info=True)
        outs.append(u)
        infos.append(info)
    u = np.stack(outs)
    return (u, infos) if return_info else u
