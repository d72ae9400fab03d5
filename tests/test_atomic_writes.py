"""Reliability of outputs: a full disk, an I/O error or an interrupt while writing leaves the previous file
intact byte for byte and no temporary file behind (inpaintseg.io, used by every writer of the package)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from inpaintseg import io as atomic_io
from inpaintseg.data.image_io import read_image, write_png
from inpaintseg.engine.checkpoint import load_checkpoint, save_checkpoint
from inpaintseg.io import atomic_open, atomic_write_bytes, atomic_write_text

PREVIOUS = b"previous content \x00\x01\x02 that must survive" * 100


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class _DiskFillsUp:
    """Wraps the temporary file: the first write stores half of its bytes, then the disk is full."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def _full_disk_on_write(monkeypatch) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic_io.os, "fdopen", lambda *a, **k: _DiskFillsUp(real_fdopen(*a, **k)))


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


WRITERS = {
    "bytes": lambda path: atomic_write_bytes(path, b"new" * 5000),
    "text": lambda path: atomic_write_text(path, "new text\n" * 1000),
    "png": lambda path: write_png(path, np.full((64, 64, 3), 7, np.uint8)),
    "checkpoint": lambda path: save_checkpoint(path, {"format": "inpaintseg-model", "w": torch.ones(1000)}),
}
FAULTS = {
    "fsync ENOSPC": lambda mp: mp.setattr(atomic_io.os, "fsync", _no_space),
    "write ENOSPC after half the bytes": _full_disk_on_write,
    "rename EIO": lambda mp: mp.setattr(atomic_io.os, "replace", lambda *a: _raise(OSError(errno.EIO, "I/O error"))),
}


def _raise(error: BaseException):
    raise error


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch, writer: str, fault: str) -> None:
    path = tmp_path / "out" / "target.bin"
    path.parent.mkdir()
    path.write_bytes(PREVIOUS)
    FAULTS[fault](monkeypatch)
    with pytest.raises(OSError) as info:
        WRITERS[writer](path)
    assert info.value.errno in (errno.ENOSPC, errno.EIO)
    assert path.read_bytes() == PREVIOUS  # bytes lost: 0
    assert _leftovers(path.parent) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["target.bin"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failed_first_write_creates_nothing(tmp_path, monkeypatch, fault: str) -> None:
    FAULTS[fault](monkeypatch)
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "new.bin", b"data" * 100)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_survives_a_full_disk_and_still_loads(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"format": "inpaintseg-model", "step": 7, "model": {"w": torch.arange(4.0)}})
    before = path.read_bytes()
    _full_disk_on_write(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"format": "inpaintseg-model", "step": 8, "model": {"w": torch.zeros(4)}})
    monkeypatch.undo()
    assert path.read_bytes() == before
    payload = load_checkpoint(path, "model")
    assert payload["step"] == 7 and torch.equal(payload["model"]["w"], torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert _leftovers(tmp_path) == []


def test_interrupt_while_writing_keeps_the_previous_file(tmp_path) -> None:
    path = tmp_path / "pred.png"
    write_png(path, np.full((8, 8), 200, np.uint8))
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path, "wb") as f:
            f.write(b"\x89PNG half")
            raise KeyboardInterrupt
    assert path.read_bytes() == before and read_image(path)[0, 0, 0] == 200
    assert _leftovers(tmp_path) == []


def test_success_replaces_the_file_with_normal_permissions(tmp_path) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(PREVIOUS)
    atomic_write_text(path, '{"J": 0.5}\n')
    assert path.read_text() == '{"J": 0.5}\n'
    assert _leftovers(tmp_path) == []
    umask = os.umask(0o022)
    os.umask(umask)
    # The same permissions as a plain open(): readable by the group/others per the umask, not 0o600.
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_sigkill_while_writing_keeps_the_previous_file(tmp_path) -> None:
    """A process killed in the middle of a write (no Python cleanup at all): the previous file is intact; the
    hidden temporary file of the interrupted write stays behind (a kill cannot remove it)."""
    path = tmp_path / "model.pt"
    path.write_bytes(PREVIOUS)
    code = (
        "import sys, time\n"
        "from inpaintseg.io import atomic_open\n"
        "with atomic_open(sys.argv[1], 'wb') as f:\n"
        "    for _ in range(10_000):\n"
        "        f.write(b'x' * 4096); f.flush(); time.sleep(0.001)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(path)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the child has written something
            tmp = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            if tmp and tmp[0].stat().st_size > 8192:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the child never started writing")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == PREVIOUS
    assert len(_leftovers(tmp_path)) == 1 and _leftovers(tmp_path)[0].startswith(".model.pt.")
