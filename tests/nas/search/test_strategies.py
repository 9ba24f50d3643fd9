"""Search strategies: the ask/tell contract, exact replay, seeding, and search quality on a synthetic fitness.

The synthetic fitness on nb-macro is the fraction of layers that are MBConv e6k5 (digit 2 of the architecture
string): smooth enough for evolution to climb, and 1.0 only at ``22222222`` (one of 6,561 architectures).
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from nas.search.strategies import (
    STRATEGIES,
    Observation,
    StrategyError,
    UnknownStrategyError,
    UnsupportedSpaceError,
    make_strategy,
    optuna_spaces,
    strategy_options,
)
from nas.search.strategies.adaptive import mutable_symbols
from search_spaces.spaces import Space

POP = {"population_size": 8, "tournament_size": 3}


@pytest.fixture(scope="module")
def macro(spaces: dict[str, Space]) -> Space:
    return spaces["nb-macro"]


@pytest.fixture(scope="module")
def ein(spaces: dict[str, Space]) -> Space:
    return spaces["image1x8x8"]


def macro_fitness(space: Space) -> Callable[[str], float]:
    cache: dict[str, float] = {}

    def fitness(derivation: str) -> float:
        if derivation not in cache:
            cache[derivation] = space.arch_string(space.parse(derivation)).count("2") / 8
        return cache[derivation]

    return fitness


def ein_fitness(derivation: str) -> float | None:
    """Cheap and arbitrary, with some failures: prefers mid-sized derivations with linear layers."""
    if len(derivation) % 11 == 0:
        return None
    size = 1.0 / (1.0 + abs(len(derivation) - 300) / 100)
    return size + 0.1 * derivation.count("linear") / (1 + derivation.count("("))


def noisy_scorer(fitness: Callable[[str], float]) -> Callable[[list[str]], list[float]]:
    """An informative but imperfect predictor: fitness plus deterministic noise (sd 0.05)."""
    return lambda ds: [fitness(d) + random.Random(d).gauss(0, 0.05) for d in ds]


def options_for(name: str, space: Space, fitness: Callable[[str], Any]) -> dict[str, Any]:
    if name == "guided":
        return {**POP, "scorer": lambda ds: [len(d) for d in ds], "candidates_per_slot": 4}
    if name in ("evolution", "adaptive"):
        return dict(POP)
    if name == "surrogate":  # few candidates, tiny refits: the contract, not the model, is checked here
        return {"candidates_per_slot": 2, "local_search": 1, "local_mutants": 1, "refit_every": 4, "refit_epochs": 2}
    return {}


def drive(strategy, fitness, rounds: int, batch: int, *, extra_asks: bool = False) -> list[Observation]:
    """Synchronous ask/tell rounds; with ``extra_asks``, a discarded ask before every real one."""
    history: list[Observation] = []
    for _ in range(rounds):
        if extra_asks:
            strategy.ask(3)
        proposals = strategy.ask(batch)
        observations = [Observation(p.derivation, fitness(p.derivation), p) for p in proposals]
        strategy.tell(observations)
        history += observations
    return history


# --- the contract ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_ask_gives_distinct_valid_derivations(name: str, macro: Space, ein: Space) -> None:
    spaces = [(macro, macro_fitness(macro))] + ([] if name == "optuna" else [(ein, ein_fitness)])
    for space, fitness in spaces:
        strategy = make_strategy(name, space, seed=3, **options_for(name, space, fitness))
        drive(strategy, fitness, rounds=3, batch=4)  # the population is full: children are bred
        proposals = strategy.ask(8)
        assert len(proposals) == 8
        assert len({p.derivation for p in proposals}) == 8
        for p in proposals:
            assert str(space.parse(p.derivation)) == p.derivation
            assert p.operator in ("optuna:tpe", "sample", "crossover") or p.operator.startswith("mutate:")
            assert all(parent in strategy.fitness for parent in p.parents)
        assert not {p.derivation for p in proposals} & set(strategy.fitness)  # dedupe: nothing told again
        if name in ("evolution", "guided", "adaptive"):
            assert any(p.parents for p in proposals)
        state = strategy.state_dict()
        assert state["strategy"] == name and state["told"] == 12


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_replay_rebuilds_the_same_strategy(name: str, macro: Space, ein: Space) -> None:
    spaces = [(macro, macro_fitness(macro))] + ([] if name == "optuna" else [(ein, ein_fitness)])
    for space, fitness in spaces:
        options = options_for(name, space, fitness)
        original = make_strategy(name, space, seed=7, **options)
        history = drive(original, fitness, rounds=4, batch=3, extra_asks=True)  # asks in between don't matter
        expected = original.ask(5)
        again = original.ask(5)  # a second ask before the next tell avoids the first
        assert not {p.derivation for p in expected} & {p.derivation for p in again}

        rebuilt = make_strategy(name, space, seed=7, **options).replay(history)
        assert rebuilt.ask(5) == expected
        one_by_one = make_strategy(name, space, seed=7, **options)
        for obs in history:
            one_by_one.tell([obs])
        assert one_by_one.ask(5) == expected
        assert rebuilt.state_dict() == original.state_dict() or name == "guided"  # guided counts scorer calls
        other_seed = make_strategy(name, space, seed=8, **options).replay(history)
        assert other_seed.ask(5) != expected


def test_pending_proposals_are_not_proposed_again(macro: Space) -> None:
    strategy = make_strategy("random", macro, seed=0)
    first = strategy.ask(4)
    strategy.tell([Observation(first[0].derivation, 0.5, first[0])])
    keys = {p.derivation for p in first[1:]}
    for p in strategy.ask(50, pending=keys):
        assert p.derivation not in keys


def test_replay_never_calls_the_scorer(macro: Space) -> None:
    fitness = macro_fitness(macro)
    calls = []
    options = {**POP, "candidates_per_slot": 4}
    original = make_strategy("guided", macro, seed=1, scorer=lambda ds: calls.append(len(ds)) or [len(d) for d in ds],
                             **options)
    history = drive(original, fitness, rounds=4, batch=3)
    n = len(calls)
    rebuilt = make_strategy("guided", macro, seed=1, scorer=lambda ds: pytest.fail("scorer called"), **options)
    rebuilt.replay(history)
    assert [m.key for m in rebuilt.population] == [m.key for m in original.population]
    assert len(calls) == n


# --- search quality on the synthetic fitness -----------------------------------------------------------------------

def _search(name: str, space: Space, fitness, seed: int, evaluations: int = 60, **options) -> list[float]:
    strategy = make_strategy(name, space, seed=seed, **options)
    values: list[float] = []
    while len(values) < evaluations:
        proposals = strategy.ask(4)
        observations = [Observation(p.derivation, fitness(p.derivation), p) for p in proposals]
        strategy.tell(observations)
        values += [o.fitness for o in observations]
    return values


def _summary(runs: list[list[float]]) -> tuple[float, float]:
    """Mean over runs of (best fitness found, mean fitness of the last 20 evaluations)."""
    return statistics.mean(max(r) for r in runs), statistics.mean(statistics.mean(r[-20:]) for r in runs)


def test_evolution_guided_and_adaptive_beat_random_search(macro: Space) -> None:
    fitness = macro_fitness(macro)
    seeds = range(4)
    pop = {"population_size": 12, "tournament_size": 4}
    results = {
        "random": _summary([_search("random", macro, fitness, s) for s in seeds]),
        "evolution": _summary([_search("evolution", macro, fitness, s, **pop) for s in seeds]),
        "adaptive": _summary([_search("adaptive", macro, fitness, s, **pop) for s in seeds]),
        "guided": _summary([_search("guided", macro, fitness, s, scorer=noisy_scorer(fitness), candidates_per_slot=8,
                                    **pop) for s in seeds]),
    }
    random_best, random_late = results["random"]
    for name in ("evolution", "adaptive", "guided"):
        best, late = results[name]
        assert best >= random_best + 0.05, results
        assert late >= random_late + 0.2, results  # random search stays near the mean, 1/3
    # an informative predictor makes evolution better still
    assert results["guided"][0] >= results["evolution"][0], results
    assert results["guided"][1] >= results["evolution"][1] + 0.05, results


# --- seeding -------------------------------------------------------------------------------------------------------

def test_seeds_are_proposed_first_and_once(macro: Space) -> None:
    fitness = macro_fitness(macro)
    derivation = str(macro.sample(5))
    for name in sorted(STRATEGIES):
        options = options_for(name, macro, fitness)
        strategy = make_strategy(name, macro, seed=0, seeds=["22222222", derivation, "22222222"], **options)
        first = strategy.ask(3)
        assert [p.operator for p in first] == ["seed", "seed", first[2].operator] and first[2].operator != "seed"
        assert first[0].derivation == str(macro.from_arch("22222222"))
        assert first[1].derivation == derivation
        assert all(p.operator != "seed" for p in strategy.ask(2))  # both seeds were proposed since the last tell
        fresh = make_strategy(name, macro, seed=0, seeds=["22222222", derivation], **options)
        assert fresh.ask(1, pending=[first[0].derivation])[0] == first[1]  # seed 1 is in flight: seed 2
        strategy.tell([Observation(p.derivation, fitness(p.derivation), p) for p in first])
        assert all(p.operator != "seed" for p in strategy.ask(5))
        assert strategy.state_dict()["seeds_left"] == 0


def test_seeds_fill_the_initial_population(macro: Space) -> None:
    seeds = ["22222222", "22222221", "22222212", "22222122"]
    strategy = make_strategy("evolution", macro, seed=0, population_size=4, tournament_size=4, crossover_prob=0.0,
                             seeds=seeds)
    proposals = strategy.ask(4)
    assert [macro.arch_string(macro.parse(p.derivation)) for p in proposals] == seeds
    strategy.tell([Observation(p.derivation, 1.0 - i / 10, p) for i, p in enumerate(proposals)])
    children = strategy.ask(6)
    # the tournament covers the whole population, so every child descends from the best seed
    assert {c.parents for c in children} == {(proposals[0].derivation,)}


def test_invalid_seed_is_named(macro: Space, ein: Space) -> None:
    with pytest.raises(StrategyError, match="0201210X"):
        make_strategy("evolution", macro, seed=0, seeds=["0201210X"])
    with pytest.raises(StrategyError, match="no_such_op"):
        make_strategy("random", ein, seed=0, seeds=["(sequential no_such_op identity)"])
    with pytest.raises(StrategyError, match="list of strings"):
        make_strategy("random", macro, seed=0, seeds="22222222")


# --- adaptive mutation ---------------------------------------------------------------------------------------------

def test_adaptive_q_values_move_toward_the_rewarding_action(macro: Space) -> None:
    assert mutable_symbols(macro) == ["keep", "down64", "down128", "down256"]
    strategy = make_strategy("adaptive", macro, seed=0, epsilon=0.0, population_size=4, tournament_size=2)
    parents = [Observation(str(macro.from_arch(a)), 0.5) for a in ("00000000", "11111111", "01010101", "10101010")]
    strategy.tell(parents)
    children = strategy.ask(8)
    assert {c.meta["action"] for c in children} <= set(strategy.actions)
    observations = []
    for i, child in enumerate(children):
        good = child.meta["action"] == "keep" or i % 2 == 0
        proposal = type(child)(child.derivation, child.parents, child.operator,
                               {"action": "keep" if good else "down64"})
        observations.append(Observation(child.derivation, 0.6 if good else 0.3, proposal))
    strategy.tell(observations)
    q = strategy.state_dict()["q"]
    assert q["keep"] > 0.05 and q["down64"] < -0.05 and q["down128"] == 0.0
    assert strategy.counts["keep"] + strategy.counts["down64"] == 8
    greedy = strategy.ask(6)  # epsilon 0: every child uses the best action
    assert {c.meta["action"] for c in greedy} == {"keep"}
    assert all(c.operator == "mutate:keep" for c in greedy)
    assert strategy.reward(None, 0.5) == -strategy.reward_clip
    assert strategy.reward(0.9, 0.1) == strategy.reward_clip


def test_adaptive_actions_per_space(spaces: dict[str, Space]) -> None:
    assert mutable_symbols(spaces["nb201"]) == ["edge"]
    assert {"embed", "mixer", "ffn"} <= set(mutable_symbols(spaces["seq-templates"]))
    assert mutable_symbols(spaces["image1x8x8"]) == ["network", "module"]
    with pytest.raises(StrategyError, match="valid: keep, down64"):
        make_strategy("adaptive", spaces["nb-macro"], seed=0, actions=["edge"])


# --- optuna --------------------------------------------------------------------------------------------------------

def test_optuna_on_nb_macro_learns(macro: Space) -> None:
    fitness = macro_fitness(macro)
    tpe = _summary([_search("optuna", macro, fitness, s, evaluations=48) for s in range(2)])
    rnd = _summary([_search("random", macro, fitness, s, evaluations=48) for s in range(2)])
    assert tpe[1] >= rnd[1] + 0.15, (tpe, rnd)
    strategy = make_strategy("optuna", macro, seed=0)
    outsider = str(macro.from_arch("22222222"))  # not proposed by the strategy: added to its study
    strategy.tell([Observation(outsider, 1.0), Observation(str(macro.from_arch("00000000")), None)])
    assert strategy.state_dict()["best_params"] == {name: 2 for name in strategy.encoding.choices}
    proposal = strategy.ask(1)[0]
    assert macro.arch_string(macro.parse(proposal.derivation)) == "".join(
        str(proposal.meta["params"][k]) for k in strategy.encoding.choices)


def test_optuna_on_template_spaces(spaces: dict[str, Space]) -> None:
    for label in ("seq-templates", "nb201"):
        space = spaces[label]
        strategy = make_strategy("optuna", space, seed=0)
        proposals = strategy.ask(4)
        assert len({p.derivation for p in proposals}) == 4
        for p in proposals:
            assert strategy.encoding.encode(space.parse(p.derivation)) == p.meta["params"]
    assert set(optuna_spaces()) == {"nb201", "nb-macro", "nats-sss", "seq-templates"}


def test_optuna_rejects_spaces_without_choices(ein: Space) -> None:
    with pytest.raises(UnsupportedSpaceError, match=r"'einspace'.*nb201, nb-macro, nats-sss, seq-templates"):
        make_strategy("optuna", ein, seed=0)


# --- the registry --------------------------------------------------------------------------------------------------

def test_registry_errors_list_the_choices(macro: Space) -> None:
    assert set(STRATEGIES) == {"random", "evolution", "guided", "adaptive", "optuna", "surrogate"}
    with pytest.raises(UnknownStrategyError, match=r"'evolutoin' \(did you mean 'evolution'\?\); known: random, "):
        make_strategy("evolutoin", macro, seed=0)
    with pytest.raises(StrategyError, match=r"no option\(s\) 'populaton_size'; valid options: population_size, "):
        make_strategy("evolution", macro, seed=0, populaton_size=4)
    with pytest.raises(StrategyError, match="needs scorer="):
        make_strategy("guided", macro, seed=0)
    with pytest.raises(StrategyError, match="population_size must be >= 2"):
        make_strategy("evolution", macro, seed=0, population_size=1)
    assert strategy_options("evolution")["population_size"] == 20
    assert strategy_options("evolution")["tournament_size"] == 5


def test_strategies_import_neither_torch_nor_ray() -> None:
    code = ("import sys, nas.search.strategies; "
            "print(sorted(m for m in ('torch', 'ray', 'onnx', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
