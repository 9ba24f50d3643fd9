"""Trivial baselines: parameter count, FLOPs and weight norm.

They are hard to beat (Abdelfattah et al. ICLR 2021; NAS-Bench-Suite-Zero): report them beside any proxy.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from predictors.zero_cost._base import _WEIGHT_TYPES, ProxyContext, register

__all__ = ["params", "flops", "l2_norm"]


@register("params")
def params(ctx: ProxyContext) -> float:
    """Number of trainable parameters, ``sum_p numel(p)`` over ``requires_grad`` parameters (shared ones
    counted once). A network without parameters scores 0 (valid)."""
    return float(sum(p.numel() for p in ctx.model.parameters() if p.requires_grad))


@register("flops")
def flops(ctx: ProxyContext) -> float:
    """FLOPs of one forward pass on one sample, counted by ``torch.utils.flop_counter.FlopCounterMode``
    (2 FLOPs per multiply-accumulate of matmul/conv/attention ops; elementwise ops are not counted), in eval
    mode so that single-sample BatchNorm works."""
    model = ctx.copy(train=False)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(ctx.x[:1])
    return float(counter.get_total_flops())


@register("l2_norm")
def l2_norm(ctx: ProxyContext) -> float:
    """Sum of the L2 (Frobenius) norms of the Conv/Linear weights, ``sum_l ||W_l||_2`` (NASLib
    ``l2_norm``). A network without such layers scores 0 (valid, like ``params``)."""
    total = 0.0
    for m in ctx.model.modules():
        w = getattr(m, "weight", None)
        if isinstance(m, _WEIGHT_TYPES) and isinstance(w, torch.Tensor) and w.requires_grad:
            total += float(w.detach().double().norm())
    return total
