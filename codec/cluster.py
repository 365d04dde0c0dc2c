"""A Dask client for jobs that run one per process: the bench's and the batches'.

Either the scheduler at an address (``tcp://host:8786``; its workers need inpcodec
installed) or a local cluster of processes, one thread each, started and stopped here.
"""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """The client of ``scheduler``, or of a local cluster of ``workers`` processes (default:
    one per core), closed on exit."""
    try:
        import dask  # noqa: PLC0415
        from dask.distributed import Client, LocalCluster  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(f"running jobs on Dask needs the bench extra ({exc.name} is "
                           "missing): pip install 'inpcodec[bench]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        n = workers or os.cpu_count() or 1
        # Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off
        # glibc's adaptive mmap threshold: every temporary array of the solvers was then
        # mapped and unmapped again, and the workers spent 30 % of their time in the
        # kernel (measured).  glibc's own ceilings keep large arrays on the heap.
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {
                **dask.config.get("distributed.nanny.pre-spawn-environ"),
                "MALLOC_TRIM_THRESHOLD_": 64 * 2**20,
                "MALLOC_MMAP_THRESHOLD_": 32 * 2**20}}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
