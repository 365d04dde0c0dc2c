"""The inpcodec file of a given mask and its values, both ways.

Writing (:func:`encode_with_mask`): the values at the mask pixels (tonally optimised with
the quantiser in the loop, or the original values) quantised to ``levels`` (luma) and
``chroma_levels``; the mask and the values entropy-coded (:mod:`inpcodec.bitstreams`).
Reading (:func:`decode`, :func:`info`): the values are inpainted by homogeneous diffusion,
the luma loop-filtered if the file carries a filter (versions 6 and 7, :mod:`.loop_filter`),
YCbCr -> RGB, rounded to 8 bits.  :func:`add_loop_filter` and :func:`add_chroma_guide`
add to a written file what its decoder should do after the inpainting.  Choosing the mask and the
levels for an image is the pipeline's work (:mod:`.pipeline`, :mod:`.rate`).

The decoder's arithmetic is deterministic (integer entropy-model parameters, the Numba
solver's fixed-order reductions, element-wise colour transform), so a file decodes to the
same pixels on every run and thread count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

import numpy as np

from inpcodec.bitstreams import container as C
from inpcodec.bitstreams.mask_coder import decode_mask, encode_mask
from inpcodec.bitstreams.tree_coder import (
    decode_tree,
    encode_tree,
    merge_bottom_splits,
    tree_mask,
)
from inpcodec.bitstreams.tree_values import decode_tree_values, encode_tree_values
from inpcodec.bitstreams.value_coder import decode_values, encode_values, max_values

from .colour import guide_chroma, rgb_to_ycbcr, ycbcr_to_rgb
from .diffusion import Inpainter
from .encoders import FREE_MASK_CODER, TREE_MASK_CODER, MaskResult
from .limits import DEFAULT_MAX_PIXELS, CodecError, check_memory, check_pixels
from .loop_filter import LoopFilter, apply_loop_filter, choose_loop_filter
from .quantiser import MAX_LEVELS, quantise, quantiser
from .threads import solver_threads
from .tonal import tonal_optimisation

#: Value coders: 1, any mask, coarse-to-fine over a quadtree of the points
#: (bitstreams/value_coder.py); 2, tree masks only, down the split tree, each value
#: predicted from the coarser cells' corners (bitstreams/tree_values.py: 2.60 against 2.76
#: bits per value on Kodak tree masks, +0.11 dB at 0.1 bpp).
FREE_VALUE_CODER = 1
TREE_VALUE_CODER = 2
#: 3: colour tree files (format version 3) whose chroma lives on a coarser tree, the
#: luma's tree with its bottom splits merged ``chroma merges`` times (a PARM byte); luma
#: as value coder 2.
TREE_CHROMA_VALUE_CODER = 3
#: 4 and 5: value coders 2 and 3 with the tree values' model 2 (format version 5:
#: unrounded predictions, median centres, tails in the edge bins; 5.5 % fewer value bits on
#: Kodak tree files, bitstreams/tree_values.py).  The encoder writes these.
TREE_VALUE_CODER_2 = 4
TREE_CHROMA_VALUE_CODER_2 = 5
#: Value coders whose chroma lives on a coarser tree (a chroma merges PARM byte), and the
#: tree value model each tree value coder uses.
CHROMA_TREE_VALUE_CODERS = (TREE_CHROMA_VALUE_CODER, TREE_CHROMA_VALUE_CODER_2)
TREE_VALUE_MODEL = {TREE_VALUE_CODER: 1, TREE_CHROMA_VALUE_CODER: 1,
                    TREE_VALUE_CODER_2: 2, TREE_CHROMA_VALUE_CODER_2: 2}
#: Format version that introduced each value coder.
VALUE_CODER_VERSION = {FREE_VALUE_CODER: 1, TREE_VALUE_CODER: 2, TREE_CHROMA_VALUE_CODER: 3,
                       TREE_VALUE_CODER_2: 5, TREE_CHROMA_VALUE_CODER_2: 5}
#: What each value coder is, for ``info``.
VALUE_CODER_NAMES = {
    FREE_VALUE_CODER: "coarse to fine over a quadtree of the points",
    TREE_VALUE_CODER: "down the tree, model 1",
    TREE_CHROMA_VALUE_CODER: "down the tree, model 1; chroma on a coarser tree",
    TREE_VALUE_CODER_2: "down the tree, model 2",
    TREE_CHROMA_VALUE_CODER_2: "down the tree, model 2; chroma on a coarser tree",
}
#: Merges of the luma tree that give the chroma tree of a colour tree file (0: chroma at
#: every luma point, as format version 2).  Measured: benchmarks/RESULTS.md, "Chroma on a
#: coarser tree".
CHROMA_MERGES = 2
MAX_CHROMA_MERGES = 15
#: Levels of a lossless file: the quantiser of 256 levels reproduces every 8-bit value.
LOSSLESS_LEVELS = 256
#: CGLS tolerance, inner-solve tolerance and quantised refinement sweeps of the tonal
#: optimisation inside the codec: looser than tonal_optimisation's defaults.  On Kodak
#: (grey, 768 x 512, Belhachmi masks, 8-32 levels) they cost about 0.02 dB of PSNR and run
#: about 2x faster (benchmarks/RESULTS.md, "Rate search speed"); the rate search runs several.
TONAL_TOL = 3e-2
TONAL_SOLVE_TOL = 1e-5
TONAL_SWEEPS = 3
#: (CGLS tolerance, inner-solve tolerance, sweeps) per effort of the rate search: the fast
#: effort runs a few tonal optimisations and takes them looser still (kodim23 and kodim05
#: in colour at one fixed tree mask, a one-off script: 0.04-0.08 dB lower, about 2x
#: faster; the effort's cost in the codec: benchmarks/RESULTS.md, "Rate search effort").
#: ``lagrangian``: the Lagrangian encoder's one tonal optimisation, preconditioned CGLS to
#: 0.05, one quantised refinement sweep, inner solves to 1e-3 (the same error within 0.3 %,
#: 10-20 % fewer V-cycles than 1e-4); against the unpreconditioned CGLS to 0.1 without the
#: sweep, on kodim01/05/13/19/23 and boat in grey and colour: J lower on 8 of the 12,
#: 34 % fewer V-cycles (benchmarks/RESULTS.md, "Preconditioned tonal optimisation").
TONAL_SETTINGS = {"best": (TONAL_TOL, TONAL_SOLVE_TOL, TONAL_SWEEPS), "fast": (1e-1, 1e-4, 1),
                  "lagrangian": (5e-2, 1e-3, 1)}
#: Chroma guided by the decoded luma (format version 4): the (radius, eps) settings the
#: encoder tries on each colour tree file, keeping the best by RGB PSNR (or none).  On 6
#: Kodak images at 0.05-0.3 bpp (benchmarks/bench_chroma_guided.py, 49 settings): the
#: best single setting (3, 16) gains 0.051 dB, these three 0.065 dB, all 49 0.067 dB;
#: the best radius shrinks as the rate grows (kodim23: 8 at 0.05 bpp, 2 at 0.3).
GUIDE_CANDIDATES = ((3, 16), (6, 9), (2, 16))
MAX_GUIDE_RADIUS = 64
GUIDE_VERSION = 4
#: The loop filter on the inpainted luma (section FILT; codec/loop_filter.py): version 6
#: introduced it with int16 coefficients, version 7 codes them and adds the edge modes;
#: the encoder writes version 7.
LOOP_FILTER_VERSION = 6
CODED_FILTER_VERSION = 7
_PARM = struct.Struct("<BBHH")  # mask coder, value coder, luma levels, chroma levels
_PARM_MERGES = struct.Struct("<B")  # value coder 3 only: chroma merges
_PARM_GUIDE = struct.Struct("<BB")  # version 4, value coder 3: guide radius, eps
#: Bytes a chroma guide adds to a file.
GUIDE_NBYTES = _PARM_GUIDE.size


@dataclass(frozen=True)
class MaskCoder:
    """How a file stores its mask: ``encode(MaskResult) -> words``, ``decode(words, h, w)
    -> (mask, structure)``, the value coder its files use, and the format version that
    introduced it (files are written with it)."""

    name: str
    version: int
    encode: object
    decode: object
    value_coder: int


#: Value coders each mask coder's files may use.
VALUE_CODERS = {1: (FREE_VALUE_CODER,), 2: (TREE_VALUE_CODER, TREE_CHROMA_VALUE_CODER,
                                             TREE_VALUE_CODER_2, TREE_CHROMA_VALUE_CODER_2)}


def _decode_free(words, height, width):
    mask = decode_mask(words, height, width)
    if int(mask.sum()) != int(words[0]):
        raise ValueError(f"{int(mask.sum())} points decoded, {int(words[0])} stored")
    return mask, None


def _decode_tree(words, height, width):
    tree = decode_tree(words, height, width)
    return tree_mask(tree), tree


MASK_CODERS = {
    FREE_MASK_CODER: MaskCoder("free mask (adaptive quadtree of the points)", 1,
                               lambda found: encode_mask(found.mask), _decode_free,
                               FREE_VALUE_CODER),
    TREE_MASK_CODER: MaskCoder("split tree (corners and centres of its leaves)", 2,
                               lambda found: encode_tree(found.structure),
                               _decode_tree, TREE_VALUE_CODER_2),
}
#: Decoder post-processors by name: ``load(mask_coder, weights) -> refine``, where
#: ``refine(image, mask) -> image`` keeps the stored pixels; registered by the layer above
#: (:mod:`inpcodec.codec.postprocess` registers ``"gan"``).
POSTPROCESSORS: dict = {}


def register_postprocessor(name: str, load) -> None:
    """Make ``decode(..., postprocess=name)`` use ``load(mask_coder, weights, filtered)``
    (``filtered``: the file has a loop filter)."""
    if name in POSTPROCESSORS or name == "none":
        raise ValueError(f"post-processor {name!r} is registered already")
    POSTPROCESSORS[name] = load


def default_chroma_levels(found, levels: int, chroma_merges: int = CHROMA_MERGES) -> int:
    """Chroma levels for ``levels`` luma levels when none are given.

    On the coarser chroma tree of a colour tree file (``chroma_merges`` > 0) twice the
    luma's: its points are about 7 times fewer than the luma's, and finer chroma levels
    pay there (Kodak, benchmarks/RESULTS.md, "Chroma on a coarser tree"); elsewhere half
    of the luma's (chroma at every mask point; the rule of inpcodec 0.2).
    """
    coder = found.coder if isinstance(found, MaskResult) else FREE_MASK_CODER
    if coder == TREE_MASK_CODER and chroma_merges > 0:
        return min(MAX_LEVELS, 2 * int(levels))
    return max(2, int(levels) // 2)


def planes_of(img: np.ndarray, colour: int) -> np.ndarray:
    """The image as the (H, W, C) float64 planes a file of that colour transform stores."""
    if img.ndim == 2:
        return img.astype(np.float64)[:, :, None]
    return rgb_to_ycbcr(img) if colour == C.COLOUR_YCBCR else img.astype(np.float64)



# ----------------------------------------------------------------------------- encode


@dataclass
class TonalStart:
    """What a plane group's tonal optimisation leaves for the next file of the same image
    (a rate search's): the mask, CGLS's continuous values at its points and the gradient
    norm it stopped at (:func:`.tonal.tonal_optimisation`'s ``start`` and ``stop_norm``)."""

    mask: np.ndarray
    values: np.ndarray  # (points, channels of the group)
    stop_norm: np.ndarray


def _values(planes, mask, levels, chroma_levels, tonal, progress=False, chroma_mask=None,
            effort="best", warm=None):
    """Quantised values per channel (tonal optimisation with the quantiser in the loop);
    chroma at the points of ``chroma_mask`` (default: ``mask``).  ``warm``: a previous
    file's :class:`TonalStart` per plane group, to start from (points it did not have
    start from the image).  Returns (values, solves spent, a TonalStart per group or
    None without tonal optimisation)."""
    tol, solve_tol, sweeps = TONAL_SETTINGS[effort]
    out, starts = [], []
    groups = [(slice(0, 1), levels, mask)]
    if planes.shape[2] == 3:
        groups.append((slice(1, 3), chroma_levels, mask if chroma_mask is None
                       else chroma_mask))
    spent = 0
    for i, (sl, q, m) in enumerate(groups):
        part = planes[:, :, sl]
        if tonal:
            # one channel at a time: the solver's workspace and CGLS's vectors are per
            # channel, so a group's peak memory is one channel's; each channel stops at
            # its own tolerance
            vals, conts, stops = [], [], []
            for c in range(part.shape[2]):
                start, stop = None, None
                if warm is not None:
                    start = part[:, :, c].copy()
                    start[warm[i].mask] = warm[i].values[:, c]
                    stop = warm[i].stop_norm[c]
                res = tonal_optimisation(part[:, :, c], m, levels=quantiser(q), tol=tol,
                                         solve_tol=solve_tol, max_sweeps=sweeps,
                                         progress=progress, start=start, stop_norm=stop)
                vals.append(res.values[m])
                conts.append(res.continuous[m])
                stops.append(float(np.asarray(res.stop_norm).ravel()[0]))
                spent += res.inpaintings
            vals = np.stack(vals, axis=1)
            starts.append(TonalStart(m, np.stack(conts, axis=1), np.array(stops)))
        else:
            vals = part[m]
        for c in range(vals.shape[1]):
            out.append(quantise(vals[:, c], q))
    return out, spent, (starts if tonal else None)


def encode_with_mask(img, planes, found, levels, chroma_levels, tonal, *,
                     colour: int | None = None, progress: bool = False,
                     chroma_merges: int = CHROMA_MERGES, effort: str = "best"):
    """The file of ``img`` with this mask and these level counts: :func:`file_state`
    written.  Returns (bytes, container, inpaintings)."""
    state = file_state(img, planes, found, levels, chroma_levels, tonal, colour=colour,
                       progress=progress, chroma_merges=chroma_merges, effort=effort)
    return state.write(), state.cont, state.spent


def file_state(img, planes, found, levels, chroma_levels, tonal, *,
               colour: int | None = None, progress: bool = False,
               chroma_merges: int = CHROMA_MERGES, effort: str = "best",
               warm=None) -> FileState:
    """The file of ``img`` with this mask and these level counts.

    ``found`` is a mask encoder's :class:`MaskResult` (its coder stores the mask) or a
    boolean mask (the free-mask coder); ``planes`` are ``planes_of(img, colour)``.
    ``chroma_merges`` (colour tree masks only): chroma on the tree with its bottom splits
    merged that many times (format version 3; 0 gives a version-2 file).
    ``chroma_levels=None``: :func:`default_chroma_levels`.  ``effort``: the tonal
    optimisation's settings (``TONAL_SETTINGS``); ``warm``: another file's
    ``FileState.starts`` of this image to start it from.
    Returns the :class:`FileState`, not yet written.
    """
    if not isinstance(found, MaskResult):
        found = MaskResult(np.asarray(found, bool), 0, 0.0)
    if chroma_levels is None:
        chroma_levels = default_chroma_levels(found, levels, chroma_merges)
    if not 0 <= chroma_merges <= MAX_CHROMA_MERGES:
        raise ValueError(f"chroma_merges must lie in 0..{MAX_CHROMA_MERGES}")
    mask, coder = found.mask, MASK_CODERS[found.coder]
    channels = planes.shape[2]
    if colour is None:
        colour = C.COLOUR_GREY if channels == 1 else C.COLOUR_YCBCR
    value_coder, trees = coder.value_coder, [found.structure] * 3
    if value_coder == TREE_VALUE_CODER_2 and channels == 3 and chroma_merges > 0:
        value_coder = TREE_CHROMA_VALUE_CODER_2
        trees[1:] = [merge_bottom_splits(found.structure, chroma_merges)] * 2
    version = max(coder.version, VALUE_CODER_VERSION[value_coder])
    chroma_tree = value_coder in CHROMA_TREE_VALUE_CODERS
    chroma_mask = tree_mask(trees[1]) if chroma_tree else None
    qs, spent, starts = _values(planes, mask, levels, chroma_levels, tonal, progress,
                                chroma_mask, effort, warm)
    cont = C.Container(img.shape[1], img.shape[0], channels, colour, version=version)
    cont.sections["PARM"] = _PARM.pack(found.coder, value_coder, levels, chroma_levels) + (
        _PARM_MERGES.pack(chroma_merges) if chroma_tree else b"")
    cont.sections["MASK"] = coder.encode(found).astype("<u4").tobytes()
    for c, q in enumerate(qs):
        lv = levels if c == 0 else chroma_levels
        words = (encode_values(mask, q, lv) if value_coder == FREE_VALUE_CODER
                 else encode_tree_values(trees[c], q, lv, TREE_VALUE_MODEL[value_coder]))
        cont.sections[f"VAL{c}"] = words.astype("<u4").tobytes()
    masks = [(mask, found.structure)] + [
        (chroma_mask if chroma_tree else mask, trees[1] if chroma_tree else found.structure)
    ] * (channels - 1)
    params = _Params(found.coder, value_coder, levels, chroma_levels,
                     chroma_merges if chroma_tree else 0)
    return FileState(cont, params, masks, qs, spent, starts)


@dataclass
class FileState:
    """A file being made, kept whole from the image to the bytes: its container (sections
    set), its parameters, per channel (mask, tree or None) and the quantised symbols.

    The encoder reconstructs from it exactly what the decoder will (:meth:`planes`, the
    same function the decoder runs after entropy decoding), adds the loop filter and the
    chroma guide to it, and writes it once (:meth:`write`).
    """

    cont: C.Container
    params: _Params
    masks: list
    symbols: list
    spent: int
    #: The tonal optimisation's :class:`TonalStart` per plane group (None without one).
    starts: list | None = None

    def nbytes(self) -> int:
        """Size of the file as it stands (the container's framing included)."""
        return len(self.write())

    def planes(self, solver: str = "numba") -> np.ndarray:
        """The decoder's inpainted planes (float64, luma loop-filtered if a filter is set;
        chroma before the guide), shape (H, W, C)."""
        u = _inpaint(self.cont, self.params, self.masks, self.symbols, solver)
        return u[:, :, None] if u.ndim == 2 else u

    def pixels(self, planes: np.ndarray, chroma_guide=None) -> np.ndarray:
        """The decoder's 8-bit image of :meth:`planes` (with the file's chroma guide, or
        ``chroma_guide`` to try another)."""
        guide = self.params.chroma_guide if chroma_guide is None else tuple(chroma_guide)
        u = planes[:, :, 0] if planes.shape[2] == 1 else planes.copy()
        return _pixels(u, self.cont.colour, guide)

    def set_loop_filter(self, filt) -> None:
        self.cont.version = max(self.cont.version, CODED_FILTER_VERSION)
        self.cont.sections["FILT"] = filt.to_bytes()
        self.params = replace(self.params, loop_filter=filt)

    def set_chroma_guide(self, guide) -> None:
        self.cont.version = max(self.cont.version, GUIDE_VERSION)
        self.cont.sections["PARM"] = self.cont.sections["PARM"] + _PARM_GUIDE.pack(*guide)
        self.params = replace(self.params, chroma_guide=tuple(guide))

    def write(self) -> bytes:
        return C.write(self.cont)


def lossless_file(img):
    """The lossless file of ``img``: every pixel stored at 256 levels (colour: as RGB).

    The YCbCr transform is not reversible in 8 bits, so a lossless colour file stores
    the R, G and B planes themselves (colour transform 2, FORMAT.md).  Returns
    (bytes, container).
    """
    colour = C.COLOUR_GREY if img.ndim == 2 else C.COLOUR_RGB
    mask = np.ones(img.shape[:2], bool)
    data, cont, _ = encode_with_mask(img, planes_of(img, colour), mask, LOSSLESS_LEVELS,
                                     LOSSLESS_LEVELS, False, colour=colour)
    return data, cont


# ----------------------------------------------------------------------------- decode


@dataclass
class FileInfo:
    width: int
    height: int
    channels: int
    colour: str
    levels: int
    chroma_levels: int
    points: int
    bytes_total: int
    bytes_header: int
    bytes_mask: int
    bytes_values: list
    version: int = 1
    mask_coder: str = ""
    #: Points that store chroma (colour files; fewer than ``points`` when chroma lives on
    #: a coarser tree).
    chroma_points: int = 0
    #: (radius, eps) of the luma-guided chroma reconstruction (format version 4), or None.
    chroma_guide: tuple | None = None
    #: How the values are coded (``VALUE_CODER_NAMES``).
    value_coder: str = ""
    #: (radius, distance classes, bytes of its section, edge mode) of the loop filter
    #: (format version 6 and later), or None.
    loop_filter: tuple | None = None

    @property
    def bpp(self) -> float:
        return 8.0 * self.bytes_total / (self.width * self.height)


@dataclass(frozen=True)
class _Params:
    mask_coder: int
    value_coder: int
    levels: int
    chroma_levels: int
    chroma_merges: int = 0
    #: (radius, eps) of the luma-guided chroma reconstruction; None: plain chroma.
    chroma_guide: tuple | None = None
    loop_filter: LoopFilter | None = None


def _parse(data: bytes):
    cont = C.read(data)
    parm = cont.section("PARM")
    merged = _PARM.size + _PARM_MERGES.size
    if len(parm) not in (_PARM.size, merged, merged + _PARM_GUIDE.size):
        raise C.FormatError("parameter section has the wrong length")
    mask_coder, value_coder, lv, clv = _PARM.unpack(parm[:_PARM.size])
    if value_coder not in VALUE_CODERS.get(mask_coder, ()):
        raise C.FormatError(f"unknown coder ids (mask {mask_coder}, values {value_coder})")
    if MASK_CODERS[mask_coder].version > cont.version:
        raise C.FormatError(f"mask coder {mask_coder} needs format version "
                            f"{MASK_CODERS[mask_coder].version}, the file says {cont.version}")
    if VALUE_CODER_VERSION[value_coder] > cont.version:
        raise C.FormatError(f"value coder {value_coder} needs format version "
                            f"{VALUE_CODER_VERSION[value_coder]}, the file says {cont.version}")
    merges, guide = 0, None
    if value_coder in CHROMA_TREE_VALUE_CODERS:
        if cont.channels != 3:
            raise C.FormatError(f"value coder {value_coder} needs 3 channels (the file has "
                                f"{cont.channels})")
        if len(parm) == _PARM.size:
            raise C.FormatError("parameter section has the wrong length")
        (merges,) = _PARM_MERGES.unpack(parm[_PARM.size:merged])
        if not 1 <= merges <= MAX_CHROMA_MERGES:
            raise C.FormatError(f"chroma merges {merges} outside 1..{MAX_CHROMA_MERGES}")
        if len(parm) > merged:
            if cont.version < GUIDE_VERSION or cont.colour != C.COLOUR_YCBCR:
                raise C.FormatError(f"a chroma guide needs format version {GUIDE_VERSION} "
                                    f"and YCbCr (the file: version {cont.version}, "
                                    f"{C.COLOUR_NAMES[cont.colour]})")
            guide = _PARM_GUIDE.unpack(parm[merged:])
            if not (1 <= guide[0] <= MAX_GUIDE_RADIUS and guide[1] >= 1):
                raise C.FormatError(f"chroma guide radius {guide[0]} outside "
                                    f"1..{MAX_GUIDE_RADIUS} or eps {guide[1]} below 1")
    elif len(parm) != _PARM.size:
        raise C.FormatError("parameter section has the wrong length")
    for q in (lv, clv):
        if not 2 <= q <= MAX_LEVELS:
            raise C.FormatError(f"quantisation levels {q} outside 2..{MAX_LEVELS}")
    expected = {"PARM", "MASK"} | {f"VAL{c}" for c in range(cont.channels)}
    filt = None
    if "FILT" in cont.sections and cont.version >= LOOP_FILTER_VERSION:
        expected.add("FILT")
        try:
            filt = LoopFilter.from_bytes(cont.sections["FILT"], cont.version)
        except ValueError as exc:
            raise C.FormatError(str(exc)) from None
    if set(cont.sections) != expected:
        raise C.FormatError(f"sections {sorted(cont.sections)} do not match a "
                            f"{cont.channels}-channel file of version {cont.version}")
    for k, v in cont.sections.items():
        if k not in ("PARM", "FILT") and (len(v) % 4 or not v):
            raise C.FormatError(f"section {k} is not a whole number of 32-bit words")
    if mask_coder == FREE_MASK_CODER:  # its first word is the point count: check early
        points = int(_words(cont.sections["MASK"][:4])[0])
        if not 1 <= points <= cont.width * cont.height:
            raise C.FormatError(f"point count {points} does not fit a "
                                f"{cont.width}x{cont.height} image")
    return cont, _Params(mask_coder, value_coder, lv, clv, merges, guide, filt)


def _words(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<u4").astype(np.uint32)


# constriction reports compressed data that cannot come from its model by an
# AssertionError (found by benchmarks/fuzz_decoder.py); numpy/constriction raise the others
_ENTROPY_ERRORS = (ValueError, RuntimeError, AssertionError, IndexError, OverflowError)


def _decode_mask_checked(cont, params):
    """Per channel (mask, what the coder stored) of a parsed file, with the checks of
    FORMAT.md."""
    words = _words(cont.section("MASK"))
    try:
        mask, structure = MASK_CODERS[params.mask_coder].decode(words, cont.height,
                                                                cont.width)
    except _ENTROPY_ERRORS as exc:
        raise C.FormatError(f"corrupt mask data ({exc})") from None
    if int(mask.sum()) == 0:
        raise C.FormatError("corrupt mask data: no points")
    out = [(mask, structure)] * cont.channels
    if params.value_coder in CHROMA_TREE_VALUE_CODERS:
        chroma = merge_bottom_splits(structure, params.chroma_merges)
        out[1:] = [(tree_mask(chroma), chroma)] * 2
    for c, (m, _) in enumerate(out):  # before the value decoder allocates per point
        points = int(m.sum())
        if points > max_values(len(cont.sections[f"VAL{c}"])):
            raise C.FormatError(f"{points} points cannot be coded in the "
                                f"{len(cont.sections[f'VAL{c}'])} bytes of channel {c}")
    return out


def info(data: bytes) -> FileInfo:
    """Header fields and the bytes per part, from the file alone (the mask is decoded)."""
    cont, params = _parse(data)
    check_memory(cont.width, cont.height, 1, factor=0.25)  # the mask alone
    masks = _decode_mask_checked(cont, params)
    vals = [len(cont.section(f"VAL{c}")) for c in range(cont.channels)]
    return FileInfo(cont.width, cont.height, cont.channels, C.COLOUR_NAMES[cont.colour],
                    params.levels, params.chroma_levels, int(masks[0][0].sum()), len(data),
                    len(data) - len(cont.section("MASK")) - sum(vals),
                    len(cont.section("MASK")), vals, cont.version,
                    MASK_CODERS[params.mask_coder].name,
                    int(masks[-1][0].sum()) if cont.channels == 3 else 0,
                    params.chroma_guide, VALUE_CODER_NAMES[params.value_coder],
                    None if params.loop_filter is None else
                    (params.loop_filter.radius, params.loop_filter.classes,
                     len(cont.sections["FILT"]) + C.SECTION_HEADER_SIZE,
                     params.loop_filter.edges))


def decode(data: bytes, *, solver: str = "numba", postprocess: str = "none",
           weights=None, return_info: bool = False, threads: int | None = None,
           max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """Decode inpcodec bytes to a uint8 image ((H, W) grey or (H, W, 3) RGB).

    The default solver, ``numba``, is the reference: its fixed-order arithmetic gives the
    same pixels on every run, thread count and machine, and the encoder reports on it.
    ``cupy`` (or ``auto`` on a machine with CUDA) is faster on large images but sums in
    another order, so pixels whose value lies very close to a rounding boundary may come
    out one grey level apart from the reference.

    ``threads``: the solver's threads (:mod:`.threads`; default one, 0 every core); the
    pixels are the same for any count.

    ``max_pixels``: files of more pixels are refused from their header, before any
    allocation (default :data:`.limits.DEFAULT_MAX_PIXELS`, 33.5 Mpixels; None: the
    format's 2^26); so is a file whose decoding would not fit in the free memory.

    ``postprocess="gan"`` refines the reconstruction with the GAN post-processor
    (:mod:`inpcodec.codec.postprocess`; ``weights``: a generator file instead of the
    shipped one): the stored pixels keep their decoded values, the others are the
    network's (torch float arithmetic: not promised bit-identical across machines and
    thread counts).

    Raises
    ------
    bitstreams.container.FormatError
        Damaged, truncated, forged or foreign data (one-line reason).
    CodecError
        The image is over ``max_pixels`` or would not fit in memory, or an unavailable
        option.
    """
    if postprocess != "none" and postprocess not in POSTPROCESSORS:
        raise CodecError(f"unknown post-processor {postprocess!r} (none, "
                         f"{', '.join(POSTPROCESSORS)})")
    if postprocess == "none" and weights is not None:
        raise CodecError("weights are for a post-processor; none was asked for")
    # the container alone (header, checksum, section frames; nothing that scales with the
    # image): its geometry is refused before the sections' decoding allocates
    head = C.read(data)
    check_pixels(head.width, head.height, max_pixels)
    check_memory(head.width, head.height, head.channels)
    cont, params = _parse(data)
    refine = None
    if postprocess != "none":
        try:  # before any decoding work: a missing model fails at once
            refine = POSTPROCESSORS[postprocess](params.mask_coder, weights,
                                                 params.loop_filter is not None)
        except (OSError, ValueError) as exc:
            raise CodecError(f"post-processor {postprocess!r}: {exc}") from None
    with solver_threads(threads):
        u, masks = _reconstruct(cont, params, solver)
    out = _pixels(u, cont.colour, params.chroma_guide)
    mask = masks[0][0]
    if refine is not None:
        try:
            out = refine(out, mask)  # the stored pixels stay exactly as decoded
        except ValueError as exc:
            raise CodecError(f"post-processor {postprocess!r}: {exc}") from None
    return (out, mask) if return_info else out


def _reconstruct(cont, params, solver):
    """The inpainted planes (float64; the luma loop-filtered if the file says so, the
    chroma before any chroma guide) of a parsed file, and its per-channel (mask,
    structure)."""
    masks = _decode_mask_checked(cont, params)
    symbols = []
    for c, (mask, structure) in enumerate(masks):
        q = params.levels if c == 0 else params.chroma_levels
        try:
            words = _words(cont.section(f"VAL{c}"))
            symbols.append(decode_tree_values(words, structure, q,
                                              TREE_VALUE_MODEL[params.value_coder])
                           if structure is not None
                           else decode_values(words, mask, q))
        except _ENTROPY_ERRORS as exc:
            raise C.FormatError(f"corrupt value data in channel {c} ({exc})") from None
    return _inpaint(cont, params, masks, symbols, solver), masks


def _inpaint(cont, params, masks, symbols, solver):
    """The inpainted planes of decoded (or encoder-side) symbols: what the decoder does
    after entropy decoding, shared by the encoder so that it sees the same pixels."""
    h, w = cont.height, cont.width
    planes = np.zeros((h, w, cont.channels))
    for c, (mask, _) in enumerate(masks):
        q = params.levels if c == 0 else params.chroma_levels
        planes[:, :, c][mask] = quantiser(q)[symbols[c]]
    mask = masks[0][0]
    if cont.channels == 1:
        u = Inpainter(mask, solver=solver).solve(planes[:, :, 0])
    else:  # one channel at a time, in place: a third of the solver's memory of three
        chroma = masks[1][0] if params.value_coder in CHROMA_TREE_VALUE_CODERS else mask
        u, ip = planes, None
        for c, m in enumerate((mask, chroma, chroma)):
            if c < 2:
                ip = None  # the luma's hierarchy goes before the chroma's is built
                ip = Inpainter(m, solver=solver)
            u[:, :, c] = ip.solve(planes[:, :, c])
    if params.loop_filter is not None:
        luma = u if u.ndim == 2 else u[:, :, 0]
        luma[...] = apply_loop_filter(luma, mask, params.loop_filter)
    return u


#: Pixels per strip of the conversion to 8 bits: its float temporaries stay a few MB.
PIXEL_STRIP = 1 << 20


def _pixels(u, colour, chroma_guide=None):
    """The 8-bit image of inpainted planes: chroma guided by the luma (if the file says
    so), YCbCr -> RGB, rounded half to even, clipped; converted in strips of rows (the same
    arithmetic per pixel, a bounded amount of float memory)."""
    if chroma_guide is not None:
        u = guide_chroma(u, *chroma_guide)
    out = np.empty(u.shape, np.uint8)
    rows = max(1, PIXEL_STRIP // max(1, u.shape[1]))
    for y in range(0, u.shape[0], rows):
        v = u[y:y + rows]
        if colour == C.COLOUR_YCBCR:
            v = ycbcr_to_rgb(v)
        out[y:y + rows] = np.clip(np.rint(v), 0, 255)
    return out


def add_loop_filter(data: bytes, img, *, rd_slope: float,
                    max_bytes: int | None = None) -> bytes:
    """``data`` with the loop filter on its luma that pays most (format version 7).

    Decodes the planes once and fits every filter shape to the image's luma
    (:func:`.loop_filter.choose_loop_filter`); where one gains more PSNR than its bytes
    cost at ``rd_slope`` dB per doubling of the file (the rate search's
    ``codec.rate.RD_SLOPE``) and fits within ``max_bytes``, it is
    stored.  Files with a filter already, lossless files and files where none pays come
    back unchanged.
    """
    cont, params = _parse(data)
    if params.loop_filter is not None or cont.colour == C.COLOUR_RGB:
        return data
    check_memory(cont.width, cont.height, cont.channels)
    u, masks = _reconstruct(cont, params, "numba")
    luma = u if u.ndim == 2 else u[:, :, 0]
    target = planes_of(np.asarray(img), cont.colour)[:, :, 0]
    filt = choose_loop_filter(luma, target, masks[0][0], len(data), max_bytes=max_bytes,
                              section_overhead=C.SECTION_HEADER_SIZE, rd_slope=rd_slope)
    if filt is None:
        return data
    cont.version = max(cont.version, CODED_FILTER_VERSION)
    cont.sections["FILT"] = filt.to_bytes()
    return C.write(cont)


def add_chroma_guide(data: bytes, img, *, max_bytes: int | None = None,
                     candidates=GUIDE_CANDIDATES) -> bytes:
    """``data`` with the luma-guided chroma reconstruction that decodes ``img`` best.

    For a colour tree file (YCbCr, chroma on its own tree): decodes the planes once,
    tries each (radius, eps) of ``candidates`` on them, and where one gives a smaller
    squared error of the 8-bit RGB image than plain chroma, stores it (format version 4,
    two bytes).  Other files, files that would outgrow ``max_bytes``, and files where no
    candidate pays come back unchanged.
    """
    cont, params = _parse(data)
    if (params.value_coder not in CHROMA_TREE_VALUE_CODERS or cont.colour != C.COLOUR_YCBCR
            or params.chroma_guide is not None
            or (max_bytes is not None and len(data) + _PARM_GUIDE.size > max_bytes)):
        return data
    u, _ = _reconstruct(cont, params, "numba")
    img = np.asarray(img, np.int64)

    def error(guide):
        return int(((_pixels(u, cont.colour, guide).astype(np.int64) - img) ** 2).sum())

    best, best_err = None, error(None)
    for guide in candidates:
        err = error(tuple(guide))
        if err < best_err:
            best, best_err = tuple(guide), err
    if best is None:
        return data
    cont.version = max(cont.version, GUIDE_VERSION)
    cont.sections["PARM"] = cont.sections["PARM"] + _PARM_GUIDE.pack(*best)
    return C.write(cont)
