"""Predictors of architecture quality before (or instead of) training.

Zero-cost proxies
-----------------
::

    from predictors import compute_proxies, PROXY_NAMES, ProxyResult, available_proxies

    results = compute_proxies(model, x, y)                 # all proxies on one batch
    results = compute_proxies(model, x, y, names=["synflow", "nwot"], seed=0)
    results["nwot"].value, results["nwot"].valid, results["nwot"].seconds, results["nwot"].note

``model`` is any plain ``torch.nn.Module`` (this package imports neither ``nas`` nor Ray, SQLAlchemy, Optuna or
onnxruntime, and needs no GPU). Proxies (see ``predictors.zero_cost`` for formulas and references):

==============  ============================================================================================
params, flops   trainable parameters; FLOPs of one forward pass on one sample (FlopCounterMode)
l2_norm         sum of Conv/Linear weight norms
synflow         sum |theta * dR/dtheta|, R = sum f(1) on |theta|, float64, no normalisation layers
snip            sum |theta * dL/dtheta| (cross-entropy on the batch)
grad_norm       sum_l ||dL/dW_l||
grasp           -sum theta * (H g) (Hessian-vector product)
fisher          sum over Conv/Linear output channels of 0.5 mean_n (sum_spatial a dL/da)^2
jacov           eigenvalue score of the correlation matrix of the input Jacobians (NASWOT v1)
nwot            log|det K| of the ReLU binary-code agreement kernel (NASWOT)
zen             log E|phi(x) - phi(x + 0.01 e)| + sum log sqrt(BN variance) (Zen-NAS)
ntk_*           condition number, trace, Frobenius norm, mean, eigen score, kernel-regression accuracy
lga             label-gradient alignment of the NTK (optionally after ``LgaTraining`` on other batches)
==============  ============================================================================================

**Invalid results.** ``ProxyResult.valid`` is False when the proxy could not apply (e.g. ``nwot`` on a network
without ReLU, any gradient proxy on a network without parameters) or its raw value was NaN/inf; then
``value == float("-inf")`` (the documented sentinel, so an invalid result ranks last when higher is better) and
``note`` says why. Every proxy is "higher is better" (``ntk_cond`` is ``-cond``); ``params`` and ``flops`` are sizes.

ONNX-Net text predictor
-----------------------
::

    from predictors import OnnxNetPredictor

    predictor = OnnxNetPredictor.default()          # pretrained, shipped inside the package
    scores = predictor.predict(["net.onnx", onnx_bytes, model_proto])   # numpy array, higher = better
    predictor.fit(models, accuracies)               # fine-tune on your labels (OnnxNetPredictor() is untrained)
    predictor.save("mine"); OnnxNetPredictor.load("mine")               # mine.json + mine.safetensors

``encode_onnx(model)`` gives the text form it reads (see ``predictors.onnx_text``; ``OnnxTextEncoder()`` keeps its
memo tables across models). ``nas predictor info PATH`` prints which corpora a predictor file learned from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from predictors.onnx_net import EncodedGraph, OnnxNetPredictor, PredictorConfig, PredictorError, SizeReference
from predictors.onnx_text import OnnxTextEncoder, OnnxTextError, encode_lines, encode_onnx

#: Names served by :mod:`predictors.zero_cost`, which imports torch: loaded on first use (PEP 562), so that
#: ``from predictors import OnnxNetPredictor`` and scoring with it never import torch (most of a cold start).
_ZERO_COST = ("INVALID", "PROXY_NAMES", "ProxyResult", "available_proxies", "compute_proxies", "empirical_ntk",
              "label_gradient_alignment")

if TYPE_CHECKING:
    from predictors.zero_cost import (
        INVALID,
        PROXY_NAMES,
        ProxyResult,
        available_proxies,
        compute_proxies,
        empirical_ntk,
        label_gradient_alignment,
    )


def __getattr__(name: str) -> Any:
    if name in _ZERO_COST:
        import predictors.zero_cost as zero_cost

        return getattr(zero_cost, name)
    raise AttributeError(f"module 'predictors' has no attribute {name!r}")


__all__ = ["EncodedGraph", "OnnxNetPredictor", "OnnxTextEncoder", "OnnxTextError", "PredictorConfig", "PredictorError", "SizeReference",
           "encode_lines",
           "encode_onnx", "INVALID", "PROXY_NAMES", "ProxyResult", "available_proxies", "compute_proxies", "empirical_ntk",
           "label_gradient_alignment"]
