"""The rate-distortion and encoder-speed benchmark behind ``inpcodec bench``.

    rows = run_rate_benchmark(images, out="bench-out", codecs=["jpeg", "belhachmi"])

Every (image, codec, target rate) is one job, run on a Dask cluster (local processes by
default) and stored in ``out/jobs/`` so that runs resume; the reports are CSV per image,
one CompressAI-layout JSON per codec, RD plots, Bjontegaard deltas against JPEG and JPEG
2000, and a Markdown summary.  Needs the ``bench`` extra (dask, matplotlib,
pytorch-msssim, bjontegaard).
"""

from __future__ import annotations

from pathlib import Path

from inpcodec.codec.encoders import encoder_names

from .jobs import (
    TIMING_FIELDS,
    RateJob,
    SpeedJob,
    parse_codec,
    run_rate_job,
    run_speed_job,
)
from .refcodecs import REFERENCE_CODECS, encode_at_rate
from .report import write_rate_results, write_speed_results
from .runner import load_all, run_jobs

DEFAULT_CODECS = ("jpeg", "jpeg2000", "webp", "avif", "jpegxl", "tree-rdo-fast", "belhachmi",
                  "learned")
DEFAULT_BPP = (0.05, 0.1, 0.2, 0.3, 0.5)
DEFAULT_DENSITIES = (0.02, 0.03, 0.04, 0.05, 0.07, 0.1)

__all__ = [
    "DEFAULT_BPP",
    "DEFAULT_CODECS",
    "DEFAULT_DENSITIES",
    "DEFAULT_SPEED_ENCODERS",
    "REFERENCE_CODECS",
    "TIMING_FIELDS",
    "encode_at_rate",
    "run_rate_benchmark",
    "run_speed_benchmark",
]


def run_rate_benchmark(images: dict, out, *, codecs=DEFAULT_CODECS, bpp=DEFAULT_BPP,
                       mode: str = "colour", scheduler: str | None = None,
                       workers: int | None = None, seed: int = 0,
                       progress: bool = True) -> str:
    """Rate-distortion benchmark of ``images`` (name -> uint8 array); returns the summary.

    ``mode`` names the result folder (``grey`` or ``colour``); the arrays must match it.
    """
    specs = [parse_codec(c) for c in codecs]
    if any(s.postprocess == "gan" for s in specs):
        from inpcodec.codec.postprocess.inference import (  # noqa: PLC0415 (imports torch)
            FILTERED_POSTPROCESS_WEIGHTS,
            POSTPROCESS_WEIGHTS,
            load_generator,
        )

        try:  # here, not in every job: missing weights stop the run before it starts; every
            # mask coder's (a tree encoder past its densest tree writes a free-mask file),
            # for files with and without a loop filter
            for coder in POSTPROCESS_WEIGHTS:
                load_generator(task="postprocess", mask_coder=coder)
            for coder in FILTERED_POSTPROCESS_WEIGHTS:
                load_generator(task="postprocess", mask_coder=coder, filtered=True)
        except (OSError, ValueError) as exc:
            raise ValueError(f"codecs with -gan: {exc}") from None
    jobs = [RateJob(name, mode, c, float(t)) for name in sorted(images) for c in codecs
            for t in bpp]
    run_jobs(jobs, images, run_rate_job, Path(out), scheduler=scheduler,
             workers=workers, seed=seed, progress=progress)
    # The report covers every job of this mode in the folder (earlier runs on other images
    # or codecs included), so subsets run separately add up.
    return write_rate_results(load_all(Path(out), mode), Path(out), mode)


#: Encoders of the speed study by default: the reference (PS+NLPE) and the fast ones.
DEFAULT_SPEED_ENCODERS = ("learned", "belhachmi", "ps", "ps+nlpe")


def run_speed_benchmark(images: dict, out, *, encoders=DEFAULT_SPEED_ENCODERS,
                        densities=DEFAULT_DENSITIES, scheduler: str | None = None,
                        workers: int | None = 1, seed: int = 0, progress: bool = True) -> str:
    """Mask-generation time and inpaintings per encoder and density; returns the summary.

    One worker by default, so that the timings do not compete for the cores.
    """
    for e in encoders:
        if e not in encoder_names():
            raise ValueError(f"unknown encoder {e!r}; choose from "
                             f"{', '.join(encoder_names())}")
    jobs = [SpeedJob(name, e, float(d)) for name in sorted(images) for e in encoders
            for d in densities]
    run_jobs(jobs, images, run_speed_job, Path(out), scheduler=scheduler, workers=workers,
             seed=seed, progress=progress)
    return write_speed_results(load_all(Path(out), "speed"), Path(out))
