"""Reliability: untrusted checkpoints and configs are refused without running any code they carry."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from inpaintseg.cli import main
from inpaintseg.config import load, resolve
from inpaintseg.engine.checkpoint import load_checkpoint, save_checkpoint
from inpaintseg.errors import ConfigError, InpaintsegError


class _RunsCode:
    """Unpickling this object calls os.system(command): what a malicious checkpoint does."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _evil_payload(marker) -> dict:
    evil = _RunsCode(f"touch {marker}")
    return {"format": "inpaintseg-model", "config": {}, "model": {"w": torch.zeros(2)}, "x": evil}


def _write_zip_checkpoint(path, marker) -> None:
    torch.save(_evil_payload(marker), path)  # the current (zip) format


def _write_legacy_checkpoint(path, marker) -> None:
    torch.save(_evil_payload(marker), path, _use_new_zipfile_serialization=False)


def _write_raw_pickle(path, marker) -> None:
    path.write_bytes(pickle.dumps(_evil_payload(marker)))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("write", [_write_zip_checkpoint, _write_legacy_checkpoint, _write_raw_pickle])
def test_checkpoint_that_runs_code_is_refused(tmp_path, write) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    write(path, marker)
    with pytest.raises(InpaintsegError, match="refused to load") as info:
        load_checkpoint(path, "model")
    assert str(path) in str(info.value)
    assert not marker.exists(), "the checkpoint's code ran"
    # The same through the command line: exit code 2 and the message, no code run.
    assert main(["export", str(path), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 2
    assert not marker.exists() and not (tmp_path / "m.ts").exists()


def test_control_the_marker_command_works(tmp_path) -> None:
    """The payload is real: unpickling it without the guard does run the command (so the test above can fail)."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_RunsCode(f"touch {marker}")))
    assert marker.exists()


def test_plain_checkpoint_still_loads(tmp_path) -> None:
    path = tmp_path / "ok.pt"
    save_checkpoint(path, {"format": "inpaintseg-model", "step": 3, "model": {"w": torch.arange(3.0)}})
    payload = load_checkpoint(path, "model")
    assert payload["step"] == 3 and torch.equal(payload["model"]["w"], torch.tensor([0.0, 1.0, 2.0]))


EVIL_YAML = [
    "train: !!python/object/apply:os.system ['touch {marker}']\n",
    "!!python/object/apply:os.system ['touch {marker}']\n",
    "train:\n  minutes: !!python/object/new:os.system ['touch {marker}']\n",
    "data: !!python/name:os.system\n",
]


@pytest.mark.parametrize("text", EVIL_YAML)
def test_yaml_config_that_runs_code_is_refused(tmp_path, text) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(text.format(marker=marker))
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="invalid YAML"):
        resolve("cpu", config_file=path)
    assert not marker.exists(), "the config's code ran"


def test_cli_reports_a_refused_yaml_config_cleanly(tmp_path, capsys) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(EVIL_YAML[0].format(marker=tmp_path / "pwned"))
    assert main(["config", "--config", str(path)]) == 2
    assert "invalid YAML" in capsys.readouterr().err
