"""Training the tree-map network (:mod:`.tree_map`) by regression on uniform-tree errors.

Distillation, the route issue 21 allows: the targets are what the inpainting-driven tree
encoder looks at, made once per training crop (:func:`.tree_map.training_targets`: one
inpainting per depth, 8 per crop), and the network learns them with a mean squared
error on ``log1p`` of the squared error, all 8 cell sides weighted alike.  Crops: 257 x
257 grey (BT.601 luma, rounded), random positions, ``crops`` per image; flips and
transposes keep the power-of-two grid of the targets when applied to the 257-pixel crop,
which is then cut to 256 x 256 for the U-net.  Validation: the same loss on centre crops
of the validation folders.

Everything is on one device (the crops and targets too: 0.6 GB for 600 crops), so a GPU
trains without a data loader.  Checkpoints (``OUT.ckpt``) hold the network, the optimiser,
the step, the random states and the best weights, so ``--resume`` continues the run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.metrics import luma
from inpcodec.codec.precision import autocast, check_training_precision
from inpcodec.codec.training import (
    BestWeights,
    Budget,
    check_device,
    checkpoint_path,
    command_line,
    machine,
    resume_checkpoint,
    save_checkpoint,
    save_safetensors,
    write_provenance,
)

from .networks import count_parameters
from .tree_map import TARGET_SIDE, TreeMapNet, training_targets


@dataclass
class TreeMapConfig:
    """Everything that defines a run (stored in the checkpoint and the provenance)."""

    data: list = field(default_factory=list)
    val: list = field(default_factory=list)
    crops: int = 2
    val_images: int = 16
    batch: int = 16
    steps: int = 20000
    minutes: float | None = None
    lr: float = 5e-4
    seed: int = 0
    val_every: int = 250
    workers: int = 1
    device: str = "cpu"
    # arithmetic of the forward passes (codec.precision.autocast); a session's choice
    precision: str = "float32"


def _crops_of(args):
    """(crop uint8, targets float16) at each position of one image (runs in a worker)."""
    path, positions = args
    g = np.rint(luma(load_image(path))).astype(np.uint8)
    out = []
    for y, x in positions:
        c = g[y:y + TARGET_SIDE, x:x + TARGET_SIDE]
        out.append((c, training_targets(c).astype(np.float16)))
    return out


def _positions(paths, per_image, rng, centre=False):
    """Per image large enough: its path and ``per_image`` crop corners."""
    jobs = []
    for p in paths:
        with Image.open(p) as im:
            w, h = im.size
        if min(h, w) < TARGET_SIDE:
            continue
        if centre:
            corners = [((h - TARGET_SIDE) // 2, (w - TARGET_SIDE) // 2)] * per_image
        else:
            corners = [(int(rng.integers(0, h - TARGET_SIDE + 1)),
                        int(rng.integers(0, w - TARGET_SIDE + 1))) for _ in range(per_image)]
        jobs.append((str(p), corners))
    return jobs


def make_dataset(paths, per_image, rng, *, centre=False, workers=1, log=print):
    """Crops (N, 257, 257) uint8 and targets (N, 8, 257, 257) float16."""
    jobs = _positions(paths, per_image, rng, centre)
    if not jobs:
        raise ValueError(f"no image of at least {TARGET_SIDE}x{TARGET_SIDE} pixels")
    log(f"making targets of {per_image * len(jobs)} crops ({workers} workers)")
    training_targets(np.zeros((TARGET_SIDE, TARGET_SIDE)))  # compile (or load) the
    # solver kernels once, before the workers
    if workers > 1:
        # spawn: workers load the kernels from Numba's cache; forking a process whose
        # Numba threads are running is not safe
        env_threads = os.environ.get("NUMBA_NUM_THREADS")
        os.environ["NUMBA_NUM_THREADS"] = "1"
        try:
            with mp.get_context("spawn").Pool(workers) as pool:
                out = pool.map(_crops_of, jobs, chunksize=2)
        finally:
            if env_threads is None:
                os.environ.pop("NUMBA_NUM_THREADS", None)
            else:
                os.environ["NUMBA_NUM_THREADS"] = env_threads
    else:
        out = [_crops_of(j) for j in jobs]
    pairs = [pair for image in out for pair in image]
    return np.stack([c for c, _ in pairs]), np.stack([t for _, t in pairs])


def _augment(x, t, gen):
    """Random flips and transpose (same for image and targets), then cut to 256 x 256."""
    if torch.rand((), generator=gen) < 0.5:
        x, t = x.flip(-1), t.flip(-1)
    if torch.rand((), generator=gen) < 0.5:
        x, t = x.flip(-2), t.flip(-2)
    if torch.rand((), generator=gen) < 0.5:
        x, t = x.transpose(-1, -2), t.transpose(-1, -2)
    s = TARGET_SIDE - 1
    return x[..., :s, :s], t[..., :s, :s]


def _val_loss(net, xs, ts, batch):
    net.eval()
    total = 0.0
    with torch.inference_mode():
        for i in range(0, xs.shape[0], batch):
            x, t = xs[i:i + batch, :, :-1, :-1], ts[i:i + batch, :, :-1, :-1]
            total += float(torch.nn.functional.mse_loss(net(x), t.float(), reduction="sum"))
    net.train()
    return total / (ts[:, :, :-1, :-1].numel())


def train_tree_map(cfg: TreeMapConfig, out: str | Path, *, resume: bool = False,
                   log=print, command: str | None = None) -> dict:
    """Train (or resume) the tree-map network; writes ``out`` (best weights) and its JSON."""
    out = Path(out)
    check_device(cfg.device)
    check_training_precision(cfg.precision)
    device = torch.device(cfg.device)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    train_paths = find_images(cfg.data)
    val_paths = find_images(cfg.val)[:cfg.val_images]
    xs, ts = make_dataset(train_paths, cfg.crops, rng, workers=cfg.workers, log=log)
    vx, vt = make_dataset(val_paths, 1, rng, centre=True, workers=cfg.workers, log=log)

    def to_dev(a, dtype):
        return torch.from_numpy(a).to(device=device, dtype=dtype)

    xs = to_dev(xs, torch.float32)[:, None] / 255.0
    vx = to_dev(vx, torch.float32)[:, None] / 255.0
    ts, vt = to_dev(ts, torch.float16), to_dev(vt, torch.float16)

    net = TreeMapNet().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    best = BestWeights(score_key="val_loss", higher_is_better=False)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, elapsed, history, commands = 0, 0.0, [], []
    if resume:
        state = resume_checkpoint(out, required=("net", "opt", "step", "gen"),
                                  kind="train-tree-map checkpoint")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        gen.set_state(state["gen"])
        best.load_state_dict(state["best"])
        commands = list(state.get("commands", []))
    commands.append(command_line(command))
    budget = Budget(cfg.steps, cfg.minutes, elapsed=elapsed)
    log(f"tree-map network: {count_parameters(net)} parameters, {xs.shape[0]} training "
        f"crops, {vx.shape[0]} validation crops, on {device}")

    def checkpoint():
        save_checkpoint(checkpoint_path(out), {
            "net": net.state_dict(), "opt": opt.state_dict(), "step": step,
            "elapsed": budget.elapsed, "history": history, "gen": gen.get_state(),
            "best": best.state_dict(), "config": asdict(cfg), "commands": commands})

    net.train()
    while not budget.exhausted(step, log):
        idx = torch.randint(0, xs.shape[0], (cfg.batch,), generator=gen).to(device)
        x, t = _augment(xs[idx], ts[idx], gen)
        with autocast(cfg.device, cfg.precision):
            loss = torch.nn.functional.mse_loss(net(x).float(), t.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        budget.lap()
        if step % cfg.val_every == 0 or budget.exhausted(step):
            v = _val_loss(net, vx, vt, cfg.batch)
            history.append([step, round(budget.elapsed, 1), loss.item(), v])
            if best.consider(step, v, net):
                save_safetensors(out, {k: w.cpu() for k, w in net.state_dict().items()},
                                 {"kind": "tree_map", "log2_sides": "1-8"})
            log(f"step {step}: train {loss.item():.4f}  val {v:.4f}  "
                f"({budget.elapsed / 60:.1f} min)")
            checkpoint()
    record = {
        "weights": out.name, "command": commands, "data": cfg.data,
        "validation_folders": cfg.val, "training_crops": int(xs.shape[0]),
        "validation_crops": int(vx.shape[0]), "steps": step,
        "best_step": best.step, "best_val_loss": best.score,
        "seed": cfg.seed, "wall_time_minutes": budget.wall_time_minutes,
        "machine": machine(str(device)), "config": asdict(cfg),
        "history": history,
        "loss": "MSE of log1p squared uniform-tree error, 8 cell sides 2..256",
    }
    write_provenance(out, record)
    log(json.dumps({k: record[k] for k in ("steps", "best_val_loss", "wall_time_minutes")}))
    return record
