"""Stage 1: train the inpainting U-Net I on unlabeled frames with random rectangular holes (section 3.3)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm import tqdm

from inpaintseg.config import Config
from inpaintseg.engine import distributed
from inpaintseg.engine.checkpoint import load_checkpoint, save_checkpoint
from inpaintseg.engine.common import (
    Budget,
    NonFiniteGuard,
    load_optimizer_state,
    pick_device,
    run_steps,
    step_generator,
)
from inpaintseg.engine.data import FrameBank, mirror_rows
from inpaintseg.engine.logger import MetricsLogger
from inpaintseg.losses import inpainter_loss
from inpaintseg.models.perceptual import PerceptualFeatures, perceptual_distance
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.weights import init_inpainter


def random_holes(
    batch: int, height: int, width: int, lo: float, hi: float, generator: torch.Generator
) -> torch.Tensor:
    """(B,1,H,W) masks with one rectangle each, sides uniform in [lo, hi] of the image side."""
    u = torch.rand(batch, 4, generator=generator)
    hw = lo + (hi - lo) * u[:, :2]
    bh = (hw[:, 0] * height).round().clamp(1, height)
    bw = (hw[:, 1] * width).round().clamp(1, width)
    y0 = (u[:, 2] * (height - bh + 1)).floor()
    x0 = (u[:, 3] * (width - bw + 1)).floor()
    ys = torch.arange(height)[None, :]
    xs = torch.arange(width)[None, :]
    in_y = (ys >= y0[:, None]) & (ys < (y0 + bh)[:, None])
    in_x = (xs >= x0[:, None]) & (xs < (x0 + bw)[:, None])
    return (in_y[:, :, None] & in_x[:, None, :]).float()[:, None]


def sample_batch(bank: FrameBank, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Random frames (with replacement) and random horizontal flips -> (B,3,H,W) float in [0,1]."""
    idx = torch.randint(len(bank), (batch,), generator=generator)
    images, _ = bank.batch(idx)
    flip = torch.rand(batch, generator=generator) < 0.5
    return mirror_rows(images, flip, flow=bank.is_flow)


def build_inpainter(cfg: Config) -> InpaintingUNet:
    return InpaintingUNet(cfg.inpainter.channels)


def load_inpainter(path: str | Path, device: torch.device | str = "cpu") -> InpaintingUNet:
    payload = load_checkpoint(path, "inpainter")
    net = InpaintingUNet(payload["channels"])
    net.load_state_dict(payload["inpainter"])
    return net.to(device).eval()


def _start(cfg: Config, last: Path | None, name: str, device: torch.device
           ) -> tuple[InpaintingUNet, torch.optim.Optimizer, int, float]:
    """The network and optimiser of a stage-1 run, the step it starts at and the seconds already spent: from
    ``last`` (a ``<name>_last.pt`` to resume) when it exists, else from ``train.init`` or random weights."""
    net = build_inpainter(cfg)
    resuming = last is not None and last.exists()
    if cfg.train.init != "none" and not resuming and not init_inpainter(net, cfg, name):
        print(f"train.init={cfg.train.init} holds no {name}: it starts from random weights")
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.inpainter.lr)
    if not resuming:
        return net, opt, 0, 0.0
    payload = load_checkpoint(last, "inpainter")
    net.load_state_dict(payload["inpainter"])
    load_optimizer_state(opt, payload["optimizer"])
    torch.set_rng_state(payload["rng"])
    return net, opt, int(payload["step"]), float(payload.get("elapsed_s", 0.0))


def train_inpainter(
    cfg: Config, bank: FrameBank, run_dir: str | Path, resume: bool = False, progress: bool = True,
    name: str = "inpainter",
) -> Path:
    """Train I and write ``run_dir/<name>.pt``. With ``resume``, continue from ``<name>_last.pt``.
    The flow inpainter I_f (section 3.5) is the same network trained on a bank of flow images
    (``FrameBank.flow_bank()``), with ``name="flow_inpainter"``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    c = cfg.inpainter
    device = pick_device(cfg.train.device)
    net, opt, step, spent = _start(cfg, run_dir / f"{name}_last.pt" if resume else None, name, device)
    last = run_dir / f"{name}_last.pt"
    phi = PerceptualFeatures(cfg.train.pretrained).to(device) if c.w_perceptual > 0 else None

    def save(path: Path, step: int) -> None:
        if not distributed.is_main():
            return
        save_checkpoint(path, {
            "format": "inpaintseg-inpainter", "channels": list(c.channels), "inpainter": net.state_dict(),
            "optimizer": opt.state_dict(), "step": step, "rng": torch.get_rng_state(), "config": cfg.to_dict(),
            "elapsed_s": budget.elapsed(),
        })

    logger = MetricsLogger(run_dir, name, enabled=distributed.is_main())
    budget = Budget(c.steps, c.minutes, spent)
    h, w = bank.frames.shape[-2:]
    net.train()
    running = None
    guard = NonFiniteGuard(last)

    def train_step(step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        g = step_generator(cfg.train.seed, step, salt=1)  # the global batch, identical on every rank
        images = distributed.shard(sample_batch(bank, c.batch, g)).to(device)
        holes = distributed.shard(random_holes(c.batch, h, w, c.hole_min, c.hole_max, g)).to(device)
        pred = net.inpaint(images, holes)
        perc = perceptual_distance(phi, pred, images) if phi is not None else None
        terms = inpainter_loss(pred, images, holes, perc, c.w_perceptual)
        guard.update(terms["total"], net.parameters(), opt, logger, step)
        return terms, images, holes, pred

    def after_step(done: int, result: tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]
                   ) -> dict[str, str]:
        nonlocal running
        terms, images, holes, pred = result
        l2 = terms["l2"].item()
        if math.isfinite(l2):
            running = l2 if running is None else 0.98 * running + 0.02 * l2
        if done % cfg.train.log_every == 0:
            values = {f"{name}/{k}": v.item() for k, v in terms.items()}
            logger.log(done, {**values, "time/elapsed_s": budget.elapsed()})
        if done % cfg.train.image_every == 0:
            logger.images(done, f"{name}/input_hole_output",
                          torch.cat([images[0] * (1 - holes[0]), pred[0].detach(), images[0]], dim=-1))
        return {"l2": f"{running or float('nan'):.4f}"}

    bar = tqdm(desc=f"stage 1: {name.replace('_', ' ')}", total=c.steps if c.minutes <= 0 else None, initial=step,
               disable=not (progress and distributed.is_main()), unit="step")
    step = run_steps(step, budget, bar, logger, cfg.train.checkpoint_every, train_step, after_step,
                     lambda k: save(last, k))
    save(run_dir / f"{name}.pt", step)
    return run_dir / f"{name}.pt"
