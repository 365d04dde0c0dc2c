"""The mask-encoder registry, lossless files and the rate search at high rates."""

import subprocess
import sys

import numpy as np
import pytest
from _images import disc_image, make_image

import inpcodec
from inpcodec.bitstreams import container as C_
from inpcodec.codec import encoders as E
from inpcodec.codec.pipeline import encode_report
from inpcodec.codec.sections import ChromaGuide


@pytest.mark.parametrize("name", E.encoder_names())
def test_every_registered_encoder_round_trips(name):
    img = make_image(32, 40, colour=True)
    options = {"runs": 1, "max_seconds": 2.0} if "ps" in name else {}
    r = encode_report(img, encoder=name, density=0.1, levels=16, tonal=False, **options)
    np.testing.assert_array_equal(inpcodec.decode(r.data), r.decoded)
    assert r.encoder == name and abs(r.density - 0.1) < 0.02
    assert r.psnr > 15


def test_registry_lists_the_encoders_and_refuses_what_it_does_not_know():
    assert {"belhachmi", "random", "ps", "ps+nlpe", "learned"} <= set(E.encoder_names())
    with pytest.raises(ValueError, match="unknown encoder 'nope'; choose one of belhachmi"):
        E.get_encoder("nope")
    with pytest.raises(ValueError, match="does not apply"):
        E.make_mask("belhachmi", make_image(16, 16), 0.1, runs=3)
    with pytest.raises(ValueError, match="registered already"):
        E.register(E.get_encoder("random"))
    ps_nlpe = E.get_encoder("ps+nlpe")
    assert ps_nlpe.search_with == "ps" and not ps_nlpe.cheap
    assert E.get_encoder("belhachmi").cheap and E.get_encoder("belhachmi").knob == "density"


def test_registering_imports_no_torch():
    code = ("import sys, inpcodec; inpcodec.encode; "
            "from inpcodec.codec.encoders import encoder_names; "
            "assert 'learned' in encoder_names(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("colour", [False, True])
def test_a_target_above_the_lossless_size_gives_every_pixel_back(colour):
    img = make_image(40, 36, colour=colour)
    r = encode_report(img, bpp=30.0)
    assert r.lossless and r.encoder == "lossless" and r.points == 40 * 36
    np.testing.assert_array_equal(inpcodec.decode(r.data), img)
    assert r.psnr == np.inf


def test_the_lossless_estimate_never_overstates_the_lossless_file_by_the_margin():
    """The rate search skips making the lossless file where the target is below
    1/LOSSLESS_MARGIN of the estimate: sound only while no image's lossless file is that
    much smaller than the estimate.  Natural-like, noise, and structured images."""
    from inpcodec.codec.format import lossless_file
    from inpcodec.codec.rate import LOSSLESS_MARGIN, lossless_estimate

    y, x = np.mgrid[0:48, 0:64]
    rng = np.random.default_rng(0)
    images = [make_image(48, 64), make_image(48, 64, colour=True, seed=2),
              rng.integers(0, 256, (48, 64)).astype(np.uint8),
              rng.integers(0, 256, (48, 64, 3)).astype(np.uint8),
              np.full((48, 64), 9, np.uint8), (x * 4 % 256).astype(np.uint8),
              ((x % 2) * 200).astype(np.uint8), (((x + y) % 2) * 255).astype(np.uint8),
              np.kron(rng.integers(0, 256, (24, 32)), np.ones((2, 2))).astype(np.uint8)]
    for img in images:
        real = 8 * len(lossless_file(img)[0]) / (48 * 64)
        est = lossless_estimate(img)
        assert real >= est / LOSSLESS_MARGIN, (real, est)
    # natural-like content: the estimate is close (within 25 %)
    for img in images[:2]:
        real = 8 * len(lossless_file(img)[0]) / (48 * 64)
        assert 0.75 < lossless_estimate(img) / real < 1.25


def test_psnr_rises_with_the_rate_and_levels_stay_at_most_256():
    img = make_image(64, 64, seed=3)
    lossless = encode_report(img, bpp=100.0)
    reports = [encode_report(img, bpp=b) for b in (0.2, 0.5, 1.0, 2.0, 4.0)
               if b < lossless.bpp]
    assert len(reports) >= 4
    for r in reports:
        assert not r.lossless and r.levels <= 256
    psnrs = [r.psnr for r in reports]
    assert psnrs == sorted(psnrs), psnrs


def test_a_target_just_below_the_lossless_size_is_met_or_refused_in_bpp():
    img = make_image(12, 16, colour=True)
    lossless = encode_report(img, bpp=100.0).bpp
    try:
        r = encode_report(img, bpp=0.99 * lossless)
    except inpcodec.codec.limits.CodecError as exc:
        assert "bpp" in str(exc) and "density" not in str(exc)
    else:  # met, or (the Lagrangian default) the nearest lossy file and a note
        assert not r.lossless
        assert abs(r.bpp / (0.99 * lossless) - 1) <= 0.03 or "cannot be reached" in r.note


def test_colour_tree_files_store_chroma_on_a_coarser_tree():
    from inpcodec.bitstreams import container
    from inpcodec.bitstreams.tree_coder import merge_bottom_splits, tree_mask
    from inpcodec.bitstreams.tree_values import decode_tree_values
    from inpcodec.codec.colour import ycbcr_to_rgb
    from inpcodec.codec.decoder import info
    from inpcodec.codec.diffusion import Inpainter
    from inpcodec.codec.format import encode_with_mask, planes_of
    from inpcodec.codec.quantiser import quantiser

    img = make_image(40, 48, colour=True)
    planes = planes_of(img, container.COLOUR_YCBCR)
    found = E.get_encoder("tree").make(planes[:, :, 0], 0.15)
    # chroma at every luma point (no CTRE section) and on a coarser tree (CTRE, k = 1)
    flat, _, _ = encode_with_mask(img, planes, found, 16, 8, True, chroma_merges=0)
    coarser, cont, _ = encode_with_mask(img, planes, found, 16, 8, True, chroma_merges=1)
    assert flat[4] == coarser[4] == container.VERSION
    assert "CTRE" not in container.read(flat).sections
    assert cont.sections["CTRE"] == bytes([1])
    i2, i3 = info(flat), info(coarser)
    coarse_tree = merge_bottom_splits(found.structure, 1)
    coarse = tree_mask(coarse_tree)
    assert i3.points == i2.points == i2.chroma_points == int(found.mask.sum())
    assert i3.chroma_points == int(coarse.sum()) < i2.chroma_points
    assert sum(i3.bytes_values[1:]) < sum(i2.bytes_values[1:])
    # reference: the stored values inpainted by SciPy's direct solve, luma on the luma
    # tree's mask, chroma on the merged tree's; each VALc is u8 model 2, u16 levels, words
    u = np.zeros(planes.shape)
    for c, (tree, m, q) in enumerate([(found.structure, found.mask, 16),
                                      (coarse_tree, coarse, 8), (coarse_tree, coarse, 8)]):
        payload = cont.sections[f"VAL{c}"]
        assert payload[0] == 2 and int.from_bytes(payload[1:3], "little") == q
        words = np.frombuffer(payload[3:], "<u4")
        data = np.zeros(img.shape[:2])
        data[m] = quantiser(q)[decode_tree_values(words, tree, q)]
        u[:, :, c] = Inpainter(m, solver="direct").solve(data)
    ref = np.clip(np.rint(ycbcr_to_rgb(u)), 0, 255)
    out = inpcodec.decode(coarser)
    assert np.abs(out - ref).max() <= 1 and np.mean(out != ref) < 0.01
    # forged chroma trees: 0 or 16 merges, in a grey file, in a free-mask file
    free = inpcodec.encode(img, encoder="belhachmi", density=0.1, loop_filter=False)
    for base, merges, grey in ((coarser, 0, False), (coarser, 16, False),
                               (coarser, 1, True), (free, 1, False)):
        forged = container.read(base)
        forged.sections["CTRE"] = bytes([merges])
        if grey:
            forged.channels, forged.colour = 1, container.COLOUR_GREY
            del forged.sections["VAL1"], forged.sections["VAL2"]
        with pytest.raises(container.FormatError, match="chroma"):
            inpcodec.decode(container.write(forged))


def test_every_encoder_writes_format_1_0():
    from inpcodec.bitstreams import container

    img = make_image(40, 48)
    free = inpcodec.encode(img, encoder="belhachmi", density=0.05, tonal=False,
                           loop_filter=False)
    tree = encode_report(img, encoder="tree", density=0.05, tonal=False, loop_filter=False)
    filtered = encode_report(img, encoder="tree", density=0.05, tonal=False).data
    default = inpcodec.encode(img)
    for data in (free, tree.data, filtered, default):
        assert data[4] == container.VERSION == 0x10
    assert container.read(free).sections["MASK"][0] == 1  # free mask
    assert container.read(tree.data).sections["MASK"][0] == 2  # split tree
    assert "FILT" in container.read(filtered).sections
    # positions cost a fraction of a free mask's
    freer = encode_report(img, encoder="belhachmi", density=tree.density, tonal=False)
    assert tree.mask_bits_per_point < 0.5 * freer.mask_bits_per_point
    # a newer major version, a development version, a bad version: refused by name
    for version, why in ((0x20, "format version 2.0 is newer"),
                         (5, "development version"), (9, "not valid")):
        forged = bytearray(tree.data)
        forged[4] = version
        with pytest.raises(container.FormatError, match=why):
            inpcodec.decode(bytes(forged))
    # a later minor version (1.1) is read: what it adds is in sections
    minor = container.read(tree.data)
    body = container.frame(0x11, minor.width, minor.height, minor.channels, minor.colour,
                           [(t.encode(), p) for t, p in minor.sections.items()])
    np.testing.assert_array_equal(inpcodec.decode(body), inpcodec.decode(tree.data))
    # tree values (model 2) in a free-mask file: refused
    forged = container.read(free)
    forged.sections["VAL0"] = bytes([2]) + forged.sections["VAL0"][1:]
    with pytest.raises(container.FormatError, match="needs a split tree"):
        inpcodec.decode(container.write(forged))


def test_fast_levels_rule_hand_computed():
    from inpcodec.codec.rate import fast_levels

    for bpp in (0.02, 0.05, 0.1, 0.3):
        assert fast_levels(bpp, 1) == [8, 16] and fast_levels(bpp, 3) == [16]
    s = (1.0 / 0.3) ** 0.63  # 2.14
    assert fast_levels(1.0, 1) == [round(8 * s), round(16 * s)] == [17, 34]
    assert fast_levels(1.0, 3) == [34]
    assert fast_levels(1e6, 1) == [256, 256]


def test_colour_levels_rule_hand_computed():
    from inpcodec.codec.rate import colour_levels

    # L - 1 = 1.29 * 10^(0.034 P), then the nearest of 8, 11, 16, 23, 32 in log
    assert colour_levels(20.5) == 8  # 7.4
    assert colour_levels(26.0) == 11  # 10.9
    assert colour_levels(31.3) == 16  # 16.0
    assert colour_levels(35.0) == 23  # 21.0
    assert colour_levels(10.0) == 8 and colour_levels(60.0) == 32


@pytest.mark.parametrize("colour", [False, True])
def test_fast_effort_hits_the_target_with_few_tonal_encodes(colour):
    from inpcodec.codec.rate import colour_levels, fast_levels

    img = make_image(96, 128, colour=colour)
    for bpp in (0.3, 0.6):
        r = encode_report(img, bpp=bpp, effort="fast", encoder="tree")
        assert abs(r.bpp / bpp - 1) <= 0.03
        cands = fast_levels(bpp, 3 if colour else 1)
        if colour and bpp <= 0.3:  # the level count balanced by the plain file's PSNR
            (pick,) = [e for e in r.search if e.get("effort") == "fast-levels"]
            assert pick["levels"] == 16 and r.levels == pick["chosen"] == colour_levels(
                pick["psnr"])
        else:
            below = round(cands[0] / (cands[1] / cands[0]) ** 0.5) if not colour else None
            assert r.levels in cands or r.levels == below or (
                not colour and cands[0] < r.levels < 1.5 * cands[1])
        assert C_.read(r.data).sections["MASK"][0] == 2  # a tree file
        tonal_encodes = [e for e in r.search if e.get("effort") == "fast"]
        # one per level count tried (grey 3 or 4, colour 1), up to 2 more for the winner
        assert 1 <= len(tonal_encodes) <= (6 if not colour else 3)
        assert all(e["tonal"] for e in tonal_encodes)
        np.testing.assert_array_equal(inpcodec.decode(r.data), r.decoded)
    best = encode_report(img, bpp=0.3, effort="best", encoder="tree")
    assert abs(best.bpp / 0.3 - 1) <= 0.03
    assert not any(e.get("effort") == "fast" for e in best.search)


def test_fast_effort_tries_fewer_levels_where_the_fewest_win():
    """Grey: 8 and 16 levels, one step beyond the better, and 6 where 8 still wins."""
    rng = np.random.default_rng(5)
    img = np.clip(rng.normal(128, 60, (96, 128)), 0, 255).astype(np.uint8)  # texture
    r = encode_report(img, bpp=0.3, effort="fast", encoder="tree")
    tried = {}
    for e in r.search:
        if e.get("effort") == "fast":
            tried.setdefault(e["levels"], e["psnr"] + 1.7 * np.log2(0.3 / e["bpp"]))
    assert list(tried)[:3] == [8, 16, 11]
    first3 = {lv: tried[lv] for lv in (8, 16, 11)}
    assert (6 in tried) == (max(first3, key=first3.get) == 8)


def test_fast_effort_leaves_free_masks_to_the_full_search_and_refuses_unknown_efforts():
    img = make_image(48, 64)
    r = encode_report(img, encoder="belhachmi", bpp=0.5, effort="fast")
    assert abs(r.bpp / 0.5 - 1) <= 0.03 and C_.read(r.data).sections["MASK"][0] == 1
    assert not any(e.get("effort") == "fast" for e in r.search)
    with pytest.raises(inpcodec.codec.limits.CodecError, match="unknown effort 'quick'"):
        encode_report(img, bpp=0.5, effort="quick")


def test_report_counts_the_chroma_points_of_a_chroma_tree():
    img = make_image(64, 80, colour=True)
    r = encode_report(img, density=0.1, levels=16, tonal=False)
    i = inpcodec.codec.decoder.info(r.data)
    assert r.chroma_points == i.chroma_points < r.points
    assert r.value_bits_per_point == pytest.approx(
        8 * r.bytes_values / (r.points + 2 * r.chroma_points))
    grey = encode_report(img[:, :, 0], density=0.1, levels=16, tonal=False)
    assert grey.value_bits_per_point == pytest.approx(8 * grey.bytes_values / grey.points)


def test_chroma_guided_by_the_luma(monkeypatch):
    import numba
    from test_colour import brute_guided

    from inpcodec.bitstreams import container
    from inpcodec.codec import decoder as D
    from inpcodec.codec import format as F
    from inpcodec.codec.colour import ycbcr_to_rgb
    from inpcodec.codec.diffusion import Inpainter
    from inpcodec.codec.quantiser import quantiser

    img = disc_image()
    plain = encode_report(img, encoder="tree", density=0.1, chroma_guide=False,
                          loop_filter=False)
    guided = encode_report(img, encoder="tree", density=0.1, loop_filter=False)
    assert plain.chroma_guide is None
    assert guided.chroma_guide in F.GUIDE_CANDIDATES
    assert D.info(guided.data).chroma_guide == guided.chroma_guide
    guide = container.read(guided.data).sections["GUID"]
    assert tuple(guide) == guided.chroma_guide
    assert len(guided.data) == len(plain.data) + ChromaGuide.NBYTES  # the rest the same
    assert guided.psnr > plain.psnr + 0.1
    # reference: the stored values inpainted by SciPy's direct solve, chroma replaced by
    # the guided filter computed window by window
    cont, desc, mask, values = D.parse(plain.data)
    u = np.zeros(img.shape)
    for c, (m, tree) in enumerate(D.decode_masks(cont, desc, mask, values)):
        q = values[c].levels
        data = np.zeros(img.shape[:2])
        data[m] = quantiser(q)[values[c].decompress(m, tree, c)]
        u[:, :, c] = Inpainter(m, solver="direct").solve(data)
    r, eps = guided.chroma_guide
    for c in (1, 2):
        u[:, :, c] = brute_guided(u[:, :, 0], u[:, :, c], r, eps)
    ref = np.clip(np.rint(ycbcr_to_rgb(u)), 0, 255)
    out = inpcodec.decode(guided.data)
    np.testing.assert_array_equal(out, guided.decoded)
    assert np.abs(out - ref).max() <= 1 and np.mean(out != ref) < 0.01
    # the same pixels on one thread and on all
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        np.testing.assert_array_equal(inpcodec.decode(guided.data), out)
    finally:
        numba.set_num_threads(before)
    # no room for the section, or nothing to gain (grey, free masks): unchanged
    assert F.add_chroma_guide(plain.data, img, max_bytes=len(plain.data) + 1) is plain.data
    free = inpcodec.encode(img, encoder="belhachmi", density=0.1, loop_filter=False)
    assert F.add_chroma_guide(free, img) is free
    # forged guides: radius 0 or too large, eps 0, a wrong length; a guide in a grey file
    grey = inpcodec.encode(img[:, :, 0], encoder="tree", density=0.1, loop_filter=False)
    for data, payload in ((guided.data, bytes([0, 16])), (guided.data, bytes([65, 16])),
                          (guided.data, bytes([3, 0])), (guided.data, bytes([3])),
                          (grey, bytes([3, 16]))):
        forged = container.read(data)
        forged.sections["GUID"] = payload
        with pytest.raises(container.FormatError, match="chroma guide"):
            inpcodec.decode(container.write(forged))


def test_fast_search_chooses_the_chroma_tree_per_file(monkeypatch):
    """Chroma on a coarser tree (3 merges) where it pays, the default (2) elsewhere; the
    choice lands on the target and beats the default's file at the target rate."""
    import math

    from inpcodec.codec import decoder as D
    from inpcodec.codec import format as F
    from inpcodec.codec import rate as R
    from inpcodec.codec.metrics import psnr

    rng = np.random.default_rng(0)
    g = make_image(96, 128, seed=3).astype(float)
    tex = np.clip(g + rng.normal(0, 20, g.shape), 0, 255)  # busy luma, faint chroma
    textured = np.stack([tex, 0.9 * tex + 10, 0.8 * tex + 20], axis=-1).astype(np.uint8)
    smooth = make_image(96, 128, colour=True)  # chroma as busy as the luma

    def merges(data):
        return D.parse(data)[1].chroma_merges

    def score(r, bpp):  # PSNR at the target rate, as the search ranks files
        return psnr(inpcodec.decode(r.data), textured) + R.RD_SLOPE * math.log2(bpp / r.bpp)

    bpp = 0.3
    chosen = encode_report(textured, bpp=bpp, encoder="tree")
    assert merges(chosen.data) == 3 and abs(chosen.bpp / bpp - 1) <= R.RATE_TOLERANCE
    assert merges(encode_report(smooth, bpp=bpp, encoder="tree").data) == F.CHROMA_MERGES == 2
    monkeypatch.setattr(R, "ALT_CHROMA_MERGES", F.CHROMA_MERGES)  # the default alone
    default = encode_report(textured, bpp=bpp, encoder="tree")
    assert merges(default.data) == 2
    assert score(chosen, bpp) > score(default, bpp)
