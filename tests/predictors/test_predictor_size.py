"""Issue 13, zero-shot: the size term of ``OnnxNetPredictor`` (``PredictorConfig.size_prior``).

Sizes z-scored within the set being ranked transfer across spaces whose absolute sizes differ by orders of
magnitude; the raw feature rows of :meth:`OnnxNetPredictor.features` stay per model (a cache of them stays valid),
and ``predict(m) == predict_features(features(encode(m)))`` holds with and without the term. Against a fixed
:class:`~predictors.SizeReference` (what a search passes) the term is pointwise, and a refit given the reference
standardises by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from predictors import OnnxNetPredictor
from predictors.onnx_net.predictor import SIZE_FEATURES, PredictorConfig, size_inputs

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "benchmarks" / "results" / "predictor"


def test_size_inputs_rank_within_each_group_only() -> None:
    x = np.asarray([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [100.0, 7.0], [300.0, 9.0]])
    z = size_inputs(x, [0, 1], ["a", "a", "a", "b", "b"])
    assert np.allclose(z[:3, 0], [-1.2247449, 0.0, 1.2247449])  # (x - mean) / std within group a
    assert np.allclose(z[:3, 1], 0.0)                          # constant within a: no information, 0
    assert np.allclose(z[3:, 0], [-1.0, 1.0]) and np.allclose(z[3:, 1], [-1.0, 1.0])
    assert np.allclose(size_inputs(x[:1], [0, 1]), 0.0)        # a single model has no place in a set


def test_size_prior_needs_the_global_features() -> None:
    with pytest.raises(ValueError, match="size_prior"):
        PredictorConfig(size_prior=True, use_global_features=False)


@pytest.fixture(scope="module")
def corpora():
    from nas.bench.predictor_corpus import load_corpus

    rng = np.random.default_rng(0)
    out = {}
    for name in ("nats-sss-cifar10", "nb-macro-cifar10"):
        c = load_corpus(CORPORA / f"{name}.jsonl.gz")
        pick = rng.permutation(len(c.rows))[:200]
        out[name] = ([c.rows[i].graph for i in pick], c.accuracies()[pick], c.group)
    return out


@pytest.fixture(scope="module")
def sized(corpora) -> OnnxNetPredictor:
    graphs, acc, group = corpora["nats-sss-cifar10"]
    return OnnxNetPredictor(size_prior=True, ensemble=2, max_epochs=30, patience=10, min_epochs=10,
                            encode_workers=1).fit(graphs, acc, groups=[group] * len(acc))


def test_size_term_transfers_to_a_space_of_other_absolute_sizes(sized, corpora) -> None:
    """Trained on NATS-SSS only (where the larger network is better), it ranks NAS-Bench-Macro networks (10x the
    parameters, fixed widths, varying depth) by where each stands among them: far better than chance."""
    weights = sized.size_weights()
    assert weights.shape == (2, len(SIZE_FEATURES)) and (weights >= 0).all()
    graphs, acc, _ = corpora["nb-macro-cifar10"]
    tau = kendalltau(sized.predict(graphs), acc).statistic
    assert tau > 0.2, tau


def test_predict_is_predict_features_of_the_raw_rows(sized, corpora) -> None:
    graphs, _, _ = corpora["nb-macro-cifar10"]
    x = sized.features(sized.encode(graphs[:50]))
    assert np.allclose(sized.predict(graphs[:50]), sized.predict_features(x))
    assert sized.head_scores(x).shape == (2, 50)
    # two sets scored in one call: each ranks within its own set, as if scored in two calls
    both = sized.predict_features(np.concatenate([x[:20], x[20:]]), groups=[0] * 20 + [1] * 30)
    assert np.allclose(both, np.concatenate([sized.predict(graphs[:20]), sized.predict(graphs[20:50])]))
    plain = OnnxNetPredictor(ensemble=1, max_epochs=5, min_epochs=2, encode_workers=1)
    plain.fit(graphs[:40], corpora["nb-macro-cifar10"][1][:40])
    assert np.allclose(plain.predict(graphs[:50]), plain.predict_features(plain.features(plain.encode(graphs[:50]))))


def test_size_prior_round_trip_and_fine_tuning(sized, corpora, tmp_path) -> None:
    graphs, acc, group = corpora["nb-macro-cifar10"]
    sized.save(tmp_path / "p")
    again = OnnxNetPredictor.load(tmp_path / "p")
    assert again.config.size_prior
    assert np.array_equal(again.size_weights(), sized.size_weights())
    assert np.array_equal(again.predict(graphs), sized.predict(graphs))
    before = again.size_weights().copy()
    again.fit(graphs[:60], acc[:60], groups=[group] * 60)
    assert not np.array_equal(again.size_weights(), before)  # fine-tuning adapts the size term too


def test_a_file_without_the_size_tensors_is_refused(sized, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    from predictors import PredictorError

    sized.save(tmp_path / "p")
    tensors = load_file(str(tmp_path / "p.safetensors"))
    del tensors["size.1"]
    save_file(tensors, str(tmp_path / "p.safetensors"))
    with pytest.raises(PredictorError, match="size.1"):
        OnnxNetPredictor.load(tmp_path / "p")


def test_width_features_read_the_hidden_widths_from_the_text() -> None:
    from predictors.onnx_net.features import width_features

    lines = ("Conv(Input:?x3x32x32, Param[16,3,3,3]){group=1} --> BatchNormalization(Param[16]) --> V+1:?x16x32x32",
             "Relu(V-1) --> Conv(Param[64,16,3,3]){group=1} --> V+1:?x64x16x16",
             "MatMul(Param[64,10]) --> Add(Param[10]) --> V+1:?x10",
             "Relu(V-1) --> Conv(Param[64,16,3,3]){group=1} --> V+1:?x64x16x16 => MatMul(Param[64,10])")
    # widths 16 (once), 64 (twice), and the classifier reads 64 features (not its 10 classes); pairs not counted
    assert np.allclose(width_features(lines, (1, 2, 1, 7)), [4.0, (4 + 2 * 6 + 6) / 4, 6.0])
    assert np.allclose(width_features(("Relu(V-1) --> V+1:?x3",), (1,)), 0.0)


def test_a_size_reference_makes_every_score_its_own(sized, corpora) -> None:
    """With a fixed reference the size term is pointwise: a model scores the same alone, in any batch, through
    ``predict`` or ``predict_features``; the reference of a set scores that set as the transductive term does."""
    from predictors import PredictorError, SizeReference

    graphs, _, _ = corpora["nb-macro-cifar10"]
    x = sized.features(sized.encode(graphs))
    reference = sized.size_reference(x, source="all 200 rows")
    assert reference.features == sized.size_feature_names() and reference.count == 200
    together = sized.predict(graphs[:30], size_reference=reference)
    assert np.allclose(sized.predict(graphs[:1], size_reference=reference), together[:1], atol=1e-6)
    assert np.allclose(sized.predict(graphs[10:30], size_reference=reference), together[10:], atol=1e-6)
    assert np.allclose(sized.predict_features(x[:30], size_reference=reference), together, atol=1e-6)
    assert not np.allclose(sized.predict(graphs[10:30]), together[10:], atol=1e-3)  # transductive: it moves
    assert np.allclose(sized.predict_features(x, size_reference=reference), sized.predict_features(x), atol=1e-6)
    assert SizeReference.from_json(reference.to_json()) == reference
    with pytest.raises(PredictorError, match="size reference"):
        sized.predict(graphs[:2], size_reference=SizeReference(("log_params",), (0.0,), (1.0,), 1))
    with pytest.raises(ValueError, match="finite"):
        SizeReference(("log_params",), (float("nan"),), (1.0,), 1)


def test_fitting_with_a_reference_standardises_by_it(sized, corpora) -> None:
    """A refit on rows of one space with that space's reference: the reference of the rows themselves trains
    exactly as the grouped z-scoring does; another reference (another scale) trains other size weights."""
    import copy

    from predictors import SizeReference

    graphs, acc, group = corpora["nb-macro-cifar10"]
    x = sized.features(sized.encode(graphs[:80]))
    own = sized.size_reference(x)

    def tuned(reference):
        model = copy.deepcopy(sized)
        return model.fit_features(x, acc[:80], groups=[group] * 80, epochs=3, seed=1, size_reference=reference)

    grouped, same = tuned(None), tuned(own)
    assert np.allclose(grouped.size_weights(), same.size_weights(), atol=1e-6)
    wider = SizeReference(own.features, own.mean, tuple(3.0 * s for s in own.std), own.count)
    assert not np.allclose(tuned(wider).size_weights(), grouped.size_weights(), atol=1e-4)
