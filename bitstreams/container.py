"""The inpcodec file container: header, sections, CRC32 (specification: FORMAT.md).

Format 1.0 (version byte 16) frames self-describing sections, as PNG frames chunks: a
4-character tag, the payload's length as a LEB128 varint, the payload.  A tag whose first
letter is upper case names a *critical* section (it changes the decoded pixels: a decoder
that does not know it refuses the file by its name); lower case an *ancillary* one
(metadata: a decoder may skip it).  The container only frames sections; what is inside
each is its coding tool's (:mod:`inpcodec.codec.sections`).

Versions 1 and 2 (written by inpcodec 0.2.0) are read too: a section count byte and u32
lengths.  Versions 3 to 7 were development versions that no release wrote; they are
refused by name.

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
#: The version byte of format 1.0: major version in the high nibble, minor in the low.
#: A decoder of 1.0 reads 1.x files (a later minor version adds sections only: a critical
#: one it does not know is refused by name, an ancillary one skipped).
VERSION = 0x10
#: Versions of inpcodec 0.2.0, still read: 1 (free masks) and 2 (tree masks).
LEGACY_VERSIONS = (1, 2)
#: Versions minted during the 0.3 development line and never released: refused.
DEVELOPMENT_VERSIONS = range(3, 8)
MAX_SIDE = 32768  # pixels per side
MAX_PIXELS = 1 << 26  # 67 M pixels (an 8192 x 8192 image; 8 x a 4K frame)
MAX_SECTIONS = 16
#: Largest section payload (bytes): a length above it is refused from the frame alone.
MAX_SECTION_BYTES = (1 << 32) - 1

COLOUR_GREY = 0
COLOUR_YCBCR = 1  # JPEG (ITU-R BT.601 full range) YCbCr
COLOUR_RGB = 2  # R, G, B planes, no transform (lossless colour files; since inpcodec 0.2)
COLOUR_NAMES = {COLOUR_GREY: "grey", COLOUR_YCBCR: "YCbCr (BT.601 full range)",
                COLOUR_RGB: "RGB"}

_HEAD = struct.Struct("<4sBIIBB")  # magic, version, width, height, channels, colour
_LEGACY_SECTION = struct.Struct("<4sI")  # tag, length (versions 1 and 2)
_TAG_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ")


class FormatError(ValueError):
    """The bytes are not a valid inpcodec file (or are damaged)."""


def version_name(version: int) -> str:
    """``"1.0"`` for 16; the legacy and development versions by their number."""
    return f"{version >> 4}.{version & 15}" if version >= 16 else str(version)


def critical(tag: str) -> bool:
    """A section a decoder must understand (first letter upper case), as PNG's chunks."""
    return tag[:1].isupper()


@dataclass
class Container:
    """A parsed file: image geometry, colour transform, named sections of bytes."""

    width: int
    height: int
    channels: int
    colour: int
    sections: dict = field(default_factory=dict)  # tag (str, 4 chars) -> bytes
    version: int = VERSION

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
    if len(data) < 5:
        return
    v = data[4]
    if v >> 4 > VERSION >> 4:
        raise FormatError(f"format version {version_name(v)} is newer than this decoder "
                          f"supports ({version_name(VERSION)}); upgrade inpcodec")
    if v in DEVELOPMENT_VERSIONS:
        raise FormatError(f"format version {v} was a development version that no release "
                          "wrote; it is not read (re-encode the image)")
    if v not in LEGACY_VERSIONS and v >> 4 != VERSION >> 4:
        raise FormatError(f"format version {v} is not valid")


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
    check_geometry(width, height, channels)
    if colour not in COLOUR_NAMES:
        raise FormatError(f"unknown colour transform {colour}")
    if (channels == 1) != (colour == COLOUR_GREY):
        raise FormatError(f"colour transform {COLOUR_NAMES[colour]} does not fit "
                          f"{channels} channel(s)")
    return Header(version, width, height, channels, colour)


# ----------------------------------------------------------------------------- framing


def _varint(n: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, least significant first, high bit = more."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(body: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); refuses a varint that runs past ``body``, is longer than
    5 bytes, exceeds 2^32 - 1 or is not minimal (one encoding per length)."""
    value = 0
    for i in range(5):
        if pos + i >= len(body):
            raise FormatError("truncated section header")
        byte = body[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i and byte == 0:
                raise FormatError("section length is not minimally encoded")
            if value > MAX_SECTION_BYTES:
                break
            return value, pos + i + 1
    raise FormatError("section length exceeds 2^32 - 1 bytes")


def frame(version: int, width: int, height: int, channels: int, colour: int,
          sections) -> bytes:
    """The bytes of a file with these header fields and ``(tag bytes, payload)`` sections,
    CRC appended, *without* checking them (the writer and the fuzzer's mutants share it;
    :func:`write` checks first)."""
    parts = [_HEAD.pack(MAGIC, version & 0xFF, width & 0xFFFFFFFF, height & 0xFFFFFFFF,
                        channels & 0xFF, colour & 0xFF)]
    legacy = version in LEGACY_VERSIONS
    if legacy:
        parts.append(struct.pack("<B", len(sections) & 0xFF))
    for tag, payload in sections:
        parts.append(_LEGACY_SECTION.pack(tag, len(payload)) if legacy
                     else bytes(tag) + _varint(len(payload)))
        parts.append(bytes(payload))
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def unframe(data: bytes) -> tuple[Header, list]:
    """The header and the ``(tag bytes, payload)`` list of a file whose CRC is right,
    checking the framing only (lengths inside the file, every byte accounted for, at most
    MAX_SECTIONS); tags and their meaning are :func:`read`'s."""
    data = bytes(data)
    _check_start(data)
    if len(data) < HEADER_SIZE + 4:
        raise FormatError("truncated file (shorter than its header)")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise FormatError("checksum mismatch: the file is damaged or truncated")
    head = read_header(body)
    pos, out = HEADER_SIZE, []
    if head.version in LEGACY_VERSIONS:
        if pos >= len(body):
            raise FormatError("truncated file (shorter than its header)")
        n_sections = body[pos]
        pos += 1
        if n_sections > MAX_SECTIONS:
            raise FormatError(f"{n_sections} sections exceed the limit of {MAX_SECTIONS}")
        for _ in range(n_sections):
            if pos + _LEGACY_SECTION.size > len(body):
                raise FormatError("truncated section header")
            tag, length = _LEGACY_SECTION.unpack_from(body, pos)
            pos += _LEGACY_SECTION.size
            if length > len(body) - pos:
                raise FormatError(f"section {tag!r} claims {length} bytes, only "
                                  f"{len(body) - pos} remain")
            out.append((tag, body[pos:pos + length]))
            pos += length
        if pos != len(body):
            raise FormatError(f"{len(body) - pos} unexpected bytes after the last section")
        return head, out
    while pos < len(body):
        if len(out) == MAX_SECTIONS:
            raise FormatError(f"more than {MAX_SECTIONS} sections")
        if pos + 4 > len(body):
            raise FormatError("truncated section header")
        tag = body[pos:pos + 4]
        length, pos = _read_varint(body, pos + 4)
        if length > len(body) - pos:
            raise FormatError(f"section {tag!r} claims {length} bytes, only "
                              f"{len(body) - pos} remain")
        out.append((tag, body[pos:pos + length]))
        pos += length
    return head, out


def section_header_size(payload_bytes: int, version: int = VERSION) -> int:
    """Bytes a section costs beside its payload (its tag and length)."""
    if version in LEGACY_VERSIONS:
        return _LEGACY_SECTION.size
    return 4 + len(_varint(payload_bytes))


def write(c: Container) -> bytes:
    """Serialise a container (format 1.0, or a legacy version for tests of the reader);
    sections are written in insertion order."""
    check_geometry(c.width, c.height, c.channels)
    if c.colour not in COLOUR_NAMES:
        raise FormatError(f"unknown colour transform {c.colour}")
    if len(c.sections) > MAX_SECTIONS:
        raise FormatError("too many sections")
    if c.version != VERSION and c.version not in LEGACY_VERSIONS:
        raise FormatError(f"cannot write format version {version_name(c.version)}")
    sections = []
    for tag, payload in c.sections.items():
        t = tag.encode("ascii")
        if len(t) != 4 or not set(t) <= _TAG_CHARS:
            raise FormatError(f"section tag {tag!r} must be 4 letters, digits or spaces")
        sections.append((t, payload))
    return frame(c.version, c.width, c.height, c.channels, c.colour, sections)


def read(data: bytes) -> Container:
    """Parse and validate the framing of a file; raises :class:`FormatError` with a
    one-line reason.  Each tag must be 4 letters, digits or spaces and appear once."""
    head, frames = unframe(data)
    sections = {}
    for tag, payload in frames:
        if not set(tag) <= _TAG_CHARS:
            raise FormatError(f"invalid section tag {tag!r}")
        name = tag.decode("ascii")
        if name in sections:
            raise FormatError(f"section {name!r} appears twice")
        sections[name] = payload
    return Container(head.width, head.height, head.channels, head.colour, sections,
                     head.version)
