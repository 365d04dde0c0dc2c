"""The inpcodec file container: header, sections, CRC32 (see FORMAT.md).

Everything is little-endian.  The reader checks the CRC over the whole file before it
parses anything, then checks every header field against fixed limits before any
allocation, so a forged or damaged file is refused with a :class:`FormatError` and never
causes a large allocation.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"INPC"
#: Newest format version this code reads and writes: 1 (free masks), 2 (tree masks), 3
#: (colour tree masks with chroma on a coarser tree), 4 (3 with chroma guided by luma),
#: 5 (tree files with the tree values' model 2), 6 (a loop filter on the luma), 7 (its
#: coefficients Rice-coded, oriented filters).
VERSION = 7
MAX_SIDE = 32768  # pixels per side
MAX_PIXELS = 1 << 26  # 67 M pixels (an 8192 x 8192 image; 8 x a 4K frame)
MAX_SECTIONS = 16

COLOUR_GREY = 0
COLOUR_YCBCR = 1  # JPEG (ITU-R BT.601 full range) YCbCr
COLOUR_RGB = 2  # R, G, B planes, no transform (lossless colour files; since inpcodec 0.2)
COLOUR_NAMES = {COLOUR_GREY: "grey", COLOUR_YCBCR: "YCbCr (BT.601 full range)",
                COLOUR_RGB: "RGB"}

_HEAD = struct.Struct("<4sBIIBB")  # magic, version, width, height, channels, colour
_SECTION = struct.Struct("<4sI")  # tag, length
#: Bytes a section costs beside its payload (its tag and length).
SECTION_HEADER_SIZE = _SECTION.size


class FormatError(ValueError):
    """The bytes are not a valid inpcodec file (or are damaged)."""


@dataclass
class Container:
    """A parsed file: image geometry, colour transform, named sections of bytes."""

    width: int
    height: int
    channels: int
    colour: int
    sections: dict = field(default_factory=dict)  # tag (str, 4 chars) -> bytes
    version: int = 1

    def section(self, tag: str) -> bytes:
        try:
            return self.sections[tag]
        except KeyError:
            raise FormatError(f"section {tag!r} is missing") from None


def check_geometry(width: int, height: int, channels: int) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise FormatError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise FormatError(f"image of {width}x{height} pixels exceeds the limit of "
                          f"{MAX_PIXELS} pixels")
    if channels not in (1, 3):
        raise FormatError(f"{channels} channels: only 1 (grey) or 3 (colour) are supported")


#: Bytes of the fixed header that :func:`read_header` reads.
HEADER_SIZE = _HEAD.size


@dataclass(frozen=True)
class Header:
    """The fixed header of a file: format version, geometry, colour transform."""

    version: int
    width: int
    height: int
    channels: int
    colour: int


def _check_start(data: bytes) -> None:
    """Magic bytes and a version this decoder knows: the first things a reader checks."""
    if len(data) == 0:
        raise FormatError("empty file")
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not an inpcodec file (wrong magic bytes)")
    if len(data) >= 5 and data[4] > VERSION:
        raise FormatError(f"format version {data[4]} is newer than this decoder supports "
                          f"(version {VERSION}); upgrade inpcodec")


def read_header(data: bytes) -> Header:
    """Parse and check the fixed header at the start of ``data`` (at least HEADER_SIZE).

    Checks what the header alone can tell (magic, version, geometry, colour transform);
    the checksum and the sections are :func:`read`'s.  Raises :class:`FormatError`.
    """
    data = bytes(data[:HEADER_SIZE])
    _check_start(data)
    if len(data) < HEADER_SIZE:
        raise FormatError("truncated file (shorter than its header)")
    _, version, width, height, channels, colour = _HEAD.unpack(data)
    if version < 1:
        raise FormatError(f"format version {version} is not valid")
    check_geometry(width, height, channels)
    if colour not in COLOUR_NAMES:
        raise FormatError(f"unknown colour transform {colour}")
    if (channels == 1) != (colour == COLOUR_GREY):
        raise FormatError(f"colour transform {COLOUR_NAMES[colour]} does not fit "
                          f"{channels} channel(s)")
    return Header(version, width, height, channels, colour)


def write(c: Container) -> bytes:
    """Serialise a container; sections are written in insertion order."""
    check_geometry(c.width, c.height, c.channels)
    if c.colour not in COLOUR_NAMES:
        raise FormatError(f"unknown colour transform {c.colour}")
    if len(c.sections) > MAX_SECTIONS:
        raise FormatError("too many sections")
    if not 1 <= c.version <= VERSION:
        raise FormatError(f"cannot write format version {c.version}")
    parts = [_HEAD.pack(MAGIC, c.version, c.width, c.height, c.channels, c.colour),
             struct.pack("<B", len(c.sections))]
    for tag, payload in c.sections.items():
        t = tag.encode("ascii")
        if len(t) != 4:
            raise FormatError(f"section tag {tag!r} must be 4 ASCII characters")
        parts.append(_SECTION.pack(t, len(payload)))
        parts.append(bytes(payload))
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def read(data: bytes) -> Container:
    """Parse and validate a file; raises :class:`FormatError` with a one-line reason."""
    data = bytes(data)
    _check_start(data)
    if len(data) < HEADER_SIZE + 1 + 4:
        raise FormatError("truncated file (shorter than its header)")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise FormatError("checksum mismatch: the file is damaged or truncated")
    head = read_header(body)
    version, width, height, channels, colour = (head.version, head.width, head.height,
                                                head.channels, head.colour)
    pos = _HEAD.size
    (n_sections,) = struct.unpack_from("<B", body, pos)
    pos += 1
    if n_sections > MAX_SECTIONS:
        raise FormatError(f"{n_sections} sections exceed the limit of {MAX_SECTIONS}")
    sections = {}
    for _ in range(n_sections):
        if pos + _SECTION.size > len(body):
            raise FormatError("truncated section header")
        tag, length = _SECTION.unpack_from(body, pos)
        pos += _SECTION.size
        if length > len(body) - pos:
            raise FormatError(f"section {tag!r} claims {length} bytes, only "
                              f"{len(body) - pos} remain")
        try:
            name = tag.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("invalid section tag") from None
        if name in sections:
            raise FormatError(f"section {name!r} appears twice")
        sections[name] = body[pos:pos + length]
        pos += length
    if pos != len(body):
        raise FormatError(f"{len(body) - pos} unexpected bytes after the last section")
    return Container(width, height, channels, colour, sections, version)
