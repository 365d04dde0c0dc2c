"""Learned masks: networks, losses against the real decoder, binarisation, training, weights."""

import json
import socket

import numpy as np
import pytest
import torch
from _images import natural_like
from PIL import Image

from inpcodec.codec import inpaint
from inpcodec.learned_masks.inference import (
    DEFAULT_WEIGHTS,
    binarise,
    learned_mask,
    load_mask_network,
    mask_probabilities,
)
from inpcodec.learned_masks.losses import (
    ALPHA,
    EPSILON,
    inpainting_loss,
    laplacian,
    residual_loss,
    variance_regulariser,
)
from inpcodec.learned_masks.networks import InpaintNet, MaskNet, count_parameters
from inpcodec.learned_masks.training import TrainConfig, train, train_step


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return MaskNet().eval()


def test_networks_have_the_seed_shape():
    for module in (MaskNet(), InpaintNet()):
        # 5 scales, 3 convolutions per scale each way, 10 channels doubling: ~9e5 weights
        assert 8.5e5 < count_parameters(module) < 9.5e5
        convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == 27 and max(c.out_channels for c in convs) == 160


@pytest.mark.parametrize("shape", [(32, 48), (64, 64)])
def test_mask_net_output_shape_range_and_density(shape):
    torch.manual_seed(1)
    M, I = MaskNet(), InpaintNet()
    f = torch.rand(3, 1, *shape)
    d = torch.tensor([0.01, 0.05, 0.5])
    with torch.no_grad():
        c = M(f, d)
        assert c.shape == f.shape and I(f, c).shape == f.shape
    assert float(c.min()) >= 0 and float(c.max()) <= 1
    assert (c.mean(dim=(1, 2, 3)) <= d * (1 + 1e-5)).all()


def test_laplacian_hand_computed_neumann_case():
    u = torch.tensor([[1.0, 2.0, 4.0], [0.0, 3.0, 1.0]])[None, None]
    # ghost cells copy the boundary pixel: the sum of (neighbour - centre) over real neighbours
    expected = torch.tensor([[0.0, 2.0, -5.0], [4.0, -6.0, 5.0]])
    assert torch.allclose(laplacian(u)[0, 0], expected)


@pytest.mark.parametrize("binary", [True, False])
def test_residual_loss_vanishes_for_the_decoder_solution(binary):
    rng = np.random.default_rng(0)
    f = natural_like(24, 31, seed=2) / 255.0
    c = (rng.random(f.shape) < 0.1).astype(float) if binary else rng.random(f.shape) ** 4
    c[0, 0] = 1.0
    u = inpaint(f, c, solver="direct")
    t = [torch.from_numpy(a)[None, None] for a in (u, c, f)]
    exact = float(residual_loss(*t))
    wrong = float(residual_loss(t[0] + 0.01 * torch.randn_like(t[0]), t[1], t[2]))
    assert exact < 1e-20 and wrong > 1e-6


def test_regulariser_and_inpainting_loss_values():
    flat = torch.full((2, 1, 8, 8), 0.05)
    assert float(variance_regulariser(flat)) == pytest.approx(ALPHA / EPSILON)
    c = torch.zeros(1, 1, 4, 4)
    c[0, 0, 0, :2] = 1.0  # mean 1/8, variance 1/8 * 7/8
    assert float(variance_regulariser(c)) == pytest.approx(ALPHA / (7 / 64 + EPSILON))
    # squared Euclidean norms per image (sums over pixels), averaged over the batch
    ones, zeros = torch.ones(2, 1, 2, 3), torch.zeros(2, 1, 2, 3)
    assert float(inpainting_loss(ones, zeros)) == 6.0
    assert float(inpainting_loss(ones, zeros, 255.0)) == 6.0 * 255**2


@pytest.mark.parametrize("method", ["coin", "dither"])
def test_binarise_exact_count_and_seeded(method):
    rng = np.random.default_rng(3)
    c = np.clip(rng.random((40, 50)) ** 6, 0, 1)
    for d in (0.01, 0.03, 0.2):
        m = binarise(c, d, method=method, rng=np.random.default_rng(5))
        assert m.dtype == bool and m.sum() == round(d * c.size)
        m2 = binarise(c, d, method=method, rng=np.random.default_rng(5))
        assert np.array_equal(m, m2)
    # certain pixels are kept, impossible ones never chosen while others remain
    c = np.zeros((30, 30))
    c[::3, ::3] = 1.0
    c[1::3, 1::3] = 0.5
    m = binarise(c, 0.15, method="coin", rng=np.random.default_rng(0))
    assert m[::3, ::3].all() and not m[2::3].any()


@pytest.mark.parametrize("shape", [(37, 53), (5, 7), (64, 64)])
def test_learned_mask_any_size_exact_density_deterministic(net, shape):
    img = natural_like(*shape, seed=4)
    for d in (0.02, 0.1):
        a = learned_mask(img, d, seed=7, network=net, binarisation="coin")
        b = learned_mask(img, d, seed=7, network=net, binarisation="coin")
        assert a.mask.shape == shape and a.mask.sum() == max(1, round(d * img.size))
        assert np.array_equal(a.mask, b.mask) and a.inpaintings == 0
    c = mask_probabilities(img, 0.05, network=net)
    assert c.shape == shape and c.mean() <= 0.05 + 1e-12


def test_best_of_n_is_judged_by_the_real_decoder(net):
    img = natural_like(48, 48, seed=5)
    one = learned_mask(img, 0.05, samples=1, seed=11, network=net, binarisation="coin")
    many = learned_mask(img, 0.05, samples=6, seed=11, network=net, binarisation="coin")
    err = lambda m: float(np.mean((inpaint(img, m) - img) ** 2))  # noqa: E731
    # the first of the N draws is the N = 1 mask; the best is no worse and is reported right
    assert many.inpaintings == 6 and err(many.mask) <= err(one.mask)
    assert many.info["mse"] == pytest.approx(err(many.mask), rel=1e-6)
    with pytest.raises(ValueError, match="samples"):
        learned_mask(img, 0.05, samples=0, network=net, binarisation="coin")
    with pytest.raises(ValueError, match="dither"):
        learned_mask(img, 0.05, samples=3, binarisation="dither", network=net)


def test_a_tiny_training_run_lowers_both_losses():
    torch.manual_seed(0)
    M, I = MaskNet(), InpaintNet()
    om = torch.optim.Adam(M.parameters(), lr=5e-4)
    oi = torch.optim.Adam(I.parameters(), lr=5e-4)
    f = torch.from_numpy(np.stack([natural_like(32, 32, seed=s) / 255.0
                                   for s in range(4)])[:, None].astype(np.float32))
    d = torch.full((4,), 0.05)
    first = train_step(M, I, om, oi, f, d, ALPHA)
    for _ in range(25):
        last = train_step(M, I, om, oi, f, d, ALPHA)
    assert last["inpainting"] + last["regulariser"] < 0.5 * (first["inpainting"]
                                                            + first["regulariser"])
    assert last["residual"] < first["residual"]


def _image_folder(path, n, size=(40, 48)):
    path.mkdir()
    for k in range(n):
        img = natural_like(*size, seed=10 + k).astype(np.uint8)
        Image.fromarray(img).save(path / f"im{k}.png")
    return path


def test_train_writes_weights_provenance_and_resumes_exactly(tmp_path):
    data = _image_folder(tmp_path / "data", 3)
    cfg = dict(data=[str(data)], val=[str(data)], crop=32, batch=2, val_every=2,
               val_images=1, val_densities=(0.05,), seed=3)
    out = tmp_path / "a.safetensors"
    prov = train(TrainConfig(steps=4, **cfg), out, log=lambda s: None)
    assert prov["steps"] == 4 and out.exists() and (tmp_path / "a.ckpt").exists()
    on_disk = json.loads((tmp_path / "a.json").read_text())
    assert on_disk["seed"] == 3 and set(on_disk["validation"]["final_psnr"]) == {"0.05"}
    # two steps, then resumed to four, equals four in one go
    out_b = tmp_path / "b.safetensors"
    train(TrainConfig(steps=2, **cfg), out_b, log=lambda s: None)
    train(TrainConfig(steps=4, **cfg), out_b, resume=True, log=lambda s: None)
    a = load_mask_network(out, precision="float32")
    b = load_mask_network(out_b, precision="float32")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_train_keeps_the_weights_of_the_best_validation(tmp_path):
    data = _image_folder(tmp_path / "data", 3)
    out = tmp_path / "m.safetensors"
    prov = train(TrainConfig(data=[str(data)], val=[str(data)], crop=32, batch=2, steps=4,
                             val_every=1, val_images=1, val_densities=(0.05, 0.1), seed=1,
                             lr=5e-3), out, log=lambda s: None)
    scores = {r["step"]: np.mean(list(r["val_psnr_dither"].values()))
              for r in prov["history"]}
    best = max(scores, key=scores.get)
    assert prov["weights_from_step"] == best
    assert np.mean(list(prov["validation"]["final_psnr_dither"].values())) == \
        pytest.approx(scores[best], abs=1e-9)


def test_shipped_weights_load_offline_and_cover_1_to_10_percent(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("weights loading tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert DEFAULT_WEIGHTS.is_file()
    provenance = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    assert {"command", "data", "steps", "seed", "wall_time_minutes"} <= set(provenance)
    net = load_mask_network()
    assert net.conditioned and net.density_range[0] <= 0.01 and net.density_range[1] >= 0.1
    img = natural_like(64, 80, seed=6)
    for d in (0.01, 0.04, 0.1):
        assert learned_mask(img, d).mask.sum() == round(d * img.size)


def test_exact_inpainting_layer_matches_solver_and_finite_differences():
    from inpcodec.learned_masks.exact import exact_inpaint

    rng = np.random.default_rng(1)
    f = torch.from_numpy(rng.random((2, 1, 9, 11)))
    c = torch.from_numpy(rng.random((2, 1, 9, 11)) * 0.5 + 0.05).requires_grad_()
    u = exact_inpaint(c, f)
    ref = inpaint(f[1, 0].numpy(), c[1, 0].detach().numpy(), solver="direct")
    np.testing.assert_allclose(u[1, 0].detach().numpy(), ref, atol=1e-6)

    def energy(cc):
        return float(((exact_inpaint(cc, f) - f) ** 2).sum())

    (grad,) = torch.autograd.grad(((u - f) ** 2).sum(), c)
    for idx in [(0, 0, 0, 0), (1, 0, 3, 4), (0, 0, 8, 10)]:
        plus, minus = c.detach().clone(), c.detach().clone()
        plus[idx] += 1e-6
        minus[idx] -= 1e-6
        fd = (energy(plus) - energy(minus)) / 2e-6
        assert float(grad[idx]) == pytest.approx(fd, rel=1e-4, abs=1e-9)


def test_binary_inpainting_gradient_matches_one_sided_differences():
    # Straight-through layer: forward with the binary mask b, gradient of the energy with
    # respect to the confidence of every pixel at b, checked against a direct solve with
    # one confidence moved into [0, 1] (up at unknown pixels, down at known ones).
    from inpcodec.learned_masks.exact import binary_inpaint

    rng = np.random.default_rng(2)
    f = rng.random((1, 1, 10, 12))
    b = (rng.random(f.shape) < 0.2).astype(float)
    b[0, 0, 0, 0] = b[0, 0, 9, 11] = 1.0
    c = torch.full(f.shape, 0.3, dtype=torch.float64, requires_grad=True)
    ft = torch.from_numpy(f)
    u = binary_inpaint(c, torch.from_numpy(b), ft)
    ref = inpaint(f[0, 0], b[0, 0], solver="direct")
    np.testing.assert_allclose(u[0, 0].detach().numpy(), ref, atol=1e-6)
    (grad,) = torch.autograd.grad(((u - ft) ** 2).sum(), c)

    def energy(mask):
        return float(((inpaint(f[0, 0], mask, solver="direct") - f[0, 0]) ** 2).sum())

    e0, h = energy(b[0, 0]), 1e-7
    known = list(zip(*np.nonzero(b[0, 0]), strict=True))[:4] + [(0, 0), (9, 11)]
    unknown = list(zip(*np.nonzero(b[0, 0] == 0), strict=True))[:4]
    for idx in known + unknown:
        m = b[0, 0].copy()
        step = -h if m[idx] == 1 else h
        m[idx] += step
        fd = (energy(m) - e0) / step
        assert float(grad[(0, 0, *idx)]) == pytest.approx(fd, rel=1e-3, abs=1e-7), idx


def test_belhachmi_density_is_what_belhachmi_dithers_and_the_prior_net_starts_there():
    from inpcodec.baselines import belhachmi_density, belhachmi_mask

    f = natural_like(48, 64, seed=1)
    for d in (0.03, 0.08):
        p = belhachmi_density(f, d)
        assert p.sum() == pytest.approx(round(d * f.size), rel=1e-9) and p.max() <= 1.0
        # scale-free, and dithered it is Belhachmi's mask
        np.testing.assert_allclose(belhachmi_density(f / 255.0, d), p, rtol=1e-9)
        assert np.array_equal(binarise(p, d, method="dither"), belhachmi_mask(f, d).mask)
        # an untrained prior network returns that map (up to float32; scaled to mean d
        # where the rounded point count makes its mean exceed d)
        net = MaskNet(prior=True).eval()
        c = mask_probabilities(f, d, network=net)
        np.testing.assert_allclose(c, p * min(1.0, d / p.mean()), atol=1e-6)


def test_binary_training_step_reports_the_real_error_of_the_dithered_mask():
    # With train_mask="dither" the loss is the real decoder's error for the mask the codec
    # would use (the dithered confidences), and the mask network gets a gradient from it.
    from inpcodec.learned_masks.training import belhachmi_priors

    torch.manual_seed(2)
    M = MaskNet(prior=True)
    opt = torch.optim.Adam(M.parameters(), lr=1e-4)
    fn = np.stack([natural_like(32, 40, seed=s) / 255.0 for s in range(2)])[:, None]
    f = torch.from_numpy(fn.astype(np.float32))
    d = torch.tensor([0.04, 0.1])
    prior = torch.from_numpy(belhachmi_priors(fn, d.numpy()))
    with torch.no_grad():
        c = M(f, d, prior).double().numpy()[:, 0]
    expected = np.mean([np.sum((inpaint(fn[k, 0], binarise(c[k], float(d[k]), method="dither"))
                                - fn[k, 0]) ** 2) for k in range(2)])
    before = [p.detach().clone() for p in M.parameters()]
    out = train_step(M, None, opt, None, f, d, 0.0, train_mask="dither", prior=prior)
    assert out["inpainting"] == pytest.approx(expected, rel=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(before, M.parameters(), strict=True))


def test_binary_training_gradient_leaves_the_mask_scale_alone():
    # The binarised mask ignores the scale of c, so the gradient reaching the network's
    # output must be orthogonal to c: sum_i c_i dE/dc_i = 0 (else the mask collapses).
    torch.manual_seed(0)
    fn = natural_like(32, 40, seed=3)[None, None] / 255.0
    f = torch.from_numpy(fn.astype(np.float32))
    d = torch.tensor([0.06])
    M = MaskNet()
    c = M(f, d).detach().requires_grad_()
    M.forward = lambda *args: c  # the step's mask is this leaf: read its gradient
    train_step(M, None, torch.optim.SGD([c], lr=0.0), None, f, d, 0.0, train_mask="dither")
    g = c.grad.double()
    assert float(g.abs().max()) > 0
    assert abs(float((g * c.detach().double()).sum())) < 1e-4 * float(
        (g.abs() * c.detach().double()).sum())
