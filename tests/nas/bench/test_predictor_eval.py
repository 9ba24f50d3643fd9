"""The predictor evaluation (``nas.bench.predictor_eval``): every protocol on small corpora, scores in range, the
baselines measured on the same rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nas.bench.predictor_corpus import load_corpus
from nas.bench.predictor_eval import Score, baseline_scores, evaluate


def _small_predictor():  # noqa: ANN202 - an OnnxNetPredictor that trains in seconds
    from predictors import OnnxNetPredictor

    return OnnxNetPredictor(ensemble=1, max_epochs=15, min_epochs=5, patience=5, hidden=32)


def test_baselines_rank_by_params_flops_and_forests(small_corpora: dict[str, Path]) -> None:
    corpus = load_corpus(small_corpora["nb-macro"])
    perm = np.random.default_rng(0).permutation(len(corpus.rows))
    train, test = perm[:30], perm[30:]
    scores = baseline_scores(corpus, train, test, seed=0)
    assert set(scores) == {"params", "flops", "graf-lite", "onehot-rf"}
    # the synthetic accuracies rise with the parameter count, so ranking by params is (nearly) perfect
    assert scores["params"][0] > 0.9 and scores["params"][1] > 0.9
    assert all(-1.0 <= tau <= 1.0 and -1.0 <= rho <= 1.0 for tau, rho in scores.values())


@pytest.mark.slow
def test_every_protocol_scores_every_corpus(small_corpora: dict[str, Path]) -> None:
    corpora = [load_corpus(small_corpora["nb-macro"]), load_corpus(small_corpora["nats-sss-cifar10"])]
    lines: list[str] = []
    scores = evaluate(corpora, _small_predictor, seeds=1, sizes=[10], log=lines.append)
    assert all(isinstance(s, Score) for s in scores)
    by_protocol = {p: {(s.space, s.method) for s in scores if s.protocol == p}
                   for p in ("random", "few-shot", "zero-shot")}
    groups = {c.group for c in corpora}
    assert {space for space, _ in by_protocol["random"]} == groups
    assert {m for _, m in by_protocol["random"]} == {"onnx-net", "params", "flops", "graf-lite", "onehot-rf"}
    assert {m for _, m in by_protocol["zero-shot"]} == {"onnx-net", "params", "flops"}
    assert {"onnx-net (pretrained, fine-tuned)", "onnx-net (scratch)"} <= {m for _, m in by_protocol["few-shot"]}
    assert all(s.n_train == 10 for s in scores if s.protocol == "few-shot")
    assert all(math.isfinite(s.kendall_tau) and -1.0 <= s.kendall_tau <= 1.0 for s in scores)
    assert any("pretrained without nb-macro" in line for line in lines)
