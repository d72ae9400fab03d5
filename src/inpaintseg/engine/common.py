"""Small pieces shared by the two training stages: devices, budgets, per-step random generators."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from inpaintseg.engine import distributed
from inpaintseg.errors import InpaintsegError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX-512 BF16 or AMX-BF16 instructions (read from /proc/cpuinfo; False elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str, device: torch.device) -> bool:
    """Resolve ``train.precision`` (auto|bf16|fp32) for a device."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast for the networks' forward passes (a no-op when not enabled)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def step_generator(seed: int, step: int, salt: int = 0) -> torch.Generator:
    """A CPU generator determined by (seed, step, salt): batches, holes and samples of a step do not
    depend on what ran before, so a resumed run draws exactly what an uninterrupted one would."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step * 7_919 + salt * 104_729) % (2**63 - 1))
    return g


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Resume ``opt`` from a checkpoint's state (moments, step counts) at the learning rates it was built with, so
    that a resumed run follows its configuration (for example a lower ``inpainter.lr`` to anneal a long run)."""
    rates = [group["lr"] for group in opt.param_groups]
    opt.load_state_dict(state)
    for group, rate in zip(opt.param_groups, rates, strict=True):
        group["lr"] = rate


class Budget:
    """Stops at ``steps`` or after ``minutes`` of wall time (0 = no time limit), whichever comes first.

    ``spent`` is the wall time a resumed run had already used (saved in its checkpoint), so a run stopped
    after 50 of its 60 minutes trains 10 more minutes after ``--resume``, not 60."""

    def __init__(self, steps: int, minutes: float, spent: float = 0.0) -> None:
        self.steps = steps
        self.seconds = minutes * 60.0
        self.start = time.monotonic() - spent

    def elapsed(self) -> float:
        """Seconds of training so far, the resumed run's earlier time included."""
        return time.monotonic() - self.start

    def done(self, step: int) -> bool:
        return step >= self.steps or (self.seconds > 0 and self.elapsed() >= self.seconds)


class NonFiniteGuard:
    """Skips optimiser steps whose loss is NaN or infinite; ``limit`` consecutive ones stop the run.

    ``ok(loss)`` returns False (skip this step's update) when the loss is not finite on any rank, and raises
    :class:`InpaintsegError` naming the last good checkpoint after ``limit`` such steps in a row.
    """

    def __init__(self, checkpoint: Path, limit: int = 10) -> None:
        self.checkpoint = checkpoint
        self.limit = limit
        self.consecutive = 0
        self.skipped = 0

    def ok(self, loss: torch.Tensor) -> bool:
        if not distributed.any_rank(not bool(torch.isfinite(loss.detach()).all())):
            self.consecutive = 0
            return True
        self.consecutive += 1
        self.skipped += 1
        if self.consecutive >= self.limit:
            where = f"the last good checkpoint is {self.checkpoint}" if self.checkpoint.exists() else (
                "no checkpoint was written yet")
            raise InpaintsegError(
                f"the loss was NaN or infinite for {self.limit} steps in a row; stopping ({where}; resume with "
                "--resume, perhaps with a lower learning rate)")
        return False

    def update(self, loss: torch.Tensor, parameters, optimizer: torch.optim.Optimizer, logger, step: int) -> None:
        """One optimiser update from ``loss`` (backward, gradient average over ranks, step), or, when the loss
        is not finite, none: the skip is counted and logged as ``skipped/nonfinite_loss``."""
        optimizer.zero_grad(set_to_none=True)
        if self.ok(loss):
            loss.backward()
            distributed.average_gradients(parameters)
            optimizer.step()
        else:
            logger.log(step, {"skipped/nonfinite_loss": float(self.skipped)})


def run_steps(step: int, budget: Budget, bar, logger, checkpoint_every: int, train_step: Callable[[int], Any],
              after_step: Callable[[int, Any], dict[str, str]], checkpoint: Callable[[int], None]) -> int:
    """The loop both training stages share. ``train_step(step)`` runs one update and returns what
    ``after_step(steps_done, result)`` logs; ``after_step`` returns the progress bar's postfix. Steps run until
    the budget is spent (rank 0 decides for every rank). ``checkpoint(steps_done)`` runs every
    ``checkpoint_every`` steps and at the end. Ctrl-C (SIGINT), and SIGTERM (``kill``, a scheduler's preemption)
    taken as Ctrl-C, write a checkpoint, close the bar and the logger (tqdm's and TensorBoard's resources) and
    raise KeyboardInterrupt, so the run can be resumed with ``--resume``. Returns the last step."""
    with _sigterm_as_interrupt():
        return _run_steps(step, budget, bar, logger, checkpoint_every, train_step, after_step, checkpoint)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (in the main thread only; elsewhere it is left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_steps(step: int, budget: Budget, bar, logger, checkpoint_every: int, train_step: Callable[[int], Any],
               after_step: Callable[[int, Any], dict[str, str]], checkpoint: Callable[[int], None]) -> int:
    try:
        while not distributed.agree(budget.done(step)):
            result = train_step(step)
            step += 1
            bar.update(1)
            bar.set_postfix(**after_step(step, result))
            if step % checkpoint_every == 0:
                checkpoint(step)
    except KeyboardInterrupt:
        checkpoint(step)
        bar.close()
        logger.close()
        raise
    bar.close()
    checkpoint(step)
    logger.close()
    return step
