"""Why the CPU solver is multigrid-preconditioned CG: iterations and time per design.

    python benchmarks/bench_solver_design.py [--size 512] [--write-results]

On the cameraman (bundled with scikit-image) resized to SIZE x SIZE, for random masks of
1, 4 and 30 %, a 4 % Laplacian-magnitude ("Belhachmi-like") mask and a non-binary mask,
it counts the CG iterations to a relative residual of 1e-6 of the same SPD system

* without preconditioner (SciPy's ``cg`` on the assembled sparse matrix),
* with a Jacobi (diagonal) preconditioner (SciPy's ``cg``),
* with inpcodec's Galerkin multigrid V-cycle (the ``numba`` solver),

and the wall time of the inpcodec solve.  Iteration counts are machine-independent; they
are what the choice rests on (one V-cycle costs about four stencil sweeps, so the
multigrid iteration must save more than that factor in iterations to pay).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from _results import write_section
from scipy.ndimage import gaussian_filter, laplace

HERE = Path(__file__).resolve().parent
MARK = "bench_solver_design"


def spd_system(f, c):
    """The symmetric system on unknowns (c < 1), assembled with SciPy."""
    h, w = f.shape

    def d2(n):
        main = -2.0 * np.ones(n)
        main[0] += 1
        main[-1] += 1
        return sp.diags([np.ones(n - 1), main, np.ones(n - 1)], [-1, 0, 1])

    lap = -(sp.kron(sp.eye(h), d2(w)) + sp.kron(d2(h), sp.eye(w))).tocsr()
    cf = c.ravel()
    unk = np.flatnonzero(cf < 1)
    known = cf == 1
    d = cf[unk] / (1 - cf[unk])
    A = lap[unk][:, unk] + sp.diags(d)
    fk = np.where(known, f.ravel(), 0.0)
    b = -(lap[unk] @ fk) + d * f.ravel()[unk]
    return A.tocsr(), b


def count_cg(A, b, M=None):
    it = [0]

    def cb(_):
        it[0] += 1

    spl.cg(A, b, rtol=1e-6, atol=0.0, maxiter=20000, M=M, callback=cb)
    return it[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    from skimage import data
    from skimage.transform import resize

    from inpcodec.codec import inpaint

    n = args.size
    f = resize(data.camera().astype(float), (n, n), order=3, anti_aliasing=True)
    rng = np.random.default_rng(0)
    lap = np.abs(laplace(gaussian_filter(f, 1.0)))
    masks = {
        "random 1 %": (rng.random(f.shape) < 0.01).astype(float),
        "random 4 %": (rng.random(f.shape) < 0.04).astype(float),
        "random 30 %": (rng.random(f.shape) < 0.30).astype(float),
        "Laplacian-magnitude 4 %": (rng.random(f.shape) < np.clip(lap / lap.mean() * 0.04, 0, 1)
                                    ).astype(float),
        "non-binary (c = U^8, U uniform)": rng.random(f.shape) ** 8,
    }
    rows = []
    for name, c in masks.items():
        A, b = spd_system(f, c)
        plain = count_cg(A, b)
        dinv = 1.0 / A.diagonal()
        jac = count_cg(A, b, spl.LinearOperator(A.shape, matvec=lambda r, d=dinv: d * r))
        inpaint(f, c, solver="numba")  # warm
        t0 = time.perf_counter()
        _, info = inpaint(f, c, solver="numba", return_info=True)
        rows.append((name, plain, jac, info.iterations, (time.perf_counter() - t0) * 1e3))
        print(rows[-1])
    text = "\n".join([
        f"Command: `python benchmarks/bench_solver_design.py --size {n} --write-results` "
        f"({n}x{n} cameraman, relative residual 1e-6).",
        "",
        "| mask | CG iterations | Jacobi-PCG iterations | multigrid-PCG iterations | "
        "multigrid-PCG decode (ms) |",
        "|---|---:|---:|---:|---:|",
        *[f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} |" for r in rows],
    ])
    print(text)
    if args.write_results:
        write_section(MARK, "### Solver design: iterations per method", text)


if __name__ == "__main__":
    main()
