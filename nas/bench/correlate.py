"""Rank correlation of zero-cost proxies with trained accuracy on a labelled benchmark.

Every proxy is computed at initialisation (seeded) on one fixed batch of the benchmark's training split, for every
architecture whose training finished; Kendall's tau and Spearman's rho (``scipy.stats``) against the final
validation accuracy are reported beside the params and FLOPs baselines, with the median time per proxy. Invalid
proxy values keep their documented sentinel (``-inf``: ranked last). Every proxy is higher-is-better
(``ntk_cond`` is ``-cond``).

``lga@K`` (with ``lga_steps=K``) is LGA after minimal training as Mok et al. (CVPR 2022) measure it: a copy of the
network takes K steps of **the benchmark's own optimiser** (its protocol's optimiser, learning rate, weight decay,
gradient clipping and label smoothing; the learning rate held at its peak, no schedule) on K batches of the
protocol's batch size drawn from the training examples *outside* the measured batch (the same batches for every
architecture), then LGA is measured on the proxies' batch. K = 0 reports no ``lga@K``. The committed tables
(``benchmarks/results/proxies_*``) use K = 18: one pass, in full batches of 64, over the 1,195 digits training
examples outside the measured batch, as Mok et al. train one epoch before measuring.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.bench.labelled import LabelledBenchmark


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


def lga_batches(n_train: int, measured: np.ndarray, steps: int, batch_size: int,
                seed: int) -> list[np.ndarray]:
    """``steps`` index batches of ``batch_size`` over the training examples not in ``measured``: consecutive
    slices of seeded permutations of them (a new permutation when one is used up; a batch of one example, which
    BatchNorm cannot train on, is completed from the next permutation)."""
    rest = np.setdiff1d(np.arange(n_train), measured)
    if len(rest) < 2:
        raise ValueError(f"only {len(rest)} training examples outside the measured batch: none left to train LGA")
    rng = np.random.default_rng([seed, 1])
    size = min(batch_size, len(rest))
    pool: list[int] = []
    out: list[np.ndarray] = []
    while len(out) < steps:
        while len(pool) < size:
            pool.extend(rng.permutation(rest).tolist())
        out.append(np.asarray(pool[:size]))
        pool = pool[size:]
    return out


def lga_training(bench: LabelledBenchmark, dataset: Any, measured: np.ndarray, steps: int, seed: int) -> Any:
    """The :class:`predictors.zero_cost.LgaTraining` of ``lga@steps``: the benchmark's optimiser on batches
    outside the measured one (see the module docstring)."""
    import functools

    import torch

    from nas.train import TrainConfig
    from nas.train.trainer import _make_optimizer  # the protocol's optimiser, exactly as the trainer builds it
    from predictors.zero_cost import LgaTraining

    protocol = TrainConfig.from_dict(bench.header["protocol"])
    batches = tuple((torch.as_tensor(dataset.train.x[idx]), torch.as_tensor(dataset.train.y[idx]))
                    for idx in lga_batches(len(dataset.train.y), measured, steps, protocol.batch_size, seed))
    return LgaTraining(batches, functools.partial(_make_optimizer, config=protocol),
                       grad_clip=protocol.grad_clip, label_smoothing=protocol.label_smoothing)


def lga_settings(bench: LabelledBenchmark, steps: int, n_train: int, batch_size: int) -> dict[str, Any]:
    """What ``lga@steps`` was trained with, for the report."""
    from nas.train import TrainConfig

    protocol = TrainConfig.from_dict(bench.header["protocol"])
    return {"steps": steps, "batch_size": protocol.batch_size, "optimizer": protocol.optimizer, "lr": protocol.lr,
            "weight_decay": protocol.weight_decay, "grad_clip": protocol.grad_clip,
            "label_smoothing": protocol.label_smoothing, "train_examples_outside_measured_batch":
                n_train - min(batch_size, n_train)}


def proxy_scores(bench: LabelledBenchmark, *, proxies: Sequence[str] | None = None, batch_size: int = 64,
                 seed: int = 0, lga_steps: int = 0, ntk_method: str = "batch", max_rows: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[Any], dict[str, list[Any]]]:
    """``(rows, {proxy: [ProxyResult per row]})`` for the benchmark's finished rows (the first ``max_rows`` of
    them in file order, i.e. sampling order, when given)."""
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
    training = lga_training(bench, dataset, order, lga_steps, seed) if lga_steps else None
    rows = bench.trained()[:max_rows]
    results: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        with torch.random.fork_rng(devices=[]):  # initial weights seeded; the caller's RNG is untouched
            torch.manual_seed(seed)
            module = build_candidate(space, space.parse(row.derivation), header["num_classes"], check=False).module
        scores = compute_proxies(module, x, y, names=proxies, num_classes=header["num_classes"], seed=seed,
                                 ntk_method=ntk_method)
        if training is not None:
            trained = compute_proxies(module, x, y, names=["lga"], num_classes=header["num_classes"], seed=seed,
                                      ntk_method=ntk_method, lga_training=training)
            scores[f"lga@{lga_steps}"] = trained["lga"]
        for name, result in scores.items():
            results.setdefault(name, []).append(result)
        if progress is not None:
            progress(i + 1, len(rows))
    return rows, results


def correlate(bench: LabelledBenchmark, *, proxies: Sequence[str] | None = None, batch_size: int = 64,
              seed: int = 0, lga_steps: int = 0, ntk_method: str = "batch", max_rows: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The ``--json`` report: ``{"space", "dataset", "rows", "settings", "proxies": {name: {"kendall_tau",
    "spearman", "median_seconds"}}}`` (plus ``valid``: how many rows had a valid value); ``settings`` records the
    batch size, seed, NTK method and (``lga``) how ``lga@K`` was trained."""
    rows, results = proxy_scores(bench, proxies=proxies, batch_size=batch_size, seed=seed, lga_steps=lga_steps,
                                 ntk_method=ntk_method, max_rows=max_rows, progress=progress)
    accuracies = [r.val_acc for r in rows]
    settings: dict[str, Any] = {"batch_size": batch_size, "seed": seed, "ntk_method": ntk_method,
                                "max_rows": max_rows, "finished_rows": len(bench.trained()), "lga": None}
    if lga_steps:
        from nas.data import load_dataset

        n_train = len(load_dataset(bench.dataset, seed=bench.header["seed"]).train.y)
        settings["lga"] = lga_settings(bench, lga_steps, n_train, batch_size)
    report: dict[str, Any] = {"space": bench.space, "dataset": bench.dataset, "rows": len(rows),
                              "settings": settings, "proxies": {}}
    for name, values in results.items():
        tau, rho = rank_correlations([v.value for v in values], accuracies)
        report["proxies"][name] = {"kendall_tau": tau, "spearman": rho,
                                   "median_seconds": statistics.median(v.seconds for v in values),
                                   "valid": sum(v.valid for v in values)}
    return report
