"""Losses of the seed (section III-B): L1, perceptual (VGG16 relu1_2), hinge adversarial.

No network access here, so VGG16 cannot be downloaded: :class:`VGG16Relu12` is the first
two convolutions of torchvision's VGG16 in plain torch and reads a local weights file with
torchvision's key names.  Without one, training uses a stated substitute
(:func:`feature_matching_loss`: L1 between the discriminator's global-branch activations of
the coarse result and of the original, pix2pixHD's feature matching).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

#: Weights of the seed's objective (eq. 2 and 6).
LAMBDA_COARSE = 1.2
LAMBDA_FINAL = 1.0
LAMBDA_PERCEPTUAL = 0.004
LAMBDA_ADVERSARIAL = 0.01
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_KEYS = ("features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias")


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Eq. (4): E[max(0, 1 - D(I))] + E[max(0, 1 + D(I_out))]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Eq. (5): -E[D(I_out)]."""
    return -fake.mean()


class VGG16Relu12(nn.Module):
    """VGG16 up to relu1_2 (conv 3->64, ReLU, conv 64->64, ReLU), frozen.

    Takes images in [-1, 1] and applies the ImageNet normalisation torchvision's weights
    expect.
    """

    def __init__(self):
        super().__init__()
        self.conv1_1 = nn.Conv2d(3, 64, 3, padding=1)
        self.conv1_2 = nn.Conv2d(64, 64, 3, padding=1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1.0) / 2.0 - self.mean) / self.std
        return F.relu(self.conv1_2(F.relu(self.conv1_1(x))))


def load_vgg16(path: str | Path) -> tuple[VGG16Relu12, str]:
    """VGG16 relu1_2 from a local torchvision state dict (.pth/.pt or .safetensors).

    Only ``features.0.*`` and ``features.2.*`` are read (any other keys are ignored);
    returns the module and the file's SHA-256 (for the provenance).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--vgg16: no such file {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # noqa: PLC0415

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets one message
            raise ValueError(f"--vgg16: cannot read {path} as a torch state dict ({exc})") \
                from None
    if isinstance(state, nn.Module):
        state = state.state_dict()
    missing = [k for k in VGG_KEYS if k not in state]
    if missing:
        raise ValueError(f"--vgg16: {path} lacks {', '.join(missing)} (torchvision VGG16 "
                         "key names expected)")
    net = VGG16Relu12()
    shapes = {"features.0.weight": (64, 3, 3, 3), "features.2.weight": (64, 64, 3, 3)}
    for k, shape in shapes.items():
        if tuple(state[k].shape) != shape:
            raise ValueError(f"--vgg16: {k} has shape {tuple(state[k].shape)}, expected "
                             f"{shape}: not VGG16")
    with torch.no_grad():
        net.conv1_1.weight.copy_(state["features.0.weight"])
        net.conv1_1.bias.copy_(state["features.0.bias"])
        net.conv1_2.weight.copy_(state["features.2.weight"])
        net.conv1_2.bias.copy_(state["features.2.bias"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return net.eval(), digest


def perceptual_loss(vgg: VGG16Relu12, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (3): mean |V(x) - V(target)| on relu1_2 activations."""
    with torch.no_grad():
        ref = vgg(target)
    return F.l1_loss(vgg(x), ref)


def feature_matching_loss(fake_taps: list, real_taps: list) -> torch.Tensor:
    """Substitute for eq. (3): mean over layers of mean |D_l(x) - D_l(target)|."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_taps, real_taps, strict=True)) \
        / len(fake_taps)
