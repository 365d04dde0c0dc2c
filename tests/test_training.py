"""The trainers' shared machinery (inpcodec.codec.training): checkpoints, random states,
best weights, budgets, atomic outputs.  Small and fast: no data folder, no network."""

import json
import os
import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from inpcodec.codec import training as T

RAN = []  # what the hostile pickle below would append to, were it unpickled


def _mark(what):
    RAN.append(what)
    return what


class Hostile:
    """Unpickles as a call of :func:`_mark`: a stand-in for a pickle that runs code."""

    def __reduce__(self):
        return (_mark, ("code ran",))


def _draws(rng):
    return (torch.rand(4), rng.random(3), [random.random() for _ in range(3)])


def test_checkpoint_round_trip_restores_every_random_state(tmp_path):
    torch.manual_seed(1)
    random.seed(2)
    rng = np.random.default_rng(3)
    _draws(rng)  # not at the seeds' start
    path = T.checkpoint_path(tmp_path / "run.safetensors")
    assert path == tmp_path / "run.ckpt"
    T.save_checkpoint(path, {"step": 7, "weights": {"w": torch.arange(3.0)}, **T.rng_state(rng)})
    before = _draws(rng)
    torch.manual_seed(99)  # another state everywhere
    random.seed(99)
    rng = np.random.default_rng(99)
    state = T.load_checkpoint(path, required=("step", "numpy_rng", "torch_rng"))
    assert state["step"] == 7 and torch.equal(state["weights"]["w"], torch.arange(3.0))
    T.set_rng_state(state, rng)
    after = _draws(rng)
    assert torch.equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoints_without_the_python_state_still_restore(tmp_path):
    # checkpoints written before the shared module have numpy_rng and torch_rng only
    rng = np.random.default_rng(5)
    state = T.rng_state(rng)
    del state["python_rng"]
    T.save_checkpoint(tmp_path / "old.ckpt", state)
    expected = rng.random(2)
    T.set_rng_state(T.load_checkpoint(tmp_path / "old.ckpt"), rng)
    np.testing.assert_array_equal(rng.random(2), expected)


def _one_line_value_error(path, **kwargs):
    with pytest.raises(ValueError) as info:
        T.load_checkpoint(path, **kwargs)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    return message


def test_damaged_or_partial_checkpoints_give_one_line(tmp_path):
    good = tmp_path / "good.ckpt"
    T.save_checkpoint(good, {"config": {}, "weights": torch.zeros(1000)})
    data = good.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[:len(data) // 2])
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all\n" * 10)
    torch.save(torch.zeros(2), tmp_path / "tensor.ckpt")
    for name in ("cut", "junk"):
        message = _one_line_value_error(tmp_path / f"{name}.ckpt", kind="train-gan checkpoint")
        assert message.startswith(f"{tmp_path / name}.ckpt: not a train-gan checkpoint (")
    assert "holds a Tensor" in _one_line_value_error(tmp_path / "tensor.ckpt")
    message = _one_line_value_error(good, required=("config", "generator", "best"),
                                    label="--init good.ckpt")
    assert message == "--init good.ckpt: not a checkpoint (no best, generator)"
    assert "no such file" in _one_line_value_error(tmp_path / "nope.ckpt")


def test_checkpoint_loader_refuses_a_pickle_that_would_run_code(tmp_path):
    path = tmp_path / "hostile.ckpt"
    torch.save({"step": 1, "payload": Hostile()}, path)
    message = _one_line_value_error(path)
    assert "not a checkpoint" in message and RAN == []
    # the test means something: unpickled without weights_only, the file runs code
    torch.load(path, weights_only=False)
    assert RAN == ["code ran"]
    RAN.clear()


def test_resume_checkpoint_errors_name_the_resume(tmp_path):
    out = tmp_path / "run.safetensors"
    with pytest.raises(ValueError, match=r"^cannot resume: no checkpoint .*run\.ckpt$"):
        T.resume_checkpoint(out)
    (tmp_path / "run.ckpt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match=r"^cannot resume: .*run\.ckpt: not a x checkpoint"):
        T.resume_checkpoint(out, kind="x checkpoint")
    T.save_checkpoint(tmp_path / "run.ckpt", {"step": 3})
    assert T.resume_checkpoint(out, required=("step",)) == {"step": 3}


def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    T.save_checkpoint(path, {"step": 1})

    def dies_half_way(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        T.save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert T.load_checkpoint(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]


def test_best_weights_keeps_a_copy_of_the_best_scores_weights():
    net = torch.nn.Linear(2, 2)
    best = T.BestWeights("score", "mask_net", higher_is_better=True)
    assert best.state_dict() == {"step": None, "score": -np.inf, "mask_net": None}
    assert not best.restore(net)
    assert best.consider(1, 20.0, net)
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight += 1.0  # the optimiser changes the tensors in place
    assert torch.equal(best.weights["weight"], kept["weight"])  # a copy, not a reference
    assert not best.consider(2, 19.0, net) and not best.consider(3, 20.0, net)  # ties keep
    assert best.step == 1 and best.score == 20.0
    assert best.restore(net) and torch.equal(net.weight, kept["weight"])
    assert best.consider(4, 21.0, net) and best.step == 4

    lower = T.BestWeights("l1", "generator", higher_is_better=False)
    assert lower.consider(0, 0.5, net) and not lower.consider(1, 0.6, net)
    assert lower.consider(2, 0.4, net)
    saved = lower.state_dict()
    assert set(saved) == {"step", "l1", "generator"} and saved["step"] == 2
    again = T.BestWeights("l1", "generator", higher_is_better=False)
    again.load_state_dict(saved)
    assert (again.step, again.score) == (2, 0.4) and not again.consider(5, 0.45, net)


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_budget_stops_at_the_step_limit():
    clock, said = FakeClock(), []
    budget = T.Budget(3, None, clock=clock)
    step = 0
    while not budget.exhausted(step, said.append):
        step += 1
        clock.t += 3600.0  # no time limit: hours per step do not matter
        budget.lap()
    assert step == 3 and said == [] and budget.elapsed == 3 * 3600.0


def test_budget_stops_at_the_time_limit_and_continues_a_resumed_clock():
    clock, said = FakeClock(), []
    budget = T.Budget(100, minutes=1.0, elapsed=30.0, clock=clock)  # 30 s spent before
    assert budget.elapsed == 30.0
    step = 0
    while not budget.exhausted(step, said.append):
        step += 1
        clock.t += 10.0
        budget.lap()
    # 30 + 3 x 10 s reaches the minute: the step in progress finished, no fourth began
    assert step == 3 and budget.elapsed == 60.0 and budget.wall_time_minutes == 1.0
    assert said == ["time budget of 1.0 min reached at step 3"]


def test_resumed_config_keeps_the_stored_run_but_takes_the_budgets():
    @dataclass
    class Cfg:
        steps: int = 10
        minutes: float | None = None
        lr: float = 1e-3
        skip: bool = True

    stored = {"steps": 10, "minutes": 5.0, "lr": 2e-3}
    cfg = T.resumed_config(Cfg(steps=20, minutes=None, lr=9.0), stored,
                           older={"skip": False})
    assert cfg == Cfg(steps=20, minutes=None, lr=2e-3, skip=False)
    assert T.resumed_config(Cfg(steps=4, minutes=2.0), stored).steps == 10  # never lowered


def test_provenance_is_written_atomically(tmp_path):
    out = tmp_path / "net.safetensors"
    path = T.write_provenance(out, {"command": T.command_line("train it"), "steps": 3,
                                    "machine": T.machine("cpu")})
    assert path == tmp_path / "net.json"
    record = json.loads(path.read_text())
    assert record["command"] == "train it" and record["steps"] == 3
    assert "torch threads" in record["machine"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json"]
    with pytest.raises(TypeError):  # not JSON: the previous file stays, nothing else left
        T.write_provenance(out, {"steps": object()})
    assert json.loads(path.read_text())["steps"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json"]


def test_safetensors_are_written_atomically_with_metadata(tmp_path):
    out = tmp_path / "net.safetensors"
    net = torch.nn.Linear(3, 2)
    T.save_safetensors(out, net.state_dict(), {"kind": "linear"})
    loaded = load_file(out)
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())
    with safe_open(out, "pt") as f:
        assert f.metadata() == {"kind": "linear"}
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not safetensors' own 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]


def test_training_autocast_runs_products_in_the_precision_asked_for():
    from inpcodec.codec.precision import autocast

    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast("cpu", "float32"):
        assert (a @ b).dtype == torch.float32
    with autocast("cpu", "bfloat16"):
        y = a @ b
        assert y.dtype == torch.bfloat16
        # losses stay float32 under autocast (mse_loss is on its float32 list)
        assert torch.nn.functional.mse_loss(y, torch.zeros_like(y)).dtype == torch.float32
    assert (a @ b).dtype == torch.float32  # only inside the context
    with pytest.raises(ValueError, match="training precision must be one of"):
        autocast("cpu", "float16")
