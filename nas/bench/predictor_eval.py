"""Evaluation protocols of the ONNX-Net predictor against baselines, on corpora of labelled architectures.

Protocols (Kendall tau and Spearman rho on the held-out rows of one space, mean over seeds):

* ``random``: a random 80/20 split within each space, predictor trained on that space's 80% (at most
  ``max_train`` rows; the rest is the test set), over ``min(seeds, 3)`` seeds.
* ``few-shot``: ``n`` labels of the target corpus (n in 10, 50, 100, 500 where the corpus has room for a test
  set), test on the rest; the predictor is first pretrained on the corpora of the *other spaces* only (so it
  never saw the target space, on any dataset), then fine-tuned on the ``n`` labels. ``scratch`` is the same
  predictor without pretraining.
* ``zero-shot``: leave-one-space-out: trained on the corpora of the other spaces (at most ``max_pretrain``
  random rows of each), tested on all rows of the held-out corpus. ``pretrained={space: predictor}`` supplies
  such predictors (e.g. the committed leave-one-out priors) instead of training them here.

Baselines on the same test rows: ``params`` and ``flops`` (no training), ``graf-lite`` (GRAF-style global and
path statistics of the ONNX graph in a random forest, after Kadlecova et al., 2024, *without* GRAF's
operation-specific path-length and degree features, hence "lite"; trained on the same labels), and the one-hot
random forest of the space's own encoding where it has one (``onehot-rf``: NAS-Bench-Macro's 8 layer choices,
NATS-SSS's 5 widths), quoted by the issue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.bench.correlate import rank_correlations
from nas.bench.predictor_corpus import Corpus

FEW_SHOT_SIZES = (10, 50, 100, 500)


@dataclass(frozen=True)
class Score:
    """One method on one protocol cell, averaged over seeds."""

    protocol: str
    space: str
    method: str
    n_train: int
    kendall_tau: float
    spearman: float
    tau_std: float
    seeds: int


def _mean_scores(protocol: str, space: str, method: str, n_train: int, pairs: list[tuple[float, float]]) -> Score:
    taus = np.asarray([p[0] for p in pairs], dtype=float)
    rhos = np.asarray([p[1] for p in pairs], dtype=float)
    return Score(protocol, space, method, n_train, float(np.nanmean(taus)), float(np.nanmean(rhos)),
                 float(np.nanstd(taus)), len(pairs))


def _corr(scores: Sequence[float] | np.ndarray, acc: Sequence[float] | np.ndarray) -> tuple[float, float]:
    tau, rho = rank_correlations(list(map(float, scores)), list(map(float, acc)))
    return (np.nan if tau is None else tau, np.nan if rho is None else rho)


def _onehot(corpus: Corpus, idx: np.ndarray) -> np.ndarray | None:
    """One-hot of the space's own architecture encoding, or None for spaces without a fixed-length one."""
    if corpus.space == "nb-macro":
        return np.asarray([[float(c == str(k)) for c in corpus.rows[i].key for k in range(3)] for i in idx])
    if corpus.space == "nats-sss":
        widths = (8, 16, 24, 32, 40, 48, 56, 64)
        return np.asarray([[float(int(w) == k) for w in corpus.rows[i].key.split(":") for k in widths] for i in idx])
    return None


def _forest(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=1)
    return model.fit(x_train, y_train).predict(x_test)


def baseline_scores(corpus: Corpus, train: np.ndarray, test: np.ndarray, seed: int) -> dict[str, tuple[float, float]]:
    """Baselines on ``test`` rows, trained (where they train) on ``train`` rows."""
    acc = corpus.accuracies()
    out = {"params": _corr([corpus.rows[i].params for i in test], acc[test]),
           "flops": _corr([corpus.rows[i].flops for i in test], acc[test])}
    if len(train) >= 5:
        feats = np.asarray([r.features for r in corpus.rows])
        out["graf-lite"] = _corr(_forest(feats[train], acc[train], feats[test], seed), acc[test])
        onehot_train, onehot_test = _onehot(corpus, train), _onehot(corpus, test)
        if onehot_train is not None and onehot_test is not None:
            out["onehot-rf"] = _corr(_forest(onehot_train, acc[train], onehot_test, seed), acc[test])
    return out


def _fit(make: Callable[[], Any], corpora: Sequence[Corpus], idx: Sequence[np.ndarray], base: Any = None) -> Any:
    import copy

    predictor = copy.deepcopy(base) if base is not None else make()
    graphs, acc, groups = [], [], []
    for corpus, rows in zip(corpora, idx):
        graphs += [corpus.rows[i].graph for i in rows]
        acc += [corpus.rows[i].acc for i in rows]
        groups += [corpus.group] * len(rows)
    return predictor.fit(graphs, acc, groups=groups)


def evaluate(corpora: Sequence[Corpus], make: Callable[[], Any], *, seeds: int = 5,
             sizes: Sequence[int] = FEW_SHOT_SIZES, protocols: Sequence[str] = ("random", "few-shot", "zero-shot"),
             few_shot_spaces: Sequence[str] | None = None, max_train: int = 1000, max_pretrain: int = 1000,
             pretrained: dict[str, Any] | None = None, log: Callable[[str], None] = print) -> list[Score]:
    """Run the protocols; ``make()`` returns a fresh untrained predictor (e.g. ``OnnxNetPredictor``).

    ``few_shot_spaces`` limits the few-shot curves to corpora whose space, ``space/dataset`` name or group is
    listed; ``pretrained`` maps a space to a predictor that never saw it (used instead of pretraining here)."""
    scores: list[Score] = []
    all_rows = [np.sort(np.random.default_rng(99).permutation(len(c.rows))[:max_pretrain]) for c in corpora]

    def record(protocol: str, corpus: Corpus, n: int, results: dict[str, list[tuple[float, float]]]) -> None:
        for method, pairs in results.items():
            s = _mean_scores(protocol, corpus.group, method, n, pairs)
            scores.append(s)
            log(f"{protocol:9s} {corpus.group:34s} n={n:<5d} {method:22s} tau={s.kendall_tau:.3f} "
                f"rho={s.spearman:.3f} (+-{s.tau_std:.3f})")

    if "random" in protocols:
        for corpus in corpora:
            results: dict[str, list[tuple[float, float]]] = {}
            for seed in range(min(seeds, 3)):
                perm = np.random.default_rng(seed).permutation(len(corpus.rows))
                cut = min(int(0.8 * len(perm)), max_train)
                train, test = perm[:cut], perm[cut:]
                predictor = _fit(make, [corpus], [train])
                pred = predictor.predict([corpus.rows[i].graph for i in test])
                results.setdefault("onnx-net", []).append(_corr(pred, corpus.accuracies()[test]))
                for name, pair in baseline_scores(corpus, train, test, seed).items():
                    results.setdefault(name, []).append(pair)
            record("random", corpus, min(int(0.8 * len(corpus.rows)), max_train), results)

    def wants_few_shot(corpus: Corpus) -> bool:
        return "few-shot" in protocols and (few_shot_spaces is None or bool(
            {corpus.space, corpus.name, corpus.group} & set(few_shot_spaces)))

    if "zero-shot" in protocols or "few-shot" in protocols:
        priors: dict[str, Any] = dict(pretrained or {})
        for corpus in corpora:
            if "zero-shot" not in protocols and not wants_few_shot(corpus):
                continue
            if corpus.space not in priors:
                others = [j for j, c in enumerate(corpora) if c.space != corpus.space]
                t = time.perf_counter()
                priors[corpus.space] = (_fit(make, [corpora[j] for j in others], [all_rows[j] for j in others])
                                        if others else None)
                log(f"pretrained without {corpus.space} in {time.perf_counter() - t:.0f} s")
            prior = priors[corpus.space]
            acc = corpus.accuracies()
            if "zero-shot" in protocols and prior is not None:
                pred = prior.predict([r.graph for r in corpus.rows])
                record("zero-shot", corpus, 0, {"onnx-net": [_corr(pred, acc)],
                                                "params": [_corr([r.params for r in corpus.rows], acc)],
                                                "flops": [_corr([r.flops for r in corpus.rows], acc)]})
            if not wants_few_shot(corpus):
                continue
            for n in sizes:
                if n > len(corpus.rows) // 2:
                    continue
                results = {}
                for seed in range(seeds):
                    perm = np.random.default_rng(1000 + seed).permutation(len(corpus.rows))
                    train, test = perm[:n], perm[n:]
                    test_graphs = [corpus.rows[i].graph for i in test]
                    if prior is not None:
                        tuned = _fit(make, [corpus], [train], base=prior)
                        results.setdefault("onnx-net (pretrained, fine-tuned)", []).append(
                            _corr(tuned.predict(test_graphs), acc[test]))
                    scratch = _fit(make, [corpus], [train])
                    results.setdefault("onnx-net (scratch)", []).append(_corr(scratch.predict(test_graphs), acc[test]))
                    for name, pair in baseline_scores(corpus, train, test, seed).items():
                        results.setdefault(name, []).append(pair)
                record("few-shot", corpus, n, results)
    return scores
