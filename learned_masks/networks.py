"""The two U-nets of Alt, Peter and Weickert (2021): a mask network and a surrogate solver.

Both have the seed's shape: 5 scales, 3 convolutions per scale on the way down and 3 on
the way up, 10 channels on the finest scale doubling per scale (10, 20, 40, 80, 160),
about 9.2e5 parameters.  Convolutions pad by reflection, the discrete counterpart of the
reflecting boundary of the inpainting equation, so that the networks see no artificial
zero frame.  The seed does not give the activation or the resampling: we use LeakyReLU,
2x2 average pooling down and bilinear upsampling up.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Input sides are padded to a multiple of this (four 2x poolings) ...
MULTIPLE = 16
#: ... and to at least this, so that the coarsest scale is 2x2 and reflection padding works.
MIN_SIDE = 32

WIDTHS = (10, 20, 40, 80, 160)


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")


class UNet(nn.Module):
    """U-net with 5 scales and 3 convolutions per scale in each path.

    Down path: at scale s, three convolutions (the first maps to ``WIDTHS[s]``), then
    average pooling.  The coarsest scale maps 80 -> 160 -> 160 -> 80.  Up path: bilinear
    upsampling, concatenation with the skip, three convolutions that end at the width of
    the next finer scale (at the finest scale: ``out_channels``, no activation).
    """

    def __init__(self, in_channels: int, out_channels: int = 1, widths=WIDTHS):
        super().__init__()
        w = list(widths)
        n = len(w)
        self.down = nn.ModuleList()
        cin = in_channels
        for s in range(n - 1):
            self.down.append(nn.ModuleList([_conv(cin, w[s]), _conv(w[s], w[s]),
                                            _conv(w[s], w[s])]))
            cin = w[s]
        self.bottom = nn.ModuleList([_conv(w[-2], w[-1]), _conv(w[-1], w[-1]),
                                     _conv(w[-1], w[-2])])
        self.up = nn.ModuleList()
        for s in reversed(range(n - 1)):
            last = w[s - 1] if s > 0 else out_channels
            self.up.append(nn.ModuleList([_conv(2 * w[s], w[s]), _conv(w[s], w[s]),
                                          _conv(w[s], last)]))
        self.act = nn.LeakyReLU(0.1)
        # channels-last tensors let oneDNN run these thin convolutions 1.5x faster on the
        # CPU (forward and backward, measured at 512x512 and in training); the weights keep
        # that layout through load_state_dict, and safetensors files store them contiguous
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a network cast to bfloat16 for inference takes and returns the caller's dtype
        dtype = x.dtype
        x = x.to(self.down[0][0].weight.dtype).contiguous(memory_format=torch.channels_last)
        skips = []
        for convs in self.down:
            for conv in convs:
                x = self.act(conv(x))
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        for conv in self.bottom:
            x = self.act(conv(x))
        for i, convs in enumerate(self.up):
            skip = skips[-1 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, skip], dim=1)
            for j, conv in enumerate(convs):
                x = conv(x)
                if not (i == len(self.up) - 1 and j == len(convs) - 1):
                    x = self.act(x)
        return x.to(dtype)


def rescale_to_density(c: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
    """Scale each mask down to mean ``density`` where its mean exceeds it (the seed's rule).

    ``c`` has shape (B, 1, H, W), ``density`` shape (B,).  Masks below the density are left
    alone: the inpainting loss itself asks for more points.
    """
    mean = c.mean(dim=(1, 2, 3))
    factor = torch.clamp(density / mean.clamp_min(1e-12), max=1.0)
    return c * factor.view(-1, 1, 1, 1)


class MaskNet(nn.Module):
    """Image (and target density) -> non-binary mask in [0, 1] with mean at most the density.

    With ``conditioned=True`` (one network for every density) the density enters as a
    constant extra input plane holding ``log(d / 0.1)``; with ``conditioned=False`` the
    network is trained for one density, as in the seed.

    With ``prior=True`` the network refines Belhachmi's density map p (the analytic
    optimum of the continuous problem, :func:`baselines.belhachmi_density`), which it gets
    as a third input plane: the mask is ``p * 2 sigmoid(z)`` with z the U-net output.  The
    last convolution starts at zero, so an untrained network reproduces Belhachmi's map
    exactly, and training learns where to move density away from it.  Without the prior
    (the seed's network) the mask is ``sigmoid(z)``.
    """

    def __init__(self, conditioned: bool = True, prior: bool = False):
        super().__init__()
        self.conditioned, self.prior = conditioned, prior
        self.unet = UNet(1 + int(conditioned) + int(prior), 1)
        if prior:
            last = self.unet.up[-1][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, f: torch.Tensor, density: torch.Tensor,
                prior: torch.Tensor | None = None) -> torch.Tensor:
        x = [f - 0.5]
        dens = density.view(-1, 1, 1, 1).to(f.dtype)
        if self.conditioned:
            x.append(torch.log(dens / 0.1).expand_as(f))
        if self.prior:
            if prior is None or prior.shape != f.shape:
                raise ValueError("this mask network needs Belhachmi's density map of the "
                                 "image (prior) with the image's shape")
            # mean-one map on a log scale, about -2..1.2: an O(1) input
            x.append(0.25 * torch.log(prior / dens + 1e-3))
        z = self.unet(torch.cat(x, dim=1))
        c = prior * 2.0 * torch.sigmoid(z) if self.prior else torch.sigmoid(z)
        return rescale_to_density(c, density).clamp(max=1.0)


class InpaintNet(nn.Module):
    """Surrogate solver: (image, mask) -> reconstruction, trained on the PDE residual."""

    def __init__(self):
        super().__init__()
        self.unet = UNet(2, 1)

    def forward(self, f: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([f - 0.5, c], dim=1)) + 0.5


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
