"""The ``inpcodec`` command line."""

from __future__ import annotations

import functools
import os
import sys
import time

import click
import numpy as np

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


def _load_grey(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "RGB", "P", "1"):
                raise ValueError(
                    f"{path}: unsupported image mode {im.mode} (need 8-bit grey or RGB)")
            return np.asarray(im.convert("L"))
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file Pillow can read") from None


def _check_output_path(path: str) -> None:
    """Refuse before any work if the output cannot be written (no partial files later)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{path}: output folder is not writable")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder")


def _save_png(path: str, img: np.ndarray) -> None:
    """Write atomically: a temporary file next to the target, renamed when complete."""
    from PIL import Image  # noqa: PLC0415

    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    tmp = f"{path}.tmp{os.getpid()}.png"
    try:
        Image.fromarray(out).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="inpcodec")
def main():
    """inpcodec: image compression with homogeneous diffusion inpainting."""


@main.command()
@click.option("--image", type=click.Path(dir_okay=False), default=None,
              help="Grey image to use instead of the bundled 512x512 cameraman.")
@click.option("--density", type=float, default=0.04, show_default=True,
              help="Fraction of pixels kept (random mask).")
@click.option("--solver", type=click.Choice(SOLVER_CHOICES), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random mask.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write the reconstruction to this PNG file.")
@_clean_errors
def demo(image, density, solver, seed, output):
    """Reconstruct an image from a random sparse mask and report PSNR and time."""
    from skimage.metrics import peak_signal_noise_ratio  # noqa: PLC0415

    from codec import Inpainter  # noqa: PLC0415
    from codec.data import cameraman  # noqa: PLC0415

    if not 0.0 < density <= 1.0:
        raise ValueError(f"--density must lie in (0, 1], got {density}")
    f = cameraman() if image is None else _load_grey(image)
    name = "bundled cameraman" if image is None else image
    rng = np.random.default_rng(seed)
    mask = rng.random(f.shape) < density
    if not mask.any():
        mask.flat[rng.integers(mask.size)] = True
    t0 = time.perf_counter()
    ip = Inpainter(mask, solver=solver)
    u, info = ip.solve(f.astype(np.float64), return_info=True)
    elapsed = time.perf_counter() - t0
    decoded = np.clip(np.rint(u), 0, 255).astype(np.uint8)
    psnr = peak_signal_noise_ratio(f, decoded, data_range=255)
    click.echo(f"image      {name}  {f.shape[1]}x{f.shape[0]}")
    click.echo(f"mask       random, {mask.mean() * 100:.2f} % of pixels known (seed {seed})")
    click.echo(f"solver     {info.solver}, {info.levels} multigrid levels, "
               f"{info.iterations} iterations, relative residual {info.residual:.1e}")
    click.echo(f"time       {elapsed * 1e3:.1f} ms (set-up {info.setup_time * 1e3:.1f} ms, "
               f"solve {info.solve_time * 1e3:.1f} ms)")
    click.echo(f"PSNR       {psnr:.2f} dB")
    if output:
        _save_png(output, decoded)
        click.echo(f"written    {output}")


MASK_METHODS = ["random", "belhachmi", "ps", "ps+nlpe"]


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
@click.option("--sigma", type=float, default=1.0, show_default=True,
              help="Belhachmi: Gaussian pre-smoothing.")
@click.option("--max-seconds", type=float, default=None,
              help="Time budget of each stochastic stage (PS, NLPE, tonal).")
@click.option("--reconstruction", type=click.Path(dir_okay=False), default=None,
              help="Also write the inpainted image to this PNG file.")
@_clean_errors
def mask(image, output, method, density, tonal, seed, runs, cycles, sigma, max_seconds,
         reconstruction):
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
    f = _load_grey(image).astype(np.float64)
    t0 = time.perf_counter()
    spent = 0
    if method == "random":
        rng = np.random.default_rng(seed)
        m = np.zeros(f.size, bool)
        m[rng.choice(f.size, max(1, round(density * f.size)), replace=False)] = True
        m = m.reshape(f.shape)
    elif method == "belhachmi":
        m = belhachmi_mask(f, density, sigma=sigma).mask
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
    _save_png(output, m.astype(np.uint8) * 255)
    if reconstruction:
        _save_png(reconstruction, u)
    click.echo(f"mask       {method}, {int(m.sum())} pixels = {m.mean() * 100:.2f} %"
               f"{' + tonal optimisation' if tonal else ''}")
    click.echo(f"cost       {spent} inpaintings, {mask_seconds:.2f} s for the mask, "
               f"{time.perf_counter() - t0:.2f} s in all")
    click.echo(f"PSNR       {psnr:.2f} dB (homogeneous diffusion inpainting)")
    click.echo(f"written    {output}" + (f", {reconstruction}" if reconstruction else ""))


if __name__ == "__main__":
    main()
