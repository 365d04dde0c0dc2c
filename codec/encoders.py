"""The mask encoders' interface: what each returns, and the registry that names them.

Every encoder (``belhachmi``, ``random``, ``ps``, ``ps+nlpe``, ``learned``, ...) is one
:class:`MaskEncoder` registered once with :func:`register`, by the module that defines
it; the pipeline, the rate search, the command line and ``inpcodec bench`` read the
registry (:func:`get_encoder`, :func:`encoder_names`).  An encoder is a function

    make(luma, knob, *, levels, seed, progress, **options) -> MaskResult

of the grey (luma) image in [0, 255], the *knob* the rate search turns (for the free-mask
encoders the density: a larger knob always means more points), the luma quantisation
levels of the file (for encoders that weigh bits; the others ignore them), a seed, and a
progress flag.  Registering imports no torch: the learned encoder imports its network
when it first runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Id of the free-mask coder (:mod:`inpcodec.bitstreams.mask_coder`) in the file header.
FREE_MASK_CODER = 1
#: Id of the split-tree coder (:mod:`inpcodec.bitstreams.tree_coder`; format version 2).
TREE_MASK_CODER = 2


@dataclass
class MaskResult:
    """A binary inpainting mask and what it cost to find.

    Attributes
    ----------
    mask : ndarray of bool, shape (H, W)
        True at the pixels to store.
    inpaintings : int
        Number of inpainting solves spent (0 for analytic methods).
    seconds : float
        Wall time of the mask generation.
    info : dict
        Method-specific details (parameters, intermediate figures).
    coder : int
        Id of the mask coder that stores this mask in a file.
    structure : object, optional
        What that coder stores when it is not the mask itself (a tree mask's split tree).
    """

    mask: np.ndarray
    inpaintings: int
    seconds: float
    info: dict = field(default_factory=dict)
    coder: int = FREE_MASK_CODER
    structure: object = None

    @property
    def density(self) -> float:
        return float(self.mask.mean())


def check_image(image, name: str = "image") -> np.ndarray:
    """A finite, non-empty 2-D grey image as float64."""
    a = np.asarray(image)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer)
                               or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grey image, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def target_count(shape, density: float) -> int:
    """Number of mask pixels for a density in (0, 1]; at least one."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    return max(1, int(round(density * shape[0] * shape[1])))


@dataclass(frozen=True)
class MaskEncoder:
    """A registered mask encoder.

    Attributes
    ----------
    name : str
        The name users pick it by (``--encoder NAME``).
    make : callable
        ``make(luma, knob, *, levels, seed, progress, **options) -> MaskResult``.
    summary : str
        One line for ``--help`` and listings.
    knob : str
        What the rate search turns (``"density"``: the fraction of pixels stored).
    cheap : bool
        Cheap enough for the rate search to call many times (no inpainting, or few);
        an expensive encoder runs only at the knobs the search predicts.
    options : tuple of str
        Names of the keyword options ``make`` (and ``refine``) accept beyond the common ones.
    search_with : str, optional
        A cheaper registered encoder whose knob search stands in for this one's (its
        mask is then passed to ``refine``, once).
    refine : callable, optional
        ``refine(luma, mask, *, seed, progress, **options) -> MaskResult``: the step that
        turns ``search_with``'s mask into this encoder's (NLPE after PS).
    """

    name: str
    make: Callable[..., MaskResult]
    summary: str
    knob: str = "density"
    cheap: bool = True
    options: tuple = ()
    search_with: str | None = None
    refine: Callable[..., MaskResult] | None = None


_REGISTRY: dict[str, MaskEncoder] = {}
#: Functions that empty an encoder module's per-image cache (:func:`clear_caches`).
_CACHE_CLEARERS: list = []


def register(encoder: MaskEncoder) -> MaskEncoder:
    """Add ``encoder`` to the registry (each name once)."""
    if encoder.name in _REGISTRY:
        raise ValueError(f"mask encoder {encoder.name!r} is registered already")
    if encoder.search_with is not None and encoder.refine is None:
        raise ValueError(f"mask encoder {encoder.name!r}: search_with needs refine")
    _REGISTRY[encoder.name] = encoder
    return encoder


def register_cache(clear) -> None:
    """Register ``clear()``, which empties an encoder module's per-image cache.

    Encoders whose work does not depend on the knob (a tree's split order) keep it for the
    last few images, so that the rate search's many knobs cost one computation.
    """
    _CACHE_CLEARERS.append(clear)


def clear_caches() -> None:
    """Empty every encoder's per-image cache, so that the next mask is made from scratch
    (what a timing of mask generation must measure)."""
    for clear in _CACHE_CLEARERS:
        clear()


def encoder_names() -> tuple:
    """The registered encoders' names, in the order of registration."""
    return tuple(_REGISTRY)


def get_encoder(name: str) -> MaskEncoder:
    """The registered encoder called ``name``; ValueError naming the choices otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; choose one of "
                         f"{', '.join(_REGISTRY)}") from None


def check_options(encoder: MaskEncoder, options: dict) -> dict:
    """``options`` without the unset (None) ones; ValueError for one the encoder lacks."""
    given = {k: v for k, v in options.items() if v is not None}
    for k in given:
        if k not in encoder.options:
            accepted = ", ".join(encoder.options) or "none"
            raise ValueError(f"option {k!r} does not apply to encoder {encoder.name!r} "
                             f"(its options: {accepted})")
    return given


def make_mask(name: str, luma, knob: float, *, levels: int | None = None, seed: int = 0,
              progress: bool = False, **options) -> MaskResult:
    """Mask of a grey image by the named encoder at ``knob`` (its result, with the cost).

    For an encoder with ``search_with`` this runs that encoder and then ``refine``.
    """
    enc = get_encoder(name)
    opts = check_options(enc, options)
    if enc.search_with is None:
        return enc.make(luma, knob, levels=levels, seed=seed, progress=progress, **opts)
    first = get_encoder(enc.search_with)
    res = first.make(luma, knob, levels=levels, seed=seed, progress=progress,
                     **{k: v for k, v in opts.items() if k in first.options})
    return refine_mask(enc, luma, res, seed=seed, progress=progress, **opts)


def refine_mask(encoder: MaskEncoder, luma, found: MaskResult, *, seed: int = 0,
                progress: bool = False, **options) -> MaskResult:
    """``encoder.refine`` applied to ``found`` (a ``search_with`` mask); costs add up."""
    res = encoder.refine(luma, found.mask, seed=seed, progress=progress, **options)
    return MaskResult(res.mask, found.inpaintings + res.inpaintings,
                      found.seconds + res.seconds, {**found.info, **res.info}, res.coder,
                      res.structure)
