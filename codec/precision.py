"""The arithmetic the shipped networks run in at inference: float32 or bfloat16.

The mask networks (:mod:`inpcodec.learned_masks`) and the GAN post-processor
(:mod:`inpcodec.codec.postprocess`) are loaded for inference in the dtype of
:func:`inference_dtype`.  Training keeps float32 weights, and may run its forward passes
in bfloat16 (``TRAINING_PRECISIONS``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Inference precisions of the loaded networks (:func:`inference_dtype`).
PRECISIONS = ("auto", "float32", "bfloat16")
#: Arithmetic of a training run's forward passes (:func:`autocast`):
#: float32, or bfloat16 autocast (weights, gradients and optimiser states stay float32).
TRAINING_PRECISIONS = ("float32", "bfloat16")


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles)."""
    import torch  # noqa: PLC0415 (the CLI imports this module for PRECISIONS alone)

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    except RuntimeError:  # pragma: no cover - a build without the CPU probes
        return False


def inference_dtype(precision: str = "auto") -> torch.dtype:
    """The dtype a network loaded for inference on the CPU runs in.

    ``"auto"`` is bfloat16 where the CPU computes it in hardware, float32 elsewhere.
    There oneDNN runs the mask U-nets' thin convolutions 2.7x faster and the GAN 1.6x, and
    the results are the same to within noise (``benchmarks/bench_precision.py``,
    ``benchmarks/RESULTS.md``): on 87 test images the mean inpainting PSNR of the learned
    masks moves by -0.001 to -0.002 dB (99.97 % of the tree masks' pixels equal), the
    post-processor's gain by at most 0.002 dB per file.
    Masks made in bfloat16 differ slightly from those of a float32 machine; decoding
    without the post-processor is not affected (the file stores the mask).
    """
    import torch  # noqa: PLC0415

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if native_bfloat16() else torch.float32
    return getattr(torch, precision)


def check_training_precision(precision: str) -> None:
    """Refuse, with a one-line ValueError, a precision not in TRAINING_PRECISIONS."""
    if precision not in TRAINING_PRECISIONS:
        raise ValueError(f"training precision must be one of "
                         f"{', '.join(TRAINING_PRECISIONS)}, got {precision!r}")


def autocast(device: str, precision: str):
    """The context the forward passes and losses of a training step run in.

    ``bfloat16``: :func:`torch.autocast` to bfloat16, where convolutions and matrix
    products run in bfloat16 and reductions and losses in float32; no loss scaling is
    needed (bfloat16 has float32's exponent range).  On a CPU that computes bfloat16 in
    hardware (AMX, AVX512-BF16) a post-processor training step takes 0.59x the time of
    float32 (benchmarks/RESULTS.md, "Training in bfloat16").  ``float32``: no autocast.
    Backward passes run outside the context, as PyTorch recommends.
    """
    import torch  # noqa: PLC0415

    check_training_precision(precision)
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
