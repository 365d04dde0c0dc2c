"""Log-log plot of encode seconds against megapixels: inpcodec and Pillow's codecs.

    python benchmarks/plot_speed_scaling.py LOG... --out benchmarks/results/speed_scaling

Each LOG is the output of one measurement of ``speed.sh IMAGE --bpp 0.1 --threads 1``
(RESULTS.md, "Speed and memory at the sizes people have"): a line ``inpcodec_wall S s
peak_rss K KB``, a line ``file B bytes = R bpp, M MP``, the AVIF line and one line per
other Pillow codec.  Writes ``speed.csv`` and ``encode_seconds.png``.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def parse(text: str) -> list[dict]:
    rows = []
    for block in re.split(r"(?=inpcodec_wall)", text):
        m = re.search(r"inpcodec_wall ([\d.]+) s peak_rss (\d+) KB", block)
        mp = re.search(r"bpp, ([\d.]+) MP", block)
        if not (m and mp):
            continue
        row = {"megapixels": float(mp.group(1)), "inpcodec": float(m.group(1)),
               "inpcodec_peak_gb": int(m.group(2)) / 2**20}
        av = re.search(r"avif quality \d+ \d+ bytes, ([\d.]+) s", block)
        row["avif"] = float(av.group(1)) if av else None
        for codec in ("jpeg", "jpeg2000", "webp", "jpegxl"):
            c = re.search(rf"^{codec} ([\d.]+) s", block, flags=re.M)
            row[codec] = float(c.group(1)) if c else None
        rows.append(row)
    return sorted(rows, key=lambda r: r["megapixels"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rows = [r for p in a.logs for r in parse(p.read_text())]
    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / "speed.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for codec in ("inpcodec", "avif", "jpeg2000", "webp", "jpegxl", "jpeg"):
        pts = [(r["megapixels"], r[codec]) for r in rows if r[codec]]
        if pts:
            ax.loglog(*zip(*pts, strict=True), marker="o", label=codec)
    ax.set_xlabel("megapixels")
    ax.set_ylabel("encode seconds (one thread for inpcodec)")
    ax.set_title("Encode: inpcodec at 0.1 bpp, AVIF at its size, others at quality 50",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out / "encode_seconds.png", dpi=110)
    print(f"{len(rows)} sizes -> {a.out}")


if __name__ == "__main__":
    main()
