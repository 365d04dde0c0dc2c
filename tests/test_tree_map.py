"""The learned tree encoder: scale-error split order, training targets, network, trainer."""

import json

import numpy as np
import pytest
import torch
from _images import natural_like
from click.testing import CliRunner
from PIL import Image

from inpcodec.baselines.tree import (
    cell_log2_side,
    error_driven_order,
    prefix_for_points,
    scale_error_order,
    tree_from_order,
    uniform_error_maps,
)
from inpcodec.bitstreams.tree_coder import schedule, tree_mask
from inpcodec.codec import inpaint
from inpcodec.learned_masks.tree_map import (
    LOG2_SIDES,
    TARGET_SIDE,
    TreeMapNet,
    error_at_depth,
    learned_tree,
    learned_tree_order,
    predicted_error_maps,
    smooth_log_error,
    training_targets,
)


def _psnr(f, m):
    return 10 * np.log10(255.0**2 / np.mean((inpaint(f, m, solver="numba") - f) ** 2))


def _valid_prefixes(order):
    """Every split's parent cell comes earlier in the order (prefixes are trees)."""
    sched = schedule(order.height, order.width, order.quad)
    seen = set()
    for d, k in zip(order.depth.tolist(), order.key.tolist(), strict=True):
        if d > 0:
            b, a = sched[d]
            pb, pa = sched[d - 1]
            i, j = divmod(k, 1 << a)
            parent = ((i >> (b - pb)) << pa) + (j >> (a - pa))
            assert (d - 1, parent) in seen
        seen.add((d, k))


def test_scale_error_order_is_a_tree_order_and_tracks_error_driven():
    f = natural_like(96, 128, seed=2)
    order = scale_error_order(f.shape, lambda d: uniform_error_maps(f)[d])
    _valid_prefixes(order)
    pts = int(0.06 * f.size)
    m_scale = tree_mask(tree_from_order(order, prefix_for_points(order, pts)))
    eo = error_driven_order(f, 2 * pts)
    m_err = tree_mask(tree_from_order(eo, prefix_for_points(eo, pts)))
    assert abs(int(m_scale.sum()) - pts) < 0.05 * pts
    # the uniform trees' errors reproduce the sequential densification's quality
    assert _psnr(f, m_scale) > _psnr(f, m_err) - 0.3


def test_scale_error_order_rejects_bad_maps():
    with pytest.raises(ValueError, match="non-negative"):
        scale_error_order((20, 30), lambda d: -np.ones((20, 30)))
    with pytest.raises(ValueError, match="image-shaped"):
        scale_error_order((20, 30), lambda d: np.ones((30, 20)))


def test_training_targets_constant_and_growing_with_the_cell():
    flat = training_targets(np.full((TARGET_SIDE, TARGET_SIDE), 77.0))
    assert flat.shape == (len(LOG2_SIDES), TARGET_SIDE, TARGET_SIDE)
    assert np.abs(flat).max() < 0.01  # a constant is inpainted exactly (to the solver tolerance)
    f = natural_like(TARGET_SIDE, TARGET_SIDE, seed=4)
    raw = uniform_error_maps(f)  # depth d: cells of side 256 / 2^d
    assert len(raw) == 8
    assert np.all(np.diff([e.mean() for e in raw]) < 0)  # larger cells leave more error
    t = training_targets(f)
    for j, s in enumerate(LOG2_SIDES):  # channel j: side 2^s, depth 8 - s, log-averaged
        np.testing.assert_allclose(t[j], smooth_log_error(raw[8 - s], 2**s), rtol=1e-3,
                                   atol=1e-3)
    with pytest.raises(ValueError, match="257x257"):
        training_targets(np.zeros((100, 100)))


def test_error_at_depth_interpolates_in_log2_side():
    maps = np.stack([np.full((5, 5), float(s)) for s in LOG2_SIDES])
    # 257 x 257: depth d has cells of side 256 / 2^d, i.e. log2 side 8 - d
    at = error_at_depth(maps, 257, 257)
    for d in range(8):
        assert cell_log2_side(257, 257, schedule(257, 257, True)[d]) == 8 - d
        np.testing.assert_allclose(at(d), 8 - d)
    # 97 x 193: log2 sides 0.5 * (log2(96 / 2^b) + log2(192 / 2^a)), between trained sides
    sched = schedule(97, 193, True)
    at = error_at_depth(maps, 97, 193)
    for d in range(len(sched) - 1):
        s = cell_log2_side(97, 193, sched[d])
        np.testing.assert_allclose(at(d), np.clip(s, 1, 8))
    # above the largest side: the largest map times side^4
    big = error_at_depth(maps, 1025, 1025)
    np.testing.assert_allclose(big(0), 8 * 16.0**2)


def test_predicted_maps_any_size_and_deterministic_order():
    torch.manual_seed(0)
    net = TreeMapNet().eval()
    for shape in ((37, 50), (64, 48), (20, 300)):
        e = predicted_error_maps(natural_like(*shape, seed=1), network=net)
        assert e.shape == (len(LOG2_SIDES), *shape)
        assert np.isfinite(e).all() and (e >= 0).all()
    f = natural_like(64, 80, seed=3)
    o1 = learned_tree_order(f, network=net)
    o2 = learned_tree_order(f.copy(), network=net)
    np.testing.assert_array_equal(o1.key, o2.key)
    _valid_prefixes(o1)
    r = learned_tree(f, 0.05, network=net)
    assert r.inpaintings == 0 and r.mask.sum() >= round(0.05 * f.size)


def test_shipped_tree_map_beats_an_untrained_one():
    """The shipped weights have learned something: their tree beats a random network's."""
    f = natural_like(128, 192, seed=7)
    torch.manual_seed(0)
    pts = int(0.05 * f.size)
    shipped = learned_tree(f, pts / f.size).mask
    untrained = learned_tree(f, pts / f.size, network=TreeMapNet().eval()).mask
    assert _psnr(f, shipped) > _psnr(f, untrained) + 0.3


def test_train_tree_map_cli_runs_resumes_and_checks(tmp_path):
    from inpcodec.cli import main

    for split, n in (("train", 2), ("val", 1)):
        (tmp_path / split).mkdir()
        for i in range(n):
            img = np.clip(natural_like(270, 300, seed=10 * i + len(split)), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(tmp_path / split / f"{i}.png")
    out = tmp_path / "w.safetensors"
    args = ["train-tree-map", "--data", str(tmp_path / "train"), "--val",
            str(tmp_path / "val"), "--out", str(out), "--crops", "1", "--batch", "2",
            "--val-every", "1"]
    r = CliRunner().invoke(main, args + ["--steps", "2"])
    assert r.exit_code == 0, r.output
    prov = json.loads(out.with_suffix(".json").read_text())
    assert prov["steps"] == 2 and prov["training_crops"] == 2
    # resumed in bfloat16 autocast (a session's choice, recorded)
    r = CliRunner().invoke(main, args + ["--steps", "3", "--resume", "--precision", "bfloat16"])
    assert r.exit_code == 0, r.output
    prov = json.loads(out.with_suffix(".json").read_text())
    assert prov["steps"] == 3 and prov["config"]["precision"] == "bfloat16"
    assert np.isfinite([h[3] for h in prov["history"]]).all()
    r = CliRunner().invoke(main, args + ["--steps", "0"])
    assert r.exit_code != 0 and "--steps must be at least 1" in r.output


def test_bfloat16_inference_gives_the_float32_masks_within_noise():
    """The loaders' precision: bfloat16 (auto where the CPU has it) against float32."""
    from inpcodec.codec.precision import inference_dtype, native_bfloat16
    from inpcodec.learned_masks import load_mask_network, mask_probabilities
    from inpcodec.learned_masks.tree_map import load_tree_map_network

    assert inference_dtype("auto") == (torch.bfloat16 if native_bfloat16() else torch.float32)
    assert inference_dtype("float32") == torch.float32
    with pytest.raises(ValueError, match="precision must be one of"):
        inference_dtype("half")
    f = natural_like(96, 128, seed=11)
    t32 = load_tree_map_network(precision="float32")
    t16 = load_tree_map_network(precision="bfloat16")
    assert next(t16.parameters()).dtype == torch.bfloat16
    e32 = predicted_error_maps(f, network=t32)
    e16 = predicted_error_maps(f, network=t16)
    assert e16.dtype == np.float64
    # log1p maps: the network's validation error is about 0.9 (MSE); bfloat16 adds ~0.01
    assert np.abs(np.log1p(e16) - np.log1p(e32)).mean() < 0.05
    a = learned_tree(f, 0.05, network=t32).mask
    b = learned_tree(f, 0.05, network=t16).mask
    assert np.mean(a == b) > 0.995
    assert abs(_psnr(f, a) - _psnr(f, b)) < 0.1
    # free masks: the confidences agree to 2 %; their dithered masks differ more
    # (dithering carries every change onwards), by -0.002 dB on average over the Kodak
    # and classic images (benchmarks/RESULTS.md)
    c32 = mask_probabilities(f, 0.05, network=load_mask_network(precision="float32"))
    c16 = mask_probabilities(f, 0.05, network=load_mask_network(precision="bfloat16"))
    assert np.abs(c16 - c32).mean() < 0.04 * c32.mean()
