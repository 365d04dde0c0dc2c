"""Quality metrics of a decoded image against its original (uint8, grey or RGB)."""

from __future__ import annotations

import math

import numpy as np

#: pytorch-msssim's MS-SSIM (5 scales, 11 x 11 window) needs a smaller side above this.
MS_SSIM_MIN_SIDE = 160


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return math.inf if mse == 0 else float(10 * np.log10(255.0**2 / mse))


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


def quality(decoded: np.ndarray, original: np.ndarray) -> dict:
    """PSNR (all channels, and luma), SSIM and MS-SSIM (pytorch-msssim, on all channels).

    MS-SSIM is NaN for images whose smaller side is at most ``MS_SSIM_MIN_SIDE`` (its five
    scales do not fit).  Computed in float64 so the figures do not depend on the machine.
    """
    from pytorch_msssim import ms_ssim, ssim  # noqa: PLC0415

    if decoded.shape != original.shape:
        raise ValueError(f"decoded shape {decoded.shape} differs from {original.shape}")
    x, y = _tensor(decoded), _tensor(original)
    small = min(original.shape[:2]) <= MS_SSIM_MIN_SIDE
    return {
        "psnr": psnr(decoded, original),
        "psnr_y": psnr(luma(decoded), luma(original)),
        "ssim": float(ssim(x, y, data_range=255)),
        "ms_ssim": math.nan if small else float(ms_ssim(x, y, data_range=255)),
    }
