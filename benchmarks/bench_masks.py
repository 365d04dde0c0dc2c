"""Mask encoders compared (the seed paper's Figure 4): quality, inpaintings, wall time.

    python benchmarks/bench_masks.py --write-results                      # cameraman 512x512
    python benchmarks/bench_masks.py --kodak ../shared/data/kodak --skip-cameraman \\
        --kodak-images kodim01,kodim05,kodim08,kodim13,kodim19,kodim23 --write-results
    python benchmarks/bench_masks.py --speed --write-results              # the seed's timings

For every image and density: masks from random sampling, Belhachmi et al. (dithered
Laplacian magnitude), probabilistic sparsification (PS, best of ``--runs``) and PS
followed by nonlocal pixel exchange (``--cycles``), each reconstructed by homogeneous
diffusion inpainting with the original grey values and with tonally optimised values.
PSNR is that of the float reconstruction against the original (peak 255).  Costs are the
inpaintings spent and the wall time of the mask search (tonal optimisation separately).

Results are appended to a JSON-lines file (``--out``), one line per image, density and
method; pairs already there are skipped, so a long run can be stopped and resumed.
Kodak images are used as the centre 256 x 256 crop of their luma (Pillow's ``L``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _results import write_section

HERE = Path(__file__).resolve().parent
METHODS = ["random", "belhachmi", "ps", "ps+nlpe"]
MARK = "bench_masks"


from inpcodec.codec.metrics import psnr  # noqa: E402 (the project's one PSNR)


def load_images(args):
    from PIL import Image

    from inpcodec.codec.data import cameraman

    images = []
    if not args.skip_cameraman:
        images.append(("cameraman512", cameraman().astype(np.float64)))
    if args.kodak:
        folder = Path(args.kodak)
        if not folder.is_dir():
            raise SystemExit(f"bench_masks: {folder} is not a folder")
        names = args.kodak_images.split(",") if args.kodak_images else sorted(
            p.stem for p in folder.glob("kodim*.png"))
        for name in names:
            with Image.open(folder / f"{name}.png") as im:
                g = np.asarray(im.convert("L"), dtype=np.float64)
            h, w = g.shape
            y, x = (h - 256) // 2, (w - 256) // 2
            images.append((f"{name}-crop256", g[y:y + 256, x:x + 256]))
    return images


def run_case(name, f, density, args):
    from inpcodec.baselines import (
        belhachmi_mask,
        nonlocal_pixel_exchange,
        probabilistic_sparsification,
        tonal_optimisation,
    )
    from inpcodec.codec import inpaint

    rows = []
    count = max(1, round(density * f.size))

    def record(method, mask, inpaintings, seconds, extra=None):
        u = inpaint(f, mask)
        t0 = time.perf_counter()
        tr = tonal_optimisation(f, mask)
        tonal_s = time.perf_counter() - t0
        rows.append({"image": name, "shape": list(f.shape), "density": density,
                     "method": method, "count": int(mask.sum()), "psnr": psnr(u, f),
                     "psnr_tonal": psnr(tr.reconstruction, f), "inpaintings": inpaintings,
                     "seconds": seconds, "tonal_inpaintings": tr.inpaintings,
                     "tonal_seconds": tonal_s, **(extra or {})})
        print(json.dumps(rows[-1]), flush=True)

    rng = np.random.default_rng(0)
    m = np.zeros(f.size, bool)
    m[rng.choice(f.size, count, replace=False)] = True
    record("random", m.reshape(f.shape), 0, 0.0)
    b = belhachmi_mask(f, density)
    record("belhachmi", b.mask, 0, b.seconds, {"sigma": b.info["sigma"]})
    ps = probabilistic_sparsification(f, density, runs=args.runs, seed=0)
    record("ps", ps.mask, ps.inpaintings, ps.seconds,
           {"runs": args.runs, "steps_per_run": ps.info["run_steps"]})
    nl = nonlocal_pixel_exchange(f, ps.mask, cycles=args.cycles, seed=0)
    record("ps+nlpe", nl.mask, ps.inpaintings + nl.inpaintings, ps.seconds + nl.seconds,
           {"cycles": args.cycles, "nlpe_seconds": nl.seconds,
            "nlpe_inpaintings": nl.inpaintings, "accepted": nl.info["accepted"]})
    return rows


def speed_study(args):
    """The seed paper's timing case: 256 x 256 cameraman, 3 % mask, one PS run + 10 NLPE cycles."""
    from skimage.transform import resize

    from inpcodec.baselines import (
        belhachmi_mask,
        nonlocal_pixel_exchange,
        probabilistic_sparsification,
    )
    from inpcodec.codec.data import cameraman

    f = resize(cameraman().astype(np.float64), (256, 256), order=3, anti_aliasing=True)
    belhachmi_mask(f, 0.03)  # warm-up (JIT load)
    t0 = time.perf_counter()
    b = belhachmi_mask(f, 0.03)
    tb = time.perf_counter() - t0
    b512 = belhachmi_mask(cameraman().astype(np.float64), 0.03)
    ps = probabilistic_sparsification(f, 0.03, runs=1, seed=0)
    nl = nonlocal_pixel_exchange(f, ps.mask, cycles=10, seed=0)
    return {"belhachmi_256_s": tb, "belhachmi_512_s": b512.seconds, "ps_s": ps.seconds,
            "ps_steps": ps.info["run_steps"][0], "nlpe_s": nl.seconds,
            "nlpe_trials": nl.info["trials"], "belhachmi_count": int(b.mask.sum())}


def render(rows, speed):
    out = []
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image"].split("-")[0] if "crop" in r["image"] else r["image"],
                            []).append(r)
    cam = [r for r in rows if r["image"] == "cameraman512"]
    kodak = [r for r in rows if r["image"].startswith("kodim")]
    dens = sorted({r["density"] for r in rows})

    def table(sel, title):
        if not sel:
            return
        imgs = sorted({r["image"] for r in sel})
        out.append(f"**{title}** ({len(imgs)} image{'s' if len(imgs) > 1 else ''}"
                   + (f": {', '.join(i.split('-')[0] for i in imgs)}" if len(imgs) > 1 else "")
                   + "). PSNR in dB, mean over images; *+T* with tonal optimisation.")
        out.append("")
        out.append("| density | " + " | ".join(f"{m} | {m} +T" for m in METHODS) + " |")
        out.append("|---:|" + "---:|" * (2 * len(METHODS)))
        for d in dens:
            cells = []
            for m in METHODS:
                rs = [r for r in sel if r["density"] == d and r["method"] == m]
                if len(rs) < len(imgs):
                    cells += ["-", "-"]
                    continue
                cells += [f"{np.mean([r['psnr'] for r in rs]):.2f}",
                          f"{np.mean([r['psnr_tonal'] for r in rs]):.2f}"]
            out.append(f"| {d * 100:g} % | " + " | ".join(cells) + " |")
        out.append("")
        out.append("Cost of the mask search, mean per image: inpaintings / seconds "
                   "(tonal optimisation in brackets).")
        out.append("")
        out.append("| density | " + " | ".join(METHODS) + " |")
        out.append("|---:|" + "---:|" * len(METHODS))
        for d in dens:
            cells = []
            for m in METHODS:
                rs = [r for r in sel if r["density"] == d and r["method"] == m]
                if not rs:
                    cells.append("-")
                    continue
                cells.append(f"{np.mean([r['inpaintings'] for r in rs]):.0f} / "
                             f"{np.mean([r['seconds'] for r in rs]):.2f} s "
                             f"({np.mean([r['tonal_inpaintings'] for r in rs]):.0f} / "
                             f"{np.mean([r['tonal_seconds'] for r in rs]):.2f} s)")
            out.append(f"| {d * 100:g} % | " + " | ".join(cells) + " |")
        out.append("")

    table(cam, "Cameraman 512 x 512 (scikit-image)")
    table(kodak, "Kodak, centre 256 x 256 crops of the luma")
    if speed:
        out.append("**The seed paper's timing case** (256 x 256 cameraman, 3 % mask; the "
                   "seed measured on an i7-7700K, so the ratios compare machines too):")
        out.append("")
        out.append(f"- one PS run (p = 0.1, q = 0.05): {speed['ps_steps']} steps (seed: 700) "
                   f"in {speed['ps_s']:.2f} s (seed: 58 s, ratio "
                   f"{58 / speed['ps_s']:.0f}x)")
        out.append(f"- 10 NLPE cycles (30 candidates, 10 exchanged): {speed['nlpe_trials']} "
                   f"trials in {speed['nlpe_s']:.2f} s (seed: 2000 steps, over 180 s; ratio "
                   f"over {180 / speed['nlpe_s']:.0f}x)")
        out.append(f"- Belhachmi: {speed['belhachmi_256_s'] * 1e3:.1f} ms at 256 x 256 "
                   f"(seed: 24 ms), {speed['belhachmi_512_s'] * 1e3:.1f} ms at 512 x 512")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", help="folder with kodim*.png (e.g. ../shared/data/kodak)")
    ap.add_argument("--kodak-images", help="comma-separated subset, e.g. kodim01,kodim05")
    ap.add_argument("--skip-cameraman", action="store_true")
    ap.add_argument("--densities", default="1,2,3,4,5,10", help="percent")
    ap.add_argument("--runs", type=int, default=5, help="PS runs (best kept)")
    ap.add_argument("--cycles", type=float, default=10, help="NLPE cycles")
    ap.add_argument("--out", default=str(HERE / "results" / "masks.jsonl"))
    ap.add_argument("--speed", action="store_true", help="also run the seed's timing case")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = []
    if out.exists():
        done = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    have = {(r["image"], r["density"]) for r in done}
    for name, f in load_images(args):
        for d in (float(x) / 100 for x in args.densities.split(",")):
            if (name, d) in have:
                continue
            rows = run_case(name, f, d, args)
            with out.open("a") as fh:
                for r in rows:
                    fh.write(json.dumps(r) + "\n")
            done += rows
    speed = None
    speed_file = out.with_name("masks_speed.json")
    if args.speed:
        speed = speed_study(args)
        speed_file.write_text(json.dumps(speed))
    elif speed_file.exists():
        speed = json.loads(speed_file.read_text())
    text = render(done, speed)
    print(text)
    if args.write_results:
        cmd = ("Commands: the three in the header of `benchmarks/bench_masks.py` (raw rows in "
               "`benchmarks/results/masks.jsonl`).")
        write_section(MARK, "## Mask encoders (random, Belhachmi, PS, PS+NLPE)",
                      f"{cmd}\n\n{text}")


if __name__ == "__main__":
    main()
