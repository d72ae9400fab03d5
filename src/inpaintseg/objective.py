"""The stage-2 objective (sections 3.3-3.5): the paper's terms assembled into one criterion.

The terms themselves are small functions in ``losses.py`` (each with its equation number); this module decides
what each term sees. One step (:func:`stage2_losses`):

1. D proposes a box and a probability per cell (``InpaintSegModel.forward``).
2. **L_bg** (eq. 11, :func:`background_term`): cells are chosen (``sampling.py``); each chosen box, enlarged by
   ``loss.hole_expand``, is the hole; the background I_bar is the frozen inpainter's fill of the hole (or, with
   ``data.background=temporal|known``, the background estimate). The reward of each chosen box is how badly
   I_bar explains it (``losses.background_reward``); L_bg = -w (reward - baseline) trains the probabilities
   through the weight w (p/q for sampled cells, p for the exhaustive expectation). With ``data.flow`` the same
   on the stabilised flow (:func:`flow_background_loss`, section 3.5).
3. **L_fg, L_f** (eqs. 12, 4, :func:`foreground_terms`): one chosen box is cropped (T), S predicts foreground
   and mask, F(I) recomposes the image (eq. 1); L_fg and the perceptual L_f train S and the box (through T and
   T^-1). **L_v** (eq. 6) and **L_p** (eq. 5) are priors on the mask and on p.
4. Terms beyond the paper (:func:`extra_terms`): box fit, mask target, scale penalty (docs/method.md).

**Disentangling** (section 3.3.2, ``sampling.disentangled``) happens in :func:`disentangle` and nowhere else
in this module: the weight in L_fg/L_f is detached, so p learns only from L_bg and L_p, and L_v sees the box as
a constant. Holes are hard masks of detached boxes and rewards are detached (``losses.background_loss``), so
L_bg gives nothing to the box or S.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from inpaintseg.config import Config
from inpaintseg.data.flow import ZERO_FLOW_RGB
from inpaintseg.engine import distributed
from inpaintseg.engine.common import autocast
from inpaintseg.losses import (
    background_loss,
    background_mask_target,
    background_reward,
    box_fit_loss,
    error_map,
    foreground_loss,
    mask_bce,
    mask_prior,
    probability_prior,
    scale_saturation_penalty,
)
from inpaintseg.models.crop import box_mask, crop, expand_box, uncrop
from inpaintseg.models.detector import Proposals
from inpaintseg.models.model import InpaintSegModel, resynthesize
from inpaintseg.models.perceptual import PerceptualFeatures, perceptual_distance, perceptual_distance_in_window
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.sampling import choose_cells


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


@dataclass
class BackgroundTerm:
    """L_bg on RGB and what the other terms reuse of it."""

    loss: torch.Tensor
    cells: torch.Tensor
    """(B,K) the chosen cells."""
    weights: torch.Tensor
    """(B,K) their weights (with the gradient to p)."""
    boxes: torch.Tensor
    """(B*K,4) their boxes."""
    holes: torch.Tensor
    """(B,K,H,W) with a per-frame background, else (B*K,1,H,W)."""
    frame_errors: torch.Tensor | None
    """(B,H,W) the background's error over the whole frame (per-frame background only)."""
    level: torch.Tensor
    """(B,) typical background error of each frame."""
    density: torch.Tensor
    """(B,K) mean error in each hole (eq. 3), for the vital signs."""
    bars: torch.Tensor | None = None
    """(B*K,3,H,W) I_bar of each chosen box (inpainter only)."""
    errors: torch.Tensor | None = None
    """(B*K,H,W) the error maps of those I_bar (inpainter only)."""


def background_term(props: Proposals, valid: torch.Tensor, images: torch.Tensor, backgrounds: torch.Tensor | None,
                    inpainter: InpaintingUNet | None, cfg: Config, stats: RunningStats,
                    generator: torch.Generator) -> BackgroundTerm:
    """L_bg (eq. 11) on RGB: choose cells, measure how badly the background explains each chosen box."""
    L, S = cfg.loss, cfg.sampling
    b, _, h, w = images.shape
    cells, weights = choose_cells(props.probs, props.logits, valid, S.method, S.samples, S.eps,
                                  S.gumbel_temperature, generator)
    k = cells.shape[1]
    boxes = _gather(props.boxes, cells)
    bars = per_box_errors = None
    if backgrounds is not None:
        # I_bar equals I outside the hole, so a box's error is the frame's error map inside its hole
        frame_errors = error_map(backgrounds, images)  # (B,H,W), whole frame
        level = frame_errors.mean(dim=(1, 2))  # typical background error of each frame
        errors, holes = frame_errors, box_mask(expand_box(boxes, L.hole_expand), h, w).view(b, k, h, w)
        reward_level = level
    else:
        frame_errors = None
        level = torch.full((b,), stats.level if stats.count else 0.0, device=images.device)
        rep = images.repeat_interleave(k, dim=0)  # one (image, box) pair per row
        bars, holes = background_for_boxes(rep, None, inpainter, boxes, L.hole_expand)
        errors = per_box_errors = error_map(bars, rep)
        reward_level = level.repeat_interleave(k, dim=0)
    rewards = background_reward(errors, holes, L.reward, reward_level).view(b, k)
    density = background_reward(errors, holes, "density").view(b, k)
    stats.update(*distributed.average_scalars(rewards.mean().item(), density.mean().item(),
                                              (rewards - rewards.mean()).abs().mean().item()))
    spread = max(stats.spread, 1e-8) if L.normalize_reward else 1.0  # scale-free rewards (a running constant)
    baseline = reward_baseline(stats, cells, rewards, props.probs.shape[1], cfg)
    # exhaustive: weights are p_c, summed over the cells; sampled: weights p/q, averaged over the K samples
    loss = background_loss(weights, rewards / spread, baseline / spread) * (k if S.method == "exhaustive" else 1)
    return BackgroundTerm(loss, cells, weights, boxes, holes, frame_errors, level, density, bars, per_box_errors)


@dataclass
class ForegroundSample:
    """The boxes S segments and what L_fg compares its resynthesis with."""

    weights: torch.Tensor
    """(N,) weight of each box in L_fg / L_f (the importance weight, with its gradient to p)."""
    boxes: torch.Tensor
    """(N,4) the boxes (with their gradient to D's box outputs)."""
    images: torch.Tensor
    """(N,3,H,W) the images the boxes belong to."""
    backgrounds: torch.Tensor
    """(N,3,H,W) I_bar for each box."""
    errors: torch.Tensor
    """(N,H,W) the error map of that I_bar."""
    level: torch.Tensor
    """(N,) typical background error of each image (per-frame background: the frame's mean error); with the
    inpainter, of each box's hole size (:func:`control_level`; when no term uses it, the running mean hole error)."""


def foreground_sample(props: Proposals, valid: torch.Tensor, images: torch.Tensor, backgrounds: torch.Tensor | None,
                      inpainter: InpaintingUNet | None, bg: BackgroundTerm, cfg: Config,
                      generator: torch.Generator) -> ForegroundSample:
    """The boxes for the foreground terms: the background term's chosen cells, or, when L_bg took the exhaustive
    expectation, one importance sample per image."""
    S, k = cfg.sampling, bg.cells.shape[1]
    if S.method == "exhaustive":
        cells, weights = choose_cells(props.probs, props.logits, valid, "importance", 1, S.eps, generator=generator)
        boxes = _gather(props.boxes, cells)
        bars, _ = background_for_boxes(images, backgrounds, inpainter, boxes, cfg.loss.hole_expand)
        level = sample_level(bg.level, images, inpainter if backgrounds is None else None, boxes, cfg, generator)
        return ForegroundSample(weights.flatten(), boxes, images, bars, error_map(bars, images), level)
    reps = images.repeat_interleave(k, dim=0)
    level = bg.level.repeat_interleave(k, dim=0)
    if backgrounds is None:
        level = sample_level(level, reps, inpainter, bg.boxes, cfg, generator)
        return ForegroundSample(bg.weights.flatten(), bg.boxes, reps, bg.bars, bg.errors, level)
    bars, _ = background_for_boxes(reps, backgrounds.repeat_interleave(k, dim=0), None, bg.boxes,
                                   cfg.loss.hole_expand)
    return ForegroundSample(bg.weights.flatten(), bg.boxes, reps, bars, error_map(bars, reps), level)


def sample_level(level: torch.Tensor, images: torch.Tensor, inpainter: InpaintingUNet | None, boxes: torch.Tensor,
                 cfg: Config, generator: torch.Generator) -> torch.Tensor:
    """The level the box fit and the mask target compare the error with: ``level`` (N,) as it is, or, with the
    inpainter (not None) and one of those terms on, :func:`control_level` of each box."""
    if inpainter is None or not (cfg.loss.w_box_fit > 0 or cfg.loss.w_mask_bg > 0):
        return level
    return control_level(images, inpainter, boxes, cfg.loss.hole_expand, generator)


def control_level(images: torch.Tensor, inpainter: InpaintingUNet, boxes: torch.Tensor, hole_expand: float,
                  generator: torch.Generator) -> torch.Tensor:
    """The inpainter's typical error on background for each box's hole size: the mean error (eq. 3's density) of
    a hole of the same size at a uniformly random place in the same image, the hole inside the image. images
    (N,3,H,W) in [0,1], boxes (N,4) (cx, cy, w, h) in image fractions -> (N,). With a per-frame background the
    frame's mean error plays this part; with the inpainter the error is zero outside the hole, and the mean over
    the box's own hole is dominated by the object it holds."""
    half = (boxes.detach()[:, 2:] * (1 + hole_expand) / 2).clamp(max=0.5)
    u = torch.rand(len(boxes), 2, generator=generator).to(boxes.device, boxes.dtype)  # CPU draw: the same on any device
    control = torch.cat([half + u * (1 - 2 * half), boxes.detach()[:, 2:]], dim=1)
    bars, holes = background_for_boxes(images, None, inpainter, control, hole_expand)
    return background_reward(error_map(bars, images), holes[:, None, 0], "density")[:, 0]


def disentangle(sample: ForegroundSample, mask: torch.Tensor, full_mask: torch.Tensor,
                cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Section 3.3.2. ``mask`` (N,1,s,s) is S's mask, ``full_mask`` (N,1,H,W) its T^-1 in the resynthesis.
    Returns (the weight L_fg and L_f use, the T^-1 of the mask L_v sees). Disentangled (the paper's default):
    the weight is detached, so p learns only from L_bg and L_p; L_v sees the mask placed by a constant box, so
    the mask prior cannot shrink the box. Joint: both keep their gradients."""
    if cfg.sampling.disentangled:
        h, w = full_mask.shape[-2:]
        return sample.weights.detach(), uncrop(mask, sample.boxes.detach(), h, w)
    return sample.weights, full_mask


@dataclass
class ForegroundTerms:
    fg: torch.Tensor
    perceptual: torch.Tensor
    v: torch.Tensor
    mask: torch.Tensor
    """(N,1,s,s) S's mask in the crop."""
    full_mask: torch.Tensor
    """(N,1,H,W) T^-1 of the mask."""
    resynthesis: torch.Tensor
    """(N,3,H,W) F(I)."""


def foreground_terms(model: InpaintSegModel, phi: PerceptualFeatures | None, sample: ForegroundSample, cfg: Config,
                     bf16: bool) -> ForegroundTerms:
    """L_fg (eq. 12), L_f (eq. 4, the perceptual distance) and L_v (eq. 6) of the foreground sample."""
    L = cfg.loss
    with autocast(sample.images.device, bf16):
        foreground, mask = model.segment(sample.images, sample.boxes)
    resynth, full_mask = resynthesize(sample.backgrounds, foreground, mask, sample.boxes)
    weight, prior_mask = disentangle(sample, mask, full_mask, cfg)
    l_fg = foreground_loss(weight, resynth, sample.images)
    l_f = torch.zeros(())
    if phi is not None:
        with autocast(sample.images.device, bf16):
            if L.perceptual_region == "hole":  # F(I) equals I outside the hole
                window = expand_box(sample.boxes, L.hole_expand)
                dist = perceptual_distance_in_window(phi, resynth, sample.images, window, model.segmenter.crop_size)
            else:
                dist = perceptual_distance(phi, resynth, sample.images)
        l_f = (weight * dist).mean()
    l_v = mask_prior(prior_mask, L.tau, L.mask_prior)
    return ForegroundTerms(l_fg, l_f, l_v, mask, full_mask, resynth)


def extra_terms(props: Proposals, sample: ForegroundSample, fg: ForegroundTerms, bg: BackgroundTerm, cfg: Config,
                targets: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Terms beyond the paper, each with its weight (docs/method.md, "Deviations"): the box fit
    (``loss.w_box_fit``), the mask target (``loss.w_mask_bg``; ``targets`` (B,1,H,W) are per-frame GrabCut targets,
    else the ramp of the background error) and the scale penalty (``loss.w_scale_reg``). Only the terms with a
    weight above 0, unweighted."""
    L, k = cfg.loss, bg.cells.shape[1]
    exhaustive = cfg.sampling.method == "exhaustive"
    out = {}
    if L.w_box_fit > 0 or L.w_mask_bg > 0:
        # the background error of the foreground samples: over the whole frame with a per-frame background,
        # inside the hole only with the inpainter
        if bg.frame_errors is not None:
            signal = bg.frame_errors if exhaustive else bg.frame_errors.repeat_interleave(k, dim=0)
        else:
            signal = sample.errors
    if L.w_box_fit > 0:
        out["box_fit"] = box_fit_loss(sample.boxes, signal, sample.level)
    if L.w_mask_bg > 0:
        if targets is not None:
            target = targets if exhaustive else targets.repeat_interleave(k, dim=0)
        else:
            target = background_mask_target(signal[:, None], sample.level)  # (B,1,H,W) over the frame
        out["mask_bg"] = mask_bce(fg.mask, crop(target, sample.boxes.detach(), fg.mask.shape[-1]))
    if L.w_scale_reg > 0:
        out["scale_reg"] = scale_saturation_penalty(props.scale_logits)
    return out


VITAL_KEYS = ("vital/box_w", "vital/box_h", "vital/p_entropy", "vital/p_max", "vital/argmax_on_ring",
              "vital/mask_mean", "vital/hole_error")
"""The keys :func:`vital_signs` logs at every step (the flow branch adds ``vital/flow_hole_error``)."""
EXTRA_WEIGHTS = {"box_fit": "w_box_fit", "mask_bg": "w_mask_bg", "scale_reg": "w_scale_reg"}


def stage2_losses(
    model: InpaintSegModel, inpainter: InpaintingUNet | None, phi: PerceptualFeatures | None,
    images: torch.Tensor, backgrounds: torch.Tensor | None, cfg: Config, stats: RunningStats,
    generator: torch.Generator, bf16: bool = False, flow: FlowInputs | None = None,
    targets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
    """The stage-2 criterion for one batch of images (B,3,H,W) in [0,1]. Returns (total loss, logged values,
    tensors for pictures). With ``bf16`` the networks run under bf16 autocast; their outputs and every loss are
    float32. ``flow``: L_bg on the stabilised flow too, with ``loss.w_bg_flow`` times the weight of L_bg on RGB
    (section 3.5: the same weight). ``targets`` (B,1,H,W) in [0,1]: per-frame mask targets for ``w_mask_bg``."""
    L = cfg.loss
    with autocast(images.device, bf16):
        props = model(images)
    valid = model.detector.inner
    bg = background_term(props, valid, images, backgrounds, inpainter, cfg, stats, generator)
    l_bg_flow, flow_terms = torch.zeros(()), {}
    if flow is not None:
        holes = bg.holes if backgrounds is not None else None
        l_bg_flow, flow_error = flow_background_loss(flow, bg.boxes, holes, bg.weights, cfg,
                                                     cfg.sampling.method == "exhaustive", bg.cells,
                                                     props.probs.shape[1])
        flow_terms = {"loss/bg_flow": l_bg_flow.item(), "vital/flow_hole_error": flow_error}
    sample = foreground_sample(props, valid, images, backgrounds, inpainter, bg, cfg, generator)
    fg = foreground_terms(model, phi, sample, cfg, bf16)
    l_p = probability_prior(props.probs, L.prob_prior)
    total = (L.w_bg * (bg.loss + L.w_bg_flow * l_bg_flow) + L.w_fg * fg.fg + L.w_perceptual * fg.perceptual
             + L.w_v * fg.v + L.w_p * l_p)
    terms = {"loss/bg": bg.loss.item(), "loss/fg": fg.fg.item(), "loss/perceptual": fg.perceptual.item(),
             "loss/v": fg.v.item(), "loss/p": l_p.item(), **flow_terms}
    for name, value in extra_terms(props, sample, fg, bg, cfg, targets).items():
        total = total + getattr(L, EXTRA_WEIGHTS[name]) * value
        terms[f"loss/{name}"] = value.item()
    terms["loss/total"] = total.item()
    terms.update(vital_signs(props, fg.mask, bg.density, model.detector.grid, model.detector.border))
    pictures = {"image": sample.images, "background": sample.backgrounds, "resynthesis": fg.resynthesis,
                "mask": fg.full_mask, "probs": props.probs, "boxes": sample.boxes}
    return total, terms, pictures


def vital_signs(props, mask: torch.Tensor, density: torch.Tensor, grid: tuple[int, int], border: int) -> dict:
    """The method's health (docs/method.md, "Failure modes"): box size, entropy and max of p, share of argmax cells on
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
