"""Ranking candidates before training: the ONNX-Net predictor and zero-cost proxies, combined by mean rank.

.. code-block:: python

    from nas.search.scoring import Scorer

    scorer = Scorer(["predictor", "zen"], space=space, dataset=dataset, proxy_batch=64, seed=0)
    scored = scorer.score(derivation_strings)          # one ScoredCandidate per string, in order
    scored[0].raw        # {"predictor": (value, seconds), "zen": (value, seconds)}: what the store keeps
    scored[0].combined   # mean over scorers of the normalised rank within this call, in [0, 1], 1 = best
    scorer(derivation_strings)                         # the combined scores: the ``guided`` strategy's scorer

Scorers:

- ``"predictor"``: :meth:`predictors.OnnxNetPredictor.default` (or the file ``predictor_path``), run batched on
  the driver over the candidates' ONNX models. When the default file is missing the scorer warns and goes on
  with the proxies (``zen`` when no proxy was asked for). A predictor with a size term (the shipped one) scores
  every candidate against one fixed :class:`predictors.SizeReference` of the search's space
  (:mod:`nas.search.size_reference`: a fixed-seed sample of the space within its limits, built at the first
  predictor call, or the ``size_reference`` given), so its values do not depend on which candidates share a call:
  the cache below holds numbers of one scale, and a resumed search recomputes the same ones.
- any zero-cost proxy name of :data:`predictors.PROXY_NAMES`: computed on one fixed batch of ``proxy_batch``
  training examples (a seeded draw), on a module built with ``torch.manual_seed(seed)``. When Ray is initialised
  the candidates are split into one chunk per CPU of the cluster and each chunk runs as a Ray task
  (``num_cpus=1``) that rebuilds the modules from the derivation strings; otherwise they run in this process.

Combination: for each scorer, the candidates of one call are ranked (average ranks for ties) and the rank is
normalised to [0, 1] (1 = best); an invalid value (NaN, ±inf, e.g. a proxy that does not apply) takes the worst
rank. Every scorer is higher-is-better (``ntk_cond`` is ``-cond``). The combined score is the mean
of a candidate's normalised ranks, so it only compares candidates scored in the same call.

Raw scores are cached per derivation string, so the driver re-ranking what the guided strategy already scored
costs nothing, and the same string always gets the same raw scores (the scorer is deterministic).
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.search.config import ConfigError

if TYPE_CHECKING:
    from nas.data import Dataset
    from predictors import SizeReference
    from search_spaces.spaces import Space

__all__ = ["LOWER_IS_BETTER", "PREDICTOR", "ScoredCandidate", "Scorer", "ScorerError", "combine_ranks",
           "scorer_from_config"]

_log = logging.getLogger(__name__)

PREDICTOR = "predictor"
"""The scorer name of the ONNX-Net performance predictor."""

LOWER_IS_BETTER: frozenset[str] = frozenset()
"""Scorers whose smaller values are better (ranked reversed)."""


class ScorerError(ConfigError):
    """A scorer name is unknown, or the predictor file given cannot be loaded."""


@dataclass(frozen=True)
class ScoredCandidate:
    """The scores of one candidate.

    Attributes:
        derivation: the candidate's derivation string.
        raw: ``{scorer name: (value, seconds)}``; invalid values are ``-inf`` (or NaN), as the store keeps them.
        combined: mean normalised rank within the call that scored it, in [0, 1], higher is better.
    """

    derivation: str
    raw: dict[str, tuple[float, float]]
    combined: float


def combine_ranks(columns: dict[str, Sequence[float]]) -> list[float]:
    """Mean normalised rank per row of ``{scorer: values}`` (all of one length); see the module docstring."""
    import numpy as np
    from scipy.stats import rankdata

    if not columns:
        return []
    n = len(next(iter(columns.values())))
    if n == 0:
        return []
    total = np.zeros(n)
    for name, values in columns.items():
        v = np.array([float(x) for x in values], dtype=float)
        if name in LOWER_IS_BETTER:
            v = -v
        invalid = ~np.isfinite(v)
        v[invalid] = -np.inf
        ranks = rankdata(v, method="average")  # 1 = worst
        normalised = (ranks - 1) / (n - 1) if n > 1 else np.ones(n)
        normalised[invalid] = 0.0  # invalid: the worst rank, below every valid value
        total += normalised
    return [float(t) / len(columns) for t in total]


class Scorer:
    """Scores candidates before training (see the module docstring).

    Args:
        names: scorer names: ``"predictor"`` and/or zero-cost proxy names; at least one.
        space: the search space the derivation strings belong to.
        dataset: the search's dataset (the proxy batch comes from its training split); ``None`` in table mode:
            then the proxies see a fixed batch of ``proxy_batch`` standard-normal inputs of ``input_shape`` with
            uniformly drawn labels of ``num_classes`` classes, both drawn from ``numpy.random.default_rng(seed)``.
        input_shape, num_classes: what the candidates are built for (needed, and only used, when ``dataset`` is
            ``None``).
        proxy_batch: examples in the proxies' batch.
        seed: seed of the batch draw, the modules' initialisation and the proxies.
        predictor_path: an ONNX-Net predictor file (``OnnxNetPredictor.load``); ``None``: the shipped default.
        use_ray: run proxies as Ray tasks: ``True``/``False``, or ``None`` for "when Ray is initialised".
        size_reference: the predictor's size reference (:class:`predictors.SizeReference`); ``None``: a sample of
            ``space`` (:func:`~nas.search.size_reference.space_size_reference`), built when first needed.

    Raises:
        ScorerError: an unknown name, or ``predictor_path`` that cannot be loaded.
    """

    def __init__(self, names: Sequence[str], *, space: Space, dataset: Dataset | None, proxy_batch: int = 64,
                 seed: int = 0, predictor_path: str | None = None, use_ray: bool | None = None,
                 input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 size_reference: SizeReference | None = None) -> None:
        from predictors import PROXY_NAMES

        names = list(dict.fromkeys(names))
        if not names:
            raise ScorerError("a Scorer needs at least one scorer name")
        unknown = [n for n in names if n != PREDICTOR and n not in PROXY_NAMES]
        if unknown:
            raise ScorerError(f"unknown scorer(s) {unknown}; choose '{PREDICTOR}' and/or zero-cost proxies: "
                              f"{', '.join(PROXY_NAMES)}")
        if proxy_batch < 2:
            raise ScorerError(f"proxy_batch must be >= 2, got {proxy_batch}")
        if dataset is None and (input_shape is None or num_classes is None):
            raise ScorerError("a Scorer without a dataset needs input_shape and num_classes")
        self.space = space
        self.dataset = dataset
        self.input_shape = tuple(int(d) for d in (dataset.input_shape if dataset is not None else input_shape))
        self.num_classes = int(dataset.num_classes if dataset is not None else num_classes)
        self.seed = int(seed)
        self.use_ray = use_ray
        self.predictor: Any = None
        self.size_reference = size_reference
        self.warnings: list[str] = []
        if PREDICTOR in names:
            self.predictor = self._load_predictor(predictor_path)
            if self.predictor is None:
                names.remove(PREDICTOR)
                if not names:
                    names = ["zen"]
        self.names: tuple[str, ...] = tuple(names)
        self.proxies: tuple[str, ...] = tuple(n for n in names if n != PREDICTOR)
        import numpy as np

        rng = np.random.default_rng(self.seed)
        if dataset is not None:
            train = dataset.train
            k = min(int(proxy_batch), len(train))
            idx = np.sort(rng.choice(len(train), size=k, replace=False))
            self._x = np.ascontiguousarray(train.x[idx])
            self._y = np.ascontiguousarray(train.y[idx])
        else:
            self._x = rng.standard_normal((int(proxy_batch), *self.input_shape)).astype(np.float32)
            self._y = rng.integers(0, self.num_classes, size=int(proxy_batch)).astype(np.int64)
        self._cache: dict[str, dict[str, tuple[float, float]]] = {}

    def _load_predictor(self, path: str | None) -> Any:
        from predictors import OnnxNetPredictor, PredictorError

        if path is not None:
            try:
                return OnnxNetPredictor.load(path)
            except PredictorError as err:
                raise ScorerError(f"cannot load the predictor {path}: {err}") from None
        try:
            return OnnxNetPredictor.default()
        except PredictorError as err:
            message = f"the pretrained predictor is not available ({err}); ranking by zero-cost proxies only"
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            self.warnings.append(message)
            return None

    # --- scoring ------------------------------------------------------------------------------------------------

    def preload(self, raw: Mapping[str, Mapping[str, tuple[float, float]]]) -> None:
        """Take raw scores computed elsewhere (``{derivation: {scorer: (value, seconds)}}``, e.g. a benchmark's
        per-table cache) as if this scorer had computed them; each must have every one of :attr:`names`."""
        for d, scores in raw.items():
            missing = [n for n in self.names if n not in scores]
            if missing:
                raise ScorerError(f"preloaded scores of {d[:80]!r} lack {missing}")
            self._cache[str(d)] = {n: (float(scores[n][0]), float(scores[n][1])) for n in self.names}

    def __call__(self, derivations: list[str]) -> list[float]:
        """The combined scores of ``derivations`` (the ``guided`` strategy's ``scorer``)."""
        return [s.combined for s in self.score(derivations)]

    def score(self, derivations: Sequence[str], onnx_models: Sequence[Any] | None = None) -> list[ScoredCandidate]:
        """Score derivation strings (their ONNX models may be given to save rebuilding them for the predictor)."""
        derivations = [str(d) for d in derivations]
        todo = [i for i, d in enumerate(derivations) if d not in self._cache]
        todo_keys = list(dict.fromkeys(derivations[i] for i in todo))
        if todo_keys:
            raw: dict[str, dict[str, tuple[float, float]]] = {d: {} for d in todo_keys}
            if self.predictor is not None:
                models_by_key: dict[str, Any] = {}
                if onnx_models is not None:
                    for d, m in zip(derivations, onnx_models):
                        models_by_key.setdefault(d, m)
                models = [models_by_key.get(d) or self._onnx(d) for d in todo_keys]
                reference = self.predictor_size_reference()
                start = time.perf_counter()
                values = self.predictor.predict(models, size_reference=reference)
                each = (time.perf_counter() - start) / max(1, len(todo_keys))
                for d, v in zip(todo_keys, values):
                    raw[d][PREDICTOR] = (float(v), each)
            if self.proxies:
                for d, result in zip(todo_keys, self._proxy_scores(todo_keys)):
                    raw[d].update(result)
            for d in todo_keys:
                self._cache[d] = {n: raw[d][n] for n in self.names}
        rows = [self._cache[d] for d in derivations]
        combined = combine_ranks({n: [r[n][0] for r in rows] for n in self.names})
        return [ScoredCandidate(d, dict(r), c) for d, r, c in zip(derivations, rows, combined)]

    def predictor_size_reference(self) -> SizeReference | None:
        """The size reference of every predictor call (built once, from the space, when none was given;
        ``None`` without a predictor or when it has no size term)."""
        from nas.search.size_reference import has_size_term, space_size_reference

        if self.size_reference is None and self.predictor is not None and has_size_term(self.predictor):
            self.size_reference = space_size_reference(self.space, self.predictor, num_classes=self.num_classes)
        return self.size_reference

    def _onnx(self, derivation: str) -> Any:
        from nas.candidate import build_candidate

        return build_candidate(self.space, self.space.parse(derivation), self.num_classes,
                               check=False).onnx_model

    def _proxy_scores(self, derivations: list[str]) -> list[dict[str, tuple[float, float]]]:
        use_ray = self.use_ray
        if use_ray is None:
            try:
                import ray

                use_ray = ray.is_initialized()
            except ImportError:  # pragma: no cover
                use_ray = False
        job = {"space": self.space.name, "input_shape": self.input_shape,
               "names": list(self.proxies), "num_classes": self.num_classes, "seed": self.seed}
        if not use_ray or len(derivations) < 2:
            return _proxy_chunk(derivations, self._x, self._y, space_obj=self.space, **job)
        import ray

        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        chunks = _chunks(derivations, min(cpus, len(derivations)))
        remote = ray.remote(num_cpus=1)(_proxy_chunk)
        x_ref, y_ref = ray.put(self._x), ray.put(self._y)
        results = ray.get([remote.remote(chunk, x_ref, y_ref, **job) for chunk in chunks])
        return [r for chunk_result in results for r in chunk_result]


def _chunks(items: list[str], n: int) -> list[list[str]]:
    """``items`` in ``n`` contiguous chunks of near-equal size (order kept)."""
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return [c for c in out if c]


@functools.lru_cache(maxsize=4)
def _worker_space(space: str, input_shape: tuple[int, ...]) -> Any:
    """The space, built once per task worker process (bounded: a worker keeps at most four samplers alive)."""
    from search_spaces.spaces import get_space

    return get_space(space, input_shape)


def _proxy_chunk(derivations: list[str], x: Any, y: Any, *, space: str, input_shape: tuple[int, ...],
                 names: list[str], num_classes: int, seed: int,
                 space_obj: Any = None) -> list[dict[str, tuple[float, float]]]:
    """Zero-cost proxies of each derivation (rebuilt here: this runs as a Ray task or in the driver)."""
    import torch

    from nas.compile.torch import compile_graph
    from nas.ir.build import build_graph
    from predictors import compute_proxies

    if space_obj is None:
        space_obj = _worker_space(space, tuple(input_shape))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xt, yt = torch.as_tensor(x), torch.as_tensor(y)
        out: list[dict[str, tuple[float, float]]] = []
        for text in derivations:
            start = time.perf_counter()
            try:
                graph = build_graph(space_obj, space_obj.parse(text), num_classes)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    module = compile_graph(graph)
                build = (time.perf_counter() - start) / max(1, len(names))
                results = compute_proxies(module, xt, yt, names=names, num_classes=num_classes, seed=seed)
                out.append({n: (float(r.value), float(r.seconds) + build) for n, r in results.items()})
            except Exception as err:  # noqa: BLE001 - a candidate that cannot be scored ranks last
                _log.warning("cannot score %s: %s: %s", text[:80], type(err).__name__, err)
                out.append({n: (-math.inf, time.perf_counter() - start) for n in names})
        return out
    finally:
        torch.set_num_threads(threads)


def scorer_from_config(config: Any, space: Space, dataset: Dataset | None, *,
                       input_shape: Sequence[int] | None = None, num_classes: int | None = None) -> Scorer | None:
    """The :class:`Scorer` of a :class:`~nas.search.config.SearchConfig` (``None`` when it has no scorers);
    ``input_shape`` and ``num_classes`` are needed without a ``dataset`` (table mode)."""
    if not config.scorers:
        return None
    return Scorer(list(config.scorers), space=space, dataset=dataset, proxy_batch=config.proxy_batch,
                  seed=config.seed, predictor_path=config.predictor_path, input_shape=input_shape,
                  num_classes=num_classes)
