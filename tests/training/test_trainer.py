"""The training loop on a tiny regression method: a finished run, resumed, trains nothing and rewrites nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reidstream.training.checkpoint import load_checkpoint
from reidstream.training.trainer import LoopOptions, Trainer


class Regression(nn.Module):
    """A method as the trainer sees one: ``forward(batch) -> {"loss"}``, a monitored metric."""

    monitor, monitor_mode = "val/score", "max"

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, batch: dict) -> dict:
        return {"loss": ((self.linear(batch["x"]).squeeze(1) - batch["y"]) ** 2).mean()}


class Points(Dataset):
    def __init__(self, n: int = 16) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 2, generator=g)
        self.y = self.x @ torch.tensor([1.5, -2.0]) + 0.3

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


class Batches:
    """Fixed batches of 4, resumable inside an epoch (``skip``)."""

    def __init__(self, n: int = 16, size: int = 4) -> None:
        self.n, self.size, self._skip = n, size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, batches: int) -> None:
        self._skip = batches

    def __len__(self) -> int:
        return self.n // self.size

    def __iter__(self):
        start, self._skip = self._skip, 0
        for b in range(start, len(self)):
            yield list(range(b * self.size, (b + 1) * self.size))


def trainer(out: Path, scores: list[float] | None, calls: list[int], **options) -> Trainer:
    """A trainer whose validation returns ``scores`` in turn (None: no validation); ``calls`` counts them."""
    torch.manual_seed(0)
    method = Regression()

    def validate(m: nn.Module) -> dict[str, float]:
        calls.append(1)
        return {"val/score": scores[len(calls) - 1]}

    return Trainer(method, torch.optim.SGD(method.parameters(), lr=0.05), None,
                   DataLoader(Points(), batch_sampler=Batches()), out_dir=out,
                   validate=validate if scores is not None else None, checkpoint_extra=lambda m: {"method": "test"},
                   options=LoopOptions(progress=False, **options))


def files(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of the run: (inode, mtime in ns, content); an atomic rewrite changes the inode."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.iterdir())}


def test_early_stopped_run_resumed_is_a_no_op(tmp_path, capsys):
    calls: list[int] = []
    first = trainer(tmp_path, [0.5, 0.4, 0.3, 0.2], calls, epochs=10, patience=2).fit()
    assert first["stopped_early"] and first["epochs"] == 3 and first["best"]["epoch"] == 1
    before = files(tmp_path)
    rerun_calls: list[int] = []
    again = trainer(tmp_path, [0.99] * 10, rerun_calls, epochs=10, patience=2)  # would be a new best
    again.resume(tmp_path / "last.pt")
    summary = again.fit()
    assert rerun_calls == [], "a finished run must not train or validate another epoch"
    assert summary == first and again.epoch == 3 and again.step == first["steps"]
    assert files(tmp_path) == before, "nothing may be rewritten: best.pt, last.pt, logs, summary"
    err = capsys.readouterr().err
    assert "is finished (early stopping ended it at epoch 3" in err and "--restart" in err


def test_completed_run_resumed_is_a_no_op_and_more_epochs_continue_it(tmp_path, capsys):
    first = trainer(tmp_path, None, [], epochs=2).fit()
    assert first["epochs"] == 2 and not first["stopped_early"] and first["steps"] == 8
    before = files(tmp_path)
    again = trainer(tmp_path, None, [], epochs=2)
    again.resume(tmp_path / "last.pt")
    assert again.finished() == "all 2 epochs are done"
    assert again.fit() == first
    assert files(tmp_path) == before
    assert "is finished (all 2 epochs are done); nothing to train" in capsys.readouterr().err

    # Killed after last.pt but before summary.json: the rerun writes the summary, still without training.
    (tmp_path / "summary.json").unlink()
    again = trainer(tmp_path, None, [], epochs=2)
    again.resume(tmp_path / "last.pt")
    summary = again.fit()
    assert (summary["epochs"], summary["steps"]) == (2, 8)
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 8
    assert load_checkpoint(tmp_path / "last.pt")["progress"]["step"] == 8

    # A higher loop.epochs continues the run.
    more = trainer(tmp_path, None, [], epochs=3)
    more.resume(tmp_path / "last.pt")
    assert more.finished() is None
    assert more.fit()["epochs"] == 3 and load_checkpoint(tmp_path / "last.pt")["progress"]["step"] == 12


@pytest.mark.parametrize("patience, finished", [(2, True), (3, False), (0, False)])
def test_raised_patience_lets_an_early_stopped_run_go_on(tmp_path, patience, finished):
    trainer(tmp_path, [0.5, 0.4, 0.3], [], epochs=10, patience=2).fit()
    again = trainer(tmp_path, [0.2] * 10, [], epochs=10, patience=patience)
    again.resume(tmp_path / "last.pt")
    assert (again.finished() is not None) is finished
