"""The reference codecs, through Pillow: JPEG, JPEG 2000, WebP, AVIF and JPEG XL at a target
rate (JPEG XL through the pillow-jxl-plugin package, libjxl at its default effort 7).

Each codec has one quality parameter along which the file size grows: JPEG, WebP, AVIF and
JPEG XL their integer ``quality``; JPEG 2000 (OpenJPEG, irreversible 9/7 wavelet) its compression
ratio.  :func:`encode_at_rate` searches that parameter for the file whose size is closest
to the target (bisection; sizes are measured on the real bytes).
"""

from __future__ import annotations

import io
import math

import numpy as np

REFERENCE_CODECS = ("jpeg", "jpeg2000", "webp", "avif", "jpegxl")

# Integer quality ranges (low quality = small file).
QUALITY_RANGES = {"jpeg": (1, 95), "webp": (0, 100), "avif": (0, 100), "jpegxl": (1, 99)}
_FORMAT = {"jpeg": "JPEG", "jpeg2000": "JPEG2000", "webp": "WEBP", "avif": "AVIF",
           "jpegxl": "JXL"}


def _register_jxl() -> None:
    try:
        import pillow_jxl  # noqa: F401, PLC0415 (registers JPEG XL with Pillow)
    except ImportError:
        raise RuntimeError("JPEG XL needs the pillow-jxl-plugin package (pip install "
                           "'inpcodec[bench]')") from None


def pillow_encode(img: np.ndarray, codec: str, param: float) -> bytes:
    """Bytes of ``img`` (uint8 grey or RGB) in ``codec`` at quality (or J2K ratio) ``param``."""
    from PIL import Image  # noqa: PLC0415

    if codec not in REFERENCE_CODECS:
        raise ValueError(f"unknown reference codec {codec!r}; choose one of "
                         f"{', '.join(REFERENCE_CODECS)}")
    opts: dict = {}
    if codec == "jpeg":
        opts = {"quality": int(param), "optimize": True}
    elif codec == "webp":
        opts = {"quality": int(param), "method": 6}
    elif codec == "avif":
        opts = {"quality": int(param)}
    elif codec == "jpegxl":
        _register_jxl()
        opts = {"quality": int(param)}
    else:
        # mct: the irreversible colour transform (YCbCr) that OpenJPEG's own encoder applies
        # to RGB; without it Pillow codes R, G and B apart (2.6 dB worse on kodim23).
        opts = {"quality_mode": "rates", "quality_layers": [float(param)],
                "irreversible": True, "mct": int(img.ndim == 3)}
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=_FORMAT[codec], **opts)
    return buf.getvalue()


def pillow_decode(data: bytes, grey: bool) -> np.ndarray:
    from PIL import Image  # noqa: PLC0415

    if data[:2] == b"\xff\x0a" or data[4:8] == b"JXL ":  # JPEG XL codestream or container
        _register_jxl()
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L" if grey else "RGB"))


def encode_at_rate(img: np.ndarray, codec: str, target_bpp: float) -> tuple[bytes, float]:
    """The file of ``codec`` whose rate is closest to ``target_bpp``; returns (bytes, param).

    Where the codec cannot get that small (JPEG at very low rates), the smallest file.
    """
    n = img.shape[0] * img.shape[1]

    def bpp(data):
        return 8.0 * len(data) / n

    if codec == "jpeg2000":
        # The ratio is to the raw size (8 bits per sample); the header makes the real rate
        # a little higher, so bisect on log(ratio).
        raw = 8.0 * (1 if img.ndim == 2 else 3)
        lo, hi = math.log(raw / (4 * target_bpp)), math.log(raw / (target_bpp / 4))
        best = None
        for _ in range(24):
            mid = 0.5 * (lo + hi)
            data = pillow_encode(img, codec, math.exp(mid))
            b = bpp(data)
            if best is None or abs(b - target_bpp) < abs(best[0] - target_bpp):
                best = (b, data, math.exp(mid))
            if abs(b / target_bpp - 1) < 0.002:
                break
            if b > target_bpp:
                lo = mid  # a larger ratio gives a smaller file
            else:
                hi = mid
        return best[1], best[2]
    qmin, qmax = QUALITY_RANGES[codec]
    cache: dict[int, bytes] = {}

    def enc(q):
        if q not in cache:
            cache[q] = pillow_encode(img, codec, q)
        return cache[q]

    lo, hi = qmin, qmax
    if bpp(enc(lo)) >= target_bpp:
        return enc(lo), float(lo)
    if bpp(enc(hi)) <= target_bpp:
        return enc(hi), float(hi)
    while hi - lo > 1:  # invariant: bpp(lo) < target <= bpp(hi)
        mid = (lo + hi) // 2
        if bpp(enc(mid)) < target_bpp:
            lo = mid
        else:
            hi = mid
    q = min((lo, hi), key=lambda q: abs(bpp(enc(q)) - target_bpp))
    return enc(q), float(q)
