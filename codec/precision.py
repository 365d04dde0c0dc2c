"""The arithmetic the shipped networks run in at inference: float32 or bfloat16.

The mask networks (:mod:`inpcodec.learned_masks`) and the GAN post-processor
(:mod:`inpcodec.codec.postprocess`) are loaded for inference in the dtype of
:func:`inference_dtype`; training always runs in float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Inference precisions of the loaded networks (:func:`inference_dtype`).
PRECISIONS = ("auto", "float32", "bfloat16")


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
