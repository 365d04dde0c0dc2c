"""One benchmark job: an image, a codec and a target rate (or, for the speed study, an
encoder and a mask density); each returns a JSON-able row measured on real files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from inpcodec.codec import postprocess as _postprocess  # noqa: F401 (registers "gan")
from inpcodec.codec.encoders import clear_caches, encoder_names, make_mask
from inpcodec.codec.limits import CodecError
from inpcodec.codec.metrics import luma, quality
from inpcodec.codec.pipeline import decode, encode_report

from .refcodecs import REFERENCE_CODECS, encode_at_rate, pillow_decode, pillow_encode

#: Fields that are measurements of time: they differ from run to run, nothing else does.
TIMING_FIELDS = ("encode_seconds", "decode_seconds", "seconds", "speedup_over_ps+nlpe")


class CodecSpec(NamedTuple):
    """What a codec name of the suite means."""

    kind: str  # "reference" (through Pillow) or "inpcodec"
    encoder: str  # the Pillow codec or the inpcodec mask encoder
    tonal: bool  # inpcodec: tonal optimisation of the stored values
    postprocess: str  # inpcodec: the decoder's post-processor, "none" or "gan"
    effort: str = "best"  # inpcodec: the rate search's effort (codec.rate.EFFORTS)
    loop_filter: bool = True  # inpcodec: files may carry a loop filter (section FILT)


#: Suffixes of the inpcodec encoders, in this order: ``tree-fast-notonal-nofilter-gan``.
#: ``-lambda``: the Lagrangian encoder (the default's, ``tree-rdo-lambda``: a search over
#: lambda for the rate); ``-fast``: the rate search's fast effort (the default before
#: it); neither: effort ``best`` (as every row recorded before the fast effort existed);
#: ``-nofilter`` writes files without the loop filter (as every row recorded before
#: section FILT).
INPCODEC_SUFFIXES = ("lambda", "fast", "notonal", "nofilter", "gan")


def parse_codec(name: str) -> CodecSpec:
    """The :class:`CodecSpec` of a codec name, e.g. ``jpeg``, ``learned``, ``ps-notonal``,
    ``belhachmi-gan`` (decoded with the GAN post-processor), ``tree-fast`` (the rate
    search's fast effort)."""
    if name in REFERENCE_CODECS:
        return CodecSpec("reference", name, False, "none", "best", False)
    # encoder names may hold dashes themselves (tree-map): peel known suffixes off the end
    enc, suffixes = name, []
    while enc.rsplit("-", 1)[-1] in INPCODEC_SUFFIXES and "-" in enc:
        enc, suffix = enc.rsplit("-", 1)
        suffixes.insert(0, suffix)
    ordered = [s for s in INPCODEC_SUFFIXES if s in suffixes]
    if enc not in encoder_names() or suffixes != ordered:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(REFERENCE_CODECS)}, "
                         f"{', '.join(encoder_names())} (inpcodec encoders take -lambda for "
                         "the Lagrangian encoder, -fast for the fast rate search, -notonal "
                         "for no tonal optimisation, -nofilter for no loop filter and -gan "
                         "for the GAN post-processor, in that order)")
    return CodecSpec("inpcodec", enc, "notonal" not in suffixes,
                     "gan" if "gan" in suffixes else "none",
                     "lagrangian" if "lambda" in suffixes else
                     "fast" if "fast" in suffixes else "best", "nofilter" not in suffixes)


@dataclass(frozen=True)
class RateJob:
    image: str
    mode: str  # "grey" or "colour"
    codec: str
    target: float  # bits per pixel

    @property
    def path(self) -> str:
        return f"{self.mode}/{self.image}/{self.codec}@{self.target:g}.json"


@dataclass(frozen=True)
class SpeedJob:
    image: str
    encoder: str
    density: float

    @property
    def path(self) -> str:
        return f"speed/{self.image}/{self.encoder}@{self.density:g}.json"


def _single_thread():
    # Jobs run one per core; nested threads would only fight over the cores.
    import numba  # noqa: PLC0415

    numba.set_num_threads(1)
    try:
        import torch  # noqa: PLC0415
    except ImportError:  # the light install: no learned codec runs here
        return
    torch.set_num_threads(1)


def run_rate_job(job: RateJob, img: np.ndarray, seed: int = 0) -> dict:
    """Encode ``img`` at ``job.target`` bpp with ``job.codec``, decode, measure."""
    _single_thread()
    kind, enc, tonal, postprocess, effort, loop_filter = parse_codec(job.codec)
    n = img.shape[0] * img.shape[1]
    row = {"image": job.image, "mode": job.mode, "codec": job.codec,
           "target_bpp": job.target, "width": img.shape[1], "height": img.shape[0]}
    try:
        if kind == "reference":
            data, param = encode_at_rate(img, enc, job.target)
            # Time the one encode at the chosen quality (the search is ours, not the codec's).
            t0 = time.perf_counter()
            pillow_encode(img, enc, param)
            t1 = time.perf_counter()
            dec = pillow_decode(data, img.ndim == 2)
            t2 = time.perf_counter()
            row.update(parameter=param)
        else:
            t0 = time.perf_counter()
            rep = encode_report(img, encoder=enc, bpp=job.target, tonal=tonal, seed=seed,
                                effort=effort, loop_filter=loop_filter)
            t1 = time.perf_counter()
            data = rep.data
            dec = decode(data, postprocess=postprocess, max_pixels=None)
            t2 = time.perf_counter()
            row.update(parameter=rep.density, levels=rep.levels)
    except CodecError as exc:
        row.update(error=str(exc))
        return row
    row.update(bytes=len(data), bpp=8.0 * len(data) / n, **quality(dec, img),
               encode_seconds=t1 - t0, decode_seconds=t2 - t1)
    return row


def run_speed_job(job: SpeedJob, img: np.ndarray, seed: int = 0) -> dict:
    """Time the mask generation of one encoder on the luma of ``img``."""
    _single_thread()
    f = luma(img)
    make_mask(job.encoder, f[:32, :32], 0.1, seed=seed)  # compile / load outside the timing
    clear_caches()  # a tree's order, kept for the rate search, would be reused across jobs
    t0 = time.perf_counter()
    res = make_mask(job.encoder, f, job.density, seed=seed)
    seconds = time.perf_counter() - t0
    return {"image": job.image, "encoder": job.encoder, "density": job.density,
            "points": int(res.mask.sum()), "inpaintings": int(res.inpaintings),
            "seconds": seconds}
