"""Numba kernels of the multigrid-preconditioned CG solver (CPU backend).

Layout conventions shared with :mod:`codec._multigrid`:

* Every grid array carries a ring of ghost cells: an ``H x W`` level is stored as
  ``(H + 2) x (W + 2)`` and vectors as ``(C, H + 2, W + 2)``.  Ghost values and all stencil
  coefficients that couple to ghosts are zero, which realises the reflecting (Neumann)
  boundary without a branch in the inner loops.
* Level 0 (the image grid) is the 5-point operator restricted to unknown pixels, stored
  implicitly: ``unk`` (1 for unknowns) and ``diag``; the off-diagonal coupling between two
  unknown neighbours is -1.  Vectors are kept zero at known pixels.
* Coarse levels hold a symmetric 9-point stencil in five planes ``st[k]`` with
  k = 0: centre, 1: west (i, j-1), 2: south (i-1, j), 3: south-west (i-1, j-1),
  4: south-east (i-1, j+1); the other four directions follow by symmetry.

Determinism: every output value is computed by one thread in a fixed order, and dot
products are summed per row then over rows sequentially, so results are bit-identical
whatever the thread count.  No ``fastmath``: IEEE semantics, no reassociation.
"""

import numpy as np
from numba import njit, prange

# ----------------------------------------------------------------------------- reductions


@njit(inline="always")
def _sum8(buf, n):
    """Sum of buf[:n] with eight interleaved accumulators.

    A single accumulator chain is bound by the FP-add latency; eight fixed chains let the
    compiler vectorise while the order of operations (hence the result) stays the same on
    every machine, unlike a compiler-reassociated (fastmath) reduction.
    """
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    k = 0
    while k + 8 <= n:
        s0 += buf[k]
        s1 += buf[k + 1]
        s2 += buf[k + 2]
        s3 += buf[k + 3]
        s4 += buf[k + 4]
        s5 += buf[k + 5]
        s6 += buf[k + 6]
        s7 += buf[k + 7]
        k += 8
    while k < n:
        s0 += buf[k]
        k += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True)
def sum_rows(partial, out):
    """out[c] = sum_i partial[c, i], sequentially (deterministic)."""
    for c in range(partial.shape[0]):
        s = 0.0
        for i in range(partial.shape[1]):
            s += partial[c, i]
        out[c] = s


@njit(parallel=True, cache=True)
def dot_rows(x, y, partial):
    """partial[c, i] = sum_j x[c, i, j] * y[c, i, j] over the interior of row i."""
    C, Hp, Wp = x.shape
    for i in prange(1, Hp - 1):
        buf = np.empty(Wp - 2)
        for c in range(C):
            for j in range(1, Wp - 1):
                buf[j - 1] = x[c, i, j] * y[c, i, j]
            partial[c, i] = _sum8(buf, Wp - 2)


# ----------------------------------------------------------------------------- level 0 set-up


@njit(parallel=True, cache=True)
def fine_setup(mask, unk, diag, dinv):
    """Level-0 operator from the padded confidence mask, and its l1-Jacobi weights.

    Unknown pixels are those with c < 1; their row of the SPD system is
    ``(deg + c / (1 - c)) u_i - sum_{unknown nbrs} u_j = rhs``.  The smoother divides by
    the l1 row norm ``diag + number of unknown neighbours`` (see :mod:`codec._multigrid`).
    """
    Hp, Wp = mask.shape
    H = Hp - 2
    W = Wp - 2
    for i in prange(Hp):
        for j in range(Wp):
            inside = 1 <= i <= H and 1 <= j <= W
            unk[i, j] = 1 if inside and mask[i, j] < 1.0 else 0
    for i in prange(1, H + 1):
        for j in range(1, W + 1):
            c = mask[i, j]
            if c < 1.0:
                deg = 0.0
                if i > 1:
                    deg += 1.0
                if i < H:
                    deg += 1.0
                if j > 1:
                    deg += 1.0
                if j < W:
                    deg += 1.0
                d = deg + c / (1.0 - c)
                off = float(unk[i - 1, j] + unk[i + 1, j] + unk[i, j - 1] + unk[i, j + 1])
                diag[i, j] = d
                dinv[i, j] = 1.0 / (d + off) if d > 0.0 else 0.0
            else:
                diag[i, j] = 0.0
                dinv[i, j] = 0.0


@njit(parallel=True, cache=True)
def coarse_l1_dinv(st, dinv):
    """Inverse l1 row norms of a 9-point level (0 on inactive rows)."""
    Hp, Wp = st.shape[1], st.shape[2]
    for i in prange(1, Hp - 1):
        for j in range(1, Wp - 1):
            a = st[0, i, j]
            if a <= 0.0:
                dinv[i, j] = 0.0
                continue
            off = (abs(st[1, i, j]) + abs(st[2, i, j]) + abs(st[3, i, j]) + abs(st[4, i, j])
                   + abs(st[1, i, j + 1]) + abs(st[2, i + 1, j]) + abs(st[3, i + 1, j + 1])
                   + abs(st[4, i + 1, j - 1]))
            dinv[i, j] = 1.0 / (a + off)


@njit(parallel=True, cache=True)
def fine_rhs(mask, f, b):
    """Right-hand side on unknowns, b = c/(1-c) f_i + sum of known (c = 1) neighbours' values.

    ``f`` is the caller's (H, W, C) array (any float dtype, not padded); it is read only
    where the mask is > 0, so anything (NaN included) may stand elsewhere.
    """
    C, Hp, Wp = b.shape
    H, W = Hp - 2, Wp - 2
    for i in prange(1, Hp - 1):
        for c in range(C):
            for j in range(1, Wp - 1):
                m = mask[i, j]
                if m < 1.0:
                    s = 0.0
                    if m > 0.0:
                        s = m / (1.0 - m) * f[i - 1, j - 1, c]
                    if i > 1 and mask[i - 1, j] == 1.0:
                        s += f[i - 2, j - 1, c]
                    if i < H and mask[i + 1, j] == 1.0:
                        s += f[i, j - 1, c]
                    if j > 1 and mask[i, j - 1] == 1.0:
                        s += f[i - 1, j - 2, c]
                    if j < W and mask[i, j + 1] == 1.0:
                        s += f[i - 1, j, c]
                    b[c, i, j] = s
                else:
                    b[c, i, j] = 0.0


@njit(parallel=True, cache=True)
def assemble(mask, f, x, u):
    """u (H, W, C) = f at known pixels (c = 1), the solution x elsewhere."""
    C, Hp, Wp = x.shape
    for i in prange(1, Hp - 1):
        for j in range(1, Wp - 1):
            known = mask[i, j] == 1.0
            for c in range(C):
                u[i - 1, j - 1, c] = f[i - 1, j - 1, c] if known else x[c, i, j]


# ----------------------------------------------------------------------------- level 0 operator


@njit(parallel=True, cache=True)
def fine_apply(unk, diag, x, out, partial):
    """out = A x (zero at known pixels) and partial[c, i] = row sums of x * out."""
    C, Hp, Wp = x.shape
    for i in prange(1, Hp - 1):
        buf = np.empty(Wp - 2)
        for c in range(C):
            for j in range(1, Wp - 1):
                v = diag[i, j] * x[c, i, j] - (
                    x[c, i - 1, j] + x[c, i + 1, j] + x[c, i, j - 1] + x[c, i, j + 1]
                )
                v = v * unk[i, j]
                out[c, i, j] = v
                buf[j - 1] = x[c, i, j] * v
            partial[c, i] = _sum8(buf, Wp - 2)


@njit(parallel=True, cache=True)
def fine_residual(unk, diag, b, x, out):
    """out = b - A x (``out`` may be ``b``)."""
    C, Hp, Wp = x.shape
    for i in prange(1, Hp - 1):
        for c in range(C):
            for j in range(1, Wp - 1):
                v = diag[i, j] * x[c, i, j] - (
                    x[c, i - 1, j] + x[c, i + 1, j] + x[c, i, j - 1] + x[c, i, j + 1]
                )
                out[c, i, j] = (b[c, i, j] - v) * unk[i, j]


@njit(parallel=True, cache=True)
def fine_presmooth(unk, diag, dinv, r, om, z, t):
    """One l1-Jacobi sweep from zero, z = om D_l1^-1 r, and its residual t = r - A z.

    A z needs z at the neighbours, which is recomputed from r there: one pass, no
    second sweep over z.
    """
    C, Hp, Wp = r.shape
    for i in prange(1, Hp - 1):
        for c in range(C):
            for j in range(1, Wp - 1):
                rc = r[c, i, j]
                nb = (
                    r[c, i - 1, j] * dinv[i - 1, j]
                    + r[c, i + 1, j] * dinv[i + 1, j]
                    + r[c, i, j - 1] * dinv[i, j - 1]
                    + r[c, i, j + 1] * dinv[i, j + 1]
                )
                zc = om * rc * dinv[i, j]
                z[c, i, j] = zc
                # r - (diag z_i - sum of neighbours' z), zero at known pixels
                t[c, i, j] = (rc - diag[i, j] * zc + om * nb) * unk[i, j]


@njit(parallel=True, cache=True)
def fine_postsmooth(unk, diag, dinv, r, z, om, out, partial):
    """out = z + om D^-1 (r - A z), and partial[c, i] = row sums of r * out."""
    C, Hp, Wp = z.shape
    for i in prange(1, Hp - 1):
        buf = np.empty(Wp - 2)
        for c in range(C):
            for j in range(1, Wp - 1):
                az = diag[i, j] * z[c, i, j] - (
                    z[c, i - 1, j] + z[c, i + 1, j] + z[c, i, j - 1] + z[c, i, j + 1]
                )
                v = z[c, i, j] + om * dinv[i, j] * (r[c, i, j] - az)
                out[c, i, j] = v
                buf[j - 1] = r[c, i, j] * v
            partial[c, i] = _sum8(buf, Wp - 2)


# ----------------------------------------------------------------------------- 9-point levels


@njit(inline="always")
def _apply9(st, x, c, i, j):
    return (
        st[0, i, j] * x[c, i, j]
        + st[1, i, j] * x[c, i, j - 1]
        + st[2, i, j] * x[c, i - 1, j]
        + st[3, i, j] * x[c, i - 1, j - 1]
        + st[4, i, j] * x[c, i - 1, j + 1]
        + st[1, i, j + 1] * x[c, i, j + 1]
        + st[2, i + 1, j] * x[c, i + 1, j]
        + st[3, i + 1, j + 1] * x[c, i + 1, j + 1]
        + st[4, i + 1, j - 1] * x[c, i + 1, j - 1]
    )


@njit(parallel=True, cache=True)
def coarse_presmooth(st, dinv, r, om, z, t):
    """z = om D^-1 r; t = r - A z (9-point), in two parallel passes."""
    C, Hp, Wp = r.shape
    for i in prange(Hp):
        for c in range(C):
            for j in range(Wp):
                z[c, i, j] = om * r[c, i, j] * dinv[i, j]
    for i in prange(1, Hp - 1):
        for c in range(C):
            for j in range(1, Wp - 1):
                t[c, i, j] = r[c, i, j] - _apply9(st, z, c, i, j)


@njit(parallel=True, cache=True)
def coarse_postsmooth(st, dinv, r, z, om, out):
    """out = z + om D^-1 (r - A z)."""
    C, Hp, Wp = z.shape
    for i in prange(1, Hp - 1):
        for c in range(C):
            for j in range(1, Wp - 1):
                out[c, i, j] = z[c, i, j] + om * dinv[i, j] * (r[c, i, j] - _apply9(st, z, c, i, j))


# ----------------------------------------------------------------------------- grid transfer


@njit(parallel=True, cache=True)
def restrict(t, fwy, fwx, sy, sx, out):
    """out = P^T t for the tensor-product linear interpolation P.

    Coarse point I (padded) gathers fine points ``s I - (s - 1) + (-1, 0, 1)`` (s = 2 on a
    coarsened axis, 1 otherwise) with weights ``fw[I, 0:3]``; out-of-range neighbours are
    ghosts with weight 0.  Separable: a contiguous pass over three fine rows, then the
    gather along x.
    """
    C, _, Wp = t.shape
    Hcp, Wcp = out.shape[1], out.shape[2]
    for ci in prange(1, Hcp - 1):
        iy = sy * ci - (sy - 1)
        a0, a1, a2 = fwy[ci, 0], fwy[ci, 1], fwy[ci, 2]
        row = np.empty(Wp)
        for c in range(C):
            for j in range(Wp):
                row[j] = a0 * t[c, iy - 1, j] + a1 * t[c, iy, j] + a2 * t[c, iy + 1, j]
            for cj in range(1, Wcp - 1):
                ix = sx * cj - (sx - 1)
                out[c, ci, cj] = (
                    fwx[cj, 0] * row[ix - 1] + fwx[cj, 1] * row[ix] + fwx[cj, 2] * row[ix + 1]
                )


@njit(parallel=True, cache=True)
def prolong_add(e, pwy, fwx, sy, sx, z, unk, masked):
    """z += P e (times the unknown indicator on level 0, where ``masked`` is True).

    Fine row i interpolates coarse rows ``(i + sy - 1) // sy`` and the next with weights
    ``pwy[i, 0:2]``.  Along a coarsened x axis, fine point 2J - 1 is coarse point J and
    fine point 2J lies between J and J + 1 with their column weights ``fwx`` (weight 0 on
    ghosts, which keeps the even-length border's constant extrapolation exact).
    """
    C, Hp, Wp = z.shape
    Wcp = e.shape[2]
    for i in prange(1, Hp - 1):
        y0 = (i + sy - 1) // sy
        y1 = y0 + 1 if sy == 2 else y0
        wy0 = pwy[i, 0]
        wy1 = pwy[i, 1]
        er = np.empty(Wcp)
        row = np.zeros(Wp)
        for c in range(C):
            for cj in range(Wcp):
                er[cj] = wy0 * e[c, y0, cj] + wy1 * e[c, y1, cj]
            if sx == 2:
                for cj in range(1, Wcp - 1):
                    row[2 * cj - 1] = er[cj]
                    row[2 * cj] = fwx[cj, 2] * er[cj] + fwx[cj + 1, 0] * er[cj + 1]
            else:
                for cj in range(1, Wcp - 1):
                    row[cj] = er[cj]
            if masked:
                for j in range(1, Wp - 1):
                    z[c, i, j] += row[j] * unk[i, j]
            else:
                for j in range(1, Wp - 1):
                    z[c, i, j] += row[j]


# ----------------------------------------------------------------------------- Galerkin products

@njit(inline="always")
def _restrict_patch(v, fwy, fwx, ci, cj, sy, sx, st):
    """st[:, ci, cj] = the five stored entries of P^T v, v the 5 x 5 fine patch around I.

    The patch is centred on fine point (sy ci - (sy - 1), sx cj - (sx - 1)); coarse point
    I + O has its centre at patch offset 2 + s O and its column weights fw[I + O].
    """
    for plane in range(5):
        oy = 0 if plane < 2 else -1
        ox = 0 if plane == 0 else (-1 if plane == 1 or plane == 3 else (0 if plane == 2 else 1))
        cy = ci + oy
        cx = cj + ox
        if cy < 1 or cx < 1 or cx > fwx.shape[0] - 2:
            st[plane, ci, cj] = 0.0
            continue
        py = 2 + sy * oy
        px = 2 + sx * ox
        s = 0.0
        for a in range(3):
            wy = fwy[cy, a]
            r = py - 1 + a
            if wy == 0.0 or r < 0:  # rows above the patch: A applied to the hat is zero there
                continue
            for k in range(3):
                q = px - 1 + k
                if 0 <= q <= 4:
                    s += wy * fwx[cx, k] * v[r, q]
        st[plane, ci, cj] = s


@njit(parallel=True, cache=True)
def rap_fine(unk, diag, fwy, fwx, sy, sx, st):
    """Galerkin coarse operator P'^T A P' of the level-0 operator, P' = diag(unk) P.

    Per coarse point I: apply A to its (masked) hat function, giving a 5 x 5 fine patch,
    then restrict the patch to the stored neighbours of I.
    """
    Hp, Wp = unk.shape
    Hcp, Wcp = st.shape[1], st.shape[2]
    for ci in prange(1, Hcp - 1):
        v = np.zeros((5, 5))
        iy = sy * ci - (sy - 1)
        for cj in range(1, Wcp - 1):
            ix = sx * cj - (sx - 1)
            v[:, :] = 0.0
            for a in range(3):
                wy = fwy[ci, a]
                if wy == 0.0:
                    continue
                y = iy - 1 + a
                for k in range(3):
                    x = ix - 1 + k
                    h = wy * fwx[cj, k]
                    if h == 0.0 or unk[y, x] == 0:
                        continue
                    # column (y, x) of A times h: diagonal and -1 to unknown neighbours
                    v[a + 1, k + 1] += diag[y, x] * h
                    if unk[y - 1, x]:
                        v[a, k + 1] -= h
                    if unk[y + 1, x]:
                        v[a + 2, k + 1] -= h
                    if unk[y, x - 1]:
                        v[a + 1, k] -= h
                    if unk[y, x + 1]:
                        v[a + 1, k + 2] -= h
            _restrict_patch(v, fwy, fwx, ci, cj, sy, sx, st)


# Neighbour offsets of the 9-point stencil and where each coefficient is stored:
# a(i, i + d) = st[_PLANE[n], i + (_SY[n], _SX[n])] for d = (_DY[n], _DX[n]).
_DY = np.array([0, 0, -1, -1, -1, 0, 1, 1, 1])
_DX = np.array([0, -1, 0, -1, 1, 1, 0, 1, -1])
_PLANE = np.array([0, 1, 2, 3, 4, 1, 2, 3, 4])
_SY = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
_SX = np.array([0, 0, 0, 0, 0, 1, 0, 1, -1])


@njit(parallel=True, cache=True)
def rap_coarse(sf, fwy, fwx, sy, sx, st):
    """Galerkin coarse operator P^T A P of a 9-point level (same patch scheme)."""
    Hcp, Wcp = st.shape[1], st.shape[2]
    for ci in prange(1, Hcp - 1):
        v = np.zeros((5, 5))
        iy = sy * ci - (sy - 1)
        for cj in range(1, Wcp - 1):
            ix = sx * cj - (sx - 1)
            v[:, :] = 0.0
            for a in range(3):
                wy = fwy[ci, a]
                if wy == 0.0:
                    continue
                y = iy - 1 + a
                for k in range(3):
                    h = wy * fwx[cj, k]
                    if h == 0.0:
                        continue
                    x = ix - 1 + k
                    for n in range(9):
                        v[a + 1 + _DY[n], k + 1 + _DX[n]] += (
                            sf[_PLANE[n], y + _SY[n], x + _SX[n]] * h
                        )
            _restrict_patch(v, fwy, fwx, ci, cj, sy, sx, st)


# ----------------------------------------------------------------------------- coarsest level


@njit(cache=True)
def dense_from_fine(unk, diag):
    """Dense matrix of the level-0 operator (small grids only), row-major pixel order."""
    Hp, Wp = unk.shape
    H, W = Hp - 2, Wp - 2
    n = H * W
    A = np.zeros((n, n))
    for i in range(1, H + 1):
        for j in range(1, W + 1):
            p = (i - 1) * W + (j - 1)
            if unk[i, j] == 0:
                continue
            A[p, p] = diag[i, j]
            if i > 1 and unk[i - 1, j]:
                A[p, p - W] = -1.0
            if i < H and unk[i + 1, j]:
                A[p, p + W] = -1.0
            if j > 1 and unk[i, j - 1]:
                A[p, p - 1] = -1.0
            if j < W and unk[i, j + 1]:
                A[p, p + 1] = -1.0
    return A


@njit(cache=True)
def dense_from_stencil(st):
    """Dense matrix of a 9-point level (small grids only), row-major order."""
    Hp, Wp = st.shape[1], st.shape[2]
    H, W = Hp - 2, Wp - 2
    n = H * W
    A = np.zeros((n, n))
    for i in range(1, H + 1):
        for j in range(1, W + 1):
            p = (i - 1) * W + (j - 1)
            for k in range(9):
                ni = i + _DY[k]
                nj = j + _DX[k]
                if ni < 1 or ni > H or nj < 1 or nj > W:
                    continue
                coef = st[_PLANE[k], i + _SY[k], j + _SX[k]]
                A[p, (ni - 1) * W + (nj - 1)] = coef
    return A


@njit(cache=True)
def pseudo_inverse_spd(A):
    """Inverse of a symmetric positive semi-definite matrix on its numerically regular part.

    Cholesky with pivots below ``1e-12 * max(diag)`` dropped (their rows and columns are
    treated as absent); sequential loops, so the result is the same on every machine.
    """
    n = A.shape[0]
    L = np.zeros((n, n))
    keep = np.zeros(n, dtype=np.bool_)
    dmax = 0.0
    for i in range(n):
        if A[i, i] > dmax:
            dmax = A[i, i]
    eps = 1e-12 * dmax
    for j in range(n):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if s <= eps or A[j, j] <= 0.0:
            continue
        keep[j] = True
        d = np.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, n):
            t = A[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / d
    inv = np.zeros((n, n))
    y = np.zeros(n)
    for col in range(n):
        if not keep[col]:
            continue
        # solve L y = e_col, then L^T x = y, on kept indices only
        for i in range(n):
            y[i] = 0.0
        for i in range(n):
            if not keep[i]:
                continue
            t = 1.0 if i == col else 0.0
            for k in range(i):
                t -= L[i, k] * y[k]
            y[i] = t / L[i, i]
        for i in range(n - 1, -1, -1):
            if not keep[i]:
                y[i] = 0.0
                continue
            t = y[i]
            for k in range(i + 1, n):
                t -= L[k, i] * y[k]
            y[i] = t / L[i, i]
        for i in range(n):
            inv[i, col] = y[i]
    return inv


@njit(cache=True)
def coarsest_solve(inv, r, z):
    """z = inv r on the interior of a small padded grid (sequential, deterministic)."""
    C, Hp, Wp = r.shape
    H, W = Hp - 2, Wp - 2
    n = H * W
    for c in range(C):
        for p in range(n):
            s = 0.0
            for q in range(n):
                s += inv[p, q] * r[c, q // W + 1, q % W + 1]
            z[c, p // W + 1, p % W + 1] = s


# ----------------------------------------------------------------------------- CG updates


@njit(parallel=True, cache=True)
def cg_update_xr(x, r, p, q, alpha, partial):
    """x += alpha p; r -= alpha q (per channel); partial[c, i] = row sums of r * r."""
    C, Hp, Wp = x.shape
    for i in prange(1, Hp - 1):
        buf = np.empty(Wp - 2)
        for c in range(C):
            a = alpha[c]
            for j in range(1, Wp - 1):
                x[c, i, j] += a * p[c, i, j]
                v = r[c, i, j] - a * q[c, i, j]
                r[c, i, j] = v
                buf[j - 1] = v * v
            partial[c, i] = _sum8(buf, Wp - 2)


@njit(parallel=True, cache=True)
def cg_update_p(z, beta, p):
    """p = z + beta p (per channel)."""
    C, Hp, Wp = p.shape
    for i in prange(1, Hp - 1):
        for c in range(C):
            bt = beta[c]
            for j in range(1, Wp - 1):
                p[c, i, j] = z[c, i, j] + bt * p[c, i, j]
