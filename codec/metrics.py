"""Quality metrics of a decoded image against its original: the one place for PSNR,
SSIM, MS-SSIM and luma, so that every table of the project measures the same way.

SSIM and MS-SSIM are pytorch-msssim's (Gaussian 11 x 11 window, sigma 1.5, the
constants of Wang et al.), computed in float64 on all channels.
"""

from __future__ import annotations

import math

import numpy as np

#: pytorch-msssim's MS-SSIM (5 scales, 11 x 11 window) needs a smaller side above this.
MS_SSIM_MIN_SIDE = 160


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0, *, transform=None) -> float:
    """PSNR in dB of two images whose values peak at ``peak``; inf when they are equal
    (``transform``: as :func:`mse`)."""
    e = mse(a, b, transform=transform)
    return math.inf if e == 0 else float(10 * np.log10(peak**2 / e))


#: Pixels whose differences are taken at a time: a strip of rows, not the image, is in
#: memory (as float64 or int64 differences).
_SSE_STRIP = 1 << 16


def _strips(a: np.ndarray):
    rows = max(1, _SSE_STRIP // max(1, a[0].size))
    return range(0, a.shape[0], rows), rows


def mse(a: np.ndarray, b: np.ndarray, *, transform=None) -> float:
    """Mean squared error in float64, summed over strips of rows (so a large image's
    float copies are never whole); ``transform`` maps each strip of both first (e.g. RGB
    to luma)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes {a.shape} and {b.shape} differ")
    if a.size == 0:
        return math.nan
    starts, rows = _strips(a)
    total, count = 0.0, 0
    for y in starts:
        sa, sb = a[y:y + rows].astype(np.float64), b[y:y + rows].astype(np.float64)
        if transform is not None:
            sa, sb = transform(sa), transform(sb)
        d = (sa - sb).ravel()
        total += float(np.dot(d, d))
        count += d.size
    return total / count


def squared_error(a: np.ndarray, b: np.ndarray) -> int:
    """Sum of squared differences of two integer images, exact (int64 per strip of rows)."""
    a, b = np.asarray(a), np.asarray(b)
    starts, rows = _strips(a)
    total = 0
    for y in starts:
        d = a[y:y + rows].astype(np.int64) - b[y:y + rows]
        total += int(np.dot(d.ravel(), d.ravel()))
    return total


def luma(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma Y' in [0, 255] (float64); grey images pass through."""
    img = np.asarray(img, np.float64)
    if img.ndim == 2:
        return img
    return img @ np.array([0.299, 0.587, 0.114])


def _tensor(img: np.ndarray):
    import torch  # noqa: PLC0415

    a = np.asarray(img, np.float64)
    a = a[None, None] if a.ndim == 2 else a.transpose(2, 0, 1)[None]
    return torch.from_numpy(np.ascontiguousarray(a))


def _msssim_module():
    """pytorch-msssim, or None in the light install (no PyTorch): SSIM and MS-SSIM are
    then NaN, as for images too small for them."""
    try:
        import pytorch_msssim  # noqa: PLC0415 (imports torch)
    except ImportError:
        return None
    return pytorch_msssim


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """SSIM of two images (grey or RGB, values peaking at ``peak``); NaN without PyTorch."""
    mod = _msssim_module()
    if mod is None:
        return math.nan
    return float(mod.ssim(_tensor(a), _tensor(b), data_range=peak))


def ms_ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """MS-SSIM of two images; NaN when the smaller side is at most ``MS_SSIM_MIN_SIDE``
    or without PyTorch."""
    mod = _msssim_module()
    if mod is None or min(np.shape(a)[:2]) <= MS_SSIM_MIN_SIDE:
        return math.nan
    return float(mod.ms_ssim(_tensor(a), _tensor(b), data_range=peak))


def quality(decoded: np.ndarray, original: np.ndarray) -> dict:
    """PSNR (all channels, and luma), SSIM and MS-SSIM (pytorch-msssim, on all channels).

    MS-SSIM is NaN for images whose smaller side is at most ``MS_SSIM_MIN_SIDE`` (its five
    scales do not fit); SSIM and MS-SSIM are NaN without PyTorch (the ``learned`` extra).
    Computed in float64 so the figures do not depend on the machine.
    """
    if decoded.shape != original.shape:
        raise ValueError(f"decoded shape {decoded.shape} differs from {original.shape}")
    return {"psnr": psnr(decoded, original), "psnr_y": psnr(luma(decoded), luma(original)),
            "ssim": ssim(decoded, original), "ms_ssim": ms_ssim(decoded, original)}
