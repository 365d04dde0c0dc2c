"""Generator and discriminator of the seed (Zhou, Gong and Zeng, section III-A), slimmed.

Generator: a coarse network and a refinement network, both built from gated convolutions
(DeepFill v2: ``ELU(conv_f(x)) * sigmoid(conv_g(x))``, one convolution giving both halves),
zero padding, no batch normalisation, nearest-neighbour upsampling before the gated
convolutions of the decoders (DeepFill's ``gen_deconv``).  Widths in *feature* channels
(after gating) at full, 1/2 and 1/4 resolution: ``c, 2c, 4c`` with ``c = width``
(DeepFill v2 runs its gated convolutions with 48, 96, 192 convolution outputs, i.e. 24, 48,
96 feature channels; we use ``c = 12``, i.e. 24 convolution outputs at full resolution,
half of DeepFill's 48: see :data:`DEFAULT_WIDTH`).

* Coarse network: gated 5x5 (c), gated stride 2 (2c), gated (2c), gated stride 2 (4c),
  2 gated (4c), 4 dilated gated (rates 2, 4, 8, 16), 2 gated (4c), up + gated (2c), gated
  (2c), up + gated (c), gated (c/2), 3x3 convolution to RGB.
* Refinement network, two encoders on the coarse result:
  an attention branch (gated 5x5, gated stride 2, gated, gated stride 2, 2 gated at 4c,
  MHTMA, 2 gated) and a convolution branch (gated 5x5, gated stride 2, gated, gated stride
  2, 2 gated at 4c, 4 dilated gated); their features are concatenated and decoded by
  5 gated convolutions (4c, up + 2c, 2c, up + c, c/2) and a 3x3 convolution.

Four departures from the seed, for the CPU budget and the codec's use:

* Each stage predicts a *correction* of its input, ``out = x + G(x, m)``, clipped to the
  image range, with the last convolution starting at zero.  For the post-processor the
  input is the complete diffusion reconstruction and the network starts as the identity:
  it can only learn to improve on it, which an encoder-decoder that had to re-synthesise
  every detail through its 1/4-resolution bottleneck could not do in an hour of CPU
  training.  For holes the input likewise has its holes filled by homogeneous diffusion
  (the seed fills them with the ImageNet mean), so that the hole inpainter, too, starts as
  the diffusion baseline: with the seed's constant fill a 40-minute CPU run at 256 x 256
  (608 steps) stayed 3 dB below diffusion on the validation holes.
* The attention is windowed (see :mod:`.attention`).
* Full-resolution skip (``skip=True``, the default since the weights of 2026-11-23): the
  last gated convolution of each decoder also sees the stage's input (image and mask).
  The seed's decoders rebuild the full resolution from 1/4-resolution features only, which
  suits holes but leaves a post-processor blind to where, to the pixel, the known pixels
  of a sparse mask are.  Measured on the decoder cache (crop 64, lr 1e-3): without the
  skip, 600 steps left the validation L1 at the plain decoder's; a plain 6-layer
  full-resolution CNN gained 3.4 % training L1 in 1000 steps (a throwaway script, not
  kept).  Weights without the skip
  (metadata without ``skip``) still load.
* A deeper full-resolution end of the refinement decoder (``full_res_layers``, 3 in
  training since 2026-11-24): its last gated convolution (c -> c/2) becomes 3 gated
  convolutions 2c wide, all after the skip.  With one layer only a 5 x 5 window at full
  resolution sees the known pixels, and 6 channels carry the detail: in 10-minute probes
  on the decoder cache (validation PSNR over the plain decoder) the skip-only generator
  reached +0.12 dB, a plain 6-layer 48-channel full-resolution CNN +0.31 dB (a throwaway
  script, not kept), and the generator with 3 full-resolution layers +0.16 dB, still
  rising.  Cost: the 768 x 512 forward pass went from 1.5 to 2.2 s on 2 threads (4
  layers: 2.4 s).  Weights without ``full_res_layers`` in their metadata load with one.

Images are in [-1, 1] and (B, 3, H, W); the missing-region mask is (B, 1, H, W) with
1 = missing; H and W must be multiples of :data:`MULTIPLE`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .attention import MHTMA, RULES, key_validity

#: Two stride-2 stages: inputs are padded to a multiple of this.
MULTIPLE = 4
#: The forward pass of a 768 x 512 image took 2.4-2.9 s of one core with c = 12 and
#: 3.4-4.7 s with c = 16 (measured on a busy machine): only c = 12 leaves a margin under the
#: budget of 3 s on 2 cores.  1.02e6 parameters (c = 16: 1.80e6).
DEFAULT_WIDTH = 12
DEFAULT_HEADS = 2
TASKS = ("postprocess", "holes")
#: Initial scale of the feature half of a gated convolution (see :class:`GatedConv2d`).
GATED_GAIN = 2.5
#: Attention key rule per task (see :func:`.attention.key_validity`).
TASK_RULE = {"postprocess": "any", "holes": "all"}


class GatedConv2d(nn.Module):
    """Gated convolution (Yu et al. 2019): ``ELU(features) * sigmoid(gate)``."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, kernel, stride,
                              padding=dilation * (kernel - 1) // 2, dilation=dilation)
        # torch's default initialisation shrinks the signal of a gated layer about 2.3x
        # (the gate halves it too), so that after the ~17 layers of a stage the attention
        # branch got gradients of 1e-8 (measured).  Features at std 2.5 / sqrt(fan_in) and
        # gates at 1 / sqrt(fan_in) keep the activation scale about constant with depth.
        fan_in = cin * kernel * kernel
        with torch.no_grad():
            nn.init.normal_(self.conv.weight[:cout], std=GATED_GAIN / fan_in ** 0.5)
            nn.init.normal_(self.conv.weight[cout:], std=1.0 / fan_in ** 0.5)
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


class UpGatedConv2d(GatedConv2d):
    """Nearest-neighbour 2x upsampling, then a gated convolution (DeepFill's gen_deconv)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))


def _to_rgb(cin: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, 3, 3, padding=1)
    nn.init.zeros_(conv.weight)  # start as the identity of the residual stage
    nn.init.zeros_(conv.bias)
    return conv


def _encoder(cin: int, c: int) -> list[nn.Module]:
    """Full resolution to 1/4: gated 5x5, stride 2, gated, stride 2, then 4c channels."""
    return [GatedConv2d(cin, c, 5), GatedConv2d(c, 2 * c, 3, 2), GatedConv2d(2 * c, 2 * c),
            GatedConv2d(2 * c, 4 * c, 3, 2), GatedConv2d(4 * c, 4 * c),
            GatedConv2d(4 * c, 4 * c)]


def _dilated(c: int) -> list[nn.Module]:
    return [GatedConv2d(4 * c, 4 * c, 3, dilation=r) for r in (2, 4, 8, 16)]


def _decoder_end(layers: list[nn.Module], c: int, skip: bool, full_res_layers: int = 1):
    """The decoder as a Sequential, its full-resolution end (or ``None``) and the end's
    output channels.

    With the skip the end is kept apart because it also sees the stage's 4-channel input:
    one gated convolution (c -> c/2) for ``full_res_layers == 1``, else a stack of that
    many gated convolutions 2c wide.  Without the skip the last gated convolution closes the
    Sequential (the seed's layout, whose parameter names the weights without the skip use).
    """
    if not skip:
        return nn.Sequential(*layers, GatedConv2d(c, c // 2)), None, c // 2
    if full_res_layers == 1:
        return nn.Sequential(*layers), GatedConv2d(c + 4, c // 2), c // 2
    w = 2 * c
    end = nn.Sequential(GatedConv2d(c + 4, w),
                        *[GatedConv2d(w, w) for _ in range(full_res_layers - 1)])
    return nn.Sequential(*layers), end, w


def _run_decoder(decoder: nn.Sequential, last: nn.Module | None, features: torch.Tensor,
                 inp: torch.Tensor) -> torch.Tensor:
    out = decoder(features)
    return out if last is None else last(torch.cat([out, inp], dim=1))


class CoarseNet(nn.Module):
    """Encoder-decoder of gated convolutions with dilated gated convolutions in the middle."""

    def __init__(self, width: int = DEFAULT_WIDTH, skip: bool = True):
        c = width
        super().__init__()
        layers = [*_encoder(4, c), *_dilated(c), GatedConv2d(4 * c, 4 * c),
                  GatedConv2d(4 * c, 4 * c), UpGatedConv2d(4 * c, 2 * c),
                  GatedConv2d(2 * c, 2 * c), UpGatedConv2d(2 * c, c)]
        self.body, self.last, end = _decoder_end(layers, c, skip)
        self.to_rgb = _to_rgb(end)

    def forward(self, x: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        inp = torch.cat([x, missing], dim=1)
        return self.to_rgb(_run_decoder(self.body, self.last, inp, inp))


class RefineNet(nn.Module):
    """Two encoders (attention with MHTMA; gated + dilated gated) and one decoder.

    MHTMA reduces the 4c channels of the attention branch to ``head_channels`` per head
    (default ``4c / (2 heads)``, so that the heads together hold half of the branch's
    channels: the seed's lower-dimensional embedding ``C' < C``).
    """

    def __init__(self, width: int = DEFAULT_WIDTH, heads: int = DEFAULT_HEADS,
                 head_channels: int | None = None, rule: str = "all", skip: bool = True,
                 full_res_layers: int = 1, **attention):
        super().__init__()
        c = width
        if rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
        self.rule = rule
        self.conv_branch = nn.Sequential(*_encoder(4, c), *_dilated(c))
        self.attention_in = nn.Sequential(*_encoder(4, c))
        self.attention = MHTMA(4 * c, heads, head_channels or max(4, 4 * c // (2 * heads)),
                               **attention)
        self.attention_out = nn.Sequential(GatedConv2d(self.attention.out_channels, 4 * c),
                                           GatedConv2d(4 * c, 4 * c))
        layers = [GatedConv2d(8 * c, 4 * c), UpGatedConv2d(4 * c, 2 * c),
                  GatedConv2d(2 * c, 2 * c), UpGatedConv2d(2 * c, c)]
        self.decoder, self.last, end = _decoder_end(layers, c, skip, full_res_layers)
        self.to_rgb = _to_rgb(end)

    def forward(self, x: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        inp = torch.cat([x, missing], dim=1)
        valid = key_validity(1.0 - missing, MULTIPLE, self.rule,
                             self.attention.options["patch"])
        a = self.attention_out(self.attention(self.attention_in(inp), valid))
        features = torch.cat([self.conv_branch(inp), a], dim=1)
        return self.to_rgb(_run_decoder(self.decoder, self.last, features, inp))


class Generator(nn.Module):
    """Coarse-to-fine generator of the seed (Fig. 2), residual per stage.

    Parameters
    ----------
    width : int
        Feature channels at full resolution (``c``; 2c and 4c below).
    heads : int
        Attention heads K.
    task : {"postprocess", "holes"}
        Chooses the attention's key rule (:data:`TASK_RULE`).
    skip : bool
        Full-resolution skip of each stage's input into its decoder's end.
    full_res_layers : int
        Gated convolutions of the refinement decoder's full-resolution end (more than one
        needs the skip).
    """

    def __init__(self, width: int = DEFAULT_WIDTH, heads: int = DEFAULT_HEADS,
                 task: str = "holes", skip: bool = True, full_res_layers: int = 1, **attention):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2, got {width}")
        if full_res_layers < 1 or (full_res_layers > 1 and not skip):
            raise ValueError(f"full_res_layers must be 1, or more with the skip, got "
                             f"{full_res_layers}")
        self.width, self.heads, self.task = width, heads, task
        self.skip, self.full_res_layers = skip, full_res_layers
        self.coarse = CoarseNet(width, skip)
        self.refine = RefineNet(width, heads, rule=TASK_RULE[task], skip=skip,
                                full_res_layers=full_res_layers, **attention)

    def forward(self, x: torch.Tensor, missing: torch.Tensor):
        """Coarse result and final result (both full images, clipped to [-1, 1]).

        ``x`` holds the known pixels and, in the missing region, the diffusion
        reconstruction (of the holes; of everything the file does not store).
        Neither output is composited: the caller keeps the known pixels (:func:`composite`).
        """
        h, w = x.shape[-2:]
        if h % MULTIPLE or w % MULTIPLE:
            raise ValueError(f"height and width must be multiples of {MULTIPLE}, got {h}x{w}")
        coarse = torch.clamp(x + _residual(self.coarse, x, missing), -1.0, 1.0)
        merged = composite(coarse, x, missing)
        out = torch.clamp(merged + _residual(self.refine, merged, missing), -1.0, 1.0)
        return coarse, out


def _residual(stage: nn.Module, x: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """A stage's residual, computed in the dtype of its weights (bfloat16 where loaded so
    for inference) and returned in ``x``'s: the residual sums stay in the caller's
    precision, so the output keeps the input's resolution of grey levels."""
    dtype = next(stage.parameters()).dtype
    return stage(x.to(dtype), missing.to(dtype)).to(x.dtype)


def composite(generated: torch.Tensor, x: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """The generated image in the missing region, the input elsewhere (exactly)."""
    return torch.where(missing > 0.5, generated, x)


class GlobalLocalDiscriminator(nn.Module):
    """Global-local discriminator with spectral normalisation (section III-A), hinge output.

    Global branch: 6 convolutions (5x5, stride 2, LeakyReLU 0.2) on the whole image and a
    fully connected layer; local branch: 5 such convolutions on a ``local x local`` crop
    around the missing region and a fully connected layer; the two feature vectors are
    concatenated and mapped to one score by a last fully connected layer (no sigmoid: the
    hinge loss works on the raw score).  Every layer is spectrally normalised.  The input is
    the image and the missing-region mask (4 channels), as in DeepFill v2's discriminator,
    so that it judges the generated region against its context.
    """

    def __init__(self, crop: int, local: int, width: int = 32, features: int = 128):
        super().__init__()
        if crop % 64 or local % 32:
            raise ValueError(f"crop must be a multiple of 64 and local of 32, got {crop}, "
                             f"{local}")
        self.crop, self.local = crop, local

        def branch(n):
            layers, cin = nn.ModuleList(), 4
            for k in range(n):
                cout = width * min(2 ** k, 4)
                layers.append(spectral_norm(nn.Conv2d(cin, cout, 5, 2, 2)))
                cin = cout
            return layers, cin

        self.global_convs, cg = branch(6)
        self.local_convs, cl = branch(5)
        self.global_fc = spectral_norm(nn.Linear(cg * (crop // 64) ** 2, features))
        self.local_fc = spectral_norm(nn.Linear(cl * (local // 32) ** 2, features))
        self.out = spectral_norm(nn.Linear(2 * features, 1))

    @staticmethod
    def _run(convs, x, taps=None):
        for conv in convs:
            x = F.leaky_relu(conv(x), 0.2)
            if taps is not None:
                taps.append(x)
        return x.flatten(1)

    def forward(self, image: torch.Tensor, missing: torch.Tensor, boxes: torch.Tensor,
                taps: list | None = None) -> torch.Tensor:
        """Scores (B,) of images with their masks; ``boxes`` (B, 2): local crop corners.

        ``taps``, if given, collects the global branch's activations (feature matching).
        """
        x = torch.cat([image, missing], dim=1)
        crops = torch.stack([x[k, :, y:y + self.local, z:z + self.local]
                             for k, (y, z) in enumerate(boxes.tolist())])
        g = F.leaky_relu(self.global_fc(self._run(self.global_convs, x, taps)), 0.2)
        lo = F.leaky_relu(self.local_fc(self._run(self.local_convs, crops)), 0.2)
        return self.out(torch.cat([g, lo], dim=1)).squeeze(1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
