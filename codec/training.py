"""The machinery both trainers share: checkpoints, random states, budgets and provenance.

The mask-network trainer (``inpcodec.learned_masks.training``, ``inpcodec train-masks``)
and the GAN trainer (``inpcodec.codec.postprocess.training``, ``inpcodec train-gan``)
differ in their networks and losses but must handle their files in the same way:

* a resumable checkpoint ``OUT.ckpt`` beside the weights ``OUT.safetensors``, written
  atomically (:func:`save_checkpoint`) and read back with ``weights_only=True``, so that a
  checkpoint from elsewhere cannot run code when unpickled, and a damaged or partial one
  is a one-line :class:`ValueError` (:func:`load_checkpoint`, :func:`resume_checkpoint`);
* the random states (torch, the run's numpy generator, Python's ``random``) in that
  checkpoint, so that a resumed run draws what an uninterrupted one would
  (:func:`rng_state`, :func:`set_rng_state`);
* the weights of the best validation, which are what ships (:class:`BestWeights`);
* the step and wall-time budgets (``--steps``, ``--minutes``; :class:`Budget`);
* the weights as safetensors and the provenance JSON beside them, both written
  atomically (:func:`save_safetensors`, :func:`write_provenance`, with the
  :func:`command_line` and :func:`machine` entries).

The file formats are those the trainers wrote before this module existed: the
checkpoint is a flat dict whose keys each trainer chooses (the random states under
``numpy_rng``, ``torch_rng`` and, since this module, ``python_rng``), so older
checkpoints still resume.

Layering: this is the solver-core layer; it imports torch, numpy, safetensors and the
standard library only, never the pipeline, the mask encoders or the post-processor.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

#: Suffix of the resumable checkpoint beside the weights file.
CHECKPOINT_SUFFIX = ".ckpt"


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_path(out: str | os.PathLike) -> Path:
    """The checkpoint that belongs to the weights file ``out``: ``OUT.ckpt``."""
    return Path(out).with_suffix(CHECKPOINT_SUFFIX)


def _replace_from_temporary(path: Path, suffix: str, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``<path><suffix>``, then rename it over ``path``.

    Why: an interrupted run (Ctrl-C, out of memory, the machine taken away) must leave the
    previous complete file, never a half-written one; the rename is atomic on one file
    system, and the temporary file lies beside the target for that reason.
    """
    tmp = path.with_name(path.name + suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write a checkpoint atomically (through ``<path>.tmp``).

    Parameters
    ----------
    path : path
        The checkpoint file, usually :func:`checkpoint_path` of the weights.
    state : dict
        Tensors, state dicts and plain Python values (numbers, strings, lists, tuples,
        dicts, None): what :func:`load_checkpoint` reads back with ``weights_only=True``.
        numpy arrays and other objects would not load; the trainers store none.
    """
    _replace_from_temporary(Path(path), ".tmp", lambda tmp: torch.save(state, tmp))


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch's unpickling errors run to a page)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_checkpoint(path: str | os.PathLike, *, required: Iterable[str] = (),
                    kind: str = "checkpoint", label: str | None = None) -> dict:
    """Read a checkpoint with ``weights_only=True`` onto the CPU.

    Parameters
    ----------
    path : path
    required : iterable of str
        Keys the dict must hold; a file without them is not a checkpoint of this kind
        (say, the other trainer's, or a truncated save of an older format).
    kind : str
        What the file should be, for the message ("train-gan checkpoint").
    label : str, optional
        How the message names the file (default: the path), e.g. ``"--init FILE"``.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        One line, for a missing, truncated or damaged file, one whose unpickling would
        need anything beyond tensors and plain values (it could run code; refused
        unread), or one without the ``required`` keys.
    """
    path = Path(path)
    name = label if label is not None else str(path)
    if not path.is_file():
        raise ValueError(f"{name}: no such file")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise ValueError(f"{name}: not a {kind} ({_one_line(exc)})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{name}: not a {kind} (holds a {type(state).__name__})")
    missing = sorted(set(required) - state.keys())
    if missing:
        raise ValueError(f"{name}: not a {kind} (no {', '.join(missing)})")
    return state


def resume_checkpoint(out: str | os.PathLike, *, required: Iterable[str] = (),
                      kind: str = "checkpoint") -> dict:
    """The checkpoint of the weights file ``out``, for ``--resume``.

    Raises
    ------
    ValueError
        One line: ``cannot resume: ...`` when the checkpoint is missing or unreadable
        (see :func:`load_checkpoint`).
    """
    path = checkpoint_path(out)
    if not path.exists():
        raise ValueError(f"cannot resume: no checkpoint {path}")
    try:
        return load_checkpoint(path, required=required, kind=kind)
    except ValueError as exc:
        raise ValueError(f"cannot resume: {exc}") from None


def resumed_config(given, stored: dict, older: dict | None = None):
    """The configuration of a resumed run: the checkpoint's, except the budgets.

    Parameters
    ----------
    given : dataclass
        The configuration asked for now; only its ``steps`` and ``minutes`` count:
        ``steps`` may raise the checkpoint's (never lower it), ``minutes`` replaces it
        (a fresh wall-time budget for this session).
    stored : dict
        The checkpoint's ``config`` (:func:`dataclasses.asdict` of the original).
    older : dict, optional
        Values for fields that older checkpoints lack (they lie under ``stored``).

    Returns
    -------
    dataclass
        A new instance of ``type(given)``.
    """
    cfg = type(given)(**{**(older or {}), **stored})
    cfg.steps, cfg.minutes = max(given.steps, cfg.steps), given.minutes
    return cfg


# ----------------------------------------------------------------------------- random states


def rng_state(numpy_rng: np.random.Generator) -> dict:
    """The random states a resumed run needs, under their checkpoint keys.

    Parameters
    ----------
    numpy_rng : numpy.random.Generator
        The run's own generator (crops, densities, masks).  numpy's legacy global state
        is not saved: the trainers draw nothing from it.

    Returns
    -------
    dict
        ``numpy_rng`` (the bit generator's state, plain ints and strings),
        ``torch_rng`` (the CPU generator's byte tensor) and ``python_rng``
        (:func:`random.getstate`, a tuple of ints); all load with ``weights_only=True``.
        CUDA generators are not included: the networks are initialised on the CPU and
        the steps draw nothing on the GPU.
    """
    return {"numpy_rng": numpy_rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate()}


def set_rng_state(state: dict, numpy_rng: np.random.Generator) -> None:
    """Restore what :func:`rng_state` saved (``state`` may be the whole checkpoint).

    ``python_rng`` is optional: checkpoints written before this module lack it, and then
    Python's generator is left as it is.
    """
    numpy_rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    if state.get("python_rng") is not None:
        version, internal, gauss = state["python_rng"]
        # setstate wants tuples; a list (from some other writer) would be refused
        random.setstate((version, tuple(internal), gauss))


# ----------------------------------------------------------------------------- best weights


class BestWeights:
    """The weights of the best validation so far: a detached CPU copy, not a reference.

    Why a copy: the optimiser updates the network's tensors in place, so a reference
    would always show the latest weights.

    Parameters
    ----------
    score_key : str
        The name the score has in :meth:`state_dict` (``"score"`` for the mask
        network, ``"l1"`` for the GAN: the keys of their existing checkpoints).
    weights_key : str
        The name of the state dict in :meth:`state_dict` (``"mask_net"``, ``"generator"``).
    higher_is_better : bool
        True for a PSNR, False for a loss.

    Attributes
    ----------
    step : int or None
        The step of the best validation, None before the first.
    score : float
        Its score (minus or plus infinity before the first).
    weights : dict or None
        Its state dict.
    """

    def __init__(self, score_key: str = "score", weights_key: str = "weights",
                 higher_is_better: bool = True):
        self.score_key, self.weights_key = score_key, weights_key
        self.higher_is_better = higher_is_better
        self.step: int | None = None
        self.score = -math.inf if higher_is_better else math.inf
        self.weights: dict | None = None

    def better(self, score: float) -> bool:
        """Whether ``score`` beats the best so far (strictly: a tie keeps the earlier)."""
        return score > self.score if self.higher_is_better else score < self.score

    def consider(self, step: int, score: float, module: torch.nn.Module) -> bool:
        """Keep ``module``'s weights if ``score`` is the best so far; say whether it was."""
        if not self.better(score):
            return False
        self.step, self.score = step, score
        self.weights = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        return True

    def restore(self, module: torch.nn.Module) -> bool:
        """Load the best weights into ``module`` (if there were any); say whether."""
        if self.weights is None:
            return False
        module.load_state_dict(self.weights)
        return True

    def state_dict(self) -> dict:
        """``{"step": ..., score_key: ..., weights_key: ...}``: the checkpoint's ``best``."""
        return {"step": self.step, self.score_key: self.score, self.weights_key: self.weights}

    def load_state_dict(self, state: dict) -> None:
        """Take back what :meth:`state_dict` gave (from a checkpoint)."""
        self.step = state["step"]
        self.score = state[self.score_key]
        self.weights = state[self.weights_key]


# ----------------------------------------------------------------------------- budget


class Budget:
    """When a run stops: at ``steps`` steps, or once ``minutes`` of wall time are spent.

    The clock starts when the budget is made; ``elapsed`` continues a resumed run's
    time.  The time is read by :meth:`lap` (after each step), so a step that has begun
    always finishes and the time limit is checked between steps.

    Parameters
    ----------
    steps : int
    minutes : float, optional
        None: no time limit.
    elapsed : float
        Seconds already spent (from the checkpoint of a resumed run).
    clock : callable
        Seconds, monotonic (:func:`time.perf_counter`; tests pass a fake one).
    """

    def __init__(self, steps: int, minutes: float | None = None, *, elapsed: float = 0.0,
                 clock: Callable[[], float] = time.perf_counter):
        self.steps, self.minutes, self.elapsed = steps, minutes, float(elapsed)
        self._clock = clock
        self._start = clock() - self.elapsed

    def lap(self) -> float:
        """Read the clock: the seconds spent (``elapsed``), this session's and before."""
        self.elapsed = self._clock() - self._start
        return self.elapsed

    def out_of_time(self) -> bool:
        """Whether the wall-time limit is reached (as of the last :meth:`lap`)."""
        return self.minutes is not None and self.elapsed >= 60 * self.minutes

    def exhausted(self, step: int, log: Callable[[str], object] | None = None) -> bool:
        """Whether the run must stop before taking step ``step + 1``.

        Reaching ``steps`` is the normal end and goes unannounced; the time limit is told
        through ``log`` (the run ends early, and the provenance shows fewer steps).
        """
        if step >= self.steps:
            return True
        if self.out_of_time():
            if log is not None:
                log(f"time budget of {self.minutes} min reached at step {step}")
            return True
        return False

    @property
    def wall_time_minutes(self) -> float:
        """The provenance's ``wall_time_minutes``: minutes spent, to 0.01."""
        return round(self.elapsed / 60, 2)


# ----------------------------------------------------------------------------- outputs


def save_safetensors(out: str | os.PathLike, state: dict, metadata: dict | None = None
                     ) -> None:
    """Weights as safetensors, written atomically (through ``<out>.tmp``).

    Parameters
    ----------
    out : path
    state : dict
        Name to tensor (a state dict); tensors are detached, copied to the CPU and made
        contiguous.
    metadata : dict, optional
        String to string, stored in the header (what the loaders rebuild the network from).
    """
    from safetensors.torch import save_file  # noqa: PLC0415 - only needed when saving

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors writes 0600; give the usual permissions

    _replace_from_temporary(Path(out), ".tmp", write)


def write_provenance(out: str | os.PathLike, record: dict) -> Path:
    """The provenance record as JSON beside the weights (``<out stem>.json``), atomically.

    Returns
    -------
    Path
        The JSON file.
    """
    path = Path(out).with_suffix(".json")
    text = json.dumps(record, indent=1) + "\n"
    _replace_from_temporary(path, ".tmp", lambda tmp: tmp.write_text(text))
    return path


def command_line(command: str | None = None) -> str:
    """The provenance's ``command``: the one given, else this process's arguments."""
    return command or " ".join(sys.argv)


def check_device(device: str) -> None:
    """Refuse, with a one-line ValueError, a torch device that is not there."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown torch device {device!r} (cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s) usable by torch")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: only cpu and cuda are supported")


def machine(device: str = "cpu") -> str:
    """The provenance's ``machine``: architecture, processor, device, torch threads."""
    return (f"{platform.machine()} {platform.processor()}, {device}, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
