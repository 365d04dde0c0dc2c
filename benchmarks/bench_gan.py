"""The GAN inpainter (MHTMA, issue 7): as decoder post-processor and as hole filler.

    python benchmarks/bench_gan.py --kodak ../shared/data/kodak --write-results

Post-processor: every Kodak image (colour; ``--grey`` for the luma) is encoded by the
codec with the learned and the Belhachmi encoder at each density (default 2, 5, 10 %;
64 levels, tonal optimisation, as ``inpcodec encode --density``), decoded as usual and
decoded with ``postprocess="gan"``; PSNR (RGB, peak 255), SSIM and MS-SSIM (both
pytorch-msssim, Gaussian window as Wang et al.; :mod:`inpcodec.codec.metrics`) of both
against the original.  Run
time of the post-processor alone on a 768 x 512 colour image with 2 torch threads: median
of ``--repeats`` runs (the machine may be busy: the spread is reported too).

Holes: centre ``--holes-side`` crops (default 256 x 256, the seed's size) of the same
images, with hole masks made by the seed's generator (DeepFill v2 strokes united with a
96 x 96 square, at 256 x 256) drawn until their hole ratio falls in each bin (0-10 %,
..., 40-50 %, as the seed's Table IV), ``--masks-per-bin`` per image; MAE (% of 255),
PSNR and SSIM over the whole image, of the GAN and of homogeneous diffusion inpainting
of the same holes (``codec.inpaint``).

A picture sheet (input, diffusion, GAN, original; one row per use) goes to
``benchmarks/results/gan_sheet.png``.  Rows are appended to a JSON-lines file and skipped
when present (resumable).  Kodak is never in the training data (BSDS500).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from pathlib import Path

import numpy as np
from _results import command_line, write_section

HERE = Path(__file__).resolve().parent
MARK = "bench_gan"
BINS = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5)]


# PSNR, SSIM and MS-SSIM: the project's one metrics module (pytorch-msssim for both SSIMs;
# rows measured before inpcodec 0.2 used scikit-image's SSIM: see RESULTS.md).
from inpcodec.codec.metrics import psnr, ssim  # noqa: E402


def ms_ssim(u, f) -> float | None:
    """MS-SSIM (5 scales); None for images too small for 5 scales."""
    from inpcodec.codec.metrics import ms_ssim as _ms_ssim

    v = _ms_ssim(u, f)
    return None if np.isnan(v) else v


def load_images(folder: Path, names: list[str] | None, grey: bool):
    from PIL import Image

    if not folder.is_dir():
        raise SystemExit(f"bench_gan: {folder} is not a folder")
    names = names or sorted(p.stem for p in folder.glob("kodim*.png"))
    out = []
    for name in names:
        with Image.open(folder / f"{name}.png") as im:
            out.append((name, np.asarray(im.convert("L" if grey else "RGB"))))
    return out


def postprocess_rows(name, img, args, net, done):
    from inpcodec.codec import pipeline as P
    from inpcodec.codec.postprocess import refine

    rows = []
    for encoder in args.encoders.split(","):
        for d in (float(x) / 100 for x in args.densities.split(",")):
            if (name, encoder, d) in done:
                continue
            r = P.encode_report(img, encoder=encoder, density=d, tonal=not args.no_tonal)
            plain, mask = P.decode(r.data, return_info=True)
            t0 = time.perf_counter()
            refined = refine(plain, mask, network=net)
            seconds = time.perf_counter() - t0
            row = {"kind": "postprocess", "image": name, "encoder": encoder, "density": d,
                   "bpp": r.bpp, "tonal": not args.no_tonal, "gan_seconds": seconds}
            for tag, u in (("plain", plain), ("gan", refined)):
                row.update({f"psnr_{tag}": psnr(u, img), f"ssim_{tag}": ssim(u, img),
                            f"msssim_{tag}": ms_ssim(u, img)})
            rows.append(row)
            print(name, encoder, f"{d:.2f}", f"PSNR {row['psnr_plain']:.2f} -> "
                  f"{row['psnr_gan']:.2f}", flush=True)
    return rows


def holes_rows(name, img, args, net, done):
    from inpcodec.codec import inpaint
    from inpcodec.codec.postprocess import inpaint_holes
    from inpcodec.codec.postprocess.data import centre_crop
    from inpcodec.codec.postprocess.masks import hole_mask_in_range

    f = centre_crop(img, args.holes_side)
    rows = []
    for lo, hi in BINS:
        for k in range(args.masks_per_bin):
            if (name, lo, k) in done:
                continue
            rng = np.random.default_rng(zlib.crc32(f"{name}-{lo}-{k}".encode()))
            holes = hole_mask_in_range(*f.shape[:2], lo, hi, rng)
            diffusion = np.clip(np.rint(inpaint(f.astype(np.float64), ~holes)), 0, 255)
            diffusion = diffusion.astype(np.uint8)
            gan = inpaint_holes(f, holes, network=net)
            row = {"kind": "holes", "image": name, "bin": lo, "k": k,
                   "ratio": float(holes.mean())}
            for tag, u in (("diffusion", diffusion), ("gan", gan)):
                row.update({f"mae_{tag}": float(np.mean(np.abs(u.astype(np.float64) - f))
                                                / 255 * 100),
                            f"psnr_{tag}": psnr(u, f), f"ssim_{tag}": ssim(u, f)})
            rows.append(row)
    print(name, "holes", " ".join(f"{r['bin']:.1f}:{r['psnr_diffusion']:.2f}->"
                                  f"{r['psnr_gan']:.2f}" for r in rows), flush=True)
    return rows


def forward_time(net, images, repeats: int, threads: int) -> list[float]:
    """Seconds of the post-processor on a 768 x 512 image (the first benchmark image of
    that size, else noise) with a random 4 % mask, at ``threads`` torch threads."""
    import torch

    from inpcodec.codec import inpaint
    from inpcodec.codec.postprocess import refine

    rng = np.random.default_rng(0)
    sized = [img for _, img in images if img.shape[:2] == (512, 768)]
    img = sized[0] if sized else np.clip(rng.normal(128, 40, (512, 768, 3)), 0, 255)
    img = img.astype(np.uint8)
    known = rng.random((512, 768)) < 0.04
    u = np.clip(np.rint(inpaint(img.astype(np.float64), known)), 0, 255).astype(np.uint8)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # for this measurement only
    try:
        refine(u[:64, :64], known[:64, :64], network=net)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            refine(u, known, network=net)
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return times


def picture_sheet(images, args, pp_net, holes_net, path: Path) -> None:
    """Rows: post-processor (stored pixels, diffusion, GAN, original) and holes (input,
    diffusion, GAN, original), 256 x 256 centre crops of the first image."""
    from PIL import Image, ImageDraw

    from inpcodec.codec import inpaint
    from inpcodec.codec import pipeline as P
    from inpcodec.codec.postprocess import inpaint_holes, refine
    from inpcodec.codec.postprocess.data import centre_crop
    from inpcodec.codec.postprocess.masks import hole_mask_in_range

    name, img = images[0]
    side = 256
    rows = []
    if pp_net is not None:
        d = float(args.densities.split(",")[len(args.densities.split(",")) // 2]) / 100
        data = P.encode(img, encoder=args.encoders.split(",")[0], density=d,
                        tonal=not args.no_tonal)
        plain, mask = P.decode(data, return_info=True)
        refined = refine(plain, mask, network=pp_net)
        stored = np.where(mask[..., None] if img.ndim == 3 else mask, plain, 0)
        rows.append([centre_crop(a, side) for a in (stored, plain, refined, img)])
    if holes_net is not None:
        f = centre_crop(img, side)
        holes = hole_mask_in_range(*f.shape[:2], 0.2, 0.3, np.random.default_rng(0))
        shown = f.copy()
        shown[holes] = 255
        diffusion = np.clip(np.rint(inpaint(f.astype(np.float64), ~holes)), 0, 255)
        rows.append([shown, diffusion.astype(np.uint8), inpaint_holes(f, holes,
                                                                      network=holes_net), f])
    if not rows:
        return
    h, w = rows[0][0].shape[:2]
    label = 16
    sheet = Image.new("RGB", (4 * w, len(rows) * (h + label)), "white")
    draw = ImageDraw.Draw(sheet)
    titles = (["stored pixels", "diffusion (decoder)", "GAN post-processor", "original"],
              ["holes (white)", "diffusion inpainting", "GAN (MHTMA)", "original"])
    titles = [titles[0]] * (pp_net is not None) + [titles[1]] * (holes_net is not None)
    for r, (row, names) in enumerate(zip(rows, titles, strict=True)):
        for c, (a, t) in enumerate(zip(row, names, strict=True)):
            sheet.paste(Image.fromarray(a).convert("RGB"), (c * w, r * (h + label) + label))
            draw.text((c * w + 4, r * (h + label) + 2), f"{t} ({name})", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def _mean(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(vals)) if vals else float("nan")


def training_lines(args) -> list[str]:
    """One line per generator used: its training run and validation, from its provenance."""
    from inpcodec.codec.postprocess.inference import DEFAULT_WEIGHTS

    lines = []
    for task, given, skip in (("postprocess", args.postprocess_weights, args.skip_postprocess),
                              ("holes", args.holes_weights, args.skip_holes)):
        weights = Path(given) if given else DEFAULT_WEIGHTS[task]
        prov = weights.with_suffix(".json")
        if skip or not prov.is_file():
            continue
        p = json.loads(prov.read_text())
        v = p["validation"]
        final, cfg = v.get("final") or {}, p.get("config", {})
        start = p.get("started_from")
        origin = (f"fine-tuned from `{Path(start['file']).name}` (made by "
                  f"`{start.get('its_command')}`): " if start else "")
        lines.append(
            f"- `{weights.name}` ({task}): {origin}{p['steps']} steps in "
            f"{p['wall_time_minutes']:.0f} min, seed {p['seed']}, weights of step "
            f"{p['weights_from_step']}; crop "
            f"{cfg.get('crop')}, batch {cfg.get('batch')}, generator lr {cfg.get('lr_g')}, "
            f"adversarial weight {cfg.get('lambda_adversarial')}, "
            f"{p['architecture'].get('full_res_layers', '1')} full-resolution layer(s); "
            f"perceptual loss: {p['perceptual_loss']['kind']}; validation ({v['items']} "
            f"BSDS500 test items, {v['crop']}): PSNR "
            f"{final.get('baseline_psnr', float('nan')):.2f} dB for {v['baseline']} -> "
            f"{final.get('psnr', float('nan')):.2f} dB with the GAN. Command and "
            f"history: `{prov.name}` beside the weights.")
    return lines


def summarise(rows, times, args) -> str:
    lines = []
    trained = training_lines(args)
    if trained:
        lines += ["Generators (trained here on the CPU, BSDS500; Kodak never seen):", "",
                  *trained]
    pp = [r for r in rows if r["kind"] == "postprocess"]
    if pp:
        images = sorted({r["image"] for r in pp})
        lines += [""] * bool(lines)
        lines += [f"Post-processor: {len(images)} Kodak images ({'luma' if args.grey else 'RGB'}"
                  f"), {'tonal optimisation' if not args.no_tonal else 'no tonal'}, 64 levels."
                  " Mean over the images; decode without -> with the GAN.", "",
                  "| encoder | density | bpp | PSNR (dB) | SSIM | MS-SSIM |",
                  "|---|---|---|---|---|---|"]
        keys = sorted({(r["encoder"], r["density"]) for r in pp})
        for enc, d in keys:
            rs = [r for r in pp if r["encoder"] == enc and r["density"] == d]
            cells = [f"{_mean(rs, f'{m}_plain'):.{p}f} -> {_mean(rs, f'{m}_gan'):.{p}f}"
                     for m, p in (("psnr", 2), ("ssim", 4), ("msssim", 4))]
            lines.append(f"| {enc} | {d * 100:g} % | {_mean(rs, 'bpp'):.3f} | "
                         + " | ".join(cells) + " |")
    if times:
        lines += ["", f"Post-processor run time, 768x512 colour, {args.threads} torch threads: "
                  f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max "
                  f"{max(times):.2f}, {len(times)} runs; the machine may have been busy)."]
    ho = [r for r in rows if r["kind"] == "holes"]
    if ho:
        images = sorted({r["image"] for r in ho})
        lines += ["", f"Holes: {len(images)} Kodak centre crops {args.holes_side}x"
                  f"{args.holes_side}, seed-style masks ({args.masks_per_bin} per image and "
                  "bin); homogeneous diffusion -> GAN.", "",
                  "| hole ratio | masks | MAE (%) | PSNR (dB) | SSIM |", "|---|---|---|---|---|"]
        for lo, hi in BINS:
            rs = [r for r in ho if r["bin"] == lo]
            if not rs:
                continue
            cells = [f"{_mean(rs, f'{m}_diffusion'):.{p}f} -> {_mean(rs, f'{m}_gan'):.{p}f}"
                     for m, p in (("mae", 3), ("psnr", 2), ("ssim", 4))]
            lines.append(f"| ({lo:.1f}, {hi:.1f}] | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", required=True, help="folder with kodim*.png")
    ap.add_argument("--images", help="comma-separated subset, e.g. kodim01,kodim05")
    ap.add_argument("--postprocess-images",
                    help="subset for the post-processor part (default: --images); 6 encodes "
                         "per image, ~10 s each with decoding, GAN and metrics (measured "
                         "on 2 cores)")
    ap.add_argument("--grey", action="store_true", help="the luma instead of RGB")
    ap.add_argument("--densities", default="2,5,10", help="percent")
    ap.add_argument("--encoders", default="learned,belhachmi")
    ap.add_argument("--no-tonal", action="store_true", help="faster, unlike the codec default")
    ap.add_argument("--holes-side", type=int, default=256)
    ap.add_argument("--masks-per-bin", type=int, default=2)
    ap.add_argument("--postprocess-weights", default=None, help="default: shipped")
    ap.add_argument("--holes-weights", default=None, help="default: shipped")
    ap.add_argument("--skip-postprocess", action="store_true")
    ap.add_argument("--skip-holes", action="store_true")
    ap.add_argument("--repeats", type=int, default=5, help="runs of the 768x512 timing")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the timing")
    ap.add_argument("--out", default=str(HERE / "results" / "gan.jsonl"))
    ap.add_argument("--sheet", default=str(HERE / "results" / "gan_sheet.png"))
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()

    from inpcodec.codec.postprocess import load_generator

    images = load_images(Path(args.kodak), args.images.split(",") if args.images else None,
                         args.grey)
    pp_net = None if args.skip_postprocess else load_generator(args.postprocess_weights,
                                                               "postprocess")
    holes_net = None if args.skip_holes else load_generator(args.holes_weights, "holes")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    done_pp = {(r["image"], r["encoder"], r["density"]) for r in rows
               if r["kind"] == "postprocess"}
    done_holes = {(r["image"], r["bin"], r["k"]) for r in rows if r["kind"] == "holes"}
    pp_names = ({n for n, _ in images} if not args.postprocess_images
                else set(args.postprocess_images.split(",")))
    unknown = pp_names - {n for n, _ in images}
    if unknown:
        raise SystemExit(f"bench_gan: --postprocess-images not among the images: "
                         f"{', '.join(sorted(unknown))}")
    for name, img in images:
        new = []
        if pp_net is not None and name in pp_names:
            new += postprocess_rows(name, img, args, pp_net, done_pp)
        if holes_net is not None:
            new += holes_rows(name, img, args, holes_net, done_holes)
        with out.open("a") as fh:
            for r in new:
                fh.write(json.dumps(r) + "\n")
        rows += new
    times = [] if pp_net is None else forward_time(pp_net, images, args.repeats, args.threads)
    picture_sheet(images, args, pp_net, holes_net, Path(args.sheet))
    names = {n for n, _ in images}
    text = summarise([r for r in rows if r["image"] in names and
                      (r["kind"] != "postprocess" or r["image"] in pp_names)], times, args)
    print(text)
    if args.write_results:
        cmd = command_line()
        sheet = Path(args.sheet).resolve()
        shown = sheet.relative_to(HERE) if HERE in sheet.parents else sheet
        write_section(MARK, "## GAN inpainter: post-processor and holes (issue 7)",
                      f"`{cmd} --write-results`\n\n{text}\n\nPicture sheet: `{shown}`.")


if __name__ == "__main__":
    main()
