"""Metadata kept: ICC profile, EXIF and XMP from the input to the file to the output."""

import functools
import io

import numpy as np
import pytest
from _images import make_image
from click.testing import CliRunner
from PIL import Image, ImageCms, PngImagePlugin

import inpcodec
import inpcodec.pillow  # noqa: F401 (registers the format)
from inpcodec import cli
from inpcodec.bitstreams import container as C
from inpcodec.codec import io as iio
from inpcodec.codec.decoder import info, metadata_nbytes, read_metadata
from inpcodec.codec.pipeline import encode_report
from inpcodec.codec.sections import Metadata

XMP = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF/></x:xmpmeta>"


@functools.cache
def _profile() -> bytes:
    """An sRGB profile (made once: it holds the time it was made)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _photo(tmp_path, orientation=6):
    """A 30 x 20 colour PNG with an sRGB profile, EXIF (maker, orientation) and XMP."""
    img = make_image(20, 30, colour=True)
    exif = Image.Exif()
    exif[0x010F] = "inpcodec test"
    exif[0x0112] = orientation
    png = PngImagePlugin.PngInfo()
    png.add_itxt("XML:com.adobe.xmp", XMP.decode())
    path = tmp_path / "photo.png"
    Image.fromarray(img).save(path, icc_profile=_profile(), exif=exif, pnginfo=png)
    return path, img


def test_load_image_gives_the_metadata_with_the_orientation_applied(tmp_path):
    path, img = _photo(tmp_path)
    got, meta = iio.load_image(str(path), with_metadata=True)
    np.testing.assert_array_equal(got, np.rot90(img, -1))  # orientation 6: 90 degrees cw
    assert meta["icc_profile"] == _profile() and meta["xmp"] == XMP
    exif = Image.Exif()
    exif.load(meta["exif"])
    assert exif[0x010F] == "inpcodec test" and 0x0112 not in exif  # applied, reset
    assert not meta["exif"].startswith(b"Exif")  # the TIFF structure itself
    # read as grey, a colour profile no longer describes the pixels
    _, grey = iio.load_image(str(path), grey=True, with_metadata=True)
    assert "icc_profile" not in grey and grey["xmp"] == XMP


@pytest.mark.parametrize("ext", ["png", "tif", "jpg", "webp"])
def test_cli_keeps_the_metadata_through_the_file(tmp_path, ext):
    path, _ = _photo(tmp_path)
    inpc, out = tmp_path / "p.inpc", tmp_path / f"back.{ext}"
    r = CliRunner().invoke(cli.main, ["encode", str(path), str(inpc)])
    assert r.exit_code == 0, r.output
    assert "ICC profile, EXIF, XMP kept" in r.output
    sections = C.read(inpc.read_bytes()).sections
    assert {"iccp", "exif", "xmp "} <= set(sections)
    assert set(info(inpc.read_bytes()).metadata) == {"icc_profile", "exif", "xmp"}
    r = CliRunner().invoke(cli.main, ["decode", str(inpc), str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.info["icc_profile"] == _profile()
        assert im.getexif()[0x010F] == "inpcodec test" and 0x0112 not in im.getexif()
        assert im.info["xmp"] == XMP
        assert im.size == (20, 30)  # turned once, by the encoder


def test_strip_and_formats_without_metadata(tmp_path):
    path, _ = _photo(tmp_path)
    kept, stripped = tmp_path / "k.inpc", tmp_path / "s.inpc"
    for out, extra in ((kept, []), (stripped, ["--strip"])):
        r = CliRunner().invoke(cli.main, ["encode", str(path), str(out), "--quiet"] + extra)
        assert r.exit_code == 0, r.output
    a, b = kept.read_bytes(), stripped.read_bytes()
    assert read_metadata(b) == {} and len(b) < len(a)
    np.testing.assert_array_equal(inpcodec.decode(a), inpcodec.decode(b))
    png = tmp_path / "o.png"
    r = CliRunner().invoke(cli.main, ["decode", str(kept), str(png), "--strip", "--quiet"])
    assert r.exit_code == 0 and "icc_profile" not in Image.open(png).info
    r = CliRunner().invoke(cli.main, ["decode", str(kept), str(tmp_path / "o.bmp")])
    assert r.exit_code == 0 and "BMP files cannot carry" in r.output


def test_the_rate_target_counts_the_image_not_its_metadata():
    img = make_image(96, 128, colour=True)
    meta = {"icc_profile": np.random.default_rng(0).bytes(3000)}  # incompressible
    plain = encode_report(img, bpp=1.0)
    r = encode_report(img, bpp=1.0, metadata=meta)
    assert r.bytes_metadata > 3000 and len(r.data) == len(plain.data) + r.bytes_metadata
    assert r.bpp == plain.bpp and abs(r.bpp / 1.0 - 1) <= 0.03 and not r.note
    assert read_metadata(r.data) == meta
    assert metadata_nbytes(r.data) == r.bytes_metadata and metadata_nbytes(plain.data) == 0


def test_pillow_plugin_keeps_the_metadata(tmp_path):
    path, _ = _photo(tmp_path)
    buf = io.BytesIO()
    with Image.open(path) as im:
        im.save(buf, format="INPC")
    with Image.open(io.BytesIO(buf.getvalue())) as back:
        assert back.info["icc_profile"] == _profile() and back.info["xmp"] == XMP
        assert back.getexif()[0x010F] == "inpcodec test"
    stripped = io.BytesIO()
    Image.open(path).save(stripped, format="INPC", strip=True)
    assert read_metadata(stripped.getvalue()) == {}
    given = io.BytesIO()  # a save option wins over im.info, as in Pillow's writers
    Image.open(path).save(given, format="INPC", icc_profile=b"another profile")
    assert read_metadata(given.getvalue())["icc_profile"] == b"another profile"
    cmyk = io.BytesIO()  # saved as RGB: the CMYK profile is not kept
    im = Image.new("CMYK", (8, 8), (10, 20, 30, 40))
    im.info["icc_profile"] = b"a CMYK profile"
    im.save(cmyk, format="INPC")
    assert "icc_profile" not in read_metadata(cmyk.getvalue())


def test_damaged_or_huge_metadata_is_dropped_never_the_pixels(monkeypatch):
    data = inpcodec.encode(make_image(16, 20), metadata={"xmp": XMP, "icc_profile": b"p" * 5000})
    cont = C.read(data)
    cont.sections["xmp "] = cont.sections["xmp "][:-3]  # a cut zlib stream
    damaged = C.write(cont)
    assert read_metadata(damaged) == {"icc_profile": b"p" * 5000}
    np.testing.assert_array_equal(inpcodec.decode(damaged), inpcodec.decode(data))
    monkeypatch.setattr(Metadata, "MAX_BYTES", 4096)  # over the limit: not inflated
    assert read_metadata(data) == {"xmp": XMP}
