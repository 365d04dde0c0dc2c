"""Pillow plugin: read and write inpcodec (``.inpc``) files with ``PIL.Image``.

Importing this module registers the format ``"INPC"`` with Pillow (opener, saver,
decoder, the extension ``.inpc`` and the MIME type ``image/x-inpcodec``).

Examples
--------
::

    import inpcodec.pillow  # noqa: F401  (registers the format)
    from PIL import Image

    im = Image.open("photo.inpc")    # reads the 15-byte header only
    im.size, im.mode                 # (width, height), "L" (grey) or "RGB"
    im.load()                        # decodes (inpcodec.decode, the reference solver)
    Image.open("photo.png").save("photo.inpc", bpp=0.2)
    Image.open("photo.png").save("photo.inpc", density=0.05, levels=32, encoder="ps")

Notes
-----
Opening parses the header alone; the file's checksum and its coded data are checked
when the pixels are decoded, on ``load()`` (or anything that needs the pixels).  A
damaged, truncated or forged file then raises :class:`OSError` with a one-line reason;
bytes that are not an inpcodec file make ``Image.open`` raise
:class:`PIL.UnidentifiedImageError`; an inpcodec file whose header this version cannot
read (a newer format version, a colour transform it does not know) raises
:class:`OSError` from ``Image.open``.

Save options are those of :func:`inpcodec.encode`: one of ``quality`` (0-100),
``bpp``, ``density`` and ``psnr`` (with none of them the command line's default quality,
one pass), ``encoder`` (default ``tree-rdo``, the command line's), ``levels``,
``chroma_levels``, ``tonal``, ``seed``, ``solver``, ``progress``, ``effort``,
``chroma_guide``, ``loop_filter`` and the chosen encoder's own options (e.g. ``sigma`` for
``belhachmi``); ``drop_alpha=True`` saves an image with transparent pixels without its
alpha channel. The image's ICC profile, EXIF and XMP (``im.info``, or the save options
``icc_profile``, ``exif`` and ``xmp``) are kept in the file, and an opened file gives
them back in ``im.info``, as Pillow's own formats do; ``strip=True`` drops them (a
profile is dropped too where the pixels leave its colour space: CMYK, LAB, HSV, YCbCr
saved as RGB). An option given as ``None`` takes its default. Any other option raises
:class:`ValueError`, as do the values :func:`inpcodec.encode` refuses
(:class:`inpcodec.codec.limits.CodecError`).

Modes: ``L`` is stored grey and ``RGB`` colour; ``1`` is saved as ``L``; ``P``,
``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` and ``RGBX`` as ``RGB``; ``LA``, ``PA``, ``RGBA``
(and ``P`` with transparency) lose their alpha channel when it is fully opaque and are
refused (:class:`OSError`) otherwise, unless ``drop_alpha=True``; 16-bit and
floating-point modes are refused (:class:`OSError`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile

from inpcodec import decode, encode
from inpcodec.bitstreams import container as _container
from inpcodec.bitstreams.container import FormatError
from inpcodec.codec.decoder import read_metadata
from inpcodec.codec.encoders import get_encoder
from inpcodec.codec.io import PROFILE_MODES, metadata_bytes
from inpcodec.codec.limits import CodecError
from inpcodec.codec.pipeline import DEFAULT_ENCODER

FORMAT = "INPC"
MIME = "image/x-inpcodec"
EXTENSION = ".inpc"
#: Keywords of :func:`inpcodec.encode` accepted as save options (besides the encoder's).
API_OPTIONS = ("encoder", "quality", "density", "bpp", "psnr", "levels", "chroma_levels",
               "tonal", "seed", "solver", "progress", "effort", "chroma_guide", "loop_filter",
               "threads")
#: Metadata kept in a file and given back in ``im.info`` (Pillow's keys).
METADATA_KEYS = ("icc_profile", "exif", "xmp")
_ALPHA_MODES = {"LA": "L", "La": "L", "PA": "RGB", "RGBA": "RGB", "RGBa": "RGB"}
_AS_RGB = {"P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"}


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == _container.MAGIC


def _tile(*args):
    make = getattr(ImageFile, "_Tile", None)  # Pillow >= 11; a plain tuple before
    return make(*args) if make is not None else tuple(args)


class InpcImageFile(ImageFile.ImageFile):
    """An inpcodec file: the header on open, the pixels on ``load()``."""

    format = FORMAT
    format_description = "inpcodec (homogeneous diffusion inpainting)"

    def _open(self) -> None:
        head = self.fp.read(_container.HEADER_SIZE)
        if not _accept(head):
            raise SyntaxError("not an inpcodec file")
        if len(head) < _container.HEADER_SIZE:
            raise SyntaxError("truncated inpcodec header")
        # the header alone is checked here; the CRC and the sections by the decoder, on
        # load()
        try:
            h = _container.read_header(head)
        except FormatError as exc:
            raise OSError(f"invalid inpcodec header: {exc}") from None
        version, width, height, channels, colour = (h.version, h.width, h.height,
                                                    h.channels, h.colour)
        self._size = (width, height)
        mode = "L" if channels == 1 else "RGB"
        if isinstance(getattr(type(self), "mode", None), property):
            self._mode = mode  # Pillow >= 10.1
        else:
            self.mode = mode
        self.info["version"] = _container.version_name(version)
        # the metadata sections lie after the coded image: read the file (not decoded);
        # a damaged file keeps its header here and is refused on load()
        start = self.fp.tell()
        try:
            self.info.update(read_metadata(head + self.fp.read()))
        except FormatError:
            pass
        self.fp.seek(start)
        self.info["colour"] = _container.COLOUR_NAMES[colour]
        # one tile: the whole file, from byte 0, through the decoder below
        self.tile = [_tile(FORMAT, (0, 0, width, height), 0, None)]


class InpcDecoder(ImageFile.PyDecoder):
    """Reads the whole file and decodes it with :func:`inpcodec.decode`."""

    _pulls_fd = True

    def decode(self, buffer):
        data = self.fd.read()
        try:
            pixels = decode(data)
        except (FormatError, CodecError) as exc:
            raise OSError(f"cannot decode inpcodec file: {exc}") from None
        want = (self.state.ysize, self.state.xsize) + (() if self.mode == "L" else (3,))
        if pixels.shape != want or pixels.dtype != np.uint8:
            raise OSError(f"cannot decode inpcodec file: decoded {pixels.shape}, the header "
                          f"says {want}")
        self.set_as_raw(np.ascontiguousarray(pixels).tobytes())
        return -1, 0


def _opaque(im: Image.Image) -> bool:
    return im.convert("RGBA").getchannel("A").getextrema() == (255, 255)


def _pixels(im: Image.Image, drop_alpha: bool) -> np.ndarray:
    """The image as the uint8 (H, W) or (H, W, 3) array that inpcodec encodes."""
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        mode = "PA"
    if mode in _ALPHA_MODES:
        if not drop_alpha and not _opaque(im):
            raise OSError(f"cannot write mode {im.mode} as {FORMAT}: the image has "
                          "transparent pixels and inpcodec stores no alpha channel; save "
                          "it with drop_alpha=True or convert it first")
        im = im.convert("LA" if _ALPHA_MODES[mode] == "L" else "RGBA")
        im = im.convert(_ALPHA_MODES[mode])
    elif mode == "1":
        im = im.convert("L")
    elif mode in _AS_RGB:
        im = im.convert("RGB")
    elif mode not in ("L", "RGB"):
        raise OSError(f"cannot write mode {mode} as {FORMAT}: inpcodec stores 8-bit grey "
                      "or RGB images (convert 16-bit and floating-point images first)")
    return np.asarray(im, dtype=np.uint8)


def _options(info: dict) -> dict:
    opts = {k: v for k, v in info.items() if k != "drop_alpha" and v is not None}
    encoder = get_encoder(opts.get("encoder", DEFAULT_ENCODER))  # ValueError: a bad name
    unknown = sorted(k for k in opts if k not in API_OPTIONS and k not in encoder.options)
    if unknown:
        own = ", ".join(encoder.options) or "none"
        raise ValueError(f"unknown {FORMAT} save option(s) {', '.join(unknown)}; the options "
                         f"are {', '.join(API_OPTIONS)}, drop_alpha and those of encoder "
                         f"{encoder.name!r}: {own}")
    return opts


def _metadata(im: Image.Image, info: dict) -> dict:
    """ICC profile, EXIF and XMP to keep: the save options', else the image's (as
    Pillow's own writers take ``icc_profile``); none with ``strip=True``."""
    if info.get("strip"):
        return {}
    out = {}
    for key in METADATA_KEYS:
        value = info.get(key, im.info.get(key))
        if key == "icc_profile" and im.mode not in PROFILE_MODES:
            continue  # saved as RGB: the profile no longer describes the pixels
        if value:
            out[key] = metadata_bytes(key, value)
    return out


def _save(im: Image.Image, fp, filename) -> None:
    info = dict(im.encoderinfo)
    metadata = _metadata(im, info)
    opts = _options({k: v for k, v in info.items() if k not in METADATA_KEYS + ("strip",)})
    data = encode(_pixels(im, bool(info.get("drop_alpha", False))), metadata=metadata,
                  **opts)  # the options are checked before any work: a wrong one fails
    fp.write(data)


Image.register_open(FORMAT, InpcImageFile, _accept)
Image.register_decoder(FORMAT, InpcDecoder)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, EXTENSION)
Image.register_mime(FORMAT, MIME)
