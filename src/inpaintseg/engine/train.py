"""Stage 2: train the detector D and the segmentation network S with I frozen (sections 3.3-3.4).

One step (``stage2_losses``):
1. D proposes a box and probability per cell.
2. Cells are chosen (sampling.py) for the background loss; each chosen box, enlarged by 15%, becomes the
   hole; the background I_bar is the frozen inpainter's output in the hole (or, with
   ``data.background=temporal|known``, the background estimate) and the input elsewhere.
3. The reward of each chosen box is how badly I_bar explains it (losses.background_reward);
   L_bg = -w * reward trains the probabilities (REINFORCE through the importance weight w = p/q).
4. For the foreground, a chosen box is cropped (T), S predicts foreground and mask, F(I) recomposes the
   image (eq. 1); L_fg, L_f (perceptual) and L_v train S and the box (through T and T^-1).
With ``sampling.disentangled`` (the paper's default) the weight in L_fg/L_f is detached, so p learns only
from L_bg and L_p, and L_v sees the box as a constant.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from inpaintseg.config import Config
from inpaintseg.data.flow import ZERO_FLOW_RGB
from inpaintseg.engine import distributed
from inpaintseg.engine.checkpoint import load_checkpoint, save_checkpoint
from inpaintseg.engine.common import Budget, NonFiniteGuard, autocast, pick_device, step_generator, use_bf16
from inpaintseg.engine.data import FrameBank, mirror_rows
from inpaintseg.engine.logger import MetricsLogger
from inpaintseg.engine.train_inpainter import load_inpainter
from inpaintseg.losses import (
    background_loss,
    background_mask_target,
    background_reward,
    box_fit_loss,
    error_map,
    mask_bce,
    mask_prior,
    pixel_mse,
    probability_prior,
    scale_saturation_penalty,
)
from inpaintseg.models.crop import box_mask, crop, expand_box, uncrop
from inpaintseg.models.model import InpaintSegModel, build_model, resynthesize
from inpaintseg.models.perceptual import PerceptualFeatures, perceptual_distance, perceptual_distance_in_window
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.sampling import choose_cells
from inpaintseg.weights import init_model


@dataclass
class RunningStats:
    """Moving averages carried across steps (saved in checkpoints)."""

    reward: float = 0.0
    level: float = 0.0
    spread: float = 0.0
    count: int = 0
    cell_reward: list[float] = dataclasses.field(default_factory=list)
    """Running mean reward of each grid cell (``loss.cell_baseline``); NaN for cells not chosen yet."""

    def update(self, reward: float, level: float, spread: float, momentum: float = 0.98) -> None:
        if self.count == 0:
            self.reward, self.level, self.spread = reward, level, spread
        else:
            self.reward = momentum * self.reward + (1 - momentum) * reward
            self.level = momentum * self.level + (1 - momentum) * level
            self.spread = momentum * self.spread + (1 - momentum) * spread
        self.count += 1


    def cell_baseline(self, cells: torch.Tensor, rewards: torch.Tensor, n_cells: int,
                      momentum: float = 0.98) -> torch.Tensor:
        """The running mean reward of each chosen cell before this step, (B,K) like ``cells`` and ``rewards``;
        then each chosen cell's mean moves towards its mean reward in this step (over all ranks). A cell chosen
        for the first time starts at its reward."""
        table = torch.tensor(self.cell_reward or [math.nan] * n_cells, dtype=torch.float64)
        flat = cells.flatten().cpu()
        sums = torch.bincount(flat, weights=rewards.detach().flatten().cpu().double(), minlength=n_cells)
        counts = torch.bincount(flat, minlength=n_cells).double()
        both = torch.tensor(distributed.average_scalars(*sums.tolist(), *counts.tolist()), dtype=torch.float64)
        seen = both[n_cells:] > 0
        mean = both[:n_cells] / both[n_cells:].clamp_min(1e-12)
        first = seen & table.isnan()
        table = torch.where(first, mean, table)
        baseline = table[flat].view(cells.shape).to(rewards.device, rewards.dtype)
        table = torch.where(seen & ~first, momentum * table + (1 - momentum) * mean, table)
        self.cell_reward = table.tolist()
        return baseline


def reward_baseline(stats: RunningStats, cells: torch.Tensor, rewards: torch.Tensor, n_cells: int,
                    cfg: Config) -> torch.Tensor | float:
    """What L_bg subtracts from the rewards (B,K): each cell's running mean reward (``loss.cell_baseline``), the
    running mean over all cells (``loss.baseline``) or 0. Call after ``stats.update`` for this step."""
    if cfg.loss.cell_baseline:
        return stats.cell_baseline(cells, rewards, n_cells)
    return stats.reward if cfg.loss.baseline else 0.0


def _gather(x: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """x (B, C, ...) and cells (B, K) -> (B*K, ...)."""
    idx = cells.reshape(cells.shape[0], cells.shape[1], *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, idx).flatten(0, 1)


def background_for_boxes(
    images: torch.Tensor, backgrounds: torch.Tensor | None, inpainter: InpaintingUNet | None,
    boxes: torch.Tensor, hole_expand: float, chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """I_bar and the hole for each (image, box): images (N,3,H,W), boxes (N,4) -> ((N,3,H,W), (N,1,H,W))."""
    h, w = images.shape[-2:]
    holes = box_mask(expand_box(boxes.detach(), hole_expand), h, w)
    if backgrounds is not None:
        return holes * backgrounds + (1 - holes) * images, holes
    with torch.no_grad():
        parts = [inpainter.inpaint(images[i : i + chunk], holes[i : i + chunk]) for i in range(0, len(images), chunk)]
    return torch.cat(parts), holes


@dataclass
class FlowInputs:
    """The optical-flow branch's inputs for one batch (section 3.5)."""

    flows: torch.Tensor
    """(B,3,H,W) encoded stabilised flow in [0,1] (data/flow.py)."""
    valid: torch.Tensor
    """(B,) bool: the frame's flow exists (its homography was found); invalid frames get no flow loss."""
    inpainter: InpaintingUNet | None
    """The flow inpainter I_f, or None: the flow's background is then zero flow."""
    stats: RunningStats


def flow_background_loss(
    flow: FlowInputs, boxes: torch.Tensor, holes: torch.Tensor | None, weights: torch.Tensor, cfg: Config,
    exhaustive: bool, cells: torch.Tensor, n_cells: int,
) -> tuple[torch.Tensor, float]:
    """L_bg on the stabilised flow: how badly the flow's background explains each chosen box.

    boxes (B*K,4) the chosen boxes, holes (B,K,H,W) their holes (needed for the zero-flow background),
    weights (B,K) and cells (B,K) as for L_bg on RGB. The background is zero flow (the stabilised flow of a static
    background) without a flow inpainter, I_f's inpainting of the hole with one. Returns (loss, mean hole
    error of the valid frames)."""
    L = cfg.loss
    f, (b, k) = flow.flows, weights.shape
    valid = flow.valid.to(f.dtype)
    if flow.inpainter is None:
        zero = torch.tensor(ZERO_FLOW_RGB, dtype=f.dtype, device=f.device).view(1, 3, 1, 1) / 255.0
        errors = error_map(zero.expand_as(f), f)  # (B,H,W)
        level = errors.mean(dim=(1, 2))
    else:
        level = torch.full((b,), flow.stats.level if flow.stats.count else 0.0, device=f.device)
        bars, holes = background_for_boxes(f.repeat_interleave(k, 0), None, flow.inpainter, boxes, L.hole_expand)
        errors, level = error_map(bars, f.repeat_interleave(k, 0)), level.repeat_interleave(k)
    rewards = background_reward(errors, holes, L.reward, level).view(b, k)
    density = background_reward(errors, holes, "density").view(b, k)
    n = valid.sum().clamp_min(1.0)
    mean = lambda x: ((x.mean(1) * valid).sum() / n).item()  # noqa: E731  over the valid frames
    flow.stats.update(*distributed.average_scalars(mean(rewards), mean(density),
                                                   mean((rewards - rewards.mean()).abs())))
    spread = max(flow.stats.spread, 1e-8) if L.normalize_reward else 1.0
    baseline = reward_baseline(flow.stats, cells, rewards, n_cells, cfg)
    loss = background_loss(weights * valid[:, None], rewards / spread, baseline / spread) * (k if exhaustive else 1)
    return loss, mean(density)


def stage2_losses(
    model: InpaintSegModel, inpainter: InpaintingUNet | None, phi: PerceptualFeatures | None,
    images: torch.Tensor, backgrounds: torch.Tensor | None, cfg: Config, stats: RunningStats,
    generator: torch.Generator, bf16: bool = False, flow: FlowInputs | None = None,
    targets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
    """One forward pass of the full model. Returns (total loss, logged values, tensors for pictures).
    With ``bf16`` the networks run under bf16 autocast; their outputs and every loss are float32.
    With ``flow``, L_bg on the stabilised flow is added with ``w_bg_flow`` times the weight of L_bg on RGB
    (section 3.5: the same weight).
    ``targets`` (B,1,H,W) in [0,1]: per-frame mask targets for the ``w_mask_bg`` term (``loss.mask_target=grabcut``)
    instead of the ramp of the background error."""
    L, S = cfg.loss, cfg.sampling
    b, _, h, w = images.shape
    amp = lambda: autocast(images.device, bf16)  # noqa: E731
    with amp():
        props = model(images)
    valid = model.detector.inner

    # --- background loss: which boxes does the background fail to explain? (trains p)
    cells, weights = choose_cells(props.probs, props.logits, valid, S.method, S.samples, S.eps,
                                  S.gumbel_temperature, generator)
    k = cells.shape[1]
    rep = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731  (B,...) -> (B*K,...)
    boxes_bg = _gather(props.boxes, cells)
    if backgrounds is not None:
        # I_bar equals I outside the hole, so a box's error is the frame's error map inside its hole
        frame_errors = error_map(backgrounds, images)  # (B,H,W), whole frame
        level = frame_errors.mean(dim=(1, 2))  # typical background error of each frame
        errors, holes = frame_errors, box_mask(expand_box(boxes_bg, L.hole_expand), h, w).view(b, k, h, w)
        reward_level = level
    else:
        frame_errors = None
        level = torch.full((b,), stats.level if stats.count else 0.0, device=images.device)
        bars, holes = background_for_boxes(rep(images), None, inpainter, boxes_bg, L.hole_expand)
        errors, reward_level = error_map(bars, rep(images)), rep(level)  # one (image, box) pair per row
    rewards = background_reward(errors, holes, L.reward, reward_level).view(b, k)
    density = background_reward(errors, holes, "density").view(b, k)
    stats.update(*distributed.average_scalars(rewards.mean().item(), density.mean().item(),
                                              (rewards - rewards.mean()).abs().mean().item()))
    spread = max(stats.spread, 1e-8) if L.normalize_reward else 1.0  # scale-free rewards (a running constant)
    baseline = reward_baseline(stats, cells, rewards, props.probs.shape[1], cfg)
    # exhaustive: weights are p_c, summed over the cells; sampled: weights p/q, averaged over the K samples
    l_bg = background_loss(weights, rewards / spread, baseline / spread) * (k if S.method == "exhaustive" else 1)
    l_bg_flow, flow_terms = torch.zeros(()), {}
    if flow is not None:
        l_bg_flow, flow_error = flow_background_loss(flow, boxes_bg, holes if backgrounds is not None else None,
                                                     weights, cfg, S.method == "exhaustive", cells,
                                                     props.probs.shape[1])
        flow_terms = {"loss/bg_flow": l_bg_flow.item(), "vital/flow_hole_error": flow_error}

    # --- foreground: crop the chosen box, segment, resynthesise (trains S and the box)
    if S.method == "exhaustive":  # one importance sample for the foreground terms
        cells_fg, w_fg = choose_cells(props.probs, props.logits, valid, "importance", 1, S.eps, generator=generator)
        boxes_fg = _gather(props.boxes, cells_fg)
        bars_fg, _ = background_for_boxes(images, backgrounds, inpainter, boxes_fg, L.hole_expand)
        errors_fg, imgs_fg, level_fg = error_map(bars_fg, images), images, level
    else:
        w_fg, boxes_fg, imgs_fg, level_fg = weights, boxes_bg, rep(images), rep(level)
        if backgrounds is None:
            bars_fg, errors_fg = bars, errors
        else:
            bars_fg, _ = background_for_boxes(imgs_fg, rep(backgrounds), None, boxes_fg, L.hole_expand)
            errors_fg = error_map(bars_fg, imgs_fg)
    w_fg = w_fg.flatten()
    if S.disentangled:
        w_fg = w_fg.detach()
    with amp():
        foreground, mask = model.segment(imgs_fg, boxes_fg)
    resynth, full_mask = resynthesize(bars_fg, foreground, mask, boxes_fg)
    l_fg = (w_fg * pixel_mse(resynth, imgs_fg)).mean()
    l_f = torch.zeros(())
    if phi is not None:
        with amp():
            if L.perceptual_region == "hole":  # F(I) equals I outside the hole
                window = expand_box(boxes_fg, L.hole_expand)
                dist = perceptual_distance_in_window(phi, resynth, imgs_fg, window, model.segmenter.crop_size)
            else:
                dist = perceptual_distance(phi, resynth, imgs_fg)
        l_f = (w_fg * dist).mean()
    mask_for_prior = uncrop(mask, boxes_fg.detach(), h, w) if S.disentangled else full_mask
    l_v = mask_prior(mask_for_prior, L.tau, L.mask_prior)
    l_p = probability_prior(props.probs, L.prob_prior)
    total = L.w_bg * (l_bg + L.w_bg_flow * l_bg_flow) + L.w_fg * l_fg + L.w_perceptual * l_f + L.w_v * l_v + L.w_p * l_p
    terms = {"loss/bg": l_bg.item(), "loss/fg": l_fg.item(), "loss/perceptual": l_f.item(), "loss/v": l_v.item(),
             "loss/p": l_p.item(), **flow_terms}
    if L.w_box_fit > 0 or L.w_mask_bg > 0:
        # background error of the foreground samples: over the whole frame when a background estimate is
        # given, inside the hole only with the inpainter
        if frame_errors is not None:
            signal = frame_errors if S.method == "exhaustive" else rep(frame_errors)
        else:
            signal = errors_fg
    if L.w_box_fit > 0:
        l_fit = box_fit_loss(boxes_fg, signal, level_fg)
        total = total + L.w_box_fit * l_fit
        terms["loss/box_fit"] = l_fit.item()
    if L.w_mask_bg > 0:
        if targets is not None:
            target = targets if S.method == "exhaustive" else rep(targets)
        else:
            target = background_mask_target(signal[:, None], level_fg)  # (B,1,H,W) over the frame
        l_mask = mask_bce(mask, crop(target, boxes_fg.detach(), mask.shape[-1]))
        total = total + L.w_mask_bg * l_mask
        terms["loss/mask_bg"] = l_mask.item()
    if L.w_scale_reg > 0:
        l_scale = scale_saturation_penalty(props.scale_logits)
        total = total + L.w_scale_reg * l_scale
        terms["loss/scale_reg"] = l_scale.item()
    terms["loss/total"] = total.item()
    terms.update(vital_signs(props, mask, density, model.detector.grid, model.detector.border))
    pictures = {"image": imgs_fg, "background": bars_fg, "resynthesis": resynth, "mask": full_mask,
                "probs": props.probs, "boxes": boxes_fg}
    return total, terms, pictures


def vital_signs(props, mask: torch.Tensor, density: torch.Tensor, grid: tuple[int, int], border: int) -> dict:
    """The method's health (DESIGN.md, "Pitfalls"): box size, entropy and max of p, share of argmax cells on
    the outermost inner ring, mean mask value in the box, raw background error in the hole."""
    p = props.probs.detach()
    n_inner = (grid[0] - 2 * border) * (grid[1] - 2 * border)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1) / math.log(max(n_inner, 2))
    top = p.argmax(1)
    rows, cols = top // grid[1], top % grid[1]
    ring = (rows == border) | (rows == grid[0] - 1 - border) | (cols == border) | (cols == grid[1] - 1 - border)
    top_boxes = props.boxes.detach()[torch.arange(len(top), device=top.device), top]
    return {
        "vital/box_w": top_boxes[:, 2].mean().item(),
        "vital/box_h": top_boxes[:, 3].mean().item(),
        "vital/p_entropy": entropy.mean().item(),
        "vital/p_max": p.max(1).values.mean().item(),
        "vital/argmax_on_ring": ring.float().mean().item(),
        "vital/mask_mean": mask.detach().mean().item(),
        "vital/hole_error": density.detach().mean().item(),
    }


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


def train_model(
    cfg: Config, bank: FrameBank, run_dir: str | Path, resume: bool = False, progress: bool = True
) -> Path:
    """Stage 2. Needs ``run_dir/inpainter.pt`` unless the bank carries backgrounds. Writes ``run_dir/model.pt``."""
    run_dir = Path(run_dir)
    device = pick_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    cl = torch.channels_last  # 12% faster steps on this CPU (benchmarks/train_speed.py); same values
    model = build_model(cfg)
    if cfg.train.init != "none" and not (resume and (run_dir / "train_last.pt").exists()):
        init_model(model, cfg)
    model = model.to(device, memory_format=cl)
    inpainter = flow_inpainter = None
    flow_loss = bank.flows is not None and cfg.loss.w_bg_flow > 0
    if bank.backgrounds is None:
        inpainter = load_inpainter(run_dir / "inpainter.pt", device)
        inpainter.requires_grad_(False)
        if flow_loss:
            flow_inpainter = load_inpainter(run_dir / "flow_inpainter.pt", device)
            flow_inpainter.requires_grad_(False)
    phi = PerceptualFeatures(cfg.train.pretrained).to(device, memory_format=cl) if cfg.loss.w_perceptual > 0 else None
    opt = make_optimizer(model, cfg)
    ema = weight_average(model, cfg.train.ema) if cfg.train.ema > 0 else None
    stats, stats_flow = RunningStats(), RunningStats()
    step, spent = 0, 0.0
    last = run_dir / "train_last.pt"
    if resume and last.exists():
        payload = load_checkpoint(last, "train-state")
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        step, spent = int(payload["step"]), float(payload.get("elapsed_s", 0.0))
        stats = RunningStats(**payload["stats"])
        stats_flow = RunningStats(**payload.get("stats_flow", {}))
        if ema is not None and "ema" in payload:
            ema.load_state_dict(payload["ema"])
        torch.set_rng_state(payload["rng"])

    def checkpoint() -> None:
        if not distributed.is_main():
            return
        save_checkpoint(last, {
            "format": "inpaintseg-train-state", "config": cfg.to_dict(), "model": model.state_dict(),
            "optimizer": opt.state_dict(), "step": step, "rng": torch.get_rng_state(), "elapsed_s": budget.elapsed(),
            "stats": dataclasses.asdict(stats), "stats_flow": dataclasses.asdict(stats_flow),
            **({"ema": ema.state_dict()} if ema is not None else {}),
        })
        save_checkpoint(run_dir / "model.pt", model_payload(model if ema is None else ema.module, cfg, step))

    main = distributed.is_main()
    bf16 = use_bf16(cfg.train.precision, device)
    logger = MetricsLogger(run_dir, "train", enabled=main)
    budget = Budget(cfg.train.steps, cfg.train.minutes, spent)
    model.train()
    bar = tqdm(desc="stage 2: detector+segmenter", total=cfg.train.steps if cfg.train.minutes <= 0 else None,
               initial=step, disable=not (progress and main), unit="step")
    guard = NonFiniteGuard(last)
    try:
        while not distributed.agree(budget.done(step)):
            g = step_generator(cfg.train.seed, step, salt=2)  # the global batch: identical on every rank
            idx = torch.randint(len(bank), (cfg.train.batch,), generator=g)
            flip = torch.rand(len(idx), generator=g) < 0.5
            idx, flip = distributed.shard(idx), distributed.shard(flip)
            images, bgs = bank.batch(idx)
            images, bgs = mirror_rows(images, flip), mirror_rows(bgs, flip)
            targets = mirror_rows(bank.target_batch(idx), flip)
            bgs, targets = (None if x is None else x.to(device) for x in (bgs, targets))
            flow = None
            if flow_loss:
                flows, valid = bank.flow_batch(idx)
                flows = mirror_rows(flows, flip, flow=True)
                flow = FlowInputs(flows.to(device), valid.to(device), flow_inpainter, stats_flow)
            g_local = step_generator(cfg.train.seed, step, salt=3 + distributed.rank())  # this rank's samples
            images = images.to(device, memory_format=cl)
            total, terms, pictures = stage2_losses(model, inpainter, phi, images, bgs, cfg, stats, g_local, bf16,
                                                   flow, targets)
            guard.update(total, model.parameters(), opt, logger, step)
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            bar.update(1)
            bar.set_postfix(p_max=f"{terms['vital/p_max']:.2f}",
                            box=f"{terms['vital/box_w']:.2f}x{terms['vital/box_h']:.2f}")
            if step % cfg.train.log_every == 0:
                logger.log(step, {**terms, "time/elapsed_s": budget.elapsed()})
            if step % cfg.train.image_every == 0:
                logger.images(step, "train/input_background_resynthesis_mask_probs",
                              picture_grid(pictures, model.detector.grid))
            if step % cfg.train.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:  # Ctrl-C / SIGINT: keep the work done so far, resumable with --resume
        checkpoint()
        bar.close()  # release tqdm's and TensorBoard's resources before the interpreter exits
        logger.close()
        raise
    bar.close()
    checkpoint()
    logger.close()
    return run_dir / "model.pt"
