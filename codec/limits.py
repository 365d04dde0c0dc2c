"""What inpcodec refuses before it allocates: images too large for memory.

A forged header must never make the decoder allocate more than the machine has: the
decoder's working memory is estimated from the header and checked against the free
memory first.
"""

from __future__ import annotations

import importlib.util
import os


class CodecError(ValueError):
    """Raised for input the codec refuses (one-line message)."""


class MissingExtra(CodecError, ImportError):
    """A feature of an optional extra was asked for where the extra is not installed."""


#: What ``pip install 'inpcodec[learned]'`` adds: the mask networks and the GAN
#: post-processor need PyTorch and safetensors (their weights); the codec, the classical
#: encoders and the bench need neither.
LEARNED_MODULES = ("torch", "safetensors")


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install counts as missing
        return False


def require_learned(feature: str) -> None:
    """Raise :class:`MissingExtra` naming the extra where ``feature`` (a learned encoder,
    the GAN, training) cannot run because PyTorch or safetensors is missing."""
    for name in LEARNED_MODULES:
        if not _installed(name):
            raise MissingExtra(f"{feature} needs PyTorch ({name} is not installed): "
                               "pip install 'inpcodec[learned]'")


def require_scipy(feature: str) -> None:
    """Raise :class:`MissingExtra` where ``feature`` (the ``direct`` solver, SciPy's
    sparse LU: a reference, not the codec's path) cannot run without SciPy, which the
    light install leaves out."""
    if not _installed("scipy"):
        raise MissingExtra(f"{feature} needs SciPy (it is not installed): pip install scipy")


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def decoder_memory(width: int, height: int, channels: int) -> int:
    """Upper estimate of the decoder's working memory in bytes: 80 + 10 per channel per
    pixel (measured with tracemalloc on forged 2048 x 2048 tree files, channels solved one
    after another: 84.7 grey, 101.6 colour; benchmarks/RESULTS.md, "Decoder memory")."""
    return width * height * (80 + 10 * channels)


#: The decoder's default limit on a file's pixels (``decode(max_pixels=)``, ``inpcodec
#: decode --max-pixels``), as Pillow's ``MAX_IMAGE_PIXELS``: half the format's 2^26,
#: 33.5 Mpixels, above the photographs of most cameras (24-33 MP), so that a forged
#: header of a few bytes cannot ask for the largest image the format allows without the
#: user saying so.
DEFAULT_MAX_PIXELS = 1 << 25


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    """Refuse a file of more than ``max_pixels`` pixels (None: no limit but the
    format's)."""
    if max_pixels is not None and width * height > max_pixels:
        raise CodecError(f"the file is {width}x{height} ({width * height / 1e6:.1f} Mpixels), "
                         f"over the decoder's limit of {max_pixels} pixels; raise it with "
                         "--max-pixels (max_pixels=) if you trust the file")


def check_memory(width: int, height: int, channels: int, factor: float = 1.0) -> None:
    need = int(decoder_memory(width, height, channels) * factor)
    have = int(0.75 * available_memory())  # leave the rest of the machine some room
    if need > have:
        raise CodecError(f"a {width}x{height} image needs about {need / 2**30:.1f} GiB, "
                         f"more than the {have / 2**30:.1f} GiB of memory available to "
                         "inpcodec (75 % of the free memory)")


def release_free_memory() -> None:
    """Give the memory the process has freed back to the system (glibc's ``malloc_trim``;
    nothing elsewhere).

    Arrays of a few MB (a tile's, a strip's) come from malloc's heap once glibc's
    adaptive threshold has risen past them, and the heap keeps the pages they freed:
    at 16 MP the encoder's resident memory was about twice what was live at its peak.
    Called between the encoder's stages, it costs milliseconds.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim():
    global _TRIM
    if _TRIM is False:
        import ctypes  # noqa: PLC0415
        import ctypes.util  # noqa: PLC0415

        _TRIM = None
        name = ctypes.util.find_library("c")
        try:
            _TRIM = ctypes.CDLL(name).malloc_trim if name else None
        except (OSError, AttributeError):  # not glibc (macOS, musl without it, Windows)
            _TRIM = None
    return _TRIM


_TRIM = False
