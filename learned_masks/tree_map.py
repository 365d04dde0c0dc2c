"""The tree-map network: the tree encoder's error maps from one forward pass.

Error-driven densification (:func:`inpcodec.baselines.tree.error_driven_order`) splits
the leaves with the largest inpainting error, inpainting again after each batch.  Its
splits are reproduced, within 0.1 dB of inpainting PSNR, by ranking every cell by the
error that the *uniform* tree of the cell's depth leaves inside it
(:func:`inpcodec.baselines.tree.scale_error_order` with
:func:`~inpcodec.baselines.tree.uniform_error_maps`).  Those maps depend only on the image
and the cell size, so a network can learn them: this U-net (the mask network's family,
:class:`.networks.UNet`) maps a grey image to ``log1p`` of the squared error per pixel
for square cells of side 2, 4, ..., 256 pixels (one output channel per side).  The tree
for an image of any size reads the channel of each depth's cell side (interpolated in
log2 of the side), so mask generation needs no inpainting.

Training data (:func:`training_targets`): 257 x 257 grey crops, where the uniform trees
of every depth are exact power-of-two grids; their errors, averaged in the log domain over
half a cell (:func:`smooth_log_error`), are learned by regression (:mod:`.tree_training`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# the teacher's maps live with the tree encoders; re-exported here beside the student
from inpcodec.baselines.tree import (  # noqa: F401
    cell_log2_side,
    prefix_for_points,
    scale_error_order,
    smooth_log_error,
    teacher_error_maps,
    tree_from_order,
    uniform_error_maps,
)
from inpcodec.bitstreams.tree_coder import schedule, tree_mask
from inpcodec.codec.encoders import (
    TREE_MASK_CODER,
    MaskResult,
    check_image,
    register_cache,
    target_count,
)
from inpcodec.codec.precision import inference_dtype

from .networks import MIN_SIDE, MULTIPLE, UNet

#: log2 of the cell sides the output channels stand for (2 ... 256 pixels).
LOG2_SIDES = tuple(range(1, 9))
#: Side of the training crops: 2^8 + 1, so that every depth's cells are exact.
TARGET_SIDE = (1 << LOG2_SIDES[-1]) + 1
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "tree_map_net.safetensors"


class TreeMapNet(nn.Module):
    """Grey image in [0, 1], shape (N, 1, H, W) -> log1p squared error, (N, 8, H, W)."""

    def __init__(self):
        super().__init__()
        self.unet = UNet(1, len(LOG2_SIDES))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.unet(f)


def training_targets(crop) -> np.ndarray:
    """``log1p`` squared errors of the uniform trees of a 257 x 257 grey crop (0-255).

    Returns float32 of shape (8, 257, 257): channel j for cells of side
    ``2 ** LOG2_SIDES[j]``.
    """
    f = check_image(crop)
    if f.shape != (TARGET_SIDE, TARGET_SIDE):
        raise ValueError(f"training crops are {TARGET_SIDE}x{TARGET_SIDE}, got {f.shape}")
    maps = uniform_error_maps(f)  # depth d: cells of side 256 / 2^d
    top = LOG2_SIDES[-1]
    return np.stack([smooth_log_error(maps[top - s], 1 << s)
                     for s in LOG2_SIDES]).astype(np.float32)


def load_tree_map_network(path: str | Path | None = None, *,
                          precision: str = "auto") -> TreeMapNet:
    """Load a tree-map network from a safetensors file (default: the shipped weights).

    ``precision``: see :func:`inpcodec.codec.precision.inference_dtype` (bfloat16 where
    the CPU has it).
    """
    return _load(str(Path(path) if path is not None else DEFAULT_WEIGHTS),
                 inference_dtype(precision))


@lru_cache(maxsize=4)
def _load(path: str, dtype: torch.dtype) -> TreeMapNet:
    from safetensors.torch import load_file  # noqa: PLC0415

    if not Path(path).is_file():
        raise FileNotFoundError(f"tree-map network weights not found: {path}")
    net = TreeMapNet()
    net.load_state_dict(load_file(path))
    return net.to(dtype).eval()


def predicted_error_maps(image, *, network: TreeMapNet | None = None,
                         scale: float = 255.0) -> np.ndarray:
    """The network's squared-error maps of a grey image, float64 (8, H, W), in grey levels².

    The image is padded by reflection to a multiple of 16 per side (at least 32), as for
    the mask network, and the output cropped back.
    """
    f = check_image(image)
    net = network if network is not None else load_tree_map_network()
    h, w = f.shape
    ph = max(MIN_SIDE, -(-h // MULTIPLE) * MULTIPLE) - h
    pw = max(MIN_SIDE, -(-w // MULTIPLE) * MULTIPLE) - w
    x = torch.from_numpy((f / scale).astype(np.float32))[None, None]
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    x = x.to(next(net.parameters()).device)
    with torch.inference_mode():
        y = net(x)[0, :, :h, :w].double().cpu().numpy()
    return np.expm1(np.clip(y, 0.0, 30.0))


def error_at_depth(maps: np.ndarray, height: int, width: int, quad: bool = True):
    """The map of each depth of an image's tree, from the maps of the trained sides.

    Linear in log2 of the side between the two nearest trained sides; above the largest
    side the largest map grows as side^4 (the squared error of linear interpolation over
    a cell of side h grows as h^4 where the image is smooth); below the smallest, the
    smallest map.
    """
    sides = np.asarray(LOG2_SIDES, np.float64)
    sched = schedule(height, width, quad)

    def at(d: int) -> np.ndarray:
        s = cell_log2_side(height, width, sched[d])
        if s >= sides[-1]:
            return maps[-1] * 16.0 ** (s - sides[-1])
        if s <= sides[0]:
            return maps[0]
        j = int(np.searchsorted(sides, s)) - 1
        t = s - sides[j]
        return (1 - t) * maps[j] + t * maps[j + 1]

    return at


class _Orders(threading.local):
    """The last images' orders, per thread (as the other encoders' caches)."""

    def __init__(self):
        self.kept = OrderedDict()


_ORDERS = _Orders()
register_cache(lambda: _ORDERS.kept.clear())


def learned_tree_order(image, *, network: TreeMapNet | None = None, cache: bool = True):
    """The split order of the learned tree encoder (no inpainting).

    The order does not depend on the rate, so the last few images' orders are kept
    (``cache``): the rate search's many knobs cost one forward pass.  An entry holds its
    network, so the network's id in the key cannot be reused by another one.
    """
    f = check_image(image)
    net = network if network is not None else load_tree_map_network()
    key = (id(net), f.shape, hashlib.sha1(np.ascontiguousarray(f).tobytes()).hexdigest())
    kept = _ORDERS.kept
    if cache and key in kept:
        kept.move_to_end(key)
        return kept[key][1]
    maps = predicted_error_maps(f, network=net)
    order = scale_error_order(f.shape, error_at_depth(maps, *f.shape))
    if cache:
        kept[key] = (net, order)
        while len(kept) > 4:
            kept.popitem(last=False)
    return order


def learned_tree(image, density: float, *, network: TreeMapNet | None = None) -> MaskResult:
    """Tree mask with ``round(density * H * W)`` points or just more, from the network."""
    t0 = time.perf_counter()
    f = check_image(image)
    points = target_count(f.shape, density)
    order = learned_tree_order(f, network=network)
    tree = tree_from_order(order, prefix_for_points(order, points))
    return MaskResult(tree_mask(tree), 0, time.perf_counter() - t0,
                      {"method": "tree-learned", "splits": tree.n_splits()},
                      coder=TREE_MASK_CODER, structure=tree)
