"""The codec: image -> bytes -> image.

    data = encode(image, encoder="belhachmi", density=0.04)     # or bpp=0.2
    image2 = decode(data)

Encoding: (colour images) RGB -> YCbCr; a mask from the chosen registered mask encoder
(:mod:`.encoders`) on the luma, at the given density or at the one the rate search
(:mod:`.rate`) finds for a target size; then the file of that mask (:mod:`.format`).

Everything the encoder reports (bpp, PSNR) is measured on the real bytes and on the
decoder's output of those bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import inpcodec.baselines  # noqa: F401  (registers the classical mask encoders)
import inpcodec.learned_masks  # noqa: F401  (registers the learned one; no torch)
from inpcodec.bitstreams import container as C

from . import lagrangian as L
from . import metrics
from .decoder import decode, info  # noqa: F401 (decode, info: the API)
from .diffusion import off_solve, on_solve, solves_run, vcycles_run
from .encoders import check_options, clear_caches, get_encoder, make_mask
from .format import (
    add_chroma_guide,
    add_loop_filter,
    add_metadata,
    default_chroma_levels,
    encode_with_mask,
    planes_of,
)
from .limits import CodecError, check_memory, release_free_memory
from .loop_filter import smallest_nbytes
from .progress import SolveBar
from .quantiser import MAX_LEVELS
from .rate import DEFAULT_EFFORT, EFFORTS, RATE_TOLERANCE, RD_SLOPE, lowest_bpp, search_rate
from .threads import solver_threads

#: The default mask encoder: tree masks store positions in a fraction of a bit per point
#: and gain 2-4 dB over the free masks on Kodak; rate-distortion-optimised pruning gains
#: about 0.2 dB in grey and 0.1 dB in colour over the error-driven tree (benchmarks/
#: RESULTS.md, "Rate-distortion-optimised pruning").
DEFAULT_ENCODER = "tree-rdo"
#: Encoders that make every choice by J = D + lam R (:mod:`.lagrangian`); the others
#: (free masks, the other trees) search a density.
LAGRANGIAN_ENCODERS = {"tree-rdo": "error", "tree-learned": "learned"}
#: Without a target, files are made at this quality (:func:`.lagrangian.quality_to_lambda`):
#: one encode, no search, and about one visual quality on every image, as cjpeg's, cwebp's
#: and avifenc's defaults give (a default rate gave flat images too many bits and
#: textured ones too few).
DEFAULT_QUALITY = L.DEFAULT_QUALITY
#: The Lagrangian encoder's memory over the decoder's estimate (codec.limits).
LAGRANGIAN_MEMORY = 2.0
#: The densities a quality tries with the encoders outside the Lagrangian design.
FREE_QUALITY_DENSITIES = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16)
DEFAULT_LEVELS = 64
#: The rate the PSNR search of the encoders outside the Lagrangian design starts from
#: (:func:`default_bpp`); it was the command line's default before the quality.
DEFAULT_BPP = 0.2
#: With a target rate, the rate search aims this fraction below it to leave room for the
#: loop filter (section FILT), which is added after the search within the target's
#: tolerance; only where that room holds the smallest filter (21 bytes with its section).
#: The filters chosen on Kodak take 1-2 % of the file (benchmarks/RESULTS.md, "The loop
#: filter").
LOOP_FILTER_RESERVE = 0.015
#: A PSNR target (``encode(image, psnr=...)``) searches the rate: it stops once the rates
#: that miss and that reach the target lie within the rate search's own tolerance of each
#: other, or after this many encodes.
MAX_PSNR_ENCODES = 10
#: The slope the PSNR target's rate steps assume until one encode reaches the target and
#: one misses it (then the secant between them takes over), in dB per doubling of the
#: rate: the default's mean Kodak curves rise 1.5-2.8 dB per doubling between 0.05 and
#: 0.3 bpp (benchmarks/RESULTS.md, "The post-processor for filtered decodes").
PSNR_PER_DOUBLING = 2.0
#: A rate per sample above any lossless file's, to ask for the lossless file.
LOSSLESS_BPP = 16.0


def _as_image(image) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise CodecError(f"images must be 8-bit (uint8), got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise CodecError(f"images must be (H, W) grey or (H, W, 3) RGB, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise CodecError(f"image is empty (shape {a.shape})")
    try:
        C.check_geometry(a.shape[1], a.shape[0], 1 if a.ndim == 2 else 3)
    except C.FormatError as exc:
        raise CodecError(str(exc)) from None
    return a


# ----------------------------------------------------------------------------- encode


@dataclass
class EncodeReport:
    """What an encode produced, measured on the real file and its real decoding."""

    data: bytes
    decoded: np.ndarray
    width: int
    height: int
    channels: int
    encoder: str
    density: float
    points: int
    levels: int
    chroma_levels: int
    tonal: bool
    bytes_header: int
    bytes_mask: int
    bytes_values: int
    psnr: float
    psnr_luma: float
    encode_seconds: float
    decode_seconds: float
    inpaintings: int
    search: list = field(default_factory=list)
    #: True when every pixel is stored exactly (a rate at or above the lossless file's).
    lossless: bool = False
    #: Points that store chroma (colour files; fewer than ``points`` in a colour tree file,
    #: whose chroma lives on a coarser tree).
    chroma_points: int = 0
    #: (radius, eps) of the luma-guided chroma reconstruction the file stores, or None.
    chroma_guide: tuple | None = None
    #: (radius, distance classes, bytes, edge mode) of the loop filter the file stores,
    #: or None.
    loop_filter: tuple | None = None
    #: With a PSNR target: the encodes of its rate search, (target bpp, real bpp, PSNR)
    #: each, in order; the file is the smallest of them that reaches the target.
    psnr_search: list = field(default_factory=list)
    #: The Lagrangian encoder's multiplier (squared grey levels per bit, per sample) and
    #: the quality it maps from; None for the other encoders.
    lam: float | None = None
    quality: float | None = None
    #: Solver work of the encode: iterative solves run, and the same work in units of the
    #: decoder's own solve of this file (V-cycles over the decode's V-cycles).
    solves: int = 0
    solve_equivalents: float = 0.0
    #: Set where a target (rate or PSNR) could not be met: what was given instead.
    note: str = ""
    #: Bytes of the metadata sections (ICC profile, EXIF, XMP) in ``data``.
    bytes_metadata: int = 0

    @property
    def bpp(self) -> float:
        """Bits per pixel of the image: the file without its metadata sections (what a
        rate target and the comparisons with other codecs count)."""
        return 8.0 * (len(self.data) - self.bytes_metadata) / (self.width * self.height)

    @property
    def mask_bits_per_point(self) -> float:
        return 8.0 * self.bytes_mask / self.points

    @property
    def value_bits_per_point(self) -> float:
        """Bits per stored value (every channel's values together)."""
        values = self.points + (2 * self.chroma_points if self.channels == 3 else 0)
        return 8.0 * self.bytes_values / values


def _check_levels(levels, name="levels"):
    if not 2 <= int(levels) <= MAX_LEVELS:
        raise CodecError(f"{name} must lie in 2..{MAX_LEVELS}, got {levels}")
    return int(levels)


def encode_report(image, *, metadata: dict | None = None, **kwargs) -> EncodeReport:
    """Encode an 8-bit grey or RGB image; see :func:`encode`.  Returns the full report."""
    r = _encode_report(image, **kwargs)
    if metadata:
        before = len(r.data)
        r.data = add_metadata(r.data, metadata)
        r.bytes_metadata = len(r.data) - before
    return r


def _encode_report(image, *, encoder: str = DEFAULT_ENCODER, density: float | None = None,
                  bpp: float | None = None, psnr: float | None = None,
                  quality: float | None = None, levels: int | None = None,
                  chroma_levels: int | None = None, tonal: bool = True, seed: int = 0,
                  solver: str = "numba", progress: bool = False,
                  effort: str = DEFAULT_EFFORT, chroma_guide: bool = True,
                  loop_filter: bool = True, threads: int | None = None,
                  **options) -> EncodeReport:
    given = sum(k is not None for k in (density, bpp, psnr, quality))
    if given > 1:
        raise CodecError("give at most one of density, bpp, psnr or quality")
    if given == 0:
        quality = DEFAULT_QUALITY
    if effort not in EFFORTS:
        raise CodecError(f"unknown effort {effort!r} (choose one of {', '.join(EFFORTS)})")
    with solver_threads(threads):
        if (encoder in LAGRANGIAN_ENCODERS and density is None and effort == "lagrangian"
                and not options):  # an encoder option (weights) takes the rate search
            return _encode_lagrangian(image, quality=quality, bpp=bpp, psnr=psnr,
                                      levels=levels, chroma_levels=chroma_levels,
                                      tonal=tonal, solver=solver, progress=progress,
                                      chroma_guide=chroma_guide, loop_filter=loop_filter,
                                      encoder=encoder)
        if quality is not None:
            return _encode_free_quality(image, quality, dict(
                encoder=encoder, levels=levels, chroma_levels=chroma_levels, tonal=tonal,
                seed=seed, solver=solver, progress=progress, effort=effort,
                chroma_guide=chroma_guide, loop_filter=loop_filter, **options))
        return _encode_classic(image, encoder=encoder, density=density, bpp=bpp,
                               psnr=psnr, levels=levels, chroma_levels=chroma_levels,
                               tonal=tonal, seed=seed, solver=solver, progress=progress,
                               effort=effort, chroma_guide=chroma_guide,
                               loop_filter=loop_filter, **options)


def _report(img, data, encoder, *, solver, t0, start, **fields):
    """The :class:`EncodeReport` of a written file: decoded by the real decoder, every
    size read from the file."""
    encode_seconds = time.perf_counter() - t0
    s0, vc0 = solves_run(), vcycles_run()
    t1 = time.perf_counter()
    # the encoder's own file: not bound by the decoder's limit on untrusted files
    decoded = decode(data, solver=solver, max_pixels=None)
    decode_seconds = time.perf_counter() - t1
    per_decode = max(vcycles_run() - vc0, 1)
    cont = C.read(data)
    sizes = {k: len(v) for k, v in cont.sections.items()}
    vals = sum(v for k, v in sizes.items() if k.startswith("VAL"))
    file_info = info(data)
    channels = 1 if img.ndim == 2 else 3
    return EncodeReport(
        data=data, decoded=decoded, width=img.shape[1], height=img.shape[0],
        channels=channels, encoder=encoder,
        density=file_info.points / (img.shape[0] * img.shape[1]),
        points=file_info.points, levels=file_info.levels,
        chroma_levels=file_info.chroma_levels,
        bytes_header=len(data) - sizes["MASK"] - vals, bytes_mask=sizes["MASK"],
        bytes_values=vals, psnr=metrics.psnr(decoded, img),
        psnr_luma=metrics.psnr(decoded, img, transform=metrics.luma),
        encode_seconds=encode_seconds,
        decode_seconds=decode_seconds, chroma_points=file_info.chroma_points,
        chroma_guide=file_info.chroma_guide, loop_filter=file_info.loop_filter,
        solves=s0 - start[0], solve_equivalents=(vc0 - start[1]) / per_decode, **fields)


def _encode_lagrangian(image, *, quality, bpp, psnr, levels, chroma_levels, tonal, solver,
                       progress, chroma_guide, loop_filter, encoder):
    """The Lagrangian encoder (:mod:`.lagrangian`): one ``lam`` from the quality, or the
    ``lam`` a rate or PSNR search finds."""
    t0, start = time.perf_counter(), (solves_run(), vcycles_run())
    img = _as_image(image)
    for lv, name in ((levels, "levels"), (chroma_levels, "chroma_levels")):
        if lv is not None:
            _check_levels(lv, name)
    channels = 1 if img.ndim == 2 else 3
    # measured peak RSS of a colour encode at --bpp 0.1, one thread, with the tiled
    # tonal optimisation: 1.01 GB at 4.1 MP and 2.42 GB at 16.4 MP, 197 and 135 bytes
    # per pixel over the interpreter's 0.2 GB; the decoder's estimate x 2.0 = 220
    check_memory(img.shape[1], img.shape[0], channels, factor=LAGRANGIAN_MEMORY)
    clear_caches()
    L.clear_families()
    planes = planes_of(img, C.COLOUR_YCBCR)
    kw = dict(levels=levels, chroma_levels=chroma_levels, tonal=tonal,
              loop_filter=loop_filter, chroma_guide=chroma_guide,
              front_end=LAGRANGIAN_ENCODERS[encoder])
    # one bar for the whole encode, its total from the cost model, counting solves
    bar = SolveBar(L.expected_solves(channels, search=quality is None, shape=img.shape[:2]),
                   progress,
                   pixels=img.shape[0] * img.shape[1])
    on_solve(bar)
    try:
        found, search, note = _lagrangian_file(img, planes, quality, bpp, psnr, kw)
    finally:
        off_solve(bar)
        bar.close()
    # the planes and the trees' pruning state are done with: the report's decode is the
    # encode's peak memory, so it runs without them
    planes = None
    L.clear_families()
    release_free_memory()
    return _report(img, found.data, "lossless" if found.lossless else encoder,
                   solver=solver, t0=t0, start=start, tonal=tonal and not found.lossless,
                   inpaintings=0, search=search, lossless=found.lossless, lam=found.lam,
                   quality=quality if quality is not None else
                   (L.lambda_to_quality(found.lam) if found.lam > 0 else None), note=note,
                   psnr_search=[(e["lambda"], e["bpp"], e["psnr"]) for e in search
                                if "psnr" in e])


def _lagrangian_file(img, planes, quality, bpp, psnr, kw):
    """The Lagrangian file of one target: (file, search log, note)."""
    note, search = "", []
    if quality is not None:
        found = L.encode_lambda(img, planes, L.quality_to_lambda(quality), **kw)
    elif bpp is not None:
        if not (np.isfinite(bpp) and bpp > 0):
            raise CodecError(f"bpp must be positive, got {bpp:g}")
        found, search, reached = L.search_lambda_for_bpp(img, planes, bpp, **kw)
        if not reached:
            got = 8.0 * len(found.data) / (img.shape[0] * img.shape[1])
            note = (f"{bpp:g} bpp cannot be reached within {L.RATE_TOLERANCE:.0%}: the "
                    f"nearest file found has {got:.4f} bpp")
    else:
        if not (np.isfinite(psnr) and psnr > 0):
            raise CodecError(f"psnr must be a positive number of dB, got {psnr}")
        found, search, _ = L.search_lambda_for_psnr(img, planes, psnr, **kw)
        if found.lossless:  # reached by J's own choice or as the fallback: say so either way
            n = img.shape[0] * img.shape[1]
            note = (f"no lossy file found reaches {psnr:g} dB: the lossless file is given "
                    f"({len(found.data)} bytes, {8.0 * len(found.data) / n:.3f} bpp, against "
                    f"{img.size} bytes of raw samples)")
    return found, search, note


def _encode_free_quality(image, quality, kwargs) -> EncodeReport:
    """A quality for the encoders outside the Lagrangian design (free masks, the other
    trees): the density with the least J = D + lam R over a ladder of densities, each a
    plain file (no tonal optimisation; the slow encoders' ladder with Belhachmi's masks),
    then the real file at that density.  Simpler than the tree's choices."""
    t0 = time.perf_counter()
    img = _as_image(image)
    lam = L.quality_to_lambda(quality)
    channels = 1 if img.ndim == 2 else 3
    plain = dict(kwargs, tonal=False, loop_filter=False, chroma_guide=False)
    try:
        enc = get_encoder(kwargs["encoder"])
    except ValueError as exc:
        raise CodecError(str(exc)) from None
    if not enc.cheap:  # PS, PS+NLPE: the ladder with Belhachmi's masks, as the rate search
        plain = {k: v for k, v in plain.items() if k not in enc.options}
        plain["encoder"] = "belhachmi"
    best = None
    for d in FREE_QUALITY_DENSITIES:
        r = _encode_classic(img, density=d, bpp=None, psnr=None, **plain)
        j = float(((r.decoded.astype(np.float64) - img) ** 2).sum()) / channels \
            + lam * 8.0 * len(r.data)
        if best is None or j < best[0]:
            best = (j, d)
    out = _encode_classic(img, density=best[1], bpp=None, psnr=None, **kwargs)
    out.lam, out.quality = lam, quality
    out.encode_seconds = time.perf_counter() - t0
    return out


def _encode_classic(image, *, encoder, density, bpp, psnr, levels, chroma_levels, tonal,
                    seed, solver, progress, effort, chroma_guide, loop_filter,
                    **options) -> EncodeReport:
    """The density and rate-search encoders (free masks, the trees other than the
    Lagrangian one, ``effort='best'``)."""
    if psnr is not None:
        return _encode_to_psnr(image, psnr, dict(
            encoder=encoder, levels=levels, chroma_levels=chroma_levels, tonal=tonal,
            seed=seed, solver=solver, progress=progress, effort=effort,
            chroma_guide=chroma_guide, loop_filter=loop_filter, **options))
    t0 = time.perf_counter()
    img = _as_image(image)
    try:
        enc = get_encoder(encoder)
        options = check_options(enc, options)
    except ValueError as exc:
        raise CodecError(str(exc)) from None
    channels = 1 if img.ndim == 2 else 3
    check_memory(img.shape[1], img.shape[0], channels, factor=4.0)
    # The encoders keep an image's split order for the many knobs of one rate search; an
    # order kept from an earlier encode (another rate) would make this file depend on what
    # was encoded before.
    clear_caches()
    planes = planes_of(img, C.COLOUR_YCBCR)
    luma = planes[:, :, 0]
    search, lossless = [], False
    if density is not None:
        if not 0.0 < density <= 1.0:
            raise CodecError(f"density must lie in (0, 1], got {density}")
        lv = _check_levels(levels if levels is not None else DEFAULT_LEVELS)
        if chroma_levels is not None:
            _check_levels(chroma_levels, "chroma_levels")
        res = make_mask(encoder, luma, density, levels=lv, seed=seed, progress=progress,
                        **options)
        clv = chroma_levels if chroma_levels is not None else default_chroma_levels(res, lv)
        mask = res.mask
        data, cont, spent = encode_with_mask(img, planes, res, lv, clv, tonal,
                                             progress=progress)
        spent += res.inpaintings
    else:
        aim = bpp
        smallest = smallest_nbytes() + C.section_header_size(smallest_nbytes())
        if loop_filter and LOOP_FILTER_RESERVE * bpp * luma.size / 8 >= smallest:
            aim = bpp * (1 - LOOP_FILTER_RESERVE)
        found = search_rate(img, planes, aim, enc, levels=levels, chroma_levels=chroma_levels,
                            tonal=tonal, seed=seed, progress=progress, options=options,
                            effort=effort)
        data, cont, mask, lv, clv = found.data, found.cont, found.mask, found.lv, found.clv
        spent, search, lossless = found.inpaintings, found.log, found.lossless
        encoder = found.encoder  # "lossless", or a free-mask encoder past a tree's densest
    limit = None if bpp is None else int(bpp * (1 + RATE_TOLERANCE) * mask.size / 8)
    if loop_filter and not lossless:
        filtered = add_loop_filter(data, img, max_bytes=limit, rd_slope=RD_SLOPE)
        if filtered is not data:
            data, cont = filtered, C.read(filtered)
    if chroma_guide and channels == 3 and not lossless:
        guided = add_chroma_guide(data, img, max_bytes=limit)
        if guided is not data:
            data, cont = guided, C.read(guided)
    encode_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    decoded = decode(data, solver=solver, max_pixels=None)  # its own file (above)
    decode_seconds = time.perf_counter() - t1
    sizes = {k: len(v) for k, v in cont.sections.items()}
    vals = sum(v for k, v in sizes.items() if k.startswith("VAL"))
    file_info = info(data)
    return EncodeReport(
        data=data, decoded=decoded, width=img.shape[1], height=img.shape[0],
        channels=channels, encoder=encoder,
        density=float(mask.mean()), points=int(mask.sum()), levels=lv, chroma_levels=clv,
        tonal=tonal and not lossless, bytes_header=len(data) - sizes["MASK"] - vals,
        bytes_mask=sizes["MASK"], bytes_values=vals, psnr=metrics.psnr(decoded, img),
        psnr_luma=metrics.psnr(decoded, img, transform=metrics.luma),
        encode_seconds=encode_seconds,
        decode_seconds=decode_seconds, inpaintings=spent, search=search, lossless=lossless,
        chroma_points=file_info.chroma_points, chroma_guide=file_info.chroma_guide,
        loop_filter=file_info.loop_filter)


def _rate_step(db: float) -> float:
    """The rate factor that ``db`` more (or less) PSNR asks for at the assumed slope, kept
    within 1.25-4 (one encode at a far too high rate costs as much as several)."""
    return 2.0 ** float(np.clip(db / PSNR_PER_DOUBLING, np.log2(1.25), 2.0))


def _encode_to_psnr(image, target: float, kwargs: dict) -> EncodeReport:
    """The smallest file found whose real decoding reaches PSNR ``target`` (dB).

    A search over the target rate, in log2 of the rate: steps of the assumed slope
    (:data:`PSNR_PER_DOUBLING`, :func:`_rate_step`) until an encode reaches the target and
    one misses it, then the secant between the nearest two, kept inside their bracket.
    Every encode is a whole ``encode_report(bpp=...)``, so the file is one that the rate
    target would give, and the PSNR reported is the real decoder's.  If even the smallest
    file reaches the target it is returned; any target is reached by the lossless file at
    the latest.  The report's ``encode_seconds`` is the whole search's.
    """
    t0 = time.perf_counter()
    img = _as_image(image)
    if not (np.isfinite(target) and target > 0):
        raise CodecError(f"psnr must be a positive number of dB, got {target}")
    floor = lowest_bpp(img, planes_of(img, C.COLOUR_YCBCR))
    tried, best = [], None
    reached, missed = {}, {}  # target rate of each encode -> the PSNR it gave
    b = default_bpp(img)
    for _ in range(MAX_PSNR_ENCODES):
        r = encode_report(img, bpp=b, **kwargs)
        tried.append((b, r.bpp, r.psnr))
        # a rate asked beyond the lossless file's gives that file: count it at its own rate
        at = min(b, r.bpp) if r.lossless else b
        if r.psnr >= target:
            reached[at] = r.psnr
            if best is None or len(r.data) < len(best.data):
                best = r
        else:
            missed[at] = r.psnr
        if not reached:  # everything so far misses: up by the assumed slope
            top = max(missed)
            b = top * _rate_step(target - missed[top])
            continue
        hi = min(reached)
        # a miss above a hit brackets nothing (the PSNR is not quite monotone in the rate)
        below = [m for m in missed if m < hi]
        if not below:  # everything so far reaches it: down
            if hi <= floor * (1 + RATE_TOLERANCE):
                break  # the smallest file reaches the target
            b = max(floor, hi / _rate_step(reached[hi] - target))
            continue
        lo = max(below)
        if hi <= lo * (1 + RATE_TOLERANCE):
            break
        # the secant between the two (the assumed slope from the miss where the hit is
        # the lossless file), as a share t of the bracket in log2 rate, kept off its ends
        # so that every encode shrinks the bracket
        if np.isfinite(reached[hi]):
            t = (target - missed[lo]) / (reached[hi] - missed[lo])
        else:
            t = (target - missed[lo]) / PSNR_PER_DOUBLING / np.log2(hi / lo)
        b = lo * (hi / lo) ** float(np.clip(t, 0.2, 0.8))
    if best is None:  # the target lies above every rate tried: the lossless file
        b = LOSSLESS_BPP * img.size / (img.shape[0] * img.shape[1])
        best = encode_report(img, bpp=b, **kwargs)
        tried.append((b, best.bpp, best.psnr))
    best.psnr_search = tried
    best.encode_seconds = time.perf_counter() - t0
    return best


def default_bpp(image) -> float:
    """:data:`DEFAULT_BPP`, or for an image too small for it (its header alone would
    exceed it) twice the size of its smallest file (one stored point)."""
    img = _as_image(image)
    return max(DEFAULT_BPP, 2.0 * lowest_bpp(img, planes_of(img, C.COLOUR_YCBCR)))


def encode(image, **kwargs) -> bytes:
    """Compress an 8-bit image (H, W) grey or (H, W, 3) RGB into inpcodec bytes.

    Parameters
    ----------
    image : array_like of uint8
    encoder : str
        How the mask is chosen (on the luma): a registered mask encoder
        (:func:`inpcodec.codec.encoders.encoder_names`: ``belhachmi``, ``random``, ``ps``,
        ``ps+nlpe``, ``learned``, ...).
    quality : float
        0-100 (default :data:`DEFAULT_QUALITY` when no target is given): a fixed price of
        a bit (:func:`.lagrangian.quality_to_lambda`); the default encoder makes every
        choice by D + lambda R in one pass, the others pick a density by it.  Give at most
        one of ``quality``, ``density``, ``bpp`` and ``psnr``.
    density : float
        Fraction of pixels stored.
    bpp : float
        Target size in bits per pixel, within 3 %: the default encoder searches lambda
        (about two encodes), the others density and quantisation.  A target at or above
        the size of the lossless file gives the lossless file (every pixel exact); one
        that cannot be reached gives the nearest file and says so in the report's
        ``note``.
    psnr : float
        Target quality instead: the smallest file found whose decoding has at least this
        PSNR in dB (RGB for colour images), by a search over lambda (the default
        encoder) or ``bpp``.  The report's ``psnr_search`` lists the encodes.
    threads : int
        Solver threads (default one: :mod:`.threads`; 0: every core).  The file is the
        same for any count.
    levels, chroma_levels : int
        Quantisation levels of luma and chroma (default 64, and for chroma twice the
        luma's with tree masks, whose chroma lives on a coarser tree, half of them with
        free masks; with ``bpp`` the luma levels are searched unless given).
    tonal : bool
        Optimise the stored values for the reconstruction, with the quantiser in the loop.
    seed : int
        Seed of the stochastic encoders.
    progress : bool
        Progress bars (rate search, tonal optimisation, slow encoders) on standard error.
    effort : str
        With ``bpp``: ``"fast"`` (default; tree masks: one level count by rule, one or two
        tonal optimisations) or ``"best"`` (level counts searched with tonally optimised
        encodes: a few tenths of a dB better, several times slower; see
        :data:`inpcodec.codec.rate.EFFORTS`).
    chroma_guide : bool
        Colour tree files: let the decoder reconstruct chroma guided by the decoded luma
        where that decodes the image better (the encoder tries a few settings and stores
        the best in two bytes; ``bitstreams/FORMAT.md``, "Chroma guided by the luma");
        False keeps plain chroma.
    loop_filter : bool
        Let the decoder filter the inpainted luma with a small linear filter fitted to the
        image (section FILT, ``bitstreams/FORMAT.md``, "Loop filter"), where it gains
        more than its bytes cost; False writes files without it.
    metadata : dict
        ICC profile, EXIF and XMP to keep in the file's ancillary sections, keyed as
        Pillow's ``im.info`` (``icc_profile``, ``exif``, ``xmp``; bytes), as
        :func:`inpcodec.codec.io.load_image` gives them with ``with_metadata=True``;
        :func:`inpcodec.codec.decoder.read_metadata` gives them back.  They are not part
        of a rate target.
    **options
        The encoder's own options (``get_encoder(encoder).options``), e.g. ``weights``
        for ``learned``, ``max_seconds`` and ``runs`` for ``ps``.
    """
    return encode_report(image, **kwargs).data
