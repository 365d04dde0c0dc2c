"""Writing inpcodec files: the file of a given mask and its values.

:func:`file_state` tonally optimises the values at the mask pixels with the quantiser in
the loop (or takes the original values), quantises them to ``levels`` (luma) and
``chroma_levels``, and has each coding tool of :mod:`.sections` compress its section;
the :class:`FileState` it returns reconstructs what the decoder will
(:mod:`.decoder`), takes the loop filter and the chroma guide, and is written once.
Choosing the mask and the levels for an image is the encoders' work
(:mod:`.lagrangian`, :mod:`.pipeline`, :mod:`.rate`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from inpcodec.bitstreams import container as C
from inpcodec.bitstreams.tree_coder import merge_bottom_splits, tree_mask

from .colour import rgb_to_ycbcr
from .decoder import Description, inpaint_planes, parse, reconstruct, to_pixels
from .diffusion import ESTIMATE_DTYPE
from .encoders import FREE_MASK_CODER, TREE_MASK_CODER, MaskResult
from .limits import check_memory
from .loop_filter import choose_loop_filter
from .metrics import squared_error
from .quantiser import MAX_LEVELS, quantise, quantiser
from .sections import (
    QUADTREE_VALUES,
    TREE_VALUES,
    ChromaGuide,
    ChromaTree,
    LoopFilterSection,
    Mask,
    Metadata,
    Values,
)
from .tonal import tiled_tonal_optimisation

#: Merges of the luma tree that give the chroma tree of a colour tree file (0: chroma at
#: every luma point).  Measured: benchmarks/RESULTS.md, "Chroma on a coarser tree".
CHROMA_MERGES = 2
#: Levels of a lossless file: the quantiser of 256 levels reproduces every 8-bit value.
LOSSLESS_LEVELS = 256
#: CGLS tolerance, inner-solve tolerance and quantised refinement sweeps of the tonal
#: optimisation inside the codec: looser than tonal_optimisation's defaults.  On Kodak
#: (grey, 768 x 512, Belhachmi masks, 8-32 levels) they cost about 0.02 dB of PSNR and run
#: about 2x faster (benchmarks/RESULTS.md, "Rate search speed"); the rate search runs several.
TONAL_TOL = 3e-2
TONAL_SOLVE_TOL = 1e-5
TONAL_SWEEPS = 3
#: (CGLS tolerance, inner-solve tolerance, sweeps, the inner solves' working precision)
#: per effort of the rate search: the fast
#: effort runs a few tonal optimisations and takes them looser still (kodim23 and kodim05
#: in colour at one fixed tree mask, a one-off script: 0.04-0.08 dB lower, about 2x
#: faster; the effort's cost in the codec: benchmarks/RESULTS.md, "Rate search effort").
#: ``lagrangian``: the Lagrangian encoder's one tonal optimisation, preconditioned CGLS to
#: 0.05, one quantised refinement sweep, inner solves to 1e-3 (the same error within 0.3 %,
#: 10-20 % fewer V-cycles than 1e-4); against the unpreconditioned CGLS to 0.1 without the
#: sweep, on kodim01/05/13/19/23 and boat in grey and colour: J lower on 8 of the 12,
#: 34 % fewer V-cycles (benchmarks/RESULTS.md, "Preconditioned tonal optimisation").  Its
#: inner solves run in single precision (:data:`.diffusion.ESTIMATE_DTYPE`: the same
#: files on 34 of 36 encodes, benchmarks/RESULTS.md, "Encoder speed: the pruning's SOR,
#: single-precision estimates"); the older searches keep float64 and their files.
TONAL_SETTINGS = {"best": (TONAL_TOL, TONAL_SOLVE_TOL, TONAL_SWEEPS, np.float64),
                  "fast": (1e-1, 1e-4, 1, np.float64),
                  "lagrangian": (5e-2, 1e-3, 1, ESTIMATE_DTYPE)}
#: Chroma guided by the decoded luma (section GUID): the (radius, eps) settings the
#: encoder tries on each colour tree file, keeping the best by RGB PSNR (or none).  On 6
#: Kodak images at 0.05-0.3 bpp (benchmarks/bench_chroma_guided.py, 49 settings): the
#: best single setting (3, 16) gains 0.051 dB, these three 0.065 dB, all 49 0.067 dB;
#: the best radius shrinks as the rate grows (kodim23: 8 at 0.05 bpp, 2 at 0.3).
GUIDE_CANDIDATES = ((3, 16), (6, 9), (2, 16))
#: The order a writer puts the critical sections in (the ancillary ones follow).
SECTION_ORDER = (Mask.TAG, ChromaTree.TAG, *(Values.tag(c) for c in range(3)),
                 ChromaGuide.TAG, LoopFilterSection.TAG)


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
    stop_norm: np.ndarray  # (channels of the group, tiles)


def _warm_start(plane, warm: TonalStart, c: int) -> np.ndarray:
    """The image a warm tonal optimisation starts from: ``plane`` with channel ``c`` of
    the earlier file's continuous values at that file's points."""
    start = plane.copy()
    start[warm.mask] = warm.values[:, c]
    return start


def _values(planes, mask, levels, chroma_levels, tonal, progress=False, chroma_mask=None,
            effort="best", warm=None):
    """Quantised values per channel (tonal optimisation with the quantiser in the loop);
    chroma at the points of ``chroma_mask`` (default: ``mask``).  ``warm``: a previous
    file's :class:`TonalStart` per plane group, to start from (points it did not have
    start from the image).  Returns (values, solves spent, a TonalStart per group or
    None without tonal optimisation)."""
    tol, solve_tol, sweeps, dtype = TONAL_SETTINGS[effort]
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
            vals, conts, stops, areas = [], [], [], None
            for c in range(part.shape[2]):
                stop = None if warm is None else warm[i].stop_norm[c]
                # the start image is built in the call, so that only the callee holds it
                res = tiled_tonal_optimisation(
                    part[:, :, c], m, levels=quantiser(q), tol=tol, solve_tol=solve_tol,
                    max_sweeps=sweeps, progress=progress, stop_norm=stop, dtype=dtype,
                    start=None if warm is None else _warm_start(part[:, :, c], warm[i], c),
                    areas=areas)
                areas = res.areas  # the group's channels share the mask: Cr takes Cb's
                vals.append(res.values[:, 0])
                conts.append(res.continuous[:, 0])
                stops.append(res.stop_norm[:, 0])
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
    merged that many times (section CTRE; 0: chroma at every luma point).
    ``chroma_levels=None``: :func:`default_chroma_levels`.  ``effort``: the tonal
    optimisation's settings (``TONAL_SETTINGS``); ``warm``: another file's
    ``FileState.starts`` of this image to start it from.
    Returns the :class:`FileState`, not yet written.
    """
    if not isinstance(found, MaskResult):
        found = MaskResult(np.asarray(found, bool), 0, 0.0)
    if chroma_levels is None:
        chroma_levels = default_chroma_levels(found, levels, chroma_merges)
    if not 0 <= chroma_merges <= ChromaTree.MAX_MERGES:
        raise ValueError(f"chroma_merges must lie in 0..{ChromaTree.MAX_MERGES}")
    mask, tree = found.mask, found.structure
    channels = planes.shape[2]
    if colour is None:
        colour = C.COLOUR_GREY if channels == 1 else C.COLOUR_YCBCR
    chroma_tree = found.coder == TREE_MASK_CODER and channels == 3 and chroma_merges > 0
    masks = [(mask, tree)] * channels
    if chroma_tree:
        chroma = merge_bottom_splits(tree, chroma_merges)
        masks[1:] = [(tree_mask(chroma), chroma)] * 2
    qs, spent, starts = _values(planes, mask, levels, chroma_levels, tonal, progress,
                                masks[-1][0] if chroma_tree else None, effort, warm)
    cont = C.Container(img.shape[1], img.shape[0], channels, colour)
    cont.sections[Mask.TAG] = Mask.compress(found)
    if chroma_tree:
        cont.sections[ChromaTree.TAG] = ChromaTree.compress(chroma_merges)
    lvs = (levels,) + (chroma_levels,) * (channels - 1)
    for c, q in enumerate(qs):
        cont.sections[Values.tag(c)] = Values.compress(*masks[c], q, lvs[c])
    models = tuple(QUADTREE_VALUES if t is None else TREE_VALUES for _, t in masks)
    desc = Description(found.coder, models, lvs, chroma_merges if chroma_tree else 0)
    return FileState(cont, desc, masks, qs, spent, starts)


@dataclass
class FileState:
    """A file being made, kept whole from the image to the bytes: its container (sections
    set), its description, per channel (mask, tree or None) and the quantised symbols.

    The encoder reconstructs from it exactly what the decoder will (:meth:`planes`, the
    same function the decoder runs after entropy decoding), adds the loop filter and the
    chroma guide to it, and writes it once (:meth:`write`).
    """

    cont: C.Container
    params: Description
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
        u = inpaint_planes(self.cont, self.params, self.masks, self.symbols, solver)
        return u[:, :, None] if u.ndim == 2 else u

    def pixels(self, planes: np.ndarray, chroma_guide=None) -> np.ndarray:
        """The decoder's 8-bit image of :meth:`planes` (with the file's chroma guide, or
        ``chroma_guide`` to try another)."""
        guide = self.params.chroma_guide if chroma_guide is None else tuple(chroma_guide)
        u = planes[:, :, 0] if planes.shape[2] == 1 else planes  # read, never written
        return to_pixels(u, self.cont.colour, guide)

    def set_loop_filter(self, filt) -> None:
        self.cont.sections[LoopFilterSection.TAG] = LoopFilterSection.compress(filt)
        self.params = replace(self.params, loop_filter=filt)

    def set_chroma_guide(self, guide) -> None:
        self.cont.sections[ChromaGuide.TAG] = ChromaGuide.compress(guide)
        self.params = replace(self.params, chroma_guide=tuple(guide))

    def write(self) -> bytes:
        return C.write(_ordered(self.cont))


def _ordered(cont: C.Container) -> C.Container:
    """The container with its critical sections in :data:`SECTION_ORDER`, the ancillary
    ones after them."""
    rank = {t: i for i, t in enumerate(SECTION_ORDER)}
    tags = sorted(cont.sections, key=lambda t: rank.get(t, len(rank)))
    return replace(cont, sections={t: cont.sections[t] for t in tags})


def add_metadata(data: bytes, metadata: dict | None) -> bytes:
    """``data`` with the ICC profile, EXIF and XMP of ``metadata`` (Pillow's ``im.info``
    keys ``icc_profile``, ``exif``, ``xmp``) in its ancillary sections, replacing any it
    had; without them (None or {}) the file comes back without metadata."""
    cont = C.read(data)
    for tag in Metadata.TAGS.values():
        cont.sections.pop(tag, None)
    cont.sections.update(Metadata.compress(metadata or {}))
    return C.write(_ordered(cont))


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


# ------------------------------------------------- the rate search's additions to a file


def add_loop_filter(data: bytes, img, *, rd_slope: float,
                    max_bytes: int | None = None) -> bytes:
    """``data`` with the loop filter on its luma that pays most (section FILT).

    Decodes the planes once and fits every filter shape to the image's luma
    (:func:`.loop_filter.choose_loop_filter`); where one gains more PSNR than its bytes
    cost at ``rd_slope`` dB per doubling of the file (the rate search's
    ``codec.rate.RD_SLOPE``) and fits within ``max_bytes``, it is
    stored.  Files with a filter already, lossless files and files where none pays come
    back unchanged.
    """
    cont, desc, mask, values = parse(data)
    if desc.loop_filter is not None or cont.colour == C.COLOUR_RGB:
        return data
    check_memory(cont.width, cont.height, cont.channels)
    u, masks = reconstruct(cont, desc, mask, values)
    luma = u if u.ndim == 2 else u[:, :, 0]
    target = planes_of(np.asarray(img), cont.colour)[:, :, 0]
    filt = choose_loop_filter(luma, target, masks[0][0], len(data), max_bytes=max_bytes,
                              rd_slope=rd_slope)
    if filt is None:
        return data
    cont.sections[LoopFilterSection.TAG] = LoopFilterSection.compress(filt)
    return C.write(_ordered(cont))


def add_chroma_guide(data: bytes, img, *, max_bytes: int | None = None,
                     candidates=GUIDE_CANDIDATES) -> bytes:
    """``data`` with the luma-guided chroma reconstruction that decodes ``img`` best.

    For a colour tree file (YCbCr, chroma on its own tree): decodes the planes once,
    tries each (radius, eps) of ``candidates`` on them, and where one gives a smaller
    squared error of the 8-bit RGB image than plain chroma, stores it (section GUID).
    Other files, files that would outgrow ``max_bytes``, and files where no candidate
    pays come back unchanged.
    """
    cont, desc, mask, values = parse(data)
    if (not desc.chroma_merges or cont.colour != C.COLOUR_YCBCR
            or desc.chroma_guide is not None
            or (max_bytes is not None and len(data) + ChromaGuide.NBYTES > max_bytes)):
        return data
    u, _ = reconstruct(cont, desc, mask, values)

    def error(guide):
        return squared_error(to_pixels(u, cont.colour, guide), img)

    best, best_err = None, error(None)
    for guide in candidates:
        err = error(tuple(guide))
        if err < best_err:
            best, best_err = tuple(guide), err
    if best is None:
        return data
    cont.sections[ChromaGuide.TAG] = ChromaGuide.compress(best)
    return C.write(_ordered(cont))
