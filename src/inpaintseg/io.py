"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader never sees a half-written file, and a kill or a full disk leaves the previous version intact.
Also the fingerprinted ``.npz`` caches of computed arrays (backgrounds, flows) built on them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np


def _create_temporary(path: Path) -> tuple[int, Path]:
    """Create ``.<name>.<random>.tmp`` next to ``path``, exclusively, with mode 0o666 minus the umask (the
    permissions a plain ``open(path, "w")`` gives; ``tempfile.mkstemp`` would give 0o600)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: could not create a temporary file next to it")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    The new file gets the permissions of a plain ``open`` (0o666 minus the umask), not those of ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_npz_cache(path: str | Path, fingerprint: str, **arrays: np.ndarray) -> None:
    """Write ``arrays`` and the ``fingerprint`` of their inputs to ``path`` (.npz, compressed, atomically)."""
    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, **arrays, fingerprint=np.array(fingerprint))


def load_npz_cache(
    path: str | Path, fingerprint: str, expected: dict[str, tuple[tuple[int, ...], np.dtype]]
) -> tuple[np.ndarray, ...] | None:
    """The arrays named in ``expected`` (name -> (shape, dtype)), in that order, from a file written by
    :func:`save_npz_cache` with the same ``fingerprint``; None when the file is missing, unreadable (corrupt
    or foreign), stale (another fingerprint) or its arrays have other shapes or dtypes: recompute then."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = tuple(data[name] for name in expected)
            stored = str(data["fingerprint"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    if stored != fingerprint:
        return None
    for array, (shape, dtype) in zip(arrays, expected.values(), strict=True):
        if array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
            return None
    return arrays
