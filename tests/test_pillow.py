"""The Pillow plugin (inpcodec.pillow): lazy open, load, save and its options, errors."""

import io

import numpy as np
import pytest
from _images import natural_like
from PIL import Image, UnidentifiedImageError

import inpcodec
import inpcodec.pillow as plugin
from inpcodec.bitstreams import container as C
from inpcodec.codec.metrics import psnr

H, W = 40, 48


def _grey(h=H, w=W, seed=0):
    return np.clip(np.rint(natural_like(h, w, seed)), 0, 255).astype(np.uint8)


def _rgb(h=H, w=W):
    return np.stack([_grey(h, w, s) for s in (0, 1, 2)], axis=-1)


@pytest.fixture(scope="module")
def files():
    """mode -> (image, its file at density 0.1 from inpcodec.encode)."""
    out = {}
    for mode, img in (("L", _grey()), ("RGB", _rgb())):
        out[mode] = img, inpcodec.encode(img, density=0.1)
    return out


def _save(img, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="INPC", **options)
    return buf.getvalue()


def test_registered():
    assert Image.registered_extensions()[".inpc"] == "INPC"
    assert Image.MIME["INPC"] == "image/x-inpcodec"
    assert "INPC" in Image.OPEN and "INPC" in Image.SAVE


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_open_reads_the_header_only(files, mode, tmp_path, monkeypatch):
    img, data = files[mode]
    path = tmp_path / "a.inpc"
    path.write_bytes(data)

    def no_decode(*args, **kwargs):
        raise RuntimeError("decoded")

    monkeypatch.setattr(plugin, "decode", no_decode)
    with Image.open(path) as im:  # the format from the magic bytes, not the suffix
        assert im.format == "INPC"
        assert im.get_format_mimetype() == "image/x-inpcodec"
        assert im.size == (W, H)
        assert im.mode == mode
        assert im.info["version"] == "1.0"  # the format's
        with pytest.raises(RuntimeError, match="decoded"):
            im.load()  # the pixels are decoded here, and only here


def test_open_does_not_read_the_body(files):
    """Damaged data after the header: open works, the decode refuses."""
    _, data = files["L"]
    bad = bytearray(data)
    bad[len(data) // 2] ^= 0x10
    im = Image.open(io.BytesIO(bytes(bad)))
    assert (im.size, im.mode) == ((W, H), "L")
    with pytest.raises(OSError, match="checksum mismatch") as err:
        im.load()
    assert type(err.value) is OSError
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert str(err.value).startswith("cannot decode inpcodec file")


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_file(files, cut, tmp_path):
    _, data = files["RGB"]
    path = tmp_path / "cut.inpc"
    path.write_bytes(data[:int(len(data) * cut)])
    with Image.open(path) as im:
        assert im.size == (W, H)
        with pytest.raises(OSError, match="cannot decode inpcodec file"):
            np.asarray(im)  # any pixel access loads


@pytest.mark.parametrize("data", [b"", b"INPC", b"INPC\x01\x00\x00", b"hello, world" * 4,
                                  bytes(range(256))])
def test_foreign_or_short_bytes_are_unidentified(data):
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


@pytest.mark.parametrize("offset, value, message", [
    (4, 0x20, "version 2.0 is newer"),
    (4, 5, "development version"),
    (4, 0, "version 0 is not valid"),
    (14, 7, "unknown colour transform 7"),
    (14, 0, "does not fit 3 channel"),
    (13, 2, "2 channels"),
])
def test_bad_header_is_an_oserror(files, offset, value, message):
    _, data = files["RGB"]
    bad = bytearray(data)
    bad[offset] = value
    with pytest.raises(OSError, match=message):
        Image.open(io.BytesIO(bytes(bad)))


def test_bad_geometry_is_an_oserror(files):
    _, data = files["L"]
    bad = data[:5] + (0).to_bytes(4, "little") + data[9:]  # width 0
    with pytest.raises(OSError, match="image size 0x40"):
        Image.open(io.BytesIO(bad))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_save_open_round_trip(files, mode, tmp_path):
    img, data = files[mode]
    path = tmp_path / "b.inpc"
    Image.fromarray(img).save(path, density=0.1)  # the format from the suffix
    saved = path.read_bytes()
    assert saved == data  # the same bytes as the API
    with Image.open(path) as im:
        assert im.mode == mode
        pixels = np.asarray(im)
    assert pixels.shape == img.shape
    np.testing.assert_array_equal(pixels, inpcodec.decode(saved))


def test_save_defaults_are_the_command_lines_and_take_a_quality():
    from inpcodec.codec.pipeline import DEFAULT_QUALITY

    img = _grey(24, 32)
    assert _save(img) == inpcodec.encode(img, quality=DEFAULT_QUALITY)
    assert _save(img, quality=80) == inpcodec.encode(img, quality=80)
    assert len(_save(img, quality=20)) < len(_save(img, quality=80))


def test_save_options_pass_through():
    img = _grey(24, 32)
    opts = dict(encoder="random", density=0.2, levels=16, chroma_levels=None, tonal=False,
                seed=3)
    data = _save(img, **opts)
    assert data == inpcodec.encode(img, **opts)
    assert data != _save(img, **{**opts, "seed": 4})
    assert data != _save(img, **{**opts, "levels": 32})
    assert _save(img, encoder="belhachmi", density=0.1, sigma=0.8) == \
        inpcodec.encode(img, encoder="belhachmi", density=0.1, sigma=0.8)
    plain = _save(img, density=0.1, loop_filter=False)
    assert plain == inpcodec.encode(img, density=0.1, loop_filter=False)
    assert plain != _save(img, density=0.1)  # this image's file takes a loop filter


def test_save_to_a_psnr_target():
    img = _grey(24, 32)
    data = _save(img, psnr=28.0)
    assert data == inpcodec.encode(img, psnr=28.0)
    assert psnr(inpcodec.decode(data), img) >= 28.0


def test_save_bpp_lands_near_the_target():
    img = _grey()
    data = _save(img, bpp=1.0)
    bpp = 8 * len(data) / img.size
    assert abs(bpp - 1.0) <= 0.03 + 1e-9  # the rate search's tolerance
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.asarray(im), inpcodec.decode(data))


def test_save_lossless_colour():
    img = _rgb(12, 16)
    data = _save(img, bpp=32.0)  # at or above the lossless file (24.1 bpp): every pixel exact
    assert C.read(data).colour == C.COLOUR_RGB
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.asarray(im), img)


@pytest.mark.parametrize("options, message", [
    ({"quality": 190}, "quality must lie in 0..100"),
    ({"qualty": 90}, "unknown INPC save option.*qualty"),
    ({"density": 0.1, "optimize": True}, "optimize"),
    ({"encoder": "nope"}, "unknown encoder 'nope'"),
    ({"encoder": "random", "sigma": 1.0}, "sigma"),  # belhachmi's option, not random's
    ({"density": 0.1, "bpp": 0.5}, "at most one of density, bpp, psnr or quality"),
    ({"psnr": -1.0}, "psnr must be a positive number"),
    ({"density": 2.0}, "density must lie in"),
])
def test_save_refuses_bad_options(options, message, tmp_path):
    path = tmp_path / "c.inpc"
    with pytest.raises(ValueError, match=message):
        Image.fromarray(_grey(24, 32)).save(path, **options)
    assert not path.exists()  # Pillow removes the file it created


def test_save_modes():
    grey, rgb = _grey(20, 24), _rgb(20, 24)

    def mode_of(im, **options):
        with Image.open(io.BytesIO(_save_image(im, density=0.2, **options))) as out:
            return out.mode

    assert mode_of(Image.fromarray(grey).convert("1")) == "L"
    assert mode_of(Image.fromarray(rgb).convert("P")) == "RGB"
    assert mode_of(Image.fromarray(rgb).convert("CMYK")) == "RGB"
    assert mode_of(Image.fromarray(grey).convert("LA")) == "L"  # opaque: alpha dropped
    opaque = Image.fromarray(rgb).convert("RGBA")
    assert _save_image(opaque, density=0.2) == _save(rgb, density=0.2)
    transparent = opaque.copy()
    transparent.putpixel((0, 0), (1, 2, 3, 0))
    with pytest.raises(OSError, match="transparent pixels"):
        _save_image(transparent, density=0.2)
    assert _save_image(transparent, density=0.2, drop_alpha=True) == _save(
        np.asarray(transparent.convert("RGB")), density=0.2)
    palette = Image.fromarray(rgb).convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))
    with pytest.raises(OSError, match="transparent pixels"):
        _save_image(palette, density=0.2)
    for mode in ("I;16", "I", "F"):
        with pytest.raises(OSError, match=f"cannot write mode {mode} as INPC"):
            _save_image(Image.fromarray(grey).convert(mode), density=0.2)


def _save_image(im, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="INPC", **options)
    return buf.getvalue()
