"""The online surrogate (strategy ``surrogate``) against the real parts: the shipped predictor, SQLite, the CLI in
subprocesses, a local Ray; no mocks.

- table mode through the CLI: the search stores its trials and its surrogate, a predictor file that ``nas predictor
  info`` reads;
- state: a strategy rebuilt from the history loads the stored surrogate and proposes exactly what the original
  would have; a corrupt stored surrogate is a one-line warning and the search goes on from the prior (with the same
  proposals: a refit is a function of the prior and the results told); ``kill -9`` of a table search, then resume:
  the search evaluates exactly what an uninterrupted one evaluates;
- a refit never blocks trials: in a real local Ray search whose refits take at least 12 s, trials keep starting
  while the first refit runs.

The table is synthetic (every NAS-Bench-Macro architecture, accuracy growing with its MBConv layers, with
deterministic noise), so the tests need no ``../shared`` data.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.search.strategies import Observation, make_strategy
from nas.search.strategies.surrogate import SurrogateError, load_surrogate, surrogate_state_path
from nas.store import Store
from search_spaces.spaces import get_space

FAST = {"candidates_per_slot": 3, "local_search": 1, "local_mutants": 1, "refit_every": 4, "refit_epochs": 3}


def nas(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli.app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def macro_accuracy(arch: str) -> float:
    return 0.5 + 0.04 * arch.count("2") + 0.02 * arch.count("1") + 0.01 * random.Random(arch).random()


@pytest.fixture(scope="module")
def macro() -> object:
    return get_space("nb-macro", (3, 32, 32))


@pytest.fixture(scope="module")
def macro_table(tmp_path_factory: pytest.TempPathFactory, macro: object) -> Path:
    path = tmp_path_factory.mktemp("table") / "macro.json"
    path.write_text(json.dumps({a: macro_accuracy(a) for a in macro.enumerate()}))
    return path


def fitness_of(space: object):
    return lambda derivation: macro_accuracy(space.arch_string(space.parse(derivation)))


def drive(strategy, fitness, rounds: int, batch: int) -> list[Observation]:
    history = []
    for _ in range(rounds):
        proposals = strategy.ask(batch)
        observations = [Observation(p.derivation, fitness(p.derivation), p) for p in proposals]
        strategy.tell(observations)
        history += observations
    return history


# ------------------------------------------------------------------------------------------- state


def test_rebuilt_strategy_loads_the_stored_surrogate_and_proposes_the_same(tmp_path: Path, macro: object) -> None:
    state = tmp_path / "surrogate" / "s"
    state.parent.mkdir()
    original = make_strategy("surrogate", macro, seed=3, state_path=str(state), **FAST)
    history = drive(original, fitness_of(macro), rounds=3, batch=4)
    expected = original.ask(4)  # refits on the 12 results (due: 12 - 8 >= 4) and stores the model
    assert original.model_told == 12 and [r.told for r in original.refits] == [4, 8, 12]
    assert all(p.meta["model_told"] == 12 for p in expected)
    model, told = load_surrogate(state)
    assert told == 12 and model.provenance["surrogate"]["results"] == 12
    assert state.with_suffix(".safetensors").is_file()

    rebuilt = make_strategy("surrogate", macro, seed=3, state_path=str(state), **FAST).replay(history)
    assert rebuilt.ask(4) == expected
    assert [r.loaded for r in rebuilt.refits] == [True]  # it took the stored model instead of refitting

    # without the file the refit from the prior gives the same model, hence the same proposals
    fresh = make_strategy("surrogate", macro, seed=3, **FAST).replay(history)
    assert fresh.ask(4) == expected
    assert [r.loaded for r in fresh.refits] == [False]
    # and the refit changed what is proposed: the prior alone ranks differently
    prior_only = make_strategy("surrogate", macro, seed=3, **{**FAST, "refit": False}).replay(history)
    assert prior_only.ask(4) != expected


def test_corrupt_stored_surrogate_is_one_line_and_the_search_goes_on_from_the_prior(tmp_path: Path,
                                                                                    macro: object) -> None:
    state = tmp_path / "s"
    original = make_strategy("surrogate", macro, seed=5, state_path=str(state), **FAST)
    history = drive(original, fitness_of(macro), rounds=3, batch=4)
    expected = original.ask(4)
    state.with_suffix(".safetensors").write_bytes(b"\x00not a safetensors file")
    with pytest.raises(SurrogateError) as err:
        load_surrogate(state)
    assert "\n" not in str(err.value) and str(state.with_suffix(".json")) in str(err.value)

    warnings: list[str] = []
    resumed = make_strategy("surrogate", macro, seed=5, state_path=str(state), warn=warnings.append,
                            **FAST).replay(history)
    assert resumed.ask(4) == expected  # refitted from the prior on the 12 results: the same model
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "cannot be read" in warnings[0] and "refitting from the prior on the 12 results" in warnings[0]
    load_surrogate(state)  # the refit wrote a good file again

    state.with_suffix(".json").write_text("{ truncated")
    warnings.clear()
    again = make_strategy("surrogate", macro, seed=5, state_path=str(state), warn=warnings.append,
                          **FAST).replay(history)
    assert again.ask(4) == expected and len(warnings) == 1


def test_stored_surrogate_of_another_history_is_not_used(tmp_path: Path, macro: object) -> None:
    state = tmp_path / "s"
    original = make_strategy("surrogate", macro, seed=5, state_path=str(state), **FAST)
    history = drive(original, fitness_of(macro), rounds=3, batch=4)
    original.ask(4)
    changed = [Observation(o.derivation, 1.0 - o.fitness, o.proposal) for o in history]
    warnings: list[str] = []
    other = make_strategy("surrogate", macro, seed=5, state_path=str(state), warn=warnings.append,
                          **FAST).replay(changed)
    other.ask(4)
    assert len(warnings) == 1 and "does not match this search's history" in warnings[0]
    assert [r.loaded for r in other.refits] == [False]


def test_a_candidate_scores_the_same_in_every_batch(macro: object) -> None:
    """The surrogate scores candidates against one size reference of the space (a fixed sample, the same for a
    rebuilt strategy), so a candidate's head scores do not depend on the batch: what makes a resumed search, whose
    batches differ, pick as an uninterrupted one does. Fails under a size term z-scored within each call."""
    import numpy as np

    rng = random.Random(0)
    shared = str(macro.from_arch("22222222"))
    others = list(dict.fromkeys(str(macro.sample(rng)) for _ in range(12)))
    strategy = make_strategy("surrogate", macro, seed=0, **FAST)
    assert strategy.size_reference is None  # built lazily, at the first ask
    strategy.ask(2)
    reference = strategy.size_reference
    assert reference is not None and reference.count == 64 and "nb-macro" in reference.source
    rebuilt = make_strategy("surrogate", macro, seed=9, **FAST)
    rebuilt.ask(1)
    assert rebuilt.size_reference == reference  # not the search's seed: one reference per space and limits

    def score(batch: list[str]) -> np.ndarray:
        return strategy._scores(strategy.model, strategy._features(batch))[:, 0]

    alone = score([shared])
    assert np.allclose(score([shared, *others[:3]]), alone, atol=1e-6)
    assert np.allclose(score([shared, *others[3:]]), alone, atol=1e-6)


# ------------------------------------------------------------------------------------------- table mode, CLI


def fast_config(tmp_path: Path, table: Path, budget: int, seed: int = 0) -> Path:
    """A table search config with the surrogate's candidates and refits kept small (the CLI takes strategy options
    from the YAML config)."""
    import yaml

    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"space": "nb-macro", "evaluator": f"table:{table}", "budget": budget,
                                    "batch": 4, "seed": seed, "strategy": "surrogate", "strategy_options": FAST}))
    return path


def test_table_search_through_the_cli_keeps_its_surrogate(tmp_path: Path, macro_table: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    result = nas("search", "run", "--name", "sur", "--db", db, "--config", str(fast_config(tmp_path, macro_table, 24)),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    with Store(db) as store:
        trials = store.trials_of("sur")
        artifact_dir = store.artifact_dir
    assert len(trials) == 24 and all(t.status == "ok" for t in trials)
    state = surrogate_state_path(artifact_dir, "sur")
    model, told = load_surrogate(state)
    assert 20 <= told <= 24 and model.provenance["surrogate"]["results"] == told
    info = nas("predictor", "info", str(state), "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stdout + info.stderr
    assert '"surrogate"' in info.stdout
    # the stored model is the refitted one: on the results it was fitted on it ranks like their accuracies
    from scipy.stats import kendalltau

    from nas.search.strategies.surrogate import SurrogateStrategy
    from predictors import SizeReference

    space = get_space("nb-macro", (3, 32, 32))
    with Store(db) as store:
        told_trials = sorted(store.trials_of("sur"), key=lambda t: t.tell_seq)[:told]
        derivations = [store.get_architecture(t.arch_hash).derivation for t in told_trials]
    reader = SurrogateStrategy(space, seed=0)  # the default prior and featurizer, as the search had
    reference = SizeReference.from_json(model.provenance["surrogate"]["size_reference"])  # the search's scale
    scores = model.predict_features(reader._features(derivations), size_reference=reference)
    assert kendalltau(scores, [t.val_acc for t in told_trials]).statistic > 0.3


def test_kill_9_then_resume_evaluates_what_an_uninterrupted_search_evaluates(tmp_path: Path,
                                                                             macro_table: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    args = ["--db", db, "--config", str(fast_config(tmp_path, macro_table, 32, seed=2))]
    whole = nas("search", "run", "--name", "whole", *args, cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli.app", "search", "run", "--name", "cut", *args],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    told = 0
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                with Store(db) as store:
                    told = sum(t.tell_seq is not None for t in store.trials_of("cut"))
            except Exception:  # noqa: BLE001 - the search may not exist yet
                continue
            if told >= 12:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the search ended before it could be killed ({told} told)"
    assert 12 <= told < 32
    resumed = nas("search", "resume", "cut", "--db", db, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with Store(db) as store:
        a = [t.arch_hash for t in sorted(store.trials_of("whole"), key=lambda t: t.tell_seq)]
        b = [t.arch_hash for t in sorted(store.trials_of("cut"), key=lambda t: t.tell_seq)]
    assert len(a) == len(b) == 32
    assert a == b  # the same picks after the kill as without it


# ------------------------------------------------------------------------------------------- refits never block


def test_slow_refits_never_block_trials_in_a_real_local_ray_search(tmp_path: Path) -> None:
    """Four tiny seed MLPs, then surrogate picks; every refit takes at least 12 s (``refit_min_seconds``), the
    trials about a second each: trials must keep starting while the first refit runs."""
    import ray

    from nas.search import SearchConfig, run_search

    def mlp(width: int) -> str:
        return (f"(routing im2col[kernel=8,stride=8,padding=0] (sequential linear[width={width}] leaky_relu) "
                "col2im)")

    started_ray = not ray.is_initialized()
    config = SearchConfig(strategy="surrogate", seeds=tuple(mlp(w) for w in (16, 32, 64, 128)), budget=10, batch=2,
                          scorers=(), seed=0, train={"epochs": 1}, tune={"num_cpus": 2, "scheduler": "fifo"},
                          strategy_options={**FAST, "refit_every": 2, "refit_min_seconds": 12.0})
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    try:
        summary = run_search(config, name="slowfit", db=db)
    finally:
        if started_ray:
            ray.shutdown()
    assert summary.status == "finished" and summary.finished == 10
    with Store(db) as store:
        trials = store.trials_of("slowfit")
        artifact_dir = store.artifact_dir
    model, told = load_surrogate(surrogate_state_path(artifact_dir, "slowfit"))
    refits = model.provenance["surrogate"]["refits"]
    assert refits and all(r["finished"] - r["started"] >= 12.0 for r in refits)
    first = refits[0]
    during = [t for t in trials if first["started"] < t.resources["started_at"] < first["finished"]]
    assert len(during) >= 2, f"trials waited for the refit: {first}, starts " \
                             f"{[t.resources['started_at'] for t in trials]}"
    assert all(t.status == "ok" for t in trials)
