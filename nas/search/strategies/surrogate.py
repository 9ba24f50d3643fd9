"""The online surrogate: a performance predictor refitted on the search's own results, choosing what to evaluate
next by an acquisition over its ensemble (predictor-based NAS: BANANAS, White et al., AAAI 2021; NPENAS, Wei et
al., TNNLS 2022).

**The model** is an :class:`predictors.OnnxNetPredictor`: the ``prior`` (the pretrained default, or the search's
``predictor_path``) until the first refit, then that prior fine-tuned on what the search has evaluated (ONNX ->
validation accuracy). Each refit starts again *from the prior* and trains every head ``refit_epochs`` epochs on all
results told so far (:meth:`~predictors.OnnxNetPredictor.fit_features` with ``epochs``: a warm fine-tune, seeded by
the told count), so the model after ``m`` results is a function of the prior and those ``m`` results only.
Zero-cost proxies named in ``proxies`` are extra inputs: the prior's first layer gets one zero-initialised input
column per proxy (so before a refit the model *is* the prior), standardised on the told results at each refit
(values pass through ``sign(v) log(1 + |v|)`` first; non-finite ones become the column's mean). Trials that ASHA
stopped early are a separate ranking group per epoch count (``epochs=3``): they are ranked against each other,
never against fully trained ones.

**Refits** happen at an ask when at least ``refit_every`` results (and a ``refit_growth`` share of the told count)
arrived since the model's last refit. With ``background`` (what the driver sets for the asynchronous training
loop) the refit runs in a thread and asks keep using the current model until it is done: a free worker never
waits on a fit. Without it (table mode, tests) the refit runs inline in the ask: the same code.

**Candidates** (``candidates_per_slot`` per proposal): mutants of the best ``parents`` results told and fresh
samples (``sample_fraction`` of them), then ``local_search`` rounds of local search (``local_mutants`` mutants of
each of the best-scoring candidates, BANANAS' "mutate the best" step applied to the acquisition). A candidate
whose input row equals a result's (or another candidate's) is the same network and is dropped. They are ranked
by ``acquisition`` over the ensemble's head scores
(mean ``mu`` and spread ``sigma`` per candidate):

* ``ts``: Thompson sampling of one head per pick (cycled from a seeded start), its best remaining candidate (the
  default: on the benchmark's tables it did as well as the mean and better than ``its``);
* ``its``: independent Thompson sampling (BANANAS): one draw from ``N(mu, sigma^2)`` per candidate, the best
  draws win;
* ``ucb``: ``mu + ucb_beta * sigma``;
* ``ei``: expected improvement over the best ``mu`` among the results told, ``sigma (z Phi(z) + phi(z))`` with
  ``z = (mu - best) / sigma``;
* ``mean``: ``mu`` (the ablation without exploration).

Before anything is told the candidates are fresh samples ranked by the prior; the seeds come first anyway.

**One scale.** A model with a size term (the shipped prior's) scores every candidate against one fixed
:class:`predictors.SizeReference` of the space: the ``size_reference`` given (e.g. the sizes of a table's
architectures), else the size columns of the featurizer's rows of a fixed-seed sample of the space
(:func:`~nas.search.size_reference.reference_derivations`), built at the first ask. Scores are then pointwise: a
candidate's does not depend on the batch it is scored in, so a resumed search, whose batches differ, picks what an
uninterrupted one picks. The refits standardise the told results' sizes by the same reference (not by their own
spread), so the size weights they learn mean the same when the model ranks candidates. The reference is recorded in
the stored surrogate's provenance (``size_reference``): the scale to score with when the file is used elsewhere.

**State.** With ``state_path`` every refit is written there (``<state_path>.json`` + ``.safetensors``, the
predictor file format: ``nas predictor info`` reads it and ``nas search``'s ``--predictor`` takes it), its
provenance naming the told count and a digest of those results. A strategy rebuilt by
:meth:`~nas.search.strategies.base.Strategy.replay` loads it at its first ask when the digest matches the
replayed history, so a resumed search goes on with the model the interrupted one had and proposes what it would
have. A stored file that cannot be read (or does not match) is reported through ``warn`` in one line and the
strategy refits from the prior on the history instead (automatic fallback: nothing is lost but the refit's time).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.search.strategies.base import Observation, Proposal, Strategy, StrategyError, fitness_value

if TYPE_CHECKING:
    import numpy as np

    from search_spaces.derivation import Derivation
    from search_spaces.spaces import Space

__all__ = ["ACQUISITIONS", "Featurizer", "SurrogateError", "SurrogateStrategy", "acquisition_scores"]

ACQUISITIONS = ("its", "ts", "ucb", "ei", "mean")
"""The acquisition functions (see the module docstring)."""

Featurizer = Callable[[list[str]], "tuple[np.ndarray, np.ndarray | None]"]
"""Derivation strings -> (the prior's raw input rows, one per string; their raw proxy values ``(n, len(proxies))``
or ``None`` when no proxies were asked for)."""


SIZE_INPUTS = ("params", "flops")
"""Extra inputs that are the candidate's size, not a zero-cost proxy (no scorer needed)."""


class SurrogateError(StrategyError):
    """A stored surrogate cannot be read, or does not belong to the search's history."""


@dataclass(frozen=True)
class RefitRecord:
    """One refit: the results it used (``told``), when it ran (``started``/``finished``, ``time.time()``) and its
    CPU-light summary (``seconds`` of fitting)."""

    told: int
    started: float
    finished: float
    seconds: float
    loaded: bool = False


def _softlog(values: np.ndarray) -> np.ndarray:
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(np.isfinite(v), np.sign(v) * np.log1p(np.abs(v)), np.nan)


def acquisition_scores(name: str, heads: np.ndarray, rng: random.Random, *, best: float | None = None,
                       beta: float = 1.0) -> np.ndarray:
    """Acquisition values of candidates from their head scores ``(heads, n)`` (higher = pick first); ``ts`` returns
    a rank order score built from one head per pick. See the module docstring for the formulas."""
    import numpy as np
    from scipy.stats import norm

    mu = heads.mean(0)
    sigma = heads.std(0) + 1e-9
    if name == "mean":
        return mu
    if name == "ucb":
        return mu + beta * sigma
    if name == "its":
        draws = np.random.default_rng(rng.getrandbits(63)).standard_normal(len(mu))
        return mu + sigma * draws
    if name == "ei":
        ref = float(mu.max()) if best is None else best
        z = (mu - ref) / sigma
        return sigma * (z * norm.cdf(z) + norm.pdf(z))
    if name == "ts":
        n = heads.shape[1]
        out = np.empty(n)
        taken = np.zeros(n, dtype=bool)
        h = rng.randrange(heads.shape[0])
        for rank in range(n):
            scores = np.where(taken, -np.inf, heads[h])
            i = int(np.argmax(scores))
            out[i] = n - rank
            taken[i] = True
            h = (h + 1) % heads.shape[0]
        return out
    raise StrategyError(f"unknown acquisition {name!r}; choose one of {', '.join(ACQUISITIONS)}")


class SurrogateStrategy(Strategy):
    """Proposals chosen by an online-refitted predictor's acquisition (see the module docstring).

    Args:
        featurizer: derivation strings -> raw input rows of ``prior`` (and raw proxy values); default: build each
            candidate's weightless ONNX for 10 classes and encode it (:class:`OnnxFeaturizer`).
        prior: an :class:`~predictors.OnnxNetPredictor`, a predictor file path, or ``None`` for the shipped default.
        acquisition: one of :data:`ACQUISITIONS` (default ``ts``).
        candidates_per_slot: candidates made per proposal before the local search (default 5).
        parents: the best results told whose mutants are candidates (default 8).
        sample_fraction: the share of fresh samples among them (default 0.34; the rest are mutants).
        local_search, local_mutants: rounds of mutating the best-scoring candidates, and mutants of each (2, 2).
        refit: refit at all (``False``: the prior ranks throughout, the ``no refit`` ablation).
        refit_every, refit_growth: refit once at least ``max(refit_every, (refit_growth - 1) * m)`` results arrived
            since the last refit on ``m`` results (defaults 8 and 1.5).
        refit_epochs, refit_lr: the warm fine-tune's epochs and learning rate (defaults 12 and 0.05).
        proxies: names of the raw extra columns the featurizer returns (default ``params``, ``flops``: the
            candidate's size; zero-cost proxy names add proxies), extra inputs of the surrogate.
        ucb_beta: ``ucb``'s exploration weight.
        size_reference: the size term's :class:`~predictors.SizeReference` (default: built from a fixed sample of
            the space, see the module docstring).
        background: refit in a background thread (the driver's asynchronous loop); default inline.
        state_path: where each refit is stored (a predictor file base path); ``None``: not stored.
        warn: called with one-line messages (a stored surrogate that could not be used).
        refit_min_seconds: **for tests**: a refit takes at least this long (it sleeps the rest), to show that
            trials keep starting during a slow fit.
        seeds, dedupe, max_tries: see :class:`~nas.search.strategies.base.Strategy`.
    """

    name = "surrogate"

    def __init__(self, space: Space, *, seed: int, featurizer: Featurizer | None = None, prior: Any = None,
                 acquisition: str = "ts", candidates_per_slot: int = 5, parents: int = 8,
                 sample_fraction: float = 0.34, local_search: int = 2, local_mutants: int = 2, refit: bool = True,
                 refit_every: int = 8, refit_growth: float = 1.5, refit_epochs: int = 12, refit_lr: float = 0.05,
                 proxies: Sequence[str] = SIZE_INPUTS, ucb_beta: float = 1.0, background: bool = False,
                 state_path: str | None = None, warn: Callable[[str], None] | None = None,
                 refit_min_seconds: float = 0.0, size_reference: Any = None, seeds: Sequence[str] = (),
                 dedupe: bool = True, max_tries: int = 20) -> None:
        super().__init__(space, seed=seed, seeds=seeds, dedupe=dedupe, max_tries=max_tries)
        if acquisition not in ACQUISITIONS:
            raise StrategyError(f"unknown acquisition {acquisition!r}; choose one of {', '.join(ACQUISITIONS)}")
        for label, value, low in (("candidates_per_slot", candidates_per_slot, 1), ("parents", parents, 1),
                                  ("refit_every", refit_every, 1), ("refit_epochs", refit_epochs, 1),
                                  ("local_search", local_search, 0)):
            if int(value) < low:
                raise StrategyError(f"{label} must be >= {low}, got {value}")
        if not 0.0 <= sample_fraction <= 1.0:
            raise StrategyError(f"sample_fraction must be in [0, 1], got {sample_fraction}")
        if refit_growth < 1.0:
            raise StrategyError(f"refit_growth must be >= 1, got {refit_growth}")
        if isinstance(proxies, str):
            raise StrategyError("proxies must be a list of proxy names, not one string")
        self.acquisition = acquisition
        self.candidates_per_slot = int(candidates_per_slot)
        self.parents = int(parents)
        self.sample_fraction = float(sample_fraction)
        self.local_search = int(local_search)
        self.local_mutants = int(local_mutants)
        self.refit = bool(refit)
        self.refit_every = int(refit_every)
        self.refit_growth = float(refit_growth)
        self.refit_epochs = int(refit_epochs)
        self.refit_lr = float(refit_lr)
        self.proxies = tuple(str(p) for p in proxies)
        self.ucb_beta = float(ucb_beta)
        self.background = bool(background)
        self.state_path = None if state_path is None else str(state_path)
        self._warn = warn
        self.refit_min_seconds = float(refit_min_seconds)
        self.prior = self._load_prior(prior)
        self.featurizer = featurizer if featurizer is not None else OnnxFeaturizer(space, self.prior, self.proxies)
        self.model = self._widened(self.prior)  # the model asks use (the prior until the first refit)
        self.size_reference = size_reference  # built at the first ask when None and the prior has a size term
        self.model_told = 0
        self.refits: list[RefitRecord] = []
        self.warnings: list[str] = []
        self.results: list[tuple[str, float, str]] = []  # (derivation, fitness, group) of finished results, told order
        self._told_at: list[int] = []  # the told position of each entry of results
        self._digests: list[str] = []  # running digest of the first k results told, k = 1..n_told
        self._rows: dict[str, tuple[Any, Any]] = {}  # derivation -> (raw row, raw proxies)
        self._parsed: dict[str, Derivation] = {}
        self._lock = threading.Lock()
        self._feature_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stored_checked = False

    # --- the model ----------------------------------------------------------------------------------------------

    @staticmethod
    def _load_prior(prior: Any) -> Any:
        from predictors import OnnxNetPredictor, PredictorError

        if isinstance(prior, OnnxNetPredictor):
            return prior
        try:
            return OnnxNetPredictor.default() if prior is None else OnnxNetPredictor.load(prior)
        except PredictorError as err:
            raise StrategyError(f"strategy 'surrogate' cannot load its prior {prior or 'default'}: "
                                f"{str(err).splitlines()[0]}") from None

    def _widened(self, prior: Any) -> Any:
        """A copy of ``prior`` with one zero-initialised input column per proxy (the prior's function unchanged).

        Written here because the predictor has no "add inputs to a trained head" operation: its ``extra`` inputs
        must be present when it is first trained, and the prior was trained without proxies."""
        import copy

        import numpy as np
        import torch

        model = copy.copy(prior)  # shares the (read-only here) text encoders; its own heads and standardisation
        model.heads = copy.deepcopy(prior.heads)
        model.size_raw = copy.deepcopy(prior.size_raw)  # the size term's weights are trained too: never the prior's
        model.make_trainable()  # a loaded prior holds numpy heads; widening and refits need torch modules
        model.mean, model.std = np.array(prior.mean, copy=True), np.array(prior.std, copy=True)
        model.extra_names, model.history = list(prior.extra_names), list(prior.history)
        model.provenance = dict(prior.provenance)
        if not self.proxies:
            return model
        k = len(self.proxies)
        for head in model.heads:
            first = head[0]
            wider = torch.nn.Linear(first.in_features + k, first.out_features)
            with torch.no_grad():
                wider.weight.zero_()
                wider.weight[:, :first.in_features] = first.weight
                wider.bias.copy_(first.bias)
            head[0] = wider
        model.mean = np.concatenate([model.mean, np.zeros(k)])
        model.std = np.concatenate([model.std, np.zeros(k)])  # dropped until a refit standardises them
        model.extra_names = list(model.extra_names) + [f"proxy:{p}" for p in self.proxies]
        return model

    def _features(self, derivations: list[str]) -> np.ndarray:
        """The surrogate's raw input rows (the prior's rows, then the soft-logged proxies) of ``derivations``."""
        import numpy as np

        todo = [d for d in dict.fromkeys(derivations) if d not in self._rows]
        if todo:
            with self._feature_lock:  # the refit thread and the asks share the featurizer
                x, extra = self.featurizer(todo)
            x = np.asarray(x, dtype=np.float64)
            if self.proxies:
                if extra is None:
                    raise StrategyError(f"the featurizer returned no proxy values; proxies {list(self.proxies)} "
                                        f"were asked for")
                extra = _softlog(np.asarray(extra, dtype=np.float64).reshape(len(todo), len(self.proxies)))
            for i, d in enumerate(todo):
                self._rows[d] = (x[i], None if extra is None or not self.proxies else extra[i])
        rows = [self._rows[d] for d in derivations]
        x = np.stack([r[0] for r in rows])
        if self.proxies:
            x = np.concatenate([x, np.stack([r[1] for r in rows])], axis=1)
        return x

    def _fill(self, x: np.ndarray, model: Any) -> np.ndarray:
        """Non-finite proxy values -> the model's mean of that column (a standardised 0)."""
        import numpy as np

        if not self.proxies:
            return x
        k = len(self.proxies)
        x = x.copy()
        tail = x[:, -k:]
        mean = model.mean[-k:]
        x[:, -k:] = np.where(np.isfinite(tail), tail, mean)
        return x

    def _digest(self, n: int) -> str:
        return self._digests[n - 1] if n > 0 else ""

    def _fit(self, n: int) -> tuple[Any, float]:
        """The model refitted on the first ``n`` results told (a function of the prior and those results)."""
        import numpy as np

        start = time.perf_counter()
        data = self.results_until(n)
        model = self._widened(self.prior)
        if len(data) >= 2 and len({f for _, f, _ in data}) > 1:
            derivations = [d for d, _, _ in data]
            x = self._features(derivations)
            if self.proxies:
                k = len(self.proxies)
                tail = x[:, -k:]
                mean = np.array([np.nanmean(c) if np.isfinite(c).any() else 0.0 for c in tail.T])
                std = np.array([np.nanstd(c) if np.isfinite(c).any() else 0.0 for c in tail.T])
                std = np.where(std <= 1e-6 * np.maximum(1.0, np.abs(mean)), 0.0, std)
                model.mean[-k:], model.std[-k:] = mean, std
                x = self._fill(x, model)
            model.fit_features(x, [f for _, f, _ in data], groups=[g for _, _, g in data], epochs=self.refit_epochs,
                               lr=self.refit_lr, seed=(self.seed * 1_000_003 + n) % (1 << 31),
                               size_reference=self.size_reference)
        reference = None if self.size_reference is None else self.size_reference.to_json()
        model.provenance = {"surrogate": {"space": self.space.name, "told": n, "digest": self._digest(n),
                                          "results": len(data), "seed": self.seed,
                                          "proxies": list(self.proxies), "size_reference": reference}}
        seconds = time.perf_counter() - start
        if self.refit_min_seconds > seconds:
            time.sleep(self.refit_min_seconds - seconds)
        return model, seconds

    def results_until(self, n: int) -> list[tuple[str, float, str]]:
        """The finished results among the first ``n`` told: (derivation, fitness, ranking group)."""
        return [r for r, i in zip(self.results, self._told_at) if i < n]

    def _due(self) -> bool:
        if not self.refit:
            return False
        gap = self.n_told - self.model_told
        return gap >= max(self.refit_every, math.ceil((self.refit_growth - 1.0) * self.model_told)) and \
            len(self.results) >= 2

    def _refit_now(self, n: int) -> None:
        started = time.time()
        model, seconds = self._fit(n)
        record = RefitRecord(n, started, time.time(), seconds)
        with self._lock:
            if n > self.model_told:
                self.model, self.model_told = model, n
                self.refits.append(record)
        if self.state_path is not None:
            # this process's refits (wall-clock times) go with the file: what a reader checks a slow fit against
            model.provenance["surrogate"]["refits"] = [r.__dict__ for r in self.refits if not r.loaded]
            model.save(self.state_path)

    def _background_refit(self, n: int) -> None:
        try:
            self._refit_now(n)
        except Exception as err:  # noqa: BLE001 - a failed refit keeps the current model; the search goes on
            self._note(f"surrogate refit on {n} results failed ({type(err).__name__}: {err}); keeping the model "
                       f"of {self.model_told} results")

    def _note(self, message: str) -> None:
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    def _maybe_refit(self) -> None:
        if not self._stored_checked:
            self._stored_checked = True
            self._load_stored()
        if not self._due() or (self._thread is not None and self._thread.is_alive()):
            return
        n = self.n_told
        if self.background:
            self._thread = threading.Thread(target=self._background_refit, args=(n,), daemon=True,
                                            name="nas-surrogate-refit")
            self._thread.start()
        else:
            self._refit_now(n)

    def _load_stored(self) -> None:
        """Take the stored surrogate when it belongs to the replayed history (see the module docstring)."""
        if self.state_path is None or not self.refit:
            return
        base = Path(self.state_path)
        if not base.with_suffix(".json").exists() and not base.with_suffix(".safetensors").exists():
            return
        try:
            model, told = load_surrogate(self.state_path)
        except SurrogateError as err:
            self._note(f"{err}; refitting from the prior on the {self.n_told} results told")
            return
        if told > self.n_told or model.provenance["surrogate"].get("digest") != self._digest(told):
            self._note(f"the stored surrogate {base.with_suffix('.json')} does not match this search's history "
                       f"(fitted on {told} results); refitting from the prior on the {self.n_told} results told")
            return
        widths = len(self.model.mean)
        if model.mean is None or len(model.mean) != widths:
            stored = 0 if model.mean is None else len(model.mean)
            self._note(f"the stored surrogate {base.with_suffix('.json')} has {stored} "
                       f"inputs, this search's has {widths}; refitting from the prior")
            return
        self.model, self.model_told = model, told
        now = time.time()
        self.refits.append(RefitRecord(told, now, now, 0.0, loaded=True))

    def wait(self) -> None:
        """Wait for a refit in progress (the driver calls it when the search ends)."""
        thread = self._thread
        if thread is not None:
            thread.join()

    close = wait

    # --- ask/tell -----------------------------------------------------------------------------------------------

    def _observe(self, obs: Observation) -> None:
        value = fitness_value(obs.fitness)
        fidelity = getattr(obs, "fidelity", None)
        group = "full" if fidelity is None else f"epochs={int(fidelity)}"
        previous = self._digests[-1] if self._digests else ""
        item = json.dumps([obs.derivation, None if not math.isfinite(value) else round(value, 12), group])
        self._digests.append(hashlib.sha256((previous + item).encode()).hexdigest()[:32])
        if math.isfinite(value):
            self.results.append((obs.derivation, value, group))
            self._told_at.append(self.n_told)

    def _parse(self, text: str) -> Derivation:
        d = self._parsed.get(text)
        if d is None:
            d = self.space.parse(text)
            self._parsed[text] = d
        return d

    def _mutant(self, parent: str, rng: random.Random, lineage: tuple[str, ...] | None = None) -> Proposal | None:
        """A mutant of ``parent``; its ``parents`` are ``lineage`` when given (a candidate's own told ancestors: a
        proposal's parents are always results told)."""
        d = self._parse(parent)
        for _ in range(3):
            child, how = self.space.mutate(d, rng)
            text = str(child)
            if how.operator != "copy" and text != parent:
                self._parsed.setdefault(text, child)
                symbol = d.root.at(how.path).symbol
                return Proposal(text, (parent,) if lineage is None else lineage, f"mutate:{symbol}")
        return None

    def _ensure_size_reference(self) -> None:
        """Build the size reference (once, before any scoring or refit; see the module docstring)."""
        from nas.search.size_reference import REFERENCE_SEED, has_size_term, reference_derivations, rows_size_reference

        if self.size_reference is not None or not has_size_term(self.prior):
            return
        sample = [str(d) for d in reference_derivations(self.space)]
        with self._feature_lock:
            rows = self.featurizer.rows(sample) if isinstance(self.featurizer, OnnxFeaturizer) \
                else self.featurizer(sample)[0]
        source = f"sample of {self.space.name} within its limits: {len(sample)} derivations, seed {REFERENCE_SEED}"
        self.size_reference = rows_size_reference(self.prior, rows, source)

    def _scores(self, model: Any, x: np.ndarray) -> np.ndarray:
        """``model``'s head scores ``(heads, n)`` of raw rows ``x`` (proxies filled), against the size reference."""
        return model.head_scores(self._fill(x, model), size_reference=self.size_reference)

    def _propose(self, n: int, rng: random.Random, avoid: set[str]) -> list[Proposal]:
        import numpy as np

        self._ensure_size_reference()
        self._maybe_refit()
        with self._lock:
            model, model_told = self.model, self.model_told
        total = n * self.candidates_per_slot
        ranked = sorted(self.results, key=lambda r: -r[1]) if self.results else []
        tops = list(dict.fromkeys(d for d, _, _ in ranked))[:self.parents]
        n_mutants = 0 if not tops else int(round(total * (1.0 - self.sample_fraction)))
        pool: dict[str, Proposal] = {}

        def add(p: Proposal | None) -> None:
            if p is None or p.derivation in pool or p.derivation in avoid:
                return
            if self.dedupe and p.derivation in self.fitness:
                return
            pool[p.derivation] = p

        for i in range(n_mutants * 2):
            if len(pool) >= n_mutants:
                break
            add(self._mutant(tops[i % len(tops)] if i < len(tops) else rng.choice(tops), rng))
        for _ in range((total - len(pool)) * 2):
            if len(pool) >= total:
                break
            add(self._sample(rng))
        if not pool:
            return self._distinct(n, rng, avoid, self._sample)
        seen = self._seen_rows(avoid)

        def fresh(keys: list[str]) -> tuple[list[str], np.ndarray]:
            """The keys whose input rows are new (equal rows are the same network: identity layers in nb-macro
            give many derivations of one graph), with their rows."""
            x = self._features(keys) if keys else np.zeros((0, 0))
            kept = []
            for i, key in enumerate(keys):
                row = x[i].tobytes()
                if row in seen:
                    pool.pop(key, None)
                    continue
                seen.add(row)
                kept.append(i)
            return [keys[i] for i in kept], x[kept]

        keys, x = fresh(list(pool))
        if not keys:
            return self._distinct(n, rng, avoid, self._sample)
        heads = self._scores(model, x)
        for _ in range(self.local_search):
            best = [keys[i] for i in np.argsort(-heads.mean(0), kind="stable")[:n]]
            before = len(pool)
            for parent in best:
                for _ in range(self.local_mutants):
                    add(self._mutant(parent, rng, pool[parent].parents))
            new, x_new = fresh(list(pool)[before:])
            if not new:
                break
            heads = np.concatenate([heads, self._scores(model, x_new)], axis=1)
            keys += new
        told_best = None
        if self.acquisition == "ei" and self.results:
            told = [d for d, _, _ in self.results]
            told_best = float(self._scores(model, self._features(told)).mean(0).max())
        values = acquisition_scores(self.acquisition, heads, rng, best=told_best, beta=self.ucb_beta)
        order = np.argsort(-values, kind="stable")
        out = []
        for i in order[:n]:
            p = pool[keys[i]]
            out.append(Proposal(p.derivation, p.parents, p.operator,
                                {**p.meta, "acquisition": float(values[i]), "model_told": model_told}))
        if len(out) < n:
            out += self._distinct(n - len(out), rng, avoid | {p.derivation for p in out}, self._sample)
        return out

    def _seen_rows(self, avoid: set[str]) -> set[bytes]:
        """Input rows of what was told and of the keys to avoid whose rows are known (bytes)."""
        told = [d for d in self.fitness if d in self._rows] + [d for d in avoid if d in self._rows]
        missing = [d for d in self.fitness if d not in self._rows]
        if missing:
            self._features(missing)
            told += missing
        if not told:
            return set()
        return {row.tobytes() for row in self._features(told)}

    def state_dict(self) -> dict[str, Any]:
        """Base summary plus the acquisition and the told count of the model in use (the refits this process ran,
        with their times, are :attr:`refits`: not part of the replayable state)."""
        state = super().state_dict()
        state["surrogate"] = {"model_told": self.model_told, "acquisition": self.acquisition,
                              "inputs": list(self.proxies)}
        return state


def load_surrogate(path: str | Path) -> tuple[Any, int]:
    """A stored surrogate and the told count it was fitted on.

    Raises:
        SurrogateError: one line naming the file, when it cannot be read or is not a surrogate.
    """
    from predictors import OnnxNetPredictor, PredictorError

    base = Path(path)
    try:
        model = OnnxNetPredictor.load(base)
    except (PredictorError, OSError, ValueError) as err:
        raise SurrogateError(f"the stored surrogate {base.with_suffix('.json')} cannot be read: "
                             f"{str(err).splitlines()[0]}") from None
    info = model.provenance.get("surrogate") if isinstance(model.provenance, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("told"), int):
        raise SurrogateError(f"the stored surrogate {base.with_suffix('.json')} is a predictor file without the "
                             f"surrogate's provenance (told count, digest)")
    return model, int(info["told"])


class OnnxFeaturizer:
    """The default featurizer: each derivation's weightless ONNX (built for ``num_classes``) encoded by the prior
    (:meth:`~predictors.OnnxNetPredictor.features`), plus zero-cost proxies from a
    :class:`~nas.search.scoring.Scorer` when ``proxy_scorer`` is given (what the driver passes)."""

    def __init__(self, space: Space, predictor: Any, proxies: Sequence[str] = (), *, num_classes: int = 10,
                 proxy_scorer: Any = None) -> None:
        self.space = space
        self.predictor = predictor
        self.proxies = tuple(proxies)
        self.num_classes = int(num_classes)
        self.proxy_scorer = proxy_scorer
        if any(p not in SIZE_INPUTS for p in self.proxies) and proxy_scorer is None:
            raise StrategyError("surrogate proxies need a proxy scorer (the search driver makes one)")

    def rows(self, derivations: list[str]) -> np.ndarray:
        """The prior's raw input rows of ``derivations`` alone (no proxies: what a size reference reads)."""
        return self._rows(self._candidates(derivations))

    def _candidates(self, derivations: list[str]) -> list[Any]:
        from nas.candidate import build_candidate

        return [build_candidate(self.space, self.space.parse(d), self.num_classes, check=False, weights=False)
                for d in derivations]

    def _rows(self, candidates: list[Any]) -> np.ndarray:
        return self.predictor.features(self.predictor.encode([c.onnx_model for c in candidates]))

    def __call__(self, derivations: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        import numpy as np

        candidates = self._candidates(derivations)
        x = self._rows(candidates)
        extra = None
        if self.proxies:
            zero_cost = [p for p in self.proxies if p not in SIZE_INPUTS]
            scored = self.proxy_scorer.score(derivations) if zero_cost else [None] * len(derivations)
            extra = np.array([[float(getattr(c, p)) if p in SIZE_INPUTS else s.raw[p][0] for p in self.proxies]
                              for c, s in zip(candidates, scored)], dtype=np.float64)
        return x, extra


def surrogate_state_path(artifact_dir: str | Path, search: str) -> Path:
    """Where a stored search keeps its surrogate: ``<artifact_dir>/surrogate/<search>`` (``.json`` +
    ``.safetensors``, a predictor file: ``nas predictor info`` reads it, ``--predictor`` takes it)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in search) or "search"
    return Path(artifact_dir) / "surrogate" / safe


def driver_options(search: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The options the search driver adds for a ``surrogate`` search (``search`` is the driver's
    :class:`nas.search.driver._Search`): the prior (``predictor_path`` or the shipped default), the default
    featurizer for the search's input and classes (zero-cost proxies on the search's proxy batch), background refits
    in the asynchronous loop, the state file in the store's artifact folder and the driver's warnings."""
    config = search.config
    proxies = tuple(options.get("proxies", SIZE_INPUTS))
    prior = SurrogateStrategy._load_prior(config.predictor_path)
    proxy_scorer = None
    zero_cost = [p for p in proxies if p not in SIZE_INPUTS]
    if zero_cost:
        from nas.search.scoring import Scorer

        proxy_scorer = Scorer(zero_cost, space=search.space, dataset=search.dataset, proxy_batch=config.proxy_batch,
                              seed=config.seed, use_ray=False, input_shape=search.input_shape,
                              num_classes=search.num_classes)
    featurizer = OnnxFeaturizer(search.space, prior, proxies, num_classes=search.num_classes,
                                proxy_scorer=proxy_scorer)
    state = surrogate_state_path(search.store.artifact_dir, search.name)
    state.parent.mkdir(parents=True, exist_ok=True)
    return {"prior": prior, "featurizer": featurizer, "background": bool(config.asynchronous),
            "state_path": str(state), "warn": search.warn}
