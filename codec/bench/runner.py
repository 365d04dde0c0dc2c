"""Running benchmark jobs on a Dask cluster (local processes by default), resumably.

Each finished job is written to ``OUT/jobs/<job path>`` (atomically) and skipped when the
folder already holds it, so a long run can be stopped and started again.  The rows do not
depend on where a job ran: every job is seeded and the decoder is deterministic.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from inpcodec.codec.cluster import dask_client


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".job-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_rows(out: Path, jobs) -> list[dict]:
    rows = []
    for job in jobs:
        p = out / "jobs" / job.path
        if p.exists():
            rows.append(json.loads(p.read_text()))
    return rows


def run_jobs(jobs, images: dict, fn, out: Path, *, scheduler: str | None = None,
             workers: int | None = None, seed: int = 0, progress: bool = True) -> list[dict]:
    """Run ``fn(job, images[job.image], seed)`` for every job not yet in ``out``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers need
        inpcodec installed.  Without it, a local cluster of ``workers`` processes (default:
        one per core) is started and stopped.
    Returns the rows of all ``jobs`` (finished earlier or now), in the order of ``jobs``.
    """
    from dask.distributed import as_completed  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    out = Path(out)
    todo = [j for j in jobs if not (out / "jobs" / j.path).exists()]
    if todo:
        with dask_client(scheduler, workers) as client:
            # Send each image once; jobs refer to it.
            needed = sorted({j.image for j in todo})
            handles = {k: client.scatter(images[k], broadcast=False) for k in needed}
            futures = {client.submit(fn, j, handles[j.image], seed, pure=False): j
                       for j in todo}
            bar = tqdm(total=len(futures), desc="bench", unit="job", disable=not progress)
            for fut in as_completed(futures):
                job = futures[fut]
                _write_json(out / "jobs" / job.path, fut.result())
                bar.update()
            bar.close()
    return load_rows(out, jobs)


def load_all(out: Path, sub: str) -> list[dict]:
    """Every job row stored under ``out/jobs/sub`` (sorted by path, so runs agree)."""
    base = Path(out) / "jobs" / sub
    return [json.loads(p.read_text()) for p in sorted(base.rglob("*.json"))] \
        if base.is_dir() else []
