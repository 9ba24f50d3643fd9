"""Zero-cost proxies: score an untrained ``torch.nn.Module`` on one batch, to rank architectures before training.

``compute_proxies(model, x, y)`` returns ``{name: ProxyResult}``. An invalid result (the proxy could not apply,
raised, or produced NaN/inf) has ``valid=False``, a ``note`` saying why, and the documented sentinel
``value == float("-inf")`` so that it ranks last under "higher is better". The caller's model is never modified:
each proxy works on its own ``copy.deepcopy`` (weights, buffers, train/eval mode and ``.grad`` of the original
stay as they were), and the torch RNG is re-seeded with ``seed`` before each proxy inside ``fork_rng`` (the
caller's RNG state is restored afterwards), so results are deterministic for a seed.

Families (one module each): :mod:`~predictors.zero_cost.baselines` (params, flops, l2_norm),
:mod:`~predictors.zero_cost.gradients` (snip, grad_norm, grasp, fisher, synflow),
:mod:`~predictors.zero_cost.activations` (jacov, nwot, zen), :mod:`~predictors.zero_cost.ntk` (ntk_*, lga).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from predictors.zero_cost import activations, baselines, gradients, ntk  # noqa: F401 - register the proxies
from predictors.zero_cost._base import INVALID, PROXY_NAMES, REGISTRY, ProxyContext, ProxyNotApplicable, ProxyResult
from predictors.zero_cost.activations import eigen_score
from predictors.zero_cost.ntk import (
    METHODS,
    LgaTraining,
    condition_number,
    empirical_ntk,
    kernel_regression_accuracy,
    label_gradient_alignment,
    mok_sgd,
    ntk_jacobian,
)

__all__ = ["INVALID", "PROXY_NAMES", "LgaTraining", "ProxyNotApplicable", "ProxyResult", "available_proxies",
           "compute_proxies", "condition_number", "eigen_score", "empirical_ntk", "kernel_regression_accuracy",
           "label_gradient_alignment", "mok_sgd", "ntk_jacobian"]


def available_proxies() -> tuple[str, ...]:
    """The names of the registered proxies, in the canonical order of :data:`PROXY_NAMES`."""
    return tuple(n for n in PROXY_NAMES if n in REGISTRY)


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def compute_proxies(model: nn.Module, x: Tensor, y: Tensor, *, names: Iterable[str] | str | None = None,
                    num_classes: int | None = None, seed: int = 0, device: torch.device | str | None = None,
                    ntk_method: str = "batch", lga_training: LgaTraining | None = None) -> dict[str, ProxyResult]:
    """Compute zero-cost proxies of ``model`` on the batch ``(x, y)``.

    Args:
        model: any ``nn.Module`` mapping ``x`` (``(B, ...)``) to logits ``(B, K)`` (other output shapes are
            flattened to ``(B, -1)``; a tuple's first element or a dict's ``"logits"`` is used). Never modified.
        x: one input batch (images ``(B, C, H, W)``, sequences ``(B, C, L)``, tokens ``(B, S, D)``; integer
            token ids work for the proxies that do not differentiate w.r.t. the input).
        y: integer class labels ``(B,)``.
        names: the proxies to compute (default: all of :data:`PROXY_NAMES`); unknown names raise ``ValueError``.
        num_classes: number of classes for ``ntk_krr``'s one-hot targets (default: ``max(y) + 1``).
        seed: the torch seed set before each proxy.
        device: where to run (default: the model's device); the model is copied there, never moved.
        ntk_method: the NTK of ``ntk_*`` and ``lga``: ``"batch"`` (default: TE-NAS's kernel, gradients through
            the BatchNorm batch statistics), ``"frozen_bn"`` (BatchNorm frozen at the batch's statistics; about
            ten times cheaper on BatchNorm networks) or ``"loop"`` (TE-NAS's kernel by a plain autograd loop).
        lga_training: measure ``lga`` after this minimal training (:class:`LgaTraining`: optimiser steps on
            batches other than ``(x, y)``) instead of at initialisation.

    Returns:
        ``{name: ProxyResult}`` in the order asked. Never raises for a network a proxy does not apply to
        (no ReLU, no BatchNorm, no parameters, ...): that proxy is invalid with a note instead.
    """
    if names is None:
        wanted = list(PROXY_NAMES)
    else:
        wanted = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in wanted if n not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown proxies {unknown}; available: {', '.join(available_proxies())}")
    if ntk_method not in METHODS:
        raise ValueError(f"unknown ntk_method {ntk_method!r}; expected one of {', '.join(METHODS)}")
    if lga_training is not None and not isinstance(lga_training, LgaTraining):
        raise TypeError(f"lga_training must be an LgaTraining, not {type(lga_training).__name__}")
    if lga_training is not None:
        for i, (bx, _) in enumerate(lga_training.batches):
            if bx.shape == x.shape and torch.equal(bx.detach().cpu(), x.detach().cpu()):
                raise ValueError(f"LGA training batch {i} is the measured batch x; train on other batches")
    dev = torch.device(device) if device is not None else _model_device(model)
    x = x.detach().to(dev)
    y = y.detach().to(dev).reshape(-1)
    if x.is_inference():  # made under torch.inference_mode(): autograd cannot save it
        x = x.clone()
    if not y.is_floating_point() or torch.equal(y, y.round()):
        y = y.long()
    ctx = ProxyContext(model=model, x=x, y=y, num_classes=num_classes, seed=seed,
                       device=dev if device is not None else None, ntk_method=ntk_method,
                       lga_training=lga_training)
    rng_devices = [dev] if dev.type == "cuda" else []
    results: dict[str, ProxyResult] = {}
    for name in wanted:
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            start = time.perf_counter()
            note = ""
            try:
                value = float(REGISTRY[name](ctx))
                if not math.isfinite(value):
                    note = f"non-finite value ({value})"
            except ProxyNotApplicable as err:
                value, note = INVALID, str(err) or "not applicable"
            except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError,
                    ArithmeticError, NotImplementedError, AssertionError) as err:
                value, note = INVALID, f"failed: {type(err).__name__}: {err}"
            seconds = time.perf_counter() - start
        valid = not note
        results[name] = ProxyResult(name, value if valid else INVALID, seconds, valid, note)
    return results
