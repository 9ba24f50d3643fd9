"""Training losses of the ONNX-Net head; each compares scores only within one group (one space/dataset), because
accuracies of different benchmarks are not on one scale."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a loss is computed: choosing one (PredictorConfig) must not import torch
    import torch

LOSSES = ("ranking", "mse", "listwise")


def pairwise_margin_loss(scores: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor,
                         margin: float = 0.1) -> torch.Tensor:
    """Pairwise margin-ranking loss (ONNX-Net, Qin et al., 2025):
    ``mean over pairs (i, j) in one group with y_i != y_j of max(0, margin - sign(y_i - y_j) (s_i - s_j))``."""
    import torch

    diff_s = scores[:, None] - scores[None, :]
    diff_y = targets[:, None] - targets[None, :]
    valid = (groups[:, None] == groups[None, :]) & (diff_y != 0)
    if not bool(valid.any()):
        return scores.sum() * 0.0
    return torch.relu(margin - torch.sign(diff_y) * diff_s)[valid].mean()


def _zscore_within(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    import torch

    out = torch.zeros_like(values)
    for g in torch.unique(groups):
        m = groups == g
        v = values[m]
        out[m] = (v - v.mean()) / (v.std(unbiased=False) + 1e-8) if v.numel() > 1 else v * 0
    return out


def mse_loss(scores: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean squared error against targets z-scored within each group."""
    import torch

    return torch.mean((scores - _zscore_within(targets, groups)) ** 2)


def listwise_loss(scores: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor,
                  temperature: float = 1.0) -> torch.Tensor:
    """ListNet top-one loss (Cao et al., 2007): cross-entropy between softmax(z-scored targets / T) and
    softmax(scores) within each group, averaged over groups."""
    import torch

    z = _zscore_within(targets, groups)
    losses = []
    for g in torch.unique(groups):
        m = groups == g
        if int(m.sum()) < 2:
            continue
        p = torch.softmax(z[m] / temperature, dim=0)
        losses.append(-(p * torch.log_softmax(scores[m], dim=0)).sum())
    return torch.stack(losses).mean() if losses else scores.sum() * 0.0


def loss_fn(name: str, margin: float = 0.1):  # noqa: ANN201 - returns a callable
    """The loss called ``name`` (one of :data:`LOSSES`) as ``f(scores, targets, groups)``."""
    if name == "ranking":
        return lambda s, y, g: pairwise_margin_loss(s, y, g, margin)
    if name == "mse":
        return mse_loss
    if name == "listwise":
        return listwise_loss
    raise ValueError(f"unknown loss {name!r}; choose one of {list(LOSSES)}")
