"""Rank correlation of zero-cost proxies with trained accuracy on a labelled benchmark.

Every proxy is computed at initialisation (seeded) on one fixed batch of the benchmark's training split, for every
architecture whose training finished; Kendall's tau and Spearman's rho (``scipy.stats``) against the final
validation accuracy are reported beside the params and FLOPs baselines, with the median time per proxy. Invalid
proxy values keep their documented sentinel (``-inf``: ranked last).
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from nas.bench.labelled import LabelledBenchmark


@dataclass(frozen=True)
class ProxyCorrelation:
    name: str
    kendall_tau: float | None
    spearman: float | None
    median_seconds: float
    valid: int


def rank_correlations(scores: Sequence[float], accuracies: Sequence[float]) -> tuple[float | None, float | None]:
    """Kendall's tau-b and Spearman's rho (None when undefined, e.g. a constant score)."""
    from scipy.stats import kendalltau, spearmanr

    s = np.asarray(scores, dtype=float)
    a = np.asarray(accuracies, dtype=float)
    if len(s) < 3 or np.all(s == s[0]):
        return None, None
    s = np.where(np.isfinite(s), s, np.finfo(float).min)  # the -inf sentinel ranks last
    with warnings.catch_warnings():  # constant accuracies: undefined, reported as None below
        warnings.simplefilter("ignore")
        tau = kendalltau(s, a).statistic
        rho = spearmanr(s, a).statistic
    clean = lambda v: None if v is None or not np.isfinite(v) else float(v)  # noqa: E731
    return clean(tau), clean(rho)


def proxy_scores(bench: LabelledBenchmark, *, proxies: Sequence[str] | None = None, batch_size: int = 64,
                 seed: int = 0, lga_steps: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[Any], dict[str, list[Any]]]:
    """``(rows, {proxy: [ProxyResult per row]})`` for the benchmark's finished rows."""
    import torch

    from nas.candidate import build_candidate
    from nas.data import load_dataset
    from predictors import compute_proxies
    from search_spaces.spaces import get_space

    header = bench.header
    dataset = load_dataset(bench.dataset, seed=header["seed"])
    from search_spaces.sampler import Limits

    limits = Limits(**header["limits"]) if "limits" in header else None
    space = get_space(bench.space, tuple(header["input_shape"]), limits=limits)
    order = np.random.default_rng(seed).permutation(len(dataset.train.y))[:batch_size]
    x = torch.as_tensor(dataset.train.x[order])
    y = torch.as_tensor(dataset.train.y[order])
    rows = bench.trained()
    results: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        torch.manual_seed(seed)
        module = build_candidate(space, space.parse(row.derivation), header["num_classes"], check=False).module
        scores = compute_proxies(module, x, y, names=proxies, num_classes=header["num_classes"], seed=seed)
        if lga_steps:
            trained = compute_proxies(module, x, y, names=["lga"], num_classes=header["num_classes"], seed=seed,
                                      lga_steps=lga_steps)
            scores[f"lga@{lga_steps}"] = trained["lga"]
        for name, result in scores.items():
            results.setdefault(name, []).append(result)
        if progress is not None:
            progress(i + 1, len(rows))
    return rows, results


def correlate(bench: LabelledBenchmark, *, proxies: Sequence[str] | None = None, batch_size: int = 64,
              seed: int = 0, lga_steps: int = 0,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The ``--json`` report: ``{"space", "dataset", "rows", "proxies": {name: {"kendall_tau", "spearman",
    "median_seconds"}}}`` (plus ``valid``: how many rows had a valid value)."""
    rows, results = proxy_scores(bench, proxies=proxies, batch_size=batch_size, seed=seed, lga_steps=lga_steps,
                                 progress=progress)
    accuracies = [r.val_acc for r in rows]
    report: dict[str, Any] = {"space": bench.space, "dataset": bench.dataset, "rows": len(rows), "proxies": {}}
    for name, values in results.items():
        tau, rho = rank_correlations([v.value for v in values], accuracies)
        report["proxies"][name] = {"kendall_tau": tau, "spearman": rho,
                                   "median_seconds": statistics.median(v.seconds for v in values),
                                   "valid": sum(v.valid for v in values)}
    return report
