"""PS, NLPE and tonal optimisation."""

import numpy as np
import pytest
from _images import natural_like

from inpcodec.baselines import (
    belhachmi_mask,
    nonlocal_pixel_exchange,
    probabilistic_sparsification,
)
from inpcodec.codec import Inpainter, inpaint
from inpcodec.codec.progress import Budget
from inpcodec.codec.tonal import _Operator, tonal_optimisation


def err(f, m, values=None):
    """MSE against f of the reconstruction from ``values`` (default f) on mask m."""
    u = inpaint(f if values is None else values, m, tol=1e-10)
    return float(np.mean((u - f) ** 2))


# ----------------------------------------------------------------------------- PS


@pytest.mark.parametrize("density", [0.02, 0.05, 0.1])
def test_ps_density_is_exact(density):
    f = natural_like(40, 48)
    res = probabilistic_sparsification(f, density, runs=2)
    assert res.mask.dtype == bool and res.mask.sum() == round(density * f.size)
    assert res.inpaintings == sum(res.info["run_steps"]) + len(res.info["run_mse"])
    assert res.info["mse"] == min(res.info["run_mse"])
    assert res.info["mse"] == pytest.approx(err(f, res.mask), rel=1e-6)


def test_ps_step_count_follows_p_times_q():
    f = natural_like(32, 32)
    res = probabilistic_sparsification(f, 0.1, p=0.1, q=0.05, runs=1)
    # each step removes p q = 0.5 % of the mask: about log(0.1) / log(0.995) = 459 steps
    # (integer rounding of the counts shifts it a little); q read as "fraction put
    # back" would take about 24
    assert 410 <= res.info["run_steps"][0] <= 500


def test_ps_beats_random_and_is_deterministic():
    f = natural_like(48, 48, seed=1)
    a = probabilistic_sparsification(f, 0.05, runs=1, seed=3)
    b = probabilistic_sparsification(f, 0.05, runs=1, seed=3)
    np.testing.assert_array_equal(a.mask, b.mask)
    rng = np.random.default_rng(0)
    rand = np.zeros(f.size, bool)
    rand[rng.choice(f.size, a.mask.sum(), replace=False)] = True
    assert a.info["mse"] < err(f, rand.reshape(f.shape))


def test_ps_budget_still_hits_the_density():
    f = natural_like(40, 40)
    res = probabilistic_sparsification(f, 0.05, runs=3, max_inpaintings=20)
    assert res.mask.sum() == 80
    assert res.info["runs"] == 1 and res.inpaintings <= 22


# ----------------------------------------------------------------------------- NLPE


def test_nlpe_never_increases_mse_and_keeps_density():
    f = natural_like(48, 48, seed=2)
    start = np.random.default_rng(3).random(f.shape) < 0.05  # room for improvement
    res = nonlocal_pixel_exchange(f, start, cycles=2, seed=1)
    assert res.mask.sum() == start.sum()
    hist = np.array(res.info["history"])
    assert np.all(np.diff(hist) < 0)
    assert res.info["mse"] <= res.info["mse_before"]
    assert res.info["accepted"] > 0  # it does find improvements on a random mask
    assert err(f, res.mask) == pytest.approx(res.info["mse"], rel=1e-5)
    assert res.info["trials"] == round(2 * start.sum() / 10)
    again = nonlocal_pixel_exchange(f, start, cycles=2, seed=1)
    np.testing.assert_array_equal(res.mask, again.mask)


def test_nlpe_bad_input():
    f = natural_like(10, 10)
    with pytest.raises(ValueError, match="shape"):
        nonlocal_pixel_exchange(f, np.ones((9, 10), bool))
    with pytest.raises(ValueError, match="no known pixel"):
        nonlocal_pixel_exchange(f, np.zeros((10, 10), bool))


# ----------------------------------------------------------------------------- tonal


def dense_B(mask, tol=1e-12):
    ip = Inpainter(mask, solver="numba")
    idx = np.flatnonzero(mask)
    cols = []
    for k in idx:
        e = np.zeros(mask.size)
        e[k] = 1.0
        cols.append(ip.solve(e.reshape(mask.shape), tol=tol).ravel())
    return np.array(cols).T, idx


@pytest.mark.parametrize("precondition", [True, False])
def test_tonal_matches_dense_least_squares(precondition):
    f = natural_like(14, 17, seed=4)
    rng = np.random.default_rng(5)
    mask = np.zeros(f.shape, bool)
    mask.flat[rng.choice(f.size, 15, replace=False)] = True
    B, idx = dense_B(mask)
    g_ls = np.linalg.lstsq(B, f.ravel(), rcond=None)[0]
    res = tonal_optimisation(f, mask, tol=1e-10, solve_tol=1e-12, precondition=precondition)
    np.testing.assert_allclose(res.values.ravel()[idx], g_ls, atol=1e-4)
    assert res.mse == pytest.approx(np.mean((B @ g_ls - f.ravel()) ** 2), rel=1e-8)
    # pixels off the mask keep the image values
    np.testing.assert_array_equal(res.values[~mask], f[~mask])


def test_column_sums_are_the_dense_columns_sums():
    mask = np.zeros((13, 16), bool)
    mask[[0, 3, 3, 12, 7], [0, 2, 9, 15, 5]] = True
    B, _ = dense_B(mask)
    op = _Operator(mask, mask.shape + (2,), "numba", 1e-12, Budget(None, None))
    np.testing.assert_allclose(op.column_sums()[:, 0], B.sum(axis=0), rtol=1e-8)


def test_preconditioning_pays_where_the_density_varies():
    # points 2, 3 and 8-16 pixels apart in three stripes: areas from 4 to 128 pixels
    f = natural_like(96, 96, seed=3)
    mask = np.zeros(f.shape, bool)
    mask[::2, :24:2] = True
    mask[::3, 24:48:3] = True
    mask[::8, 48::16] = True
    best = tonal_optimisation(f, mask, tol=1e-9).mse
    plain = tonal_optimisation(f, mask, max_iter=4, precondition=False).mse
    scaled = tonal_optimisation(f, mask, max_iter=4).mse
    # four iterations leave less than 60 % of the excess error over the optimum
    assert scaled - best < 0.6 * (plain - best)


def test_tonal_never_worse_and_colour_per_channel():
    f = np.dstack([natural_like(30, 34, seed=s) for s in (6, 7, 8)])
    mask = belhachmi_mask(f[..., 0], 0.06).mask
    res = tonal_optimisation(f, mask)
    assert res.mse < res.mse_before
    np.testing.assert_allclose(inpaint(res.values, mask, tol=1e-10), res.reconstruction,
                               atol=1e-4)
    for c in range(3):
        single = tonal_optimisation(f[..., c], mask)
        # the same optimum up to the inner solves' tolerance (1e-7 relative residual)
        np.testing.assert_allclose(res.values[..., c][mask], single.values[mask], atol=0.02)


def test_tonal_quantised_uses_levels_and_beats_rounding():
    f = natural_like(40, 40, seed=9)
    mask = belhachmi_mask(f, 0.05).mask
    levels = np.linspace(0, 255, 16)
    res = tonal_optimisation(f, mask, levels=levels)
    assert np.isin(res.values[mask], levels).all()
    cont = tonal_optimisation(f, mask)
    rounded = cont.values.copy()
    rounded[mask] = levels[np.abs(cont.values[mask][:, None] - levels).argmin(axis=1)]
    assert res.mse <= err(f, mask, rounded) + 1e-9
    assert res.mse < res.mse_before


def test_tonal_bad_input():
    f = natural_like(8, 8)
    with pytest.raises(ValueError, match="binary"):
        tonal_optimisation(f, np.full((8, 8), 0.5))
    with pytest.raises(ValueError, match="no known pixel"):
        tonal_optimisation(f, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="levels"):
        tonal_optimisation(f, np.eye(8, dtype=bool), levels=[3.0])


def test_warm_start_reaches_the_cold_accuracy_in_fewer_iterations():
    # a second mask that differs a little (a rate search's next file): started from the
    # first optimisation's continuous values and stopped at its gradient norm
    f = natural_like(64, 64, seed=11)
    mask = belhachmi_mask(f, 0.06).mask
    first = tonal_optimisation(f, mask, tol=0.05, max_sweeps=0)
    rng = np.random.default_rng(2)
    second = mask.copy()
    drop = rng.choice(np.flatnonzero(mask), 8, replace=False)
    second.flat[drop] = False
    cold = tonal_optimisation(f, second, tol=0.05, max_sweeps=0)
    warm = tonal_optimisation(f, second, tol=0.05, max_sweeps=0, start=first.continuous,
                              stop_norm=first.stop_norm)
    assert warm.iterations < cold.iterations
    assert warm.mse <= cold.mse * 1.01
    np.testing.assert_array_equal(warm.values[~second], f[~second])
