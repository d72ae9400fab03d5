"""Killed and faulty training: SIGKILL at random steps then --resume gives the uninterrupted weights; SIGINT
saves a checkpoint and exits cleanly; NaN losses are skipped, and a run of them stops with a clear message."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from inpaintseg.config import resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine import train as train_module
from inpaintseg.engine.checkpoint import load_checkpoint
from inpaintseg.engine.pipeline import run_training
from inpaintseg.errors import InpaintsegError
from tests.helpers import TINY as BASE_TINY

TINY = [*BASE_TINY, "data.background=known", "train.image_every=1000", "train.threads=1"]
STEPS = 14


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), camera="static", sequences=2, frames=6, size=(96, 64), seed=5)


def _train_cmd(data, run, *extra):
    return [sys.executable, "-m", "inpaintseg", "train", str(data), "--out", str(run), *TINY,
            f"train.steps={STEPS}", "train.checkpoint_every=1", *extra]


def _checkpoint_step(run) -> int:
    try:
        return int(load_checkpoint(run / "train_last.pt")["step"])
    except Exception:  # not written yet
        return -1


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_sigkill_then_resume_gives_identical_weights(data, tmp_path):
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(data, ref), check=True, env=_env(), capture_output=True)
    run = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    for target in sorted(rng.sample(range(2, STEPS - 2), 3)):
        args = _train_cmd(data, run, *(["--resume"] if kills else []))
        proc = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _checkpoint_step(run) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2  # the run really was killed (a finished run cannot be)
    assert _checkpoint_step(run) < STEPS
    subprocess.run(_train_cmd(data, run, "--resume"), check=True, env=_env(), capture_output=True)
    a, b = load_checkpoint(ref / "model.pt"), load_checkpoint(run / "model.pt")
    assert a["step"] == b["step"] == STEPS
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_or_sigterm_saves_a_checkpoint_and_exits_cleanly(data, tmp_path, signum):
    run = tmp_path / "run"
    args = [*_train_cmd(data, run), "train.steps=100000", "train.checkpoint_every=100000"]
    # A background job of a non-interactive shell (as CI may run pytest) inherits SIGINT ignored, and so would
    # the child: give it the default disposition, as in an interactive terminal, so that Python maps SIGINT
    # to KeyboardInterrupt.
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = run / "train_metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert _checkpoint_step(run) >= max(logged) >= 3  # the work done before the signal is kept
    assert (run / "model.pt").exists()


def _nan_on_steps(monkeypatch, bad_steps):
    real = train_module.stage2_losses
    calls = {"n": 0}

    def patched(*args, **kwargs):
        total, terms, pictures = real(*args, **kwargs)
        step = calls["n"]
        calls["n"] += 1
        if step in bad_steps:
            total = total * float("nan")
        return total, terms, pictures

    monkeypatch.setattr(train_module, "stage2_losses", patched)


def test_nan_loss_is_skipped_and_logged(data, tmp_path, monkeypatch):
    _nan_on_steps(monkeypatch, {1, 3})
    cfg = resolve("cpu", overrides=[*TINY, "train.steps=5"])
    path = run_training(cfg, data, tmp_path / "run", progress=False)
    payload = load_checkpoint(path)
    assert payload["step"] == 5
    assert all(torch.isfinite(t).all() for t in payload["model"].values() if t.is_floating_point())
    records = [json.loads(line) for line in (tmp_path / "run" / "train_metrics.jsonl").read_text().splitlines()]
    assert [r["skipped/nonfinite_loss"] for r in records if "skipped/nonfinite_loss" in r] == [1.0, 2.0]


def test_repeated_nan_stops_with_pointer_to_last_good_checkpoint(data, tmp_path, monkeypatch):
    _nan_on_steps(monkeypatch, set(range(3, 100)))
    cfg = resolve("cpu", overrides=[*TINY, "train.steps=50", "train.checkpoint_every=2"])
    with pytest.raises(InpaintsegError, match="NaN or infinite for 10 steps.*train_last.pt"):
        run_training(cfg, data, tmp_path / "run", progress=False)
    assert _checkpoint_step(tmp_path / "run") >= 2
