"""The ensemble's MLP heads as plain numpy arrays: inference and file I/O without importing torch.

Training needs torch (autograd, AdamW); scoring does not. A predictor read from its files holds
:class:`ArrayHead` s, so ``OnnxNetPredictor.default().predict(...)`` never imports torch (the import alone costs
several seconds, most of a cold start). :meth:`ArrayHead.to_module` turns a head into the ``torch.nn.Sequential``
that :func:`mlp` builds when a fit needs it, and :meth:`ArrayHead.from_module` takes one back.

The arithmetic is float32 throughout, like the module's, and trained and loaded predictors score through this
same code, so a save/load round trip gives identical scores.

Written by hand rather than exported to onnxruntime: a ``Linear -> ReLU -> Linear`` stack is four numpy lines,
and an onnxruntime session would cost more to create than the predictor takes to score a batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: ``torch.nn.functional.softplus``'s default threshold: above it, softplus(x) is x.
SOFTPLUS_THRESHOLD = 20.0


def linear_names(layers: int) -> list[str]:
    """The ``state_dict`` prefixes of the Linear layers of :func:`mlp` with ``layers`` hidden layers
    (``nn.Sequential`` numbers Linear, ReLU, Dropout, Linear, ...)."""
    return [str(3 * i) for i in range(layers + 1)]


def mlp(inputs: int, hidden: int, layers: int, dropout: float) -> Any:
    """A fresh head: ``layers`` x (Linear -> ReLU -> Dropout) -> Linear(1), as a ``torch.nn.Sequential``."""
    from torch import nn

    parts: list[Any] = []
    width = inputs
    for _ in range(layers):
        parts += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    parts.append(nn.Linear(width, 1))
    return nn.Sequential(*parts)


def softplus(raw: np.ndarray) -> np.ndarray:
    """log(1 + e^x) in float32, x itself above :data:`SOFTPLUS_THRESHOLD` (as torch computes it)."""
    raw = np.asarray(raw, dtype=np.float32)
    return np.where(raw > SOFTPLUS_THRESHOLD, raw, np.log1p(np.exp(np.minimum(raw, SOFTPLUS_THRESHOLD))))


@dataclass(frozen=True)
class ArrayHead:
    """One head's Linear layers as ``(weight (out, in), bias (out,))`` float32 pairs, ReLU between them
    (dropout is the identity at inference)."""

    linears: tuple[tuple[np.ndarray, np.ndarray], ...]

    @property
    def in_features(self) -> int:
        return int(self.linears[0][0].shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Scores of standardised rows ``x`` (rows, in_features) -> (rows,), float32."""
        h = np.asarray(x, dtype=np.float32)
        for i, (weight, bias) in enumerate(self.linears):
            h = h @ weight.T + bias
            if i < len(self.linears) - 1:
                h = np.maximum(h, np.float32(0.0))
        return h[:, 0]

    def state(self) -> dict[str, np.ndarray]:
        """The head's tensors under the names of the module's ``state_dict``."""
        out: dict[str, np.ndarray] = {}
        for name, (weight, bias) in zip(linear_names(len(self.linears) - 1), self.linears):
            out[f"{name}.weight"], out[f"{name}.bias"] = weight, bias
        return out

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], layers: int) -> ArrayHead:
        """A head from ``state_dict``-named arrays (as :meth:`state` writes them)."""
        return cls(tuple((np.ascontiguousarray(state[f"{n}.weight"], dtype=np.float32),
                          np.ascontiguousarray(state[f"{n}.bias"], dtype=np.float32)) for n in linear_names(layers)))

    @classmethod
    def from_module(cls, module: Any) -> ArrayHead:
        """The arrays of a ``torch.nn.Sequential`` head (a copy: later training does not change them)."""
        import torch

        linears = [m for m in module if isinstance(m, torch.nn.Linear)]
        return cls(tuple((m.weight.detach().cpu().numpy().astype(np.float32, copy=True),
                          m.bias.detach().cpu().numpy().astype(np.float32, copy=True)) for m in linears))

    def to_module(self, dropout: float) -> Any:
        """This head as a trainable ``torch.nn.Sequential`` (in eval mode; a fit switches it to train)."""
        import torch

        module = mlp(self.in_features, int(self.linears[0][0].shape[0]), len(self.linears) - 1, dropout)
        module.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in self.state().items()})
        return module.eval()


def as_array(value: Any) -> np.ndarray:
    """A size-weight vector as numpy (a numpy array as is, or a torch parameter's values during training)."""
    return value if isinstance(value, np.ndarray) else value.detach().cpu().numpy()


def as_array_head(head: Any) -> ArrayHead:
    """``head`` as an :class:`ArrayHead` (itself, or the arrays of a torch module)."""
    return head if isinstance(head, ArrayHead) else ArrayHead.from_module(head)


def in_features(head: Any) -> int:
    """The input width of a head (an :class:`ArrayHead` or a torch module)."""
    return head.in_features if isinstance(head, ArrayHead) else int(head[0].in_features)
