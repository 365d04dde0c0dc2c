"""The mask-encoder registry, lossless files and the rate search at high rates."""

import subprocess
import sys

import numpy as np
import pytest
from _images import make_image

import inpcodec
from inpcodec.codec import encoders as E
from inpcodec.codec.pipeline import encode_report


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
    code = ("import sys, inpcodec; from inpcodec.codec.encoders import encoder_names; "
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
    else:
        assert abs(r.bpp / (0.99 * lossless) - 1) <= 0.03 and not r.lossless


def test_tree_files_are_version_2_and_free_masks_stay_version_1(monkeypatch):
    from inpcodec.bitstreams import container

    img = make_image(40, 48)
    free = inpcodec.encode(img, encoder="belhachmi", density=0.05, tonal=False)
    tree = encode_report(img, encoder="tree", density=0.05, tonal=False)
    assert free[4] == 1 and tree.data[4] == 2
    assert container.read(tree.data).version == 2
    # positions cost a fraction of a free mask's
    freer = encode_report(img, encoder="belhachmi", density=tree.density, tonal=False)
    assert tree.mask_bits_per_point < 0.5 * freer.mask_bits_per_point
    # a decoder of version 1 refuses version 2 by name
    monkeypatch.setattr(container, "VERSION", 1)
    with pytest.raises(container.FormatError, match="format version 2 is newer"):
        inpcodec.decode(tree.data)
