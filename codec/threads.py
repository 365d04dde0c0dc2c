"""How many threads the Numba kernels use (``--threads``, ``threads=``).

Numba runs its parallel kernels on OpenMP (libgomp) here, whose idle threads spin before
they sleep.  With every core busy, a spinning thread holds the core its partner needs,
and each of the many small parallel regions of a multigrid V-cycle waits for a
descheduled thread: measured on 2 cores, two 768 x 512 decodes started together took
1.96-2.03 s each with 2 threads against 0.24-0.26 s with one (benchmarks/RESULTS.md,
"Threads").  The default is therefore one thread per process: it never loses much alone
(one thread 0.26 s against 0.18 s with two, a quiet machine) and never collapses on a busy
one; ``threads=N`` (or ``--threads N``) asks for more.  The arithmetic, and so every file
and every decoded pixel, is the same for any thread count.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

DEFAULT_THREADS = 1


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


def check_threads(threads) -> int:
    """``threads`` as a count for Numba: None gives :data:`DEFAULT_THREADS`, 0 every core
    this process may use."""
    from .limits import CodecError  # noqa: PLC0415

    if threads is None:
        return DEFAULT_THREADS
    try:
        n = int(threads)
    except (TypeError, ValueError):
        raise CodecError(f"threads must be a whole number, got {threads!r}") from None
    if n < 0:
        raise CodecError(f"threads must be 0 (every core) or more, got {threads}")
    import numba  # noqa: PLC0415

    return min(n or available_cores(), numba.config.NUMBA_NUM_THREADS)


@contextmanager
def solver_threads(threads):
    """Run the body with the Numba kernels on ``threads`` threads (see the module)."""
    import numba  # noqa: PLC0415

    n = check_threads(threads)
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(before)
