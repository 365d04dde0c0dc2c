"""The ``inpcodec`` command line."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time

import click
import numpy as np

from codec.data import IMAGE_SUFFIXES

SOLVER_CHOICES = ["auto", "numba", "cupy", "direct"]


def _clean_errors(fn):
    """Turn expected failures into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"inpcodec: error: {msg}", err=True)
            sys.exit(2)

    return wrapper


_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


def _open_image(path: str):
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not an image")
    try:
        im = Image.open(path)
        im.load()
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: damaged or unreadable image ({exc})") from None
    return im


def load_image(path: str, *, drop_alpha: bool = False, grey: bool = False) -> np.ndarray:
    """8-bit grey (H, W) or RGB (H, W, 3) from any format Pillow reads; refuses, never mangles.

    16-bit and floating-point images and images with an alpha channel are refused by name
    (alpha can be dropped explicitly with ``drop_alpha``).
    """
    im = _open_image(path)
    mode = im.mode
    if mode in _SIXTEEN_BIT:
        raise ValueError(f"{path}: {mode} images (16-bit or floating point) are not "
                         "supported; convert to 8 bits per channel first")
    if mode == "P" and "transparency" in im.info:
        mode = "PA"
    if mode in _ALPHA:
        if not drop_alpha:
            raise ValueError(f"{path}: the image has an alpha channel ({mode}); pass "
                             "--drop-alpha to encode it without transparency")
        im = im.convert("RGBA" if mode != "LA" else "LA")
        im = im.convert("RGB" if mode != "LA" else "L")
    elif mode in ("1", "L"):
        im = im.convert("L")
    elif mode in ("RGB", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    else:
        raise ValueError(f"{path}: unsupported image mode {mode}")
    a = np.asarray(im)
    if grey and a.ndim == 3:
        a = np.asarray(im.convert("L"))
    return a


def _check_output_path(path: str) -> None:
    """Refuse before any work if the output cannot be written (no partial files later)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{path}: output folder is not writable")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder")


def _write_atomic(path: str, write) -> None:
    """Write through a temporary file in the target folder, renamed when complete."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".inpcodec-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_image(path: str, img: np.ndarray) -> None:
    """Write an image with Pillow, format from the file extension (atomically)."""
    from PIL import Image  # noqa: PLC0415

    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    ext = os.path.splitext(path)[1].lower()
    formats = {".png": "PNG", ".pgm": "PPM", ".ppm": "PPM", ".pnm": "PPM", ".tif": "TIFF",
               ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP", ".jpg": "JPEG",
               ".jpeg": "JPEG"}
    if ext not in formats:
        raise ValueError(f"{path}: unknown image extension {ext or '(none)'}; use one of "
                         f"{', '.join(sorted(formats))}")
    opts = {"lossless": True} if formats[ext] == "WEBP" else {}
    if formats[ext] == "JPEG":
        opts = {"quality": 100}
    _write_atomic(path, lambda fh: Image.fromarray(out).save(fh, format=formats[ext], **opts))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="inpcodec")
def main():
    """inpcodec: image compression with homogeneous diffusion inpainting."""


def _jpeg_at_size(img: np.ndarray, max_bytes: int):
    """Pillow JPEG (optimised Huffman) of the largest quality whose file fits in max_bytes."""
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    best = None
    for q in range(1, 96):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q, optimize=True)
        if buf.tell() > max_bytes:
            break
        best = (q, buf.getvalue())
    if best is None:
        return None
    with Image.open(io.BytesIO(best[1])) as im:
        dec = np.asarray(im.convert("L" if img.ndim == 2 else "RGB"))
    return best[0], len(best[1]), dec


def _print_report(r, name):
    from bitstreams.container import COLOUR_NAMES  # noqa: PLC0415

    colour = COLOUR_NAMES[0 if r.channels == 1 else 1]
    click.echo(f"image      {name}  {r.width}x{r.height}, {colour}")
    click.echo(f"mask       {r.encoder}, {r.points} points = {r.density * 100:.2f} %"
               f"{', tonal optimisation' if r.tonal else ''}, "
               f"levels {r.levels}" + (f"/{r.chroma_levels}" if r.channels == 3 else ""))
    click.echo(f"size       {len(r.data)} bytes = {r.bpp:.4f} bpp (header {r.bytes_header}, "
               f"mask {r.bytes_mask}: {r.mask_bits_per_point:.2f} bits/point, values "
               f"{r.bytes_values}: {r.value_bits_per_point:.2f} bits/value)")
    click.echo(f"time       encode {r.encode_seconds:.2f} s, decode {r.decode_seconds:.2f} s")
    click.echo(f"PSNR       {r.psnr:.2f} dB" + (f" (luma {r.psnr_luma:.2f} dB)"
                                                  if r.channels == 3 else ""))


@main.command()
@click.option("--image", type=click.Path(dir_okay=False), default=None,
              help="Image to use instead of the bundled 512x512 cameraman.")
@click.option("--density", type=float, default=0.03, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write the decoded image here.")
@_clean_errors
def demo(image, density, output):
    """Round trip a bundled image: encode, decode, PSNR, time, and JPEG at the same size."""
    from skimage.metrics import peak_signal_noise_ratio  # noqa: PLC0415

    from codec.data import cameraman  # noqa: PLC0415
    from codec.pipeline import encode_report  # noqa: PLC0415

    if output:
        _check_output_path(output)
    img = cameraman() if image is None else load_image(image)
    r = encode_report(img, encoder="belhachmi", density=density, tonal=True)
    _print_report(r, "bundled cameraman" if image is None else image)
    jp = _jpeg_at_size(img, len(r.data))
    if jp is None:
        click.echo("JPEG       no JPEG quality fits in the same number of bytes")
    else:
        q, n, dec = jp
        jbpp = 8 * n / (img.shape[0] * img.shape[1])
        jpsnr = peak_signal_noise_ratio(img, dec, data_range=255)
        click.echo(f"JPEG       quality {q}, {n} bytes = {jbpp:.4f} bpp, PSNR {jpsnr:.2f} dB "
                   "(Pillow, optimised Huffman, at most the same size)")
    if output:
        save_image(output, r.decoded)
        click.echo(f"written    {output}")


ENCODER_CHOICES = ["belhachmi", "ps", "ps+nlpe", "random", "learned"]


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--encoder", type=click.Choice(ENCODER_CHOICES), default="belhachmi",
              show_default=True, help="How the mask is chosen.")
@click.option("--density", type=float, default=None,
              help="Fraction of pixels stored, in (0, 1] (default 0.04 unless --bpp).")
@click.option("--bpp", type=float, default=None, help="Target size in bits per pixel.")
@click.option("--levels", type=int, default=None,
              help="Quantisation levels of the (luma) values (default 64, searched with --bpp).")
@click.option("--chroma-levels", type=int, default=None,
              help="Quantisation levels of the chroma values (default: half of --levels).")
@click.option("--tonal/--no-tonal", default=True, show_default=True,
              help="Optimise the stored values (quantiser in the loop).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--drop-alpha", is_flag=True, help="Encode RGBA/LA images without their alpha.")
@click.option("--quiet", "-q", is_flag=True)
@_clean_errors
def encode(input_path, output_path, encoder, density, bpp, levels, chroma_levels, tonal,
           seed, drop_alpha, quiet):
    """Compress image IN into the inpcodec file OUT."""
    from codec.pipeline import encode_report  # noqa: PLC0415

    if density is not None and bpp is not None:
        raise ValueError("give either --density or --bpp, not both")
    if density is None and bpp is None:
        density = 0.04
    if density is not None and not 0.0 < density <= 1.0:
        raise ValueError(f"--density must lie in (0, 1], got {density}")
    _check_output_path(output_path)
    img = load_image(input_path, drop_alpha=drop_alpha)
    r = encode_report(img, encoder=encoder, density=density, bpp=bpp, levels=levels,
                      chroma_levels=chroma_levels, tonal=tonal, seed=seed,
                      progress=not quiet)
    _write_atomic(output_path, lambda fh: fh.write(r.data))
    if not quiet:
        _print_report(r, input_path)
        click.echo(f"written    {output_path}")


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--solver", type=click.Choice(SOLVER_CHOICES), default="numba", show_default=True,
              help="numba: the reference, identical pixels on every machine; cupy (auto on a "
              "CUDA machine): faster, rare pixels may differ by one grey level.")
@click.option("--postprocess", type=click.Choice(["none", "gan"]), default="none",
              show_default=True, help="Optional post-processor of the reconstruction.")
@_clean_errors
def decode(input_path, output_path, solver, postprocess):
    """Decode the inpcodec file IN into the image OUT (format from its extension)."""
    from codec.pipeline import decode as decode_bytes  # noqa: PLC0415

    _check_output_path(output_path)
    ext = os.path.splitext(output_path)[1].lower()
    if ext not in (".png", ".pgm", ".ppm", ".pnm", ".tif", ".tiff", ".bmp", ".webp", ".jpg",
                   ".jpeg"):
        raise ValueError(f"{output_path}: unknown image extension {ext or '(none)'}")
    data = _read_bytes(input_path)
    img = decode_bytes(data, solver=solver, postprocess=postprocess)
    save_image(output_path, img)


def _read_bytes(path: str) -> bytes:
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder")
    with open(path, "rb") as fh:
        return fh.read()


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@_clean_errors
def info(input_path):
    """Show the header of the inpcodec file IN and where its bits go."""
    from codec.pipeline import info as file_info  # noqa: PLC0415

    i = file_info(_read_bytes(input_path))
    px = i.width * i.height
    click.echo(f"size         {i.width}x{i.height}, {i.channels} channel(s), {i.colour}")
    click.echo("format       inpcodec version 1, quadtree mask coder, predictive value coder")
    chroma = f" (chroma {i.chroma_levels})" if i.channels == 3 else ""
    click.echo(f"levels       {i.levels}{chroma}")
    click.echo(f"mask         {i.points} points = {100 * i.points / px:.2f} % of the pixels")
    click.echo(f"bytes        {i.bytes_total} = {i.bpp:.4f} bpp")
    click.echo(f"  header      {i.bytes_header} ({8 * i.bytes_header / px:.4f} bpp)")
    click.echo(f"  mask        {i.bytes_mask} ({8 * i.bytes_mask / px:.4f} bpp, "
               f"{8 * i.bytes_mask / i.points:.2f} bits/point)")
    for c, n in enumerate(i.bytes_values):
        name = ("luma" if c == 0 else ("Cb" if c == 1 else "Cr")) if i.channels == 3 else "grey"
        click.echo(f"  {name + ' values':<12} {n} ({8 * n / px:.4f} bpp, "
                   f"{8 * n / i.points:.2f} bits/value)")


MASK_METHODS = ["random", "belhachmi", "ps", "ps+nlpe", "learned"]


@main.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--method", type=click.Choice(MASK_METHODS), default="belhachmi",
              show_default=True)
@click.option("--density", type=float, default=0.04, show_default=True,
              help="Fraction of pixels in the mask, in (0, 1].")
@click.option("--tonal/--no-tonal", default=False, show_default=True,
              help="Optimise the stored grey values too (reported PSNR and --reconstruction).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--runs", type=int, default=5, show_default=True, help="PS: best of this many.")
@click.option("--cycles", type=float, default=10.0, show_default=True, help="NLPE cycles.")
@click.option("--sigma", type=float, default=None,
              help="Belhachmi: Gaussian pre-smoothing (default: 0.35 / sqrt(density)).")
@click.option("--max-seconds", type=float, default=None,
              help="Time budget of each stochastic stage (PS, NLPE, tonal).")
@click.option("--samples", type=int, default=1, show_default=True,
              help="Learned: best of this many coin-flip binarisations (judged by the decoder).")
@click.option("--binarisation", type=click.Choice(["dither", "coin"]), default="dither",
              show_default=True, help="Learned: Floyd-Steinberg (what the shipped network "
              "was trained for) or weighted coin flip.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Learned: mask network weights (default: the shipped ones).")
@click.option("--reconstruction", type=click.Path(dir_okay=False), default=None,
              help="Also write the inpainted image to this PNG file.")
@_clean_errors
def mask(image, output, method, density, tonal, seed, runs, cycles, sigma, max_seconds,
         samples, binarisation, weights, reconstruction):
    """Compute an inpainting mask for IMAGE and write it to OUTPUT (PNG, white = kept).

    Reports the mask's PSNR with homogeneous diffusion inpainting, the number of
    inpaintings spent and the wall time.
    """
    from skimage.metrics import peak_signal_noise_ratio  # noqa: PLC0415

    from baselines import (  # noqa: PLC0415
        belhachmi_mask,
        nonlocal_pixel_exchange,
        probabilistic_sparsification,
        tonal_optimisation,
    )
    from codec import inpaint  # noqa: PLC0415

    if not 0.0 < density <= 1.0:
        raise ValueError(f"--density must lie in (0, 1], got {density}")
    for path in (output, reconstruction):
        if path:
            _check_output_path(path)
    f = load_image(image, grey=True).astype(np.float64)
    t0 = time.perf_counter()
    spent = 0
    if method == "random":
        rng = np.random.default_rng(seed)
        m = np.zeros(f.size, bool)
        m[rng.choice(f.size, max(1, round(density * f.size)), replace=False)] = True
        m = m.reshape(f.shape)
    elif method == "belhachmi":
        m = belhachmi_mask(f, density, sigma="auto" if sigma is None else sigma).mask
    elif method == "learned":
        from learned_masks import learned_mask, load_mask_network  # noqa: PLC0415

        res = learned_mask(f, density, samples=samples, binarisation=binarisation,
                           seed=seed, network=load_mask_network(weights))
        m, spent = res.mask, res.inpaintings
    else:
        res = probabilistic_sparsification(f, density, runs=runs, seed=seed,
                                           max_seconds=max_seconds, progress=True)
        m, spent = res.mask, res.inpaintings
        if method == "ps+nlpe":
            res = nonlocal_pixel_exchange(f, m, cycles=cycles, seed=seed,
                                          max_seconds=max_seconds, progress=True)
            m, spent = res.mask, spent + res.inpaintings
    mask_seconds = time.perf_counter() - t0
    values = f
    if tonal:
        tr = tonal_optimisation(f, m, max_seconds=max_seconds, progress=True)
        values, spent = tr.values, spent + tr.inpaintings
    u = np.clip(np.rint(inpaint(values, m)), 0, 255)
    psnr = peak_signal_noise_ratio(f.astype(np.uint8), u.astype(np.uint8), data_range=255)
    save_image(output, m.astype(np.uint8) * 255)
    if reconstruction:
        save_image(reconstruction, u)
    click.echo(f"mask       {method}, {int(m.sum())} pixels = {m.mean() * 100:.2f} %"
               f"{' + tonal optimisation' if tonal else ''}")
    click.echo(f"cost       {spent} inpaintings, {mask_seconds:.2f} s for the mask, "
               f"{time.perf_counter() - t0:.2f} s in all")
    click.echo(f"PSNR       {psnr:.2f} dB (homogeneous diffusion inpainting)")
    click.echo(f"written    {output}" + (f", {reconstruction}" if reconstruction else ""))


@main.command("train-masks")
@click.option("--data", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Training image folder (searched recursively); repeat for several.")
@click.option("--val", multiple=True, type=click.Path(file_okay=False),
              help="Validation image folder (its first --val-images images, centre 256x256).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (.safetensors); OUT.ckpt and OUT.json beside it.")
@click.option("--density", type=float, default=None,
              help="Train for this one density (the seed's way) instead of a range.")
@click.option("--density-min", type=float, default=0.01, show_default=True)
@click.option("--density-max", type=float, default=0.10, show_default=True)
@click.option("--steps", type=int, default=5000, show_default=True)
@click.option("--minutes", type=float, default=None, help="Stop after this wall time.")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--crop", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--alpha", type=float, default=0.01, show_default=True,
              help="Weight of the inverse-variance regulariser.")
@click.option("--loss-scale", type=float, default=1.0, show_default=True,
              help="Multiplies u - f in the inpainting loss (255: 8-bit grey units).")
@click.option("--inpainter", type=click.Choice(["surrogate", "exact"]), default="surrogate",
              show_default=True, help="What reconstructs during training: the seed's "
              "surrogate U-net (residual loss), or the real solver with exact adjoint gradients.")
@click.option("--train-mask", type=click.Choice(["soft", "dither", "coin"]), default="soft",
              show_default=True, help="With --inpainter exact: inpaint with the network's "
              "soft mask (the seed's way) or with its dithered or coin-flipped binary mask "
              "(gradient passed straight through).")
@click.option("--prior", type=click.Choice(["none", "belhachmi"]), default="none",
              show_default=True, help="'belhachmi': the network refines Belhachmi's density "
              "map (and starts as exactly that map); 'none': the seed's network.")
@click.option("--init", type=click.Path(dir_okay=False), default=None,
              help="Weights file to start from (fine-tuning).")
@click.option("--val-every", type=int, default=250, show_default=True)
@click.option("--val-images", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt.")
@_clean_errors
def train_masks(data, val, out, density, density_min, density_max, steps, minutes, batch,
                crop, lr, alpha, loss_scale, inpainter, train_mask, prior, init, val_every,
                val_images, seed, threads, resume):
    """Train the mask network jointly with its surrogate inpainting network.

    Writes the mask network to OUT (safetensors) with a provenance JSON beside it; a
    checkpoint every validation lets --resume continue an interrupted run.
    """
    from learned_masks.training import TrainConfig, train  # noqa: PLC0415

    if density is not None:
        if not 0.0 < density <= 1.0:
            raise ValueError(f"--density must lie in (0, 1], got {density}")
        density_min = density_max = density
    if not 0.0 < density_min <= density_max <= 1.0:
        raise ValueError(f"need 0 < --density-min <= --density-max <= 1, got "
                         f"{density_min}, {density_max}")
    for name, v in (("steps", steps), ("batch", batch), ("val-every", val_every)):
        if v < 1:
            raise ValueError(f"--{name} must be at least 1, got {v}")
    if crop < 32 or crop % 16:
        raise ValueError(f"--crop must be a multiple of 16 and at least 32, got {crop}")
    if train_mask != "soft" and inpainter != "exact":
        raise ValueError("--train-mask dither/coin needs --inpainter exact")
    if init is not None and not os.path.isfile(init):
        raise ValueError(f"--init: no weights file {init!r}")
    _check_output_path(out)
    cfg = TrainConfig(data=list(data), val=list(val), density_min=density_min,
                      density_max=density_max, conditioned=density is None, crop=crop,
                      batch=batch, steps=steps, minutes=minutes, lr=lr, alpha=alpha,
                      loss_scale=loss_scale, inpainter=inpainter, train_mask=train_mask,
                      prior=prior, init=init, seed=seed, val_every=val_every,
                      val_images=val_images, threads=threads)
    command = "inpcodec " + " ".join(sys.argv[1:])
    prov = train(cfg, out, resume=resume, progress=True, command=command,
                 log=lambda s: click.echo(s, err=True))
    click.echo(f"wrote {out} after {prov['steps']} steps ({prov['wall_time_minutes']} min); "
               f"validation PSNR {prov['validation']['final_psnr']}")


@main.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("holes", type=click.Path(dir_okay=False))
@click.argument("output", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Generator weights trained with --task holes (default: the shipped ones).")
@click.option("--drop-alpha", is_flag=True, help="Accept an RGBA/LA IMAGE, ignoring its alpha.")
@_clean_errors
def inpaint(image, holes, output, weights, drop_alpha):
    """Fill the holes of IMAGE with the GAN inpainter (MHTMA) and write OUT.

    HOLES is a mask image of the same size: nonzero pixels are holes.  Pixels outside the
    holes are kept exactly.
    """
    from codec.postprocess import inpaint_holes, load_generator  # noqa: PLC0415

    _check_output_path(output)
    ext = os.path.splitext(output)[1].lower()
    if ext not in IMAGE_SUFFIXES:
        raise ValueError(f"{output}: unknown image extension {ext or '(none)'}")
    img = load_image(image, drop_alpha=drop_alpha)
    mask = load_image(holes, grey=True, drop_alpha=True)
    if mask.shape != img.shape[:2]:
        raise ValueError(f"{holes}: the mask is {mask.shape[1]}x{mask.shape[0]} but the image "
                         f"is {img.shape[1]}x{img.shape[0]}")
    hole = mask > 0
    if not hole.any():
        raise ValueError(f"{holes}: the mask has no hole (no nonzero pixel)")
    if hole.all():
        raise ValueError(f"{holes}: the mask covers the whole image: nothing to inpaint from")
    net = load_generator(weights, task="holes")
    t0 = time.perf_counter()
    out = inpaint_holes(img, hole, network=net)
    seconds = time.perf_counter() - t0
    save_image(output, out)
    click.echo(f"inpainted  {hole.mean() * 100:.1f} % of {img.shape[1]}x{img.shape[0]} in "
               f"{seconds:.2f} s; written {output}")


@main.command("train-gan")
@click.option("--task", type=click.Choice(["postprocess", "holes"]), required=True,
              help="postprocess: refine decoder outputs; holes: fill free-form holes.")
@click.option("--data", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Training image folder (searched recursively); repeat for several.")
@click.option("--val", multiple=True, type=click.Path(file_okay=False),
              help="Validation image folder (its first --val-images images, centre 256x256).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (.safetensors); OUT.ckpt and OUT.json beside it.")
@click.option("--cache", type=click.Path(file_okay=False), default=None,
              help="postprocess: folder of the decoder cache (default: OUT's folder/"
              "<OUT stem>-cache); made once, reused and resumed.")
@click.option("--prepare-only", is_flag=True, help="postprocess: make the cache, then stop.")
@click.option("--variants", type=int, default=2, show_default=True,
              help="postprocess: encodings per training image in the cache.")
@click.option("--tonal/--no-tonal", default=True, show_default=True,
              help="postprocess: tonal optimisation in the cached encodes (as the codec).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="postprocess: processes encoding the cache.")
@click.option("--steps", type=int, default=100000, show_default=True)
@click.option("--minutes", type=float, default=None, help="Stop training after this wall time.")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--crop", type=int, default=128, show_default=True,
              help="Training crop side (multiple of 64); the local critic sees min(128, "
              "crop/2), the hole square is 96 crop/256.")
@click.option("--width", type=int, default=12, show_default=True,
              help="Generator feature channels at full resolution (2x, 4x below).")
@click.option("--heads", type=int, default=2, show_default=True, help="MHTMA heads.")
@click.option("--skip/--no-skip", default=True, show_default=True,
              help="Full-resolution skip of each stage's input into its last gated "
              "convolution (--no-skip: the seed's plain decoders).")
@click.option("--full-res-layers", type=int, default=None,
              help="Gated convolutions (2x width) at the refinement's full-resolution end, "
              "all seeing its input (default 3 with the skip; 1: a single last gated "
              "convolution, as without the skip).")
@click.option("--lr-g", type=float, default=1e-4, show_default=True)
@click.option("--lr-d", type=float, default=1e-4, show_default=True)
@click.option("--adversarial-weight", type=float, default=0.01, show_default=True,
              help="Weight of the generator's hinge adversarial term (the seed's 0.01; 0: "
              "no adversarial term, the discriminator still trains for feature matching).")
@click.option("--vgg16", type=click.Path(dir_okay=False), default=None,
              help="Local torchvision VGG16 weights (.pth or .safetensors) for the perceptual "
              "loss; without, discriminator feature matching stands in (recorded).")
@click.option("--init", type=click.Path(dir_okay=False), default=None,
              help="Start from these weights (fine-tuning): a generator .safetensors or a "
              "train-gan .ckpt (with its discriminator); same architecture; fresh optimisers.")
@click.option("--val-every", type=int, default=250, show_default=True)
@click.option("--val-images", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="Torch (and Numba) CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt.")
@_clean_errors
def train_gan(task, data, val, out, cache, prepare_only, variants, tonal, workers, steps,
              minutes, batch, crop, width, heads, skip, full_res_layers, lr_g, lr_d,
              adversarial_weight, vgg16, init, val_every, val_images, seed, threads, resume):
    """Train the GAN inpainter (MHTMA) for the decoder post-processor or for holes.

    Writes the generator to OUT (safetensors) with a provenance JSON beside it; a
    checkpoint every validation lets --resume continue an interrupted run.
    """
    from pathlib import Path  # noqa: PLC0415

    from codec.postprocess.data import prepare_cache  # noqa: PLC0415
    from codec.postprocess.training import (  # noqa: PLC0415
        TrainConfig,
        cache_folder,
        cache_settings,
        train,
    )

    if minutes is not None and minutes <= 0:
        raise ValueError(f"--minutes must be positive, got {minutes}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    if prepare_only and task != "postprocess":
        raise ValueError("--prepare-only makes the decoder cache of --task postprocess")
    if vgg16 is not None and not os.path.isfile(vgg16):
        raise ValueError(f"--vgg16: no such file {vgg16}")
    if init is not None and not os.path.isfile(init):
        raise ValueError(f"--init: no such file {init}")
    if init is not None and resume:
        raise ValueError("--init starts a new run; --resume continues OUT's checkpoint")
    _check_output_path(out)
    cfg = TrainConfig(task=task, data=list(data), val=list(val), cache=cache, width=width,
                      heads=heads, skip=skip, full_res_layers=full_res_layers, crop=crop,
                      batch=batch, steps=steps, minutes=minutes, lr_g=lr_g, lr_d=lr_d,
                      lambda_adversarial=adversarial_weight, vgg16=vgg16, init=init, seed=seed,
                      val_every=val_every, val_images=val_images, threads=threads,
                      variants=variants, tonal=tonal, workers=workers)
    cfg.check()
    log = lambda s: click.echo(s, err=True)  # noqa: E731
    if prepare_only:
        if threads:
            import torch  # noqa: PLC0415

            torch.set_num_threads(threads)
        info = prepare_cache(cache_settings(cfg), cache_folder(cfg, Path(out)),
                             workers=workers, threads=threads, progress=True, log=log)
        click.echo(f"decoder cache {info['folder']}: {info['items']} items "
                   f"({info['minutes']} min now)")
        return
    command = "inpcodec " + " ".join(sys.argv[1:])
    prov = train(cfg, out, resume=resume, progress=True, command=command, log=log)
    click.echo(f"wrote {out} after {prov['steps']} steps ({prov['wall_time_minutes']} min); "
               f"validation {prov['validation']['final']}")




def _floats(text: str, name: str, scale: float = 1.0) -> list[float]:
    try:
        vals = [float(x) * scale for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--{name}: not a comma-separated list of numbers: {text!r}") from None
    if not vals or any(not v > 0 for v in vals):
        raise ValueError(f"--{name}: give positive numbers, got {text!r}")
    return vals


@main.command()
@click.argument("data_dir", metavar="DATA_DIR", type=click.Path(file_okay=False))
@click.option("--codecs", default="jpeg,jpeg2000,webp,avif,belhachmi,learned",
              show_default=True, help="Reference codecs (jpeg, jpeg2000, webp, avif) and "
              "inpcodec encoders (belhachmi, learned, ps, ps+nlpe; add -notonal for no "
              "tonal optimisation, -gan to decode with the GAN post-processor).")
@click.option("--bpp", default="0.05,0.1,0.2,0.3,0.5", show_default=True,
              help="Target rates (bits per pixel).")
@click.option("--grey", is_flag=True, help="Benchmark the luma (grey) of the images.")
@click.option("--out", default="bench-results", show_default=True,
              type=click.Path(file_okay=False), help="Result folder (runs resume in it).")
@click.option("--speed", is_flag=True, help="Encoder-speed study instead: mask generation "
              "time and inpaintings per encoder and density, speed-up over PS+NLPE.")
@click.option("--encoders", default="learned,belhachmi,ps,ps+nlpe", show_default=True,
              help="Encoders of the speed study.")
@click.option("--densities", default="2,3,4,5,7,10", show_default=True,
              help="Mask densities of the speed study (percent).")
@click.option("--limit", type=int, default=None, help="Only the first N images.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler to run the jobs on (default: local processes).")
@click.option("--workers", type=int, default=None,
              help="Local worker processes (default: one per core; 1 for --speed).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_clean_errors
def bench(data_dir, codecs, bpp, grey, out, speed, encoders, densities, limit, scheduler,
          workers, seed, quiet):
    """Rate-distortion benchmark of the images in DATA_DIR against JPEG, JPEG 2000, WebP
    and AVIF (or, with --speed, the encoder-speed study).

    Writes, under OUT/<grey|colour>: results.csv, per_image/*.csv, compressai/<codec>.json
    (CompressAI's results layout), rd_psnr.png, rd_ms_ssim.png, bd.csv and bd_mean.csv
    (Bjontegaard deltas against JPEG and JPEG 2000, per image and of the mean curves) and
    summary.md; finished jobs are kept in OUT/jobs and skipped when the command runs again.
    """
    try:
        import dask.distributed  # noqa: F401, PLC0415

        import codec.bench as cb  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(f"inpcodec bench needs the bench extra ({exc.name} is missing): "
                           "pip install 'inpcodec[bench]'") from None
    if not os.path.isdir(data_dir):
        raise ValueError(f"{data_dir}: no such folder")
    paths = sorted(p for p in os.listdir(data_dir) if p.lower().endswith(IMAGE_SUFFIXES))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        paths = paths[:limit]
    if not paths:
        raise ValueError(f"{data_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    images = {}
    for p in paths:
        img = load_image(os.path.join(data_dir, p), grey=grey or speed)
        if img.ndim == 2 and not (grey or speed):
            raise ValueError(f"{p}: a grey image; benchmark grey images with --grey")
        images[os.path.splitext(p)[0]] = img
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"{out}: exists and is not a folder")
    os.makedirs(out, exist_ok=True)
    if speed:
        dens = [d / 100 for d in _floats(densities, "densities")]
        if any(d > 1 for d in dens):
            raise ValueError("--densities are percentages in (0, 100]")
        text = cb.run_speed_benchmark(images, out, encoders=encoders.split(","),
                                      densities=dens, scheduler=scheduler,
                                      workers=workers or 1, seed=seed, progress=not quiet)
    else:
        text = cb.run_rate_benchmark(images, out, codecs=codecs.split(","),
                                     bpp=_floats(bpp, "bpp"),
                                     mode="grey" if grey else "colour", scheduler=scheduler,
                                     workers=workers, seed=seed, progress=not quiet)
    click.echo(text)


if __name__ == "__main__":
    main()
