"""The codec: image -> bytes -> image.

    data = encode(image, encoder="belhachmi", density=0.04)     # or bpp=0.2
    image2 = decode(data)

Encoding: (colour images) RGB -> YCbCr; a mask from the chosen encoder on the luma; the
stored values (tonally optimised with the quantiser in the loop, or the original pixel
values); uniform quantisation to ``levels`` (luma) and ``chroma_levels``; the mask and
the values entropy-coded (:mod:`bitstreams`).  Decoding: the values are inpainted by
homogeneous diffusion (all channels on one mask), YCbCr -> RGB, rounded to 8 bits.

Everything the encoder reports (bpp, PSNR) is measured on the real bytes and on the
decoder's output of those bytes.  The decoder's arithmetic is deterministic (integer
entropy-model parameters, the Numba solver's fixed-order reductions, element-wise colour
transform), so a file decodes to the same pixels on every run and thread count.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

import numpy as np

from bitstreams import container as C
from bitstreams.mask_coder import decode_mask, encode_mask
from bitstreams.value_coder import decode_values, encode_values, max_values

from .diffusion import Inpainter

MASK_CODER = 1  # adaptive quadtree, bitstreams.mask_coder
VALUE_CODER = 1  # coarse-to-fine prediction + adaptive quantised Laplace
MAX_LEVELS = 4096
DEFAULT_LEVELS = 64
#: CGLS tolerance, inner-solve tolerance and quantised refinement sweeps of the tonal
#: optimisation inside the codec: looser than tonal_optimisation's defaults.  On Kodak
#: (grey, 768 x 512, Belhachmi masks, 8-32 levels) they cost about 0.02 dB of PSNR and run
#: about 2x faster (benchmarks/RESULTS.md, "Rate search speed"); the rate search runs several.
TONAL_TOL = 3e-2
TONAL_SOLVE_TOL = 1e-5
TONAL_SWEEPS = 3
_PARM = struct.Struct("<BBHH")  # mask coder, value coder, luma levels, chroma levels

ENCODERS = ("belhachmi", "ps", "ps+nlpe", "random", "learned")
#: How the codec binarises learned masks: Floyd-Steinberg dithering of the network's
#: confidences beat the paper's coin flip, even its best of 30, on the Kodak crops and the
#: cameraman (benchmarks/RESULTS.md, "Learned masks against the classical encoders"), and
#: costs no inpainting.
LEARNED_BINARISATION = "dither"
LEARNED_SAMPLES = 1


class CodecError(ValueError):
    """Raised for input the codec refuses (one-line message)."""


# ----------------------------------------------------------------------------- colour


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JPEG (BT.601 full range) RGB -> YCbCr, element-wise in float64 (no BLAS)."""
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168735892 * r - 0.331264108 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418687589 * g - 0.081312411 * b
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128.0, ycc[..., 2] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136286 * cb - 0.714136286 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1)


# ----------------------------------------------------------------------------- limits


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os  # noqa: PLC0415

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def decoder_memory(width: int, height: int, channels: int) -> int:
    """Upper estimate of the decoder's working memory in bytes (measured ~75 B/pixel grey)."""
    return width * height * (60 + 50 * channels)


def check_memory(width: int, height: int, channels: int, factor: float = 1.0) -> None:
    need = int(decoder_memory(width, height, channels) * factor)
    have = int(0.75 * _available_memory())  # leave the rest of the machine some room
    if need > have:
        raise CodecError(f"a {width}x{height} image needs about {need / 2**30:.1f} GiB, "
                         f"more than the {have / 2**30:.1f} GiB of memory available to "
                         "inpcodec (75 % of the free memory)")


# ----------------------------------------------------------------------------- helpers


def _as_image(image) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise CodecError(f"images must be 8-bit (uint8), got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise CodecError(f"images must be (H, W) grey or (H, W, 3) RGB, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise CodecError(f"image is empty (shape {a.shape})")
    try:
        C.check_geometry(a.shape[1], a.shape[0], 1 if a.ndim == 2 else 3)
    except C.FormatError as exc:
        raise CodecError(str(exc)) from None
    return a


def quantiser(levels: int) -> np.ndarray:
    """The reconstruction values of a uniform quantiser of [0, 255] with ``levels`` levels."""
    return np.arange(levels, dtype=np.float64) * (255.0 / (levels - 1))


def quantise(v: np.ndarray, levels: int) -> np.ndarray:
    return np.clip(np.rint(np.asarray(v, np.float64) * ((levels - 1) / 255.0)), 0,
                   levels - 1).astype(np.int64)


def make_mask(luma: np.ndarray, encoder: str, density: float, seed: int = 0,
              progress: bool = False) -> tuple[np.ndarray, int]:
    """Mask of a grey image by the named encoder; returns (mask, inpaintings spent)."""
    from baselines import (  # noqa: PLC0415
        belhachmi_mask,
        nonlocal_pixel_exchange,
        probabilistic_sparsification,
    )

    if encoder == "belhachmi":
        return belhachmi_mask(luma, density).mask, 0
    if encoder == "random":
        rng = np.random.default_rng(seed)
        m = np.zeros(luma.size, bool)
        m[rng.choice(luma.size, max(1, round(density * luma.size)), replace=False)] = True
        return m.reshape(luma.shape), 0
    if encoder in ("ps", "ps+nlpe"):
        res = probabilistic_sparsification(luma, density, seed=seed, progress=progress)
        if encoder == "ps":
            return res.mask, res.inpaintings
        nl = nonlocal_pixel_exchange(luma, res.mask, seed=seed, progress=progress)
        return nl.mask, res.inpaintings + nl.inpaintings
    if encoder == "learned":
        from learned_masks import learned_mask  # noqa: PLC0415

        res = learned_mask(luma, density, samples=LEARNED_SAMPLES,
                           binarisation=LEARNED_BINARISATION, seed=seed)
        return res.mask, res.inpaintings
    raise CodecError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")


# ----------------------------------------------------------------------------- encode


@dataclass
class EncodeReport:
    """What an encode produced, measured on the real file and its real decoding."""

    data: bytes
    decoded: np.ndarray
    width: int
    height: int
    channels: int
    encoder: str
    density: float
    points: int
    levels: int
    chroma_levels: int
    tonal: bool
    bytes_header: int
    bytes_mask: int
    bytes_values: int
    psnr: float
    psnr_luma: float
    encode_seconds: float
    decode_seconds: float
    inpaintings: int
    search: list = field(default_factory=list)

    @property
    def bpp(self) -> float:
        return 8.0 * len(self.data) / (self.width * self.height)

    @property
    def mask_bits_per_point(self) -> float:
        return 8.0 * self.bytes_mask / self.points

    @property
    def value_bits_per_point(self) -> float:
        return 8.0 * self.bytes_values / (self.points * self.channels)


def _psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _values(planes, mask, levels, chroma_levels, tonal):
    """Quantised values per channel (tonal optimisation with the quantiser in the loop)."""
    from baselines import tonal_optimisation  # noqa: PLC0415

    out = []
    groups = [(slice(0, 1), levels)]
    if planes.shape[2] == 3:
        groups.append((slice(1, 3), chroma_levels))
    spent = 0
    for sl, q in groups:
        part = planes[:, :, sl]
        if tonal:
            res = tonal_optimisation(part, mask, levels=quantiser(q), tol=TONAL_TOL,
                                     solve_tol=TONAL_SOLVE_TOL, max_sweeps=TONAL_SWEEPS)
            vals = res.values[mask]
            spent += res.inpaintings
        else:
            vals = part[mask]
        for c in range(vals.shape[1]):
            out.append(quantise(vals[:, c], q))
    return out, spent


def _encode_once(img, planes, mask, levels, chroma_levels, tonal):
    qs, spent = _values(planes, mask, levels, chroma_levels, tonal)
    channels = planes.shape[2]
    cont = C.Container(img.shape[1], img.shape[0], channels,
                       C.COLOUR_GREY if channels == 1 else C.COLOUR_YCBCR)
    cont.sections["PARM"] = _PARM.pack(MASK_CODER, VALUE_CODER, levels, chroma_levels)
    cont.sections["MASK"] = encode_mask(mask).astype("<u4").tobytes()
    for c, q in enumerate(qs):
        cont.sections[f"VAL{c}"] = encode_values(
            mask, q, levels if c == 0 else chroma_levels).astype("<u4").tobytes()
    return C.write(cont), cont, spent


def _check_levels(levels, name="levels"):
    if not 2 <= int(levels) <= MAX_LEVELS:
        raise CodecError(f"{name} must lie in 2..{MAX_LEVELS}, got {levels}")
    return int(levels)


def encode_report(image, *, encoder: str = "belhachmi", density: float | None = None,
                  bpp: float | None = None, levels: int | None = None,
                  chroma_levels: int | None = None, tonal: bool = True, seed: int = 0,
                  solver: str = "numba", progress: bool = False) -> EncodeReport:
    """Encode an 8-bit grey or RGB image; see :func:`encode`.  Returns the full report."""
    t0 = time.perf_counter()
    img = _as_image(image)
    if (density is None) == (bpp is None):
        raise CodecError("give exactly one of density or bpp")
    if encoder not in ENCODERS:
        raise CodecError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    channels = 1 if img.ndim == 2 else 3
    check_memory(img.shape[1], img.shape[0], channels, factor=2.0)
    planes = img.astype(np.float64)[:, :, None] if channels == 1 else rgb_to_ycbcr(img)
    luma = planes[:, :, 0]
    search = []
    if density is not None:
        if not 0.0 < density <= 1.0:
            raise CodecError(f"density must lie in (0, 1], got {density}")
        lv = _check_levels(levels if levels is not None else DEFAULT_LEVELS)
        clv = _check_levels(chroma_levels if chroma_levels is not None else max(2, lv // 2),
                            "chroma_levels")
        mask, spent = make_mask(luma, encoder, density, seed, progress)
        data, cont, sp2 = _encode_once(img, planes, mask, lv, clv, tonal)
        spent += sp2
    else:
        from .rate import search_rate  # noqa: PLC0415

        data, cont, mask, lv, clv, spent, search = search_rate(
            img, planes, bpp, encoder, levels, chroma_levels, tonal, seed, progress)
    encode_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    decoded = decode(data, solver=solver)
    decode_seconds = time.perf_counter() - t1
    sizes = {k: len(v) for k, v in cont.sections.items()}
    vals = sum(v for k, v in sizes.items() if k.startswith("VAL"))
    luma_dec = decoded if channels == 1 else rgb_to_ycbcr(decoded)[..., 0]
    return EncodeReport(
        data=data, decoded=decoded, width=img.shape[1], height=img.shape[0],
        channels=channels, encoder=encoder, density=float(mask.mean()),
        points=int(mask.sum()), levels=lv, chroma_levels=clv, tonal=tonal,
        bytes_header=len(data) - sizes["MASK"] - vals, bytes_mask=sizes["MASK"],
        bytes_values=vals, psnr=_psnr(decoded, img), psnr_luma=_psnr(luma_dec, luma),
        encode_seconds=encode_seconds, decode_seconds=decode_seconds, inpaintings=spent,
        search=search)


def encode(image, **kwargs) -> bytes:
    """Compress an 8-bit image (H, W) grey or (H, W, 3) RGB into inpcodec bytes.

    Parameters
    ----------
    image : array_like of uint8
    encoder : {"belhachmi", "ps", "ps+nlpe", "random", "learned"}
        How the mask is chosen (on the luma).
    density : float
        Fraction of pixels stored (exclusive with ``bpp``).
    bpp : float
        Target size in bits per pixel; density and quantisation are searched to land
        within 3 % of it (exclusive with ``density``).
    levels, chroma_levels : int
        Quantisation levels of luma and chroma (default 64 and half the luma's; with
        ``bpp`` they are searched unless given).
    tonal : bool
        Optimise the stored values for the reconstruction, with the quantiser in the loop.
    seed : int
        Seed of the stochastic encoders.
    """
    return encode_report(image, **kwargs).data


# ----------------------------------------------------------------------------- decode


@dataclass
class FileInfo:
    width: int
    height: int
    channels: int
    colour: str
    levels: int
    chroma_levels: int
    points: int
    bytes_total: int
    bytes_header: int
    bytes_mask: int
    bytes_values: list

    @property
    def bpp(self) -> float:
        return 8.0 * self.bytes_total / (self.width * self.height)


def _parse(data: bytes):
    cont = C.read(data)
    parm = cont.section("PARM")
    if len(parm) != _PARM.size:
        raise C.FormatError("parameter section has the wrong length")
    mask_coder, value_coder, lv, clv = _PARM.unpack(parm)
    if mask_coder != MASK_CODER or value_coder != VALUE_CODER:
        raise C.FormatError(f"unknown coder ids (mask {mask_coder}, values {value_coder})")
    for q in (lv, clv):
        if not 2 <= q <= MAX_LEVELS:
            raise C.FormatError(f"quantisation levels {q} outside 2..{MAX_LEVELS}")
    expected = {"PARM", "MASK"} | {f"VAL{c}" for c in range(cont.channels)}
    if set(cont.sections) != expected:
        raise C.FormatError(f"sections {sorted(cont.sections)} do not match a "
                            f"{cont.channels}-channel file")
    for k, v in cont.sections.items():
        if k != "PARM" and (len(v) % 4 or not v):
            raise C.FormatError(f"section {k} is not a whole number of 32-bit words")
    points = int(_words(cont.sections["MASK"][:4])[0])
    if not 1 <= points <= cont.width * cont.height:
        raise C.FormatError(f"point count {points} does not fit a {cont.width}x{cont.height} "
                            "image")
    for c in range(cont.channels):
        if points > max_values(len(cont.sections[f"VAL{c}"])):
            raise C.FormatError(f"{points} points cannot be coded in the "
                                f"{len(cont.sections[f'VAL{c}'])} bytes of channel {c}")
    return cont, lv, clv


def _words(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<u4").astype(np.uint32)


# constriction reports compressed data that cannot come from its model by an
# AssertionError (found by benchmarks/fuzz_decoder.py); numpy/constriction raise the others
_ENTROPY_ERRORS = (ValueError, RuntimeError, AssertionError, IndexError, OverflowError)


def _decode_mask_checked(cont) -> np.ndarray:
    words = _words(cont.section("MASK"))
    try:
        mask = decode_mask(words, cont.height, cont.width)
    except _ENTROPY_ERRORS as exc:
        raise C.FormatError(f"corrupt mask data ({exc})") from None
    if int(mask.sum()) != int(words[0]):
        raise C.FormatError(f"corrupt mask data: {int(mask.sum())} points decoded, "
                            f"{int(words[0])} stored")
    return mask


def info(data: bytes) -> FileInfo:
    """Header fields and the bytes per part, from the file alone (the mask is decoded)."""
    cont, lv, clv = _parse(data)
    check_memory(cont.width, cont.height, 1, factor=0.2)  # the mask alone
    mask = _decode_mask_checked(cont)
    vals = [len(cont.section(f"VAL{c}")) for c in range(cont.channels)]
    return FileInfo(cont.width, cont.height, cont.channels, C.COLOUR_NAMES[cont.colour], lv,
                    clv, int(mask.sum()), len(data), len(data) - len(cont.section("MASK"))
                    - sum(vals), len(cont.section("MASK")), vals)


def decode(data: bytes, *, solver: str = "numba", postprocess: str = "none",
           return_info: bool = False):
    """Decode inpcodec bytes to a uint8 image ((H, W) grey or (H, W, 3) RGB).

    The default solver, ``numba``, is the reference: its fixed-order arithmetic gives the
    same pixels on every run, thread count and machine, and the encoder reports on it.
    ``cupy`` (or ``auto`` on a machine with CUDA) is faster on large images but sums in
    another order, so pixels whose value lies very close to a rounding boundary may come
    out one grey level apart from the reference.

    ``postprocess="gan"`` refines the reconstruction with the GAN post-processor
    (:mod:`codec.postprocess`, needs its trained weights): the stored pixels keep their
    decoded values, the others are the network's (torch float arithmetic: not promised
    bit-identical across machines and thread counts).

    Raises
    ------
    bitstreams.container.FormatError
        Damaged, truncated, forged or foreign data (one-line reason).
    CodecError
        The image would not fit in memory, or an unavailable option.
    """
    if postprocess not in ("none", "gan"):
        raise CodecError(f"unknown post-processor {postprocess!r} (none or gan)")
    gan = None
    if postprocess == "gan":
        from .postprocess import load_generator  # noqa: PLC0415 (imports torch)

        try:  # before any decoding work: a missing model fails at once
            gan = load_generator(task="postprocess")
        except (OSError, ValueError) as exc:
            raise CodecError(f"post-processor 'gan': {exc}") from None
    cont, lv, clv = _parse(data)
    check_memory(cont.width, cont.height, cont.channels)
    h, w = cont.height, cont.width
    mask = _decode_mask_checked(cont)
    planes = np.zeros((h, w, cont.channels))
    for c in range(cont.channels):
        q = lv if c == 0 else clv
        try:
            vals = decode_values(_words(cont.section(f"VAL{c}")), mask, q)
        except _ENTROPY_ERRORS as exc:
            raise C.FormatError(f"corrupt value data in channel {c} ({exc})") from None
        planes[:, :, c][mask] = quantiser(q)[vals]
    u = Inpainter(mask, solver=solver).solve(planes if cont.channels == 3 else planes[:, :, 0])
    if cont.channels == 3:
        u = ycbcr_to_rgb(u)
    out = np.clip(np.rint(u), 0, 255).astype(np.uint8)
    if gan is not None:
        from .postprocess import refine  # noqa: PLC0415

        try:
            out = refine(out, mask, network=gan)  # the stored pixels stay exactly as decoded
        except ValueError as exc:
            raise CodecError(f"post-processor 'gan': {exc}") from None
    return (out, mask) if return_info else out
