"""Image files in and out: the one Pillow policy of the command line, the training
loaders and the benchmark.

Reading refuses rather than mangles:
* 16-bit grey images are rounded to 8 bits with a warning (:class:`PrecisionWarning`;
  inpcodec stores 8-bit samples, as JPEG and WebP do);
* floating-point images are refused by name (their range is unknown);
* an alpha channel is refused unless it is fully opaque or ``drop_alpha`` is given;
* an image larger than the file format's 2^26 pixels is refused from its header, before
  its pixels are decoded;
* the EXIF orientation is applied, so the pixels are the ones viewers show.

The ICC profile, EXIF (its orientation reset, since it is applied) and XMP of an image can
be read with it (``with_metadata=True``) and written back into the formats that carry
them (PNG, TIFF, JPEG, WebP: :data:`METADATA_FORMATS`).

Writing is atomic: a temporary file in the target folder, renamed when complete, so a
failure never leaves a partial file and never touches the file the user had.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inpcodec.bitstreams.container import MAX_PIXELS

#: File suffixes read as images from data folders (Pillow reads them all).
IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".pnm", ".tif", ".tiff", ".bmp", ".webp", ".jpg",
                  ".jpeg")
#: Pillow format written for each output suffix.
SAVE_FORMATS = {".png": "PNG", ".pgm": "PPM", ".ppm": "PPM", ".pnm": "PPM", ".tif": "TIFF",
                ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP", ".jpg": "JPEG",
                ".jpeg": "JPEG"}
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
#: Formats whose files carry an ICC profile, EXIF and XMP (Pillow writes all three).
METADATA_FORMATS = ("PNG", "TIFF", "JPEG", "WEBP")
#: What each metadata key is, for messages.
METADATA_NAMES = {"icc_profile": "ICC profile", "exif": "EXIF", "xmp": "XMP"}
#: Modes whose pixels keep their colour space when read as L or RGB (an ICC profile of
#: any other, e.g. CMYK or LAB, no longer describes the converted pixels: dropped).
PROFILE_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX"} | _SIXTEEN_BIT


class PrecisionWarning(UserWarning):
    """The input had more than 8 bits per sample and was rounded to 8 (the command line
    prints it as a note)."""
_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


def find_images(folders) -> list[Path]:
    """All image files under the folders, sorted (a fixed order for a fixed seed)."""
    files = []
    for folder in folders:
        p = Path(folder)
        if not p.is_dir():
            raise ValueError(f"data folder {folder!r} does not exist or is not a folder")
        files += [q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in "
                         f"{', '.join(map(str, folders))}")
    return sorted(files)


def _too_large(name: str, width: int, height: int) -> ValueError:
    return ValueError(f"{name}: a {width}x{height} image ({width * height / 1e6:.0f} Mpixels) "
                      f"exceeds the inpcodec format's limit of 2^26 pixels "
                      f"({MAX_PIXELS / 1e6:.0f} Mpixels)")


def _open(source, name: str) -> Image.Image:
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise ValueError(f"{name}: no such file")
        if os.path.isdir(source):
            raise ValueError(f"{name}: is a folder, not an image")
    elif isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        im = Image.open(source)  # reads the header only
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not an image file Pillow can read") from None
    except Image.DecompressionBombError:
        # Pillow refuses from the header above twice its own limit; say ours instead
        with _unchecked_open(source) as raw:
            raise _too_large(name, *raw.size) from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{name}: damaged or unreadable image ({exc})") from None
    if im.width * im.height > MAX_PIXELS:
        raise _too_large(name, im.width, im.height)
    try:
        im.load()
        return ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{name}: damaged or unreadable image ({exc})") from None


def _unchecked_open(source):
    """Open without Pillow's decompression-bomb check (to read the size for the message)."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        if hasattr(source, "seek"):
            source.seek(0)
        return Image.open(source)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _opaque(im: Image.Image) -> bool:
    return im.convert("RGBA").getchannel("A").getextrema() == (255, 255)


def metadata_bytes(key: str, value) -> bytes:
    """A metadata item as the bytes a file stores: EXIF (an :class:`PIL.Image.Exif` or
    bytes) as its TIFF structure without JPEG's ``Exif\\0\\0``, text as UTF-8."""
    if isinstance(value, Image.Exif):
        value = value.tobytes()
    if isinstance(value, str):
        value = value.encode("utf-8")
    value = bytes(value)
    if key == "exif" and value.startswith(b"Exif\x00\x00"):
        value = value[6:]
    return value


def _metadata(im: Image.Image) -> dict:
    """ICC profile, EXIF and XMP of an opened (orientation-applied) image, as
    :func:`metadata_bytes`; absent items are left out."""
    exif = im.getexif()
    items = {"icc_profile": im.info.get("icc_profile"), "exif": exif if len(exif) else None,
             "xmp": im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")}
    return {k: metadata_bytes(k, v) for k, v in items.items() if v}


def load_image(source, *, name: str | None = None, drop_alpha: bool = False,
               grey: bool = False, with_metadata: bool = False):
    """8-bit grey (H, W) or RGB (H, W, 3) from any format Pillow reads.

    Parameters
    ----------
    source : str, path-like, bytes or binary file
        The image file (or its bytes).
    name : str, optional
        How errors name it (default: the path).
    drop_alpha : bool
        Accept an image with a (not fully opaque) alpha channel and ignore the alpha.
    grey : bool
        Convert colour images to grey (Pillow's ITU-R 601-2 luma).
    with_metadata : bool
        Also return the image's ICC profile, EXIF and XMP: a dict with the keys of
        Pillow's ``im.info`` (``icc_profile``, ``exif``, ``xmp``) for those it has.  The
        EXIF orientation is applied to the pixels and reset in the EXIF; a profile is
        dropped where the pixels leave its colour space (CMYK or LAB read as RGB, colour
        read as grey).

    Returns
    -------
    ndarray, or (ndarray, dict) with ``with_metadata``

    Raises
    ------
    ValueError
        One line naming the file and the reason: missing, not an image, damaged,
        floating point, alpha, larger than the format's 2^26 pixels.

    Warns
    -----
    PrecisionWarning
        For a 16-bit grey image, rounded to 8 bits (v * 255 / 65535).
    """
    name = name or str(source)
    im = _open(source, name)
    img = _pixels(im, name, drop_alpha, grey)
    if not with_metadata:
        return img
    meta = _metadata(im)
    was_grey = im.mode in {"1", "L", "LA", "La"} | _SIXTEEN_BIT
    if im.mode not in PROFILE_MODES or (grey and not was_grey):
        meta.pop("icc_profile", None)
    return img, meta


def _pixels(im: Image.Image, name: str, drop_alpha: bool, grey: bool) -> np.ndarray:
    mode = im.mode
    if mode == "F":
        raise ValueError(f"{name}: floating-point images (mode F) are not supported: their "
                         "range is unknown; convert to 8 bits per channel first")
    if mode in _SIXTEEN_BIT:
        a = np.asarray(im).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"{name}: {mode} image with values outside 0..65535 is not "
                             "supported; convert to 8 bits per channel first")
        warnings.warn(f"{name}: 16-bit grey image rounded to 8 bits (inpcodec stores 8-bit "
                      "samples)", PrecisionWarning, stacklevel=3)
        out = ((a * 255 + 32767) // 65535).astype(np.uint8)  # v * 255 / 65535, rounded
        return out
    if mode == "P" and "transparency" in im.info:
        mode = "PA"
    if mode in _ALPHA:
        if not drop_alpha and not _opaque(im):
            raise ValueError(f"{name}: the image has transparent pixels ({mode}); pass "
                             "--drop-alpha to use it without its alpha channel")
        im = im.convert("LA" if mode in ("LA", "La") else "RGBA")
        im = im.convert("L" if im.mode == "LA" else "RGB")
    elif mode in ("1", "L"):
        im = im.convert("L")
    elif mode in ("RGB", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    else:
        raise ValueError(f"{name}: unsupported image mode {mode}")
    if grey and im.mode != "L":
        im = im.convert("L")
    return np.asarray(im)


def image_format(path: str) -> str:
    """Pillow's format name for an output path, from its suffix."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in SAVE_FORMATS:
        raise ValueError(f"{path}: unknown image extension {ext or '(none)'}; use one of "
                         f"{', '.join(sorted(SAVE_FORMATS))}")
    return SAVE_FORMATS[ext]


def _metadata_options(fmt: str, metadata: dict) -> dict:
    """Pillow's save options that write ``metadata`` into a file of format ``fmt``."""
    opts = {}
    if metadata.get("icc_profile"):
        opts["icc_profile"] = bytes(metadata["icc_profile"])
    exif = Image.Exif()
    if metadata.get("exif"):
        exif.load(bytes(metadata["exif"]))  # each plugin frames it as its format wants
    xmp = metadata.get("xmp")
    if xmp:
        xmp = bytes(xmp)
        if fmt == "PNG":  # Pillow's PNG writer takes XMP as its iTXt chunk
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
            opts["pnginfo"] = info
        elif fmt == "TIFF":
            exif[700] = xmp  # the XMP tag, beside the EXIF's in the first IFD
        else:
            opts["xmp"] = xmp
    if len(exif):
        opts["exif"] = exif
    return opts


def image_bytes(img: np.ndarray, fmt: str = "PNG", metadata: dict | None = None) -> bytes:
    """The image (rounded and clipped to 8 bits) as a file of Pillow format ``fmt``, with
    ``metadata`` (``icc_profile``, ``exif``, ``xmp``) where the format carries it
    (:data:`METADATA_FORMATS`; elsewhere it is left out: see :func:`dropped_metadata`).

    WebP is written lossless and JPEG at quality 100: an output should not add loss.
    """
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    opts = {"WEBP": {"lossless": True}, "JPEG": {"quality": 100}}.get(fmt, {})
    if metadata and fmt in METADATA_FORMATS:
        opts.update(_metadata_options(fmt, metadata))
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format=fmt, **opts)
    return buf.getvalue()


def dropped_metadata(fmt: str, metadata: dict | None) -> list[str]:
    """Names of the metadata items a file of format ``fmt`` cannot carry."""
    if fmt in METADATA_FORMATS or not metadata:
        return []
    return [METADATA_NAMES[k] for k in METADATA_NAMES if metadata.get(k)]


def save_image(path: str, img: np.ndarray, metadata: dict | None = None) -> None:
    """Write an image atomically, format from the file extension."""
    write_atomic(path, image_bytes(img, image_format(path), metadata))


def write_atomic(path: str, data: bytes) -> None:
    """Write through a temporary file in the target folder, renamed when complete."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".inpcodec-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_bytes(path: str) -> bytes:
    """The bytes of a file, with one-line errors for a missing path or a folder."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder")
    with open(path, "rb") as fh:
        return fh.read()


def check_output_path(path: str, inputs=()) -> None:
    """Refuse, before any work, an output that cannot be written or that is an input.

    An output that is the same file as one of ``inputs`` (same resolved path, or the same
    file through a link) would destroy that input: refused.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{path}: output folder is not writable")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder")
    for inp in inputs:
        if inp is None:
            continue
        same = os.path.realpath(path) == os.path.realpath(inp)
        if not same and os.path.exists(path) and os.path.exists(inp):
            same = os.path.samefile(path, inp)
        if same:
            raise ValueError(f"{path}: is the input file {inp}; choose another output")
