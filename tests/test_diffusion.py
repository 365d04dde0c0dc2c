"""Homogeneous diffusion inpainting against independent references.

References: SciPy's sparse LU of the original (unsymmetric) equation C (u - f) - (I - C) A u = 0
(``solver="direct"``, assembled from scratch with SciPy), SciPy sparse Galerkin products for
the multigrid hierarchy, and hand-computed cases.
"""

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter, laplace

from inpcodec.codec import Inpainter, gpu_status, inpaint
from inpcodec.codec import _multigrid as MG

GREY_TOL = 0.01  # maximum absolute difference on the 0-255 scale


def smooth_image(h, w, seed=0, channels=None):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels is None else (h, w, channels)
    noise = rng.standard_normal(shape)
    sig = (3, 3) if channels is None else (3, 3, 0)
    img = gaussian_filter(noise, sig)
    img = (img - img.min()) / (np.ptp(img) + 1e-12) * 255.0
    return img + 5.0 * rng.standard_normal(shape)  # texture at the pixel scale too


def random_mask(h, w, density, seed=1):
    rng = np.random.default_rng(seed)
    m = (rng.random((h, w)) < density).astype(np.float64)
    if m.sum() == 0:
        m[h // 2, w // 2] = 1.0
    return m


def structured_mask(img, density, seed=2):
    """Belhachmi-like: density proportional to the Laplacian magnitude, sampled."""
    lap = np.abs(laplace(gaussian_filter(img, 1.0)))
    p = np.clip(lap / lap.mean() * density, 0, 1)
    rng = np.random.default_rng(seed)
    return (rng.random(img.shape) < p).astype(np.float64)


def direct(values, mask):
    return inpaint(values, mask, solver="direct")


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("density", [0.01, 0.05, 0.30])
@pytest.mark.parametrize("shape", [(64, 80), (37, 61)])
def test_random_masks_match_direct(density, shape):
    f = smooth_image(*shape)
    m = random_mask(*shape, density)
    u, info = inpaint(f, m, solver="numba", return_info=True)
    assert info.converged and info.residual <= 1e-6
    assert np.abs(u - direct(f, m)).max() < GREY_TOL


def test_structured_masks_match_direct():
    f = smooth_image(96, 72, seed=3)
    for m in (
        structured_mask(f, 0.04),
        np.pad(np.ones((4, 4)), ((20, 72), (30, 38))),  # one block: large empty regions
        np.eye(96, 72),  # a diagonal line
    ):
        u = inpaint(f, m, solver="numba")
        assert np.abs(u - direct(f, m)).max() < GREY_TOL


def test_solve_in_place_gives_the_same_plane():
    img = smooth_image(40, 52, seed=4, channels=3)
    mask = random_mask(40, 52, 0.05, seed=5)
    ip = Inpainter(mask, solver="numba")
    want = ip.solve(img[:, :, 1])
    planes = img.copy()
    got = ip.solve(planes[:, :, 1], out=planes[:, :, 1])  # a strided view, in place
    assert got is not None and np.array_equal(planes[:, :, 1], want)
    np.testing.assert_array_equal(planes[:, :, [0, 2]], img[:, :, [0, 2]])  # untouched
    np.testing.assert_allclose(want, direct(img[:, :, 1], mask), atol=GREY_TOL)
    with pytest.raises(ValueError, match="out must be"):
        ip.solve(img[:, :, 1], out=np.empty((40, 51)))


def test_nonbinary_mask_matches_direct():
    f = smooth_image(50, 70, seed=4)
    rng = np.random.default_rng(5)
    m = rng.random(f.shape) ** 4  # mostly small confidences, a few near 1
    m[rng.random(f.shape) < 0.02] = 1.0
    u, info = inpaint(f, m, solver="numba", tol=1e-9, return_info=True)
    assert info.residual <= 1e-9
    ref = direct(f, m)
    assert np.abs(u - ref).max() < GREY_TOL
    # where 0 < c < 1 the solution is a genuine blend, not the data
    part = (m > 0.5) & (m < 1)
    assert np.abs(u - f)[part].max() > 1e-3


def test_strongly_nonbinary_mask_regression():
    """c = U^8 on the cameraman: confidences over many orders of magnitude.

    With plain damped Jacobi (omega 0.8 on a_ii) this exact case made the V-cycle
    indefinite and CG broke down after 6 iterations; the l1-Jacobi smoother keeps it SPD.
    """
    from inpcodec.codec.data import cameraman

    f = cameraman().astype(float)
    c = np.random.default_rng(2).random(f.shape) ** 8
    u, info = inpaint(f, c, solver="numba", return_info=True)
    assert info.converged and info.iterations <= 20 and info.residual <= 1e-6


@pytest.mark.parametrize("kind", ["binary", "nonbinary"])
def test_vcycle_preconditioner_is_spd(kind):
    """M^-1 as a dense matrix (V-cycle applied to unit vectors): symmetric, positive definite."""
    rng = np.random.default_rng(3)
    shape = (19, 24)
    c = (rng.random(shape) < 0.08).astype(float) if kind == "binary" else rng.random(shape) ** 8
    mp = np.pad(c, 1)
    MGdt, MG.PRECONDITIONER_DTYPE = MG.PRECONDITIONER_DTYPE, np.float64  # exact symmetry
    try:
        hier = MG.build_hierarchy(mp)
    finally:
        MG.PRECONDITIONER_DTYPE = MGdt
    be = MG.NumbaBackend(hier)
    ws = be.workspace(1)
    idx = np.flatnonzero(hier.unk[1:-1, 1:-1].ravel())
    M = np.zeros((idx.size, idx.size))
    for k, p in enumerate(idx):
        r = np.zeros((1, shape[0] + 2, shape[1] + 2))
        r[0, 1 + p // shape[1], 1 + p % shape[1]] = 1.0
        MG.vcycle(be, hier, ws, r)
        M[:, k] = ws.T[0, 1:-1, 1:-1].ravel()[idx]
    np.testing.assert_allclose(M, M.T, atol=1e-6 * np.abs(M).max())  # rounding only
    assert np.linalg.eigvalsh(0.5 * (M + M.T)).min() > 0


def test_colour_matches_direct_per_channel():
    f = smooth_image(40, 52, seed=6, channels=3)
    m = random_mask(40, 52, 0.05)
    u = inpaint(f, m, solver="numba")
    assert u.shape == f.shape
    for c in range(3):
        assert np.abs(u[..., c] - direct(f[..., c], m)).max() < GREY_TOL


def test_direct_hand_computed_linear():
    # 1 x 5 with both ends known: harmonic = linear interpolation
    f = np.array([[10.0, 0, 0, 0, 50.0]])
    m = np.array([[1.0, 0, 0, 0, 1.0]])
    expect = np.array([[10.0, 20, 30, 40, 50]])
    for solver in ("direct", "numba"):
        np.testing.assert_allclose(inpaint(f, m, solver=solver), expect, atol=1e-6)
    # reflecting boundary: with one known end the solution is constant
    m2 = np.array([[0.0, 0, 1.0, 0, 0]])
    f2 = np.array([[0.0, 0, 7.0, 0, 0]])
    np.testing.assert_allclose(inpaint(f2, m2, solver="direct"), 7.0, atol=1e-12)


def test_nonbinary_hand_computed():
    # two pixels, c = (1, 1/2): u1 = f1; row 2 divided by 1/2: (1 + 1) u2 - u1 = f2
    f = np.array([[4.0, 10.0]])
    m = np.array([[1.0, 0.5]])
    for solver in ("direct", "numba"):
        np.testing.assert_allclose(inpaint(f, m, solver=solver), [[4.0, 7.0]], atol=1e-9)


# ----------------------------------------------------------------------------- multigrid set-up


def _dense_level0(mask):
    """SciPy assembly of the SPD operator on unknowns (zero rows/cols at known pixels)."""
    h, w = mask.shape

    def d2(n):
        main = -2.0 * np.ones(n)
        main[0] += 1
        main[-1] += 1
        if n == 1:
            main[:] = 0
        return sp.diags([np.ones(n - 1), main, np.ones(n - 1)], [-1, 0, 1])

    lap = -(sp.kron(sp.eye(h), d2(w)) + sp.kron(d2(h), sp.eye(w)))
    c = mask.ravel()
    unk = (c < 1).astype(float)
    U = sp.diags(unk)
    return (U @ lap @ U + sp.diags(unk * c / np.where(c < 1, 1 - c, 1))).tocsr(), unk


def _interp(n):
    nc = (n + 1) // 2
    P = np.zeros((n, nc))
    for i in range(n):
        if i % 2 == 0:
            P[i, i // 2] = 1
        elif (i + 1) // 2 < nc:
            P[i, (i - 1) // 2] = P[i, (i + 1) // 2] = 0.5
        else:
            P[i, (i - 1) // 2] = 1
    return P


def _stencil_to_dense(st):
    hp, wp = st.shape[1:]
    h, w = hp - 2, wp - 2
    A = np.zeros((h * w, h * w))
    for i in range(h):
        for j in range(w):
            p = i * w + j
            for plane, (dy, dx) in enumerate([(0, 0), (0, -1), (-1, 0), (-1, -1), (-1, 1)]):
                ni, nj = i + dy, j + dx
                if 0 <= ni < h and 0 <= nj < w:
                    A[p, ni * w + nj] = A[ni * w + nj, p] = st[plane, i + 1, j + 1]
    return A


@pytest.mark.parametrize("shape", [(24, 30), (23, 17)])
def test_galerkin_coarse_operators_match_scipy(shape):
    rng = np.random.default_rng(7)
    mask = (rng.random(shape) < 0.1).astype(float)
    mask[rng.random(shape) < 0.05] = 0.3
    mp = np.pad(mask, 1)
    hier = MG.build_hierarchy(mp)
    A, unk = _dense_level0(mask)
    P = np.kron(_interp(shape[0]), _interp(shape[1]))
    Ac = (P.T * unk) @ A.toarray() @ (unk[:, None] * P)
    np.testing.assert_allclose(_stencil_to_dense(hier.stencils[0]), Ac, atol=1e-12)
    if len(hier.stencils) > 1:
        h1, w1 = hier.level_shape(1)
        P1 = np.kron(_interp(h1), _interp(w1))
        np.testing.assert_allclose(_stencil_to_dense(hier.stencils[1]), P1.T @ Ac @ P1,
                                   atol=1e-11)


def test_array_backend_matches_numba():
    """The array-module path (what runs on CuPy) agrees with the Numba kernels."""
    f = smooth_image(70, 45, seed=8, channels=2)
    m = random_mask(70, 45, 0.04)
    ip = Inpainter(m, solver="numba")
    u_nb, info_nb = ip.solve(f, return_info=True)
    ip._backend = MG.ArrayBackend(ip.hierarchy, np)
    u_arr, info_arr = ip.solve(f, return_info=True)
    assert abs(info_nb.iterations - info_arr.iterations) <= 1
    assert np.abs(u_nb - u_arr).max() < 1e-6


def test_single_precision_working_vectors_match_direct():
    """The encoder's float32 solves (ESTIMATE_DTYPE) reach the reference to about 1e-5 of
    the grey range; the float64 solver after them (same shape: the workspace pool) is
    unchanged, bit for bit."""
    f = smooth_image(64, 80, seed=13, channels=2)
    m = random_mask(64, 80, 0.05)
    before = Inpainter(m, solver="numba").solve(f)
    ip = Inpainter(m, solver="numba", dtype=np.float32)
    u, info = ip.solve(f, tol=1e-5, return_info=True)
    assert info.converged and u.dtype == np.float64
    assert np.abs(u - direct(f, m)).max() < 0.01
    y = ip.solve_unknowns(f, tol=1e-5)
    y64 = Inpainter(m, solver="numba").solve_unknowns(f, tol=1e-8)
    assert y.dtype == np.float64 and np.abs(y - y64).max() < 1e-2 * np.abs(y64).max()
    np.testing.assert_array_equal(Inpainter(m, solver="numba").solve(f), before)
    ip._backend = MG.ArrayBackend(ip.hierarchy, np)  # the GPU path's algorithm, in float32
    assert np.abs(ip.solve(f, tol=1e-5) - u).max() < 0.01
    with pytest.raises(ValueError, match="float32 or float64"):
        Inpainter(m, dtype=np.float16)


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("shape", [(1, 57), (57, 1), (1, 1), (2, 2), (1, 300), (3, 513)])
def test_thin_and_tiny_images(shape):
    f = smooth_image(*shape) if min(shape) > 1 else np.linspace(0, 255, shape[0] * shape[1])
    f = f.reshape(shape)
    m = np.zeros(shape)
    m.flat[:: max(1, m.size // 5)] = 1.0
    u = inpaint(f, m, solver="numba")
    assert np.abs(u - direct(f, m)).max() < GREY_TOL


def test_single_known_pixel_gives_constant():
    f = smooth_image(33, 47)
    m = np.zeros_like(f)
    m[10, 20] = 1.0
    u = inpaint(f, m, solver="numba")
    np.testing.assert_allclose(u, f[10, 20], atol=1e-3)


def test_full_mask_returns_values():
    f = smooth_image(20, 30)
    u, info = inpaint(f, np.ones_like(f), return_info=True, solver="numba")
    np.testing.assert_array_equal(u, f)
    assert info.iterations == 0


def test_known_pixels_exact_and_dtypes():
    f64 = smooth_image(30, 40)
    m = random_mask(30, 40, 0.1)
    known = m == 1
    u32 = inpaint(f64.astype(np.float32), m, solver="numba")
    assert u32.dtype == np.float32
    np.testing.assert_array_equal(u32[known], f64.astype(np.float32)[known])
    u64 = inpaint(f64, m, solver="numba")
    assert u64.dtype == np.float64
    np.testing.assert_array_equal(u64[known], f64[known])
    assert np.abs(u32 - u64).max() < GREY_TOL
    uint = inpaint(np.round(f64).astype(np.uint8), m.astype(bool), solver="numba")
    assert uint.dtype == np.float64


def test_nan_outside_the_mask_is_ignored():
    f = smooth_image(30, 40)
    m = random_mask(30, 40, 0.1)
    g = f.copy()
    g[m == 0] = np.nan
    np.testing.assert_allclose(inpaint(g, m, solver="numba"), inpaint(f, m, solver="numba"))


def test_zero_data_channel():
    f = np.zeros((20, 20, 2))
    f[..., 1] = 9.0
    m = random_mask(20, 20, 0.1)
    u = inpaint(f, m, solver="numba")
    assert np.all(u[..., 0] == 0)
    np.testing.assert_allclose(u[..., 1], 9.0, atol=1e-4)


# ------------------------------------------------------------------------- reuse and warm starts


def test_warm_start_saves_iterations_and_exact_start_needs_none():
    f = smooth_image(80, 80, seed=9)
    m = random_mask(80, 80, 0.04)
    ip = Inpainter(m, solver="numba")
    u, cold = ip.solve(f, return_info=True)
    _, exact = ip.solve(f, x0=u, return_info=True)
    assert exact.iterations <= 1
    near = u + np.random.default_rng(0).normal(0, 0.5, u.shape)
    u2, warm = ip.solve(f, x0=near, return_info=True)
    assert warm.iterations < cold.iterations
    assert np.abs(u2 - u).max() < GREY_TOL


def test_channels_and_batches_equal_separate_solves():
    f = smooth_image(30, 36, seed=10, channels=3)
    m = random_mask(30, 36, 0.06)
    u = inpaint(f, m, solver="numba", tol=1e-10)
    for c in range(3):
        np.testing.assert_allclose(u[..., c], inpaint(f[..., c], m, solver="numba", tol=1e-10),
                                   atol=1e-6)
    masks = np.stack([random_mask(30, 36, d, seed=s) for s, d in ((1, 0.03), (2, 0.1))])
    ub, infos = inpaint(f[..., 0], masks, solver="numba", return_info=True)
    assert ub.shape == (2, 30, 36) and len(infos) == 2
    for k in range(2):
        np.testing.assert_allclose(ub[k], inpaint(f[..., 0], masks[k], solver="numba"))


def test_same_result_for_any_thread_count():
    f = smooth_image(120, 90, seed=11, channels=2)
    m = random_mask(120, 90, 0.03)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        u1 = inpaint(f, m, solver="numba")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        u2 = inpaint(f, m, solver="numba")
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(u1, u2)


# ----------------------------------------------------------------------------- input errors


@pytest.mark.parametrize(
    "values, mask, message",
    [
        (np.zeros((4, 5)), np.ones((5, 4)), "does not match mask shape"),
        (np.zeros((4, 5)), np.full((4, 5), 1.5), r"must lie in \[0, 1\]"),
        (np.zeros((4, 5)), np.full((4, 5), -0.1), r"must lie in \[0, 1\]"),
        (np.zeros((4, 5)), np.zeros((4, 5)), "no known pixel"),
        (np.zeros((4, 5)), np.zeros((4, 5), bool), "no known pixel"),
        (np.zeros((4, 5)), np.ones((2, 4, 5, 1), bool), "2-D"),
        (np.zeros((0, 5)), np.zeros((0, 5), bool), "empty"),
        (np.zeros((0, 5)), np.zeros((0, 5)), "empty"),
        (np.zeros((4, 5)), np.full((4, 5), np.nan), "NaN"),
        (np.full((4, 5), np.inf), np.ones((4, 5)), "NaN or infinite"),
        (np.zeros((4, 5)), np.ones((2, 4, 5, 1)), "2-D"),
        (np.zeros((4, 5), complex), np.ones((4, 5)), "real numeric"),
        (np.zeros((4, 5, 0)), np.ones((4, 5)), "no channels"),
    ],
)
def test_bad_input_is_refused_clearly(values, mask, message):
    with pytest.raises(ValueError, match=message):
        inpaint(values, mask, solver="numba")


def test_a_boolean_mask_solves_as_its_float_twin():
    # boolean masks (the codec's) are taken as they are, without a float64 copy
    rng = np.random.default_rng(5)
    m = rng.random((37, 53)) < 0.05
    f = rng.uniform(0, 255, m.shape)
    for dtype in (np.float32, np.float64):
        a = Inpainter(m, dtype=dtype).solve(f, tol=1e-8)
        b = Inpainter(m.astype(np.float64), dtype=dtype).solve(f, tol=1e-8)
        np.testing.assert_array_equal(a, b)


def test_bad_options_are_refused():
    f, m = np.zeros((4, 5)), np.ones((4, 5))
    with pytest.raises(ValueError, match="unknown solver"):
        inpaint(f, m, solver="magic")
    with pytest.raises(ValueError, match="tol"):
        inpaint(f, m, tol=0)
    with pytest.raises(ValueError, match="x0 shape"):
        inpaint(f, m, x0=np.zeros((5, 4)))


@pytest.mark.skipif(gpu_status()[0], reason="a GPU is present")
def test_cupy_solver_unavailable_message():
    with pytest.raises(RuntimeError, match="not available"):
        inpaint(np.zeros((4, 4)), np.ones((4, 4)), solver="cupy")


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_status()[0], reason=f"CuPy solver unusable: {gpu_status()[1]}")
def test_cupy_matches_numba_and_direct():
    f = smooth_image(96, 130, seed=12, channels=3)
    m = random_mask(96, 130, 0.04)
    u_gpu, info = inpaint(f, m, solver="cupy", return_info=True)
    assert info.solver == "cupy" and info.converged
    assert np.abs(u_gpu - inpaint(f, m, solver="numba")).max() < 1e-4
    assert np.abs(u_gpu[..., 0] - direct(f[..., 0], m)).max() < GREY_TOL
    assert inpaint(f, m, return_info=True)[1].solver == "cupy"  # auto picks the GPU
