"""Choosing which proposals to evaluate (section 3.4): Monte Carlo with importance sampling and alternatives.

All losses of the form L = sum_c p_c f(b_c) are estimated as (1/K) sum_k (p_c / q_c) f(b_c), c ~ q.
:func:`choose_cells` returns the chosen cell indices (B, K) and the weights (B, K); the weights carry the
gradient to the logits (q is a constant), so ``weight * f`` is an unbiased estimate of the expectation
whose gradient is the likelihood-ratio (REINFORCE) gradient.

Methods:
- ``importance``: q = p (1 - C eps) + eps over the C inner cells (eq. 10), weight p_c / q_c.
- ``uniform``: q = 1 / C, weight p_c C.
- ``gumbel``: Gumbel-softmax with temperature tau, straight-through: the cell is the argmax of the
  relaxed sample, the weight is 1 in value with the relaxed sample's gradient.
- ``exhaustive``: every inner cell, weight p_c (the exact expectation; K = C).
- ``regression``: the single most probable cell, weight 1 (no gradient to p; for the ablation).
"""

from __future__ import annotations

import torch

METHODS = ("importance", "uniform", "gumbel", "exhaustive", "regression")


def proposal_distribution(probs: torch.Tensor, valid: torch.Tensor, method: str, eps: float) -> torch.Tensor:
    """q (B, C), detached, zero on invalid (border) cells."""
    p = probs.detach()
    n = valid.sum().to(p.dtype)
    if method == "importance":
        q = p * (1 - n * eps) + eps
    elif method == "uniform":
        q = torch.ones_like(p) / n
    else:
        raise ValueError(method)
    return q * valid.to(p.dtype)


def choose_cells(
    probs: torch.Tensor,
    logits: torch.Tensor,
    valid: torch.Tensor,
    method: str = "importance",
    samples: int = 1,
    eps: float = 0.001,
    temperature: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """probs, logits (B, C); valid (C,) bool -> (cells (B, K) long, weights (B, K) float with grad)."""
    b = probs.shape[0]
    if method in ("importance", "uniform"):
        q = proposal_distribution(probs, valid, method, eps)
        # drawn on the CPU with the CPU generator: the same cells on every device (and no device generator needed)
        cells = torch.multinomial(q.cpu(), samples, replacement=True, generator=generator).to(q.device)
        weights = probs.gather(1, cells) / q.gather(1, cells)
        return cells, weights
    if method == "gumbel":
        u = torch.rand(probs.shape[0], samples, probs.shape[1], generator=generator, dtype=probs.dtype)
        u = u.to(probs.device)
        g = -torch.log((-torch.log(u.clamp_min(1e-10))).clamp_min(1e-10))  # Gumbel(0, 1) noise
        y = torch.softmax((logits[:, None, :] + g) / temperature, dim=-1)  # -inf border -> 0
        cells = y.argmax(dim=-1)
        y_c = y.gather(2, cells[..., None])[..., 0]
        return cells, y_c - y_c.detach() + 1.0
    if method == "exhaustive":
        cells = valid.nonzero()[:, 0][None].expand(b, -1)
        return cells, probs.gather(1, cells)
    if method == "regression":
        cells = probs.detach().argmax(dim=1, keepdim=True)
        return cells, torch.ones_like(cells, dtype=probs.dtype)
    raise ValueError(f"unknown sampling method {method!r}; choose one of {', '.join(METHODS)}")
