"""GAN inpainter (MHTMA): attention, networks, post-processor, hole filling, training, CLI."""

import hashlib
import json
import socket

import numpy as np
import pytest
import torch
from _images import make_image, natural_like
from click.testing import CliRunner
from PIL import Image
from torch.nn import functional as F

from inpcodec import cli
from inpcodec.codec import pipeline as P
from inpcodec.codec.encoders import FREE_MASK_CODER, TREE_MASK_CODER
from inpcodec.codec.postprocess import inference as I
from inpcodec.codec.postprocess.attention import (
    LAMBDA_M,
    MHTMA,
    T_MIN,
    TemperatureNet,
    key_validity,
    masked_window_attention,
)
from inpcodec.codec.postprocess.data import (
    CacheSettings,
    holes_validation_set,
    load_cache,
    prepare_cache,
)
from inpcodec.codec.postprocess.losses import load_vgg16, perceptual_loss
from inpcodec.codec.postprocess.masks import free_form_mask, hole_mask, hole_mask_in_range
from inpcodec.codec.postprocess.networks import Generator, GlobalLocalDiscriminator
from inpcodec.codec.postprocess.training import (
    TrainConfig,
    reconstruction_l1,
    save_weights,
    train,
    train_step,
    validate,
)

WEIGHTS = I.DEFAULT_WEIGHTS


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: these tensors are tiny, and the machine may be busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_generator(task="postprocess", seed=0, width=4, full_res_layers=1):
    """A small generator whose output stages are not the identity (as trained ones)."""
    torch.manual_seed(seed)
    net = Generator(width, 2, task, full_res_layers=full_res_layers)
    for conv in (net.coarse.to_rgb, net.refine.to_rgb):
        torch.nn.init.normal_(conv.weight, std=0.2)
    return net.eval()


def rgb_image(h, w, seed=0):
    return np.stack([natural_like(h, w, seed + k) for k in range(3)], -1).astype(np.uint8)


# ----------------------------------------------------------------------------- attention


def dense_attention(fe, valid, t, *, patch=3, tile=None, halo=None, key_stride=2):
    """Algorithm 1 written out per image with full score matrices (the reference).

    With ``tile`` and ``halo``, a query may only see keys within ``halo`` of its tile.
    """
    n, c, h, w = fe.shape
    r = patch // 2
    raw = F.unfold(fe, patch, padding=r)
    unit = raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-6)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    is_key = ((ys % key_stride == 0) & (xs % key_stride == 0) & (ys >= r) & (ys < h - r)
              & (xs >= r) & (xs < w - r)).flatten()
    kidx = is_key.nonzero().squeeze(1)
    qy, qx = ys.flatten(), xs.flatten()
    allowed = torch.ones(h * w, kidx.numel(), dtype=torch.bool)
    if tile is not None:
        y0, x0 = (qy // tile * tile)[:, None], (qx // tile * tile)[:, None]
        ky, kx = qy[kidx][None], qx[kidx][None]
        allowed = ((ky >= y0 - halo) & (ky < y0 + tile + halo) & (kx >= x0 - halo)
                   & (kx < x0 + tile + halo))
    out = []
    for b in range(n):
        s = unit[b].T @ unit[b][:, kidx] / t[b]
        ok = valid[b, 0].flatten()[kidx] > 0.5
        s = ok[None] * (s + LAMBDA_M) - LAMBDA_M                  # eq. (9) verbatim
        s = torch.where(allowed, s, torch.tensor(-1e9, dtype=s.dtype))
        out.append((torch.softmax(s, -1) @ raw[b][:, kidx].T).T)
    summed = F.fold(torch.stack(out), (h, w), patch, padding=r)
    count = F.fold(torch.ones(1, patch * patch, h * w, dtype=fe.dtype), (h, w), patch,
                   padding=r)
    return summed / count


def test_windowed_attention_matches_dense_reference_and_chunking_changes_nothing():
    torch.manual_seed(0)
    fe = torch.randn(2, 3, 40, 36, dtype=torch.float64)
    valid = (torch.rand(2, 1, 40, 36) > 0.3).double()
    t = torch.tensor([0.07, 0.6], dtype=torch.float64)
    # a window wider than the map: the seed's global attention (on the stride-2 key grid)
    got = masked_window_attention(fe, valid, t, tile=8, halo=32)
    torch.testing.assert_close(got, dense_attention(fe, valid, t), atol=1e-9, rtol=1e-9)
    # real windows: each tile sees its 8 neighbouring tiles' keys only
    windowed = masked_window_attention(fe, valid, t, tile=8, halo=8)
    torch.testing.assert_close(windowed, dense_attention(fe, valid, t, tile=8, halo=8),
                               atol=1e-9, rtol=1e-9)
    assert (windowed - got).abs().max() > 1e-3  # the window does matter here
    # one strip of tiles at a time (the memory bound) against all strips at once
    chunked = masked_window_attention(fe, valid, t, tile=8, halo=8, max_elements=1)
    torch.testing.assert_close(chunked, windowed, atol=1e-12, rtol=1e-12)


def test_attention_puts_no_weight_on_keys_from_missing_regions():
    rng = np.random.default_rng(3)
    known = np.ones((2, 1, 64, 96), np.float32)
    known[0, 0, :, :40] = 0                               # a big hole on the left
    blobs = np.kron(rng.random((8, 12)) < 0.3, np.ones((8, 8))).astype(bool)
    known[1, 0] = ~(blobs & (rng.random((64, 96)) < 0.5))  # scattered holes
    known_t = torch.from_numpy(known)
    valid = key_validity(known_t, 4, "all")
    # eq. (8) by hand: a cell is missing if one of its 4x4 pixels is; a key is valid if no
    # cell of its 3x3 patch is missing (outside the map counts as not missing)
    cells = known.reshape(2, 16, 4, 24, 4).min(axis=(2, 4))
    padded = np.pad(cells, ((0, 0), (1, 1), (1, 1)), constant_values=1)
    expect = np.ones((2, 16, 24))
    for y in range(16):
        for x in range(24):
            expect[:, y, x] = padded[:, y:y + 3, x:x + 3].min(axis=(1, 2))
    np.testing.assert_array_equal(valid[:, 0].numpy(), expect)
    assert 0 < expect[0].mean() < 1 and 0 < expect[1].mean() < 1
    torch.manual_seed(1)
    fe = torch.randn(2, 4, 16, 24)
    _, wgt, index = masked_window_attention(fe, valid, torch.tensor([0.05, 2.0]),
                                            return_weights=True, halo=16)
    flat_valid = valid.view(2, -1)
    for b in range(2):
        key_ok = torch.where(index >= 0, flat_valid[b][index.clamp_min(0)] > 0.5,
                             torch.zeros_like(index, dtype=torch.bool))  # (L, keys)
        w = wgt[b]                                        # (L, queries, keys)
        assert key_ok.any(dim=1).all()                    # every window has a valid key
        assert w.masked_select(~key_ok[:, None, :].expand_as(w)).max() < 1e-12
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))


def test_post_processor_key_rule_accepts_patches_holding_a_known_pixel():
    known = torch.zeros(1, 1, 32, 32)
    known[0, 0, 13, 17] = 1                               # one stored pixel: cell (3, 4)
    valid = key_validity(known, 4, "any")[0, 0]
    expect = torch.zeros(8, 8)
    expect[2:5, 3:6] = 1                                  # the patches that contain the cell
    torch.testing.assert_close(valid, expect)
    assert key_validity(known, 4, "all").sum() == 0       # the seed's rule would reject all


def test_temperatures_stay_positive_and_set_the_sharpness():
    torch.manual_seed(0)
    net = TemperatureNet(8, 2)
    x = torch.randn(3, 8, 20, 28)
    t = net(x)
    assert t.shape == (3, 2) and (t > 0).all()
    torch.testing.assert_close(t.mean(0), torch.tensor([0.05, 0.5]), atol=0.02, rtol=0)
    with torch.no_grad():
        net.fc.bias.fill_(-1e4)                            # Softplus underflows to 0 here
    assert (net(x) >= T_MIN).all()
    with torch.no_grad():
        net.fc.bias.fill_(0.0)
    opt = torch.optim.Adam(net.parameters(), lr=0.5)       # drive t down as hard as possible
    for _ in range(60):
        opt.zero_grad()
        net(x).sum().backward()
        opt.step()
    assert (net(x) > 0).all() and torch.isfinite(net(x)).all()
    # the temperature really scales the scores: a low one makes the weights peaked
    fe = torch.randn(1, 4, 16, 16)
    valid = torch.ones(1, 1, 16, 16)
    peaks = [masked_window_attention(fe, valid, torch.tensor([t]), return_weights=True)[1]
             .max(-1).values.mean() for t in (0.02, 1.0)]
    assert peaks[0] > 0.5 > 0.1 > peaks[1]


def test_mhtma_batches_heads_and_keeps_shapes():
    torch.manual_seed(0)
    att = MHTMA(16, heads=3, head_channels=5)
    out = att(torch.randn(2, 16, 10, 14), torch.ones(2, 1, 10, 14))
    assert out.shape == (2, 15, 10, 14)
    assert att.last_temperature.shape == (2, 3) and (att.last_temperature > 0).all()


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("task,full_res_layers", [("postprocess", 3), ("holes", 1)])
def test_output_shapes_at_odd_sizes_grey_and_colour(task, full_res_layers):
    net = small_generator(task, full_res_layers=full_res_layers)
    coarse, out = net(torch.zeros(2, 3, 40, 56), torch.ones(2, 1, 40, 56))
    assert coarse.shape == out.shape == (2, 3, 40, 56)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 3, 37, 53), torch.ones(1, 1, 37, 53))
    rng = np.random.default_rng(0)
    for img in (rgb_image(37, 53), natural_like(37, 53).astype(np.uint8),
                rgb_image(5, 3)):
        mask = rng.random(img.shape[:2]) < 0.1
        fn = I.refine if task == "postprocess" else I.inpaint_holes
        res = fn(img, mask if task == "postprocess" else ~mask, network=net)
        assert res.shape == img.shape and res.dtype == np.uint8


def test_discriminator_shapes_and_spectral_norm():
    torch.manual_seed(0)
    D = GlobalLocalDiscriminator(64, 32, width=8)
    taps = []
    score = D(torch.randn(3, 3, 64, 64), torch.ones(3, 1, 64, 64),
              torch.tensor([[0, 0], [10, 20], [32, 32]]), taps)
    assert score.shape == (3,) and len(taps) == 6
    w = D.global_convs[2].weight                           # the normalised weight
    assert torch.linalg.matrix_norm(w.flatten(1), ord=2) < 1.2
    with pytest.raises(ValueError):
        GlobalLocalDiscriminator(100, 32)


# ----------------------------------------------------------------------------- uses


def test_post_processor_keeps_known_pixels_exactly_and_changes_the_others():
    net = small_generator("postprocess")
    rng = np.random.default_rng(4)
    for img in (rgb_image(37, 53, 1), natural_like(37, 53, 2).astype(np.uint8)):
        known = rng.random(img.shape[:2]) < 0.05
        out = I.refine(img, known, network=net)
        np.testing.assert_array_equal(out[known], img[known])
        assert (out[~known] != img[~known]).mean() > 0.5
    # the network's own composite keeps them too, before any rounding to 8 bits
    x = rng.uniform(-1, 1, (3, 37, 53)).astype(np.float32)
    raw = I.run_generator(net, x, ~known)
    np.testing.assert_array_equal(raw[:, known], x[:, known])
    assert np.abs(raw[:, ~known] - x[:, ~known]).mean() > 1e-3
    with pytest.raises(ValueError, match="mask is 5x4"):
        I.refine(img, np.ones((4, 5), bool), network=net)
    with pytest.raises(ValueError, match="uint8"):
        I.refine(img.astype(float), known, network=net)


def test_post_processor_strength_blends_with_the_input():
    """strength s gives image + s (output - image): 0 the image, 1 the whole output."""
    net = small_generator("postprocess")
    img = rgb_image(37, 53, 1)
    known = np.random.default_rng(4).random(img.shape[:2]) < 0.05
    whole = I.refine(img, known, network=net)
    np.testing.assert_array_equal(I.refine(img, known, network=net, strength=1.0), whole)
    np.testing.assert_array_equal(I.refine(img, known, network=net, strength=0.0), img)
    half = I.refine(img, known, network=net, strength=0.5).astype(float)
    assert np.abs(half - (img.astype(float) + whole) / 2).max() <= 1.0  # two roundings
    assert (half != whole).any()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="strength"):
            I.refine(img, known, network=net, strength=bad)


def test_strength_calibration_beside_the_weights(tmp_path):
    weights = tmp_path / "pp.safetensors"
    assert I.strength_file(weights) == tmp_path / "pp_strength.json"
    assert I.strength(weights, 0.05, False) == 1.0  # no calibration: the whole correction
    I.strength_file(weights).write_text(json.dumps(
        {"fit": {"grey": {"a": 0.2, "b": -0.1}, "colour": {"a": 3.0, "b": 1.0}}}))
    assert I.strength(weights, 1 / 16, False) == pytest.approx(0.6)  # 0.2 + 0.4, by hand
    assert I.strength(weights, 1 / 4, False) == pytest.approx(0.4)
    assert I.strength(weights, 1 / 4096, False) == 1.0  # clipped
    assert I.strength(weights, 1 / 16, True) == 0.0  # 3 - 4 < 0: clipped
    bad = tmp_path / "bad.safetensors"
    I.strength_file(bad).write_text("{}")
    with pytest.raises(ValueError, match="not a strength calibration"):
        I.strength(bad, 0.1, False)
    # the shipped post-processor for filtered tree files: a little less of its correction
    # where points are dense; the one for unfiltered decodes (what it was trained on): all
    tree = I.postprocess_weights(TREE_MASK_CODER, filtered=True)
    assert 1.0 > I.strength(tree, 0.02, False) > I.strength(tree, 0.1, False) > 0.0
    assert I.strength(I.postprocess_weights(TREE_MASK_CODER), 0.02, False) == 1.0


def test_hole_inpainting_keeps_the_rest_exactly():
    net = small_generator("holes")
    img = rgb_image(40, 48, 3)
    holes = np.zeros((40, 48), bool)
    holes[10:25, 12:30] = True
    out = I.inpaint_holes(img, holes, network=net)
    np.testing.assert_array_equal(out[~holes], img[~holes])
    assert (out[holes] != img[holes]).mean() > 0.5


def test_untrained_hole_inpainter_is_homogeneous_diffusion():
    # The residual stages start at zero and the holes arrive filled by diffusion: before
    # training the GAN returns the diffusion inpainting (against scipy's direct solve).
    from inpcodec.codec import inpaint

    net = Generator(4, 2, "holes").eval()
    img = rgb_image(36, 44, 7)
    holes = np.zeros((36, 44), bool)
    holes[5:20, 8:30] = True
    holes[25:33, 2:6] = True
    ref = inpaint(img.astype(np.float64), ~holes, solver="direct")
    out = I.inpaint_holes(img, holes, network=net)
    assert np.abs(out.astype(float) - ref).max() <= 0.51
    assert np.abs(out.astype(float) - img).max() > 10  # holes were really refilled


def test_decode_with_gan_post_processor(tmp_path, monkeypatch):
    img = rgb_image(40, 56, 5)
    data = P.encode(img, encoder="belhachmi", density=0.05, tonal=False)
    plain, mask = P.decode(data, return_info=True)
    monkeypatch.setitem(I.POSTPROCESS_WEIGHTS, FREE_MASK_CODER,
                        tmp_path / "absent.safetensors")
    with pytest.raises(P.CodecError, match="train-gan"):
        P.decode(data, postprocess="gan")
    path = tmp_path / "pp.safetensors"
    save_weights(small_generator("postprocess"), path)
    monkeypatch.setitem(I.POSTPROCESS_WEIGHTS, FREE_MASK_CODER, path)
    refined = P.decode(data, postprocess="gan")
    np.testing.assert_array_equal(refined[mask], plain[mask])
    assert (refined[~mask] != plain[~mask]).mean() > 0.5
    # a strength calibration beside the weights: the decoder applies that share
    I.strength_file(path).write_text(json.dumps(
        {"fit": {"grey": {"a": 0.0, "b": 0.0}, "colour": {"a": 0.5, "b": 0.0}}}))
    net = I.load_generator(path)
    np.testing.assert_array_equal(P.decode(data, postprocess="gan"),
                                  I.refine(plain, mask, network=net, strength=0.5))
    I.strength_file(path).unlink()
    r = CliRunner().invoke(cli.main, ["decode", str(_write(tmp_path / "f.inpc", data)),
                                      str(tmp_path / "o.png"), "--postprocess", "gan"])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), refined)


def test_decoder_picks_the_post_processor_of_the_files_mask_coder(tmp_path, monkeypatch):
    # a tree file is refined by the generator trained on tree decodes (on loop-filtered
    # ones where the file has a loop filter), a free-mask file by the free-mask one;
    # --weights overrides them all
    img = rgb_image(40, 56, 6)
    files = {"tree": P.encode(img, encoder="tree", bpp=0.8, tonal=False, loop_filter=False),
             "free": P.encode(img, encoder="belhachmi", density=0.05, tonal=False,
                              loop_filter=False),
             "tree-filtered": P.encode(make_image(64, 80, seed=4), encoder="tree",
                                       density=0.1)}
    assert P.info(files["tree-filtered"]).loop_filter is not None
    assert P.info(files["tree"]).loop_filter is None
    for seed, name in enumerate(files):
        save_weights(small_generator("postprocess", seed=seed), tmp_path / f"{name}.safetensors")
    monkeypatch.setitem(I.POSTPROCESS_WEIGHTS, TREE_MASK_CODER, tmp_path / "tree.safetensors")
    monkeypatch.setitem(I.POSTPROCESS_WEIGHTS, FREE_MASK_CODER, tmp_path / "free.safetensors")
    monkeypatch.setitem(I.FILTERED_POSTPROCESS_WEIGHTS, TREE_MASK_CODER,
                        tmp_path / "tree-filtered.safetensors")
    for name, data in files.items():
        plain, mask = P.decode(data, return_info=True)
        for net_name in files:
            # as the decoder loads it (in the precision of this machine)
            net = I.load_generator(tmp_path / f"{net_name}.safetensors")
            expect = I.refine(plain, mask, network=net)
            if net_name == name:
                np.testing.assert_array_equal(P.decode(data, postprocess="gan"), expect)
            else:
                assert (P.decode(data, postprocess="gan") != expect).any()
            np.testing.assert_array_equal(
                P.decode(data, postprocess="gan",
                         weights=tmp_path / f"{net_name}.safetensors"), expect)
    # a coder without filtered weights of its own: its filtered files take its other ones
    assert I.postprocess_weights(FREE_MASK_CODER, filtered=True) == tmp_path / "free.safetensors"
    with pytest.raises(ValueError, match="no post-processor for mask coder 9"):
        I.postprocess_weights(9)


def _write(path, data):
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- weights


def test_weights_round_trip_offline_and_task_check(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("weights loading tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    net = small_generator("holes", seed=2, width=6, full_res_layers=2)
    path = tmp_path / "g.safetensors"
    save_weights(net, path)
    loaded = I.load_generator(path, task="holes", precision="float32")
    assert (loaded.width, loaded.heads, loaded.task) == (6, 2, "holes")
    assert loaded.full_res_layers == 2
    x, m = torch.rand(1, 3, 24, 32) * 2 - 1, (torch.rand(1, 1, 24, 32) > 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, m)[1], net(x, m)[1])
    with pytest.raises(ValueError, match="trained for 'holes'"):
        I.load_generator(path, task="postprocess")
    (tmp_path / "junk.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="safetensors"):
        I.load_generator(tmp_path / "junk.safetensors")


def test_weights_without_skip_metadata_load_as_the_plain_decoders(tmp_path):
    """Files written before the full-resolution skip carry no "skip" metadata."""
    from safetensors.torch import save_file

    torch.manual_seed(3)
    net = Generator(6, 2, "postprocess", skip=False).eval()
    for conv in (net.coarse.to_rgb, net.refine.to_rgb):
        torch.nn.init.normal_(conv.weight, std=0.2)
    assert not any(k.endswith("last.conv.weight") for k in net.state_dict())
    meta = {k: v for k, v in I.metadata(net).items() if k != "skip"}
    path = tmp_path / "old.safetensors"
    save_file(dict(net.state_dict()), str(path), metadata=meta)
    loaded = I.load_generator(path, task="postprocess", precision="float32")
    assert not loaded.skip
    x, m = torch.rand(1, 3, 24, 32) * 2 - 1, (torch.rand(1, 1, 24, 32) > 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, m)[1], net(x, m)[1])
    assert Generator(6, 2, "postprocess").skip  # new weights have it
    with pytest.raises(ValueError, match="with the skip"):
        Generator(6, 2, "postprocess", skip=False, full_res_layers=3)


def test_weights_without_full_res_layers_metadata_load_with_one_layer(tmp_path):
    """Files written before the deeper full-resolution end carry no such metadata."""
    from safetensors.torch import save_file

    net = small_generator("postprocess", seed=4, width=6)
    meta = {k: v for k, v in I.metadata(net).items() if k != "full_res_layers"}
    path = tmp_path / "skip-only.safetensors"
    save_file(dict(net.state_dict()), str(path), metadata=meta)
    loaded = I.load_generator(path, task="postprocess", precision="float32")
    assert loaded.skip and loaded.full_res_layers == 1
    x, m = torch.rand(1, 3, 24, 32) * 2 - 1, (torch.rand(1, 1, 24, 32) > 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, m)[1], net(x, m)[1])


@pytest.mark.parametrize("task, coder, filtered", [
    ("postprocess", FREE_MASK_CODER, False), ("postprocess", TREE_MASK_CODER, False),
    ("postprocess", TREE_MASK_CODER, True), ("holes", None, False)])
def test_shipped_weights_load_offline_and_run(task, coder, filtered, monkeypatch):
    file = WEIGHTS[task] if coder is None else I.postprocess_weights(coder, filtered)
    if not file.is_file():
        pytest.skip(f"{file.name} not trained yet (inpcodec train-gan)")
    def no_network(*args, **kwargs):
        raise AssertionError("weights loading tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    provenance = json.loads(file.with_suffix(".json").read_text())
    assert {"command", "data", "steps", "seed", "wall_time_minutes", "perceptual_loss",
            "validation"} <= set(provenance)
    net = I.load_generator(task=task, mask_coder=coder, filtered=filtered)
    assert net.task == task
    img = rgb_image(37, 53, 7)
    known = np.random.default_rng(0).random((37, 53)) < 0.05
    out = I.refine(img, known, network=net) if task == "postprocess" else \
        I.inpaint_holes(img, ~known, network=net)
    np.testing.assert_array_equal(out[known], img[known])


def test_bfloat16_post_processor_refines_like_float32():
    """The loaders' precision: the shipped tree post-processor in both dtypes."""
    file = I.POSTPROCESS_WEIGHTS[TREE_MASK_CODER]
    if not file.is_file():
        pytest.skip(f"{file.name} not trained yet (inpcodec train-gan)")
    n32 = I.load_generator(mask_coder=TREE_MASK_CODER, precision="float32")
    n16 = I.load_generator(mask_coder=TREE_MASK_CODER, precision="bfloat16")
    assert next(n16.parameters()).dtype == torch.bfloat16
    img = np.rint(natural_like(48, 64, seed=5)).astype(np.uint8)
    known = np.random.default_rng(1).random(img.shape) < 0.05
    a = I.refine(img, known, network=n32).astype(int)
    b = I.refine(img, known, network=n16).astype(int)
    np.testing.assert_array_equal(b[known], img[known])
    assert np.abs(a - b).max() <= 4 and np.abs(a - b).mean() < 0.5
    assert np.abs(a - img).mean() > 1.0  # the network changes something to compare


# ----------------------------------------------------------------------------- losses, masks


def test_vgg16_relu1_2_from_torchvision_style_files(tmp_path):
    torch.manual_seed(0)
    state = {"features.0.weight": torch.randn(64, 3, 3, 3) * 0.1,
             "features.0.bias": torch.zeros(64),
             "features.2.weight": torch.randn(64, 64, 3, 3) * 0.05,
             "features.2.bias": torch.zeros(64), "classifier.0.weight": torch.zeros(2, 2)}
    torch.save(state, tmp_path / "vgg16.pth")
    from safetensors.torch import save_file
    save_file(state, str(tmp_path / "vgg16.safetensors"))
    a, b = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    for name in ("vgg16.pth", "vgg16.safetensors"):
        vgg, digest = load_vgg16(tmp_path / name)
        assert len(digest) == 64
        torch.testing.assert_close(vgg.conv1_2.weight, state["features.2.weight"])
        assert perceptual_loss(vgg, a, a) == 0 and perceptual_loss(vgg, a, b) > 0
    del state["features.2.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="features.2.bias"):
        load_vgg16(tmp_path / "bad.pth")


def test_training_masks_follow_the_seed_scaled_to_the_crop():
    rng = np.random.default_rng(0)
    m = hole_mask(128, 128, rng)
    assert m.dtype == bool and m.shape == (128, 128) and 0.14 < m.mean() < 0.9
    assert np.array_equal(free_form_mask(64, 80, np.random.default_rng(5)),
                          free_form_mask(64, 80, np.random.default_rng(5)))
    for lo, hi in ((0.0, 0.1), (0.4, 0.5)):
        r = hole_mask_in_range(96, 96, lo, hi, rng).mean()
        assert lo < r <= hi


# ----------------------------------------------------------------------------- training


def test_reconstruction_l1_ignores_the_known_pixels():
    rng = np.random.default_rng(1)
    gt, x, y = (torch.from_numpy(rng.uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32))
                for _ in range(3))
    missing = torch.from_numpy((rng.random((2, 1, 8, 8)) < 0.3).astype(np.float32))
    x = torch.where(missing > 0.5, x, gt)  # known pixels hold the original
    hand = float(np.sum((y - gt).abs().numpy() * missing.numpy()) / gt.numel())
    assert reconstruction_l1(y, x, gt, missing).item() == pytest.approx(hand, rel=1e-5)
    y2 = torch.where(missing > 0.5, y, y + 5.0)  # other values on the known pixels only
    assert reconstruction_l1(y2, x, gt, missing).item() == pytest.approx(hand, rel=1e-5)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_tiny_training_run_lowers_the_loss(precision):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    gt = torch.from_numpy(np.stack([rgb_image(64, 64, s).transpose(2, 0, 1)
                                    for s in (0, 3)]).astype(np.float32) / 127.5 - 1)
    missing = torch.from_numpy((rng.random((2, 1, 64, 64)) > 0.05).astype(np.float32))
    x = F.avg_pool2d(gt, 9, 1, 4, count_include_pad=False)   # a blurred "reconstruction"
    x = torch.where(missing > 0.5, x, gt)
    G, D = Generator(4, 2, "postprocess"), GlobalLocalDiscriminator(64, 32, width=8)
    cfg = TrainConfig(crop=64, batch=2, precision=precision)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    boxes = torch.tensor([[0, 0], [16, 16]])
    first = [train_step(G, D, opt_g, opt_d, x, gt, missing, boxes, cfg)]
    for _ in range(30):
        last = train_step(G, D, opt_g, opt_d, x, gt, missing, boxes, cfg)
    assert last["l1_final"] < 0.85 * first[0]["l1_final"]
    assert last["loss_g"] < first[0]["loss_g"]
    # bfloat16 autocast: the weights (and so the optimiser's updates) stay float32
    assert {p.dtype for p in [*G.parameters(), *D.parameters()]} == {torch.float32}


def _image_folder(path, n, h, w, seed=0):
    path.mkdir()
    for k in range(n):
        Image.fromarray(rgb_image(h, w, seed + 3 * k)).save(path / f"im{k}.png")
    return path


def test_train_holes_writes_weights_provenance_and_resumes(tmp_path):
    data = _image_folder(tmp_path / "train", 3, 72, 80)
    val = _image_folder(tmp_path / "val", 1, 64, 72, seed=20)
    out = tmp_path / "holes.safetensors"
    cfg = TrainConfig(task="holes", data=[str(data)], val=[str(val)], width=4, crop=64,
                      batch=2, steps=3, val_every=2, val_images=1)
    prov = train(cfg, out, log=lambda s: None)
    assert prov["steps"] == 3 and prov["perceptual_loss"]["kind"] == "feature matching"
    assert prov["validation"]["final"]["baseline_psnr"] > 10
    assert prov["training_masks"].endswith("24x24 square (96 scaled by crop / 256)")
    assert out.is_file() and json.loads(out.with_suffix(".json").read_text())["seed"] == 0
    assert I.load_generator(out, task="holes").width == 4
    # a resumed run keeps its configuration but takes the arithmetic asked for now
    prov = train(TrainConfig(task="holes", steps=5, precision="bfloat16"), out, resume=True,
                 log=lambda s: None)
    assert prov["steps"] == 5 and [h["step"] for h in prov["history"]] == [2, 3, 4, 5]
    assert prov["config"]["precision"] == "bfloat16" and prov["config"]["width"] == 4


def test_train_starts_from_given_weights_and_rejects_other_architectures(tmp_path):
    data = _image_folder(tmp_path / "train", 2, 72, 80)
    val = _image_folder(tmp_path / "val", 1, 64, 72, seed=20)
    given = tmp_path / "given.safetensors"
    net = small_generator("holes", seed=3, full_res_layers=3)
    save_weights(net, given)
    base = dict(task="holes", data=[str(data)], val=[str(val)], width=4, crop=64, batch=2,
                val_every=1, val_images=1)
    out = tmp_path / "tuned.safetensors"
    prov = train(TrainConfig(**base, steps=1, init=str(given)), out, log=lambda s: None)
    # step 0 is the given network: its validation, not the fresh network's (which is
    # homogeneous diffusion exactly, l1 == baseline_l1)
    expected = validate(net, holes_validation_set([str(val)], 1, seed=0), "holes")
    start = prov["validation"]["untrained"]
    assert start["l1"] == pytest.approx(expected["l1"], rel=1e-6)
    assert start["l1"] != pytest.approx(start["baseline_l1"], rel=1e-3)
    assert prov["started_from"]["loaded"] == ["generator"]
    assert prov["started_from"]["sha256"] == hashlib.sha256(given.read_bytes()).hexdigest()
    # a checkpoint brings the discriminator too; the run goes on from its last step
    ckpt = out.with_suffix(".ckpt")
    prov = train(TrainConfig(**base, steps=1, init=str(ckpt)), tmp_path / "again.safetensors",
                 log=lambda s: None)
    assert prov["started_from"]["loaded"] == ["discriminator", "generator"]
    assert prov["started_from"]["its_command"] is not None
    with pytest.raises(ValueError, match="other architecture: width 4 .run: 6."):
        train(TrainConfig(**{**base, "width": 6}, steps=1, init=str(given)),
              tmp_path / "wide.safetensors", log=lambda s: None)
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a train-gan checkpoint"):
        train(TrainConfig(**base, steps=1, init=str(tmp_path / "bad.ckpt")),
              tmp_path / "bad.safetensors", log=lambda s: None)
    with pytest.raises(ValueError, match="trained for 'holes', not 'postprocess'"):
        train(TrainConfig(**{**base, "task": "postprocess", "cache": str(tmp_path / "c")},
                          steps=1, init=str(given)), tmp_path / "pp.safetensors",
              log=lambda s: None)


def test_postprocess_cache_is_made_once_and_training_uses_it(tmp_path):
    data = _image_folder(tmp_path / "train", 2, 80, 96)
    val = _image_folder(tmp_path / "val", 1, 72, 72, seed=9)
    cache = tmp_path / "cache"
    settings = CacheSettings(data=[str(data)], val=[str(val)], variants=1, tonal=False,
                             val_images=1)
    info = prepare_cache(settings, cache, log=lambda s: None)
    assert info["items"] == 2 + 3 and len(list(cache.glob("*.npz"))) == 5
    with np.load(next(cache.glob("train-*.npz"))) as z:
        meta = json.loads(str(z["meta"]))
        assert 0.01 <= meta["density"] <= 0.1 and meta["encoder"] in ("belhachmi", "learned")
        assert z["decoded"].shape[:2] == tuple(z["shape"])
    with pytest.raises(ValueError, match="other settings"):
        prepare_cache(CacheSettings(data=[str(data)], val=[], variants=3), cache)
    out = tmp_path / "pp.safetensors"
    cfg = TrainConfig(task="postprocess", data=[str(data)], val=[str(val)], cache=str(cache),
                      width=4, crop=64, batch=2, steps=2, val_every=2, val_images=1,
                      variants=1, tonal=False)
    prov = train(cfg, out, log=lambda s: None)
    assert prov["decoder_cache"]["items"] == 5 and prov["validation"]["items"] == 3
    assert I.load_generator(out).task == "postprocess"


def test_tree_cache_holds_tree_decodes_at_target_rates(tmp_path):
    from inpcodec.codec.pipeline import DEFAULT_ENCODER

    data = _image_folder(tmp_path / "train", 1, 64, 80)
    val = _image_folder(tmp_path / "val", 1, 64, 64, seed=9)
    # rates for images this small (the header alone is 0.1 bpp here)
    settings = CacheSettings(data=[str(data)], val=[str(val)], variants=1, tonal=False,
                             val_images=1, codec="tree", grey_fraction=0.5, bpp_min=0.3,
                             bpp_max=0.8, val_bpps=(0.3, 0.5, 0.8))
    cache = tmp_path / "cache"
    prepare_cache(settings, cache, log=lambda s: None)
    items = load_cache(cache, "train") + load_cache(cache, "val")
    assert len(items) == 1 + 3
    for it in items:
        meta = it["meta"]
        assert meta["encoder"] == DEFAULT_ENCODER and 0.3 <= meta["bpp"] <= 0.8
        assert it["decoded"].ndim == it["original"].ndim == (2 if meta["grey"] else 3)
    assert {it["decoded"].ndim for it in items} == {2, 3}  # val alternates grey and colour
    # an item is the codec's real round trip: re-encoding gives the same decode and mask
    it = items[0]
    redone, mask = P.decode(P.encode(it["original"], encoder=DEFAULT_ENCODER, bpp=it["meta"]["bpp"],
                                     tonal=False), return_info=True)
    np.testing.assert_array_equal(redone, it["decoded"])
    np.testing.assert_array_equal(mask, it["mask"])
    assert sorted(it["meta"]["bpp"] for it in items if it["meta"]["name"].startswith("val")
                  ) == [0.3, 0.5, 0.8]
    with pytest.raises(ValueError, match="codec must be one of"):
        prepare_cache(CacheSettings(data=[str(data)], val=[], codec="jpeg"), tmp_path / "c2")


def test_training_refuses_a_device_that_is_not_there(tmp_path):
    cfg = TrainConfig(task="holes", data=[str(tmp_path)], device="cuda:7")
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    with pytest.raises(ValueError, match="cuda:7"):
        cfg.check()
    with pytest.raises(ValueError, match="unknown torch device"):
        TrainConfig(task="holes", data=[str(tmp_path)], device="gpu please").check()
    with pytest.raises(ValueError, match="training precision must be one of"):
        TrainConfig(task="holes", data=[str(tmp_path)], precision="float16").check()


# ----------------------------------------------------------------------------- CLI


def test_inpaint_command_and_its_errors(tmp_path):
    img = rgb_image(40, 48, 1)
    Image.fromarray(img).save(tmp_path / "img.png")
    holes = np.zeros((40, 48), np.uint8)
    holes[5:20, 10:30] = 255
    Image.fromarray(holes).save(tmp_path / "holes.png")
    Image.fromarray(holes[:30]).save(tmp_path / "small.png")
    (tmp_path / "junk.png").write_bytes(b"no image at all")
    weights = tmp_path / "holes.safetensors"
    save_weights(small_generator("holes"), weights)
    pp = tmp_path / "pp.safetensors"
    save_weights(small_generator("postprocess"), pp)

    def run(*args):
        return CliRunner().invoke(cli.main, ["inpaint", *map(str, args)])

    out = tmp_path / "out.png"
    for args, msg in (((tmp_path / "nope.png", tmp_path / "holes.png", out), "no such file"),
                      ((tmp_path / "img.png", tmp_path / "small.png", out), "48x30"),
                      ((tmp_path / "junk.png", tmp_path / "holes.png", out), "not an image"),
                      ((tmp_path / "img.png", tmp_path / "holes.png",
                        tmp_path / "missing" / "o.png"), "does not exist"),
                      ((tmp_path / "img.png", tmp_path / "holes.png", out, "--weights", pp),
                       "trained for 'postprocess'")):
        r = run(*args, *(() if "--weights" in args else ("--weights", weights)))
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
        assert msg in r.output
        assert not out.exists() and not list(tmp_path.glob(".inpcodec-*"))
    r = run(tmp_path / "img.png", tmp_path / "holes.png", out, "--weights", weights)
    assert r.exit_code == 0, r.output
    res = np.asarray(Image.open(out))
    np.testing.assert_array_equal(res[holes == 0], img[holes == 0])


def test_train_gan_command_rejects_bad_options(tmp_path):
    data = _image_folder(tmp_path / "d", 1, 64, 64)

    def run(*args):
        r = CliRunner().invoke(cli.main, ["train-gan", "--data", str(data), "--out",
                                          str(tmp_path / "g.safetensors"), *args])
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
        return r.output

    assert "crop must be a multiple of 64" in run("--task", "holes", "--crop", "100")
    assert "--prepare-only" in run("--task", "holes", "--prepare-only")
    assert "--vgg16" in run("--task", "holes", "--vgg16", str(tmp_path / "no.pth"))
    assert "adversarial weight must be >= 0" in run("--task", "holes",
                                                    "--adversarial-weight", "-1")
    assert "needs the skip" in run("--task", "holes", "--no-skip", "--full-res-layers", "3")
    assert "--init: no such file" in run("--task", "holes", "--init", str(tmp_path / "no"))
    (tmp_path / "w.safetensors").write_bytes(b"x")
    assert "--resume continues" in run("--task", "holes", "--init",
                                       str(tmp_path / "w.safetensors"), "--resume")
    r = CliRunner().invoke(cli.main, ["train-gan", "--data", str(data), "--out",
                                      str(tmp_path / "g.safetensors"), "--precision", "half"])
    assert r.exit_code == 2 and "'half' is not one of 'float32', 'bfloat16'" in r.output
    assert not (tmp_path / "g.safetensors").exists()
