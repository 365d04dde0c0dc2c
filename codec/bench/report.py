"""Turning benchmark rows into result files: CSV per image, CompressAI-style JSON per
codec, rate-distortion plots, Bjontegaard deltas, the speed study, and a Markdown summary."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from .refcodecs import REFERENCE_CODECS

RATE_FIELDS = ("image", "mode", "codec", "target_bpp", "bpp", "bytes", "psnr", "psnr_y",
               "ssim", "ms_ssim", "parameter", "levels", "encode_seconds", "decode_seconds",
               "width", "height", "error")
BD_ANCHORS = ("jpeg", "jpeg2000")


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return str(v)


def _csv(rows, fields) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow([_fmt(r.get(k)) for k in fields])
    return buf.getvalue()


def _codec_order(codecs):
    ref = [c for c in REFERENCE_CODECS if c in codecs]
    return ref + sorted(c for c in codecs if c not in REFERENCE_CODECS)


def mean_curves(rows) -> dict:
    """Per codec: the targets at which every image of that codec succeeded, with mean
    bpp, PSNR, PSNR-Y, SSIM, MS-SSIM, times; and the image count."""
    by = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by[r["codec"]][r["target_bpp"]].append(r)
    curves = {}
    for codec, per_t in by.items():
        images = sorted({r["image"] for t in per_t.values() for r in t})
        pts = []
        for t in sorted(per_t):
            rs = per_t[t]
            if len(rs) != len(images) or any("error" in r for r in rs):
                continue
            pts.append({"target_bpp": t, **{k: float(np.mean([r[k] for r in rs])) for k in
                        ("bpp", "psnr", "psnr_y", "ssim", "ms_ssim", "encode_seconds",
                         "decode_seconds")}})
        curves[codec] = {"images": images, "points": pts}
    return curves


def bd_table(rows, metric: str = "psnr") -> dict:
    """BD-rate (%) and BD-PSNR (dB) of every codec against each anchor, per image
    (piecewise cubic, the bjontegaard package), then the mean over the images where both
    curves have at least 4 points and overlap by 75 % (the package's rule); NaN where none.
    The image counts behind each mean are returned with it."""
    import bjontegaard as bd  # noqa: PLC0415

    curves = defaultdict(dict)
    for r in rows:
        if "error" not in r:
            curves[(r["codec"], r["image"])][r["target_bpp"]] = (r["bpp"], r[metric])
    codecs = _codec_order({c for c, _ in curves})
    out = {}
    for anchor in BD_ANCHORS:
        for codec in codecs:
            if codec == anchor:
                continue
            rates, dists = [], []
            for (c, img), pts in curves.items():
                if c != codec or (anchor, img) not in curves:
                    continue
                # set(): a reference codec that cannot go lower gives the same file at two
                # targets, and a curve may not repeat a point
                a = sorted(set(curves[(anchor, img)].values()))
                b = sorted(set(pts.values()))
                if len(a) < 4 or len(b) < 4:
                    continue
                args = ([p[0] for p in a], [p[1] for p in a], [p[0] for p in b],
                        [p[1] for p in b])
                for fn, acc in ((bd.bd_rate, rates), (bd.bd_psnr, dists)):
                    # The package warns (and still answers) when the curves overlap by less
                    # than 75 % of their range (PSNR range for the BD-rate, rate range for
                    # the BD-PSNR); such a figure is not reported.
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("error")
                            v = fn(*args, method="pchip", require_matching_points=False)
                    except (UserWarning, ValueError, AssertionError, ZeroDivisionError):
                        continue
                    if np.isfinite(v):
                        acc.append(float(v))
            out[(codec, anchor)] = {
                "bd_rate": float(np.mean(rates)) if rates else math.nan,
                "bd_psnr": float(np.mean(dists)) if dists else math.nan,
                "images_rate": len(rates), "images_psnr": len(dists)}
    return out


def _overlap(a, b) -> float:
    """Length of the intersection of the ranges of ``a`` and ``b`` over their union's."""
    lo, hi = max(min(a), min(b)), min(max(a), max(b))
    return max(hi - lo, 0.0) / (max(max(a), max(b)) - min(min(a), min(b)))


def bd_mean_curves(curves, max_target: float | None = None,
                   anchors=BD_ANCHORS) -> dict:
    """BD-rate and BD-PSNR of every codec's *mean* curve (:func:`mean_curves`) against
    each anchor's, over whatever the curves share, with that overlap (the fraction of the
    union of the two PSNR ranges, resp. rate ranges, that both cover).

    The per-image figures of :func:`bd_table` need 75 % overlap and give '-' for codecs
    whose quality range lies apart from the anchor's; this answers the user's question
    "how many more bits for the same PSNR, where both reach it" anyway, and says over how
    much of the range.  ``max_target`` keeps the points of targets up to that rate only;
    ``anchors`` are the codecs compared against.
    NaN where the curves do not overlap, have fewer than 4 points or are not monotonic.
    """
    import bjontegaard as bd  # noqa: PLC0415

    def pts(codec):  # without repeats (see bd_table)
        return {(p["bpp"], p["psnr"]) for p in curves[codec]["points"]
                if max_target is None or p["target_bpp"] <= max_target}

    out = {}
    for anchor in anchors:
        if anchor not in curves:
            continue
        a = sorted(pts(anchor))
        for codec in _codec_order(curves):
            b = sorted(pts(codec))
            if codec == anchor or len(a) < 4 or len(b) < 4:
                continue
            res = {}
            for key, fn, axis in (("bd_rate", bd.bd_rate, 1), ("bd_psnr", bd.bd_psnr, 0)):
                ov = _overlap([p[axis] for p in a], [p[axis] for p in b])
                v = math.nan
                if ov > 0:
                    try:  # a curve whose PSNR does not rise with the rate has no BD-rate
                        v = float(fn([p[0] for p in a], [p[1] for p in a],
                                     [p[0] for p in b], [p[1] for p in b], method="pchip",
                                     require_matching_points=False, min_overlap=0))
                    except ValueError:
                        pass
                res[key], res[key + "_overlap"] = v, ov
            out[(codec, anchor)] = res
    return out


def _plot(curves, key, ylabel, path: Path, title: str) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    for codec in _codec_order(curves):
        pts = curves[codec]["points"]
        if not pts:
            continue
        ls = "--" if codec in REFERENCE_CODECS else "-"
        ax.plot([p["bpp"] for p in pts], [p[key] for p in pts], ls, marker="o", ms=3,
                label=f"{codec} ({len(curves[codec]['images'])} img)")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_rate_results(rows, out: Path, mode: str) -> str:
    """Write the files of one mode under ``out/mode``; returns the Markdown summary."""
    d = Path(out) / mode
    (d / "per_image").mkdir(parents=True, exist_ok=True)
    (d / "compressai").mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["image"], _codec_order([r["codec"]]),
                                       r["codec"], r["target_bpp"]))
    (d / "results.csv").write_text(_csv(rows, RATE_FIELDS))
    for img in sorted({r["image"] for r in rows}):
        (d / "per_image" / f"{img}.csv").write_text(
            _csv([r for r in rows if r["image"] == img], RATE_FIELDS))
    curves = mean_curves(rows)
    rgb = "rgb" if mode == "colour" else "y"
    for codec, cv in curves.items():
        pts = cv["points"]
        doc = {"name": codec,
               "description": f"inpcodec bench, {mode}, mean over {len(cv['images'])} "
                              f"images: {', '.join(cv['images'])}",
               "results": {"bpp": [p["bpp"] for p in pts],
                           f"psnr-{rgb}": [p["psnr"] for p in pts],
                           "psnr-y": [p["psnr_y"] for p in pts],
                           f"ssim-{rgb}": [p["ssim"] for p in pts],
                           f"ms-ssim-{rgb}": [p["ms_ssim"] for p in pts],
                           "encoding_time": [p["encode_seconds"] for p in pts],
                           "decoding_time": [p["decode_seconds"] for p in pts]}}
        (d / "compressai" / f"{codec}.json").write_text(json.dumps(doc, indent=2) + "\n")
    label = "RGB" if mode == "colour" else "grey"
    _plot(curves, "psnr", f"PSNR ({label}, dB)", d / "rd_psnr.png", f"inpcodec bench: {mode}")
    if any(not math.isnan(p["ms_ssim"]) for cv in curves.values() for p in cv["points"]):
        _plot(curves, "ms_ssim", f"MS-SSIM ({label})", d / "rd_ms_ssim.png",
              f"inpcodec bench: {mode}")
    bd = bd_table(rows)
    bd_rows = [{"codec": c, "anchor": a, **v} for (c, a), v in bd.items()]
    (d / "bd.csv").write_text(_csv(bd_rows, ("codec", "anchor", "bd_rate", "images_rate",
                                             "bd_psnr", "images_psnr")))
    targets = sorted({r["target_bpp"] for r in rows})
    low = [t for t in targets if t <= 0.3]
    bdm = {lim: bd_mean_curves(curves, lim) for lim in (None, max(low) if low else None)}
    bdm_rows = [{"codec": c, "anchor": a, "targets": "all" if lim is None else f"<={lim:g}",
                 **v} for lim, table in bdm.items() for (c, a), v in table.items()]
    (d / "bd_mean.csv").write_text(_csv(bdm_rows, (
        "codec", "anchor", "targets", "bd_rate", "bd_rate_overlap", "bd_psnr",
        "bd_psnr_overlap")))
    # Markdown summary
    lines = [f"**{mode}**: mean over the images; bpp of the real files / PSNR ({label}, dB) "
             "of their decoding; '-' where an image could not reach the rate.", "",
             "| codec | images | " + " | ".join(f"{t:g} bpp" for t in targets) + " |",
             "|---|---:|" + "---|" * len(targets)]
    for codec in _codec_order(curves):
        cv = curves[codec]
        by_t = {p["target_bpp"]: p for p in cv["points"]}
        cells = [f"{by_t[t]['bpp']:.3f} / {by_t[t]['psnr']:.2f}" if t in by_t else "-"
                 for t in targets]
        lines.append(f"| {codec} | {len(cv['images'])} | " + " | ".join(cells) + " |")
    lines += ["", "Bjontegaard deltas (PSNR, piecewise cubic; negative BD-rate = fewer bits "
              "for the same quality), mean over the images whose curves overlap by 75 % "
              "(the count in brackets where not all do; '-' where none):", "",
              "| codec | BD-rate vs JPEG | BD-PSNR vs JPEG | BD-rate vs JPEG 2000 | "
              "BD-PSNR vs JPEG 2000 |", "|---|---:|---:|---:|---:|"]
    for codec in _codec_order(curves):
        cells = []
        n = len(curves[codec]["images"])
        for a in BD_ANCHORS:
            v = bd.get((codec, a))
            for key, k, unit, fmt in (("bd_rate", "images_rate", " %", "+.1f"),
                                      ("bd_psnr", "images_psnr", " dB", "+.2f")):
                if v is None or math.isnan(v[key]):
                    cells.append("-")
                else:
                    part = f" ({v[k]} of {n})" if v[k] < n else ""
                    cells.append(f"{v[key]:{fmt}}{unit}{part}")
        lines.append(f"| {codec} | " + " | ".join(cells) + " |")
    for lim, table in bdm.items():
        span = (f"{min(targets):g}-{max(targets):g}" if lim is None
                else f"{min(targets):g}-{lim:g}")
        lines += ["", f"Bjontegaard deltas of the mean curves, targets {span} bpp, over "
                  "whatever range the two curves share (in brackets: that share of the union "
                  "of their PSNR ranges for the BD-rate, of their rate ranges for the "
                  "BD-PSNR; '-' where they share none):", "",
                  "| codec | BD-rate vs JPEG | BD-PSNR vs JPEG | BD-rate vs JPEG 2000 | "
                  "BD-PSNR vs JPEG 2000 |", "|---|---:|---:|---:|---:|"]
        for codec in _codec_order(curves):
            cells = []
            for a in BD_ANCHORS:
                v = table.get((codec, a))
                for key, unit, fmt in (("bd_rate", " %", "+.1f"), ("bd_psnr", " dB", "+.2f")):
                    if v is None or math.isnan(v[key]):
                        cells.append("-")
                    else:
                        cells.append(f"{v[key]:{fmt}}{unit} ({v[key + '_overlap']:.0%})")
            if any(c != "-" for c in cells):
                lines.append(f"| {codec} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (d / "summary.md").write_text(text)
    return text


SPEED_FIELDS = ("image", "encoder", "density", "points", "inpaintings", "seconds")


def speedup_text(ratio: float) -> str:
    """A speed-up for the table: one decimal below 10x (PS at 1.4x is not "1x"), else whole."""
    return f"{ratio:.1f}" if ratio < 10 else f"{ratio:,.0f}"


def write_speed_results(rows, out: Path) -> str:
    """speed.csv, speed.png (log-scale time per density) and a summary with the speed-up
    of every encoder over PS+NLPE (ratio of the means over images, same run)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    d = Path(out) / "speed"
    d.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["image"], r["encoder"], r["density"]))
    (d / "speed.csv").write_text(_csv(rows, SPEED_FIELDS))
    encoders = sorted({r["encoder"] for r in rows})
    dens = sorted({r["density"] for r in rows})
    mean = {(e, x): (float(np.mean([r["seconds"] for r in rows if r["encoder"] == e
                                    and r["density"] == x])),
                     float(np.mean([r["inpaintings"] for r in rows if r["encoder"] == e
                                    and r["density"] == x])))
            for e in encoders for x in dens
            if any(r["encoder"] == e and r["density"] == x for r in rows)}
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    for e in encoders:
        xs = [x for x in dens if (e, x) in mean]
        ax.semilogy([100 * x for x in xs], [mean[(e, x)][0] for x in xs], marker="o", label=e)
    ax.set_xlabel("mask density (%)")
    ax.set_ylabel("mask generation time (s, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(d / "speed.png", metadata={"Software": None})
    plt.close(fig)
    images = sorted({r["image"] for r in rows})
    lines = [f"Mask generation on the luma of {len(images)} image(s), mean seconds / "
             "inpaintings, and the speed-up over PS+NLPE at the same density (same run).",
             "", "| encoder | " + " | ".join(f"{100 * x:g} %" for x in dens) + " |",
             "|---|" + "---|" * len(dens)]
    for e in encoders:
        cells = []
        for x in dens:
            if (e, x) not in mean:
                cells.append("-")
                continue
            s, n = mean[(e, x)]
            ref = mean.get(("ps+nlpe", x))
            sp = f", {speedup_text(ref[0] / s)}x" if ref and e != "ps+nlpe" and s > 0 else ""
            cells.append(f"{s:.3g} s / {n:.0f}{sp}")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (d / "summary.md").write_text(text)
    return text
