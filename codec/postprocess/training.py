"""Training of the GAN inpainter (seed section III-B and IV-B), for either task.

Each step: the generator makes a coarse and a final result; the discriminator descends
the hinge loss (eq. 4) on originals against the composited final results; the generator
descends ``1.2 |I_c - I_gt| + |I_out - I_gt| + 0.004 L_p(I_c) - 0.01 D(I_out)`` (eqs. 2, 3,
5, 6; the L1 terms on the composited results, see :func:`reconstruction_l1`), both with
Adam (lr 1e-4, betas 0.5 and 0.9).  ``L_p`` is the VGG16 relu1_2
perceptual loss when a local VGG16 weights file is given (``vgg16``), and otherwise the
discriminator feature-matching substitute of :mod:`.losses` (recorded in the provenance).

Tasks:

* ``postprocess``: crops of real decoder outputs from a cache made once by
  :func:`.data.prepare_cache` (the codec's own encode/decode; ``codec="free"``: Belhachmi
  and learned masks, 1-10 %, 16-64 levels, tonal optimisation; ``codec="tree"``: the
  default tree encoder at 0.05-0.5 bpp); the "missing" region is every pixel the file
  does not store.  The local critic looks at a random ``crop / 2`` square.
* ``holes``: random crops (horizontal flips) with the seed's masks (DeepFill v2 strokes
  united with a square of side ``96 crop / 256``), holes filled by homogeneous diffusion
  (:func:`.data.diffusion_fill`; the seed uses the ImageNet mean); the
  local critic looks at the ``min(128, crop / 2)`` square centred on the square hole.

Validation (every ``val_every`` steps): the whole pipeline on fixed images (for
``postprocess`` cached decoder outputs of the first ``val_images`` validation images,
centre 256 x 256, at 2, 5 and 10 % or at 0.05, 0.1 and 0.3 bpp; for ``holes`` the same
crops with seeded seed-style masks), mean L1 (in [0, 1] units) and PSNR of the GAN beside
the diffusion baseline (the decoder output; homogeneous diffusion inpainting of the same
holes). The weights written are those of the validation with the lowest L1, the seed's
model selection by validation loss. Checkpoints hold both networks, both optimisers and
the random states, so that a resumed run continues where it stopped; checkpoints, random
states, the best weights, the budgets and the output files are handled by
:mod:`inpcodec.codec.training`, shared with the mask-network trainer.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from inpcodec.codec.metrics import psnr
from inpcodec.codec.precision import autocast, check_training_precision
from inpcodec.codec.training import (
    BestWeights,
    Budget,
    check_device,
    checkpoint_path,
    command_line,
    load_checkpoint,
    machine,
    resume_checkpoint,
    resumed_config,
    rng_state,
    save_checkpoint,
    save_safetensors,
    set_rng_state,
    write_provenance,
)

from .data import (
    CODECS,
    CacheSettings,
    DecoderCropSampler,
    HoleCropSampler,
    find_images,
    holes_validation_set,
    load_cache,
    load_rgb,
    prepare_cache,
)
from .inference import inpaint_holes, metadata, refine
from .losses import (
    LAMBDA_ADVERSARIAL,
    LAMBDA_COARSE,
    LAMBDA_FINAL,
    LAMBDA_PERCEPTUAL,
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    load_vgg16,
    perceptual_loss,
)
from .networks import (
    DEFAULT_HEADS,
    DEFAULT_WIDTH,
    TASKS,
    Generator,
    GlobalLocalDiscriminator,
    composite,
    count_parameters,
)

#: What the post-processor's validation items are, per cache codec.
VALIDATION_DECODES = {
    "free": ("decoder outputs at 2, 5, 10 % (Belhachmi and learned masks alternating, 32 "
             "levels, tonal)"),
    "tree": ("decoder outputs of the default tree encoder at 0.05, 0.1, 0.3 bpp (grey and "
             "colour alternating, the rate search's levels, tonal)"),
}
FEATURE_MATCHING = ("substitute for the VGG16 relu1_2 perceptual loss (no --vgg16 weights "
                    "given): L1 between the discriminator's global-branch activations (6 "
                    "layers) of the composited coarse result and of the original, weight "
                    "lambda_p")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and provenance)."""

    task: str = "postprocess"
    data: list = field(default_factory=list)
    val: list = field(default_factory=list)
    cache: str | None = None
    width: int = DEFAULT_WIDTH
    heads: int = DEFAULT_HEADS
    skip: bool = True  # full-resolution skip into each stage's last gated convolution
    # gated convolutions of the refinement's full-resolution end (None: 3 with the skip,
    # else 1)
    full_res_layers: int | None = None
    crop: int = 128
    batch: int = 8
    steps: int = 100000
    minutes: float | None = None
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple = (0.5, 0.9)
    lambda_coarse: float = LAMBDA_COARSE
    lambda_final: float = LAMBDA_FINAL
    lambda_perceptual: float = LAMBDA_PERCEPTUAL
    lambda_adversarial: float = LAMBDA_ADVERSARIAL
    vgg16: str | None = None
    # start from these weights (fine-tuning): a generator .safetensors, or a training
    # .ckpt (generator and discriminator); optimisers start afresh either way
    init: str | None = None
    seed: int = 0
    val_every: int = 250
    val_images: int = 8
    threads: int | None = None
    # decoder cache (postprocess)
    variants: int = 2
    tonal: bool = True
    grey_fraction: float = 0.2
    workers: int = 1
    # the mask family whose decodes the post-processor learns (.data.CODECS)
    codec: str = "free"
    # torch device of the networks ("cpu", "cuda"); the decoder cache is made on the CPU
    device: str = "cpu"
    # arithmetic of the forward passes (codec.precision.autocast); like the device, a
    # choice of the session, not of the run: a resumed run takes the one given now
    precision: str = "float32"

    def __post_init__(self):
        if self.full_res_layers is None:
            self.full_res_layers = 3 if self.skip else 1

    @property
    def local(self) -> int:
        """Side of the local critic's crop: the seed's 128, or half the crop if smaller."""
        return min(128, self.crop // 2)

    def check(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.crop < 64 or self.crop % 64:
            raise ValueError(f"crop must be a multiple of 64, got {self.crop}")
        for name in ("batch", "steps", "val_every", "width", "heads", "variants", "workers",
                     "full_res_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lambda_adversarial >= 0:
            raise ValueError(f"adversarial weight must be >= 0, got {self.lambda_adversarial}")
        if self.full_res_layers > 1 and not self.skip:
            raise ValueError("full_res_layers above 1 needs the skip")
        if self.width % 2:
            raise ValueError(f"width must be even, got {self.width}")
        if not self.data:
            raise ValueError("no training data folder given")
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        check_device(self.device)
        check_training_precision(self.precision)
        if not 0.0 <= self.grey_fraction <= 1.0:
            raise ValueError(f"grey fraction must lie in [0, 1], got {self.grey_fraction}")


def cache_folder(cfg: TrainConfig, out: Path) -> Path:
    """The decoder cache: ``cfg.cache``, or ``<out folder>/<out stem>-cache``."""
    return Path(cfg.cache) if cfg.cache else out.parent / f"{out.stem}-cache"


def cache_settings(cfg: TrainConfig) -> CacheSettings:
    return CacheSettings(data=[str(p) for p in cfg.data], val=[str(p) for p in cfg.val],
                         variants=cfg.variants, grey_fraction=cfg.grey_fraction,
                         tonal=cfg.tonal, val_images=cfg.val_images, seed=cfg.seed,
                         codec=cfg.codec)


def reconstruction_l1(y: torch.Tensor, x: torch.Tensor, gt: torch.Tensor,
                      missing: torch.Tensor) -> torch.Tensor:
    """L1 of the composited result (the generated missing region, the known pixels kept),
    averaged over all pixels as the seed's L1.

    Why composited: each stage predicts a correction that starts at zero, and on the known
    pixels a zero correction is already exact, so an L1 there pulls the last convolution
    back to zero with a full-size (sign) gradient at every step.  Measured: with the L1 on
    the raw output, 250 steps of a hole run left the last layers' weights below 1e-4 and
    the validation images unchanged; the known pixels are replaced by the input anyway.
    """
    return F.l1_loss(composite(y, x, missing), gt)


def train_step(G, D, opt_g, opt_d, x, gt, missing, boxes, cfg: TrainConfig,
               vgg=None) -> dict:
    """One discriminator step and one generator step on a batch (tensors), the forward
    passes in ``cfg.precision`` (:func:`codec.precision.autocast`)."""
    with autocast(cfg.device, cfg.precision):
        coarse, out = G(x, missing)
        final = composite(out, x, missing)
        loss_d = hinge_d_loss(D(gt, missing, boxes), D(final.detach(), missing, boxes))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    D.requires_grad_(False)  # the generator's step needs no discriminator gradients
    with autocast(cfg.device, cfg.precision):
        l1_coarse = reconstruction_l1(coarse, x, gt, missing)
        l1_final = reconstruction_l1(out, x, gt, missing)
        if vgg is not None:
            l_p = perceptual_loss(vgg, coarse, gt)
        else:
            fake_taps, real_taps = [], []
            D(composite(coarse, x, missing), missing, boxes, fake_taps)
            with torch.no_grad():
                D(gt, missing, boxes, real_taps)
            l_p = feature_matching_loss(fake_taps, real_taps)
        adversarial = (hinge_g_loss(D(final, missing, boxes)) if cfg.lambda_adversarial
                       else torch.zeros(()))  # weight 0: skip the critic's forward pass
        loss_g = (cfg.lambda_coarse * l1_coarse + cfg.lambda_final * l1_final
                  + cfg.lambda_perceptual * l_p + cfg.lambda_adversarial * adversarial)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)
    t = G.refine.attention.last_temperature.mean(dim=0).tolist()
    return {"loss_g": loss_g.item(), "loss_d": loss_d.item(), "l1_coarse": l1_coarse.item(),
            "l1_final": l1_final.item(), "perceptual": l_p.item(),
            "adversarial": adversarial.item(), **{f"t{k}": v for k, v in enumerate(t)}}


def validate(G, items: list[dict], task: str) -> dict:
    """Mean L1 ([0, 1] units) and PSNR of the GAN and of the diffusion baseline."""
    G.eval()
    l1, scores, base_l1, base_scores = [], [], [], []
    for it in items:
        f, known = it["original"], it["mask"]
        if task == "postprocess":
            u = refine(it["decoded"], known, network=G)
        else:
            u = inpaint_holes(f, ~known, network=G)
        l1.append(float(np.mean(np.abs(u.astype(np.float64) - f)) / 255.0))
        base_l1.append(float(np.mean(np.abs(it["decoded"].astype(np.float64) - f)) / 255.0))
        scores.append(psnr(u, f))
        base_scores.append(psnr(it["decoded"], f))
    G.train()
    return {"l1": float(np.mean(l1)), "psnr": float(np.mean(scores)),
            "baseline_l1": float(np.mean(base_l1)), "baseline_psnr": float(np.mean(base_scores))}


#: Keys of a train-gan checkpoint that resuming needs (besides the random states).
CHECKPOINT_KEYS = ("config", "generator", "discriminator", "opt_g", "opt_d", "step", "elapsed",
                   "history", "best", "baseline")


def _read_init(path: str, cfg: TrainConfig) -> tuple[dict, dict]:
    """The state dicts in ``path`` (generator .safetensors or training .ckpt), checked
    against the run's architecture, and the provenance record of where the run starts.
    Read before the data is prepared, so that a wrong file fails at once."""
    from .inference import load_generator  # noqa: PLC0415

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--init: no such file {file}")
    if file.suffix == ".ckpt":
        # weights_only inside: a checkpoint from elsewhere cannot run code when unpickled
        state = load_checkpoint(file, required=("generator", "discriminator"),
                                kind="train-gan checkpoint", label=f"--init {file}")
        given = {"skip": False, "full_res_layers": 1, **state.get("config", {})}
        sources = {"generator": state["generator"], "discriminator": state["discriminator"]}
    else:
        src = load_generator(file, cfg.task, precision="float32")
        given = {"width": src.width, "heads": src.heads, "skip": src.skip,
                 "full_res_layers": src.full_res_layers, "task": src.task}
        sources = {"generator": src.state_dict()}
    wanted = {"task": cfg.task, "width": cfg.width, "heads": cfg.heads, "skip": cfg.skip,
              "full_res_layers": cfg.full_res_layers}
    if "discriminator" in sources:
        wanted["crop"] = cfg.crop  # the critic's local branch is sized by the crop
    differ = [f"{k} {given.get(k)} (run: {v})" for k, v in wanted.items() if given.get(k) != v]
    if differ:
        raise ValueError(f"--init {file}: other architecture: {', '.join(differ)}")
    record = {"file": str(file), "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
              "loaded": sorted(sources)}
    beside = file.with_suffix(".json")
    if beside.is_file():  # the starting weights' own provenance, for the chain of runs
        try:
            record["its_command"] = json.loads(beside.read_text()).get("command")
        except (ValueError, AttributeError):
            pass
    return sources, record


def train(cfg: TrainConfig, out: str | os.PathLike, *, resume: bool = False,
          progress: bool = False, command: str | None = None, log=print) -> dict:
    """Train, write the generator to ``out`` (safetensors) and its provenance JSON.

    Parameters
    ----------
    cfg : TrainConfig
    out : path
        Weights file (``.safetensors``); ``<out>.ckpt`` holds the resumable checkpoint and
        ``<out stem>.json`` the provenance.  For ``postprocess`` the decoder cache is made
        first (or reused) in :func:`cache_folder`.
    resume : bool
        Continue from ``<out>.ckpt`` (the stored configuration wins, except ``steps`` and
        ``minutes``, which may be raised).

    Returns
    -------
    dict
        The provenance record.
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    out = Path(out)
    state = None
    if resume:
        state = resume_checkpoint(out, required=CHECKPOINT_KEYS, kind="train-gan checkpoint")
        # older checkpoints: no skip, one full-resolution layer
        # a run may move between machines, and change its arithmetic with them
        device, precision = cfg.device, cfg.precision
        cfg = resumed_config(cfg, state["config"], older={"skip": False, "full_res_layers": 1})
        cfg.device, cfg.precision = device, precision
    cfg.check()
    init, started_from = (_read_init(cfg.init, cfg) if cfg.init and state is None
                          else (None, state.get("started_from") if state else None))
    threads = cfg.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t_data = time.perf_counter()
    cache_info = None
    if cfg.task == "postprocess":
        folder = cache_folder(cfg, out)
        cache_info = prepare_cache(cache_settings(cfg), folder, workers=cfg.workers,
                                   threads=cfg.threads, progress=progress, log=log)
        train_items = load_cache(folder, "train")
        val = load_cache(folder, "val")
        sampler = DecoderCropSampler(train_items, cfg.crop, cfg.local, rng)
        n_train = len(train_items)
    else:
        paths = find_images(cfg.data)
        sampler = HoleCropSampler([load_rgb(p) for p in paths], cfg.crop, cfg.local, rng)
        val = holes_validation_set(cfg.val, cfg.val_images, seed=cfg.seed) if cfg.val else []
        n_train = len(paths)
    # Numba's OpenMP threading layer (the decoder, in the cache and the hole baseline) sets
    # the OpenMP thread count torch shares: set ours again (measured: 50x slower steps on a
    # busy machine when torch silently went from 1 to 2 threads)
    torch.set_num_threads(threads)
    log(f"data ready in {time.perf_counter() - t_data:.0f} s: {n_train} training items, "
        f"{len(val)} validation items")
    vgg, perceptual = None, {"kind": "feature matching", "note": FEATURE_MATCHING}
    if cfg.vgg16:
        vgg, digest = load_vgg16(cfg.vgg16)
        perceptual = {"kind": "VGG16 relu1_2", "file": str(cfg.vgg16), "sha256": digest}
    device = torch.device(cfg.device)
    if vgg is not None:
        vgg = vgg.to(device)
    G = Generator(cfg.width, cfg.heads, cfg.task, skip=cfg.skip,
                  full_res_layers=cfg.full_res_layers).to(device)
    D = GlobalLocalDiscriminator(cfg.crop, cfg.local).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
    step, elapsed, history = 0, 0.0, []
    # the lowest validation L1; stored as {"step", "l1", "generator"}
    best = BestWeights("l1", "generator", higher_is_better=False)
    if init is not None:
        G.load_state_dict(init["generator"])
        if "discriminator" in init:
            D.load_state_dict(init["discriminator"])
        log(f"starting from {cfg.init} ({', '.join(started_from['loaded'])})")
    baseline = validate(G, val, cfg.task) if val and state is None else {}
    if state is not None:
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        best.load_state_dict(state["best"])
        baseline = state["baseline"]
        set_rng_state(state, rng)
        log(f"resumed at step {step} ({elapsed / 60:.1f} min)")
    log(f"{cfg.task}: generator {count_parameters(G)} parameters (width {cfg.width}, "
        f"{cfg.heads} heads), discriminator {count_parameters(D)}; crop {cfg.crop}, local "
        f"{cfg.local}; perceptual loss: {perceptual['kind']}; untrained validation {baseline}")

    def checkpoint():
        save_checkpoint(checkpoint_path(out), {
            "config": asdict(cfg), "generator": G.state_dict(),
            "discriminator": D.state_dict(), "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(), "step": step, "elapsed": budget.elapsed,
            "history": history, "best": best.state_dict(), "baseline": baseline,
            "started_from": started_from, **rng_state(rng)})

    def consider(record: dict):
        best.consider(step, record["l1"], G)

    if state is None and val:
        # the untrained generator is a candidate too: for the post-processor it is the
        # identity (the decoder output), so a run that never beats the plain decoder ships
        # weights from step 0, which the provenance then shows (with --init, step 0 is
        # the given weights)
        consider(baseline)

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train-gan {cfg.task}",
               disable=not progress, unit="step")
    running = {}
    budget = Budget(cfg.steps, cfg.minutes, elapsed=elapsed)
    G.train()
    D.train()
    while not budget.exhausted(step, log):
        x, gt, missing, boxes = (torch.from_numpy(a).to(device)
                                 for a in sampler.batch(cfg.batch))
        losses = train_step(G, D, opt_g, opt_d, x, gt, missing, boxes, cfg, vgg)
        for k, v in losses.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        step += 1
        budget.lap()
        bar.update(1)
        bar.set_postfix({k: f"{running[k]:.3g}" for k in ("loss_g", "loss_d", "l1_final",
                                                             "t0")})
        if val and (step % cfg.val_every == 0 or step == cfg.steps):
            record = {"step": step, "minutes": budget.elapsed / 60, **running,
                      "val": validate(G, val, cfg.task)}
            history.append(record)
            log(f"step {step}: {json.dumps(record)}")
            consider(record["val"])
            checkpoint()
    bar.close()
    if val and (not history or history[-1]["step"] != step):
        record = {"step": step, "minutes": budget.elapsed / 60, **running,
                  "val": validate(G, val, cfg.task)}
        history.append(record)
        consider(record["val"])
    checkpoint()
    best.restore(G)
    G.eval()
    final = validate(G, val, cfg.task) if val else {}
    save_weights(G, out)
    provenance = {
        "weights": out.name,
        "task": cfg.task,
        "command": command_line(command),
        "data": [str(p) for p in cfg.data],
        "training_items": n_train,
        "validation": {"folders": [str(p) for p in cfg.val], "images": cfg.val_images,
                       "items": len(val), "crop": "centre 256x256",
                       "what": (VALIDATION_DECODES[cfg.codec]
                                if cfg.task == "postprocess" else
                                "seeded hole masks (strokes + 96x96 square) at 256x256"),
                       "baseline": ("the decoder output (homogeneous diffusion)"
                                    if cfg.task == "postprocess" else
                                    "homogeneous diffusion inpainting of the holes"),
                       "untrained": baseline, "final": final},
        "steps": step,
        "weights_from_step": best.step if val else step,  # 0: the untrained network
        "started_from": started_from,  # None: a fresh network (else --init)
        "seed": cfg.seed,
        "wall_time_minutes": budget.wall_time_minutes,
        "perceptual_loss": perceptual,
        "architecture": {"generator_parameters": count_parameters(G),
                         "discriminator_parameters": count_parameters(D),
                         **metadata(G)},
        "training_masks": ("decoder masks from the cache" if cfg.task == "postprocess" else
                           f"DeepFill v2 free-form strokes united with a "
                           f"{round(96 * cfg.crop / 256)}x{round(96 * cfg.crop / 256)} square "
                           f"(96 scaled by crop / 256)"),
        "local_crop": cfg.local,
        "decoder_cache": cache_info,
        "config": asdict(cfg),
        "machine": machine(str(device)),
        "history": history,
    }
    write_provenance(out, provenance)
    return provenance


def save_weights(G: Generator, out: Path) -> None:
    """Generator weights as safetensors with the metadata to rebuild it (atomically)."""
    save_safetensors(out, G.state_dict(), metadata(G))
