"""Reading inpcodec files: parse the sections (:mod:`.sections`), inpaint, convert.

:func:`decode` gives the pixels, :func:`info` the fields and the bytes per part,
:func:`read_metadata` the ICC profile, EXIF and XMP a file carries.  The encoder runs the
same reconstruction (:func:`inpaint_planes`, :func:`to_pixels`) on its symbols, so it
reports the pixels the decoder will give.

The arithmetic is deterministic (integer entropy-model parameters, the Numba solver's
fixed-order reductions, element-wise colour transform), so a file decodes to the same
pixels on every run and thread count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inpcodec.bitstreams import container as C
from inpcodec.bitstreams.tree_coder import merge_bottom_splits, tree_mask
from inpcodec.bitstreams.tree_values import forget_plans

from .colour import guide_sums, guided_rows, ycbcr_to_rgb
from .diffusion import Inpainter
from .encoders import FREE_MASK_CODER, TREE_MASK_CODER
from .limits import (
    DEFAULT_MAX_PIXELS,
    CodecError,
    check_memory,
    check_pixels,
    release_free_memory,
)
from .loop_filter import LoopFilter, apply_loop_filter
from .quantiser import quantiser
from .sections import (
    KNOWN_TAGS,
    LEGACY_TREE_VALUES,
    QUADTREE_VALUES,
    VALUE_MODEL_NAMES,
    ChromaGuide,
    ChromaTree,
    LoopFilterSection,
    Mask,
    Metadata,
    Values,
)
from .threads import solver_threads


@dataclass(frozen=True)
class Description:
    """What a file's critical sections say, beside the coded data: how to reconstruct."""

    mask_coder: int
    #: Value model and levels per channel (:data:`.sections.VALUE_MODEL_NAMES`).
    models: tuple
    levels_per_channel: tuple
    #: Cb and Cr on the split tree with its bottom splits merged this many times (0: on
    #: the mask's points).
    chroma_merges: int = 0
    #: (radius, eps) of the luma-guided chroma reconstruction; None: plain chroma.
    chroma_guide: tuple | None = None
    loop_filter: LoopFilter | None = None

    @property
    def levels(self) -> int:
        return self.levels_per_channel[0]

    @property
    def chroma_levels(self) -> int:
        return self.levels_per_channel[-1]


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
    #: The format version ("1.0"; "1" or "2" for inpcodec 0.2.0's files).
    version: str = "1.0"
    mask_coder: str = ""
    #: Points that store chroma (colour files; fewer than ``points`` when chroma lives on
    #: a coarser tree).
    chroma_points: int = 0
    #: (radius, eps) of the luma-guided chroma reconstruction, or None.
    chroma_guide: tuple | None = None
    #: How the values are coded (:data:`.sections.VALUE_MODEL_NAMES`).
    value_coder: str = ""
    #: (radius, distance classes, bytes of its section, edge mode) of the loop filter,
    #: or None.
    loop_filter: tuple | None = None
    #: Bytes of each metadata item kept (``icc_profile``, ``exif``, ``xmp``), compressed;
    #: not in ``bytes_header``, which is the framing and the parameters.
    metadata: dict = field(default_factory=dict)

    @property
    def bpp(self) -> float:
        return 8.0 * self.bytes_total / (self.width * self.height)

    @property
    def bytes_metadata(self) -> int:
        return sum(self.metadata.values())


#: Decoder post-processors by name: ``load(mask_coder, weights, filtered) -> refine``,
#: where ``refine(image, mask) -> image`` keeps the stored pixels; registered by the layer
#: above (:mod:`inpcodec.codec.postprocess` registers ``"gan"``).
POSTPROCESSORS: dict = {}


def register_postprocessor(name: str, load) -> None:
    """Make ``decode(..., postprocess=name)`` use ``load(mask_coder, weights, filtered)``
    (``filtered``: the file has a loop filter)."""
    if name in POSTPROCESSORS or name == "none":
        raise ValueError(f"post-processor {name!r} is registered already")
    POSTPROCESSORS[name] = load


# ----------------------------------------------------------------------------- parsing


_LEGACY_PARM = {(FREE_MASK_CODER, 1): QUADTREE_VALUES, (TREE_MASK_CODER, 2): LEGACY_TREE_VALUES}


def _parse_legacy(cont):
    """A file of inpcodec 0.2.0 (versions 1 and 2): a PARM section (u8 mask coder, u8
    value coder, u16 luma levels, u16 chroma levels), MASK and VALc of bare words."""
    parm = cont.section("PARM")
    if len(parm) != 6:
        raise C.FormatError("parameter section has the wrong length")
    mask_coder, value_coder = parm[0], parm[1]
    lv, clv = int.from_bytes(parm[2:4], "little"), int.from_bytes(parm[4:6], "little")
    model = _LEGACY_PARM.get((mask_coder, value_coder))
    if model is None or (mask_coder == TREE_MASK_CODER and cont.version < 2):
        raise C.FormatError(f"unknown coder ids (mask {mask_coder}, values {value_coder}) "
                            f"for format version {cont.version}")
    expected = {"PARM", "MASK"} | {Values.tag(c) for c in range(cont.channels)}
    if set(cont.sections) != expected:
        raise C.FormatError(f"sections {sorted(cont.sections)} do not match a "
                            f"{cont.channels}-channel file of version {cont.version}")
    mask = Mask.parse(cont.sections["MASK"], cont, coder=mask_coder)
    values = [Values.parse(cont.sections[Values.tag(c)], c, mask_coder,
                           legacy=(model, lv if c == 0 else clv))
              for c in range(cont.channels)]
    return mask, values, Description(mask_coder, (model,) * cont.channels,
                                     tuple(v.levels for v in values))


def parse(data):
    """Check a file's framing (``data``: its bytes, or the container already read from
    them) and every section's fields (nothing that scales with the image is allocated).
    Returns (container, :class:`Description`, the :class:`Mask`, the :class:`Values` per
    channel)."""
    cont = data if isinstance(data, C.Container) else C.read(data)
    if cont.version in C.LEGACY_VERSIONS:
        mask, values, desc = _parse_legacy(cont)
        return cont, desc, mask, values
    for tag in cont.sections:
        if tag not in KNOWN_TAGS and C.critical(tag):
            raise C.FormatError(f"the file needs section {tag!r}, which this decoder does "
                                "not know; upgrade inpcodec")
    for c in range(cont.channels, 3):
        if Values.tag(c) in cont.sections:
            raise C.FormatError(f"section {Values.tag(c)} in a {cont.channels}-channel file")
    mask = Mask.parse(cont.section(Mask.TAG), cont)
    values = [Values.parse(cont.section(Values.tag(c)), c, mask.coder)
              for c in range(cont.channels)]
    if cont.channels == 3 and ((values[1].model, values[1].levels)
                               != (values[2].model, values[2].levels)):
        raise C.FormatError("the two chroma channels differ in value model or levels")
    merges = 0
    if ChromaTree.TAG in cont.sections:
        merges = ChromaTree.parse(cont.sections[ChromaTree.TAG], cont, mask.coder)
    guide = None
    if ChromaGuide.TAG in cont.sections:
        guide = ChromaGuide.parse(cont.sections[ChromaGuide.TAG], cont)
    filt = None
    if LoopFilterSection.TAG in cont.sections:
        filt = LoopFilterSection.parse(cont.sections[LoopFilterSection.TAG], cont)
    desc = Description(mask.coder, tuple(v.model for v in values),
                       tuple(v.levels for v in values), merges, guide, filt)
    return cont, desc, mask, values


def decode_masks(cont, desc, mask: Mask, values) -> list:
    """Per channel (mask, split tree or None), with the checks of FORMAT.md: the chroma
    tree, and each channel's words long enough for a value per point (before the value
    decoder allocates per point)."""
    m, tree = mask.decompress(cont)
    out = [(m, tree)] * cont.channels
    if desc.chroma_merges:
        chroma = merge_bottom_splits(tree, desc.chroma_merges)
        out[1:] = [(tree_mask(chroma), chroma)] * 2
    for c, ((mc, _), v) in enumerate(zip(out, values, strict=True)):
        v.check_points(int(mc.sum()), c)
    return out


# ----------------------------------------------------------------------------- reading


def read_metadata(data: bytes) -> dict:
    """The ICC profile, EXIF and XMP of a file, keyed as Pillow's ``im.info``
    (``icc_profile``, ``exif``, ``xmp``; bytes); {} for files without (and for inpcodec
    0.2.0's).  Raises :class:`~inpcodec.bitstreams.FormatError` for a damaged file."""
    cont = C.read(data)
    return Metadata.decompress(cont.sections)


def metadata_nbytes(data: bytes) -> int:
    """Bytes of a file's metadata sections, their framing included (what ``bpp`` leaves
    out: the image's rate is the rest)."""
    cont = C.read(data)
    return sum(len(p) + C.section_header_size(len(p), cont.version)
               for t, p in cont.sections.items() if t in Metadata.TAGS.values())


def info(data: bytes) -> FileInfo:
    """Header fields and the bytes per part, from the file alone (the mask is decoded)."""
    cont, desc, mask, values = parse(data)
    check_memory(cont.width, cont.height, 1, factor=0.25)  # the mask alone
    masks = decode_masks(cont, desc, mask, values)
    vals = [len(cont.sections[Values.tag(c)]) for c in range(cont.channels)]
    meta = {key: len(cont.sections[tag]) for key, tag in Metadata.TAGS.items()
            if tag in cont.sections}
    filt = None
    if desc.loop_filter is not None:
        f = desc.loop_filter
        n = len(cont.sections[LoopFilterSection.TAG])
        filt = (f.radius, f.classes, n + C.section_header_size(n), f.edges)
    return FileInfo(cont.width, cont.height, cont.channels, C.COLOUR_NAMES[cont.colour],
                    desc.levels, desc.chroma_levels, int(masks[0][0].sum()), len(data),
                    len(data) - len(cont.sections["MASK"]) - sum(vals) - sum(meta.values()),
                    len(cont.sections["MASK"]), vals, C.version_name(cont.version),
                    Mask.NAMES[desc.mask_coder],
                    int(masks[-1][0].sum()) if cont.channels == 3 else 0,
                    desc.chroma_guide, VALUE_MODEL_NAMES[desc.models[0]], filt, meta)


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

    The file's metadata is :func:`read_metadata`'s.

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
    cont, desc, mask, values = parse(head)
    refine = None
    if postprocess != "none":
        try:  # before any decoding work: a missing model fails at once
            refine = POSTPROCESSORS[postprocess](desc.mask_coder, weights,
                                                 desc.loop_filter is not None)
        except (OSError, ValueError) as exc:
            raise CodecError(f"post-processor {postprocess!r}: {exc}") from None
    with solver_threads(threads):
        u, masks = reconstruct(cont, desc, mask, values, solver)
    out = to_pixels(u, cont.colour, desc.chroma_guide)
    m = masks[0][0]
    if refine is not None:
        try:
            out = refine(out, m)  # the stored pixels stay exactly as decoded
        except ValueError as exc:
            raise CodecError(f"post-processor {postprocess!r}: {exc}") from None
    return (out, m) if return_info else out


def reconstruct(cont, desc, mask, values, solver="numba"):
    """The inpainted planes (float64, (H, W) or (H, W, 3); the luma loop-filtered if the
    file says so, the chroma before any chroma guide) of a parsed file, and its
    per-channel (mask, tree)."""
    masks = decode_masks(cont, desc, mask, values)
    symbols = [v.decompress(m, t, c) for c, (v, (m, t)) in enumerate(zip(values, masks,
                                                                        strict=True))]
    return inpaint_planes(cont, desc, masks, symbols, solver), masks


def inpaint_planes(head, desc, masks, symbols, solver="numba"):
    """The inpainted planes of decoded (or encoder-side) symbols: what the decoder does
    after entropy decoding, shared by the encoder so that it sees the same pixels."""
    h, w = head.height, head.width
    forget_plans()  # the values are decoded: their coding plans need not be kept
    release_free_memory()  # before the largest allocations of a decode (or an encode)
    planes = np.zeros((h, w, head.channels))
    for c, (mask, _) in enumerate(masks):
        planes[:, :, c][mask] = quantiser(desc.levels_per_channel[c])[symbols[c]]
    mask = masks[0][0]
    if head.channels == 1:
        u = planes[:, :, 0]
        Inpainter(mask, solver=solver).solve(u, out=u)
    else:  # one channel at a time, in place: a third of the solver's memory of three
        u, ip = planes, None
        for c in range(3):
            if c < 2:
                ip = None  # the luma's hierarchy goes before the chroma's is built
                ip = Inpainter(masks[c][0], solver=solver)
            ip.solve(u[:, :, c], out=u[:, :, c])
    if desc.loop_filter is not None:
        luma = u if u.ndim == 2 else u[:, :, 0]
        luma[...] = apply_loop_filter(luma, mask, desc.loop_filter)
    return u


#: Pixels per strip of the conversion to 8 bits: its float temporaries stay a few MB.
PIXEL_STRIP = 1 << 16


def to_pixels(u, colour, chroma_guide=None):
    """The 8-bit image of inpainted planes: chroma guided by the luma (if the file says
    so), YCbCr -> RGB, rounded half to even, clipped; converted in strips of rows (the same
    arithmetic per pixel, a bounded amount of float memory)."""
    # the guided chroma a strip at a time, from the filter's window sums: no guided
    # copy of the planes (24 bytes a pixel at the encoder's and the decoder's peak)
    sums = None if chroma_guide is None else guide_sums(u, *chroma_guide)
    out = np.empty(u.shape, np.uint8)
    rows = max(1, PIXEL_STRIP // max(1, u.shape[1]))
    for y in range(0, u.shape[0], rows):
        v = u[y:y + rows] if sums is None else guided_rows(u, sums, chroma_guide[0],
                                                           slice(y, y + rows))
        if colour == C.COLOUR_YCBCR:
            v = ycbcr_to_rgb(v)
        out[y:y + rows] = np.clip(np.rint(v), 0, 255)
    return out
