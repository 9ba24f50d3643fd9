"""One fixed size reference per search: what the predictor's size term standardises against.

The ONNX-Net predictor's size term (``PredictorConfig.size_prior``) z-scores log params, log FLOPs, depth and the
narrowest width. Z-scored within each scoring call it would put the same candidate on a different scale in every
batch (and a resumed search, whose batches differ, would pick differently). A search therefore builds one
:class:`predictors.SizeReference` of its space, deterministically, and passes it to every scoring call:

- :func:`reference_derivations`: ``samples`` distinct derivations drawn from the space (within its limits: the
  sampler never leaves them) by ``random.Random(seed)``, a generator of its own (the strategy's draws are not
  touched), with a fixed seed (:data:`REFERENCE_SEED`), so the reference is a property of the space and its limits,
  the same for every search and every resume of one;
- :func:`space_size_reference`: their weightless ONNX models encoded by the predictor, the mean and std of the size
  columns.

A table benchmark, which has every architecture's feature row, may instead pass the reference of the table's
(feasible) architectures: their sizes, never their labels.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from nas.errors import NasError

if TYPE_CHECKING:
    from predictors import SizeReference
    from search_spaces.derivation import Derivation
    from search_spaces.spaces import Space

_log = logging.getLogger(__name__)

__all__ = ["REFERENCE_SAMPLES", "REFERENCE_SEED", "SizeReferenceError", "has_size_term", "reference_derivations",
           "rows_size_reference", "space_size_reference"]

REFERENCE_SAMPLES = 64
"""Derivations in a search's size reference (64: the std of each size column to about 9%, 3-5 s of ONNX builds)."""

REFERENCE_SEED = 0
"""Seed of the reference sample (fixed: not the search's seed, so every search of one space shares the scale)."""


class SizeReferenceError(NasError, RuntimeError):
    """No sample of the space could be built for the size reference."""


def has_size_term(predictor: Any) -> bool:
    """Whether ``predictor`` (an ``OnnxNetPredictor``) adds a size term to its scores (then it needs a reference)."""
    return bool(getattr(predictor, "size_raw", None))


def reference_derivations(space: Space, samples: int = REFERENCE_SAMPLES,
                          seed: int = REFERENCE_SEED) -> list[Derivation]:
    """Up to ``samples`` distinct derivations of ``space`` (fewer if the space is that small), drawn in order by
    ``random.Random(seed)``: the same list on every call."""
    rng = random.Random(seed)
    out: dict[str, Derivation] = {}
    for _ in range(4 * samples):
        if len(out) >= samples:
            break
        d = space.sample(rng)
        out.setdefault(str(d), d)
    return list(out.values())


def rows_size_reference(predictor: Any, rows: Any, source: str) -> SizeReference | None:
    """The reference of the predictor's raw input rows ``rows`` (``None`` for a predictor without a size term)."""
    if not has_size_term(predictor):
        return None
    return predictor.size_reference(rows, source=source)


def space_size_reference(space: Space, predictor: Any, *, num_classes: int, samples: int = REFERENCE_SAMPLES,
                         seed: int = REFERENCE_SEED) -> SizeReference | None:
    """The size reference of ``space`` for ``predictor`` (``None`` when it has no size term): the size columns of
    :func:`reference_derivations`, built for ``num_classes`` without weights and encoded by the predictor as its
    scoring calls encode candidates."""
    if not has_size_term(predictor):
        return None
    from nas.candidate import build_candidate

    chosen = reference_derivations(space, samples, seed)
    models = []
    for d in chosen:
        try:
            models.append(build_candidate(space, d, num_classes, check=False, weights=False).onnx_model)
        except Exception as err:  # noqa: BLE001 - a sample that cannot be built is left out of the reference
            _log.warning("size reference: cannot build %s: %s: %s", str(d)[:80], type(err).__name__, err)
    if not models:
        raise SizeReferenceError(f"no derivation of {len(chosen)} samples of {space.name} could be built for the size "
                           f"reference")
    rows = predictor.features(predictor.encode(models))
    return rows_size_reference(predictor, rows, f"sample of {space.name} within its limits: {len(models)} "
                                                f"derivations, seed {seed}")
