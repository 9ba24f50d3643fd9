"""Empirical neural tangent kernel (NTK) metrics and label-gradient alignment (LGA).

After Mok et al., "Demystifying the Neural Tangent Kernel from a Practical Perspective: Can It Be Trusted for
Neural Architecture Search without Training?" (CVPR 2022). On one batch ``x_1..x_B``::

    G_i   = d(sum_k f_k(x_i)) / d theta          (all trainable parameters, flattened; G is B x P)
    Theta = G G^T                                  (B x B, float64)

The Jacobian ``G`` is computed once per :func:`predictors.compute_proxies` call and shared by every ``ntk_*``
metric and by ``lga`` (when ``lga_steps == 0``); its cost is charged to the first of them that runs.

Jacobians are vectorised with ``torch.func``:

* ``method="sample"`` (the default, ``"auto"``): true per-sample gradients, ``vmap(grad(f_i))`` over the batch
  with ``functional_call`` (one vectorised forward/backward). A BatchNorm in train mode would couple the samples
  through the batch statistics; here it normalises every sample with the statistics of the whole batch (so the
  per-sample outputs equal the batched train-mode forward exactly) *held constant*: the gradient path through the
  batch mean/variance is dropped (it is the NTK of the network with BatchNorm frozen at the batch's statistics).
* ``method="batch"``: ``jacrev`` of the batched forward ``theta -> (sum_k f_k(x_i))_i`` (one forward, ``B``
  vectorised vector-Jacobian products): exact through the batch statistics, as TE-NAS's per-sample backward loop
  over the batched output, but ``B`` times the backward cost (seconds for the larger search-space candidates).
* ``method="loop"``: a Python loop of ``torch.autograd.grad`` over the batched output (reference; also the
  fallback when a vectorised transform fails, e.g. an op without a batching rule).

Train-mode BatchNorms never update running statistics here (the network is a copy).
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap

from predictors.zero_cost._base import (ProxyContext, ProxyNotApplicable, as_logits, cross_entropy, finite,
                                        register)
from predictors.zero_cost.activations import eigen_score

__all__ = ["condition_number", "empirical_ntk", "kernel_regression_accuracy", "label_gradient_alignment",
           "ntk_jacobian"]

Method = Literal["auto", "sample", "batch", "loop"]

#: ``ntk_cond`` is invalid when ``lambda_min <= COND_RTOL * lambda_max`` (numerically singular NTK).
COND_RTOL = 1e-10
#: Ridge of ``ntk_krr``, relative to the mean diagonal of ``Theta_tt``.
KRR_RIDGE = 1e-6


def _couples_batch(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())


def _stop_tracking(model: nn.Module) -> nn.Module:
    """Make every train-mode BatchNorm use batch statistics without updating running ones (in place)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats:
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return model


def _freeze_batch_stats(model: nn.Module, x: Tensor) -> bool:
    """In place: every train-mode BatchNorm normalises with the mean and (biased) variance its input has in the
    batched train-mode forward of ``x``, as constants (eval mode with those as running statistics).

    Returns False (model untouched) when a BatchNorm is called more than once per forward (one set of statistics
    cannot stand for several calls).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    stats: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {m: [] for m in bns}

    def pre_hook(module: nn.Module, inputs: tuple) -> None:
        inp = inputs[0].detach()
        dims = [0, *range(2, inp.dim())]
        stats[module].append((inp.mean(dims), inp.var(dims, unbiased=False)))

    handles = [m.register_forward_pre_hook(pre_hook) for m in bns]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if any(len(v) > 1 for v in stats.values()):
        return False
    for m, v in stats.items():
        if v:
            m.track_running_stats = True
            m.running_mean, m.running_var = v[0][0].clone(), v[0][1].clone()
            m.eval()
    return True


def ntk_jacobian(model: nn.Module, x: Tensor, *, per_logit: bool = False, method: Method = "auto",
                 chunk_size: int | None = None, _may_mutate: bool = False) -> tuple[Tensor, str]:
    """The Jacobian of the network outputs w.r.t. all trainable parameters, and the method used.

    Returns ``G`` of shape ``(B, P)`` (gradient of the sum of logits of each sample) or, with ``per_logit``,
    ``(B, K, P)`` (one row per logit). The network is used in its current train/eval mode and is not modified
    (a deep copy is taken when train-mode BatchNorms have to be changed; see the module docstring for ``method``).
    ``chunk_size`` bounds the number of samples / vector-Jacobian products vectorised at once (memory).
    """
    if x.dim() == 0 or x.shape[0] == 0:
        raise ProxyNotApplicable("empty batch")
    if method not in ("auto", "sample", "batch", "loop"):
        raise ValueError(f"unknown NTK method {method!r}")
    b = int(x.shape[0])
    if method == "auto":
        method = "sample"
    if not any(p.requires_grad for p in model.parameters()):
        raise ProxyNotApplicable("no trainable parameters")
    if _couples_batch(model):
        model = model if _may_mutate else copy.deepcopy(model)
        if method == "sample" and not _freeze_batch_stats(model, x):
            method = "batch"
        if method != "sample":
            _stop_tracking(model)
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    names = list(params)

    def flat(jac: dict[str, Tensor], lead: int) -> Tensor:
        return torch.cat([jac[k].reshape(*jac[k].shape[:lead], -1) for k in names], dim=-1)

    lead = 2 if per_logit else 1
    try:
        if method == "sample":
            def f_one(p: dict[str, Tensor], xi: Tensor) -> Tensor:
                out = as_logits(functional_call(model, (p, buffers), (xi.unsqueeze(0),)), 1)
                return out[0] if per_logit else out.sum()

            inner = jacrev(f_one) if per_logit else grad(f_one)
            jac = vmap(inner, in_dims=(None, 0), randomness="different", chunk_size=chunk_size)(params, x)
            return flat(jac, lead), "sample"
        if method == "batch":
            def f_all(p: dict[str, Tensor]) -> Tensor:
                out = as_logits(functional_call(model, (p, buffers), (x,)), b)
                return out if per_logit else out.sum(dim=1)

            return flat(jacrev(f_all, chunk_size=chunk_size)(params), lead), "batch"
    except ProxyNotApplicable:
        raise
    except Exception:  # noqa: BLE001 - an op without a batching rule: fall back to the plain loop
        pass
    return _loop_jacobian(model, x, per_logit), "loop"


def _loop_jacobian(model: nn.Module, x: Tensor, per_logit: bool) -> Tensor:
    """Reference implementation: one ``torch.autograd.grad`` per output row of the batched forward."""
    params = [p for p in model.parameters() if p.requires_grad]
    b = int(x.shape[0])
    with torch.enable_grad():
        out = as_logits(model(x), b)
        rows = out if per_logit else out.sum(dim=1, keepdim=True)
        grads = []
        for i in range(b):
            per_sample = []
            for k in range(rows.shape[1]):
                gs = torch.autograd.grad(rows[i, k], params, retain_graph=True, allow_unused=True)
                per_sample.append(torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                                             for p, g in zip(params, gs)]))
            grads.append(torch.stack(per_sample))
    g = torch.stack(grads)
    return g if per_logit else g[:, 0]


def empirical_ntk(model: nn.Module, x: Tensor, *, per_logit: bool = False, method: Method = "auto",
                  chunk_size: int | None = None) -> Tensor:
    """The empirical NTK of ``model`` on the batch ``x`` (float64), the model in its current mode.

    Default: ``Theta[i, j] = <G_i, G_j>`` with ``G_i`` the gradient of the sum of the logits of sample ``i``
    w.r.t. every trainable parameter; shape ``(B, B)``. With ``per_logit=True``:
    ``Theta[i, j, a, b] = <d f_a(x_i)/d theta, d f_b(x_j)/d theta>``, shape ``(B, B, K, K)`` (the sum over
    ``a, b`` gives the default kernel). For ``nn.Linear(d, 1)`` the kernel is ``X X^T`` (``+ 1`` with a bias).
    See the module docstring for ``method``.
    """
    g, _ = ntk_jacobian(model, x, per_logit=per_logit, method=method, chunk_size=chunk_size)
    g = g.detach().double()
    if not per_logit:
        return g @ g.T
    return torch.einsum("iap,jbp->ijab", g, g)


def label_gradient_alignment(theta: Tensor, y: Tensor) -> float:
    """LGA (Mok et al. 2022): centred kernel-target alignment of the NTK with the label kernel.

    ``L_ij = +1`` if ``y_i == y_j`` else ``-1``; with ``mean`` the scalar mean of all entries::

        LGA = <Theta - mean(Theta), L - mean(L)>_F / (||Theta - mean(Theta)||_F ||L - mean(L)||_F)

    In ``[-1, 1]``: 1 for ``Theta = L``, -1 for ``Theta = -L``. NaN when either centred kernel is zero (all
    labels equal, or a constant NTK).
    """
    theta = theta.detach().double()
    y = y.detach().reshape(-1).to(theta.device)
    lab = (y[:, None] == y[None, :]).double() * 2.0 - 1.0
    tc, lc = theta - theta.mean(), lab - lab.mean()
    den = float(tc.norm() * lc.norm())
    if den == 0.0 or not math.isfinite(den):
        return float("nan")
    return float((tc * lc).sum()) / den


def condition_number(eigenvalues: Tensor, rtol: float = COND_RTOL) -> float:
    """``lambda_max / lambda_min``; raises :class:`ProxyNotApplicable` when ``lambda_min <= rtol * lambda_max``."""
    lo, hi = float(eigenvalues.min()), float(eigenvalues.max())
    if not hi > 0:
        raise ProxyNotApplicable(f"the NTK is zero or not PSD (lambda_max = {hi:.3g})")
    if lo <= rtol * hi:
        raise ProxyNotApplicable(f"the NTK is numerically singular (lambda_min = {lo:.3g} <= {rtol:g} * "
                                 f"lambda_max = {hi:.3g}; fewer parameters than samples or duplicate gradients)")
    return hi / lo


def kernel_regression_accuracy(theta: Tensor, y: Tensor, num_classes: int, ridge: float = KRR_RIDGE) -> float:
    """NTK kernel regression accuracy: the first ``B // 2`` samples train, the rest are held out.

    ``pred = Theta_vt (Theta_tt + eps I)^-1 Y_t`` with one-hot ``Y_t`` and ``eps = ridge * mean(diag Theta_tt)``;
    the score is the accuracy of ``argmax pred`` on the held-out labels.
    """
    theta = theta.detach().double()
    y = y.detach().reshape(-1).long().to(theta.device)
    b = theta.shape[0]
    n = b // 2
    if n < 1 or b - n < 1:
        raise ProxyNotApplicable("need at least 2 samples for kernel regression")
    ttt, tvt = theta[:n, :n], theta[n:, :n]
    scale = float(torch.diagonal(ttt).mean())
    if not scale > 0:
        raise ProxyNotApplicable("the NTK is zero on the training half")
    yt = torch.nn.functional.one_hot(y[:n], num_classes).double()
    alpha = torch.linalg.solve(ttt + ridge * scale * torch.eye(n, dtype=theta.dtype, device=theta.device), yt)
    pred = tvt @ alpha
    return float((pred.argmax(dim=1) == y[n:]).double().mean())


# --- the registered proxies -------------------------------------------------------------------------------------


def _ntk(ctx: ProxyContext) -> Tensor:
    """The NTK of the copy in train mode on the batch, computed once per context."""
    if "ntk" not in ctx.cache:
        try:
            g, method = ntk_jacobian(ctx.copy(), ctx.x, _may_mutate=True)
        except ProxyNotApplicable as err:
            ctx.cache["ntk"] = err
        else:
            g = g.detach().double()
            theta = g @ g.T
            ctx.cache["ntk"] = theta
            ctx.cache["ntk_method"] = method
    theta = ctx.cache["ntk"]
    if isinstance(theta, Exception):
        raise ProxyNotApplicable(str(theta))
    if not torch.isfinite(theta).all():
        raise ProxyNotApplicable("the NTK is not finite (gradient overflow)")
    return theta


def _eigenvalues(ctx: ProxyContext) -> Tensor:
    if "ntk_eig" not in ctx.cache:
        ctx.cache["ntk_eig"] = torch.linalg.eigvalsh(_ntk(ctx))
    return ctx.cache["ntk_eig"]


@register("ntk_cond")
def ntk_cond(ctx: ProxyContext) -> float:
    """Condition number ``lambda_max / lambda_min`` of the NTK (TE-NAS, Chen et al. ICLR 2021; lower is
    considered better there), eigenvalues by ``eigvalsh``; invalid when ``lambda_min <= 1e-10 lambda_max``."""
    return finite(condition_number(_eigenvalues(ctx)), "ntk_cond")


@register("ntk_trace")
def ntk_trace(ctx: ProxyContext) -> float:
    """``trace(Theta) = sum_i ||G_i||^2`` (KNAS-style NTK norm)."""
    return finite(float(torch.trace(_ntk(ctx))), "ntk_trace")


@register("ntk_fro")
def ntk_fro(ctx: ProxyContext) -> float:
    """Frobenius norm ``||Theta||_F``."""
    return finite(float(_ntk(ctx).norm()), "ntk_fro")


@register("ntk_mean")
def ntk_mean(ctx: ProxyContext) -> float:
    """Mean entry ``mean_ij Theta_ij`` (KNAS, Xu et al. ICML 2021: mean of the gradient kernel)."""
    return finite(float(_ntk(ctx).mean()), "ntk_mean")


@register("ntk_eig")
def ntk_eig(ctx: ProxyContext) -> float:
    """Eigenvalue score ``-sum_i [log(l_i + k) + 1/(l_i + k)]``, ``k = 1e-5``, over NTK eigenvalues (Mok et al.)."""
    return finite(eigen_score(_eigenvalues(ctx)), "ntk_eig")


@register("ntk_krr")
def ntk_krr(ctx: ProxyContext) -> float:
    """Held-out accuracy of NTK kernel regression (see :func:`kernel_regression_accuracy`)."""
    theta = _ntk(ctx)
    return kernel_regression_accuracy(theta, ctx.y, ctx.classes())


@register("lga")
def lga(ctx: ProxyContext) -> float:
    """Label-gradient alignment (see :func:`label_gradient_alignment`).

    With ``lga_steps == 0`` on the NTK at initialisation (shared with ``ntk_*``); otherwise on the NTK of a copy
    trained for ``lga_steps`` steps of plain SGD (learning rate ``lga_lr``) on cross-entropy of the same batch
    (Mok et al.: LGA becomes informative after minimal training).
    """
    if ctx.lga_steps <= 0:
        theta = _ntk(ctx)
    else:
        model = ctx.copy()
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ProxyNotApplicable("no trainable parameters")
        opt = torch.optim.SGD(params, lr=ctx.lga_lr)
        with torch.enable_grad():
            for _ in range(ctx.lga_steps):
                opt.zero_grad(set_to_none=True)
                cross_entropy(model, ctx.x, ctx.y).backward()
                opt.step()
        g, _ = ntk_jacobian(model, ctx.x, _may_mutate=True)
        g = g.detach().double()
        theta = g @ g.T
        if not torch.isfinite(theta).all():
            raise ProxyNotApplicable("the NTK after training is not finite")
    value = label_gradient_alignment(theta, ctx.y)
    if math.isnan(value):
        raise ProxyNotApplicable("LGA undefined: all labels equal or the NTK is constant")
    return value
