"""Joint training of the mask network and the surrogate inpainting network (seed paper 000).

Each step: masks ``c = M(f, d)``, surrogate reconstructions ``u = I(f, c)``; the mask
network descends the inpainting loss plus the inverse-variance regulariser, the surrogate
descends the PDE residual loss; each network only on its own loss, both with Adam at
learning rate 5e-4.  Random crops with flips and transposes; with a density range the
target density is drawn log-uniformly per crop (one density-conditioned network).

Validation uses the real decoder (:func:`codec.inpaint`) on masks binarised by the seed's
weighted coin flip, beside Belhachmi masks of the same density on the same images.
Checkpoints hold both networks, both optimisers and the random states, so that a resumed
run continues exactly where it stopped; checkpoints, random states, the best weights, the
budgets and the output files are handled by :mod:`inpcodec.codec.training`, shared with
the GAN trainer.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma, psnr
from inpcodec.codec.training import (
    BestWeights,
    Budget,
    checkpoint_path,
    command_line,
    machine,
    resume_checkpoint,
    resumed_config,
    rng_state,
    save_checkpoint,
    save_safetensors,
    set_rng_state,
    write_provenance,
)

from .inference import load_mask_network
from .losses import ALPHA, inpainting_loss, residual_loss, variance_regulariser
from .networks import InpaintNet, MaskNet, count_parameters


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and provenance)."""

    data: list = field(default_factory=list)
    val: list = field(default_factory=list)
    density_min: float = 0.01
    density_max: float = 0.10
    conditioned: bool = True
    crop: int = 128
    batch: int = 8
    steps: int = 5000
    minutes: float | None = None
    lr: float = 5e-4
    alpha: float = ALPHA
    loss_scale: float = 1.0
    inpainter: str = "surrogate"
    #: Mask the exact inpainter sees: "soft" (the network's confidences, the seed's way),
    #: or the binary mask they are dithered ("dither") or coin-flipped ("coin") to, with the
    #: gradient at that mask passed straight through to the confidences.
    train_mask: str = "soft"
    #: "belhachmi": the mask network refines Belhachmi's density map (it starts as that
    #: map exactly); "none": the seed's network, which learns the mask from scratch.
    prior: str = "none"
    #: A weights file to start from (fine-tuning), or None for fresh weights.
    init: str | None = None
    seed: int = 0
    val_every: int = 250
    val_images: int = 8
    val_densities: tuple = (0.02, 0.05, 0.10)
    threads: int | None = None


def load_grey(path: Path) -> np.ndarray:
    """An image file as grey float32 in [0, 1] (BT.601 luma, the codec's Y channel)."""
    return (luma(load_image(path, drop_alpha=True)) / 255.0).astype(np.float32)


class CropSampler:
    """Random square crops with random flips and transposes, all images held in memory."""

    def __init__(self, images: list[np.ndarray], crop: int, rng: np.random.Generator):
        small = [i for i, a in enumerate(images) if min(a.shape) < crop]
        if small:
            raise ValueError(f"{len(small)} training images are smaller than the crop "
                             f"size {crop}")
        self.images, self.crop, self.rng = images, crop, rng

    def batch(self, n: int) -> np.ndarray:
        out = np.empty((n, 1, self.crop, self.crop), np.float32)
        for k in range(n):
            a = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(a.shape[0] - self.crop + 1)
            x = self.rng.integers(a.shape[1] - self.crop + 1)
            c = a[y:y + self.crop, x:x + self.crop]
            flips = self.rng.integers(8)
            if flips & 1:
                c = c[::-1]
            if flips & 2:
                c = c[:, ::-1]
            if flips & 4:
                c = c.T
            out[k, 0] = c
        return out


def sample_densities(rng: np.random.Generator, n: int, cfg: TrainConfig) -> np.ndarray:
    if not cfg.conditioned:
        return np.full(n, cfg.density_max, np.float32)
    lo, hi = math.log(cfg.density_min), math.log(cfg.density_max)
    return np.exp(rng.uniform(lo, hi, n)).astype(np.float32)


def belhachmi_priors(f: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Belhachmi's density maps of a batch (B, 1, H, W) at the densities ``d`` (B,)."""
    from inpcodec.baselines import belhachmi_density  # noqa: PLC0415

    return np.stack([belhachmi_density(f[k, 0], float(d[k]))[None]
                     for k in range(f.shape[0])]).astype(np.float32)


def _binarise_batch(c: torch.Tensor, d: torch.Tensor, method: str,
                    rng: np.random.Generator) -> torch.Tensor:
    from .inference import binarise  # noqa: PLC0415

    cn = c.detach().double().cpu().numpy()[:, 0]
    b = np.stack([binarise(np.clip(cn[k], 0.0, 1.0), float(d[k]), method=method, rng=rng)
                  for k in range(cn.shape[0])])
    return torch.from_numpy(b[:, None].astype(np.float32)).to(c.device)


def train_step(M, I, opt_m, opt_i, f: torch.Tensor, d: torch.Tensor, alpha: float,
               loss_scale: float = 1.0, train_mask: str = "soft",
               rng: np.random.Generator | None = None,
               prior: torch.Tensor | None = None) -> dict:
    """One joint step; each network gets the gradient of its own loss only.

    With ``I = None`` the reconstruction is the real solver's (:mod:`.exact`) and only the
    mask network learns; ``train_mask`` then says whether it inpaints with the soft mask or
    with its binarisation (straight-through gradient).  ``prior``: Belhachmi's density maps
    for a network with ``prior=True``.
    """
    c = M(f, d, prior)
    if I is None:
        from .exact import binary_inpaint, exact_inpaint  # noqa: PLC0415

        if train_mask == "soft":
            u = exact_inpaint(c, f)
        else:
            # The binary mask depends only on the shape of c (binarisation fixes the point
            # count), so the gradient must not change its scale: routing it through c
            # rescaled to mean d removes that component.  Without this every pixel asks
            # for more confidence (adding data always helps), the sigmoid saturates and
            # the mask collapses to a flat one (measured).
            cn = c * (d.view(-1, 1, 1, 1) / c.mean(dim=(1, 2, 3), keepdim=True))
            b = _binarise_batch(cn, d, train_mask, rng if rng is not None
                                else np.random.default_rng(0))
            u = binary_inpaint(cn, b, f)
        loss_inp = inpainting_loss(u, f, loss_scale)
        loss_reg = variance_regulariser(c, alpha)
        opt_m.zero_grad(set_to_none=True)
        (loss_inp + loss_reg).backward()
        opt_m.step()
        return {"inpainting": loss_inp.item(), "regulariser": loss_reg.item(),
                "mask_mean": c.detach().mean().item()}
    u = I(f, c)
    loss_inp = inpainting_loss(u, f, loss_scale)
    loss_reg = variance_regulariser(c, alpha)
    loss_m = loss_inp + loss_reg
    loss_i = residual_loss(u, c.detach(), f)
    pm, pi = list(M.parameters()), list(I.parameters())
    grads_m = torch.autograd.grad(loss_m, pm, retain_graph=True)
    grads_i = torch.autograd.grad(loss_i, pi)
    for p, g in zip(pm, grads_m, strict=True):
        p.grad = g
    for p, g in zip(pi, grads_i, strict=True):
        p.grad = g
    opt_m.step()
    opt_i.step()
    return {"inpainting": loss_inp.item(), "regulariser": loss_reg.item(),
            "residual": loss_i.item(), "mask_mean": c.detach().mean().item()}


def validation_images(folders, n: int, side: int = 256) -> list[np.ndarray]:
    """The first ``n`` images of the folders, centre-cropped to ``side`` x ``side``."""
    out = []
    for p in find_images(folders)[:n]:
        a = load_grey(p)
        y, x = (a.shape[0] - side) // 2, (a.shape[1] - side) // 2
        out.append(a[max(y, 0):max(y, 0) + side, max(x, 0):max(x, 0) + side])
    return out


def validate(M, images, densities, seed: int = 0, method: str = "coin") -> dict:
    """Mean PSNR of the real decoder on binarised learned masks, per density."""
    from inpcodec.codec.diffusion import inpaint  # noqa: PLC0415

    from .inference import binarise, mask_probabilities  # noqa: PLC0415

    out = {}
    for d in densities:
        ps = []
        for k, f in enumerate(images):
            c = mask_probabilities(f * 255.0, d, network=M)
            m = binarise(c, d, method=method, rng=np.random.default_rng(seed + k))
            ps.append(psnr(np.clip(inpaint(f.astype(np.float64), m), 0, 1), f, peak=1.0))
        out[f"{d:g}"] = float(np.mean(ps))
    return out


def belhachmi_reference(images, densities) -> dict:
    """Belhachmi's masks on the validation images: the bar the learned masks must clear."""
    from inpcodec.baselines import belhachmi_mask  # noqa: PLC0415
    from inpcodec.codec.diffusion import inpaint  # noqa: PLC0415

    out = {}
    for d in densities:
        ps = [psnr(np.clip(inpaint(f.astype(np.float64), belhachmi_mask(f * 255.0, d).mask), 0, 1),
                   f, peak=1.0)
              for f in images]
        out[f"{d:g}"] = float(np.mean(ps))
    return out


#: Keys of a train-masks checkpoint that resuming needs (besides the random states).
CHECKPOINT_KEYS = ("config", "mask_net", "inpaint_net", "opt_mask", "opt_inpaint", "step",
                   "elapsed", "history", "best")


def train(cfg: TrainConfig, out: str | os.PathLike, *, resume: bool = False,
          progress: bool = False, command: str | None = None, log=print) -> dict:
    """Train, write the mask network to ``out`` (safetensors) and its provenance JSON.

    Parameters
    ----------
    cfg : TrainConfig
    out : path
        Weights file (``.safetensors``); ``<out>.ckpt`` holds the resumable checkpoint and
        ``<out stem>.json`` the provenance.
    resume : bool
        Continue from ``<out>.ckpt`` (the stored configuration wins, except ``steps`` and
        ``minutes``, which may be raised).

    The weights written are those of the validation with the best mean PSNR of dithered
    masks (the codec's binarisation), not necessarily the last: without the regulariser
    the mask network can collapse to a flat mask late in a run (measured).

    Returns
    -------
    dict
        The provenance record.
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    out = Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = None
    if resume:
        state = resume_checkpoint(out, required=CHECKPOINT_KEYS, kind="train-masks checkpoint")
        cfg = resumed_config(cfg, state["config"])
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    paths = find_images(cfg.data)
    images = [load_grey(p) for p in paths]
    sampler = CropSampler(images, cfg.crop, rng)
    val = validation_images(cfg.val, cfg.val_images) if cfg.val else []
    if cfg.inpainter not in ("surrogate", "exact"):
        raise ValueError(f"inpainter must be surrogate or exact, got {cfg.inpainter!r}")
    if cfg.train_mask not in ("soft", "dither", "coin"):
        raise ValueError(f"train_mask must be soft, dither or coin, got {cfg.train_mask!r}")
    if cfg.train_mask != "soft" and cfg.inpainter != "exact":
        raise ValueError("binary training masks need the exact inpainter")
    if cfg.prior not in ("none", "belhachmi"):
        raise ValueError(f"prior must be none or belhachmi, got {cfg.prior!r}")
    # the networks train on a GPU when there is one; the exact solver always runs on the CPU
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    M = MaskNet(conditioned=cfg.conditioned, prior=cfg.prior == "belhachmi").to(device)
    I = InpaintNet().to(device) if cfg.inpainter == "surrogate" else None
    if cfg.init is not None and state is None:
        start = load_mask_network(cfg.init, precision="float32")
        if (start.conditioned, start.prior) != (M.conditioned, M.prior):
            raise ValueError(f"{cfg.init} holds a mask network of another kind "
                             f"(conditioned {start.conditioned}, prior {start.prior})")
        M.load_state_dict(start.state_dict())
    opt_m = torch.optim.Adam(M.parameters(), lr=cfg.lr)
    opt_i = torch.optim.Adam(I.parameters(), lr=cfg.lr) if I is not None else None
    step, elapsed, history = 0, 0.0, []
    # the best mean PSNR of dithered masks; stored as {"step", "score", "mask_net"}
    best = BestWeights("score", "mask_net", higher_is_better=True)
    reference = belhachmi_reference(val, cfg.val_densities) if val else {}
    if state is not None:
        M.load_state_dict(state["mask_net"])  # (loaded onto the device of M)
        opt_m.load_state_dict(state["opt_mask"])
        if I is not None:
            I.load_state_dict(state["inpaint_net"])
            opt_i.load_state_dict(state["opt_inpaint"])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        best.load_state_dict(state["best"])
        set_rng_state(state, rng)
        log(f"resumed at step {step} ({elapsed / 60:.1f} min)")
    log(f"{len(paths)} training images, {len(val)} validation images; "
        f"{count_parameters(M)} + {count_parameters(I) if I is not None else 0} parameters "
        f"({cfg.inpainter} inpainting); "
        f"Belhachmi validation PSNR {reference}")

    def checkpoint():
        save_checkpoint(checkpoint_path(out), {
            "config": asdict(cfg), "mask_net": M.state_dict(),
            "inpaint_net": I.state_dict() if I is not None else None,
            "opt_mask": opt_m.state_dict(),
            "opt_inpaint": opt_i.state_dict() if I is not None else None,
            "step": step, "elapsed": budget.elapsed, "history": history,
            "best": best.state_dict(), **rng_state(rng)})

    def consider(psnr_dither: dict):
        best.consider(step, float(np.mean(list(psnr_dither.values()))), M)

    bar = tqdm(total=cfg.steps, initial=step, desc="train-masks", disable=not progress,
               unit="step")
    running = {}
    budget = Budget(cfg.steps, cfg.minutes, elapsed=elapsed)

    def validation_record():
        M.eval()
        record = {"step": step, "minutes": budget.elapsed / 60, **running,
                  "val_psnr": validate(M, val, cfg.val_densities),
                  "val_psnr_dither": validate(M, val, cfg.val_densities, method="dither")}
        history.append(record)
        log(f"step {step}: {json.dumps(record)}")
        consider(record["val_psnr_dither"])

    if val and step == 0:
        validation_record()  # the starting point (for --prior belhachmi: Belhachmi's masks)
    while not budget.exhausted(step, log):
        M.train()
        if I is not None:
            I.train()
        fb = sampler.batch(cfg.batch)
        db = sample_densities(rng, cfg.batch, cfg)
        f, d = torch.from_numpy(fb).to(device), torch.from_numpy(db).to(device)
        prior = (torch.from_numpy(belhachmi_priors(fb, db)).to(device)
                 if M.prior else None)
        losses = train_step(M, I, opt_m, opt_i, f, d, cfg.alpha, cfg.loss_scale,
                            cfg.train_mask, rng, prior)
        for k, v in losses.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        step += 1
        budget.lap()
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()})
        if val and (step % cfg.val_every == 0 or step == cfg.steps):
            validation_record()
            checkpoint()
    bar.close()
    M.eval()
    if val and (not history or history[-1]["step"] != step):
        consider(validate(M, val, cfg.val_densities, method="dither"))
    checkpoint()
    best.restore(M)
    final = validate(M, val, cfg.val_densities) if val else {}
    final_dither = validate(M, val, cfg.val_densities, method="dither") if val else {}
    save_weights(M.cpu(), out, {"conditioned": str(cfg.conditioned), "prior": cfg.prior,
                          "density_min": str(cfg.density_min),
                          "density_max": str(cfg.density_max)})
    provenance = {
        "weights": out.name,
        "command": command_line(command),
        "data": [str(p) for p in cfg.data],
        "training_images": len(paths),
        "validation": {"folders": [str(p) for p in cfg.val], "images": len(val),
                       "crop": "centre 256x256", "binarisation": "weighted coin flip",
                       "solver": "codec.inpaint (multigrid CG)",
                       "final_psnr": final, "final_psnr_dither": final_dither,
                       "belhachmi_psnr": reference},
        "steps": step,
        "weights_from_step": best.step if val else step,
        "seed": cfg.seed,
        "inpainter": cfg.inpainter,
        "wall_time_minutes": budget.wall_time_minutes,
        "config": asdict(cfg),
        "parameters": count_parameters(M),
        "machine": machine(device.type),
        "history": history,
    }
    write_provenance(out, provenance)
    return provenance


def save_weights(M: MaskNet, out: Path, metadata: dict) -> None:
    """Mask network weights as safetensors (written atomically)."""
    save_safetensors(out, M.state_dict(), metadata)
