"""Empirical neural tangent kernel (NTK) metrics and label-gradient alignment (LGA).

On one batch ``x_1..x_B``, with the network in train mode (BatchNorm normalises with the batch's statistics)::

    G_i   = d(sum_k f_k(x_i)) / d theta          (theta: the parameters named ``*weight*``; G is B x P)
    Theta = G G^T                                  (B x B, float64)

**Kernel (default: TE-NAS).** As TE-NAS (Chen et al., ICLR 2021; ``lib/procedures/ntk.py`` of
VITA-Group/TENAS: one batched train-mode forward, one backward per sample of its summed logits, gradients of the
parameters whose name contains ``weight``, i.e. Conv/Linear/norm weights without biases): ``G_i`` is the gradient
of sample ``i``'s summed logits *through the batched forward*, so it flows through the BatchNorm batch mean and
variance (every sample's output depends on every input). ``parameters="all"`` takes every trainable parameter.

Jacobian methods (``method``):

* ``"batch"`` (the default, ``"auto"``): ``jacrev`` of the batched forward ``theta -> (sum_k f_k(x_i))_i``: one
  forward and ``B`` vectorised vector-Jacobian products, exact through the batch statistics (TE-NAS's kernel),
  at ``B`` times the backward cost.
* ``"loop"``: the same kernel by a Python loop of ``torch.autograd.grad`` over the batched output (the reference,
  as TE-NAS's code; also the fallback when a vectorised transform fails, e.g. an op without a batching rule).
* ``"frozen_bn"`` (older name ``"sample"``): per-sample gradients ``vmap(grad(f_i))`` with every train-mode
  BatchNorm normalising each sample with the whole batch's statistics *held constant* (the per-sample outputs
  equal the batched train-mode forward exactly, but the gradient path through the batch mean/variance is
  dropped): the NTK of the network with BatchNorm frozen at the batch's statistics. One vectorised
  forward/backward: about ten times cheaper than ``"batch"`` on NB201-sized cells, and a different kernel.

Without a train-mode BatchNorm no sample depends on another, the three kernels coincide and ``"batch"`` and
``"frozen_bn"`` both compute it per sample (``vmap(grad)``, reported as method ``"per_sample"``).

The kernel is computed once per :func:`predictors.compute_proxies` call and shared by every ``ntk_*`` metric and
by ``lga`` at initialisation; its cost is charged to the first of them that runs. Eigenvalue scores
(``ntk_cond``, ``ntk_eig``) are taken on the trace-normalised kernel ``Theta / trace(Theta)`` (eigenvalues
summing to 1), so that they do not depend on the kernel's scale; ``ntk_trace``, ``ntk_fro`` and ``ntk_mean`` are
norms of the raw kernel. Train-mode BatchNorms never update running statistics here (the network is a copy).

**LGA** (Mok et al., CVPR 2022, ``label_align_eig.py`` of naver-ai/demystifying-ntk) uses the same kernel over
the weights *except the classifier's* (the ``nn.Linear`` whose output the network returns). At initialisation it
shares the Jacobian with ``ntk_*``; after training (:class:`LgaTraining`) it is measured on a copy trained for a
few steps on batches other than the measured one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap

from predictors.zero_cost._base import ProxyContext, ProxyNotApplicable, as_logits, finite, register
from predictors.zero_cost.activations import eigen_score

__all__ = ["LgaTraining", "condition_number", "empirical_ntk", "kernel_regression_accuracy",
           "label_gradient_alignment", "mok_sgd", "ntk_jacobian"]

Method = Literal["auto", "batch", "loop", "frozen_bn", "sample"]
Parameters = Literal["weights", "all"]
METHODS: tuple[str, ...] = ("auto", "batch", "loop", "frozen_bn", "sample")

#: ``ntk_cond`` is invalid when ``lambda_min <= COND_RTOL * lambda_max`` (numerically singular NTK).
COND_RTOL = 1e-10
#: Ridge of ``ntk_krr``, relative to the mean diagonal of ``Theta_tt``.
KRR_RIDGE = 1e-6


def mok_sgd(model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser of Mok et al.'s "after training" LGA: SGD, lr 0.025, momentum 0.9, weight decay 3e-4
    (``ntk_nas_train/nasbench2_pred.py`` of naver-ai/demystifying-ntk)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=0.025, momentum=0.9, weight_decay=3e-4)


@dataclass(frozen=True)
class LgaTraining:
    """The minimal training LGA is measured after (Mok et al. 2022: LGA informs only after some training).

    A copy of the network (train mode) takes one optimiser step of mean cross-entropy per batch, in order; the
    alignment is then measured on the proxies' batch, which must not be one of these (Mok et al. train on the
    training set and measure on a held-out batch; training on the measured batch would let the kernel memorise
    its labels).

    Attributes:
        batches: ``(x, y)`` training batches, one step each (``steps == len(batches)``).
        make_optimizer: builds the optimiser from the model copy (default :func:`mok_sgd`); pass the
            benchmark's own optimiser to follow its protocol.
        grad_clip: clip the global gradient norm to this value before each step (``None``: no clipping).
        label_smoothing: label smoothing of the training loss.
    """

    batches: tuple[tuple[Tensor, Tensor], ...]
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer] = mok_sgd
    grad_clip: float | None = None
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "batches", tuple((bx, by) for bx, by in self.batches))
        if not self.batches:
            raise ValueError("LgaTraining needs at least one training batch")

    @property
    def steps(self) -> int:
        """Optimiser steps taken: one per batch."""
        return len(self.batches)


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


def _selected(model: nn.Module, parameters: Parameters) -> list[str]:
    """Names of the trainable parameters the kernel differentiates (TE-NAS: those named ``*weight*``)."""
    if parameters not in ("weights", "all"):
        raise ValueError(f"unknown NTK parameters {parameters!r}; expected 'weights' or 'all'")
    names = [k for k, v in model.named_parameters() if v.requires_grad]
    if not names:
        raise ProxyNotApplicable("no trainable parameters")
    if parameters == "weights":
        names = [k for k in names if "weight" in k.rsplit(".", 1)[-1]]
        if not names:
            raise ProxyNotApplicable("no trainable weight parameter (only biases or other parameters)")
    return names


def jacobian_blocks(model: nn.Module, x: Tensor, *, per_logit: bool = False, method: Method = "auto",
                    parameters: Parameters = "weights", chunk_size: int | None = None,
                    _may_mutate: bool = False) -> tuple[dict[str, Tensor], str]:
    """The Jacobian of the outputs w.r.t. each selected parameter, ``{name: (B, numel)}`` (``(B, K, numel)``
    with ``per_logit``), and the method used; see :func:`ntk_jacobian`."""
    if x.dim() == 0 or x.shape[0] == 0:
        raise ProxyNotApplicable("empty batch")
    if method not in METHODS:
        raise ValueError(f"unknown NTK method {method!r}; expected one of {', '.join(METHODS)}")
    b = int(x.shape[0])
    method = {"auto": "batch", "sample": "frozen_bn"}.get(method, method)
    names = _selected(model, parameters)
    if _couples_batch(model):
        model = model if _may_mutate else copy.deepcopy(model)
        if method == "frozen_bn" and not _freeze_batch_stats(model, x):
            raise ProxyNotApplicable("a BatchNorm is called more than once per forward: no frozen-BN kernel")
        if method != "frozen_bn":
            _stop_tracking(model)
    elif method != "loop":
        method = "per_sample"
    chosen = set(names)
    params = {k: v.detach() for k, v in model.named_parameters() if k in chosen}
    fixed = {k: v.detach() for k, v in model.named_parameters() if k not in chosen}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    lead = 2 if per_logit else 1

    def shaped(jac: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: jac[k].reshape(*jac[k].shape[:lead], -1) for k in names}

    try:
        if method in ("frozen_bn", "per_sample"):
            def f_one(p: dict[str, Tensor], xi: Tensor) -> Tensor:
                out = as_logits(functional_call(model, (p, fixed, buffers), (xi.unsqueeze(0),)), 1)
                return out[0] if per_logit else out.sum()

            inner = jacrev(f_one) if per_logit else grad(f_one)
            jac = vmap(inner, in_dims=(None, 0), randomness="different", chunk_size=chunk_size)(params, x)
            return shaped(jac), method
        if method == "batch":
            def f_all(p: dict[str, Tensor]) -> Tensor:
                out = as_logits(functional_call(model, (p, fixed, buffers), (x,)), b)
                return out if per_logit else out.sum(dim=1)

            return shaped(jacrev(f_all, chunk_size=chunk_size)(params)), "batch"
    except ProxyNotApplicable:
        raise
    except Exception:  # noqa: BLE001 - an op without a batching rule: fall back to the plain loop
        if method == "frozen_bn":  # the loop differentiates through the batch statistics: another kernel
            raise
    return _loop_jacobian(model, x, per_logit, names), "loop"


def ntk_jacobian(model: nn.Module, x: Tensor, *, per_logit: bool = False, method: Method = "auto",
                 parameters: Parameters = "weights", chunk_size: int | None = None,
                 _may_mutate: bool = False) -> tuple[Tensor, str]:
    """The Jacobian of the network outputs w.r.t. the kernel's parameters, and the method used.

    Returns ``G`` of shape ``(B, P)`` (gradient of the sum of logits of each sample) or, with ``per_logit``,
    ``(B, K, P)`` (one row per logit), columns in ``named_parameters`` order. ``parameters="weights"`` (TE-NAS)
    differentiates the parameters whose name contains ``weight``, ``"all"`` every trainable one. The network is
    used in its current train/eval mode and is not modified (a deep copy is taken when train-mode BatchNorms
    have to be changed). ``method`` is ``"batch"`` (default), ``"loop"`` or ``"frozen_bn"`` (see the module
    docstring); the method returned is ``"per_sample"`` when no train-mode BatchNorm couples the samples.
    ``chunk_size`` bounds the samples / vector-Jacobian products vectorised at once (memory).
    """
    blocks, used = jacobian_blocks(model, x, per_logit=per_logit, method=method, parameters=parameters,
                                   chunk_size=chunk_size, _may_mutate=_may_mutate)
    return torch.cat(list(blocks.values()), dim=-1), used


def _loop_jacobian(model: nn.Module, x: Tensor, per_logit: bool, names: Sequence[str]) -> dict[str, Tensor]:
    """Reference implementation: one ``torch.autograd.grad`` per output row of the batched forward."""
    named = dict(model.named_parameters())
    params = [named[k] for k in names]
    b = int(x.shape[0])
    with torch.enable_grad():
        out = as_logits(model(x), b)
        rows = out if per_logit else out.sum(dim=1, keepdim=True)
        per_param: list[list[Tensor]] = [[] for _ in names]
        for i in range(b):
            per_row: list[list[Tensor]] = [[] for _ in names]
            for k in range(rows.shape[1]):
                gs = torch.autograd.grad(rows[i, k], params, retain_graph=True, allow_unused=True)
                for j, (p, g) in enumerate(zip(params, gs)):
                    per_row[j].append(torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1))
            for j in range(len(names)):
                per_param[j].append(torch.stack(per_row[j]))
    return {k: torch.stack(v) if per_logit else torch.stack(v)[:, 0] for k, v in zip(names, per_param)}


def empirical_ntk(model: nn.Module, x: Tensor, *, per_logit: bool = False, method: Method = "auto",
                  parameters: Parameters = "weights", chunk_size: int | None = None) -> Tensor:
    """The empirical NTK of ``model`` on the batch ``x`` (float64), the model in its current mode.

    Default (TE-NAS): ``Theta[i, j] = <G_i, G_j>`` with ``G_i`` the gradient of the sum of the logits of sample
    ``i`` (batched forward) w.r.t. every trainable parameter named ``*weight*``; shape ``(B, B)``. With
    ``per_logit=True``: ``Theta[i, j, a, b] = <d f_a(x_i)/d theta, d f_b(x_j)/d theta>``, shape ``(B, B, K, K)``
    (the sum over ``a, b`` gives the default kernel). For ``nn.Linear(d, 1)`` the kernel is ``X X^T``
    (``X X^T + 1`` with ``parameters="all"`` and a bias). See the module docstring for ``method``.
    """
    g, _ = ntk_jacobian(model, x, per_logit=per_logit, method=method, parameters=parameters,
                        chunk_size=chunk_size)
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
    yt = F.one_hot(y[:n], num_classes).double()
    alpha = torch.linalg.solve(ttt + ridge * scale * torch.eye(n, dtype=theta.dtype, device=theta.device), yt)
    pred = tvt @ alpha
    return float((pred.argmax(dim=1) == y[n:]).double().mean())


# --- the kernels of one proxy call ------------------------------------------------------------------------------


def _classifier_prefix(model: nn.Module, x: Tensor) -> str | None:
    """The module name of the classifier: the ``nn.Linear`` whose output tensor is what the network returns
    (Mok et al. leave ``classifier`` weights out of LGA's kernel); ``None`` when the output is not one."""
    names = {m: n for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    last: dict[str, object] = {}

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        last["module"], last["out"] = module, output

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    if isinstance(out, dict):
        out = out["logits"] if "logits" in out else next(iter(out.values()))
    if isinstance(out, (tuple, list)):
        out = out[0]
    if last and last["out"] is out:
        return names[last["module"]]  # type: ignore[index]
    return None


@dataclass(frozen=True)
class _Kernels:
    """The NTK over the kernel's parameters and LGA's NTK (the same without the classifier's weights)."""

    theta: Tensor
    theta_lga: Tensor
    method: str


def _kernels(model: nn.Module, x: Tensor, method: Method) -> _Kernels:
    """Both kernels of ``model`` (mutated: a private copy in train mode) from one Jacobian."""
    prefix = _classifier_prefix(copy.deepcopy(model), x)
    blocks, used = jacobian_blocks(model, x, method=method, _may_mutate=True)
    theta = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64, device=x.device)
    classifier = torch.zeros_like(theta)
    for name, g in blocks.items():
        g = g.detach().double()
        gram = g @ g.T
        theta += gram
        if prefix is not None and name.rpartition(".")[0] == prefix:
            classifier += gram
    theta_lga = theta - classifier if bool(classifier.any()) and bool((theta - classifier).any()) else theta
    return _Kernels(theta, theta_lga, used)


def _ntk(ctx: ProxyContext) -> _Kernels:
    """The kernels of the copy in train mode on the batch, computed once per context."""
    if "ntk" not in ctx.cache:
        try:
            ctx.cache["ntk"] = _kernels(ctx.copy(), ctx.x, ctx.ntk_method)
        except ProxyNotApplicable as err:
            ctx.cache["ntk"] = err
    kernels = ctx.cache["ntk"]
    if isinstance(kernels, Exception):
        raise ProxyNotApplicable(str(kernels))
    if not torch.isfinite(kernels.theta).all():
        raise ProxyNotApplicable("the NTK is not finite (gradient overflow)")
    return kernels


def _eigenvalues(ctx: ProxyContext) -> Tensor:
    """Eigenvalues of the trace-normalised NTK ``Theta / trace(Theta)`` (they sum to 1)."""
    if "ntk_eig" not in ctx.cache:
        theta = _ntk(ctx).theta
        trace = float(torch.trace(theta))
        if not trace > 0:
            raise ProxyNotApplicable(f"the NTK has trace {trace:.3g} (all gradients zero)")
        ctx.cache["ntk_eig"] = torch.linalg.eigvalsh(theta / trace)
    return ctx.cache["ntk_eig"]


# --- the registered proxies -------------------------------------------------------------------------------------


@register("ntk_cond")
def ntk_cond(ctx: ProxyContext) -> float:
    """Negated condition number ``-lambda_max / lambda_min`` of the NTK, higher is better (TE-NAS, Chen et al.
    ICLR 2021, ranks by ``-cond``). Eigenvalues by ``eigvalsh`` of the trace-normalised kernel; invalid (ranked
    last, as TE-NAS's unbounded ``cond``) when ``lambda_min <= 1e-10 lambda_max``."""
    return finite(-condition_number(_eigenvalues(ctx)), "ntk_cond")


@register("ntk_trace")
def ntk_trace(ctx: ProxyContext) -> float:
    """``trace(Theta) = sum_i ||G_i||^2`` (KNAS-style NTK norm)."""
    return finite(float(torch.trace(_ntk(ctx).theta)), "ntk_trace")


@register("ntk_fro")
def ntk_fro(ctx: ProxyContext) -> float:
    """Frobenius norm ``||Theta||_F``."""
    return finite(float(_ntk(ctx).theta.norm()), "ntk_fro")


@register("ntk_mean")
def ntk_mean(ctx: ProxyContext) -> float:
    """Mean entry ``mean_ij Theta_ij`` (KNAS, Xu et al. ICML 2021: mean of the gradient kernel)."""
    return finite(float(_ntk(ctx).theta.mean()), "ntk_mean")


@register("ntk_eig")
def ntk_eig(ctx: ProxyContext) -> float:
    """Eigenvalue score ``-sum_i [log(l_i + k) + 1/(l_i + k)]``, ``k = 1e-5`` (Mok et al.), over the eigenvalues
    ``l_i`` of the trace-normalised NTK ``Theta / trace(Theta)``."""
    return finite(eigen_score(_eigenvalues(ctx)), "ntk_eig")


@register("ntk_krr")
def ntk_krr(ctx: ProxyContext) -> float:
    """Held-out accuracy of NTK kernel regression (see :func:`kernel_regression_accuracy`)."""
    return kernel_regression_accuracy(_ntk(ctx).theta, ctx.y, ctx.classes())


def _train_for_lga(ctx: ProxyContext, training: LgaTraining) -> nn.Module:
    """A copy of the network after ``training.steps`` optimiser steps (train mode) on the training batches."""
    model = ctx.copy()
    if not any(p.requires_grad for p in model.parameters()):
        raise ProxyNotApplicable("no trainable parameters")
    optimizer = training.make_optimizer(model)
    dev = ctx.x.device
    with torch.enable_grad():
        for i, (bx, by) in enumerate(training.batches):
            bx, by = bx.detach().to(dev), by.detach().to(dev).reshape(-1).long()
            logits = as_logits(model(bx), int(bx.shape[0]))
            loss = F.cross_entropy(logits, by, label_smoothing=training.label_smoothing)
            if not math.isfinite(float(loss.detach())):
                raise ProxyNotApplicable(f"non-finite training loss at LGA step {i + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if training.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip)
            optimizer.step()
    return model


@register("lga")
def lga(ctx: ProxyContext) -> float:
    """Label-gradient alignment (see :func:`label_gradient_alignment`) of the NTK without the classifier's weights
    (Mok et al. 2022; all weights when the classifier is the only weighted layer).

    Without ``lga_training``: at initialisation, on the kernel shared with ``ntk_*``. With it: on the kernel of a
    copy trained by :class:`LgaTraining` (its steps on its own batches, never the measured one), measured on the
    proxies' batch with the same kernel definition (``ntk_method``).
    """
    if ctx.lga_training is None:
        theta = _ntk(ctx).theta_lga
    else:
        theta = _kernels(_train_for_lga(ctx, ctx.lga_training), ctx.x, ctx.ntk_method).theta_lga
        if not torch.isfinite(theta).all():
            raise ProxyNotApplicable("the NTK after training is not finite")
    value = label_gradient_alignment(theta, ctx.y)
    if math.isnan(value):
        raise ProxyNotApplicable("LGA undefined: all labels equal or the NTK is constant")
    return value
