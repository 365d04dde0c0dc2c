"""The coding tools of an inpcodec file, one object per section (FORMAT.md).

Each tool owns its section's tag and payload, and holds both sides of it together, as
CompressAI's latent codecs do: ``compress(...) -> payload`` on the encoder's side,
``parse(payload, header)`` (cheap checks of its fields, before anything scales with the
image) and ``decompress(...)`` on the decoder's.  The container
(:mod:`inpcodec.bitstreams.container`) only frames the sections; :mod:`.decoder` asks
each tool for its part.

Critical sections (a decoder that does not know one refuses the file by its name):
``MASK`` (the mask or split tree), ``CTRE`` (chroma on a coarser tree), ``VAL0``-``VAL2``
(each channel's values, with their model and levels), ``GUID`` (chroma guided by the
luma), ``FILT`` (the loop filter).  Ancillary (a decoder may skip them): ``iccp``,
``exif``, ``xmp `` (the image's metadata).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from inpcodec.bitstreams.container import COLOUR_YCBCR, FormatError
from inpcodec.bitstreams.mask_coder import decode_mask, encode_mask
from inpcodec.bitstreams.tree_coder import decode_tree, encode_tree, tree_mask
from inpcodec.bitstreams.tree_values import decode_tree_values, encode_tree_values
from inpcodec.bitstreams.value_coder import decode_values, encode_values, max_values

from .encoders import FREE_MASK_CODER, TREE_MASK_CODER
from .loop_filter import LoopFilter
from .quantiser import MAX_LEVELS

# constriction reports compressed data that cannot come from its model by an
# AssertionError (found by benchmarks/fuzz_decoder.py); numpy/constriction raise the others
ENTROPY_ERRORS = (ValueError, RuntimeError, AssertionError, IndexError, OverflowError)


def words(b: bytes) -> np.ndarray:
    """A payload of little-endian u32 words (constriction's compressed data)."""
    return np.frombuffer(b, dtype="<u4").astype(np.uint32)


def _word_bytes(w: np.ndarray) -> bytes:
    return np.asarray(w).astype("<u4").tobytes()


def _whole_words(payload: bytes, what: str) -> None:
    if not payload or len(payload) % 4:
        raise FormatError(f"{what} is not a whole number of 32-bit words")


# ----------------------------------------------------------------------------- MASK


@dataclass(frozen=True)
class Mask:
    """``MASK``: u8 mask coder (1 free mask, 2 split tree), then its u32 words."""

    TAG = "MASK"
    NAMES = {FREE_MASK_CODER: "free mask (adaptive quadtree of the points)",
             TREE_MASK_CODER: "split tree (corners and centres of its leaves)"}
    coder: int
    words: np.ndarray

    @staticmethod
    def compress(found) -> bytes:
        """The payload of a mask encoder's :class:`~.encoders.MaskResult`."""
        w = (encode_tree(found.structure) if found.coder == TREE_MASK_CODER
             else encode_mask(found.mask))
        return bytes([found.coder]) + _word_bytes(w)

    @classmethod
    def parse(cls, payload: bytes, head, coder: int | None = None) -> Mask:
        """Check the coder and, for a free mask, its point count (word 0).  ``coder``:
        a legacy file's (its payload is the words alone)."""
        if coder is None:
            if not payload:
                raise FormatError("mask section is empty")
            coder, payload = payload[0], payload[1:]
        if coder not in cls.NAMES:
            raise FormatError(f"unknown mask coder {coder}")
        _whole_words(payload, "the mask section")
        w = words(payload)
        if coder == FREE_MASK_CODER and not 1 <= int(w[0]) <= head.width * head.height:
            raise FormatError(f"point count {int(w[0])} does not fit a "
                              f"{head.width}x{head.height} image")
        return cls(coder, w)

    def decompress(self, head):
        """(mask, split tree or None)."""
        try:
            if self.coder == TREE_MASK_CODER:
                tree = decode_tree(self.words, head.height, head.width)
                mask = tree_mask(tree)
            else:
                tree, mask = None, decode_mask(self.words, head.height, head.width)
                if int(mask.sum()) != int(self.words[0]):
                    raise ValueError(f"{int(mask.sum())} points decoded, "
                                     f"{int(self.words[0])} stored")
        except ENTROPY_ERRORS as exc:
            raise FormatError(f"corrupt mask data ({exc})") from None
        if not mask.any():
            raise FormatError("corrupt mask data: no points")
        return mask, tree


# ----------------------------------------------------------------------------- CTRE


class ChromaTree:
    """``CTRE``: u8 k, 1..15.  Cb and Cr live on the mask's split tree with its bottom
    splits merged k times (YCbCr tree files only)."""

    TAG = "CTRE"
    MAX_MERGES = 15

    @staticmethod
    def compress(merges: int) -> bytes:
        return bytes([merges])

    @classmethod
    def parse(cls, payload: bytes, head, mask_coder: int) -> int:
        if len(payload) != 1:
            raise FormatError("chroma tree section has the wrong length")
        k = payload[0]
        if not 1 <= k <= cls.MAX_MERGES:
            raise FormatError(f"chroma merges {k} outside 1..{cls.MAX_MERGES}")
        if head.channels != 3 or mask_coder != TREE_MASK_CODER:
            raise FormatError("a chroma tree needs a colour file with a split tree")
        return k


# ----------------------------------------------------------------------------- VALc


#: Value models: 1, any mask, coarse to fine over a quadtree of the points
#: (bitstreams/value_coder.py); 2, split trees, down the tree with predictions from the
#: coarser cells' corners (bitstreams/tree_values.py, its model 2).  Legacy version-2
#: files code tree values with tree_values.py's model 1, internal model id 3.
QUADTREE_VALUES, TREE_VALUES, LEGACY_TREE_VALUES = 1, 2, 3
VALUE_MODEL_NAMES = {QUADTREE_VALUES: "coarse to fine over a quadtree of the points",
                     TREE_VALUES: "down the tree, model 2",
                     LEGACY_TREE_VALUES: "down the tree, model 1"}
_VALUES_HEAD = struct.Struct("<BH")  # value model, levels


@dataclass(frozen=True)
class Values:
    """``VALc``: u8 value model, u16 levels (2..4096), then the u32 words of channel c's
    quantised values at its points."""

    model: int
    levels: int
    words: np.ndarray

    @staticmethod
    def tag(channel: int) -> str:
        return f"VAL{channel}"

    @staticmethod
    def compress(mask, tree, symbols, levels: int) -> bytes:
        """The payload of one channel's symbols (0..levels-1) at the points of ``mask``
        (of ``tree``'s leaves where a tree is given)."""
        if tree is None:
            return _VALUES_HEAD.pack(QUADTREE_VALUES, levels) + _word_bytes(
                encode_values(mask, symbols, levels))
        return _VALUES_HEAD.pack(TREE_VALUES, levels) + _word_bytes(
            encode_tree_values(tree, symbols, levels, 2))

    @classmethod
    def parse(cls, payload: bytes, channel: int, mask_coder: int, *,
              legacy: tuple | None = None) -> Values:
        """``legacy``: (model, levels) of a version 1-2 file (its payload is the words)."""
        if legacy is None:
            if len(payload) < _VALUES_HEAD.size:
                raise FormatError(f"values of channel {channel}: section too short")
            model, levels = _VALUES_HEAD.unpack(payload[:_VALUES_HEAD.size])
            payload = payload[_VALUES_HEAD.size:]
            if model not in (QUADTREE_VALUES, TREE_VALUES):
                raise FormatError(f"values of channel {channel}: unknown value model "
                                  f"{model}")
        else:
            model, levels = legacy
        if model != QUADTREE_VALUES and mask_coder != TREE_MASK_CODER:
            raise FormatError(f"values of channel {channel}: value model {model} needs a "
                              "split tree")
        if not 2 <= levels <= MAX_LEVELS:
            raise FormatError(f"quantisation levels {levels} outside 2..{MAX_LEVELS}")
        _whole_words(payload, f"section {cls.tag(channel)}")
        return cls(model, levels, words(payload))

    def check_points(self, points: int, channel: int) -> None:
        """Before the decoder allocates per point: the words can hold that many values."""
        if points > max_values(4 * len(self.words)):
            raise FormatError(f"{points} points cannot be coded in the "
                              f"{4 * len(self.words)} bytes of channel {channel}")

    def decompress(self, mask, tree, channel: int) -> np.ndarray:
        """The symbols at the points (raster order of ``mask``; the tree's order is
        mapped by the coder)."""
        try:
            if self.model == QUADTREE_VALUES:
                return decode_values(self.words, mask, self.levels)
            if tree is None:
                raise ValueError("tree values without a tree")
            model = 1 if self.model == LEGACY_TREE_VALUES else 2
            return decode_tree_values(self.words, tree, self.levels, model)
        except ENTROPY_ERRORS as exc:
            raise FormatError(f"corrupt value data in channel {channel} ({exc})") from None


# ----------------------------------------------------------------------------- GUID


class ChromaGuide:
    """``GUID``: u8 radius r (1..64), u8 eps e (1..255): Cb and Cr filtered by the guided
    filter with the inpainted luma as guide (YCbCr files only; :func:`.colour.guide_chroma`)."""

    TAG = "GUID"
    MAX_RADIUS = 64
    #: Bytes the section adds to a file (tag, length, payload).
    NBYTES = 4 + 1 + 2

    @staticmethod
    def compress(guide) -> bytes:
        return bytes(guide)

    @classmethod
    def parse(cls, payload: bytes, head) -> tuple:
        if len(payload) != 2:
            raise FormatError("chroma guide section has the wrong length")
        if head.colour != COLOUR_YCBCR:
            raise FormatError("a chroma guide needs a YCbCr file")
        r, e = payload
        if not (1 <= r <= cls.MAX_RADIUS and e >= 1):
            raise FormatError(f"chroma guide radius {r} outside 1..{cls.MAX_RADIUS} or "
                              f"eps {e} below 1")
        return r, e


# ----------------------------------------------------------------------------- FILT


class LoopFilterSection:
    """``FILT``: the loop filter applied to the inpainted luma (:mod:`.loop_filter`)."""

    TAG = "FILT"

    @staticmethod
    def compress(filt: LoopFilter) -> bytes:
        return filt.to_bytes()

    @staticmethod
    def parse(payload: bytes, head) -> LoopFilter:
        try:
            return LoopFilter.from_bytes(payload)
        except ValueError as exc:
            raise FormatError(str(exc)) from None


# ----------------------------------------------------------------------------- metadata


class Metadata:
    """The ancillary sections ``iccp`` (ICC profile), ``exif`` (EXIF, a TIFF structure
    from its byte-order mark, without JPEG's ``Exif\\0\\0``) and ``xmp `` (XMP packet,
    UTF-8): each the zlib stream of those bytes.

    A decoder that fails on one (damaged stream, more than MAX_BYTES) drops it: metadata
    never stops the pixels.  Keys are Pillow's ``im.info`` keys.
    """

    TAGS = {"icc_profile": "iccp", "exif": "exif", "xmp": "xmp "}
    #: Largest decompressed metadata item a decoder keeps (bytes).
    MAX_BYTES = 1 << 24

    @classmethod
    def compress(cls, metadata: dict) -> dict:
        """{tag: payload} for the items present in ``metadata`` (Pillow's keys)."""
        out = {}
        for key, tag in cls.TAGS.items():
            value = metadata.get(key)
            if value:
                if isinstance(value, str):
                    value = value.encode("utf-8")
                out[tag] = zlib.compress(bytes(value), 9)
        return out

    @classmethod
    def decompress(cls, sections: dict) -> dict:
        """Pillow-keyed metadata from a file's sections (items that fail are dropped)."""
        out = {}
        for key, tag in cls.TAGS.items():
            if tag not in sections:
                continue
            d = zlib.decompressobj()
            try:
                value = d.decompress(sections[tag], cls.MAX_BYTES)
            except zlib.error:
                continue
            if d.unconsumed_tail or not d.eof:  # over MAX_BYTES, or a cut stream
                continue
            out[key] = value
        return out


#: Every section tag this decoder knows, critical and ancillary.
KNOWN_TAGS = frozenset({Mask.TAG, ChromaTree.TAG, ChromaGuide.TAG, LoopFilterSection.TAG}
                       | {Values.tag(c) for c in range(3)} | set(Metadata.TAGS.values()))
