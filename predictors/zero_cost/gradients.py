"""Gradient-based saliency proxies: snip, grad_norm, grasp, fisher and synflow.

Each is computed on one minibatch at initialisation and summed over the Conv/Linear weights ``theta_l``
(Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021; NASLib / NAS-Bench-Suite-Zero). ``L`` is
the mean cross-entropy of the logits on the batch, with the network in train mode (BatchNorm uses batch
statistics). A network without trainable parameters or without Conv/Linear layers gets an invalid result.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from predictors.zero_cost._base import (
    ProxyContext,
    ProxyNotApplicable,
    as_logits,
    cross_entropy,
    finite,
    register,
    weight_layers,
)

__all__ = ["fisher", "grad_norm", "grasp", "snip", "synflow"]


def _weight_grads(ctx: ProxyContext) -> tuple[list[Tensor], list[Tensor]]:
    """Conv/Linear weights of a fresh copy and ``dL/dW`` for each (zeros for a layer the loss does not use)."""
    model = ctx.copy()
    weights = [m.weight for m in weight_layers(model)]
    with torch.enable_grad():
        loss = cross_entropy(model, ctx.x, ctx.y)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return ([w.detach() for w in weights],
            [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(weights, grads)])


@register("snip")
def snip(ctx: ProxyContext) -> float:
    """SNIP connection sensitivity (Lee et al., ICLR 2019): ``sum_l sum |theta_l * dL/dtheta_l|``.

    Equal to NASLib's formulation with a multiplicative mask ``m = 1`` (``dL/dm = theta * dL/dtheta``).
    """
    weights, grads = _weight_grads(ctx)
    return finite(sum(float((w * g).abs().double().sum()) for w, g in zip(weights, grads)), "snip")


@register("grad_norm")
def grad_norm(ctx: ProxyContext) -> float:
    """Gradient norm (Abdelfattah et al. 2021): ``sum_l ||dL/dW_l||_2`` over Conv/Linear weights."""
    _, grads = _weight_grads(ctx)
    return finite(sum(float(g.double().norm()) for g in grads), "grad_norm")


@register("grasp")
def grasp(ctx: ProxyContext) -> float:
    """GraSP (Wang et al., ICLR 2020) as in NASLib: ``-sum_l sum theta_l * (H g)_l``.

    ``g = dL/dtheta`` and the Hessian-vector product ``H g = d(stopgrad(g) . g)/dtheta``: one forward pass, the
    gradient with ``create_graph=True``, then a second differentiation (temperature 1, the whole batch at once;
    NASLib's two forward passes compute the same quantities).
    """
    model = ctx.copy()
    weights = [m.weight for m in weight_layers(model)]
    with torch.enable_grad():
        loss = cross_entropy(model, ctx.x, ctx.y)
        g = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        used = [i for i, gi in enumerate(g) if gi is not None]
        if not used:
            raise ProxyNotApplicable("the loss does not depend on any Conv/Linear weight")
        z = sum((g[i].detach() * g[i]).sum() for i in used)
        if not z.requires_grad:  # the gradient does not depend on the weights: H = 0
            return 0.0
        hg = torch.autograd.grad(z, [weights[i] for i in used], allow_unused=True)
    total = 0.0
    for i, h in zip(used, hg):
        if h is not None:
            total -= float((weights[i].detach() * h).double().sum())
    return finite(total, "grasp")


@register("fisher")
def fisher(ctx: ProxyContext) -> float:
    """Fisher information of the activations (Theis et al. 2018; Turner et al. 2020), as the reference code.

    For every Conv/Linear output ``a`` of layer ``l`` (the layer outputs zero-cost-nas and NASLib hook) with
    gradient ``g = dL/da``, per output channel ``k``::

        del_lk = 0.5 * mean_n (sum_spatial a_nk * g_nk)^2        (summed over the calls of a shared layer)

    The reference code (``foresight/pruners/measures/fisher.py`` of SamsungLabs/zero-cost-nas, as NASLib)
    broadcasts each channel value over the channel's weights, ``weight.shape[1:]``, before summing every
    element, so each layer is weighted by its fan-in::

        fisher = sum_l prod(W_l.shape[1:]) * sum_k |del_lk|

    (``in_channels / groups * kernel area`` for a convolution, ``in_features`` for a linear layer). The channel
    axis is dim 1 for convolutions and the last dim for linear layers (token inputs ``(B, S, D)`` sum over
    ``S``).
    """
    model = ctx.copy()
    layers = weight_layers(model)
    acts: list[tuple[Tensor, int, int]] = []

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if isinstance(output, Tensor) and output.requires_grad:
            fan_in = math.prod(module.weight.shape[1:])
            acts.append((output, 1 if isinstance(module, nn.modules.conv._ConvNd) else -1, fan_in))

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.enable_grad():
            loss = cross_entropy(model, ctx.x, ctx.y)
            grads = torch.autograd.grad(loss, [a for a, _, _ in acts], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    total, used = 0.0, 0
    for (a, ch, fan_in), g in zip(acts, grads):
        if g is None:
            continue
        prod = (a.detach() * g).double()
        if prod.dim() < 2:
            prod = prod.reshape(-1, 1)
        prod = prod.movedim(ch, 1) if ch != 1 else prod
        g_nk = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
        total += fan_in * float(g_nk.pow(2).mean(0).mul(0.5).abs().sum())
        used += 1
    if not used:
        raise ProxyNotApplicable("no Conv/Linear output reaches the loss")
    return finite(total, "fisher")


_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def _drop_norms(model: nn.Module) -> nn.Module:
    """Replace every normalisation layer by ``nn.Identity`` (in place); returns the model."""
    if isinstance(model, _NORM_TYPES):
        return nn.Identity()
    for name, child in list(model.named_children()):
        setattr(model, name, _drop_norms(child))
    return model


@register("synflow")
def synflow(ctx: ProxyContext) -> float:
    """SynFlow (Tanaka et al., NeurIPS 2020; as a proxy Abdelfattah et al., ICLR 2021), data-free.

    On a float64 copy with every parameter and buffer replaced by its absolute value, normalisation layers
    (BatchNorm, InstanceNorm, LayerNorm, GroupNorm) replaced by identities and the network in eval mode, feed
    an all-ones input of shape ``(1, *input_shape)`` and let ``R = sum(f(1))``; the score is
    ``sum_l sum |theta_l * dR/dtheta_l|`` over Conv/Linear weights. Float64 delays overflow; an infinite or
    NaN ``R`` or score is reported invalid. The caller's weights are never touched (the copy is mutated).
    """
    model = _drop_norms(ctx.copy(train=False)).double()
    weights = [m.weight for m in weight_layers(model)]
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.abs_()
    shape = (1, *ctx.x.shape[1:])
    ones = (torch.ones(shape, dtype=torch.float64, device=ctx.x.device) if ctx.float_input
            else torch.ones(shape, dtype=ctx.x.dtype, device=ctx.x.device))
    with torch.enable_grad():
        r = as_logits(model(ones), 1).sum()
        if not math.isfinite(float(r.detach())):
            raise ProxyNotApplicable(f"synflow overflow: R = {float(r)} in float64")
        grads = torch.autograd.grad(r, weights, allow_unused=True)
    total = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads) if g is not None)
    return finite(total, "synflow")
