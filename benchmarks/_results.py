"""Writing a benchmark's section of benchmarks/RESULTS.md (between marker comments), and
the default encoder's files that several benchmarks study."""

from __future__ import annotations

import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(mark: str, title: str, text: str) -> None:
    """Replace the block of ``mark`` in RESULTS.md, or append it under ``title``."""
    body = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    begin, end = f"<!-- {mark}:begin -->", f"<!-- {mark}:end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in body:
        head, rest = body.split(begin, 1)
        body = head + block + rest.split(end, 1)[1]
    else:
        body = body.rstrip() + f"\n\n{title}\n\n{block}\n"
    RESULTS.write_text(body)


def command_line() -> str:
    """The command that ran this benchmark, as RESULTS.md quotes it (``--write-results``
    left out): ``python benchmarks/<script> <arguments>``."""
    args = [a for a in sys.argv[1:] if a != "--write-results"]
    return " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *args])


def default_file(folder: Path, stem: str, bpp: float, img) -> bytes:
    """The default encoder's file of ``img`` at ``bpp``: ``<folder>/<stem>_<bpp>.inpc``,
    encoded and written there first when missing (the files are slow to make, and the
    studies that read them run many times)."""
    from inpcodec.codec.pipeline import encode  # noqa: PLC0415 (heavy; not for write_section)

    f = Path(folder) / f"{stem}_{bpp:g}.inpc"
    if not f.exists():
        f.write_bytes(encode(img, bpp=bpp))
    return f.read_bytes()
