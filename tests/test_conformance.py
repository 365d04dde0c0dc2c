"""The conformance set of format 1.0 (``tests/data/conformance``, FORMAT.md "Conformance").

Each ``*.inpc`` file there covers a tool or an edge case; ``manifest.json`` records, per
file, what it holds (size, channels, colour transform, its sections in order), the
SHA-256 of its bytes and of its decoded pixels (uint8, row-major, RGB interleaved), or
for a file a decoder must refuse, a fragment of the reason.  A decoder written from
FORMAT.md conforms when it gives those pixels and refuses those files.  The files were
made once by :func:`make_conformance` (below) and committed; the tests read the committed
bytes, never re-encode.  A change to the decoder, the entropy coders, the colour
transforms or the rounding that would decode one of them differently fails here, on
every thread count.

To make the set again (into another folder, to compare)::

    .venv/bin/python tests/test_conformance.py /tmp/conformance
"""

import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path

import numba
import numpy as np
import pytest
from _images import colour_image, grey_image

import inpcodec
from inpcodec.bitstreams import container as C

FOLDER = Path(__file__).parent / "data" / "conformance"


def _noise(h, w, channels=0):
    shape = (h, w) if not channels else (h, w, channels)
    return np.random.default_rng(7).integers(0, 256, shape).astype(np.uint8)


def _reframe(data: bytes, **change) -> bytes:
    """``data`` with header fields or sections changed, framed with a right CRC."""
    head, frames = C.unframe(data)
    fields = dict(version=head.version, width=head.width, height=head.height,
                  channels=head.channels, colour=head.colour)
    frames = change.pop("frames", lambda f: f)(list(frames))
    fields.update(change)
    return C.frame(fields["version"], fields["width"], fields["height"], fields["channels"],
                   fields["colour"], frames)


def _tree_with_quadtree_values() -> bytes:
    """The grey tree file with its values coded by value model 1 (any mask) instead of 2:
    the same symbols, so the same pixels."""
    from inpcodec.bitstreams.value_coder import encode_values
    from inpcodec.codec.encoders import get_encoder
    from inpcodec.codec.format import file_state, planes_of

    img = grey_image()
    planes = planes_of(img, C.COLOUR_GREY)
    found = get_encoder("tree").make(planes[:, :, 0], 0.1)
    state = file_state(img, planes, found, 32, None, True)
    words = encode_values(found.mask, state.symbols[0], 32).astype("<u4").tobytes()
    state.cont.sections["VAL0"] = struct.pack("<BH", 1, 32) + words
    return state.write()


def _colour_tree_one_tree() -> bytes:
    """A colour tree file with chroma at every luma point (no CTRE section)."""
    from inpcodec.codec.encoders import get_encoder
    from inpcodec.codec.format import file_state, planes_of

    img = colour_image()
    planes = planes_of(img, C.COLOUR_YCBCR)
    found = get_encoder("tree").make(planes[:, :, 0], 0.1)
    return file_state(img, planes, found, 16, 16, True, chroma_merges=0).write()


def _with_metadata() -> bytes:
    """The grey tree file with an ICC profile, EXIF, XMP and an unknown ancillary section
    (``zzzz``, which a decoder skips): the same pixels."""
    from inpcodec.codec.format import add_metadata

    data = add_metadata(RECIPES["grey-tree.inpc"][0](), {
        "icc_profile": b"not a real profile, 48 bytes of ICC data........",
        "exif": b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "xmp": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'></x:xmpmeta>"})
    return _reframe(data, frames=lambda f: f + [(b"zzzz", b"skip me")])


#: file name -> (recipe giving the bytes, what it covers).  Numba solver.
RECIPES = {
    "grey-tree.inpc": (lambda: inpcodec.encode(grey_image(), encoder="tree", density=0.1,
                                               levels=32, loop_filter=False),
                       "grey, split tree (mask coder 2), tree values (value model 2)"),
    "grey-tree-quadtree-values.inpc": (_tree_with_quadtree_values,
                                       "a split tree with value model 1: the pixels of "
                                       "grey-tree.inpc"),
    "grey-tree-filtered.inpc": (lambda: inpcodec.encode(grey_image(48, 64), encoder="tree",
                                                        density=0.1, levels=32),
                                "grey, split tree, loop filter (FILT)"),
    "colour-tree.inpc": (_colour_tree_one_tree,
                         "YCbCr, split tree, chroma at every luma point (no CTRE)"),
    "colour-tree-ctre-guid-filt.inpc": (
        lambda: inpcodec.encode(colour_image(48, 64), encoder="tree", density=0.1,
                                levels=16),
        "YCbCr, split tree, chroma on the tree merged twice (CTRE), chroma guide (GUID), "
        "loop filter (FILT)"),
    "default-colour.inpc": (lambda: inpcodec.encode(colour_image(48, 64)),
                            "the default encoder (quality 50) on a colour image"),
    "grey-free.inpc": (lambda: inpcodec.encode(grey_image(), encoder="belhachmi",
                                               density=0.1, loop_filter=False),
                       "grey, free mask (mask coder 1), value model 1"),
    "colour-free.inpc": (lambda: inpcodec.encode(colour_image(), encoder="belhachmi",
                                                 density=0.1, levels=32, loop_filter=False),
                         "YCbCr, free mask, value model 1, chroma levels of their own"),
    "grey-lossless.inpc": (lambda: inpcodec.encode(grey_image(12, 16), bpp=32.0),
                           "grey lossless: every pixel, 256 levels"),
    "rgb-lossless.inpc": (lambda: inpcodec.encode(colour_image(12, 16), bpp=32.0),
                          "colour lossless: RGB planes (colour transform 2)"),
    "1x1-grey.inpc": (lambda: inpcodec.encode(np.full((1, 1), 77, np.uint8)),
                      "a 1 x 1 grey image, the default encoder"),
    "1x1-colour.inpc": (lambda: inpcodec.encode(np.array([[[200, 40, 90]]], np.uint8)),
                        "a 1 x 1 colour image, the default encoder"),
    "7x3-noise.inpc": (lambda: inpcodec.encode(_noise(3, 7)),
                       "odd sizes: 7 x 3 grey noise, the default encoder"),
    "strip-97x1-colour.inpc": (lambda: inpcodec.encode(_noise(1, 97, 3)),
                               "a one-row 97 x 1 colour strip, the default encoder"),
    "grey-tree-metadata.inpc": (_with_metadata,
                                "ancillary sections iccp, exif, xmp and an unknown "
                                "zzzz: the pixels of grey-tree.inpc"),
}

def _nonminimal_length() -> bytes:
    body = C.frame(0x10, 1, 1, 1, 0, [])[:-4] + b"MASK\x81\x00" + b"\x02"
    return body + struct.pack("<I", zlib.crc32(body))


#: Files a decoder must refuse: name -> (recipe, a fragment of inpcodec's reason, why).
REFUSALS = {
    "refuse-unknown-critical.inpc": (
        lambda: _reframe(RECIPES["grey-tree.inpc"][0](),
                         frames=lambda f: f + [(b"ZZZZ", b"\x00")]),
        "needs section 'ZZZZ'", "a critical section the decoder does not know"),
    "refuse-development-version.inpc": (
        lambda: _reframe(RECIPES["grey-tree.inpc"][0](), version=5),
        "development version", "version byte 5 (never released)"),
    "refuse-newer-major.inpc": (
        lambda: _reframe(RECIPES["grey-tree.inpc"][0](), version=0x20),
        "newer than this decoder", "format 2.0"),
    "refuse-bad-checksum.inpc": (
        lambda: RECIPES["grey-tree.inpc"][0]()[:-1] + b"\x00",
        "checksum", "the CRC does not match"),
    "refuse-chroma-values-in-grey.inpc": (
        lambda: _reframe(RECIPES["grey-tree.inpc"][0](),
                         frames=lambda f: f + [(b"VAL1", f[1][1])]),
        "VAL1 in a 1-channel file", "a section that does not fit the header"),
    "refuse-long-length.inpc": (
        _nonminimal_length, "minimally encoded",
        "a section length in two bytes (0x81 0x00) where one suffices"),
}


def make_conformance(folder) -> None:
    """Write the set and its manifest into ``folder`` (not run by the tests)."""
    from inpcodec.codec.decoder import info

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (recipe, covers) in RECIPES.items():
        data = recipe()
        (folder / name).write_bytes(data)
        cont = C.read(data)
        pixels = inpcodec.decode(data)
        manifest[name] = dict(
            covers=covers, width=cont.width, height=cont.height, channels=cont.channels,
            colour=cont.colour, sections=list(cont.sections), bytes=len(data),
            file_sha256=_sha256(data), pixels_sha256=_sha256(pixels.tobytes()))
        i = info(data)
        print(f"{name}: {len(data)} bytes, {list(cont.sections)}, levels {i.levels}/"
              f"{i.chroma_levels}, filter {i.loop_filter}, guide {i.chroma_guide}")
    for name, (recipe, reason, covers) in REFUSALS.items():
        data = recipe()
        (folder / name).write_bytes(data)
        manifest[name] = dict(covers=covers, refuse=reason, bytes=len(data),
                              file_sha256=_sha256(data))
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _manifest() -> dict:
    return json.loads((FOLDER / "manifest.json").read_text())


def test_the_set_covers_every_tool_and_edge_case():
    m = _manifest()
    assert set(m) == set(RECIPES) | set(REFUSALS)
    sections = {t for v in m.values() for t in v.get("sections", ())}
    assert {"MASK", "CTRE", "VAL0", "VAL1", "VAL2", "GUID", "FILT", "iccp", "exif",
            "xmp ", "zzzz"} <= sections
    files = [(FOLDER / k).read_bytes() for k in RECIPES]
    masks = {C.read(d).sections["MASK"][0] for d in files}
    models = {C.read(d).sections["VAL0"][0] for d in files}
    assert masks == {1, 2} and models == {1, 2}
    sizes = {(v["width"], v["height"]) for v in m.values() if "width" in v}
    assert {(1, 1), (7, 3), (97, 1)} <= sizes
    colours = {v["colour"] for v in m.values() if "colour" in v}
    assert colours == {C.COLOUR_GREY, C.COLOUR_YCBCR, C.COLOUR_RGB}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_conformance_file_decodes_to_its_pixels(name):
    want = _manifest()[name]
    data = (FOLDER / name).read_bytes()
    assert _sha256(data) == want["file_sha256"], "the committed file was changed"
    assert data[4] == C.VERSION
    cont = C.read(data)
    assert (cont.width, cont.height, cont.channels, cont.colour) == (
        want["width"], want["height"], want["channels"], want["colour"])
    assert list(cont.sections) == want["sections"]
    shape = (want["height"], want["width"]) + (() if want["channels"] == 1 else (3,))
    before = numba.get_num_threads()
    try:
        for threads in (1, before):
            numba.set_num_threads(threads)
            pixels = inpcodec.decode(data)
            assert pixels.shape == shape and pixels.dtype == np.uint8
            assert _sha256(np.ascontiguousarray(pixels).tobytes()) == want["pixels_sha256"]
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_conformance_file_is_refused(name):
    want = _manifest()[name]
    data = (FOLDER / name).read_bytes()
    assert _sha256(data) == want["file_sha256"]
    with pytest.raises(C.FormatError, match=want["refuse"]):
        inpcodec.decode(data)


def test_same_symbols_give_the_same_pixels():
    """Value model 1 on a split tree and the metadata leave grey-tree.inpc's pixels."""
    m = _manifest()
    assert (m["grey-tree-quadtree-values.inpc"]["pixels_sha256"]
            == m["grey-tree-metadata.inpc"]["pixels_sha256"]
            == m["grey-tree.inpc"]["pixels_sha256"])


def test_lossless_files_are_their_images():
    np.testing.assert_array_equal(
        inpcodec.decode((FOLDER / "grey-lossless.inpc").read_bytes()), grey_image(12, 16))
    np.testing.assert_array_equal(
        inpcodec.decode((FOLDER / "rgb-lossless.inpc").read_bytes()), colour_image(12, 16))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/test_conformance.py OUTPUT_FOLDER")
    make_conformance(sys.argv[1])
