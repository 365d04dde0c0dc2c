"""Learned masks at inference: network forward pass, binarisation, best-of-N sampling."""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from inpcodec.codec.encoders import MaskResult, check_image, target_count
from inpcodec.codec.precision import inference_dtype

from .networks import MIN_SIDE, MULTIPLE, MaskNet

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The shipped density-conditioned mask network (see its provenance JSON beside it).
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mask_net.safetensors"
BINARISATIONS = ("coin", "dither")


def load_mask_network(path: str | Path | None = None, *,
                      precision: str = "auto") -> MaskNet:
    """Load a mask network from a safetensors file (default: the shipped weights).

    Reads only the local file: no network access.  ``precision``: the dtype of the
    U-net's convolutions, see :func:`inpcodec.codec.precision.inference_dtype`
    (bfloat16 where the CPU has it; the mask arithmetic around the U-net stays float32).
    """
    return _load(str(Path(path) if path is not None else DEFAULT_WEIGHTS),
                 inference_dtype(precision))


@lru_cache(maxsize=4)
def _load(path: str, dtype: torch.dtype) -> MaskNet:
    from safetensors import safe_open  # noqa: PLC0415
    from safetensors.torch import load_file  # noqa: PLC0415

    if not Path(path).is_file():
        raise FileNotFoundError(f"mask network weights not found: {path}")
    with safe_open(path, framework="pt") as fh:
        meta = fh.metadata() or {}
    net = MaskNet(conditioned=meta.get("conditioned", "True") == "True",
                  prior=meta.get("prior", "none") == "belhachmi")
    net.load_state_dict(load_file(path))
    net.unet.to(dtype)
    net.eval()
    net.density_range = (float(meta.get("density_min", 0.01)),
                         float(meta.get("density_max", 0.1)))
    return net


def mask_probabilities(image, density: float, *, network: MaskNet | None = None,
                       scale: float = 255.0) -> np.ndarray:
    """Non-binary mask (confidences in [0, 1], mean at most ``density``) of a grey image.

    The image (values in [0, ``scale``]) is padded by reflection to a multiple of 16 (and
    at least 32) per side, passed through the network, and cropped back; the crop is
    rescaled once more so that its own mean does not exceed the density.
    """
    f = check_image(image)
    target_count(f.shape, density)  # validates the density
    net = network if network is not None else load_mask_network()
    h, w = f.shape
    ph = max(MIN_SIDE, -(-h // MULTIPLE) * MULTIPLE) - h
    pw = max(MIN_SIDE, -(-w // MULTIPLE) * MULTIPLE) - w
    planes = [f / scale]
    if net.prior:
        from inpcodec.baselines import belhachmi_density  # noqa: PLC0415

        planes.append(belhachmi_density(f, density))
    x = torch.from_numpy(np.stack(planes).astype(np.float32))[None]
    if ph or pw:
        # reflection (as inside the network) needs a pad smaller than the side
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    device = next(net.parameters()).device
    x = x.to(device)
    with torch.inference_mode():
        c = net(x[:, :1], torch.tensor([density], dtype=torch.float32, device=device),
                x[:, 1:] if net.prior else None)
    c = c[0, 0, :h, :w].double().cpu().numpy()
    mean = c.mean()
    if mean > density:
        c = c * (density / mean)
    return np.clip(c, 0.0, 1.0)


def binarise(c: np.ndarray, density: float, *, method: str = "coin",
             rng: np.random.Generator | None = None) -> np.ndarray:
    """Binary mask with exactly ``round(density * size)`` points from confidences ``c``.

    ``"coin"``: the seed's weighted coin flip per pixel, then the count is made exact by
    removing surplus points (weighted towards low confidence) or adding missing ones
    (weighted towards high confidence), both by Efraimidis-Spirakis keys.
    ``"dither"``: deterministic Floyd-Steinberg dithering of ``c`` to the exact count.
    """
    if method not in BINARISATIONS:
        raise ValueError(f"binarisation must be one of {', '.join(BINARISATIONS)}, "
                         f"got {method!r}")
    count = target_count(c.shape, density)
    if method == "dither":
        from inpcodec.baselines.belhachmi import dither_to_count  # noqa: PLC0415

        return dither_to_count(c, count)[0]
    rng = rng if rng is not None else np.random.default_rng(0)
    flat = c.ravel()
    m = rng.random(flat.size) < flat
    diff = count - int(m.sum())
    if diff:
        # largest log(u) / w wins: sampling without replacement with weights w
        if diff > 0:
            cand, weight = np.flatnonzero(~m), flat[~m]
        else:
            cand, weight = np.flatnonzero(m), 1.0 - flat[m]
        key = np.log(rng.random(cand.size)) / np.maximum(weight, 1e-12)
        pick = cand[np.argpartition(-key, abs(diff) - 1)[:abs(diff)]]
        m[pick] = diff > 0
    return m.reshape(c.shape)


def learned_mask(image, density: float, *, samples: int = 1, binarisation: str = "dither",
                 seed: int = 0, network: MaskNet | None = None, solver: str = "auto",
                 scale: float = 255.0) -> MaskResult:
    """Inpainting mask of a grey image from the learned mask network.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Grey image with values in [0, ``scale``].
    density : float
        Fraction of pixels to keep, in (0, 1]; the mask has exactly
        ``round(density * H * W)`` points.  The shipped network was trained for 1-10 %.
    samples : int
        Best-of-N: with ``binarisation="coin"``, draw N masks and keep the one whose
        real inpainting (``codec.inpaint``) has the lowest error (the seed uses N = 30).
        N = 1 needs no inpainting at all.
    binarisation : {"dither", "coin"}
        Floyd-Steinberg dithering (deterministic; ``samples`` must be 1; the default: the
        shipped network was trained through dithered masks) or a weighted coin flip
        (seeded, as in the seed paper).
    seed : int
        Seed of the coin flips.
    network : MaskNet, optional
        Default: the shipped weights.

    Returns
    -------
    MaskResult
        ``info`` holds ``forward_seconds``, ``sampling_seconds`` and the best sample's MSE.
    """
    f = check_image(image)
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    if binarisation == "dither" and samples != 1:
        raise ValueError("dithering is deterministic: use samples=1 with it")
    t0 = time.perf_counter()
    c = mask_probabilities(f, density, network=network, scale=scale)
    t1 = time.perf_counter()
    rng = np.random.default_rng(seed)
    best, best_err, inpaintings = None, None, 0
    if samples == 1:
        best = binarise(c, density, method=binarisation, rng=rng)
    else:
        from inpcodec.codec.diffusion import inpaint  # noqa: PLC0415

        for _ in range(samples):
            m = binarise(c, density, method="coin", rng=rng)
            err = float(np.mean((inpaint(f, m, solver=solver) - f) ** 2))
            inpaintings += 1
            if best_err is None or err < best_err:
                best, best_err = m, err
    t2 = time.perf_counter()
    return MaskResult(best, inpaintings, t2 - t0,
                      {"forward_seconds": t1 - t0, "sampling_seconds": t2 - t1,
                       "samples": samples, "binarisation": binarisation, "mse": best_err})
