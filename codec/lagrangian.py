"""The Lagrangian encoder: one multiplier, every choice by J = D + lam R.

D is the squared error of the decoded image summed over its samples (grey: the grey
plane; colour: R, G and B) on the 0-255 scale, R the bits of the file, and ``lam`` (squared
grey levels per bit) the price of a bit.  For a given ``lam`` the encoder makes each
choice once, in this order, keeping one :class:`~.format.FileState` from the image to the
bytes:

1. the mask: the error-driven quadtree grown while a leaf holds more error than
   ``lam`` x :data:`GROWTH_BITS` (no split of a leaf with less can pay), then pruned where
   a split's bits buy less error than ``lam`` (local re-solves; :class:`RdoPruning`);
2. colour: the chroma tree (the luma's with 1-3 bottom merges) with the least J of its
   plain (untuned) chroma;
3. the luma and chroma quantisers, from a model fitted to two plain files of the image
   itself (D = D0 + a step^2, R = R0 - b log2 step, per plane: the step that minimises J is
   ``sqrt(lam b / (2 ln 2 w a))``);
4. one tonal optimisation of the values with those quantisers in the loop;
5. the loop filter with the least J (or none), the chroma guide with the least J (or
   none), and the lossless file where its J is lower;

then writes the file once.  In colour the planes are YCbCr and a plane's squared error
counts with its weight in RGB (:data:`PLANE_WEIGHTS`), so every D is the RGB one.

``quality`` (0-100) is a fixed map to ``lam`` (:func:`quality_to_lambda`); a target rate
or PSNR is a search over ``lam`` (:func:`search_lambda_for_bpp`,
:func:`search_lambda_for_psnr`).
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass, field, replace

import numpy as np

from inpcodec.baselines.tree import RdoPruning, tree_from_order
from inpcodec.bitstreams import container as C
from inpcodec.bitstreams.tree_coder import tree_mask

from .decoder import decode
from .diffusion import ESTIMATE_DTYPE, Inpainter, solves_run
from .encoders import TREE_MASK_CODER, MaskResult
from .format import GUIDE_CANDIDATES, LOSSLESS_LEVELS, file_state, lossless_file
from .limits import CodecError, require_learned
from .loop_filter import apply_loop_filter, choose_loop_filter
from .metrics import psnr as _psnr
from .metrics import squared_error
from .quantiser import MAX_LEVELS, quantiser
from .rate import LOSSLESS_MARGIN, lossless_estimate
from .sections import ChromaGuide, LoopFilterSection
from .tonal import tile_overlap

#: The squared RGB error a unit error in each YCbCr plane leaves (the inverse transform of
#: codec.colour: Y enters R, G and B with weight 1; Cb with 0.344 and 1.772; Cr with 1.402
#: and 0.714).
PLANE_WEIGHTS = (3.0, 0.344136286 ** 2 + 1.772 ** 2, 1.402 ** 2 + 0.714136286 ** 2)
#: A leaf is split during growth only while its squared error exceeds lam times this many
#: bits: a split of a quadtree cell with centres adds 4-8 points of about 2-3 bits each
#: and its flags, 10-25 bits, and removes at most its leaf's error, so a leaf holding less
#: than a split's bits' price is not worth splitting.  Measured (kodim05/13/23, grey and
#: colour, lam 256): J 0.1-2.5 % lower with 16 than with 4 (a fraction of a split's bits,
#: leaving the decision to the pruning, whose slopes see the original values and keep
#: too much), and 20-45 % less time; 32 and 64 raise J on two of the three images.
GROWTH_BITS = 16.0
#: The two luma level counts of the plain files that fit the quantiser model (chroma at
#: twice as many on its coarser tree): two octaves apart, both coarse enough that the
#: quantisation error is seen beside the inpainting error.
MODEL_LEVELS = (32, 8)
#: The plain files' solves (their squared errors only rank choices) stop at this relative
#: residual: 7 V-cycles instead of 10 at the decoder's 1e-6, the squared error within
#: 0.1 %.  The same files as with 1e-6 on 63 of 64 (Kodak, boat, the large photographs'
#: crops; quality 30-70), the other +0.04 % in J; 1e-3 (5-6 V-cycles) changed 11 and moved
#: J by up to 7 % on a file (benchmarks/RESULTS.md, "Fewer solves in a rate search").
PLAIN_SOLVE_TOL = 1e-4
#: Chroma trees tried: the luma's tree with this many bottom splits merged.
CHROMA_MERGE_CANDIDATES = (1, 2, 3)

#: ``quality`` to ``lam``, a fixed map: lam = LAMBDA_AT_50 * 2^((50 - quality) /
#: QUALITY_PER_OCTAVE).  ``lam`` prices a bit in squared grey levels per sample (the RGB
#: error of a colour image is averaged over its three channels, so one quality gives
#: about one PSNR in grey and colour).  Quality 50 (the default) is 256, where Kodak's
#: photographs take 0.1-0.5 bpp; every 7 steps halve the price of a bit (about 1 dB more,
#: 30-50 % more bits); 100 is 1.8 (near-lossless), 0 about 36,000 (the coarsest files).
LAMBDA_AT_50 = 256.0
QUALITY_PER_OCTAVE = 7.0
DEFAULT_QUALITY = 50


def quality_to_lambda(quality: float) -> float:
    """The Lagrange multiplier of a quality 0-100 (larger: a larger file, a higher PSNR)."""
    q = float(quality)
    if not (np.isfinite(q) and 0.0 <= q <= 100.0):
        raise CodecError(f"quality must lie in 0..100, got {quality}")
    return LAMBDA_AT_50 * 2.0 ** ((50.0 - q) / QUALITY_PER_OCTAVE)


def lambda_to_quality(lam: float) -> float:
    """The inverse of :func:`quality_to_lambda` (may lie outside 0-100)."""
    return 50.0 - QUALITY_PER_OCTAVE * math.log2(lam / LAMBDA_AT_50)


# ----------------------------------------------------------------------------- the mask


class TreeFamily:
    """The trees of one image for every ``lam``: the error-driven growth and the
    Lagrangian pruning of ``tree-rdo`` (:class:`~inpcodec.baselines.tree.RdoPruning`),
    grown once for the smallest ``lam`` asked for and pruned on for larger ones."""

    def __init__(self, luma: np.ndarray, front_end: str = "error"):
        if front_end not in FRONT_ENDS:
            raise ValueError(f"unknown front-end {front_end!r}")
        self.luma = luma
        self.front_end = front_end
        self.pruning = None
        self.grown_for = math.inf

    def _grown(self, min_error: float):
        """The learned front-end's growth: the tree-map network's split order (no
        inpainting) while a split's predicted error reaches ``min_error``."""
        require_learned("the tree-learned encoder")
        from inpcodec.learned_masks.tree_map import learned_tree_order  # noqa: PLC0415

        order = learned_tree_order(self.luma)
        return order.prefix(int(np.count_nonzero(order.score >= min_error)))

    def mask_for(self, lam_luma: float) -> MaskResult:
        """The tree of multiplier ``lam_luma`` (squared luma error per bit): grown anew
        where ``lam_luma`` lies below the last growth's (the growth bound depends on it),
        pruned on from the last tree otherwise."""
        if self.pruning is None or lam_luma < self.grown_for:
            bound = lam_luma * GROWTH_BITS
            self.pruning = RdoPruning(
                self.luma, self.luma.size, min_error=bound,
                grown=self._grown(bound) if self.front_end == "learned" else None)
            self.grown_for = lam_luma
        n = self.pruning.prune_until(lam_luma)
        tree = tree_from_order(self.pruning.order(), n)
        return MaskResult(tree_mask(tree), 0, 0.0, {"method": "tree-rdo (lambda)",
                                                     "splits": tree.n_splits()},
                          coder=TREE_MASK_CODER, structure=tree)


class _Family(threading.local):
    """The last image's :class:`TreeFamily` with its key, per thread (encodes in threads
    of one process would otherwise clear or prune each other's)."""

    def __init__(self):
        self.last = None


_FAMILIES = _Family()
#: Where the tree's growth comes from: ``error`` (error-driven densification, a few
#: inpaintings; ``tree-rdo``) or ``learned`` (the tree-map network's predicted errors,
#: none; ``tree-learned``).  The pruning and every later choice are the same.
FRONT_ENDS = ("error", "learned")


def tree_family(luma: np.ndarray, front_end: str = "error") -> TreeFamily:
    """The :class:`TreeFamily` of this luma, kept for the last image (a rate search asks
    for many ``lam``)."""
    key = (front_end, luma.shape,
           hashlib.sha1(np.ascontiguousarray(luma).tobytes()).hexdigest())
    kept = _FAMILIES.last
    if kept is None or kept[0] != key:
        kept = _FAMILIES.last = (key, TreeFamily(luma, front_end))
    return kept[1]


def clear_families() -> None:
    """Forget this thread's last :class:`TreeFamily`."""
    _FAMILIES.last = None


# ----------------------------------------------------------------------------- measures


def _weights(channels: int) -> np.ndarray:
    return np.array(PLANE_WEIGHTS if channels == 3 else (1.0,))


def _plane_bits(state) -> np.ndarray:
    """Bits of each plane's value section."""
    return np.array([8.0 * len(state.cont.sections[f"VAL{c}"])
                     for c in range(len(state.symbols))])


def _plane_sse(state, planes, channels: int, cache) -> np.ndarray:
    """Squared error of each plane of a plain state's decoded planes (unfiltered, no
    guide); luma and chroma solved apart, each solve kept in ``cache`` by its mask and
    levels."""
    out = np.zeros(channels)
    groups = [(0,)] if channels == 1 else [(0,), (1, 2)]
    for g in groups:
        mask = state.masks[g[0]][0]
        q = state.params.levels if g[0] == 0 else state.params.chroma_levels
        key = (g, q, hashlib.sha1(np.packbits(mask).tobytes()).hexdigest())
        if key not in cache:
            # one channel at a time: a solve's workspace is one channel's (this is the
            # peak of a large encode's memory)
            ip, errors = Inpainter(mask, dtype=ESTIMATE_DTYPE), []
            for c in g:
                d = _plain_plane(state, c, ip)
                d -= planes[:, :, c]
                errors.append(float(np.dot(d.ravel(), d.ravel())))
                d = None
            cache[key] = np.array(errors)
        out[list(g)] = cache[key]
    return out


def _plain_plane(state, c: int, ip=None) -> np.ndarray:
    """Plane ``c`` of a state's file as the plain files' estimates solve it (before any
    loop filter or guide): to :data:`PLAIN_SOLVE_TOL`, in single precision; ``ip``: the
    plane's :class:`~.diffusion.Inpainter`, where the caller has it."""
    mask = state.masks[c][0]
    if ip is None:
        ip = Inpainter(mask, dtype=ESTIMATE_DTYPE)
    vals = np.zeros(mask.shape)
    vals[mask] = quantiser(state.params.levels if c == 0
                           else state.params.chroma_levels)[state.symbols[c]]
    return ip.solve(vals, tol=PLAIN_SOLVE_TOL)


def _model_step(lam, w, d_hi, d_lo, r_hi, r_lo, step_hi, step_lo):
    """The quantiser step with the least J under D = D0 + a step^2, R = R0 - b log2 step,
    fitted through two (D, R) points; None where the points show no trade-off."""
    a = (d_lo - d_hi) / (step_lo ** 2 - step_hi ** 2)
    b = (r_hi - r_lo) / math.log2(step_lo / step_hi)
    if not (a > 0 and b > 0):
        return None
    return math.sqrt(lam * b / (2.0 * math.log(2.0) * w * a))


def _levels_of(step) -> int:
    return int(np.clip(round(255.0 / step) + 1, 2, min(MAX_LEVELS, LOSSLESS_LEVELS)))


# ----------------------------------------------------------------------------- encode


@dataclass
class LagrangianFile:
    """The file of one ``lam`` and how its choices went."""

    data: bytes
    decoded: np.ndarray
    #: The multiplier (per sample) and the squared error summed over the pixels, averaged
    #: over the channels: J = sse + lam * bits.
    lam: float
    sse: float
    levels: int
    chroma_levels: int
    merges: int
    mask: np.ndarray
    #: Bits of the plain (untuned, unfiltered) file of the same choices: the cheap
    #: estimate a rate search steers by.
    plain_bits: float
    solves: int
    lossless: bool = False
    log: list = field(default_factory=list)
    #: The plain file's squared error (as ``sse``), where asked for; the PSNR of the
    #: decoded file, where a search measured it.
    plain_sse: float = 0.0
    psnr: float = math.nan
    #: The tonal optimisation's end (``FileState.starts``): where the next real file of
    #: a search starts its own.
    starts: list | None = None
    #: False for a file left before its reconstruction (``encode_lambda``'s
    #: ``unwanted_above``): its size is the file's without the loop filter and guide.
    finished: bool = True

    @property
    def cost(self) -> float:
        return self.sse + self.lam * 8.0 * len(self.data)


def choose(img, planes, lam, *, levels=None, chroma_levels=None, merges=None,
           plain_error=False, front_end="error"):
    """Steps 1-3 for ``lam`` (here per squared error summed over every sample): the mask,
    the chroma tree and the quantisers; those given are kept.

    Returns (mask result, luma levels, chroma levels, chroma merges, plain file bits,
    log); all from plain files (one or two solves each; none where all are given).  With
    ``plain_error`` the log's last entry holds the plain file's squared error
    (``plain_sse``, summed over the pixels, averaged over the channels in RGB terms).
    """
    channels = planes.shape[2]
    w = _weights(channels)
    family = tree_family(planes[:, :, 0], front_end)
    # the luma tree at the luma's price of a bit; the chroma tree follows it (its merges),
    # so a luma split's chroma bits are repaid by its chroma error on the margin (pricing
    # them in, or lam scaled by 0.6 or 1.6, gave J within +0.03 % and 2-3 % higher on
    # kodim05/13/19/23 in colour: benchmarks/RESULTS.md, "The Lagrangian encoder")
    found = family.mask_for(lam / w[0])
    cache = {}
    log = [{"points": int(found.mask.sum())}]
    hi, lo = MODEL_LEVELS
    plain = {}

    def measure(lv, clv, m):
        key = (lv, clv, m)
        if key not in plain:
            st = file_state(img, planes, found, lv, clv, False, chroma_merges=m)
            plain[key] = (st, _plane_bits(st), _plane_sse(st, planes, channels, cache))
        return plain[key]

    lv0 = levels or hi
    clv0 = chroma_levels or min(MAX_LEVELS, 2 * lv0)
    if channels == 1:
        merges = 0
    elif merges is None:
        best = None
        for m in CHROMA_MERGE_CANDIDATES:
            _, bits, sse = measure(lv0, clv0, m)
            j = float((w[1:] * sse[1:]).sum() + lam * bits[1:].sum())
            log.append({"merges": m, "chroma_cost": j})
            if best is None or j < best[0]:
                best = (j, m)
        merges = best[1]
    lv, clv = lv0, clv0
    if levels is None or (channels == 3 and chroma_levels is None):
        def fit(hi, lo):
            """The model through the plain files of hi and lo luma levels (chroma at
            twice as many): the best luma and chroma steps, None where no trade-off."""
            _, b_hi, d_hi = measure(hi, min(MAX_LEVELS, 2 * hi), merges)
            _, b_lo, d_lo = measure(lo, min(MAX_LEVELS, 2 * lo), merges)
            step = cstep = None
            if levels is None:
                step = _model_step(lam, w[0], d_hi[0], d_lo[0], b_hi[0], b_lo[0],
                                   255.0 / (hi - 1), 255.0 / (lo - 1))
            if channels == 3 and chroma_levels is None:
                cstep = _model_step(lam, 1.0, (w[1:] * d_hi[1:]).sum(),
                                    (w[1:] * d_lo[1:]).sum(), b_hi[1:].sum(),
                                    b_lo[1:].sum(), 255.0 / (min(MAX_LEVELS, 2 * hi) - 1),
                                    255.0 / (min(MAX_LEVELS, 2 * lo) - 1))
            return step, cstep

        step, cstep = fit(hi, lo)
        # where the fit asks for finer levels than half an octave above its points, it is
        # fitted again through points an octave either side of its answer: the
        # quantisation error of fine levels hides under the inpainting error at 8-32
        # levels.  Refitted answers lowered J by 8-15 % in all five such cases of the
        # large photographs' crops (benchmarks/RESULTS.md, "The Lagrangian encoder");
        # refitting coarse answers (below 8 levels) raised it by 3.5 % in the one case
        want = None if step is None else _levels_of(step)
        if want is not None and want > hi * math.sqrt(2):
            hi2, lo2 = int(min(LOSSLESS_LEVELS // 2, 2 * want)), int(want // 2)
            if hi2 > lo2:
                step, cstep2 = fit(hi2, lo2)
                cstep = cstep if cstep2 is None else cstep2
                log.append({"refit_levels": (hi2, lo2)})
        if levels is None:
            lv = hi if step is None else _levels_of(step)
        if channels == 3 and chroma_levels is None:
            clv = min(MAX_LEVELS, 2 * lv) if cstep is None else _levels_of(cstep)
        # the steps, per sqrt(lam): the model's optimum scales so with lam at a fixed mask
        log.append({"levels": lv, "chroma_levels": clv,
                    "step_per_root_lam": None if step is None else step / math.sqrt(lam),
                    "chroma_step_per_root_lam": None if cstep is None
                    else cstep / math.sqrt(lam)})
    key = (lv, clv, merges)
    if plain_error:
        st, _, sse = measure(lv, clv, merges)
        log.append({"plain_sse": float((w * sse).sum()) / channels})
    else:
        st = plain[key][0] if key in plain else file_state(img, planes, found, lv, clv,
                                                           False, chroma_merges=merges)
    return found, lv, clv, merges, 8.0 * len(st.write()), log


def encode_lambda(img, planes, lam: float, *, levels=None, chroma_levels=None,
                  tonal: bool = True, loop_filter: bool = True, chroma_guide: bool = True,
                  merges=None, lossless: bool = True, plain_error: bool = False,
                  front_end: str = "error", warm=None,
                  unwanted_above: float | None = None) -> LagrangianFile:
    """The file of ``img`` (8-bit grey or RGB, ``planes`` its YCbCr or grey planes) that
    the Lagrangian encoder makes for multiplier ``lam``; see the module.  ``warm``: an
    earlier real file of the image, whose tonal optimisation this one's starts from (at
    the gradient norm it stopped at: the same accuracy for fewer iterations).

    ``unwanted_above``: bits beyond which the caller (a rate search) has no use for the
    file but its size.  Where the file before the loop filter and the chroma guide (which
    only add bytes) is already larger, it is returned unfinished (``finished`` False: no
    reconstruction, ``decoded`` None, ``sse`` NaN), without the decoder's solve and the
    choices that need it."""
    if not (np.isfinite(lam) and lam > 0):
        raise CodecError(f"the Lagrange multiplier must be positive, got {lam}")
    start = solves_run()
    channels = planes.shape[2]
    w = _weights(channels)
    lam_user, lam = lam, lam * channels  # per sample -> per the error summed over samples
    found, lv, clv, merges, plain_bits, log = choose(
        img, planes, lam, levels=levels, chroma_levels=chroma_levels, merges=merges,
        plain_error=plain_error, front_end=front_end)
    state = file_state(img, planes, found, lv, clv, tonal, chroma_merges=merges,
                       effort="lagrangian",
                       warm=None if warm is None or warm.starts is None else warm.starts)
    if unwanted_above is not None and 8.0 * state.nbytes() > unwanted_above:
        if loop_filter:
            # its size should still be the finished file's: the loop filter (up to 1-2 %
            # of a file) is chosen on an estimate of the luma (the plain files' solve)
            filt = choose_loop_filter(_plain_plane(state, 0), planes[:, :, 0],
                                      state.masks[0][0], state.nbytes(), lam=lam / w[0])
            if filt is not None:
                state.set_loop_filter(filt)
        return LagrangianFile(state.write(), None, lam_user, math.nan, lv, clv, merges,
                              found.mask, plain_bits, solves_run() - start,
                              log=[*log, {"unfinished": True}], starts=state.starts,
                              finished=False)
    u = state.planes()
    if loop_filter:
        filt = choose_loop_filter(u[:, :, 0], planes[:, :, 0], state.masks[0][0],
                                  state.nbytes(), lam=lam / w[0])
        if filt is not None:
            state.set_loop_filter(filt)
            # what the decoder does after its solve, on the same planes: no second solve
            u[:, :, 0] = apply_loop_filter(u[:, :, 0], state.masks[0][0], filt)
            log.append({"loop_filter": (filt.radius, filt.classes, filt.edges)})

    def sse(pixels):
        return float(squared_error(pixels, img))

    pixels = state.pixels(u)
    err = sse(pixels)
    if chroma_guide and channels == 3 and state.cont.colour == C.COLOUR_YCBCR:
        best = None
        for guide in GUIDE_CANDIDATES:
            e = sse(state.pixels(u, guide))
            if e + lam * 8.0 * ChromaGuide.NBYTES < err and (best is None or e < best[0]):
                best = (e, guide)
        if best is not None:
            state.set_chroma_guide(best[1])
            pixels, err = state.pixels(u), best[0]
            log.append({"chroma_guide": best[1]})
    data = state.write()
    out = LagrangianFile(data, pixels, lam_user, err / channels, lv, clv, merges,
                         found.mask, plain_bits, solves_run() - start, log=log,
                         plain_sse=next((e["plain_sse"] for e in log if "plain_sse" in e),
                                        0.0), starts=state.starts)
    return (_lossless_if_cheaper(img, out) if lossless else None) or out


#: The sections a file may go without: J's choices, not the image's data.
OPTIONAL_SECTIONS = (ChromaGuide.TAG, LoopFilterSection.TAG)


def _without_optional(data: bytes) -> dict:
    """The bytes of the file ``data`` without each non-empty set of the optional sections
    it has, by the tags left out (its container framed again: a rate search's last resort,
    so no encode pays for it)."""
    cont = C.read(data)
    have = [t for t in OPTIONAL_SECTIONS if t in cont.sections]
    out = {}
    for k in range(1, 1 << len(have)):
        drop = tuple(t for i, t in enumerate(have) if k >> i & 1)
        out[drop] = C.write(replace(cont, sections={t: v for t, v in cont.sections.items()
                                                    if t not in drop}))
    return out


def _trimmed(img, f: LagrangianFile, drop: tuple, data: bytes) -> LagrangianFile:
    """``f`` without the sections ``drop``: its bytes ``data`` (from
    :func:`_without_optional`), decoded by the decoder."""
    pixels = decode(data, max_pixels=None)  # its own file: no limit on untrusted ones
    err = float(squared_error(pixels, img)) / (1 if img.ndim == 2 else img.shape[2])
    return replace(f, data=data, decoded=pixels, sse=err,
                   log=[*f.log, {"left_out": list(drop)}])


def _lossless(img, lam: float = 0.0, solves: int = 0, log=()) -> LagrangianFile:
    """The lossless file of ``img`` (every pixel exact) as a :class:`LagrangianFile`."""
    data, _ = lossless_file(img)
    return LagrangianFile(data, np.asarray(img).copy(), lam, 0.0, LOSSLESS_LEVELS,
                          LOSSLESS_LEVELS, 0, np.ones(img.shape[:2], bool), 8.0 * len(data),
                          solves, lossless=True, log=[*log, {"lossless": True}],
                          psnr=math.inf)


def _lossless_if_cheaper(img, lossy: LagrangianFile):
    """The lossless file where its J (its bits alone) is below the lossy file's; its cost
    is estimated first (:func:`.rate.lossless_estimate`, which real lossless files of
    natural images exceed by at most 10 %), so it is made only where it may win."""
    n = img.shape[0] * img.shape[1]
    if lossy.lam * lossless_estimate(img) * n >= lossy.cost:
        return None
    out = _lossless(img, lossy.lam, lossy.solves, lossy.log)
    return out if out.cost < lossy.cost else None


# ----------------------------------------------------------------------------- cost

#: Solves of one encode, by stage, for the progress bar's total; in solves of the whole
#: image (a window's solve counts by its pixels).  Measured (one thread; the solve hook
#: counted per stage) on kodim23 (colour), boat (grey), colorfulcups at 1 and 4 MP, at
#: quality 50 and at a rate: the mask's growth and pruning 16-22 for one lam and 34-55
#: for a search's lams; the choices (chroma tree, quantiser model) 2 in grey and 10 in
#: colour per file; the tonal optimisation 17-18 per channel on one tile, times the
#: windows' overlap (:func:`.tonal.tile_overlap`); the reconstruction 1 per channel.
#: They set the bar's total (within 15 % of the count on those encodes), not the file.
COST_MASK = 18
COST_SEARCH_MASK = 40
COST_CHOICES = {1: 2, 3: 10}
COST_TONAL_PER_CHANNEL = 18
#: A rate or PSNR search's real files in the normal case.
COST_SEARCH_FILES = 2


def expected_solves(channels: int, search: bool = False, shape=None) -> float:
    """The solves the cost model above expects of an encode of an image of ``shape``
    (height, width; None: one tile), ``search``: to a rate or PSNR target."""
    overlap = 1.0 if shape is None else tile_overlap(*shape)
    one_file = COST_CHOICES[channels] + channels * (COST_TONAL_PER_CHANNEL * overlap + 1)
    if not search:
        return COST_MASK + one_file
    return COST_SEARCH_MASK + COST_SEARCH_FILES * one_file


# ----------------------------------------------------------------------------- targets

#: A rate target is met within this fraction (as the rate search of codec.rate).
RATE_TOLERANCE = 0.03
#: Encodes with tonal optimisation a rate or PSNR search makes at most.
MAX_FULL_ENCODES = 3
#: Cheap (plain) estimates one step of a rate search makes at most.
MAX_ESTIMATES = 12


def _secant_log(f, x0, target, slope, tol, steps):
    """x with f(x) within ``tol`` (relative) of ``target``, for f decreasing like
    x^-slope: secant steps in log-log, starting at ``x0`` with that slope, kept inside
    the bracket of the x seen on either side of the target.  f is a step function (the
    pruning and the level counts are discrete): where the bracket is so narrow that f,
    were it smooth at that slope, would change by at most ``tol`` across it, the target
    lies in a step and the search stops.  Returns (x, f(x)) of the closest seen."""
    x, best, prev = x0, None, None
    above = below = None  # the largest x with f above the target, the smallest below
    for _ in range(steps):
        y = f(x)
        err = abs(y / target - 1.0)
        if best is None or err < best[0]:
            best = (err, x, y)
        if err <= tol:
            break
        if y > target:
            above = x if above is None else max(above, x)
        else:
            below = x if below is None else min(below, x)
        bracket = above is not None and below is not None and above < below
        if bracket and slope * math.log(below / above) <= tol:
            break
        if prev is not None and prev[0] != x and prev[1] > 0 and y > 0:
            s = -math.log(y / prev[1]) / math.log(x / prev[0])
            if s < 0.02 and abs(math.log(x / prev[0])) > 1.0:
                break  # f no longer moves with x: the tree is whole (or empty)
            if 0.1 < s < 3.0:
                slope = s
        prev = (x, y)
        x = x * (y / target) ** (1.0 / slope)
        if bracket and not above < x < below:
            x = math.sqrt(above * below)
    return best[1], best[2]


def _levels_at(out, lam: float, channels: int) -> dict:
    """The choices an estimate at ``lam`` keeps from the real or plain file ``out`` (with
    ``levels``, ``chroma_levels``, ``merges`` and its ``log``): its chroma tree, and its
    quantisers with their steps scaled by sqrt(lam / out.lam) (the quantiser model's
    optimum at a fixed mask); levels the user gave stay."""
    model = next((e for e in out.log if "step_per_root_lam" in e), {})
    root = math.sqrt(lam * channels)
    s, cs = model.get("step_per_root_lam"), model.get("chroma_step_per_root_lam")
    return {"levels": out.levels if s is None else _levels_of(s * root),
            "chroma_levels": out.chroma_levels if cs is None else _levels_of(cs * root),
            "merges": out.merges if channels == 3 else None}


@dataclass
class _Choices:
    """The choices of a plain file (:func:`choose`), for :func:`_levels_at`."""

    levels: int
    chroma_levels: int
    merges: int
    log: list


def search_lambda_for_bpp(img, planes, target: float, *, lam0: float = LAMBDA_AT_50,
                          **kwargs):
    """The file within :data:`RATE_TOLERANCE` of ``target`` bpp, by a search over ``lam``.

    Cheap estimates first: the plain file's bits at each ``lam`` with the chroma tree
    and the quantiser steps of the plain file at ``lam0``, scaled as the quantiser model
    says (the mask's pruning only: no solve but its rounds), by secant steps in log lam;
    then the real file there, making every choice.  Its ratio of real to plain bits
    (tonal optimisation, loop filter) then scales the estimates, now with its choices,
    and the next real file takes the estimate's choices (three real files at most).  A
    real file that is too large before its loop filter and chroma guide is not finished
    (no reconstruction) unless it is the last try: only its size is used.  Where no file
    lands, one without its loop filter or chroma guide (J's choices, not the image's
    data) that does is given (on images of a few thousand pixels such a section is
    several per cent of the file).
    Returns (file, log, reached): the closest file where none lands (a rate beyond every
    lossy file and below the lossless one).
    """
    n = img.shape[0] * img.shape[1]
    channels = planes.shape[2]
    goal_bits = target * n
    if target * LOSSLESS_MARGIN >= lossless_estimate(img):
        out = _lossless(img)
        if out.plain_bits <= goal_bits:  # every pixel fits exactly: nothing to search
            return out, [{"lambda": 0.0, "bpp": out.plain_bits / n, "lossless": True}], True
    given = {"levels": kwargs.pop("levels", None),
             "chroma_levels": kwargs.pop("chroma_levels", None)}
    front_end = kwargs.get("front_end", "error")
    log, files, lam = [], [], lam0
    # the first estimates take the quantisers of lam0's plain file and no ratio (no real
    # file yet): the first real file lands near the target, a few per cent above it.  Its
    # chroma tree is the middle candidate, not chosen: the real file chooses its own, and
    # the candidates' chroma solves (a solve in all) would only move the first guess
    _, lv, clv, m, _, clog = choose(
        img, planes, lam0 * channels, **given, front_end=front_end,
        merges=CHROMA_MERGE_CANDIDATES[len(CHROMA_MERGE_CANDIDATES) // 2])
    first = _Choices(lv, clv, m, clog)

    def scaled(made):
        """The choices at a lam: those of ``made`` (a real file or a plain one's), its
        quantiser steps scaled (:func:`_levels_at`), the levels the user gave kept."""
        def at(x):
            keep = _levels_at(made, x, channels)
            keep.update({key: v for key, v in given.items() if v is not None})
            return keep
        return at

    def estimate(choices_at, ratio, note=()):
        """The estimated bits at a lam: its plain file's with ``choices_at(lam)``, times
        ``ratio`` (a number, or a function of lam)."""
        def bits(x):
            *_, pb, _ = choose(img, planes, x * channels, front_end=front_end,
                               **choices_at(x))
            log.append({"lambda": x, "plain_bpp": pb / n, **dict(note)})
            return pb * (ratio(x) if callable(ratio) else ratio)
        return bits

    def ratio_at(x):
        """The real files' ratio of real to plain bits at lam x: the last file's, or,
        from two files on, the line through the last two in log lam (the ratio drifts
        with lam), within the range they span."""
        r = [(math.log(f.lam), 8.0 * len(f.data) / f.plain_bits) for f in files[-2:]]
        if len(r) < 2 or r[0][0] == r[1][0]:
            return r[-1][1]
        t = (math.log(x) - r[1][0]) / (r[0][0] - r[1][0])
        return float(np.clip(r[1][1] + t * (r[0][1] - r[1][1]), min(r[0][1], r[1][1]),
                             max(r[0][1], r[1][1])))

    for _ in range(MAX_FULL_ENCODES):
        last = files[-1] if files else first
        ratio = ratio_at if files else 1.0
        choices_at = scaled(last)
        lam, est = _secant_log(estimate(choices_at, ratio), lam, goal_bits, 0.5,
                               RATE_TOLERANCE / 3, MAX_ESTIMATES)
        for _ in range(0 if files else 2):
            # every choice made at that lam (the quantisers of lam0's model, scaled over
            # a wide range of lam, can miss by 30 %); the estimates again with them, so
            # that the first real file lands above the target by the ratio of real to
            # plain bits alone, as near to the next file's lam as can be (the ratio
            # drifts with lam).  Made again where the estimates move lam by more than
            # half an octave: the model's steps scale with sqrt(lam) at a fixed mask,
            # and further away the mask is another (once more at most)
            _, lv, clv, m, _, clog = choose(img, planes, lam * channels, **given,
                                            front_end=front_end)
            chosen_at, choices_at = lam, scaled(_Choices(lv, clv, m, clog))
            lam, est = _secant_log(estimate(choices_at, 1.0), lam, goal_bits, 0.5,
                                   RATE_TOLERANCE / 3, MAX_ESTIMATES)
            if abs(math.log2(lam / chosen_at)) <= 0.5:
                break
        # every real file takes the estimate's choices, so that only the ratio of real to
        # plain bits (tonal optimisation, loop filter), measured on the file before, can
        # move it off the target
        choices = choices_at(lam)
        if abs(est / goal_bits - 1.0) > RATE_TOLERANCE / 3:
            # the target lies in the jump of a level count (the bits jump by 10-15 % where
            # the scaled step rounds to another count): keep the closest side's counts
            # and move the mask alone, in finer steps
            lam_f, est_f = _secant_log(
                estimate(lambda x, held=choices: held, ratio, {"levels_held": True}),
                lam, goal_bits, 0.5, RATE_TOLERANCE / 3, MAX_ESTIMATES // 2)
            if abs(est_f / goal_bits - 1.0) < abs(est / goal_bits - 1.0):
                lam = lam_f
        # the lossless file does not fit (checked above): lossy files only.  A file that
        # cannot land (too large before its loop filter and guide) is left unfinished
        # while another may follow: the first, made without a ratio, mostly is
        last_try = len(files) == MAX_FULL_ENCODES - 1
        out = encode_lambda(img, planes, lam, **choices, lossless=False,
                            warm=files[-1] if files else None,
                            unwanted_above=None if last_try
                            else goal_bits * (1.0 + RATE_TOLERANCE), **kwargs)
        files.append(out)
        bits = 8.0 * len(out.data)
        log.append({"lambda": lam, "bpp": bits / n, "full": True, "finished": out.finished})
        if out.finished and abs(bits / goal_bits - 1.0) <= RATE_TOLERANCE:
            break
    def miss(data):
        return abs(8.0 * len(data) / goal_bits - 1.0)

    finished = [f for f in files if f.finished]
    best = min(finished, key=lambda f: miss(f.data))
    if miss(best.data) > RATE_TOLERANCE:
        # each file's loop filter and chroma guide are J's choices at its lam; on an image
        # of a few thousand pixels such a section is several per cent of the file, and
        # the files on either side of the target can differ by just that.  The target is
        # the user's: the nearest file without them that lands is given instead
        cands = [(f, drop, data) for f in finished
                 for drop, data in _without_optional(f.data).items()]
        near = min(cands, key=lambda c: miss(c[2]), default=None)
        if near is not None and miss(near[2]) <= RATE_TOLERANCE:
            best = _trimmed(img, *near)
            log.append({"lambda": best.lam, "bpp": 8.0 * len(best.data) / n,
                        "left_out": ", ".join(near[1])})
    reached = miss(best.data) <= RATE_TOLERANCE
    return best, log, reached


#: Real files a PSNR search makes at most; it stops early once a file reaches the target
#: within PSNR_CLOSE_DB, or once the lam that reaches it and the one that misses lie
#: within a tenth of an octave.
MAX_PSNR_ENCODES = 6
PSNR_CLOSE_DB = 0.15


def _psnr_of(sse_per_sample: float) -> float:
    return math.inf if sse_per_sample <= 0 else 10.0 * math.log10(255.0 ** 2 / sse_per_sample)


def search_lambda_for_psnr(img, planes, target: float, *, lam0: float = LAMBDA_AT_50,
                           **kwargs):
    """The smallest file found whose decoding reaches ``target`` dB, by a search over
    ``lam`` (in log2): after each real file, cheap estimates (the plain file's PSNR at
    a ``lam``, with the nearest real file's choices and quantiser steps scaled, plus that
    file's measured gain over its plain file: tonal optimisation, loop filter, chroma
    guide) propose the next ``lam`` by secant steps, kept inside the bracket of the real
    files that reach the target and that miss it (0.2-0.8 of it), or at most 3 octaves
    beyond the nearest file while there is none.  Returns (file, log, reached): the
    smallest file found that reaches the target (the lossless one, every pixel exact,
    where ``lam`` becomes small enough for J to choose it)."""
    n = img.shape[0] * img.shape[1]
    channels = planes.shape[2]
    given = {"levels": kwargs.pop("levels", None),
             "chroma_levels": kwargs.pop("chroma_levels", None)}
    log, files, x = [], [], math.log2(lam0)
    hit, miss = {}, {}  # log2 lam -> real file
    for _ in range(MAX_PSNR_ENCODES):
        near = min((f for f in files if not f.lossless and f.lam > 0),
                   key=lambda f: abs(math.log2(f.lam) - x), default=None)
        out = encode_lambda(img, planes, 2.0 ** x, **given, plain_error=True, warm=near,
                            **kwargs)
        out.psnr = math.inf if out.lossless else _psnr(out.decoded, img)
        files.append(out)
        log.append({"lambda": 2.0 ** x, "bpp": 8.0 * len(out.data) / n, "psnr": out.psnr,
                    "full": True})
        (hit if out.psnr >= target else miss)[x] = out
        if out.psnr >= target and (out.lossless or out.psnr - target <= PSNR_CLOSE_DB):
            break
        xh = max(hit) if hit else None  # the largest lam that reaches it
        above = [m for m in miss if xh is None or m > xh]
        xm = min(above) if above and xh is not None else None
        if xh is not None and xm is not None and xm - xh < 0.1:
            break
        gain = out.psnr - _psnr_of(out.plain_sse / n)

        def estimate(y, near=out, gain=gain):
            keep = _levels_at(near, y, channels)
            keep.update({key: v for key, v in given.items() if v is not None})
            *_, pl = choose(img, planes, y * channels, plain_error=True,
                            front_end=kwargs.get("front_end", "error"), **keep)
            p = _psnr_of(pl[-1]["plain_sse"] / n) + gain
            log.append({"lambda": y, "psnr_estimate": p})
            return 10.0 ** (p / 10.0)  # falls with lam like lam^-slope

        if not np.isfinite(gain):
            y = x - 1.0
        else:
            lam_est, _ = _secant_log(estimate, 2.0 ** x, 10.0 ** (target / 10.0), 0.3,
                                     10.0 ** (0.5 * PSNR_CLOSE_DB / 10.0) - 1.0,
                                     MAX_ESTIMATES // 2)
            y = math.log2(lam_est)
        if xh is not None and xm is not None:  # inside the bracket
            y = xh + (xm - xh) * float(np.clip((y - xh) / (xm - xh), 0.2, 0.8))
        elif xh is None:  # everything misses: a smaller lam, 1 to 3 octaves
            lo = min(miss)
            y = lo - float(np.clip(lo - y, 1.0, 3.0))
        else:  # everything reaches it: a larger lam, 1/2 to 3 octaves
            y = xh + float(np.clip(y - xh, 0.5, 3.0))
        x = y
    hits = [f for f in files if f.psnr >= target]
    if hits:
        return min(hits, key=lambda f: len(f.data)), log, True
    # no lossy file found reaches it: the lossless file does (the caller says so)
    out = _lossless(img)
    log.append({"lambda": 0.0, "bpp": out.plain_bits / n, "psnr": math.inf, "full": True})
    return out, log, False
