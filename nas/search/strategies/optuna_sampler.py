"""Optuna's TPE (Bergstra et al., NeurIPS 2011; multivariate, Falkner et al. 2018) over a space's categorical
choices.

Only spaces whose architectures are a fixed set of categorical choices can be searched this way:

* spaces with template bits (``space.template_choices()``, HHNAS-AM's templates, Tripathi et al. 2025; e.g.
  ``seq-templates``): one parameter per template symbol; the micro structure inside the chosen templates is
  sampled at random (TPE searches the template level, as in HHNAS-AM's hierarchy);
* fixed-skeleton benchmark spaces with an architecture-string codec: ``nb-macro`` (one parameter per layer,
  values the digits 0-2 of ``02012100``), ``nb201`` (one parameter per cell edge, values the five ops) and
  ``nats-sss`` (one parameter per layer, values the widths 8-64 of ``c0:c1:c2:c3:c4``).

Einspace and the hierarchical spaces are recursive and have no such parametrisation: :class:`OptunaTPE` raises
:class:`~nas.search.strategies.base.UnsupportedSpaceError` naming the spaces that do.

Replay is exact because the study is not a long-lived object: each ask builds an in-memory study from the told
observations (``study.add_trials`` of completed trials, with the parameters read back from each derivation, so
candidates this strategy did not propose count too) and a ``TPESampler`` seeded from (seed, observations told,
asks since the last tell). Trials asked in the same ask stay running, so TPE's constant liar spreads a batch out.
Failed observations are entered with the worst fitness told so far.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from nas.search.strategies.base import (
    Observation,
    Proposal,
    Strategy,
    StrategyError,
    UnsupportedSpaceError,
    fitness_value,
)

if TYPE_CHECKING:
    from search_spaces.derivation import Derivation
    from search_spaces.spaces import Space, SpaceSpec

__all__ = ["ChoiceEncoding", "OptunaTPE", "choice_encoding", "optuna_spaces"]


class ChoiceEncoding:
    """A space's architectures as categorical parameters: ``choices`` maps each parameter name to its values;
    :meth:`decode` builds a derivation from chosen values, :meth:`encode` reads them back from a derivation."""

    kind = ""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.choices: dict[str, list[Any]] = {}

    def decode(self, params: dict[str, Any], rng: random.Random) -> Derivation:
        raise NotImplementedError

    def encode(self, derivation: Derivation) -> dict[str, Any]:
        raise NotImplementedError


class _TemplateEncoding(ChoiceEncoding):
    """Template bits: one parameter per template symbol; the rest of the derivation is sampled."""

    kind = "template"

    def __init__(self, space: Space) -> None:
        super().__init__(space)
        self.choices = {symbol: list(labels) for symbol, labels in space.template_choices().items()}

    def decode(self, params: dict[str, Any], rng: random.Random) -> Derivation:
        wanted = {s: self.choices[s].index(v) for s, v in params.items()}
        for _ in range(2000):  # rejection sampling: each template has probability >= 1 / 2^bits in practice
            d = self.space.sample(rng)
            if all(self.space.template_of(d).get(s) == i for s, i in wanted.items()):
                return d
        raise StrategyError(f"could not sample a derivation of space {self.space.name!r} with template {params}")

    def encode(self, derivation: Derivation) -> dict[str, Any]:
        found = self.space.template_of(derivation)
        return {s: self.choices[s][found[s]] for s in self.choices if s in found}


class _DigitEncoding(ChoiceEncoding):
    """A fixed skeleton with one digit per choice slot (``ChoiceCodec``, e.g. nb-macro's ``02012100``)."""

    kind = "digits"

    def __init__(self, space: Space) -> None:
        super().__init__(space)
        grammar = space.grammar
        (alt,) = grammar.rule(grammar.start).alternatives
        slots = [s for s in alt.args if len(grammar.rule(s).alternatives) > 1]
        self.choices = {f"{i}_{s}": list(range(len(grammar.rule(s).alternatives))) for i, s in enumerate(slots)}

    def decode(self, params: dict[str, Any], rng: random.Random) -> Derivation:
        return self.space.from_arch("".join(str(params[name]) for name in self.choices))

    def encode(self, derivation: Derivation) -> dict[str, Any]:
        arch = self.space.arch_string(derivation) or ""
        return {name: int(digit) for name, digit in zip(self.choices, arch, strict=True)}


class _NB201Encoding(ChoiceEncoding):
    """NAS-Bench-201's six cell edges, each one of five ops (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``)."""

    kind = "nb201"
    EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")

    def __init__(self, space: Space) -> None:
        super().__init__(space)
        self.codec = space.spec.arch_codec
        self.choices = {edge: list(self.codec.OPS) for edge in self.EDGES}

    def decode(self, params: dict[str, Any], rng: random.Random) -> Derivation:
        e = [params[edge] for edge in self.EDGES]
        return self.space.from_arch(f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|")

    def encode(self, derivation: Derivation) -> dict[str, Any]:
        return dict(zip(self.EDGES, self.codec.parse_arch(self.space.arch_string(derivation) or ""), strict=True))


class _WidthEncoding(ChoiceEncoding):
    """One parameter per width slot (``WidthCodec``, e.g. nats-sss's ``c0:c1:c2:c3:c4``), values the widths."""

    kind = "widths"

    def __init__(self, space: Space) -> None:
        super().__init__(space)
        self.codec = space.spec.arch_codec
        self.choices = {f"{i}_{symbol}": sorted(values) for i, (symbol, values) in
                        enumerate(self.codec.choices(space))}

    def decode(self, params: dict[str, Any], rng: random.Random) -> Derivation:
        return self.space.from_arch(self.codec.sep.join(str(params[name]) for name in self.choices))

    def encode(self, derivation: Derivation) -> dict[str, Any]:
        values = self.codec.values(self.space, self.space.arch_string(derivation) or "")
        return dict(zip(self.choices, values, strict=True))


def _encoding_class(spec: SpaceSpec) -> type[ChoiceEncoding] | None:
    from search_spaces.codecs import ChoiceCodec, NB201Codec, WidthCodec

    if spec.template_symbols:
        return _TemplateEncoding
    if isinstance(spec.arch_codec, ChoiceCodec):
        return _DigitEncoding
    if isinstance(spec.arch_codec, NB201Codec):
        return _NB201Encoding
    if isinstance(spec.arch_codec, WidthCodec):
        return _WidthEncoding
    return None


def optuna_spaces() -> list[str]:
    """The built-in spaces :class:`OptunaTPE` can search."""
    from search_spaces.spaces import list_spaces

    return [spec.name for spec in list_spaces() if _encoding_class(spec) is not None]


def choice_encoding(space: Space) -> ChoiceEncoding:
    """The categorical parametrisation of ``space`` (raises UnsupportedSpaceError naming the spaces that have one)."""
    cls = _encoding_class(space.spec)
    if cls is None:
        raise UnsupportedSpaceError(
            f"strategy 'optuna' needs a space made of categorical choices (template bits or a fixed-skeleton "
            f"architecture string); space {space.name!r} has none. Spaces that have them: "
            f"{', '.join(optuna_spaces())}. Use 'evolution', 'adaptive', 'guided' or 'random' for {space.name!r}")
    return cls(space)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[Any]:
    import optuna

    # Optuna's log level is the caller's to choose (the command line sets WARNING); only its experimental-API
    # warnings are silenced here, within the block.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield optuna


class OptunaTPE(Strategy):
    """Optuna's TPE sampler over the space's categorical choices (see module docstring).

    Args:
        n_startup_trials: observations before TPE takes over from random sampling (default 10).
        multivariate: model the parameters jointly (default True).
        seeds, dedupe, max_tries: see :class:`~nas.search.strategies.base.Strategy`; with ``dedupe`` a TPE
            suggestion that was already told is marked failed in the (throw-away) study and asked again. A
            suggestion over the space's limits (a constrained search) is told the worst fitness seen so far in that
            study, so TPE moves away from the region, and asked again.

    Raises:
        UnsupportedSpaceError: for spaces without categorical choices (einspace, hnb201, ...).
    """

    name = "optuna"

    def __init__(self, space: Space, *, seed: int, n_startup_trials: int = 10, multivariate: bool = True,
                 seeds: Sequence[str] = (), dedupe: bool = True, max_tries: int = 20) -> None:
        self.encoding = choice_encoding(space)
        super().__init__(space, seed=seed, seeds=seeds, dedupe=dedupe, max_tries=max_tries)
        self.n_startup_trials = int(n_startup_trials)
        self.multivariate = bool(multivariate)
        self.trials: list[tuple[dict[str, Any], float | None]] = []  # (params, fitness) of told observations

    def _observe(self, obs: Observation) -> None:
        params = None
        if obs.proposal is not None and isinstance(obs.proposal.meta.get("params"), dict) \
                and obs.proposal.derivation == obs.derivation:
            params = dict(obs.proposal.meta["params"])
        if params is None or set(params) != set(self.encoding.choices):
            from search_spaces.exceptions import SearchSpaceError

            try:
                params = self.encoding.encode(self.space.parse(obs.derivation))
            except (SearchSpaceError, ValueError) as err:
                raise StrategyError(f"observation {obs.derivation[:200]!r} is not a derivation of space "
                                    f"{self.space.name!r}: {str(err).splitlines()[0]}") from None
            if set(params) != set(self.encoding.choices):
                raise StrategyError(f"observation {obs.derivation[:200]!r} does not set every choice of space "
                                    f"{self.space.name!r} ({', '.join(self.encoding.choices)}): {params}")
        self.trials.append((params, obs.fitness))

    def _study(self, rng: random.Random) -> Any:
        with _quiet_optuna() as optuna:
            from optuna.distributions import CategoricalDistribution
            from optuna.samplers import TPESampler
            from optuna.trial import TrialState, create_trial

            sampler = TPESampler(seed=rng.randrange(2**31), multivariate=self.multivariate,
                                 n_startup_trials=self.n_startup_trials, constant_liar=True)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            distributions = {name: CategoricalDistribution(values) for name, values in self.encoding.choices.items()}
            finite = [fitness_value(f) for _, f in self.trials if fitness_value(f) > float("-inf")]
            worst = min(finite) if finite else 0.0
            frozen = []
            for params, fitness in self.trials:
                value = fitness_value(fitness)
                frozen.append(create_trial(params=params, distributions={k: distributions[k] for k in params},
                                           value=value if value > float("-inf") else worst,
                                           state=TrialState.COMPLETE))
            study.add_trials(frozen)
        return study, distributions

    def _propose(self, n: int, rng: random.Random, avoid: set[str]) -> list[Proposal]:
        from nas.search.selection import within_limits

        study, distributions = self._study(rng)
        state = {"study": study}
        finite = [fitness_value(f) for _, f in self.trials if fitness_value(f) > float("-inf")]
        worst = min(finite) if finite else 0.0

        def make(rng: random.Random) -> Proposal | None:
            with _quiet_optuna() as optuna:
                trial = study.ask(distributions)
                params = dict(trial.params)
                decoded = self.encoding.decode(params, rng)
                if not within_limits(decoded, self.space.limits):
                    study.tell(trial, worst)  # over the search's limits: TPE learns to avoid the region
                    return None
                derivation = str(decoded)
                if derivation in avoid or derivation in state.get("keys", set()) or \
                        (self.dedupe and derivation in self.fitness):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # a repeat: TPE ignores failed trials
                state.setdefault("keys", set()).add(derivation)
            return Proposal(derivation, (), "optuna:tpe", {"params": params})

        return self._distinct(n, rng, avoid, make)

    def state_dict(self) -> dict[str, Any]:
        """Base summary plus the parametrisation and the best parameters told."""
        state = super().state_dict()
        state["encoding"] = self.encoding.kind
        state["parameters"] = {name: len(values) for name, values in self.encoding.choices.items()}
        if self.trials:
            params, fitness = max(self.trials, key=lambda t: fitness_value(t[1]))
            state["best_params"] = params
        return state
