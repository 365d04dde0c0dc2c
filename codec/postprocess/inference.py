"""The GAN inpainter at inference: decoder post-processing and free-form hole filling."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from inpcodec.codec.encoders import FREE_MASK_CODER, TREE_MASK_CODER
from inpcodec.codec.limits import available_memory
from inpcodec.codec.precision import inference_dtype

from .data import diffusion_fill
from .networks import MULTIPLE, TASKS, Generator, composite

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The shipped generators, one per task (each with its provenance JSON beside it).
DEFAULT_WEIGHTS = {"postprocess": WEIGHTS_DIR / "gan_postprocess.safetensors",
                   "holes": WEIGHTS_DIR / "gan_holes.safetensors"}
#: The decoder's post-processor for each mask coder: the one trained on that coder's decodes.
POSTPROCESS_WEIGHTS = {FREE_MASK_CODER: DEFAULT_WEIGHTS["postprocess"],
                       TREE_MASK_CODER: WEIGHTS_DIR / "gan_postprocess_tree.safetensors"}
#: ... and for the files of a mask coder whose luma the loop filter has corrected (format
#: version 6 on): the filter removes much of what the others learned to correct, so these
#: were trained on filtered decodes.  A coder without one here uses its entry above.
FILTERED_POSTPROCESS_WEIGHTS = {
    TREE_MASK_CODER: WEIGHTS_DIR / "gan_postprocess_tree_filtered.safetensors"}
#: Peak working memory of a forward pass per pixel, width 12 (measured: 1220 bytes at
#: 768 x 512, 715 at 1536 x 1024, where fixed costs weigh less).
BYTES_PER_PIXEL = 1300
ATTENTION_KEYS = ("patch", "tile", "halo", "key_stride")


def postprocess_weights(mask_coder: int, filtered: bool = False) -> Path:
    """The weights the decoder refines files of ``mask_coder`` with (``filtered``: files
    with a loop filter): :data:`FILTERED_POSTPROCESS_WEIGHTS`, else
    :data:`POSTPROCESS_WEIGHTS`."""
    if filtered and mask_coder in FILTERED_POSTPROCESS_WEIGHTS:
        return FILTERED_POSTPROCESS_WEIGHTS[mask_coder]
    if mask_coder not in POSTPROCESS_WEIGHTS:
        raise ValueError(f"no post-processor for mask coder {mask_coder}")
    return POSTPROCESS_WEIGHTS[mask_coder]


def strength_file(weights: str | Path) -> Path:
    """Where the strength calibration of a post-processor's weights lives: beside them,
    ``<stem>_strength.json`` (benchmarks/calibrate_gan_blend.py makes its content)."""
    weights = Path(weights)
    return weights.with_name(weights.stem + "_strength.json")


def _strength_fit(path: str) -> dict | None:
    import json  # noqa: PLC0415

    if not Path(path).is_file():
        return None
    try:
        fit = json.loads(Path(path).read_text())["fit"]
        return {mode: (float(fit[mode]["a"]), float(fit[mode]["b"]))
                for mode in ("grey", "colour")}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a strength calibration ({exc})") from None


def strength(weights: str | Path, density: float, colour: bool) -> float:
    """The share of the correction of the post-processor ``weights`` to apply to a file
    of this mask density: clip(a + b log2(density), 0, 1), with (a, b) of its calibration
    (:func:`strength_file`) for grey or colour files; 1 where the weights have none."""
    fit = _strength_fit(str(strength_file(weights)))
    if fit is None or density <= 0:
        return 1.0
    a, b = fit["colour" if colour else "grey"]
    return float(np.clip(a + b * np.log2(density), 0.0, 1.0))


def load_generator(path: str | Path | None = None, task: str = "postprocess", *,
                   mask_coder: int | None = None, filtered: bool = False,
                   precision: str = "auto") -> Generator:
    """A trained generator from a safetensors file (default: the shipped one of ``task``).

    Reads only the local file: no network access.  The architecture (width, heads,
    attention window) and the task come from the file's metadata.  ``mask_coder`` (with
    ``task="postprocess"`` and no ``path``) picks the post-processor trained on the
    decodes of that mask coder, with ``filtered`` the loop-filtered ones
    (:func:`postprocess_weights`).  ``precision``: the dtype
    of its convolutions and attention (:func:`inpcodec.codec.precision.inference_dtype`:
    bfloat16 where the CPU has it); the residual sums stay in float32.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if path is not None:
        file = Path(path)
    elif mask_coder is not None and task == "postprocess":
        file = postprocess_weights(mask_coder, filtered)
    else:
        file = DEFAULT_WEIGHTS[task]
    if path is None and not file.is_file():
        raise FileNotFoundError(f"no trained GAN weights for {task!r} at {file}; train them "
                                f"with `inpcodec train-gan --task {task}` (see "
                                f"{WEIGHTS_DIR / 'README.md'})")
    net = _load(str(file), inference_dtype(precision))
    if net.task != task:
        raise ValueError(f"{file}: these weights were trained for {net.task!r}, not {task!r}")
    return net


@lru_cache(maxsize=4)
def _load(path: str, dtype: torch.dtype) -> Generator:
    from safetensors import SafetensorError, safe_open  # noqa: PLC0415
    from safetensors.torch import load_file  # noqa: PLC0415

    if not Path(path).is_file():
        raise FileNotFoundError(f"GAN weights not found: {path}")
    try:
        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
        state = load_file(path)
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path}: not a safetensors weights file ({exc})") from None
    if "task" not in meta or "width" not in meta:
        raise ValueError(f"{path}: no GAN generator metadata (task, width)")
    attention = {k: int(meta[k]) for k in ATTENTION_KEYS if k in meta}
    # weights without "skip" predate the full-resolution skip (the seed's plain decoders),
    # those without "full_res_layers" the deeper full-resolution end (one layer)
    net = Generator(int(meta["width"]), int(meta.get("heads", 2)), meta["task"],
                    skip=meta.get("skip", "0") == "1",
                    full_res_layers=int(meta.get("full_res_layers", 1)), **attention)
    net.load_state_dict(state)
    return net.to(dtype).eval()


def metadata(net: Generator) -> dict:
    """The metadata :func:`load_generator` needs to rebuild ``net`` (strings)."""
    opts = net.refine.attention.options
    return {"task": net.task, "width": str(net.width), "heads": str(net.heads),
            "skip": str(int(net.skip)), "full_res_layers": str(net.full_res_layers),
            **{k: str(opts[k]) for k in ATTENTION_KEYS}}


def _check(image, mask, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"the image must be 8-bit (uint8), got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"the image must be (H, W) grey or (H, W, 3) RGB, got {a.shape}")
    if min(a.shape[:2]) < 1:
        raise ValueError(f"the image is empty (shape {a.shape})")
    m = np.asarray(mask)
    if m.shape != a.shape[:2]:
        raise ValueError(f"the {name} mask is {m.shape[1]}x{m.shape[0]} but the image is "
                         f"{a.shape[1]}x{a.shape[0]}")
    return a, m.astype(bool)


def _check_memory(height: int, width: int) -> None:
    need = height * width * BYTES_PER_PIXEL
    have = int(0.75 * available_memory())
    if need > have:
        raise ValueError(f"the GAN needs about {need / 2**30:.1f} GiB for a {width}x{height} "
                         f"image, more than the {have / 2**30:.1f} GiB available")


def run_generator(net: Generator, x: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Final result of ``net`` on one image, composited: float (3, H, W) in [-1, 1].

    ``x`` (3, H, W) in [-1, 1], ``missing`` (H, W) bool.  The image is padded to a
    multiple of 4 per side (by reflection, by replication if it is too small for that)
    and cropped back.
    """
    h, w = missing.shape
    _check_memory(h, w)
    device = next(net.parameters()).device  # where the network is (training on a GPU)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(device)
    mt = torch.from_numpy(missing.astype(np.float32))[None, None].to(device)
    ph, pw = -h % MULTIPLE, -w % MULTIPLE
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        xt, mt = F.pad(xt, (0, pw, 0, ph), mode=mode), F.pad(mt, (0, pw, 0, ph), mode=mode)
    with torch.inference_mode():
        _, out = net(xt, mt)
        out = composite(out, xt, mt)
    return out[0, :, :h, :w].cpu().numpy()


def _to_uint8(out: np.ndarray, image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> uint8 like ``image`` (grey: channel mean), ``keep`` exact."""
    out = (out + 1.0) * 127.5
    out = out.mean(axis=0) if image.ndim == 2 else out.transpose(1, 2, 0)
    result = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    result[keep] = image[keep]  # exactly, whatever the float round trip did
    return result


def _as_input(image: np.ndarray) -> np.ndarray:
    a = image.astype(np.float32) / 127.5 - 1.0
    return np.repeat(a[None], 3, axis=0) if a.ndim == 2 else a.transpose(2, 0, 1)


def refine(image, known, *, network: Generator | None = None,
           strength: float = 1.0) -> np.ndarray:
    """Post-process a homogeneous-diffusion reconstruction with the GAN.

    Parameters
    ----------
    image : array_like of uint8, shape (H, W) or (H, W, 3)
        The decoder's reconstruction (grey images are replicated to RGB for the network
        and its three output channels averaged back).
    known : array_like of bool, shape (H, W)
        The stored pixels (the inpainting mask).  They are returned unchanged.
    network : Generator, optional
        Default: the shipped post-processor (``load_generator(task="postprocess")``).
    strength : float, optional
        The share of the network's correction to apply, 0..1: the result is
        ``image + strength * (network output - image)`` (the decoder's: :func:`strength`).

    Returns
    -------
    numpy.ndarray of uint8, shaped like ``image``.
    """
    a, k = _check(image, known, "known-pixel")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in 0..1, got {strength}")
    net = network if network is not None else load_generator(task="postprocess")
    x = _as_input(a)
    out = run_generator(net, x, ~k)
    if strength != 1.0:
        out = x + np.float32(strength) * (out - x)
    return _to_uint8(out, a, k)


def inpaint_holes(image, holes, *, network: Generator | None = None) -> np.ndarray:
    """Fill free-form holes with the GAN (the seed's task).

    Parameters
    ----------
    image : array_like of uint8, shape (H, W) or (H, W, 3)
        The image; its values inside the holes are ignored.
    holes : array_like of bool, shape (H, W)
        True where the image is missing.
    network : Generator, optional
        Default: the shipped hole inpainter (``load_generator(task="holes")``).

    Returns
    -------
    numpy.ndarray of uint8, shaped like ``image``; pixels outside the holes unchanged.
    """
    a, m = _check(image, holes, "hole")
    net = network if network is not None else load_generator(task="holes")
    x = diffusion_fill(_as_input(a), m)
    return _to_uint8(run_generator(net, x, m), a, ~m)
