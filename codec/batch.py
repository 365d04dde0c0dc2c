"""Batches: many files encoded or decoded into a folder, one job per file.

``inpcodec encode IN... --out-dir DIR`` and ``inpcodec decode IN... --out-dir DIR``:

* the inputs are files, folders (their images, or their ``.inpc`` files for decode; not
  recursive) and glob patterns the shell did not expand;
* each input gives ``DIR/<its name>.inpc`` (decode: ``.png`` or ``--format``); two inputs
  that would give the same output are refused before any work;
* outputs that exist are skipped unless ``force``;
* jobs run one after the other in this process (``jobs=1``), or on ``jobs`` local
  processes through Dask, or on the workers of a Dask scheduler; with several at once
  each job's solver threads are the cores shared out between them (at least 1), so the
  cores are not oversubscribed (:func:`job_threads`);
* one file's failure does not stop the others: its row holds the error;
* every output is written atomically (a temporary file renamed when complete), so a
  failed or interrupted job leaves nothing partial.
"""

from __future__ import annotations

import glob
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from inpcodec.codec import io as iio
from inpcodec.codec import postprocess as _postprocess  # noqa: F401 (registers "gan")
from inpcodec.codec.decoder import decode as decode_bytes
from inpcodec.codec.decoder import read_metadata
from inpcodec.codec.pipeline import encode_report

#: What a decode batch reads from a folder.
FILE_SUFFIX = ".inpc"


@dataclass(frozen=True)
class BatchJob:
    """One file of a batch: ``kind`` is ``"encode"`` or ``"decode"``."""

    kind: str
    source: str
    target: str


def _expand(inputs, suffixes) -> list[str]:
    """Files named by ``inputs``: files as given, folders' files with ``suffixes`` (sorted),
    glob patterns matched; one-line errors for what names nothing."""
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).iterdir()
                           if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise ValueError(f"{item}: no {', '.join(suffixes)} files in this folder")
            files += found
        elif os.path.exists(item):
            files.append(item)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if not found:
                raise ValueError(f"{item}: the pattern matches no file")
            files += found
        else:
            raise ValueError(f"{item}: no such file")
    seen, unique = set(), []
    for f in files:  # a file named twice (by itself and by its folder) is one job
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def plan(kind: str, inputs, out_dir: str, *, fmt: str = "png") -> list[BatchJob]:
    """The jobs of a batch (see the module); refuses a missing output folder and two
    inputs that would write one output."""
    if kind not in ("encode", "decode"):
        raise ValueError(f"unknown batch kind {kind!r}")
    if not os.path.isdir(out_dir):
        raise ValueError(f"{out_dir}: output folder does not exist")
    suffixes = iio.IMAGE_SUFFIXES if kind == "encode" else (FILE_SUFFIX,)
    ext = FILE_SUFFIX if kind == "encode" else "." + fmt.lower().lstrip(".")
    if kind == "decode":
        iio.image_format("x" + ext)  # refuses an unknown format now, not per file
    jobs, by_target = [], {}
    for src in _expand(inputs, suffixes):
        target = os.path.join(out_dir, Path(src).stem + ext)
        if target in by_target:
            raise ValueError(f"{by_target[target]} and {src} would both be written to "
                             f"{target}")
        if os.path.realpath(target) == os.path.realpath(src):
            raise ValueError(f"{target}: is the input file {src}; choose another --out-dir")
        by_target[target] = src
        jobs.append(BatchJob(kind, src, target))
    return jobs


def run_job(job: BatchJob, options: dict, threads: int | None, stop=None) -> dict:
    """Encode or decode one file (``options``: :func:`encode_report`'s or
    :func:`decode`'s keywords); returns its row, with ``error`` where it failed.
    ``stop()`` true just before the output is written raises KeyboardInterrupt instead
    (an interrupt that was swallowed on the way: nothing is written)."""

    def write(data):
        if stop is not None and stop():
            raise KeyboardInterrupt
        iio.write_atomic(job.target, data)

    row = {"source": job.source, "target": job.target, "error": None, "notes": []}
    t0 = time.perf_counter()
    try:
        if job.kind == "encode":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", iio.PrecisionWarning)
                img, metadata = iio.load_image(
                    job.source, drop_alpha=options.get("drop_alpha", False),
                    with_metadata=True)
            row["notes"] += [str(w.message) for w in caught
                             if issubclass(w.category, iio.PrecisionWarning)]
            opts = {k: v for k, v in options.items() if k not in ("drop_alpha", "strip")}
            r = encode_report(img, threads=threads, progress=False,
                              metadata=None if options.get("strip") else metadata, **opts)
            write(r.data)
            if r.note:
                row["notes"].append(r.note)
            row.update(bytes=len(r.data), input_bytes=os.path.getsize(job.source),
                       bpp=r.bpp, psnr=r.psnr)
        else:
            data = iio.read_bytes(job.source)
            fmt = iio.image_format(job.target)
            opts = {k: v for k, v in options.items() if k != "strip"}
            img = decode_bytes(data, threads=threads, **opts)
            metadata = {} if options.get("strip") else read_metadata(data)
            write(iio.image_bytes(img, fmt, metadata))
            lost = iio.dropped_metadata(fmt, metadata)
            if lost:
                row["notes"].append(f"{fmt} cannot carry the {', '.join(lost)}; "
                                    "written without")
            row.update(bytes=os.path.getsize(job.target), input_bytes=len(data))
    except (ValueError, RuntimeError, OSError, MemoryError) as exc:
        text = str(exc).strip()
        row["error"] = text.splitlines()[0] if text else type(exc).__name__
    row["seconds"] = time.perf_counter() - t0
    return row


def _input_size(job: BatchJob) -> int:
    """A job's size for the order of a parallel batch: its input's bytes (a compressed
    image's grow with its pixels and its detail, as the encoder's work does)."""
    try:
        return os.path.getsize(job.source)
    except OSError:  # gone since the plan: its job reports it
        return 0


def job_threads(jobs: int, threads: int | None, cores: int | None = None) -> int | None:
    """Solver threads of each job: ``threads`` where given; for one job at a time the
    command's default (None: one thread, which never collapses on a busy machine); for
    several, the cores shared out between them (at least 1 each)."""
    if threads is not None or jobs <= 1:
        return threads
    return max(1, (cores or os.cpu_count() or 1) // jobs)


def run_batch(batch: list[BatchJob], options: dict, *, jobs: int = 1,
              scheduler: str | None = None, threads: int | None = None,
              force: bool = False, on_row=None, stop=None) -> list[dict]:
    """Run the jobs whose target does not exist (all with ``force``); rows in the order of
    ``batch``, skipped ones as ``{"skipped": True}``.  ``on_row(row)`` is called as each
    job finishes (in finishing order).  In this process (one job at a time) ``stop()``,
    where given, is asked before each job and each write: true raises KeyboardInterrupt
    (the command line's flag of an interrupt swallowed inside a kernel's compilation).

    Several at once, the largest inputs go first: the batch then ends on small jobs, with
    less time on one core alone (the longest-first rule of scheduling)."""
    rows = {}
    todo = []
    for job in batch:
        if os.path.exists(job.target) and not force:
            rows[job] = {"source": job.source, "target": job.target, "skipped": True,
                         "error": None, "notes": []}
        else:
            todo.append(job)
    per_job = job_threads(jobs, threads)
    if scheduler is None and jobs <= 1:
        for job in todo:
            if stop is not None and stop():
                raise KeyboardInterrupt
            rows[job] = run_job(job, options, per_job, stop)
            if on_row:
                on_row(rows[job])
    elif todo:
        from dask.distributed import as_completed  # noqa: PLC0415

        from inpcodec.codec.cluster import dask_client  # noqa: PLC0415

        todo.sort(key=_input_size, reverse=True)
        with dask_client(scheduler, None if scheduler else jobs) as client:
            futures = {client.submit(run_job, job, options, per_job, pure=False): job
                       for job in todo}
            for fut in as_completed(futures):
                rows[futures[fut]] = fut.result()
                if on_row:
                    on_row(rows[futures[fut]])
    return [rows[job] for job in batch]
