"""Weights shipped with the package, and starting a run from saved weights (``train.init``).

A *bundle* is an inference checkpoint (``format: inpaintseg-model``: config, D and S weights, step) that also
carries the two inpainters, each as ``{"channels": [...], "state": state_dict}`` under ``inpainter`` and
``flow_inpainter``. ``Predictor.load`` reads a bundle like any ``model.pt``; ``train.init`` starts D and S from
its weights and stage 1 starts I (and I_f) from its inpainters. Shipped bundles live in ``inpaintseg/weights/``
and are named by their file stem (``default``); how they are trained is in docs/pretraining.md.

``train.init`` also takes the path of any ``model.pt`` written by training: D and S start from it, and I / I_f
from the ``inpainter.pt`` / ``flow_inpainter.pt`` beside it when they exist (else from random weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from inpaintseg.config import Config, from_dict
from inpaintseg.engine.checkpoint import load_checkpoint, save_checkpoint
from inpaintseg.errors import ConfigError, InpaintsegError
from inpaintseg.models.model import InpaintSegModel, build_model

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED = ("default",)
"""Names of the bundles this package ships (``inpaintseg/weights/<name>.pt``)."""
INPAINTERS = ("inpainter", "flow_inpainter")
ARCHITECTURE = ("detector", "segmenter")
"""Config sections that fix the shapes of D's and S's weights: they must match for ``train.init``."""


def model_path(name: str | Path) -> Path:
    """A shipped bundle's file for its name (``default``), or ``name`` itself as a path."""
    if str(name) in SHIPPED:
        path = WEIGHTS_DIR / f"{name}.pt"
        if not path.is_file():
            raise InpaintsegError(f"the shipped weights {name!r} are not in this installation ({path} is missing)")
        return path
    return Path(name)


def load_model(path: str | Path) -> tuple[InpaintSegModel, Config]:
    """Load a ``model.pt`` written by training, or shipped weights by name, with ``weights_only=True``
    -> (D + S in eval mode, the config it was trained with)."""
    payload = load_checkpoint(model_path(path), "model")
    cfg = from_dict(payload["config"])
    cfg.train.pretrained = "none"  # weights come from the checkpoint
    model = build_model(cfg)
    model.load_state_dict(payload["model"])
    return model.eval(), cfg


def _inpainter_entry(path: Path) -> dict[str, Any]:
    payload = load_checkpoint(path, "inpainter")
    return {"channels": list(payload["channels"]), "state": payload["inpainter"]}


def write_bundle(model_pt: str | Path, inpainter_pt: str | Path | None, flow_inpainter_pt: str | Path | None,
                 out: str | Path = WEIGHTS_DIR / "default.pt", info: dict | None = None) -> Path:
    """Join a ``model.pt`` and inpainter checkpoints (``inpainter.pt`` or a resumable ``*_last.pt``) into one
    bundle at ``out`` (written atomically; optimiser states are left out). ``info`` is stored as it is
    (provenance: data, steps, machine)."""
    payload = load_checkpoint(model_pt, "model")
    bundle = {k: payload[k] for k in ("format", "config", "model", "step")}
    for key, path in zip(INPAINTERS, (inpainter_pt, flow_inpainter_pt), strict=True):
        if path is not None and Path(path).is_file():
            bundle[key] = _inpainter_entry(Path(path))
    if info:
        bundle["info"] = info
    save_checkpoint(out, bundle)
    return Path(out)


def _architecture_differences(saved: dict[str, Any], cfg: Config) -> list[str]:
    current = cfg.to_dict()
    return [f"{section}.{key}: {saved.get(section, {}).get(key)!r} in the weights, {value!r} here"
            for section in ARCHITECTURE for key, value in current[section].items()
            if saved.get(section, {}).get(key) != value]


def _init_payload(cfg: Config) -> tuple[Path, dict[str, Any]]:
    """The checkpoint named by ``cfg.train.init``; :class:`ConfigError` naming the keys when the detector/segmenter
    settings differ from the weights'."""
    path = model_path(cfg.train.init)
    payload = load_checkpoint(path, "model")
    diff = _architecture_differences(payload["config"], cfg)
    if diff:
        raise ConfigError(f"train.init={cfg.train.init}: {path} was trained with other network settings ("
                          + "; ".join(diff) + "); use the same preset and sizes, or train.init=none")
    return path, payload


def check_init(cfg: Config) -> str | None:
    """Before any data is read: fail as :func:`init_model` would, and return a line saying where the run's weights
    start from, with their licence when they record one (None for ``train.init=none``)."""
    if cfg.train.init == "none":
        return None
    path, payload = _init_payload(cfg)
    licence = payload.get("info", {}).get("licence")
    note = f" (licence: {licence}; train.init=none starts from random weights)" if licence else ""
    return f"train.init={cfg.train.init}: D, S and the inpainters start from {path}{note}"


def init_model(model: nn.Module, cfg: Config) -> None:
    """Load D's and S's weights named by ``cfg.train.init`` into ``model``.
    Raises :class:`ConfigError` naming the keys when the detector/segmenter settings differ from the weights'."""
    model.load_state_dict(_init_payload(cfg)[1]["model"])


def init_inpainter(net: nn.Module, cfg: Config, name: str = "inpainter") -> bool:
    """Load the inpainter ``name`` (``inpainter`` or ``flow_inpainter``) named by ``cfg.train.init`` into
    ``net``: from a bundle's entry, or from ``<name>.pt`` beside a ``model.pt``. Returns False (``net``
    unchanged) when the weights have none."""
    path = model_path(cfg.train.init)
    payload = load_checkpoint(path, "model")
    entry = payload.get(name)
    if entry is None and (path.parent / f"{name}.pt").is_file():
        entry = _inpainter_entry(path.parent / f"{name}.pt")
    if entry is None:
        return False
    if list(entry["channels"]) != list(cfg.inpainter.channels):
        raise ConfigError(f"train.init={cfg.train.init}: its {name} has channels {entry['channels']}, "
                          f"inpainter.channels is {cfg.inpainter.channels} here")
    net.load_state_dict(entry["state"])
    return True

