"""Activation-based proxies: jacov, nwot (NASWOT) and zen (Zen-score).

They look at how the network maps a batch of inputs (codes of the rectifiers, input Jacobians, sensitivity of the
features to a small perturbation) rather than at the weight gradients. The network is a deep copy in train mode.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from predictors.zero_cost._base import (ProxyContext, ProxyNotApplicable, RectifierCapture, as_logits, finite,
                                        register)

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
    """Zen-score (Lin et al., "Zen-NAS", ICCV 2021).

    On a copy re-initialised as in Zen-NAS (Gaussian weights, see :func:`_gaussian_init`), in train mode and in
    the input's dtype (float32, as Zen-NAS), with ``x ~ N(0, I)`` and ``e ~ N(0, I)`` of the batch's shape::

        zen = log E_n || phi(x_n) - phi(x_n + 0.01 e_n) ||_1 + sum_BN log sqrt(mean_c sigma_c^2)

    ``sigma_c^2`` is the (unbiased) batch variance of channel ``c`` at the input of each BatchNorm call in the
    perturbed pass (what Zen-NAS reads from ``running_var``, recorded with a hook so that BatchNorms without
    running statistics count too); a BatchNorm whose input is constant (variance 0, e.g. behind a ``zero`` op)
    carries no signal and is left out instead of contributing ``log 0``.

    ``phi`` is generic rather than Zen-NAS's pre-global-pooling map (which needs the network's cooperation): it is
    the **input of the final classifier**, i.e. the input of the last ``nn.Linear`` called when that layer's
    output is what the network returns (for the search-space graphs: the globally pooled features); otherwise
    ``phi`` is the output logits. Invalid for integer inputs and when the result is not finite (overflow, or
    features that ignore the input).
    """
    if not ctx.float_input:
        raise ProxyNotApplicable("input is not floating point (no Gaussian perturbation)")
    model = ctx.copy()
    _gaussian_init(model)
    variances: list[float] = []
    record = {"on": False}

    def bn_hook(module: nn.Module, inputs: tuple) -> None:
        if record["on"] and inputs and isinstance(inputs[0], Tensor) and inputs[0].shape[0] > 1:
            inp = inputs[0].detach().double()
            dims = [0, *range(2, inp.dim())]
            variances.append(float(inp.var(dim=dims).mean()))

    last: dict[str, Tensor] = {}

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if inputs and isinstance(inputs[0], Tensor):
            last["in"], last["out"] = inputs[0], output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    handles += [m.register_forward_pre_hook(bn_hook) for m in model.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    shape, dev = ctx.x.shape, ctx.x.device
    x1 = torch.randn(shape, dtype=ctx.x.dtype, device=dev)
    x2 = x1 + 0.01 * torch.randn(shape, dtype=ctx.x.dtype, device=dev)

    def features(inp: Tensor) -> Tensor:
        last.clear()
        out = model(inp)
        raw = out[0] if isinstance(out, (tuple, list)) else out
        feats = last["in"] if last and last["out"] is raw else as_logits(out, ctx.batch_size)
        return feats.reshape(ctx.batch_size, -1)

    try:
        with torch.no_grad():
            f1 = features(x1)
            record["on"] = True
            f2 = features(x2)
    finally:
        for h in handles:
            h.remove()
    delta = float((f1 - f2).double().abs().sum(dim=1).mean())
    if delta <= 0 or not math.isfinite(delta):
        raise ProxyNotApplicable(f"feature difference is {delta} (features ignore the input or overflow)")
    bn_term = sum(0.5 * math.log(v) for v in variances if v > 0)
    return finite(math.log(delta) + bn_term, "zen")
