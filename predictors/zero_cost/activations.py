"""Activation-based proxies: jacov, nwot (NASWOT) and zen (Zen-score).

They look at how the network maps a batch of inputs (codes of the rectifiers, input Jacobians, sensitivity of the
features to a small perturbation) rather than at the weight gradients. The network is a deep copy in train mode.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from predictors.zero_cost._base import (
    GlobalPoolCapture,
    ProxyContext,
    ProxyNotApplicable,
    RectifierCapture,
    as_logits,
    finite,
    register,
)

__all__ = ["eigen_score", "jacov", "nwot", "zen"]


def eigen_score(eigenvalues: Tensor, k: float = 1e-5) -> float:
    """``-sum_i [log(l_i + k) + 1 / (l_i + k)]`` (Mellor et al. 2020, v1; Mok et al. 2022's NTK eigen score).

    Eigenvalues are clamped at 0 first: the matrices scored are PSD, and rounding may make a zero eigenvalue
    slightly negative (which would otherwise give ``log`` of a negative number).
    """
    v = eigenvalues.double().clamp_min(0.0) + k
    return float(-(torch.log(v) + 1.0 / v).sum())


@register("jacov")
def jacov(ctx: ProxyContext) -> float:
    """Jacobian covariance (Mellor et al., "Neural Architecture Search without Training", arXiv v1, 2020).

    ``J_i = d(sum_k f_k(x_i))/dx_i`` for each sample (one backward pass of the summed logits; BatchNorm in train
    mode couples samples exactly as in the reference code), ``C = corrcoef(J)`` (``B x B``), and the score is
    ``-sum_i [log(l_i + k) + 1/(l_i + k)]`` over the eigenvalues ``l_i`` of ``C`` with ``k = 1e-5``.
    Invalid for integer (token-id) inputs, or when some ``J_i`` is constant (its correlations are undefined).
    """
    if not ctx.float_input:
        raise ProxyNotApplicable("input is not floating point (no input Jacobian)")
    model = ctx.copy()
    x = ctx.x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = as_logits(model(x), ctx.batch_size)
        if not out.requires_grad:
            raise ProxyNotApplicable("the output does not depend on the input")
        (jac,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if jac is None:
        raise ProxyNotApplicable("the output does not depend on the input")
    corr = torch.corrcoef(jac.reshape(ctx.batch_size, -1).double())
    if not torch.isfinite(corr).all():
        raise ProxyNotApplicable("an input Jacobian is constant (undefined correlation)")
    return finite(eigen_score(torch.linalg.eigvalsh(corr)), "jacov")


@register("nwot")
def nwot(ctx: ProxyContext) -> float:
    """NASWOT (Mellor et al., ICML 2021): ``log|det K|`` with ``K = sum_l [c_l c_l^T + (1 - c_l)(1 - c_l)^T]``.

    ``c_l`` (``B x units``) is the binary code ``x > 0`` of the input of rectifier ``l``, so ``K_ij`` counts the
    units on which samples ``i`` and ``j`` agree (both on or both off). Rectifiers are ReLU, LeakyReLU, ReLU6,
    PReLU and RReLU, called as modules or functionally (captured with a ``TorchFunctionMode``); ``x > 0`` is
    their on/off state. ``slogdet`` in float64. Invalid, with a note, when the network has no rectifier (or none
    with the batch as its first dimension) and when ``K`` is singular (e.g. two samples with identical codes).
    """
    model = ctx.copy()
    b = ctx.batch_size
    kernel = torch.zeros(b, b, dtype=torch.float64, device=ctx.x.device)
    used = 0

    def add_codes(inp: Tensor) -> None:
        nonlocal kernel, used
        if inp.dim() == 0 or inp.shape[0] != b:
            return
        c = (inp.detach().reshape(b, -1) > 0).to(torch.float64)
        kernel = kernel + c @ c.T + (1.0 - c) @ (1.0 - c).T
        used += 1

    with torch.no_grad(), RectifierCapture(add_codes):
        model(ctx.x)
    if not used:
        raise ProxyNotApplicable("no ReLU in the network")
    sign, logdet = torch.linalg.slogdet(kernel)
    if float(sign) <= 0 or not math.isfinite(float(logdet)):
        raise ProxyNotApplicable("the code kernel K is singular (samples with identical ReLU codes)")
    return float(logdet)


def _gaussian_init(model: nn.Module) -> None:
    """Zen-NAS initialisation: Conv/Linear weights ~ N(0, 1), biases 0, norm affine weight 1 and bias 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
                nn.init.normal_(m.weight)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
                if getattr(m, "weight", None) is not None:
                    nn.init.ones_(m.weight)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)


@register("zen")
def zen(ctx: ProxyContext) -> float:
    """Zen-score (Lin et al., "Zen-NAS", ICCV 2021), as ``ZeroShotProxy/compute_zen_score.py`` of idstcv/ZenNAS.

    On a copy re-initialised as in Zen-NAS (Gaussian weights, see :func:`_gaussian_init`) with fresh BatchNorm
    running statistics (mean 0, variance 1), in train mode and in the input's dtype (float32, as Zen-NAS), with
    ``x ~ N(0, I)`` and ``e ~ N(0, I)`` of the batch's shape, two forward passes (``x``, then ``x + 0.01 e``)::

        zen = log mean_n || phi(x_n) - phi(x_n + 0.01 e_n) ||_1 + sum_BN log sqrt(mean_c running_var_c)

    ``running_var`` is read from every BatchNorm after the two passes, as Zen-NAS does (with the default momentum
    0.1 it is ``0.81 + 0.09 s1^2 + 0.1 s2^2`` of the two passes' unbiased batch variances; BatchNorms without
    running statistics are left out). ``phi`` is the **pre-global-pooling feature map** (Zen-NAS's
    ``forward_pre_GAP``): the input of the last global pooling op of the forward (see
    :class:`~predictors.zero_cost._base.GlobalPoolCapture`); a network without one uses the input of its final
    classifier (the ``nn.Linear`` whose output the network returns), else the output logits. Zen-NAS also
    removes the residual links while scoring (``no_reslink=True``), which needs the network's cooperation: here
    the network is scored as it is. Invalid for integer inputs and when the result is not finite (overflow, or
    features that ignore the input).
    """
    if not ctx.float_input:
        raise ProxyNotApplicable("input is not floating point (no Gaussian perturbation)")
    model = ctx.copy()
    _gaussian_init(model)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
           and m.running_var is not None]
    for m in bns:
        m.reset_running_stats()
    last: dict[str, Tensor] = {}

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if inputs and isinstance(inputs[0], Tensor):
            last["in"], last["out"] = inputs[0], output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    shape, dev = ctx.x.shape, ctx.x.device
    x1 = torch.randn(shape, dtype=ctx.x.dtype, device=dev)
    x2 = x1 + 0.01 * torch.randn(shape, dtype=ctx.x.dtype, device=dev)

    def features(inp: Tensor) -> Tensor:
        last.clear()
        pools = GlobalPoolCapture()
        with pools:
            out = model(inp)
        raw = out[0] if isinstance(out, (tuple, list)) else out
        if pools.last is not None and pools.last.shape[0] == ctx.batch_size:
            feats = pools.last
        elif last and last["out"] is raw:
            feats = last["in"]
        else:
            feats = as_logits(out, ctx.batch_size)
        return feats.reshape(ctx.batch_size, -1)

    try:
        with torch.no_grad():
            f1 = features(x1)
            f2 = features(x2)
    finally:
        for h in handles:
            h.remove()
    delta = float((f1 - f2).double().abs().sum(dim=1).mean())
    if delta <= 0 or not math.isfinite(delta):
        raise ProxyNotApplicable(f"feature difference is {delta} (features ignore the input or overflow)")
    variances = [float(m.running_var.double().mean()) for m in bns]
    if any(not v > 0 for v in variances):
        raise ProxyNotApplicable("a BatchNorm running variance is zero or NaN (log undefined)")
    bn_term = sum(0.5 * math.log(v) for v in variances)
    return finite(math.log(delta) + bn_term, "zen")
