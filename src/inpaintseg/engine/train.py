"""Stage 2: train the detector D and the segmentation network S with I frozen (sections 3.3-3.4).

The loop: batches of frames (and their backgrounds, flows and mask targets), the criterion of
``objective.py`` (``stage2_losses``), Adam, the weight average (``train.ema``), logging and checkpoints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel
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
    use_bf16,
)
from inpaintseg.engine.data import FrameBank, jitter_colours, mirror_rows, zoom_grids, zoom_rows
from inpaintseg.engine.logger import MetricsLogger
from inpaintseg.engine.train_inpainter import load_inpainter
from inpaintseg.models.model import InpaintSegModel, build_model
from inpaintseg.models.perceptual import PerceptualFeatures
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.objective import FlowInputs, RunningStats, stage2_losses
from inpaintseg.weights import init_model


def uses_flow_inpainter(cfg: Config) -> bool:
    """Whether stage 2 fills the flow's holes with the flow inpainter I_f (and stage 1 trains it): the inpainter
    background with the flow branch on; with any other background the flow's background is zero flow."""
    return cfg.data.background == "inpainter" and cfg.data.flow and cfg.loss.w_bg_flow > 0


def picture_grid(pictures: dict[str, torch.Tensor], grid: tuple[int, int], n: int = 4) -> torch.Tensor:
    """Rows of: input with the chosen box, background, resynthesis, mask, probability map. (3,H',W')."""
    rows = []
    for i in range(min(n, pictures["image"].shape[0])):
        img = pictures["image"][i].detach().clone()
        h, w = img.shape[-2:]
        cx, cy, bw, bh = pictures["boxes"][i].detach().tolist()
        x0, x1 = int(max(0, (cx - bw / 2) * w)), int(min(w - 1, (cx + bw / 2) * w))
        y0, y1 = int(max(0, (cy - bh / 2) * h)), int(min(h - 1, (cy + bh / 2) * h))
        red = torch.tensor([1.0, 0.0, 0.0])[:, None]
        img[:, y0, x0 : x1 + 1] = red
        img[:, y1, x0 : x1 + 1] = red
        img[:, y0 : y1 + 1, x0] = red
        img[:, y0 : y1 + 1, x1] = red
        p = pictures["probs"][i % pictures["probs"].shape[0]].detach().view(1, 1, *grid)
        p = torch.nn.functional.interpolate(p / p.max().clamp_min(1e-8), size=(h, w), mode="nearest")[0]
        rows.append(torch.cat([img, pictures["background"][i].detach(), pictures["resynthesis"][i].detach(),
                               pictures["mask"][i].detach().expand(3, -1, -1), p.expand(3, -1, -1)], dim=-1))
    return torch.cat(rows, dim=-2)


def make_optimizer(model: InpaintSegModel, cfg: Config) -> torch.optim.Adam:
    """Adam; S's decoder at ``train.decoder_lr`` (paper: 1e-4), everything else at ``train.lr`` (1e-3)."""
    decoder = {id(p) for p in model.segmenter.decoder_parameters()}
    rest = [p for p in model.parameters() if id(p) not in decoder]
    return torch.optim.Adam([
        {"params": rest, "lr": cfg.train.lr},
        {"params": model.segmenter.decoder_parameters(), "lr": cfg.train.decoder_lr},
    ])


def weight_average(model: InpaintSegModel, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s parameters and buffers (``train.ema``). Update ``n`` moves
    the average a fraction ``max(1 - decay, 1 / (n + 1))`` towards the current weights: a plain mean over the
    first ``1 / (1 - decay)`` updates, so the random initial weights do not linger in it."""

    def towards(average: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if not average.is_floating_point():  # counters and masks (BatchNorm's num_batches_tracked, D's cells)
            return current
        return average + (current - average) * torch.clamp(1.0 / (n + 1.0), min=1.0 - decay)

    return AveragedModel(model, avg_fn=towards, use_buffers=True)


def model_payload(model: InpaintSegModel, cfg: Config, step: int) -> dict:
    """The inference checkpoint: config + D and S weights (no inpainter, no optimiser)."""
    return {"format": "inpaintseg-model", "config": cfg.to_dict(), "model": model.state_dict(), "step": step}


@dataclass
class Stage2Networks:
    """What stage 2 trains (``model``, its optimiser and weight average) and what it uses frozen."""

    model: InpaintSegModel
    opt: torch.optim.Adam
    ema: AveragedModel | None
    inpainter: InpaintingUNet | None
    flow_inpainter: InpaintingUNet | None
    phi: PerceptualFeatures | None


def build_stage2(cfg: Config, bank: FrameBank, run_dir: Path, resume: bool, device: torch.device) -> Stage2Networks:
    """D + S (from ``train.init`` unless a run is resumed), the frozen inpainters when the bank has no
    per-frame background, phi for L_f, Adam and the weight average."""
    torch.manual_seed(cfg.train.seed)
    cl = torch.channels_last  # 12% faster steps on this CPU (benchmarks/train_speed.py); same values
    model = build_model(cfg)
    if cfg.train.init != "none" and not (resume and (run_dir / "train_last.pt").exists()):
        init_model(model, cfg)
    model = model.to(device, memory_format=cl)
    inpainter = flow_inpainter = None
    if bank.backgrounds is None:
        inpainter = load_inpainter(run_dir / "inpainter.pt", device).requires_grad_(False)
        if bank.flows is not None and cfg.loss.w_bg_flow > 0:
            flow_inpainter = load_inpainter(run_dir / "flow_inpainter.pt", device).requires_grad_(False)
    phi = PerceptualFeatures(cfg.train.pretrained).to(device, memory_format=cl) if cfg.loss.w_perceptual > 0 else None
    opt = make_optimizer(model, cfg)
    ema = weight_average(model, cfg.train.ema) if cfg.train.ema > 0 else None
    return Stage2Networks(model, opt, ema, inpainter, flow_inpainter, phi)


def stage2_batch(bank: FrameBank, cfg: Config, step: int, device: torch.device, flow_inpainter: InpaintingUNet | None,
                 stats_flow: RunningStats) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None,
                                                    FlowInputs | None]:
    """This rank's share of step ``step``'s batch, mirrored at random, zoomed and colour-jittered as ``train.zoom``
    and ``train.jitter`` ask: images (channels-last), backgrounds, mask targets and the flow inputs (None where the
    bank has none)."""
    g = step_generator(cfg.train.seed, step, salt=2)  # the global batch: identical on every rank
    idx = torch.randint(len(bank), (cfg.train.batch,), generator=g)
    flip = torch.rand(len(idx), generator=g) < 0.5
    idx, flip = distributed.shard(idx), distributed.shard(flip)
    images, bgs = bank.batch(idx)
    images, bgs = mirror_rows(images, flip), mirror_rows(bgs, flip)
    targets = mirror_rows(bank.target_batch(idx), flip)
    flows = valid = None
    if bank.flows is not None and cfg.loss.w_bg_flow > 0:
        flows, valid = bank.flow_batch(idx)
        flows = mirror_rows(flows, flip, flow=True)
    if cfg.train.zoom > 1.0:  # the same window of the image, its background, target and flow
        zoom = 1.0 + (cfg.train.zoom - 1.0) * distributed.shard(torch.rand(cfg.train.batch, generator=g))
        corner = distributed.shard(torch.rand(cfg.train.batch, 2, generator=g))
        grids = zoom_grids(zoom, corner, *images.shape[-2:])
        images, bgs, targets, flows = (zoom_rows(x, grids) for x in (images, bgs, targets, flows))
    if cfg.train.jitter > 0.0:  # the same colours for the image and its background
        u = distributed.shard(torch.rand(cfg.train.batch, 3, generator=g))
        factors = 1.0 + cfg.train.jitter * (2.0 * u - 1.0)
        images = jitter_colours(images, factors)
        bgs = None if bgs is None else jitter_colours(bgs, factors)
    bgs, targets = (None if x is None else x.to(device) for x in (bgs, targets))
    flow = None if flows is None else FlowInputs(flows.to(device), valid.to(device), flow_inpainter, stats_flow)
    return images.to(device, memory_format=torch.channels_last), bgs, targets, flow


def train_model(
    cfg: Config, bank: FrameBank, run_dir: str | Path, resume: bool = False, progress: bool = True
) -> Path:
    """Stage 2. Needs ``run_dir/inpainter.pt`` unless the bank carries backgrounds. Writes ``run_dir/model.pt``."""
    run_dir = Path(run_dir)
    device = pick_device(cfg.train.device)
    nets = build_stage2(cfg, bank, run_dir, resume, device)
    model, opt, ema = nets.model, nets.opt, nets.ema
    stats, stats_flow = RunningStats(), RunningStats()
    step, spent = 0, 0.0
    last = run_dir / "train_last.pt"
    if resume and last.exists():
        payload = load_checkpoint(last, "train-state")
        model.load_state_dict(payload["model"])
        load_optimizer_state(opt, payload["optimizer"])
        step, spent = int(payload["step"]), float(payload.get("elapsed_s", 0.0))
        stats = RunningStats(**payload["stats"])
        stats_flow = RunningStats(**payload.get("stats_flow", {}))
        if ema is not None and "ema" in payload:
            ema.load_state_dict(payload["ema"])
        torch.set_rng_state(payload["rng"])

    def checkpoint(step: int) -> None:
        if not distributed.is_main():
            return
        save_checkpoint(last, {
            "format": "inpaintseg-train-state", "config": cfg.to_dict(), "model": model.state_dict(),
            "optimizer": opt.state_dict(), "step": step, "rng": torch.get_rng_state(), "elapsed_s": budget.elapsed(),
            "stats": dataclasses.asdict(stats), "stats_flow": dataclasses.asdict(stats_flow),
            **({"ema": ema.state_dict()} if ema is not None else {}),
        })
        save_checkpoint(run_dir / "model.pt", model_payload(model if ema is None else ema.module, cfg, step))

    bf16 = use_bf16(cfg.train.precision, device)
    logger = MetricsLogger(run_dir, "train", enabled=distributed.is_main())
    budget = Budget(cfg.train.steps, cfg.train.minutes, spent)
    guard = NonFiniteGuard(last)
    model.train()

    def train_step(step: int) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        images, bgs, targets, flow = stage2_batch(bank, cfg, step, device, nets.flow_inpainter, stats_flow)
        g_local = step_generator(cfg.train.seed, step, salt=3 + distributed.rank())  # this rank's samples
        total, terms, pictures = stage2_losses(model, nets.inpainter, nets.phi, images, bgs, cfg, stats, g_local,
                                               bf16, flow, targets)
        guard.update(total, model.parameters(), opt, logger, step)
        if ema is not None:
            ema.update_parameters(model)
        return terms, pictures

    def after_step(done: int, result: tuple[dict[str, float], dict[str, torch.Tensor]]) -> dict[str, str]:
        terms, pictures = result
        if done % cfg.train.log_every == 0:
            logger.log(done, {**terms, "time/elapsed_s": budget.elapsed()})
        if done % cfg.train.image_every == 0:
            logger.images(done, "train/input_background_resynthesis_mask_probs",
                          picture_grid(pictures, model.detector.grid))
        return {"p_max": f"{terms['vital/p_max']:.2f}", "box": f"{terms['vital/box_w']:.2f}x{terms['vital/box_h']:.2f}"}

    bar = tqdm(desc="stage 2: detector+segmenter", total=cfg.train.steps if cfg.train.minutes <= 0 else None,
               initial=step, disable=not (progress and distributed.is_main()), unit="step")
    run_steps(step, budget, bar, logger, cfg.train.checkpoint_every, train_step, after_step, checkpoint)
    return run_dir / "model.pt"
