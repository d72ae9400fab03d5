"""Configuration: nested dataclasses are the schema; presets, YAML load/save and ``key=value`` overrides.

Two presets:

- ``paper``: every hyper-parameter of the paper (section 3.6, Table 4): 640x360 images, detector input
  128x128 on a ResNet-18 (8x8 grid), S with a ResNet-50 encoder, 128x128 crops, 856-d bottleneck, inpainter
  U-Net 8..256 channels, Adam 1e-3 (decoder 1e-4), batch 16, 200k + 100k iterations, loss weights
  0.1/1/2/0.25/0.1, eps 0.001, tau 0.005, boxes 0.2..0.8 of the image side, hole = box enlarged by 15%.
- ``cpu``: the paper's configuration with two sets of differences: ``CPU_SIZES`` (smaller images, crops and
  encoders, time budgets: trains in minutes on 2 CPU cores) and ``CPU_DEVIATIONS`` (changes to the method that
  made it learn within such a budget).

``PREDICT`` holds the prediction defaults (``PredictOptions``), used by the CLI, ``Predictor`` and benchmarks.

Overrides use dotted keys: ``train.minutes=40``, ``loss.w_bg=1``, ``detector.scale_range=[0.1,0.6]``.
An unknown key is an error that suggests the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from inpaintseg.errors import ConfigError
from inpaintseg.io import atomic_write_text


@dataclass
class DataConfig:
    size: list[int] = field(default_factory=lambda: [640, 360])
    """Working resolution (W, H) for training: frames are resized to it."""
    val_fraction: float = 0.0
    """Fraction of sequences held out from training (split by sequence)."""
    background: str = "inpainter"
    """Background estimate used inside the hole at training time: ``inpainter`` (the paper's U-Net),
    ``temporal`` (median of homography-aligned neighbouring frames; video data only), ``known``
    (static camera: per-sequence temporal median, no alignment), ``inpainted`` (beyond the paper: the inpainter's
    fills of holes tiling each frame, blended into one background per frame after stage 1; data/inpainted.py),
    ``both`` (beyond the paper; video: per pixel, whichever of the temporal and the inpainted background explains
    the frame better, so parallax and dynamic texture, which an inpainter re-synthesises, do not stand out),
    ``collection`` (beyond the paper; an unordered collection of photos of the same scenes: ``temporal`` with each
    frame's most similar other frames of its folder as the neighbours; no optical flow) or ``auto`` (temporal
    when at least half of the frames' neighbours align, else collection when half of their most similar frames
    do, else the inpainter; engine/pipeline.py:resolve_settings)."""
    temporal_offsets: list[int] = field(default_factory=lambda: [-12, -8, -4, 4, 8, 12])
    flow: bool = False
    """Optical-flow branch (section 3.5; video data): L_bg also on the camera-stabilised optical flow of each
    frame (data/flow.py), with the same weight as on RGB (``loss.w_bg_flow``). The flow's background is zero flow when
    ``background`` is temporal/known (the stabilised flow of a static background), the flow inpainter I_f
    (stage 1 on flow images, RUN/flow_inpainter.pt) with the inpainter. Beyond the paper, the flow also joins
    the seeds of the GrabCut mask target (``loss.mask_target=grabcut``; data/mask_target.py) in frames where it
    singles out the background error's core. Inference stays single-image RGB. Off in the ``paper`` preset; on in
    the ``cpu`` preset (its measured effect: docs/method.md), where ``background=auto``
    turns it off again when the frames are not video-like."""
    max_frames: int = 0
    """Use at most this many frames per sequence for training (evenly spaced); 0 = all."""
    on_error: str = "raise"
    """``raise`` stops at the first unreadable frame; ``skip`` skips and counts it."""


@dataclass
class InpainterConfig:
    channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128, 256])
    lr: float = 1e-3
    batch: int = 16
    steps: int = 200_000
    minutes: float = 0.0
    """Time budget for stage 1 in minutes (0 = no time limit; training stops at whichever comes first)."""
    hole_min: float = 0.1
    hole_max: float = 0.6
    """Random rectangular holes have sides uniform in [hole_min, hole_max] of the image side."""
    w_perceptual: float = 1.0
    """Weight of the perceptual term of the inpainter loss (L2 + w * perceptual)."""


@dataclass
class DetectorConfig:
    input_size: list[int] = field(default_factory=lambda: [128, 128])
    """(W, H) of the detector's input; the grid is input/16 (8x8 = 64 cells for 128x128)."""
    backbone: str = "resnet18"
    """``resnet18`` (the paper: ResNet-18 up to layer3) or ``small`` (the same blocks at half the channels; a
    quarter of the multiply-adds, for CPUs without native bf16)."""
    scale_range: list[float] = field(default_factory=lambda: [0.2, 0.8])
    """Box width and height as a fraction of the image side: s_min + (s_max - s_min) * sigmoid(.)."""
    offset_range: float = 1.5
    """Maximum centre offset from the cell centre, in cell sizes (paper: 1.5)."""
    border: int = 1
    """Rings of border cells whose probability is forced to 0 (paper: 1)."""


@dataclass
class SegmenterConfig:
    encoder: str = "resnet50"
    """``resnet50`` (paper), ``resnet18`` or ``small`` (a 4-stage conv net, fast on CPU)."""
    width: int = 64
    """Channels of the encoder's first stage."""
    crop_size: int = 128
    """Side (pixels) of the square crop of each box that S encodes and decodes; a multiple of 16."""
    latent: int = 600
    """Spatial part of the bottleneck (reshaped to a feature map by a linear layer)."""
    global_latent: int = 256
    """Spatially invariant part of the bottleneck, replicated over the decoder's first map."""
    decoder_channels: list[int] = field(default_factory=lambda: [512, 256, 128, 64])
    dropout: float = 0.3
    mask_skips: bool = False
    """Beyond the paper: the mask (not the foreground image) also sees the encoder's stride-2/4 features and
    the crop, so it can follow image edges (models/autoencoder.py). False = the paper's pure bottleneck."""


@dataclass
class LossConfig:
    w_bg: float = 0.1
    w_bg_flow: float = 1.0
    """Weight of L_bg on the stabilised flow (``data.flow``) relative to L_bg on RGB: 1 = the paper (section
    3.5); 0 = no flow loss, the flow then only joins the seeds of the GrabCut mask target."""
    w_fg: float = 1.0
    w_perceptual: float = 2.0
    w_v: float = 0.25
    w_p: float = 0.1
    perceptual_region: str = "frame"
    """Where L_f compares F(I) with I: ``frame`` = the whole image (the paper); ``hole`` = the crop of the hole
    (the box enlarged by ``hole_expand``, where F(I) differs from I) at S's crop size, scaled by the hole's
    share of the frame (beyond the paper): about the same loss at a quarter of phi's cost at 160x96, and a
    cost independent of the image size."""
    tau: float = 0.005
    """Target of the v-shaped mask prior L_v."""
    mask_prior: str = "v"
    """Mask prior weighted by ``w_v``: ``v`` = L_v (eq. 6); ``l1`` / ``l2`` = the mean of the mask / of its
    square (table 3's alternatives)."""
    prob_prior: str = "l2"
    """``l2`` = mean(p^2) (the authors' code); ``l1`` = sum |p| as written in eq. 5 (a constant 1)."""
    hole_expand: float = 0.15
    """The hole given to the inpainter is the box enlarged by this fraction in each dimension."""
    reward: str = "density"
    """Per-box background reward: ``density`` (eq. 3: inpainting error / box area) or ``excess``
    (sum over the hole of error minus the frame's mean error, normalised by the image area)."""
    baseline: bool = False
    """Subtract a moving average of the reward (variance reduction for the sampled L_bg; unbiased)."""
    cell_baseline: bool = False
    """Subtract each grid cell's own running mean reward instead (beyond the paper; replaces ``baseline``): what
    is hard to inpaint at that place in every image (frame borders, textured regions) stops drawing the detector,
    and what is hard to inpaint in this image (the moving subject) remains. Unlike the scalar baseline it changes
    the objective: a cell is rewarded for beating its usual error."""
    normalize_reward: bool = False
    """Divide rewards by a running average of their spread across boxes and images (beyond the paper): makes
    L_bg's gradient independent of the images' error scale."""
    w_box_fit: float = 0.0
    """Weight of the soft-box fit term (beyond the paper): box edges move towards the boundary of the
    region whose background error exceeds the frame's mean. 0 = the paper (box trained by L_fg only)."""
    w_mask_bg: float = 0.0
    """Weight of a mask term from the background difference (beyond the paper): binary cross-entropy between
    S's mask and a soft target that is 0 where the background error is at the frame's mean and 1 at five
    times the mean, in the crop. 0 = the paper (S trained by L_fg, L_f, L_v only)."""
    mask_target: str = "ramp"
    """Target of the ``w_mask_bg`` term: ``ramp`` = the soft ramp of the background error above; ``grabcut`` =
    OpenCV's GrabCut seeded by the background error, computed once per frame (data/mask_target.py; beyond the
    paper): fills the holes that slow objects' ghosts and background-coloured parts leave in the error. Needs a
    per-frame background (``data.background`` temporal/known); with the inpainter the ramp is used."""
    w_scale_reg: float = 0.0
    """Penalty on scale pre-activations beyond +-2 (keeps boxes off the bounds; beyond the paper)."""


@dataclass
class SamplingConfig:
    method: str = "importance"
    """``importance`` (q = p(1 - C eps) + eps), ``uniform``, ``gumbel``, ``exhaustive`` or ``regression``."""
    eps: float = 0.001
    """Floor of the importance proposal: every inner cell is drawn with probability at least eps (eq. 10)."""
    samples: int = 1
    """Samples per image (importance / uniform / gumbel)."""
    gumbel_temperature: float = 0.1
    """Temperature of the Gumbel-softmax relaxation (``gumbel`` only)."""
    disentangled: bool = True
    """Section 3.3.2: p trained only by L_bg and L_p; the box and S only by L_fg, L_f (and L_v)."""


@dataclass
class TrainConfig:
    lr: float = 1e-3
    decoder_lr: float = 1e-4
    batch: int = 16
    steps: int = 100_000
    minutes: float = 0.0
    """Time budget for stage 2 in minutes (0 = no time limit)."""
    seed: int = 0
    pretrained: str = "imagenet"
    """``imagenet``, ``none`` or a path to a torchvision ResNet state dict, for the detector's backbone, S's
    encoder (ResNet encoders) and the perceptual features. Offline, imagenet falls back to random weights
    with one warning."""
    init: str = "none"
    """Starting weights of every network: ``none`` (random, or ``pretrained`` for the ResNet parts), ``default``
    (the self-supervised weights shipped with the package, weights.py; the cpu preset's) or the path of a
    ``model.pt``. D and S start from them; stage 1 starts the inpainter I (and I_f) from them. The detector and
    segmenter settings must be the ones the weights were trained with (the ``cpu`` preset's for ``default``)."""
    inpainter_lr_scale: float = 1.0
    """Beyond the paper: when stage 2 uses the U-Net inpainter as the background (``data.background=inpainter``,
    also as ``auto``'s choice) and starts from trained weights (``train.init`` not ``none``), ``train.lr`` and
    ``train.decoder_lr`` are multiplied by this (``engine/pipeline.py:resolve_settings``). The inpainter's
    rewards pick the object less often than the trained D already does, so D drifts away from it while it
    follows them; fine-tuning slowly keeps more of what it knows. 1 = off (the paper)."""
    ema: float = 0.0
    """Beyond the paper: ``model.pt`` holds an exponential moving average of D's and S's weights (and buffers)
    with this decay; the first ``1 / (1 - ema)`` steps are a plain running mean. 0 = the last weights (paper)."""
    zoom: float = 1.0
    """Beyond the paper: each stage-2 training image, with its background, flow and mask target, is a random
    window of 1/z of the frame's side resized to the frame, z uniform in [1, zoom]: more object sizes and places
    than the footage shows. 1 = off (the paper)."""
    jitter: float = 0.0
    """Beyond the paper: brightness, contrast and saturation of each stage-2 training image and of its background
    scaled by the same random factors, uniform in [1 - jitter, 1 + jitter]: more appearances than the footage
    shows. 0 = off (the paper)."""
    log_every: int = 25
    image_every: int = 250
    checkpoint_every: int = 500
    device: str = "auto"
    threads: int = 0
    """Torch intra-op threads (0 = torch's default)."""
    precision: str = "auto"
    """Precision of the networks' forward passes in stage 2: ``bf16`` (autocast; losses stay float32),
    ``fp32``, or ``auto`` = bf16 where the device computes it natively (CUDA with bf16, CPUs with AVX-512 BF16
    or AMX), else fp32 (bf16 emulated on a CPU without those instructions is slower than fp32)."""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    inpainter: InpainterConfig = field(default_factory=InpainterConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_yaml())


REFINE_CHOICES = ("grabcut", "crf", "none")


@dataclass(frozen=True)
class PredictOptions:
    """How ``inpaintseg predict``, ``Predictor`` and the benchmarks predict: the one home of the defaults."""

    max_objects: int = 1
    """Objects per image: the most probable cells after non-maximum suppression (1 = the paper's argmax)."""
    nms_iou: float = 0.3
    """A cell is dropped when its box overlaps a kept box with IoU above this."""
    min_prob: float = 0.05
    """Cells below this probability are never extra objects (the most probable cell always is one)."""
    refine: str = "grabcut"
    """How each mask is refined on the image's colours: ``grabcut``, ``crf`` or ``none`` (see ``Predictor``)."""
    flip_tta: bool = False
    """Average each mask with the mirrored image's (S runs twice)."""
    threshold: float = 0.5
    """Binarises soft masks for COCO RLEs and overlay outlines."""
    batch: int = 8
    """Frames per forward pass."""


PREDICT = PredictOptions()
"""The prediction defaults."""


@dataclass(frozen=True)
class TemporalOptions:
    """How video mode (``predict --temporal``, :mod:`inpaintseg.temporal`) uses the neighbouring frames; 0 turns a
    part off."""

    cell_weight: float = 0.8
    """Weight a in [0, 1] of the background reward against D's probability in each cell's score."""
    mask_weight: float = 0.5
    """Share of the motion cue (background subtraction and the stabilised flow) in each object's soft mask."""


PRESETS = ("paper", "cpu")


CPU_SIZES: dict[str, Any] = {
    # the paper's networks and data made smaller, and budgets in minutes: trains on 2 CPU cores
    "data.size": [160, 96],
    "detector.backbone": "small",
    "segmenter.encoder": "small",
    "segmenter.width": 32,
    "segmenter.crop_size": 64,
    "segmenter.latent": 128,
    "segmenter.global_latent": 64,
    "segmenter.decoder_channels": [128, 64, 32, 16],
    "inpainter.steps": 100_000,
    "inpainter.minutes": 5.0,
    "train.minutes": 18.0,
    "train.pretrained": "none",  # ImageNet weights cannot be assumed offline
    "train.init": "default",  # the shipped self-supervised weights instead (docs/model_card.md)
}
"""The ``cpu`` preset's sizes and budgets: where it differs from the paper's because of the hardware."""

CPU_DEVIATIONS: dict[str, Any] = {
    # changes to the method that made it learn within such a budget (docs/method.md: each one's measured effect)
    "data.background": "auto",
    "data.flow": True,
    "sampling.method": "exhaustive",
    "loss.reward": "excess",
    "loss.normalize_reward": True,
    "loss.baseline": True,
    "loss.w_box_fit": 100.0,
    "loss.w_scale_reg": 1.0,
    "loss.w_mask_bg": 1.0,
    "loss.mask_target": "grabcut",
    "loss.perceptual_region": "hole",
    "detector.scale_range": [0.1, 0.9],
    "train.decoder_lr": 1e-3,
    "segmenter.mask_skips": True,
    "train.ema": 0.998,
    "train.inpainter_lr_scale": 0.1,
}
"""The ``cpu`` preset's deviations from the paper's method."""


def _cpu_preset() -> Config:
    """The paper's configuration with :data:`CPU_SIZES` and :data:`CPU_DEVIATIONS` applied."""
    cfg = Config()
    for key, value in {**CPU_SIZES, **CPU_DEVIATIONS}.items():
        set_key(cfg, key, value)
    return cfg


def preset(name: str) -> Config:
    """Return a fresh config for a preset name (``paper`` or ``cpu``)."""
    if name == "paper":
        return Config()
    if name == "cpu":
        return _cpu_preset()
    raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def _valid_keys(cls: type = Config, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            keys += _valid_keys(t, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _unknown_key(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, _valid_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}")


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list like [1, 2], got {value!r}")
        return [_coerce(key, v, item_type) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {annotation!r}")


def set_key(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key (``section.name``) with type checking."""
    parts = key.split(".")
    if len(parts) != 2:
        raise _unknown_key(key)
    section_name, name = parts
    section = getattr(cfg, section_name, None)
    if section is None or not dataclasses.is_dataclass(section):
        raise _unknown_key(key)
    hints = typing.get_type_hints(type(section))
    if name not in hints:
        raise _unknown_key(key)
    setattr(section, name, _coerce(key, value, hints[name]))
    _validate(cfg)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``key=value`` strings (values parsed as YAML scalars/lists, safely)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"{key}: cannot parse value {raw!r}: {e}") from None
        set_key(cfg, key.strip(), value)
    return cfg


def from_dict(data: dict[str, Any], base: Config | None = None) -> Config:
    """Build a config from a nested dict (e.g. parsed YAML); unknown keys are errors."""
    cfg = base if base is not None else Config()
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping of sections")
    for section_name, section in data.items():
        if not isinstance(section, dict):
            raise _unknown_key(str(section_name))
        for name, value in section.items():
            set_key(cfg, f"{section_name}.{name}", value)
    return cfg


def _read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML config file with ``yaml.safe_load`` (no object construction); errors name the file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({e})") from None


def load(path: str | Path) -> Config:
    """Load a YAML config file (parsed with ``yaml.safe_load``: no object construction)."""
    return from_dict(_read_yaml(path))


def resolve(preset_name: str = "cpu", config_file: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Preset, then config file, then ``key=value`` overrides, in that order."""
    cfg = preset(preset_name)
    if config_file is not None:
        cfg = from_dict(_read_yaml(config_file), base=cfg)
    return apply_overrides(cfg, list(overrides))


_CHOICES = {
    "data.background": ("inpainter", "temporal", "known", "inpainted", "both", "collection", "auto"),
    "data.on_error": ("raise", "skip"),
    "train.precision": ("auto", "bf16", "fp32"),
    "loss.prob_prior": ("l1", "l2"),
    "loss.mask_prior": ("v", "l1", "l2"),
    "loss.reward": ("density", "excess"),
    "loss.mask_target": ("ramp", "grabcut"),
    "loss.perceptual_region": ("frame", "hole"),
    "sampling.method": ("importance", "uniform", "gumbel", "exhaustive", "regression"),
    "segmenter.encoder": ("resnet50", "resnet18", "small"),
    "detector.backbone": ("resnet18", "small"),
}


def get_key(cfg: Config, key: str) -> Any:
    """The value of a dotted key (``section.name``)."""
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _validate(cfg: Config) -> None:
    for key, choices in _CHOICES.items():
        value = get_key(cfg, key)
        if value not in choices:
            raise ConfigError(f"{key}={value!r}: choose one of {', '.join(choices)}")
    for key in ("data.size", "detector.input_size"):
        value = get_key(cfg, key)
        if len(value) != 2 or min(value) <= 0:
            raise ConfigError(f"{key}={value!r}: expected [W, H] with positive values")
    if any(v % 16 for v in cfg.detector.input_size):
        raise ConfigError(f"detector.input_size={cfg.detector.input_size}: must be multiples of 16")
    lo, hi = cfg.detector.scale_range
    if not 0 < lo < hi <= 1.5:
        raise ConfigError(f"detector.scale_range={cfg.detector.scale_range}: need 0 < s_min < s_max <= 1.5")
    for key in ("train.steps", "inpainter.steps", "train.batch", "inpainter.batch"):
        if get_key(cfg, key) < 1:
            raise ConfigError(f"{key}={get_key(cfg, key)}: must be at least 1")
    for key in ("train.minutes", "inpainter.minutes"):
        if get_key(cfg, key) < 0:
            raise ConfigError(f"{key}={get_key(cfg, key)}: must be 0 (no time limit) or more")
    if cfg.segmenter.crop_size % 16:
        raise ConfigError(f"segmenter.crop_size={cfg.segmenter.crop_size}: must be a multiple of 16")
