"""Loss terms of the paper (eq. 2-7, 11-13), each a small function returning a per-image or scalar tensor.

Notation: I the input image (B,3,H,W) in [0,1]; I_bar the background for the chosen box (inpainted inside
the hole, the input outside); F(I) the resynthesis; w = p_c / q_c the importance weight (B,).
"""

from __future__ import annotations

import torch

from inpaintseg.models.crop import soft_box_mask


def pixel_mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over pixels and channels, (B,)."""
    return (x - y).pow(2).mean(dim=(1, 2, 3))


def foreground_loss(weight: torch.Tensor, resynthesis: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """L_fg (eq. 12): w * L2(F_c(I), I), averaged over the batch."""
    return (weight * pixel_mse(resynthesis, image)).mean()


def error_map(background: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared error of the background estimate, mean over channels: (B,H,W)."""
    return (background - image).pow(2).mean(dim=1)


def background_reward(
    errors: torch.Tensor, hole: torch.Tensor, kind: str = "density", level: torch.Tensor | None = None
) -> torch.Tensor:
    """How badly the background explains each hole: errors (B,H,W), holes (B,K,H,W) -> (B,K). Larger = more
    likely an object. (K holes per image; K = 1 with holes (B,1,H,W).)

    ``density`` (eq. 3): L2(I_bar_c, I) / area(b_c) = sum of errors in the hole / hole area.
    ``excess``: sum over the hole of (error - level) / image area, with ``level`` (B,) the typical
    background error: it prefers the box that covers exactly the pixels the background cannot explain.
    """
    inside = torch.einsum("bhw,bkhw->bk", errors, hole)  # sum of errors in each hole, without a (B,K,H,W) copy
    area = hole.sum(dim=(2, 3))
    if kind == "density":
        return inside / area.clamp_min(1.0)
    if kind == "excess":
        if level is None:
            raise ValueError("excess reward needs a level")
        return (inside - level[:, None] * area) / errors[0].numel()
    raise ValueError(f"unknown reward {kind!r}")


def background_loss(weight: torch.Tensor, reward: torch.Tensor, baseline: float = 0.0) -> torch.Tensor:
    """L_bg (eq. 11): -w * reward (reward detached). Subtracting a constant baseline keeps the gradient's
    expectation (sum_c grad p_c = 0) and lowers its variance."""
    return -(weight * (reward.detach() - baseline)).mean()


def mask_prior(full_mask: torch.Tensor, tau: float = 0.005, kind: str = "v") -> torch.Tensor:
    """Mask prior on the uncropped mask T^-1(S) (B, 1, H, W), values in [0, 1], averaged over the batch.

    ``v`` = L_v (eq. 6): |mean(T^-1(S)) - tau| + tau per image; ``l1`` = mean |T^-1(S)|; ``l2`` =
    mean T^-1(S)^2 (table 3's alternatives, which have no target ``tau``)."""
    if kind == "v":
        return ((full_mask.mean(dim=(1, 2, 3)) - tau).abs() + tau).mean()
    if kind == "l1":
        return full_mask.abs().mean()
    if kind == "l2":
        return full_mask.pow(2).mean()
    raise ValueError(f"unknown mask prior {kind!r}")


def probability_prior(probs: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """L_p: ``l1`` = sum |p_c| (eq. 5; identically 1 for a softmax, so it has no gradient) or ``l2`` =
    mean over cells of p_c^2 (the authors' code; rewards peaked distributions)."""
    if kind == "l1":
        return probs.abs().sum(dim=1).mean()
    if kind == "l2":
        return probs.pow(2).mean(dim=1).mean()
    raise ValueError(f"unknown probability prior {kind!r}")


def box_fit_loss(box: torch.Tensor, errors: torch.Tensor, level: torch.Tensor, softness: float = 1.5) -> torch.Tensor:
    """Soft-box fit (beyond the paper): -sum_x softbox(x) (error(x) - level) / image area.

    Its gradient moves each box edge outwards where the background error at the edge exceeds ``level``
    and inwards where it is below, so the box settles on the region the background cannot explain.
    ``box`` (B,4) with grad; ``errors`` (B,H,W) and ``level`` (B,) are constants.
    """
    h, w = errors.shape[-2:]
    soft = soft_box_mask(box, h, w, softness)[:, 0]
    return -((errors.detach() - level.detach()[:, None, None]) * soft).sum(dim=(1, 2)).mean() / (h * w)


def background_mask_target(errors: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Soft foreground target from the background error: 0 at the frame's mean error ``level``, 1 at five
    times it. ``errors`` (B,1,h,w), ``level`` (B,) -> (B,1,h,w) in [0, 1]."""
    ratio = errors / level.clamp_min(1e-8)[:, None, None, None]
    return ((ratio - 1) / 4).clamp(0, 1)


def mask_bce(mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of masks in [1e-4, 1] against targets in [0, 1], mean over everything."""
    m = mask.clamp(1e-4, 1 - 1e-4)
    return -(target * m.log() + (1 - target) * (1 - m).log()).mean()


def scale_saturation_penalty(scale_logits: torch.Tensor, limit: float = 2.0) -> torch.Tensor:
    """Penalty on scale pre-activations beyond +-limit (keeps sizes off s_min/s_max)."""
    return (scale_logits.abs() - limit).clamp_min(0).pow(2).mean()


def inpainter_loss(
    prediction: torch.Tensor, image: torch.Tensor, hole: torch.Tensor, perceptual: torch.Tensor | None = None,
    w_perceptual: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Stage-1 loss: L2 inside the hole (normalised by its area) + w * perceptual distance.

    ``prediction`` is the composited background (input outside the hole). Returns named terms and ``total``.
    """
    area = hole.sum(dim=(1, 2, 3)).clamp_min(1.0)
    l2 = ((prediction - image).pow(2).mean(dim=1, keepdim=True) * hole).sum(dim=(1, 2, 3)) / area
    terms = {"l2": l2.mean()}
    total = terms["l2"]
    if perceptual is not None:
        terms["perceptual"] = perceptual.mean()
        total = total + w_perceptual * terms["perceptual"]
    terms["total"] = total
    return terms
