"""The ``inpcodec`` command line: a thin layer over the Python API.

Every command that reads an image takes ``-`` for standard input, and every command that
writes one takes ``-`` for standard output (its reports then go to standard error).
Expected failures (bad input, an impossible rate, a damaged file) print one line and exit
with code 2; Ctrl-C exits with 130; no command leaves a partial output file behind or
overwrites one of its own inputs.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import threading
import time
import warnings

import click
import numpy as np
from PIL import Image

from inpcodec.codec import io as iio
from inpcodec.codec import postprocess as _postprocess  # noqa: F401 (registers "gan")
from inpcodec.codec.bench import DEFAULT_CODECS
from inpcodec.codec.bench.refcodecs import pillow_decode, pillow_encode
from inpcodec.codec.data import cameraman
from inpcodec.codec.decoder import decode as decode_bytes
from inpcodec.codec.decoder import info as file_info
from inpcodec.codec.decoder import metadata_nbytes, read_metadata
from inpcodec.codec.diffusion import inpaint as diffusion_inpaint
from inpcodec.codec.diffusion import kernels_cached, off_solve, on_solve
from inpcodec.codec.encoders import encoder_names, get_encoder, make_mask
from inpcodec.codec.limits import DEFAULT_MAX_PIXELS, require_learned
from inpcodec.codec.metrics import psnr
from inpcodec.codec.pipeline import DEFAULT_ENCODER, DEFAULT_QUALITY, encode_report
from inpcodec.codec.precision import PRECISIONS, TRAINING_PRECISIONS
from inpcodec.codec.rate import DEFAULT_EFFORT, EFFORTS
from inpcodec.codec.tonal import tonal_optimisation

SOLVER_CHOICES = ["auto", "numba", "cupy", "direct"]
STDIO = "-"


def _by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt: Ctrl-C inside
    a Numba kernel surfaces as ``SystemError: CPUDispatcher(...) returned a result with an
    exception set`` whose context is the interrupt."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


#: Set by :func:`_on_sigint`.  A Ctrl-C that lands in a ctypes callback (llvmlite's, while
#: Numba compiles a kernel on a first run) is swallowed there and only printed as
#: "Exception ignored ..."; the flag keeps it, and the output is then not written.
_INTERRUPTED = False


def _in_jit(frame) -> bool:
    """Whether ``frame`` or a caller of it is Numba's or llvmlite's (loading or compiling
    a kernel)."""
    while frame is not None:
        name = frame.f_code.co_filename
        if f"{os.sep}numba{os.sep}" in name or f"{os.sep}llvmlite{os.sep}" in name:
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum, frame):
    global _INTERRUPTED
    _INTERRUPTED = True
    if _in_jit(frame):
        # an exception raised while Numba loads or compiles a kernel (in llvmlite's
        # callbacks) can leave LLVM half done: swallowed there, or a segmentation fault
        # at exit.  The next solve raises it instead (_raise_if_interrupted), or the
        # output is not written
        return
    raise KeyboardInterrupt


def _raise_if_interrupted(pixels) -> None:
    """A solve hook: the Ctrl-C that :func:`_on_sigint` left for later."""
    if _INTERRUPTED:
        raise KeyboardInterrupt


def _interrupts_kept(hook):
    """``sys.unraisablehook`` that leaves swallowed Ctrl-Cs to :data:`_INTERRUPTED`."""

    def keep(unraisable):
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            hook(unraisable)

    return keep


def _clean_errors(fn):
    """Turn expected failures into a one-line message and exit code 2 (no traceback), and
    Ctrl-C into one line and exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _INTERRUPTED
        _INTERRUPTED = False
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, _on_sigint)
        if not getattr(sys.unraisablehook, "_keeps_interrupts", False):
            sys.unraisablehook = _interrupts_kept(sys.unraisablehook)
            sys.unraisablehook._keeps_interrupts = True
        on_solve(_raise_if_interrupted)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _by_interrupt(exc):
                click.echo("inpcodec: interrupted", err=True)
                sys.exit(130)
            if not isinstance(exc, (ValueError, RuntimeError, OSError, MemoryError)):
                raise
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"inpcodec: error: {msg}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("inpcodec: interrupted", err=True)
            sys.exit(130)
        finally:
            off_solve(_raise_if_interrupted)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    return wrapper


class _Out:
    """Where a command's results go: a file (written atomically at the end) or stdout.

    With ``-`` the reports go to standard error, so standard output holds the data alone.
    """

    def __init__(self, path: str, inputs=(), quiet: bool = False):
        self.path, self.quiet = path, quiet
        self.stdout = path == STDIO
        if not self.stdout:
            iio.check_output_path(path, [p for p in inputs if p not in (None, STDIO)])

    @property
    def name(self) -> str:
        return "standard output" if self.stdout else self.path

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=self.stdout)

    def write(self, data: bytes) -> None:
        if _INTERRUPTED:  # a Ctrl-C swallowed on the way: nothing is written
            raise KeyboardInterrupt
        if self.stdout:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            iio.write_atomic(self.path, data)


def _image_format(out: _Out, fmt: str | None) -> str:
    """Pillow format of an image output: --format, else the extension (PNG on stdout)."""
    if fmt is not None:
        return iio.image_format(f"x.{fmt.lower()}")
    return "PNG" if out.stdout else iio.image_format(out.path)


def _read(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == STDIO else iio.read_bytes(path)


def load_image(path: str, *, drop_alpha: bool = False, grey: bool = False,
               with_metadata: bool = False):
    """An image from a path or ``-`` (standard input), with the project's Pillow policy
    (and its metadata, with ``with_metadata``); its conversions (16 bits to 8) are
    printed as notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", iio.PrecisionWarning)
        if path == STDIO:
            img = iio.load_image(sys.stdin.buffer.read(), name="standard input",
                                 drop_alpha=drop_alpha, grey=grey,
                                 with_metadata=with_metadata)
        else:
            img = iio.load_image(path, drop_alpha=drop_alpha, grey=grey,
                                 with_metadata=with_metadata)
    for w in caught:
        if issubclass(w.category, iio.PrecisionWarning):
            click.echo(f"inpcodec: note: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return img


def _check_inpcodec_output(path: str) -> None:
    """Refuse an encode output whose extension names an image format: ``x.webp`` would
    hold an inpcodec file that nothing reading WebP can open."""
    if path == STDIO:
        return
    ext = os.path.splitext(path)[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is not None and fmt != "INPC":
        raise ValueError(f"{path}: {ext} names the {fmt} image format, but encode writes "
                         "inpcodec files; name it .inpc (decode writes "
                         f"{', '.join(sorted(iio.SAVE_FORMATS))})")


def _notice_compile() -> None:
    if not kernels_cached():
        click.echo("inpcodec: compiling the solver kernels (first run only, about 35 s)...",
                   err=True)


_DROP_ALPHA = click.option("--drop-alpha", is_flag=True,
                           help="Use an image with transparent pixels without its alpha "
                           "(fully opaque alpha is accepted without this).")
# "-q" was --quiet's short form up to 0.2; it is --quality's now, as in cjpeg and cwebp
_QUIET = click.option("--quiet", is_flag=True, help="Print nothing but errors.")
_STRIP = click.option("--strip", is_flag=True,
                      help="Drop the image's metadata (ICC profile, EXIF, XMP), which is kept "
                      "by default.")
_THREADS = click.option("--threads", type=click.IntRange(min=0), default=None,
                        help="Solver threads (default 1: one thread never loses much alone "
                        "and never collapses on a busy machine; 0: every core). Files and "
                        "pixels are the same for any count.")
_OUT_DIR = click.option(
    "--out-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
    help="A batch: every IN (files, folders, glob patterns) into DIR/<name>; outputs that "
    "exist are skipped unless --force; one line per file and a summary; exit 1 if any "
    "file failed.")
_JOBS = click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                     help="--out-dir: files at once, on local processes through Dask "
                     "(each with the cores shared out as its --threads).")
_SCHEDULER = click.option("--scheduler", default=None, metavar="ADDRESS",
                          help="--out-dir: run the files on this Dask scheduler's workers "
                          "(tcp://host:8786; they need inpcodec installed).")
_FORCE = click.option("--force", is_flag=True,
                      help="--out-dir: redo files whose output exists.")


def _files_or_batch(fn):
    """IN OUT, or IN... with --out-dir and the batch's options (encode, decode)."""
    for deco in reversed((
            click.argument("paths", metavar="IN OUT | IN... --out-dir DIR", nargs=-1,
                           required=True, type=click.Path(allow_dash=True)),
            _OUT_DIR, _JOBS, _SCHEDULER, _FORCE)):
        fn = deco(fn)
    return fn


def _batch_or_single(paths, out_dir, command: str):
    """(IN, OUT) of a single-file command, or None for a batch (``--out-dir``)."""
    if out_dir is not None:
        if STDIO in paths:
            raise ValueError("standard input (-) cannot be part of a batch")
        return None
    if len(paths) != 2:
        raise ValueError(f"give IN and OUT, or several inputs and --out-dir DIR "
                         f"(inpcodec {command} --help)")
    return paths


def _run_batch(kind, paths, out_dir, options, *, fmt="png", jobs, scheduler, threads, force,
               quiet) -> None:
    """Plan and run a batch, print a line per file and the summary; exit 1 if a file
    failed."""
    from inpcodec.codec import batch as B  # noqa: PLC0415

    plan = B.plan(kind, paths, out_dir, fmt=fmt)
    t0 = time.perf_counter()

    def said(row):
        for note in row["notes"]:
            click.echo(f"inpcodec: note: {row['source']}: {note}", err=True)
        if row["error"]:
            named = row["error"].startswith(row["source"])
            click.echo(f"inpcodec: error: {'' if named else row['source'] + ': '}"
                       f"{row['error']}", err=True)
        elif not quiet and not row.get("skipped"):
            extra = (f", {row['bpp']:.4f} bpp, {row['psnr']:.2f} dB"
                     if kind == "encode" else "")
            click.echo(f"{row['source']} -> {row['target']}: {row['bytes']} bytes{extra}, "
                       f"{row['seconds']:.1f} s")

    if not quiet:
        _notice_compile()
    rows = B.run_batch(plan, options, jobs=jobs, scheduler=scheduler, threads=threads,
                       force=force, on_row=said, stop=lambda: _INTERRUPTED)
    skipped = [r for r in rows if r.get("skipped")]
    failed = [r for r in rows if r["error"]]
    done = [r for r in rows if not r.get("skipped") and not r["error"]]
    if not quiet:
        for r in skipped:
            click.echo(f"{r['source']}: skipped, {r['target']} exists (--force redoes it)")
        size = (f": {sum(r['input_bytes'] for r in done)} -> "
                f"{sum(r['bytes'] for r in done)} bytes" if done else "")
        click.echo(f"{kind}d {len(done)} of {len(rows)} files ({len(skipped)} skipped, "
                   f"{len(failed)} failed) in {time.perf_counter() - t0:.1f} s{size}")
    if failed:
        sys.exit(1)


_FORMAT = click.option("--format", "fmt", default=None, metavar="EXT",
                       help="Image format of OUT (png, ppm, tiff, bmp, webp, jpg); default: "
                       "OUT's extension, PNG on standard output.")

_TRAIN_PRECISION = click.option(
    "--precision", type=click.Choice(list(TRAINING_PRECISIONS)), default="float32",
    show_default=True, help="Arithmetic of the forward passes: bfloat16 autocast is 1.5-1.7x "
    "faster on CPUs that compute it in hardware (AMX, AVX512-BF16); the weights stay "
    "float32. A resumed run takes the one given now.")

#: Options that belong to some mask encoders (checked against the registry).
ENCODER_OPTIONS = [
    click.option("--weights", type=click.Path(dir_okay=False), default=None,
                 help="learned, tree-learned: network weights (default: the shipped "
                 "ones)."),
    click.option("--precision", type=click.Choice(list(PRECISIONS)),
                 default=None, help="learned, tree-learned: the network's arithmetic "
                 "(auto: bfloat16 where the CPU computes it in hardware, else float32; "
                 "float32 gives the same masks on every machine type)."),
    click.option("--max-seconds", type=float, default=None,
                 help="ps, ps+nlpe: time budget of each stochastic stage."),
    click.option("--runs", type=int, default=None, help="ps: best of this many runs (5)."),
    click.option("--cycles", type=float, default=None, help="ps+nlpe: NLPE cycles (10)."),
    click.option("--sigma", type=float, default=None,
                 help="belhachmi: Gaussian pre-smoothing (default 0.35 / sqrt(density))."),
    click.option("--samples", type=int, default=None,
                 help="learned: best of this many coin-flip binarisations (1)."),
    click.option("--binarisation", type=click.Choice(["dither", "coin"]), default=None,
                 help="learned: Floyd-Steinberg (default; what the shipped network was "
                 "trained for) or weighted coin flip."),
]
_OPTION_NAMES = ("weights", "precision", "max_seconds", "runs", "cycles", "sigma", "samples",
                 "binarisation")


def _encoder_options(fn):
    for opt in reversed(ENCODER_OPTIONS):
        fn = opt(fn)
    return fn


def _pick_options(encoder: str, kwargs: dict) -> dict:
    """The encoder options the user gave; a one-line error for one that does not apply."""
    enc = get_encoder(encoder)
    given = {k: kwargs.pop(k) for k in _OPTION_NAMES}
    given = {k: v for k, v in given.items() if v is not None}
    for k in given:
        if k not in enc.options:
            takes = ", ".join("--" + o.replace("_", "-") for o in enc.options) or "none"
            raise ValueError(f"--{k.replace('_', '-')} does not apply to --encoder {encoder} "
                             f"(its options: {takes})")
    return given


def _encoder_help() -> str:
    return "; ".join(f"{n}: {get_encoder(n).summary}" for n in encoder_names())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="inpcodec")
def main():
    """inpcodec: image compression with homogeneous diffusion inpainting.

    \b
    Compress and view a photo:
      inpcodec encode photo.png photo.inpc          (quality 50; -q 0-100, --bpp, --psnr)
      inpcodec decode photo.inpc photo-decoded.png

    By default the stored pixels are the corners and centres of a quadtree grown by
    inpainting error and pruned where a split's bits buy least error (tree-rdo), every
    choice made by D + lambda R at the quality's price of a bit.  Other mask encoders
    (--encoder): Belhachmi et al. (2009), probabilistic sparsification and nonlocal
    pixel exchange (Mainberger et al. 2011), the learned mask networks of Alt, Peter and
    Weickert (2021; needs 'inpcodec[learned]'); an optional GAN post-processor with
    multi-head temperature masked self-attention (MHTMA: Zhou, Gong and Zeng).
    """


def _jpeg_at_size(img: np.ndarray, max_bytes: int):
    """Pillow JPEG (optimised Huffman) of the largest quality whose file fits in max_bytes."""
    best = None
    for q in range(1, 96):
        data = pillow_encode(img, "jpeg", q)
        if len(data) > max_bytes:
            break
        best = (q, data)
    if best is None:
        return None
    return best[0], len(best[1]), pillow_decode(best[1], img.ndim == 2)


def _report_lines(r, name) -> list[str]:
    colour = "grey" if r.channels == 1 else "colour"
    levels = f"levels {r.levels}" + (f"/{r.chroma_levels}" if r.channels == 3 else "")
    if r.lossless:
        mask = "lossless: every pixel stored exactly (the target is at or above the " \
               "lossless file's rate)"
    else:
        mask = (f"{r.encoder}, {r.points} points = {r.density * 100:.2f} %"
                f"{', tonal optimisation' if r.tonal else ''}, {levels}")
    return [
        f"image      {name}  {r.width}x{r.height}, {colour}",
        f"mask       {mask}",
        f"size       {len(r.data) - r.bytes_metadata} bytes = {r.bpp:.4f} bpp (header "
        f"{r.bytes_header}"
        + (f" with a loop filter of {r.loop_filter[2]}" if r.loop_filter else "")
        + f", mask {r.bytes_mask}: {r.mask_bits_per_point:.2f} bits/point, values "
        f"{r.bytes_values}: {r.value_bits_per_point:.2f} bits/value)",
        f"time       encode {r.encode_seconds:.2f} s, decode {r.decode_seconds:.2f} s",
        f"PSNR       {r.psnr:.2f} dB" + (f" (luma {r.psnr_luma:.2f} dB)"
                                         if r.channels == 3 else ""),
    ]


@main.command()
@click.option("--image", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Image to use instead of the bundled 512x512 cameraman.")
@click.option("--quality", "-q", type=float, default=None,
              help=f"Quality 0-100 (default {DEFAULT_QUALITY} unless --bpp or --density), as "
              "`encode --quality`.")
@click.option("--bpp", type=float, default=None,
              help="Target size in bits per pixel instead: the search of `encode --bpp`.")
@click.option("--density", type=float, default=None,
              help="Fraction of pixels stored, with 64 levels, instead of a target size.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write the decoded image here.")
@_DROP_ALPHA
@_clean_errors
def demo(image, quality, bpp, density, output, drop_alpha):
    """Round trip a bundled image: encode, decode, PSNR, time, and JPEG at the same size."""

    out = _Out(output, [image]) if output else None
    img = cameraman() if image is None else load_image(image, drop_alpha=drop_alpha)
    _notice_compile()
    if sum(k is not None for k in (quality, bpp, density)) > 1:
        raise ValueError("give only one of --quality, --bpp and --density")
    r = encode_report(img, encoder=DEFAULT_ENCODER, quality=quality, bpp=bpp,
                      density=density, progress=True)
    for line in _report_lines(r, "bundled cameraman" if image is None else image):
        click.echo(line)
    jp = _jpeg_at_size(img, len(r.data))
    if jp is None:
        click.echo("JPEG       no JPEG quality fits in the same number of bytes")
    else:
        q, n, dec = jp
        jbpp = 8 * n / (img.shape[0] * img.shape[1])
        click.echo(f"JPEG       quality {q}, {n} bytes = {jbpp:.4f} bpp, PSNR "
                   f"{psnr(dec, img):.2f} dB (Pillow, optimised Huffman, at most the same size)")
    if out:
        out.write(iio.image_bytes(r.decoded, _image_format(out, None)))
        click.echo(f"written    {output}")


@main.command()
@_files_or_batch
@click.option("--encoder", type=click.Choice(list(encoder_names())), default=DEFAULT_ENCODER,
              show_default=True, help="How the mask is chosen: " + _encoder_help() + ".")
@click.option("--density", type=float, default=None,
              help="Fraction of pixels stored, in (0, 1], instead of a target size (with "
              "--levels, default 64).")
@click.option("--quality", "-q", type=float, default=None,
              help=f"Quality 0-100 (default {DEFAULT_QUALITY} unless --bpp, --psnr or "
              "--density): a fixed price of a bit, every choice of the encoder made by "
              "D + lambda R in one pass; larger gives a larger file and a higher PSNR.")
@click.option("--bpp", type=float, default=None,
              help="Target size in bits per pixel instead (within 3 %, by a search over "
              "lambda: about two encodes); at or above the lossless file's size, the "
              "lossless file.")
@click.option("--psnr", type=float, default=None,
              help="Target PSNR in dB instead (RGB for colour): the smallest file found "
              "whose decoding reaches it, by a search over lambda (3-6 encodes).")
@click.option("--levels", type=int, default=None,
              help="Quantisation levels of the (luma) values (default: chosen by D + lambda R"
              "; 64 with --density).")
@click.option("--chroma-levels", type=int, default=None,
              help="Quantisation levels of the chroma values (default: twice --levels for "
              "tree masks, whose chroma lives on a coarser tree; half of it for free masks).")
@click.option("--tonal/--no-tonal", default=True, show_default=True,
              help="Optimise the stored values (quantiser in the loop).")
@click.option("--effort", type=click.Choice(list(EFFORTS)), default=DEFAULT_EFFORT,
              show_default=True, help="lagrangian: the default encoder's choices by D + "
              "lambda R (other encoders take fast for it); with --bpp or --psnr, the older "
              "rate searches over density and levels: fast (the default before 0.3; tree "
              "masks: the luma levels by rule) or best (the levels searched with tonal "
              "optimisation).")
@click.option("--chroma-guide/--no-chroma-guide", default=True, show_default=True,
              help="Colour tree files: the decoder reconstructs chroma guided by the "
              "decoded luma where that pays (section GUID, 7 bytes; FORMAT.md).")
@click.option("--loop-filter/--no-loop-filter", default=True, show_default=True,
              help="The decoder filters the inpainted luma with a small linear filter "
              "fitted to the image, where it gains more than its bytes cost (section FILT; "
              "FORMAT.md).")
@click.option("--seed", type=int, default=0, show_default=True)
@_THREADS
@click.option("--verbose", "-v", is_flag=True,
              help="Also print the encoder's work (solves) and its search.")
@_encoder_options
@_DROP_ALPHA
@_STRIP
@_QUIET
@_clean_errors
def encode(paths, out_dir, jobs, scheduler, force, encoder, quality, density, bpp, psnr,
           levels, chroma_levels, tonal, effort, chroma_guide, loop_filter, seed, threads,
           verbose, drop_alpha, strip, quiet, **kwargs):
    """Compress image IN into the inpcodec file OUT (- for standard input or output), or
    every IN (files, folders of images, glob patterns) into DIR/<name>.inpc."""
    options = _pick_options(encoder, kwargs)
    if sum(k is not None for k in (quality, density, bpp, psnr)) > 1:
        raise ValueError("give only one of --quality, --density, --bpp and --psnr")
    if quality is not None and not 0.0 <= quality <= 100.0:
        raise ValueError(f"--quality must lie in 0..100, got {quality:g}")
    if density is not None and not 0.0 < density <= 1.0:
        raise ValueError(f"--density must lie in (0, 1], got {density}")
    if bpp is not None and not bpp > 0:
        raise ValueError(f"--bpp must be positive, got {bpp}")
    if psnr is not None and not (math.isfinite(psnr) and psnr > 0):
        raise ValueError(f"--psnr must be a positive number of dB, got {psnr}")
    single = _batch_or_single(paths, out_dir, "encode")
    if single is None:
        _run_batch("encode", paths, out_dir, dict(
            encoder=encoder, quality=quality, density=density, bpp=bpp, psnr=psnr,
            levels=levels, chroma_levels=chroma_levels, tonal=tonal, seed=seed, effort=effort,
            chroma_guide=chroma_guide, loop_filter=loop_filter, drop_alpha=drop_alpha,
            strip=strip, **options), jobs=jobs, scheduler=scheduler, threads=threads, force=force,
            quiet=quiet)
        return
    input_path, output_path = single
    out = _Out(output_path, [input_path], quiet)
    _check_inpcodec_output(output_path)
    img, metadata = load_image(input_path, drop_alpha=drop_alpha, with_metadata=True)
    if not quiet:
        _notice_compile()
    r = encode_report(img, encoder=encoder, quality=quality, density=density, bpp=bpp,
                      psnr=psnr, levels=levels, chroma_levels=chroma_levels, tonal=tonal,
                      seed=seed, progress=not quiet, effort=effort,
                      chroma_guide=chroma_guide, loop_filter=loop_filter, threads=threads,
                      metadata=None if strip else metadata, **options)
    out.write(r.data)
    name = "standard input" if input_path == STDIO else input_path
    for line in _report_lines(r, name):
        out.say(line)
    if r.bytes_metadata:
        kept = ", ".join(iio.METADATA_NAMES[k] for k in iio.METADATA_NAMES if metadata.get(k))
        out.say(f"metadata   {kept} kept: {r.bytes_metadata} bytes more, {len(r.data)} "
                "in the file (--strip drops them)")
    if r.note:
        click.echo(f"inpcodec: note: {r.note}", err=True)
    if r.width * r.height > DEFAULT_MAX_PIXELS:
        click.echo(f"inpcodec: note: {r.width}x{r.height} is over the decoder's default "
                   f"limit of {DEFAULT_MAX_PIXELS} pixels (its guard against forged files): "
                   "decode it with --max-pixels 0 (max_pixels=None)", err=True)
    if input_path != STDIO and len(r.data) > os.path.getsize(input_path):
        click.echo(f"inpcodec: note: the file ({len(r.data)} bytes) is larger than the input "
                   f"{input_path} ({os.path.getsize(input_path)} bytes)", err=True)
    if verbose:
        out.say(f"work       {r.solve_equivalents:.1f} decoder solves of this file "
                f"({r.solves} solves of the image or its tiles)"
                + (f"; lambda {r.lam:.4g} (quality {r.quality:.1f})"
                   if r.lam is not None else ""))
        for step in r.search:
            out.say("search     " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float)
                                              else f"{k} {v}" for k, v in step.items()))
    if r.psnr_search:
        out.say(f"search     PSNR {psnr:.2f} dB: the smallest of {len(r.psnr_search)} "
                "encodes that reaches it (bpp / dB: "
                + ", ".join(f"{b:.4f} / {q:.2f}" for _, b, q in r.psnr_search) + ")")
    out.say(f"written    {out.name}")


@main.command()
@_files_or_batch
@click.option("--solver", type=click.Choice(SOLVER_CHOICES), default="numba", show_default=True,
              help="numba: the reference, identical pixels on every machine; cupy (auto on a "
              "CUDA machine): faster, rare pixels may differ by one grey level.")
@click.option("--postprocess", type=click.Choice(["none", "gan"]), default="none",
              show_default=True, help="gan: refine the reconstruction with the MHTMA GAN "
              "(Zhou, Gong and Zeng); seconds per image, not bit-exact across machines.")
@click.option("--max-pixels", type=click.IntRange(min=0), default=DEFAULT_MAX_PIXELS,
              show_default=True, help="Refuse files of more pixels, from their header "
              "(as Pillow's MAX_IMAGE_PIXELS; 0: only the format's limit of 2^26).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="--postprocess gan: generator weights (default: the shipped ones); "
              "a <stem>_strength.json beside them sets the share of their correction "
              "applied by point density, else all of it.")
@_FORMAT
@_THREADS
@_STRIP
@_QUIET
@_clean_errors
def decode(paths, out_dir, jobs, scheduler, force, solver, postprocess, max_pixels, weights,
           fmt, threads, strip, quiet):
    """Decode the inpcodec file IN into the image OUT (- for standard input or output), or
    every IN (files, folders of .inpc files, glob patterns) into DIR/<name>.png (or
    --format)."""
    single = _batch_or_single(paths, out_dir, "decode")
    if single is None:
        _run_batch("decode", paths, out_dir, dict(solver=solver, postprocess=postprocess,
                                                   weights=weights, strip=strip,
                                                   max_pixels=max_pixels or None),
                   fmt=fmt or "png", jobs=jobs, scheduler=scheduler, threads=threads,
                   force=force, quiet=quiet)
        return
    input_path, output_path = single
    out = _Out(output_path, [input_path], quiet)
    fmt = _image_format(out, fmt)
    data = _read(input_path)
    if not quiet:
        _notice_compile()
    t0 = time.perf_counter()
    img = decode_bytes(data, solver=solver, postprocess=postprocess, weights=weights,
                       threads=threads, max_pixels=max_pixels or None)
    seconds = time.perf_counter() - t0
    metadata = {} if strip else read_metadata(data)
    out.write(iio.image_bytes(img, fmt, metadata))
    lost = iio.dropped_metadata(fmt, metadata)
    if lost:
        click.echo(f"inpcodec: note: {fmt} files cannot carry the file's "
                   f"{', '.join(lost)}; written without (PNG, TIFF, JPEG and WebP keep it)",
                   err=True)
    meta = metadata_nbytes(data)
    bpp = 8.0 * (len(data) - meta) / (img.shape[0] * img.shape[1])
    out.say(f"decoded    {img.shape[1]}x{img.shape[0]} {'grey' if img.ndim == 2 else 'colour'}"
            f", {len(data) - meta} bytes = {bpp:.4f} bpp"
            + (f" (and {meta} bytes of metadata)" if meta else "")
            + f", in {seconds:.2f} s"
            + (" (GAN post-processor)" if postprocess != "none" else "")
            + f"; written {out.name}")


_METADATA_NAMES = {"icc_profile": "ICC profile", "exif": "EXIF", "xmp": "XMP"}


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False, allow_dash=True))
@_clean_errors
def info(input_path):
    """Show the header of the inpcodec file IN and where its bits go."""
    i = file_info(_read(input_path))
    px = i.width * i.height
    click.echo(f"size         {i.width}x{i.height}, {i.channels} channel(s), {i.colour}")
    version = (f"inpcodec format {i.version}" if "." in i.version
               else f"inpcodec 0.2.0's format version {i.version}")
    click.echo(f"format       {version}, mask: {i.mask_coder}, values: "
               f"{i.value_coder}")
    chroma = f" (chroma {i.chroma_levels})" if i.channels == 3 else ""
    click.echo(f"levels       {i.levels}{chroma}")
    click.echo(f"mask         {i.points} points = {100 * i.points / px:.2f} % of the pixels")
    if i.channels == 3 and i.chroma_points != i.points:
        click.echo(f"chroma       {i.chroma_points} points, on a coarser tree")
    if i.chroma_guide is not None:
        click.echo(f"chroma guide the decoded luma's (guided filter, radius "
                   f"{i.chroma_guide[0]}, eps {i.chroma_guide[1]})")
    if i.loop_filter is not None:
        edges = ("", ", oriented", ", oriented with edge classes")[i.loop_filter[3]]
        click.echo(f"loop filter  radius {i.loop_filter[0]}, {i.loop_filter[1]} distance "
                   f"class(es){edges}, {i.loop_filter[2]} bytes")
    click.echo(f"bytes        {i.bytes_total} = {i.bpp:.4f} bpp")
    click.echo(f"  header      {i.bytes_header} ({8 * i.bytes_header / px:.4f} bpp)")
    click.echo(f"  mask        {i.bytes_mask} ({8 * i.bytes_mask / px:.4f} bpp, "
               f"{8 * i.bytes_mask / i.points:.2f} bits/point)")
    names = ("luma", "Cb", "Cr") if i.colour.startswith("YCbCr") else ("R", "G", "B")
    for c, n in enumerate(i.bytes_values):
        name = names[c] if i.channels == 3 else "grey"
        points = i.chroma_points if c > 0 else i.points
        click.echo(f"  {name + ' values':<12} {n} ({8 * n / px:.4f} bpp, "
                   f"{8 * n / points:.2f} bits/value)")
    if i.metadata:
        kept = ", ".join(f"{_METADATA_NAMES[k]} {n}" for k, n in i.metadata.items())
        click.echo(f"  metadata    {i.bytes_metadata} ({kept}; compressed)")


@main.command()
@click.argument("image", metavar="IN", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("output", metavar="OUT", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--encoder", "--method", "encoder", type=click.Choice(list(encoder_names())),
              default="belhachmi", show_default=True,
              help="How the mask is chosen: " + _encoder_help() + ".")
@click.option("--density", type=float, default=0.04, show_default=True,
              help="Fraction of pixels in the mask, in (0, 1].")
@click.option("--tonal/--no-tonal", default=False, show_default=True,
              help="Optimise the stored grey values too (reported PSNR and --reconstruction).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reconstruction", type=click.Path(dir_okay=False), default=None,
              help="Also write the inpainted image to this file.")
@_encoder_options
@_DROP_ALPHA
@_FORMAT
@_clean_errors
def mask(image, output, encoder, density, tonal, seed, reconstruction, drop_alpha, fmt,
         **kwargs):
    """Compute an inpainting mask for IN and write it to OUT (white = kept; - for
    standard input or output).

    Reports the mask's PSNR with homogeneous diffusion inpainting, the number of
    inpaintings spent and the wall time.
    """
    options = _pick_options(encoder, kwargs)
    if not 0.0 < density <= 1.0:
        raise ValueError(f"--density must lie in (0, 1], got {density}")
    out = _Out(output, [image])
    fmt = _image_format(out, fmt)
    rec = _Out(reconstruction, [image, output]) if reconstruction else None
    f = load_image(image, grey=True, drop_alpha=drop_alpha).astype(np.float64)
    _notice_compile()
    t0 = time.perf_counter()
    res = make_mask(encoder, f, density, seed=seed, progress=True, **options)
    m, spent = res.mask, res.inpaintings
    mask_seconds = time.perf_counter() - t0
    values = f
    if tonal:
        tr = tonal_optimisation(f, m, max_seconds=options.get("max_seconds"), progress=True)
        values, spent = tr.values, spent + tr.inpaintings
    u = np.clip(np.rint(diffusion_inpaint(values, m)), 0, 255)
    out.write(iio.image_bytes(m.astype(np.uint8) * 255, fmt))
    if rec:
        rec.write(iio.image_bytes(u, _image_format(rec, None)))
    out.say(f"mask       {encoder}, {int(m.sum())} pixels = {m.mean() * 100:.2f} %"
            f"{' + tonal optimisation' if tonal else ''}")
    out.say(f"cost       {spent} inpaintings, {mask_seconds:.2f} s for the mask, "
            f"{time.perf_counter() - t0:.2f} s in all")
    out.say(f"PSNR       {psnr(u, f):.2f} dB (homogeneous diffusion inpainting)")
    out.say(f"written    {out.name}" + (f", {reconstruction}" if reconstruction else ""))


@main.command("train-masks")
@click.option("--data", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Training image folder (searched recursively); repeat for several.")
@click.option("--val", multiple=True, type=click.Path(file_okay=False),
              help="Validation image folder (its first --val-images images, centre 256x256).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (.safetensors); OUT.ckpt and OUT.json beside it.")
@click.option("--density", type=float, default=None,
              help="Train for this one density (as Alt, Peter and Weickert 2021) instead "
              "of a range.")
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
              show_default=True, help="What reconstructs during training: the surrogate "
              "U-net of Alt, Peter and Weickert 2021 (residual loss), or the real solver with "
              "exact adjoint gradients.")
@click.option("--train-mask", type=click.Choice(["soft", "dither", "coin"]), default="soft",
              show_default=True, help="With --inpainter exact: inpaint with the network's "
              "soft mask (as Alt, Peter and Weickert 2021) or with its dithered or "
              "coin-flipped binary mask (gradient passed straight through).")
@click.option("--prior", type=click.Choice(["none", "belhachmi"]), default="none",
              show_default=True, help="'belhachmi': the network refines Belhachmi's density "
              "map (and starts as exactly that map); 'none': the network of Alt, Peter and "
              "Weickert 2021.")
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
    require_learned("train-masks")
    from inpcodec.learned_masks.training import TrainConfig, train  # noqa: PLC0415

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
    iio.check_output_path(out, [init])
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


@main.command("train-tree-map")
@click.option("--data", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Training image folder (searched recursively); repeat for several.")
@click.option("--val", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Validation image folder (its first --val-images images, centre crops).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (.safetensors); OUT.ckpt and OUT.json beside it.")
@click.option("--crops", type=int, default=2, show_default=True,
              help="Random 257x257 crops per training image.")
@click.option("--steps", type=int, default=20000, show_default=True)
@click.option("--minutes", type=float, default=None, help="Stop after this wall time.")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--val-every", type=int, default=250, show_default=True)
@click.option("--val-images", type=int, default=16, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes that make the training targets.")
@click.option("--device", default="cpu", show_default=True, help="Torch device (cpu, cuda).")
@_TRAIN_PRECISION
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt.")
@_clean_errors
def train_tree_map(data, val, out, crops, steps, minutes, batch, lr, val_every, val_images,
                   workers, device, precision, seed, resume):
    """Train the tree-map network (the learned tree encoder, `tree-learned`).

    Distillation: the targets are the errors of uniform trees of every depth on 257x257
    crops (the maps the inpainting-driven tree encoder ranks its cells by); the network
    learns them by regression, so the encoder needs no inpainting.
    """
    require_learned("train-tree-map")
    from inpcodec.learned_masks import tree_training  # noqa: PLC0415

    for name, v in (("steps", steps), ("batch", batch), ("val-every", val_every),
                    ("crops", crops), ("workers", workers), ("val-images", val_images)):
        if v < 1:
            raise ValueError(f"--{name} must be at least 1, got {v}")
    iio.check_output_path(out, [])
    cfg = tree_training.TreeMapConfig(
        data=list(data), val=list(val), crops=crops, val_images=val_images, batch=batch,
        steps=steps, minutes=minutes, lr=lr, seed=seed, val_every=val_every,
        workers=workers, device=device, precision=precision)
    prov = tree_training.train_tree_map(cfg, out, resume=resume,
                                        log=lambda s: click.echo(s, err=True),
                                        command="inpcodec " + " ".join(sys.argv[1:]))
    click.echo(f"wrote {out} after {prov['steps']} steps ({prov['wall_time_minutes']} min); "
               f"best validation loss {prov['best_val_loss']:.4f} at step {prov['best_step']}")


@main.command()
@click.argument("image", metavar="IN", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("holes", metavar="HOLES", type=click.Path(dir_okay=False))
@click.argument("output", metavar="OUT", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Generator weights trained with --task holes (default: the shipped ones).")
@_DROP_ALPHA
@_FORMAT
@_QUIET
@_clean_errors
def inpaint(image, holes, output, weights, drop_alpha, fmt, quiet):
    """Fill the holes of IN with the GAN inpainter (MHTMA: Zhou, Gong and Zeng) and write
    OUT (- for standard input or output).

    HOLES is a mask image of the same size: nonzero pixels are holes.  Pixels outside the
    holes are kept exactly.
    """
    require_learned("inpaint")
    from inpcodec.codec.postprocess import inpaint_holes, load_generator  # noqa: PLC0415

    out = _Out(output, [image, holes], quiet)
    fmt = _image_format(out, fmt)
    img = load_image(image, drop_alpha=drop_alpha)
    hole = load_image(holes, grey=True, drop_alpha=True) > 0
    if hole.shape != img.shape[:2]:
        raise ValueError(f"{holes}: the mask is {hole.shape[1]}x{hole.shape[0]} but the image "
                         f"is {img.shape[1]}x{img.shape[0]}")
    if not hole.any():
        raise ValueError(f"{holes}: the mask has no hole (no nonzero pixel)")
    if hole.all():
        raise ValueError(f"{holes}: the mask covers the whole image: nothing to inpaint from")
    net = load_generator(weights, task="holes")
    t0 = time.perf_counter()
    filled = inpaint_holes(img, hole, network=net)
    seconds = time.perf_counter() - t0
    out.write(iio.image_bytes(filled, fmt))
    out.say(f"inpainted  {hole.mean() * 100:.1f} % of {img.shape[1]}x{img.shape[0]} in "
            f"{seconds:.2f} s; written {out.name}")


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
@click.option("--codec", "cache_codec", type=click.Choice(["free", "tree"]), default="free",
              show_default=True,
              help="postprocess: the decodes to learn on: free masks (Belhachmi, learned; "
              "1-10 %) or the default tree encoder (0.05-0.5 bpp).")
@click.option("--grey-fraction", type=float, default=0.2, show_default=True,
              help="postprocess: fraction of the cache's training images encoded in grey.")
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
              "convolution (--no-skip: the plain decoders of the MHTMA paper, Zhou, Gong "
              "and Zeng).")
@click.option("--full-res-layers", type=int, default=None,
              help="Gated convolutions (2x width) at the refinement's full-resolution end, "
              "all seeing its input (default 3 with the skip; 1: a single last gated "
              "convolution, as without the skip).")
@click.option("--lr-g", type=float, default=1e-4, show_default=True)
@click.option("--lr-d", type=float, default=1e-4, show_default=True)
@click.option("--adversarial-weight", type=float, default=0.01, show_default=True,
              help="Weight of the generator's hinge adversarial term (the MHTMA paper's 0.01; 0: "
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
@click.option("--device", default="cpu", show_default=True,
              help="Torch device of the networks (cpu, cuda).")
@_TRAIN_PRECISION
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt.")
@_clean_errors
def train_gan(task, data, val, out, cache, prepare_only, variants, cache_codec, grey_fraction,
              tonal, workers, steps, minutes, batch, crop, width, heads, skip, full_res_layers,
              lr_g, lr_d, adversarial_weight, vgg16, init, val_every, val_images, seed,
              threads, device, precision, resume):
    """Train the GAN inpainter (MHTMA) for the decoder post-processor or for holes.

    Writes the generator to OUT (safetensors) with a provenance JSON beside it; a
    checkpoint every validation lets --resume continue an interrupted run.
    """
    from pathlib import Path  # noqa: PLC0415

    require_learned("train-gan")
    from inpcodec.codec.postprocess.data import prepare_cache  # noqa: PLC0415
    from inpcodec.codec.postprocess.training import (  # noqa: PLC0415
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
    iio.check_output_path(out, [init, vgg16])
    cfg = TrainConfig(task=task, data=list(data), val=list(val), cache=cache, width=width,
                      heads=heads, skip=skip, full_res_layers=full_res_layers, crop=crop,
                      batch=batch, steps=steps, minutes=minutes, lr_g=lr_g, lr_d=lr_d,
                      lambda_adversarial=adversarial_weight, vgg16=vgg16, init=init, seed=seed,
                      val_every=val_every, val_images=val_images, threads=threads,
                      variants=variants, tonal=tonal, workers=workers, codec=cache_codec,
                      grey_fraction=grey_fraction, device=device, precision=precision)
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
@click.option("--codecs", default=",".join(DEFAULT_CODECS),
              show_default=True, help="Reference codecs (jpeg, jpeg2000, webp, avif, jpegxl) and "
              f"inpcodec encoders ({', '.join(encoder_names())}; add -notonal for no "
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

        import inpcodec.codec.bench as cb  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(f"inpcodec bench needs the bench extra ({exc.name} is missing): "
                           "pip install 'inpcodec[bench]'") from None
    if not os.path.isdir(data_dir):
        raise ValueError(f"{data_dir}: no such folder")
    paths = sorted(p for p in os.listdir(data_dir) if p.lower().endswith(iio.IMAGE_SUFFIXES))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        paths = paths[:limit]
    if not paths:
        raise ValueError(f"{data_dir}: no images ({', '.join(iio.IMAGE_SUFFIXES)})")
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
