"""The search's predictor scores are on one scale: a candidate's score does not depend on the batch it is scored in.

The shipped predictor has a size term (``PredictorConfig.size_prior``); the :class:`~nas.search.scoring.Scorer`
standardises it against one :class:`predictors.SizeReference` of the search's space (a fixed-seed sample within
the space's limits, :mod:`nas.search.size_reference`), so its per-derivation cache mixes no scales and a resumed
search recomputes the same numbers. Real parts: the shipped predictor, the nb-macro space, weightless ONNX builds.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from nas.search.scoring import Scorer
from nas.search.size_reference import REFERENCE_SAMPLES, reference_derivations, space_size_reference
from predictors import OnnxNetPredictor, PredictorError, SizeReference
from search_spaces.sampler import Limits
from search_spaces.spaces import get_space


@pytest.fixture(scope="module")
def macro() -> object:
    return get_space("nb-macro", (3, 32, 32))


def scorer(space: object, **kwargs: object) -> Scorer:
    s = Scorer(["predictor"], space=space, dataset=None, input_shape=(3, 32, 32), num_classes=10, **kwargs)
    if s.predictor is None:
        pytest.skip("the shipped predictor file is missing")
    s.predictor.config.encode_workers = 1
    return s


def distinct(space: object, seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        out[str(space.sample(rng))] = None
    return list(out)


def test_the_same_candidate_gets_the_same_score_in_two_batches(macro: object) -> None:
    """Fails under a transductive size term: the candidate stands elsewhere among other companions. (The heads
    run in float32, whose matrix products differ in the 7th digit between batch sizes: hence the tolerance.)"""
    shared = "".join(["2"] * 8)
    batch_a = [str(macro.from_arch(shared))] + [d for d in distinct(macro, 1, 6)][:5]
    batch_b = [str(macro.from_arch(shared))] + [str(macro.from_arch(a)) for a in ("00000000", "00000001",
                                                                                  "10000000", "01010101")]
    first, second = scorer(macro), scorer(macro)
    a = first.score(batch_a)[0].raw["predictor"][0]
    b = second.score(batch_b)[0].raw["predictor"][0]
    assert first.size_reference is not None and first.size_reference == second.size_reference
    assert a == pytest.approx(b, rel=1e-6, abs=1e-6)
    alone = scorer(macro).score(batch_a[:1])[0].raw["predictor"][0]
    assert alone == pytest.approx(a, rel=1e-6, abs=1e-6)
    # the cache of one scorer then holds numbers of one scale: re-scoring in another batch changes nothing
    again = first.score(batch_b)
    assert [s.raw["predictor"][0] for s in again] == pytest.approx([s.raw["predictor"][0]
                                                                   for s in second.score(batch_b)])


def test_the_reference_is_a_fixed_sample_of_the_space_within_its_limits(macro: object) -> None:
    one, two = reference_derivations(macro), reference_derivations(macro)
    assert [str(d) for d in one] == [str(d) for d in two] and len({str(d) for d in one}) == REFERENCE_SAMPLES
    limits = Limits(max_params=int(np.percentile([macro.from_arch(a).cost.params
                                                  for a in list(macro.enumerate())[::40]], 25)))
    small = get_space("nb-macro", (3, 32, 32), limits=limits)
    assert all(d.cost.params <= limits.max_params for d in reference_derivations(small))
    predictor = OnnxNetPredictor.default()
    predictor.config.encode_workers = 1
    wide = space_size_reference(macro, predictor, num_classes=10, samples=16)
    narrow = space_size_reference(small, predictor, num_classes=10, samples=16)
    assert wide is not None and narrow is not None
    assert wide.features == predictor.size_feature_names() and wide.count == 16
    assert narrow.mean[0] < wide.mean[0]  # log params: the limited space's networks are smaller
    assert "nb-macro" in wide.source and "seed 0" in wide.source


def test_a_given_reference_is_used_as_is(macro: object) -> None:
    given = scorer(macro)
    assert given.size_reference is None  # not built before a predictor call
    built = given.predictor_size_reference()
    assert isinstance(built, SizeReference)
    shifted = SizeReference(built.features, tuple(m + 1.0 for m in built.mean), built.std, built.count, "test")
    other = scorer(macro, size_reference=shifted)
    assert other.predictor_size_reference() is shifted
    batch = distinct(macro, 3, 4)
    assert [s.raw["predictor"][0] for s in other.score(batch)] != [s.raw["predictor"][0] for s in given.score(batch)]
    wrong = SizeReference(("log_params",), (1.0,), (1.0,), 1)
    with pytest.raises(PredictorError, match="size reference"):
        scorer(macro, size_reference=wrong).score(batch)
