"""One plain training loop for every method.

A method is an ``nn.Module`` whose ``forward(batch)`` returns a dict with
``"loss"`` (plus any scalars worth logging), and which says which validation
metric to watch (``monitor``, ``monitor_mode``). The loop does the rest:
optimisation, CSV (and optionally TensorBoard) logs, a progress bar,
validation, early stopping, and checkpoints that let a killed run resume
exactly where it stopped (``last.pt``, written atomically at every epoch end and
every ``checkpoint_every`` steps; ``best.pt`` at every improvement).

Resuming is exact on CPU: batch order and augmentation depend only on the
seed and the epoch (the samplers and the dataset are keyed by them), and the
torch RNG state is saved with each checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from reidstream.training.checkpoint import load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class LoopOptions:
    """How long and how verbosely to train (see :class:`~reidstream.training.config.LoopConfig`)."""

    epochs: int = 60
    patience: int = 10
    eval_every: int = 1
    checkpoint_every: int = 0
    max_steps_per_epoch: int = 0
    progress: bool = True
    tensorboard: bool = False


class _CsvLog:
    """Appends dict rows to a CSV file; the header is fixed by the first row ever written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file() and path.stat().st_size:
            with path.open(newline="") as f:
                self.fields = next(csv.reader(f), None)

    def write(self, row: Mapping[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _truncate_log(path: Path, column: str, upto: int) -> None:
    """Drops rows whose ``column`` exceeds ``upto`` (work after the checkpoint a run resumes from)."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or column not in rows[0]:
        return
    i = rows[0].index(column)
    keep = [rows[0]] + [r for r in rows[1:] if len(r) > i and int(float(r[i])) <= upto]
    if len(keep) == len(rows):
        return  # nothing after the checkpoint: leave the file untouched
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows(keep)
    tmp.replace(path)


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """Runs a method's optimisation with validation, early stopping, logs and resumable checkpoints.

    Args:
        model: The method, possibly wrapped in ``DistributedDataParallel``.
        optimizer: Optimiser over the method's trainable parameters.
        scheduler: Learning-rate scheduler stepped once per epoch, or None.
        loader: Training ``DataLoader`` whose ``batch_sampler`` has ``set_epoch`` and ``skip``
            and whose dataset has ``set_epoch``.
        out_dir: Run directory.
        validate: ``fn(method) -> {"val/...": float}``; must include the method's ``monitor``.
        checkpoint_extra: ``fn(method) -> dict`` of extra checkpoint fields (config, embedders...).
        options: Loop options.
        device: Device of the batches.
        rank: Process rank (only rank 0 logs, validates and writes files).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, loader: Any, *,
                 out_dir: str | Path, validate: Callable[[nn.Module], dict[str, float]] | None,
                 checkpoint_extra: Callable[[nn.Module], dict[str, Any]], options: LoopOptions = LoopOptions(),
                 device: str | torch.device = "cpu", rank: int = 0) -> None:
        self.model = model
        self.method = getattr(model, "module", model)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loader = loader
        self.out_dir = Path(out_dir)
        self.validate = validate
        self.checkpoint_extra = checkpoint_extra
        self.options = options
        self.device = torch.device(device)
        self.rank = rank
        self.epoch, self.batch, self.step = 0, 0, 0
        self.best: dict[str, Any] = {"value": None, "epoch": None, "metrics": {}}
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []

    # -- checkpoints ---------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return dict(self.checkpoint_extra(self.method),
                    state=self.method.state_dict(), optimizer=self.optimizer.state_dict(),
                    scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
                    progress={"epoch": self.epoch, "batch": self.batch, "step": self.step},
                    best=self.best, bad_epochs=self.bad_epochs, history=self.history,
                    metrics=self.best["metrics"], rng=torch.get_rng_state())

    def save(self, name: str) -> Path | None:
        """Writes ``out_dir/name`` (rank 0 only)."""
        if self.rank != 0:
            return None
        return save_checkpoint(self.out_dir / name, self._payload())

    def resume(self, path: str | Path) -> None:
        """Restores weights, optimiser, schedule, progress, early-stopping state and RNG from a checkpoint."""
        ckpt = load_checkpoint(path)
        self.method.load_state_dict(ckpt["state"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        p = ckpt["progress"]
        self.epoch, self.batch, self.step = int(p["epoch"]), int(p["batch"]), int(p["step"])
        self.best = ckpt["best"]
        self.bad_epochs = int(ckpt.get("bad_epochs", 0))
        self.history = list(ckpt.get("history", []))
        torch.set_rng_state(ckpt["rng"])
        if self.rank == 0:
            _truncate_log(self.out_dir / "train_log.csv", "step", self.step)
            _truncate_log(self.out_dir / "val_log.csv", "epoch", self.epoch)
        self._say(f"resumed from {path}: epoch {self.epoch}, batch {self.batch}, step {self.step}")

    def finished(self) -> str | None:
        """Why the run (as resumed) has nothing left to train, or None while it has.

        A run is finished once it has trained ``epochs`` epochs, or once early stopping ended it
        (``patience`` evaluations in a row without improvement); both under the current options, so
        raising ``loop.epochs`` or ``loop.patience`` lets a finished run go on.
        """
        if self.epoch >= self.options.epochs:
            return f"all {self.options.epochs} epochs are done"
        if self.options.patience and self.bad_epochs >= self.options.patience:
            return (f"early stopping ended it at epoch {self.epoch}: no improvement of {self.method.monitor} "
                    f"for {self.bad_epochs} evaluations")
        return None

    def _previous_summary(self) -> dict[str, Any] | None:
        """``summary.json`` of this run if it was written at the current progress (None otherwise)."""
        try:
            summary = json.loads((self.out_dir / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(summary, dict) or summary.get("epochs") != self.epoch or summary.get("steps") != self.step:
            return None  # an older run's, or the run was killed before writing it
        return summary

    # -- loop ----------------------------------------------------------------------------------
    def _say(self, msg: str) -> None:
        if self.rank == 0:
            print(f"reid-train: {msg}", file=sys.stderr, flush=True)

    def _improved(self, value: float) -> bool:
        best = self.best["value"]
        if best is None:
            return True
        return value > best if self.method.monitor_mode == "max" else value < best

    def _epoch_batches(self) -> int:
        n = len(self.loader.batch_sampler)
        return min(n, self.options.max_steps_per_epoch) if self.options.max_steps_per_epoch else n

    def _run_epoch(self, train_log: _CsvLog, tb: Any) -> None:
        sampler, dataset = self.loader.batch_sampler, self.loader.dataset
        sampler.set_epoch(self.epoch)
        dataset.set_epoch(self.epoch)
        sampler.skip(self.batch)
        total = self._epoch_batches()
        bar = None
        if self.options.progress and self.rank == 0:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=self.batch, desc=f"epoch {self.epoch + 1}/{self.options.epochs}",
                       file=sys.stderr, leave=False, dynamic_ncols=True)
        self.model.train()
        for batch in self.loader:
            if self.batch >= total:
                break
            out = self.model(_to_device(batch, self.device))
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {self.epoch + 1}, batch "
                                         f"{self.batch + 1}; lower optim.lr or check the data")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.batch += 1
            self.step += 1
            row = {"step": self.step, "epoch": self.epoch + 1, "batch": self.batch,
                   "lr": self.optimizer.param_groups[0]["lr"]}
            row.update({k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1})
            if self.rank == 0:
                train_log.write(row)
                if tb is not None:
                    for k, v in row.items():
                        if k not in ("step", "epoch", "batch"):
                            tb.add_scalar(f"train/{k}", v, self.step)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}")
            if self.options.checkpoint_every and self.step % self.options.checkpoint_every == 0:
                self.save("last.pt")
        if bar is not None:
            bar.close()

    @staticmethod
    def _agree(stopped: bool) -> bool:
        """Under DDP, every rank takes rank 0's early-stopping decision (and waits for its validation)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return stopped
        flag = torch.tensor([1 if stopped else 0], dtype=torch.int64)
        if torch.distributed.get_backend() == "nccl":
            flag = flag.cuda()
        torch.distributed.broadcast(flag, src=0)
        return bool(flag.item())

    def fit(self) -> dict[str, Any]:
        """Trains until ``epochs`` or early stopping; returns the summary written to ``summary.json``.

        A run resumed after it finished (see :meth:`finished`) trains nothing and writes nothing: it
        says so and returns its ``summary.json`` (written now if the run was killed before writing it).
        """
        done = self.finished()
        if done is not None:
            self._say(f"{self.out_dir} is finished ({done}); nothing to train. reid-train --restart trains it "
                      f"again from scratch; a higher loop.epochs or loop.patience continues it")
            previous = self._previous_summary()
            if previous is not None:
                return previous
        self.out_dir.mkdir(parents=True, exist_ok=True)
        train_log, val_log = _CsvLog(self.out_dir / "train_log.csv"), _CsvLog(self.out_dir / "val_log.csv")
        tb = None
        if self.options.tensorboard and self.rank == 0:
            try:
                from torch.utils.tensorboard import SummaryWriter
                tb = SummaryWriter(str(self.out_dir / "tensorboard"))
            except ImportError:
                self._say("tensorboard is not installed; logging to CSV only (pip install tensorboard)")
        monitor = self.method.monitor
        stopped = bool(self.options.patience) and self.bad_epochs >= self.options.patience  # resumed after it
        start = time.perf_counter()
        while self.epoch < self.options.epochs and not stopped:
            self._run_epoch(train_log, tb)
            if self.scheduler is not None:
                self.scheduler.step()
            self.epoch, self.batch = self.epoch + 1, 0
            if self.validate is not None and self.rank == 0 and self.epoch % self.options.eval_every == 0:
                metrics = self.validate(self.method)
                if monitor not in metrics or not math.isfinite(metrics[monitor]):
                    raise ValueError(f"validation returned no finite {monitor!r}; got {sorted(metrics)}")
                self.history.append({"epoch": self.epoch, **metrics})
                val_log.write({"epoch": self.epoch, "step": self.step, **metrics})
                if tb is not None:
                    for k, v in metrics.items():
                        tb.add_scalar(k, v, self.step)
                shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
                if self._improved(metrics[monitor]):
                    self.best = {"value": metrics[monitor], "epoch": self.epoch, "metrics": metrics}
                    self.bad_epochs = 0
                    self.save("best.pt")
                    self._say(f"epoch {self.epoch}: {shown} (best)")
                else:
                    self.bad_epochs += 1
                    self._say(f"epoch {self.epoch}: {shown} (best {self.best['value']:.4g} at epoch "
                              f"{self.best['epoch']})")
                    stopped = bool(self.options.patience) and self.bad_epochs >= self.options.patience
            stopped = self._agree(stopped)
            self.save("last.pt")
        if self.validate is None and self.rank == 0:
            self.save("best.pt")
        summary = {"epochs": self.epoch, "steps": self.step, "stopped_early": stopped, "monitor": monitor,
                   "best": self.best, "seconds": round(time.perf_counter() - start, 1)}
        if self.rank == 0:
            (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
            if stopped:
                self._say(f"early stop: no improvement of {monitor} for {self.bad_epochs} evaluations")
        if tb is not None:
            tb.close()
        return summary
