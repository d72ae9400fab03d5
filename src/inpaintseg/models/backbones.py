"""torchvision ResNets with ``pretrained = imagenet | none | <path>`` and an offline fallback.

``imagenet`` uses torchvision's weight API (downloads once when online). When the download fails
(no network), the network keeps its random initialisation and ONE warning says so; training still works
(the paper notes training from scratch costs little accuracy, section 1). A path loads a torchvision
state dict with ``weights_only=True``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from inpaintseg.errors import InpaintsegError

_warned: set[str] = set()

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resnet(name: str, pretrained: str = "none") -> nn.Module:
    """Build ``resnet18`` or ``resnet50`` with weights per ``pretrained``."""
    builders = {"resnet18": torchvision.models.resnet18, "resnet50": torchvision.models.resnet50}
    if name not in builders:
        raise InpaintsegError(f"unknown backbone {name!r}; choose one of {', '.join(builders)}")
    model = builders[name](weights=None)
    if pretrained == "none":
        return model
    if pretrained == "imagenet":
        weights = {"resnet18": torchvision.models.ResNet18_Weights, "resnet50": torchvision.models.ResNet50_Weights}
        try:
            state = weights[name].IMAGENET1K_V1.get_state_dict(progress=False)
            model.load_state_dict(state)
        except Exception as e:  # no network, blocked hub, corrupt download: fall back, warn once
            if name not in _warned:
                _warned.add(name)
                warnings.warn(
                    f"could not load ImageNet weights for {name} ({e.__class__.__name__}); training from "
                    "random initialisation. Pass pretrained=<path to a torchvision state dict> to use local weights.",
                    stacklevel=2,
                )
        return model
    path = Path(pretrained)
    if not path.is_file():
        raise InpaintsegError(f"{path}: pretrained weights file does not exist (use imagenet, none or a path)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InpaintsegError(f"{path}: cannot load weights ({e.__class__.__name__}: {e})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if len(missing) > 10:
        raise InpaintsegError(f"{path}: not a {name} state dict ({len(missing)} missing keys)")
    return model


class Normalize(nn.Module):
    """Maps images in [0, 1] to ImageNet-normalised inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
