"""Budgets and progress bars of the long searches (mask encoders, tonal optimisation)."""

from __future__ import annotations

import time

from tqdm.auto import tqdm


class Budget:
    """Stops a long search after a wall time or a number of inpaintings, whichever first.

    Parameters
    ----------
    max_seconds : float, optional
    max_inpaintings : int, optional
        ``None`` means no limit.
    """

    def __init__(self, max_seconds: float | None = None, max_inpaintings: int | None = None):
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        if max_inpaintings is not None and max_inpaintings < 1:
            raise ValueError(f"max_inpaintings must be at least 1, got {max_inpaintings}")
        self._clock = time.perf_counter
        self.start = self._clock()
        self.max_seconds = max_seconds
        self.max_inpaintings = max_inpaintings
        self.inpaintings = 0

    def spend(self, n: int = 1) -> None:
        self.inpaintings += n

    @property
    def seconds(self) -> float:
        return self._clock() - self.start

    def exhausted(self) -> bool:
        if self.max_inpaintings is not None and self.inpaintings >= self.max_inpaintings:
            return True
        return self.max_seconds is not None and self.seconds >= self.max_seconds


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar when ``enabled`` (the CLI), a silent stand-in otherwise."""
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, unit="step")


#: tqdm's default bar with the counts rounded (they are fractional: windows' solves).
_BAR_FORMAT = "{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}, {rate_fmt}]"


class SolveBar:
    """One bar for a whole encode, counting its solves against a total known at the start
    (the caller's cost model), in solves of the whole image of ``pixels`` pixels (a
    window's solve counts by its share); where the work runs past the total, the total
    follows the count, so the bar never runs over."""

    def __init__(self, total: float, enabled: bool, desc: str = "encode",
                 pixels: int | None = None):
        self.n, self.total, self.pixels = 0.0, max(float(total), 1.0), pixels
        self.bar = tqdm(total=self.total, desc=desc, disable=not enabled, leave=False,
                        unit="solve", bar_format=_BAR_FORMAT)

    def __call__(self, pixels: int | None = None):  # one solve done
        step = 1.0 if pixels is None or not self.pixels else pixels / self.pixels
        self.n += step
        if self.n > self.total:
            self.total = self.bar.total = self.n
            self.bar.refresh()
        self.bar.update(step)

    def close(self):
        self.bar.close()
