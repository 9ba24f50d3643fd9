"""Registry, result type and shared helpers of the zero-cost proxies.

Every proxy is a function ``fn(ctx: ProxyContext) -> float`` registered under its name with :func:`register`.
A proxy that cannot apply to a network raises :class:`ProxyNotApplicable` with a human-readable reason; the
driver (:func:`predictors.zero_cost.compute_proxies`) turns that, any other exception and any non-finite value
into an *invalid* :class:`ProxyResult` whose ``value`` is the sentinel ``float("-inf")`` (so that it ranks
last under "higher is better") and whose ``note`` says why.

Proxies never touch the caller's model: :meth:`ProxyContext.copy` hands out a fresh ``copy.deepcopy`` for
every proxy, and per-call caches (the empirical NTK shared by ``ntk_*`` and ``lga``) live on the context.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "GlobalPoolCapture",
    "INVALID",
    "PROXY_NAMES",
    "ProxyContext",
    "ProxyNotApplicable",
    "ProxyResult",
    "REGISTRY",
    "RectifierCapture",
    "as_logits",
    "cross_entropy",
    "register",
    "trainable_parameters",
    "weight_layers",
]

#: Sentinel value of an invalid result: ranks last when higher is better.
INVALID = float("-inf")

#: Every proxy this package provides, in its canonical order (a contract: do not rename).
PROXY_NAMES: tuple[str, ...] = (
    "params", "flops", "synflow", "snip", "grad_norm", "grasp", "fisher", "jacov", "nwot", "zen", "l2_norm",
    "ntk_cond", "ntk_trace", "ntk_fro", "ntk_mean", "ntk_eig", "ntk_krr", "lga",
)


@dataclass(frozen=True)
class ProxyResult:
    """The outcome of one proxy on one network.

    Attributes:
        name: the proxy name (one of :data:`PROXY_NAMES`).
        value: the score; ``float("-inf")`` when ``valid`` is False (the documented sentinel).
        seconds: wall-clock time spent computing it (a cached NTK is charged to the first NTK proxy).
        valid: False when the raw value was NaN/inf or the proxy could not apply to the network.
        note: why the result is invalid (empty when valid).
    """

    name: str
    value: float
    seconds: float
    valid: bool
    note: str = ""


class ProxyNotApplicable(Exception):
    """Raised by a proxy that cannot be computed for this network; the message becomes ``ProxyResult.note``."""


ProxyFn = Callable[["ProxyContext"], float]
REGISTRY: dict[str, ProxyFn] = {}


def register(name: str) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering ``fn`` as the proxy ``name``."""
    if name not in PROXY_NAMES:
        raise ValueError(f"unknown proxy name {name!r}")

    def deco(fn: ProxyFn) -> ProxyFn:
        REGISTRY[name] = fn
        return fn

    return deco


# --- the per-call context -------------------------------------------------------------------------------------------


@dataclass
class ProxyContext:
    """Everything a proxy needs: the network (read-only), one batch, options and a per-call cache."""

    model: nn.Module
    x: Tensor
    y: Tensor
    num_classes: int | None = None
    seed: int = 0
    device: torch.device | None = None
    ntk_method: str = "batch"
    lga_training: Any = None  # predictors.zero_cost.ntk.LgaTraining | None
    cache: dict[str, Any] = field(default_factory=dict)

    def copy(self, *, train: bool = True) -> nn.Module:
        """A deep copy of the network on ``device`` in train (default) or eval mode; safe to mutate."""
        model = copy.deepcopy(self.model)
        if self.device is not None:
            model = model.to(self.device)
        return model.train(train)

    @property
    def batch_size(self) -> int:
        return int(self.x.shape[0])

    @property
    def float_input(self) -> bool:
        return self.x.is_floating_point()

    def classes(self, width: int | None = None) -> int:
        """The number of classes: the ``num_classes`` option, else the logit width, at least ``max(y) + 1``."""
        n = self.num_classes if self.num_classes is not None else (width or 0)
        if self.y.numel():
            n = max(n, int(self.y.max().item()) + 1)
        return max(n, 1)


# --- helpers shared by the proxy families ---------------------------------------------------------------------------


def as_logits(out: Any, batch: int) -> Tensor:
    """The network output as a ``(B, K)`` matrix: the first element of a tuple/list, ``logits`` of a dict,
    extra dimensions flattened, a vector made a column."""
    if isinstance(out, dict):
        out = out["logits"] if "logits" in out else next(iter(out.values()))
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, Tensor):
        raise ProxyNotApplicable(f"the network returned {type(out).__name__}, not a tensor")
    if out.dim() == 0 or out.shape[0] != batch:
        raise ProxyNotApplicable(f"output shape {tuple(out.shape)} has no batch dimension of size {batch}")
    return out.reshape(batch, -1)


def cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of ``model(x)`` against integer labels ``y``."""
    logits = as_logits(model(x), x.shape[0])
    if y.numel() and int(y.max()) >= logits.shape[1]:
        raise ProxyNotApplicable(f"label {int(y.max())} >= number of logits {logits.shape[1]}")
    return F.cross_entropy(logits, y.long())


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


_WEIGHT_TYPES = (nn.Linear, nn.modules.conv._ConvNd)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The Conv/Linear layers with a trainable weight (the layers the gradient proxies sum over).

    Raises :class:`ProxyNotApplicable` when there are none (a parameter-free network in particular).
    """
    if not trainable_parameters(model):
        raise ProxyNotApplicable("no trainable parameters")
    layers = [m for m in model.modules() if isinstance(m, _WEIGHT_TYPES)
              and isinstance(getattr(m, "weight", None), Tensor) and m.weight.requires_grad]
    if not layers:
        raise ProxyNotApplicable("no Conv/Linear layer with a trainable weight")
    return layers


def finite(value: float, what: str) -> float:
    """``value`` if finite, else :class:`ProxyNotApplicable` naming ``what`` overflowed."""
    if not math.isfinite(value):
        raise ProxyNotApplicable(f"{what} is not finite ({value})")
    return value


# --- capturing rectifier inputs (functional calls as well as nn.ReLU modules) --------------------------------------

_RECTIFIERS = {F.relu, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_, F.leaky_relu, F.leaky_relu_,
               torch._C._nn.leaky_relu, torch._C._nn.leaky_relu_, F.relu6, F.rrelu, F.rrelu_, F.prelu,
               torch.prelu, torch.rrelu, torch.rrelu_}


class RectifierCapture(TorchFunctionMode):
    """Calls ``callback(input)`` before every ReLU-family op (ReLU, LeakyReLU, ReLU6, PReLU, RReLU).

    A ``TorchFunctionMode`` sees functional calls (``F.relu``, ``torch.relu``, ``x.relu()``) as well as the
    ``nn.ReLU``-style modules, so networks that apply activations functionally (as the compiled search-space
    graphs do) are covered without module hooks. ``nn.ReLU6``/``nn.Hardtanh(0, t)`` reach us as ``hardtanh``
    with a zero lower bound and count too. The callback runs before the op, so in-place rectifiers are fine.
    """

    def __init__(self, callback: Callable[[Tensor], None]):
        super().__init__()
        self.callback = callback
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inp = args[0] if args else kwargs.get("input")
        hit = func in _RECTIFIERS
        if not hit and func in (F.hardtanh, F.hardtanh_, torch._C._nn.hardtanh, torch._C._nn.hardtanh_):
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            hit = lo == 0
        if hit and isinstance(inp, Tensor):
            self.count += 1
            self.callback(inp)
        return func(*args, **kwargs)


# --- capturing the input of global pooling (Zen-NAS's pre-GAP feature map) ----------------------------------------

_ADAPTIVE_POOLS = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d,
                   F.adaptive_max_pool2d, F.adaptive_max_pool3d, torch.adaptive_avg_pool1d,
                   torch._C._nn.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool3d}
_MEANS = {torch.mean, Tensor.mean}


def _all_ones(size: Any) -> bool:
    sizes = size if isinstance(size, (tuple, list)) else (size,)
    return all(s == 1 for s in sizes)


class GlobalPoolCapture(TorchFunctionMode):
    """Keeps the input of the last *global pooling* op of a forward pass in ``last``.

    Global pooling is an adaptive average/max pooling to output size 1, or a ``mean`` of a tensor with at least
    three dims over every non-batch dim but one (``x.mean((2, 3))`` of ``(B, C, H, W)``, the search-space graphs'
    ``global_avg_pool``; ``t.mean(1)`` of ``(B, S, D)`` tokens). ``count`` says how many were seen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: Tensor | None = None
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inp = args[0] if args else kwargs.get("input")
        if isinstance(inp, Tensor) and inp.dim() >= 3 and self._is_global_pool(func, inp, args, kwargs):
            self.count += 1
            self.last = inp
        return func(*args, **kwargs)

    @staticmethod
    def _is_global_pool(func: Any, inp: Tensor, args: tuple, kwargs: dict) -> bool:
        if func in _ADAPTIVE_POOLS:
            size = args[1] if len(args) > 1 else kwargs.get("output_size")
            return size is not None and _all_ones(size)
        if func in _MEANS:
            dims = args[1] if len(args) > 1 else kwargs.get("dim")
            if dims is None or isinstance(dims, torch.dtype):
                return False
            dims = {d % inp.dim() for d in (dims if isinstance(dims, (tuple, list)) else (dims,))}
            return 0 not in dims and len(set(range(1, inp.dim())) - dims) == 1
        return False
