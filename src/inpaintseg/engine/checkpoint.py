"""Checkpoints: plain dicts of state dicts, config and counters, loadable with ``weights_only=True``.

Written atomically (temporary file + fsync + rename): a kill mid-write leaves the previous checkpoint.
Loading never unpickles arbitrary objects: a file that needs more than tensors and plain containers is
refused with a clear error.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from inpaintseg.errors import InpaintsegError
from inpaintseg.io import atomic_write_bytes


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load with ``weights_only=True``; ``kind`` checks the ``format`` field (e.g. "model", "inpainter")."""
    path = Path(path)
    if not path.is_file():
        raise InpaintsegError(f"{path}: checkpoint does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise InpaintsegError(
            f"{path}: refused to load: the file is not a plain-tensor checkpoint and could run code "
            f"when unpickled ({str(e).splitlines()[0]})"
        ) from None
    except Exception as e:
        raise InpaintsegError(f"{path}: cannot read checkpoint ({e.__class__.__name__}: {e})") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise InpaintsegError(f"{path}: not an inpaintseg checkpoint")
    if kind is not None and payload["format"] != f"inpaintseg-{kind}":
        raise InpaintsegError(f"{path}: expected an inpaintseg {kind} checkpoint, found {payload['format']!r}")
    return payload
