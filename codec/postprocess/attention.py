"""Multi-head temperature masked self-attention (MHTMA), sections III-C and III-D of the seed.

Per head (Algorithm 1 of Zhou, Gong and Zeng):

1. a channel-wise fully connected layer (1x1 convolution) reduces the input features
   ``F_in`` (C channels) to the embedded features ``F_e`` (C' channels);
2. ``s x s`` patches of ``F_e`` are unrolled into queries, keys and values;
3. queries and keys are normalised to unit length and scored, ``S = Q K^T`` (eq. 7);
4. keys from missing regions are pushed to ``-lambda_m`` (eqs. 8-9):
   ``S_m = M' * (S / t + lambda_m) - lambda_m``;
5. ``W = softmax(S_m)`` (eq. 10), ``P = W V`` (eq. 11);
6. the refined patches are rolled back (folded, overlaps averaged).

The K heads are concatenated (eq. 12).  Each head's temperature ``t`` is predicted from
``F_in`` by the embedding network of Fig. 4 (:class:`TemperatureNet`), which ends in a
Softplus so that ``t`` stays positive (eqs. 13-14).

How the cost is bounded (our choice; the seed attends globally on 256 x 256 inputs).  The
query positions are cut into ``tile x tile`` tiles, and the queries of a tile attend to
the keys of a window around it (the tile plus ``halo`` cells on every side), taken on a
grid of stride ``key_stride``.  Every query therefore scores at most
``((tile + 2 halo) / key_stride) ** 2`` keys (576 by default) whatever the image size, so
the work grows linearly with the image area.  With the defaults (features at 1/4 of the
image resolution) a window spans 192 x 192 image pixels: a 128 x 128 training crop (32 x
32 features) lies inside every window, so in training the attention is the seed's global
attention on a stride-2 key grid; on larger images (and on the 256 x 256 crops of the
hole task) it is global within the window.  The key stride plays the role of the
downsampled background of contextual attention (DeepFill matches on a grid of rate 2).
Queries are processed a strip of tile rows at a time, with the strip height chosen so
that the score matrix of a strip holds at most ``max_elements`` numbers; every product is
a batched matrix product over the tiles (and over batch and heads).  Keys whose patch
leaves the feature map are left out (the seed extracts keys without padding); so are the
windows' parts beyond the map.  Eq. (9) is applied as an additive bias inside the batched
product (see :func:`masked_window_attention`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: lambda_m of eq. (9): the score of keys from missing regions.  It must exceed the largest
#: |S / t| (at most 1 / T_MIN = 1000, since S is a cosine), so that those keys get a weight
#: of exactly zero (exp(-1e4) underflows) whenever a valid key exists in the window.
LAMBDA_M = 1e4
#: Score of "keys" outside the feature map (window padding, border patches): far below
#: -LAMBDA_M, so that they get no weight even when every real key of a window is invalid
#: (then the weights go to the invalid real keys).
ABSENT = -1e9
#: Floor added to the Softplus: keeps t > 0 even where Softplus underflows to 0 in float32.
T_MIN = 1e-3
#: Score-matrix elements per strip of query tiles (64 MiB of float32).
MAX_ELEMENTS = 1 << 24
RULES = ("all", "any")


def key_validity(known: torch.Tensor, factor: int, rule: str, patch: int = 3) -> torch.Tensor:
    """Which feature-map positions may serve as keys: the binary vector ``m'`` of eq. (8).

    Parameters
    ----------
    known : Tensor, shape (B, 1, H, W)
        1 where the pixel is known, 0 where it is missing; H and W multiples of ``factor``.
    factor : int
        Down-sampling from the image to the feature map (4 in the generator).
    rule : {"all", "any"}
        ``"all"`` is the seed's rule for holes: a feature cell is missing if any of its
        pixels is, and a key is valid only if no cell of its ``patch x patch`` patch is
        missing (``sum(m_i) = 0``).  ``"any"`` is the rule of the decoder post-processor,
        where 90-99 % of the pixels are "missing" and the seed's rule would reject every
        key: a cell is known if it holds a known pixel, and a key is valid if its patch
        holds a known cell, i.e. its values carry stored data rather than only diffusion.

    Returns
    -------
    Tensor, shape (B, 1, H / factor, W / factor)
        1.0 for valid keys, 0.0 otherwise.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    pad = patch // 2
    if rule == "all":
        missing_cell = F.max_pool2d(1.0 - known, factor)
        return 1.0 - F.max_pool2d(missing_cell, patch, stride=1, padding=pad)
    known_cell = F.max_pool2d(known, factor)
    return F.max_pool2d(known_cell, patch, stride=1, padding=pad)


def _blocks(grid: torch.Tensor, block: int, pad: int, value: float) -> torch.Tensor:
    """(N, C, Y block, X block) -> (N, Y + 2 pad, X + 2 pad, block**2, C), padded by blocks.

    Channels last, so that gathering the blocks of a window copies contiguous runs.
    """
    n, c, gh, gw = grid.shape
    b = grid.reshape(n, c, gh // block, block, gw // block, block).permute(0, 2, 4, 3, 5, 1)
    b = b.reshape(n, gh // block, gw // block, block * block, c)
    return F.pad(b, (0, 0, 0, 0, pad, pad, pad, pad), value=value)


def _windows(blocks: torch.Tensor, r0: int, r1: int, span: int) -> torch.Tensor:
    """The keys of the windows of tile rows r0..r1: (N, L, span**2 * block**2, C).

    The window of tile (i, j) is the ``span x span`` group of blocks centred on block
    (i, j) of the padded block grid (L tiles of the strip, row-major).
    """
    n, _, bx2, bb, c = blocks.shape
    bx = bx2 - span + 1
    win = torch.stack([blocks[:, r0 + di:r1 + di, dj:dj + bx]
                       for di in range(span) for dj in range(span)], dim=3)
    return win.reshape(n, (r1 - r0) * bx, span * span * bb, c)


def masked_window_attention(fe: torch.Tensor, valid: torch.Tensor, temperature: torch.Tensor,
                            *, patch: int = 3, tile: int = 16, halo: int = 16,
                            key_stride: int = 2, lambda_m: float = LAMBDA_M,
                            max_elements: int = MAX_ELEMENTS, return_weights: bool = False):
    """One temperature masked self-attention per batch entry (Algorithm 1), windowed.

    Parameters
    ----------
    fe : Tensor, shape (N, C, H, W)
        Embedded features ``F_e`` (N = batch x heads).
    valid : Tensor, shape (N, 1, H, W)
        Key validity ``m'`` (1 valid, 0 from a missing region), see :func:`key_validity`.
    temperature : Tensor, shape (N,)
        Positive temperatures ``t``.
    patch : int
        Patch side ``s`` (odd).
    tile, halo, key_stride : int
        Queries of a ``tile x tile`` tile attend to the keys within ``halo`` cells of the
        tile, on a grid of stride ``key_stride``; ``tile`` must be a multiple of
        ``key_stride`` and ``halo`` a multiple of ``tile``.
    max_elements : int
        Bound on the elements of the score matrix of one strip of tiles (memory).
    return_weights : bool
        Also return the attention weights ``W``, shape (N, L, tile**2, keys per window),
        of every tile (L tiles, row-major; queries row-major within the tile), and the
        flat index (into H x W) of every window key, shape (L, keys per window), -1 where
        the window reaches beyond the map or the key's patch would.  For tests.

    Returns
    -------
    Tensor, shape (N, C, H, W)
        The refined features ``F_r`` (rolled back, overlapping patches averaged).
    """
    if patch < 1 or patch % 2 != 1:
        raise ValueError(f"patch must be odd and positive, got {patch}")
    if tile < key_stride or tile % key_stride or halo < 0 or halo % tile:
        raise ValueError("tile must be a multiple of key_stride and halo one of tile, got "
                         f"tile {tile}, halo {halo}, key_stride {key_stride}")
    n, c, h, w = fe.shape
    r = patch // 2
    d = c * patch * patch
    # unrolling: the patch around every position (zero padding, one query per position)
    raw = F.unfold(fe, patch, padding=r).view(n, d, h, w)
    unit = raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-6)
    # a key exists if its patch lies inside the map; validity per eq. (8) comes from outside
    exists = torch.zeros(1, 1, h, w, dtype=torch.bool, device=fe.device)
    exists[..., r:h - r, r:w - r] = True
    hp, wp = -(-h // tile) * tile, -(-w // tile) * tile
    pad = (0, wp - w, 0, hp - h)
    unit_p, raw_p = F.pad(unit, pad), F.pad(raw, pad)
    # eq. (9) as an additive bias, added inside the batched product: 0 for valid keys,
    # -lambda_m for keys from missing regions, ABSENT for what is no key at all.  Keys with
    # the bias get exactly zero weight (exp(-1e4) underflows) whenever their window holds
    # a valid key; only in a window without any valid key do the weights differ from the
    # seed's M' (S/t + lambda_m) - lambda_m: they follow S/t instead of being uniform.
    bias = torch.where(valid > 0.5, 0.0, -lambda_m).to(fe.dtype)
    bias = F.pad(torch.where(exists, bias, ABSENT), pad, value=ABSENT)
    ks, step, span = key_stride, tile // key_stride, 1 + 2 * (halo // tile)
    halo_blocks = halo // tile
    keys = _blocks(unit_p[:, :, ::ks, ::ks], step, halo_blocks, 0.0)
    values = _blocks(raw_p[:, :, ::ks, ::ks], step, halo_blocks, 0.0)
    kbias = _blocks(bias[:, :, ::ks, ::ks], step, halo_blocks, ABSENT)
    queries = _blocks(unit_p, tile, 0, 0.0)                     # (N, ty, tx, tile^2, d)
    ty, tx = hp // tile, wp // tile
    nkeys = span * span * step * step
    rows_per_chunk = max(1, max_elements // (n * tx * tile * tile * nkeys))
    inv_t = 1.0 / temperature.view(n, 1, 1, 1, 1).to(fe.dtype)
    out = torch.empty(n, ty, tx, tile * tile, d, dtype=fe.dtype, device=fe.device)
    weights = []
    for r0 in range(0, ty, rows_per_chunk):
        r1 = min(ty, r0 + rows_per_chunk)
        nl = n * (r1 - r0) * tx
        k = _windows(keys, r0, r1, span).view(nl, nkeys, d)
        v = _windows(values, r0, r1, span).view(nl, nkeys, d)
        b = _windows(kbias, r0, r1, span).view(nl, 1, nkeys)
        q = (queries[:, r0:r1] * inv_t).reshape(nl, tile * tile, d)
        s = torch.baddbmm(b, q, k.transpose(1, 2))              # (Q / t) K^T = S / t (eq. 7, 9)
        wgt = torch.softmax(s, dim=-1)                          # eq. (10)
        out[:, r0:r1] = torch.bmm(wgt, v).view(n, r1 - r0, tx, tile * tile, d)  # eq. (11)
        if return_weights:
            weights.append(wgt.view(n, (r1 - r0) * tx, tile * tile, nkeys))
    # rolling: every refined patch back at its place, overlapping contributions averaged
    patches = out.view(n, ty, tx, tile, tile, d).permute(0, 5, 1, 3, 2, 4)
    patches = patches.reshape(n, d, hp, wp)[:, :, :h, :w].reshape(n, d, h * w)
    summed = F.fold(patches, (h, w), patch, padding=r)
    count = F.fold(torch.ones(1, patch * patch, h * w, dtype=fe.dtype, device=fe.device),
                   (h, w), patch, padding=r)
    refined = summed / count
    if not return_weights:
        return refined
    index = torch.arange(h * w, dtype=torch.float64, device=fe.device).view(1, 1, h, w)
    index = F.pad(torch.where(exists, index, -1.0), pad, value=-1.0)
    index = _windows(_blocks(index[:, :, ::ks, ::ks], step, halo_blocks, -1.0), 0, ty, span)
    return refined, torch.cat(weights, dim=1), index[0, :, :, 0].long()


def inverse_softplus(y: float) -> float:
    """x with softplus(x) = y (y > 0)."""
    return y + math.log(-math.expm1(-y))


class TemperatureNet(nn.Module):
    """The embedding network of Fig. 4: one positive temperature per head and image.

    Four 3x3 convolutions (stride 2, LeakyReLU) encode ``F_in``; global average pooling
    and global max pooling run in parallel and are concatenated; a fully connected layer
    gives one number per head, and Softplus (plus ``T_MIN``) makes it a temperature.  The
    layer starts with small weights and biases that put the initial temperatures at
    ``t_init`` (one per head, spread so that the heads can settle on a low and a high
    temperature, as the seed's Fig. 6 shows they do).
    """

    def __init__(self, channels: int, heads: int, width: int = 16,
                 t_init: tuple[float, ...] | None = None):
        super().__init__()
        layers, cin = [], channels
        for _ in range(4):
            layers += [nn.Conv2d(cin, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin = width
        self.encode = nn.Sequential(*layers)
        self.fc = nn.Linear(2 * width, heads)
        if t_init is None:
            t_init = tuple(0.05 * 10 ** (k / max(heads - 1, 1)) for k in range(heads))
        if len(t_init) != heads:
            raise ValueError(f"need {heads} initial temperatures, got {len(t_init)}")
        with torch.no_grad():
            self.fc.weight.mul_(0.1)
            self.fc.bias.copy_(torch.tensor([inverse_softplus(t - T_MIN) for t in t_init]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.encode(x)
        pooled = torch.cat([y.mean(dim=(2, 3)), y.amax(dim=(2, 3))], dim=1)
        return F.softplus(self.fc(pooled)) + T_MIN


class MHTMA(nn.Module):
    """Multi-head temperature masked self-attention (Fig. 3, eq. 12).

    Parameters
    ----------
    channels : int
        Channels C of ``F_in``.
    heads : int
        K, the number of heads (the seed uses two: a low and a high temperature).
    head_channels : int
        C', the embedded channels per head; the output has ``heads * head_channels``.
    patch, tile, halo, key_stride, max_elements
        See :func:`masked_window_attention`.
    temperature_width : int
        Channels of the temperature network's convolutions.
    """

    def __init__(self, channels: int, heads: int = 2, head_channels: int = 16, *,
                 patch: int = 3, tile: int = 16, halo: int = 16, key_stride: int = 2,
                 max_elements: int = MAX_ELEMENTS, temperature_width: int = 16):
        super().__init__()
        self.heads, self.head_channels = heads, head_channels
        self.options = {"patch": patch, "tile": tile, "halo": halo, "key_stride": key_stride,
                        "max_elements": max_elements}
        # the K channel-wise fully connected networks F_dr, as one 1x1 convolution
        self.reduce = nn.Conv2d(channels, heads * head_channels, 1)
        self.temperature = TemperatureNet(channels, heads, temperature_width)
        self.last_temperature: torch.Tensor | None = None

    @property
    def out_channels(self) -> int:
        return self.heads * self.head_channels

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, H, W) features, ``valid`` (B, 1, H, W) key validity (eq. 8)."""
        b, _, h, w = x.shape
        fe = self.reduce(x).reshape(b * self.heads, self.head_channels, h, w)
        t = self.temperature(x)                                 # (B, K)
        self.last_temperature = t.detach()
        out = masked_window_attention(fe, valid.repeat_interleave(self.heads, dim=0),
                                      t.reshape(-1), **self.options)
        return out.reshape(b, self.out_channels, h, w)
